//! Join simplification: nested joins flatten into one multi-way join (so join ordering
//! sees every input), inputs that are the one-row, zero-column constant disappear, and
//! a join of one input becomes that input.

use expr::{BinaryFunc, MirRelationExpr, MirScalarExpr};

pub fn simplify(expr: &mut MirRelationExpr) {
    for child in expr.children_mut() {
        simplify(child);
    }
    let MirRelationExpr::Join {
        inputs,
        equivalences,
    } = expr
    else {
        return;
    };
    // Flatten: an input that is itself a join, or a projection of one, contributes its
    // inputs and equivalences. `position[c]` is where column c of this join lands
    // among the flat inputs' columns; a projected inner join keeps all its columns, so
    // a Project above the flat join restores this join's columns.
    let mut flat_inputs = Vec::new();
    let mut flat_equivalences = Vec::new();
    let mut position = Vec::new();
    let mut width = 0;
    let mut projected = false;
    for input in std::mem::take(inputs) {
        let (inner, inner_eq, outputs) = match input {
            MirRelationExpr::Join {
                inputs: inner,
                equivalences: inner_eq,
            } => (inner, inner_eq, None),
            MirRelationExpr::Project { input, outputs }
                if matches!(*input, MirRelationExpr::Join { .. }) =>
            {
                let MirRelationExpr::Join {
                    inputs: inner,
                    equivalences: inner_eq,
                } = *input
                else {
                    unreachable!("matched a join above")
                };
                (inner, inner_eq, Some(outputs))
            }
            other => {
                let arity = other.arity();
                position.extend(width..width + arity);
                width += arity;
                flat_inputs.push(other);
                continue;
            }
        };
        let arity: usize = inner.iter().map(|i| i.arity()).sum();
        for mut class in inner_eq {
            class.iter_mut().for_each(|e| e.shift(width));
            flat_equivalences.push(class);
        }
        match outputs {
            Some(outputs) => {
                position.extend(outputs.iter().map(|o| width + o));
                projected = true;
            }
            None => position.extend(width..width + arity),
        }
        width += arity;
        flat_inputs.extend(inner);
    }
    for mut class in std::mem::take(equivalences) {
        class.iter_mut().for_each(|e| e.permute(&position));
        flat_equivalences.push(class);
    }
    let restore = |e: MirRelationExpr| {
        if projected {
            e.project(position.clone())
        } else {
            e
        }
    };
    // Drop one-row, zero-column inputs: they change neither columns nor multiplicities.
    flat_inputs.retain(|i| !is_unit(i));
    if flat_inputs.len() == 1 {
        let input = flat_inputs.pop().expect("one input");
        let predicates: Vec<MirScalarExpr> = flat_equivalences
            .into_iter()
            .flat_map(|class| {
                let first = class[0].clone();
                class
                    .into_iter()
                    .skip(1)
                    .map(move |e| first.clone().call_binary(e, BinaryFunc::IsNotDistinctFrom))
            })
            .collect();
        *expr = restore(input.filter(predicates));
        return;
    }
    if flat_inputs.is_empty() {
        *expr =
            MirRelationExpr::constant(vec![repr::Row::default()], repr::RelationType::new(vec![]));
        return;
    }
    *expr = restore(MirRelationExpr::Join {
        inputs: flat_inputs,
        equivalences: flat_equivalences,
    });
}

fn is_unit(e: &MirRelationExpr) -> bool {
    matches!(e, MirRelationExpr::Constant { rows: Ok(rows), typ } if typ.arity() == 0 && rows.len() == 1 && rows[0].1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use repr::{GlobalId, RelationType, Row, ScalarType};

    fn get(id: u64) -> MirRelationExpr {
        MirRelationExpr::Get {
            id: GlobalId::User(id),
            typ: RelationType::new(vec![ScalarType::Int32.nullable(true); 2]),
            name: format!("t{id}"),
        }
    }

    #[test]
    fn flattens_nested_joins_and_drops_units() {
        let unit = MirRelationExpr::constant(vec![Row::default()], RelationType::new(vec![]));
        let inner = MirRelationExpr::Join {
            inputs: vec![get(1), get(2)],
            equivalences: vec![vec![MirScalarExpr::column(0), MirScalarExpr::column(2)]],
        };
        let mut e = MirRelationExpr::Join {
            inputs: vec![unit, inner, get(3)],
            equivalences: vec![vec![MirScalarExpr::column(3), MirScalarExpr::column(4)]],
        };
        simplify(&mut e);
        let MirRelationExpr::Join {
            inputs,
            equivalences,
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!(inputs, &vec![get(1), get(2), get(3)]);
        assert_eq!(equivalences.len(), 2);
    }

    #[test]
    fn flattens_through_projections_of_joins() {
        // Join(Project[#3, #0](Join(t1, t2)), t3) on project's #0 = t3.#0.
        let inner = MirRelationExpr::Join {
            inputs: vec![get(1), get(2)],
            equivalences: vec![vec![MirScalarExpr::column(1), MirScalarExpr::column(2)]],
        }
        .project(vec![3, 0]);
        let mut e = MirRelationExpr::Join {
            inputs: vec![inner, get(3)],
            equivalences: vec![vec![MirScalarExpr::column(0), MirScalarExpr::column(2)]],
        };
        simplify(&mut e);
        let expected = MirRelationExpr::Join {
            inputs: vec![get(1), get(2), get(3)],
            equivalences: vec![
                vec![MirScalarExpr::column(1), MirScalarExpr::column(2)],
                vec![MirScalarExpr::column(3), MirScalarExpr::column(4)],
            ],
        }
        .project(vec![3, 0, 4, 5]);
        assert_eq!(e, expected, "{e}");
    }
}
