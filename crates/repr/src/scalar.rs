//! Scalar types and values: [`ScalarType`] names a PostgreSQL type, [`Datum`] is one value.
//!
//! A `Datum` borrows strings and bytes from the [`crate::Row`] it was read from, so
//! reading a row allocates nothing. Ordering follows PostgreSQL: NULL sorts after every
//! value, NaN after every other float, `-0.0 == 0.0`, uuids by their bytes, jsonb by
//! PostgreSQL's jsonb order ([`crate::jsonb::cmp`]), arrays element by element (NULL
//! elements last) and then by length.

use std::cmp::Ordering;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::adt::Interval;
use crate::jsonb::Jsonb;

/// A PostgreSQL scalar type. Each has a name as PostgreSQL spells it and an OID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScalarType {
    Bool,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Numeric,
    String,
    Bytes,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    Jsonb,
    /// A one-dimensional array of the element type, which is never itself an array
    /// (PostgreSQL's `int[][]` is `int[]`). Build it with [`ScalarType::array_of`].
    Array(#[serde(with = "array_element")] &'static ScalarType),
}

/// Serializes an array's element type by value and reads it back into the static
/// element types [`ScalarType::array_of`] hands out.
mod array_element {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::ScalarType;

    pub fn serialize<S: Serializer>(elem: &&'static ScalarType, s: S) -> Result<S::Ok, S::Error> {
        (**elem).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static ScalarType, D::Error> {
        let elem = ScalarType::deserialize(d)?;
        match elem.array_of() {
            Some(ScalarType::Array(e)) => Ok(e),
            _ => Err(serde::de::Error::custom(
                "an array's element is not an array",
            )),
        }
    }
}

/// Every type that can be an array element, once, so that `Array` can borrow it.
static ELEMENT_TYPES: [ScalarType; 16] = [
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
    ScalarType::Uuid,
    ScalarType::Jsonb,
];

impl ScalarType {
    /// The array type of this element type; an array type is its own array type
    /// (`int[][]` is `int[]` in PostgreSQL).
    pub fn array_of(self) -> Option<ScalarType> {
        if let ScalarType::Array(_) = self {
            return Some(self);
        }
        ELEMENT_TYPES
            .iter()
            .find(|t| **t == self)
            .map(ScalarType::Array)
    }

    /// The element type of an array type.
    pub fn element_type(self) -> Option<ScalarType> {
        match self {
            ScalarType::Array(e) => Some(*e),
            _ => None,
        }
    }

    /// The name PostgreSQL gives the type in `pg_type.typname`.
    pub fn name(&self) -> &'static str {
        match self {
            ScalarType::Bool => "boolean",
            ScalarType::Int16 => "smallint",
            ScalarType::Int32 => "integer",
            ScalarType::Int64 => "bigint",
            ScalarType::Float32 => "real",
            ScalarType::Float64 => "double precision",
            ScalarType::Numeric => "numeric",
            ScalarType::String => "text",
            ScalarType::Bytes => "bytea",
            ScalarType::Date => "date",
            ScalarType::Time => "time without time zone",
            ScalarType::Timestamp => "timestamp without time zone",
            ScalarType::TimestampTz => "timestamp with time zone",
            ScalarType::Interval => "interval",
            ScalarType::Uuid => "uuid",
            ScalarType::Jsonb => "jsonb",
            ScalarType::Array(e) => match e {
                ScalarType::Bool => "boolean[]",
                ScalarType::Int16 => "smallint[]",
                ScalarType::Int32 => "integer[]",
                ScalarType::Int64 => "bigint[]",
                ScalarType::Float32 => "real[]",
                ScalarType::Float64 => "double precision[]",
                ScalarType::Numeric => "numeric[]",
                ScalarType::String => "text[]",
                ScalarType::Bytes => "bytea[]",
                ScalarType::Date => "date[]",
                ScalarType::Time => "time without time zone[]",
                ScalarType::Timestamp => "timestamp without time zone[]",
                ScalarType::TimestampTz => "timestamp with time zone[]",
                ScalarType::Interval => "interval[]",
                ScalarType::Uuid => "uuid[]",
                ScalarType::Jsonb => "jsonb[]",
                ScalarType::Array(_) => "anyarray",
            },
        }
    }

    /// The OID of the type in PostgreSQL's `pg_type`, sent in RowDescription.
    pub fn oid(&self) -> u32 {
        match self {
            ScalarType::Bool => 16,
            ScalarType::Int16 => 21,
            ScalarType::Int32 => 23,
            ScalarType::Int64 => 20,
            ScalarType::Float32 => 700,
            ScalarType::Float64 => 701,
            ScalarType::Numeric => 1700,
            ScalarType::String => 25,
            ScalarType::Bytes => 17,
            ScalarType::Date => 1082,
            ScalarType::Time => 1083,
            ScalarType::Timestamp => 1114,
            ScalarType::TimestampTz => 1184,
            ScalarType::Interval => 1186,
            ScalarType::Uuid => 2950,
            ScalarType::Jsonb => 3802,
            ScalarType::Array(e) => match e {
                ScalarType::Bool => 1000,
                ScalarType::Int16 => 1005,
                ScalarType::Int32 => 1007,
                ScalarType::Int64 => 1016,
                ScalarType::Float32 => 1021,
                ScalarType::Float64 => 1022,
                ScalarType::Numeric => 1231,
                ScalarType::String => 1009,
                ScalarType::Bytes => 1001,
                ScalarType::Date => 1182,
                ScalarType::Time => 1183,
                ScalarType::Timestamp => 1115,
                ScalarType::TimestampTz => 1185,
                ScalarType::Interval => 1187,
                ScalarType::Uuid => 2951,
                ScalarType::Jsonb => 3807,
                ScalarType::Array(_) => 2277,
            },
        }
    }

    /// The type with the given OID, if Freshet has it. `varchar` and `bpchar` map to text.
    pub fn from_oid(oid: u32) -> Option<ScalarType> {
        Some(match oid {
            16 => ScalarType::Bool,
            21 => ScalarType::Int16,
            23 => ScalarType::Int32,
            20 => ScalarType::Int64,
            700 => ScalarType::Float32,
            701 => ScalarType::Float64,
            1700 => ScalarType::Numeric,
            25 | 1043 | 1042 | 19 => ScalarType::String,
            17 => ScalarType::Bytes,
            1082 => ScalarType::Date,
            1083 => ScalarType::Time,
            1114 => ScalarType::Timestamp,
            1184 => ScalarType::TimestampTz,
            1186 => ScalarType::Interval,
            2950 => ScalarType::Uuid,
            3802 => ScalarType::Jsonb,
            // varchar[], bpchar[] and name[] are text[].
            1015 | 1014 | 1003 => ScalarType::String.array_of()?,
            _ => {
                return ELEMENT_TYPES
                    .iter()
                    .filter_map(|t| t.array_of())
                    .find(|t| t.oid() == oid)
            }
        })
    }

    /// The type a SQL type name denotes (`int`, `int4`, `varchar`, `timestamptz`, ...).
    pub fn from_sql_name(name: &str) -> Option<ScalarType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "bool" | "boolean" => ScalarType::Bool,
            "int2" | "smallint" => ScalarType::Int16,
            "int" | "int4" | "integer" => ScalarType::Int32,
            "int8" | "bigint" => ScalarType::Int64,
            "float4" | "real" => ScalarType::Float32,
            "float" | "float8" | "double precision" | "double" => ScalarType::Float64,
            "numeric" | "decimal" => ScalarType::Numeric,
            "text" | "varchar" | "character varying" | "char" | "character" | "bpchar"
            | "string" | "name" => ScalarType::String,
            "bytea" => ScalarType::Bytes,
            "date" => ScalarType::Date,
            "time" | "time without time zone" => ScalarType::Time,
            "timestamp" | "timestamp without time zone" => ScalarType::Timestamp,
            "timestamptz" | "timestamp with time zone" => ScalarType::TimestampTz,
            "interval" => ScalarType::Interval,
            "uuid" => ScalarType::Uuid,
            "jsonb" => ScalarType::Jsonb,
            _ => return None,
        })
    }

    /// Whether the type is one of the number types.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            ScalarType::Int16
                | ScalarType::Int32
                | ScalarType::Int64
                | ScalarType::Float32
                | ScalarType::Float64
                | ScalarType::Numeric
        )
    }

    /// Whether the type is an integer type.
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            ScalarType::Int16 | ScalarType::Int32 | ScalarType::Int64
        )
    }

    /// Wire size for RowDescription (`typlen`), -1 for variable length.
    pub fn typlen(&self) -> i16 {
        match self {
            ScalarType::Bool => 1,
            ScalarType::Int16 => 2,
            ScalarType::Int32 | ScalarType::Float32 | ScalarType::Date => 4,
            ScalarType::Int64
            | ScalarType::Float64
            | ScalarType::Time
            | ScalarType::Timestamp
            | ScalarType::TimestampTz => 8,
            ScalarType::Interval | ScalarType::Uuid => 16,
            ScalarType::Numeric
            | ScalarType::String
            | ScalarType::Bytes
            | ScalarType::Jsonb
            | ScalarType::Array(_) => -1,
        }
    }
}

impl fmt::Display for ScalarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One SQL value, borrowing variable-length data from the row it came from.
#[derive(Clone, Copy, Debug)]
pub enum Datum<'a> {
    Null,
    False,
    True,
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Numeric(Decimal),
    String(&'a str),
    Bytes(&'a [u8]),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 1970-01-01 00:00:00, no time zone.
    Timestamp(i64),
    /// Microseconds since 1970-01-01 00:00:00 UTC.
    TimestampTz(i64),
    Interval(Interval),
    Uuid(uuid::Uuid),
    Jsonb(Jsonb<'a>),
    /// A one-dimensional array: its elements packed as a row (see [`crate::row`]).
    Array(crate::row::Array<'a>),
}

impl<'a> Datum<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null)
    }

    pub fn from_bool(b: bool) -> Datum<'static> {
        if b {
            Datum::True
        } else {
            Datum::False
        }
    }

    /// The boolean value; panics on a non-boolean datum, which the type checker rules out.
    ///
    /// Evaluation never calls this on a value it has not matched as `True` or `False`
    /// (`NOT`, `AND`, `OR` and `CASE` match the datum and treat NULL and anything else
    /// without it), so only code that holds a typed boolean may use it.
    pub fn unwrap_bool(&self) -> bool {
        match self {
            Datum::True => true,
            Datum::False => false,
            other => panic!("expected a boolean datum, found {other:?}"),
        }
    }

    /// The type of a non-null datum.
    pub fn scalar_type(&self) -> Option<ScalarType> {
        Some(match self {
            Datum::Null => return None,
            Datum::False | Datum::True => ScalarType::Bool,
            Datum::Int16(_) => ScalarType::Int16,
            Datum::Int32(_) => ScalarType::Int32,
            Datum::Int64(_) => ScalarType::Int64,
            Datum::Float32(_) => ScalarType::Float32,
            Datum::Float64(_) => ScalarType::Float64,
            Datum::Numeric(_) => ScalarType::Numeric,
            Datum::String(_) => ScalarType::String,
            Datum::Bytes(_) => ScalarType::Bytes,
            Datum::Date(_) => ScalarType::Date,
            Datum::Time(_) => ScalarType::Time,
            Datum::Timestamp(_) => ScalarType::Timestamp,
            Datum::TimestampTz(_) => ScalarType::TimestampTz,
            Datum::Interval(_) => ScalarType::Interval,
            Datum::Uuid(_) => ScalarType::Uuid,
            Datum::Jsonb(_) => ScalarType::Jsonb,
            // The element type of the first non-null element; text for an array
            // without one (the planner knows the real type).
            Datum::Array(a) => a
                .iter()
                .find_map(|e| e.scalar_type())
                .unwrap_or(ScalarType::String)
                .array_of()?,
        })
    }

    fn rank(&self) -> u8 {
        match self {
            Datum::False | Datum::True => 0,
            Datum::Int16(_)
            | Datum::Int32(_)
            | Datum::Int64(_)
            | Datum::Float32(_)
            | Datum::Float64(_)
            | Datum::Numeric(_) => 1,
            Datum::String(_) => 2,
            Datum::Bytes(_) => 3,
            Datum::Date(_) => 4,
            Datum::Time(_) => 5,
            Datum::Timestamp(_) => 6,
            Datum::TimestampTz(_) => 7,
            Datum::Interval(_) => 8,
            Datum::Uuid(_) => 9,
            Datum::Jsonb(_) => 10,
            Datum::Array(_) => 11,
            Datum::Null => 12,
        }
    }
}

/// Compares two floats the way PostgreSQL does: NaN equals NaN and sorts last.
pub fn cmp_f64(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn cmp_numbers(a: &Datum, b: &Datum) -> Ordering {
    use Datum::*;
    fn as_i64(d: &Datum) -> Option<i64> {
        match d {
            Int16(v) => Some(*v as i64),
            Int32(v) => Some(*v as i64),
            Int64(v) => Some(*v),
            _ => None,
        }
    }
    fn as_f64(d: &Datum) -> f64 {
        match d {
            Int16(v) => *v as f64,
            Int32(v) => *v as f64,
            Int64(v) => *v as f64,
            Float32(v) => *v as f64,
            Float64(v) => *v,
            Numeric(v) => rust_decimal::prelude::ToPrimitive::to_f64(v).unwrap_or(f64::NAN),
            _ => f64::NAN,
        }
    }
    if let (Some(x), Some(y)) = (as_i64(a), as_i64(b)) {
        return x.cmp(&y);
    }
    match (a, b, as_i64(a), as_i64(b)) {
        (Numeric(x), Numeric(y), _, _) => x.cmp(y),
        (Numeric(x), _, _, Some(y)) => x.cmp(&Decimal::from(y)),
        (_, Numeric(y), Some(x), _) => Decimal::from(x).cmp(y),
        _ => cmp_f64(as_f64(a), as_f64(b)),
    }
}

impl PartialEq for Datum<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Datum<'_> {}

impl PartialOrd for Datum<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Datum<'_> {
    /// PostgreSQL's order: numbers compare across widths, NULL sorts last.
    fn cmp(&self, other: &Self) -> Ordering {
        use Datum::*;
        let (ra, rb) = (self.rank(), other.rank());
        if ra != rb {
            return ra.cmp(&rb);
        }
        match (self, other) {
            (Null, Null) => Ordering::Equal,
            (False | True, False | True) => self.unwrap_bool().cmp(&other.unwrap_bool()),
            (String(a), String(b)) => a.cmp(b),
            (Bytes(a), Bytes(b)) => a.cmp(b),
            (Date(a), Date(b)) => a.cmp(b),
            (Time(a), Time(b)) => a.cmp(b),
            (Timestamp(a), Timestamp(b)) => a.cmp(b),
            (TimestampTz(a), TimestampTz(b)) => a.cmp(b),
            (Interval(a), Interval(b)) => a.cmp(b),
            (Uuid(a), Uuid(b)) => a.cmp(b),
            (Jsonb(a), Jsonb(b)) => crate::jsonb::cmp(a, b),
            (Array(a), Array(b)) => a.iter().cmp(b.iter()),
            _ => cmp_numbers(self, other),
        }
    }
}

impl fmt::Display for Datum<'_> {
    /// PostgreSQL's text output format (`NULL` for null, which pgwire never prints).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Null => f.write_str("NULL"),
            other => f.write_str(&crate::strconv::format_datum(*other)),
        }
    }
}
