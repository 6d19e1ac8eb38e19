//! `weir run`, `build`, `seed`, `test`, `snapshot` and `retry`: the whole
//! sequence from compiling to run_results.json, reported as it goes.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value as Json, json};

use super::{Guard, ProjectRequest, SelectionRequest};
use crate::compile::Compiled;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Relation, ResourceType};
use crate::plan::{Plan, RetryPolicy};
use crate::results::RunResults;
use crate::runner::{CancelHandle, Event, RunOptions, Warming};

/// One run of the project.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub project: ProjectRequest,
    pub selection: SelectionRequest,
    /// Only nodes of this type (`weir run`: models); None runs all (`build`).
    pub only: Option<ResourceType>,
    /// `weir retry`: only these nodes of the selection.
    pub retry: Option<HashSet<String>>,
    /// How many nodes at once; None is the target's threads.
    pub threads: Option<usize>,
    /// Retries of transient failures; None is the target's policy.
    pub retries: Option<u32>,
    pub full_refresh: bool,
    pub fail_fast: bool,
    /// Run a protected target outside CI.
    pub allow_protected: bool,
    pub store_failures: bool,
    /// Seconds one node may take (a node's `timeout` config wins).
    pub timeout: Option<f64>,
    /// Stops the run from another thread (a signal handler).
    pub cancel: CancelHandle,
    /// The command line recorded in run_results.json, replayed by `weir retry`.
    pub invocation: Vec<String>,
    /// `text` or `json`, recorded in run_results.json.
    pub log_format: String,
}

/// Hears how a run goes; every method is optional.
pub trait Reporter: Sync {
    /// The plan is made and guarded; nothing has run yet. `unmatched`: the
    /// selection criteria that matched nothing.
    fn started(&self, _compiled: &Compiled, _plan: &Plan, _unmatched: &[String]) {}
    /// `--defer`: `parent` is read from the --state run's `relation`.
    fn deferred(&self, _parent: &str, _relation: &Relation) {}
    /// A node or hook started or finished.
    fn event(&self, _event: &Event) {}
    /// Something the user should know that is not a node's (a deploy's notes).
    fn note(&self, _message: &str) {}
}

/// How a run ended (node failures are in the results, not an error).
#[derive(Debug)]
pub enum Outcome {
    /// `weir retry` found nothing that errored, failed or was skipped.
    NothingToRetry,
    /// The selection holds nothing to run; an empty run_results.json was written.
    NothingToDo,
    /// The run happened.
    Ran(Box<Ran>),
}

/// A run that happened.
#[derive(Debug)]
pub struct Ran {
    pub plan: Plan,
    pub results: RunResults,
    /// It was stopped (Ctrl-C, SIGTERM).
    pub cancelled: bool,
}

/// Run `request`, reporting to `reporter`; run_results.json is written.
pub fn run(request: &RunRequest, reporter: &dyn Reporter) -> Result<Outcome> {
    let timeout = timeout(request.timeout)?;
    let warming = warm_up(request);
    let mut compiled = request.project.compile()?;
    let selection = request.selection.resolve(&compiled)?;
    let mut policy = RetryPolicy::for_target(&compiled.target.name);
    if let Some(retries) = request.retries {
        policy.default_retries = retries;
    }
    let mut plan = Plan::build(&compiled.manifest, &selection, &policy)?;
    let unmatched = selection.unmatched(&compiled.manifest, !plan.tasks.is_empty())?;
    match request.only {
        Some(kind) => plan.tasks.retain(|t| t.resource_type == kind),
        None => plan.add_exposures(&compiled.manifest, &selection)?,
    }
    if let Some(retry) = &request.retry {
        plan.tasks.retain(|t| retry.contains(&t.unique_id));
    }
    crate::base::timing::phase("selection and plan");
    Guard::new().check(
        &compiled,
        &plan,
        request.allow_protected,
        request.store_failures,
    )?;
    let deferring = request.selection.defer && selection.state.is_some();
    if let (true, Some(state)) = (deferring, &selection.state) {
        // The manifest shows the project as compiled, before deferral.
        super::write_artifacts(&compiled)?;
        defer_parents(
            &mut compiled,
            state,
            &plan,
            request.selection.favor_state,
            reporter,
        )?;
    }
    let options = RunOptions {
        threads: request.threads.unwrap_or(compiled.target.threads).max(1),
        fail_fast: request.fail_fast,
        full_refresh: request.full_refresh,
        store_failures: request.store_failures,
        timeout,
        cancel: request.cancel.clone(),
        connections: Default::default(),
    };
    let outcome = if deferring {
        execute(
            request, &compiled, plan, &unmatched, options, warming, reporter,
        )
    } else {
        // The artifacts are written while the run starts: for one model of
        // a large project, writing them takes longer than running it.
        let (written, outcome) = crate::base::parallel::both(
            || super::write_artifacts(&compiled),
            || {
                execute(
                    request, &compiled, plan, &unmatched, options, warming, reporter,
                )
            },
        );
        written?;
        outcome
    };
    // The process ends after the run: freeing every node one by one would
    // only add to its wall time (tens of milliseconds at 10,000 models).
    std::mem::forget(compiled);
    outcome
}

/// `--timeout`, checked before anything else happens.
fn timeout(seconds: Option<f64>) -> Result<Option<Duration>> {
    match seconds {
        Some(seconds) if seconds > 0.0 && seconds.is_finite() => {
            Ok(Some(Duration::from_secs_f64(seconds)))
        }
        Some(seconds) => Err(Error::new(
            ErrorKind::Usage,
            format!("--timeout must be a positive number of seconds, got {seconds}"),
        )),
        None => Ok(None),
    }
}

/// Run the guarded plan and write run_results.json.
fn execute(
    request: &RunRequest,
    compiled: &Compiled,
    plan: Plan,
    unmatched: &[String],
    mut options: RunOptions,
    warming: Option<Warming>,
    reporter: &dyn Reporter,
) -> Result<Outcome> {
    reporter.started(compiled, &plan, unmatched);
    if plan.tasks.is_empty() {
        if request.retry.is_some() {
            return Ok(Outcome::NothingToRetry);
        }
        // As dbt: no hooks, no SQL, and a run_results.json with no results,
        // so that nothing reads the previous run's as this one's.
        let results = RunResults {
            invocation_id: compiled.manifest.metadata.invocation_id.clone(),
            generated_at: crate::base::clock::now_rfc3339(),
            elapsed_time: 0.0,
            args: run_args(request, compiled, &options),
            results: Vec::new(),
        };
        crate::runner::artifacts::write_results(&results, &compiled.project.target_dir())?;
        return Ok(Outcome::NothingToDo);
    }
    options.connections = warming.map(Warming::finish).unwrap_or_default();
    crate::base::timing::phase("connections warmed");
    let mut results = crate::runner::run(compiled, &plan, &options, &|e| reporter.event(e))?;
    crate::base::timing::phase("run");
    results.args = run_args(request, compiled, &options);
    crate::runner::artifacts::write_results(&results, &compiled.project.target_dir())?;
    crate::base::timing::phase("run_results.json written");
    Ok(Outcome::Ran(Box::new(Ran {
        plan,
        results,
        cancelled: options.cancel.is_cancelled(),
    })))
}

/// Start opening the run's connections while the project compiles: as
/// many as it has threads when it runs the whole project, one when a
/// selection may leave a single node.
fn warm_up(request: &RunRequest) -> Option<Warming> {
    let single = request.retry.is_some() || request.selection.narrows();
    let project = &request.project;
    Warming::start(
        &project.project_dir().ok()?,
        project.profiles_dir.as_deref(),
        project.target.as_deref(),
        request.allow_protected,
        |target| match single {
            true => 1,
            false => request.threads.unwrap_or(target.threads).max(1),
        },
    )
}

/// run_results.json's `args`: dbt's keys, and the command line `weir retry` replays.
fn run_args(request: &RunRequest, compiled: &Compiled, options: &RunOptions) -> Json {
    let invocation = &request.invocation;
    json!({
        "which": invocation.first().cloned().unwrap_or_default(),
        "select": request.selection.select,
        "exclude": request.selection.exclude,
        "target": compiled.target.name,
        "vars": compiled.cli_vars,
        "threads": options.threads,
        "full_refresh": options.full_refresh,
        "fail_fast": options.fail_fast,
        "project_dir": compiled.project.root.display().to_string(),
        "profiles_dir": request.project.profiles_dir.as_ref().map(|d| d.display().to_string()),
        "log_format": request.log_format,
        "invocation_command": format!("weir {}", invocation.join(" ")),
        "weir_invocation": invocation,
    })
}

/// `--defer`: point the selected nodes at the --state run's relations of
/// the parents this run does not build, and say which.
fn defer_parents(
    compiled: &mut Compiled,
    state: &crate::select::state::State,
    plan: &Plan,
    favor_state: bool,
    reporter: &dyn Reporter,
) -> Result<()> {
    use crate::adapter::Adapter;
    let selected = plan.tasks.iter().map(|t| t.unique_id.clone()).collect();
    let mut adapter = None;
    let (target, root) = (compiled.target.clone(), compiled.project.root.clone());
    let mut exists = |relation: &Relation| -> Result<bool> {
        let adapter = match &mut adapter {
            Some(adapter) => adapter,
            None => adapter.insert(crate::adapter::connect(&target, &root)?),
        };
        Ok(!adapter
            .relation_kinds(&relation.schema, &[relation.identifier.as_str()])?
            .is_empty())
    };
    let deferred = crate::select::state::defer(
        &mut compiled.manifest,
        state,
        &selected,
        favor_state,
        &mut exists,
    )?;
    for (parent, relation) in deferred {
        reporter.deferred(&parent, &relation);
    }
    Ok(())
}
