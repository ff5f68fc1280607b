//! `Plan::Reduce`: `Distinct` keeps one copy of each key; `Basic` recomputes every
//! aggregate of a group from the group's values whenever the group changes;
//! `Accumulable` carries counts and sums in the difference.

use expr::plan::ReducePlan;
use expr::{AggregateExpr, MirScalarExpr, RowArena};
use repr::{Datum, Diff, EvalError, Row, RowPacker};

use crate::join::key_by;
use crate::{split_results, CollectionBundle, RenderTime};

pub fn render_reduce<T: RenderTime>(
    input: CollectionBundle<'_, T>,
    key: Vec<MirScalarExpr>,
    plan: ReducePlan,
) -> CollectionBundle<'_, T> {
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
        ReducePlan::Accumulable { aggregates } => render_accumulable(input, key, aggregates),
    }
}

/// `count` and `sum` in the difference: every row becomes `(key, lanes)` where the
/// lanes are `[1, (is_not_null, value) per aggregate]` times the row's multiplicity;
/// differential adds the lanes of a key up, and `count` hands each key's total on. A
/// group is present while its row count is not zero.
fn render_accumulable<T: RenderTime>(
    input: CollectionBundle<'_, T>,
    key: Vec<MirScalarExpr>,
    aggregates: Vec<AggregateExpr>,
) -> CollectionBundle<'_, T> {
    let args: Vec<MirScalarExpr> = aggregates.iter().map(|a| a.expr.clone()).collect();
    let keyed = input.oks.flat_map(move |row| {
        let arena = RowArena::new();
        let datums: Vec<Datum> = row.iter().collect();
        let evaluated = (|| -> Result<(Row, Vec<i128>), EvalError> {
            let mut packer = RowPacker::new();
            for e in &key {
                packer.push(e.eval(&datums, &arena)?);
            }
            let mut lanes = Vec::with_capacity(1 + 2 * args.len());
            lanes.push(1i128);
            for e in &args {
                let (present, value) = match e.eval(&datums, &arena)? {
                    Datum::Null => (0, 0),
                    Datum::Int16(v) => (1, i128::from(v)),
                    Datum::Int32(v) => (1, i128::from(v)),
                    Datum::Int64(v) => (1, i128::from(v)),
                    // count of any other type: only presence matters.
                    _ => (1, 0),
                };
                lanes.push(present);
                lanes.push(value);
            }
            Ok((packer.finish(), lanes))
        })();
        Some(evaluated)
    });
    let arg_errs = keyed.clone().flat_map(|r| r.err());
    let lanes = keyed
        .flat_map(|r| r.ok())
        .explode(|(k, lanes)| Some((k, Lanes(lanes))));
    let funcs: Vec<expr::AggregateFunc> = aggregates.iter().map(|a| a.func.clone()).collect();
    let results = lanes.count_core::<Diff>().map(move |(key, Lanes(lanes))| {
        let mut packer = RowPacker::new();
        packer.extend_from_row(&key);
        let result = (|| {
            for (i, func) in funcs.iter().enumerate() {
                let present = lanes.get(1 + 2 * i).copied().unwrap_or(0);
                let sum = lanes.get(2 + 2 * i).copied().unwrap_or(0);
                let count = |n: i128| {
                    i64::try_from(n)
                        .map(Datum::Int64)
                        .map_err(|_| EvalError::OutOfRange("bigint".into()))
                };
                let datum = match func {
                    expr::AggregateFunc::Count => count(present)?,
                    _ if present == 0 => Datum::Null,
                    _ => count(sum)?,
                };
                packer.push(datum);
            }
            Ok(packer.finish())
        })();
        result
    });
    let out = split_results(results);
    let errs = input.errs.concat(arg_errs).concat(out.errs);
    CollectionBundle { oks: out.oks, errs }
}

fn render_basic<T: RenderTime>(
    input: CollectionBundle<'_, T>,
    key: Vec<MirScalarExpr>,
    aggregates: Vec<AggregateExpr>,
) -> CollectionBundle<'_, T> {
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

/// The difference of an accumulable reduction: lanes of 128-bit sums, added lane by
/// lane. Multiplying by a row's multiplicity scales every lane.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
struct Lanes(Vec<i128>);

impl differential_dataflow::difference::IsZero for Lanes {
    fn is_zero(&self) -> bool {
        self.0.iter().all(|lane| *lane == 0)
    }
}

impl differential_dataflow::difference::Semigroup for Lanes {
    fn plus_equals(&mut self, rhs: &Self) {
        if self.0.len() < rhs.0.len() {
            self.0.resize(rhs.0.len(), 0);
        }
        for (lane, add) in self.0.iter_mut().zip(&rhs.0) {
            *lane = lane.wrapping_add(*add);
        }
    }
}

impl differential_dataflow::difference::Monoid for Lanes {
    fn zero() -> Self {
        Lanes(Vec::new())
    }
}

impl differential_dataflow::difference::Abelian for Lanes {
    fn negate(&mut self) {
        for lane in &mut self.0 {
            *lane = lane.wrapping_neg();
        }
    }
}

impl differential_dataflow::difference::Multiply<Diff> for Lanes {
    type Output = Lanes;
    fn multiply(mut self, rhs: &Diff) -> Lanes {
        for lane in &mut self.0 {
            *lane = lane.wrapping_mul(i128::from(*rhs));
        }
        self
    }
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
