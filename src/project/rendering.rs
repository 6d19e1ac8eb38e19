//! Which YAML values dbt renders with Jinja, and rendering them: in
//! dbt_project.yml every value but the hooks, `vars:` and `query-comment`;
//! in properties files every value of an entry but descriptions, data
//! tests (whose configs the compiler renders), `loaded_at_query` and config
//! hooks (dbt's SchemaYamlRenderer). The rendering itself (target, var,
//! env_var) is the caller's: a project knows no Jinja.

use std::path::Path;

use serde_json::Value as Json;

use super::yaml::{self, Kind, Mapping, Yaml};
use crate::error::Result;

/// Renders one YAML string value natively (see jinja::native).
pub trait Render: Sync {
    /// `package`: the project the value belongs to (its vars);
    /// `in_project_file`: dbt_project.yml, where dbt's `var()` sees only --vars.
    fn render(&self, package: &str, in_project_file: bool, text: &str) -> Result<Json>;
}

/// True when a string holds Jinja.
pub fn has_jinja(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// dbt's rule for dbt_project.yml (`keypath` from the top of the file).
pub fn project_key_rendered(keypath: &[String]) -> bool {
    let Some(first) = keypath.first() else {
        return true;
    };
    if matches!(
        first.as_str(),
        "on-run-start" | "on-run-end" | "query-comment" | "vars"
    ) {
        return false;
    }
    let configs = ["seeds", "models", "snapshots", "tests", "data_tests"];
    !(configs.contains(&first.as_str())
        && keypath.iter().any(|k| {
            matches!(
                k.trim_start_matches(['+', ' ']),
                "pre-hook" | "post-hook" | "pre_hook" | "post_hook"
            )
        }))
}

fn norender_key(keypath: &[String]) -> bool {
    const LATER: [&str; 4] = ["tests", "data_tests", "description", "loaded_at_query"];
    let at = |i: usize| keypath.get(i).map(String::as_str);
    if at(0).is_some_and(|k| LATER.contains(&k)) {
        return true;
    }
    if keypath.len() == 2 && at(1).is_some_and(|k| LATER.contains(&k)) {
        return true;
    }
    if at(0) == Some("config")
        && at(1).is_some_and(|k| matches!(k, "pre_hook" | "post_hook" | "loaded_at_query"))
    {
        return true;
    }
    if keypath.len() == 5 && at(4) == Some("description") {
        return true;
    }
    at(0).is_some_and(|k| matches!(k, "columns" | "dimensions" | "measures" | "entities"))
        && at(2).is_some_and(|k| matches!(k, "tests" | "data_tests" | "description"))
}

/// dbt's rule for one entry of the `section` (models, sources, ...) of a
/// properties file (`keypath` from the entry).
pub fn properties_key_rendered(section: &str, keypath: &[String]) -> bool {
    let Some(first) = keypath.first() else {
        return true;
    };
    match section {
        "sources" => {
            if matches!(first.as_str(), "description" | "loaded_at_query") {
                return false;
            }
            if first == "config" && keypath.get(1).is_some_and(|k| k == "loaded_at_query") {
                return false;
            }
            !(first == "tables" && norender_key(keypath.get(2..).unwrap_or_default()))
        }
        "macros" if first == "arguments" => !norender_key(&keypath[1..]),
        _ => !norender_key(keypath),
    }
}

/// `node` with every string the rule allows rendered. A rendered value keeps
/// the line of the one written; an error names it.
pub fn render_tree(
    node: &Yaml,
    keypath: &mut Vec<String>,
    rule: &dyn Fn(&[String]) -> bool,
    render: &dyn Fn(&str) -> Result<Json>,
    path: &Path,
    text: &str,
) -> Result<Yaml> {
    let kind = match node.kind() {
        Kind::String(s) if has_jinja(s) && rule(keypath) => {
            let value = render(s).map_err(|e| yaml::error_at(e, path, text, node))?;
            yaml::from_json(&value).kind().clone()
        }
        Kind::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                keypath.push(i.to_string());
                out.push(render_tree(item, keypath, rule, render, path, text)?);
                keypath.pop();
            }
            Kind::Sequence(out)
        }
        Kind::Mapping(map) => {
            let mut out = Mapping::new();
            for (key, value) in map {
                keypath.push(yaml::key_string(key));
                let value = render_tree(value, keypath, rule, render, path, text)?;
                keypath.pop();
                out.insert(key.clone(), value);
            }
            Kind::Mapping(out)
        }
        other => other.clone(),
    };
    Ok(Yaml::at(node.line(), kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn the_rule_keeps_descriptions_tests_and_hooks_as_written() {
        let rendered = |section, parts: &[&str]| properties_key_rendered(section, &path(parts));
        assert!(rendered("models", &["config", "alias"]));
        assert!(rendered("models", &["versions", "0", "config", "alias"]));
        assert!(!rendered("models", &["description"]));
        assert!(!rendered("models", &["data_tests", "0", "unique"]));
        assert!(!rendered("models", &["columns", "0", "description"]));
        assert!(!rendered("models", &["config", "post_hook"]));
        assert!(rendered("sources", &["schema"]));
        assert!(rendered("sources", &["tables", "0", "identifier"]));
        assert!(!rendered("sources", &["tables", "0", "description"]));
        assert!(!rendered(
            "sources",
            &["tables", "0", "columns", "1", "tests"]
        ));
        assert!(!rendered("sources", &["loaded_at_query"]));
        let project = |parts: &[&str]| project_key_rendered(&path(parts));
        assert!(project(&["models", "shop", "+enabled"]));
        assert!(!project(&["models", "shop", "+post-hook"]));
        assert!(!project(&["vars", "x"]));
        assert!(!project(&["on-run-start", "0"]));
    }

    #[test]
    fn rendered_values_keep_their_lines() {
        let text = "a: \"{{ x }}\"\nb:\n  - \"{{ y }}\"\n";
        let doc = yaml::parse(text, Path::new("f.yml")).unwrap();
        let render = |s: &str| -> Result<Json> {
            match s {
                "{{ x }}" => Ok(Json::Bool(true)),
                _ => Err(crate::error::Error::new(
                    crate::error::ErrorKind::Template,
                    "undefined",
                )),
            }
        };
        let all = |_: &[String]| true;
        let err = render_tree(
            &doc,
            &mut Vec::new(),
            &all,
            &render,
            Path::new("f.yml"),
            text,
        )
        .unwrap_err();
        assert_eq!(err.line(), Some(3), "{err}");
        let only_a = |k: &[String]| k.first().is_some_and(|k| k == "a");
        let out = render_tree(
            &doc,
            &mut Vec::new(),
            &only_a,
            &render,
            Path::new("f.yml"),
            text,
        )
        .unwrap();
        assert_eq!(out.get("a").unwrap().as_bool(), Some(true));
        assert_eq!(out.get("a").unwrap().line(), 1);
        assert_eq!(out.get("b").unwrap().as_sequence().unwrap()[0].line(), 3);
    }
}
