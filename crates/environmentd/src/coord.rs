//! The coordinator: one thread that owns the catalog, the timestamp oracle and the
//! controllers, and executes every statement of every session.
//!
//! Clients send [`Command`]s (through [`crate::adapter::Client`]). A command becomes a
//! [`Job`]: its statements run one after another; a statement that needs data from a
//! dataflow (a SELECT, or the read half of UPDATE / DELETE / INSERT ... SELECT) issues a
//! peek and parks the job until the compute controller answers. Writes are serialized
//! by a write lock, so a read-then-write never interleaves with another write.

use std::collections::{BTreeMap, VecDeque};

use compute_client::controller::ControllerResponse;
use compute_client::{
    BuildDesc, ComputeController, DataflowDescription, IndexExport, Peek, PeekResponse,
    SourceImport,
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
use crate::catalog::Catalog;
use crate::oracle::TimestampOracle;
use crate::session::{Session, TransactionStatus};

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
}

struct PendingPeek {
    job: Job,
    purpose: PeekPurpose,
    index_id: GlobalId,
}

/// What a statement did: answered, or waiting for a peek, or waiting for the write lock.
enum Step {
    Done(Result<ExecuteResponse, AdapterError>),
    Peeking(Uuid, PeekPurpose, GlobalId),
    NeedsWriteLock(ParsedStatement),
}

/// The buffered writes of an explicit transaction.
#[derive(Default)]
struct TxnWrites {
    writes: Vec<(GlobalId, Vec<(Row, Diff)>)>,
}

pub struct Coordinator {
    catalog: Catalog,
    oracle: TimestampOracle,
    compute: ComputeController,
    storage: StorageController,
    pending_peeks: BTreeMap<Uuid, PendingPeek>,
    /// The connection holding the write lock (a read-then-write in flight).
    write_lock: Option<u32>,
    /// Jobs waiting for the write lock, in arrival order.
    waiting_for_lock: VecDeque<Job>,
    transactions: BTreeMap<u32, TxnWrites>,
    next_transient_id: u64,
}

impl From<PlanError> for AdapterError {
    fn from(e: PlanError) -> Self {
        AdapterError {
            code: e.sqlstate().into(),
            message: e.to_string(),
            detail: None,
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
            detail: None,
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
    ) -> Self {
        Coordinator {
            catalog,
            oracle,
            compute,
            storage,
            pending_peeks: BTreeMap::new(),
            write_lock: None,
            waiting_for_lock: VecDeque::new(),
            transactions: BTreeMap::new(),
            next_transient_id: 0,
        }
    }

    /// Makes every table readable at a fresh timestamp: the first thing after startup.
    pub fn bootstrap(&mut self) -> Result<(), String> {
        for table in self.catalog.tables() {
            self.storage
                .create_collection(table.id, table.shard_id.clone(), table.desc.clone())?;
        }
        let ts = self.oracle.write_ts()?;
        self.storage.append(ts, vec![])?;
        self.oracle.apply_write(ts);
        Ok(())
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
            let op = sel.select();
            let index = op.index();
            if index == command_index {
                match op.recv(&commands) {
                    Ok(command) => self.handle_command(command),
                    Err(_) => return,
                }
                self.resume_lock_waiters();
            } else {
                let (replica, receiver) = &receivers[index - 1];
                match op.recv(receiver) {
                    Ok(response) => {
                        if let Some(merged) = self.compute.handle_response(*replica, response) {
                            self.handle_compute_response(merged);
                        }
                        self.resume_lock_waiters();
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
                let job = Job {
                    session,
                    statements: statements.into(),
                    params,
                    responses: Vec::new(),
                    reply,
                };
                self.advance_job(job);
            }
            Command::Describe {
                session,
                statement,
                param_types,
                reply,
            } => {
                let result = self.describe(&statement, param_types);
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
            }
            Command::Terminate { conn_id } => {
                self.transactions.remove(&conn_id);
            }
        }
    }

    fn describe(
        &mut self,
        statement: &ParsedStatement,
        param_types: Vec<Option<ScalarType>>,
    ) -> Result<StatementDesc, AdapterError> {
        let params = Params {
            types: param_types,
            values: None,
        };
        let (plan, params) = sql::plan(&self.catalog, statement, params)?;
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
            match self.execute_statement(&mut job, statement) {
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
            }
        }
        let _ = job.reply.send((job.session, job.responses, None));
    }

    fn fail_job(&mut self, mut job: Job, error: AdapterError) {
        if job.session.transaction == TransactionStatus::InBlock {
            job.session.transaction = TransactionStatus::Failed;
        }
        if self.write_lock == Some(job.session.conn_id) {
            self.release_write_lock();
        }
        let _ = job.reply.send((job.session, job.responses, Some(error)));
    }

    fn release_write_lock(&mut self) {
        self.write_lock = None;
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
            _ => {
                self.write_lock = Some(conn_id);
                true
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
        let plan = match sql::plan(&self.catalog, &statement, job.params.clone()) {
            Ok((plan, _)) => plan,
            Err(e) => return Step::Done(Err(e.into())),
        };
        let conn_id = job.session.conn_id;
        let in_block = job.session.transaction == TransactionStatus::InBlock;
        let needs_lock = match &plan {
            Plan::ReadThenWrite { .. } => true,
            Plan::Insert { source, .. } => {
                !matches!(source, MirRelationExpr::Constant { .. }) || !in_block
            }
            Plan::Commit => self
                .transactions
                .get(&conn_id)
                .is_some_and(|t| !t.writes.is_empty()),
            Plan::CreateTable { .. } | Plan::DropTables { .. } => true,
            _ => false,
        };
        if needs_lock && !self.try_write_lock(conn_id) {
            return Step::NeedsWriteLock(statement);
        }
        let step = self.execute_plan(job, plan);
        // The lock is held across a peek; released once the statement is done.
        if needs_lock && matches!(step, Step::Done(_)) && self.write_lock == Some(conn_id) {
            self.release_write_lock();
        }
        step
    }

    fn execute_plan(&mut self, job: &mut Job, plan: Plan) -> Step {
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
                let value = match value {
                    SetValue::Default => {
                        return done(
                            session
                                .reset(&name)
                                .map(|_| ExecuteResponse::Command { tag: "SET".into() }),
                        )
                    }
                    SetValue::Values(v) => v.join(", "),
                };
                done(
                    session
                        .set(&name, &value)
                        .map(|_| ExecuteResponse::Command { tag: "SET".into() }),
                )
            }
            Plan::ResetVariable { name } => match name {
                None => {
                    session.reset_all();
                    command("RESET")
                }
                Some(name) => done(session.reset(&name).map(|_| ExecuteResponse::Command {
                    tag: "RESET".into(),
                })),
            },
            Plan::ShowVariable { name } => {
                if name == "all" {
                    let rows = session
                        .all()
                        .map(|(n, v, d)| {
                            Row::pack_slice(&[Datum::String(n), Datum::String(v), Datum::String(d)])
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
                        let rows = vec![Row::pack_slice(&[Datum::String(value)])];
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
                session.transaction = TransactionStatus::InBlock;
                self.transactions.insert(conn_id, TxnWrites::default());
                command("BEGIN")
            }
            Plan::Commit => {
                let failed = session.transaction == TransactionStatus::Failed;
                session.transaction = TransactionStatus::Idle;
                let writes = self
                    .transactions
                    .remove(&conn_id)
                    .map(|t| t.writes)
                    .unwrap_or_default();
                if failed {
                    return command("ROLLBACK");
                }
                match self.write(writes) {
                    Ok(()) => command("COMMIT"),
                    Err(e) => done(Err(e)),
                }
            }
            Plan::Deallocate { all } => command(if all { "DEALLOCATE ALL" } else { "DEALLOCATE" }),
            Plan::Discard { all } => {
                if all {
                    if session.transaction != TransactionStatus::Idle {
                        return done(Err(AdapterError::new("25001", "DISCARD ALL cannot run inside a transaction block")));
                    }
                    session.reset_all();
                    return command("DISCARD ALL");
                }
                command("DISCARD")
            }
            Plan::Rollback => {
                session.transaction = TransactionStatus::Idle;
                self.transactions.remove(&conn_id);
                command("ROLLBACK")
            }
            Plan::CreateTable {
                name,
                desc,
                defaults,
                if_not_exists,
            } => {
                if sql::catalog::SqlCatalog::resolve(&self.catalog, &name).is_some() {
                    if if_not_exists {
                        return command("CREATE TABLE");
                    }
                    return done(Err(PlanError::RelationExists(name).into()));
                }
                let shard_id = persist::ShardId::new().to_string();
                let result = self
                    .catalog
                    .create_table(name, desc, defaults, shard_id)
                    .and_then(|t| self.storage.create_collection(t.id, t.shard_id, t.desc))
                    .and_then(|_| {
                        // Make the new table readable at the next read timestamp.
                        let ts = self.oracle.write_ts()?;
                        self.storage.append(ts, vec![])?;
                        self.oracle.apply_write(ts);
                        Ok(())
                    });
                match result {
                    Ok(()) => command("CREATE TABLE"),
                    Err(e) => done(Err(AdapterError::internal(e))),
                }
            }
            Plan::DropTables { ids } => {
                for (id, _) in ids {
                    if let Err(e) = self
                        .catalog
                        .drop_table(id)
                        .and_then(|_| self.storage.drop_collection(id))
                    {
                        return done(Err(AdapterError::internal(e)));
                    }
                }
                command("DROP TABLE")
            }
            Plan::Explain { stage, text } => {
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
            } => {
                if let MirRelationExpr::Constant { rows, .. } = &source {
                    return done(finish_rows(rows.clone(), &finishing, desc));
                }
                self.peek(source, PeekPurpose::Select { desc, finishing })
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
                    return done(self.finish_insert(conn_id, id, &name, &desc, rows, returning));
                }
                self.peek(
                    source,
                    PeekPurpose::Insert {
                        id,
                        name,
                        desc,
                        returning,
                    },
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
                        self.finish_mutation(conn_id, id, &name, &desc, kind, rows, returning),
                    );
                }
                self.peek(
                    selection,
                    PeekPurpose::Mutate {
                        id,
                        name,
                        desc,
                        kind,
                        returning,
                    },
                )
            }
        }
    }

    /// Builds a transient dataflow computing `source` and peeks it at the read timestamp.
    fn peek(&mut self, source: MirRelationExpr, purpose: PeekPurpose) -> Step {
        let plan = match sql::lir::plan_to_lir(&source) {
            Ok(plan) => plan,
            Err(e) => return Step::Done(Err(e.into())),
        };
        let timestamp = self.oracle.read_ts();
        let mut source_imports = BTreeMap::new();
        for id in source.depends_on() {
            match self.catalog.table(id) {
                Some(table) => {
                    source_imports.insert(
                        id,
                        SourceImport {
                            shard_id: table.shard_id.clone(),
                            desc: table.desc.clone(),
                        },
                    );
                }
                None => {
                    return Step::Done(Err(AdapterError::new(
                        "42P01",
                        format!("relation {id} was dropped"),
                    )))
                }
            }
        }
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
            objects_to_build: vec![BuildDesc {
                id: object_id,
                plan,
            }],
            index_exports,
            as_of: timestamp,
            until: Some(timestamp + 1),
        };
        self.compute.create_dataflow(dataflow);
        let uuid = Uuid::new_v4();
        self.compute.peek(Peek {
            uuid,
            id: index_id,
            timestamp,
        });
        Step::Peeking(uuid, purpose, index_id)
    }

    fn handle_compute_response(&mut self, response: ControllerResponse) {
        let ControllerResponse::PeekResponse { uuid, response } = response else {
            return;
        };
        let Some(PendingPeek {
            mut job,
            purpose,
            index_id,
        }) = self.pending_peeks.remove(&uuid)
        else {
            return;
        };
        self.compute.drop_collection(index_id);
        let conn_id = job.session.conn_id;
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
            PeekPurpose::Insert {
                id,
                name,
                desc,
                returning,
            } => self.finish_insert(conn_id, id, &name, &desc, rows, returning),
            PeekPurpose::Mutate {
                id,
                name,
                desc,
                kind,
                returning,
            } => self.finish_mutation(conn_id, id, &name, &desc, kind, rows, returning),
        });
        if self.write_lock == Some(conn_id) {
            self.release_write_lock();
        }
        match result {
            Ok(response) => {
                job.responses.push(response);
                self.advance_job(job);
            }
            Err(e) => self.fail_job(job, e),
        }
    }

    /// Writes `updates` now, or buffers them in the connection's open transaction.
    fn write_or_buffer(
        &mut self,
        conn_id: u32,
        updates: Vec<(GlobalId, Vec<(Row, Diff)>)>,
    ) -> Result<(), AdapterError> {
        if let Some(txn) = self.transactions.get_mut(&conn_id) {
            txn.writes.extend(updates);
            return Ok(());
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
        conn_id: u32,
        id: GlobalId,
        name: &str,
        desc: &RelationDesc,
        rows: Vec<(Row, Diff)>,
        returning: Option<Returning>,
    ) -> Result<ExecuteResponse, AdapterError> {
        check_not_null(name, desc, &rows)?;
        let count: Diff = rows.iter().map(|(_, d)| *d).sum();
        let returned = apply_returning(&returning, rows.iter().map(|(r, d)| (r, *d)))?;
        self.write_or_buffer(conn_id, vec![(id, rows)])?;
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
        conn_id: u32,
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
        self.write_or_buffer(conn_id, vec![(id, updates)])?;
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
