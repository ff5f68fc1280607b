//! `JoinPlan::Delta` (see `expr::plan::DeltaJoinPlan`): every input is arranged by
//! the keys the other inputs look it up by (each `(input, key)` once, shared by the
//! paths), and each input's changes flow along their own path of [`half_join`]s. No
//! intermediate result is arranged, so a join's state is its inputs, once per key.
//!
//! A half join holds each change back until the arrangement it looks up is complete at
//! the change's time, then emits the change joined with the arrangement's rows as of
//! that time (or as of just before it, for a strict lookup). It compacts its handle on
//! the arrangement only to just before the earliest time it may still look up, so the
//! strict comparison stays exact. Delta joins render only at the dataflow's
//! totally ordered [`Timestamp`]s; inside a `LetRec` the first path renders as a
//! linear join (see [`crate::letrec`]).

use differential_dataflow::hashable::Hashable;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::cursor::cursor_list;
use differential_dataflow::trace::implementations::ValSpine;
use differential_dataflow::trace::{Cursor, TraceReader};
use differential_dataflow::{AsCollection, VecCollection};
use expr::plan::DeltaJoinPlan;
use expr::MirScalarExpr;
use repr::{Diff, Row, RowPacker, Timestamp};
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::CapabilitySet;
use timely::progress::frontier::Antichain;

use crate::join::key_by;
use crate::mfp::render_mfp;
use crate::{CollectionBundle, ErrCollection};

/// An input arranged by a lookup key: key row to the input's row.
type KeyedArrangement<'s> = Arranged<'s, TraceAgent<ValSpine<Row, Row, Timestamp, Diff>>>;

/// The most output rows a half join emits per activation before yielding.
const FUEL: usize = 1 << 20;

pub fn render_delta_join<'s>(
    inputs: Vec<CollectionBundle<'s, Timestamp>>,
    plan: &DeltaJoinPlan,
) -> CollectionBundle<'s, Timestamp> {
    let mut errs: Vec<ErrCollection<'s>> = inputs.iter().map(|b| b.errs.clone()).collect();
    let mut arrangements: Vec<(usize, Vec<MirScalarExpr>, KeyedArrangement<'s>)> = Vec::new();
    let mut results = Vec::new();
    for (rank, path) in plan.paths.iter().enumerate() {
        let mut stream = inputs[path.source].oks.clone();
        for stage in &path.stages {
            let lookup = stage.lookup_input;
            let existing = arrangements
                .iter()
                .find(|(input, key, _)| *input == lookup && *key == stage.lookup_key);
            let arranged = match existing {
                Some((_, _, arranged)) => arranged.clone(),
                None => {
                    let (keyed, key_errs) =
                        key_by(inputs[lookup].oks.clone(), stage.lookup_key.clone(), false);
                    errs.push(key_errs);
                    let arranged = keyed.arrange_by_key_named("DeltaJoinArrangement");
                    arrangements.push((lookup, stage.lookup_key.clone(), arranged.clone()));
                    arranged
                }
            };
            // The inputs whose paths come later see this path's changes; this path
            // sees their rows only from before the change's time.
            let strict = plan.paths[rank + 1..]
                .iter()
                .any(|later| later.source == lookup);
            let (keyed, key_errs) = key_by(stream, stage.stream_key.clone(), false);
            errs.push(key_errs);
            stream = half_join(keyed, arranged, strict);
        }
        let joined = CollectionBundle {
            oks: stream,
            errs: inputs[path.source].errs.clone(),
        };
        let result = render_mfp(joined, path.final_mfp.clone());
        errs.push(result.errs);
        results.push(result.oks);
    }
    drop(arrangements);
    let scope = results[0].scope();
    let oks = differential_dataflow::collection::concatenate(scope, results);
    // Each error once (see `crate::join`).
    let errs = differential_dataflow::collection::concatenate(scope, errs).distinct_core::<Diff>();
    CollectionBundle { oks, errs }
}

fn joined(left: &Row, right: &Row) -> Row {
    let mut packer = RowPacker::new();
    packer.extend_from_row(left);
    packer.extend_from_row(right);
    packer.finish()
}

/// Joins each change `((key, row), t, d)` of `stream` with the rows `arranged` holds
/// under `key` at times `<= t` (`< t` when `strict`), emitting `(row ++ other, t,
/// d * multiplicity)`.
pub fn half_join<'s>(
    stream: VecCollection<'s, Timestamp, (Row, Row), Diff>,
    arranged: KeyedArrangement<'s>,
    strict: bool,
) -> VecCollection<'s, Timestamp, Row, Diff> {
    let scope = stream.scope();
    let mut trace = Some(arranged.trace);
    // Changes go to the worker holding their key's part of the arrangement.
    let exchange = Exchange::new(|update: &((Row, Row), Timestamp, Diff)| (update.0).0.hashed());
    stream
        .inner
        .binary_frontier(
            arranged.stream,
            exchange,
            Pipeline,
            "HalfJoin",
            move |_capability, info| {
                let activator = scope.activator_for(info.address);
                let mut pending: Vec<((Row, Row), Timestamp, Diff)> = Vec::new();
                let mut capabilities = CapabilitySet::new();
                move |(changes, changes_frontier), (batches, complete), output| {
                    changes.for_each(|capability, data| {
                        for capability in capability.retain_stamp(0).iter() {
                            capabilities.insert(capability.clone());
                        }
                        pending.append(data);
                    });
                    batches.for_each(|_, _| {});
                    let trace_slot = &mut trace;
                    let Some(trace) = trace_slot.as_mut() else {
                        pending.clear();
                        return;
                    };
                    let mut drop_trace = false;
                    // The changes whose time the arrangement is complete at, by key.
                    let complete = complete.frontier().to_owned();
                    let (mut ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut pending)
                        .into_iter()
                        .partition(|(_, t, _)| !complete.less_equal(t));
                    pending = waiting;
                    if !ready.is_empty() {
                        ready.sort_by(|a, b| a.0 .0.cmp(&b.0 .0));
                        let batches = trace
                            .batches_through(Antichain::new().borrow())
                            .unwrap_or_default();
                        let (mut cursor, storage) = cursor_list(batches);
                        let mut session = output.session(&capabilities);
                        let mut emitted = 0;
                        let mut done = 0;
                        for ((key, row), time, diff) in &ready {
                            if emitted >= FUEL {
                                break;
                            }
                            done += 1;
                            cursor.seek_key(&storage, key);
                            if cursor.get_key(&storage) != Some(key) {
                                continue;
                            }
                            cursor.rewind_vals(&storage);
                            while let Some(other) = cursor.get_val(&storage) {
                                let mut count: Diff = 0;
                                cursor.map_times(&storage, |t, d| {
                                    if (strict && t < time) || (!strict && t <= time) {
                                        count += *d;
                                    }
                                });
                                if count != 0 {
                                    session.give((joined(row, other), *time, diff * count));
                                    emitted += 1;
                                }
                                cursor.step_val(&storage);
                            }
                        }
                        drop(session);
                        if done < ready.len() {
                            pending.extend(ready.drain(done..));
                            activator.activate();
                        }
                    }
                    // Hold output capabilities for the changes still pending, and the
                    // arrangement's history for the earliest change still to come.
                    match pending.iter().map(|(_, t, _)| *t).min() {
                        Some(earliest) => capabilities.downgrade([earliest]),
                        None => capabilities = CapabilitySet::new(),
                    }
                    let earliest = pending
                        .iter()
                        .map(|(_, t, _)| *t)
                        .chain(changes_frontier.frontier().iter().copied())
                        .min();
                    match earliest {
                        Some(earliest) => {
                            let before = Antichain::from_elem(earliest.saturating_sub(1));
                            trace.set_logical_compaction(before.borrow());
                            trace.set_physical_compaction(complete.borrow());
                        }
                        // No change will come: the arrangement may go.
                        None => drop_trace = true,
                    }
                    if drop_trace {
                        trace_slot.take();
                    }
                }
            },
        )
        .as_collection()
}
