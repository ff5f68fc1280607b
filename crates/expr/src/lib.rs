//! Expressions and plans: what the planner produces and the renderer executes.
//!
//! Module map:
//! - [`scalar`]: [`MirScalarExpr`], scalar expressions over the columns of a row, and
//!   their evaluation with [`RowArena`] for temporary strings.
//! - [`func`]: the function library ([`UnaryFunc`], [`BinaryFunc`], [`VariadicFunc`]).
//! - [`agg`]: aggregate functions and their evaluation over a group.
//! - [`mfp`]: [`MapFilterProject`], the fused map/filter/project applied to rows.
//! - [`relation`]: MIR, [`MirRelationExpr`], the optimizer's relational algebra.
//! - [`plan`]: LIR, [`Plan`], the physical plan the renderer turns into a dataflow.
//! - [`table_func`]: [`TableFunc`], what a `FlatMap` calls to turn a row into rows
//!   (`generate_series`, unpacking a window aggregate's rows).
//! - [`window`]: window functions, computed as an aggregate over a partition.
//! - [`finishing`]: [`RowSetFinishing`], ORDER BY / LIMIT / OFFSET applied to a result.
//!
//! These types are free of timely so that the coordinator can build and inspect them.

pub mod agg;
pub mod finishing;
pub mod func;
pub mod mfp;
pub mod plan;
pub mod relation;
pub mod scalar;
pub mod table_func;
pub mod temporal;
pub mod window;

pub use agg::{AggregateExpr, AggregateFunc};
pub use finishing::{ColumnOrder, RowSetFinishing};
pub use func::{BinaryFunc, UnaryFunc, VariadicFunc};
pub use mfp::MapFilterProject;
pub use plan::Plan;
pub use relation::{LetRecLimit, LocalId, MirRelationExpr};
pub use scalar::{MirScalarExpr, RowArena};
pub use table_func::TableFunc;
pub use window::{WindowCall, WindowFunc, WindowPlan};
