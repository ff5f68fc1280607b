//! Large but valid statements are answered, not fatal: a 10,000-row VALUES list (which
//! once lowered to a 10,000-deep chain of unions and overflowed the coordinator's
//! stack), a long IN list and a wide UNION ALL. The server keeps serving afterwards.

use std::time::Duration;

use environmentd::testing::start_server;
use tokio::time::timeout;
use tokio_postgres::{NoTls, SimpleQueryMessage};

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_statements_are_answered() {
    let (addr, _server) = start_server().await;
    let config = format!("host={} port={} user=freshet", addr.ip(), addr.port());
    let (client, connection) = tokio_postgres::connect(&config, NoTls)
        .await
        .expect("connected");
    tokio::spawn(connection);
    let value = |sql: String| {
        let client = &client;
        async move {
            let messages = timeout(WAIT, client.simple_query(&sql))
                .await
                .expect("answered in time")
                .unwrap_or_else(|e| panic!("{:?}", e.as_db_error()));
            messages
                .into_iter()
                .find_map(|m| match m {
                    SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                })
                .expect("a row")
        }
    };
    client
        .batch_execute("CREATE TABLE t (a int, b text)")
        .await
        .expect("created");
    let rows: Vec<String> = (0..10_000).map(|i| format!("({i}, 'row {i}')")).collect();
    timeout(
        WAIT,
        client.batch_execute(&format!("INSERT INTO t VALUES {}", rows.join(", "))),
    )
    .await
    .expect("answered in time")
    .expect("inserted");
    assert_eq!(value("SELECT count(*) FROM t".into()).await, "10000");
    let list: Vec<String> = (0..5_000).map(|i| (i * 2).to_string()).collect();
    assert_eq!(
        value(format!(
            "SELECT count(*) FROM t WHERE a IN ({})",
            list.join(", ")
        ))
        .await,
        "5000"
    );
    let arms: Vec<String> = (0..2_000).map(|i| format!("SELECT {i} AS x")).collect();
    assert_eq!(
        value(format!(
            "SELECT count(*) FROM ({}) u",
            arms.join(" UNION ALL ")
        ))
        .await,
        "2000"
    );
    assert_eq!(value("SELECT 1".into()).await, "1");
}
