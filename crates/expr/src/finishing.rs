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

    /// Expands multiplicities, sorts, applies OFFSET/LIMIT and projects. A negative
    /// multiplicity means the collection is not a set of rows: an internal error.
    pub fn finish(&self, rows: Vec<(Row, Diff)>) -> Result<Vec<Row>, String> {
        let mut expanded = Vec::new();
        for (row, diff) in rows {
            if diff < 0 {
                return Err(format!("negative multiplicity {diff} for row {row:?}"));
            }
            for _ in 0..diff {
                expanded.push(row.clone());
            }
        }
        if !self.order_by.is_empty() {
            let mut keyed: Vec<(Vec<Datum>, &Row)> =
                expanded.iter().map(|r| (r.unpack(), r)).collect();
            keyed.sort_by(|(a, _), (b, _)| compare_rows(&self.order_by, a, b));
            expanded = keyed.into_iter().map(|(_, r)| r.clone()).collect();
        }
        let end = match self.limit {
            Some(limit) => self.offset.saturating_add(limit).min(expanded.len()),
            None => expanded.len(),
        };
        let start = self.offset.min(end);
        Ok(expanded[start..end]
            .iter()
            .map(|row| {
                let datums = row.unpack();
                Row::pack(self.project.iter().map(|c| datums[*c]))
            })
            .collect())
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
}
