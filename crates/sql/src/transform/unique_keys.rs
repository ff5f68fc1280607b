//! Unique keys: which sets of columns of a MIR expression identify its rows.
//!
//! # Contract
//!
//! A key `K` of an expression (a sorted set of column positions) promises that in its
//! collection, at any time, no two rows agree on the columns `K` (NULL agreeing with
//! NULL, as GROUP BY groups them) and every row has multiplicity at most one. The empty
//! key promises at most one row. The analysis is conservative: it may miss keys, never
//! invent one.
//!
//! Keys come from what the dataflow itself guarantees: the group key of a `Reduce`
//! (and so `DISTINCT`), a `TopK` keeping one row per group, constant rows, and whatever
//! the catalog puts in a `Get`'s type. Table `PRIMARY KEY`s are not keys here: Freshet
//! does not enforce them, so a table may hold duplicates.

use std::collections::{BTreeMap, BTreeSet};

use expr::{LocalId, MirRelationExpr, MirScalarExpr};

/// The unique keys of `expr`, each sorted, without duplicates (at most a few).
pub fn keys(expr: &MirRelationExpr) -> Vec<Vec<usize>> {
    keys_in(expr, &BTreeMap::new())
}

/// The most keys kept per expression: joins multiply them.
const MAX_KEYS: usize = 8;

pub(crate) fn keys_in(
    expr: &MirRelationExpr,
    locals: &BTreeMap<LocalId, Vec<Vec<usize>>>,
) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = match expr {
        MirRelationExpr::Get { typ, .. } => typ.keys.clone(),
        MirRelationExpr::GetLocal { id, .. } => locals.get(id).cloned().unwrap_or_default(),
        MirRelationExpr::Let { id, value, body } => {
            let mut locals = locals.clone();
            locals.insert(*id, keys_in(value, &locals));
            keys_in(body, &locals)
        }
        MirRelationExpr::Constant {
            rows: Ok(rows),
            typ,
        } => constant_keys(rows, typ.arity()),
        MirRelationExpr::Constant { rows: Err(_), .. } => vec![vec![]],
        MirRelationExpr::Project { input, outputs } => keys_in(input, locals)
            .into_iter()
            .filter_map(|key| {
                key.iter()
                    .map(|c| outputs.iter().position(|o| o == c))
                    .collect::<Option<Vec<usize>>>()
            })
            .collect(),
        // Columns appended by a Map or a FlatMap do not change which input columns
        // identify a row; a FlatMap may emit several rows per input row, so it keeps
        // no input key.
        MirRelationExpr::Map { input, scalars } => {
            // A scalar that copies a key column may stand in for it (GROUP BY keys are
            // such copies).
            let n = input.arity();
            let mut keys = keys_in(input, locals);
            let aliased: Vec<Vec<usize>> = keys
                .iter()
                .map(|key| {
                    key.iter()
                        .map(|c| {
                            scalars
                                .iter()
                                .position(|s| *s == MirScalarExpr::Column(*c))
                                .map_or(*c, |j| n + j)
                        })
                        .collect()
                })
                .collect();
            for key in aliased {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            keys
        }
        MirRelationExpr::Filter { input, .. } | MirRelationExpr::Threshold { input } => {
            keys_in(input, locals)
        }
        MirRelationExpr::FlatMap { .. } => vec![],
        MirRelationExpr::Join {
            inputs,
            equivalences,
        } => join_keys(inputs, equivalences, locals),
        MirRelationExpr::Reduce { group_key, .. } => vec![(0..group_key.len()).collect()],
        MirRelationExpr::TopK {
            input,
            group_key,
            limit,
            ..
        } => {
            let mut keys = keys_in(input, locals);
            if limit.is_some_and(|l| l <= 1) {
                keys.push(group_key.clone());
            }
            keys
        }
        // A negated collection has negative multiplicities; a union may repeat a row.
        MirRelationExpr::Negate { .. } | MirRelationExpr::Union { .. } => vec![],
        // Anything else (recursive bindings) is not analysed.
        #[allow(unreachable_patterns)]
        _ => vec![],
    };
    for key in out.iter_mut() {
        key.sort_unstable();
        key.dedup();
    }
    // Drop keys that contain another key: they promise nothing more.
    out.sort_by_key(|k| k.len());
    let mut minimal: Vec<Vec<usize>> = Vec::new();
    for key in out {
        if !minimal.iter().any(|m| m.iter().all(|c| key.contains(c))) {
            minimal.push(key);
        }
    }
    minimal.truncate(MAX_KEYS);
    minimal
}

/// Keys of literal rows: the empty key for at most one row, else each single column
/// whose values are all different (when every multiplicity is one).
fn constant_keys(rows: &[(repr::Row, repr::Diff)], arity: usize) -> Vec<Vec<usize>> {
    let positive: Vec<&(repr::Row, repr::Diff)> = rows.iter().filter(|(_, d)| *d != 0).collect();
    if positive.iter().any(|(_, d)| *d != 1) {
        return vec![];
    }
    if positive.len() <= 1 {
        return vec![vec![]];
    }
    let unpacked: Vec<Vec<repr::Datum>> = positive.iter().map(|(r, _)| r.unpack()).collect();
    let mut keys = Vec::new();
    for c in 0..arity {
        // Packed, so values compare as GROUP BY compares them.
        let values: BTreeSet<repr::Row> = unpacked
            .iter()
            .map(|r| repr::Row::pack_slice(&[r[c]]))
            .collect();
        if values.len() == unpacked.len() {
            keys.push(vec![c]);
        }
    }
    let whole: BTreeSet<&repr::Row> = positive.iter().map(|(r, _)| r).collect();
    if keys.is_empty() && whole.len() == unpacked.len() {
        keys.push((0..arity).collect());
    }
    keys
}

/// A join's keys: one key of every input, except that an input whose key columns are
/// all equated with columns of other inputs adds nothing (each row of the others
/// meets at most one of its rows).
fn join_keys(
    inputs: &[MirRelationExpr],
    equivalences: &[Vec<MirScalarExpr>],
    locals: &BTreeMap<LocalId, Vec<Vec<usize>>>,
) -> Vec<Vec<usize>> {
    let mut offset = 0;
    let mut per_input = Vec::new();
    let mut ranges = Vec::new();
    for input in inputs {
        let arity = input.arity();
        let keys: Vec<Vec<usize>> = keys_in(input, locals)
            .into_iter()
            .map(|k| k.into_iter().map(|c| c + offset).collect())
            .collect();
        per_input.push(keys);
        ranges.push(offset..offset + arity);
        offset += arity;
    }
    // Columns equated with an expression over other inputs only.
    let bound_from_outside = |column: usize, input: usize| {
        equivalences.iter().any(|class| {
            class.contains(&MirScalarExpr::Column(column))
                && class.iter().any(|e| {
                    let s = e.support();
                    !s.is_empty() && s.iter().all(|c| !ranges[input].contains(c))
                })
        })
    };
    let dispensable: Vec<bool> = (0..inputs.len())
        .map(|i| {
            per_input[i]
                .iter()
                .any(|k| k.iter().all(|c| bound_from_outside(*c, i)))
        })
        .collect();
    // Combine one key from every input that is needed. Only one dispensable input may
    // be dropped at a time (two could each be bound to the other); try each choice.
    let mut results = Vec::new();
    let choices: Vec<Option<usize>> = std::iter::once(None)
        .chain((0..inputs.len()).filter(|i| dispensable[*i]).map(Some))
        .collect();
    for skip in choices {
        let mut combos: Vec<Vec<usize>> = vec![vec![]];
        for (i, keys) in per_input.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            let mut next = Vec::new();
            for combo in &combos {
                for key in keys {
                    let mut k = combo.clone();
                    k.extend(key);
                    next.push(k);
                }
            }
            next.truncate(MAX_KEYS);
            combos = next;
        }
        results.extend(combos);
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use expr::{AggregateExpr, AggregateFunc};
    use repr::{Datum, GlobalId, RelationType, Row, ScalarType};

    fn get(id: u64, arity: usize) -> MirRelationExpr {
        MirRelationExpr::Get {
            id: GlobalId::User(id),
            typ: RelationType::new(vec![ScalarType::Int32.nullable(true); arity]),
            name: format!("t{id}"),
        }
    }

    fn count_by(input: MirRelationExpr, key: usize) -> MirRelationExpr {
        MirRelationExpr::Reduce {
            input: Box::new(input),
            group_key: vec![MirScalarExpr::column(key)],
            aggregates: vec![AggregateExpr {
                func: AggregateFunc::Count,
                expr: MirScalarExpr::literal_true(),
                distinct: false,
            }],
        }
    }

    #[test]
    fn tables_have_no_keys_and_reductions_do() {
        assert_eq!(keys(&get(1, 2)), Vec::<Vec<usize>>::new());
        assert_eq!(keys(&get(1, 3).distinct()), vec![vec![0, 1, 2]]);
        // Through a Project that moves the key and a Filter.
        let e = count_by(get(1, 2), 1)
            .filter(vec![
                MirScalarExpr::column(1).call_unary(expr::UnaryFunc::IsNull)
            ])
            .project(vec![1, 0]);
        assert_eq!(keys(&e), vec![vec![1]]);
        // A Project that drops a key column loses the key.
        assert!(keys(&count_by(get(1, 2), 1).project(vec![1])).is_empty());
        // A union repeats rows.
        assert!(keys(&get(1, 1).distinct().union(get(2, 1).distinct())).is_empty());
        // Map columns that copy key columns form a key too.
        let copies = get(1, 2)
            .distinct()
            .map(vec![MirScalarExpr::column(0), MirScalarExpr::column(1)]);
        assert_eq!(keys(&copies), vec![vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn join_keys_drop_inputs_bound_on_their_key() {
        // t1 (2 columns) joined to count-by-key of t2 on t1.#1 = key: t1's rows stay
        // unique if t1 had a key; neither has one here except the reduce.
        let join = MirRelationExpr::Join {
            inputs: vec![get(1, 2).distinct(), count_by(get(2, 1), 0)],
            equivalences: vec![vec![MirScalarExpr::column(1), MirScalarExpr::column(2)]],
        };
        // Either {0, 1} (t1's distinct rows, the reduce bound by #1 = #2) or
        // {0, 1, 2} (both keys); only the minimal one stays.
        assert_eq!(keys(&join), vec![vec![0, 1]]);
        let cross = MirRelationExpr::Join {
            inputs: vec![get(1, 2).distinct(), count_by(get(2, 1), 0)],
            equivalences: vec![],
        };
        assert_eq!(keys(&cross), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn constants_and_lets() {
        let typ = RelationType::new(vec![ScalarType::Int32.nullable(false); 2]);
        let rows = |v: &[(i32, i32)]| {
            v.iter()
                .map(|(a, b)| Row::pack_slice(&[Datum::Int32(*a), Datum::Int32(*b)]))
                .collect()
        };
        let c = MirRelationExpr::constant(rows(&[(1, 7), (2, 7)]), typ.clone());
        assert_eq!(keys(&c), vec![vec![0]]);
        let one = MirRelationExpr::constant(rows(&[(1, 7)]), typ.clone());
        assert_eq!(keys(&one), vec![Vec::<usize>::new()]);
        let dup = MirRelationExpr::constant(rows(&[(1, 7), (1, 7)]), typ);
        assert!(keys(&dup).is_empty());
        let (local, binding) = get(1, 2).distinct().bind();
        let e = binding.wrap(local.project(vec![1, 0]));
        assert_eq!(keys(&e), vec![vec![0, 1]]);
    }
}
