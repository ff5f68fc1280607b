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

// Malformed frames. pgwire runs behind a guard that validates every frame before pgwire
// decodes it: a frame pgwire's decoders would panic on (or misread) ends its connection
// with a FATAL ErrorResponse (08P01) after the answers to the frames before it, and the
// server goes on serving everyone else.

/// A typed message: type byte, length, body.
fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = vec![kind];
    frame.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    frame.extend_from_slice(body);
    frame
}

/// The fields of an ErrorResponse body, by field type.
fn error_fields(body: &[u8]) -> Vec<(char, String)> {
    let mut fields = Vec::new();
    let mut rest = body;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            break;
        }
        let end = tail.iter().position(|&b| b == 0).expect("terminated field");
        fields.push((
            code as char,
            String::from_utf8_lossy(&tail[..end]).into_owned(),
        ));
        rest = &tail[end + 1..];
    }
    fields
}

fn field(fields: &[(char, String)], code: char) -> Option<&str> {
    fields
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, value)| value.as_str())
}

impl Raw {
    /// Every message up to EOF, which must come in time.
    async fn until_closed(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut messages = Vec::new();
        timeout(WAIT, async {
            while let Some(message) = self.message().await {
                messages.push(message);
            }
        })
        .await
        .expect("the server closes the connection in time");
        messages
    }
}

/// Asserts that `messages` end with a FATAL 08P01 ErrorResponse whose text contains
/// `text`; returns the message types before it.
fn assert_fatal_08p01(messages: &[(u8, Vec<u8>)], text: &str) -> String {
    let ((kind, body), before) = messages.split_last().expect("an ErrorResponse");
    assert_eq!(*kind, b'E', "last message: {messages:?}");
    let fields = error_fields(body);
    assert_eq!(field(&fields, 'S'), Some("FATAL"), "{fields:?}");
    assert_eq!(field(&fields, 'V'), Some("FATAL"), "{fields:?}");
    assert_eq!(field(&fields, 'C'), Some("08P01"), "{fields:?}");
    let message = field(&fields, 'M').expect("a message");
    assert!(message.contains(text), "{message:?} lacks {text:?}");
    before.iter().map(|(kind, _)| *kind as char).collect()
}

/// Sends `bytes` on a fresh session while `client` runs queries; the bad session gets a
/// FATAL 08P01 containing `text` and EOF, and `client` is unaffected.
async fn assert_bad_frame_is_fatal(addr: SocketAddr, client: &Client, bytes: &[u8], text: &str) {
    let mut raw = Raw::connect(addr).await;
    let bad = async {
        raw.stream.write_all(bytes).await.unwrap();
        let messages = raw.until_closed().await;
        assert_fatal_08p01(&messages, text);
    };
    let good = async {
        for i in 0..5 {
            let sql = format!("SELECT {i}");
            assert_eq!(simple_column(client, &sql).await, vec![Some(i.to_string())]);
        }
    };
    tokio::join!(bad, good);
}

#[tokio::test]
async fn truncated_describe_is_fatal_for_its_connection_only() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    // A Describe whose length is 4: no target type, no name (pgwire would panic).
    assert_bad_frame_is_fatal(
        addr,
        &client,
        b"D\0\0\0\x04",
        "invalid Describe message: insufficient data left in message",
    )
    .await;
    // Truncated Close and Execute bodies, a Parse missing its parameter type count.
    assert_bad_frame_is_fatal(addr, &client, &frame(b'C', b"S"), "invalid Close message").await;
    assert_bad_frame_is_fatal(
        addr,
        &client,
        &frame(b'E', b"\0\0"),
        "invalid Execute message",
    )
    .await;
    assert_bad_frame_is_fatal(
        addr,
        &client,
        &frame(b'P', b"\0SELECT 1\0"),
        "invalid Parse message",
    )
    .await;
    let fresh = connect(addr).await;
    assert_eq!(
        simple_column(&fresh, "SELECT 1").await,
        vec![Some("1".into())]
    );
}

#[tokio::test]
async fn bind_with_more_parameters_than_its_body_is_fatal() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    // Unnamed portal and statement, no formats, 3 parameters announced, 1 present.
    let mut body = b"\0\0".to_vec();
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    body.push(b'7');
    let mut bytes = frame(b'P', b"\0SELECT 1\0\0\0");
    bytes.extend_from_slice(&frame(b'B', &body));
    assert_bad_frame_is_fatal(
        addr,
        &client,
        &bytes,
        "invalid Bind message: insufficient data left in message",
    )
    .await;
    // A parameter length past the end of the message.
    let mut body = b"\0\0".to_vec();
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&1i16.to_be_bytes());
    body.extend_from_slice(&1_000_000i32.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    assert_bad_frame_is_fatal(addr, &client, &frame(b'B', &body), "invalid Bind message").await;
}

#[tokio::test]
async fn huge_message_length_is_fatal_message_too_large() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    let mut bytes = vec![b'Q'];
    bytes.extend_from_slice(&i32::MAX.to_be_bytes());
    assert_bad_frame_is_fatal(addr, &client, &bytes, "message too large").await;
    // Just over the 64 MiB limit, told before the body is sent.
    let mut bytes = vec![b'Q'];
    bytes.extend_from_slice(&(64i32 * 1024 * 1024 + 1).to_be_bytes());
    assert_bad_frame_is_fatal(addr, &client, &bytes, "message too large").await;
    // A length below 4, and an unknown message type.
    assert_bad_frame_is_fatal(addr, &client, b"S\0\0\0\x02", "invalid Sync message length").await;
    assert_bad_frame_is_fatal(
        addr,
        &client,
        b"\x01\0\0\0\x04",
        "invalid frontend message type",
    )
    .await;
}

#[tokio::test]
async fn oversized_startup_packet_is_fatal() {
    let (addr, _guard) = start_server().await;
    let client = connect(addr).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut packet = 20_000i32.to_be_bytes().to_vec();
    packet.extend_from_slice(&196_608i32.to_be_bytes());
    packet.extend_from_slice(b"user\0freshet\0application_name\0");
    packet.resize(19_998, b'a');
    packet.extend_from_slice(b"\0\0");
    assert_eq!(packet.len(), 20_000);
    // The server may stop reading early; the answer is what matters.
    let _ = stream.write_all(&packet).await;
    let mut raw = Raw {
        stream,
        buf: Vec::new(),
    };
    let messages = raw.until_closed().await;
    assert_eq!(
        assert_fatal_08p01(&messages, "startup packet too large"),
        ""
    );
    assert_eq!(
        simple_column(&client, "SELECT 1").await,
        vec![Some("1".into())]
    );
}

#[tokio::test]
async fn answers_before_a_bad_frame_arrive_before_the_fatal_error() {
    let (addr, _guard) = start_server().await;
    let mut raw = Raw::connect(addr).await;
    let mut bytes = frame(b'Q', b"SELECT 1\0");
    bytes.extend_from_slice(b"D\0\0\0\x04");
    bytes.extend_from_slice(&frame(b'Q', b"SELECT 2\0"));
    raw.stream.write_all(&bytes).await.unwrap();
    let messages = raw.until_closed().await;
    assert_eq!(assert_fatal_08p01(&messages, "invalid Describe"), "TDCZ");
}

#[tokio::test]
async fn ssl_request_is_refused_and_the_session_starts_in_plain_text() {
    let (addr, _guard) = start_server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .unwrap();
    let mut answer = [0u8; 1];
    timeout(WAIT, stream.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&answer, b"N");
    let mut body = 196_608i32.to_be_bytes().to_vec();
    body.extend_from_slice(b"user\0freshet\0\0");
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    stream.write_all(&packet).await.unwrap();
    let mut raw = Raw {
        stream,
        buf: Vec::new(),
    };
    raw.until_ready().await;
    assert_eq!(raw.query("SELECT 1").await, ("TDCZ".into(), 'I'));
}

/// pgwire allocates room for an Execute's `max_rows` rows up front: -1 (no limit, in
/// PostgreSQL) panicked it and `i32::MAX` aborted the server. Both now mean no limit.
#[tokio::test]
async fn execute_with_extreme_max_rows_returns_all_rows() {
    let (addr, _guard) = start_server().await;
    for max_rows in [-1, i32::MAX, 0] {
        let mut raw = Raw::connect(addr).await;
        let mut bytes = frame(b'P', b"\0SELECT 1\0\0\0");
        bytes.extend_from_slice(&frame(b'B', b"\0\0\0\0\0\0\0\0"));
        let mut execute = b"\0".to_vec();
        execute.extend_from_slice(&max_rows.to_be_bytes());
        bytes.extend_from_slice(&frame(b'E', &execute));
        bytes.extend_from_slice(&frame(b'S', b""));
        raw.stream.write_all(&bytes).await.unwrap();
        assert_eq!(raw.until_ready().await, ("12DCZ".into(), 'I'), "{max_rows}");
    }
    let client = connect(addr).await;
    assert_eq!(
        simple_column(&client, "SELECT 1").await,
        vec![Some("1".into())]
    );
}
