//! [`ShardState`]: everything about one shard except its data, versioned by seqno.
//!
//! The state is a value: every change is a pure transition on a copy, committed by a
//! compare-and-set of the whole encoded state onto the shard's consensus log (see
//! `PersistClient::update_state`). The transitions here do no I/O.
//!
//! Invariants (checked by [`ShardState::validate`] when decoding):
//! - batches are ordered and disjoint: `lower < upper` for each, each `upper <=` the next
//!   `lower`, and the last `upper <=` the shard's `upper`; every update in a batch has a
//!   time in its `[lower, upper)`;
//! - `since` only advances; with readers registered it is the minimum of their sinces;
//! - `upper` only advances; `upper == CLOSED_UPPER` means the shard is closed.

use std::collections::BTreeMap;

use repr::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{ReaderId, ShardId, UpperMismatch, WriterId};

/// A batch of updates stored in blob under `key`, covering the times `[lower, upper)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HollowBatch {
    pub lower: Timestamp,
    pub upper: Timestamp,
    pub key: String,
    /// The number of (consolidated) updates in the blob.
    pub len: usize,
}

/// A reader's lease: it may read at any time `>= since` until it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderState {
    pub name: String,
    pub since: Timestamp,
    pub last_heartbeat_ms: u64,
}

/// A registered writer; writers hold nothing back, the entry is for introspection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterState {
    pub name: String,
    pub last_heartbeat_ms: u64,
}

/// The state of one shard at one seqno.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardState {
    pub shard_id: ShardId,
    pub since: Timestamp,
    pub upper: Timestamp,
    pub batches: Vec<HollowBatch>,
    pub readers: BTreeMap<ReaderId, ReaderState>,
    pub writers: BTreeMap<WriterId, WriterState>,
    /// The next reader or writer id to hand out.
    pub next_id: u64,
}

impl ShardState {
    /// The state of a shard nobody has written: empty, since 0, upper 0.
    pub fn new(shard_id: ShardId) -> Self {
        ShardState {
            shard_id,
            since: 0,
            upper: 0,
            batches: Vec::new(),
            readers: BTreeMap::new(),
            writers: BTreeMap::new(),
            next_id: 0,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.upper == crate::CLOSED_UPPER
    }

    /// Checks the invariants in the module doc.
    pub fn validate(&self) -> Result<(), String> {
        let mut prev_upper = 0;
        for b in &self.batches {
            if b.lower >= b.upper || b.lower < prev_upper {
                return Err(format!(
                    "batch \"{}\" [{}, {}) is empty or overlaps its predecessor (upper {prev_upper})",
                    b.key, b.lower, b.upper
                ));
            }
            prev_upper = b.upper;
        }
        if prev_upper > self.upper {
            return Err(format!(
                "batches reach {prev_upper}, past the upper {}",
                self.upper
            ));
        }
        if let Some((id, r)) = self.readers.iter().find(|(_, r)| r.since < self.since) {
            return Err(format!(
                "reader {id} has since {} before the shard's {}",
                r.since, self.since
            ));
        }
        Ok(())
    }

    /// Removes the leases of readers and writers silent for longer than `lease_ms`.
    pub(crate) fn expire_leases(&mut self, now_ms: u64, lease_ms: u64) -> usize {
        let live = |last: u64| now_ms.saturating_sub(last) <= lease_ms;
        let before = self.readers.len() + self.writers.len();
        let shard = self.shard_id;
        self.readers.retain(|id, r| {
            let keep = live(r.last_heartbeat_ms);
            if !keep {
                tracing::info!(%shard, reader = %id, name = %r.name, "expiring reader lease");
            }
            keep
        });
        self.writers.retain(|_, w| live(w.last_heartbeat_ms));
        self.refresh_since();
        before - self.readers.len() - self.writers.len()
    }

    /// Sets the since to the minimum of the readers' sinces, never moving it back.
    fn refresh_since(&mut self) {
        if let Some(min) = self.readers.values().map(|r| r.since).min() {
            self.since = self.since.max(min);
        }
    }

    /// Registers a reader at `since`, which must not be before the shard's since.
    pub(crate) fn register_reader(
        &mut self,
        name: &str,
        since: Timestamp,
        now_ms: u64,
    ) -> ReaderId {
        assert!(
            since >= self.since,
            "reader registered at {since} before the since {}",
            self.since
        );
        let id = ReaderId(self.next_id);
        self.next_id += 1;
        self.readers.insert(
            id,
            ReaderState {
                name: name.to_owned(),
                since,
                last_heartbeat_ms: now_ms,
            },
        );
        self.refresh_since();
        id
    }

    /// Registers a writer.
    pub(crate) fn register_writer(&mut self, name: &str, now_ms: u64) -> WriterId {
        let id = WriterId(self.next_id);
        self.next_id += 1;
        self.heartbeat_writer(id, name, now_ms);
        id
    }

    /// Renews a writer's entry, recreating it if it expired.
    pub(crate) fn heartbeat_writer(&mut self, id: WriterId, name: &str, now_ms: u64) {
        self.writers.insert(
            id,
            WriterState {
                name: name.to_owned(),
                last_heartbeat_ms: now_ms,
            },
        );
    }

    /// Renews a reader's lease and advances its since to at least `since`; false if the
    /// lease has expired.
    pub(crate) fn downgrade_reader(&mut self, id: ReaderId, since: Timestamp, now_ms: u64) -> bool {
        let Some(reader) = self.readers.get_mut(&id) else {
            return false;
        };
        reader.since = reader.since.max(since);
        reader.last_heartbeat_ms = now_ms;
        self.refresh_since();
        true
    }

    /// Removes a reader's lease; false if it was already gone.
    pub(crate) fn expire_reader(&mut self, id: ReaderId) -> bool {
        let removed = self.readers.remove(&id).is_some();
        self.refresh_since();
        removed
    }

    pub(crate) fn expire_writer(&mut self, id: WriterId) -> bool {
        self.writers.remove(&id).is_some()
    }

    /// Appends `batch` (none for an empty append) and advances the upper to `new_upper`,
    /// if the upper is `expected_upper`.
    pub(crate) fn compare_and_append(
        &mut self,
        batch: Option<HollowBatch>,
        expected_upper: Timestamp,
        new_upper: Timestamp,
    ) -> Result<(), UpperMismatch> {
        if self.upper != expected_upper {
            return Err(UpperMismatch {
                expected: expected_upper,
                current: self.upper,
            });
        }
        assert!(
            new_upper > expected_upper,
            "compare_and_append must advance the upper"
        );
        self.batches.extend(batch);
        self.upper = new_upper;
        Ok(())
    }

    /// Replaces `old`, which must still be the first batches of the state, by `merged`
    /// (none if they consolidated to nothing); false if the state no longer starts
    /// with `old`.
    pub(crate) fn replace_batches(
        &mut self,
        old: &[HollowBatch],
        merged: Option<HollowBatch>,
    ) -> bool {
        if old.is_empty() || !self.batches.starts_with(old) {
            return false;
        }
        self.batches.splice(..old.len(), merged);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(lower: Timestamp, upper: Timestamp, key: &str) -> HollowBatch {
        HollowBatch {
            lower,
            upper,
            key: key.into(),
            len: 1,
        }
    }

    #[test]
    fn append_checks_the_upper() {
        let mut s = ShardState::new(ShardId::new());
        assert_eq!(s.compare_and_append(Some(batch(0, 5, "a")), 0, 5), Ok(()));
        assert_eq!(s.compare_and_append(None, 5, 7), Ok(()));
        assert_eq!(
            s.compare_and_append(Some(batch(5, 9, "b")), 5, 9),
            Err(UpperMismatch {
                expected: 5,
                current: 7
            })
        );
        assert_eq!(s.upper, 7);
        assert_eq!(s.batches, vec![batch(0, 5, "a")]);
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn since_is_the_minimum_of_the_readers_and_never_regresses() {
        let mut s = ShardState::new(ShardId::new());
        let a = s.register_reader("a", 0, 100);
        let b = s.register_reader("b", 0, 100);
        assert!(s.downgrade_reader(a, 10, 100));
        assert_eq!(s.since, 0);
        assert!(s.downgrade_reader(b, 4, 100));
        assert_eq!(s.since, 4);
        assert!(
            s.downgrade_reader(b, 2, 100),
            "a lower since is a no-op, not an error"
        );
        assert_eq!(s.readers[&b].since, 4);
        assert!(s.expire_reader(b));
        assert_eq!(s.since, 10);
        assert!(s.expire_reader(a));
        assert_eq!(s.since, 10, "without readers the since stays");
        assert!(!s.downgrade_reader(a, 20, 100));
    }

    #[test]
    fn silent_leases_expire() {
        let mut s = ShardState::new(ShardId::new());
        let old = s.register_reader("old", 0, 1_000);
        let new = s.register_reader("new", 0, 5_000);
        s.downgrade_reader(new, 7, 5_000);
        let w = s.register_writer("w", 1_000);
        assert_eq!(s.expire_leases(5_500, 1_000), 2);
        assert!(!s.readers.contains_key(&old));
        assert!(!s.writers.contains_key(&w));
        assert_eq!(s.since, 7);
        assert_eq!(s.next_id, 3);
    }

    #[test]
    fn replace_batches_needs_the_same_prefix() {
        let mut s = ShardState::new(ShardId::new());
        s.batches = vec![batch(0, 2, "a"), batch(2, 4, "b"), batch(4, 6, "c")];
        s.upper = 6;
        let old = vec![batch(0, 2, "a"), batch(2, 4, "b")];
        assert!(!s.replace_batches(&[batch(2, 4, "b")], None));
        assert!(s.replace_batches(&old, Some(batch(0, 4, "ab"))));
        assert_eq!(s.batches, vec![batch(0, 4, "ab"), batch(4, 6, "c")]);
        assert!(!s.replace_batches(&old, None), "already replaced");
        s.batches.push(batch(5, 7, "x"));
        assert!(s.validate().is_err());
    }
}
