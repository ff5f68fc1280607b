//! Rendering: LIR [`Plan`]s into timely/differential dataflow operators.
//!
//! Module map (one module per LIR operator family; the semantics of each are documented
//! once, on `expr::Plan`):
//! - [`persist_source`]: reads a persist shard into a collection (snapshot, then listen).
//! - [`constant`], [`mfp`], [`flat_map`], [`join`] (with [`join_tactic`]),
//!   [`delta_join`], [`reduce`], [`threshold`], [`topk`]:
//!   the operators; [`letrec`]: recursive bindings in an iterative scope;
//!   [`temporal`]: rows that enter and leave the result as time passes (`mz_now()`).
//! - [`persist_sink`], [`subscribe`]: the sinks (a shard; a stream of batches to a client).
//! - [`Context`]: the collections built so far in one dataflow, by id.
//!
//! Every rendered plan is a pair of collections, rows and errors ([`CollectionBundle`]).
//! If the error collection is empty, the row collection is correct; a bad row (division
//! by zero, overflow) becomes an error update and never panics a worker.

pub mod constant;
pub mod delta_join;
pub mod flat_map;
pub mod join;
pub mod join_tactic;
pub mod letrec;
pub mod mfp;
pub mod persist_sink;
pub mod persist_source;
pub mod reduce;
pub mod subscribe;
pub mod temporal;
pub mod threshold;
pub mod topk;

use std::collections::BTreeMap;

use differential_dataflow::lattice::Lattice;
use differential_dataflow::VecCollection;
use expr::Plan;
use repr::{Diff, EvalError, GlobalId, Row, Timestamp};
use timely::dataflow::Scope;
use timely::progress::timestamp::Refines;

/// The rows of a collection (in a scope with timestamps `T`: the dataflow's own, or
/// the iterative scope of a `LetRec`).
pub type OkCollection<'s, T = Timestamp> = VecCollection<'s, T, Row, Diff>;
/// The errors raised computing a collection.
pub type ErrCollection<'s, T = Timestamp> = VecCollection<'s, T, EvalError, Diff>;

/// The timestamps plans render at: the dataflow's [`Timestamp`], and the
/// `(Timestamp, iteration)` pairs inside a `LetRec`'s iterative scope (see [`letrec`]).
pub trait RenderTime: timely::progress::Timestamp + Lattice + Refines<Timestamp> {
    /// Renders `Plan::LetRec` in a scope with these timestamps.
    fn render_letrec<'s>(
        ctx: &mut Context<'s, Self>,
        letrec: letrec::LetRecRef<'_>,
    ) -> CollectionBundle<'s, Self>;

    /// Renders a delta join (a half join compares times, which needs them totally
    /// ordered; elsewhere its first path renders as a linear join).
    fn render_delta_join<'s>(
        inputs: Vec<CollectionBundle<'s, Self>>,
        plan: &expr::plan::DeltaJoinPlan,
    ) -> CollectionBundle<'s, Self>;
}

/// A rendered collection: its rows and its errors.
pub struct CollectionBundle<'s, T: timely::progress::Timestamp = Timestamp> {
    pub oks: OkCollection<'s, T>,
    pub errs: ErrCollection<'s, T>,
}

impl<T: timely::progress::Timestamp> Clone for CollectionBundle<'_, T> {
    fn clone(&self) -> Self {
        CollectionBundle {
            oks: self.oks.clone(),
            errs: self.errs.clone(),
        }
    }
}

/// The collections available to plans of one dataflow (or of one `LetRec`'s scope).
pub struct Context<'s, T: RenderTime = Timestamp> {
    pub scope: Scope<'s, T>,
    pub as_of: Timestamp,
    pub collections: BTreeMap<GlobalId, CollectionBundle<'s, T>>,
    /// Collections bound by the enclosing `Plan::Let`s and `Plan::LetRec`s.
    pub locals: BTreeMap<expr::LocalId, CollectionBundle<'s, T>>,
}

impl<'s, T: RenderTime> Context<'s, T> {
    pub fn new(scope: Scope<'s, T>, as_of: Timestamp) -> Self {
        Context {
            scope,
            as_of,
            collections: BTreeMap::new(),
            locals: BTreeMap::new(),
        }
    }

    pub fn insert(&mut self, id: GlobalId, bundle: CollectionBundle<'s, T>) {
        self.collections.insert(id, bundle);
    }

    /// Renders `plan`: the entry point for every LIR operator.
    pub fn render_plan(&mut self, plan: &Plan) -> CollectionBundle<'s, T> {
        match plan {
            Plan::Constant { rows } => constant::render_constant(self, rows),
            Plan::Let { id, value, body } => {
                let value = self.render_plan(value);
                let shadowed = self.locals.insert(*id, value);
                let result = self.render_plan(body);
                match shadowed {
                    Some(previous) => self.locals.insert(*id, previous),
                    None => self.locals.remove(id),
                };
                result
            }
            Plan::LetRec {
                ids,
                values,
                limit,
                body,
            } => T::render_letrec(
                self,
                letrec::LetRecRef {
                    ids,
                    values,
                    limit: *limit,
                    body,
                },
            ),
            Plan::GetLocal { id, mfp } => {
                let bundle = self
                    .locals
                    .get(id)
                    .unwrap_or_else(|| panic!("plan uses {id} outside its Let"))
                    .clone();
                mfp::render_mfp(bundle, mfp.clone())
            }
            Plan::Get { id, mfp } => {
                let bundle = self
                    .collections
                    .get(id)
                    .unwrap_or_else(|| panic!("dataflow imports {id} before using it"))
                    .clone();
                mfp::render_mfp(bundle, mfp.clone())
            }
            Plan::Mfp { input, mfp } => mfp::render_mfp(self.render_plan(input), mfp.clone()),
            Plan::TemporalFilter { input, bounds } => {
                temporal::render_temporal_filter(self.render_plan(input), bounds.clone())
            }
            Plan::FlatMap {
                input,
                func,
                exprs,
                mfp,
            } => flat_map::render_flat_map(
                self.render_plan(input),
                func.clone(),
                exprs.clone(),
                mfp.clone(),
            ),
            Plan::Join { inputs, plan } => {
                let inputs: Vec<_> = inputs.iter().map(|i| self.render_plan(i)).collect();
                join::render_join(inputs, plan)
            }
            Plan::Reduce { input, key, plan } => {
                reduce::render_reduce(self.render_plan(input), key.clone(), plan.clone())
            }
            Plan::Negate { input } => {
                let input = self.render_plan(input);
                CollectionBundle {
                    oks: input.oks.negate(),
                    errs: input.errs,
                }
            }
            Plan::Threshold { input } => threshold::render_threshold(self.render_plan(input)),
            Plan::TopK { input, plan } => topk::render_topk(self.render_plan(input), plan.clone()),
            Plan::Union { inputs } => {
                let rendered: Vec<_> = inputs.iter().map(|i| self.render_plan(i)).collect();
                let oks = differential_dataflow::collection::concatenate(
                    self.scope,
                    rendered.iter().map(|b| b.oks.clone()),
                );
                let errs = differential_dataflow::collection::concatenate(
                    self.scope,
                    rendered.iter().map(|b| b.errs.clone()),
                );
                CollectionBundle { oks, errs }
            }
        }
    }
}

/// Splits a collection of results into rows and errors.
pub fn split_results<'s, T: RenderTime>(
    results: VecCollection<'s, T, Result<Row, EvalError>, Diff>,
) -> CollectionBundle<'s, T> {
    let oks = results.clone().flat_map(|r| r.ok());
    let errs = results.flat_map(|r| r.err());
    CollectionBundle { oks, errs }
}
