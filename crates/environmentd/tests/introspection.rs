//! End to end: the replica's dataflows, operators and arrangements as the introspection
//! relations show them (`mz_internal.mz_dataflows`, `mz_dataflow_operators`,
//! `mz_dataflow_operator_dataflows`, `mz_scheduling_elapsed`, `mz_arrangement_sizes`).
//! Replicas report once a second, so the tests wait for what they expect.

use std::time::{Duration, Instant};

mod common;

use common::{connect, exec, rows};
use environmentd::testing::start_server;
use tokio::time::sleep;
use tokio_postgres::Client;

/// Polls `sql` until `done` holds for its rows, or fails after 30 seconds.
async fn wait_for(
    client: &Client,
    sql: &str,
    what: &str,
    done: impl Fn(&[Vec<String>]) -> bool,
) -> Vec<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = rows(client, sql).await;
        if done(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "{what}: still {got:?}");
        sleep(Duration::from_millis(200)).await;
    }
}

/// The (records, batches, size) of the index `id`.
async fn size_of(client: &Client, id: &str) -> (i64, i64, i64) {
    let r = rows(
        client,
        &format!(
            "SELECT records, batches, size FROM mz_internal.mz_arrangement_sizes WHERE object_id = '{id}'"
        ),
    )
    .await;
    let r = &r[0];
    (
        r[0].parse().unwrap(),
        r[1].parse().unwrap(),
        r[2].parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataflows_and_operators_with_their_time() {
    let (addr, _server) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE t (a int, b text)").await;
    exec(
        &client,
        "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 20000) g",
    )
    .await;
    exec(&client, "CREATE INDEX t_a ON t (a)").await;
    exec(
        &client,
        "CREATE MATERIALIZED VIEW mv AS SELECT a % 10 AS k, count(*) FROM t GROUP BY 1",
    )
    .await;
    let names = "SELECT name FROM mz_internal.mz_dataflows ORDER BY name";
    wait_for(&client, names, "both dataflows listed", |r| {
        r.iter().any(|n| n[0] == "index-t_a") && r.iter().any(|n| n[0] == "materialized-view-mv")
    })
    .await;

    // Each dataflow's operators, with the time they ran: the index's arrangement and
    // the view's aggregation and sink are there, and took time to load 20,000 rows.
    let ops = "SELECT o.dataflow_name, o.name, e.elapsed_ns::text \
               FROM mz_internal.mz_dataflow_operator_dataflows o \
               JOIN mz_internal.mz_scheduling_elapsed e USING (id) \
               WHERE o.dataflow_name IN ('index-t_a', 'materialized-view-mv')";
    let got = wait_for(&client, ops, "operators with time", |r| {
        let ran = |dataflow: &str, prefix: &str| {
            r.iter().any(|o| {
                o[0] == dataflow && o[1].starts_with(prefix) && o[2].parse::<u64>().unwrap_or(0) > 0
            })
        };
        ran("index-t_a", "Index(")
            && ran("index-t_a", "PersistSource(")
            && ran("materialized-view-mv", "PersistSink(")
            && ran("materialized-view-mv", "Count")
    })
    .await;
    // A dataflow's own operator (its scope) includes the time of its operators.
    for dataflow in ["index-t_a", "materialized-view-mv"] {
        let scope: u64 = got
            .iter()
            .find(|o| o[0] == dataflow && o[1] == dataflow)
            .map(|o| o[2].parse().unwrap())
            .expect("the dataflow's scope is an operator");
        let max_inner = got
            .iter()
            .filter(|o| o[0] == dataflow && o[1] != dataflow)
            .map(|o| o[2].parse::<u64>().unwrap())
            .max()
            .unwrap();
        assert!(
            scope >= max_inner,
            "{dataflow}: scope {scope} ns < operator {max_inner} ns"
        );
    }
    // Every operator has one row in each relation.
    let counts = rows(
        &client,
        "SELECT (SELECT count(*) FROM mz_internal.mz_dataflow_operators), \
                (SELECT count(DISTINCT id) FROM mz_internal.mz_dataflow_operators), \
                (SELECT count(*) FROM mz_internal.mz_scheduling_elapsed)",
    )
    .await;
    assert_eq!(counts[0][0], counts[0][1]);

    // Dropping the index drops its dataflow and its operators.
    let before: i64 = rows(
        &client,
        "SELECT count(*) FROM mz_internal.mz_dataflow_operator_dataflows WHERE dataflow_name = 'index-t_a'",
    )
    .await[0][0]
        .parse()
        .unwrap();
    assert!(before > 3, "{before} operators");
    exec(&client, "DROP INDEX t_a").await;
    wait_for(&client, names, "the index's dataflow gone", |r| {
        !r.iter().any(|n| n[0] == "index-t_a") && r.iter().any(|n| n[0] == "materialized-view-mv")
    })
    .await;
    wait_for(
        &client,
        "SELECT count(*) FROM mz_internal.mz_dataflow_operator_dataflows WHERE dataflow_name = 'index-t_a'",
        "the index's operators gone",
        |r| r[0][0] == "0",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrangement_bytes_follow_the_contents() {
    let (addr, _server) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE t (a int, b text)").await;
    exec(&client, "CREATE INDEX t_a ON t (a)").await;
    let id = rows(
        &client,
        "SELECT object_id FROM mz_internal.mz_arrangement_sizes",
    )
    .await[0][0]
        .clone();
    let sizes = format!(
        "SELECT records, size FROM mz_internal.mz_arrangement_sizes WHERE object_id = '{id}'"
    );
    // Rows of a known size: an int and a 100-character text each.
    exec(
        &client,
        "INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 10000) g",
    )
    .await;
    wait_for(&client, &sizes, "10,000 records", |r| r[0][0] == "10000").await;
    let (_, _, small) = size_of(&client, &id).await;
    // At least the rows' own bytes (the 100 characters), and not wildly more.
    assert!(
        (10_000 * 100..=10_000 * 400).contains(&small),
        "{small} bytes for 10,000 rows of ~105 bytes"
    );
    exec(
        &client,
        "INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(10001, 50000) g",
    )
    .await;
    wait_for(&client, &sizes, "50,000 records", |r| r[0][0] == "50000").await;
    let (_, _, large) = size_of(&client, &id).await;
    assert!(
        (small * 4..=small * 6).contains(&large),
        "{large} bytes for 50,000 rows, {small} for 10,000"
    );
    // Deleting every row: once the retractions have merged with the rows, the
    // arrangement is empty again.
    exec(&client, "DELETE FROM t").await;
    wait_for(&client, &sizes, "an empty arrangement", |r| {
        r[0][0] == "0" && r[0][1] == "0"
    })
    .await;
    println!("index bytes: {small} for 10,000 rows, {large} for 50,000, 0 after deleting them");
}
