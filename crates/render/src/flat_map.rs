//! `Plan::FlatMap` (see its contract on `expr::Plan`): each input row becomes the rows
//! its table function returns, each appended to it and passed through the MFP.
//! Evaluation errors go to the error collection with the input row's multiplicity.

use expr::{MapFilterProject, MirScalarExpr, RowArena, TableFunc};
use repr::{Datum, EvalError, Row, RowPacker};

use crate::{split_results, CollectionBundle, RenderTime};

pub fn render_flat_map<'s, T: RenderTime>(
    input: CollectionBundle<'s, T>,
    func: TableFunc,
    exprs: Vec<MirScalarExpr>,
    mfp: MapFilterProject,
) -> CollectionBundle<'s, T> {
    let results = input
        .oks
        .flat_map(move |row| flat_map_row(&row, &func, &exprs, &mfp));
    let out = split_results(results);
    CollectionBundle {
        oks: out.oks,
        errs: input.errs.concat(out.errs),
    }
}

/// The output rows of one input row, or the one error it raises.
pub fn flat_map_row(
    row: &Row,
    func: &TableFunc,
    exprs: &[MirScalarExpr],
    mfp: &MapFilterProject,
) -> Vec<Result<Row, EvalError>> {
    let arena = RowArena::new();
    let datums: Vec<Datum> = row.iter().collect();
    let run = || -> Result<Vec<Row>, EvalError> {
        let mut args = Vec::with_capacity(exprs.len());
        for e in exprs {
            args.push(e.eval(&datums, &arena)?);
        }
        let produced = func.eval(&args)?;
        let mut packer = RowPacker::new();
        let mut out = Vec::with_capacity(produced.len());
        // The MFP runs on borrowed datums, so input columns it projects away (a
        // window's packed partition) are never copied into each output row.
        let mut joined: Vec<Datum> = Vec::with_capacity(datums.len() + 4);
        for extra in &produced {
            joined.clear();
            joined.extend(datums.iter().copied());
            joined.extend(extra.iter());
            if mfp.evaluate_inner(&mut joined, &arena)? {
                packer.extend(mfp.projection.iter().map(|c| joined[*c]));
                out.push(packer.finish_and_reuse());
            }
        }
        Ok(out)
    };
    match run() {
        Ok(rows) => rows.into_iter().map(Ok).collect(),
        Err(e) => vec![Err(e)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expr::Plan;
    use repr::{Diff, ScalarType, Timestamp};
    use std::sync::{Arc, Mutex};

    use crate::Context;

    type Captured<D> = Arc<Mutex<Vec<(D, Timestamp, Diff)>>>;
    type Updates<D> = Vec<(D, Timestamp, Diff)>;

    /// Renders a FlatMap over constant `rows` in a one-worker dataflow and returns the
    /// consolidated `(data, time, diff)` of the rows and of the errors.
    fn run(
        rows: Vec<(Row, Diff)>,
        func: TableFunc,
        exprs: Vec<MirScalarExpr>,
        mfp: MapFilterProject,
    ) -> (Updates<Row>, Updates<EvalError>) {
        let oks: Captured<Row> = Arc::default();
        let errs: Captured<EvalError> = Arc::default();
        let (o, e) = (Arc::clone(&oks), Arc::clone(&errs));
        let plan = Plan::FlatMap {
            input: Box::new(Plan::Constant { rows: Ok(rows) }),
            func,
            exprs,
            mfp,
        };
        timely::execute_directly(move |worker| {
            worker.dataflow::<Timestamp, _, _>(|scope| {
                let mut ctx = Context::new(scope, 0);
                let out = ctx.render_plan(&plan);
                out.oks.consolidate().inspect(move |(d, t, r)| {
                    o.lock().unwrap().push((d.clone(), *t, *r));
                });
                out.errs.consolidate().inspect(move |(d, t, r)| {
                    e.lock().unwrap().push((d.clone(), *t, *r));
                });
            });
            while worker.step() {}
        });
        let mut oks = oks.lock().unwrap().clone();
        oks.sort();
        let mut errs = errs.lock().unwrap().clone();
        errs.sort();
        (oks, errs)
    }

    fn int(v: i32) -> Datum<'static> {
        Datum::Int32(v)
    }

    #[test]
    fn series_per_row_with_multiplicities_and_errors() {
        let lit = |v| MirScalarExpr::literal(int(v), ScalarType::Int32);
        // generate_series(1, #0, #1) for rows (2, 1) x2 and (5, 0).
        let exprs = vec![lit(1), MirScalarExpr::column(0), MirScalarExpr::column(1)];
        let rows = vec![
            (Row::pack_slice(&[int(2), int(1)]), 2),
            (Row::pack_slice(&[int(5), int(0)]), 1),
        ];
        let keep_last = MapFilterProject::new(3).project([0, 2]);
        let (oks, errs) = run(rows, TableFunc::GenerateSeriesInt32, exprs, keep_last);
        assert_eq!(
            oks,
            vec![
                (Row::pack_slice(&[int(2), int(1)]), 0, 2),
                (Row::pack_slice(&[int(2), int(2)]), 0, 2),
            ]
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0.to_string(), "step size cannot equal zero");
        assert_eq!(errs[0].2, 1);
    }
}
