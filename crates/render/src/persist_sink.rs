//! Writes a collection to a persist shard: the materialized view's storage.
//!
//! All updates go to worker 0, which buffers them until the input frontier passes
//! their time, then appends each completed range `[upper, frontier)` with
//! `compare_and_append`. If another writer (a replica of the same view) already wrote
//! part of the range, the shard's upper is past ours: we append only what lies beyond
//! it, so identical writers race safely and nothing is written twice. Updates at times
//! before the shard's upper when the sink starts are already in the shard (a restart
//! resumes from the upper) and are dropped.

use std::collections::BTreeMap;

use differential_dataflow::consolidation::consolidate_updates;
use persist::{PersistClient, ShardId, WriteHandle};
use repr::{Diff, Row, Timestamp};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;

use crate::OkCollection;

/// Attaches a sink writing `oks` to `shard_id`. (The collection's error collection is
/// not persisted yet: a materialized view stores its rows only.)
pub fn persist_sink(oks: OkCollection<'_>, client: PersistClient, shard_id: ShardId, name: &str) {
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
