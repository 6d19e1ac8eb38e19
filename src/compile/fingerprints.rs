//! What each node of a compile reads beyond its own file: the macros it
//! reaches and the vars and env vars it reads, with a fingerprint (a digest,
//! never the value) of each. Written beside manifest.json as
//! weir_state.json, so that a later `--state` comparison (select::state) can
//! tell a node whose macro or var changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value as Json;

use super::Compiled;
use crate::base::hash::sha256_hex;
use crate::project::{Project, ProjectFile};

/// The file beside manifest.json holding what the manifest cannot: which
/// macros, vars and env vars each node uses, and fingerprints of their values.
pub const FINGERPRINTS_FILE: &str = "weir_state.json";
pub const FINGERPRINTS_VERSION: u64 = 1;

/// For each node: the macros it reaches and the vars and env vars it reads,
/// with a fingerprint of each one's definition or value.
pub struct Fingerprints {
    /// Shared by the nodes of one text: the tests of one kind all read
    /// `{{ test_unique(**_dbt_generic_test_kwargs) }}`.
    nodes: BTreeMap<String, Arc<NodePrints>>,
}

/// The fingerprints of what one node reaches: by name, the macros it calls
/// (directly or through other macros), and the `var:<name>` and
/// `env_var:<name>` values it reads.
#[derive(Default, Serialize)]
pub struct NodePrints {
    pub macros: BTreeMap<String, String>,
    pub vars: BTreeMap<String, String>,
}

impl Fingerprints {
    pub fn of(compiled: &Compiled) -> Fingerprints {
        let macros = MacroIndex::new(&compiled.project);
        let mut vars = compiled.project.vars.clone();
        vars.extend(compiled.cli_vars.clone());
        // The value a call sees: the var or env var, else the call's own
        // literal default; hashed, as a fingerprint must not reveal it.
        let var_print = |name: &str, default: &Option<String>| match vars.get(name) {
            Some(value) => sha256_hex(&value.to_string()),
            None => sha256_hex(&default_value(default.clone())),
        };
        let env_var_print =
            |name: &str, default: &Option<String>| match crate::base::env_vars::env_var(name) {
                Some(value) => sha256_hex(&Json::String(value).to_string()),
                None => sha256_hex(&default_value(default.clone())),
            };
        let mut text_index: HashMap<&str, usize> = HashMap::new();
        let mut texts: Vec<&str> = Vec::new();
        let node_texts: Vec<(&String, usize)> = compiled
            .manifest
            .nodes
            .values()
            .map(|node| {
                let index = *text_index.entry(&node.raw_code).or_insert_with(|| {
                    texts.push(&node.raw_code);
                    texts.len() - 1
                });
                (&node.unique_id, index)
            })
            .collect();
        let prints = crate::base::parallel::map(&texts, |text| {
            let mut prints = NodePrints::default();
            let own = TextCalls::of(text);
            let reached = macros.reached_from(&own.macros);
            let mut calls = vec![&own];
            for name in &reached {
                let info = &macros.by_name[name.as_str()];
                prints.macros.insert(name.clone(), info.hash.clone());
                calls.push(&info.calls);
            }
            for text in calls {
                for (name, default) in &text.vars {
                    prints
                        .vars
                        .insert(format!("var:{name}"), var_print(name, default));
                }
                for (name, default) in &text.env_vars {
                    prints
                        .vars
                        .insert(format!("env_var:{name}"), env_var_print(name, default));
                }
            }
            Arc::new(prints)
        });
        let nodes = node_texts
            .into_iter()
            .map(|(id, index)| (id.clone(), Arc::clone(&prints[index])))
            .collect();
        Fingerprints { nodes }
    }

    /// What node `unique_id` reaches and reads, with their fingerprints.
    pub fn node(&self, unique_id: &str) -> Option<&NodePrints> {
        self.nodes.get(unique_id).map(|prints| &**prints)
    }

    /// weir_state.json's text, for a compile for `target_name`.
    pub fn to_json(&self, target_name: &str) -> String {
        serde_json::to_string(&FingerprintsOut {
            version: FINGERPRINTS_VERSION,
            target_name,
            nodes: &self.nodes,
        })
        .expect("fingerprints serialize")
    }
}

/// weir_state.json as written.
#[derive(Serialize)]
struct FingerprintsOut<'a> {
    version: u64,
    target_name: &'a str,
    nodes: &'a BTreeMap<String, Arc<NodePrints>>,
}

/// What a text calls: macros by name, and `var`/`env_var` with a literal name
/// (and default).
#[derive(Default)]
struct TextCalls {
    macros: BTreeSet<String>,
    vars: BTreeSet<(String, Option<String>)>,
    env_vars: BTreeSet<(String, Option<String>)>,
}

impl TextCalls {
    fn of(text: &str) -> TextCalls {
        TextCalls {
            macros: called_names(text),
            vars: calls_with_string(text, "var"),
            env_vars: calls_with_string(text, "env_var"),
        }
    }
}

/// A macro name's fingerprint (all its definitions) and what they call.
struct MacroInfo {
    hash: String,
    calls: TextCalls,
}

/// The project's macros (its own and its packages'), by name, each body
/// scanned once: thousands of nodes call the same few macros.
struct MacroIndex {
    by_name: HashMap<String, MacroInfo>,
}

impl MacroIndex {
    fn new(project: &Project) -> MacroIndex {
        let mut bodies: HashMap<String, Vec<String>> = HashMap::new();
        let mut files: Vec<&ProjectFile> = project.macros.iter().collect();
        for package in &project.packages {
            files.extend(package.macros.iter());
        }
        for file in files {
            for (name, body) in macro_definitions(&file.text) {
                bodies.entry(name).or_default().push(body);
            }
        }
        let by_name = bodies
            .into_iter()
            .map(|(name, bodies)| {
                let mut calls = TextCalls::default();
                for body in &bodies {
                    let TextCalls {
                        macros,
                        vars,
                        env_vars,
                    } = TextCalls::of(body);
                    calls.macros.extend(macros);
                    calls.vars.extend(vars);
                    calls.env_vars.extend(env_vars);
                }
                let hash = sha256_hex(&bodies.join("\n\u{0}\n"));
                (name, MacroInfo { hash, calls })
            })
            .collect();
        MacroIndex { by_name }
    }

    /// The project's macros among `called`, and the macros they call, transitively.
    fn reached_from(&self, called: &BTreeSet<String>) -> BTreeSet<String> {
        let mut reached = BTreeSet::new();
        let mut stack: Vec<&String> = called.iter().collect();
        while let Some(name) = stack.pop() {
            let Some(info) = self.by_name.get(name) else {
                continue;
            };
            if reached.insert(name.clone()) {
                stack.extend(info.calls.macros.iter().filter(|n| !reached.contains(*n)));
            }
        }
        reached
    }
}

/// `{% macro name(...) %} ... {% endmacro %}` blocks of a file, and `{% test
/// name(...) %}` blocks as the `test_name` macros dbt makes of them.
fn macro_definitions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{%") {
        let after = rest[start + 2..].trim_start_matches('-').trim_start();
        let (keyword, end_tag) = if let Some(a) = after.strip_prefix("macro") {
            (a, "endmacro")
        } else if let Some(a) = after.strip_prefix("test") {
            (a, "endtest")
        } else {
            rest = &rest[start + 2..];
            continue;
        };
        if !keyword.starts_with(char::is_whitespace) {
            rest = &rest[start + 2..];
            continue;
        }
        let name: String = keyword
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let block = &rest[start..];
        let end = block
            .find(end_tag)
            .map_or(block.len(), |i| i + end_tag.len());
        let name = if end_tag == "endtest" {
            format!("test_{name}")
        } else {
            name
        };
        if !name.is_empty() && name != "test_" {
            out.push((name, block[..end].to_string()));
        }
        rest = &block[end..];
    }
    out
}

/// Names called in Jinja-ish text: `name(`, `pkg.name(`, and
/// `adapter.dispatch('name'` (the name a dispatch resolves from).
fn called_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphabetic() || bytes[i] == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let name = &text[start..i];
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'(' {
                out.insert(name.to_string());
            }
        } else {
            i += 1;
        }
    }
    out.extend(called_with_string(text, "dispatch"));
    out
}

/// A literal default as the value it gives, or `unset`.
fn default_value(default: Option<String>) -> String {
    default.map_or("unset".to_string(), |d| Json::String(d).to_string())
}

/// The first string argument of each `function('...')` call in `text`.
fn called_with_string(text: &str, function: &str) -> BTreeSet<String> {
    calls_with_string(text, function)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Each `function('name', 'default')` call in `text`: the name, and the
/// default when it is a string literal.
fn calls_with_string(text: &str, function: &str) -> BTreeSet<(String, Option<String>)> {
    let mut out = BTreeSet::new();
    let mut from = 0;
    while let Some(found) = text[from..].find(function) {
        let at = from + found;
        from = at + function.len();
        let before_ok = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        if !before_ok {
            continue;
        }
        let rest = text[from..].trim_start();
        let Some(rest) = rest.strip_prefix('(') else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        let Some(end) = rest[1..].find(quote) else {
            continue;
        };
        let name = rest[1..1 + end].to_string();
        let after = rest[2 + end..].trim_start();
        let default = after.strip_prefix(',').and_then(|a| {
            let a = a.trim_start();
            let quote = a.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            let end = a[1..].find(quote)?;
            let literal_ends = a[2 + end..].trim_start().starts_with(')');
            literal_ends.then(|| a[1..1 + end].to_string())
        });
        out.insert((name, default));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_blocks_and_test_blocks_are_found() {
        let text = "{% macro cents(x) -%} round({{ x }}) {%- endmacro %}\n\
                    {%- test positive(model, column_name) %} select 1 {% endtest %}";
        let defs = macro_definitions(text);
        let names: Vec<&str> = defs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["cents", "test_positive"]);
        assert!(defs[0].1.ends_with("endmacro"));
    }

    #[test]
    fn calls_vars_and_env_vars_are_read_from_text() {
        let text = "{{ shop.cents('a') }} {{ var('days', 3) }} {{ env_var(\"HOME\") }} \
                    {{ adapter.dispatch('fmt', 'shop')() }} {{ myvar('x') }}";
        let names = called_names(text);
        assert!(names.contains("cents") && names.contains("fmt") && names.contains("var"));
        assert_eq!(
            called_with_string(text, "var"),
            BTreeSet::from(["days".to_string()])
        );
        assert_eq!(
            called_with_string(text, "env_var"),
            BTreeSet::from(["HOME".to_string()])
        );
    }
}
