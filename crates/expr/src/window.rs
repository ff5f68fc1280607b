//! Window functions, computed as an aggregate over one partition.
//!
//! A window function's value for a row depends on the other rows of its partition, so
//! the planner computes windows as a `Reduce` keyed by the partition whose one
//! aggregate, [`crate::AggregateFunc::Window`] with a [`WindowPlan`], sees the whole
//! partition (each row packed into a record) and returns the partition's rows, each
//! followed by its window values, packed into one `bytea` ([`pack_rows`]). A `FlatMap`
//! of [`crate::TableFunc::UnpackRows`] turns that value back into rows. When a
//! partition changes, its value is recomputed and differential retracts the old rows
//! and inserts the new ones: the unchanged rows cancel, so the result is maintained
//! incrementally, one partition at a time.
//!
//! Rows of multiplicity n take n positions. Rows that tie on the ORDER BY keys are
//! ordered by their whole record, so every value is deterministic (PostgreSQL leaves
//! the order of peers unspecified).

use std::cmp::Ordering;
use std::fmt;

use repr::adt::timestamp_add_interval;
use repr::{ColumnType, Datum, EvalError, Row, RowPacker, ScalarType};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::agg::AggregateFunc;
use crate::finishing::{compare_rows, ColumnOrder};
use crate::scalar::RowArena;

/// A window function.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WindowFunc {
    RowNumber,
    Rank,
    DenseRank,
    PercentRank,
    CumeDist,
    /// `ntile(buckets)`.
    Ntile,
    /// `lag(value, offset, default)`; the planner supplies the defaults 1 and NULL.
    Lag,
    /// `lead(value, offset, default)`.
    Lead,
    FirstValue,
    LastValue,
    /// `nth_value(value, n)`.
    NthValue,
    /// An aggregate over the frame; its one argument is planned as for GROUP BY.
    Aggregate(AggregateFunc),
}

/// The unit a frame's offsets count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FrameUnits {
    /// Physical rows.
    Rows,
    /// Values of the (single) ORDER BY key; `CURRENT ROW` means the row's peers.
    Range,
    /// Peer groups (rows that tie on the ORDER BY keys); `CURRENT ROW` means the row's
    /// peers.
    Groups,
}

/// One end of a frame. Offsets are literals: a `bigint` for `ROWS` and `GROUPS`, a value to add
/// to or subtract from the ORDER BY key for `RANGE` (of the key's type, or an
/// interval for a timestamp key).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FrameBound {
    UnboundedPreceding,
    Preceding(Row),
    CurrentRow,
    Following(Row),
    UnboundedFollowing,
}

/// `{ROWS | RANGE | GROUPS} BETWEEN start AND end`. The default frame (no frame clause) is
/// `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`, which without ORDER BY is the
/// whole partition (every row is a peer of every other).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WindowFrame {
    pub units: FrameUnits,
    pub start: FrameBound,
    pub end: FrameBound,
}

impl Default for WindowFrame {
    fn default() -> Self {
        WindowFrame {
            units: FrameUnits::Range,
            start: FrameBound::UnboundedPreceding,
            end: FrameBound::CurrentRow,
        }
    }
}

/// One window function call: the record fields it reads and its frame (which only
/// the aggregates and `first_value`, `last_value`, `nth_value` look at).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WindowCall {
    pub func: WindowFunc,
    pub args: Vec<usize>,
    pub frame: WindowFrame,
}

/// The window calls that share one `PARTITION BY` (the `Reduce`'s key) and one
/// `ORDER BY` (`order_by`, over the fields of the rows' records).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WindowPlan {
    pub order_by: Vec<ColumnOrder>,
    pub calls: Vec<WindowCall>,
}

impl WindowCall {
    /// The result type, given the types of the record's fields.
    pub fn output_type(&self, record: &[ColumnType]) -> ColumnType {
        let arg = |i: usize| {
            self.args
                .get(i)
                .and_then(|c| record.get(*c))
                .copied()
                .unwrap_or(ScalarType::String.nullable(true))
        };
        match &self.func {
            WindowFunc::RowNumber | WindowFunc::Rank | WindowFunc::DenseRank => {
                ScalarType::Int64.nullable(false)
            }
            WindowFunc::PercentRank | WindowFunc::CumeDist => ScalarType::Float64.nullable(false),
            WindowFunc::Ntile => ScalarType::Int32.nullable(true),
            WindowFunc::Lag
            | WindowFunc::Lead
            | WindowFunc::FirstValue
            | WindowFunc::LastValue
            | WindowFunc::NthValue => arg(0).scalar_type.nullable(true),
            WindowFunc::Aggregate(func) => func.output_type(arg(0)),
        }
    }
}

impl WindowPlan {
    /// The types of the rows the aggregate packs: the record's fields, then one
    /// column per call.
    pub fn output_types(&self, record: &[ColumnType]) -> Vec<ColumnType> {
        let mut types = record.to_vec();
        types.extend(self.calls.iter().map(|c| c.output_type(record)));
        types
    }

    /// Computes the window values of one partition, from its records (`bytea` rows
    /// with multiplicities), and packs every row with its values.
    pub fn eval<'a>(
        &self,
        values: impl Iterator<Item = (Datum<'a>, i64)>,
        arena: &'a RowArena,
    ) -> Result<Datum<'a>, EvalError> {
        let mut records = Vec::new();
        for (d, n) in values {
            let Datum::Bytes(bytes) = d else {
                return Err(EvalError::Internal(format!(
                    "window aggregate over a non-record value: {d:?}"
                )));
            };
            let row = Row::from_bytes(bytes.to_vec())
                .ok_or_else(|| EvalError::Internal("window over a malformed record".into()))?;
            for _ in 0..n.max(0) {
                records.push(row.clone());
            }
        }
        let rows: Vec<Vec<Datum>> = records.iter().map(|r| r.unpack()).collect();
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by(
            |a, b| match compare_rows(&self.order_by, &rows[*a], &rows[*b]) {
                Ordering::Equal => records[*a].cmp(&records[*b]),
                other => other,
            },
        );
        let sorted: Vec<&[Datum]> = order.iter().map(|i| rows[*i].as_slice()).collect();
        let local = RowArena::new();
        let partition = Partition::new(&sorted, &self.order_by);
        let mut columns = Vec::with_capacity(self.calls.len());
        for call in &self.calls {
            columns.push(partition.eval(call, &self.order_by, &local)?);
        }
        let mut packer = RowPacker::new();
        let mut rows_out = Vec::with_capacity(sorted.len());
        for (i, row) in sorted.iter().enumerate() {
            packer.extend(row.iter().copied());
            packer.extend(columns.iter().map(|c| c[i]));
            rows_out.push(packer.finish_and_reuse());
        }
        Ok(Datum::Bytes(arena.push_bytes(pack_rows(&rows_out))))
    }
}

/// The sorted rows of one partition, with their peer groups.
struct Partition<'r, 'd> {
    rows: &'r [&'r [Datum<'d>]],
    /// For each row, the index of its first peer and one past its last.
    peers: Vec<(usize, usize)>,
    /// For each row, the number of peer groups before its own.
    group: Vec<usize>,
    /// The index of each peer group's first row, then the number of rows.
    group_starts: Vec<usize>,
    /// The rows whose first ORDER BY key is not NULL (for RANGE offsets).
    non_null: (usize, usize),
}

impl<'r, 'd> Partition<'r, 'd> {
    fn new(rows: &'r [&'r [Datum<'d>]], order_by: &[ColumnOrder]) -> Self {
        let n = rows.len();
        let mut peers = vec![(0, 0); n];
        let mut group = vec![0; n];
        let mut start = 0;
        let mut groups = 0;
        let mut group_starts = Vec::new();
        while start < n {
            group_starts.push(start);
            let mut end = start + 1;
            while end < n && compare_rows(order_by, rows[start], rows[end]) == Ordering::Equal {
                end += 1;
            }
            for i in start..end {
                peers[i] = (start, end);
                group[i] = groups;
            }
            groups += 1;
            start = end;
        }
        group_starts.push(n);
        let non_null = match order_by.first() {
            None => (0, n),
            Some(key) => {
                let is_null = |j: &usize| rows[*j][key.column].is_null();
                if key.nulls_last {
                    (0, (0..n).find(is_null).unwrap_or(n))
                } else {
                    ((0..n).find(|j| !is_null(j)).unwrap_or(n), n)
                }
            }
        };
        Partition {
            rows,
            peers,
            group,
            group_starts,
            non_null,
        }
    }

    /// The values of one call, one per row.
    fn eval<'a>(
        &self,
        call: &WindowCall,
        order_by: &[ColumnOrder],
        arena: &'a RowArena,
    ) -> Result<Vec<Datum<'a>>, EvalError>
    where
        'd: 'a,
        'r: 'a,
    {
        let n = self.rows.len();
        let arg = |i: usize, a: usize| -> Datum<'d> {
            call.args
                .get(a)
                .map(|c| self.rows[i][*c])
                .unwrap_or(Datum::Null)
        };
        let mut out = Vec::with_capacity(n);
        match &call.func {
            WindowFunc::RowNumber => out.extend((0..n).map(|i| Datum::Int64(i as i64 + 1))),
            WindowFunc::Rank => {
                out.extend((0..n).map(|i| Datum::Int64(self.peers[i].0 as i64 + 1)))
            }
            WindowFunc::DenseRank => {
                out.extend((0..n).map(|i| Datum::Int64(self.group[i] as i64 + 1)))
            }
            WindowFunc::PercentRank => out.extend((0..n).map(|i| {
                Datum::Float64(if n > 1 {
                    self.peers[i].0 as f64 / (n - 1) as f64
                } else {
                    0.0
                })
            })),
            WindowFunc::CumeDist => {
                out.extend((0..n).map(|i| Datum::Float64(self.peers[i].1 as f64 / n as f64)))
            }
            WindowFunc::Ntile => {
                // PostgreSQL reads the bucket count once per partition, on its first row.
                let buckets = match (n > 0).then(|| arg(0, 0)) {
                    None | Some(Datum::Null) => None,
                    Some(Datum::Int32(b)) if b <= 0 => return Err(EvalError::InvalidNtileArgument),
                    Some(Datum::Int32(b)) => Some(b as usize),
                    Some(other) => {
                        return Err(EvalError::Internal(format!("ntile of {other:?}")));
                    }
                };
                match buckets {
                    None => out.extend((0..n).map(|_| Datum::Null)),
                    Some(b) => {
                        // The first n % b buckets hold one row more than the others.
                        let (per, extra) = (n / b, n % b);
                        for i in 0..n {
                            let big = extra * (per + 1);
                            let bucket = if i < big {
                                i / (per + 1)
                            } else {
                                extra + (i - big) / per.max(1)
                            };
                            out.push(Datum::Int32(bucket as i32 + 1));
                        }
                    }
                }
            }
            WindowFunc::Lag | WindowFunc::Lead => {
                for i in 0..n {
                    let offset = match arg(i, 1) {
                        Datum::Null => {
                            out.push(Datum::Null);
                            continue;
                        }
                        Datum::Int32(o) => o as i64,
                        Datum::Int64(o) => o,
                        other => return Err(EvalError::Internal(format!("lag offset {other:?}"))),
                    };
                    let target = if call.func == WindowFunc::Lag {
                        (i as i64).checked_sub(offset)
                    } else {
                        (i as i64).checked_add(offset)
                    };
                    out.push(match target {
                        Some(t) if t >= 0 && (t as usize) < n => arg(t as usize, 0),
                        _ => arg(i, 2),
                    });
                }
            }
            WindowFunc::Aggregate(func)
                if call.frame.start == FrameBound::UnboundedPreceding
                    && func.running().is_some() =>
            {
                // The frame only grows: add each row once, read the value per row.
                let mut running = func.running().expect("checked above");
                let mut added = 0;
                for i in 0..n {
                    let (_, end) = self.frame(i, &call.frame, order_by)?;
                    while added < end {
                        running.add(arg(added, 0))?;
                        added += 1;
                    }
                    out.push(running.value()?);
                }
            }
            WindowFunc::FirstValue
            | WindowFunc::LastValue
            | WindowFunc::NthValue
            | WindowFunc::Aggregate(_) => {
                let mut previous: Option<((usize, usize), Datum<'a>)> = None;
                for i in 0..n {
                    let (start, end) = self.frame(i, &call.frame, order_by)?;
                    // Peers often share a frame: reuse the value.
                    if let Some((frame, value)) = previous {
                        if frame == (start, end) && !matches!(call.func, WindowFunc::NthValue) {
                            out.push(value);
                            continue;
                        }
                    }
                    let value = match &call.func {
                        WindowFunc::FirstValue => {
                            if start < end {
                                arg(start, 0)
                            } else {
                                Datum::Null
                            }
                        }
                        WindowFunc::LastValue => {
                            if start < end {
                                arg(end - 1, 0)
                            } else {
                                Datum::Null
                            }
                        }
                        WindowFunc::NthValue => {
                            let k = match arg(i, 1) {
                                Datum::Null => {
                                    out.push(Datum::Null);
                                    continue;
                                }
                                Datum::Int32(k) if k <= 0 => {
                                    return Err(EvalError::InvalidNthValueArgument)
                                }
                                Datum::Int32(k) => k as usize,
                                other => {
                                    return Err(EvalError::Internal(format!(
                                        "nth_value of {other:?}"
                                    )))
                                }
                            };
                            if start + k - 1 < end {
                                arg(start + k - 1, 0)
                            } else {
                                Datum::Null
                            }
                        }
                        WindowFunc::Aggregate(func) => {
                            func.eval((start..end).map(|j| (arg(j, 0), 1)), arena)?
                        }
                        _ => unreachable!("matched above"),
                    };
                    previous = Some(((start, end), value));
                    out.push(value);
                }
            }
        }
        Ok(out)
    }

    /// The frame of row `i`: the range of sorted rows `[start, end)`.
    fn frame(
        &self,
        i: usize,
        frame: &WindowFrame,
        order_by: &[ColumnOrder],
    ) -> Result<(usize, usize), EvalError> {
        let n = self.rows.len();
        let start = match &frame.start {
            FrameBound::UnboundedPreceding => 0,
            FrameBound::CurrentRow => match frame.units {
                FrameUnits::Rows => i,
                FrameUnits::Range | FrameUnits::Groups => self.peers[i].0,
            },
            FrameBound::UnboundedFollowing => n,
            FrameBound::Preceding(offset) | FrameBound::Following(offset) => {
                let preceding = matches!(frame.start, FrameBound::Preceding(_));
                match frame.units {
                    FrameUnits::Rows => rows_offset(i, offset, preceding, n),
                    FrameUnits::Range => self.range_bound(i, offset, preceding, order_by, true)?,
                    FrameUnits::Groups => self.groups_bound(i, offset, preceding, true),
                }
            }
        };
        let end = match &frame.end {
            FrameBound::UnboundedPreceding => 0,
            FrameBound::CurrentRow => match frame.units {
                FrameUnits::Rows => i + 1,
                FrameUnits::Range | FrameUnits::Groups => self.peers[i].1,
            },
            FrameBound::UnboundedFollowing => n,
            FrameBound::Preceding(offset) | FrameBound::Following(offset) => {
                let preceding = matches!(frame.end, FrameBound::Preceding(_));
                match frame.units {
                    FrameUnits::Rows => {
                        if preceding && rows_offset_value(offset) > i as u64 {
                            0
                        } else {
                            (rows_offset(i, offset, preceding, n) + 1).min(n)
                        }
                    }
                    FrameUnits::Range => self.range_bound(i, offset, preceding, order_by, false)?,
                    FrameUnits::Groups => self.groups_bound(i, offset, preceding, false),
                }
            }
        };
        Ok((start, end.max(start)))
    }

    /// For `GROUPS offset PRECEDING/FOLLOWING`: the first row of the peer group `offset`
    /// groups before or after row `i`'s (`is_start`), or one past its last row; a
    /// group before the first is empty, one after the last is the end.
    fn groups_bound(&self, i: usize, offset: &Row, preceding: bool, is_start: bool) -> usize {
        let k = rows_offset_value(offset);
        let groups = (self.group_starts.len() - 1) as u64;
        let g = self.group[i] as u64;
        let target = match (preceding, is_start) {
            // A start before the first group is the first group.
            (true, true) => g.saturating_sub(k),
            // An end before the first group: the frame ends before any row.
            (true, false) if k > g => return 0,
            (true, false) => g - k + 1,
            (false, true) => g.saturating_add(k),
            (false, false) => g.saturating_add(k).saturating_add(1),
        };
        self.group_starts[target.min(groups) as usize]
    }

    /// For `RANGE offset PRECEDING/FOLLOWING`: the first row whose key is at or after
    /// the bound (`is_start`), or one past the last row at or before it. The key is the
    /// single ORDER BY column; NULL keys are peers of each other only.
    fn range_bound(
        &self,
        i: usize,
        offset: &Row,
        preceding: bool,
        order_by: &[ColumnOrder],
        is_start: bool,
    ) -> Result<usize, EvalError> {
        let [key] = order_by else {
            return Err(EvalError::Internal(
                "RANGE with an offset needs exactly one ORDER BY column".into(),
            ));
        };
        let value = self.rows[i][key.column];
        if value.is_null() {
            let (s, e) = self.peers[i];
            return Ok(if is_start { s } else { e });
        }
        let offset = offset.iter().next().unwrap_or(Datum::Null);
        // Moving "preceding" goes against the sort direction.
        let subtract = preceding != key.desc;
        let bound = add_offset(value, offset, subtract)?;
        // Where each key lies against the bound, in sort order.
        let against_bound = |d: Datum| -> Ordering {
            let natural = match &bound {
                Bound::Value(b) => d.cmp(&b.iter().next().unwrap_or(Datum::Null)),
                Bound::Below => Ordering::Greater,
                Bound::Above => Ordering::Less,
            };
            if key.desc {
                natural.reverse()
            } else {
                natural
            }
        };
        let before_bound = |d: Datum| -> bool {
            let ord = against_bound(d);
            if is_start {
                ord == Ordering::Less
            } else {
                ord != Ordering::Greater
            }
        };
        // Non-null keys are contiguous (NULLs sort all first or all last): binary
        // search among them.
        let (mut lo, mut hi) = self.non_null;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if before_bound(self.rows[mid][key.column]) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

fn rows_offset_value(offset: &Row) -> u64 {
    match offset.iter().next() {
        Some(Datum::Int64(k)) => k.max(0) as u64,
        _ => 0,
    }
}

/// Row `i` moved `offset` rows back (`preceding`) or forward, clamped to `[0, n]`.
fn rows_offset(i: usize, offset: &Row, preceding: bool, n: usize) -> usize {
    let k = rows_offset_value(offset);
    if preceding {
        (i as u64).saturating_sub(k) as usize
    } else {
        (i as u64).saturating_add(k).min(n as u64) as usize
    }
}

/// A RANGE bound: a value, or beyond every value of the type.
enum Bound {
    Value(Row),
    Below,
    Above,
}

/// `value - offset` (`subtract`) or `value + offset`, saturating to [`Bound::Below`] /
/// [`Bound::Above`] where the type overflows (PostgreSQL's `in_range` functions treat
/// an overflowing bound as infinitely far).
fn add_offset(value: Datum, offset: Datum, subtract: bool) -> Result<Bound, EvalError> {
    let beyond = if subtract { Bound::Below } else { Bound::Above };
    let decimal = |d: Datum| -> Option<Decimal> {
        Some(match d {
            Datum::Int16(v) => Decimal::from(v),
            Datum::Int32(v) => Decimal::from(v),
            Datum::Int64(v) => Decimal::from(v),
            Datum::Numeric(v) => v,
            _ => return None,
        })
    };
    let float = |d: Datum| -> Option<f64> {
        Some(match d {
            Datum::Float32(v) => v as f64,
            Datum::Float64(v) => v,
            Datum::Int16(v) => v as f64,
            Datum::Int32(v) => v as f64,
            Datum::Int64(v) => v as f64,
            _ => return None,
        })
    };
    let value_row = |d: Datum| Bound::Value(Row::pack_slice(&[d]));
    Ok(match (value, offset) {
        (Datum::Float32(_) | Datum::Float64(_), _) => {
            let (v, o) = (float(value), float(offset));
            match (v, o) {
                (Some(v), Some(o)) => {
                    value_row(Datum::Float64(if subtract { v - o } else { v + o }))
                }
                _ => return Err(offset_type(value, offset)),
            }
        }
        (Datum::Timestamp(t) | Datum::TimestampTz(t), Datum::Interval(iv)) => {
            let iv = if subtract {
                iv.checked_neg()
                    .ok_or_else(|| EvalError::DatetimeOutOfRange("interval".into()))?
            } else {
                iv
            };
            match timestamp_add_interval(t, &iv) {
                Ok(b) => value_row(match value {
                    Datum::Timestamp(_) => Datum::Timestamp(b),
                    _ => Datum::TimestampTz(b),
                }),
                Err(_) => beyond,
            }
        }
        _ => match (decimal(value), decimal(offset)) {
            (Some(v), Some(o)) => {
                let b = if subtract {
                    v.checked_sub(o)
                } else {
                    v.checked_add(o)
                };
                match b {
                    Some(b) => value_row(Datum::Numeric(b)),
                    None => beyond,
                }
            }
            _ => return Err(offset_type(value, offset)),
        },
    })
}

fn offset_type(value: Datum, offset: Datum) -> EvalError {
    EvalError::Internal(format!("RANGE offset {offset:?} for key {value:?}"))
}

/// Packs rows into one byte string: each row's length (`u32`, little-endian), then its
/// bytes.
pub fn pack_rows(rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.iter().map(|r| r.byte_len() + 4).sum());
    for row in rows {
        out.extend_from_slice(&(row.byte_len() as u32).to_le_bytes());
        out.extend_from_slice(row.data());
    }
    out
}

/// The rows [`pack_rows`] packed; malformed bytes are an internal error.
pub fn unpack_rows(mut bytes: &[u8]) -> Result<Vec<Row>, EvalError> {
    let malformed = || EvalError::Internal("malformed packed rows".into());
    let mut rows = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_at_checked(4).ok_or_else(malformed)?;
        let len = u32::from_le_bytes(len.try_into().map_err(|_| malformed())?) as usize;
        let (row, rest) = rest.split_at_checked(len).ok_or_else(malformed)?;
        rows.push(Row::from_bytes(row.to_vec()).ok_or_else(malformed)?);
        bytes = rest;
    }
    Ok(rows)
}

impl fmt::Display for WindowFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowFunc::RowNumber => f.write_str("row_number"),
            WindowFunc::Rank => f.write_str("rank"),
            WindowFunc::DenseRank => f.write_str("dense_rank"),
            WindowFunc::PercentRank => f.write_str("percent_rank"),
            WindowFunc::CumeDist => f.write_str("cume_dist"),
            WindowFunc::Ntile => f.write_str("ntile"),
            WindowFunc::Lag => f.write_str("lag"),
            WindowFunc::Lead => f.write_str("lead"),
            WindowFunc::FirstValue => f.write_str("first_value"),
            WindowFunc::LastValue => f.write_str("last_value"),
            WindowFunc::NthValue => f.write_str("nth_value"),
            WindowFunc::Aggregate(a) => write!(f, "{a}"),
        }
    }
}

impl fmt::Display for FrameBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = |r: &Row| r.iter().next().map(|d| d.to_string()).unwrap_or_default();
        match self {
            FrameBound::UnboundedPreceding => f.write_str("unbounded preceding"),
            FrameBound::Preceding(r) => write!(f, "{} preceding", offset(r)),
            FrameBound::CurrentRow => f.write_str("current row"),
            FrameBound::Following(r) => write!(f, "{} following", offset(r)),
            FrameBound::UnboundedFollowing => f.write_str("unbounded following"),
        }
    }
}

impl fmt::Display for WindowCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args: Vec<String> = self.args.iter().map(|a| format!("#{a}")).collect();
        write!(f, "{}({})", self.func, args.join(", "))?;
        let uses_frame = matches!(
            self.func,
            WindowFunc::FirstValue
                | WindowFunc::LastValue
                | WindowFunc::NthValue
                | WindowFunc::Aggregate(_)
        );
        if uses_frame && self.frame != WindowFrame::default() {
            let units = match self.frame.units {
                FrameUnits::Rows => "rows",
                FrameUnits::Range => "range",
                FrameUnits::Groups => "groups",
            };
            write!(
                f,
                " {units} between {} and {}",
                self.frame.start, self.frame.end
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for WindowPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let calls: Vec<String> = self.calls.iter().map(|c| c.to_string()).collect();
        write!(
            f,
            "window[{}] order_by=[{}]",
            calls.join(", "),
            crate::plan::format_order(&self.order_by)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(k: i32, v: Option<i32>) -> Vec<u8> {
        Row::pack_slice(&[Datum::Int32(k), v.map(Datum::Int32).unwrap_or(Datum::Null)])
            .data()
            .to_vec()
    }

    fn run(plan: &WindowPlan, input: &[(Vec<u8>, i64)]) -> Vec<Vec<String>> {
        let arena = RowArena::new();
        let values = input.iter().map(|(b, n)| (Datum::Bytes(b), *n));
        let Datum::Bytes(packed) = plan.eval(values, &arena).expect("evaluates") else {
            panic!("not bytes")
        };
        unpack_rows(packed)
            .unwrap()
            .iter()
            .map(|r| r.iter().map(|d| d.to_string()).collect())
            .collect()
    }

    fn by_column(column: usize) -> Vec<ColumnOrder> {
        vec![ColumnOrder {
            column,
            desc: false,
            nulls_last: true,
        }]
    }

    #[test]
    fn ranks_count_multiplicities_and_peers() {
        let call = |func| WindowCall {
            func,
            args: vec![],
            frame: WindowFrame::default(),
        };
        let plan = WindowPlan {
            order_by: by_column(1),
            calls: vec![
                call(WindowFunc::RowNumber),
                call(WindowFunc::Rank),
                call(WindowFunc::DenseRank),
            ],
        };
        let out = run(
            &plan,
            &[
                (record(1, Some(10)), 2),
                (record(2, Some(5)), 1),
                (record(3, None), 1),
            ],
        );
        let ranks: Vec<String> = out.iter().map(|r| r[2..].join(" ")).collect();
        assert_eq!(ranks, vec!["1 1 1", "2 2 2", "3 2 2", "4 4 3"]);
    }

    #[test]
    fn frames_rows_and_range_with_offsets() {
        let sum = |frame| WindowCall {
            func: WindowFunc::Aggregate(AggregateFunc::Sum),
            args: vec![1],
            frame,
        };
        let int = |v: i64| Row::pack_slice(&[Datum::Int64(v)]);
        let int4 = |v: i32| Row::pack_slice(&[Datum::Int32(v)]);
        let plan = WindowPlan {
            order_by: by_column(1),
            calls: vec![
                sum(WindowFrame::default()),
                sum(WindowFrame {
                    units: FrameUnits::Rows,
                    start: FrameBound::Preceding(int(1)),
                    end: FrameBound::Following(int(1)),
                }),
                sum(WindowFrame {
                    units: FrameUnits::Range,
                    start: FrameBound::Preceding(int4(5)),
                    end: FrameBound::CurrentRow,
                }),
            ],
        };
        let input: Vec<(Vec<u8>, i64)> = [1, 3, 3, 10]
            .iter()
            .enumerate()
            .map(|(k, v)| (record(k as i32, Some(*v)), 1))
            .collect();
        let out = run(&plan, &input);
        let sums: Vec<String> = out.iter().map(|r| r[2..].join(" ")).collect();
        assert_eq!(sums, vec!["1 4 1", "7 7 7", "7 16 7", "17 13 10"]);
    }

    #[test]
    fn frames_groups_count_peer_groups() {
        let sum = |start, end| WindowCall {
            func: WindowFunc::Aggregate(AggregateFunc::Sum),
            args: vec![1],
            frame: WindowFrame {
                units: FrameUnits::Groups,
                start,
                end,
            },
        };
        let int = |v: i64| Row::pack_slice(&[Datum::Int64(v)]);
        let plan = WindowPlan {
            order_by: by_column(1),
            calls: vec![
                sum(FrameBound::Preceding(int(1)), FrameBound::Following(int(1))),
                sum(FrameBound::Preceding(int(2)), FrameBound::Preceding(int(1))),
                sum(
                    FrameBound::Following(int(1)),
                    FrameBound::UnboundedFollowing,
                ),
                sum(FrameBound::UnboundedPreceding, FrameBound::CurrentRow),
            ],
        };
        // Peer groups {1}, {3, 3}, {10}.
        let input: Vec<(Vec<u8>, i64)> = [1, 3, 3, 10]
            .iter()
            .enumerate()
            .map(|(k, v)| (record(k as i32, Some(*v)), 1))
            .collect();
        let out = run(&plan, &input);
        let sums: Vec<String> = out.iter().map(|r| r[2..].join(" ")).collect();
        assert_eq!(
            sums,
            vec!["7 NULL 16 1", "17 1 10 7", "17 1 10 7", "16 7 NULL 17"]
        );
    }
}
