//! [`SqlCatalog`]: what the planner needs to know about catalog objects.
//!
//! The coordinator's catalog implements it; the planner never sees how objects are
//! stored. A table's column types are its [`RelationDesc`]'s base types plus a
//! [`Typmod`] per column: `varchar(5)` is a `text` column whose writes are checked.

use expr::UnaryFunc;
use repr::{GlobalId, RelationDesc};
use serde::{Deserialize, Serialize};

/// The kind of a catalog item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    Table,
    View,
    MaterializedView,
    Index,
}

impl ItemKind {
    /// The kind's name in messages ("table", "materialized view").
    pub fn name(&self) -> &'static str {
        match self {
            ItemKind::Table => "table",
            ItemKind::View => "view",
            ItemKind::MaterializedView => "materialized view",
            ItemKind::Index => "index",
        }
    }
}

/// A named collection the planner can read.
#[derive(Clone, Debug)]
pub struct CatalogItem {
    pub id: GlobalId,
    pub name: String,
    pub kind: ItemKind,
    pub desc: RelationDesc,
    /// `DEFAULT` expressions of a table's columns as SQL text (`None`: NULL).
    pub defaults: Vec<Option<String>>,
    /// The type modifiers of a table's columns, by column (`None`: none). Empty for
    /// other items, and for tables from catalogs older than type modifiers.
    pub typmods: Vec<Option<Typmod>>,
    /// A view's query, as SQL text.
    pub definition: Option<String>,
    /// The collection an index is on.
    pub on: Option<GlobalId>,
}

impl CatalogItem {
    /// The type modifier of column `column`, if it has one.
    pub fn typmod(&self, column: usize) -> Option<Typmod> {
        self.typmods.get(column).copied().flatten()
    }
}

/// A type modifier: what PostgreSQL's `typmod` adds to a column's base type, such as
/// the 10 and 2 of `numeric(10,2)`. Values are coerced to it on explicit casts and on
/// assignment to a column (INSERT, UPDATE, defaults); the base type is what clients
/// see. The limits are PostgreSQL's and are checked by the planner when it reads a
/// type name ([`crate::query::parse_data_type_with_typmod`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Typmod {
    /// `numeric(precision, scale)`: precision 1..=1000, scale -1000..=1000.
    Numeric { precision: u16, scale: i16 },
    /// `varchar(length)`, `character varying(length)`: length 1..=10485760.
    Varchar { length: u32 },
    /// `char(length)`, `character(length)`, `bpchar(length)`; `char` alone is
    /// `char(1)`. Length 1..=10485760.
    Char { length: u32 },
    /// The fractional-second precision (0..=6) of `time(p)`, `timestamp(p)`,
    /// `timestamptz(p)` and `interval(p)`. Kept with the column, but not applied:
    /// values keep their microseconds (PostgreSQL rounds them to `p` digits).
    SecondsPrecision { precision: u8 },
}

impl Typmod {
    /// The function that coerces a value of the base type to this modifier: with
    /// `explicit`, a cast (strings are truncated), otherwise an assignment (a string
    /// too long fails with 22001 unless only spaces are cut). `None` if the modifier
    /// is not applied to values.
    pub fn coercion(&self, explicit: bool) -> Option<UnaryFunc> {
        match *self {
            Typmod::Numeric { precision, scale } => {
                Some(UnaryFunc::NumericTypmod { precision, scale })
            }
            Typmod::Varchar { length } => Some(UnaryFunc::VarcharTypmod { length, explicit }),
            Typmod::Char { length } => Some(UnaryFunc::CharTypmod { length, explicit }),
            Typmod::SecondsPrecision { .. } => None,
        }
    }
}

pub trait SqlCatalog {
    /// The item with this (already normalised, lowercase) name.
    fn resolve(&self, name: &str) -> Option<&CatalogItem>;
}
