//! The `view` and `table` materializations: the model's SQL wrapped in
//! `create view` / `create table as`, swapped in atomically.

use crate::adapter::{Adapter, RelationKind, in_transaction};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Node;

use super::{Built, ensure_schema, swap};

pub(super) fn build_view(adapter: &mut dyn Adapter, node: &Node) -> Result<Built> {
    let sql = model_sql(node)?;
    ensure_schema(adapter, &node.relation.schema)?;
    in_transaction(adapter, |adapter| {
        swap::replace(
            adapter,
            &node.relation,
            RelationKind::View,
            |adapter, tmp| adapter.execute(&format!("create view {tmp} as (\n{sql}\n)")),
        )
    })?;
    Ok(Built {
        code: "CREATE VIEW".into(),
        message: "CREATE VIEW".into(),
        rows_affected: None,
    })
}

pub(super) fn build_table(adapter: &mut dyn Adapter, node: &Node) -> Result<Built> {
    let sql = model_sql(node)?;
    ensure_schema(adapter, &node.relation.schema)?;
    let rows = in_transaction(adapter, |adapter| {
        swap::replace(
            adapter,
            &node.relation,
            RelationKind::Table,
            |adapter, tmp| adapter.execute(&format!("create table {tmp} as (\n{sql}\n)")),
        )
    })?;
    Ok(Built {
        code: "SELECT".into(),
        message: format!("SELECT {rows}"),
        rows_affected: Some(rows),
    })
}

/// The compiled SQL without the trailing `;` that would break the wrapping
/// parentheses (dbt users often end models with one).
fn model_sql(node: &Node) -> Result<&str> {
    let sql = node
        .compiled_code
        .trim_end()
        .trim_end_matches(';')
        .trim_end();
    if sql.trim().is_empty() {
        return Err(Error::new(
            ErrorKind::Database,
            format!("`{}` compiles to no SQL", node.name),
        ));
    }
    Ok(sql)
}
