//! The durable catalog: every table's name, columns, defaults and persist shard.
//!
//! The catalog is one versioned value in the consensus store under the key `catalog`.
//! Every change is a compare-and-set against the version read at startup, so two
//! environmentd processes on the same store cannot both change it: the second one's
//! write fails rather than forking history.

use std::collections::BTreeMap;
use std::sync::Arc;

use persist::location::{CasResult, Consensus, SeqNo, VersionedData};
use repr::{GlobalId, RelationDesc};
use serde::{Deserialize, Serialize};
use sql::catalog::{CatalogItem, ItemKind, SqlCatalog};

const CATALOG_KEY: &str = "catalog";
/// The version byte of the catalog's encoding.
const CATALOG_FORMAT: u8 = 1;

/// A table as the catalog stores it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TableEntry {
    pub id: GlobalId,
    pub name: String,
    pub desc: RelationDesc,
    pub defaults: Vec<Option<String>>,
    /// The persist shard holding the table's rows (`ShardId` text form).
    pub shard_id: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct CatalogState {
    next_id: u64,
    tables: BTreeMap<GlobalId, TableEntry>,
}

/// The catalog, as loaded and as changed since.
pub struct Catalog {
    consensus: Arc<dyn Consensus>,
    seqno: Option<SeqNo>,
    state: CatalogState,
    /// The planner's view of the tables, by name.
    items: BTreeMap<String, CatalogItem>,
}

impl Catalog {
    /// Loads the catalog from the consensus store (empty if there is none yet).
    pub fn open(consensus: Arc<dyn Consensus>) -> Result<Catalog, String> {
        let head = consensus.head(CATALOG_KEY).map_err(|e| e.to_string())?;
        let (seqno, state) = match head {
            None => (None, CatalogState::default()),
            Some(data) => {
                let state = persist::codec::decode_versioned::<CatalogState>(
                    "catalog",
                    CATALOG_FORMAT,
                    &data.data,
                )
                .map_err(|e| e.to_string())?;
                (Some(data.seqno), state)
            }
        };
        let mut catalog = Catalog {
            consensus,
            seqno,
            state,
            items: BTreeMap::new(),
        };
        catalog.rebuild_items();
        Ok(catalog)
    }

    fn rebuild_items(&mut self) {
        self.items = self
            .state
            .tables
            .values()
            .map(|t| {
                let item = CatalogItem {
                    id: t.id,
                    name: t.name.clone(),
                    kind: ItemKind::Table,
                    desc: t.desc.clone(),
                    defaults: t.defaults.clone(),
                };
                (t.name.clone(), item)
            })
            .collect();
    }

    /// Applies `change` to a copy of the state and makes it durable; on failure nothing
    /// changes.
    fn transact(
        &mut self,
        change: impl FnOnce(&mut CatalogState) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut next = self.state.clone();
        change(&mut next)?;
        let data = persist::codec::encode_versioned("catalog", CATALOG_FORMAT, &next)
            .map_err(|e| e.to_string())?;
        let seqno = self.seqno.map(SeqNo::next).unwrap_or(SeqNo(0));
        match self
            .consensus
            .compare_and_set(CATALOG_KEY, self.seqno, VersionedData { seqno, data })
            .map_err(|e| e.to_string())?
        {
            CasResult::Committed => {
                self.seqno = Some(seqno);
                self.state = next;
                self.rebuild_items();
                // Old versions are no longer needed.
                let _ = self.consensus.truncate(CATALOG_KEY, seqno);
                Ok(())
            }
            CasResult::ExpectationMismatch => {
                Err("the catalog was changed by another environmentd; restart to continue".into())
            }
        }
    }

    /// Creates a table; returns its entry.
    pub fn create_table(
        &mut self,
        name: String,
        desc: RelationDesc,
        defaults: Vec<Option<String>>,
        shard_id: String,
    ) -> Result<TableEntry, String> {
        let mut created = None;
        self.transact(|state| {
            state.next_id += 1;
            let entry = TableEntry {
                id: GlobalId::User(state.next_id),
                name,
                desc,
                defaults,
                shard_id,
            };
            state.tables.insert(entry.id, entry.clone());
            created = Some(entry);
            Ok(())
        })?;
        Ok(created.expect("set by the transaction"))
    }

    pub fn drop_table(&mut self, id: GlobalId) -> Result<(), String> {
        self.transact(|state| {
            state.tables.remove(&id);
            Ok(())
        })
    }

    pub fn tables(&self) -> impl Iterator<Item = &TableEntry> {
        self.state.tables.values()
    }

    pub fn table(&self, id: GlobalId) -> Option<&TableEntry> {
        self.state.tables.get(&id)
    }
}

impl SqlCatalog for Catalog {
    fn resolve(&self, name: &str) -> Option<&CatalogItem> {
        self.items.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repr::ScalarType;

    #[test]
    fn survives_reopen_and_rejects_a_stale_writer() {
        let consensus: Arc<dyn Consensus> = Arc::new(persist::mem::MemConsensus::new());
        let mut a = Catalog::open(Arc::clone(&consensus)).unwrap();
        let desc = RelationDesc::empty().with_column("a", ScalarType::Int32.nullable(true));
        let t = a
            .create_table(
                "t".into(),
                desc,
                vec![None],
                "s00000000-0000-0000-0000-000000000000".into(),
            )
            .unwrap();
        let mut b = Catalog::open(Arc::clone(&consensus)).unwrap();
        assert_eq!(b.resolve("t").map(|i| i.id), Some(t.id));
        // `a` is now behind `b` only after `b` writes.
        b.drop_table(t.id).unwrap();
        assert!(a.drop_table(t.id).is_err());
        let c = Catalog::open(consensus).unwrap();
        assert!(c.resolve("t").is_none());
    }
}
