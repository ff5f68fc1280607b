//! Planning catalog DDL around queries: views, materialized views, indexes, schemas
//! and databases.
//!
//! A view is stored as its query's SQL text and re-planned where it is used, so its
//! plan always follows the current planner; the text names every catalog item fully
//! (`freshet.public.t`), so it means what it meant when the view was created. An
//! index names a collection and key expressions over its columns; the coordinator
//! maintains it as an arrangement, in the schema of its collection. Databases hold
//! schemas, schemas hold items; `SHOW DATABASES | SCHEMAS` are planned as constant
//! queries over the catalog, as Materialize plans its `SHOW` commands.

use expr::{ColumnOrder, MirRelationExpr, MirScalarExpr, RowSetFinishing};
use repr::{Datum, GlobalId, RelationDesc, RelationType, Row, ScalarType};
use sqlparser::ast;

use crate::catalog::{ItemKind, QualifiedName};
use crate::error::PlanError;
use crate::hir::HirScalarExpr;
use crate::query::{
    self, normalize_ident, normalize_object_name, PartialName, QueryContext, Scope, ScopeItem,
};

/// `CREATE [MATERIALIZED] VIEW`.
#[derive(Clone, Debug)]
pub struct CreateViewPlan {
    pub name: QualifiedName,
    /// The query, as SQL text (re-planned on every use).
    pub sql: String,
    pub desc: RelationDesc,
    /// The catalog objects the query reads.
    pub depends_on: Vec<GlobalId>,
    pub materialized: bool,
    pub or_replace: bool,
    pub if_not_exists: bool,
    pub temporary: bool,
    /// `WITH (RETAIN HISTORY FOR ...)` of a materialized view, in milliseconds.
    pub retain_history_ms: Option<u64>,
}

/// `CREATE [DEFAULT] INDEX`.
#[derive(Clone, Debug)]
pub struct CreateIndexPlan {
    /// In the schema of the indexed collection.
    pub name: QualifiedName,
    pub on: GlobalId,
    pub on_name: String,
    /// Key expressions over the indexed collection's columns.
    pub keys: Vec<MirScalarExpr>,
    pub if_not_exists: bool,
    /// `WITH (RETAIN HISTORY FOR ...)`, in milliseconds.
    pub retain_history_ms: Option<u64>,
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
    let name = query::plan_item_name(qcx, &cv.name)?;
    let (expr, mut names, sql) = query::plan_view_definition(qcx, &cv.query)?;
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
        sql,
        desc,
        depends_on,
        materialized: cv.materialized,
        or_replace: cv.or_replace,
        if_not_exists: cv.if_not_exists,
        temporary: cv.temporary,
        retain_history_ms: None,
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
    let (item, on_full) = query::resolve_item(qcx, on)?;
    let on_name = on_full.item.clone();
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
                if qcx.volatile.get() {
                    return Err(PlanError::InvalidObjectDefinition(
                        "functions in index expression must be marked IMMUTABLE".into(),
                    ));
                }
                planned.lower()
            })
            .collect::<Result<_, _>>()?,
    };
    let item_name = match name {
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
    let name = QualifiedName::new(on_full.database, on_full.schema, item_name);
    Ok(CreateIndexPlan {
        name,
        on: item.id,
        on_name,
        keys: key_exprs,
        if_not_exists,
        retain_history_ms: None,
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
        let partial = PartialName::from_ast(n)?;
        // PostgreSQL names the missing object without its schema.
        let name = partial.item.clone();
        // IF EXISTS also skips names in schemas or databases that do not exist.
        let builtin = partial.schema.as_deref() == Some("mz_internal");
        let found = match query::schema_exists(qcx, &partial) {
            // The introspection schema exists in every database without being listed.
            _ if builtin => query::lookup_item(qcx, &partial)?.map(|(item, _)| item),
            Err(PlanError::UnknownDatabase(_)) | Ok(false) if if_exists => None,
            Ok(false) => return Err(PlanError::UnknownSchema(partial.schema.unwrap_or_default())),
            other => {
                other?;
                query::lookup_item(qcx, &partial)?.map(|(item, _)| item)
            }
        };
        match found {
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

/// `CREATE | DROP DATABASE | SCHEMA`.
#[derive(Clone, Debug)]
pub enum NamespacePlan {
    /// Also creates the database's `public` schema, as PostgreSQL's template does.
    CreateDatabase { name: String, if_not_exists: bool },
    /// Drops the database with its schemas and their items (and what depends on
    /// them), as PostgreSQL does; with `restrict` (Materialize's option) only if it
    /// has no items. `name` is `None` for `IF EXISTS` of a database that is not there.
    DropDatabase {
        name: Option<String>,
        restrict: bool,
    },
    CreateSchema {
        database: String,
        name: String,
        if_not_exists: bool,
    },
    /// Drops each `(database, schema)`; one that has items only with `cascade`
    /// (else 2BP01), and then with them and what depends on them.
    DropSchema {
        schemas: Vec<(String, String)>,
        cascade: bool,
    },
}

impl NamespacePlan {
    /// The command tag.
    pub fn tag(&self) -> &'static str {
        match self {
            NamespacePlan::CreateDatabase { .. } => "CREATE DATABASE",
            NamespacePlan::DropDatabase { .. } => "DROP DATABASE",
            NamespacePlan::CreateSchema { .. } => "CREATE SCHEMA",
            NamespacePlan::DropSchema { .. } => "DROP SCHEMA",
        }
    }
}

/// `CREATE DATABASE [IF NOT EXISTS] name`.
pub fn plan_create_database(
    qcx: &QueryContext,
    name: &ast::ObjectName,
    if_not_exists: bool,
) -> Result<NamespacePlan, PlanError> {
    let name = single_name(name, "database")?;
    if !if_not_exists && qcx.catalog.databases().contains(&name) {
        return Err(PlanError::DatabaseExists(name));
    }
    Ok(NamespacePlan::CreateDatabase {
        name,
        if_not_exists,
    })
}

/// `CREATE SCHEMA [IF NOT EXISTS] [database.]name`.
pub fn plan_create_schema(
    qcx: &QueryContext,
    schema_name: &ast::SchemaName,
    if_not_exists: bool,
) -> Result<NamespacePlan, PlanError> {
    let ast::SchemaName::Simple(name) = schema_name else {
        return Err(PlanError::unsupported("CREATE SCHEMA ... AUTHORIZATION"));
    };
    let (database, name) = schema_of(qcx, name)?;
    if !if_not_exists && qcx.catalog.schemas(&database).contains(&name) {
        return Err(PlanError::SchemaExists(name));
    }
    Ok(NamespacePlan::CreateSchema {
        database,
        name,
        if_not_exists,
    })
}

/// `DROP DATABASE | SCHEMA [IF EXISTS] names [CASCADE | RESTRICT]`.
pub fn plan_drop_namespace(
    qcx: &QueryContext,
    object_type: &ast::ObjectType,
    names: &[ast::ObjectName],
    if_exists: bool,
    cascade: bool,
    restrict: bool,
) -> Result<NamespacePlan, PlanError> {
    match object_type {
        ast::ObjectType::Database => {
            let [name] = names else {
                return Err(PlanError::Syntax(
                    "DROP DATABASE takes one database name".into(),
                ));
            };
            let name = single_name(name, "database")?;
            if !qcx.catalog.databases().contains(&name) {
                if if_exists {
                    return Ok(NamespacePlan::DropDatabase {
                        name: None,
                        restrict,
                    });
                }
                return Err(PlanError::UnknownDatabase(name));
            }
            if name == qcx.names.borrow().database {
                return Err(PlanError::DropCurrentDatabase);
            }
            Ok(NamespacePlan::DropDatabase {
                name: Some(name),
                restrict,
            })
        }
        ast::ObjectType::Schema => {
            let mut schemas = Vec::new();
            for n in names {
                let (database, schema) = match schema_of(qcx, n) {
                    Err(PlanError::UnknownDatabase(_)) if if_exists => continue,
                    other => other?,
                };
                if qcx.catalog.schemas(&database).contains(&schema) {
                    schemas.push((database, schema));
                } else if !if_exists {
                    return Err(PlanError::UnknownSchema(schema));
                }
            }
            Ok(NamespacePlan::DropSchema { schemas, cascade })
        }
        other => Err(PlanError::unsupported(format!("DROP {other}"))),
    }
}

/// A schema's name, `[database.]schema`: its database (which must exist) and name.
fn schema_of(qcx: &QueryContext, name: &ast::ObjectName) -> Result<(String, String), PlanError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(normalize_ident)
                .ok_or_else(|| PlanError::unsupported(format!("schema name {name}")))
        })
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [schema] => Ok((qcx.names.borrow().database.clone(), schema.clone())),
        [database, schema] if qcx.catalog.databases().contains(database) => {
            Ok((database.clone(), schema.clone()))
        }
        [database, _] => Err(PlanError::UnknownDatabase(database.clone())),
        _ => Err(PlanError::Syntax(format!(
            "improper qualified name (too many dotted names): {}",
            parts.join(".")
        ))),
    }
}

/// A name of one part (a database's), normalised.
fn single_name(name: &ast::ObjectName, what: &str) -> Result<String, PlanError> {
    match name.0.as_slice() {
        [part] => part
            .as_ident()
            .map(normalize_ident)
            .ok_or_else(|| PlanError::unsupported(format!("{what} name {name}"))),
        _ => Err(PlanError::Syntax(format!(
            "improper qualified name (too many dotted names): {name}"
        ))),
    }
}

/// `SHOW DATABASES` (`from` is `None`, `databases` true) or `SHOW SCHEMAS [FROM d]`:
/// one `name` column, sorted, as Materialize shows them.
pub fn plan_show_namespaces(
    qcx: &QueryContext,
    databases: bool,
    from: Option<&ast::Ident>,
) -> Result<crate::statement::Plan, PlanError> {
    let names = if databases {
        qcx.catalog.databases()
    } else {
        let database = match from {
            Some(d) => normalize_ident(d),
            None => qcx.names.borrow().database.clone(),
        };
        if !qcx.catalog.databases().contains(&database) {
            return Err(PlanError::UnknownDatabase(database));
        }
        qcx.catalog.schemas(&database)
    };
    let rows = names
        .iter()
        .map(|n| Row::pack_slice(&[Datum::String(n)]))
        .collect();
    let typ = RelationType::new(vec![ScalarType::String.nullable(false)]);
    let desc = RelationDesc::new(typ.clone(), vec!["name".to_string()]);
    Ok(crate::statement::Plan::Select {
        source: MirRelationExpr::constant(rows, typ),
        desc,
        finishing: RowSetFinishing {
            order_by: vec![ColumnOrder {
                column: 0,
                desc: false,
                nulls_last: true,
            }],
            limit: None,
            offset: 0,
            project: vec![0],
        },
        as_of: None,
    })
}

/// Resolves the object a `SHOW COLUMNS | CREATE | INDEXES ON` names (SQL text) to
/// its full name as [`QualifiedName::to_sql`] writes it, what the coordinator looks
/// up.
pub fn resolve_shown_object(qcx: &QueryContext, on: &str) -> Result<String, PlanError> {
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let name = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(on)
        .and_then(|mut p| p.parse_object_name(false))
        .map_err(|_| PlanError::Syntax(format!("invalid object name {on}")))?;
    let (_, full) = query::resolve_item(qcx, &name)?;
    Ok(full.to_sql())
}
