//! [`ComputeState`]: one worker's share of a replica.
//!
//! A worker renders every dataflow (its share of the data), keeps the traces of index
//! exports, and answers a peek at `t` once the index's frontier has passed `t`, from
//! its part of the arrangement; the dispatcher merges the parts.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use compute_client::{
    ComputeCommand, DataflowDescription, OperatorStat, Peek, PeekResponse, SubscribeBatch,
};
use crossbeam_channel::{Receiver, Sender};
use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::cursor::{cursor_list, Cursor};
use differential_dataflow::trace::implementations::spine_fueled::SpineBatch;
use differential_dataflow::trace::implementations::{KeySpine, ValSpine};
use differential_dataflow::trace::{Navigable, Span, TraceReader};
use expr::{MapFilterProject, RowArena};
use persist::{PersistClient, ShardId};
use render::persist_source::ReaderCache;
use render::{CollectionBundle, Context};
use repr::{Diff, EvalError, GlobalId, Row, RowPacker, Timestamp};
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::Probe;
use timely::progress::Antichain;
use timely::worker::Worker;
use timely::PartialOrder;
use uuid::Uuid;

use crate::logging::OperatorLog;
use crate::WorkerCommand;

type OkTrace = TraceAgent<ValSpine<Row, Row, Timestamp, Diff>>;
type ErrTrace = TraceAgent<KeySpine<EvalError, Timestamp, Diff>>;
/// An index's traces: its rows and its errors.
type IndexTraces = (OkTrace, ErrTrace);

/// What a worker reports to the dispatcher.
pub enum WorkerResponse {
    Peek {
        uuid: Uuid,
        response: PeekResponse,
    },
    Frontier {
        worker: usize,
        id: GlobalId,
        upper: Timestamp,
    },
    /// The size of this worker's part of an index's arrangement (rows and errors):
    /// updates held, batches and bytes, sent when it changed (at most once a second).
    ArrangementSize {
        worker: usize,
        id: GlobalId,
        size: ArrangementSize,
    },
    /// This worker's live operators, sent when they changed (at most once a second).
    Operators {
        worker: usize,
        operators: Vec<OperatorStat>,
    },
    /// Sent by worker 0 only (the subscribe sink gathers every update there).
    Subscribe {
        id: GlobalId,
        batch: SubscribeBatch,
    },
}

/// An index export: the arranged rows and errors, and a probe on both.
struct IndexState {
    oks: OkTrace,
    errs: ErrTrace,
    probe: ProbeHandle<Timestamp>,
    dataflow: usize,
    /// The upper last reported to the dispatcher.
    reported: Timestamp,
    /// The size last reported.
    reported_size: ArrangementSize,
    /// The other indexes whose traces the dataflow imported (a one-shot read of
    /// indexed views).
    imports: Vec<GlobalId>,
    /// An imported index that was dropped (or replaced), and its upper then: reads at
    /// or after that time are refused, as the index's trace was sealed there and the
    /// dataflow's frontier passes times whose updates it never received.
    dropped_import: Option<(GlobalId, Timestamp)>,
    /// The bytes of each batch measured so far, by its trace (errors or not) and its
    /// (lower, upper, updates): batches do not change, so each is measured once.
    batch_bytes: BTreeMap<(bool, BatchKey), u64>,
}

/// The size of (a worker's part of) an arrangement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArrangementSize {
    pub records: u64,
    pub batches: u64,
    pub bytes: u64,
}

pub struct ComputeState {
    /// This worker's index.
    worker: usize,
    persist: PersistClient,
    responses: Sender<WorkerResponse>,
    indexes: BTreeMap<GlobalId, IndexState>,
    /// The exports still alive in each timely dataflow.
    dataflows: BTreeMap<usize, BTreeSet<GlobalId>>,
    pending_peeks: Vec<Peek>,
    /// The dataflow of each persist sink and subscribe export.
    sinks: BTreeMap<GlobalId, usize>,
    /// Persist readers shared by this worker's sources.
    readers: Rc<RefCell<ReaderCache>>,
    /// When arrangement sizes and operators were last reported.
    last_size_report: std::time::Instant,
    /// This worker's operators and their scheduling time.
    operator_log: Rc<RefCell<OperatorLog>>,
    /// The shard of every table and materialized view a dataflow imported.
    storage_shards: BTreeMap<GlobalId, ShardId>,
    /// How far each table's and materialized view's history may compact.
    storage_compaction: BTreeMap<GlobalId, Timestamp>,
}

impl ComputeState {
    pub fn new(
        worker: usize,
        persist: PersistClient,
        responses: Sender<WorkerResponse>,
        operator_log: Rc<RefCell<OperatorLog>>,
    ) -> Self {
        ComputeState {
            operator_log,
            worker,
            persist,
            responses,
            indexes: BTreeMap::new(),
            dataflows: BTreeMap::new(),
            pending_peeks: Vec::new(),
            readers: Rc::new(RefCell::new(ReaderCache::default())),
            last_size_report: std::time::Instant::now(),
            storage_shards: BTreeMap::new(),
            storage_compaction: BTreeMap::new(),
            sinks: BTreeMap::new(),
        }
    }

    /// The worker's loop: commands in, steps, peek answers out, until shut down.
    pub fn run(&mut self, worker: &mut Worker, commands: &Receiver<WorkerCommand>) {
        loop {
            loop {
                match commands.try_recv() {
                    Ok(WorkerCommand::Compute(command)) => self.handle_command(worker, command),
                    Ok(WorkerCommand::Shutdown)
                    | Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        self.indexes.clear();
                        for id in worker.installed_dataflows() {
                            worker.drop_dataflow(id);
                        }
                        return;
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                }
            }
            self.process_peeks();
            self.report_frontiers();
            if self.last_size_report.elapsed() >= Duration::from_secs(1) {
                self.last_size_report = std::time::Instant::now();
                self.report_sizes();
                self.report_operators(worker);
            }
            self.readers.borrow_mut().maintain();
            // Activations (sources polling persist) and the dispatcher's unpark wake us.
            worker.step_or_park(Some(Duration::from_millis(100)));
            self.process_peeks();
        }
    }

    fn handle_command(&mut self, worker: &mut Worker, command: ComputeCommand) {
        match command {
            ComputeCommand::Hello { .. } => {}
            ComputeCommand::CreateDataflow(desc) => self.create_dataflow(worker, desc),
            ComputeCommand::Peek(peek) => self.pending_peeks.push(peek),
            ComputeCommand::CancelPeek { uuid } => {
                if let Some(pos) = self.pending_peeks.iter().position(|p| p.uuid == uuid) {
                    self.pending_peeks.remove(pos);
                    let _ = self.responses.send(WorkerResponse::Peek {
                        uuid,
                        response: PeekResponse::Canceled,
                    });
                }
            }
            ComputeCommand::AllowCompaction { id, frontier } => {
                if frontier == Timestamp::MAX {
                    // A dropped table or materialized view: its cached reader goes.
                    if let Some(shard) = self.storage_shards.remove(&id) {
                        self.readers.borrow_mut().forget(shard);
                    }
                    self.storage_compaction.remove(&id);
                    if self.indexes.contains_key(&id) {
                        self.index_dropped(id);
                    }
                    let dataflow = self
                        .indexes
                        .remove(&id)
                        .map(|i| i.dataflow)
                        .or_else(|| self.sinks.remove(&id));
                    if let Some(dataflow) = dataflow {
                        let exports = self.dataflows.entry(dataflow).or_default();
                        exports.remove(&id);
                        if exports.is_empty() {
                            self.dataflows.remove(&dataflow);
                            worker.drop_dataflow(dataflow);
                        }
                    }
                } else if let Some(index) = self.indexes.get_mut(&id) {
                    // Logical compaction lets updates before the frontier take its
                    // time; physical compaction lets the batches holding them merge,
                    // which is when an insertion and its retraction cancel out.
                    let f = Antichain::from_elem(frontier);
                    index.oks.set_logical_compaction(f.borrow());
                    index.errs.set_logical_compaction(f.borrow());
                    index.oks.set_physical_compaction(f.borrow());
                    index.errs.set_physical_compaction(f.borrow());
                } else {
                    // A table or materialized view: its cached persist reader may let go.
                    self.storage_compaction.insert(id, frontier);
                    if let Some(shard) = self.storage_shards.get(&id) {
                        self.readers.borrow_mut().allow_compaction(*shard, frontier);
                    }
                }
            }
        }
    }

    fn create_dataflow(&mut self, worker: &mut Worker, desc: DataflowDescription) {
        let dataflow = worker.next_dataflow_index();
        let persist = self.persist.clone();
        let readers = Rc::clone(&self.readers);
        let responses = self.responses.clone();
        for (id, import) in &desc.source_imports {
            if let Ok(shard) = import.shard_id.parse::<ShardId>() {
                self.storage_shards.insert(*id, shard);
                if let Some(frontier) = self.storage_compaction.get(id) {
                    self.readers.borrow_mut().allow_compaction(shard, *frontier);
                }
            }
        }
        // The traces of the indexes it reads, by the collection each holds.
        let mut imported: Vec<(GlobalId, GlobalId, Option<IndexTraces>)> = desc
            .index_imports
            .iter()
            .map(|(id, index_id)| {
                let traces = self
                    .indexes
                    .get(index_id)
                    .map(|i| (i.oks.clone(), i.errs.clone()));
                (*id, *index_id, traces)
            })
            .collect();
        // A one-shot dataflow's monotonic reductions need positive inputs, which an
        // index's batches (unlike a persist snapshot) are not until consolidated.
        let consolidate_imports = desc.until == Some(desc.as_of.saturating_add(1))
            && desc.objects_to_build.iter().any(|o| o.plan.has_monotonic());
        let exports = worker.dataflow_named::<Timestamp, _, _>(&desc.debug_name, |scope| {
            let mut ctx = Context::new(scope, desc.as_of);
            // An index's updates as of the dataflow's as_of (and before its until),
            // its rows and its errors.
            let since = Antichain::from_elem(desc.as_of);
            let until = desc.until.map(Antichain::from_elem).unwrap_or_default();
            for (id, index_id, traces) in &mut imported {
                let bundle = match traces {
                    Some((oks, errs)) => {
                        let (oks, _) = oks.import_frontier_core(
                            scope,
                            &format!("ImportIndex({index_id})"),
                            since.clone(),
                            until.clone(),
                        );
                        let (errs, _) = errs.import_frontier_core(
                            scope,
                            &format!("ImportIndexErrors({index_id})"),
                            since.clone(),
                            until.clone(),
                        );
                        let mut oks = oks.as_collection(|_key, row| row.clone());
                        if consolidate_imports {
                            oks = oks.consolidate();
                        }
                        CollectionBundle {
                            oks,
                            errs: errs.as_collection(|error, _| error.clone()),
                        }
                    }
                    None => {
                        let error = EvalError::Internal(format!(
                            "index {index_id} was dropped before a read of it"
                        ));
                        ctx.render_plan(&expr::Plan::Constant { rows: Err(error) })
                    }
                };
                ctx.insert(*id, bundle);
            }
            for (id, import) in &desc.source_imports {
                let bundle = match import.shard_id.parse::<ShardId>() {
                    Ok(shard) => render::persist_source::persist_source(
                        scope,
                        persist.clone(),
                        Rc::clone(&readers),
                        render::persist_source::SourceShard {
                            shard_id: shard,
                            arity: import.desc.arity(),
                        },
                        &id.to_string(),
                        desc.as_of,
                        desc.until,
                    ),
                    Err(e) => {
                        let error = EvalError::Internal(format!(
                            "invalid shard id {}: {e}",
                            import.shard_id
                        ));
                        let plan = expr::Plan::Constant { rows: Err(error) };
                        ctx.render_plan(&plan)
                    }
                };
                ctx.insert(*id, bundle);
            }
            for object in &desc.objects_to_build {
                let bundle = ctx.render_plan(&object.plan);
                ctx.insert(object.id, bundle);
            }
            let mut exports = BTreeMap::new();
            for (index_id, export) in &desc.index_exports {
                let CollectionBundle { oks, errs } = ctx.collections[&export.on_id].clone();
                let (keyed, key_errs) = render::join::key_by(oks, export.key.clone(), false);
                let oks = keyed.arrange_by_key_named(&format!("Index({index_id})"));
                let errs = errs
                    .concat(key_errs)
                    .arrange_by_self_named(&format!("IndexErrors({index_id})"));
                let probe = ProbeHandle::new();
                oks.stream.clone().probe_with(&probe);
                errs.stream.clone().probe_with(&probe);
                exports.insert(*index_id, (oks.trace, errs.trace, probe));
            }
            for (subscribe_id, export) in &desc.subscribe_exports {
                let bundle = ctx.collections[&export.on_id].clone();
                let responses = responses.clone();
                let id = *subscribe_id;
                render::subscribe::subscribe_sink(
                    bundle,
                    &id.to_string(),
                    desc.as_of,
                    export.up_to,
                    move |lower, upper, updates| {
                        let batch = SubscribeBatch {
                            lower,
                            upper,
                            updates,
                        };
                        let _ = responses.send(WorkerResponse::Subscribe { id, batch });
                    },
                );
            }
            for (sink_id, sink) in &desc.sink_exports {
                let bundle = ctx.collections[&sink.on_id].clone();
                match sink.shard_id.parse::<ShardId>() {
                    Ok(shard) => render::persist_sink::persist_sink(
                        bundle,
                        sink.arity,
                        persist.clone(),
                        shard,
                        &sink_id.to_string(),
                        desc.as_of,
                    ),
                    Err(e) => tracing::error!(sink = %sink_id, error = %e, "invalid shard id for a persist sink"),
                }
            }
            exports
        });
        let mut ids: BTreeSet<GlobalId> = exports.keys().copied().collect();
        for sink_id in desc
            .sink_exports
            .keys()
            .chain(desc.subscribe_exports.keys())
        {
            ids.insert(*sink_id);
            self.sinks.insert(*sink_id, dataflow);
        }
        for (id, (oks, errs, probe)) in exports {
            self.indexes.insert(
                id,
                IndexState {
                    oks,
                    errs,
                    probe,
                    dataflow,
                    reported: 0,
                    reported_size: ArrangementSize::default(),
                    batch_bytes: BTreeMap::new(),
                    imports: imported.iter().map(|(_, index_id, _)| *index_id).collect(),
                    dropped_import: None,
                },
            );
        }
        self.dataflows.insert(dataflow, ids);
    }

    /// Reports every index whose arrangement's size changed since the last report: the
    /// updates, batches and bytes its traces hold (what
    /// `mz_internal.mz_arrangement_sizes` shows).
    fn report_sizes(&mut self) {
        for (id, index) in &mut self.indexes {
            let mut size = ArrangementSize::default();
            let mut measured = BTreeMap::new();
            let known = &index.batch_bytes;
            let mut add = |key: (bool, BatchKey), bytes: &dyn Fn() -> u64| {
                let b = known.get(&key).copied().unwrap_or_else(bytes);
                measured.insert(key, b);
                size.records += key.1 .2 as u64;
                size.batches += 1;
                size.bytes += b;
            };
            index.oks.map_spans(|span| {
                if let Some(batch) = &span.inner {
                    add((false, batch_key(span, batch.len())), &|| {
                        ok_batch_bytes(batch)
                    });
                }
            });
            index.errs.map_spans(|span| {
                if let Some(batch) = &span.inner {
                    add((true, batch_key(span, batch.len())), &|| {
                        err_batch_bytes(batch)
                    });
                }
            });
            index.batch_bytes = measured;
            if size != index.reported_size {
                index.reported_size = size;
                let _ = self.responses.send(WorkerResponse::ArrangementSize {
                    worker: self.worker,
                    id: *id,
                    size,
                });
            }
        }
    }

    /// Reports this worker's operators, if they changed.
    fn report_operators(&mut self, worker: &Worker) {
        let installed: BTreeSet<usize> = worker.installed_dataflows().into_iter().collect();
        let report = self.operator_log.borrow_mut().report(&installed);
        if let Some(operators) = report {
            let _ = self.responses.send(WorkerResponse::Operators {
                worker: self.worker,
                operators,
            });
        }
    }

    /// Reports every index whose upper advanced since the last report.
    fn report_frontiers(&mut self) {
        for (id, index) in &mut self.indexes {
            let upper = index
                .probe
                .with_frontier(|f| f.iter().min().copied())
                .unwrap_or(Timestamp::MAX);
            if upper > index.reported {
                index.reported = upper;
                let _ = self.responses.send(WorkerResponse::Frontier {
                    worker: self.worker,
                    id: *id,
                    upper,
                });
            }
        }
    }

    /// Before the index `id` goes: answers the peeks that can be answered, refuses
    /// the other peeks of it, and limits the reads of the dataflows that imported it to
    /// the times it was complete at.
    fn index_dropped(&mut self, id: GlobalId) {
        self.process_peeks();
        let (refused, kept): (Vec<Peek>, Vec<Peek>) = std::mem::take(&mut self.pending_peeks)
            .into_iter()
            .partition(|p| p.id == id);
        self.pending_peeks = kept;
        for peek in refused {
            let _ = self.responses.send(WorkerResponse::Peek {
                uuid: peek.uuid,
                response: PeekResponse::Error(dropped_while_read(id)),
            });
        }
        let upper = self.indexes[&id]
            .probe
            .with_frontier(|f| f.iter().min().copied())
            .unwrap_or(Timestamp::MAX);
        for index in self.indexes.values_mut() {
            if index.imports.contains(&id) {
                match &mut index.dropped_import {
                    Some((_, before)) => *before = (*before).min(upper),
                    None => index.dropped_import = Some((id, upper)),
                }
            }
        }
    }

    /// Answers the peeks whose index is complete at their time.
    fn process_peeks(&mut self) {
        let mut still_pending = Vec::new();
        for peek in std::mem::take(&mut self.pending_peeks) {
            let Some(index) = self.indexes.get_mut(&peek.id) else {
                let error =
                    EvalError::Internal(format!("index {} was dropped before the peek", peek.id));
                let _ = self.responses.send(WorkerResponse::Peek {
                    uuid: peek.uuid,
                    response: PeekResponse::Error(error),
                });
                continue;
            };
            if let Some((dropped, before)) = index.dropped_import {
                if peek.timestamp >= before {
                    let _ = self.responses.send(WorkerResponse::Peek {
                        uuid: peek.uuid,
                        response: PeekResponse::Error(dropped_while_read(dropped)),
                    });
                    continue;
                }
            }
            if index.probe.less_equal(&peek.timestamp) {
                still_pending.push(peek);
                continue;
            }
            let response = read_index(index, peek.timestamp, &peek.mfp, peek.key.as_ref());
            let _ = self.responses.send(WorkerResponse::Peek {
                uuid: peek.uuid,
                response,
            });
        }
        self.pending_peeks = still_pending;
    }
}

/// The error of a read whose index (or an index it imported) went before the read's
/// time was complete.
fn dropped_while_read(id: GlobalId) -> EvalError {
    EvalError::Internal(format!(
        "index {id} was dropped or replaced while a query was reading it; run the query again"
    ))
}

/// A batch's span bounds and length, which identify it within its trace.
type BatchKey = (Timestamp, Timestamp, usize);

/// What identifies a batch of a trace: its span's bounds and its length.
fn batch_key<B>(span: &Span<Timestamp, B>, len: usize) -> BatchKey {
    let bound = |f: &Antichain<Timestamp>| f.elements().first().copied().unwrap_or(Timestamp::MAX);
    (bound(span.lower()), bound(span.upper()), len)
}

/// The bytes of an update's time and diff.
const UPDATE_BYTES: u64 = std::mem::size_of::<(Timestamp, Diff)>() as u64;
/// The bytes of a row besides its encoding.
const ROW_BYTES: u64 = std::mem::size_of::<Row>() as u64;

/// The bytes a batch of an index's rows holds: each key and value row (its encoding
/// and its header) and each update.
fn ok_batch_bytes(batch: &<OkTrace as TraceReader>::Batch) -> u64 {
    let mut bytes = 0;
    let mut cursor = batch.cursor();
    while let Some(key) = cursor.get_key(batch) {
        bytes += ROW_BYTES + key.byte_len() as u64;
        while let Some(val) = cursor.get_val(batch) {
            bytes += ROW_BYTES + val.byte_len() as u64;
            cursor.map_times(batch, |_, _| bytes += UPDATE_BYTES);
            cursor.step_val(batch);
        }
        cursor.step_key(batch);
    }
    bytes
}

/// The bytes a batch of an index's errors holds.
fn err_batch_bytes(batch: &<ErrTrace as TraceReader>::Batch) -> u64 {
    let mut bytes = 0;
    let mut cursor = batch.cursor();
    while let Some(key) = cursor.get_key(batch) {
        bytes += std::mem::size_of_val(key) as u64 + key.to_string().len() as u64;
        cursor.map_times(batch, |_, _| bytes += UPDATE_BYTES);
        cursor.step_key(batch);
    }
    bytes
}

/// This worker's part of the index's contents at `time`, with `mfp` applied: its
/// errors if it has any, else its rows with their multiplicities.
fn read_index(
    index: &mut IndexState,
    time: Timestamp,
    mfp: &MapFilterProject,
    key: Option<&Row>,
) -> PeekResponse {
    let everything = Antichain::<Timestamp>::new();
    if let Some(batches) = index.errs.batches_through(everything.borrow()) {
        let (mut cursor, storage) = cursor_list(batches);
        while let Some(error) = cursor.get_key(&storage) {
            let mut count = 0;
            cursor.map_times(&storage, |t, d| {
                if t.less_equal(&time) {
                    count += *d;
                }
            });
            if count > 0 {
                return PeekResponse::Error(error.clone());
            }
            cursor.step_key(&storage);
        }
    }
    let mut rows = Vec::new();
    let mut packer = RowPacker::new();
    if let Some(batches) = index.oks.batches_through(everything.borrow()) {
        let (mut cursor, storage) = cursor_list(batches);
        if let Some(key) = key {
            cursor.seek_key(&storage, key);
        }
        while cursor.key_valid(&storage) {
            if key.is_some() && cursor.get_key(&storage) != key {
                break;
            }
            while let Some(row) = cursor.get_val(&storage) {
                let mut count: Diff = 0;
                cursor.map_times(&storage, |t, d| {
                    if t.less_equal(&time) {
                        count += *d;
                    }
                });
                if count != 0 {
                    if mfp.is_identity() {
                        rows.push((row.clone(), count));
                    } else {
                        let arena = RowArena::new();
                        match mfp.evaluate(row, &arena, &mut packer) {
                            Ok(Some(out)) => rows.push((out, count)),
                            Ok(None) => {}
                            Err(e) => return PeekResponse::Error(e),
                        }
                    }
                }
                cursor.step_val(&storage);
            }
            cursor.step_key(&storage);
        }
    }
    PeekResponse::Rows(rows)
}
