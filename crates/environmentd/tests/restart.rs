//! End to end: a real environmentd process, killed with SIGKILL mid-life, loses no
//! acknowledged write and duplicates none.

use std::path::Path;
use std::time::{Duration, Instant};

use environmentd::testing::{free_port, spawn_process, ServerProcess};
use tokio_postgres::{Client, NoTls};

fn spawn(data_dir: &Path, port: u16) -> ServerProcess {
    spawn_process(
        Path::new(env!("CARGO_BIN_EXE_environmentd")),
        data_dir,
        port,
    )
}

async fn connect(port: u16) -> Client {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = format!("host=127.0.0.1 port={port} user=freshet dbname=freshet");
        match tokio_postgres::connect(&url, NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                return client;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("could not connect to environmentd: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_rows_survive_kill_9() {
    let data_dir = environmentd::testing::temp_data_dir();
    let port = free_port();
    let mut server = spawn(&data_dir, port);
    let mut client = connect(port).await;
    client
        .batch_execute("CREATE TABLE t (id int NOT NULL, payload text)")
        .await
        .unwrap();
    for txn in 0..100 {
        let tx = client.transaction().await.unwrap();
        for i in 0..10 {
            let id: i32 = txn * 10 + i;
            tx.execute(
                "INSERT INTO t VALUES ($1, $2)",
                &[&id, &format!("row {id}")],
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    // Every acknowledged row is visible before the crash, too.
    let before: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, 1000);

    server.kill();
    drop(client);

    let _server = spawn(&data_dir, port);
    let client = connect(port).await;
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT id), min(id), max(id), sum(id) FROM t",
            &[],
        )
        .await
        .unwrap();
    let (count, distinct, min, max, sum): (i64, i64, i32, i32, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(
        (count, distinct, min, max, sum),
        (1000, 1000, 0, 999, 999 * 1000 / 2)
    );
    let sample = client
        .query_one("SELECT payload FROM t WHERE id = 777", &[])
        .await
        .unwrap();
    assert_eq!(sample.get::<_, String>(0), "row 777");
    // The restarted server takes new writes after the old ones.
    client
        .batch_execute("INSERT INTO t VALUES (1000, 'after restart')")
        .await
        .unwrap();
    let after: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, 1001);
    drop(_server);
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// The one `numeric` value of a query, as an integer.
async fn numeric(client: &Client, sql: &str) -> u64 {
    let row = client.query_one(sql, &[]).await.unwrap();
    let text: String = row.get(0);
    text.parse()
        .unwrap_or_else(|e| panic!("{sql}: {text} is not a timestamp: {e}"))
}

/// An error's SQLSTATE and message.
async fn error_of(client: &Client, sql: &str) -> (String, String) {
    let e = client.simple_query(sql).await.expect_err("the query fails");
    let db = e.as_db_error().expect("a server error");
    (db.code().code().to_string(), db.message().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn materialized_view_resumes_from_its_shard() {
    const ROWS: i64 = 1_000_000;
    let data_dir = environmentd::testing::temp_data_dir();
    let port = free_port();
    let mut server = spawn(&data_dir, port);
    let client = connect(port).await;
    client
        .batch_execute(&format!(
            "CREATE TABLE t (k bigint, v bigint);
             INSERT INTO t SELECT g, g % 97 FROM generate_series(1, {ROWS}) AS g"
        ))
        .await
        .unwrap();
    let created = Instant::now();
    client
        .batch_execute(
            "CREATE MATERIALIZED VIEW mv AS SELECT k, v * 2 AS w FROM t WHERE v <> 0;
             CREATE MATERIALIZED VIEW mv_err AS SELECT k / (v - 5) AS q FROM t WHERE k < 100",
        )
        .await
        .unwrap();
    let expected = "SELECT count(*)::text, sum(k)::text, sum(w)::text FROM mv";
    let answer = |row: &tokio_postgres::Row| -> (String, String, String) {
        (row.get(0), row.get(1), row.get(2))
    };
    let before = answer(&client.query_one(expected, &[]).await.unwrap());
    let built = created.elapsed();
    // Computed independently of the view, from the table.
    let direct = answer(
        &client
            .query_one(
                "SELECT count(*)::text, sum(k)::text, sum(v * 2)::text FROM t WHERE v <> 0",
                &[],
            )
            .await
            .unwrap(),
    );
    assert_eq!(before, direct);
    let mv_id: String = client
        .query_one(
            "SELECT object_id FROM mz_internal.mz_storage_shards ORDER BY object_id DESC LIMIT 1 OFFSET 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let first_as_of = numeric(
        &client,
        &format!(
            "SELECT as_of::text FROM mz_internal.mz_compute_as_ofs WHERE object_id = '{mv_id}'"
        ),
    )
    .await;
    let upper_before = numeric(
        &client,
        &format!(
            "SELECT write_frontier::text FROM mz_internal.mz_frontiers WHERE object_id = '{mv_id}'"
        ),
    )
    .await;
    assert!(upper_before > first_as_of);
    // What a read of the view costs when nothing needs computing.
    let warm = Instant::now();
    assert_eq!(
        answer(&client.query_one(expected, &[]).await.unwrap()),
        before
    );
    let read_before = warm.elapsed();
    let err_before = error_of(&client, "SELECT * FROM mv_err").await;
    assert_eq!(err_before.0, "22012", "{err_before:?}");

    server.kill();
    drop(client);

    let restarted = Instant::now();
    let _server = spawn(&data_dir, port);
    let client = connect(port).await;
    let connected = restarted.elapsed();
    let reading = Instant::now();
    let after = answer(&client.query_one(expected, &[]).await.unwrap());
    let first_read = reading.elapsed();
    assert_eq!(after, before);
    // The view's dataflow starts just below its shard's upper, past everything the
    // view had written before the crash: it resumed rather than recomputing.
    let as_of = numeric(
        &client,
        &format!(
            "SELECT as_of::text FROM mz_internal.mz_compute_as_ofs WHERE object_id = '{mv_id}'"
        ),
    )
    .await;
    assert!(
        as_of + 1 >= upper_before,
        "resumed at {as_of}, but the shard's upper was {upper_before} before the crash"
    );
    // Its stored error came back with it.
    assert_eq!(error_of(&client, "SELECT * FROM mv_err").await, err_before);
    // And it keeps up with new writes.
    client
        .batch_execute(&format!("INSERT INTO t VALUES ({}, 1)", ROWS + 1))
        .await
        .unwrap();
    let more: i64 = client
        .query_one("SELECT count(*) FROM mv", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        more.to_string(),
        (before.0.parse::<i64>().unwrap() + 1).to_string()
    );
    println!(
        "{ROWS} rows: the view took {built:?} to build; a read of it took {read_before:?} before \
         the crash; after kill -9 the server accepted connections in {connected:?} and the first \
         read took {first_read:?}; dataflow as_of {first_as_of} at creation, {as_of} after \
         restart (shard upper before the crash {upper_before})"
    );
    drop(_server);
    let _ = std::fs::remove_dir_all(&data_dir);
}
