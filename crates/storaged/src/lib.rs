//! storaged: writes collections into persist.
//!
//! Module map:
//! - [`spawn_storaged`]: the command loop (a thread in the embedded default).
//! - [`tables::TableWriter`]: appends table writes to their shards with
//!   `compare_and_append` and advances every table's upper together.
//! - [`txn_log`]: records a write to several tables before applying it, so a crash
//!   cannot leave it half applied.
//!
//! Sources (Kafka, load generators) will run here too; compute only ever reads what
//! storaged wrote to persist.

pub mod tables;
pub mod txn_log;

use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};
use persist::PersistClient;
use storage_client::{StorageCommand, StorageResponse};

use crate::tables::TableWriter;

/// Starts storaged's command loop; it ends when the command channel closes.
pub fn spawn_storaged(
    persist: PersistClient,
    commands: Receiver<StorageCommand>,
    responses: Sender<StorageResponse>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("storaged".into())
        .spawn(move || {
            let mut tables = TableWriter::new(persist);
            let mut next = None;
            loop {
                let command = match next.take() {
                    Some(c) => c,
                    None => match commands.recv() {
                        Ok(c) => c,
                        Err(_) => break,
                    },
                };
                // Ticks arrive faster than a slow store may apply them: consecutive
                // AdvanceUppers collapse into the latest.
                let command = match command {
                    StorageCommand::AdvanceUppers { mut upper } => {
                        while let Ok(c) = commands.try_recv() {
                            match c {
                                StorageCommand::AdvanceUppers { upper: u } => upper = upper.max(u),
                                other => {
                                    next = Some(other);
                                    break;
                                }
                            }
                        }
                        StorageCommand::AdvanceUppers { upper }
                    }
                    other => other,
                };
                match command {
                    StorageCommand::CreateCollection {
                        id,
                        shard_id,
                        desc: _,
                    } => {
                        if let Err(message) = tables.register(id, &shard_id) {
                            let _ = responses.send(StorageResponse::Error {
                                id: Some(id),
                                message,
                            });
                        }
                    }
                    StorageCommand::DropCollection { id } => tables.drop_table(id),
                    StorageCommand::Append {
                        request_id,
                        write_ts,
                        updates,
                    } => {
                        let result = tables.append(write_ts, updates);
                        let _ = responses.send(StorageResponse::AppendDone { request_id, result });
                    }
                    StorageCommand::AdvanceUppers { upper } => {
                        if let Err(message) = tables.advance_all(upper) {
                            let _ = responses.send(StorageResponse::Error { id: None, message });
                        }
                    }
                }
            }
        })
}
