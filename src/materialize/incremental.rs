//! The `incremental` materialization as dbt-postgres builds it: a table the
//! first time (and on full refresh), then new rows merged in with a strategy.

use serde_json::Value as Json;

use crate::adapter::{Adapter, ColumnInfo, RelationKind};
use crate::base::quote::quote_identifier;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Node;

use super::model::{model_sql, replace_table, sql_body};
use super::{Around, BuildContext, Built, ensure_schema, swap};

/// The temporary table holding the new rows; dropped at commit.
const INCREMENT_SUFFIX: &str = "__weir_incr";

/// How new rows reach the table (`incremental_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Append,
    DeleteInsert,
    Merge,
}

impl Strategy {
    /// dbt-postgres's default: delete+insert with a unique_key, else append.
    fn of(node: &Node, unique_key: &[String]) -> Result<Strategy> {
        match config_str(node, "incremental_strategy") {
            None | Some("default") if unique_key.is_empty() => Ok(Strategy::Append),
            None | Some("default") => Ok(Strategy::DeleteInsert),
            Some("append") => Ok(Strategy::Append),
            Some("delete+insert") => Ok(Strategy::DeleteInsert),
            Some("merge") => Ok(Strategy::Merge),
            Some(other) => Err(Error::new(
                ErrorKind::Project,
                format!(
                    "incremental_strategy `{other}` of `{}` is not supported on PostgreSQL",
                    node.name
                ),
            )
            .with_hint("use `append`, `delete+insert` or `merge`")),
        }
    }
}

/// What happens when the model's columns no longer match the table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnSchemaChange {
    Ignore,
    Fail,
    AppendNewColumns,
    SyncAllColumns,
}

impl OnSchemaChange {
    /// As dbt does, an unknown value means `ignore`.
    fn of(node: &Node) -> OnSchemaChange {
        match config_str(node, "on_schema_change") {
            Some("fail") => OnSchemaChange::Fail,
            Some("append_new_columns") => OnSchemaChange::AppendNewColumns,
            Some("sync_all_columns") => OnSchemaChange::SyncAllColumns,
            _ => OnSchemaChange::Ignore,
        }
    }
}

pub(super) fn build(
    adapter: &mut dyn Adapter,
    node: &Node,
    ctx: &BuildContext,
    around: &Around,
) -> Result<Built> {
    let unique_key = string_list(node, "unique_key")?;
    let strategy = Strategy::of(node, &unique_key)?;
    let predicates = string_list(node, "incremental_predicates")?;
    let first_build_sql = model_sql(node)?;
    ensure_schema(adapter, &node.relation.schema)?;
    let existing = adapter
        .relation_kinds(&node.relation.schema, &[&node.relation.identifier])?
        .first()
        .map(|(_, kind)| *kind);
    // dbt's is_incremental(): an existing table, and no full refresh. A view
    // of the same name is replaced by the table, as dbt does.
    if existing != Some(RelationKind::Table) || ctx.full_refresh_of(node) {
        return replace_table(adapter, node, first_build_sql, around);
    }
    let rendered = (ctx.render_incremental)(node)?;
    let sql = sql_body(node, &rendered)?;
    let tmp = quote_identifier(&swap::side_name(
        &node.relation.identifier,
        INCREMENT_SUFFIX,
    ));
    let target = node.relation.to_string();
    let (code, rows) = around.transaction(adapter, |adapter| {
        adapter.execute(&format!(
            "create temporary table {tmp} on commit drop as (\n{sql}\n)"
        ))?;
        let source = adapter.columns(&tmp)?;
        let existing = adapter.columns(&target)?;
        let changes = SchemaChanges::between(&source, &existing);
        let dest = match OnSchemaChange::of(node) {
            OnSchemaChange::Ignore => existing,
            _ if changes.is_empty() => source,
            OnSchemaChange::Fail => return Err(changes.out_of_sync_error()),
            on_change => {
                for statement in changes.alter_sql(&target, on_change) {
                    adapter.execute(&statement)?;
                }
                source
            }
        };
        let columns: Vec<String> = dest.iter().map(|c| quote_identifier(&c.name)).collect();
        let columns = columns.join(", ");
        let insert =
            format!("insert into {target} ({columns})\n(\n    select {columns}\n    from {tmp}\n)");
        match strategy {
            Strategy::Append => Ok(("INSERT", adapter.execute(&insert)?)),
            Strategy::DeleteInsert => {
                if !unique_key.is_empty() {
                    adapter.execute(&delete_sql(&target, &tmp, &unique_key, &predicates))?;
                }
                Ok(("INSERT", adapter.execute(&insert)?))
            }
            Strategy::Merge => {
                let update = update_columns(node, &dest)?;
                let sql = merge_sql(&target, &tmp, &unique_key, &predicates, &dest, &update);
                Ok(("MERGE", adapter.execute(&sql)?))
            }
        }
    })?;
    Ok(Built {
        code: code.to_string(),
        message: match code {
            // The command tag PostgreSQL reports: `INSERT 0 5`.
            "INSERT" => format!("INSERT 0 {rows}"),
            _ => format!("{code} {rows}"),
        },
        rows_affected: Some(rows),
        compiled_code: Some(rendered),
        verdict: None,
    })
}

/// dbt's delete step: rows of the table whose key is among the new rows go.
fn delete_sql(target: &str, tmp: &str, unique_key: &[String], predicates: &[String]) -> String {
    let extra: String = predicates
        .iter()
        .map(|p| format!("\n    and {p}"))
        .collect();
    match unique_key {
        [key] => format!(
            "delete from {target}\nwhere ({key}) in (\n    select ({key})\n    from {tmp}\n){extra}"
        ),
        keys => {
            let matches: Vec<String> = keys
                .iter()
                .map(|k| format!("{tmp}.{k} = {target}.{k}"))
                .collect();
            format!(
                "delete from {target}\nusing {tmp}\nwhere (\n    {}{extra}\n)",
                matches.join("\n    and ")
            )
        }
    }
}

/// dbt's merge: matched keys updated, the rest inserted; no key inserts all.
fn merge_sql(
    target: &str,
    tmp: &str,
    unique_key: &[String],
    predicates: &[String],
    dest: &[ColumnInfo],
    update: &[String],
) -> String {
    let mut on: Vec<String> = predicates.to_vec();
    if unique_key.is_empty() {
        on.push("FALSE".to_string());
    }
    on.extend(
        unique_key
            .iter()
            .map(|k| format!("DBT_INTERNAL_SOURCE.{k} = DBT_INTERNAL_DEST.{k}")),
    );
    let mut sql = format!(
        "merge into {target} as DBT_INTERNAL_DEST\nusing {tmp} as DBT_INTERNAL_SOURCE\non ({})\n",
        on.join(") and (")
    );
    if !unique_key.is_empty() && !update.is_empty() {
        let sets: Vec<String> = update
            .iter()
            .map(|c| format!("{c} = DBT_INTERNAL_SOURCE.{c}"))
            .collect();
        sql.push_str(&format!(
            "when matched then update set\n    {}\n",
            sets.join(",\n    ")
        ));
    }
    let names: Vec<String> = dest.iter().map(|c| quote_identifier(&c.name)).collect();
    let values: Vec<String> = names
        .iter()
        .map(|c| format!("DBT_INTERNAL_SOURCE.{c}"))
        .collect();
    sql.push_str(&format!(
        "when not matched then insert\n    ({})\nvalues\n    ({})",
        names.join(", "),
        values.join(", ")
    ));
    sql
}

/// `merge_update_columns` or all columns but `merge_exclude_columns`, quoted.
fn update_columns(node: &Node, dest: &[ColumnInfo]) -> Result<Vec<String>> {
    let only = string_list(node, "merge_update_columns")?;
    let exclude = string_list(node, "merge_exclude_columns")?;
    if !only.is_empty() {
        return Ok(only.iter().map(|c| quote_identifier(c)).collect());
    }
    Ok(dest
        .iter()
        .filter(|c| !exclude.iter().any(|e| e.eq_ignore_ascii_case(&c.name)))
        .map(|c| quote_identifier(&c.name))
        .collect())
}

/// How the model's columns differ from the table's.
#[derive(Debug, Default, PartialEq)]
struct SchemaChanges {
    added: Vec<ColumnInfo>,
    removed: Vec<ColumnInfo>,
    /// Columns whose type changed, with the model's new type.
    retyped: Vec<ColumnInfo>,
}

impl SchemaChanges {
    fn between(source: &[ColumnInfo], target: &[ColumnInfo]) -> SchemaChanges {
        let find = |list: &[ColumnInfo], name: &str| list.iter().find(|c| c.name == name).cloned();
        SchemaChanges {
            added: source
                .iter()
                .filter(|c| find(target, &c.name).is_none())
                .cloned()
                .collect(),
            removed: target
                .iter()
                .filter(|c| find(source, &c.name).is_none())
                .cloned()
                .collect(),
            retyped: source
                .iter()
                .filter(|c| {
                    find(target, &c.name).is_some_and(|t| !fits(&c.data_type, &t.data_type))
                })
                .cloned()
                .collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.retyped.is_empty()
    }

    /// The statements dbt-postgres runs to reconcile the table.
    fn alter_sql(&self, target: &str, on_change: OnSchemaChange) -> Vec<String> {
        let sync = on_change == OnSchemaChange::SyncAllColumns;
        let mut parts: Vec<String> = self
            .added
            .iter()
            .map(|c| format!("add column {} {}", quote_identifier(&c.name), c.data_type))
            .collect();
        if sync {
            parts.extend(
                self.removed
                    .iter()
                    .map(|c| format!("drop column {}", quote_identifier(&c.name))),
            );
        }
        let mut statements = Vec::new();
        if !parts.is_empty() {
            statements.push(format!("alter table {target} {}", parts.join(", ")));
        }
        if sync {
            // dbt-postgres's alter_column_type: copy through a new column, so
            // any type PostgreSQL can assign converts; the column moves last.
            for column in &self.retyped {
                let name = quote_identifier(&column.name);
                let tmp = quote_identifier(&format!("{}__dbt_alter", column.name));
                statements.extend([
                    format!("alter table {target} add column {tmp} {}", column.data_type),
                    format!("update {target} set {tmp} = {name}"),
                    format!("alter table {target} drop column {name} cascade"),
                    format!("alter table {target} rename column {tmp} to {name}"),
                ]);
            }
        }
        statements
    }

    fn out_of_sync_error(&self) -> Error {
        let list = |columns: &[ColumnInfo]| {
            let names: Vec<String> = columns
                .iter()
                .map(|c| format!("{} ({})", c.name, c.data_type))
                .collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        Error::new(
            ErrorKind::Database,
            format!(
                "the columns of this incremental model no longer match its table (on_schema_change: fail)\n  \
                 new columns: {}\n  missing columns: {}\n  changed types: {}",
                list(&self.added),
                list(&self.removed),
                list(&self.retyped),
            ),
        )
        .with_hint("set on_schema_change to append_new_columns or sync_all_columns, or rebuild it with --full-refresh")
    }
}

/// Whether a column of type `source` fits in one of type `target` as is:
/// the same type, or a varchar no longer than the table's (dbt's can_expand_to).
fn fits(source: &str, target: &str) -> bool {
    if source == target {
        return true;
    }
    let varchar_size = |t: &str| -> Option<u32> {
        t.strip_prefix("character varying(")?
            .strip_suffix(')')?
            .parse()
            .ok()
    };
    match (varchar_size(source), varchar_size(target)) {
        (Some(s), Some(t)) => s <= t,
        (Some(_), None) => target == "character varying" || target == "text",
        _ => false,
    }
}

fn config_str<'n>(node: &'n Node, key: &str) -> Option<&'n str> {
    node.config
        .get(key)
        .and_then(Json::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A config that is one string or a list of strings (`unique_key`).
fn string_list(node: &Node, key: &str) -> Result<Vec<String>> {
    match node.config.get(key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::String(s)) if s.trim().is_empty() => Ok(Vec::new()),
        Some(Json::String(s)) => Ok(vec![s.trim().to_string()]),
        Some(Json::Array(items)) => items
            .iter()
            .map(|item| match item {
                Json::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                other => Err(list_error(node, key, other)),
            })
            .collect(),
        Some(other) => Err(list_error(node, key, other)),
    }
}

fn list_error(node: &Node, key: &str, value: &Json) -> Error {
    Error::new(
        ErrorKind::Project,
        format!(
            "`{key}` of `{}` must be a column name or a list of them, got `{value}`",
            node.name
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::Recorder;
    use super::super::tests::node;
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn incremental(config: Json) -> Node {
        let mut node = node(
            "events",
            "incremental",
            "select * from src {% if is_incremental() %}where new{% endif %}",
        );
        node.config = config.as_object().unwrap().clone();
        node
    }

    fn run(db: &mut Recorder, node: &Node, full_refresh: bool) -> Result<Built> {
        let render = |_: &Node| Ok("select * from src where new;".to_string());
        let render_hook = |_: &Node, sql: &str| Ok(sql.to_string());
        let ctx = BuildContext {
            project_root: Path::new("."),
            full_refresh,
            store_failures: false,
            render_incremental: &render,
            render_hook: &render_hook,
        };
        super::super::build(db, node, &ctx)
    }

    /// A database holding `dev.events` with columns id, v; the increment has `source`.
    fn existing(source: Vec<&'static str>) -> Recorder {
        let mut db = Recorder {
            schemas: vec!["dev".into()],
            ..Default::default()
        };
        db.existing.insert("dev.events".into(), RelationKind::Table);
        db.columns.insert(
            r#""postgres"."dev"."events""#.into(),
            vec!["id integer", "v text"],
        );
        db.columns.insert(r#""events__weir_incr""#.into(), source);
        db
    }

    #[test]
    fn the_first_build_and_full_refresh_create_the_table() {
        let mut db = Recorder::default();
        let built = run(&mut db, &incremental(json!({})), false).unwrap();
        assert_eq!(built.message, "SELECT 7");
        assert_eq!(built.compiled_code, None);
        assert!(db.script().contains(
            "create table \"postgres\".\"dev\".\"events__weir_tmp\" as (\nselect * from src {% if"
        ));

        let mut db = existing(vec!["id integer", "v text"]);
        let built = run(&mut db, &incremental(json!({})), true).unwrap();
        assert_eq!(built.message, "SELECT 7");
        let mut db = existing(vec!["id integer", "v text"]);
        let node = incremental(json!({"full_refresh": false}));
        let built = run(&mut db, &node, true).unwrap();
        assert_eq!(
            built.message, "INSERT 0 7",
            "full_refresh: false wins over the flag"
        );
    }

    #[test]
    fn append_inserts_the_tables_columns() {
        let mut db = existing(vec!["id integer", "v text", "extra text"]);
        let built = run(&mut db, &incremental(json!({})), false).unwrap();
        assert_eq!(
            built.compiled_code.as_deref(),
            Some("select * from src where new;")
        );
        insta::assert_snapshot!(db.script(), @r#"
        begin;
        create temporary table "events__weir_incr" on commit drop as (
        select * from src where new
        );
        insert into "postgres"."dev"."events" ("id", "v")
        (
            select "id", "v"
            from "events__weir_incr"
        );
        commit;
        "#);
    }

    #[test]
    fn delete_insert_on_one_or_several_keys() {
        let mut db = existing(vec!["id integer", "v text"]);
        let node = incremental(json!({"unique_key": "id", "incremental_predicates": ["v > 'a'"]}));
        run(&mut db, &node, false).unwrap();
        insta::assert_snapshot!(db.statements[2], @r#"
        delete from "postgres"."dev"."events"
        where (id) in (
            select (id)
            from "events__weir_incr"
        )
            and v > 'a'
        "#);
        let mut db = existing(vec!["id integer", "v text"]);
        let node = incremental(
            json!({"unique_key": ["id", "v"], "incremental_strategy": "delete+insert"}),
        );
        run(&mut db, &node, false).unwrap();
        insta::assert_snapshot!(db.statements[2], @r#"
        delete from "postgres"."dev"."events"
        using "events__weir_incr"
        where (
            "events__weir_incr".id = "postgres"."dev"."events".id
            and "events__weir_incr".v = "postgres"."dev"."events".v
        )
        "#);
    }

    #[test]
    fn merge_updates_matches_and_inserts_the_rest() {
        let mut db = existing(vec!["id integer", "v text"]);
        let node = incremental(json!({
            "unique_key": ["id"], "incremental_strategy": "merge", "merge_exclude_columns": ["id"],
        }));
        let built = run(&mut db, &node, false).unwrap();
        assert_eq!(built.message, "MERGE 7");
        insta::assert_snapshot!(db.statements[2], @r#"
        merge into "postgres"."dev"."events" as DBT_INTERNAL_DEST
        using "events__weir_incr" as DBT_INTERNAL_SOURCE
        on (DBT_INTERNAL_SOURCE.id = DBT_INTERNAL_DEST.id)
        when matched then update set
            "v" = DBT_INTERNAL_SOURCE."v"
        when not matched then insert
            ("id", "v")
        values
            (DBT_INTERNAL_SOURCE."id", DBT_INTERNAL_SOURCE."v")
        "#);
    }

    #[test]
    fn schema_changes_append_sync_or_fail() {
        let source = vec!["id bigint", "w date"];
        let mut db = existing(source.clone());
        let node = incremental(json!({"on_schema_change": "append_new_columns"}));
        run(&mut db, &node, false).unwrap();
        assert_eq!(
            db.statements[2],
            r#"alter table "postgres"."dev"."events" add column "w" date"#
        );
        assert!(
            db.statements[3].starts_with(r#"insert into "postgres"."dev"."events" ("id", "w")"#)
        );

        let mut db = existing(source.clone());
        let node = incremental(json!({"on_schema_change": "sync_all_columns"}));
        run(&mut db, &node, false).unwrap();
        insta::assert_snapshot!(db.statements[2..7].join(";\n"), @r#"
        alter table "postgres"."dev"."events" add column "w" date, drop column "v";
        alter table "postgres"."dev"."events" add column "id__dbt_alter" bigint;
        update "postgres"."dev"."events" set "id__dbt_alter" = "id";
        alter table "postgres"."dev"."events" drop column "id" cascade;
        alter table "postgres"."dev"."events" rename column "id__dbt_alter" to "id"
        "#);

        let mut db = existing(source);
        let node = incremental(json!({"on_schema_change": "fail"}));
        let err = run(&mut db, &node, false).unwrap_err();
        assert!(err.message().contains("new columns: w (date)"), "{err}");
        assert!(err.message().contains("missing columns: v (text)"), "{err}");
        assert!(
            err.message().contains("changed types: id (bigint)"),
            "{err}"
        );
        assert_eq!(db.statements.last().unwrap(), "rollback");
    }

    #[test]
    fn bad_configs_are_project_errors() {
        let mut db = Recorder::default();
        let err = run(
            &mut db,
            &incremental(json!({"incremental_strategy": "microbatch"})),
            false,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Project);
        assert_eq!(
            err.to_string(),
            "models/events.sql: incremental_strategy `microbatch` of `events` is not supported on PostgreSQL\n  hint: use `append`, `delete+insert` or `merge`"
        );
        let err = run(&mut db, &incremental(json!({"unique_key": 3})), false).unwrap_err();
        assert!(err.message().contains("`unique_key` of `events`"), "{err}");
        assert!(db.statements.is_empty());
    }

    #[test]
    fn varchars_fit_wider_varchars() {
        assert!(fits("character varying(5)", "character varying(10)"));
        assert!(!fits("character varying(20)", "character varying(10)"));
        assert!(fits("character varying(20)", "text"));
        assert!(!fits("integer", "bigint"));
    }
}
