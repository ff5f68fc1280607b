//! [`WriteHandle`]: appends batches of updates to a shard.
//!
//! The one way data enters a shard is [`WriteHandle::compare_and_append`], which commits
//! only if the shard's upper is the caller's `expected_upper`. Two writers racing with
//! the same expected upper (replicas writing the same materialized view) therefore
//! cannot both commit: the first wins and the other sees an [`UpperMismatch`], and its
//! batch blob is deleted without ever being referenced.

use repr::Timestamp;

use crate::client::{PersistClient, Step};
use crate::compact::{compact, consolidate};
use crate::{PersistError, ShardId, Update, UpperMismatch, WriterId};

/// A registered writer of one shard.
#[derive(Debug)]
pub struct WriteHandle {
    client: PersistClient,
    shard_id: ShardId,
    writer_id: WriterId,
    name: String,
    upper: Timestamp,
    expired: bool,
}

impl WriteHandle {
    pub(crate) fn open(
        client: PersistClient,
        shard_id: ShardId,
        name: &str,
    ) -> Result<Self, PersistError> {
        let (state, writer_id) = client.update_state(shard_id, |state, now| {
            Step::Write(state.register_writer(name, now))
        })?;
        Ok(WriteHandle {
            client,
            shard_id,
            writer_id,
            name: name.to_owned(),
            upper: state.upper,
            expired: false,
        })
    }

    pub fn shard_id(&self) -> ShardId {
        self.shard_id
    }

    pub fn writer_id(&self) -> WriterId {
        self.writer_id
    }

    /// The upper as of this handle's last operation (no I/O).
    pub fn upper(&self) -> Timestamp {
        self.upper
    }

    /// The shard's upper, read from consensus now.
    pub fn fetch_recent_upper(&mut self) -> Result<Timestamp, PersistError> {
        let (_, state) = self.client.fetch_state(self.shard_id)?;
        self.upper = state.upper;
        Ok(self.upper)
    }

    /// Appends `updates` and advances the upper from `expected_upper` to `new_upper`, if
    /// the shard's upper is `expected_upper`; otherwise changes nothing and returns the
    /// mismatch. Every update's time must be in `[expected_upper, new_upper)`. An empty
    /// `updates` only advances the upper.
    pub fn compare_and_append(
        &mut self,
        updates: &[Update],
        expected_upper: Timestamp,
        new_upper: Timestamp,
    ) -> Result<Result<(), UpperMismatch>, PersistError> {
        if new_upper <= expected_upper {
            return Err(PersistError::InvalidUsage(format!(
                "new upper {new_upper} must be after the expected upper {expected_upper}"
            )));
        }
        if let Some((_, time, _)) = updates
            .iter()
            .find(|(_, time, _)| *time < expected_upper || *time >= new_upper)
        {
            return Err(PersistError::InvalidUsage(format!(
                "update at time {time} is outside [{expected_upper}, {new_upper})"
            )));
        }
        if self.upper > expected_upper {
            // Uppers only advance, so this cannot commit: skip writing the blob.
            let current = self.fetch_recent_upper()?;
            return Ok(Err(UpperMismatch {
                expected: expected_upper,
                current,
            }));
        }
        let mut updates = updates.to_vec();
        consolidate(&mut updates);
        let batch = self
            .client
            .write_batch(self.shard_id, expected_upper, new_upper, updates)?;

        let (id, name) = (self.writer_id, &self.name);
        let result = self.client.update_state(self.shard_id, |state, now| {
            match state.compare_and_append(batch.clone(), expected_upper, new_upper) {
                Ok(()) => {
                    state.heartbeat_writer(id, name, now);
                    Step::Write(Ok(()))
                }
                Err(mismatch) => Step::Skip(Err(mismatch)),
            }
        });
        match result {
            Ok((state, Ok(()))) => {
                self.upper = new_upper;
                let config = self.client.config();
                if config.compaction_enabled && state.batches.len() > config.compaction_threshold {
                    if let Err(e) = compact(&self.client, self.shard_id, &state) {
                        tracing::warn!(shard = %self.shard_id, error = %e, "compaction failed");
                    }
                }
                Ok(Ok(()))
            }
            Ok((_, Err(mismatch))) => {
                if let Some(b) = &batch {
                    self.client.delete_batch(&b.key);
                }
                self.upper = mismatch.current;
                Ok(Err(mismatch))
            }
            Err(e) => {
                // After an indeterminate error the state may refer to the batch: keep it.
                let maybe_committed =
                    matches!(&e, PersistError::External(x) if x.is_indeterminate());
                if let (Some(b), false) = (&batch, maybe_committed) {
                    self.client.delete_batch(&b.key);
                }
                Err(e)
            }
        }
    }

    /// [`Self::compare_and_append`] for a caller that knows it is the only writer: a
    /// mismatch is an error.
    pub fn append(
        &mut self,
        updates: &[Update],
        lower: Timestamp,
        upper: Timestamp,
    ) -> Result<(), PersistError> {
        Ok(self.compare_and_append(updates, lower, upper)??)
    }

    /// Unregisters the writer.
    pub fn expire(mut self) -> Result<(), PersistError> {
        self.expire_inner()
    }

    fn expire_inner(&mut self) -> Result<(), PersistError> {
        if std::mem::replace(&mut self.expired, true) {
            return Ok(());
        }
        let id = self.writer_id;
        self.client.update_state(self.shard_id, |state, _| {
            if state.expire_writer(id) {
                Step::Write(())
            } else {
                Step::Skip(())
            }
        })?;
        Ok(())
    }
}

impl Drop for WriteHandle {
    fn drop(&mut self) {
        if let Err(e) = self.expire_inner() {
            tracing::debug!(shard = %self.shard_id, writer = %self.writer_id, error = %e, "expiring writer on drop failed");
        }
    }
}
