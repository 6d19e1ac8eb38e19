//! The `view` and `table` materializations: the model's SQL wrapped in
//! `create view` / `create table as`, swapped in atomically.

use crate::adapter::{Adapter, RelationKind};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Node;

use super::{Around, BuildContext, Built, ensure_schema, swap};

pub(super) fn build_view(adapter: &mut dyn Adapter, node: &Node, around: &Around) -> Result<Built> {
    let sql = model_sql(node)?;
    ensure_schema(adapter, &node.relation.schema)?;
    around.transaction(adapter, |adapter| {
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
        compiled_code: None,
        verdict: None,
    })
}

pub(super) fn build_table(
    adapter: &mut dyn Adapter,
    node: &Node,
    around: &Around,
) -> Result<Built> {
    let sql = model_sql(node)?;
    ensure_schema(adapter, &node.relation.schema)?;
    replace_table(adapter, node, sql, around)
}

/// dbt-postgres's materialized_view: created (and swapped in) the first time
/// and on full refresh, refreshed otherwise. As in dbt, a changed query
/// needs --full-refresh.
pub(super) fn build_materialized_view(
    adapter: &mut dyn Adapter,
    node: &Node,
    ctx: &BuildContext,
    around: &Around,
) -> Result<Built> {
    let sql = model_sql(node)?;
    ensure_schema(adapter, &node.relation.schema)?;
    let existing = adapter
        .relation_kinds(&node.relation.schema, &[&node.relation.identifier])?
        .first()
        .map(|(_, kind)| *kind);
    if existing == Some(RelationKind::MaterializedView) && !ctx.full_refresh_of(node) {
        around.transaction(adapter, |adapter| {
            adapter.execute(&format!("refresh materialized view {}", node.relation))
        })?;
        return Ok(Built {
            code: "REFRESH MATERIALIZED VIEW".into(),
            message: "REFRESH MATERIALIZED VIEW".into(),
            rows_affected: None,
            compiled_code: None,
            verdict: None,
        });
    }
    let rows = around.transaction(adapter, |adapter| {
        swap::replace(
            adapter,
            &node.relation,
            RelationKind::MaterializedView,
            |adapter, tmp| {
                adapter.execute(&format!("create materialized view {tmp} as (\n{sql}\n)"))
            },
        )
    })?;
    Ok(Built {
        code: "SELECT".into(),
        message: format!("SELECT {rows}"),
        rows_affected: Some(rows),
        compiled_code: None,
        verdict: None,
    })
}

/// Build `sql` as a table under a temporary name and swap it in, in one transaction.
pub(super) fn replace_table(
    adapter: &mut dyn Adapter,
    node: &Node,
    sql: &str,
    around: &Around,
) -> Result<Built> {
    let rows = around.transaction(adapter, |adapter| {
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
        compiled_code: None,
        verdict: None,
    })
}

/// The compiled SQL without the trailing `;` that would break the wrapping
/// parentheses (dbt users often end models with one).
pub(super) fn model_sql(node: &Node) -> Result<&str> {
    sql_body(node, &node.compiled_code)
}

/// `sql` without a trailing `;`; an error naming `node` when nothing is left.
pub(super) fn sql_body<'s>(node: &Node, sql: &'s str) -> Result<&'s str> {
    let sql = sql.trim_end().trim_end_matches(';').trim_end();
    if sql.trim().is_empty() {
        return Err(Error::new(
            ErrorKind::Database,
            format!("`{}` compiles to no SQL", node.name),
        ));
    }
    Ok(sql)
}
