//! `Plan::Reduce` (see `expr::plan::ReducePlan`): `Distinct` keeps one copy of each
//! key; `Basic` recomputes every aggregate of a group from the group's values whenever
//! the group changes; `Accumulable` carries counts and sums in the difference;
//! `Hierarchical` computes min/max in stages over buckets of each group; `Collation`
//! computes each kind of aggregate its own way and puts each group's row together.

use differential_dataflow::Hashable;
use expr::plan::{CollationPart, ReducePlan};
use expr::{AggregateExpr, AggregateFunc, MirScalarExpr, RowArena};
use repr::{Datum, Diff, EvalError, Row, RowPacker};

use crate::join::key_by;
use crate::{split_results, CollectionBundle, RenderTime};

/// Per group key, the aggregates' values (or the error computing them).
type GroupResults<'s, T> =
    differential_dataflow::VecCollection<'s, T, (Row, Result<Row, EvalError>), Diff>;
/// A collation part's result for a group: the part's index and its aggregates.
type PartResult = Result<(u64, Row), EvalError>;
/// Rows keyed by their group key, with the aggregates' argument values.
type Keyed<'s, T> = differential_dataflow::VecCollection<'s, T, (Row, Row), Diff>;

pub fn render_reduce<T: RenderTime>(
    input: CollectionBundle<'_, T>,
    key: Vec<MirScalarExpr>,
    plan: ReducePlan,
) -> CollectionBundle<'_, T> {
    if let ReducePlan::Distinct = plan {
        let (keyed, key_errs) = key_by(input.oks, key, false);
        let oks = keyed.map(|(k, _row)| k).distinct_core::<Diff>();
        return CollectionBundle {
            oks,
            errs: input.errs.concat(key_errs),
        };
    }
    let args: Vec<MirScalarExpr> = aggregates_of(&plan).into_iter().map(|a| a.expr).collect();
    // Key each row and evaluate the aggregates' arguments into the value, once for
    // every strategy.
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
    let results = reduce_keyed(keyed.flat_map(|r| r.ok()), plan).map(|(key, aggs)| {
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

/// A plan's aggregates in output order.
fn aggregates_of(plan: &ReducePlan) -> Vec<AggregateExpr> {
    match plan {
        ReducePlan::Distinct => Vec::new(),
        ReducePlan::Basic { aggregates }
        | ReducePlan::Accumulable { aggregates }
        | ReducePlan::Hierarchical { aggregates, .. } => aggregates.clone(),
        ReducePlan::Collation { parts } => {
            let mut placed: Vec<(usize, AggregateExpr)> = parts
                .iter()
                .flat_map(|part| {
                    part.positions
                        .iter()
                        .copied()
                        .zip(aggregates_of(&part.plan))
                })
                .collect();
            placed.sort_by_key(|(position, _)| *position);
            placed.into_iter().map(|(_, a)| a).collect()
        }
    }
}

/// The aggregates of each group of `keyed`, whose values are the aggregates' arguments.
fn reduce_keyed<'s, T: RenderTime>(keyed: Keyed<'s, T>, plan: ReducePlan) -> GroupResults<'s, T> {
    match plan {
        ReducePlan::Distinct => keyed
            .map(|(k, _)| k)
            .distinct_core::<Diff>()
            .map(|k| (k, Ok(Row::default()))),
        ReducePlan::Basic { aggregates } => keyed.reduce_named(
            "ReduceBasic",
            move |_key, vals: &[(&Row, Diff)], out: &mut Vec<(Result<Row, EvalError>, Diff)>| {
                out.push((aggregate_group(&aggregates, vals), 1));
            },
        ),
        ReducePlan::Accumulable { aggregates } => render_accumulable(keyed, aggregates),
        ReducePlan::Hierarchical {
            aggregates,
            monotonic: true,
            ..
        } => render_monotonic(keyed, aggregates),
        ReducePlan::Hierarchical {
            aggregates,
            buckets,
            ..
        } => render_hierarchical(keyed, aggregates, buckets),
        ReducePlan::Collation { parts } => render_collation(keyed, parts),
    }
}

/// Min/max in stages: per (group, bucket of the value's hash) at each level, then per
/// group. A level's results are aggregated again at the next, which is sound because
/// these aggregates of a set equal their aggregates of its parts' results (a part
/// with only NULLs yields NULL, which the next level ignores as it would the values).
fn render_hierarchical<'s, T: RenderTime>(
    keyed: Keyed<'s, T>,
    aggregates: Vec<AggregateExpr>,
    buckets: Vec<u64>,
) -> GroupResults<'s, T> {
    let mut stage = keyed.map(|(k, vals)| {
        let hash = vals.hashed();
        ((k, hash), vals)
    });
    let mut errs: Option<GroupResults<'s, T>> = None;
    for bucket in buckets {
        let aggregates = aggregates.clone();
        let reduced = stage
            .map(move |((k, hash), vals)| ((k, hash % bucket.max(1)), vals))
            .reduce_named(
                "ReduceHierarchical",
                move |_key,
                      vals: &[(&Row, Diff)],
                      out: &mut Vec<(Result<Row, EvalError>, Diff)>| {
                    out.push((aggregate_group(&aggregates, vals), 1));
                },
            );
        let level_errs = reduced
            .clone()
            .flat_map(|((k, _), r)| r.err().map(|e| (k, Err(e))));
        errs = Some(match errs {
            Some(errs) => errs.concat(level_errs),
            None => level_errs,
        });
        stage = reduced.flat_map(|(k, r)| r.ok().map(|partial| (k, partial)));
    }
    let results = stage.map(|((k, _), partial)| (k, partial)).reduce_named(
        "ReduceHierarchical",
        move |_key, vals: &[(&Row, Diff)], out: &mut Vec<(Result<Row, EvalError>, Diff)>| {
            out.push((aggregate_group(&aggregates, vals), 1));
        },
    );
    match errs {
        Some(errs) => results.concat(errs),
        None => results,
    }
}

/// Min/max of a retraction-free input in the difference: every value row becomes the
/// difference of its key (an [`Extremes`]), which differential adds up lane by lane as
/// the least or greatest non-null value, so each group is one arranged entry.
fn render_monotonic<'s, T: RenderTime>(
    keyed: Keyed<'s, T>,
    aggregates: Vec<AggregateExpr>,
) -> GroupResults<'s, T> {
    let maxes = aggregates
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a.func, AggregateFunc::Max | AggregateFunc::BoolOr))
        .fold(0u64, |mask, (i, _)| mask | (1 << i.min(63)));
    keyed
        .explode(move |(k, vals)| {
            Some((
                k,
                Extremes {
                    values: vals,
                    maxes,
                    retracted: false,
                },
            ))
        })
        .count_core::<Diff>()
        .map(|(key, extremes)| {
            let result = if extremes.retracted {
                Err(EvalError::Internal(
                    "a monotonic reduction saw a retraction".into(),
                ))
            } else {
                Ok(extremes.values)
            };
            (key, result)
        })
}

/// The difference of a monotonic min/max ([`render_monotonic`]): per aggregate (lane),
/// the least non-null value seen, or the greatest for the lanes set in `maxes`. Adding
/// two keeps each lane's extreme; multiplying by a positive count changes nothing, and
/// by a negative one (a retraction) marks it `retracted`. Empty `values` is zero.
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
struct Extremes {
    values: Row,
    maxes: u64,
    retracted: bool,
}

impl differential_dataflow::difference::IsZero for Extremes {
    fn is_zero(&self) -> bool {
        self.values.iter().next().is_none() && !self.retracted
    }
}

impl differential_dataflow::difference::Semigroup for Extremes {
    fn plus_equals(&mut self, rhs: &Self) {
        self.retracted |= rhs.retracted;
        if rhs.values.iter().next().is_none() {
            return;
        }
        if self.values.iter().next().is_none() {
            self.values = rhs.values.clone();
            self.maxes = rhs.maxes;
            return;
        }
        let combined = Row::pack(self.values.iter().zip(rhs.values.iter()).enumerate().map(
            |(lane, (mine, theirs))| match (mine.is_null(), theirs.is_null()) {
                (true, _) => theirs,
                (_, true) => mine,
                _ if self.maxes >> lane.min(63) & 1 == 1 => mine.max(theirs),
                _ => mine.min(theirs),
            },
        ));
        self.values = combined;
    }
}

impl differential_dataflow::difference::Monoid for Extremes {
    fn zero() -> Self {
        Extremes::default()
    }
}

impl differential_dataflow::difference::Multiply<Diff> for Extremes {
    type Output = Extremes;
    fn multiply(mut self, rhs: &Diff) -> Extremes {
        if *rhs <= 0 {
            self.retracted = true;
        }
        self
    }
}

/// Each part reduced on its own over its aggregates' arguments; a group's results are
/// then put together in aggregate order (an error in any part is the group's error).
fn render_collation<'s, T: RenderTime>(
    keyed: Keyed<'s, T>,
    parts: Vec<CollationPart>,
) -> GroupResults<'s, T> {
    let width: usize = parts.iter().map(|p| p.positions.len()).sum();
    let mut tagged: Option<differential_dataflow::VecCollection<'s, T, _, Diff>> = None;
    for (index, part) in parts.iter().enumerate() {
        let positions = part.positions.clone();
        let projected = keyed.clone().map(move |(k, vals)| {
            let datums = vals.unpack();
            let part = Row::pack(positions.iter().map(|p| datums[*p]));
            drop(datums);
            (k, part)
        });
        let results = reduce_keyed(projected, part.plan.clone())
            .map(move |(k, r)| (k, r.map(|row| (index as u64, row))));
        tagged = Some(match tagged {
            Some(tagged) => tagged.concat(results),
            None => results,
        });
    }
    let Some(tagged) = tagged else {
        return keyed
            .filter(|_| false)
            .map(|(k, _)| (k, Ok(Row::default())));
    };
    tagged.reduce_named(
        "ReduceCollation",
        move |_key, vals: &[(&PartResult, Diff)], out: &mut Vec<(Result<Row, EvalError>, Diff)>| {
            if let Some(err) = vals.iter().find_map(|(r, _)| r.as_ref().err()) {
                out.push((Err(err.clone()), 1));
                return;
            }
            let mut slots = vec![Datum::Null; width];
            let mut seen = 0;
            for (part_row, _) in vals {
                let Ok((index, row)) = part_row else { continue };
                let positions = &parts[*index as usize].positions;
                for (position, datum) in positions.iter().zip(row.iter()) {
                    slots[*position] = datum;
                }
                seen += 1;
            }
            // Every part has a result for every group present in the input.
            if seen == parts.len() {
                out.push((Ok(Row::pack_slice(&slots)), 1));
            }
        },
    )
}

/// `count` and `sum` in the difference: every row becomes `(key, lanes)` where the
/// lanes are `[1, (is_not_null, value) per aggregate]` times the row's multiplicity;
/// differential adds the lanes of a key up, and `count` hands each key's total on. A
/// group is present while its row count is not zero.
fn render_accumulable<'s, T: RenderTime>(
    keyed: Keyed<'s, T>,
    aggregates: Vec<AggregateExpr>,
) -> GroupResults<'s, T> {
    let lanes = keyed.explode(|(k, vals)| {
        let mut lanes = Vec::with_capacity(1 + 2 * vals.iter().count());
        lanes.push(1i128);
        for datum in vals.iter() {
            let (present, value) = match datum {
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
        Some((k, Lanes(lanes)))
    });
    let funcs: Vec<expr::AggregateFunc> = aggregates.iter().map(|a| a.func.clone()).collect();
    lanes.count_core::<Diff>().map(move |(key, Lanes(lanes))| {
        let mut packer = RowPacker::new();
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
        (key, result)
    })
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

#[cfg(test)]
mod tests {
    use differential_dataflow::difference::{IsZero, Multiply, Semigroup};

    use super::*;

    fn extremes(values: &[Datum], maxes: u64) -> Extremes {
        Extremes {
            values: Row::pack_slice(values),
            maxes,
            retracted: false,
        }
    }

    #[test]
    fn extremes_keep_each_lanes_min_or_max_and_skip_nulls() {
        // Lane 0 is a min, lane 1 a max, lane 2 a min that starts NULL.
        let mut acc = Extremes::default();
        assert!(acc.is_zero());
        acc.plus_equals(&extremes(
            &[Datum::Int32(5), Datum::Int32(5), Datum::Null],
            0b010,
        ));
        acc.plus_equals(&extremes(
            &[Datum::Int32(3), Datum::Int32(2), Datum::Null],
            0b010,
        ));
        acc.plus_equals(&extremes(
            &[Datum::Null, Datum::Int32(9), Datum::Int32(7)],
            0b010,
        ));
        assert!(!acc.is_zero());
        assert_eq!(
            acc.values,
            Row::pack_slice(&[Datum::Int32(3), Datum::Int32(9), Datum::Int32(7)])
        );
        assert!(!acc.retracted);
        // A positive multiplicity changes nothing; a retraction poisons the sum.
        let same = acc.clone().multiply(&4);
        assert_eq!(same, acc);
        let retracted =
            extremes(&[Datum::Int32(1), Datum::Int32(1), Datum::Null], 0b010).multiply(&-1);
        acc.plus_equals(&retracted);
        assert!(acc.retracted);
    }
}
