//! `weir deps --add-package NAME@VERSION [--source hub|git|local]`: the
//! package written into packages.yml (made if missing) in place of any
//! entry for the same package, as dbt does. Like dbt, the file is written
//! anew in its layout: comments in it are not kept.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use crate::error::{Error, ErrorKind, Result};
use crate::project::packages::{self, PACKAGES_FILE};
use crate::project::yaml::{self, Kind, Yaml};

/// Where a package to add comes from (`--source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddSource {
    #[default]
    Hub,
    Git,
    Local,
}

/// Add `spec` (`name` or `name@version`) to the project's packages file
/// and return that file.
pub fn add_package(root: &Path, spec: &str, source: AddSource) -> Result<PathBuf> {
    let (name, version) = match spec.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (spec, None),
    };
    if name.is_empty() {
        return Err(Error::new(
            ErrorKind::Usage,
            "--add-package needs a package: NAME@VERSION",
        ));
    }
    if version.is_none_or(str::is_empty) && source != AddSource::Local {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("--add-package {name} needs a version (NAME@VERSION) unless --source is local"),
        ));
    }
    let mut entry = Map::new();
    let key = match source {
        AddSource::Hub => "package",
        AddSource::Git => "git",
        AddSource::Local => "local",
    };
    entry.insert(key.to_string(), Json::String(name.to_string()));
    if let Some(version) = version.filter(|v| !v.is_empty()) {
        let version_key = if source == AddSource::Git {
            "revision"
        } else {
            "version"
        };
        let value = if version.contains(',') {
            Json::Array(
                version
                    .split(',')
                    .map(|v| Json::String(v.to_string()))
                    .collect(),
            )
        } else {
            Json::String(version.to_string())
        };
        entry.insert(version_key.to_string(), value);
    }

    // dependencies.yml when it is the file holding `packages:`, else packages.yml.
    let path = match packages::read(root)? {
        Some(file) => file.path,
        None => root.join(PACKAGES_FILE),
    };
    let mut list: Vec<Json> = Vec::new();
    if path.is_file() {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let doc = yaml::parse(&text, &path)?;
        if let Some(Kind::Sequence(items)) = doc.get("packages").map(Yaml::kind) {
            list = items.iter().map(yaml::to_json).collect();
        }
    }
    list.retain(|existing| !same_package(existing, name));
    list.push(Json::Object(entry));
    crate::base::atomic_file::write(&path, packages_text(&list).as_bytes())
        .map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// True when `existing` names the package `name` in any spelling dbt
/// treats as the same (dashes or underscores, with or without its
/// namespace, bounded by the start, the end, `/` or `.`).
fn same_package(existing: &Json, name: &str) -> bool {
    let identifier = ["package", "git", "local", "tarball", "private"]
        .iter()
        .find_map(|key| existing.get(key).and_then(Json::as_str));
    let Some(identifier) = identifier else {
        return false;
    };
    let mut variants = vec![
        name.to_string(),
        name.replace('_', "-"),
        name.replace('-', "_"),
    ];
    if let Some((_, short)) = name.rsplit_once('/') {
        variants.extend([
            short.to_string(),
            short.replace('_', "-"),
            short.replace('-', "_"),
        ]);
    }
    variants.iter().filter(|v| !v.is_empty()).any(|variant| {
        identifier.match_indices(variant.as_str()).any(|(at, _)| {
            let before = identifier[..at].chars().last();
            let after = identifier[at + variant.len()..].chars().next();
            before.is_none_or(|c| c == '/' || c == '.')
                && after.is_none_or(|c| c == '/' || c == '.')
        })
    })
}

/// packages.yml as dbt writes it: keys in order, lists indented.
fn packages_text(list: &[Json]) -> String {
    if list.is_empty() {
        return "packages: []\n".to_string();
    }
    let mut out = String::from("packages:\n");
    for entry in list {
        let Some(map) = entry.as_object() else {
            continue;
        };
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for (i, key) in keys.iter().enumerate() {
            let lead = if i == 0 { "  - " } else { "    " };
            match &map[*key] {
                Json::Array(items) => {
                    out.push_str(&format!("{lead}{key}:\n"));
                    for item in items {
                        out.push_str(&format!("      - {}\n", scalar(item)));
                    }
                }
                value => out.push_str(&format!("{lead}{key}: {}\n", scalar(value))),
            }
        }
    }
    out
}

fn scalar(value: &Json) -> String {
    yaml::scalar_text(&yaml::from_json(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_package_replaces_its_other_spellings() {
        let name = "dbt-labs/dbt_utils";
        assert!(same_package(
            &json!({"package": "dbt-labs/dbt_utils"}),
            name
        ));
        assert!(same_package(
            &json!({"git": "https://github.com/dbt-labs/dbt-utils.git"}),
            name
        ));
        assert!(!same_package(
            &json!({"package": "dbt-labs/dbt_utils_extra"}),
            name
        ));
        assert!(!same_package(&json!({"local": "../other"}), name));
    }

    #[test]
    fn packages_yml_is_written_as_dbt_writes_it() {
        let text = packages_text(&[
            json!({"local": "../a"}),
            json!({"package": "org/b", "version": [">=1.0.0", "<2.0.0"]}),
        ]);
        assert_eq!(
            text,
            "packages:\n  - local: ../a\n  - package: org/b\n    version:\n      - '>=1.0.0'\n      - <2.0.0\n"
        );
    }
}
