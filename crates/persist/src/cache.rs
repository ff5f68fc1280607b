//! Per-client caches: the last decoded state of each shard, and decoded batches.
//!
//! Neither cache is ever the truth. A cached state is used only when consensus reports
//! the same seqno for the head (states at one seqno never change); a cached batch is used
//! by key (batch blobs are immutable once written). The batch cache holds at most its
//! byte budget, evicting the least recently used batch first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::location::SeqNo;
use crate::state::ShardState;
use crate::{ShardId, Update};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The newest state this client has seen per shard.
#[derive(Debug, Default)]
pub(crate) struct StateCache {
    states: Mutex<HashMap<ShardId, (SeqNo, Arc<ShardState>)>>,
}

impl StateCache {
    /// The cached state of `shard` if it is the one at `seqno`.
    pub fn get(&self, shard: ShardId, seqno: SeqNo) -> Option<Arc<ShardState>> {
        match lock(&self.states).get(&shard) {
            Some((s, state)) if *s == seqno => Some(Arc::clone(state)),
            _ => None,
        }
    }

    /// Remembers `state` at `seqno`, unless a newer one is already cached.
    pub fn put(&self, shard: ShardId, seqno: SeqNo, state: Arc<ShardState>) {
        let mut states = lock(&self.states);
        match states.get(&shard) {
            Some((s, _)) if *s > seqno => {}
            _ => {
                states.insert(shard, (seqno, state));
            }
        }
    }
}

#[derive(Debug)]
struct Entry {
    updates: Arc<Vec<Update>>,
    bytes: usize,
    last_used: u64,
}

#[derive(Debug)]
struct Batches {
    entries: HashMap<String, Entry>,
    bytes: usize,
    budget: usize,
    clock: u64,
}

/// Decoded batches by blob key, bounded by an approximate byte budget.
#[derive(Debug)]
pub(crate) struct BatchCache {
    inner: Mutex<Batches>,
}

/// The approximate memory of decoded updates.
fn size_of_updates(updates: &[Update]) -> usize {
    updates
        .iter()
        .map(|(row, _, _)| row.byte_len() + std::mem::size_of::<Update>())
        .sum()
}

impl BatchCache {
    pub fn new(budget: usize) -> Self {
        BatchCache {
            inner: Mutex::new(Batches {
                entries: HashMap::new(),
                bytes: 0,
                budget,
                clock: 0,
            }),
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<Vec<Update>>> {
        let mut inner = lock(&self.inner);
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.entries.get_mut(key)?;
        entry.last_used = now;
        Some(Arc::clone(&entry.updates))
    }

    pub fn put(&self, key: &str, updates: Arc<Vec<Update>>) {
        let bytes = size_of_updates(&updates);
        let mut inner = lock(&self.inner);
        if bytes > inner.budget {
            return;
        }
        inner.clock += 1;
        let entry = Entry {
            updates,
            bytes,
            last_used: inner.clock,
        };
        if let Some(old) = inner.entries.insert(key.to_owned(), entry) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        while inner.bytes > inner.budget {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.bytes -= e.bytes;
            }
        }
    }

    pub fn remove(&self, key: &str) {
        let mut inner = lock(&self.inner);
        if let Some(e) = inner.entries.remove(key) {
            inner.bytes -= e.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use repr::{Datum, Row};

    use super::*;

    #[test]
    fn batch_cache_evicts_least_recently_used() {
        let one = Arc::new(vec![(Row::pack_slice(&[Datum::Int64(1)]), 0, 1)]);
        let size = size_of_updates(&one);
        let cache = BatchCache::new(2 * size);
        cache.put("a", Arc::clone(&one));
        cache.put("b", Arc::clone(&one));
        assert!(cache.get("a").is_some());
        cache.put("c", Arc::clone(&one));
        assert!(cache.get("b").is_none(), "b was the least recently used");
        assert!(cache.get("a").is_some());
        assert!(cache.get("c").is_some());
        cache.remove("a");
        assert!(cache.get("a").is_none());
    }
}
