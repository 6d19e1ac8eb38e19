//! What runs around a build as dbt runs it: pre- and post-hooks (inside the
//! build's transaction unless `transaction: false`), then `grants` and
//! `persist_docs` comments just before the commit, so readers see them at once.

use serde_json::Value as Json;

use crate::adapter::{Adapter, RelationKind, in_transaction};
use crate::base::quote::{quote_identifier, quote_literal};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Materialization, Node, Relation};

use super::BuildContext;

/// The hooks, grants and comments of one node, rendered and ready to run.
#[derive(Debug, Default)]
pub(super) struct Around {
    relation: Option<(Relation, RelationKind)>,
    pre_outside: Vec<String>,
    pre_inside: Vec<String>,
    post_inside: Vec<String>,
    post_outside: Vec<String>,
    /// privilege -> grantees, as the `grants` config says.
    grants: Vec<(String, Vec<String>)>,
    relation_comment: Option<String>,
    /// (column, description) of the columns documented in properties YAML.
    column_comments: Vec<(String, String)>,
}

impl Around {
    pub(super) fn of(node: &Node, ctx: &BuildContext) -> Result<Around> {
        let mut around = Around {
            relation: Some((node.relation.clone(), relation_kind(node))),
            ..Around::default()
        };
        for (key, inside, outside) in [
            ("pre-hook", &mut around.pre_inside, &mut around.pre_outside),
            (
                "post-hook",
                &mut around.post_inside,
                &mut around.post_outside,
            ),
        ] {
            for (sql, in_transaction) in hooks(node, key)? {
                let rendered = (ctx.render_hook)(node, &sql)?;
                if rendered.trim().is_empty() {
                    continue;
                }
                if in_transaction {
                    inside.push(rendered);
                } else {
                    outside.push(rendered);
                }
            }
        }
        around.grants = grants(node)?;
        if let Some(Json::Object(docs)) = node.config.get("persist_docs") {
            let on = |key: &str| docs.get(key).and_then(Json::as_bool) == Some(true);
            if on("relation") && !node.description.is_empty() {
                around.relation_comment = Some(node.description.clone());
            }
            if on("columns") {
                around.column_comments = node
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.description.clone()))
                    .collect();
            }
        }
        Ok(around)
    }

    pub(super) fn before(&self, adapter: &mut dyn Adapter) -> Result<()> {
        run_hooks(adapter, &self.pre_outside, "pre-hook")
    }

    pub(super) fn after(&self, adapter: &mut dyn Adapter) -> Result<()> {
        run_hooks(adapter, &self.post_outside, "post-hook")
    }

    /// Run `work` in one transaction, with the hooks, grants and comments
    /// that belong inside it.
    pub(super) fn transaction<T>(
        &self,
        adapter: &mut dyn Adapter,
        work: impl FnOnce(&mut dyn Adapter) -> Result<T>,
    ) -> Result<T> {
        in_transaction(adapter, |adapter| {
            run_hooks(adapter, &self.pre_inside, "pre-hook")?;
            let value = work(adapter)?;
            run_hooks(adapter, &self.post_inside, "post-hook")?;
            if let Some((relation, kind)) = &self.relation {
                self.apply_grants(adapter, relation)?;
                self.persist_docs(adapter, relation, *kind)?;
            }
            Ok(value)
        })
    }

    /// dbt's apply_grants: grant what the config lists, revoke what it no
    /// longer lists (a replaced relation starts with no grants at all).
    fn apply_grants(&self, adapter: &mut dyn Adapter, relation: &Relation) -> Result<()> {
        if self.grants.is_empty() {
            return Ok(());
        }
        let rows = adapter.query_text(&format!(
            "select grantee, privilege_type from information_schema.role_table_grants \
             where grantor = current_role and grantee != current_role \
             and table_schema = {} and table_name = {}",
            quote_literal(&relation.schema),
            quote_literal(&relation.identifier)
        ))?;
        let existing: Vec<(String, String)> = rows
            .into_iter()
            .filter_map(|row| {
                let mut values = row.into_iter();
                Some((values.next()??, values.next()??.to_lowercase()))
            })
            .collect();
        let granted = |grantee: &str, privilege: &str| {
            self.grants.iter().any(|(p, grantees)| {
                p.eq_ignore_ascii_case(privilege)
                    && grantees.iter().any(|g| g.eq_ignore_ascii_case(grantee))
            })
        };
        for (grantee, privilege) in &existing {
            if !granted(grantee, privilege) {
                adapter.defer(&format!("revoke {privilege} on {relation} from {grantee}"));
            }
        }
        for (privilege, grantees) in &self.grants {
            let missing: Vec<&str> = grantees
                .iter()
                .filter(|g| {
                    !existing.iter().any(|(grantee, p)| {
                        grantee.eq_ignore_ascii_case(g) && p.eq_ignore_ascii_case(privilege)
                    })
                })
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                adapter.defer(&format!(
                    "grant {privilege} on {relation} to {}",
                    missing.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// dbt-postgres's persist_docs: COMMENT ON the relation and on each
    /// documented column it has.
    fn persist_docs(
        &self,
        adapter: &mut dyn Adapter,
        relation: &Relation,
        kind: RelationKind,
    ) -> Result<()> {
        if let Some(comment) = &self.relation_comment {
            adapter.defer(&format!(
                "comment on {} {relation} is {}",
                kind.sql_keyword(),
                quote_literal(comment)
            ));
        }
        if self.column_comments.is_empty() {
            return Ok(());
        }
        let columns = adapter.columns(&relation.to_string())?;
        for (name, description) in &self.column_comments {
            if columns.iter().any(|c| c.name == *name) {
                adapter.defer(&format!(
                    "comment on column {relation}.{} is {}",
                    quote_identifier(name),
                    quote_literal(description)
                ));
            }
        }
        Ok(())
    }
}

fn run_hooks(adapter: &mut dyn Adapter, hooks: &[String], what: &str) -> Result<()> {
    for sql in hooks {
        adapter.batch_execute(sql).map_err(|e| {
            let message = format!("{what} failed: {}", e.message());
            let error = Error::new(e.kind(), message);
            match e.hint() {
                Some(hint) => error.with_hint(hint),
                None => error,
            }
        })?;
    }
    Ok(())
}

fn relation_kind(node: &Node) -> RelationKind {
    match node.materialization {
        Materialization::View => RelationKind::View,
        Materialization::MaterializedView => RelationKind::MaterializedView,
        _ => RelationKind::Table,
    }
}

/// A hook config: one SQL string, a `{sql, transaction}` mapping, or a list of them.
fn hooks(node: &Node, key: &str) -> Result<Vec<(String, bool)>> {
    let items = match node.config.get(key) {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(Json::Array(items)) => items.clone(),
        Some(other) => vec![other.clone()],
    };
    items
        .iter()
        .map(|item| match item {
            Json::String(sql) => Ok((sql.clone(), true)),
            Json::Object(map) => match map.get("sql") {
                Some(Json::String(sql)) => {
                    let inside = map.get("transaction").and_then(Json::as_bool) != Some(false);
                    // `side_effect: true`: runs on protected targets only (target::side_effects).
                    if map.get("side_effect").and_then(Json::as_bool) == Some(true) {
                        return Ok((crate::target::side_effects::mark_hook(sql), inside));
                    }
                    Ok((sql.clone(), inside))
                }
                _ => Err(invalid(node, key, "SQL or a mapping with `sql:`", item)),
            },
            other => Err(invalid(node, key, "SQL or a mapping with `sql:`", other)),
        })
        .collect()
}

/// `grants: {select: [reporter, analyst]}`; one grantee may be a plain string.
fn grants(node: &Node) -> Result<Vec<(String, Vec<String>)>> {
    let Some(Json::Object(map)) = node.config.get("grants") else {
        return Ok(Vec::new());
    };
    map.iter()
        .map(|(privilege, grantees)| {
            let grantees = match grantees {
                Json::String(g) => vec![g.clone()],
                Json::Array(items) => items
                    .iter()
                    .map(|g| {
                        g.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| invalid(node, "grants", "role names", g))
                    })
                    .collect::<Result<_>>()?,
                other => return Err(invalid(node, "grants", "role names", other)),
            };
            Ok((privilege.clone(), grantees))
        })
        .filter(|grant| !matches!(grant, Ok((_, grantees)) if grantees.is_empty()))
        .collect()
}

fn invalid(node: &Node, key: &str, expected: &str, got: &Json) -> Error {
    Error::new(
        ErrorKind::Project,
        format!("`{key}` of `{}` must be {expected}, got `{got}`", node.name),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::Recorder;
    use super::super::tests::node;
    use super::*;
    use crate::manifest::Column;
    use serde_json::json;

    fn around(node: &Node) -> Around {
        let render_incremental = |n: &Node| Ok(n.compiled_code.clone());
        let render_hook =
            |n: &Node, sql: &str| Ok(sql.replace("{{ this }}", &n.relation.to_string()));
        let ctx = BuildContext {
            project_root: std::path::Path::new("."),
            full_refresh: false,
            store_failures: false,
            render_incremental: &render_incremental,
            render_hook: &render_hook,
        };
        Around::of(node, &ctx).unwrap()
    }

    #[test]
    fn hooks_grants_and_comments_go_where_dbt_puts_them() {
        let mut node = node("orders", "table", "select 1 as id");
        node.config = json!({
            "pre-hook": ["set search_path = x", {"sql": "vacuum", "transaction": false}],
            "post-hook": ["analyze {{ this }}"],
            "grants": {"select": ["reporter", "analyst"], "insert": []},
            "persist_docs": {"relation": true, "columns": true},
        })
        .as_object()
        .unwrap()
        .clone();
        node.description = "Orders, one row each; it's tidy".into();
        node.columns = vec![
            Column {
                name: "id".into(),
                description: "The key".into(),
                data_type: None,
            },
            Column {
                name: "gone".into(),
                description: "Not in the table".into(),
                data_type: None,
            },
        ];
        let around = around(&node);
        let mut db = Recorder::default();
        db.columns
            .insert(r#""postgres"."dev"."orders""#.into(), vec!["id integer"]);
        db.rows = vec![vec![Some("old_role".into()), Some("SELECT".into())]];
        around.before(&mut db).unwrap();
        around
            .transaction(&mut db, |db| db.execute("create table x"))
            .unwrap();
        around.after(&mut db).unwrap();
        insta::assert_snapshot!(db.script(), @r#"
        vacuum;
        begin;
        set search_path = x;
        create table x;
        analyze "postgres"."dev"."orders";
        select grantee, privilege_type from information_schema.role_table_grants where grantor = current_role and grantee != current_role and table_schema = 'dev' and table_name = 'orders';
        revoke select on "postgres"."dev"."orders" from old_role;
        grant select on "postgres"."dev"."orders" to reporter, analyst;
        comment on table "postgres"."dev"."orders" is 'Orders, one row each; it''s tidy';
        comment on column "postgres"."dev"."orders"."id" is 'The key';
        commit;
        "#);
    }

    #[test]
    fn a_failing_hook_says_which() {
        let mut node = node("orders", "view", "select 1 as id");
        node.config = json!({"post-hook": 3}).as_object().unwrap().clone();
        let render_incremental = |n: &Node| Ok(n.compiled_code.clone());
        let render_hook = |_: &Node, sql: &str| Ok(sql.to_string());
        let ctx = BuildContext {
            project_root: std::path::Path::new("."),
            full_refresh: false,
            store_failures: false,
            render_incremental: &render_incremental,
            render_hook: &render_hook,
        };
        let err = Around::of(&node, &ctx).unwrap_err();
        assert_eq!(
            err.message(),
            "`post-hook` of `orders` must be SQL or a mapping with `sql:`, got `3`"
        );
    }
}
