//! The shape of a relation: column types ([`RelationType`]) and names ([`RelationDesc`]).

use serde::{Deserialize, Serialize};

use crate::scalar::ScalarType;

/// The type of one column: a scalar type and whether it may hold NULL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ColumnType {
    pub scalar_type: ScalarType,
    pub nullable: bool,
}

impl ScalarType {
    /// This type as a column type with the given nullability.
    pub fn nullable(self, nullable: bool) -> ColumnType {
        ColumnType {
            scalar_type: self,
            nullable,
        }
    }
}

/// The column types of a relation, and the sets of columns known to be unique keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RelationType {
    pub column_types: Vec<ColumnType>,
    pub keys: Vec<Vec<usize>>,
}

impl RelationType {
    pub fn new(column_types: Vec<ColumnType>) -> Self {
        RelationType {
            column_types,
            keys: Vec::new(),
        }
    }

    pub fn arity(&self) -> usize {
        self.column_types.len()
    }
}

/// A relation's column names beside its types: what a user sees of a table or a query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RelationDesc {
    pub typ: RelationType,
    pub names: Vec<String>,
}

impl RelationDesc {
    pub fn new(typ: RelationType, names: Vec<String>) -> Self {
        assert_eq!(
            typ.arity(),
            names.len(),
            "a relation desc names every column"
        );
        RelationDesc { typ, names }
    }

    pub fn empty() -> Self {
        RelationDesc::default()
    }

    /// Appends a column.
    pub fn with_column(mut self, name: impl Into<String>, typ: ColumnType) -> Self {
        self.names.push(name.into());
        self.typ.column_types.push(typ);
        self
    }

    pub fn arity(&self) -> usize {
        self.names.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &ColumnType)> {
        self.names.iter().zip(self.typ.column_types.iter())
    }

    /// The position of the column with the given name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}
