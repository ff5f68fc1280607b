//! MIR → LIR: choosing how each operator is rendered.
//!
//! Maps, filters and projects fuse into one [`MapFilterProject`] pushed as far down as
//! possible (into the persist source of a `Get`, the final step of a join, or the
//! rows a `FlatMap` emits). Joins
//! become linear joins over their inputs in order; reductions without aggregates
//! become `Distinct`.

use std::collections::BTreeMap;

use expr::plan::{DeltaJoinPlan, JoinPlan, LinearJoinPlan, LinearStagePlan, ReducePlan};
use expr::{MapFilterProject, MirRelationExpr, MirScalarExpr, Plan};

use crate::error::PlanError;

fn contains_letrec(expr: &MirRelationExpr) -> bool {
    matches!(expr, MirRelationExpr::LetRec { .. })
        || expr.children().into_iter().any(contains_letrec)
}

fn mz_now_misplaced(what: &str) -> PlanError {
    PlanError::FeatureNotSupported(format!(
        "in a materialized view, index or SUBSCRIBE, mz_now() may only be compared \
         (<, <=, =, >=, >) with an expression of the row's columns in WHERE or HAVING \
         (found {what})"
    ))
}

/// `mz_now()` anywhere but a filter's predicates (which [`plan_to_lir`] turns into a
/// temporal filter): a maintained query has no single "now" to compute it with.
fn check_mz_now(expr: &MirRelationExpr) -> Result<(), PlanError> {
    let scalars: Vec<&MirScalarExpr> = match expr {
        MirRelationExpr::Map { scalars, .. } => scalars.iter().collect(),
        MirRelationExpr::FlatMap { exprs, .. } => exprs.iter().collect(),
        MirRelationExpr::Join { equivalences, .. } => equivalences.iter().flatten().collect(),
        MirRelationExpr::Reduce {
            group_key,
            aggregates,
            ..
        } => group_key
            .iter()
            .chain(aggregates.iter().map(|a| &a.expr))
            .collect(),
        _ => vec![],
    };
    if let Some(e) = scalars.into_iter().find(|e| e.contains_mz_now()) {
        return Err(mz_now_misplaced(&format!("mz_now() in {e}")));
    }
    expr.children().into_iter().try_for_each(check_mz_now)
}

/// How a plan's `mz_now()` is computed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Now {
    /// Maintained (MV, index, SUBSCRIBE): comparisons with the row in a filter become
    /// temporal filters; `mz_now()` anywhere else is refused.
    Maintained,
    /// One shot (a SELECT's plan, as EXPLAIN shows it before the peek binds
    /// `mz_now()` to the query's timestamp): an ordinary expression. The plan is
    /// rendered in a dataflow that computes its result at a single time (a peek's
    /// `until` is its timestamp + 1), so every input's updates are at that time.
    OneShot,
}

/// Lowers optimized MIR to LIR.
pub fn plan_to_lir(expr: &MirRelationExpr) -> Result<Plan, PlanError> {
    check_mz_now(expr)?;
    plan_node(expr, Now::Maintained)
}

/// Lowers optimized MIR of a one-shot query to LIR: a peek's (with `mz_now()` bound),
/// or EXPLAIN's of a SELECT (leaving `mz_now()` an expression for the peek to bind).
pub fn plan_to_lir_one_shot(expr: &MirRelationExpr) -> Result<Plan, PlanError> {
    let mut plan = plan_node(expr, Now::OneShot)?;
    refine_one_shot(&mut plan, &mut BTreeMap::new(), false);
    Ok(plan)
}

/// Fits a plan's reductions and TopKs to a one-shot dataflow, and says whether the
/// plan's updates are all positive (no retractions).
///
/// A one-shot dataflow computes its result once, so buckets (which make later
/// changes cheap) only cost; and its inputs are positive, all at one time (the
/// sources read consolidated snapshots), so a min/max or TopK whose input stays
/// positive can be `monotonic`. Positive are: `Get`, constants without negative
/// rows, and reductions, TopKs and thresholds (each emits its positive result once,
/// whatever its input) outside a `LetRec` (whose rounds retract); maps, flat maps,
/// joins and unions of positive inputs. A `Negate` is not.
fn refine_one_shot(
    plan: &mut Plan,
    locals: &mut BTreeMap<expr::LocalId, bool>,
    in_letrec: bool,
) -> bool {
    fn refine_reduce(plan: &mut ReducePlan, positive: bool) {
        match plan {
            ReducePlan::Hierarchical {
                aggregates,
                buckets,
                monotonic,
            } => {
                buckets.clear();
                // The difference marks max lanes in a 64-bit mask.
                *monotonic = positive && aggregates.len() <= 64;
            }
            ReducePlan::Collation { parts } => {
                for part in parts {
                    refine_reduce(&mut part.plan, positive);
                }
            }
            _ => {}
        }
    }
    match plan {
        Plan::Constant { rows } => rows
            .as_ref()
            .map_or(true, |rows| rows.iter().all(|(_, d)| *d > 0)),
        Plan::Get { .. } => true,
        Plan::GetLocal { id, .. } => locals.get(id).copied().unwrap_or(false),
        Plan::Let { id, value, body } => {
            let positive = refine_one_shot(value, locals, in_letrec);
            let shadowed = locals.insert(*id, positive);
            let result = refine_one_shot(body, locals, in_letrec);
            match shadowed {
                Some(previous) => locals.insert(*id, previous),
                None => locals.remove(id),
            };
            result
        }
        Plan::LetRec {
            ids, values, body, ..
        } => {
            let shadowed: Vec<_> = ids
                .iter()
                .map(|id| (*id, locals.insert(*id, false)))
                .collect();
            for value in values {
                refine_one_shot(value, locals, true);
            }
            refine_one_shot(body, locals, true);
            for (id, previous) in shadowed {
                match previous {
                    Some(previous) => locals.insert(id, previous),
                    None => locals.remove(&id),
                };
            }
            false
        }
        Plan::Mfp { input, .. } | Plan::FlatMap { input, .. } => {
            refine_one_shot(input, locals, in_letrec)
        }
        Plan::TemporalFilter { input, .. } | Plan::Negate { input } => {
            refine_one_shot(input, locals, in_letrec);
            false
        }
        Plan::Threshold { input } => {
            refine_one_shot(input, locals, in_letrec);
            !in_letrec
        }
        Plan::Reduce { input, plan, .. } => {
            let positive = refine_one_shot(input, locals, in_letrec);
            refine_reduce(plan, positive);
            !in_letrec
        }
        Plan::TopK { input, plan } => {
            let positive = refine_one_shot(input, locals, in_letrec);
            plan.buckets.clear();
            plan.monotonic = positive && plan.limit.is_some();
            !in_letrec
        }
        Plan::Join { inputs, .. } | Plan::Union { inputs } => {
            // Every input is refined, positive or not.
            let positive: Vec<bool> = inputs
                .iter_mut()
                .map(|input| refine_one_shot(input, locals, in_letrec))
                .collect();
            positive.into_iter().all(|p| p)
        }
    }
}

fn plan_node(expr: &MirRelationExpr, now: Now) -> Result<Plan, PlanError> {
    Ok(match expr {
        MirRelationExpr::Constant { rows, .. } => Plan::Constant { rows: rows.clone() },
        MirRelationExpr::Let { id, value, body } => Plan::Let {
            id: *id,
            value: Box::new(plan_node(value, now)?),
            body: Box::new(plan_node(body, now)?),
        },
        MirRelationExpr::LetRec {
            ids,
            values,
            limit,
            body,
        } if values.iter().any(contains_letrec) => {
            return Err(PlanError::unsupported(
                "a recursive query inside the binding of another",
            ))
        }
        MirRelationExpr::LetRec {
            ids,
            values,
            limit,
            body,
        } => Plan::LetRec {
            ids: ids.clone(),
            values: values
                .iter()
                .map(|v| plan_node(v, now))
                .collect::<Result<_, _>>()?,
            limit: *limit,
            body: Box::new(plan_node(body, now)?),
        },
        MirRelationExpr::GetLocal { id, typ } => Plan::GetLocal {
            id: *id,
            mfp: MapFilterProject::new(typ.arity()),
        },
        MirRelationExpr::Get { id, typ, .. } => Plan::Get {
            id: *id,
            mfp: MapFilterProject::new(typ.arity()),
        },
        MirRelationExpr::Project { input, outputs } => {
            let mfp = MapFilterProject::new(input.arity()).project(outputs.iter().copied());
            with_mfp(plan_node(input, now)?, mfp)
        }
        MirRelationExpr::Map { input, scalars } => {
            let mfp = MapFilterProject::new(input.arity()).map(scalars.iter().cloned());
            with_mfp(plan_node(input, now)?, mfp)
        }
        MirRelationExpr::Filter { input, predicates } => {
            // Predicates comparing mz_now() with the row become a temporal filter
            // above the others.
            let (plain, bounds) = match now {
                Now::Maintained => expr::temporal::extract_temporal(predicates.clone())
                    .map_err(|what| mz_now_misplaced(&what))?,
                Now::OneShot => (predicates.clone(), Default::default()),
            };
            let mfp = MapFilterProject::new(input.arity()).filter(plain);
            let planned = with_mfp(plan_node(input, now)?, mfp);
            if bounds.is_empty() {
                planned
            } else {
                Plan::TemporalFilter {
                    input: Box::new(planned),
                    bounds,
                }
            }
        }
        MirRelationExpr::FlatMap { input, func, exprs } => Plan::FlatMap {
            input: Box::new(plan_node(input, now)?),
            func: func.clone(),
            exprs: exprs.clone(),
            mfp: MapFilterProject::new(input.arity() + func.output_types().len()),
        },
        MirRelationExpr::Join {
            inputs,
            equivalences,
        } => plan_join(inputs, equivalences, now)?,
        MirRelationExpr::Reduce {
            input,
            group_key,
            aggregates,
        } => Plan::Reduce {
            input: Box::new(plan_node(input, now)?),
            key: group_key.clone(),
            plan: if aggregates.is_empty() {
                ReducePlan::Distinct
            } else {
                let columns = input.typ().column_types;
                let args: Vec<_> = aggregates
                    .iter()
                    .map(|a| a.expr.typ(&columns).scalar_type)
                    .collect();
                ReducePlan::for_aggregates(aggregates.clone(), &args)
            },
        },
        MirRelationExpr::TopK {
            input,
            group_key,
            order_key,
            limit,
            offset,
        } => Plan::TopK {
            input: Box::new(plan_node(input, now)?),
            plan: expr::plan::TopKPlan {
                group_key: group_key.clone(),
                order_key: order_key.clone(),
                limit: *limit,
                offset: *offset,
                // Buckets pay off only when a group keeps fewer rows than it has.
                buckets: if limit.is_some() {
                    expr::plan::HIERARCHICAL_BUCKETS.to_vec()
                } else {
                    Vec::new()
                },
                monotonic: false,
            },
        },
        MirRelationExpr::Negate { input } => Plan::Negate {
            input: Box::new(plan_node(input, now)?),
        },
        MirRelationExpr::Threshold { input } => Plan::Threshold {
            input: Box::new(plan_node(input, now)?),
        },
        MirRelationExpr::Union { base, inputs } => Plan::Union {
            inputs: std::iter::once(&**base)
                .chain(inputs)
                .map(|i| plan_node(i, now))
                .collect::<Result<_, _>>()?,
        },
    })
}

/// Applies `mfp` after `plan`, fusing it into the plan's own MFP where it has one.
fn with_mfp(plan: Plan, mfp: MapFilterProject) -> Plan {
    if mfp.is_identity() {
        return plan;
    }
    match plan {
        Plan::Get { id, mfp: inner } => Plan::Get {
            id,
            mfp: inner.then(&mfp),
        },
        Plan::Mfp { input, mfp: inner } => Plan::Mfp {
            input,
            mfp: inner.then(&mfp),
        },
        Plan::FlatMap {
            input,
            func,
            exprs,
            mfp: inner,
        } => Plan::FlatMap {
            input,
            func,
            exprs,
            mfp: inner.then(&mfp),
        },
        Plan::Join { inputs, plan } => Plan::Join {
            inputs,
            plan: plan.then(&mfp),
        },
        other => Plan::Mfp {
            input: Box::new(other),
            mfp,
        },
    }
}

/// Orders the inputs greedily: start from an input with a filter (likely the most
/// selective), then repeatedly add an input that shares an equivalence with those
/// joined so far, so no stage is a cross product when a connected order exists.
fn join_order(
    inputs: &[MirRelationExpr],
    equivalences: &[Vec<MirScalarExpr>],
    offsets: &[usize],
    arities: &[usize],
    first: Option<usize>,
) -> Vec<usize> {
    let input_of = |c: usize| {
        (0..inputs.len())
            .find(|i| offsets[*i] <= c && c < offsets[*i] + arities[*i])
            .unwrap_or(0)
    };
    let inputs_of = |e: &MirScalarExpr| -> Vec<usize> {
        let mut v: Vec<usize> = e.support().into_iter().map(input_of).collect();
        v.sort();
        v.dedup();
        v
    };
    let n = inputs.len();
    let first = first.unwrap_or_else(|| {
        (0..n)
            .find(|i| is_filtered(&inputs[*i]) && arities[*i] > 0)
            .unwrap_or(0)
    });
    let mut order = vec![first];
    while order.len() < n {
        let connected = (0..n).filter(|i| !order.contains(i)).find(|candidate| {
            equivalences.iter().any(|class| {
                let touches_candidate = class.iter().any(|e| inputs_of(e) == vec![*candidate]);
                let touches_joined = class.iter().any(|e| {
                    let ins = inputs_of(e);
                    !ins.is_empty() && ins.iter().all(|i| order.contains(i))
                });
                touches_candidate && touches_joined
            })
        });
        let next = connected.unwrap_or_else(|| {
            (0..n)
                .find(|i| !order.contains(i))
                .expect("an input remains")
        });
        order.push(next);
    }
    order
}

/// Whether `e` filters its input (under any maps and projects).
fn is_filtered(e: &MirRelationExpr) -> bool {
    match e {
        MirRelationExpr::Filter { .. } => true,
        MirRelationExpr::Project { input, .. } | MirRelationExpr::Map { input, .. } => {
            is_filtered(input)
        }
        _ => false,
    }
}

/// The most inputs a maintained delta join has: its `n` paths have `n - 1` half joins
/// each, so a 64-way join (SQLite's select5) would render 4,032 operators per
/// dataflow where a linear join has 63 stages.
const MAX_DELTA_INPUTS: usize = 8;

/// Plans a join: as a delta join when its inputs are connected by keys and it either
/// has three to [`MAX_DELTA_INPUTS`] inputs (no intermediate result is arranged) or is
/// one-shot (a single path suffices, see below); else as a linear join.
///
/// A one-shot dataflow's inputs all change at one time, where a delta join's paths
/// other than the last-ranked input's look the others up "before" that time and find
/// nothing: its plan keeps only the path from the input a linear join would start
/// from, a chain of lookups with no arrangement of the stream.
fn plan_join(
    inputs: &[MirRelationExpr],
    equivalences: &[Vec<MirScalarExpr>],
    now: Now,
) -> Result<Plan, PlanError> {
    let arities: Vec<usize> = inputs.iter().map(|i| i.arity()).collect();
    let offsets: Vec<usize> = arities
        .iter()
        .scan(0, |acc, a| {
            let o = *acc;
            *acc += a;
            Some(o)
        })
        .collect();
    let order = join_order(inputs, equivalences, &offsets, &arities, None);
    let linear = plan_join_path(equivalences, &offsets, &arities, &order);
    let keyed = |path: &LinearJoinPlan| path.stages.iter().all(|s| !s.stream_key.is_empty());
    let plan = if now == Now::OneShot && inputs.len() >= 2 && keyed(&linear) {
        JoinPlan::Delta(DeltaJoinPlan {
            paths: vec![linear],
        })
    } else if (3..=MAX_DELTA_INPUTS).contains(&inputs.len()) {
        // The paths in rank order: the linear order's first input last, so that a
        // one-input change to it looks every other input up as of its time.
        let paths: Vec<LinearJoinPlan> = order
            .iter()
            .rev()
            .map(|&source| {
                let order = join_order(inputs, equivalences, &offsets, &arities, Some(source));
                plan_join_path(equivalences, &offsets, &arities, &order)
            })
            .collect();
        if paths.iter().all(keyed) {
            JoinPlan::Delta(DeltaJoinPlan { paths })
        } else {
            JoinPlan::Linear(linear)
        }
    } else {
        JoinPlan::Linear(linear)
    };
    let inputs = inputs
        .iter()
        .map(|i| plan_node(i, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan::Join { inputs, plan })
}

/// The stages of a join that starts from `order[0]` and adds the inputs in `order`,
/// with the final filter (equivalences the keys did not enforce) and projection back
/// to the inputs' column order.
fn plan_join_path(
    equivalences: &[Vec<MirScalarExpr>],
    offsets: &[usize],
    arities: &[usize],
    order: &[usize],
) -> LinearJoinPlan {
    let total: usize = arities.iter().sum();
    // Where each original column sits in the stream (inputs concatenated in `order`).
    let mut stream_position = vec![0; total];
    let mut next = 0;
    for &i in order {
        for c in 0..arities[i] {
            stream_position[offsets[i] + c] = next;
            next += 1;
        }
    }
    let to_stream = |e: &MirScalarExpr| {
        let mut e = e.clone();
        e.permute(&stream_position);
        e
    };
    let mut stages = Vec::new();
    let mut used = vec![false; equivalences.len()];
    let mut stream_width = arities[order[0]];
    for &k in &order[1..] {
        let (lo, hi) = (offsets[k], offsets[k] + arities[k]);
        let mut stream_key = Vec::new();
        let mut lookup_key = Vec::new();
        for (ci, class) in equivalences.iter().enumerate() {
            // A member over the stream's columns only, and one over input k's only.
            let in_stream = class.iter().map(to_stream).find(|e| {
                let s = e.support();
                !s.is_empty() && s.iter().all(|c| *c < stream_width)
            });
            let in_lookup = class.iter().find(|e| {
                let s = e.support();
                !s.is_empty() && s.iter().all(|c| *c >= lo && *c < hi)
            });
            if let (Some(s), Some(l)) = (in_stream, in_lookup) {
                let mut local = l.clone();
                let map: Vec<usize> = (0..hi).map(|c| c.saturating_sub(lo)).collect();
                local.permute(&map);
                stream_key.push(s);
                lookup_key.push(local);
                if class.len() == 2 {
                    used[ci] = true;
                }
            }
        }
        stages.push(LinearStagePlan {
            lookup_input: k,
            stream_key,
            lookup_key,
        });
        stream_width += arities[k];
    }
    // Equivalences not fully enforced by keys are checked after the join (null-safe).
    let mut residual = Vec::new();
    for (ci, class) in equivalences.iter().enumerate() {
        if used[ci] {
            continue;
        }
        let first = to_stream(&class[0]);
        for other in &class[1..] {
            residual.push(
                first
                    .clone()
                    .call_binary(to_stream(other), expr::BinaryFunc::IsNotDistinctFrom),
            );
        }
    }
    let final_mfp = MapFilterProject::new(total)
        .filter(residual)
        .project(stream_position.clone());
    LinearJoinPlan {
        source: order[0],
        stages,
        final_mfp,
    }
}
