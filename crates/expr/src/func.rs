//! The scalar function library: unary, binary and variadic functions with their
//! evaluation and result types.
//!
//! Functions follow PostgreSQL: NULL in gives NULL out (except the functions documented
//! otherwise: `AND`, `OR`, `IS NULL`, `COALESCE`, `CONCAT`, `concat_ws`, `num_nulls`);
//! integer overflow and division by zero are errors, not wrapped values. The built-in
//! functions are implemented in the submodules `math`, `string` and `datetime`; the
//! planner (`sql::func`) picks the overload and casts the arguments, so each variant
//! here sees only the argument types its signatures allow.

use std::cmp::Ordering;
use std::fmt;

use repr::adt::{self, Interval, MICROS_PER_DAY};
use repr::strconv;
use repr::{ColumnType, Datum, EvalError, ScalarType};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::scalar::{MirScalarExpr, RowArena};

mod datetime;
pub mod jsonb;
mod math;
mod string;

pub use math::{numeric_sqrt_at_scale, FloatFunc, NumericFunc};
pub use string::TrimSide;

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
    /// A numeric with its trailing fractional zeros removed (`1.50` is `1.5`, `0.00` is
    /// `0`): what a join on a numeric key compares, since a packed numeric keeps its
    /// scale and PostgreSQL's `=` ignores it (see `repr::row`).
    NormalizeNumeric,
    /// Coerces a numeric to `numeric(precision, scale)`: rounds to `scale` digits after
    /// the point and fails with `numeric field overflow` if the result needs more than
    /// `precision - scale` digits before it (PostgreSQL's `apply_typmod`).
    NumericTypmod {
        precision: u16,
        scale: i16,
    },
    /// Coerces text to `varchar(length)`. An explicit cast truncates; an assignment
    /// truncates only trailing spaces and otherwise fails with 22001.
    VarcharTypmod {
        length: u32,
        explicit: bool,
    },
    /// Coerces text to `char(length)`: as `VarcharTypmod`, then pads with spaces.
    CharTypmod {
        length: u32,
        explicit: bool,
    },
    /// A function of one double precision argument (`round`, `sqrt`, `sin`, ...).
    Float(FloatFunc),
    /// A function of one numeric argument (`round`, `sqrt`, `ln`, `scale`, ...).
    Numeric(NumericFunc),
    /// `reverse(text)`.
    Reverse,
    /// `initcap(text)`.
    Initcap,
    /// `md5(text)` or `md5(bytea)`: 32 hexadecimal digits.
    Md5,
    /// `ascii(text)`: the first character's code point.
    Ascii,
    /// `chr(integer)`.
    Chr,
    /// `octet_length(text)` or `octet_length(bytea)`.
    OctetLength,
    /// `bit_length(text)` or `bit_length(bytea)`.
    BitLength,
    /// `to_hex(integer)` or `to_hex(bigint)`: of the two's complement.
    ToHex,
    JustifyDays,
    JustifyHours,
    JustifyInterval,
    /// `to_timestamp(double precision)`: seconds since 1970 as a timestamptz.
    ToTimestamp,
    /// `cardinality(anyarray)`: the number of elements.
    Cardinality,
    /// `jsonb_typeof(jsonb)`.
    JsonbTypeof,
    /// `jsonb_array_length(jsonb)`.
    JsonbArrayLength,
    /// `to_jsonb(x)` of any type (see [`jsonb::datum_to_json`]).
    ToJsonb,
    /// `array_ndims(anyarray)`: 1, NULL for an empty array.
    ArrayNdims,
    /// `array_dims(anyarray)`: `[1:n]`, NULL for an empty array.
    ArrayDims,
    /// `jsonb_strip_nulls(jsonb)`.
    JsonbStripNulls,
    /// `jsonb_pretty(jsonb)`.
    JsonbPretty,
}

/// A comparison, as the operator of `x op ANY (array)` and `x op ALL (array)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CompareOp {
    Eq,
    NotEq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl CompareOp {
    pub fn holds(&self, o: Ordering) -> bool {
        match self {
            CompareOp::Eq => o == Ordering::Equal,
            CompareOp::NotEq => o != Ordering::Equal,
            CompareOp::Lt => o == Ordering::Less,
            CompareOp::Lte => o != Ordering::Greater,
            CompareOp::Gt => o == Ordering::Greater,
            CompareOp::Gte => o != Ordering::Less,
        }
    }

    pub fn symbol(&self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::NotEq => "<>",
            CompareOp::Lt => "<",
            CompareOp::Lte => "<=",
            CompareOp::Gt => ">",
            CompareOp::Gte => ">=",
        }
    }
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
    /// `strpos(text, text)`.
    Strpos,
    /// `left(text, integer)`.
    Left,
    /// `right(text, integer)`.
    Right,
    /// `repeat(text, integer)`.
    Repeat,
    /// `starts_with(text, text)`.
    StartsWith,
    /// `power(x, y)` on double precision or on numeric.
    Power,
    /// `atan2(y, x)`.
    Atan2,
    /// `round(numeric, integer)`.
    RoundScale,
    /// `trunc(numeric, integer)`.
    TruncScale,
    /// `div(numeric, numeric)`: the quotient truncated toward zero.
    DivTrunc,
    /// `gcd(x, y)` on integer, bigint or numeric.
    Gcd,
    /// `lcm(x, y)` on integer, bigint or numeric.
    Lcm,
    /// `log(base, x)` on numeric.
    LogBase,
    /// `date_trunc(units, x)` of a timestamp, timestamptz or interval: the result has
    /// the second argument's type.
    DateTrunc,
    /// `date_part(units, x)` of a timestamp, timestamptz, interval or time.
    DatePart,
    /// `EXTRACT(units FROM x)` of a timestamp, timestamptz, date, interval or time: as
    /// `date_part`, but numeric (PostgreSQL 14 and later).
    Extract,
    /// `to_char(x, format)` of a timestamp or timestamptz; NULL for an empty format.
    ToChar,
    /// `age(x, y)` of two timestamps or two timestamptzs.
    Age,
    /// `array_length(anyarray, int)`: NULL for an empty array or a dimension other
    /// than 1.
    ArrayLength,
    /// `array_lower(anyarray, int)`.
    ArrayLower,
    /// `array_upper(anyarray, int)`.
    ArrayUpper,
    /// `a[i]`: NULL out of bounds.
    ArrayIndex,
    /// `x op ANY (array)` (`all` false) or `x op ALL (array)`, with SQL's NULL rules:
    /// ANY is true if any comparison is, else NULL if any is NULL, else false (false
    /// for an empty array, even for a NULL `x`); ALL the other way round.
    ArrayQuantified {
        op: CompareOp,
        all: bool,
    },
    /// `anyarray @> anyarray`: every element of the right is in the left.
    ArrayContains,
    /// `anyarray && anyarray`: some element is in both.
    ArrayOverlap,
    /// `anyarray || anyarray`, `array_cat`.
    ArrayConcat,
    /// `anyarray || anyelement`, `array_append`.
    ArrayAppend,
    /// `anyelement || anyarray`, `array_prepend`.
    ArrayPrepend,
    /// `jsonb -> text`.
    JsonbField,
    /// `jsonb -> int`.
    JsonbIndex,
    /// `jsonb ->> text`.
    JsonbFieldText,
    /// `jsonb ->> int`.
    JsonbIndexText,
    /// `jsonb #> text[]`.
    JsonbPath,
    /// `jsonb #>> text[]`.
    JsonbPathText,
    /// `jsonb @> jsonb` (and `<@` with the operands swapped).
    JsonbContains,
    /// `jsonb ? text`.
    JsonbExists,
    /// `jsonb ?| text[]`.
    JsonbExistsAny,
    /// `jsonb ?& text[]`.
    JsonbExistsAll,
    /// `jsonb || jsonb`.
    JsonbConcat,
    /// `jsonb - text`: the object without the key, or the array without the string.
    JsonbDeleteKey,
    /// `jsonb - int`: the array without the element.
    JsonbDeleteIndex,
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
    /// `substr(x, start [, length])` on text or bytea.
    Substr,
    /// `btrim`, `ltrim` or `rtrim` of `(text [, characters])`.
    Trim(TrimSide),
    /// `lpad(text, length [, fill])`.
    Lpad,
    /// `rpad(text, length [, fill])`.
    Rpad,
    /// `replace(text, from, to)`.
    Replace,
    /// `split_part(text, delimiter, n)`.
    SplitPart,
    /// `translate(text, from, to)`.
    Translate,
    /// `regexp_replace(source, pattern, replacement [, flags])`.
    RegexpReplace,
    /// `regexp_replace(source, pattern, replacement, start [, n [, flags]])`.
    RegexpReplaceAt,
    /// `concat_ws(separator, ...)`: NULL separator gives NULL, NULL values are skipped.
    ConcatWs,
    /// `make_date(year, month, day)`.
    MakeDate,
    /// `make_timestamp(year, month, day, hour, min, sec)`.
    MakeTimestamp,
    /// `make_interval(years, months, weeks, days, hours, mins, secs)`, all seven given.
    MakeInterval,
    /// `date_bin(stride, source, origin)`: the result has the source's type.
    DateBin,
    /// `num_nulls(...)`: never NULL.
    NumNulls,
    /// `num_nonnulls(...)`: never NULL.
    NumNonNulls,
    /// The arguments packed into one [`repr::Row`], as a `bytea` that is never NULL:
    /// how an aggregate of several arguments (`string_agg`) receives them.
    Record,
    /// `overlay(text placing text from int [for int])`.
    Overlay,
    /// `ARRAY[...]`: the arguments, NULLs included, as an array of `elem_type`.
    ArrayCreate {
        elem_type: ScalarType,
    },
    /// `array_to_string(array, delimiter [, null_string])`.
    ArrayToString,
    /// `array_position(array, element [, start])`: the first position of an element
    /// not distinct from `element`, from `start`; NULL if there is none.
    ArrayPosition,
    /// `array_remove(array, element)`.
    ArrayRemove,
    /// `jsonb_build_array(...)`.
    JsonbBuildArray,
    /// `jsonb_build_object(key, value, ...)`.
    JsonbBuildObject,
    /// `string_to_array(text, delimiter [, null_string])` (see
    /// [`jsonb::string_to_array`]).
    StringToArray,
    /// `gen_random_uuid()`: a random (version 4) uuid, a new one at every evaluation.
    /// The only volatile function: [`MirScalarExpr::reduce`] never folds it, and the
    /// planner refuses it where a result is maintained (views, indexes, SUBSCRIBE).
    GenRandomUuid,
    /// `mz_now()`: the logical time a result is computed for, as a `timestamptz`. Never
    /// evaluated: a one-shot query replaces it with its read timestamp, and a
    /// maintained one may only compare it with row values in a temporal filter (see
    /// `crate::temporal`); [`MirScalarExpr::reduce`] never folds it.
    MzNow,
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
            UnaryFunc::NormalizeNumeric => f.write_str("normalize_numeric"),
            UnaryFunc::NumericTypmod { precision, scale } => {
                write!(f, "cast_to_numeric({precision},{scale})")
            }
            UnaryFunc::VarcharTypmod { length, .. } => write!(f, "cast_to_varchar({length})"),
            UnaryFunc::CharTypmod { length, .. } => write!(f, "cast_to_char({length})"),
            UnaryFunc::Float(func) => write!(f, "{func}"),
            UnaryFunc::Numeric(func) => write!(f, "{func}"),
            UnaryFunc::Reverse => f.write_str("reverse"),
            UnaryFunc::Initcap => f.write_str("initcap"),
            UnaryFunc::Md5 => f.write_str("md5"),
            UnaryFunc::Ascii => f.write_str("ascii"),
            UnaryFunc::Chr => f.write_str("chr"),
            UnaryFunc::OctetLength => f.write_str("octet_length"),
            UnaryFunc::BitLength => f.write_str("bit_length"),
            UnaryFunc::ToHex => f.write_str("to_hex"),
            UnaryFunc::JustifyDays => f.write_str("justify_days"),
            UnaryFunc::JustifyHours => f.write_str("justify_hours"),
            UnaryFunc::JustifyInterval => f.write_str("justify_interval"),
            UnaryFunc::ToTimestamp => f.write_str("to_timestamp"),
            UnaryFunc::Cardinality => f.write_str("cardinality"),
            UnaryFunc::JsonbTypeof => f.write_str("jsonb_typeof"),
            UnaryFunc::JsonbArrayLength => f.write_str("jsonb_array_length"),
            UnaryFunc::ToJsonb => f.write_str("to_jsonb"),
            UnaryFunc::ArrayNdims => f.write_str("array_ndims"),
            UnaryFunc::ArrayDims => f.write_str("array_dims"),
            UnaryFunc::JsonbStripNulls => f.write_str("jsonb_strip_nulls"),
            UnaryFunc::JsonbPretty => f.write_str("jsonb_pretty"),
        }
    }
}

impl fmt::Display for BinaryFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.infix().unwrap_or(match self {
            BinaryFunc::IsNotDistinctFrom => "is_not_distinct_from",
            BinaryFunc::Strpos => "strpos",
            BinaryFunc::Left => "left",
            BinaryFunc::Right => "right",
            BinaryFunc::Repeat => "repeat",
            BinaryFunc::StartsWith => "starts_with",
            BinaryFunc::Power => "power",
            BinaryFunc::Atan2 => "atan2",
            BinaryFunc::RoundScale => "round",
            BinaryFunc::TruncScale => "trunc",
            BinaryFunc::DivTrunc => "div",
            BinaryFunc::Gcd => "gcd",
            BinaryFunc::Lcm => "lcm",
            BinaryFunc::LogBase => "log",
            BinaryFunc::DateTrunc => "date_trunc",
            BinaryFunc::DatePart => "date_part",
            BinaryFunc::Extract => "extract",
            BinaryFunc::ToChar => "to_char",
            BinaryFunc::Age => "age",
            BinaryFunc::ArrayLength => "array_length",
            BinaryFunc::ArrayLower => "array_lower",
            BinaryFunc::ArrayUpper => "array_upper",
            BinaryFunc::ArrayIndex => "array_index",
            BinaryFunc::ArrayQuantified { op, all: false } => {
                return write!(f, "{} any", op.symbol())
            }
            BinaryFunc::ArrayQuantified { op, all: true } => {
                return write!(f, "{} all", op.symbol())
            }
            BinaryFunc::ArrayContains => "array_contains",
            BinaryFunc::ArrayOverlap => "array_overlap",
            BinaryFunc::ArrayConcat => "array_cat",
            BinaryFunc::ArrayAppend => "array_append",
            BinaryFunc::ArrayPrepend => "array_prepend",
            BinaryFunc::JsonbField | BinaryFunc::JsonbIndex => "->",
            BinaryFunc::JsonbFieldText | BinaryFunc::JsonbIndexText => "->>",
            BinaryFunc::JsonbPath => "#>",
            BinaryFunc::JsonbPathText => "#>>",
            BinaryFunc::JsonbContains => "@>",
            BinaryFunc::JsonbExists => "?",
            BinaryFunc::JsonbExistsAny => "?|",
            BinaryFunc::JsonbExistsAll => "?&",
            BinaryFunc::JsonbConcat => "jsonb_concat",
            BinaryFunc::JsonbDeleteKey | BinaryFunc::JsonbDeleteIndex => "jsonb_delete",
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
            VariadicFunc::Substr => "substr",
            VariadicFunc::Trim(side) => return write!(f, "{side}"),
            VariadicFunc::Lpad => "lpad",
            VariadicFunc::Rpad => "rpad",
            VariadicFunc::Replace => "replace",
            VariadicFunc::SplitPart => "split_part",
            VariadicFunc::Translate => "translate",
            VariadicFunc::RegexpReplace | VariadicFunc::RegexpReplaceAt => "regexp_replace",
            VariadicFunc::ConcatWs => "concat_ws",
            VariadicFunc::MakeDate => "make_date",
            VariadicFunc::MakeTimestamp => "make_timestamp",
            VariadicFunc::MakeInterval => "make_interval",
            VariadicFunc::DateBin => "date_bin",
            VariadicFunc::NumNulls => "num_nulls",
            VariadicFunc::NumNonNulls => "num_nonnulls",
            VariadicFunc::Record => "row",
            VariadicFunc::Overlay => "overlay",
            VariadicFunc::ArrayCreate { .. } => "array",
            VariadicFunc::ArrayToString => "array_to_string",
            VariadicFunc::ArrayPosition => "array_position",
            VariadicFunc::ArrayRemove => "array_remove",
            VariadicFunc::JsonbBuildArray => "jsonb_build_array",
            VariadicFunc::JsonbBuildObject => "jsonb_build_object",
            VariadicFunc::StringToArray => "string_to_array",
            VariadicFunc::GenRandomUuid => "gen_random_uuid",
            VariadicFunc::MzNow => "mz_now",
        })
    }
}

fn out_of_range(typ: &str) -> EvalError {
    EvalError::OutOfRange(typ.to_string())
}

fn datetime_out_of_range(typ: &str) -> EvalError {
    EvalError::DatetimeOutOfRange(typ.to_string())
}

/// The longest string or byte string a value may be, as in PostgreSQL (1 GB less one).
pub const MAX_VALUE_LEN: usize = (1 << 30) - 1;

/// Checks a string about to be built against [`MAX_VALUE_LEN`].
pub(crate) fn check_value_len(len: usize) -> Result<(), EvalError> {
    if len > MAX_VALUE_LEN {
        Err(EvalError::ProgramLimitExceeded(
            "requested length too large".into(),
        ))
    } else {
        Ok(())
    }
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

/// A float as a numeric the way PostgreSQL's `float8_numeric` and `float4_numeric` do:
/// through the text `%.*g` prints with 15 (double) or 6 (real) significant digits.
fn float_to_numeric(f: f64, significant_digits: usize) -> Result<Decimal, EvalError> {
    if !f.is_finite() {
        return Err(EvalError::FeatureNotSupported(format!(
            "numeric value \"{}\"",
            strconv::format_datum(Datum::Float64(f))
        )));
    }
    let sci = format!("{f:.*e}", significant_digits - 1);
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    strconv::parse_numeric_text(&format!("{mantissa}e{exponent}"))
}

/// The text of a value cast to `text`: the type's output function, except that
/// booleans become `true` and `false` (PostgreSQL's `booltext`).
pub fn text_of(d: Datum) -> String {
    match d {
        Datum::True => "true".into(),
        Datum::False => "false".into(),
        other => strconv::format_datum(other),
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
    match (d, to) {
        (Datum::Jsonb(j), _) if to != ScalarType::String => return jsonb_cast(j, to),
        (Datum::Array(a), ScalarType::Array(elem)) => {
            let mut packer = repr::RowPacker::new();
            for e in a.iter() {
                packer.push(cast(e, *elem, arena)?);
            }
            let row = packer.finish();
            let bytes = arena.push_bytes(row.data().to_vec());
            return repr::Array::from_bytes(bytes)
                .map(Datum::Array)
                .ok_or_else(|| EvalError::Internal("a cast array does not decode".into()));
        }
        _ => {}
    }
    Ok(match (d, to) {
        (_, ScalarType::String) => Datum::String(arena.push_string(text_of(d))),
        (Datum::String(s), _) => {
            let row = strconv::parse_datum(s, to)?;
            let bytes = arena.push_bytes(row.data().to_vec());
            // `parse_datum` packs exactly one datum, which decodes.
            return repr::Row::datum_from_packed(bytes).ok_or_else(|| {
                EvalError::Internal(format!("parsing {s:?} as {to} packed no datum"))
            });
        }
        (Datum::True | Datum::False, ScalarType::Int32) => {
            Datum::Int32(i32::from(d == Datum::True))
        }
        (Datum::True | Datum::False, ScalarType::Int64) => {
            Datum::Int64(i64::from(d == Datum::True))
        }
        (Datum::Int32(v), ScalarType::Bool) => Datum::from_bool(v != 0),
        (Datum::Int64(v), ScalarType::Bool) => Datum::from_bool(v != 0),
        (_, ScalarType::Int16) => Datum::Int16(
            i16::try_from(to_i64(d, "smallint")?).map_err(|_| out_of_range("smallint"))?,
        ),
        (_, ScalarType::Int32) => {
            Datum::Int32(i32::try_from(to_i64(d, "integer")?).map_err(|_| out_of_range("integer"))?)
        }
        (_, ScalarType::Int64) => Datum::Int64(to_i64(d, "bigint")?),
        (Datum::Float64(f), ScalarType::Float32) => {
            let r = f as f32;
            if r.is_infinite() && f.is_finite() {
                return Err(EvalError::FloatOverflow);
            }
            if r == 0.0 && f != 0.0 {
                return Err(EvalError::FloatUnderflow);
            }
            Datum::Float32(r)
        }
        (_, ScalarType::Float32) => match float_of(d) {
            Some(f) => Datum::Float32(f as f32),
            None => return Err(cast_error(d, to)),
        },
        (_, ScalarType::Float64) => match float_of(d) {
            Some(f) => Datum::Float64(f),
            None => return Err(cast_error(d, to)),
        },
        (Datum::Float64(f), ScalarType::Numeric) => Datum::Numeric(float_to_numeric(f, 15)?),
        (Datum::Float32(f), ScalarType::Numeric) => Datum::Numeric(float_to_numeric(f as f64, 6)?),
        (Datum::Int16(v), ScalarType::Numeric) => Datum::Numeric(Decimal::from(v)),
        (Datum::Int32(v), ScalarType::Numeric) => Datum::Numeric(Decimal::from(v)),
        (Datum::Int64(v), ScalarType::Numeric) => Datum::Numeric(Decimal::from(v)),
        (Datum::Date(days), ScalarType::Timestamp) => Datum::Timestamp(date_to_timestamp(days)?),
        (Datum::Date(days), ScalarType::TimestampTz) => {
            Datum::TimestampTz(date_to_timestamp(days)?)
        }
        (Datum::Timestamp(m), ScalarType::Date) | (Datum::TimestampTz(m), ScalarType::Date) => {
            Datum::Date(
                i32::try_from(m.div_euclid(MICROS_PER_DAY))
                    .map_err(|_| datetime_out_of_range("date"))?,
            )
        }
        (Datum::Timestamp(m), ScalarType::TimestampTz) => Datum::TimestampTz(m),
        (Datum::TimestampTz(m), ScalarType::Timestamp) => Datum::Timestamp(m),
        (Datum::Timestamp(m), ScalarType::Time) | (Datum::TimestampTz(m), ScalarType::Time) => {
            Datum::Time(m.rem_euclid(MICROS_PER_DAY))
        }
        _ => return Err(cast_error(d, to)),
    })
}

/// A jsonb value cast to `boolean` or a number type (PostgreSQL's `jsonb_bool`,
/// `jsonb_int4`, ...): the value must be a boolean or a number, converted as the
/// numeric it is; anything else is `cannot cast jsonb string to type integer` (22023).
fn jsonb_cast<'a>(j: repr::jsonb::Jsonb<'a>, to: ScalarType) -> Result<Datum<'a>, EvalError> {
    use repr::jsonb::JsonbKind;
    let kind = j.kind();
    let refuse = || {
        let what = match kind {
            JsonbKind::Null => "null",
            JsonbKind::Bool(_) => "boolean",
            JsonbKind::Number(_) => "numeric",
            JsonbKind::String(_) => "string",
            JsonbKind::Array(_) => "array",
            JsonbKind::Object(_) => "object",
        };
        EvalError::InvalidParameter(format!("cannot cast jsonb {what} to type {to}"))
    };
    match (kind, to) {
        (JsonbKind::Bool(b), ScalarType::Bool) => Ok(Datum::from_bool(b)),
        (JsonbKind::Number(n), ScalarType::Float64 | ScalarType::Float32) => {
            let f: f64 = n.parse().map_err(|_| EvalError::FloatOverflow)?;
            if f.is_infinite() {
                return Err(EvalError::FloatOverflow);
            }
            if to == ScalarType::Float64 {
                Ok(Datum::Float64(f))
            } else {
                let r: f32 = n.parse().map_err(|_| EvalError::FloatOverflow)?;
                if r.is_infinite() {
                    return Err(EvalError::FloatOverflow);
                }
                Ok(Datum::Float32(r))
            }
        }
        (JsonbKind::Number(n), _) if to.is_numeric() => {
            // Beyond Freshet's numeric (28 significant digits): as an integer cast of
            // it would be, out of range.
            let v = strconv::parse_numeric_text(n).map_err(|_| match to {
                ScalarType::Numeric => EvalError::NumericOverflow,
                t => out_of_range(t.name()),
            })?;
            let arena = RowArena::new();
            match cast(Datum::Numeric(v), to, &arena)? {
                Datum::Int16(v) => Ok(Datum::Int16(v)),
                Datum::Int32(v) => Ok(Datum::Int32(v)),
                Datum::Int64(v) => Ok(Datum::Int64(v)),
                Datum::Numeric(v) => Ok(Datum::Numeric(v)),
                other => Err(type_error("a jsonb cast", other)),
            }
        }
        _ => Err(refuse()),
    }
}

/// PostgreSQL's `date2timestamp`: midnight of the date, or `date out of range for
/// timestamp` for a date past the last timestamp.
fn date_to_timestamp(days: i32) -> Result<i64, EvalError> {
    adt::timestamp_from_parts(days as i64, 0).ok_or(EvalError::DateOutOfRangeForTimestamp)
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

/// The error for a function applied to a datum of a type the planner should have ruled out.
fn type_error(what: &str, d: Datum) -> EvalError {
    EvalError::Internal(format!("{what} applied to {d:?}"))
}

/// A text argument.
fn str_arg(d: Datum<'_>) -> Result<&str, EvalError> {
    match d {
        Datum::String(s) => Ok(s),
        other => Err(type_error("a text function", other)),
    }
}

/// An integer argument of any width.
fn int_arg(d: Datum) -> Result<i64, EvalError> {
    match d {
        Datum::Int16(v) => Ok(v.into()),
        Datum::Int32(v) => Ok(v.into()),
        Datum::Int64(v) => Ok(v),
        other => Err(type_error("an integer function", other)),
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
            UnaryFunc::Not => match a {
                Datum::True => Datum::False,
                Datum::False => Datum::True,
                other => return Err(type_error("NOT", other)),
            },
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
                Datum::Interval(iv) => {
                    Datum::Interval(iv.checked_neg().ok_or_else(adt::interval_out_of_range)?)
                }
                other => return Err(type_error("unary minus", other)),
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
                other => return Err(type_error("abs", other)),
            },
            UnaryFunc::Cast(to) => return cast(a, *to, arena),
            UnaryFunc::NormalizeNumeric => match a {
                Datum::Numeric(v) => Datum::Numeric(v.normalize()),
                other => return Err(type_error("normalize_numeric", other)),
            },
            UnaryFunc::Lower | UnaryFunc::Upper => match a {
                Datum::String(s) => {
                    // Case mapping can lengthen a string (`ß` is `SS`).
                    let mapped = if *self == UnaryFunc::Lower {
                        simple_lowercase(s)
                    } else {
                        simple_uppercase(s)
                    };
                    check_value_len(mapped.len())?;
                    Datum::String(arena.push_string(mapped))
                }
                other => return Err(type_error("lower or upper", other)),
            },
            UnaryFunc::CharLength => match a {
                Datum::String(s) => Datum::Int32(
                    i32::try_from(s.chars().count()).map_err(|_| out_of_range("integer"))?,
                ),
                Datum::Bytes(b) => {
                    Datum::Int32(i32::try_from(b.len()).map_err(|_| out_of_range("integer"))?)
                }
                other => return Err(type_error("length", other)),
            },
            UnaryFunc::NumericTypmod { precision, scale } => match a {
                Datum::Numeric(v) => Datum::Numeric(numeric_typmod(v, *precision, *scale)?),
                other => return Err(type_error("numeric typmod", other)),
            },
            UnaryFunc::VarcharTypmod { length, explicit }
            | UnaryFunc::CharTypmod { length, explicit } => match a {
                Datum::String(s) => {
                    let pad = matches!(self, UnaryFunc::CharTypmod { .. });
                    match string_typmod(s, *length, pad, *explicit)? {
                        Some(owned) => Datum::String(arena.push_string(owned)),
                        None => Datum::String(s),
                    }
                }
                other => return Err(type_error("string typmod", other)),
            },
            UnaryFunc::IsNull | UnaryFunc::IsTrue | UnaryFunc::IsFalse => {
                unreachable!("handled above")
            }
            UnaryFunc::Float(func) => match a {
                Datum::Float64(x) => Datum::Float64(func.eval(x)?),
                other => return Err(type_error(&func.to_string(), other)),
            },
            UnaryFunc::Numeric(func) => match a {
                Datum::Numeric(x) => {
                    let r = func.eval(x)?;
                    if func.returns_integer() {
                        Datum::Int32(r.to_i32().ok_or_else(|| out_of_range("integer"))?)
                    } else {
                        Datum::Numeric(r)
                    }
                }
                other => return Err(type_error(&func.to_string(), other)),
            },
            UnaryFunc::Reverse => {
                Datum::String(arena.push_string(str_arg(a)?.chars().rev().collect()))
            }
            UnaryFunc::Initcap => Datum::String(arena.push_string(string::initcap(str_arg(a)?))),
            UnaryFunc::Md5 => {
                let bytes = match a {
                    Datum::String(s) => s.as_bytes(),
                    Datum::Bytes(b) => b,
                    other => return Err(type_error("md5", other)),
                };
                Datum::String(arena.push_string(string::md5_hex(bytes)))
            }
            UnaryFunc::Ascii => Datum::Int32(string::ascii(str_arg(a)?)),
            UnaryFunc::Chr => {
                let c = string::chr(int_arg(a)?)?;
                Datum::String(arena.push_string(c.to_string()))
            }
            UnaryFunc::OctetLength | UnaryFunc::BitLength => {
                let len = match a {
                    Datum::String(s) => s.len(),
                    Datum::Bytes(b) => b.len(),
                    other => return Err(type_error("octet_length", other)),
                };
                let factor = if *self == UnaryFunc::BitLength { 8 } else { 1 };
                Datum::Int32(i32::try_from(len * factor).map_err(|_| out_of_range("integer"))?)
            }
            UnaryFunc::ToHex => {
                let text = match a {
                    Datum::Int32(v) => string::to_hex(i64::from(v), 32),
                    Datum::Int64(v) => string::to_hex(v, 64),
                    other => return Err(type_error("to_hex", other)),
                };
                Datum::String(arena.push_string(text))
            }
            UnaryFunc::JustifyDays | UnaryFunc::JustifyHours | UnaryFunc::JustifyInterval => {
                let Datum::Interval(iv) = a else {
                    return Err(type_error("justify", a));
                };
                Datum::Interval(match self {
                    UnaryFunc::JustifyDays => datetime::justify_days(iv)?,
                    UnaryFunc::JustifyHours => datetime::justify_hours(iv)?,
                    _ => datetime::justify_interval(iv)?,
                })
            }
            UnaryFunc::ToTimestamp => match a {
                Datum::Float64(x) => Datum::TimestampTz(datetime::to_timestamp(x)?),
                other => return Err(type_error("to_timestamp", other)),
            },
            UnaryFunc::Cardinality => match a {
                Datum::Array(arr) => Datum::Int32(len_i32(arr.len())?),
                other => return Err(type_error("cardinality", other)),
            },
            UnaryFunc::JsonbTypeof => match a {
                Datum::Jsonb(j) => Datum::String(j.type_name()),
                other => return Err(type_error("jsonb_typeof", other)),
            },
            UnaryFunc::JsonbArrayLength => match a {
                Datum::Jsonb(j) => Datum::Int32(jsonb::array_length(j)?),
                other => return Err(type_error("jsonb_array_length", other)),
            },
            UnaryFunc::ToJsonb => jsonb::jsonb_datum(&jsonb::datum_to_json(a), arena),
            UnaryFunc::ArrayNdims | UnaryFunc::ArrayDims => match a {
                Datum::Array(arr) if arr.is_empty() => Datum::Null,
                Datum::Array(_) if *self == UnaryFunc::ArrayNdims => Datum::Int32(1),
                Datum::Array(arr) => Datum::String(arena.push_string(format!("[1:{}]", arr.len()))),
                other => return Err(type_error("array_dims", other)),
            },
            UnaryFunc::JsonbStripNulls => match a {
                Datum::Jsonb(j) => jsonb::jsonb_datum(&jsonb::strip_nulls(j.to_value()), arena),
                other => return Err(type_error("jsonb_strip_nulls", other)),
            },
            UnaryFunc::JsonbPretty => match a {
                Datum::Jsonb(j) => Datum::String(arena.push_string(jsonb::pretty(j))),
                other => return Err(type_error("jsonb_pretty", other)),
            },
        })
    }

    pub fn output_type(&self, input: ColumnType) -> ColumnType {
        match self {
            UnaryFunc::IsNull | UnaryFunc::IsTrue | UnaryFunc::IsFalse => {
                ScalarType::Bool.nullable(false)
            }
            UnaryFunc::Not => ScalarType::Bool.nullable(input.nullable),
            UnaryFunc::Neg | UnaryFunc::Abs | UnaryFunc::NormalizeNumeric => input,
            UnaryFunc::Cast(to) => to.nullable(input.nullable),
            UnaryFunc::Lower | UnaryFunc::Upper => ScalarType::String.nullable(input.nullable),
            UnaryFunc::CharLength => ScalarType::Int32.nullable(input.nullable),
            UnaryFunc::NumericTypmod { .. } => ScalarType::Numeric.nullable(input.nullable),
            UnaryFunc::VarcharTypmod { .. } | UnaryFunc::CharTypmod { .. } => {
                ScalarType::String.nullable(input.nullable)
            }
            UnaryFunc::Float(_) => ScalarType::Float64.nullable(input.nullable),
            UnaryFunc::Numeric(func) if func.returns_integer() => {
                ScalarType::Int32.nullable(input.nullable)
            }
            UnaryFunc::Numeric(_) => ScalarType::Numeric.nullable(input.nullable),
            UnaryFunc::Reverse
            | UnaryFunc::Initcap
            | UnaryFunc::Md5
            | UnaryFunc::Chr
            | UnaryFunc::ToHex => ScalarType::String.nullable(input.nullable),
            UnaryFunc::Ascii | UnaryFunc::OctetLength | UnaryFunc::BitLength => {
                ScalarType::Int32.nullable(input.nullable)
            }
            UnaryFunc::JustifyDays | UnaryFunc::JustifyHours | UnaryFunc::JustifyInterval => {
                ScalarType::Interval.nullable(input.nullable)
            }
            UnaryFunc::ToTimestamp => ScalarType::TimestampTz.nullable(input.nullable),
            UnaryFunc::Cardinality | UnaryFunc::JsonbArrayLength => {
                ScalarType::Int32.nullable(input.nullable)
            }
            UnaryFunc::JsonbTypeof => ScalarType::String.nullable(input.nullable),
            UnaryFunc::ToJsonb | UnaryFunc::JsonbStripNulls => {
                ScalarType::Jsonb.nullable(input.nullable)
            }
            UnaryFunc::ArrayNdims => ScalarType::Int32.nullable(true),
            UnaryFunc::ArrayDims => ScalarType::String.nullable(true),
            UnaryFunc::JsonbPretty => ScalarType::String.nullable(input.nullable),
        }
    }
}

/// PostgreSQL's `apply_typmod` for `numeric(precision, scale)`: round half away from
/// zero to `scale` digits after the point (a negative scale rounds before it), show
/// `scale` digits, and require the result to be below `10^(precision - scale)` in
/// absolute value. Freshet keeps at most 28 digits after the point.
pub fn numeric_typmod(v: Decimal, precision: u16, scale: i16) -> Result<Decimal, EvalError> {
    use rust_decimal::RoundingStrategy::MidpointAwayFromZero;
    let overflow = || EvalError::NumericFieldOverflow { precision, scale };
    let max_scale = strconv::NUMERIC_MAX_SCALE;
    let mut rounded = if scale >= 0 {
        let scale = u32::from(scale.unsigned_abs()).min(max_scale);
        let mut r = v.round_dp_with_strategy(scale, MidpointAwayFromZero);
        r.rescale(scale);
        r
    } else {
        // Round to a multiple of 10^-scale.
        let shift = u32::from(scale.unsigned_abs());
        if shift > max_scale {
            Decimal::ZERO
        } else {
            let factor = Decimal::from_i128_with_scale(10i128.pow(shift), 0);
            v.checked_div(factor)
                .map(|q| q.round_dp_with_strategy(0, MidpointAwayFromZero))
                .and_then(|q| q.checked_mul(factor))
                .ok_or_else(overflow)?
        }
    };
    if rounded.is_zero() {
        // PostgreSQL's numeric has no negative zero.
        rounded.set_sign_positive(true);
    }
    let max_digits = i32::from(precision) - i32::from(scale);
    if !rounded.is_zero() && max_digits <= 28 {
        let bound = if max_digits >= 0 {
            Decimal::from_i128_with_scale(10i128.pow(max_digits.unsigned_abs()), 0)
        } else if max_digits >= -28 {
            Decimal::new(1, max_digits.unsigned_abs())
        } else {
            Decimal::ZERO
        };
        if rounded.abs() >= bound {
            return Err(overflow());
        }
    }
    Ok(rounded)
}

/// `varchar(length)` and `char(length)` coercion: `None` if `s` is unchanged.
pub fn string_typmod(
    s: &str,
    length: u32,
    pad: bool,
    explicit: bool,
) -> Result<Option<String>, EvalError> {
    let length = usize::try_from(length).unwrap_or(usize::MAX);
    let chars = s.chars().count();
    if chars > length {
        let cut = s
            .char_indices()
            .nth(length)
            .map(|(i, _)| i)
            .unwrap_or(s.len());
        if !explicit && !s[cut..].chars().all(|c| c == ' ') {
            let typ = if pad {
                "character"
            } else {
                "character varying"
            };
            return Err(EvalError::StringTooLong(format!("{typ}({length})")));
        }
        return Ok(Some(s[..cut].to_string()));
    }
    if pad && chars < length {
        check_value_len(s.len() + (length - chars))?;
        return Ok(Some(format!("{s}{}", " ".repeat(length - chars))));
    }
    Ok(None)
}

macro_rules! int_arith {
    ($a:expr, $b:expr, $op:ident, $typ:expr) => {
        $a.$op($b).ok_or_else(|| out_of_range($typ))?
    };
}

/// PostgreSQL's `check_float8_val`: infinity from finite inputs is an overflow, zero
/// from non-zero inputs an underflow.
pub(crate) fn check_float(
    result: f64,
    inf_is_valid: bool,
    zero_is_valid: bool,
) -> Result<f64, EvalError> {
    if result.is_infinite() && !inf_is_valid {
        return Err(EvalError::FloatOverflow);
    }
    if result == 0.0 && !zero_is_valid {
        return Err(EvalError::FloatUnderflow);
    }
    Ok(result)
}

/// Float arithmetic with PostgreSQL's checks (`float8pl`, `float8mul`, `float8div`, ...).
/// `narrow` rounds the exact result to the operand type (`f32` for real) before checking.
fn float_arith(
    func: BinaryFunc,
    x: f64,
    y: f64,
    narrow: impl Fn(f64) -> f64,
) -> Result<f64, EvalError> {
    use BinaryFunc::*;
    let any_inf = x.is_infinite() || y.is_infinite();
    match func {
        Add => check_float(narrow(x + y), any_inf, true),
        Sub => check_float(narrow(x - y), any_inf, true),
        Mul => check_float(narrow(x * y), any_inf, x == 0.0 || y == 0.0),
        Div => {
            if y == 0.0 && !x.is_nan() {
                return Err(EvalError::DivisionByZero);
            }
            check_float(narrow(x / y), x.is_infinite(), x == 0.0 || y.is_infinite())
        }
        _ => {
            if y == 0.0 && !x.is_nan() {
                return Err(EvalError::DivisionByZero);
            }
            Ok(narrow(x % y))
        }
    }
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
    let add_or_sub = matches!(func, Add | Sub);
    Ok(match (a, b) {
        (Datum::Int16(x), Datum::Int16(y)) => {
            zero_div(y == 0)?;
            Datum::Int16(match func {
                Add => int_arith!(x, y, checked_add, "smallint"),
                Sub => int_arith!(x, y, checked_sub, "smallint"),
                Mul => int_arith!(x, y, checked_mul, "smallint"),
                Div => int_arith!(x, y, checked_div, "smallint"),
                // i16::MIN % -1 overflows in Rust; PostgreSQL answers 0.
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
            // The exact f64 result of one f32 operation rounds to the same f32 as the
            // f32 operation itself, so computing in f64 and narrowing matches float4pl.
            let r = float_arith(func, x as f64, y as f64, |r| r as f32 as f64)?;
            Datum::Float32(r as f32)
        }
        (Datum::Float64(x), Datum::Float64(y)) => Datum::Float64(float_arith(func, x, y, |r| r)?),
        (Datum::Numeric(x), Datum::Numeric(y)) => {
            zero_div(y.is_zero())?;
            let r = match func {
                Add => x.checked_add(y),
                Sub => x.checked_sub(y),
                Mul => x.checked_mul(y),
                Div => numeric_div(x, y),
                _ => x.checked_rem(y),
            }
            .ok_or(EvalError::NumericOverflow)?;
            // PostgreSQL's result scale: the larger of the two for +, - and %, their
            // sum for *. rust_decimal drops it when an operand is zero (`0 * 0.25` is
            // `0`, `0.00 + 1.5` is `1.5`); put it back.
            let scale = match func {
                Mul => x.scale() + y.scale(),
                Div => 0,
                _ => x.scale().max(y.scale()),
            };
            Datum::Numeric(numeric_with_min_scale(r, scale))
        }
        (Datum::Date(d), Datum::Int32(n)) if add_or_sub => {
            let days = if func == Add {
                d as i64 + n as i64
            } else {
                d as i64 - n as i64
            };
            if !adt::is_valid_date(days) {
                return Err(datetime_out_of_range("date"));
            }
            Datum::Date(days as i32)
        }
        (Datum::Int32(n), Datum::Date(d)) if func == Add => {
            return arith(func, Datum::Date(d), Datum::Int32(n))
        }
        (Datum::Date(x), Datum::Date(y)) if func == Sub => {
            Datum::Int32(x.checked_sub(y).ok_or_else(|| out_of_range("integer"))?)
        }
        (Datum::Date(d), Datum::Interval(iv)) if add_or_sub => {
            Datum::Timestamp(timestamp_interval(func, date_to_timestamp(d)?, iv)?)
        }
        (Datum::Timestamp(t), Datum::Interval(iv)) if add_or_sub => {
            Datum::Timestamp(timestamp_interval(func, t, iv)?)
        }
        (Datum::TimestampTz(t), Datum::Interval(iv)) if add_or_sub => {
            Datum::TimestampTz(timestamp_interval(func, t, iv)?)
        }
        (Datum::Time(t), Datum::Interval(iv)) if add_or_sub => {
            // PostgreSQL's `time_pl_interval`: months and days are ignored and the time
            // wraps around midnight.
            let (t, span) = (
                t.rem_euclid(MICROS_PER_DAY),
                iv.micros.rem_euclid(MICROS_PER_DAY),
            );
            let t = if func == Add { t + span } else { t - span };
            Datum::Time(t.rem_euclid(MICROS_PER_DAY))
        }
        (Datum::Interval(iv), Datum::Date(_) | Datum::Timestamp(_) | Datum::TimestampTz(_))
        | (Datum::Interval(iv), Datum::Time(_))
            if func == Add =>
        {
            return arith(func, b, Datum::Interval(iv))
        }
        (Datum::Date(d), Datum::Time(t)) if func == Add => Datum::Timestamp(
            adt::timestamp_from_parts(d as i64, t)
                .ok_or_else(|| datetime_out_of_range("timestamp"))?,
        ),
        (Datum::Time(t), Datum::Date(d)) if func == Add => {
            return arith(func, Datum::Date(d), Datum::Time(t))
        }
        (Datum::Time(x), Datum::Time(y)) if func == Sub => Datum::Interval(Interval::new(
            0,
            0,
            x.checked_sub(y).ok_or_else(adt::interval_out_of_range)?,
        )),
        (Datum::Timestamp(x), Datum::Timestamp(y))
        | (Datum::TimestampTz(x), Datum::TimestampTz(y))
            if func == Sub =>
        {
            // PostgreSQL's `timestamp_mi`: the difference in microseconds, with whole
            // days split off (`interval_justify_hours`).
            let micros = x.checked_sub(y).ok_or_else(adt::interval_out_of_range)?;
            Datum::Interval(Interval::new(
                0,
                i32::try_from(micros / MICROS_PER_DAY).map_err(|_| adt::interval_out_of_range())?,
                micros % MICROS_PER_DAY,
            ))
        }
        (Datum::Interval(x), Datum::Interval(y)) if add_or_sub => Datum::Interval(
            if func == Add {
                x.checked_add(&y)
            } else {
                x.checked_sub(&y)
            }
            .ok_or_else(adt::interval_out_of_range)?,
        ),
        (Datum::Interval(iv), divisor) if func == Div && float_of(divisor).is_some() => {
            let factor = float_of(divisor).unwrap_or(f64::NAN);
            Datum::Interval(iv.checked_div_f64(factor)?)
        }
        (x, y) => {
            return Err(EvalError::Internal(format!(
                "no {func:?} for {x:?} and {y:?}"
            )))
        }
    })
}

/// `r` shown with at least `scale` digits after the point (at most 28), if it can be
/// without changing its value.
fn numeric_with_min_scale(r: Decimal, scale: u32) -> Decimal {
    let scale = scale.min(28);
    if r.scale() >= scale {
        return r;
    }
    let mut rescaled = r;
    rescaled.rescale(scale);
    if rescaled == r && rescaled.scale() == scale {
        rescaled
    } else {
        r
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
        // The shift lies in -28..4, so the powers cannot overflow.
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

/// `timestamp ± interval` (PostgreSQL's `timestamp_pl_interval` and `timestamp_mi_interval`).
fn timestamp_interval(func: BinaryFunc, t: i64, iv: Interval) -> Result<i64, EvalError> {
    let iv = match func {
        BinaryFunc::Add => iv,
        BinaryFunc::Sub => iv.checked_neg().ok_or_else(adt::interval_out_of_range)?,
        _ => {
            return Err(EvalError::Internal(format!(
                "no {func:?} for timestamp and interval"
            )))
        }
    };
    adt::timestamp_add_interval(t, &iv)
}

/// Lowercases character by character, as PostgreSQL's `lower` does with the C library's
/// `towlower`: no context (a final sigma is `σ`) and one character for one (`İ` is `i`).
pub fn simple_lowercase(s: &str) -> String {
    s.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

/// Uppercases character by character, as PostgreSQL's `upper` does with `towupper`: a
/// character whose uppercase is several characters (`ß`) stays as it is.
pub fn simple_uppercase(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// How deep `%` wildcards may nest in a LIKE match before the match gives up, so that a
/// pattern of many `%` cannot exhaust the stack.
const LIKE_MAX_DEPTH: usize = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum LikeMatch {
    True,
    False,
    /// No match here, nor at any later start position.
    Abort,
}

/// SQL `LIKE`: `%` matches any run, `_` one character, `\` makes the next character
/// literal. PostgreSQL's `MatchText`, including its error for a pattern that ends in
/// `\` when the match reaches it (22025).
pub fn like(text: &str, pattern: &str, case_insensitive: bool) -> Result<bool, EvalError> {
    let (t, p): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            simple_lowercase(text).chars().collect(),
            simple_lowercase(pattern).chars().collect(),
        )
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    Ok(match_text(&t, &p, 0)? == LikeMatch::True)
}

fn match_text(mut t: &[char], mut p: &[char], depth: usize) -> Result<LikeMatch, EvalError> {
    if depth > LIKE_MAX_DEPTH {
        return Err(EvalError::StackDepthLimitExceeded);
    }
    if p == ['%'] {
        return Ok(LikeMatch::True);
    }
    while let (Some(&tc), Some(&pc)) = (t.first(), p.first()) {
        match pc {
            '\\' => {
                p = &p[1..];
                match p.first() {
                    None => return Err(EvalError::LikePatternEndsWithEscape),
                    Some(&literal) if literal != tc => return Ok(LikeMatch::False),
                    Some(_) => {}
                }
            }
            '%' => {
                p = &p[1..];
                // Any run of `%` and `_` is N characters and then any run: skip them.
                while let Some(&c) = p.first() {
                    match c {
                        '%' => p = &p[1..],
                        '_' => {
                            if t.is_empty() {
                                return Ok(LikeMatch::Abort);
                            }
                            t = &t[1..];
                            p = &p[1..];
                        }
                        _ => break,
                    }
                }
                let Some(&first) = p.first() else {
                    return Ok(LikeMatch::True);
                };
                let first = if first == '\\' {
                    *p.get(1).ok_or(EvalError::LikePatternEndsWithEscape)?
                } else {
                    first
                };
                while let Some(&c) = t.first() {
                    if c == first {
                        let matched = match_text(t, p, depth + 1)?;
                        if matched != LikeMatch::False {
                            return Ok(matched);
                        }
                    }
                    t = &t[1..];
                }
                return Ok(LikeMatch::Abort);
            }
            '_' => {}
            c if c != tc => return Ok(LikeMatch::False),
            _ => {}
        }
        t = &t[1..];
        p = &p[1..];
    }
    if !t.is_empty() {
        return Ok(LikeMatch::False);
    }
    while p.first() == Some(&'%') {
        p = &p[1..];
    }
    Ok(if p.is_empty() {
        LikeMatch::True
    } else {
        LikeMatch::Abort
    })
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
            _ => return None,
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
            ArrayQuantified { op, all } => return Ok(array_quantified(a, b, *op, *all)),
            ArrayConcat | ArrayAppend | ArrayPrepend => return array_concat(*self, a, b, arena),
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
                // A non-text operand is cast to text (`anytextcat`), so `true` is `true`.
                let (x, y) = (text_of(a), text_of(b));
                check_value_len(x.len() + y.len())?;
                Datum::String(arena.push_string(x + &y))
            }
            Like | ILike => match (a, b) {
                (Datum::String(t), Datum::String(p)) => {
                    Datum::from_bool(like(t, p, *self == ILike)?)
                }
                _ => return Err(EvalError::Internal("LIKE on non-text".into())),
            },
            And | Or | IsNotDistinctFrom => unreachable!("handled above"),
            Strpos => Datum::Int32(string::strpos(str_arg(a)?, str_arg(b)?)),
            Left => Datum::String(string::left(str_arg(a)?, int_arg(b)?)),
            Right => Datum::String(string::right(str_arg(a)?, int_arg(b)?)),
            Repeat => Datum::String(arena.push_string(string::repeat(str_arg(a)?, int_arg(b)?)?)),
            StartsWith => Datum::from_bool(str_arg(a)?.starts_with(str_arg(b)?)),
            Power => match (a, b) {
                (Datum::Float64(x), Datum::Float64(y)) => Datum::Float64(math::float_power(x, y)?),
                (Datum::Numeric(x), Datum::Numeric(y)) => {
                    Datum::Numeric(math::numeric_power(x, y)?)
                }
                (x, _) => return Err(type_error("power", x)),
            },
            Atan2 => match (a, b) {
                (Datum::Float64(y), Datum::Float64(x)) => Datum::Float64(math::float_atan2(y, x)?),
                (y, _) => return Err(type_error("atan2", y)),
            },
            RoundScale | TruncScale => match a {
                Datum::Numeric(x) => {
                    let scale = int_arg(b)?;
                    Datum::Numeric(if *self == RoundScale {
                        math::round_scale(x, scale)?
                    } else {
                        math::trunc_scale(x, scale)?
                    })
                }
                other => return Err(type_error("round", other)),
            },
            DivTrunc | LogBase => match (a, b) {
                (Datum::Numeric(x), Datum::Numeric(y)) => Datum::Numeric(if *self == DivTrunc {
                    math::numeric_div_trunc(x, y)?
                } else {
                    math::numeric_log(x, y)?
                }),
                (x, _) => return Err(type_error("div", x)),
            },
            Gcd | Lcm => {
                let f = if *self == Gcd {
                    math::int_gcd
                } else {
                    math::int_lcm
                };
                match (a, b) {
                    (Datum::Int32(x), Datum::Int32(y)) => {
                        Datum::Int32(f(x.into(), y.into(), i32::MAX.into(), "integer")? as i32)
                    }
                    (Datum::Int64(x), Datum::Int64(y)) => {
                        Datum::Int64(f(x, y, i64::MAX, "bigint")?)
                    }
                    (Datum::Numeric(x), Datum::Numeric(y)) => Datum::Numeric(if *self == Gcd {
                        math::numeric_gcd(x, y)?
                    } else {
                        math::numeric_lcm(x, y)?
                    }),
                    (x, _) => return Err(type_error("gcd", x)),
                }
            }
            DateTrunc => {
                let units = str_arg(a)?;
                match b {
                    Datum::Timestamp(t) => Datum::Timestamp(datetime::trunc_timestamp(
                        units,
                        t,
                        ScalarType::Timestamp.name(),
                    )?),
                    Datum::TimestampTz(t) => Datum::TimestampTz(datetime::trunc_timestamp(
                        units,
                        t,
                        ScalarType::TimestampTz.name(),
                    )?),
                    Datum::Interval(iv) => Datum::Interval(datetime::trunc_interval(units, iv)?),
                    other => return Err(type_error("date_trunc", other)),
                }
            }
            DatePart => {
                let units = str_arg(a)?;
                Datum::Float64(match b {
                    Datum::Timestamp(t) => datetime::part_timestamp(units, t, false)?,
                    Datum::TimestampTz(t) => datetime::part_timestamp(units, t, true)?,
                    Datum::Interval(iv) => datetime::part_interval(units, iv)?,
                    Datum::Time(t) => datetime::part_time(units, t)?,
                    other => return Err(type_error("date_part", other)),
                })
            }
            Extract => {
                let units = str_arg(a)?;
                Datum::Numeric(match b {
                    Datum::Timestamp(t) => datetime::extract_timestamp(units, t, false)?,
                    Datum::TimestampTz(t) => datetime::extract_timestamp(units, t, true)?,
                    Datum::Date(d) => datetime::extract_date(units, d)?,
                    Datum::Interval(iv) => datetime::extract_interval(units, iv)?,
                    Datum::Time(t) => datetime::extract_time(units, t)?,
                    other => return Err(type_error("extract", other)),
                })
            }
            ToChar => {
                let (t, with_tz) = match a {
                    Datum::Timestamp(t) => (t, false),
                    Datum::TimestampTz(t) => (t, true),
                    other => return Err(type_error("to_char", other)),
                };
                match datetime::to_char(t, str_arg(b)?, with_tz) {
                    Some(text) => {
                        check_value_len(text.len())?;
                        Datum::String(arena.push_string(text))
                    }
                    None => Datum::Null,
                }
            }
            Age => match (a, b) {
                (Datum::Timestamp(x), Datum::Timestamp(y))
                | (Datum::TimestampTz(x), Datum::TimestampTz(y)) => {
                    Datum::Interval(datetime::age(x, y)?)
                }
                (x, _) => return Err(type_error("age", x)),
            },
            ArrayLength | ArrayLower | ArrayUpper => {
                let Datum::Array(arr) = a else {
                    return Err(type_error("array_length", a));
                };
                let len = arr.len();
                if int_arg(b)? != 1 || len == 0 {
                    Datum::Null
                } else {
                    Datum::Int32(match self {
                        ArrayLength | ArrayUpper => len_i32(len)?,
                        _ => 1,
                    })
                }
            }
            ArrayIndex => {
                let Datum::Array(arr) = a else {
                    return Err(type_error("a subscript", a));
                };
                let i = int_arg(b)?;
                if i < 1 {
                    Datum::Null
                } else {
                    arr.iter()
                        .nth(usize::try_from(i - 1).unwrap_or(usize::MAX))
                        .unwrap_or(Datum::Null)
                }
            }
            ArrayContains | ArrayOverlap => {
                let (Datum::Array(x), Datum::Array(y)) = (a, b) else {
                    return Err(type_error("array containment", a));
                };
                // NULL elements are never equal to anything (PostgreSQL's
                // `array_contain_compare`).
                let has = |e: Datum| !e.is_null() && x.iter().any(|f| !f.is_null() && f == e);
                Datum::from_bool(if *self == ArrayContains {
                    y.iter().all(has)
                } else {
                    y.iter().any(has)
                })
            }
            ArrayQuantified { .. } | ArrayConcat | ArrayAppend | ArrayPrepend => {
                unreachable!("handled above")
            }
            JsonbField | JsonbIndex | JsonbFieldText | JsonbIndexText => {
                let Datum::Jsonb(j) = a else {
                    return Err(type_error("->", a));
                };
                let found = match b {
                    Datum::String(key) => j.field(key),
                    other => j.index(int_arg(other)?),
                };
                match (found, self) {
                    (None, _) => Datum::Null,
                    (Some(v), JsonbField | JsonbIndex) => Datum::Jsonb(v),
                    (Some(v), _) => match v.to_text() {
                        None => Datum::Null,
                        Some(text) => Datum::String(arena.push_string(text)),
                    },
                }
            }
            JsonbPath | JsonbPathText => {
                let (Datum::Jsonb(j), Datum::Array(path)) = (a, b) else {
                    return Err(type_error("#>", a));
                };
                let found = jsonb::path_steps(path).and_then(|steps| j.path(steps));
                match (found, self) {
                    (None, _) => Datum::Null,
                    (Some(v), JsonbPath) => Datum::Jsonb(v),
                    (Some(v), _) => match v.to_text() {
                        None => Datum::Null,
                        Some(text) => Datum::String(arena.push_string(text)),
                    },
                }
            }
            JsonbContains => match (a, b) {
                (Datum::Jsonb(x), Datum::Jsonb(y)) => Datum::from_bool(x.contains(&y)),
                (x, _) => return Err(type_error("@>", x)),
            },
            JsonbExists => match (a, b) {
                (Datum::Jsonb(x), Datum::String(key)) => Datum::from_bool(x.exists(key)),
                (x, _) => return Err(type_error("?", x)),
            },
            JsonbExistsAny | JsonbExistsAll => match (a, b) {
                (Datum::Jsonb(x), Datum::Array(keys)) => {
                    let mut keys = keys.iter().filter_map(|k| match k {
                        Datum::String(s) => Some(s),
                        _ => None,
                    });
                    Datum::from_bool(if *self == JsonbExistsAny {
                        keys.any(|k| x.exists(k))
                    } else {
                        keys.all(|k| x.exists(k))
                    })
                }
                (x, _) => return Err(type_error("?|", x)),
            },
            JsonbConcat => match (a, b) {
                (Datum::Jsonb(x), Datum::Jsonb(y)) => {
                    jsonb::jsonb_datum(&jsonb::concat(x, y), arena)
                }
                (x, _) => return Err(type_error("||", x)),
            },
            JsonbDeleteKey | JsonbDeleteIndex => match a {
                Datum::Jsonb(x) => jsonb::jsonb_datum(&jsonb::delete(x, b)?, arena),
                x => return Err(type_error("-", x)),
            },
        })
    }

    pub fn output_type(&self, a: ColumnType, b: ColumnType) -> ColumnType {
        use BinaryFunc::*;
        let nullable = a.nullable || b.nullable;
        let scalar = match self {
            And | Or | Eq | NotEq | Lt | Lte | Gt | Gte | Like | ILike => ScalarType::Bool,
            IsNotDistinctFrom => return ScalarType::Bool.nullable(false),
            TextConcat | Left | Right | Repeat => ScalarType::String,
            Strpos => ScalarType::Int32,
            StartsWith => ScalarType::Bool,
            Power | Gcd | Lcm => a.scalar_type,
            Atan2 | DatePart => ScalarType::Float64,
            RoundScale | TruncScale | DivTrunc | LogBase | Extract => ScalarType::Numeric,
            DateTrunc => b.scalar_type,
            // An empty format gives NULL.
            ToChar => return ScalarType::String.nullable(true),
            Age => ScalarType::Interval,
            ArrayLength | ArrayLower | ArrayUpper => return ScalarType::Int32.nullable(true),
            ArrayIndex => {
                return a
                    .scalar_type
                    .element_type()
                    .unwrap_or(ScalarType::String)
                    .nullable(true)
            }
            ArrayQuantified { .. } => return ScalarType::Bool.nullable(true),
            ArrayContains | ArrayOverlap => ScalarType::Bool,
            ArrayConcat | ArrayAppend => return a.scalar_type.nullable(a.nullable && b.nullable),
            ArrayPrepend => return b.scalar_type.nullable(a.nullable && b.nullable),
            JsonbField | JsonbIndex | JsonbPath => return ScalarType::Jsonb.nullable(true),
            JsonbFieldText | JsonbIndexText | JsonbPathText => {
                return ScalarType::String.nullable(true)
            }
            JsonbContains | JsonbExists | JsonbExistsAny | JsonbExistsAll => ScalarType::Bool,
            JsonbConcat | JsonbDeleteKey | JsonbDeleteIndex => ScalarType::Jsonb,
            Add | Sub | Mul | Div | Mod => {
                use ScalarType::{Date, Int32, Interval, Time, Timestamp, TimestampTz};
                match (a.scalar_type, b.scalar_type) {
                    (Date, Int32) | (Int32, Date) => Date,
                    (Date, Date) => Int32,
                    (Date, Interval) | (Interval, Date) => Timestamp,
                    (Date, Time) | (Time, Date) => Timestamp,
                    (Interval, Timestamp) => Timestamp,
                    (Interval, TimestampTz) => TimestampTz,
                    (Time, Interval) | (Interval, Time) => Time,
                    (Timestamp, Timestamp) | (TimestampTz, TimestampTz) | (Time, Time) => Interval,
                    (t, _) => t,
                }
            }
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
                // `concat` uses each type's output function: `concat(true)` is `t`.
                let mut out = String::new();
                for e in exprs {
                    let d = e.eval(datums, arena)?;
                    if !d.is_null() {
                        let text = strconv::format_datum(d);
                        check_value_len(out.len() + text.len())?;
                        out.push_str(&text);
                    }
                }
                Ok(Datum::String(arena.push_string(out)))
            }
            VariadicFunc::Version => Ok(Datum::String(arena.push_string(version_string()))),
            VariadicFunc::GenRandomUuid => Ok(Datum::Uuid(repr::uuid::Uuid::new_v4())),
            VariadicFunc::MzNow => Err(EvalError::FeatureNotSupported(
                "mz_now() outside a temporal filter in a maintained query".into(),
            )),
            VariadicFunc::ConcatWs => {
                let mut datums_out = Vec::with_capacity(exprs.len());
                for e in exprs {
                    datums_out.push(e.eval(datums, arena)?);
                }
                let Some((sep, rest)) = datums_out.split_first() else {
                    return Ok(Datum::Null);
                };
                let sep = match sep {
                    Datum::Null => return Ok(Datum::Null),
                    other => str_arg(*other)?,
                };
                let mut out = String::new();
                let mut first = true;
                for d in rest.iter().filter(|d| !d.is_null()) {
                    if !first {
                        out.push_str(sep);
                    }
                    first = false;
                    out.push_str(&strconv::format_datum(*d));
                    check_value_len(out.len())?;
                }
                Ok(Datum::String(arena.push_string(out)))
            }
            VariadicFunc::NumNulls | VariadicFunc::NumNonNulls => {
                let mut nulls = 0i32;
                for e in exprs {
                    if e.eval(datums, arena)?.is_null() {
                        nulls += 1;
                    }
                }
                Ok(Datum::Int32(if *self == VariadicFunc::NumNulls {
                    nulls
                } else {
                    exprs.len() as i32 - nulls
                }))
            }
            VariadicFunc::Record => {
                let mut packer = repr::RowPacker::new();
                for e in exprs {
                    packer.push(e.eval(datums, arena)?);
                }
                let row = packer.finish();
                Ok(Datum::Bytes(arena.push_bytes(row.data().to_vec())))
            }
            VariadicFunc::ArrayCreate { .. } => {
                let mut packer = repr::RowPacker::new();
                for e in exprs {
                    packer.push(e.eval(datums, arena)?);
                }
                let row = packer.finish();
                check_value_len(row.byte_len())?;
                array_datum(row, arena)
            }
            VariadicFunc::JsonbBuildArray | VariadicFunc::JsonbBuildObject => {
                let mut args = Vec::with_capacity(exprs.len());
                for e in exprs {
                    args.push(e.eval(datums, arena)?);
                }
                let value = if *self == VariadicFunc::JsonbBuildArray {
                    repr::jsonb::JsonValue::Array(
                        args.into_iter().map(jsonb::datum_to_json).collect(),
                    )
                } else {
                    jsonb::build_object(&args)?
                };
                Ok(jsonb::jsonb_datum(&value, arena))
            }
            VariadicFunc::StringToArray => {
                let mut args = Vec::with_capacity(exprs.len());
                for e in exprs {
                    args.push(e.eval(datums, arena)?);
                }
                let text = match args.first() {
                    Some(Datum::String(s)) => *s,
                    _ => return Ok(Datum::Null),
                };
                let optional = |i: usize| match args.get(i) {
                    Some(Datum::String(s)) => Some(*s),
                    _ => None,
                };
                let mut packer = repr::RowPacker::new();
                for piece in jsonb::string_to_array(text, optional(1), optional(2)) {
                    packer.push(piece.map(Datum::String).unwrap_or(Datum::Null));
                }
                array_datum(packer.finish(), arena)
            }
            VariadicFunc::ArrayToString
            | VariadicFunc::ArrayPosition
            | VariadicFunc::ArrayRemove => {
                let mut args = Vec::with_capacity(exprs.len());
                for e in exprs {
                    args.push(e.eval(datums, arena)?);
                }
                array_function(*self, &args, arena)
            }
            _ => {
                // The rest are strict: every argument is evaluated, and NULL in any of
                // them gives NULL.
                let mut args = Vec::with_capacity(exprs.len());
                for e in exprs {
                    args.push(e.eval(datums, arena)?);
                }
                if args.iter().any(Datum::is_null) {
                    return Ok(Datum::Null);
                }
                self.eval_strict(&args, arena)
            }
        }
    }

    /// A strict function of non-null arguments.
    fn eval_strict<'a>(
        &self,
        args: &[Datum<'a>],
        arena: &'a RowArena,
    ) -> Result<Datum<'a>, EvalError> {
        let arg = |i: usize| -> Result<Datum<'a>, EvalError> {
            args.get(i).copied().ok_or_else(|| {
                EvalError::Internal(format!("{self} called with {} arguments", args.len()))
            })
        };
        let text = |i: usize| -> Result<&'a str, EvalError> { str_arg(arg(i)?) };
        let int = |i: usize| -> Result<i64, EvalError> { int_arg(arg(i)?) };
        let int32 = |i: usize| -> Result<i32, EvalError> {
            i32::try_from(int(i)?).map_err(|_| out_of_range("integer"))
        };
        let string = |s: String| -> Result<Datum<'a>, EvalError> {
            check_value_len(s.len())?;
            Ok(Datum::String(arena.push_string(s)))
        };
        let optional = |i: usize| if args.len() > i { Some(i) } else { None };
        Ok(match self {
            VariadicFunc::Substr => {
                let len = optional(2).map(int).transpose()?;
                match arg(0)? {
                    Datum::String(s) => Datum::String(string::substr(s, int(1)?, len)?),
                    Datum::Bytes(b) => Datum::Bytes(string::substr_bytes(b, int(1)?, len)?),
                    other => return Err(type_error("substr", other)),
                }
            }
            VariadicFunc::Overlay => {
                let len = optional(3).map(int).transpose()?;
                string(string::overlay(text(0)?, text(1)?, int(2)?, len)?)?
            }
            VariadicFunc::Trim(side) => {
                let chars = optional(1).map(text).transpose()?.unwrap_or(" ");
                Datum::String(string::trim(*side, text(0)?, chars))
            }
            VariadicFunc::Lpad | VariadicFunc::Rpad => {
                let fill = optional(2).map(text).transpose()?.unwrap_or(" ");
                let left = *self == VariadicFunc::Lpad;
                string(string::pad(text(0)?, int(1)?, fill, left)?)?
            }
            VariadicFunc::Replace => string(string::replace(text(0)?, text(1)?, text(2)?)?)?,
            VariadicFunc::SplitPart => {
                Datum::String(string::split_part(text(0)?, text(1)?, int(2)?)?)
            }
            VariadicFunc::Translate => string(string::translate(text(0)?, text(1)?, text(2)?))?,
            VariadicFunc::RegexpReplace => {
                let flags = optional(3).map(text).transpose()?.unwrap_or("");
                string(string::regexp_replace(
                    text(0)?,
                    text(1)?,
                    text(2)?,
                    None,
                    None,
                    flags,
                )?)?
            }
            VariadicFunc::RegexpReplaceAt => {
                let n = optional(4).map(int).transpose()?;
                let flags = optional(5).map(text).transpose()?.unwrap_or("");
                string(string::regexp_replace(
                    text(0)?,
                    text(1)?,
                    text(2)?,
                    Some(int(3)?),
                    n,
                    flags,
                )?)?
            }
            VariadicFunc::MakeDate => {
                Datum::Date(datetime::make_date(int32(0)?, int32(1)?, int32(2)?)?)
            }
            VariadicFunc::MakeTimestamp => {
                let Datum::Float64(sec) = arg(5)? else {
                    return Err(type_error("make_timestamp", arg(5)?));
                };
                Datum::Timestamp(datetime::make_timestamp(
                    int32(0)?,
                    int32(1)?,
                    int32(2)?,
                    int32(3)?,
                    int32(4)?,
                    sec,
                )?)
            }
            VariadicFunc::MakeInterval => {
                let Datum::Float64(secs) = arg(6)? else {
                    return Err(type_error("make_interval", arg(6)?));
                };
                Datum::Interval(datetime::make_interval(
                    int32(0)?,
                    int32(1)?,
                    int32(2)?,
                    int32(3)?,
                    int32(4)?,
                    int32(5)?,
                    secs,
                )?)
            }
            VariadicFunc::DateBin => match (arg(0)?, arg(1)?, arg(2)?) {
                (Datum::Interval(stride), Datum::Timestamp(t), Datum::Timestamp(origin)) => {
                    Datum::Timestamp(datetime::date_bin(stride, t, origin)?)
                }
                (Datum::Interval(stride), Datum::TimestampTz(t), Datum::TimestampTz(origin)) => {
                    Datum::TimestampTz(datetime::date_bin(stride, t, origin)?)
                }
                (_, other, _) => return Err(type_error("date_bin", other)),
            },
            VariadicFunc::Coalesce
            | VariadicFunc::Greatest
            | VariadicFunc::Least
            | VariadicFunc::Concat
            | VariadicFunc::Version
            | VariadicFunc::ConcatWs
            | VariadicFunc::NumNulls
            | VariadicFunc::NumNonNulls
            | VariadicFunc::Record
            | VariadicFunc::ArrayCreate { .. }
            | VariadicFunc::ArrayToString
            | VariadicFunc::ArrayPosition
            | VariadicFunc::ArrayRemove
            | VariadicFunc::JsonbBuildArray
            | VariadicFunc::JsonbBuildObject
            | VariadicFunc::StringToArray
            | VariadicFunc::GenRandomUuid
            | VariadicFunc::MzNow => {
                return Err(EvalError::Internal(format!("{self} is not strict")))
            }
        })
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
            VariadicFunc::ConcatWs => {
                ScalarType::String.nullable(inputs.first().map(|t| t.nullable).unwrap_or(true))
            }
            VariadicFunc::NumNulls | VariadicFunc::NumNonNulls => ScalarType::Int32.nullable(false),
            VariadicFunc::Record => ScalarType::Bytes.nullable(false),
            VariadicFunc::ArrayCreate { elem_type } => elem_type
                .array_of()
                .unwrap_or(ScalarType::String)
                .nullable(false),
            VariadicFunc::JsonbBuildArray | VariadicFunc::JsonbBuildObject => {
                ScalarType::Jsonb.nullable(false)
            }
            VariadicFunc::GenRandomUuid => ScalarType::Uuid.nullable(false),
            VariadicFunc::MzNow => ScalarType::TimestampTz.nullable(false),
            VariadicFunc::ArrayToString => ScalarType::String.nullable(
                inputs.first().is_none_or(|t| t.nullable)
                    || inputs.get(1).is_none_or(|t| t.nullable),
            ),
            VariadicFunc::ArrayPosition => ScalarType::Int32.nullable(true),
            VariadicFunc::StringToArray => ScalarType::String
                .array_of()
                .unwrap_or(ScalarType::String)
                .nullable(inputs.first().is_none_or(|t| t.nullable)),
            VariadicFunc::ArrayRemove => inputs
                .first()
                .copied()
                .unwrap_or(ScalarType::String.nullable(true)),
            _ => {
                let nullable = inputs.iter().any(|t| t.nullable);
                let scalar = match self {
                    VariadicFunc::Substr => inputs
                        .first()
                        .map(|t| t.scalar_type)
                        .unwrap_or(ScalarType::String),
                    VariadicFunc::MakeDate => ScalarType::Date,
                    VariadicFunc::MakeTimestamp => ScalarType::Timestamp,
                    VariadicFunc::MakeInterval => ScalarType::Interval,
                    VariadicFunc::DateBin => inputs
                        .get(1)
                        .map(|t| t.scalar_type)
                        .unwrap_or(ScalarType::Timestamp),
                    _ => ScalarType::String,
                };
                scalar.nullable(nullable)
            }
        }
    }
}

/// A length as an `integer`.
fn len_i32(len: usize) -> Result<i32, EvalError> {
    i32::try_from(len).map_err(|_| out_of_range("integer"))
}

/// An array datum of the elements packed in `row`, kept in the arena.
fn array_datum<'a>(row: repr::Row, arena: &'a RowArena) -> Result<Datum<'a>, EvalError> {
    let bytes = arena.push_bytes(row.data().to_vec());
    repr::Array::from_bytes(bytes)
        .map(Datum::Array)
        .ok_or_else(|| EvalError::FeatureNotSupported("multidimensional arrays".into()))
}

/// `x op ANY/ALL (array)` (see [`BinaryFunc::ArrayQuantified`]).
fn array_quantified<'a>(x: Datum<'a>, array: Datum<'a>, op: CompareOp, all: bool) -> Datum<'a> {
    let Datum::Array(arr) = array else {
        return Datum::Null;
    };
    if arr.is_empty() {
        return Datum::from_bool(all);
    }
    if x.is_null() {
        return Datum::Null;
    }
    let mut saw_null = false;
    for e in arr.iter() {
        if e.is_null() {
            saw_null = true;
            continue;
        }
        let holds = op.holds(x.cmp(&e));
        if holds != all {
            // ANY found a true, or ALL found a false.
            return Datum::from_bool(!all);
        }
    }
    if saw_null {
        Datum::Null
    } else {
        Datum::from_bool(all)
    }
}

/// `array_cat`, `array_append` and `array_prepend` (`||` on arrays): NULL arrays are
/// empty, unless both operands are NULL.
fn array_concat<'a>(
    func: BinaryFunc,
    a: Datum<'a>,
    b: Datum<'a>,
    arena: &'a RowArena,
) -> Result<Datum<'a>, EvalError> {
    let elements = |d: Datum<'a>| -> Vec<Datum<'a>> {
        match d {
            Datum::Array(arr) => arr.iter().collect(),
            _ => vec![],
        }
    };
    let mut packer = repr::RowPacker::new();
    match func {
        BinaryFunc::ArrayConcat => {
            if a.is_null() && b.is_null() {
                return Ok(Datum::Null);
            }
            packer.extend(elements(a));
            packer.extend(elements(b));
        }
        BinaryFunc::ArrayAppend => {
            packer.extend(elements(a));
            packer.push(b);
        }
        _ => {
            packer.push(a);
            packer.extend(elements(b));
        }
    }
    let row = packer.finish();
    check_value_len(row.byte_len())?;
    array_datum(row, arena)
}

/// `array_to_string`, `array_position` and `array_remove`, which are not strict.
fn array_function<'a>(
    func: VariadicFunc,
    args: &[Datum<'a>],
    arena: &'a RowArena,
) -> Result<Datum<'a>, EvalError> {
    let Some(Datum::Array(arr)) = args.first().copied() else {
        return Ok(Datum::Null);
    };
    match func {
        VariadicFunc::ArrayToString => {
            let delimiter = match args.get(1) {
                Some(Datum::String(d)) => *d,
                _ => return Ok(Datum::Null),
            };
            let null_text = match args.get(2) {
                Some(Datum::String(n)) => Some(*n),
                _ => None,
            };
            let mut out = String::new();
            let mut first = true;
            for e in arr.iter() {
                let text = if e.is_null() {
                    match null_text {
                        Some(n) => n.to_string(),
                        None => continue,
                    }
                } else {
                    strconv::format_datum(e)
                };
                if !first {
                    out.push_str(delimiter);
                }
                first = false;
                out.push_str(&text);
                check_value_len(out.len())?;
            }
            Ok(Datum::String(arena.push_string(out)))
        }
        VariadicFunc::ArrayPosition => {
            let target = args.get(1).copied().unwrap_or(Datum::Null);
            let start = match args.get(2) {
                None => 1,
                Some(Datum::Null) => {
                    return Err(EvalError::NullValueNotAllowed(
                        "initial position must not be null".into(),
                    ))
                }
                Some(d) => int_arg(*d)?,
            };
            for (i, e) in arr.iter().enumerate() {
                let position = i as i64 + 1;
                if position >= start && e == target {
                    return Ok(Datum::Int32(len_i32(i + 1)?));
                }
            }
            Ok(Datum::Null)
        }
        _ => {
            let target = args.get(1).copied().unwrap_or(Datum::Null);
            let mut packer = repr::RowPacker::new();
            packer.extend(arr.iter().filter(|e| *e != target));
            array_datum(packer.finish(), arena)
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
        let like = |t, p, ci| like(t, p, ci).unwrap();
        assert!(like("hello", "h%o", false));
        assert!(like("hello", "_ello", false));
        assert!(!like("hello", "h_o", false));
        assert!(like("HeLLo", "hello", true));
        assert!(like("100%", "100\\%", false));
        assert!(!like("1000", "100\\%", false));
        assert!(like("abc", "%", false));
        assert!(like("", "%%", false));
        assert!(like("abcbc", "a%bc", false));
        assert!(like("a%c", "a\\%%", false));
        assert!(!like("abc", "a%b", false));
        assert!(like("héllo", "h_llo", false));
    }

    #[test]
    fn like_pattern_ending_in_escape_is_an_error_where_postgres_reaches_it() {
        // PostgreSQL 15: 'ab' LIKE 'a\' and 'ab' LIKE 'a%\' fail with 22025, while
        // 'a' LIKE 'a\' and 'a' LIKE 'a%\' are false (the match ends first).
        for (text, pattern) in [("ab", "a\\"), ("ab", "a%\\"), ("x", "\\")] {
            let err = like(text, pattern, false).unwrap_err();
            assert_eq!(err.sqlstate(), "22025");
            assert_eq!(
                err.to_string(),
                "LIKE pattern must not end with escape character"
            );
        }
        assert_eq!(like("a", "a\\", false), Ok(false));
        assert_eq!(like("a", "a%\\", false), Ok(false));
        let arena = RowArena::new();
        let err = BinaryFunc::Like
            .eval(Datum::String("ab"), Datum::String("a\\"), &arena)
            .unwrap_err();
        assert_eq!(err, EvalError::LikePatternEndsWithEscape);
    }

    #[test]
    fn like_with_many_wildcards_neither_overflows_the_stack_nor_hangs() {
        let pattern = "%a".repeat(20_000) + "%b";
        let text = "a".repeat(30_000);
        let r = like(&text, &pattern, false);
        assert!(matches!(
            r,
            Ok(false) | Err(EvalError::StackDepthLimitExceeded)
        ));
    }

    fn eval2(func: BinaryFunc, a: Datum, b: Datum) -> Result<String, EvalError> {
        let arena = RowArena::new();
        func.eval(a, b, &arena).map(|d| d.to_string())
    }

    fn iv(months: i32, days: i32, micros: i64) -> Datum<'static> {
        Datum::Interval(Interval::new(months, days, micros))
    }

    const HOUR: i64 = 3_600_000_000;

    #[test]
    fn interval_arithmetic_overflow_is_interval_out_of_range() {
        let out = Err(EvalError::DatetimeOutOfRange("interval".into()));
        // INTERVAL '2147483647 months' + INTERVAL '1 month'
        assert_eq!(eval2(BinaryFunc::Add, iv(i32::MAX, 0, 0), iv(1, 0, 0)), out);
        assert_eq!(eval2(BinaryFunc::Sub, iv(0, i32::MIN, 0), iv(0, 1, 0)), out);
        assert_eq!(eval2(BinaryFunc::Add, iv(0, 0, i64::MAX), iv(0, 0, 1)), out);
        let arena = RowArena::new();
        assert_eq!(
            UnaryFunc::Neg.eval(iv(i32::MIN, 0, 0), &arena),
            Err(EvalError::DatetimeOutOfRange("interval".into()))
        );
        assert_eq!(adt::interval_out_of_range().sqlstate(), "22008");
        assert_eq!(
            eval2(BinaryFunc::Sub, iv(1, 0, 0), iv(0, 1, 0)).unwrap(),
            "1 mon -1 days"
        );
    }

    #[test]
    fn date_and_timestamp_arithmetic_is_checked() {
        let date_out = Err(EvalError::DatetimeOutOfRange("date".into()));
        assert_eq!(
            eval2(BinaryFunc::Add, Datum::Date(0), Datum::Int32(i32::MAX)),
            date_out
        );
        // date - i32::MIN negated nothing: no panic, just out of range.
        assert_eq!(
            eval2(BinaryFunc::Sub, Datum::Date(0), Datum::Int32(i32::MIN)),
            date_out
        );
        assert_eq!(
            eval2(BinaryFunc::Add, Datum::Date(adt::DATE_MAX), Datum::Int32(1)),
            date_out
        );
        assert_eq!(
            eval2(BinaryFunc::Add, Datum::Int32(1), Datum::Date(0)).unwrap(),
            "1970-01-02"
        );
        // '0001-01-01' - 1 is 0001-12-31 BC.
        assert_eq!(
            eval2(BinaryFunc::Sub, Datum::Date(-719_162), Datum::Int32(1)).unwrap(),
            "0001-12-31 BC"
        );
        assert_eq!(
            eval2(
                BinaryFunc::Sub,
                Datum::Timestamp(i64::MAX),
                Datum::Timestamp(adt::TIMESTAMP_MIN)
            ),
            Err(EvalError::DatetimeOutOfRange("interval".into()))
        );
        assert_eq!(
            eval2(BinaryFunc::Add, Datum::Timestamp(i64::MAX - 1), iv(0, 1, 0)),
            Err(EvalError::DatetimeOutOfRange("timestamp".into()))
        );
        assert_eq!(
            eval2(BinaryFunc::Sub, Datum::Timestamp(0), iv(i32::MIN, 0, 0)),
            Err(EvalError::DatetimeOutOfRange("interval".into()))
        );
        // '5874897-01-01'::date + interval: the date has no timestamp.
        assert_eq!(
            eval2(BinaryFunc::Add, Datum::Date(adt::DATE_MAX), iv(0, 0, 0)),
            Err(EvalError::DateOutOfRangeForTimestamp)
        );
        let arena = RowArena::new();
        assert_eq!(
            cast(Datum::Date(adt::DATE_MAX), ScalarType::Timestamp, &arena),
            Err(EvalError::DateOutOfRangeForTimestamp)
        );
        // From PostgreSQL 15.
        let ts = |s: &str| {
            let row = strconv::parse_datum(s, ScalarType::Timestamp).unwrap();
            match row.iter().next() {
                Some(Datum::Timestamp(t)) => Datum::Timestamp(t),
                other => panic!("not a timestamp: {other:?}"),
            }
        };
        assert_eq!(
            eval2(BinaryFunc::Sub, ts("2024-01-01"), ts("2024-01-02 00:00:01")).unwrap(),
            "-1 days -00:00:01"
        );
        assert_eq!(
            eval2(BinaryFunc::Add, ts("2024-01-31"), iv(1, -1, 0)).unwrap(),
            "2024-02-28 00:00:00"
        );
        assert_eq!(
            eval2(BinaryFunc::Sub, ts("2024-03-31"), iv(1, 0, 0)).unwrap(),
            "2024-02-29 00:00:00"
        );
        assert_eq!(
            eval2(BinaryFunc::Add, iv(1, 1, HOUR), Datum::Date(19_723)).unwrap(),
            "2024-02-02 01:00:00"
        );
    }

    #[test]
    fn time_and_interval_arithmetic_wraps_around_midnight() {
        let t = |h: i64| Datum::Time(h * HOUR);
        // TIME '23:00' + INTERVAL '2 hours' = 01:00:00
        assert_eq!(
            eval2(BinaryFunc::Add, t(23), iv(0, 0, 2 * HOUR)).unwrap(),
            "01:00:00"
        );
        assert_eq!(
            eval2(BinaryFunc::Add, iv(0, 0, 2 * HOUR), t(23)).unwrap(),
            "01:00:00"
        );
        assert_eq!(
            eval2(BinaryFunc::Sub, t(1), iv(0, 0, 2 * HOUR)).unwrap(),
            "23:00:00"
        );
        // Months and days do not move a time of day.
        assert_eq!(
            eval2(BinaryFunc::Add, t(10), iv(1, 1, HOUR)).unwrap(),
            "11:00:00"
        );
        assert_eq!(
            eval2(BinaryFunc::Add, t(24), iv(0, 0, 0)).unwrap(),
            "00:00:00"
        );
        assert_eq!(
            eval2(BinaryFunc::Add, t(0), iv(0, 0, i64::MIN)).unwrap(),
            "19:59:05.224192"
        );
        assert_eq!(eval2(BinaryFunc::Sub, t(23), t(1)).unwrap(), "22:00:00");
        assert_eq!(eval2(BinaryFunc::Sub, t(1), t(23)).unwrap(), "-22:00:00");
        let time = ScalarType::Time.nullable(false);
        let interval = ScalarType::Interval.nullable(true);
        assert_eq!(
            BinaryFunc::Add.output_type(time, interval),
            ScalarType::Time.nullable(true)
        );
        assert_eq!(
            BinaryFunc::Sub.output_type(time, interval),
            ScalarType::Time.nullable(true)
        );
        assert_eq!(
            BinaryFunc::Add.output_type(interval, time),
            ScalarType::Time.nullable(true)
        );
        assert_eq!(
            BinaryFunc::Sub.output_type(time, time),
            ScalarType::Interval.nullable(false)
        );
    }

    #[test]
    fn float_overflow_and_underflow_match_postgres() {
        let f = Datum::Float64;
        assert_eq!(
            eval2(BinaryFunc::Mul, f(1e308), f(10.0)),
            Err(EvalError::FloatOverflow)
        );
        assert_eq!(
            EvalError::FloatOverflow.to_string(),
            "value out of range: overflow"
        );
        assert_eq!(
            eval2(BinaryFunc::Add, f(f64::MAX), f(f64::MAX)),
            Err(EvalError::FloatOverflow)
        );
        assert_eq!(
            eval2(BinaryFunc::Mul, f(1e-300), f(1e-300)),
            Err(EvalError::FloatUnderflow)
        );
        assert_eq!(
            eval2(BinaryFunc::Div, f(1e-300), f(1e300)),
            Err(EvalError::FloatUnderflow)
        );
        assert_eq!(
            eval2(BinaryFunc::Mul, f(1e-308), f(1e-10)).unwrap(),
            "1e-318"
        );
        assert_eq!(
            eval2(BinaryFunc::Div, f(1.0), f(f64::INFINITY)).unwrap(),
            "0"
        );
        assert_eq!(eval2(BinaryFunc::Div, f(f64::NAN), f(0.0)).unwrap(), "NaN");
        assert_eq!(
            eval2(BinaryFunc::Div, f(1.0), f(0.0)),
            Err(EvalError::DivisionByZero)
        );
        assert_eq!(
            eval2(BinaryFunc::Add, f(f64::INFINITY), f(1.0)).unwrap(),
            "Infinity"
        );
        let r = Datum::Float32;
        assert_eq!(
            eval2(BinaryFunc::Mul, r(3e38), r(10.0)),
            Err(EvalError::FloatOverflow)
        );
        let arena = RowArena::new();
        assert_eq!(
            cast(f(1e308), ScalarType::Float32, &arena),
            Err(EvalError::FloatOverflow)
        );
        assert_eq!(
            cast(f(1e-308), ScalarType::Float32, &arena),
            Err(EvalError::FloatUnderflow)
        );
    }

    #[test]
    fn numeric_overflow_says_value_overflows_numeric_format() {
        let big = Datum::Numeric(Decimal::MAX);
        let err = eval2(BinaryFunc::Mul, big, Datum::Numeric(Decimal::TWO)).unwrap_err();
        assert_eq!(err, EvalError::NumericOverflow);
        assert_eq!(err.to_string(), "value overflows numeric format");
        assert_eq!(err.sqlstate(), "22003");
    }

    #[test]
    fn bool_casts_to_text_as_true_and_false() {
        let arena = RowArena::new();
        assert_eq!(
            cast(Datum::True, ScalarType::String, &arena).unwrap(),
            Datum::String("true")
        );
        assert_eq!(
            cast(Datum::False, ScalarType::String, &arena).unwrap(),
            Datum::String("false")
        );
        // The output format stays t/f.
        assert_eq!(Datum::True.to_string(), "t");
        // `||` casts its non-text operand to text; concat() uses the output format.
        assert_eq!(
            eval2(BinaryFunc::TextConcat, Datum::String("a"), Datum::True).unwrap(),
            "atrue"
        );
        let exprs = [
            MirScalarExpr::literal(Datum::String("a"), ScalarType::String),
            MirScalarExpr::literal(Datum::True, ScalarType::Bool),
        ];
        assert_eq!(
            VariadicFunc::Concat.eval(&exprs, &[], &arena).unwrap(),
            Datum::String("at")
        );
    }

    #[test]
    fn casts_of_any_value_return_errors_not_panics() {
        let arena = RowArena::new();
        let every = [
            Datum::True,
            Datum::Int16(i16::MIN),
            Datum::Int32(i32::MIN),
            Datum::Int64(i64::MIN),
            Datum::Float32(f32::MAX),
            Datum::Float64(f64::MAX),
            Datum::Float64(f64::NAN),
            Datum::Float64(f64::NEG_INFINITY),
            Datum::Numeric(Decimal::MIN),
            Datum::String("\\x1"),
            Datum::String("9999999999-99-99 99:99"),
            Datum::Bytes(b"\xff"),
            Datum::Date(i32::MIN),
            Datum::Date(i32::MAX),
            Datum::Time(i64::MAX),
            Datum::Timestamp(i64::MIN),
            Datum::Timestamp(i64::MAX),
            Datum::TimestampTz(i64::MIN),
            iv(i32::MIN, i32::MIN, i64::MIN),
        ];
        let types = [
            ScalarType::Bool,
            ScalarType::Int16,
            ScalarType::Int32,
            ScalarType::Int64,
            ScalarType::Float32,
            ScalarType::Float64,
            ScalarType::Numeric,
            ScalarType::String,
            ScalarType::Bytes,
            ScalarType::Date,
            ScalarType::Time,
            ScalarType::Timestamp,
            ScalarType::TimestampTz,
            ScalarType::Interval,
        ];
        for d in every {
            for to in types {
                let _ = cast(d, to, &arena);
            }
            for func in [
                BinaryFunc::Add,
                BinaryFunc::Sub,
                BinaryFunc::Mul,
                BinaryFunc::Div,
                BinaryFunc::Mod,
                BinaryFunc::TextConcat,
            ] {
                for e in every {
                    let _ = func.eval(d, e, &arena);
                }
            }
            for func in [
                UnaryFunc::Not,
                UnaryFunc::Neg,
                UnaryFunc::Abs,
                UnaryFunc::Lower,
                UnaryFunc::CharLength,
                UnaryFunc::NormalizeNumeric,
            ] {
                let _ = func.eval(d, &arena);
            }
        }
    }

    #[test]
    fn builtin_functions_of_any_value_return_errors_not_panics() {
        let arena = RowArena::new();
        let every = [
            Datum::Null,
            Datum::Int32(i32::MIN),
            Datum::Int32(i32::MAX),
            Datum::Int32(0),
            Datum::Int32(-1),
            Datum::Int64(i64::MIN),
            Datum::Int64(i64::MAX),
            Datum::Float64(f64::MAX),
            Datum::Float64(-f64::MAX),
            Datum::Float64(f64::NAN),
            Datum::Float64(f64::NEG_INFINITY),
            Datum::Float64(5e-324),
            Datum::Float64(0.0),
            Datum::Numeric(Decimal::MIN),
            Datum::Numeric(Decimal::MAX),
            Datum::Numeric(Decimal::new(1, 28)),
            Datum::String(""),
            Datum::String("héllo wörld"),
            Datum::String("microseconds"),
            Datum::String("FMDay FMMonth Y,YYY IYYY CC \"x\" TH th"),
            Datum::String("(a|b)*\\1[[:alpha:]]{2,}"),
            Datum::Bytes(b"\xff\x00"),
            Datum::Time(0),
            Datum::Time(adt::MICROS_PER_DAY),
            Datum::Timestamp(i64::MIN),
            Datum::Timestamp(i64::MAX),
            Datum::Timestamp(adt::TIMESTAMP_MIN),
            Datum::TimestampTz(i64::MAX),
            iv(i32::MIN, i32::MIN, i64::MIN),
            iv(i32::MAX, i32::MAX, i64::MAX),
            iv(0, 0, 0),
        ];
        let unary = [
            UnaryFunc::Float(FloatFunc::Sqrt),
            UnaryFunc::Float(FloatFunc::Exp),
            UnaryFunc::Float(FloatFunc::Ln),
            UnaryFunc::Float(FloatFunc::Degrees),
            UnaryFunc::Float(FloatFunc::Acosh),
            UnaryFunc::Float(FloatFunc::Cbrt),
            UnaryFunc::Numeric(NumericFunc::Exp),
            UnaryFunc::Numeric(NumericFunc::Sqrt),
            UnaryFunc::Numeric(NumericFunc::Scale),
            UnaryFunc::Reverse,
            UnaryFunc::Initcap,
            UnaryFunc::Md5,
            UnaryFunc::Ascii,
            UnaryFunc::Chr,
            UnaryFunc::OctetLength,
            UnaryFunc::BitLength,
            UnaryFunc::ToHex,
            UnaryFunc::JustifyDays,
            UnaryFunc::JustifyHours,
            UnaryFunc::JustifyInterval,
            UnaryFunc::ToTimestamp,
        ];
        let binary = [
            BinaryFunc::Strpos,
            BinaryFunc::Left,
            BinaryFunc::Right,
            BinaryFunc::StartsWith,
            BinaryFunc::Power,
            BinaryFunc::Atan2,
            BinaryFunc::RoundScale,
            BinaryFunc::TruncScale,
            BinaryFunc::DivTrunc,
            BinaryFunc::Gcd,
            BinaryFunc::Lcm,
            BinaryFunc::LogBase,
            BinaryFunc::DateTrunc,
            BinaryFunc::DatePart,
            BinaryFunc::ToChar,
            BinaryFunc::Age,
        ];
        let variadic = [
            VariadicFunc::Substr,
            VariadicFunc::Trim(TrimSide::Both),
            VariadicFunc::Lpad,
            VariadicFunc::Replace,
            VariadicFunc::SplitPart,
            VariadicFunc::Translate,
            VariadicFunc::RegexpReplace,
            VariadicFunc::RegexpReplaceAt,
            VariadicFunc::ConcatWs,
            VariadicFunc::MakeDate,
            VariadicFunc::MakeTimestamp,
            VariadicFunc::MakeInterval,
            VariadicFunc::DateBin,
            VariadicFunc::NumNulls,
        ];
        for a in every {
            for f in unary {
                let _ = f.eval(a, &arena);
            }
            for b in every {
                for f in binary {
                    let _ = f.eval(a, b, &arena);
                }
                for c in [Datum::Int32(2), Datum::String("g"), Datum::Float64(1.5), a] {
                    let lit = |d: Datum| {
                        let typ = d.scalar_type().unwrap_or(ScalarType::String);
                        MirScalarExpr::literal(d, typ)
                    };
                    let exprs = [lit(a), lit(b), lit(c), lit(c), lit(c), lit(c), lit(c)];
                    for f in variadic {
                        for n in 0..=exprs.len() {
                            let _ = f.eval(&exprs[..n], &[], &arena);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn float_to_numeric_rounds_to_fifteen_digits_like_postgres() {
        let arena = RowArena::new();
        let num = |f: Datum| cast(f, ScalarType::Numeric, &arena).map(|d| d.to_string());
        // From PostgreSQL 15.
        assert_eq!(num(Datum::Float64(0.1 + 0.2)).unwrap(), "0.3");
        assert_eq!(num(Datum::Float64(1e20)).unwrap(), "100000000000000000000");
        assert_eq!(num(Datum::Float64(1.5e-5)).unwrap(), "0.000015");
        assert_eq!(
            num(Datum::Float64(123_456_789.123_456_79)).unwrap(),
            "123456789.123457"
        );
        assert_eq!(num(Datum::Float32(1.1)).unwrap(), "1.1");
        assert_eq!(num(Datum::Float64(1e30)), Err(EvalError::NumericOverflow));
        assert_eq!(
            num(Datum::Float64(f64::NAN)).unwrap_err().sqlstate(),
            "0A000"
        );
    }

    #[test]
    fn interval_division_by_numbers() {
        assert_eq!(
            eval2(BinaryFunc::Div, iv(1, 0, 0), Datum::Float64(7.0)).unwrap(),
            "4 days 06:51:25.6896"
        );
        assert_eq!(
            eval2(BinaryFunc::Div, iv(1, 0, 0), Datum::Int32(0)),
            Err(EvalError::DivisionByZero)
        );
    }

    #[test]
    fn typmods_round_pad_and_overflow_like_postgres() {
        let arena = RowArena::new();
        let num = |s: &str, precision, scale| {
            let v = strconv::parse_numeric(s).unwrap();
            UnaryFunc::NumericTypmod { precision, scale }
                .eval(Datum::Numeric(v), &arena)
                .map(|d| d.to_string())
        };
        // From PostgreSQL 15.
        assert_eq!(num("3.14159", 10, 2).unwrap(), "3.14");
        assert_eq!(num("2.675", 10, 2).unwrap(), "2.68");
        assert_eq!(num("-1.005", 10, 2).unwrap(), "-1.01");
        assert_eq!(num("12.345", 4, 1).unwrap(), "12.3");
        assert_eq!(num("0.5", 1, 0).unwrap(), "1");
        assert_eq!(num("3", 10, 2).unwrap(), "3.00");
        assert_eq!(num("12345", 5, -2).unwrap(), "12300");
        assert_eq!(num("-12355", 5, -1).unwrap(), "-12360");
        assert_eq!(num("-0.001", 10, 2).unwrap(), "0.00");
        let overflow = num("123456789.5", 10, 2).unwrap_err();
        assert_eq!(
            (overflow.sqlstate(), overflow.to_string()),
            ("22003", "numeric field overflow".into())
        );
        assert_eq!(
            overflow.detail().unwrap(),
            "A field with precision 10, scale 2 must round to an absolute value less than 10^8."
        );
        assert!(num("99999.5", 5, 0).is_err());
        assert!(num("0.001", 2, 5).is_err());
        assert_eq!(num("0.00001", 2, 5).unwrap(), "0.00001");

        let text = |s, func: UnaryFunc| func.eval(Datum::String(s), &arena).map(|d| d.to_string());
        let varchar = |length, explicit| UnaryFunc::VarcharTypmod { length, explicit };
        let char = |length, explicit| UnaryFunc::CharTypmod { length, explicit };
        assert_eq!(text("abc  ", varchar(2, true)).unwrap(), "ab");
        assert_eq!(text("ab   ", varchar(3, false)).unwrap(), "ab ");
        assert_eq!(
            text("abcdef", varchar(5, false)),
            Err(EvalError::StringTooLong("character varying(5)".into()))
        );
        assert_eq!(
            EvalError::StringTooLong("character varying(5)".into()).to_string(),
            "value too long for type character varying(5)"
        );
        assert_eq!(text("x", char(3, false)).unwrap(), "x  ");
        assert_eq!(text("abcd", char(2, true)).unwrap(), "ab");
        assert_eq!(
            text("abcd", char(3, false)),
            Err(EvalError::StringTooLong("character(3)".into()))
        );
        assert_eq!(text("héllo", varchar(2, true)).unwrap(), "hé");
    }

    #[test]
    fn case_mapping_is_character_by_character_like_postgres() {
        let arena = RowArena::new();
        let map = |f: UnaryFunc, s| f.eval(Datum::String(s), &arena).unwrap().to_string();
        // From PostgreSQL 15 (UTF-8, C.UTF-8 locale).
        assert_eq!(map(UnaryFunc::Upper, "straße"), "STRAßE");
        assert_eq!(map(UnaryFunc::Lower, "ÀB"), "àb");
        assert_eq!(map(UnaryFunc::Lower, "ΟΔΟΣ"), "οδοσ");
        assert_eq!(map(UnaryFunc::Lower, "İ"), "i");
    }

    #[test]
    fn not_of_a_non_boolean_is_an_error_not_a_panic() {
        let arena = RowArena::new();
        assert!(matches!(
            UnaryFunc::Not.eval(Datum::Int32(1), &arena),
            Err(EvalError::Internal(_))
        ));
        assert_eq!(UnaryFunc::Not.eval(Datum::Null, &arena), Ok(Datum::Null));
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
    fn numeric_result_scales_match_postgres() {
        // Expected values from PostgreSQL 15.
        let d = |s: &str| Datum::Numeric(strconv::parse_numeric(s).unwrap());
        let arena = RowArena::new();
        let cases = [
            (BinaryFunc::Mul, "0", "0.25", "0.00"),
            (BinaryFunc::Mul, "0", "-1.0", "0.0"),
            (BinaryFunc::Mul, "1.5", "2.25", "3.375"),
            (BinaryFunc::Mul, "1.10", "1", "1.10"),
            (BinaryFunc::Add, "0.00", "1.5", "1.50"),
            (BinaryFunc::Add, "0.000", "0.0", "0.000"),
            (BinaryFunc::Add, "0.1", "0.25", "0.35"),
            (BinaryFunc::Sub, "0.00", "1.5", "-1.50"),
            (BinaryFunc::Sub, "1.000", "0.5", "0.500"),
            (BinaryFunc::Mod, "0", "0.25", "0.00"),
            (BinaryFunc::Mod, "7.00", "2.5", "2.00"),
            (BinaryFunc::Mod, "7.5", "2", "1.5"),
        ];
        for (func, a, b, expected) in cases {
            let got = func.eval(d(a), d(b), &arena).unwrap().to_string();
            assert_eq!(got, expected, "{a} {func} {b}");
        }
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
