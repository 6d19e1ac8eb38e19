//! The database templates ask while a node renders as it runs: weir's
//! [`Database`] over the connection that builds the node.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::Adapter;
use super::postgres::PostgresAdapter;
use crate::base::quote::quote_literal;
use crate::error::Result;
use crate::jinja::database::{ColumnInfo, Database, QueryResult};

/// A connection lent to a render; [`RenderConnection::into_inner`] gives it back.
pub struct RenderConnection(Mutex<PostgresAdapter>);

impl RenderConnection {
    pub fn new(adapter: PostgresAdapter) -> RenderConnection {
        RenderConnection(Mutex::new(adapter))
    }

    pub fn into_inner(self) -> PostgresAdapter {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, PostgresAdapter> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Database for RenderConnection {
    fn query(&self, sql: &str) -> Result<QueryResult> {
        self.lock().query_table(sql)
    }

    /// As dbt-postgres lists them: information_schema's columns, in order.
    fn columns(&self, schema: &str, identifier: &str) -> Result<Vec<ColumnInfo>> {
        let sql = format!(
            "select column_name::text, data_type::text, character_maximum_length, \
             numeric_precision, numeric_scale from information_schema.columns \
             where table_schema = {} and table_name = {} order by ordinal_position",
            quote_literal(schema),
            quote_literal(identifier)
        );
        let rows = self.lock().query_text(&sql)?;
        let number = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<i64>().ok());
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(ColumnInfo {
                    name: row.first()?.clone()?,
                    data_type: row.get(1)?.clone()?,
                    char_size: number(row.get(2)?),
                    numeric_precision: number(row.get(3)?),
                    numeric_scale: number(row.get(4)?),
                })
            })
            .collect())
    }

    fn relation_type(&self, schema: &str, identifier: &str) -> Result<Option<&'static str>> {
        let kinds = self.lock().relation_kinds(schema, &[identifier])?;
        Ok(kinds.first().map(|(_, kind)| match kind {
            super::RelationKind::Table | super::RelationKind::ForeignTable => "table",
            super::RelationKind::View => "view",
            super::RelationKind::MaterializedView => "materialized_view",
        }))
    }
}
