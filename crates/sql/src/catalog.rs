//! [`SqlCatalog`]: what the planner needs to know about catalog objects.
//!
//! The coordinator's catalog implements it; the planner never sees how objects are
//! stored.

use repr::{GlobalId, RelationDesc};

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
    /// A view's query, as SQL text.
    pub definition: Option<String>,
    /// The collection an index is on.
    pub on: Option<GlobalId>,
}

pub trait SqlCatalog {
    /// The item with this (already normalised, lowercase) name.
    fn resolve(&self, name: &str) -> Option<&CatalogItem>;
}
