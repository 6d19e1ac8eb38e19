//! Tasks: one node on one target, with what an orchestrator needs to run it
//! on its own: its upstream tasks, its relation and its retry budget.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::manifest::{Manifest, Materialization, Relation, ResourceType};
use crate::select::Selection;

/// How many times a failed task is retried on a target, unless the node's
/// own `retries` config says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub default_retries: u32,
}

impl RetryPolicy {
    /// The built-in policy: production retries most, development never.
    pub fn for_target(target_name: &str) -> RetryPolicy {
        let default_retries = match target_name {
            "prod" | "production" => 3,
            "staging" | "stage" => 1,
            _ => 0,
        };
        RetryPolicy { default_retries }
    }
}

/// One node to run, as a unit an orchestrator schedules.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub unique_id: String,
    pub name: String,
    pub resource_type: ResourceType,
    pub materialization: Materialization,
    pub relation: Relation,
    /// unique_ids of the tasks of this plan that must finish first.
    pub upstream: Vec<String>,
    pub retries: u32,
    pub tags: Vec<String>,
}

/// The tasks of a selection on a target, parents before children.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub target_name: String,
    pub tasks: Vec<Task>,
}

impl Plan {
    /// Ephemeral models are inlined into their children, so they get no task;
    /// a task depends on the nearest selected non-ephemeral ancestors.
    /// Analyses are compiled, never run.
    pub fn build(manifest: &Manifest, selection: &Selection, policy: &RetryPolicy) -> Result<Plan> {
        let selected = selection.resolve(manifest)?;
        let runnable: HashSet<&str> = selected
            .iter()
            .map(String::as_str)
            .filter(|id| {
                let node = &manifest.nodes[*id];
                node.materialization != Materialization::Ephemeral
                    && node.resource_type != ResourceType::Analysis
            })
            .collect();
        let mut tasks: Vec<Task> = selected
            .iter()
            .filter(|id| runnable.contains(id.as_str()))
            .map(|id| {
                let node = &manifest.nodes[id];
                Task {
                    unique_id: node.unique_id.clone(),
                    name: task_name(node),
                    resource_type: node.resource_type,
                    materialization: node.materialization.clone(),
                    relation: node.relation.clone(),
                    upstream: upstream_tasks(manifest, id, &runnable),
                    retries: node.retries.unwrap_or(policy.default_retries),
                    tags: node.tags.clone(),
                }
            })
            .collect();
        add_test_edges(manifest, &mut tasks);
        Ok(Plan {
            target_name: manifest.metadata.target_name.clone(),
            tasks,
        })
    }
}

/// The node's name, unique among the tasks (an Airflow task_id): the
/// versions of a model share its name, so each adds `_v<version>`.
fn task_name(node: &crate::manifest::Node) -> String {
    match &node.version {
        Some(version) => format!(
            "{}_v{}",
            node.name,
            crate::project::versions::version_text(version).replace('.', "_")
        ),
        None => node.name.clone(),
    }
}

/// The runnable ancestors reached without passing through another runnable
/// node: direct parents, or the parents of an ephemeral parent.
fn upstream_tasks(manifest: &Manifest, unique_id: &str, runnable: &HashSet<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<&str> = manifest
        .parent_map
        .get(unique_id)
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let mut seen = HashSet::new();
    while let Some(parent) = stack.pop() {
        if !seen.insert(parent) {
            continue;
        }
        if runnable.contains(parent) {
            out.push(parent.to_string());
        } else if manifest
            .nodes
            .get(parent)
            .is_some_and(|n| n.materialization == Materialization::Ephemeral)
        {
            stack.extend(
                manifest
                    .parent_map
                    .get(parent)
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            );
        }
    }
    out.sort();
    out
}

/// dbt build's extra edges: a node waits for the tests of the nodes above it,
/// so a failing test stops what is built on what it tests. A test gates each
/// task that has all of the test's parents upstream (a relationships test
/// has two), unless the task already waits for it through such a task.
fn add_test_edges(manifest: &Manifest, tasks: &mut [Task]) {
    let position: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.resource_type != ResourceType::Test)
        .map(|(i, t)| (t.unique_id.as_str(), i))
        .collect();
    let mut below: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut edges: Vec<(usize, String)> = Vec::new();
    for test in tasks
        .iter()
        .filter(|t| t.resource_type == ResourceType::Test)
    {
        let parents = manifest
            .parent_map
            .get(&test.unique_id)
            .map_or(&[][..], Vec::as_slice);
        let mut gated: Option<HashSet<&str>> = None;
        for parent in parents {
            let under = below
                .entry(parent.as_str())
                .or_insert_with(|| descendants(manifest, parent));
            gated = Some(match gated {
                None => under.clone(),
                Some(so_far) => so_far.intersection(under).copied().collect(),
            });
        }
        let Some(gated) = gated else { continue };
        for id in &gated {
            let Some(&index) = position.get(id) else {
                continue;
            };
            let through_another = manifest.parent_map.get(*id).is_some_and(|parents| {
                parents
                    .iter()
                    .any(|p| gated.contains(p.as_str()) && position.contains_key(p.as_str()))
            });
            if !through_another {
                edges.push((index, test.unique_id.clone()));
            }
        }
    }
    for (index, test) in edges {
        tasks[index].upstream.push(test);
    }
    for task in tasks.iter_mut() {
        task.upstream.sort();
        task.upstream.dedup();
    }
}

/// Every node below `unique_id`, tests left out.
fn descendants<'m>(manifest: &'m Manifest, unique_id: &str) -> HashSet<&'m str> {
    let mut out = HashSet::new();
    let mut stack: Vec<&'m str> = Vec::new();
    let children = |id: &str| -> Vec<&'m str> {
        manifest
            .child_map
            .get(id)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|c| {
                manifest
                    .nodes
                    .get(*c)
                    .is_some_and(|n| n.resource_type != ResourceType::Test)
            })
            .collect()
    };
    stack.extend(children(unique_id));
    while let Some(id) = stack.pop() {
        if out.insert(id) {
            stack.extend(children(id));
        }
    }
    out
}
