//! Starting and stopping a Freshet server child process for `--server-bin`.
//!
//! Each server gets a fresh data directory under the system temp directory and
//! a free loopback port; its output goes to `server.log` in that directory.
//! The server is ready once a PostgreSQL session can be opened.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};
use tokio_postgres::{Config, NoTls};

/// How to launch the server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// The server binary.
    pub bin: PathBuf,
    /// Extra arguments appended after `--listen-addr` and `--data-dir`.
    pub extra_args: Vec<String>,
    /// How long to wait for the server to accept sessions.
    pub startup_timeout: Duration,
    /// User and database used to check that the server is ready.
    pub user: String,
    pub dbname: String,
    /// Keep the data directory when the server is stopped.
    pub keep_data: bool,
}

/// A running server child process.
pub struct Server {
    spec: ServerSpec,
    child: Option<Child>,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Server {
    /// Starts a server with a fresh data directory and waits until it listens.
    pub async fn start(spec: &ServerSpec) -> Result<Server> {
        let dir = fresh_dir()?;
        let port = free_port()?;
        let mut server = Server {
            spec: spec.clone(),
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        server.launch().await?;
        Ok(server)
    }

    /// Connection settings for this server.
    pub fn config(&self, user: &str, dbname: &str) -> Config {
        let mut config = Config::new();
        config
            .host(self.addr.ip().to_string())
            .port(self.addr.port())
            .user(user)
            .dbname(dbname)
            .application_name("sqllogictest");
        config
    }

    /// The server process's id, while it runs (the `incremental-views` binary watches
    /// its memory).
    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Where the server writes its output.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Returns the exit status if the server process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Err(e)) => Some(format!("unknown status ({e})")),
            Some(Ok(None)) => None,
            None => Some("not running".to_string()),
        }
    }

    /// Returns the exit status if the server has exited, or exits within
    /// `grace` while its port refuses connections (a crashing server may
    /// take a moment to go away).
    pub async fn wait_exit_if_unreachable(&mut self, grace: Duration) -> Option<String> {
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            let probe = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect(self.addr),
            )
            .await;
            if matches!(probe, Ok(Ok(_))) || Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts the server again on the same port and data directory (after a
    /// crash).
    pub async fn restart(&mut self) -> Result<()> {
        self.kill().await;
        self.launch().await
    }

    /// Stops the server and removes its data directory (unless kept).
    pub async fn stop(mut self) {
        self.kill().await;
        if !self.spec.keep_data {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }

    async fn launch(&mut self) -> Result<()> {
        let data_dir = self.dir.join("data");
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .with_context(|| format!("creating {}", self.log_path().display()))?;
        let child = Command::new(&self.spec.bin)
            .arg("--listen-addr")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .args(&self.spec.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.spec.bin.display()))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.spec.startup_timeout;
        loop {
            if let Some(status) = self.exited() {
                bail!(
                    "server exited during startup ({status}); log:\n{}",
                    log_tail(&self.log_path())
                );
            }
            // Ready once a session can be opened, not merely once the port
            // is bound (a server may still be recovering).
            let attempt = tokio::time::timeout(
                Duration::from_secs(5),
                self.config(&self.spec.user, &self.spec.dbname)
                    .connect(NoTls),
            )
            .await;
            let last_error = match attempt {
                Ok(Ok((_client, connection))) => {
                    drop(connection);
                    return Ok(());
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "connection attempt timed out".to_string(),
            };
            if Instant::now() >= deadline {
                self.kill().await;
                bail!(
                    "server did not accept sessions on {} within {}s ({last_error}); log:\n{}",
                    self.addr,
                    self.spec.startup_timeout.as_secs(),
                    log_tail(&self.log_path())
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A new empty directory under the system temp directory.
fn fresh_dir() -> Result<PathBuf> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let base = std::env::temp_dir();
    for _ in 0..100 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!(
            "freshet-slt-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!(
        "could not create a temporary directory in {}",
        base.display()
    )
}

/// A loopback port that is free right now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The last lines of the server log, for error messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
