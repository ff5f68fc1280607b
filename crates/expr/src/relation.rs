//! MIR: [`MirRelationExpr`], the relational algebra the optimizer rewrites.
//!
//! Every MIR expression denotes a collection (a multiset of rows that changes over
//! time). Columns are referred to by position. `Join` is a multi-way equi-join: its
//! `equivalences` are classes of expressions over the concatenated input columns that
//! must all be equal (SQL `=`, so NULL never matches).

use std::fmt;

use repr::{ColumnType, Diff, EvalError, GlobalId, RelationType, Row, ScalarType};
use serde::{Deserialize, Serialize};

use crate::agg::AggregateExpr;
use crate::finishing::ColumnOrder;
use crate::scalar::MirScalarExpr;
use crate::table_func::TableFunc;

/// A name for a collection bound by `Let` within one expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LocalId(pub u64);

impl fmt::Display for LocalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "l{}", self.0)
    }
}

impl LocalId {
    /// A fresh id, unique within the process.
    pub fn fresh() -> LocalId {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        LocalId(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// How many rounds a `LetRec` may iterate, and what happens when they run out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LetRecLimit {
    /// The most rounds the bindings are computed (at least 1).
    pub max_iters: u64,
    /// After `max_iters` rounds: use the bindings' values as they are (`RETURN AT
    /// RECURSION LIMIT`), or, if another round would still change them, fail with an
    /// error (`ERROR AT RECURSION LIMIT`).
    pub return_at_limit: bool,
}

impl fmt::Display for LetRecLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.return_at_limit {
            "return"
        } else {
            "error"
        };
        write!(f, "{what}_at_recursion_limit={}", self.max_iters)
    }
}

/// A value waiting to be bound around a body: see [`MirRelationExpr::bind`].
pub struct Binding {
    id: LocalId,
    value: MirRelationExpr,
}

impl Binding {
    /// `Let id = value In body`.
    pub fn wrap(self, body: MirRelationExpr) -> MirRelationExpr {
        MirRelationExpr::Let {
            id: self.id,
            value: Box::new(self.value),
            body: Box::new(body),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MirRelationExpr {
    /// `body`, in which `GetLocal { id }` denotes `value` (computed once).
    Let {
        id: LocalId,
        value: Box<MirRelationExpr>,
        body: Box<MirRelationExpr>,
    },
    /// Recursive bindings (`WITH MUTUALLY RECURSIVE`, `WITH RECURSIVE`): every
    /// `values[i]` may read every `ids[j]` (itself included) through `GetLocal`, and
    /// `body` reads them all. All bindings start empty; each round recomputes the values
    /// in order, a value reading the bindings before it as this round computed them and
    /// itself and the later ones as the previous round left them; rounds repeat until
    /// one changes nothing, and `body` sees that fixed point. `limit` caps the rounds.
    /// No value reads an outer relation's columns (the bindings are uncorrelated).
    LetRec {
        ids: Vec<LocalId>,
        values: Vec<MirRelationExpr>,
        limit: Option<LetRecLimit>,
        body: Box<MirRelationExpr>,
    },
    /// The collection bound to `id` by an enclosing `Let` or `LetRec`.
    GetLocal {
        id: LocalId,
        typ: RelationType,
    },
    /// Literal rows with multiplicities, or an error raised when the collection is read.
    Constant {
        rows: Result<Vec<(Row, Diff)>, EvalError>,
        typ: RelationType,
    },
    /// A catalog collection (table, view) by id; `name` is for EXPLAIN.
    Get {
        id: GlobalId,
        typ: RelationType,
        name: String,
    },
    Project {
        input: Box<MirRelationExpr>,
        outputs: Vec<usize>,
    },
    /// Appends columns, each computed from the input columns and the ones before it.
    Map {
        input: Box<MirRelationExpr>,
        scalars: Vec<MirScalarExpr>,
    },
    Filter {
        input: Box<MirRelationExpr>,
        predicates: Vec<MirScalarExpr>,
    },
    /// For each input row, `func` applied to `exprs` (evaluated on the row) gives zero
    /// or more rows; each is appended to the input row. The output columns are the
    /// input's followed by the function's.
    FlatMap {
        input: Box<MirRelationExpr>,
        func: TableFunc,
        exprs: Vec<MirScalarExpr>,
    },
    Join {
        inputs: Vec<MirRelationExpr>,
        equivalences: Vec<Vec<MirScalarExpr>>,
    },
    /// Groups by `group_key` and computes `aggregates` per group; output columns are
    /// the key columns followed by the aggregates. No aggregates: DISTINCT.
    Reduce {
        input: Box<MirRelationExpr>,
        group_key: Vec<MirScalarExpr>,
        aggregates: Vec<AggregateExpr>,
    },
    /// Per group of `group_key` columns, the rows ranked `offset .. offset + limit` by
    /// `order_key` (ties broken by the whole row; a row of multiplicity n counts n times).
    TopK {
        input: Box<MirRelationExpr>,
        group_key: Vec<usize>,
        order_key: Vec<ColumnOrder>,
        limit: Option<usize>,
        offset: usize,
    },
    Negate {
        input: Box<MirRelationExpr>,
    },
    /// Keeps rows with positive multiplicity.
    Threshold {
        input: Box<MirRelationExpr>,
    },
    Union {
        base: Box<MirRelationExpr>,
        inputs: Vec<MirRelationExpr>,
    },
}

impl MirRelationExpr {
    /// Binds `self` to a fresh local id: returns the `GetLocal` to use in place of
    /// `self`, and the [`Binding`] that wraps the final body in the `Let`.
    pub fn bind(self) -> (MirRelationExpr, Binding) {
        let id = LocalId::fresh();
        let typ = self.typ();
        (
            MirRelationExpr::GetLocal { id, typ },
            Binding { id, value: self },
        )
    }

    /// The number of `GetLocal { id }` in the expression.
    pub fn count_uses(&self, id: LocalId) -> usize {
        let own = matches!(self, MirRelationExpr::GetLocal { id: i, .. } if *i == id) as usize;
        own + self
            .children()
            .iter()
            .map(|c| c.count_uses(id))
            .sum::<usize>()
    }

    /// Replaces every `GetLocal { id }` by `value`.
    pub fn substitute_local(&mut self, id: LocalId, value: &MirRelationExpr) {
        if matches!(self, MirRelationExpr::GetLocal { id: i, .. } if *i == id) {
            *self = value.clone();
            return;
        }
        for c in self.children_mut() {
            c.substitute_local(id, value);
        }
    }

    pub fn constant(rows: Vec<Row>, typ: RelationType) -> Self {
        MirRelationExpr::Constant {
            rows: Ok(rows.into_iter().map(|r| (r, 1)).collect()),
            typ,
        }
    }

    pub fn project(self, outputs: Vec<usize>) -> Self {
        MirRelationExpr::Project {
            input: Box::new(self),
            outputs,
        }
    }

    pub fn map(self, scalars: Vec<MirScalarExpr>) -> Self {
        if scalars.is_empty() {
            return self;
        }
        MirRelationExpr::Map {
            input: Box::new(self),
            scalars,
        }
    }

    pub fn filter(self, predicates: Vec<MirScalarExpr>) -> Self {
        if predicates.is_empty() {
            return self;
        }
        MirRelationExpr::Filter {
            input: Box::new(self),
            predicates,
        }
    }

    pub fn negate(self) -> Self {
        MirRelationExpr::Negate {
            input: Box::new(self),
        }
    }

    pub fn threshold(self) -> Self {
        MirRelationExpr::Threshold {
            input: Box::new(self),
        }
    }

    pub fn distinct(self) -> Self {
        let arity = self.arity();
        MirRelationExpr::Reduce {
            input: Box::new(self),
            group_key: (0..arity).map(MirScalarExpr::Column).collect(),
            aggregates: Vec::new(),
        }
    }

    pub fn union(self, other: Self) -> Self {
        MirRelationExpr::Union {
            base: Box::new(self),
            inputs: vec![other],
        }
    }

    /// The number of columns.
    pub fn arity(&self) -> usize {
        self.typ().arity()
    }

    /// The column types of the collection.
    pub fn typ(&self) -> RelationType {
        match self {
            MirRelationExpr::Constant { typ, .. }
            | MirRelationExpr::Get { typ, .. }
            | MirRelationExpr::GetLocal { typ, .. } => typ.clone(),
            MirRelationExpr::Let { body, .. } | MirRelationExpr::LetRec { body, .. } => body.typ(),
            MirRelationExpr::Project { input, outputs } => {
                let t = input.typ();
                RelationType::new(outputs.iter().map(|c| t.column_types[*c]).collect())
            }
            MirRelationExpr::Map { input, scalars } => {
                let mut cols = input.typ().column_types;
                for s in scalars {
                    let t = s.typ(&cols);
                    cols.push(t);
                }
                RelationType::new(cols)
            }
            MirRelationExpr::Filter { input, .. } => input.typ(),
            MirRelationExpr::FlatMap { input, func, .. } => {
                let mut cols = input.typ().column_types;
                cols.extend(func.output_types());
                RelationType::new(cols)
            }
            MirRelationExpr::Join { inputs, .. } => {
                RelationType::new(inputs.iter().flat_map(|i| i.typ().column_types).collect())
            }
            MirRelationExpr::Reduce {
                input,
                group_key,
                aggregates,
            } => {
                let cols = input.typ().column_types;
                let mut out: Vec<ColumnType> = group_key.iter().map(|k| k.typ(&cols)).collect();
                for a in aggregates {
                    out.push(a.func.output_type(a.expr.typ(&cols)));
                }
                let mut typ = RelationType::new(out);
                typ.keys.push((0..group_key.len()).collect());
                typ
            }
            MirRelationExpr::Negate { input } | MirRelationExpr::Threshold { input } => input.typ(),
            MirRelationExpr::TopK { input, .. } => input.typ(),
            MirRelationExpr::Union { base, inputs } => {
                let mut typ = base.typ();
                typ.keys.clear();
                for i in inputs {
                    for (c, t) in typ.column_types.iter_mut().zip(i.typ().column_types) {
                        c.nullable |= t.nullable;
                    }
                }
                typ
            }
        }
    }

    /// The direct inputs.
    pub fn children(&self) -> Vec<&MirRelationExpr> {
        match self {
            MirRelationExpr::Constant { .. }
            | MirRelationExpr::Get { .. }
            | MirRelationExpr::GetLocal { .. } => vec![],
            MirRelationExpr::Let { value, body, .. } => vec![value, body],
            MirRelationExpr::LetRec { values, body, .. } => {
                values.iter().chain(std::iter::once(&**body)).collect()
            }
            MirRelationExpr::Project { input, .. }
            | MirRelationExpr::Map { input, .. }
            | MirRelationExpr::Filter { input, .. }
            | MirRelationExpr::FlatMap { input, .. }
            | MirRelationExpr::Reduce { input, .. }
            | MirRelationExpr::Negate { input }
            | MirRelationExpr::TopK { input, .. }
            | MirRelationExpr::Threshold { input } => vec![input],
            MirRelationExpr::Join { inputs, .. } => inputs.iter().collect(),
            MirRelationExpr::Union { base, inputs } => {
                std::iter::once(&**base).chain(inputs.iter()).collect()
            }
        }
    }

    /// The direct inputs, mutably.
    pub fn children_mut(&mut self) -> Vec<&mut MirRelationExpr> {
        match self {
            MirRelationExpr::Constant { .. }
            | MirRelationExpr::Get { .. }
            | MirRelationExpr::GetLocal { .. } => vec![],
            MirRelationExpr::Let { value, body, .. } => vec![value, body],
            MirRelationExpr::LetRec { values, body, .. } => values
                .iter_mut()
                .chain(std::iter::once(&mut **body))
                .collect(),
            MirRelationExpr::Project { input, .. }
            | MirRelationExpr::Map { input, .. }
            | MirRelationExpr::Filter { input, .. }
            | MirRelationExpr::FlatMap { input, .. }
            | MirRelationExpr::Reduce { input, .. }
            | MirRelationExpr::Negate { input }
            | MirRelationExpr::TopK { input, .. }
            | MirRelationExpr::Threshold { input } => vec![input],
            MirRelationExpr::Join { inputs, .. } => inputs.iter_mut().collect(),
            MirRelationExpr::Union { base, inputs } => std::iter::once(&mut **base)
                .chain(inputs.iter_mut())
                .collect(),
        }
    }

    /// The ids of every collection the expression reads.
    pub fn depends_on(&self) -> std::collections::BTreeSet<GlobalId> {
        let mut out = std::collections::BTreeSet::new();
        fn go(e: &MirRelationExpr, out: &mut std::collections::BTreeSet<GlobalId>) {
            if let MirRelationExpr::Get { id, .. } = e {
                out.insert(*id);
            }
            for c in e.children() {
                go(c, out);
            }
        }
        go(self, &mut out);
        out
    }

    fn fmt_indent(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        let pad = "  ".repeat(depth);
        let list = |exprs: &[MirScalarExpr]| {
            exprs
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            MirRelationExpr::Constant { rows: Ok(rows), .. } => {
                if rows.is_empty() {
                    writeln!(f, "{pad}Constant <empty>")?;
                } else {
                    writeln!(f, "{pad}Constant")?;
                    for (row, diff) in rows {
                        let vals: Vec<String> = row.iter().map(|d| d.to_string()).collect();
                        let mult = if *diff == 1 {
                            String::new()
                        } else {
                            format!(" x {diff}")
                        };
                        writeln!(f, "{pad}  - ({}){mult}", vals.join(", "))?;
                    }
                }
            }
            MirRelationExpr::Constant { rows: Err(e), .. } => {
                writeln!(f, "{pad}Error {:?}", e.to_string())?
            }
            MirRelationExpr::Get { id, name, .. } => writeln!(f, "{pad}Get {name} ({id})")?,
            MirRelationExpr::GetLocal { id, .. } => writeln!(f, "{pad}Get {id}")?,
            MirRelationExpr::Let { id, value, body } => {
                writeln!(f, "{pad}Let {id} =")?;
                value.fmt_indent(f, depth + 1)?;
                writeln!(f, "{pad}In")?;
                return body.fmt_indent(f, depth + 1);
            }
            MirRelationExpr::LetRec {
                ids,
                values,
                limit,
                body,
            } => {
                match limit {
                    Some(limit) => writeln!(f, "{pad}LetRec {limit}")?,
                    None => writeln!(f, "{pad}LetRec")?,
                }
                for (id, value) in ids.iter().zip(values) {
                    writeln!(f, "{pad}  {id} =")?;
                    value.fmt_indent(f, depth + 2)?;
                }
                writeln!(f, "{pad}In")?;
                return body.fmt_indent(f, depth + 1);
            }
            MirRelationExpr::Project { outputs, .. } => {
                let cols: Vec<String> = outputs.iter().map(|c| format!("#{c}")).collect();
                writeln!(f, "{pad}Project ({})", cols.join(", "))?;
            }
            MirRelationExpr::Map { scalars, .. } => writeln!(f, "{pad}Map ({})", list(scalars))?,
            MirRelationExpr::Filter { predicates, .. } => {
                let preds: Vec<String> = predicates.iter().map(|p| p.to_string()).collect();
                writeln!(f, "{pad}Filter {}", preds.join(" AND "))?;
            }
            MirRelationExpr::FlatMap { func, exprs, .. } => {
                writeln!(f, "{pad}FlatMap {func}({})", list(exprs))?
            }
            MirRelationExpr::Join { equivalences, .. } => {
                let eqs: Vec<String> = equivalences
                    .iter()
                    .map(|c| {
                        format!(
                            "({})",
                            c.iter()
                                .map(|e| e.to_string())
                                .collect::<Vec<_>>()
                                .join(" = ")
                        )
                    })
                    .collect();
                if eqs.is_empty() {
                    writeln!(f, "{pad}CrossJoin")?;
                } else {
                    writeln!(f, "{pad}Join on={}", eqs.join(" AND "))?;
                }
            }
            MirRelationExpr::Reduce {
                group_key,
                aggregates,
                ..
            } => {
                if aggregates.is_empty() {
                    writeln!(f, "{pad}Distinct project=[{}]", list(group_key))?;
                } else {
                    let aggs: Vec<String> = aggregates.iter().map(|a| a.to_string()).collect();
                    writeln!(
                        f,
                        "{pad}Reduce group_by=[{}] aggregates=[{}]",
                        list(group_key),
                        aggs.join(", ")
                    )?;
                }
            }
            MirRelationExpr::Negate { .. } => writeln!(f, "{pad}Negate")?,
            MirRelationExpr::TopK {
                group_key,
                order_key,
                limit,
                offset,
                ..
            } => writeln!(
                f,
                "{pad}TopK {}",
                crate::plan::format_topk(group_key, order_key, *limit, *offset)
            )?,
            MirRelationExpr::Threshold { .. } => writeln!(f, "{pad}Threshold")?,
            MirRelationExpr::Union { .. } => writeln!(f, "{pad}Union")?,
        }
        for c in self.children() {
            c.fmt_indent(f, depth + 1)?;
        }
        Ok(())
    }
}

impl fmt::Display for MirRelationExpr {
    /// The EXPLAIN text: one operator per line, inputs indented below.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_indent(f, 0)
    }
}

/// A relation type whose columns are all nullable text (for tests and EXPLAIN output).
pub fn text_relation_type(arity: usize) -> RelationType {
    RelationType::new(vec![ScalarType::String.nullable(true); arity])
}
