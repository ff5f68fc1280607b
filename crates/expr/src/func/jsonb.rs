//! jsonb functions and operators: `->`, `->>`, `#>`, `#>>`, `@>`, `?`, `to_jsonb`,
//! `jsonb_build_object`, `jsonb_build_array`, `jsonb_typeof`, `jsonb_array_length`,
//! and the conversion of any SQL value to JSON that they share with `jsonb_agg`.

use repr::jsonb::{canonical_number, JsonValue, Jsonb, JsonbKind};
use repr::{strconv, Datum, EvalError};

use crate::scalar::RowArena;

/// A jsonb value built during evaluation, packed into the arena.
pub fn jsonb_datum<'a>(value: &JsonValue, arena: &'a RowArena) -> Datum<'a> {
    let bytes = arena.push_bytes(value.to_bytes());
    Datum::Jsonb(Jsonb::from_valid_bytes(bytes))
}

/// A SQL value as JSON, as PostgreSQL's `to_jsonb` converts it: numbers stay numbers
/// (non-finite floats become strings), booleans booleans, dates and timestamps ISO 8601
/// strings (`2024-01-01T10:00:00`), arrays JSON arrays, jsonb itself, anything else
/// the string of its text output. NULL is JSON null.
pub fn datum_to_json(d: Datum) -> JsonValue {
    match d {
        Datum::Null => JsonValue::Null,
        Datum::True => JsonValue::Bool(true),
        Datum::False => JsonValue::Bool(false),
        Datum::Int16(_) | Datum::Int32(_) | Datum::Int64(_) | Datum::Numeric(_) => {
            number(&strconv::format_datum(d))
        }
        Datum::Float32(_) | Datum::Float64(_) => {
            let text = strconv::format_datum(d);
            match canonical_number(&expand_float_exponent(&text)) {
                Some(n) => JsonValue::Number(n),
                None => JsonValue::String(text),
            }
        }
        Datum::String(s) => JsonValue::String(s.to_string()),
        Datum::Timestamp(_) => JsonValue::String(strconv::format_datum(d).replacen(' ', "T", 1)),
        Datum::TimestampTz(_) => {
            let text = strconv::format_datum(d).replacen(' ', "T", 1);
            // `+00` is `+00:00` in ISO 8601; a BC suffix stays after it.
            JsonValue::String(match text.find("+00") {
                Some(i) => format!("{}+00:00{}", &text[..i], &text[i + 3..]),
                None => text,
            })
        }
        Datum::Jsonb(j) => j.to_value(),
        Datum::Array(a) => JsonValue::Array(a.iter().map(datum_to_json).collect()),
        other => JsonValue::String(strconv::format_datum(other)),
    }
}

/// A float's text (`1e+100`, `1.5e-07`) in the JSON number grammar, which has no `+`
/// after the `e`.
fn expand_float_exponent(text: &str) -> String {
    text.replace("e+", "e")
}

fn number(text: &str) -> JsonValue {
    match canonical_number(text) {
        Some(n) => JsonValue::Number(n),
        None => JsonValue::String(text.to_string()),
    }
}

/// The text of a SQL value used as an object key (`jsonb_build_object`,
/// `jsonb_object_agg`): a string as it is, anything else its text output.
pub fn datum_to_key(d: Datum) -> String {
    match d {
        Datum::String(s) => s.to_string(),
        Datum::True => "true".into(),
        Datum::False => "false".into(),
        other => datum_to_json(other)
            .as_string()
            .unwrap_or_else(|| strconv::format_datum(other)),
    }
}

trait AsString {
    fn as_string(&self) -> Option<String>;
}

impl AsString for JsonValue {
    fn as_string(&self) -> Option<String> {
        match self {
            JsonValue::String(s) | JsonValue::Number(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// `jsonb_build_object(k1, v1, ...)`.
pub fn build_object(args: &[Datum]) -> Result<JsonValue, EvalError> {
    if !args.len().is_multiple_of(2) {
        return Err(EvalError::InvalidParameter(
            "argument list must have even number of elements".into(),
        ));
    }
    let mut pairs = Vec::with_capacity(args.len() / 2);
    for (i, pair) in args.chunks(2).enumerate() {
        if pair[0].is_null() {
            return Err(EvalError::InvalidParameter(format!(
                "argument {}: key must not be null",
                2 * i + 1
            )));
        }
        pairs.push((datum_to_key(pair[0]), datum_to_json(pair[1])));
    }
    Ok(JsonValue::object(pairs))
}

/// `jsonb_array_length`.
pub fn array_length(j: Jsonb) -> Result<i32, EvalError> {
    match j.kind() {
        JsonbKind::Array(a) => {
            i32::try_from(a.len()).map_err(|_| EvalError::OutOfRange("integer".into()))
        }
        JsonbKind::Object(_) => Err(EvalError::InvalidParameter(
            "cannot get array length of a non-array".into(),
        )),
        _ => Err(EvalError::InvalidParameter(
            "cannot get array length of a scalar".into(),
        )),
    }
}

/// `jsonb || jsonb`: two objects merge (the right's values win); otherwise both are
/// arrays (a non-array is a one-element array) and are concatenated.
pub fn concat(a: Jsonb, b: Jsonb) -> JsonValue {
    match (a.to_value(), b.to_value()) {
        (JsonValue::Object(mut x), JsonValue::Object(y)) => {
            x.extend(y);
            JsonValue::object(x)
        }
        (x, y) => {
            let elements = |v: JsonValue| match v {
                JsonValue::Array(e) => e,
                other => vec![other],
            };
            let mut out = elements(x);
            out.extend(elements(y));
            JsonValue::Array(out)
        }
    }
}

/// `jsonb - text` (drop a key, or an array's equal strings) and `jsonb - int` (drop an
/// array element, counting from the end when negative).
pub fn delete(a: Jsonb, what: Datum) -> Result<JsonValue, EvalError> {
    let value = a.to_value();
    match (value, what) {
        (JsonValue::Object(pairs), Datum::String(key)) => Ok(JsonValue::Object(
            pairs.into_iter().filter(|(k, _)| k != key).collect(),
        )),
        (JsonValue::Array(elems), Datum::String(key)) => Ok(JsonValue::Array(
            elems
                .into_iter()
                .filter(|e| !matches!(e, JsonValue::String(s) if s == key))
                .collect(),
        )),
        (JsonValue::Array(mut elems), Datum::Int32(i)) => {
            let len = elems.len() as i64;
            let i = i64::from(i);
            let at = if i < 0 { len + i } else { i };
            if (0..len).contains(&at) {
                elems.remove(at as usize);
            }
            Ok(JsonValue::Array(elems))
        }
        (JsonValue::Object(_), _) => Err(EvalError::InvalidParameter(
            "cannot delete from object using integer index".into(),
        )),
        _ => Err(EvalError::InvalidParameter(
            "cannot delete from scalar".into(),
        )),
    }
}

/// `jsonb_strip_nulls`: the value without object fields whose value is null, at any
/// depth (array elements stay).
pub fn strip_nulls(v: JsonValue) -> JsonValue {
    match v {
        JsonValue::Object(pairs) => JsonValue::Object(
            pairs
                .into_iter()
                .filter(|(_, v)| *v != JsonValue::Null)
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        JsonValue::Array(elems) => JsonValue::Array(elems.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// `jsonb_pretty`: PostgreSQL's indented form, four spaces a level, an empty
/// container's brackets on two lines.
pub fn pretty(j: Jsonb) -> String {
    let mut out = String::new();
    write_pretty(&mut out, j, 0);
    out
}

fn write_pretty(out: &mut String, j: Jsonb, level: usize) {
    let indent = |out: &mut String, level: usize| {
        out.push('\n');
        out.push_str(&"    ".repeat(level));
    };
    match j.kind() {
        JsonbKind::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                write_pretty(out, e, level + 1);
            }
            indent(out, level);
            out.push(']');
        }
        JsonbKind::Object(o) => {
            out.push('{');
            for (i, (k, v)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                repr::jsonb::escape_json(out, k);
                out.push_str(": ");
                write_pretty(out, v, level + 1);
            }
            indent(out, level);
            out.push('}');
        }
        _ => out.push_str(&j.to_string()),
    }
}

/// PostgreSQL's `string_to_array(text, delimiter [, null_string])`: the pieces between
/// delimiters (each character for a NULL delimiter, the whole text for an empty one,
/// nothing for an empty text); pieces equal to `null_string` are NULL.
pub fn string_to_array<'a>(
    text: &'a str,
    delimiter: Option<&str>,
    null_string: Option<&str>,
) -> Vec<Option<&'a str>> {
    if text.is_empty() {
        return vec![];
    }
    let pieces: Vec<&'a str> = match delimiter {
        None => text
            .char_indices()
            .map(|(i, c)| &text[i..i + c.len_utf8()])
            .collect(),
        Some("") => vec![text],
        Some(d) => text.split(d).collect(),
    };
    pieces
        .into_iter()
        .map(|p| (Some(p) != null_string).then_some(p))
        .collect()
}

/// The elements of `#>`'s path, a text array (a NULL step finds nothing).
pub fn path_steps<'a>(path: repr::Array<'a>) -> Option<Vec<&'a str>> {
    path.iter()
        .map(|d| match d {
            Datum::String(s) => Some(s),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use repr::adt::Interval;

    #[test]
    fn values_convert_like_to_jsonb() {
        let text = |d: Datum| {
            let bytes = datum_to_json(d).to_bytes();
            Jsonb::from_valid_bytes(&bytes).to_string()
        };
        // From PostgreSQL 15.
        assert_eq!(text(Datum::Int32(-3)), "-3");
        assert_eq!(text(Datum::Float64(1.5)), "1.5");
        assert_eq!(text(Datum::Float64(1e100)), format!("1{}", "0".repeat(100)));
        assert_eq!(text(Datum::Float64(f64::NAN)), "\"NaN\"");
        assert_eq!(text(Datum::Float64(f64::INFINITY)), "\"Infinity\"");
        assert_eq!(text(Datum::String("a\"b")), r#""a\"b""#);
        assert_eq!(text(Datum::Timestamp(0)), "\"1970-01-01T00:00:00\"");
        assert_eq!(
            text(Datum::TimestampTz(1_500_000)),
            "\"1970-01-01T00:00:01.5+00:00\""
        );
        assert_eq!(text(Datum::Date(0)), "\"1970-01-01\"");
        assert_eq!(text(Datum::Interval(Interval::new(0, 1, 0))), "\"1 day\"");
        assert_eq!(text(Datum::Null), "null");
    }

    #[test]
    fn build_object_checks_its_arguments() {
        assert_eq!(
            build_object(&[Datum::String("a")]).unwrap_err().sqlstate(),
            "22023"
        );
        assert_eq!(
            build_object(&[Datum::Null, Datum::Int32(1)])
                .unwrap_err()
                .to_string(),
            "argument 1: key must not be null"
        );
        let v = build_object(&[
            Datum::String("b"),
            Datum::Int32(1),
            Datum::Int32(2),
            Datum::Null,
            Datum::String("b"),
            Datum::True,
        ])
        .unwrap();
        let bytes = v.to_bytes();
        assert_eq!(
            Jsonb::from_valid_bytes(&bytes).to_string(),
            r#"{"2": null, "b": true}"#
        );
    }
}
