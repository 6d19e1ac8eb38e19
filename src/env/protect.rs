//! Protected targets: which targets may only run from CI or the scheduler,
//! and the check, before any SQL, that no run writes into a schema that a
//! protected target owns.
//!
//! A target is protected when profiles.yml says `protected: true`, and a
//! target named `prod` or `production` is protected unless it says
//! `protected: false`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};
use serde_yaml::Value as Yaml;

use crate::compile::Compiled;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Manifest, Node, ResourceType, SourceNode};
use crate::plan::Plan;
use crate::profile::Target;
use crate::project::Project;

/// profiles.yml target key marking a target protected (or, on prod, not).
pub const PROTECTED_KEY: &str = "protected";
/// Target names protected unless their profile says `protected: false`.
const PRODUCTION_NAMES: &[&str] = &["prod", "production"];

/// True when `target` is protected.
pub fn is_protected(target: &Target) -> bool {
    match target.extra.get(PROTECTED_KEY).and_then(protected_value) {
        Some(explicit) => explicit,
        None => PRODUCTION_NAMES.contains(&target.name.as_str()),
    }
}

/// `protected:` as written: true or false (a YAML bool, or the string an
/// `env_var` renders). Anything else is None.
fn protected_value(value: &Json) -> Option<bool> {
    match value {
        Json::Bool(b) => Some(*b),
        Json::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Json::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A `protected:` that is neither true nor false is an error: read as
/// "not protected", a typo (`protected: enabled`) would open prod.
pub fn check_protected_setting(target: &Target, profiles_text: &str) -> Result<()> {
    let Some(value) = target.extra.get(PROTECTED_KEY) else {
        return Ok(());
    };
    if protected_value(value).is_some() {
        return Ok(());
    }
    let outputs = crate::project::yaml::line_of_key(profiles_text, "outputs", 1);
    let entry = crate::project::yaml::line_of_key(profiles_text, &target.name, outputs.max(1));
    let line = crate::project::yaml::line_of_key(profiles_text, PROTECTED_KEY, entry.max(1));
    let mut error = Error::new(
        ErrorKind::Profile,
        format!(
            "target `{}`: `{PROTECTED_KEY}` must be true or false, got `{}`",
            target.name,
            crate::env::secrets::scrub(&value.as_str().map_or(value.to_string(), str::to_string))
        ),
    )
    .with_hint("weir will not guess whether a target is protected");
    if let Some(file) = &target.profiles_file {
        error = error.in_file(file).at_line_of(profiles_text, line);
    }
    Err(error)
}

/// `true`, `yes`, `1` (and their opposites) as a YAML bool or a rendered string.
fn truthy(value: &Json) -> Option<bool> {
    match value {
        Json::Bool(b) => Some(*b),
        Json::Number(n) => n.as_i64().map(|n| n != 0),
        Json::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Some(true),
            "false" | "no" | "0" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The variable a production scheduler's workers (Airflow) set to run
/// protected targets, as CI sets `CI=true`.
pub const ALLOW_ENV: &str = "WEIR_ALLOW_PROTECTED";

/// True when the process may run protected targets: in CI (`CI=true`, as
/// GitHub, GitLab, CircleCI, Buildkite and most others set it), or on a
/// production scheduler that sets `WEIR_ALLOW_PROTECTED=true`.
pub fn in_ci() -> bool {
    ["CI", ALLOW_ENV]
        .iter()
        .any(|key| std::env::var(key).is_ok_and(|v| truthy(&Json::String(v)) == Some(true)))
}

/// Refuse to run a protected target unless in CI or `--allow-protected`.
/// The error says why and how production is meant to change.
pub fn check_may_run(target: &Target, allow_protected: bool) -> Result<()> {
    if !is_protected(target) || allow_protected || in_ci() {
        return Ok(());
    }
    let why = if target.extra.contains_key(PROTECTED_KEY) {
        "it says `protected: true`".to_string()
    } else {
        format!(
            "a target named `{}` is protected unless it says `protected: false`",
            target.name
        )
    };
    let mut error = Error::new(
        ErrorKind::Usage,
        format!(
            "target `{}` is protected ({why}): weir runs it only from CI (CI=true), on the \
             production scheduler (WEIR_ALLOW_PROTECTED=true) or with --allow-protected. \
             Nothing was sent to the database.",
            target.name
        ),
    )
    .with_hint(
        "production changes go through review: build your change on your dev target, open a pull \
         request so CI builds and tests it in its own schemas (`--schema-suffix`, `--state` and \
         `--defer`), and after the merge the scheduler's prod DAG or `weir deploy --target prod` \
         in CI builds it. Pass --allow-protected only for an emergency you were asked to fix by hand.",
    );
    if let Some(file) = &target.profiles_file {
        error = error.in_file(file).at_line(target_line(file, &target.name));
    }
    Err(error)
}

/// The line of a target's entry in profiles.yml (0 when not found).
fn target_line(file: &Path, name: &str) -> usize {
    let Ok(text) = std::fs::read_to_string(file) else {
        return 0;
    };
    let outputs = crate::project::yaml::line_of_key(&text, "outputs", 1);
    crate::project::yaml::line_of_key(&text, name, outputs.max(1))
}

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
    if crate::env::naming::Convention::from_vars(&project.vars).ok()
        == Some(crate::env::naming::Convention::Prefix)
    {
        prefixes.push(format!("{}_", crate::env::naming::env_prefix(target, None)));
    }
    prefixes
}

/// Nodes that create, replace or drop a relation when they run (models,
/// seeds, snapshots, tests storing failures), in a run given
/// --store-failures or not (`store_failures`).
fn writes_relation(node: &Node, store_failures: bool) -> bool {
    crate::materialize::builds_relation(node, store_failures)
        && matches!(
            node.resource_type,
            ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot | ResourceType::Test
        )
}

/// The other targets of the profile that are protected.
fn protected_targets(target: &Target) -> Result<Vec<Target>> {
    Ok(other_targets(target)?
        .into_iter()
        .filter(is_protected)
        .collect())
}

/// The other targets of `target`'s profile, read with only the settings that
/// name schemas and roles: a laptop need not hold prod's password. Their
/// schemas are the live ones: a CI suffix in this process's environment is
/// not applied to them.
pub fn other_targets(target: &Target) -> Result<Vec<Target>> {
    let Some(file) = &target.profiles_file else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let doc = crate::project::yaml::parse(&text, file)?;
    let Some(outputs) = doc
        .get(&target.profile_name)
        .and_then(|p| p.get("outputs"))
        .and_then(Yaml::as_mapping)
    else {
        return Ok(Vec::new());
    };
    let mut targets = Vec::new();
    for (name, settings) in outputs {
        let (Some(name), Some(settings)) = (name.as_str(), settings.as_mapping()) else {
            continue;
        };
        if name == target.name {
            continue;
        }
        let mut naming_only = serde_yaml::Mapping::new();
        for (key, value) in settings {
            let keep = key.as_str().is_some_and(|k| {
                matches!(
                    k,
                    "type"
                        | "user"
                        | "dbname"
                        | "database"
                        | "schema"
                        | PROTECTED_KEY
                        | crate::env::naming::PREFIX_KEY
                        | crate::env::naming::SUFFIX_KEY
                )
            });
            if keep {
                naming_only.insert(key.clone(), value.clone());
            }
        }
        let mut outputs = serde_yaml::Mapping::new();
        outputs.insert(Yaml::from(name), Yaml::Mapping(naming_only));
        let mut profile = serde_yaml::Mapping::new();
        profile.insert(Yaml::from("outputs"), Yaml::Mapping(outputs));
        let mut doc = serde_yaml::Mapping::new();
        doc.insert(
            Yaml::from(target.profile_name.as_str()),
            Yaml::Mapping(profile),
        );
        let naming_text = serde_yaml::to_string(&doc).unwrap_or_default();
        let mut other =
            crate::profile::parse_target(&naming_text, file, &target.profile_name, Some(name))
                .map_err(|e| unreadable_target(e, &text, file, name))?;
        other
            .extra
            .entry(crate::env::naming::SUFFIX_KEY.to_string())
            .or_insert(Json::String(String::new()));
        other.profiles_file = Some(PathBuf::from(file));
        targets.push(other);
    }
    Ok(targets)
}

/// Why another target's schemas cannot be known, at its line of profiles.yml
/// (`text`, the file as written: what was parsed is only its naming keys).
fn unreadable_target(error: Error, text: &str, file: &Path, name: &str) -> Error {
    let outputs = crate::project::yaml::line_of_key(text, "outputs", 1);
    let entry = crate::project::yaml::line_of_key(text, name, outputs.max(1));
    let (line, hint) = if error.message().contains(&format!("`{PROTECTED_KEY}`")) {
        (
            crate::project::yaml::line_of_key(text, PROTECTED_KEY, entry.max(1)),
            "write `protected: true` or `protected: false`",
        )
    } else {
        (
            entry,
            "give the env_var in its `schema:` a default, or set it",
        )
    };
    Error::new(
        error.kind(),
        format!(
            "cannot tell which schemas target `{name}` owns, so no run can be checked against \
             it: {}",
            error.message()
        ),
    )
    .in_file(file)
    .at_line_of(text, line)
    .with_hint(hint)
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
/// its table there.
fn source_location(project: &Project, source: &SourceNode) -> (PathBuf, usize) {
    let package = project
        .all_projects()
        .find(|p| p.name == source.package_name)
        .unwrap_or(project);
    let file = PathBuf::from(&source.original_file_path);
    let text = std::fs::read_to_string(package.root.join(&file)).unwrap_or_default();
    let sources = crate::project::yaml::line_of_key(&text, "sources", 1);
    let declared = crate::project::yaml::line_of_key(&text, &source.source_name, sources.max(1));
    let table = crate::project::yaml::line_of_key(&text, &source.name, declared.max(1));
    (file, table.max(declared))
}

/// Everything that must hold before a run sends SQL: the target may run here,
/// no relation of the plan (with `store_failures`, the run's
/// --store-failures, its tests' audit relations) lands in a schema holding
/// a source, nor in another protected target's schema.
pub fn preflight(
    compiled: &Compiled,
    plan: &Plan,
    allow_protected: bool,
    store_failures: bool,
) -> Result<()> {
    check_may_run(&compiled.target, allow_protected)?;
    check_source_schemas(compiled, plan, store_failures)?;
    let protected = protected_schemas(&compiled.project, &compiled.target, &compiled.cli_vars)?;
    check_writes(
        &compiled.manifest,
        plan,
        &protected,
        &compiled.project.root,
        store_failures,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(name: &str) -> Target {
        Target::embedded_default("shop", Some(name))
    }

    #[test]
    fn prod_is_protected_unless_it_says_otherwise() {
        assert!(is_protected(&target("prod")));
        assert!(is_protected(&target("production")));
        assert!(!is_protected(&target("dev")));
        let mut prod = target("prod");
        prod.extra.insert(PROTECTED_KEY.into(), json!(false));
        assert!(!is_protected(&prod));
        prod.extra.insert(PROTECTED_KEY.into(), json!("enabled"));
        assert!(is_protected(&prod), "a bad value never opens prod");
        assert!(check_protected_setting(&prod, "").is_err());
        let mut staging = target("staging");
        staging.extra.insert(PROTECTED_KEY.into(), json!("true"));
        assert!(is_protected(&staging));
    }

    #[test]
    fn allow_protected_lets_a_protected_target_run() {
        assert!(check_may_run(&target("prod"), true).is_ok());
        assert!(check_may_run(&target("dev"), false).is_ok());
    }

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
