//! Reads of an indexed view racing the replacement of the view (which rebuilds its
//! index under the same id): a read waiting for the index to reach its time is refused
//! when the index goes first; it never answers from the old index's sealed (partial)
//! trace, nor from the new index at a later time than its own.

mod common;

use std::time::Duration;

use common::{connect, exec, rows, try_rows};
use environmentd::testing::start_server;

/// Rows of `t`; the view is their cross join, so its index takes seconds to build.
const ROWS: i64 = 3_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_an_index_replaced_before_it_is_built_are_refused() {
    let (addr, _server) = start_server().await;
    let ddl = connect(addr).await;
    exec(&ddl, "CREATE TABLE t (a int)").await;
    exec(
        &ddl,
        &format!("INSERT INTO t SELECT generate_series(1, {ROWS})"),
    )
    .await;
    // The filter (always true) reads both sides, so every pair is formed.
    let view = "SELECT x.a % 3 AS k, count(*) AS n FROM t x, t y \
                WHERE (x.a * y.a) % 7 <> 100 GROUP BY x.a % 3";
    exec(&ddl, &format!("CREATE VIEW v AS {view}")).await;
    exec(&ddl, "CREATE INDEX v_k ON v (k)").await;
    // What the view holds before the insert below, read right after the index was
    // created: the index is still being built, so both reads wait for it.
    let before = ROWS / 3 * ROWS;
    let (reader, other) = (connect(addr).await, connect(addr).await);
    let reads = tokio::spawn(async move {
        // A key lookup in the index, and a dataflow importing it.
        let lookup = try_rows(&reader, "SELECT n FROM v WHERE k = 0");
        let aggregate = try_rows(&other, "SELECT sum(n) FROM v WHERE k = 0");
        tokio::join!(lookup, aggregate)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A write after the reads' time, then the index is rebuilt under the same id.
    exec(&ddl, "INSERT INTO t VALUES (3)").await;
    exec(&ddl, &format!("CREATE OR REPLACE VIEW v AS {view}")).await;
    let (lookup, aggregate) = reads.await.expect("the reads ran");
    let mut refused = 0;
    for (what, result) in [("lookup", lookup), ("aggregate", aggregate)] {
        match result {
            // Built in time after all: the answer is the one at the read's time.
            Ok(got) => assert_eq!(got, vec![vec![before.to_string()]], "{what}"),
            Err(e) => {
                let message = e.as_db_error().map(|d| d.message().to_string());
                assert!(
                    message.as_deref().is_some_and(|m| {
                        m.contains("was dropped or replaced while a query was reading it")
                    }),
                    "{what}: unexpected error {e:?}"
                );
                refused += 1;
            }
        }
    }
    println!("reads racing the replacement: {refused} of 2 refused");
    // The rebuilt index answers with the insert.
    let after = (ROWS / 3 + 1) * (ROWS + 1);
    assert_eq!(
        rows(&ddl, "SELECT n FROM v WHERE k = 0").await,
        vec![vec![after.to_string()]]
    );
}
