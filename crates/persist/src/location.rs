//! The two external services persist is built on: [`Blob`] and [`Consensus`].
//!
//! Blob stores immutable values (batches) under string keys; consensus is a linearizable
//! log of versioned values per key, changed only by compare-and-set. Everything durable
//! in persist is a blob value referenced from the head of a consensus log, so the
//! invariant these traits keep is: a [`Consensus::compare_and_set`] that returns
//! [`CasResult::Committed`] is durable and totally ordered after every earlier commit
//! on the same key, and a committed head is never deleted by [`Consensus::truncate`].
//!
//! The traits are plain key/value interfaces: other crates keep their own logs (the
//! catalog, the timestamp oracle) under their own consensus keys.

use std::fmt;

/// Whether a failed operation may nevertheless have taken effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The operation definitely did not happen (or was a read): safe to retry or undo.
    Determinate,
    /// We don't know whether the operation happened (an I/O timeout, a lost commit ack).
    Indeterminate,
}

/// A failure of a blob or consensus backend.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} external error: {message}", match kind { ErrorKind::Determinate => "determinate", ErrorKind::Indeterminate => "indeterminate" })]
pub struct ExternalError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ExternalError {
    pub fn determinate(message: impl Into<String>) -> Self {
        ExternalError {
            kind: ErrorKind::Determinate,
            message: message.into(),
        }
    }

    pub fn indeterminate(message: impl Into<String>) -> Self {
        ExternalError {
            kind: ErrorKind::Indeterminate,
            message: message.into(),
        }
    }

    pub fn is_indeterminate(&self) -> bool {
        self.kind == ErrorKind::Indeterminate
    }
}

/// A key/value store of immutable values.
///
/// # Contract
/// - `set` is atomic: a concurrent or later `get` sees the whole old value or the whole
///   new one, never a mix, and once `set` returns `Ok` the value is durable.
/// - `delete` of a missing key succeeds.
/// - `list_keys` returns every key starting with `prefix`, sorted.
pub trait Blob: Send + Sync + fmt::Debug {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ExternalError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), ExternalError>;
    fn delete(&self, key: &str) -> Result<(), ExternalError>;
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, ExternalError>;
}

/// The position of a value in a consensus log.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct SeqNo(pub u64);

impl SeqNo {
    /// The seqno that follows this one.
    pub fn next(self) -> SeqNo {
        SeqNo(self.0 + 1)
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One entry of a consensus log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedData {
    pub seqno: SeqNo,
    pub data: Vec<u8>,
}

/// The answer of a [`Consensus::compare_and_set`] that reached the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasResult {
    /// The new value is now the head.
    Committed,
    /// The head was not at the expected seqno; nothing was written.
    ExpectationMismatch,
}

/// A linearizable log of versioned values per key.
///
/// # Contract
/// - `compare_and_set(key, expected, new)` commits `new` iff the head's seqno is
///   `expected` (`None`: the log is empty). `new.seqno` must be `expected + 1`, or `0`
///   when `expected` is `None`; any other seqno is a determinate error.
/// - `scan(key, from, limit)` returns at most `limit` entries with seqno `>= from`,
///   ascending.
/// - `truncate(key, seqno)` deletes the entries below `seqno` but never the head, and
///   returns how many it deleted.
pub trait Consensus: Send + Sync + fmt::Debug {
    fn head(&self, key: &str) -> Result<Option<VersionedData>, ExternalError>;
    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<SeqNo>,
        new: VersionedData,
    ) -> Result<CasResult, ExternalError>;
    fn scan(
        &self,
        key: &str,
        from: SeqNo,
        limit: usize,
    ) -> Result<Vec<VersionedData>, ExternalError>;
    fn truncate(&self, key: &str, seqno: SeqNo) -> Result<usize, ExternalError>;
}

/// Checks the seqno rule of [`Consensus::compare_and_set`].
pub(crate) fn check_next_seqno(
    key: &str,
    expected: Option<SeqNo>,
    new: SeqNo,
) -> Result<(), ExternalError> {
    let want = expected.map_or(SeqNo(0), SeqNo::next);
    if new == want {
        Ok(())
    } else {
        Err(ExternalError::determinate(format!(
            "invalid compare_and_set on \"{key}\": new seqno {new} must be {want}"
        )))
    }
}
