//! Set-returning functions (`generate_series`) in FROM and in the select list.
//!
//! In FROM, a function call sees the FROM items before it, as PostgreSQL's function
//! calls in FROM are implicitly LATERAL: it becomes a [`HirRelationExpr::FlatMap`]
//! over the relation of those items (or over the one-row relation when it comes
//! first). In the select list, PostgreSQL evaluates set-returning functions after
//! grouping and windows and before DISTINCT and ORDER BY, one output row per value,
//! several functions in lockstep: a FlatMap (of a `TableFunc::Zip` for several) over
//! the relation the select list reads, whose columns the select list then reads
//! through the [`ExprContext`]'s substitutions.

use expr::TableFunc;

use super::*;

/// Whether `e` is a call of a set-returning function (without OVER).
pub(super) fn is_srf_call(e: &ast::Expr) -> bool {
    match e {
        ast::Expr::Function(f) if f.over.is_none() => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| set_returning_function(&normalize_ident(i)))
            .unwrap_or(false),
        _ => false,
    }
}

/// Plans the call of a set-returning function `name(args)` in `ecx`: the table
/// function and its argument expressions.
pub(super) fn plan_table_function(
    ecx: &ExprContext,
    name: &str,
    args: &[&ast::Expr],
) -> Result<(TableFunc, Vec<HirScalarExpr>), PlanError> {
    match name {
        "generate_series" => plan_generate_series(ecx, args),
        "unnest" => plan_unnest(ecx, args),
        "jsonb_array_elements"
        | "jsonb_array_elements_text"
        | "jsonb_each"
        | "jsonb_each_text"
        | "jsonb_object_keys" => {
            let [arg] = args else {
                return Err(PlanError::UnknownFunction(format!(
                    "{name} with {} arguments",
                    args.len()
                )));
            };
            let planned = plan_expr(ecx, arg, Some(ScalarType::Jsonb))?;
            let t = planned.typ(ecx.types).scalar_type;
            if t != ScalarType::Jsonb && !is_null_literal(&planned) {
                return Err(PlanError::UnknownFunction(format!("{name}({t})")));
            }
            let func = match name {
                "jsonb_array_elements" => TableFunc::JsonbArrayElements { text: false },
                "jsonb_array_elements_text" => TableFunc::JsonbArrayElements { text: true },
                "jsonb_each" => TableFunc::JsonbEach { text: false },
                "jsonb_each_text" => TableFunc::JsonbEach { text: true },
                _ => TableFunc::JsonbObjectKeys,
            };
            Ok((func, vec![cast_to(planned, t, ScalarType::Jsonb)]))
        }
        other => Err(PlanError::unsupported(format!(
            "set-returning function {other}"
        ))),
    }
}

/// `generate_series(start, stop [, step])` over integer, bigint and numeric, and
/// `generate_series(start, stop, step interval)` over timestamp and timestamptz,
/// resolved as PostgreSQL resolves the overloads: the narrowest type all arguments
/// convert to, untyped literals taking it; a date is a timestamptz.
fn plan_generate_series(
    ecx: &ExprContext,
    args: &[&ast::Expr],
) -> Result<(TableFunc, Vec<HirScalarExpr>), PlanError> {
    let mut planned = Vec::new();
    for a in args {
        planned.push(plan_expr(ecx, a, None)?);
    }
    let unknown: Vec<bool> = args.iter().map(|a| is_unknown(ecx, a)).collect();
    let types: Vec<ScalarType> = planned
        .iter()
        .map(|p| p.typ(ecx.types).scalar_type)
        .collect();
    let signature = || {
        let names: Vec<String> = types
            .iter()
            .zip(&unknown)
            .map(|(t, u)| if *u { "unknown".into() } else { t.to_string() })
            .collect();
        format!("generate_series({})", names.join(", "))
    };
    let no_such = || PlanError::UnknownFunction(signature());
    if !(2..=3).contains(&args.len()) {
        return Err(no_such());
    }
    let typed = |i: usize| (!unknown[i]).then_some(types[i]);
    let datetime = (0..args.len()).any(|i| {
        matches!(
            typed(i),
            Some(ScalarType::Timestamp | ScalarType::TimestampTz | ScalarType::Date)
        )
    }) || (args.len() == 3 && typed(2) == Some(ScalarType::Interval));
    // Converts argument i to `target`, planning an untyped literal at that type.
    let convert = |i: usize, target: ScalarType| -> Result<HirScalarExpr, PlanError> {
        if unknown[i] {
            plan_expr(ecx, args[i], Some(target))
        } else {
            Ok(cast_to(planned[i].clone(), types[i], target))
        }
    };
    if datetime {
        if args.len() != 3 {
            return Err(no_such());
        }
        let bounds: Vec<ScalarType> = (0..2).filter_map(typed).collect();
        if bounds.iter().any(|t| {
            !matches!(
                t,
                ScalarType::Timestamp | ScalarType::TimestampTz | ScalarType::Date
            )
        }) || typed(2).is_some_and(|t| t != ScalarType::Interval)
        {
            return Err(no_such());
        }
        // The overload with more exact matches wins; on a tie (or only dates and
        // untyped literals), the preferred type timestamptz.
        let target = if bounds.contains(&ScalarType::Timestamp)
            && !bounds.contains(&ScalarType::TimestampTz)
        {
            ScalarType::Timestamp
        } else {
            ScalarType::TimestampTz
        };
        let exprs = vec![
            convert(0, target)?,
            convert(1, target)?,
            convert(2, ScalarType::Interval)?,
        ];
        let func = if target == ScalarType::Timestamp {
            TableFunc::GenerateSeriesTimestamp
        } else {
            TableFunc::GenerateSeriesTimestampTz
        };
        return Ok((func, exprs));
    }
    let mut target: Option<ScalarType> = None;
    for i in 0..args.len() {
        let Some(t) = typed(i) else { continue };
        if !matches!(
            t,
            ScalarType::Int16 | ScalarType::Int32 | ScalarType::Int64 | ScalarType::Numeric
        ) {
            return Err(no_such());
        }
        target = Some(match target {
            None => t,
            Some(prev) => common_type(prev, t).ok_or_else(no_such)?,
        });
    }
    let target = match target {
        // Every argument untyped or smallint: PostgreSQL cannot choose between the
        // integer, bigint and numeric overloads either.
        None | Some(ScalarType::Int16) => return Err(PlanError::AmbiguousFunction(signature())),
        Some(t) => t,
    };
    let mut exprs = (0..args.len())
        .map(|i| convert(i, target))
        .collect::<Result<Vec<_>, _>>()?;
    if exprs.len() == 2 {
        let one = match target {
            ScalarType::Int32 => Datum::Int32(1),
            ScalarType::Int64 => Datum::Int64(1),
            _ => Datum::Numeric(1.into()),
        };
        exprs.push(HirScalarExpr::literal(one, target));
    }
    let func = match target {
        ScalarType::Int32 => TableFunc::GenerateSeriesInt32,
        ScalarType::Int64 => TableFunc::GenerateSeriesInt64,
        _ => TableFunc::GenerateSeriesNumeric,
    };
    Ok((func, exprs))
}

/// `unnest(anyarray)`, and in FROM `unnest(anyarray, anyarray, ...)`: the arrays'
/// elements side by side, the shorter arrays padded with NULLs.
fn plan_unnest(
    ecx: &ExprContext,
    args: &[&ast::Expr],
) -> Result<(TableFunc, Vec<HirScalarExpr>), PlanError> {
    let mut funcs = Vec::new();
    let mut exprs = Vec::new();
    let mut names = Vec::new();
    for a in args {
        let planned = plan_expr(ecx, a, None)?;
        let t = planned.typ(ecx.types).scalar_type;
        names.push(if is_unknown(ecx, a) {
            "unknown".to_string()
        } else {
            t.to_string()
        });
        match t.element_type() {
            Some(elem_type) if !is_unknown(ecx, a) => {
                funcs.push(TableFunc::Unnest { elem_type });
                exprs.push(planned);
            }
            _ => funcs.clear(),
        }
    }
    if funcs.len() != args.len() || args.is_empty() {
        let signature = format!("unnest({})", names.join(", "));
        return Err(if args.len() == 1 && names[0] == "unknown" {
            PlanError::AmbiguousFunction(signature)
        } else {
            PlanError::UnknownFunction(signature)
        });
    }
    let func = if funcs.len() == 1 {
        funcs.pop().expect("one function")
    } else {
        TableFunc::Zip(funcs)
    };
    Ok((func, exprs))
}

/// A function call as a FROM item: its name, arguments, alias and WITH ORDINALITY.
pub(super) struct FunctionItem<'a> {
    name: String,
    args: Vec<&'a ast::Expr>,
    alias: Option<&'a ast::TableAlias>,
    with_ordinality: bool,
}

/// The FROM item as a function call, if it is one.
pub(super) fn function_item(
    factor: &ast::TableFactor,
) -> Result<Option<FunctionItem<'_>>, PlanError> {
    let (name, args, alias, with_ordinality) = match factor {
        ast::TableFactor::Table {
            name,
            args: Some(args),
            alias,
            with_ordinality,
            ..
        } => (name, &args.args, alias, *with_ordinality),
        ast::TableFactor::Function {
            name, args, alias, ..
        } => (name, args, alias, false),
        // sqlparser reads `unnest(...)` in FROM as a node of its own.
        ast::TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset,
            with_ordinality,
            ..
        } => {
            if *with_offset {
                return Err(PlanError::unsupported("UNNEST ... WITH OFFSET"));
            }
            return Ok(Some(FunctionItem {
                name: "unnest".into(),
                args: array_exprs.iter().collect(),
                alias: alias.as_ref(),
                with_ordinality: *with_ordinality,
            }));
        }
        _ => return Ok(None),
    };
    let name = normalize_object_name(name)?;
    let name = name.rsplit('.').next().unwrap_or(&name).to_string();
    let mut exprs = Vec::new();
    for a in args {
        match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => exprs.push(e),
            _ => {
                return Err(PlanError::unsupported(format!(
                    "this argument form of {name}"
                )))
            }
        }
    }
    Ok(Some(FunctionItem {
        name,
        args: exprs,
        alias: alias.as_ref(),
        with_ordinality,
    }))
}

/// Plans a function call in FROM over `left`, the relation of the FROM items before
/// it (their columns are visible to its arguments), or over the one-row relation.
/// Returns the relation (left's columns, then the function's) and its scope.
pub(super) fn plan_function_item(
    qcx: &QueryContext,
    item: &FunctionItem,
    left: Option<(HirRelationExpr, Scope)>,
) -> Result<(HirRelationExpr, Scope), PlanError> {
    if let Some(query) = window_query(item)? {
        return plan_window_item(qcx, item, &query, left);
    }
    if !set_returning_function(&item.name) {
        return Err(PlanError::unsupported(format!(
            "function {} in FROM",
            item.name
        )));
    }
    let (input, left_scope) = left.unwrap_or_else(|| {
        (
            HirRelationExpr::Constant {
                rows: vec![Row::default()],
                typ: RelationType::new(vec![]),
            },
            Scope::default(),
        )
    });
    let types = input.typ().column_types;
    let ecx = ExprContext::new(qcx, &left_scope, &types).in_clause("functions in FROM");
    for a in &item.args {
        let mut nested = Vec::new();
        collect_calls(a, &is_srf_call, false, &mut nested);
        if !nested.is_empty() {
            return Err(PlanError::FeatureNotSupported(
                "set-returning functions must appear at top level of FROM".into(),
            ));
        }
    }
    let (func, exprs) = plan_table_function(&ecx, &item.name, &item.args)?;
    let func = if item.with_ordinality {
        TableFunc::WithOrdinality(Box::new(func))
    } else {
        func
    };
    // A function returning one column names it after the alias (or the function).
    let table = item
        .alias
        .map(|a| normalize_ident(&a.name))
        .unwrap_or_else(|| item.name.clone());
    // Functions with named output columns keep those names; the rest are named after
    // the alias or the function.
    let mut names: Vec<String> = match item.name.as_str() {
        // PostgreSQL names the column `value` and reads the alias alone as the whole
        // row, which for one column is that column: naming the column after the
        // alias gives the alias that meaning (but not `alias.value`).
        "jsonb_array_elements" | "jsonb_array_elements_text" if item.alias.is_none() => {
            vec!["value".into()]
        }
        "jsonb_each" | "jsonb_each_text" => vec!["key".into(), "value".into()],
        "unnest" if item.args.len() > 1 => vec!["unnest".into(); item.args.len()],
        _ => vec![table.clone()],
    };
    if item.with_ordinality {
        names.push("ordinality".into());
    }
    if let Some(alias) = item.alias {
        if alias.columns.len() > names.len() {
            return Err(PlanError::Syntax(format!(
                "too many column aliases specified for function {}",
                item.name
            )));
        }
        for (i, c) in alias.columns.iter().enumerate() {
            names[i] = normalize_ident(&c.name);
        }
    }
    let scope = Scope::from_names(Some(&table), &names);
    left_scope.check_disjoint(&scope)?;
    Ok((
        HirRelationExpr::FlatMap {
            input: Box::new(input),
            func,
            exprs,
        },
        left_scope.concat(scope),
    ))
}

/// The query a windowing function in FROM stands for, if `item` is one:
///
/// - `TUMBLE(relation, time_column, size [, origin])`: the relation's rows, each with
///   the fixed window `[window_start, window_end)` of length `size` that holds its
///   time, windows starting at `origin` (default the epoch) plus multiples of `size`.
/// - `HOP(relation, time_column, hop, size [, origin])`: each row once per sliding
///   window holding its time: windows of length `size` starting every `hop` (so
///   `size / hop` windows per row when `hop` divides `size`; none when the row falls
///   in a gap between windows shorter than `hop`).
///
/// A row whose time is NULL is in no window, so both drop it (as Flink's window
/// table functions and RisingWave's HOP do).
///
/// Both are `date_bin` underneath (RisingWave's and Flink's table-valued windows, in
/// SQL Freshet already maintains): `window_start` and `window_end` are expressions of
/// the row's time, so a temporal filter on `window_end` bounds a windowed view's state.
///
/// The query is a fixed template (see [`window_template`]) with the caller's
/// relation name and argument expressions put in as AST nodes, never as text: they
/// keep their spans in the statement, so that a view's definition records where the
/// relation was named and names it fully (see `plan_view_definition`), and the
/// template itself names no catalog item.
fn window_query(item: &FunctionItem) -> Result<Option<ast::Query>, PlanError> {
    let (hop, arity) = match item.name.as_str() {
        "tumble" => (false, 3..=4),
        "hop" => (true, 4..=5),
        _ => return Ok(None),
    };
    if item.with_ordinality {
        return Err(PlanError::unsupported(format!(
            "{} WITH ORDINALITY",
            item.name.to_uppercase()
        )));
    }
    let upper = item.name.to_uppercase();
    if !arity.contains(&item.args.len()) {
        return Err(PlanError::UnknownFunction(format!(
            "{} with {} arguments (expected relation, time column, {}[, origin])",
            item.name,
            item.args.len(),
            if hop { "hop, size" } else { "size" }
        )));
    }
    let relation: Vec<ast::Ident> = match item.args[0] {
        ast::Expr::Identifier(i) => vec![i.clone()],
        ast::Expr::CompoundIdentifier(parts) => parts.clone(),
        other => {
            return Err(PlanError::Syntax(format!(
                "the first argument of {upper} must name a table or view, not {other}"
            )))
        }
    };
    let column = match item.args[1] {
        ast::Expr::Identifier(i) => i.clone(),
        other => {
            return Err(PlanError::Syntax(format!(
                "the second argument of {upper} must name a column, not {other}"
            )))
        }
    };
    let (hop_arg, size, origin) = if hop {
        (Some(item.args[2]), item.args[3], item.args.get(4))
    } else {
        (None, item.args[2], item.args.get(3))
    };
    // The templates are fixed text: a unit test parses each.
    let mut query = crate::parse::parse_query(&window_template(hop, origin.is_some()))
        .expect("the window templates parse");
    let args = WindowArgs {
        relation: ast::ObjectName(
            relation
                .into_iter()
                .map(ast::ObjectNamePart::Identifier)
                .collect(),
        ),
        column,
        hop: hop_arg,
        size,
        origin: origin.copied(),
    };
    args.fill_query(&mut query);
    Ok(Some(query))
}

/// Placeholders in the window templates, each replaced by one of [`WindowArgs`].
const RELATION: &str = "__freshet_relation";
const COLUMN: &str = "__freshet_column";
const HOP: &str = "__freshet_hop";
const SIZE: &str = "__freshet_size";
const ORIGIN: &str = "__freshet_origin";

/// The text of the query behind TUMBLE (or HOP, when `hop`), with placeholders for
/// the arguments; without an origin, windows start at the epoch (an untyped literal,
/// so it takes the time column's type, as a written origin of unknown type does).
fn window_template(hop: bool, has_origin: bool) -> String {
    let origin = if has_origin {
        ORIGIN
    } else {
        "'1970-01-01 00:00:00+00'"
    };
    if hop {
        // The windows holding t start at the multiples of the hop in (t - size, t].
        format!(
            "SELECT __freshet_r.*, __freshet_w AS window_start, \
                    __freshet_w + {SIZE} AS window_end \
             FROM {RELATION} AS __freshet_r, generate_series( \
                 date_bin({HOP}, __freshet_r.{COLUMN} - {SIZE}, {origin}) + {HOP}, \
                 date_bin({HOP}, __freshet_r.{COLUMN}, {origin}), {HOP}) AS __freshet_w \
             WHERE __freshet_r.{COLUMN} IS NOT NULL"
        )
    } else {
        format!(
            "SELECT *, date_bin({SIZE}, {COLUMN}, {origin}) AS window_start, \
                    date_bin({SIZE}, {COLUMN}, {origin}) + {SIZE} AS window_end \
             FROM {RELATION} WHERE {COLUMN} IS NOT NULL"
        )
    }
}

/// The arguments of a windowing function, as the statement wrote them.
struct WindowArgs<'a> {
    relation: ast::ObjectName,
    column: ast::Ident,
    hop: Option<&'a ast::Expr>,
    size: &'a ast::Expr,
    origin: Option<&'a ast::Expr>,
}

impl WindowArgs<'_> {
    /// Replaces the placeholders in a template query (of the shapes
    /// [`window_template`] writes) by the arguments.
    fn fill_query(&self, query: &mut ast::Query) {
        let ast::SetExpr::Select(select) = query.body.as_mut() else {
            return;
        };
        for item in &mut select.projection {
            match item {
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => self.fill_expr(e),
                ast::SelectItem::QualifiedWildcard(..) | ast::SelectItem::Wildcard(_) => {}
            }
        }
        for twj in &mut select.from {
            match &mut twj.relation {
                ast::TableFactor::Table { name, args, .. } => {
                    if is_placeholder_name(name, RELATION) {
                        *name = self.relation.clone();
                    }
                    for a in args.iter_mut().flat_map(|a| a.args.iter_mut()) {
                        self.fill_arg(a);
                    }
                }
                ast::TableFactor::Function { args, .. } => {
                    for a in args {
                        self.fill_arg(a);
                    }
                }
                _ => {}
            }
        }
        if let Some(e) = &mut select.selection {
            self.fill_expr(e);
        }
    }

    fn fill_arg(&self, arg: &mut ast::FunctionArg) {
        if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = arg {
            self.fill_expr(e);
        }
    }

    fn fill_expr(&self, e: &mut ast::Expr) {
        match e {
            ast::Expr::Identifier(i) => {
                let argument = match i.value.as_str() {
                    COLUMN => {
                        *i = self.column.clone();
                        return;
                    }
                    HOP => self.hop,
                    SIZE => Some(self.size),
                    ORIGIN => self.origin,
                    _ => None,
                };
                // In parentheses: the argument is an expression of its own.
                if let Some(argument) = argument {
                    *e = ast::Expr::Nested(Box::new(argument.clone()));
                }
            }
            ast::Expr::CompoundIdentifier(parts) => {
                for part in parts {
                    if part.value == COLUMN {
                        *part = self.column.clone();
                    }
                }
            }
            ast::Expr::BinaryOp { left, right, .. } => {
                self.fill_expr(left);
                self.fill_expr(right);
            }
            ast::Expr::Nested(inner) | ast::Expr::IsNotNull(inner) => self.fill_expr(inner),
            ast::Expr::Function(f) => {
                if let ast::FunctionArguments::List(list) = &mut f.args {
                    for a in &mut list.args {
                        self.fill_arg(a);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether `name` is the one-part name `placeholder`.
fn is_placeholder_name(name: &ast::ObjectName, placeholder: &str) -> bool {
    matches!(
        name.0.as_slice(),
        [ast::ObjectNamePart::Identifier(i)] if i.value == placeholder
    )
}

/// Plans a windowing function (see [`window_query`]) as a FROM item: its relation,
/// cross joined with `left` when FROM items come before it.
fn plan_window_item(
    qcx: &QueryContext,
    item: &FunctionItem,
    query: &ast::Query,
    left: Option<(HirRelationExpr, Scope)>,
) -> Result<(HirRelationExpr, Scope), PlanError> {
    let (expr, mut names) = plan_nested_query(qcx, query)?;
    let table = match item.alias {
        Some(alias) => {
            if alias.columns.len() > names.len() {
                return Err(PlanError::Syntax(format!(
                    "too many column aliases specified for function {}",
                    item.name
                )));
            }
            for (i, c) in alias.columns.iter().enumerate() {
                names[i] = normalize_ident(&c.name);
            }
            normalize_ident(&alias.name)
        }
        None => item.name.clone(),
    };
    let scope = Scope::from_names(Some(&table), &names);
    let Some((left, left_scope)) = left else {
        return Ok((expr, scope));
    };
    left_scope.check_disjoint(&scope)?;
    Ok((
        HirRelationExpr::Join {
            left: Box::new(left),
            right: Box::new(expr),
            on: HirScalarExpr::literal(Datum::True, ScalarType::Bool),
            kind: JoinKind::Inner,
        },
        left_scope.concat(scope),
    ))
}

/// Plans the set-returning function calls of a select list (`calls`, distinct ASTs)
/// over `input`, whose columns `ecx` describes. Returns the relation with the calls'
/// columns appended and each call's AST with its column.
pub(super) fn plan_select_list_srfs(
    ecx: &ExprContext,
    calls: &[ast::Expr],
    input: HirRelationExpr,
) -> Result<(HirRelationExpr, Vec<(ast::Expr, usize)>), PlanError> {
    let mut funcs = Vec::new();
    let mut all_exprs = Vec::new();
    let mut substitutions = Vec::new();
    let mut column = ecx.types.len();
    for call in calls {
        let ast::Expr::Function(f) = call else {
            unreachable!("set-returning function calls are function calls")
        };
        let name = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(normalize_ident)
            .unwrap_or_default();
        let (args, _, _) = function_args(f)?;
        for a in &args {
            let mut nested = Vec::new();
            collect_calls(a, &is_srf_call, false, &mut nested);
            if !nested.is_empty() {
                return Err(PlanError::unsupported(
                    "set-returning functions in the arguments of set-returning functions",
                ));
            }
        }
        let (func, exprs) = plan_table_function(ecx, &name, &args)?;
        if func.output_types().len() > 1 {
            // PostgreSQL returns one record per row; Freshet has no record type.
            return Err(PlanError::unsupported(format!(
                "{name} in the select list (it returns records); call it in FROM"
            )));
        }
        substitutions.push((call.clone(), column));
        column += func.output_types().len();
        funcs.push(func);
        all_exprs.extend(exprs);
    }
    // One function alone, or several in lockstep (the shorter padded with NULLs).
    let func = if funcs.len() == 1 {
        funcs.pop().expect("one function")
    } else {
        TableFunc::Zip(funcs)
    };
    Ok((
        HirRelationExpr::FlatMap {
            input: Box::new(input),
            func,
            exprs: all_exprs,
        },
        substitutions,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use repr::GlobalId;

    use super::*;
    use crate::catalog::ItemKind;
    use crate::parse::parse;
    use crate::statement::{plan, Plan};

    /// `ev (id int, ts timestamptz, v int)` and `dims (id int, name text)`, in
    /// `freshet.public`.
    struct TestCatalog(BTreeMap<String, CatalogItem>);

    impl SqlCatalog for TestCatalog {
        fn resolve(&self, name: &str) -> Option<&CatalogItem> {
            self.0.get(name)
        }
    }

    fn catalog() -> TestCatalog {
        let table = |id, name: &str, desc: RelationDesc| CatalogItem {
            id: GlobalId::User(id),
            name: name.into(),
            kind: ItemKind::Table,
            definition: None,
            on: None,
            defaults: vec![None; desc.arity()],
            typmods: vec![],
            desc,
        };
        let ev = table(
            1,
            "ev",
            RelationDesc::empty()
                .with_column("id", ScalarType::Int32.nullable(true))
                .with_column("ts", ScalarType::TimestampTz.nullable(true))
                .with_column("v", ScalarType::Int32.nullable(true)),
        );
        let dims = table(
            2,
            "dims",
            RelationDesc::empty()
                .with_column("id", ScalarType::Int32.nullable(true))
                .with_column("name", ScalarType::String.nullable(true)),
        );
        TestCatalog(BTreeMap::from([("ev".into(), ev), ("dims".into(), dims)]))
    }

    /// The stored definition of `CREATE VIEW w AS <query>`.
    fn view_sql(query: &str) -> String {
        let sql = format!("CREATE VIEW w AS {query}");
        let stmt = parse(&sql).unwrap().remove(0);
        match plan(&catalog(), &stmt, Params::default()) {
            Ok((Plan::CreateView(view), _)) => view.sql,
            Ok((other, _)) => panic!("{sql}: planned as {other:?}"),
            Err(e) => panic!("{sql}: {e}"),
        }
    }

    #[test]
    fn templates_parse_and_take_every_argument() {
        let size = crate::parse::parse_expr("INTERVAL '1 minute'").unwrap();
        let origin = crate::parse::parse_expr("TIMESTAMPTZ '2024-01-01 00:00:30+00'").unwrap();
        for hop in [false, true] {
            for has_origin in [false, true] {
                let mut query = crate::parse::parse_query(&window_template(hop, has_origin))
                    .unwrap_or_else(|e| panic!("template (hop {hop}, origin {has_origin}): {e}"));
                WindowArgs {
                    relation: ast::ObjectName(vec![ast::ObjectNamePart::Identifier(
                        ast::Ident::new("ev"),
                    )]),
                    column: ast::Ident::new("ts"),
                    hop: hop.then_some(&size),
                    size: &size,
                    origin: has_origin.then_some(&origin),
                }
                .fill_query(&mut query);
                let text = query.to_string();
                for placeholder in [RELATION, COLUMN, HOP, SIZE, ORIGIN] {
                    assert!(!text.contains(placeholder), "{placeholder} left in {text}");
                }
                assert!(text.contains("FROM ev"), "{text}");
                assert_eq!(
                    text.contains("2024-01-01 00:00:30+00"),
                    has_origin,
                    "{text}"
                );
            }
        }
    }

    /// The names a view's definition records while its TUMBLE or HOP is planned are
    /// the statement's own: the relation is named fully, and no other text changes.
    #[test]
    fn view_definitions_name_the_window_relation_fully() {
        let tumble = "SELECT t.id, t.window_start, t.window_end, d.name AS dimension_name, \
                      d.id AS dimension_id, t.v AS value_of_the_event \
                      FROM TUMBLE(ev, ts, INTERVAL '1 minute') AS t JOIN dims AS d ON d.id = t.id \
                      WHERE d.name <> 'a rather long string literal that pushes the text along' \
                      AND t.id IN (SELECT id FROM dims)";
        assert_eq!(
            view_sql(tumble),
            "SELECT t.id, t.window_start, t.window_end, d.name AS dimension_name, \
             d.id AS dimension_id, t.v AS value_of_the_event \
             FROM TUMBLE(freshet.public.ev, ts, INTERVAL '1 minute') AS t \
             JOIN freshet.public.dims AS d ON d.id = t.id \
             WHERE d.name <> 'a rather long string literal that pushes the text along' \
             AND t.id IN (SELECT id FROM freshet.public.dims)"
        );
        let hop = "SELECT t.id, t.window_start, 'some padding text here' AS pad1, \
                   'more padding text' AS pad2 \
                   FROM HOP(public.ev, ts, INTERVAL '30 seconds', INTERVAL '1 minute') AS t \
                   WHERE t.id IN (SELECT id FROM dims)";
        assert_eq!(
            view_sql(hop),
            "SELECT t.id, t.window_start, 'some padding text here' AS pad1, \
             'more padding text' AS pad2 \
             FROM HOP(freshet.public.ev, ts, INTERVAL '30 seconds', INTERVAL '1 minute') AS t \
             WHERE t.id IN (SELECT id FROM freshet.public.dims)"
        );
        // A name inside an argument is the statement's too (planned once per use in
        // the template, replaced once).
        let subquery_origin = "SELECT window_start FROM TUMBLE(ev, ts, INTERVAL '1 hour', \
                               (SELECT min(ts) FROM ev)) AS w";
        assert_eq!(
            view_sql(subquery_origin),
            "SELECT window_start FROM TUMBLE(freshet.public.ev, ts, INTERVAL '1 hour', \
             (SELECT min(ts) FROM freshet.public.ev)) AS w"
        );
    }
}
