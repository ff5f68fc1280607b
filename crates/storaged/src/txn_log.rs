//! The transaction log: what makes a write to several tables atomic.
//!
//! A write to one table is one `compare_and_append`, atomic by itself. A write to
//! several tables is first recorded whole (its timestamp and every table's rows) under
//! one consensus key with a compare-and-set; that record is the commit point. Only then
//! are the rows appended to each table's shard. After a crash, [`TxnLog::recover`]
//! appends the recorded rows to every table whose shard's upper has not passed the
//! write's timestamp, before any other write or upper advance: either every table gets
//! the transaction's rows or (if the crash came before the record) none does.
//!
//! The log holds only the latest multi-table write; applying it again is a no-op,
//! because a table that has it is past its timestamp.

use persist::{CasResult, Consensus, SeqNo, VersionedData};
use repr::{Diff, Row, Timestamp};
use serde::{Deserialize, Serialize};

/// The consensus key of the log.
const KEY: &str = "storaged-txn-log";
/// The version byte of [`TxnRecord`]'s encoding.
const FORMAT: u8 = 1;

/// One multi-table write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxnRecord {
    pub write_ts: Timestamp,
    /// Each table's shard (text form) and the rows written to it.
    pub writes: Vec<(String, Vec<(Row, Diff)>)>,
}

/// The log, as last read or written by this process.
#[derive(Debug, Default)]
pub struct TxnLog {
    seqno: Option<SeqNo>,
    loaded: bool,
}

impl TxnLog {
    /// Reads the recorded write, if any, remembering where the log stands.
    pub fn load(&mut self, consensus: &dyn Consensus) -> Result<Option<TxnRecord>, String> {
        let head = consensus.head(KEY).map_err(|e| e.to_string())?;
        self.loaded = true;
        let Some(head) = head else {
            self.seqno = None;
            return Ok(None);
        };
        self.seqno = Some(head.seqno);
        persist::codec::decode_versioned("transaction log", FORMAT, &head.data)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// Records `record` durably: once this returns `Ok`, the write is committed.
    pub fn record(&mut self, consensus: &dyn Consensus, record: &TxnRecord) -> Result<(), String> {
        if !self.loaded {
            self.load(consensus)?;
        }
        let data = persist::codec::encode_versioned("transaction log", FORMAT, record)
            .map_err(|e| e.to_string())?;
        let seqno = self.seqno.map_or(SeqNo(0), SeqNo::next);
        match consensus
            .compare_and_set(KEY, self.seqno, VersionedData { seqno, data })
            .map_err(|e| e.to_string())?
        {
            CasResult::Committed => {
                self.seqno = Some(seqno);
                // Earlier records are applied: only the latest is ever needed.
                let _ = consensus.truncate(KEY, seqno);
                Ok(())
            }
            CasResult::ExpectationMismatch => {
                // Someone else wrote the log (another storaged on the same store).
                self.loaded = false;
                Err("the transaction log was changed by another process".into())
            }
        }
    }
}
