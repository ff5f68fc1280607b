//! Values on the wire: result columns out in PostgreSQL's text or binary format, Bind
//! parameters in from either format, and RowDescriptions built from a [`RelationDesc`].
//!
//! Parameters leave this module as PostgreSQL text, the form the coordinator parses
//! (`repr::strconv::parse_datum`), so binary input is decoded and re-printed here. The
//! binary formats are PostgreSQL's `*send`/`*recv` functions: big-endian integers and
//! floats, dates and timestamps counted from 2000-01-01, numeric in base-10000 digits.
//!
//! Text output follows the session's `extra_float_digits` (see [`format_text`]); binary
//! output and parameter decoding do not depend on the session.
//!
//! Nothing here panics on client bytes: a parameter that does not decode is an error.

use std::fmt::Write;

use bytes::{BufMut, BytesMut};
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::messages::data::{DataRow, FieldDescription, RowDescription};
use repr::strconv::{date_to_naive, format_datum, timestamp_to_naive};
use repr::{Datum, Interval, RelationDesc, Row, ScalarType};

use crate::adapter::AdapterError;

/// Days from 1970-01-01 (Freshet's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Microseconds in a day; `24:00:00` is a valid time.
const MICROS_PER_DAY: i64 = 86_400_000_000;

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
/// PostgreSQL's largest display scale.
const NUMERIC_DSCALE_MAX: u16 = 0x3FFF;

/// The PostgreSQL type for a scalar type, by OID.
pub(crate) fn pg_type(typ: ScalarType) -> Type {
    Type::from_oid(typ.oid()).unwrap_or(Type::UNKNOWN)
}

/// The fields of a RowDescription: column names, type OIDs, `typlen`, and the format
/// of each column (text where `formats` has no entry).
pub(crate) fn field_infos(desc: &RelationDesc, formats: &[FieldFormat]) -> Vec<FieldInfo> {
    desc.iter()
        .enumerate()
        .map(|(i, (name, typ))| {
            let format = formats.get(i).copied().unwrap_or(FieldFormat::Text);
            FieldInfo::new(name.clone(), None, None, pg_type(typ.scalar_type), format)
                .with_type_size(typ.scalar_type.typlen())
        })
        .collect()
}

/// A RowDescription for `desc` with the given column formats.
pub(crate) fn row_description(desc: &RelationDesc, formats: &[FieldFormat]) -> RowDescription {
    let fields = field_infos(desc, formats);
    RowDescription::new(fields.iter().map(FieldDescription::from).collect())
}

/// One DataRow: each datum in its column's format, NULL as length -1. Text floats follow
/// `extra_float_digits` (the session's value, see [`format_text`]).
pub(crate) fn encode_row(row: &Row, formats: &[FieldFormat], extra_float_digits: i32) -> DataRow {
    let mut buf = BytesMut::with_capacity(row.byte_len() + 8);
    let mut count: i16 = 0;
    for (i, datum) in row.iter().enumerate() {
        let format = formats.get(i).copied().unwrap_or(FieldFormat::Text);
        encode_value(&mut buf, datum, format, extra_float_digits);
        count = count.saturating_add(1);
    }
    DataRow::new(buf, count)
}

/// Appends a length-prefixed value.
fn encode_value(buf: &mut BytesMut, datum: Datum, format: FieldFormat, extra_float_digits: i32) {
    if datum.is_null() {
        buf.put_i32(-1);
        return;
    }
    let start = buf.len();
    buf.put_i32(0);
    match format {
        FieldFormat::Text => buf.put_slice(format_text(datum, extra_float_digits).as_bytes()),
        FieldFormat::Binary => encode_binary(datum, buf),
    }
    let len = i32::try_from(buf.len() - start - 4).unwrap_or(i32::MAX);
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// `DBL_DIG`: the decimal digits a `float8` holds exactly.
const FLOAT8_DIGITS: i32 = 15;
/// `FLT_DIG`: the decimal digits a `float4` holds exactly.
const FLOAT4_DIGITS: i32 = 6;

/// A non-null datum in PostgreSQL's text format, as `float4out`/`float8out` print floats
/// under `extra_float_digits`: above 0 (the default, 1) the shortest text that reads back
/// exactly; at 0 or below, `%g` with `FLT_DIG`/`DBL_DIG + extra_float_digits` significant
/// digits (so `0.1::float8 + 0.2::float8` prints `0.3` at 0). Other types ignore it.
/// A row as one line of `COPY ... TO STDOUT` text format: tab-separated, `\N` for
/// NULL, backslash escapes for backslash, tab, newline and carriage return.
pub(crate) fn copy_text_line(row: &Row, extra_float_digits: i32) -> Vec<u8> {
    let mut line = String::new();
    for (i, datum) in row.iter().enumerate() {
        if i > 0 {
            line.push('\t');
        }
        if datum.is_null() {
            line.push_str("\\N");
            continue;
        }
        for c in format_text(datum, extra_float_digits).chars() {
            match c {
                '\\' => line.push_str("\\\\"),
                '\t' => line.push_str("\\t"),
                '\n' => line.push_str("\\n"),
                '\r' => line.push_str("\\r"),
                c => line.push(c),
            }
        }
    }
    line.push('\n');
    line.into_bytes()
}

pub(crate) fn format_text(datum: Datum, extra_float_digits: i32) -> String {
    match datum {
        Datum::Float32(v) if extra_float_digits <= 0 => {
            format_float_g(f64::from(v), FLOAT4_DIGITS + extra_float_digits)
        }
        Datum::Float64(v) if extra_float_digits <= 0 => {
            format_float_g(v, FLOAT8_DIGITS + extra_float_digits)
        }
        datum => format_datum(datum),
    }
}

/// C's `%.*g` as PostgreSQL's `pg_strfromd` prints it: `digits` significant digits
/// (clamped to 1 ..= 32), exponent form when the exponent is below -4 or at least
/// `digits`, trailing zeros dropped; `NaN`, `Infinity` and `-Infinity` spelled out.
fn format_float_g(v: f64, digits: i32) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let digits = digits.clamp(1, 32);
    // Rounded to `digits` significant digits: its exponent decides the form (C99 7.21.6.1).
    let sci = format!("{:.*e}", (digits - 1) as usize, v);
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is a number");
    if exponent < -4 || exponent >= digits {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            strip_fraction_zeros(mantissa),
            exponent.abs()
        )
    } else {
        let decimals = (digits - 1 - exponent) as usize;
        strip_fraction_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

/// `1.500` → `1.5`, `2.000` → `2`, `100` → `100`.
fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Appends a non-null datum in PostgreSQL's binary format.
pub(crate) fn encode_binary(datum: Datum, buf: &mut BytesMut) {
    match datum {
        Datum::Null => {}
        Datum::False => buf.put_u8(0),
        Datum::True => buf.put_u8(1),
        Datum::Int16(v) => buf.put_i16(v),
        Datum::Int32(v) => buf.put_i32(v),
        Datum::Int64(v) => buf.put_i64(v),
        Datum::Float32(v) => buf.put_f32(v),
        Datum::Float64(v) => buf.put_f64(v),
        Datum::Numeric(v) => encode_numeric(&v.to_string(), buf),
        Datum::String(s) => buf.put_slice(s.as_bytes()),
        Datum::Bytes(b) => buf.put_slice(b),
        Datum::Date(days) => buf.put_i32(days.saturating_sub(PG_EPOCH_DAYS)),
        Datum::Time(micros) => buf.put_i64(micros),
        Datum::Timestamp(micros) | Datum::TimestampTz(micros) => {
            buf.put_i64(micros.saturating_sub(PG_EPOCH_MICROS))
        }
        Datum::Interval(iv) => {
            buf.put_i64(iv.micros);
            buf.put_i32(iv.days);
            buf.put_i32(iv.months);
        }
        Datum::Uuid(u) => buf.put_slice(u.as_bytes()),
        // jsonb_send: a version byte, then the text.
        Datum::Jsonb(j) => {
            buf.put_u8(1);
            buf.put_slice(j.to_string().as_bytes());
        }
        Datum::Array(a) => encode_binary_array(a, buf),
    }
}

/// PostgreSQL's `array_send` for a one-dimensional array: the number of dimensions (0
/// for an empty array), whether any element is NULL, the element type's OID, the
/// length and lower bound (1) of the dimension, then each element length-prefixed
/// (-1 for NULL). An array of no non-null element is sent as an array of text.
fn encode_binary_array(a: repr::Array, buf: &mut BytesMut) {
    let len = a.len();
    let elem_oid = a
        .iter()
        .find_map(|e| e.scalar_type())
        .unwrap_or(ScalarType::String)
        .oid();
    buf.put_i32(if len == 0 { 0 } else { 1 });
    buf.put_i32(i32::from(a.iter().any(|e| e.is_null())));
    buf.put_u32(elem_oid);
    if len > 0 {
        buf.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
        buf.put_i32(1);
    }
    for e in a.iter() {
        if e.is_null() {
            buf.put_i32(-1);
            continue;
        }
        let start = buf.len();
        buf.put_i32(0);
        encode_binary(e, buf);
        let n = i32::try_from(buf.len() - start - 4).unwrap_or(i32::MAX);
        buf[start..start + 4].copy_from_slice(&n.to_be_bytes());
    }
}

/// PostgreSQL text for a binary one-dimensional array of `elem` (`array_recv`).
fn decode_binary_array(v: &[u8], elem: ScalarType) -> Option<String> {
    let int = |at: usize| -> Option<i32> {
        Some(i32::from_be_bytes(v.get(at..at + 4)?.try_into().ok()?))
    };
    let ndim = int(0)?;
    let _has_null = int(4)?;
    let mut at = 12;
    let count = match ndim {
        0 => 0,
        1 => {
            let n = usize::try_from(int(at)?).ok()?;
            at += 8;
            n
        }
        _ => return None,
    };
    let mut out = String::from("{");
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        let len = int(at)?;
        at += 4;
        if len < 0 {
            out.push_str("NULL");
            continue;
        }
        let end = at.checked_add(usize::try_from(len).ok()?)?;
        let text = decode_binary(v.get(at..end)?, elem)?;
        at = end;
        out.push('"');
        for c in text.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    if at != v.len() {
        return None;
    }
    // Read back and printed, so the text is canonical (`{1,2}`, not `{"1","2"}`).
    let row = repr::strconv::parse_datum(&out, ScalarType::Array(elem_static(elem)?)).ok()?;
    Some(format_datum(row.iter().next()?))
}

/// The static element type `Array` borrows.
fn elem_static(elem: ScalarType) -> Option<&'static ScalarType> {
    match elem.array_of()? {
        ScalarType::Array(e) => Some(e),
        _ => None,
    }
}

/// PostgreSQL's binary numeric from a decimal string such as `-12345.6780`: base-10000
/// digits aligned on the decimal point, with leading and trailing zero digits dropped
/// and the display scale kept.
fn encode_numeric(text: &str, buf: &mut BytesMut) {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let int_digits = format!("{}{int_part}", "0".repeat((4 - int_part.len() % 4) % 4));
    let frac_digits = format!("{frac_part}{}", "0".repeat((4 - frac_part.len() % 4) % 4));
    let group = |chunk: &[u8]| {
        chunk.iter().fold(0i16, |acc, d| {
            acc * 10 + i16::from(d.saturating_sub(b'0').min(9))
        })
    };
    let mut digits: Vec<i16> = int_digits
        .as_bytes()
        .chunks(4)
        .chain(frac_digits.as_bytes().chunks(4))
        .map(group)
        .collect();
    let mut weight = i16::try_from(int_digits.len() / 4).unwrap_or(i16::MAX) - 1;
    let leading = digits.iter().take_while(|d| **d == 0).count();
    digits.drain(..leading);
    weight = weight.saturating_sub(i16::try_from(leading).unwrap_or(i16::MAX));
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    let sign = if negative && !digits.is_empty() {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    };
    let dscale = u16::try_from(frac_part.len()).unwrap_or(NUMERIC_DSCALE_MAX);
    buf.put_i16(i16::try_from(digits.len()).unwrap_or(i16::MAX));
    buf.put_i16(weight);
    buf.put_u16(sign);
    buf.put_u16(dscale);
    for digit in digits {
        buf.put_i16(digit);
    }
}

/// A Bind parameter as PostgreSQL text. `position` is 1-based, for the error message.
pub(crate) fn decode_param(
    value: &[u8],
    typ: ScalarType,
    format: FieldFormat,
    position: usize,
) -> Result<String, AdapterError> {
    match format {
        FieldFormat::Text => {
            std::str::from_utf8(value)
                .map(str::to_string)
                .map_err(|_| AdapterError {
                    code: "22021".to_string(),
                    message: "invalid byte sequence for encoding \"UTF8\"".to_string(),
                    detail: Some(format!("Bind parameter {position} is not valid UTF-8.")),
                    hint: None,
                    position: None,
                })
        }
        FieldFormat::Binary => decode_binary(value, typ).ok_or_else(|| AdapterError {
            code: "22P03".to_string(),
            message: format!("incorrect binary data format in bind parameter {position}"),
            detail: Some(format!("The value is not a binary {}.", typ.name())),
            hint: None,
            position: None,
        }),
    }
}

/// PostgreSQL text for a binary value of type `typ`, or `None` if the bytes are not one.
fn decode_binary(v: &[u8], typ: ScalarType) -> Option<String> {
    let text = match typ {
        ScalarType::Bool => match v {
            [b] => format_datum(Datum::from_bool(*b != 0)),
            _ => return None,
        },
        ScalarType::Int16 => i16::from_be_bytes(v.try_into().ok()?).to_string(),
        ScalarType::Int32 => i32::from_be_bytes(v.try_into().ok()?).to_string(),
        ScalarType::Int64 => i64::from_be_bytes(v.try_into().ok()?).to_string(),
        ScalarType::Float32 => format_datum(Datum::Float32(f32::from_be_bytes(v.try_into().ok()?))),
        ScalarType::Float64 => format_datum(Datum::Float64(f64::from_be_bytes(v.try_into().ok()?))),
        ScalarType::Numeric => decode_numeric(v)?,
        ScalarType::String => std::str::from_utf8(v).ok()?.to_string(),
        ScalarType::Bytes => format_datum(Datum::Bytes(v)),
        ScalarType::Date => {
            let days = i32::from_be_bytes(v.try_into().ok()?).checked_add(PG_EPOCH_DAYS)?;
            date_to_naive(days)?;
            format_datum(Datum::Date(days))
        }
        ScalarType::Time => {
            let micros = i64::from_be_bytes(v.try_into().ok()?);
            if !(0..=MICROS_PER_DAY).contains(&micros) {
                return None;
            }
            format_datum(Datum::Time(micros))
        }
        ScalarType::Timestamp | ScalarType::TimestampTz => {
            let micros = i64::from_be_bytes(v.try_into().ok()?).checked_add(PG_EPOCH_MICROS)?;
            timestamp_to_naive(micros)?;
            if typ == ScalarType::Timestamp {
                format_datum(Datum::Timestamp(micros))
            } else {
                format_datum(Datum::TimestampTz(micros))
            }
        }
        ScalarType::Interval => {
            if v.len() != 16 {
                return None;
            }
            format_datum(Datum::Interval(Interval {
                micros: i64::from_be_bytes(v[0..8].try_into().ok()?),
                days: i32::from_be_bytes(v[8..12].try_into().ok()?),
                months: i32::from_be_bytes(v[12..16].try_into().ok()?),
            }))
        }
        ScalarType::Uuid => format_datum(Datum::Uuid(uuid::Uuid::from_bytes(v.try_into().ok()?))),
        ScalarType::Jsonb => match v.split_first() {
            Some((1, text)) => std::str::from_utf8(text).ok()?.to_string(),
            _ => return None,
        },
        ScalarType::Array(elem) => decode_binary_array(v, *elem)?,
    };
    Some(text)
}

/// PostgreSQL text for a binary numeric (see [`encode_numeric`]).
fn decode_numeric(v: &[u8]) -> Option<String> {
    let word = |i: usize| v.get(i..i + 2).map(|b| [b[0], b[1]]);
    let ndigits = i16::from_be_bytes(word(0)?);
    let weight = i32::from(i16::from_be_bytes(word(2)?));
    let sign = u16::from_be_bytes(word(4)?);
    let dscale = u16::from_be_bytes(word(6)?);
    let ndigits = usize::try_from(ndigits).ok()?;
    if v.len() != 8 + 2 * ndigits || dscale > NUMERIC_DSCALE_MAX {
        return None;
    }
    match sign {
        NUMERIC_NAN => return Some("NaN".to_string()),
        NUMERIC_PINF => return Some("Infinity".to_string()),
        NUMERIC_NINF => return Some("-Infinity".to_string()),
        NUMERIC_POS | NUMERIC_NEG => {}
        _ => return None,
    }
    let digits: Vec<i16> = (0..ndigits)
        .map(|i| word(8 + 2 * i).map(i16::from_be_bytes))
        .collect::<Option<_>>()?;
    if digits.iter().any(|d| !(0..10_000).contains(d)) {
        return None;
    }
    // The digit with exponent `weight - k` (in base 10000) is `digits[k]`.
    let digit = |k: i32| {
        usize::try_from(k)
            .ok()
            .and_then(|k| digits.get(k))
            .copied()
            .unwrap_or(0)
    };

    let mut out = String::new();
    if sign == NUMERIC_NEG {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        let _ = write!(out, "{}", digit(0));
        for k in 1..=weight {
            let _ = write!(out, "{:04}", digit(k));
        }
    }
    if dscale > 0 {
        let dscale = usize::from(dscale);
        let mut fraction = String::with_capacity(dscale + 4);
        let mut k = weight + 1;
        while fraction.len() < dscale {
            let _ = write!(fraction, "{:04}", digit(k));
            k += 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use bytes::Buf;
    use repr::strconv::parse_datum;
    use repr::ColumnType;
    use tokio_postgres::types::{FromSql, ToSql, Type as PgType};

    use super::*;

    fn binary(datum: Datum) -> Vec<u8> {
        let mut buf = BytesMut::new();
        encode_binary(datum, &mut buf);
        buf.to_vec()
    }

    /// Every type, with a value that exercises its encoding.
    fn samples() -> Vec<(ScalarType, &'static str)> {
        vec![
            (ScalarType::Bool, "t"),
            (ScalarType::Bool, "f"),
            (ScalarType::Int16, "-32768"),
            (ScalarType::Int32, "2147483647"),
            (ScalarType::Int64, "-9223372036854775808"),
            (ScalarType::Float32, "1.5"),
            (ScalarType::Float32, "-Infinity"),
            (ScalarType::Float64, "0.1"),
            (ScalarType::Float64, "NaN"),
            (ScalarType::Float64, "1e+100"),
            (ScalarType::Numeric, "0"),
            (ScalarType::Numeric, "0.00"),
            (ScalarType::Numeric, "12345.678"),
            (ScalarType::Numeric, "-0.00001"),
            (ScalarType::Numeric, "10000"),
            (ScalarType::Numeric, "1.50"),
            (ScalarType::Numeric, "79228162514264337593543950335"),
            (ScalarType::String, "héllo, wörld"),
            (ScalarType::String, ""),
            (ScalarType::Bytes, "\\x00ff10"),
            (ScalarType::Date, "2024-02-29"),
            (ScalarType::Date, "1970-01-01"),
            (ScalarType::Date, "1999-12-31"),
            (ScalarType::Time, "23:59:59.999999"),
            (ScalarType::Timestamp, "2024-02-29 01:02:03.5"),
            (ScalarType::Timestamp, "1900-01-01 00:00:00"),
            (ScalarType::TimestampTz, "2024-02-29 01:02:03+00"),
            (ScalarType::Interval, "1 year 2 mons -3 days 04:05:06.5"),
            (ScalarType::Interval, "-00:00:01"),
            (ScalarType::Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            (
                ScalarType::Jsonb,
                r#"{"a": [1, "x", null], "bb": {"c": 1.50}}"#,
            ),
            (ScalarType::Jsonb, "3"),
            (ScalarType::Int32.array_of().unwrap(), "{1,NULL,-3}"),
            (ScalarType::Int32.array_of().unwrap(), "{}"),
            (
                ScalarType::String.array_of().unwrap(),
                r#"{"a b",NULL,"","q\"x"}"#,
            ),
            (ScalarType::Numeric.array_of().unwrap(), "{1.50,-2}"),
            (ScalarType::Jsonb.array_of().unwrap(), r#"{"{\"a\": 1}"}"#),
            (
                ScalarType::Timestamp.array_of().unwrap(),
                r#"{"2024-02-29 01:02:03.5"}"#,
            ),
        ]
    }

    #[test]
    fn uuid_jsonb_and_arrays_decode_with_postgres_types() {
        let arrays = parse_datum("{1,NULL,3}", ScalarType::Int32.array_of().unwrap()).unwrap();
        let bytes = binary(arrays.iter().next().unwrap());
        let decoded: Vec<Option<i32>> = FromSql::from_sql(&PgType::INT4_ARRAY, &bytes).unwrap();
        assert_eq!(decoded, vec![Some(1), None, Some(3)]);
        let texts = parse_datum(r#"{"a b",c}"#, ScalarType::String.array_of().unwrap()).unwrap();
        let bytes = binary(texts.iter().next().unwrap());
        let decoded: Vec<String> = FromSql::from_sql(&PgType::TEXT_ARRAY, &bytes).unwrap();
        assert_eq!(decoded, vec!["a b".to_string(), "c".to_string()]);
        let u = parse_datum("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", ScalarType::Uuid).unwrap();
        let bytes = binary(u.iter().next().unwrap());
        assert_eq!(bytes.len(), 16);
        assert_eq!(bytes[0], 0xa0);
        let j = parse_datum(r#"{"a":1}"#, ScalarType::Jsonb).unwrap();
        let bytes = binary(j.iter().next().unwrap());
        assert_eq!(bytes, b"\x01{\"a\": 1}");
        // OIDs in RowDescription.
        assert_eq!(pg_type(ScalarType::Uuid), PgType::UUID);
        assert_eq!(pg_type(ScalarType::Jsonb), PgType::JSONB);
        for (elem, typ) in [
            (ScalarType::Int32, PgType::INT4_ARRAY),
            (ScalarType::Int64, PgType::INT8_ARRAY),
            (ScalarType::String, PgType::TEXT_ARRAY),
            (ScalarType::Bool, PgType::BOOL_ARRAY),
            (ScalarType::Float64, PgType::FLOAT8_ARRAY),
            (ScalarType::Numeric, PgType::NUMERIC_ARRAY),
            (ScalarType::Int16, PgType::INT2_ARRAY),
            (ScalarType::Uuid, PgType::UUID_ARRAY),
            (ScalarType::Jsonb, PgType::JSONB_ARRAY),
            (ScalarType::Date, PgType::DATE_ARRAY),
            (ScalarType::Timestamp, PgType::TIMESTAMP_ARRAY),
            (ScalarType::TimestampTz, PgType::TIMESTAMPTZ_ARRAY),
        ] {
            assert_eq!(pg_type(elem.array_of().unwrap()), typ, "{elem}");
        }
    }

    #[test]
    fn binary_round_trips_through_parameter_decoding() {
        for (typ, text) in samples() {
            let row = parse_datum(text, typ).unwrap();
            let datum = row.iter().next().unwrap();
            let expected = format_datum(datum);
            let decoded = decode_param(&binary(datum), typ, FieldFormat::Binary, 1)
                .unwrap_or_else(|e| panic!("{typ} {text}: {e:?}"));
            assert_eq!(decoded, expected, "{typ} {text}");
            let reparsed = parse_datum(&decoded, typ).unwrap();
            assert_eq!(reparsed.iter().next().unwrap(), datum, "{typ} {text}");
        }
    }

    #[test]
    fn numeric_binary_matches_postgres() {
        // 12345.678: digits [1, 2345, 6780], weight 1, dscale 3.
        let bytes = binary(Datum::Numeric(
            repr::strconv::parse_numeric("12345.678").unwrap(),
        ));
        assert_eq!(
            bytes,
            [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c],
            "12345.678"
        );
        // -0.5: digits [5000], weight -1, negative, dscale 1.
        let bytes = binary(Datum::Numeric(
            repr::strconv::parse_numeric("-0.5").unwrap(),
        ));
        assert_eq!(bytes, [0, 1, 0xff, 0xff, 0x40, 0, 0, 1, 0x13, 0x88]);
        // 0.00: no digits, dscale 2.
        let bytes = binary(Datum::Numeric(
            repr::strconv::parse_numeric("0.00").unwrap(),
        ));
        assert_eq!(bytes, [0, 0, 0, 0, 0, 0, 0, 2]);
        // 20000: digits [2], weight 1.
        let bytes = binary(Datum::Numeric(
            repr::strconv::parse_numeric("20000").unwrap(),
        ));
        assert_eq!(bytes, [0, 1, 0, 1, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn numeric_special_values_decode() {
        let special = |sign: u16| {
            let mut v = vec![0, 0, 0, 0];
            v.extend_from_slice(&sign.to_be_bytes());
            v.extend_from_slice(&[0, 0]);
            decode_numeric(&v)
        };
        assert_eq!(special(NUMERIC_NAN).as_deref(), Some("NaN"));
        assert_eq!(special(NUMERIC_PINF).as_deref(), Some("Infinity"));
        assert_eq!(special(NUMERIC_NINF).as_deref(), Some("-Infinity"));
        assert_eq!(special(0x1234), None);
        // A digit out of range, a length that disagrees with ndigits.
        assert_eq!(decode_numeric(&[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10]), None);
        assert_eq!(decode_numeric(&[0, 2, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(decode_numeric(&[0, 0, 0]), None);
        // Digits beyond the weight with a smaller display scale are cut off.
        assert_eq!(
            decode_numeric(&[0, 2, 0, 0, 0, 0, 0, 2, 0, 7, 0x13, 0x88]).as_deref(),
            Some("7.50")
        );
    }

    #[test]
    fn results_decode_with_postgres_types() {
        fn check<'a, T: FromSql<'a> + PartialEq + std::fmt::Debug>(
            bytes: &'a [u8],
            typ: &PgType,
            expected: T,
        ) {
            assert_eq!(T::from_sql(typ, bytes).unwrap(), expected, "{typ}");
        }
        let b = binary(Datum::True);
        check(&b, &PgType::BOOL, true);
        let b = binary(Datum::Int16(-7));
        check(&b, &PgType::INT2, -7i16);
        let b = binary(Datum::Int32(1 << 20));
        check(&b, &PgType::INT4, 1i32 << 20);
        let b = binary(Datum::Int64(i64::MIN));
        check(&b, &PgType::INT8, i64::MIN);
        let b = binary(Datum::Float32(2.5));
        check(&b, &PgType::FLOAT4, 2.5f32);
        let b = binary(Datum::Float64(-0.1));
        check(&b, &PgType::FLOAT8, -0.1f64);
        let b = binary(Datum::String("héllo"));
        check(&b, &PgType::TEXT, "héllo".to_string());
        let b = binary(Datum::Bytes(&[0, 1, 255]));
        check(&b, &PgType::BYTEA, vec![0u8, 1, 255]);
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let b = binary(Datum::Timestamp(1_700_000_000_123_456));
        check(&b, &PgType::TIMESTAMP, at);
        let b = binary(Datum::TimestampTz(1_700_000_000_123_456));
        check(&b, &PgType::TIMESTAMPTZ, at);
        // Dates count days from 2000-01-01.
        assert_eq!(binary(Datum::Date(PG_EPOCH_DAYS + 1)), 1i32.to_be_bytes());
        // Intervals are micros, days, months.
        let iv = Interval {
            months: 14,
            days: -3,
            micros: 5,
        };
        let mut b = &binary(Datum::Interval(iv))[..];
        assert_eq!((b.get_i64(), b.get_i32(), b.get_i32()), (5, -3, 14));
    }

    #[test]
    fn parameters_encoded_by_postgres_types_decode() {
        fn encode(value: &dyn ToSql, typ: &PgType) -> Vec<u8> {
            let mut buf = BytesMut::new();
            value.to_sql_checked(typ, &mut buf).unwrap();
            buf.to_vec()
        }
        let cases: Vec<(Vec<u8>, ScalarType, &str)> = vec![
            (encode(&true, &PgType::BOOL), ScalarType::Bool, "t"),
            (encode(&-5i16, &PgType::INT2), ScalarType::Int16, "-5"),
            (encode(&42i32, &PgType::INT4), ScalarType::Int32, "42"),
            (encode(&42i64, &PgType::INT8), ScalarType::Int64, "42"),
            (
                encode(&1.25f32, &PgType::FLOAT4),
                ScalarType::Float32,
                "1.25",
            ),
            (
                encode(&1e-7f64, &PgType::FLOAT8),
                ScalarType::Float64,
                "1e-07",
            ),
            (encode(&"hi", &PgType::TEXT), ScalarType::String, "hi"),
            (encode(&"v", &PgType::VARCHAR), ScalarType::String, "v"),
            (
                encode(&vec![1u8, 2], &PgType::BYTEA),
                ScalarType::Bytes,
                "\\x0102",
            ),
            (
                encode(
                    &(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400)),
                    &PgType::TIMESTAMPTZ,
                ),
                ScalarType::TimestampTz,
                "1970-01-02 00:00:00+00",
            ),
        ];
        for (bytes, typ, expected) in cases {
            assert_eq!(
                decode_param(&bytes, typ, FieldFormat::Binary, 1).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn bad_parameters_are_errors() {
        let err = decode_param(&[0, 0, 1], ScalarType::Int32, FieldFormat::Binary, 2).unwrap_err();
        assert_eq!(err.code, "22P03");
        assert_eq!(
            err.message,
            "incorrect binary data format in bind parameter 2"
        );
        for typ in [
            ScalarType::Bool,
            ScalarType::Int16,
            ScalarType::Int64,
            ScalarType::Float32,
            ScalarType::Float64,
            ScalarType::Numeric,
            ScalarType::Date,
            ScalarType::Time,
            ScalarType::Timestamp,
            ScalarType::TimestampTz,
            ScalarType::Interval,
        ] {
            assert!(decode_binary(&[], typ).is_none(), "{typ}");
            assert!(decode_binary(&[1; 3], typ).is_none(), "{typ}");
        }
        assert!(decode_binary(&[0xff, 0xfe], ScalarType::String).is_none());
        assert!(decode_binary(&i64::MAX.to_be_bytes(), ScalarType::Timestamp).is_none());
        assert!(decode_binary(&i32::MAX.to_be_bytes(), ScalarType::Date).is_none());
        assert!(decode_binary(&(-1i64).to_be_bytes(), ScalarType::Time).is_none());
        let err = decode_param(&[0xff], ScalarType::String, FieldFormat::Text, 1).unwrap_err();
        assert_eq!(err.code, "22021");
        assert_eq!(
            decode_param(b"12", ScalarType::Int32, FieldFormat::Text, 1).unwrap(),
            "12"
        );
    }

    #[test]
    fn data_rows_mix_formats_and_nulls() {
        let row = Row::pack_slice(&[Datum::Int32(7), Datum::Null, Datum::String("x")]);
        let data_row = encode_row(&row, &[FieldFormat::Binary, FieldFormat::Text], 1);
        assert_eq!(data_row.field_count, 3);
        assert_eq!(
            &data_row.data[..],
            [0, 0, 0, 4, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, b'x']
        );
        let text = encode_row(
            &Row::pack_slice(&[Datum::Float64(0.5), Datum::Bytes(&[0xab])]),
            &[],
            1,
        );
        assert_eq!(&text.data[..], b"\0\0\0\x030.5\0\0\0\x04\\xab");
    }

    #[test]
    fn extra_float_digits_above_zero_prints_shortest_exact() {
        let sum = 0.1f64 + 0.2f64;
        for efd in [1, 2, 3] {
            assert_eq!(format_text(Datum::Float64(sum), efd), "0.30000000000000004");
            assert_eq!(format_text(Datum::Float32(0.1), efd), "0.1");
        }
    }

    #[test]
    fn extra_float_digits_zero_and_below_print_like_postgres() {
        // Each expectation is PostgreSQL 15's float8out/float4out output.
        let f8 = |v: f64, efd: i32| format_text(Datum::Float64(v), efd);
        let f4 = |v: f32, efd: i32| format_text(Datum::Float32(v), efd);
        assert_eq!(f8(0.1 + 0.2, 0), "0.3");
        assert_eq!(f8(1.0 / 3.0, 0), "0.333333333333333");
        assert_eq!(f8(1.0 / 3.0, -10), "0.33333");
        assert_eq!(f8(2.0 / 3.0, -14), "0.7");
        assert_eq!(f8(2.0 / 3.0, -15), "0.7");
        assert_eq!(f8(123456.789, -12), "1.23e+05");
        assert_eq!(f8(1e15, 0), "1e+15");
        assert_eq!(f8(1e14, 0), "100000000000000");
        assert_eq!(f8(123456789012345678.0, 0), "1.23456789012346e+17");
        assert_eq!(f8(1.5e-5, 0), "1.5e-05");
        assert_eq!(f8(0.0001, 0), "0.0001");
        assert_eq!(f8(1e-300, 0), "1e-300");
        assert_eq!(f8(-2.0, 0), "-2");
        assert_eq!(f8(0.0, 0), "0");
        assert_eq!(f8(-0.0, 0), "-0");
        // 1e23 is 99999999999999991611392 as a double: rounded to 15 digits.
        assert_eq!(f8(1e23, 0), "1e+23");
        assert_eq!(f8(99999.95, -10), "1e+05");
        assert_eq!(f8(f64::NAN, 0), "NaN");
        assert_eq!(f8(f64::INFINITY, -5), "Infinity");
        assert_eq!(f8(f64::NEG_INFINITY, 0), "-Infinity");
        assert_eq!(f4(0.1, 0), "0.1");
        assert_eq!(f4(1.0 / 3.0, 0), "0.333333");
        assert_eq!(f4(1.0 / 3.0, -3), "0.333");
        assert_eq!(f4(1e6, 0), "1e+06");
        assert_eq!(f4(123456.0, 0), "123456");
        assert_eq!(f4(1234567.0, 0), "1.23457e+06");
        assert_eq!(f4(f32::NAN, 0), "NaN");
        // Other types ignore the setting.
        assert_eq!(format_text(Datum::Int32(7), -15), "7");
        assert_eq!(format_text(Datum::String("0.1"), 0), "0.1");
    }

    #[test]
    fn text_rows_follow_extra_float_digits() {
        let row = Row::pack_slice(&[Datum::Float64(0.1 + 0.2)]);
        let shortest = encode_row(&row, &[], 1);
        assert_eq!(&shortest.data[4..], b"0.30000000000000004");
        let rounded = encode_row(&row, &[], 0);
        assert_eq!(&rounded.data[..], b"\0\0\0\x030.3");
        // Binary output is the float's bits whatever the setting.
        let binary = encode_row(&row, &[FieldFormat::Binary], 0);
        assert_eq!(&binary.data[4..], (0.1f64 + 0.2).to_be_bytes());
    }

    #[test]
    fn row_description_carries_oids_lengths_and_formats() {
        let desc = RelationDesc::empty()
            .with_column(
                "a",
                ColumnType {
                    scalar_type: ScalarType::Int64,
                    nullable: false,
                },
            )
            .with_column(
                "b",
                ColumnType {
                    scalar_type: ScalarType::String,
                    nullable: true,
                },
            )
            .with_column(
                "c",
                ColumnType {
                    scalar_type: ScalarType::Numeric,
                    nullable: true,
                },
            )
            .with_column(
                "d",
                ColumnType {
                    scalar_type: ScalarType::TimestampTz,
                    nullable: true,
                },
            )
            .with_column(
                "e",
                ColumnType {
                    scalar_type: ScalarType::Bool,
                    nullable: true,
                },
            );
        let rd = row_description(&desc, &[FieldFormat::Binary, FieldFormat::Text]);
        let fields: Vec<(&str, u32, i16, i16, i32)> = rd
            .fields
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.type_id,
                    f.type_size,
                    f.format_code,
                    f.type_modifier,
                )
            })
            .collect();
        assert_eq!(
            fields,
            vec![
                ("a", 20, 8, 1, -1),
                ("b", 25, -1, 0, -1),
                ("c", 1700, -1, 0, -1),
                ("d", 1184, 8, 0, -1),
                ("e", 16, 1, 0, -1),
            ]
        );
        for typ in samples().into_iter().map(|(t, _)| t) {
            assert_eq!(pg_type(typ).oid(), typ.oid(), "{typ}");
        }
    }
}
