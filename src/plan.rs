//! Tasks: one node on one target, with what an orchestrator needs to run it
//! on its own: its upstream tasks, its relation and its retry budget.

mod edges;

use crate::error::Result;
use crate::manifest::{Manifest, Materialization, Node, Relation, ResourceType};
use crate::select::Selection;
use crate::target::Environment;

/// How many times a failed task is retried on a target, unless the node's
/// own `retries` config says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub default_retries: u32,
}

impl RetryPolicy {
    /// The built-in policy: production retries most, development never.
    pub fn for_target(target_name: &str) -> RetryPolicy {
        let default_retries = match Environment::of(target_name) {
            Environment::Production => 3,
            Environment::Staging => 1,
            Environment::Ci | Environment::Development => 0,
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
    /// analyses are compiled, never run. A task waits for its nearest
    /// selected ancestors, and for the selected tests above it (see [`edges`]).
    pub fn build(manifest: &Manifest, selection: &Selection, policy: &RetryPolicy) -> Result<Plan> {
        let selected = selection.resolve(manifest)?;
        let graph = edges::Graph::new(manifest);
        let runnable: Vec<(&Node, usize)> = selected
            .iter()
            .map(|id| &manifest.nodes[id])
            .filter(|node| {
                node.materialization != Materialization::Ephemeral
                    && node.resource_type != ResourceType::Analysis
            })
            .filter_map(|node| Some((node, graph.get(&node.unique_id)?)))
            .collect();
        let numbers: Vec<usize> = runnable.iter().map(|(_, number)| *number).collect();
        let upstream = graph.upstream(&numbers);
        let gates = graph.test_gates(&numbers, &upstream);
        let tasks = runnable
            .iter()
            .zip(upstream.iter().zip(gates))
            .map(|((node, _), (upstream, gates))| {
                let mut upstream: Vec<String> = upstream
                    .iter()
                    .chain(&gates)
                    .map(|&n| graph.id(n).to_string())
                    .collect();
                upstream.sort();
                upstream.dedup();
                Task {
                    unique_id: node.unique_id.clone(),
                    name: task_name(node),
                    resource_type: node.resource_type,
                    materialization: node.materialization.clone(),
                    relation: node.relation.clone(),
                    upstream,
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

    /// `build`'s tasks for the selected exposures, as dbt lists them: each
    /// waits for its parents in the plan, and is `no-op` when they
    /// succeeded, skipped when one failed.
    pub fn add_exposures(&mut self, manifest: &Manifest, selection: &Selection) -> Result<()> {
        if manifest.exposures.is_empty() {
            return Ok(());
        }
        let members = match selection.selects_everything() {
            true => manifest.exposures.keys().map(String::as_str).collect(),
            false => selection.resolve_members(manifest)?,
        };
        let planned: std::collections::HashSet<&str> =
            self.tasks.iter().map(|t| t.unique_id.as_str()).collect();
        let mut exposures = Vec::new();
        for exposure in manifest.exposures.values() {
            if !members.contains(exposure.unique_id.as_str()) {
                continue;
            }
            exposures.push(Task {
                unique_id: exposure.unique_id.clone(),
                name: exposure.name.clone(),
                resource_type: ResourceType::Exposure,
                materialization: Materialization::Other("exposure".to_string()),
                relation: Relation {
                    quoting: Default::default(),
                    database: String::new(),
                    schema: String::new(),
                    identifier: exposure.name.clone(),
                },
                upstream: exposure
                    .depends_on_nodes
                    .iter()
                    .filter(|id| planned.contains(id.as_str()))
                    .cloned()
                    .collect(),
                retries: 0,
                tags: exposure.tags.clone(),
            });
        }
        self.tasks.extend(exposures);
        Ok(())
    }
}

/// The node's name, unique among the tasks (an Airflow task_id): the
/// versions of a model share its name, so each adds `_v<version>`.
fn task_name(node: &Node) -> String {
    match &node.version {
        Some(version) => format!(
            "{}_v{}",
            node.name,
            crate::project::versions::version_text(version).replace('.', "_")
        ),
        None => node.name.clone(),
    }
}
