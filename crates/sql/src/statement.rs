//! Statement planning: a [`ParsedStatement`] into a [`Plan`] the coordinator executes.
//!
//! Queries go through the pipeline of [`crate::optimize`]; DML is planned as
//! constant rows (INSERT ... VALUES), or as a query whose result is written
//! (INSERT ... SELECT) or whose rows are retracted and replaced (UPDATE, DELETE).
//! Every value written, defaults included, is cast to its column's type and then
//! coerced to the column's type modifier (`numeric(10,2)`, `varchar(5)`) with
//! PostgreSQL's assignment semantics: see `assignment_cast`.

use expr::{MirRelationExpr, MirScalarExpr, RowSetFinishing};
use repr::{ColumnType, GlobalId, RelationDesc, RelationType, ScalarType};
use sqlparser::ast;

use crate::catalog::{ItemKind, QualifiedName, SqlCatalog, Typmod};
use crate::error::PlanError;
use crate::hir::{HirRelationExpr, HirScalarExpr};
use crate::parse::{ExplainStage, ParsedStatement, SetValue, Statement};
use crate::query::{
    self, normalize_ident, normalize_object_name, parse_data_type_with_typmod, Params, QueryContext,
};

/// A planned statement.
#[derive(Debug)]
pub enum Plan {
    CreateTable {
        name: QualifiedName,
        desc: RelationDesc,
        defaults: Vec<Option<String>>,
        /// Each column's type modifier (`varchar(5)`), applied to the values written.
        typmods: Vec<Option<Typmod>>,
        if_not_exists: bool,
        /// `WITH (RETAIN HISTORY FOR ...)`, in milliseconds.
        retain_history_ms: Option<u64>,
    },
    /// `ALTER SYSTEM SET | RESET`: a server-wide variable (`value` `None` resets it).
    AlterSystem {
        name: String,
        value: Option<String>,
    },
    /// `ALTER ... SET | RESET (RETAIN HISTORY ...)`; `None` restores the default.
    AlterRetainHistory {
        id: GlobalId,
        retain_history_ms: Option<u64>,
    },
    /// `DROP TABLE | VIEW | MATERIALIZED VIEW | INDEX`.
    Drop(crate::ddl::DropPlan),
    CreateView(crate::ddl::CreateViewPlan),
    CreateIndex(crate::ddl::CreateIndexPlan),
    /// `CREATE | DROP DATABASE | SCHEMA`.
    Namespace(crate::ddl::NamespacePlan),
    /// Append the rows of `source` (the table's columns, in order) to the table.
    Insert {
        id: GlobalId,
        name: String,
        desc: RelationDesc,
        source: MirRelationExpr,
        returning: Option<Returning>,
    },
    /// Read `selection` and write its result: DELETE retracts each row; UPDATE's rows
    /// hold the old row then the new row, and it retracts the old and inserts the new.
    ReadThenWrite {
        id: GlobalId,
        name: String,
        desc: RelationDesc,
        selection: MirRelationExpr,
        kind: MutationKind,
        returning: Option<Returning>,
    },
    Select {
        source: MirRelationExpr,
        desc: RelationDesc,
        finishing: RowSetFinishing,
        /// `AS OF <ts>`: read at this timestamp instead of the isolation level's.
        as_of: Option<u64>,
    },
    Subscribe(crate::streaming::SubscribePlan),
    /// `COPY (...) TO STDOUT` of a `Select` or `Subscribe`.
    CopyTo(Box<Plan>),
    /// `DECLARE name CURSOR FOR` a `Select` or `Subscribe`.
    Declare {
        name: String,
        inner: Box<Plan>,
    },
    Fetch {
        name: String,
        count: Option<u64>,
        timeout: Option<std::time::Duration>,
    },
    Close {
        name: Option<String>,
    },
    /// `COPY t FROM STDIN`: the client sends the rows next.
    CopyFrom(crate::streaming::CopyFromPlan),
    /// `EXPLAIN TIMESTAMP FOR`: the query's inputs, to report their frontiers.
    ExplainTimestamp {
        source: MirRelationExpr,
    },
    Explain {
        stage: ExplainStage,
        text: String,
        /// For `PHYSICAL`, the optimized query: the coordinator says whether it would
        /// read an index directly (the fast path) instead of building a dataflow.
        source: Option<MirRelationExpr>,
    },
    SetVariable {
        name: String,
        value: SetValue,
    },
    ResetVariable {
        name: Option<String>,
    },
    ShowVariable {
        name: String,
    },
    ShowObjects {
        what: crate::parse::ShowWhat,
        on: Option<String>,
    },
    StartTransaction,
    Commit,
    Rollback,
    /// `DEALLOCATE [PREPARE] name | ALL`: prepared statements live in the protocol
    /// layer, which replaces them on the next Parse of the same name.
    Deallocate {
        all: bool,
    },
    /// `DISCARD ALL | PLANS | SEQUENCES | TEMP`: resets the session variables for ALL.
    Discard {
        all: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutationKind {
    Delete,
    Update,
}

/// `RETURNING` expressions over the written row.
#[derive(Clone, Debug)]
pub struct Returning {
    pub exprs: Vec<MirScalarExpr>,
    pub desc: RelationDesc,
}

/// Plans one statement. `params` holds `$n` types (and values, when executing).
pub fn plan(
    catalog: &dyn SqlCatalog,
    stmt: &ParsedStatement,
    params: Params,
) -> Result<(Plan, Params), PlanError> {
    let qcx = QueryContext::new(catalog, params);
    let plan = plan_statement(&qcx, &stmt.statement)?;
    Ok((plan, qcx.params.into_inner()))
}

fn plan_statement(qcx: &QueryContext, stmt: &Statement) -> Result<Plan, PlanError> {
    match stmt {
        Statement::SetVariable { name, value } => Ok(Plan::SetVariable {
            name: name.clone(),
            value: value.clone(),
        }),
        Statement::ResetVariable { name } => Ok(Plan::ResetVariable { name: name.clone() }),
        Statement::ShowVariable { name } => Ok(Plan::ShowVariable { name: name.clone() }),
        Statement::ShowObjects { what, on } => {
            let on = match on {
                Some(name) => Some(crate::ddl::resolve_shown_object(qcx, name)?),
                None => None,
            };
            Ok(Plan::ShowObjects { what: *what, on })
        }
        Statement::ShowSchemas { from } => {
            crate::ddl::plan_show_namespaces(qcx, false, from.as_ref())
        }
        Statement::ShowDatabases => crate::ddl::plan_show_namespaces(qcx, true, None),
        Statement::CreateDefaultIndex { on } => Ok(Plan::CreateIndex(
            crate::ddl::plan_create_index(qcx, None, on, None, false)?,
        )),
        Statement::WithRetainHistory { inner, interval } => {
            let ms = crate::options::retain_history_ms(interval)?;
            let mut plan = plan_statement(qcx, inner)?;
            match &mut plan {
                Plan::CreateTable {
                    retain_history_ms, ..
                } => *retain_history_ms = Some(ms),
                Plan::CreateView(view) if view.materialized => view.retain_history_ms = Some(ms),
                Plan::CreateIndex(index) => index.retain_history_ms = Some(ms),
                _ => {
                    return Err(PlanError::unsupported(
                        "RETAIN HISTORY here (only tables, materialized views and indexes keep history)",
                    ))
                }
            }
            Ok(plan)
        }
        Statement::AlterSystem { name, value } => Ok(Plan::AlterSystem {
            name: name.clone(),
            value: value.clone(),
        }),
        Statement::AlterRetainHistory {
            kind,
            name,
            interval,
        } => {
            let retain_history_ms = match interval {
                Some(interval) => Some(crate::options::retain_history_ms(interval)?),
                None => None,
            };
            let (item, full) = query::resolve_item(qcx, name)?;
            if item.kind != *kind {
                return Err(PlanError::WrongObjectType(format!(
                    "\"{}\" is not a {}",
                    full.item,
                    kind.name()
                )));
            }
            Ok(Plan::AlterRetainHistory {
                id: item.id,
                retain_history_ms,
            })
        }
        Statement::Explain { stage, statement } => plan_explain(qcx, *stage, statement),
        Statement::Subscribe(subscribe) => Ok(Plan::Subscribe(crate::streaming::plan_subscribe(
            qcx, subscribe,
        )?)),
        Statement::CopyTo { inner } => Ok(Plan::CopyTo(Box::new(plan_statement(qcx, inner)?))),
        Statement::Declare { name, inner } => Ok(Plan::Declare {
            name: name.clone(),
            inner: Box::new(plan_statement(qcx, inner)?),
        }),
        Statement::Fetch {
            name,
            count,
            timeout,
        } => Ok(Plan::Fetch {
            name: name.clone(),
            count: *count,
            timeout: *timeout,
        }),
        Statement::Close { name } => Ok(Plan::Close { name: name.clone() }),
        Statement::CopyRows {
            id,
            name,
            desc,
            rows,
        } => Ok(Plan::Insert {
            id: *id,
            name: name.clone(),
            desc: desc.clone(),
            source: MirRelationExpr::Constant {
                rows: Ok(rows.iter().map(|r| (r.clone(), 1)).collect()),
                typ: desc.typ.clone(),
            },
            returning: None,
        }),
        Statement::SelectAsOf { query, as_of } => {
            let planned = query::plan_root_query(qcx, query)?;
            let source = crate::optimize(planned.expr.lower()?);
            Ok(Plan::Select {
                source,
                desc: planned.desc,
                finishing: planned.finishing,
                as_of: Some(*as_of),
            })
        }
        Statement::ExplainTimestamp { statement } => {
            let ast::Statement::Query(q) = &**statement else {
                return Err(PlanError::unsupported(
                    "EXPLAIN TIMESTAMP of statements other than SELECT",
                ));
            };
            let planned = query::plan_root_query(qcx, q)?;
            Ok(Plan::ExplainTimestamp {
                source: crate::optimize(planned.expr.lower()?),
            })
        }
        Statement::Sql(s) => match &**s {
            ast::Statement::Query(q) => {
                let planned = query::plan_root_query(qcx, q)?;
                let source = crate::optimize(planned.expr.lower()?);
                Ok(Plan::Select {
                    source,
                    desc: planned.desc,
                    finishing: planned.finishing,
                    as_of: None,
                })
            }
            ast::Statement::CreateTable(ct) => plan_create_table(qcx, ct),
            ast::Statement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => Ok(Plan::Namespace(crate::ddl::plan_create_schema(
                qcx,
                schema_name,
                *if_not_exists,
            )?)),
            ast::Statement::CreateDatabase {
                db_name,
                if_not_exists,
                ..
            } => Ok(Plan::Namespace(crate::ddl::plan_create_database(
                qcx,
                db_name,
                *if_not_exists,
            )?)),
            ast::Statement::Drop {
                object_type: object_type @ (ast::ObjectType::Schema | ast::ObjectType::Database),
                if_exists,
                names,
                cascade,
                restrict,
                ..
            } => Ok(Plan::Namespace(crate::ddl::plan_drop_namespace(
                qcx,
                object_type,
                names,
                *if_exists,
                *cascade,
                *restrict,
            )?)),
            ast::Statement::Drop {
                object_type,
                if_exists,
                names,
                cascade,
                ..
            } => Ok(Plan::Drop(crate::ddl::plan_drop(
                qcx,
                object_type,
                names,
                *if_exists,
                *cascade,
            )?)),
            ast::Statement::CreateView(cv) => {
                Ok(Plan::CreateView(crate::ddl::plan_create_view(qcx, cv)?))
            }
            ast::Statement::CreateIndex(ci) => {
                if ci.predicate.is_some() || !ci.include.is_empty() || ci.unique {
                    return Err(PlanError::unsupported(
                        "UNIQUE, partial and covering indexes",
                    ));
                }
                Ok(Plan::CreateIndex(crate::ddl::plan_create_index(
                    qcx,
                    ci.name.as_ref(),
                    &ci.table_name,
                    Some(&ci.columns),
                    ci.if_not_exists,
                )?))
            }
            ast::Statement::Insert(insert) => plan_insert(qcx, insert),
            ast::Statement::Copy {
                source:
                    ast::CopySource::Table {
                        table_name,
                        columns,
                    },
                to: false,
                target: ast::CopyTarget::Stdin,
                options,
                legacy_options,
                values,
            } if legacy_options.is_empty()
                && values.iter().all(|v| v.as_deref().unwrap_or("").is_empty()) =>
            {
                Ok(Plan::CopyFrom(crate::streaming::plan_copy_from(
                    qcx, table_name, columns, options,
                )?))
            }
            ast::Statement::Update(update) => plan_update(qcx, update),
            ast::Statement::Delete(delete) => plan_delete(qcx, delete),
            ast::Statement::StartTransaction { .. } => Ok(Plan::StartTransaction),
            ast::Statement::Commit { .. } => Ok(Plan::Commit),
            ast::Statement::Rollback {
                savepoint: None, ..
            } => Ok(Plan::Rollback),
            ast::Statement::Deallocate { name, .. } => Ok(Plan::Deallocate {
                all: name.value.eq_ignore_ascii_case("all") && name.quote_style.is_none(),
            }),
            ast::Statement::Discard { object_type } => Ok(Plan::Discard {
                all: matches!(object_type, ast::DiscardObject::ALL),
            }),
            other => Err(PlanError::unsupported(statement_kind(other))),
        },
    }
}

/// A short name for an unsupported statement, for its error message.
fn statement_kind(s: &ast::Statement) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    words.join(" ").to_uppercase()
}

fn plan_explain(
    qcx: &QueryContext,
    stage: ExplainStage,
    statement: &ast::Statement,
) -> Result<Plan, PlanError> {
    // `EXPLAIN ... FOR CREATE MATERIALIZED VIEW name AS query` explains the dataflow
    // that would maintain the view (computing views from their inputs, as it would).
    let (q, maintained) = match statement {
        ast::Statement::Query(q) => (q, false),
        ast::Statement::CreateView(cv) if cv.materialized => (&cv.query, true),
        _ => {
            return Err(PlanError::unsupported(
                "EXPLAIN of statements other than SELECT and CREATE MATERIALIZED VIEW",
            ))
        }
    };
    let reads_indexes = qcx.read_view_indexes.replace(!maintained);
    let planned = query::plan_root_query(qcx, q);
    qcx.read_view_indexes.set(reads_indexes);
    let planned = planned?;
    let optimized = || -> Result<MirRelationExpr, PlanError> {
        let optimized = crate::optimize(planned.expr.lower()?);
        Ok(if maintained {
            crate::streaming::finishing_into_expr(optimized, &planned.finishing)
        } else {
            optimized
        })
    };
    let text = match stage {
        ExplainStage::Raw => planned.expr.to_string(),
        ExplainStage::Decorrelated => planned.expr.lower()?.to_string(),
        ExplainStage::Optimized => optimized()?.to_string(),
        ExplainStage::Physical if maintained => crate::lir::plan_to_lir(&optimized()?)?.to_string(),
        ExplainStage::Physical => {
            let optimized = optimized()?;
            let text = crate::lir::plan_to_lir_one_shot(&optimized)?.to_string();
            return Ok(Plan::Explain {
                stage,
                text,
                source: Some(optimized),
            });
        }
    };
    Ok(Plan::Explain {
        stage,
        text,
        source: None,
    })
}

fn plan_create_table(qcx: &QueryContext, ct: &ast::CreateTable) -> Result<Plan, PlanError> {
    if ct.query.is_some() {
        return Err(PlanError::unsupported("CREATE TABLE ... AS"));
    }
    let name = query::plan_item_name(qcx, &ct.name)?;
    let mut desc = RelationDesc::empty();
    let mut defaults = Vec::new();
    let mut typmods = Vec::new();
    let mut primary: Vec<String> = Vec::new();
    for c in &ct.constraints {
        if let ast::TableConstraint::PrimaryKey(pk) = c {
            primary.extend(
                pk.columns
                    .iter()
                    .map(|c| c.to_string().trim_matches('"').to_lowercase()),
            );
        }
    }
    for col in &ct.columns {
        let col_name = normalize_ident(&col.name);
        if desc.position(&col_name).is_some() {
            return Err(PlanError::Syntax(format!(
                "column \"{col_name}\" specified more than once"
            ))
            .duplicate());
        }
        let (scalar_type, typmod) = parse_data_type_with_typmod(&col.data_type)?;
        let mut nullable = !primary.contains(&col_name);
        let mut default = None;
        for opt in &col.options {
            match &opt.option {
                ast::ColumnOption::NotNull => nullable = false,
                ast::ColumnOption::Null => {}
                ast::ColumnOption::Default(e) => default = Some(e.to_string()),
                ast::ColumnOption::PrimaryKey(_) => nullable = false,
                ast::ColumnOption::Unique(_) => {}
                other => return Err(PlanError::unsupported(format!("column option {other}"))),
            }
        }
        // Plan the default now, so that one of the wrong type fails here.
        plan_default(qcx, &default, scalar_type, typmod, &col_name)?;
        desc = desc.with_column(col_name, scalar_type.nullable(nullable));
        defaults.push(default);
        typmods.push(typmod);
    }
    Ok(Plan::CreateTable {
        name,
        desc,
        defaults,
        typmods,
        if_not_exists: ct.if_not_exists,
        retain_history_ms: None,
    })
}

impl PlanError {
    fn duplicate(self) -> PlanError {
        match self {
            PlanError::Syntax(m) => PlanError::DuplicateColumn(m),
            other => other,
        }
    }
}

/// The positions of `columns` in `table` (every column, in order, when none are
/// named), as INSERT and COPY FROM take them: 42703 for an unknown one, 42701 for one
/// named twice.
pub(crate) fn target_columns(
    table: &crate::catalog::CatalogItem,
    columns: &[ast::Ident],
) -> Result<Vec<usize>, PlanError> {
    let desc = &table.desc;
    if columns.is_empty() {
        return Ok((0..desc.arity()).collect());
    }
    let mut targets = Vec::new();
    for c in columns {
        let n = normalize_ident(c);
        let position = desc.position(&n).ok_or_else(|| {
            PlanError::UnknownColumn(format!("{n}\" of relation \"{}", table.name))
        })?;
        if targets.contains(&position) {
            return Err(PlanError::DuplicateColumn(format!(
                "column \"{n}\" specified more than once"
            )));
        }
        targets.push(position);
    }
    Ok(targets)
}

pub(crate) fn resolve_table<'a>(
    qcx: &'a QueryContext,
    name: &ast::ObjectName,
) -> Result<&'a crate::catalog::CatalogItem, PlanError> {
    let (item, _) = query::resolve_item(qcx, name)?;
    let normalized = normalize_object_name(name)?;
    if item.kind != ItemKind::Table {
        return Err(PlanError::DatatypeMismatch(format!(
            "cannot write to \"{normalized}\": it is not a table"
        )));
    }
    Ok(item)
}

/// Casts `expr` (of type `from`) for assignment to a column of type `to` with type
/// modifier `typmod`; `what` is "expression" or "default expression", for the error.
/// As in PostgreSQL, the modifier is applied with assignment semantics: a string too
/// long for `varchar(n)` or `char(n)` is an error (22001) unless only spaces are cut,
/// and a numeric is rounded to the column's scale or overflows (22003).
fn assignment_cast(
    expr: HirScalarExpr,
    from: ColumnType,
    to: ScalarType,
    typmod: Option<Typmod>,
    column: &str,
    is_null: bool,
    what: &str,
) -> Result<HirScalarExpr, PlanError> {
    if is_null {
        return Ok(HirScalarExpr::literal_null(to));
    }
    if from.scalar_type == to {
        return Ok(query::apply_typmod(expr, typmod, false));
    }
    let ok = (from.scalar_type.is_numeric() && to.is_numeric())
        || to == ScalarType::String
        || matches!(
            (from.scalar_type, to),
            (
                ScalarType::Date | ScalarType::Timestamp | ScalarType::TimestampTz,
                ScalarType::Date | ScalarType::Timestamp | ScalarType::TimestampTz
            )
        );
    if !ok {
        return Err(PlanError::DatatypeMismatch(format!(
            "column \"{column}\" is of type {to} but {what} is of type {}",
            from.scalar_type
        )));
    }
    let cast = expr.call_unary(expr::UnaryFunc::Cast(to));
    Ok(query::apply_typmod(cast, typmod, false))
}

/// Plans a column's DEFAULT (SQL text; `None` is NULL) as an expression of the
/// column's type and type modifier. Untyped literals take that type
/// (`DEFAULT '2024-01-01'` for a date). As in PostgreSQL, the modifier is applied when
/// the default is used, not checked when it is declared.
pub(crate) fn plan_default(
    qcx: &QueryContext,
    default: &Option<String>,
    typ: ScalarType,
    typmod: Option<Typmod>,
    column: &str,
) -> Result<HirScalarExpr, PlanError> {
    let Some(text) = default else {
        return Ok(HirScalarExpr::literal_null(typ));
    };
    let parsed = crate::parse::parse_expr(text)?;
    let e = query::plan_scalar_in_scope(
        qcx,
        &query::Scope::default(),
        &[],
        &parsed,
        Some(typ),
        "DEFAULT expressions",
        false,
    )
    .map_err(|e| match e {
        // Nothing is in scope: any name is a column reference.
        PlanError::UnknownColumn(_)
        | PlanError::UnknownQualifiedColumn { .. }
        | PlanError::MissingFromEntry(_) => PlanError::InvalidColumnReference(
            "cannot use column reference in DEFAULT expression".into(),
        ),
        e => e,
    })?;
    let from = e.typ(&[]);
    let is_null = query::is_null_literal(&e);
    assignment_cast(e, from, typ, typmod, column, is_null, "default expression")
}

/// Whether `e` is the DEFAULT keyword (sqlparser reads it as an identifier).
fn is_default_keyword(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

fn plan_returning(
    qcx: &QueryContext,
    items: &Option<Vec<ast::SelectItem>>,
    table: &crate::catalog::CatalogItem,
) -> Result<Option<Returning>, PlanError> {
    let Some(items) = items else { return Ok(None) };
    for item in items {
        let e = match item {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        if query::contains_aggregate(e) {
            return Err(PlanError::Grouping(
                "aggregate functions are not allowed in RETURNING".into(),
            ));
        }
    }
    // Plan `SELECT <items> FROM <table>` and keep its expressions over the table's row.
    let select = format!(
        "SELECT {} FROM \"{}\"",
        items
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        table.name
    );
    let parsed = crate::parse::parse(&select)?;
    let Some(Statement::Sql(stmt)) = parsed.into_iter().next().map(|p| p.statement) else {
        unreachable!("a SELECT")
    };
    let ast::Statement::Query(q) = *stmt else {
        unreachable!("a SELECT")
    };
    let planned = query::plan_root_query(qcx, &q)?;
    let HirRelationExpr::Project { input, outputs } = planned.expr else {
        unreachable!("a SELECT list")
    };
    let HirRelationExpr::Map { scalars, .. } = *input else {
        unreachable!("a SELECT list")
    };
    let arity = table.desc.arity();
    let exprs = outputs
        .iter()
        .map(|c| scalars[c - arity].lower())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Returning {
        exprs,
        desc: planned.desc,
    }))
}

fn plan_insert(qcx: &QueryContext, insert: &ast::Insert) -> Result<Plan, PlanError> {
    let ast::TableObject::TableName(name) = &insert.table else {
        return Err(PlanError::unsupported("INSERT into a table function"));
    };
    if insert.on.is_some() || insert.or.is_some() || !insert.assignments.is_empty() {
        return Err(PlanError::unsupported("INSERT ... ON CONFLICT"));
    }
    let table = resolve_table(qcx, name)?;
    let desc = &table.desc;
    // The target columns, in the order the source provides them.
    let targets = target_columns(table, &insert.columns)?;
    let target_types: Vec<ScalarType> = targets
        .iter()
        .map(|c| desc.typ.column_types[*c].scalar_type)
        .collect();
    let check_width = |n: usize| {
        if n > targets.len() {
            return Err(PlanError::Syntax(
                "INSERT has more expressions than target columns".into(),
            ));
        }
        if n < targets.len() && !insert.columns.is_empty() {
            return Err(PlanError::Syntax(
                "INSERT has more target columns than expressions".into(),
            ));
        }
        Ok(())
    };
    // `DEFAULT VALUES` is one row of nothing but defaults.
    let default_values = [vec![]];
    let values_rows: Option<&[Vec<ast::Expr>]> = match &insert.source {
        None => Some(&default_values),
        Some(source) => match &*source.body {
            ast::SetExpr::Values(values)
                if source.order_by.is_none() && source.limit_clause.is_none() =>
            {
                Some(&values.rows)
            }
            _ => None,
        },
    };
    let expr = match (values_rows, &insert.source) {
        (Some(values_rows), _) => {
            // Each row is assigned to the table on its own, as in PostgreSQL: every value
            // is planned at its column's type, and DEFAULT is the column's default.
            let mut rows = Vec::new();
            for row in values_rows {
                if row.len() != values_rows[0].len() {
                    return Err(PlanError::Syntax(
                        "VALUES lists must all be the same length".into(),
                    ));
                }
                check_width(row.len())?;
                let mut scalars = Vec::new();
                for (c, (col_name, col_type)) in desc.iter().enumerate() {
                    let typ = col_type.scalar_type;
                    let typmod = table.typmod(c);
                    let value = targets
                        .iter()
                        .position(|t| *t == c)
                        .and_then(|p| row.get(p))
                        .filter(|e| !is_default_keyword(e));
                    scalars.push(match value {
                        Some(e) => {
                            let planned = query::plan_scalar_in_scope(
                                qcx,
                                &query::Scope::default(),
                                &[],
                                e,
                                Some(typ),
                                "VALUES",
                                false,
                            )?;
                            let from = planned.typ(&[]);
                            assignment_cast(
                                planned,
                                from,
                                typ,
                                typmod,
                                col_name,
                                false,
                                "expression",
                            )?
                        }
                        None => plan_default(qcx, &table.defaults[c], typ, typmod, col_name)?,
                    });
                }
                rows.push(HirRelationExpr::Map {
                    input: Box::new(HirRelationExpr::Constant {
                        rows: vec![repr::Row::default()],
                        typ: RelationType::new(vec![]),
                    }),
                    scalars,
                });
            }
            let mut rows = rows.into_iter();
            let base = rows
                .next()
                .ok_or_else(|| PlanError::Syntax("VALUES needs at least one row".into()))?;
            let rest: Vec<HirRelationExpr> = rows.collect();
            if rest.is_empty() {
                base
            } else {
                HirRelationExpr::Union {
                    base: Box::new(base),
                    inputs: rest,
                }
            }
        }
        (None, source) => {
            let source = source.as_ref().expect("no rows without a source");
            let (source_expr, _) = query::plan_insert_source(qcx, source, &target_types)?;
            let source_types = source_expr.typ().column_types;
            check_width(source_types.len())?;
            // Each table column: the source column cast to its type, or its default.
            let n = source_types.len();
            let mut scalars = Vec::new();
            for (c, (col_name, col_type)) in desc.iter().enumerate() {
                let e = match targets.iter().position(|t| *t == c).filter(|p| *p < n) {
                    Some(p) => assignment_cast(
                        HirScalarExpr::column(p),
                        source_types[p],
                        col_type.scalar_type,
                        table.typmod(c),
                        col_name,
                        false,
                        "expression",
                    )?,
                    None => plan_default(
                        qcx,
                        &table.defaults[c],
                        col_type.scalar_type,
                        table.typmod(c),
                        col_name,
                    )?,
                };
                scalars.push(e);
            }
            let arity = desc.arity();
            HirRelationExpr::Project {
                input: Box::new(HirRelationExpr::Map {
                    input: Box::new(source_expr),
                    scalars,
                }),
                outputs: (n..n + arity).collect(),
            }
        }
    };
    let returning = plan_returning(qcx, &insert.returning, table)?;
    Ok(Plan::Insert {
        id: table.id,
        name: table.name.clone(),
        desc: desc.clone(),
        source: crate::optimize(expr.lower()?),
        returning,
    })
}

/// The table scanned and filtered by `selection`, as HIR.
fn plan_mutation_source(
    qcx: &QueryContext,
    name: &ast::ObjectName,
    selection: &Option<ast::Expr>,
) -> Result<(HirRelationExpr, query::Scope), PlanError> {
    let table = resolve_table(qcx, name)?;
    let get = HirRelationExpr::Get {
        id: table.id,
        typ: table.desc.typ.clone(),
        name: table.name.clone(),
    };
    let scope = query::Scope {
        items: table
            .desc
            .names
            .iter()
            .map(|n| query::ScopeItem {
                table: Some(table.name.clone()),
                column: n.clone(),
                hidden: false,
                relation: None,
            })
            .collect(),
    };
    let expr = match selection {
        Some(pred) => HirRelationExpr::Filter {
            input: Box::new(get),
            predicates: vec![query::plan_scalar_in_scope(
                qcx,
                &scope,
                &table.desc.typ.column_types,
                pred,
                Some(ScalarType::Bool),
                "WHERE",
                true,
            )?],
        },
        None => get,
    };
    Ok((expr, scope))
}

fn plan_update(qcx: &QueryContext, update: &ast::Update) -> Result<Plan, PlanError> {
    if update.from.is_some() || !update.table.joins.is_empty() || update.limit.is_some() {
        return Err(PlanError::unsupported("UPDATE ... FROM"));
    }
    let ast::TableFactor::Table {
        name, alias: None, ..
    } = &update.table.relation
    else {
        return Err(PlanError::unsupported("UPDATE of this target"));
    };
    let table = resolve_table(qcx, name)?;
    let (filtered, scope) = plan_mutation_source(qcx, name, &update.selection)?;
    let types = table.desc.typ.column_types.clone();
    let mut new_values: Vec<HirScalarExpr> = (0..types.len()).map(HirScalarExpr::column).collect();
    let mut assigned = std::collections::BTreeSet::new();
    for a in &update.assignments {
        let ast::AssignmentTarget::ColumnName(col) = &a.target else {
            return Err(PlanError::unsupported("UPDATE of column tuples"));
        };
        let col_name = col
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(normalize_ident)
            .unwrap_or_default();
        let c = table.desc.position(&col_name).ok_or_else(|| {
            PlanError::UnknownColumn(format!("{col_name}\" of relation \"{}", table.name))
        })?;
        if !assigned.insert(c) {
            return Err(PlanError::Syntax(format!(
                "multiple assignments to same column \"{col_name}\""
            )));
        }
        let target = types[c].scalar_type;
        let typmod = table.typmod(c);
        if is_default_keyword(&a.value) {
            new_values[c] = plan_default(qcx, &table.defaults[c], target, typmod, &col_name)?;
            continue;
        }
        let e = query::plan_scalar_in_scope(
            qcx,
            &scope,
            &types,
            &a.value,
            Some(target),
            "UPDATE",
            false,
        )?;
        let from = e.typ(&types);
        let is_null = query::is_null_literal(&e);
        new_values[c] = assignment_cast(e, from, target, typmod, &col_name, is_null, "expression")?;
    }
    let arity = types.len();
    let selection = HirRelationExpr::Map {
        input: Box::new(filtered),
        scalars: new_values,
    };
    let _ = arity;
    let returning = plan_returning(qcx, &update.returning, table)?;
    Ok(Plan::ReadThenWrite {
        id: table.id,
        name: table.name.clone(),
        desc: table.desc.clone(),
        selection: crate::optimize(selection.lower()?),
        kind: MutationKind::Update,
        returning,
    })
}

fn plan_delete(qcx: &QueryContext, delete: &ast::Delete) -> Result<Plan, PlanError> {
    let from = match &delete.from {
        ast::FromTable::WithFromKeyword(f) | ast::FromTable::WithoutKeyword(f) => f,
    };
    if from.len() != 1
        || !from[0].joins.is_empty()
        || delete.using.is_some()
        || delete.limit.is_some()
    {
        return Err(PlanError::unsupported("DELETE with joins"));
    }
    let ast::TableFactor::Table {
        name, alias: None, ..
    } = &from[0].relation
    else {
        return Err(PlanError::unsupported("DELETE of this target"));
    };
    let table = resolve_table(qcx, name)?;
    let (selection, _) = plan_mutation_source(qcx, name, &delete.selection)?;
    let returning = plan_returning(qcx, &delete.returning, table)?;
    Ok(Plan::ReadThenWrite {
        id: table.id,
        name: table.name.clone(),
        desc: table.desc.clone(),
        selection: crate::optimize(selection.lower()?),
        kind: MutationKind::Delete,
        returning,
    })
}

/// The relation type of a plan's rows (for tests).
pub fn relation_type(expr: &MirRelationExpr) -> RelationType {
    expr.typ()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use repr::{Datum, Row};

    use super::*;
    use crate::catalog::CatalogItem;

    /// `t (a int, b int DEFAULT 7, c text DEFAULT 'dflt', d date DEFAULT '2024-01-01',
    /// n int NOT NULL)`, `u (x int, s text)`, `m (n numeric(10,2), v varchar(5) DEFAULT
    /// 'abcdef', c char(3) DEFAULT 'x')`.
    struct TestCatalog(BTreeMap<String, CatalogItem>);

    impl SqlCatalog for TestCatalog {
        fn resolve(&self, name: &str) -> Option<&CatalogItem> {
            self.0.get(name)
        }
    }

    fn catalog() -> TestCatalog {
        let t = CatalogItem {
            id: GlobalId::User(1),
            name: "t".into(),
            kind: ItemKind::Table,
            definition: None,
            on: None,
            desc: RelationDesc::empty()
                .with_column("a", ScalarType::Int32.nullable(true))
                .with_column("b", ScalarType::Int32.nullable(true))
                .with_column("c", ScalarType::String.nullable(true))
                .with_column("d", ScalarType::Date.nullable(true))
                .with_column("n", ScalarType::Int32.nullable(false)),
            defaults: vec![
                None,
                Some("7".into()),
                Some("'dflt'".into()),
                Some("'2024-01-01'".into()),
                None,
            ],
            typmods: vec![],
        };
        let u = CatalogItem {
            id: GlobalId::User(2),
            name: "u".into(),
            kind: ItemKind::Table,
            definition: None,
            on: None,
            desc: RelationDesc::empty()
                .with_column("x", ScalarType::Int32.nullable(true))
                .with_column("s", ScalarType::String.nullable(true)),
            defaults: vec![None, None],
            typmods: vec![None, None],
        };
        let m = CatalogItem {
            id: GlobalId::User(3),
            name: "m".into(),
            kind: ItemKind::Table,
            definition: None,
            on: None,
            desc: RelationDesc::empty()
                .with_column("n", ScalarType::Numeric.nullable(true))
                .with_column("v", ScalarType::String.nullable(true))
                .with_column("c", ScalarType::String.nullable(true)),
            defaults: vec![None, Some("'abcdef'".into()), Some("'x'".into())],
            typmods: vec![
                Some(Typmod::Numeric {
                    precision: 10,
                    scale: 2,
                }),
                Some(Typmod::Varchar { length: 5 }),
                Some(Typmod::Char { length: 3 }),
            ],
        };
        TestCatalog(BTreeMap::from([
            ("t".into(), t),
            ("u".into(), u),
            ("m".into(), m),
        ]))
    }

    fn plan_sql(sql: &str, params: Params) -> Result<(Plan, Params), PlanError> {
        let stmt = crate::parse::parse(sql)?.remove(0);
        plan(&catalog(), &stmt, params)
    }

    fn plan_ok(sql: &str) -> Plan {
        plan_sql(sql, Params::default())
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .0
    }

    /// The SQLSTATE and message of planning `sql`.
    fn plan_err(sql: &str) -> (String, String) {
        match plan_sql(sql, Params::default()) {
            Ok(_) => panic!("{sql}: planned"),
            Err(e) => (e.sqlstate().to_string(), e.to_string()),
        }
    }

    /// The rows of a constant INSERT source, as text, sorted.
    fn inserted_rows(plan: &Plan) -> Vec<String> {
        let Plan::Insert { source, .. } = plan else {
            panic!("not an INSERT: {plan:?}")
        };
        let MirRelationExpr::Constant { rows: Ok(rows), .. } = source else {
            panic!("not constant: {source}")
        };
        let mut out: Vec<String> = rows
            .iter()
            .map(|(row, _): &(Row, _)| {
                row.iter()
                    .map(|d: Datum| match d {
                        Datum::Null => "NULL".to_string(),
                        d => repr::strconv::format_datum(d),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        out.sort();
        out
    }

    fn select_types(sql: &str) -> Vec<ScalarType> {
        let Plan::Select { desc, .. } = plan_ok(sql) else {
            panic!("{sql}: not a SELECT")
        };
        desc.typ
            .column_types
            .iter()
            .map(|t| t.scalar_type)
            .collect()
    }

    fn select_names(sql: &str) -> Vec<String> {
        let Plan::Select { desc, .. } = plan_ok(sql) else {
            panic!("{sql}: not a SELECT")
        };
        desc.names
    }

    #[test]
    fn default_keyword_in_values_uses_column_defaults() {
        let plan = plan_ok(
            "INSERT INTO t VALUES (1, DEFAULT, DEFAULT, DEFAULT, 0), (2, 3, DEFAULT, NULL, 0)",
        );
        assert_eq!(
            inserted_rows(&plan),
            vec!["1 7 dflt 2024-01-01 0", "2 3 dflt NULL 0"]
        );
        let plan = plan_ok("INSERT INTO t (c, a, n) VALUES (DEFAULT, 3, 1)");
        assert_eq!(inserted_rows(&plan), vec!["3 7 dflt 2024-01-01 1"]);
        let plan = plan_ok("INSERT INTO t DEFAULT VALUES");
        assert_eq!(inserted_rows(&plan), vec!["NULL 7 dflt 2024-01-01 NULL"]);
        // Quoted, "default" is a column name.
        assert_eq!(
            plan_err("INSERT INTO t (a) VALUES (\"default\")"),
            ("42703".into(), "column \"default\" does not exist".into())
        );
        assert_eq!(
            plan_err("SELECT DEFAULT").0,
            "42601",
            "DEFAULT outside VALUES and SET"
        );
    }

    #[test]
    fn insert_values_rows_are_assigned_one_by_one() {
        // Each row is cast to the column types on its own, as in PostgreSQL.
        let plan = plan_ok("INSERT INTO u (s) VALUES (1), ('a')");
        assert_eq!(inserted_rows(&plan), vec!["NULL 1", "NULL a"]);
        assert_eq!(
            plan_err("INSERT INTO u (x) VALUES (1), (true)"),
            (
                "42804".into(),
                "column \"x\" is of type integer but expression is of type boolean".into()
            )
        );
        assert_eq!(
            plan_err("INSERT INTO u (x, x) VALUES (1, 2)"),
            (
                "42701".into(),
                "column \"x\" specified more than once".into()
            )
        );
    }

    #[test]
    fn defaults_are_typed_by_their_column_and_checked_at_create() {
        let plan = plan_ok("CREATE TABLE z (d date DEFAULT '2024-01-01', i int DEFAULT '5')");
        assert!(matches!(plan, Plan::CreateTable { .. }));
        assert_eq!(
            plan_err("CREATE TABLE z (a bool DEFAULT 1)"),
            (
                "42804".into(),
                "column \"a\" is of type boolean but default expression is of type integer".into()
            )
        );
        assert_eq!(
            plan_err("CREATE TABLE z (a int DEFAULT 'x')"),
            (
                "22P02".into(),
                "invalid input syntax for type integer: \"x\"".into()
            )
        );
        assert_eq!(
            plan_err("CREATE TABLE z (a int DEFAULT count(*))").1,
            "aggregate functions are not allowed in DEFAULT expressions"
        );
        assert_eq!(
            plan_err("CREATE TABLE z (a int, b int DEFAULT a)"),
            (
                "42P10".into(),
                "cannot use column reference in DEFAULT expression".into()
            )
        );
    }

    #[test]
    fn untyped_null_takes_its_type_from_context() {
        assert_eq!(
            select_types("SELECT NULL UNION SELECT 1"),
            vec![ScalarType::Int32]
        );
        assert_eq!(
            select_types("SELECT 1 UNION ALL (SELECT NULL)"),
            vec![ScalarType::Int32]
        );
        assert_eq!(
            select_types("SELECT 1 UNION SELECT '2'"),
            vec![ScalarType::Int32]
        );
        assert_eq!(
            select_types("SELECT 'a' UNION SELECT 'b'"),
            vec![ScalarType::String]
        );
        assert_eq!(
            select_types("SELECT NULL UNION SELECT NULL"),
            vec![ScalarType::String]
        );
        assert_eq!(
            select_types("SELECT 1 UNION SELECT 2 UNION SELECT NULL"),
            vec![ScalarType::Int32]
        );
        assert_eq!(
            select_types("VALUES (NULL, '1'), (1.5, 2)"),
            vec![ScalarType::Numeric, ScalarType::Int32]
        );
        assert_eq!(
            select_types("SELECT CASE WHEN true THEN NULL ELSE 1 END, COALESCE(NULL, 2)"),
            vec![ScalarType::Int32, ScalarType::Int32]
        );
        // Resolved before the set operation sees them, as in PostgreSQL: text.
        for sql in [
            "SELECT NULL UNION SELECT NULL UNION SELECT 1",
            "SELECT DISTINCT NULL UNION SELECT 1",
            "SELECT x FROM (SELECT NULL AS x) AS s UNION SELECT 1",
            "VALUES (NULL) UNION SELECT 1",
            "SELECT 1 UNION SELECT '2'::text",
        ] {
            assert_eq!(plan_err(sql).0, "42804", "{sql}");
        }
        assert_eq!(
            plan_err("SELECT 'x' UNION SELECT 1"),
            (
                "22P02".into(),
                "invalid input syntax for type integer: \"x\"".into()
            )
        );
        // INSERT ... SELECT: NULL takes the target column's type (the NOT NULL check
        // happens when the rows are written).
        let Plan::Insert { source, .. } = plan_ok("INSERT INTO t (a, n) SELECT a, NULL FROM t")
        else {
            panic!("not an INSERT")
        };
        assert_eq!(source.typ().column_types[4].scalar_type, ScalarType::Int32);
        plan_ok("INSERT INTO t (a, n) SELECT 1, '2'");
        assert_eq!(
            plan_err("INSERT INTO t (a, n) SELECT 1, '2' UNION SELECT 2, '3'").0,
            "42804"
        );
    }

    #[test]
    fn concatenation_types_untyped_operands_as_text() {
        assert_eq!(
            select_types("SELECT 'a' || 1, 1 || 'a', NULL || 1"),
            vec![ScalarType::String; 3]
        );
        assert_eq!(
            plan_err("SELECT 1 || 2"),
            (
                "42883".into(),
                "operator does not exist: integer || integer".into()
            )
        );
    }

    #[test]
    fn time_arithmetic() {
        assert_eq!(
            select_types(
                "SELECT TIME '23:00' + INTERVAL '2 hours', TIME '01:00' - INTERVAL '2 hours', \
                 INTERVAL '1 hour' + TIME '01:00'"
            ),
            vec![ScalarType::Time; 3]
        );
        plan_ok("SELECT TIME '23:00' - TIME '01:00'");
    }

    #[test]
    fn postgres_error_messages() {
        let cases = [
            ("SELECT 1 FROM u, u", "42712", "table name \"u\" specified more than once"),
            ("SELECT 1 FROM u JOIN t ON true JOIN u ON true", "42712", "table name \"u\" specified more than once"),
            ("SELECT x.a FROM t", "42P01", "missing FROM-clause entry for table \"x\""),
            ("SELECT x.* FROM t", "42P01", "missing FROM-clause entry for table \"x\""),
            ("SELECT t.a FROM t AS e", "42P01", "invalid reference to FROM-clause entry for table \"t\""),
            ("DROP TABLE nope", "42P01", "table \"nope\" does not exist"),
            ("SELECT t.nope FROM t", "42703", "column t.nope does not exist"),
            ("SELECT nope FROM t", "42703", "column \"nope\" does not exist"),
            ("SELECT b FROM t GROUP BY a", "42803", "column \"t.b\" must appear in the GROUP BY clause or be used in an aggregate function"),
            ("SELECT e.b, count(*) FROM t AS e", "42803", "column \"e.b\" must appear in the GROUP BY clause or be used in an aggregate function"),
            ("SELECT a FROM t WHERE sum(a) > 0", "42803", "aggregate functions are not allowed in WHERE"),
            ("SELECT 1 FROM t JOIN u ON count(*) > 0", "42803", "aggregate functions are not allowed in JOIN conditions"),
            ("SELECT sum(count(*)) FROM t", "42803", "aggregate function calls cannot be nested"),
            ("SELECT a FROM t GROUP BY sum(a)", "42803", "aggregate functions are not allowed in GROUP BY"),
            ("UPDATE t SET a = max(a)", "42803", "aggregate functions are not allowed in UPDATE"),
            ("INSERT INTO t (a) VALUES (1) RETURNING count(*)", "42803", "aggregate functions are not allowed in RETURNING"),
            ("SELECT CASE WHEN a > 0 THEN 1 ELSE c END FROM t", "42804", "CASE types text and integer cannot be matched"),
            ("SELECT COALESCE(a, c) FROM t", "42804", "COALESCE types integer and text cannot be matched"),
            ("SELECT a LIKE 'x%' FROM t", "42883", "operator does not exist: integer ~~ unknown"),
            ("SELECT c NOT ILIKE a FROM t", "42883", "operator does not exist: text !~~* integer"),
            ("SELECT no_such_function(1, 'a', c) FROM t", "42883", "function no_such_function(integer, unknown, text) does not exist"),
            ("SELECT 'abc", "42601", "unterminated quoted string at or near \"'abc\""),
            ("SELECT * FROM FROM t", "42601", "syntax error at or near \"FROM\""),
            ("CREATE TABLE TABLE (a int)", "42601", "syntax error at or near \"TABLE\""),
            ("SELECT $1", "42P02", "there is no parameter $1"),
            ("SELECT a AS x, b AS x FROM t ORDER BY x", "42702", "ORDER BY \"x\" is ambiguous"),
            ("SELECT a AS x, b AS x FROM t GROUP BY x", "42702", "GROUP BY \"x\" is ambiguous"),
        ];
        for (sql, code, message) in cases {
            assert_eq!(
                plan_err(sql),
                (code.to_string(), message.to_string()),
                "{sql}"
            );
        }
    }

    #[test]
    fn parameters_are_inferred_when_describing_and_required_when_executing() {
        let (_, params) = plan_sql(
            "SELECT a FROM t WHERE a = $1 AND c = $2",
            Params::describing(vec![]),
        )
        .unwrap();
        assert_eq!(
            params.types,
            vec![Some(ScalarType::Int32), Some(ScalarType::String)]
        );
        let executing = Params::executing(vec![Some(ScalarType::Int32)], vec![Some("1".into())]);
        plan_sql("SELECT a FROM t WHERE a = $1", executing.clone()).unwrap();
        assert_eq!(
            plan_sql("SELECT $2", executing).unwrap_err().sqlstate(),
            "42P02"
        );
        // `SELECT 1 UNION SELECT $1`: the untyped parameter takes the other side's type.
        let (_, params) = plan_sql("SELECT 1 UNION SELECT $1", Params::describing(vec![])).unwrap();
        assert_eq!(params.types, vec![Some(ScalarType::Int32)]);
    }

    #[test]
    fn output_names_and_order_by_follow_postgres() {
        assert_eq!(
            select_names(
                "SELECT 2.5::float8::int, a::text, '2020-01-01'::timestamptz, 1::int::text, \
                 'x'::varchar(3), DATE '2024-01-01', CAST(1 AS double precision), \
                 (SELECT x FROM u) FROM t"
            ),
            vec![
                "int4",
                "a",
                "timestamptz",
                "text",
                "varchar",
                "date",
                "float8",
                "x"
            ]
        );
        // A bare name in ORDER BY is the output column; in GROUP BY the input column.
        let Plan::Select { finishing, .. } = plan_ok("SELECT a AS b, b AS a FROM t ORDER BY b")
        else {
            panic!("not a SELECT")
        };
        assert_eq!(finishing.order_by[0].column, 0);
        assert_eq!(
            plan_err("SELECT b AS a, count(*) FROM t GROUP BY a").1,
            "column \"t.b\" must appear in the GROUP BY clause or be used in an aggregate function"
        );
        plan_ok("SELECT a + 1 AS k, count(*) FROM t GROUP BY k");
        plan_ok("SELECT a AS x, a AS x FROM t ORDER BY x");
    }

    /// The SQLSTATE and message of the error a plan's constant rows hold.
    fn constant_error(source: &MirRelationExpr) -> (String, String) {
        match source {
            MirRelationExpr::Constant { rows: Err(e), .. } => {
                (e.sqlstate().to_string(), e.to_string())
            }
            other => panic!("not a constant error: {other}"),
        }
    }

    /// The single row of a constant SELECT, as text.
    fn select_row(sql: &str) -> Vec<String> {
        let Plan::Select { source, .. } = plan_ok(sql) else {
            panic!("{sql}: not a SELECT")
        };
        let MirRelationExpr::Constant { rows: Ok(rows), .. } = &source else {
            panic!("{sql}: not constant: {source}")
        };
        assert_eq!(rows.len(), 1, "{sql}");
        rows[0].0.iter().map(repr::strconv::format_datum).collect()
    }

    fn explain_raw(sql: &str) -> String {
        match plan_ok(&format!("EXPLAIN RAW PLAN FOR {sql}")) {
            Plan::Explain { text, .. } => text,
            other => panic!("{sql}: not an EXPLAIN: {other:?}"),
        }
    }

    #[test]
    fn explicit_casts_apply_type_modifiers() {
        // From PostgreSQL 15.
        assert_eq!(
            select_row(
                "SELECT 3.14159::numeric(10,2), 2.675::numeric(10,2), 12345::numeric(5,-2), \
                 12.5::numeric(3), CAST('abcdef' AS varchar(2)), 'abc'::char(5), \
                 'abc'::char, 'abc'::character varying(2), 'ab  '::varchar(3), \
                 'abc'::bpchar, 12345::varchar(2), varchar(2) 'abc'"
            ),
            vec!["3.14", "2.68", "12300", "13", "ab", "abc  ", "a", "ab", "ab ", "abc", "12", "ab"]
        );
        // The modifier follows the cast to the base type, over any input.
        assert_eq!(
            explain_raw("SELECT a::numeric(10,2), c::varchar(2), a::char(3) FROM t"),
            "Project (#5, #6, #7)\n  Map (cast_to_numeric(10,2)(cast_to_numeric(#0)), \
             cast_to_varchar(2)(#2), cast_to_char(3)(cast_to_text(#0)))\n    Get t (u1)\n"
        );
        let Plan::Select { source, .. } = plan_ok("SELECT c::varchar(2), c::char(3) FROM t") else {
            panic!("not a SELECT")
        };
        let text = format!("{source:?}");
        assert!(
            text.contains("VarcharTypmod { length: 2, explicit: true }")
                && text.contains("CharTypmod { length: 3, explicit: true }"),
            "{text}"
        );
        // Without a modifier, nothing is applied; the column type is the base type.
        let Plan::Select { source, .. } =
            plan_ok("SELECT a::numeric, c::varchar, c::bpchar, c::text FROM t")
        else {
            panic!("not a SELECT")
        };
        assert!(!format!("{source:?}").contains("Typmod"), "{source}");
        assert_eq!(
            select_types("SELECT 1::numeric(10,2), 'a'::varchar(2), 'a'::char(2)"),
            vec![ScalarType::Numeric, ScalarType::String, ScalarType::String]
        );
        let overflow = plan_ok("SELECT 123456789.5::numeric(10,2)");
        let Plan::Select { source, .. } = overflow else {
            panic!("not a SELECT")
        };
        assert_eq!(
            constant_error(&source),
            ("22003".into(), "numeric field overflow".into())
        );
    }

    #[test]
    fn type_modifiers_are_checked_like_postgres() {
        // From PostgreSQL 15.
        let cases = [
            (
                "SELECT 1::numeric(0)",
                "22023",
                "NUMERIC precision 0 must be between 1 and 1000",
            ),
            (
                "SELECT 1::numeric(1001)",
                "22023",
                "NUMERIC precision 1001 must be between 1 and 1000",
            ),
            (
                "SELECT 1::numeric(0, 2000)",
                "22023",
                "NUMERIC precision 0 must be between 1 and 1000",
            ),
            (
                "SELECT 1::numeric(10, 1001)",
                "22023",
                "NUMERIC scale 1001 must be between -1000 and 1000",
            ),
            (
                "SELECT 1::decimal(10, -1001)",
                "22023",
                "NUMERIC scale -1001 must be between -1000 and 1000",
            ),
            (
                "SELECT 'a'::varchar(0)",
                "22023",
                "length for type varchar must be at least 1",
            ),
            (
                "SELECT 'a'::character varying(0)",
                "22023",
                "length for type varchar must be at least 1",
            ),
            (
                "SELECT 'a'::char(0)",
                "22023",
                "length for type char must be at least 1",
            ),
            (
                "SELECT 'a'::bpchar(0)",
                "22023",
                "length for type char must be at least 1",
            ),
            ("SELECT 'a'::bpchar(2, 3)", "22023", "invalid type modifier"),
            (
                "SELECT 'a'::varchar(10485761)",
                "22023",
                "length for type varchar cannot exceed 10485760",
            ),
            (
                "SELECT 'a'::char(10485761)",
                "22023",
                "length for type char cannot exceed 10485760",
            ),
            (
                "SELECT 1::float(0)",
                "22023",
                "precision for type float must be at least 1 bit",
            ),
            (
                "SELECT 1::float(54)",
                "22023",
                "precision for type float must be less than 54 bits",
            ),
            (
                "SELECT 1::int4(3)",
                "42601",
                "type modifier is not allowed for type \"int4\"",
            ),
            (
                "SELECT 1::nosuchtype(3)",
                "42704",
                "type \"nosuchtype\" does not exist",
            ),
            (
                "CREATE TABLE z (a varchar(0))",
                "22023",
                "length for type varchar must be at least 1",
            ),
            (
                "CREATE TABLE z (a numeric(2000, 1))",
                "22023",
                "NUMERIC precision 2000 must be between 1 and 1000",
            ),
        ];
        for (sql, code, message) in cases {
            assert_eq!(
                plan_err(sql),
                (code.to_string(), message.to_string()),
                "{sql}"
            );
        }
        // PostgreSQL accepts a scale beyond the precision, and up to 1000 digits (beyond
        // Freshet's 28, values overflow when they are computed).
        plan_ok("SELECT 0.00001::numeric(2, 5), 1::numeric(1000, 0)");
        assert_eq!(
            select_types("SELECT 1::float(24), 1::float(25), 1::float"),
            vec![
                ScalarType::Float32,
                ScalarType::Float64,
                ScalarType::Float64
            ]
        );
        // Seconds precision is accepted (above 6 it is 6) but not applied.
        plan_ok(
            "SELECT '12:00'::time(0), '2020-01-01'::timestamp(7), '1 s'::interval(3), \
             '2020-01-01'::timestamp(3) with time zone, '2020-01-01'::timestamptz(3), \
             '12:00'::time(2) without time zone",
        );
    }

    #[test]
    fn create_table_keeps_type_modifiers() {
        let Plan::CreateTable { desc, typmods, .. } = plan_ok(
            "CREATE TABLE z (n numeric(10,2), d decimal(5), v varchar(5), \
             w character varying, c char(3), b char, x bpchar, t timestamp(3), i int)",
        ) else {
            panic!("not a CREATE TABLE")
        };
        assert_eq!(
            typmods,
            vec![
                Some(Typmod::Numeric {
                    precision: 10,
                    scale: 2
                }),
                Some(Typmod::Numeric {
                    precision: 5,
                    scale: 0
                }),
                Some(Typmod::Varchar { length: 5 }),
                None,
                Some(Typmod::Char { length: 3 }),
                Some(Typmod::Char { length: 1 }),
                None,
                Some(Typmod::SecondsPrecision { precision: 3 }),
                None,
            ]
        );
        // Clients see the base types.
        assert_eq!(desc.typ.column_types[0].scalar_type, ScalarType::Numeric);
        assert_eq!(desc.typ.column_types[2].scalar_type, ScalarType::String);
        // A default is coerced when it is used, not when it is declared (PostgreSQL 15).
        plan_ok("CREATE TABLE z (v varchar(2) DEFAULT 'abc', n numeric(3,1) DEFAULT 12345)");
    }

    #[test]
    fn assignments_apply_type_modifiers() {
        // From PostgreSQL 15: assignment rounds numerics, pads char(n), and cuts only
        // trailing spaces from strings too long.
        let plan =
            plan_ok("INSERT INTO m VALUES (3.14159, 'abc', 'x'), (1, 'abc      ', 'ab    ')");
        assert_eq!(inserted_rows(&plan), vec!["1.00 abc   ab ", "3.14 abc x  "]);
        let plan = plan_ok("INSERT INTO m (n, v, c) VALUES (12, NULL, DEFAULT)");
        assert_eq!(inserted_rows(&plan), vec!["12.00 NULL x  "]);
        let error = |sql: &str| {
            let Plan::Insert { source, .. } = plan_ok(sql) else {
                panic!("{sql}: not an INSERT")
            };
            constant_error(&source)
        };
        let too_long = |typ: &str| {
            (
                "22001".to_string(),
                format!("value too long for type {typ}"),
            )
        };
        assert_eq!(
            error("INSERT INTO m (v) VALUES ('abcdef')"),
            too_long("character varying(5)")
        );
        assert_eq!(
            error("INSERT INTO m (v, c) VALUES ('a', 'abcd')"),
            too_long("character(3)")
        );
        assert_eq!(
            error("INSERT INTO m (v) VALUES (123456)"),
            too_long("character varying(5)")
        );
        assert_eq!(
            error("INSERT INTO m (n, v) VALUES (123456789.5, 'a')"),
            ("22003".into(), "numeric field overflow".into())
        );
        // The default 'abcdef' is too long for v when it is used.
        assert_eq!(
            error("INSERT INTO m (n) VALUES (1)"),
            too_long("character varying(5)")
        );
        assert_eq!(
            error("INSERT INTO m (v) SELECT 'abcdef'"),
            too_long("character varying(5)")
        );
        // INSERT ... SELECT and UPDATE coerce with assignment semantics.
        let assigned = |source: &MirRelationExpr| {
            let text = format!("{source:?}");
            [
                "NumericTypmod { precision: 10, scale: 2 }",
                "VarcharTypmod { length: 5, explicit: false }",
                "CharTypmod { length: 3, explicit: false }",
            ]
            .iter()
            .all(|f| text.contains(f))
        };
        let Plan::Insert { source, .. } = plan_ok("INSERT INTO m SELECT a, c, c FROM t") else {
            panic!("not an INSERT")
        };
        assert!(assigned(&source), "{source}");
        let Plan::ReadThenWrite { selection, .. } =
            plan_ok("UPDATE m SET n = n * 3, v = v || 'x', c = v")
        else {
            panic!("not an UPDATE")
        };
        assert!(assigned(&selection), "{selection}");
        let Plan::ReadThenWrite { selection, .. } = plan_ok("UPDATE m SET c = DEFAULT") else {
            panic!("not an UPDATE")
        };
        assert_eq!(
            selection.to_string(),
            "Map (#0, #1, \"x  \")\n  Get m (u3)\n"
        );
        let Plan::ReadThenWrite { selection, .. } = plan_ok("UPDATE m SET v = NULL") else {
            panic!("not an UPDATE")
        };
        assert!(!format!("{selection:?}").contains("Typmod"), "{selection}");
    }
}
