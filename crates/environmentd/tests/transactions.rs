//! End-to-end tests of transaction semantics through tokio-postgres against the whole
//! system in one process (`environmentd::testing::start_server`): reads that see the
//! block's own writes, transactional `SET` / `SET LOCAL`, a nested BEGIN, DDL refused in
//! a block, the implicit transaction of a multi-statement simple query, and
//! `extra_float_digits` in text output. Expected answers are PostgreSQL 15's, except
//! where a test says Freshet differs on purpose.

use std::net::SocketAddr;
use std::time::Duration;

use environmentd::testing::start_server;
use tokio::time::timeout;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const WAIT: Duration = Duration::from_secs(30);

async fn connect(addr: SocketAddr) -> Client {
    let config = format!("host={} port={} user=freshet", addr.ip(), addr.port());
    let (client, connection) = timeout(WAIT, tokio_postgres::connect(&config, NoTls))
        .await
        .expect("connected in time")
        .expect("connected");
    tokio::spawn(connection);
    client
}

/// Every row of a simple query, each column as text (NULL as "NULL").
async fn rows(client: &Client, sql: &str) -> Vec<Vec<String>> {
    let messages = timeout(WAIT, client.simple_query(sql))
        .await
        .expect("answered in time")
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The single value a simple query returns.
async fn value(client: &Client, sql: &str) -> String {
    let rows = rows(client, sql).await;
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    assert_eq!(rows[0].len(), 1, "{sql}: {rows:?}");
    rows[0][0].clone()
}

async fn exec(client: &Client, sql: &str) {
    timeout(WAIT, client.batch_execute(sql))
        .await
        .expect("answered in time")
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

/// The SQLSTATE and message of the error `sql` fails with.
async fn error(client: &Client, sql: &str) -> (String, String) {
    let e = timeout(WAIT, client.batch_execute(sql))
        .await
        .expect("answered in time")
        .expect_err(sql);
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("{sql}: not a server error: {e:?}"));
    (db.code().code().to_string(), db.message().to_string())
}

#[tokio::test]
async fn reads_in_a_block_see_the_blocks_own_writes() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    let other = connect(addr).await;
    exec(&client, "CREATE TABLE t (k int, v text)").await;
    exec(&client, "INSERT INTO t VALUES (30, 'tx'), (40, 'other')").await;

    exec(&client, "BEGIN").await;
    exec(&client, "INSERT INTO t VALUES (31, 'tx')").await;
    assert_eq!(
        value(&client, "SELECT count(*) FROM t WHERE v = 'tx'").await,
        "2"
    );
    exec(&client, "DELETE FROM t WHERE k = 40").await;
    assert_eq!(
        value(&client, "SELECT count(*) FROM t WHERE k = 40").await,
        "0"
    );
    // UPDATE and DELETE find a row inserted earlier in the block.
    let updated = client
        .execute("UPDATE t SET v = 'new' WHERE k = 31", &[])
        .await
        .unwrap();
    assert_eq!(updated, 1);
    assert_eq!(
        rows(&client, "SELECT k, v FROM t ORDER BY k").await,
        vec![vec!["30", "tx"], vec!["31", "new"]]
    );
    // INSERT ... SELECT reads the block's writes too.
    exec(&client, "INSERT INTO t SELECT k + 100, v FROM t").await;
    assert_eq!(
        rows(&client, "SELECT k FROM t ORDER BY k").await,
        vec![vec!["30"], vec!["31"], vec!["130"], vec!["131"]]
    );
    let deleted = client
        .execute("DELETE FROM t WHERE k > 100", &[])
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    // Joins and aggregates over a written table see the writes on every side.
    assert_eq!(
        value(&client, "SELECT count(*) FROM t a JOIN t b ON a.k = b.k").await,
        "2"
    );

    // Another connection sees none of it before COMMIT.
    assert_eq!(
        rows(&other, "SELECT k, v FROM t ORDER BY k").await,
        vec![vec!["30", "tx"], vec!["40", "other"]]
    );
    exec(&client, "COMMIT").await;
    assert_eq!(
        rows(&other, "SELECT k, v FROM t ORDER BY k").await,
        vec![vec!["30", "tx"], vec!["31", "new"]]
    );

    // After ROLLBACK, reads see the committed state again.
    exec(&client, "BEGIN").await;
    exec(&client, "DELETE FROM t").await;
    assert_eq!(value(&client, "SELECT count(*) FROM t").await, "0");
    exec(&client, "ROLLBACK").await;
    assert_eq!(value(&client, "SELECT count(*) FROM t").await, "2");
}

#[tokio::test]
async fn a_write_waits_for_a_block_that_wrote() {
    // As in PostgreSQL, where the second DELETE waits for the block's row lock: a block
    // that wrote holds Freshet's write lock until it ends, so write transactions are
    // serializable.
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE t (k int)").await;
    exec(&client, "INSERT INTO t VALUES (1), (2)").await;
    exec(&client, "BEGIN").await;
    exec(&client, "DELETE FROM t WHERE k = 1").await;
    let other = tokio::spawn(async move {
        let other = connect(addr).await;
        exec(&other, "DELETE FROM t WHERE k = 1").await;
        other
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!other.is_finished(), "the second DELETE did not wait");
    assert_eq!(
        rows(&client, "SELECT k, count(*) FROM t GROUP BY k ORDER BY k").await,
        vec![vec!["2", "1"]]
    );
    exec(&client, "ROLLBACK").await;
    let other = timeout(WAIT, other)
        .await
        .expect("the second DELETE ran after ROLLBACK")
        .expect("no panic");
    assert_eq!(
        rows(&other, "SELECT k, count(*) FROM t GROUP BY k ORDER BY k").await,
        vec![vec!["2", "1"]]
    );
}

#[tokio::test]
async fn reads_in_a_block_see_own_writes_through_the_extended_protocol() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE t (k int)").await;
    exec(&client, "BEGIN").await;
    client
        .execute("INSERT INTO t VALUES ($1)", &[&7i32])
        .await
        .unwrap();
    let row = client
        .query_one("SELECT count(*) FROM t WHERE k = $1", &[&7i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    exec(&client, "ROLLBACK").await;
    let row = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
}

#[tokio::test]
async fn rollback_undoes_set() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "SET application_name = 'before_tx'").await;
    exec(&client, "BEGIN").await;
    exec(&client, "SET application_name = 'in_tx'").await;
    exec(&client, "SET myapp.flag = 'on'").await;
    exec(&client, "RESET search_path").await;
    assert_eq!(value(&client, "SHOW application_name").await, "in_tx");
    exec(&client, "ROLLBACK").await;
    assert_eq!(value(&client, "SHOW application_name").await, "before_tx");
    let (code, _) = error(&client, "SHOW myapp.flag").await;
    assert_eq!(code, "42704");

    // COMMIT keeps a plain SET.
    exec(&client, "BEGIN").await;
    exec(&client, "SET application_name = 'committed'").await;
    exec(&client, "COMMIT").await;
    assert_eq!(value(&client, "SHOW application_name").await, "committed");

    // An aborted block's COMMIT is a rollback, of the variables too.
    exec(&client, "BEGIN").await;
    exec(&client, "SET application_name = 'aborted'").await;
    let (code, _) = error(&client, "SELECT 1 / 0").await;
    assert_eq!(code, "22012");
    let tag = client.simple_query("COMMIT").await.unwrap();
    assert!(
        matches!(&tag[..], [SimpleQueryMessage::CommandComplete(0)]),
        "{tag:?}"
    );
    assert_eq!(value(&client, "SHOW application_name").await, "committed");

    // RESET ALL in a rolled-back block is undone.
    exec(&client, "SET extra_float_digits = 3").await;
    exec(&client, "BEGIN").await;
    exec(&client, "RESET ALL").await;
    assert_eq!(value(&client, "SHOW extra_float_digits").await, "1");
    exec(&client, "ROLLBACK").await;
    assert_eq!(value(&client, "SHOW extra_float_digits").await, "3");
    assert_eq!(value(&client, "SHOW application_name").await, "committed");
}

#[tokio::test]
async fn set_local_lasts_until_the_end_of_the_transaction() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "SET application_name = 'session'").await;

    exec(&client, "BEGIN").await;
    exec(&client, "SET LOCAL application_name = 'local'").await;
    assert_eq!(value(&client, "SHOW application_name").await, "local");
    exec(&client, "COMMIT").await;
    assert_eq!(value(&client, "SHOW application_name").await, "session");

    // SET after SET LOCAL: the SET survives COMMIT.
    exec(&client, "BEGIN").await;
    exec(&client, "SET LOCAL application_name = 'local'").await;
    exec(&client, "SET application_name = 'set_later'").await;
    exec(&client, "COMMIT").await;
    assert_eq!(value(&client, "SHOW application_name").await, "set_later");

    // SET LOCAL after SET: COMMIT goes back to the SET's value.
    exec(&client, "BEGIN").await;
    exec(&client, "SET application_name = 'set_first'").await;
    exec(&client, "SET LOCAL application_name = 'local'").await;
    exec(&client, "SET LOCAL search_path = 'elsewhere'").await;
    exec(&client, "COMMIT").await;
    assert_eq!(value(&client, "SHOW application_name").await, "set_first");
    assert_eq!(value(&client, "SHOW search_path").await, "public");

    // Outside a block SET LOCAL has no effect (PostgreSQL also warns), but its value is
    // still checked.
    exec(&client, "SET LOCAL application_name = 'ignored'").await;
    assert_eq!(value(&client, "SHOW application_name").await, "set_first");
    let (code, _) = error(&client, "SET LOCAL extra_float_digits = 99").await;
    assert_eq!(code, "22023");

    // In a multi-statement string (an implicit transaction) it lasts until its end.
    assert_eq!(
        rows(
            &client,
            "SET LOCAL application_name = 'in_string'; SHOW application_name"
        )
        .await,
        vec![vec!["in_string"]]
    );
    assert_eq!(value(&client, "SHOW application_name").await, "set_first");
}

#[tokio::test]
async fn nested_begin_keeps_the_transaction() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE t (k int)").await;
    exec(&client, "BEGIN").await;
    exec(&client, "INSERT INTO t VALUES (1)").await;
    // PostgreSQL also sends WARNING 25001 "there is already a transaction in progress";
    // Freshet does not send notices for statements yet.
    exec(&client, "BEGIN").await;
    exec(&client, "INSERT INTO t VALUES (2)").await;
    assert_eq!(value(&client, "SELECT count(*) FROM t").await, "2");
    exec(&client, "COMMIT").await;
    assert_eq!(
        rows(&client, "SELECT k FROM t ORDER BY k").await,
        vec![vec!["1"], vec!["2"]]
    );

    exec(&client, "BEGIN").await;
    exec(&client, "INSERT INTO t VALUES (3)").await;
    exec(&client, "BEGIN").await;
    exec(&client, "ROLLBACK").await;
    assert_eq!(value(&client, "SELECT count(*) FROM t").await, "2");
}

#[tokio::test]
async fn ddl_in_a_block_is_refused_once_the_block_writes() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE keep (k int)").await;

    // Before any write (drivers open a block before their first statement), DDL runs;
    // it takes effect at once and a ROLLBACK does not undo it.
    exec(&client, "BEGIN").await;
    exec(&client, "CREATE TABLE t (k int)").await;
    exec(&client, "ROLLBACK").await;
    assert_eq!(value(&client, "SELECT count(*) FROM t").await, "0");

    exec(&client, "BEGIN").await;
    exec(&client, "INSERT INTO keep VALUES (1)").await;
    let (code, message) = error(&client, "DROP TABLE keep").await;
    assert_eq!(code, "25001");
    assert_eq!(
        message,
        "DROP TABLE cannot be run inside a transaction block"
    );
    // The error aborts the block, as every error in a block does.
    let (code, _) = error(&client, "SELECT 1").await;
    assert_eq!(code, "25P02");
    exec(&client, "COMMIT").await;
    assert_eq!(value(&client, "SELECT count(*) FROM keep").await, "0");
}

#[tokio::test]
async fn a_multi_statement_query_is_one_implicit_transaction() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE t (k int)").await;

    // An error anywhere in the string undoes the writes before it.
    let (code, message) = error(&client, "INSERT INTO t VALUES (1); SELECT 1/0;").await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("22012", "division by zero")
    );
    assert_eq!(value(&client, "SELECT count(*) FROM t").await, "0");
    let (code, _) = error(
        &client,
        "INSERT INTO t VALUES (1); UPDATE t SET k = k / 0; INSERT INTO t VALUES (2)",
    )
    .await;
    assert_eq!(code, "22012");
    assert_eq!(value(&client, "SELECT count(*) FROM t").await, "0");
    // ... and its SETs.
    exec(&client, "SET application_name = 'before'").await;
    let (code, _) = error(&client, "SET application_name = 'during'; SELECT 1/0").await;
    assert_eq!(code, "22012");
    assert_eq!(value(&client, "SHOW application_name").await, "before");
    // The session is idle afterwards, not in an aborted block.
    assert_eq!(value(&client, "SELECT 1").await, "1");

    // When every statement succeeds, the writes commit, and later statements in the
    // string see the earlier ones' writes.
    assert_eq!(
        rows(
            &client,
            "INSERT INTO t VALUES (1), (2); UPDATE t SET k = k * 10 WHERE k = 2; \
             SELECT k FROM t ORDER BY k"
        )
        .await,
        vec![vec!["1"], vec!["20"]]
    );
    let other = connect(addr).await;
    assert_eq!(
        rows(&other, "SELECT k FROM t ORDER BY k").await,
        vec![vec!["1"], vec!["20"]]
    );

    // DDL in a string applies at once (Freshet cannot roll it back), and writes to a
    // table the string creates commit with it.
    assert_eq!(
        value(
            &client,
            "CREATE TABLE u (k int); INSERT INTO u VALUES (5); SELECT count(*) FROM u"
        )
        .await,
        "1"
    );
    assert_eq!(value(&other, "SELECT k FROM u").await, "5");
    exec(&client, "INSERT INTO u VALUES (6); DROP TABLE u").await;
    let (code, _) = error(&client, "SELECT * FROM u").await;
    assert_eq!(code, "42P01");
    // DISCARD ALL cannot run inside the implicit transaction.
    let (code, message) = error(&client, "SELECT 1; DISCARD ALL").await;
    assert_eq!(code, "25001");
    assert_eq!(message, "DISCARD ALL cannot run inside a transaction block");

    // A string with explicit transaction control runs statement by statement.
    let (code, _) = error(
        &client,
        "INSERT INTO t VALUES (3); BEGIN; INSERT INTO t VALUES (4); COMMIT; SELECT 1/0",
    )
    .await;
    assert_eq!(code, "22012");
    assert_eq!(
        rows(&client, "SELECT k FROM t ORDER BY k").await,
        vec![vec!["1"], vec!["3"], vec!["4"], vec!["20"]]
    );
}

#[tokio::test]
async fn extra_float_digits_changes_text_output() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    let sum = "SELECT 0.1::float8 + 0.2::float8";
    assert_eq!(value(&client, sum).await, "0.30000000000000004");
    exec(&client, "SET extra_float_digits = 0").await;
    assert_eq!(value(&client, sum).await, "0.3");
    assert_eq!(
        rows(
            &client,
            "SELECT 1::float8 / 3, 1::float4 / 3, 1e15::float8, 'NaN'::float8, 2::float8"
        )
        .await,
        vec![vec!["0.333333333333333", "0.333333", "1e+15", "NaN", "2"]]
    );
    exec(&client, "SET extra_float_digits = -10").await;
    assert_eq!(value(&client, "SELECT 1::float8 / 3").await, "0.33333");
    exec(&client, "SET extra_float_digits = 3").await;
    assert_eq!(value(&client, sum).await, "0.30000000000000004");

    // Binary results (tokio-postgres asks for them) are the exact float either way.
    exec(&client, "SET extra_float_digits = 0").await;
    let row = client.query_one(sum, &[]).await.unwrap();
    assert_eq!(row.get::<_, f64>(0), 0.1 + 0.2);
}
