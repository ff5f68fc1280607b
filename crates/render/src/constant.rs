//! `Plan::Constant`: literal rows, emitted by worker 0 at the dataflow's `as_of`.

use differential_dataflow::AsCollection;
use repr::{Diff, EvalError, Row, Timestamp};
use timely::dataflow::operators::ToStream;

use crate::{CollectionBundle, Context};

pub fn render_constant<'s>(
    ctx: &Context<'s>,
    rows: &Result<Vec<(Row, Diff)>, EvalError>,
) -> CollectionBundle<'s> {
    let as_of = ctx.as_of;
    let worker0 = ctx.scope.index() == 0;
    type Updates<D> = Vec<(D, Timestamp, Diff)>;
    let (oks, errs): (Updates<Row>, Updates<EvalError>) = match rows {
        _ if !worker0 => (vec![], vec![]),
        Ok(rows) => (
            rows.iter().map(|(r, d)| (r.clone(), as_of, *d)).collect(),
            vec![],
        ),
        Err(e) => (vec![], vec![(e.clone(), as_of, 1)]),
    };
    // `to_stream` emits at the minimum time; the updates' own times are `as_of`.
    let oks = oks.to_stream(ctx.scope).as_collection();
    let errs = errs.to_stream(ctx.scope).as_collection();
    CollectionBundle { oks, errs }
}
