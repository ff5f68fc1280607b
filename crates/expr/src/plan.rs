//! LIR: [`Plan`], the physical plan a dataflow renders, one variant per operator family.
//!
//! The semantics of each variant are documented here, once; the renderer (the `render`
//! crate, one module per variant) implements them. Every plan produces two collections:
//! the rows, and the errors raised computing them. If the error collection is empty,
//! the row collection is correct.

use std::fmt;

use repr::{Diff, EvalError, GlobalId, Row};
use serde::{Deserialize, Serialize};

use crate::agg::AggregateExpr;
use crate::finishing::ColumnOrder;
use crate::mfp::MapFilterProject;
use crate::relation::{LetRecLimit, LocalId};
use crate::scalar::MirScalarExpr;
use crate::table_func::TableFunc;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Plan {
    /// Renders `value` once and makes it available to `body` as `GetLocal { id }`.
    Let {
        id: LocalId,
        value: Box<Plan>,
        body: Box<Plan>,
    },
    /// Recursive bindings, evaluated to a fixed point in rounds as
    /// `MirRelationExpr::LetRec` describes: all start empty; each round computes
    /// `values` in order (reading, through `GetLocal`, the bindings before them as this
    /// round left them and the others as the previous round left them) until a round
    /// changes nothing; `body` reads the fixed point. With a `limit`, the bindings stop
    /// changing after `max_iters` rounds; `ERROR AT` then puts a "recursion limit"
    /// error in the result's errors if another round would have changed them. Errors
    /// raised computing a value are the result's errors too.
    LetRec {
        ids: Vec<LocalId>,
        values: Vec<Plan>,
        limit: Option<LetRecLimit>,
        body: Box<Plan>,
    },
    /// The collection a `Let` or `LetRec` bound, with `mfp` applied.
    GetLocal { id: LocalId, mfp: MapFilterProject },
    /// Literal rows, all at the dataflow's `as_of`; an error literal becomes one error.
    Constant {
        rows: Result<Vec<(Row, Diff)>, EvalError>,
    },
    /// The collection imported as `id`, with `mfp` applied as rows are read (pushed into
    /// the source so filtered rows are never materialised).
    Get { id: GlobalId, mfp: MapFilterProject },
    /// Map, filter and project each row of `input`.
    Mfp {
        input: Box<Plan>,
        mfp: MapFilterProject,
    },
    /// For each row of `input`: evaluate `exprs` on it, call `func` on their values,
    /// and for each row the function returns, emit the input row followed by that row,
    /// with `mfp` applied (over the input's columns then the function's). A row's
    /// multiplicity carries over to every row it produces, so a retraction retracts
    /// them all. An error evaluating `exprs`, `func` or `mfp` becomes one error per
    /// input row (with its multiplicity), and the row produces nothing.
    FlatMap {
        input: Box<Plan>,
        func: TableFunc,
        exprs: Vec<MirScalarExpr>,
        mfp: MapFilterProject,
    },
    /// A temporal filter: each row of `input` is in the result at the times `bounds`
    /// allow (see [`crate::temporal`]): an update `(row, t, d)` becomes `(row, max(t,
    /// from), d)` and, if the row leaves at `until`, `(row, max(t, until), -d)`, where
    /// `[from, until)` is the row's interval; a row with an empty interval (or a NULL
    /// bound) produces nothing, and an error evaluating a bound is one error at `t`.
    TemporalFilter {
        input: Box<Plan>,
        bounds: crate::temporal::TemporalBounds,
    },
    /// An inner equi-join of `inputs`; see [`JoinPlan`].
    Join { inputs: Vec<Plan>, plan: JoinPlan },
    /// Group by `key` (expressions of the input row) and aggregate; output rows are the
    /// key values followed by one column per aggregate.
    Reduce {
        input: Box<Plan>,
        key: Vec<MirScalarExpr>,
        plan: ReducePlan,
    },
    /// Per group, the top rows by an order; see [`TopKPlan`].
    TopK { input: Box<Plan>, plan: TopKPlan },
    /// Negates every multiplicity.
    Negate { input: Box<Plan> },
    /// Keeps rows with positive multiplicity (and their multiplicity).
    Threshold { input: Box<Plan> },
    /// The sum of the inputs' multiplicities.
    Union { inputs: Vec<Plan> },
}

/// How a join is rendered. Either way the result is the join's rows, each input's
/// columns in input order, with the plan's final map, filter and project applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum JoinPlan {
    Linear(LinearJoinPlan),
    Delta(DeltaJoinPlan),
}

impl JoinPlan {
    /// Applies `mfp` to the join's result.
    pub fn then(self, mfp: &MapFilterProject) -> JoinPlan {
        let then = |mut path: LinearJoinPlan| {
            path.final_mfp = path.final_mfp.then(mfp);
            path
        };
        match self {
            JoinPlan::Linear(plan) => JoinPlan::Linear(then(plan)),
            JoinPlan::Delta(DeltaJoinPlan { paths }) => JoinPlan::Delta(DeltaJoinPlan {
                paths: paths.into_iter().map(then).collect(),
            }),
        }
    }
}

/// A delta join ("delta query"): no intermediate results are arranged. Each input
/// is arranged by the keys the other inputs look it up by, and each input's changes
/// flow along their own path (a [`LinearJoinPlan`] whose `source` is that input),
/// looking up one arrangement per stage with a half join, whose result is the
/// path's `final_mfp` applied to the stream's rows. The paths' results are added up.
///
/// Path `i` computes `dA_i` joined with every other input at the change's time `t`:
/// the inputs before `i` (in input order) as of `t` including their changes at `t`,
/// the inputs after `i` as of just before `t`, so simultaneous changes to several
/// inputs are counted once. The paths have no stage without a key (a cross product
/// is planned as a linear join).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeltaJoinPlan {
    pub paths: Vec<LinearJoinPlan>,
}

/// A linear join: input `source` is the initial stream; each stage joins the stream so
/// far with one more input through arrangements of both sides on their keys (a
/// `join_core`). The stream's columns are the joined inputs' columns in the order they
/// joined (source first), and `final_mfp` (residual predicates, and the projection back
/// to the inputs' order) is applied to the result. Keys match when equal, NULL
/// included: SQL `=` is null-rejecting, and the planner filters NULLs out before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearJoinPlan {
    pub source: usize,
    pub stages: Vec<LinearStagePlan>,
    pub final_mfp: MapFilterProject,
}

/// One stage of a [`LinearJoinPlan`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearStagePlan {
    pub lookup_input: usize,
    /// Key over the stream's columns.
    pub stream_key: Vec<MirScalarExpr>,
    /// Key over the lookup input's columns, equal to `stream_key`.
    pub lookup_key: Vec<MirScalarExpr>,
}

/// `TopK`: rows grouped by `group_key` columns; within each group, ranked by
/// `order_key` (ties broken by comparing whole rows, so the result is deterministic),
/// a row of multiplicity n taking n ranks; the rows at ranks `offset .. offset + limit`
/// are kept. Rendered by recomputing a group's ranking whenever the group changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopKPlan {
    pub group_key: Vec<usize>,
    pub order_key: Vec<ColumnOrder>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// EXPLAIN text for a TopK's parameters.
pub fn format_topk(
    group_key: &[usize],
    order_key: &[ColumnOrder],
    limit: Option<usize>,
    offset: usize,
) -> String {
    let keys: Vec<String> = group_key.iter().map(|c| format!("#{c}")).collect();
    let limit = limit.map(|l| format!(" limit={l}")).unwrap_or_default();
    let offset = if offset > 0 {
        format!(" offset={offset}")
    } else {
        String::new()
    };
    format!(
        "group_by=[{}] order_by=[{}]{limit}{offset}",
        keys.join(", "),
        format_order(order_key)
    )
}

/// EXPLAIN text for a list of sort keys: `#1 asc nulls_last, ...`.
pub fn format_order(order_key: &[ColumnOrder]) -> String {
    let order: Vec<String> = order_key
        .iter()
        .map(|o| {
            format!(
                "#{} {}{}",
                o.column,
                if o.desc { "desc" } else { "asc" },
                if o.nulls_last {
                    " nulls_last"
                } else {
                    " nulls_first"
                }
            )
        })
        .collect();
    order.join(", ")
}

/// How a `Reduce` computes its aggregates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReducePlan {
    /// No aggregates: one row per distinct key.
    Distinct,
    /// Every aggregate recomputed from the group's values when the group changes.
    Basic { aggregates: Vec<AggregateExpr> },
    /// Only `count` and `sum` of `smallint`/`integer` (no `DISTINCT`): each row's
    /// contribution is carried in the difference (a vector of 128-bit lanes: the
    /// group's row count, then per aggregate its non-null count and sum), so a change
    /// costs the same however large its group is. A sum beyond `bigint` is an error
    /// (22003) in the error collection, like `Basic`'s.
    Accumulable { aggregates: Vec<AggregateExpr> },
}

impl ReducePlan {
    /// Whether an aggregate can be computed in the difference: `count` of anything and
    /// `sum` of `smallint`/`integer` (`arg` is the argument's type), without DISTINCT.
    pub fn is_accumulable(aggregate: &AggregateExpr, arg: &repr::ScalarType) -> bool {
        !aggregate.distinct
            && match aggregate.func {
                crate::agg::AggregateFunc::Count => true,
                crate::agg::AggregateFunc::Sum => {
                    matches!(arg, repr::ScalarType::Int16 | repr::ScalarType::Int32)
                }
                _ => false,
            }
    }
}

impl Plan {
    pub fn children(&self) -> Vec<&Plan> {
        match self {
            Plan::Constant { .. } | Plan::Get { .. } | Plan::GetLocal { .. } => vec![],
            Plan::Let { value, body, .. } => vec![value, body],
            Plan::LetRec { values, body, .. } => {
                values.iter().chain(std::iter::once(&**body)).collect()
            }
            Plan::Mfp { input, .. }
            | Plan::FlatMap { input, .. }
            | Plan::TemporalFilter { input, .. }
            | Plan::Reduce { input, .. }
            | Plan::Negate { input }
            | Plan::TopK { input, .. }
            | Plan::Threshold { input } => vec![input],
            Plan::Join { inputs, .. } | Plan::Union { inputs } => inputs.iter().collect(),
        }
    }

    fn fmt_indent(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        let pad = "  ".repeat(depth);
        match self {
            Plan::Constant { rows: Ok(rows) } => {
                writeln!(f, "{pad}Constant ({} rows)", rows.len())?
            }
            Plan::Constant { rows: Err(e) } => {
                writeln!(f, "{pad}Constant error {:?}", e.to_string())?
            }
            Plan::Get { id, mfp } => {
                if mfp.is_identity() {
                    writeln!(f, "{pad}Get::PersistSource {id}")?;
                } else {
                    writeln!(f, "{pad}Get::PersistSource {id} {mfp}")?;
                }
            }
            Plan::Mfp { mfp, .. } => writeln!(f, "{pad}Mfp {mfp}")?,
            Plan::TemporalFilter { bounds, .. } => writeln!(f, "{pad}TemporalFilter {bounds}")?,
            Plan::FlatMap {
                func, exprs, mfp, ..
            } => {
                let args: Vec<String> = exprs.iter().map(|e| e.to_string()).collect();
                if mfp.is_identity() {
                    writeln!(f, "{pad}FlatMap {func}({})", args.join(", "))?;
                } else {
                    writeln!(f, "{pad}FlatMap {func}({}) {mfp}", args.join(", "))?;
                }
            }
            Plan::GetLocal { id, mfp } => {
                if mfp.is_identity() {
                    writeln!(f, "{pad}Get::Local {id}")?;
                } else {
                    writeln!(f, "{pad}Get::Local {id} {mfp}")?;
                }
            }
            Plan::Let { id, value, body } => {
                writeln!(f, "{pad}Let {id} =")?;
                value.fmt_indent(f, depth + 1)?;
                writeln!(f, "{pad}In")?;
                return body.fmt_indent(f, depth + 1);
            }
            Plan::LetRec {
                ids,
                values,
                limit,
                body,
            } => {
                match limit {
                    Some(limit) => writeln!(f, "{pad}LetRec {limit}")?,
                    None => writeln!(f, "{pad}LetRec")?,
                }
                for (id, value) in ids.iter().zip(values) {
                    writeln!(f, "{pad}  {id} =")?;
                    value.fmt_indent(f, depth + 2)?;
                }
                writeln!(f, "{pad}In")?;
                return body.fmt_indent(f, depth + 1);
            }
            Plan::Join { plan, .. } => match plan {
                JoinPlan::Linear(plan) => {
                    writeln!(f, "{pad}Join::Linear source=input {}", plan.source)?;
                    fmt_join_path(f, &pad, plan)?;
                }
                JoinPlan::Delta(DeltaJoinPlan { paths }) => {
                    writeln!(f, "{pad}Join::Delta")?;
                    for path in paths {
                        writeln!(f, "{pad}  path from input {}", path.source)?;
                        fmt_join_path(f, &format!("{pad}  "), path)?;
                    }
                }
            },
            Plan::Reduce { key, plan, .. } => {
                let k: Vec<String> = key.iter().map(|e| e.to_string()).collect();
                match plan {
                    ReducePlan::Distinct => {
                        writeln!(f, "{pad}Reduce::Distinct key=[{}]", k.join(", "))?
                    }
                    ReducePlan::Basic { aggregates } => {
                        let a: Vec<String> = aggregates.iter().map(|a| a.to_string()).collect();
                        writeln!(
                            f,
                            "{pad}Reduce::Basic key=[{}] aggregates=[{}]",
                            k.join(", "),
                            a.join(", ")
                        )?
                    }
                    ReducePlan::Accumulable { aggregates } => {
                        let a: Vec<String> = aggregates.iter().map(|a| a.to_string()).collect();
                        writeln!(
                            f,
                            "{pad}Reduce::Accumulable key=[{}] aggregates=[{}]",
                            k.join(", "),
                            a.join(", ")
                        )?
                    }
                }
            }
            Plan::Negate { .. } => writeln!(f, "{pad}Negate")?,
            Plan::TopK { plan, .. } => writeln!(
                f,
                "{pad}TopK::Basic {}",
                format_topk(&plan.group_key, &plan.order_key, plan.limit, plan.offset)
            )?,
            Plan::Threshold { .. } => writeln!(f, "{pad}Threshold")?,
            Plan::Union { .. } => writeln!(f, "{pad}Union")?,
        }
        for c in self.children() {
            c.fmt_indent(f, depth + 1)?;
        }
        Ok(())
    }
}

/// EXPLAIN text for the stages and final map of a linear join or a delta join's path.
fn fmt_join_path(f: &mut fmt::Formatter<'_>, pad: &str, plan: &LinearJoinPlan) -> fmt::Result {
    for (i, s) in plan.stages.iter().enumerate() {
        let sk: Vec<String> = s.stream_key.iter().map(|e| e.to_string()).collect();
        let lk: Vec<String> = s.lookup_key.iter().map(|e| e.to_string()).collect();
        writeln!(
            f,
            "{pad}  stage {i}: lookup input {} stream_key=[{}] lookup_key=[{}]",
            s.lookup_input,
            sk.join(", "),
            lk.join(", ")
        )?;
    }
    if !plan.final_mfp.is_identity() {
        writeln!(f, "{pad}  final {}", plan.final_mfp)?;
    }
    Ok(())
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_indent(f, 0)
    }
}
