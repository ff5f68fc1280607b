//! Aggregate functions: what a `Reduce` computes for each group.
//!
//! An aggregate sees the group's values with their multiplicities (a value inserted
//! three times arrives once with count 3). NULLs are ignored by every aggregate except
//! `count(*)`, which the planner expresses as `count(true)`.

use std::fmt;

use repr::{ColumnType, Datum, EvalError, ScalarType};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::func::numeric_div;
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
    pub fn eval<'a>(
        &self,
        values: impl Iterator<Item = (Datum<'a>, i64)>,
    ) -> Result<Datum<'a>, EvalError> {
        let mut values = values.filter(|(d, n)| !d.is_null() && *n != 0);
        match self {
            AggregateFunc::Count => Ok(Datum::Int64(values.map(|(_, n)| n).sum())),
            AggregateFunc::Min => Ok(values.map(|(d, _)| d).min().unwrap_or(Datum::Null)),
            AggregateFunc::Max => Ok(values.map(|(d, _)| d).max().unwrap_or(Datum::Null)),
            AggregateFunc::Sum | AggregateFunc::Avg => {
                let first = match values.next() {
                    Some(v) => v,
                    None => return Ok(Datum::Null),
                };
                let output = first
                    .0
                    .scalar_type()
                    .map(|t| self.output_type(t.nullable(true)).scalar_type)
                    .unwrap_or(ScalarType::Numeric);
                let all = std::iter::once(first).chain(values);
                match first.0 {
                    Datum::Float32(_) | Datum::Float64(_) => {
                        let (mut sum, mut count) = (0.0f64, 0i64);
                        for (d, n) in all {
                            let v = match d {
                                Datum::Float32(f) => f as f64,
                                Datum::Float64(f) => f,
                                _ => return Err(EvalError::Internal("mixed sum input".into())),
                            };
                            sum += v * n as f64;
                            count += n;
                        }
                        let result = if *self == AggregateFunc::Avg {
                            sum / count as f64
                        } else {
                            sum
                        };
                        Ok(match output {
                            ScalarType::Float32 => Datum::Float32(result as f32),
                            _ => Datum::Float64(result),
                        })
                    }
                    _ => {
                        let (mut sum, mut count) = (Decimal::ZERO, 0i64);
                        let overflow = || EvalError::OutOfRange(output.name().to_string());
                        for (d, n) in all {
                            let v = match d {
                                Datum::Int16(v) => Decimal::from(v),
                                Datum::Int32(v) => Decimal::from(v),
                                Datum::Int64(v) => Decimal::from(v),
                                Datum::Numeric(v) => v,
                                _ => return Err(EvalError::Internal("mixed sum input".into())),
                            };
                            sum = v
                                .checked_mul(Decimal::from(n))
                                .and_then(|p| sum.checked_add(p))
                                .ok_or_else(overflow)?;
                            count += n;
                        }
                        if *self == AggregateFunc::Avg {
                            return numeric_div(sum, Decimal::from(count))
                                .map(Datum::Numeric)
                                .ok_or_else(overflow);
                        }
                        Ok(match output {
                            ScalarType::Int64 => Datum::Int64(sum.to_i64().ok_or_else(overflow)?),
                            ScalarType::Int32 => Datum::Int32(sum.to_i32().ok_or_else(overflow)?),
                            _ => Datum::Numeric(sum),
                        })
                    }
                }
            }
        }
    }
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
}
