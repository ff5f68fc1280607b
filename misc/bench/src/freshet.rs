//! An `environmentd` process for one benchmark configuration.
//!
//! Each [`Server`] has a fresh data directory (file blobs and SQLite consensus on local
//! disk, the defaults) and is killed, with its directory removed, on drop.
//! [`Server::restart`] stops and starts the process on the same directory, which the
//! memory benchmark uses to measure an index in a process without load-time garbage.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tokio_postgres::NoTls;

/// How a server is started.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub bin: PathBuf,
    pub workers: usize,
    pub tick_ms: u64,
}

impl ServerConfig {
    /// The release binary in `$CARGO_TARGET_DIR` (or `target/`), 1 worker, 10 ms tick.
    pub fn from_env() -> ServerConfig {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        ServerConfig {
            bin: PathBuf::from(format!("{target}/release/environmentd")),
            workers: 1,
            tick_ms: 10,
        }
    }
}

/// A running environmentd.
pub struct Server {
    config: ServerConfig,
    child: Option<Child>,
    dir: PathBuf,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// Starts a server on a fresh data directory and waits until it accepts connections.
    pub async fn start(config: &ServerConfig) -> Result<Server> {
        let port = crate::free_port()?;
        let dir = std::env::temp_dir().join(format!("freshet-bench-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut server = Server {
            config: config.clone(),
            child: None,
            dir,
            port,
        };
        server.spawn().await?;
        Ok(server)
    }

    async fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))?;
        let child = Command::new(&self.config.bin)
            .arg("--listen-addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--workers")
            .arg(self.config.workers.to_string())
            .arg("--tick-interval-ms")
            .arg(self.config.tick_ms.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.config.bin.display()))?;
        self.child = Some(child);
        for _ in 0..1200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(anyhow!(
            "environmentd did not start listening; see {}",
            self.log_path().display()
        ))
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process and starts it again on the same data directory.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn().await
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// `(VmRSS, VmHWM)` of the process in bytes.
    pub fn memory(&self) -> (u64, u64) {
        crate::process_memory(self.pid()).unwrap_or((0, 0))
    }

    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        connect(&format!(
            "host=127.0.0.1 port={} user=freshet dbname=freshet",
            self.port
        ))
        .await
    }
}

/// A connection whose driver task runs in the background.
pub async fn connect(config: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(config, NoTls)
        .await
        .with_context(|| format!("connecting to {config}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Sends `data` with `COPY <target> FROM STDIN` on `client` and returns the row count.
/// The data is sent in 1 MiB slices of `data`, without copying it.
pub async fn copy_in(
    client: &tokio_postgres::Client,
    target: &str,
    data: &bytes::Bytes,
) -> Result<u64> {
    use futures::SinkExt;
    let sink = client
        .copy_in::<_, bytes::Bytes>(&format!("COPY {target} FROM STDIN"))
        .await
        .with_context(|| format!("COPY {target} FROM STDIN"))?;
    let mut sink = Box::pin(sink);
    let mut at = 0;
    while at < data.len() {
        let end = (at + (1 << 20)).min(data.len());
        sink.send(data.slice(at..end)).await?;
        at = end;
    }
    Ok(sink.as_mut().finish().await?)
}
