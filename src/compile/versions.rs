//! Versioned models as dbt 1.11 builds them: which file defines each version,
//! its unique_id, fqn, alias and config, and the names `ref` finds it by.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use crate::error::Result;
use crate::manifest::{ResourceType, config_defaults};
use crate::project::versions::{ModelVersion, is_version, same_version, version_text};
pub use crate::project::versions::{describe_versions, ref_key};
use crate::project::{ModelProperties, Project};

/// One version of a model, found in its file.
#[derive(Debug)]
pub struct Versioned<'a> {
    /// The model's name (every version has it).
    pub model: &'a str,
    pub version: &'a ModelVersion,
    /// The model's latest version: `latest_version`, else the highest.
    pub latest: Json,
    /// The model's properties as they apply to this version.
    pub properties: ModelProperties,
    /// The config dbt_project.yml gives the file as if it were not a
    /// version (fqn ending in the file's name): see [`Versioned::apply_file_config`].
    pub file_config: Map<String, Json>,
}

impl Versioned<'_> {
    pub fn unique_id(&self, package: &str) -> String {
        format!("model.{package}.{}.{}", self.model, self.fqn_leaf())
    }

    /// `v2`: the last part of the fqn.
    pub fn fqn_leaf(&self) -> String {
        format!("v{}", version_text(&self.version.v))
    }

    pub fn is_latest(&self) -> bool {
        same_version(&self.version.v, &self.latest)
    }

    /// dbt's default alias: `<model>_v<version>`, dots made underscores.
    pub fn alias(&self) -> String {
        if is_version(&self.version.v) {
            format!(
                "{}_v{}",
                self.model,
                version_text(&self.version.v).replace('.', "_")
            )
        } else {
            self.model.to_string()
        }
    }

    /// dbt configures a versioned model twice: first as the file it is in,
    /// then as the version. What the second pass leaves unset (a key whose
    /// default is null, such as `alias` or `full_refresh`) keeps the first
    /// pass's value in the node's config, though not in its relation; the
    /// first pass's tags stay first among the node's tags. `call` is what
    /// the file's config() set, part of both passes.
    pub fn apply_file_config(
        &self,
        config: &mut Map<String, Json>,
        tags: Vec<String>,
        call: &Map<String, Json>,
    ) -> Vec<String> {
        let defaults = config_defaults(ResourceType::Model);
        for (key, value) in &self.file_config {
            let nullable = defaults.get(key).is_none_or(Json::is_null);
            if key != "tags" && nullable && !config.contains_key(key) {
                config.insert(key.clone(), value.clone());
            }
        }
        let mut first = crate::project::config::string_list(self.file_config.get("tags"));
        first.extend(crate::project::config::string_list(call.get("tags")));
        let mut all: Vec<String> = Vec::with_capacity(first.len() + tags.len());
        for tag in first.into_iter().chain(tags) {
            if !all.contains(&tag) {
                all.push(tag);
            }
        }
        all
    }

    /// The names `ref` finds this version by: `<model>.v<version>`, and
    /// the model's own name for its latest version.
    pub fn ref_names(&self) -> Vec<String> {
        let mut names = vec![format!("{}.{}", self.model, self.fqn_leaf())];
        if self.is_latest() {
            names.push(self.model.to_string());
        }
        names
    }
}

/// The versions of the package's models, by the stem of the file that
/// defines each: `defined_in`, else `<model>_v<version>`, else (for the
/// latest version only) the model's own name. A version with no file is
/// skipped with a warning, as dbt does; a file defines one version at most.
pub fn claims(package: &Project) -> Result<HashMap<&str, Versioned<'_>>> {
    let mut claimed: HashMap<&str, Versioned> = HashMap::new();
    let stems: Vec<&str> = package.models.iter().map(|f| f.stem()).collect();
    for (model, properties) in &package.properties()?.models {
        let Some(latest) = properties.latest_version() else {
            continue;
        };
        for version in &properties.versions {
            let wanted = version.file_name(model);
            let is_latest = same_version(&version.v, latest);
            let stem = stems
                .iter()
                .find(|s| **s == wanted)
                .or_else(|| stems.iter().find(|s| is_latest && **s == model.as_str()))
                .filter(|s| !claimed.contains_key(**s));
            let Some(stem) = stem else {
                // A compile that printed is not reused (the warning would be lost).
                crate::base::env_vars::note_unrepeatable();
                eprintln!(
                    "warning: {}:{}: version {} of model `{model}` has no file {wanted}.sql \
                     under the model paths, so it is left out (as dbt does)",
                    properties.file,
                    version.line,
                    version_text(&version.v),
                );
                continue;
            };
            claimed.insert(
                stem,
                Versioned {
                    model,
                    version,
                    latest: latest.clone(),
                    properties: properties.of_version(version),
                    file_config: Map::new(),
                },
            );
        }
    }
    Ok(claimed)
}

/// How a versioned ref is written in a generic test's `model` argument.
pub fn test_model_ref(model: &str, version: &Json) -> String {
    format!(
        "ref('{model}', version='{}')",
        version_text(version).replace('\'', "\\'")
    )
}
