//! Predicate pushdown: a Filter above a Join moves its equalities between inputs into
//! the join's equivalences (numeric sides normalised, see [`equality_key`]), and its predicates on one input down onto that input; a
//! Filter above a FlatMap moves its predicates on the FlatMap's input below it.

use expr::{BinaryFunc, MirRelationExpr, MirScalarExpr, UnaryFunc};
use repr::{ColumnType, ScalarType};

/// What a join compares for the SQL `=` of `e` and another expression: `e` itself,
/// except that a numeric loses its trailing zeros, since join keys compare packed
/// bytes and `1.50 = 1.5` in PostgreSQL.
fn equality_key(e: &MirScalarExpr, types: &[ColumnType]) -> MirScalarExpr {
    if e.typ(types).scalar_type == ScalarType::Numeric {
        e.clone().call_unary(UnaryFunc::NormalizeNumeric)
    } else {
        e.clone()
    }
}

/// Splits `a AND b` into separate predicates, so each can move on its own.
fn split_conjunctions(predicates: Vec<MirScalarExpr>) -> Vec<MirScalarExpr> {
    fn go(p: MirScalarExpr, out: &mut Vec<MirScalarExpr>) {
        match p {
            MirScalarExpr::CallBinary {
                func: BinaryFunc::And,
                expr1,
                expr2,
            } => {
                go(*expr1, out);
                go(*expr2, out);
            }
            other => {
                if !out.contains(&other) {
                    out.push(other);
                }
            }
        }
    }
    let mut out = Vec::new();
    for p in predicates {
        go(p, &mut out);
    }
    out
}

pub fn pushdown(expr: &mut MirRelationExpr) {
    if let MirRelationExpr::Filter { predicates, .. } = expr {
        let split = split_conjunctions(std::mem::take(predicates));
        *predicates = split;
    }
    if let MirRelationExpr::Filter { input, predicates } = expr {
        if let MirRelationExpr::Join {
            inputs,
            equivalences,
        } = &mut **input
        {
            let arities: Vec<usize> = inputs.iter().map(|i| i.arity()).collect();
            let offsets: Vec<usize> = arities
                .iter()
                .scan(0, |acc, a| {
                    let o = *acc;
                    *acc += a;
                    Some(o)
                })
                .collect();
            let input_of = |e: &MirScalarExpr| -> Option<usize> {
                let support = e.support();
                let first = *support.iter().next()?;
                let i = offsets.iter().rposition(|o| *o <= first)?;
                support
                    .iter()
                    .all(|c| *c >= offsets[i] && *c < offsets[i] + arities[i])
                    .then_some(i)
            };
            let types: Vec<ColumnType> = inputs.iter().flat_map(|i| i.typ().column_types).collect();
            let mut pushed: Vec<Vec<MirScalarExpr>> = vec![Vec::new(); inputs.len()];
            let mut kept = Vec::new();
            for p in predicates.drain(..) {
                if let MirScalarExpr::CallBinary {
                    func: BinaryFunc::Eq,
                    expr1,
                    expr2,
                } = &p
                {
                    if let (Some(a), Some(b)) = (input_of(expr1), input_of(expr2)) {
                        if a != b {
                            // Join equivalences match NULL to NULL; SQL `=` does not.
                            for (e, i) in [(expr1, a), (expr2, b)] {
                                let mut local = crate::lower::is_not_null((**e).clone());
                                let map: Vec<usize> = (0..offsets[i] + arities[i])
                                    .map(|c| c.saturating_sub(offsets[i]))
                                    .collect();
                                local.permute(&map);
                                pushed[i].push(local);
                            }
                            equivalences.push(vec![
                                equality_key(expr1, &types),
                                equality_key(expr2, &types),
                            ]);
                            continue;
                        }
                    }
                }
                match input_of(&p) {
                    Some(i) => {
                        let mut local = p;
                        let map: Vec<usize> = (0..offsets[i] + arities[i])
                            .map(|c| c.saturating_sub(offsets[i]))
                            .collect();
                        local.permute(&map);
                        pushed[i].push(local);
                    }
                    None => kept.push(p),
                }
            }
            for (input, preds) in inputs.iter_mut().zip(pushed) {
                if !preds.is_empty() {
                    let inner = std::mem::replace(
                        input,
                        MirRelationExpr::constant(vec![], Default::default()),
                    );
                    *input = inner.filter(preds);
                }
            }
            *predicates = kept;
        }
    }
    // A predicate over only the input columns of a FlatMap filters its input instead,
    // before the rows multiply.
    if let MirRelationExpr::Filter { input, predicates } = expr {
        if let MirRelationExpr::FlatMap { input: inner, .. } = &mut **input {
            let arity = inner.arity();
            let (down, kept): (Vec<_>, Vec<_>) = std::mem::take(predicates)
                .into_iter()
                .partition(|p| p.is_deterministic() && p.support().iter().all(|c| *c < arity));
            if !down.is_empty() {
                let below = std::mem::replace(
                    &mut **inner,
                    MirRelationExpr::constant(vec![], Default::default()),
                );
                **inner = below.filter(down);
            }
            *predicates = kept;
        }
    }
    for child in expr.children_mut() {
        pushdown(child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repr::{Datum, GlobalId, RelationType, ScalarType};

    #[test]
    fn equalities_become_equivalences_and_local_predicates_move_down() {
        let get = |id| MirRelationExpr::Get {
            id: GlobalId::User(id),
            typ: RelationType::new(vec![ScalarType::Int32.nullable(true); 2]),
            name: format!("t{id}"),
        };
        let join = MirRelationExpr::Join {
            inputs: vec![get(1), get(2)],
            equivalences: vec![],
        };
        let five = MirScalarExpr::literal(Datum::Int32(5), ScalarType::Int32);
        let mut e = join.filter(vec![MirScalarExpr::column(1)
            .call_binary(MirScalarExpr::column(2), BinaryFunc::Eq)
            .call_binary(
                MirScalarExpr::column(3).call_binary(five.clone(), BinaryFunc::Gt),
                BinaryFunc::And,
            )]);
        pushdown(&mut e);
        let MirRelationExpr::Filter { input, predicates } = &e else {
            panic!("{e}")
        };
        assert!(predicates.is_empty());
        let MirRelationExpr::Join {
            inputs,
            equivalences,
        } = &**input
        else {
            panic!("{e}")
        };
        assert_eq!(
            equivalences,
            &vec![vec![MirScalarExpr::column(1), MirScalarExpr::column(2)]]
        );
        let not_null = |c| crate::lower::is_not_null(MirScalarExpr::column(c));
        assert_eq!(inputs[0], get(1).filter(vec![not_null(1)]));
        assert_eq!(
            inputs[1],
            get(2).filter(vec![
                not_null(0),
                MirScalarExpr::column(1).call_binary(five, BinaryFunc::Gt)
            ])
        );
    }

    #[test]
    fn numeric_equalities_join_on_normalized_keys() {
        let get = |id| MirRelationExpr::Get {
            id: GlobalId::User(id),
            typ: RelationType::new(vec![ScalarType::Numeric.nullable(true)]),
            name: format!("t{id}"),
        };
        let mut e = MirRelationExpr::Join {
            inputs: vec![get(1), get(2)],
            equivalences: vec![],
        }
        .filter(vec![
            MirScalarExpr::column(0).call_binary(MirScalarExpr::column(1), BinaryFunc::Eq)
        ]);
        pushdown(&mut e);
        let MirRelationExpr::Filter { input, .. } = &e else {
            panic!("{e}")
        };
        let MirRelationExpr::Join { equivalences, .. } = &**input else {
            panic!("{e}")
        };
        let key = |c| MirScalarExpr::column(c).call_unary(UnaryFunc::NormalizeNumeric);
        assert_eq!(equivalences, &vec![vec![key(0), key(1)]]);
    }
}
