//! `weir deploy` and `weir rollback`: the blue-green sequence. The whole
//! project is built and tested in `<schema>__next`; only when all of it
//! passed is the set swapped in (see [`crate::env::deploy`]).

use super::run::Reporter;
use super::{Guard, ProjectRequest, SelectionRequest};
use crate::adapter::postgres::PostgresAdapter;
use crate::env::deploy::{self, Deploy, Swapped};
pub use crate::env::deploy::{NEXT, PREV, schema_set};
use crate::env::lease::{self, Holder};
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
    /// The deploy a `prepare` or `swap` step belongs to (an Airflow deploy's
    /// `<dag_id>/<run_id>`): prepare takes the deploy lease under this id,
    /// and every later step must still hold it. The CLI's deploy, one
    /// process, names itself.
    pub deploy_id: Option<String>,
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
    // One deploy of a target at a time, from prepare to swap: the lock,
    // held by this connection throughout, and the lease, which a deploy run
    // as separate steps (Airflow) holds between them.
    let target = &shadow.target.name;
    deploy::lock(&mut adapter, target, &deploy.schemas)?;
    let holder = Holder {
        deploy_id: request
            .deploy_id
            .clone()
            .unwrap_or_else(|| deploy::process_name(target)),
        spans_steps: false,
    };
    if let Err(err) = lease::take(&mut adapter, target, &holder, &deploy.schemas) {
        deploy::unlock(&mut adapter);
        return Err(err);
    }
    let built = (|| {
        let warnings = deploy::prepare(&mut adapter, &deploy)?;
        for warning in &warnings {
            reporter.note(warning);
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
            false => Some(deploy::swap(
                &mut adapter,
                &deploy.schemas,
                &lease::release_sql(&holder.deploy_id, &deploy.schemas),
            )?),
        };
        Ok((results, swapped))
    })();
    if !matches!(built, Ok((_, Some(_)))) {
        // Stopped before the swap: the next deploy need not wait for the lease.
        let _ = lease::release(&mut adapter, &holder.deploy_id, &deploy.schemas);
    }
    deploy::unlock(&mut adapter);
    let (results, swapped) = built?;
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
    let holder = Holder {
        deploy_id: step_id(request, "prepare")?,
        spans_steps: true,
    };
    let (deploy, mut adapter) = start(request)?;
    let target = &deploy.live.target.name;
    let prepared = lease::take(&mut adapter, target, &holder, &deploy.schemas)
        .and_then(|()| deploy::prepare(&mut adapter, &deploy));
    deploy::unlock(&mut adapter);
    prepared
}

/// An orchestrator's last deploy step: swap the built shadow set in, in one
/// transaction. Returns the swapped schemas.
pub fn swap(request: &DeployRequest) -> Result<Vec<String>> {
    let id = step_id(request, "swap")?;
    let (deploy, mut adapter) = start(request)?;
    let release = lease::release_sql(&id, &deploy.schemas);
    let swapped = lease::renew(&mut adapter, &deploy.live.target.name, &id, &deploy.schemas)
        .and_then(|()| deploy::swap(&mut adapter, &deploy.schemas, &release));
    deploy::unlock(&mut adapter);
    swapped.map(|_| deploy.schemas)
}

/// The deploy id a step of a deploy run as separate steps must be given.
fn step_id(request: &DeployRequest, step: &str) -> Result<String> {
    request.deploy_id.clone().ok_or_else(|| {
        Error::new(
            ErrorKind::Usage,
            format!(
                "a deploy's `{step}` step needs the id of the deploy it belongs to (an Airflow \
                 deploy's `<dag_id>/<run_id>`): its steps hold the deploy lease under it"
            ),
        )
    })
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
    let target = &compiled.target.name;
    deploy::lock(&mut adapter, target, &schemas)?;
    // A deploy between its steps would find its shadow set gone: wait for it.
    let holder = Holder {
        deploy_id: deploy::process_name(target),
        spans_steps: false,
    };
    let release = lease::release_sql(&holder.deploy_id, &schemas);
    let rolled_back = lease::take(&mut adapter, target, &holder, &schemas)
        .and_then(|()| deploy::rollback(&mut adapter, &schemas, &release));
    if rolled_back.is_err() {
        let _ = lease::release(&mut adapter, &holder.deploy_id, &schemas);
    }
    deploy::unlock(&mut adapter);
    rolled_back.map(|_| schemas)
}
