//! Planning catalog DDL around queries: views, materialized views and indexes.
//!
//! A view is stored as its query's SQL text and re-planned where it is used, so its
//! plan always follows the current planner. An index names a collection and key
//! expressions over its columns; the coordinator maintains it as an arrangement.

use expr::MirScalarExpr;
use repr::{GlobalId, RelationDesc};
use sqlparser::ast;

use crate::catalog::ItemKind;
use crate::error::PlanError;
use crate::hir::HirScalarExpr;
use crate::query::{self, normalize_ident, normalize_object_name, QueryContext, Scope, ScopeItem};

/// `CREATE [MATERIALIZED] VIEW`.
#[derive(Clone, Debug)]
pub struct CreateViewPlan {
    pub name: String,
    /// The query, as SQL text (re-planned on every use).
    pub sql: String,
    pub desc: RelationDesc,
    /// The catalog objects the query reads.
    pub depends_on: Vec<GlobalId>,
    pub materialized: bool,
    pub or_replace: bool,
    pub if_not_exists: bool,
    pub temporary: bool,
}

/// `CREATE [DEFAULT] INDEX`.
#[derive(Clone, Debug)]
pub struct CreateIndexPlan {
    pub name: String,
    pub on: GlobalId,
    pub on_name: String,
    /// Key expressions over the indexed collection's columns.
    pub keys: Vec<MirScalarExpr>,
    pub if_not_exists: bool,
}

/// `DROP TABLE | VIEW | MATERIALIZED VIEW | INDEX`.
#[derive(Clone, Debug)]
pub struct DropPlan {
    pub kind: ItemKind,
    /// The objects named (that exist).
    pub ids: Vec<(GlobalId, String)>,
    pub cascade: bool,
}

pub fn plan_create_view(
    qcx: &QueryContext,
    cv: &ast::CreateView,
) -> Result<CreateViewPlan, PlanError> {
    if cv.or_alter || cv.to.is_some() || !cv.cluster_by.is_empty() {
        return Err(PlanError::unsupported("these CREATE VIEW options"));
    }
    let name = normalize_object_name(&cv.name)?;
    let (expr, mut names) = query::plan_nested_query(qcx, &cv.query)?;
    if !cv.columns.is_empty() {
        if cv.columns.len() > names.len() {
            return Err(PlanError::Syntax(
                "CREATE VIEW specifies more column names than columns".into(),
            ));
        }
        for (i, c) in cv.columns.iter().enumerate() {
            names[i] = normalize_ident(&c.name);
        }
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(PlanError::DuplicateColumn(format!(
                "column \"{n}\" specified more than once"
            )));
        }
    }
    let typ = expr.typ();
    let desc = RelationDesc::new(repr::RelationType::new(typ.column_types), names);
    let depends_on = qcx.referenced.borrow().iter().copied().collect();
    Ok(CreateViewPlan {
        name,
        sql: cv.query.to_string(),
        desc,
        depends_on,
        materialized: cv.materialized,
        or_replace: cv.or_replace,
        if_not_exists: cv.if_not_exists,
        temporary: cv.temporary,
    })
}

/// Plans `CREATE INDEX [name] ON obj (exprs)`; `keys: None` is `CREATE DEFAULT INDEX`
/// (every column).
pub fn plan_create_index(
    qcx: &QueryContext,
    name: Option<&ast::ObjectName>,
    on: &ast::ObjectName,
    keys: Option<&[ast::IndexColumn]>,
    if_not_exists: bool,
) -> Result<CreateIndexPlan, PlanError> {
    let on_name = normalize_object_name(on)?;
    let item = qcx
        .catalog
        .resolve(&on_name)
        .ok_or_else(|| PlanError::UnknownRelation(on_name.clone()))?;
    if item.kind == ItemKind::Index {
        return Err(PlanError::WrongObjectType(format!(
            "\"{on_name}\" is an index"
        )));
    }
    let scope = Scope {
        items: item
            .desc
            .names
            .iter()
            .map(|n| ScopeItem {
                table: Some(on_name.clone()),
                column: n.clone(),
                hidden: false,
                ..Default::default()
            })
            .collect(),
    };
    let types = item.desc.typ.column_types.clone();
    let key_exprs: Vec<MirScalarExpr> = match keys {
        None => (0..item.desc.arity()).map(MirScalarExpr::Column).collect(),
        Some(columns) => columns
            .iter()
            .map(|c| {
                let planned: HirScalarExpr = query::plan_scalar_in_scope(
                    qcx,
                    &scope,
                    &types,
                    &c.column.expr,
                    None,
                    "index expressions",
                    false,
                )?;
                planned.lower()
            })
            .collect::<Result<_, _>>()?,
    };
    let name = match name {
        Some(n) => normalize_object_name(n)?,
        None => {
            // PostgreSQL's convention: table_col1_col2_idx (or _expr_idx).
            let parts: Vec<String> = match keys {
                None => vec!["primary".into()],
                Some(columns) => columns
                    .iter()
                    .map(|c| match &c.column.expr {
                        ast::Expr::Identifier(id) => normalize_ident(id),
                        _ => "expr".into(),
                    })
                    .collect(),
            };
            format!("{on_name}_{}_idx", parts.join("_"))
        }
    };
    Ok(CreateIndexPlan {
        name,
        on: item.id,
        on_name,
        keys: key_exprs,
        if_not_exists,
    })
}

pub fn plan_drop(
    qcx: &QueryContext,
    object_type: &ast::ObjectType,
    names: &[ast::ObjectName],
    if_exists: bool,
    cascade: bool,
) -> Result<DropPlan, PlanError> {
    let (kind, what) = match object_type {
        ast::ObjectType::Table => (ItemKind::Table, "table"),
        ast::ObjectType::View => (ItemKind::View, "view"),
        ast::ObjectType::MaterializedView => (ItemKind::MaterializedView, "materialized view"),
        ast::ObjectType::Index => (ItemKind::Index, "index"),
        other => return Err(PlanError::unsupported(format!("DROP {other}"))),
    };
    let mut ids = Vec::new();
    for n in names {
        let name = normalize_object_name(n)?;
        match qcx.catalog.resolve(&name) {
            Some(item) if item.kind == kind => ids.push((item.id, item.name.clone())),
            Some(_) => {
                return Err(PlanError::WrongObjectType(format!(
                    "\"{name}\" is not {} {what}",
                    if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
                        "an"
                    } else {
                        "a"
                    }
                )));
            }
            None if if_exists => {}
            None => return Err(PlanError::DoesNotExist { kind: what, name }),
        }
    }
    Ok(DropPlan { kind, ids, cascade })
}
