//! HIR → MIR lowering ("decorrelation").
//!
//! Uncorrelated relational structure maps one to one. Subqueries in scalar position are
//! where decorrelation will rewrite them into joins; until then they are rejected with
//! `feature_not_supported`, never executed row at a time.

use expr::{AggregateExpr, AggregateFunc, MirRelationExpr, MirScalarExpr};
use repr::{Datum, RelationType, Row};

use crate::error::PlanError;
use crate::hir::{HirRelationExpr, HirScalarExpr, JoinKind};

impl HirScalarExpr {
    /// The MIR form of an expression over the current scope only.
    pub fn lower(&self) -> Result<MirScalarExpr, PlanError> {
        Ok(match self {
            HirScalarExpr::Column(c) if c.level == 0 => MirScalarExpr::Column(c.column),
            HirScalarExpr::Column(_) => {
                return Err(PlanError::unsupported("correlated subqueries"))
            }
            HirScalarExpr::Literal(row, typ) => MirScalarExpr::Literal(Ok(row.clone()), *typ),
            HirScalarExpr::CallUnary { func, expr } => expr.lower()?.call_unary(*func),
            HirScalarExpr::CallBinary { func, expr1, expr2 } => {
                expr1.lower()?.call_binary(expr2.lower()?, *func)
            }
            HirScalarExpr::CallVariadic { func, exprs } => MirScalarExpr::CallVariadic {
                func: *func,
                exprs: exprs.iter().map(|e| e.lower()).collect::<Result<_, _>>()?,
            },
            HirScalarExpr::If { cond, then, els } => MirScalarExpr::If {
                cond: Box::new(cond.lower()?),
                then: Box::new(then.lower()?),
                els: Box::new(els.lower()?),
            },
            HirScalarExpr::Exists(_) | HirScalarExpr::Select(_) => {
                return Err(PlanError::unsupported("subqueries in expressions"))
            }
        })
    }
}

impl HirRelationExpr {
    /// Lowers to MIR.
    pub fn lower(&self) -> Result<MirRelationExpr, PlanError> {
        Ok(match self {
            HirRelationExpr::Constant { rows, typ } => {
                MirRelationExpr::constant(rows.clone(), typ.clone())
            }
            HirRelationExpr::Get { id, typ, name } => MirRelationExpr::Get {
                id: *id,
                typ: typ.clone(),
                name: name.clone(),
            },
            HirRelationExpr::Project { input, outputs } => input.lower()?.project(outputs.clone()),
            HirRelationExpr::Map { input, scalars } => input.lower()?.map(
                scalars
                    .iter()
                    .map(|s| s.lower())
                    .collect::<Result<_, _>>()?,
            ),
            HirRelationExpr::Filter { input, predicates } => input.lower()?.filter(
                predicates
                    .iter()
                    .map(|s| s.lower())
                    .collect::<Result<_, _>>()?,
            ),
            HirRelationExpr::Join {
                left,
                right,
                on,
                kind: JoinKind::Inner,
            } => {
                let join = MirRelationExpr::Join {
                    inputs: vec![left.lower()?, right.lower()?],
                    equivalences: vec![],
                };
                if matches!(on, HirScalarExpr::Literal(r, _) if r.iter().next() == Some(repr::Datum::True))
                {
                    join
                } else {
                    join.filter(vec![on.lower()?])
                }
            }
            HirRelationExpr::Reduce {
                input,
                group_key,
                aggregates,
            } => {
                let reduce = MirRelationExpr::Reduce {
                    input: Box::new(input.lower()?),
                    group_key: group_key
                        .iter()
                        .map(|c| MirScalarExpr::Column(*c))
                        .collect(),
                    aggregates: aggregates
                        .iter()
                        .map(|a| {
                            Ok(AggregateExpr {
                                func: a.func,
                                expr: a.expr.lower()?,
                                distinct: a.distinct,
                            })
                        })
                        .collect::<Result<_, PlanError>>()?,
                };
                if group_key.is_empty() {
                    with_default_row(reduce)
                } else {
                    reduce
                }
            }
            HirRelationExpr::Distinct { input } => input.lower()?.distinct(),
            HirRelationExpr::Negate { input } => input.lower()?.negate(),
            HirRelationExpr::Threshold { input } => input.lower()?.threshold(),
            HirRelationExpr::Union { base, inputs } => MirRelationExpr::Union {
                base: Box::new(base.lower()?),
                inputs: inputs.iter().map(|i| i.lower()).collect::<Result<_, _>>()?,
            },
        })
    }
}

/// A global aggregate (no GROUP BY) returns one row even over no input: `count` is 0,
/// every other aggregate NULL. The default row's multiplicity is `1 - |reduce|`, which
/// is 1 exactly when the reduction produced nothing.
fn with_default_row(reduce: MirRelationExpr) -> MirRelationExpr {
    let MirRelationExpr::Reduce { aggregates, .. } = &reduce else {
        unreachable!("called on a Reduce")
    };
    let defaults: Vec<Datum> = aggregates
        .iter()
        .map(|a| {
            if a.func == AggregateFunc::Count {
                Datum::Int64(0)
            } else {
                Datum::Null
            }
        })
        .collect();
    let typ = reduce.typ();
    let mut default_typ = typ.clone();
    default_typ.keys.clear();
    for c in default_typ.column_types.iter_mut() {
        c.nullable = true;
    }
    let default_rel = MirRelationExpr::constant(vec![Row::pack_slice(&defaults)], default_typ);
    let unit = MirRelationExpr::constant(vec![Row::default()], RelationType::new(vec![]));
    let missing = unit.union(reduce.clone().project(vec![]).negate());
    reduce.union(MirRelationExpr::Join {
        inputs: vec![default_rel, missing],
        equivalences: vec![],
    })
}
