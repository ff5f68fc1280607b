//! HIR: the planner's first representation of a query, as written.
//!
//! HIR keeps SQL's structure: joins carry their ON condition, and scalar expressions
//! may hold subqueries (`Exists`, `Select`) whose column references may point to outer
//! scopes (`ColumnRef::level > 0`). [`crate::lower`] turns HIR into MIR; that is where
//! decorrelation happens.

use std::fmt;

use expr::{AggregateFunc, BinaryFunc, TableFunc, UnaryFunc, VariadicFunc, WindowCall};
use repr::{ColumnType, Datum, GlobalId, RelationType, Row, ScalarType};

/// A column of the current scope (`level` 0) or an enclosing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnRef {
    pub level: usize,
    pub column: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum HirScalarExpr {
    /// A column of the current scope (`level` is 0).
    Column(ColumnRef),
    /// A column of an enclosing query's scope, `level` scopes out (1 = the nearest).
    OuterColumn {
        level: usize,
        column: usize,
        typ: ColumnType,
    },
    Literal(Row, ColumnType),
    CallUnary {
        func: UnaryFunc,
        expr: Box<HirScalarExpr>,
    },
    CallBinary {
        func: BinaryFunc,
        expr1: Box<HirScalarExpr>,
        expr2: Box<HirScalarExpr>,
    },
    CallVariadic {
        func: VariadicFunc,
        exprs: Vec<HirScalarExpr>,
    },
    If {
        cond: Box<HirScalarExpr>,
        then: Box<HirScalarExpr>,
        els: Box<HirScalarExpr>,
    },
    /// `EXISTS (subquery)`.
    Exists(Box<HirRelationExpr>),
    /// A scalar subquery: its one column of at most one row.
    Select(Box<HirRelationExpr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HirAggregateExpr {
    pub func: AggregateFunc,
    pub expr: Box<HirScalarExpr>,
    pub distinct: bool,
}

/// One window function call over the columns of a `Window`'s input.
#[derive(Clone, Debug, PartialEq)]
pub struct HirWindowExpr {
    /// The PARTITION BY columns.
    pub partition_by: Vec<usize>,
    /// The ORDER BY of the window.
    pub order_by: Vec<expr::ColumnOrder>,
    /// The function, its argument columns and its frame.
    pub call: WindowCall,
}

#[derive(Clone, Debug, PartialEq)]
pub enum HirRelationExpr {
    Constant {
        rows: Vec<Row>,
        typ: RelationType,
    },
    Get {
        id: GlobalId,
        typ: RelationType,
        name: String,
    },
    Project {
        input: Box<HirRelationExpr>,
        outputs: Vec<usize>,
    },
    Map {
        input: Box<HirRelationExpr>,
        scalars: Vec<HirScalarExpr>,
    },
    Filter {
        input: Box<HirRelationExpr>,
        predicates: Vec<HirScalarExpr>,
    },
    Join {
        left: Box<HirRelationExpr>,
        right: Box<HirRelationExpr>,
        on: HirScalarExpr,
        kind: JoinKind,
    },
    /// For each input row, the rows `func` returns for `exprs` (over the input's
    /// columns), each appended to the row: a set-returning function in FROM (over the
    /// FROM items before it) or in the select list.
    FlatMap {
        input: Box<HirRelationExpr>,
        func: TableFunc,
        exprs: Vec<HirScalarExpr>,
    },
    /// `left [LEFT] JOIN LATERAL right ON on`: `right` is evaluated for each row of
    /// `left`, whose columns it reads as its nearest outer scope (`OuterColumn` level
    /// 1); `on` is over the columns, left's then right's. `kind` is `Inner` or
    /// `LeftOuter`.
    LateralJoin {
        left: Box<HirRelationExpr>,
        right: Box<HirRelationExpr>,
        on: HirScalarExpr,
        kind: JoinKind,
    },
    /// The input's columns followed by one column per window function call.
    Window {
        input: Box<HirRelationExpr>,
        windows: Vec<HirWindowExpr>,
    },
    /// Groups by the `group_key` columns; output is those columns then the aggregates.
    Reduce {
        input: Box<HirRelationExpr>,
        group_key: Vec<usize>,
        aggregates: Vec<HirAggregateExpr>,
    },
    Distinct {
        input: Box<HirRelationExpr>,
    },
    /// Per group of `group_key` columns, the rows ranked `offset .. offset + limit` by
    /// `order_key` (LIMIT / OFFSET in a subquery, DISTINCT ON).
    TopK {
        input: Box<HirRelationExpr>,
        group_key: Vec<usize>,
        order_key: Vec<expr::ColumnOrder>,
        limit: Option<usize>,
        offset: usize,
    },
    Negate {
        input: Box<HirRelationExpr>,
    },
    Threshold {
        input: Box<HirRelationExpr>,
    },
    Union {
        base: Box<HirRelationExpr>,
        inputs: Vec<HirRelationExpr>,
    },
    /// Recursive bindings (`WITH MUTUALLY RECURSIVE`, or a `WITH RECURSIVE` query
    /// that reads itself): see `MirRelationExpr::LetRec` for the rounds. Each binding's
    /// value and `body` read the bindings with [`HirRelationExpr::GetRec`]; the values
    /// read no outer columns.
    LetRec {
        bindings: Vec<RecBinding>,
        limit: Option<expr::LetRecLimit>,
        body: Box<HirRelationExpr>,
    },
    /// A binding of the enclosing `LetRec`.
    GetRec {
        id: expr::LocalId,
        typ: RelationType,
        name: String,
    },
}

/// One binding of a [`HirRelationExpr::LetRec`].
#[derive(Clone, Debug, PartialEq)]
pub struct RecBinding {
    pub id: expr::LocalId,
    pub name: String,
    pub value: HirRelationExpr,
}

impl HirScalarExpr {
    pub fn column(column: usize) -> Self {
        HirScalarExpr::Column(ColumnRef { level: 0, column })
    }

    pub fn literal(datum: Datum, scalar_type: ScalarType) -> Self {
        HirScalarExpr::Literal(
            Row::pack_slice(&[datum]),
            scalar_type.nullable(datum.is_null()),
        )
    }

    pub fn literal_null(scalar_type: ScalarType) -> Self {
        Self::literal(Datum::Null, scalar_type)
    }

    pub fn call_unary(self, func: UnaryFunc) -> Self {
        HirScalarExpr::CallUnary {
            func,
            expr: Box::new(self),
        }
    }

    pub fn call_binary(self, other: Self, func: BinaryFunc) -> Self {
        HirScalarExpr::CallBinary {
            func,
            expr1: Box::new(self),
            expr2: Box::new(other),
        }
    }

    /// The result type, given the column types of the current scope.
    pub fn typ(&self, input: &[ColumnType]) -> ColumnType {
        match self {
            HirScalarExpr::Column(c) => input[c.column],
            HirScalarExpr::OuterColumn { typ, .. } => *typ,
            HirScalarExpr::Literal(_, t) => *t,
            HirScalarExpr::CallUnary { func, expr } => func.output_type(expr.typ(input)),
            HirScalarExpr::CallBinary { func, expr1, expr2 } => {
                func.output_type(expr1.typ(input), expr2.typ(input))
            }
            HirScalarExpr::CallVariadic { func, exprs } => {
                func.output_type(exprs.iter().map(|e| e.typ(input)).collect())
            }
            HirScalarExpr::If { then, els, .. } => {
                let (t, e) = (then.typ(input), els.typ(input));
                let scalar = if matches!(**then, HirScalarExpr::Literal(ref r, _) if r.iter().next() == Some(Datum::Null))
                {
                    e.scalar_type
                } else {
                    t.scalar_type
                };
                scalar.nullable(t.nullable || e.nullable)
            }
            HirScalarExpr::Exists(_) => ScalarType::Bool.nullable(false),
            HirScalarExpr::Select(q) => q
                .typ()
                .column_types
                .first()
                .map(|t| t.scalar_type)
                .unwrap_or(ScalarType::String)
                .nullable(true),
        }
    }

    /// Whether the expression is a literal.
    pub fn is_literal(&self) -> bool {
        matches!(self, HirScalarExpr::Literal(..))
    }
}

impl HirRelationExpr {
    pub fn typ(&self) -> RelationType {
        match self {
            HirRelationExpr::Constant { typ, .. }
            | HirRelationExpr::Get { typ, .. }
            | HirRelationExpr::GetRec { typ, .. } => typ.clone(),
            HirRelationExpr::LetRec { body, .. } => body.typ(),
            HirRelationExpr::Project { input, outputs } => {
                let t = input.typ();
                RelationType::new(outputs.iter().map(|c| t.column_types[*c]).collect())
            }
            HirRelationExpr::Map { input, scalars } => {
                let mut cols = input.typ().column_types;
                for s in scalars {
                    let t = s.typ(&cols);
                    cols.push(t);
                }
                RelationType::new(cols)
            }
            HirRelationExpr::FlatMap { input, func, .. } => {
                let mut cols = input.typ().column_types;
                cols.extend(func.output_types());
                RelationType::new(cols)
            }
            HirRelationExpr::LateralJoin {
                left, right, kind, ..
            } => {
                let mut cols = left.typ().column_types;
                let mut right = right.typ().column_types;
                if *kind == JoinKind::LeftOuter {
                    right.iter_mut().for_each(|c| c.nullable = true);
                }
                cols.extend(right);
                RelationType::new(cols)
            }
            HirRelationExpr::Window { input, windows } => {
                let mut cols = input.typ().column_types;
                let calls: Vec<ColumnType> =
                    windows.iter().map(|w| w.call.output_type(&cols)).collect();
                cols.extend(calls);
                RelationType::new(cols)
            }
            HirRelationExpr::Filter { input, .. }
            | HirRelationExpr::TopK { input, .. }
            | HirRelationExpr::Distinct { input }
            | HirRelationExpr::Negate { input }
            | HirRelationExpr::Threshold { input } => input.typ(),
            HirRelationExpr::Join {
                left, right, kind, ..
            } => {
                let nullable = |mut cols: Vec<ColumnType>, yes: bool| {
                    if yes {
                        cols.iter_mut().for_each(|c| c.nullable = true);
                    }
                    cols
                };
                let left_nullable = matches!(kind, JoinKind::RightOuter | JoinKind::FullOuter);
                let right_nullable = matches!(kind, JoinKind::LeftOuter | JoinKind::FullOuter);
                let mut cols = nullable(left.typ().column_types, left_nullable);
                cols.extend(nullable(right.typ().column_types, right_nullable));
                RelationType::new(cols)
            }
            HirRelationExpr::Reduce {
                input,
                group_key,
                aggregates,
            } => {
                let cols = input.typ().column_types;
                let mut out: Vec<ColumnType> = group_key.iter().map(|c| cols[*c]).collect();
                out.extend(
                    aggregates
                        .iter()
                        .map(|a| a.func.output_type(a.expr.typ(&cols))),
                );
                RelationType::new(out)
            }
            HirRelationExpr::Union { base, inputs } => {
                let mut typ = base.typ();
                for i in inputs {
                    for (c, t) in typ.column_types.iter_mut().zip(i.typ().column_types) {
                        c.nullable |= t.nullable;
                    }
                }
                typ
            }
        }
    }

    pub fn arity(&self) -> usize {
        self.typ().arity()
    }

    pub(crate) fn children(&self) -> Vec<&HirRelationExpr> {
        match self {
            HirRelationExpr::Constant { .. }
            | HirRelationExpr::Get { .. }
            | HirRelationExpr::GetRec { .. } => vec![],
            HirRelationExpr::LetRec { bindings, body, .. } => bindings
                .iter()
                .map(|b| &b.value)
                .chain(std::iter::once(&**body))
                .collect(),
            HirRelationExpr::Project { input, .. }
            | HirRelationExpr::Map { input, .. }
            | HirRelationExpr::Filter { input, .. }
            | HirRelationExpr::FlatMap { input, .. }
            | HirRelationExpr::Window { input, .. }
            | HirRelationExpr::Reduce { input, .. }
            | HirRelationExpr::Distinct { input }
            | HirRelationExpr::TopK { input, .. }
            | HirRelationExpr::Negate { input }
            | HirRelationExpr::Threshold { input } => vec![input],
            HirRelationExpr::Join { left, right, .. }
            | HirRelationExpr::LateralJoin { left, right, .. } => vec![left, right],
            HirRelationExpr::Union { base, inputs } => {
                std::iter::once(&**base).chain(inputs.iter()).collect()
            }
        }
    }

    fn fmt_indent(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        let pad = "  ".repeat(depth);
        let list = |es: &[HirScalarExpr]| {
            es.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            HirRelationExpr::Constant { rows, .. } => {
                writeln!(f, "{pad}Constant ({} rows)", rows.len())?
            }
            HirRelationExpr::Get { id, name, .. } => writeln!(f, "{pad}Get {name} ({id})")?,
            HirRelationExpr::GetRec { id, name, .. } => writeln!(f, "{pad}Get {name} ({id})")?,
            HirRelationExpr::LetRec {
                bindings,
                limit,
                body,
            } => {
                match limit {
                    Some(limit) => writeln!(f, "{pad}LetRec {limit}")?,
                    None => writeln!(f, "{pad}LetRec")?,
                }
                for b in bindings {
                    writeln!(f, "{pad}  {} ({}) =", b.name, b.id)?;
                    b.value.fmt_indent(f, depth + 2)?;
                }
                writeln!(f, "{pad}In")?;
                return body.fmt_indent(f, depth + 1);
            }
            HirRelationExpr::Project { outputs, .. } => writeln!(
                f,
                "{pad}Project ({})",
                outputs
                    .iter()
                    .map(|c| format!("#{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )?,
            HirRelationExpr::Map { scalars, .. } => writeln!(f, "{pad}Map ({})", list(scalars))?,
            HirRelationExpr::Filter { predicates, .. } => writeln!(
                f,
                "{pad}Filter {}",
                predicates
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" AND ")
            )?,
            HirRelationExpr::Join { on, kind, .. } => writeln!(f, "{pad}{kind:?}Join on={on}")?,
            HirRelationExpr::LateralJoin { on, kind, .. } => {
                writeln!(f, "{pad}Lateral{kind:?}Join on={on}")?
            }
            HirRelationExpr::FlatMap { func, exprs, .. } => {
                writeln!(f, "{pad}FlatMap {func}({})", list(exprs))?
            }
            HirRelationExpr::Window { windows, .. } => {
                let calls: Vec<String> = windows
                    .iter()
                    .map(|w| {
                        let parts: Vec<String> =
                            w.partition_by.iter().map(|c| format!("#{c}")).collect();
                        format!(
                            "{} over (partition_by=[{}] order_by=[{}])",
                            w.call,
                            parts.join(", "),
                            expr::plan::format_order(&w.order_by)
                        )
                    })
                    .collect();
                writeln!(f, "{pad}Window {}", calls.join(", "))?
            }
            HirRelationExpr::Reduce {
                group_key,
                aggregates,
                ..
            } => {
                let keys: Vec<String> = group_key.iter().map(|c| format!("#{c}")).collect();
                let aggs: Vec<String> = aggregates
                    .iter()
                    .map(|a| {
                        format!(
                            "{}({}{}{})",
                            a.func,
                            if a.distinct { "distinct " } else { "" },
                            a.expr,
                            a.func.order_by_suffix()
                        )
                    })
                    .collect();
                writeln!(
                    f,
                    "{pad}Reduce group_by=[{}] aggregates=[{}]",
                    keys.join(", "),
                    aggs.join(", ")
                )?
            }
            HirRelationExpr::Distinct { .. } => writeln!(f, "{pad}Distinct")?,
            HirRelationExpr::TopK {
                group_key,
                order_key,
                limit,
                offset,
                ..
            } => writeln!(
                f,
                "{pad}TopK {}",
                expr::plan::format_topk(group_key, order_key, *limit, *offset)
            )?,
            HirRelationExpr::Negate { .. } => writeln!(f, "{pad}Negate")?,
            HirRelationExpr::Threshold { .. } => writeln!(f, "{pad}Threshold")?,
            HirRelationExpr::Union { .. } => writeln!(f, "{pad}Union")?,
        }
        for c in self.children() {
            c.fmt_indent(f, depth + 1)?;
        }
        Ok(())
    }
}

impl fmt::Display for HirRelationExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_indent(f, 0)
    }
}

impl fmt::Display for HirScalarExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HirScalarExpr::Column(c) => write!(f, "#{}", c.column),
            HirScalarExpr::OuterColumn { level, column, .. } => write!(f, "#^{level}.{column}"),
            HirScalarExpr::Literal(row, typ) => {
                write!(f, "{}", expr::MirScalarExpr::Literal(Ok(row.clone()), *typ))
            }
            HirScalarExpr::CallUnary { func, expr } => write!(f, "{func}({expr})"),
            HirScalarExpr::CallBinary { func, expr1, expr2 } => match func.infix() {
                Some(op) => write!(f, "({expr1} {op} {expr2})"),
                None => write!(f, "{func}({expr1}, {expr2})"),
            },
            HirScalarExpr::CallVariadic { func, exprs } => {
                write!(
                    f,
                    "{func}({})",
                    exprs
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            HirScalarExpr::If { cond, then, els } => {
                write!(f, "case when {cond} then {then} else {els} end")
            }
            HirScalarExpr::Exists(q) => write!(
                f,
                "exists({})",
                q.to_string().trim_end().replace('\n', "; ")
            ),
            HirScalarExpr::Select(q) => write!(
                f,
                "select({})",
                q.to_string().trim_end().replace('\n', "; ")
            ),
        }
    }
}
