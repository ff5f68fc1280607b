//! Value formatting following the SQLite sqllogictest conventions.
//!
//! The SQLite corpus compares every value as text, formatted according to the
//! column's letter in the record's type string:
//!
//! * `NULL` is printed as `NULL` whatever the column type;
//! * `I` columns print integers; floating point and numeric values are
//!   truncated toward zero (`2.7` -> `2`, `-2.7` -> `-2`); text is converted
//!   like SQLite's `sqlite3_column_int` does (a number is truncated, otherwise
//!   its leading integer prefix is used, otherwise `0`); booleans print `1`/`0`;
//! * `R` columns print the value as `%.3f` (SQLite's `printf`, which rounds
//!   half away from zero and keeps at most 16 significant digits);
//! * every other letter (`T`, ...) prints the text: the empty string becomes
//!   `(empty)` and control characters become `@`; booleans print `t`/`f` as
//!   PostgreSQL does.

use slt::ColumnType;
use tokio_postgres::types::Type;

/// One letter of a record's type string (`T`, `I`, `R`, or any other letter).
///
/// Unlike the crate's `DefaultColumnType`, every letter is preserved so that
/// `--complete` writes the type string back unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SltColumnType(char);

impl SltColumnType {
    pub const INTEGER: Self = SltColumnType('I');
    pub const REAL: Self = SltColumnType('R');
    pub const TEXT: Self = SltColumnType('T');
}

impl ColumnType for SltColumnType {
    fn from_char(value: char) -> Option<Self> {
        Some(SltColumnType(value))
    }

    fn to_char(&self) -> char {
        self.0
    }
}

/// What the server says a column holds, as far as formatting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// `int2`, `int4`, `int8`, `oid`.
    Int,
    /// `float4`, `float8`.
    Float,
    /// `numeric`.
    Numeric,
    /// `bool` (text `t` / `f`).
    Bool,
    /// Any other type, printed as the server's text.
    Text,
    /// The type could not be determined (the statement could not be prepared).
    Unknown,
}

impl ValueKind {
    /// Classifies a PostgreSQL type.
    pub fn from_pg_type(ty: &Type) -> Self {
        match *ty {
            Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => ValueKind::Int,
            Type::FLOAT4 | Type::FLOAT8 => ValueKind::Float,
            Type::NUMERIC => ValueKind::Numeric,
            Type::BOOL => ValueKind::Bool,
            _ => ValueKind::Text,
        }
    }

    /// The type letter `--complete` writes for a column of this kind.
    ///
    /// `Unknown` columns are classified by looking at their values.
    pub fn infer_letter<'a>(self, values: impl Iterator<Item = Option<&'a str>>) -> SltColumnType {
        match self {
            ValueKind::Int => SltColumnType::INTEGER,
            ValueKind::Float | ValueKind::Numeric => SltColumnType::REAL,
            ValueKind::Bool | ValueKind::Text => SltColumnType::TEXT,
            ValueKind::Unknown => {
                let mut all_int = true;
                let mut all_num = true;
                for v in values.flatten() {
                    all_int &= v.parse::<i64>().is_ok();
                    all_num &= is_decimal_literal(v) || looks_like_float(v);
                }
                if all_int {
                    SltColumnType::INTEGER
                } else if all_num {
                    SltColumnType::REAL
                } else {
                    SltColumnType::TEXT
                }
            }
        }
    }
}

/// Formats one value received as text from the server.
pub fn format_value(value: Option<&str>, kind: ValueKind, letter: SltColumnType) -> String {
    let Some(text) = value else {
        return "NULL".to_string();
    };
    match letter.to_char() {
        'I' => format_integer(text, kind),
        'R' => format_real(real_value(text, kind)),
        _ => format_text(text),
    }
}

/// Formats a value for an `I` column.
fn format_integer(text: &str, kind: ValueKind) -> String {
    let trimmed = text.trim();
    match kind {
        ValueKind::Bool => match trimmed {
            "t" | "true" => "1".to_string(),
            _ => "0".to_string(),
        },
        ValueKind::Int | ValueKind::Float | ValueKind::Numeric => {
            number_to_integer(trimmed).unwrap_or_else(|| integer_prefix(trimmed).to_string())
        }
        ValueKind::Text | ValueKind::Unknown => {
            if starts_like_number(trimmed) {
                if let Some(n) = number_to_integer(trimmed) {
                    return n;
                }
            }
            integer_prefix(trimmed).to_string()
        }
    }
}

/// Truncates a numeric literal toward zero, as text.
///
/// Plain decimal literals (`-12.75`, `12345678901234567890.5`) are truncated
/// textually so that no precision is lost; other forms (`1e+20`, `Infinity`,
/// `NaN`) go through `f64` and saturate to the `i64` range like SQLite's
/// `doubleToInt64`. Returns `None` if `text` is not a number.
pub fn number_to_integer(text: &str) -> Option<String> {
    if is_decimal_literal(text) {
        let (negative, unsigned) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let int_part = unsigned.split('.').next().unwrap_or("");
        let digits = int_part.trim_start_matches('0');
        if digits.is_empty() {
            return Some("0".to_string());
        }
        return Some(if negative {
            format!("-{digits}")
        } else {
            digits.to_string()
        });
    }
    parse_float(text).map(|f| (f as i64).to_string())
}

/// SQLite's `sqlite3Atoi64` on text: optional whitespace and sign, then the
/// leading digits; `0` if there are none. Saturates on overflow.
fn integer_prefix(text: &str) -> i64 {
    let s = text.trim_start();
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut value: i64 = 0;
    for b in rest.bytes().take_while(u8::is_ascii_digit) {
        let digit = i64::from(b - b'0');
        value = value
            .saturating_mul(10)
            .saturating_add(if negative { -digit } else { digit });
    }
    value
}

/// The numeric value of a value in an `R` column.
fn real_value(text: &str, kind: ValueKind) -> f64 {
    let trimmed = text.trim();
    match kind {
        ValueKind::Bool => match trimmed {
            "t" | "true" => 1.0,
            _ => 0.0,
        },
        ValueKind::Int | ValueKind::Float | ValueKind::Numeric => {
            parse_float(trimmed).unwrap_or_else(|| float_prefix(trimmed))
        }
        ValueKind::Text | ValueKind::Unknown => {
            if starts_like_number(trimmed) {
                if let Some(f) = parse_float(trimmed) {
                    return f;
                }
            }
            float_prefix(trimmed)
        }
    }
}

/// Parses a number as PostgreSQL prints it, including `Infinity`/`NaN`.
fn parse_float(text: &str) -> Option<f64> {
    match text {
        "Infinity" | "+Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if is_decimal_literal(text) || looks_like_float(text) => text.parse().ok(),
        _ => None,
    }
}

/// SQLite's `sqlite3AtoF` on text: the longest numeric prefix, `0.0` if none.
fn float_prefix(text: &str) -> f64 {
    let s = text.trim_start();
    // Try successively shorter prefixes; values in the corpus are short.
    let end = s
        .char_indices()
        .take_while(|(_, c)| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'))
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    let mut candidate = &s[..end];
    while !candidate.is_empty() {
        if is_decimal_literal(candidate) || looks_like_float(candidate) {
            if let Ok(f) = candidate.parse::<f64>() {
                return f;
            }
        }
        candidate = &candidate[..candidate.len() - 1];
    }
    0.0
}

/// `[+-]?digits[.digits]` or `[+-]?.digits`, without exponent.
fn is_decimal_literal(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let mut parts = unsigned.splitn(2, '.');
    let int_part = parts.next().unwrap_or("");
    let frac_part = parts.next();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match frac_part {
        None => !int_part.is_empty() && digits(int_part),
        Some(frac) => digits(int_part) && digits(frac) && !(int_part.is_empty() && frac.is_empty()),
    }
}

/// A decimal literal with an exponent, e.g. `1.5e+20`.
fn looks_like_float(text: &str) -> bool {
    match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => {
            let exponent = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
            is_decimal_literal(mantissa)
                && !exponent.is_empty()
                && exponent.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Whether text starts like a number (so that `nan` or `inf` in a text
/// column are not taken for numbers).
fn starts_like_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    unsigned
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'.')
}

/// Formats a float like SQLite's `sqlite3_snprintf("%.3f")`: round half away
/// from zero on the decimal expansion, at most 16 significant digits (further
/// integer digits print as `0`).
pub fn format_real(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Inf" } else { "-Inf" }.to_string();
    }
    const FRACTION_DIGITS: i32 = 3;
    let negative = value < 0.0;
    // 16 significant digits: "d.ddddddddddddddde<exp>".
    let scientific = format!("{:.15e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let significant: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    // Digit at power of ten `p` is significant[exponent - p].
    let digit_at = |power: i32| -> u8 {
        let index = exponent - power;
        usize::try_from(index)
            .ok()
            .and_then(|i| significant.get(i).copied())
            .unwrap_or(0)
    };
    let top = exponent.max(0);
    // Digits from 10^top down to 10^-FRACTION_DIGITS, with one spare leading
    // digit for the carry.
    let mut digits: Vec<u8> = std::iter::once(0)
        .chain((-FRACTION_DIGITS..=top).rev().map(digit_at))
        .collect();
    if digit_at(-FRACTION_DIGITS - 1) >= 5 {
        for d in digits.iter_mut().rev() {
            if *d == 9 {
                *d = 0;
            } else {
                *d += 1;
                break;
            }
        }
    }
    let split = digits.len() - FRACTION_DIGITS as usize;
    let (int_digits, frac_digits) = digits.split_at(split);
    let int_digits: Vec<u8> = int_digits.iter().copied().skip_while(|&d| d == 0).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if int_digits.is_empty() {
        out.push('0');
    }
    out.extend(int_digits.iter().map(|&d| char::from(b'0' + d)));
    out.push('.');
    out.extend(frac_digits.iter().map(|&d| char::from(b'0' + d)));
    out
}

/// Formats a value for a `T` (or any non-numeric) column.
pub fn format_text(text: &str) -> String {
    if text.is_empty() {
        return "(empty)".to_string();
    }
    text.chars()
        .map(|c| if c.is_control() { '@' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(value: Option<&str>, kind: ValueKind, letter: char) -> String {
        format_value(value, kind, SltColumnType(letter))
    }

    #[test]
    fn null_and_empty() {
        for letter in ['I', 'R', 'T'] {
            assert_eq!(fmt(None, ValueKind::Int, letter), "NULL");
            assert_eq!(fmt(None, ValueKind::Text, letter), "NULL");
        }
        assert_eq!(fmt(Some(""), ValueKind::Text, 'T'), "(empty)");
        assert_eq!(fmt(Some(""), ValueKind::Text, 'I'), "0");
        assert_eq!(fmt(Some(""), ValueKind::Text, 'R'), "0.000");
    }

    #[test]
    fn integer_column() {
        assert_eq!(fmt(Some("42"), ValueKind::Int, 'I'), "42");
        assert_eq!(fmt(Some("-42"), ValueKind::Int, 'I'), "-42");
        assert_eq!(
            fmt(Some("9223372036854775807"), ValueKind::Int, 'I'),
            "9223372036854775807"
        );
        assert_eq!(fmt(Some("2.7"), ValueKind::Numeric, 'I'), "2");
        assert_eq!(fmt(Some("-2.7"), ValueKind::Numeric, 'I'), "-2");
        assert_eq!(fmt(Some("-0.5"), ValueKind::Numeric, 'I'), "0");
        assert_eq!(fmt(Some("0.000"), ValueKind::Numeric, 'I'), "0");
        assert_eq!(fmt(Some("2.7"), ValueKind::Float, 'I'), "2");
        assert_eq!(fmt(Some("-2.7"), ValueKind::Float, 'I'), "-2");
        assert_eq!(
            fmt(Some("1e+20"), ValueKind::Float, 'I'),
            i64::MAX.to_string()
        );
        assert_eq!(fmt(Some("1.5e+3"), ValueKind::Float, 'I'), "1500");
        assert_eq!(fmt(Some("NaN"), ValueKind::Float, 'I'), "0");
        assert_eq!(
            fmt(Some("-Infinity"), ValueKind::Float, 'I'),
            i64::MIN.to_string()
        );
        assert_eq!(fmt(Some("t"), ValueKind::Bool, 'I'), "1");
        assert_eq!(fmt(Some("f"), ValueKind::Bool, 'I'), "0");
        assert_eq!(fmt(Some("12.9"), ValueKind::Text, 'I'), "12");
        assert_eq!(fmt(Some("abc"), ValueKind::Text, 'I'), "0");
        assert_eq!(fmt(Some("12abc"), ValueKind::Text, 'I'), "12");
        assert_eq!(fmt(Some("nan"), ValueKind::Text, 'I'), "0");
        assert_eq!(fmt(Some("-7"), ValueKind::Unknown, 'I'), "-7");
    }

    #[test]
    fn real_column() {
        assert_eq!(fmt(Some("1"), ValueKind::Int, 'R'), "1.000");
        assert_eq!(fmt(Some("-3"), ValueKind::Int, 'R'), "-3.000");
        assert_eq!(fmt(Some("2.5"), ValueKind::Float, 'R'), "2.500");
        assert_eq!(fmt(Some("123.45678"), ValueKind::Numeric, 'R'), "123.457");
        assert_eq!(fmt(Some("-123.45678"), ValueKind::Numeric, 'R'), "-123.457");
        assert_eq!(fmt(Some("0.0625"), ValueKind::Float, 'R'), "0.063");
        assert_eq!(fmt(Some("0.9996"), ValueKind::Float, 'R'), "1.000");
        assert_eq!(fmt(Some("999.9995"), ValueKind::Numeric, 'R'), "1000.000");
        assert_eq!(fmt(Some("-0.0001"), ValueKind::Float, 'R'), "-0.000");
        assert_eq!(fmt(Some("0"), ValueKind::Float, 'R'), "0.000");
        assert_eq!(
            fmt(Some("1e+20"), ValueKind::Float, 'R'),
            "100000000000000000000.000"
        );
        assert_eq!(
            fmt(Some("1.2345678901234567e+20"), ValueKind::Float, 'R'),
            "123456789012345700000.000"
        );
        assert_eq!(fmt(Some("t"), ValueKind::Bool, 'R'), "1.000");
        assert_eq!(fmt(Some("abc"), ValueKind::Text, 'R'), "0.000");
        assert_eq!(fmt(Some("1.5xyz"), ValueKind::Text, 'R'), "1.500");
        assert_eq!(fmt(Some("Infinity"), ValueKind::Float, 'R'), "Inf");
        assert_eq!(fmt(Some("NaN"), ValueKind::Numeric, 'R'), "NaN");
    }

    #[test]
    fn text_column() {
        assert_eq!(
            fmt(Some("hello world"), ValueKind::Text, 'T'),
            "hello world"
        );
        assert_eq!(fmt(Some("a\nb\tc"), ValueKind::Text, 'T'), "a@b@c");
        assert_eq!(fmt(Some("t"), ValueKind::Bool, 'T'), "t");
        assert_eq!(fmt(Some("2.70"), ValueKind::Numeric, 'T'), "2.70");
        assert_eq!(fmt(Some("42"), ValueKind::Int, 'T'), "42");
        assert_eq!(fmt(Some("x"), ValueKind::Text, '?'), "x");
    }

    #[test]
    fn inferred_letters() {
        let ints = [Some("1"), None, Some("-3")];
        assert_eq!(
            ValueKind::Unknown.infer_letter(ints.into_iter()),
            SltColumnType::INTEGER
        );
        let reals = [Some("1.5"), Some("2")];
        assert_eq!(
            ValueKind::Unknown.infer_letter(reals.into_iter()),
            SltColumnType::REAL
        );
        let texts = [Some("1.5"), Some("x")];
        assert_eq!(
            ValueKind::Unknown.infer_letter(texts.into_iter()),
            SltColumnType::TEXT
        );
        assert_eq!(
            ValueKind::Numeric.infer_letter(std::iter::empty()),
            SltColumnType::REAL
        );
    }
}
