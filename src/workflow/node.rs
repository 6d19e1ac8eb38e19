//! One node built once, as an orchestrator's task builds it: through the
//! same guard as `weir run`, so an Airflow task is refused exactly where the
//! CLI would be, before any SQL.

use super::Guard;
use crate::compile::Compiled;
use crate::env::deploy::{NEXT, schema_set};
use crate::env::{deploy, lease};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::{Plan, Task};
use crate::results::NodeResult;

/// How one node is built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeOptions {
    /// `--store-failures`: a test keeps its failing rows in the audit schema.
    pub store_failures: bool,
    /// The deploy this node is a step of, when it builds into the shadow set
    /// (`<schema>__next`): the id its `prepare` step took the lease with.
    pub deploy_id: Option<String>,
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
    if !node.relation.schema.ends_with(NEXT) {
        return crate::runner::run_node(compiled, unique_id, options.store_failures);
    }
    // A step of a deploy: it builds only while its deploy holds the lease,
    // and holds the shared deploy lock while it builds, so no other deploy
    // takes the lease over (and drops the shadow set) under it.
    let Some(deploy_id) = &options.deploy_id else {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "`{}` builds into `{}`, a deploy's shadow set: only a step of that deploy may \
                 write there. Nothing was changed.",
                node.name, node.relation.schema
            ),
        )
        .in_file(compiled.project.root.join(&node.original_file_path))
        .with_hint("pass the deploy id its prepare step was given (deploy_id=)"));
    };
    let live: Vec<String> = schema_set(&compiled.manifest)
        .iter()
        .filter_map(|s| s.strip_suffix(NEXT).map(str::to_string))
        .collect();
    let target = &compiled.target.name;
    let mut lock = crate::adapter::connect(&compiled.target, &compiled.project.root)?;
    deploy::lock_shared(&mut lock, target, deploy_id, &live)?;
    let built = lease::renew(&mut lock, target, deploy_id, &live)
        .and_then(|()| crate::runner::run_node(compiled, unique_id, options.store_failures))
        // Long builds outlast a lease: the next step finds it renewed from here.
        .and_then(|built| lease::renew(&mut lock, target, deploy_id, &live).map(|()| built));
    deploy::unlock(&mut lock);
    built
}
