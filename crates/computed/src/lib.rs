//! computed: one replica of a compute cluster.
//!
//! Module map:
//! - [`spawn_replica`] starts `workers` timely worker threads and a dispatcher thread.
//!   The dispatcher receives [`ComputeCommand`]s from the controller, broadcasts them to
//!   every worker (every worker must build the same dataflows in the same order), and
//!   merges the workers' partial peek answers into one [`ComputeResponse`].
//! - [`compute_state`]: what one worker holds: installed dataflows, index traces,
//!   pending peeks; and how it executes each command.
//!
//! In the embedded default the replica runs on threads of environmentd's process and
//! talks over channels; the same commands will cross TCP for separate processes.

pub mod compute_state;
pub mod logging;

use std::collections::BTreeMap;
use std::thread::{self, JoinHandle, Thread};

use compute_client::transport::ReplicaEndpoint;
use compute_client::{ComputeCommand, ComputeResponse, OperatorStat, PeekResponse};
use crossbeam_channel::{select, unbounded, Receiver, Sender};
use persist::PersistClient;
use repr::{GlobalId, Timestamp};
use uuid::Uuid;

use crate::compute_state::{ArrangementSize, ComputeState, WorkerResponse};
use crate::logging::OperatorLog;

/// The merge work an idle arrangement does per scheduling, in records.
const IDLE_MERGE_EFFORT: isize = 1_000;

/// How a replica is configured.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// Timely worker threads.
    pub workers: usize,
    pub persist: PersistClient,
}

/// A command to a worker thread.
pub enum WorkerCommand {
    Compute(ComputeCommand),
    Shutdown,
}

/// A running replica; dropping it does not stop it, call [`ReplicaHandle::shutdown`].
pub struct ReplicaHandle {
    dispatcher: Option<JoinHandle<()>>,
}

impl ReplicaHandle {
    /// Waits until the replica stops (its command channel closed).
    pub fn join(mut self) {
        if let Some(d) = self.dispatcher.take() {
            let _ = d.join();
        }
    }
}

/// Starts a replica serving `endpoint`.
pub fn spawn_replica(
    config: ReplicaConfig,
    endpoint: ReplicaEndpoint,
) -> Result<ReplicaHandle, String> {
    let workers = config.workers.max(1);
    let (worker_txs, worker_rxs): (Vec<Sender<WorkerCommand>>, Vec<Receiver<WorkerCommand>>) =
        (0..workers).map(|_| unbounded()).unzip();
    let (response_tx, response_rx) = unbounded::<WorkerResponse>();
    let (thread_tx, thread_rx) = unbounded::<(usize, Thread)>();
    let persist = config.persist.clone();
    // Arrangements keep merging while idle until they are compact, so updates that
    // cancel (a row and its retraction, as a temporal filter makes) go away even when
    // no more data arrives.
    let mut timely_config = timely::Config::process(workers);
    differential_dataflow::configure(
        &mut timely_config.worker,
        &differential_dataflow::Config::default().idle_merge_effort(Some(IDLE_MERGE_EFFORT)),
    );
    let guards = timely::execute(timely_config, move |worker| {
        let index = worker.index();
        let commands = worker_rxs[index].clone();
        let _ = thread_tx.send((index, thread::current()));
        let operator_log = OperatorLog::register(worker);
        let mut state =
            ComputeState::new(index, persist.clone(), response_tx.clone(), operator_log);
        state.run(worker, &commands);
    })?;
    let mut threads: Vec<(usize, Thread)> =
        (0..workers).filter_map(|_| thread_rx.recv().ok()).collect();
    threads.sort_by_key(|(i, _)| *i);
    let threads: Vec<Thread> = threads.into_iter().map(|(_, t)| t).collect();
    let dispatcher = thread::Builder::new()
        .name("computed-dispatcher".into())
        .spawn(move || {
            dispatch(endpoint, worker_txs, threads, response_rx);
            drop(guards);
        })
        .map_err(|e| e.to_string())?;
    Ok(ReplicaHandle {
        dispatcher: Some(dispatcher),
    })
}

/// Broadcasts commands to workers and merges their answers until the controller hangs up.
fn dispatch(
    endpoint: ReplicaEndpoint,
    workers: Vec<Sender<WorkerCommand>>,
    threads: Vec<Thread>,
    responses: Receiver<WorkerResponse>,
) {
    let mut partial: BTreeMap<Uuid, (usize, PeekResponse)> = BTreeMap::new();
    // Each worker's upper per collection; the replica's upper is their minimum.
    let mut uppers: BTreeMap<GlobalId, (Vec<Timestamp>, Timestamp)> = BTreeMap::new();
    let mut sizes: BTreeMap<GlobalId, Vec<ArrangementSize>> = BTreeMap::new();
    let mut operators: Vec<Vec<OperatorStat>> = vec![Vec::new(); workers.len()];
    let n = workers.len();
    loop {
        select! {
            recv(endpoint.commands) -> command => {
                let Ok(command) = command else { break };
                for w in &workers {
                    let _ = w.send(WorkerCommand::Compute(command.clone()));
                }
                threads.iter().for_each(Thread::unpark);
            }
            recv(responses) -> response => {
                let Ok(response) = response else { break };
                match response {
                    WorkerResponse::Peek { uuid, response } => {
                        let entry = partial.entry(uuid).or_insert((0, PeekResponse::Rows(vec![])));
                        entry.0 += 1;
                        entry.1 = merge(std::mem::replace(&mut entry.1, PeekResponse::Canceled), response);
                        if entry.0 == n {
                            let (_, merged) = partial.remove(&uuid).expect("entry exists");
                            let _ = endpoint.responses.send(ComputeResponse::PeekResponse { uuid, response: merged });
                        }
                    }
                    WorkerResponse::Frontier { worker, id, upper } => {
                        let (per_worker, reported) = uppers.entry(id).or_insert_with(|| (vec![0; n], 0));
                        if let Some(u) = per_worker.get_mut(worker) {
                            *u = (*u).max(upper);
                        }
                        let min = per_worker.iter().copied().min().unwrap_or(0);
                        if min > *reported {
                            *reported = min;
                            let _ = endpoint.responses.send(ComputeResponse::Frontiers { id, upper: min });
                        }
                    }
                    WorkerResponse::ArrangementSize { worker, id, size } => {
                        let per_worker = sizes.entry(id).or_insert_with(|| vec![ArrangementSize::default(); n]);
                        if let Some(s) = per_worker.get_mut(worker) {
                            *s = size;
                        }
                        let total = per_worker.iter().fold(ArrangementSize::default(), |t, s| ArrangementSize {
                            records: t.records + s.records,
                            batches: t.batches + s.batches,
                            bytes: t.bytes + s.bytes,
                        });
                        let _ = endpoint.responses.send(ComputeResponse::ArrangementSizes {
                            id,
                            records: total.records,
                            batches: total.batches,
                            bytes: total.bytes,
                        });
                    }
                    WorkerResponse::Operators { worker, operators: reported } => {
                        if let Some(o) = operators.get_mut(worker) {
                            *o = reported;
                        }
                        let _ = endpoint.responses.send(ComputeResponse::Operators { operators: merge_operators(&operators) });
                    }
                    WorkerResponse::Subscribe { id, batch } => {
                        let _ = endpoint.responses.send(ComputeResponse::SubscribeResponse { id, batch });
                    }
                }
            }
        }
    }
    for w in &workers {
        let _ = w.send(WorkerCommand::Shutdown);
    }
    threads.iter().for_each(Thread::unpark);
}

/// The replica's operators: each worker's, with elapsed times summed by operator id.
fn merge_operators(per_worker: &[Vec<OperatorStat>]) -> Vec<OperatorStat> {
    let mut merged: BTreeMap<u64, OperatorStat> = BTreeMap::new();
    for op in per_worker.iter().flatten() {
        merged
            .entry(op.id)
            .and_modify(|m| m.elapsed_ns = m.elapsed_ns.saturating_add(op.elapsed_ns))
            .or_insert_with(|| op.clone());
    }
    merged.into_values().collect()
}

/// Combines two workers' answers to one peek: errors win over rows, cancellation over both.
fn merge(a: PeekResponse, b: PeekResponse) -> PeekResponse {
    match (a, b) {
        (PeekResponse::Canceled, _) | (_, PeekResponse::Canceled) => PeekResponse::Canceled,
        (PeekResponse::Error(e), _) | (_, PeekResponse::Error(e)) => PeekResponse::Error(e),
        (PeekResponse::Rows(mut x), PeekResponse::Rows(y)) => {
            x.extend(y);
            PeekResponse::Rows(x)
        }
    }
}
