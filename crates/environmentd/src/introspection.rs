//! Introspection relations: what the system knows about its objects, readable with SQL
//! in the schema `mz_internal` of every database (Materialize's names and columns).
//!
//! - `mz_internal.mz_storage_shards (object_id, shard_id)`: the persist shard of every
//!   table and materialized view.
//! - `mz_internal.mz_frontiers (object_id, read_frontier, write_frontier)`: the since
//!   and upper of every table, materialized view and index (an index's read frontier
//!   is how far it may compact; its write frontier what the replica last reported).
//!
//! - `mz_internal.mz_arrangement_sizes (object_id, records, batches)`: the updates and
//!   batches each index's arrangement holds on the replica (all workers, rows and
//!   errors), as last reported (once a second, when it changed). A dropped index's
//!   row goes with it.
//!
//! They are catalog items of kind table with `System` ids that have no storage: the
//! coordinator replaces each read of one with its current rows (a constant) before
//! planning the dataflow or peek, so a `SELECT` sees them at the moment it runs. They
//! cannot be written, dropped, indexed, materialized or subscribed to.

use repr::{Datum, GlobalId, RelationDesc, Row, ScalarType};

/// The schema the relations live in, in every database.
pub const SCHEMA: &str = "mz_internal";

/// One introspection relation.
pub struct Builtin {
    pub id: GlobalId,
    pub name: &'static str,
    pub desc: RelationDesc,
}

pub const STORAGE_SHARDS: GlobalId = GlobalId::System(1);
pub const FRONTIERS: GlobalId = GlobalId::System(2);
pub const ARRANGEMENT_SIZES: GlobalId = GlobalId::System(3);

/// Every introspection relation.
pub fn builtins() -> Vec<Builtin> {
    let text = || ScalarType::String.nullable(false);
    let frontier = || ScalarType::Numeric.nullable(true);
    vec![
        Builtin {
            id: STORAGE_SHARDS,
            name: "mz_storage_shards",
            desc: RelationDesc::empty()
                .with_column("object_id", text())
                .with_column("shard_id", text()),
        },
        Builtin {
            id: FRONTIERS,
            name: "mz_frontiers",
            desc: RelationDesc::empty()
                .with_column("object_id", text())
                .with_column("read_frontier", frontier())
                .with_column("write_frontier", frontier()),
        },
        Builtin {
            id: ARRANGEMENT_SIZES,
            name: "mz_arrangement_sizes",
            desc: RelationDesc::empty()
                .with_column("object_id", text())
                .with_column("records", ScalarType::Int64.nullable(false))
                .with_column("batches", ScalarType::Int64.nullable(false)),
        },
    ]
}

/// A frontier as `mz_frontiers` shows it: NULL for the empty frontier.
pub fn frontier_datum(ts: Option<u64>) -> Datum<'static> {
    match ts {
        Some(ts) => Datum::Numeric(rust_decimal::Decimal::from(ts)),
        None => Datum::Null,
    }
}

/// A row of text columns.
pub fn text_row(values: &[&str]) -> Row {
    let datums: Vec<Datum> = values.iter().map(|v| Datum::String(v)).collect();
    Row::pack_slice(&datums)
}

impl crate::coord::Coordinator {
    /// Every index in the catalog with its arrangement's (records, batches), zeros
    /// until the replica first reports.
    fn arrangement_sizes(&self) -> Vec<(GlobalId, u64, u64)> {
        self.catalog
            .entries()
            .filter(|e| matches!(e, crate::catalog::CatalogEntry::Index(_)))
            .map(|e| {
                let (records, batches) = self
                    .arrangement_sizes
                    .get(&e.id())
                    .copied()
                    .unwrap_or((0, 0));
                (e.id(), records, batches)
            })
            .collect()
    }

    /// The current rows of an introspection relation.
    pub(crate) fn introspection_rows(&self, id: GlobalId) -> Vec<Row> {
        match id {
            STORAGE_SHARDS => self
                .storage_shards()
                .into_iter()
                .map(|(object, shard)| text_row(&[&object.to_string(), &shard]))
                .collect(),
            FRONTIERS => self
                .frontiers()
                .into_iter()
                .map(|(object, since, upper)| {
                    let object = object.to_string();
                    Row::pack_slice(&[
                        Datum::String(&object),
                        frontier_datum(since),
                        frontier_datum(upper),
                    ])
                })
                .collect(),
            ARRANGEMENT_SIZES => self
                .arrangement_sizes()
                .into_iter()
                .map(|(object, records, batches)| {
                    let object = object.to_string();
                    Row::pack_slice(&[
                        Datum::String(&object),
                        Datum::Int64(i64::try_from(records).unwrap_or(i64::MAX)),
                        Datum::Int64(i64::try_from(batches).unwrap_or(i64::MAX)),
                    ])
                })
                .collect(),
            _ => vec![],
        }
    }
}
