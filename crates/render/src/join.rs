//! `Plan::Join`: a `JoinPlan::Delta` renders in [`crate::delta_join`]; a
//! `LinearJoinPlan` here: each stage arranges the stream so far and the
//! next input by their keys and joins the arrangements with [`ChunkedJoin`], which
//! bounds the work of each step even within one key.
//!
//! Keys match NULL to NULL (MIR join equivalences are null-safe); the planner filters
//! NULLs out before a join where SQL `=` demands it. The join's errors are the distinct
//! errors of its inputs and of its key expressions (each error once).

use differential_dataflow::operators::join::join_with_tactic;
use differential_dataflow::{AsCollection, VecCollection};
use expr::plan::{JoinPlan, LinearJoinPlan};
use expr::{MirScalarExpr, RowArena};
use repr::{Datum, Diff, Row, RowPacker};

use crate::join_tactic::ChunkedJoin;
use crate::mfp::render_mfp;
use crate::{CollectionBundle, ErrCollection, OkCollection, RenderTime};

/// Keys each row by `key`, dropping rows with a NULL in the key.
pub fn key_by<'s, T: RenderTime>(
    rows: OkCollection<'s, T>,
    key: Vec<MirScalarExpr>,
    drop_nulls: bool,
) -> (VecCollection<'s, T, (Row, Row), Diff>, ErrCollection<'s, T>) {
    let results = rows.flat_map(move |row| {
        let arena = RowArena::new();
        let datums: Vec<Datum> = row.iter().collect();
        let mut packer = RowPacker::new();
        for k in &key {
            match k.eval(&datums, &arena) {
                Ok(Datum::Null) if drop_nulls => return None,
                Ok(d) => packer.push(d),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok((packer.finish(), row.clone())))
    });
    let oks = results.clone().flat_map(|r| r.ok());
    let errs = results.flat_map(|r| r.err());
    (oks, errs)
}

pub fn render_join<'s, T: RenderTime>(
    inputs: Vec<CollectionBundle<'s, T>>,
    plan: &JoinPlan,
) -> CollectionBundle<'s, T> {
    match plan {
        JoinPlan::Linear(plan) => render_linear_join(inputs, plan),
        JoinPlan::Delta(plan) => T::render_delta_join(inputs, plan),
    }
}

pub fn render_linear_join<'s, T: RenderTime>(
    inputs: Vec<CollectionBundle<'s, T>>,
    plan: &LinearJoinPlan,
) -> CollectionBundle<'s, T> {
    let mut errs: Vec<ErrCollection<'s, T>> = inputs.iter().map(|b| b.errs.clone()).collect();
    let mut stream = inputs[plan.source].oks.clone();
    for stage in &plan.stages {
        let (stream_keyed, stream_errs) = key_by(stream, stage.stream_key.clone(), false);
        let (lookup_keyed, lookup_errs) = key_by(
            inputs[stage.lookup_input].oks.clone(),
            stage.lookup_key.clone(),
            false,
        );
        errs.push(stream_errs);
        errs.push(lookup_errs);
        let stream_arranged = stream_keyed.arrange_by_key_named("JoinStreamArrangement");
        let lookup_arranged = lookup_keyed.arrange_by_key_named("JoinLookupArrangement");
        stream = join_with_tactic(
            stream_arranged,
            lookup_arranged,
            "Join",
            ChunkedJoin::default(),
        )
        .as_collection();
    }
    // Each error once: a join's inputs are often uses of the same `Let` (decorrelation
    // joins a binding with a projection of itself), and without this every error
    // would be copied once per path through the plan's DAG of bindings, a number that
    // grows exponentially with the nesting of subqueries and outer joins.
    let scope = stream.scope();
    let errs = differential_dataflow::collection::concatenate(scope, errs).distinct_core::<Diff>();
    let joined = CollectionBundle { oks: stream, errs };
    render_mfp(joined, plan.final_mfp.clone())
}
