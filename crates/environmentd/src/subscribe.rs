//! Subscriptions and cursors as the coordinator keeps them.
//!
//! A `SUBSCRIBE` is a transient dataflow with a subscribe export; the compute
//! controller hands the coordinator its batches, each covering `[lower, upper)`,
//! exactly once. [`SubscribeOutput::rows`] turns a batch into the rows a client sees,
//! in Materialize's shape:
//!
//! - `mz_timestamp` (numeric), `mz_progressed` (with `PROGRESS`), `mz_diff`, then the
//!   relation's columns: one row per distinct row and time with its net multiplicity,
//!   in timestamp order;
//! - with `ENVELOPE UPSERT (KEY (k))`: `mz_timestamp`, [`mz_progressed`], `mz_state`,
//!   the key columns, then the other columns, one row per changed key and time:
//!   `upsert` with the key's new value, `delete` (values NULL) when the key has no row
//!   left, `key_violation` (values NULL) when it has more than one;
//! - with `PROGRESS`, after each batch a progress row (`mz_progressed` true, the rest
//!   NULL) at the last timestamp the batch completes (its upper minus one): every
//!   update at or before it has been sent, nothing more will arrive at or below it.
//!   The state accumulated at a progress row at `t` is the relation `AS OF t`, and a
//!   client that lost its connection resumes with `AS OF t WITH (SNAPSHOT = false)`.
//!
//! Without `SNAPSHOT` the updates at the `AS OF` (the snapshot) are left out: the
//! stream holds the changes at times after it.
//!
//! A subscription delivers to a [`SubscribeSink`]: the client's stream (`SUBSCRIBE`,
//! `COPY (SUBSCRIBE ...) TO STDOUT`) or a [`Cursor`] that `FETCH` reads.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use repr::{Datum, Diff, GlobalId, RelationDesc, Row, Timestamp};
use rust_decimal::Decimal;
use tokio::sync::mpsc::UnboundedSender;

use crate::adapter::{AdapterError, SubscribeMessage};

/// How a subscription's batches become rows.
#[derive(Clone, Debug)]
pub struct SubscribeOutput {
    pub upsert_key: Option<Vec<usize>>,
    pub snapshot: bool,
    pub progress: bool,
    pub as_of: Timestamp,
    pub up_to: Option<Timestamp>,
    /// Columns after `mz_timestamp` (and `mz_progressed`), for progress rows' NULLs.
    pub trailing_columns: usize,
}

impl SubscribeOutput {
    /// The rows for the updates of one batch (sorted by time) ending at `upper`.
    pub fn rows(&self, updates: &[(Row, Timestamp, Diff)], upper: Timestamp) -> Vec<Row> {
        let mut out = Vec::new();
        let updates = updates
            .iter()
            .filter(|(_, t, d)| *d != 0 && (self.snapshot || *t > self.as_of));
        let mut by_time: BTreeMap<Timestamp, Vec<(&Row, Diff)>> = BTreeMap::new();
        for (row, t, d) in updates {
            by_time.entry(*t).or_default().push((row, *d));
        }
        for (time, updates) in by_time {
            let mut prefix = vec![Datum::Numeric(Decimal::from(time))];
            if self.progress {
                prefix.push(Datum::False);
            }
            match &self.upsert_key {
                None => {
                    for (row, diff) in updates {
                        let mut datums = prefix.clone();
                        datums.push(Datum::Int64(diff));
                        datums.extend(row.iter());
                        out.push(Row::pack(&datums));
                    }
                }
                Some(key) => out.extend(upsert_rows(key, &prefix, &updates)),
            }
        }
        let ended = self.up_to.is_some_and(|u| upper >= u);
        if self.progress && !ended && upper != Timestamp::MAX {
            // Complete through `upper - 1`: a client that saw this row resumes with
            // `AS OF upper - 1 WITH (SNAPSHOT = false)` and misses nothing.
            let mut datums = vec![Datum::Numeric(Decimal::from(upper - 1)), Datum::True];
            datums.extend(std::iter::repeat_n(Datum::Null, self.trailing_columns));
            out.push(Row::pack(&datums));
        }
        out
    }
}

/// ENVELOPE UPSERT rows for the updates at one time: one per key that changed.
fn upsert_rows(key: &[usize], prefix: &[Datum], updates: &[(&Row, Diff)]) -> Vec<Row> {
    // Per changed key: the rows inserted, with multiplicity (none: it was deleted).
    let mut keys: BTreeMap<Vec<Datum>, Vec<(&Row, Diff)>> = BTreeMap::new();
    for (row, diff) in updates {
        let datums = row.unpack();
        let k: Vec<Datum> = key.iter().map(|i| datums[*i]).collect();
        let inserts = keys.entry(k).or_default();
        if *diff > 0 {
            inserts.push((row, *diff));
        }
    }
    let mut out = Vec::new();
    for (k, inserts) in keys {
        let inserted: Diff = inserts.iter().map(|(_, d)| d).sum();
        let mut datums: Vec<Datum> = prefix.to_vec();
        let value: Option<Vec<Datum>> = match inserts.as_slice() {
            [(row, 1)] => {
                datums.push(Datum::String("upsert"));
                let all = row.unpack();
                Some(
                    (0..all.len())
                        .filter(|i| !key.contains(i))
                        .map(|i| all[i])
                        .collect(),
                )
            }
            _ if inserted > 1 => {
                datums.push(Datum::String("key_violation"));
                None
            }
            _ => {
                datums.push(Datum::String("delete"));
                None
            }
        };
        let value_arity = inserts
            .first()
            .map(|(r, _)| r.iter().count())
            .unwrap_or_else(|| updates.first().map(|(r, _)| r.iter().count()).unwrap_or(0))
            - key.len();
        datums.extend(k);
        match value {
            Some(v) => datums.extend(v),
            None => datums.extend(std::iter::repeat_n(Datum::Null, value_arity)),
        }
        out.push(Row::pack(&datums));
    }
    out
}

/// Where a subscription's rows go.
pub enum SubscribeSink {
    /// A client reading the rows as they come.
    Stream {
        tx: UnboundedSender<SubscribeMessage>,
        queued: Arc<AtomicUsize>,
    },
    /// The buffer of a cursor (`DECLARE ... CURSOR FOR SUBSCRIBE`).
    Cursor { name: String },
}

/// A running subscription.
pub struct ActiveSubscribe {
    pub conn_id: u32,
    pub secret_key: i32,
    pub output: SubscribeOutput,
    /// The tables and materialized views it reads; dropping one ends it.
    pub depends_on: BTreeSet<GlobalId>,
    pub sink: SubscribeSink,
    /// Rows that may wait for a client before the subscription fails.
    pub buffer_limit: usize,
}

impl ActiveSubscribe {
    /// Sends rows to a streaming client; false if the client is gone.
    pub fn send_rows(&self, rows: Vec<Row>) -> Result<bool, AdapterError> {
        let SubscribeSink::Stream { tx, queued } = &self.sink else {
            return Ok(true);
        };
        if rows.is_empty() {
            return Ok(!tx.is_closed());
        }
        let waiting = queued.load(Ordering::Relaxed) + rows.len();
        if waiting > self.buffer_limit {
            return Err(buffer_exceeded(self.buffer_limit));
        }
        queued.fetch_add(rows.len(), Ordering::Relaxed);
        Ok(tx.send(SubscribeMessage::Rows(rows)).is_ok())
    }

    /// Ends a streaming client's subscription with `message`.
    pub fn finish(&self, message: SubscribeMessage) {
        if let SubscribeSink::Stream { tx, .. } = &self.sink {
            let _ = tx.send(message);
        }
    }
}

pub fn buffer_exceeded(limit: usize) -> AdapterError {
    AdapterError {
        code: "53400".into(),
        message: format!(
            "subscription ended: the client fell behind by more than {limit} rows (max_subscribe_buffer_rows)"
        ),
        detail: None,
        hint: Some("Read the subscription faster, or raise max_subscribe_buffer_rows.".into()),
        position: None,
    }
}

/// How a cursor stands.
#[derive(Debug)]
pub enum CursorState {
    /// Rows keep arriving from this subscription.
    Running(GlobalId),
    /// Every row is in the buffer (a SELECT's cursor, or a subscription that reached
    /// its UP TO).
    Done,
    /// The subscription failed; FETCH reports the error once the buffer is empty.
    Failed(AdapterError),
}

/// A cursor: a buffer of rows FETCH takes from.
pub struct Cursor {
    pub desc: RelationDesc,
    pub rows: VecDeque<Row>,
    pub state: CursorState,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[i32]) -> Row {
        Row::pack(values.iter().map(|v| Datum::Int32(*v)))
    }

    fn output(upsert_key: Option<Vec<usize>>, snapshot: bool, progress: bool) -> SubscribeOutput {
        SubscribeOutput {
            upsert_key,
            snapshot,
            progress,
            as_of: 10,
            up_to: None,
            trailing_columns: 3,
        }
    }

    fn text(rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|r| {
                r.iter()
                    .map(|d| format!("{d:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn plain_rows_carry_time_and_diff() {
        let updates = vec![(row(&[1, 2]), 10, 2), (row(&[3, 4]), 12, -1)];
        let rows = output(None, true, false).rows(&updates, 13);
        assert_eq!(
            text(&rows),
            vec![
                "Numeric(10) Int64(2) Int32(1) Int32(2)",
                "Numeric(12) Int64(-1) Int32(3) Int32(4)"
            ]
        );
        // Without the snapshot, updates at the AS OF are left out.
        let rows = output(None, false, false).rows(&updates, 13);
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn progress_rows_follow_each_batch() {
        let rows = output(None, true, true).rows(&[(row(&[1, 2]), 11, 1)], 15);
        assert_eq!(
            text(&rows),
            vec![
                "Numeric(11) False Int64(1) Int32(1) Int32(2)",
                "Numeric(14) True Null Null Null"
            ]
        );
    }

    #[test]
    fn upsert_states() {
        // Key column 0. Key 1 changes value, key 2 is deleted, key 3 gets two rows.
        let updates = vec![
            (row(&[1, 10]), 11, -1),
            (row(&[1, 11]), 11, 1),
            (row(&[2, 20]), 11, -1),
            (row(&[3, 30]), 11, 1),
            (row(&[3, 31]), 11, 1),
        ];
        let rows = output(Some(vec![0]), true, false).rows(&updates, 12);
        assert_eq!(
            text(&rows),
            vec![
                "Numeric(11) String(\"upsert\") Int32(1) Int32(11)",
                "Numeric(11) String(\"delete\") Int32(2) Null",
                "Numeric(11) String(\"key_violation\") Int32(3) Null"
            ]
        );
    }
}
