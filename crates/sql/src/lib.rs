//! SQL: from query text to a plan the coordinator can execute.
//!
//! The life of a statement through this crate:
//! 1. [`parse::parse`] splits the text into statements and parses each (sqlparser's
//!    PostgreSQL dialect, plus Freshet's own statements).
//! 2. [`statement::plan`] resolves names against the [`catalog::SqlCatalog`] and plans
//!    the statement; queries are planned by [`query::plan_root_query`] into HIR
//!    ([`hir::HirRelationExpr`]) with types checked and casts inserted.
//! 3. [`hir::HirRelationExpr::lower`] lowers HIR to MIR (decorrelation lives here).
//! 4. [`optimize`] runs the MIR transforms in [`transform`].
//! 5. [`lir::plan_to_lir`] chooses the physical plan (LIR, `expr::Plan`) that the
//!    compute layer renders as a dataflow.
//!
//! `EXPLAIN RAW | DECORRELATED | OPTIMIZED | PHYSICAL PLAN FOR` prints steps 2–5.

pub mod catalog;
pub mod ddl;
pub mod error;
pub mod func;
pub mod hir;
pub mod lir;
pub mod lower;
pub mod options;
pub mod parse;
pub mod query;
pub mod statement;
pub mod streaming;
pub mod transform;

pub use error::PlanError;
pub use sqlparser::ast;
pub use statement::{plan, MutationKind, Plan, Returning};
pub use transform::optimize;
