//! The packed [`Row`]: datums encoded back to back as a tag byte and a payload.
//!
//! Arrangements hold millions of rows, so a row is one allocation of bytes rather than
//! a `Vec<Datum>`. The encoding is canonical (floats are normalised, `-0.0` becomes
//! `0.0`), so two rows are equal exactly when their bytes are: grouping, joining and
//! consolidation compare bytes. The byte order is not SQL order; sort by [`Datum`] for that.
//!
//! Every `Row` decodes: the packer writes only well-formed datums, and bytes from
//! outside (persist, the network) are checked by [`Row::from_bytes`] and by
//! deserialization.
//!
//! Known differences from PostgreSQL that come from comparing bytes:
//! - `-0.0` packs as `0.0` so that `GROUP BY` and joins treat them as equal, as
//!   PostgreSQL does; the price is that a packed `'-0'::float8` prints `0` where
//!   PostgreSQL prints `-0`. Keeping the sign would need equality that is not byte
//!   equality, so the sign is given up.
//! - Values that PostgreSQL holds equal but prints differently pack differently:
//!   numerics that differ only in scale (`1.5` and `1.50`) and intervals that differ
//!   only in how they split months, days and time (`1 mon` and `30 days`). `GROUP BY`,
//!   `DISTINCT` and set operations on such columns keep them apart where PostgreSQL
//!   merges them. (Joins on numeric keys compare normalised numerics: see the
//!   planner's predicate pushdown.)
//!   The same holds for such values inside jsonb (`1.0` and `1`) and arrays.
//!
//! A uuid packs as its 16 bytes. A jsonb value packs as its canonical bytes
//! ([`crate::jsonb`]) behind a length. An array packs as a row of its elements behind
//! a length, so its elements decode with the same code as a row's datums; an empty
//! array is an empty row.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::adt::Interval;
use crate::jsonb::Jsonb;
use crate::scalar::Datum;

mod tag {
    pub const NULL: u8 = 0;
    pub const FALSE: u8 = 1;
    pub const TRUE: u8 = 2;
    pub const INT16: u8 = 3;
    pub const INT32: u8 = 4;
    pub const INT64: u8 = 5;
    pub const FLOAT32: u8 = 6;
    pub const FLOAT64: u8 = 7;
    pub const NUMERIC: u8 = 8;
    pub const STRING_SHORT: u8 = 9;
    pub const STRING_LONG: u8 = 10;
    pub const BYTES_SHORT: u8 = 11;
    pub const BYTES_LONG: u8 = 12;
    pub const DATE: u8 = 13;
    pub const TIME: u8 = 14;
    pub const TIMESTAMP: u8 = 15;
    pub const TIMESTAMPTZ: u8 = 16;
    pub const INTERVAL: u8 = 17;
    pub const UUID: u8 = 18;
    pub const JSONB_SHORT: u8 = 19;
    pub const JSONB_LONG: u8 = 20;
    pub const ARRAY_SHORT: u8 = 21;
    pub const ARRAY_LONG: u8 = 22;
}

/// A one-dimensional array datum: its elements, packed as the datums of a row.
#[derive(Clone, Copy, Debug)]
pub struct Array<'a> {
    elements: &'a [u8],
}

impl<'a> Array<'a> {
    /// The array whose elements are the datums packed in `row`.
    pub fn from_row(row: &'a Row) -> Array<'a> {
        Array {
            elements: &row.data,
        }
    }

    /// The array whose elements are packed in `bytes`, if they decode.
    pub fn from_bytes(bytes: &'a [u8]) -> Option<Array<'a>> {
        is_well_formed_array(bytes).then_some(Array { elements: bytes })
    }

    /// The packed elements.
    pub fn bytes(&self) -> &'a [u8] {
        self.elements
    }

    /// The elements, NULLs included.
    pub fn iter(&self) -> DatumIter<'a> {
        DatumIter {
            data: self.elements,
            offset: 0,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }
}

/// A packed sequence of datums.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Row {
    #[serde(with = "serde_bytes_vec")]
    data: Vec<u8>,
}

mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        let data = d.deserialize_byte_buf(V)?;
        if !super::is_well_formed(&data) {
            return Err(serde::de::Error::custom("row bytes do not decode"));
        }
        Ok(data)
    }
}

impl Row {
    /// A row of the given datums.
    pub fn pack<'a, I>(datums: I) -> Row
    where
        I: IntoIterator,
        I::Item: std::borrow::Borrow<Datum<'a>>,
    {
        let mut packer = RowPacker::new();
        for d in datums {
            packer.push(*std::borrow::Borrow::borrow(&d));
        }
        packer.finish()
    }

    /// A row of the given datums.
    pub fn pack_slice(datums: &[Datum]) -> Row {
        Row::pack(datums.iter())
    }

    /// The datums of the row, decoded one at a time.
    pub fn iter(&self) -> DatumIter<'_> {
        DatumIter {
            data: &self.data,
            offset: 0,
        }
    }

    /// The datums of the row, collected.
    pub fn unpack(&self) -> Vec<Datum<'_>> {
        self.iter().collect()
    }

    /// The first datum of packed row bytes (as in [`Row::data`]), if they decode.
    pub fn datum_from_packed(bytes: &[u8]) -> Option<Datum<'_>> {
        skip_datum(bytes, 0)?;
        DatumIter {
            data: bytes,
            offset: 0,
        }
        .next()
    }

    /// The number of bytes the datums occupy.
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    /// The encoded bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// A row from encoded bytes, checking that they decode.
    pub fn from_bytes(data: Vec<u8>) -> Option<Row> {
        is_well_formed(&data).then_some(Row { data })
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Builds a [`Row`] datum by datum, reusing its buffer.
#[derive(Default, Debug)]
pub struct RowPacker {
    data: Vec<u8>,
}

impl RowPacker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one datum.
    pub fn push(&mut self, datum: Datum) {
        let d = &mut self.data;
        match datum {
            Datum::Null => d.push(tag::NULL),
            Datum::False => d.push(tag::FALSE),
            Datum::True => d.push(tag::TRUE),
            Datum::Int16(v) => {
                d.push(tag::INT16);
                d.extend_from_slice(&v.to_le_bytes());
            }
            Datum::Int32(v) => {
                d.push(tag::INT32);
                d.extend_from_slice(&v.to_le_bytes());
            }
            Datum::Int64(v) => {
                d.push(tag::INT64);
                d.extend_from_slice(&v.to_le_bytes());
            }
            Datum::Float32(v) => {
                d.push(tag::FLOAT32);
                let v = if v == 0.0 {
                    0.0
                } else if v.is_nan() {
                    f32::NAN
                } else {
                    v
                };
                d.extend_from_slice(&v.to_le_bytes());
            }
            Datum::Float64(v) => {
                d.push(tag::FLOAT64);
                let v = if v == 0.0 {
                    0.0
                } else if v.is_nan() {
                    f64::NAN
                } else {
                    v
                };
                d.extend_from_slice(&v.to_le_bytes());
            }
            Datum::Numeric(v) => {
                d.push(tag::NUMERIC);
                // -0 and 0 pack alike; the scale stays, so `0.00` still prints `0.00`.
                let mut v = v;
                if v.is_zero() {
                    v.set_sign_positive(true);
                }
                d.extend_from_slice(&v.serialize());
            }
            Datum::String(s) => push_var(d, tag::STRING_SHORT, tag::STRING_LONG, s.as_bytes()),
            Datum::Bytes(b) => push_var(d, tag::BYTES_SHORT, tag::BYTES_LONG, b),
            Datum::Date(v) => {
                d.push(tag::DATE);
                d.extend_from_slice(&v.to_le_bytes());
            }
            Datum::Time(v) => {
                d.push(tag::TIME);
                d.extend_from_slice(&v.to_le_bytes());
            }
            Datum::Timestamp(v) => {
                d.push(tag::TIMESTAMP);
                d.extend_from_slice(&v.to_le_bytes());
            }
            Datum::TimestampTz(v) => {
                d.push(tag::TIMESTAMPTZ);
                d.extend_from_slice(&v.to_le_bytes());
            }
            Datum::Interval(iv) => {
                d.push(tag::INTERVAL);
                d.extend_from_slice(&iv.months.to_le_bytes());
                d.extend_from_slice(&iv.days.to_le_bytes());
                d.extend_from_slice(&iv.micros.to_le_bytes());
            }
            Datum::Uuid(u) => {
                d.push(tag::UUID);
                d.extend_from_slice(u.as_bytes());
            }
            Datum::Jsonb(j) => push_var(d, tag::JSONB_SHORT, tag::JSONB_LONG, j.bytes()),
            Datum::Array(a) => push_var(d, tag::ARRAY_SHORT, tag::ARRAY_LONG, a.bytes()),
        }
    }

    /// Appends every datum of `row`.
    pub fn extend_from_row(&mut self, row: &Row) {
        self.data.extend_from_slice(&row.data);
    }

    /// Appends datums.
    pub fn extend<'a>(&mut self, datums: impl IntoIterator<Item = Datum<'a>>) {
        for d in datums {
            self.push(d);
        }
    }

    /// The row packed so far; the packer is left empty for reuse.
    pub fn finish(&mut self) -> Row {
        Row {
            data: std::mem::take(&mut self.data),
        }
    }

    /// A copy of the row packed so far; the packer is cleared, keeping its buffer.
    pub fn finish_and_reuse(&mut self) -> Row {
        let row = Row {
            data: self.data.clone(),
        };
        self.data.clear();
        row
    }
}

fn push_var(d: &mut Vec<u8>, short: u8, long: u8, bytes: &[u8]) {
    if bytes.len() < 256 {
        d.push(short);
        d.push(bytes.len() as u8);
    } else {
        // Evaluation caps values at 1 GB (`expr::func::MAX_VALUE_LEN`).
        let len = u32::try_from(bytes.len()).expect("a datum is shorter than 4 GiB");
        d.push(long);
        d.extend_from_slice(&len.to_le_bytes());
    }
    d.extend_from_slice(bytes);
}

/// Iterates over the datums of a row.
pub struct DatumIter<'a> {
    data: &'a [u8],
    offset: usize,
}

fn read<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    data[at..at + N]
        .try_into()
        .expect("row bytes are well formed")
}

/// Whether `data` is a sequence of datums that decode.
fn is_well_formed(data: &[u8]) -> bool {
    let mut offset = 0;
    while offset < data.len() {
        match skip_datum(data, offset) {
            Some(end) => offset = end,
            None => return false,
        }
    }
    true
}

/// Whether `data` is the elements of an array: datums that decode, none of them an
/// array (arrays are one-dimensional, which also bounds the recursion).
fn is_well_formed_array(data: &[u8]) -> bool {
    let mut offset = 0;
    while offset < data.len() {
        if matches!(data[offset], tag::ARRAY_SHORT | tag::ARRAY_LONG) {
            return false;
        }
        match skip_datum(data, offset) {
            Some(end) => offset = end,
            None => return false,
        }
    }
    true
}

/// The offset just past the datum at `offset`, or `None` if the bytes do not decode.
fn skip_datum(data: &[u8], offset: usize) -> Option<usize> {
    let t = *data.get(offset)?;
    let payload = offset + 1;
    let end = match t {
        tag::NULL | tag::FALSE | tag::TRUE => payload,
        tag::INT16 => payload + 2,
        tag::INT32 | tag::FLOAT32 | tag::DATE => payload + 4,
        tag::INT64 | tag::FLOAT64 | tag::TIME | tag::TIMESTAMP | tag::TIMESTAMPTZ => payload + 8,
        tag::NUMERIC => {
            // rust_decimal's flags: scale in the third byte (at most 28), sign in the top
            // bit, every other bit clear.
            let flags = data.get(payload..payload + 4)?;
            if flags[0] != 0 || flags[1] != 0 || flags[2] > 28 || flags[3] & 0x7f != 0 {
                return None;
            }
            payload + 16
        }
        tag::INTERVAL | tag::UUID => payload + 16,
        tag::JSONB_SHORT | tag::JSONB_LONG | tag::ARRAY_SHORT | tag::ARRAY_LONG => {
            let (len, start) = if t == tag::JSONB_SHORT || t == tag::ARRAY_SHORT {
                (*data.get(payload)? as usize, payload + 1)
            } else {
                let len = data.get(payload..payload + 4)?.try_into().ok()?;
                (u32::from_le_bytes(len) as usize, payload + 4)
            };
            let end = start.checked_add(len)?;
            let body = data.get(start..end)?;
            let ok = if t == tag::JSONB_SHORT || t == tag::JSONB_LONG {
                crate::jsonb::is_valid(body)
            } else {
                is_well_formed_array(body)
            };
            if !ok {
                return None;
            }
            end
        }
        tag::STRING_SHORT | tag::BYTES_SHORT => {
            let len = *data.get(payload)? as usize;
            let end = payload + 1 + len;
            if t == tag::STRING_SHORT {
                std::str::from_utf8(data.get(payload + 1..end)?).ok()?;
            }
            end
        }
        tag::STRING_LONG | tag::BYTES_LONG => {
            let len = u32::from_le_bytes(data.get(payload..payload + 4)?.try_into().ok()?) as usize;
            let end = payload + 4 + len;
            if t == tag::STRING_LONG {
                std::str::from_utf8(data.get(payload + 4..end)?).ok()?;
            }
            end
        }
        _ => return None,
    };
    (end <= data.len()).then_some(end)
}

impl<'a> Iterator for DatumIter<'a> {
    type Item = Datum<'a>;

    fn next(&mut self) -> Option<Datum<'a>> {
        let data = self.data;
        if self.offset >= data.len() {
            return None;
        }
        let t = data[self.offset];
        let p = self.offset + 1;
        let (datum, end) = match t {
            tag::NULL => (Datum::Null, p),
            tag::FALSE => (Datum::False, p),
            tag::TRUE => (Datum::True, p),
            tag::INT16 => (Datum::Int16(i16::from_le_bytes(read(data, p))), p + 2),
            tag::INT32 => (Datum::Int32(i32::from_le_bytes(read(data, p))), p + 4),
            tag::INT64 => (Datum::Int64(i64::from_le_bytes(read(data, p))), p + 8),
            tag::FLOAT32 => (Datum::Float32(f32::from_le_bytes(read(data, p))), p + 4),
            tag::FLOAT64 => (Datum::Float64(f64::from_le_bytes(read(data, p))), p + 8),
            tag::NUMERIC => (Datum::Numeric(Decimal::deserialize(read(data, p))), p + 16),
            tag::STRING_SHORT | tag::BYTES_SHORT | tag::STRING_LONG | tag::BYTES_LONG => {
                let (len, start) = if t == tag::STRING_SHORT || t == tag::BYTES_SHORT {
                    (data[p] as usize, p + 1)
                } else {
                    (u32::from_le_bytes(read(data, p)) as usize, p + 4)
                };
                let bytes = &data[start..start + len];
                let datum = if t == tag::STRING_SHORT || t == tag::STRING_LONG {
                    // Rows are only built by `RowPacker` from `&str` or checked by `from_bytes`.
                    Datum::String(std::str::from_utf8(bytes).expect("row strings are utf-8"))
                } else {
                    Datum::Bytes(bytes)
                };
                (datum, start + len)
            }
            tag::DATE => (Datum::Date(i32::from_le_bytes(read(data, p))), p + 4),
            tag::TIME => (Datum::Time(i64::from_le_bytes(read(data, p))), p + 8),
            tag::TIMESTAMP => (Datum::Timestamp(i64::from_le_bytes(read(data, p))), p + 8),
            tag::TIMESTAMPTZ => (Datum::TimestampTz(i64::from_le_bytes(read(data, p))), p + 8),
            tag::INTERVAL => (
                Datum::Interval(Interval {
                    months: i32::from_le_bytes(read(data, p)),
                    days: i32::from_le_bytes(read(data, p + 4)),
                    micros: i64::from_le_bytes(read(data, p + 8)),
                }),
                p + 16,
            ),
            tag::UUID => (Datum::Uuid(uuid::Uuid::from_bytes(read(data, p))), p + 16),
            tag::JSONB_SHORT | tag::JSONB_LONG | tag::ARRAY_SHORT | tag::ARRAY_LONG => {
                let (len, start) = if t == tag::JSONB_SHORT || t == tag::ARRAY_SHORT {
                    (data[p] as usize, p + 1)
                } else {
                    (u32::from_le_bytes(read(data, p)) as usize, p + 4)
                };
                let bytes = &data[start..start + len];
                // Rows are only built by `RowPacker` from valid values or checked by
                // `from_bytes`.
                let datum = if t == tag::JSONB_SHORT || t == tag::JSONB_LONG {
                    Datum::Jsonb(Jsonb::from_valid_bytes(bytes))
                } else {
                    Datum::Array(Array { elements: bytes })
                };
                (datum, start + len)
            }
            other => panic!("row holds unknown datum tag {other}"),
        };
        self.offset = end;
        Some(datum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        let long = "x".repeat(300);
        let datums = vec![
            Datum::Null,
            Datum::True,
            Datum::False,
            Datum::Int16(-3),
            Datum::Int32(i32::MAX),
            Datum::Int64(i64::MIN),
            Datum::Float32(1.5),
            Datum::Float64(-2.25),
            Datum::Numeric(Decimal::new(12345, 2)),
            Datum::String("héllo"),
            Datum::String(&long),
            Datum::Bytes(b"\x00\x01"),
            Datum::Date(19000),
            Datum::Time(3_600_000_000),
            Datum::Timestamp(1_700_000_000_000_000),
            Datum::TimestampTz(-5),
            Datum::Interval(Interval {
                months: 1,
                days: 2,
                micros: 3,
            }),
        ];
        let row = Row::pack_slice(&datums);
        assert_eq!(row.unpack(), datums);
        assert!(Row::from_bytes(row.data().to_vec()).is_some());
    }

    #[test]
    fn round_trips_uuids_jsonb_and_arrays() {
        let json = crate::jsonb::parse(r#"{"a": [1, "x", null], "b": {"c": 1.50}}"#)
            .unwrap()
            .to_bytes();
        let long_json = crate::jsonb::JsonValue::String("y".repeat(300)).to_bytes();
        let elements = Row::pack_slice(&[Datum::Int32(1), Datum::Null, Datum::Int32(3)]);
        let long_elements = Row::pack_slice(&[Datum::String(&"z".repeat(300))]);
        let empty = Row::default();
        let datums = vec![
            Datum::Uuid(uuid::Uuid::from_u128(
                0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
            )),
            Datum::Jsonb(Jsonb::from_valid_bytes(&json)),
            Datum::Jsonb(Jsonb::from_valid_bytes(&long_json)),
            Datum::Array(Array::from_row(&elements)),
            Datum::Array(Array::from_row(&long_elements)),
            Datum::Array(Array::from_row(&empty)),
        ];
        let row = Row::pack_slice(&datums);
        assert_eq!(row.unpack(), datums);
        assert!(Row::from_bytes(row.data().to_vec()).is_some());
        // A uuid packs as its 16 bytes after the tag.
        assert_eq!(Row::pack_slice(&datums[..1]).byte_len(), 17);
        let Datum::Array(a) = row.unpack()[3] else {
            panic!("not an array");
        };
        assert_eq!(a.len(), 3);
        assert_eq!(a.iter().nth(1), Some(Datum::Null));
    }

    #[test]
    fn rejects_garbage_in_jsonb_and_arrays() {
        // A jsonb whose body is not jsonb.
        assert!(Row::from_bytes(vec![tag::JSONB_SHORT, 1, 9]).is_none());
        // An array whose elements do not decode.
        assert!(Row::from_bytes(vec![tag::ARRAY_SHORT, 2, tag::INT64, 1]).is_none());
        // An array of arrays.
        assert!(Row::from_bytes(vec![tag::ARRAY_SHORT, 2, tag::ARRAY_SHORT, 0]).is_none());
        assert!(Row::from_bytes(vec![tag::ARRAY_SHORT, 1, tag::NULL]).is_some());
        // A uuid cut short.
        assert!(Row::from_bytes(vec![tag::UUID, 1, 2, 3]).is_none());
    }

    #[test]
    fn negative_zero_packs_like_zero() {
        assert_eq!(
            Row::pack_slice(&[Datum::Float64(-0.0)]),
            Row::pack_slice(&[Datum::Float64(0.0)])
        );
    }

    #[test]
    fn negative_zero_numeric_keeps_its_scale() {
        let mut minus_zero = Decimal::new(0, 2);
        minus_zero.set_sign_negative(true);
        let row = Row::pack_slice(&[Datum::Numeric(minus_zero)]);
        assert_eq!(row, Row::pack_slice(&[Datum::Numeric(Decimal::new(0, 2))]));
        assert_eq!(row.unpack()[0].to_string(), "0.00");
    }

    #[test]
    fn rejects_garbage_bytes() {
        assert!(Row::from_bytes(vec![200]).is_none());
        assert!(Row::from_bytes(vec![tag::INT64, 1, 2]).is_none());
        assert!(Row::from_bytes(vec![tag::STRING_SHORT, 2, 0xff, 0xfe]).is_none());
        let mut bad_scale = vec![tag::NUMERIC, 0, 0, 29, 0];
        bad_scale.extend([0; 12]);
        assert!(Row::from_bytes(bad_scale).is_none());
    }

    #[test]
    fn deserialization_checks_the_bytes() {
        use serde::de::value::{BytesDeserializer, Error};
        let deserialize = |bytes: &[u8]| {
            super::serde_bytes_vec::deserialize(BytesDeserializer::<Error>::new(bytes))
        };
        let good = Row::pack_slice(&[Datum::Int32(7), Datum::String("x")]);
        assert_eq!(deserialize(good.data()).unwrap(), good.data());
        assert!(deserialize(&[tag::INT64, 1, 2]).is_err());
    }
}
