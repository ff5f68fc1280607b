//! The coordinator: one thread that owns the catalog, the timestamp oracle and the
//! controllers, and executes every statement of every session.
//!
//! Clients send [`Command`]s (through [`crate::adapter::Client`]). A command becomes a
//! [`Job`]: its statements run one after another; a statement that needs data from a
//! dataflow (a SELECT, or the read half of UPDATE / DELETE / INSERT ... SELECT) issues a
//! peek and parks the job until the compute controller answers. Writes are serialized
//! by a write lock, so a read-then-write never interleaves with another write.
//!
//! Transactions. An explicit block (`BEGIN` ... `COMMIT`) and the implicit transaction
//! of a multi-statement simple query buffer their writes per connection in a
//! [`TxnWrites`]; COMMIT (or the end of the query string) appends them at one timestamp,
//! ROLLBACK (or an error) drops them. Inside a transaction:
//! - reads see the transaction's own writes: before a peek, every `Get` of a table with
//!   buffered writes becomes `Get ∪ Constant(pending updates)` ([`read_own_writes`]);
//! - `SET` is transactional as in PostgreSQL: ROLLBACK restores the variables of BEGIN,
//!   and `SET LOCAL` lasts until the end of the transaction;
//! - DDL is refused in an explicit block (25001), because it would apply at once and
//!   could not be rolled back; in an implicit transaction it applies at once.
//!
//! Isolation (see also [`streaming`] for read timestamps). Writes are serialized by
//! one write lock: a read-then-write statement (UPDATE, DELETE, INSERT ... SELECT)
//! takes it before its read, and a transaction that has buffered writes keeps it until
//! COMMIT or ROLLBACK, so write transactions run one after another and each reads the
//! state the previous one committed: serializable, at the price of concurrency (an
//! idle transaction that wrote blocks other writers). Blind INSERTs buffer without the
//! lock (appends commute) and take it at COMMIT. SELECTs never take it: they read at
//! the timestamp the session's isolation level picks, plus their own writes.

mod compaction;
mod namespaces;
mod streaming;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use compute_client::controller::ControllerResponse;
use compute_client::{
    BuildDesc, ComputeController, DataflowDescription, IndexExport, Peek, PeekResponse,
    PersistSinkExport, SourceImport,
};
use crossbeam_channel::{select, Receiver};
use expr::{MirRelationExpr, MirScalarExpr, RowArena, RowSetFinishing};
use repr::{Datum, Diff, EvalError, GlobalId, RelationDesc, Row, ScalarType};
use sql::parse::{ExplainStage, ParsedStatement, SetValue};
use sql::query::Params;
use sql::{MutationKind, Plan, PlanError, Returning};
use storage_client::StorageController;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::adapter::{AdapterError, ExecuteResponse, StatementDesc};
use crate::catalog::{Catalog, CatalogEntry, IndexEntry, MaterializedViewEntry};
use crate::oracle::TimestampOracle;
use crate::session::{Session, SessionVars, TransactionStatus};
use crate::subscribe::{ActiveSubscribe, Cursor};
use sql::catalog::ItemKind;

/// What a connection asks of the coordinator.
pub enum Command {
    Execute {
        session: Session,
        statements: Vec<ParsedStatement>,
        params: Params,
        reply: oneshot::Sender<(Session, Vec<ExecuteResponse>, Option<AdapterError>)>,
    },
    Describe {
        session: Session,
        statement: ParsedStatement,
        param_types: Vec<Option<ScalarType>>,
        reply: oneshot::Sender<(Session, Result<StatementDesc, AdapterError>)>,
    },
    Cancel {
        conn_id: u32,
        secret_key: i32,
    },
    /// The connection closed: forget its transaction.
    Terminate {
        conn_id: u32,
    },
}

/// A command in progress.
struct Job {
    session: Session,
    statements: VecDeque<ParsedStatement>,
    params: Params,
    responses: Vec<ExecuteResponse>,
    reply: oneshot::Sender<(Session, Vec<ExecuteResponse>, Option<AdapterError>)>,
    /// The job's statements run in an implicit transaction that commits when the last
    /// one succeeds (see [`implicit_transaction`]).
    implicit: bool,
}

/// Why a job waits for a peek.
enum PeekPurpose {
    Select {
        desc: RelationDesc,
        finishing: RowSetFinishing,
    },
    Insert {
        id: GlobalId,
        name: String,
        desc: RelationDesc,
        returning: Option<Returning>,
    },
    Mutate {
        id: GlobalId,
        name: String,
        desc: RelationDesc,
        kind: MutationKind,
        returning: Option<Returning>,
    },
    /// `COPY (SELECT ...) TO STDOUT`.
    Copy {
        desc: RelationDesc,
        finishing: RowSetFinishing,
    },
    /// `DECLARE name CURSOR FOR SELECT ...`: the rows fill the cursor.
    Declare {
        name: String,
        desc: RelationDesc,
        finishing: RowSetFinishing,
    },
}

/// Whose statement is writing, and whether it runs in a transaction: then its writes
/// are buffered, never applied on their own.
#[derive(Clone, Copy, Debug)]
struct Writer {
    conn_id: u32,
    in_transaction: bool,
}

impl Writer {
    fn of(job: &Job) -> Writer {
        Writer {
            conn_id: job.session.conn_id,
            in_transaction: job.implicit || job.session.transaction != TransactionStatus::Idle,
        }
    }
}

struct PendingPeek {
    job: Job,
    purpose: PeekPurpose,
    /// The transient dataflow's index to drop once answered (`None` for a fast-path
    /// peek of a maintained index).
    index_id: Option<GlobalId>,
}

/// What a statement did: answered, or waiting for a peek, or waiting for the write lock.
enum Step {
    Done(Result<ExecuteResponse, AdapterError>),
    Peeking(Uuid, PeekPurpose, Option<GlobalId>),
    NeedsWriteLock(ParsedStatement),
    /// A FETCH waiting for its cursor's next rows, until `deadline` if one is set.
    Fetching {
        name: String,
        count: Option<u64>,
        deadline: Option<Instant>,
    },
    /// Done, once the group commit holding its write is durable.
    AwaitCommit(ExecuteResponse),
}

/// A FETCH waiting for rows.
struct PendingFetch {
    job: Job,
    name: String,
    count: Option<u64>,
    deadline: Option<Instant>,
}

/// An index's dataflow, planned and not yet installed.
struct PlannedIndex {
    /// What the dataflow reads, which its build holds.
    storage_inputs: Vec<GlobalId>,
    source_imports: BTreeMap<GlobalId, SourceImport>,
    objects_to_build: Vec<BuildDesc>,
    /// The indexed collection's columns.
    arity: usize,
}

/// The state of one connection's open transaction (explicit block or implicit).
struct TxnWrites {
    /// Writes in statement order, appended at COMMIT at one timestamp.
    writes: Vec<(GlobalId, Vec<(Row, Diff)>)>,
    /// The session's variables at BEGIN: ROLLBACK, an aborted block's COMMIT and a
    /// failed implicit transaction restore them.
    vars_at_begin: SessionVars,
    /// The variables as COMMIT leaves them: plain `SET`s and `RESET`s are copied in,
    /// `SET LOCAL`s are not (PostgreSQL: a `SET` after `SET LOCAL` wins at COMMIT, a
    /// `SET LOCAL` after `SET` lasts until COMMIT only).
    vars_at_commit: SessionVars,
    /// The timestamp every SELECT of an explicit block reads at, once one has read.
    read_ts: Option<repr::Timestamp>,
    /// What the block has read at `read_ts` (tables, materialized views, their
    /// indexes): the block holds `read_ts` on them.
    read_inputs: std::collections::BTreeSet<GlobalId>,
}

impl TxnWrites {
    fn new(session: &Session) -> Self {
        let vars = session.snapshot_vars();
        TxnWrites {
            writes: Vec::new(),
            vars_at_commit: vars.clone(),
            vars_at_begin: vars,
            read_ts: None,
            read_inputs: Default::default(),
        }
    }

    /// The net effect of the buffered writes on each table, consolidated: what a read
    /// inside the transaction adds to the table's committed contents.
    fn pending_updates(&self) -> BTreeMap<GlobalId, Vec<(Row, Diff)>> {
        let mut net: BTreeMap<GlobalId, BTreeMap<&Row, Diff>> = BTreeMap::new();
        for (id, updates) in &self.writes {
            let table = net.entry(*id).or_default();
            for (row, diff) in updates {
                *table.entry(row).or_default() += diff;
            }
        }
        net.into_iter()
            .map(|(id, rows)| {
                let rows: Vec<(Row, Diff)> = rows
                    .into_iter()
                    .filter(|(_, diff)| *diff != 0)
                    .map(|(row, diff)| (row.clone(), diff))
                    .collect();
                (id, rows)
            })
            .filter(|(_, rows)| !rows.is_empty())
            .collect()
    }
}

/// Makes `expr` read `pending` as if it were written: every `Get` of a table with
/// pending updates becomes `Get ∪ Constant(updates)`, with the `Get`'s type.
///
/// When the updates retract rows, the union is wrapped in a `Threshold`: another
/// connection may have committed the removal of a row this transaction removed too
/// (nothing locks rows), and a negative multiplicity must not reach the query.
impl Coordinator {
    /// Replaces every read of an introspection relation in `expr` by its current rows.
    fn introspect(&self, expr: &mut MirRelationExpr) {
        if let MirRelationExpr::Get { id, typ, .. } = expr {
            if let GlobalId::System(_) = id {
                let rows = self
                    .introspection_rows(*id)
                    .into_iter()
                    .map(|row| (row, 1))
                    .collect();
                *expr = MirRelationExpr::Constant {
                    rows: Ok(rows),
                    typ: typ.clone(),
                };
            }
            return;
        }
        for child in expr.children_mut() {
            self.introspect(child);
        }
    }
}

fn read_own_writes(expr: &mut MirRelationExpr, pending: &BTreeMap<GlobalId, Vec<(Row, Diff)>>) {
    if let MirRelationExpr::Get { id, typ, .. } = expr {
        if let Some(updates) = pending.get(id) {
            let constant = MirRelationExpr::Constant {
                rows: Ok(updates.clone()),
                typ: typ.clone(),
            };
            let get = std::mem::replace(expr, constant.clone());
            let union = MirRelationExpr::Union {
                base: Box::new(get),
                inputs: vec![constant],
            };
            *expr = if updates.iter().any(|(_, diff)| *diff < 0) {
                MirRelationExpr::Threshold {
                    input: Box::new(union),
                }
            } else {
                union
            };
        }
        return;
    }
    for child in expr.children_mut() {
        read_own_writes(child, pending);
    }
}

/// Whether a command's statements run in an implicit transaction, as a multi-statement
/// simple query does in PostgreSQL: several statements, no open block, and no
/// transaction control among them (PostgreSQL lets a BEGIN or COMMIT inside the string
/// end the implicit transaction; Freshet runs such strings statement by statement).
/// The extended protocol executes one statement per command, so never qualifies.
fn implicit_transaction(session: &Session, statements: &[ParsedStatement]) -> bool {
    statements.len() > 1
        && session.transaction == TransactionStatus::Idle
        && !statements.iter().any(is_transaction_control)
}

fn is_transaction_control(statement: &ParsedStatement) -> bool {
    use sql::ast::Statement as S;
    matches!(
        &statement.statement,
        sql::parse::Statement::Sql(s) if matches!(
            **s,
            S::StartTransaction { .. }
                | S::Commit { .. }
                | S::Rollback { .. }
                | S::Savepoint { .. }
                | S::ReleaseSavepoint { .. }
        )
    )
}

/// `SET LOCAL ...`: the parser drops the LOCAL keyword from the statement, so it is read
/// back from the text.
fn is_set_local(statement: &ParsedStatement) -> bool {
    if !matches!(
        statement.statement,
        sql::parse::Statement::SetVariable { .. }
    ) {
        return false;
    }
    let mut words = statement.sql.split_whitespace();
    words.next().is_some_and(|w| w.eq_ignore_ascii_case("set"))
        && words
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("local"))
}

pub struct Coordinator {
    pub(crate) catalog: Catalog,
    oracle: TimestampOracle,
    compute: ComputeController,
    storage: StorageController,
    /// For reading shard state (a materialized view's upper at startup).
    persist: persist::PersistClient,
    pending_peeks: BTreeMap<Uuid, PendingPeek>,
    /// The connection holding the write lock (a read-then-write in flight).
    write_lock: Option<u32>,
    /// Jobs waiting for the write lock, in arrival order.
    waiting_for_lock: VecDeque<Job>,
    transactions: BTreeMap<u32, TxnWrites>,
    next_transient_id: u64,
    /// Running subscriptions, by their dataflow's subscribe export.
    subscribes: BTreeMap<GlobalId, ActiveSubscribe>,
    /// Open cursors, by connection and name.
    cursors: BTreeMap<(u32, String), Cursor>,
    pending_fetches: Vec<PendingFetch>,
    /// The upper each index export reported (maximum over replicas).
    index_uppers: BTreeMap<GlobalId, repr::Timestamp>,
    /// The (records, batches, bytes) of each index's arrangement, as the replica last
    /// reported.
    pub(crate) arrangement_sizes: BTreeMap<GlobalId, (u64, u64, u64)>,
    /// The replica's operators, as it last reported them.
    pub(crate) operators: Vec<compute_client::OperatorStat>,
    /// The time each index's and materialized view's dataflow was last rendered to
    /// compute from (`mz_internal.mz_compute_as_ofs`).
    pub(crate) compute_as_ofs: BTreeMap<GlobalId, repr::Timestamp>,
    /// Read holds, and how far each collection's history was allowed to compact.
    holds: compaction::ReadHolds,
    /// Autocommit INSERTs waiting to be written together, and their jobs.
    group_commit: Vec<(GlobalId, Vec<(Row, Diff)>)>,
    commit_waiters: Vec<(Job, ExecuteResponse)>,
    /// Set while a group-commit statement runs: `write` buffers instead of writing.
    defer_writes: bool,
    deferred: bool,
    /// How often table uppers advance without writes: the shortest of the system's
    /// tick and every session's `tick_interval`.
    tick_interval: Duration,
    /// The system's tick: `ALTER SYSTEM SET tick_interval`, else the server flag.
    system_tick: Duration,
    /// The server flag's tick (`--tick-interval-ms`), what `ALTER SYSTEM RESET` restores.
    flag_tick: Duration,
    /// The ticks sessions asked for with `SET tick_interval`, by connection.
    session_ticks: BTreeMap<u32, Duration>,
    next_tick: Instant,
    next_housekeeping: Instant,
}

impl From<PlanError> for AdapterError {
    fn from(e: PlanError) -> Self {
        AdapterError {
            code: e.sqlstate().into(),
            message: e.to_string(),
            detail: e.detail(),
            hint: None,
            position: e.position(),
        }
    }
}

impl From<EvalError> for AdapterError {
    fn from(e: EvalError) -> Self {
        AdapterError {
            code: e.sqlstate().into(),
            message: e.to_string(),
            detail: e.detail(),
            hint: None,
            position: None,
        }
    }
}

impl AdapterError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        AdapterError {
            code: code.into(),
            message: message.into(),
            detail: None,
            hint: None,
            position: None,
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        AdapterError::new("XX000", message)
    }
}

impl Coordinator {
    pub fn new(
        catalog: Catalog,
        oracle: TimestampOracle,
        compute: ComputeController,
        storage: StorageController,
        persist: persist::PersistClient,
    ) -> Self {
        Coordinator {
            catalog,
            oracle,
            compute,
            storage,
            persist,
            pending_peeks: BTreeMap::new(),
            write_lock: None,
            waiting_for_lock: VecDeque::new(),
            transactions: BTreeMap::new(),
            next_transient_id: 0,
            subscribes: BTreeMap::new(),
            cursors: BTreeMap::new(),
            pending_fetches: Vec::new(),
            index_uppers: BTreeMap::new(),
            arrangement_sizes: BTreeMap::new(),
            operators: Vec::new(),
            compute_as_ofs: BTreeMap::new(),
            holds: compaction::ReadHolds::new(),
            group_commit: Vec::new(),
            commit_waiters: Vec::new(),
            defer_writes: false,
            deferred: false,
            tick_interval: Duration::from_millis(10),
            system_tick: Duration::from_millis(10),
            flag_tick: Duration::from_millis(10),
            session_ticks: BTreeMap::new(),
            next_tick: Instant::now(),
            next_housekeeping: Instant::now(),
        }
    }

    /// Sets how often table uppers advance without writes (default 10 ms), unless
    /// `ALTER SYSTEM SET tick_interval` chose a value that is in the catalog.
    pub fn set_tick_interval(&mut self, interval: Duration) {
        self.flag_tick = interval.max(Duration::from_millis(1));
        self.system_tick = self
            .catalog
            .system_var("tick_interval")
            .and_then(crate::session::parse_tick_interval)
            .map(Duration::from_millis)
            .unwrap_or(interval)
            .max(Duration::from_millis(1));
        self.refresh_tick();
    }

    /// Recomputes the tick from the system's and the sessions' choices.
    fn refresh_tick(&mut self) {
        let tick = self
            .session_ticks
            .values()
            .copied()
            .fold(self.system_tick, Duration::min);
        self.tick_interval = tick;
        self.next_tick = self.next_tick.min(Instant::now() + tick);
    }

    /// Records the tick a session asks for once its statements ran.
    fn note_session_tick(&mut self, session: &Session) {
        let before = self.session_ticks.get(&session.conn_id).copied();
        let now = session.tick_interval();
        if before != now {
            match now {
                Some(tick) => self.session_ticks.insert(session.conn_id, tick),
                None => self.session_ticks.remove(&session.conn_id),
            };
            self.refresh_tick();
        }
    }

    /// `ALTER SYSTEM SET | RESET name`: only `tick_interval` is a system variable.
    fn alter_system(
        &mut self,
        session: &Session,
        name: &str,
        value: Option<String>,
    ) -> Result<ExecuteResponse, AdapterError> {
        if session.transaction == TransactionStatus::InBlock {
            return Err(AdapterError::new(
                "25001",
                "ALTER SYSTEM cannot run inside a transaction block",
            ));
        }
        if !name.eq_ignore_ascii_case("tick_interval") {
            return Err(AdapterError::new(
                "0A000",
                format!("ALTER SYSTEM of \"{name}\" is not supported (only tick_interval is a system variable)"),
            ));
        }
        let ms = match &value {
            Some(v) => Some(crate::session::parse_tick_interval(v).ok_or_else(|| {
                let mut e = AdapterError::new(
                    "22023",
                    format!("invalid value for parameter \"tick_interval\": \"{v}\""),
                );
                e.hint =
                    Some("The tick is a duration from 1ms to 1min, as in '10ms' or '1s'.".into());
                e
            })?),
            None => None,
        };
        self.catalog
            .set_system_var(
                "tick_interval",
                ms.map(crate::session::format_tick_interval),
            )
            .map_err(AdapterError::internal)?;
        self.system_tick = ms.map(Duration::from_millis).unwrap_or(self.flag_tick);
        self.refresh_tick();
        Ok(ExecuteResponse::Command {
            tag: "ALTER SYSTEM".into(),
        })
    }

    /// What `SHOW` prints for `tick_interval` when the session did not set it.
    fn system_tick_text(&self) -> String {
        crate::session::format_tick_interval(self.system_tick.as_millis() as u64)
    }

    /// Makes every table readable at a fresh timestamp: the first thing after startup.
    pub fn bootstrap(&mut self) -> Result<(), String> {
        let tables: Vec<(GlobalId, String, RelationDesc)> = self
            .catalog
            .tables()
            .map(|t| (t.id, t.shard_id.clone(), t.desc.clone()))
            .collect();
        for (id, shard, desc) in tables {
            self.storage.create_collection(id, shard.clone(), desc)?;
            self.open_since_handle(id, &shard)?;
        }
        let views: Vec<(GlobalId, String)> = self
            .catalog
            .materialized_views()
            .map(|m| (m.id, m.shard_id.clone()))
            .collect();
        for (id, shard) in views {
            self.open_since_handle(id, &shard)?;
        }
        let ts = self.oracle.write_ts()?;
        self.storage.append(ts, vec![])?;
        self.oracle.apply_write(ts);
        // Materialized views resume from their shards' uppers, in creation order (a
        // view on another view comes later).
        let views: Vec<MaterializedViewEntry> =
            self.catalog.materialized_views().cloned().collect();
        for mv in views {
            let upper = match mv.shard_id.parse::<persist::ShardId>() {
                Ok(shard) => self
                    .persist
                    .inspect_shard(shard)
                    .map(|s| s.upper)
                    .unwrap_or(0),
                Err(_) => 0,
            };
            let as_of = if upper == 0 {
                self.oracle.read_ts()
            } else {
                upper - 1
            };
            if let Err(e) = self.create_materialized_view_dataflow(&mv, as_of) {
                tracing::error!(view = %mv.name, error = %e.message, "materialized view cannot be maintained");
            }
        }
        // Indexes are maintained by the replica: render them again.
        let indexes: Vec<IndexEntry> = self.catalog.indexes().cloned().collect();
        for index in indexes {
            if let Err(e) = self.create_index_dataflow(&index) {
                tracing::error!(index = %index.name, error = %e.message, "index cannot be maintained");
            }
        }
        self.compact_collections();
        Ok(())
    }

    /// A view's query as MIR for a dataflow that maintains it. Its ORDER BY with LIMIT
    /// or OFFSET becomes a TopK (without them, ORDER BY has no meaning in a view).
    fn view_source(&self, sql: &str) -> Result<MirRelationExpr, AdapterError> {
        let statement = sql::parse::parse(sql)?
            .into_iter()
            .next()
            .ok_or_else(|| AdapterError::internal("a view without a query"))?;
        match sql::plan(&self.catalog, &statement, Params::default())? {
            (
                Plan::Select {
                    source, finishing, ..
                },
                _,
            ) => Ok(sql::streaming::finishing_into_expr(source, &finishing)),
            _ => Err(AdapterError::internal("a view's definition is not a query")),
        }
    }

    /// The persist shards a dataflow computing `source` reads: its tables and
    /// materialized views.
    fn source_imports(
        &self,
        source: &MirRelationExpr,
    ) -> Result<BTreeMap<GlobalId, SourceImport>, AdapterError> {
        let mut imports = BTreeMap::new();
        for id in source.depends_on() {
            if let GlobalId::System(_) = id {
                return Err(AdapterError::new(
                    "0A000",
                    "introspection relations (mz_internal) can only be read by SELECT, \
                     not maintained by a materialized view, index or subscription",
                ));
            }
            if self.catalog.view_index(id).is_some() {
                // Read from its index (see `index_imports`).
                continue;
            }
            let (shard_id, desc) = self
                .catalog
                .shard_of(id)
                .ok_or_else(|| AdapterError::new("42P01", format!("relation {id} was dropped")))?;
            imports.insert(id, SourceImport { shard_id, desc });
        }
        Ok(imports)
    }

    /// The indexed views a one-shot read of `source` reads from their indexes, with
    /// the index each reads.
    fn index_imports(&self, source: &MirRelationExpr) -> BTreeMap<GlobalId, GlobalId> {
        source
            .depends_on()
            .into_iter()
            .filter_map(|id| self.catalog.view_index(id).map(|i| (id, i.id)))
            .collect()
    }

    /// Renders a dataflow that maintains `index`: the indexed table read from persist
    /// (or the view's query over its tables), arranged by the index's keys.
    fn create_index_dataflow(&mut self, index: &IndexEntry) -> Result<(), AdapterError> {
        let planned = self.plan_index_dataflow(index)?;
        self.install_index_dataflow(index, planned);
        Ok(())
    }

    /// Plans the dataflow of `index` without touching the replica: an error here
    /// leaves everything as it was.
    fn plan_index_dataflow(&self, index: &IndexEntry) -> Result<PlannedIndex, AdapterError> {
        let (source, on_desc) = match self.catalog.entry(index.on) {
            Some(CatalogEntry::MaterializedView(m)) => (
                MirRelationExpr::Get {
                    id: m.id,
                    typ: m.desc.typ.clone(),
                    name: m.name.clone(),
                },
                m.desc.clone(),
            ),
            Some(CatalogEntry::Table(t)) => (
                MirRelationExpr::Get {
                    id: t.id,
                    typ: t.desc.typ.clone(),
                    name: t.name.clone(),
                },
                t.desc.clone(),
            ),
            Some(CatalogEntry::View(v)) => {
                let (sql, desc) = (v.sql.clone(), v.desc.clone());
                (self.view_source(&sql)?, desc)
            }
            _ => {
                return Err(AdapterError::new(
                    "42809",
                    format!("cannot index {}", index.on),
                ))
            }
        };
        let source_imports = self.source_imports(&source)?;
        let objects_to_build = if source_imports.contains_key(&index.on) {
            vec![]
        } else {
            vec![BuildDesc {
                id: index.on,
                plan: sql::lir::plan_to_lir(&source)?,
            }]
        };
        Ok(PlannedIndex {
            storage_inputs: self.storage_inputs(&source),
            source_imports,
            objects_to_build,
            arity: on_desc.arity(),
        })
    }

    fn install_index_dataflow(&mut self, index: &IndexEntry, planned: PlannedIndex) {
        let as_of = self.oracle.read_ts();
        let mut index_exports = BTreeMap::new();
        index_exports.insert(
            index.id,
            IndexExport {
                on_id: index.on,
                key: index.keys.clone(),
                arity: planned.arity,
            },
        );
        self.holds
            .hold_build(index.id, as_of, planned.storage_inputs);
        self.holds.index_built(index.id, as_of);
        self.compute_as_ofs.insert(index.id, as_of);
        self.compute.create_dataflow(DataflowDescription {
            debug_name: format!("index-{}", index.name),
            source_imports: planned.source_imports,
            index_imports: BTreeMap::new(),
            objects_to_build: planned.objects_to_build,
            index_exports,
            sink_exports: BTreeMap::new(),
            subscribe_exports: BTreeMap::new(),
            as_of,
            until: None,
        });
    }

    fn create_view(
        &mut self,
        view: sql::ddl::CreateViewPlan,
    ) -> Result<ExecuteResponse, AdapterError> {
        let tag = if view.materialized {
            "CREATE MATERIALIZED VIEW"
        } else {
            "CREATE VIEW"
        };
        let command = Ok(ExecuteResponse::Command { tag: tag.into() });
        if let Some(existing) = sql::catalog::SqlCatalog::item(&self.catalog, &view.name) {
            if view.if_not_exists {
                return command;
            }
            if !view.or_replace {
                return Err(PlanError::RelationExists(view.name.item).into());
            }
            if existing.kind != ItemKind::View || view.materialized {
                return Err(AdapterError::new(
                    "42809",
                    format!("\"{}\" is not a view", view.name),
                ));
            }
            // PostgreSQL: the new query may add columns at the end, nothing else.
            let (id, old) = (existing.id, existing.desc.clone());
            if view.desc.arity() < old.arity() {
                return Err(AdapterError::new("42P16", "cannot drop columns from view"));
            }
            for (i, (name, typ)) in old.iter().enumerate() {
                if &view.desc.names[i] != name {
                    return Err(AdapterError::new(
                        "42P16",
                        format!(
                            "cannot change name of view column \"{name}\" to \"{}\"",
                            view.desc.names[i]
                        ),
                    ));
                }
                if view.desc.typ.column_types[i].scalar_type != typ.scalar_type {
                    return Err(AdapterError::new(
                        "42P16",
                        format!("cannot change data type of view column \"{name}\""),
                    ));
                }
            }
            if view.depends_on.contains(&id) {
                return Err(AdapterError::new(
                    "42P17",
                    format!(
                        "infinite recursion detected in rules for relation \"{}\"",
                        view.name
                    ),
                ));
            }
            // A materialized view's shard holds what the old query computed, and its
            // dataflow would go on computing it: refuse, as DROP without CASCADE does.
            let dependents = self.catalog.dependents(id);
            if let Some(mv) = dependents
                .iter()
                .find_map(|d| match self.catalog.entry(*d) {
                    Some(CatalogEntry::MaterializedView(m)) => Some(m.name.clone()),
                    _ => None,
                })
            {
                let mut error = AdapterError::new(
                    "2BP01",
                    format!(
                        "cannot replace view \"{}\": materialized view {mv} depends on it",
                        view.name
                    ),
                );
                error.hint = Some(
                    "Drop the materialized view first, or create the new query as a new view."
                        .into(),
                );
                return Err(error);
            }
            let Some(CatalogEntry::View(before)) = self.catalog.entry(id).cloned() else {
                return Err(AdapterError::internal("a view to replace is not a view"));
            };
            self.catalog
                .replace_view(id, view.desc, view.sql, view.depends_on)
                .map_err(AdapterError::internal)?;
            // The indexes on the view and on the views reading it follow its new query.
            // All are planned before any is replaced: if one cannot be, the view keeps
            // its old query and every index its dataflow.
            let indexes: Vec<IndexEntry> = self
                .catalog
                .indexes()
                .filter(|i| i.on == id || dependents.contains(&i.on))
                .cloned()
                .collect();
            let planned: Result<Vec<PlannedIndex>, AdapterError> = indexes
                .iter()
                .map(|index| self.plan_index_dataflow(index))
                .collect();
            let planned = match planned {
                Ok(planned) => planned,
                Err(e) => {
                    self.catalog
                        .replace_view(id, before.desc, before.sql, before.depends_on)
                        .map_err(AdapterError::internal)?;
                    return Err(e);
                }
            };
            for (index, planned) in indexes.iter().zip(planned) {
                self.compute.drop_collection(index.id);
                self.install_index_dataflow(index, planned);
            }
            return command;
        }
        if view.materialized {
            // Plan first: nothing is written to the catalog for a query that cannot run.
            let source = self.view_source(&view.sql)?;
            sql::lir::plan_to_lir(&source)?;
            self.source_imports(&source)?;
            let shard_id = persist::ShardId::new().to_string();
            let mv = self
                .catalog
                .create_materialized_view(
                    view.name,
                    view.desc,
                    view.sql,
                    view.depends_on,
                    shard_id,
                    view.retain_history_ms,
                )
                .map_err(AdapterError::internal)?;
            let as_of = self.oracle.read_ts();
            self.open_new_since_handle(mv.id, &mv.shard_id, as_of)
                .map_err(AdapterError::internal)?;
            self.create_materialized_view_dataflow(&mv, as_of)?;
            return command;
        }
        self.catalog
            .create_view(view.name, view.desc, view.sql, view.depends_on)
            .map_err(AdapterError::internal)?;
        command
    }

    /// Renders the dataflow that maintains a materialized view: its query over its
    /// inputs' shards from `as_of` on, written to the view's own shard by a persist
    /// sink. After a restart `as_of` is just below the shard's upper, so the dataflow
    /// resumes where the shard ends instead of recomputing history into it.
    fn create_materialized_view_dataflow(
        &mut self,
        mv: &MaterializedViewEntry,
        as_of: repr::Timestamp,
    ) -> Result<(), AdapterError> {
        let source = self.view_source(&mv.sql)?;
        if source.arity() != mv.desc.arity() {
            // Its shard holds rows of the catalog's columns (and errors of one more).
            return Err(AdapterError::internal(format!(
                "materialized view {} no longer has its {} columns",
                mv.name,
                mv.desc.arity()
            )));
        }
        let source_imports = self.source_imports(&source)?;
        let inputs = self.storage_inputs(&source);
        if let Err(e) = self.check_readable(as_of, &inputs) {
            // Its inputs compacted past the view's upper (a catalog from before read
            // holds): the view cannot resume without recomputing.
            tracing::error!(view = %mv.name, error = %e.message, "materialized view inputs compacted");
        }
        self.holds.hold_view_inputs(mv.id, inputs, as_of);
        self.compute_as_ofs.insert(mv.id, as_of);
        let mut sink_exports = BTreeMap::new();
        sink_exports.insert(
            mv.id,
            PersistSinkExport {
                on_id: mv.id,
                shard_id: mv.shard_id.clone(),
                // The shard's readers know the view by its catalog columns.
                arity: mv.desc.arity(),
            },
        );
        self.compute.create_dataflow(DataflowDescription {
            debug_name: format!("materialized-view-{}", mv.name),
            source_imports,
            index_imports: BTreeMap::new(),
            objects_to_build: vec![BuildDesc {
                id: mv.id,
                plan: sql::lir::plan_to_lir(&source)?,
            }],
            index_exports: BTreeMap::new(),
            sink_exports,
            subscribe_exports: BTreeMap::new(),
            as_of,
            until: None,
        });
        Ok(())
    }

    /// Whether `source` can be read from an index without a dataflow: it only maps,
    /// filters and projects one collection that has an index keyed on plain columns
    /// (a key expression that fails on a row, `a + 1` overflowing, leaves the row out
    /// of its index). When the filter fixes every key column to a literal, the read is
    /// a key lookup.
    fn fast_path(&self, source: &MirRelationExpr) -> Option<FastPath> {
        let Ok(expr::Plan::Get { id, mfp }) = sql::lir::plan_to_lir(source) else {
            return None;
        };
        let column_types =
            source
                .depends_on()
                .into_iter()
                .next()
                .and_then(|on| match self.catalog.entry(on) {
                    Some(CatalogEntry::View(v)) => Some(v.desc.typ.column_types.clone()),
                    _ => self
                        .catalog
                        .shard_of(on)
                        .map(|(_, desc)| desc.typ.column_types),
                });
        let mut best: Option<FastPath> = None;
        for index in self.catalog.indexes_on(id) {
            let columns: Option<Vec<usize>> = index
                .keys
                .iter()
                .map(|k| match k {
                    MirScalarExpr::Column(c) => Some(*c),
                    _ => None,
                })
                .collect();
            let Some(columns) = columns else { continue };
            let key = column_types
                .as_ref()
                .and_then(|types| lookup_key(&mfp, &columns, types));
            let better = best
                .as_ref()
                .is_none_or(|b| b.key.is_none() && key.is_some());
            if better {
                best = Some(FastPath {
                    index: index.id,
                    index_name: index.name.clone(),
                    mfp: mfp.clone(),
                    key,
                });
            }
        }
        best
    }

    /// A read that only maps, filters and projects an indexed collection (a SELECT,
    /// or the read half of an UPDATE, DELETE or INSERT ... SELECT) reads the index
    /// directly, with no new dataflow, and with a key lookup when the filter fixes the
    /// key. Returns the peek's uuid, or `None` when there is no such index (or it no
    /// longer holds `timestamp`).
    fn fast_path_peek(
        &mut self,
        source: &MirRelationExpr,
        timestamp: repr::Timestamp,
    ) -> Option<Uuid> {
        let FastPath {
            index, mfp, key, ..
        } = self.fast_path(source)?;
        // An index keeps only its retained history; older reads build a dataflow over
        // persist, which may keep more.
        if timestamp < self.holds.since(index) {
            return None;
        }
        let uuid = Uuid::new_v4();
        self.holds.hold_peek(uuid, timestamp, vec![index]);
        self.compute.peek(Peek {
            uuid,
            id: index,
            timestamp,
            mfp,
            key,
        });
        Some(uuid)
    }

    /// `SHOW TABLES | VIEWS | MATERIALIZED VIEWS | INDEXES | OBJECTS | COLUMNS | CREATE`,
    /// with Materialize's column names.
    fn show_objects(
        &self,
        what: sql::parse::ShowWhat,
        on: Option<&str>,
    ) -> (RelationDesc, Vec<Row>) {
        use sql::parse::ShowWhat;
        let text = |_: &str| ScalarType::String.nullable(false);
        let id_of =
            |name: &str| sql::catalog::SqlCatalog::resolve(&self.catalog, name).map(|i| i.id);
        let on_id = on.and_then(id_of);
        let name_of = |id: GlobalId| {
            self.catalog
                .entry(id)
                .map(|e| e.name().to_string())
                .unwrap_or_default()
        };
        let mut rows: Vec<Vec<String>> = Vec::new();
        let desc = match what {
            ShowWhat::Tables
            | ShowWhat::Views
            | ShowWhat::MaterializedViews
            | ShowWhat::Objects => {
                for e in self.catalog.entries() {
                    let wanted = match what {
                        ShowWhat::Tables => matches!(e, CatalogEntry::Table(_)),
                        ShowWhat::Views => matches!(e, CatalogEntry::View(_)),
                        ShowWhat::MaterializedViews => {
                            matches!(e, CatalogEntry::MaterializedView(_))
                        }
                        _ => true,
                    };
                    if wanted {
                        let mut row = vec![e.name().to_string()];
                        if what == ShowWhat::Objects {
                            row.push(e.kind().name().to_string());
                        }
                        if what == ShowWhat::MaterializedViews {
                            row.push("quickstart".into());
                        }
                        rows.push(row);
                    }
                }
                match what {
                    ShowWhat::Objects => RelationDesc::empty()
                        .with_column("name", text(""))
                        .with_column("type", text("")),
                    ShowWhat::MaterializedViews => RelationDesc::empty()
                        .with_column("name", text(""))
                        .with_column("cluster", text("")),
                    _ => RelationDesc::empty().with_column("name", text("")),
                }
            }
            ShowWhat::Indexes => {
                for i in self
                    .catalog
                    .indexes()
                    .filter(|i| on_id.is_none_or(|id| i.on == id))
                {
                    let keys: Vec<String> = i.keys.iter().map(|k| k.to_string()).collect();
                    rows.push(vec![
                        i.name.clone(),
                        name_of(i.on),
                        "quickstart".into(),
                        format!("{{{}}}", keys.join(",")),
                    ]);
                }
                RelationDesc::empty()
                    .with_column("name", text(""))
                    .with_column("on", text(""))
                    .with_column("cluster", text(""))
                    .with_column("key", text(""))
            }
            ShowWhat::Columns => {
                if let Some(item) =
                    on.and_then(|n| sql::catalog::SqlCatalog::resolve(&self.catalog, n))
                {
                    for (name, typ) in item.desc.iter() {
                        rows.push(vec![
                            name.clone(),
                            if typ.nullable { "true" } else { "false" }.into(),
                            typ.scalar_type.name().to_string(),
                        ]);
                    }
                }
                RelationDesc::empty()
                    .with_column("name", text(""))
                    .with_column("nullable", ScalarType::Bool.nullable(false))
                    .with_column("type", text(""))
            }
            ShowWhat::Create => {
                if let Some(id) = on_id {
                    let sql = match self.catalog.entry(id) {
                        Some(CatalogEntry::View(v)) => {
                            format!("CREATE VIEW {} AS {}", v.name, v.sql)
                        }
                        Some(CatalogEntry::MaterializedView(m)) => {
                            format!("CREATE MATERIALIZED VIEW {} AS {}", m.name, m.sql)
                        }
                        Some(CatalogEntry::Table(t)) => {
                            let cols: Vec<String> = t
                                .desc
                                .iter()
                                .map(|(n, c)| {
                                    format!(
                                        "{n} {}{}",
                                        c.scalar_type.name(),
                                        if c.nullable { "" } else { " NOT NULL" }
                                    )
                                })
                                .collect();
                            format!("CREATE TABLE {} ({})", t.name, cols.join(", "))
                        }
                        Some(CatalogEntry::Index(i)) => {
                            let keys: Vec<String> = i.keys.iter().map(|k| k.to_string()).collect();
                            format!(
                                "CREATE INDEX {} ON {} ({})",
                                i.name,
                                name_of(i.on),
                                keys.join(", ")
                            )
                        }
                        None => String::new(),
                    };
                    rows.push(vec![on.unwrap_or_default().to_string(), sql]);
                }
                RelationDesc::empty()
                    .with_column("name", text(""))
                    .with_column("create_sql", text(""))
            }
        };
        let rows = rows
            .into_iter()
            .map(|r| {
                let datums: Vec<Datum> = r
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        if what == ShowWhat::Columns && i == 1 {
                            Datum::from_bool(v == "true")
                        } else {
                            Datum::String(v)
                        }
                    })
                    .collect();
                Row::pack_slice(&datums)
            })
            .collect();
        (desc, rows)
    }

    /// Drops catalog objects and what depends on them: indexes go with their
    /// collection, other dependents only with CASCADE (else 2BP01).
    fn drop_objects(
        &mut self,
        conn_id: u32,
        drop: sql::ddl::DropPlan,
    ) -> Result<ExecuteResponse, AdapterError> {
        let tag = format!("DROP {}", drop.kind.name().to_uppercase());
        if let Some((_, name)) = drop
            .ids
            .iter()
            .find(|(id, _)| matches!(id, GlobalId::System(_)))
        {
            return Err(AdapterError::new(
                "42501",
                format!("permission denied: \"{name}\" is a system relation"),
            ));
        }
        let mut doomed: Vec<GlobalId> = Vec::new();
        for (id, name) in &drop.ids {
            let dependents = self.catalog.dependents(*id);
            let blocking: Vec<String> = dependents
                .iter()
                .filter_map(|d| self.catalog.entry(*d))
                .filter(|e| e.depends_on().contains(id) && !matches!(e, CatalogEntry::Index(_)))
                .map(|e| {
                    format!(
                        "{} {} depends on {} {name}",
                        e.kind().name(),
                        e.name(),
                        drop.kind.name()
                    )
                })
                .collect();
            if !blocking.is_empty() && !drop.cascade {
                let mut error: AdapterError = PlanError::DependentObjects {
                    kind: drop.kind.name(),
                    name: name.clone(),
                    dependents: blocking.clone(),
                }
                .into();
                error.detail = Some(blocking.join("\n"));
                error.hint = Some("Use DROP ... CASCADE to drop the dependent objects too.".into());
                return Err(error);
            }
            for d in dependents.into_iter().rev().chain([*id]) {
                if !doomed.contains(&d) {
                    doomed.push(d);
                }
            }
        }
        for id in &doomed {
            self.holds.forget(*id);
            match self.catalog.entry(*id) {
                Some(CatalogEntry::Index(_)) | Some(CatalogEntry::MaterializedView(_)) => {
                    self.compute.drop_collection(*id);
                    self.compute_as_ofs.remove(id);
                    self.index_uppers.remove(id);
                    self.arrangement_sizes.remove(id);
                }
                Some(CatalogEntry::Table(_)) => {
                    self.storage
                        .drop_collection(*id)
                        .map_err(AdapterError::internal)?;
                    // The replicas' cached readers of its shard go too.
                    self.compute.drop_collection(*id);
                    // Only an implicit transaction gets here with writes buffered (an
                    // explicit block refuses DDL): the writes to the table go with it.
                    if let Some(txn) = self.transactions.get_mut(&conn_id) {
                        txn.writes.retain(|(written, _)| written != id);
                    }
                }
                _ => {}
            }
        }
        let named: Vec<(GlobalId, String)> = doomed
            .iter()
            .filter_map(|id| self.catalog.entry(*id).map(|e| (*id, e.name().to_string())))
            .collect();
        self.end_dropped_subscribes(&named);
        self.catalog
            .drop_items(&doomed)
            .map_err(AdapterError::internal)?;
        Ok(ExecuteResponse::Command { tag })
    }

    /// Serves commands until every client handle is dropped.
    pub fn run(mut self, commands: Receiver<Command>) {
        loop {
            let receivers = self.compute.response_receivers();
            let mut sel = crossbeam_channel::Select::new();
            let command_index = sel.recv(&commands);
            for (_, r) in &receivers {
                sel.recv(r);
            }
            let now = Instant::now();
            let wakeup = self.next_wakeup();
            if now >= wakeup {
                self.tick();
                continue;
            }
            let Ok(op) = sel.select_timeout(wakeup - now) else {
                self.tick();
                continue;
            };
            let index = op.index();
            if index == command_index {
                match op.recv(&commands) {
                    Ok(command) => self.handle_command(command),
                    Err(_) => return,
                }
                self.resume_lock_waiters();
                // Group commit: write once nothing more is waiting to join.
                if commands.is_empty() {
                    self.flush_group_commit();
                }
            } else {
                let (replica, receiver) = &receivers[index - 1];
                match op.recv(receiver) {
                    Ok(response) => {
                        if let Some(merged) = self.compute.handle_response(*replica, response) {
                            self.handle_compute_response(merged);
                        }
                        self.resume_lock_waiters();
                        if commands.is_empty() {
                            self.flush_group_commit();
                        }
                    }
                    Err(_) => {
                        tracing::warn!(replica, "replica disconnected");
                        // A replica going away must not wedge the loop on a closed channel.
                        let _ = select! { recv(commands) -> c => c.map(|c| self.handle_command(c)), default(std::time::Duration::from_millis(10)) => Ok(()) };
                    }
                }
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Execute {
                session,
                statements,
                params,
                reply,
            } => {
                let implicit = implicit_transaction(&session, &statements)
                    && !self.transactions.contains_key(&session.conn_id);
                if implicit {
                    self.transactions
                        .insert(session.conn_id, TxnWrites::new(&session));
                }
                let job = Job {
                    session,
                    statements: statements.into(),
                    params,
                    responses: Vec::new(),
                    reply,
                    implicit,
                };
                self.advance_job(job);
            }
            Command::Describe {
                session,
                statement,
                param_types,
                reply,
            } => {
                let result = self.describe(&session, &statement, param_types);
                let _ = reply.send((session, result));
            }
            Command::Cancel {
                conn_id,
                secret_key,
            } => {
                let uuids: Vec<Uuid> = self
                    .pending_peeks
                    .iter()
                    .filter(|(_, p)| {
                        p.job.session.conn_id == conn_id && p.job.session.secret_key == secret_key
                    })
                    .map(|(u, _)| *u)
                    .collect();
                for uuid in uuids {
                    self.compute.cancel_peek(uuid);
                }
                self.cancel_streaming(conn_id, secret_key);
            }
            Command::Terminate { conn_id } => {
                self.transactions.remove(&conn_id);
                if self.session_ticks.remove(&conn_id).is_some() {
                    self.refresh_tick();
                }
                self.close_cursors(conn_id, None);
                self.end_connection_subscribes(conn_id);
                self.pending_fetches
                    .retain(|f| f.job.session.conn_id != conn_id);
                if self.write_lock == Some(conn_id) {
                    self.release_write_lock();
                }
            }
        }
    }

    fn describe(
        &mut self,
        session: &Session,
        statement: &ParsedStatement,
        param_types: Vec<Option<ScalarType>>,
    ) -> Result<StatementDesc, AdapterError> {
        let conn_id = session.conn_id;
        let params = Params {
            types: param_types,
            values: None,
        };
        let (plan, params) = sql::plan(&self.session_catalog(session), statement, params)?;
        let result = match plan {
            Plan::Select { desc, .. } => Some(desc),
            Plan::Insert {
                returning: Some(r), ..
            }
            | Plan::ReadThenWrite {
                returning: Some(r), ..
            } => Some(r.desc),
            Plan::Explain { stage, .. } => Some(explain_desc(stage)),
            Plan::ShowVariable { name } => Some(show_desc(&name)),
            Plan::ShowObjects { what, on } => Some(self.show_objects(what, on.as_deref()).0),
            Plan::Subscribe(plan) => Some(plan.output_desc()),
            Plan::ExplainTimestamp { .. } => Some(streaming::explain_timestamp_desc()),
            Plan::Fetch { name, .. } => self.cursors.get(&(conn_id, name)).map(|c| c.desc.clone()),
            _ => None,
        };
        let param_types = params
            .types
            .into_iter()
            .map(|t| t.unwrap_or(ScalarType::String))
            .collect();
        Ok(StatementDesc {
            param_types,
            result,
        })
    }

    /// Runs the job's statements until it finishes or parks.
    fn advance_job(&mut self, mut job: Job) {
        while let Some(statement) = job.statements.pop_front() {
            // A bug in planning or execution must fail the statement, not the server.
            let sql = statement.sql.clone();
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.execute_statement(&mut job, statement)
            }))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                tracing::error!(statement = %sql, panic = %what, "internal error executing a statement");
                Step::Done(Err(AdapterError::internal(format!("internal error: {what}"))))
            });
            match step {
                Step::Done(Ok(response)) => job.responses.push(response),
                Step::Done(Err(error)) => return self.fail_job(job, error),
                Step::Peeking(uuid, purpose, index_id) => {
                    self.pending_peeks.insert(
                        uuid,
                        PendingPeek {
                            job,
                            purpose,
                            index_id,
                        },
                    );
                    return;
                }
                Step::NeedsWriteLock(statement) => {
                    job.statements.push_front(statement);
                    self.waiting_for_lock.push_back(job);
                    return;
                }
                Step::AwaitCommit(response) => {
                    self.commit_waiters.push((job, response));
                    return;
                }
                Step::Fetching {
                    name,
                    count,
                    deadline,
                } => {
                    self.pending_fetches.push(PendingFetch {
                        job,
                        name,
                        count,
                        deadline,
                    });
                    return;
                }
            }
        }
        if job.implicit {
            let conn_id = job.session.conn_id;
            if let Some(txn) = self.transactions.get(&conn_id) {
                if !txn.writes.is_empty() && !self.try_write_lock(conn_id) {
                    // Resumed with no statements left: it comes straight back here.
                    self.waiting_for_lock.push_back(job);
                    return;
                }
            }
            if let Some(txn) = self.transactions.remove(&conn_id) {
                let result = self.write(txn.writes);
                if self.write_lock == Some(conn_id) {
                    self.release_write_lock();
                }
                match result {
                    Ok(()) => job.session.restore_vars(txn.vars_at_commit),
                    Err(error) => {
                        job.session.restore_vars(txn.vars_at_begin);
                        return self.fail_job(job, error);
                    }
                }
            }
        }
        self.note_session_tick(&job.session);
        let _ = job.reply.send((job.session, job.responses, None));
    }

    /// Ends a job with an error: an explicit block becomes aborted (25P02 until it
    /// ends); an implicit transaction is rolled back, variables included.
    fn fail_job(&mut self, mut job: Job, error: AdapterError) {
        if job.session.transaction == TransactionStatus::InBlock {
            job.session.transaction = TransactionStatus::Failed;
        }
        if job.implicit {
            if let Some(txn) = self.transactions.remove(&job.session.conn_id) {
                job.session.restore_vars(txn.vars_at_begin);
            }
        }
        if self.write_lock == Some(job.session.conn_id) {
            self.release_write_lock();
        }
        self.note_session_tick(&job.session);
        let _ = job.reply.send((job.session, job.responses, Some(error)));
    }

    fn release_write_lock(&mut self) {
        self.write_lock = None;
    }

    /// A statement of `conn_id` finished: the write lock goes, unless the connection's
    /// transaction has buffered writes. A transaction that wrote keeps the lock until
    /// COMMIT or ROLLBACK, so write transactions run one at a time (serializable: what
    /// an UPDATE read cannot change before its transaction commits).
    fn release_write_lock_after_statement(&mut self, conn_id: u32) {
        if self.write_lock != Some(conn_id) {
            return;
        }
        let wrote = self
            .transactions
            .get(&conn_id)
            .is_some_and(|t| !t.writes.is_empty());
        if !wrote {
            self.release_write_lock();
        }
    }

    /// Runs jobs that waited for the write lock while it is free.
    fn resume_lock_waiters(&mut self) {
        let mut budget = self.waiting_for_lock.len();
        while self.write_lock.is_none() && budget > 0 {
            budget -= 1;
            match self.waiting_for_lock.pop_front() {
                Some(job) => self.advance_job(job),
                None => break,
            }
        }
    }

    /// Takes the write lock for `conn_id`, or reports that it is held by another.
    fn try_write_lock(&mut self, conn_id: u32) -> bool {
        match self.write_lock {
            Some(holder) if holder != conn_id => false,
            Some(_) => true,
            None => {
                // What the group commit holds is written first: a read under the lock
                // must see every write acknowledged or pending before it.
                self.flush_group_commit();
                self.write_lock = Some(conn_id);
                true
            }
        }
    }

    /// Writes every pending autocommit INSERT at one timestamp (one durable append for
    /// all of them), then answers their jobs.
    pub(crate) fn flush_group_commit(&mut self) {
        if self.commit_waiters.is_empty() && self.group_commit.is_empty() {
            return;
        }
        let updates = std::mem::take(&mut self.group_commit);
        let waiters = std::mem::take(&mut self.commit_waiters);
        let result = self.write(updates);
        for (mut job, response) in waiters {
            match &result {
                Ok(()) => {
                    job.responses.push(response);
                    self.advance_job(job);
                }
                Err(e) => self.fail_job(job, e.clone()),
            }
        }
    }

    fn execute_statement(&mut self, job: &mut Job, statement: ParsedStatement) -> Step {
        if job.session.transaction == TransactionStatus::Failed {
            let ends_block = matches!(
                &statement.statement,
                sql::parse::Statement::Sql(s) if matches!(**s, sql::ast::Statement::Commit { .. } | sql::ast::Statement::Rollback { .. })
            );
            if !ends_block {
                return Step::Done(Err(AdapterError::new("25P02", "current transaction is aborted, commands ignored until end of transaction block")));
            }
        }
        let plan = match sql::plan(
            &self.session_catalog(&job.session),
            &statement,
            job.params.clone(),
        ) {
            Ok((plan, _)) => plan,
            Err(e) => return Step::Done(Err(e.into())),
        };
        let conn_id = job.session.conn_id;
        let block_has_writes = self
            .transactions
            .get(&job.session.conn_id)
            .is_some_and(|t| !t.writes.is_empty());
        if job.session.transaction == TransactionStatus::InBlock && block_has_writes {
            // Freshet applies DDL at once, so a ROLLBACK could not undo it; PostgreSQL
            // would roll it back. DDL is allowed in a block until the block writes (drivers
            // such as psycopg open a block before every first statement), then refused.
            let ddl = match &plan {
                Plan::CreateTable { .. } => Some("CREATE TABLE"),
                Plan::CreateView(_) => Some("CREATE VIEW"),
                Plan::CreateIndex(_) => Some("CREATE INDEX"),
                Plan::Namespace(n) => Some(n.tag()),
                Plan::Drop(d) => Some(match d.kind {
                    ItemKind::Table => "DROP TABLE",
                    ItemKind::View => "DROP VIEW",
                    ItemKind::MaterializedView => "DROP MATERIALIZED VIEW",
                    ItemKind::Index => "DROP INDEX",
                }),
                _ => None,
            };
            if let Some(ddl) = ddl {
                return Step::Done(Err(AdapterError::new(
                    "25001",
                    format!("{ddl} cannot be run inside a transaction block"),
                )));
            }
        }
        let buffered = self.transactions.contains_key(&conn_id);
        let local = is_set_local(&statement);
        // The write lock serializes writes: a read-then-write (UPDATE, DELETE,
        // INSERT ... SELECT) holds it from its peek to its write, and a transaction
        // that has buffered writes keeps it until it ends (see the module docs).
        let writer_in_transaction =
            job.implicit || job.session.transaction != TransactionStatus::Idle;
        // An autocommit INSERT ... VALUES joins the group commit instead: it needs no
        // lock (appends commute), only that no one holds it.
        let group_commit = !buffered
            && !writer_in_transaction
            && self.write_lock.is_none()
            && matches!(
                &plan,
                Plan::Insert {
                    source: MirRelationExpr::Constant { .. },
                    ..
                }
            );
        let needs_lock = match &plan {
            Plan::ReadThenWrite { .. } => true,
            Plan::Insert { .. } if group_commit => false,
            Plan::Insert { source, .. } => {
                !matches!(source, MirRelationExpr::Constant { .. }) || !buffered
            }
            Plan::Commit => self
                .transactions
                .get(&conn_id)
                .is_some_and(|t| !t.writes.is_empty()),
            Plan::CreateTable { .. }
            | Plan::Drop(_)
            | Plan::CreateView(_)
            | Plan::CreateIndex(_)
            | Plan::Namespace(_) => true,
            _ => false,
        };
        if needs_lock && !self.try_write_lock(conn_id) {
            return Step::NeedsWriteLock(statement);
        }
        self.defer_writes = group_commit;
        let step = self.execute_plan(job, plan, local);
        self.defer_writes = false;
        let step = match step {
            Step::Done(Ok(response)) if std::mem::take(&mut self.deferred) => {
                Step::AwaitCommit(response)
            }
            other => other,
        };
        // The lock is held across a peek; released once the statement is done, unless
        // the statement's transaction has writes (then at its end).
        if needs_lock && matches!(step, Step::Done(_)) {
            self.release_write_lock_after_statement(conn_id);
        }
        step
    }

    /// Executes a planned statement; `local` marks a `SET LOCAL`.
    fn execute_plan(&mut self, job: &mut Job, plan: Plan, local: bool) -> Step {
        let writer = Writer::of(job);
        let session = &mut job.session;
        let conn_id = session.conn_id;
        let done = |r: Result<ExecuteResponse, AdapterError>| Step::Done(r);
        let command = |tag: &str| {
            Step::Done(Ok(ExecuteResponse::Command {
                tag: tag.to_string(),
            }))
        };
        match plan {
            Plan::SetVariable { name, value } => {
                let apply = |session: &mut Session| match &value {
                    SetValue::Default => session.reset(&name),
                    SetValue::Values(v) => session.set(&name, &v.join(", ")),
                };
                let result = match self.transactions.get_mut(&conn_id) {
                    // Outside a transaction PostgreSQL warns that SET LOCAL has no
                    // effect; the value is still checked.
                    None if local => apply(&mut session.clone()),
                    None => apply(session),
                    Some(_) if local => apply(session),
                    Some(txn) => apply(session).map(|()| {
                        txn.vars_at_commit.copy_from(session, &name);
                    }),
                };
                done(result.map(|()| ExecuteResponse::Command { tag: "SET".into() }))
            }
            Plan::ResetVariable { name } => {
                let result = match &name {
                    None => {
                        session.reset_all();
                        Ok(())
                    }
                    Some(name) => session.reset(name),
                };
                if let (Ok(()), Some(txn)) = (&result, self.transactions.get_mut(&conn_id)) {
                    match &name {
                        None => txn.vars_at_commit = session.snapshot_vars(),
                        Some(name) => txn.vars_at_commit.copy_from(session, name),
                    }
                }
                done(result.map(|()| ExecuteResponse::Command {
                    tag: "RESET".into(),
                }))
            }
            Plan::ShowObjects { what, on } => {
                let (desc, rows) = self.show_objects(what, on.as_deref());
                done(Ok(ExecuteResponse::Rows {
                    desc,
                    rows,
                    tag: "SHOW".into(),
                }))
            }
            Plan::ShowVariable { name } => {
                let system_tick = self.system_tick_text();
                let shown = |name: &str, value: &'_ str| -> String {
                    if name.eq_ignore_ascii_case("tick_interval") && value.is_empty() {
                        system_tick.clone()
                    } else {
                        value.to_string()
                    }
                };
                if name == "all" {
                    let rows = session
                        .all()
                        .map(|(n, v, d)| {
                            let v = shown(n, v);
                            Row::pack_slice(&[
                                Datum::String(n),
                                Datum::String(&v),
                                Datum::String(d),
                            ])
                        })
                        .collect();
                    return done(Ok(ExecuteResponse::Rows {
                        desc: show_desc("all"),
                        rows,
                        tag: "SHOW".into(),
                    }));
                }
                match session.get(&name) {
                    Some(value) => {
                        let value = shown(&name, value);
                        let rows = vec![Row::pack_slice(&[Datum::String(&value)])];
                        done(Ok(ExecuteResponse::Rows {
                            desc: show_desc(&name),
                            rows,
                            tag: "SHOW".into(),
                        }))
                    }
                    None => done(Err(AdapterError::new(
                        "42704",
                        format!("unrecognized configuration parameter \"{name}\""),
                    ))),
                }
            }
            Plan::StartTransaction => {
                // A BEGIN inside a block keeps the transaction and its writes; PostgreSQL
                // also warns "there is already a transaction in progress" (25001), which
                // Freshet cannot send yet: an ExecuteResponse carries no notices.
                if session.transaction == TransactionStatus::Idle {
                    session.transaction = TransactionStatus::InBlock;
                    self.transactions.insert(conn_id, TxnWrites::new(session));
                }
                command("BEGIN")
            }
            Plan::Commit => {
                self.close_cursors(conn_id, None);
                let failed = session.transaction == TransactionStatus::Failed;
                session.transaction = TransactionStatus::Idle;
                let Some(txn) = self.transactions.remove(&conn_id) else {
                    // Outside a block PostgreSQL warns "there is no transaction in
                    // progress" (25P01) and does nothing.
                    return command("COMMIT");
                };
                if failed {
                    session.restore_vars(txn.vars_at_begin);
                    return command("ROLLBACK");
                }
                match self.write(txn.writes) {
                    Ok(()) => {
                        session.restore_vars(txn.vars_at_commit);
                        command("COMMIT")
                    }
                    Err(e) => {
                        session.restore_vars(txn.vars_at_begin);
                        done(Err(e))
                    }
                }
            }
            Plan::Deallocate { all } => command(if all { "DEALLOCATE ALL" } else { "DEALLOCATE" }),
            Plan::Discard { all } => {
                if all {
                    // An implicit transaction counts as a block, as in PostgreSQL.
                    if session.transaction != TransactionStatus::Idle
                        || self.transactions.contains_key(&conn_id)
                    {
                        return done(Err(AdapterError::new(
                            "25001",
                            "DISCARD ALL cannot run inside a transaction block",
                        )));
                    }
                    session.reset_all();
                    return command("DISCARD ALL");
                }
                command("DISCARD")
            }
            Plan::Rollback => {
                self.close_cursors(conn_id, None);
                session.transaction = TransactionStatus::Idle;
                if let Some(txn) = self.transactions.remove(&conn_id) {
                    session.restore_vars(txn.vars_at_begin);
                }
                if self.write_lock == Some(conn_id) {
                    self.release_write_lock();
                }
                command("ROLLBACK")
            }
            Plan::CreateTable {
                name,
                desc,
                defaults,
                typmods,
                if_not_exists,
                retain_history_ms,
            } => {
                if sql::catalog::SqlCatalog::item(&self.catalog, &name).is_some() {
                    if if_not_exists {
                        return command("CREATE TABLE");
                    }
                    return done(Err(PlanError::RelationExists(name.item).into()));
                }
                let shard_id = persist::ShardId::new().to_string();
                let result = self
                    .catalog
                    .create_table(name, desc, defaults, typmods, shard_id, retain_history_ms)
                    .and_then(|t| {
                        self.storage
                            .create_collection(t.id, t.shard_id.clone(), t.desc)?;
                        // Make the new table readable at the next read timestamp, and
                        // not before.
                        let ts = self.oracle.write_ts()?;
                        self.storage.append(ts, vec![])?;
                        self.oracle.apply_write(ts);
                        self.open_new_since_handle(t.id, &t.shard_id, ts)
                    });
                match result {
                    Ok(()) => command("CREATE TABLE"),
                    Err(e) => done(Err(AdapterError::internal(e))),
                }
            }
            Plan::Drop(drop) => done(self.drop_objects(conn_id, drop)),
            Plan::AlterSystem { name, value } => done(self.alter_system(session, &name, value)),
            Plan::AlterRetainHistory {
                id,
                retain_history_ms,
            } => {
                let tag = match self.catalog.entry(id).map(|e| e.kind()) {
                    Some(ItemKind::Table) => "ALTER TABLE",
                    Some(ItemKind::Index) => "ALTER INDEX",
                    _ => "ALTER MATERIALIZED VIEW",
                };
                match self.catalog.set_retain_history(id, retain_history_ms) {
                    Ok(()) => command(tag),
                    Err(e) => done(Err(AdapterError::internal(e))),
                }
            }
            Plan::Namespace(plan) => done(self.execute_namespace(session, plan)),
            Plan::CreateView(view) => done(self.create_view(view)),
            Plan::CreateIndex(index) => {
                if sql::catalog::SqlCatalog::item(&self.catalog, &index.name).is_some() {
                    if index.if_not_exists {
                        return command("CREATE INDEX");
                    }
                    return done(Err(PlanError::RelationExists(index.name.item).into()));
                }
                let created = self
                    .catalog
                    .create_index(index.name, index.on, index.keys, index.retain_history_ms)
                    .map_err(AdapterError::internal)
                    .and_then(|entry| {
                        // An index that cannot be maintained does not stay in the catalog.
                        self.create_index_dataflow(&entry).inspect_err(|_| {
                            let _ = self.catalog.drop_items(&[entry.id]);
                        })
                    });
                match created {
                    Ok(()) => command("CREATE INDEX"),
                    Err(e) => done(Err(e)),
                }
            }
            Plan::Explain {
                stage,
                mut text,
                source,
            } => {
                let fast_path = source.as_ref().and_then(|s| self.fast_path(s));
                let dataflow = fast_path.is_none();
                if let Some(path) = fast_path {
                    let how = match &path.key {
                        Some(key) => {
                            let values: Vec<String> = key.iter().map(|d| d.to_string()).collect();
                            format!("lookup of key ({})", values.join(", "))
                        }
                        None => "full scan".to_string(),
                    };
                    text.push_str(&format!(
                        "\nFast path: reads index {} directly ({how}), no dataflow\n",
                        path.index_name
                    ));
                }
                // Views read from their indexes rather than computed from their inputs.
                if let Some(source) = source.as_ref().filter(|_| dataflow) {
                    for (view, index) in self.index_imports(source) {
                        let name = |id| {
                            self.catalog
                                .entry(id)
                                .map(|e| e.name().to_string())
                                .unwrap_or_else(|| id.to_string())
                        };
                        text.push_str(&format!(
                            "\nReads view {} ({view}) from its index {}\n",
                            name(view),
                            name(index)
                        ));
                    }
                }
                let rows = vec![Row::pack_slice(&[Datum::String(&text)])];
                done(Ok(ExecuteResponse::Rows {
                    desc: explain_desc(stage),
                    rows,
                    tag: "EXPLAIN".into(),
                }))
            }
            Plan::Select {
                source,
                desc,
                finishing,
                as_of,
            } => {
                if let MirRelationExpr::Constant { rows, .. } = &source {
                    return done(finish_rows(rows.clone(), &finishing, desc));
                }
                let source = match self.prepare_read(session, source, as_of) {
                    Ok(source) => source,
                    Err(e) => return done(Err(e)),
                };
                let timestamp = match self.read_timestamp(session, as_of, &source) {
                    Ok(ts) => ts,
                    Err(e) => return done(Err(e)),
                };
                self.peek(
                    source,
                    PeekPurpose::Select { desc, finishing },
                    Some(timestamp),
                )
            }
            Plan::Subscribe(plan) => done(self.subscribe_to_client(session, plan, false)),
            Plan::CopyTo(inner) => match *inner {
                Plan::Subscribe(plan) => done(self.subscribe_to_client(session, plan, true)),
                Plan::Select {
                    source,
                    desc,
                    finishing,
                    as_of,
                } => {
                    if let MirRelationExpr::Constant { rows, .. } = &source {
                        return done(finish_rows(rows.clone(), &finishing, desc).map(into_copy));
                    }
                    let source = match self.prepare_read(session, source, as_of) {
                        Ok(source) => source,
                        Err(e) => return done(Err(e)),
                    };
                    let timestamp = match self.read_timestamp(session, as_of, &source) {
                        Ok(ts) => ts,
                        Err(e) => return done(Err(e)),
                    };
                    self.peek(
                        source,
                        PeekPurpose::Copy { desc, finishing },
                        Some(timestamp),
                    )
                }
                _ => done(Err(PlanError::unsupported("COPY of this statement").into())),
            },
            Plan::Declare { name, inner } => {
                let session = session.clone();
                self.declare(&session, writer.in_transaction, name, *inner)
            }
            Plan::Fetch {
                name,
                count,
                timeout,
            } => self.fetch(conn_id, name, count, timeout),
            Plan::Close { name } => done(self.close(conn_id, name)),
            Plan::CopyFrom(plan) => done(Ok(ExecuteResponse::CopyIn(Box::new(plan)))),
            Plan::ExplainTimestamp { source } => done(self.explain_timestamp(session, &source)),
            Plan::Insert { id, name, .. } | Plan::ReadThenWrite { id, name, .. }
                if matches!(id, GlobalId::System(_)) =>
            {
                done(Err(AdapterError::new(
                    "42501",
                    format!("permission denied: \"{name}\" is a system relation"),
                )))
            }
            Plan::Insert {
                id,
                name,
                desc,
                source,
                returning,
            } => {
                if let MirRelationExpr::Constant { rows, .. } = &source {
                    let rows = match rows {
                        Ok(rows) => rows.clone(),
                        Err(e) => return done(Err(e.clone().into())),
                    };
                    return done(self.finish_insert(writer, id, &name, &desc, rows, returning));
                }
                let source = match self.prepare_read(session, source, None) {
                    Ok(source) => source,
                    Err(e) => return done(Err(e)),
                };
                self.peek(
                    source,
                    PeekPurpose::Insert {
                        id,
                        name,
                        desc,
                        returning,
                    },
                    None,
                )
            }
            Plan::ReadThenWrite {
                id,
                name,
                desc,
                selection,
                kind,
                returning,
            } => {
                if let MirRelationExpr::Constant { rows, .. } = &selection {
                    let rows = match rows {
                        Ok(rows) => rows.clone(),
                        Err(e) => return done(Err(e.clone().into())),
                    };
                    return done(
                        self.finish_mutation(writer, id, &name, &desc, kind, rows, returning),
                    );
                }
                let selection = match self.prepare_read(session, selection, None) {
                    Ok(selection) => selection,
                    Err(e) => return done(Err(e)),
                };
                self.peek(
                    selection,
                    PeekPurpose::Mutate {
                        id,
                        name,
                        desc,
                        kind,
                        returning,
                    },
                    None,
                )
            }
        }
    }

    /// `expr` ready to be read by `session` at `as_of` (or at its block's timestamp):
    /// reads of introspection relations replaced by their current rows, reads of indexed
    /// views that cannot read their index replaced by the views' queries (see
    /// [`Self::inline_view_reads`]), and the connection's own buffered writes merged
    /// into the reads of the tables it wrote (see [`read_own_writes`]).
    fn prepare_read(
        &self,
        session: &Session,
        mut expr: MirRelationExpr,
        as_of: Option<repr::Timestamp>,
    ) -> Result<MirRelationExpr, AdapterError> {
        self.introspect(&mut expr);
        let txn = self.transactions.get(&session.conn_id);
        let pending = txn.map(|t| t.pending_updates()).unwrap_or_default();
        let block_ts = txn
            .and_then(|t| t.read_ts)
            .filter(|_| session.transaction == TransactionStatus::InBlock);
        self.inline_view_reads(&mut expr, as_of.or(block_ts), &pending)?;
        if !pending.is_empty() {
            read_own_writes(&mut expr, &pending);
        }
        Ok(expr)
    }

    /// Replaces each read of an indexed view (planned to read the view's index) with the
    /// view's query when the index cannot answer it: the index is not built on the
    /// replica (its dataflow could not be rendered), it has compacted past `at` (a read
    /// `AS OF` an older time, or a block's later read of a view it did not read
    /// before), or the view reads a table the transaction has written and not yet
    /// committed (the index does not have those writes; the tables' reads get them).
    fn inline_view_reads(
        &self,
        expr: &mut MirRelationExpr,
        at: Option<repr::Timestamp>,
        pending: &BTreeMap<GlobalId, Vec<(Row, Diff)>>,
    ) -> Result<(), AdapterError> {
        let mut queries = BTreeMap::new();
        for id in expr.depends_on() {
            let (Some(index), Some(CatalogEntry::View(view))) =
                (self.catalog.view_index(id), self.catalog.entry(id))
            else {
                continue;
            };
            let query = self.view_source(&view.sql)?;
            let unreadable = !self.compute_as_ofs.contains_key(&index.id)
                || at.is_some_and(|ts| ts < self.holds.since(index.id))
                || query.depends_on().iter().any(|d| pending.contains_key(d));
            if unreadable {
                queries.insert(id, query);
            }
        }
        if queries.is_empty() {
            return Ok(());
        }
        fn replace(expr: &mut MirRelationExpr, queries: &BTreeMap<GlobalId, MirRelationExpr>) {
            if let MirRelationExpr::Get { id, .. } = expr {
                if let Some(query) = queries.get(id) {
                    *expr = query.clone();
                }
                return;
            }
            for child in expr.children_mut() {
                replace(child, queries);
            }
        }
        replace(expr, &queries);
        *expr = sql::transform::optimize(expr.clone());
        Ok(())
    }

    /// Peeks `source` at `timestamp` (default: the oracle's read timestamp): from an
    /// index when it only maps, filters and projects an indexed collection (see
    /// [`Self::fast_path_peek`]), else by a transient dataflow computing it.
    fn peek(
        &mut self,
        source: MirRelationExpr,
        purpose: PeekPurpose,
        timestamp: Option<repr::Timestamp>,
    ) -> Step {
        let timestamp = timestamp.unwrap_or_else(|| self.oracle.read_ts());
        // A one-shot query's mz_now() is its timestamp.
        let mut source = source;
        expr::temporal::bind_mz_now(&mut source, timestamp);
        if let Some(uuid) = self.fast_path_peek(&source, timestamp) {
            return Step::Peeking(uuid, purpose, None);
        }
        // The dataflow computes the query at one time (its `until` drops later
        // updates), which the one-shot plan's strategies rely on.
        let plan = match sql::lir::plan_to_lir_one_shot(&source) {
            Ok(plan) => plan,
            Err(e) => return Step::Done(Err(e.into())),
        };
        let source_imports = match self.source_imports(&source) {
            Ok(imports) => imports,
            Err(e) => return Step::Done(Err(e)),
        };
        self.next_transient_id += 2;
        let object_id = GlobalId::Transient(self.next_transient_id - 1);
        let index_id = GlobalId::Transient(self.next_transient_id);
        let arity = source.arity();
        let mut index_exports = BTreeMap::new();
        index_exports.insert(
            index_id,
            IndexExport {
                on_id: object_id,
                key: (0..arity).map(MirScalarExpr::Column).collect(),
                arity,
            },
        );
        let dataflow = DataflowDescription {
            debug_name: format!("peek-{index_id}"),
            source_imports,
            index_imports: self.index_imports(&source),
            objects_to_build: vec![BuildDesc {
                id: object_id,
                plan,
            }],
            index_exports,
            sink_exports: BTreeMap::new(),
            subscribe_exports: BTreeMap::new(),
            as_of: timestamp,
            until: Some(timestamp + 1),
        };
        self.compute.create_dataflow(dataflow);
        let uuid = Uuid::new_v4();
        self.holds
            .hold_peek(uuid, timestamp, self.storage_inputs(&source));
        self.compute.peek(Peek {
            uuid,
            id: index_id,
            timestamp,
            mfp: expr::MapFilterProject::new(arity),
            key: None,
        });
        Step::Peeking(uuid, purpose, Some(index_id))
    }

    fn handle_compute_response(&mut self, response: ControllerResponse) {
        let (uuid, response) = match response {
            ControllerResponse::PeekResponse { uuid, response } => (uuid, response),
            ControllerResponse::SubscribeBatch { id, batch } => {
                return self.handle_subscribe_batch(id, batch)
            }
            ControllerResponse::ArrangementSizes {
                id,
                records,
                batches,
                bytes,
            } => {
                self.arrangement_sizes.insert(id, (records, batches, bytes));
                return;
            }
            ControllerResponse::Operators { operators } => {
                self.operators = operators;
                return;
            }
            ControllerResponse::FrontierUpper { id, upper } => {
                self.index_uppers.insert(id, upper);
                self.holds.frontier_passed(id, upper);
                return;
            }
        };
        self.holds.release_peek(uuid);
        let Some(PendingPeek {
            mut job,
            purpose,
            index_id,
        }) = self.pending_peeks.remove(&uuid)
        else {
            return;
        };
        if let Some(index_id) = index_id {
            self.compute.drop_collection(index_id);
        }
        let conn_id = job.session.conn_id;
        let writer = Writer::of(&job);
        let rows = match response {
            PeekResponse::Rows(rows) => Ok(rows),
            PeekResponse::Error(e) => Err(AdapterError::from(e)),
            PeekResponse::Canceled => Err(AdapterError::new(
                "57014",
                "canceling statement due to user request",
            )),
        };
        let result = rows.and_then(|rows| match purpose {
            PeekPurpose::Select { desc, finishing } => finish_rows(Ok(rows), &finishing, desc),
            PeekPurpose::Copy { desc, finishing } => {
                finish_rows(Ok(rows), &finishing, desc).map(into_copy)
            }
            PeekPurpose::Declare {
                name,
                desc,
                finishing,
            } => finish_rows(Ok(rows), &finishing, desc).map(|response| {
                self.open_select_cursor(conn_id, name, response);
                ExecuteResponse::Command {
                    tag: "DECLARE CURSOR".into(),
                }
            }),
            PeekPurpose::Insert {
                id,
                name,
                desc,
                returning,
            } => self.finish_insert(writer, id, &name, &desc, rows, returning),
            PeekPurpose::Mutate {
                id,
                name,
                desc,
                kind,
                returning,
            } => self.finish_mutation(writer, id, &name, &desc, kind, rows, returning),
        });
        self.release_write_lock_after_statement(conn_id);
        match result {
            Ok(response) => {
                job.responses.push(response);
                self.advance_job(job);
            }
            Err(e) => self.fail_job(job, e),
        }
    }

    /// Writes `updates` now, or buffers them in the connection's open transaction.
    ///
    /// A writer in a transaction whose buffer is gone lost its connection while the
    /// statement ran (`Command::Terminate` discards the transaction): its writes are
    /// dropped with the rest of the transaction, not applied alone.
    fn write_or_buffer(
        &mut self,
        writer: Writer,
        updates: Vec<(GlobalId, Vec<(Row, Diff)>)>,
    ) -> Result<(), AdapterError> {
        if let Some(txn) = self.transactions.get_mut(&writer.conn_id) {
            txn.writes.extend(updates);
            return Ok(());
        }
        if writer.in_transaction {
            return Err(AdapterError::new(
                "08003",
                "connection closed during the transaction",
            ));
        }
        self.write(updates)
    }

    /// Durably writes `updates` at one new timestamp.
    fn write(&mut self, updates: Vec<(GlobalId, Vec<(Row, Diff)>)>) -> Result<(), AdapterError> {
        if updates.iter().all(|(_, rows)| rows.is_empty()) {
            return Ok(());
        }
        for (id, _) in &updates {
            if self.catalog.table(*id).is_none() {
                return Err(AdapterError::new(
                    "42P01",
                    format!("relation {id} was dropped in this transaction's lifetime"),
                ));
            }
        }
        if self.defer_writes {
            // Part of the group commit: written by `flush_group_commit`.
            self.group_commit.extend(updates);
            self.deferred = true;
            return Ok(());
        }
        let ts = self.oracle.write_ts().map_err(AdapterError::internal)?;
        self.storage
            .append(ts, updates)
            .map_err(|e| AdapterError::new("58030", format!("could not write to storage: {e}")))?;
        self.oracle.apply_write(ts);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_insert(
        &mut self,
        writer: Writer,
        id: GlobalId,
        name: &str,
        desc: &RelationDesc,
        rows: Vec<(Row, Diff)>,
        returning: Option<Returning>,
    ) -> Result<ExecuteResponse, AdapterError> {
        check_not_null(name, desc, &rows)?;
        let count: Diff = rows.iter().map(|(_, d)| *d).sum();
        let returned = apply_returning(&returning, rows.iter().map(|(r, d)| (r, *d)))?;
        self.write_or_buffer(writer, vec![(id, rows)])?;
        Ok(dml_response(
            format!("INSERT 0 {count}"),
            "INSERT 0",
            returning,
            returned,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_mutation(
        &mut self,
        writer: Writer,
        id: GlobalId,
        name: &str,
        desc: &RelationDesc,
        kind: MutationKind,
        rows: Vec<(Row, Diff)>,
        returning: Option<Returning>,
    ) -> Result<ExecuteResponse, AdapterError> {
        let arity = desc.arity();
        let count: Diff = rows.iter().map(|(_, d)| *d).sum();
        let (updates, tag, tag_prefix) = match kind {
            MutationKind::Delete => {
                let returned = apply_returning(&returning, rows.iter().map(|(r, d)| (r, *d)))?;
                let updates: Vec<(Row, Diff)> = rows.into_iter().map(|(r, d)| (r, -d)).collect();
                ((updates, returned), format!("DELETE {count}"), "DELETE")
            }
            MutationKind::Update => {
                let mut updates = Vec::new();
                let mut new_rows = Vec::new();
                for (row, diff) in rows {
                    let datums = row.unpack();
                    updates.push((Row::pack(&datums[..arity]), -diff));
                    let new = Row::pack(&datums[arity..]);
                    new_rows.push((new.clone(), diff));
                    updates.push((new, diff));
                }
                check_not_null(name, desc, &new_rows)?;
                let returned = apply_returning(&returning, new_rows.iter().map(|(r, d)| (r, *d)))?;
                ((updates, returned), format!("UPDATE {count}"), "UPDATE")
            }
        };
        let (updates, returned) = updates;
        self.write_or_buffer(writer, vec![(id, updates)])?;
        Ok(dml_response(tag, tag_prefix, returning, returned))
    }
}

fn dml_response(
    tag: String,
    tag_prefix: &str,
    returning: Option<Returning>,
    returned: Vec<Row>,
) -> ExecuteResponse {
    match returning {
        Some(r) => ExecuteResponse::Rows {
            desc: r.desc,
            rows: returned,
            tag: tag_prefix.to_string(),
        },
        None => ExecuteResponse::Command { tag },
    }
}

fn check_not_null(
    name: &str,
    desc: &RelationDesc,
    rows: &[(Row, Diff)],
) -> Result<(), AdapterError> {
    for (row, _) in rows {
        for (datum, (column, typ)) in row.iter().zip(desc.iter()) {
            if datum.is_null() && !typ.nullable {
                let e = EvalError::NotNullViolation {
                    relation: name.to_string(),
                    column: column.clone(),
                };
                return Err(e.into());
            }
        }
    }
    Ok(())
}

fn apply_returning<'a>(
    returning: &Option<Returning>,
    rows: impl Iterator<Item = (&'a Row, Diff)>,
) -> Result<Vec<Row>, AdapterError> {
    let Some(returning) = returning else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for (row, diff) in rows {
        let arena = RowArena::new();
        let datums: Vec<Datum> = row.iter().collect();
        let values = returning
            .exprs
            .iter()
            .map(|e| e.eval(&datums, &arena))
            .collect::<Result<Vec<_>, _>>()?;
        for _ in 0..diff.max(0) {
            out.push(Row::pack(&values));
        }
    }
    Ok(out)
}

fn finish_rows(
    rows: Result<Vec<(Row, Diff)>, EvalError>,
    finishing: &RowSetFinishing,
    desc: RelationDesc,
) -> Result<ExecuteResponse, AdapterError> {
    let rows = rows?;
    let rows = finishing.finish(rows).map_err(AdapterError::internal)?;
    Ok(ExecuteResponse::Rows {
        desc,
        rows,
        tag: "SELECT".into(),
    })
}

/// How a SELECT reads an index directly.
struct FastPath {
    index: GlobalId,
    index_name: String,
    mfp: expr::MapFilterProject,
    key: Option<Row>,
}

/// The key to look up when `mfp`'s predicates fix every column of `columns` (an
/// index's key) to a non-null literal of that column's type: `#c = literal`.
fn lookup_key(
    mfp: &expr::MapFilterProject,
    columns: &[usize],
    types: &[repr::ColumnType],
) -> Option<Row> {
    let fixed = |c: usize| {
        mfp.predicates.iter().find_map(|(_, p)| {
            let MirScalarExpr::CallBinary {
                func: expr::BinaryFunc::Eq,
                expr1,
                expr2,
            } = p
            else {
                return None;
            };
            let literal = match (&**expr1, &**expr2) {
                (MirScalarExpr::Column(x), lit) | (lit, MirScalarExpr::Column(x)) if *x == c => lit,
                _ => return None,
            };
            match literal {
                MirScalarExpr::Literal(Ok(row), typ)
                    if types.get(c).map(|t| t.scalar_type) == Some(typ.scalar_type) =>
                {
                    let datum = row.iter().next()?;
                    (!datum.is_null()).then(|| row.clone())
                }
                _ => None,
            }
        })
    };
    let literals: Vec<Row> = columns.iter().map(|&c| fixed(c)).collect::<Option<_>>()?;
    Some(Row::pack(literals.iter().flat_map(|r| r.iter())))
}

/// A SELECT's rows as `COPY ... TO STDOUT` sends them.
fn into_copy(response: ExecuteResponse) -> ExecuteResponse {
    match response {
        ExecuteResponse::Rows { desc, rows, .. } => ExecuteResponse::CopyOut { desc, rows },
        other => other,
    }
}

fn explain_desc(stage: ExplainStage) -> RelationDesc {
    let name = match stage {
        ExplainStage::Raw => "Raw Plan",
        ExplainStage::Decorrelated => "Decorrelated Plan",
        ExplainStage::Optimized => "Optimized Plan",
        ExplainStage::Physical => "Physical Plan",
    };
    RelationDesc::empty().with_column(name, ScalarType::String.nullable(false))
}

fn show_desc(name: &str) -> RelationDesc {
    if name == "all" {
        return RelationDesc::empty()
            .with_column("name", ScalarType::String.nullable(false))
            .with_column("setting", ScalarType::String.nullable(false))
            .with_column("description", ScalarType::String.nullable(false));
    }
    RelationDesc::empty().with_column(name, ScalarType::String.nullable(false))
}

#[cfg(test)]
mod tests {
    use repr::{ColumnType, RelationType};

    use super::*;

    fn int_row(v: i32) -> Row {
        Row::pack_slice(&[Datum::Int32(v)])
    }

    fn table_type() -> RelationType {
        RelationType::new(vec![ColumnType {
            scalar_type: ScalarType::Int32,
            nullable: true,
        }])
    }

    fn get(id: u64) -> MirRelationExpr {
        MirRelationExpr::Get {
            id: GlobalId::User(id),
            typ: table_type(),
            name: format!("t{id}"),
        }
    }

    fn parse(sql: &str) -> Vec<ParsedStatement> {
        sql::parse::parse(sql).unwrap()
    }

    fn txn(writes: Vec<(GlobalId, Vec<(Row, Diff)>)>) -> TxnWrites {
        let mut txn = TxnWrites::new(&Session::new(1, 2, "u", "d"));
        txn.writes = writes;
        txn
    }

    #[test]
    fn pending_updates_are_consolidated_per_table() {
        let (t1, t2, t3) = (GlobalId::User(1), GlobalId::User(2), GlobalId::User(3));
        let txn = txn(vec![
            (t1, vec![(int_row(31), 1), (int_row(1), 1)]),
            (t2, vec![(int_row(40), -1)]),
            // UPDATE of a row inserted earlier in the block: retract it, add the new one.
            (t1, vec![(int_row(31), -1), (int_row(32), 1)]),
            (t1, vec![(int_row(1), 1)]),
            // Inserted and deleted again: nothing is pending for the table.
            (t3, vec![(int_row(5), 1)]),
            (t3, vec![(int_row(5), -1)]),
        ]);
        let pending = txn.pending_updates();
        assert_eq!(
            pending,
            BTreeMap::from([
                (t1, vec![(int_row(1), 2), (int_row(32), 1)]),
                (t2, vec![(int_row(40), -1)]),
            ])
        );
    }

    #[test]
    fn gets_of_written_tables_read_the_pending_updates() {
        let pending = BTreeMap::from([(GlobalId::User(1), vec![(int_row(31), 1)])]);
        let mut expr = MirRelationExpr::Join {
            inputs: vec![get(1).filter(vec![MirScalarExpr::Column(0)]), get(2)],
            equivalences: vec![],
        };
        read_own_writes(&mut expr, &pending);
        let MirRelationExpr::Join { inputs, .. } = &expr else {
            panic!("the root stays a join: {expr}");
        };
        let MirRelationExpr::Filter { input, .. } = &inputs[0] else {
            panic!("the filter stays: {expr}");
        };
        match &**input {
            MirRelationExpr::Union { base, inputs } => {
                assert!(
                    matches!(**base, MirRelationExpr::Get { id, .. } if id == GlobalId::User(1))
                );
                assert_eq!(inputs.len(), 1);
                match &inputs[0] {
                    MirRelationExpr::Constant { rows, typ } => {
                        assert_eq!(rows, &Ok(vec![(int_row(31), 1)]));
                        assert_eq!(typ, &table_type());
                    }
                    other => panic!("expected the pending rows, got {other}"),
                }
            }
            other => panic!("expected Get ∪ Constant, got {other}"),
        }
        // A table without pending writes is read as it is.
        assert!(matches!(&inputs[1], MirRelationExpr::Get { id, .. } if *id == GlobalId::User(2)));
        assert_eq!(
            expr.depends_on(),
            [GlobalId::User(1), GlobalId::User(2)].into()
        );
    }

    #[test]
    fn every_get_of_a_written_table_is_rewritten() {
        let pending = BTreeMap::from([(GlobalId::User(1), vec![(int_row(7), -1)])]);
        // Both reads of the table see the pending retraction, under a Threshold.
        let mut expr = MirRelationExpr::Union {
            base: Box::new(get(1)),
            inputs: vec![get(1).negate()],
        };
        read_own_writes(&mut expr, &pending);
        fn is_thresholded_union(e: &MirRelationExpr) -> bool {
            let MirRelationExpr::Threshold { input } = e else {
                return false;
            };
            matches!(&**input, MirRelationExpr::Union { base, .. } if matches!(**base, MirRelationExpr::Get { .. }))
        }
        fn count(e: &MirRelationExpr) -> usize {
            is_thresholded_union(e) as usize + e.children().into_iter().map(count).sum::<usize>()
        }
        assert_eq!(count(&expr), 2);
        // Nothing pending: the expression is untouched.
        let mut unchanged = get(1);
        read_own_writes(&mut unchanged, &BTreeMap::new());
        assert_eq!(unchanged, get(1));
    }

    #[test]
    fn multi_statement_strings_without_transaction_control_are_implicit_transactions() {
        let idle = Session::new(1, 2, "u", "d");
        let mut in_block = idle.clone();
        in_block.transaction = TransactionStatus::InBlock;
        let two = parse("INSERT INTO t VALUES (1); SELECT 1/0");
        assert!(implicit_transaction(&idle, &two));
        assert!(!implicit_transaction(&in_block, &two));
        assert!(!implicit_transaction(
            &idle,
            &parse("INSERT INTO t VALUES (1)")
        ));
        for sql in [
            "INSERT INTO t VALUES (1); BEGIN",
            "BEGIN; INSERT INTO t VALUES (1); COMMIT",
            "SELECT 1; START TRANSACTION",
            "SELECT 1; ROLLBACK",
            "SELECT 1; END",
            "SELECT 1; COMMIT WORK",
        ] {
            assert!(!implicit_transaction(&idle, &parse(sql)), "{sql}");
        }
    }

    #[test]
    fn set_local_is_recognised_from_the_text() {
        let one = |sql: &str| parse(sql).remove(0);
        assert!(is_set_local(&one("SET LOCAL application_name = 'x'")));
        assert!(is_set_local(&one("set  local\n search_path TO public")));
        assert!(!is_set_local(&one("SET application_name = 'local'")));
        assert!(!is_set_local(&one("SET SESSION application_name = 'x'")));
        assert!(!is_set_local(&one("SHOW application_name")));
    }
}
