//! Rendering: LIR [`Plan`]s into timely/differential dataflow operators.
//!
//! Module map (one module per LIR operator family; the semantics of each are documented
//! once, on `expr::Plan`):
//! - [`persist_source`]: reads a persist shard into a collection (snapshot, then listen).
//! - [`constant`], [`mfp`], [`flat_map`], [`join`], [`reduce`], [`threshold`], [`topk`]:
//!   the operators.
//! - [`persist_sink`], [`subscribe`]: the sinks (a shard; a stream of batches to a client).
//! - [`Context`]: the collections built so far in one dataflow, by id.
//!
//! Every rendered plan is a pair of collections, rows and errors ([`CollectionBundle`]).
//! If the error collection is empty, the row collection is correct; a bad row (division
//! by zero, overflow) becomes an error update and never panics a worker.

pub mod constant;
pub mod flat_map;
pub mod join;
pub mod mfp;
pub mod persist_sink;
pub mod persist_source;
pub mod reduce;
pub mod subscribe;
pub mod threshold;
pub mod topk;

use std::collections::BTreeMap;

use differential_dataflow::VecCollection;
use expr::Plan;
use repr::{Diff, EvalError, GlobalId, Row, Timestamp};
use timely::dataflow::Scope;

/// The rows of a collection.
pub type OkCollection<'s> = VecCollection<'s, Timestamp, Row, Diff>;
/// The errors raised computing a collection.
pub type ErrCollection<'s> = VecCollection<'s, Timestamp, EvalError, Diff>;

/// A rendered collection: its rows and its errors.
#[derive(Clone)]
pub struct CollectionBundle<'s> {
    pub oks: OkCollection<'s>,
    pub errs: ErrCollection<'s>,
}

/// The collections available to plans of one dataflow.
pub struct Context<'s> {
    pub scope: Scope<'s, Timestamp>,
    pub as_of: Timestamp,
    pub collections: BTreeMap<GlobalId, CollectionBundle<'s>>,
    /// Collections bound by the enclosing `Plan::Let`s.
    pub locals: BTreeMap<expr::LocalId, CollectionBundle<'s>>,
}

impl<'s> Context<'s> {
    pub fn new(scope: Scope<'s, Timestamp>, as_of: Timestamp) -> Self {
        Context {
            scope,
            as_of,
            collections: BTreeMap::new(),
            locals: BTreeMap::new(),
        }
    }

    pub fn insert(&mut self, id: GlobalId, bundle: CollectionBundle<'s>) {
        self.collections.insert(id, bundle);
    }

    /// Renders `plan`: the entry point for every LIR operator.
    pub fn render_plan(&mut self, plan: &Plan) -> CollectionBundle<'s> {
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
pub fn split_results<'s>(
    results: VecCollection<'s, Timestamp, Result<Row, EvalError>, Diff>,
) -> CollectionBundle<'s> {
    let oks = results.clone().flat_map(|r| r.ok());
    let errs = results.flat_map(|r| r.err());
    CollectionBundle { oks, errs }
}
