//! `jsonb`: PostgreSQL's binary JSON, as an owned tree ([`JsonValue`]) for parsing and
//! building, and as packed bytes read in place ([`Jsonb`]) inside a [`crate::Row`].
//!
//! The packed form is canonical, as PostgreSQL's jsonb is: object keys are sorted by
//! length, then bytes (PostgreSQL's storage order, which its output follows), and a
//! duplicate key keeps its last value. So two jsonb values are equal exactly when their
//! bytes are, except for numbers that differ only in scale (`1.0` and `1`), which
//! PostgreSQL holds equal and prints differently; `=` and ordering compare them as
//! numbers, grouping and joins as bytes (the same difference as for `numeric`, see
//! [`crate::row`]).
//!
//! Numbers are kept as the text PostgreSQL's `numeric_out` prints for them (`1e2` is
//! `100`, `1.50` stays `1.50`), so jsonb numbers have PostgreSQL's unbounded precision
//! even though Freshet's `numeric` holds 28 digits.
//!
//! Encoding, one value: a kind byte, then
//! - null, false, true: nothing;
//! - number, string: a LEB128 length and the bytes (UTF-8);
//! - array: a LEB128 element count, a LEB128 byte length of the elements, the elements;
//! - object: a LEB128 pair count, a LEB128 byte length of the pairs, then each pair as
//!   a LEB128 key length, the key and the value.

use std::cmp::Ordering;

use crate::error::EvalError;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const NUMBER: u8 = 3;
const STRING: u8 = 4;
const ARRAY: u8 = 5;
const OBJECT: u8 = 6;

/// How deep arrays and objects may nest, in text input and in packed bytes; deeper
/// input is `stack depth limit exceeded` (54001). PostgreSQL's limit comes from its
/// stack size (about 5000 levels with the default `max_stack_depth`); Freshet's is
/// lower so that every recursive walk of a value fits a worker thread's stack.
pub const MAX_DEPTH: usize = 1000;

/// The most digits a jsonb number may have before and after its point (PostgreSQL's
/// numeric: 131072 and 16383).
const MAX_NUMBER_DIGITS: usize = 131_072 + 16_383;

/// An owned JSON value. Objects keep their keys in jsonb order once built with
/// [`JsonValue::object`] or parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonValue {
    Null,
    Bool(bool),
    /// The canonical text of a number (see [`canonical_number`]).
    Number(String),
    String(String),
    Array(Vec<JsonValue>),
    Object(Vec<(String, JsonValue)>),
}

impl JsonValue {
    /// An object of `pairs` in jsonb order: sorted by key length, then bytes, the last
    /// of duplicate keys kept.
    pub fn object(mut pairs: Vec<(String, JsonValue)>) -> JsonValue {
        // Stable: among duplicates, the last one given ends up last.
        pairs.sort_by(|(a, _), (b, _)| key_order(a, b));
        let mut out: Vec<(String, JsonValue)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            match out.last_mut() {
                Some((last, slot)) if *last == k => *slot = v,
                _ => out.push((k, v)),
            }
        }
        JsonValue::Object(out)
    }

    /// The packed bytes of the value.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            JsonValue::Null => out.push(NULL),
            JsonValue::Bool(false) => out.push(FALSE),
            JsonValue::Bool(true) => out.push(TRUE),
            JsonValue::Number(n) => {
                out.push(NUMBER);
                put_bytes(out, n.as_bytes());
            }
            JsonValue::String(s) => {
                out.push(STRING);
                put_bytes(out, s.as_bytes());
            }
            JsonValue::Array(elems) => {
                let mut body = Vec::new();
                for e in elems {
                    e.encode(&mut body);
                }
                out.push(ARRAY);
                put_varint(out, elems.len() as u64);
                put_bytes(out, &body);
            }
            JsonValue::Object(pairs) => {
                let mut body = Vec::new();
                for (k, v) in pairs {
                    put_bytes(&mut body, k.as_bytes());
                    v.encode(&mut body);
                }
                out.push(OBJECT);
                put_varint(out, pairs.len() as u64);
                put_bytes(out, &body);
            }
        }
    }
}

/// jsonb's key order: shorter keys first, then by bytes.
pub fn key_order(a: &str, b: &str) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A LEB128 number at `at`, and the offset after it.
fn get_varint(data: &[u8], mut at: usize) -> Option<(usize, usize)> {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = *data.get(at)?;
        at += 1;
        if shift > 56 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((usize::try_from(v).ok()?, at));
        }
        shift += 7;
    }
}

/// A length-prefixed byte run at `at`, and the offset after it.
fn get_bytes(data: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let (len, start) = get_varint(data, at)?;
    let end = start.checked_add(len)?;
    Some((data.get(start..end)?, end))
}

/// The offset just past the value at `at`, checking that everything in it decodes
/// (kinds, lengths, UTF-8, number text, key order, depth), or `None`.
fn check_value(data: &[u8], at: usize, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    match *data.get(at)? {
        NULL | FALSE | TRUE => Some(at + 1),
        NUMBER => {
            let (bytes, end) = get_bytes(data, at + 1)?;
            let text = std::str::from_utf8(bytes).ok()?;
            (canonical_number(text).as_deref() == Some(text)).then_some(end)
        }
        STRING => {
            let (bytes, end) = get_bytes(data, at + 1)?;
            std::str::from_utf8(bytes).ok()?;
            Some(end)
        }
        ARRAY => {
            let (count, p) = get_varint(data, at + 1)?;
            let (body, end) = get_bytes(data, p)?;
            let mut offset = 0;
            for _ in 0..count {
                offset = check_value(body, offset, depth + 1)?;
            }
            (offset == body.len()).then_some(end)
        }
        OBJECT => {
            let (count, p) = get_varint(data, at + 1)?;
            let (body, end) = get_bytes(data, p)?;
            let mut offset = 0;
            let mut previous: Option<&str> = None;
            for _ in 0..count {
                let (key, after_key) = get_bytes(body, offset)?;
                let key = std::str::from_utf8(key).ok()?;
                if previous.is_some_and(|p| key_order(p, key) != Ordering::Less) {
                    return None;
                }
                previous = Some(key);
                offset = check_value(body, after_key, depth + 1)?;
            }
            (offset == body.len()).then_some(end)
        }
        _ => None,
    }
}

/// Whether `bytes` are exactly one packed jsonb value.
pub fn is_valid(bytes: &[u8]) -> bool {
    check_value(bytes, 0, 0) == Some(bytes.len())
}

/// A packed jsonb value, read in place. Its bytes are valid (built by
/// [`JsonValue::to_bytes`] or checked by [`is_valid`]).
#[derive(Clone, Copy, Debug)]
pub struct Jsonb<'a> {
    bytes: &'a [u8],
}

/// What a [`Jsonb`] holds.
#[derive(Clone, Copy, Debug)]
pub enum JsonbKind<'a> {
    Null,
    Bool(bool),
    Number(&'a str),
    String(&'a str),
    Array(JsonbArray<'a>),
    Object(JsonbObject<'a>),
}

/// The elements of a jsonb array.
#[derive(Clone, Copy, Debug)]
pub struct JsonbArray<'a> {
    len: usize,
    body: &'a [u8],
}

/// The pairs of a jsonb object, in key order.
#[derive(Clone, Copy, Debug)]
pub struct JsonbObject<'a> {
    len: usize,
    body: &'a [u8],
}

const VALID: &str = "jsonb bytes are valid";

impl<'a> Jsonb<'a> {
    /// The value packed in `bytes`, which must be valid: from [`JsonValue::to_bytes`]
    /// or a row that was checked.
    pub fn from_valid_bytes(bytes: &'a [u8]) -> Jsonb<'a> {
        Jsonb { bytes }
    }

    /// The value packed in `bytes`, if they are one.
    pub fn from_bytes(bytes: &'a [u8]) -> Option<Jsonb<'a>> {
        is_valid(bytes).then_some(Jsonb { bytes })
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn kind(&self) -> JsonbKind<'a> {
        let data = self.bytes;
        match data[0] {
            NULL => JsonbKind::Null,
            FALSE => JsonbKind::Bool(false),
            TRUE => JsonbKind::Bool(true),
            NUMBER | STRING => {
                let (bytes, _) = get_bytes(data, 1).expect(VALID);
                let s = std::str::from_utf8(bytes).expect(VALID);
                if data[0] == NUMBER {
                    JsonbKind::Number(s)
                } else {
                    JsonbKind::String(s)
                }
            }
            ARRAY | OBJECT => {
                let (len, p) = get_varint(data, 1).expect(VALID);
                let (body, _) = get_bytes(data, p).expect(VALID);
                if data[0] == ARRAY {
                    JsonbKind::Array(JsonbArray { len, body })
                } else {
                    JsonbKind::Object(JsonbObject { len, body })
                }
            }
            other => panic!("jsonb holds unknown kind {other}"),
        }
    }

    /// `jsonb_typeof`: object, array, string, number, boolean or null.
    pub fn type_name(&self) -> &'static str {
        match self.kind() {
            JsonbKind::Null => "null",
            JsonbKind::Bool(_) => "boolean",
            JsonbKind::Number(_) => "number",
            JsonbKind::String(_) => "string",
            JsonbKind::Array(_) => "array",
            JsonbKind::Object(_) => "object",
        }
    }

    /// The value as an owned tree.
    pub fn to_value(&self) -> JsonValue {
        match self.kind() {
            JsonbKind::Null => JsonValue::Null,
            JsonbKind::Bool(b) => JsonValue::Bool(b),
            JsonbKind::Number(n) => JsonValue::Number(n.to_string()),
            JsonbKind::String(s) => JsonValue::String(s.to_string()),
            JsonbKind::Array(a) => JsonValue::Array(a.iter().map(|e| e.to_value()).collect()),
            JsonbKind::Object(o) => JsonValue::Object(
                o.iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// The element at `index` of an array (negative counts from the end), or the
    /// value of `key` of an object: `->`.
    pub fn index(&self, index: i64) -> Option<Jsonb<'a>> {
        let JsonbKind::Array(a) = self.kind() else {
            return None;
        };
        let i = if index < 0 {
            (a.len as i64).checked_add(index)?
        } else {
            index
        };
        a.iter().nth(usize::try_from(i).ok()?)
    }

    /// The value of `key` of an object: `->`.
    pub fn field(&self, key: &str) -> Option<Jsonb<'a>> {
        let JsonbKind::Object(o) = self.kind() else {
            return None;
        };
        o.get(key)
    }

    /// The value at a path of keys and indexes (`#>`): an array step that is not an
    /// integer finds nothing.
    pub fn path<'p>(&self, path: impl IntoIterator<Item = &'p str>) -> Option<Jsonb<'a>> {
        let mut current = *self;
        for step in path {
            current = match current.kind() {
                JsonbKind::Object(o) => o.get(step)?,
                JsonbKind::Array(_) => current.index(step.trim().parse::<i64>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }

    /// `->>`'s text of a value: a string's contents, NULL for JSON null, else the
    /// value's jsonb text.
    pub fn to_text(&self) -> Option<String> {
        match self.kind() {
            JsonbKind::Null => None,
            JsonbKind::String(s) => Some(s.to_string()),
            _ => Some(self.to_string()),
        }
    }

    /// `@>`: whether `self` contains `other`, by PostgreSQL's rules: an object contains
    /// an object whose pairs it contains; an array contains an array whose elements
    /// each are contained in one of its elements (or a scalar it has, at the top
    /// level); scalars contain equal scalars.
    pub fn contains(&self, other: &Jsonb) -> bool {
        contains(*self, *other, true)
    }

    /// `?`: whether the string is an object key, an array's string element or the
    /// scalar string itself.
    pub fn exists(&self, key: &str) -> bool {
        match self.kind() {
            JsonbKind::Object(o) => o.get(key).is_some(),
            JsonbKind::Array(a) => a
                .iter()
                .any(|e| matches!(e.kind(), JsonbKind::String(s) if s == key)),
            JsonbKind::String(s) => s == key,
            _ => false,
        }
    }
}

fn contains(a: Jsonb, b: Jsonb, top: bool) -> bool {
    match (a.kind(), b.kind()) {
        (JsonbKind::Object(x), JsonbKind::Object(y)) => y.iter().all(|(k, bv)| match x.get(k) {
            Some(av) => match (av.kind(), bv.kind()) {
                (JsonbKind::Object(_), JsonbKind::Object(_))
                | (JsonbKind::Array(_), JsonbKind::Array(_)) => contains(av, bv, false),
                _ => cmp(&av, &bv) == Ordering::Equal && same_kind(av, bv),
            },
            None => false,
        }),
        (JsonbKind::Array(x), JsonbKind::Array(y)) => y.iter().all(|bv| match bv.kind() {
            JsonbKind::Object(_) | JsonbKind::Array(_) => x
                .iter()
                .any(|av| same_kind(av, bv) && contains(av, bv, false)),
            _ => x
                .iter()
                .any(|av| same_kind(av, bv) && cmp(&av, &bv) == Ordering::Equal),
        }),
        // A top-level array contains a scalar it has as an element.
        (JsonbKind::Array(x), JsonbKind::Null)
        | (JsonbKind::Array(x), JsonbKind::Bool(_))
        | (JsonbKind::Array(x), JsonbKind::Number(_))
        | (JsonbKind::Array(x), JsonbKind::String(_))
            if top =>
        {
            x.iter()
                .any(|av| same_kind(av, b) && cmp(&av, &b) == Ordering::Equal)
        }
        (JsonbKind::Object(_) | JsonbKind::Array(_), _)
        | (_, JsonbKind::Object(_) | JsonbKind::Array(_)) => false,
        _ => same_kind(a, b) && cmp(&a, &b) == Ordering::Equal,
    }
}

fn same_kind(a: Jsonb, b: Jsonb) -> bool {
    type_rank(&a.kind()) == type_rank(&b.kind())
}

impl<'a> JsonbArray<'a> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Jsonb<'a>> + 'a {
        let body = self.body;
        let mut offset = 0;
        (0..self.len).map(move |_| {
            let end = check_value(body, offset, 0).expect(VALID);
            let value = Jsonb {
                bytes: &body[offset..end],
            };
            offset = end;
            value
        })
    }
}

impl<'a> JsonbObject<'a> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Jsonb<'a>)> + 'a {
        let body = self.body;
        let mut offset = 0;
        (0..self.len).map(move |_| {
            let (key, after_key) = get_bytes(body, offset).expect(VALID);
            let end = skip_value(body, after_key);
            offset = end;
            (
                std::str::from_utf8(key).expect(VALID),
                Jsonb {
                    bytes: &body[after_key..end],
                },
            )
        })
    }

    pub fn get(&self, key: &str) -> Option<Jsonb<'a>> {
        for (k, v) in self.iter() {
            match key_order(k, key) {
                Ordering::Equal => return Some(v),
                Ordering::Greater => return None,
                Ordering::Less => {}
            }
        }
        None
    }
}

/// The offset past the valid value at `at`, without checking its contents again.
fn skip_value(data: &[u8], at: usize) -> usize {
    match data[at] {
        NULL | FALSE | TRUE => at + 1,
        NUMBER | STRING => get_bytes(data, at + 1).expect(VALID).1,
        _ => {
            let (_, p) = get_varint(data, at + 1).expect(VALID);
            get_bytes(data, p).expect(VALID).1
        }
    }
}

/// PostgreSQL's order of kinds when two jsonb values differ in kind.
fn type_rank(kind: &JsonbKind) -> u8 {
    match kind {
        JsonbKind::Null => 0,
        JsonbKind::String(_) => 1,
        JsonbKind::Number(_) => 2,
        JsonbKind::Bool(_) => 3,
        JsonbKind::Array(_) => 4,
        JsonbKind::Object(_) => 5,
    }
}

/// PostgreSQL's jsonb order (`compareJsonbContainers`): objects > arrays > booleans >
/// numbers > strings > null; a container with more elements or pairs is greater;
/// otherwise element by element, or key, value, key, value in key order. A scalar at
/// the top level is PostgreSQL's one-element "raw scalar" array: before an array of
/// one element, and compared with other arrays by length first.
pub fn cmp(a: &Jsonb, b: &Jsonb) -> Ordering {
    let (ka, kb) = (a.kind(), b.kind());
    let scalar = |k: &JsonbKind| !matches!(k, JsonbKind::Array(_) | JsonbKind::Object(_));
    match (scalar(&ka), scalar(&kb), &ka, &kb) {
        (true, false, _, JsonbKind::Array(y)) => {
            return 1usize.cmp(&y.len).then(Ordering::Less);
        }
        (false, true, JsonbKind::Array(x), _) => {
            return x.len.cmp(&1).then(Ordering::Greater);
        }
        _ => {}
    }
    cmp_value(ka, kb)
}

fn cmp_value(ka: JsonbKind, kb: JsonbKind) -> Ordering {
    let (ra, rb) = (type_rank(&ka), type_rank(&kb));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (ka, kb) {
        (JsonbKind::Null, JsonbKind::Null) => Ordering::Equal,
        (JsonbKind::Bool(x), JsonbKind::Bool(y)) => x.cmp(&y),
        (JsonbKind::String(x), JsonbKind::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (JsonbKind::Number(x), JsonbKind::Number(y)) => cmp_numbers(x, y),
        (JsonbKind::Array(x), JsonbKind::Array(y)) => x.len.cmp(&y.len).then_with(|| {
            for (ea, eb) in x.iter().zip(y.iter()) {
                let o = cmp_value(ea.kind(), eb.kind());
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        }),
        (JsonbKind::Object(x), JsonbKind::Object(y)) => x.len.cmp(&y.len).then_with(|| {
            for ((ka, va), (kb, vb)) in x.iter().zip(y.iter()) {
                let o = ka
                    .as_bytes()
                    .cmp(kb.as_bytes())
                    .then_with(|| cmp_value(va.kind(), vb.kind()));
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        }),
        _ => Ordering::Equal,
    }
}

/// Compares two canonical decimal texts (`-12.50`, `0`, `3`) by value.
pub fn cmp_numbers(a: &str, b: &str) -> Ordering {
    let (na, ua) = match a.strip_prefix('-') {
        Some(u) => (true, u),
        None => (false, a),
    };
    let (nb, ub) = match b.strip_prefix('-') {
        Some(u) => (true, u),
        None => (false, b),
    };
    let magnitude = |u: &str, v: &str| {
        let (ui, uf) = u.split_once('.').unwrap_or((u, ""));
        let (vi, vf) = v.split_once('.').unwrap_or((v, ""));
        ui.len()
            .cmp(&vi.len())
            .then_with(|| ui.cmp(vi))
            .then_with(|| uf.trim_end_matches('0').cmp(vf.trim_end_matches('0')))
    };
    match (na, nb) {
        (false, false) => magnitude(ua, ub),
        (true, true) => magnitude(ub, ua),
        // Canonical numbers have no negative zero.
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
    }
}

/// The text PostgreSQL's `numeric_out` prints for a JSON number's text (RFC 8259
/// syntax, checked by the caller or here): the value at the scale PostgreSQL's
/// `numeric_in` gives it (`1.50e1` is `15.0`, `1e2` is `100`, `-0` is `0`). `None` if
/// the text is not a JSON number or its digits are more than a numeric holds.
pub fn canonical_number(text: &str) -> Option<String> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if int_len == 0 || (int_len > 1 && rest.starts_with('0')) {
        return None;
    }
    let (int, mut rest) = rest.split_at(int_len);
    let mut frac = "";
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        (frac, rest) = r.split_at(n);
    }
    let mut exponent: i64 = 0;
    if let Some(r) = rest.strip_prefix(['e', 'E']) {
        let (sign, digits) = match r.strip_prefix(['+', '-']) {
            Some(d) => (if r.starts_with('-') { -1 } else { 1 }, d),
            None => (1, r),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let trimmed = digits.trim_start_matches('0');
        if trimmed.len() > 9 {
            return None;
        }
        exponent = sign * trimmed.parse::<i64>().unwrap_or(0);
        rest = "";
    }
    if !rest.is_empty() {
        return None;
    }
    let digits = format!("{int}{frac}");
    // value = digits * 10^shift, shown with max(0, -shift) digits after the point.
    let shift = exponent - frac.len() as i64;
    let (int_part, frac_part) = if shift >= 0 {
        if digits.len() as i64 + shift > MAX_NUMBER_DIGITS as i64 {
            return None;
        }
        (
            format!("{digits}{}", "0".repeat(shift as usize)),
            String::new(),
        )
    } else {
        let scale = (-shift) as usize;
        if scale > MAX_NUMBER_DIGITS {
            return None;
        }
        let padded = if digits.len() <= scale {
            format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
        } else {
            digits
        };
        let (i, f) = padded.split_at(padded.len() - scale);
        (i.to_string(), f.to_string())
    };
    let int_part = match int_part.trim_start_matches('0') {
        "" => "0",
        t => t,
    };
    let zero = int_part == "0" && frac_part.bytes().all(|b| b == b'0');
    let mut out = String::with_capacity(int_part.len() + frac_part.len() + 2);
    if negative && !zero {
        out.push('-');
    }
    out.push_str(int_part);
    if !frac_part.is_empty() {
        out.push('.');
        out.push_str(&frac_part);
    }
    Some(out)
}

impl std::fmt::Display for Jsonb<'_> {
    /// PostgreSQL's jsonb output: `{"a": 1, "b": [1, 2]}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        write_jsonb(&mut out, *self);
        f.write_str(&out)
    }
}

fn write_jsonb(out: &mut String, j: Jsonb) {
    match j.kind() {
        JsonbKind::Null => out.push_str("null"),
        JsonbKind::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        JsonbKind::Number(n) => out.push_str(n),
        JsonbKind::String(s) => escape_json(out, s),
        JsonbKind::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_jsonb(out, e);
            }
            out.push(']');
        }
        JsonbKind::Object(o) => {
            out.push('{');
            for (i, (k, v)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                escape_json(out, k);
                out.push_str(": ");
                write_jsonb(out, v);
            }
            out.push('}');
        }
    }
}

/// PostgreSQL's `escape_json`: a JSON string literal.
pub fn escape_json(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parses JSON text as PostgreSQL's `jsonb_in` does, with its errors:
/// `invalid input syntax for type json` (22P02) with PostgreSQL's DETAIL,
/// `unsupported Unicode escape sequence` (22P05) for `\u0000`.
pub fn parse(text: &str) -> Result<JsonValue, EvalError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.at < p.bytes.len() {
        return Err(p.token_error());
    }
    Ok(v)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

fn syntax(detail: String) -> EvalError {
    EvalError::InvalidJson { detail }
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The token at the current position, as PostgreSQL's lexer would cut it.
    fn token(&self) -> &str {
        let rest = &self.text[self.at..];
        let len = rest
            .char_indices()
            .find(|(_, c)| {
                matches!(
                    c,
                    ' ' | '\t' | '\n' | '\r' | ',' | ':' | '[' | ']' | '{' | '}' | '"'
                )
            })
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let len = if len == 0 {
            rest.chars().next().map(char::len_utf8).unwrap_or(0)
        } else {
            len
        };
        &rest[..len]
    }

    fn token_error(&self) -> EvalError {
        if self.at >= self.bytes.len() {
            return syntax("The input string ended unexpectedly.".into());
        }
        syntax(format!("Token \"{}\" is invalid.", self.token()))
    }

    fn expected(&self, what: &str) -> EvalError {
        if self.at >= self.bytes.len() {
            return syntax("The input string ended unexpectedly.".into());
        }
        syntax(format!("Expected {what}, but found \"{}\".", self.token()))
    }

    fn value(&mut self, depth: usize) -> Result<JsonValue, EvalError> {
        if depth >= MAX_DEPTH {
            return Err(EvalError::StackDepthLimitExceeded);
        }
        match self.bytes.get(self.at) {
            None => Err(self.token_error()),
            Some(b'{') => {
                self.at += 1;
                self.skip_ws();
                let mut pairs = Vec::new();
                if self.bytes.get(self.at) == Some(&b'}') {
                    self.at += 1;
                    return Ok(JsonValue::Object(pairs));
                }
                loop {
                    if self.bytes.get(self.at) != Some(&b'"') {
                        return Err(self.expected("string or \"}\""));
                    }
                    let key = self.string()?;
                    self.skip_ws();
                    if self.bytes.get(self.at) != Some(&b':') {
                        return Err(self.expected("\":\""));
                    }
                    self.at += 1;
                    self.skip_ws();
                    let v = self.value(depth + 1)?;
                    pairs.push((key, v));
                    self.skip_ws();
                    match self.bytes.get(self.at) {
                        Some(b',') => {
                            self.at += 1;
                            self.skip_ws();
                            if self.bytes.get(self.at) != Some(&b'"') {
                                return Err(self.expected("string"));
                            }
                        }
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(JsonValue::object(pairs));
                        }
                        _ => return Err(self.expected("\",\" or \"}\"")),
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                self.skip_ws();
                let mut elems = Vec::new();
                if self.bytes.get(self.at) == Some(&b']') {
                    self.at += 1;
                    return Ok(JsonValue::Array(elems));
                }
                loop {
                    elems.push(self.value(depth + 1)?);
                    self.skip_ws();
                    match self.bytes.get(self.at) {
                        Some(b',') => {
                            self.at += 1;
                            self.skip_ws();
                        }
                        Some(b']') => {
                            self.at += 1;
                            return Ok(JsonValue::Array(elems));
                        }
                        _ => return Err(self.expected("\",\" or \"]\"")),
                    }
                }
            }
            Some(b'"') => Ok(JsonValue::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => {
                let token = self.token();
                let n = canonical_number(token)
                    .ok_or_else(|| syntax(format!("Token \"{token}\" is invalid.")))?;
                self.at += token.len();
                Ok(JsonValue::Number(n))
            }
            Some(_) => {
                let token = self.token();
                let v = match token {
                    "true" => JsonValue::Bool(true),
                    "false" => JsonValue::Bool(false),
                    "null" => JsonValue::Null,
                    _ => {
                        return Err(match token {
                            "]" | "}" | "," | ":" => self.expected("JSON value"),
                            _ => self.token_error(),
                        })
                    }
                };
                self.at += token.len();
                Ok(v)
            }
        }
    }

    /// A string literal at the current `"`.
    fn string(&mut self) -> Result<String, EvalError> {
        let start = self.at;
        self.at += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.at..];
            let Some(c) = rest.chars().next() else {
                return Err(syntax("The input string ended unexpectedly.".into()));
            };
            match c {
                '"' => {
                    self.at += 1;
                    return Ok(out);
                }
                '\\' => {
                    let Some(e) = rest[1..].chars().next() else {
                        return Err(syntax("The input string ended unexpectedly.".into()));
                    };
                    self.at += 1 + e.len_utf8();
                    match e {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '/' => out.push('/'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let first = self.hex4(start)?;
                            let code = if (0xd800..0xdc00).contains(&first) {
                                if !self.text[self.at..].starts_with("\\u") {
                                    return Err(syntax(
                                        "Unicode low surrogate must follow a high surrogate."
                                            .into(),
                                    ));
                                }
                                self.at += 2;
                                let second = self.hex4(start)?;
                                if !(0xdc00..0xe000).contains(&second) {
                                    return Err(syntax(
                                        "Unicode low surrogate must follow a high surrogate."
                                            .into(),
                                    ));
                                }
                                0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
                            } else if (0xdc00..0xe000).contains(&first) {
                                return Err(syntax(
                                    "Unicode low surrogate must follow a high surrogate.".into(),
                                ));
                            } else {
                                first
                            };
                            if code == 0 {
                                return Err(EvalError::UnsupportedUnicodeEscape);
                            }
                            out.push(char::from_u32(code).ok_or_else(|| {
                                syntax("Unicode escape value could not be translated.".into())
                            })?);
                        }
                        other => {
                            return Err(syntax(format!(
                                "Escape sequence \"\\{other}\" is invalid."
                            )))
                        }
                    }
                }
                c if (c as u32) < 0x20 => {
                    return Err(syntax(format!(
                        "Character with value 0x{:02x} must be escaped.",
                        c as u32
                    )));
                }
                c => {
                    out.push(c);
                    self.at += c.len_utf8();
                }
            }
        }
    }

    fn hex4(&mut self, _start: usize) -> Result<u32, EvalError> {
        let digits = self.text.get(self.at..self.at + 4).unwrap_or("");
        if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            self.at += 4;
            Ok(u32::from_str_radix(digits, 16).unwrap_or(0))
        } else {
            Err(syntax(
                "\"\\u\" must be followed by four hexadecimal digits.".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        let v = parse(text).unwrap();
        let bytes = v.to_bytes();
        assert!(is_valid(&bytes), "{text}");
        Jsonb::from_valid_bytes(&bytes).to_string()
    }

    #[test]
    fn output_matches_postgres() {
        // Expected values from PostgreSQL 15.
        assert_eq!(
            round_trip(r#"{"b":1,"aa":[1,2],"a":null}"#),
            r#"{"a": null, "b": 1, "aa": [1, 2]}"#
        );
        assert_eq!(round_trip(r#"{"a":1,"a":2}"#), r#"{"a": 2}"#);
        assert_eq!(round_trip(" [ ] "), "[]");
        assert_eq!(round_trip("{}"), "{}");
        assert_eq!(round_trip("1.50"), "1.50");
        assert_eq!(round_trip("1e2"), "100");
        assert_eq!(round_trip("1.50e1"), "15.0");
        assert_eq!(round_trip("-0"), "0");
        assert_eq!(round_trip("-0.0"), "0.0");
        assert_eq!(round_trip("12e-3"), "0.012");
        assert_eq!(round_trip("1E+2"), "100");
        assert_eq!(round_trip(r#""a\u00e9\n\"""#), r#""aé\n\"""#);
        assert_eq!(round_trip(r#""\ud83d\ude00""#), "\"😀\"");
        assert_eq!(round_trip(r#""\u0001""#), r#""\u0001""#);
        assert_eq!(round_trip("[true, false, null]"), "[true, false, null]");
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in [
            "",
            "{",
            "[1,",
            "nope",
            "01",
            "1.",
            ".5",
            "[1 2]",
            "{\"a\" 1}",
            "{1: 2}",
            "\"\t\"",
            "\"\\x\"",
            "tru",
            "[1]]",
            "\"\\ud800\"",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.sqlstate(), "22P02", "{bad}");
            assert_eq!(e.to_string(), "invalid input syntax for type json");
        }
        assert_eq!(parse(r#""\u0000""#).unwrap_err().sqlstate(), "22P05");
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert_eq!(
            parse(&deep).unwrap_err(),
            EvalError::StackDepthLimitExceeded
        );
        assert_eq!(
            parse("{").unwrap_err().detail().as_deref(),
            Some("The input string ended unexpectedly.")
        );
        assert_eq!(
            parse("nope").unwrap_err().detail().as_deref(),
            Some("Token \"nope\" is invalid.")
        );
    }

    #[test]
    fn order_matches_postgres() {
        let j = |s: &str| parse(s).unwrap().to_bytes();
        let c = |a: &str, b: &str| {
            cmp(
                &Jsonb::from_valid_bytes(&j(a)),
                &Jsonb::from_valid_bytes(&j(b)),
            )
        };
        // From PostgreSQL 15.
        assert_eq!(c("1", "[]"), Ordering::Greater);
        assert_eq!(c("1", "[5]"), Ordering::Less);
        assert_eq!(c("1", "[1, 2]"), Ordering::Less);
        assert_eq!(c("\"a\"", "1"), Ordering::Less);
        assert_eq!(c("null", "\"a\""), Ordering::Less);
        assert_eq!(c("true", "1"), Ordering::Greater);
        assert_eq!(c("{}", "[1, 2, 3]"), Ordering::Greater);
        assert_eq!(c("1.0", "1"), Ordering::Equal);
        assert_eq!(c("-2", "-10"), Ordering::Greater);
        assert_eq!(c("0.5", "0.25"), Ordering::Greater);
        assert_eq!(
            c(r#"{"aa": 1, "c": 1}"#, r#"{"b": 1, "d": 1}"#),
            Ordering::Greater
        );
        assert_eq!(c("[1, [2]]", "[1, 2]"), Ordering::Greater);
    }

    #[test]
    fn navigation_and_containment() {
        let bytes = parse(r#"{"a": [1, "x", {"b": true}], "c": "s"}"#)
            .unwrap()
            .to_bytes();
        let j = Jsonb::from_valid_bytes(&bytes);
        assert_eq!(j.field("c").unwrap().to_text().unwrap(), "s");
        assert_eq!(
            j.field("a").unwrap().index(-1).unwrap().to_string(),
            r#"{"b": true}"#
        );
        assert_eq!(j.path(["a", "2", "b"]).unwrap().to_string(), "true");
        assert!(j.path(["a", "x"]).is_none());
        assert!(j.exists("a") && !j.exists("s"));
        let sub = parse(r#"{"a": [{"b": true}]}"#).unwrap().to_bytes();
        assert!(j.contains(&Jsonb::from_valid_bytes(&sub)));
        let not = parse(r#"{"a": [2]}"#).unwrap().to_bytes();
        assert!(!j.contains(&Jsonb::from_valid_bytes(&not)));
    }

    #[test]
    fn rejects_bad_bytes() {
        assert!(!is_valid(&[]));
        assert!(!is_valid(&[9]));
        assert!(!is_valid(&[NUMBER, 2, b'0', b'1']));
        assert!(!is_valid(&[STRING, 5, b'a']));
        // Keys out of order.
        let mut bad = vec![OBJECT, 2, 6, 1, b'b', NULL, 1, b'a', NULL];
        assert!(!is_valid(&bad));
        bad[4] = b'a';
        bad[7] = b'b';
        assert!(is_valid(&bad));
    }
}
