//! [`MirScalarExpr`]: a scalar expression over the columns of one row.
//!
//! Expressions are typed by construction: the planner inserts casts so that every
//! function receives the argument types it expects, and `typ` computes the result type.
//! Evaluation returns `Err(EvalError)` for bad data (division by zero, overflow); it
//! never panics on data.

use std::cell::RefCell;
use std::fmt;

use repr::{ColumnType, Datum, EvalError, Row, ScalarType};
use serde::{Deserialize, Serialize};

use crate::func::{BinaryFunc, UnaryFunc, VariadicFunc};

/// A scalar expression.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MirScalarExpr {
    /// The value of the column at this position.
    Column(usize),
    /// A constant (a one-datum row), or an error that evaluating it raises.
    Literal(Result<Row, EvalError>, ColumnType),
    CallUnary {
        func: UnaryFunc,
        expr: Box<MirScalarExpr>,
    },
    CallBinary {
        func: BinaryFunc,
        expr1: Box<MirScalarExpr>,
        expr2: Box<MirScalarExpr>,
    },
    CallVariadic {
        func: VariadicFunc,
        exprs: Vec<MirScalarExpr>,
    },
    /// `CASE WHEN cond THEN then ELSE els END`; only the chosen branch is evaluated.
    If {
        cond: Box<MirScalarExpr>,
        then: Box<MirScalarExpr>,
        els: Box<MirScalarExpr>,
    },
}

/// Owns the strings and bytes that evaluation creates, so datums can borrow them.
#[derive(Default)]
pub struct RowArena {
    owned: RefCell<Vec<Box<[u8]>>>,
}

impl RowArena {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves `bytes` into the arena and returns a reference that lives as long as it.
    pub fn push_bytes(&self, bytes: Vec<u8>) -> &[u8] {
        let boxed = bytes.into_boxed_slice();
        let ptr: *const [u8] = &*boxed;
        self.owned.borrow_mut().push(boxed);
        // SAFETY: the boxed slice's heap allocation is never moved, mutated or freed
        // until the arena is dropped, and the returned reference cannot outlive `self`.
        unsafe { &*ptr }
    }

    pub fn push_string(&self, s: String) -> &str {
        let bytes = self.push_bytes(s.into_bytes());
        std::str::from_utf8(bytes).expect("bytes came from a String")
    }
}

impl MirScalarExpr {
    pub fn column(c: usize) -> Self {
        MirScalarExpr::Column(c)
    }

    /// A literal of the given datum and type.
    pub fn literal(datum: Datum, scalar_type: ScalarType) -> Self {
        MirScalarExpr::Literal(
            Ok(Row::pack_slice(&[datum])),
            scalar_type.nullable(datum.is_null()),
        )
    }

    pub fn literal_null(scalar_type: ScalarType) -> Self {
        MirScalarExpr::literal(Datum::Null, scalar_type)
    }

    pub fn literal_ok(datum: Datum, scalar_type: ScalarType) -> Self {
        Self::literal(datum, scalar_type)
    }

    pub fn literal_true() -> Self {
        Self::literal(Datum::True, ScalarType::Bool)
    }

    pub fn call_unary(self, func: UnaryFunc) -> Self {
        MirScalarExpr::CallUnary {
            func,
            expr: Box::new(self),
        }
    }

    pub fn call_binary(self, other: Self, func: BinaryFunc) -> Self {
        MirScalarExpr::CallBinary {
            func,
            expr1: Box::new(self),
            expr2: Box::new(other),
        }
    }

    /// The literal datum, if this is an ok literal.
    pub fn as_literal(&self) -> Option<Result<Datum<'_>, &EvalError>> {
        match self {
            MirScalarExpr::Literal(Ok(row), _) => {
                Some(Ok(row.iter().next().unwrap_or(Datum::Null)))
            }
            MirScalarExpr::Literal(Err(e), _) => Some(Err(e)),
            _ => None,
        }
    }

    pub fn is_literal(&self) -> bool {
        matches!(self, MirScalarExpr::Literal(..))
    }

    pub fn is_literal_true(&self) -> bool {
        matches!(self.as_literal(), Some(Ok(Datum::True)))
    }

    pub fn is_literal_false_or_null(&self) -> bool {
        matches!(self.as_literal(), Some(Ok(Datum::False | Datum::Null)))
    }

    /// Evaluates the expression on `datums`, the columns of one row.
    pub fn eval<'a>(
        &'a self,
        datums: &[Datum<'a>],
        arena: &'a RowArena,
    ) -> Result<Datum<'a>, EvalError> {
        match self {
            MirScalarExpr::Column(c) => Ok(datums[*c]),
            MirScalarExpr::Literal(Ok(row), _) => Ok(row.iter().next().unwrap_or(Datum::Null)),
            MirScalarExpr::Literal(Err(e), _) => Err(e.clone()),
            MirScalarExpr::CallUnary { func, expr } => {
                let a = expr.eval(datums, arena)?;
                func.eval(a, arena)
            }
            MirScalarExpr::CallBinary {
                func: func @ (BinaryFunc::And | BinaryFunc::Or),
                expr1,
                expr2,
            } => {
                // The deciding value (false for AND, true for OR) wins over an error on
                // the other side, whichever side errs, as PostgreSQL behaves when it
                // evaluates the cheaper or the left operand first: so
                // `b <> 0 AND a / b > 1` is false, not an error, where b is 0.
                let decisive = if *func == BinaryFunc::And {
                    Datum::False
                } else {
                    Datum::True
                };
                let a = expr1.eval(datums, arena);
                if matches!(a, Ok(d) if d == decisive) {
                    return Ok(decisive);
                }
                let b = expr2.eval(datums, arena);
                if matches!(b, Ok(d) if d == decisive) {
                    return Ok(decisive);
                }
                func.eval(a?, b?, arena)
            }
            MirScalarExpr::CallBinary { func, expr1, expr2 } => {
                let a = expr1.eval(datums, arena)?;
                let b = expr2.eval(datums, arena)?;
                func.eval(a, b, arena)
            }
            MirScalarExpr::CallVariadic { func, exprs } => func.eval(exprs, datums, arena),
            // Only `true` takes the THEN branch; false and NULL take the ELSE branch.
            MirScalarExpr::If { cond, then, els } => match cond.eval(datums, arena)? {
                Datum::True => then.eval(datums, arena),
                _ => els.eval(datums, arena),
            },
        }
    }

    /// The type of the expression's result, given the column types of its input.
    pub fn typ(&self, input: &[ColumnType]) -> ColumnType {
        match self {
            MirScalarExpr::Column(c) => input[*c],
            MirScalarExpr::Literal(_, typ) => *typ,
            MirScalarExpr::CallUnary { func, expr } => func.output_type(expr.typ(input)),
            MirScalarExpr::CallBinary { func, expr1, expr2 } => {
                func.output_type(expr1.typ(input), expr2.typ(input))
            }
            MirScalarExpr::CallVariadic { func, exprs } => {
                func.output_type(exprs.iter().map(|e| e.typ(input)).collect())
            }
            MirScalarExpr::If { then, els, .. } => {
                let t = then.typ(input);
                let e = els.typ(input);
                let scalar_type = if then
                    .as_literal()
                    .map(|d| matches!(d, Ok(Datum::Null)))
                    .unwrap_or(false)
                {
                    e.scalar_type
                } else {
                    t.scalar_type
                };
                scalar_type.nullable(t.nullable || e.nullable)
            }
        }
    }

    /// Calls `f` on every sub-expression, children first.
    pub fn visit_post<'s>(&'s self, f: &mut impl FnMut(&'s MirScalarExpr)) {
        match self {
            MirScalarExpr::Column(_) | MirScalarExpr::Literal(..) => {}
            MirScalarExpr::CallUnary { expr, .. } => expr.visit_post(f),
            MirScalarExpr::CallBinary { expr1, expr2, .. } => {
                expr1.visit_post(f);
                expr2.visit_post(f);
            }
            MirScalarExpr::CallVariadic { exprs, .. } => exprs.iter().for_each(|e| e.visit_post(f)),
            MirScalarExpr::If { cond, then, els } => {
                cond.visit_post(f);
                then.visit_post(f);
                els.visit_post(f);
            }
        }
        f(self)
    }

    /// Calls `f` on every sub-expression mutably, children first.
    pub fn visit_mut_post(&mut self, f: &mut impl FnMut(&mut MirScalarExpr)) {
        match self {
            MirScalarExpr::Column(_) | MirScalarExpr::Literal(..) => {}
            MirScalarExpr::CallUnary { expr, .. } => expr.visit_mut_post(f),
            MirScalarExpr::CallBinary { expr1, expr2, .. } => {
                expr1.visit_mut_post(f);
                expr2.visit_mut_post(f);
            }
            MirScalarExpr::CallVariadic { exprs, .. } => {
                exprs.iter_mut().for_each(|e| e.visit_mut_post(f))
            }
            MirScalarExpr::If { cond, then, els } => {
                cond.visit_mut_post(f);
                then.visit_mut_post(f);
                els.visit_mut_post(f);
            }
        }
        f(self)
    }

    /// The columns the expression reads.
    pub fn support(&self) -> std::collections::BTreeSet<usize> {
        let mut out = std::collections::BTreeSet::new();
        self.visit_post(&mut |e| {
            if let MirScalarExpr::Column(c) = e {
                out.insert(*c);
            }
        });
        out
    }

    /// Rewrites column references through `map` (old position → new position).
    pub fn permute(&mut self, map: &[usize]) {
        self.visit_mut_post(&mut |e| {
            if let MirScalarExpr::Column(c) = e {
                *c = map[*c];
            }
        });
    }

    /// Adds `offset` to every column reference.
    pub fn shift(&mut self, offset: usize) {
        self.visit_mut_post(&mut |e| {
            if let MirScalarExpr::Column(c) = e {
                *c += offset;
            }
        });
    }

    /// Replaces column references with the given expressions.
    pub fn substitute(&mut self, exprs: &[MirScalarExpr]) {
        self.visit_mut_post(&mut |e| {
            if let MirScalarExpr::Column(c) = e {
                *e = exprs[*c].clone();
            }
        });
    }

    /// Whether the expression calls `mz_now()`.
    pub fn contains_mz_now(&self) -> bool {
        let mut found = false;
        self.visit_post(&mut |e| {
            if let MirScalarExpr::CallVariadic {
                func: VariadicFunc::MzNow,
                ..
            } = e
            {
                found = true;
            }
        });
        found
    }

    /// Whether evaluation depends on nothing but its inputs: false if it calls
    /// `gen_random_uuid()`.
    pub fn is_deterministic(&self) -> bool {
        let mut volatile = false;
        self.visit_post(&mut |e| {
            if let MirScalarExpr::CallVariadic {
                func: VariadicFunc::GenRandomUuid,
                ..
            } = e
            {
                volatile = true;
            }
        });
        !volatile
    }

    /// Folds every sub-expression whose inputs are all literals into a literal
    /// (errors become error literals, raised only if the expression is evaluated).
    pub fn reduce(&mut self, input: &[ColumnType]) {
        let arena = RowArena::new();
        self.visit_mut_post(&mut |e| {
            let foldable = match e {
                MirScalarExpr::CallUnary { expr, .. } => expr.is_literal(),
                MirScalarExpr::CallBinary { expr1, expr2, .. } => {
                    expr1.is_literal() && expr2.is_literal()
                }
                // mz_now() has no value until a query's time is known.
                MirScalarExpr::CallVariadic {
                    func: VariadicFunc::MzNow,
                    ..
                } => false,
                // A volatile call gives a new value at every evaluation: never folded.
                MirScalarExpr::CallVariadic {
                    func: VariadicFunc::GenRandomUuid,
                    ..
                } => false,
                MirScalarExpr::CallVariadic { exprs, .. } => exprs.iter().all(|e| e.is_literal()),
                MirScalarExpr::If { cond, then, els } => {
                    match cond.as_literal() {
                        // Evaluating the condition raises its error: so must the fold.
                        Some(Err(err)) => {
                            let err = err.clone();
                            let typ = e.typ(input);
                            *e = MirScalarExpr::Literal(Err(err), typ);
                        }
                        Some(Ok(d)) => {
                            let chosen = if d == Datum::True { then } else { els };
                            let replacement = (**chosen).clone();
                            *e = replacement;
                        }
                        None => {}
                    }
                    return;
                }
                _ => false,
            };
            if foldable && e.support().is_empty() {
                let typ = e.typ(input);
                let value = e.eval(&[], &arena).map(|d| Row::pack_slice(&[d]));
                *e = MirScalarExpr::Literal(value, typ);
            }
        });
    }
}

impl fmt::Display for MirScalarExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirScalarExpr::Column(c) => write!(f, "#{c}"),
            MirScalarExpr::Literal(Ok(row), typ) => match row.iter().next() {
                Some(Datum::Null) | None => write!(f, "null"),
                Some(Datum::String(s)) => write!(f, "{s:?}"),
                Some(d)
                    if typ.scalar_type.is_numeric() || matches!(d, Datum::True | Datum::False) =>
                {
                    write!(
                        f,
                        "{}",
                        if matches!(d, Datum::True) {
                            "true".to_string()
                        } else if matches!(d, Datum::False) {
                            "false".to_string()
                        } else {
                            d.to_string()
                        }
                    )
                }
                Some(d) => write!(f, "{:?}", d.to_string()),
            },
            MirScalarExpr::Literal(Err(e), _) => write!(f, "error({:?})", e.to_string()),
            MirScalarExpr::CallUnary { func, expr } => write!(f, "{func}({expr})"),
            MirScalarExpr::CallBinary { func, expr1, expr2 } => match func.infix() {
                Some(op) => write!(f, "({expr1} {op} {expr2})"),
                None => write!(f, "{func}({expr1}, {expr2})"),
            },
            MirScalarExpr::CallVariadic { func, exprs } => {
                write!(f, "{func}(")?;
                for (i, e) in exprs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{e}")?;
                }
                write!(f, ")")
            }
            MirScalarExpr::If { cond, then, els } => {
                write!(f, "case when {cond} then {then} else {els} end")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: i32) -> MirScalarExpr {
        MirScalarExpr::literal(Datum::Int32(v), ScalarType::Int32)
    }

    fn text(s: &str) -> MirScalarExpr {
        MirScalarExpr::literal(Datum::String(s), ScalarType::String)
    }

    #[test]
    fn folding_case_with_an_error_condition_raises_the_error() {
        // CASE WHEN 1/0 = 1 THEN 'a' ELSE 'b' END
        let cond = int(1)
            .call_binary(int(0), BinaryFunc::Div)
            .call_binary(int(1), BinaryFunc::Eq);
        let mut case = MirScalarExpr::If {
            cond: Box::new(cond),
            then: Box::new(text("a")),
            els: Box::new(text("b")),
        };
        let arena = RowArena::new();
        assert_eq!(case.eval(&[], &arena), Err(EvalError::DivisionByZero));
        case.reduce(&[]);
        assert_eq!(
            case,
            MirScalarExpr::Literal(
                Err(EvalError::DivisionByZero),
                ScalarType::String.nullable(false)
            )
        );
    }

    #[test]
    fn folding_case_picks_the_branch_of_a_literal_condition() {
        for (cond, expected) in [
            (MirScalarExpr::literal_true(), "a"),
            (MirScalarExpr::literal(Datum::False, ScalarType::Bool), "b"),
            (MirScalarExpr::literal_null(ScalarType::Bool), "b"),
        ] {
            let mut case = MirScalarExpr::If {
                cond: Box::new(cond),
                then: Box::new(text("a")),
                els: Box::new(text("b")),
            };
            case.reduce(&[]);
            assert_eq!(case, text(expected));
        }
    }

    #[test]
    fn and_or_let_the_deciding_value_win_over_errors() {
        let arena = RowArena::new();
        let error = || {
            int(1)
                .call_binary(int(0), BinaryFunc::Div)
                .call_binary(int(1), BinaryFunc::Eq)
        };
        let f = || MirScalarExpr::literal(Datum::False, ScalarType::Bool);
        let t = MirScalarExpr::literal_true;
        let null = || MirScalarExpr::literal_null(ScalarType::Bool);
        let eval = |e: MirScalarExpr| e.eval(&[], &arena).map(|d| d.to_string());
        let and = |a: MirScalarExpr, b: MirScalarExpr| a.call_binary(b, BinaryFunc::And);
        let or = |a: MirScalarExpr, b: MirScalarExpr| a.call_binary(b, BinaryFunc::Or);
        assert_eq!(eval(and(f(), error())), Ok("f".into()));
        assert_eq!(eval(and(error(), f())), Ok("f".into()));
        assert_eq!(eval(and(t(), error())), Err(EvalError::DivisionByZero));
        assert_eq!(eval(and(null(), error())), Err(EvalError::DivisionByZero));
        assert_eq!(eval(and(null(), t())), Ok("NULL".into()));
        assert_eq!(eval(or(error(), t())), Ok("t".into()));
        assert_eq!(eval(or(f(), error())), Err(EvalError::DivisionByZero));
        assert_eq!(eval(or(null(), f())), Ok("NULL".into()));
        // WHERE b <> 0 AND a / b > 1 on a = 1, b = 0: false, not an error.
        let guarded = and(
            MirScalarExpr::column(1).call_binary(int(0), BinaryFunc::NotEq),
            MirScalarExpr::column(0)
                .call_binary(MirScalarExpr::column(1), BinaryFunc::Div)
                .call_binary(int(1), BinaryFunc::Gt),
        );
        assert_eq!(
            guarded.eval(&[Datum::Int32(1), Datum::Int32(0)], &arena),
            Ok(Datum::False)
        );
    }

    #[test]
    fn conditions_of_null_or_non_boolean_never_panic() {
        let arena = RowArena::new();
        let case = MirScalarExpr::If {
            cond: Box::new(MirScalarExpr::column(0)),
            then: Box::new(text("a")),
            els: Box::new(text("b")),
        };
        for d in [Datum::Null, Datum::Int32(1), Datum::String("t")] {
            assert_eq!(case.eval(&[d], &arena), Ok(Datum::String("b")));
            let not = MirScalarExpr::column(0).call_unary(UnaryFunc::Not);
            let _ = not.eval(&[d], &arena);
            let and =
                MirScalarExpr::column(0).call_binary(MirScalarExpr::column(0), BinaryFunc::And);
            let _ = and.eval(&[d], &arena);
        }
    }

    #[test]
    fn gen_random_uuid_is_never_folded() {
        let call = MirScalarExpr::CallVariadic {
            func: VariadicFunc::GenRandomUuid,
            exprs: vec![],
        };
        let mut e = call
            .clone()
            .call_unary(crate::UnaryFunc::Cast(ScalarType::String));
        e.reduce(&[]);
        assert!(!e.is_literal() && !e.is_deterministic());
        let arena = RowArena::new();
        assert_ne!(call.eval(&[], &arena), call.eval(&[], &arena));
        let mut folded = MirScalarExpr::literal(Datum::Int32(1), ScalarType::Int32)
            .call_unary(crate::UnaryFunc::Neg);
        folded.reduce(&[]);
        assert!(folded.is_literal() && folded.is_deterministic());
    }
}
