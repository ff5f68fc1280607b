//! Introspection relations: what the system knows about its objects, readable with SQL
//! in the schema `mz_internal` of every database (Materialize's names and columns).
//!
//! - `mz_internal.mz_storage_shards (object_id, shard_id)`: the persist shard of every
//!   table and materialized view.
//! - `mz_internal.mz_frontiers (object_id, read_frontier, write_frontier)`: the since
//!   and upper of every table, materialized view and index (an index's read frontier
//!   is how far it may compact; its write frontier what the replica last reported).
//!
//! - `mz_internal.mz_arrangement_sizes (object_id, records, batches, size)`: the
//!   updates, batches and bytes each index's arrangement holds on the replica (all
//!   workers, rows and errors), as last reported (once a second, when it changed). A
//!   dropped index's row goes with it.
//! - `mz_internal.mz_dataflows (id, name)`, `mz_internal.mz_dataflow_operators (id,
//!   name)`, `mz_internal.mz_dataflow_operator_dataflows (id, name, dataflow_id,
//!   dataflow_name)` and `mz_internal.mz_scheduling_elapsed (id, elapsed_ns)`: the
//!   replica's live timely dataflows and operators, and how long each operator has been
//!   scheduled (summed over workers; a scope's time includes its operators'), as last
//!   reported (once a second, when it changed).
//!
//! - `mz_internal.mz_compute_as_ofs (object_id, as_of)`: the time from which the
//!   dataflow maintaining each index and materialized view computes. A materialized
//!   view's dataflow resumes after a restart just below its shard's upper.
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
pub const COMPUTE_AS_OFS: GlobalId = GlobalId::System(4);
pub const DATAFLOWS: GlobalId = GlobalId::System(5);
pub const DATAFLOW_OPERATORS: GlobalId = GlobalId::System(6);
pub const DATAFLOW_OPERATOR_DATAFLOWS: GlobalId = GlobalId::System(7);
pub const SCHEDULING_ELAPSED: GlobalId = GlobalId::System(8);

/// Every introspection relation.
pub fn builtins() -> Vec<Builtin> {
    let text = || ScalarType::String.nullable(false);
    let frontier = || ScalarType::Numeric.nullable(true);
    let id = || ScalarType::Int64.nullable(false);
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
                .with_column("batches", ScalarType::Int64.nullable(false))
                .with_column("size", ScalarType::Int64.nullable(false)),
        },
        Builtin {
            id: COMPUTE_AS_OFS,
            name: "mz_compute_as_ofs",
            desc: RelationDesc::empty()
                .with_column("object_id", text())
                .with_column("as_of", ScalarType::Numeric.nullable(false)),
        },
        Builtin {
            id: DATAFLOWS,
            name: "mz_dataflows",
            desc: RelationDesc::empty()
                .with_column("id", id())
                .with_column("name", text()),
        },
        Builtin {
            id: DATAFLOW_OPERATORS,
            name: "mz_dataflow_operators",
            desc: RelationDesc::empty()
                .with_column("id", id())
                .with_column("name", text()),
        },
        Builtin {
            id: DATAFLOW_OPERATOR_DATAFLOWS,
            name: "mz_dataflow_operator_dataflows",
            desc: RelationDesc::empty()
                .with_column("id", id())
                .with_column("name", text())
                .with_column("dataflow_id", id())
                .with_column("dataflow_name", text()),
        },
        Builtin {
            id: SCHEDULING_ELAPSED,
            name: "mz_scheduling_elapsed",
            desc: RelationDesc::empty()
                .with_column("id", id())
                .with_column("elapsed_ns", ScalarType::Numeric.nullable(false)),
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

/// A count or id as a `bigint`.
fn int(n: u64) -> Datum<'static> {
    Datum::Int64(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A row of text columns.
pub fn text_row(values: &[&str]) -> Row {
    let datums: Vec<Datum> = values.iter().map(|v| Datum::String(v)).collect();
    Row::pack_slice(&datums)
}

impl crate::coord::Coordinator {
    /// Every index in the catalog with its arrangement's (records, batches, bytes),
    /// zeros until the replica first reports.
    fn arrangement_sizes(&self) -> Vec<(GlobalId, u64, u64, u64)> {
        self.catalog
            .entries()
            .filter(|e| matches!(e, crate::catalog::CatalogEntry::Index(_)))
            .map(|e| {
                let (records, batches, bytes) = self
                    .arrangement_sizes
                    .get(&e.id())
                    .copied()
                    .unwrap_or((0, 0, 0));
                (e.id(), records, batches, bytes)
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
                .map(|(object, records, batches, bytes)| {
                    let object = object.to_string();
                    Row::pack_slice(&[
                        Datum::String(&object),
                        int(records),
                        int(batches),
                        int(bytes),
                    ])
                })
                .collect(),
            DATAFLOWS => self
                .operators
                .iter()
                .filter(|op| op.address.len() == 1)
                .map(|op| Row::pack_slice(&[int(op.address[0]), Datum::String(&op.name)]))
                .collect(),
            DATAFLOW_OPERATORS => self
                .operators
                .iter()
                .map(|op| Row::pack_slice(&[int(op.id), Datum::String(&op.name)]))
                .collect(),
            DATAFLOW_OPERATOR_DATAFLOWS => {
                let dataflows: std::collections::BTreeMap<u64, &str> = self
                    .operators
                    .iter()
                    .filter(|op| op.address.len() == 1)
                    .map(|op| (op.address[0], op.name.as_str()))
                    .collect();
                self.operators
                    .iter()
                    .filter_map(|op| {
                        let dataflow = *op.address.first()?;
                        let dataflow_name = dataflows.get(&dataflow)?;
                        Some(Row::pack_slice(&[
                            int(op.id),
                            Datum::String(&op.name),
                            int(dataflow),
                            Datum::String(dataflow_name),
                        ]))
                    })
                    .collect()
            }
            SCHEDULING_ELAPSED => self
                .operators
                .iter()
                .map(|op| {
                    Row::pack_slice(&[
                        int(op.id),
                        Datum::Numeric(rust_decimal::Decimal::from(op.elapsed_ns)),
                    ])
                })
                .collect(),
            COMPUTE_AS_OFS => self
                .catalog
                .entries()
                .filter_map(|e| {
                    let as_of = self.compute_as_ofs.get(&e.id())?;
                    let object = e.id().to_string();
                    Some(Row::pack_slice(&[
                        Datum::String(&object),
                        frontier_datum(Some(*as_of)),
                    ]))
                })
                .collect(),
            _ => vec![],
        }
    }
}
