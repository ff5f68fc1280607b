//! Starting Freshet: persist, storaged, a compute replica, the coordinator and the
//! pgwire listener, wired together in one process (the embedded default).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread;

use compute_client::ComputeController;
use computed::{spawn_replica, ReplicaConfig};
use persist::{PersistClient, PersistLocation};
use tokio::net::TcpListener;

use crate::adapter::Client;
use crate::catalog::Catalog;
use crate::coord::Coordinator;
use crate::oracle::TimestampOracle;

/// The coordinator thread's stack.
const COORDINATOR_STACK_BYTES: usize = 256 << 20;

/// How to run environmentd.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where pgwire listens.
    pub listen_addr: SocketAddr,
    /// The directory of the default file blob store and SQLite consensus.
    pub data_dir: PathBuf,
    /// Overrides the blob store (`file:///path`, `mem://name`).
    pub persist_blob_url: Option<String>,
    /// Overrides the consensus store (`sqlite:///path/consensus.db`, `mem://name`).
    pub persist_consensus_url: Option<String>,
    /// Timely workers in the quickstart replica.
    pub workers: usize,
    /// How often table uppers advance without writes (the tick): the freshness of
    /// SUBSCRIBE progress and `serializable` reads.
    pub tick_interval: std::time::Duration,
}

impl Config {
    pub fn persist_location(&self) -> PersistLocation {
        let mut location = PersistLocation::local(&self.data_dir);
        if let Some(blob) = &self.persist_blob_url {
            location.blob_url = blob.clone();
        }
        if let Some(consensus) = &self.persist_consensus_url {
            location.consensus_url = consensus.clone();
        }
        location
    }
}

/// A running server.
pub struct Server {
    pub local_addr: SocketAddr,
    pub client: Client,
}

/// Starts every component and begins serving pgwire; returns once the port is bound.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    std::fs::create_dir_all(&config.data_dir)?;
    let persist = PersistClient::open(&config.persist_location())
        .map_err(|e| anyhow::anyhow!("opening persist: {e}"))?;

    let catalog = Catalog::open(persist.consensus().clone())
        .map_err(|e| anyhow::anyhow!("loading the catalog: {e}"))?;
    let oracle = TimestampOracle::open(persist.consensus().clone(), repr::now_millis)
        .map_err(|e| anyhow::anyhow!("opening the timestamp oracle: {e}"))?;

    let (storage, storage_commands, storage_responses) = storage_client::channel();
    storaged::spawn_storaged(persist.clone(), storage_commands, storage_responses)?;

    let mut compute = ComputeController::new();
    let (controller_end, replica_end) = compute_client::transport::channel();
    spawn_replica(
        ReplicaConfig {
            workers: config.workers,
            persist: persist.clone(),
        },
        replica_end,
    )
    .map_err(|e| anyhow::anyhow!("starting the replica: {e}"))?;
    compute.add_replica(1, controller_end);

    let mut coordinator = Coordinator::new(catalog, oracle, compute, storage, persist.clone());
    coordinator.set_tick_interval(config.tick_interval);
    coordinator
        .bootstrap()
        .map_err(|e| anyhow::anyhow!("bootstrapping: {e}"))?;
    let (commands_tx, commands_rx) = crossbeam_channel::unbounded();
    thread::Builder::new()
        .name("coordinator".into())
        // Planning recurses over statements; a large stack (reserved, not committed)
        // keeps unusually deep but valid ones from overflowing it.
        .stack_size(COORDINATOR_STACK_BYTES)
        .spawn(move || coordinator.run(commands_rx))?;
    let client = Client::new(commands_tx);

    let listener = TcpListener::bind(config.listen_addr).await?;
    let local_addr = listener.local_addr()?;
    let serving = client.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::pgwire::serve(listener, serving).await {
            tracing::error!(error = %e, "pgwire server stopped");
        }
    });
    Ok(Server { local_addr, client })
}
