//! The PostgreSQL wire protocol front end: accepts connections on the pgwire port and
//! turns protocol messages into calls on the adapter [`Client`], and its answers back
//! into messages.
//!
//! [`serve`] runs one tokio task per connection, each with its own `Connection`: the
//! handlers pgwire calls, holding the connection's [`Session`]. pgwire owns framing
//! (behind [`guard`]), the statement and portal store, portal suspension and the
//! extended protocol's error recovery (skip to Sync). This module owns:
//!
//! 1. startup: trust authentication (any user, no password), the [`Session`] with the
//!    startup packet's settings, ParameterStatus, BackendKeyData;
//! 2. simple queries: [`Client::execute_simple`], one response per statement;
//! 3. extended queries: Parse → [`Client::describe`], cached on the statement; Bind →
//!    parameters decoded to text (`encoding`); Describe → ParameterDescription and
//!    RowDescription/NoData; Execute → [`Client::execute_extended`], rows encoded in the
//!    portal's result formats (`max_rows` > 0 suspends the portal: pgwire keeps the
//!    rows the statement returned and sends them `max_rows` at a time); text results
//!    print floats as the session's `extra_float_digits` says, read once the request
//!    has run;
//! 4. after each request, ParameterStatus for reported variables that changed, and
//!    ReadyForQuery whose status byte is read from [`Session::transaction`] (an error
//!    inside a transaction block fails the block, as in PostgreSQL);
//! 5. CancelRequest → [`Client::cancel`].
//!
//! Invariant: nothing a client sends panics this module; a bad request ends in an
//! ErrorResponse and the session goes on. pgwire never reads the client's socket: it
//! runs on a unix socket pair (`pgwire::tokio::process_socket_unix`) behind [`guard`],
//! which validates every frame (pgwire's decoders trust message bodies and panic on
//! truncated ones), enforces our size limits (64 MiB, 10 000 bytes for startup packets
//! and control messages), answers SSLRequest with 'N', and ends the connection on bytes
//! that do not frame as messages with a FATAL ErrorResponse (08P01), while the server
//! keeps serving others.

mod copy_in;
mod encoding;
mod guard;
#[cfg(test)]
mod tests;

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{stream, Sink, SinkExt};
use pgwire::api::auth::{
    protocol_negotiation, save_startup_parameters_to_metadata, StartupHandler,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{
    send_execution_response, send_query_response, send_ready_for_query, ExtendedQueryHandler,
    SimpleQueryHandler,
};
use pgwire::api::results::CopyResponse;
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, ErrorHandler, PgWireConnectionState, PgWireServerHandlers, Type,
    DEFAULT_NAME,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult, SEVERITY_ERROR, SEVERITY_WARNING};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail, CopyInResponse, CopyOutResponse};
use pgwire::messages::data::{NoData, ParameterDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Describe, Sync as PgSync, TARGET_TYPE_BYTE_PORTAL,
    TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{EmptyQueryResponse, TransactionStatus as WireStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::{Authentication, BackendKeyData, ParameterStatus, SecretKey};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use repr::{RelationDesc, Row, ScalarType};
use tokio::net::TcpListener;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};
use tracing::{debug, info, warn};

use crate::adapter::{
    AdapterError, Client, ExecuteResponse, StatementDesc, SubscribeMessage, SubscribeStream,
};
use crate::session::{
    allocate_conn_id, Session, TransactionStatus, DEFAULT_DATABASE, DEFAULT_USER,
};

/// How long to wait before accepting again after `accept` failed (e.g. out of file
/// descriptors), so a persistent failure does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves the PostgreSQL protocol on `listener` forever, one task per connection.
///
/// Errors of one connection (bad bytes, a client that disconnects mid-query) end that
/// connection's task only; failing `accept` calls are logged and retried.
pub async fn serve(listener: TcpListener, client: Client) -> std::io::Result<()> {
    serve_backend(listener, client).await
}

/// [`serve`] over any [`Backend`]: the tests run the protocol against a fake one.
async fn serve_backend<B: Backend>(listener: TcpListener, backend: B) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving pgwire");
    }
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "accepting a pgwire connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let handlers = Handlers(Arc::new(Connection::new(backend.clone())));
        tokio::spawn(async move {
            debug!(%peer, "pgwire connection accepted");
            guard::serve_connection(socket, peer, move |unix| async move {
                match pgwire::tokio::process_socket_unix(unix, handlers).await {
                    Ok(()) => debug!(%peer, "pgwire connection closed"),
                    Err(error) => debug!(%peer, %error, "pgwire connection ended with an error"),
                }
            })
            .await;
        });
    }
}

/// What the front end needs from the coordinator: the calls of [`Client`].
#[async_trait]
pub(crate) trait Backend: Clone + Send + Sync + 'static {
    async fn execute_simple(
        &self,
        session: &mut Session,
        sql: &str,
    ) -> (Vec<ExecuteResponse>, Option<AdapterError>);

    async fn describe(
        &self,
        session: &mut Session,
        sql: &str,
        param_types: &[Option<ScalarType>],
    ) -> Result<StatementDesc, AdapterError>;

    async fn execute_extended(
        &self,
        session: &mut Session,
        sql: &str,
        params: Vec<Option<String>>,
        param_types: Vec<ScalarType>,
    ) -> Result<ExecuteResponse, AdapterError>;

    fn cancel(&self, conn_id: u32, secret_key: i32);

    /// Appends the rows of a `COPY ... FROM STDIN`.
    async fn copy_rows(
        &self,
        _session: &mut Session,
        _plan: &sql::streaming::CopyFromPlan,
        _rows: Vec<Row>,
    ) -> Result<(), AdapterError> {
        Err(AdapterError::new(
            "0A000",
            "COPY FROM is not supported here",
        ))
    }

    /// The connection closed; its open transaction is discarded.
    fn terminate(&self, _conn_id: u32) {}
}

#[async_trait]
impl Backend for Client {
    async fn execute_simple(
        &self,
        session: &mut Session,
        sql: &str,
    ) -> (Vec<ExecuteResponse>, Option<AdapterError>) {
        Client::execute_simple(self, session, sql).await
    }

    async fn describe(
        &self,
        session: &mut Session,
        sql: &str,
        param_types: &[Option<ScalarType>],
    ) -> Result<StatementDesc, AdapterError> {
        Client::describe(self, session, sql, param_types).await
    }

    async fn execute_extended(
        &self,
        session: &mut Session,
        sql: &str,
        params: Vec<Option<String>>,
        param_types: Vec<ScalarType>,
    ) -> Result<ExecuteResponse, AdapterError> {
        Client::execute_extended(self, session, sql, params, param_types).await
    }

    fn cancel(&self, conn_id: u32, secret_key: i32) {
        Client::cancel(self, conn_id, secret_key)
    }

    async fn copy_rows(
        &self,
        session: &mut Session,
        plan: &sql::streaming::CopyFromPlan,
        rows: Vec<Row>,
    ) -> Result<(), AdapterError> {
        Client::copy_rows(self, session, plan, rows).await
    }

    fn terminate(&self, conn_id: u32) {
        Client::terminate(self, conn_id)
    }
}

/// A statement prepared by Parse: its text and what `describe` said about it.
#[derive(Clone, Debug)]
pub(crate) struct PreparedStatement {
    sql: String,
    desc: StatementDesc,
}

/// The session of one connection; `None` until the startup message is processed.
type SessionSlot = Arc<Mutex<Option<Session>>>;

async fn lock_session(slot: &SessionSlot) -> PgWireResult<MappedMutexGuard<'_, Session>> {
    MutexGuard::try_map(slot.lock().await, Option::as_mut)
        .map_err(|_| protocol_violation("the startup message has not been processed".into()))
}

/// The per-connection state and handlers. Messages of one connection are handled one
/// at a time, so the session lock is never contended.
struct Connection<B: Backend> {
    backend: B,
    session: SessionSlot,
    parser: Arc<StatementParser<B>>,
    /// An error went out through pgwire's error path since the last ReadyForQuery; at
    /// Sync it fails an open transaction block, as every error does in PostgreSQL.
    error_pending: AtomicBool,
    /// The `COPY ... FROM STDIN` receiving data, if any.
    copy_in: std::sync::Mutex<Option<copy_in::CopyIn>>,
}

impl<B: Backend> Drop for Connection<B> {
    fn drop(&mut self) {
        // The last handle on the connection's state is gone: the socket closed.
        if let Ok(slot) = self.session.try_lock() {
            if let Some(session) = slot.as_ref() {
                self.backend.terminate(session.conn_id);
            }
        }
    }
}

/// Hands pgwire the handlers of one connection.
struct Handlers<B: Backend>(Arc<Connection<B>>);

impl<B: Backend> PgWireServerHandlers for Handlers<B> {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.0)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.0)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.0)
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::clone(&self.0)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.0)
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        Arc::clone(&self.0)
    }
}

impl<B: Backend> Connection<B> {
    fn new(backend: B) -> Self {
        let session = SessionSlot::default();
        Connection {
            parser: Arc::new(StatementParser {
                backend: backend.clone(),
                session: Arc::clone(&session),
            }),
            backend,
            session,
            error_pending: AtomicBool::new(false),
            copy_in: std::sync::Mutex::new(None),
        }
    }

    /// The end of a request, before ReadyForQuery: fails an open block if the request
    /// failed, sends ParameterStatus for changed variables, and returns the status.
    async fn finish_request<C>(&self, client: &mut C, failed: bool) -> PgWireResult<WireStatus>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let failed = self.error_pending.swap(false, Ordering::Relaxed) || failed;
        let (reports, status) = {
            let mut session = lock_session(&self.session).await?;
            if failed && session.transaction == TransactionStatus::InBlock {
                session.transaction = TransactionStatus::Failed;
            }
            (
                session.take_reportable_changes(),
                wire_status(session.transaction),
            )
        };
        for (name, value) in reports {
            let status = ParameterStatus::new(name.to_string(), value);
            client
                .feed(PgWireBackendMessage::ParameterStatus(status))
                .await?;
        }
        client.set_transaction_status(status);
        Ok(status)
    }
}

fn wire_status(status: TransactionStatus) -> WireStatus {
    match status {
        TransactionStatus::Idle => WireStatus::Idle,
        TransactionStatus::InBlock => WireStatus::Transaction,
        TransactionStatus::Failed => WireStatus::Error,
    }
}

#[async_trait]
impl<B: Backend> StartupHandler for Connection<B> {
    /// Trust authentication: the session starts as soon as the startup packet arrives.
    /// Settings in the packet that Freshet rejects are reported as warnings, not fatal.
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let PgWireFrontendMessage::Startup(startup) = message else {
            return Ok(());
        };
        protocol_negotiation(client, &startup).await?;
        save_startup_parameters_to_metadata(client, &startup);

        let param = |name: &str| {
            let value = startup.parameters.get(name).map(String::as_str);
            value.filter(|v| !v.is_empty())
        };
        let user = param("user").unwrap_or(DEFAULT_USER);
        let database = param("database").unwrap_or(DEFAULT_DATABASE);
        let conn_id = allocate_conn_id();
        let secret_key = random_secret();
        let mut session = Session::new(conn_id, secret_key, user, database);
        let mut rejected = Vec::new();
        for (name, value) in &startup.parameters {
            match name.as_str() {
                "user" | "database" | "replication" => {}
                "options" => rejected.extend(session.apply_startup_options(value)),
                _ => rejected.extend(session.set_startup(name, value).err()),
            }
        }

        let pid = conn_id as i32;
        client.set_pid_and_secret_key(pid, SecretKey::I32(secret_key));
        client
            .feed(PgWireBackendMessage::Authentication(Authentication::Ok))
            .await?;
        for (name, value) in session.startup_parameters() {
            let status = ParameterStatus::new(name.to_string(), value);
            client
                .feed(PgWireBackendMessage::ParameterStatus(status))
                .await?;
        }
        session.take_reportable_changes();
        let key = BackendKeyData::new(pid, SecretKey::I32(secret_key));
        client
            .feed(PgWireBackendMessage::BackendKeyData(key))
            .await?;
        for error in rejected {
            let mut notice = error_info(&error);
            notice.severity = SEVERITY_WARNING.to_string();
            notice.severity_nonlocalized = Some(SEVERITY_WARNING.to_string());
            client
                .feed(PgWireBackendMessage::NoticeResponse(notice.into()))
                .await?;
        }
        debug!(conn_id, user, database, "pgwire session started");
        *self.session.lock().await = Some(session);

        client.set_state(PgWireConnectionState::ReadyForQuery);
        send_ready_for_query(client, WireStatus::Idle).await
    }
}

/// A random cancel secret (UUIDv4 randomness: the crate has no `rand`).
fn random_secret() -> i32 {
    uuid::Uuid::new_v4().as_u128() as i32
}

#[async_trait]
impl<B: Backend> SimpleQueryHandler for Connection<B> {
    /// Runs a Query message: every statement's response, then ParameterStatus for
    /// changed variables, then ReadyForQuery with the session's transaction status.
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let mut failed = false;
        let (results, error, extra_float_digits) = {
            let mut session = lock_session(&self.session).await?;
            let (results, error) = self
                .backend
                .execute_simple(&mut session, &query.query)
                .await;
            (results, error, session.extra_float_digits())
        };
        let mut responses = Vec::new();
        for result in results {
            match result {
                // Streams go out as they come, before any later statement's response.
                ExecuteResponse::Subscribe { desc, stream, copy } => {
                    for response in responses.drain(..) {
                        failed |= send_simple_response(client, response).await?;
                    }
                    let ended =
                        stream_subscribe(client, &desc, stream, copy, true, extra_float_digits)
                            .await?;
                    if let Err(e) = ended {
                        failed = true;
                        let message = PgWireBackendMessage::ErrorResponse(error_info(&e).into());
                        client.feed(message).await?;
                    }
                }
                ExecuteResponse::CopyOut { desc, rows } => {
                    for response in responses.drain(..) {
                        failed |= send_simple_response(client, response).await?;
                    }
                    let count = send_copy_out(client, &desc, rows, extra_float_digits).await?;
                    let tag = Tag::new("COPY").with_rows(count);
                    client
                        .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                        .await?;
                }
                // The client sends the data next; ReadyForQuery follows its CopyDone
                // (statements after a COPY FROM in the same query string have run).
                ExecuteResponse::CopyIn(plan) => {
                    for response in responses.drain(..) {
                        send_simple_response(client, response).await?;
                    }
                    let columns = i16::try_from(plan.fields).unwrap_or(i16::MAX);
                    let response = CopyInResponse::new(0, columns, vec![0; plan.fields]);
                    self.start_copy_in(*plan);
                    client.set_state(PgWireConnectionState::CopyInProgress(false));
                    client
                        .send(PgWireBackendMessage::CopyInResponse(response))
                        .await?;
                    return Ok(());
                }
                other => responses.push(execute_response(
                    other,
                    &Format::UnifiedText,
                    extra_float_digits,
                )?),
            }
        }
        responses.extend(error.map(|e| Response::Error(Box::new(error_info(&e)))));
        for response in responses {
            failed |= send_simple_response(client, response).await?;
        }
        let status = self.finish_request(client, failed).await?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        send_ready_for_query(client, status).await
    }

    /// Executes the statements of `query`; an error, if any, is the last response.
    /// (`on_query` runs statements itself, to stream subscriptions as they happen.)
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (results, error, extra_float_digits) = {
            let mut session = lock_session(&self.session).await?;
            let (results, error) = self.backend.execute_simple(&mut session, query).await;
            (results, error, session.extra_float_digits())
        };
        let mut responses: Vec<Response> = results
            .into_iter()
            .map(|result| execute_response(result, &Format::UnifiedText, extra_float_digits))
            .collect::<PgWireResult<_>>()?;
        responses.extend(error.map(|e| Response::Error(Box::new(error_info(&e)))));
        Ok(responses)
    }
}

/// Sends one statement's response of a simple query; true if it was an error.
async fn send_simple_response<C>(client: &mut C, response: Response) -> PgWireResult<bool>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    match response {
        Response::Query(rows) => send_query_response(client, rows, true).await?,
        Response::Execution(tag)
        | Response::TransactionStart(tag)
        | Response::TransactionEnd(tag) => send_execution_response(client, tag).await?,
        Response::EmptyQuery => {
            let message = PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new());
            client.feed(message).await?
        }
        Response::Error(error) => {
            let message = PgWireBackendMessage::ErrorResponse((*error).into());
            client.feed(message).await?;
            return Ok(true);
        }
        Response::CopyIn(_) | Response::CopyOut(_) | Response::CopyBoth(_) => {
            let error = error_info_new("0A000", "COPY FROM is not supported".into());
            let message = PgWireBackendMessage::ErrorResponse(error.into());
            client.feed(message).await?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Streams a subscription to the client until it ends: DataRows (after a
/// RowDescription in the simple protocol; the extended protocol described the portal
/// already) or, for COPY, CopyOutResponse, one CopyData per row and CopyDone. Each
/// batch is flushed as it arrives. Returns the row count, or the error that ended it.
async fn stream_subscribe<C>(
    client: &mut C,
    desc: &RelationDesc,
    mut stream: SubscribeStream,
    copy: bool,
    describe: bool,
    extra_float_digits: i32,
) -> PgWireResult<Result<usize, AdapterError>>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let formats = vec![FieldFormat::Text; desc.arity()];
    if copy {
        let columns = i16::try_from(desc.arity()).unwrap_or(i16::MAX);
        let response = CopyOutResponse::new(0, columns, vec![0; desc.arity()]);
        client
            .feed(PgWireBackendMessage::CopyOutResponse(response))
            .await?;
    } else if describe {
        let message = encoding::row_description(desc, &formats);
        client
            .feed(PgWireBackendMessage::RowDescription(message))
            .await?;
    }
    client.flush().await?;
    let mut count = 0;
    loop {
        match stream.recv().await {
            Some(SubscribeMessage::Rows(rows)) => {
                count += rows.len();
                for row in rows {
                    let message = if copy {
                        let line = encoding::copy_text_line(&row, extra_float_digits);
                        PgWireBackendMessage::CopyData(CopyData::new(Bytes::from(line)))
                    } else {
                        PgWireBackendMessage::DataRow(encoding::encode_row(
                            &row,
                            &formats,
                            extra_float_digits,
                        ))
                    };
                    client.feed(message).await?;
                }
                client.flush().await?;
            }
            Some(SubscribeMessage::Error(e)) => return Ok(Err(e)),
            Some(SubscribeMessage::Complete) | None => break,
        }
    }
    if copy {
        client
            .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
            .await?;
    }
    if describe {
        let tag = Tag::new(if copy { "COPY" } else { "SUBSCRIBE" }).with_rows(count);
        client
            .feed(PgWireBackendMessage::CommandComplete(tag.into()))
            .await?;
    }
    Ok(Ok(count))
}

/// `COPY (SELECT ...) TO STDOUT`: CopyOutResponse, a CopyData per row in text
/// format, CopyDone; returns the row count for the `COPY n` tag.
async fn send_copy_out<C>(
    client: &mut C,
    desc: &RelationDesc,
    rows: Vec<Row>,
    extra_float_digits: i32,
) -> PgWireResult<usize>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let columns = i16::try_from(desc.arity()).unwrap_or(i16::MAX);
    let response = CopyOutResponse::new(0, columns, vec![0; desc.arity()]);
    client
        .feed(PgWireBackendMessage::CopyOutResponse(response))
        .await?;
    let count = rows.len();
    for row in rows {
        let line = encoding::copy_text_line(&row, extra_float_digits);
        let data = CopyData::new(Bytes::from(line));
        client.feed(PgWireBackendMessage::CopyData(data)).await?;
    }
    client
        .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    Ok(count)
}

/// The pgwire response for an executed statement, rows in the given column formats
/// (text floats as the session's `extra_float_digits` asks, see `encoding::format_text`).
fn execute_response(
    result: ExecuteResponse,
    formats: &Format,
    extra_float_digits: i32,
) -> PgWireResult<Response> {
    Ok(match result {
        ExecuteResponse::Rows { desc, rows, tag } => {
            let formats = column_formats(formats, desc.arity())?;
            Response::Query(query_response(
                &desc,
                rows,
                &tag,
                formats,
                extra_float_digits,
            ))
        }
        ExecuteResponse::Command { tag } => Response::Execution(Tag::new(&tag)),
        ExecuteResponse::EmptyQuery => Response::EmptyQuery,
        // The handlers stream these themselves.
        ExecuteResponse::Subscribe { .. }
        | ExecuteResponse::CopyOut { .. }
        | ExecuteResponse::CopyIn(_) => {
            let error = error_info_new("0A000", "streaming results need the query handlers".into());
            Response::Error(Box::new(error))
        }
    })
}

/// Rows to send; pgwire appends the row count to `tag` in CommandComplete.
fn query_response(
    desc: &RelationDesc,
    rows: Vec<Row>,
    tag: &str,
    formats: Vec<FieldFormat>,
    extra_float_digits: i32,
) -> QueryResponse {
    let schema = Arc::new(encoding::field_infos(desc, &formats));
    let data_rows = rows
        .into_iter()
        .map(move |row| Ok(encoding::encode_row(&row, &formats, extra_float_digits)));
    let mut response = QueryResponse::new(schema, stream::iter(data_rows));
    response.set_command_tag(tag);
    response
}

/// The format of each of `arity` result columns, as a Bind message asked for them.
fn column_formats(format: &Format, arity: usize) -> PgWireResult<Vec<FieldFormat>> {
    match format {
        Format::UnifiedText => Ok(vec![FieldFormat::Text; arity]),
        Format::UnifiedBinary => Ok(vec![FieldFormat::Binary; arity]),
        Format::Individual(codes) if codes.len() == arity => {
            Ok(codes.iter().map(|code| FieldFormat::from(*code)).collect())
        }
        Format::Individual(codes) => Err(protocol_violation(format!(
            "bind message has {} result formats but query has {arity} columns",
            codes.len()
        ))),
    }
}

/// Format codes must be 0 (text) or 1 (binary).
fn check_format_codes(codes: &[i16]) -> PgWireResult<()> {
    match codes.iter().find(|code| !matches!(code, 0 | 1)) {
        Some(code) => Err(user_error(&AdapterError {
            code: "22023".into(),
            message: format!("unsupported format code: {code}"),
            detail: None,
            hint: None,
            position: None,
        })),
        None => Ok(()),
    }
}

/// The parameters of a Bind message as PostgreSQL text, checked against the statement.
fn decode_params(bind: &Bind, types: &[ScalarType]) -> PgWireResult<Vec<Option<String>>> {
    let statement = bind.statement_name.as_deref().unwrap_or("");
    if bind.parameters.len() != types.len() {
        return Err(protocol_violation(format!(
            "bind message supplies {} parameters, but prepared statement \"{statement}\" requires {}",
            bind.parameters.len(),
            types.len()
        )));
    }
    let codes = &bind.parameter_format_codes;
    if codes.len() > 1 && codes.len() != types.len() {
        return Err(protocol_violation(format!(
            "bind message has {} parameter formats but {} parameters",
            codes.len(),
            types.len()
        )));
    }
    let format = |i: usize| {
        let code = if codes.len() == 1 {
            codes.first()
        } else {
            codes.get(i)
        };
        code.map_or(FieldFormat::Text, |code| FieldFormat::from(*code))
    };
    let params = bind.parameters.iter().zip(types).enumerate();
    params
        .map(|(i, (value, typ))| match value {
            None => Ok(None),
            Some(value) => encoding::decode_param(value, *typ, format(i), i + 1)
                .map(Some)
                .map_err(|e| user_error(&e)),
        })
        .collect()
}

/// Parses statements for the extended protocol by asking the coordinator to describe
/// them; pgwire stores the result with the prepared statement.
struct StatementParser<B> {
    backend: B,
    session: SessionSlot,
}

#[async_trait]
impl<B: Backend> QueryParser for StatementParser<B> {
    type Statement = PreparedStatement;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<PreparedStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        // An OID Freshet lacks (or 0) leaves the type to be inferred.
        let declared: Vec<Option<ScalarType>> = types
            .iter()
            .map(|t| t.as_ref().and_then(|t| ScalarType::from_oid(t.oid())))
            .collect();
        let mut session = lock_session(&self.session).await?;
        let desc = self
            .backend
            .describe(&mut session, sql, &declared)
            .await
            .map_err(|e| user_error(&e))?;
        Ok(Some(PreparedStatement {
            sql: sql.to_string(),
            desc,
        }))
    }

    fn get_parameter_types(&self, stmt: &PreparedStatement) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .desc
            .param_types
            .iter()
            .map(|t| encoding::pg_type(*t))
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &PreparedStatement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let Some(desc) = &stmt.desc.result else {
            return Ok(Vec::new());
        };
        let formats = column_formats(column_format.unwrap_or(&Format::UnifiedText), desc.arity())?;
        Ok(encoding::field_infos(desc, &formats))
    }
}

#[async_trait]
impl<B: Backend> ExtendedQueryHandler for Connection<B> {
    type Statement = PreparedStatement;
    type QueryParser = StatementParser<B>;

    fn query_parser(&self) -> Arc<StatementParser<B>> {
        Arc::clone(&self.parser)
    }

    /// Binds parameters, decoding them to text now so that a bad one fails the Bind
    /// (as in PostgreSQL); the portal keeps them as text.
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        check_format_codes(&message.parameter_format_codes)?;
        check_format_codes(&message.result_column_format_codes)?;
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let params = decode_params(&message, &statement.statement.desc.param_types)?;
                let result = statement
                    .statement
                    .desc
                    .result
                    .as_ref()
                    .map(RelationDesc::arity);
                let mut portal = Portal::try_new(&message, statement)?;
                if let Some(arity) = result {
                    column_formats(&portal.result_column_format, arity)?;
                }
                portal.parameters = params.into_iter().map(|p| p.map(Bytes::from)).collect();
                portal.parameter_format = Format::UnifiedText;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => {
                if !message.parameters.is_empty() {
                    return Err(protocol_violation(format!(
                        "bind message supplies {} parameters, but prepared statement \"{}\" requires 0",
                        message.parameters.len(),
                        message.statement_name.as_deref().unwrap_or("")
                    )));
                }
                let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
                client.portal_store().put_empty_portal(portal_name);
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    /// ParameterDescription (statements only), then RowDescription in the portal's
    /// result formats (text for statements), or NoData for statements without rows.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let store = client.portal_store();
        let (params, rows) = match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => match store.get_statement(name) {
                Some(Entry::Value(stmt)) => {
                    let desc = &stmt.statement.desc;
                    let params = desc.param_types.iter().map(ScalarType::oid).collect();
                    let rows = desc
                        .result
                        .as_ref()
                        .map(|r| encoding::row_description(r, &[]));
                    (Some(params), rows)
                }
                Some(Entry::Empty) => (Some(Vec::new()), None),
                None => return Err(PgWireError::StatementNotFound(name.to_owned())),
            },
            TARGET_TYPE_BYTE_PORTAL => match store.get_portal(name) {
                Some(Entry::Value(portal)) => match &portal.statement.statement.desc.result {
                    Some(desc) => {
                        let formats = column_formats(&portal.result_column_format, desc.arity())?;
                        (None, Some(encoding::row_description(desc, &formats)))
                    }
                    None => (None, None),
                },
                Some(Entry::Empty) => (None, None),
                None => return Err(PgWireError::PortalNotFound(name.to_owned())),
            },
            other => return Err(PgWireError::InvalidTargetType(other)),
        };
        if let Some(params) = params {
            let message = ParameterDescription::new(params);
            client
                .feed(PgWireBackendMessage::ParameterDescription(message))
                .await?;
        }
        let message = match rows {
            Some(rows) => PgWireBackendMessage::RowDescription(rows),
            None => PgWireBackendMessage::NoData(NoData::new()),
        };
        client.feed(message).await?;
        Ok(())
    }

    /// ParameterStatus for changed variables, then ReadyForQuery with the session's
    /// transaction status (an error since the last one fails an open block).
    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        let status = self.finish_request(client, false).await?;
        send_ready_for_query(client, status).await
    }

    /// Executes a portal. pgwire keeps the rows in the portal and sends `max_rows` at a
    /// time with PortalSuspended between; the statement itself runs once, to completion.
    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PreparedStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement = &portal.statement.statement;
        // Bind stored the parameters as text it decoded itself.
        let params = portal
            .parameters
            .iter()
            .map(|p| p.as_ref().map(|p| String::from_utf8_lossy(p).into_owned()))
            .collect();
        let (result, extra_float_digits) = {
            let mut session = lock_session(&self.session).await?;
            let types = statement.desc.param_types.clone();
            let result = self
                .backend
                .execute_extended(&mut session, &statement.sql, params, types)
                .await;
            (result, session.extra_float_digits())
        };
        match result {
            Ok(ExecuteResponse::Subscribe { desc, stream, copy }) => {
                match stream_subscribe(client, &desc, stream, copy, false, extra_float_digits)
                    .await?
                {
                    Ok(count) => {
                        let tag = if copy { "COPY" } else { "SUBSCRIBE" };
                        Ok(Response::Execution(Tag::new(tag).with_rows(count)))
                    }
                    Err(e) => Err(user_error(&e)),
                }
            }
            Ok(ExecuteResponse::CopyIn(plan)) => {
                let fields = plan.fields;
                self.start_copy_in(*plan);
                let data = futures::stream::empty::<PgWireResult<CopyData>>();
                Ok(Response::CopyIn(CopyResponse::new(0, fields, data)))
            }
            Ok(ExecuteResponse::CopyOut { desc, rows }) => {
                let count = send_copy_out(client, &desc, rows, extra_float_digits).await?;
                Ok(Response::Execution(Tag::new("COPY").with_rows(count)))
            }
            Ok(result) => {
                execute_response(result, &portal.result_column_format, extra_float_digits)
            }
            Err(e) => Err(user_error(&e)),
        }
    }
}

impl<B: Backend> Connection<B> {
    fn start_copy_in(&self, plan: sql::streaming::CopyFromPlan) {
        *self.copy_in.lock().expect("not poisoned") = Some(copy_in::CopyIn::new(plan));
    }
}

#[async_trait]
impl<B: Backend> CopyHandler for Connection<B> {
    async fn on_copy_data<C>(&self, _client: &mut C, data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(copy) = self.copy_in.lock().expect("not poisoned").as_mut() {
            copy.push(&data.data);
        }
        Ok(())
    }

    /// Parses what is left, appends the rows as one INSERT, and answers `COPY n` (or
    /// the first bad record's error, with nothing written).
    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let copy = self.copy_in.lock().expect("not poisoned").take();
        let Some(mut copy) = copy else {
            return Err(protocol_violation(
                "CopyDone without a COPY in progress".into(),
            ));
        };
        copy.finish();
        let result = match copy.error.take() {
            Some(e) => Err(e),
            None => {
                let count = copy.rows.len();
                let mut session = lock_session(&self.session).await?;
                self.backend
                    .copy_rows(&mut session, &copy.plan, std::mem::take(&mut copy.rows))
                    .await
                    .map(|()| count)
            }
        };
        match result {
            Ok(count) => {
                let tag = Tag::new("COPY").with_rows(count);
                client
                    .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                    .await?;
                self.finish_request(client, false).await?;
                Ok(())
            }
            Err(e) => {
                self.finish_request(client, true).await?;
                Err(user_error(&e))
            }
        }
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.copy_in.lock().expect("not poisoned").take();
        let _ = self.finish_request(client, true).await;
        user_error(&AdapterError::new(
            "57014",
            format!("COPY from stdin failed: {}", fail.message),
        ))
    }
}

impl<B: Backend> ErrorHandler for Connection<B> {
    /// Every error pgwire sends for us (extended protocol errors, protocol violations).
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        debug!(%error, "pgwire request failed");
        self.error_pending.store(true, Ordering::Relaxed);
    }
}

#[async_trait]
impl<B: Backend> CancelHandler for Connection<B> {
    async fn on_cancel_request(&self, request: CancelRequest) {
        match request.secret_key.as_i32() {
            Some(secret_key) => {
                debug!(conn_id = request.pid, "pgwire cancel request");
                self.backend.cancel(request.pid as u32, secret_key);
            }
            None => debug!(
                conn_id = request.pid,
                "ignoring a cancel request with a long key"
            ),
        }
    }
}

/// The ErrorResponse fields of an adapter error.
fn error_info(error: &AdapterError) -> ErrorInfo {
    let mut info = error_info_new(&error.code, error.message.clone());
    info.detail = error.detail.clone();
    info.hint = error.hint.clone();
    info.position = error.position.map(|p| p.to_string());
    info
}

fn error_info_new(code: &str, message: String) -> ErrorInfo {
    let mut info = ErrorInfo::new(SEVERITY_ERROR.to_string(), code.to_string(), message);
    info.severity_nonlocalized = Some(SEVERITY_ERROR.to_string());
    info
}

fn user_error(error: &AdapterError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(error)))
}

/// 08P01: the client broke the protocol's rules (an ERROR, not FATAL: PostgreSQL too
/// keeps the session for these).
fn protocol_violation(message: String) -> PgWireError {
    PgWireError::UserError(Box::new(error_info_new("08P01", message)))
}
