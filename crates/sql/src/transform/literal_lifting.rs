//! Literal lifting: a column that holds the same literal in every row (a `Map` of a
//! literal, a column of a `Constant` equal in all its rows, a literal every `Union`
//! branch agrees on) is removed where it is made and added back as high up as
//! possible, so joins, reductions and arrangements never carry it. A `Reduce` grouped
//! by such a column groups without it, and `TopK` neither groups nor orders by it.
//!
//! # Contract
//!
//! The expression's output is unchanged. Only literals that are values are lifted:
//! an error literal stays where it is, since lifting it past a filter, a join or a
//! branch would change which rows raise it. Lifting a literal means substituting it
//! for the column in the expressions above, which evaluate to the same values on
//! every row. Operators this module does not know (such as `LetRec`) keep their
//! inputs' literals below them.

use std::collections::BTreeMap;

use expr::{LocalId, MirRelationExpr, MirScalarExpr};
use repr::{ColumnType, RelationType, Row};

/// `original ≡ Project(Map(rewritten, lits), outputs)`.
#[derive(Clone, Debug)]
struct Lifted {
    lits: Vec<MirScalarExpr>,
    outputs: Vec<usize>,
}

impl Lifted {
    fn identity(arity: usize) -> Lifted {
        Lifted {
            lits: vec![],
            outputs: (0..arity).collect(),
        }
    }

    /// Whether the rewritten expression, of arity `m`, is the original.
    fn is_identity(&self, m: usize) -> bool {
        self.lits.is_empty() && self.outputs.iter().copied().eq(0..m)
    }

    /// The value of original column `c`, over the rewritten expression of arity `m`.
    fn column(&self, c: usize, m: usize) -> MirScalarExpr {
        let at = self.outputs[c];
        if at < m {
            MirScalarExpr::Column(at)
        } else {
            self.lits[at - m].clone()
        }
    }
}

pub fn lift(expr: &mut MirRelationExpr) {
    let lifted = lift_in(expr, &mut BTreeMap::new());
    materialize(expr, lifted);
}

fn take(e: &mut MirRelationExpr) -> MirRelationExpr {
    std::mem::replace(e, MirRelationExpr::constant(vec![], Default::default()))
}

fn is_value_literal(e: &MirScalarExpr) -> bool {
    matches!(e.as_literal(), Some(Ok(_)))
}

/// Puts the lifted literals back on top of `expr`.
fn materialize(expr: &mut MirRelationExpr, lifted: Lifted) {
    let m = expr.arity();
    let lifted = prune(lifted, m);
    if lifted.is_identity(m) {
        return;
    }
    let constant = matches!(expr, MirRelationExpr::Constant { .. });
    let inner = take(expr);
    *expr = inner.map(lifted.lits).project(lifted.outputs);
    if constant {
        // Literal columns of a constant nobody lifted past anything go back in.
        super::fold_constants::fold(expr);
    }
}

/// Substitutes the values of the original columns into `e` and folds it.
fn rewrite(e: &mut MirScalarExpr, values: &[MirScalarExpr], types: &[ColumnType]) {
    e.substitute(values);
    e.reduce(types);
}

fn lift_in(
    expr: &mut MirRelationExpr,
    lets: &mut BTreeMap<LocalId, (Lifted, RelationType)>,
) -> Lifted {
    match expr {
        MirRelationExpr::Constant {
            rows: Ok(rows),
            typ,
        } if !rows.is_empty() => {
            let unpacked: Vec<Vec<repr::Datum>> = rows.iter().map(|(r, _)| r.unpack()).collect();
            let arity = typ.arity();
            let same: Vec<bool> = (0..arity)
                .map(|c| {
                    let first = Row::pack_slice(&[unpacked[0][c]]);
                    unpacked.iter().all(|r| Row::pack_slice(&[r[c]]) == first)
                })
                .collect();
            if !same.iter().any(|s| *s) {
                return Lifted::identity(arity);
            }
            let kept: Vec<usize> = (0..arity).filter(|c| !same[*c]).collect();
            let lifted_columns: Vec<usize> = (0..arity).filter(|c| same[*c]).collect();
            let lits: Vec<MirScalarExpr> = lifted_columns
                .iter()
                .map(|c| {
                    MirScalarExpr::Literal(
                        Ok(Row::pack_slice(&[unpacked[0][*c]])),
                        typ.column_types[*c],
                    )
                })
                .collect();
            let mut outputs = vec![0; arity];
            for (i, c) in kept.iter().enumerate() {
                outputs[*c] = i;
            }
            for (i, c) in lifted_columns.iter().enumerate() {
                outputs[*c] = kept.len() + i;
            }
            let new_rows: Vec<(Row, repr::Diff)> = rows
                .iter()
                .zip(&unpacked)
                .map(|((_, d), datums)| {
                    let kept_datums: Vec<repr::Datum> = kept.iter().map(|c| datums[*c]).collect();
                    (Row::pack_slice(&kept_datums), *d)
                })
                .collect();
            let new_typ = RelationType::new(kept.iter().map(|c| typ.column_types[*c]).collect());
            *expr = MirRelationExpr::Constant {
                rows: Ok(new_rows),
                typ: new_typ,
            };
            Lifted { lits, outputs }
        }
        MirRelationExpr::GetLocal { id, typ } => match lets.get(id) {
            Some((lifted, new_typ)) => {
                *typ = new_typ.clone();
                lifted.clone()
            }
            None => Lifted::identity(typ.arity()),
        },
        MirRelationExpr::Let { id, value, body } => {
            let lifted = lift_in(value, lets);
            if !lifted.is_identity(value.arity()) {
                lets.insert(*id, (lifted, value.typ()));
            }
            lift_in(body, lets)
        }
        MirRelationExpr::Project { input, outputs } => {
            let l = lift_in(input, lets);
            if l.lits.is_empty() {
                // Nothing to lift: the Project stays where it is.
                materialize(input, l);
                return Lifted::identity(outputs.len());
            }
            let composed: Vec<usize> = outputs.iter().map(|c| l.outputs[*c]).collect();
            *expr = take(input);
            prune(
                Lifted {
                    lits: l.lits,
                    outputs: composed,
                },
                expr.arity(),
            )
        }
        MirRelationExpr::Map { input, scalars } => {
            let n = input.arity();
            let l = lift_in(input, lets);
            let mut types = input.typ().column_types;
            let m = types.len();
            let mut values: Vec<MirScalarExpr> = (0..n).map(|c| l.column(c, m)).collect();
            let mut kept = Vec::new();
            let mut new_lits = Vec::new();
            // Where each scalar went: Ok(rank among kept) or Err(index among lits).
            let mut placed = Vec::new();
            for s in scalars.drain(..) {
                let mut s = s;
                rewrite(&mut s, &values, &types);
                if is_value_literal(&s) {
                    values.push(s.clone());
                    placed.push(Err(new_lits.len()));
                    new_lits.push(s);
                } else {
                    let column = m + kept.len();
                    types.push(s.typ(&types));
                    values.push(MirScalarExpr::Column(column));
                    placed.push(Ok(kept.len()));
                    kept.push(s);
                }
            }
            let k = kept.len();
            let lits_from_input = l.lits.len();
            let mut outputs: Vec<usize> = l
                .outputs
                .iter()
                .map(|at| if *at < m { *at } else { *at + k })
                .collect();
            for p in placed {
                outputs.push(match p {
                    Ok(rank) => m + rank,
                    Err(i) => m + k + lits_from_input + i,
                });
            }
            let mut lits = l.lits;
            lits.extend(new_lits);
            *expr = take(input).map(kept);
            prune(Lifted { lits, outputs }, m + k)
        }
        MirRelationExpr::Filter { input, predicates } => {
            let n = input.arity();
            let l = lift_in(input, lets);
            let types = input.typ().column_types;
            let values: Vec<MirScalarExpr> = (0..n).map(|c| l.column(c, types.len())).collect();
            for p in predicates.iter_mut() {
                rewrite(p, &values, &types);
            }
            l
        }
        MirRelationExpr::FlatMap { input, func, exprs } => {
            let n = input.arity();
            let l = lift_in(input, lets);
            let types = input.typ().column_types;
            let m = types.len();
            let values: Vec<MirScalarExpr> = (0..n).map(|c| l.column(c, m)).collect();
            for e in exprs.iter_mut() {
                rewrite(e, &values, &types);
            }
            let f = func.output_types().len();
            let outputs = l
                .outputs
                .iter()
                .map(|at| if *at < m { *at } else { *at + f })
                .chain(m..m + f)
                .collect();
            Lifted {
                lits: l.lits,
                outputs,
            }
        }
        MirRelationExpr::Join {
            inputs,
            equivalences,
        } => {
            let mut per_input = Vec::new();
            for input in inputs.iter_mut() {
                let n = input.arity();
                let l = lift_in(input, lets);
                per_input.push((n, input.arity(), l));
            }
            let total: usize = per_input.iter().map(|(_, m, _)| m).sum();
            let mut values = Vec::new();
            let mut outputs = Vec::new();
            let mut lits = Vec::new();
            let mut offset = 0;
            for (n, m, l) in per_input {
                for c in 0..n {
                    let at = l.outputs[c];
                    if at < m {
                        values.push(MirScalarExpr::Column(offset + at));
                        outputs.push(offset + at);
                    } else {
                        values.push(l.lits[at - m].clone());
                        outputs.push(total + lits.len() + (at - m));
                    }
                }
                lits.extend(l.lits);
                offset += m;
            }
            let types: Vec<ColumnType> = inputs.iter().flat_map(|i| i.typ().column_types).collect();
            for e in equivalences.iter_mut().flatten() {
                rewrite(e, &values, &types);
            }
            prune(Lifted { lits, outputs }, total)
        }
        MirRelationExpr::Reduce {
            input,
            group_key,
            aggregates,
        } => {
            let n = input.arity();
            let l = lift_in(input, lets);
            let types = input.typ().column_types;
            let values: Vec<MirScalarExpr> = (0..n).map(|c| l.column(c, types.len())).collect();
            for a in aggregates.iter_mut() {
                rewrite(&mut a.expr, &values, &types);
            }
            let mut kept = Vec::new();
            let mut lits = Vec::new();
            let mut placed = Vec::new();
            for mut key in group_key.drain(..) {
                rewrite(&mut key, &values, &types);
                if is_value_literal(&key) {
                    placed.push(Err(lits.len()));
                    lits.push(key);
                } else {
                    placed.push(Ok(kept.len()));
                    kept.push(key);
                }
            }
            let k = kept.len();
            let a = aggregates.len();
            let outputs = placed
                .into_iter()
                .map(|p| match p {
                    Ok(rank) => rank,
                    Err(i) => k + a + i,
                })
                .chain(k..k + a)
                .collect();
            *group_key = kept;
            Lifted { lits, outputs }
        }
        MirRelationExpr::TopK {
            input,
            group_key,
            order_key,
            ..
        } => {
            let l = lift_in(input, lets);
            let m = input.arity();
            *group_key = group_key
                .iter()
                .map(|c| l.outputs[*c])
                .filter(|at| *at < m)
                .collect();
            *order_key = order_key
                .iter()
                .filter(|o| l.outputs[o.column] < m)
                .map(|o| {
                    let mut o = *o;
                    o.column = l.outputs[o.column];
                    o
                })
                .collect();
            l
        }
        MirRelationExpr::Negate { input } | MirRelationExpr::Threshold { input } => {
            lift_in(input, lets)
        }
        MirRelationExpr::Union { base, inputs } => {
            let arity = base.arity();
            let mut branches: Vec<&mut MirRelationExpr> = std::iter::once(&mut **base)
                .chain(inputs.iter_mut())
                .collect();
            let lifted: Vec<Lifted> = branches.iter_mut().map(|b| lift_in(b, lets)).collect();
            let widths: Vec<usize> = branches.iter().map(|b| b.arity()).collect();
            // The literal every branch has in column c, if they agree.
            let common = |c: usize| -> Option<MirScalarExpr> {
                let mut found: Option<MirScalarExpr> = None;
                for (l, m) in lifted.iter().zip(&widths) {
                    let at = l.outputs[c];
                    if at < *m {
                        return None;
                    }
                    let lit = &l.lits[at - m];
                    match &mut found {
                        None => found = Some(lit.clone()),
                        Some(MirScalarExpr::Literal(row, typ)) => {
                            let MirScalarExpr::Literal(other_row, other_typ) = lit else {
                                return None;
                            };
                            if row != other_row || typ.scalar_type != other_typ.scalar_type {
                                return None;
                            }
                            typ.nullable |= other_typ.nullable;
                        }
                        Some(_) => return None,
                    }
                }
                found
            };
            let commons: Vec<Option<MirScalarExpr>> = (0..arity).map(common).collect();
            let kept: Vec<usize> = (0..arity).filter(|c| commons[*c].is_none()).collect();
            for (branch, l) in branches.iter_mut().zip(lifted) {
                let outputs = kept.iter().map(|c| l.outputs[*c]).collect();
                materialize(
                    branch,
                    Lifted {
                        lits: l.lits,
                        outputs,
                    },
                );
            }
            let mut lits = Vec::new();
            let mut outputs = vec![0; arity];
            for (i, c) in kept.iter().enumerate() {
                outputs[*c] = i;
            }
            for (c, lit) in commons.into_iter().enumerate() {
                if let Some(lit) = lit {
                    outputs[c] = kept.len() + lits.len();
                    lits.push(lit);
                }
            }
            Lifted { lits, outputs }
        }
        // Gets, empty or failing constants, and operators not known here (LetRec):
        // their inputs' literals stay below them.
        _ => {
            for child in expr.children_mut() {
                let l = lift_in(child, lets);
                materialize(child, l);
            }
            Lifted::identity(expr.arity())
        }
    }
}

/// Drops lifted literals no output reads (a `Project` above may have dropped them).
fn prune(lifted: Lifted, m: usize) -> Lifted {
    let mut used = vec![false; lifted.lits.len()];
    for at in &lifted.outputs {
        if *at >= m {
            used[*at - m] = true;
        }
    }
    let mut renumber = vec![0; lifted.lits.len()];
    let mut lits = Vec::new();
    for (i, lit) in lifted.lits.into_iter().enumerate() {
        if used[i] {
            renumber[i] = lits.len();
            lits.push(lit);
        }
    }
    let outputs = lifted
        .outputs
        .into_iter()
        .map(|at| if at < m { at } else { m + renumber[at - m] })
        .collect();
    Lifted { lits, outputs }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expr::{AggregateExpr, AggregateFunc};
    use repr::{Datum, GlobalId, ScalarType};

    fn get(id: u64, arity: usize) -> MirRelationExpr {
        MirRelationExpr::Get {
            id: GlobalId::User(id),
            typ: RelationType::new(vec![ScalarType::Int32.nullable(true); arity]),
            name: format!("t{id}"),
        }
    }

    fn lit(v: i32) -> MirScalarExpr {
        MirScalarExpr::literal(Datum::Int32(v), ScalarType::Int32)
    }

    #[test]
    fn literals_leave_join_inputs_and_group_keys() {
        // Reduce by (#0, #1) of count(*) over Join(Map(t1, [7]), t2) on #0 = #2.
        let join = MirRelationExpr::Join {
            inputs: vec![get(1, 1).map(vec![lit(7)]), get(2, 1)],
            equivalences: vec![vec![MirScalarExpr::column(0), MirScalarExpr::column(2)]],
        };
        let mut e = MirRelationExpr::Reduce {
            input: Box::new(join),
            group_key: vec![MirScalarExpr::column(0), MirScalarExpr::column(1)],
            aggregates: vec![AggregateExpr {
                func: AggregateFunc::Count,
                expr: MirScalarExpr::literal_true(),
                distinct: false,
            }],
        };
        let before = e.typ();
        lift(&mut e);
        let expected = MirRelationExpr::Reduce {
            input: Box::new(MirRelationExpr::Join {
                inputs: vec![get(1, 1), get(2, 1)],
                equivalences: vec![vec![MirScalarExpr::column(0), MirScalarExpr::column(1)]],
            }),
            group_key: vec![MirScalarExpr::column(0)],
            aggregates: vec![AggregateExpr {
                func: AggregateFunc::Count,
                expr: MirScalarExpr::literal_true(),
                distinct: false,
            }],
        }
        .map(vec![lit(7)])
        .project(vec![0, 2, 1]);
        assert_eq!(e, expected, "{e}");
        assert_eq!(e.typ().column_types, before.column_types);
    }

    #[test]
    fn union_lifts_only_agreeing_literals_and_errors_stay() {
        let error = MirScalarExpr::Literal(
            Err(repr::EvalError::DivisionByZero),
            ScalarType::Int32.nullable(true),
        );
        let mut e = get(1, 1)
            .map(vec![lit(1), lit(2), error.clone()])
            .union(get(2, 1).map(vec![lit(1), lit(3), error.clone()]));
        lift(&mut e);
        let expected = get(1, 1)
            .map(vec![error.clone()])
            .map(vec![lit(2)])
            .project(vec![0, 2, 1])
            .union(
                get(2, 1)
                    .map(vec![error])
                    .map(vec![lit(3)])
                    .project(vec![0, 2, 1]),
            )
            .map(vec![lit(1)])
            .project(vec![0, 3, 1, 2]);
        assert_eq!(e, expected, "{e}");
    }

    #[test]
    fn constants_keep_literals_when_nothing_is_above() {
        let typ = RelationType::new(vec![ScalarType::Int32.nullable(false); 2]);
        let rows = vec![
            Row::pack_slice(&[Datum::Int32(1), Datum::Int32(5)]),
            Row::pack_slice(&[Datum::Int32(2), Datum::Int32(5)]),
        ];
        let constant = MirRelationExpr::constant(rows.clone(), typ);
        let mut e = constant.clone();
        lift(&mut e);
        assert_eq!(e, constant);
        // Joined with a table, the constant's 5 moves above the join.
        let mut e = MirRelationExpr::Join {
            inputs: vec![constant, get(1, 1)],
            equivalences: vec![vec![MirScalarExpr::column(0), MirScalarExpr::column(2)]],
        };
        lift(&mut e);
        let MirRelationExpr::Project { input, outputs } = &e else {
            panic!("{e}")
        };
        assert_eq!(outputs, &vec![0, 2, 1]);
        let MirRelationExpr::Map { input, scalars } = &**input else {
            panic!("{e}")
        };
        assert_eq!(
            scalars,
            &vec![MirScalarExpr::Literal(
                Ok(Row::pack_slice(&[Datum::Int32(5)])),
                ScalarType::Int32.nullable(false)
            )]
        );
        assert_eq!(input.arity(), 2);
    }
}
