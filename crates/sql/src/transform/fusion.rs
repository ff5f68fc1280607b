//! Fusion: adjacent Filters, Maps and Projects become one operator of each kind.

use expr::{MirRelationExpr, MirScalarExpr};

/// Fuses `Filter(Filter)`, `Map(Map)` and `Project(Project)` bottom up.
pub fn fuse(expr: &mut MirRelationExpr) {
    for child in expr.children_mut() {
        fuse(child);
    }
    match expr {
        MirRelationExpr::Filter { input, predicates } => {
            if let MirRelationExpr::Filter {
                input: inner,
                predicates: inner_preds,
            } = &mut **input
            {
                let mut all = std::mem::take(inner_preds);
                all.append(predicates);
                let inner = std::mem::replace(
                    &mut **inner,
                    MirRelationExpr::constant(vec![], Default::default()),
                );
                *expr = inner.filter(all);
            } else if predicates.is_empty() {
                let inner = std::mem::replace(
                    &mut **input,
                    MirRelationExpr::constant(vec![], Default::default()),
                );
                *expr = inner;
            }
        }
        MirRelationExpr::Map { input, scalars } => {
            if let MirRelationExpr::Map {
                input: inner,
                scalars: inner_scalars,
            } = &mut **input
            {
                let mut all = std::mem::take(inner_scalars);
                all.append(scalars);
                let inner = std::mem::replace(
                    &mut **inner,
                    MirRelationExpr::constant(vec![], Default::default()),
                );
                *expr = inner.map(all);
            }
        }
        MirRelationExpr::Project { input, outputs } => {
            // Project(Map(x, scalars)): outputs that are map columns holding a plain
            // column reference read that column instead, and unused map columns go.
            if let MirRelationExpr::Map {
                input: inner,
                scalars,
            } = &mut **input
            {
                let base = inner.arity();
                let mut changed = false;
                for o in outputs.iter_mut() {
                    // Follow copies of copies down to an input column.
                    let mut at = *o;
                    while at >= base {
                        match scalars[at - base] {
                            MirScalarExpr::Column(c) => at = c,
                            _ => break,
                        }
                    }
                    if at < base && at != *o {
                        *o = at;
                        changed = true;
                    }
                }
                // Drop trailing map columns no output (or later scalar) reads.
                while let Some(last) = scalars.len().checked_sub(1) {
                    let column = base + last;
                    if outputs.contains(&column) {
                        break;
                    }
                    scalars.pop();
                    changed = true;
                }
                if changed && scalars.is_empty() {
                    let inner = std::mem::replace(
                        &mut **inner,
                        MirRelationExpr::constant(vec![], Default::default()),
                    );
                    **input = inner;
                }
                if changed {
                    fuse(expr);
                    return;
                }
            }
            if let MirRelationExpr::Project {
                input: inner,
                outputs: inner_outputs,
            } = &mut **input
            {
                let composed: Vec<usize> = outputs.iter().map(|c| inner_outputs[*c]).collect();
                let inner = std::mem::replace(
                    &mut **inner,
                    MirRelationExpr::constant(vec![], Default::default()),
                );
                *expr = inner.project(composed);
                // The composition may be the identity: fuse again at this node.
                fuse(expr);
            } else if outputs.iter().copied().eq(0..input.arity()) {
                let inner = std::mem::replace(
                    &mut **input,
                    MirRelationExpr::constant(vec![], Default::default()),
                );
                *expr = inner;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expr::MirScalarExpr;
    use repr::{GlobalId, RelationType, ScalarType};

    #[test]
    fn fuses_stacks_and_drops_identity_projects() {
        let get = MirRelationExpr::Get {
            id: GlobalId::User(1),
            typ: RelationType::new(vec![ScalarType::Int32.nullable(true); 3]),
            name: "t".into(),
        };
        let mut e = get
            .clone()
            .filter(vec![
                MirScalarExpr::column(0).call_unary(expr::UnaryFunc::IsNull)
            ])
            .filter(vec![
                MirScalarExpr::column(1).call_unary(expr::UnaryFunc::IsNull)
            ])
            .project(vec![2, 1, 0])
            .project(vec![2, 1, 0]);
        fuse(&mut e);
        let MirRelationExpr::Filter { input, predicates } = e else {
            panic!("expected one filter: {e}")
        };
        assert_eq!(predicates.len(), 2);
        assert_eq!(*input, get);
    }
}
