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
