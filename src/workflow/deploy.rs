//! `weir deploy` and `weir rollback`: the blue-green sequence. The whole
//! project is built and tested in `<schema>__next`; only when all of it
//! passed is the set swapped in (see [`crate::env::deploy`]).

use super::run::Reporter;
use super::{Guard, ProjectRequest, SelectionRequest};
use crate::adapter::postgres::PostgresAdapter;
use crate::env::deploy::{self, Deploy, Swapped};
pub use crate::env::deploy::{NEXT, PREV, schema_set};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::{Plan, RetryPolicy};
use crate::results::RunResults;
use crate::runner::RunOptions;
use crate::select::Selection;

/// One deploy of the project.
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    pub project: ProjectRequest,
    /// Must select everything: every schema of the set is swapped.
    pub selection: SelectionRequest,
    /// How many nodes at once; None is the target's threads.
    pub threads: Option<usize>,
    pub allow_protected: bool,
    /// Stops the build from another thread (a signal handler): no swap.
    pub cancel: crate::runner::CancelHandle,
}

/// What a deploy did.
#[derive(Debug)]
pub struct Deployed {
    pub plan: Plan,
    pub results: RunResults,
    /// The live schemas of the set, sorted.
    pub schemas: Vec<String>,
    /// None when a node failed: the swap did not happen, prod is unchanged.
    pub swapped: Option<Swapped>,
}

/// Build the shadow set, and swap it in when every node passed.
/// `reporter.started` gets the shadow project; `note` the deploy's notes.
pub fn deploy(request: &DeployRequest, reporter: &dyn Reporter) -> Result<Deployed> {
    if request.selection.narrows() {
        return Err(Error::new(
            ErrorKind::Usage,
            "weir deploy builds the whole project: every schema of the set is swapped, so \
             --select, --exclude and --selector do not apply",
        ));
    }
    let deploy = Deploy::compile(&request.project.compile_options()?)?;
    // The live names are what later runs compare with (--state).
    super::write_artifacts(&deploy.live)?;
    let shadow = &deploy.shadow;
    let selection = Selection::for_project(&shadow.project.root)?;
    let plan = Plan::build(
        &shadow.manifest,
        &selection,
        &RetryPolicy::for_target(&shadow.target.name),
    )?;
    // A deploy runs without --store-failures (see the RunOptions below).
    Guard::new().check(shadow, &plan, request.allow_protected, false)?;
    reporter.started(shadow, &plan, &[]);
    let mut adapter = crate::adapter::connect(&shadow.target, &shadow.project.root)?;
    // One deploy of a target at a time, from prepare to swap.
    deploy::lock(&mut adapter, &shadow.target.name, &deploy.schemas)?;
    for warning in deploy::prepare(&mut adapter, &deploy)? {
        reporter.note(&warning);
    }
    let options = RunOptions {
        threads: request.threads.unwrap_or(shadow.target.threads).max(1),
        cancel: request.cancel.clone(),
        ..RunOptions::default()
    };
    let results = crate::runner::run(shadow, &plan, &options, &|e| reporter.event(e))?;
    crate::runner::artifacts::write_results(&results, &shadow.project.target_dir())?;
    let swapped = match results.has_failures() || request.cancel.is_cancelled() {
        true => None,
        false => Some(deploy::swap(&mut adapter, &deploy.schemas)?),
    };
    Ok(Deployed {
        plan,
        results,
        schemas: deploy.schemas,
        swapped,
    })
}

/// An orchestrator's first deploy step, before the shadow set's nodes are
/// built as tasks of their own: get `<schema>__next` ready. Returns notes.
pub fn prepare(request: &DeployRequest) -> Result<Vec<String>> {
    let (deploy, mut adapter) = start(request)?;
    deploy::prepare(&mut adapter, &deploy)
}

/// An orchestrator's last deploy step: swap the built shadow set in, in one
/// transaction. Returns the swapped schemas.
pub fn swap(request: &DeployRequest) -> Result<Vec<String>> {
    let (deploy, mut adapter) = start(request)?;
    deploy::swap(&mut adapter, &deploy.schemas)?;
    Ok(deploy.schemas)
}

/// The deploy's live and shadow compiles, checked to be allowed here, and a connection.
fn start(request: &DeployRequest) -> Result<(Deploy, PostgresAdapter)> {
    let deploy = Deploy::compile(&request.project.compile_options()?)?;
    crate::target::protect::check_may_run(&deploy.live.target, request.allow_protected)?;
    let mut adapter = crate::adapter::connect(&deploy.live.target, &deploy.live.project.root)?;
    deploy::lock(&mut adapter, &deploy.live.target.name, &deploy.schemas)?;
    Ok((deploy, adapter))
}

/// Swap the set the last deploy replaced back in; returns its schemas.
pub fn rollback(request: &DeployRequest) -> Result<Vec<String>> {
    let compiled = crate::compile::Compiled::load(&request.project.compile_options()?)?;
    crate::target::protect::check_may_run(&compiled.target, request.allow_protected)?;
    let schemas = deploy::schema_set(&compiled.manifest);
    let mut adapter = crate::adapter::connect(&compiled.target, &compiled.project.root)?;
    deploy::lock(&mut adapter, &compiled.target.name, &schemas)?;
    deploy::rollback(&mut adapter, &schemas)?;
    Ok(schemas)
}
