//! Which schema a node is built in on a target: dbt's `generate_schema_name`
//! (or the project's override), weir's opt-in prefix convention, then the CI
//! suffix and the blue-green shadow suffix on top of either.
//!
//! The convention is switched on in dbt_project.yml under `vars:`, the one
//! place dbt itself accepts keys it does not know:
//!
//! ```yaml
//! vars:
//!   weir:
//!     schema_naming: prefix   # `dbt` (the default) or `prefix`
//! ```
//!
//! With `prefix`, a node's schema is `<prefix>_<schema>`, where `<schema>` is
//! its custom schema (`+schema: marts`) or else the target's `schema:`, and
//! the prefix is `prod` on a target named prod or production, `staging` on
//! staging or stage, `ci` on ci, and the developer's name on any other target.

use serde_json::{Map, Value as Json};

use super::{Environment, Target};
use crate::error::{Error, ErrorKind, Result};

/// The key of `vars:` in dbt_project.yml under which weir's settings live.
pub const SETTINGS_VAR: &str = "weir";
/// profiles.yml target key: the prefix of the prefix convention, verbatim.
pub const PREFIX_KEY: &str = "schema_prefix";
/// profiles.yml target key (also set by `--schema-suffix`): appended to every schema.
pub const SUFFIX_KEY: &str = "schema_suffix";
/// The environment variable a CI job sets instead of `--schema-suffix`.
pub const SUFFIX_ENV: &str = "WEIR_SCHEMA_SUFFIX";
/// Target key set by `weir deploy` only: the shadow suffix (`__next`).
pub const SHADOW_KEY: &str = "weir_deploy_shadow";
/// PostgreSQL truncates longer names silently, which could merge two schemas.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// How schemas are named, from `vars: {weir: {schema_naming: ...}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Convention {
    /// dbt's default: `<target schema>` or `<target schema>_<custom schema>`.
    #[default]
    Dbt,
    /// `<env prefix>_<custom schema or target schema>`.
    Prefix,
}

impl Convention {
    /// The convention the project's vars ask for.
    pub fn from_vars(vars: &Map<String, Json>) -> Result<Convention> {
        let setting = vars.get(SETTINGS_VAR).and_then(|w| w.get("schema_naming"));
        match setting {
            None | Some(Json::Null) => Ok(Convention::Dbt),
            Some(Json::String(s)) if s == "dbt" => Ok(Convention::Dbt),
            Some(Json::String(s)) if s == "prefix" => Ok(Convention::Prefix),
            Some(other) => Err(Error::new(
                ErrorKind::Project,
                format!("`vars: weir: schema_naming:` must be `dbt` or `prefix`, got {other}"),
            )
            .in_file("dbt_project.yml")),
        }
    }
}

/// The schema of a node on `target`. `project_macro` is what the project's own
/// `generate_schema_name` returned, when it defines one: it wins over both
/// conventions, as in dbt. The CI suffix and the deploy shadow apply to every
/// schema, whoever named it, so a CI or deploy run can never land in a live schema.
pub fn node_schema(
    target: &Target,
    vars: &Map<String, Json>,
    custom_schema: Option<&str>,
    project_macro: Option<String>,
) -> Result<String> {
    let base = match project_macro {
        Some(schema) => schema,
        None => match Convention::from_vars(vars)? {
            Convention::Dbt => default_schema_name(&target.schema, custom_schema),
            Convention::Prefix => {
                let schema = custom_schema.unwrap_or(&target.schema);
                format!(
                    "{}_{schema}",
                    env_prefix(target, crate::base::env_vars::env_var("USER"))
                )
            }
        },
    };
    let env_suffix = crate::base::env_vars::env_var(SUFFIX_ENV);
    let schema = decorate(&base, target, env_suffix.as_deref());
    check_length(&schema)?;
    Ok(schema)
}

/// dbt's default generate_schema_name: the target schema, or
/// `<target schema>_<custom schema>` when the node sets one.
pub fn default_schema_name(target_schema: &str, custom_schema: Option<&str>) -> String {
    match custom_schema {
        Some(custom) => format!("{target_schema}_{custom}"),
        None => target_schema.to_string(),
    }
}

/// The prefix of the prefix convention for a target: its `schema_prefix`,
/// else one per well-known environment name, else the developer's name (the
/// target's `user` when it is a person's login, else `$USER`).
pub fn env_prefix(target: &Target, os_user: Option<String>) -> String {
    if let Some(prefix) = extra_text(target, PREFIX_KEY) {
        return sanitize(&prefix);
    }
    match Environment::of(&target.name) {
        Environment::Production => return "prod".to_string(),
        Environment::Staging => return "staging".to_string(),
        Environment::Ci => return "ci".to_string(),
        Environment::Development => {}
    }
    // `postgres` is the superuser everyone shares (and what the embedded
    // cluster always uses): it names no one, so two developers would collide.
    let login = Some(target.user.clone()).filter(|u| !u.is_empty() && u != "postgres");
    let user = login
        .or(os_user)
        .map(|u| sanitize(&u))
        .filter(|u| !u.is_empty());
    user.unwrap_or_else(|| "dev".to_string())
}

/// `schema` with the target's CI suffix (`--schema-suffix`, the target's
/// `schema_suffix`, else `$WEIR_SCHEMA_SUFFIX`) and the deploy shadow suffix.
pub fn decorate(schema: &str, target: &Target, env_suffix: Option<&str>) -> String {
    let mut out = schema.to_string();
    if let Some(suffix) = suffix_of(target, env_suffix) {
        out = format!("{out}_{suffix}");
    }
    if let Some(shadow) = extra_text(target, SHADOW_KEY) {
        out.push_str(&shadow);
    }
    out
}

/// The CI suffix a target builds with, if any (for `weir clean`'s records).
pub fn schema_suffix(target: &Target) -> Option<String> {
    suffix_of(target, std::env::var(SUFFIX_ENV).ok().as_deref())
}

/// The target's `schema_suffix` when it has the key (an empty one means
/// none, whatever the environment says), else the environment's.
/// A target named `ci` with neither takes its pull request or commit from
/// the CI system's environment, so two pull requests never share schemas.
fn suffix_of(target: &Target, env_suffix: Option<&str>) -> Option<String> {
    let suffix = match target.extra.get(SUFFIX_KEY) {
        Some(_) => extra_text(target, SUFFIX_KEY),
        None => env_suffix.map(str::to_string).or_else(|| {
            (target.name == "ci")
                .then(|| suffix_from_ci_env(&crate::base::env_vars::env_var))
                .flatten()
        }),
    };
    suffix.map(|s| sanitize(&s)).filter(|s| !s.is_empty())
}

/// The suffix a `ci` target takes from the CI system when none is given: the
/// pull (merge) request, else the commit.
pub fn suffix_from_ci_env(var: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(iid) = var("CI_MERGE_REQUEST_IID") {
        return Some(format!("mr_{iid}"));
    }
    // GitHub: refs/pull/<n>/merge on pull_request events.
    if let Some(number) = var("GITHUB_REF").and_then(|r| {
        r.strip_prefix("refs/pull/")
            .and_then(|rest| rest.split('/').next().map(str::to_string))
    }) {
        return Some(format!("pr_{number}"));
    }
    [
        "CI_COMMIT_SHORT_SHA",
        "GITHUB_SHA",
        "GIT_COMMIT",
        "BUILDKITE_COMMIT",
    ]
    .iter()
    .find_map(|key| var(key))
    .map(|sha| sha.chars().take(8).collect())
}

/// Lower-case letters, digits and `_`: a pull request's `feature/PR-12` or a
/// user's `Jean.Dupont` becomes a schema name that needs no quoting.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

fn extra_text(target: &Target, key: &str) -> Option<String> {
    match target.extra.get(key)? {
        Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn check_length(schema: &str) -> Result<()> {
    if schema.len() <= MAX_IDENTIFIER_BYTES {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Project,
        format!(
            "schema name `{schema}` is {} bytes long; PostgreSQL keeps only {MAX_IDENTIFIER_BYTES}, \
             so two schemas could end up as one",
            schema.len()
        ),
    )
    .with_hint("use a shorter custom schema, prefix or --schema-suffix"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn target(name: &str, schema: &str, user: &str) -> Target {
        let mut t = Target::embedded_default("shop", Some(name));
        t.schema = schema.into();
        t.user = user.into();
        t
    }

    fn prefix_vars() -> Map<String, Json> {
        json!({"weir": {"schema_naming": "prefix"}})
            .as_object()
            .unwrap()
            .clone()
    }

    fn schema(t: &Target, vars: &Map<String, Json>, custom: Option<&str>) -> String {
        let base = match Convention::from_vars(vars).unwrap() {
            Convention::Dbt => default_schema_name(&t.schema, custom),
            Convention::Prefix => format!(
                "{}_{}",
                env_prefix(t, Some("Alice".into())),
                custom.unwrap_or(&t.schema)
            ),
        };
        decorate(&base, t, None)
    }

    #[test]
    fn dbt_convention_is_the_default() {
        let t = target("prod", "analytics", "loader");
        assert_eq!(schema(&t, &Map::new(), None), "analytics");
        assert_eq!(schema(&t, &Map::new(), Some("marts")), "analytics_marts");
    }

    #[test]
    fn prefix_convention_names_schemas_per_environment() {
        let vars = prefix_vars();
        let prod = target("prod", "analytics", "loader");
        assert_eq!(schema(&prod, &vars, Some("marts")), "prod_marts");
        assert_eq!(schema(&prod, &vars, None), "prod_analytics");
        let staging = target("staging", "analytics", "loader");
        assert_eq!(schema(&staging, &vars, Some("marts")), "staging_marts");
        // The embedded cluster's `postgres` names no one: $USER does.
        let dev = target("dev", "analytics", "postgres");
        assert_eq!(schema(&dev, &vars, Some("marts")), "alice_marts");
        // A personal login on a shared server names the developer.
        let dev = target("dev", "analytics", "bob");
        assert_eq!(schema(&dev, &vars, None), "bob_analytics");
        let mut custom = target("sandbox", "analytics", "postgres");
        custom.extra.insert(PREFIX_KEY.into(), json!("Team Data"));
        assert_eq!(schema(&custom, &vars, Some("marts")), "team_data_marts");
    }

    #[test]
    fn suffix_and_shadow_apply_to_every_convention() {
        let mut t = target("ci", "analytics", "postgres");
        t.extra.insert(SUFFIX_KEY.into(), json!("PR-42"));
        assert_eq!(
            schema(&t, &Map::new(), Some("marts")),
            "analytics_marts_pr_42"
        );
        assert_eq!(schema(&t, &prefix_vars(), Some("marts")), "ci_marts_pr_42");
        let mut prod = target("prod", "analytics", "loader");
        prod.extra.insert(SHADOW_KEY.into(), json!("__next"));
        assert_eq!(schema(&prod, &prefix_vars(), None), "prod_analytics__next");
        let plain = target("dev", "analytics", "postgres");
        assert_eq!(decorate("x", &plain, Some("abc123")), "x_abc123");
    }

    #[test]
    fn bad_settings_and_long_names_are_errors() {
        let vars = json!({"weir": {"schema_naming": "suffix"}});
        let err = Convention::from_vars(vars.as_object().unwrap()).unwrap_err();
        assert!(err.to_string().starts_with("dbt_project.yml: "), "{err}");
        assert!(check_length(&"s".repeat(64)).is_err());
        assert!(check_length(&"s".repeat(63)).is_ok());
    }

    #[test]
    fn sanitize_makes_plain_identifiers() {
        assert_eq!(sanitize("feature/PR-12"), "feature_pr_12");
        assert_eq!(sanitize(" Jean.Dupont "), "jean_dupont");
        assert_eq!(sanitize("--"), "");
    }

    #[test]
    fn ci_env_names_the_pull_request_or_commit() {
        let env = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |key: &str| map.get(key).cloned()
        };
        let github_pr = env(&[("GITHUB_REF", "refs/pull/42/merge"), ("GITHUB_SHA", "abc")]);
        assert_eq!(suffix_from_ci_env(&github_pr).as_deref(), Some("pr_42"));
        let gitlab = env(&[("CI_MERGE_REQUEST_IID", "7")]);
        assert_eq!(suffix_from_ci_env(&gitlab).as_deref(), Some("mr_7"));
        let push = env(&[
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_SHA", "0123456789abcdef"),
        ]);
        assert_eq!(suffix_from_ci_env(&push).as_deref(), Some("01234567"));
        assert_eq!(suffix_from_ci_env(&env(&[])), None);
    }
}
