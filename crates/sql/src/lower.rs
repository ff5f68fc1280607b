//! HIR → MIR lowering, with decorrelation.
//!
//! Every HIR relation is lowered *applied to* an outer relation: `applied_to(outer,
//! map)` returns a MIR relation whose first columns are `outer`'s, followed by the HIR
//! relation's own, computed once per outer row. A top-level query is applied to the
//! one-row, zero-column relation. A subquery in a scalar position is lowered applied to
//! the distinct values of the outer columns it references, and its result is joined
//! back: so correlated subqueries run as joins over whole collections, never row at a
//! time.
//!
//! Joins introduced here match NULL to NULL (MIR join equivalences are null-safe);
//! SQL `=` between inputs gets explicit `IS NOT NULL` filters where it becomes an
//! equivalence (see `transform::predicate_pushdown`).

use std::collections::{BTreeMap, BTreeSet};

use expr::{AggregateExpr, AggregateFunc, BinaryFunc, MirRelationExpr, MirScalarExpr, UnaryFunc};
use repr::{Datum, EvalError, RelationType, Row, ScalarType};

use crate::error::PlanError;
use crate::hir::{HirRelationExpr, HirScalarExpr, JoinKind};

/// Where HIR column references live in the MIR relation being built: the current
/// level's columns start at `offset`; outer references `(level, column)` are at fixed
/// positions of the outer prefix.
#[derive(Clone, Debug, Default)]
struct ColumnMap {
    offset: usize,
    outer: BTreeMap<(usize, usize), usize>,
}

impl ColumnMap {
    fn resolve(&self, level: usize, column: usize) -> Result<usize, PlanError> {
        if level == 0 {
            return Ok(self.offset + column);
        }
        self.outer
            .get(&(level, column))
            .copied()
            .ok_or_else(|| PlanError::unsupported("this outer reference"))
    }
}

/// The one-row, zero-column relation.
fn unit() -> MirRelationExpr {
    MirRelationExpr::constant(vec![Row::default()], RelationType::new(vec![]))
}

/// Joins `left` and `right` where `pairs` of their columns are equal (null-safe), and
/// keeps the columns `keep` of the concatenation.
fn join_on(
    left: MirRelationExpr,
    right: MirRelationExpr,
    pairs: &[(usize, usize)],
    keep: Vec<usize>,
) -> MirRelationExpr {
    let left_arity = left.arity();
    let equivalences = pairs
        .iter()
        .map(|(l, r)| {
            vec![
                MirScalarExpr::Column(*l),
                MirScalarExpr::Column(left_arity + *r),
            ]
        })
        .collect();
    MirRelationExpr::Join {
        inputs: vec![left, right],
        equivalences,
    }
    .project(keep)
}

impl HirRelationExpr {
    /// Lowers a top-level query to MIR.
    pub fn lower(&self) -> Result<MirRelationExpr, PlanError> {
        self.applied_to(unit(), &ColumnMap::default())
    }

    /// The MIR relation `outer ++ self` (see the module docs).
    fn applied_to(
        &self,
        outer: MirRelationExpr,
        map: &ColumnMap,
    ) -> Result<MirRelationExpr, PlanError> {
        let outer_arity = outer.arity();
        debug_assert_eq!(map.offset, outer_arity);
        Ok(match self {
            HirRelationExpr::Constant { rows, typ } => {
                let constant = MirRelationExpr::constant(rows.clone(), typ.clone());
                product(outer, constant)
            }
            HirRelationExpr::Get { id, typ, name } => product(
                outer,
                MirRelationExpr::Get {
                    id: *id,
                    typ: typ.clone(),
                    name: name.clone(),
                },
            ),
            HirRelationExpr::GetRec { id, typ, .. } => product(
                outer,
                MirRelationExpr::GetLocal {
                    id: *id,
                    typ: typ.clone(),
                },
            ),
            // The bindings read no outer columns: each is lowered once, on its own,
            // and the body is lowered applied to `outer` inside them.
            HirRelationExpr::LetRec {
                bindings,
                limit,
                body,
            } => MirRelationExpr::LetRec {
                ids: bindings.iter().map(|b| b.id).collect(),
                values: bindings
                    .iter()
                    .map(|b| b.value.lower())
                    .collect::<Result<_, _>>()?,
                limit: *limit,
                body: Box::new(body.applied_to(outer, map)?),
            },
            HirRelationExpr::Project { input, outputs } => {
                let input = input.applied_to(outer, map)?;
                let keep = (0..outer_arity)
                    .chain(outputs.iter().map(|c| outer_arity + c))
                    .collect();
                input.project(keep)
            }
            HirRelationExpr::Map { input, scalars } => {
                let mut rel = input.applied_to(outer, map)?;
                let base = rel.arity();
                // Each scalar may read the ones before it, so lower them one at a time,
                // keeping only the relation's columns and the new ones between steps.
                for scalar in scalars {
                    let width = rel.arity();
                    let mut with_subqueries = rel.clone();
                    let lowered = scalar.applied_to(&mut with_subqueries, map)?;
                    if with_subqueries.arity() == width {
                        rel = rel.map(vec![lowered]);
                    } else {
                        let extra = with_subqueries.arity();
                        rel = with_subqueries
                            .map(vec![lowered])
                            .project((0..width).chain([extra]).collect());
                    }
                }
                debug_assert_eq!(rel.arity(), base + scalars.len());
                rel
            }
            HirRelationExpr::Filter { input, predicates } => {
                let mut rel = input.applied_to(outer, map)?;
                let width = rel.arity();
                let mut lowered = Vec::new();
                for p in predicates {
                    lowered.push(p.applied_to(&mut rel, map)?);
                }
                let filtered = rel.filter(lowered);
                if filtered.arity() == width {
                    filtered
                } else {
                    filtered.project((0..width).collect())
                }
            }
            HirRelationExpr::Join {
                left,
                right,
                on,
                kind,
            } => {
                let left_arity = left.arity();
                let right_arity = right.arity();
                let outer_joins = !matches!(kind, JoinKind::Inner);
                let l = left.applied_to(outer.clone(), map)?;
                let r = right.applied_to(outer.clone(), map)?;
                let (l, finish_l) = if outer_joins {
                    let (g, f) = l.bind();
                    (g, Some(f))
                } else {
                    (l, None)
                };
                let (r, finish_r) = if outer_joins {
                    let (g, f) = r.bind();
                    (g, Some(f))
                } else {
                    (r, None)
                };
                // outer ++ left ++ outer ++ right, with the two outer copies equal.
                let pairs: Vec<(usize, usize)> = (0..outer_arity).map(|c| (c, c)).collect();
                let keep: Vec<usize> = (0..outer_arity + left_arity)
                    .chain((0..right_arity).map(|c| 2 * outer_arity + left_arity + c))
                    .collect();
                let product = join_on(l.clone(), r.clone(), &pairs, keep);
                let width = product.arity();
                let mut rel = product;
                let predicate = on.applied_to(&mut rel, map)?;
                let mut joined = rel.filter(vec![predicate]);
                if joined.arity() != width {
                    joined = joined.project((0..width).collect());
                }
                let (joined, finish_joined) = if outer_joins {
                    let (g, f) = joined.bind();
                    (g, Some(f))
                } else {
                    (joined, None)
                };
                let result = match kind {
                    JoinKind::Inner => joined,
                    JoinKind::LeftOuter => {
                        let unmatched = unmatched(&l, &joined, 0..outer_arity + left_arity);
                        joined.union(pad_right(unmatched, &right.typ()))
                    }
                    JoinKind::RightOuter => {
                        let right_cols: Vec<usize> = (0..outer_arity)
                            .chain(outer_arity + left_arity..width)
                            .collect();
                        let unmatched = unmatched_cols(&r, &joined, &right_cols);
                        joined.union(pad_left(unmatched, outer_arity, &left.typ()))
                    }
                    JoinKind::FullOuter => {
                        let left_unmatched = unmatched(&l, &joined, 0..outer_arity + left_arity);
                        let right_cols: Vec<usize> = (0..outer_arity)
                            .chain(outer_arity + left_arity..width)
                            .collect();
                        let right_unmatched = unmatched_cols(&r, &joined, &right_cols);
                        joined
                            .union(pad_right(left_unmatched, &right.typ()))
                            .union(pad_left(right_unmatched, outer_arity, &left.typ()))
                    }
                };
                let mut result = result;
                for finish in [finish_joined, finish_r, finish_l].into_iter().flatten() {
                    result = finish.wrap(result);
                }
                result
            }
            HirRelationExpr::FlatMap { input, func, exprs } => {
                let mut rel = input.applied_to(outer, map)?;
                let width = rel.arity();
                // Subqueries in the arguments append their columns; drop them after.
                let mut lowered = Vec::new();
                for e in exprs {
                    lowered.push(e.applied_to(&mut rel, map)?);
                }
                let extra = rel.arity();
                let produced = func.output_types().len();
                let flat = MirRelationExpr::FlatMap {
                    input: Box::new(rel),
                    func: func.clone(),
                    exprs: lowered,
                };
                if extra == width {
                    flat
                } else {
                    flat.project((0..width).chain(extra..extra + produced).collect())
                }
            }
            HirRelationExpr::Window { input, windows } => {
                lower_windows(input.applied_to(outer, map)?, outer_arity, windows)
            }
            HirRelationExpr::LateralJoin {
                left,
                right,
                on,
                kind,
            } => {
                // As a correlated subquery: `right` applied to the distinct values of
                // the left columns it reads, joined back to the left rows.
                let mut rel = left.applied_to(outer, map)?;
                let width = rel.arity();
                let finish = share(&mut rel);
                let (keys, _, result) = lower_subquery(right, &rel, map)?;
                let k = keys.len();
                let right_arity = result.arity() - k;
                let pairs: Vec<(usize, usize)> =
                    keys.iter().enumerate().map(|(i, c)| (*c, i)).collect();
                let keep = (0..width)
                    .chain((0..right_arity).map(|c| width + k + c))
                    .collect();
                let mut joined = join_on(rel.clone(), result, &pairs, keep);
                let joined_width = joined.arity();
                let predicate = on.applied_to(&mut joined, map)?;
                let mut joined = joined.filter(vec![predicate]);
                if joined.arity() != joined_width {
                    joined = joined.project((0..joined_width).collect());
                }
                let result = match kind {
                    JoinKind::LeftOuter => {
                        // Left rows without a match, padded with NULLs.
                        let (joined, finish_joined) = joined.bind();
                        let missing = unmatched(&rel, &joined, 0..width);
                        finish_joined.wrap(joined.union(pad_right(missing, &right.typ())))
                    }
                    _ => joined,
                };
                finish.wrap(result)
            }
            HirRelationExpr::Reduce {
                input,
                group_key,
                aggregates,
            } => {
                let mut rel = input.applied_to(outer.clone(), map)?;
                let mut lowered_aggs = Vec::new();
                for a in aggregates {
                    // Subqueries in an aggregate's argument append their columns to the
                    // input, after the columns the group key reads.
                    let expr = a.expr.applied_to(&mut rel, map)?;
                    lowered_aggs.push(AggregateExpr {
                        func: a.func.clone(),
                        expr,
                        distinct: a.distinct,
                    });
                }
                let reduce = MirRelationExpr::Reduce {
                    input: Box::new(rel),
                    group_key: (0..outer_arity)
                        .map(MirScalarExpr::Column)
                        .chain(
                            group_key
                                .iter()
                                .map(|c| MirScalarExpr::Column(outer_arity + c)),
                        )
                        .collect(),
                    aggregates: lowered_aggs,
                };
                if group_key.is_empty() {
                    with_default_row(reduce, outer, outer_arity)
                } else {
                    reduce
                }
            }
            HirRelationExpr::Distinct { input } => input.applied_to(outer, map)?.distinct(),
            HirRelationExpr::TopK {
                input,
                group_key,
                order_key,
                limit,
                offset,
            } => MirRelationExpr::TopK {
                input: Box::new(input.applied_to(outer, map)?),
                // Correlated: one ranking per outer row.
                group_key: (0..outer_arity)
                    .chain(group_key.iter().map(|c| outer_arity + c))
                    .collect(),
                order_key: order_key
                    .iter()
                    .map(|o| expr::ColumnOrder {
                        column: outer_arity + o.column,
                        ..*o
                    })
                    .collect(),
                limit: *limit,
                offset: *offset,
            },
            HirRelationExpr::Negate { input } => input.applied_to(outer, map)?.negate(),
            HirRelationExpr::Threshold { input } => input.applied_to(outer, map)?.threshold(),
            // One flat union: a chain of binary unions would be as deep as a VALUES
            // list is long, and recursive passes over it would overflow the stack.
            HirRelationExpr::Union { base, inputs } => MirRelationExpr::Union {
                base: Box::new(base.applied_to(outer.clone(), map)?),
                inputs: inputs
                    .iter()
                    .map(|i| i.applied_to(outer.clone(), map))
                    .collect::<Result<_, _>>()?,
            },
        })
    }

    /// The outer references of this relation: `(level, column)` relative to it, for
    /// every reference that points outside it.
    pub fn outer_refs(&self) -> BTreeSet<(usize, usize)> {
        let mut out = BTreeSet::new();
        self.visit_scalars(0, &mut |depth, e| {
            if let HirScalarExpr::OuterColumn { level, column, .. } = e {
                if *level > depth {
                    out.insert((level - depth, *column));
                }
            }
        });
        out
    }

    /// Calls `f(depth, e)` on every scalar expression, where `depth` counts the
    /// subqueries entered to reach it.
    fn visit_scalars(&self, depth: usize, f: &mut dyn FnMut(usize, &HirScalarExpr)) {
        let visit_scalar =
            |e: &HirScalarExpr, f: &mut dyn FnMut(usize, &HirScalarExpr)| e.visit(depth, f);
        match self {
            HirRelationExpr::Constant { .. }
            | HirRelationExpr::Get { .. }
            | HirRelationExpr::GetRec { .. } => {}
            HirRelationExpr::LetRec { bindings, body, .. } => {
                bindings
                    .iter()
                    .for_each(|b| b.value.visit_scalars(depth, f));
                body.visit_scalars(depth, f);
            }
            HirRelationExpr::Project { input, .. }
            | HirRelationExpr::TopK { input, .. }
            | HirRelationExpr::Distinct { input }
            | HirRelationExpr::Negate { input }
            | HirRelationExpr::Threshold { input } => input.visit_scalars(depth, f),
            HirRelationExpr::Map { input, scalars } => {
                input.visit_scalars(depth, f);
                scalars.iter().for_each(|s| visit_scalar(s, f));
            }
            HirRelationExpr::FlatMap { input, exprs, .. } => {
                input.visit_scalars(depth, f);
                exprs.iter().for_each(|s| visit_scalar(s, f));
            }
            HirRelationExpr::Window { input, .. } => input.visit_scalars(depth, f),
            HirRelationExpr::LateralJoin {
                left, right, on, ..
            } => {
                left.visit_scalars(depth, f);
                visit_scalar(on, f);
                // `right` sees `left` as one scope out, as a subquery would.
                right.visit_scalars(depth + 1, f);
            }
            HirRelationExpr::Filter { input, predicates } => {
                input.visit_scalars(depth, f);
                predicates.iter().for_each(|s| visit_scalar(s, f));
            }
            HirRelationExpr::Join {
                left, right, on, ..
            } => {
                left.visit_scalars(depth, f);
                right.visit_scalars(depth, f);
                visit_scalar(on, f);
            }
            HirRelationExpr::Reduce {
                input, aggregates, ..
            } => {
                input.visit_scalars(depth, f);
                aggregates.iter().for_each(|a| visit_scalar(&a.expr, f));
            }
            HirRelationExpr::Union { base, inputs } => {
                base.visit_scalars(depth, f);
                inputs.iter().for_each(|i| i.visit_scalars(depth, f));
            }
        }
    }
}

impl HirScalarExpr {
    fn visit(&self, depth: usize, f: &mut dyn FnMut(usize, &HirScalarExpr)) {
        f(depth, self);
        match self {
            HirScalarExpr::Column(_)
            | HirScalarExpr::OuterColumn { .. }
            | HirScalarExpr::Literal(..) => {}
            HirScalarExpr::CallUnary { expr, .. } => expr.visit(depth, f),
            HirScalarExpr::CallBinary { expr1, expr2, .. } => {
                expr1.visit(depth, f);
                expr2.visit(depth, f);
            }
            HirScalarExpr::CallVariadic { exprs, .. } => {
                exprs.iter().for_each(|e| e.visit(depth, f))
            }
            HirScalarExpr::If { cond, then, els } => {
                cond.visit(depth, f);
                then.visit(depth, f);
                els.visit(depth, f);
            }
            HirScalarExpr::Exists(q) | HirScalarExpr::Select(q) => q.visit_scalars(depth + 1, f),
        }
    }

    /// Lowers an expression over the current scope that holds no subquery and no
    /// outer reference (LIMIT values, RETURNING lists).
    pub fn lower(&self) -> Result<MirScalarExpr, PlanError> {
        self.lower_simple(&ColumnMap::default())
    }

    /// Lowers an expression that holds no subquery.
    fn lower_simple(&self, map: &ColumnMap) -> Result<MirScalarExpr, PlanError> {
        let mut has_subquery = false;
        self.visit(0, &mut |_, e| {
            has_subquery |= matches!(e, HirScalarExpr::Exists(_) | HirScalarExpr::Select(_))
        });
        if has_subquery {
            return Err(PlanError::unsupported("subqueries in aggregate arguments"));
        }
        let mut scratch = unit();
        let lowered = self.applied_to(&mut scratch, map)?;
        if scratch.arity() != 0 {
            return Err(PlanError::unsupported("subqueries in aggregate arguments"));
        }
        Ok(lowered)
    }

    /// Lowers the expression over `rel`; subqueries append their result columns to
    /// `rel` and are referred to by position.
    fn applied_to(
        &self,
        rel: &mut MirRelationExpr,
        map: &ColumnMap,
    ) -> Result<MirScalarExpr, PlanError> {
        Ok(match self {
            HirScalarExpr::Column(c) => MirScalarExpr::Column(map.resolve(0, c.column)?),
            HirScalarExpr::OuterColumn { level, column, .. } => {
                MirScalarExpr::Column(map.resolve(*level, *column)?)
            }
            HirScalarExpr::Literal(row, typ) => MirScalarExpr::Literal(Ok(row.clone()), *typ),
            HirScalarExpr::CallUnary { func, expr } => expr.applied_to(rel, map)?.call_unary(*func),
            HirScalarExpr::CallBinary { func, expr1, expr2 } => {
                let a = expr1.applied_to(rel, map)?;
                a.call_binary(expr2.applied_to(rel, map)?, *func)
            }
            HirScalarExpr::CallVariadic { func, exprs } => MirScalarExpr::CallVariadic {
                func: *func,
                exprs: exprs
                    .iter()
                    .map(|e| e.applied_to(rel, map))
                    .collect::<Result<_, _>>()?,
            },
            HirScalarExpr::If { cond, then, els } => MirScalarExpr::If {
                cond: Box::new(cond.applied_to(rel, map)?),
                then: Box::new(then.applied_to(rel, map)?),
                els: Box::new(els.applied_to(rel, map)?),
            },
            HirScalarExpr::Exists(query) => {
                let finish = share(rel);
                let (keys, sub_outer, result) = lower_subquery(query, rel, map)?;
                let k = keys.len();
                let present = result.project((0..k).collect()).distinct();
                let full = present
                    .clone()
                    .map(vec![MirScalarExpr::literal(Datum::True, ScalarType::Bool)])
                    .union(
                        sub_outer
                            .union(present.negate())
                            .map(vec![MirScalarExpr::literal(Datum::False, ScalarType::Bool)]),
                    );
                let column = attach(rel, full, &keys);
                let body = std::mem::replace(rel, unit());
                *rel = finish.wrap(body);
                column
            }
            HirScalarExpr::Select(query) => {
                let typ = query
                    .typ()
                    .column_types
                    .first()
                    .copied()
                    .unwrap_or(ScalarType::String.nullable(true));
                let finish = share(rel);
                let (keys, sub_outer, result) = lower_subquery(query, rel, map)?;
                let k = keys.len();
                if result.arity() != k + 1 {
                    return Err(PlanError::Syntax(
                        "subquery must return only one column".into(),
                    ));
                }
                // One row per outer key, whatever the subquery returns: its value when
                // it returns one row, an error when it returns more. (A union of the
                // subquery's rows with an error row would multiply the outer rows by the
                // subquery's, and the optimizer may drop the error with an unused column.)
                // At most one row per outer row already (an aggregate without GROUP
                // BY, `LIMIT 1`): nothing to check.
                let unique = at_most_one_row(query)
                    || crate::transform::unique_keys::keys(&result)
                        .iter()
                        .any(|key| key.iter().all(|c| *c < k));
                let (result, finish_result) = result.bind();
                let present = result.clone().project((0..k).collect()).distinct();
                let error = MirScalarExpr::Literal(
                    Err(EvalError::MultipleRowsFromSubquery),
                    typ.scalar_type.nullable(true),
                );
                let single = if unique {
                    result
                } else {
                    MirRelationExpr::Reduce {
                        input: Box::new(result),
                        group_key: (0..k).map(MirScalarExpr::Column).collect(),
                        aggregates: vec![
                            AggregateExpr {
                                func: AggregateFunc::Count,
                                expr: MirScalarExpr::literal(Datum::True, ScalarType::Bool),
                                distinct: false,
                            },
                            AggregateExpr {
                                func: AggregateFunc::Max,
                                expr: MirScalarExpr::Column(k),
                                distinct: false,
                            },
                        ],
                    }
                    .map(vec![MirScalarExpr::If {
                        cond: Box::new(MirScalarExpr::Column(k).call_binary(
                            MirScalarExpr::literal(Datum::Int64(1), ScalarType::Int64),
                            BinaryFunc::Gt,
                        )),
                        then: Box::new(error),
                        els: Box::new(MirScalarExpr::Column(k + 1)),
                    }])
                    .project((0..k).chain([k + 2]).collect())
                };
                let full = single.union(
                    sub_outer
                        .union(present.negate())
                        .map(vec![MirScalarExpr::literal_null(typ.scalar_type)]),
                );
                let column = attach(rel, finish_result.wrap(full), &keys);
                let body = std::mem::replace(rel, unit());
                *rel = finish.wrap(body);
                column
            }
        })
    }
}

/// Whether `query` returns at most one row for each binding of its outer columns.
fn at_most_one_row(query: &HirRelationExpr) -> bool {
    match query {
        HirRelationExpr::Constant { rows, .. } => rows.len() <= 1,
        HirRelationExpr::Reduce { group_key, .. } => group_key.is_empty(),
        HirRelationExpr::TopK {
            group_key, limit, ..
        } => group_key.is_empty() && limit.is_some_and(|l| l <= 1),
        HirRelationExpr::Project { input, .. }
        | HirRelationExpr::Map { input, .. }
        | HirRelationExpr::Filter { input, .. }
        | HirRelationExpr::Distinct { input }
        | HirRelationExpr::Window { input, .. } => at_most_one_row(input),
        _ => false,
    }
}

/// Computes `windows` over `rel` (the outer columns, then the `Window`'s input):
/// returns `rel`'s columns followed by one per window, in order.
///
/// The calls that share a PARTITION BY and an ORDER BY are computed together, by a
/// `Reduce` keyed by the outer columns and the partition, whose one aggregate
/// ([`AggregateFunc::Window`]) takes each row as a record and returns the partition's
/// rows with their values, packed; a `FlatMap` unpacks them. Each such stage appends
/// its calls' columns, and a final projection puts them in the calls' order.
fn lower_windows(
    mut rel: MirRelationExpr,
    outer_arity: usize,
    windows: &[crate::hir::HirWindowExpr],
) -> MirRelationExpr {
    let base = rel.arity();
    let shift_order = |o: &expr::ColumnOrder| expr::ColumnOrder {
        column: o.column + outer_arity,
        ..*o
    };
    // The stages, in order of first appearance: (partition, order, call indexes).
    let mut stages: Vec<(&[usize], &[expr::ColumnOrder], Vec<usize>)> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        match stages
            .iter_mut()
            .find(|(p, o, _)| *p == w.partition_by.as_slice() && *o == w.order_by.as_slice())
        {
            Some(stage) => stage.2.push(i),
            None => stages.push((&w.partition_by, &w.order_by, vec![i])),
        }
    }
    // Where each call's column ends up.
    let mut position = vec![0; windows.len()];
    for (partition, order, calls) in stages {
        let width = rel.arity();
        let plan = expr::WindowPlan {
            order_by: order.iter().map(shift_order).collect(),
            calls: calls
                .iter()
                .map(|i| {
                    let mut call = windows[*i].call.clone();
                    call.args.iter_mut().for_each(|a| *a += outer_arity);
                    call
                })
                .collect(),
        };
        let types = plan.output_types(&rel.typ().column_types);
        let group_key: Vec<MirScalarExpr> = (0..outer_arity)
            .chain(partition.iter().map(|c| c + outer_arity))
            .map(MirScalarExpr::Column)
            .collect();
        let k = group_key.len();
        let record = MirScalarExpr::CallVariadic {
            func: expr::VariadicFunc::Record,
            exprs: (0..width).map(MirScalarExpr::Column).collect(),
        };
        let reduce = MirRelationExpr::Reduce {
            input: Box::new(rel),
            group_key,
            aggregates: vec![AggregateExpr {
                func: AggregateFunc::Window(plan),
                expr: record,
                distinct: false,
            }],
        };
        let produced = types.len();
        rel = MirRelationExpr::FlatMap {
            input: Box::new(reduce),
            func: expr::TableFunc::UnpackRows { types },
            exprs: vec![MirScalarExpr::Column(k)],
        }
        .project((k + 1..k + 1 + produced).collect());
        for (j, i) in calls.iter().enumerate() {
            position[*i] = width + j;
        }
    }
    let outputs: Vec<usize> = (0..base).chain(position).collect();
    if outputs.iter().copied().eq(0..rel.arity()) {
        rel
    } else {
        rel.project(outputs)
    }
}

/// Lowers `query` applied to the distinct values of the columns of `rel` it refers
/// to. Returns those columns of `rel`, the distinct outer relation, and the result
/// (the key columns followed by the query's columns).
fn lower_subquery(
    query: &HirRelationExpr,
    rel: &MirRelationExpr,
    map: &ColumnMap,
) -> Result<(Vec<usize>, MirRelationExpr, MirRelationExpr), PlanError> {
    let refs = query.outer_refs();
    // Level 1 in the subquery is the current level here.
    let mut keys: Vec<usize> = Vec::new();
    let mut sub_map = ColumnMap::default();
    for (level, column) in &refs {
        let position = map.resolve(level - 1, *column)?;
        let index = match keys.iter().position(|k| *k == position) {
            Some(i) => i,
            None => {
                keys.push(position);
                keys.len() - 1
            }
        };
        sub_map.outer.insert((*level, *column), index);
    }
    sub_map.offset = keys.len();
    let sub_outer = rel.clone().project(keys.clone()).distinct();
    let result = query.applied_to(sub_outer.clone(), &sub_map)?;
    Ok((keys, sub_outer, result))
}

/// Joins `full` (key columns, then one value column; exactly one row per key of `rel`)
/// onto `rel` by `keys`, appending the value; returns a reference to it.
fn attach(rel: &mut MirRelationExpr, full: MirRelationExpr, keys: &[usize]) -> MirScalarExpr {
    let width = rel.arity();
    let k = keys.len();
    let pairs: Vec<(usize, usize)> = keys.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let current = std::mem::replace(rel, unit());
    *rel = join_on(
        current,
        full,
        &pairs,
        (0..width).chain([width + k]).collect(),
    );
    MirScalarExpr::Column(width)
}

/// Binds `rel` to a local so the subquery lowering below can use it twice without
/// computing it twice; `finish` wraps the result in the `Let`.
fn share(rel: &mut MirRelationExpr) -> expr::relation::Binding {
    let current = std::mem::replace(rel, unit());
    let (get, binding) = current.bind();
    *rel = get;
    binding
}

/// The cross product of `outer` and `rel`: `outer ++ rel`.
fn product(outer: MirRelationExpr, rel: MirRelationExpr) -> MirRelationExpr {
    if outer.arity() == 0 && is_unit(&outer) {
        return rel;
    }
    MirRelationExpr::Join {
        inputs: vec![outer, rel],
        equivalences: vec![],
    }
}

fn is_unit(e: &MirRelationExpr) -> bool {
    matches!(e, MirRelationExpr::Constant { rows: Ok(rows), .. } if rows.len() == 1 && rows[0].1 == 1 && rows[0].0.byte_len() == 0)
}

/// The rows of `side` (with multiplicity) that have no match in `joined`, whose
/// columns `cols` are `side`'s columns.
fn unmatched(
    side: &MirRelationExpr,
    joined: &MirRelationExpr,
    cols: std::ops::Range<usize>,
) -> MirRelationExpr {
    let cols: Vec<usize> = cols.collect();
    unmatched_cols(side, joined, &cols)
}

fn unmatched_cols(
    side: &MirRelationExpr,
    joined: &MirRelationExpr,
    cols: &[usize],
) -> MirRelationExpr {
    let arity = side.arity();
    let matched = joined.clone().project(cols.to_vec()).distinct();
    let missing = side.clone().distinct().union(matched.negate());
    let pairs: Vec<(usize, usize)> = (0..arity).map(|c| (c, c)).collect();
    join_on(side.clone(), missing, &pairs, (0..arity).collect())
}

/// Appends NULL columns of the types of `right` (for unmatched left rows).
fn pad_right(rel: MirRelationExpr, right: &RelationType) -> MirRelationExpr {
    let nulls = right
        .column_types
        .iter()
        .map(|t| MirScalarExpr::literal_null(t.scalar_type))
        .collect();
    rel.map(nulls)
}

/// Inserts NULL columns of the types of `left` after the outer prefix.
fn pad_left(rel: MirRelationExpr, outer_arity: usize, left: &RelationType) -> MirRelationExpr {
    let arity = rel.arity();
    let n = left.arity();
    let nulls = left
        .column_types
        .iter()
        .map(|t| MirScalarExpr::literal_null(t.scalar_type))
        .collect();
    let keep = (0..outer_arity)
        .chain(arity..arity + n)
        .chain(outer_arity..arity)
        .collect();
    rel.map(nulls).project(keep)
}

/// A global aggregate (no GROUP BY) returns one row per outer row even over no input:
/// `count` is 0, every other aggregate NULL.
fn with_default_row(
    reduce: MirRelationExpr,
    outer: MirRelationExpr,
    outer_arity: usize,
) -> MirRelationExpr {
    let MirRelationExpr::Reduce { aggregates, .. } = &reduce else {
        unreachable!("called on a Reduce")
    };
    let defaults: Vec<MirScalarExpr> = aggregates
        .iter()
        .map(|a| {
            if a.func == AggregateFunc::Count {
                MirScalarExpr::literal(Datum::Int64(0), ScalarType::Int64)
            } else {
                MirScalarExpr::literal_null(reduce_output_type(&reduce, outer_arity, a))
            }
        })
        .collect();
    let (reduce, finish) = reduce.bind();
    let present = reduce.clone().project((0..outer_arity).collect());
    let missing = outer.distinct().union(present.negate());
    finish.wrap(reduce.union(missing.map(defaults)))
}

fn reduce_output_type(
    reduce: &MirRelationExpr,
    outer_arity: usize,
    agg: &AggregateExpr,
) -> ScalarType {
    let MirRelationExpr::Reduce { aggregates, .. } = reduce else {
        unreachable!("called on a Reduce")
    };
    let position = aggregates.iter().position(|a| a == agg).unwrap_or(0);
    reduce.typ().column_types[outer_arity + position].scalar_type
}

/// `NOT (e IS NULL)`.
pub fn is_not_null(e: MirScalarExpr) -> MirScalarExpr {
    e.call_unary(UnaryFunc::IsNull).call_unary(UnaryFunc::Not)
}
