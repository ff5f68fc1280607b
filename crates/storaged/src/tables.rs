//! [`TableWriter`]: table writes into persist shards.
//!
//! Each append writes its updates at one timestamp and then advances every table's
//! upper past it, so that a read at that timestamp finds every table complete.
//! Appends to several tables are written one shard after another: a crash between two
//! shards can leave a multi-table transaction half visible (acknowledged writes are
//! never lost). TODO(#5): a transaction shard makes multi-table writes atomic.

use std::collections::BTreeMap;

use persist::{PersistClient, ShardId, WriteHandle};
use repr::{Diff, GlobalId, Row, Timestamp};

pub struct TableWriter {
    persist: PersistClient,
    tables: BTreeMap<GlobalId, WriteHandle>,
}

impl TableWriter {
    pub fn new(persist: PersistClient) -> Self {
        TableWriter {
            persist,
            tables: BTreeMap::new(),
        }
    }

    pub fn register(&mut self, id: GlobalId, shard_id: &str) -> Result<(), String> {
        let shard: ShardId = shard_id
            .parse()
            .map_err(|e| format!("invalid shard id {shard_id}: {e}"))?;
        let writer = self
            .persist
            .open_writer(shard, &format!("table {id}"))
            .map_err(|e| e.to_string())?;
        self.tables.insert(id, writer);
        Ok(())
    }

    pub fn drop_table(&mut self, id: GlobalId) {
        self.tables.remove(&id);
    }

    /// The upper of a table's shard, as last known.
    pub fn upper(&self, id: GlobalId) -> Option<Timestamp> {
        self.tables.get(&id).map(|w| w.upper())
    }

    /// Writes `updates` at `write_ts`, then advances every table to `write_ts + 1`.
    pub fn append(
        &mut self,
        write_ts: Timestamp,
        updates: Vec<(GlobalId, Vec<(Row, Diff)>)>,
    ) -> Result<(), String> {
        let new_upper = write_ts + 1;
        // One append per table, however many statements wrote to it.
        let mut by_table: BTreeMap<GlobalId, Vec<(Row, Diff)>> = BTreeMap::new();
        for (id, rows) in updates {
            by_table.entry(id).or_default().extend(rows);
        }
        for (id, rows) in by_table {
            let writer = self
                .tables
                .get_mut(&id)
                .ok_or_else(|| format!("unknown table {id}"))?;
            let expected = writer.fetch_recent_upper().map_err(|e| e.to_string())?;
            if expected > write_ts {
                return Err(format!(
                    "table {id} is already written through {expected}, past {write_ts}"
                ));
            }
            let batch: Vec<(Row, Timestamp, Diff)> = rows
                .into_iter()
                .map(|(row, diff)| (row, write_ts, diff))
                .collect();
            match writer
                .compare_and_append(&batch, expected, new_upper)
                .map_err(|e| e.to_string())?
            {
                Ok(()) => {}
                Err(mismatch) => {
                    return Err(format!("table {id} was written concurrently: {mismatch}"))
                }
            }
        }
        self.advance_all(new_upper)
    }

    /// Advances every table's upper to at least `upper`.
    pub fn advance_all(&mut self, upper: Timestamp) -> Result<(), String> {
        for (id, writer) in self.tables.iter_mut() {
            let mut current = writer.upper();
            for _ in 0..3 {
                if current >= upper {
                    break;
                }
                match writer
                    .compare_and_append(&[], current, upper)
                    .map_err(|e| format!("advancing {id}: {e}"))?
                {
                    Ok(()) => break,
                    Err(mismatch) => current = mismatch.current,
                }
            }
        }
        Ok(())
    }
}
