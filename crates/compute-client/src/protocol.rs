//! The commands a compute replica executes and the responses it sends.
//!
//! # Contract
//! - Commands arrive in order. `CreateDataflow` names only collections that exist: its
//!   source imports are persist shards, readable at the dataflow's `as_of`.
//! - `Peek { id, timestamp }` names an index export of an installed dataflow; the
//!   replica answers once the index's upper is past `timestamp`, with the index's
//!   contents at `timestamp` (or the error the dataflow computed), exactly once per
//!   uuid, unless the peek is cancelled first.
//! - `AllowCompaction { id, frontier }` lets the replica forget times before
//!   `frontier`: an index's arrangement compacts, and for a table or materialized
//!   view the replica's persist reader of its shard lets go of them. `frontier =
//!   Timestamp::MAX` (the empty frontier) drops the collection and, when none of its
//!   exports remain, the whole dataflow.
//! - `Frontiers { id, upper }` reports that the export `id` is complete for every time
//!   before `upper`. Uppers a replica reports for one id never decrease.
//! - A subscribe export answers with `SubscribeResponse` batches: the first starts at
//!   the dataflow's `as_of`, each next one starts where the previous ended, and each
//!   holds every update in its range, consolidated. A batch with an error is the last;
//!   so is the one whose upper reaches `up_to`.

use std::collections::BTreeMap;

use expr::{MapFilterProject, MirScalarExpr, Plan};
use repr::{Diff, EvalError, GlobalId, RelationDesc, Row, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A persist shard the dataflow reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceImport {
    /// The persist shard id, as `ShardId`'s text form.
    pub shard_id: String,
    pub desc: RelationDesc,
}

/// One collection the dataflow computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildDesc {
    pub id: GlobalId,
    pub plan: Plan,
}

/// An arrangement of a built collection, kept so peeks can read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexExport {
    /// The collection (a `BuildDesc` id) that is arranged.
    pub on_id: GlobalId,
    /// The key expressions; the value is the whole row.
    pub key: Vec<MirScalarExpr>,
    pub arity: usize,
}

/// A built collection written to a persist shard with `compare_and_append`: every
/// replica writes the same updates, the first to append a range wins, the others see
/// the upper already past it and move on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersistSinkExport {
    pub on_id: GlobalId,
    /// The shard (`ShardId` text form).
    pub shard_id: String,
    /// The collection's columns (its errors are stored as rows of one more).
    pub arity: usize,
}

/// A built collection streamed to a client (`SUBSCRIBE`) as [`SubscribeBatch`]es.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscribeExport {
    pub on_id: GlobalId,
    /// Times at or after this are not sent; the stream ends when its upper reaches it.
    pub up_to: Option<Timestamp>,
}

/// The updates of a subscribed collection at times in `[lower, upper)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscribeBatch {
    pub lower: Timestamp,
    pub upper: Timestamp,
    /// Consolidated updates sorted by time, or the error the collection holds.
    pub updates: Result<Vec<(Row, Timestamp, Diff)>, EvalError>,
}

/// What a replica renders as one timely dataflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataflowDescription {
    pub debug_name: String,
    pub source_imports: BTreeMap<GlobalId, SourceImport>,
    /// Collections read from an index another dataflow of the replica maintains: the
    /// collection's id (an indexed view) and the index's.
    #[serde(default)]
    pub index_imports: BTreeMap<GlobalId, GlobalId>,
    /// Built in order; later objects may read earlier ones.
    pub objects_to_build: Vec<BuildDesc>,
    pub index_exports: BTreeMap<GlobalId, IndexExport>,
    /// Collections written to persist shards (materialized views).
    pub sink_exports: BTreeMap<GlobalId, PersistSinkExport>,
    /// Collections streamed to clients.
    pub subscribe_exports: BTreeMap<GlobalId, SubscribeExport>,
    /// Inputs are read as of this time: every update is at it or later.
    pub as_of: Timestamp,
    /// Times at or after this are not needed (`as_of + 1` for a one-shot SELECT).
    pub until: Option<Timestamp>,
}

impl DataflowDescription {
    /// The ids of every export.
    pub fn export_ids(&self) -> impl Iterator<Item = GlobalId> + '_ {
        self.index_exports
            .keys()
            .chain(self.sink_exports.keys())
            .chain(self.subscribe_exports.keys())
            .copied()
    }
}

/// A request to read an index at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Peek {
    pub uuid: Uuid,
    /// The index export to read.
    pub id: GlobalId,
    pub timestamp: Timestamp,
    /// Applied to every row read (the "fast path": a SELECT that only maps, filters
    /// and projects an indexed collection reads the index without a new dataflow).
    pub mfp: MapFilterProject,
    /// Read only the rows with this key (the WHERE clause fixes every key column),
    /// instead of scanning the whole index.
    pub key: Option<Row>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ComputeCommand {
    /// The first command on a (re)connection.
    Hello {
        nonce: Uuid,
    },
    CreateDataflow(DataflowDescription),
    Peek(Peek),
    CancelPeek {
        uuid: Uuid,
    },
    AllowCompaction {
        id: GlobalId,
        frontier: Timestamp,
    },
}

/// The answer to a peek.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PeekResponse {
    /// The rows at the peek's time, with multiplicities.
    Rows(Vec<(Row, Diff)>),
    /// The collection holds an error at that time; reads of it fail with it.
    Error(EvalError),
    Canceled,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ComputeResponse {
    Frontiers {
        id: GlobalId,
        upper: Timestamp,
    },
    PeekResponse {
        uuid: Uuid,
        response: PeekResponse,
    },
    SubscribeResponse {
        id: GlobalId,
        batch: SubscribeBatch,
    },
    /// An index's arrangement (rows and errors) on the replica, over all workers: the
    /// updates it holds, its batches, and their size in bytes (estimated: the rows'
    /// encodings and each update's time and diff).
    ArrangementSizes {
        id: GlobalId,
        records: u64,
        batches: u64,
        bytes: u64,
    },
    /// Every live operator of the replica's dataflows, elapsed times summed over
    /// workers; sent when it changed (at most once a second per worker).
    Operators {
        operators: Vec<OperatorStat>,
    },
}

/// A timely operator and how long it has been scheduled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorStat {
    /// The worker-unique operator id (the same on every worker of a replica).
    pub id: u64,
    /// Its scope path: the dataflow's index, then the operator's position in each
    /// nested scope. A dataflow's own operator has an address of length one.
    pub address: Vec<u64>,
    pub name: String,
    pub elapsed_ns: u64,
}
