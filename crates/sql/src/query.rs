//! Query planning: sqlparser's AST into HIR, with name resolution and typing.
//!
//! The entry points are [`plan_root_query`] (a top-level SELECT, whose ORDER BY and
//! LIMIT become a [`RowSetFinishing`]), [`plan_nested_query`] and
//! [`plan_insert_source`]. Types follow PostgreSQL: untyped literals (NULL, strings)
//! and untyped parameters are of type "unknown" and take the type their context asks
//! for: the other operand, the other CASE/COALESCE branches or VALUES rows, the other
//! side of a UNION, an INSERT's target column; text if nothing asks. Numbers widen
//! along int2 → int4 → int8 → numeric → float4 → float8.

use std::cell::RefCell;

use expr::{AggregateFunc, BinaryFunc, ColumnOrder, RowSetFinishing, UnaryFunc, VariadicFunc};
use repr::strconv;
use repr::{ColumnType, Datum, RelationDesc, RelationType, Row, ScalarType};
use sqlparser::ast;

use crate::catalog::{CatalogItem, ItemKind, NameContext, QualifiedName, SqlCatalog, Typmod};
use crate::error::PlanError;
use crate::hir::{ColumnRef, HirAggregateExpr, HirRelationExpr, HirScalarExpr, JoinKind};

mod recursive;
mod table_func;
mod window;

/// The `$n` parameters of a statement: their types (known or inferred) and values.
///
/// `values` tells describing from executing. Describing (extended protocol Parse +
/// Describe) has no values: each `$n` is planned as a NULL of its type, and untyped
/// ones get the type their context asks for. Executing has a value for each `$n`, and
/// a `$n` without one is an error (42P02): a simple query has none at all, which is
/// what [`Params::default`] is.
#[derive(Clone, Debug)]
pub struct Params {
    pub types: Vec<Option<ScalarType>>,
    /// The values as PostgreSQL text (`None`: NULL) when executing; `None` when
    /// describing.
    pub values: Option<Vec<Option<String>>>,
}

impl Default for Params {
    /// Executing a statement with no parameter values (the simple query protocol).
    fn default() -> Self {
        Params::executing(vec![], vec![])
    }
}

impl Params {
    /// Describing a prepared statement: infer the types of `$n`, no values.
    pub fn describing(types: Vec<Option<ScalarType>>) -> Self {
        Params {
            types,
            values: None,
        }
    }

    /// Executing with these parameter types and values.
    pub fn executing(types: Vec<Option<ScalarType>>, values: Vec<Option<String>>) -> Self {
        Params {
            types,
            values: Some(values),
        }
    }

    /// Whether this is a describe, where `$n` have types but no values.
    pub fn is_describing(&self) -> bool {
        self.values.is_none()
    }
}

/// An aggregate call owned by the query at `depth` (the number of scopes enclosing
/// it), computed as `column` of its grouped relation.
struct OuterAggregate {
    depth: usize,
    call: ast::Expr,
    column: usize,
    typ: ColumnType,
}

/// Registers a query's [`OuterAggregate`]s while its expressions are planned, and
/// forgets them when dropped.
struct OuterAggregates<'q, 'a> {
    qcx: &'q QueryContext<'a>,
    len: usize,
}

impl<'q, 'a> OuterAggregates<'q, 'a> {
    fn register(
        qcx: &'q QueryContext<'a>,
        grouping: &Grouping,
        types: &[ColumnType],
        calls: &[ast::Expr],
    ) -> Self {
        let mut registered = qcx.outer_aggregates.borrow_mut();
        let len = registered.len();
        let depth = qcx.outer.borrow().len();
        for call in calls {
            if let Some(j) = grouping.aggregates.iter().position(|a| a == call) {
                let column = grouping.keys.len() + j;
                registered.push(OuterAggregate {
                    depth,
                    call: call.clone(),
                    column,
                    typ: types[column],
                });
            }
        }
        OuterAggregates { qcx, len }
    }
}

impl Drop for OuterAggregates<'_, '_> {
    fn drop(&mut self) {
        self.qcx.outer_aggregates.borrow_mut().truncate(self.len);
    }
}

/// `call` as an outer column, if an enclosing query owns it.
fn outer_aggregate(qcx: &QueryContext, call: &ast::Expr) -> Option<HirScalarExpr> {
    let depth = qcx.outer.borrow().len();
    qcx.outer_aggregates
        .borrow()
        .iter()
        .rev()
        .find(|a| a.depth < depth && a.call == *call)
        .map(|a| HirScalarExpr::OuterColumn {
            level: depth - a.depth,
            column: a.column,
            typ: a.typ,
        })
}

/// The aggregate calls inside the subqueries of `exprs` that belong to the query
/// whose FROM clause gives `scope`: as in PostgreSQL, an aggregate whose arguments
/// read columns of an enclosing query only (none of its own query's) is computed by
/// that enclosing query, over its rows. Only subqueries directly in `exprs` are
/// looked at, and only their select list, WHERE and HAVING.
fn outer_level_aggregates(
    qcx: &QueryContext,
    scope: &Scope,
    types: &[ColumnType],
    exprs: &[&ast::Expr],
) -> Vec<ast::Expr> {
    fn subqueries<'e>(e: &'e ast::Expr, out: &mut Vec<&'e ast::Query>) {
        match e {
            ast::Expr::Subquery(q) | ast::Expr::Exists { subquery: q, .. } => out.push(q),
            ast::Expr::InSubquery { expr, subquery, .. } => {
                subqueries(expr, out);
                out.push(subquery);
            }
            ast::Expr::AnyOp { left, right, .. } | ast::Expr::AllOp { left, right, .. } => {
                subqueries(left, out);
                subqueries(right, out);
            }
            _ => {
                for x in subexprs(e) {
                    subqueries(x, out);
                }
            }
        }
    }
    /// The column references in `e`, or `None` if it holds a subquery.
    fn references(e: &ast::Expr, out: &mut Vec<(Option<String>, String)>) -> Option<()> {
        match e {
            ast::Expr::Identifier(id) => out.push((None, normalize_ident(id))),
            ast::Expr::CompoundIdentifier(ids) => match ids.as_slice() {
                [t, c] => out.push((Some(normalize_ident(t)), normalize_ident(c))),
                _ => return None,
            },
            ast::Expr::Subquery(_)
            | ast::Expr::Exists { .. }
            | ast::Expr::InSubquery { .. }
            | ast::Expr::AnyOp { .. }
            | ast::Expr::AllOp { .. } => return None,
            _ => {
                for x in subexprs(e) {
                    references(x, out)?;
                }
            }
        }
        Some(())
    }
    let mut queries = Vec::new();
    for e in exprs {
        subqueries(e, &mut queries);
    }
    let mut out = Vec::new();
    for q in queries {
        let ast::SetExpr::Select(select) = &*q.body else {
            continue;
        };
        let mut calls = Vec::new();
        for item in &select.projection {
            if let ast::SelectItem::UnnamedExpr(e)
            | ast::SelectItem::ExprWithAlias { expr: e, .. } = item
            {
                collect_aggregates(e, &mut calls);
            }
        }
        for e in select.selection.iter().chain(select.having.iter()) {
            collect_aggregates(e, &mut calls);
        }
        if calls.is_empty() {
            continue;
        }
        // The subquery's own FROM scope, planned as the subquery will be (and then
        // forgotten: the names it saw).
        let saved_names = qcx.written_names.borrow().clone();
        qcx.outer
            .borrow_mut()
            .push(OuterScope::new(scope.clone(), types.to_vec()));
        let planned = plan_from(qcx, &select.from);
        qcx.outer.borrow_mut().pop();
        *qcx.written_names.borrow_mut() = saved_names;
        let Ok((_, inner)) = planned else {
            continue;
        };
        for call in calls {
            let mut refs = Vec::new();
            if references(&call, &mut refs).is_none() || refs.is_empty() {
                continue;
            }
            let outer_only = refs.iter().all(|(t, c)| {
                matches!(inner.resolve(t.as_deref(), c), Ok(None))
                    && matches!(scope.resolve(t.as_deref(), c), Ok(Some(_)))
            });
            if outer_only && !out.contains(&call) {
                out.push(call);
            }
        }
    }
    out
}

/// What query planning needs from its surroundings.
pub struct QueryContext<'a> {
    pub catalog: &'a dyn SqlCatalog,
    pub params: RefCell<Params>,
    /// The scopes of the queries enclosing the one being planned, outermost first:
    /// what correlated references resolve against.
    outer: RefCell<Vec<OuterScope>>,
    /// Every catalog object the statement names (views included, though their queries
    /// are planned in place): what a view depends on.
    pub referenced: RefCell<std::collections::BTreeSet<repr::GlobalId>>,
    /// The common table expressions in scope (innermost last): name, plan, columns.
    ctes: RefCell<Vec<(String, HirRelationExpr, Vec<String>)>>,
    /// Where unqualified names are looked up: the session's database and search
    /// path, or the view's own schema while a view's query is planned.
    pub names: RefCell<NameContext>,
    /// While a view's definition is planned: each catalog name in its text (by the
    /// span of the name) with the item it resolved to, so that the stored definition
    /// can name every item fully (see [`qualify_names`]).
    written_names: RefCell<Option<Vec<(sqlparser::tokenizer::Span, QualifiedName)>>>,
    /// Aggregates that an enclosing query owns although they are written inside one
    /// of its subqueries (see [`outer_level_aggregates`]): a subquery reads them as
    /// outer columns.
    outer_aggregates: RefCell<Vec<OuterAggregate>>,
    /// Whether the statement calls a volatile function (`gen_random_uuid()`): fine in
    /// a SELECT or an INSERT, which evaluate once, refused where the result is
    /// maintained (see [`refuse_volatile`]).
    pub volatile: std::cell::Cell<bool>,
    /// Whether a view with an index is read from the index (a `Get` of the view)
    /// rather than planned in place: true for one-shot reads, false while a view's
    /// definition or a subscription is planned (maintained dataflows compute views
    /// from their inputs).
    pub read_view_indexes: std::cell::Cell<bool>,
}

/// The error for a volatile function where a result is maintained (`what`): its value
/// would change from one evaluation to the next, so retractions would not match.
pub fn refuse_volatile(qcx: &QueryContext, what: &str) -> Result<(), PlanError> {
    if qcx.volatile.get() {
        return Err(PlanError::unsupported(format!(
            "gen_random_uuid() in {what}"
        )));
    }
    Ok(())
}

impl<'a> QueryContext<'a> {
    pub fn new(catalog: &'a dyn SqlCatalog, params: Params) -> Self {
        QueryContext {
            catalog,
            params: RefCell::new(params),
            outer: RefCell::new(Vec::new()),
            referenced: RefCell::new(Default::default()),
            ctes: RefCell::new(Vec::new()),
            names: RefCell::new(catalog.name_context()),
            written_names: RefCell::new(None),
            outer_aggregates: RefCell::new(Vec::new()),
            volatile: std::cell::Cell::new(false),
            read_view_indexes: std::cell::Cell::new(true),
        }
    }
}

/// The scope of an enclosing query, as its subqueries see it.
struct OuterScope {
    scope: Scope,
    types: Vec<ColumnType>,
    /// For a grouped query (whose `scope` is the grouped relation's): its FROM scope,
    /// with the grouped column that each FROM column is, if it is a group key. Names
    /// resolve here first, as in PostgreSQL, so that a subquery reading a column that
    /// is not a group key fails with 42803 rather than finding the name further out.
    grouped_from: Option<(Scope, Vec<Option<usize>>)>,
}

impl OuterScope {
    fn new(scope: Scope, types: Vec<ColumnType>) -> Self {
        OuterScope {
            scope,
            types,
            grouped_from: None,
        }
    }

    /// The column of this scope that `table.column` names, if any.
    fn resolve(&self, table: Option<&str>, column: &str) -> Result<Option<usize>, PlanError> {
        let Some((from, keys)) = &self.grouped_from else {
            return self.scope.resolve(table, column);
        };
        match from.resolve(table, column)? {
            None => Ok(None),
            Some(c) => match keys[c] {
                Some(k) => Ok(Some(k)),
                // PostgreSQL names the column by its FROM item.
                None => Err(PlanError::UngroupedOuterColumn(
                    match &from.items[c].table {
                        Some(t) => format!("{t}.{column}"),
                        None => column.to_string(),
                    },
                )),
            },
        }
    }
}

/// One column a name can resolve to.
#[derive(Clone, Debug, Default)]
pub struct ScopeItem {
    pub table: Option<String>,
    pub column: String,
    /// Reachable only qualified by its table, and left out of `*` (the right-hand
    /// copy of a `USING` column, unnamed columns).
    pub hidden: bool,
    /// The catalog relation the column comes from, when `table` is an alias of it: a
    /// reference by the relation's own name is then an error of its own.
    pub relation: Option<String>,
}

/// The columns visible to expressions, in column order.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub items: Vec<ScopeItem>,
}

impl Scope {
    fn from_names(table: Option<&str>, names: &[String]) -> Self {
        Scope {
            items: names
                .iter()
                .map(|n| ScopeItem {
                    table: table.map(String::from),
                    column: n.clone(),
                    hidden: false,
                    relation: None,
                })
                .collect(),
        }
    }

    /// The distinct table names the scope exposes, in order.
    fn table_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for t in self.items.iter().filter_map(|i| i.table.as_deref()) {
            if !names.contains(&t) {
                names.push(t);
            }
        }
        names
    }

    /// Checks that `self` and `other`, about to be joined at one FROM level, expose no
    /// table name twice.
    fn check_disjoint(&self, other: &Scope) -> Result<(), PlanError> {
        let mine = self.table_names();
        match other.table_names().into_iter().find(|t| mine.contains(t)) {
            Some(t) => Err(PlanError::DuplicateAlias(t.to_string())),
            None => Ok(()),
        }
    }

    fn concat(mut self, other: Scope) -> Scope {
        self.items.extend(other.items);
        self
    }

    /// The column named `column` (in `table`, if given).
    fn resolve(&self, table: Option<&str>, column: &str) -> Result<Option<usize>, PlanError> {
        if let Some(i) = column
            .strip_prefix(POSITION_MARKER)
            .and_then(|i| i.parse::<usize>().ok())
        {
            if table.is_none() && i < self.items.len() {
                return Ok(Some(i));
            }
        }
        let mut found = None;
        for (i, item) in self.items.iter().enumerate() {
            let visible = match table {
                None => !item.hidden,
                Some(t) => item.table.as_deref() == Some(t),
            };
            if item.column == column && visible {
                if found.is_some() {
                    return Err(PlanError::AmbiguousColumn(column.to_string()));
                }
                found = Some(i);
            }
        }
        Ok(found)
    }
}

/// Starts a column name that [`Scope::resolve`] reads as a position in the scope: how
/// `SELECT *` names a merged `USING` column whose name alone is ambiguous there
/// (`t1, (t2 JOIN t3 USING (a))` has two visible `a`s, and `*` means the merged one).
const POSITION_MARKER: &str = "\u{0}position:";

/// The expression `SELECT *` expands item `i` of `scope` to.
fn wildcard_expr(scope: &Scope, i: usize) -> ast::Expr {
    let item = &scope.items[i];
    if item.table.is_none() && scope.resolve(None, &item.column).is_err() {
        ast::Expr::Identifier(ast::Ident::with_quote('"', format!("{POSITION_MARKER}{i}")))
    } else {
        column_expr(item)
    }
}

/// A planned query: its HIR, output names, and (for the root query) its finishing.
pub struct PlannedQuery {
    pub expr: HirRelationExpr,
    pub desc: RelationDesc,
    pub finishing: RowSetFinishing,
}

/// Normalises an identifier: unquoted names fold to lowercase.
pub fn normalize_ident(ident: &ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The normalised item part of a name of one to three parts (`item`, `schema.item`,
/// `database.schema.item`); [`resolve_item`] and [`plan_item_name`] look at the
/// rest.
pub fn normalize_object_name(name: &ast::ObjectName) -> Result<String, PlanError> {
    Ok(PartialName::from_ast(name)?.item)
}

/// A name as written, each part normalised: what [`resolve_item`] completes from
/// the [`NameContext`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialName {
    pub database: Option<String>,
    pub schema: Option<String>,
    pub item: String,
}

impl PartialName {
    pub fn from_ast(name: &ast::ObjectName) -> Result<PartialName, PlanError> {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| {
                p.as_ident()
                    .map(normalize_ident)
                    .ok_or_else(|| PlanError::unsupported(format!("object name {name}")))
            })
            .collect::<Result<_, _>>()?;
        match <[String; 3]>::try_from(parts) {
            Ok([database, schema, item]) => Ok(PartialName {
                database: Some(database),
                schema: Some(schema),
                item,
            }),
            Err(mut parts) => match parts.len() {
                1 => Ok(PartialName {
                    database: None,
                    schema: None,
                    item: parts.remove(0),
                }),
                2 => Ok(PartialName {
                    database: None,
                    item: parts.remove(1),
                    schema: Some(parts.remove(0)),
                }),
                _ => Err(PlanError::Syntax(format!(
                    "improper qualified name (too many dotted names): {}",
                    parts.join(".")
                ))),
            },
        }
    }
}

/// As PostgreSQL names a relation in messages: `schema.item` when written with a
/// schema, the item alone otherwise (never the database).
impl std::fmt::Display for PartialName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.item),
            None => f.write_str(&self.item),
        }
    }
}

/// The database a name is in: the one it names, which must exist (3D000), or the
/// current one.
fn database_of(qcx: &QueryContext, name: &PartialName) -> Result<String, PlanError> {
    match &name.database {
        Some(database) if !qcx.catalog.databases().contains(database) => {
            Err(PlanError::UnknownDatabase(database.clone()))
        }
        Some(database) => Ok(database.clone()),
        None => Ok(qcx.names.borrow().database.clone()),
    }
}

/// Whether the schema a name gives exists (3D000 if its database does not); true
/// for a name without one. Looking an item up in a missing schema finds nothing, as
/// in PostgreSQL; creating or dropping one there is 3F000.
pub fn schema_exists(qcx: &QueryContext, name: &PartialName) -> Result<bool, PlanError> {
    let database = database_of(qcx, name)?;
    Ok(match &name.schema {
        Some(schema) => qcx.catalog.schemas(&database).contains(schema),
        None => true,
    })
}

/// The item a name refers to, if there is one: in the schema it names, else in the
/// first schema of the search path that has it. A database it names must exist.
pub fn lookup_item<'a>(
    qcx: &QueryContext<'a>,
    name: &PartialName,
) -> Result<Option<(&'a CatalogItem, QualifiedName)>, PlanError> {
    let database = database_of(qcx, name)?;
    let catalog = qcx.catalog;
    match &name.schema {
        Some(schema) => {
            let full = QualifiedName::new(database, schema.clone(), name.item.clone());
            Ok(catalog.item(&full).map(|item| (item, full)))
        }
        None => {
            let search_path = qcx.names.borrow().search_path.clone();
            Ok(search_path.into_iter().find_map(|schema| {
                let full = QualifiedName::new(database.clone(), schema, name.item.clone());
                catalog.item(&full).map(|item| (item, full))
            }))
        }
    }
}

/// The item a name refers to; 42P01 if there is none.
pub fn resolve_item<'a>(
    qcx: &QueryContext<'a>,
    name: &ast::ObjectName,
) -> Result<(&'a CatalogItem, QualifiedName), PlanError> {
    let partial = PartialName::from_ast(name)?;
    lookup_item(qcx, &partial)?.ok_or_else(|| PlanError::UnknownRelation(partial.to_string()))
}

/// The full name of an item about to be created: in the schema the name gives (which
/// must exist), else in the first schema of the search path that exists (3F000 if
/// none does), as PostgreSQL does.
pub fn plan_item_name(
    qcx: &QueryContext,
    name: &ast::ObjectName,
) -> Result<QualifiedName, PlanError> {
    let partial = PartialName::from_ast(name)?;
    let database = database_of(qcx, &partial)?;
    let schemas = qcx.catalog.schemas(&database);
    let schema = match partial.schema {
        Some(schema) if schemas.contains(&schema) => schema,
        Some(schema) => return Err(PlanError::UnknownSchema(schema)),
        None => qcx
            .names
            .borrow()
            .search_path
            .iter()
            .find(|s| schemas.contains(s))
            .cloned()
            .ok_or(PlanError::NoSchemaSelected)?,
    };
    Ok(QualifiedName::new(database, schema, partial.item))
}

/// Plans a view's query for its stored definition: `query` as text in which every
/// catalog item is named fully (`freshet.public.t`), so that the definition means the
/// same whatever the search path of the session that later reads the view. Returns
/// the plan, its column names and the text.
pub fn plan_view_definition(
    qcx: &QueryContext,
    query: &ast::Query,
) -> Result<(HirRelationExpr, Vec<String>, String), PlanError> {
    // Planned from its printed text, so that the spans of names point into it.
    let printed = query.to_string();
    let reparsed = match crate::parse::parse(&printed)?.into_iter().next() {
        Some(crate::parse::ParsedStatement {
            statement: crate::parse::Statement::Sql(stmt),
            ..
        }) => match *stmt {
            ast::Statement::Query(q) => Some(q),
            _ => None,
        },
        _ => None,
    };
    let Some(reparsed) = reparsed else {
        // Not expected: keep the text as written.
        let (expr, names) = plan_nested_query(qcx, query)?;
        return Ok((expr, names, printed));
    };
    let saved = qcx.written_names.replace(Some(Vec::new()));
    let reads_indexes = qcx.read_view_indexes.replace(false);
    let planned = plan_nested_query(qcx, &reparsed);
    qcx.read_view_indexes.set(reads_indexes);
    let written = qcx.written_names.replace(saved).unwrap_or_default();
    let (expr, names) = planned?;
    refuse_volatile(qcx, "a view or materialized view")?;
    Ok((expr, names, qualify_names(&printed, written)))
}

/// `text` with each span replaced by the full name of the item it resolved to.
fn qualify_names(
    text: &str,
    mut written: Vec<(sqlparser::tokenizer::Span, QualifiedName)>,
) -> String {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    // Locations are 1-based lines and columns in characters.
    let offset = |loc: sqlparser::tokenizer::Location| -> Option<usize> {
        let start = *line_starts.get(usize::try_from(loc.line).ok()?.checked_sub(1)?)?;
        let column = usize::try_from(loc.column).ok()?.checked_sub(1)?;
        let line = &text[start..];
        match line.char_indices().nth(column) {
            Some((i, _)) => Some(start + i),
            None if column == line.chars().count() => Some(text.len()),
            None => None,
        }
    };
    written.sort_by_key(|(span, _)| std::cmp::Reverse((span.start.line, span.start.column)));
    let mut out = text.to_string();
    let mut previous_start = usize::MAX;
    for (span, full) in written {
        let (Some(start), Some(end)) = (offset(span.start), offset(span.end)) else {
            continue;
        };
        // The same name planned twice (a CTE used twice) is replaced once.
        if start >= end || end > previous_start {
            continue;
        }
        out.replace_range(start..end, &full.to_sql());
        previous_start = start;
    }
    out
}

/// Notes where a catalog item was named, while a view's definition is planned.
fn note_written_name(qcx: &QueryContext, name: &ast::ObjectName, full: &QualifiedName) {
    let mut written = qcx.written_names.borrow_mut();
    let Some(written) = written.as_mut() else {
        return;
    };
    let idents: Vec<&ast::Ident> = name.0.iter().filter_map(|p| p.as_ident()).collect();
    if let (Some(first), Some(last)) = (idents.first(), idents.last()) {
        if first.span.start.line > 0 && last.span.end.line > 0 {
            written.push((
                sqlparser::tokenizer::Span::new(first.span.start, last.span.end),
                full.clone(),
            ));
        }
    }
}

/// Plans a top-level query: ORDER BY / LIMIT / OFFSET go into the finishing.
pub fn plan_root_query(qcx: &QueryContext, query: &ast::Query) -> Result<PlannedQuery, PlanError> {
    Ok(plan_query(qcx, query, true, false)?.0)
}

/// Plans a query used as a relation (FROM subquery, scalar subquery). Its untyped
/// literal columns are text, as in PostgreSQL.
pub fn plan_nested_query(
    qcx: &QueryContext,
    query: &ast::Query,
) -> Result<(HirRelationExpr, Vec<String>), PlanError> {
    let planned = plan_query(qcx, query, false, false)?.0;
    Ok((planned.expr, planned.desc.names))
}

/// Plans the source of `INSERT ... SELECT`: an untyped literal column of a plain
/// SELECT (`SELECT i, NULL FROM t`) takes the type of its target column,
/// `targets[i]`.
pub fn plan_insert_source(
    qcx: &QueryContext,
    query: &ast::Query,
    targets: &[ScalarType],
) -> Result<(HirRelationExpr, Vec<String>), PlanError> {
    let (planned, unknown) = plan_query(qcx, query, false, true)?;
    let targets: Vec<Option<ScalarType>> = targets.iter().copied().map(Some).collect();
    let expr = resolve_unknowns(qcx, planned.expr, &unknown, &targets)?;
    Ok((expr, planned.desc.names))
}

/// A planned query body: a SELECT, VALUES or set operation, before ORDER BY and LIMIT.
struct PlannedBody {
    expr: HirRelationExpr,
    names: Vec<String>,
    /// For each output column, the untyped literal (NULL, a string, an untyped `$n`) it
    /// is when its type is still open: PostgreSQL's "unknown", which takes the type
    /// its context asks for (the other side of a UNION, an INSERT's target column).
    /// Such a column holds a placeholder until [`resolve_unknowns`] plans it.
    unknown: Vec<Option<ast::Expr>>,
}

/// Plans a query. With `defer_unknown`, the untyped literal columns of a plain SELECT
/// stay open (see [`PlannedBody::unknown`]) and the caller resolves them; otherwise
/// they are text, and the returned list is all `None`.
fn plan_query(
    qcx: &QueryContext,
    query: &ast::Query,
    root: bool,
    defer_unknown: bool,
) -> Result<(PlannedQuery, Vec<Option<ast::Expr>>), PlanError> {
    // WITH: each common table expression is planned once and inlined where named; the
    // names are visible to later CTEs and to the query body, and go out of scope after.
    // Recursive ones (`WITH RECURSIVE`, `WITH MUTUALLY RECURSIVE`) are bound once,
    // in a `LetRec` around the body (see `recursive`).
    let cte_depth = qcx.ctes.borrow().len();
    let planned = plan_ctes(qcx, query).and_then(|recursive| {
        let (mut planned, unknown) = plan_query_body(qcx, query, root, defer_unknown)?;
        match recursive {
            Some(bindings) => {
                let expr = resolve_unknowns(qcx, planned.expr, &unknown, &[])?;
                planned.expr = bindings.wrap(expr);
                Ok((planned, vec![None; unknown.len()]))
            }
            None => Ok((planned, unknown)),
        }
    });
    qcx.ctes.borrow_mut().truncate(cte_depth);
    planned
}

fn plan_ctes(
    qcx: &QueryContext,
    query: &ast::Query,
) -> Result<Option<recursive::RecursiveBindings>, PlanError> {
    let Some(with) = &query.with else {
        return Ok(None);
    };
    if with.recursive {
        return recursive::plan_recursive_ctes(qcx, with).map(Some);
    }
    for cte in &with.cte_tables {
        if cte.from.is_some() {
            return Err(PlanError::unsupported("WITH ... FROM"));
        }
        let name = normalize_ident(&cte.alias.name);
        if with
            .cte_tables
            .iter()
            .filter(|c| normalize_ident(&c.alias.name) == name)
            .count()
            > 1
        {
            return Err(PlanError::DuplicateCte(name));
        }
        let (expr, mut names) = plan_nested_query(qcx, &cte.query)?;
        if !expr.outer_refs().is_empty() {
            return Err(PlanError::unsupported(
                "WITH queries that refer to outer queries",
            ));
        }
        if cte.alias.columns.len() > names.len() {
            return Err(PlanError::Syntax(format!(
                "WITH query \"{name}\" has {} columns available but {} columns specified",
                names.len(),
                cte.alias.columns.len()
            )));
        }
        for (i, c) in cte.alias.columns.iter().enumerate() {
            names[i] = normalize_ident(&c.name);
        }
        qcx.ctes.borrow_mut().push((name, expr, names));
    }
    Ok(None)
}

fn plan_query_body(
    qcx: &QueryContext,
    query: &ast::Query,
    root: bool,
    defer_unknown: bool,
) -> Result<(PlannedQuery, Vec<Option<ast::Expr>>), PlanError> {
    if query.fetch.is_some() || !query.locks.is_empty() {
        return Err(PlanError::unsupported("FETCH and FOR UPDATE"));
    }
    let order_by: Vec<ast::OrderByExpr> = match &query.order_by {
        None => vec![],
        Some(ob) => match &ob.kind {
            ast::OrderByKind::Expressions(exprs) => exprs.clone(),
            ast::OrderByKind::All(_) => return Err(PlanError::unsupported("ORDER BY ALL")),
        },
    };
    let (limit, offset) = match &query.limit_clause {
        None => (None, 0),
        Some(ast::LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(PlanError::unsupported("LIMIT BY"));
            }
            let limit = match limit {
                Some(e) => plan_limit(qcx, e, "LIMIT")?,
                None => None,
            };
            let offset = match offset {
                Some(o) => plan_limit(qcx, &o.value, "OFFSET")?.unwrap_or(0),
                None => 0,
            };
            (limit, offset)
        }
        Some(ast::LimitClause::OffsetCommaLimit { .. }) => {
            return Err(PlanError::unsupported("LIMIT offset, count"))
        }
    };
    // A deferred column is still a placeholder: nothing may look at it yet.
    let defer = defer_unknown && order_by.is_empty() && limit.is_none() && offset == 0;
    let (expr, names, order, visible, unknown) = match &*query.body {
        ast::SetExpr::Select(select) => {
            let s = plan_select(qcx, select, &order_by, defer)?;
            (s.expr, s.names, s.order, s.visible, s.unknown)
        }
        other => {
            let body = plan_set_expr(qcx, other)?;
            let order = plan_output_order(&order_by, &body.names)?;
            let n = body.names.len();
            (body.expr, body.names, order, n, body.unknown)
        }
    };
    let (expr, unknown) = if defer {
        (expr, unknown)
    } else {
        let n = unknown.len();
        (resolve_unknowns(qcx, expr, &unknown, &[])?, vec![None; n])
    };
    let typ = expr.typ();
    let desc = RelationDesc::new(
        RelationType::new(typ.column_types[..visible].to_vec()),
        names,
    );
    let finishing = RowSetFinishing {
        order_by: order,
        limit,
        offset,
        project: (0..visible).collect(),
    };
    // Below the top level, ORDER BY matters only with LIMIT / OFFSET: a TopK.
    let expr = if !root && (limit.is_some() || offset > 0) {
        HirRelationExpr::TopK {
            input: Box::new(expr),
            group_key: vec![],
            order_key: finishing.order_by.clone(),
            limit,
            offset,
        }
    } else {
        expr
    };
    let expr = if root || visible == typ.arity() {
        expr
    } else {
        HirRelationExpr::Project {
            input: Box::new(expr),
            outputs: (0..visible).collect(),
        }
    };
    Ok((
        PlannedQuery {
            expr,
            desc,
            finishing,
        },
        unknown,
    ))
}

/// Plans the open untyped literal columns of `expr` (`unknown`, see
/// [`PlannedBody::unknown`]) at their target types, text where there is none, in
/// place of their placeholders.
fn resolve_unknowns(
    qcx: &QueryContext,
    expr: HirRelationExpr,
    unknown: &[Option<ast::Expr>],
    targets: &[Option<ScalarType>],
) -> Result<HirRelationExpr, PlanError> {
    if unknown.iter().all(Option::is_none) {
        return Ok(expr);
    }
    // Only `plan_select` leaves columns open, and its relation is Project(Map(..)).
    let HirRelationExpr::Project { input, outputs } = expr else {
        unreachable!("open unknown columns come from a SELECT list, a Project")
    };
    let HirRelationExpr::Map {
        input: map_input,
        mut scalars,
    } = *input
    else {
        unreachable!("open unknown columns come from a SELECT list, a Project of a Map")
    };
    let base = map_input.arity();
    let scope = Scope::default();
    let ecx = ExprContext::new(qcx, &scope, &[]);
    for (column, e) in unknown.iter().enumerate() {
        let Some(e) = e else { continue };
        let target = targets
            .get(column)
            .copied()
            .flatten()
            .unwrap_or(ScalarType::String);
        scalars[outputs[column] - base] = plan_expr(&ecx, e, Some(target))?;
    }
    Ok(HirRelationExpr::Project {
        input: Box::new(HirRelationExpr::Map {
            input: map_input,
            scalars,
        }),
        outputs,
    })
}

fn plan_limit(
    qcx: &QueryContext,
    e: &ast::Expr,
    what: &'static str,
) -> Result<Option<usize>, PlanError> {
    let scope = Scope::default();
    let ecx = ExprContext::new(qcx, &scope, &[]).in_clause(what);
    let planned = plan_expr(&ecx, e, Some(ScalarType::Int64))?.lower()?;
    let mut planned = planned.call_unary(UnaryFunc::Cast(ScalarType::Int64));
    planned.reduce(&[]);
    match planned.as_literal() {
        Some(Ok(Datum::Null)) => Ok(None),
        Some(Ok(Datum::Int64(n))) if n < 0 => Err(PlanError::Eval(
            repr::EvalError::InvalidParameter(format!("{what} must not be negative")),
        )),
        Some(Ok(Datum::Int64(n))) => Ok(Some(n as usize)),
        Some(Err(e)) => Err(PlanError::Eval(e.clone())),
        _ => Err(PlanError::unsupported(format!("non-constant {what}"))),
    }
}

/// ORDER BY over the output columns only (set operations, VALUES).
fn plan_output_order(
    order_by: &[ast::OrderByExpr],
    names: &[String],
) -> Result<Vec<ColumnOrder>, PlanError> {
    order_by
        .iter()
        .map(|o| {
            let column =
                match &o.expr {
                    ast::Expr::Value(v) => ordinal(&v.value, names.len())?,
                    ast::Expr::Identifier(id) => names
                        .iter()
                        .position(|n| *n == normalize_ident(id))
                        .ok_or_else(|| PlanError::UnknownColumn(normalize_ident(id)))?,
                    _ => {
                        return Err(PlanError::unsupported(
                            "ORDER BY expressions on set operations",
                        ))
                    }
                };
            Ok(column_order(column, &o.options))
        })
        .collect()
}

fn ordinal(v: &ast::Value, arity: usize) -> Result<usize, PlanError> {
    match v {
        ast::Value::Number(n, _) => {
            let pos: usize = n
                .parse()
                .map_err(|_| PlanError::Syntax(format!("invalid ORDER BY position {n}")))?;
            if pos == 0 || pos > arity {
                return Err(PlanError::InvalidColumnReference(format!(
                    "ORDER BY position {n} is not in select list"
                )));
            }
            Ok(pos - 1)
        }
        _ => Err(PlanError::unsupported("ORDER BY a constant")),
    }
}

fn column_order(column: usize, options: &ast::OrderByOptions) -> ColumnOrder {
    let desc = options.asc == Some(false);
    // PostgreSQL: NULLs are larger than every value, so last ascending, first descending.
    let nulls_last = match options.nulls_first {
        Some(first) => !first,
        None => !desc,
    };
    ColumnOrder {
        column,
        desc,
        nulls_last,
    }
}

fn plan_set_expr(qcx: &QueryContext, body: &ast::SetExpr) -> Result<PlannedBody, PlanError> {
    match body {
        ast::SetExpr::Select(select) => {
            let s = plan_select(qcx, select, &[], true)?;
            debug_assert_eq!(s.visible, s.names.len());
            Ok(PlannedBody {
                expr: s.expr,
                names: s.names,
                unknown: s.unknown,
            })
        }
        ast::SetExpr::Query(q) => {
            let (planned, unknown) = plan_query(qcx, q, false, true)?;
            Ok(PlannedBody {
                expr: planned.expr,
                names: planned.desc.names,
                unknown,
            })
        }
        ast::SetExpr::Values(values) => plan_values(qcx, values),
        ast::SetExpr::SetOperation {
            op,
            set_quantifier,
            left,
            right,
        } => {
            let op_name = match op {
                ast::SetOperator::Union => "UNION",
                ast::SetOperator::Except => "EXCEPT",
                ast::SetOperator::Intersect => "INTERSECT",
                _ => return Err(PlanError::unsupported(format!("{op}"))),
            };
            let l = plan_set_expr(qcx, left)?;
            let r = plan_set_expr(qcx, right)?;
            if l.names.len() != r.names.len() {
                return Err(PlanError::Syntax(format!(
                    "each {op_name} query must have the same number of columns"
                )));
            }
            let names = l.names.clone();
            let (l, r) = unify_relations(qcx, l, r, op_name)?;
            let all = matches!(set_quantifier, ast::SetQuantifier::All);
            let expr = match (op, all) {
                (ast::SetOperator::Union, true) => HirRelationExpr::Union {
                    base: Box::new(l),
                    inputs: vec![r],
                },
                (ast::SetOperator::Union, false) => HirRelationExpr::Distinct {
                    input: Box::new(HirRelationExpr::Union {
                        base: Box::new(l),
                        inputs: vec![r],
                    }),
                },
                (ast::SetOperator::Except, true) => threshold_minus(l, r),
                (ast::SetOperator::Except, false) => threshold_minus(distinct(l), distinct(r)),
                (ast::SetOperator::Intersect, all) => {
                    // a ∩ b = a - (a - b), with multiplicities min(a, b).
                    let inner = threshold_minus(l.clone(), r);
                    let both = threshold_minus(l, inner);
                    if all {
                        both
                    } else {
                        distinct(both)
                    }
                }
                _ => unreachable!("checked above"),
            };
            let unknown = vec![None; names.len()];
            Ok(PlannedBody {
                expr,
                names,
                unknown,
            })
        }
        other => Err(PlanError::unsupported(format!("{other}"))),
    }
}

fn distinct(e: HirRelationExpr) -> HirRelationExpr {
    HirRelationExpr::Distinct { input: Box::new(e) }
}

fn threshold_minus(l: HirRelationExpr, r: HirRelationExpr) -> HirRelationExpr {
    HirRelationExpr::Threshold {
        input: Box::new(HirRelationExpr::Union {
            base: Box::new(l),
            inputs: vec![HirRelationExpr::Negate { input: Box::new(r) }],
        }),
    }
}

/// Casts the columns of the two inputs of a set operation to common types. An open
/// untyped literal column takes the other side's type (text if both are open), as
/// PostgreSQL's `SELECT NULL UNION SELECT 1` and `SELECT 1 UNION SELECT '2'`.
fn unify_relations(
    qcx: &QueryContext,
    l: PlannedBody,
    r: PlannedBody,
    what: &str,
) -> Result<(HirRelationExpr, HirRelationExpr), PlanError> {
    let (lt, rt) = (l.expr.typ().column_types, r.expr.typ().column_types);
    let mut targets = Vec::new();
    for (c, (a, b)) in lt.iter().zip(&rt).enumerate() {
        let (a, b) = (a.scalar_type, b.scalar_type);
        let t = match (l.unknown[c].is_some(), r.unknown[c].is_some()) {
            (true, true) => ScalarType::String,
            (true, false) => b,
            (false, true) => a,
            (false, false) => common_type(a, b).ok_or_else(|| {
                PlanError::DatatypeMismatch(format!("{what} types {a} and {b} cannot be matched"))
            })?,
        };
        targets.push(t);
    }
    let open: Vec<Option<ScalarType>> = targets.iter().copied().map(Some).collect();
    let cast_all = |body: PlannedBody| -> Result<HirRelationExpr, PlanError> {
        let e = resolve_unknowns(qcx, body.expr, &body.unknown, &open)?;
        let types = e.typ().column_types;
        if types
            .iter()
            .zip(&targets)
            .all(|(t, target)| t.scalar_type == *target)
        {
            return Ok(e);
        }
        let n = types.len();
        let casts: Vec<HirScalarExpr> = types
            .iter()
            .zip(&targets)
            .enumerate()
            .map(|(i, (t, target))| cast_to(HirScalarExpr::column(i), t.scalar_type, *target))
            .collect();
        Ok(HirRelationExpr::Project {
            input: Box::new(HirRelationExpr::Map {
                input: Box::new(e),
                scalars: casts,
            }),
            outputs: (n..2 * n).collect(),
        })
    };
    Ok((cast_all(l)?, cast_all(r)?))
}

/// The type two operands are both cast to, for comparison, arithmetic or UNION.
pub fn common_type(a: ScalarType, b: ScalarType) -> Option<ScalarType> {
    use ScalarType::*;
    if a == b {
        return Some(a);
    }
    let rank = |t: ScalarType| match t {
        Int16 => Some(0),
        Int32 => Some(1),
        Int64 => Some(2),
        Numeric => Some(3),
        Float32 => Some(4),
        Float64 => Some(5),
        _ => None,
    };
    match (rank(a), rank(b)) {
        (Some(x), Some(y)) => return Some(if x >= y { a } else { b }),
        (None, None) => {}
        _ => return None,
    }
    match (a, b) {
        (Date, Timestamp) | (Timestamp, Date) => Some(Timestamp),
        (Date | Timestamp, TimestampTz) | (TimestampTz, Date | Timestamp) => Some(TimestampTz),
        _ => None,
    }
}

fn cast_to(e: HirScalarExpr, from: ScalarType, to: ScalarType) -> HirScalarExpr {
    if from == to {
        e
    } else {
        e.call_unary(UnaryFunc::Cast(to))
    }
}

/// Plans `VALUES`. A column's type is the common type of its typed values; its
/// untyped literals (NULL, strings) then take that type, and are text if the column
/// has no typed value.
fn plan_values(qcx: &QueryContext, values: &ast::Values) -> Result<PlannedBody, PlanError> {
    let arity = values.rows.first().map(|r| r.len()).unwrap_or(0);
    let scope = Scope::default();
    let ecx = ExprContext::new(qcx, &scope, &[]).in_clause("VALUES");
    // Typed values first; untyped ones wait for their column's type.
    let mut rows: Vec<Vec<Option<HirScalarExpr>>> = Vec::new();
    for row in &values.rows {
        if row.len() != arity {
            return Err(PlanError::Syntax(
                "VALUES lists must all be the same length".into(),
            ));
        }
        let planned = row
            .iter()
            .map(|e| {
                if is_unknown(&ecx, e) {
                    Ok(None)
                } else {
                    plan_expr(&ecx, e, None).map(Some)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(planned);
    }
    let mut types = Vec::new();
    for c in 0..arity {
        let mut t: Option<ScalarType> = None;
        for e in rows.iter().filter_map(|row| row[c].as_ref()) {
            let rt = e.typ(&[]).scalar_type;
            t = Some(match t {
                None => rt,
                Some(prev) => common_type(prev, rt).ok_or_else(|| {
                    PlanError::DatatypeMismatch(format!(
                        "VALUES types {prev} and {rt} cannot be matched"
                    ))
                })?,
            });
        }
        types.push(t.unwrap_or(ScalarType::String));
    }
    let names: Vec<String> = (1..=arity).map(|i| format!("column{i}")).collect();
    let one_row = HirRelationExpr::Constant {
        rows: vec![Row::default()],
        typ: RelationType::new(vec![]),
    };
    let mut planned_rows = Vec::new();
    for (row, asts) in rows.into_iter().zip(&values.rows) {
        let mut scalars = Vec::new();
        for ((e, t), ast_expr) in row.into_iter().zip(&types).zip(asts) {
            scalars.push(match e {
                Some(e) => {
                    let from = e.typ(&[]).scalar_type;
                    cast_to(e, from, *t)
                }
                None => plan_expr(&ecx, ast_expr, Some(*t))?,
            });
        }
        planned_rows.push(HirRelationExpr::Map {
            input: Box::new(one_row.clone()),
            scalars,
        });
    }
    let mut planned_rows = planned_rows.into_iter();
    let base = planned_rows
        .next()
        .ok_or_else(|| PlanError::Syntax("VALUES needs at least one row".into()))?;
    let rest: Vec<HirRelationExpr> = planned_rows.collect();
    let expr = if rest.is_empty() {
        base
    } else {
        HirRelationExpr::Union {
            base: Box::new(base),
            inputs: rest,
        }
    };
    Ok(PlannedBody {
        expr,
        names,
        unknown: vec![None; arity],
    })
}

/// Whether `e` is a NULL literal (of any type).
pub(crate) fn is_null_literal(e: &HirScalarExpr) -> bool {
    matches!(e, HirScalarExpr::Literal(row, _) if row.iter().next() == Some(Datum::Null))
}

fn plan_from(
    qcx: &QueryContext,
    from: &[ast::TableWithJoins],
) -> Result<(HirRelationExpr, Scope), PlanError> {
    let mut result: Option<(HirRelationExpr, Scope)> = None;
    for twj in from {
        // A function call sees the FROM items before it (PostgreSQL's implicit
        // LATERAL): it extends their relation, when the joins after it allow that
        // (inner and left joins distribute over the comma's cross join).
        let leading_function = table_func::function_item(&twj.relation)?;
        let extends = leading_function.is_some()
            && result.is_some()
            && twj.joins.iter().all(|j| {
                matches!(
                    j.join_operator,
                    ast::JoinOperator::Join(_)
                        | ast::JoinOperator::Inner(_)
                        | ast::JoinOperator::CrossJoin(_)
                        | ast::JoinOperator::Left(_)
                        | ast::JoinOperator::LeftOuter(_)
                )
            });
        let lateral_subquery = is_lateral_subquery(&twj.relation) && result.is_some();
        let extends = extends || (lateral_subquery && twj.joins.is_empty());
        let (mut expr, mut scope) = match &leading_function {
            Some(item) if extends => table_func::plan_function_item(qcx, item, result.take())?,
            Some(item) => table_func::plan_function_item(qcx, item, None)?,
            None if lateral_subquery && extends => {
                let left = result.take().expect("checked above");
                plan_lateral_join(qcx, left, &twj.relation, JoinKind::Inner, None)?
            }
            None => plan_table_factor(qcx, &twj.relation)?,
        };
        for join in &twj.joins {
            // `JOIN f(...) ON c` (or CROSS JOIN) over the left side, then filtered.
            let on = match &join.join_operator {
                ast::JoinOperator::Join(c) | ast::JoinOperator::Inner(c) => match c {
                    ast::JoinConstraint::On(e) => Some(Some(e)),
                    _ => None,
                },
                ast::JoinOperator::CrossJoin(_) => Some(None),
                _ => None,
            };
            // LATERAL subqueries, and functions in LEFT JOINs, read the left side.
            let lateral = match &join.join_operator {
                ast::JoinOperator::Join(ast::JoinConstraint::On(e))
                | ast::JoinOperator::Inner(ast::JoinConstraint::On(e)) => {
                    Some((JoinKind::Inner, Some(e)))
                }
                ast::JoinOperator::CrossJoin(_) => Some((JoinKind::Inner, None)),
                ast::JoinOperator::Left(ast::JoinConstraint::On(e))
                | ast::JoinOperator::LeftOuter(ast::JoinConstraint::On(e)) => {
                    Some((JoinKind::LeftOuter, Some(e)))
                }
                _ => None,
            };
            let function = table_func::function_item(&join.relation)?;
            let lateral_right = is_lateral_subquery(&join.relation)
                || (function.is_some() && matches!(lateral, Some((JoinKind::LeftOuter, _))));
            if let (true, Some((kind, on))) = (lateral_right, lateral) {
                (expr, scope) = plan_lateral_join(qcx, (expr, scope), &join.relation, kind, on)?;
                continue;
            }
            if let (Some(item), Some(on)) = (function, on) {
                let (flat, flat_scope) =
                    table_func::plan_function_item(qcx, &item, Some((expr, scope)))?;
                expr = flat;
                scope = flat_scope;
                if let Some(on) = on {
                    let types = expr.typ().column_types;
                    let ecx = ExprContext::new(qcx, &scope, &types).in_clause("JOIN conditions");
                    let predicate = plan_predicate(&ecx, on, "JOIN/ON")?;
                    expr = HirRelationExpr::Filter {
                        input: Box::new(expr),
                        predicates: vec![predicate],
                    };
                }
                continue;
            }
            if is_lateral_subquery(&join.relation) {
                return Err(PlanError::unsupported(
                    "LATERAL in RIGHT and FULL joins and joins with USING",
                ));
            }
            let (right, right_scope) = match table_func::function_item(&join.relation)? {
                Some(item) => table_func::plan_function_item(qcx, &item, None)?,
                None => plan_table_factor(qcx, &join.relation)?,
            };
            scope.check_disjoint(&right_scope)?;
            (expr, scope) = plan_join(qcx, expr, scope, right, right_scope, &join.join_operator)?;
        }
        if extends {
            result = Some((expr, scope));
            continue;
        }
        result = Some(match result {
            None => (expr, scope),
            Some((prev, prev_scope)) => {
                prev_scope.check_disjoint(&scope)?;
                (
                    HirRelationExpr::Join {
                        left: Box::new(prev),
                        right: Box::new(expr),
                        on: HirScalarExpr::literal(Datum::True, ScalarType::Bool),
                        kind: JoinKind::Inner,
                    },
                    prev_scope.concat(scope),
                )
            }
        });
    }
    Ok(result.unwrap_or_else(|| {
        (
            HirRelationExpr::Constant {
                rows: vec![Row::default()],
                typ: RelationType::new(vec![]),
            },
            Scope::default(),
        )
    }))
}

fn is_lateral_subquery(factor: &ast::TableFactor) -> bool {
    matches!(factor, ast::TableFactor::Derived { lateral: true, .. })
}

/// `left, LATERAL (query) alias` (`kind` inner, no `on`), `left [LEFT] JOIN LATERAL
/// (query) alias ON on`, or a function in a LEFT JOIN: the right side is planned with
/// `left`'s columns as its nearest outer scope, and evaluated per row of `left` (a
/// [`HirRelationExpr::LateralJoin`]).
fn plan_lateral_join(
    qcx: &QueryContext,
    (left, left_scope): (HirRelationExpr, Scope),
    factor: &ast::TableFactor,
    kind: JoinKind,
    on: Option<&ast::Expr>,
) -> Result<(HirRelationExpr, Scope), PlanError> {
    let types = left.typ().column_types;
    qcx.outer
        .borrow_mut()
        .push(OuterScope::new(left_scope.clone(), types));
    let planned = plan_lateral_right(qcx, factor);
    qcx.outer.borrow_mut().pop();
    let (right, right_scope) = planned?;
    left_scope.check_disjoint(&right_scope)?;
    let scope = left_scope.concat(right_scope);
    let on = match on {
        None => HirScalarExpr::literal(Datum::True, ScalarType::Bool),
        Some(on) => {
            let types: Vec<ColumnType> = left
                .typ()
                .column_types
                .into_iter()
                .chain(right.typ().column_types)
                .collect();
            let ecx = ExprContext::new(qcx, &scope, &types).in_clause("JOIN conditions");
            plan_predicate(&ecx, on, "JOIN/ON")?
        }
    };
    Ok((
        HirRelationExpr::LateralJoin {
            left: Box::new(left),
            right: Box::new(right),
            on,
            kind,
        },
        scope,
    ))
}

/// The right side of a lateral join, planned in the scope the caller pushed.
fn plan_lateral_right(
    qcx: &QueryContext,
    factor: &ast::TableFactor,
) -> Result<(HirRelationExpr, Scope), PlanError> {
    if let Some(item) = table_func::function_item(factor)? {
        return table_func::plan_function_item(qcx, &item, None);
    }
    let ast::TableFactor::Derived {
        subquery, alias, ..
    } = factor
    else {
        unreachable!("called on a LATERAL subquery or a function")
    };
    let (right, mut names) = plan_nested_query(qcx, subquery)?;
    let Some(alias) = alias else {
        return Err(PlanError::Syntax(
            "subquery in FROM must have an alias".into(),
        ));
    };
    for (i, c) in alias.columns.iter().enumerate() {
        if i < names.len() {
            names[i] = normalize_ident(&c.name);
        }
    }
    Ok((
        right,
        Scope::from_names(Some(&normalize_ident(&alias.name)), &names),
    ))
}

/// Plans `left <op> right`: the join kind, its ON / USING / NATURAL condition, and the
/// scope after it (a USING column appears once, unqualified, first).
fn plan_join(
    qcx: &QueryContext,
    left: HirRelationExpr,
    left_scope: Scope,
    right: HirRelationExpr,
    right_scope: Scope,
    op: &ast::JoinOperator,
) -> Result<(HirRelationExpr, Scope), PlanError> {
    let (kind, constraint) = match op {
        ast::JoinOperator::Join(c) | ast::JoinOperator::Inner(c) => (JoinKind::Inner, Some(c)),
        ast::JoinOperator::CrossJoin(_) => (JoinKind::Inner, None),
        ast::JoinOperator::Left(c) | ast::JoinOperator::LeftOuter(c) => {
            (JoinKind::LeftOuter, Some(c))
        }
        ast::JoinOperator::Right(c) | ast::JoinOperator::RightOuter(c) => {
            (JoinKind::RightOuter, Some(c))
        }
        ast::JoinOperator::FullOuter(c) => (JoinKind::FullOuter, Some(c)),
        other => return Err(PlanError::unsupported(format!("join operator {other:?}"))),
    };
    if matches!(constraint, Some(ast::JoinConstraint::None)) {
        // PostgreSQL's grammar requires ON, USING or NATURAL except for CROSS JOIN.
        return Err(PlanError::Syntax(
            "syntax error: JOIN requires an ON or USING clause".into(),
        ));
    }
    let left_arity = left_scope.items.len();
    let types: Vec<ColumnType> = left
        .typ()
        .column_types
        .into_iter()
        .chain(right.typ().column_types)
        .collect();
    let joined_scope = left_scope.clone().concat(right_scope.clone());
    // The column pairs of USING / NATURAL.
    let using: Vec<String> = match constraint {
        Some(ast::JoinConstraint::Using(names)) => names
            .iter()
            .map(|n| {
                n.0.last()
                    .and_then(|p| p.as_ident())
                    .map(normalize_ident)
                    .unwrap_or_default()
            })
            .collect(),
        Some(ast::JoinConstraint::Natural) => left_scope
            .items
            .iter()
            .filter(|l| {
                !l.hidden
                    && right_scope
                        .items
                        .iter()
                        .any(|r| !r.hidden && r.column == l.column)
            })
            .map(|l| l.column.clone())
            .collect(),
        _ => vec![],
    };
    let mut pairs = Vec::new();
    for name in &using {
        let l = left_scope.resolve(None, name)?.ok_or_else(|| {
            PlanError::UnknownColumn(format!(
                "{name}\" specified in USING clause does not exist in left table \"{name}"
            ))
        })?;
        let r = right_scope.resolve(None, name)?.ok_or_else(|| {
            PlanError::UnknownColumn(format!(
                "{name}\" specified in USING clause does not exist in right table \"{name}"
            ))
        })?;
        pairs.push((l, left_arity + r));
    }
    let on = match constraint {
        None | Some(ast::JoinConstraint::None) => {
            HirScalarExpr::literal(Datum::True, ScalarType::Bool)
        }
        Some(ast::JoinConstraint::On(e)) => {
            let ecx = ExprContext::new(qcx, &joined_scope, &types).in_clause("JOIN conditions");
            plan_predicate(&ecx, e, "JOIN/ON")?
        }
        Some(ast::JoinConstraint::Using(_)) | Some(ast::JoinConstraint::Natural) => {
            let mut on: Option<HirScalarExpr> = None;
            for (l, r) in &pairs {
                let (lt, rt) = (types[*l].scalar_type, types[*r].scalar_type);
                let target = common_type(lt, rt)
                    .ok_or_else(|| PlanError::UnknownOperator(format!("{lt} = {rt}")))?;
                let eq = cast_to(HirScalarExpr::column(*l), lt, target).call_binary(
                    cast_to(HirScalarExpr::column(*r), rt, target),
                    BinaryFunc::Eq,
                );
                on = Some(match on {
                    None => eq,
                    Some(prev) => prev.call_binary(eq, BinaryFunc::And),
                });
            }
            on.unwrap_or_else(|| HirScalarExpr::literal(Datum::True, ScalarType::Bool))
        }
    };
    let join = HirRelationExpr::Join {
        left: Box::new(left),
        right: Box::new(right),
        on,
        kind,
    };
    if pairs.is_empty() {
        return Ok((join, joined_scope));
    }
    // USING columns: one merged column each, first; both inputs' copies stay reachable
    // by qualified name only.
    let width = joined_scope.items.len();
    let merged: Vec<HirScalarExpr> = pairs
        .iter()
        .map(|(l, r)| match kind {
            JoinKind::Inner | JoinKind::LeftOuter => HirScalarExpr::column(*l),
            JoinKind::RightOuter => HirScalarExpr::column(*r),
            JoinKind::FullOuter => HirScalarExpr::CallVariadic {
                func: VariadicFunc::Coalesce,
                exprs: vec![HirScalarExpr::column(*l), HirScalarExpr::column(*r)],
            },
        })
        .collect();
    let mut outputs: Vec<usize> = (width..width + pairs.len()).collect();
    let mut items: Vec<ScopeItem> = using
        .iter()
        .map(|n| ScopeItem {
            table: None,
            column: n.clone(),
            hidden: false,
            relation: None,
        })
        .collect();
    // Then every input column in order (so `t.*` lists t's columns as declared), the
    // USING copies reachable only qualified and left out of `*`.
    let used: Vec<usize> = pairs.iter().flat_map(|(l, r)| [*l, *r]).collect();
    for (i, item) in joined_scope.items.iter().enumerate() {
        outputs.push(i);
        items.push(ScopeItem {
            hidden: item.hidden || used.contains(&i),
            ..item.clone()
        });
    }
    let expr = HirRelationExpr::Project {
        input: Box::new(HirRelationExpr::Map {
            input: Box::new(join),
            scalars: merged,
        }),
        outputs,
    };
    Ok((expr, Scope { items }))
}

/// A view's query, planned where the view is used (it sees no outer scope).
fn plan_view(qcx: &QueryContext, item: &CatalogItem) -> Result<HirRelationExpr, PlanError> {
    let sql = item.definition.as_deref().unwrap_or_default();
    let parsed = crate::parse::parse(sql)?;
    let Some(crate::parse::Statement::Sql(stmt)) = parsed.into_iter().next().map(|p| p.statement)
    else {
        return Err(PlanError::Syntax(format!(
            "view \"{}\" has an invalid definition",
            item.name
        )));
    };
    let ast::Statement::Query(query) = *stmt else {
        return Err(PlanError::Syntax(format!(
            "view \"{}\" has an invalid definition",
            item.name
        )));
    };
    let saved = std::mem::take(&mut *qcx.outer.borrow_mut());
    // Names in a definition are full ones; any other is looked up in the view's
    // own schema (definitions from before schemas: `freshet.public`).
    let context = match qcx.catalog.name_of(item.id) {
        Some(name) => NameContext {
            database: name.database,
            search_path: vec![name.schema],
        },
        None => NameContext::default(),
    };
    let saved_names = qcx.names.replace(context);
    let saved_written = qcx.written_names.take();
    // Nor does it see the common table expressions of the query that reads it.
    let saved_ctes = std::mem::take(&mut *qcx.ctes.borrow_mut());
    let planned = plan_nested_query(qcx, &query);
    *qcx.ctes.borrow_mut() = saved_ctes;
    *qcx.written_names.borrow_mut() = saved_written;
    *qcx.names.borrow_mut() = saved_names;
    *qcx.outer.borrow_mut() = saved;
    let (expr, _) = planned?;
    if expr.arity() != item.desc.arity() {
        return Err(PlanError::Syntax(format!(
            "view \"{}\" no longer matches its columns",
            item.name
        )));
    }
    Ok(expr)
}

fn plan_table_factor(
    qcx: &QueryContext,
    factor: &ast::TableFactor,
) -> Result<(HirRelationExpr, Scope), PlanError> {
    match factor {
        ast::TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => {
            let normalized = normalize_object_name(name)?;
            // A common table expression in scope shadows catalog objects.
            let cte = if name.0.len() == 1 {
                qcx.ctes
                    .borrow()
                    .iter()
                    .rev()
                    .find(|(n, ..)| *n == normalized)
                    .cloned()
            } else {
                None
            };
            if let Some((cte_name, expr, mut names)) = cte {
                let table = match alias {
                    Some(a) => {
                        for (i, c) in a.columns.iter().enumerate() {
                            if i < names.len() {
                                names[i] = normalize_ident(&c.name);
                            }
                        }
                        normalize_ident(&a.name)
                    }
                    None => cte_name,
                };
                return Ok((expr, Scope::from_names(Some(&table), &names)));
            }
            let (item, full) = resolve_item(qcx, name)?;
            note_written_name(qcx, name, &full);
            qcx.referenced.borrow_mut().insert(item.id);
            let expr = match item.kind {
                ItemKind::Table | ItemKind::MaterializedView => HirRelationExpr::Get {
                    id: item.id,
                    typ: item.desc.typ.clone(),
                    name: item.name.clone(),
                },
                // A one-shot read of an indexed view reads the index.
                ItemKind::View
                    if qcx.read_view_indexes.get() && qcx.catalog.reads_view_index(item.id) =>
                {
                    HirRelationExpr::Get {
                        id: item.id,
                        typ: item.desc.typ.clone(),
                        name: item.name.clone(),
                    }
                }
                ItemKind::View => plan_view(qcx, item)?,
                ItemKind::Index => {
                    return Err(PlanError::WrongObjectType(format!(
                        "\"{}\" is an index",
                        item.name
                    )))
                }
            };
            let mut names = item.desc.names.clone();
            let (table_name, relation) = match alias {
                Some(a) => {
                    for (i, c) in a.columns.iter().enumerate() {
                        if i < names.len() {
                            names[i] = normalize_ident(&c.name);
                        }
                    }
                    (normalize_ident(&a.name), Some(normalized))
                }
                None => (normalized, None),
            };
            let mut scope = Scope::from_names(Some(&table_name), &names);
            for i in &mut scope.items {
                i.relation.clone_from(&relation);
            }
            Ok((expr, scope))
        }
        // LATERAL with no FROM item before it to read is a plain subquery.
        ast::TableFactor::Derived {
            subquery,
            alias,
            sample: None,
            ..
        } => {
            if alias.is_none() {
                return Err(PlanError::Syntax(
                    "subquery in FROM must have an alias".into(),
                ));
            }
            let (expr, mut names) = plan_nested_query(qcx, subquery)?;
            let table = alias.as_ref().map(|a| {
                for (i, c) in a.columns.iter().enumerate() {
                    if i < names.len() {
                        names[i] = normalize_ident(&c.name);
                    }
                }
                normalize_ident(&a.name)
            });
            Ok((expr, Scope::from_names(table.as_deref(), &names)))
        }
        ast::TableFactor::NestedJoin {
            table_with_joins,
            alias,
        } => {
            let (expr, mut scope) = plan_from(qcx, std::slice::from_ref(table_with_joins))?;
            if let Some(a) = alias {
                // The alias hides the joined tables' names: `j.col` only.
                let table = normalize_ident(&a.name);
                let visible: Vec<usize> = (0..scope.items.len())
                    .filter(|i| !scope.items[*i].hidden)
                    .collect();
                for (n, c) in a.columns.iter().enumerate() {
                    if let Some(i) = visible.get(n) {
                        scope.items[*i].column = normalize_ident(&c.name);
                    }
                }
                for item in &mut scope.items {
                    // USING copies (hidden) become unreachable: `j.k` is the merged column.
                    item.table = (!item.hidden).then(|| table.clone());
                    item.relation = None;
                }
            }
            Ok((expr, scope))
        }
        other => Err(PlanError::unsupported(format!("FROM item {other}"))),
    }
}

/// The GROUP BY context for expressions evaluated after a Reduce.
struct Grouping {
    /// For each group key, the input column it is (if a plain column) and its AST.
    keys: Vec<(Option<usize>, ast::Expr)>,
    /// The aggregate calls, in output order after the keys.
    aggregates: Vec<ast::Expr>,
}

struct ExprContext<'a> {
    qcx: &'a QueryContext<'a>,
    scope: &'a Scope,
    types: &'a [ColumnType],
    grouping: Option<&'a Grouping>,
    /// Inside an aggregate's argument, where nested aggregates are not allowed.
    in_aggregate: bool,
    /// The clause being planned, when aggregates are not allowed in it ("WHERE",
    /// "JOIN conditions", ...): PostgreSQL names it in the error.
    clause: Option<&'static str>,
    /// The scope subqueries see as their nearest outer scope, if not `scope` (after
    /// GROUP BY it is the grouped relation's).
    subquery_scope: Option<(&'a Scope, &'a [ColumnType])>,
    /// After GROUP BY: the FROM scope and the group key each of its columns is (see
    /// [`OuterScope::grouped_from`]).
    subquery_from: Option<(&'a Scope, &'a [Option<usize>])>,
    /// Calls already computed as columns (window functions, set-returning functions
    /// in the select list): an expression equal to one of these reads its column.
    substitutions: &'a [(ast::Expr, usize)],
    /// Inside CASE or COALESCE, whose arguments are evaluated lazily: PostgreSQL names
    /// the construct when a set-returning function is called there.
    lazy_construct: Option<&'static str>,
}

impl<'a> ExprContext<'a> {
    fn new(qcx: &'a QueryContext<'a>, scope: &'a Scope, types: &'a [ColumnType]) -> Self {
        ExprContext {
            qcx,
            scope,
            types,
            grouping: None,
            in_aggregate: false,
            clause: None,
            subquery_scope: None,
            subquery_from: None,
            substitutions: &[],
            lazy_construct: None,
        }
    }

    /// The context for a clause where aggregates are not allowed.
    fn in_clause(self, clause: &'static str) -> Self {
        ExprContext {
            clause: Some(clause),
            ..self
        }
    }
}

/// Plans a subquery with the current scope as its nearest outer scope.
fn plan_subquery(ecx: &ExprContext, query: &ast::Query) -> Result<HirRelationExpr, PlanError> {
    let (scope, types) = ecx.subquery_scope.unwrap_or((ecx.scope, ecx.types));
    ecx.qcx.outer.borrow_mut().push(OuterScope {
        scope: scope.clone(),
        types: types.to_vec(),
        grouped_from: ecx
            .subquery_from
            .map(|(from, keys)| (from.clone(), keys.to_vec())),
    });
    let planned = plan_query(ecx.qcx, query, false, false).map(|(p, _)| p);
    ecx.qcx.outer.borrow_mut().pop();
    Ok(planned?.expr)
}

/// `e` as seen from inside a subquery of the current scope: every reference moves one
/// level out.
fn lift(e: &HirScalarExpr, types: &[ColumnType]) -> HirScalarExpr {
    fn go(e: &HirScalarExpr, types: &[ColumnType], depth: usize) -> HirScalarExpr {
        match e {
            HirScalarExpr::Column(c) if depth == 0 => HirScalarExpr::OuterColumn {
                level: 1,
                column: c.column,
                typ: types[c.column],
            },
            HirScalarExpr::Column(c) => HirScalarExpr::Column(*c),
            HirScalarExpr::OuterColumn { level, column, typ } if *level > depth => {
                HirScalarExpr::OuterColumn {
                    level: level + 1,
                    column: *column,
                    typ: *typ,
                }
            }
            HirScalarExpr::OuterColumn { .. } | HirScalarExpr::Literal(..) => e.clone(),
            HirScalarExpr::CallUnary { func, expr } => go(expr, types, depth).call_unary(*func),
            HirScalarExpr::CallBinary { func, expr1, expr2 } => {
                go(expr1, types, depth).call_binary(go(expr2, types, depth), *func)
            }
            HirScalarExpr::CallVariadic { func, exprs } => HirScalarExpr::CallVariadic {
                func: *func,
                exprs: exprs.iter().map(|x| go(x, types, depth)).collect(),
            },
            HirScalarExpr::If { cond, then, els } => HirScalarExpr::If {
                cond: Box::new(go(cond, types, depth)),
                then: Box::new(go(then, types, depth)),
                els: Box::new(go(els, types, depth)),
            },
            // References inside nested subqueries that point past them move too; a
            // full rewrite of nested relations is not needed by today's callers.
            HirScalarExpr::Exists(_) | HirScalarExpr::Select(_) => e.clone(),
        }
    }
    go(e, types, 0)
}

/// `lhs <op> ANY (subquery)` (or ALL), with SQL's NULL semantics:
/// ANY is true if some comparison is true, else NULL if some is NULL, else false;
/// ALL is false if some comparison is false, else NULL if some is NULL, else true.
fn plan_quantified(
    ecx: &ExprContext,
    lhs: &ast::Expr,
    op: &ast::BinaryOperator,
    query: &ast::Query,
    all: bool,
) -> Result<HirScalarExpr, PlanError> {
    if matches!(lhs, ast::Expr::Tuple(_)) {
        return Err(PlanError::unsupported("row-valued IN, ANY and ALL"));
    }
    // The subquery first: an untyped literal on the left takes its column's type.
    let sub = plan_subquery(ecx, query)?;
    let sub_types = sub.typ().column_types;
    if sub_types.len() != 1 {
        return Err(PlanError::Syntax("subquery has too many columns".into()));
    }
    let left = plan_expr(ecx, lhs, Some(sub_types[0].scalar_type))?;
    if contains_subquery(&left) {
        return Err(PlanError::unsupported(
            "subqueries on the left of IN, ANY or ALL",
        ));
    }
    let (lt, rt) = (left.typ(ecx.types).scalar_type, sub_types[0].scalar_type);
    let target =
        common_type(lt, rt).ok_or_else(|| PlanError::UnknownOperator(format!("{lt} {op} {rt}")))?;
    let func = match op {
        ast::BinaryOperator::Eq => BinaryFunc::Eq,
        ast::BinaryOperator::NotEq => BinaryFunc::NotEq,
        ast::BinaryOperator::Lt => BinaryFunc::Lt,
        ast::BinaryOperator::LtEq => BinaryFunc::Lte,
        ast::BinaryOperator::Gt => BinaryFunc::Gt,
        ast::BinaryOperator::GtEq => BinaryFunc::Gte,
        other => return Err(PlanError::unsupported(format!("{other} with ANY or ALL"))),
    };
    let lifted = cast_to(lift(&left, ecx.types), lt, target);
    let comparison = lifted.call_binary(cast_to(HirScalarExpr::column(0), rt, target), func);
    let exists_where = |predicate: HirScalarExpr| {
        HirScalarExpr::Exists(Box::new(HirRelationExpr::Filter {
            input: Box::new(sub.clone()),
            predicates: vec![predicate],
        }))
    };
    let decisive = if all {
        comparison.clone().call_unary(UnaryFunc::IsFalse)
    } else {
        comparison.clone().call_unary(UnaryFunc::IsTrue)
    };
    let unknown = comparison.call_unary(UnaryFunc::IsNull);
    let (when_decisive, otherwise) = if all {
        (Datum::False, Datum::True)
    } else {
        (Datum::True, Datum::False)
    };
    Ok(HirScalarExpr::If {
        cond: Box::new(exists_where(decisive)),
        then: Box::new(HirScalarExpr::literal(when_decisive, ScalarType::Bool)),
        els: Box::new(HirScalarExpr::If {
            cond: Box::new(exists_where(unknown)),
            then: Box::new(HirScalarExpr::literal_null(ScalarType::Bool)),
            els: Box::new(HirScalarExpr::literal(otherwise, ScalarType::Bool)),
        }),
    })
}

fn contains_subquery(e: &HirScalarExpr) -> bool {
    match e {
        HirScalarExpr::Exists(_) | HirScalarExpr::Select(_) => true,
        HirScalarExpr::Column(_)
        | HirScalarExpr::OuterColumn { .. }
        | HirScalarExpr::Literal(..) => false,
        HirScalarExpr::CallUnary { expr, .. } => contains_subquery(expr),
        HirScalarExpr::CallBinary { expr1, expr2, .. } => {
            contains_subquery(expr1) || contains_subquery(expr2)
        }
        HirScalarExpr::CallVariadic { exprs, .. } => exprs.iter().any(contains_subquery),
        HirScalarExpr::If { cond, then, els } => {
            contains_subquery(cond) || contains_subquery(then) || contains_subquery(els)
        }
    }
}

/// A planned SELECT.
struct PlannedSelect {
    /// The visible columns, then hidden ORDER BY columns.
    expr: HirRelationExpr,
    /// The visible columns' names.
    names: Vec<String>,
    order: Vec<ColumnOrder>,
    visible: usize,
    /// The open untyped literal columns (see [`PlannedBody::unknown`]).
    unknown: Vec<Option<ast::Expr>>,
}

/// Plans the SELECT. With `defer_unknown`, select-list items that are untyped
/// literals stay open for the caller to type (see [`PlannedBody::unknown`]), unless
/// DISTINCT, GROUP BY or ORDER BY uses them (which makes them text in PostgreSQL).
fn plan_select(
    qcx: &QueryContext,
    select: &ast::Select,
    order_by: &[ast::OrderByExpr],
    defer_unknown: bool,
) -> Result<PlannedSelect, PlanError> {
    if select.having.is_some() && matches!(select.group_by, ast::GroupByExpr::All(_)) {
        return Err(PlanError::unsupported("GROUP BY ALL"));
    }
    if !select.lateral_views.is_empty()
        || select.qualify.is_some()
        || select.into.is_some()
        || select.top.is_some()
    {
        return Err(PlanError::unsupported("this SELECT clause"));
    }
    let (mut expr, scope) = plan_from(qcx, &select.from)?;
    let input_types = expr.typ().column_types;

    if let Some(selection) = &select.selection {
        if !outer_level_aggregates(qcx, &scope, &input_types, &[selection]).is_empty() {
            return Err(PlanError::Grouping(
                "aggregate functions are not allowed in WHERE".into(),
            ));
        }
        let ecx = ExprContext::new(qcx, &scope, &input_types).in_clause("WHERE");
        let pred = plan_predicate(&ecx, selection, "WHERE")?;
        expr = HirRelationExpr::Filter {
            input: Box::new(expr),
            predicates: vec![pred],
        };
    }

    // Expand the projection into (AST, name) pairs.
    let mut projection: Vec<(ast::Expr, String)> = Vec::new();
    for item in &select.projection {
        match item {
            ast::SelectItem::UnnamedExpr(e) => projection.push((e.clone(), column_name(e))),
            ast::SelectItem::ExprWithAlias { expr: e, alias } => {
                projection.push((e.clone(), normalize_ident(alias)))
            }
            ast::SelectItem::Wildcard(_) => {
                if select.from.is_empty() {
                    return Err(PlanError::Syntax(
                        "SELECT * with no tables specified is not valid".into(),
                    ));
                }
                for (i, item) in scope.items.iter().enumerate().filter(|(_, i)| !i.hidden) {
                    projection.push((wildcard_expr(&scope, i), item.column.clone()));
                }
            }
            ast::SelectItem::QualifiedWildcard(kind, _) => {
                let table = match kind {
                    ast::SelectItemQualifiedWildcardKind::ObjectName(name) => {
                        normalize_object_name(name)?
                    }
                    _ => return Err(PlanError::unsupported("this wildcard")),
                };
                let before = projection.len();
                for item in scope
                    .items
                    .iter()
                    .filter(|i| i.table.as_deref() == Some(&table))
                {
                    projection.push((column_expr(item), item.column.clone()));
                }
                if projection.len() == before {
                    return Err(missing_from_entry(&scope, &[], &table));
                }
            }
        }
    }

    let group_exprs: Vec<ast::Expr> = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs.clone(),
        _ => return Err(PlanError::unsupported("GROUP BY modifiers")),
    };
    let mut aggregate_asts = Vec::new();
    for (e, _) in &projection {
        collect_aggregates(e, &mut aggregate_asts);
    }
    if let Some(h) = &select.having {
        collect_aggregates(h, &mut aggregate_asts);
    }
    for o in order_by {
        collect_aggregates(&o.expr, &mut aggregate_asts);
    }
    // Aggregates an enclosing query owns are its columns here, not this query's.
    aggregate_asts.retain(|a| outer_aggregate(qcx, a).is_none());
    // Aggregates in this query's subqueries that read only this query's columns are
    // this query's; the subqueries read them as outer columns.
    let mut owning: Vec<&ast::Expr> = projection.iter().map(|(e, _)| e).collect();
    owning.extend(select.having.as_ref());
    owning.extend(order_by.iter().map(|o| &o.expr));
    let lifted_aggregates = outer_level_aggregates(qcx, &scope, &input_types, &owning);
    for a in &lifted_aggregates {
        if !aggregate_asts.contains(a) {
            aggregate_asts.push(a.clone());
        }
    }

    let grouping_storage;
    // Select-list items used as group keys.
    let mut grouped_items: Vec<usize> = Vec::new();
    let (scope_after, types_after): (Scope, Vec<ColumnType>);
    if !group_exprs.is_empty() || !aggregate_asts.is_empty() || select.having.is_some() {
        // Group keys: ordinals and output names refer to the select list, but a name
        // that is an input column is that column (PostgreSQL prefers it here).
        let mut keys = Vec::new();
        let mut key_exprs = Vec::new();
        let ecx = ExprContext::new(qcx, &scope, &input_types).in_clause("GROUP BY");
        for g in &group_exprs {
            let ast_expr = match g {
                ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                    let i = ordinal(&v.value, projection.len()).map_err(|_| {
                        PlanError::InvalidColumnReference(format!(
                            "GROUP BY position {} is not in select list",
                            v.value
                        ))
                    })?;
                    grouped_items.push(i);
                    projection[i].0.clone()
                }
                ast::Expr::Identifier(id)
                    if scope.resolve(None, &normalize_ident(id))?.is_none() =>
                {
                    let name = normalize_ident(id);
                    let matching: Vec<usize> = (0..projection.len())
                        .filter(|i| projection[*i].1 == name)
                        .collect();
                    let Some(&first) = matching.first() else {
                        return Err(PlanError::UnknownColumn(name));
                    };
                    if matching
                        .iter()
                        .any(|i| projection[*i].0 != projection[first].0)
                    {
                        return Err(PlanError::AmbiguousClauseReference {
                            clause: "GROUP BY",
                            name,
                        });
                    }
                    grouped_items.extend(matching);
                    projection[first].0.clone()
                }
                other => other.clone(),
            };
            let planned = plan_expr(&ecx, &ast_expr, None)?;
            let column = match &planned {
                HirScalarExpr::Column(c) if c.level == 0 => Some(c.column),
                _ => None,
            };
            keys.push((column, ast_expr));
            key_exprs.push(planned);
        }
        let mut aggregates = Vec::new();
        for a in &aggregate_asts {
            aggregates.push(plan_aggregate(&ecx, a)?);
        }
        let n = input_types.len();
        let k = key_exprs.len();
        expr = HirRelationExpr::Reduce {
            input: Box::new(HirRelationExpr::Map {
                input: Box::new(expr),
                scalars: key_exprs,
            }),
            group_key: (n..n + k).collect(),
            aggregates,
        };
        grouping_storage = Grouping {
            keys,
            aggregates: aggregate_asts,
        };
        types_after = expr.typ().column_types;
        scope_after = scope.clone();
    } else {
        grouping_storage = Grouping {
            keys: vec![],
            aggregates: vec![],
        };
        types_after = input_types.clone();
        scope_after = scope.clone();
    }
    let grouped = !grouping_storage.keys.is_empty()
        || !grouping_storage.aggregates.is_empty()
        || select.having.is_some();
    // Subqueries after GROUP BY see the grouped relation: its plain-column keys by
    // name, nothing else.
    let unnamed = |_| ScopeItem {
        table: None,
        column: "?column?".into(),
        hidden: true,
        relation: None,
    };
    let grouped_scope = Scope {
        items: grouping_storage
            .keys
            .iter()
            .map(|(col, _)| match col {
                Some(c) => scope.items[*c].clone(),
                None => unnamed(()),
            })
            .chain(grouping_storage.aggregates.iter().map(|_| unnamed(())))
            .collect(),
    };
    // Each FROM column's group key, for the error when a subquery reads another.
    let key_of: Vec<Option<usize>> = (0..scope.items.len())
        .map(|c| {
            grouping_storage
                .keys
                .iter()
                .position(|(col, _)| *col == Some(c))
        })
        .collect();
    let mut ecx = ExprContext::new(qcx, &scope_after, &types_after);
    if grouped {
        ecx.grouping = Some(&grouping_storage);
        ecx.subquery_scope = Some((&grouped_scope, &types_after));
        ecx.subquery_from = Some((&scope, &key_of));
    }
    let _outer_aggregates =
        OuterAggregates::register(qcx, &grouping_storage, &types_after, &lifted_aggregates);

    if let Some(having) = &select.having {
        let hcx = ExprContext {
            clause: Some("HAVING"),
            ..ecx
        };
        let pred = plan_predicate(&hcx, having, "HAVING")?;
        expr = HirRelationExpr::Filter {
            input: Box::new(expr),
            predicates: vec![pred],
        };
    }

    // Window functions, then set-returning functions of the select list: each a
    // relation over the one so far, whose columns later expressions read.
    let mut window_calls = Vec::new();
    for (e, _) in &projection {
        collect_calls(e, &window::is_window_call, true, &mut window_calls);
    }
    for o in order_by {
        collect_calls(&o.expr, &window::is_window_call, true, &mut window_calls);
    }
    let mut substitutions = Vec::new();
    let mut types_now = types_after.clone();
    if !window_calls.is_empty() {
        let (windowed, subs) =
            window::plan_windows(&ecx, &select.named_window, &window_calls, expr)?;
        expr = windowed;
        substitutions.extend(subs);
        types_now = expr.typ().column_types;
    }
    let mut srf_calls = Vec::new();
    for (e, _) in &projection {
        collect_calls(e, &table_func::is_srf_call, false, &mut srf_calls);
    }
    if !srf_calls.is_empty() {
        let scx = ExprContext {
            types: &types_now,
            substitutions: &substitutions,
            ..ecx
        };
        let (flat, subs) = table_func::plan_select_list_srfs(&scx, &srf_calls, expr)?;
        expr = flat;
        substitutions.extend(subs);
        types_now = expr.typ().column_types;
    }
    let ecx = ExprContext {
        types: &types_now,
        substitutions: &substitutions,
        ..ecx
    };

    // The select list, then hidden ORDER BY columns.
    let base_arity = types_now.len();
    let mut scalars = Vec::new();
    let mut names = Vec::new();
    let mut unknown = Vec::new();
    let defer = defer_unknown
        && order_by.is_empty()
        && matches!(select.distinct, None | Some(ast::Distinct::All));
    for (i, (e, name)) in projection.iter().enumerate() {
        let open = defer
            && is_unknown(&ecx, e)
            && !grouped_items.contains(&i)
            && !grouping_storage.keys.iter().any(|(_, k)| k == e);
        if open {
            // A placeholder until `resolve_unknowns` plans it at its type.
            scalars.push(HirScalarExpr::literal_null(ScalarType::String));
            unknown.push(Some(e.clone()));
        } else {
            scalars.push(plan_expr(&ecx, e, None)?);
            unknown.push(None);
        }
        names.push(name.clone());
    }
    let visible = scalars.len();
    let mut order = Vec::new();
    for o in order_by {
        let column = match &o.expr {
            ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                ordinal(&v.value, visible)?
            }
            // A bare name is an output column first (SQL92), an input column otherwise.
            ast::Expr::Identifier(id) if names.contains(&normalize_ident(id)) => {
                let name = normalize_ident(id);
                let mut matching = (0..visible).filter(|i| names[*i] == name);
                let first = matching.next().expect("contains the name");
                if matching.any(|i| scalars[i] != scalars[first]) {
                    return Err(PlanError::AmbiguousClauseReference {
                        clause: "ORDER BY",
                        name,
                    });
                }
                first
            }
            other => {
                let planned = plan_expr(&ecx, other, None)?;
                match scalars.iter().position(|s| *s == planned) {
                    Some(i) => i,
                    None => {
                        if matches!(select.distinct, Some(ast::Distinct::Distinct)) {
                            return Err(PlanError::InvalidColumnReference(
                                "for SELECT DISTINCT, ORDER BY expressions must appear in select list".into(),
                            ));
                        }
                        scalars.push(planned);
                        scalars.len() - 1
                    }
                }
            }
        };
        order.push(column_order(column, &o.options));
    }
    // DISTINCT ON (exprs): one row per distinct value of exprs, the first by ORDER BY.
    let mut distinct_on = Vec::new();
    if let Some(ast::Distinct::On(on)) = &select.distinct {
        for e in on {
            let column = match e {
                ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                    ordinal(&v.value, visible)?
                }
                other => {
                    let planned = plan_expr(&ecx, other, None)?;
                    match scalars.iter().position(|s| *s == planned) {
                        Some(i) => i,
                        None => {
                            scalars.push(planned);
                            scalars.len() - 1
                        }
                    }
                }
            };
            distinct_on.push(column);
        }
        // PostgreSQL: the ON expressions must lead the ORDER BY.
        let leading: Vec<usize> = order
            .iter()
            .take(distinct_on.len())
            .map(|o| o.column)
            .collect();
        let mut sorted_on = distinct_on.clone();
        sorted_on.sort();
        let mut sorted_leading = leading.clone();
        sorted_leading.sort();
        if !order.is_empty()
            && (leading.len() < distinct_on.len().min(order.len())
                || sorted_on[..leading.len().min(sorted_on.len())] != sorted_leading[..])
        {
            return Err(PlanError::InvalidColumnReference(
                "SELECT DISTINCT ON expressions must match initial ORDER BY expressions".into(),
            ));
        }
    }
    let arity = scalars.len();
    expr = HirRelationExpr::Project {
        input: Box::new(HirRelationExpr::Map {
            input: Box::new(expr),
            scalars,
        }),
        outputs: (base_arity..base_arity + arity).collect(),
    };
    match &select.distinct {
        None | Some(ast::Distinct::All) => {}
        Some(ast::Distinct::Distinct) => expr = distinct(expr),
        Some(ast::Distinct::On(_)) => {
            expr = HirRelationExpr::TopK {
                input: Box::new(expr),
                group_key: distinct_on,
                order_key: order.clone(),
                limit: Some(1),
                offset: 0,
            };
        }
    }
    Ok(PlannedSelect {
        expr,
        names,
        order,
        visible,
        unknown,
    })
}

/// The error for a reference qualified by `table`, which no FROM item in `scope` or
/// the `outer` scopes exposes: a FROM item of that relation under an alias makes it
/// an invalid reference, anything else a missing entry.
fn missing_from_entry(scope: &Scope, outer: &[&Scope], table: &str) -> PlanError {
    let aliased = std::iter::once(scope)
        .chain(outer.iter().copied())
        .any(|s| s.items.iter().any(|i| i.relation.as_deref() == Some(table)));
    if aliased {
        PlanError::InvalidFromReference(table.to_string())
    } else {
        PlanError::MissingFromEntry(table.to_string())
    }
}

fn column_expr(item: &ScopeItem) -> ast::Expr {
    let col = ast::Ident::with_quote('"', item.column.clone());
    match &item.table {
        Some(t) => ast::Expr::CompoundIdentifier(vec![ast::Ident::with_quote('"', t.clone()), col]),
        None => ast::Expr::Identifier(col),
    }
}

/// The output name PostgreSQL gives an unaliased select item.
fn column_name(e: &ast::Expr) -> String {
    figure_column_name(e)
        .map(|(name, _)| name)
        .unwrap_or_else(|| "?column?".into())
}

/// PostgreSQL's `FigureColname`: the name, and how strong it is. A column, function
/// or CASE name (2) beats the type name of a cast around it (1), so `a::text` is
/// `a` while `2.5::float8::int` is `int4`, named by the outermost cast.
fn figure_column_name(e: &ast::Expr) -> Option<(String, u8)> {
    Some(match e {
        ast::Expr::Identifier(id) => (normalize_ident(id), 2),
        ast::Expr::CompoundIdentifier(ids) => (ids.last().map(normalize_ident)?, 2),
        ast::Expr::Function(f) => (f.name.0.last()?.as_ident().map(normalize_ident)?, 2),
        ast::Expr::Cast {
            expr, data_type, ..
        } => match figure_column_name(expr) {
            Some((name, 2)) => (name, 2),
            _ => (cast_type_name(data_type), 1),
        },
        ast::Expr::TypedString(ts) => (cast_type_name(&ts.data_type), 1),
        ast::Expr::Interval(_) => ("interval".into(), 1),
        ast::Expr::Nested(inner) => return figure_column_name(inner),
        ast::Expr::Case { .. } => ("case".into(), 2),
        ast::Expr::Array(_) => ("array".into(), 2),
        ast::Expr::CompoundFieldAccess { root, .. } => return figure_column_name(root),
        ast::Expr::Exists { .. } => ("exists".into(), 2),
        ast::Expr::Subquery(q) => match &*q.body {
            ast::SetExpr::Select(s) => match s.projection.first()? {
                ast::SelectItem::UnnamedExpr(e) => (column_name(e), 2),
                ast::SelectItem::ExprWithAlias { alias, .. } => (normalize_ident(alias), 2),
                _ => return None,
            },
            _ => return None,
        },
        _ => return None,
    })
}

/// The name PostgreSQL gives a cast's type in column names: its internal name
/// (`int4`, `float8`, `bpchar`), or the last part of the name as written.
fn cast_type_name(data_type: &ast::DataType) -> String {
    // An array cast is named by its element type: `'{1}'::int[]` is `int4`.
    if let ast::DataType::Array(
        ast::ArrayElemTypeDef::SquareBracket(inner, _)
        | ast::ArrayElemTypeDef::AngleBracket(inner)
        | ast::ArrayElemTypeDef::Parenthesis(inner),
    ) = data_type
    {
        return cast_type_name(inner);
    }
    let text = data_type.to_string().to_lowercase();
    // Drop a type modifier: `numeric(10, 2)`, `varchar(3)`, `float(3)`.
    let (base, modifier) = match text.find('(') {
        Some(open) => {
            let close = text.rfind(')').unwrap_or(text.len() - 1);
            let rest = format!("{}{}", text[..open].trim_end(), &text[close + 1..]);
            (rest, Some(text[open + 1..close].trim().to_string()))
        }
        None => (text.clone(), None),
    };
    let base = base.trim();
    let name = match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "float" => match modifier.and_then(|m| m.parse::<u32>().ok()) {
            Some(p) if p <= 24 => "float4",
            _ => "float8",
        },
        "double precision" | "float8" => "float8",
        "boolean" | "bool" => "bool",
        "varchar" | "character varying" => "varchar",
        "char" | "character" | "bpchar" => "bpchar",
        "decimal" | "dec" | "numeric" => "numeric",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        "time" | "time without time zone" => "time",
        "timetz" | "time with time zone" => "timetz",
        other => other.rsplit('.').next().unwrap_or(other),
    };
    name.trim_matches('"').to_string()
}

fn aggregate_func(f: &ast::Function) -> Option<AggregateFunc> {
    let name = f.name.0.last()?.as_ident()?.value.to_lowercase();
    Some(match name.as_str() {
        "count" => AggregateFunc::Count,
        "sum" => AggregateFunc::Sum,
        "min" => AggregateFunc::Min,
        "max" => AggregateFunc::Max,
        "avg" => AggregateFunc::Avg,
        "stddev" | "stddev_samp" => AggregateFunc::StddevSamp,
        "stddev_pop" => AggregateFunc::StddevPop,
        "variance" | "var_samp" => AggregateFunc::VarSamp,
        "var_pop" => AggregateFunc::VarPop,
        "bool_and" | "every" => AggregateFunc::BoolAnd,
        "bool_or" => AggregateFunc::BoolOr,
        "string_agg" => AggregateFunc::StringAgg { order_by: vec![] },
        // The element type is set when the argument is planned.
        "array_agg" => AggregateFunc::ArrayAgg {
            elem_type: ScalarType::String,
            order_by: vec![],
        },
        "jsonb_agg" => AggregateFunc::JsonbAgg { order_by: vec![] },
        "jsonb_object_agg" => AggregateFunc::JsonbObjectAgg { order_by: vec![] },
        _ => return None,
    })
}

/// PostgreSQL's set-returning functions: Freshet has no plan node that turns one row
/// into several (a FlatMap) yet, so calling one is a 0A000 error.
fn set_returning_function(name: &str) -> bool {
    matches!(
        name,
        "generate_series"
            | "generate_subscripts"
            | "unnest"
            | "regexp_matches"
            | "regexp_split_to_table"
            | "string_to_table"
            | "json_each"
            | "json_each_text"
            | "jsonb_each"
            | "jsonb_each_text"
            | "json_array_elements"
            | "jsonb_array_elements"
            | "jsonb_array_elements_text"
            | "json_array_elements_text"
            | "json_object_keys"
            | "jsonb_object_keys"
    )
}

/// PostgreSQL's aggregates that Freshet does not have yet: calling one is a 0A000
/// error rather than "function does not exist".
fn unsupported_aggregate(name: &str) -> bool {
    matches!(
        name,
        "json_agg"
            | "json_object_agg"
            | "bit_and"
            | "bit_or"
            | "bit_xor"
            | "corr"
            | "covar_pop"
            | "covar_samp"
            | "regr_avgx"
            | "regr_avgy"
            | "regr_count"
            | "regr_intercept"
            | "regr_r2"
            | "regr_slope"
            | "regr_sxx"
            | "regr_sxy"
            | "regr_syy"
            | "percentile_cont"
            | "percentile_disc"
            | "mode"
            | "xmlagg"
            | "range_agg"
            | "range_intersect_agg"
    )
}

/// Whether `e` calls an aggregate function (outside subqueries).
pub(crate) fn contains_aggregate(e: &ast::Expr) -> bool {
    let mut found = Vec::new();
    collect_aggregates(e, &mut found);
    !found.is_empty()
}

/// Collects the aggregate calls in `e` (not descending into them), without duplicates.
fn collect_aggregates(e: &ast::Expr, out: &mut Vec<ast::Expr>) {
    use ast::Expr::*;
    match e {
        // A window call is no aggregate, but its arguments and window may hold some.
        Function(f) if f.over.is_some() => {
            for x in window_call_subexprs(f) {
                collect_aggregates(x, out);
            }
        }
        Function(f) if aggregate_func(f).is_some() && !out.contains(e) => out.push(e.clone()),
        Function(f) if aggregate_func(f).is_some() => {}
        Function(f) => {
            if let ast::FunctionArguments::List(list) = &f.args {
                for a in &list.args {
                    if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) = a {
                        collect_aggregates(x, out);
                    }
                }
            }
        }
        BinaryOp { left, right, .. } => {
            collect_aggregates(left, out);
            collect_aggregates(right, out);
        }
        UnaryOp { expr, .. }
        | Nested(expr)
        | IsNull(expr)
        | IsNotNull(expr)
        | IsTrue(expr)
        | IsFalse(expr)
        | IsNotTrue(expr)
        | IsNotFalse(expr)
        | Cast { expr, .. } => collect_aggregates(expr, out),
        IsDistinctFrom(a, b) | IsNotDistinctFrom(a, b) => {
            collect_aggregates(a, out);
            collect_aggregates(b, out);
        }
        Between {
            expr, low, high, ..
        } => {
            collect_aggregates(expr, out);
            collect_aggregates(low, out);
            collect_aggregates(high, out);
        }
        InList { expr, list, .. } => {
            collect_aggregates(expr, out);
            list.iter().for_each(|x| collect_aggregates(x, out));
        }
        Like { expr, pattern, .. } | ILike { expr, pattern, .. } => {
            collect_aggregates(expr, out);
            collect_aggregates(pattern, out);
        }
        InSubquery { expr, .. } => collect_aggregates(expr, out),
        AnyOp { left, .. } | AllOp { left, .. } => collect_aggregates(left, out),
        Ceil { expr, .. } | Floor { expr, .. } | Extract { expr, .. } => {
            collect_aggregates(expr, out)
        }
        Position { expr, r#in } => {
            collect_aggregates(expr, out);
            collect_aggregates(r#in, out);
        }
        Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            collect_aggregates(expr, out);
            for e in [substring_from, substring_for].into_iter().flatten() {
                collect_aggregates(e, out);
            }
        }
        Trim {
            expr,
            trim_what,
            trim_characters,
            ..
        } => {
            collect_aggregates(expr, out);
            if let Some(e) = trim_what {
                collect_aggregates(e, out);
            }
            for e in trim_characters.iter().flatten() {
                collect_aggregates(e, out);
            }
        }
        Overlay {
            expr,
            overlay_what,
            overlay_from,
            overlay_for,
        } => {
            collect_aggregates(expr, out);
            collect_aggregates(overlay_what, out);
            collect_aggregates(overlay_from, out);
            if let Some(e) = overlay_for {
                collect_aggregates(e, out);
            }
        }
        Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            if let Some(o) = operand {
                collect_aggregates(o, out);
            }
            for c in conditions {
                collect_aggregates(&c.condition, out);
                collect_aggregates(&c.result, out);
            }
            if let Some(e) = else_result {
                collect_aggregates(e, out);
            }
        }
        _ => {}
    }
}

/// The expressions of a window call that are evaluated per row: its arguments, its
/// FILTER, and its inline window's PARTITION BY and ORDER BY.
fn window_call_subexprs(f: &ast::Function) -> Vec<&ast::Expr> {
    let mut out = function_arg_exprs(f);
    out.extend(f.filter.as_deref());
    if let Some(ast::WindowType::WindowSpec(spec)) = &f.over {
        out.extend(spec.partition_by.iter());
        out.extend(spec.order_by.iter().map(|o| &o.expr));
    }
    out
}

/// The plain argument expressions of a call.
fn function_arg_exprs(f: &ast::Function) -> Vec<&ast::Expr> {
    let mut out = Vec::new();
    if let ast::FunctionArguments::List(list) = &f.args {
        for a in &list.args {
            if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) = a {
                out.push(x);
            }
        }
    }
    out
}

/// The direct sub-expressions of `e` that are evaluated in its own scope (not those
/// of subqueries), for the expression forms the planner knows.
fn subexprs(e: &ast::Expr) -> Vec<&ast::Expr> {
    use ast::Expr::*;
    match e {
        Function(f) if f.over.is_some() => window_call_subexprs(f),
        Function(f) => {
            let mut out = function_arg_exprs(f);
            out.extend(f.filter.as_deref());
            out
        }
        BinaryOp { left, right, .. } => vec![left, right],
        UnaryOp { expr, .. }
        | Nested(expr)
        | IsNull(expr)
        | IsNotNull(expr)
        | IsTrue(expr)
        | IsFalse(expr)
        | IsNotTrue(expr)
        | IsNotFalse(expr)
        | Cast { expr, .. }
        | InSubquery { expr, .. }
        | AnyOp { left: expr, .. }
        | AllOp { left: expr, .. }
        | Ceil { expr, .. }
        | Floor { expr, .. }
        | Extract { expr, .. } => vec![expr],
        IsDistinctFrom(a, b) | IsNotDistinctFrom(a, b) => vec![a, b],
        Between {
            expr, low, high, ..
        } => vec![expr, low, high],
        InList { expr, list, .. } => std::iter::once(&**expr).chain(list.iter()).collect(),
        Like { expr, pattern, .. } | ILike { expr, pattern, .. } => vec![expr, pattern],
        Position { expr, r#in } => vec![expr, r#in],
        Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => std::iter::once(&**expr)
            .chain(substring_from.as_deref())
            .chain(substring_for.as_deref())
            .collect(),
        Trim {
            expr,
            trim_what,
            trim_characters,
            ..
        } => std::iter::once(&**expr)
            .chain(trim_what.as_deref())
            .chain(trim_characters.iter().flatten())
            .collect(),
        Overlay {
            expr,
            overlay_what,
            overlay_from,
            overlay_for,
        } => [&**expr, overlay_what, overlay_from]
            .into_iter()
            .chain(overlay_for.as_deref())
            .collect(),
        Case {
            operand,
            conditions,
            else_result,
            ..
        } => operand
            .as_deref()
            .into_iter()
            .chain(conditions.iter().flat_map(|c| [&c.condition, &c.result]))
            .chain(else_result.as_deref())
            .collect(),
        _ => vec![],
    }
}

/// Collects the sub-expressions of `e` for which `found` holds (not looking inside
/// them, nor inside aggregate calls, CASE or subqueries), without duplicates.
///
/// Set-returning functions are looked for outside CASE and COALESCE only
/// (`into_case` false), as PostgreSQL allows them nowhere inside those.
fn collect_calls(
    e: &ast::Expr,
    found: &dyn Fn(&ast::Expr) -> bool,
    into_case: bool,
    out: &mut Vec<ast::Expr>,
) {
    if found(e) {
        if !out.contains(e) {
            out.push(e.clone());
        }
        return;
    }
    match e {
        ast::Expr::Function(f) if f.over.is_none() && aggregate_func(f).is_some() => {}
        ast::Expr::Case { .. } if !into_case => {}
        ast::Expr::Function(f)
            if !into_case
                && f.name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(normalize_ident)
                    == Some("coalesce".into()) => {}
        _ => {
            for x in subexprs(e) {
                collect_calls(x, found, into_case, out);
            }
        }
    }
}

/// The arguments of a call: the argument expressions, whether DISTINCT was given,
/// whether the argument is `*`, and the ORDER BY inside the parentheses. FILTER,
/// OVER and WITHIN GROUP are the caller's to check.
struct CallArgs<'f> {
    args: Vec<&'f ast::Expr>,
    distinct: bool,
    star: bool,
    order_by: &'f [ast::OrderByExpr],
}

fn call_args(f: &ast::Function) -> Result<CallArgs<'_>, PlanError> {
    let name = f.name.to_string();
    match &f.args {
        ast::FunctionArguments::None => Ok(CallArgs {
            args: vec![],
            distinct: false,
            star: false,
            order_by: &[],
        }),
        ast::FunctionArguments::List(list) => {
            let mut order_by: &[ast::OrderByExpr] = &[];
            for clause in &list.clauses {
                match clause {
                    ast::FunctionArgumentClause::OrderBy(keys) if order_by.is_empty() => {
                        order_by = keys
                    }
                    other => {
                        return Err(PlanError::unsupported(format!(
                            "{other} in the arguments of {name}"
                        )))
                    }
                }
            }
            let distinct = matches!(
                list.duplicate_treatment,
                Some(ast::DuplicateTreatment::Distinct)
            );
            let mut args = Vec::new();
            let mut star = false;
            for a in &list.args {
                match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => args.push(e),
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                    _ => {
                        return Err(PlanError::unsupported(format!(
                            "this argument form of {name}"
                        )))
                    }
                }
            }
            Ok(CallArgs {
                args,
                distinct,
                star,
                order_by,
            })
        }
        ast::FunctionArguments::Subquery(_) => {
            Err(PlanError::unsupported("subquery function arguments"))
        }
    }
}

/// The arguments of a call to a function that is not an aggregate: FILTER, OVER,
/// WITHIN GROUP and ORDER BY are errors, as in PostgreSQL.
fn function_args(f: &ast::Function) -> Result<(Vec<&ast::Expr>, bool, bool), PlanError> {
    let name = f.name.to_string();
    if f.over.is_some() {
        return Err(PlanError::unsupported(format!(
            "window function call {name}(...) OVER"
        )));
    }
    let not_aggregate = |what: &str| {
        PlanError::WrongObjectType(format!(
            "{what} specified, but {name} is not an aggregate function"
        ))
    };
    if f.filter.is_some() {
        return Err(not_aggregate("FILTER"));
    }
    if !f.within_group.is_empty() {
        return Err(not_aggregate("WITHIN GROUP"));
    }
    let call = call_args(f)?;
    if !call.order_by.is_empty() {
        return Err(not_aggregate("ORDER BY"));
    }
    Ok((call.args, call.distinct, call.star))
}

fn plan_aggregate(ecx: &ExprContext, e: &ast::Expr) -> Result<HirAggregateExpr, PlanError> {
    plan_aggregate_in(ecx, e, false)
}

/// Plans an aggregate call. For a window aggregate (`window`), the arguments are
/// planned in `ecx` itself (after GROUP BY, so they may read keys and aggregates);
/// otherwise over the input of the grouping.
fn plan_aggregate_in(
    ecx: &ExprContext,
    e: &ast::Expr,
    window: bool,
) -> Result<HirAggregateExpr, PlanError> {
    let ast::Expr::Function(f) = e else {
        unreachable!("collected aggregates are function calls")
    };
    let mut func = aggregate_func(f).expect("collected aggregates are known");
    // The name as called, for errors (`every`, not `bool_and`).
    let name = f
        .name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(normalize_ident)
        .unwrap_or_default();
    if f.over.is_some() {
        return Err(PlanError::unsupported(format!(
            "window function call {name}(...) OVER"
        )));
    }
    if !f.within_group.is_empty() {
        return Err(PlanError::WrongObjectType(format!(
            "{name} is not an ordered-set aggregate, so it cannot have WITHIN GROUP"
        )));
    }
    let CallArgs {
        args,
        distinct,
        star,
        order_by,
    } = call_args(f)?;
    let inner = if window {
        ExprContext { ..*ecx }
    } else {
        ExprContext {
            in_aggregate: true,
            ..ExprContext::new(ecx.qcx, ecx.scope, ecx.types)
        }
    };
    if distinct {
        // PostgreSQL: the sort keys of a DISTINCT aggregate must be among its arguments.
        for key in order_by {
            if !args.iter().any(|a| **a == key.expr) {
                return Err(PlanError::InvalidColumnReference(
                    "in an aggregate with DISTINCT, ORDER BY expressions must appear in argument list"
                        .into(),
                ));
            }
        }
    }
    // The sort keys, planned (and so checked) for every aggregate; only string_agg's
    // result depends on them.
    let mut keys = Vec::new();
    for key in order_by {
        keys.push((plan_expr(&inner, &key.expr, None)?, &key.options));
    }
    let type_name = |planned: &HirScalarExpr, ast_expr: &ast::Expr| {
        if is_unknown(&inner, ast_expr) {
            "unknown".to_string()
        } else {
            planned.typ(ecx.types).scalar_type.to_string()
        }
    };
    let expr = match (&mut func, star, args.as_slice()) {
        (AggregateFunc::Count, true, []) => HirScalarExpr::literal(Datum::True, ScalarType::Bool),
        (AggregateFunc::StringAgg { order_by }, false, [value, delimiter]) => {
            let v = plan_expr(&inner, value, Some(ScalarType::String))?;
            let d = plan_expr(&inner, delimiter, Some(ScalarType::String))?;
            let (vt, dt) = (v.typ(ecx.types).scalar_type, d.typ(ecx.types).scalar_type);
            if vt == ScalarType::Bytes && dt == ScalarType::Bytes {
                return Err(PlanError::unsupported("string_agg(bytea, bytea)"));
            }
            let text =
                |t: ScalarType, p: &HirScalarExpr| t == ScalarType::String || is_null_literal(p);
            if !text(vt, &v) || !text(dt, &d) {
                return Err(PlanError::UnknownFunction(format!(
                    "{name}({}, {})",
                    type_name(&v, value),
                    type_name(&d, delimiter)
                )));
            }
            let mut fields = vec![v, d];
            for (i, (key, options)) in keys.into_iter().enumerate() {
                order_by.push(column_order(2 + i, options));
                fields.push(key);
            }
            HirScalarExpr::CallVariadic {
                func: VariadicFunc::Record,
                exprs: fields,
            }
        }
        (
            AggregateFunc::ArrayAgg {
                elem_type,
                order_by,
            },
            false,
            [value],
        ) => {
            let v = plan_expr(&inner, value, None)?;
            let vt = v.typ(ecx.types).scalar_type;
            if let ScalarType::Array(_) = vt {
                return Err(PlanError::unsupported(
                    "array_agg of arrays (a multidimensional array)",
                ));
            }
            if is_unknown(&inner, value) && !is_null_literal(&v) {
                return Err(PlanError::IndeterminateDatatype(
                    "could not determine polymorphic type because input has type unknown".into(),
                ));
            }
            *elem_type = vt;
            record_with_keys(vec![v], keys, order_by)
        }
        (AggregateFunc::JsonbAgg { order_by }, false, [value]) => {
            let v = plan_expr(&inner, value, None)?;
            record_with_keys(vec![v], keys, order_by)
        }
        (AggregateFunc::JsonbObjectAgg { order_by }, false, [key, value]) => {
            let k = plan_expr(&inner, key, None)?;
            let v = plan_expr(&inner, value, None)?;
            record_with_keys(vec![k, v], keys, order_by)
        }
        (_, false, [arg]) => {
            let hint = match func {
                AggregateFunc::BoolAnd | AggregateFunc::BoolOr => Some(ScalarType::Bool),
                _ => None,
            };
            let planned = plan_expr(&inner, arg, hint)?;
            let t = planned.typ(ecx.types).scalar_type;
            if !func.accepts(t) {
                return Err(PlanError::UnknownFunction(format!(
                    "{name}({})",
                    type_name(&planned, arg)
                )));
            }
            planned
        }
        _ => {
            // PostgreSQL names the argument types.
            let mut types = Vec::new();
            for a in &args {
                types.push(type_name(&plan_expr(&inner, a, None)?, a));
            }
            if star {
                types.push("*".into());
            }
            return Err(PlanError::UnknownFunction(format!(
                "{name}({})",
                types.join(", ")
            )));
        }
    };
    // agg(x) FILTER (WHERE c) is agg(CASE WHEN c THEN x END): every aggregate skips
    // NULLs (count(*) counts the non-null `true`s).
    let expr = match &f.filter {
        None => expr,
        Some(filter) => {
            let fcx = if window {
                ExprContext {
                    clause: Some("FILTER"),
                    ..*ecx
                }
            } else {
                ExprContext::new(ecx.qcx, ecx.scope, ecx.types).in_clause("FILTER")
            };
            let cond = plan_predicate(&fcx, filter, "FILTER")?;
            let typ = expr.typ(ecx.types).scalar_type;
            HirScalarExpr::If {
                cond: Box::new(cond),
                then: Box::new(expr),
                els: Box::new(HirScalarExpr::literal_null(typ)),
            }
        }
    };
    Ok(HirAggregateExpr {
        func,
        expr: Box::new(expr),
        distinct,
    })
}

/// The record an aggregate of several arguments or with ORDER BY receives: the
/// arguments, then the sort keys, which `order_by` is set to sort by.
fn record_with_keys(
    mut fields: Vec<HirScalarExpr>,
    keys: Vec<(HirScalarExpr, &ast::OrderByOptions)>,
    order_by: &mut Vec<ColumnOrder>,
) -> HirScalarExpr {
    let first_key = fields.len();
    for (i, (key, options)) in keys.into_iter().enumerate() {
        order_by.push(column_order(first_key + i, options));
        fields.push(key);
    }
    HirScalarExpr::CallVariadic {
        func: VariadicFunc::Record,
        exprs: fields,
    }
}

/// Plans a scalar expression over `scope` (UPDATE's SET and WHERE, INSERT's VALUES,
/// DEFAULT expressions), where aggregates are not allowed: `clause` names the place
/// for that error ("WHERE", "UPDATE", "VALUES", ...). With `predicate`, the
/// expression must be boolean.
pub fn plan_scalar_in_scope(
    qcx: &QueryContext,
    scope: &Scope,
    types: &[ColumnType],
    e: &ast::Expr,
    hint: Option<ScalarType>,
    clause: &'static str,
    predicate: bool,
) -> Result<HirScalarExpr, PlanError> {
    let ecx = ExprContext::new(qcx, scope, types).in_clause(clause);
    if predicate {
        plan_predicate(&ecx, e, clause)
    } else {
        plan_expr(&ecx, e, hint)
    }
}

/// Plans a condition that must be boolean (WHERE, ON, HAVING).
fn plan_predicate(
    ecx: &ExprContext,
    e: &ast::Expr,
    clause: &str,
) -> Result<HirScalarExpr, PlanError> {
    let planned = plan_expr(ecx, e, Some(ScalarType::Bool))?;
    let t = planned.typ(ecx.types).scalar_type;
    if t != ScalarType::Bool && !is_null_literal(&planned) {
        return Err(PlanError::DatatypeMismatch(format!(
            "argument of {clause} must be type boolean, not type {t}"
        )));
    }
    Ok(planned)
}

/// Maps a SQL type name to a scalar type; its type modifier is checked and dropped
/// (see [`parse_data_type_with_typmod`]).
pub fn parse_data_type(t: &ast::DataType) -> Result<ScalarType, PlanError> {
    Ok(parse_data_type_with_typmod(t)?.0)
}

/// PostgreSQL's limit on `numeric` precision and on the magnitude of its scale.
const NUMERIC_MAX_PRECISION: u64 = 1000;
/// PostgreSQL's limit on `varchar(n)` and `char(n)` (`MaxAttrSize`).
const MAX_CHAR_LENGTH: u64 = 10 * 1024 * 1024;
/// The most fractional-second digits a time, timestamp or interval keeps.
const MAX_SECONDS_PRECISION: u64 = 6;

/// Maps a SQL type name to a scalar type and its type modifier, checked as PostgreSQL's
/// `typmodin` functions check them (22023): `numeric(p, s)` with p in 1..=1000 and s
/// in -1000..=1000 (`numeric(p)` is `numeric(p, 0)`); `varchar(n)` and `char(n)` with
/// n in 1..=10485760, where `char` alone is `char(1)`; `float(p)` is `real` for p up
/// to 24 and `double precision` up to 53. A seconds precision above 6 is 6
/// (PostgreSQL warns). Types without modifiers reject them (42601).
pub fn parse_data_type_with_typmod(
    t: &ast::DataType,
) -> Result<(ScalarType, Option<Typmod>), PlanError> {
    use ast::DataType as D;
    if let D::Array(def) = t {
        // One-dimensional arrays of any element type; an element's modifier is checked
        // and dropped, `int[][]` is `int[]` and a size (`int[3]`) is ignored, as in
        // PostgreSQL.
        let inner = match def {
            ast::ArrayElemTypeDef::SquareBracket(inner, _)
            | ast::ArrayElemTypeDef::AngleBracket(inner)
            | ast::ArrayElemTypeDef::Parenthesis(inner) => inner,
            ast::ArrayElemTypeDef::None => return Err(PlanError::UnknownType("array".into())),
        };
        let (elem, _) = parse_data_type_with_typmod(inner)?;
        let array = elem
            .array_of()
            .ok_or_else(|| PlanError::UnknownType(format!("{elem}[]")))?;
        return Ok((array, None));
    }
    let text = t.to_string().to_lowercase();
    if text == "json" {
        return Err(PlanError::unsupported("type json (use jsonb)"));
    }
    let (base, has_modifier) = match text.find('(') {
        Some(open) => {
            let close = text.rfind(')').unwrap_or(text.len() - 1);
            let base = format!("{}{}", text[..open].trim_end(), &text[close + 1..]);
            (base, true)
        }
        None => (text.clone(), false),
    };
    let base = base.trim();
    let typ =
        ScalarType::from_sql_name(base).ok_or_else(|| PlanError::UnknownType(base.to_string()))?;
    let invalid = |m: String| PlanError::InvalidParameterValue(m);
    let typmod = match t {
        D::Numeric(info) | D::Decimal(info) | D::Dec(info) => match info {
            ast::ExactNumberInfo::None => None,
            ast::ExactNumberInfo::Precision(p) => Some(numeric_typmod(*p, 0)?),
            ast::ExactNumberInfo::PrecisionAndScale(p, s) => Some(numeric_typmod(*p, *s)?),
        },
        D::Varchar(length) | D::CharacterVarying(length) | D::CharVarying(length) => length
            .as_ref()
            .map(|l| char_length(l, "varchar").map(|length| Typmod::Varchar { length }))
            .transpose()?,
        D::Char(length) | D::Character(length) => Some(Typmod::Char {
            length: match length {
                None => 1,
                Some(l) => char_length(l, "char")?,
            },
        }),
        D::Float(info) => {
            let typ = match info {
                ast::ExactNumberInfo::None => ScalarType::Float64,
                ast::ExactNumberInfo::Precision(0) => {
                    return Err(invalid(
                        "precision for type float must be at least 1 bit".into(),
                    ))
                }
                ast::ExactNumberInfo::Precision(1..=24) => ScalarType::Float32,
                ast::ExactNumberInfo::Precision(25..=53) => ScalarType::Float64,
                ast::ExactNumberInfo::Precision(_) => {
                    return Err(invalid(
                        "precision for type float must be less than 54 bits".into(),
                    ))
                }
                ast::ExactNumberInfo::PrecisionAndScale(..) => {
                    return Err(PlanError::Syntax("syntax error at or near \",\"".into()))
                }
            };
            return Ok((typ, None));
        }
        D::Time(precision, _) | D::Timestamp(precision, _) => precision.map(seconds_precision),
        D::Interval {
            precision: Some(p), ..
        } => Some(seconds_precision(*p)),
        // `bpchar(n)`; sqlparser reads the other types that take modifiers itself.
        D::Custom(_, modifiers) if base == "bpchar" => match modifiers.as_slice() {
            [] => None,
            [n] => Some(Typmod::Char {
                length: check_char_length(
                    n.parse::<i64>().map_err(|_| {
                        PlanError::Syntax(
                            "type modifiers must be simple constants or identifiers".into(),
                        )
                    })?,
                    "char",
                )?,
            }),
            _ => return Err(invalid("invalid type modifier".into())),
        },
        _ if has_modifier => return Err(modifier_not_allowed(base)),
        _ => None,
    };
    Ok((typ, typmod))
}

fn modifier_not_allowed(name: &str) -> PlanError {
    PlanError::Syntax(format!("type modifier is not allowed for type \"{name}\""))
}

/// `numeric(precision, scale)` as written (unsigned precision).
fn numeric_typmod(precision: u64, scale: i64) -> Result<Typmod, PlanError> {
    numeric_typmod_signed(i64::try_from(precision).unwrap_or(i64::MAX), scale)
}

/// `numeric(precision, scale)`, checked like PostgreSQL's `numerictypmodin`.
fn numeric_typmod_signed(precision: i64, scale: i64) -> Result<Typmod, PlanError> {
    let max = NUMERIC_MAX_PRECISION as i64;
    if !(1..=max).contains(&precision) {
        return Err(PlanError::InvalidParameterValue(format!(
            "NUMERIC precision {precision} must be between 1 and {max}"
        )));
    }
    if !(-max..=max).contains(&scale) {
        return Err(PlanError::InvalidParameterValue(format!(
            "NUMERIC scale {scale} must be between -{max} and {max}"
        )));
    }
    Ok(Typmod::Numeric {
        precision: u16::try_from(precision).expect("checked against 1000"),
        scale: i16::try_from(scale).expect("checked against 1000"),
    })
}

/// The length of `varchar(n)` or `char(n)` (`what` is "varchar" or "char").
fn char_length(length: &ast::CharacterLength, what: &str) -> Result<u32, PlanError> {
    match length {
        ast::CharacterLength::IntegerLength { length, unit: None } => {
            check_char_length(i64::try_from(*length).unwrap_or(i64::MAX), what)
        }
        other => Err(PlanError::Syntax(format!(
            "syntax error at or near \"{other}\""
        ))),
    }
}

/// A `varchar(n)` or `char(n)` length, checked like PostgreSQL's `anychar_typmodin`.
fn check_char_length(length: i64, what: &str) -> Result<u32, PlanError> {
    if length < 1 {
        return Err(PlanError::InvalidParameterValue(format!(
            "length for type {what} must be at least 1"
        )));
    }
    if length > MAX_CHAR_LENGTH as i64 {
        return Err(PlanError::InvalidParameterValue(format!(
            "length for type {what} cannot exceed {MAX_CHAR_LENGTH}"
        )));
    }
    Ok(u32::try_from(length).expect("checked against MAX_CHAR_LENGTH"))
}

/// The fractional-second precision of `time(p)`, `timestamp(p)` or `interval(p)`:
/// above 6 it is 6, as in PostgreSQL (which also warns).
fn seconds_precision(precision: u64) -> Typmod {
    Typmod::SecondsPrecision {
        precision: u8::try_from(precision.min(MAX_SECONDS_PRECISION)).expect("at most 6"),
    }
}

/// `e` (of the typmod's base type) coerced to `typmod`, if any: see
/// [`Typmod::coercion`].
pub fn apply_typmod(e: HirScalarExpr, typmod: Option<Typmod>, explicit: bool) -> HirScalarExpr {
    match typmod.and_then(|t| t.coercion(explicit)) {
        Some(func) => e.call_unary(func),
        None => e,
    }
}

fn plan_literal(v: &ast::Value, hint: Option<ScalarType>) -> Result<HirScalarExpr, PlanError> {
    Ok(match v {
        ast::Value::Null => HirScalarExpr::literal_null(hint.unwrap_or(ScalarType::String)),
        ast::Value::Boolean(b) => HirScalarExpr::literal(Datum::from_bool(*b), ScalarType::Bool),
        ast::Value::Number(n, _) => {
            if let Ok(i) = n.parse::<i32>() {
                HirScalarExpr::literal(Datum::Int32(i), ScalarType::Int32)
            } else if let Ok(i) = n.parse::<i64>() {
                HirScalarExpr::literal(Datum::Int64(i), ScalarType::Int64)
            } else if let Some(d) = strconv::parse_numeric(n) {
                HirScalarExpr::literal(Datum::Numeric(d), ScalarType::Numeric)
            } else if matches!(hint, Some(ScalarType::Float32 | ScalarType::Float64)) {
                // Beyond Freshet's numeric (`1e100::float8`): read it as the float it
                // is about to become.
                let f = typed_string(n, ScalarType::Float64)?;
                return Ok(cast_to(f, ScalarType::Float64, hint.expect("matched")));
            } else {
                return Err(PlanError::unsupported(format!(
                    "numeric literal {n} beyond 28 significant digits"
                )));
            }
        }
        ast::Value::SingleQuotedString(s)
        | ast::Value::EscapedStringLiteral(s)
        | ast::Value::DollarQuotedString(ast::DollarQuotedString { value: s, .. }) => {
            typed_string(s, hint.unwrap_or(ScalarType::String))?
        }
        other => return Err(PlanError::unsupported(format!("literal {other}"))),
    })
}

/// A string literal read as `typ` (PostgreSQL's "unknown" literals).
fn typed_string(s: &str, typ: ScalarType) -> Result<HirScalarExpr, PlanError> {
    let row = strconv::parse_datum(s, typ)?;
    Ok(HirScalarExpr::Literal(row, typ.nullable(false)))
}

/// Whether the expression's type comes from its context (string literal, NULL, `$n`
/// of unknown type).
fn is_unknown(ecx: &ExprContext, e: &ast::Expr) -> bool {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(_)
            | ast::Value::EscapedStringLiteral(_)
            | ast::Value::DollarQuotedString(_)
            | ast::Value::Null => true,
            ast::Value::Placeholder(p) => param_index(p)
                .map(|i| {
                    ecx.qcx
                        .params
                        .borrow()
                        .types
                        .get(i)
                        .copied()
                        .flatten()
                        .is_none()
                })
                .unwrap_or(false),
            _ => false,
        },
        ast::Expr::Nested(inner) => is_unknown(ecx, inner),
        _ => false,
    }
}

fn param_index(p: &str) -> Option<usize> {
    p.strip_prefix('$')?.parse::<usize>().ok()?.checked_sub(1)
}

fn plan_param(
    ecx: &ExprContext,
    p: &str,
    hint: Option<ScalarType>,
) -> Result<HirScalarExpr, PlanError> {
    let i = param_index(p).ok_or_else(|| PlanError::Syntax(format!("invalid parameter {p}")))?;
    let mut params = ecx.qcx.params.borrow_mut();
    if let Some(values) = &params.values {
        if values.len() <= i {
            return Err(PlanError::NoParameter(i + 1));
        }
    }
    if params.types.len() <= i {
        params.types.resize(i + 1, None);
    }
    let typ = match params.types[i] {
        Some(t) => t,
        None => {
            let t = hint.unwrap_or(ScalarType::String);
            params.types[i] = Some(t);
            t
        }
    };
    match &params.values {
        None => Ok(HirScalarExpr::Literal(
            Row::pack_slice(&[Datum::Null]),
            typ.nullable(true),
        )),
        Some(values) => match values.get(i) {
            Some(Some(text)) => typed_string(text, typ),
            Some(None) => Ok(HirScalarExpr::literal_null(typ)),
            None => Err(PlanError::NoParameter(i + 1)),
        },
    }
}

/// Plans the operators of jsonb (`->`, `->>`, `#>`, `#>>`, `@>`, `<@`, `?`, `?|`, `?&`,
/// `||`, `-`) and arrays (`@>`, `<@`, `&&`, `||`), or `None` if neither operand is a
/// jsonb or an array (then `||` and `-` are the text and number operators). An untyped
/// operand takes the type the operator gives that side: a key is text, a path text[],
/// the other side of `@>` or `||` the jsonb or array type.
fn plan_container_binary(
    ecx: &ExprContext,
    op: &ast::BinaryOperator,
    left: &ast::Expr,
    right: &ast::Expr,
) -> Result<Option<HirScalarExpr>, PlanError> {
    use ast::BinaryOperator as Op;
    use ScalarType::{Int16, Int32, Jsonb, String as Text};
    let jsonb_only = matches!(
        op,
        Op::Arrow
            | Op::LongArrow
            | Op::HashArrow
            | Op::HashLongArrow
            | Op::Question
            | Op::QuestionPipe
            | Op::QuestionAnd
    );
    let container_only = jsonb_only || matches!(op, Op::AtArrow | Op::ArrowAt | Op::PGOverlap);
    if !container_only && !matches!(op, Op::StringConcat | Op::Minus) {
        return Ok(None);
    }
    let (lu, ru) = (is_unknown(ecx, left), is_unknown(ecx, right));
    let plan_typed = |e: &ast::Expr, unknown: bool| -> Result<Option<HirScalarExpr>, PlanError> {
        if unknown {
            Ok(None)
        } else {
            plan_expr(ecx, e, None).map(Some)
        }
    };
    let (l, r) = (plan_typed(left, lu)?, plan_typed(right, ru)?);
    let typ = |e: &Option<HirScalarExpr>| e.as_ref().map(|e| e.typ(ecx.types).scalar_type);
    let (lt, rt) = (typ(&l), typ(&r));
    let name = |t: Option<ScalarType>| t.map(|t| t.to_string()).unwrap_or("unknown".into());
    let no_operator = || PlanError::UnknownOperator(format!("{} {op} {}", name(lt), name(rt)));
    let is_container = |t: Option<ScalarType>| matches!(t, Some(Jsonb | ScalarType::Array(_)));
    if !is_container(lt) && !is_container(rt) {
        if !container_only {
            return Ok(None);
        }
        if lu && ru {
            return Err(PlanError::UnknownOperator(format!("unknown {op} unknown")));
        }
        if !lu {
            return Err(no_operator());
        }
    }
    // Each operand as `t`: an untyped literal is read as `t`, a typed value must be one.
    let side = |planned: Option<HirScalarExpr>, e: &ast::Expr, t: ScalarType| match planned {
        None => plan_expr(ecx, e, Some(t)),
        Some(p) if p.typ(ecx.types).scalar_type == t => Ok(p),
        Some(_) => Err(no_operator()),
    };
    let jsonb_left = lt == Some(Jsonb) || (lu && rt != Some(Jsonb) && jsonb_only);
    Ok(Some(match op {
        Op::Arrow | Op::LongArrow | Op::Minus if jsonb_left || lt == Some(Jsonb) => {
            let j = side(l, left, Jsonb)?;
            let (key, func) = match rt {
                None | Some(Text) => (
                    side(r, right, Text)?,
                    match op {
                        Op::Arrow => BinaryFunc::JsonbField,
                        Op::LongArrow => BinaryFunc::JsonbFieldText,
                        _ => BinaryFunc::JsonbDeleteKey,
                    },
                ),
                Some(t @ (Int16 | Int32)) => (
                    cast_to(r.expect("typed"), t, Int32),
                    match op {
                        Op::Arrow => BinaryFunc::JsonbIndex,
                        Op::LongArrow => BinaryFunc::JsonbIndexText,
                        _ => BinaryFunc::JsonbDeleteIndex,
                    },
                ),
                Some(_) => return Err(no_operator()),
            };
            j.call_binary(key, func)
        }
        Op::HashArrow | Op::HashLongArrow | Op::QuestionPipe | Op::QuestionAnd => {
            let j = side(l, left, Jsonb)?;
            let texts = Text.array_of().expect("text has an array type");
            let path = side(r, right, texts)?;
            j.call_binary(
                path,
                match op {
                    Op::HashArrow => BinaryFunc::JsonbPath,
                    Op::HashLongArrow => BinaryFunc::JsonbPathText,
                    Op::QuestionPipe => BinaryFunc::JsonbExistsAny,
                    _ => BinaryFunc::JsonbExistsAll,
                },
            )
        }
        Op::Question => {
            let j = side(l, left, Jsonb)?;
            j.call_binary(side(r, right, Text)?, BinaryFunc::JsonbExists)
        }
        Op::AtArrow | Op::ArrowAt | Op::PGOverlap => {
            let t = match (lt, rt) {
                (Some(t), _) | (None, Some(t)) => t,
                (None, None) => return Err(no_operator()),
            };
            let func = match (t, op) {
                (Jsonb, Op::AtArrow | Op::ArrowAt) => BinaryFunc::JsonbContains,
                (ScalarType::Array(_), Op::AtArrow | Op::ArrowAt) => BinaryFunc::ArrayContains,
                (ScalarType::Array(_), _) => BinaryFunc::ArrayOverlap,
                _ => return Err(no_operator()),
            };
            let (a, b) = (side(l, left, t)?, side(r, right, t)?);
            if *op == Op::ArrowAt {
                b.call_binary(a, func)
            } else {
                a.call_binary(b, func)
            }
        }
        Op::StringConcat => match (lt, rt) {
            (Some(Jsonb), _) | (_, Some(Jsonb)) => {
                side(l, left, Jsonb)?.call_binary(side(r, right, Jsonb)?, BinaryFunc::JsonbConcat)
            }
            (Some(a @ ScalarType::Array(_)), Some(b @ ScalarType::Array(_))) => {
                if a != b {
                    return Err(no_operator());
                }
                side(l, left, a)?.call_binary(side(r, right, b)?, BinaryFunc::ArrayConcat)
            }
            (Some(a @ ScalarType::Array(e)), other) | (other, Some(a @ ScalarType::Array(e))) => {
                let array_left = matches!(lt, Some(ScalarType::Array(_)));
                let (array_expr, other_expr, other_ast) = if array_left {
                    (l, r, right)
                } else {
                    (r, l, left)
                };
                let array = array_expr.expect("typed");
                match other {
                    // An untyped operand is an array of the same type.
                    None => {
                        let o = plan_expr(ecx, other_ast, Some(a))?;
                        if array_left {
                            array.call_binary(o, BinaryFunc::ArrayConcat)
                        } else {
                            o.call_binary(array, BinaryFunc::ArrayConcat)
                        }
                    }
                    Some(t) if common_type(t, *e) == Some(*e) => {
                        let o = cast_to(other_expr.expect("typed"), t, *e);
                        if array_left {
                            array.call_binary(o, BinaryFunc::ArrayAppend)
                        } else {
                            o.call_binary(array, BinaryFunc::ArrayPrepend)
                        }
                    }
                    Some(_) => return Err(no_operator()),
                }
            }
            _ => return Err(no_operator()),
        },
        _ => return Ok(None),
    }))
}

/// `x op ANY (array)` and `x op ALL (array)` over an array expression (not a
/// subquery): `x` and the elements compared at their common type.
fn plan_array_quantified(
    ecx: &ExprContext,
    left: &ast::Expr,
    op: &ast::BinaryOperator,
    right: &ast::Expr,
    all: bool,
) -> Result<HirScalarExpr, PlanError> {
    use ast::BinaryOperator as Op;
    let cmp = match op {
        Op::Eq => expr::func::CompareOp::Eq,
        Op::NotEq => expr::func::CompareOp::NotEq,
        Op::Lt => expr::func::CompareOp::Lt,
        Op::LtEq => expr::func::CompareOp::Lte,
        Op::Gt => expr::func::CompareOp::Gt,
        Op::GtEq => expr::func::CompareOp::Gte,
        other => {
            return Err(PlanError::unsupported(format!(
                "operator {other} with ANY or ALL"
            )))
        }
    };
    let (lu, ru) = (is_unknown(ecx, left), is_unknown(ecx, right));
    let (l, r) = if ru {
        let l = plan_expr(ecx, left, None)?;
        let lt = l.typ(ecx.types).scalar_type;
        let r = plan_expr(ecx, right, lt.array_of())?;
        (l, r)
    } else {
        let r = plan_expr(ecx, right, None)?;
        let elem = r.typ(ecx.types).scalar_type.element_type();
        let l = plan_expr(ecx, left, if lu { elem } else { None })?;
        (l, r)
    };
    let (lt, rt) = (l.typ(ecx.types).scalar_type, r.typ(ecx.types).scalar_type);
    let Some(elem) = rt.element_type() else {
        return Err(PlanError::WrongObjectType(
            "op ANY/ALL (array) requires array on right side".into(),
        ));
    };
    let target = common_type(lt, elem)
        .ok_or_else(|| PlanError::UnknownOperator(format!("{lt} {op} {elem}")))?;
    let target_array = target
        .array_of()
        .ok_or_else(|| PlanError::UnknownOperator(format!("{lt} {op} {elem}")))?;
    Ok(cast_to(l, lt, target).call_binary(
        cast_to(r, rt, target_array),
        BinaryFunc::ArrayQuantified { op: cmp, all },
    ))
}

/// `ARRAY[...]`: the elements at their common type (the context's element type for
/// untyped ones, else text). An empty `ARRAY[]` needs a cast to give it a type;
/// arrays of arrays are multidimensional, which Freshet does not have (0A000).
fn plan_array_constructor(
    ecx: &ExprContext,
    elems: &[ast::Expr],
    hint: Option<ScalarType>,
) -> Result<HirScalarExpr, PlanError> {
    let elem_hint = hint.and_then(ScalarType::element_type);
    if elems.is_empty() {
        let elem_type = elem_hint.ok_or_else(|| {
            PlanError::IndeterminateDatatype("cannot determine type of empty array".into())
        })?;
        return Ok(HirScalarExpr::CallVariadic {
            func: VariadicFunc::ArrayCreate { elem_type },
            exprs: vec![],
        });
    }
    if elems.iter().any(|e| matches!(e, ast::Expr::Array(_))) {
        return Err(PlanError::unsupported("multidimensional arrays"));
    }
    let refs: Vec<&ast::Expr> = elems.iter().collect();
    // As in PostgreSQL, untyped elements are text whatever the context: `ARRAY['a'] =
    // ARRAY[1]` compares text[] with integer[].
    let (exprs, elem_type) = plan_homogeneous(ecx, &refs, "ARRAY", None)?;
    if let ScalarType::Array(_) = elem_type {
        return Err(PlanError::unsupported("multidimensional arrays"));
    }
    Ok(HirScalarExpr::CallVariadic {
        func: VariadicFunc::ArrayCreate { elem_type },
        exprs,
    })
}

/// `a[i]` of a one-dimensional array: NULL out of bounds. Slices and subscripts of
/// several dimensions are 0A000.
fn plan_subscript(
    ecx: &ExprContext,
    root: &ast::Expr,
    chain: &[ast::AccessExpr],
) -> Result<HirScalarExpr, PlanError> {
    let [ast::AccessExpr::Subscript(subscript)] = chain else {
        return Err(PlanError::unsupported(
            "field access or subscripts of several dimensions",
        ));
    };
    let ast::Subscript::Index { index } = subscript else {
        return Err(PlanError::unsupported("array slices"));
    };
    let array = plan_expr(ecx, root, None)?;
    let t = array.typ(ecx.types).scalar_type;
    if t.element_type().is_none() {
        return Err(PlanError::DatatypeMismatch(format!(
            "cannot subscript type {t} because it does not support subscripting"
        )));
    }
    let i = plan_expr(ecx, index, Some(ScalarType::Int32))?;
    let it = i.typ(ecx.types).scalar_type;
    if !matches!(it, ScalarType::Int16 | ScalarType::Int32) && !is_null_literal(&i) {
        return Err(PlanError::DatatypeMismatch(
            "array subscript must have type integer".into(),
        ));
    }
    Ok(array.call_binary(cast_to(i, it, ScalarType::Int32), BinaryFunc::ArrayIndex))
}

/// Plans a binary operator, typing unknown operands by the other side.
fn plan_binary(
    ecx: &ExprContext,
    op: &ast::BinaryOperator,
    left: &ast::Expr,
    right: &ast::Expr,
) -> Result<HirScalarExpr, PlanError> {
    use ast::BinaryOperator as Op;
    if matches!(op, Op::And | Op::Or) {
        let l = plan_predicate(ecx, left, &op.to_string())?;
        let r = plan_predicate(ecx, right, &op.to_string())?;
        return Ok(l.call_binary(
            r,
            if *op == Op::And {
                BinaryFunc::And
            } else {
                BinaryFunc::Or
            },
        ));
    }
    if let Some(planned) = plan_container_binary(ecx, op, left, right)? {
        return Ok(planned);
    }
    let (l, r) = if matches!(op, Op::StringConcat) {
        // `||` is text || text, text || anynonarray or anynonarray || text: an untyped
        // operand is text.
        let l = plan_expr(ecx, left, Some(ScalarType::String))?;
        let r = plan_expr(ecx, right, Some(ScalarType::String))?;
        (l, r)
    } else if is_unknown(ecx, left) && !is_unknown(ecx, right) {
        let r = plan_expr(ecx, right, None)?;
        let l = plan_expr(ecx, left, Some(r.typ(ecx.types).scalar_type))?;
        (l, r)
    } else {
        let l = plan_expr(ecx, left, None)?;
        let r = plan_expr(ecx, right, Some(l.typ(ecx.types).scalar_type))?;
        (l, r)
    };
    let (lt, rt) = (l.typ(ecx.types).scalar_type, r.typ(ecx.types).scalar_type);
    let func = match op {
        Op::Eq => BinaryFunc::Eq,
        Op::NotEq => BinaryFunc::NotEq,
        Op::Lt => BinaryFunc::Lt,
        Op::LtEq => BinaryFunc::Lte,
        Op::Gt => BinaryFunc::Gt,
        Op::GtEq => BinaryFunc::Gte,
        Op::Plus => BinaryFunc::Add,
        Op::Minus => BinaryFunc::Sub,
        Op::Multiply => BinaryFunc::Mul,
        Op::Divide => BinaryFunc::Div,
        Op::Modulo => BinaryFunc::Mod,
        Op::StringConcat => {
            if lt != ScalarType::String && rt != ScalarType::String {
                return Err(PlanError::UnknownOperator(format!("{lt} || {rt}")));
            }
            return Ok(l.call_binary(r, BinaryFunc::TextConcat));
        }
        other => return Err(PlanError::unsupported(format!("operator {other}"))),
    };
    let operator_error = || PlanError::UnknownOperator(format!("{lt} {op} {rt}"));
    // interval + time is time + interval.
    if (func, lt, rt) == (BinaryFunc::Add, ScalarType::Interval, ScalarType::Time) {
        return Ok(r.call_binary(l, func));
    }
    // Temporal arithmetic keeps its operand types.
    let temporal = matches!(
        (func, lt, rt),
        (
            BinaryFunc::Add | BinaryFunc::Sub,
            ScalarType::Date | ScalarType::Timestamp | ScalarType::TimestampTz | ScalarType::Time,
            ScalarType::Interval
        ) | (BinaryFunc::Sub, ScalarType::Date, ScalarType::Date)
            | (BinaryFunc::Sub, ScalarType::Time, ScalarType::Time)
            | (
                BinaryFunc::Sub,
                ScalarType::Timestamp,
                ScalarType::Timestamp
            )
            | (
                BinaryFunc::Sub,
                ScalarType::TimestampTz,
                ScalarType::TimestampTz
            )
            | (
                BinaryFunc::Add | BinaryFunc::Sub,
                ScalarType::Interval,
                ScalarType::Interval
            )
    );
    if temporal {
        return Ok(l.call_binary(r, func));
    }
    if matches!(func, BinaryFunc::Add | BinaryFunc::Sub)
        && lt == ScalarType::Date
        && rt.is_integer()
    {
        return Ok(l.call_binary(cast_to(r, rt, ScalarType::Int32), func));
    }
    let target = common_type(lt, rt).ok_or_else(operator_error)?;
    let arithmetic = matches!(
        func,
        BinaryFunc::Add | BinaryFunc::Sub | BinaryFunc::Mul | BinaryFunc::Div | BinaryFunc::Mod
    );
    if arithmetic && !target.is_numeric() {
        return Err(operator_error());
    }
    Ok(cast_to(l, lt, target).call_binary(cast_to(r, rt, target), func))
}

/// Plans a scalar expression. `hint` is the type the context expects, used to type
/// string literals and parameters.
fn plan_expr(
    ecx: &ExprContext,
    e: &ast::Expr,
    hint: Option<ScalarType>,
) -> Result<HirScalarExpr, PlanError> {
    use ast::Expr;
    if let Some((_, column)) = ecx.substitutions.iter().find(|(s, _)| s == e) {
        return Ok(HirScalarExpr::column(*column));
    }
    // After GROUP BY, group keys and aggregates are columns of the Reduce output.
    if let Some(grouping) = ecx.grouping {
        if let Some(i) = grouping.keys.iter().position(|(_, k)| k == e) {
            return Ok(HirScalarExpr::column(i));
        }
        if let Some(j) = grouping.aggregates.iter().position(|a| a == e) {
            return Ok(HirScalarExpr::column(grouping.keys.len() + j));
        }
    }
    // An aggregate an enclosing query owns (see `outer_level_aggregates`).
    if matches!(e, Expr::Function(_)) {
        if let Some(column) = outer_aggregate(ecx.qcx, e) {
            return Ok(column);
        }
    }
    match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
            let (table, column) = match e {
                Expr::Identifier(id) => (None, normalize_ident(id)),
                Expr::CompoundIdentifier(ids) => {
                    let names: Vec<String> = ids.iter().map(normalize_ident).collect();
                    match names.as_slice() {
                        // A FROM item is exposed by its item name: `s.t.c` and
                        // `d.s.t.c` are `t.c`.
                        [t, c] | [_, t, c] | [_, _, t, c] => (Some(t.clone()), c.clone()),
                        _ => return Err(PlanError::UnknownColumn(names.join("."))),
                    }
                }
                _ => unreachable!(),
            };
            if table.is_none()
                && column == "default"
                && matches!(e, Expr::Identifier(id) if id.quote_style.is_none())
            {
                // DEFAULT is a reserved word: only INSERT's VALUES and UPDATE's SET take it.
                return Err(PlanError::Syntax(
                    "DEFAULT is not allowed in this context".into(),
                ));
            }
            let found = ecx.scope.resolve(table.as_deref(), &column)?;
            let Some(c) = found else {
                // Correlated references: the enclosing queries' scopes, nearest first.
                let outer = ecx.qcx.outer.borrow();
                for (level, o) in outer.iter().rev().enumerate() {
                    if let Some(c) = o.resolve(table.as_deref(), &column)? {
                        return Ok(HirScalarExpr::OuterColumn {
                            level: level + 1,
                            column: c,
                            typ: o.types[c],
                        });
                    }
                }
                return Err(match table {
                    Some(table) => {
                        let outer: Vec<&Scope> = outer
                            .iter()
                            .flat_map(|o| {
                                std::iter::once(&o.scope)
                                    .chain(o.grouped_from.as_ref().map(|(f, _)| f))
                            })
                            .collect();
                        let known = std::iter::once(ecx.scope)
                            .chain(outer.iter().copied())
                            .any(|s| s.items.iter().any(|i| i.table.as_deref() == Some(&table)));
                        if known {
                            PlanError::UnknownQualifiedColumn { table, column }
                        } else {
                            missing_from_entry(ecx.scope, &outer, &table)
                        }
                    }
                    None => PlanError::UnknownColumn(column),
                });
            };
            if let Some(grouping) = ecx.grouping {
                return match grouping.keys.iter().position(|(col, _)| *col == Some(c)) {
                    Some(i) => Ok(HirScalarExpr::column(i)),
                    // PostgreSQL names the column by its FROM item.
                    None => Err(PlanError::UngroupedColumn(
                        match &ecx.scope.items[c].table {
                            Some(t) => format!("{t}.{column}"),
                            None => column,
                        },
                    )),
                };
            }
            Ok(HirScalarExpr::Column(ColumnRef {
                level: 0,
                column: c,
            }))
        }
        Expr::Value(v) => match &v.value {
            ast::Value::Placeholder(p) => plan_param(ecx, p, hint),
            other => plan_literal(other, hint),
        },
        Expr::Nested(inner) => plan_expr(ecx, inner, hint),
        Expr::BinaryOp { left, op, right } => plan_binary(ecx, op, left, right),
        Expr::UnaryOp { op, expr } => match op {
            ast::UnaryOperator::Not => {
                Ok(plan_predicate(ecx, expr, "NOT")?.call_unary(UnaryFunc::Not))
            }
            ast::UnaryOperator::Minus => {
                // Fold negative number literals so that i32::MIN stays an int4.
                if let Expr::Value(v) = &**expr {
                    if let ast::Value::Number(n, l) = &v.value {
                        return plan_literal(&ast::Value::Number(format!("-{n}"), *l), hint);
                    }
                }
                let planned = plan_expr(ecx, expr, hint)?;
                let t = planned.typ(ecx.types).scalar_type;
                if !t.is_numeric() && t != ScalarType::Interval {
                    return Err(PlanError::UnknownOperator(format!("- {t}")));
                }
                Ok(planned.call_unary(UnaryFunc::Neg))
            }
            ast::UnaryOperator::Plus => {
                let planned = plan_expr(ecx, expr, hint)?;
                let t = planned.typ(ecx.types).scalar_type;
                if !t.is_numeric() {
                    return Err(PlanError::UnknownOperator(format!("+ {t}")));
                }
                Ok(planned)
            }
            other => Err(PlanError::unsupported(format!("operator {other}"))),
        },
        Expr::IsNull(inner) => Ok(plan_expr(ecx, inner, None)?.call_unary(UnaryFunc::IsNull)),
        Expr::IsNotNull(inner) => Ok(plan_expr(ecx, inner, None)?
            .call_unary(UnaryFunc::IsNull)
            .call_unary(UnaryFunc::Not)),
        Expr::IsTrue(inner) => {
            Ok(plan_predicate(ecx, inner, "IS TRUE")?.call_unary(UnaryFunc::IsTrue))
        }
        Expr::IsFalse(inner) => {
            Ok(plan_predicate(ecx, inner, "IS FALSE")?.call_unary(UnaryFunc::IsFalse))
        }
        Expr::IsNotTrue(inner) => Ok(plan_predicate(ecx, inner, "IS NOT TRUE")?
            .call_unary(UnaryFunc::IsTrue)
            .call_unary(UnaryFunc::Not)),
        Expr::IsNotFalse(inner) => Ok(plan_predicate(ecx, inner, "IS NOT FALSE")?
            .call_unary(UnaryFunc::IsFalse)
            .call_unary(UnaryFunc::Not)),
        Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
            let eq = plan_binary(ecx, &ast::BinaryOperator::Eq, a, b)?;
            let HirScalarExpr::CallBinary { expr1, expr2, .. } = eq else {
                unreachable!("plan_binary of = is a call")
            };
            let same = expr1.call_binary(*expr2, BinaryFunc::IsNotDistinctFrom);
            Ok(if matches!(e, Expr::IsDistinctFrom(..)) {
                same.call_unary(UnaryFunc::Not)
            } else {
                same
            })
        }
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let ge = plan_binary(ecx, &ast::BinaryOperator::GtEq, expr, low)?;
            let le = plan_binary(ecx, &ast::BinaryOperator::LtEq, expr, high)?;
            let both = ge.call_binary(le, BinaryFunc::And);
            Ok(if *negated {
                both.call_unary(UnaryFunc::Not)
            } else {
                both
            })
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            // x IN (a, b) is x = a OR x = b, with SQL's NULL semantics, as a balanced
            // tree: a long list must not become a recursion as deep as it is long.
            let mut terms = list
                .iter()
                .map(|item| plan_binary(ecx, &ast::BinaryOperator::Eq, expr, item))
                .collect::<Result<Vec<_>, _>>()?;
            while terms.len() > 1 {
                let mut paired = Vec::with_capacity(terms.len().div_ceil(2));
                let mut it = terms.into_iter();
                while let Some(left) = it.next() {
                    paired.push(match it.next() {
                        Some(right) => left.call_binary(right, BinaryFunc::Or),
                        None => left,
                    });
                }
                terms = paired;
            }
            let result = terms
                .pop()
                .ok_or_else(|| PlanError::Syntax("IN list must not be empty".into()))?;
            Ok(if *negated {
                result.call_unary(UnaryFunc::Not)
            } else {
                result
            })
        }
        Expr::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        }
        | Expr::ILike {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        } => {
            let text = plan_expr(ecx, expr, Some(ScalarType::String))?;
            let pat = plan_expr(ecx, pattern, Some(ScalarType::String))?;
            let ilike = matches!(e, Expr::ILike { .. });
            let (tt, pt) = (
                text.typ(ecx.types).scalar_type,
                pat.typ(ecx.types).scalar_type,
            );
            if tt != ScalarType::String || pt != ScalarType::String {
                // PostgreSQL's operator names, with untyped literals as "unknown".
                let name = |t: ScalarType, ast_expr: &ast::Expr| {
                    if is_unknown(ecx, ast_expr) {
                        "unknown".to_string()
                    } else {
                        t.to_string()
                    }
                };
                let op = match (*negated, ilike) {
                    (false, false) => "~~",
                    (false, true) => "~~*",
                    (true, false) => "!~~",
                    (true, true) => "!~~*",
                };
                return Err(PlanError::UnknownOperator(format!(
                    "{} {op} {}",
                    name(tt, expr),
                    name(pt, pattern)
                )));
            }
            let func = if ilike {
                BinaryFunc::ILike
            } else {
                BinaryFunc::Like
            };
            let like = text.call_binary(pat, func);
            Ok(if *negated {
                like.call_unary(UnaryFunc::Not)
            } else {
                like
            })
        }
        Expr::Cast {
            kind,
            expr,
            data_type,
            format: None,
            ..
        } => {
            if matches!(kind, ast::CastKind::TryCast | ast::CastKind::SafeCast) {
                return Err(PlanError::unsupported("TRY_CAST"));
            }
            let (to, typmod) = parse_data_type_with_typmod(data_type)?;
            let planned = plan_expr(ecx, expr, Some(to))?;
            let from = planned.typ(ecx.types).scalar_type;
            check_cast(from, to)?;
            Ok(apply_typmod(cast_to(planned, from, to), typmod, true))
        }
        Expr::TypedString(ts) => {
            let (to, typmod) = parse_data_type_with_typmod(&ts.data_type)?;
            match &ts.value.value {
                ast::Value::SingleQuotedString(s) => {
                    Ok(apply_typmod(typed_string(s, to)?, typmod, true))
                }
                other => Err(PlanError::unsupported(format!("typed literal {other}"))),
            }
        }
        Expr::Interval(iv) => {
            if iv.leading_field.is_some() || iv.last_field.is_some() {
                return Err(PlanError::unsupported("INTERVAL with field qualifiers"));
            }
            match &*iv.value {
                Expr::Value(v) => match &v.value {
                    ast::Value::SingleQuotedString(s) => typed_string(s, ScalarType::Interval),
                    other => Err(PlanError::unsupported(format!("INTERVAL {other}"))),
                },
                other => Err(PlanError::unsupported(format!("INTERVAL {other}"))),
            }
        }
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let ecx = &ExprContext {
                lazy_construct: Some("CASE"),
                ..*ecx
            };
            let mut results = Vec::new();
            let mut conds = Vec::new();
            for c in conditions {
                let cond = match operand {
                    Some(op) => plan_binary(ecx, &ast::BinaryOperator::Eq, op, &c.condition)?,
                    None => plan_predicate(ecx, &c.condition, "CASE/WHEN")?,
                };
                conds.push(cond);
                results.push(&c.result);
            }
            // PostgreSQL resolves the ELSE result's type first, then the THENs'.
            let mut branches: Vec<&ast::Expr> = Vec::new();
            if let Some(e) = else_result {
                branches.push(e);
            }
            branches.extend(results.iter().copied());
            let (mut planned, target) = plan_homogeneous(ecx, &branches, "CASE", hint)?;
            let els = if else_result.is_some() {
                planned.remove(0)
            } else {
                HirScalarExpr::literal_null(target)
            };
            let mut result = els;
            for (cond, then) in conds.into_iter().zip(planned).rev() {
                result = HirScalarExpr::If {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    els: Box::new(result),
                };
            }
            Ok(result)
        }
        Expr::Function(f) => plan_function(ecx, f, hint),
        Expr::Ceil { .. }
        | Expr::Floor { .. }
        | Expr::Position { .. }
        | Expr::Substring { .. }
        | Expr::Trim { .. }
        | Expr::Overlay { .. }
        | Expr::Extract { .. } => plan_special_call(ecx, e),
        Expr::Exists { subquery, negated } => {
            let exists = HirScalarExpr::Exists(Box::new(plan_subquery(ecx, subquery)?));
            Ok(if *negated {
                exists.call_unary(UnaryFunc::Not)
            } else {
                exists
            })
        }
        Expr::Subquery(query) => {
            let sub = plan_subquery(ecx, query)?;
            if sub.arity() != 1 {
                return Err(PlanError::Syntax(
                    "subquery must return only one column".into(),
                ));
            }
            Ok(HirScalarExpr::Select(Box::new(sub)))
        }
        Expr::InSubquery {
            expr,
            subquery,
            negated,
        } => {
            let any = plan_quantified(ecx, expr, &ast::BinaryOperator::Eq, subquery, false)?;
            Ok(if *negated {
                any.call_unary(UnaryFunc::Not)
            } else {
                any
            })
        }
        Expr::AnyOp {
            left,
            compare_op,
            right,
            ..
        }
        | Expr::AllOp {
            left,
            compare_op,
            right,
        } => {
            let all = matches!(e, Expr::AllOp { .. });
            match &**right {
                Expr::Subquery(query) => plan_quantified(ecx, left, compare_op, query, all),
                other => plan_array_quantified(ecx, left, compare_op, other, all),
            }
        }
        Expr::Array(array) => plan_array_constructor(ecx, &array.elem, hint),
        Expr::CompoundFieldAccess { root, access_chain } => plan_subscript(ecx, root, access_chain),
        other => Err(PlanError::unsupported(format!("expression {other}"))),
    }
}

/// Whether a cast from `from` to `to` exists.
fn check_cast(from: ScalarType, to: ScalarType) -> Result<(), PlanError> {
    use ScalarType::*;
    let ok = from == to
        || from == String
        || to == String
        || (from.is_numeric() && to.is_numeric())
        || matches!((from, to), (Bool, Int32 | Int64) | (Int32 | Int64, Bool))
        || (from == Jsonb && (to == Bool || to.is_numeric()))
        || matches!(
            (from, to),
            (
                Date | Timestamp | TimestampTz,
                Date | Timestamp | TimestampTz
            ) | (Timestamp | TimestampTz, Time)
        );
    if let (Array(f), Array(t)) = (from, to) {
        // PostgreSQL names the element types.
        return check_cast(*f, *t);
    }
    if ok {
        Ok(())
    } else {
        Err(PlanError::CannotCoerce {
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

/// Plans expressions that must share one type (CASE branches, COALESCE arguments).
fn plan_homogeneous(
    ecx: &ExprContext,
    exprs: &[&ast::Expr],
    what: &str,
    hint: Option<ScalarType>,
) -> Result<(Vec<HirScalarExpr>, ScalarType), PlanError> {
    let mut planned: Vec<Option<HirScalarExpr>> = vec![None; exprs.len()];
    let mut target: Option<ScalarType> = None;
    for (i, e) in exprs.iter().enumerate() {
        if is_unknown(ecx, e) {
            continue;
        }
        let p = plan_expr(ecx, e, None)?;
        let t = p.typ(ecx.types).scalar_type;
        target = Some(match target {
            None => t,
            Some(prev) => common_type(prev, t).ok_or_else(|| {
                PlanError::DatatypeMismatch(format!(
                    "{what} types {prev} and {t} cannot be matched"
                ))
            })?,
        });
        planned[i] = Some(p);
    }
    let target = target.or(hint).unwrap_or(ScalarType::String);
    let mut out = Vec::new();
    for (i, e) in exprs.iter().enumerate() {
        let p = match planned[i].take() {
            Some(p) => p,
            None => plan_expr(ecx, e, Some(target))?,
        };
        let t = p.typ(ecx.types).scalar_type;
        out.push(if is_null_literal(&p) {
            HirScalarExpr::literal_null(target)
        } else {
            cast_to(p, t, target)
        });
    }
    Ok((out, target))
}

fn plan_function(
    ecx: &ExprContext,
    f: &ast::Function,
    hint: Option<ScalarType>,
) -> Result<HirScalarExpr, PlanError> {
    let name = f
        .name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(normalize_ident)
        .unwrap_or_default();
    if f.over.is_some() {
        // Window calls where they are allowed were planned already (substitutions).
        return Err(if ecx.in_aggregate {
            PlanError::Grouping(
                "aggregate function calls cannot contain window function calls".into(),
            )
        } else {
            PlanError::Windowing(match ecx.clause {
                Some(clause) => format!("window functions are not allowed in {clause}"),
                None => "window function calls cannot be nested".into(),
            })
        });
    }
    if aggregate_func(f).is_some() {
        return Err(PlanError::Grouping(if ecx.in_aggregate {
            "aggregate function calls cannot be nested".into()
        } else {
            match ecx.clause {
                Some(clause) => format!("aggregate functions are not allowed in {clause}"),
                None => "aggregate functions are not allowed here".into(),
            }
        }));
    }
    if unsupported_aggregate(&name) {
        return Err(PlanError::unsupported(format!("aggregate function {name}")));
    }
    if set_returning_function(&name) {
        // Set-returning calls where they are allowed were planned already.
        return Err(PlanError::FeatureNotSupported(
            if let Some(construct) = ecx.lazy_construct {
                format!("set-returning functions are not allowed in {construct}")
            } else if ecx.in_aggregate {
                "aggregate function calls cannot contain set-returning function calls".into()
            } else {
                match ecx.clause {
                    Some(clause) => format!("set-returning functions are not allowed in {clause}"),
                    None => format!("set-returning function {name} is not supported here"),
                }
            },
        ));
    }
    let (args, distinct, star) = function_args(f)?;
    if distinct || star {
        return Err(PlanError::UnknownFunction(format!("{name}(*)")));
    }
    let arg = |i: usize, hint: Option<ScalarType>| plan_expr(ecx, args[i], hint);
    let arity_error =
        || PlanError::UnknownFunction(format!("{name} with {} arguments", args.len()));
    match (name.as_str(), args.len()) {
        ("abs", 1) => {
            let a = arg(0, None)?;
            let t = a.typ(ecx.types).scalar_type;
            if !t.is_numeric() {
                return Err(PlanError::UnknownFunction(format!("abs({t})")));
            }
            Ok(a.call_unary(UnaryFunc::Abs))
        }
        ("lower" | "upper", 1) => {
            let a = arg(0, Some(ScalarType::String))?;
            let t = a.typ(ecx.types).scalar_type;
            if t != ScalarType::String {
                return Err(PlanError::UnknownFunction(format!("{name}({t})")));
            }
            Ok(a.call_unary(if name == "lower" {
                UnaryFunc::Lower
            } else {
                UnaryFunc::Upper
            }))
        }
        ("length" | "char_length" | "character_length", 1) => {
            let a = arg(0, Some(ScalarType::String))?;
            let t = a.typ(ecx.types).scalar_type;
            if t != ScalarType::String && t != ScalarType::Bytes {
                return Err(PlanError::UnknownFunction(format!("{name}({t})")));
            }
            Ok(a.call_unary(UnaryFunc::CharLength))
        }
        ("mod", 2) => plan_binary(ecx, &ast::BinaryOperator::Modulo, args[0], args[1]),
        ("nullif", 2) => {
            let (planned, _) = plan_homogeneous(ecx, &[args[0], args[1]], "NULLIF", hint)?;
            let (a, b) = (planned[0].clone(), planned[1].clone());
            let t = a.typ(ecx.types).scalar_type;
            Ok(HirScalarExpr::If {
                cond: Box::new(a.clone().call_binary(b, BinaryFunc::Eq)),
                then: Box::new(HirScalarExpr::literal_null(t)),
                els: Box::new(a),
            })
        }
        ("coalesce" | "greatest" | "least", n) if n > 0 => {
            let lazy = ExprContext {
                lazy_construct: (name == "coalesce").then_some("COALESCE"),
                ..*ecx
            };
            let ecx = &lazy;
            let (planned, _) = plan_homogeneous(ecx, &args, &name.to_uppercase(), hint)?;
            let func = match name.as_str() {
                "coalesce" => VariadicFunc::Coalesce,
                "greatest" => VariadicFunc::Greatest,
                _ => VariadicFunc::Least,
            };
            Ok(HirScalarExpr::CallVariadic {
                func,
                exprs: planned,
            })
        }
        ("concat", _) => Ok(HirScalarExpr::CallVariadic {
            func: VariadicFunc::Concat,
            exprs: (0..args.len())
                .map(|i| arg(i, Some(ScalarType::String)))
                .collect::<Result<_, _>>()?,
        }),
        ("version", 0) => Ok(HirScalarExpr::CallVariadic {
            func: VariadicFunc::Version,
            exprs: vec![],
        }),
        (
            "abs" | "lower" | "upper" | "length" | "char_length" | "mod" | "nullif" | "version",
            _,
        ) => Err(arity_error()),
        _ => plan_builtin_call(ecx, &name, &args),
    }
}

/// A call of a built-in from the function library ([`crate::func`]), which resolves
/// the overload from the planned arguments: each with its type, and whether it is an
/// untyped literal.
fn plan_builtin_call(
    ecx: &ExprContext,
    name: &str,
    args: &[&ast::Expr],
) -> Result<HirScalarExpr, PlanError> {
    let mut planned_args = Vec::new();
    for a in args {
        let planned = plan_expr(ecx, a, None)?;
        let typ = planned.typ(ecx.types).scalar_type;
        planned_args.push(crate::func::Arg {
            expr: planned,
            typ,
            unknown: is_unknown(ecx, a),
        });
    }
    if name == "gen_random_uuid" {
        ecx.qcx.volatile.set(true);
    }
    if let Some(result) = crate::func::plan_builtin(name, planned_args) {
        return result;
    }
    // PostgreSQL names the argument types; untyped literals are "unknown".
    let mut types = Vec::new();
    for a in args {
        let planned = plan_expr(ecx, a, None)?;
        types.push(if is_unknown(ecx, a) {
            "unknown".to_string()
        } else {
            planned.typ(ecx.types).scalar_type.to_string()
        });
    }
    Err(PlanError::UnknownFunction(format!(
        "{name}({})",
        types.join(", ")
    )))
}

/// The SQL-standard call forms that sqlparser gives nodes of their own (`CEIL`,
/// `FLOOR`, `POSITION(a IN b)`, `SUBSTRING(s FROM a FOR b)`, `TRIM(... FROM s)`,
/// `OVERLAY(s PLACING r FROM a FOR b)`, `EXTRACT(field FROM x)`): each is the plain
/// built-in PostgreSQL rewrites it to.
fn plan_special_call(ecx: &ExprContext, e: &ast::Expr) -> Result<HirScalarExpr, PlanError> {
    use ast::Expr;
    match e {
        Expr::Ceil { expr, field } | Expr::Floor { expr, field } => {
            let name = if matches!(e, Expr::Ceil { .. }) {
                "ceil"
            } else {
                "floor"
            };
            match field {
                ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime) => {
                    plan_builtin_call(ecx, name, &[expr])
                }
                ast::CeilFloorKind::Scale(v) => {
                    let scale = ast::Expr::value(v.clone());
                    plan_builtin_call(ecx, name, &[expr, &scale])
                }
                ast::CeilFloorKind::DateTimeField(f) => Err(PlanError::unsupported(format!(
                    "{} ... TO {f}",
                    name.to_uppercase()
                ))),
            }
        }
        // POSITION(substring IN string) is position(string, substring).
        Expr::Position { expr, r#in } => plan_builtin_call(ecx, "position", &[r#in, expr]),
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let one = ast::Expr::value(ast::Value::Number("1".into(), false));
            match (substring_from, substring_for) {
                (Some(from), Some(len)) => plan_builtin_call(ecx, "substring", &[expr, from, len]),
                (Some(from), None) => plan_builtin_call(ecx, "substring", &[expr, from]),
                // SUBSTRING(s FOR n) starts at 1.
                (None, Some(len)) => plan_builtin_call(ecx, "substring", &[expr, &one, len]),
                (None, None) => plan_builtin_call(ecx, "substring", &[expr]),
            }
        }
        Expr::Trim {
            expr,
            trim_where,
            trim_what,
            trim_characters,
        } => {
            let name = match trim_where {
                None | Some(ast::TrimWhereField::Both) => "btrim",
                Some(ast::TrimWhereField::Leading) => "ltrim",
                Some(ast::TrimWhereField::Trailing) => "rtrim",
            };
            let mut args: Vec<&ast::Expr> = vec![expr];
            if let Some(what) = trim_what {
                args.push(what);
            }
            args.extend(trim_characters.iter().flatten());
            plan_builtin_call(ecx, name, &args)
        }
        Expr::Overlay {
            expr,
            overlay_what,
            overlay_from,
            overlay_for,
        } => {
            let mut args: Vec<&ast::Expr> = vec![expr, overlay_what, overlay_from];
            if let Some(len) = overlay_for {
                args.push(len);
            }
            plan_builtin_call(ecx, "overlay", &args)
        }
        Expr::Extract { field, expr, .. } => {
            let units = match field {
                ast::DateTimeField::Custom(id) => id.value.clone(),
                ast::DateTimeField::Week(Some(_)) => {
                    return Err(PlanError::unsupported("EXTRACT(WEEK(day) FROM ...)"))
                }
                other => other.to_string().to_lowercase(),
            };
            let arg = plan_expr(ecx, expr, None)?;
            let typ = arg.typ(ecx.types).scalar_type;
            let args = vec![
                crate::func::Arg {
                    // PostgreSQL passes the field as an untyped string literal.
                    expr: HirScalarExpr::literal(Datum::String(&units), ScalarType::String),
                    typ: ScalarType::String,
                    unknown: true,
                },
                crate::func::Arg {
                    expr: arg,
                    typ,
                    unknown: is_unknown(ecx, expr),
                },
            ];
            crate::func::plan_builtin("extract", args)
                .unwrap_or_else(|| Err(PlanError::unsupported("EXTRACT")))
        }
        other => Err(PlanError::unsupported(format!("expression {other}"))),
    }
}
