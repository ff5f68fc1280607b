//! Consolidation of updates, and compaction: merging a shard's batches into one.
//!
//! Compaction keeps every read that is still allowed exact: it only advances times to
//! the since (reads at `as_of >= since` advance them at least that far anyway) and
//! consolidates. It replaces batches with a compare-and-set that succeeds only if the
//! state still starts with exactly the batches it merged; otherwise its work is thrown
//! away. Replaced blobs are deleted only after the new state is committed.

use std::sync::Arc;

use crate::client::{PersistClient, Step};
use crate::state::ShardState;
use crate::{PersistError, ShardId, Update};

/// Sorts updates by `(row, time)`, sums the diffs of equal `(row, time)` pairs and drops
/// the pairs whose diffs sum to zero.
pub fn consolidate(updates: &mut Vec<Update>) {
    updates.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut out: Vec<Update> = Vec::with_capacity(updates.len());
    for (row, time, diff) in updates.drain(..) {
        match out.last_mut() {
            Some(last) if last.0 == row && last.1 == time => last.2 += diff,
            _ => {
                if out.last().is_some_and(|last| last.2 == 0) {
                    out.pop();
                }
                out.push((row, time, diff));
            }
        }
    }
    if out.last().is_some_and(|last| last.2 == 0) {
        out.pop();
    }
    *updates = out;
}

/// Merges all batches of `state` into one, with times advanced to the since (but kept
/// inside the merged batch's range) and consolidated. Returns whether the merged batch
/// was committed.
pub(crate) fn compact(
    client: &PersistClient,
    shard_id: ShardId,
    state: &ShardState,
) -> Result<bool, PersistError> {
    let old = state.batches.clone();
    let (Some(first), Some(last)) = (old.first(), old.last()) else {
        return Ok(false);
    };
    if old.len() < 2 {
        return Ok(false);
    }
    let (lower, upper) = (first.lower, last.upper);
    let parts = match client.fetch_batches(&old) {
        // Another compaction got there first.
        Err(PersistError::MissingBatch { .. }) => return Ok(false),
        parts => parts?,
    };
    let floor = state.since.min(upper - 1);
    let mut merged: Vec<Update> = parts
        .iter()
        .flat_map(|part| Arc::as_ref(part).iter())
        .map(|(row, time, diff)| (row.clone(), (*time).max(floor), *diff))
        .collect();
    consolidate(&mut merged);
    let merged_len = merged.len();
    let batch = client.write_batch(shard_id, lower, upper, merged)?;
    let replaced = client.update_state(shard_id, |state, _now| {
        if state.replace_batches(&old, batch.clone()) {
            Step::Write(true)
        } else {
            Step::Skip(false)
        }
    });
    match replaced {
        Ok((_, true)) => {
            tracing::debug!(shard = %shard_id, batches = old.len(), updates = merged_len, "compacted");
            for b in &old {
                client.delete_batch(&b.key);
            }
            Ok(true)
        }
        Ok((_, false)) => {
            if let Some(b) = &batch {
                client.delete_batch(&b.key);
            }
            Ok(false)
        }
        Err(e) => {
            let maybe_committed = matches!(&e, PersistError::External(x) if x.is_indeterminate());
            if let (Some(b), false) = (&batch, maybe_committed) {
                client.delete_batch(&b.key);
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use repr::{Datum, Row};

    use super::*;

    fn row(i: i64) -> Row {
        Row::pack_slice(&[Datum::Int64(i)])
    }

    #[test]
    fn consolidate_sorts_merges_and_drops_zeros() {
        let mut updates = vec![
            (row(2), 1, 1),
            (row(1), 5, 1),
            (row(2), 1, -1),
            (row(1), 3, 2),
            (row(1), 5, 2),
            (row(3), 0, 0),
        ];
        consolidate(&mut updates);
        assert_eq!(updates, vec![(row(1), 3, 2), (row(1), 5, 3)]);
    }
}
