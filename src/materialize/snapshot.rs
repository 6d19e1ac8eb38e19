//! Snapshots as dbt-postgres builds them (type-2 history): the first run
//! copies the query with dbt_scd_id / dbt_updated_at / dbt_valid_from /
//! dbt_valid_to; later runs close changed rows and insert their new versions,
//! by the `timestamp` or `check` strategy, in one transaction.

use serde_json::Value as Json;

use crate::adapter::{Adapter, ColumnInfo, RelationKind};
use crate::base::quote::quote_identifier;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Node;

use super::model::sql_body;
use super::{Around, Built, ensure_schema, swap};

/// dbt-postgres's snapshot_get_time().
const NOW: &str = "now()::timestamp without time zone";
const META_COLUMNS: [&str; 4] = [
    "dbt_scd_id",
    "dbt_updated_at",
    "dbt_valid_from",
    "dbt_valid_to",
];

/// How a changed row is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Strategy {
    /// `updated_at` moved past the current version's dbt_valid_from.
    Timestamp { updated_at: String },
    /// Any of these columns differs (None: every column of the query).
    Check { columns: Option<Vec<String>> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SnapshotConfig {
    strategy: Strategy,
    unique_key: Vec<String>,
    invalidate_hard_deletes: bool,
}

impl SnapshotConfig {
    fn of(node: &Node) -> Result<SnapshotConfig> {
        let missing = |key: &str| {
            Error::new(
                ErrorKind::Project,
                format!("snapshot `{}` needs a `{key}` config", node.name),
            )
        };
        let text = |key: &str| {
            node.config
                .get(key)
                .and_then(Json::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let list = |key: &str| -> Option<Vec<String>> {
            match node.config.get(key)? {
                Json::String(s) if !s.trim().is_empty() => Some(vec![s.trim().to_string()]),
                Json::Array(items) => Some(
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(|s| s.trim().to_string()))
                        .collect(),
                ),
                _ => None,
            }
        };
        let unique_key = list("unique_key")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| missing("unique_key"))?;
        let strategy = match text("strategy") {
            Some("timestamp") => Strategy::Timestamp {
                updated_at: text("updated_at")
                    .ok_or_else(|| missing("updated_at"))?
                    .to_string(),
            },
            Some("check") => Strategy::Check {
                columns: match node.config.get("check_cols") {
                    Some(Json::String(all)) if all == "all" => None,
                    _ => Some(list("check_cols").ok_or_else(|| missing("check_cols"))?),
                },
            },
            Some(other) => {
                return Err(Error::new(
                    ErrorKind::Project,
                    format!(
                        "snapshot `{}`: strategy `{other}` is not one of `timestamp`, `check`",
                        node.name
                    ),
                ));
            }
            None => return Err(missing("strategy")),
        };
        let invalidate_hard_deletes = node.config.get("invalidate_hard_deletes")
            == Some(&Json::Bool(true))
            || text("hard_deletes") == Some("invalidate");
        Ok(SnapshotConfig {
            strategy,
            unique_key,
            invalidate_hard_deletes,
        })
    }

    /// The expression a version's dbt_updated_at and dbt_valid_from take.
    fn updated_at(&self) -> &str {
        match &self.strategy {
            Strategy::Timestamp { updated_at } => updated_at,
            Strategy::Check { .. } => NOW,
        }
    }

    /// dbt's snapshot_hash_arguments over the key and updated_at.
    fn scd_id(&self) -> String {
        let parts: Vec<String> = self
            .unique_key
            .iter()
            .map(String::as_str)
            .chain([self.updated_at()])
            .map(|arg| format!("coalesce(cast({arg} as varchar ), '')"))
            .collect();
        format!("md5({})", parts.join(" || '|' || "))
    }

    /// `<key> as dbt_unique_key` (`_1`, `_2`... for a composite key).
    fn key_columns(&self) -> String {
        self.key_names()
            .iter()
            .zip(&self.unique_key)
            .map(|(alias, key)| format!("{key} as {alias}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_names(&self) -> Vec<String> {
        if self.unique_key.len() == 1 {
            vec!["dbt_unique_key".to_string()]
        } else {
            (1..=self.unique_key.len())
                .map(|i| format!("dbt_unique_key_{i}"))
                .collect()
        }
    }

    fn key_match(&self, left: &str, right: &str) -> String {
        self.key_names()
            .iter()
            .map(|k| format!("{left}.{k} = {right}.{k}"))
            .collect::<Vec<_>>()
            .join(" and ")
    }

    /// The first run: the query with the four dbt columns.
    fn first_sql(&self, sql: &str) -> String {
        let updated_at = self.updated_at();
        format!(
            "select *,\n    {} as dbt_scd_id,\n    {updated_at} as dbt_updated_at,\n    {updated_at} as dbt_valid_from,\n    nullif({updated_at}, {updated_at}) as dbt_valid_to\nfrom (\n{sql}\n) sbq",
            self.scd_id()
        )
    }

    /// dbt's snapshot_staging_table: the versions to insert and the current
    /// versions to close, read from the query materialized in `source`.
    fn staging_sql(&self, target: &str, source: &str, source_columns: &[ColumnInfo]) -> String {
        let updated_at = self.updated_at();
        let keys = self.key_columns();
        let changed = match &self.strategy {
            Strategy::Timestamp { updated_at } => {
                format!("(snapshotted_data.dbt_valid_from < source_data.{updated_at})")
            }
            Strategy::Check { columns } => {
                let columns: Vec<String> = match columns {
                    Some(columns) => columns.clone(),
                    None => source_columns
                        .iter()
                        .map(|c| quote_identifier(&c.name))
                        .collect(),
                };
                let tests: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        format!(
                            "snapshotted_data.{c} != source_data.{c} or \
                             ((snapshotted_data.{c} is null) and not (source_data.{c} is null)) or \
                             ((not snapshotted_data.{c} is null) and (source_data.{c} is null))"
                        )
                    })
                    .collect();
                format!("({})", tests.join(" or "))
            }
        };
        let first_key = &self.key_names()[0];
        let key_match = self.key_match("snapshotted_data", "source_data");
        let mut sql = format!(
            "with snapshot_query as (select * from {source}),\n\
             snapshotted_data as (\n    select *, {keys} from {target} where dbt_valid_to is null\n),\n\
             insertions_source_data as (\n    select *, {keys},\n        {updated_at} as dbt_updated_at,\n        {updated_at} as dbt_valid_from,\n        nullif({updated_at}, {updated_at}) as dbt_valid_to,\n        {scd_id} as dbt_scd_id\n    from snapshot_query\n),\n\
             updates_source_data as (\n    select *, {keys},\n        {updated_at} as dbt_updated_at,\n        {updated_at} as dbt_valid_from,\n        {updated_at} as dbt_valid_to\n    from snapshot_query\n),\n",
            scd_id = self.scd_id()
        );
        if self.invalidate_hard_deletes {
            sql.push_str(&format!(
                "deletes_source_data as (select *, {keys} from snapshot_query),\n"
            ));
        }
        sql.push_str(&format!(
            "insertions as (\n    select 'insert' as dbt_change_type, source_data.*\n    from insertions_source_data as source_data\n    left outer join snapshotted_data on {key_match}\n    where snapshotted_data.{first_key} is null\n       or (snapshotted_data.{first_key} is not null and ({changed}))\n),\n\
             updates as (\n    select 'update' as dbt_change_type, source_data.*, snapshotted_data.dbt_scd_id\n    from updates_source_data as source_data\n    join snapshotted_data on {key_match}\n    where ({changed})\n)"
        ));
        if self.invalidate_hard_deletes {
            sql.push_str(&format!(
                ",\ndeletes as (\n    select 'delete' as dbt_change_type, source_data.*,\n        {NOW} as dbt_valid_from,\n        {NOW} as dbt_updated_at,\n        {NOW} as dbt_valid_to,\n        snapshotted_data.dbt_scd_id\n    from snapshotted_data\n    left join deletes_source_data as source_data on {key_match}\n    where source_data.{first_key} is null\n)"
            ));
        }
        sql.push_str("\nselect * from insertions\nunion all\nselect * from updates");
        if self.invalidate_hard_deletes {
            sql.push_str("\nunion all\nselect * from deletes");
        }
        sql
    }
}

pub(super) fn build(adapter: &mut dyn Adapter, node: &Node, around: &Around) -> Result<Built> {
    let config = SnapshotConfig::of(node)?;
    let sql = sql_body(node, &node.compiled_code)?;
    ensure_schema(adapter, &node.relation.schema)?;
    let existing = adapter
        .relation_kinds(&node.relation.schema, &[&node.relation.identifier])?
        .first()
        .map(|(_, kind)| *kind);
    if existing != Some(RelationKind::Table) {
        let first = config.first_sql(sql);
        let rows = around.transaction(adapter, |adapter| {
            swap::replace(adapter, &node.relation, RelationKind::Table, |a, tmp| {
                a.execute(&format!("create table {tmp} as (\n{first}\n)"))
            })
        })?;
        return Ok(Built {
            code: "SELECT".into(),
            message: format!("SELECT {rows}"),
            rows_affected: Some(rows),
            compiled_code: None,
            verdict: None,
        });
    }
    let target = node.relation.to_string();
    let source = quote_identifier(&swap::side_name(
        &node.relation.identifier,
        "__weir_snap_src",
    ));
    let staging = quote_identifier(&swap::side_name(&node.relation.identifier, "__weir_snap"));
    let rows = around.transaction(adapter, |adapter| {
        adapter.execute(&format!(
            "create temporary table {source} on commit drop as (\n{sql}\n)"
        ))?;
        let source_columns = adapter.columns(&source)?;
        let target_columns = adapter.columns(&target)?;
        // As dbt does: columns new in the query are added to the snapshot.
        for column in &source_columns {
            if !target_columns.iter().any(|c| c.name == column.name) {
                adapter.execute(&format!(
                    "alter table {target} add column {} {}",
                    quote_identifier(&column.name),
                    column.data_type
                ))?;
            }
        }
        let staging_sql = config.staging_sql(&target, &source, &source_columns);
        adapter.execute(&format!(
            "create temporary table {staging} on commit drop as (\n{staging_sql}\n)"
        ))?;
        adapter.execute(&format!(
            "update {target}\nset dbt_valid_to = DBT_INTERNAL_SOURCE.dbt_valid_to\n\
             from {staging} as DBT_INTERNAL_SOURCE\n\
             where DBT_INTERNAL_SOURCE.dbt_scd_id::text = {target}.dbt_scd_id::text\n\
               and DBT_INTERNAL_SOURCE.dbt_change_type::text in ('update'::text, 'delete'::text)\n\
               and {target}.dbt_valid_to is null"
        ))?;
        let mut columns: Vec<String> = source_columns
            .iter()
            .map(|c| quote_identifier(&c.name))
            .collect();
        columns.extend(META_COLUMNS.iter().map(|c| quote_identifier(c)));
        let columns = columns.join(", ");
        adapter.execute(&format!(
            "insert into {target} ({columns})\n\
             select {columns} from {staging} as DBT_INTERNAL_SOURCE\n\
             where DBT_INTERNAL_SOURCE.dbt_change_type::text = 'insert'::text"
        ))
    })?;
    Ok(Built {
        code: "INSERT".into(),
        message: format!("INSERT 0 {rows}"),
        rows_affected: Some(rows),
        compiled_code: None,
        verdict: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(value: Json) -> Result<SnapshotConfig> {
        let mut node = super::super::tests::node("orders_snapshot", "snapshot", "select 1");
        node.config = value.as_object().unwrap().clone();
        SnapshotConfig::of(&node)
    }

    #[test]
    fn configs_pick_the_strategy() {
        let timestamp = config(
            json!({"strategy": "timestamp", "unique_key": "id", "updated_at": "updated_at"}),
        )
        .unwrap();
        assert_eq!(
            timestamp.scd_id(),
            "md5(coalesce(cast(id as varchar ), '') || '|' || coalesce(cast(updated_at as varchar ), ''))"
        );
        let check = config(json!({"strategy": "check", "unique_key": ["a", "b"], "check_cols": "all", "invalidate_hard_deletes": true})).unwrap();
        assert_eq!(check.strategy, Strategy::Check { columns: None });
        assert_eq!(
            check.key_columns(),
            "a as dbt_unique_key_1, b as dbt_unique_key_2"
        );
        assert!(check.invalidate_hard_deletes);
        let err = config(json!({"strategy": "timestamp", "unique_key": "id"})).unwrap_err();
        assert_eq!(
            err.message(),
            "snapshot `orders_snapshot` needs a `updated_at` config"
        );
        let err = config(json!({"strategy": "sometimes", "unique_key": "id"})).unwrap_err();
        assert!(err.message().contains("strategy `sometimes`"), "{err}");
    }

    #[test]
    fn the_first_run_adds_the_four_columns() {
        let timestamp = config(
            json!({"strategy": "timestamp", "unique_key": "id", "updated_at": "updated_at"}),
        )
        .unwrap();
        insta::assert_snapshot!(timestamp.first_sql("select * from orders"), @r"
        select *,
            md5(coalesce(cast(id as varchar ), '') || '|' || coalesce(cast(updated_at as varchar ), '')) as dbt_scd_id,
            updated_at as dbt_updated_at,
            updated_at as dbt_valid_from,
            nullif(updated_at, updated_at) as dbt_valid_to
        from (
        select * from orders
        ) sbq
        ");
    }
}
