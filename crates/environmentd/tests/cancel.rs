//! A CancelRequest from another socket ends a long-running SELECT with 57014, and the
//! server keeps serving (the transient dataflow is dropped).

use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_ends_a_running_query() {
    let (addr, _server) = environmentd::testing::start_server().await;
    let url = format!(
        "host={} port={} user=freshet dbname=freshet",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE big (a int)")
        .await
        .unwrap();
    // 1,000 distinct rows (equal rows would be joined once, by their counts); a three-way
    // cross join of them has 10^9 rows, every one of which the filter must look at (a plain
    // count(*) of the join is computed from the counts).
    client
        .batch_execute("INSERT INTO big SELECT x.a * 100 + y.a * 10 + z.a FROM (VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)) x(a), (VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)) y(a), (VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)) z(a)")
        .await
        .unwrap();
    let cancel = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.cancel_query(NoTls).await.unwrap();
    });
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(120),
        client.query_one(
            "SELECT count(*) FROM big x, big y, big z WHERE x.a + y.a + z.a < 0",
            &[],
        ),
    )
    .await
    .expect("the cancelled query returns");
    canceller.await.unwrap();
    let error = result.expect_err("the query was cancelled, not answered");
    let db = error.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "57014", "{}", db.message());
    assert_eq!(db.message(), "canceling statement due to user request");
    assert!(started.elapsed() < Duration::from_secs(120));
    // The same connection keeps working.
    let n: i64 = client
        .query_one("SELECT count(*) FROM big", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1000);
}
