//! Aggregate functions: what a `Reduce` computes for each group.
//!
//! An aggregate sees the group's values with their multiplicities (a value inserted
//! three times arrives once with count 3). NULLs are ignored by every aggregate except
//! `count(*)`, which the planner expresses as `count(true)`. `agg(x) FILTER (WHERE c)`
//! is planned as `agg(CASE WHEN c THEN x END)`, which relies on exactly that.
//!
//! Every aggregate is a function of the group's current multiset of values, so the
//! renderer can recompute it from scratch whenever the group changes (insertions and
//! retractions alike): no aggregate keeps state between evaluations.
//!
//! Aggregates of several arguments (`string_agg(value, delimiter ORDER BY ...)`) take
//! one argument, a record packed by [`crate::VariadicFunc::Record`]: a `bytea` whose
//! bytes are a [`Row`] of the arguments followed by the ORDER BY keys.

use std::fmt;

use repr::adt::{interval_out_of_range, Interval};
use repr::{ColumnType, Datum, EvalError, Row, ScalarType};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::finishing::{compare_rows, ColumnOrder};
use crate::func::{check_float, check_value_len, numeric_div, numeric_sqrt_at_scale};
use crate::scalar::{MirScalarExpr, RowArena};
use crate::window::WindowPlan;

/// An aggregate function.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AggregateFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    /// `var_samp` (and its alias `variance`).
    VarSamp,
    /// `var_pop`.
    VarPop,
    /// `stddev_samp` (and its alias `stddev`).
    StddevSamp,
    /// `stddev_pop`.
    StddevPop,
    /// `bool_and` (and its alias `every`).
    BoolAnd,
    /// `bool_or`.
    BoolOr,
    /// `string_agg(value, delimiter [ORDER BY ...])` over text. The argument is a
    /// record `(value, delimiter, key...)`; `order_by` sorts by the record's fields.
    StringAgg {
        order_by: Vec<ColumnOrder>,
    },
    /// `array_agg(value [ORDER BY ...])`: the argument is a record `(value, key...)`,
    /// so NULL values are kept (as PostgreSQL keeps them).
    ArrayAgg {
        elem_type: ScalarType,
        order_by: Vec<ColumnOrder>,
    },
    /// `jsonb_agg(value [ORDER BY ...])` over a record `(value, key...)`: NULLs are
    /// JSON nulls.
    JsonbAgg {
        order_by: Vec<ColumnOrder>,
    },
    /// `jsonb_object_agg(key, value [ORDER BY ...])` over a record
    /// `(key, value, key...)`: a NULL key is an error, a later duplicate key wins.
    JsonbObjectAgg {
        order_by: Vec<ColumnOrder>,
    },
    /// Window functions over one partition: the argument is a record of the input
    /// row, the result the partition's rows with their window values, packed (see
    /// [`crate::window`]).
    Window(WindowPlan),
}

/// An aggregate applied to an expression over the input of a `Reduce`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AggregateExpr {
    pub func: AggregateFunc,
    pub expr: MirScalarExpr,
    /// Aggregate distinct values only (`count(DISTINCT x)`).
    pub distinct: bool,
}

impl fmt::Display for AggregateFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AggregateFunc::Count => "count",
            AggregateFunc::Sum => "sum",
            AggregateFunc::Min => "min",
            AggregateFunc::Max => "max",
            AggregateFunc::Avg => "avg",
            AggregateFunc::VarSamp => "var_samp",
            AggregateFunc::VarPop => "var_pop",
            AggregateFunc::StddevSamp => "stddev_samp",
            AggregateFunc::StddevPop => "stddev_pop",
            AggregateFunc::BoolAnd => "bool_and",
            AggregateFunc::BoolOr => "bool_or",
            AggregateFunc::StringAgg { .. } => "string_agg",
            AggregateFunc::ArrayAgg { .. } => "array_agg",
            AggregateFunc::JsonbAgg { .. } => "jsonb_agg",
            AggregateFunc::JsonbObjectAgg { .. } => "jsonb_object_agg",
            AggregateFunc::Window(plan) => return write!(f, "{plan}"),
        })
    }
}

impl fmt::Display for AggregateExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let AggregateFunc::Window(plan) = &self.func {
            // The argument is always the whole input row.
            return write!(f, "{plan}");
        }
        let distinct = if self.distinct { "distinct " } else { "" };
        write!(
            f,
            "{}({distinct}{}{})",
            self.func,
            self.expr,
            self.func.order_by_suffix()
        )
    }
}

impl AggregateFunc {
    /// ` order by field 2 desc, ...` for a `string_agg` with ORDER BY (the keys are
    /// fields of its record argument, counted from 0), or nothing: how EXPLAIN shows
    /// the ordering after the argument.
    pub fn order_by_suffix(&self) -> String {
        let (AggregateFunc::StringAgg { order_by }
        | AggregateFunc::ArrayAgg { order_by, .. }
        | AggregateFunc::JsonbAgg { order_by }
        | AggregateFunc::JsonbObjectAgg { order_by }) = self
        else {
            return String::new();
        };
        if order_by.is_empty() {
            return String::new();
        }
        let keys: Vec<String> = order_by
            .iter()
            .map(|o| {
                let dir = if o.desc { " desc" } else { "" };
                let nulls = match (o.desc, o.nulls_last) {
                    (false, false) => " nulls first",
                    (true, true) => " nulls last",
                    _ => "",
                };
                format!("field {}{dir}{nulls}", o.column)
            })
            .collect();
        format!(" order by {}", keys.join(", "))
    }

    /// The result type for an input of type `input` (PostgreSQL's rules: `sum(int4)` is
    /// `bigint`, `sum(int8)` and `avg` of integers are `numeric`).
    pub fn output_type(&self, input: ColumnType) -> ColumnType {
        let scalar = match self {
            AggregateFunc::Count => return ScalarType::Int64.nullable(false),
            AggregateFunc::Sum => match input.scalar_type {
                ScalarType::Int16 | ScalarType::Int32 => ScalarType::Int64,
                ScalarType::Int64 => ScalarType::Numeric,
                t => t,
            },
            AggregateFunc::Avg => match input.scalar_type {
                ScalarType::Float32 | ScalarType::Float64 => ScalarType::Float64,
                ScalarType::Interval => ScalarType::Interval,
                _ => ScalarType::Numeric,
            },
            AggregateFunc::Min | AggregateFunc::Max => input.scalar_type,
            AggregateFunc::VarSamp
            | AggregateFunc::VarPop
            | AggregateFunc::StddevSamp
            | AggregateFunc::StddevPop => match input.scalar_type {
                ScalarType::Float32 | ScalarType::Float64 => ScalarType::Float64,
                _ => ScalarType::Numeric,
            },
            AggregateFunc::BoolAnd | AggregateFunc::BoolOr => ScalarType::Bool,
            AggregateFunc::StringAgg { .. } => ScalarType::String,
            AggregateFunc::ArrayAgg { elem_type, .. } => {
                elem_type.array_of().unwrap_or(ScalarType::String)
            }
            AggregateFunc::JsonbAgg { .. } | AggregateFunc::JsonbObjectAgg { .. } => {
                ScalarType::Jsonb
            }
            AggregateFunc::Window(_) => return ScalarType::Bytes.nullable(false),
        };
        scalar.nullable(true)
    }

    /// Whether the aggregate accepts arguments of type `input` (PostgreSQL's
    /// signatures; `string_agg`'s record is checked by the planner).
    pub fn accepts(&self, input: ScalarType) -> bool {
        match self {
            AggregateFunc::Count => true,
            // PostgreSQL has no min or max of uuid or jsonb.
            AggregateFunc::Min | AggregateFunc::Max => {
                !matches!(input, ScalarType::Uuid | ScalarType::Jsonb)
            }
            AggregateFunc::Sum => input.is_numeric() || input == ScalarType::Interval,
            AggregateFunc::Avg => input.is_numeric() || input == ScalarType::Interval,
            AggregateFunc::VarSamp
            | AggregateFunc::VarPop
            | AggregateFunc::StddevSamp
            | AggregateFunc::StddevPop => input.is_numeric(),
            AggregateFunc::BoolAnd | AggregateFunc::BoolOr => input == ScalarType::Bool,
            AggregateFunc::StringAgg { .. }
            | AggregateFunc::ArrayAgg { .. }
            | AggregateFunc::JsonbAgg { .. }
            | AggregateFunc::JsonbObjectAgg { .. }
            | AggregateFunc::Window(_) => input == ScalarType::Bytes,
        }
    }

    /// Folds the group's values (with multiplicities) into the aggregate's value, of
    /// the type [`AggregateFunc::output_type`] gives for the values' type.
    ///
    /// Overflow is an error with PostgreSQL's SQLSTATE: `bigint out of range`, `value
    /// out of range: overflow` for floats, `interval out of range`, and `value
    /// overflows numeric format` where PostgreSQL's unbounded numeric would not overflow.
    ///
    /// `arena` holds values the aggregate builds (`string_agg`'s text).
    pub fn eval<'a>(
        &self,
        values: impl Iterator<Item = (Datum<'a>, i64)>,
        arena: &'a RowArena,
    ) -> Result<Datum<'a>, EvalError> {
        let mut values = values.filter(|(d, n)| !d.is_null() && *n != 0);
        match self {
            AggregateFunc::Count => {
                let mut count: i64 = 0;
                for (_, n) in values {
                    count = count
                        .checked_add(n)
                        .ok_or_else(|| EvalError::OutOfRange("bigint".into()))?;
                }
                Ok(Datum::Int64(count))
            }
            AggregateFunc::Min => Ok(values.map(|(d, _)| d).min().unwrap_or(Datum::Null)),
            AggregateFunc::Max => Ok(values.map(|(d, _)| d).max().unwrap_or(Datum::Null)),
            AggregateFunc::Sum | AggregateFunc::Avg => {
                let Some((first, n)) = values.next() else {
                    return Ok(Datum::Null);
                };
                let mut state = SumState::for_datum(first, *self == AggregateFunc::Avg)?;
                state.add(first, n)?;
                for (d, n) in values {
                    state.add(d, n)?;
                }
                state.finish(*self == AggregateFunc::Avg)
            }
            AggregateFunc::VarSamp
            | AggregateFunc::VarPop
            | AggregateFunc::StddevSamp
            | AggregateFunc::StddevPop => {
                let sample = matches!(self, AggregateFunc::VarSamp | AggregateFunc::StddevSamp);
                let stddev = matches!(self, AggregateFunc::StddevSamp | AggregateFunc::StddevPop);
                let Some((first, n)) = values.next() else {
                    return Ok(Datum::Null);
                };
                let mut state = VarianceState::for_datum(first)?;
                state.add(first, n)?;
                for (d, n) in values {
                    state.add(d, n)?;
                }
                state.finish(sample, stddev)
            }
            AggregateFunc::BoolAnd | AggregateFunc::BoolOr => {
                // bool_and is false once any value is false, bool_or true once any is true.
                let decisive = Datum::from_bool(*self == AggregateFunc::BoolOr);
                let mut result = Datum::Null;
                for (d, _) in values {
                    if d == decisive {
                        return Ok(decisive);
                    }
                    result = d;
                }
                Ok(result)
            }
            AggregateFunc::StringAgg { order_by } => string_agg(values, order_by, arena),
            AggregateFunc::ArrayAgg { .. }
            | AggregateFunc::JsonbAgg { .. }
            | AggregateFunc::JsonbObjectAgg { .. } => collect_agg(self, values, arena),
            AggregateFunc::Window(plan) => plan.eval(values, arena),
        }
    }
}

/// An aggregate computed one value at a time, whose value can be read after each: the
/// running totals of a window frame that grows (`UNBOUNDED PRECEDING`), in linear time
/// where [`AggregateFunc::eval`] per row would be quadratic. Its values equal `eval`'s
/// over the values added so far.
pub struct RunningAggregate<'a> {
    func: AggregateFunc,
    state: Running<'a>,
}

enum Running<'a> {
    Count(i64),
    Sum(Option<SumState>),
    Extreme(Option<Datum<'a>>),
    Bool(Datum<'a>),
}

impl AggregateFunc {
    /// A running version of the aggregate, for those that have one (count, sum, avg,
    /// min, max, bool_and, bool_or).
    pub fn running<'a>(&self) -> Option<RunningAggregate<'a>> {
        let state = match self {
            AggregateFunc::Count => Running::Count(0),
            AggregateFunc::Sum | AggregateFunc::Avg => Running::Sum(None),
            AggregateFunc::Min | AggregateFunc::Max => Running::Extreme(None),
            AggregateFunc::BoolAnd | AggregateFunc::BoolOr => Running::Bool(Datum::Null),
            _ => return None,
        };
        Some(RunningAggregate {
            func: self.clone(),
            state,
        })
    }
}

impl<'a> RunningAggregate<'a> {
    /// Adds one value (NULLs are skipped, as by every aggregate).
    pub fn add(&mut self, d: Datum<'a>) -> Result<(), EvalError> {
        if d.is_null() {
            return Ok(());
        }
        match &mut self.state {
            Running::Count(n) => *n = count_add(*n, 1)?,
            Running::Sum(state) => {
                if state.is_none() {
                    *state = Some(SumState::for_datum(d, self.func == AggregateFunc::Avg)?);
                }
                state.as_mut().expect("set above").add(d, 1)?;
            }
            Running::Extreme(current) => {
                // Like `Iterator::min` and `max`: the first of equal minimums, the
                // last of equal maximums (equal values may print differently: 1.0, 1.00).
                let keep = match current {
                    None => false,
                    Some(c) if self.func == AggregateFunc::Min => *c <= d,
                    Some(c) => *c > d,
                };
                if !keep {
                    *current = Some(d);
                }
            }
            Running::Bool(result) => {
                let decisive = Datum::from_bool(self.func == AggregateFunc::BoolOr);
                if *result != decisive {
                    *result = d;
                }
            }
        }
        Ok(())
    }

    /// The aggregate of the values added so far.
    pub fn value(&self) -> Result<Datum<'a>, EvalError> {
        Ok(match &self.state {
            Running::Count(n) => Datum::Int64(*n),
            Running::Sum(None) | Running::Extreme(None) => Datum::Null,
            Running::Sum(Some(state)) => state.clone().finish(self.func == AggregateFunc::Avg)?,
            Running::Extreme(Some(d)) => *d,
            Running::Bool(d) => *d,
        })
    }
}

/// `string_agg` over records `(value, delimiter, key...)`: the values in `order_by`
/// order, each but the first preceded by its own row's delimiter (PostgreSQL's
/// `string_agg_transfn`: NULL values are skipped, a NULL delimiter is empty). NULL when
/// no value is non-null.
fn string_agg<'a>(
    values: impl Iterator<Item = (Datum<'a>, i64)>,
    order_by: &[ColumnOrder],
    arena: &'a RowArena,
) -> Result<Datum<'a>, EvalError> {
    let mut rows = Vec::new();
    for (d, n) in values {
        let Datum::Bytes(bytes) = d else {
            return Err(EvalError::Internal(format!(
                "string_agg over a non-record value: {d:?}"
            )));
        };
        let row = Row::from_bytes(bytes.to_vec())
            .ok_or_else(|| EvalError::Internal("string_agg over a malformed record".into()))?;
        rows.push((row, n));
    }
    let mut records: Vec<(Vec<Datum>, i64)> = rows.iter().map(|(r, n)| (r.unpack(), *n)).collect();
    if records.iter().any(|(r, _)| r.len() < 2) {
        return Err(EvalError::Internal("string_agg over a short record".into()));
    }
    // A stable sort: rows equal on the keys keep the order of their packed records.
    records.sort_by(|(a, _), (b, _)| compare_rows(order_by, a, b));
    let mut out: Option<String> = None;
    for (record, n) in &records {
        let Datum::String(value) = record[0] else {
            continue;
        };
        let delimiter = match record[1] {
            Datum::String(s) => s,
            _ => "",
        };
        for _ in 0..(*n).max(0) {
            match &mut out {
                None => out = Some(value.to_string()),
                Some(s) => {
                    check_value_len(s.len() + delimiter.len() + value.len())?;
                    s.push_str(delimiter);
                    s.push_str(value);
                }
            }
        }
    }
    Ok(match out {
        Some(s) => Datum::String(arena.push_string(s)),
        None => Datum::Null,
    })
}

/// The records an aggregate of several arguments received (see the module docs),
/// decoded, each with its multiplicity.
fn records<'a>(
    name: &str,
    values: impl Iterator<Item = (Datum<'a>, i64)>,
    fields: usize,
) -> Result<Vec<(Row, i64)>, EvalError> {
    let mut rows = Vec::new();
    for (d, n) in values {
        let Datum::Bytes(bytes) = d else {
            return Err(EvalError::Internal(format!(
                "{name} over a non-record value: {d:?}"
            )));
        };
        let row = Row::from_bytes(bytes.to_vec())
            .filter(|r| r.iter().count() >= fields)
            .ok_or_else(|| EvalError::Internal(format!("{name} over a malformed record")))?;
        rows.push((row, n));
    }
    Ok(rows)
}

/// `array_agg`, `jsonb_agg` and `jsonb_object_agg`: the records' values in
/// `order_by` order (a stable sort), each as often as its multiplicity.
fn collect_agg<'a>(
    func: &AggregateFunc,
    values: impl Iterator<Item = (Datum<'a>, i64)>,
    arena: &'a RowArena,
) -> Result<Datum<'a>, EvalError> {
    use crate::func::jsonb::{datum_to_json, datum_to_key, jsonb_datum};
    use repr::jsonb::JsonValue;
    let (order_by, fields) = match func {
        AggregateFunc::ArrayAgg { order_by, .. } | AggregateFunc::JsonbAgg { order_by } => {
            (order_by, 1)
        }
        AggregateFunc::JsonbObjectAgg { order_by } => (order_by, 2),
        other => return Err(EvalError::Internal(format!("{other} is not collected"))),
    };
    let rows = records(&func.to_string(), values, fields)?;
    if rows.is_empty() {
        return Ok(Datum::Null);
    }
    let mut records: Vec<(Vec<Datum>, i64)> = rows.iter().map(|(r, n)| (r.unpack(), *n)).collect();
    records.sort_by(|(a, _), (b, _)| compare_rows(order_by, a, b));
    let repeated = records
        .iter()
        .flat_map(|(r, n)| std::iter::repeat_n(r, usize::try_from(*n).unwrap_or(0)));
    match func {
        AggregateFunc::ArrayAgg { .. } => {
            let mut packer = repr::RowPacker::new();
            for r in repeated {
                if matches!(r[0], Datum::Array(_)) {
                    return Err(EvalError::FeatureNotSupported(
                        "array_agg of arrays (a multidimensional array)".into(),
                    ));
                }
                packer.push(r[0]);
            }
            let row = packer.finish();
            check_value_len(row.byte_len())?;
            let bytes = arena.push_bytes(row.data().to_vec());
            repr::Array::from_bytes(bytes)
                .map(Datum::Array)
                .ok_or_else(|| EvalError::Internal("array_agg built a malformed array".into()))
        }
        AggregateFunc::JsonbAgg { .. } => {
            let elems = repeated.map(|r| datum_to_json(r[0])).collect();
            Ok(jsonb_datum(&JsonValue::Array(elems), arena))
        }
        _ => {
            let mut pairs = Vec::new();
            for r in repeated {
                if r[0].is_null() {
                    return Err(EvalError::InvalidParameter(
                        "field name must not be null".into(),
                    ));
                }
                pairs.push((datum_to_key(r[0]), datum_to_json(r[1])));
            }
            Ok(jsonb_datum(&JsonValue::object(pairs), arena))
        }
    }
}

/// The running state of `var_*` and `stddev_*`.
enum VarianceState {
    /// Integers (PostgreSQL's `int8_accum` and `int4_accum`): the count, the sum and the
    /// sum of squares, exactly.
    Int { n: i64, sum: i128, sumsq: i128 },
    /// Numerics (`numeric_accum`): as for integers, with the largest input scale.
    Numeric {
        n: i64,
        sum: Decimal,
        sumsq: Decimal,
        scale: u32,
    },
    /// Floats (`float8_accum`): the Youngs-Cramer state that `avg` keeps too.
    Float(SumState),
}

impl VarianceState {
    fn for_datum(d: Datum) -> Result<VarianceState, EvalError> {
        Ok(match d {
            Datum::Int16(_) | Datum::Int32(_) | Datum::Int64(_) => VarianceState::Int {
                n: 0,
                sum: 0,
                sumsq: 0,
            },
            Datum::Numeric(_) => VarianceState::Numeric {
                n: 0,
                sum: Decimal::ZERO,
                sumsq: Decimal::ZERO,
                scale: 0,
            },
            Datum::Float32(_) | Datum::Float64(_) => {
                VarianceState::Float(SumState::for_datum(d, true)?)
            }
            other => return Err(mixed_input(other)),
        })
    }

    /// Adds `n` copies of `d`.
    fn add(&mut self, d: Datum, k: i64) -> Result<(), EvalError> {
        match (self, d) {
            (
                VarianceState::Int { n, sum, sumsq },
                Datum::Int16(_) | Datum::Int32(_) | Datum::Int64(_),
            ) => {
                let v: i128 = match d {
                    Datum::Int16(v) => v.into(),
                    Datum::Int32(v) => v.into(),
                    Datum::Int64(v) => v.into(),
                    _ => unreachable!("matched above"),
                };
                let k128 = i128::from(k);
                *sum = v
                    .checked_mul(k128)
                    .and_then(|p| sum.checked_add(p))
                    .ok_or(EvalError::NumericOverflow)?;
                *sumsq = v
                    .checked_mul(v)
                    .and_then(|sq| sq.checked_mul(k128))
                    .and_then(|p| sumsq.checked_add(p))
                    .ok_or(EvalError::NumericOverflow)?;
                *n = count_add(*n, k)?;
            }
            (
                VarianceState::Numeric {
                    n,
                    sum,
                    sumsq,
                    scale,
                },
                Datum::Numeric(v),
            ) => {
                let kd = Decimal::from(k);
                *scale = (*scale).max(v.scale());
                *sum = v
                    .checked_mul(kd)
                    .and_then(|p| sum.checked_add(p))
                    .ok_or(EvalError::NumericOverflow)?;
                let sq = v.checked_mul(v).ok_or(EvalError::NumericOverflow)?;
                if sq.scale() < 2 * v.scale() && !sq.is_zero() {
                    // The square needs more than the 28 decimal places Freshet's numeric
                    // holds: PostgreSQL's exact answer cannot be computed.
                    return Err(EvalError::NumericOverflow);
                }
                *sumsq = sq
                    .checked_mul(kd)
                    .and_then(|p| sumsq.checked_add(p))
                    .ok_or(EvalError::NumericOverflow)?;
                *n = count_add(*n, k)?;
            }
            (VarianceState::Float(state), Datum::Float32(_) | Datum::Float64(_)) => {
                state.add(d, k)?
            }
            (_, other) => return Err(mixed_input(other)),
        }
        Ok(())
    }

    fn finish<'a>(self, sample: bool, stddev: bool) -> Result<Datum<'a>, EvalError> {
        match self {
            VarianceState::Int { n, sum, sumsq } => {
                // n * sumsq - sum^2 exactly, in integers.
                let numerator = i128::from(n)
                    .checked_mul(sumsq)
                    .and_then(|a| sum.checked_mul(sum).and_then(|b| a.checked_sub(b)))
                    .ok_or(EvalError::NumericOverflow)?;
                let numerator = Decimal::try_from_i128_with_scale(numerator, 0)
                    .map_err(|_| EvalError::NumericOverflow)?;
                numeric_variance(n, numerator, sample, stddev)
            }
            VarianceState::Numeric {
                n,
                sum,
                sumsq,
                scale,
            } => {
                let mut numerator = Decimal::from(n)
                    .checked_mul(sumsq)
                    .and_then(|a| sum.checked_mul(sum).and_then(|b| a.checked_sub(b)))
                    .ok_or(EvalError::NumericOverflow)?;
                // The numerator's display scale is twice the inputs' (PostgreSQL
                // multiplies at that scale); select_div_scale takes it into account.
                if 2 * scale <= 28 {
                    numerator.rescale(2 * scale);
                }
                numeric_variance(n, numerator, sample, stddev)
            }
            VarianceState::Float(SumState::Float { n, sxx, .. }) => {
                // float8_var_samp, float8_var_pop and their square roots.
                if n == 0.0 || (sample && n <= 1.0) {
                    return Ok(Datum::Null);
                }
                let var = if sample { sxx / (n - 1.0) } else { sxx / n };
                Ok(Datum::Float64(if stddev { var.sqrt() } else { var }))
            }
            VarianceState::Float(_) => Err(EvalError::Internal(
                "variance over floats without a float state".into(),
            )),
        }
    }
}

/// PostgreSQL's `numeric_stddev_internal` from the numerator `n * sumsq - sum^2`:
/// divided by `n * (n - 1)` (or `n * n` for the population forms) at
/// `select_div_scale`'s scale, then the square root at that same scale. A numerator
/// rounded to zero or below gives 0.
fn numeric_variance<'a>(
    n: i64,
    numerator: Decimal,
    sample: bool,
    stddev: bool,
) -> Result<Datum<'a>, EvalError> {
    if n == 0 || (sample && n <= 1) {
        return Ok(Datum::Null);
    }
    let overflow = || EvalError::NumericOverflow;
    if numerator <= Decimal::ZERO {
        return Ok(Datum::Numeric(Decimal::ZERO));
    }
    let denominator = if sample {
        i128::from(n) * (i128::from(n) - 1)
    } else {
        i128::from(n) * i128::from(n)
    };
    let denominator = Decimal::try_from_i128_with_scale(denominator, 0).map_err(|_| overflow())?;
    let variance = numeric_div(numerator, denominator).ok_or_else(overflow)?;
    Ok(Datum::Numeric(if stddev {
        numeric_sqrt_at_scale(variance, variance.scale())?
    } else {
        variance
    }))
}

/// The running state of `sum` or `avg` over one input type.
#[derive(Clone)]
enum SumState {
    /// `smallint`, `integer` or `bigint`; `sum` is `bigint` for the first two (`wide`
    /// false) and `numeric` for `bigint`.
    Int {
        sum: i128,
        count: i64,
        wide: bool,
    },
    Numeric {
        sum: Decimal,
        count: i64,
    },
    /// `real` or `double precision`. `sum` adds in the input type; `avg` keeps
    /// PostgreSQL's `float8_accum` state (count, sum, and the Youngs-Cramer sum of
    /// squared differences, whose overflow PostgreSQL also reports).
    Float {
        single: bool,
        avg: bool,
        sum: f64,
        n: f64,
        sx: f64,
        sxx: f64,
    },
    /// Months, days and microseconds summed apart, as `interval_pl` does.
    Interval {
        months: i128,
        days: i128,
        micros: i128,
        count: i64,
    },
}

fn count_add(count: i64, n: i64) -> Result<i64, EvalError> {
    count
        .checked_add(n)
        .ok_or_else(|| EvalError::OutOfRange("bigint".into()))
}

impl SumState {
    fn for_datum(d: Datum, avg: bool) -> Result<SumState, EvalError> {
        Ok(match d {
            Datum::Int16(_) | Datum::Int32(_) => SumState::Int {
                sum: 0,
                count: 0,
                wide: false,
            },
            Datum::Int64(_) => SumState::Int {
                sum: 0,
                count: 0,
                wide: true,
            },
            Datum::Numeric(_) => SumState::Numeric {
                sum: Decimal::ZERO,
                count: 0,
            },
            Datum::Float32(_) | Datum::Float64(_) => SumState::Float {
                single: matches!(d, Datum::Float32(_)),
                avg,
                sum: 0.0,
                n: 0.0,
                sx: 0.0,
                sxx: 0.0,
            },
            Datum::Interval(_) => SumState::Interval {
                months: 0,
                days: 0,
                micros: 0,
                count: 0,
            },
            other => return Err(mixed_input(other)),
        })
    }

    /// Adds `n` copies of `d`.
    fn add(&mut self, d: Datum, n: i64) -> Result<(), EvalError> {
        match (self, d) {
            (
                SumState::Int { sum, count, wide },
                Datum::Int16(_) | Datum::Int32(_) | Datum::Int64(_),
            ) => {
                let v: i128 = match d {
                    Datum::Int16(v) => v.into(),
                    Datum::Int32(v) => v.into(),
                    Datum::Int64(v) => v.into(),
                    _ => unreachable!("matched above"),
                };
                let overflow = || {
                    if *wide {
                        EvalError::NumericOverflow
                    } else {
                        EvalError::OutOfRange("bigint".into())
                    }
                };
                *sum = v
                    .checked_mul(n.into())
                    .and_then(|p| sum.checked_add(p))
                    .ok_or_else(overflow)?;
                *count = count_add(*count, n)?;
            }
            (SumState::Numeric { sum, count }, Datum::Numeric(v)) => {
                *sum = v
                    .checked_mul(Decimal::from(n))
                    .and_then(|p| sum.checked_add(p))
                    .ok_or(EvalError::NumericOverflow)?;
                *count = count_add(*count, n)?;
            }
            (
                SumState::Float {
                    single,
                    avg,
                    sum,
                    n: count,
                    sx,
                    sxx,
                },
                Datum::Float32(_) | Datum::Float64(_),
            ) => {
                let v = match d {
                    Datum::Float32(v) => v as f64,
                    Datum::Float64(v) => v,
                    _ => unreachable!("matched above"),
                };
                if !*avg {
                    // sum: float4pl / float8pl, with n copies as one product.
                    let narrow = |x: f64| if *single { x as f32 as f64 } else { x };
                    let part = check_float(narrow(v * n as f64), v.is_infinite(), v == 0.0)?;
                    *sum = check_float(
                        narrow(*sum + part),
                        sum.is_infinite() || part.is_infinite(),
                        true,
                    )?;
                } else if n == 1 {
                    // avg: float8_accum for one value, float8_combine for n copies.
                    let (n_old, sx_old) = (*count, *sx);
                    *count += 1.0;
                    *sx += v;
                    if n_old > 0.0 {
                        let tmp = v * *count - *sx;
                        *sxx += tmp * tmp / (*count * n_old);
                        if sx.is_infinite() || sxx.is_infinite() {
                            if !sx_old.is_infinite() && !v.is_infinite() {
                                return Err(EvalError::FloatOverflow);
                            }
                            *sxx = f64::NAN;
                        }
                    } else if !v.is_finite() {
                        *sxx = f64::NAN;
                    }
                } else {
                    let n2 = n as f64;
                    let sx2 = check_float(v * n2, v.is_infinite(), true)?;
                    let sxx2 = if v.is_finite() { 0.0 } else { f64::NAN };
                    if *count == 0.0 {
                        (*count, *sx, *sxx) = (n2, sx2, sxx2);
                    } else {
                        let (n1, sx1, sxx1) = (*count, *sx, *sxx);
                        *count = n1 + n2;
                        *sx = check_float(sx1 + sx2, sx1.is_infinite() || sx2.is_infinite(), true)?;
                        let tmp = sx1 / n1 - sx2 / n2;
                        *sxx = check_float(
                            sxx1 + sxx2 + n1 * n2 * tmp * tmp / *count,
                            sxx1.is_infinite() || sxx2.is_infinite(),
                            true,
                        )?;
                    }
                }
            }
            (
                SumState::Interval {
                    months,
                    days,
                    micros,
                    count,
                },
                Datum::Interval(iv),
            ) => {
                let n = i128::from(n);
                let add = |acc: &mut i128, v: i128| -> Result<(), EvalError> {
                    *acc = v
                        .checked_mul(n)
                        .and_then(|p| acc.checked_add(p))
                        .ok_or_else(interval_out_of_range)?;
                    Ok(())
                };
                add(months, iv.months.into())?;
                add(days, iv.days.into())?;
                add(micros, iv.micros.into())?;
                *count = count_add(*count, n as i64)?;
            }
            (_, other) => return Err(mixed_input(other)),
        }
        Ok(())
    }

    fn finish<'a>(self, avg: bool) -> Result<Datum<'a>, EvalError> {
        match self {
            SumState::Int { sum, count, wide } => {
                if avg {
                    let sum = Decimal::try_from_i128_with_scale(sum, 0)
                        .map_err(|_| EvalError::NumericOverflow)?;
                    return numeric_avg(sum, count);
                }
                if wide {
                    Decimal::try_from_i128_with_scale(sum, 0)
                        .map(Datum::Numeric)
                        .map_err(|_| EvalError::NumericOverflow)
                } else {
                    i64::try_from(sum)
                        .map(Datum::Int64)
                        .map_err(|_| EvalError::OutOfRange("bigint".into()))
                }
            }
            SumState::Numeric { sum, count } => {
                if avg {
                    numeric_avg(sum, count)
                } else {
                    Ok(Datum::Numeric(sum))
                }
            }
            SumState::Float {
                single, sum, n, sx, ..
            } => Ok(if avg {
                // float8_avg: no inputs (all retracted) is NULL.
                if n == 0.0 {
                    Datum::Null
                } else {
                    Datum::Float64(sx / n)
                }
            } else if single {
                Datum::Float32(sum as f32)
            } else {
                Datum::Float64(sum)
            }),
            SumState::Interval {
                months,
                days,
                micros,
                count,
            } => {
                let sum = Interval::new(
                    i32::try_from(months).map_err(|_| interval_out_of_range())?,
                    i32::try_from(days).map_err(|_| interval_out_of_range())?,
                    i64::try_from(micros).map_err(|_| interval_out_of_range())?,
                );
                if !avg {
                    return Ok(Datum::Interval(sum));
                }
                if count == 0 {
                    return Ok(Datum::Null);
                }
                // interval_avg: interval_div of the sum by the count.
                Ok(Datum::Interval(sum.checked_div_f64(count as f64)?))
            }
        }
    }
}

/// `avg` of integers and numerics: the sum divided as numeric division divides.
fn numeric_avg<'a>(sum: Decimal, count: i64) -> Result<Datum<'a>, EvalError> {
    if count == 0 {
        return Ok(Datum::Null);
    }
    numeric_div(sum, Decimal::from(count))
        .map(Datum::Numeric)
        .ok_or(EvalError::NumericOverflow)
}

/// A value of another type than the group's first: the planner types a column once, so
/// this is a broken invariant, not bad data.
fn mixed_input(d: Datum) -> EvalError {
    EvalError::Internal(format!("sum or avg over a column of mixed types: {d:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_respect_multiplicity_and_nulls() {
        let arena = RowArena::new();
        let vals = vec![(Datum::Int32(2), 3), (Datum::Null, 5), (Datum::Int32(5), 1)];
        let count = AggregateFunc::Count
            .eval(vals.clone().into_iter(), &arena)
            .unwrap();
        assert_eq!(count, Datum::Int64(4));
        let sum = AggregateFunc::Sum
            .eval(vals.clone().into_iter(), &arena)
            .unwrap();
        assert_eq!(sum, Datum::Int64(11));
        let max = AggregateFunc::Max
            .eval(vals.clone().into_iter(), &arena)
            .unwrap();
        assert_eq!(max, Datum::Int32(5));
        let avg = AggregateFunc::Avg.eval(vals.into_iter(), &arena).unwrap();
        assert_eq!(avg.to_string(), "2.7500000000000000");
        let empty = AggregateFunc::Sum.eval(std::iter::empty(), &arena).unwrap();
        assert_eq!(empty, Datum::Null);
    }

    fn iv(months: i32, days: i32, micros: i64) -> Datum<'static> {
        Datum::Interval(Interval::new(months, days, micros))
    }

    const HOUR: i64 = 3_600_000_000;

    #[test]
    fn sum_and_avg_of_intervals_match_postgres() {
        let arena = RowArena::new();
        // Expected values from PostgreSQL 15.
        let vals = vec![(iv(1, 0, 0), 1), (iv(0, 1, 0), 1), (iv(0, 0, HOUR), 1)];
        let sum = AggregateFunc::Sum
            .eval(vals.clone().into_iter(), &arena)
            .unwrap();
        assert_eq!(sum.to_string(), "1 mon 1 day 01:00:00");
        let avg = AggregateFunc::Avg.eval(vals.into_iter(), &arena).unwrap();
        assert_eq!(avg.to_string(), "10 days 08:20:00");
        let avg = AggregateFunc::Avg
            .eval(
                [(iv(1, 0, 0), 1), (iv(2, 0, 0), 1), (iv(0, 1, 0), 1)].into_iter(),
                &arena,
            )
            .unwrap();
        assert_eq!(avg.to_string(), "1 mon 08:00:00");
        // Multiplicities count: 1 mon 1 day 1 sec and six zeros.
        let avg = AggregateFunc::Avg
            .eval(
                [(iv(1, 1, 1_000_000), 1), (iv(0, 0, 0), 6)].into_iter(),
                &arena,
            )
            .unwrap();
        assert_eq!(avg.to_string(), "4 days 10:17:08.6896");
        let overflow = AggregateFunc::Sum
            .eval(
                [(iv(i32::MAX, 0, 0), 1), (iv(1, 0, 0), 1)].into_iter(),
                &arena,
            )
            .unwrap_err();
        assert_eq!(overflow, EvalError::DatetimeOutOfRange("interval".into()));
        assert_eq!(overflow.sqlstate(), "22008");
        let interval = ScalarType::Interval.nullable(false);
        assert_eq!(
            AggregateFunc::Avg.output_type(interval).scalar_type,
            ScalarType::Interval
        );
        assert_eq!(
            AggregateFunc::Sum.output_type(interval).scalar_type,
            ScalarType::Interval
        );
    }

    #[test]
    fn float_sums_and_averages_check_overflow_like_postgres() {
        let arena = RowArena::new();
        let f = Datum::Float64;
        let sum = AggregateFunc::Sum.eval([(f(1e308), 1), (f(1e308), 1)].into_iter(), &arena);
        assert_eq!(sum, Err(EvalError::FloatOverflow));
        let sum = AggregateFunc::Sum.eval([(f(1e308), 2)].into_iter(), &arena);
        assert_eq!(sum, Err(EvalError::FloatOverflow));
        // The sum of 1e200 and -1e200 is 0, but avg's sum of squares overflows.
        let vals = [(f(1e200), 1), (f(-1e200), 1)];
        assert_eq!(
            AggregateFunc::Sum.eval(vals.into_iter(), &arena),
            Ok(f(0.0))
        );
        assert_eq!(
            AggregateFunc::Avg.eval(vals.into_iter(), &arena),
            Err(EvalError::FloatOverflow)
        );
        let vals = [(f(f64::INFINITY), 1), (f(1.0), 1)];
        assert_eq!(
            AggregateFunc::Avg.eval(vals.into_iter(), &arena),
            Ok(f(f64::INFINITY))
        );
        let r = Datum::Float32;
        let sum = AggregateFunc::Sum.eval([(r(3e38), 1), (r(3e38), 1)].into_iter(), &arena);
        assert_eq!(sum, Err(EvalError::FloatOverflow));
        let avg = AggregateFunc::Avg.eval([(r(1.0), 1), (r(2.0), 1)].into_iter(), &arena);
        assert_eq!(avg, Ok(f(1.5)));
    }

    #[test]
    fn integer_sums_and_counts_do_not_overflow_silently() {
        let arena = RowArena::new();
        let big = Datum::Int64(i64::MAX);
        let sum = AggregateFunc::Sum
            .eval([(big, 2)].into_iter(), &arena)
            .unwrap();
        assert_eq!(sum.to_string(), "18446744073709551614");
        let avg = AggregateFunc::Avg
            .eval([(big, 2)].into_iter(), &arena)
            .unwrap();
        assert_eq!(avg.to_string(), "9223372036854775807");
        let sum = AggregateFunc::Sum.eval([(Datum::Int32(i32::MAX), i64::MAX)].into_iter(), &arena);
        assert_eq!(sum, Err(EvalError::OutOfRange("bigint".into())));
        let count = AggregateFunc::Count.eval([(big, i64::MAX), (big, 1)].into_iter(), &arena);
        assert_eq!(count, Err(EvalError::OutOfRange("bigint".into())));
        let sum = AggregateFunc::Sum.eval([(Datum::Numeric(Decimal::MAX), 2)].into_iter(), &arena);
        assert_eq!(sum, Err(EvalError::NumericOverflow));
    }

    fn eval_str(func: AggregateFunc, vals: &[(Datum, i64)]) -> String {
        let arena = RowArena::new();
        func.eval(vals.iter().copied(), &arena).unwrap().to_string()
    }

    fn num(s: &str) -> Datum<'static> {
        Datum::Numeric(s.parse().unwrap())
    }

    #[test]
    fn variances_match_postgres() {
        // Expected values from PostgreSQL 15.
        let ints: Vec<(Datum, i64)> = (1..=4).map(|i| (Datum::Int32(i), 1)).collect();
        assert_eq!(
            eval_str(AggregateFunc::VarSamp, &ints),
            "1.6666666666666667"
        );
        assert_eq!(eval_str(AggregateFunc::VarPop, &ints), "1.2500000000000000");
        assert_eq!(
            eval_str(AggregateFunc::StddevSamp, &ints),
            "1.2909944487358056"
        );
        assert_eq!(
            eval_str(AggregateFunc::StddevPop, &ints),
            "1.1180339887498948"
        );
        let floats: Vec<(Datum, i64)> = (1..=4).map(|i| (Datum::Float64(i as f64), 1)).collect();
        assert_eq!(
            eval_str(AggregateFunc::VarSamp, &floats),
            "1.6666666666666667"
        );
        assert_eq!(
            eval_str(AggregateFunc::StddevSamp, &floats),
            "1.2909944487358056"
        );
        let nums = [(num("1.5"), 1), (num("2.25"), 1), (num("3"), 1)];
        assert_eq!(
            eval_str(AggregateFunc::VarSamp, &nums),
            "0.56250000000000000000"
        );
        assert_eq!(
            eval_str(AggregateFunc::StddevSamp, &nums),
            "0.75000000000000000000"
        );
        // Multiplicities count as repeated rows.
        let nums = [(num("1.5"), 2), (num("2.25"), 1)];
        assert_eq!(
            eval_str(AggregateFunc::VarSamp, &nums),
            "0.18750000000000000000"
        );
        assert_eq!(
            eval_str(AggregateFunc::StddevPop, &nums),
            "0.35355339059327376220"
        );
        let nums = [(num("0.1"), 1), (num("0.2"), 1)];
        assert_eq!(
            eval_str(AggregateFunc::VarSamp, &nums),
            "0.00500000000000000000"
        );
        // One value: the sample forms are NULL, the population forms 0.
        let one = [(Datum::Int32(5), 1)];
        assert_eq!(eval_str(AggregateFunc::VarSamp, &one), "NULL");
        assert_eq!(eval_str(AggregateFunc::StddevSamp, &one), "NULL");
        assert_eq!(eval_str(AggregateFunc::VarPop, &one), "0");
        assert_eq!(
            eval_str(AggregateFunc::VarPop, &[(Datum::Int64(2), 3)]),
            "0"
        );
        // float8_accum's overflow check.
        let arena = RowArena::new();
        let big = [(Datum::Float64(1e200), 1), (Datum::Float64(1.0), 1)];
        assert_eq!(
            AggregateFunc::StddevSamp.eval(big.into_iter(), &arena),
            Err(EvalError::FloatOverflow)
        );
        let numeric = ScalarType::Numeric.nullable(false);
        let float = ScalarType::Float32.nullable(false);
        let int = ScalarType::Int16.nullable(false);
        assert_eq!(
            AggregateFunc::StddevPop.output_type(int).scalar_type,
            ScalarType::Numeric
        );
        assert_eq!(
            AggregateFunc::VarPop.output_type(numeric).scalar_type,
            ScalarType::Numeric
        );
        assert_eq!(
            AggregateFunc::VarSamp.output_type(float).scalar_type,
            ScalarType::Float64
        );
    }

    #[test]
    fn running_aggregates_match_eval_at_every_prefix() {
        let values = [
            Datum::Int32(3),
            Datum::Null,
            Datum::Int32(-7),
            Datum::Int32(10),
            Datum::Int32(3),
        ];
        let arena = RowArena::new();
        for func in [
            AggregateFunc::Count,
            AggregateFunc::Sum,
            AggregateFunc::Avg,
            AggregateFunc::Min,
            AggregateFunc::Max,
        ] {
            let mut running = func.running().expect("has a running form");
            for i in 0..values.len() {
                running.add(values[i]).unwrap();
                let expected = func
                    .eval(values[..=i].iter().map(|d| (*d, 1)), &arena)
                    .unwrap();
                assert_eq!(running.value().unwrap(), expected, "{func} of {i}");
            }
        }
    }

    #[test]
    fn bool_aggregates_ignore_nulls() {
        let vals = [(Datum::True, 2), (Datum::Null, 1), (Datum::False, 1)];
        assert_eq!(eval_str(AggregateFunc::BoolAnd, &vals), "f");
        assert_eq!(eval_str(AggregateFunc::BoolOr, &vals), "t");
        let trues = [(Datum::True, 2), (Datum::Null, 1)];
        assert_eq!(eval_str(AggregateFunc::BoolAnd, &trues), "t");
        assert_eq!(eval_str(AggregateFunc::BoolOr, &[(Datum::Null, 1)]), "NULL");
    }

    fn record(datums: &[Datum]) -> Vec<u8> {
        Row::pack_slice(datums).data().to_vec()
    }

    #[test]
    fn string_agg_orders_and_skips_nulls_like_postgres() {
        // string_agg(x, ', ' ORDER BY x DESC): field 2 is the key.
        let recs = [
            record(&[Datum::String("a"), Datum::String(", "), Datum::String("a")]),
            record(&[Datum::String("c"), Datum::String(", "), Datum::String("c")]),
            record(&[Datum::Null, Datum::String(", "), Datum::Null]),
            record(&[Datum::String("b"), Datum::String(", "), Datum::String("b")]),
        ];
        let vals: Vec<(Datum, i64)> = recs.iter().map(|r| (Datum::Bytes(r), 1)).collect();
        let desc = AggregateFunc::StringAgg {
            order_by: vec![ColumnOrder {
                column: 2,
                desc: true,
                nulls_last: false,
            }],
        };
        assert_eq!(eval_str(desc, &vals), "c, b, a");
        // Each value but the first is preceded by its own delimiter; NULL is empty.
        let recs = [
            record(&[Datum::String("a"), Datum::String("-"), Datum::Int32(1)]),
            record(&[Datum::String("b"), Datum::Null, Datum::Int32(2)]),
            record(&[Datum::String("c"), Datum::String("+"), Datum::Int32(3)]),
        ];
        let vals: Vec<(Datum, i64)> = recs.iter().map(|r| (Datum::Bytes(r), 1)).collect();
        let by_key = AggregateFunc::StringAgg {
            order_by: vec![ColumnOrder {
                column: 2,
                desc: false,
                nulls_last: true,
            }],
        };
        assert_eq!(eval_str(by_key.clone(), &vals), "ab+c");
        // A multiplicity repeats the value.
        let vals = [(Datum::Bytes(&recs[0]), 3)];
        assert_eq!(eval_str(by_key.clone(), &vals), "a-a-a");
        let nulls = record(&[Datum::Null, Datum::String(",")]);
        assert_eq!(eval_str(by_key, &[(Datum::Bytes(&nulls), 1)]), "NULL");
    }
}
