//! The subscribe sink: a collection's updates, batched by completed time ranges.
//!
//! All updates (and errors) go to worker 0, which buffers them until the input
//! frontier passes their time. Each time the frontier advances from `lower` to `upper`
//! it calls `emit(lower, upper, updates)`: every update at a time in `[lower, upper)`,
//! consolidated, and the promise that no update below `upper` will follow. The first
//! batch starts at the dataflow's `as_of`, so its updates at `as_of` are the snapshot.
//! A batch whose range holds an error carries the error instead of updates, and is
//! the last one. Once `upper` reaches `up_to` the sink emits nothing more.

use std::collections::BTreeMap;

use differential_dataflow::consolidation::consolidate_updates;
use repr::{Diff, EvalError, Row, Timestamp};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;

use crate::CollectionBundle;

/// Consolidated updates sorted by time, or the error the collection holds.
pub type SubscribeUpdates = Result<Vec<(Row, Timestamp, Diff)>, EvalError>;

/// Attaches a subscribe sink to `bundle`; `emit` runs on worker 0 only.
pub fn subscribe_sink(
    bundle: CollectionBundle<'_>,
    name: &str,
    as_of: Timestamp,
    up_to: Option<Timestamp>,
    mut emit: impl FnMut(Timestamp, Timestamp, SubscribeUpdates) + 'static,
) {
    let CollectionBundle { oks, errs } = bundle;
    let results = oks.map(Ok).concat(errs.map(Err));
    let worker0 = results.inner.scope().index() == 0;
    let mut lower = as_of;
    let mut finished = false;
    type Update = (Result<Row, EvalError>, Timestamp, Diff);
    let mut pending: BTreeMap<Timestamp, Vec<Update>> = BTreeMap::new();
    results.inner.sink(
        Exchange::new(|_update: &Update| 0u64),
        &format!("Subscribe({name})"),
        move |(input, frontier)| {
            input.for_each(|_cap, data: &mut Vec<Update>| {
                if finished {
                    data.clear();
                    return;
                }
                for update in data.drain(..) {
                    pending.entry(update.1).or_default().push(update);
                }
            });
            if !worker0 || finished {
                return;
            }
            let mut upper = frontier
                .frontier()
                .iter()
                .min()
                .copied()
                .unwrap_or(Timestamp::MAX);
            if let Some(up_to) = up_to {
                upper = upper.min(up_to);
            }
            if upper <= lower {
                return;
            }
            let done: Vec<Timestamp> = pending.range(..upper).map(|(t, _)| *t).collect();
            let mut updates: Vec<Update> = Vec::new();
            for t in done {
                updates.extend(pending.remove(&t).expect("listed above"));
            }
            consolidate_updates(&mut updates);
            let error = updates
                .iter()
                .find_map(|(r, _, d)| r.as_ref().err().filter(|_| *d > 0).cloned());
            let updates = match error {
                Some(error) => {
                    finished = true;
                    pending.clear();
                    Err(error)
                }
                None => {
                    let mut rows: Vec<(Row, Timestamp, Diff)> = updates
                        .into_iter()
                        .filter_map(|(r, t, d)| r.ok().map(|r| (r, t, d)))
                        .collect();
                    rows.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
                    Ok(rows)
                }
            };
            emit(lower, upper, updates);
            lower = upper;
            if up_to.is_some_and(|u| upper >= u) || upper == Timestamp::MAX {
                finished = true;
                pending.clear();
            }
        },
    );
}
