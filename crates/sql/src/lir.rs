//! MIR → LIR: choosing how each operator is rendered.
//!
//! Maps, filters and projects fuse into one [`MapFilterProject`] pushed as far down as
//! possible (into the persist source of a `Get`, or the final step of a join). Joins
//! become linear joins over their inputs in order; reductions without aggregates
//! become `Distinct`.

use expr::plan::{LinearJoinPlan, LinearStagePlan, ReducePlan};
use expr::{MapFilterProject, MirRelationExpr, MirScalarExpr, Plan};

use crate::error::PlanError;

/// Lowers optimized MIR to LIR.
pub fn plan_to_lir(expr: &MirRelationExpr) -> Result<Plan, PlanError> {
    Ok(match expr {
        MirRelationExpr::Constant { rows, .. } => Plan::Constant { rows: rows.clone() },
        MirRelationExpr::Get { id, typ, .. } => Plan::Get {
            id: *id,
            mfp: MapFilterProject::new(typ.arity()),
        },
        MirRelationExpr::Project { input, outputs } => {
            let mfp = MapFilterProject::new(input.arity()).project(outputs.iter().copied());
            with_mfp(plan_to_lir(input)?, mfp)
        }
        MirRelationExpr::Map { input, scalars } => {
            let mfp = MapFilterProject::new(input.arity()).map(scalars.iter().cloned());
            with_mfp(plan_to_lir(input)?, mfp)
        }
        MirRelationExpr::Filter { input, predicates } => {
            let mfp = MapFilterProject::new(input.arity()).filter(predicates.iter().cloned());
            with_mfp(plan_to_lir(input)?, mfp)
        }
        MirRelationExpr::Join {
            inputs,
            equivalences,
        } => plan_join(inputs, equivalences)?,
        MirRelationExpr::Reduce {
            input,
            group_key,
            aggregates,
        } => Plan::Reduce {
            input: Box::new(plan_to_lir(input)?),
            key: group_key.clone(),
            plan: if aggregates.is_empty() {
                ReducePlan::Distinct
            } else {
                ReducePlan::Basic {
                    aggregates: aggregates.clone(),
                }
            },
        },
        MirRelationExpr::Negate { input } => Plan::Negate {
            input: Box::new(plan_to_lir(input)?),
        },
        MirRelationExpr::Threshold { input } => Plan::Threshold {
            input: Box::new(plan_to_lir(input)?),
        },
        MirRelationExpr::Union { base, inputs } => Plan::Union {
            inputs: std::iter::once(&**base)
                .chain(inputs)
                .map(plan_to_lir)
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
        Plan::Join {
            inputs,
            plan: LinearJoinPlan { stages, final_mfp },
        } => Plan::Join {
            inputs,
            plan: LinearJoinPlan {
                stages,
                final_mfp: final_mfp.then(&mfp),
            },
        },
        other => Plan::Mfp {
            input: Box::new(other),
            mfp,
        },
    }
}

fn plan_join(
    inputs: &[MirRelationExpr],
    equivalences: &[Vec<MirScalarExpr>],
) -> Result<Plan, PlanError> {
    let arities: Vec<usize> = inputs.iter().map(|i| i.arity()).collect();
    let total: usize = arities.iter().sum();
    let mut offset = arities.first().copied().unwrap_or(0);
    let mut stages = Vec::new();
    let mut residual = Vec::new();
    let mut used = vec![false; equivalences.len()];
    for (k, arity) in arities.iter().enumerate().skip(1) {
        let (lo, hi) = (offset, offset + arity);
        let mut stream_key = Vec::new();
        let mut lookup_key = Vec::new();
        for (ci, class) in equivalences.iter().enumerate() {
            let in_stream = class
                .iter()
                .find(|e| e.support().iter().all(|c| *c < lo) && !e.support().is_empty());
            let in_lookup = class.iter().find(|e| {
                !e.support().is_empty() && e.support().iter().all(|c| *c >= lo && *c < hi)
            });
            if let (Some(s), Some(l)) = (in_stream, in_lookup) {
                let mut local = l.clone();
                let map: Vec<usize> = (0..hi).map(|c| c.saturating_sub(lo)).collect();
                local.permute(&map);
                stream_key.push(s.clone());
                lookup_key.push(local);
                if class.len() == 2 && !used[ci] {
                    used[ci] = true;
                    continue;
                }
            }
        }
        stages.push(LinearStagePlan {
            lookup_input: k,
            stream_key,
            lookup_key,
        });
        offset = hi;
    }
    for (ci, class) in equivalences.iter().enumerate() {
        if used[ci] {
            continue;
        }
        for other in &class[1..] {
            residual.push(
                class[0]
                    .clone()
                    .call_binary(other.clone(), expr::BinaryFunc::Eq),
            );
        }
    }
    let final_mfp = MapFilterProject::new(total).filter(residual);
    let inputs = inputs
        .iter()
        .map(plan_to_lir)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan::Join {
        inputs,
        plan: LinearJoinPlan { stages, final_mfp },
    })
}
