//! [`RowSetFinishing`]: the ORDER BY, LIMIT, OFFSET and final projection of a query,
//! applied by the coordinator to the rows a peek returns.

use std::cmp::Ordering;

use repr::{Datum, Diff, Row};
use serde::{Deserialize, Serialize};

/// One sort key: a column, its direction, and where NULLs go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ColumnOrder {
    pub column: usize,
    pub desc: bool,
    pub nulls_last: bool,
}

/// Compares two rows by `order`, PostgreSQL style (NULLs last ascending by default).
pub fn compare_rows(order: &[ColumnOrder], a: &[Datum], b: &[Datum]) -> Ordering {
    for o in order {
        let (x, y) = (a[o.column], b[o.column]);
        let ord = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if o.nulls_last {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, true) => {
                if o.nulls_last {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, false) => {
                if o.desc {
                    y.cmp(&x)
                } else {
                    x.cmp(&y)
                }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// How to turn a multiset of rows into the list a client sees.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowSetFinishing {
    pub order_by: Vec<ColumnOrder>,
    pub limit: Option<usize>,
    pub offset: usize,
    /// The columns to return, in order, after sorting.
    pub project: Vec<usize>,
}

impl RowSetFinishing {
    /// A finishing that returns all `arity` columns in no particular order.
    pub fn trivial(arity: usize) -> Self {
        RowSetFinishing {
            project: (0..arity).collect(),
            ..Default::default()
        }
    }

    /// Sorts, applies OFFSET/LIMIT, projects and expands multiplicities. A negative
    /// multiplicity means the collection is not a set of rows: an internal error.
    ///
    /// Copies of a row are made only for the rows that OFFSET and LIMIT keep, so a
    /// row with a huge multiplicity costs nothing when LIMIT cuts it off.
    pub fn finish(&self, rows: Vec<(Row, Diff)>) -> Result<Vec<Row>, String> {
        let mut counted: Vec<(Row, usize)> = Vec::with_capacity(rows.len());
        for (row, diff) in rows {
            if diff < 0 {
                return Err(format!("negative multiplicity {diff} for row {row:?}"));
            }
            let copies = usize::try_from(diff)
                .map_err(|_| format!("multiplicity {diff} too large for row {row:?}"))?;
            if copies > 0 {
                counted.push((row, copies));
            }
        }
        if !self.order_by.is_empty() {
            let mut keyed: Vec<(Vec<Datum>, usize)> = counted
                .iter()
                .enumerate()
                .map(|(i, (r, _))| (r.unpack(), i))
                .collect();
            // Ties are broken by the whole row, as a TopK breaks them, so the rows
            // LIMIT keeps do not depend on the order the rows arrived in.
            keyed.sort_by(|(a, i), (b, j)| {
                compare_rows(&self.order_by, a, b).then_with(|| counted[*i].0.cmp(&counted[*j].0))
            });
            let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
            let mut slots: Vec<Option<(Row, usize)>> = counted.into_iter().map(Some).collect();
            counted = order.into_iter().filter_map(|i| slots[i].take()).collect();
        }
        let limit = self.limit.unwrap_or(usize::MAX);
        let mut skip = self.offset;
        let mut out: Vec<Row> = Vec::new();
        for (row, copies) in counted {
            if out.len() >= limit {
                break;
            }
            let skipped = copies.min(skip);
            skip -= skipped;
            let take = (copies - skipped).min(limit - out.len());
            if take == 0 {
                continue;
            }
            out.try_reserve(take).map_err(|_| {
                format!("result of more than {} rows is too large", out.len() + take)
            })?;
            let datums = row.unpack();
            let projected = Row::pack(self.project.iter().map(|c| datums[*c]));
            out.extend(std::iter::repeat_n(projected, take));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_limits_and_projects() {
        let rows = vec![
            (Row::pack_slice(&[Datum::Int32(2), Datum::String("b")]), 1),
            (Row::pack_slice(&[Datum::Null, Datum::String("n")]), 1),
            (Row::pack_slice(&[Datum::Int32(1), Datum::String("a")]), 2),
        ];
        let finishing = RowSetFinishing {
            order_by: vec![ColumnOrder {
                column: 0,
                desc: false,
                nulls_last: true,
            }],
            limit: Some(3),
            offset: 1,
            project: vec![1],
        };
        let out = finishing.finish(rows).unwrap();
        let text: Vec<String> = out.iter().map(|r| r.unpack()[0].to_string()).collect();
        assert_eq!(text, vec!["a", "b", "n"]);
    }

    #[test]
    fn huge_multiplicities_are_not_expanded_past_the_limit() {
        let rows = vec![
            (Row::pack_slice(&[Datum::Int32(2)]), i64::MAX),
            (Row::pack_slice(&[Datum::Int32(1)]), 3),
        ];
        let finishing = RowSetFinishing {
            order_by: vec![ColumnOrder {
                column: 0,
                desc: false,
                nulls_last: true,
            }],
            limit: Some(3),
            offset: 2,
            project: vec![0],
        };
        let out = finishing.finish(rows).unwrap();
        let text: Vec<String> = out.iter().map(|r| r.unpack()[0].to_string()).collect();
        assert_eq!(text, vec!["1", "2", "2"]);
        let negative = vec![(Row::pack_slice(&[Datum::Int32(1)]), -1)];
        assert!(RowSetFinishing::trivial(1).finish(negative).is_err());
    }
}
