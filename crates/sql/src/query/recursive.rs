//! Recursive common table expressions: `WITH MUTUALLY RECURSIVE` (Materialize's) and
//! `WITH RECURSIVE` (PostgreSQL's), both planned as a [`HirRelationExpr::LetRec`]
//! around the query body.
//!
//! `WITH MUTUALLY RECURSIVE [(RETURN | ERROR) AT RECURSION LIMIT n] name (col type,
//! ...) AS (query), ...`: every binding declares its column types and may read every
//! binding, itself included; the bindings are iterated to a fixed point (see
//! `MirRelationExpr::LetRec`). The parser rewrites the clause to `WITH RECURSIVE` with
//! a marker on the first binding (`parse::MUTUALLY_RECURSIVE_MARKER`).
//!
//! `WITH RECURSIVE name [(col, ...)] AS (non_recursive UNION [ALL] recursive)`:
//! PostgreSQL evaluates the recursive term on the rows the previous step added until
//! it adds none. When the recursive term reads the binding once, outside subqueries,
//! outer joins' nullable sides, aggregates and EXCEPT/INTERSECT (what PostgreSQL
//! requires, with its errors, 42P19), that result is the fixed point of `name =
//! non_recursive UNION [ALL] recursive(name)` (distinct for UNION), so it becomes a
//! `LetRec` binding too. A query in `WITH RECURSIVE` that does not read itself is an
//! ordinary common table expression.

use expr::{LetRecLimit, LocalId};

use super::*;
use crate::hir::RecBinding;

/// The recursive bindings of one `WITH`, to wrap around its body.
pub(super) struct RecursiveBindings {
    pub bindings: Vec<RecBinding>,
    pub limit: Option<LetRecLimit>,
}

impl RecursiveBindings {
    pub fn wrap(self, body: HirRelationExpr) -> HirRelationExpr {
        if self.bindings.is_empty() {
            return body;
        }
        HirRelationExpr::LetRec {
            bindings: self.bindings,
            limit: self.limit,
            body: Box::new(body),
        }
    }
}

/// For a `WITH MUTUALLY RECURSIVE` (as the parser rewrote it): its recursion limit.
fn mutually_recursive(with: &ast::With) -> Result<Option<Option<LetRecLimit>>, PlanError> {
    let marker = crate::parse::MUTUALLY_RECURSIVE_MARKER;
    let Some(from) = with.cte_tables.first().and_then(|c| c.from.as_ref()) else {
        return Ok(None);
    };
    let Some(rest) = from.value.strip_prefix(marker) else {
        return Ok(None);
    };
    let limit = match rest.strip_prefix('_').and_then(|r| r.split_once('_')) {
        None => None,
        Some((kind, n)) => Some(LetRecLimit {
            max_iters: n
                .parse()
                .map_err(|_| PlanError::unsupported(format!("WITH ... FROM {from}")))?,
            return_at_limit: kind == "return",
        }),
    };
    Ok(Some(limit))
}

/// Plans the common table expressions of a `WITH RECURSIVE` or `WITH MUTUALLY
/// RECURSIVE`, pushing each onto `qcx.ctes` (recursive ones as `GetRec`s), and returns
/// the recursive bindings for the caller to wrap the body in.
pub(super) fn plan_recursive_ctes(
    qcx: &QueryContext,
    with: &ast::With,
) -> Result<RecursiveBindings, PlanError> {
    for (i, cte) in with.cte_tables.iter().enumerate() {
        let name = normalize_ident(&cte.alias.name);
        if with.cte_tables[..i]
            .iter()
            .any(|c| normalize_ident(&c.alias.name) == name)
        {
            return Err(PlanError::DuplicateCte(name));
        }
    }
    match mutually_recursive(with)? {
        Some(limit) => plan_mutually_recursive(qcx, with, limit),
        None => plan_with_recursive(qcx, with),
    }
}

fn plan_mutually_recursive(
    qcx: &QueryContext,
    with: &ast::With,
    limit: Option<LetRecLimit>,
) -> Result<RecursiveBindings, PlanError> {
    // Every binding is in scope in every value: declare them all first.
    let mut declared = Vec::new();
    for (i, cte) in with.cte_tables.iter().enumerate() {
        if cte.from.is_some() && i > 0 {
            return Err(PlanError::unsupported("WITH ... FROM"));
        }
        let name = normalize_ident(&cte.alias.name);
        if cte.alias.columns.is_empty() {
            return Err(PlanError::Syntax(format!(
                "WITH MUTUALLY RECURSIVE query \"{name}\" must declare its columns and their types"
            )));
        }
        let mut names = Vec::new();
        let mut types = Vec::new();
        for column in &cte.alias.columns {
            let Some(data_type) = &column.data_type else {
                return Err(PlanError::Syntax(format!(
                    "WITH MUTUALLY RECURSIVE query \"{name}\" must declare the type of column \"{}\"",
                    normalize_ident(&column.name)
                )));
            };
            names.push(normalize_ident(&column.name));
            types.push(parse_data_type(data_type)?.nullable(true));
        }
        let id = LocalId::fresh();
        let typ = RelationType::new(types);
        let get = HirRelationExpr::GetRec {
            id,
            typ: typ.clone(),
            name: name.clone(),
        };
        qcx.ctes.borrow_mut().push((name.clone(), get, names));
        declared.push((id, name, typ));
    }
    let mut bindings = Vec::new();
    for (cte, (id, name, typ)) in with.cte_tables.iter().zip(declared) {
        let targets: Vec<ScalarType> = typ.column_types.iter().map(|c| c.scalar_type).collect();
        let (value, _) = plan_insert_source(qcx, &cte.query, &targets)?;
        let value = cast_to_declared(value, &typ, || {
            format!("WITH MUTUALLY RECURSIVE query \"{name}\"")
        })?;
        check_uncorrelated(&value)?;
        bindings.push(RecBinding { id, name, value });
    }
    Ok(RecursiveBindings { bindings, limit })
}

/// `value` with its columns cast to the declared types where PostgreSQL would cast
/// implicitly; any other difference is an error naming both lists of types.
fn cast_to_declared(
    value: HirRelationExpr,
    declared: &RelationType,
    what: impl Fn() -> String,
) -> Result<HirRelationExpr, PlanError> {
    let actual = value.typ().column_types;
    let mismatch = || {
        let list = |types: &mut dyn Iterator<Item = ScalarType>| {
            types.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
        };
        PlanError::DatatypeMismatch(format!(
            "{} declared types ({}), but query returns types ({})",
            what(),
            list(&mut declared.column_types.iter().map(|c| c.scalar_type)),
            list(&mut actual.iter().map(|c| c.scalar_type)),
        ))
    };
    if actual.len() != declared.arity() {
        return Err(mismatch());
    }
    if actual
        .iter()
        .zip(&declared.column_types)
        .all(|(a, d)| a.scalar_type == d.scalar_type)
    {
        return Ok(value);
    }
    let mut casts = Vec::new();
    for (i, (a, d)) in actual.iter().zip(&declared.column_types).enumerate() {
        if a.scalar_type != d.scalar_type
            && !crate::func::implicit_cast(a.scalar_type, d.scalar_type)
        {
            return Err(mismatch());
        }
        casts.push(cast_to(
            HirScalarExpr::column(i),
            a.scalar_type,
            d.scalar_type,
        ));
    }
    let n = actual.len();
    Ok(HirRelationExpr::Project {
        input: Box::new(HirRelationExpr::Map {
            input: Box::new(value),
            scalars: casts,
        }),
        outputs: (n..2 * n).collect(),
    })
}

fn check_uncorrelated(value: &HirRelationExpr) -> Result<(), PlanError> {
    if value.outer_refs().is_empty() {
        Ok(())
    } else {
        Err(PlanError::unsupported(
            "recursive WITH queries that refer to outer queries",
        ))
    }
}

fn plan_with_recursive(
    qcx: &QueryContext,
    with: &ast::With,
) -> Result<RecursiveBindings, PlanError> {
    let mut bindings = Vec::new();
    for cte in &with.cte_tables {
        if cte.from.is_some() {
            return Err(PlanError::unsupported("WITH ... FROM"));
        }
        let name = normalize_ident(&cte.alias.name);
        if let Some(typed) = cte.alias.columns.iter().find_map(|c| c.data_type.as_ref()) {
            return Err(PlanError::Parse {
                message: format!("syntax error at or near \"{typed}\""),
                position: None,
            });
        }
        match plan_recursive_term(qcx, cte, &name)? {
            Some((binding, names)) => {
                let get = HirRelationExpr::GetRec {
                    id: binding.id,
                    typ: binding.value.typ(),
                    name: name.clone(),
                };
                qcx.ctes.borrow_mut().push((name, get, names));
                bindings.push(binding);
            }
            None => {
                // Not recursive: an ordinary common table expression.
                let (expr, names) = plan_nested_query(qcx, &cte.query)?;
                if !expr.outer_refs().is_empty() {
                    return Err(PlanError::unsupported(
                        "WITH queries that refer to outer queries",
                    ));
                }
                let names = alias_names(&cte.alias, &name, names)?;
                qcx.ctes.borrow_mut().push((name, expr, names));
            }
        }
    }
    Ok(RecursiveBindings {
        bindings,
        limit: None,
    })
}

/// The column names of a common table expression: the alias's, then the query's.
fn alias_names(
    alias: &ast::TableAlias,
    name: &str,
    mut names: Vec<String>,
) -> Result<Vec<String>, PlanError> {
    if alias.columns.len() > names.len() {
        return Err(PlanError::Syntax(format!(
            "WITH query \"{name}\" has {} columns available but {} columns specified",
            names.len(),
            alias.columns.len()
        )));
    }
    for (i, c) in alias.columns.iter().enumerate() {
        names[i] = normalize_ident(&c.name);
    }
    Ok(names)
}

/// Plans `cte` of a `WITH RECURSIVE` as a recursive binding, or returns `None` if it
/// does not read itself.
fn plan_recursive_term(
    qcx: &QueryContext,
    cte: &ast::Cte,
    name: &str,
) -> Result<Option<(RecBinding, Vec<String>)>, PlanError> {
    let id = LocalId::fresh();
    // While a term is planned without its own type known, the name stands for a
    // relation of the alias's columns, as text; reading it is an error reported below.
    let alias_columns: Vec<String> = cte
        .alias
        .columns
        .iter()
        .map(|c| normalize_ident(&c.name))
        .collect();
    let placeholder = HirRelationExpr::GetRec {
        id,
        typ: RelationType::new(vec![ScalarType::String.nullable(true); alias_columns.len()]),
        name: name.to_string(),
    };
    let depth = qcx.ctes.borrow().len();
    let with_placeholder = |plan: &dyn Fn() -> Result<PlannedBody, PlanError>| {
        qcx.ctes
            .borrow_mut()
            .push((name.to_string(), placeholder.clone(), alias_columns.clone()));
        let planned = plan();
        qcx.ctes.borrow_mut().truncate(depth);
        planned
    };
    let query = &cte.query;
    let union = match &*query.body {
        ast::SetExpr::SetOperation {
            op: ast::SetOperator::Union,
            set_quantifier,
            left,
            right,
        } => Some((set_quantifier, left, right)),
        _ => None,
    };
    let Some((quantifier, left, right)) = union else {
        // Not `a UNION b`: recursive only if it reads itself, which is an error.
        let planned = with_placeholder(&|| {
            let (expr, names) = plan_nested_query(qcx, query)?;
            Ok(PlannedBody {
                expr,
                unknown: vec![None; names.len()],
                names,
            })
        });
        return match planned {
            Ok(body) if reads(&body.expr, id) == 0 => Ok(None),
            Ok(_) => Err(not_of_the_form(name)),
            Err(e) if references_placeholder(&e) => Err(not_of_the_form(name)),
            Err(e) => Err(e),
        };
    };
    let (non_recursive, recursive) = (left, right);
    let base = with_placeholder(&|| plan_set_expr(qcx, non_recursive));
    let base = match base {
        Ok(base) if reads(&base.expr, id) == 0 => base,
        Ok(_) => return Err(in_non_recursive_term(name)),
        Err(e) => return Err(e),
    };
    let base_expr = resolve_unknowns(qcx, base.expr, &base.unknown, &[])?;
    let names = alias_names(&cte.alias, name, base.names)?;
    let base_types = base_expr.typ().column_types;
    let typ = RelationType::new(
        base_types
            .iter()
            .map(|c| c.scalar_type.nullable(true))
            .collect(),
    );
    // The recursive term reads the binding at the non-recursive term's types.
    let get = HirRelationExpr::GetRec {
        id,
        typ: typ.clone(),
        name: name.to_string(),
    };
    qcx.ctes
        .borrow_mut()
        .push((name.to_string(), get, names.clone()));
    let step = plan_set_expr(qcx, recursive);
    qcx.ctes.borrow_mut().truncate(depth);
    let step = step?;
    if reads(&step.expr, id) == 0 {
        return Ok(None);
    }
    if query.order_by.is_some() {
        return Err(PlanError::FeatureNotSupported(
            "ORDER BY in a recursive query is not implemented".into(),
        ));
    }
    if let Some(ast::LimitClause::LimitOffset { limit, offset, .. }) = &query.limit_clause {
        if offset.is_some() {
            return Err(PlanError::FeatureNotSupported(
                "OFFSET in a recursive query is not implemented".into(),
            ));
        }
        if limit.is_some() {
            return Err(PlanError::FeatureNotSupported(
                "LIMIT in a recursive query is not implemented".into(),
            ));
        }
    }
    check_recursive_term(&step.expr, id, name)?;
    if step.names.len() != names.len() {
        return Err(PlanError::Syntax(
            "each UNION query must have the same number of columns".into(),
        ));
    }
    // PostgreSQL types the whole UNION; it must come out at the non-recursive
    // term's types.
    let targets: Vec<Option<ScalarType>> = typ
        .column_types
        .iter()
        .map(|c| Some(c.scalar_type))
        .collect();
    let step_expr = resolve_unknowns(qcx, step.expr, &step.unknown, &targets)?;
    let step_types = step_expr.typ().column_types;
    let mut casts = Vec::new();
    for (i, (b, s)) in base_types.iter().zip(&step_types).enumerate() {
        let (b, s) = (b.scalar_type, s.scalar_type);
        let overall = common_type(b, s).ok_or_else(|| {
            PlanError::DatatypeMismatch(format!("UNION types {b} and {s} cannot be matched"))
        })?;
        if overall != b {
            return Err(PlanError::DatatypeMismatch(format!(
                "recursive query \"{name}\" column {} has type {b} in non-recursive term but type {overall} overall",
                i + 1
            )));
        }
        casts.push(cast_to(HirScalarExpr::column(i), s, b));
    }
    let n = step_types.len();
    let step_expr = HirRelationExpr::Project {
        input: Box::new(HirRelationExpr::Map {
            input: Box::new(step_expr),
            scalars: casts,
        }),
        outputs: (n..2 * n).collect(),
    };
    let union = HirRelationExpr::Union {
        base: Box::new(base_expr),
        inputs: vec![step_expr],
    };
    let value = match quantifier {
        ast::SetQuantifier::All => union,
        _ => HirRelationExpr::Distinct {
            input: Box::new(union),
        },
    };
    check_uncorrelated(&value)?;
    Ok(Some((
        RecBinding {
            id,
            name: name.to_string(),
            value,
        },
        names,
    )))
}

fn not_of_the_form(name: &str) -> PlanError {
    PlanError::InvalidRecursion(format!(
        "recursive query \"{name}\" does not have the form non-recursive-term UNION [ALL] recursive-term"
    ))
}

fn in_non_recursive_term(name: &str) -> PlanError {
    PlanError::InvalidRecursion(format!(
        "recursive reference to query \"{name}\" must not appear within its non-recursive term"
    ))
}

/// Whether planning failed on a column of the column-less placeholder.
fn references_placeholder(e: &PlanError) -> bool {
    matches!(
        e,
        PlanError::UnknownColumn(_) | PlanError::UnknownQualifiedColumn { .. }
    )
}

/// How many times `expr` reads binding `id` (in subqueries too).
fn reads(expr: &HirRelationExpr, id: LocalId) -> usize {
    let mut n = 0;
    visit(expr, &mut Context::default(), &mut |e, _| {
        if matches!(e, HirRelationExpr::GetRec { id: i, .. } if *i == id) {
            n += 1;
        }
    });
    n
}

/// Where a relation sits in the recursive term, for PostgreSQL's restrictions.
#[derive(Clone, Copy, Default)]
struct Context {
    subquery: bool,
    outer_join: bool,
    aggregate: bool,
    except_or_intersect: bool,
}

fn visit(expr: &HirRelationExpr, cx: &mut Context, f: &mut dyn FnMut(&HirRelationExpr, Context)) {
    f(expr, *cx);
    let saved = *cx;
    let child = |e: &HirRelationExpr, cx: Context, f: &mut dyn FnMut(&HirRelationExpr, Context)| {
        visit(e, &mut cx.clone(), f)
    };
    let scalar_subqueries = |s: &HirScalarExpr, out: &mut Vec<HirRelationExpr>| {
        fn go(s: &HirScalarExpr, out: &mut Vec<HirRelationExpr>) {
            match s {
                HirScalarExpr::Exists(r) | HirScalarExpr::Select(r) => out.push((**r).clone()),
                HirScalarExpr::CallUnary { expr, .. } => go(expr, out),
                HirScalarExpr::CallBinary { expr1, expr2, .. } => {
                    go(expr1, out);
                    go(expr2, out);
                }
                HirScalarExpr::CallVariadic { exprs, .. } => exprs.iter().for_each(|e| go(e, out)),
                HirScalarExpr::If { cond, then, els } => {
                    go(cond, out);
                    go(then, out);
                    go(els, out);
                }
                HirScalarExpr::Column(_)
                | HirScalarExpr::OuterColumn { .. }
                | HirScalarExpr::Literal(..) => {}
            }
        }
        go(s, out)
    };
    let mut subqueries = Vec::new();
    match expr {
        HirRelationExpr::Map { scalars, .. } => scalars
            .iter()
            .for_each(|s| scalar_subqueries(s, &mut subqueries)),
        HirRelationExpr::Filter { predicates, .. } => predicates
            .iter()
            .for_each(|s| scalar_subqueries(s, &mut subqueries)),
        HirRelationExpr::FlatMap { exprs, .. } => exprs
            .iter()
            .for_each(|s| scalar_subqueries(s, &mut subqueries)),
        HirRelationExpr::Join { on, .. } | HirRelationExpr::LateralJoin { on, .. } => {
            scalar_subqueries(on, &mut subqueries)
        }
        HirRelationExpr::Reduce { aggregates, .. } => aggregates
            .iter()
            .for_each(|a| scalar_subqueries(&a.expr, &mut subqueries)),
        _ => {}
    }
    for s in &subqueries {
        child(
            s,
            Context {
                subquery: true,
                ..saved
            },
            f,
        );
    }
    match expr {
        HirRelationExpr::Join {
            left, right, kind, ..
        }
        | HirRelationExpr::LateralJoin {
            left, right, kind, ..
        } => {
            let (l, r) = match kind {
                JoinKind::Inner => (false, false),
                JoinKind::LeftOuter => (false, true),
                JoinKind::RightOuter => (true, false),
                JoinKind::FullOuter => (true, true),
            };
            let lateral = matches!(expr, HirRelationExpr::LateralJoin { .. });
            child(
                left,
                Context {
                    outer_join: saved.outer_join || l,
                    ..saved
                },
                f,
            );
            child(
                right,
                Context {
                    outer_join: saved.outer_join || r,
                    subquery: saved.subquery || lateral,
                    ..saved
                },
                f,
            );
        }
        HirRelationExpr::Reduce {
            input, aggregates, ..
        } => child(
            input,
            Context {
                aggregate: saved.aggregate || !aggregates.is_empty(),
                ..saved
            },
            f,
        ),
        HirRelationExpr::Threshold { input } => child(
            input,
            Context {
                except_or_intersect: true,
                ..saved
            },
            f,
        ),
        other => {
            for c in other.children() {
                child(c, saved, f);
            }
        }
    }
}

/// PostgreSQL's rules for the recursive term (42P19): it reads the binding once, and
/// not in a subquery, an outer join's nullable side, under an aggregate or in
/// EXCEPT / INTERSECT.
fn check_recursive_term(step: &HirRelationExpr, id: LocalId, name: &str) -> Result<(), PlanError> {
    let mut found: Vec<Context> = Vec::new();
    visit(step, &mut Context::default(), &mut |e, cx| {
        if matches!(e, HirRelationExpr::GetRec { id: i, .. } if *i == id) {
            found.push(cx);
        }
    });
    let reference = |what: &str| {
        PlanError::InvalidRecursion(format!(
            "recursive reference to query \"{name}\" must not appear {what}"
        ))
    };
    if found.len() > 1 {
        return Err(reference("more than once"));
    }
    for cx in found {
        if cx.subquery {
            return Err(reference("within a subquery"));
        }
        if cx.outer_join {
            return Err(reference("within an outer join"));
        }
        if cx.except_or_intersect {
            return Err(reference("within EXCEPT or INTERSECT"));
        }
        if cx.aggregate {
            return Err(PlanError::InvalidRecursion(
                "aggregate functions are not allowed in a recursive query's recursive term".into(),
            ));
        }
    }
    Ok(())
}
