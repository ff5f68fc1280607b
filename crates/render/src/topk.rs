//! `Plan::TopK` (see `expr::plan::TopKPlan`): each group's ranking is computed from
//! the group's rows whenever the group changes, after (with buckets) ranking within
//! buckets of the group level by level, so a change re-ranks a bucket, not the group.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use differential_dataflow::{AsCollection, Hashable};
use expr::finishing::compare_rows;
use expr::plan::TopKPlan;
use repr::{Datum, Diff, EvalError, Row};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::CapabilitySet;
use timely::progress::Antichain;

use crate::{CollectionBundle, RenderTime};

pub fn render_topk<T: RenderTime>(
    input: CollectionBundle<'_, T>,
    plan: TopKPlan,
) -> CollectionBundle<'_, T> {
    let group_key = plan.group_key.clone();
    let mut keyed = input.oks.map(move |row| {
        let datums = row.unpack();
        let key = Row::pack(group_key.iter().map(|c| datums[*c]));
        drop(datums);
        (key, row)
    });
    let mut errs = input.errs;
    // A part of a group (a bucket, or what one worker saw) keeps the rows that could be
    // in its group's result.
    let keep = plan.limit.map(|limit| TopKPlan {
        limit: Some(limit.saturating_add(plan.offset)),
        offset: 0,
        buckets: Vec::new(),
        monotonic: false,
        ..plan.clone()
    });
    if let (Some(keep), true) = (keep.clone(), plan.monotonic) {
        let (survivors, retractions) = monotonic_prefilter(keyed, keep);
        keyed = survivors;
        errs = errs.concat(retractions);
    } else if let (Some(keep), false) = (keep, plan.buckets.is_empty()) {
        let mut bucketed = keyed.map(|(key, row)| {
            let hash = row.hashed();
            ((key, hash), row)
        });
        for bucket in plan.buckets.iter().copied() {
            let keep = keep.clone();
            bucketed = bucketed
                .map(move |((key, hash), row)| ((key, hash % bucket.max(1)), row))
                .reduce_named(
                    "TopKBucket",
                    move |_key, rows: &[(&Row, Diff)], out: &mut Vec<(Row, Diff)>| {
                        out.extend(top_k(&keep, rows));
                    },
                );
        }
        keyed = bucketed.map(|((key, _), row)| (key, row));
    }
    let oks = keyed
        .reduce_named(
            "TopK",
            move |_key, rows: &[(&Row, Diff)], out: &mut Vec<(Row, Diff)>| {
                out.extend(top_k(&plan, rows));
            },
        )
        .map(|(_key, row)| row);
    CollectionBundle { oks, errs }
}

/// Rows keyed by their group.
type Keyed<'s, T> = differential_dataflow::VecCollection<'s, T, (Row, Row), Diff>;

/// A monotonic TopK's first step, on each worker without exchanging: per time and
/// group, only the rows ranking within `keep`'s limit among the rows this worker saw
/// go on (pruned as they arrive, so a group holds at most about twice the limit).
/// Sound because the input only grows: a row outside the top of a part of a group is
/// outside the top of the group. A retraction is an error (the plan promised none).
fn monotonic_prefilter<'s, T: RenderTime>(
    keyed: Keyed<'s, T>,
    keep: TopKPlan,
) -> (Keyed<'s, T>, crate::ErrCollection<'s, T>) {
    let limit = keep.limit.unwrap_or(usize::MAX);
    let prune = move |rows: &mut Vec<(Row, Diff)>, keep: &TopKPlan| {
        let refs: Vec<(&Row, Diff)> = rows.iter().map(|(r, d)| (r, *d)).collect();
        let kept = top_k(keep, &refs);
        *rows = kept;
    };
    let results =
        keyed
            .inner
            .unary_frontier(Pipeline, "TopKMonotonic", move |_capability, _info| {
                let mut groups: BTreeMap<(T, Row), Vec<(Row, Diff)>> = BTreeMap::new();
                let mut capabilities = CapabilitySet::new();
                move |(input, frontier), output| {
                    let mut retracted = Vec::new();
                    input.for_each(|capability, data| {
                        for capability in capability.retain_stamp(0).iter() {
                            capabilities.insert(capability.clone());
                        }
                        for ((key, row), time, diff) in data.drain(..) {
                            if diff <= 0 {
                                retracted.push(time);
                                continue;
                            }
                            let rows = groups.entry((time, key)).or_default();
                            rows.push((row, diff));
                            if rows.len() >= limit.saturating_mul(2).saturating_add(16) {
                                prune(rows, &keep);
                            }
                        }
                    });
                    let frontier = frontier.frontier();
                    let ready: Vec<(T, Row)> = groups
                        .keys()
                        .filter(|(time, _)| !frontier.less_equal(time))
                        .cloned()
                        .collect();
                    if !ready.is_empty() || !retracted.is_empty() {
                        let mut session = output.session(&capabilities);
                        for time in retracted {
                            let error = EvalError::Internal(
                                "a monotonic TopK saw a retraction".to_string(),
                            );
                            session.give((Err(error), time, 1));
                        }
                        for (time, key) in ready {
                            let mut rows = groups
                                .remove(&(time.clone(), key.clone()))
                                .unwrap_or_default();
                            prune(&mut rows, &keep);
                            for (row, diff) in rows {
                                session.give((Ok((key.clone(), row)), time.clone(), diff));
                            }
                        }
                    }
                    if groups.is_empty() {
                        capabilities = CapabilitySet::new();
                    } else {
                        let mut pending = Antichain::new();
                        for (time, _) in groups.keys() {
                            pending.insert(time.clone());
                        }
                        capabilities.downgrade(pending.elements());
                    }
                }
            });
    let results = results.as_collection();
    let oks = results
        .clone()
        .flat_map(|r: Result<(Row, Row), EvalError>| r.ok());
    let errs = results.flat_map(|r| r.err());
    (oks, errs)
}

/// The rows of one group at ranks `offset .. offset + limit`, with their multiplicities.
pub fn top_k(plan: &TopKPlan, rows: &[(&Row, Diff)]) -> Vec<(Row, Diff)> {
    let mut ranked: Vec<(Vec<Datum>, &Row, Diff)> = rows
        .iter()
        .filter(|(_, d)| *d > 0)
        .map(|(r, d)| (r.unpack(), *r, *d))
        .collect();
    ranked.sort_by(
        |(a, ra, _), (b, rb, _)| match compare_rows(&plan.order_key, a, b) {
            Ordering::Equal => ra.cmp(rb),
            other => other,
        },
    );
    let mut out = Vec::new();
    let mut skip = plan.offset as i64;
    let mut take = plan.limit.map(|l| l as i64).unwrap_or(i64::MAX);
    for (_, row, diff) in ranked {
        if take == 0 {
            break;
        }
        let skipped = skip.min(diff);
        skip -= skipped;
        let kept = (diff - skipped).min(take);
        if kept > 0 {
            out.push((row.clone(), kept));
            take -= kept;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use expr::ColumnOrder;

    #[test]
    fn ranks_with_multiplicities_offset_and_limit() {
        let row = |v: i32| Row::pack_slice(&[Datum::Int32(v)]);
        let (a, b, c) = (row(3), row(1), row(2));
        let rows = vec![(&a, 1), (&b, 2), (&c, 3)];
        let plan = TopKPlan {
            group_key: vec![],
            order_key: vec![ColumnOrder {
                column: 0,
                desc: false,
                nulls_last: true,
            }],
            limit: Some(3),
            offset: 1,
            buckets: vec![],
            monotonic: false,
        };
        // Ranks: 1, 1, 2, 2, 2, 3 → ranks 1..4 are 1, 2, 2, 2.
        assert_eq!(top_k(&plan, &rows), vec![(row(1), 1), (row(2), 2)]);
        let desc = TopKPlan {
            order_key: vec![ColumnOrder {
                column: 0,
                desc: true,
                nulls_last: false,
            }],
            limit: Some(2),
            offset: 0,
            group_key: vec![],
            buckets: vec![],
            monotonic: false,
        };
        assert_eq!(top_k(&desc, &rows), vec![(row(3), 1), (row(2), 1)]);
    }
}
