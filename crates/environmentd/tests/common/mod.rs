//! Client helpers shared by the end-to-end tests: connect to a server and run SQL
//! through the simple protocol, every value as text (`NULL` for NULL).
#![allow(dead_code)] // Each test file uses its own subset.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::time::{sleep, timeout};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// How long a connection or a statement may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// Connects as `freshet`, retrying until [`WAIT`] passes (a server may still be
/// starting).
pub async fn connect(addr: SocketAddr) -> Client {
    let deadline = Instant::now() + WAIT;
    let config = format!("host={} port={} user=freshet", addr.ip(), addr.port());
    loop {
        match tokio_postgres::connect(&config, NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                return client;
            }
            Err(_) if Instant::now() < deadline => sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("could not connect: {e}"),
        }
    }
}

pub async fn try_rows(
    client: &Client,
    sql: &str,
) -> Result<Vec<Vec<String>>, tokio_postgres::Error> {
    let messages = timeout(WAIT, client.simple_query(sql))
        .await
        .unwrap_or_else(|_| panic!("{sql}: no answer in time"))?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

pub async fn rows(client: &Client, sql: &str) -> Vec<Vec<String>> {
    try_rows(client, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {:?}", e.as_db_error()))
}

pub async fn exec(client: &Client, sql: &str) {
    timeout(WAIT, client.batch_execute(sql))
        .await
        .unwrap_or_else(|_| panic!("{sql}: no answer in time"))
        .unwrap_or_else(|e| panic!("{sql}: {:?}", e.as_db_error()));
}

/// Starts this crate's environmentd binary on `data_dir`, listening on 127.0.0.1:`port`.
pub fn spawn(data_dir: &Path, port: u16) -> environmentd::testing::ServerProcess {
    environmentd::testing::spawn_process(
        Path::new(env!("CARGO_BIN_EXE_environmentd")),
        data_dir,
        port,
    )
}
