//! Config values of the wrong type are a user's mistake, found when the
//! project compiles (as dbt's parser does), not when a node runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value as Json;

use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Node, ResourceType};
use crate::project::Project;

/// What a config key may hold.
#[derive(Clone, Copy)]
enum Shape {
    Text,
    OptionalText,
    Bool,
    OptionalBool,
    Mapping,
    /// A string or a list of strings (tags, unique_key).
    TextOrList,
    /// SQL: a string, `{sql: ..., transaction: ...}`, or a list of those.
    Hooks,
    OptionalWholeNumber,
    Severity,
}

const SHAPES: &[(&str, Shape)] = &[
    ("materialized", Shape::Text),
    ("enabled", Shape::Bool),
    ("schema", Shape::OptionalText),
    ("alias", Shape::OptionalText),
    ("database", Shape::OptionalText),
    ("tags", Shape::TextOrList),
    ("meta", Shape::Mapping),
    ("persist_docs", Shape::Mapping),
    ("grants", Shape::Mapping),
    ("quoting", Shape::Mapping),
    ("column_types", Shape::Mapping),
    ("docs", Shape::Mapping),
    ("contract", Shape::Mapping),
    ("pre-hook", Shape::Hooks),
    ("post-hook", Shape::Hooks),
    ("full_refresh", Shape::OptionalBool),
    ("unique_key", Shape::TextOrList),
    ("incremental_strategy", Shape::OptionalText),
    ("on_schema_change", Shape::OptionalText),
    ("group", Shape::OptionalText),
    ("severity", Shape::Severity),
    ("store_failures", Shape::OptionalBool),
    ("where", Shape::OptionalText),
    ("limit", Shape::OptionalWholeNumber),
    ("retries", Shape::OptionalWholeNumber),
    ("fail_calc", Shape::Text),
    ("warn_if", Shape::Text),
    ("error_if", Shape::Text),
];

impl Shape {
    fn accepts(self, value: &Json) -> bool {
        let text_list = |items: &Vec<Json>| items.iter().all(Json::is_string);
        match (self, value) {
            (Shape::Text, Json::String(_)) => true,
            (Shape::OptionalText, Json::String(_) | Json::Null) => true,
            (Shape::Bool, Json::Bool(_)) => true,
            (Shape::OptionalBool, Json::Bool(_) | Json::Null) => true,
            (Shape::Mapping, Json::Object(_) | Json::Null) => true,
            (Shape::TextOrList, Json::String(_) | Json::Null) => true,
            (Shape::TextOrList, Json::Array(items)) => text_list(items),
            (Shape::Hooks, Json::Array(items)) => items.iter().all(is_hook),
            (Shape::Hooks, hook) => hook.is_null() || is_hook(hook),
            (Shape::OptionalWholeNumber, Json::Null) => true,
            (Shape::OptionalWholeNumber, Json::Number(n)) => n.as_u64().is_some(),
            (Shape::Severity, Json::String(s)) => {
                s.eq_ignore_ascii_case("warn") || s.eq_ignore_ascii_case("error")
            }
            _ => false,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Shape::Text => "a string",
            Shape::OptionalText => "a string or null",
            Shape::Bool => "true or false",
            Shape::OptionalBool => "true, false or null",
            Shape::Mapping => "a mapping",
            Shape::TextOrList => "a string or a list of strings",
            Shape::Hooks => "SQL as a string, {sql: ..., transaction: ...}, or a list of those",
            Shape::OptionalWholeNumber => "a whole number or null",
            Shape::Severity => "`warn` or `error`",
        }
    }
}

fn is_hook(value: &Json) -> bool {
    match value {
        Json::String(_) => true,
        Json::Object(map) => map.get("sql").is_some_and(Json::is_string),
        _ => false,
    }
}

/// Every node's config holds values of the types dbt accepts.
pub fn configs(project: &Project, nodes: &BTreeMap<String, Node>) -> Result<()> {
    let nodes: Vec<&Node> = nodes.values().collect();
    // Checked on all cores; the first node in order with a misfit is reported.
    let misfits = crate::parallel::map(&nodes, |node| misfit(node));
    let Some((node, (key, shape, value))) = nodes
        .iter()
        .zip(misfits)
        .find_map(|(node, misfit)| Some((node, misfit?)))
    else {
        return Ok(());
    };
    let what = match node.resource_type {
        ResourceType::Test => "test",
        ResourceType::Seed => "seed",
        _ => "model",
    };
    let err = Error::new(
        ErrorKind::Project,
        format!(
            "config `{key}` of {what} `{}` must be {}, got `{value}`",
            node.name,
            shape.expected()
        ),
    );
    let (file, line, text) = where_set(project, node, key);
    let err = err.in_file(file).at_line_of(&text, line);
    Err(err.with_hint("configs come from config(), properties YAML and dbt_project.yml"))
}

/// The first config key of `node` (in [`SHAPES`] order) whose value has the
/// wrong type.
fn misfit(node: &Node) -> Option<(&'static str, Shape, &Json)> {
    SHAPES.iter().find_map(|(key, shape)| {
        let value = node.config.get(*key)?;
        (!shape.accepts(value)).then_some((*key, *shape, value))
    })
}

/// The file (with its line and text) most likely to set `key` for `node`:
/// the node's own file when it mentions the key, else its properties YAML,
/// else dbt_project.yml, else the node's file.
pub(crate) fn where_set(project: &Project, node: &Node, key: &str) -> (PathBuf, usize, String) {
    let package = project
        .all_projects()
        .find(|p| p.name == node.package_name)
        .unwrap_or(project);
    let spellings = [key.to_string(), key.replace('-', "_")];
    let line_in = |text: &str| -> usize {
        text.lines()
            .position(|line| spellings.iter().any(|k| mentions(line, k)))
            .map_or(0, |i| i + 1)
    };
    let own_file = package.root.join(&node.original_file_path);
    let own_text = std::fs::read_to_string(&own_file).unwrap_or_default();
    if node.resource_type != ResourceType::Seed {
        let line = line_in(&own_text);
        if line > 0 {
            return (own_file, line, own_text);
        }
    }
    let properties = package
        .properties()
        .ok()
        .and_then(|p| match node.resource_type {
            ResourceType::Seed => p.seeds.get(&node.name),
            _ => p.models.get(&node.name),
        });
    if let Some(properties) = properties {
        let file = package.root.join(&properties.file);
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let line = line_in(&text);
        if line > 0 {
            return (file, line, text);
        }
    }
    for owner in [project, package] {
        let file = owner.root.join("dbt_project.yml");
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let line = line_in(&text);
        if line > 0 {
            return (file, line, text);
        }
    }
    (own_file, 0, String::new())
}

/// `key=`, `key:` or `+key:` on a line.
fn mentions(line: &str, key: &str) -> bool {
    line.match_indices(key).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + key.len()..].trim_start().chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && matches!(after, Some('=' | ':'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        assert!(Shape::TextOrList.accepts(&json!(["a", "b"])));
        assert!(!Shape::TextOrList.accepts(&json!([1])));
        assert!(Shape::Hooks.accepts(&json!(["select 1", {"sql": "x", "transaction": false}])));
        assert!(!Shape::Hooks.accepts(&json!(3)));
        assert!(Shape::Severity.accepts(&json!("WARN")));
        assert!(!Shape::Severity.accepts(&json!("fatal")));
        assert!(!Shape::Bool.accepts(&json!("maybe")));
    }

    #[test]
    fn finds_the_key() {
        assert!(mentions("{{ config(materialized=[]) }}", "materialized"));
        assert!(mentions("    +materialized: table", "materialized"));
        assert!(!mentions("-- the materialized view", "materialized"));
        assert!(!mentions("not_materialized: x", "materialized"));
    }
}
