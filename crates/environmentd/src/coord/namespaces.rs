//! Executing `CREATE | DROP DATABASE | SCHEMA`, and the session's view of names.
//!
//! A schema or database that goes takes its items with it: they are dropped first,
//! with what depends on them, through [`Coordinator::drop_objects`] (so their
//! dataflows and storage collections go too), then the emptied namespace. Each is
//! its own durable change: a crash in between leaves an empty schema, never an item
//! without one.

use sql::catalog::{NameContext, QualifiedName};
use sql::ddl::{DropPlan, NamespacePlan};
use sql::PlanError;

use super::Coordinator;
use crate::adapter::{AdapterError, ExecuteResponse};
use crate::catalog::SessionCatalog;
use crate::session::{Session, TransactionStatus};

impl Coordinator {
    /// The catalog as `session` sees it: names resolve in its database and through
    /// its `search_path`.
    pub(super) fn session_catalog(&self, session: &Session) -> SessionCatalog<'_> {
        let context = NameContext::from_session(
            &session.database,
            session.get("search_path").unwrap_or("public"),
            &session.user,
        );
        self.catalog.for_session(context)
    }

    pub(super) fn execute_namespace(
        &mut self,
        session: &Session,
        plan: NamespacePlan,
    ) -> Result<ExecuteResponse, AdapterError> {
        let tag = plan.tag();
        let conn_id = session.conn_id;
        let internal = AdapterError::internal;
        match plan {
            NamespacePlan::CreateDatabase { .. } | NamespacePlan::DropDatabase { .. }
                if session.transaction != TransactionStatus::Idle
                    || self.transactions.contains_key(&conn_id) =>
            {
                // As in PostgreSQL; an implicit transaction counts as a block.
                return Err(AdapterError::new(
                    "25001",
                    format!("{tag} cannot run inside a transaction block"),
                ));
            }
            NamespacePlan::CreateDatabase {
                name,
                if_not_exists,
            } => self
                .catalog
                .create_database(&name, if_not_exists)
                .map_err(internal)?,
            NamespacePlan::CreateSchema {
                database,
                name,
                if_not_exists,
            } => self
                .catalog
                .create_schema(&database, &name, if_not_exists)
                .map_err(internal)?,
            NamespacePlan::DropDatabase { name: None, .. } => {}
            NamespacePlan::DropDatabase {
                name: Some(name),
                restrict,
            } => {
                self.drop_namespace_items(conn_id, &name, None, "database", !restrict)?;
                self.catalog.drop_database(&name).map_err(internal)?;
            }
            NamespacePlan::DropSchema { schemas, cascade } => {
                // Every schema is checked before any is dropped.
                if !cascade {
                    for (database, schema) in &schemas {
                        self.check_namespace_empty(database, Some(schema), "schema", schema)?;
                    }
                }
                for (database, schema) in &schemas {
                    self.drop_namespace_items(conn_id, database, Some(schema), "schema", true)?;
                    self.catalog
                        .drop_schema(database, schema)
                        .map_err(internal)?;
                }
            }
        }
        Ok(ExecuteResponse::Command { tag: tag.into() })
    }

    /// 2BP01 if the schema (or every schema of the database) has items, as
    /// PostgreSQL reports a non-empty schema dropped without CASCADE.
    fn check_namespace_empty(
        &self,
        database: &str,
        schema: Option<&str>,
        kind: &'static str,
        name: &str,
    ) -> Result<(), AdapterError> {
        let items = self.catalog.items_in(database, schema);
        if items.is_empty() {
            return Ok(());
        }
        let dependents: Vec<String> = items
            .iter()
            .map(|(item, full)| {
                format!(
                    "{} {}.{} depends on {kind} {name}",
                    item.kind.name(),
                    full.schema,
                    full.item
                )
            })
            .collect();
        let mut error: AdapterError = PlanError::DependentObjects {
            kind,
            name: name.to_string(),
            dependents: dependents.clone(),
        }
        .into();
        error.detail = Some(dependents.join("\n"));
        error.hint = Some("Use DROP ... CASCADE to drop the dependent objects too.".into());
        Err(error)
    }

    /// Drops the items of a schema (or of every schema of a database) and what
    /// depends on them; without `cascade`, only if there are none.
    fn drop_namespace_items(
        &mut self,
        conn_id: u32,
        database: &str,
        schema: Option<&str>,
        kind: &'static str,
        cascade: bool,
    ) -> Result<(), AdapterError> {
        if !cascade {
            self.check_namespace_empty(database, schema, kind, schema.unwrap_or(database))?;
        }
        let items: Vec<(repr::GlobalId, QualifiedName)> = self
            .catalog
            .items_in(database, schema)
            .into_iter()
            .map(|(item, full)| (item.id, full.clone()))
            .collect();
        if items.is_empty() {
            return Ok(());
        }
        let ids = items
            .into_iter()
            .map(|(id, full)| (id, full.item))
            .collect();
        // The kind only names the objects in messages, and CASCADE raises none.
        self.drop_objects(
            conn_id,
            DropPlan {
                kind: sql::catalog::ItemKind::Table,
                ids,
                cascade: true,
            },
        )?;
        Ok(())
    }
}
