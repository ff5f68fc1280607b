//! How far back each collection can be read, and letting the rest go.
//!
//! Every table, materialized view and index keeps the history of its last `RETAIN
//! HISTORY` interval (default [`DEFAULT_RETAIN_HISTORY_MS`], Materialize's default)
//! before the oracle's read timestamp: `SELECT ... AS OF t` and `SUBSCRIBE ... AS OF t`
//! work for any `t` in that window, and older times are compacted away (their updates
//! consolidated into the window's first time). Read holds keep older times readable
//! while something still needs them:
//!
//! - a peek in flight holds its timestamp on what it reads, until its answer arrives;
//! - a new dataflow (index, subscription) holds its `as_of` on its inputs until its
//!   frontier passes it (its persist listens hold what it needs from then on);
//! - a materialized view holds its inputs at its own upper − 1, durably (the hold is
//!   the since of the coordinator's persist reader), so after a restart its dataflow
//!   can resume from its shard's upper;
//! - a transaction block that has read holds its timestamp on what it read (and their
//!   indexes) until it ends; a later read of something else in the block is refused
//!   if that has moved past the timestamp.
//!
//! The since of a table's or materialized view's shard is the minimum over its
//! readers: the coordinator's reader (moved here once per [`COMPACTION_INTERVAL`]),
//! the replicas' cached readers (moved by `AllowCompaction` for the collection, sent
//! whenever the coordinator's reader moves) and the running dataflows' listens. An index's since is what the last `AllowCompaction` allowed.
//! A read at a time before the since is refused (SQLSTATE 22023), never answered
//! wrongly.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use expr::MirRelationExpr;
use repr::{GlobalId, Timestamp};
use uuid::Uuid;

use super::{AdapterError, Coordinator};
use crate::catalog::CatalogEntry;

/// How much history a collection without `RETAIN HISTORY` keeps, in milliseconds.
pub const DEFAULT_RETAIN_HISTORY_MS: Timestamp = 1_000;

/// How often sinces move.
pub(super) const COMPACTION_INTERVAL: Duration = Duration::from_secs(1);

/// The coordinator's read holds and the sinces they allow.
pub(super) struct ReadHolds {
    /// The coordinator's persist reader of each table's and materialized view's shard:
    /// its since is the collection's since as far as the coordinator is concerned.
    handles: BTreeMap<GlobalId, persist::ReadHandle>,
    /// Each index's since: how far its arrangement was allowed to compact.
    index_sinces: BTreeMap<GlobalId, Timestamp>,
    /// Peeks in flight: their timestamp and the collections they read.
    peeks: BTreeMap<Uuid, (Timestamp, Vec<GlobalId>)>,
    /// Dataflows still reading their snapshot, by export: `as_of` and inputs.
    builds: BTreeMap<GlobalId, (Timestamp, Vec<GlobalId>)>,
    /// Materialized views: the storage collections they read, and the `as_of` their
    /// dataflow started at (the hold until their shard's upper passes it).
    views: BTreeMap<GlobalId, (Vec<GlobalId>, Timestamp)>,
    last_run: Instant,
}

impl ReadHolds {
    pub(super) fn new() -> Self {
        ReadHolds {
            handles: BTreeMap::new(),
            index_sinces: BTreeMap::new(),
            peeks: BTreeMap::new(),
            builds: BTreeMap::new(),
            views: BTreeMap::new(),
            last_run: Instant::now(),
        }
    }

    pub(super) fn due(&self) -> bool {
        self.last_run.elapsed() >= COMPACTION_INTERVAL
    }

    /// The since of a table, materialized view or index (0 if unknown).
    pub(super) fn since(&self, id: GlobalId) -> Timestamp {
        match self.handles.get(&id) {
            Some(handle) => handle.since(),
            None => self.index_sinces.get(&id).copied().unwrap_or(0),
        }
    }

    pub(super) fn hold_peek(&mut self, uuid: Uuid, ts: Timestamp, ids: Vec<GlobalId>) {
        self.peeks.insert(uuid, (ts, ids));
    }

    pub(super) fn release_peek(&mut self, uuid: Uuid) {
        self.peeks.remove(&uuid);
    }

    /// Holds `as_of` on `inputs` until [`ReadHolds::frontier_passed`] reports the
    /// export `id` past it.
    pub(super) fn hold_build(&mut self, id: GlobalId, as_of: Timestamp, inputs: Vec<GlobalId>) {
        self.builds.insert(id, (as_of, inputs));
    }

    /// A new index's arrangement starts at `as_of`: it cannot answer for earlier times.
    pub(super) fn index_built(&mut self, id: GlobalId, as_of: Timestamp) {
        self.index_sinces.insert(id, as_of);
    }

    /// The export `id` is complete through `upper − 1`.
    pub(super) fn frontier_passed(&mut self, id: GlobalId, upper: Timestamp) {
        if self
            .builds
            .get(&id)
            .is_some_and(|(as_of, _)| upper > *as_of)
        {
            self.builds.remove(&id);
        }
    }

    /// A materialized view's dataflow started at `as_of` reading `inputs`.
    pub(super) fn hold_view_inputs(
        &mut self,
        id: GlobalId,
        inputs: Vec<GlobalId>,
        as_of: Timestamp,
    ) {
        self.views.insert(id, (inputs, as_of));
    }

    /// Forgets everything about a dropped collection; its reader's lease ends.
    pub(super) fn forget(&mut self, id: GlobalId) {
        if let Some(handle) = self.handles.remove(&id) {
            let _ = handle.expire();
        }
        self.index_sinces.remove(&id);
        self.builds.remove(&id);
        self.views.remove(&id);
    }
}

impl Coordinator {
    /// Registers the coordinator's reader of a new table's or materialized view's
    /// shard, with its since at `created`: nothing before the collection existed can
    /// be read.
    pub(super) fn open_new_since_handle(
        &mut self,
        id: GlobalId,
        shard: &str,
        created: Timestamp,
    ) -> Result<(), String> {
        self.open_since_handle(id, shard)?;
        let handle = self.holds.handles.get_mut(&id).expect("opened above");
        handle.downgrade_since(created).map_err(|e| e.to_string())
    }

    /// Registers the coordinator's reader of a table's or materialized view's shard.
    pub(super) fn open_since_handle(&mut self, id: GlobalId, shard: &str) -> Result<(), String> {
        let shard = shard
            .parse::<persist::ShardId>()
            .map_err(|e| e.to_string())?;
        let handle = self
            .persist
            .open_reader(shard, "environmentd")
            .map_err(|e| e.to_string())?;
        self.holds.handles.insert(id, handle);
        Ok(())
    }

    /// The collections `source` reads, which a read of it holds: its tables and
    /// materialized views, and the index of each view it reads from an index.
    pub(super) fn storage_inputs(&self, source: &MirRelationExpr) -> Vec<GlobalId> {
        source
            .depends_on()
            .into_iter()
            .filter_map(|id| {
                if self.catalog.shard_of(id).is_some() {
                    Some(id)
                } else {
                    self.catalog.view_index(id).map(|i| i.id)
                }
            })
            .collect()
    }

    /// Refuses a read of `ids` at `ts` if any of them has compacted past it.
    pub(super) fn check_readable(
        &self,
        ts: Timestamp,
        ids: &[GlobalId],
    ) -> Result<(), AdapterError> {
        let late: Vec<String> = ids
            .iter()
            .filter(|id| self.holds.since(**id) > ts)
            .map(|id| {
                let name = self
                    .catalog
                    .entry(*id)
                    .map(|e| e.name().to_string())
                    .unwrap_or_else(|| id.to_string());
                format!("{name} is readable from {} on", self.holds.since(*id))
            })
            .collect();
        if late.is_empty() {
            return Ok(());
        }
        let mut error = AdapterError::new(
            "22023",
            format!(
                "Timestamp ({ts}) is not valid for all inputs: {}",
                late.join(", ")
            ),
        );
        error.hint = Some(
            "Only the last RETAIN HISTORY interval of a table, materialized view or index \
             can be read (default 1s); set a longer one with \
             ALTER ... SET (RETAIN HISTORY FOR '1h')."
                .into(),
        );
        Err(error)
    }

    /// The earliest time every input of `source` can be read at.
    pub(super) fn read_since(&self, source: &MirRelationExpr) -> Timestamp {
        self.storage_inputs(source)
            .into_iter()
            .map(|id| self.holds.since(id))
            .max()
            .unwrap_or(0)
    }

    /// Moves every collection's since up to the oldest time still readable: its
    /// `RETAIN HISTORY` before the read timestamp, or the oldest read hold on it.
    pub(super) fn compact_collections(&mut self) {
        self.holds.last_run = Instant::now();
        let read_ts = self.oracle.read_ts();
        // Dataflows that went away without passing their as_of hold nothing.
        let live: Vec<GlobalId> = self
            .holds
            .builds
            .keys()
            .copied()
            .filter(|id| self.subscribes.contains_key(id) || self.catalog.entry(*id).is_some())
            .collect();
        self.holds.builds.retain(|id, _| live.contains(id));
        let mut held: BTreeMap<GlobalId, Timestamp> = BTreeMap::new();
        let mut hold = |id: GlobalId, ts: Timestamp| {
            let entry = held.entry(id).or_insert(ts);
            *entry = (*entry).min(ts);
        };
        for (ts, ids) in self.holds.peeks.values().chain(self.holds.builds.values()) {
            for id in ids {
                hold(*id, *ts);
            }
        }
        for (view, (inputs, as_of)) in &self.holds.views {
            let upper = self
                .catalog
                .shard_of(*view)
                .and_then(|(shard, _)| shard.parse().ok())
                .and_then(|shard| self.persist.inspect_shard(shard).ok())
                .map(|state| state.upper)
                .unwrap_or(0);
            let ts = if upper > *as_of { upper - 1 } else { *as_of };
            for id in inputs {
                hold(*id, ts);
            }
        }
        // A transaction block reads at its first read's timestamp until it ends.
        for txn in self.transactions.values() {
            if let Some(ts) = txn.read_ts {
                for id in &txn.read_inputs {
                    hold(*id, ts);
                }
            }
        }
        let ids: Vec<(GlobalId, bool)> = self
            .catalog
            .entries()
            .filter_map(|e| match e {
                CatalogEntry::Table(_) | CatalogEntry::MaterializedView(_) => Some((e.id(), true)),
                CatalogEntry::Index(_) => Some((e.id(), false)),
                CatalogEntry::View(_) => None,
            })
            .collect();
        for (id, storage) in ids {
            let window = self
                .catalog
                .retain_history(id)
                .unwrap_or(DEFAULT_RETAIN_HISTORY_MS);
            let mut target = read_ts.saturating_sub(window);
            if let Some(ts) = held.get(&id) {
                target = target.min(*ts);
            }
            if storage {
                let Some(handle) = self.holds.handles.get_mut(&id) else {
                    continue;
                };
                let before = handle.since();
                // Also renews the lease when the since does not move.
                match handle.downgrade_since(target) {
                    // The replicas' cached readers of the shard may let go as far.
                    Ok(()) if handle.since() > before => {
                        let since = handle.since();
                        self.compute.allow_compaction(id, since);
                    }
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(collection = %id, error = %e, "moving the since failed");
                        if matches!(e, persist::PersistError::LeaseExpired { .. }) {
                            self.reopen_since_handle(id);
                        }
                    }
                }
            } else {
                let since = self.holds.index_sinces.entry(id).or_insert(0);
                if target > *since {
                    *since = target;
                    self.compute.allow_compaction(id, target);
                }
            }
        }
    }

    /// Every table's and materialized view's shard (`mz_internal.mz_storage_shards`).
    pub(crate) fn storage_shards(&self) -> Vec<(GlobalId, String)> {
        self.catalog
            .entries()
            .filter_map(|e| {
                self.catalog
                    .shard_of(e.id())
                    .map(|(shard, _)| (e.id(), shard))
            })
            .collect()
    }

    /// The since and upper of every table, materialized view and index
    /// (`mz_internal.mz_frontiers`); `None` for an upper nobody reported yet.
    pub(crate) fn frontiers(&self) -> Vec<(GlobalId, Option<Timestamp>, Option<Timestamp>)> {
        let mut out = Vec::new();
        for entry in self.catalog.entries() {
            let id = entry.id();
            match entry {
                CatalogEntry::Table(_) | CatalogEntry::MaterializedView(_) => {
                    let state = self
                        .catalog
                        .shard_of(id)
                        .and_then(|(shard, _)| shard.parse().ok())
                        .and_then(|shard| self.persist.inspect_shard(shard).ok());
                    if let Some(state) = state {
                        out.push((id, Some(state.since), Some(state.upper)));
                    }
                }
                CatalogEntry::Index(_) => {
                    out.push((
                        id,
                        Some(self.holds.since(id)),
                        self.index_uppers.get(&id).copied(),
                    ));
                }
                CatalogEntry::View(_) => {}
            }
        }
        out
    }

    /// A lease that expired (the coordinator stalled past persist's lease duration)
    /// is registered again, at the shard's since.
    fn reopen_since_handle(&mut self, id: GlobalId) {
        if let Some((shard, _)) = self.catalog.shard_of(id) {
            if let Err(e) = self.open_since_handle(id, &shard) {
                tracing::error!(collection = %id, error = %e, "reopening the since reader failed");
            }
        }
    }
}
