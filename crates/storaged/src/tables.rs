//! [`TableWriter`]: table writes into persist shards.
//!
//! Each append writes its updates at one timestamp and then advances every table's
//! upper past it, so that a read at that timestamp finds every table complete. A write
//! to several tables is recorded in the transaction log first ([`crate::txn_log`]), so
//! a crash between two shards' appends is repaired on restart: a multi-table
//! transaction is all there or not at all.

use std::collections::BTreeMap;

use persist::{PersistClient, ShardId, WriteHandle};
use repr::{Diff, GlobalId, Row, Timestamp};

use crate::txn_log::{TxnLog, TxnRecord};

pub struct TableWriter {
    persist: PersistClient,
    tables: BTreeMap<GlobalId, (ShardId, WriteHandle)>,
    log: TxnLog,
    /// Whether the log's last write is known to be applied everywhere.
    recovered: bool,
    /// Tests: fail a multi-table append after this many shards, as a crash would.
    #[cfg(test)]
    crash_after_shards: Option<usize>,
}

impl TableWriter {
    pub fn new(persist: PersistClient) -> Self {
        TableWriter {
            persist,
            tables: BTreeMap::new(),
            log: TxnLog::default(),
            recovered: false,
            #[cfg(test)]
            crash_after_shards: None,
        }
    }

    /// Finishes the multi-table write the log holds, if a crash interrupted it: its
    /// rows are appended to every table not yet past its timestamp. Runs before any
    /// other write or upper advance; until it succeeds, those fail.
    pub fn recover(&mut self) -> Result<(), String> {
        if self.recovered {
            return Ok(());
        }
        if let Some(record) = self.log.load(self.persist.consensus().as_ref())? {
            for (shard, rows) in &record.writes {
                let shard: ShardId = shard
                    .parse()
                    .map_err(|e| format!("invalid shard id {shard} in the log: {e}"))?;
                let mut writer = self
                    .persist
                    .open_writer(shard, "table recovery")
                    .map_err(|e| e.to_string())?;
                let applied = append_at(&mut writer, record.write_ts, rows.clone())?;
                if applied {
                    tracing::info!(%shard, ts = record.write_ts, "recovered a multi-table write");
                }
                let _ = writer.expire();
            }
        }
        self.recovered = true;
        Ok(())
    }

    pub fn register(&mut self, id: GlobalId, shard_id: &str) -> Result<(), String> {
        let shard: ShardId = shard_id
            .parse()
            .map_err(|e| format!("invalid shard id {shard_id}: {e}"))?;
        let writer = self
            .persist
            .open_writer(shard, &format!("table {id}"))
            .map_err(|e| e.to_string())?;
        self.tables.insert(id, (shard, writer));
        Ok(())
    }

    pub fn drop_table(&mut self, id: GlobalId) {
        self.tables.remove(&id);
    }

    /// The upper of a table's shard, as last known.
    pub fn upper(&self, id: GlobalId) -> Option<Timestamp> {
        self.tables.get(&id).map(|(_, w)| w.upper())
    }

    /// Writes `updates` at `write_ts`, then advances every table to `write_ts + 1`.
    pub fn append(
        &mut self,
        write_ts: Timestamp,
        updates: Vec<(GlobalId, Vec<(Row, Diff)>)>,
    ) -> Result<(), String> {
        self.recover()?;
        let new_upper = write_ts + 1;
        // One append per table, however many statements wrote to it.
        let mut by_table: BTreeMap<GlobalId, Vec<(Row, Diff)>> = BTreeMap::new();
        for (id, rows) in updates {
            by_table.entry(id).or_default().extend(rows);
        }
        for id in by_table.keys() {
            if !self.tables.contains_key(id) {
                return Err(format!("unknown table {id}"));
            }
        }
        if by_table.len() > 1 {
            let record = TxnRecord {
                write_ts,
                writes: by_table
                    .iter()
                    .map(|(id, rows)| (self.tables[id].0.to_string(), rows.clone()))
                    .collect(),
            };
            self.log
                .record(self.persist.consensus().as_ref(), &record)?;
        }
        for (applied, (id, rows)) in by_table.into_iter().enumerate() {
            #[cfg(test)]
            if self.crash_after_shards == Some(applied) {
                return Err("injected crash".into());
            }
            let _ = applied;
            let (_, writer) = self.tables.get_mut(&id).expect("checked above");
            if !append_at(writer, write_ts, rows)? {
                return Err(format!(
                    "table {id} is already written through {}, past {write_ts}",
                    writer.upper()
                ));
            }
        }
        self.advance_all(new_upper)
    }

    /// Advances every table's upper to at least `upper`.
    pub fn advance_all(&mut self, upper: Timestamp) -> Result<(), String> {
        self.recover()?;
        for (id, (_, writer)) in self.tables.iter_mut() {
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

/// Appends `rows` at `write_ts` (the upper then passes it) unless the shard is past
/// `write_ts` already; returns whether it appended.
fn append_at(
    writer: &mut WriteHandle,
    write_ts: Timestamp,
    rows: Vec<(Row, Diff)>,
) -> Result<bool, String> {
    let expected = writer.fetch_recent_upper().map_err(|e| e.to_string())?;
    if expected > write_ts {
        return Ok(false);
    }
    let batch: Vec<(Row, Timestamp, Diff)> = rows
        .into_iter()
        .map(|(row, diff)| (row, write_ts, diff))
        .collect();
    match writer
        .compare_and_append(&batch, expected, write_ts + 1)
        .map_err(|e| e.to_string())?
    {
        Ok(()) => Ok(true),
        Err(mismatch) => Err(format!(
            "shard {} was written concurrently: {mismatch}",
            writer.shard_id()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use persist::PersistLocation;
    use repr::Datum;

    fn row(v: i64) -> Row {
        Row::pack_slice(&[Datum::Int64(v)])
    }

    fn contents(client: &PersistClient, shard: ShardId, as_of: Timestamp) -> Vec<(Row, Diff)> {
        let reader = client.open_reader(shard, "test").unwrap();
        reader
            .snapshot(as_of)
            .unwrap()
            .into_iter()
            .map(|(row, _, diff)| (row, diff))
            .collect()
    }

    /// A multi-table write interrupted after `crash_after` shards is completed by the
    /// next writer's recovery: every table has its rows, once.
    fn interrupted_write_is_completed(crash_after: usize) {
        let location = PersistLocation::mem(&format!("txn-log-{crash_after}"));
        let client = PersistClient::open(&location).unwrap();
        let (a, b, c) = (ShardId::new(), ShardId::new(), ShardId::new());
        let ids = [GlobalId::User(1), GlobalId::User(2), GlobalId::User(3)];
        let mut writer = TableWriter::new(client.clone());
        for (id, shard) in ids.iter().zip([a, b, c]) {
            writer.register(*id, &shard.to_string()).unwrap();
        }
        writer
            .append(10, vec![(ids[0], vec![(row(1), 1)])])
            .unwrap();
        writer.crash_after_shards = Some(crash_after);
        let txn = vec![
            (ids[0], vec![(row(2), 1)]),
            (ids[1], vec![(row(3), 1)]),
            (ids[2], vec![(row(4), 1), (row(5), 1)]),
        ];
        assert!(writer.append(20, txn).is_err());
        drop(writer);

        // A new process: recovery runs before anything else is written.
        let mut writer = TableWriter::new(client.clone());
        for (id, shard) in ids.iter().zip([a, b, c]) {
            writer.register(*id, &shard.to_string()).unwrap();
        }
        writer.advance_all(30).unwrap();
        let mut got_a = contents(&client, a, 29);
        got_a.sort();
        assert_eq!(got_a, vec![(row(1), 1), (row(2), 1)]);
        assert_eq!(contents(&client, b, 29), vec![(row(3), 1)]);
        assert_eq!(contents(&client, c, 29).len(), 2);
        // Recovering again changes nothing.
        let mut again = TableWriter::new(client.clone());
        again.recover().unwrap();
        assert_eq!(contents(&client, b, 29), vec![(row(3), 1)]);
    }

    #[test]
    fn a_write_interrupted_before_any_shard_is_completed() {
        interrupted_write_is_completed(0);
    }

    #[test]
    fn a_write_interrupted_between_shards_is_completed() {
        interrupted_write_is_completed(1);
        interrupted_write_is_completed(2);
    }

    #[test]
    fn single_table_writes_skip_the_log() {
        let client = PersistClient::open(&PersistLocation::mem("txn-log-single")).unwrap();
        let mut writer = TableWriter::new(client.clone());
        writer
            .register(GlobalId::User(1), &ShardId::new().to_string())
            .unwrap();
        writer
            .append(5, vec![(GlobalId::User(1), vec![(row(1), 1)])])
            .unwrap();
        assert!(client
            .consensus()
            .head("storaged-txn-log")
            .unwrap()
            .is_none());
    }
}
