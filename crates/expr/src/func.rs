//! The scalar function library: unary, binary and variadic functions with their
//! evaluation and result types.
//!
//! Functions follow PostgreSQL: NULL in gives NULL out (except the functions documented
//! otherwise: `AND`, `OR`, `IS NULL`, `COALESCE`, `CONCAT`); integer overflow and
//! division by zero are errors, not wrapped values.

use std::cmp::Ordering;
use std::fmt;

use repr::adt::{Interval, MICROS_PER_DAY};
use repr::strconv;
use repr::{ColumnType, Datum, EvalError, ScalarType};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::scalar::{MirScalarExpr, RowArena};

/// Functions of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UnaryFunc {
    Not,
    IsNull,
    IsTrue,
    IsFalse,
    Neg,
    Abs,
    /// A cast to the given type from the argument's type.
    Cast(ScalarType),
    Lower,
    Upper,
    CharLength,
}

/// Functions of two arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BinaryFunc {
    And,
    Or,
    Eq,
    NotEq,
    Lt,
    Lte,
    Gt,
    Gte,
    /// `IS NOT DISTINCT FROM`: equality where NULL equals NULL.
    IsNotDistinctFrom,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    /// `||` on text.
    TextConcat,
    Like,
    ILike,
}

/// Functions of any number of arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VariadicFunc {
    Coalesce,
    Greatest,
    Least,
    /// `concat(...)`: NULLs are skipped.
    Concat,
    /// `version()`.
    Version,
}

impl fmt::Display for UnaryFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnaryFunc::Not => f.write_str("not"),
            UnaryFunc::IsNull => f.write_str("isnull"),
            UnaryFunc::IsTrue => f.write_str("istrue"),
            UnaryFunc::IsFalse => f.write_str("isfalse"),
            UnaryFunc::Neg => f.write_str("-"),
            UnaryFunc::Abs => f.write_str("abs"),
            UnaryFunc::Cast(t) => write!(f, "cast_to_{}", t.name().replace(' ', "_")),
            UnaryFunc::Lower => f.write_str("lower"),
            UnaryFunc::Upper => f.write_str("upper"),
            UnaryFunc::CharLength => f.write_str("char_length"),
        }
    }
}

impl fmt::Display for BinaryFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.infix().unwrap_or(match self {
            BinaryFunc::IsNotDistinctFrom => "is_not_distinct_from",
            _ => "?",
        }))
    }
}

impl fmt::Display for VariadicFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VariadicFunc::Coalesce => "coalesce",
            VariadicFunc::Greatest => "greatest",
            VariadicFunc::Least => "least",
            VariadicFunc::Concat => "concat",
            VariadicFunc::Version => "version",
        })
    }
}

fn out_of_range(typ: &str) -> EvalError {
    EvalError::OutOfRange(typ.to_string())
}

fn decimal_to_i64(d: Decimal, typ: &str) -> Result<i64, EvalError> {
    d.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
        .ok_or_else(|| out_of_range(typ))
}

fn float_to_i64(f: f64, typ: &str) -> Result<i64, EvalError> {
    let r = f.round_ties_even();
    if !r.is_finite() || r < i64::MIN as f64 || r >= i64::MAX as f64 {
        return Err(out_of_range(typ));
    }
    Ok(r as i64)
}

fn float_of(d: Datum) -> Option<f64> {
    match d {
        Datum::Int16(v) => Some(v as f64),
        Datum::Int32(v) => Some(v as f64),
        Datum::Int64(v) => Some(v as f64),
        Datum::Float32(v) => Some(v as f64),
        Datum::Float64(v) => Some(v),
        Datum::Numeric(v) => v.to_f64(),
        _ => None,
    }
}

fn numeric_of(d: Datum) -> Result<Decimal, EvalError> {
    match d {
        Datum::Int16(v) => Ok(Decimal::from(v)),
        Datum::Int32(v) => Ok(Decimal::from(v)),
        Datum::Int64(v) => Ok(Decimal::from(v)),
        Datum::Float32(v) => Decimal::from_f32(v).ok_or_else(|| out_of_range("numeric")),
        Datum::Float64(v) => Decimal::from_f64(v).ok_or_else(|| out_of_range("numeric")),
        Datum::Numeric(v) => Ok(v),
        other => Err(EvalError::Internal(format!("not a number: {other:?}"))),
    }
}

/// Casts a non-null datum to `to`.
pub fn cast<'a>(d: Datum<'a>, to: ScalarType, arena: &'a RowArena) -> Result<Datum<'a>, EvalError> {
    if d.is_null() {
        return Ok(Datum::Null);
    }
    if d.scalar_type() == Some(to) {
        return Ok(d);
    }
    Ok(match (d, to) {
        (_, ScalarType::String) => Datum::String(arena.push_string(strconv::format_datum(d))),
        (Datum::String(s), _) => {
            let row = strconv::parse_datum(s, to)?;
            let bytes = arena.push_bytes(row.data().to_vec());
            return Ok(first_datum(bytes, to, s, arena));
        }
        (Datum::True | Datum::False, ScalarType::Int32) => Datum::Int32(d.unwrap_bool() as i32),
        (Datum::True | Datum::False, ScalarType::Int64) => Datum::Int64(d.unwrap_bool() as i64),
        (Datum::Int32(v), ScalarType::Bool) => Datum::from_bool(v != 0),
        (Datum::Int64(v), ScalarType::Bool) => Datum::from_bool(v != 0),
        (_, ScalarType::Int16) => Datum::Int16(
            i16::try_from(to_i64(d, "smallint")?).map_err(|_| out_of_range("smallint"))?,
        ),
        (_, ScalarType::Int32) => {
            Datum::Int32(i32::try_from(to_i64(d, "integer")?).map_err(|_| out_of_range("integer"))?)
        }
        (_, ScalarType::Int64) => Datum::Int64(to_i64(d, "bigint")?),
        (_, ScalarType::Float32) => match float_of(d) {
            Some(f) => Datum::Float32(f as f32),
            None => return Err(cast_error(d, to)),
        },
        (_, ScalarType::Float64) => match float_of(d) {
            Some(f) => Datum::Float64(f),
            None => return Err(cast_error(d, to)),
        },
        (Datum::Float32(f), ScalarType::Numeric) if !f.is_finite() => {
            return Err(out_of_range("numeric"))
        }
        (Datum::Float64(f), ScalarType::Numeric) if !f.is_finite() => {
            return Err(out_of_range("numeric"))
        }
        (Datum::Float64(f), ScalarType::Numeric) => {
            // Round through the shortest decimal text, as PostgreSQL does.
            Datum::Numeric(
                strconv::parse_numeric(&f.to_string()).ok_or_else(|| out_of_range("numeric"))?,
            )
        }
        (_, ScalarType::Numeric) if float_of(d).is_some() => Datum::Numeric(numeric_of(d)?),
        (Datum::Date(days), ScalarType::Timestamp) => {
            Datum::Timestamp(days as i64 * MICROS_PER_DAY)
        }
        (Datum::Date(days), ScalarType::TimestampTz) => {
            Datum::TimestampTz(days as i64 * MICROS_PER_DAY)
        }
        (Datum::Timestamp(m), ScalarType::Date) | (Datum::TimestampTz(m), ScalarType::Date) => {
            Datum::Date(m.div_euclid(MICROS_PER_DAY) as i32)
        }
        (Datum::Timestamp(m), ScalarType::TimestampTz) => Datum::TimestampTz(m),
        (Datum::TimestampTz(m), ScalarType::Timestamp) => Datum::Timestamp(m),
        (Datum::Timestamp(m), ScalarType::Time) | (Datum::TimestampTz(m), ScalarType::Time) => {
            Datum::Time(m.rem_euclid(MICROS_PER_DAY))
        }
        _ => return Err(cast_error(d, to)),
    })
}

fn first_datum<'a>(bytes: &'a [u8], to: ScalarType, s: &str, _arena: &'a RowArena) -> Datum<'a> {
    // `bytes` hold one datum packed by `parse_datum`; decode it where it lies.
    repr::Row::datum_from_packed(bytes)
        .unwrap_or_else(|| panic!("parse_datum produced an undecodable {to} for {s:?}"))
}

fn cast_error(d: Datum, to: ScalarType) -> EvalError {
    EvalError::InvalidParameter(format!(
        "cannot cast type {} to {}",
        d.scalar_type().map(|t| t.name()).unwrap_or("unknown"),
        to.name()
    ))
}

fn to_i64(d: Datum, typ: &str) -> Result<i64, EvalError> {
    match d {
        Datum::Int16(v) => Ok(v as i64),
        Datum::Int32(v) => Ok(v as i64),
        Datum::Int64(v) => Ok(v),
        Datum::Float32(v) => float_to_i64(v as f64, typ),
        Datum::Float64(v) => float_to_i64(v, typ),
        Datum::Numeric(v) => decimal_to_i64(v, typ),
        other => Err(cast_error(other, ScalarType::Int64)),
    }
}

impl UnaryFunc {
    pub fn eval<'a>(&self, a: Datum<'a>, arena: &'a RowArena) -> Result<Datum<'a>, EvalError> {
        match self {
            UnaryFunc::IsNull => return Ok(Datum::from_bool(a.is_null())),
            UnaryFunc::IsTrue => return Ok(Datum::from_bool(matches!(a, Datum::True))),
            UnaryFunc::IsFalse => return Ok(Datum::from_bool(matches!(a, Datum::False))),
            _ => {}
        }
        if a.is_null() {
            return Ok(Datum::Null);
        }
        Ok(match self {
            UnaryFunc::Not => Datum::from_bool(!a.unwrap_bool()),
            UnaryFunc::Neg => match a {
                Datum::Int16(v) => {
                    Datum::Int16(v.checked_neg().ok_or_else(|| out_of_range("smallint"))?)
                }
                Datum::Int32(v) => {
                    Datum::Int32(v.checked_neg().ok_or_else(|| out_of_range("integer"))?)
                }
                Datum::Int64(v) => {
                    Datum::Int64(v.checked_neg().ok_or_else(|| out_of_range("bigint"))?)
                }
                Datum::Float32(v) => Datum::Float32(-v),
                Datum::Float64(v) => Datum::Float64(-v),
                Datum::Numeric(v) => Datum::Numeric(-v),
                Datum::Interval(iv) => Datum::Interval(Interval {
                    months: -iv.months,
                    days: -iv.days,
                    micros: -iv.micros,
                }),
                other => return Err(EvalError::Internal(format!("cannot negate {other:?}"))),
            },
            UnaryFunc::Abs => match a {
                Datum::Int16(v) => {
                    Datum::Int16(v.checked_abs().ok_or_else(|| out_of_range("smallint"))?)
                }
                Datum::Int32(v) => {
                    Datum::Int32(v.checked_abs().ok_or_else(|| out_of_range("integer"))?)
                }
                Datum::Int64(v) => {
                    Datum::Int64(v.checked_abs().ok_or_else(|| out_of_range("bigint"))?)
                }
                Datum::Float32(v) => Datum::Float32(v.abs()),
                Datum::Float64(v) => Datum::Float64(v.abs()),
                Datum::Numeric(v) => Datum::Numeric(v.abs()),
                other => return Err(EvalError::Internal(format!("cannot take abs of {other:?}"))),
            },
            UnaryFunc::Cast(to) => return cast(a, *to, arena),
            UnaryFunc::Lower => match a {
                Datum::String(s) => Datum::String(arena.push_string(s.to_lowercase())),
                other => other,
            },
            UnaryFunc::Upper => match a {
                Datum::String(s) => Datum::String(arena.push_string(s.to_uppercase())),
                other => other,
            },
            UnaryFunc::CharLength => match a {
                Datum::String(s) => Datum::Int32(s.chars().count() as i32),
                Datum::Bytes(b) => Datum::Int32(b.len() as i32),
                other => return Err(EvalError::Internal(format!("no length for {other:?}"))),
            },
            UnaryFunc::IsNull | UnaryFunc::IsTrue | UnaryFunc::IsFalse => {
                unreachable!("handled above")
            }
        })
    }

    pub fn output_type(&self, input: ColumnType) -> ColumnType {
        match self {
            UnaryFunc::IsNull | UnaryFunc::IsTrue | UnaryFunc::IsFalse => {
                ScalarType::Bool.nullable(false)
            }
            UnaryFunc::Not => ScalarType::Bool.nullable(input.nullable),
            UnaryFunc::Neg | UnaryFunc::Abs => input,
            UnaryFunc::Cast(to) => to.nullable(input.nullable),
            UnaryFunc::Lower | UnaryFunc::Upper => ScalarType::String.nullable(input.nullable),
            UnaryFunc::CharLength => ScalarType::Int32.nullable(input.nullable),
        }
    }
}

macro_rules! int_arith {
    ($a:expr, $b:expr, $op:ident, $typ:expr) => {
        $a.$op($b).ok_or_else(|| out_of_range($typ))?
    };
}

fn arith<'a>(func: BinaryFunc, a: Datum<'a>, b: Datum<'a>) -> Result<Datum<'a>, EvalError> {
    use BinaryFunc::*;
    let zero_div = |is_zero: bool| -> Result<(), EvalError> {
        if is_zero && matches!(func, Div | Mod) {
            Err(EvalError::DivisionByZero)
        } else {
            Ok(())
        }
    };
    Ok(match (a, b) {
        (Datum::Int16(x), Datum::Int16(y)) => {
            zero_div(y == 0)?;
            Datum::Int16(match func {
                Add => int_arith!(x, y, checked_add, "smallint"),
                Sub => int_arith!(x, y, checked_sub, "smallint"),
                Mul => int_arith!(x, y, checked_mul, "smallint"),
                Div => int_arith!(x, y, checked_div, "smallint"),
                _ => x.checked_rem(y).unwrap_or(0),
            })
        }
        (Datum::Int32(x), Datum::Int32(y)) => {
            zero_div(y == 0)?;
            Datum::Int32(match func {
                Add => int_arith!(x, y, checked_add, "integer"),
                Sub => int_arith!(x, y, checked_sub, "integer"),
                Mul => int_arith!(x, y, checked_mul, "integer"),
                Div => int_arith!(x, y, checked_div, "integer"),
                _ => x.checked_rem(y).unwrap_or(0),
            })
        }
        (Datum::Int64(x), Datum::Int64(y)) => {
            zero_div(y == 0)?;
            Datum::Int64(match func {
                Add => int_arith!(x, y, checked_add, "bigint"),
                Sub => int_arith!(x, y, checked_sub, "bigint"),
                Mul => int_arith!(x, y, checked_mul, "bigint"),
                Div => int_arith!(x, y, checked_div, "bigint"),
                _ => x.checked_rem(y).unwrap_or(0),
            })
        }
        (Datum::Float32(x), Datum::Float32(y)) => {
            zero_div(y == 0.0)?;
            let r = float_op(func, x as f64, y as f64) as f32;
            if r.is_infinite() && x.is_finite() && y.is_finite() {
                return Err(out_of_range("real"));
            }
            Datum::Float32(r)
        }
        (Datum::Float64(x), Datum::Float64(y)) => {
            zero_div(y == 0.0)?;
            let r = float_op(func, x, y);
            if r.is_infinite() && x.is_finite() && y.is_finite() {
                return Err(out_of_range("double precision"));
            }
            Datum::Float64(r)
        }
        (Datum::Numeric(x), Datum::Numeric(y)) => {
            zero_div(y.is_zero())?;
            Datum::Numeric(
                match func {
                    Add => x.checked_add(y),
                    Sub => x.checked_sub(y),
                    Mul => x.checked_mul(y),
                    Div => numeric_div(x, y),
                    _ => x.checked_rem(y),
                }
                .ok_or_else(|| out_of_range("numeric"))?,
            )
        }
        (Datum::Date(d), Datum::Int32(n)) if matches!(func, Add | Sub) => {
            let n = if func == Add { n } else { -n };
            Datum::Date(d.checked_add(n).ok_or_else(|| out_of_range("date"))?)
        }
        (Datum::Date(x), Datum::Date(y)) if func == Sub => Datum::Int32(x - y),
        (Datum::Date(d), Datum::Interval(iv)) => {
            timestamp_interval(func, d as i64 * MICROS_PER_DAY, iv).map(Datum::Timestamp)?
        }
        (Datum::Timestamp(t), Datum::Interval(iv)) => {
            timestamp_interval(func, t, iv).map(Datum::Timestamp)?
        }
        (Datum::TimestampTz(t), Datum::Interval(iv)) => {
            timestamp_interval(func, t, iv).map(Datum::TimestampTz)?
        }
        (Datum::Timestamp(x), Datum::Timestamp(y))
        | (Datum::TimestampTz(x), Datum::TimestampTz(y))
            if func == Sub =>
        {
            let micros = x - y;
            Datum::Interval(Interval {
                months: 0,
                days: (micros / MICROS_PER_DAY) as i32,
                micros: micros % MICROS_PER_DAY,
            })
        }
        (Datum::Interval(x), Datum::Interval(y)) if matches!(func, Add | Sub) => {
            let s = if func == Add { 1 } else { -1 };
            Datum::Interval(Interval {
                months: x.months + s * y.months,
                days: x.days + s * y.days,
                micros: x.micros + s as i64 * y.micros,
            })
        }
        (x, y) => {
            return Err(EvalError::Internal(format!(
                "no {func:?} for {x:?} and {y:?}"
            )))
        }
    })
}

fn float_op(func: BinaryFunc, x: f64, y: f64) -> f64 {
    match func {
        BinaryFunc::Add => x + y,
        BinaryFunc::Sub => x - y,
        BinaryFunc::Mul => x * y,
        BinaryFunc::Div => x / y,
        _ => x % y,
    }
}

/// Numeric division rounds to PostgreSQL's `select_div_scale`: at least 16 significant
/// digits, computed on base-10000 digit weights as PostgreSQL stores numerics.
pub fn numeric_div(x: Decimal, y: Decimal) -> Option<Decimal> {
    let q = x.checked_div(y)?;
    // The base-10000 weight and first base-10000 digit of a decimal.
    let weight_and_first = |d: Decimal| -> (i64, i64) {
        let a = d.abs();
        if a.is_zero() {
            return (0, 0);
        }
        let mantissa = a.mantissa();
        let scale = a.scale() as i64;
        let e = mantissa.to_string().len() as i64 - 1 - scale;
        let weight = e.div_euclid(4);
        // a / 10000^weight = mantissa * 10^(-scale - 4 * weight), which is below 10000.
        let shift = -scale - 4 * weight;
        let first = if shift >= 0 {
            mantissa * 10i128.pow(shift as u32)
        } else {
            mantissa / 10i128.pow((-shift) as u32)
        };
        (weight, first as i64)
    };
    let (w1, f1) = weight_and_first(x);
    let (w2, f2) = weight_and_first(y);
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let scale = (16 - qweight * 4)
        .max(x.scale() as i64)
        .max(y.scale() as i64)
        .clamp(0, 28);
    let mut q = q.round_dp_with_strategy(
        scale as u32,
        rust_decimal::RoundingStrategy::MidpointAwayFromZero,
    );
    q.rescale(scale as u32);
    Some(q)
}

fn timestamp_interval(func: BinaryFunc, t: i64, iv: Interval) -> Result<i64, EvalError> {
    let sign = if func == BinaryFunc::Add {
        1
    } else if func == BinaryFunc::Sub {
        -1
    } else {
        return Err(EvalError::Internal(format!(
            "no {func:?} for timestamp and interval"
        )));
    };
    let mut dt = strconv::timestamp_to_naive(t).ok_or_else(|| out_of_range("timestamp"))?;
    if iv.months != 0 {
        let months = chrono::Months::new(iv.months.unsigned_abs());
        dt = if (iv.months > 0) == (sign > 0) {
            dt.checked_add_months(months)
        } else {
            dt.checked_sub_months(months)
        }
        .ok_or_else(|| out_of_range("timestamp"))?;
    }
    let delta = sign * (iv.days as i64 * MICROS_PER_DAY + iv.micros);
    strconv::naive_to_timestamp(dt)
        .checked_add(delta)
        .ok_or_else(|| out_of_range("timestamp"))
}

/// SQL `LIKE`: `%` matches any run, `_` one character, `\` escapes.
pub fn like(text: &str, pattern: &str, case_insensitive: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            text.to_lowercase().chars().collect(),
            pattern.to_lowercase().chars().collect(),
        )
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    fn go(t: &[char], p: &[char]) -> bool {
        let (mut ti, mut pi) = (0, 0);
        let (mut star_p, mut star_t) = (None, 0);
        while ti < t.len() {
            if pi < p.len() {
                match p[pi] {
                    '%' => {
                        star_p = Some(pi);
                        star_t = ti;
                        pi += 1;
                        continue;
                    }
                    '_' => {
                        ti += 1;
                        pi += 1;
                        continue;
                    }
                    '\\' if pi + 1 < p.len() && p[pi + 1] == t[ti] => {
                        ti += 1;
                        pi += 2;
                        continue;
                    }
                    c if c != '\\' && c == t[ti] => {
                        ti += 1;
                        pi += 1;
                        continue;
                    }
                    _ => {}
                }
            }
            match star_p {
                Some(sp) => {
                    pi = sp + 1;
                    star_t += 1;
                    ti = star_t;
                }
                None => return false,
            }
        }
        p[pi..].iter().all(|c| *c == '%')
    }
    go(&t, &p)
}

impl BinaryFunc {
    /// The operator's infix spelling, for EXPLAIN.
    pub fn infix(&self) -> Option<&'static str> {
        Some(match self {
            BinaryFunc::And => "AND",
            BinaryFunc::Or => "OR",
            BinaryFunc::Eq => "=",
            BinaryFunc::NotEq => "!=",
            BinaryFunc::Lt => "<",
            BinaryFunc::Lte => "<=",
            BinaryFunc::Gt => ">",
            BinaryFunc::Gte => ">=",
            BinaryFunc::Add => "+",
            BinaryFunc::Sub => "-",
            BinaryFunc::Mul => "*",
            BinaryFunc::Div => "/",
            BinaryFunc::Mod => "%",
            BinaryFunc::TextConcat => "||",
            BinaryFunc::Like => "like",
            BinaryFunc::ILike => "ilike",
            BinaryFunc::IsNotDistinctFrom => return None,
        })
    }

    pub fn eval<'a>(
        &self,
        a: Datum<'a>,
        b: Datum<'a>,
        arena: &'a RowArena,
    ) -> Result<Datum<'a>, EvalError> {
        use BinaryFunc::*;
        match self {
            And => {
                return Ok(match (a, b) {
                    (Datum::False, _) | (_, Datum::False) => Datum::False,
                    (Datum::True, Datum::True) => Datum::True,
                    _ => Datum::Null,
                })
            }
            Or => {
                return Ok(match (a, b) {
                    (Datum::True, _) | (_, Datum::True) => Datum::True,
                    (Datum::False, Datum::False) => Datum::False,
                    _ => Datum::Null,
                })
            }
            IsNotDistinctFrom => return Ok(Datum::from_bool(a == b)),
            _ => {}
        }
        if a.is_null() || b.is_null() {
            return Ok(Datum::Null);
        }
        Ok(match self {
            Eq => Datum::from_bool(a.cmp(&b) == Ordering::Equal),
            NotEq => Datum::from_bool(a.cmp(&b) != Ordering::Equal),
            Lt => Datum::from_bool(a < b),
            Lte => Datum::from_bool(a <= b),
            Gt => Datum::from_bool(a > b),
            Gte => Datum::from_bool(a >= b),
            Add | Sub | Mul | Div | Mod => arith(*self, a, b)?,
            TextConcat => {
                let s = format!("{}{}", strconv::format_datum(a), strconv::format_datum(b));
                Datum::String(arena.push_string(s))
            }
            Like | ILike => match (a, b) {
                (Datum::String(t), Datum::String(p)) => {
                    Datum::from_bool(like(t, p, *self == ILike))
                }
                _ => return Err(EvalError::Internal("LIKE on non-text".into())),
            },
            And | Or | IsNotDistinctFrom => unreachable!("handled above"),
        })
    }

    pub fn output_type(&self, a: ColumnType, b: ColumnType) -> ColumnType {
        use BinaryFunc::*;
        let nullable = a.nullable || b.nullable;
        let scalar = match self {
            And | Or | Eq | NotEq | Lt | Lte | Gt | Gte | Like | ILike => ScalarType::Bool,
            IsNotDistinctFrom => return ScalarType::Bool.nullable(false),
            TextConcat => ScalarType::String,
            Add | Sub | Mul | Div | Mod => match (a.scalar_type, b.scalar_type) {
                (ScalarType::Date, ScalarType::Int32) => ScalarType::Date,
                (ScalarType::Date, ScalarType::Date) => ScalarType::Int32,
                (ScalarType::Date, ScalarType::Interval) => ScalarType::Timestamp,
                (ScalarType::Timestamp, ScalarType::Timestamp)
                | (ScalarType::TimestampTz, ScalarType::TimestampTz) => ScalarType::Interval,
                (t, _) => t,
            },
        };
        scalar.nullable(nullable)
    }
}

impl VariadicFunc {
    pub fn eval<'a>(
        &self,
        exprs: &'a [MirScalarExpr],
        datums: &[Datum<'a>],
        arena: &'a RowArena,
    ) -> Result<Datum<'a>, EvalError> {
        match self {
            VariadicFunc::Coalesce => {
                for e in exprs {
                    let d = e.eval(datums, arena)?;
                    if !d.is_null() {
                        return Ok(d);
                    }
                }
                Ok(Datum::Null)
            }
            VariadicFunc::Greatest | VariadicFunc::Least => {
                let mut best: Option<Datum> = None;
                for e in exprs {
                    let d = e.eval(datums, arena)?;
                    if d.is_null() {
                        continue;
                    }
                    best = Some(match best {
                        None => d,
                        Some(b) if (*self == VariadicFunc::Greatest) == (d > b) && d != b => d,
                        Some(b) => b,
                    });
                }
                Ok(best.unwrap_or(Datum::Null))
            }
            VariadicFunc::Concat => {
                let mut out = String::new();
                for e in exprs {
                    let d = e.eval(datums, arena)?;
                    if !d.is_null() {
                        out.push_str(&strconv::format_datum(d));
                    }
                }
                Ok(Datum::String(arena.push_string(out)))
            }
            VariadicFunc::Version => Ok(Datum::String(arena.push_string(version_string()))),
        }
    }

    pub fn output_type(&self, inputs: Vec<ColumnType>) -> ColumnType {
        match self {
            VariadicFunc::Coalesce | VariadicFunc::Greatest | VariadicFunc::Least => {
                let scalar = inputs
                    .first()
                    .map(|t| t.scalar_type)
                    .unwrap_or(ScalarType::String);
                let nullable = match self {
                    VariadicFunc::Coalesce => inputs.iter().all(|t| t.nullable),
                    _ => inputs.iter().all(|t| t.nullable),
                };
                scalar.nullable(nullable)
            }
            VariadicFunc::Concat | VariadicFunc::Version => ScalarType::String.nullable(false),
        }
    }
}

/// What `SELECT version()` returns.
pub fn version_string() -> String {
    format!(
        "PostgreSQL 15.0 (Freshet {}) on {}, a streaming SQL database",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_sql_patterns() {
        assert!(like("hello", "h%o", false));
        assert!(like("hello", "_ello", false));
        assert!(!like("hello", "h_o", false));
        assert!(like("HeLLo", "hello", true));
        assert!(like("100%", "100\\%", false));
        assert!(!like("1000", "100\\%", false));
    }

    #[test]
    fn arithmetic_errors_are_data() {
        let arena = RowArena::new();
        let div = BinaryFunc::Div.eval(Datum::Int32(1), Datum::Int32(0), &arena);
        assert_eq!(div.unwrap_err().sqlstate(), "22012");
        let add = BinaryFunc::Add.eval(Datum::Int32(i32::MAX), Datum::Int32(1), &arena);
        assert_eq!(add.unwrap_err(), EvalError::OutOfRange("integer".into()));
        let ok = BinaryFunc::Div
            .eval(Datum::Int32(-7), Datum::Int32(2), &arena)
            .unwrap();
        assert_eq!(ok, Datum::Int32(-3));
    }

    #[test]
    fn casts_follow_postgres() {
        let arena = RowArena::new();
        assert_eq!(
            cast(Datum::Float64(2.5), ScalarType::Int32, &arena).unwrap(),
            Datum::Int32(2)
        );
        assert_eq!(
            cast(
                Datum::Numeric(Decimal::new(25, 1)),
                ScalarType::Int32,
                &arena
            )
            .unwrap(),
            Datum::Int32(3)
        );
        assert_eq!(
            cast(Datum::String("12"), ScalarType::Int64, &arena).unwrap(),
            Datum::Int64(12)
        );
        assert_eq!(
            cast(Datum::Int32(7), ScalarType::String, &arena).unwrap(),
            Datum::String("7")
        );
        assert_eq!(
            cast(Datum::String("x"), ScalarType::Int32, &arena)
                .unwrap_err()
                .sqlstate(),
            "22P02"
        );
    }

    #[test]
    fn numeric_division_scale_matches_postgres() {
        let d = |s: &str| strconv::parse_numeric(s).unwrap();
        assert_eq!(
            numeric_div(d("3"), d("2")).unwrap().to_string(),
            "1.5000000000000000"
        );
        assert_eq!(
            numeric_div(d("1"), d("3")).unwrap().to_string(),
            "0.33333333333333333333"
        );
        assert_eq!(
            numeric_div(d("60"), d("3")).unwrap().to_string(),
            "20.0000000000000000"
        );
    }

    #[test]
    fn three_valued_logic() {
        let arena = RowArena::new();
        assert_eq!(
            BinaryFunc::And
                .eval(Datum::Null, Datum::False, &arena)
                .unwrap(),
            Datum::False
        );
        assert_eq!(
            BinaryFunc::And
                .eval(Datum::Null, Datum::True, &arena)
                .unwrap(),
            Datum::Null
        );
        assert_eq!(
            BinaryFunc::Or
                .eval(Datum::Null, Datum::True, &arena)
                .unwrap(),
            Datum::True
        );
        assert_eq!(
            BinaryFunc::Eq
                .eval(Datum::Null, Datum::Null, &arena)
                .unwrap(),
            Datum::Null
        );
    }
}
