//! Deterministic benchmark data: every row is a pure function of its id.
//!
//! The table every delta, ingest and memory benchmark uses is
//! `t (id bigint, k bigint, v bigint, s text)`; [`row`] gives row `id` for a number of
//! keys. Because rows are functions of ids, a delete names an id range and each system
//! (Freshet, PostgreSQL, DuckDB, the differential dataflow program) can rebuild exactly
//! the same rows without shipping data between processes. Text encoding is
//! PostgreSQL's COPY text format (tab-separated, newline-terminated).

use std::io::Write;
use std::ops::Range;

/// The DDL of the benchmark table (PostgreSQL, Freshet and DuckDB all accept it).
pub const TABLE_DDL: &str = "CREATE TABLE t (id bigint, k bigint, v bigint, s text)";

/// The aggregate view of the delta benchmarks.
pub const AGG_QUERY: &str = "SELECT k, count(*) AS n, max(v) AS mx FROM t GROUP BY k";

/// SplitMix64: a fixed, well-mixed function of its input.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One row of `t`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Row {
    pub id: i64,
    pub k: i64,
    pub v: i64,
    pub s: String,
}

/// Row `id` of `t` with keys in `0..keys`; `s` is 16 hexadecimal digits.
pub fn row(id: i64, keys: u64) -> Row {
    let h = mix(id as u64);
    Row {
        id,
        k: (h % keys) as i64,
        v: (mix(h) % 1_000_000) as i64,
        s: format!("{:016x}", mix(h ^ 0x5555)),
    }
}

/// The marker row of round `round` of a delta benchmark: key -1, `v` = the round, so
/// the aggregate's row for key -1 changes in every round and tells a subscriber that
/// the round's timestamp arrived.
pub fn marker(round: u64) -> Row {
    Row {
        id: -1 - round as i64,
        k: -1,
        v: round as i64,
        s: "marker".into(),
    }
}

/// Appends `row` in COPY text format.
pub fn write_tsv(out: &mut Vec<u8>, row: &Row) {
    writeln!(out, "{}\t{}\t{}\t{}", row.id, row.k, row.v, row.s).expect("writing to a Vec");
}

/// The COPY text of rows `ids`.
pub fn tsv(ids: Range<i64>, keys: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.clone().count() * 48);
    for id in ids {
        write_tsv(&mut out, &row(id, keys));
    }
    out
}

/// The changes of one round of a delta benchmark: new rows, deleted base rows, and
/// the round's marker row (inserted with the changes, in the same transaction).
#[derive(Clone, Debug)]
pub struct Delta {
    pub round: u64,
    /// Ids of rows inserted (new ids, above the base).
    pub inserts: Range<i64>,
    /// Ids of base rows deleted.
    pub deletes: Range<i64>,
}

impl Delta {
    /// The COPY text of the inserted rows and the marker.
    pub fn insert_tsv(&self, keys: u64) -> Vec<u8> {
        let mut out = tsv(self.inserts.clone(), keys);
        write_tsv(&mut out, &marker(self.round));
        out
    }

    /// The DELETE statement, if the round deletes anything.
    pub fn delete_sql(&self) -> Option<String> {
        (!self.deletes.is_empty()).then(|| {
            format!(
                "DELETE FROM t WHERE id >= {} AND id < {}",
                self.deletes.start, self.deletes.end
            )
        })
    }

    /// Every change as `(row, diff)`, the marker included.
    pub fn changes(&self, keys: u64) -> Vec<(Row, i64)> {
        let mut out: Vec<(Row, i64)> = self.inserts.clone().map(|id| (row(id, keys), 1)).collect();
        out.extend(self.deletes.clone().map(|id| (row(id, keys), -1)));
        out.push((marker(self.round), 1));
        out
    }
}

/// The sequence of rounds of a delta benchmark over a base of `base` rows.
///
/// A round of `size` changes deletes `size / 10` base rows (every tenth round deletes
/// one row when `size` is below 10) and inserts the rest as new rows. Deleted ids are
/// consecutive base ids from 0 upward, so a delete is one range predicate; their keys
/// are spread over all keys by [`row`].
#[derive(Clone, Debug)]
pub struct DeltaPlan {
    pub base: i64,
    next_insert: i64,
    next_delete: i64,
    next_round: u64,
}

impl DeltaPlan {
    pub fn new(base: u64) -> DeltaPlan {
        DeltaPlan {
            base: base as i64,
            next_insert: base as i64,
            next_delete: 0,
            next_round: 0,
        }
    }

    /// The next round of `size` changes.
    pub fn next(&mut self, size: u64) -> Delta {
        let round = self.next_round;
        self.next_round += 1;
        let deletes = if size >= 10 {
            size / 10
        } else {
            u64::from(round % 10 == 9)
        } as i64;
        let deletes = deletes.min(self.base - self.next_delete);
        let inserts = size as i64 - deletes;
        let delta = Delta {
            round,
            inserts: self.next_insert..self.next_insert + inserts,
            deletes: self.next_delete..self.next_delete + deletes,
        };
        self.next_insert += inserts;
        self.next_delete += deletes;
        delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_delete_a_tenth() {
        let mut plan = DeltaPlan::new(1000);
        let ones: Vec<Delta> = (0..10).map(|_| plan.next(1)).collect();
        assert_eq!(ones.iter().filter(|d| !d.deletes.is_empty()).count(), 1);
        let big = plan.next(100);
        assert_eq!(big.deletes, 1..11);
        assert_eq!(big.inserts, 1009..1099);
        assert_eq!(big.changes(10).len(), 101);
    }

    #[test]
    fn rows_are_fixed() {
        assert_eq!(row(7, 100), row(7, 100));
        assert_eq!(tsv(0..2, 100).iter().filter(|b| **b == b'\n').count(), 2);
    }
}
