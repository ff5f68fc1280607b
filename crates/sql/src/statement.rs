//! Statement planning: a [`ParsedStatement`] into a [`Plan`] the coordinator executes.
//!
//! Queries go through the pipeline of [`crate::optimize_query`]; DML is planned as
//! constant rows (INSERT ... VALUES), or as a query whose result is written
//! (INSERT ... SELECT) or whose rows are retracted and replaced (UPDATE, DELETE).

use expr::{MirRelationExpr, MirScalarExpr, RowSetFinishing};
use repr::{ColumnType, GlobalId, RelationDesc, RelationType, ScalarType};
use sqlparser::ast;

use crate::catalog::{ItemKind, SqlCatalog};
use crate::error::PlanError;
use crate::hir::{HirRelationExpr, HirScalarExpr};
use crate::parse::{ExplainStage, ParsedStatement, SetValue, Statement};
use crate::query::{
    self, normalize_ident, normalize_object_name, parse_data_type, Params, QueryContext,
};

/// A planned statement.
#[derive(Debug)]
pub enum Plan {
    CreateTable {
        name: String,
        desc: RelationDesc,
        defaults: Vec<Option<String>>,
        if_not_exists: bool,
    },
    DropTables {
        ids: Vec<(GlobalId, String)>,
    },
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
    },
    Explain {
        stage: ExplainStage,
        text: String,
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
    StartTransaction,
    Commit,
    Rollback,
    /// `DEALLOCATE [PREPARE] name | ALL`: prepared statements live in the protocol
    /// layer, which replaces them on the next Parse of the same name.
    Deallocate { all: bool },
    /// `DISCARD ALL | PLANS | SEQUENCES | TEMP`: resets the session variables for ALL.
    Discard { all: bool },
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
        Statement::Explain { stage, statement } => plan_explain(qcx, *stage, statement),
        Statement::Sql(s) => match &**s {
            ast::Statement::Query(q) => {
                let planned = query::plan_root_query(qcx, q)?;
                let source = crate::optimize(planned.expr.lower()?);
                Ok(Plan::Select {
                    source,
                    desc: planned.desc,
                    finishing: planned.finishing,
                })
            }
            ast::Statement::CreateTable(ct) => plan_create_table(ct),
            ast::Statement::Drop {
                object_type: ast::ObjectType::Table,
                if_exists,
                names,
                cascade: _,
                ..
            } => {
                let mut ids = Vec::new();
                for n in names {
                    let name = normalize_object_name(n)?;
                    match qcx.catalog.resolve(&name) {
                        Some(item) => ids.push((item.id, item.name.clone())),
                        None if *if_exists => {}
                        None => return Err(PlanError::UnknownRelation(name)),
                    }
                }
                Ok(Plan::DropTables { ids })
            }
            ast::Statement::Insert(insert) => plan_insert(qcx, insert),
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
    let ast::Statement::Query(q) = statement else {
        return Err(PlanError::unsupported(
            "EXPLAIN of statements other than SELECT",
        ));
    };
    let planned = query::plan_root_query(qcx, q)?;
    let text = match stage {
        ExplainStage::Raw => planned.expr.to_string(),
        ExplainStage::Decorrelated => planned.expr.lower()?.to_string(),
        ExplainStage::Optimized => crate::optimize(planned.expr.lower()?).to_string(),
        ExplainStage::Physical => {
            crate::lir::plan_to_lir(&crate::optimize(planned.expr.lower()?))?.to_string()
        }
    };
    Ok(Plan::Explain { stage, text })
}

fn plan_create_table(ct: &ast::CreateTable) -> Result<Plan, PlanError> {
    if ct.query.is_some() {
        return Err(PlanError::unsupported("CREATE TABLE ... AS"));
    }
    let name = normalize_object_name(&ct.name)?;
    let mut desc = RelationDesc::empty();
    let mut defaults = Vec::new();
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
        let scalar_type = parse_data_type(&col.data_type)?;
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
        desc = desc.with_column(col_name, scalar_type.nullable(nullable));
        defaults.push(default);
    }
    Ok(Plan::CreateTable {
        name,
        desc,
        defaults,
        if_not_exists: ct.if_not_exists,
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

fn resolve_table<'a>(
    qcx: &'a QueryContext,
    name: &ast::ObjectName,
) -> Result<&'a crate::catalog::CatalogItem, PlanError> {
    let normalized = normalize_object_name(name)?;
    let item = qcx
        .catalog
        .resolve(&normalized)
        .ok_or(PlanError::UnknownRelation(normalized.clone()))?;
    if item.kind != ItemKind::Table {
        return Err(PlanError::DatatypeMismatch(format!(
            "cannot write to \"{normalized}\": it is not a table"
        )));
    }
    Ok(item)
}

/// Casts `expr` (of type `from`) for assignment to a column of type `to`.
fn assignment_cast(
    expr: HirScalarExpr,
    from: ColumnType,
    to: ScalarType,
    column: &str,
    is_null: bool,
) -> Result<HirScalarExpr, PlanError> {
    if from.scalar_type == to {
        return Ok(expr);
    }
    if is_null {
        return Ok(HirScalarExpr::literal_null(to));
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
            "column \"{column}\" is of type {to} but expression is of type {}",
            from.scalar_type
        )));
    }
    Ok(expr.call_unary(expr::UnaryFunc::Cast(to)))
}

fn plan_default(
    qcx: &QueryContext,
    default: &Option<String>,
    typ: ScalarType,
    column: &str,
) -> Result<HirScalarExpr, PlanError> {
    let Some(text) = default else {
        return Ok(HirScalarExpr::literal_null(typ));
    };
    let parsed = crate::parse::parse(&format!("SELECT {text}"))?;
    let Some(Statement::Sql(stmt)) = parsed.into_iter().next().map(|p| p.statement) else {
        return Err(PlanError::Syntax(format!(
            "invalid default for column \"{column}\""
        )));
    };
    let ast::Statement::Query(q) = *stmt else {
        return Err(PlanError::Syntax(format!(
            "invalid default for column \"{column}\""
        )));
    };
    let (expr, _) = query::plan_nested_query(qcx, &q)?;
    // `SELECT <default>` is Project(Map(Constant [()], [e]), [0]): take the expression.
    let HirRelationExpr::Project { input, .. } = expr else {
        unreachable!("a SELECT of one expression")
    };
    let HirRelationExpr::Map { mut scalars, .. } = *input else {
        unreachable!("a SELECT of one expression")
    };
    let e = scalars.remove(0);
    let from = e.typ(&[]);
    let is_null =
        matches!(&e, HirScalarExpr::Literal(r, _) if r.iter().next() == Some(repr::Datum::Null));
    assignment_cast(e, from, typ, column, is_null)
}

fn plan_returning(
    qcx: &QueryContext,
    items: &Option<Vec<ast::SelectItem>>,
    table: &crate::catalog::CatalogItem,
) -> Result<Option<Returning>, PlanError> {
    let Some(items) = items else { return Ok(None) };
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
    let targets: Vec<usize> = if insert.columns.is_empty() {
        (0..desc.arity()).collect()
    } else {
        insert
            .columns
            .iter()
            .map(|c| {
                let n = normalize_ident(c);
                desc.position(&n).ok_or_else(|| {
                    PlanError::UnknownColumn(format!("{n}\" of relation \"{}", table.name))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let hints: Vec<ScalarType> = targets
        .iter()
        .map(|c| desc.typ.column_types[*c].scalar_type)
        .collect();
    let source = insert
        .source
        .as_ref()
        .ok_or_else(|| PlanError::unsupported("INSERT ... DEFAULT VALUES"))?;
    let (source_expr, _) = match &*source.body {
        ast::SetExpr::Values(values)
            if source.order_by.is_none() && source.limit_clause.is_none() =>
        {
            query::plan_values_with_hints(qcx, values, &hints)?
        }
        _ => query::plan_nested_query(qcx, source)?,
    };
    let source_types = source_expr.typ().column_types;
    if source_types.len() > targets.len() {
        return Err(PlanError::Syntax(
            "INSERT has more expressions than target columns".into(),
        ));
    }
    if source_types.len() < targets.len() && !insert.columns.is_empty() {
        return Err(PlanError::Syntax(
            "INSERT has more target columns than expressions".into(),
        ));
    }
    // Each table column: the source column cast to its type, or its default.
    let n = source_types.len();
    let mut scalars = Vec::new();
    for (c, (col_name, col_type)) in desc.iter().enumerate() {
        let e = match targets.iter().position(|t| *t == c).filter(|p| *p < n) {
            Some(p) => assignment_cast(
                HirScalarExpr::column(p),
                source_types[p],
                col_type.scalar_type,
                col_name,
                false,
            )?,
            None => plan_default(qcx, &table.defaults[c], col_type.scalar_type, col_name)?,
        };
        scalars.push(e);
    }
    let arity = desc.arity();
    let expr = HirRelationExpr::Project {
        input: Box::new(HirRelationExpr::Map {
            input: Box::new(source_expr),
            scalars,
        }),
        outputs: (n..n + arity).collect(),
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
    let text = format!(
        "SELECT * FROM \"{}\"{}",
        table.name,
        selection
            .as_ref()
            .map(|s| format!(" WHERE {s}"))
            .unwrap_or_default()
    );
    let _ = text;
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
                Some("WHERE"),
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
        let target = types[c].scalar_type;
        let e = query::plan_scalar_in_scope(qcx, &scope, &types, &a.value, Some(target), None)?;
        let from = e.typ(&types);
        let is_null = matches!(&e, HirScalarExpr::Literal(r, _) if r.iter().next() == Some(repr::Datum::Null));
        new_values[c] = assignment_cast(e, from, target, &col_name, is_null)?;
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
