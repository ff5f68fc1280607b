//! End to end: databases, schemas and the items in them survive a restart of a real
//! environmentd process, and qualified and search-path names resolve as before.

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
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("could not connect to environmentd: {e}"),
        }
    }
}

/// The first column of every row, as text.
async fn column(client: &Client, sql: &str) -> Vec<String> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

async fn count(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_databases_and_qualified_items_survive_restart() {
    let data_dir = environmentd::testing::temp_data_dir();
    let port = free_port();
    let mut server = spawn(&data_dir, port);
    let client = connect(port).await;
    client
        .batch_execute(
            "CREATE SCHEMA s;
             CREATE TABLE s.t (a int);
             CREATE TABLE t (a int);
             INSERT INTO s.t VALUES (1), (2), (3);
             INSERT INTO t VALUES (100);
             CREATE INDEX s_t_a ON s.t (a);
             CREATE MATERIALIZED VIEW s.mv AS SELECT sum(a) AS total FROM s.t;",
        )
        .await
        .unwrap();
    // A view created with `s` first in the search path reads s.t, whatever the
    // search path of the session that later reads it.
    client
        .batch_execute("SET search_path = s, public")
        .await
        .unwrap();
    client
        .batch_execute("CREATE VIEW public.v AS SELECT count(*) AS n FROM t")
        .await
        .unwrap();
    client.batch_execute("RESET search_path").await.unwrap();
    client.batch_execute("CREATE DATABASE d").await.unwrap();
    client
        .batch_execute(
            "CREATE SCHEMA d.s2;
             CREATE TABLE d.s2.u (b text);
             INSERT INTO d.s2.u VALUES ('in d');",
        )
        .await
        .unwrap();
    assert_eq!(count(&client, "SELECT n FROM v").await, 3);

    server.kill();
    drop(client);

    let _server = spawn(&data_dir, port);
    let client = connect(port).await;
    assert_eq!(
        column(&client, "SHOW DATABASES").await,
        vec!["d", "freshet"]
    );
    assert_eq!(column(&client, "SHOW SCHEMAS").await, vec!["public", "s"]);
    assert_eq!(
        column(&client, "SHOW SCHEMAS FROM d").await,
        vec!["public", "s2"]
    );
    assert_eq!(count(&client, "SELECT count(*) FROM s.t").await, 3);
    assert_eq!(count(&client, "SELECT count(*) FROM freshet.s.t").await, 3);
    assert_eq!(count(&client, "SELECT count(*) FROM t").await, 1);
    assert_eq!(count(&client, "SELECT n FROM v").await, 3);
    assert_eq!(count(&client, "SELECT total FROM s.mv").await, 6);
    assert_eq!(column(&client, "SELECT b FROM d.s2.u").await, vec!["in d"]);
    // The materialized view and index are maintained after the restart.
    client
        .batch_execute("INSERT INTO s.t VALUES (4)")
        .await
        .unwrap();
    assert_eq!(
        count(&client, "SELECT count(*) FROM s.t WHERE a = 4").await,
        1
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&client, "SELECT total FROM s.mv").await != 10 {
        assert!(Instant::now() < deadline, "s.mv did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Search paths and namespace DDL still work on the restored catalog.
    client.batch_execute("SET search_path = s").await.unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM t").await, 4);
    client.batch_execute("RESET search_path").await.unwrap();
    client.batch_execute("DROP DATABASE d").await.unwrap();
    client.batch_execute("DROP SCHEMA s CASCADE").await.unwrap();
    assert_eq!(column(&client, "SHOW DATABASES").await, vec!["freshet"]);
    assert_eq!(column(&client, "SHOW SCHEMAS").await, vec!["public"]);
    let error = client.query("SELECT n FROM v", &[]).await.unwrap_err();
    assert_eq!(
        error.as_db_error().map(|e| e.code().code()),
        Some("42P01"),
        "the view on s.t went with s: {error}"
    );
    drop(_server);
    let _ = std::fs::remove_dir_all(&data_dir);
}
