//! In-memory [`Blob`] and [`Consensus`] backends, for tests and throwaway environments.
//!
//! Both keep the trait contracts exactly (a CAS is checked and applied under one lock).
//! [`mem_blob`] and [`mem_consensus`] hand out process-wide instances keyed by URL, so
//! two clients that open `mem://name` share one state.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::location::{
    check_next_seqno, Blob, CasResult, Consensus, ExternalError, SeqNo, VersionedData,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a map half-updated: every update is
    // a single insert or remove.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Blob values in a map.
#[derive(Debug, Default)]
pub struct MemBlob {
    values: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemBlob {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Blob for MemBlob {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ExternalError> {
        Ok(lock(&self.values).get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), ExternalError> {
        lock(&self.values).insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), ExternalError> {
        lock(&self.values).remove(key);
        Ok(())
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, ExternalError> {
        let values = lock(&self.values);
        Ok(values
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }
}

/// Consensus logs in a map; each log is ascending by seqno.
#[derive(Debug, Default)]
pub struct MemConsensus {
    logs: Mutex<HashMap<String, Vec<VersionedData>>>,
}

impl MemConsensus {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Consensus for MemConsensus {
    fn head(&self, key: &str) -> Result<Option<VersionedData>, ExternalError> {
        Ok(lock(&self.logs)
            .get(key)
            .and_then(|log| log.last().cloned()))
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<SeqNo>,
        new: VersionedData,
    ) -> Result<CasResult, ExternalError> {
        check_next_seqno(key, expected, new.seqno)?;
        let mut logs = lock(&self.logs);
        let log = logs.entry(key.to_owned()).or_default();
        if log.last().map(|v| v.seqno) != expected {
            return Ok(CasResult::ExpectationMismatch);
        }
        log.push(new);
        Ok(CasResult::Committed)
    }

    fn scan(
        &self,
        key: &str,
        from: SeqNo,
        limit: usize,
    ) -> Result<Vec<VersionedData>, ExternalError> {
        let logs = lock(&self.logs);
        let log = logs.get(key).map(Vec::as_slice).unwrap_or_default();
        Ok(log
            .iter()
            .filter(|v| v.seqno >= from)
            .take(limit)
            .cloned()
            .collect())
    }

    fn truncate(&self, key: &str, seqno: SeqNo) -> Result<usize, ExternalError> {
        let mut logs = lock(&self.logs);
        let Some(log) = logs.get_mut(key) else {
            return Ok(0);
        };
        let before = log.len();
        let head = log.last().map(|v| v.seqno);
        log.retain(|v| v.seqno >= seqno || Some(v.seqno) == head);
        Ok(before - log.len())
    }
}

type Registry<T> = OnceLock<Mutex<HashMap<String, Arc<T>>>>;

static BLOBS: Registry<MemBlob> = OnceLock::new();
static CONSENSUSES: Registry<MemConsensus> = OnceLock::new();

fn registered<T: Default>(registry: &'static Registry<T>, url: &str) -> Arc<T> {
    let mut map = lock(registry.get_or_init(Default::default));
    Arc::clone(map.entry(url.to_owned()).or_default())
}

/// The process-wide [`MemBlob`] for `url` (such as `mem://test`), created on first use.
pub fn mem_blob(url: &str) -> Arc<MemBlob> {
    registered(&BLOBS, url)
}

/// The process-wide [`MemConsensus`] for `url`, created on first use.
pub fn mem_consensus(url: &str) -> Arc<MemConsensus> {
    registered(&CONSENSUSES, url)
}
