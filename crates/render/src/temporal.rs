//! `Plan::TemporalFilter` (see its contract on `expr::Plan`): each update is moved to
//! the time its row enters the result, and its retraction is scheduled for the time
//! the row leaves. Both are updates at future times, which differential holds (in
//! arrangements' batchers, the sinks' buffers) until the frontier reaches them; the
//! operator itself keeps no state, so a window's memory is what the window holds.

use differential_dataflow::AsCollection;
use expr::temporal::TemporalBounds;
use expr::RowArena;
use repr::{Datum, Diff, EvalError, Row};
use timely::dataflow::operators::vec::Map;

use crate::{CollectionBundle, RenderTime};

pub fn render_temporal_filter<T: RenderTime>(
    input: CollectionBundle<'_, T>,
    bounds: TemporalBounds,
) -> CollectionBundle<'_, T> {
    type Update<T> = (Result<Row, EvalError>, T, Diff);
    let results = input
        .oks
        .inner
        .flat_map(move |(row, time, diff): (Row, T, Diff)| {
            let arena = RowArena::new();
            let datums: Vec<Datum> = row.iter().collect();
            let mut out: Vec<Update<T>> = Vec::with_capacity(2);
            match bounds.interval(&datums, &arena) {
                Err(e) => out.push((Err(e), time, diff)),
                Ok(None) => {}
                Ok(Some((from, until))) => {
                    let enter = time.join(&T::to_inner(from));
                    match until {
                        Some(until) => {
                            let leave = time.join(&T::to_inner(until));
                            // Rows that left before `time` are not in the result at all.
                            if enter.less_than(&leave) {
                                drop(datums);
                                out.push((Ok(row.clone()), enter, diff));
                                out.push((Ok(row), leave, -diff));
                            }
                        }
                        None => {
                            drop(datums);
                            out.push((Ok(row), enter, diff));
                        }
                    }
                }
            }
            out
        });
    let results = results.as_collection();
    let oks = results.clone().flat_map(|r: Result<Row, EvalError>| r.ok());
    let errs = results.flat_map(|r: Result<Row, EvalError>| r.err());
    CollectionBundle {
        oks,
        errs: input.errs.concat(errs),
    }
}
