//! [`SqliteConsensus`]: consensus logs in an SQLite table (the default backend).
//!
//! One table, `consensus(shard, seqno, data)`, primary key `(shard, seqno)`. A
//! compare-and-set reads the head and inserts the next entry inside one `IMMEDIATE`
//! transaction, which takes SQLite's write lock before the read, so two writers (threads
//! or processes on the same file) can never both commit the same seqno. The database
//! runs in WAL mode with a busy timeout, so processes wait for each other's locks.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::location::{
    check_next_seqno, CasResult, Consensus, ExternalError, SeqNo, VersionedData,
};

/// How long an operation waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Consensus logs in an SQLite database file.
#[derive(Debug)]
pub struct SqliteConsensus {
    conn: Mutex<Connection>,
}

fn err(op: &str, e: rusqlite::Error) -> ExternalError {
    ExternalError::determinate(format!("sqlite consensus {op}: {e}"))
}

fn to_sql(seqno: SeqNo) -> Result<i64, ExternalError> {
    i64::try_from(seqno.0)
        .map_err(|_| ExternalError::determinate(format!("seqno {seqno} is out of range")))
}

fn from_sql(seqno: i64) -> Result<SeqNo, ExternalError> {
    u64::try_from(seqno)
        .map(SeqNo)
        .map_err(|_| ExternalError::determinate(format!("stored seqno {seqno} is negative")))
}

impl SqliteConsensus {
    /// Opens (creating if needed) the database at `path` and its parent directory.
    pub fn open(path: &Path) -> Result<Self, ExternalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                ExternalError::determinate(format!("creating {}: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(path).map_err(|e| err("open", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| err("busy_timeout", e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| err("journal_mode", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "sqlite consensus is not in WAL mode");
        }
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS consensus (
                 shard TEXT NOT NULL,
                 seqno INTEGER NOT NULL,
                 data BLOB NOT NULL,
                 PRIMARY KEY (shard, seqno)
             );",
        )
        .map_err(|e| err("create table", e))?;
        Ok(SqliteConsensus {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // SQLite rolls back any transaction a panicking holder left open.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn head(conn: &Connection, key: &str) -> Result<Option<VersionedData>, ExternalError> {
    let row = conn
        .query_row(
            "SELECT seqno, data FROM consensus WHERE shard = ?1 ORDER BY seqno DESC LIMIT 1",
            params![key],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)),
        )
        .optional()
        .map_err(|e| err("head", e))?;
    row.map(|(seqno, data)| {
        Ok(VersionedData {
            seqno: from_sql(seqno)?,
            data,
        })
    })
    .transpose()
}

impl Consensus for SqliteConsensus {
    fn head(&self, key: &str) -> Result<Option<VersionedData>, ExternalError> {
        head(&self.conn(), key)
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<SeqNo>,
        new: VersionedData,
    ) -> Result<CasResult, ExternalError> {
        check_next_seqno(key, expected, new.seqno)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| err("begin", e))?;
        let current: Option<i64> = tx
            .query_row(
                "SELECT MAX(seqno) FROM consensus WHERE shard = ?1",
                params![key],
                |row| row.get(0),
            )
            .map_err(|e| err("read head", e))?;
        let current = current.map(from_sql).transpose()?;
        if current != expected {
            return Ok(CasResult::ExpectationMismatch);
        }
        tx.execute(
            "INSERT INTO consensus (shard, seqno, data) VALUES (?1, ?2, ?3)",
            params![key, to_sql(new.seqno)?, new.data],
        )
        .map_err(|e| err("insert", e))?;
        // A failed COMMIT may or may not have reached the disk.
        tx.commit()
            .map_err(|e| ExternalError::indeterminate(format!("sqlite consensus commit: {e}")))?;
        Ok(CasResult::Committed)
    }

    fn scan(
        &self,
        key: &str,
        from: SeqNo,
        limit: usize,
    ) -> Result<Vec<VersionedData>, ExternalError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seqno, data FROM consensus WHERE shard = ?1 AND seqno >= ?2
                 ORDER BY seqno ASC LIMIT ?3",
            )
            .map_err(|e| err("scan", e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![key, to_sql(from)?, limit], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| err("scan", e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seqno, data) = row.map_err(|e| err("scan", e))?;
            out.push(VersionedData {
                seqno: from_sql(seqno)?,
                data,
            });
        }
        Ok(out)
    }

    fn truncate(&self, key: &str, seqno: SeqNo) -> Result<usize, ExternalError> {
        // The head is spared by the subquery, so truncating past it keeps exactly it.
        self.conn()
            .execute(
                "DELETE FROM consensus WHERE shard = ?1 AND seqno < ?2 AND seqno <
                 (SELECT MAX(seqno) FROM consensus WHERE shard = ?1)",
                params![key, to_sql(seqno)?],
            )
            .map_err(|e| ExternalError::indeterminate(format!("sqlite consensus truncate: {e}")))
    }
}
