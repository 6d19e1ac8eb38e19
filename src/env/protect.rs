//! The preflight of a run: before any SQL, the target may run here (see
//! target::protect) and no relation the run writes lands in a schema that a
//! protected target owns, the project compiled for each of those targets.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value as Json};

use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Manifest, Node, ResourceType};
use crate::plan::Plan;
use crate::project::Project;
use crate::target::Target;
use crate::target::protect::protected_targets;

/// A schema owned by a protected target, and which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedSchema {
    pub database: String,
    /// The exact schema, or a prefix when `pattern` is true (`analytics_*`).
    pub schema: String,
    pub pattern: bool,
    pub target: String,
}

impl ProtectedSchema {
    /// True when this entry protects `schema` of `database`.
    pub fn covers(&self, database: &str, schema: &str) -> bool {
        self.database == database
            && if self.pattern {
                schema.starts_with(&self.schema)
            } else {
                self.schema == schema
            }
    }

    fn describe(&self) -> String {
        if self.pattern {
            format!("`{}*`", self.schema)
        } else {
            format!("`{}`", self.schema)
        }
    }
}

/// The schemas every protected target of `target`'s profile (other than
/// `target` itself) builds: the project compiled for each of them, so custom
/// schemas, aliases and a project's generate_schema_name all count, and so do
/// the audit schemas its tests would store failures in.
pub fn protected_schemas(
    project: &Project,
    target: &Target,
    cli_vars: &Map<String, Json>,
) -> Result<Vec<ProtectedSchema>> {
    let mut out = Vec::new();
    for other in protected_targets(target)? {
        let mut owned: BTreeMap<(String, String), ()> = BTreeMap::new();
        owned.insert((other.dbname.clone(), other.schema.clone()), ());
        match crate::compile::compile(project, &other, cli_vars) {
            Ok(manifest) => {
                // Whether its runs pass --store-failures is not known
                // here: the audit schemas they could write count.
                let writes = |n: &&Node| writes_relation(n, true);
                for node in manifest.nodes.values().filter(writes) {
                    owned.insert(
                        (node.relation.database.clone(), node.relation.schema.clone()),
                        (),
                    );
                }
            }
            // The project may not compile for prod here (a model needing a
            // prod-only env var): protect every schema prod could name instead.
            Err(_) => {
                for prefix in fallback_prefixes(project, &other) {
                    out.push(ProtectedSchema {
                        database: other.dbname.clone(),
                        schema: prefix,
                        pattern: true,
                        target: other.name.clone(),
                    });
                }
            }
        }
        out.extend(owned.into_keys().map(|(database, schema)| ProtectedSchema {
            database,
            schema,
            pattern: false,
            target: other.name.clone(),
        }));
    }
    Ok(out)
}

/// `<schema>_` for dbt's naming and `<prefix>_` for the prefix convention.
fn fallback_prefixes(project: &Project, target: &Target) -> Vec<String> {
    let mut prefixes = vec![format!("{}_", target.schema)];
    if crate::target::naming::Convention::from_vars(&project.vars).ok()
        == Some(crate::target::naming::Convention::Prefix)
    {
        prefixes.push(format!(
            "{}_",
            crate::target::naming::env_prefix(target, None)
        ));
    }
    prefixes
}

/// Nodes that create, replace or drop a relation when they run, in a run
/// given --store-failures or not (`store_failures`).
fn writes_relation(node: &Node, store_failures: bool) -> bool {
    crate::manifest::builds_relation(node, store_failures)
        && matches!(
            node.resource_type,
            ResourceType::Model | ResourceType::Seed | ResourceType::Test
        )
}

/// Every relation `plan` would create, replace or drop, checked against the
/// protected schemas before any SQL is sent. Fails naming the first offender.
/// `store_failures`: the run's --store-failures, which makes tests write too.
pub fn check_writes(
    manifest: &Manifest,
    plan: &Plan,
    protected: &[ProtectedSchema],
    project_root: &Path,
    store_failures: bool,
) -> Result<()> {
    for task in &plan.tasks {
        let Some(node) = manifest.nodes.get(&task.unique_id) else {
            continue;
        };
        if !writes_relation(node, store_failures) {
            continue;
        }
        let relation = &node.relation;
        if let Some(owner) = protected
            .iter()
            .find(|p| p.covers(&relation.database, &relation.schema))
        {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "`{}` would write {relation}, but schema {} belongs to protected target `{}`; \
                     a `{}` run never writes into a protected schema. Nothing was sent to the database.",
                    node.name,
                    owner.describe(),
                    owner.target,
                    plan.target_name,
                ),
            )
            .in_file(project_root.join(&node.original_file_path))
            .with_hint(
                "check the node's `schema`/`alias`/`database` config and the project's \
                 generate_schema_name: on this target it must name a schema of its own",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_given_store_failures_is_checked_for_its_audit_relations() {
        use crate::materialize::testing::{data_test, planned};
        let (manifest, plan) = planned(vec![
            data_test("by_flag", "audit", json!({})),
            data_test("never", "audit", json!({"store_failures": false})),
        ]);
        let protected = [ProtectedSchema {
            database: "postgres".into(),
            schema: "audit".into(),
            pattern: false,
            target: "prod".into(),
        }];
        let check = |flag| check_writes(&manifest, &plan, &protected, Path::new("/p"), flag);
        assert!(
            check(false).is_ok(),
            "no test stores failures without the flag"
        );
        let err = check(true).unwrap_err().to_string();
        assert!(
            err.contains("`by_flag` would write \"postgres\".\"audit\".\"by_flag\""),
            "{err}"
        );
    }

    #[test]
    fn patterns_cover_schemas_by_prefix() {
        let exact = ProtectedSchema {
            database: "db".into(),
            schema: "analytics".into(),
            pattern: false,
            target: "prod".into(),
        };
        assert!(exact.covers("db", "analytics"));
        assert!(!exact.covers("db", "analytics_marts"));
        assert!(!exact.covers("other", "analytics"));
        let pattern = ProtectedSchema {
            schema: "prod_".into(),
            pattern: true,
            ..exact
        };
        assert!(pattern.covers("db", "prod_marts"));
        assert!(!pattern.covers("db", "dev_marts"));
    }
}
