//! String functions as PostgreSQL's `varlena.c` and `oracle_compat.c` define them.
//!
//! Positions and lengths count characters (the database encoding is UTF-8), except
//! `octet_length` and the `bytea` forms, which count bytes. Every result is checked
//! against PostgreSQL's limit on a value's size before it is built.

use std::cell::RefCell;
use std::fmt;

use repr::EvalError;
use serde::{Deserialize, Serialize};

/// PostgreSQL's `MaxAllocSize`: no value may be larger.
const MAX_ALLOC_SIZE: i64 = 0x3fff_ffff;
/// A varlena header, which PostgreSQL counts against `MaxAllocSize`.
const VARHDRSZ: i64 = 4;
/// The most bytes one character takes in UTF-8.
const MAX_ENCODING_LENGTH: i64 = 4;

fn too_large() -> EvalError {
    EvalError::ProgramLimitExceeded("requested length too large".into())
}

/// PostgreSQL's SQLSTATE 22011 (substring_error). `EvalError` has no variant for it
/// yet, so this is reported as 22023 with PostgreSQL's message.
fn negative_substring_length() -> EvalError {
    EvalError::InvalidParameter("negative substring length not allowed".into())
}

/// The byte offset of character `n` (0-based) of `s`, or its length if it is shorter.
fn char_offset(s: &str, n: i64) -> usize {
    if n <= 0 {
        return 0;
    }
    s.char_indices()
        .nth(usize::try_from(n).unwrap_or(usize::MAX))
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}

/// The 0-based half-open range `[from, to)` that `substr(x, start, len)` selects, in a
/// value of `total` units, following PostgreSQL's `text_substring`: a start before 1
/// shortens the result, and `start + len` past the end (or overflowing) reaches it.
fn substr_range(start: i64, len: Option<i64>, total: i64) -> Result<(i64, i64), EvalError> {
    let from = (start.max(1) - 1).min(total);
    let to = match len {
        None => total,
        Some(len) if len < 0 => return Err(negative_substring_length()),
        Some(len) => (start.saturating_add(len) - 1).clamp(0, total),
    };
    Ok((from, to.max(from)))
}

/// `substr(text, start [, length])`.
pub fn substr(s: &str, start: i64, len: Option<i64>) -> Result<&str, EvalError> {
    let total = s.chars().count() as i64;
    let (from, to) = substr_range(start, len, total)?;
    let (a, b) = (char_offset(s, from), char_offset(s, to));
    Ok(&s[a..b])
}

/// `overlay(s placing replacement from start [for len])` (PostgreSQL's `text_overlay`):
/// the characters before `start`, the replacement, then the characters from
/// `start + len` on; `len` defaults to the replacement's length.
pub fn overlay(
    s: &str,
    replacement: &str,
    start: i64,
    len: Option<i64>,
) -> Result<String, EvalError> {
    let len = len.unwrap_or(replacement.chars().count() as i64);
    if start <= 0 {
        return Err(negative_substring_length());
    }
    let (Ok(start32), Ok(len32)) = (i32::try_from(start), i32::try_from(len)) else {
        return Err(EvalError::OutOfRange("integer".into()));
    };
    let end = start32
        .checked_add(len32)
        .ok_or_else(|| EvalError::OutOfRange("integer".into()))?;
    let head = substr(s, 1, Some(start - 1))?;
    let tail = substr(s, i64::from(end), None)?;
    let mut out = String::with_capacity(head.len() + replacement.len() + tail.len());
    out.push_str(head);
    out.push_str(replacement);
    out.push_str(tail);
    Ok(out)
}

/// `substr(bytea, start [, length])`.
pub fn substr_bytes(b: &[u8], start: i64, len: Option<i64>) -> Result<&[u8], EvalError> {
    let (from, to) = substr_range(start, len, b.len() as i64)?;
    Ok(&b[from as usize..to as usize])
}

/// `strpos(string, substring)`: the 1-based character position of the first occurrence,
/// 0 if there is none, 1 for the empty substring.
pub fn strpos(s: &str, sub: &str) -> i32 {
    match s.find(sub) {
        Some(i) => s[..i].chars().count() as i32 + 1,
        None => 0,
    }
}

/// Which ends `btrim`, `ltrim` and `rtrim` trim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TrimSide {
    Both,
    Leading,
    Trailing,
}

impl fmt::Display for TrimSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrimSide::Both => "btrim",
            TrimSide::Leading => "ltrim",
            TrimSide::Trailing => "rtrim",
        })
    }
}

/// Removes the characters in `chars` from the given ends of `s`.
pub fn trim<'a>(side: TrimSide, s: &'a str, chars: &str) -> &'a str {
    let set = |c: char| chars.contains(c);
    match side {
        TrimSide::Both => s.trim_matches(set),
        TrimSide::Leading => s.trim_start_matches(set),
        TrimSide::Trailing => s.trim_end_matches(set),
    }
}

/// `left(string, n)`: the first `n` characters, or all but the last `-n`.
pub fn left(s: &str, n: i64) -> &str {
    let keep = if n >= 0 {
        n
    } else {
        (s.chars().count() as i64 + n).max(0)
    };
    &s[..char_offset(s, keep)]
}

/// `right(string, n)`: the last `n` characters, or all but the first `-n`. As in
/// PostgreSQL, where `-n` wraps for the smallest integer, `right(s, -2147483648)` is `s`.
pub fn right(s: &str, n: i64) -> &str {
    let skip = if n >= 0 {
        (s.chars().count() as i64 - n).max(0)
    } else if n == i64::from(i32::MIN) {
        0
    } else {
        n.saturating_neg()
    };
    &s[char_offset(s, skip)..]
}

/// `lpad` and `rpad` (`oracle_compat.c`): pads `s` with repetitions of `fill` to `len`
/// characters, or truncates it to `len` characters.
pub fn pad(s: &str, len: i64, fill: &str, left: bool) -> Result<String, EvalError> {
    let len = len.max(0);
    let s_len = s.chars().count() as i64;
    let keep = s_len.min(len);
    let len = if fill.is_empty() { keep } else { len };
    // PostgreSQL refuses a worst-case result past its allocation limit up front.
    let worst = len
        .checked_mul(MAX_ENCODING_LENGTH)
        .and_then(|n| n.checked_add(VARHDRSZ));
    if worst.is_none_or(|n| n > MAX_ALLOC_SIZE || n > i64::from(i32::MAX)) {
        return Err(too_large());
    }
    let kept = &s[..char_offset(s, keep)];
    let padding: String = fill.chars().cycle().take((len - keep) as usize).collect();
    Ok(if left {
        padding + kept
    } else {
        format!("{kept}{padding}")
    })
}

/// `repeat(string, n)`: an empty string for `n <= 0`.
pub fn repeat(s: &str, n: i64) -> Result<String, EvalError> {
    let n = n.max(0);
    let total = n
        .checked_mul(s.len() as i64)
        .and_then(|t| t.checked_add(VARHDRSZ));
    if total.is_none_or(|t| t > MAX_ALLOC_SIZE || t > i64::from(i32::MAX)) {
        return Err(too_large());
    }
    Ok(s.repeat(n as usize))
}

/// `initcap(string)`: each run of letters and digits starts with an uppercase letter and
/// continues in lowercase, character by character as `lower` and `upper` map them.
pub fn initcap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for c in s.chars() {
        let mapped = if in_word {
            super::simple_lowercase(c.encode_utf8(&mut [0; 4]))
        } else {
            super::simple_uppercase(c.encode_utf8(&mut [0; 4]))
        };
        out.push_str(&mapped);
        in_word = c.is_alphanumeric();
    }
    out
}

/// `md5(x)`: the MD5 digest as 32 lowercase hexadecimal digits.
pub fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", md5::compute(bytes))
}

/// `ascii(string)`: the code point of the first character, 0 for the empty string.
pub fn ascii(s: &str) -> i32 {
    s.chars().next().map(|c| c as i32).unwrap_or(0)
}

/// `chr(code)`: the character with the given code point.
pub fn chr(code: i64) -> Result<char, EvalError> {
    if code < 0 {
        return Err(EvalError::InvalidParameter(
            "character number must be positive".into(),
        ));
    }
    if code == 0 {
        return Err(EvalError::ProgramLimitExceeded(
            "null character not permitted".into(),
        ));
    }
    if code > 0x10_ffff {
        return Err(EvalError::ProgramLimitExceeded(format!(
            "requested character too large for encoding: {code}"
        )));
    }
    u32::try_from(code)
        .ok()
        .and_then(char::from_u32)
        .ok_or_else(|| {
            EvalError::ProgramLimitExceeded(format!(
                "requested character not valid for encoding: {code}"
            ))
        })
}

/// `replace(string, from, to)`: every non-overlapping occurrence, left to right.
pub fn replace(s: &str, from: &str, to: &str) -> Result<String, EvalError> {
    if from.is_empty() {
        return Ok(s.to_string());
    }
    let count = s.matches(from).count();
    let len = s.len() - count * from.len() + count * to.len();
    if len > super::MAX_VALUE_LEN {
        return Err(too_large());
    }
    Ok(s.replace(from, to))
}

/// `split_part(string, delimiter, n)`: the `n`th field (from the end if `n` is negative).
pub fn split_part<'a>(s: &'a str, delimiter: &str, n: i64) -> Result<&'a str, EvalError> {
    if n == 0 {
        return Err(EvalError::InvalidParameter(
            "field position must not be zero".into(),
        ));
    }
    if s.is_empty() {
        return Ok("");
    }
    if delimiter.is_empty() {
        return Ok(if n == 1 || n == -1 { s } else { "" });
    }
    let fields: Vec<&str> = s.split(delimiter).collect();
    let index = if n > 0 {
        n - 1
    } else {
        fields.len() as i64 + n
    };
    Ok(usize::try_from(index)
        .ok()
        .and_then(|i| fields.get(i).copied())
        .unwrap_or(""))
}

/// `translate(string, from, to)`: each character of `from` becomes the character at the
/// same position of `to`, or is deleted if `to` is shorter.
pub fn translate(s: &str, from: &str, to: &str) -> String {
    let from: Vec<char> = from.chars().collect();
    let to: Vec<char> = to.chars().collect();
    s.chars()
        .filter_map(|c| match from.iter().position(|f| *f == c) {
            Some(i) => to.get(i).copied(),
            None => Some(c),
        })
        .collect()
}

/// `to_hex(n)`: hexadecimal digits of the two's complement of `n` in `bits` bits.
pub fn to_hex(n: i64, bits: u32) -> String {
    if bits == 32 {
        format!("{:x}", n as i32 as u32)
    } else {
        format!("{:x}", n as u64)
    }
}

/// PostgreSQL's SQLSTATE 2201B (invalid_regular_expression), reported as 22023 with
/// PostgreSQL's message prefix until `EvalError` has a variant for it.
fn invalid_regex(detail: &str) -> EvalError {
    EvalError::InvalidParameter(format!("invalid regular expression: {detail}"))
}

/// The options of a regular expression, from PostgreSQL's flag letters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct RegexFlags {
    global: bool,
    case_insensitive: bool,
    /// `REG_NLSTOP`: `.` and bracket expressions do not match a newline.
    newline_stop: bool,
    /// `REG_NLANCH`: `^` and `$` match at newlines too.
    newline_anchor: bool,
    expanded: bool,
    quote: bool,
}

/// PostgreSQL's `parse_re_flags`.
fn parse_flags(flags: &str) -> Result<RegexFlags, EvalError> {
    let mut f = RegexFlags::default();
    for c in flags.chars() {
        match c {
            'g' => f.global = true,
            'b' => {
                return Err(EvalError::FeatureNotSupported(
                    "basic regular expressions (flag \"b\")".into(),
                ))
            }
            'c' => f.case_insensitive = false,
            'e' => {}
            'i' => f.case_insensitive = true,
            'm' | 'n' => {
                f.newline_stop = true;
                f.newline_anchor = true;
            }
            'p' => {
                f.newline_stop = true;
                f.newline_anchor = false;
            }
            'q' => f.quote = true,
            's' => {
                f.newline_stop = false;
                f.newline_anchor = false;
            }
            't' => f.expanded = false,
            'w' => {
                f.newline_stop = false;
                f.newline_anchor = true;
            }
            'x' => f.expanded = true,
            other => {
                return Err(EvalError::InvalidParameter(format!(
                    "invalid regular expression option: \"{other}\""
                )))
            }
        }
    }
    Ok(f)
}

/// How many compiled patterns each thread keeps: a pattern is usually a constant, so
/// a query compiles it once per worker rather than once per row.
const REGEX_CACHE_SIZE: usize = 16;

thread_local! {
    static REGEX_CACHE: RefCell<Vec<(String, RegexFlags, regex::Regex)>> =
        const { RefCell::new(Vec::new()) };
}

/// Compiles `pattern` with PostgreSQL's flags mapped to the `regex` crate's, through a
/// small per-thread cache.
fn compile(pattern: &str, flags: RegexFlags) -> Result<regex::Regex, EvalError> {
    let cached = REGEX_CACHE.with(|c| {
        c.borrow()
            .iter()
            .find(|(p, f, _)| p == pattern && *f == flags)
            .map(|(_, _, r)| r.clone())
    });
    if let Some(r) = cached {
        return Ok(r);
    }
    let source = if flags.quote {
        regex::escape(pattern)
    } else {
        translate_escapes(pattern)
    };
    let re = regex::RegexBuilder::new(&source)
        .case_insensitive(flags.case_insensitive)
        .dot_matches_new_line(!flags.newline_stop)
        .multi_line(flags.newline_anchor)
        .ignore_whitespace(flags.expanded && !flags.quote)
        .size_limit(10 << 20)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            let last = text.lines().rev().find(|l| !l.trim().is_empty());
            invalid_regex(last.unwrap_or("syntax error").trim_start_matches("error: "))
        })?;
    REGEX_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= REGEX_CACHE_SIZE {
            c.remove(0);
        }
        c.push((pattern.to_string(), flags, re.clone()));
    });
    Ok(re)
}

/// Rewrites the escapes of PostgreSQL's regular expressions that the `regex` crate
/// spells differently: `\m` and `\M` (start and end of a word), `\y` and `\Y` (word
/// boundary or not) and `\Z` (end of the string). Bracket expressions are copied as they
/// are.
fn translate_escapes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    // Inside `[...]`, and how many characters of it have been read.
    let mut bracket: Option<usize> = None;
    while let Some(c) = chars.next() {
        if c == '\\' {
            let Some(next) = chars.next() else {
                out.push(c);
                break;
            };
            match (bracket, next) {
                (None, 'm') => out.push_str("\\b{start}"),
                (None, 'M') => out.push_str("\\b{end}"),
                (None, 'y') => out.push_str("\\b"),
                (None, 'Y') => out.push_str("\\B"),
                (None, 'Z') => out.push_str("\\z"),
                _ => {
                    out.push(c);
                    out.push(next);
                }
            }
            if let Some(n) = bracket.as_mut() {
                *n += 1;
            }
            continue;
        }
        out.push(c);
        match (bracket, c) {
            (None, '[') => bracket = Some(0),
            // `]` first in a bracket expression (after an optional `^`) is literal.
            (Some(n), ']') if n > 0 && !(n == 1 && out.ends_with("[^]")) => bracket = None,
            (Some(n), _) => bracket = Some(n + 1),
            _ => {}
        }
    }
    out
}

/// Appends `replacement` for one match: `\1` to `\9` are the groups, `\&` the whole
/// match, `\\` a backslash; any other backslash is kept (PostgreSQL's
/// `appendStringInfoRegexpSubstr`).
fn expand_replacement(out: &mut String, replacement: &str, caps: &regex::Captures) {
    let mut chars = replacement.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let rest = chars.as_str();
        match rest.chars().next() {
            Some(d @ '1'..='9') => {
                if let Some(m) = caps.get(d as usize - '0' as usize) {
                    out.push_str(m.as_str());
                }
                chars.next();
            }
            Some('&') => {
                if let Some(m) = caps.get(0) {
                    out.push_str(m.as_str());
                }
                chars.next();
            }
            Some('\\') => {
                out.push('\\');
                chars.next();
            }
            _ => out.push('\\'),
        }
    }
}

/// `regexp_replace(source, pattern, replacement [, start [, n]] [, flags])`: replaces
/// the first match (all with flag `g` or `n = 0`, else the `n`th) at or after
/// character `start`.
pub fn regexp_replace(
    source: &str,
    pattern: &str,
    replacement: &str,
    start: Option<i64>,
    n: Option<i64>,
    flags: &str,
) -> Result<String, EvalError> {
    let flags = parse_flags(flags)?;
    if let Some(start) = start {
        if start <= 0 {
            return Err(EvalError::InvalidParameter(format!(
                "invalid value for parameter \"start\": {start}"
            )));
        }
    }
    if let Some(n) = n {
        if n < 0 {
            return Err(EvalError::InvalidParameter(format!(
                "invalid value for parameter \"n\": {n}"
            )));
        }
    }
    let re = compile(pattern, flags)?;
    // Which match to replace: 0 means all of them. Given `n`, flag `g` is ignored.
    let which = match n {
        Some(n) => n,
        None if flags.global => 0,
        None => 1,
    };
    let begin = char_offset(source, start.unwrap_or(1) - 1);
    let mut out = String::with_capacity(source.len());
    out.push_str(&source[..begin]);
    let mut last = begin;
    let mut count = 0i64;
    for caps in re.captures_iter(&source[begin..]) {
        let Some(m) = caps.get(0) else { continue };
        count += 1;
        if which != 0 && count != which {
            continue;
        }
        out.push_str(&source[last..begin + m.start()]);
        expand_replacement(&mut out, replacement, &caps);
        last = begin + m.end();
        if out.len() > super::MAX_VALUE_LEN {
            return Err(too_large());
        }
        if which != 0 {
            break;
        }
    }
    out.push_str(&source[last..]);
    if out.len() > super::MAX_VALUE_LEN {
        return Err(too_large());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_matches_postgres() {
        // From PostgreSQL 15.
        assert_eq!(overlay("Txxxxas", "hom", 2, Some(4)).unwrap(), "Thomas");
        assert_eq!(overlay("abcdef", "X", 3, None).unwrap(), "abXdef");
        assert_eq!(overlay("abc", "XYZ", 5, None).unwrap(), "abcXYZ");
        assert_eq!(overlay("abcdef", "X", 3, Some(-1)).unwrap(), "abXbcdef");
        assert_eq!(overlay("héllo", "E", 2, Some(1)).unwrap(), "hEllo");
        let err = overlay("abc", "X", 0, None).unwrap_err();
        assert_eq!(err.to_string(), "negative substring length not allowed");
        let err = overlay("abc", "X", i64::from(i32::MAX), Some(1)).unwrap_err();
        assert_eq!(err, EvalError::OutOfRange("integer".into()));
    }

    #[test]
    fn substr_follows_text_substring() {
        // From PostgreSQL 15.
        assert_eq!(substr("hello", 2, Some(3)), Ok("ell"));
        assert_eq!(substr("hello", 0, Some(3)), Ok("he"));
        assert_eq!(substr("hello", -5, Some(3)), Ok(""));
        assert_eq!(substr("hello", 3, None), Ok("llo"));
        assert_eq!(substr("hello", 10, None), Ok(""));
        assert_eq!(substr("héllo", 2, Some(2)), Ok("él"));
        assert_eq!(substr("hello", 2, Some(i64::from(i32::MAX))), Ok("ello"));
        assert_eq!(
            substr("hello", 1, Some(-1)).unwrap_err().to_string(),
            "negative substring length not allowed"
        );
        assert_eq!(substr_bytes(b"hello", 2, Some(2)), Ok(&b"el"[..]));
    }

    #[test]
    fn string_functions_match_postgres() {
        // From PostgreSQL 15.
        assert_eq!(strpos("high", "ig"), 2);
        assert_eq!(strpos("high", ""), 1);
        assert_eq!(strpos("héllo", "l"), 3);
        assert_eq!(strpos("high", "x"), 0);
        assert_eq!(trim(TrimSide::Both, "xxabcxx", "x"), "abc");
        assert_eq!(trim(TrimSide::Leading, "  abc  ", " "), "abc  ");
        assert_eq!(trim(TrimSide::Trailing, "abcxyx", "xy"), "abc");
        assert_eq!(left("abcde", 2), "ab");
        assert_eq!(left("abcde", -2), "abc");
        assert_eq!(left("abcde", -9), "");
        assert_eq!(right("abcde", 2), "de");
        assert_eq!(right("abcde", -2), "cde");
        assert_eq!(right("abcde", i64::from(i32::MIN)), "abcde");
        assert_eq!(left("abcde", i64::from(i32::MIN)), "");
        assert_eq!(pad("hi", 5, "xy", true).unwrap(), "xyxhi");
        assert_eq!(pad("hi", 5, "xy", false).unwrap(), "hixyx");
        assert_eq!(pad("hello", 2, " ", true).unwrap(), "he");
        assert_eq!(pad("hi", 5, "", true).unwrap(), "hi");
        assert_eq!(pad("hi", -1, " ", true).unwrap(), "");
        assert_eq!(pad("x", i64::from(i32::MAX), " ", true), Err(too_large()));
        assert_eq!(repeat("ab", 3).unwrap(), "ababab");
        assert_eq!(repeat("ab", -1).unwrap(), "");
        assert_eq!(repeat("ab", i64::from(i32::MAX)), Err(too_large()));
        assert_eq!(initcap("hi THOMAS o'neil 2nd"), "Hi Thomas O'Neil 2nd");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(ascii("x"), 120);
        assert_eq!(ascii(""), 0);
        assert_eq!(chr(65), Ok('A'));
        assert_eq!(chr(0).unwrap_err().sqlstate(), "54000");
        assert_eq!(
            chr(1_114_112).unwrap_err().to_string(),
            "requested character too large for encoding: 1114112"
        );
        assert_eq!(
            chr(55_296).unwrap_err().to_string(),
            "requested character not valid for encoding: 55296"
        );
        assert_eq!(chr(-1).unwrap_err().sqlstate(), "22023");
        assert_eq!(replace("abcabc", "b", "XX").unwrap(), "aXXcaXXc");
        assert_eq!(replace("abc", "", "X").unwrap(), "abc");
        assert_eq!(split_part("a,b,c", ",", 2), Ok("b"));
        assert_eq!(split_part("a,b,c", ",", -1), Ok("c"));
        assert_eq!(split_part("a,b,c", ",", 4), Ok(""));
        assert_eq!(split_part("a,b,c", ",", -4), Ok(""));
        assert_eq!(split_part("abc", "", 1), Ok("abc"));
        assert_eq!(split_part("", ",", 1), Ok(""));
        assert_eq!(split_part("abc", ",", -1), Ok("abc"));
        assert_eq!(
            split_part("a", ",", 0).unwrap_err().to_string(),
            "field position must not be zero"
        );
        assert_eq!(translate("12345", "143", "ax"), "a2x5");
        assert_eq!(to_hex(255, 32), "ff");
        assert_eq!(to_hex(-1, 32), "ffffffff");
        assert_eq!(to_hex(-1, 64), "ffffffffffffffff");
    }

    #[test]
    fn regexp_replace_follows_postgres_flags_and_escapes() {
        let r = |s, p, rep, flags| regexp_replace(s, p, rep, None, None, flags);
        // From PostgreSQL 15.
        assert_eq!(r("foobarbaz", "b..", "X", "").unwrap(), "fooXbaz");
        assert_eq!(r("foobarbaz", "b..", "X", "g").unwrap(), "fooXX");
        assert_eq!(
            r("foobarbaz", "b(..)", "X\\1Y", "g").unwrap(),
            "fooXarYXazY"
        );
        assert_eq!(r("abc", "B", "[\\&]", "i").unwrap(), "a[b]c");
        assert_eq!(r("abc", "b", "\\\\", "").unwrap(), "a\\c");
        assert_eq!(r("abc", "b", "\\x", "").unwrap(), "a\\xc");
        assert_eq!(r("a.c", ".", "-", "gq").unwrap(), "a-c");
        assert_eq!(r("a\nb", "a.b", "X", "").unwrap(), "X");
        assert_eq!(r("a\nb", "a.b", "X", "n").unwrap(), "a\nb");
        assert_eq!(r("a\nb", "^b", "X", "n").unwrap(), "a\nX");
        let err = r("abc", "a", "x", "z").unwrap_err();
        assert_eq!(
            (err.sqlstate(), err.to_string().as_str()),
            ("22023", "invalid regular expression option: \"z\"")
        );
        assert!(r("abc", "(", "x", "")
            .unwrap_err()
            .to_string()
            .starts_with("invalid regular expression: "));
        // PostgreSQL's word and end-of-string escapes.
        assert_eq!(r("foo bar", "\\mbar", "X", "").unwrap(), "foo X");
        assert_eq!(r("foo bar", "o\\M", "X", "").unwrap(), "foX bar");
        assert_eq!(r("foo bar", "\\ybar", "X", "").unwrap(), "foo X");
        assert_eq!(r("abc", "\\Z", "X", "").unwrap(), "abcX");
        assert_eq!(r("a]m", "[]m]", "X", "g").unwrap(), "aXX");
        assert_eq!(translate_escapes("[^]m]\\m"), "[^]m]\\b{start}");
        let nth = |start, n| regexp_replace("aaaa", "a", "X", Some(start), Some(n), "");
        assert_eq!(nth(2, 2).unwrap(), "aaXa");
        assert_eq!(nth(1, 0).unwrap(), "XXXX");
        assert_eq!(nth(3, 1).unwrap(), "aaXa");
        assert!(nth(0, 1).is_err());
        assert_eq!(
            regexp_replace("abcb", "b", "X", Some(1), Some(2), "g").unwrap(),
            "abcX"
        );
    }
}
