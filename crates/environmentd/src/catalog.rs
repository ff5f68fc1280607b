//! The durable catalog: databases, their schemas, and the items in each schema:
//! tables (columns, defaults, type modifiers, persist shard), views (their query),
//! materialized views and indexes (the collection and key they arrange).
//!
//! An item's name is unique in its schema, among items of every kind (PostgreSQL's
//! relations share one namespace); the default catalog is database `freshet` with
//! schema `public`, where catalogs from before schemas put every item.
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
use sql::catalog::{
    CatalogItem, ItemKind, NameContext, QualifiedName, SqlCatalog, Typmod, DEFAULT_DATABASE,
    DEFAULT_SCHEMA,
};

const CATALOG_KEY: &str = "catalog";
/// The version byte of the catalog's encoding. Version 1 held only tables, version 2
/// tables without type modifiers, version 3 no databases or schemas, version 4 no
/// RETAIN HISTORY settings or system variables; all are read and upgraded on the next
/// write.
const CATALOG_FORMAT: u8 = 5;
const CATALOG_FORMAT_V4: u8 = 4;
const CATALOG_FORMAT_V3: u8 = 3;
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

/// A database: a set of schemas.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatabaseEntry {
    pub id: u64,
    pub name: String,
}

/// A schema: a namespace of items, in a database.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SchemaEntry {
    pub id: u64,
    pub name: String,
    pub database: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CatalogState {
    next_id: u64,
    entries: BTreeMap<GlobalId, CatalogEntry>,
    /// The next id of a database or schema (they share one sequence).
    next_namespace_id: u64,
    databases: BTreeMap<u64, DatabaseEntry>,
    schemas: BTreeMap<u64, SchemaEntry>,
    /// The schema of each entry: every entry has one.
    entry_schemas: BTreeMap<GlobalId, u64>,
    /// `RETAIN HISTORY` of the tables, materialized views and indexes that set it, in
    /// milliseconds.
    retain_history: BTreeMap<GlobalId, u64>,
    /// `ALTER SYSTEM SET` values, by variable name.
    system_vars: BTreeMap<String, String>,
}

/// Format 4: as format 5, without RETAIN HISTORY settings and system variables.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CatalogStateV4 {
    next_id: u64,
    entries: BTreeMap<GlobalId, CatalogEntry>,
    next_namespace_id: u64,
    databases: BTreeMap<u64, DatabaseEntry>,
    schemas: BTreeMap<u64, SchemaEntry>,
    entry_schemas: BTreeMap<GlobalId, u64>,
}

impl From<CatalogStateV4> for CatalogState {
    fn from(v4: CatalogStateV4) -> Self {
        CatalogState {
            next_id: v4.next_id,
            entries: v4.entries,
            next_namespace_id: v4.next_namespace_id,
            databases: v4.databases,
            schemas: v4.schemas,
            entry_schemas: v4.entry_schemas,
            retain_history: BTreeMap::new(),
            system_vars: BTreeMap::new(),
        }
    }
}

impl CatalogState {
    /// A catalog with database `freshet`, schema `public` and these entries in it.
    fn with_default_schema(next_id: u64, entries: BTreeMap<GlobalId, CatalogEntry>) -> Self {
        let entry_schemas = entries.keys().map(|id| (*id, 1)).collect();
        CatalogState {
            next_id,
            entries,
            next_namespace_id: 2,
            databases: BTreeMap::from([(
                1,
                DatabaseEntry {
                    id: 1,
                    name: DEFAULT_DATABASE.into(),
                },
            )]),
            schemas: BTreeMap::from([(
                1,
                SchemaEntry {
                    id: 1,
                    name: DEFAULT_SCHEMA.into(),
                    database: 1,
                },
            )]),
            entry_schemas,
            retain_history: BTreeMap::new(),
            system_vars: BTreeMap::new(),
        }
    }

    fn database_id(&self, name: &str) -> Option<u64> {
        self.databases
            .values()
            .find(|d| d.name == name)
            .map(|d| d.id)
    }

    fn schema_id(&self, database: &str, schema: &str) -> Option<u64> {
        let database = self.database_id(database)?;
        self.schemas
            .values()
            .find(|s| s.database == database && s.name == schema)
            .map(|s| s.id)
    }

    /// The full name of an entry.
    fn full_name(&self, entry: &CatalogEntry) -> Option<QualifiedName> {
        let schema = self.schemas.get(self.entry_schemas.get(&entry.id())?)?;
        let database = self.databases.get(&schema.database)?;
        Some(QualifiedName::new(
            database.name.clone(),
            schema.name.clone(),
            entry.name(),
        ))
    }
}

/// Format 3: no databases or schemas (every entry is in `freshet.public`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct CatalogStateV3 {
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
    /// The planner's view of the objects, by full name.
    items: BTreeMap<QualifiedName, CatalogItem>,
    /// The introspection relations, by name (in `mz_internal` of every database).
    builtins: BTreeMap<String, CatalogItem>,
    /// The full name of each object.
    names: BTreeMap<GlobalId, QualifiedName>,
}

impl Catalog {
    /// Loads the catalog from the consensus store (empty if there is none yet).
    pub fn open(consensus: Arc<dyn Consensus>) -> Result<Catalog, String> {
        let head = consensus.head(CATALOG_KEY).map_err(|e| e.to_string())?;
        let (seqno, state) = match head {
            None => (None, CatalogState::with_default_schema(0, BTreeMap::new())),
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
                    CatalogState::with_default_schema(v1.next_id, entries),
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
                    CatalogState::with_default_schema(v2.next_id, entries),
                )
            }
            Some(data) if data.data.first() == Some(&CATALOG_FORMAT_V3) => {
                let v3: CatalogStateV3 =
                    persist::codec::decode_versioned("catalog", CATALOG_FORMAT_V3, &data.data)
                        .map_err(|e| e.to_string())?;
                (
                    Some(data.seqno),
                    CatalogState::with_default_schema(v3.next_id, v3.entries),
                )
            }
            Some(data) if data.data.first() == Some(&CATALOG_FORMAT_V4) => {
                let v4: CatalogStateV4 =
                    persist::codec::decode_versioned("catalog", CATALOG_FORMAT_V4, &data.data)
                        .map_err(|e| e.to_string())?;
                (Some(data.seqno), v4.into())
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
            builtins: crate::introspection::builtins()
                .into_iter()
                .map(|b| {
                    let item = CatalogItem {
                        id: b.id,
                        name: b.name.to_string(),
                        kind: ItemKind::Table,
                        desc: b.desc,
                        defaults: vec![],
                        typmods: vec![],
                        definition: None,
                        on: None,
                    };
                    (b.name.to_string(), item)
                })
                .collect(),
            names: BTreeMap::new(),
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
                let name = self
                    .state
                    .full_name(e)
                    .expect("every entry is in a schema of a database");
                (name, item)
            })
            .collect();
        self.names = self
            .items
            .iter()
            .map(|(name, item)| (item.id, name.clone()))
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

    /// Adds an entry built from a fresh id, in the schema `name` names; returns it.
    fn create(
        &mut self,
        name: &QualifiedName,
        retain_history_ms: Option<u64>,
        build: impl FnOnce(GlobalId) -> CatalogEntry,
    ) -> Result<CatalogEntry, String> {
        let mut created = None;
        self.transact(|state| {
            let schema = state
                .schema_id(&name.database, &name.schema)
                .ok_or_else(|| format!("schema \"{}\" does not exist", name.schema))?;
            state.next_id += 1;
            let entry = build(GlobalId::User(state.next_id));
            let taken = state.entries.values().any(|e| {
                e.name() == entry.name() && state.entry_schemas.get(&e.id()) == Some(&schema)
            });
            if taken {
                return Err(format!("relation \"{}\" already exists", entry.name()));
            }
            state.entry_schemas.insert(entry.id(), schema);
            if let Some(ms) = retain_history_ms {
                state.retain_history.insert(entry.id(), ms);
            }
            state.entries.insert(entry.id(), entry.clone());
            created = Some(entry);
            Ok(())
        })?;
        Ok(created.expect("set by the transaction"))
    }

    /// Creates a database with its `public` schema; with `if_not_exists`, an existing
    /// one is kept.
    pub fn create_database(&mut self, name: &str, if_not_exists: bool) -> Result<(), String> {
        if self.state.database_id(name).is_some() {
            return if if_not_exists {
                Ok(())
            } else {
                Err(format!("database \"{name}\" already exists"))
            };
        }
        self.transact(|state| {
            let database = state.next_namespace_id;
            let schema = database + 1;
            state.next_namespace_id += 2;
            state.databases.insert(
                database,
                DatabaseEntry {
                    id: database,
                    name: name.into(),
                },
            );
            state.schemas.insert(
                schema,
                SchemaEntry {
                    id: schema,
                    name: DEFAULT_SCHEMA.into(),
                    database,
                },
            );
            Ok(())
        })
    }

    /// Creates a schema in a database; with `if_not_exists`, an existing one is kept.
    pub fn create_schema(
        &mut self,
        database: &str,
        name: &str,
        if_not_exists: bool,
    ) -> Result<(), String> {
        if self.state.schema_id(database, name).is_some() {
            return if if_not_exists {
                Ok(())
            } else {
                Err(format!("schema \"{name}\" already exists"))
            };
        }
        self.transact(|state| {
            let database = state
                .database_id(database)
                .ok_or_else(|| format!("database \"{database}\" does not exist"))?;
            let id = state.next_namespace_id;
            state.next_namespace_id += 1;
            state.schemas.insert(
                id,
                SchemaEntry {
                    id,
                    name: name.into(),
                    database,
                },
            );
            Ok(())
        })
    }

    /// Drops an empty schema (its items must have been dropped first).
    pub fn drop_schema(&mut self, database: &str, name: &str) -> Result<(), String> {
        let id = self
            .state
            .schema_id(database, name)
            .ok_or_else(|| format!("schema \"{name}\" does not exist"))?;
        if self.state.entry_schemas.values().any(|s| *s == id) {
            return Err(format!("schema \"{name}\" is not empty"));
        }
        self.transact(|state| {
            state.schemas.remove(&id);
            Ok(())
        })
    }

    /// Drops a database whose schemas are empty, with its schemas.
    pub fn drop_database(&mut self, name: &str) -> Result<(), String> {
        let id = self
            .state
            .database_id(name)
            .ok_or_else(|| format!("database \"{name}\" does not exist"))?;
        let schemas: Vec<u64> = self
            .state
            .schemas
            .values()
            .filter(|s| s.database == id)
            .map(|s| s.id)
            .collect();
        if self
            .state
            .entry_schemas
            .values()
            .any(|s| schemas.contains(s))
        {
            return Err(format!("database \"{name}\" is not empty"));
        }
        self.transact(|state| {
            state.databases.remove(&id);
            state.schemas.retain(|_, s| s.database != id);
            Ok(())
        })
    }

    /// The items in a database's schema (every schema of it, if `schema` is `None`),
    /// with their full names.
    pub fn items_in(
        &self,
        database: &str,
        schema: Option<&str>,
    ) -> Vec<(&CatalogItem, &QualifiedName)> {
        self.items
            .iter()
            .filter(|(name, _)| {
                name.database == database && schema.is_none_or(|s| name.schema == s)
            })
            .map(|(name, item)| (item, name))
            .collect()
    }

    /// The catalog as a session sees it: unqualified names are looked up in
    /// `context`.
    pub fn for_session(&self, context: NameContext) -> SessionCatalog<'_> {
        SessionCatalog {
            catalog: self,
            context,
        }
    }

    /// Creates a table; returns its entry.
    pub fn create_table(
        &mut self,
        name: QualifiedName,
        desc: RelationDesc,
        defaults: Vec<Option<String>>,
        typmods: Vec<Option<Typmod>>,
        shard_id: String,
        retain_history_ms: Option<u64>,
    ) -> Result<TableEntry, String> {
        match self.create(&name, retain_history_ms, |id| {
            CatalogEntry::Table(TableEntry {
                id,
                name: name.item.clone(),
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
        name: QualifiedName,
        desc: RelationDesc,
        sql: String,
        depends_on: Vec<GlobalId>,
        shard_id: String,
        retain_history_ms: Option<u64>,
    ) -> Result<MaterializedViewEntry, String> {
        match self.create(&name, retain_history_ms, |id| {
            CatalogEntry::MaterializedView(MaterializedViewEntry {
                id,
                name: name.item.clone(),
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
        name: QualifiedName,
        desc: RelationDesc,
        sql: String,
        depends_on: Vec<GlobalId>,
    ) -> Result<ViewEntry, String> {
        match self.create(&name, None, |id| {
            CatalogEntry::View(ViewEntry {
                id,
                name: name.item.clone(),
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
        name: QualifiedName,
        on: GlobalId,
        keys: Vec<MirScalarExpr>,
        retain_history_ms: Option<u64>,
    ) -> Result<IndexEntry, String> {
        let entry = |id| {
            CatalogEntry::Index(IndexEntry {
                id,
                name: name.item.clone(),
                on,
                keys,
            })
        };
        match self.create(&name, retain_history_ms, entry)? {
            CatalogEntry::Index(i) => Ok(i),
            _ => unreachable!("created an index"),
        }
    }

    /// Removes the entries, in one durable change.
    pub fn drop_items(&mut self, ids: &[GlobalId]) -> Result<(), String> {
        self.transact(|state| {
            for id in ids {
                state.entries.remove(id);
                state.entry_schemas.remove(id);
                state.retain_history.remove(id);
            }
            Ok(())
        })
    }

    /// How long `id` keeps its history (`RETAIN HISTORY`), if it says.
    pub fn retain_history(&self, id: GlobalId) -> Option<u64> {
        self.state.retain_history.get(&id).copied()
    }

    /// Sets (or with `None` resets) the `RETAIN HISTORY` of `id`.
    pub fn set_retain_history(&mut self, id: GlobalId, ms: Option<u64>) -> Result<(), String> {
        self.transact(|state| {
            if !state.entries.contains_key(&id) {
                return Err(format!("{id} does not exist"));
            }
            match ms {
                Some(ms) => state.retain_history.insert(id, ms),
                None => state.retain_history.remove(&id),
            };
            Ok(())
        })
    }

    /// The value `ALTER SYSTEM SET` gave a variable, if any.
    pub fn system_var(&self, name: &str) -> Option<&str> {
        self.state.system_vars.get(name).map(String::as_str)
    }

    /// Sets (or with `None` resets) a system variable, durably.
    pub fn set_system_var(&mut self, name: &str, value: Option<String>) -> Result<(), String> {
        self.transact(|state| {
            match value {
                Some(value) => state.system_vars.insert(name.to_string(), value),
                None => state.system_vars.remove(name),
            };
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

    /// The index a one-shot read of the view `id` reads, if it is a view with one keyed
    /// on plain columns (an index with a key expression leaves out the rows whose key
    /// fails, and holds the key's error instead).
    pub fn view_index(&self, id: GlobalId) -> Option<&IndexEntry> {
        match self.entry(id) {
            Some(CatalogEntry::View(_)) => self
                .indexes_on(id)
                .find(|i| i.keys.iter().all(|k| matches!(k, MirScalarExpr::Column(_)))),
            _ => None,
        }
    }
}

impl SqlCatalog for Catalog {
    fn resolve(&self, name: &str) -> Option<&CatalogItem> {
        self.items.get(&QualifiedName::parse_sql(name)?)
    }

    fn item(&self, name: &QualifiedName) -> Option<&CatalogItem> {
        if name.schema == crate::introspection::SCHEMA
            && self.state.database_id(&name.database).is_some()
        {
            return self.builtins.get(&name.item);
        }
        self.items.get(name)
    }

    fn databases(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .state
            .databases
            .values()
            .map(|d| d.name.clone())
            .collect();
        names.sort();
        names
    }

    fn schemas(&self, database: &str) -> Vec<String> {
        let Some(id) = self.state.database_id(database) else {
            return vec![];
        };
        let mut names: Vec<String> = self
            .state
            .schemas
            .values()
            .filter(|s| s.database == id)
            .map(|s| s.name.clone())
            .collect();
        names.sort();
        names
    }

    fn items_in_schema(&self, database: &str, schema: &str) -> Vec<&CatalogItem> {
        self.items_in(database, Some(schema))
            .into_iter()
            .map(|(item, _)| item)
            .collect()
    }

    fn name_of(&self, id: GlobalId) -> Option<QualifiedName> {
        if let GlobalId::System(_) = id {
            let builtin = self.builtins.values().find(|b| b.id == id)?;
            return Some(QualifiedName::new(
                DEFAULT_DATABASE,
                crate::introspection::SCHEMA,
                builtin.name.clone(),
            ));
        }
        self.names.get(&id).cloned()
    }
}

/// The catalog as one session sees it: [`Catalog`] with the session's current
/// database and `search_path`, what `sql::plan` resolves unqualified names in.
pub struct SessionCatalog<'a> {
    catalog: &'a Catalog,
    context: NameContext,
}

impl SqlCatalog for SessionCatalog<'_> {
    fn resolve(&self, name: &str) -> Option<&CatalogItem> {
        self.catalog.resolve(name)
    }

    fn item(&self, name: &QualifiedName) -> Option<&CatalogItem> {
        self.catalog.item(name)
    }

    fn databases(&self) -> Vec<String> {
        self.catalog.databases()
    }

    fn schemas(&self, database: &str) -> Vec<String> {
        self.catalog.schemas(database)
    }

    fn items_in_schema(&self, database: &str, schema: &str) -> Vec<&CatalogItem> {
        self.catalog.items_in_schema(database, schema)
    }

    fn name_of(&self, id: GlobalId) -> Option<QualifiedName> {
        self.catalog.name_of(id)
    }

    fn name_context(&self) -> NameContext {
        self.context.clone()
    }

    fn reads_view_index(&self, id: GlobalId) -> bool {
        self.catalog.view_index(id).is_some()
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
                QualifiedName::in_default_schema("t"),
                desc,
                vec![None],
                vec![None],
                "s00000000-0000-0000-0000-000000000000".into(),
                None,
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
            QualifiedName::in_default_schema("t"),
            desc,
            vec![None, None],
            typmods.clone(),
            "s00000000-0000-0000-0000-000000000000".into(),
            None,
        )
        .unwrap();
        let b = Catalog::open(consensus).unwrap();
        assert_eq!(b.resolve("t").unwrap().typmods, typmods);
    }

    #[test]
    fn reads_catalogs_from_before_type_modifiers_and_schemas() {
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
        let v3 = CatalogStateV3 {
            next_id: 1,
            entries: BTreeMap::from([(GlobalId::User(1), CatalogEntry::Table(table(1).into()))]),
        };
        let v3_state = CatalogState::with_default_schema(v3.next_id, v3.entries.clone());
        let v4 = CatalogStateV4 {
            next_id: v3_state.next_id,
            entries: v3_state.entries,
            next_namespace_id: v3_state.next_namespace_id,
            databases: v3_state.databases,
            schemas: v3_state.schemas,
            entry_schemas: v3_state.entry_schemas,
        };
        let encoded = [
            persist::codec::encode_versioned("catalog", CATALOG_FORMAT_V4, &v4).unwrap(),
            persist::codec::encode_versioned("catalog", CATALOG_FORMAT_V1, &v1).unwrap(),
            persist::codec::encode_versioned("catalog", CATALOG_FORMAT_V2, &v2).unwrap(),
            persist::codec::encode_versioned("catalog", CATALOG_FORMAT_V3, &v3).unwrap(),
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
            // Items from before schemas are in freshet.public.
            let full = QualifiedName::in_default_schema("t1");
            assert_eq!(catalog.name_of(GlobalId::User(1)), Some(full.clone()));
            assert!(catalog.item(&full).is_some());
            assert_eq!(catalog.databases(), vec!["freshet"]);
            assert_eq!(catalog.schemas("freshet"), vec!["public"]);
            let t1 = catalog.resolve("t1").unwrap();
            assert_eq!(t1.typmods, vec![None]);
            assert_eq!(t1.defaults, vec![Some("1".into())]);
            // The next write upgrades the catalog to the current format.
            catalog
                .create_table(
                    QualifiedName::in_default_schema("t9"),
                    desc.clone(),
                    vec![None],
                    vec![Some(Typmod::Varchar { length: 3 })],
                    "s00000000-0000-0000-0000-000000000009".into(),
                    None,
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

    #[test]
    fn keeps_retain_history_settings() {
        let consensus: Arc<dyn Consensus> = Arc::new(persist::mem::MemConsensus::new());
        let mut a = Catalog::open(Arc::clone(&consensus)).unwrap();
        let desc = RelationDesc::empty().with_column("a", ScalarType::Int32.nullable(true));
        let t = a
            .create_table(
                QualifiedName::in_default_schema("t"),
                desc.clone(),
                vec![None],
                vec![None],
                "s00000000-0000-0000-0000-000000000000".into(),
                Some(3_600_000),
            )
            .unwrap();
        let i = a
            .create_index(
                QualifiedName::in_default_schema("t_idx"),
                t.id,
                vec![],
                None,
            )
            .unwrap();
        assert_eq!(a.retain_history(t.id), Some(3_600_000));
        assert_eq!(a.retain_history(i.id), None);
        a.set_retain_history(i.id, Some(1_000)).unwrap();
        a.set_retain_history(t.id, None).unwrap();
        a.set_system_var("tick_interval", Some("1ms".into()))
            .unwrap();
        let b = Catalog::open(Arc::clone(&consensus)).unwrap();
        assert_eq!(b.system_var("tick_interval"), Some("1ms"));
        assert_eq!(b.retain_history(t.id), None);
        assert_eq!(b.retain_history(i.id), Some(1_000));
        let mut b = b;
        b.drop_items(&[i.id]).unwrap();
        assert_eq!(b.retain_history(i.id), None);
    }

    #[test]
    fn keeps_databases_schemas_and_qualified_items() {
        let consensus: Arc<dyn Consensus> = Arc::new(persist::mem::MemConsensus::new());
        let mut a = Catalog::open(Arc::clone(&consensus)).unwrap();
        let desc = RelationDesc::empty().with_column("a", ScalarType::Int32.nullable(true));
        a.create_database("d", false).unwrap();
        a.create_schema("freshet", "s", false).unwrap();
        assert!(a.create_schema("freshet", "s", false).is_err());
        a.create_schema("freshet", "s", true).unwrap();
        let shard = "s00000000-0000-0000-0000-000000000000".to_string();
        let names = [
            QualifiedName::new("freshet", "public", "t"),
            QualifiedName::new("freshet", "s", "t"),
            QualifiedName::new("d", "public", "t"),
        ];
        for name in &names {
            a.create_table(
                name.clone(),
                desc.clone(),
                vec![None],
                vec![None],
                shard.clone(),
                None,
            )
            .unwrap();
        }
        // A name is unique in its schema only.
        assert!(a
            .create_view(names[1].clone(), desc.clone(), "SELECT 1".into(), vec![])
            .is_err());
        assert!(a
            .create_table(
                QualifiedName::new("freshet", "nope", "t"),
                desc.clone(),
                vec![None],
                vec![None],
                shard.clone(),
                None,
            )
            .is_err());
        let b = Catalog::open(Arc::clone(&consensus)).unwrap();
        assert_eq!(b.databases(), vec!["d", "freshet"]);
        assert_eq!(b.schemas("freshet"), vec!["public", "s"]);
        assert_eq!(b.schemas("d"), vec!["public"]);
        let ids: Vec<GlobalId> = names.iter().map(|n| b.item(n).unwrap().id).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids[0] != ids[1] && ids[1] != ids[2]);
        assert_eq!(b.resolve("freshet.s.t").map(|i| i.id), Some(ids[1]));
        assert_eq!(b.name_of(ids[2]), Some(names[2].clone()));
        // Namespaces are dropped only once empty.
        let mut b = b;
        assert!(b.drop_schema("freshet", "s").is_err());
        b.drop_items(&[ids[1]]).unwrap();
        b.drop_schema("freshet", "s").unwrap();
        assert!(b.drop_database("d").is_err());
        b.drop_items(&[ids[2]]).unwrap();
        b.drop_database("d").unwrap();
        let c = Catalog::open(consensus).unwrap();
        assert_eq!(c.databases(), vec!["freshet"]);
        assert_eq!(c.schemas("freshet"), vec!["public"]);
        assert_eq!(c.item(&names[0]).map(|i| i.id), Some(ids[0]));
    }
}
