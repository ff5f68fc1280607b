//! `COPY ... FROM STDIN` and `COPY (...) TO STDOUT` through tokio-postgres (the extended
//! protocol; psql's simple-protocol COPY is in test/e2e/clients.py): text and CSV,
//! column lists and defaults, type modifiers, bad data reported with its line and
//! nothing written, COPY inside a transaction, and a large load.

use bytes::Bytes;
use environmentd::testing::start_server;
use futures::{SinkExt, StreamExt};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

async fn connect(addr: std::net::SocketAddr) -> Client {
    let config = format!("host={} port={} user=freshet", addr.ip(), addr.port());
    let (client, connection) = tokio_postgres::connect(&config, NoTls)
        .await
        .expect("connected");
    tokio::spawn(connection);
    client
}

async fn rows(client: &Client, sql: &str) -> Vec<Vec<String>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {:?}", e.as_db_error()))
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

async fn copy_in(client: &Client, sql: &str, data: &str) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, Bytes>(sql).await?;
    let mut sink = Box::pin(sink);
    sink.send(Bytes::from(data.to_string())).await?;
    sink.as_mut().finish().await
}

fn strs(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_from_stdin_loads_rows() {
    let (addr, _server) = start_server().await;
    let client = connect(addr).await;
    client
        .batch_execute("CREATE TABLE c (a int NOT NULL, b text, n numeric(5,1) DEFAULT 1.25)")
        .await
        .unwrap();
    let n = copy_in(
        &client,
        "COPY c FROM STDIN",
        "1\thello\t2.26\n2\t\\N\t\\N\n3\ttab\\there\t7\n",
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    let n = copy_in(
        &client,
        "COPY c (a, b) FROM STDIN WITH (FORMAT csv, HEADER true)",
        "a,b\n4,\"x,y\"\n5,\n6,\"multi\nline\"\n",
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        rows(&client, "SELECT a, b, n FROM c ORDER BY a").await,
        strs(&[
            &["1", "hello", "2.3"],
            &["2", "NULL", "NULL"],
            &["3", "tab\there", "7.0"],
            &["4", "x,y", "1.3"],
            &["5", "NULL", "1.3"],
            &["6", "multi\nline", "1.3"],
        ])
    );

    // Bad data: an error naming the line, and nothing from that COPY is written.
    for (data, code) in [
        ("7\tok\t1\n8\tbad\tnotnum\n", "22P02"),
        ("7\tok\n", "22P04"),
        ("7\tok\t1\textra\n", "22P04"),
        ("\\N\tok\t1\n", "23502"),
        ("7\tok\t12345.6\n", "22003"),
    ] {
        let error = copy_in(&client, "COPY c FROM STDIN", data)
            .await
            .unwrap_err();
        let db = error.as_db_error().expect("a server error");
        assert_eq!(db.code().code(), code, "{data:?}: {db:?}");
    }
    assert_eq!(
        rows(&client, "SELECT count(*) FROM c").await,
        strs(&[&["6"]])
    );
    let Err(missing) = client.copy_in::<_, Bytes>("COPY nope FROM STDIN").await else {
        panic!("COPY into a missing table started");
    };
    assert_eq!(missing.as_db_error().unwrap().code().code(), "42P01");

    // In a transaction: visible to the block, gone after ROLLBACK.
    client.batch_execute("BEGIN").await.unwrap();
    copy_in(&client, "COPY c (a) FROM STDIN", "100\n101\n")
        .await
        .unwrap();
    assert_eq!(
        rows(&client, "SELECT count(*) FROM c").await,
        strs(&[&["8"]])
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        rows(&client, "SELECT count(*) FROM c").await,
        strs(&[&["6"]])
    );

    // A larger load, sent in pieces that split lines.
    let data: String = (0..50_000)
        .map(|i| format!("{i}\trow {i}\t{}\n", i % 100))
        .collect();
    let sink = client
        .copy_in::<_, Bytes>("COPY c FROM STDIN")
        .await
        .unwrap();
    let mut sink = Box::pin(sink);
    for piece in data.as_bytes().chunks(7_919) {
        sink.send(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    assert_eq!(sink.as_mut().finish().await.unwrap(), 50_000);
    assert_eq!(
        rows(
            &client,
            "SELECT count(*), sum(n) FROM c WHERE b LIKE 'row %'"
        )
        .await,
        strs(&[&["50000", "2475000.0"]])
    );

    // COPY (SELECT ...) TO STDOUT round-trips the text format.
    let out = client
        .copy_out("COPY (SELECT a, b FROM c WHERE a IN (2, 3) AND coalesce(b, '') NOT LIKE 'row %' ORDER BY a) TO STDOUT")
        .await
        .unwrap();
    let chunks: Vec<Bytes> = out.map(|c| c.unwrap()).collect().await;
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    assert_eq!(text, "2\t\\N\n3\ttab\\there\n");
}
