//! PostgreSQL's text formats: [`format_datum`] writes a value as PostgreSQL prints it,
//! [`parse_datum`] reads one the way PostgreSQL's input functions do.
//!
//! Dates and times are in UTC; a session time zone is not applied yet.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use rust_decimal::Decimal;

use crate::adt::{Interval, MICROS_PER_DAY, MICROS_PER_SEC};
use crate::error::EvalError;
use crate::row::{Row, RowPacker};
use crate::scalar::{Datum, ScalarType};

const EPOCH_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("1970-01-01 is a date"),
};

/// The text PostgreSQL prints for a non-null value.
pub fn format_datum(datum: Datum) -> String {
    match datum {
        Datum::Null => String::new(),
        Datum::False => "f".into(),
        Datum::True => "t".into(),
        Datum::Int16(v) => v.to_string(),
        Datum::Int32(v) => v.to_string(),
        Datum::Int64(v) => v.to_string(),
        Datum::Float32(v) => format_float(v as f64, v.to_string(), format!("{v:e}"), 6),
        Datum::Float64(v) => format_float(v, v.to_string(), format!("{v:e}"), 15),
        Datum::Numeric(v) => v.to_string(),
        Datum::String(s) => s.to_string(),
        Datum::Bytes(b) => {
            let mut out = String::with_capacity(2 + 2 * b.len());
            out.push_str("\\x");
            for byte in b {
                out.push_str(&format!("{byte:02x}"));
            }
            out
        }
        Datum::Date(days) => format_date(days),
        Datum::Time(micros) => format_time(micros),
        Datum::Timestamp(micros) => format_timestamp(micros),
        Datum::TimestampTz(micros) => format!("{}+00", format_timestamp(micros)),
        Datum::Interval(iv) => format_interval(iv),
    }
}

/// PostgreSQL (12+) prints the shortest exact digits, switching to exponent form when the
/// decimal exponent is below -4 or at least the type's precision (6 for real, 15 for double).
fn format_float(v: f64, plain: String, sci: String, precision: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is a number");
    if exp < -4 || exp >= precision {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        plain
    }
}

pub fn date_to_naive(days: i32) -> Option<NaiveDate> {
    EPOCH_DATE.checked_add_signed(chrono::Duration::days(days as i64))
}

pub fn naive_to_date(date: NaiveDate) -> i32 {
    (date - EPOCH_DATE).num_days() as i32
}

pub fn timestamp_to_naive(micros: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(micros).map(|dt| dt.naive_utc())
}

pub fn naive_to_timestamp(dt: NaiveDateTime) -> i64 {
    dt.and_utc().timestamp_micros()
}

fn format_date(days: i32) -> String {
    match date_to_naive(days) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => "invalid date".into(),
    }
}

fn fraction(micros: i64) -> String {
    if micros == 0 {
        return String::new();
    }
    let s = format!(".{micros:06}");
    s.trim_end_matches('0').to_string()
}

fn format_time(micros: i64) -> String {
    let secs = micros.div_euclid(MICROS_PER_SEC);
    let frac = micros.rem_euclid(MICROS_PER_SEC);
    format!(
        "{:02}:{:02}:{:02}{}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        fraction(frac)
    )
}

fn format_timestamp(micros: i64) -> String {
    match timestamp_to_naive(micros) {
        Some(dt) => format!(
            "{}{}",
            dt.format("%Y-%m-%d %H:%M:%S"),
            fraction((dt.nanosecond() / 1000) as i64)
        ),
        None => "invalid timestamp".into(),
    }
}

/// PostgreSQL's default `postgres` interval style: `1 year 2 mons 3 days 04:05:06`.
pub fn format_interval(iv: Interval) -> String {
    let mut parts = Vec::new();
    let years = iv.months / 12;
    let months = iv.months % 12;
    let plural = |n: i32, one: &str, many: &str| {
        format!("{n} {}", if n == 1 || n == -1 { one } else { many })
    };
    if years != 0 {
        parts.push(plural(years, "year", "years"));
    }
    if months != 0 {
        parts.push(plural(months, "mon", "mons"));
    }
    if iv.days != 0 {
        parts.push(plural(iv.days, "day", "days"));
    }
    if iv.micros != 0 || parts.is_empty() {
        let neg = iv.micros < 0;
        let abs = iv.micros.unsigned_abs() as i64;
        let secs = abs / MICROS_PER_SEC;
        let time = format!(
            "{}{:02}:{:02}:{:02}{}",
            if neg { "-" } else { "" },
            secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            fraction(abs % MICROS_PER_SEC)
        );
        parts.push(time);
    }
    parts.join(" ")
}

fn invalid(typ: ScalarType, s: &str) -> EvalError {
    EvalError::InvalidTextRepresentation {
        typ: typ.name().to_string(),
        value: s.to_string(),
    }
}

fn out_of_range(typ: ScalarType, s: &str) -> EvalError {
    EvalError::ValueOutOfRange {
        typ: typ.name().to_string(),
        value: s.to_string(),
    }
}

/// Parses PostgreSQL's text input for `typ` into a one-datum row.
pub fn parse_datum(s: &str, typ: ScalarType) -> Result<Row, EvalError> {
    let mut packer = RowPacker::new();
    parse_datum_into(&mut packer, s, typ)?;
    Ok(packer.finish())
}

/// Parses PostgreSQL's text input for `typ`, appending the datum to `packer`.
pub fn parse_datum_into(packer: &mut RowPacker, s: &str, typ: ScalarType) -> Result<(), EvalError> {
    let t = s.trim();
    let datum = match typ {
        ScalarType::Bool => Datum::from_bool(parse_bool(t).ok_or_else(|| invalid(typ, s))?),
        ScalarType::Int16 => {
            let v = parse_int(t).ok_or_else(|| invalid(typ, s))?;
            Datum::Int16(i16::try_from(v).map_err(|_| out_of_range(typ, s))?)
        }
        ScalarType::Int32 => {
            let v = parse_int(t).ok_or_else(|| invalid(typ, s))?;
            Datum::Int32(i32::try_from(v).map_err(|_| out_of_range(typ, s))?)
        }
        ScalarType::Int64 => {
            let v = parse_int(t).ok_or_else(|| invalid(typ, s))?;
            Datum::Int64(i64::try_from(v).map_err(|_| out_of_range(typ, s))?)
        }
        ScalarType::Float32 => {
            let v = parse_float(t).ok_or_else(|| invalid(typ, s))?;
            if v.is_finite() && (v as f32).is_infinite() {
                return Err(out_of_range(typ, s));
            }
            Datum::Float32(v as f32)
        }
        ScalarType::Float64 => Datum::Float64(parse_float(t).ok_or_else(|| invalid(typ, s))?),
        ScalarType::Numeric => Datum::Numeric(parse_numeric(t).ok_or_else(|| invalid(typ, s))?),
        ScalarType::String => Datum::String(s),
        ScalarType::Bytes => {
            let bytes = parse_bytea(s).ok_or_else(|| invalid(typ, s))?;
            packer.push(Datum::Bytes(&bytes));
            return Ok(());
        }
        ScalarType::Date => {
            Datum::Date(naive_to_date(parse_date(t).ok_or_else(|| invalid(typ, s))?))
        }
        ScalarType::Time => Datum::Time(parse_time(t).ok_or_else(|| invalid(typ, s))?),
        ScalarType::Timestamp => {
            Datum::Timestamp(parse_timestamp(t, false).ok_or_else(|| invalid(typ, s))?)
        }
        ScalarType::TimestampTz => {
            Datum::TimestampTz(parse_timestamp(t, true).ok_or_else(|| invalid(typ, s))?)
        }
        ScalarType::Interval => Datum::Interval(parse_interval(t).ok_or_else(|| invalid(typ, s))?),
    };
    packer.push(datum);
    Ok(())
}

pub fn parse_bool(s: &str) -> Option<bool> {
    let l = s.to_ascii_lowercase();
    if l.is_empty() {
        return None;
    }
    for (word, value) in [
        ("true", true),
        ("false", false),
        ("yes", true),
        ("no", false),
    ] {
        if word.starts_with(&l) {
            return Some(value);
        }
    }
    match l.as_str() {
        "on" | "1" => Some(true),
        "of" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn parse_int(s: &str) -> Option<i128> {
    if s.is_empty() || s.len() > 40 {
        return None;
    }
    let s = s.replace('_', "");
    i128::from_str(&s).ok()
}

pub fn parse_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        l if l.contains("inf") || l.contains("nan") => None,
        _ => f64::from_str(s).ok(),
    }
}

pub fn parse_numeric(s: &str) -> Option<Decimal> {
    Decimal::from_str(s)
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
}

fn parse_bytea(s: &str) -> Option<Vec<u8>> {
    if let Some(hex) = s.strip_prefix("\\x") {
        if hex.len() % 2 != 0 {
            return None;
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect()
    } else {
        Some(s.as_bytes().to_vec())
    }
}

pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn parse_time(s: &str) -> Option<i64> {
    let t = NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()?;
    Some(t.num_seconds_from_midnight() as i64 * MICROS_PER_SEC + (t.nanosecond() / 1000) as i64)
}

fn parse_timestamp(s: &str, with_tz: bool) -> Option<i64> {
    let s = s.replace('T', " ");
    if with_tz {
        for fmt in [
            "%Y-%m-%d %H:%M:%S%.f%#z",
            "%Y-%m-%d %H:%M:%S%.f %#z",
            "%Y-%m-%d %H:%M%#z",
        ] {
            if let Ok(dt) = DateTime::parse_from_str(&s, fmt) {
                return Some(dt.timestamp_micros());
            }
        }
    }
    let s = s
        .trim_end_matches(['Z', 'z'])
        .trim_end_matches(" UTC")
        .trim();
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(naive_to_timestamp(dt));
        }
    }
    parse_date(s).map(|d| naive_to_timestamp(d.and_hms_opt(0, 0, 0).expect("midnight exists")))
}

/// Parses `1 year 2 mons 3 days 04:05:06`, `5 minutes`, `-1 day`, `@ 2 hours ago`.
pub fn parse_interval(s: &str) -> Option<Interval> {
    let mut iv = Interval::default();
    let s = s.trim().trim_start_matches('@').trim();
    let (s, negate) = match s.strip_suffix("ago") {
        Some(rest) => (rest.trim(), true),
        None => (s, false),
    };
    let tokens: Vec<&str> = s.split_whitespace().collect();
    if tokens.is_empty() {
        return None;
    }
    let mut i = 0;
    while i < tokens.len() {
        let tok = tokens[i];
        if tok.contains(':') {
            let neg = tok.starts_with('-');
            let parts: Vec<&str> = tok.trim_start_matches(['-', '+']).split(':').collect();
            if parts.len() < 2 || parts.len() > 3 {
                return None;
            }
            let h: i64 = parts[0].parse().ok()?;
            let m: i64 = parts[1].parse().ok()?;
            let sec: f64 = parts.get(2).map(|p| p.parse().ok()).unwrap_or(Some(0.0))?;
            let micros = (h * 3600 + m * 60) * MICROS_PER_SEC + (sec * 1e6).round() as i64;
            iv.micros += if neg { -micros } else { micros };
            i += 1;
            continue;
        }
        let (number, unit) = match tok.find(|c: char| c.is_ascii_alphabetic()) {
            Some(pos) if pos > 0 => (&tok[..pos], tok[pos..].to_string()),
            _ => {
                let unit = tokens
                    .get(i + 1)
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "second".into());
                i += 1;
                (tok, unit)
            }
        };
        i += 1;
        let n: f64 = number.parse().ok()?;
        let unit = unit.to_ascii_lowercase();
        let unit = unit.trim_end_matches(',');
        match unit {
            "y" | "yr" | "yrs" | "year" | "years" => iv.months += (n * 12.0) as i32,
            "mon" | "mons" | "month" | "months" => iv.months += n as i32,
            "w" | "week" | "weeks" => iv.days += (n * 7.0) as i32,
            "d" | "day" | "days" => {
                iv.days += n.trunc() as i32;
                iv.micros += (n.fract() * MICROS_PER_DAY as f64).round() as i64;
            }
            "h" | "hr" | "hrs" | "hour" | "hours" => iv.micros += (n * 3_600e6).round() as i64,
            "m" | "min" | "mins" | "minute" | "minutes" => iv.micros += (n * 60e6).round() as i64,
            "s" | "sec" | "secs" | "second" | "seconds" => iv.micros += (n * 1e6).round() as i64,
            "ms" | "millisecond" | "milliseconds" => iv.micros += (n * 1e3).round() as i64,
            "us" | "microsecond" | "microseconds" => iv.micros += n.round() as i64,
            _ => return None,
        }
    }
    if negate {
        iv = Interval {
            months: -iv.months,
            days: -iv.days,
            micros: -iv.micros,
        };
    }
    Some(iv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(typ: ScalarType, s: &str) -> String {
        let row = parse_datum(s, typ).unwrap();
        format_datum(row.iter().next().unwrap())
    }

    #[test]
    fn floats_print_like_postgres() {
        assert_eq!(format_datum(Datum::Float64(0.1)), "0.1");
        assert_eq!(format_datum(Datum::Float64(1e15)), "1e+15");
        assert_eq!(format_datum(Datum::Float64(1e14)), "100000000000000");
        assert_eq!(format_datum(Datum::Float64(1.5e-5)), "1.5e-05");
        assert_eq!(format_datum(Datum::Float64(-2.0)), "-2");
        assert_eq!(format_datum(Datum::Float32(1e6)), "1e+06");
        assert_eq!(format_datum(Datum::Float64(f64::NAN)), "NaN");
    }

    #[test]
    fn round_trips_text() {
        assert_eq!(fmt(ScalarType::Bool, "yes"), "t");
        assert_eq!(fmt(ScalarType::Int32, " 42 "), "42");
        assert_eq!(fmt(ScalarType::Numeric, "1.50"), "1.50");
        assert_eq!(fmt(ScalarType::Date, "2024-02-29"), "2024-02-29");
        assert_eq!(
            fmt(ScalarType::Timestamp, "2024-02-29 01:02:03.5"),
            "2024-02-29 01:02:03.5"
        );
        assert_eq!(
            fmt(ScalarType::TimestampTz, "2024-02-29 01:02:03+01"),
            "2024-02-29 00:02:03+00"
        );
        assert_eq!(
            fmt(ScalarType::Interval, "1 year 2 mons 3 days 04:05:06"),
            "1 year 2 mons 3 days 04:05:06"
        );
        assert_eq!(fmt(ScalarType::Interval, "5 minutes"), "00:05:00");
        assert_eq!(fmt(ScalarType::Bytes, "\\x0aff"), "\\x0aff");
    }

    #[test]
    fn rejects_bad_input_with_sqlstate() {
        assert_eq!(
            parse_datum("abc", ScalarType::Int32)
                .unwrap_err()
                .sqlstate(),
            "22P02"
        );
        assert_eq!(
            parse_datum("99999999999", ScalarType::Int32)
                .unwrap_err()
                .sqlstate(),
            "22003"
        );
        assert_eq!(
            parse_datum("2024-13-01", ScalarType::Date)
                .unwrap_err()
                .sqlstate(),
            "22P02"
        );
    }
}
