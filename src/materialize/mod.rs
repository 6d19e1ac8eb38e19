//! SQL for each materialization: how a model or seed becomes a relation, built
//! under a temporary name and swapped in atomically.

mod around;
mod incremental;
mod model;
mod seed;
mod snapshot;
mod swap;
mod test;

use std::path::Path;

use serde_json::Value as Json;

use crate::adapter::Adapter;
use crate::base::quote::quote_identifier;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Materialization, Node, ResourceType};
use crate::results::Status;
use around::Around;

/// What building a node did, as the database reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The kind of statement that built it: `CREATE VIEW`, `SELECT`, `COPY`.
    pub code: String,
    /// What a user reads: `CREATE VIEW`, `SELECT 30`, `COPY 10`.
    pub message: String,
    pub rows_affected: Option<u64>,
    /// The SQL actually run when it differs from the manifest's
    /// `compiled_code` (an incremental model rendered with `is_incremental()` true).
    pub compiled_code: Option<String>,
    /// For a test: pass, warn or fail, and the failing rows counted.
    pub verdict: Option<Verdict>,
}

/// How a test came out, as dbt decides it from `fail_calc`, `warn_if`,
/// `error_if` and `severity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    /// What `fail_calc` counted (failing rows, by default).
    pub failures: u64,
}

/// What a build needs besides the node and a connection.
pub struct BuildContext<'a> {
    pub project_root: &'a Path,
    /// `--full-refresh`: incremental models and seeds are rebuilt from scratch.
    pub full_refresh: bool,
    /// `--store-failures`: tests keep their failing rows unless their config says not to.
    pub store_failures: bool,
    /// Renders a model's SQL again with `is_incremental()` true.
    pub render_incremental: &'a (dyn Fn(&Node) -> Result<String> + Sync),
    /// Renders a pre- or post-hook of a node in the node's context.
    pub render_hook: &'a (dyn Fn(&Node, &str) -> Result<String> + Sync),
}

impl BuildContext<'_> {
    /// dbt's `should_full_refresh()`: the node's `full_refresh` config when
    /// set, else the `--full-refresh` flag.
    pub fn full_refresh_of(&self, node: &Node) -> bool {
        match node.config.get("full_refresh") {
            Some(Json::Bool(value)) => *value,
            _ => self.full_refresh,
        }
    }
}

/// Fails, naming the node and its materialization, unless weir can build it.
pub fn check_supported(node: &Node) -> Result<()> {
    let supported = match node.resource_type {
        ResourceType::Seed => true,
        ResourceType::Model => {
            matches!(
                node.materialization,
                Materialization::View
                    | Materialization::Table
                    | Materialization::Incremental
                    | Materialization::MaterializedView
            ) || is_snapshot(node)
        }
        ResourceType::Test | ResourceType::Snapshot => true,
        ResourceType::Source | ResourceType::Analysis | ResourceType::Exposure => false,
    };
    if supported {
        return Ok(());
    }
    let message = if node.materialization == Materialization::Ephemeral {
        format!(
            "`{}` is ephemeral: it is inlined into the models that ref it and never built on its own",
            node.name
        )
    } else {
        format!(
            "materialization `{}` of `{}` is not supported yet",
            node.materialization.as_str(),
            node.name
        )
    };
    Err(Error::new(ErrorKind::Usage, message).in_file(&node.original_file_path))
}

/// Build `node` in the database: create its schema if missing, then build the
/// relation and swap it in. Errors name the node's file.
pub fn build(adapter: &mut dyn Adapter, node: &Node, ctx: &BuildContext) -> Result<Built> {
    check_supported(node)?;
    let built = if node.resource_type == ResourceType::Test {
        test::run(adapter, node, ctx.store_failures)
    } else {
        Around::of(node, ctx).and_then(|around| {
            around.before(adapter)?;
            let built = match (node.resource_type, &node.materialization) {
                (ResourceType::Seed, _) => seed::build(adapter, node, ctx, &around),
                (ResourceType::Snapshot, _) => snapshot::build(adapter, node, &around),
                (_, Materialization::Table) => model::build_table(adapter, node, &around),
                (_, Materialization::Incremental) => {
                    incremental::build(adapter, node, ctx, &around)
                }
                (_, Materialization::MaterializedView) => {
                    model::build_materialized_view(adapter, node, ctx, &around)
                }
                _ if is_snapshot(node) => snapshot::build(adapter, node, &around),
                _ => model::build_view(adapter, node, &around),
            }?;
            around.after(adapter)?;
            Ok(built)
        })
    };
    built.map_err(|e| e.in_file(&node.original_file_path))
}

/// The schema and the relations a build of `node` asks about before it
/// changes anything (its own, and the temporary and backup names of a swap):
/// asking them with the relation's lock saves a round trip.
pub fn relations_asked(node: &Node) -> (&str, [String; 3]) {
    (&node.relation.schema, swap::names_asked(&node.relation))
}

/// Snapshots are named by their materialization, whatever node type the
/// compiler gives them.
fn is_snapshot(node: &Node) -> bool {
    node.materialization.as_str() == "snapshot"
}

/// Create the schema when missing. Run outside the build's transaction, so
/// parallel tasks see the schema at once.
pub fn ensure_schema(adapter: &mut dyn Adapter, schema: &str) -> Result<()> {
    // Checked first: `create schema if not exists` needs the CREATE privilege
    // on the database even when the schema is there.
    if adapter.schema_exists(schema)? {
        return Ok(());
    }
    let sql = format!("create schema if not exists {}", quote_identifier(schema));
    match adapter.execute(&sql) {
        Ok(_) => Ok(()),
        // Two tasks creating the same new schema race on the catalog's unique
        // index; the loser finds the winner's schema.
        Err(_) if adapter.schema_exists(schema)? => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! An adapter that records statements instead of running them, and
    //! nodes to build with it.

    use std::collections::HashMap;

    use crate::adapter::{Adapter, ColumnInfo, RelationKind};
    use crate::error::Result;
    use crate::manifest::{Materialization, Node, Relation, ResourceType};

    #[derive(Default)]
    pub struct Recorder {
        pub statements: Vec<String>,
        /// `schema.name` -> kind, for relations that "exist".
        pub existing: HashMap<String, RelationKind>,
        pub schemas: Vec<String>,
        /// Relation as passed to `columns` -> its columns as `name type`.
        pub columns: HashMap<String, Vec<&'static str>>,
        /// What the next `query_text` returns.
        pub rows: Vec<Vec<Option<String>>>,
    }

    impl Recorder {
        pub fn script(&self) -> String {
            self.statements.join(";\n") + ";"
        }
    }

    impl Adapter for Recorder {
        fn execute(&mut self, sql: &str) -> Result<u64> {
            self.statements.push(sql.to_string());
            Ok(7)
        }
        /// Recorded in order: a script reads as the server runs it.
        fn defer(&mut self, sql: &str) {
            self.statements.push(sql.to_string());
        }
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn begin(&mut self) -> Result<()> {
            self.execute("begin").map(drop)
        }
        fn commit(&mut self) -> Result<()> {
            self.execute("commit").map(drop)
        }
        fn rollback(&mut self) -> Result<()> {
            self.execute("rollback").map(drop)
        }
        fn schema_exists(&mut self, schema: &str) -> Result<bool> {
            Ok(self.schemas.iter().any(|s| s == schema))
        }
        fn relation_kinds(
            &mut self,
            schema: &str,
            names: &[&str],
        ) -> Result<Vec<(String, RelationKind)>> {
            Ok(names
                .iter()
                .filter_map(|n| {
                    let kind = self.existing.get(&format!("{schema}.{n}"))?;
                    Some((n.to_string(), *kind))
                })
                .collect())
        }
        fn batch_execute(&mut self, sql: &str) -> Result<()> {
            self.execute(sql).map(drop)
        }
        fn query_text(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
            self.statements.push(sql.to_string());
            Ok(self.rows.drain(..).collect())
        }
        fn columns(&mut self, relation: &str) -> Result<Vec<ColumnInfo>> {
            let columns = self.columns.get(relation).cloned().unwrap_or_default();
            Ok(columns
                .iter()
                .map(|c| {
                    let (name, data_type) = c.split_once(' ').unwrap_or((c, "text"));
                    ColumnInfo {
                        name: name.to_string(),
                        data_type: data_type.to_string(),
                    }
                })
                .collect())
        }
        fn copy_in(&mut self, sql: &str, data: &[u8]) -> Result<u64> {
            self.statements.push(format!(
                "{sql}\n-- data:\n{}",
                String::from_utf8_lossy(data).trim_end()
            ));
            Ok(data.iter().filter(|b| **b == b'\n').count() as u64)
        }
        fn is_closed(&self) -> bool {
            false
        }
    }

    /// A data test `name` whose audit relation is in `schema`, with `config`.
    pub(crate) fn data_test(name: &str, schema: &str, config: serde_json::Value) -> Node {
        let mut test = node(name, "test", "select * from orders where id is null\n");
        test.unique_id = format!("test.shop.{name}");
        test.resource_type = ResourceType::Test;
        test.original_file_path = "models/schema.yml".into();
        test.relation.schema = schema.into();
        test.config = config.as_object().cloned().unwrap_or_default();
        test
    }

    /// A model in `dev` and a data test per way of (not) storing failures,
    /// each with an audit schema of its own: `audit_flag` (only with
    /// --store-failures), `audit_config`, `audit_view`, `audit_ephemeral`
    /// (never built) and `audit_never`.
    pub(crate) fn storing_failures() -> (crate::manifest::Manifest, crate::plan::Plan) {
        use serde_json::json;
        planned(vec![
            node("orders", "table", "select 1"),
            data_test("by_flag", "audit_flag", json!({})),
            data_test("by_config", "audit_config", json!({"store_failures": true})),
            data_test(
                "as_view",
                "audit_view",
                json!({"store_failures_as": "view"}),
            ),
            data_test(
                "as_ephemeral",
                "audit_ephemeral",
                json!({"store_failures": true, "store_failures_as": "ephemeral"}),
            ),
            data_test("never", "audit_never", json!({"store_failures": false})),
        ])
    }

    /// A manifest of `nodes` (no edges) and a plan that runs them all.
    pub(crate) fn planned(nodes: Vec<Node>) -> (crate::manifest::Manifest, crate::plan::Plan) {
        let tasks = nodes
            .iter()
            .map(|n| crate::plan::Task {
                unique_id: n.unique_id.clone(),
                name: n.name.clone(),
                resource_type: n.resource_type,
                materialization: n.materialization.clone(),
                relation: n.relation.clone(),
                upstream: vec![],
                retries: 0,
                tags: vec![],
            })
            .collect();
        let manifest = crate::manifest::Manifest {
            metadata: crate::manifest::Metadata {
                project_name: "shop".into(),
                target_name: "dev".into(),
                adapter_type: "postgres".into(),
                invocation_id: String::new(),
                generated_at: String::new(),
                reuse_key: None,
                reused: false,
            },
            disabled: Default::default(),
            order: nodes.iter().map(|n| n.unique_id.clone()).collect(),
            nodes: nodes
                .into_iter()
                .map(|n| (n.unique_id.clone(), n))
                .collect(),
            sources: Default::default(),
            docs: Default::default(),
            exposures: Default::default(),
            parent_map: Default::default(),
            child_map: Default::default(),
        };
        let plan = crate::plan::Plan {
            target_name: "dev".into(),
            tasks,
        };
        (manifest, plan)
    }

    /// A view model `name` in schema `dev`, for tests to adjust.
    pub(crate) fn node(name: &str, materialization: &str, sql: &str) -> Node {
        Node {
            unique_id: format!("model.shop.{name}"),
            name: name.to_string(),
            resource_type: ResourceType::Model,
            package_name: "shop".into(),
            path: format!("{name}.sql"),
            original_file_path: format!("models/{name}.sql"),
            fqn: vec!["shop".into(), name.into()],
            checksum: String::new(),
            materialization: Materialization::parse(materialization),
            config: Default::default(),
            tags: vec![],
            description: String::new(),
            columns: vec![],
            relation: Relation {
                quoting: Default::default(),
                database: "postgres".into(),
                schema: "dev".into(),
                identifier: name.into(),
            },
            raw_code: sql.into(),
            compiled_code: sql.into(),
            depends_on_nodes: vec![],
            depends_on_macros: vec![],
            refs: vec![],
            sources: vec![],
            retries: None,
            test: None,
            patch_path: None,
            extra_ctes: Vec::new(),
            version: None,
            latest_version: None,
            render_error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Recorder;
    pub(crate) use super::testing::node;
    use super::*;
    use crate::adapter::RelationKind;

    pub(crate) fn build(db: &mut Recorder, node: &Node) -> Result<Built> {
        let render = |n: &Node| Ok(n.compiled_code.clone());
        let render_hook = |_: &Node, sql: &str| Ok(sql.to_string());
        let ctx = BuildContext {
            project_root: Path::new("."),
            full_refresh: false,
            store_failures: false,
            render_incremental: &render,
            render_hook: &render_hook,
        };
        super::build(db, node, &ctx)
    }

    #[test]
    fn a_new_view_creates_its_schema_then_swaps_in() {
        let mut db = Recorder::default();
        let built = build(&mut db, &node("stg_orders", "view", "select 1 as id;\n")).unwrap();
        assert_eq!(built.message, "CREATE VIEW");
        insta::assert_snapshot!(db.script());
    }

    #[test]
    fn a_table_replaces_a_view_and_clears_leftovers() {
        let mut db = Recorder {
            schemas: vec!["dev".into()],
            ..Default::default()
        };
        db.existing.insert("dev.orders".into(), RelationKind::View);
        db.existing
            .insert("dev.orders__weir_tmp".into(), RelationKind::Table);
        let built = build(
            &mut db,
            &node("orders", "table", "select 1 as id -- trailing comment"),
        )
        .unwrap();
        assert_eq!(built.message, "SELECT 7");
        assert_eq!(built.rows_affected, Some(7));
        insta::assert_snapshot!(db.script());
    }

    #[test]
    fn unsupported_materializations_name_the_model() {
        let err = check_supported(&node("events", "custom_mat", "select 1")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
        assert_eq!(
            err.to_string(),
            "models/events.sql: materialization `custom_mat` of `events` is not supported yet"
        );
        let err = check_supported(&node("helper", "ephemeral", "select 1")).unwrap_err();
        assert!(err.message().contains("`helper` is ephemeral"));
    }

    #[test]
    fn a_model_without_sql_is_rejected_before_the_database() {
        let mut db = Recorder::default();
        let err = build(&mut db, &node("empty", "view", "  ;\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "models/empty.sql: `empty` compiles to no SQL"
        );
        assert!(db.statements.is_empty());
    }
}
