//! Helpers for tests: the whole system in-process on a fresh data directory.

use std::path::PathBuf;

use crate::server::{start, Config, Server};

/// Keeps a test server's data directory until dropped.
pub struct TestServer {
    pub server: Server,
    pub data_dir: PathBuf,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A fresh temporary data directory.
pub fn temp_data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("freshet-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    dir
}

/// Starts Freshet on 127.0.0.1 (a free port) with a fresh data directory; returns the
/// pgwire address and a guard that removes the data directory.
pub async fn start_server() -> (std::net::SocketAddr, TestServer) {
    let data_dir = temp_data_dir();
    let config = Config {
        listen_addr: "127.0.0.1:0".parse().expect("valid address"),
        data_dir: data_dir.clone(),
        persist_blob_url: None,
        persist_consensus_url: None,
        workers: 1,
        tick_interval: std::time::Duration::from_millis(10),
    };
    let server = start(config).await.expect("server starts");
    (server.local_addr, TestServer { server, data_dir })
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// An environmentd process, killed (SIGKILL) and reaped when dropped.
pub struct ServerProcess(std::process::Child);

impl ServerProcess {
    /// Kills the process with SIGKILL and waits for it to end.
    pub fn kill(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("the process is reaped");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the environmentd binary `bin` (integration tests pass
/// `env!("CARGO_BIN_EXE_environmentd")`) on `data_dir`, listening on 127.0.0.1:`port`.
pub fn spawn_process(
    bin: &std::path::Path,
    data_dir: &std::path::Path,
    port: u16,
) -> ServerProcess {
    let child = std::process::Command::new(bin)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen-addr")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("environmentd starts");
    ServerProcess(child)
}
