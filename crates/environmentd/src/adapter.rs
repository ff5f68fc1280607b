//! The adapter: the boundary between the pgwire front end and the coordinator.
//!
//! The front end ([`crate::pgwire`]) owns connections and the wire format; the
//! coordinator ([`crate::coord`]) owns the catalog, timestamps and dataflows. Between
//! them a [`Client`] passes statements (as SQL text) in and [`ExecuteResponse`]s out.
//! A `Client` is cheap to clone; each connection holds one with its own [`Session`].

use repr::{RelationDesc, Row, ScalarType};
use sql::query::Params;
use tokio::sync::oneshot;

use crate::coord::Command;
use crate::session::Session;

/// What a successfully executed statement returns to the client.
#[derive(Debug)]
pub enum ExecuteResponse {
    /// Rows to send with a RowDescription: SELECT, SHOW, EXPLAIN, `... RETURNING`.
    /// `tag` is the CommandComplete tag without the row count ("SELECT", "INSERT 0").
    Rows {
        desc: RelationDesc,
        rows: Vec<Row>,
        tag: String,
    },
    /// A command with no rows; `tag` is the full CommandComplete tag ("CREATE TABLE",
    /// "INSERT 0 3", "UPDATE 2", "SET").
    Command { tag: String },
    /// The query string held no statement.
    EmptyQuery,
    /// `SUBSCRIBE` (or `COPY (SUBSCRIBE ...) TO STDOUT` when `copy`): rows arrive on
    /// `stream` as the subscribed relation changes, until it ends.
    Subscribe {
        desc: RelationDesc,
        stream: SubscribeStream,
        copy: bool,
    },
    /// `COPY (SELECT ...) TO STDOUT`: rows sent as CopyData, tagged `COPY n`.
    CopyOut { desc: RelationDesc, rows: Vec<Row> },
    /// `COPY t FROM STDIN`: the protocol layer reads the rows, then calls
    /// [`Client::copy_rows`].
    CopyIn(Box<sql::streaming::CopyFromPlan>),
}

/// What a subscription sends its client.
#[derive(Debug)]
pub enum SubscribeMessage {
    Rows(Vec<Row>),
    /// The subscription failed (its input was dropped, it was cancelled, the client
    /// fell too far behind); nothing follows.
    Error(AdapterError),
    /// `UP TO` was reached; nothing follows.
    Complete,
}

/// The receiving end of a subscription. Dropping it ends the subscription.
#[derive(Debug)]
pub struct SubscribeStream {
    pub rx: tokio::sync::mpsc::UnboundedReceiver<SubscribeMessage>,
    /// Rows sent and not yet taken: the coordinator ends a subscription whose client
    /// lets this pass `max_subscribe_buffer_rows`.
    pub queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SubscribeStream {
    /// The next message, or `None` once the coordinator dropped the subscription.
    pub async fn recv(&mut self) -> Option<SubscribeMessage> {
        let message = self.rx.recv().await;
        if let Some(SubscribeMessage::Rows(rows)) = &message {
            self.queued
                .fetch_sub(rows.len(), std::sync::atomic::Ordering::Relaxed);
        }
        message
    }
}

/// An error to send as an ErrorResponse, with a SQLSTATE and PostgreSQL-style message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterError {
    /// SQLSTATE, e.g. "42601".
    pub code: String,
    /// Lowercase message without trailing period.
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the query text, for syntax errors.
    pub position: Option<usize>,
}

/// What a statement takes and returns, for the extended protocol's Describe.
#[derive(Clone, Debug, PartialEq)]
pub struct StatementDesc {
    /// The types of `$1`, `$2`, ... (inferred, or as given in Parse).
    pub param_types: Vec<ScalarType>,
    /// The columns it returns, or `None` if it returns no rows.
    pub result: Option<RelationDesc>,
}

/// A handle on the coordinator, one per connection (clone it freely).
#[derive(Clone, Debug)]
pub struct Client {
    commands: crossbeam_channel::Sender<Command>,
}

fn coordinator_gone() -> AdapterError {
    AdapterError {
        code: "57P01".into(),
        message: "terminating connection because the coordinator stopped".into(),
        detail: None,
        hint: None,
        position: None,
    }
}

impl Client {
    pub fn new(commands: crossbeam_channel::Sender<Command>) -> Self {
        Client { commands }
    }

    /// Executes every statement in `sql`, in order (simple query protocol). Stops at the
    /// first error, returning the responses of the statements before it and the error.
    pub async fn execute_simple(
        &self,
        session: &mut Session,
        sql: &str,
    ) -> (Vec<ExecuteResponse>, Option<AdapterError>) {
        let statements = match sql::parse::parse(sql) {
            Ok(s) => s,
            Err(e) => return (vec![], Some(e.into())),
        };
        if statements.is_empty() {
            return (vec![ExecuteResponse::EmptyQuery], None);
        }
        let (reply, rx) = oneshot::channel();
        let command = Command::Execute {
            session: session.clone(),
            statements,
            params: Params::default(),
            reply,
        };
        if self.commands.send(command).is_err() {
            return (vec![], Some(coordinator_gone()));
        }
        match rx.await {
            Ok((s, responses, error)) => {
                *session = s;
                (responses, error)
            }
            Err(_) => (vec![], Some(coordinator_gone())),
        }
    }

    /// Describes one statement that may contain `$n` parameters (Parse + Describe).
    /// `param_types` are the types the client declared in Parse (`None`: infer).
    pub async fn describe(
        &self,
        session: &mut Session,
        sql: &str,
        param_types: &[Option<ScalarType>],
    ) -> Result<StatementDesc, AdapterError> {
        let mut statements = sql::parse::parse(sql)?;
        let statement = match statements.len() {
            0 => {
                return Ok(StatementDesc {
                    param_types: vec![],
                    result: None,
                })
            }
            1 => statements.remove(0),
            _ => {
                return Err(AdapterError {
                    code: "42601".into(),
                    message: "cannot insert multiple commands into a prepared statement".into(),
                    detail: None,
                    hint: None,
                    position: None,
                })
            }
        };
        let (reply, rx) = oneshot::channel();
        let command = Command::Describe {
            session: session.clone(),
            statement,
            param_types: param_types.to_vec(),
            reply,
        };
        self.commands
            .send(command)
            .map_err(|_| coordinator_gone())?;
        let (s, result) = rx.await.map_err(|_| coordinator_gone())?;
        *session = s;
        result
    }

    /// Executes one statement with its parameters as PostgreSQL text (`None` = NULL) of
    /// the types `describe` returned (extended protocol Bind + Execute).
    pub async fn execute_extended(
        &self,
        session: &mut Session,
        sql: &str,
        params: Vec<Option<String>>,
        param_types: Vec<ScalarType>,
    ) -> Result<ExecuteResponse, AdapterError> {
        let statements = sql::parse::parse(sql)?;
        if statements.is_empty() {
            return Ok(ExecuteResponse::EmptyQuery);
        }
        let params = Params {
            types: param_types.into_iter().map(Some).collect(),
            values: Some(params),
        };
        let (reply, rx) = oneshot::channel();
        let command = Command::Execute {
            session: session.clone(),
            statements,
            params,
            reply,
        };
        self.commands
            .send(command)
            .map_err(|_| coordinator_gone())?;
        let (s, mut responses, error) = rx.await.map_err(|_| coordinator_gone())?;
        *session = s;
        match error {
            Some(e) => Err(e),
            None => Ok(responses.pop().unwrap_or(ExecuteResponse::EmptyQuery)),
        }
    }

    /// Appends the rows a `COPY ... FROM STDIN` received to its table, as one INSERT
    /// (in the session's transaction, if one is open).
    pub async fn copy_rows(
        &self,
        session: &mut Session,
        plan: &sql::streaming::CopyFromPlan,
        rows: Vec<Row>,
    ) -> Result<(), AdapterError> {
        let statement = sql::parse::ParsedStatement {
            statement: sql::parse::Statement::CopyRows {
                id: plan.id,
                name: plan.name.clone(),
                desc: plan.desc.clone(),
                rows,
            },
            sql: format!("COPY {} FROM STDIN", plan.name),
        };
        let (reply, rx) = oneshot::channel();
        let command = Command::Execute {
            session: session.clone(),
            statements: vec![statement],
            params: Params::default(),
            reply,
        };
        self.commands
            .send(command)
            .map_err(|_| coordinator_gone())?;
        let (s, _, error) = rx.await.map_err(|_| coordinator_gone())?;
        *session = s;
        error.map_or(Ok(()), Err)
    }

    /// Cancels the statement running on the connection with this id, if the secret
    /// key matches (a CancelRequest from another socket).
    pub fn cancel(&self, conn_id: u32, secret_key: i32) {
        let _ = self.commands.send(Command::Cancel {
            conn_id,
            secret_key,
        });
    }

    /// The connection closed: its open transaction is rolled back.
    pub fn terminate(&self, conn_id: u32) {
        let _ = self.commands.send(Command::Terminate { conn_id });
    }
}
