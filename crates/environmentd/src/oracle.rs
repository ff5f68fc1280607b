//! The timestamp oracle: write timestamps for table writes, read timestamps for queries.
//!
//! Timestamps are milliseconds since the epoch. Write timestamps strictly increase and
//! follow the wall clock when it is ahead. A read at [`TimestampOracle::read_ts`] sees
//! every write applied before it was asked (read-your-writes, strict serializability
//! for tables). To stay monotonic across restarts, the oracle durably records a
//! ceiling ahead of the timestamps it hands out and starts above it after a restart.

use std::sync::Arc;

use persist::location::{CasResult, Consensus, SeqNo, VersionedData};
use repr::Timestamp;

const ORACLE_KEY: &str = "timestamp_oracle";
const ORACLE_FORMAT: u8 = 1;
/// How far ahead of the latest timestamp the durable ceiling is set.
const CEILING_WINDOW_MS: u64 = 1_000;

pub struct TimestampOracle {
    consensus: Arc<dyn Consensus>,
    seqno: Option<SeqNo>,
    /// No timestamp at or above this has been handed out, by this or an earlier process.
    ceiling: Timestamp,
    /// The latest write timestamp handed out.
    write_ts: Timestamp,
    /// The latest write timestamp whose write was applied.
    read_ts: Timestamp,
    now: fn() -> Timestamp,
}

impl TimestampOracle {
    /// Opens the oracle, starting above every timestamp an earlier process handed out.
    pub fn open(consensus: Arc<dyn Consensus>, now: fn() -> Timestamp) -> Result<Self, String> {
        let head = consensus.head(ORACLE_KEY).map_err(|e| e.to_string())?;
        let (seqno, ceiling) = match head {
            None => (None, 0),
            Some(data) => {
                let ceiling: Timestamp =
                    persist::codec::decode_versioned("timestamp oracle", ORACLE_FORMAT, &data.data)
                        .map_err(|e| e.to_string())?;
                (Some(data.seqno), ceiling)
            }
        };
        let mut oracle = TimestampOracle {
            consensus,
            seqno,
            ceiling,
            write_ts: ceiling,
            read_ts: ceiling,
            now,
        };
        oracle.raise_ceiling(ceiling.max(now()) + CEILING_WINDOW_MS)?;
        Ok(oracle)
    }

    fn raise_ceiling(&mut self, ceiling: Timestamp) -> Result<(), String> {
        let data = persist::codec::encode_versioned("timestamp oracle", ORACLE_FORMAT, &ceiling)
            .map_err(|e| e.to_string())?;
        let seqno = self.seqno.map(SeqNo::next).unwrap_or(SeqNo(0));
        match self
            .consensus
            .compare_and_set(ORACLE_KEY, self.seqno, VersionedData { seqno, data })
            .map_err(|e| e.to_string())?
        {
            CasResult::Committed => {
                self.seqno = Some(seqno);
                self.ceiling = ceiling;
                let _ = self.consensus.truncate(ORACLE_KEY, seqno);
                Ok(())
            }
            CasResult::ExpectationMismatch => {
                Err("another environmentd advanced the timestamp oracle".into())
            }
        }
    }

    /// A new write timestamp, after every timestamp handed out so far.
    pub fn write_ts(&mut self) -> Result<Timestamp, String> {
        let ts = (self.now)().max(self.write_ts + 1);
        if ts >= self.ceiling {
            self.raise_ceiling(ts + CEILING_WINDOW_MS)?;
        }
        self.write_ts = ts;
        Ok(ts)
    }

    /// Records that the write at `ts` is applied (durable in every table it touched).
    pub fn apply_write(&mut self, ts: Timestamp) {
        self.read_ts = self.read_ts.max(ts);
    }

    /// The timestamp a strict-serializable read uses: it includes every applied write.
    pub fn read_ts(&self) -> Timestamp {
        self.read_ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frozen_clock() -> Timestamp {
        1_000
    }

    #[test]
    fn monotonic_across_restarts_even_when_the_clock_stands_still() {
        let consensus: Arc<dyn Consensus> = Arc::new(persist::mem::MemConsensus::new());
        let mut first = TimestampOracle::open(Arc::clone(&consensus), frozen_clock).unwrap();
        let mut last = 0;
        for _ in 0..2_500 {
            let ts = first.write_ts().unwrap();
            assert!(ts > last);
            first.apply_write(ts);
            last = ts;
        }
        assert_eq!(first.read_ts(), last);
        drop(first);
        let mut second = TimestampOracle::open(consensus, frozen_clock).unwrap();
        assert!(second.write_ts().unwrap() > last);
        assert!(second.read_ts() > last);
    }
}
