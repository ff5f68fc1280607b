//! [`PersistClient`]: the entry point, and the compare-and-set loop behind every change.
//!
//! A client owns a [`Blob`], a [`Consensus`] and per-client caches. Every change to a
//! shard goes through [`PersistClient::update_state`]: read the head state, apply a pure
//! transition to a copy, and compare-and-set it at the next seqno, retrying from the new
//! head on a conflict. So a transition is applied exactly once, to the state it was
//! computed from, and the consensus head is always a valid [`ShardState`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{BatchCache, StateCache};
use crate::codec;
use crate::file::FileBlob;
use crate::location::{Blob, CasResult, Consensus, ExternalError, SeqNo, VersionedData};
use crate::mem::{mem_blob, mem_consensus};
use crate::read::ReadHandle;
use crate::sqlite::SqliteConsensus;
use crate::state::{HollowBatch, ShardState};
use crate::write::WriteHandle;
use crate::{PersistError, ShardId, Update};

/// Consensus entries kept behind the head; older ones are truncated.
const KEEP_SEQNOS: u64 = 8;

/// Where a client keeps its data.
///
/// Blob URLs: `file:///abs/path`, a plain path, or `mem://name`. Consensus URLs:
/// `sqlite:///abs/path/consensus.db` or `mem://name`. Two clients that open the same
/// `mem://name` in one process share state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistLocation {
    pub blob_url: String,
    pub consensus_url: String,
}

impl PersistLocation {
    pub fn new(blob_url: impl Into<String>, consensus_url: impl Into<String>) -> Self {
        PersistLocation {
            blob_url: blob_url.into(),
            consensus_url: consensus_url.into(),
        }
    }

    /// The embedded default: files under `dir/blob`, SQLite at `dir/consensus.db`.
    pub fn local(dir: &Path) -> Self {
        PersistLocation::new(
            format!("file://{}", dir.join("blob").display()),
            format!("sqlite://{}", dir.join("consensus.db").display()),
        )
    }

    /// A fresh in-memory location no other client shares unless given the same name.
    pub fn mem(name: &str) -> Self {
        let url = format!("mem://{name}");
        PersistLocation::new(url.clone(), url)
    }
}

/// Tunables of a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistConfig {
    /// A reader or writer silent for longer than this loses its lease.
    pub lease_duration: Duration,
    /// Whether appends merge batches once there are more than `compaction_threshold`.
    pub compaction_enabled: bool,
    pub compaction_threshold: usize,
    /// The approximate memory of the decoded-batch cache.
    pub batch_cache_bytes: usize,
}

impl Default for PersistConfig {
    fn default() -> Self {
        PersistConfig {
            lease_duration: Duration::from_secs(5 * 60),
            compaction_enabled: true,
            compaction_threshold: 8,
            batch_cache_bytes: 64 << 20,
        }
    }
}

/// The scheme of `url` (the part before `://`), if it has one.
fn scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(scheme, _)| scheme)
}

/// Opens the blob backend a URL names.
pub fn open_blob(url: &str) -> Result<Arc<dyn Blob>, ExternalError> {
    match scheme(url) {
        Some("mem") => Ok(mem_blob(url)),
        Some("file") => Ok(Arc::new(FileBlob::open(&url["file://".len()..])?)),
        None if !url.is_empty() => Ok(Arc::new(FileBlob::open(url)?)),
        // `s3://bucket/prefix` (aws-sdk-s3) is to be added here.
        other => Err(ExternalError::determinate(format!(
            "unsupported blob url scheme \"{}\" in \"{url}\"",
            other.unwrap_or("")
        ))),
    }
}

/// Opens the consensus backend a URL names.
pub fn open_consensus(url: &str) -> Result<Arc<dyn Consensus>, ExternalError> {
    match scheme(url) {
        Some("mem") => Ok(mem_consensus(url)),
        Some("sqlite") => Ok(Arc::new(SqliteConsensus::open(Path::new(
            &url["sqlite://".len()..],
        ))?)),
        // `postgres://` (tokio-postgres) is to be added here.
        other => Err(ExternalError::determinate(format!(
            "unsupported consensus url scheme \"{}\" in \"{url}\"",
            other.unwrap_or("")
        ))),
    }
}

/// What a state transition decided.
pub(crate) enum Step<R> {
    /// Commit the changed state, then return `R`.
    Write(R),
    /// Leave the state as it is and return `R`.
    Skip(R),
}

#[derive(Debug)]
struct Inner {
    blob: Arc<dyn Blob>,
    consensus: Arc<dyn Consensus>,
    config: PersistConfig,
    states: StateCache,
    batches: BatchCache,
}

/// A handle to one persist location; cheap to clone, `Send + Sync`.
#[derive(Clone, Debug)]
pub struct PersistClient {
    inner: Arc<Inner>,
}

impl PersistClient {
    /// Opens the backends `location` names, with the default config.
    pub fn open(location: &PersistLocation) -> Result<PersistClient, ExternalError> {
        PersistClient::open_with_config(location, PersistConfig::default())
    }

    pub fn open_with_config(
        location: &PersistLocation,
        config: PersistConfig,
    ) -> Result<PersistClient, ExternalError> {
        let blob = open_blob(&location.blob_url)?;
        let consensus = open_consensus(&location.consensus_url)?;
        Ok(PersistClient::new(blob, consensus, config))
    }

    /// A client over backends the caller built.
    pub fn new(
        blob: Arc<dyn Blob>,
        consensus: Arc<dyn Consensus>,
        config: PersistConfig,
    ) -> PersistClient {
        let batches = BatchCache::new(config.batch_cache_bytes);
        PersistClient {
            inner: Arc::new(Inner {
                blob,
                consensus,
                config,
                states: StateCache::default(),
                batches,
            }),
        }
    }

    pub fn blob(&self) -> &Arc<dyn Blob> {
        &self.inner.blob
    }

    pub fn consensus(&self) -> &Arc<dyn Consensus> {
        &self.inner.consensus
    }

    pub fn config(&self) -> &PersistConfig {
        &self.inner.config
    }

    /// Registers a writer of `shard_id` (creating the shard if it does not exist).
    pub fn open_writer(&self, shard_id: ShardId, name: &str) -> Result<WriteHandle, PersistError> {
        WriteHandle::open(self.clone(), shard_id, name)
    }

    /// Registers a reader of `shard_id` whose lease starts at the shard's since.
    pub fn open_reader(&self, shard_id: ShardId, name: &str) -> Result<ReadHandle, PersistError> {
        ReadHandle::open(self.clone(), shard_id, name)
    }

    /// The current state of a shard, for introspection and tests.
    pub fn inspect_shard(&self, shard_id: ShardId) -> Result<ShardState, PersistError> {
        Ok(ShardState::clone(&self.fetch_state(shard_id)?.1))
    }

    /// The head state of a shard (the initial state if it was never written).
    pub(crate) fn fetch_state(
        &self,
        shard_id: ShardId,
    ) -> Result<(Option<SeqNo>, Arc<ShardState>), PersistError> {
        let Some(head) = self.inner.consensus.head(&shard_id.to_string())? else {
            return Ok((None, Arc::new(ShardState::new(shard_id))));
        };
        if let Some(state) = self.inner.states.get(shard_id, head.seqno) {
            return Ok((Some(head.seqno), state));
        }
        let state = codec::decode_state(&head.data)?;
        if state.shard_id != shard_id {
            return Err(PersistError::Codec(codec::CodecError {
                what: "shard state",
                detail: format!("state of {} stored under {shard_id}", state.shard_id),
            }));
        }
        let state = Arc::new(state);
        self.inner
            .states
            .put(shard_id, head.seqno, Arc::clone(&state));
        Ok((Some(head.seqno), state))
    }

    /// Applies `transition` to the newest state of the shard and commits the result,
    /// retrying on conflicts. Expired leases are dropped first, as part of every write.
    /// Returns the state the transition's result belongs to.
    pub(crate) fn update_state<R>(
        &self,
        shard_id: ShardId,
        mut transition: impl FnMut(&mut ShardState, u64) -> Step<R>,
    ) -> Result<(Arc<ShardState>, R), PersistError> {
        let key = shard_id.to_string();
        let lease_ms =
            u64::try_from(self.inner.config.lease_duration.as_millis()).unwrap_or(u64::MAX);
        let (mut seqno, mut current) = self.fetch_state(shard_id)?;
        loop {
            let now = repr::now_millis();
            let mut next = ShardState::clone(&current);
            next.expire_leases(now, lease_ms);
            let result = match transition(&mut next, now) {
                Step::Skip(result) => return Ok((current, result)),
                Step::Write(result) => result,
            };
            let new_seqno = seqno.map_or(SeqNo(0), SeqNo::next);
            let data = codec::encode_state(&next);
            let new = VersionedData {
                seqno: new_seqno,
                data,
            };
            match self.inner.consensus.compare_and_set(&key, seqno, new)? {
                CasResult::Committed => {
                    let next = Arc::new(next);
                    self.inner
                        .states
                        .put(shard_id, new_seqno, Arc::clone(&next));
                    self.maybe_truncate(&key, new_seqno);
                    return Ok((next, result));
                }
                CasResult::ExpectationMismatch => {
                    tracing::trace!(shard = %shard_id, ?seqno, "state changed underneath; retrying");
                    (seqno, current) = self.fetch_state(shard_id)?;
                }
            }
        }
    }

    fn maybe_truncate(&self, key: &str, head: SeqNo) {
        if head.0.is_multiple_of(KEEP_SEQNOS) && head.0 >= KEEP_SEQNOS {
            if let Err(e) = self
                .inner
                .consensus
                .truncate(key, SeqNo(head.0 - KEEP_SEQNOS))
            {
                tracing::debug!(shard = key, error = %e, "truncating consensus failed");
            }
        }
    }

    /// Writes consolidated `updates` with times in `[lower, upper)` as a batch blob; none
    /// if there are no updates.
    pub(crate) fn write_batch(
        &self,
        shard_id: ShardId,
        lower: u64,
        upper: u64,
        updates: Vec<Update>,
    ) -> Result<Option<HollowBatch>, PersistError> {
        if updates.is_empty() {
            return Ok(None);
        }
        let key = format!("{shard_id}/batch-{}", uuid::Uuid::new_v4().simple());
        self.inner.blob.set(&key, &codec::encode_batch(&updates))?;
        let batch = HollowBatch {
            lower,
            upper,
            key: key.clone(),
            len: updates.len(),
        };
        self.inner.batches.put(&key, Arc::new(updates));
        Ok(Some(batch))
    }

    /// The updates of `batches`. [`PersistError::MissingBatch`] usually means a
    /// compaction replaced a batch after the caller read the state: read it again.
    pub(crate) fn fetch_batches<'a>(
        &self,
        batches: impl IntoIterator<Item = &'a HollowBatch>,
    ) -> Result<Vec<Arc<Vec<Update>>>, PersistError> {
        let mut out = Vec::new();
        for batch in batches {
            if let Some(updates) = self.inner.batches.get(&batch.key) {
                out.push(updates);
                continue;
            }
            let Some(bytes) = self.inner.blob.get(&batch.key)? else {
                return Err(PersistError::MissingBatch {
                    key: batch.key.clone(),
                });
            };
            let updates = Arc::new(codec::decode_batch(&bytes)?);
            self.inner.batches.put(&batch.key, Arc::clone(&updates));
            out.push(updates);
        }
        Ok(out)
    }

    /// Deletes a batch blob no state refers to; failures only leak the blob.
    pub(crate) fn delete_batch(&self, key: &str) {
        self.inner.batches.remove(key);
        if let Err(e) = self.inner.blob.delete(key) {
            tracing::warn!(key, error = %e, "deleting an unreferenced batch failed; it leaks");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{Listen, ReadHandle};

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_can_move_between_threads() {
        assert_send_sync::<PersistClient>();
        assert_send_sync::<WriteHandle>();
        assert_send_sync::<ReadHandle>();
        assert_send_sync::<Listen>();
    }

    #[test]
    fn local_location_names_files_and_sqlite() {
        let loc = PersistLocation::local(Path::new("/data/freshet"));
        assert_eq!(loc.blob_url, "file:///data/freshet/blob");
        assert_eq!(loc.consensus_url, "sqlite:///data/freshet/consensus.db");
    }
}
