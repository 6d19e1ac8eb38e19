//! The preflight of a run: before any SQL, the target may run here (see
//! target::protect) and no relation the run writes lands in a schema that a
//! protected target owns, the project compiled for each of those targets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use crate::compile::Compiled;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Manifest, Node, ResourceType, SourceNode};
use crate::plan::Plan;
use crate::project::Project;
use crate::project::yaml::Yaml;
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
/// `target` itself) that can be read here builds (the others are warned
/// about): the project compiled for each of them, so custom
/// schemas, aliases and a project's generate_schema_name all count, and so do
/// the audit schemas its tests would store failures in.
pub fn protected_schemas(
    project: &Project,
    target: &Target,
    cli_vars: &Map<String, Json>,
) -> Result<Vec<ProtectedSchema>> {
    let mut out = Vec::new();
    let protected = protected_targets(target)?;
    warn_unreadable(&protected.unreadable);
    for other in protected.targets {
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

/// Targets that cannot be read here (a protected one guards nothing): said
/// once per target, as a warning (see README, "What the write-guard covers").
pub fn warn_unreadable(unreadable: &[crate::target::protect::Unreadable]) {
    for target in unreadable {
        crate::logs::emit(
            "TargetUnreadable",
            &format!("Warning: {}", target.warning()),
            serde_json::json!({"target": target.name}),
        );
    }
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

/// Nodes that create, replace or drop a relation when they run (models,
/// seeds, snapshots, tests storing failures), in a run given
/// --store-failures or not (`store_failures`).
fn writes_relation(node: &Node, store_failures: bool) -> bool {
    crate::manifest::builds_relation(node, store_failures)
        && matches!(
            node.resource_type,
            ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot | ResourceType::Test
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
            .with_hint(if node.config.contains_key("target_schema") {
                "a snapshot's `target_schema` names one schema on every target: configure \
                 `schema` instead (dbt 1.9+), which generate_schema_name names per target"
            } else {
                "check the node's `schema`/`alias`/`database` config and the project's \
                 generate_schema_name: on this target it must name a schema of its own"
            }));
        }
    }
    Ok(())
}

/// Sources are a project's inputs: no relation of `plan` may land in a
/// schema that holds a declared source (on every target, prod included),
/// but for the target's own `schema:`, where a project keeps the sources it
/// loads itself. There, only a seed may be a source's very relation (a
/// seed declared as a source).
pub fn check_source_schemas(compiled: &Compiled, plan: &Plan, store_failures: bool) -> Result<()> {
    let manifest = &compiled.manifest;
    let target = &compiled.target;
    let mut by_schema: BTreeMap<(&str, &str), Vec<&SourceNode>> = BTreeMap::new();
    for source in manifest.sources.values() {
        let relation = &source.relation;
        by_schema
            .entry((relation.database.as_str(), relation.schema.as_str()))
            .or_default()
            .push(source);
    }
    if by_schema.is_empty() {
        return Ok(());
    }
    for task in &plan.tasks {
        let Some(node) = manifest.nodes.get(&task.unique_id) else {
            continue;
        };
        if !writes_relation(node, store_failures) {
            continue;
        }
        let relation = &node.relation;
        let Some(sources) = by_schema.get(&(relation.database.as_str(), relation.schema.as_str()))
        else {
            continue;
        };
        let same = sources.iter().find(|s| s.relation == *relation);
        let own_schema = relation.database == target.dbname && relation.schema == target.schema;
        let source = match same {
            _ if own_schema && (same.is_none() || node.resource_type == ResourceType::Seed) => {
                continue;
            }
            Some(source) => source,
            None => sources[0],
        };
        let (source_file, source_line) = source_location(&compiled.project, source);
        let what = match same {
            Some(_) => format!(
                "it is source `{}.{}` itself",
                source.source_name, source.name
            ),
            None => format!(
                "schema `{}` holds source `{}.{}`",
                relation.schema, source.source_name, source.name
            ),
        };
        let (config_file, config_line, config_text) =
            crate::compile::validate::where_set(&compiled.project, node, "schema");
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "`{}` would write {relation}, but {what} (declared in {}:{source_line}): sources \
                 are the project's inputs, and no run writes into their schemas (except the \
                 target's own, `{}`). Nothing was sent to the database.",
                node.name,
                source_file.display(),
                target.schema,
            ),
        )
        .in_file(config_file)
        .at_line_of(&config_text, config_line)
        .with_hint(
            "give the node a schema of its own (its `schema`/`alias`/`database` config and the \
             project's generate_schema_name); a source the project loads itself (a seed) \
             belongs in the target's own schema",
        ));
    }
    Ok(())
}

/// The properties file declaring `source` (project-relative) and the line of
/// its table there (0 when it cannot be read again).
fn source_location(project: &Project, source: &SourceNode) -> (PathBuf, usize) {
    let package = project
        .all_projects()
        .find(|p| p.name == source.package_name)
        .unwrap_or(project);
    let file = PathBuf::from(&source.original_file_path);
    let path = package.root.join(&file);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let named = |entries: Option<&Yaml>, name: &str| -> Option<Yaml> {
        entries?
            .as_sequence()?
            .iter()
            .find(|entry| crate::project::yaml::str_field(entry, "name") == Some(name))
            .cloned()
    };
    let line = crate::project::yaml::parse(&text, &path)
        .ok()
        .and_then(|doc| named(doc.get("sources"), &source.source_name))
        .map_or(0, |declared| {
            named(declared.get("tables"), &source.name).map_or(declared.line(), |t| t.line())
        });
    (file, line)
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
