//! Writes a collection to a persist shard: the materialized view's storage.
//!
//! All updates go to worker 0, which buffers them until the input frontier passes
//! their time, then appends each completed range `[upper, frontier)` with
//! `compare_and_append`. If another writer (a replica of the same view) already wrote
//! part of the range, the shard's upper is past ours: we append only what lies beyond
//! it, so identical writers race safely and nothing is written twice. Updates at times
//! before the shard's upper when the sink starts are already in the shard (a restart
//! resumes from the upper) and are dropped.
//!
//! Nothing is appended until the input is complete past the dataflow's `as_of`: the
//! first append holds the view's contents at `as_of`. An append of the empty range
//! below `as_of` alone would claim the view was empty just before `as_of`, and a
//! restart (which resumes at `upper - 1`) would then take the query's whole result
//! at that time as already written and drop it.
//!
//! A view's errors are stored in its shard beside its rows, so a read of the view
//! fails as a read of its definition would: an error is a row of one column more than
//! the view has, its last column the error's versioned encoding (see [`error_row`]).

use std::collections::BTreeMap;

use differential_dataflow::consolidation::consolidate_updates;
use persist::{PersistClient, ShardId, WriteHandle};
use repr::{Datum, Diff, EvalError, Row, Timestamp};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;

use crate::CollectionBundle;

/// The format of an error stored in a shard (the first byte of its encoding).
const ERROR_FORMAT: u8 = 1;

/// How an error of a collection of `arity` columns is stored in its shard: `arity`
/// NULLs, then the error's encoding as a `bytea`. No row of the collection has that
/// many columns, so [`decode_row`] tells the two apart.
pub fn error_row(arity: usize, error: &EvalError) -> Row {
    let bytes = persist::codec::encode_versioned("a stored error", ERROR_FORMAT, error)
        .unwrap_or_else(|e| {
            // EvalError always encodes; keep the message if it somehow does not.
            let fallback = EvalError::Internal(format!("{error} ({e})"));
            persist::codec::encode_versioned("a stored error", ERROR_FORMAT, &fallback)
                .unwrap_or_default()
        });
    Row::pack(std::iter::repeat_n(Datum::Null, arity).chain(std::iter::once(Datum::Bytes(&bytes))))
}

/// The inverse of [`error_row`]: a row of a collection of `arity` columns read from
/// its shard is a row, or a stored error. A row of any other shape (a corrupt shard)
/// is an error too, never a wrong answer.
pub fn decode_row(arity: usize, row: Row) -> Result<Row, EvalError> {
    let columns = row.iter().count();
    if columns == arity {
        return Ok(row);
    }
    if columns == arity + 1 {
        if let Some(Datum::Bytes(bytes)) = row.iter().last() {
            return persist::codec::decode_versioned("a stored error", ERROR_FORMAT, bytes)
                .map_err(|e| EvalError::Internal(e.to_string()))
                .and_then(Err);
        }
    }
    Err(EvalError::Internal(format!(
        "a stored row has {columns} columns, not {arity}"
    )))
}

/// Attaches a sink writing `collection` (computed from `as_of` on), of `arity`
/// columns, to `shard_id`: its rows, and its errors as [`error_row`]s.
pub fn persist_sink(
    collection: CollectionBundle<'_>,
    arity: usize,
    client: PersistClient,
    shard_id: ShardId,
    name: &str,
    as_of: Timestamp,
) {
    let oks = collection
        .oks
        .concat(collection.errs.map(move |e| error_row(arity, &e)));
    let mut writer: Option<WriteHandle> = None;
    let mut pending: BTreeMap<Timestamp, Vec<(Row, Timestamp, Diff)>> = BTreeMap::new();
    let writer_name = format!("persist_sink {name}");
    let worker0 = oks.inner.scope().index() == 0;
    oks.inner.sink(Exchange::new(|_update: &(Row, Timestamp, Diff)| 0u64), &format!("PersistSink({name})"), move |(input, frontier)| {
        input.for_each(|_cap, data: &mut Vec<(Row, Timestamp, Diff)>| {
            for update in data.drain(..) {
                pending.entry(update.1).or_default().push(update);
            }
        });
        // Only worker 0 receives data, and only it writes.
        if !worker0 {
            return;
        }
        let upper = frontier.frontier().iter().min().copied().unwrap_or(Timestamp::MAX);
        if upper <= as_of {
            // The contents at as_of are not complete yet.
            return;
        }
        if writer.is_none() {
            match client.open_writer(shard_id, &writer_name) {
                Ok(w) => writer = Some(w),
                Err(e) => {
                    tracing::error!(shard = %shard_id, error = %e, "opening the persist sink failed; retrying");
                    return;
                }
            }
        }
        let w = writer.as_mut().expect("opened above");
        let current = w.upper();
        if upper <= current {
            // Nothing new is complete (or another writer is ahead of us).
            pending.retain(|t, _| *t >= current);
            return;
        }
        // Updates in [current, upper) are complete: append them.
        let mut batch: Vec<(Row, Timestamp, Diff)> = Vec::new();
        let done: Vec<Timestamp> = pending.range(..upper).map(|(t, _)| *t).collect();
        for t in done {
            let updates = pending.remove(&t).expect("listed above");
            if t >= current {
                batch.extend(updates);
            }
        }
        consolidate_updates(&mut batch);
        match w.compare_and_append(&batch, current, upper) {
            Ok(Ok(())) => {}
            Ok(Err(mismatch)) => {
                // Another writer appended first; what it wrote is what we would have.
                tracing::debug!(shard = %shard_id, ?mismatch, "persist sink lost a race");
                let ahead = mismatch.current;
                // Put back what lies beyond the other writer's upper.
                for update in batch.into_iter().filter(|(_, t, _)| *t >= ahead) {
                    pending.entry(update.1).or_default().push(update);
                }
                let _ = w.fetch_recent_upper();
            }
            Err(e) => {
                tracing::error!(shard = %shard_id, error = %e, "persist sink append failed; retrying");
                for update in batch {
                    pending.entry(update.1).or_default().push(update);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use differential_dataflow::AsCollection;
    use timely::dataflow::operators::{Input, Probe};

    use super::*;

    /// Until the input passes `as_of`, the shard's upper stays where it was: the first
    /// append carries the contents at `as_of`.
    #[test]
    fn first_append_holds_the_contents_at_as_of() {
        let location = persist::PersistLocation::mem("persist-sink-first-append");
        let client = PersistClient::open(&location).expect("in-memory persist");
        let shard = ShardId::new();
        let as_of: Timestamp = 100;
        let row = Row::pack_slice(&[Datum::Int32(7)]);
        let sink_client = client.clone();
        let expected = row.clone();
        timely::execute_directly(move |worker| {
            let (mut input, probe) = worker.dataflow::<Timestamp, _, _>(|scope| {
                let (input, stream) = scope.new_input::<Vec<(Row, Timestamp, Diff)>>();
                let (probe, stream) = stream.probe();
                let oks = stream.as_collection();
                let errs = oks
                    .clone()
                    .filter(|_| false)
                    .map(|_: Row| EvalError::DivisionByZero);
                persist_sink(
                    CollectionBundle { oks, errs },
                    1,
                    sink_client,
                    shard,
                    "t",
                    as_of,
                );
                (input, probe)
            });
            input.advance_to(as_of);
            input.send((expected.clone(), as_of, 1));
            // The input's frontier is at as_of: nothing is complete.
            for _ in 0..50 {
                worker.step();
            }
            let upper = client.inspect_shard(shard).map(|s| s.upper).unwrap_or(0);
            assert_eq!(upper, 0, "nothing may be appended before as_of is complete");
            input.advance_to(as_of + 5);
            while probe.less_than(&(as_of + 5)) {
                worker.step();
            }
            for _ in 0..50 {
                worker.step();
            }
            let state = client.inspect_shard(shard).expect("the sink wrote");
            assert_eq!(state.upper, as_of + 5);
            let reader = client.open_reader(shard, "test").expect("reader");
            let snapshot = reader.snapshot(as_of).expect("readable at as_of");
            assert_eq!(snapshot, vec![(expected.clone(), as_of, 1)]);
        });
    }

    #[test]
    fn errors_round_trip_beside_rows() {
        let row = Row::pack_slice(&[Datum::Int32(1), Datum::Null]);
        assert_eq!(decode_row(2, row.clone()), Ok(row));
        for error in [
            EvalError::DivisionByZero,
            EvalError::MultipleRowsFromSubquery,
            EvalError::Internal("x".into()),
        ] {
            for arity in [0, 1, 3] {
                let stored = error_row(arity, &error);
                assert_eq!(stored.iter().count(), arity + 1);
                assert_eq!(decode_row(arity, stored), Err(error.clone()));
            }
        }
        // A row of a two-column view whose second column is bytea is a row.
        let bytes = Row::pack_slice(&[Datum::Bytes(&[ERROR_FORMAT, 0, 0, 0, 0])]);
        assert_eq!(decode_row(1, bytes.clone()), Ok(bytes));
        // A row of the wrong shape is an error, not a row.
        let wrong = Row::pack_slice(&[Datum::Int32(1)]);
        assert!(matches!(decode_row(3, wrong), Err(EvalError::Internal(_))));
        let garbage = Row::pack_slice(&[Datum::Bytes(&[ERROR_FORMAT, 0xff])]);
        assert!(matches!(
            decode_row(0, garbage),
            Err(EvalError::Internal(_))
        ));
    }
}
