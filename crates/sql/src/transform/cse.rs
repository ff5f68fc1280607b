//! Common subexpression reuse, for relations and for scalars.
//!
//! [`relations`]: identical relation subtrees (the same view or subquery used twice)
//! are bound once with a `Let` placed above all their uses, and each use reads it with
//! `GetLocal`, so the dataflow computes the value once. Only subtrees that do real work
//! qualify (not a `Get` or a constant, nor maps, filters and projects of one, which
//! cost less than sharing them).
//!
//! [`scalars`]: within one `Map`, a sub-expression computed more than once is computed
//! once, as a new column just before the first scalar that always evaluates it, and
//! read from that column by the later scalars.
//!
//! # Contract
//!
//! Outputs are unchanged. A relation is bound only where every local id it reads is in
//! scope, and never across an operator this module does not know (such as `LetRec`,
//! whose bindings change from round to round). A scalar sub-expression is computed
//! earlier only if it was going to be evaluated anyway: occurrences under `CASE`
//! branches, either side of `AND`/`OR` (whose deciding value hides the other side's
//! error) and the later arguments of variadic functions (`COALESCE`) do not count, so
//! no error is raised that was not raised before. When one row raises two errors,
//! which one is reported may change (PostgreSQL does not fix the order either).

use std::collections::{BTreeMap, BTreeSet};

use expr::{BinaryFunc, LocalId, MirRelationExpr, MirScalarExpr};

/// The most nodes a plan may have for [`relations`] to look at it (it compares
/// subtrees by their printed form).
const MAX_NODES: usize = 4_000;

/// Binds repeated relation subtrees once.
pub fn relations(expr: &mut MirRelationExpr) {
    if count_nodes(expr) > MAX_NODES {
        return;
    }
    for _ in 0..16 {
        if !bind_one(expr) {
            break;
        }
    }
}

fn count_nodes(e: &MirRelationExpr) -> usize {
    1 + e.children().iter().map(|c| count_nodes(c)).sum::<usize>()
}

/// Whether `e` is one of the variants this module knows.
fn known(e: &MirRelationExpr) -> bool {
    matches!(
        e,
        MirRelationExpr::Let { .. }
            | MirRelationExpr::GetLocal { .. }
            | MirRelationExpr::Constant { .. }
            | MirRelationExpr::Get { .. }
            | MirRelationExpr::Project { .. }
            | MirRelationExpr::Map { .. }
            | MirRelationExpr::Filter { .. }
            | MirRelationExpr::FlatMap { .. }
            | MirRelationExpr::Join { .. }
            | MirRelationExpr::Reduce { .. }
            | MirRelationExpr::TopK { .. }
            | MirRelationExpr::Negate { .. }
            | MirRelationExpr::Threshold { .. }
            | MirRelationExpr::Union { .. }
    )
}

/// Reads of a collection and maps, filters and projects over one.
fn cheap(e: &MirRelationExpr) -> bool {
    match e {
        MirRelationExpr::Get { .. }
        | MirRelationExpr::GetLocal { .. }
        | MirRelationExpr::Constant { .. } => true,
        MirRelationExpr::Project { input, .. }
        | MirRelationExpr::Map { input, .. }
        | MirRelationExpr::Filter { input, .. } => cheap(input),
        _ => false,
    }
}

/// Whether every scalar expression in `e` gives the same value each time it is
/// evaluated (`gen_random_uuid()` does not: two copies of it are two columns of
/// different values, which one binding would make equal).
fn deterministic(e: &MirRelationExpr) -> bool {
    let own = match e {
        MirRelationExpr::Map { scalars: exprs, .. }
        | MirRelationExpr::Filter {
            predicates: exprs, ..
        }
        | MirRelationExpr::FlatMap { exprs, .. } => exprs.iter().all(|x| x.is_deterministic()),
        MirRelationExpr::Join { equivalences, .. } => {
            equivalences.iter().flatten().all(|x| x.is_deterministic())
        }
        MirRelationExpr::Reduce {
            group_key,
            aggregates,
            ..
        } => {
            group_key.iter().all(|x| x.is_deterministic())
                && aggregates.iter().all(|a| a.expr.is_deterministic())
        }
        _ => true,
    };
    own && e.children().into_iter().all(deterministic)
}

fn collect(
    e: &MirRelationExpr,
    path: &mut Vec<usize>,
    out: &mut BTreeMap<String, Vec<Vec<usize>>>,
) {
    if known(e) && !cheap(e) && deterministic(e) {
        out.entry(format!("{e:?}")).or_default().push(path.clone());
    }
    for (i, c) in e.children().into_iter().enumerate() {
        path.push(i);
        collect(c, path, out);
        path.pop();
    }
}

fn at_path<'a>(e: &'a mut MirRelationExpr, path: &[usize]) -> &'a mut MirRelationExpr {
    let mut cur = e;
    for i in path {
        cur = cur
            .children_mut()
            .into_iter()
            .nth(*i)
            .expect("a path from collect");
    }
    cur
}

/// The local ids `e` reads that it does not bind itself.
fn free_locals(e: &MirRelationExpr) -> BTreeSet<LocalId> {
    let mut out = BTreeSet::new();
    match e {
        MirRelationExpr::GetLocal { id, .. } => {
            out.insert(*id);
        }
        MirRelationExpr::Let { id, value, body } => {
            out.extend(free_locals(value));
            let mut in_body = free_locals(body);
            in_body.remove(id);
            out.extend(in_body);
        }
        _ => {
            for c in e.children() {
                out.extend(free_locals(c));
            }
        }
    }
    out
}

/// Finds the largest repeated subtree that can be bound and binds it.
fn bind_one(expr: &mut MirRelationExpr) -> bool {
    let mut found = BTreeMap::new();
    collect(expr, &mut Vec::new(), &mut found);
    let mut candidates: Vec<(String, Vec<Vec<usize>>)> = found
        .into_iter()
        .filter(|(_, paths)| paths.len() > 1)
        .collect();
    candidates.sort_by_key(|(text, _)| std::cmp::Reverse(text.len()));
    for (_, paths) in candidates {
        let lca: Vec<usize> = {
            let mut prefix = paths[0].clone();
            for p in &paths[1..] {
                let common = prefix.iter().zip(p).take_while(|(a, b)| a == b).count();
                prefix.truncate(common);
            }
            prefix
        };
        // Walk to the LCA, noting the ids in scope there and that every operator on
        // the way (and below, to each use) is known.
        let mut in_scope = BTreeSet::new();
        let mut ok = true;
        let mut cur: &MirRelationExpr = expr;
        for i in &lca {
            if !known(cur) {
                ok = false;
                break;
            }
            if let MirRelationExpr::Let { id, .. } = cur {
                if *i == 1 {
                    in_scope.insert(*id);
                }
            }
            cur = cur.children()[*i];
        }
        if !ok {
            continue;
        }
        let below_known = paths.iter().all(|p| {
            let mut node: &MirRelationExpr = cur;
            for i in &p[lca.len()..] {
                if !known(node) {
                    return false;
                }
                node = node.children()[*i];
            }
            true
        });
        let value = at_path(expr, &paths[0]).clone();
        if !below_known || !free_locals(&value).is_subset(&in_scope) {
            continue;
        }
        let id = LocalId::fresh();
        let typ = value.typ();
        for p in &paths {
            *at_path(expr, p) = MirRelationExpr::GetLocal {
                id,
                typ: typ.clone(),
            };
        }
        let site = at_path(expr, &lca);
        let body = std::mem::replace(site, MirRelationExpr::constant(vec![], Default::default()));
        *site = MirRelationExpr::Let {
            id,
            value: Box::new(value),
            body: Box::new(body),
        };
        return true;
    }
    false
}

/// Computes repeated scalar sub-expressions of every `Map` once.
pub fn scalars(expr: &mut MirRelationExpr) {
    for child in expr.children_mut() {
        scalars(child);
    }
    let MirRelationExpr::Map { input, scalars } = expr else {
        return;
    };
    let n = input.arity();
    let mut extracted = Vec::new();
    for _ in 0..16 {
        match extract_one(n, scalars) {
            Some(None) => {}
            Some(Some(position)) => {
                // Earlier extractions at or after this position moved one to the right.
                for p in extracted.iter_mut() {
                    if *p >= position {
                        *p += 1;
                    }
                }
                extracted.push(position);
            }
            None => break,
        }
    }
    if extracted.is_empty() {
        return;
    }
    let arity = n + scalars.len();
    let outputs: Vec<usize> = (0..arity)
        .filter(|c| *c < n || !extracted.contains(&(c - n)))
        .collect();
    let inner = std::mem::replace(expr, MirRelationExpr::constant(vec![], Default::default()));
    *expr = inner.project(outputs);
}

/// Sub-expressions of `e` that evaluating `e` always evaluates (`always`), and all of
/// them (`any`), each with its count; columns and literals are not counted.
fn occurrences<'a>(
    e: &'a MirScalarExpr,
    conditional: bool,
    always: &mut BTreeMap<&'a MirScalarExpr, usize>,
    any: &mut BTreeMap<&'a MirScalarExpr, usize>,
) {
    if matches!(e, MirScalarExpr::Column(_) | MirScalarExpr::Literal(..)) {
        return;
    }
    *any.entry(e).or_default() += 1;
    if !conditional {
        *always.entry(e).or_default() += 1;
    }
    match e {
        MirScalarExpr::CallUnary { expr, .. } => occurrences(expr, conditional, always, any),
        MirScalarExpr::CallBinary {
            func: BinaryFunc::And | BinaryFunc::Or,
            expr1,
            expr2,
        } => {
            occurrences(expr1, true, always, any);
            occurrences(expr2, true, always, any);
        }
        MirScalarExpr::CallBinary { expr1, expr2, .. } => {
            occurrences(expr1, conditional, always, any);
            occurrences(expr2, conditional, always, any);
        }
        MirScalarExpr::CallVariadic { exprs, .. } => {
            for (i, x) in exprs.iter().enumerate() {
                occurrences(x, conditional || i > 0, always, any);
            }
        }
        MirScalarExpr::If { cond, then, els } => {
            occurrences(cond, conditional, always, any);
            occurrences(then, true, always, any);
            occurrences(els, true, always, any);
        }
        MirScalarExpr::Column(_) | MirScalarExpr::Literal(..) => {}
    }
}

/// Replaces every occurrence of `target` in `e` by `column`.
fn replace(e: &mut MirScalarExpr, target: &MirScalarExpr, column: usize) {
    if e == target {
        *e = MirScalarExpr::Column(column);
        return;
    }
    match e {
        MirScalarExpr::CallUnary { expr, .. } => replace(expr, target, column),
        MirScalarExpr::CallBinary { expr1, expr2, .. } => {
            replace(expr1, target, column);
            replace(expr2, target, column);
        }
        MirScalarExpr::CallVariadic { exprs, .. } => {
            exprs.iter_mut().for_each(|x| replace(x, target, column))
        }
        MirScalarExpr::If { cond, then, els } => {
            replace(cond, target, column);
            replace(then, target, column);
            replace(els, target, column);
        }
        MirScalarExpr::Column(_) | MirScalarExpr::Literal(..) => {}
    }
}

/// Extracts one repeated sub-expression of `scalars` (over `n` input columns) into its
/// own scalar; returns its position among the scalars if it inserted one (`Some(None)`
/// when the expression already was a whole scalar, which the later ones now read).
fn extract_one(n: usize, scalars: &mut Vec<MirScalarExpr>) -> Option<Option<usize>> {
    // For each scalar j, the sub-expressions it always evaluates; pick the largest
    // one that scalars j.. contain at least twice in all.
    let mut best: Option<(usize, MirScalarExpr)> = None;
    for j in 0..scalars.len() {
        let mut always = BTreeMap::new();
        let mut any_here = BTreeMap::new();
        occurrences(&scalars[j], false, &mut always, &mut any_here);
        let mut any_later = BTreeMap::new();
        let mut ignored = BTreeMap::new();
        for s in &scalars[j..] {
            occurrences(s, false, &mut ignored, &mut any_later);
        }
        for (candidate, _) in always {
            if any_later.get(candidate).copied().unwrap_or(0) < 2 || !candidate.is_deterministic() {
                continue;
            }
            let size = |e: &MirScalarExpr| format!("{e:?}").len();
            if best.as_ref().is_none_or(|(_, b)| size(candidate) > size(b)) {
                best = Some((j, candidate.clone()));
            }
        }
        if best.is_some() {
            break;
        }
    }
    let (j, target) = best?;
    if scalars[j] == target {
        for s in scalars[j + 1..].iter_mut() {
            replace(s, &target, n + j);
        }
        return Some(None);
    }
    // Columns from position n + j on move one to the right, then the occurrences read
    // the new column n + j.
    let shift: Vec<usize> = (0..n + scalars.len())
        .map(|c| if c >= n + j { c + 1 } else { c })
        .collect();
    for s in scalars[j..].iter_mut() {
        s.permute(&shift);
        replace(s, &target, n + j);
    }
    scalars.insert(j, target);
    Some(Some(j))
}

#[cfg(test)]
mod tests {
    use super::*;
    use expr::{AggregateExpr, AggregateFunc, VariadicFunc};
    use repr::{Datum, GlobalId, RelationType, ScalarType};

    fn get(id: u64, arity: usize) -> MirRelationExpr {
        MirRelationExpr::Get {
            id: GlobalId::User(id),
            typ: RelationType::new(vec![ScalarType::Int32.nullable(true); arity]),
            name: format!("t{id}"),
        }
    }

    fn counts(input: MirRelationExpr) -> MirRelationExpr {
        MirRelationExpr::Reduce {
            input: Box::new(input),
            group_key: vec![MirScalarExpr::column(0)],
            aggregates: vec![AggregateExpr {
                func: AggregateFunc::Count,
                expr: MirScalarExpr::literal_true(),
                distinct: false,
            }],
        }
    }

    #[test]
    fn a_view_used_twice_is_bound_once() {
        let view = counts(get(1, 2));
        let mut e = MirRelationExpr::Join {
            inputs: vec![
                view.clone(),
                view.clone().filter(vec![
                    MirScalarExpr::column(1).call_unary(expr::UnaryFunc::IsNull)
                ]),
            ],
            equivalences: vec![vec![MirScalarExpr::column(0), MirScalarExpr::column(2)]],
        };
        relations(&mut e);
        let MirRelationExpr::Let { id, value, body } = &e else {
            panic!("not bound: {e}")
        };
        assert_eq!(**value, view);
        assert_eq!(body.count_uses(*id), 2, "{e}");
        // A plain Get used twice is not bound.
        let mut e = get(1, 1).union(get(1, 1));
        relations(&mut e);
        assert_eq!(e, get(1, 1).union(get(1, 1)));
    }

    #[test]
    fn volatile_relations_are_not_shared() {
        let uuid = MirScalarExpr::CallVariadic {
            func: VariadicFunc::GenRandomUuid,
            exprs: vec![],
        };
        let copy = counts(get(1, 2)).map(vec![uuid]);
        let mut e = copy.clone().union(copy);
        relations(&mut e);
        // The counts are shared; each copy still draws its own uuids.
        let MirRelationExpr::Let { id, body, .. } = &e else {
            panic!("{e}")
        };
        let MirRelationExpr::Union { base, inputs } = &**body else {
            panic!("{e}")
        };
        for branch in std::iter::once(&**base).chain(inputs) {
            let MirRelationExpr::Map { input, .. } = branch else {
                panic!("a volatile map was bound: {e}")
            };
            assert!(matches!(**input, MirRelationExpr::GetLocal { id: i, .. } if i == *id));
        }
    }

    #[test]
    fn bindings_stay_in_the_scope_of_what_they_read() {
        // Two copies of counts(GetLocal l) under `Let l`: bound inside it, not above.
        let (local, binding) = get(1, 2).negate().bind();
        let mut e = binding.wrap(counts(local.clone()).union(counts(local)));
        relations(&mut e);
        let MirRelationExpr::Let { body, .. } = &e else {
            panic!("{e}")
        };
        assert!(matches!(**body, MirRelationExpr::Let { .. }), "{e}");
    }

    #[test]
    fn repeated_scalars_are_computed_once_but_not_out_of_branches() {
        let plus = MirScalarExpr::column(0).call_binary(MirScalarExpr::column(1), BinaryFunc::Add);
        let two = MirScalarExpr::literal(Datum::Int32(2), ScalarType::Int32);
        // (#0 + #1) * 2, (#0 + #1) - 2
        let mut e = get(1, 2).map(vec![
            plus.clone().call_binary(two.clone(), BinaryFunc::Mul),
            plus.clone().call_binary(two.clone(), BinaryFunc::Sub),
        ]);
        scalars(&mut e);
        let expected = get(1, 2)
            .map(vec![
                plus.clone(),
                MirScalarExpr::column(2).call_binary(two.clone(), BinaryFunc::Mul),
                MirScalarExpr::column(2).call_binary(two.clone(), BinaryFunc::Sub),
            ])
            .project(vec![0, 1, 3, 4]);
        assert_eq!(e, expected, "{e}");
        // Only under CASE branches and COALESCE's later arguments: nothing moves.
        let guarded = get(1, 2).map(vec![
            MirScalarExpr::If {
                cond: Box::new(MirScalarExpr::column(0).call_unary(expr::UnaryFunc::IsNull)),
                then: Box::new(plus.clone()),
                els: Box::new(two.clone()),
            },
            MirScalarExpr::CallVariadic {
                func: VariadicFunc::Coalesce,
                exprs: vec![two.clone(), plus.clone()],
            },
        ]);
        let mut e = guarded.clone();
        scalars(&mut e);
        assert_eq!(e, guarded);
    }
}
