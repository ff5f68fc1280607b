//! Temporal filters: predicates comparing `mz_now()` with a value of the row, such as
//! `WHERE mz_now() <= ts + INTERVAL '5 minutes'`. In a maintained query a row passing
//! such filters is in the result only during an interval of logical times (in
//! milliseconds): it enters at the latest lower bound and leaves at the earliest
//! upper bound, which the renderer turns into an insertion and a retraction at those
//! times. `mz_now()` is a `timestamptz`; time `t` (ms) is the instant `t * 1000` µs.

use std::fmt;

use repr::{Datum, EvalError, Timestamp};
use serde::{Deserialize, Serialize};

use crate::func::{BinaryFunc, VariadicFunc};
use crate::relation::MirRelationExpr;
use crate::scalar::{MirScalarExpr, RowArena};

/// One bound on `mz_now()`: `expr` is a `timestamptz` over the row's columns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemporalBound {
    pub expr: MirScalarExpr,
    /// `mz_now() > expr` / `mz_now() < expr` rather than `>=` / `<=`.
    pub strict: bool,
}

/// The bounds of a temporal filter: a row is in the result at times `t` with every
/// `lower` below (or at) `t` and every `upper` above (or at) it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemporalBounds {
    pub lower: Vec<TemporalBound>,
    pub upper: Vec<TemporalBound>,
}

impl TemporalBounds {
    pub fn is_empty(&self) -> bool {
        self.lower.is_empty() && self.upper.is_empty()
    }

    /// The times `[from, until)` at which a row is in the result, `until` `None` for
    /// never leaving; `Ok(None)` if never (a bound is NULL, or the interval is
    /// empty).
    pub fn interval(
        &self,
        datums: &[Datum],
        arena: &RowArena,
    ) -> Result<Option<(Timestamp, Option<Timestamp>)>, EvalError> {
        let mut from: i128 = 0;
        let mut until: Option<i128> = None;
        for bound in &self.lower {
            let Some(us) = micros(bound.expr.eval(datums, arena)?) else {
                return Ok(None);
            };
            // mz_now() >= e: t * 1000 >= us; mz_now() > e: t * 1000 > us.
            let t = if bound.strict {
                us.div_euclid(1000) + 1
            } else {
                ceil_div(us, 1000)
            };
            from = from.max(t);
        }
        for bound in &self.upper {
            let Some(us) = micros(bound.expr.eval(datums, arena)?) else {
                return Ok(None);
            };
            // mz_now() <= e: valid while t * 1000 <= us, so it leaves at floor + 1;
            // mz_now() < e: it leaves at the first t with t * 1000 >= us.
            let t = if bound.strict {
                ceil_div(us, 1000)
            } else {
                us.div_euclid(1000) + 1
            };
            until = Some(until.map_or(t, |u| u.min(t)));
        }
        let clamp = |t: i128| t.clamp(0, i128::from(Timestamp::MAX)) as Timestamp;
        match until {
            Some(u) if u <= from => Ok(None),
            Some(u) => Ok(Some((clamp(from), Some(clamp(u))))),
            None => Ok(Some((clamp(from), None))),
        }
    }
}

fn micros(d: Datum) -> Option<i128> {
    match d {
        Datum::TimestampTz(us) | Datum::Timestamp(us) => Some(i128::from(us)),
        _ => None,
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    -((-a).div_euclid(b))
}

impl fmt::Display for TemporalBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for b in &self.lower {
            parts.push(format!(
                "mz_now() {} {}",
                if b.strict { ">" } else { ">=" },
                b.expr
            ));
        }
        for b in &self.upper {
            parts.push(format!(
                "mz_now() {} {}",
                if b.strict { "<" } else { "<=" },
                b.expr
            ));
        }
        write!(f, "{}", parts.join(" AND "))
    }
}

/// Replaces every `mz_now()` in `expr` by time `t` as a `timestamptz` literal: a
/// one-shot query reads at one time, and that is its `mz_now()`.
pub fn bind_mz_now(expr: &mut MirRelationExpr, t: Timestamp) {
    let micros = i64::try_from(t)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    let literal = MirScalarExpr::Literal(
        Ok(repr::Row::pack_slice(&[Datum::TimestampTz(micros)])),
        repr::ScalarType::TimestampTz.nullable(false),
    );
    let bind = |e: &mut MirScalarExpr| {
        e.visit_mut_post(&mut |e| {
            if is_mz_now(e) {
                *e = literal.clone();
            }
        })
    };
    match expr {
        MirRelationExpr::Map { scalars, .. } => scalars.iter_mut().for_each(bind),
        MirRelationExpr::Filter { predicates, .. } => predicates.iter_mut().for_each(bind),
        MirRelationExpr::FlatMap { exprs, .. } => exprs.iter_mut().for_each(bind),
        MirRelationExpr::Join { equivalences, .. } => {
            equivalences.iter_mut().flatten().for_each(bind)
        }
        MirRelationExpr::Reduce {
            group_key,
            aggregates,
            ..
        } => {
            group_key.iter_mut().for_each(bind);
            aggregates.iter_mut().for_each(|a| bind(&mut a.expr));
        }
        _ => {}
    }
    for child in expr.children_mut() {
        bind_mz_now(child, t);
    }
}

fn is_mz_now(e: &MirScalarExpr) -> bool {
    matches!(
        e,
        MirScalarExpr::CallVariadic {
            func: VariadicFunc::MzNow,
            exprs,
        } if exprs.is_empty()
    )
}

/// Splits `predicates` into those without `mz_now()` and the bounds of those with it,
/// each of which must be `mz_now() op expr` or `expr op mz_now()` (`op` one of `<`,
/// `<=`, `=`, `>=`, `>`; `AND`s of such are split). Anything else with `mz_now()` is an
/// error naming the predicate.
pub fn extract_temporal(
    predicates: Vec<MirScalarExpr>,
) -> Result<(Vec<MirScalarExpr>, TemporalBounds), String> {
    let mut plain = Vec::new();
    let mut bounds = TemporalBounds::default();
    let mut todo = predicates;
    while let Some(p) = todo.pop() {
        if !p.contains_mz_now() {
            plain.push(p);
            continue;
        }
        let MirScalarExpr::CallBinary { func, expr1, expr2 } = &p else {
            return Err(format!("mz_now() in {p}"));
        };
        if *func == BinaryFunc::And {
            todo.push((**expr1).clone());
            todo.push((**expr2).clone());
            continue;
        }
        // Orient as `mz_now() op expr`.
        let (op, other) = if is_mz_now(expr1) && !expr2.contains_mz_now() {
            (*func, (**expr2).clone())
        } else if is_mz_now(expr2) && !expr1.contains_mz_now() {
            let flipped = match func {
                BinaryFunc::Lt => BinaryFunc::Gt,
                BinaryFunc::Lte => BinaryFunc::Gte,
                BinaryFunc::Gt => BinaryFunc::Lt,
                BinaryFunc::Gte => BinaryFunc::Lte,
                other => *other,
            };
            (flipped, (**expr1).clone())
        } else {
            return Err(format!("mz_now() in {p}"));
        };
        let bound = |strict| TemporalBound {
            expr: other.clone(),
            strict,
        };
        match op {
            BinaryFunc::Lt => bounds.upper.push(bound(true)),
            BinaryFunc::Lte => bounds.upper.push(bound(false)),
            BinaryFunc::Gt => bounds.lower.push(bound(true)),
            BinaryFunc::Gte => bounds.lower.push(bound(false)),
            BinaryFunc::Eq => {
                bounds.lower.push(bound(false));
                bounds.upper.push(bound(false));
            }
            _ => return Err(format!("mz_now() in {p}")),
        }
    }
    plain.reverse();
    Ok((plain, bounds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use repr::ScalarType;

    fn now() -> MirScalarExpr {
        MirScalarExpr::CallVariadic {
            func: VariadicFunc::MzNow,
            exprs: vec![],
        }
    }

    #[test]
    fn bounds_round_to_milliseconds() {
        let col = MirScalarExpr::column(0);
        let arena = RowArena::new();
        let interval = |preds: Vec<MirScalarExpr>, us: i64| {
            let (plain, bounds) = extract_temporal(preds).unwrap();
            assert!(plain.is_empty());
            bounds.interval(&[Datum::TimestampTz(us)], &arena).unwrap()
        };
        // mz_now() >= ts: from ceil(ts); mz_now() > ts: from floor(ts) + 1.
        let ge = now().call_binary(col.clone(), BinaryFunc::Gte);
        assert_eq!(interval(vec![ge.clone()], 5_000), Some((5, None)));
        assert_eq!(interval(vec![ge], 5_001), Some((6, None)));
        let gt = now().call_binary(col.clone(), BinaryFunc::Gt);
        assert_eq!(interval(vec![gt], 5_000), Some((6, None)));
        // ts >= mz_now() is mz_now() <= ts: until floor(ts) + 1.
        let le = col.clone().call_binary(now(), BinaryFunc::Gte);
        assert_eq!(interval(vec![le], 5_999), Some((0, Some(6))));
        let lt = now().call_binary(col.clone(), BinaryFunc::Lt);
        assert_eq!(interval(vec![lt.clone()], 5_000), Some((0, Some(5))));
        assert_eq!(interval(vec![lt], 5_001), Some((0, Some(6))));
        // mz_now() = ts: exactly one millisecond, or none between two.
        let eq = now().call_binary(col.clone(), BinaryFunc::Eq);
        assert_eq!(interval(vec![eq.clone()], 7_000), Some((7, Some(8))));
        assert_eq!(interval(vec![eq], 7_500), None);
        // An empty window and a NULL bound admit the row never.
        let both = vec![
            now().call_binary(col.clone(), BinaryFunc::Gt),
            now().call_binary(col.clone(), BinaryFunc::Lt),
        ];
        assert_eq!(interval(both, 9_000), None);
        let (_, bounds) = extract_temporal(vec![now().call_binary(col, BinaryFunc::Gte)]).unwrap();
        assert_eq!(bounds.interval(&[Datum::Null], &arena).unwrap(), None);
    }

    #[test]
    fn splits_conjunctions_and_refuses_other_uses() {
        let col = MirScalarExpr::column(0);
        let plain = col.clone().call_binary(col.clone(), BinaryFunc::Eq);
        let window = now().call_binary(col.clone(), BinaryFunc::Gte).call_binary(
            now().call_binary(col.clone(), BinaryFunc::Lt),
            BinaryFunc::And,
        );
        let (rest, bounds) = extract_temporal(vec![plain.clone(), window]).unwrap();
        assert_eq!(rest, vec![plain]);
        assert_eq!((bounds.lower.len(), bounds.upper.len()), (1, 1));
        let cast = now().call_unary(crate::UnaryFunc::Cast(ScalarType::String));
        assert!(extract_temporal(vec![cast.call_binary(col.clone(), BinaryFunc::Eq)]).is_err());
        assert!(extract_temporal(vec![now().call_binary(col, BinaryFunc::NotEq)]).is_err());
    }
}
