//! The [`AsyncDB`] implementation: runs SQL on a PostgreSQL-protocol server
//! through tokio-postgres and formats results per the SQLite conventions.
//!
//! Values are fetched with the simple query protocol, so they all arrive as
//! text. For `query` records the statement is also prepared first to learn the
//! column types (integer, float, numeric, bool, text), because the text alone
//! cannot tell a boolean `t` from the string `t`.
//!
//! The expected type string of the record being run is handed over through a
//! shared [`RecordContext`]: the crate's `AsyncDB::run` only receives the SQL,
//! but the formatting (and therefore sorting and hashing, which the crate does
//! on our output) depends on the record's `I`/`R`/`T` letters.
//!
//! Every call is bounded by a timeout. On timeout or when the connection is
//! lost the connection is dropped and re-established on the next call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use slt::{AsyncDB, DBOutput};
use tokio::task::JoinHandle;
use tokio_postgres::error::Severity;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

use crate::format::{format_value, SltColumnType, ValueKind};

/// What the runner tells the database about the record it is about to run.
#[derive(Debug, Clone, Default)]
pub struct RecordContext {
    /// `Some(types)` for `query` records (possibly empty when the record has
    /// no type string), `None` for statements.
    pub query_types: Option<Vec<SltColumnType>>,
}

/// Shared handle on the current record's context.
pub type SharedContext = Arc<Mutex<RecordContext>>;

/// An error returned by the database or the connection.
#[derive(Debug, Clone)]
pub struct DbError {
    message: String,
    sqlstate: Option<String>,
    /// The connection is unusable and must be re-established.
    connection_lost: bool,
}

impl DbError {
    fn connection(message: String) -> Self {
        DbError {
            message,
            sqlstate: None,
            connection_lost: true,
        }
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DbError {}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => {
                let fatal = matches!(
                    db.parsed_severity(),
                    Some(Severity::Fatal | Severity::Panic)
                );
                DbError {
                    message: format!("{}: {}", db.code().code(), db.message()),
                    sqlstate: Some(db.code().code().to_string()),
                    connection_lost: fatal || e.is_closed(),
                }
            }
            None => DbError::connection(error_chain(&e)),
        }
    }
}

/// `error: cause: cause...`, since tokio-postgres' own message is terse.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A live connection: the client and the task driving its socket.
struct Connection {
    client: Client,
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A (re)connecting PostgreSQL-protocol database for the runner.
pub struct PgDb {
    config: Config,
    context: SharedContext,
    timeout: Duration,
    conn: Option<Connection>,
}

impl PgDb {
    /// Creates the database handle; the connection is opened lazily.
    pub fn new(config: Config, context: SharedContext, timeout: Duration) -> Self {
        PgDb {
            config,
            context,
            timeout,
            conn: None,
        }
    }

    async fn client(&mut self) -> Result<&Client, DbError> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                let (client, connection) = self.config.connect(NoTls).await.map_err(|e| {
                    DbError::connection(format!("cannot connect: {}", error_chain(&e)))
                })?;
                let task = tokio::spawn(async move {
                    // The error, if any, surfaces on the next client call.
                    let _ = connection.await;
                });
                Connection { client, task }
            }
        };
        Ok(&self.conn.insert(conn).client)
    }

    /// Runs `sql`, formatting rows per `query_types` when it is a query.
    async fn execute(
        &mut self,
        sql: &str,
        query_types: Option<Vec<SltColumnType>>,
    ) -> Result<DBOutput<SltColumnType>, DbError> {
        let client = self.client().await?;

        // Learn the column types of queries. Statements the server cannot
        // prepare (several statements, utility commands...) still run below.
        let kinds: Option<Vec<ValueKind>> = match query_types {
            Some(_) => match client.prepare(sql).await {
                Ok(statement) => Some(
                    statement
                        .columns()
                        .iter()
                        .map(|c| ValueKind::from_pg_type(c.type_()))
                        .collect(),
                ),
                Err(e) if e.as_db_error().is_none() => return Err(e.into()),
                Err(_) => None,
            },
            None => None,
        };

        let messages = client.simple_query(sql).await?;

        // Keep the last result set that had a row description.
        let mut result: Option<(usize, Vec<Vec<Option<String>>>)> = None;
        let mut count = 0;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(columns) => {
                    result = Some((columns.len(), Vec::new()));
                }
                SimpleQueryMessage::Row(row) => {
                    let values: Vec<Option<String>> = (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect();
                    match &mut result {
                        Some((_, rows)) => rows.push(values),
                        None => result = Some((values.len(), vec![values])),
                    }
                }
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }

        let Some((ncols, raw_rows)) = result else {
            return Ok(DBOutput::StatementComplete(count));
        };
        Ok(format_rows(ncols, raw_rows, kinds, query_types.as_deref()))
    }

    /// Drops the connection after asking the server to cancel what it runs.
    async fn abandon_connection(&mut self) {
        if let Some(conn) = self.conn.take() {
            let token = conn.client.cancel_token();
            let _ = tokio::time::timeout(Duration::from_secs(5), token.cancel_query(NoTls)).await;
        }
    }
}

/// Turns raw text rows into formatted rows and the column types to report.
///
/// The record's letters are used when their count matches the result;
/// otherwise letters are inferred from the column types (so a column count
/// mismatch is reported, and `--complete` can fill in missing type strings).
fn format_rows(
    ncols: usize,
    raw_rows: Vec<Vec<Option<String>>>,
    kinds: Option<Vec<ValueKind>>,
    query_types: Option<&[SltColumnType]>,
) -> DBOutput<SltColumnType> {
    let kinds = kinds
        .filter(|k| k.len() == ncols)
        .unwrap_or_else(|| vec![ValueKind::Unknown; ncols]);
    let types: Vec<SltColumnType> = match query_types {
        Some(types) if types.len() == ncols => types.to_vec(),
        _ => kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                kind.infer_letter(
                    raw_rows
                        .iter()
                        .map(move |row| row.get(i).and_then(|v| v.as_deref())),
                )
            })
            .collect(),
    };
    let rows = raw_rows
        .iter()
        .map(|row| {
            (0..ncols)
                .map(|i| format_value(row.get(i).and_then(|v| v.as_deref()), kinds[i], types[i]))
                .collect()
        })
        .collect();
    DBOutput::Rows { types, rows }
}

#[async_trait]
impl AsyncDB for PgDb {
    type Error = DbError;
    type ColumnType = SltColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<SltColumnType>, DbError> {
        let query_types = self
            .context
            .lock()
            .map(|ctx| ctx.query_types.clone())
            .unwrap_or_default();
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.execute(sql, query_types)).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(e)) => {
                if e.connection_lost {
                    self.conn = None;
                }
                Err(e)
            }
            Err(_) => {
                self.abandon_connection().await;
                Err(DbError::connection(format!(
                    "timed out after {}s (connection reset)",
                    timeout.as_secs_f64()
                )))
            }
        }
    }

    async fn shutdown(&mut self) {
        self.conn = None;
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }

    async fn run_command(command: std::process::Command) -> std::io::Result<std::process::Output> {
        tokio::process::Command::from(command).output().await
    }

    fn error_sql_state(err: &Self::Error) -> Option<String> {
        err.sqlstate.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(output: DBOutput<SltColumnType>) -> (Vec<SltColumnType>, Vec<Vec<String>>) {
        match output {
            DBOutput::Rows { types, rows } => (types, rows),
            _ => panic!("expected rows"),
        }
    }

    #[test]
    fn formats_by_record_letters() {
        let raw = vec![
            vec![Some("1".into()), Some("2.75".into()), Some("".into())],
            vec![None, Some("-2.75".into()), Some("x".into())],
        ];
        let kinds = vec![ValueKind::Int, ValueKind::Numeric, ValueKind::Text];
        let letters = [
            SltColumnType::INTEGER,
            SltColumnType::INTEGER,
            SltColumnType::TEXT,
        ];
        let (types, rows) = rows(format_rows(3, raw, Some(kinds), Some(&letters)));
        assert_eq!(types, letters.to_vec());
        assert_eq!(
            rows,
            vec![vec!["1", "2", "(empty)"], vec!["NULL", "-2", "x"]]
        );
    }

    #[test]
    fn infers_letters_without_type_string() {
        let raw = vec![vec![Some("1".into()), Some("2.5".into()), Some("t".into())]];
        let kinds = vec![ValueKind::Int, ValueKind::Float, ValueKind::Bool];
        let (types, rows) = rows(format_rows(3, raw, Some(kinds), Some(&[])));
        assert_eq!(
            types,
            vec![
                SltColumnType::INTEGER,
                SltColumnType::REAL,
                SltColumnType::TEXT
            ]
        );
        assert_eq!(rows, vec![vec!["1", "2.500", "t"]]);
    }
}
