//! The environmentd binary: with no flags, the whole of Freshet in one process, data in
//! `./freshet-data`, pgwire on 127.0.0.1:6875.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use environmentd::server::{start, Config};

/// Freshet's coordinator; with no flags it runs the whole system in one process.
#[derive(Parser, Debug)]
#[command(name = "environmentd", version, about)]
struct Args {
    /// The address the PostgreSQL protocol listens on.
    #[arg(long, default_value = "127.0.0.1:6875", env = "FRESHET_LISTEN_ADDR")]
    listen_addr: SocketAddr,
    /// The directory for the default storage: file blobs and SQLite consensus.
    #[arg(long, default_value = "freshet-data", env = "FRESHET_DATA_DIR")]
    data_dir: PathBuf,
    /// The persist blob store: `file:///abs/path` or `mem://name` (default: under --data-dir).
    #[arg(long)]
    persist_blob_url: Option<String>,
    /// The persist consensus store: `sqlite:///abs/path.db` or `mem://name` (default: under --data-dir).
    #[arg(long)]
    persist_consensus_url: Option<String>,
    /// Timely worker threads of the quickstart cluster's replica.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// How often table uppers advance without writes, in milliseconds (the tick).
    #[arg(long, default_value_t = 10, env = "FRESHET_TICK_INTERVAL_MS")]
    tick_interval_ms: u64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = Config {
            listen_addr: args.listen_addr,
            data_dir: args.data_dir,
            persist_blob_url: args.persist_blob_url,
            persist_consensus_url: args.persist_consensus_url,
            workers: args.workers,
            tick_interval: std::time::Duration::from_millis(args.tick_interval_ms.max(1)),
        };
        let server = start(config).await?;
        tracing::info!(addr = %server.local_addr, "Freshet is ready: psql -h {} -p {} -U freshet freshet", server.local_addr.ip(), server.local_addr.port());
        std::future::pending::<()>().await;
        Ok(())
    })
}
