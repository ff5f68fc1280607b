//! The durable catalog: tables (columns, defaults, type modifiers, persist shard),
//! views (their query) and indexes (the collection and key they arrange).
//!
//! The catalog is one versioned value in the consensus store under the key `catalog`.
//! Every change is a compare-and-set against the version read at startup, so two
//! environmentd processes on the same store cannot both change it: the second one's
//! write fails rather than forking history.

use std::collections::BTreeMap;
use std::sync::Arc;

use expr::MirScalarExpr;
use persist::location::{CasResult, Consensus, SeqNo, VersionedData};
use repr::{GlobalId, RelationDesc};
use serde::{Deserialize, Serialize};
use sql::catalog::{CatalogItem, ItemKind, SqlCatalog, Typmod};

const CATALOG_KEY: &str = "catalog";
/// The version byte of the catalog's encoding. Version 1 held only tables, version 2
/// tables without type modifiers; both are read and upgraded on the next write.
const CATALOG_FORMAT: u8 = 3;
const CATALOG_FORMAT_V2: u8 = 2;
const CATALOG_FORMAT_V1: u8 = 1;

/// A table as the catalog stores it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TableEntry {
    pub id: GlobalId,
    pub name: String,
    pub desc: RelationDesc,
    pub defaults: Vec<Option<String>>,
    /// Each column's type modifier (`numeric(10,2)`, `varchar(5)`), by column.
    pub typmods: Vec<Option<Typmod>>,
    /// The persist shard holding the table's rows (`ShardId` text form).
    pub shard_id: String,
}

/// A table in formats 1 and 2, before type modifiers.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TableEntryV2 {
    id: GlobalId,
    name: String,
    desc: RelationDesc,
    defaults: Vec<Option<String>>,
    shard_id: String,
}

impl From<TableEntryV2> for TableEntry {
    /// Columns of tables created before type modifiers have none.
    fn from(t: TableEntryV2) -> Self {
        TableEntry {
            typmods: vec![None; t.desc.arity()],
            id: t.id,
            name: t.name,
            desc: t.desc,
            defaults: t.defaults,
            shard_id: t.shard_id,
        }
    }
}

/// A view: a named query, planned where it is used.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ViewEntry {
    pub id: GlobalId,
    pub name: String,
    pub desc: RelationDesc,
    /// The query as SQL text.
    pub sql: String,
    pub depends_on: Vec<GlobalId>,
}

/// An index: an arrangement of a table or view by key expressions, maintained by the
/// compute replica while it exists.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexEntry {
    pub id: GlobalId,
    pub name: String,
    pub on: GlobalId,
    pub keys: Vec<MirScalarExpr>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CatalogEntry {
    Table(TableEntry),
    View(ViewEntry),
    Index(IndexEntry),
    // New variants go last: bincode encodes the variant's position.
    MaterializedView(MaterializedViewEntry),
}

/// A materialized view: a query maintained by a dataflow that writes its result to a
/// persist shard; reads come from the shard.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MaterializedViewEntry {
    pub id: GlobalId,
    pub name: String,
    pub desc: RelationDesc,
    pub sql: String,
    pub depends_on: Vec<GlobalId>,
    /// The shard the view's contents are written to (`ShardId` text form).
    pub shard_id: String,
}

impl CatalogEntry {
    pub fn id(&self) -> GlobalId {
        match self {
            CatalogEntry::Table(t) => t.id,
            CatalogEntry::View(v) => v.id,
            CatalogEntry::Index(i) => i.id,
            CatalogEntry::MaterializedView(m) => m.id,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            CatalogEntry::Table(t) => &t.name,
            CatalogEntry::View(v) => &v.name,
            CatalogEntry::Index(i) => &i.name,
            CatalogEntry::MaterializedView(m) => &m.name,
        }
    }

    /// The objects this one cannot exist without.
    pub fn depends_on(&self) -> Vec<GlobalId> {
        match self {
            CatalogEntry::Table(_) => vec![],
            CatalogEntry::View(v) => v.depends_on.clone(),
            CatalogEntry::Index(i) => vec![i.on],
            CatalogEntry::MaterializedView(m) => m.depends_on.clone(),
        }
    }

    pub fn kind(&self) -> ItemKind {
        match self {
            CatalogEntry::Table(_) => ItemKind::Table,
            CatalogEntry::View(_) => ItemKind::View,
            CatalogEntry::Index(_) => ItemKind::Index,
            CatalogEntry::MaterializedView(_) => ItemKind::MaterializedView,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct CatalogState {
    next_id: u64,
    entries: BTreeMap<GlobalId, CatalogEntry>,
}

/// Format 2: as format 3, with tables without type modifiers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct CatalogStateV2 {
    next_id: u64,
    entries: BTreeMap<GlobalId, CatalogEntryV2>,
}

/// [`CatalogEntry`] in format 2 (bincode encodes the variant by its position: keep
/// the order).
#[derive(Clone, Debug, Serialize, Deserialize)]
enum CatalogEntryV2 {
    Table(TableEntryV2),
    View(ViewEntry),
    Index(IndexEntry),
}

impl From<CatalogEntryV2> for CatalogEntry {
    fn from(e: CatalogEntryV2) -> Self {
        match e {
            CatalogEntryV2::Table(t) => CatalogEntry::Table(t.into()),
            CatalogEntryV2::View(v) => CatalogEntry::View(v),
            CatalogEntryV2::Index(i) => CatalogEntry::Index(i),
        }
    }
}

/// Format 1: tables only.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct CatalogStateV1 {
    next_id: u64,
    tables: BTreeMap<GlobalId, TableEntryV2>,
}

/// The catalog, as loaded and as changed since.
pub struct Catalog {
    consensus: Arc<dyn Consensus>,
    seqno: Option<SeqNo>,
    state: CatalogState,
    /// The planner's view of the objects, by name.
    items: BTreeMap<String, CatalogItem>,
}

impl Catalog {
    /// Loads the catalog from the consensus store (empty if there is none yet).
    pub fn open(consensus: Arc<dyn Consensus>) -> Result<Catalog, String> {
        let head = consensus.head(CATALOG_KEY).map_err(|e| e.to_string())?;
        let (seqno, state) = match head {
            None => (None, CatalogState::default()),
            Some(data) if data.data.first() == Some(&CATALOG_FORMAT_V1) => {
                let v1: CatalogStateV1 =
                    persist::codec::decode_versioned("catalog", CATALOG_FORMAT_V1, &data.data)
                        .map_err(|e| e.to_string())?;
                let entries = v1
                    .tables
                    .into_iter()
                    .map(|(id, t)| (id, CatalogEntry::Table(t.into())))
                    .collect();
                (
                    Some(data.seqno),
                    CatalogState {
                        next_id: v1.next_id,
                        entries,
                    },
                )
            }
            Some(data) if data.data.first() == Some(&CATALOG_FORMAT_V2) => {
                let v2: CatalogStateV2 =
                    persist::codec::decode_versioned("catalog", CATALOG_FORMAT_V2, &data.data)
                        .map_err(|e| e.to_string())?;
                let entries = v2
                    .entries
                    .into_iter()
                    .map(|(id, e)| (id, e.into()))
                    .collect();
                (
                    Some(data.seqno),
                    CatalogState {
                        next_id: v2.next_id,
                        entries,
                    },
                )
            }
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
            .entries
            .values()
            .map(|e| {
                let (desc, defaults, typmods, definition, on) = match e {
                    CatalogEntry::Table(t) => (
                        t.desc.clone(),
                        t.defaults.clone(),
                        t.typmods.clone(),
                        None,
                        None,
                    ),
                    CatalogEntry::View(v) => {
                        (v.desc.clone(), vec![], vec![], Some(v.sql.clone()), None)
                    }
                    CatalogEntry::MaterializedView(m) => {
                        (m.desc.clone(), vec![], vec![], Some(m.sql.clone()), None)
                    }
                    CatalogEntry::Index(i) => {
                        let desc = self
                            .state
                            .entries
                            .get(&i.on)
                            .map(|o| self.desc_of(o))
                            .unwrap_or_default();
                        (desc, vec![], vec![], None, Some(i.on))
                    }
                };
                let item = CatalogItem {
                    id: e.id(),
                    name: e.name().to_string(),
                    kind: e.kind(),
                    desc,
                    defaults,
                    typmods,
                    definition,
                    on,
                };
                (e.name().to_string(), item)
            })
            .collect();
    }

    fn desc_of(&self, entry: &CatalogEntry) -> RelationDesc {
        match entry {
            CatalogEntry::Table(t) => t.desc.clone(),
            CatalogEntry::View(v) => v.desc.clone(),
            CatalogEntry::MaterializedView(m) => m.desc.clone(),
            CatalogEntry::Index(_) => RelationDesc::empty(),
        }
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

    /// Adds an entry built from a fresh id; returns it.
    fn create(
        &mut self,
        build: impl FnOnce(GlobalId) -> CatalogEntry,
    ) -> Result<CatalogEntry, String> {
        let mut created = None;
        self.transact(|state| {
            state.next_id += 1;
            let entry = build(GlobalId::User(state.next_id));
            if state.entries.values().any(|e| e.name() == entry.name()) {
                return Err(format!("relation \"{}\" already exists", entry.name()));
            }
            state.entries.insert(entry.id(), entry.clone());
            created = Some(entry);
            Ok(())
        })?;
        Ok(created.expect("set by the transaction"))
    }

    /// Creates a table; returns its entry.
    pub fn create_table(
        &mut self,
        name: String,
        desc: RelationDesc,
        defaults: Vec<Option<String>>,
        typmods: Vec<Option<Typmod>>,
        shard_id: String,
    ) -> Result<TableEntry, String> {
        match self.create(|id| {
            CatalogEntry::Table(TableEntry {
                id,
                name,
                desc,
                defaults,
                typmods,
                shard_id,
            })
        })? {
            CatalogEntry::Table(t) => Ok(t),
            _ => unreachable!("created a table"),
        }
    }

    pub fn create_materialized_view(
        &mut self,
        name: String,
        desc: RelationDesc,
        sql: String,
        depends_on: Vec<GlobalId>,
        shard_id: String,
    ) -> Result<MaterializedViewEntry, String> {
        match self.create(|id| {
            CatalogEntry::MaterializedView(MaterializedViewEntry {
                id,
                name,
                desc,
                sql,
                depends_on,
                shard_id,
            })
        })? {
            CatalogEntry::MaterializedView(m) => Ok(m),
            _ => unreachable!("created a materialized view"),
        }
    }

    /// Replaces a view's query (CREATE OR REPLACE VIEW), keeping its id.
    pub fn replace_view(
        &mut self,
        id: GlobalId,
        desc: RelationDesc,
        sql: String,
        depends_on: Vec<GlobalId>,
    ) -> Result<(), String> {
        self.transact(|state| match state.entries.get_mut(&id) {
            Some(CatalogEntry::View(v)) => {
                v.desc = desc;
                v.sql = sql;
                v.depends_on = depends_on;
                Ok(())
            }
            _ => Err(format!("{id} is not a view")),
        })
    }

    pub fn materialized_views(&self) -> impl Iterator<Item = &MaterializedViewEntry> {
        self.state.entries.values().filter_map(|e| match e {
            CatalogEntry::MaterializedView(m) => Some(m),
            _ => None,
        })
    }

    /// The persist shard storing a table's or materialized view's contents.
    pub fn shard_of(&self, id: GlobalId) -> Option<(String, RelationDesc)> {
        match self.state.entries.get(&id)? {
            CatalogEntry::Table(t) => Some((t.shard_id.clone(), t.desc.clone())),
            CatalogEntry::MaterializedView(m) => Some((m.shard_id.clone(), m.desc.clone())),
            _ => None,
        }
    }

    pub fn create_view(
        &mut self,
        name: String,
        desc: RelationDesc,
        sql: String,
        depends_on: Vec<GlobalId>,
    ) -> Result<ViewEntry, String> {
        match self.create(|id| {
            CatalogEntry::View(ViewEntry {
                id,
                name,
                desc,
                sql,
                depends_on,
            })
        })? {
            CatalogEntry::View(v) => Ok(v),
            _ => unreachable!("created a view"),
        }
    }

    pub fn create_index(
        &mut self,
        name: String,
        on: GlobalId,
        keys: Vec<MirScalarExpr>,
    ) -> Result<IndexEntry, String> {
        match self.create(|id| CatalogEntry::Index(IndexEntry { id, name, on, keys }))? {
            CatalogEntry::Index(i) => Ok(i),
            _ => unreachable!("created an index"),
        }
    }

    /// Removes the entries, in one durable change.
    pub fn drop_items(&mut self, ids: &[GlobalId]) -> Result<(), String> {
        self.transact(|state| {
            for id in ids {
                state.entries.remove(id);
            }
            Ok(())
        })
    }

    /// Removes one table (tests and callers that drop a single object).
    pub fn drop_table(&mut self, id: GlobalId) -> Result<(), String> {
        self.drop_items(&[id])
    }

    /// Every object that depends on `id`, directly or transitively, dependents last.
    pub fn dependents(&self, id: GlobalId) -> Vec<GlobalId> {
        let mut out: Vec<GlobalId> = Vec::new();
        let mut frontier = vec![id];
        while let Some(next) = frontier.pop() {
            for e in self.state.entries.values() {
                if e.depends_on().contains(&next) && !out.contains(&e.id()) {
                    out.push(e.id());
                    frontier.push(e.id());
                }
            }
        }
        out
    }

    pub fn entry(&self, id: GlobalId) -> Option<&CatalogEntry> {
        self.state.entries.get(&id)
    }

    pub fn entries(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.state.entries.values()
    }

    pub fn tables(&self) -> impl Iterator<Item = &TableEntry> {
        self.state.entries.values().filter_map(|e| match e {
            CatalogEntry::Table(t) => Some(t),
            _ => None,
        })
    }

    pub fn table(&self, id: GlobalId) -> Option<&TableEntry> {
        match self.state.entries.get(&id) {
            Some(CatalogEntry::Table(t)) => Some(t),
            _ => None,
        }
    }

    pub fn indexes(&self) -> impl Iterator<Item = &IndexEntry> {
        self.state.entries.values().filter_map(|e| match e {
            CatalogEntry::Index(i) => Some(i),
            _ => None,
        })
    }

    /// The indexes on `id`.
    pub fn indexes_on(&self, id: GlobalId) -> impl Iterator<Item = &IndexEntry> {
        self.indexes().filter(move |i| i.on == id)
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

    #[test]
    fn keeps_type_modifiers() {
        let consensus: Arc<dyn Consensus> = Arc::new(persist::mem::MemConsensus::new());
        let mut a = Catalog::open(Arc::clone(&consensus)).unwrap();
        let desc = RelationDesc::empty()
            .with_column("n", ScalarType::Numeric.nullable(true))
            .with_column("v", ScalarType::String.nullable(true));
        let typmods = vec![
            Some(Typmod::Numeric {
                precision: 10,
                scale: 2,
            }),
            None,
        ];
        a.create_table(
            "t".into(),
            desc,
            vec![None, None],
            typmods.clone(),
            "s00000000-0000-0000-0000-000000000000".into(),
        )
        .unwrap();
        let b = Catalog::open(consensus).unwrap();
        assert_eq!(b.resolve("t").unwrap().typmods, typmods);
    }

    #[test]
    fn reads_catalogs_from_before_type_modifiers() {
        let desc = RelationDesc::empty().with_column("a", ScalarType::Int32.nullable(true));
        let table = |id| TableEntryV2 {
            id: GlobalId::User(id),
            name: format!("t{id}"),
            desc: desc.clone(),
            defaults: vec![Some("1".into())],
            shard_id: "s00000000-0000-0000-0000-000000000000".into(),
        };
        let v1 = CatalogStateV1 {
            next_id: 1,
            tables: BTreeMap::from([(GlobalId::User(1), table(1))]),
        };
        let v2 = CatalogStateV2 {
            next_id: 2,
            entries: BTreeMap::from([
                (GlobalId::User(1), CatalogEntryV2::Table(table(1))),
                (
                    GlobalId::User(2),
                    CatalogEntryV2::View(ViewEntry {
                        id: GlobalId::User(2),
                        name: "v".into(),
                        desc: desc.clone(),
                        sql: "SELECT a FROM t1".into(),
                        depends_on: vec![GlobalId::User(1)],
                    }),
                ),
            ]),
        };
        let encoded = [
            persist::codec::encode_versioned("catalog", CATALOG_FORMAT_V1, &v1).unwrap(),
            persist::codec::encode_versioned("catalog", CATALOG_FORMAT_V2, &v2).unwrap(),
        ];
        for data in encoded {
            let consensus: Arc<dyn Consensus> = Arc::new(persist::mem::MemConsensus::new());
            consensus
                .compare_and_set(
                    CATALOG_KEY,
                    None,
                    VersionedData {
                        seqno: SeqNo(0),
                        data,
                    },
                )
                .unwrap();
            let mut catalog = Catalog::open(Arc::clone(&consensus)).unwrap();
            let t1 = catalog.resolve("t1").unwrap();
            assert_eq!(t1.typmods, vec![None]);
            assert_eq!(t1.defaults, vec![Some("1".into())]);
            // The next write upgrades the catalog to the current format.
            catalog
                .create_table(
                    "t9".into(),
                    desc.clone(),
                    vec![None],
                    vec![Some(Typmod::Varchar { length: 3 })],
                    "s00000000-0000-0000-0000-000000000009".into(),
                )
                .unwrap();
            let head = consensus.head(CATALOG_KEY).unwrap().unwrap();
            assert_eq!(head.data[0], CATALOG_FORMAT);
            let reopened = Catalog::open(consensus).unwrap();
            assert_eq!(reopened.resolve("t1").unwrap().typmods, vec![None]);
            assert_eq!(
                reopened.resolve("t9").unwrap().typmods,
                vec![Some(Typmod::Varchar { length: 3 })]
            );
        }
    }
}
