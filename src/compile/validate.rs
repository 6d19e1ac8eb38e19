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
    let misfits = crate::base::parallel::map(&nodes, |node| misfit(node));
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

/// PostgreSQL's longest identifier (NAMEDATALEN - 1): longer ones are cut.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// The relations the nodes build can be built: no two nodes build the same
/// one (dbt's check, with its message: the one that runs second would
/// silently replace the other), and no schema or name is longer than
/// PostgreSQL keeps (it cuts them, so the first run works and every later
/// one, looking for the full name, fails with "relation already exists").
pub fn relations(project: &Project, nodes: &BTreeMap<String, Node>) -> Result<()> {
    let mut seen: std::collections::HashMap<String, &Node> = std::collections::HashMap::new();
    for node in nodes.values().filter(|n| n.is_relational()) {
        let relation = &node.relation;
        // dbt-postgres checks the names of tables, views and seeds, not of
        // test audit tables (it cuts those to fit itself).
        if node.resource_type != ResourceType::Test {
            for (what, name, key) in [
                ("relation name", &relation.identifier, "alias"),
                ("schema name", &relation.schema, "schema"),
            ] {
                if name.len() <= MAX_IDENTIFIER_BYTES {
                    continue;
                }
                let (file, line, text) = where_set(project, node, key);
                return Err(Error::new(
                    ErrorKind::Project,
                    format!(
                        "{what} '{name}' of `{}` is {} bytes long, more than the \
                         {MAX_IDENTIFIER_BYTES} PostgreSQL keeps: it would cut it to '{}', so \
                         every run after the first would fail",
                        node.name,
                        name.len(),
                        cut(name)
                    ),
                )
                .in_file(file)
                .at_line_of(&text, line)
                .with_hint(format!(
                    "give it a shorter name, or a shorter `{key}` config (at most \
                     {MAX_IDENTIFIER_BYTES} bytes)"
                )));
            }
        }
        let key = relation.to_string();
        let Some(first) = seen.insert(key.clone(), node) else {
            continue;
        };
        // Point at the node that names its relation itself, if one does.
        let (file, line, text) = [node, first]
            .map(|n| where_set(project, n, "alias"))
            .into_iter()
            .find(|(_, line, _)| *line > 0)
            .unwrap_or_else(|| where_set(project, node, "alias"));
        return Err(Error::new(
            ErrorKind::Project,
            format!(
                "found two resources with the database representation \"{key}\".\n\
                 weir cannot create two resources with identical database representations. \
                 To fix this,\nchange the configuration of one of these resources:\n\
                 - {} ({})\n- {} ({})",
                first.unique_id,
                first.original_file_path,
                node.unique_id,
                node.original_file_path,
            ),
        )
        .in_file(file)
        .at_line_of(&text, line)
        .with_hint("their `alias`, `schema` or `database` configs (or generate_alias_name) name one relation"));
    }
    Ok(())
}

/// `name` cut as PostgreSQL cuts identifiers: to 63 bytes, at a character boundary.
fn cut(name: &str) -> &str {
    let mut end = MAX_IDENTIFIER_BYTES.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
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
        .and_then(|p| super::nodes::properties_of(p, node.resource_type, &node.name));
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
