//! Reads a persist shard into a collection: the snapshot at `as_of`, then every later
//! update as the shard's upper advances, until `until`.
//!
//! Worker 0 reads (the arrangements downstream exchange the rows); the other workers'
//! instances release their capability at once. The operator's output frontier follows
//! the shard's upper, so a downstream probe that passes `t` means the shard was read
//! completely through `t`. A read that fails (the shard compacted past `as_of`, storage
//! errors) becomes one error in the error collection, not a panic. A materialized
//! view's stored errors (see [`crate::persist_sink`]) return to the error collection.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use differential_dataflow::AsCollection;
use persist::{ListenEvent, PersistClient, ReadError, ReadHandle, ShardId};
use repr::{Diff, EvalError, Row, Timestamp};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::Scope;

use crate::persist_sink::decode_row;
use crate::{split_results, CollectionBundle};

/// How often an idle source looks for new data in persist.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

enum Phase {
    /// Waiting for the shard's upper to pass `as_of`.
    Snapshot,
    Listening(persist::Listen),
}

/// One registered reader per shard, shared by every source of a worker, so a one-shot
/// SELECT reads persist without registering (and expiring) a lease each time.
///
/// A cached reader holds its shard's since back only as far as the coordinator says:
/// `AllowCompaction` for a table or materialized view reaches
/// [`ReaderCache::allow_compaction`], and the reader's since moves there on its next
/// renewal. (The coordinator keeps every time it will still ask a replica to read; see
/// `environmentd`'s `coord::compaction`.)
#[derive(Default)]
pub struct ReaderCache {
    readers: BTreeMap<ShardId, (ReadHandle, Instant)>,
    /// How far each shard's history may compact, as last allowed.
    allowed: BTreeMap<ShardId, Timestamp>,
}

/// How often a cached reader renews its lease and moves its since to what is allowed
/// (well inside persist's lease duration).
const RENEW_INTERVAL: Duration = Duration::from_secs(1);

impl ReaderCache {
    /// The cached reader of `shard`, opened (or renewed) as needed.
    fn reader(&mut self, client: &PersistClient, shard: ShardId) -> Result<&ReadHandle, String> {
        self.renew(shard);
        if let std::collections::btree_map::Entry::Vacant(entry) = self.readers.entry(shard) {
            let reader = client
                .open_reader(shard, "compute")
                .map_err(|e| e.to_string())?;
            entry.insert((reader, Instant::now()));
        }
        Ok(&self.readers.get(&shard).expect("inserted above").0)
    }

    /// Lets the cached reader of `shard` give up times before `frontier`.
    pub fn allow_compaction(&mut self, shard: ShardId, frontier: Timestamp) {
        let allowed = self.allowed.entry(shard).or_insert(frontier);
        *allowed = (*allowed).max(frontier);
    }

    /// Renews the cached reader of `shard` and moves its since to what is allowed, if
    /// it is due. Listening sources call this on every poll.
    fn renew(&mut self, shard: ShardId) {
        if let Some((reader, renewed)) = self.readers.get_mut(&shard) {
            if renewed.elapsed() >= RENEW_INTERVAL {
                let since = self.allowed.get(&shard).copied().unwrap_or(reader.since());
                match reader.downgrade_since(since) {
                    Ok(()) => *renewed = Instant::now(),
                    // Expired already: the next read opens a new reader.
                    Err(_) => {
                        self.readers.remove(&shard);
                    }
                }
            }
        }
    }

    /// Renews every cached reader that is due, so an idle one does not hold its
    /// shard's since back until its lease runs out. The worker calls this on every
    /// turn of its loop.
    pub fn maintain(&mut self) {
        let shards: Vec<ShardId> = self.readers.keys().copied().collect();
        for shard in shards {
            self.renew(shard);
        }
    }

    /// Forgets the reader of a shard (the table was dropped).
    pub fn forget(&mut self, shard: ShardId) {
        self.readers.remove(&shard);
        self.allowed.remove(&shard);
    }
}

/// The shard a source reads, and the number of columns of its collection (a
/// materialized view's stored errors have one more).
pub struct SourceShard {
    pub shard_id: ShardId,
    pub arity: usize,
}

pub fn persist_source<'s>(
    scope: Scope<'s, Timestamp>,
    client: PersistClient,
    readers: Rc<RefCell<ReaderCache>>,
    SourceShard { shard_id, arity }: SourceShard,
    name: &str,
    as_of: Timestamp,
    until: Option<Timestamp>,
) -> CollectionBundle<'s> {
    let worker0 = scope.index() == 0;
    let stream = source(
        scope,
        &format!("PersistSource({name})"),
        move |capability, info| {
            let activator = scope.activator_for(info.address);
            let mut capability = worker0.then_some(capability);
            if let Some(c) = capability.as_mut() {
                c.downgrade(&as_of);
            }
            let mut phase = Phase::Snapshot;
            move |output| {
                let Some(cap) = capability.as_mut() else {
                    return;
                };
                let mut emitted: Vec<(Result<Row, EvalError>, Timestamp, Diff)> = Vec::new();
                let mut done = false;
                let mut next_frontier = None;
                let step: Result<(), String> = (|| {
                    match &mut phase {
                        Phase::Snapshot => {
                            let mut cache = readers.borrow_mut();
                            let handle = cache.reader(&client, shard_id)?;
                            match handle.snapshot(as_of) {
                                Ok(updates) => {
                                    emitted.extend(updates.into_iter().map(|(row, _, diff)| {
                                        (decode_row(arity, row), as_of, diff)
                                    }));
                                    next_frontier = Some(as_of + 1);
                                    // A one-shot read (until = as_of + 1) needs no listen.
                                    if until.is_none_or(|u| u > as_of + 1) {
                                        let listen =
                                            handle.listen(as_of).map_err(|e| e.to_string())?;
                                        phase = Phase::Listening(listen);
                                    }
                                }
                                Err(ReadError::NotYetAvailable { .. }) => {}
                                Err(e) => return Err(e.to_string()),
                            }
                        }
                        Phase::Listening(listen) => {
                            readers.borrow_mut().renew(shard_id);
                            for event in listen.poll().map_err(|e| e.to_string())? {
                                match event {
                                    ListenEvent::Updates(updates) => emitted.extend(
                                        updates.into_iter().map(|(row, time, diff)| {
                                            (decode_row(arity, row), time, diff)
                                        }),
                                    ),
                                    ListenEvent::Progress(upper) => next_frontier = Some(upper),
                                }
                            }
                        }
                    }
                    Ok(())
                })();
                if let Err(message) = step {
                    emitted.push((
                        Err(EvalError::Internal(format!(
                            "reading {shard_id}: {message}"
                        ))),
                        *cap.time(),
                        1,
                    ));
                    done = true;
                }
                if let Some(u) = until {
                    emitted.retain(|(_, time, _)| *time < u);
                    if next_frontier.is_some_and(|f| f >= u) {
                        done = true;
                    }
                }
                if !emitted.is_empty() {
                    let mut session = output.session(&*cap);
                    for update in emitted {
                        session.give(update);
                    }
                }
                if done {
                    capability = None;
                    return;
                }
                if let Some(f) = next_frontier {
                    if f > *cap.time() {
                        cap.downgrade(&f);
                    }
                }
                activator.activate_after(POLL_INTERVAL);
            }
        },
    );
    split_results(stream.as_collection())
}
