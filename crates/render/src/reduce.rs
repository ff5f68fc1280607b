//! `Plan::Reduce`: `Distinct` keeps one copy of each key; `Basic` recomputes every
//! aggregate of a group from the group's values whenever the group changes.

use expr::plan::ReducePlan;
use expr::{AggregateExpr, MirScalarExpr, RowArena};
use repr::{Datum, Diff, EvalError, Row, RowPacker};

use crate::join::key_by;
use crate::{split_results, CollectionBundle};

pub fn render_reduce(
    input: CollectionBundle<'_>,
    key: Vec<MirScalarExpr>,
    plan: ReducePlan,
) -> CollectionBundle<'_> {
    match plan {
        ReducePlan::Distinct => {
            let (keyed, key_errs) = key_by(input.oks, key, false);
            let oks = keyed.map(|(k, _row)| k).distinct_core::<Diff>();
            CollectionBundle {
                oks,
                errs: input.errs.concat(key_errs),
            }
        }
        ReducePlan::Basic { aggregates } => render_basic(input, key, aggregates),
    }
}

fn render_basic(
    input: CollectionBundle<'_>,
    key: Vec<MirScalarExpr>,
    aggregates: Vec<AggregateExpr>,
) -> CollectionBundle<'_> {
    // Key each row and evaluate the aggregates' arguments into the value.
    let args: Vec<MirScalarExpr> = aggregates.iter().map(|a| a.expr.clone()).collect();
    let keyed = input.oks.flat_map(move |row| {
        let arena = RowArena::new();
        let datums: Vec<Datum> = row.iter().collect();
        let eval = |exprs: &[MirScalarExpr]| -> Result<Row, EvalError> {
            let mut packer = RowPacker::new();
            for e in exprs {
                packer.push(e.eval(&datums, &arena)?);
            }
            Ok(packer.finish())
        };
        Some(eval(&key).and_then(|k| Ok((k, eval(&args)?))))
    });
    let arg_errs = keyed.clone().flat_map(|r| r.err());
    let keyed = keyed.flat_map(|r| r.ok());
    let reduced = keyed.reduce_named(
        "ReduceBasic",
        move |_key, vals: &[(&Row, Diff)], out: &mut Vec<(Result<Row, EvalError>, Diff)>| {
            out.push((aggregate_group(&aggregates, vals), 1));
        },
    );
    let results = reduced.map(|(key, aggs)| {
        aggs.map(|aggs| {
            let mut packer = RowPacker::new();
            packer.extend_from_row(&key);
            packer.extend_from_row(&aggs);
            packer.finish()
        })
    });
    let out = split_results(results);
    let errs = input.errs.concat(arg_errs).concat(out.errs);
    CollectionBundle { oks: out.oks, errs }
}

/// Computes every aggregate of one group from its values (rows of argument values).
///
/// The group's values are its whole current multiset (differential hands the reducer
/// the accumulated input), so retractions need no special handling: an aggregate is
/// recomputed from what remains.
fn aggregate_group(aggregates: &[AggregateExpr], vals: &[(&Row, Diff)]) -> Result<Row, EvalError> {
    let unpacked: Vec<(Vec<Datum>, Diff)> = vals.iter().map(|(v, d)| (v.unpack(), *d)).collect();
    let arena = RowArena::new();
    let mut packer = RowPacker::new();
    for (i, agg) in aggregates.iter().enumerate() {
        let column = unpacked.iter().map(|(datums, d)| (datums[i], *d));
        let value = if agg.distinct {
            let mut distinct: Vec<Datum> = column
                .filter(|(_, d)| *d > 0)
                .map(|(datum, _)| datum)
                .collect();
            distinct.sort();
            distinct.dedup();
            agg.func
                .eval(distinct.into_iter().map(|d| (d, 1)), &arena)?
        } else {
            agg.func.eval(column, &arena)?
        };
        packer.push(value);
    }
    Ok(packer.finish())
}
