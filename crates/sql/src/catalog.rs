//! [`SqlCatalog`]: what the planner needs to know about catalog objects.
//!
//! The coordinator's catalog implements it; the planner never sees how objects are
//! stored. A table's column types are its [`RelationDesc`]'s base types plus a
//! [`Typmod`] per column: `varchar(5)` is a `text` column whose writes are checked.
//!
//! Names are PostgreSQL's three levels, `database.schema.item` ([`QualifiedName`]).
//! A name written with fewer parts is completed from the session's [`NameContext`]:
//! the current database, then the first schema of `search_path` that holds the item
//! (see `query::resolve_item`). The default catalog is database `freshet` with
//! schema `public`; catalogs from before schemas have every item there.

use std::fmt;

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

/// The database a session is in when it names none, and the only one of catalogs
/// from before databases.
pub const DEFAULT_DATABASE: &str = "freshet";
/// The schema of `search_path`'s default, and the only one of catalogs from before
/// schemas.
pub const DEFAULT_SCHEMA: &str = "public";

/// An item's full name: `database.schema.item`, each part normalised.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QualifiedName {
    pub database: String,
    pub schema: String,
    pub item: String,
}

impl QualifiedName {
    pub fn new(
        database: impl Into<String>,
        schema: impl Into<String>,
        item: impl Into<String>,
    ) -> Self {
        QualifiedName {
            database: database.into(),
            schema: schema.into(),
            item: item.into(),
        }
    }

    /// `item` in `freshet.public`.
    pub fn in_default_schema(item: impl Into<String>) -> Self {
        QualifiedName::new(DEFAULT_DATABASE, DEFAULT_SCHEMA, item)
    }

    /// The name as SQL text, each part quoted where it must be: `freshet.public."T"`.
    /// [`QualifiedName::parse_sql`] reads it back.
    pub fn to_sql(&self) -> String {
        format!(
            "{}.{}.{}",
            quote_ident(&self.database),
            quote_ident(&self.schema),
            quote_ident(&self.item)
        )
    }

    /// Reads a name written by [`QualifiedName::to_sql`]; a name of one part is in the
    /// default schema. `None` for two parts, four or more, or a broken quote.
    pub fn parse_sql(text: &str) -> Option<QualifiedName> {
        let mut parts = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            let mut part = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next()? {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            part.push('"');
                        }
                        '"' => break,
                        c => part.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| *c != '.') {
                    part.push(c);
                }
            }
            parts.push(part);
            match chars.next() {
                None => break,
                Some('.') => {}
                Some(_) => return None,
            }
        }
        match <[String; 3]>::try_from(parts) {
            Ok([database, schema, item]) => Some(QualifiedName::new(database, schema, item)),
            Err(parts) if parts.len() == 1 => {
                Some(QualifiedName::in_default_schema(parts[0].clone()))
            }
            Err(_) => None,
        }
    }
}

/// Displays as the item's name alone: PostgreSQL's messages name a relation so
/// (`relation "t" already exists`). [`QualifiedName::to_sql`] is the full name.
impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.item)
    }
}

/// `ident`, double-quoted unless it is lowercase letters, digits, `_` and `$` not
/// starting with a digit or `$` (what an unquoted name normalises to).
pub fn quote_ident(ident: &str) -> String {
    let plain = ident
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && ident
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        ident.to_string()
    } else {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }
}

/// Where a statement's unqualified names are looked up: PostgreSQL's current
/// database and `search_path` (its schemas in order; ones that do not exist are
/// skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameContext {
    pub database: String,
    pub search_path: Vec<String>,
}

impl Default for NameContext {
    /// `freshet` with `search_path = public`.
    fn default() -> Self {
        NameContext {
            database: DEFAULT_DATABASE.into(),
            search_path: vec![DEFAULT_SCHEMA.into()],
        }
    }
}

impl NameContext {
    /// The context of a session in `database` whose `search_path` variable is
    /// `search_path` (PostgreSQL's text form: `a, "B", $user`). `$user` stands for
    /// the schema named like `user`.
    pub fn from_session(database: &str, search_path: &str, user: &str) -> Self {
        let search_path = search_path
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    Some(quoted) => quoted.replace("\"\"", "\""),
                    None if s == "$user" => user.to_string(),
                    None => s.to_lowercase(),
                },
            )
            .collect();
        NameContext {
            database: database.to_string(),
            search_path,
        }
    }
}

/// The catalog as the planner sees it.
///
/// Only [`SqlCatalog::resolve`] is required: the other methods' defaults describe a
/// catalog with one database (`freshet`) holding one schema (`public`), which is
/// what planner tests use.
pub trait SqlCatalog {
    /// The item with this name: a full name as [`QualifiedName::to_sql`] writes it,
    /// or an item name alone for an item in `freshet.public`.
    fn resolve(&self, name: &str) -> Option<&CatalogItem>;

    /// The item with this full name.
    fn item(&self, name: &QualifiedName) -> Option<&CatalogItem> {
        if name.database == DEFAULT_DATABASE && name.schema == DEFAULT_SCHEMA {
            self.resolve(&name.item)
        } else {
            None
        }
    }

    /// Every database, by name.
    fn databases(&self) -> Vec<String> {
        vec![DEFAULT_DATABASE.into()]
    }

    /// Every schema of `database`, by name (none if it does not exist).
    fn schemas(&self, database: &str) -> Vec<String> {
        if database == DEFAULT_DATABASE {
            vec![DEFAULT_SCHEMA.into()]
        } else {
            vec![]
        }
    }

    /// The items in a schema, by name.
    fn items_in_schema(&self, _database: &str, _schema: &str) -> Vec<&CatalogItem> {
        vec![]
    }

    /// The full name of the item with this id.
    fn name_of(&self, _id: GlobalId) -> Option<QualifiedName> {
        None
    }

    /// The session's current database and search path.
    fn name_context(&self) -> NameContext {
        NameContext::default()
    }

    /// Whether a one-shot read of the view `id` should read one of its indexes rather
    /// than plan its query in place.
    fn reads_view_index(&self, _id: GlobalId) -> bool {
        false
    }
}
