//! Persist: durable, definite collections ("shards") of `(Row, Timestamp, Diff)` updates.
//!
//! Module map:
//! - [`location`]: the [`Blob`] and [`Consensus`] traits every backend implements, and
//!   [`ExternalError`] (determinate vs indeterminate).
//! - [`mem`], [`file`], [`sqlite`]: backends (memory; files for blob; SQLite for
//!   consensus).
//! - [`client`]: [`PersistLocation`] (URLs), [`PersistConfig`], and [`PersistClient`],
//!   which opens handles and runs every state change as a compare-and-set loop.
//! - [`state`]: [`ShardState`], the seqno-versioned state of one shard (since, upper,
//!   batches, reader and writer leases) and its pure transitions.
//! - [`codec`]: versioned encodings of shard state and batches.
//! - [`write`]: [`WriteHandle`], `compare_and_append`.
//! - [`read`]: [`ReadHandle`] (snapshot, since, leases) and [`Listen`].
//! - [`compact`]: consolidation and merging of batches.
//! - `cache` (private): the per-client cache of shard states and decoded batches.
//!
//! Life of an append: [`WriteHandle::compare_and_append`] consolidates the updates,
//! writes them as one blob (`codec::encode_batch`), then CASes a new [`ShardState`] that
//! lists the batch and the new upper onto the shard's consensus log
//! (`PersistClient::update_state`). A reader's [`ReadHandle::snapshot`] reads the head
//! state and the blobs it lists. The head of the consensus log is the only truth; caches
//! only save decoding work.

pub mod client;
pub mod codec;
pub mod compact;
pub mod file;
pub mod location;
pub mod mem;
pub mod read;
pub mod sqlite;
pub mod state;
pub mod write;

mod cache;

use std::fmt;
use std::str::FromStr;

use repr::{Diff, Row, Timestamp};
use serde::{Deserialize, Serialize};

pub use client::{PersistClient, PersistConfig, PersistLocation};
pub use codec::CodecError;
pub use compact::consolidate;
pub use location::{Blob, CasResult, Consensus, ErrorKind, ExternalError, SeqNo, VersionedData};
pub use read::{Listen, ListenEvent, ReadHandle};
pub use state::{HollowBatch, ReaderState, ShardState, WriterState};
pub use write::WriteHandle;

/// One update of a collection: `diff` copies of `row` are added at `time`.
pub type Update = (Row, Timestamp, Diff);

/// The upper of a closed shard: no update will ever be added.
pub const CLOSED_UPPER: Timestamp = Timestamp::MAX;

/// The name of a shard; its consensus key is its `Display` form, `s<uuid>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardId(uuid::Uuid);

impl ShardId {
    /// A fresh, random shard id.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ShardId(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

impl fmt::Debug for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ShardId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let uuid = s
            .strip_prefix('s')
            .and_then(|u| uuid::Uuid::parse_str(u).ok())
            .ok_or_else(|| format!("invalid shard id \"{s}\""))?;
        Ok(ShardId(uuid))
    }
}

/// A reader lease of one shard, allocated by the shard's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReaderId(pub u64);

impl fmt::Display for ReaderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// A registered writer of one shard, allocated by the shard's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WriterId(pub u64);

impl fmt::Display for WriterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{}", self.0)
    }
}

/// A `compare_and_append` found the shard's upper elsewhere than expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("upper mismatch: expected {expected}, current {current}")]
pub struct UpperMismatch {
    pub expected: Timestamp,
    pub current: Timestamp,
}

/// The errors of persist operations.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PersistError {
    #[error(transparent)]
    External(#[from] ExternalError),
    /// Persisted bytes did not decode; data is at risk.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The caller broke an API precondition (an update outside `[lower, upper)`).
    #[error("invalid usage: {0}")]
    InvalidUsage(String),
    #[error(transparent)]
    UpperMismatch(#[from] UpperMismatch),
    /// The reader's lease ran out (no heartbeat) and was removed from the shard.
    #[error("reader {reader} of shard {shard} has expired")]
    LeaseExpired { shard: ShardId, reader: ReaderId },
    /// A batch stayed missing from blob across retries.
    #[error("batch \"{key}\" is missing from blob")]
    MissingBatch { key: String },
}

/// The errors of reads at a timestamp.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// `as_of` is before the since: the shard may have compacted those times away.
    #[error("as_of {as_of} is before the since {since}")]
    SinceViolation { as_of: Timestamp, since: Timestamp },
    /// `as_of` is not before the upper: the shard is not yet complete at `as_of`.
    #[error("as_of {as_of} is not yet available: upper is {upper}")]
    NotYetAvailable { as_of: Timestamp, upper: Timestamp },
    #[error(transparent)]
    Persist(#[from] PersistError),
}

impl From<ExternalError> for ReadError {
    fn from(e: ExternalError) -> Self {
        ReadError::Persist(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_id_round_trips_through_its_name() {
        let id = ShardId::new();
        let name = id.to_string();
        assert!(name.starts_with('s') && name.len() == 37, "{name}");
        assert_eq!(name.parse::<ShardId>().unwrap(), id);
        assert!("x".parse::<ShardId>().is_err());
        assert!(name[1..].parse::<ShardId>().is_err());
    }
}
