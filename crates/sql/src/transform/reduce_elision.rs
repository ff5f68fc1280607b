//! Reduction elision: a `Reduce` whose group key contains a unique key of its input
//! (see [`super::unique_keys`]) sees exactly one row per group, so it becomes a `Map`
//! that computes each aggregate of that one row.
//!
//! # Contract
//!
//! The rewrite happens only when every aggregate has an exact one-row form with
//! PostgreSQL's NULL rules: `count(x)` is `0` for a NULL `x` and `1` otherwise,
//! `count(*)` is `1`; `sum(x)` is `x` cast to the sum's type (integers widen as
//! `sum` does; NULL stays NULL); `min`, `max`, `bool_and` and `bool_or` are `x`.
//! Aggregates without such a form (`avg` with its division scale, the variances,
//! `string_agg`, window functions) keep the `Reduce`. The group key expressions and the
//! aggregate arguments are evaluated on the same rows as before, so their errors stay.

use std::collections::BTreeMap;

use expr::{AggregateExpr, AggregateFunc, LocalId, MirRelationExpr, MirScalarExpr, UnaryFunc};
use repr::{ColumnType, Datum, ScalarType};

use super::unique_keys;

pub fn elide(expr: &mut MirRelationExpr) {
    elide_in(expr, &mut BTreeMap::new())
}

fn elide_in(expr: &mut MirRelationExpr, locals: &mut BTreeMap<LocalId, Vec<Vec<usize>>>) {
    if let MirRelationExpr::Let { id, value, body } = expr {
        elide_in(value, locals);
        let keys = unique_keys::keys_in(value, locals);
        locals.insert(*id, keys);
        elide_in(body, locals);
        return;
    }
    for child in expr.children_mut() {
        elide_in(child, locals);
    }
    let MirRelationExpr::Reduce {
        input,
        group_key,
        aggregates,
    } = expr
    else {
        return;
    };
    let keys = unique_keys::keys_in(input, locals);
    let grouped_by_key = keys.iter().any(|key| {
        key.iter()
            .all(|c| group_key.contains(&MirScalarExpr::Column(*c)))
    });
    if !grouped_by_key {
        return;
    }
    let columns = input.typ().column_types;
    let Some(singletons) = aggregates
        .iter()
        .map(|a| one_row_aggregate(a, &columns))
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let arity = columns.len();
    let outputs: Vec<usize> = (arity..arity + group_key.len() + singletons.len()).collect();
    let scalars: Vec<MirScalarExpr> = group_key.drain(..).chain(singletons).collect();
    let input = std::mem::replace(
        &mut **input,
        MirRelationExpr::constant(vec![], Default::default()),
    );
    *expr = input.map(scalars).project(outputs);
}

/// The aggregate of a one-row group as a scalar over that row, if it has an exact one.
fn one_row_aggregate(a: &AggregateExpr, columns: &[ColumnType]) -> Option<MirScalarExpr> {
    let x = a.expr.clone();
    let input_type = x.typ(columns).scalar_type;
    Some(match &a.func {
        AggregateFunc::Count => MirScalarExpr::If {
            cond: Box::new(x.call_unary(UnaryFunc::IsNull)),
            then: Box::new(MirScalarExpr::literal(Datum::Int64(0), ScalarType::Int64)),
            els: Box::new(MirScalarExpr::literal(Datum::Int64(1), ScalarType::Int64)),
        },
        AggregateFunc::Sum => {
            let output = a.func.output_type(x.typ(columns)).scalar_type;
            if output == input_type {
                x
            } else {
                x.call_unary(UnaryFunc::Cast(output))
            }
        }
        AggregateFunc::Min
        | AggregateFunc::Max
        | AggregateFunc::BoolAnd
        | AggregateFunc::BoolOr => x,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use expr::RowArena;
    use repr::{GlobalId, RelationType};

    fn get() -> MirRelationExpr {
        MirRelationExpr::Get {
            id: GlobalId::User(1),
            typ: RelationType::new(vec![ScalarType::Int32.nullable(true); 2]),
            name: "t".into(),
        }
    }

    fn agg(func: AggregateFunc, column: usize) -> AggregateExpr {
        AggregateExpr {
            func,
            expr: MirScalarExpr::column(column),
            distinct: false,
        }
    }

    #[test]
    fn reduce_over_distinct_becomes_a_map() {
        let distinct = get().distinct();
        let mut e = MirRelationExpr::Reduce {
            input: Box::new(distinct.clone()),
            group_key: vec![MirScalarExpr::column(1), MirScalarExpr::column(0)],
            aggregates: vec![
                agg(AggregateFunc::Count, 1),
                agg(AggregateFunc::Sum, 0),
                agg(AggregateFunc::Max, 1),
            ],
        };
        let before_type = e.typ().column_types;
        elide(&mut e);
        let MirRelationExpr::Project { input, outputs } = &e else {
            panic!("not elided: {e}")
        };
        assert_eq!(outputs, &vec![2, 3, 4, 5, 6]);
        let MirRelationExpr::Map { input, scalars } = &**input else {
            panic!("{e}")
        };
        assert_eq!(**input, distinct);
        // Evaluate the one-row forms on (NULL, 7) and on (5, NULL).
        fn run<'a>(
            scalars: &'a [MirScalarExpr],
            row: Vec<Datum<'a>>,
            arena: &'a RowArena,
        ) -> Vec<String> {
            let mut datums = row;
            for s in scalars {
                let d = s.eval(&datums, arena).expect("no error");
                datums.push(d);
            }
            datums[2..].iter().map(|d| d.to_string()).collect()
        }
        let arena = RowArena::new();
        assert_eq!(
            run(scalars, vec![Datum::Null, Datum::Int32(7)], &arena),
            ["7", "NULL", "1", "NULL", "7"]
        );
        assert_eq!(
            run(scalars, vec![Datum::Int32(5), Datum::Null], &arena),
            ["NULL", "5", "0", "5", "NULL"]
        );
        // sum(integer) is bigint, as the Reduce said.
        let after_type = e.typ().column_types;
        assert_eq!(after_type[3].scalar_type, before_type[3].scalar_type);
        assert_eq!(after_type[3].scalar_type, ScalarType::Int64);
    }

    #[test]
    fn keeps_reduces_not_grouped_by_a_key_and_avg() {
        // The group key misses column 0 of the distinct rows.
        let mut e = MirRelationExpr::Reduce {
            input: Box::new(get().distinct()),
            group_key: vec![MirScalarExpr::column(1)],
            aggregates: vec![agg(AggregateFunc::Count, 0)],
        };
        let before = e.clone();
        elide(&mut e);
        assert_eq!(e, before);
        // Grouped by the key, but avg has no exact one-row form here.
        let mut e = MirRelationExpr::Reduce {
            input: Box::new(get().distinct()),
            group_key: vec![MirScalarExpr::column(0), MirScalarExpr::column(1)],
            aggregates: vec![agg(AggregateFunc::Avg, 0)],
        };
        let before = e.clone();
        elide(&mut e);
        assert_eq!(e, before);
        // A table has no key (PRIMARY KEYs are not enforced).
        let mut e = get().distinct();
        let before = e.clone();
        elide(&mut e);
        assert_eq!(e, before);
    }

    #[test]
    fn distinct_of_a_let_bound_reduce() {
        let (local, binding) = get().distinct().bind();
        let mut e = binding.wrap(local.clone().distinct().union(local));
        elide(&mut e);
        let MirRelationExpr::Let { body, .. } = &e else {
            panic!("{e}")
        };
        let MirRelationExpr::Union { base, .. } = &**body else {
            panic!("{e}")
        };
        assert!(
            matches!(**base, MirRelationExpr::Project { .. }),
            "the distinct of a distinct is elided: {e}"
        );
    }
}
