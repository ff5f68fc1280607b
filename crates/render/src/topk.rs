//! `Plan::TopK` (see `expr::plan::TopKPlan`): each group's ranking is recomputed from
//! the group's rows whenever the group changes (the basic strategy; hierarchical
//! buckets for large groups are a later refinement).

use std::cmp::Ordering;

use expr::finishing::compare_rows;
use expr::plan::TopKPlan;
use repr::{Datum, Diff, Row};

use crate::{CollectionBundle, RenderTime};

pub fn render_topk<T: RenderTime>(
    input: CollectionBundle<'_, T>,
    plan: TopKPlan,
) -> CollectionBundle<'_, T> {
    let group_key = plan.group_key.clone();
    let keyed = input.oks.map(move |row| {
        let datums = row.unpack();
        let key = Row::pack(group_key.iter().map(|c| datums[*c]));
        drop(datums);
        (key, row)
    });
    let oks = keyed
        .reduce_named(
            "TopK",
            move |_key, rows: &[(&Row, Diff)], out: &mut Vec<(Row, Diff)>| {
                out.extend(top_k(&plan, rows));
            },
        )
        .map(|(_key, row)| row);
    CollectionBundle {
        oks,
        errs: input.errs,
    }
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
        };
        assert_eq!(top_k(&desc, &rows), vec![(row(3), 1), (row(2), 1)]);
    }
}
