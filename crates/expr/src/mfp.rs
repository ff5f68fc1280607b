//! [`MapFilterProject`]: a fused sequence of maps, filters and a projection.
//!
//! Rows flow through it without intermediate collections. A predicate is evaluated as
//! soon as the columns it reads exist, before later expressions: so
//! `SELECT a / b ... WHERE b <> 0` never divides a filtered-out row by zero.

use std::fmt;

use repr::{Datum, EvalError, Row, RowPacker};
use serde::{Deserialize, Serialize};

use crate::scalar::{MirScalarExpr, RowArena};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MapFilterProject {
    /// Expressions appended to the row, each may read earlier ones.
    pub expressions: Vec<MirScalarExpr>,
    /// Predicates, with the number of expressions that must be evaluated first.
    pub predicates: Vec<(usize, MirScalarExpr)>,
    /// The output columns.
    pub projection: Vec<usize>,
    pub input_arity: usize,
}

impl MapFilterProject {
    /// The identity on rows of `input_arity` columns.
    pub fn new(input_arity: usize) -> Self {
        MapFilterProject {
            expressions: Vec::new(),
            predicates: Vec::new(),
            projection: (0..input_arity).collect(),
            input_arity,
        }
    }

    pub fn is_identity(&self) -> bool {
        self.expressions.is_empty()
            && self.predicates.is_empty()
            && self.projection.iter().copied().eq(0..self.input_arity)
    }

    pub fn output_arity(&self) -> usize {
        self.projection.len()
    }

    fn rewrite(&self, mut expr: MirScalarExpr) -> MirScalarExpr {
        expr.permute(&self.projection);
        expr
    }

    /// Appends columns computed by `exprs` (which read the current output columns).
    pub fn map(mut self, exprs: impl IntoIterator<Item = MirScalarExpr>) -> Self {
        for e in exprs {
            let e = self.rewrite(e);
            self.expressions.push(e);
            self.projection
                .push(self.input_arity + self.expressions.len() - 1);
        }
        self
    }

    /// Keeps rows where every predicate (over the current output columns) is true.
    pub fn filter(mut self, preds: impl IntoIterator<Item = MirScalarExpr>) -> Self {
        for p in preds {
            let p = self.rewrite(p);
            let after = p
                .support()
                .iter()
                .map(|c| {
                    if *c < self.input_arity {
                        0
                    } else {
                        c - self.input_arity + 1
                    }
                })
                .max()
                .unwrap_or(0);
            self.predicates.push((after, p));
        }
        self.predicates.sort_by_key(|(after, _)| *after);
        self
    }

    /// Keeps the given current output columns, in order.
    pub fn project(mut self, columns: impl IntoIterator<Item = usize>) -> Self {
        self.projection = columns.into_iter().map(|c| self.projection[c]).collect();
        self
    }

    /// This followed by `other`.
    pub fn then(self, other: &MapFilterProject) -> Self {
        assert_eq!(
            self.output_arity(),
            other.input_arity,
            "composed MFPs agree on arity"
        );
        let base = self.output_arity();
        // Rewrite `other`'s references to its own expressions as references to the
        // current output columns followed by the newly appended expressions.
        let mut result = self;
        let mut columns: Vec<usize> = (0..base).collect();
        let mut pending: Vec<(usize, MirScalarExpr)> = other.predicates.clone();
        pending.sort_by_key(|(a, _)| *a);
        let mut next_pred = 0;
        let project_to = |e: &MirScalarExpr, columns: &[usize]| {
            let mut e = e.clone();
            e.permute(columns);
            e
        };
        for (i, expr) in other.expressions.iter().enumerate() {
            while next_pred < pending.len() && pending[next_pred].0 <= i {
                let p = project_to(&pending[next_pred].1, &columns);
                result = result.filter_current(p);
                next_pred += 1;
            }
            let e = project_to(expr, &columns);
            let arity = result.output_arity();
            result = result.map_current(e);
            columns.push(arity);
        }
        while next_pred < pending.len() {
            let p = project_to(&pending[next_pred].1, &columns);
            result = result.filter_current(p);
            next_pred += 1;
        }
        let projection: Vec<usize> = other.projection.iter().map(|c| columns[*c]).collect();
        result.project(projection)
    }

    // `map` and `filter` over the full current output (used by `then`).
    fn map_current(self, e: MirScalarExpr) -> Self {
        self.map([e])
    }

    fn filter_current(self, p: MirScalarExpr) -> Self {
        self.filter([p])
    }

    /// Applies the MFP to one row: `Ok(None)` if a predicate rejects it.
    pub fn evaluate(
        &self,
        row: &Row,
        arena: &RowArena,
        packer: &mut RowPacker,
    ) -> Result<Option<Row>, EvalError> {
        let mut datums: Vec<Datum> = row.iter().collect();
        if !self.evaluate_inner(&mut datums, arena)? {
            return Ok(None);
        }
        packer.extend(self.projection.iter().map(|c| datums[*c]));
        Ok(Some(packer.finish_and_reuse()))
    }

    /// Evaluates maps and predicates in `datums` in place; `false` if a predicate fails.
    ///
    /// A predicate that is false rejects the row even when another predicate or a map
    /// errs on it, as `AND` does: the error is raised only for a row that no predicate
    /// rejects. (Predicates and maps that read a column whose map erred are not
    /// evaluated: their value is unknown, so they can neither reject the row nor clear
    /// the error.)
    pub fn evaluate_inner<'a>(
        &'a self,
        datums: &mut Vec<Datum<'a>>,
        arena: &'a RowArena,
    ) -> Result<bool, EvalError> {
        let mut pred = 0;
        // The first error met, and the columns whose maps erred or read erred columns.
        let mut error: Option<EvalError> = None;
        let mut erred: Vec<usize> = Vec::new();
        let reads_erred = |e: &MirScalarExpr, erred: &[usize]| {
            !erred.is_empty() && e.support().iter().any(|c| erred.contains(c))
        };
        for i in 0..=self.expressions.len() {
            while pred < self.predicates.len() && self.predicates[pred].0 <= i {
                let p = &self.predicates[pred].1;
                pred += 1;
                if reads_erred(p, &erred) {
                    continue;
                }
                match p.eval(datums, arena) {
                    Ok(Datum::True) => {}
                    Ok(_) => return Ok(false),
                    Err(e) => {
                        error.get_or_insert(e);
                    }
                }
            }
            if let Some(expr) = self.expressions.get(i) {
                let column = datums.len();
                let value = if reads_erred(expr, &erred) {
                    None
                } else {
                    match expr.eval(datums, arena) {
                        Ok(d) => Some(d),
                        Err(e) => {
                            error.get_or_insert(e);
                            None
                        }
                    }
                };
                if value.is_none() {
                    erred.push(column);
                }
                datums.push(value.unwrap_or(Datum::Null));
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }
}

impl fmt::Display for MapFilterProject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.expressions.is_empty() {
            let e: Vec<String> = self.expressions.iter().map(|e| e.to_string()).collect();
            parts.push(format!("map=({})", e.join(", ")));
        }
        if !self.predicates.is_empty() {
            let p: Vec<String> = self.predicates.iter().map(|(_, p)| p.to_string()).collect();
            parts.push(format!("filter=({})", p.join(" AND ")));
        }
        let cols: Vec<String> = self.projection.iter().map(|c| format!("#{c}")).collect();
        parts.push(format!("project=({})", cols.join(", ")));
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::func::BinaryFunc;
    use repr::ScalarType;

    fn lit(v: i32) -> MirScalarExpr {
        MirScalarExpr::literal(Datum::Int32(v), ScalarType::Int32)
    }

    #[test]
    fn filter_runs_before_dependent_maps() {
        // SELECT a / b WHERE b <> 0, on (1, 0) and (6, 3).
        let mfp = MapFilterProject::new(2)
            .map([MirScalarExpr::column(0).call_binary(MirScalarExpr::column(1), BinaryFunc::Div)])
            .filter([MirScalarExpr::column(1).call_binary(lit(0), BinaryFunc::NotEq)])
            .project([2]);
        let arena = RowArena::new();
        let mut packer = RowPacker::new();
        let zero = Row::pack_slice(&[Datum::Int32(1), Datum::Int32(0)]);
        assert_eq!(mfp.evaluate(&zero, &arena, &mut packer), Ok(None));
        let six = Row::pack_slice(&[Datum::Int32(6), Datum::Int32(3)]);
        assert_eq!(
            mfp.evaluate(&six, &arena, &mut packer),
            Ok(Some(Row::pack_slice(&[Datum::Int32(2)])))
        );
    }

    #[test]
    fn a_false_predicate_wins_over_an_error() {
        // WHERE a / b > 1 AND b <> 0, as two predicates in that order, on (1, 0): PostgreSQL
        // evaluates the cheaper b <> 0 first and returns no row, without an error.
        let mfp = MapFilterProject::new(2).filter([
            MirScalarExpr::column(0)
                .call_binary(MirScalarExpr::column(1), BinaryFunc::Div)
                .call_binary(lit(1), BinaryFunc::Gt),
            MirScalarExpr::column(1).call_binary(lit(0), BinaryFunc::NotEq),
        ]);
        let arena = RowArena::new();
        let mut packer = RowPacker::new();
        let zero = Row::pack_slice(&[Datum::Int32(1), Datum::Int32(0)]);
        assert_eq!(mfp.evaluate(&zero, &arena, &mut packer), Ok(None));
        // A row that no predicate rejects raises the error.
        let only_error = MapFilterProject::new(2).filter([MirScalarExpr::column(0)
            .call_binary(MirScalarExpr::column(1), BinaryFunc::Div)
            .call_binary(lit(1), BinaryFunc::Gt)]);
        assert_eq!(
            only_error.evaluate(&zero, &arena, &mut packer),
            Err(EvalError::DivisionByZero)
        );
        // A map that errs, read by a later predicate, cannot hide the error; an
        // independent predicate that is false still rejects the row.
        let mapped = MapFilterProject::new(2)
            .map([MirScalarExpr::column(0).call_binary(MirScalarExpr::column(1), BinaryFunc::Div)])
            .filter([MirScalarExpr::column(2).call_binary(lit(0), BinaryFunc::Gt)]);
        assert_eq!(
            mapped.evaluate(&zero, &arena, &mut packer),
            Err(EvalError::DivisionByZero)
        );
        let rejected = mapped
            .clone()
            .filter([MirScalarExpr::column(0).call_binary(lit(5), BinaryFunc::Gt)]);
        assert_eq!(rejected.evaluate(&zero, &arena, &mut packer), Ok(None));
    }

    #[test]
    fn composition_equals_sequential_application() {
        let first = MapFilterProject::new(2)
            .map([MirScalarExpr::column(0).call_binary(MirScalarExpr::column(1), BinaryFunc::Add)])
            .project([2, 0]);
        let second = MapFilterProject::new(2)
            .filter([MirScalarExpr::column(0).call_binary(lit(5), BinaryFunc::Gt)])
            .map([MirScalarExpr::column(1).call_binary(lit(10), BinaryFunc::Mul)])
            .project([2]);
        let fused = first.clone().then(&second);
        let arena = RowArena::new();
        let mut packer = RowPacker::new();
        for (a, b) in [(1, 2), (4, 3), (10, -1)] {
            let row = Row::pack_slice(&[Datum::Int32(a), Datum::Int32(b)]);
            let step = first.evaluate(&row, &arena, &mut packer).unwrap().unwrap();
            let expected = second.evaluate(&step, &arena, &mut packer).unwrap();
            assert_eq!(fused.evaluate(&row, &arena, &mut packer).unwrap(), expected);
        }
    }
}
