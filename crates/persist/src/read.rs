//! [`ReadHandle`] and [`Listen`]: reading a shard at and after a time.
//!
//! Every reader holds a lease in the shard state recording its since; the shard's since
//! is the minimum of those, so compaction never advances times a live reader may still
//! read at. A lease that is not renewed within the lease duration is removed by the next
//! state change of anyone, after which the reader's operations fail with
//! [`PersistError::LeaseExpired`].
//!
//! A [`Listen`] holds its own lease, registered at its `as_of` and advanced as it
//! progresses, so it emits every update at a time in `(as_of, upper)` exactly once even
//! while batches are compacted underneath it.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use repr::Timestamp;

use crate::client::{PersistClient, Step};
use crate::compact::consolidate;
use crate::location::SeqNo;
use crate::{PersistError, ReadError, ReaderId, ShardId, Update};

/// How often a read retries with a fresh state when a batch was compacted away under it.
const READ_ATTEMPTS: usize = 5;

/// A reader's registration in the shard state; expired on drop.
#[derive(Debug)]
struct Lease {
    client: PersistClient,
    shard_id: ShardId,
    reader_id: ReaderId,
    since: Timestamp,
    expired: bool,
}

impl Lease {
    /// Registers a lease at `since` (the shard's since if `None`). If `since` is before
    /// the shard's since, returns the shard's since instead.
    fn register(
        client: &PersistClient,
        shard_id: ShardId,
        name: &str,
        since: Option<Timestamp>,
    ) -> Result<Result<Lease, Timestamp>, PersistError> {
        let (_, registered) = client.update_state(shard_id, |state, now| {
            let since = since.unwrap_or(state.since);
            if since < state.since {
                return Step::Skip(Err(state.since));
            }
            Step::Write(Ok((state.register_reader(name, since, now), since)))
        })?;
        Ok(registered.map(|(reader_id, since)| Lease {
            client: client.clone(),
            shard_id,
            reader_id,
            since,
            expired: false,
        }))
    }

    /// Renews the lease and advances its since to at least `since`.
    fn downgrade(&mut self, since: Timestamp) -> Result<(), PersistError> {
        let (id, since) = (self.reader_id, self.since.max(since));
        let (_, live) = self.client.update_state(self.shard_id, |state, now| {
            if state.downgrade_reader(id, since, now) {
                Step::Write(true)
            } else {
                Step::Skip(false)
            }
        })?;
        if !live {
            self.expired = true;
            return Err(PersistError::LeaseExpired {
                shard: self.shard_id,
                reader: id,
            });
        }
        self.since = since;
        Ok(())
    }

    fn expire(&mut self) -> Result<(), PersistError> {
        if std::mem::replace(&mut self.expired, true) {
            return Ok(());
        }
        let id = self.reader_id;
        self.client.update_state(self.shard_id, |state, _| {
            if state.expire_reader(id) {
                Step::Write(())
            } else {
                Step::Skip(())
            }
        })?;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Err(e) = self.expire() {
            tracing::debug!(shard = %self.shard_id, reader = %self.reader_id, error = %e, "expiring reader on drop failed");
        }
    }
}

/// Errors that may mean a batch vanished under a read.
trait MaybeMissing {
    fn is_missing_batch(&self) -> bool;
}

impl MaybeMissing for PersistError {
    fn is_missing_batch(&self) -> bool {
        matches!(self, PersistError::MissingBatch { .. })
    }
}

impl MaybeMissing for ReadError {
    fn is_missing_batch(&self) -> bool {
        matches!(self, ReadError::Persist(e) if e.is_missing_batch())
    }
}

/// Retries `read` while it fails because a batch vanished (a compaction replaced it
/// between reading the state and reading the blob); each attempt reads a fresh state.
fn with_retries<T, E: MaybeMissing>(mut read: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let mut attempt = 1;
    loop {
        match read() {
            Err(e) if e.is_missing_batch() && attempt < READ_ATTEMPTS => attempt += 1,
            result => return result,
        }
    }
}

/// A reader of one shard, holding a lease at its since.
///
/// Callers must call [`ReadHandle::heartbeat`] (or `downgrade_since`) more often than
/// the client's lease duration, or the lease expires.
#[derive(Debug)]
pub struct ReadHandle {
    lease: Lease,
    name: String,
}

impl ReadHandle {
    pub(crate) fn open(
        client: PersistClient,
        shard_id: ShardId,
        name: &str,
    ) -> Result<Self, PersistError> {
        let lease = Lease::register(&client, shard_id, name, None)?
            .expect("a lease at the shard's own since is always allowed");
        Ok(ReadHandle {
            lease,
            name: name.to_owned(),
        })
    }

    pub fn shard_id(&self) -> ShardId {
        self.lease.shard_id
    }

    pub fn reader_id(&self) -> ReaderId {
        self.lease.reader_id
    }

    /// This reader's since: it may read at any time at or after it.
    pub fn since(&self) -> Timestamp {
        self.lease.since
    }

    /// The shard's upper, read from consensus now.
    pub fn upper(&self) -> Result<Timestamp, PersistError> {
        Ok(self.lease.client.fetch_state(self.shard_id())?.1.upper)
    }

    /// The contents of the shard at `as_of`: every update at a time `<= as_of`, its time
    /// advanced to `as_of`, consolidated. Requires `since <= as_of < upper`.
    pub fn snapshot(&self, as_of: Timestamp) -> Result<Vec<Update>, ReadError> {
        let client = &self.lease.client;
        with_retries(|| {
            let (_, state) = client.fetch_state(self.shard_id())?;
            let since = state.since.max(self.lease.since);
            if as_of < since {
                return Err(ReadError::SinceViolation { as_of, since });
            }
            if as_of >= state.upper {
                return Err(ReadError::NotYetAvailable {
                    as_of,
                    upper: state.upper,
                });
            }
            let parts = client.fetch_batches(state.batches.iter().filter(|b| b.lower <= as_of))?;
            let mut updates: Vec<Update> = parts
                .iter()
                .flat_map(|part| Arc::as_ref(part).iter())
                .filter(|(_, time, _)| *time <= as_of)
                .map(|(row, _, diff)| (row.clone(), as_of, *diff))
                .collect();
            consolidate(&mut updates);
            Ok(updates)
        })
    }

    /// Waits until the shard's upper is past `as_of` (so `snapshot(as_of)` can succeed);
    /// false if `timeout` passed first.
    pub fn wait_for_upper_past(
        &self,
        as_of: Timestamp,
        timeout: Duration,
    ) -> Result<bool, PersistError> {
        let deadline = Instant::now() + timeout;
        let mut backoff = Duration::from_millis(1);
        loop {
            if self.upper()? > as_of {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            thread::sleep(backoff.min(deadline - now));
            backoff = (backoff * 2).min(Duration::from_millis(50));
        }
    }

    /// A stream of the updates at times after `as_of`, with progress. Requires
    /// `as_of >= since`; `as_of` may be at or past the upper.
    pub fn listen(&self, as_of: Timestamp) -> Result<Listen, ReadError> {
        let name = format!("{} listen", self.name);
        let lease = Lease::register(&self.lease.client, self.shard_id(), &name, Some(as_of))?
            .map_err(|since| ReadError::SinceViolation { as_of, since })?;
        Ok(Listen {
            lease,
            as_of,
            frontier: as_of,
            seen: None,
            renewed_at: Instant::now(),
        })
    }

    /// Promises not to read before `since` any more, letting compaction advance times
    /// up to it. A since at or before the current one only renews the lease.
    pub fn downgrade_since(&mut self, since: Timestamp) -> Result<(), PersistError> {
        self.lease.downgrade(since)
    }

    /// Renews the lease.
    pub fn heartbeat(&mut self) -> Result<(), PersistError> {
        self.lease.downgrade(self.lease.since)
    }

    /// Removes the lease (dropping the handle does this too, ignoring errors).
    pub fn expire(mut self) -> Result<(), PersistError> {
        self.lease.expire()
    }
}

/// What a [`Listen`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenEvent {
    /// Updates at times in `[previous frontier, next progress)` and after the as_of.
    Updates(Vec<Update>),
    /// Every update at a time before this has been reported.
    Progress(Timestamp),
}

/// The updates of a shard after an `as_of`, in order of progress, each exactly once.
#[derive(Debug)]
pub struct Listen {
    lease: Lease,
    as_of: Timestamp,
    /// Every update at a time before this (and after `as_of`) has been emitted.
    frontier: Timestamp,
    /// The state seqno the last poll consumed.
    seen: Option<SeqNo>,
    renewed_at: Instant,
}

impl Listen {
    pub fn as_of(&self) -> Timestamp {
        self.as_of
    }

    /// Every update before this has been emitted (initially the `as_of`).
    pub fn frontier(&self) -> Timestamp {
        self.frontier
    }

    /// Returns what happened since the last poll without blocking: the new updates (if
    /// any) followed by the new progress, or nothing if the upper has not advanced.
    pub fn poll(&mut self) -> Result<Vec<ListenEvent>, PersistError> {
        // Renew first: a failure after reading would lose the events read.
        self.maybe_renew()?;
        with_retries(|| self.poll_once())
    }

    fn poll_once(&mut self) -> Result<Vec<ListenEvent>, PersistError> {
        let client = &self.lease.client;
        let (seqno, state) = client.fetch_state(self.lease.shard_id)?;
        if seqno == self.seen || state.upper <= self.frontier {
            self.seen = seqno;
            return Ok(Vec::new());
        }
        let (lower, upper, as_of) = (self.frontier, state.upper, self.as_of);
        let batches = state
            .batches
            .iter()
            .filter(|b| b.upper > lower && b.lower < upper);
        let parts = client.fetch_batches(batches)?;
        let mut updates: Vec<Update> = parts
            .iter()
            .flat_map(|part| Arc::as_ref(part).iter())
            .filter(|(_, time, _)| *time >= lower && *time > as_of && *time < upper)
            .cloned()
            .collect();
        consolidate(&mut updates);
        let mut events = Vec::new();
        if !updates.is_empty() {
            events.push(ListenEvent::Updates(updates));
        }
        events.push(ListenEvent::Progress(upper));
        self.frontier = upper;
        self.seen = seqno;
        Ok(events)
    }

    /// Renews the lease now and then, moving its since up behind the frontier: updates
    /// before the frontier may then be advanced to at most `frontier - 1`, which keeps
    /// them out of every later poll.
    fn maybe_renew(&mut self) -> Result<(), PersistError> {
        let interval = (self.lease.client.config().lease_duration / 4).min(Duration::from_secs(1));
        if self.renewed_at.elapsed() < interval {
            return Ok(());
        }
        self.lease
            .downgrade(self.frontier.saturating_sub(1).max(self.as_of))?;
        self.renewed_at = Instant::now();
        Ok(())
    }
}
