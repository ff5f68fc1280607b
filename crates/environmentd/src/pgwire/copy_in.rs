//! `COPY ... FROM STDIN`: the CopyData a client sends, parsed into table rows.
//!
//! The bytes arrive in arbitrary pieces; [`CopyIn::push`] keeps what is not yet a
//! whole record. A record is a line in text format (a raw newline always ends it: data
//! newlines are escaped as `\n`) and, in CSV, a line whose quotes are balanced. Each
//! record's fields become text datums (NULL where the field is the null string) and
//! the plan's MFP turns them into a row of the table, parsing each value as its
//! column's type and applying DEFAULTs and type modifiers, as an INSERT would. The
//! first bad record stops the parse: its error, with the line number, is reported
//! when the client ends the copy, as PostgreSQL does, and nothing is written.

use expr::RowArena;
use repr::{Datum, Row, RowPacker};
use sql::streaming::{CopyFormat, CopyFromPlan};

use crate::adapter::AdapterError;

/// One COPY FROM STDIN in progress.
pub(crate) struct CopyIn {
    pub plan: CopyFromPlan,
    pending: Vec<u8>,
    pub rows: Vec<Row>,
    line: usize,
    header_skipped: bool,
    /// `\.` was seen: the rest is ignored.
    ended: bool,
    pub error: Option<AdapterError>,
}

impl CopyIn {
    pub fn new(plan: CopyFromPlan) -> Self {
        CopyIn {
            header_skipped: !plan.format.header,
            plan,
            pending: Vec::new(),
            rows: Vec::new(),
            line: 0,
            ended: false,
            error: None,
        }
    }

    /// Takes more bytes; parses every complete record in them.
    pub fn push(&mut self, data: &[u8]) {
        if self.error.is_some() || self.ended {
            return;
        }
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(end) = record_end(&self.pending[start..], &self.plan.format) {
            let record = self.pending[start..start + end].to_vec();
            start += end + 1;
            self.record(&record);
            if self.error.is_some() || self.ended {
                break;
            }
        }
        self.pending.drain(..start);
    }

    /// The client sent CopyDone: a last record without a newline counts too.
    pub fn finish(&mut self) {
        if self.error.is_none() && !self.ended && !self.pending.is_empty() {
            let record = std::mem::take(&mut self.pending);
            self.record(&record);
        }
    }

    fn fail(&mut self, code: &str, message: String) {
        let mut error = AdapterError::new(code, message);
        error.detail = Some(format!("COPY {}, line {}", self.plan.name, self.line));
        self.error = Some(error);
    }

    fn record(&mut self, record: &[u8]) {
        self.line += 1;
        let record = record.strip_suffix(b"\r").unwrap_or(record);
        if !self.header_skipped {
            self.header_skipped = true;
            return;
        }
        if !self.plan.format.csv && record == b"\\." {
            self.ended = true;
            return;
        }
        let Ok(text) = std::str::from_utf8(record) else {
            return self.fail(
                "22021",
                "invalid byte sequence for encoding \"UTF8\"".into(),
            );
        };
        let fields = if self.plan.format.csv {
            csv_fields(text, &self.plan.format)
        } else {
            text_fields(text, &self.plan.format)
        };
        let fields = match fields {
            Ok(fields) => fields,
            Err(message) => return self.fail("22P04", message),
        };
        let columns: Vec<&String> = self.plan.desc.names.iter().collect();
        if fields.len() < self.plan.fields {
            let missing = columns.get(fields.len()).map(|c| c.as_str()).unwrap_or("?");
            return self.fail("22P04", format!("missing data for column \"{missing}\""));
        }
        if fields.len() > self.plan.fields {
            return self.fail("22P04", "extra data after last expected column".into());
        }
        let datums: Vec<Datum> = fields
            .iter()
            .map(|f| f.as_deref().map_or(Datum::Null, Datum::String))
            .collect();
        let input = Row::pack(&datums);
        let arena = RowArena::new();
        let mut packer = RowPacker::new();
        match self.plan.mfp.evaluate(&input, &arena, &mut packer) {
            Ok(Some(row)) => self.rows.push(row),
            Ok(None) => {}
            Err(e) => {
                let error = AdapterError::from(e);
                self.fail(&error.code, error.message);
            }
        }
    }
}

/// Where the first complete record of `bytes` ends (the index of its newline).
fn record_end(bytes: &[u8], format: &CopyFormat) -> Option<usize> {
    if !format.csv {
        return bytes.iter().position(|b| *b == b'\n');
    }
    let (quote, escape) = (format.quote as u8, format.escape as u8);
    let mut in_quotes = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes && b == escape && escape != quote && bytes.get(i + 1) == Some(&quote) {
            i += 2;
            continue;
        }
        if b == quote {
            in_quotes = !in_quotes;
        } else if b == b'\n' && !in_quotes {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The fields of a text-format line: split at the delimiter, `\` escapes decoded; a
/// field that is exactly the null string is NULL.
fn text_fields(line: &str, format: &CopyFormat) -> Result<Vec<Option<String>>, String> {
    let mut fields = Vec::new();
    let mut raw = String::new();
    let mut value = String::new();
    let mut chars = line.chars().peekable();
    let mut push = |raw: &mut String, value: &mut String| {
        let field = std::mem::take(value);
        let is_null = *raw == format.null;
        raw.clear();
        fields.push(if is_null { None } else { Some(field) });
    };
    while let Some(c) = chars.next() {
        if c == format.delimiter {
            push(&mut raw, &mut value);
            continue;
        }
        raw.push(c);
        if c != '\\' {
            value.push(c);
            continue;
        }
        let Some(next) = chars.next() else {
            return Err("end-of-copy marker corrupt".into());
        };
        raw.push(next);
        match next {
            'b' => value.push('\u{8}'),
            'f' => value.push('\u{c}'),
            'n' => value.push('\n'),
            'r' => value.push('\r'),
            't' => value.push('\t'),
            'v' => value.push('\u{b}'),
            'x' if chars.peek().is_some_and(|c| c.is_ascii_hexdigit()) => {
                let mut code = 0u32;
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(16)) {
                        Some(d) => {
                            code = code * 16 + d;
                            raw.push(chars.next().expect("peeked"));
                        }
                        None => break,
                    }
                }
                value.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            '0'..='7' => {
                let mut code = next.to_digit(8).expect("octal");
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            code = code * 8 + d;
                            raw.push(chars.next().expect("peeked"));
                        }
                        None => break,
                    }
                }
                value.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            other => value.push(other),
        }
    }
    push(&mut raw, &mut value);
    Ok(fields)
}

/// The fields of a CSV record: quoted fields may hold delimiters, newlines and doubled
/// quotes; an unquoted field equal to the null string (empty by default) is NULL.
fn csv_fields(record: &str, format: &CopyFormat) -> Result<Vec<Option<String>>, String> {
    let mut fields = Vec::new();
    let mut value = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = record.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == format.escape && chars.peek() == Some(&format.quote) {
                value.push(chars.next().expect("peeked"));
            } else if c == format.quote {
                in_quotes = false;
            } else {
                value.push(c);
            }
        } else if c == format.quote {
            in_quotes = true;
            quoted = true;
        } else if c == format.delimiter {
            let field = std::mem::take(&mut value);
            fields.push(csv_value(field, quoted, format));
            quoted = false;
        } else {
            value.push(c);
        }
    }
    if in_quotes {
        return Err("unterminated CSV quoted field".into());
    }
    fields.push(csv_value(value, quoted, format));
    Ok(fields)
}

fn csv_value(field: String, quoted: bool, format: &CopyFormat) -> Option<String> {
    if !quoted && field == format.null {
        None
    } else {
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> CopyFormat {
        CopyFormat {
            csv: false,
            delimiter: '\t',
            null: "\\N".into(),
            header: false,
            quote: '"',
            escape: '"',
        }
    }

    fn csv() -> CopyFormat {
        CopyFormat {
            csv: true,
            delimiter: ',',
            null: String::new(),
            header: false,
            quote: '"',
            escape: '"',
        }
    }

    #[test]
    fn text_format_escapes_and_nulls() {
        let fields = text_fields("a\\tb\t\\N\t\\\\N\tx\\101\\x42", &text()).unwrap();
        assert_eq!(
            fields,
            vec![
                Some("a\tb".to_string()),
                None,
                Some("\\N".to_string()),
                Some("xAB".to_string())
            ]
        );
        assert_eq!(text_fields("", &text()).unwrap(), vec![Some(String::new())]);
    }

    #[test]
    fn csv_format_quotes_and_nulls() {
        let fields = csv_fields("1,\"a,b\",,\"\",\"say \"\"hi\"\"\"", &csv()).unwrap();
        assert_eq!(
            fields,
            vec![
                Some("1".to_string()),
                Some("a,b".to_string()),
                None,
                Some(String::new()),
                Some("say \"hi\"".to_string())
            ]
        );
        assert!(csv_fields("\"open", &csv()).is_err());
        // A quoted newline does not end the record.
        assert_eq!(record_end(b"\"a\nb\",c\nnext", &csv()), Some(7));
        assert_eq!(record_end(b"a\tb\nc", &text()), Some(3));
    }
}
