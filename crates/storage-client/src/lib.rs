//! The storage protocol: what environmentd asks of storaged, and its controller.
//!
//! Module map:
//! - [`StorageCommand`] / [`StorageResponse`]: collections to create and drop, and
//!   table appends, each answered by request id.
//! - [`StorageController`]: the coordinator's handle; `append` waits for durability.
//!
//! # Contract
//! - `CreateCollection` before any append to it. A collection's upper only advances.
//! - `Append { updates, write_ts }` writes every update at `write_ts` and advances the
//!   upper of *every* table to `write_ts + 1` (so reads at `write_ts` never wait), then
//!   answers `AppendDone`. `write_ts` must be at or after every table's upper; an
//!   append answered `Ok` is durable.
//! - `AdvanceUppers { upper }` advances every table's upper to `upper` (the tick).

use crossbeam_channel::{Receiver, Sender};
use repr::{Diff, GlobalId, RelationDesc, Row, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StorageCommand {
    /// A table stored in the persist shard `shard_id` (text form).
    CreateCollection {
        id: GlobalId,
        shard_id: String,
        desc: RelationDesc,
    },
    DropCollection {
        id: GlobalId,
    },
    Append {
        request_id: u64,
        write_ts: Timestamp,
        updates: Vec<(GlobalId, Vec<(Row, Diff)>)>,
    },
    AdvanceUppers {
        upper: Timestamp,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StorageResponse {
    AppendDone {
        request_id: u64,
        result: Result<(), String>,
    },
    /// A collection could not be written (for example a dead blob store).
    Error {
        id: Option<GlobalId>,
        message: String,
    },
}

/// The coordinator's handle on storaged.
pub struct StorageController {
    commands: Sender<StorageCommand>,
    responses: Receiver<StorageResponse>,
    next_request: u64,
}

impl StorageController {
    pub fn new(commands: Sender<StorageCommand>, responses: Receiver<StorageResponse>) -> Self {
        StorageController {
            commands,
            responses,
            next_request: 0,
        }
    }

    fn send(&self, command: StorageCommand) -> Result<(), String> {
        self.commands
            .send(command)
            .map_err(|_| "storaged is not running".to_string())
    }

    pub fn create_collection(
        &self,
        id: GlobalId,
        shard_id: String,
        desc: RelationDesc,
    ) -> Result<(), String> {
        self.send(StorageCommand::CreateCollection { id, shard_id, desc })
    }

    pub fn drop_collection(&self, id: GlobalId) -> Result<(), String> {
        self.send(StorageCommand::DropCollection { id })
    }

    pub fn advance_uppers(&self, upper: Timestamp) -> Result<(), String> {
        self.send(StorageCommand::AdvanceUppers { upper })
    }

    /// Appends `updates` at `write_ts` and waits until they are durable.
    pub fn append(
        &mut self,
        write_ts: Timestamp,
        updates: Vec<(GlobalId, Vec<(Row, Diff)>)>,
    ) -> Result<(), String> {
        self.next_request += 1;
        let request_id = self.next_request;
        self.send(StorageCommand::Append {
            request_id,
            write_ts,
            updates,
        })?;
        loop {
            match self.responses.recv() {
                Ok(StorageResponse::AppendDone {
                    request_id: r,
                    result,
                }) if r == request_id => return result,
                Ok(_) => continue,
                Err(_) => return Err("storaged stopped before answering".into()),
            }
        }
    }
}

/// A connected controller and the storaged end of the channels.
pub fn channel() -> (
    StorageController,
    Receiver<StorageCommand>,
    Sender<StorageResponse>,
) {
    let (ctx, crx) = crossbeam_channel::unbounded();
    let (rtx, rrx) = crossbeam_channel::unbounded();
    (StorageController::new(ctx, rrx), crx, rtx)
}
