//! Table functions: what a `FlatMap` calls to turn one row into zero or more rows.
//!
//! A [`TableFunc`] maps its argument datums to a list of output rows, each of
//! [`TableFunc::output_types`]; `FlatMap` appends every output row to the input row
//! that produced it. Evaluation is a pure function of the arguments, so an input
//! row's retraction retracts exactly the rows its insertion produced. Bad arguments
//! (a zero step) are an `EvalError`, never a panic.

use std::fmt;

use repr::adt::{timestamp_add_interval, Interval};
use repr::jsonb::JsonbKind;
use repr::{ColumnType, Datum, EvalError, Row, RowPacker, ScalarType};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A function from one row's argument values to a list of rows.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TableFunc {
    /// `generate_series(start, stop, step)` over `integer`.
    GenerateSeriesInt32,
    /// `generate_series(start, stop, step)` over `bigint`.
    GenerateSeriesInt64,
    /// `generate_series(start, stop, step)` over `numeric`.
    GenerateSeriesNumeric,
    /// `generate_series(start, stop, step interval)` over `timestamp`.
    GenerateSeriesTimestamp,
    /// `generate_series(start, stop, step interval)` over `timestamptz` (UTC).
    GenerateSeriesTimestampTz,
    /// `unnest(anyarray)`: the elements, NULLs included, of `elem_type`.
    Unnest { elem_type: ScalarType },
    /// `jsonb_array_elements` (`text` false) and `jsonb_array_elements_text`.
    JsonbArrayElements { text: bool },
    /// `jsonb_each` (`text` false) and `jsonb_each_text`: `(key, value)` pairs.
    JsonbEach { text: bool },
    /// `jsonb_object_keys`.
    JsonbObjectKeys,
    /// The rows packed into one `bytea` by a window aggregate (see
    /// [`crate::window::pack_rows`]), each of `types`.
    UnpackRows { types: Vec<ColumnType> },
    /// The inner function's rows, each followed by its 1-based position (`bigint`):
    /// `WITH ORDINALITY`.
    WithOrdinality(Box<TableFunc>),
    /// Several functions side by side (PostgreSQL's several set-returning functions
    /// in one select list): the arguments are each function's in turn, a row holds
    /// each function's columns, and there are as many rows as the longest function
    /// returns, the shorter ones padded with NULLs.
    Zip(Vec<TableFunc>),
}

impl TableFunc {
    /// The function's name, as SQL calls it.
    pub fn name(&self) -> &'static str {
        match self {
            TableFunc::GenerateSeriesInt32
            | TableFunc::GenerateSeriesInt64
            | TableFunc::GenerateSeriesNumeric
            | TableFunc::GenerateSeriesTimestamp
            | TableFunc::GenerateSeriesTimestampTz => "generate_series",
            TableFunc::Unnest { .. } => "unnest",
            TableFunc::JsonbArrayElements { text: false } => "jsonb_array_elements",
            TableFunc::JsonbArrayElements { text: true } => "jsonb_array_elements_text",
            TableFunc::JsonbEach { text: false } => "jsonb_each",
            TableFunc::JsonbEach { text: true } => "jsonb_each_text",
            TableFunc::JsonbObjectKeys => "jsonb_object_keys",
            TableFunc::UnpackRows { .. } => "unpack_window_rows",
            TableFunc::WithOrdinality(inner) => inner.name(),
            TableFunc::Zip(_) => "set-returning functions",
        }
    }

    /// The number of arguments the function takes.
    pub fn arity(&self) -> usize {
        match self {
            TableFunc::GenerateSeriesInt32
            | TableFunc::GenerateSeriesInt64
            | TableFunc::GenerateSeriesNumeric
            | TableFunc::GenerateSeriesTimestamp
            | TableFunc::GenerateSeriesTimestampTz => 3,
            TableFunc::UnpackRows { .. }
            | TableFunc::Unnest { .. }
            | TableFunc::JsonbArrayElements { .. }
            | TableFunc::JsonbEach { .. }
            | TableFunc::JsonbObjectKeys => 1,
            TableFunc::WithOrdinality(inner) => inner.arity(),
            TableFunc::Zip(funcs) => funcs.iter().map(|f| f.arity()).sum(),
        }
    }

    /// The types of the columns each output row has.
    pub fn output_types(&self) -> Vec<ColumnType> {
        let scalar = |t: ScalarType| vec![t.nullable(false)];
        match self {
            TableFunc::GenerateSeriesInt32 => scalar(ScalarType::Int32),
            TableFunc::GenerateSeriesInt64 => scalar(ScalarType::Int64),
            TableFunc::GenerateSeriesNumeric => scalar(ScalarType::Numeric),
            TableFunc::GenerateSeriesTimestamp => scalar(ScalarType::Timestamp),
            TableFunc::GenerateSeriesTimestampTz => scalar(ScalarType::TimestampTz),
            TableFunc::Unnest { elem_type } => vec![elem_type.nullable(true)],
            TableFunc::JsonbArrayElements { text: false } => {
                vec![ScalarType::Jsonb.nullable(false)]
            }
            TableFunc::JsonbArrayElements { text: true } => vec![ScalarType::String.nullable(true)],
            TableFunc::JsonbEach { text } => vec![
                ScalarType::String.nullable(false),
                if *text {
                    ScalarType::String.nullable(true)
                } else {
                    ScalarType::Jsonb.nullable(false)
                },
            ],
            TableFunc::JsonbObjectKeys => scalar(ScalarType::String),
            TableFunc::UnpackRows { types } => types.clone(),
            TableFunc::WithOrdinality(inner) => {
                let mut types = inner.output_types();
                types.push(ScalarType::Int64.nullable(false));
                types
            }
            TableFunc::Zip(funcs) => funcs
                .iter()
                .flat_map(|f| f.output_types())
                .map(|t| t.scalar_type.nullable(true))
                .collect(),
        }
    }

    /// The output rows for one row's arguments. More than [`MAX_ROWS_PER_CALL`] rows is
    /// an error (54000) rather than a process out of memory.
    pub fn eval(&self, args: &[Datum]) -> Result<Vec<Row>, EvalError> {
        self.eval_limited(args, MAX_ROWS_PER_CALL)?.ok_or_else(|| {
            EvalError::ProgramLimitExceeded(format!(
                "{} would return more than {MAX_ROWS_PER_CALL} rows for one input row",
                self.name()
            ))
        })
    }

    /// The output rows for one row's arguments, or `None` if there are more than
    /// `limit` (found without producing them all).
    pub fn eval_limited(
        &self,
        args: &[Datum],
        limit: usize,
    ) -> Result<Option<Vec<Row>>, EvalError> {
        if args.len() != self.arity() {
            return Err(EvalError::Internal(format!(
                "{self} called with {} arguments",
                args.len()
            )));
        }
        if let TableFunc::Zip(funcs) = self {
            return zip(funcs, args, limit);
        }
        // Every other function is strict: a NULL argument gives no rows.
        if args.iter().any(|a| a.is_null()) {
            return Ok(Some(vec![]));
        }
        let one = |d: Datum| Row::pack_slice(&[d]);
        match self {
            TableFunc::GenerateSeriesInt32 => {
                let (Datum::Int32(start), Datum::Int32(stop), Datum::Int32(step)) =
                    (args[0], args[1], args[2])
                else {
                    return Err(type_error(self, args));
                };
                Ok(limited(
                    series_i64(start as i64, stop as i64, step as i64)?
                        .map(|v| one(Datum::Int32(v as i32))),
                    limit,
                ))
            }
            TableFunc::GenerateSeriesInt64 => {
                let (Datum::Int64(start), Datum::Int64(stop), Datum::Int64(step)) =
                    (args[0], args[1], args[2])
                else {
                    return Err(type_error(self, args));
                };
                Ok(limited(
                    series_i64(start, stop, step)?.map(|v| one(Datum::Int64(v))),
                    limit,
                ))
            }
            TableFunc::GenerateSeriesNumeric => {
                let (Datum::Numeric(start), Datum::Numeric(stop), Datum::Numeric(step)) =
                    (args[0], args[1], args[2])
                else {
                    return Err(type_error(self, args));
                };
                Ok(limited(series_numeric(start, stop, step)?, limit))
            }
            TableFunc::GenerateSeriesTimestamp | TableFunc::GenerateSeriesTimestampTz => {
                let tz = *self == TableFunc::GenerateSeriesTimestampTz;
                let (start, stop) = match (args[0], args[1], tz) {
                    (Datum::Timestamp(a), Datum::Timestamp(b), false)
                    | (Datum::TimestampTz(a), Datum::TimestampTz(b), true) => (a, b),
                    _ => return Err(type_error(self, args)),
                };
                let Datum::Interval(step) = args[2] else {
                    return Err(type_error(self, args));
                };
                let wrap = |t: i64| {
                    if tz {
                        Datum::TimestampTz(t)
                    } else {
                        Datum::Timestamp(t)
                    }
                };
                let mut out = Vec::new();
                for t in series_timestamp(start, stop, step)? {
                    if out.len() == limit {
                        return Ok(None);
                    }
                    out.push(one(wrap(t?)));
                }
                Ok(Some(out))
            }
            TableFunc::UnpackRows { types } => {
                let Datum::Bytes(bytes) = args[0] else {
                    return Err(type_error(self, args));
                };
                let rows = crate::window::unpack_rows(bytes)?;
                if rows.iter().any(|r| r.iter().count() != types.len()) {
                    return Err(EvalError::Internal(
                        "packed rows do not match their types".into(),
                    ));
                }
                Ok((rows.len() <= limit).then_some(rows))
            }
            TableFunc::Unnest { .. } => {
                let Datum::Array(arr) = args[0] else {
                    return Err(type_error(self, args));
                };
                Ok(limited(arr.iter().map(one), limit))
            }
            TableFunc::JsonbArrayElements { text } => {
                let Datum::Jsonb(j) = args[0] else {
                    return Err(type_error(self, args));
                };
                let elements = match j.kind() {
                    JsonbKind::Array(a) => a,
                    JsonbKind::Object(_) => {
                        return Err(EvalError::InvalidParameter(
                            "cannot extract elements from an object".into(),
                        ))
                    }
                    _ => {
                        return Err(EvalError::InvalidParameter(
                            "cannot extract elements from a scalar".into(),
                        ))
                    }
                };
                Ok(limited(
                    elements.iter().map(|e| {
                        if *text {
                            match e.to_text() {
                                Some(t) => one(Datum::String(&t)),
                                None => one(Datum::Null),
                            }
                        } else {
                            one(Datum::Jsonb(e))
                        }
                    }),
                    limit,
                ))
            }
            TableFunc::JsonbEach { .. } | TableFunc::JsonbObjectKeys => {
                let Datum::Jsonb(j) = args[0] else {
                    return Err(type_error(self, args));
                };
                let pairs = match j.kind() {
                    JsonbKind::Object(o) => o,
                    kind => {
                        let what = if matches!(kind, JsonbKind::Array(_)) {
                            "an array"
                        } else {
                            "a scalar"
                        };
                        return Err(EvalError::InvalidParameter(match self {
                            TableFunc::JsonbObjectKeys => {
                                format!("cannot call jsonb_object_keys on {what}")
                            }
                            _ => format!("cannot call {} on a non-object", self.name()),
                        }));
                    }
                };
                let text = matches!(self, TableFunc::JsonbEach { text: true });
                let keys_only = *self == TableFunc::JsonbObjectKeys;
                let mut packer = RowPacker::new();
                Ok(limited(
                    pairs.iter().map(|(k, v)| {
                        packer.push(Datum::String(k));
                        if !keys_only {
                            if text {
                                match v.to_text() {
                                    Some(t) => packer.push(Datum::String(&t)),
                                    None => packer.push(Datum::Null),
                                }
                            } else {
                                packer.push(Datum::Jsonb(v));
                            }
                        }
                        packer.finish_and_reuse()
                    }),
                    limit,
                ))
            }
            TableFunc::Zip(_) => unreachable!("handled above"),
            TableFunc::WithOrdinality(inner) => {
                let Some(rows) = inner.eval_limited(args, limit)? else {
                    return Ok(None);
                };
                let mut packer = RowPacker::new();
                Ok(Some(
                    rows.into_iter()
                        .enumerate()
                        .map(|(i, row)| {
                            packer.extend_from_row(&row);
                            packer.push(Datum::Int64(i as i64 + 1));
                            packer.finish_and_reuse()
                        })
                        .collect(),
                ))
            }
        }
    }
}

fn zip(funcs: &[TableFunc], args: &[Datum], limit: usize) -> Result<Option<Vec<Row>>, EvalError> {
    let mut outputs = Vec::with_capacity(funcs.len());
    let mut offset = 0;
    for f in funcs {
        let n = f.arity();
        match f.eval_limited(&args[offset..offset + n], limit)? {
            Some(rows) => outputs.push((rows, f.output_types().len())),
            None => return Ok(None),
        }
        offset += n;
    }
    let longest = outputs
        .iter()
        .map(|(rows, _)| rows.len())
        .max()
        .unwrap_or(0);
    let mut packer = RowPacker::new();
    let mut out = Vec::with_capacity(longest);
    for i in 0..longest {
        for (rows, width) in &outputs {
            match rows.get(i) {
                Some(row) => packer.extend_from_row(row),
                None => packer.extend(std::iter::repeat_n(Datum::Null, *width)),
            }
        }
        out.push(packer.finish_and_reuse());
    }
    Ok(Some(out))
}

/// The most rows one call of a table function may return.
pub const MAX_ROWS_PER_CALL: usize = 100_000_000;

/// The first `limit` items, or `None` if there are more.
fn limited(mut rows: impl Iterator<Item = Row>, limit: usize) -> Option<Vec<Row>> {
    let out: Vec<Row> = rows.by_ref().take(limit).collect();
    rows.next().is_none().then_some(out)
}

fn type_error(func: &TableFunc, args: &[Datum]) -> EvalError {
    EvalError::Internal(format!("{func} called with arguments {args:?}"))
}

/// PostgreSQL's error for a zero step (22023).
fn zero_step() -> EvalError {
    EvalError::InvalidParameter("step size cannot equal zero".into())
}

/// `start, start + step, ...` while not past `stop`; like PostgreSQL, the series ends
/// where the next value would overflow the type (the caller's type is no wider than
/// `i64`, and its values fit, so `i64` arithmetic checks the `i64` case and the
/// narrower ones never overflow).
fn series_i64(start: i64, stop: i64, step: i64) -> Result<impl Iterator<Item = i64>, EvalError> {
    if step == 0 {
        return Err(zero_step());
    }
    let mut next = Some(start);
    Ok(std::iter::from_fn(move || {
        let current = next?;
        if (step > 0 && current > stop) || (step < 0 && current < stop) {
            return None;
        }
        next = current.checked_add(step);
        Some(current)
    }))
}

fn series_numeric(
    start: Decimal,
    stop: Decimal,
    step: Decimal,
) -> Result<impl Iterator<Item = Row>, EvalError> {
    if step.is_zero() {
        return Err(zero_step());
    }
    let mut next = Some(start);
    Ok(std::iter::from_fn(move || {
        let c = next?;
        if (step.is_sign_positive() && c > stop) || (step.is_sign_negative() && c < stop) {
            return None;
        }
        next = c.checked_add(step);
        Some(Row::pack_slice(&[Datum::Numeric(c)]))
    }))
}

/// The timestamps of the series; adding the step past the type's range is an error
/// (PostgreSQL's `timestamp out of range`).
fn series_timestamp(
    start: i64,
    stop: i64,
    step: Interval,
) -> Result<impl Iterator<Item = Result<i64, EvalError>>, EvalError> {
    // PostgreSQL compares the step with a zero interval, months counted as 30 days.
    let direction = step.as_micros_approx().signum();
    if direction == 0 {
        return Err(zero_step());
    }
    let mut next = Some(start);
    Ok(std::iter::from_fn(move || {
        let current = next.take()?;
        if (direction > 0 && current > stop) || (direction < 0 && current < stop) {
            return None;
        }
        match timestamp_add_interval(current, &step) {
            Ok(n) => next = Some(n),
            Err(e) => return Some(Err(e)),
        }
        Some(Ok(current))
    }))
}

impl fmt::Display for TableFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableFunc::GenerateSeriesInt32 => f.write_str("generate_series_int4"),
            TableFunc::GenerateSeriesInt64 => f.write_str("generate_series_int8"),
            TableFunc::GenerateSeriesNumeric => f.write_str("generate_series_numeric"),
            TableFunc::GenerateSeriesTimestamp => f.write_str("generate_series_timestamp"),
            TableFunc::GenerateSeriesTimestampTz => f.write_str("generate_series_timestamptz"),
            TableFunc::Unnest { .. }
            | TableFunc::JsonbArrayElements { .. }
            | TableFunc::JsonbEach { .. }
            | TableFunc::JsonbObjectKeys => f.write_str(self.name()),
            TableFunc::UnpackRows { types } => write!(f, "unpack_window_rows[{}]", types.len()),
            TableFunc::WithOrdinality(inner) => write!(f, "{inner} with_ordinality"),
            TableFunc::Zip(funcs) => {
                let names: Vec<String> = funcs.iter().map(|f| f.to_string()).collect();
                write!(f, "zip[{}]", names.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(rows: Vec<Row>) -> Vec<i64> {
        rows.iter()
            .map(|r| match r.iter().next() {
                Some(Datum::Int32(v)) => v as i64,
                Some(Datum::Int64(v)) => v,
                other => panic!("not an integer: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn integer_series_ascend_descend_and_stop_before_overflow() {
        let f = TableFunc::GenerateSeriesInt32;
        let run = |a, b, s| f.eval(&[Datum::Int32(a), Datum::Int32(b), Datum::Int32(s)]);
        assert_eq!(ints(run(1, 5, 2).unwrap()), vec![1, 3, 5]);
        assert_eq!(ints(run(5, 1, -2).unwrap()), vec![5, 3, 1]);
        assert_eq!(ints(run(5, 1, 1).unwrap()), Vec::<i64>::new());
        assert_eq!(run(1, 2, 0).unwrap_err().sqlstate(), "22023");
        let big = TableFunc::GenerateSeriesInt64;
        let rows = big
            .eval(&[
                Datum::Int64(i64::MAX - 1),
                Datum::Int64(i64::MAX),
                Datum::Int64(1),
            ])
            .unwrap();
        assert_eq!(ints(rows), vec![i64::MAX - 1, i64::MAX]);
        assert!(f
            .eval(&[Datum::Null, Datum::Int32(1), Datum::Int32(1)])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn timestamp_series_steps_by_calendar_months_and_rejects_zero() {
        let day = repr::adt::MICROS_PER_DAY;
        let f = TableFunc::GenerateSeriesTimestamp;
        let rows = f
            .eval(&[
                Datum::Timestamp(0),
                Datum::Timestamp(3 * day),
                Datum::Interval(Interval::new(0, 1, 0)),
            ])
            .unwrap();
        assert_eq!(rows.len(), 4);
        let zero = Interval::new(1, -30, 0);
        let err = f
            .eval(&[
                Datum::Timestamp(0),
                Datum::Timestamp(day),
                Datum::Interval(zero),
            ])
            .unwrap_err();
        assert_eq!(err.to_string(), "step size cannot equal zero");
    }
}
