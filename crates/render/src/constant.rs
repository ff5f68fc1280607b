//! `Plan::Constant`: literal rows, emitted by worker 0 at the dataflow's `as_of`.

use differential_dataflow::AsCollection;
use repr::{Diff, EvalError, Row};
use timely::dataflow::operators::ToStream;

use crate::{CollectionBundle, Context, RenderTime};

pub fn render_constant<'s, T: RenderTime>(
    ctx: &Context<'s, T>,
    rows: &Result<Vec<(Row, Diff)>, EvalError>,
) -> CollectionBundle<'s, T> {
    let as_of = T::to_inner(ctx.as_of);
    let worker0 = ctx.scope.index() == 0;
    type Updates<D, T> = Vec<(D, T, Diff)>;
    let (oks, errs): (Updates<Row, T>, Updates<EvalError, T>) = match rows {
        _ if !worker0 => (vec![], vec![]),
        Ok(rows) => (
            rows.iter()
                .map(|(r, d)| (r.clone(), as_of.clone(), *d))
                .collect(),
            vec![],
        ),
        Err(e) => (vec![], vec![(e.clone(), as_of, 1)]),
    };
    // `to_stream` emits at the minimum time; the updates' own times are `as_of`.
    let oks = oks.to_stream(ctx.scope).as_collection();
    let errs = errs.to_stream(ctx.scope).as_collection();
    CollectionBundle { oks, errs }
}
