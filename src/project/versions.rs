//! Model versions (`versions:` and `latest_version:` of a model's properties):
//! each version's number and file, and what it changes of the model.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use super::properties::{
    Column, DeclaredTest, InFile, ModelProperties, column_of, declared_tests, sequence, yaml_text,
};
use super::yaml::{self, Kind, Yaml, str_field};
use crate::base::pyjson::python_str;
use crate::error::Result;

/// One entry of a model's `versions:`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelVersion {
    /// `v:` as written: a number or a string.
    pub v: Json,
    /// The file (name without `.sql`) that defines it; None: `<model>_v<v>`.
    pub defined_in: Option<String>,
    pub description: String,
    pub config: Map<String, Json>,
    /// Which of the model's columns the version has (`include`/`exclude`).
    pub include: Include,
    pub exclude: Vec<String>,
    /// The version's own columns, and their tests.
    pub columns: Vec<Column>,
    pub column_tests: Vec<DeclaredTest>,
    /// The version's `data_tests:`; None means the model's.
    pub tests: Option<Vec<DeclaredTest>>,
    pub line: usize,
}

/// `include:` of a version's columns: every column of the model, or some.
#[derive(Debug, Clone, PartialEq)]
pub enum Include {
    All,
    Only(Vec<String>),
}

impl ModelVersion {
    /// The name of the file that defines the version, as dbt looks for it.
    pub fn file_name(&self, model: &str) -> String {
        self.defined_in
            .clone()
            .unwrap_or_else(|| format!("{model}_v{}", version_text(&self.v)))
    }

    fn includes(&self, column: &str) -> bool {
        let included = match &self.include {
            Include::All => true,
            Include::Only(names) => names.iter().any(|n| n == column),
        };
        included && !self.exclude.iter().any(|n| n == column)
    }
}

impl ModelProperties {
    /// The version dbt's plain `ref` picks: `latest_version`, else the highest.
    pub fn latest_version(&self) -> Option<&Json> {
        self.latest_version.as_deref().or_else(|| {
            self.versions
                .iter()
                .map(|v| &v.v)
                .max_by(|a, b| compare_versions(a, b))
        })
    }

    /// What the properties say about one version: its description or the
    /// model's, the model's config under its own, the model's columns it
    /// includes and its own, its tests or the model's, as dbt 1.11 merges them.
    pub fn of_version(&self, version: &ModelVersion) -> ModelProperties {
        let mut columns: Vec<Column> = self
            .columns
            .iter()
            .filter(|c| version.includes(&c.name))
            .cloned()
            .collect();
        columns.extend(version.columns.iter().cloned());
        let mut tests: Vec<DeclaredTest> = match &version.tests {
            Some(own) => own.clone(),
            None => self
                .tests
                .iter()
                .filter(|test| test.column.is_none())
                .cloned()
                .collect(),
        };
        tests.extend(
            self.tests
                .iter()
                .filter(|test| test.column.as_deref().is_some_and(|c| version.includes(c)))
                .cloned(),
        );
        tests.extend(version.column_tests.iter().cloned());
        let mut config = self.config.clone();
        deep_merge(&mut config, &version.config);
        ModelProperties {
            description: if version.description.is_empty() {
                self.description.clone()
            } else {
                version.description.clone()
            },
            columns,
            config,
            tests,
            file: self.file.clone(),
            line: version.line,
            versions: Vec::new(),
            latest_version: None,
            snapshot_sql: None,
        }
    }
}

/// dbt's deep_merge: mappings merge key by key, anything else is replaced.
fn deep_merge(base: &mut Map<String, Json>, over: &Map<String, Json>) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Json::Object(inner)), Json::Object(more)) => deep_merge(inner, more),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// A version as Python's `str()` shows it: `2`, `1.5`, `beta`.
pub fn version_text(version: &Json) -> String {
    python_str(version)
}

/// Python's `==` between two versions (`2 == 2.0`; a string never equals a number).
pub fn same_version(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// dbt's order of versions: as numbers when both read as one, else as text.
pub fn compare_versions(a: &Json, b: &Json) -> Ordering {
    let number = |v: &Json| match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => version_text(a).cmp(&version_text(b)),
    }
}

/// Python's truth of a version: `0` and `''` are no version at all.
pub fn is_version(version: &Json) -> bool {
    match version {
        Json::Null | Json::Bool(false) => false,
        Json::Number(n) => n.as_f64() != Some(0.0),
        Json::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// `1, 2 (latest) and 3`: the versions `ref` can reach of `model`, for
/// errors; None when the model has none.
pub fn describe_versions(
    nodes_by_name: &HashMap<String, Vec<String>>,
    model: &str,
) -> Option<String> {
    let prefix = format!("{model}.v");
    let latest = nodes_by_name.get(model);
    let mut found: Vec<(Json, bool)> = nodes_by_name
        .iter()
        .filter_map(|(key, ids)| {
            let version = key.strip_prefix(&prefix)?;
            Some((Json::String(version.to_string()), latest == Some(ids)))
        })
        .collect();
    if found.is_empty() {
        return None;
    }
    found.sort_by(|a, b| compare_versions(&a.0, &b.0));
    let names: Vec<String> = found
        .iter()
        .map(|(v, is_latest)| {
            let text = version_text(v);
            if *is_latest {
                format!("{text} (latest)")
            } else {
                text
            }
        })
        .collect();
    Some(match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    })
}

/// The name `ref` looks a node up by: `<name>.v<version>` when a version
/// is given (and not false, as dbt reads it), else the name.
pub fn ref_key(name: &str, version: Option<&Json>) -> String {
    match version {
        Some(version) if is_version(version) => format!("{name}.v{}", version_text(version)),
        _ => name.to_string(),
    }
}

/// The version a `ref(..., version=a, v=b)` asks for: dbt's `a or b`.
pub fn ref_version(version: Option<Json>, v: Option<Json>) -> Option<Json> {
    match version {
        Some(version) if is_version(&version) => Some(version),
        _ => v,
    }
}

/// `versions:` and `latest_version:` of the model entry `name`.
pub(super) fn parse(
    entry: &Yaml,
    name: &str,
    at: &InFile,
) -> Result<(Vec<ModelVersion>, Option<Box<Json>>)> {
    if entry.get("versions").is_none() && entry.get("latest_version").is_none() {
        return Ok((Vec::new(), None));
    }
    let mut versions: Vec<ModelVersion> = Vec::new();
    for item in sequence(entry, "versions", at)? {
        let version = version_entry(item, name, at)?;
        if let Some(first) = versions.iter().find(|v| same_version(&v.v, &version.v)) {
            return Err(at.error(
                format!(
                    "model `{name}` lists version `{}` twice (also on line {})",
                    version_text(&version.v),
                    first.line
                ),
                item,
            ));
        }
        versions.push(version);
    }
    let latest_node = entry.get("latest_version");
    let latest = match latest_node {
        None => None,
        Some(value) => match value.kind() {
            Kind::Null => None,
            Kind::Int(_) | Kind::Float(_) | Kind::String(_) => Some(yaml::to_json(value)),
            _ => {
                return Err(at.error(
                    format!(
                        "`latest_version:` of `{name}` must be a number or a string, got `{}`",
                        yaml_text(value)
                    ),
                    value,
                ));
            }
        },
    };
    if let (Some(latest), Some(node)) = (&latest, latest_node)
        && !versions.iter().any(|v| same_version(&v.v, latest))
    {
        let err = at.error(
            format!(
                "`latest_version: {}` of `{name}` is not one of its versions",
                version_text(latest)
            ),
            node,
        );
        return Err(if versions.is_empty() {
            err.with_hint("list the versions under `versions:`, each with a `v:`")
        } else {
            err.with_hint(format!("its versions are {}", list(&versions)))
        });
    }
    Ok((versions, latest.map(Box::new)))
}

/// `1, 2, 3` for the error messages.
fn list(versions: &[ModelVersion]) -> String {
    versions
        .iter()
        .map(|v| version_text(&v.v))
        .collect::<Vec<_>>()
        .join(", ")
}

fn version_entry(item: &Yaml, name: &str, at: &InFile) -> Result<ModelVersion> {
    let v = match item.get("v") {
        Some(value)
            if matches!(
                value.kind(),
                Kind::Int(_) | Kind::Float(_) | Kind::String(_)
            ) =>
        {
            yaml::to_json(value)
        }
        None if item.is_mapping() => {
            return Err(at
                .error(format!("a version of `{name}` has no `v:`"), item)
                .with_hint("write each version as `- v: 2`"));
        }
        Some(value) if value.is_null() => {
            return Err(at
                .error(format!("a version of `{name}` has no `v:`"), item)
                .with_hint("write each version as `- v: 2`"));
        }
        Some(other) => {
            return Err(at.error(
                format!(
                    "the `v:` of a version of `{name}` must be a number or a string, got `{}`",
                    yaml_text(other)
                ),
                other,
            ));
        }
        None => {
            return Err(at.error(
                format!(
                    "a version of `{name}` must be a mapping with a `v:`, got `{}`",
                    yaml_text(item)
                ),
                item,
            ));
        }
    };
    let label = format!("version {} of `{name}`", version_text(&v));
    let defined_in = match item.get("defined_in") {
        None => None,
        Some(value) => match value.kind() {
            Kind::Null => None,
            Kind::String(file_name) => Some(file_name.clone()),
            _ => {
                return Err(at.error(
                    format!(
                        "`defined_in:` of {label} must be a file name, got `{}`",
                        yaml_text(value)
                    ),
                    value,
                ));
            }
        },
    };
    let config = match item.get("config") {
        None => Map::new(),
        Some(value) => match yaml::to_json(value) {
            Json::Null => Map::new(),
            Json::Object(config) => config,
            _ => {
                return Err(at.error(format!("`config:` of {label} must be a mapping"), value));
            }
        },
    };
    let mut version = ModelVersion {
        v,
        defined_in,
        description: str_field(item, "description")
            .unwrap_or_default()
            .to_string(),
        config,
        include: Include::All,
        exclude: Vec::new(),
        columns: Vec::new(),
        column_tests: Vec::new(),
        tests: ["data_tests", "tests"]
            .iter()
            .any(|key| item.get(key).is_some_and(|t| !t.is_null()))
            .then(|| declared_tests(item, None)),
        line: item.line(),
    };
    let mut include_line = None;
    for column in sequence(item, "columns", at)? {
        if column.get("include").is_some() || column.get("exclude").is_some() {
            if let Some(first) = include_line {
                return Err(at
                    .error(
                        format!(
                            "{label} has a second `include:`/`exclude:` entry (the first is on line {first})"
                        ),
                        column,
                    )
                    .with_hint("a version has at most one include/exclude entry"));
            }
            include_line = Some(column.line());
            (version.include, version.exclude) =
                include_exclude(column, &label).map_err(|message| at.error(message, column))?;
            continue;
        }
        let Some(column_name) = str_field(column, "name") else {
            return Err(at
                .error(format!("a column of {label} has no `name:`"), column)
                .with_hint(
                    "a column is `- name: id`, or `- include: all` with an `exclude:` list",
                ));
        };
        version.columns.push(column_of(column, column_name));
        version
            .column_tests
            .extend(declared_tests(column, Some(column_name)));
    }
    Ok(version)
}

/// An `include:`/`exclude:` entry of a version's columns, as dbt checks it.
fn include_exclude(
    entry: &Yaml,
    label: &str,
) -> std::result::Result<(Include, Vec<String>), String> {
    let names = |key: &str| -> std::result::Result<Vec<String>, String> {
        match entry.get(key) {
            None => Ok(Vec::new()),
            Some(value) if value.is_null() => Ok(Vec::new()),
            Some(value)
                if value
                    .as_sequence()
                    .is_some_and(|items| items.iter().all(Yaml::is_string)) =>
            {
                Ok(yaml::string_list(Some(value)))
            }
            Some(other) => Err(format!(
                "`{key}:` of the columns of {label} must be a list of column names, got `{}`",
                yaml_text(other)
            )),
        }
    };
    let include = match entry.get("include").map(Yaml::kind) {
        Some(Kind::String(all)) if all == "all" || all == "*" => Include::All,
        Some(Kind::Sequence(_)) => Include::Only(names("include")?),
        None | Some(Kind::Null) => {
            return Err(format!(
                "the columns of {label} have an `exclude:` without `include:`; write `include: all` beside it"
            ));
        }
        Some(_) => {
            let other = entry.get("include").map(yaml_text).unwrap_or_default();
            return Err(format!(
                "`include:` of the columns of {label} must be `all`, `*` or a list of column names, got `{}`",
                other
            ));
        }
    };
    let exclude = names("exclude")?;
    if !exclude.is_empty() && include != Include::All {
        return Err(format!(
            "the columns of {label} list both `include:` names and `exclude:`; `exclude:` goes with `include: all`"
        ));
    }
    Ok((include, exclude))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_compare_as_dbt_compares_them() {
        assert_eq!(compare_versions(&json!(2), &json!(10)), Ordering::Less);
        assert_eq!(compare_versions(&json!("2"), &json!(10)), Ordering::Less);
        assert_eq!(
            compare_versions(&json!("b"), &json!("a")),
            Ordering::Greater
        );
        assert!(same_version(&json!(2), &json!(2.0)));
        assert!(!same_version(&json!("2"), &json!(2)));
        assert_eq!(version_text(&json!(1.5)), "1.5");
        assert_eq!(version_text(&json!(2.0)), "2.0");
        assert!(!is_version(&json!(0)) && is_version(&json!("0")));
    }
}
