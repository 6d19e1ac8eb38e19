//! What an `on-run-end` hook sees besides a hook's usual context: dbt's
//! `results`, `schemas` and `database_schemas`.

use std::collections::BTreeSet;

use minijinja::Value;
use serde_json::json;

use crate::manifest::Manifest;
use crate::results::NodeResult;

/// The variables dbt's RunTask.after_run adds: every result with its `node`,
/// and the (database, schema) pairs of the relations that were built (not
/// errored, failed or skipped): models, seeds, snapshots, and the audit
/// relations of tests that store their failures (`store_failures`: the
/// run's --store-failures).
pub(super) fn context(manifest: &Manifest, results: &[&NodeResult], store_failures: bool) -> Value {
    let mut database_schemas = BTreeSet::new();
    let mut entries = Vec::with_capacity(results.len());
    for result in results {
        let node = manifest.nodes.get(&result.unique_id);
        let built = !result.status.is_failure() && result.status != crate::results::Status::Skipped;
        let relational =
            |n: &&crate::manifest::Node| crate::manifest::builds_relation(n, store_failures);
        if let Some(node) = node.filter(|n| built && relational(n)) {
            database_schemas.insert((node.relation.database.clone(), node.relation.schema.clone()));
        }
        let mut entry = result.to_json();
        entry["node"] = match node {
            Some(node) => serde_json::to_value(node).unwrap_or_default(),
            None => operation(&manifest.metadata.project_name, &result.unique_id),
        };
        entries.push(entry);
    }
    let schemas: BTreeSet<&str> = database_schemas.iter().map(|(_, s)| s.as_str()).collect();
    minijinja::context! {
        results => Value::from_serialize(&entries),
        schemas => Value::from_serialize(&schemas),
        database_schemas => Value::from_serialize(&database_schemas),
    }
}

/// An on-run-start hook's node as dbt shows it (`operation.shop.shop-on-run-start-0`).
fn operation(project: &str, unique_id: &str) -> serde_json::Value {
    let name = unique_id.rsplit('.').next().unwrap_or(unique_id);
    json!({
        "unique_id": unique_id,
        "name": name,
        "resource_type": "operation",
        "package_name": project,
    })
}
