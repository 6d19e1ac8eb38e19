//! profiles.yml: where a profile is found, its targets, and the connection
//! settings of the target a run uses. Values may call `env_var`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::project::yaml::Yaml;

use crate::error::{Error, ErrorKind, Result};

/// A value that must never be printed: Debug and Display show `*****`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

/// The connection and naming settings of one target of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub profile_name: String,
    /// `dev`, `staging`, `prod`, ...
    pub name: String,
    /// The adapter: only `postgres` runs today.
    pub adapter_type: String,
    /// None means the embedded local PostgreSQL under `<project>/.weir/`.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: String,
    pub password: Option<Secret>,
    pub dbname: String,
    pub schema: String,
    pub threads: usize,
    pub connect_timeout_seconds: Option<u64>,
    /// Every other key of the target, rendered, for `target.<key>` in Jinja.
    pub extra: BTreeMap<String, serde_json::Value>,
    /// Keys whose values read a `DBT_ENV_SECRET_*` variable: models may not
    /// read them as `target.<key>`.
    pub secret_keys: std::collections::BTreeSet<String>,
    /// Where the target came from (None for the built-in default).
    pub profiles_file: Option<PathBuf>,
}

impl Target {
    /// The target used when a project has no profiles.yml: the embedded local PostgreSQL.
    pub fn embedded_default(profile_name: &str, target_name: Option<&str>) -> Target {
        Target {
            profile_name: profile_name.to_string(),
            name: target_name.unwrap_or("dev").to_string(),
            adapter_type: "postgres".to_string(),
            host: None,
            port: None,
            user: "postgres".to_string(),
            password: None,
            dbname: "postgres".to_string(),
            schema: "public".to_string(),
            threads: 4,
            connect_timeout_seconds: None,
            extra: BTreeMap::new(),
            secret_keys: Default::default(),
            profiles_file: None,
        }
    }

    /// True when the target runs on weir's own project-local PostgreSQL.
    pub fn is_embedded(&self) -> bool {
        self.host.is_none()
    }

    /// Values that must be scrubbed from anything weir writes or prints: the
    /// password and every `DBT_ENV_SECRET_*` value of the environment.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = self
            .password
            .iter()
            .map(|p| p.expose().to_string())
            .collect();
        secrets.extend(crate::base::secrets::env_secrets());
        secrets
    }
}

/// Where profiles.yml is looked for, in dbt's order: the explicit directory,
/// `DBT_PROFILES_DIR`, the project directory, then `~/.dbt`.
pub fn profiles_candidates(profiles_dir: Option<&Path>, project_dir: &Path) -> Vec<PathBuf> {
    if let Some(dir) = profiles_dir {
        return vec![dir.join("profiles.yml")];
    }
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("DBT_PROFILES_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(project_dir.to_path_buf());
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".dbt"));
    }
    dirs.into_iter().map(|d| d.join("profiles.yml")).collect()
}

/// Find and read the target for `profile_name`. With no profiles.yml anywhere
/// (and no explicit directory), the embedded default target is used.
pub fn load_target(
    profiles_dir: Option<&Path>,
    project_dir: &Path,
    profile_name: &str,
    target_name: Option<&str>,
) -> Result<Target> {
    let candidates = profiles_candidates(profiles_dir, project_dir);
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        if profiles_dir.is_some() {
            return Err(Error::new(
                ErrorKind::Profile,
                format!(
                    "no profiles.yml in {}",
                    candidates[0].parent().unwrap_or(Path::new(".")).display()
                ),
            ));
        }
        return Ok(Target::embedded_default(profile_name, target_name));
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_target(&text, path, profile_name, target_name)
}

/// Read one target out of the text of a profiles.yml.
pub fn parse_target(
    text: &str,
    path: &Path,
    profile_name: &str,
    target_name: Option<&str>,
) -> Result<Target> {
    let doc = crate::project::yaml::parse(text, path)?;
    target_of(&doc, text, path, profile_name, target_name)
}

/// Read one target out of a parsed profiles.yml (`text` is its text, which
/// errors quote).
pub fn target_of(
    doc: &Yaml,
    text: &str,
    path: &Path,
    profile_name: &str,
    target_name: Option<&str>,
) -> Result<Target> {
    let at = |message: String, node: &Yaml| {
        crate::project::yaml::value_error(ErrorKind::Profile, message, path, text, node)
    };
    let profile = doc.get(profile_name).ok_or_else(|| {
        let names: Vec<&str> = doc
            .as_mapping()
            .map(|m| m.keys().filter_map(Yaml::as_str).collect())
            .unwrap_or_default();
        let err = Error::new(
            ErrorKind::Profile,
            format!("profile `{profile_name}` not found"),
        )
        .in_file(path);
        match crate::error::did_you_mean(profile_name, names.iter().copied()) {
            Some(hint) => err.with_hint(hint),
            None => err.with_hint(format!("profiles defined here: {}", names.join(", "))),
        }
    })?;
    // `target:` may read the environment (`{{ env_var('DBT_TARGET', 'dev') }}`).
    let default_target = match profile.get("target") {
        Some(node) if target_name.is_none() => match render_value(node) {
            Ok((serde_json::Value::String(name), _)) => Some(name),
            Ok((serde_json::Value::Null, _)) => None,
            Ok((other, _)) => Some(other.to_string()),
            Err(e) => return Err(crate::project::yaml::error_at(e, path, text, node)),
        },
        _ => None,
    };
    let name = target_name.or(default_target.as_deref()).ok_or_else(|| {
        at(
            format!("profile `{profile_name}` names no default `target:` and none was given with --target"),
            profile.get("target").unwrap_or(profile),
        )
    })?;
    let outputs = profile
        .get("outputs")
        .and_then(Yaml::as_mapping)
        .ok_or_else(|| {
            at(
                format!("profile `{profile_name}` has no `outputs:`"),
                profile.get("outputs").unwrap_or(profile),
            )
        })?;
    let output_node = outputs.get(name);
    let output = output_node.and_then(Yaml::as_mapping).ok_or_else(|| {
        let names: Vec<&str> = outputs.keys().filter_map(Yaml::as_str).collect();
        let err = Error::new(
            ErrorKind::Profile,
            format!("target `{name}` not found in profile `{profile_name}`"),
        )
        .in_file(path);
        let err = match output_node {
            Some(node) => err.at_line_of(text, node.line()),
            None => err,
        };
        err.with_hint(format!("targets defined: {}", names.join(", ")))
    })?;
    let output_line = output_node.map_or(0, Yaml::line);

    let mut fields = BTreeMap::new();
    let mut lines = BTreeMap::new();
    let mut secret_keys = std::collections::BTreeSet::new();
    for (key, value) in output {
        let Some(key) = key.as_str() else { continue };
        let (rendered, secret) = render_value(value)
            .map_err(|e| crate::project::yaml::error_at(e, path, text, value))?;
        if secret {
            secret_keys.insert(key.to_string());
        }
        fields.insert(key.to_string(), rendered);
        lines.insert(key.to_string(), value.line());
    }
    // An error about a field names its line; about a missing one, the target's.
    let fail = |message: String, key: &str| {
        Error::new(ErrorKind::Profile, message)
            .in_file(path)
            .at_line_of(text, lines.get(key).copied().unwrap_or(output_line))
    };
    let text_field = |key: &str| -> Option<String> {
        fields.get(key).and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let number_field = |key: &str| -> Result<Option<u64>> {
        match text_field(key) {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => s.trim().parse().map(Some).map_err(|_| {
                fail(
                    format!("target `{name}`: `{key}` must be a whole number, got `{s}`"),
                    key,
                )
            }),
        }
    };

    let adapter_type = text_field("type")
        .ok_or_else(|| fail(format!("target `{name}` has no `type:`"), "type"))?;
    let host = text_field("host").filter(|h| !h.is_empty());
    let schema = text_field("schema")
        .ok_or_else(|| fail(format!("target `{name}` has no `schema:`"), "schema"))?;
    let port = number_field("port")?
        .map(|p| {
            u16::try_from(p)
                .map_err(|_| fail(format!("target `{name}`: port {p} is out of range"), "port"))
        })
        .transpose()?;
    let threads = number_field("threads")?.unwrap_or(1).max(1);
    if threads > super::MAX_THREADS as u64 {
        return Err(fail(
            format!(
                "target `{name}`: `threads: {threads}` is more than weir runs at once (at most {}): \
                 each thread holds a connection of its own",
                super::MAX_THREADS
            ),
            "threads",
        )
        .with_hint("PostgreSQL accepts 100 connections unless its max_connections says more"));
    }
    let threads = threads as usize;
    let connect_timeout_seconds = number_field("connect_timeout")?;
    let user = text_field("user").unwrap_or_else(|| "postgres".to_string());
    let password = text_field("password")
        .or_else(|| text_field("pass"))
        .map(Secret::new);
    let dbname = text_field("dbname")
        .or_else(|| text_field("database"))
        .unwrap_or_else(|| "postgres".to_string());

    const KNOWN: &[&str] = &[
        "type",
        "host",
        "port",
        "user",
        "password",
        "pass",
        "dbname",
        "database",
        "schema",
        "threads",
        "connect_timeout",
    ];
    let extra = fields
        .into_iter()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
        .collect();

    // Known process-wide from now on, so that every writer and printer scrubs it.
    // A password equal to the user or database name (a local `postgres`)
    // hides nothing, and masking it would mangle every relation name.
    crate::base::secrets::register(
        password
            .iter()
            .map(|p| p.expose().to_string())
            .filter(|p| *p != user && *p != dbname && *p != schema),
    );
    let target = Target {
        profile_name: profile_name.to_string(),
        name: name.to_string(),
        adapter_type,
        host,
        port,
        user,
        password,
        dbname,
        schema,
        threads,
        connect_timeout_seconds,
        extra,
        secret_keys,
        profiles_file: Some(path.to_path_buf()),
    };
    let line = lines
        .get(super::protect::PROTECTED_KEY)
        .copied()
        .unwrap_or(0);
    super::protect::check_protected_setting(&target, text, line)?;
    Ok(target)
}

/// Render a profiles.yml value: strings go through Jinja (for `env_var`).
/// True beside it when it read a secret env var.
pub(super) fn render_value(value: &Yaml) -> Result<(serde_json::Value, bool)> {
    if let Some(s) = value.as_str()
        && (s.contains("{{") || s.contains("{%"))
    {
        return crate::jinja::render_profile_value(s);
    }
    Ok((crate::project::yaml::to_json(value), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILES: &str = "
shop:
  target: dev
  outputs:
    dev:
      type: postgres
      schema: dev_shop
      threads: 4
    prod:
      type: postgres
      host: db.internal
      port: 5433
      user: loader
      password: hunter2
      dbname: analytics
      schema: analytics
";

    #[test]
    fn default_target_is_the_profiles_target() {
        let t = parse_target(PROFILES, Path::new("profiles.yml"), "shop", None).unwrap();
        assert_eq!(t.name, "dev");
        assert!(t.is_embedded());
        assert_eq!(t.threads, 4);
    }

    #[test]
    fn explicit_target_reads_credentials_and_hides_password() {
        let t = parse_target(PROFILES, Path::new("profiles.yml"), "shop", Some("prod")).unwrap();
        assert_eq!(t.host.as_deref(), Some("db.internal"));
        assert_eq!(t.port, Some(5433));
        assert_eq!(t.dbname, "analytics");
        assert!(!format!("{t:?}").contains("hunter2"));
        assert_eq!(t.secrets(), vec!["hunter2".to_string()]);
    }

    #[test]
    fn errors_name_the_line_of_the_value() {
        let text = "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      schema: \"{{ target.nope }}\"\n      port: 99999\n";
        let err = parse_target(text, Path::new("profiles.yml"), "shop", None).unwrap_err();
        assert_eq!(err.line(), Some(6), "{err}");
        let text = text.replace("\"{{ target.nope }}\"", "s");
        let err = parse_target(&text, Path::new("profiles.yml"), "shop", None).unwrap_err();
        assert_eq!(err.line(), Some(7), "{err}");
        assert!(err.to_string().contains("port: 99999"), "{err}");
        let text = "shop:\n  target: dev\n  outputs:\n    dev:\n      schema: s\n";
        let err = parse_target(text, Path::new("profiles.yml"), "shop", None).unwrap_err();
        assert_eq!(err.line(), Some(5), "{err}");
        assert!(err.message().contains("no `type:`"), "{err}");
    }

    #[test]
    fn values_render_natively_and_only_the_target_in_use() {
        let text = "shop:\n  target: \"{{ env_var('WEIR_TEST_UNSET_TARGET', 'dev') }}\"\n  outputs:\n    \
                    dev:\n      type: postgres\n      schema: dev\n      port: \"{{ '5433' | as_number }}\"\n      \
                    threads: \"{{ 3 }}\"\n      keepalive: \"{{ 'True' | as_bool }}\"\n    \
                    redshift:\n      type: redshift\n      schema: \"{{ env_var('WEIR_TEST_UNSET_RS') }}\"\n";
        let t = parse_target(text, Path::new("profiles.yml"), "shop", None).unwrap();
        assert_eq!(t.name, "dev");
        assert_eq!(t.port, Some(5433));
        assert_eq!(t.threads, 3);
        assert_eq!(t.extra["keepalive"], serde_json::json!(true));
        let bad = text.replace("'True' | as_bool", "'maybe' | as_bool");
        let err = parse_target(&bad, Path::new("profiles.yml"), "shop", None).unwrap_err();
        assert_eq!(err.line(), Some(9), "{err}");
        assert!(err.to_string().contains("into type 'bool'"), "{err}");
    }

    #[test]
    fn merge_keys_share_settings_between_targets() {
        let text = "shop:\n  target: prod\n  outputs:\n    dev: &dev\n      type: postgres\n      host: h\n      schema: dev\n    prod:\n      <<: *dev\n      schema: prod\n";
        let t = parse_target(text, Path::new("profiles.yml"), "shop", None).unwrap();
        assert_eq!(t.host.as_deref(), Some("h"));
        assert_eq!(t.schema, "prod");
        assert_eq!(t.adapter_type, "postgres");
    }

    #[test]
    fn missing_target_names_the_ones_that_exist() {
        let err =
            parse_target(PROFILES, Path::new("profiles.yml"), "shop", Some("qa")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "profiles.yml: target `qa` not found in profile `shop`\n  hint: targets defined: dev, prod"
        );
    }
}
