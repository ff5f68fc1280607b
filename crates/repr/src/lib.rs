//! The data model shared by every Freshet crate.
//!
//! Module map:
//! - [`scalar`]: [`ScalarType`] with PostgreSQL names and OIDs, and [`Datum`], one value.
//! - [`row`]: the packed [`Row`] (tag byte + payload per datum) and [`RowPacker`].
//! - [`relation`]: [`ColumnType`], [`RelationType`] and [`RelationDesc`] (names + types).
//! - [`strconv`]: PostgreSQL text input and output for every type.
//! - [`adt`]: the abstract data types that are more than a machine word (interval).
//! - [`jsonb`]: jsonb values, owned ([`jsonb::JsonValue`]) and packed ([`jsonb::Jsonb`]).
//! - [`error`]: [`EvalError`], the errors of evaluating expressions, with SQLSTATEs.
//! - [`GlobalId`], [`Timestamp`] and [`Diff`]: the names and the time of collections.
//!
//! A collection is a multiset of `(Row, Timestamp, Diff)` updates. Timestamps are
//! milliseconds since the Unix epoch; a diff says how many copies of the row are added
//! (positive) or removed (negative) at that time.

pub mod adt;
pub mod error;
pub mod jsonb;
pub mod relation;
pub mod row;
pub mod scalar;
pub mod strconv;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use adt::Interval;
pub use error::EvalError;
pub use relation::{ColumnType, RelationDesc, RelationType};
pub use row::{Array, Row, RowPacker};
pub use scalar::{Datum, ScalarType};
pub use uuid;

/// Milliseconds since the Unix epoch; the time of every update in every collection.
pub type Timestamp = u64;

/// The change in multiplicity of a row: `+1` inserts a copy, `-1` retracts one.
pub type Diff = i64;

/// The identifier of a catalog object or a collection a dataflow reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GlobalId {
    /// Objects built into the system (introspection relations).
    System(u64),
    /// Objects users create (tables, views).
    User(u64),
    /// Objects that live for one statement (the dataflow behind one SELECT).
    Transient(u64),
}

impl fmt::Display for GlobalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobalId::System(id) => write!(f, "s{id}"),
            GlobalId::User(id) => write!(f, "u{id}"),
            GlobalId::Transient(id) => write!(f, "t{id}"),
        }
    }
}

/// Milliseconds since the Unix epoch, now, by the system clock.
pub fn now_millis() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Timestamp)
        .unwrap_or(0)
}
