//! `Plan::LetRec` (see its contract on `expr::Plan`): recursive bindings rendered in a
//! nested iterative scope, whose timestamps are `(time, round)` pairs.
//!
//! Each binding is a differential `Variable` that starts empty and is set to its value
//! consolidated, so a binding's value at round `r + 1` is what round `r` computed;
//! differential iterates until no round changes anything, and does so again, only
//! for what changed, whenever an input changes. A value reads the bindings before it
//! as computed in the same round (the rendered collection, not the variable).
//!
//! A limit of `n` rounds keeps only the updates of rounds `0 .. n` of every value, so
//! from round `n` on nothing changes and the loop stops. For `ERROR AT RECURSION
//! LIMIT`, the updates a value would still make at round `n` are the evidence that it
//! had not converged: each becomes a "recursion limit" error.
//!
//! Errors raised computing a value do not circulate (the variable carries rows only);
//! they join the result's errors, and like the rows, the errors of the last round
//! are what leaves the scope. The body is rendered outside the loop, reading the
//! bindings' fixed points.
//!
//! A `LetRec` inside a binding's value would need a scope per nesting level; the
//! planner refuses one, and rendering one yields an error instead.

use differential_dataflow::operators::iterate::VecVariable;
use differential_dataflow::AsCollection;
use expr::{LetRecLimit, LocalId, Plan};
use repr::{Diff, EvalError, Row, Timestamp};
use timely::dataflow::operators::core::Filter;
use timely::order::Product;

use crate::{CollectionBundle, Context, RenderTime};

/// The parts of a `Plan::LetRec`.
#[derive(Clone, Copy)]
pub struct LetRecRef<'a> {
    pub ids: &'a [LocalId],
    pub values: &'a [Plan],
    pub limit: Option<LetRecLimit>,
    pub body: &'a Plan,
}

type Round = Product<Timestamp, u64>;

impl RenderTime for Timestamp {
    fn render_delta_join<'s>(
        inputs: Vec<CollectionBundle<'s, Self>>,
        plan: &expr::plan::DeltaJoinPlan,
    ) -> CollectionBundle<'s, Self> {
        crate::delta_join::render_delta_join(inputs, plan)
    }

    fn render_letrec<'s>(
        ctx: &mut Context<'s, Self>,
        letrec: LetRecRef<'_>,
    ) -> CollectionBundle<'s, Self> {
        let outer = ctx.scope;
        let (bindings, value_errs) = outer.iterative::<u64, _, _>(|inner| {
            let mut rec: Context<'_, Round> = Context::new(inner, ctx.as_of);
            // What the values may read from outside: every collection in scope,
            // entered at round 0.
            for (id, bundle) in &ctx.collections {
                rec.collections.insert(*id, enter(bundle, inner));
            }
            for (id, bundle) in &ctx.locals {
                rec.locals.insert(*id, enter(bundle, inner));
            }
            let no_errors = || differential_dataflow::collection::concatenate(inner, None);
            let step = Product::new(Timestamp::default(), 1);
            let mut variables = Vec::with_capacity(letrec.ids.len());
            for id in letrec.ids {
                let (variable, oks) = VecVariable::new(inner, step);
                rec.locals.insert(
                    *id,
                    CollectionBundle {
                        oks,
                        errs: no_errors(),
                    },
                );
                variables.push(variable);
            }
            let mut value_errs = Vec::new();
            let mut bindings = Vec::new();
            for ((id, value), variable) in letrec.ids.iter().zip(letrec.values).zip(variables) {
                let bundle = rec.render_plan(value);
                let mut oks = bundle.oks.consolidate();
                if let Some(limit) = letrec.limit {
                    let max = limit.max_iters;
                    if !limit.return_at_limit {
                        let late = oks.clone().inner.filter(move |(_, t, _)| t.inner >= max);
                        value_errs.push(limit_errors(late.as_collection(), max));
                    }
                    oks = oks
                        .inner
                        .filter(move |(_, t, _)| t.inner < max)
                        .as_collection();
                }
                variable.set(oks.clone());
                value_errs.push(bundle.errs);
                // Later values read this round's value.
                rec.locals.insert(
                    *id,
                    CollectionBundle {
                        oks: oks.clone(),
                        errs: no_errors(),
                    },
                );
                bindings.push((*id, oks.leave(outer)));
            }
            let errs = differential_dataflow::collection::concatenate(inner, value_errs)
                .distinct_core::<Diff>()
                .leave(outer);
            (bindings, errs)
        });
        // The body reads the fixed points, outside the loop.
        let mut shadowed = Vec::new();
        for (id, oks) in bindings {
            let errs = differential_dataflow::collection::concatenate(outer, None);
            shadowed.push((id, ctx.locals.insert(id, CollectionBundle { oks, errs })));
        }
        let body = ctx.render_plan(letrec.body);
        for (id, previous) in shadowed.into_iter().rev() {
            match previous {
                Some(previous) => ctx.locals.insert(id, previous),
                None => ctx.locals.remove(&id),
            };
        }
        CollectionBundle {
            oks: body.oks,
            errs: body.errs.concat(value_errs),
        }
    }
}

impl RenderTime for Round {
    /// A round's times are only partially ordered: the first path (a whole join on its
    /// own) renders as a linear join.
    fn render_delta_join<'s>(
        inputs: Vec<CollectionBundle<'s, Self>>,
        plan: &expr::plan::DeltaJoinPlan,
    ) -> CollectionBundle<'s, Self> {
        crate::join::render_linear_join(inputs, &plan.paths[0])
    }

    fn render_letrec<'s>(
        ctx: &mut Context<'s, Self>,
        _letrec: LetRecRef<'_>,
    ) -> CollectionBundle<'s, Self> {
        let error = EvalError::Internal("WITH MUTUALLY RECURSIVE nested in another".into());
        ctx.render_plan(&Plan::Constant { rows: Err(error) })
    }
}

fn enter<'o, 'i>(
    bundle: &CollectionBundle<'o, Timestamp>,
    inner: timely::dataflow::Scope<'i, Round>,
) -> CollectionBundle<'i, Round> {
    CollectionBundle {
        oks: bundle.oks.clone().enter(inner),
        errs: bundle.errs.clone().enter(inner),
    }
}

/// One "recursion limit" error while `late` (a value's updates at rounds `max` and
/// after) does not cancel out row by row: the value had not converged.
fn limit_errors<'i>(
    late: differential_dataflow::VecCollection<'i, Round, Row, Diff>,
    max: u64,
) -> crate::ErrCollection<'i, Round> {
    late.threshold_named(
        "RecursionLimit",
        |_row, count: &Diff| {
            if *count != 0 {
                1
            } else {
                0
            }
        },
    )
    .map(move |_row| EvalError::RecursionLimit(max))
    .distinct_core::<Diff>()
}
