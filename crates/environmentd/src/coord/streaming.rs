//! The coordinator's streaming side: the tick, read timestamps, subscriptions and
//! cursors, and `EXPLAIN TIMESTAMP`.
//!
//! Timestamps. Every tick (default 10 ms) the coordinator takes a fresh write
//! timestamp `t` from the oracle and asks storaged to advance every table's upper to
//! `t + 1`, so collections progress without writes: subscriptions report progress and
//! `serializable` reads stay fresh; `t` then counts as applied, so the oracle's read
//! timestamp follows the clock (and with it `mz_now()`, which temporal filters
//! compare rows with). A read picks its timestamp by the session's
//! `transaction_isolation`:
//! - `strict serializable` (the default): the oracle's read timestamp, at or after
//!   every acknowledged write and the latest tick; the read waits until its inputs
//!   are complete there;
//! - `serializable`: the freshest timestamp every input is already complete at (no
//!   waiting); it may not include the latest writes;
//! - inside an explicit transaction block, the first read's timestamp is kept for every
//!   later SELECT of the block (a consistent snapshot);
//! - `AS OF t` reads at `t`.
//!
//! Subscriptions. `SUBSCRIBE` renders a transient dataflow with a subscribe export at
//! the chosen `as_of`; its batches arrive through [`Coordinator::handle_subscribe_batch`]
//! and are formatted by [`SubscribeOutput`] and delivered to the client's stream or to
//! a cursor. A subscription ends at its `UP TO`, when its client goes away, is
//! cancelled, falls more than `max_subscribe_buffer_rows` behind, or when a relation it
//! reads is dropped (the client gets an error, never a hang).

use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compute_client::{BuildDesc, DataflowDescription, SubscribeBatch, SubscribeExport};
use expr::MirRelationExpr;
use repr::{Datum, GlobalId, RelationDesc, Row, ScalarType, Timestamp};
use sql::streaming::SubscribePlan;
use sql::{Plan, PlanError};

use super::{Coordinator, PeekPurpose, Step};
use crate::adapter::{AdapterError, ExecuteResponse, SubscribeMessage, SubscribeStream};
use crate::session::{Session, TransactionStatus};
use crate::subscribe::{
    buffer_exceeded, ActiveSubscribe, Cursor, CursorState, SubscribeOutput, SubscribeSink,
};

/// How often FETCH timeouts and sinces are looked at, however long the tick.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(10);

fn canceled() -> AdapterError {
    AdapterError::new("57014", "canceling statement due to user request")
}

fn no_cursor(name: &str) -> AdapterError {
    AdapterError::new("34000", format!("cursor \"{name}\" does not exist"))
}

pub(super) fn explain_timestamp_desc() -> RelationDesc {
    RelationDesc::empty().with_column("Timestamp", ScalarType::String.nullable(false))
}

impl Coordinator {
    /// Housekeeping, at least every [`HOUSEKEEPING_INTERVAL`]: expires FETCH timeouts,
    /// moves sinces, and when the tick is due advances every table's upper to a fresh
    /// timestamp.
    pub(super) fn tick(&mut self) {
        let now = Instant::now();
        self.next_housekeeping = now + HOUSEKEEPING_INTERVAL;
        if now >= self.next_tick {
            self.advance_uppers();
        }
        self.complete_fetches();
        if self.holds.due() {
            self.compact_collections();
        }
    }

    /// When the coordinator's loop must wake up next without any message.
    pub(super) fn next_wakeup(&self) -> Instant {
        self.next_tick.min(self.next_housekeeping)
    }

    fn advance_uppers(&mut self) {
        self.next_tick = Instant::now() + self.tick_interval;
        self.flush_group_commit();
        if self.catalog.tables().next().is_some() {
            match self.oracle.write_ts() {
                Ok(ts) => match self.storage.advance_uppers(ts + 1) {
                    // Every table is complete at `ts`: reads may use it, so the read
                    // timestamp (and `mz_now()`) follows the clock between writes.
                    Ok(()) => self.oracle.apply_write(ts),
                    Err(e) => tracing::warn!(error = %e, "advancing table uppers failed"),
                },
                Err(e) => tracing::warn!(error = %e, "the tick could not get a timestamp"),
            }
        }
    }

    /// The timestamp a read of `source` uses (see the module documentation).
    ///
    /// Inside an explicit block the first read's timestamp is kept for the block's later
    /// reads, and the block holds it on every collection it read (see `compaction`).
    /// A subscription uses the block's timestamp if there is one but does not fix it:
    /// it holds its own `as_of` while it reads its snapshot.
    pub(super) fn read_timestamp(
        &mut self,
        session: &Session,
        as_of: Option<Timestamp>,
        source: &MirRelationExpr,
    ) -> Result<Timestamp, AdapterError> {
        self.choose_read_timestamp(session, as_of, source, true)
    }

    fn choose_read_timestamp(
        &mut self,
        session: &Session,
        as_of: Option<Timestamp>,
        source: &MirRelationExpr,
        pin: bool,
    ) -> Result<Timestamp, AdapterError> {
        let inputs = self.storage_inputs(source);
        if let Some(ts) = as_of {
            self.check_readable(ts, &inputs)?;
            return Ok(ts);
        }
        let conn_id = session.conn_id;
        let in_block = session.transaction == TransactionStatus::InBlock;
        if in_block {
            if let Some(ts) = self.transactions.get(&conn_id).and_then(|t| t.read_ts) {
                // A collection the block did not read before may have moved on.
                self.check_readable(ts, &inputs)?;
                if pin {
                    self.note_block_reads(conn_id, &inputs);
                }
                return Ok(ts);
            }
        }
        let ts = if session.is_strict_serializable() {
            self.oracle.read_ts()
        } else {
            self.freshest_timestamp(source)
                .unwrap_or_else(|| self.oracle.read_ts())
                .max(self.read_since(source))
        };
        if in_block && pin {
            if let Some(txn) = self.transactions.get_mut(&conn_id) {
                txn.read_ts = Some(ts);
            }
            self.note_block_reads(conn_id, &inputs);
        }
        Ok(ts)
    }

    /// Records the collections a transaction block read (and their indexes): the block
    /// holds its timestamp on them until it ends.
    fn note_block_reads(&mut self, conn_id: u32, inputs: &[GlobalId]) {
        let indexes: Vec<GlobalId> = inputs
            .iter()
            .flat_map(|id| self.catalog.indexes_on(*id).map(|i| i.id))
            .collect();
        if let Some(txn) = self.transactions.get_mut(&conn_id) {
            txn.read_inputs
                .extend(inputs.iter().copied().chain(indexes));
        }
    }

    /// The latest time every input of `source` is complete at, if all have data.
    fn freshest_timestamp(&self, source: &MirRelationExpr) -> Option<Timestamp> {
        let mut upper = Timestamp::MAX;
        for (id, frontier) in self.input_frontiers(source) {
            upper = upper.min(frontier.1);
            if let Some(index) = self.catalog.indexes_on(id).next() {
                upper = upper.min(self.index_uppers.get(&index.id).copied().unwrap_or(0));
            }
        }
        (upper > 0 && upper != Timestamp::MAX).then(|| upper - 1)
    }

    /// The (since, upper) of the shard of every table and materialized view `source`
    /// reads.
    fn input_frontiers(&self, source: &MirRelationExpr) -> Vec<(GlobalId, (Timestamp, Timestamp))> {
        source
            .depends_on()
            .into_iter()
            .filter_map(|id| {
                let (shard, _) = self.catalog.shard_of(id)?;
                let state = self.persist.inspect_shard(shard.parse().ok()?).ok()?;
                Some((id, (state.since, state.upper)))
            })
            .collect()
    }

    /// `EXPLAIN TIMESTAMP FOR SELECT ...`: the timestamp the query would read at, and why.
    pub(super) fn explain_timestamp(
        &mut self,
        session: &Session,
        source: &MirRelationExpr,
    ) -> Result<ExecuteResponse, AdapterError> {
        let pinned = self
            .transactions
            .get(&session.conn_id)
            .and_then(|t| t.read_ts)
            .filter(|_| session.transaction == TransactionStatus::InBlock);
        let chosen = self.read_timestamp(session, None, source)?;
        let frontiers = self.input_frontiers(source);
        let since = frontiers.iter().map(|(_, (s, _))| *s).max().unwrap_or(0);
        let upper = frontiers
            .iter()
            .map(|(_, (_, u))| *u)
            .min()
            .unwrap_or(Timestamp::MAX);
        let isolation = session.get("transaction_isolation").unwrap_or_default();
        let reason = if pinned.is_some() {
            "the transaction block's first read (every SELECT of a block reads one snapshot)"
        } else if session.is_strict_serializable() {
            "the oracle's read timestamp: at or after every acknowledged write"
        } else {
            "the freshest timestamp every input is already complete at"
        };
        let mut text = String::new();
        text.push_str(&format!("                query timestamp: {chosen}\n"));
        text.push_str(&format!(
            "          oracle read timestamp: {}\n",
            self.oracle.read_ts()
        ));
        text.push_str(&format!("                isolation level: {isolation}\n"));
        text.push_str(&format!("                         reason: {reason}\n"));
        text.push_str(&format!("                          since:[{since}]\n"));
        if upper == Timestamp::MAX {
            text.push_str("                          upper:[]\n");
        } else {
            text.push_str(&format!("                          upper:[{upper}]\n"));
        }
        text.push_str(&format!(
            "        can respond immediately: {}\n",
            chosen < upper
        ));
        for (id, (since, upper)) in &frontiers {
            let name = self
                .catalog
                .entry(*id)
                .map(|e| e.name().to_string())
                .unwrap_or_default();
            text.push_str(&format!(
                "\nsource {name} ({id}, storage):\n                  read frontier:[{since}]\n                 write frontier:[{upper}]\n"
            ));
        }
        for id in source.depends_on() {
            if let Some(index) = self.catalog.indexes_on(id).next() {
                let upper = self.index_uppers.get(&index.id).copied().unwrap_or(0);
                text.push_str(&format!(
                    "\nindex {} ({}, compute):\n                 write frontier:[{upper}]\n",
                    index.name, index.id
                ));
            }
        }
        Ok(ExecuteResponse::Rows {
            desc: explain_timestamp_desc(),
            rows: vec![Row::pack_slice(&[Datum::String(&text)])],
            tag: "EXPLAIN".into(),
        })
    }

    /// Starts a subscription's dataflow; `None` when it has nothing to run (its AS OF
    /// equals its UP TO).
    fn start_subscribe(
        &mut self,
        session: &Session,
        plan: &SubscribePlan,
        sink: SubscribeSink,
    ) -> Result<Option<GlobalId>, AdapterError> {
        if let (Some(as_of), Some(up_to)) = (plan.as_of, plan.up_to) {
            if as_of > up_to {
                return Err(AdapterError::new(
                    "22023",
                    format!("AS OF ({as_of}) must be less than or equal to UP TO ({up_to})"),
                ));
            }
        }
        let as_of = self.choose_read_timestamp(session, plan.as_of, &plan.source, false)?;
        if let Some(up_to) = plan.up_to {
            if as_of > up_to {
                return Err(AdapterError::new(
                    "22023",
                    format!("AS OF ({as_of}) must be less than or equal to UP TO ({up_to})"),
                ));
            }
            if as_of == up_to {
                return Ok(None);
            }
        }
        let lir = sql::lir::plan_to_lir(&plan.source)?;
        let source_imports = self.source_imports(&plan.source)?;
        self.next_transient_id += 2;
        let object_id = GlobalId::Transient(self.next_transient_id - 1);
        let subscribe_id = GlobalId::Transient(self.next_transient_id);
        let mut subscribe_exports = std::collections::BTreeMap::new();
        subscribe_exports.insert(
            subscribe_id,
            SubscribeExport {
                on_id: object_id,
                up_to: plan.up_to,
            },
        );
        let header = 1 + usize::from(plan.progress);
        let output = SubscribeOutput {
            upsert_key: plan.upsert_key.clone(),
            snapshot: plan.snapshot,
            progress: plan.progress,
            as_of,
            up_to: plan.up_to,
            trailing_columns: plan.output_desc().arity() - header,
        };
        self.subscribes.insert(
            subscribe_id,
            ActiveSubscribe {
                conn_id: session.conn_id,
                secret_key: session.secret_key,
                output,
                depends_on: plan.source.depends_on(),
                sink,
                buffer_limit: session.max_subscribe_buffer_rows(),
            },
        );
        self.holds
            .hold_build(subscribe_id, as_of, self.storage_inputs(&plan.source));
        self.compute.create_dataflow(DataflowDescription {
            debug_name: format!("subscribe-{subscribe_id}"),
            source_imports,
            index_imports: Default::default(),
            objects_to_build: vec![BuildDesc {
                id: object_id,
                plan: lir,
            }],
            index_exports: Default::default(),
            sink_exports: Default::default(),
            subscribe_exports,
            as_of,
            until: plan.up_to,
        });
        Ok(Some(subscribe_id))
    }

    /// `SUBSCRIBE` or `COPY (SUBSCRIBE ...) TO STDOUT`: rows stream to the client.
    pub(super) fn subscribe_to_client(
        &mut self,
        session: &Session,
        plan: SubscribePlan,
        copy: bool,
    ) -> Result<ExecuteResponse, AdapterError> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let sink = SubscribeSink::Stream {
            tx: tx.clone(),
            queued: Arc::clone(&queued),
        };
        if self.start_subscribe(session, &plan, sink)?.is_none() {
            let _ = tx.send(SubscribeMessage::Complete);
        }
        Ok(ExecuteResponse::Subscribe {
            desc: plan.output_desc(),
            stream: SubscribeStream { rx, queued },
            copy,
        })
    }

    /// Delivers one batch of a subscription.
    pub(super) fn handle_subscribe_batch(&mut self, id: GlobalId, batch: SubscribeBatch) {
        self.holds.frontier_passed(id, batch.upper);
        let Some(subscribe) = self.subscribes.get(&id) else {
            return;
        };
        let updates = match batch.updates {
            Ok(updates) => updates,
            Err(e) => return self.end_subscribe(id, Err(e.into())),
        };
        let rows = subscribe.output.rows(&updates, batch.upper);
        let finished = subscribe.output.up_to.is_some_and(|u| batch.upper >= u);
        match &subscribe.sink {
            SubscribeSink::Stream { .. } => match subscribe.send_rows(rows) {
                Ok(true) => {}
                // The client went away: nobody to tell.
                Ok(false) => return self.remove_subscribe(id),
                Err(e) => return self.end_subscribe(id, Err(e)),
            },
            SubscribeSink::Cursor { name } => {
                let limit = subscribe.buffer_limit;
                let key = (subscribe.conn_id, name.clone());
                let Some(cursor) = self.cursors.get_mut(&key) else {
                    return self.remove_subscribe(id);
                };
                if cursor.rows.len() + rows.len() > limit {
                    return self.end_subscribe(id, Err(buffer_exceeded(limit)));
                }
                cursor.rows.extend(rows);
            }
        }
        if finished {
            self.end_subscribe(id, Ok(()));
        } else {
            self.complete_fetches();
        }
    }

    /// Drops a subscription's dataflow without telling its client.
    fn remove_subscribe(&mut self, id: GlobalId) {
        if self.subscribes.remove(&id).is_some() {
            self.compute.drop_collection(id);
        }
    }

    /// Ends a subscription: its client (or cursor) learns that it completed or failed.
    fn end_subscribe(&mut self, id: GlobalId, result: Result<(), AdapterError>) {
        let Some(subscribe) = self.subscribes.remove(&id) else {
            return;
        };
        self.compute.drop_collection(id);
        match &subscribe.sink {
            SubscribeSink::Stream { .. } => subscribe.finish(match result {
                Ok(()) => SubscribeMessage::Complete,
                Err(e) => SubscribeMessage::Error(e),
            }),
            SubscribeSink::Cursor { name } => {
                if let Some(cursor) = self.cursors.get_mut(&(subscribe.conn_id, name.clone())) {
                    cursor.state = match result {
                        Ok(()) => CursorState::Done,
                        Err(e) => CursorState::Failed(e),
                    };
                }
            }
        }
        self.complete_fetches();
    }

    /// A cancel request: the connection's streaming subscription and waiting FETCH end
    /// with 57014.
    pub(super) fn cancel_streaming(&mut self, conn_id: u32, secret_key: i32) {
        let streams: Vec<GlobalId> = self
            .subscribes
            .iter()
            .filter(|(_, s)| {
                s.conn_id == conn_id
                    && s.secret_key == secret_key
                    && matches!(s.sink, SubscribeSink::Stream { .. })
            })
            .map(|(id, _)| *id)
            .collect();
        for id in streams {
            self.end_subscribe(id, Err(canceled()));
        }
        let (cancelled, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_fetches)
            .into_iter()
            .partition(|f| {
                f.job.session.conn_id == conn_id && f.job.session.secret_key == secret_key
            });
        self.pending_fetches = waiting;
        for fetch in cancelled {
            self.fail_job(fetch.job, canceled());
        }
    }

    /// The connection closed: its subscriptions end.
    pub(super) fn end_connection_subscribes(&mut self, conn_id: u32) {
        let ids: Vec<GlobalId> = self
            .subscribes
            .iter()
            .filter(|(_, s)| s.conn_id == conn_id)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.remove_subscribe(id);
        }
    }

    /// Relations are being dropped: subscriptions reading them end with an error.
    pub(super) fn end_dropped_subscribes(&mut self, dropped: &[(GlobalId, String)]) {
        let ended: Vec<(GlobalId, String)> = self
            .subscribes
            .iter()
            .filter_map(|(id, s)| {
                dropped
                    .iter()
                    .find(|(d, _)| s.depends_on.contains(d))
                    .map(|(_, name)| (*id, name.clone()))
            })
            .collect();
        for (id, name) in ended {
            let error = AdapterError::new(
                "42P01",
                format!("subscribe has been terminated because underlying relation \"{name}\" was dropped"),
            );
            self.end_subscribe(id, Err(error));
        }
    }

    /// `DECLARE name CURSOR FOR SUBSCRIBE ... | SELECT ...`.
    pub(super) fn declare(
        &mut self,
        session: &Session,
        in_transaction: bool,
        name: String,
        inner: Plan,
    ) -> Step {
        let conn_id = session.conn_id;
        if !in_transaction {
            return Step::Done(Err(AdapterError::new(
                "25P01",
                "DECLARE CURSOR can only be used in transaction blocks",
            )));
        }
        if self.cursors.contains_key(&(conn_id, name.clone())) {
            return Step::Done(Err(AdapterError::new(
                "42P03",
                format!("cursor \"{name}\" already exists"),
            )));
        }
        let declared = || {
            Step::Done(Ok(ExecuteResponse::Command {
                tag: "DECLARE CURSOR".into(),
            }))
        };
        match inner {
            Plan::Subscribe(plan) => {
                let sink = SubscribeSink::Cursor { name: name.clone() };
                let state = match self.start_subscribe(session, &plan, sink) {
                    Ok(Some(id)) => CursorState::Running(id),
                    Ok(None) => CursorState::Done,
                    Err(e) => return Step::Done(Err(e)),
                };
                let cursor = Cursor {
                    desc: plan.output_desc(),
                    rows: VecDeque::new(),
                    state,
                };
                self.cursors.insert((conn_id, name), cursor);
                declared()
            }
            Plan::Select {
                source,
                desc,
                finishing,
                as_of,
            } => {
                if let MirRelationExpr::Constant { rows, .. } = &source {
                    return match super::finish_rows(rows.clone(), &finishing, desc) {
                        Ok(response) => {
                            self.open_select_cursor(conn_id, name, response);
                            declared()
                        }
                        Err(e) => Step::Done(Err(e)),
                    };
                }
                let source = match self.prepare_read(session, source, as_of) {
                    Ok(source) => source,
                    Err(e) => return Step::Done(Err(e)),
                };
                let timestamp = match self.read_timestamp(session, as_of, &source) {
                    Ok(ts) => ts,
                    Err(e) => return Step::Done(Err(e)),
                };
                let purpose = PeekPurpose::Declare {
                    name,
                    desc,
                    finishing,
                };
                self.peek(source, purpose, Some(timestamp))
            }
            _ => Step::Done(Err(PlanError::unsupported(
                "DECLARE of statements other than SELECT and SUBSCRIBE",
            )
            .into())),
        }
    }

    /// A SELECT's rows fill a new cursor.
    pub(super) fn open_select_cursor(
        &mut self,
        conn_id: u32,
        name: String,
        response: ExecuteResponse,
    ) {
        if let ExecuteResponse::Rows { desc, rows, .. } = response {
            let cursor = Cursor {
                desc,
                rows: rows.into(),
                state: CursorState::Done,
            };
            self.cursors.insert((conn_id, name), cursor);
        }
    }

    /// `FETCH`: rows now if the cursor has some (or is finished, or the timeout is 0),
    /// else the job waits for rows or the timeout.
    pub(super) fn fetch(
        &mut self,
        conn_id: u32,
        name: String,
        count: Option<u64>,
        timeout: Option<Duration>,
    ) -> Step {
        let Some(cursor) = self.cursors.get(&(conn_id, name.clone())) else {
            return Step::Done(Err(no_cursor(&name)));
        };
        let ready = !cursor.rows.is_empty()
            || !matches!(cursor.state, CursorState::Running(_))
            || timeout == Some(Duration::ZERO)
            || count == Some(0);
        if ready {
            return Step::Done(self.take_rows(conn_id, &name, count));
        }
        Step::Fetching {
            name,
            count,
            deadline: timeout.map(|t| Instant::now() + t),
        }
    }

    /// Up to `count` rows from a cursor (all buffered rows for `None`).
    fn take_rows(
        &mut self,
        conn_id: u32,
        name: &str,
        count: Option<u64>,
    ) -> Result<ExecuteResponse, AdapterError> {
        let cursor = self
            .cursors
            .get_mut(&(conn_id, name.to_string()))
            .ok_or_else(|| no_cursor(name))?;
        if cursor.rows.is_empty() {
            if let CursorState::Failed(e) = &cursor.state {
                return Err(e.clone());
            }
        }
        let n = count
            .map(|c| usize::try_from(c).unwrap_or(usize::MAX))
            .unwrap_or(usize::MAX)
            .min(cursor.rows.len());
        let rows: Vec<Row> = cursor.rows.drain(..n).collect();
        Ok(ExecuteResponse::Rows {
            desc: cursor.desc.clone(),
            rows,
            tag: "FETCH".into(),
        })
    }

    /// Answers every waiting FETCH that has rows, a finished cursor, or a passed
    /// deadline.
    pub(super) fn complete_fetches(&mut self) {
        if self.pending_fetches.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut ready = Vec::new();
        for fetch in std::mem::take(&mut self.pending_fetches) {
            let key = (fetch.job.session.conn_id, fetch.name.clone());
            let is_ready = match self.cursors.get(&key) {
                None => true,
                Some(c) => {
                    !c.rows.is_empty()
                        || !matches!(c.state, CursorState::Running(_))
                        || fetch.deadline.is_some_and(|d| d <= now)
                }
            };
            if is_ready {
                ready.push(fetch);
            } else {
                self.pending_fetches.push(fetch);
            }
        }
        for mut fetch in ready {
            let conn_id = fetch.job.session.conn_id;
            match self.take_rows(conn_id, &fetch.name, fetch.count) {
                Ok(response) => {
                    fetch.job.responses.push(response);
                    self.advance_job(fetch.job);
                }
                Err(e) => self.fail_job(fetch.job, e),
            }
        }
    }

    /// `CLOSE name | ALL`.
    pub(super) fn close(
        &mut self,
        conn_id: u32,
        name: Option<String>,
    ) -> Result<ExecuteResponse, AdapterError> {
        match &name {
            Some(n) if !self.cursors.contains_key(&(conn_id, n.clone())) => Err(no_cursor(n)),
            _ => {
                let all = name.is_none();
                self.close_cursors(conn_id, name.as_deref());
                Ok(ExecuteResponse::Command {
                    tag: if all {
                        "CLOSE CURSOR ALL"
                    } else {
                        "CLOSE CURSOR"
                    }
                    .into(),
                })
            }
        }
    }

    /// Closes the connection's cursor `name`, or all of them; their subscriptions end.
    pub(super) fn close_cursors(&mut self, conn_id: u32, name: Option<&str>) {
        let keys: Vec<(u32, String)> = self
            .cursors
            .keys()
            .filter(|(c, n)| *c == conn_id && name.is_none_or(|name| name == n))
            .cloned()
            .collect();
        for key in keys {
            if let Some(Cursor {
                state: CursorState::Running(id),
                ..
            }) = self.cursors.remove(&key)
            {
                self.remove_subscribe(id);
            }
        }
    }
}
