//! Protected targets: which targets may only run from CI or the scheduler,
//! and the check that refuses to run one from anywhere else. (The check of
//! a run's writes against the schemas protected targets own compiles those
//! targets: it is env::protect's preflight.)
//!
//! A target is protected when profiles.yml says `protected: true`, and a
//! target named `prod` or `production` is protected unless it says
//! `protected: false`.

use std::path::{Path, PathBuf};

use crate::project::yaml::{Kind, Mapping, Yaml};
use serde_json::Value as Json;

use super::{Environment, Target};
use crate::error::{Error, ErrorKind, Result};

/// profiles.yml target key marking a target protected (or, on prod, not).
pub const PROTECTED_KEY: &str = "protected";
/// True when `target` is protected: by its `protected:` key, else by being
/// a production target.
pub fn is_protected(target: &Target) -> bool {
    match target.extra.get(PROTECTED_KEY) {
        // A value that is neither true nor false never opens a target (and
        // loading the profile refused it already: see check_protected_setting).
        Some(value) => protected_value(value).unwrap_or(true),
        None => Environment::of(&target.name) == Environment::Production,
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

/// A `protected:` that is neither true nor false is an error naming its line
/// of profiles.yml (`line`): read as "not protected", a typo
/// (`protected: enabled`) would open prod.
pub fn check_protected_setting(target: &Target, profiles_text: &str, line: usize) -> Result<()> {
    let Some(value) = target.extra.get(PROTECTED_KEY) else {
        return Ok(());
    };
    if protected_value(value).is_some() {
        return Ok(());
    }
    let shown = value.as_str().map_or(value.to_string(), str::to_string);
    let mut error = Error::new(
        ErrorKind::Profile,
        format!(
            "target `{}`: `{PROTECTED_KEY}` must be true or false, got `{}`",
            target.name,
            crate::base::secrets::scrub(&shown)
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
        error = error
            .in_file(file)
            .at_line(target_line(file, &target.profile_name, &target.name));
    }
    Err(error)
}

/// The line of a target's entry in profiles.yml (0 when not found).
fn target_line(file: &Path, profile: &str, name: &str) -> usize {
    let Ok(text) = std::fs::read_to_string(file) else {
        return 0;
    };
    let Ok(doc) = crate::project::yaml::parse(&text, file) else {
        return 0;
    };
    doc.get(profile)
        .and_then(|p| p.get("outputs"))
        .and_then(Yaml::as_mapping)
        .and_then(|outputs| outputs.entry(name))
        .map_or(0, |(key, _)| key.line())
}

/// A target of the profile whose naming settings cannot be rendered in this
/// process (an env var it reads is unset here), so the schemas it owns are
/// unknown.
#[derive(Debug)]
pub struct Unreadable {
    pub name: String,
    /// Whether it is protected, as far as can be told (a `protected:` that
    /// cannot be rendered counts as protected).
    pub protected: bool,
    /// The render error, naming the value's line and the variable.
    pub error: Error,
}

impl Unreadable {
    /// The warning a run prints for a protected target it cannot guard.
    pub fn warning(&self) -> String {
        format!(
            "protected target `{}` cannot be read here ({}): the write-guard does not know the              schemas it owns; its grants still keep other roles out of them",
            self.name,
            crate::base::secrets::scrub(&self.error.to_string()).replace('\n', " "),
        )
    }
}

/// The other targets of a profile: those read, and those that could not be.
#[derive(Debug, Default)]
pub struct OtherTargets {
    pub targets: Vec<Target>,
    pub unreadable: Vec<Unreadable>,
}

/// The other targets of the profile that are protected, and the protected
/// ones that cannot be read here.
pub fn protected_targets(target: &Target) -> Result<OtherTargets> {
    let others = other_targets(target)?;
    Ok(OtherTargets {
        targets: others.targets.into_iter().filter(is_protected).collect(),
        unreadable: others
            .unreadable
            .into_iter()
            .filter(|u| u.protected)
            .collect(),
    })
}

/// The other targets of `target`'s profile, read with only the settings that
/// name schemas and roles: a laptop need not hold prod's password. Their
/// schemas are the live ones: a CI suffix in this process's environment is
/// not applied to them.
///
/// As dbt renders only the target in use, a target whose settings read an
/// env var unset here is not an error: it is returned as [`Unreadable`].
/// Any other fault of a target (no `type:`, a `protected:` that is neither
/// true nor false) still is.
pub fn other_targets(target: &Target) -> Result<OtherTargets> {
    let mut found = OtherTargets::default();
    let Some(file) = &target.profiles_file else {
        return Ok(found);
    };
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let doc = crate::project::yaml::parse(&text, file)?;
    let Some(outputs) = doc
        .get(&target.profile_name)
        .and_then(|p| p.get("outputs"))
        .and_then(Yaml::as_mapping)
    else {
        return Ok(found);
    };
    for (name, node) in outputs {
        let (Some(name), Some(settings)) = (name.as_str(), node.as_mapping()) else {
            continue;
        };
        if name == target.name {
            continue;
        }
        let mut naming_only = Mapping::new();
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
                        | super::naming::PREFIX_KEY
                        | super::naming::SUFFIX_KEY
                )
            });
            if keep {
                naming_only.insert(key.clone(), value.clone());
            }
        }
        // Read like the whole file, but with only these keys: the values keep
        // their lines, so an error names the line in the real file.
        let mut outputs = Mapping::new();
        outputs.insert(
            Yaml::from(name),
            Yaml::at(node.line(), Kind::Mapping(naming_only)),
        );
        let mut profile = Mapping::new();
        profile.insert(Yaml::from("outputs"), Yaml::from(outputs));
        let mut doc = Mapping::new();
        doc.insert(
            Yaml::from(target.profile_name.as_str()),
            Yaml::from(profile),
        );
        let read = super::profile::target_of(
            &Yaml::from(doc),
            &text,
            file,
            &target.profile_name,
            Some(name),
        );
        let mut other = match read {
            Ok(other) => other,
            Err(error) if error.kind() == ErrorKind::Template => {
                found.unreadable.push(Unreadable {
                    name: name.to_string(),
                    protected: protected_as_written(name, node),
                    error,
                });
                continue;
            }
            Err(e) => {
                return Err(Error::new(
                    e.kind(),
                    format!(
                        "cannot tell which schemas target `{name}` owns, so no run can be checked \
                         against it: {}",
                        e.message()
                    ),
                )
                .in_file(file)
                .at_line_of(&text, e.line().unwrap_or(0)));
            }
        };
        other
            .extra
            .entry(super::naming::SUFFIX_KEY.to_string())
            .or_insert(Json::String(String::new()));
        other.profiles_file = Some(PathBuf::from(file));
        found.targets.push(other);
    }
    Ok(found)
}

/// Whether a target that cannot be read whole is protected: its
/// `protected:` when that renders to true or false, else protected when it
/// says so in a way weir cannot read, or by its name.
fn protected_as_written(name: &str, settings: &Yaml) -> bool {
    match settings.get(PROTECTED_KEY) {
        None => Environment::of(name) == Environment::Production,
        Some(value) => super::profile::render_value(value)
            .ok()
            .and_then(|(value, _)| protected_value(&value))
            .unwrap_or(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(name: &str) -> Target {
        Target::embedded_default("shop", Some(name))
    }

    /// A profiles.yml in a folder of its own, and the dev target read from it.
    fn profiles(name: &str, text: &str) -> (PathBuf, Target) {
        let dir = std::env::temp_dir().join(format!("weir_protect_{name}_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("profiles.yml");
        std::fs::write(&file, text).unwrap();
        let target =
            crate::target::profile::parse_target(text, &file, "shop", Some("dev")).unwrap();
        (dir, target)
    }

    #[test]
    fn errors_about_other_targets_name_their_line_in_profiles_yml() {
        let text = "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      schema: dev\n    prod:\n      type: postgres\n      schema: \"{{ env_var('WEIR_TEST_UNSET_PROD_SCHEMA') }}\"\n";
        let (dir, dev) = profiles("other", text);
        let others = other_targets(&dev).unwrap();
        assert!(others.targets.is_empty());
        let [unreadable] = others.unreadable.as_slice() else {
            panic!("{others:?}")
        };
        assert!(unreadable.protected, "a target named prod is protected");
        assert_eq!(unreadable.error.line(), Some(9), "{}", unreadable.error);
        let warning = unreadable.warning();
        assert!(
            warning.contains("protected target `prod` cannot be read here")
                && warning.contains("WEIR_TEST_UNSET_PROD_SCHEMA"),
            "{warning}"
        );
        // Where check_may_run points when it refuses the target.
        let file = dev.profiles_file.as_deref().unwrap();
        assert_eq!(target_line(file, "shop", "prod"), 7);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_unreadable_target_is_protected_unless_it_says_it_is_not() {
        let text = "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      schema: dev\n    \
                    redshift:\n      type: redshift\n      schema: \"{{ env_var('WEIR_TEST_UNSET_RS') }}\"\n    \
                    staging:\n      type: postgres\n      protected: true\n      schema: \"{{ env_var('WEIR_TEST_UNSET_ST') }}\"\n    \
                    qa:\n      type: postgres\n      protected: \"{{ env_var('WEIR_TEST_UNSET_QA') }}\"\n      schema: qa\n    \
                    typo:\n      type: postgres\n      schema: t\n";
        let (dir, dev) = profiles("unreadable", text);
        let others = other_targets(&dev).unwrap();
        let names: Vec<(&str, bool)> = others
            .unreadable
            .iter()
            .map(|u| (u.name.as_str(), u.protected))
            .collect();
        assert_eq!(
            names,
            [("redshift", false), ("staging", true), ("qa", true)]
        );
        assert_eq!(others.targets.len(), 1, "typo is read");
        let protected = protected_targets(&dev).unwrap();
        assert!(protected.targets.is_empty());
        assert_eq!(protected.unreadable.len(), 2);
        // A value that is not true or false is still refused: a typo never opens a target.
        let text = text.replace("schema: t\n", "schema: t\n      protected: enabled\n");
        let (dir2, dev) = profiles("unreadable_typo", &text);
        let err = other_targets(&dev).unwrap_err();
        assert!(err.message().contains("must be true or false"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(dir2);
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
        assert!(check_protected_setting(&prod, "", 0).is_err());
        let mut staging = target("staging");
        staging.extra.insert(PROTECTED_KEY.into(), json!("true"));
        assert!(is_protected(&staging));
    }

    #[test]
    fn allow_protected_lets_a_protected_target_run() {
        assert!(check_may_run(&target("prod"), true).is_ok());
        assert!(check_may_run(&target("dev"), false).is_ok());
    }
}
