//! Aggregate functions: what a `Reduce` computes for each group.
//!
//! An aggregate sees the group's values with their multiplicities (a value inserted
//! three times arrives once with count 3). NULLs are ignored by every aggregate except
//! `count(*)`, which the planner expresses as `count(true)`.

use std::fmt;

use repr::adt::{interval_out_of_range, Interval};
use repr::{ColumnType, Datum, EvalError, ScalarType};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::func::{check_float, numeric_div};
use crate::scalar::MirScalarExpr;

/// An aggregate function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AggregateFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
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
        })
    }
}

impl fmt::Display for AggregateExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let distinct = if self.distinct { "distinct " } else { "" };
        write!(f, "{}({distinct}{})", self.func, self.expr)
    }
}

impl AggregateFunc {
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
        };
        scalar.nullable(true)
    }

    /// Folds the group's values (with multiplicities) into the aggregate's value, of
    /// the type [`AggregateFunc::output_type`] gives for the values' type.
    ///
    /// Overflow is an error with PostgreSQL's SQLSTATE: `bigint out of range`, `value
    /// out of range: overflow` for floats, `interval out of range`, and `value
    /// overflows numeric format` where PostgreSQL's unbounded numeric would not overflow.
    pub fn eval<'a>(
        &self,
        values: impl Iterator<Item = (Datum<'a>, i64)>,
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
        }
    }
}

/// The running state of `sum` or `avg` over one input type.
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
        let vals = vec![(Datum::Int32(2), 3), (Datum::Null, 5), (Datum::Int32(5), 1)];
        let count = AggregateFunc::Count.eval(vals.clone().into_iter()).unwrap();
        assert_eq!(count, Datum::Int64(4));
        let sum = AggregateFunc::Sum.eval(vals.clone().into_iter()).unwrap();
        assert_eq!(sum, Datum::Int64(11));
        let max = AggregateFunc::Max.eval(vals.clone().into_iter()).unwrap();
        assert_eq!(max, Datum::Int32(5));
        let avg = AggregateFunc::Avg.eval(vals.into_iter()).unwrap();
        assert_eq!(avg.to_string(), "2.7500000000000000");
        let empty = AggregateFunc::Sum.eval(std::iter::empty()).unwrap();
        assert_eq!(empty, Datum::Null);
    }

    fn iv(months: i32, days: i32, micros: i64) -> Datum<'static> {
        Datum::Interval(Interval::new(months, days, micros))
    }

    const HOUR: i64 = 3_600_000_000;

    #[test]
    fn sum_and_avg_of_intervals_match_postgres() {
        // Expected values from PostgreSQL 15.
        let vals = vec![(iv(1, 0, 0), 1), (iv(0, 1, 0), 1), (iv(0, 0, HOUR), 1)];
        let sum = AggregateFunc::Sum.eval(vals.clone().into_iter()).unwrap();
        assert_eq!(sum.to_string(), "1 mon 1 day 01:00:00");
        let avg = AggregateFunc::Avg.eval(vals.into_iter()).unwrap();
        assert_eq!(avg.to_string(), "10 days 08:20:00");
        let avg = AggregateFunc::Avg
            .eval([(iv(1, 0, 0), 1), (iv(2, 0, 0), 1), (iv(0, 1, 0), 1)].into_iter())
            .unwrap();
        assert_eq!(avg.to_string(), "1 mon 08:00:00");
        // Multiplicities count: 1 mon 1 day 1 sec and six zeros.
        let avg = AggregateFunc::Avg
            .eval([(iv(1, 1, 1_000_000), 1), (iv(0, 0, 0), 6)].into_iter())
            .unwrap();
        assert_eq!(avg.to_string(), "4 days 10:17:08.6896");
        let overflow = AggregateFunc::Sum
            .eval([(iv(i32::MAX, 0, 0), 1), (iv(1, 0, 0), 1)].into_iter())
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
        let f = Datum::Float64;
        let sum = AggregateFunc::Sum.eval([(f(1e308), 1), (f(1e308), 1)].into_iter());
        assert_eq!(sum, Err(EvalError::FloatOverflow));
        let sum = AggregateFunc::Sum.eval([(f(1e308), 2)].into_iter());
        assert_eq!(sum, Err(EvalError::FloatOverflow));
        // The sum of 1e200 and -1e200 is 0, but avg's sum of squares overflows.
        let vals = [(f(1e200), 1), (f(-1e200), 1)];
        assert_eq!(AggregateFunc::Sum.eval(vals.into_iter()), Ok(f(0.0)));
        assert_eq!(
            AggregateFunc::Avg.eval(vals.into_iter()),
            Err(EvalError::FloatOverflow)
        );
        let vals = [(f(f64::INFINITY), 1), (f(1.0), 1)];
        assert_eq!(
            AggregateFunc::Avg.eval(vals.into_iter()),
            Ok(f(f64::INFINITY))
        );
        let r = Datum::Float32;
        let sum = AggregateFunc::Sum.eval([(r(3e38), 1), (r(3e38), 1)].into_iter());
        assert_eq!(sum, Err(EvalError::FloatOverflow));
        let avg = AggregateFunc::Avg.eval([(r(1.0), 1), (r(2.0), 1)].into_iter());
        assert_eq!(avg, Ok(f(1.5)));
    }

    #[test]
    fn integer_sums_and_counts_do_not_overflow_silently() {
        let big = Datum::Int64(i64::MAX);
        let sum = AggregateFunc::Sum.eval([(big, 2)].into_iter()).unwrap();
        assert_eq!(sum.to_string(), "18446744073709551614");
        let avg = AggregateFunc::Avg.eval([(big, 2)].into_iter()).unwrap();
        assert_eq!(avg.to_string(), "9223372036854775807");
        let sum = AggregateFunc::Sum.eval([(Datum::Int32(i32::MAX), i64::MAX)].into_iter());
        assert_eq!(sum, Err(EvalError::OutOfRange("bigint".into())));
        let count = AggregateFunc::Count.eval([(big, i64::MAX), (big, 1)].into_iter());
        assert_eq!(count, Err(EvalError::OutOfRange("bigint".into())));
        let sum = AggregateFunc::Sum.eval([(Datum::Numeric(Decimal::MAX), 2)].into_iter());
        assert_eq!(sum, Err(EvalError::NumericOverflow));
    }
}
