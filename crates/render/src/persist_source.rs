//! Reads a persist shard into a collection: the snapshot at `as_of`, then every later
//! update as the shard's upper advances, until `until`.
//!
//! Worker 0 reads (the arrangements downstream exchange the rows); the other workers'
//! instances release their capability at once. The operator's output frontier follows
//! the shard's upper, so a downstream probe that passes `t` means the shard was read
//! completely through `t`. A read that fails (the shard compacted past `as_of`, storage
//! errors) becomes one error in the error collection, not a panic.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use differential_dataflow::AsCollection;
use persist::{ListenEvent, PersistClient, ReadError, ReadHandle, ShardId};
use repr::{Diff, EvalError, Row, Timestamp};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::Scope;

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
#[derive(Default)]
pub struct ReaderCache {
    readers: BTreeMap<ShardId, (ReadHandle, Instant)>,
}

/// How often a cached reader renews its lease (well inside persist's lease duration).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(60);

impl ReaderCache {
    /// The cached reader of `shard`, opened (or renewed) as needed.
    fn reader(&mut self, client: &PersistClient, shard: ShardId) -> Result<&ReadHandle, String> {
        let stale = match self.readers.get_mut(&shard) {
            Some((reader, renewed)) if renewed.elapsed() < HEARTBEAT_INTERVAL => false,
            Some((reader, renewed)) => match reader.heartbeat() {
                Ok(()) => {
                    *renewed = Instant::now();
                    false
                }
                Err(_) => true,
            },
            None => true,
        };
        if stale {
            let reader = client
                .open_reader(shard, "compute")
                .map_err(|e| e.to_string())?;
            self.readers.insert(shard, (reader, Instant::now()));
        }
        Ok(&self.readers.get(&shard).expect("inserted above").0)
    }

    /// Renews the cached reader of `shard`, if there is one and it is due. Listening
    /// sources call this on every poll: otherwise a reader that no one-shot read used
    /// for persist's lease duration expires, the shard's since jumps to the listens'
    /// frontiers, and a later read at an older timestamp (`AS OF`, or the oracle's read
    /// timestamp after a quiet spell) fails with "before the since".
    fn renew(&mut self, shard: ShardId) {
        if let Some((reader, renewed)) = self.readers.get_mut(&shard) {
            if renewed.elapsed() >= HEARTBEAT_INTERVAL {
                match reader.heartbeat() {
                    Ok(()) => *renewed = Instant::now(),
                    // Expired already: the next read opens a new reader.
                    Err(_) => {
                        self.readers.remove(&shard);
                    }
                }
            }
        }
    }

    /// Forgets the reader of a shard (the table was dropped).
    pub fn forget(&mut self, shard: ShardId) {
        self.readers.remove(&shard);
    }
}

pub fn persist_source<'s>(
    scope: Scope<'s, Timestamp>,
    client: PersistClient,
    readers: Rc<RefCell<ReaderCache>>,
    shard_id: ShardId,
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
                                    emitted.extend(
                                        updates
                                            .into_iter()
                                            .map(|(row, _, diff)| (Ok(row), as_of, diff)),
                                    );
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
                                        updates
                                            .into_iter()
                                            .map(|(row, time, diff)| (Ok(row), time, diff)),
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
