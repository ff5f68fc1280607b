//! Projection pushdown: columns nobody reads are dropped as early as possible, so
//! they are never carried through joins, arrangements or reductions.
//!
//! # Contract
//!
//! [`pushdown`] keeps the expression's output (its columns, in order, with their
//! multiplicities). Below it, each operator is asked for only the columns its parent
//! reads ("demand"): a `Map` drops the scalars nobody reads, a `Reduce` the aggregates
//! nobody reads, a `Join` input the columns that neither the output nor the join
//! equivalences read, and a `Let` value the columns that none of its uses read. A
//! `Project` is placed where an input offers more than is wanted.
//!
//! Dropping an unread column drops the evaluation of its expression, and so any error
//! it would raise (PostgreSQL removes unused subquery outputs the same way). Columns
//! are never dropped below a `Threshold` (which compares whole rows: rows differing only
//! in a dropped column would merge), nor below operators this module does not know
//! (such as `LetRec`, whose bindings keep their types); a `TopK` keeps the columns it
//! groups and orders by.

use std::collections::{BTreeMap, BTreeSet};

use expr::{LocalId, MirRelationExpr, MirScalarExpr};
use repr::RelationType;

/// Pushes projections down through the whole expression.
pub fn pushdown(expr: &mut MirRelationExpr) {
    let all: Vec<usize> = (0..expr.arity()).collect();
    narrow(expr, &all, &mut BTreeMap::new());
}

fn take(e: &mut MirRelationExpr) -> MirRelationExpr {
    std::mem::replace(e, MirRelationExpr::constant(vec![], Default::default()))
}

/// For each column position, its position within `kept` (a sorted list).
fn positions(kept: &[usize], arity: usize) -> Vec<usize> {
    let mut map = vec![usize::MAX; arity];
    for (new, old) in kept.iter().enumerate() {
        map[*old] = new;
    }
    map
}

/// After `expr` was narrowed to produce the old columns `produced` (in that order),
/// projects it onto `demand` (a sub-list of `produced`).
fn project_onto(expr: &mut MirRelationExpr, produced: &[usize], demand: &[usize]) {
    if produced == demand {
        return;
    }
    let outputs: Vec<usize> = demand
        .iter()
        .map(|d| {
            produced
                .iter()
                .position(|p| p == d)
                .expect("a demanded column is produced")
        })
        .collect();
    let inner = take(expr);
    *expr = project(inner, outputs);
}

/// `Project(e, outputs)`, composed with a `Project` at the top of `e`, and nothing for
/// the identity.
fn project(e: MirRelationExpr, outputs: Vec<usize>) -> MirRelationExpr {
    let (inner, outputs) = match e {
        MirRelationExpr::Project {
            input,
            outputs: inner_outputs,
        } => (*input, outputs.iter().map(|c| inner_outputs[*c]).collect()),
        other => (other, outputs),
    };
    if outputs.iter().copied().eq(0..inner.arity()) {
        inner
    } else {
        inner.project(outputs)
    }
}

/// A `Project` that `narrow` left at the top of a Filter's or Map's input moves above
/// them, so a chain of maps and filters keeps one projection at its top. A `Project`
/// right above a `GetLocal` stays: [`retarget_uses`] rewrites it when the bound value
/// narrows.
fn hoist_project(expr: &mut MirRelationExpr) {
    let above_local = |input: &MirRelationExpr| matches!(input, MirRelationExpr::Project { input, .. } if matches!(**input, MirRelationExpr::GetLocal { .. }));
    match expr {
        MirRelationExpr::Filter { input, .. } | MirRelationExpr::Map { input, .. }
            if above_local(input) => {}
        MirRelationExpr::Filter { input, predicates } => {
            if let MirRelationExpr::Project {
                input: inner,
                outputs,
            } = &mut **input
            {
                predicates.iter_mut().for_each(|p| p.permute(outputs));
                let outputs = std::mem::take(outputs);
                let inner = take(inner);
                let predicates = std::mem::take(predicates);
                *expr = project(inner.filter(predicates), outputs);
            }
        }
        MirRelationExpr::Map { input, scalars } => {
            if let MirRelationExpr::Project {
                input: inner,
                outputs,
            } = &mut **input
            {
                let width = outputs.len();
                let inner_arity = inner.arity();
                let map: Vec<usize> = outputs
                    .iter()
                    .copied()
                    .chain((0..scalars.len()).map(|j| inner_arity + j))
                    .collect();
                scalars.iter_mut().for_each(|s| s.permute(&map));
                let outputs = map;
                debug_assert_eq!(outputs.len(), width + scalars.len());
                let inner = take(inner);
                let scalars = std::mem::take(scalars);
                *expr = project(inner.map(scalars), outputs);
            }
        }
        _ => {}
    }
}

/// Rewrites `expr` so that it produces exactly the columns `demand` (sorted, without
/// duplicates) of its current output, in that order. `uses` collects, per local id,
/// the columns its `GetLocal`s were asked for.
fn narrow(
    expr: &mut MirRelationExpr,
    demand: &[usize],
    uses: &mut BTreeMap<LocalId, BTreeSet<usize>>,
) {
    let arity = expr.arity();
    let all: Vec<usize> = (0..arity).collect();
    match expr {
        MirRelationExpr::Constant { rows, typ } => {
            if demand != all.as_slice() {
                if let Ok(rows) = rows {
                    for (row, _) in rows.iter_mut() {
                        let datums = row.unpack();
                        let kept: Vec<repr::Datum> = demand.iter().map(|c| datums[*c]).collect();
                        *row = repr::Row::pack_slice(&kept);
                    }
                }
                *typ = RelationType::new(demand.iter().map(|c| typ.column_types[*c]).collect());
            }
        }
        MirRelationExpr::Get { .. } => project_onto(expr, &all, demand),
        MirRelationExpr::GetLocal { id, .. } => {
            uses.entry(*id).or_default().extend(demand.iter().copied());
            project_onto(expr, &all, demand);
        }
        MirRelationExpr::Project { input, outputs } => {
            let needed: BTreeSet<usize> = demand.iter().map(|d| outputs[*d]).collect();
            let needed: Vec<usize> = needed.into_iter().collect();
            let input_arity = input.arity();
            narrow(input, &needed, uses);
            let map = positions(&needed, input_arity);
            let new_outputs: Vec<usize> = demand.iter().map(|d| map[outputs[*d]]).collect();
            let inner = take(input);
            *expr = project(inner, new_outputs);
        }
        MirRelationExpr::Map { input, scalars } => {
            let n = input.arity();
            let mut needed: BTreeSet<usize> = demand.iter().copied().collect();
            for (j, s) in scalars.iter().enumerate().rev() {
                if needed.contains(&(n + j)) {
                    needed.extend(s.support());
                }
            }
            let input_demand: Vec<usize> = needed.iter().copied().filter(|c| *c < n).collect();
            let kept: Vec<usize> = (0..scalars.len())
                .filter(|j| needed.contains(&(n + j)))
                .collect();
            narrow(input, &input_demand, uses);
            let mut map = positions(&input_demand, n + scalars.len());
            for (rank, j) in kept.iter().enumerate() {
                map[n + j] = input_demand.len() + rank;
            }
            let new_scalars: Vec<MirScalarExpr> = kept
                .iter()
                .map(|j| {
                    let mut s = scalars[*j].clone();
                    s.permute(&map);
                    s
                })
                .collect();
            let produced: Vec<usize> = input_demand
                .iter()
                .copied()
                .chain(kept.iter().map(|j| n + j))
                .collect();
            let inner = take(input);
            *expr = inner.map(new_scalars);
            hoist_project(expr);
            project_onto(expr, &produced, demand);
        }
        MirRelationExpr::Filter { input, predicates } => {
            let mut needed: BTreeSet<usize> = demand.iter().copied().collect();
            for p in predicates.iter() {
                needed.extend(p.support());
            }
            let needed: Vec<usize> = needed.into_iter().collect();
            narrow(input, &needed, uses);
            let map = positions(&needed, arity);
            predicates.iter_mut().for_each(|p| p.permute(&map));
            hoist_project(expr);
            project_onto(expr, &needed, demand);
        }
        MirRelationExpr::FlatMap { input, func, exprs } => {
            let n = input.arity();
            let mut needed: BTreeSet<usize> = demand.iter().copied().filter(|c| *c < n).collect();
            for e in exprs.iter() {
                needed.extend(e.support());
            }
            let needed: Vec<usize> = needed.into_iter().collect();
            narrow(input, &needed, uses);
            let map = positions(&needed, n);
            exprs.iter_mut().for_each(|e| e.permute(&map));
            let produced: Vec<usize> = needed
                .iter()
                .copied()
                .chain(n..n + func.output_types().len())
                .collect();
            project_onto(expr, &produced, demand);
        }
        MirRelationExpr::Join {
            inputs,
            equivalences,
        } => {
            let mut needed: BTreeSet<usize> = demand.iter().copied().collect();
            for e in equivalences.iter().flatten() {
                needed.extend(e.support());
            }
            let mut produced = Vec::new();
            let mut map = vec![usize::MAX; arity];
            let mut offset = 0;
            for input in inputs.iter_mut() {
                let input_arity = input.arity();
                let local: Vec<usize> = needed
                    .iter()
                    .filter(|c| **c >= offset && **c < offset + input_arity)
                    .map(|c| c - offset)
                    .collect();
                narrow(input, &local, uses);
                for c in &local {
                    map[offset + c] = produced.len();
                    produced.push(offset + c);
                }
                offset += input_arity;
            }
            equivalences
                .iter_mut()
                .flatten()
                .for_each(|e| e.permute(&map));
            project_onto(expr, &produced, demand);
        }
        MirRelationExpr::Reduce {
            input,
            group_key,
            aggregates,
        } => {
            let k = group_key.len();
            let kept: Vec<usize> = (0..aggregates.len())
                .filter(|j| demand.contains(&(k + j)))
                .collect();
            let mut kept_aggregates: Vec<_> = kept.iter().map(|j| aggregates[*j].clone()).collect();
            let mut needed: BTreeSet<usize> = BTreeSet::new();
            for e in group_key.iter() {
                needed.extend(e.support());
            }
            for a in &kept_aggregates {
                needed.extend(a.expr.support());
            }
            let needed: Vec<usize> = needed.into_iter().collect();
            let input_arity = input.arity();
            narrow(input, &needed, uses);
            let map = positions(&needed, input_arity);
            group_key.iter_mut().for_each(|e| e.permute(&map));
            kept_aggregates
                .iter_mut()
                .for_each(|a| a.expr.permute(&map));
            *aggregates = kept_aggregates;
            let produced: Vec<usize> = (0..k).chain(kept.iter().map(|j| k + j)).collect();
            project_onto(expr, &produced, demand);
        }
        MirRelationExpr::TopK {
            input,
            group_key,
            order_key,
            ..
        } => {
            let mut needed: BTreeSet<usize> = demand.iter().copied().collect();
            needed.extend(group_key.iter().copied());
            needed.extend(order_key.iter().map(|o| o.column));
            let needed: Vec<usize> = needed.into_iter().collect();
            narrow(input, &needed, uses);
            let map = positions(&needed, arity);
            group_key.iter_mut().for_each(|c| *c = map[*c]);
            order_key.iter_mut().for_each(|o| o.column = map[o.column]);
            project_onto(expr, &needed, demand);
        }
        MirRelationExpr::Negate { input } => narrow(input, demand, uses),
        MirRelationExpr::Union { base, inputs } => {
            narrow(base, demand, uses);
            for input in inputs.iter_mut() {
                narrow(input, demand, uses);
            }
        }
        MirRelationExpr::Let { id, value, body } => {
            let id = *id;
            narrow(body, demand, uses);
            let value_arity = value.arity();
            let wanted: Vec<usize> = match uses.remove(&id) {
                Some(columns) => columns.into_iter().collect(),
                None => (0..value_arity).collect(),
            };
            narrow(value, &wanted, uses);
            if wanted.len() != value_arity {
                let typ = value.typ();
                let map = positions(&wanted, value_arity);
                retarget_uses(body, id, &typ, &map);
            }
        }
        // Threshold compares whole rows, and unknown operators (LetRec) keep their
        // inputs' types: every input column stays; the projection goes above.
        _ => {
            for child in expr.children_mut() {
                let child_all: Vec<usize> = (0..child.arity()).collect();
                narrow(child, &child_all, uses);
            }
            project_onto(expr, &all, demand);
        }
    }
}

/// After the value bound to `id` was narrowed, the `Project`s above its uses read the
/// new positions (`map`: old column → new column) and the uses carry its new type.
fn retarget_uses(expr: &mut MirRelationExpr, id: LocalId, typ: &RelationType, map: &[usize]) {
    if let MirRelationExpr::Project { input, outputs } = expr {
        if let MirRelationExpr::GetLocal { id: used, typ: t } = &mut **input {
            if *used == id {
                *t = typ.clone();
                outputs.iter_mut().for_each(|c| *c = map[*c]);
                return;
            }
        }
    }
    if let MirRelationExpr::GetLocal { id: used, typ: t } = expr {
        // Every column was demanded here, so every column was kept: only the type
        // changes (its keys, say).
        if *used == id {
            *t = typ.clone();
        }
        return;
    }
    for child in expr.children_mut() {
        retarget_uses(child, id, typ, map);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expr::{AggregateExpr, AggregateFunc, BinaryFunc};
    use repr::{GlobalId, ScalarType};

    fn get(id: u64, arity: usize) -> MirRelationExpr {
        MirRelationExpr::Get {
            id: GlobalId::User(id),
            typ: RelationType::new(vec![ScalarType::Int32.nullable(true); arity]),
            name: format!("t{id}"),
        }
    }

    #[test]
    fn join_inputs_keep_only_read_columns() {
        // SELECT t1.#0 FROM t1 (3 columns), t2 (3 columns) WHERE t1.#1 = t2.#2
        let mut e = MirRelationExpr::Join {
            inputs: vec![get(1, 3), get(2, 3)],
            equivalences: vec![vec![MirScalarExpr::column(1), MirScalarExpr::column(5)]],
        }
        .project(vec![0]);
        pushdown(&mut e);
        let expected = MirRelationExpr::Join {
            inputs: vec![get(1, 3).project(vec![0, 1]), get(2, 3).project(vec![2])],
            equivalences: vec![vec![MirScalarExpr::column(1), MirScalarExpr::column(2)]],
        }
        .project(vec![0]);
        assert_eq!(e, expected, "{e}");
    }

    #[test]
    fn unread_scalars_and_aggregates_go() {
        let count = |c| AggregateExpr {
            func: AggregateFunc::Count,
            expr: MirScalarExpr::column(c),
            distinct: false,
        };
        // Reduce by #0 of (count(#1), count(#2)), then a Map reading the key, keep
        // only the key and the map.
        let plus_one = MirScalarExpr::column(0).call_binary(
            MirScalarExpr::literal(repr::Datum::Int32(1), ScalarType::Int32),
            BinaryFunc::Add,
        );
        let mut e = MirRelationExpr::Reduce {
            input: Box::new(get(1, 3)),
            group_key: vec![MirScalarExpr::column(0)],
            aggregates: vec![count(1), count(2)],
        }
        .map(vec![plus_one.clone(), MirScalarExpr::column(2)])
        .project(vec![3, 0]);
        pushdown(&mut e);
        let expected = MirRelationExpr::Reduce {
            input: Box::new(get(1, 3).project(vec![0])),
            group_key: vec![MirScalarExpr::column(0)],
            aggregates: vec![],
        }
        .map(vec![plus_one])
        .project(vec![1, 0]);
        assert_eq!(e, expected, "{e}");
    }

    #[test]
    fn let_values_keep_the_union_of_their_uses_and_threshold_keeps_all() {
        let (local, binding) = get(1, 4).negate().bind();
        let mut e = binding.wrap(
            MirRelationExpr::Join {
                inputs: vec![
                    local.clone().project(vec![0]),
                    local.clone().project(vec![2]),
                ],
                equivalences: vec![],
            }
            .threshold()
            .project(vec![1]),
        );
        pushdown(&mut e);
        let MirRelationExpr::Let { value, body, .. } = &e else {
            panic!("{e}")
        };
        // The value reads columns 0 and 2 only.
        assert_eq!(value.arity(), 2, "{e}");
        let MirRelationExpr::Project { input, .. } = &**body else {
            panic!("{e}")
        };
        let MirRelationExpr::Threshold { input } = &**input else {
            panic!("threshold keeps its input's columns: {e}")
        };
        assert_eq!(input.arity(), 2, "{e}");
        // The uses read positions 0 and 1 of the narrowed value.
        let MirRelationExpr::Join { inputs, .. } = &**input else {
            panic!("{e}")
        };
        assert!(
            matches!(&inputs[0], MirRelationExpr::Project { outputs, .. } if outputs == &vec![0])
        );
        assert!(
            matches!(&inputs[1], MirRelationExpr::Project { outputs, .. } if outputs == &vec![1])
        );
        assert_eq!(e.arity(), 1);
    }

    #[test]
    fn maps_over_narrowed_lets_read_the_new_positions() {
        // Let l = t (3 columns) negated In Union(l's #2, Map(l's #0 .. #2) read at #3).
        let (local, binding) = get(1, 3).negate().bind();
        let mut e = binding.wrap(
            local.clone().project(vec![2]).union(
                local
                    .project(vec![0, 1, 2])
                    .map(vec![MirScalarExpr::column(2)])
                    .project(vec![3]),
            ),
        );
        pushdown(&mut e);
        let MirRelationExpr::Let { value, body, .. } = &e else {
            panic!("{e}")
        };
        // Only column 2 is read; the map reads it at its new position 0.
        assert_eq!(value.arity(), 1, "{e}");
        let MirRelationExpr::Union { inputs, .. } = &**body else {
            panic!("{e}")
        };
        let mut found = false;
        let mut check = |m: &MirRelationExpr| {
            if let MirRelationExpr::Map { input, scalars } = m {
                assert!(matches!(**input, MirRelationExpr::Project { .. }), "{e}");
                assert_eq!(scalars, &vec![MirScalarExpr::column(0)], "{e}");
                found = true;
            }
        };
        match &inputs[0] {
            MirRelationExpr::Project { input, .. } => check(input),
            other => check(other),
        }
        assert!(found, "{e}");
    }
}
