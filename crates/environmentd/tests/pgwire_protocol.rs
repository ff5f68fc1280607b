//! End-to-end tests of the pgwire front end against the whole system in one process:
//! tokio-postgres and raw sockets against `environmentd::testing::start_server`, which
//! starts environmentd on a temporary data directory and returns its pgwire address and
//! a guard that stops it when dropped.
//!
//! The front end alone (against a fake coordinator) is tested in `src/pgwire/tests.rs`;
//! these tests pin what the coordinator adds: real statements, real errors, real
//! transactions and cancellation.

use std::net::SocketAddr;
use std::time::Duration;

use environmentd::testing::start_server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_postgres::error::{ErrorPosition, SqlState};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const WAIT: Duration = Duration::from_secs(30);

/// Connects as `freshet`; the connection's messages are driven on a task.
async fn connect(addr: SocketAddr) -> Client {
    let (client, connection) = connect_raw(addr).await;
    tokio::spawn(connection);
    client
}

async fn connect_raw(
    addr: SocketAddr,
) -> (
    Client,
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
) {
    let config = format!("host={} port={} user=freshet", addr.ip(), addr.port());
    timeout(WAIT, tokio_postgres::connect(&config, NoTls))
        .await
        .expect("connected in time")
        .expect("connected")
}

/// The first column of every row a simple query returned.
async fn simple_column(client: &Client, sql: &str) -> Vec<Option<String>> {
    let messages = client.simple_query(sql).await.expect(sql);
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
            _ => None,
        })
        .collect()
}

async fn show(client: &Client, name: &str) -> String {
    let values = simple_column(client, &format!("SHOW {name}")).await;
    assert_eq!(values.len(), 1, "SHOW {name}: {values:?}");
    values[0].clone().expect("SHOW returns a value")
}

#[tokio::test]
async fn startup_reports_server_parameters() {
    let (addr, _guard) = start_server().await;
    let (client, connection) = connect_raw(addr).await;
    for (name, value) in [
        ("server_version", "15.0"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("TimeZone", "UTC"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("IntervalStyle", "postgres"),
        ("session_authorization", "freshet"),
    ] {
        assert_eq!(connection.parameter(name), Some(value), "{name}");
    }
    tokio::spawn(connection);
    assert_eq!(show(&client, "server_version").await, "15.0");
    assert_eq!(show(&client, "server_version_num").await, "150000");
    assert_eq!(show(&client, "cluster").await, "quickstart");
    assert_eq!(
        show(&client, "transaction_isolation").await,
        "strict serializable"
    );
}

#[tokio::test]
async fn version_names_freshet() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    let version = simple_column(&client, "SELECT version()").await;
    let version = version[0].clone().unwrap();
    assert!(version.contains("Freshet"), "{version}");
    let row = client.query_one("SELECT version()", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), version);
}

#[tokio::test]
async fn set_show_reset_round_trip() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    client
        .batch_execute("SET application_name = 'e2e'")
        .await
        .unwrap();
    assert_eq!(show(&client, "application_name").await, "e2e");
    client
        .batch_execute("SET extra_float_digits TO 3")
        .await
        .unwrap();
    assert_eq!(show(&client, "extra_float_digits").await, "3");
    client
        .batch_execute("SET transaction_isolation = 'serializable'")
        .await
        .unwrap();
    assert_eq!(show(&client, "transaction_isolation").await, "serializable");
    client
        .batch_execute("RESET application_name")
        .await
        .unwrap();
    assert_eq!(show(&client, "application_name").await, "");
    client.batch_execute("RESET ALL").await.unwrap();
    assert_eq!(show(&client, "extra_float_digits").await, "1");
    assert_eq!(
        show(&client, "transaction_isolation").await,
        "strict serializable"
    );
    // Names are case-insensitive.
    assert_eq!(show(&client, "datestyle").await, "ISO, MDY");
}

#[tokio::test]
async fn bad_settings_are_errors_with_sqlstates() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    let error = client.batch_execute("SET nope = 1").await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::UNDEFINED_OBJECT));
    let error = client.simple_query("SHOW nope").await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::UNDEFINED_OBJECT));
    let error = client
        .batch_execute("SET server_version = '16'")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::CANT_CHANGE_RUNTIME_PARAM));
    let error = client
        .batch_execute("SET client_encoding = 'LATIN1'")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
    let error = client
        .batch_execute("SET transaction_isolation = 'read uncommitted'")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
    // The session is still usable.
    assert_eq!(
        simple_column(&client, "SELECT 1").await,
        vec![Some("1".into())]
    );
}

#[tokio::test]
async fn syntax_error_carries_sqlstate_and_position() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    let error = client.simple_query("SELEC 1").await.unwrap_err();
    let db_error = error.as_db_error().expect("a server error");
    assert_eq!(db_error.code(), &SqlState::SYNTAX_ERROR);
    assert_eq!(db_error.position(), Some(&ErrorPosition::Original(1)));
    // The extended protocol reports it at Parse.
    let error = client.prepare("SELECT 1 FROM").await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::SYNTAX_ERROR));
}

#[tokio::test]
async fn prepared_statements_with_parameters_and_binary_results() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    let statement = client
        .prepare_typed(
            "SELECT $1::int8 * 2 AS doubled, $2::text AS word",
            &[Type::INT8, Type::TEXT],
        )
        .await
        .unwrap();
    assert_eq!(statement.params(), &[Type::INT8, Type::TEXT]);
    let columns: Vec<(&str, &Type)> = statement
        .columns()
        .iter()
        .map(|c| (c.name(), c.type_()))
        .collect();
    assert_eq!(
        columns,
        vec![("doubled", &Type::INT8), ("word", &Type::TEXT)]
    );
    let row = client
        .query_one(&statement, &[&21i64, &"hi"])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>("doubled"), 42);
    assert_eq!(row.get::<_, &str>("word"), "hi");
    let row = client
        .query_one(&statement, &[&None::<i64>, &None::<&str>])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<i64>>(0), None);
    assert_eq!(row.get::<_, Option<&str>>(1), None);

    // Parameters whose types the server infers.
    let row = client.query_one("SELECT $1 + 1", &[&41i32]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
}

#[tokio::test]
async fn table_round_trip_through_the_extended_protocol() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    client
        .batch_execute("CREATE TABLE pgwire_e2e (a int8, b text, c double precision, d boolean)")
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO pgwire_e2e VALUES ($1, $2, $3, $4)")
        .await
        .unwrap();
    for (a, b, c, d) in [(1i64, "one", 1.5f64, true), (2, "two", -0.25, false)] {
        assert_eq!(client.execute(&insert, &[&a, &b, &c, &d]).await.unwrap(), 1);
    }
    let rows = client
        .query(
            "SELECT a, b, c, d FROM pgwire_e2e WHERE a >= $1 ORDER BY a",
            &[&1i64],
        )
        .await
        .unwrap();
    let values: Vec<(i64, String, f64, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        values,
        vec![
            (1, "one".into(), 1.5, true),
            (2, "two".into(), -0.25, false)
        ]
    );
    // The text protocol prints the same rows.
    assert_eq!(
        simple_column(&client, "SELECT c FROM pgwire_e2e ORDER BY a").await,
        vec![Some("1.5".into()), Some("-0.25".into())]
    );
}

/// A minimal raw protocol client, for what drivers hide: ReadyForQuery's status byte
/// and the server's reaction to bytes that are not the protocol.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let mut raw = Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        };
        let mut body = Vec::new();
        body.extend_from_slice(&196608i32.to_be_bytes());
        body.extend_from_slice(b"user\0freshet\0\0");
        let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        packet.extend_from_slice(&body);
        raw.stream.write_all(&packet).await.unwrap();
        raw.until_ready().await;
        raw
    }

    /// Sends a simple query; returns the message types up to ReadyForQuery and its status.
    async fn query(&mut self, sql: &str) -> (String, char) {
        let mut packet = vec![b'Q'];
        packet.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
        packet.extend_from_slice(sql.as_bytes());
        packet.push(0);
        self.stream.write_all(&packet).await.unwrap();
        self.until_ready().await
    }

    async fn until_ready(&mut self) -> (String, char) {
        let mut kinds = String::new();
        loop {
            let (kind, body) = timeout(WAIT, self.message())
                .await
                .expect("a message in time")
                .expect("the connection stays open");
            kinds.push(kind as char);
            if kind == b'Z' {
                return (kinds, body[0] as char);
            }
        }
    }

    /// The next message's type and body, or `None` at EOF.
    async fn message(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 5 {
                let len = i32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                if self.buf.len() > len {
                    let message: Vec<u8> = self.buf.drain(..len + 1).collect();
                    return Some((message[0], message[5..].to_vec()));
                }
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Whether the server closes the connection in time (messages before EOF, such as
    /// a FATAL ErrorResponse, are allowed).
    async fn is_closed(&mut self) -> bool {
        timeout(WAIT, async { while self.message().await.is_some() {} })
            .await
            .is_ok()
    }
}

#[tokio::test]
async fn ready_for_query_reports_the_transaction_state() {
    let (addr, _guard) = start_server().await;
    let mut raw = Raw::connect(addr).await;
    assert_eq!(raw.query("SELECT 1").await, ("TDCZ".into(), 'I'));
    assert_eq!(raw.query("BEGIN").await, ("CZ".into(), 'T'));
    assert_eq!(raw.query("SELECT 1").await.1, 'T');
    assert_eq!(raw.query("SELECT 1/0").await, ("EZ".into(), 'E'));
    // In a failed block every statement but COMMIT/ROLLBACK fails (25P02).
    assert_eq!(raw.query("SELECT 1").await, ("EZ".into(), 'E'));
    assert_eq!(raw.query("ROLLBACK").await, ("CZ".into(), 'I'));
    assert_eq!(raw.query("").await, ("IZ".into(), 'I'));
}

#[tokio::test]
async fn bad_bytes_end_only_their_connection() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;

    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = timeout(WAIT, garbage.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "garbage startup packet: connection left open"
    );

    let mut huge = Raw::connect(addr).await;
    let mut message = vec![b'Q'];
    message.extend_from_slice(&i32::MAX.to_be_bytes());
    huge.stream.write_all(&message).await.unwrap();
    assert!(
        huge.is_closed().await,
        "huge length prefix: connection left open"
    );

    let mut unknown = Raw::connect(addr).await;
    unknown.stream.write_all(b"\x01\0\0\0\x04").await.unwrap();
    assert!(
        unknown.is_closed().await,
        "unknown message type: connection left open"
    );

    // The client connected all along still works, and new ones can connect.
    assert_eq!(
        simple_column(&client, "SELECT 1").await,
        vec![Some("1".into())]
    );
    let fresh = connect(addr).await;
    assert_eq!(
        simple_column(&fresh, "SELECT 2").await,
        vec![Some("2".into())]
    );
}

#[tokio::test]
async fn client_disconnecting_mid_query_leaves_the_server_serving() {
    let (addr, _guard) = start_server().await;
    for _ in 0..3 {
        let mut raw = Raw::connect(addr).await;
        let sql = "SELECT count(*) FROM (SELECT 1) AS a, (SELECT 2) AS b";
        let mut packet = vec![b'Q'];
        packet.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
        packet.extend_from_slice(sql.as_bytes());
        packet.push(0);
        raw.stream.write_all(&packet).await.unwrap();
        drop(raw);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = connect(addr).await;
    assert_eq!(
        simple_column(&client, "SELECT 1").await,
        vec![Some("1".into())]
    );
}

/// Cancels a statement that runs for a long time. `pg_sleep` is the long statement; if
/// Freshet lacks it, use any statement that blocks (e.g. `FETCH ALL` from a cursor over
/// `SUBSCRIBE` to an empty table, inside `BEGIN`).
#[tokio::test]
async fn cancel_request_stops_a_running_statement() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    let token = client.cancel_token();
    let running = tokio::spawn(async move {
        let result = client.simple_query("SELECT pg_sleep(20)").await;
        (client, result)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let was_running = !running.is_finished();
    token.cancel_query(NoTls).await.unwrap();
    let (client, result) = timeout(WAIT, running)
        .await
        .expect("the statement ends after the cancel")
        .unwrap();
    if was_running {
        let error = result.expect_err("a canceled statement fails");
        assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED));
    }
    // The canceled session and the server go on.
    assert_eq!(
        simple_column(&client, "SELECT 1").await,
        vec![Some("1".into())]
    );
    let fresh = connect(addr).await;
    assert_eq!(
        simple_column(&fresh, "SELECT 1").await,
        vec![Some("1".into())]
    );
}
