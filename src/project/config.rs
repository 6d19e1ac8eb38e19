//! The `models:` / `seeds:` config tree of dbt_project.yml and how a node's
//! config is resolved from it: folder inheritance, then properties, then config().

use std::path::Path;

use super::yaml::{self, Yaml};
use serde_json::{Map, Value as Json};

use crate::error::{ErrorKind, Result};

/// Config keys dbt accepts without a `+` prefix in dbt_project.yml.
const CONFIG_KEYS: &[&str] = &[
    "materialized",
    "schema",
    "database",
    "alias",
    "tags",
    "enabled",
    "meta",
    "docs",
    "persist_docs",
    "grants",
    "pre-hook",
    "post-hook",
    "pre_hook",
    "post_hook",
    "full_refresh",
    "unique_key",
    "incremental_strategy",
    "on_schema_change",
    "contract",
    "quoting",
    "column_types",
    "quote_columns",
    "delimiter",
    "retries",
    "enabled",
    "group",
    "access",
];

/// One level of the config tree: the configs set here, and sub-folders.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigTree {
    pub configs: Map<String, Json>,
    pub children: Vec<(String, ConfigTree)>,
}

impl ConfigTree {
    /// The tree under the top-level `key` of dbt_project.yml (`text` is the
    /// file, so errors quote the line of the block at fault).
    pub fn from_yaml(
        value: Option<&Yaml>,
        key: &str,
        text: &str,
        file: &Path,
    ) -> Result<ConfigTree> {
        let Some(value) = value else {
            return Ok(ConfigTree::default());
        };
        let Some(mapping) = value.as_mapping() else {
            if value.is_null() {
                return Ok(ConfigTree::default());
            }
            return Err(yaml::value_error(
                ErrorKind::Project,
                format!(
                    "a config block must be a mapping of folders and +configs: `{key}:` is not"
                ),
                file,
                text,
                value,
            ));
        };
        let mut tree = ConfigTree::default();
        for (key, value) in mapping {
            let Some(key) = key.as_str() else { continue };
            if let Some(config_key) = key.strip_prefix('+') {
                tree.configs
                    .insert(normalise_key(config_key), yaml::to_json(value));
            } else if value.is_mapping() && !CONFIG_KEYS.contains(&key) {
                tree.children.push((
                    key.to_string(),
                    ConfigTree::from_yaml(Some(value), key, text, file)?,
                ));
            } else {
                tree.configs
                    .insert(normalise_key(key), yaml::to_json(value));
            }
        }
        Ok(tree)
    }

    /// True when a config other than a hook (rendered at run time) holds Jinja.
    pub fn has_jinja(&self) -> bool {
        fn holds(value: &Json) -> bool {
            match value {
                Json::String(s) => super::rendering::has_jinja(s),
                Json::Array(items) => items.iter().any(holds),
                Json::Object(map) => map.values().any(holds),
                _ => false,
            }
        }
        self.configs
            .iter()
            .any(|(key, value)| !matches!(key.as_str(), "pre-hook" | "post-hook") && holds(value))
            || self.children.iter().any(|(_, child)| child.has_jinja())
    }

    /// The configs that apply to a node with this fqn (package, folders..., name),
    /// each deeper level overriding the one above it.
    pub fn resolve(&self, fqn: &[String]) -> Map<String, Json> {
        let mut config = Map::new();
        merge_config(&mut config, &self.configs);
        let mut level = self;
        for part in fqn {
            match level.children.iter().find(|(name, _)| name == part) {
                Some((_, child)) => {
                    merge_config(&mut config, &child.configs);
                    level = child;
                }
                None => break,
            }
        }
        config
    }
}

/// dbt writes hooks with a dash in YAML and an underscore in config().
fn normalise_key(key: &str) -> String {
    match key {
        "pre_hook" => "pre-hook".to_string(),
        "post_hook" => "post-hook".to_string(),
        other => other.to_string(),
    }
}

/// Apply `overrides` on top of `base` with dbt's rules: tags and hooks
/// accumulate, meta merges key by key, everything else is replaced.
pub fn merge_config(base: &mut Map<String, Json>, overrides: &Map<String, Json>) {
    for (key, value) in overrides {
        let key = normalise_key(key);
        match key.as_str() {
            "tags" | "pre-hook" | "post-hook" => {
                let mut items = as_list(base.get(&key));
                for item in as_list(Some(value)) {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                base.insert(key, Json::Array(items));
            }
            "meta" => {
                let mut merged = match base.get(&key) {
                    Some(Json::Object(m)) => m.clone(),
                    _ => Map::new(),
                };
                if let Json::Object(m) = value {
                    for (k, v) in m {
                        merged.insert(k.clone(), v.clone());
                    }
                }
                base.insert(key, Json::Object(merged));
            }
            _ => {
                base.insert(key, value.clone());
            }
        }
    }
}

/// The strings of a config value that may be one string or a list (tags).
pub fn string_list(value: Option<&Json>) -> Vec<String> {
    as_list(value)
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn as_list(value: Option<&Json>) -> Vec<Json> {
    match value {
        Some(Json::Array(items)) => items.clone(),
        Some(Json::Null) | None => Vec::new(),
        Some(other) => vec![other.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> ConfigTree {
        let value = yaml::parse(text, Path::new("dbt_project.yml")).unwrap();
        ConfigTree::from_yaml(Some(&value), "models", "", Path::new("dbt_project.yml")).unwrap()
    }

    fn fqn(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn folders_inherit_and_override() {
        let t = tree(
            "shop:\n  +materialized: view\n  +tags: [shop]\n  marts:\n    +materialized: table\n    +schema: marts\n    +tags: mart\n",
        );
        let c = t.resolve(&fqn(&["shop", "marts", "orders"]));
        assert_eq!(c["materialized"], "table");
        assert_eq!(c["schema"], "marts");
        assert_eq!(c["tags"], serde_json::json!(["shop", "mart"]));
        let c = t.resolve(&fqn(&["shop", "staging", "stg_orders"]));
        assert_eq!(c["materialized"], "view");
        assert!(c.get("schema").is_none());
    }

    #[test]
    fn bare_config_keys_are_configs_not_folders() {
        let t = tree("shop:\n  materialized: table\n  meta: {owner: a}\n");
        let c = t.resolve(&fqn(&["shop", "x"]));
        assert_eq!(c["materialized"], "table");
        assert_eq!(c["meta"]["owner"], "a");
    }
}
