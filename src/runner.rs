//! Runs a plan: worker threads with one connection each, tasks started as
//! soon as their upstream succeeded, skips, retries of transient errors, an
//! advisory lock per relation, timeouts and cancellation.

pub(crate) mod artifacts;
mod cancel;
mod pool;
mod run_end;

pub use cancel::CancelHandle;
use cancel::{Stop, Watchdog};
pub use pool::{Pool, Warming};

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use crate::adapter::Adapter;
use crate::adapter::postgres::{ConnectionSettings, PostgresAdapter};
use crate::adapter::queries::RenderConnection;
use crate::base::quote::quote_literal;
use crate::compile::{Compiled, RunFlags, RunRenderer};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Node, ResourceType};
use crate::materialize::{self, BuildContext, Built};
use crate::plan::{Plan, Task};
use crate::results::{NodeResult, RunResults, Status};

/// First pause before retrying a transient failure; doubled on each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

pub use crate::target::MAX_THREADS;

/// How a plan is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Worker threads, each with its own connection.
    pub threads: usize,
    /// After the first failure: cancel the running queries, start no more tasks.
    pub fail_fast: bool,
    /// `--full-refresh`; views, tables and seeds are always rebuilt whole.
    pub full_refresh: bool,
    /// `--store-failures`: tests keep their failing rows in the audit schema.
    pub store_failures: bool,
    /// How long one node may take (a node's `timeout` config, in seconds, wins).
    pub timeout: Option<Duration>,
    /// Stops the run from another thread (Ctrl-C).
    pub cancel: CancelHandle,
    /// Connections opened ahead of the run (while the project compiled).
    pub connections: Pool,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            threads: 1,
            fail_fast: false,
            full_refresh: false,
            store_failures: false,
            timeout: None,
            cancel: CancelHandle::new(),
            connections: Pool::default(),
        }
    }
}

/// Two ints naming weir's advisory locks: `weir` in ASCII, then the
/// relation's hash, so they stay clear of an application's own locks.
const LOCK_CLASS: i32 = 0x7765_6972;

/// Progress of a run, for printing. `index` counts from 1 in the order tasks
/// start, as dbt prints `1 of 6`; a skipped task gets only a `Finish`.
#[derive(Debug)]
pub enum Event<'a> {
    Start {
        index: usize,
        total: usize,
        task: &'a Task,
    },
    Finish {
        index: usize,
        total: usize,
        task: &'a Task,
        result: &'a NodeResult,
    },
    /// An `on-run-start` / `on-run-end` hook ran (`shop.on-run-start.0`).
    Hook {
        name: &'a str,
        index: usize,
        total: usize,
        result: &'a NodeResult,
    },
}

/// Run every task of `plan`; node failures are in the results, not an `Err`.
/// Err only when the run cannot start (e.g. the local database will not start).
pub fn run(
    compiled: &Compiled,
    plan: &Plan,
    options: &RunOptions,
    on_event: &(dyn Fn(&Event) + Sync),
) -> Result<RunResults> {
    if options.threads > MAX_THREADS {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "--threads {}: weir builds at most {MAX_THREADS} nodes at once, each with a \
                 connection of its own",
                options.threads
            ),
        ));
    }
    let clock = Instant::now();
    let secrets = compiled.target.secrets();
    let settings = if plan.tasks.is_empty() {
        None
    } else {
        let root = &compiled.project.root;
        Some(
            ConnectionSettings::for_target(&compiled.target, root)
                .map_err(|e| e.scrub(&secrets))?,
        )
    };
    crate::base::timing::phase("run: connection settings");
    let watchdog = Watchdog::default();
    let scheduler = Scheduler::new(plan, options.fail_fast, Some(&watchdog));
    let workers = options.threads.max(1).min(plan.tasks.len());
    let renderer = LazyRenderer::new(compiled);
    // Connections opened ahead and not used yet: hooks and workers take
    // them before opening their own.
    let idle = Mutex::new(match &settings {
        Some(settings) => options.connections.take_for(settings),
        None => Vec::new(),
    });
    let hook_runner = settings.as_ref().map(|settings| HookRunner {
        compiled,
        settings,
        secrets: &secrets,
        renderer: &renderer,
        idle: &idle,
    });
    let project = &compiled.project;
    let mut hooks = Vec::new();
    if let Some(hook_runner) = &hook_runner {
        hook_runner.create_schemas(&run_schemas(compiled, plan, options.store_failures))?;
        hooks = hook_runner.run(&project.on_run_start, "on-run-start", None, on_event);
        if let Some(failed) = hooks.iter().find(|h| h.status.is_failure()) {
            let reason = format!("skipped because {} failed", failed.unique_id);
            scheduler.abort(&reason, on_event);
        } else {
            let worker = Worker {
                compiled,
                settings: hook_runner.settings,
                secrets: &secrets,
                full_refresh: options.full_refresh,
                store_failures: options.store_failures,
                timeout: options.timeout,
                renderer: &renderer,
                watchdog: &watchdog,
                idle: &idle,
            };
            std::thread::scope(|scope| {
                scope.spawn(|| watchdog.run(&options.cancel));
                let handles: Vec<_> = (0..workers)
                    .map(|_| scope.spawn(|| worker.work(&scheduler, on_event)))
                    .collect();
                for handle in handles {
                    // A worker panic is a bug; the others' results still count.
                    let _ = handle.join();
                }
                watchdog.finish();
            });
            crate::base::timing::phase("run: nodes");
        }
    }
    let mut results = scheduler.into_results();
    for result in &mut results {
        match compiled.manifest.nodes.get(&result.unique_id) {
            Some(node) => result.relation_name = reported_relation(node, options.store_failures),
            // An exposure names no relation.
            None => result.relation_name = None,
        }
    }
    if let Some(hook_runner) = hook_runner.filter(|_| !project.on_run_end.is_empty()) {
        // dbt hands on-run-end hooks the node results and the on-run-start
        // hooks that failed (its `thread_id == "main"` filter).
        let failed_start = hooks.iter().filter(|h| h.status.is_failure());
        let seen: Vec<&NodeResult> = results.iter().chain(failed_start).collect();
        let context = run_end::context(&compiled.manifest, &seen, options.store_failures);
        let end = hook_runner.run(&project.on_run_end, "on-run-end", Some(&context), on_event);
        hooks.extend(end);
    }
    results.extend(hooks);
    Ok(RunResults {
        invocation_id: compiled.manifest.metadata.invocation_id.clone(),
        generated_at: crate::base::clock::now_rfc3339(),
        elapsed_time: clock.elapsed().as_secs_f64(),
        args: json!({
            "target": plan.target_name,
            "threads": options.threads,
            "fail_fast": options.fail_fast,
            "full_refresh": options.full_refresh,
        }),
        results,
    })
}

/// The schemas the plan's nodes are built in, in plan order, each once:
/// dbt creates them before any `on-run-start` hook runs, so a hook may write
/// there.
fn run_schemas(compiled: &Compiled, plan: &Plan, store_failures: bool) -> Vec<String> {
    let mut schemas: Vec<String> = Vec::new();
    for task in &plan.tasks {
        let Some(node) = compiled.manifest.nodes.get(&task.unique_id) else {
            continue;
        };
        let schema = &node.relation.schema;
        if crate::manifest::builds_relation(node, store_failures) && !schemas.contains(schema) {
            schemas.push(schema.clone());
        }
    }
    schemas
}

/// Runs the `on-run-start` and `on-run-end` hooks of dbt_project.yml, each
/// recorded as dbt records it: an `operation` node.
struct HookRunner<'a> {
    compiled: &'a Compiled,
    settings: &'a ConnectionSettings,
    secrets: &'a [String],
    renderer: &'a LazyRenderer<'a>,
    idle: &'a Mutex<Vec<PostgresAdapter>>,
}

impl HookRunner<'_> {
    /// Create the run's schemas that are missing, on a connection opened
    /// ahead when one is idle (and left idle for the hooks and workers).
    fn create_schemas(&self, schemas: &[String]) -> Result<()> {
        if schemas.is_empty() {
            return Ok(());
        }
        let mut adapter = match take_idle(self.idle) {
            Some(adapter) => adapter,
            None => PostgresAdapter::connect(self.settings).map_err(|e| e.scrub(self.secrets))?,
        };
        for schema in schemas {
            materialize::ensure_schema(&mut adapter, schema).map_err(|e| e.scrub(self.secrets))?;
        }
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(adapter);
        Ok(())
    }

    fn run(
        &self,
        hooks: &[String],
        which: &str,
        context: Option<&minijinja::Value>,
        on_event: &(dyn Fn(&Event) + Sync),
    ) -> Vec<NodeResult> {
        let project = &self.compiled.project.name;
        if hooks.is_empty() {
            return Vec::new();
        }
        let mut connection = take_idle(self.idle);
        let mut results = Vec::with_capacity(hooks.len());
        for (i, sql) in hooks.iter().enumerate() {
            let started_at = SystemTime::now();
            let clock = Instant::now();
            let outcome = self
                .renderer
                .render_project_hook(sql, context)
                .and_then(|sql| {
                    let adapter = match &mut connection {
                        Some(adapter) => adapter,
                        None => connection.insert(PostgresAdapter::connect(self.settings)?),
                    };
                    adapter.batch_execute(&sql).map(|()| sql)
                });
            let (status, message, error, code) = match outcome {
                Ok(sql) => (Status::Success, "OK".to_string(), None, sql),
                Err(error) => {
                    let error = error.in_file("dbt_project.yml").scrub(self.secrets);
                    (
                        Status::Error,
                        format!("{which} hook failed: {error}"),
                        Some(error),
                        String::new(),
                    )
                }
            };
            let result = NodeResult {
                unique_id: format!("operation.{project}.{project}-{which}-{i}"),
                status,
                message,
                code: String::new(),
                rows_affected: None,
                failures: None,
                started_at,
                completed_at: SystemTime::now(),
                execution_time: clock.elapsed().as_secs_f64(),
                attempts: 1,
                sql_time: 0.0,
                error,
                compiled_code: code,
                relation_name: None,
            };
            on_event(&Event::Hook {
                name: &format!("{project}.{which}.{i}"),
                index: i + 1,
                total: hooks.len(),
                result: &result,
            });
            results.push(result);
        }
        results
    }
}

/// A connection opened ahead and never used, if one is left.
fn take_idle(idle: &Mutex<Vec<PostgresAdapter>>) -> Option<PostgresAdapter> {
    idle.lock().unwrap_or_else(PoisonError::into_inner).pop()
}

/// Build one node, once, on a new connection: what an orchestrator's task
/// does, with `store_failures` as a run's --store-failures. A failure is an
/// `Err` (Transient or Database), scrubbed of secrets. Callers go through
/// [`crate::workflow::node::run_node`], which guards it first.
pub fn run_node(compiled: &Compiled, unique_id: &str, store_failures: bool) -> Result<NodeResult> {
    let node = compiled.manifest.node(unique_id)?;
    if !node.needs_database() {
        node.check_rendered()?;
    }
    materialize::check_supported(node)?;
    let secrets = compiled.target.secrets();
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let renderer = LazyRenderer::new(compiled);
    let render = |node: &Node| renderer.render_incremental(node);
    let render_hook = |node: &Node, sql: &str| renderer.render_hook(node, sql);
    let ctx = BuildContext {
        project_root: &compiled.project.root,
        full_refresh: false,
        store_failures,
        render_incremental: &render,
        render_hook: &render_hook,
    };
    let connect = || crate::adapter::connect(&compiled.target, &compiled.project.root);
    let adapter = connect().map_err(|e| e.scrub(&secrets))?;
    let asked = node.needs_database();
    let rendered;
    let (adapter, node) = match asked {
        true => {
            let flags = RunFlags {
                full_refresh: false,
                store_failures,
            };
            let (adapter, result) = render_with_database(&renderer, node, adapter, flags);
            rendered = result.map_err(|e| e.scrub(&secrets))?;
            (adapter, &rendered)
        }
        false => (Some(adapter), node),
    };
    let built = adapter
        .map_or_else(connect, Ok)
        .and_then(|mut adapter| {
            let built = build_locked(&mut adapter, node, &ctx);
            // The lock's release; a lost connection released it already.
            let _ = adapter.flush();
            built.map(|built| if asked { ran(built, node) } else { built })
        })
        .map_err(|e| e.scrub(&secrets))?;
    let mut result = success(node, built, started_at, clock.elapsed(), 1);
    // What the task built, seeds included, for the orchestrator to read.
    result.relation_name =
        crate::manifest::builds_relation(node, store_failures).then(|| node.relation.to_string());
    Ok(result)
}

/// A node whose SQL asks the database, rendered as dbt renders every node:
/// as it runs, after its upstream nodes are built, on the connection that
/// builds it (lent to the render, and given back unless a template kept it).
/// The node to build from the SQL it rendered.
fn render_with_database(
    renderer: &LazyRenderer<'_>,
    node: &Node,
    adapter: PostgresAdapter,
    flags: RunFlags,
) -> (Option<PostgresAdapter>, Result<Node>) {
    let connection = Arc::new(RenderConnection::new(adapter));
    let database: Arc<dyn crate::jinja::database::Database> = connection.clone();
    let sql = renderer
        .get()
        .and_then(|r| r.render_node_with_database(&node.unique_id, false, database, flags));
    let adapter = Arc::try_unwrap(connection)
        .ok()
        .map(RenderConnection::into_inner);
    let node = sql.map(|sql| Node {
        compiled_code: sql,
        render_error: None,
        ..node.clone()
    });
    (adapter, node)
}

/// What ran: a node rendered as it ran reports the SQL it rendered.
fn ran(mut built: Built, node: &Node) -> Built {
    if built.compiled_code.is_none() {
        built.compiled_code = Some(node.compiled_code.clone());
    }
    built
}

/// The relation run_results.json names for `node`, as dbt names it: a test
/// its audit relation only when it stores its failures; a seed none (dbt
/// names only the relations of nodes it compiles).
fn reported_relation(node: &Node, store_failures: bool) -> Option<String> {
    let named = node.resource_type != ResourceType::Seed
        && crate::manifest::builds_relation(node, store_failures);
    named.then(|| node.relation.to_string())
}

fn success(
    node: &Node,
    built: Built,
    started_at: SystemTime,
    took: Duration,
    attempts: u32,
) -> NodeResult {
    NodeResult {
        unique_id: node.unique_id.clone(),
        status: built.verdict.as_ref().map_or(Status::Success, |v| v.status),
        message: built.message,
        code: built.code,
        rows_affected: built.rows_affected,
        failures: built.verdict.as_ref().map(|v| v.failures),
        started_at,
        completed_at: SystemTime::now(),
        execution_time: took.as_secs_f64(),
        attempts,
        sql_time: 0.0,
        error: None,
        compiled_code: built
            .compiled_code
            .unwrap_or_else(|| node.compiled_code.clone()),
        relation_name: Some(node.relation.to_string()),
    }
}

fn failure(
    task: &Task,
    node: Option<&Node>,
    error: Error,
    started_at: SystemTime,
    took: Duration,
    attempts: u32,
) -> NodeResult {
    NodeResult {
        unique_id: task.unique_id.clone(),
        status: Status::Error,
        message: error.to_string(),
        code: String::new(),
        rows_affected: None,
        failures: None,
        started_at,
        completed_at: SystemTime::now(),
        execution_time: took.as_secs_f64(),
        attempts,
        sql_time: 0.0,
        error: Some(error),
        compiled_code: node.map(|n| n.compiled_code.clone()).unwrap_or_default(),
        relation_name: Some(task.relation.to_string()),
    }
}

/// Why `node` cannot be compiled, when an ephemeral model it reads failed to
/// render: dbt skips it, naming that model, and counts it as an error.
fn failed_ephemeral_parent(manifest: &crate::manifest::Manifest, node: &Node) -> Option<String> {
    let parent = node.depends_on_nodes.iter().find(|id| {
        manifest.nodes.get(*id).is_some_and(|p| {
            p.materialization == crate::manifest::Materialization::Ephemeral
                && p.render_error.is_some()
        })
    })?;
    Some(format!(
        "compilation error in {}, caused by a compilation error in the ephemeral model it \
         references, {parent}",
        node.unique_id
    ))
}

/// An exposure in `build`: nothing to build, as dbt reports it.
fn no_op(task: &Task, started_at: SystemTime) -> NodeResult {
    NodeResult {
        status: Status::NoOp,
        message: "NO-OP".to_string(),
        failures: Some(0),
        started_at,
        completed_at: SystemTime::now(),
        relation_name: None,
        ..skipped(task, String::new())
    }
}

fn skipped(task: &Task, reason: String) -> NodeResult {
    let now = SystemTime::now();
    NodeResult {
        unique_id: task.unique_id.clone(),
        status: Status::Skipped,
        message: reason,
        code: String::new(),
        rows_affected: None,
        failures: None,
        started_at: now,
        completed_at: now,
        execution_time: 0.0,
        attempts: 0,
        sql_time: 0.0,
        error: None,
        compiled_code: String::new(),
        relation_name: Some(task.relation.to_string()),
    }
}

/// The project's Jinja environment, made the first time an incremental
/// model needs rendering again: most runs never pay for it.
struct LazyRenderer<'a> {
    compiled: &'a Compiled,
    renderer: OnceLock<Result<RunRenderer<'a>>>,
}

impl<'a> LazyRenderer<'a> {
    fn new(compiled: &'a Compiled) -> LazyRenderer<'a> {
        LazyRenderer {
            compiled,
            renderer: OnceLock::new(),
        }
    }

    fn get(&self) -> Result<&RunRenderer<'a>> {
        self.renderer
            .get_or_init(|| RunRenderer::new(self.compiled))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn render_incremental(&self, node: &Node) -> Result<String> {
        self.get()?.render_node(&node.unique_id, true)
    }

    /// Plain SQL needs no Jinja environment.
    fn render_hook(&self, node: &Node, sql: &str) -> Result<String> {
        if !sql.contains("{{") && !sql.contains("{%") {
            return Ok(sql.to_string());
        }
        self.get()?.render_hook(&node.unique_id, sql)
    }

    fn render_project_hook(&self, sql: &str, context: Option<&minijinja::Value>) -> Result<String> {
        if !sql.contains("{{") && !sql.contains("{%") {
            return Ok(sql.to_string());
        }
        self.get()?.render_project_hook(sql, context.cloned())
    }
}

/// What one worker thread needs; each keeps its own connection.
struct Worker<'a> {
    compiled: &'a Compiled,
    settings: &'a ConnectionSettings,
    secrets: &'a [String],
    full_refresh: bool,
    store_failures: bool,
    timeout: Option<Duration>,
    renderer: &'a LazyRenderer<'a>,
    watchdog: &'a Watchdog,
    idle: &'a Mutex<Vec<PostgresAdapter>>,
}

impl Worker<'_> {
    fn work(&self, scheduler: &Scheduler, on_event: &(dyn Fn(&Event) + Sync)) {
        let mut connection = take_idle(self.idle);
        loop {
            // What the last task deferred (its lock's release) goes with the
            // next task's first statement, or at once when none can start.
            let next = scheduler.next(on_event, &mut || {
                if let Some(adapter) = connection.as_mut() {
                    // A lost connection released the lock already.
                    let _ = adapter.flush();
                }
            });
            let Some((index, task)) = next else { break };
            let result = self.run_task(index, task, &mut connection);
            scheduler.finish(index, result, on_event);
        }
    }

    /// Build a task's node, retrying transient failures up to `task.retries` times.
    fn run_task(
        &self,
        index: usize,
        task: &Task,
        connection: &mut Option<PostgresAdapter>,
    ) -> NodeResult {
        let started_at = SystemTime::now();
        let clock = Instant::now();
        if task.resource_type == ResourceType::Exposure {
            return no_op(task, started_at);
        }
        let node = match self.compiled.manifest.node(&task.unique_id) {
            Ok(node) => node,
            Err(error) => return failure(task, None, error, started_at, clock.elapsed(), 0),
        };
        if let Some(reason) = failed_ephemeral_parent(&self.compiled.manifest, node) {
            return NodeResult {
                error: Some(Error::new(ErrorKind::Template, reason.clone())),
                ..skipped(task, reason)
            };
        }
        let mut attempts = 0;
        let mut sql_time = Duration::ZERO;
        loop {
            attempts += 1;
            let outcome = self.attempt(index, node, connection);
            if let Some(adapter) = connection.as_mut() {
                sql_time += adapter.take_sql_time();
            }
            match outcome {
                Ok(built) => {
                    let mut result = success(node, built, started_at, clock.elapsed(), attempts);
                    result.sql_time = sql_time.as_secs_f64();
                    return result;
                }
                Err(error) if error.is_transient() && attempts <= task.retries => {
                    // A lost connection is replaced; a deadlock's is fine, but a
                    // fresh one costs little next to the pause.
                    *connection = None;
                    std::thread::sleep(backoff(attempts));
                }
                Err(error) => {
                    let error = error.scrub(self.secrets);
                    let mut result = failure(
                        task,
                        Some(node),
                        error,
                        started_at,
                        clock.elapsed(),
                        attempts,
                    );
                    result.sql_time = sql_time.as_secs_f64();
                    return result;
                }
            }
        }
    }

    fn attempt(
        &self,
        index: usize,
        node: &Node,
        connection: &mut Option<PostgresAdapter>,
    ) -> Result<Built> {
        if !node.needs_database() {
            node.check_rendered()?;
        }
        materialize::check_supported(node)?;
        if connection.as_ref().is_some_and(|c| c.is_closed()) {
            *connection = None;
        }
        let rendered;
        let asked = node.needs_database();
        let node = match asked {
            true => {
                let adapter = match connection.take() {
                    Some(adapter) => adapter,
                    None => PostgresAdapter::connect(self.settings)?,
                };
                let flags = RunFlags {
                    full_refresh: self.full_refresh,
                    store_failures: self.store_failures,
                };
                let (adapter, result) = render_with_database(self.renderer, node, adapter, flags);
                *connection = adapter;
                rendered = result?;
                &rendered
            }
            false => node,
        };
        let adapter = match connection {
            Some(adapter) => adapter,
            None => connection.insert(PostgresAdapter::connect(self.settings)?),
        };
        let timeout = node_timeout(node)?.or(self.timeout);
        self.watchdog
            .watch(index, adapter.cancel_token(), timeout)
            .map_err(|stop| Error::new(ErrorKind::Database, stop.message()))?;
        let built = self.locked_build(adapter, node);
        let built = built.map(|built| if asked { ran(built, node) } else { built });
        match (built, self.watchdog.unwatch(index)) {
            // The cancel came too late to matter: the node is built.
            (Ok(built), _) => Ok(built),
            (Err(error), Some(stop)) => {
                // The connection may be left mid-transaction by a cancelled
                // rollback: the next task gets a fresh one.
                *connection = None;
                Err(Error::new(
                    ErrorKind::Database,
                    format!("{}: {}", stop.message(), error.message()),
                )
                .in_file(&node.original_file_path))
            }
            (Err(error), None) => Err(error),
        }
    }

    fn locked_build(&self, adapter: &mut PostgresAdapter, node: &Node) -> Result<Built> {
        let render = |node: &Node| self.renderer.render_incremental(node);
        let render_hook = |node: &Node, sql: &str| self.renderer.render_hook(node, sql);
        let ctx = BuildContext {
            project_root: &self.compiled.project.root,
            full_refresh: self.full_refresh,
            store_failures: self.store_failures,
            render_incremental: &render,
            render_hook: &render_hook,
        };
        build_locked(adapter, node, &ctx)
    }
}

/// Build under the relation's advisory lock, so that two runs of the same
/// target (two CLI runs, or an Airflow task and a CLI run) never build one
/// relation at the same time. A test takes it when it stores its failures,
/// whether its config or --store-failures says so.
fn build_locked(adapter: &mut PostgresAdapter, node: &Node, ctx: &BuildContext) -> Result<Built> {
    let lock = crate::manifest::builds_relation(node, ctx.store_failures).then(|| {
        let relation = node.relation.to_string();
        format!("{LOCK_CLASS}, hashtext({})", quote_literal(&relation))
    });
    if let Some(key) = &lock {
        let (schema, names) = materialize::relations_asked(node);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        if !adapter.try_lock(key, schema, &names)? {
            // Another run is building it: wait for that run, as long as
            // this node's timeout allows.
            adapter
                .execute(&format!("select pg_advisory_lock({key})"))
                .map_err(|e| {
                    Error::new(
                        e.kind(),
                        format!(
                            "waiting for another run that is building {}: {}",
                            node.relation,
                            e.message()
                        ),
                    )
                    .in_file(&node.original_file_path)
                })?;
        }
    }
    let built = materialize::build(adapter, node, ctx);
    if let Some(key) = &lock {
        // Sent with the connection's next round trip: nothing waits on it.
        adapter.defer(&format!("select pg_advisory_unlock({key})"));
    }
    built
}

/// A node's `timeout` config: seconds, whole or not.
fn node_timeout(node: &Node) -> Result<Option<Duration>> {
    match node.config.get("timeout") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => value
            .as_f64()
            .filter(|s| *s > 0.0 && s.is_finite())
            .map(|s| Some(Duration::from_secs_f64(s)))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Project,
                    format!(
                        "`timeout` of `{}` must be a number of seconds, got `{value}`",
                        node.name
                    ),
                )
                .in_file(&node.original_file_path)
            }),
    }
}

fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// Tests first, then plan order: a model's tests run right after it, as in
/// `dbt build`, so a failure stops its downstream as early as possible.
type ReadyKey = (bool, usize);

fn ready_key(tasks: &[Task], index: usize) -> ReadyKey {
    (tasks[index].resource_type != ResourceType::Test, index)
}

/// Which tasks may start, shared by the workers.
struct Scheduler<'p> {
    tasks: &'p [Task],
    children: Vec<Vec<usize>>,
    fail_fast: bool,
    /// Cancels running queries under fail_fast, and says when Ctrl-C stopped the run.
    watchdog: Option<&'p Watchdog>,
    state: Mutex<State>,
    wakeup: Condvar,
}

struct State {
    /// Upstream tasks of each task that have not succeeded yet.
    waiting_on: Vec<usize>,
    /// Tasks whose upstream all succeeded, lowest plan position first.
    ready: BTreeSet<ReadyKey>,
    results: Vec<Option<NodeResult>>,
    /// The event index each started task was given.
    indexes: Vec<usize>,
    running: usize,
    reported: usize,
    /// Once the run stops early (fail_fast, Ctrl-C): why the rest is skipped.
    stopped: Option<String>,
}

impl<'p> Scheduler<'p> {
    fn new(plan: &'p Plan, fail_fast: bool, watchdog: Option<&'p Watchdog>) -> Scheduler<'p> {
        let position: HashMap<&str, usize> = plan
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.unique_id.as_str(), i))
            .collect();
        let mut children = vec![Vec::new(); plan.tasks.len()];
        let mut waiting_on = vec![0; plan.tasks.len()];
        for (i, task) in plan.tasks.iter().enumerate() {
            // Upstream outside the plan was not selected: it is not waited for.
            let upstream: BTreeSet<usize> = task
                .upstream
                .iter()
                .filter_map(|id| position.get(id.as_str()).copied())
                .filter(|&u| u != i)
                .collect();
            waiting_on[i] = upstream.len();
            for u in upstream {
                children[u].push(i);
            }
        }
        let ready = (0..plan.tasks.len())
            .filter(|&i| waiting_on[i] == 0)
            .map(|i| ready_key(&plan.tasks, i))
            .collect();
        Scheduler {
            tasks: &plan.tasks,
            children,
            fail_fast,
            watchdog,
            state: Mutex::new(State {
                waiting_on,
                ready,
                results: vec![None; plan.tasks.len()],
                indexes: vec![0; plan.tasks.len()],
                running: 0,
                reported: 0,
                stopped: None,
            }),
            wakeup: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking event callback must not take the other workers down too.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next task to run, once one is ready; None when the run is over.
    /// `idle` runs (without the lock held) before waiting or returning None.
    fn next(
        &self,
        on_event: &(dyn Fn(&Event) + Sync),
        idle: &mut dyn FnMut(),
    ) -> Option<(usize, &'p Task)> {
        let mut idle = Some(idle);
        let mut state = self.lock();
        loop {
            if state.stopped.is_none()
                && let Some(Stop::Interrupted) = self.watchdog.and_then(Watchdog::stopping)
            {
                self.stop(
                    &mut state,
                    "skipped because the run was interrupted",
                    on_event,
                );
            }
            if let Some((_, index)) = state.ready.pop_first() {
                state.running += 1;
                state.reported += 1;
                state.indexes[index] = state.reported;
                let task = &self.tasks[index];
                // Emitted under the lock so that printed indexes are in order.
                on_event(&Event::Start {
                    index: state.reported,
                    total: self.tasks.len(),
                    task,
                });
                return Some((index, task));
            }
            if let Some(idle) = idle.take() {
                drop(state);
                idle();
                state = self.lock();
                continue;
            }
            if state.running == 0 {
                self.skip_stranded(&mut state, on_event);
                self.wakeup.notify_all();
                return None;
            }
            state = self
                .wakeup
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn finish(&self, index: usize, result: NodeResult, on_event: &(dyn Fn(&Event) + Sync)) {
        let mut state = self.lock();
        state.running -= 1;
        // A task that finished skipped (its ephemeral parent failed) built
        // nothing its children could read.
        let failed = result.status.is_failure() || result.status == Status::Skipped;
        on_event(&Event::Finish {
            index: state.indexes[index],
            total: self.tasks.len(),
            task: &self.tasks[index],
            result: &result,
        });
        state.results[index] = Some(result);
        let name = &self.tasks[index].name;
        if failed {
            self.skip_descendants(&mut state, index, name, on_event);
            if self.fail_fast && state.stopped.is_none() {
                if let Some(watchdog) = self.watchdog {
                    watchdog.stop_all(Stop::FailFast(name.clone()));
                }
                let reason =
                    format!("skipped because the run stopped after `{name}` failed (--fail-fast)");
                self.stop(&mut state, &reason, on_event);
            }
        } else if state.stopped.is_none() {
            for &child in &self.children[index] {
                state.waiting_on[child] -= 1;
                if state.waiting_on[child] == 0 && state.results[child].is_none() {
                    state.ready.insert(ready_key(self.tasks, child));
                }
            }
        }
        self.wakeup.notify_all();
    }

    /// Every task below a failed one is skipped at once, naming the failure.
    fn skip_descendants(
        &self,
        state: &mut State,
        failed: usize,
        failed_name: &str,
        on_event: &(dyn Fn(&Event) + Sync),
    ) {
        let mut queue: VecDeque<usize> = self.children[failed].iter().copied().collect();
        while let Some(i) = queue.pop_front() {
            if state.results[i].is_some() || state.ready.contains(&ready_key(self.tasks, i)) {
                continue;
            }
            let reason = format!("skipped because upstream `{failed_name}` failed");
            self.report_skip(state, i, reason, on_event);
            queue.extend(self.children[i].iter().copied());
        }
    }

    /// Start no more tasks: the ready ones are skipped now, the rest when
    /// the running ones are done.
    fn stop(&self, state: &mut State, reason: &str, on_event: &(dyn Fn(&Event) + Sync)) {
        state.stopped = Some(reason.to_string());
        let waiting: Vec<usize> = std::mem::take(&mut state.ready)
            .into_iter()
            .map(|(_, i)| i)
            .collect();
        for i in waiting {
            self.report_skip(state, i, reason.to_string(), on_event);
        }
    }

    /// Skip every task: the run cannot start (an on-run-start hook failed).
    fn abort(&self, reason: &str, on_event: &(dyn Fn(&Event) + Sync)) {
        let mut state = self.lock();
        state.ready.clear();
        for i in 0..self.tasks.len() {
            if state.results[i].is_none() {
                self.report_skip(&mut state, i, reason.to_string(), on_event);
            }
        }
    }

    /// Tasks never reached: only after fail_fast stopped the run.
    fn skip_stranded(&self, state: &mut State, on_event: &(dyn Fn(&Event) + Sync)) {
        let stranded: Vec<usize> = (0..self.tasks.len())
            .filter(|&i| state.results[i].is_none())
            .collect();
        for i in stranded {
            let reason = match &state.stopped {
                Some(reason) => reason.clone(),
                None => "skipped: its upstream tasks never finished".to_string(),
            };
            self.report_skip(state, i, reason, on_event);
        }
    }

    fn report_skip(
        &self,
        state: &mut State,
        index: usize,
        reason: String,
        on_event: &(dyn Fn(&Event) + Sync),
    ) {
        let task = &self.tasks[index];
        let result = skipped(task, reason);
        state.reported += 1;
        on_event(&Event::Finish {
            index: state.reported,
            total: self.tasks.len(),
            task,
            result: &result,
        });
        state.results[index] = Some(result);
    }

    /// The results in plan order.
    fn into_results(self) -> Vec<NodeResult> {
        let state = self
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        state.results.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Materialization, Relation};
    use std::sync::Mutex as StdMutex;

    fn task(name: &str, upstream: &[&str]) -> Task {
        Task {
            unique_id: format!("model.p.{name}"),
            name: name.to_string(),
            resource_type: ResourceType::Model,
            materialization: Materialization::View,
            relation: Relation {
                quoting: Default::default(),
                database: "d".into(),
                schema: "s".into(),
                identifier: name.into(),
            },
            upstream: upstream.iter().map(|u| format!("model.p.{u}")).collect(),
            retries: 0,
            tags: vec![],
        }
    }

    fn result(task: &Task, ok: bool) -> NodeResult {
        let mut r = skipped(task, String::new());
        r.status = if ok { Status::Success } else { Status::Error };
        r
    }

    /// Drive the scheduler on one thread, failing the named tasks; returns the event log.
    fn simulate(plan: &Plan, fail: &[&str], fail_fast: bool) -> (Vec<String>, Vec<NodeResult>) {
        let log = StdMutex::new(Vec::new());
        let on_event = |event: &Event| {
            let line = match event {
                Event::Start { index, total, task } => {
                    format!("{index} of {total} START {}", task.name)
                }
                Event::Finish {
                    index,
                    total,
                    task,
                    result,
                } if result.message.is_empty() => {
                    format!(
                        "{index} of {total} {} {}",
                        result.status.as_str(),
                        task.name
                    )
                }
                Event::Finish {
                    index,
                    total,
                    task,
                    result,
                } => format!(
                    "{index} of {total} {} {}: {}",
                    result.status.as_str(),
                    task.name,
                    result.message
                ),
                Event::Hook { name, .. } => format!("hook {name}"),
            };
            log.lock().unwrap().push(line);
        };
        let scheduler = Scheduler::new(plan, fail_fast, None);
        while let Some((index, task)) = scheduler.next(&on_event, &mut || {}) {
            let ok = !fail.contains(&task.name.as_str());
            scheduler.finish(index, result(task, ok), &on_event);
        }
        (log.into_inner().unwrap(), scheduler.into_results())
    }

    fn shop_plan() -> Plan {
        Plan {
            target_name: "dev".into(),
            tasks: vec![
                task("raw", &[]),
                task("stg_a", &["raw"]),
                task("stg_b", &["raw"]),
                task("mart", &["stg_a", "stg_b"]),
                task("report", &["mart"]),
                task("other", &[]),
            ],
        }
    }

    #[test]
    fn failures_skip_everything_downstream_and_nothing_else() {
        let (log, results) = simulate(&shop_plan(), &["stg_a"], false);
        insta::assert_snapshot!(log.join("\n"), @r"
        1 of 6 START raw
        1 of 6 success raw
        2 of 6 START stg_a
        2 of 6 error stg_a
        3 of 6 skipped mart: skipped because upstream `stg_a` failed
        4 of 6 skipped report: skipped because upstream `stg_a` failed
        5 of 6 START stg_b
        5 of 6 success stg_b
        6 of 6 START other
        6 of 6 success other
        ");
        assert_eq!(results.len(), 6);
        assert_eq!(results[3].unique_id, "model.p.mart");
    }

    #[test]
    fn fail_fast_stops_starting_tasks() {
        let (log, results) = simulate(&shop_plan(), &["raw"], true);
        insta::assert_snapshot!(log.join("\n"), @r"
        1 of 6 START raw
        1 of 6 error raw
        2 of 6 skipped stg_a: skipped because upstream `raw` failed
        3 of 6 skipped stg_b: skipped because upstream `raw` failed
        4 of 6 skipped mart: skipped because upstream `raw` failed
        5 of 6 skipped report: skipped because upstream `raw` failed
        6 of 6 skipped other: skipped because the run stopped after `raw` failed (--fail-fast)
        ");
        assert!(results.iter().skip(1).all(|r| r.status == Status::Skipped));
    }

    #[test]
    fn upstream_outside_the_plan_is_not_waited_for() {
        let plan = Plan {
            target_name: "dev".into(),
            tasks: vec![task("mart", &["not_selected"])],
        };
        let (_, results) = simulate(&plan, &[], false);
        assert_eq!(results[0].status, Status::Success);
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
