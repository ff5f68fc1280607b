//! How fresh and how old reads can be, end to end.
//!
//! The tick: table uppers advance every `tick_interval` without writes, the shortest
//! of the system's value (`ALTER SYSTEM SET`) and what connected sessions ask for.
//!
//! History retention: tables and materialized views keep their last
//! `RETAIN HISTORY` interval (1 s by default) before the read timestamp (which moves
//! with writes) readable `AS OF`, compact the rest away
//! and refuse reads of it; `ALTER ... SET (RETAIN HISTORY ...)` changes the window; an
//! index falls back to its table for older reads; and a materialized view whose
//! inputs compact while it runs resumes after a kill -9 from its own shard.
//!
//! Dropping: a dropped table's or materialized view's shard loses every reader (the
//! coordinator's and the replica's), so nothing holds its history any more.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::{connect, exec, rows, try_rows, WAIT};
use environmentd::testing::{free_port, spawn_process, start_server, ServerProcess};
use tokio::time::sleep;
use tokio_postgres::Client;

async fn value(client: &Client, sql: &str) -> String {
    let rows = rows(client, sql).await;
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows[0][0].clone()
}

/// A field of `EXPLAIN TIMESTAMP FOR <query>`: the first number after `label`.
async fn explain_field(client: &Client, query: &str, label: &str) -> u64 {
    let text = value(client, &format!("EXPLAIN TIMESTAMP FOR {query}")).await;
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label} in {text}"));
    text[at + label.len()..]
        .trim_start_matches([' ', ':', '['])
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label} in {text}"))
}

/// The timestamp a SELECT of `table` reads at now.
async fn now_ts(client: &Client, table: &str) -> u64 {
    explain_field(client, &format!("SELECT * FROM {table}"), "query timestamp").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_kept_for_the_retain_history_window_only() {
    let (addr, _server) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE short (v int)").await;
    exec(
        &client,
        "CREATE TABLE long (v int) WITH (RETAIN HISTORY FOR '1h')",
    )
    .await;
    exec(&client, "CREATE INDEX long_v ON long (v)").await;
    exec(
        &client,
        "INSERT INTO short VALUES (0); INSERT INTO long VALUES (0)",
    )
    .await;
    let t0 = now_ts(&client, "long").await;
    for _ in 0..100 {
        exec(&client, "UPDATE short SET v = v + 1").await;
        exec(&client, "UPDATE long SET v = v + 1").await;
    }
    let t1 = now_ts(&client, "long").await;
    // Timestamps are milliseconds, and the read timestamp moves with writes: one more
    // write a while later puts t0 and t1 outside the default 1 s window. Sinces move
    // once a second.
    sleep(Duration::from_millis(1_200)).await;
    exec(
        &client,
        "INSERT INTO short VALUES (-1); DELETE FROM short WHERE v = -1",
    )
    .await;
    sleep(Duration::from_millis(2_500)).await;

    // The long table answers for t0 exactly: its old state, not a compacted one. Its
    // index (default window) no longer has t0, so the read goes to the table.
    assert_eq!(
        value(&client, &format!("SELECT v FROM long AS OF {t0}")).await,
        "0"
    );
    assert_eq!(
        value(&client, &format!("SELECT v FROM long AS OF {t1}")).await,
        "100"
    );
    // The short table compacted past t0 and t1, and says so.
    for ts in [t0, t1] {
        let error = try_rows(&client, &format!("SELECT v FROM short AS OF {ts}"))
            .await
            .unwrap_err();
        let db = error.as_db_error().expect("a server error");
        assert_eq!(db.code().code(), "22023", "{db:?}");
        assert!(
            db.message()
                .starts_with(&format!("Timestamp ({ts}) is not valid")),
            "{db:?}"
        );
    }
    let since = explain_field(&client, "SELECT * FROM short", "read frontier").await;
    assert!(since > t1, "short's since {since} did not pass {t1}");
    let since_long = explain_field(&client, "SELECT * FROM long", "read frontier").await;
    assert!(since_long <= t0, "long's since {since_long} passed {t0}");
    // SUBSCRIBE AS OF obeys the same rule.
    let error = try_rows(&client, &format!("SUBSCRIBE short AS OF {t0}"))
        .await
        .unwrap_err();
    assert_eq!(error.as_db_error().unwrap().code().code(), "22023");

    // A longer window from now on keeps what happens from now on.
    exec(&client, "ALTER TABLE short SET (RETAIN HISTORY FOR '1h')").await;
    sleep(Duration::from_millis(1_500)).await;
    let t2 = now_ts(&client, "short").await;
    for _ in 0..20 {
        exec(&client, "UPDATE short SET v = v + 1").await;
    }
    sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        value(&client, &format!("SELECT v FROM short AS OF {t2}")).await,
        "100"
    );
    assert_eq!(value(&client, "SELECT v FROM short").await, "120");
    // And resetting it lets the since catch up with the writes again.
    exec(&client, "ALTER TABLE short RESET (RETAIN HISTORY)").await;
    sleep(Duration::from_millis(1_200)).await;
    exec(
        &client,
        "INSERT INTO short VALUES (-1); DELETE FROM short WHERE v = -1",
    )
    .await;
    sleep(Duration::from_millis(2_500)).await;
    let since = explain_field(&client, "SELECT * FROM short", "read frontier").await;
    assert!(since > t2, "short's since {since} stayed at or before {t2}");

    // A transaction block's timestamp stays readable while the block lasts.
    exec(&client, "BEGIN").await;
    assert_eq!(value(&client, "SELECT v FROM short").await, "120");
    let other = connect(addr).await;
    exec(&other, "UPDATE short SET v = 0").await;
    sleep(Duration::from_millis(2_500)).await;
    assert_eq!(value(&client, "SELECT v FROM short").await, "120");
    exec(&client, "COMMIT").await;
    assert_eq!(value(&client, "SELECT v FROM short").await, "0");
}

fn spawn(data_dir: &Path, port: u16) -> ServerProcess {
    spawn_process(
        Path::new(env!("CARGO_BIN_EXE_environmentd")),
        data_dir,
        port,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn materialized_view_resumes_after_its_inputs_compacted() {
    let data_dir = environmentd::testing::temp_data_dir();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut expected = 0i64;
    {
        let _process = spawn(&data_dir, port);
        let client = connect(addr).await;
        exec(&client, "CREATE TABLE t (v int)").await;
        exec(
            &client,
            "CREATE MATERIALIZED VIEW m AS SELECT count(*) AS n, sum(v) AS s FROM t",
        )
        .await;
        let first = now_ts(&client, "t").await;
        // Writes spread over several compaction rounds: t's since moves on meanwhile.
        for i in 0..40 {
            exec(&client, &format!("INSERT INTO t VALUES ({i})")).await;
            expected += i;
            sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            rows(&client, "SELECT n, s FROM m").await,
            vec![vec!["40".to_string(), expected.to_string()]]
        );
        let since = explain_field(&client, "SELECT * FROM t", "read frontier").await;
        assert!(since > first, "t's since {since} did not move past {first}");
        // kill -9 when `_process` drops.
    }
    let _process = spawn(&data_dir, port);
    let client = connect(addr).await;
    assert_eq!(
        rows(&client, "SELECT n, s FROM m").await,
        vec![vec!["40".to_string(), expected.to_string()]]
    );
    // The view's dataflow runs again: new writes reach it.
    exec(&client, "INSERT INTO t VALUES (1000)").await;
    assert_eq!(
        rows(&client, "SELECT n, s FROM m").await,
        vec![vec!["41".to_string(), (expected + 1000).to_string()]]
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// The upper of `table`'s shard, from EXPLAIN TIMESTAMP.
async fn upper(client: &Client, table: &str) -> u64 {
    explain_field(client, &format!("SELECT * FROM {table}"), "write frontier").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tick_is_the_shortest_any_session_asks_for() {
    let (addr, _server) = start_server().await;
    let admin = connect(addr).await;
    exec(&admin, "CREATE TABLE idle (a int)").await;
    // A one-minute system tick: an idle table's upper stands still.
    exec(&admin, "ALTER SYSTEM SET tick_interval = '1min'").await;
    sleep(Duration::from_millis(100)).await;
    let before = upper(&admin, "idle").await;
    sleep(Duration::from_millis(500)).await;
    assert_eq!(
        upper(&admin, "idle").await,
        before,
        "the upper moved without a tick"
    );

    // A session that asks for 5 ms gets it for everyone while it is connected.
    let eager = connect(addr).await;
    exec(&eager, "SET tick_interval = '5ms'").await;
    sleep(Duration::from_millis(500)).await;
    let moved = upper(&admin, "idle").await;
    assert!(
        moved >= before + 300,
        "the upper moved only {} ms",
        moved - before
    );

    // Once it leaves, the system's tick applies again.
    drop(eager);
    sleep(Duration::from_millis(200)).await;
    let after = upper(&admin, "idle").await;
    sleep(Duration::from_millis(500)).await;
    assert_eq!(
        upper(&admin, "idle").await,
        after,
        "the session's tick outlived it"
    );

    // ALTER SYSTEM RESET restores the server's default (10 ms here).
    exec(&admin, "ALTER SYSTEM RESET tick_interval").await;
    sleep(Duration::from_millis(100)).await;
    let reset = upper(&admin, "idle").await;
    sleep(Duration::from_millis(500)).await;
    assert!(upper(&admin, "idle").await >= reset + 300);
}

/// The names of the readers registered on a shard, read from the server's persist
/// location directly.
fn shard_readers(location: &persist::PersistLocation, shard: &str) -> Vec<String> {
    let client = persist::PersistClient::open(location).expect("persist opens");
    let state = client
        .inspect_shard(shard.parse().expect("a shard id"))
        .expect("the shard state");
    let mut names: Vec<String> = state.readers.values().map(|r| r.name.clone()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_releases_the_shard_readers() {
    let (addr, server) = start_server().await;
    let location = persist::PersistLocation::local(&server.data_dir);
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE d (a int)").await;
    exec(
        &client,
        "CREATE MATERIALIZED VIEW dm AS SELECT count(*) AS n FROM d",
    )
    .await;
    exec(&client, "INSERT INTO d VALUES (1), (2)").await;
    // One-shot reads register the replica's cached readers.
    assert_eq!(value(&client, "SELECT count(*) FROM d").await, "2");
    assert_eq!(value(&client, "SELECT n FROM dm").await, "2");
    let shards = rows(
        &client,
        "SELECT object_id, shard_id FROM mz_internal.mz_storage_shards ORDER BY object_id",
    )
    .await;
    assert_eq!(shards.len(), 2, "{shards:?}");
    let (table_shard, view_shard) = (shards[0][1].clone(), shards[1][1].clone());
    let before = shard_readers(&location, &table_shard);
    for name in ["compute", "environmentd"] {
        assert!(
            before.iter().any(|r| r == name),
            "no {name} reader: {before:?}"
        );
    }
    assert!(!shard_readers(&location, &view_shard).is_empty());

    exec(&client, "DROP TABLE d CASCADE").await;
    // The replica handles the drop asynchronously.
    let deadline = Instant::now() + WAIT;
    loop {
        let (table, view) = (
            shard_readers(&location, &table_shard),
            shard_readers(&location, &view_shard),
        );
        if table.is_empty() && view.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readers left after DROP: table {table:?}, view {view:?}"
        );
        sleep(Duration::from_millis(100)).await;
    }
}
