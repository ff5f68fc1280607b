//! [`SqlCatalog`]: what the planner needs to know about catalog objects.
//!
//! The coordinator's catalog implements it; the planner never sees how objects are
//! stored.

use repr::{GlobalId, RelationDesc};

/// The kind of a catalog item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    Table,
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
}

pub trait SqlCatalog {
    /// The item with this (already normalised, lowercase) name.
    fn resolve(&self, name: &str) -> Option<&CatalogItem>;
}
