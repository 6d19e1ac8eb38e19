//! One node built once, as an orchestrator's task builds it: through the
//! same guard as `weir run`, so an Airflow task is refused exactly where the
//! CLI would be, before any SQL.

use super::Guard;
use crate::compile::Compiled;
use crate::error::Result;
use crate::plan::{Plan, Task};
use crate::results::NodeResult;

/// How one node is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeOptions {
    /// `--store-failures`: a test keeps its failing rows in the audit schema.
    pub store_failures: bool,
}

/// Build `unique_id` once on the compiled target (the orchestrator retries).
/// A failure is an `Err` (Transient or Database), scrubbed of secrets.
pub fn run_node(
    compiled: &Compiled,
    guard: &Guard,
    unique_id: &str,
    options: NodeOptions,
) -> Result<NodeResult> {
    let node = compiled.manifest.node(unique_id)?;
    let plan = Plan {
        target_name: compiled.target.name.clone(),
        tasks: vec![Task {
            unique_id: node.unique_id.clone(),
            name: node.name.clone(),
            resource_type: node.resource_type,
            materialization: node.materialization.clone(),
            relation: node.relation.clone(),
            upstream: Vec::new(),
            retries: 0,
            tags: node.tags.clone(),
        }],
    };
    // A protected target runs only where CI=true or WEIR_ALLOW_PROTECTED is set.
    guard.check(compiled, &plan, false, options.store_failures)?;
    crate::runner::run_node(compiled, unique_id, options.store_failures)
}
