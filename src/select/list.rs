//! `ls`: the selected nodes and sources, one line each, exactly as `dbt ls`
//! prints them (sorted by unique_id; names, paths, selectors or JSON).

use crate::base::pyjson::python_json;
use serde_json::{Map, Value as Json};

use super::Selection;
use super::methods::Member;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Manifest;

/// What `ls` prints for each member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOutput {
    /// `fqn` joined by dots; `source:pkg.source.table` for sources.
    #[default]
    Selector,
    /// The name; `source.table` for sources.
    Name,
    /// The file the member is declared in.
    Path,
    /// A JSON object of the member's manifest entry.
    Json,
}

/// The keys `dbt ls --output json` prints unless `--output-keys` says otherwise.
const JSON_KEYS: [&str; 10] = [
    "alias",
    "name",
    "package_name",
    "depends_on",
    "tags",
    "config",
    "resource_type",
    "source_name",
    "original_file_path",
    "unique_id",
];

/// Resource types `ls` lists unless --resource-type says otherwise (all but analyses).
const DEFAULT_TYPES: [&str; 11] = [
    "model",
    "snapshot",
    "seed",
    "test",
    "source",
    "exposure",
    "metric",
    "saved_query",
    "semantic_model",
    "unit_test",
    "function",
];

/// The arguments of `ls` besides the selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub output: ListOutput,
    /// `--resource-type`: empty means dbt's default set; `all` and `default` expand.
    pub resource_types: Vec<String>,
    /// `--exclude-resource-type`.
    pub exclude_resource_types: Vec<String>,
    /// `--output-keys` for JSON: top-level keys or dotted paths.
    pub output_keys: Vec<String>,
}

/// The lines `dbt ls` prints for this selection.
pub fn list(
    manifest: &Manifest,
    selection: &Selection,
    options: &ListOptions,
) -> Result<Vec<String>> {
    let types = resource_types(options)?;
    let selected = selection.resolve_members(manifest)?;
    let mut lines = Vec::with_capacity(selected.len());
    // A BTreeSet of unique_ids: already in dbt's order (sorted by unique_id).
    for id in selected {
        let Some(member) = Member::find(manifest, id) else {
            continue;
        };
        if !types.contains(&member.resource_type()) {
            continue;
        }
        lines.push(match options.output {
            ListOutput::Selector => member.selector(),
            ListOutput::Name => member.search_name(),
            ListOutput::Path => member.original_file_path().to_string(),
            ListOutput::Json => python_json(&json_of(&member, &options.output_keys)),
        });
    }
    Ok(lines)
}

fn resource_types(options: &ListOptions) -> Result<Vec<&'static str>> {
    let known = |name: &str| -> Result<&'static str> {
        DEFAULT_TYPES
            .iter()
            .chain(&["analysis"])
            .find(|t| t.eq_ignore_ascii_case(name))
            .copied()
            .ok_or_else(|| {
                Error::new(ErrorKind::Usage, format!("unknown resource type `{name}`")).with_hint(
                    format!(
                        "use one of {}, analysis, default, all",
                        DEFAULT_TYPES.join(", ")
                    ),
                )
            })
    };
    let mut types: Vec<&'static str> = Vec::new();
    if options.resource_types.is_empty() {
        types.extend(DEFAULT_TYPES);
    }
    for name in &options.resource_types {
        match name.to_ascii_lowercase().as_str() {
            "all" => types.extend(DEFAULT_TYPES.iter().chain(&["analysis"])),
            "default" => types.extend(DEFAULT_TYPES),
            _ => types.push(known(name)?),
        }
    }
    for name in &options.exclude_resource_types {
        let excluded = known(name)?;
        types.retain(|t| *t != excluded);
    }
    Ok(types)
}

/// The member's manifest entry cut to the keys `ls` shows, in the entry's order.
fn json_of(member: &Member, output_keys: &[String]) -> Json {
    let full = member.to_json();
    let Json::Object(entry) = full else {
        return Json::Object(Map::new());
    };
    let mut out = Map::new();
    if output_keys.is_empty() {
        for (key, value) in entry {
            if JSON_KEYS.contains(&key.as_str()) {
                out.insert(key, value);
            }
        }
        return Json::Object(out);
    }
    for key in output_keys {
        if key.contains('.') {
            // dbt leaves out a dotted key that is missing or null.
            let mut value = Some(&Json::Object(entry.clone()));
            for part in key.split('.') {
                value = value.and_then(|v| v.get(part));
            }
            if let Some(value) = value.filter(|v| !v.is_null()) {
                out.insert(key.clone(), value.clone());
            }
        } else if let Some(value) = entry.get(key) {
            out.insert(key.clone(), value.clone());
        }
    }
    Json::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_as_python_dumps_it() {
        let value = json!({"a": [1, true, null], "b": "é\n\"x\"", "c": {}, "d": "😀"});
        assert_eq!(
            python_json(&value),
            r#"{"a": [1, true, null], "b": "\u00e9\n\"x\"", "c": {}, "d": "\ud83d\ude00"}"#
        );
    }
}
