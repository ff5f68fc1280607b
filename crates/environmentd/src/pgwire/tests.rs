//! Protocol tests: the front end served over real sockets against a [`Fake`] backend,
//! driven by scripted raw messages (what goes in, what comes out, in order) and by
//! tokio-postgres (what a real driver sees).
//!
//! The fake understands a handful of statements (see [`Fake::run`]); it stands in for
//! the coordinator so that these tests pin the front end's behaviour alone.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::{Buf, BufMut, BytesMut};
use pgwire::messages::extendedquery::{Describe, Execute, Parse, Sync as PgSync};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::Startup;
use pgwire::messages::{DecodeContext, ProtocolVersion};
use repr::strconv::parse_datum;
use repr::{Datum, RowPacker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_postgres::error::{ErrorPosition, SqlState};
use tokio_postgres::types::{FromSql, Type as PgType};
use tokio_postgres::{NoTls, SimpleQueryMessage};

use super::*;

/// A stand-in for the coordinator.
#[derive(Clone, Default)]
struct Fake {
    /// The connection and secret of the statement waiting in `sleep`.
    sleeping: Arc<std::sync::Mutex<Option<(u32, i32)>>>,
    /// Wakes `sleep` when a cancel with the right secret arrives.
    cancelled: Arc<tokio::sync::Notify>,
}

fn err(code: &str, message: &str, position: Option<usize>) -> AdapterError {
    AdapterError {
        code: code.into(),
        message: message.into(),
        detail: None,
        hint: None,
        position,
    }
}

fn rows(columns: &[(&str, ScalarType)], rows: Vec<Row>) -> ExecuteResponse {
    let mut desc = RelationDesc::empty();
    for (name, typ) in columns {
        desc = desc.with_column(*name, typ.nullable(true));
    }
    ExecuteResponse::Rows {
        desc,
        rows,
        tag: "SELECT".into(),
    }
}

fn command(tag: &str) -> Result<ExecuteResponse, AdapterError> {
    Ok(ExecuteResponse::Command { tag: tag.into() })
}

/// One row of datums parsed from text, one per type.
fn parse_row(values: &[(&str, ScalarType)]) -> Row {
    let mut packer = RowPacker::new();
    for (text, typ) in values {
        packer.extend_from_row(&parse_datum(text, *typ).expect("test values parse"));
    }
    packer.finish()
}

/// The `types` statement: one column of every type.
const TYPES: &[(&str, ScalarType, &str)] = &[
    ("bool", ScalarType::Bool, "t"),
    ("int2", ScalarType::Int16, "-2"),
    ("int4", ScalarType::Int32, "4"),
    ("int8", ScalarType::Int64, "8"),
    ("float4", ScalarType::Float32, "1.5"),
    ("float8", ScalarType::Float64, "2.25"),
    ("numeric", ScalarType::Numeric, "12345.678"),
    ("text", ScalarType::String, "héllo"),
    ("bytea", ScalarType::Bytes, "\\x00ff"),
    ("date", ScalarType::Date, "2000-01-02"),
    ("time", ScalarType::Time, "00:00:01"),
    ("timestamp", ScalarType::Timestamp, "2023-11-14 22:13:20.5"),
    (
        "timestamptz",
        ScalarType::TimestampTz,
        "2023-11-14 22:13:20.5+00",
    ),
    ("interval", ScalarType::Interval, "1 mon 2 days 00:00:03"),
];

/// The parameter types of `echo` unless the client declared others.
const ECHO_TYPES: [ScalarType; 2] = [ScalarType::Int64, ScalarType::String];

impl Fake {
    /// Statements: `select 1`, `selec 1` (syntax error), `set x = v`, `show x`, `reset x`,
    /// `begin`/`commit`/`rollback`, `fail` (division by zero), `echo` ($1, $2 back as a
    /// row), `generate n`, `types`, `insert`, `sleep` (until canceled), `sleep_ms n`.
    async fn run(
        &self,
        session: &mut Session,
        sql: &str,
        params: &[Option<String>],
    ) -> Result<ExecuteResponse, AdapterError> {
        let sql = sql.trim();
        let lower = sql.to_lowercase();
        let words: Vec<&str> = sql.split_whitespace().collect();
        if sql.is_empty() {
            return Ok(ExecuteResponse::EmptyQuery);
        }
        if session.transaction == TransactionStatus::Failed
            && !matches!(lower.as_str(), "commit" | "rollback")
        {
            return Err(err(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
                None,
            ));
        }
        match words.first().map(|w| w.to_lowercase()).as_deref() {
            Some("set") => {
                let rest = sql[3..].trim();
                let (name, value) = rest
                    .split_once(" = ")
                    .or_else(|| rest.split_once(" to "))
                    .ok_or_else(|| err("42601", "bad set", None))?;
                session.set(name.trim(), value.trim().trim_matches('\''))?;
                return command("SET");
            }
            Some("show") if words.len() == 2 => {
                let value = session.get(words[1]).ok_or_else(|| {
                    let message = format!("unrecognized configuration parameter \"{}\"", words[1]);
                    err("42704", &message, None)
                })?;
                let row = Row::pack_slice(&[Datum::String(value)]);
                let mut response = rows(&[(words[1], ScalarType::String)], vec![row]);
                if let ExecuteResponse::Rows { tag, .. } = &mut response {
                    *tag = "SHOW".into();
                }
                return Ok(response);
            }
            Some("reset") if words.len() == 2 => {
                session.reset(words[1])?;
                return command("RESET");
            }
            Some("generate") => {
                let n: i64 = words.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                let rows_out = (0..n)
                    .map(|i| Row::pack_slice(&[Datum::Int64(i)]))
                    .collect();
                return Ok(rows(&[("n", ScalarType::Int64)], rows_out));
            }
            Some("sleep_ms") => {
                let ms = words.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                return command("SLEEP");
            }
            _ => {}
        }
        match lower.as_str() {
            "select 1" => {
                let row = Row::pack_slice(&[Datum::Int32(1)]);
                Ok(rows(&[("?column?", ScalarType::Int32)], vec![row]))
            }
            "begin" => {
                session.transaction = TransactionStatus::InBlock;
                command("BEGIN")
            }
            "commit" | "rollback" => {
                let failed = session.transaction == TransactionStatus::Failed;
                session.transaction = TransactionStatus::Idle;
                command(if failed || lower == "rollback" {
                    "ROLLBACK"
                } else {
                    "COMMIT"
                })
            }
            "fail" => {
                if session.transaction == TransactionStatus::InBlock {
                    session.transaction = TransactionStatus::Failed;
                }
                Err(err("22012", "division by zero", None))
            }
            "insert" => command("INSERT 0 3"),
            "echo" => {
                let mut packer = RowPacker::new();
                for (param, typ) in params.iter().zip(ECHO_TYPES) {
                    match param {
                        None => packer.push(Datum::Null),
                        Some(text) => packer.extend_from_row(
                            &parse_datum(text, typ)
                                .map_err(|e| err(e.sqlstate(), &e.to_string(), None))?,
                        ),
                    }
                }
                let columns = [("a", ECHO_TYPES[0]), ("b", ECHO_TYPES[1])];
                Ok(rows(&columns, vec![packer.finish()]))
            }
            "types" => {
                let columns: Vec<_> = TYPES.iter().map(|(n, t, _)| (*n, *t)).collect();
                let values: Vec<_> = TYPES.iter().map(|(_, t, v)| (*v, *t)).collect();
                Ok(rows(&columns, vec![parse_row(&values)]))
            }
            "sleep" => {
                *self.sleeping.lock().unwrap() = Some((session.conn_id, session.secret_key));
                self.cancelled.notified().await;
                *self.sleeping.lock().unwrap() = None;
                Err(err(
                    "57014",
                    "canceling statement due to user request",
                    None,
                ))
            }
            _ => {
                let first = words.first().copied().unwrap_or_default();
                let message = format!("syntax error at or near \"{first}\"");
                Err(err("42601", &message, Some(1)))
            }
        }
    }
}

#[async_trait]
impl Backend for Fake {
    async fn execute_simple(
        &self,
        session: &mut Session,
        sql: &str,
    ) -> (Vec<ExecuteResponse>, Option<AdapterError>) {
        let statements: Vec<&str> = sql.split(';').filter(|s| !s.trim().is_empty()).collect();
        if statements.is_empty() {
            return (vec![ExecuteResponse::EmptyQuery], None);
        }
        let mut responses = Vec::new();
        for statement in statements {
            match self.run(session, statement, &[]).await {
                Ok(response) => responses.push(response),
                Err(e) => return (responses, Some(e)),
            }
        }
        (responses, None)
    }

    async fn describe(
        &self,
        _session: &mut Session,
        sql: &str,
        param_types: &[Option<ScalarType>],
    ) -> Result<StatementDesc, AdapterError> {
        let lower = sql.trim().to_lowercase();
        let first = lower.split_whitespace().next().unwrap_or_default();
        let column = |name: &str, typ: ScalarType| {
            RelationDesc::empty().with_column(name, typ.nullable(true))
        };
        let (params, result) = match first {
            "echo" => {
                let params = (0..2)
                    .map(|i| {
                        param_types
                            .get(i)
                            .copied()
                            .flatten()
                            .unwrap_or(ECHO_TYPES[i])
                    })
                    .collect();
                let result =
                    column("a", ECHO_TYPES[0]).with_column("b", ECHO_TYPES[1].nullable(true));
                (params, Some(result))
            }
            "select" if lower == "select 1" => {
                (vec![], Some(column("?column?", ScalarType::Int32)))
            }
            "generate" => (vec![], Some(column("n", ScalarType::Int64))),
            "types" => {
                let mut desc = RelationDesc::empty();
                for (name, typ, _) in TYPES {
                    desc = desc.with_column(*name, typ.nullable(true));
                }
                (vec![], Some(desc))
            }
            "" | "set" | "reset" | "begin" | "commit" | "rollback" | "insert" | "fail"
            | "sleep" | "sleep_ms" => (vec![], None),
            _ => {
                let message = format!("syntax error at or near \"{first}\"");
                return Err(err("42601", &message, Some(1)));
            }
        };
        Ok(StatementDesc {
            param_types: params,
            result,
        })
    }

    async fn execute_extended(
        &self,
        session: &mut Session,
        sql: &str,
        params: Vec<Option<String>>,
        _param_types: Vec<ScalarType>,
    ) -> Result<ExecuteResponse, AdapterError> {
        self.run(session, sql, &params).await
    }

    fn cancel(&self, conn_id: u32, secret_key: i32) {
        if *self.sleeping.lock().unwrap() == Some((conn_id, secret_key)) {
            self.cancelled.notify_one();
        }
    }
}

/// Serves the protocol against a fresh fake on a free port.
async fn start() -> (SocketAddr, Fake) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = Fake::default();
    tokio::spawn(serve_backend(listener, fake.clone()));
    (addr, fake)
}

const WAIT: Duration = Duration::from_secs(10);

/// A client that speaks raw protocol messages and prints what comes back.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    /// Connects and runs startup; returns the client and the startup responses.
    async fn connect(addr: SocketAddr, params: &[(&str, &str)]) -> (Raw, Vec<String>) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut raw = Raw {
            stream,
            buf: BytesMut::new(),
        };
        let mut startup = Startup::new();
        for (name, value) in params {
            startup
                .parameters
                .insert(name.to_string(), value.to_string());
        }
        raw.send(vec![PgWireFrontendMessage::Startup(startup)])
            .await;
        let responses = raw.until_ready().await;
        (raw, responses)
    }

    async fn send(&mut self, messages: Vec<PgWireFrontendMessage>) {
        let mut buf = BytesMut::new();
        for message in messages {
            message.encode(&mut buf).unwrap();
        }
        self.stream.write_all(&buf).await.unwrap();
    }

    async fn query(&mut self, sql: &str) -> Vec<String> {
        let query = PgWireFrontendMessage::Query(Query::new(sql.into()));
        self.send(vec![query]).await;
        self.until_ready().await
    }

    /// The next message, or `None` once the server closed the connection.
    async fn recv(&mut self) -> Option<PgWireBackendMessage> {
        let ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        loop {
            if let Some(message) = PgWireBackendMessage::decode(&mut self.buf, &ctx).unwrap() {
                return Some(message);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Every message up to and including ReadyForQuery, summarised.
    async fn until_ready(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let message = timeout(WAIT, self.recv())
                .await
                .expect("a response in time");
            let message = message.unwrap_or_else(|| panic!("connection closed after {out:?}"));
            let ready = matches!(message, PgWireBackendMessage::ReadyForQuery(_));
            out.push(summary(&message));
            if ready {
                return out;
            }
        }
    }

    /// Whether the server closes the connection (reads reach EOF) in time.
    async fn is_closed(&mut self) -> bool {
        timeout(WAIT, async { while self.recv().await.is_some() {} })
            .await
            .is_ok()
    }
}

fn fields_text(fields: &[(u8, String)]) -> String {
    fields
        .iter()
        .filter(|(key, _)| matches!(key, b'S' | b'C' | b'M' | b'P' | b'D' | b'H'))
        .map(|(key, value)| format!("{}={value}", *key as char))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A message as one line: the tests compare these.
fn summary(message: &PgWireBackendMessage) -> String {
    use PgWireBackendMessage as M;
    match message {
        M::Authentication(auth) => format!("Authentication {auth:?}"),
        M::ParameterStatus(p) => format!("ParameterStatus {}={}", p.name, p.value),
        M::BackendKeyData(_) => "BackendKeyData".into(),
        M::ReadyForQuery(r) => format!("ReadyForQuery {}", r.status as u8 as char),
        M::RowDescription(r) => {
            let fields: Vec<String> = r
                .fields
                .iter()
                .map(|f| format!("{}:{}:{}:{}", f.name, f.type_id, f.type_size, f.format_code))
                .collect();
            format!("RowDescription {}", fields.join(" "))
        }
        M::DataRow(row) => {
            let mut data = &row.data[..];
            let mut values = Vec::new();
            for _ in 0..row.field_count {
                let len = data.get_i32();
                if len < 0 {
                    values.push("NULL".to_string());
                    continue;
                }
                let (value, rest) = data.split_at(len as usize);
                data = rest;
                values.push(match std::str::from_utf8(value) {
                    Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_string(),
                    _ => format!(
                        "0x{}",
                        value.iter().map(|b| format!("{b:02x}")).collect::<String>()
                    ),
                });
            }
            format!("DataRow {}", values.join("|"))
        }
        M::CommandComplete(c) => format!("CommandComplete {}", c.tag),
        M::ErrorResponse(e) => format!("ErrorResponse {}", fields_text(&e.fields)),
        M::NoticeResponse(n) => format!("NoticeResponse {}", fields_text(&n.fields)),
        M::ParameterDescription(p) => format!("ParameterDescription {:?}", p.types),
        M::ParseComplete(_) => "ParseComplete".into(),
        M::BindComplete(_) => "BindComplete".into(),
        M::CloseComplete(_) => "CloseComplete".into(),
        M::NoData(_) => "NoData".into(),
        M::EmptyQueryResponse(_) => "EmptyQueryResponse".into(),
        M::PortalSuspended(_) => "PortalSuspended".into(),
        other => format!("{other:?}"),
    }
}

fn parse(name: Option<&str>, sql: &str, types: Vec<u32>) -> PgWireFrontendMessage {
    PgWireFrontendMessage::Parse(Parse::new(name.map(Into::into), sql.into(), types))
}

/// A parameter value for [`bind`].
fn p(value: &[u8]) -> Option<&[u8]> {
    Some(value)
}

fn bind(
    statement: Option<&str>,
    formats: Vec<i16>,
    params: &[Option<&[u8]>],
    result_formats: Vec<i16>,
) -> PgWireFrontendMessage {
    let params = params
        .iter()
        .map(|p| p.map(Bytes::copy_from_slice))
        .collect();
    PgWireFrontendMessage::Bind(Bind::new(
        None,
        statement.map(Into::into),
        formats,
        params,
        result_formats,
    ))
}

fn describe(target: u8, name: Option<&str>) -> PgWireFrontendMessage {
    PgWireFrontendMessage::Describe(Describe::new(target, name.map(Into::into)))
}

fn execute(max_rows: i32) -> PgWireFrontendMessage {
    PgWireFrontendMessage::Execute(Execute::new(None, max_rows))
}

fn sync() -> PgWireFrontendMessage {
    PgWireFrontendMessage::Sync(PgSync::new())
}

#[tokio::test]
async fn startup_sends_parameters_key_and_warnings() {
    let (addr, _) = start().await;
    let params = [
        ("user", "alice"),
        ("application_name", "scripted"),
        ("TimeZone", "Europe/Berlin"),
        ("options", "-c cluster=c2"),
    ];
    let (mut c, startup) = Raw::connect(addr, &params).await;
    assert_eq!(
        startup,
        vec![
            "Authentication Ok",
            "ParameterStatus application_name=scripted",
            "ParameterStatus client_encoding=UTF8",
            "ParameterStatus DateStyle=ISO, MDY",
            "ParameterStatus integer_datetimes=on",
            "ParameterStatus IntervalStyle=postgres",
            "ParameterStatus is_superuser=off",
            "ParameterStatus server_encoding=UTF8",
            "ParameterStatus server_version=15.0",
            "ParameterStatus session_authorization=alice",
            "ParameterStatus standard_conforming_strings=on",
            "ParameterStatus TimeZone=UTC",
            "BackendKeyData",
            "NoticeResponse S=WARNING C=22023 M=invalid value for parameter \"TimeZone\": \
             \"Europe/Berlin\" H=Freshet only supports the UTC time zone.",
            "ReadyForQuery I",
        ]
    );
    assert_eq!(
        c.query("SHOW cluster").await,
        vec![
            "RowDescription cluster:25:-1:0",
            "DataRow c2",
            "CommandComplete SHOW 1",
            "ReadyForQuery I",
        ]
    );
}

#[tokio::test]
async fn startup_defaults_user_and_database() {
    let (addr, _) = start().await;
    let (mut c, startup) = Raw::connect(addr, &[]).await;
    assert!(startup.contains(&"ParameterStatus session_authorization=freshet".to_string()));
    assert_eq!(
        c.query("SHOW session_authorization").await[1],
        "DataRow freshet"
    );
}

#[tokio::test]
async fn simple_query_sends_one_response_per_statement() {
    let (addr, _) = start().await;
    let (mut c, _) = Raw::connect(addr, &[]).await;
    assert_eq!(
        c.query("SELECT 1; SET application_name = 'x'; SHOW application_name; insert")
            .await,
        vec![
            "RowDescription ?column?:23:4:0",
            "DataRow 1",
            "CommandComplete SELECT 1",
            "CommandComplete SET",
            "RowDescription application_name:25:-1:0",
            "DataRow x",
            "CommandComplete SHOW 1",
            "CommandComplete INSERT 0 3",
            "ParameterStatus application_name=x",
            "ReadyForQuery I",
        ]
    );
    // Setting a variable to the value it has reports nothing.
    assert_eq!(
        c.query("SET application_name = 'x'").await,
        vec!["CommandComplete SET", "ReadyForQuery I"]
    );
    assert_eq!(
        c.query("SET nope = 1").await,
        vec![
            "ErrorResponse S=ERROR C=42704 M=unrecognized configuration parameter \"nope\"",
            "ReadyForQuery I",
        ]
    );
}

#[tokio::test]
async fn simple_query_errors_and_empty_queries() {
    let (addr, _) = start().await;
    let (mut c, _) = Raw::connect(addr, &[]).await;
    assert_eq!(
        c.query("SELEC 1").await,
        vec![
            "ErrorResponse S=ERROR C=42601 M=syntax error at or near \"SELEC\" P=1",
            "ReadyForQuery I",
        ]
    );
    assert_eq!(
        c.query("").await,
        vec!["EmptyQueryResponse", "ReadyForQuery I"]
    );
    assert_eq!(
        c.query("SELECT 1; fail; SELECT 1").await,
        vec![
            "RowDescription ?column?:23:4:0",
            "DataRow 1",
            "CommandComplete SELECT 1",
            "ErrorResponse S=ERROR C=22012 M=division by zero",
            "ReadyForQuery I",
        ]
    );
}

#[tokio::test]
async fn ready_for_query_follows_the_session_transaction() {
    let (addr, _) = start().await;
    let (mut c, _) = Raw::connect(addr, &[]).await;
    assert_eq!(
        c.query("BEGIN").await,
        vec!["CommandComplete BEGIN", "ReadyForQuery T"]
    );
    assert_eq!(c.query("SELECT 1").await.last().unwrap(), "ReadyForQuery T");
    assert_eq!(
        c.query("fail").await,
        vec![
            "ErrorResponse S=ERROR C=22012 M=division by zero",
            "ReadyForQuery E"
        ]
    );
    assert_eq!(c.query("SELECT 1").await.last().unwrap(), "ReadyForQuery E");
    assert_eq!(
        c.query("ROLLBACK").await,
        vec!["CommandComplete ROLLBACK", "ReadyForQuery I"]
    );
    // Extended: BEGIN, then an error of the front end's own (a Bind with the wrong
    // number of parameters) fails the block at Sync.
    assert_eq!(c.query("BEGIN").await.last().unwrap(), "ReadyForQuery T");
    c.send(vec![
        parse(None, "echo", vec![]),
        bind(None, vec![], &[p(b"1")], vec![]),
        execute(0),
        sync(),
    ])
    .await;
    assert_eq!(
        c.until_ready().await,
        vec![
            "ParseComplete",
            "ErrorResponse S=ERROR C=08P01 M=bind message supplies 1 parameters, but \
             prepared statement \"\" requires 2",
            "ReadyForQuery E",
        ]
    );
    assert_eq!(
        c.query("COMMIT").await,
        vec!["CommandComplete ROLLBACK", "ReadyForQuery I"]
    );
}

#[tokio::test]
async fn extended_protocol_round_trip() {
    let (addr, _) = start().await;
    let (mut c, _) = Raw::connect(addr, &[]).await;
    c.send(vec![
        parse(Some("s1"), "echo", vec![20]),
        describe(b'S', Some("s1")),
        sync(),
    ])
    .await;
    assert_eq!(
        c.until_ready().await,
        vec![
            "ParseComplete",
            "ParameterDescription [20, 25]",
            "RowDescription a:20:8:0 b:25:-1:0",
            "ReadyForQuery I",
        ]
    );
    let forty_two = 42i64.to_be_bytes();
    c.send(vec![
        bind(
            Some("s1"),
            vec![1, 0],
            &[p(&forty_two), p(b"hi")],
            vec![1, 0],
        ),
        describe(b'P', None),
        execute(0),
        bind(Some("s1"), vec![0], &[p(b"-7"), None], vec![]),
        execute(0),
        sync(),
    ])
    .await;
    assert_eq!(
        c.until_ready().await,
        vec![
            "BindComplete",
            "RowDescription a:20:8:1 b:25:-1:0",
            "DataRow 0x000000000000002a|hi",
            "CommandComplete SELECT 1",
            "BindComplete",
            "DataRow -7|NULL",
            "CommandComplete SELECT 1",
            "ReadyForQuery I",
        ]
    );
}

#[tokio::test]
async fn extended_protocol_statements_without_rows() {
    let (addr, _) = start().await;
    let (mut c, _) = Raw::connect(addr, &[]).await;
    c.send(vec![
        parse(None, "SET application_name = 'ext'", vec![]),
        describe(b'S', None),
        bind(None, vec![], &[], vec![]),
        describe(b'P', None),
        execute(0),
        sync(),
    ])
    .await;
    assert_eq!(
        c.until_ready().await,
        vec![
            "ParseComplete",
            "ParameterDescription []",
            "NoData",
            "BindComplete",
            "NoData",
            "CommandComplete SET",
            "ParameterStatus application_name=ext",
            "ReadyForQuery I",
        ]
    );
    c.send(vec![
        parse(None, "", vec![]),
        bind(None, vec![], &[], vec![]),
        describe(b'P', None),
        execute(0),
        sync(),
    ])
    .await;
    assert_eq!(
        c.until_ready().await,
        vec![
            "ParseComplete",
            "BindComplete",
            "NoData",
            "EmptyQueryResponse",
            "ReadyForQuery I",
        ]
    );
}

#[tokio::test]
async fn execute_with_max_rows_suspends_the_portal() {
    let (addr, _) = start().await;
    let (mut c, _) = Raw::connect(addr, &[]).await;
    c.send(vec![
        parse(None, "generate 5", vec![]),
        bind(None, vec![], &[], vec![]),
        execute(2),
        execute(2),
        execute(2),
        sync(),
    ])
    .await;
    assert_eq!(
        c.until_ready().await,
        vec![
            "ParseComplete",
            "BindComplete",
            "DataRow 0",
            "DataRow 1",
            "PortalSuspended",
            "DataRow 2",
            "DataRow 3",
            "PortalSuspended",
            "DataRow 4",
            "CommandComplete SELECT 1",
            "ReadyForQuery I",
        ]
    );
}

#[tokio::test]
async fn extended_protocol_errors_skip_to_sync() {
    let (addr, _) = start().await;
    let (mut c, _) = Raw::connect(addr, &[]).await;
    let four_bytes = 1i32.to_be_bytes();
    let cases: Vec<(PgWireFrontendMessage, &str)> = vec![
        (
            bind(None, vec![], &[p(b"1"), p(b"x")], vec![1, 0, 1]),
            "C=08P01 M=bind message has 3 result formats but query has 2 columns",
        ),
        (
            bind(None, vec![7], &[p(b"1"), p(b"x")], vec![]),
            "C=22023 M=unsupported format code: 7",
        ),
        (
            bind(None, vec![1, 0, 0], &[p(b"1"), p(b"x")], vec![]),
            "C=08P01 M=bind message has 3 parameter formats but 2 parameters",
        ),
        (
            bind(None, vec![1, 0], &[p(&four_bytes), p(b"x")], vec![]),
            "C=22P03 M=incorrect binary data format in bind parameter 1",
        ),
        (
            bind(Some("nope"), vec![], &[], vec![]),
            "C=26000 M=Statement not found for name: nope",
        ),
    ];
    for (message, error) in cases {
        c.send(vec![
            parse(None, "echo", vec![]),
            message,
            execute(0),
            sync(),
        ])
        .await;
        let responses = c.until_ready().await;
        assert_eq!(responses.len(), 3, "{responses:?}");
        assert_eq!(responses[0], "ParseComplete");
        assert!(
            responses[1].starts_with("ErrorResponse S=ERROR "),
            "{responses:?}"
        );
        assert!(responses[1].contains(error), "{responses:?} lacks {error}");
        assert_eq!(responses[2], "ReadyForQuery I");
    }
    // A statement that does not describe fails at Parse, with its position.
    c.send(vec![
        parse(None, "SELEC 1", vec![]),
        bind(None, vec![], &[], vec![]),
        sync(),
    ])
    .await;
    assert_eq!(
        c.until_ready().await,
        vec![
            "ErrorResponse S=ERROR C=42601 M=syntax error at or near \"selec\" P=1",
            "ReadyForQuery I",
        ]
    );
    // The connection is still good.
    assert_eq!(c.query("SELECT 1").await.len(), 4);
}

#[tokio::test]
async fn bad_bytes_close_only_their_connection() {
    let (addr, _) = start().await;
    let (mut good, _) = Raw::connect(addr, &[]).await;

    let mut garbage = Raw {
        stream: TcpStream::connect(addr).await.unwrap(),
        buf: BytesMut::new(),
    };
    garbage
        .stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(garbage.is_closed().await, "garbage startup");

    let (mut huge, _) = Raw::connect(addr, &[]).await;
    let mut message = vec![b'Q'];
    message.extend_from_slice(&i32::MAX.to_be_bytes());
    huge.stream.write_all(&message).await.unwrap();
    assert!(huge.is_closed().await, "huge length prefix");

    let (mut unknown, _) = Raw::connect(addr, &[]).await;
    unknown.stream.write_all(b"\x01\0\0\0\x04").await.unwrap();
    assert!(unknown.is_closed().await, "unknown message type");

    let (mut negative, _) = Raw::connect(addr, &[]).await;
    negative
        .stream
        .write_all(b"Q\xff\xff\xff\xfe")
        .await
        .unwrap();
    assert!(negative.is_closed().await, "negative length");

    let (mut truncated, _) = Raw::connect(addr, &[]).await;
    truncated.stream.write_all(b"D\0\0\0\x04").await.unwrap();
    assert!(truncated.is_closed().await, "truncated describe");

    assert_eq!(
        good.query("SELECT 1").await.last().unwrap(),
        "ReadyForQuery I"
    );
    let (mut fresh, _) = Raw::connect(addr, &[]).await;
    assert_eq!(
        fresh.query("SELECT 1").await.last().unwrap(),
        "ReadyForQuery I"
    );
}

#[tokio::test]
async fn client_disconnecting_mid_query_leaves_the_server_serving() {
    let (addr, _) = start().await;
    let (mut c, _) = Raw::connect(addr, &[]).await;
    let mut buf = BytesMut::new();
    PgWireFrontendMessage::Query(Query::new("sleep_ms 200".into()))
        .encode(&mut buf)
        .unwrap();
    c.stream.write_all(&buf).await.unwrap();
    drop(c);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (mut fresh, _) = Raw::connect(addr, &[]).await;
    assert_eq!(
        fresh.query("SELECT 1").await.last().unwrap(),
        "ReadyForQuery I"
    );
}

async fn connect(
    addr: SocketAddr,
    extra: &str,
) -> (
    tokio_postgres::Client,
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
) {
    let config = format!("host={} port={} user=alice {extra}", addr.ip(), addr.port());
    tokio_postgres::connect(&config, NoTls).await.unwrap()
}

fn simple_values(messages: &[SimpleQueryMessage]) -> Vec<Option<String>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn tokio_postgres_sees_parameters_and_variables() {
    let (addr, _) = start().await;
    let (client, connection) = connect(addr, "application_name=tp").await;
    assert_eq!(connection.parameter("server_version"), Some("15.0"));
    assert_eq!(connection.parameter("application_name"), Some("tp"));
    assert_eq!(connection.parameter("client_encoding"), Some("UTF8"));
    tokio::spawn(connection);

    let show = |name: &'static str| {
        let client = &client;
        async move { simple_values(&client.simple_query(&format!("SHOW {name}")).await.unwrap()) }
    };
    assert_eq!(show("server_version").await, vec![Some("15.0".to_string())]);
    client.batch_execute("SET search_path = foo").await.unwrap();
    assert_eq!(show("search_path").await, vec![Some("foo".to_string())]);
    client.batch_execute("RESET search_path").await.unwrap();
    assert_eq!(show("search_path").await, vec![Some("public".to_string())]);

    let error = client.batch_execute("SET nope = 1").await.unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::UNDEFINED_OBJECT));
    let error = client
        .batch_execute("SET server_version = 1")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::CANT_CHANGE_RUNTIME_PARAM));

    let error = client.simple_query("SELEC 1").await.unwrap_err();
    let db_error = error.as_db_error().unwrap();
    assert_eq!(db_error.code(), &SqlState::SYNTAX_ERROR);
    assert_eq!(db_error.position(), Some(&ErrorPosition::Original(1)));
}

/// Any value, as its raw bytes.
struct RawBytes(Vec<u8>);

impl<'a> FromSql<'a> for RawBytes {
    fn from_sql(
        _: &PgType,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawBytes(raw.to_vec()))
    }

    fn accepts(_: &PgType) -> bool {
        true
    }
}

#[tokio::test]
async fn tokio_postgres_prepared_statements_use_binary() {
    let (addr, _) = start().await;
    let (client, connection) = connect(addr, "").await;
    tokio::spawn(connection);

    let statement = client.prepare("echo").await.unwrap();
    assert_eq!(statement.params(), &[PgType::INT8, PgType::TEXT]);
    let row = client
        .query_one(&statement, &[&42i64, &"hi"])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 42);
    assert_eq!(row.get::<_, &str>(1), "hi");
    let row = client
        .query_one("echo", &[&-1i64, &None::<&str>])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<&str>>(1), None);

    let row = client.query_one("types", &[]).await.unwrap();
    let types: Vec<u32> = row.columns().iter().map(|c| c.type_().oid()).collect();
    assert_eq!(
        types,
        TYPES.iter().map(|(_, t, _)| t.oid()).collect::<Vec<_>>()
    );
    assert!(row.get::<_, bool>("bool"));
    assert_eq!(row.get::<_, i16>("int2"), -2);
    assert_eq!(row.get::<_, i32>("int4"), 4);
    assert_eq!(row.get::<_, i64>("int8"), 8);
    assert_eq!(row.get::<_, f32>("float4"), 1.5);
    assert_eq!(row.get::<_, f64>("float8"), 2.25);
    assert_eq!(row.get::<_, String>("text"), "héllo");
    assert_eq!(row.get::<_, Vec<u8>>("bytea"), vec![0, 255]);
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
    assert_eq!(row.get::<_, SystemTime>("timestamp"), at);
    assert_eq!(row.get::<_, SystemTime>("timestamptz"), at);
    assert_eq!(row.get::<_, RawBytes>("date").0, 1i32.to_be_bytes());
    assert_eq!(row.get::<_, RawBytes>("time").0, 1_000_000i64.to_be_bytes());
    let interval = row.get::<_, RawBytes>("interval").0;
    let mut interval = &interval[..];
    assert_eq!(
        (interval.get_i64(), interval.get_i32(), interval.get_i32()),
        (3_000_000, 2, 1)
    );
    assert_eq!(
        row.get::<_, RawBytes>("numeric").0,
        [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]
    );

    // The text protocol prints the same values.
    let text = client.simple_query("types").await.unwrap();
    let SimpleQueryMessage::Row(row) = &text[1] else {
        panic!("expected a row: {text:?}");
    };
    let printed: Vec<&str> = (0..TYPES.len()).map(|i| row.get(i).unwrap()).collect();
    assert_eq!(
        printed,
        vec![
            "t",
            "-2",
            "4",
            "8",
            "1.5",
            "2.25",
            "12345.678",
            "héllo",
            "\\x00ff",
            "2000-01-02",
            "00:00:01",
            "2023-11-14 22:13:20.5",
            "2023-11-14 22:13:20.5+00",
            "1 mon 2 days 00:00:03",
        ]
    );
}

#[tokio::test]
async fn cancel_request_reaches_the_backend_with_the_session_key() {
    let (addr, fake) = start().await;
    let (client, connection) = connect(addr, "").await;
    tokio::spawn(connection);
    let token = client.cancel_token();
    let running = tokio::spawn(async move {
        let result = client.simple_query("sleep").await;
        (client, result)
    });
    let (conn_id, secret) = timeout(WAIT, async {
        loop {
            if let Some(key) = *fake.sleeping.lock().unwrap() {
                return key;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the statement starts");

    // A cancel with the wrong secret is ignored.
    let mut wrong = TcpStream::connect(addr).await.unwrap();
    let mut request = BytesMut::new();
    request.put_i32(16);
    request.put_i32(80877102);
    request.put_i32(conn_id as i32);
    request.put_i32(secret.wrapping_add(1));
    wrong.write_all(&request).await.unwrap();
    let mut rest = Vec::new();
    let _ = timeout(WAIT, wrong.read_to_end(&mut rest)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!running.is_finished());

    token.cancel_query(NoTls).await.unwrap();
    let (client, result) = timeout(WAIT, running).await.unwrap().unwrap();
    assert_eq!(result.unwrap_err().code(), Some(&SqlState::QUERY_CANCELED));
    let rows = client.simple_query("SELECT 1").await.unwrap();
    assert_eq!(simple_values(&rows), vec![Some("1".to_string())]);
}
