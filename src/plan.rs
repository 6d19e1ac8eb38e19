//! Tasks: one node on one target, with what an orchestrator needs to run it
//! on its own: its upstream tasks, its relation and its retry budget.

use std::collections::HashSet;

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
    pub fn build(manifest: &Manifest, selection: &Selection, policy: &RetryPolicy) -> Result<Plan> {
        let selected = selection.resolve(manifest)?;
        // Tests become tasks once the runner can run them (issue 4); until
        // then a plan holds the models and seeds of the selection.
        let runnable: HashSet<&str> = selected
            .iter()
            .map(String::as_str)
            .filter(|id| {
                let node = &manifest.nodes[*id];
                node.materialization != Materialization::Ephemeral
                    && node.resource_type != ResourceType::Test
            })
            .collect();
        let tasks = selected
            .iter()
            .filter(|id| runnable.contains(id.as_str()))
            .map(|id| {
                let node = &manifest.nodes[id];
                Task {
                    unique_id: node.unique_id.clone(),
                    name: node.name.clone(),
                    resource_type: node.resource_type,
                    materialization: node.materialization.clone(),
                    relation: node.relation.clone(),
                    upstream: upstream_tasks(manifest, id, &runnable),
                    retries: node.retries.unwrap_or(policy.default_retries),
                    tags: node.tags.clone(),
                }
            })
            .collect();
        Ok(Plan {
            target_name: manifest.metadata.target_name.clone(),
            tasks,
        })
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
