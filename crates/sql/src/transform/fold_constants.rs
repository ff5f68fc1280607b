//! Constant folding: literal sub-expressions become literals, and operators over
//! constant inputs become constants (so `INSERT ... VALUES` needs no dataflow).
//!
//! Errors met while folding stay errors: a scalar that fails becomes an error literal,
//! raised only if it is evaluated; a constant collection that fails becomes an error
//! collection.

use expr::{MapFilterProject, MirRelationExpr, MirScalarExpr, RowArena, TableFunc};
use repr::{Datum, Row, RowPacker};

pub fn fold(expr: &mut MirRelationExpr) {
    for child in expr.children_mut() {
        fold(child);
    }
    let input_types = expr.children().first().map(|c| c.typ().column_types);
    match expr {
        MirRelationExpr::Map { scalars, .. } => {
            let mut cols = input_types.unwrap_or_default();
            for s in scalars.iter_mut() {
                s.reduce(&cols);
                cols.push(s.typ(&cols));
            }
        }
        MirRelationExpr::Filter { input, predicates } => {
            let cols = input_types.unwrap_or_default();
            for p in predicates.iter_mut() {
                p.reduce(&cols);
            }
            if predicates.iter().any(|p| p.is_literal_false_or_null()) {
                let typ = input.typ();
                *expr = MirRelationExpr::Constant {
                    rows: Ok(vec![]),
                    typ,
                };
                return;
            }
            predicates.retain(|p| !p.is_literal_true());
            if predicates.is_empty() {
                let inner = std::mem::replace(
                    &mut **input,
                    MirRelationExpr::constant(vec![], Default::default()),
                );
                *expr = inner;
                return;
            }
        }
        MirRelationExpr::FlatMap { exprs, .. } => {
            let cols = input_types.unwrap_or_default();
            exprs.iter_mut().for_each(|e| e.reduce(&cols));
        }
        MirRelationExpr::Reduce {
            group_key,
            aggregates,
            input,
        } => {
            let cols = input.typ().column_types;
            group_key.iter_mut().for_each(|k| k.reduce(&cols));
            aggregates.iter_mut().for_each(|a| a.expr.reduce(&cols));
        }
        _ => {}
    }
    // Evaluate Map / Filter / Project over constant rows (not mz_now(): it has no
    // value before the query's time is chosen).
    let typ = expr.typ();
    let folded = match expr {
        MirRelationExpr::Map { scalars, .. } if scalars.iter().any(|s| s.contains_mz_now()) => None,
        MirRelationExpr::Filter { predicates, .. }
            if predicates.iter().any(|p| p.contains_mz_now()) =>
        {
            None
        }
        MirRelationExpr::Map { input, scalars } => constant_rows(input).map(|rows| {
            let mfp = MapFilterProject::new(input.arity()).map(scalars.iter().cloned());
            apply(rows, &mfp)
        }),
        MirRelationExpr::Filter { input, predicates } => constant_rows(input).map(|rows| {
            let mfp = MapFilterProject::new(input.arity()).filter(predicates.iter().cloned());
            apply(rows, &mfp)
        }),
        MirRelationExpr::Project { input, outputs } => constant_rows(input).map(|rows| {
            let mfp = MapFilterProject::new(input.arity()).project(outputs.iter().copied());
            apply(rows, &mfp)
        }),
        MirRelationExpr::Union { base, inputs } => {
            let mut all = constant_rows(base);
            for i in inputs.iter() {
                all = match (all, constant_rows(i)) {
                    (Some(Ok(mut a)), Some(Ok(b))) => {
                        a.extend(b);
                        Some(Ok(a))
                    }
                    (Some(Err(e)), Some(_)) | (Some(Ok(_)), Some(Err(e))) => Some(Err(e)),
                    _ => None,
                };
            }
            all
        }
        MirRelationExpr::FlatMap { input, func, exprs } => {
            constant_rows(input).and_then(|rows| flat_map_rows(rows, func, exprs))
        }
        MirRelationExpr::Negate { input } => constant_rows(input)
            .map(|rows| rows.map(|r| r.into_iter().map(|(row, d)| (row, -d)).collect())),
        _ => None,
    };
    if let Some(rows) = folded {
        *expr = MirRelationExpr::Constant {
            rows: rows.map(consolidate),
            typ,
        };
    }
}

/// Adds up the multiplicities of equal rows and drops the rows that cancel out (a
/// folded `UNION` with a `Negate` branch), keeping the rows in first-seen order.
fn consolidate(rows: Vec<(Row, i64)>) -> Vec<(Row, i64)> {
    let mut totals: std::collections::BTreeMap<Row, (usize, i64)> = Default::default();
    for (i, (row, diff)) in rows.into_iter().enumerate() {
        totals.entry(row).or_insert((i, 0)).1 += diff;
    }
    let mut out: Vec<(usize, Row, i64)> = totals
        .into_iter()
        .filter(|(_, (_, diff))| *diff != 0)
        .map(|(row, (i, diff))| (i, row, diff))
        .collect();
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, row, diff)| (row, diff)).collect()
}

type Rows = Result<Vec<(Row, i64)>, repr::EvalError>;

fn constant_rows(e: &MirRelationExpr) -> Option<Rows> {
    match e {
        MirRelationExpr::Constant { rows, .. } => Some(rows.clone()),
        _ => None,
    }
}

fn apply(rows: Rows, mfp: &MapFilterProject) -> Rows {
    let rows = rows?;
    let arena = RowArena::new();
    let mut packer = RowPacker::new();
    let mut out = Vec::new();
    for (row, diff) in rows {
        if let Some(r) = mfp.evaluate(&row, &arena, &mut packer)? {
            out.push((r, diff));
        }
    }
    Ok(out)
}

/// The most rows folding a `FlatMap` may produce; a larger result is left to the
/// dataflow, so a long `generate_series` costs no planning time or memory.
const MAX_FOLDED_ROWS: usize = 10_000;

/// `FlatMap` over constant rows, if the result is small.
fn flat_map_rows(rows: Rows, func: &TableFunc, exprs: &[MirScalarExpr]) -> Option<Rows> {
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return Some(Err(e)),
    };
    let arena = RowArena::new();
    let mut packer = RowPacker::new();
    let mut out = Vec::new();
    for (row, diff) in rows {
        let datums: Vec<Datum> = row.iter().collect();
        let mut args = Vec::with_capacity(exprs.len());
        for e in exprs {
            match e.eval(&datums, &arena) {
                Ok(d) => args.push(d),
                Err(e) => return Some(Err(e)),
            }
        }
        let produced = match func.eval_limited(&args, MAX_FOLDED_ROWS - out.len()) {
            Ok(Some(produced)) => produced,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        for extra in produced {
            packer.extend_from_row(&row);
            packer.extend_from_row(&extra);
            out.push((packer.finish_and_reuse(), diff));
        }
    }
    Some(Ok(out))
}

/// Whether an expression is the literal `true` (for callers outside this module).
pub fn is_true(e: &MirScalarExpr) -> bool {
    matches!(e.as_literal(), Some(Ok(Datum::True)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use expr::BinaryFunc;
    use repr::{RelationType, ScalarType};

    #[test]
    fn values_fold_to_constants_and_errors_are_kept() {
        let one_row = MirRelationExpr::constant(vec![Row::default()], RelationType::new(vec![]));
        let lit = |v| MirScalarExpr::literal(Datum::Int32(v), ScalarType::Int32);
        let mut e = one_row
            .clone()
            .map(vec![lit(6).call_binary(lit(3), BinaryFunc::Div)]);
        fold(&mut e);
        let MirRelationExpr::Constant { rows: Ok(rows), .. } = &e else {
            panic!("not folded: {e}")
        };
        assert_eq!(rows, &vec![(Row::pack_slice(&[Datum::Int32(2)]), 1)]);
        let mut bad = one_row.map(vec![lit(1).call_binary(lit(0), BinaryFunc::Div)]);
        fold(&mut bad);
        let MirRelationExpr::Constant { rows: Err(err), .. } = &bad else {
            panic!("not folded: {bad}")
        };
        assert_eq!(err.sqlstate(), "22012");
    }

    #[test]
    fn folded_unions_consolidate() {
        let typ = RelationType::new(vec![ScalarType::Int32.nullable(true)]);
        let row = |v| Row::pack_slice(&[Datum::Int32(v)]);
        let constant = |rows: Vec<Row>| MirRelationExpr::constant(rows, typ.clone());
        // {1, 1, 2} minus {1, 2}: one 1 is left.
        let mut e =
            constant(vec![row(1), row(1), row(2)]).union(constant(vec![row(1), row(2)]).negate());
        fold(&mut e);
        let MirRelationExpr::Constant { rows: Ok(rows), .. } = &e else {
            panic!("not folded: {e}")
        };
        assert_eq!(rows, &vec![(row(1), 1)]);
    }
}
