//! Slim CI: an earlier run's artifacts (`--state DIR`) compared with the
//! project as it is now, for `state:new`, `state:modified[.sub]` and `result:`
//! selection, and for `--defer` to resolve unbuilt parents to their relations.
//!
//! The comparison ignores everything the target decides (resolved schemas,
//! compiled SQL), so a CI build compared against prod's manifest flags only
//! what a change touched. Beyond dbt, it also flags a node when a macro it
//! calls (directly or through other macros) changed, or the value of a `var`
//! or `env_var` it reads. Those facts live in `weir_state.json`, written
//! beside manifest.json by the compile (see compile::fingerprints).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use crate::compile::Compiled;
use crate::compile::fingerprints::{
    FINGERPRINTS_FILE, FINGERPRINTS_VERSION, Fingerprints, NodePrints,
};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Exposure, Manifest, Node, Relation};

/// What changed about a node, as `state:modified.<kind>` selects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// The node's own SQL or CSV file.
    Body,
    /// Its config, except where it is built (materialized, tags, hooks...).
    Configs,
    /// Its configured `database`, `schema` or `alias`.
    Relation,
    /// A macro it calls, directly or through other macros.
    Macros,
    /// The value of a `var` or `env_var` it reads (weir's addition).
    Vars,
}

impl Change {
    pub fn parse(name: &str) -> Option<Change> {
        Some(match name {
            "body" => Change::Body,
            "configs" => Change::Configs,
            "relation" => Change::Relation,
            "macros" => Change::Macros,
            "vars" => Change::Vars,
            _ => return None,
        })
    }
}

/// A node of the state manifest, as much of it as comparison and defer need.
#[derive(Debug, Clone, PartialEq)]
pub struct StateNode {
    pub checksum: String,
    pub raw_code: String,
    pub config: Map<String, Json>,
    pub test_kwargs: Option<Json>,
    pub relation: Option<Relation>,
}

/// An earlier run's artifacts compared with the current project.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    pub dir: PathBuf,
    /// The state manifest's nodes by unique_id.
    pub nodes: BTreeMap<String, StateNode>,
    /// Current nodes absent from the state.
    pub new: BTreeSet<String>,
    /// Current exposures absent from the state: `state:new`, but as in dbt
    /// not `state:modified` (only `state:modified.configs`).
    pub new_exposures: BTreeSet<String>,
    /// Current nodes and exposures that differ from the state, and how (an
    /// exposure whose description, owner, ... changed has no kind).
    pub modified: BTreeMap<String, BTreeSet<Change>>,
    /// Statuses of the state's run_results.json, by unique_id (empty without one).
    pub results: BTreeMap<String, String>,
}

impl State {
    /// Read `<dir>/manifest.json` (and `weir_state.json`, `run_results.json`
    /// when present) and compare them with `compiled`.
    pub fn load(dir: &Path, compiled: &Compiled) -> Result<State> {
        let manifest_path = dir.join("manifest.json");
        let manifest = read_json(&manifest_path)?.ok_or_else(|| {
            Error::new(
                ErrorKind::Usage,
                format!("--state {}: no manifest.json there", dir.display()),
            )
            .with_hint("point --state at the target/ folder of the run to compare with (e.g. prod's artifacts)")
        })?;
        let nodes = state_nodes(&manifest, &manifest_path)?;
        let fingerprints = read_json(&dir.join(FINGERPRINTS_FILE))?
            .filter(|f| f.get("version").and_then(Json::as_u64) == Some(FINGERPRINTS_VERSION));
        let results = match read_json(&dir.join("run_results.json"))? {
            Some(results) => result_statuses(&results),
            None => BTreeMap::new(),
        };
        let current = Fingerprints::of(compiled);
        let mut state = State {
            dir: dir.to_path_buf(),
            nodes,
            results,
            ..State::default()
        };
        for node in compiled.manifest.nodes.values() {
            let Some(old) = state.nodes.get(&node.unique_id) else {
                state.new.insert(node.unique_id.clone());
                continue;
            };
            let mut changes = compare_node(node, old);
            let old_prints = fingerprints
                .as_ref()
                .and_then(|f| f.get("nodes"))
                .and_then(|n| n.get(&node.unique_id));
            changes.extend(compare_prints(current.node(&node.unique_id), old_prints));
            if !changes.is_empty() {
                state.modified.insert(node.unique_id.clone(), changes);
            }
        }
        let old_exposures = manifest.get("exposures").and_then(Json::as_object);
        for exposure in compiled.manifest.exposures.values() {
            let id = &exposure.unique_id;
            match old_exposures.and_then(|old| old.get(id)) {
                None => {
                    state.new_exposures.insert(id.clone());
                }
                Some(old) => {
                    if let Some(changes) = compare_exposure(exposure, old) {
                        state.modified.insert(id.clone(), changes);
                    }
                }
            }
        }
        Ok(state)
    }

    /// `state:new`, `state:modified` (new nodes included, new exposures
    /// not, as in dbt) and `state:modified.<kind>`; `value` is what follows
    /// `state:`.
    pub fn select(&self, value: &str) -> Result<BTreeSet<String>> {
        let mut parts = value.split('.');
        let method = parts.next().unwrap_or("");
        let kind = parts.next();
        if parts.next().is_some() {
            return Err(unknown_state_selector(value));
        }
        match (method, kind) {
            ("new", None) => Ok(self.new.union(&self.new_exposures).cloned().collect()),
            ("modified", None) => Ok(self.modified.keys().chain(&self.new).cloned().collect()),
            ("modified", Some(kind)) => {
                let kind = Change::parse(kind).ok_or_else(|| unknown_state_selector(value))?;
                // dbt counts what is new as changed in its body, configs and
                // relation (a new exposure only in its configs).
                let new: Vec<&String> = match kind {
                    Change::Body | Change::Relation => self.new.iter().collect(),
                    Change::Configs => self.new.iter().chain(&self.new_exposures).collect(),
                    Change::Macros | Change::Vars => Vec::new(),
                };
                Ok(self
                    .modified
                    .iter()
                    .filter(|(_, changes)| changes.contains(&kind))
                    .map(|(id, _)| id)
                    .chain(new)
                    .cloned()
                    .collect())
            }
            _ => Err(unknown_state_selector(value)),
        }
    }

    /// `result:<status>`: nodes whose status in the state's run_results.json
    /// was `status` (error, fail, warn, pass, success, skipped).
    pub fn select_result(&self, status: &str) -> Result<BTreeSet<String>> {
        if self.results.is_empty() {
            return Err(Error::new(
                ErrorKind::Selection,
                format!(
                    "`result:{status}` needs a run_results.json in the --state folder {}",
                    self.dir.display()
                ),
            ));
        }
        Ok(self
            .results
            .iter()
            .filter(|(_, s)| s.as_str() == status)
            .map(|(id, _)| id.clone())
            .collect())
    }
}

fn unknown_state_selector(value: &str) -> Error {
    Error::new(
        ErrorKind::Selection,
        format!("unknown state selector `state:{value}`"),
    )
    .with_hint(
        "use state:new, state:modified, or state:modified.body / .configs / .relation / .macros / .vars",
    )
}

fn read_json(path: &Path) -> Result<Option<Json>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::new(ErrorKind::Usage, format!("not valid JSON: {e}"))
            .in_file(path)
            .at_line(e.line())
    })
}

fn state_nodes(manifest: &Json, path: &Path) -> Result<BTreeMap<String, StateNode>> {
    let nodes = manifest
        .get("nodes")
        .and_then(Json::as_object)
        .ok_or_else(|| {
            Error::new(ErrorKind::Usage, "not a manifest: it has no `nodes`").in_file(path)
        })?;
    Ok(nodes
        .iter()
        .map(|(id, node)| {
            let text = |key: &str| node.get(key).and_then(Json::as_str).map(str::to_string);
            let relation = match (text("database"), text("schema"), text("alias")) {
                (Some(database), Some(schema), Some(identifier))
                    if node.get("relation_name").is_some_and(|r| !r.is_null()) =>
                {
                    Some(Relation {
                        quoting: Default::default(),
                        database,
                        schema,
                        identifier,
                    })
                }
                _ => None,
            };
            let state_node = StateNode {
                checksum: node
                    .pointer("/checksum/checksum")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string(),
                raw_code: text("raw_code").unwrap_or_default(),
                config: node
                    .get("config")
                    .and_then(Json::as_object)
                    .cloned()
                    .unwrap_or_default(),
                test_kwargs: node.pointer("/test_metadata/kwargs").cloned(),
                relation,
            };
            (id.clone(), state_node)
        })
        .collect())
}

fn result_statuses(results: &Json) -> BTreeMap<String, String> {
    results
        .get("results")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                r.get("unique_id")?.as_str()?.to_string(),
                r.get("status")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Config keys that say where a node is built: `.relation`, not `.configs`.
const RELATION_KEYS: [&str; 3] = ["database", "schema", "alias"];

/// What the two manifests alone tell: body, configs, relation. Only what the
/// project files say is compared, never what the target resolved.
fn compare_node(node: &Node, old: &StateNode) -> BTreeSet<Change> {
    let mut changes = BTreeSet::new();
    let body_changed = if !node.checksum.is_empty() && !old.checksum.is_empty() {
        node.checksum != old.checksum
    } else {
        node.raw_code.trim() != old.raw_code.trim()
            || node.test.as_ref().map(|t| Json::Object(t.kwargs.clone())) != old.test_kwargs
    };
    if body_changed {
        changes.insert(Change::Body);
    }
    let split = |config: &Map<String, Json>| {
        let mut relation = Map::new();
        let mut rest = config.clone();
        for key in RELATION_KEYS {
            relation.insert(key.to_string(), rest.remove(key).unwrap_or(Json::Null));
        }
        (relation, rest)
    };
    let (relation_now, configs_now) = split(&node.full_config());
    let (relation_then, configs_then) = split(&old.config);
    if configs_now != configs_then {
        changes.insert(Change::Configs);
    }
    if relation_now != relation_then {
        changes.insert(Change::Relation);
    }
    changes
}

/// An exposure against its state entry, as dbt's `same_contents`: None
/// when its fqn, type, owner, maturity, url, description, label, parents
/// and unrendered config are the same (its own `tags:` and `meta:` are not
/// compared); else the changes, `Configs` when the unrendered config differs.
fn compare_exposure(exposure: &Exposure, old: &Json) -> Option<BTreeSet<Change>> {
    let now = serde_json::to_value(exposure).ok()?;
    let parents = |entry: &Json| -> BTreeSet<String> {
        entry
            .pointer("/depends_on/nodes")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().map(str::to_string))
            .collect()
    };
    let configs_differ = now.get("unrendered_config") != old.get("unrendered_config");
    let same = !configs_differ
        && parents(&now) == parents(old)
        && [
            "fqn",
            "type",
            "owner",
            "maturity",
            "url",
            "description",
            "label",
        ]
        .iter()
        .all(|key| now.get(key) == old.get(key));
    if same {
        return None;
    }
    Some(if configs_differ {
        BTreeSet::from([Change::Configs])
    } else {
        BTreeSet::new()
    })
}

/// Macros and Vars changes of a node (its fingerprints `now`) against its
/// state fingerprints. No fingerprints in the state (an older or foreign
/// manifest) counts as a change for any node that uses a macro or a var:
/// CI then builds more, never less.
fn compare_prints(now: Option<&NodePrints>, old: Option<&Json>) -> BTreeSet<Change> {
    let mut changes = BTreeSet::new();
    let Some(now) = now else {
        return changes;
    };
    let as_map = |key: &str| -> Option<BTreeMap<String, String>> {
        old?.get(key)?.as_object().map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
    };
    match as_map("macros") {
        Some(then) if then == now.macros => {}
        None if now.macros.is_empty() => {}
        _ => {
            changes.insert(Change::Macros);
        }
    }
    match as_map("vars") {
        Some(then) if then == now.vars => {}
        None if now.vars.is_empty() => {}
        _ => {
            changes.insert(Change::Vars);
        }
    }
    changes
}

/// `--defer`: each parent of a selected node that this run does not build
/// and that does not exist on the current target (or any such parent, with
/// `favor_state`) reads the state's relation instead. Rewrites the selected
/// nodes' SQL and the parents' relations in `manifest`; returns the
/// (parent, relation now read) pairs.
pub fn defer(
    manifest: &mut Manifest,
    state: &State,
    selected: &BTreeSet<String>,
    favor_state: bool,
    exists: &mut dyn FnMut(&Relation) -> Result<bool>,
) -> Result<Vec<(String, Relation)>> {
    let mut deferred: BTreeMap<String, (Relation, Relation)> = BTreeMap::new();
    for id in selected {
        let Some(node) = manifest.nodes.get(id) else {
            continue;
        };
        for parent in &node.depends_on_nodes {
            if selected.contains(parent) || deferred.contains_key(parent) {
                continue;
            }
            let Some(parent_node) = manifest.nodes.get(parent) else {
                continue; // a source: the same on every target
            };
            if !parent_node.is_relational() {
                continue;
            }
            let Some(state_relation) = state.nodes.get(parent).and_then(|n| n.relation.clone())
            else {
                continue;
            };
            if state_relation == parent_node.relation {
                continue;
            }
            if favor_state || !exists(&parent_node.relation)? {
                deferred.insert(
                    parent.clone(),
                    (parent_node.relation.clone(), state_relation),
                );
            }
        }
    }
    if deferred.is_empty() {
        return Ok(Vec::new());
    }
    let replacements: Vec<(String, String)> = deferred
        .values()
        .map(|(own, state)| (own.to_string(), state.to_string()))
        .collect();
    for id in selected {
        if let Some(node) = manifest.nodes.get_mut(id) {
            for (own, state) in &replacements {
                if node.compiled_code.contains(own.as_str()) {
                    node.compiled_code = node.compiled_code.replace(own.as_str(), state);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (parent, (_, state_relation)) in deferred {
        if let Some(node) = manifest.nodes.get_mut(&parent) {
            node.relation = state_relation.clone();
        }
        out.push((parent, state_relation));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dbt's rules for what is new: a new node is modified (also its body,
    /// configs and relation), a new exposure only new and configs-modified;
    /// an exposure changed in its description is modified, of no kind.
    #[test]
    fn new_nodes_and_exposures_as_dbt_selects_them() {
        let state = State {
            new: BTreeSet::from(["model.p.new".to_string()]),
            new_exposures: BTreeSet::from(["exposure.p.new".to_string()]),
            modified: BTreeMap::from([("exposure.p.described".to_string(), BTreeSet::new())]),
            ..State::default()
        };
        let ids = |value: &str| state.select(value).unwrap().into_iter().collect::<Vec<_>>();
        assert_eq!(ids("new"), ["exposure.p.new", "model.p.new"]);
        assert_eq!(ids("modified"), ["exposure.p.described", "model.p.new"]);
        assert_eq!(ids("modified.configs"), ["exposure.p.new", "model.p.new"]);
        assert_eq!(ids("modified.body"), ["model.p.new"]);
        assert!(ids("modified.macros").is_empty());
    }

    #[test]
    fn state_selectors_are_checked() {
        let state = State::default();
        assert!(state.select("modified.body").unwrap().is_empty());
        let err = state.select("modified.colour").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown state selector `state:modified.colour`")
        );
        assert!(state.select_result("error").is_err());
    }
}
