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
/// are kept.
///
/// With no `buckets` a group's ranking is recomputed from all its rows whenever the
/// group changes. With `buckets` (descending, each a multiple of the next; only with a
/// `limit`), the rows are first ranked within buckets of their group (a row's bucket is
/// its hash modulo the bucket count), keeping each bucket's first `offset + limit`
/// rows, bucket level by bucket level, and the group's ranking is computed from the
/// last level's survivors: a change re-ranks one bucket per level (a group of `n`
/// rows costs `n / buckets[0]` per change, not `n`), which matters when the top
/// rows are deleted from a large group.
///
/// `monotonic`: the input has no retractions (see `ReducePlan::Hierarchical`); each
/// worker first keeps, per group and time, only the rows that could rank within
/// `offset + limit` among the rows it saw, so the final ranking arranges a few rows
/// per group and worker instead of all of them. A retraction is an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopKPlan {
    pub group_key: Vec<usize>,
    pub order_key: Vec<ColumnOrder>,
    pub limit: Option<usize>,
    pub offset: usize,
    pub buckets: Vec<u64>,
    pub monotonic: bool,
}

/// The bucket levels of hierarchical reductions and TopKs. Each level divides the
/// previous one, so a row's bucket at a level follows from its bucket at the level
/// before. More levels would cut the cost of a change in very large groups further,
/// at the price of one more arrangement, which for groups smaller than the buckets
/// holds nearly every row again.
pub const HIERARCHICAL_BUCKETS: [u64; 2] = [256, 16];

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
    /// Only `min`, `max`, `bool_and` and `bool_or` (with or without `DISTINCT`, which
    /// changes none of them): aggregates whose value over a set is their value over
    /// the values of its parts. The values are aggregated within buckets of their
    /// group (a value row's hash modulo `buckets[0]`), those results within coarser
    /// buckets (`buckets[1]`, each level dividing the one before), and the last
    /// level's results per group, so deleting a group's current minimum re-reads one
    /// bucket per level instead of the whole group.
    ///
    /// `monotonic`: the input has no retractions (a one-shot read, whose inputs are
    /// all positive at one time); each value row is carried in the difference, which
    /// differential adds up as the running min/max per lane, so a group costs one
    /// arranged entry instead of its rows (and `buckets` is empty). A retraction
    /// reaching it anyway is an error in the error collection, not a wrong answer.
    Hierarchical {
        aggregates: Vec<AggregateExpr>,
        buckets: Vec<u64>,
        monotonic: bool,
    },
    /// Aggregates of different kinds: each part is an `Accumulable`, `Hierarchical` or
    /// `Basic` plan over some of the aggregates (`positions`, indexes into the
    /// aggregate list), computed on its own from the same keyed values; a group's
    /// output row puts the parts' results back in aggregate order. A group whose
    /// part failed (its error is in the error collection) has no row.
    Collation { parts: Vec<CollationPart> },
}

/// One kind of aggregate of a [`ReducePlan::Collation`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollationPart {
    pub positions: Vec<usize>,
    pub plan: ReducePlan,
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

    /// Whether an aggregate's value over a set is its value over its parts' values.
    pub fn is_hierarchical(aggregate: &AggregateExpr) -> bool {
        use crate::agg::AggregateFunc::*;
        matches!(aggregate.func, Min | Max | BoolAnd | BoolOr)
    }

    /// The plan for `aggregates` (non-empty), whose arguments have types `args`: one
    /// strategy if they are all of one kind, else a collation of one part per kind.
    pub fn for_aggregates(aggregates: Vec<AggregateExpr>, args: &[repr::ScalarType]) -> Self {
        #[derive(Clone, Copy, PartialEq)]
        enum Kind {
            Accumulable,
            Hierarchical,
            Basic,
        }
        let kinds: Vec<Kind> = aggregates
            .iter()
            .zip(args)
            .map(|(a, arg)| {
                if Self::is_accumulable(a, arg) {
                    Kind::Accumulable
                } else if Self::is_hierarchical(a) {
                    Kind::Hierarchical
                } else {
                    Kind::Basic
                }
            })
            .collect();
        let plan = |kind: Kind, aggregates: Vec<AggregateExpr>| match kind {
            Kind::Accumulable => ReducePlan::Accumulable { aggregates },
            Kind::Hierarchical => ReducePlan::Hierarchical {
                aggregates,
                buckets: HIERARCHICAL_BUCKETS.to_vec(),
                monotonic: false,
            },
            Kind::Basic => ReducePlan::Basic { aggregates },
        };
        if kinds.iter().all(|k| *k == kinds[0]) {
            return plan(kinds[0], aggregates);
        }
        let parts = [Kind::Accumulable, Kind::Hierarchical, Kind::Basic]
            .into_iter()
            .filter_map(|kind| {
                let positions: Vec<usize> =
                    (0..kinds.len()).filter(|i| kinds[*i] == kind).collect();
                if positions.is_empty() {
                    return None;
                }
                let part = positions.iter().map(|i| aggregates[*i].clone()).collect();
                Some(CollationPart {
                    positions,
                    plan: plan(kind, part),
                })
            })
            .collect();
        ReducePlan::Collation { parts }
    }

    /// EXPLAIN text: the strategy's name, and its aggregates and parameters.
    fn explain(&self) -> (&'static str, String) {
        let list = |aggregates: &[AggregateExpr]| {
            let a: Vec<String> = aggregates.iter().map(|a| a.to_string()).collect();
            a.join(", ")
        };
        let numbers = |n: &[u64]| {
            let n: Vec<String> = n.iter().map(|b| b.to_string()).collect();
            n.join(", ")
        };
        match self {
            ReducePlan::Distinct => ("Distinct", String::new()),
            ReducePlan::Basic { aggregates } => {
                ("Basic", format!(" aggregates=[{}]", list(aggregates)))
            }
            ReducePlan::Accumulable { aggregates } => {
                ("Accumulable", format!(" aggregates=[{}]", list(aggregates)))
            }
            ReducePlan::Hierarchical {
                aggregates,
                monotonic: true,
                ..
            } => (
                "Hierarchical",
                format!(" aggregates=[{}] monotonic", list(aggregates)),
            ),
            ReducePlan::Hierarchical {
                aggregates,
                buckets,
                ..
            } => (
                "Hierarchical",
                format!(
                    " aggregates=[{}] buckets=[{}]",
                    list(aggregates),
                    numbers(buckets)
                ),
            ),
            ReducePlan::Collation { .. } => ("Collation", String::new()),
        }
    }
}

impl Plan {
    /// Whether the plan has a reduction or TopK relying on a retraction-free input
    /// (which a one-shot dataflow must then read consolidated).
    pub fn has_monotonic(&self) -> bool {
        fn monotonic_reduce(plan: &ReducePlan) -> bool {
            match plan {
                ReducePlan::Hierarchical { monotonic, .. } => *monotonic,
                ReducePlan::Collation { parts } => parts.iter().any(|p| monotonic_reduce(&p.plan)),
                _ => false,
            }
        }
        let here = match self {
            Plan::Reduce { plan, .. } => monotonic_reduce(plan),
            Plan::TopK { plan, .. } => plan.monotonic,
            _ => false,
        };
        here || self.children().into_iter().any(Plan::has_monotonic)
    }

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
                let (strategy, rest) = plan.explain();
                writeln!(f, "{pad}Reduce::{strategy} key=[{}]{rest}", k.join(", "))?;
                if let ReducePlan::Collation { parts } = plan {
                    for part in parts {
                        let p: Vec<String> = part.positions.iter().map(|p| p.to_string()).collect();
                        let (strategy, rest) = part.plan.explain();
                        writeln!(f, "{pad}  part [{}]: {strategy}{rest}", p.join(", "))?;
                    }
                }
            }
            Plan::Negate { .. } => writeln!(f, "{pad}Negate")?,
            Plan::TopK { plan, .. } if plan.monotonic => writeln!(
                f,
                "{pad}TopK::Monotonic {}",
                format_topk(&plan.group_key, &plan.order_key, plan.limit, plan.offset)
            )?,
            Plan::TopK { plan, .. } if plan.buckets.is_empty() => writeln!(
                f,
                "{pad}TopK::Basic {}",
                format_topk(&plan.group_key, &plan.order_key, plan.limit, plan.offset)
            )?,
            Plan::TopK { plan, .. } => {
                let b: Vec<String> = plan.buckets.iter().map(|b| b.to_string()).collect();
                writeln!(
                    f,
                    "{pad}TopK::Hierarchical {} buckets=[{}]",
                    format_topk(&plan.group_key, &plan.order_key, plan.limit, plan.offset),
                    b.join(", ")
                )?
            }
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
