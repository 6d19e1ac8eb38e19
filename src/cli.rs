//! The `weir` command line: dbt's commands and flags, each a thin call into
//! the library. Exit status 0 on success, 1 when a node failed, 2 on a usage
//! or project error.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value as Json, json};

use crate::compile::{CompileOptions, Compiled};
use crate::env::secrets::{scrub, scrub_with};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Manifest, Materialization, Node, ResourceType};
use crate::plan::{Plan, RetryPolicy, Task};
use crate::progress::Progress;
use crate::results::{RunResults, Status};
use crate::runner::{CancelHandle, Event, RunOptions};
use crate::select::list::{ListOptions, ListOutput};
use crate::select::{IndirectSelection, Selection};

#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "Compile and run dbt-style SQL projects, one task per model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render every model and write target/manifest.json and target/compiled/.
    Compile(ProjectArgs),
    /// List the selected nodes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Load the CSV seeds into tables.
    Seed(RunArgs),
    /// Build the selected models.
    Run(RunArgs),
    /// Run the data tests of the selected nodes.
    Test(RunArgs),
    /// Build seeds and models and run their tests, in DAG order.
    Build(RunArgs),
    /// Take the selected snapshots: record what changed in their queries.
    Snapshot(RunArgs),
    /// Run again what errored, failed or was skipped in the last run
    /// (target/run_results.json), with its command, selection and target.
    Retry(RetryArgs),
    /// Show the target and check the connection.
    Debug(ProjectArgs),
    /// Drop the CI schemas weir created on the target (weir_meta.ci_schemas),
    /// all of them or those unused for a while; nothing else.
    Clean(CleanArgs),
    /// Blue-green: build and test the whole project in `<schema>__next`, then
    /// swap every schema in at once, keeping the old set as `<schema>__prev`.
    Deploy(DeployArgs),
    /// Swap the set the last deploy replaced (`<schema>__prev`) back in.
    Rollback(DeployArgs),
    /// Print (or apply) the roles and grants of the environment layout:
    /// protected targets own their schemas, developers and CI only read them.
    Grants(GrantsArgs),
    /// Manage the embedded local PostgreSQL of a project.
    Local(LocalArgs),
}

#[derive(Debug, Args)]
struct ProjectArgs {
    /// The folder holding dbt_project.yml (default: the current folder).
    #[arg(long, global = true)]
    project_dir: Option<PathBuf>,
    /// The folder holding profiles.yml (default: $DBT_PROFILES_DIR, the project folder, ~/.dbt).
    #[arg(long, global = true)]
    profiles_dir: Option<PathBuf>,
    /// The target of the profile to use (default: the profile's `target:`).
    #[arg(long, short = 't', global = true)]
    target: Option<String>,
    /// Variables as a YAML mapping, overriding the project's vars: --vars '{key: value}'.
    #[arg(long, global = true)]
    vars: Option<String>,
    /// Nodes to include (dbt selection syntax); repeatable.
    #[arg(long, short = 's', num_args = 1.., global = true, alias = "models", short_alias = 'm')]
    select: Vec<String>,
    /// Nodes to leave out (dbt selection syntax); repeatable.
    #[arg(long, num_args = 1.., global = true)]
    exclude: Vec<String>,
    /// A selector defined in the project's selectors.yml; replaces --select and --exclude.
    #[arg(long, global = true)]
    selector: Option<String>,
    /// Which tests come with the nodes they test: eager (any of them is
    /// selected), cautious (all are), buildable (all are, or are their
    /// ancestors), empty (none).
    #[arg(long, global = true, value_name = "MODE")]
    indirect_selection: Option<String>,
    /// An earlier run's target/ folder (its manifest.json, weir_state.json and
    /// run_results.json), for `state:` and `result:` selection and --defer.
    #[arg(long, global = true, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Parents this run does not build, missing on this target, are read
    /// from where the --state run built them.
    #[arg(long, global = true)]
    defer: bool,
    /// With --defer: read unbuilt parents from the --state run even when they
    /// exist on this target.
    #[arg(long, global = true)]
    favor_state: bool,
    /// Build every schema as `<schema>_<suffix>` (a pull request or commit),
    /// recorded for `weir clean` [env: WEIR_SCHEMA_SUFFIX].
    #[arg(long, global = true, value_name = "SUFFIX")]
    schema_suffix: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    project: ProjectArgs,
    /// How many nodes to build at once (default: the target's threads).
    #[arg(long)]
    threads: Option<usize>,
    /// Rebuild incremental models and seeds from scratch.
    #[arg(long)]
    full_refresh: bool,
    /// Stop at the first failure.
    #[arg(long, short = 'x')]
    fail_fast: bool,
    /// Run a protected target (prod) outside CI: for emergencies only.
    #[arg(long)]
    allow_protected: bool,
    /// Retry transient failures (lost connection, deadlock) this many times,
    /// unless a node's `retries` config says otherwise (default: the target's policy).
    #[arg(long)]
    retries: Option<u32>,
    /// Cancel a node that runs longer than this many seconds (a node's
    /// `timeout` config wins).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Keep the failing rows of tests in `<schema>_dbt_test__audit` (a test's
    /// `store_failures` config wins).
    #[arg(long)]
    store_failures: bool,
    /// `text` lines as dbt prints them, or one JSON object per line for machines.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct DeployArgs {
    #[command(flatten)]
    project: ProjectArgs,
    /// How many nodes to build at once (default: the target's threads).
    #[arg(long)]
    threads: Option<usize>,
    /// Run a protected target (prod) outside CI: for emergencies only.
    #[arg(long)]
    allow_protected: bool,
}

#[derive(Debug, Args)]
struct GrantsArgs {
    #[command(flatten)]
    project: ProjectArgs,
    /// Run the SQL on the target's database (as a role that may create roles),
    /// instead of printing it.
    #[arg(long)]
    apply: bool,
    /// A developer's login role, besides `vars: weir: grants: developers:`; repeatable.
    #[arg(long = "developer", value_name = "ROLE")]
    developers: Vec<String>,
    /// Apply on a protected target outside CI.
    #[arg(long)]
    allow_protected: bool,
}

#[derive(Debug, Args)]
struct CleanArgs {
    #[command(flatten)]
    project: ProjectArgs,
    /// Only schemas no run has used for this long: 7d, 12h, 30m, 2w.
    #[arg(long, value_name = "AGE")]
    older_than: Option<String>,
    /// Print what would be dropped, and drop nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct RetryArgs {
    /// The folder holding dbt_project.yml (default: the current folder).
    #[arg(long)]
    project_dir: Option<PathBuf>,
    /// The folder holding profiles.yml (default: as the last run found it).
    #[arg(long)]
    profiles_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LsOutput {
    Name,
    Path,
    Json,
    Selector,
}

#[derive(Debug, Args)]
struct LsArgs {
    #[command(flatten)]
    project: ProjectArgs,
    /// What to print for each node.
    #[arg(long, short = 'o', value_enum, default_value = "selector")]
    output: LsOutput,
    /// Only these resource types (model, seed, test, source, snapshot,
    /// analysis, exposure, ..., or `default` and `all`).
    #[arg(long, alias = "resource-types", num_args = 1..)]
    resource_type: Vec<String>,
    /// Leave out these resource types.
    #[arg(long, alias = "exclude-resource-types", num_args = 1..)]
    exclude_resource_type: Vec<String>,
    /// With `--output json`: print these keys (dotted for nested ones)
    /// instead of dbt's default set.
    #[arg(long, num_args = 1..)]
    output_keys: Vec<String>,
}

#[derive(Debug, Args)]
struct LocalArgs {
    #[arg(value_enum)]
    action: LocalAction,
    /// The folder holding dbt_project.yml (default: the current folder).
    #[arg(long)]
    project_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LocalAction {
    Start,
    Stop,
    Status,
}

/// Parse the command line, run the command, and return the exit status.
pub fn main() -> i32 {
    crate::timing::phase("main");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { 2 } else { 0 };
        }
    };
    match run_command(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", scrub(&err.to_string()));
            err.exit_code()
        }
    }
}

fn run_command(command: Command) -> Result<i32> {
    match command {
        Command::Compile(args) => compile_command(&args),
        Command::Ls(args) => ls_command(&args),
        Command::Seed(args) => run_nodes(&args, Some(ResourceType::Seed), None),
        Command::Run(args) => run_nodes(&args, Some(ResourceType::Model), None),
        Command::Test(args) => run_nodes(&args, Some(ResourceType::Test), None),
        Command::Build(args) => run_nodes(&args, None, None),
        Command::Snapshot(args) => run_nodes(&args, Some(ResourceType::Snapshot), None),
        Command::Retry(args) => retry_command(&args),
        Command::Debug(args) => debug_command(&args),
        Command::Clean(args) => clean_command(&args),
        Command::Deploy(args) => deploy_command(&args),
        Command::Rollback(args) => rollback_command(&args),
        Command::Grants(args) => grants_command(&args),
        Command::Local(args) => local_command(&args),
    }
}

impl ProjectArgs {
    fn compile_options(&self) -> Result<CompileOptions> {
        let project_dir = match &self.project_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().map_err(|e| Error::io(".", e))?,
        };
        Ok(CompileOptions {
            project_dir,
            profiles_dir: self.profiles_dir.clone(),
            target: self.target.clone(),
            vars: parse_vars(self.vars.as_deref())?,
        })
    }

    /// The selection arguments, with the project's selectors.yml and the --state run.
    fn selection(&self, compiled: &Compiled) -> Result<Selection> {
        let project = &compiled.project;
        let indirect_selection = match &self.indirect_selection {
            Some(mode) => IndirectSelection::parse(mode).map_err(|e| {
                Error::new(
                    ErrorKind::Usage,
                    format!("--indirect-selection: {}", e.message()),
                )
            })?,
            None => IndirectSelection::default(),
        };
        Ok(Selection {
            select: self.select.clone(),
            exclude: self.exclude.clone(),
            selector: self.selector.clone(),
            indirect_selection,
            state: self.state(compiled)?,
            ..Selection::for_project(&project.root)?
        })
    }

    /// The --state run compared with this one.
    fn state(
        &self,
        compiled: &Compiled,
    ) -> Result<Option<std::sync::Arc<crate::env::state::State>>> {
        match &self.state {
            Some(dir) => Ok(Some(std::sync::Arc::new(crate::env::state::State::load(
                dir, compiled,
            )?))),
            None if self.defer || self.favor_state => Err(Error::new(
                ErrorKind::Usage,
                "--defer and --favor-state need --state DIR: the run to read unbuilt parents from",
            )),
            None => Ok(None),
        }
    }

    /// Compile and write target/manifest.json, as every dbt command does,
    /// and weir_state.json beside it for later `--state` comparisons.
    fn compile(&self) -> Result<Compiled> {
        let compiled = self.compile_unwritten()?;
        write_artifacts(&compiled)?;
        Ok(compiled)
    }

    /// Compile without writing anything.
    fn compile_unwritten(&self) -> Result<Compiled> {
        let mut keys = Vec::new();
        if let Some(suffix) = &self.schema_suffix {
            keys.push((crate::env::naming::SUFFIX_KEY, Json::String(suffix.clone())));
        }
        crate::env::naming::compile_with(&self.compile_options()?, &keys)
    }
}

/// target/manifest.json and weir_state.json, written at once.
fn write_artifacts(compiled: &Compiled) -> Result<()> {
    let (fingerprints, manifest) = crate::parallel::both(
        || crate::env::state::write_fingerprints(compiled),
        || compiled.manifest.write(&compiled.project.target_dir()),
    );
    manifest?;
    fingerprints?;
    crate::timing::phase("manifest and fingerprints written");
    Ok(())
}

/// `--vars '{key: value}'`: a YAML (or JSON) mapping.
fn parse_vars(text: Option<&str>) -> Result<Map<String, Json>> {
    let Some(text) = text else {
        return Ok(Map::new());
    };
    let value = crate::project::yaml::parse(text, std::path::Path::new("--vars"))
        .map_err(|e| Error::new(ErrorKind::Usage, e.message().to_string()))?;
    match crate::project::yaml::to_json(&value) {
        Json::Object(map) => Ok(map),
        _ => Err(Error::new(
            ErrorKind::Usage,
            format!("--vars must be a YAML mapping like '{{key: value}}', got `{text}`"),
        )),
    }
}

fn compile_command(args: &ProjectArgs) -> Result<i32> {
    let started = Instant::now();
    let compiled = args.compile()?;
    let selected = args.selection(&compiled)?.resolve(&compiled.manifest)?;
    crate::timing::phase("selection");
    let compiled_dir = compiled.project.target_dir().join("compiled");
    let models: Vec<&Node> = selected
        .iter()
        .map(|id| &compiled.manifest.nodes[id])
        .filter(|node| node.resource_type == ResourceType::Model)
        .collect();
    let written = crate::parallel::map(&models, |node| {
        let path = compiled_dir
            .join(&node.package_name)
            .join(&node.original_file_path);
        // Rewriting thousands of unchanged files costs more than reading them.
        if std::fs::read(&path).is_ok_and(|old| old == node.compiled_code.as_bytes()) {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let sql = scrub(&node.compiled_code);
        crate::atomic_file::write(&path, sql.as_bytes()).map_err(|e| Error::io(&path, e))
    });
    written.into_iter().collect::<Result<()>>()?;
    crate::timing::phase("compiled files");
    println!(
        "Compiled {} for target `{}` in {:.2}s{}; wrote {}",
        found_summary(&compiled.manifest),
        compiled.target.name,
        started.elapsed().as_secs_f64(),
        if compiled.manifest.metadata.reused {
            " (reused: no input changed)"
        } else {
            ""
        },
        compiled
            .project
            .target_dir()
            .join("manifest.json")
            .display()
    );
    // The process ends here: freeing a large project's nodes one by one
    // would only add to the wall time.
    std::mem::forget(compiled);
    Ok(0)
}

fn ls_command(args: &LsArgs) -> Result<i32> {
    let compiled = args.project.compile()?;
    let selection = args.project.selection(&compiled)?;
    let options = ListOptions {
        output: match args.output {
            LsOutput::Name => ListOutput::Name,
            LsOutput::Path => ListOutput::Path,
            LsOutput::Json => ListOutput::Json,
            LsOutput::Selector => ListOutput::Selector,
        },
        resource_types: args.resource_type.clone(),
        exclude_resource_types: args.exclude_resource_type.clone(),
        output_keys: args.output_keys.clone(),
    };
    let lines = crate::select::list::list(&compiled.manifest, &selection, &options)?;
    // dbt logs these warnings among its other lines; here they go to stderr,
    // so that stdout stays the listing alone for scripts that read it.
    let now = std::time::SystemTime::now();
    for criterion in selection.unmatched(&compiled.manifest, !lines.is_empty())? {
        eprint!(
            "{}",
            scrub(&timestamped(&unmatched_message(&criterion), now))
        );
    }
    if lines.is_empty() {
        eprintln!("No nodes selected!");
    }
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{}", scrub(&line));
    }
    Ok(0)
}

/// What `weir retry` runs again: the command line of the run it retries
/// and the nodes to run.
struct Retrying {
    invocation: Vec<String>,
    unique_ids: HashSet<String>,
}

fn run_nodes(args: &RunArgs, only: Option<ResourceType>, retry: Option<Retrying>) -> Result<i32> {
    JSON_LOG.store(args.log_format == LogFormat::Json, Ordering::Relaxed);
    let warming = warm_up(args, retry.is_some());
    let mut compiled = args.project.compile_unwritten()?;
    let selection = args.project.selection(&compiled)?;
    let manifest = &compiled.manifest;
    let mut policy = RetryPolicy::for_target(&compiled.target.name);
    if let Some(retries) = args.retries {
        policy.default_retries = retries;
    }
    let mut plan = Plan::build(manifest, &selection, &policy)?;
    let unmatched = selection.unmatched(manifest, !plan.tasks.is_empty())?;
    if let Some(kind) = only {
        plan.tasks.retain(|t| t.resource_type == kind);
    }
    crate::timing::phase("selection and plan");
    if let Some(retry) = &retry {
        plan.tasks
            .retain(|t| retry.unique_ids.contains(&t.unique_id));
    }
    // Before any SQL: a protected target runs only from CI, and no relation
    // lands in a schema a protected target owns.
    crate::env::protect::preflight(&compiled, &plan, args.allow_protected, args.store_failures)?;
    // A CI run records its schemas before creating them, for `weir clean`.
    if let Some(suffix) = crate::env::naming::schema_suffix(&compiled.target) {
        let schemas = crate::env::ci::plan_schemas(&compiled.manifest, &plan, args.store_failures);
        if !schemas.is_empty() {
            let mut adapter = crate::adapter::connect(&compiled.target, &compiled.project.root)?;
            crate::env::ci::record(&mut adapter, &schemas, &suffix, &compiled.target.name)?;
        }
    }
    if args.project.defer
        && let Some(state) = &selection.state
    {
        // The manifest shows the project as compiled, before deferral.
        write_artifacts(&compiled)?;
        defer_parents(&mut compiled, state, &plan, args.project.favor_state)?;
        let outcome = run_plan(args, &compiled, &plan, &unmatched, retry, warming);
        std::mem::forget((compiled, plan));
        return outcome;
    }
    // The artifacts are written while the run starts: for one model of a
    // large project, writing them takes longer than running it.
    let (written, outcome) = crate::parallel::both(
        || write_artifacts(&compiled),
        || run_plan(args, &compiled, &plan, &unmatched, retry, warming),
    );
    // The process ends after the run: freeing every node one by one would
    // only add to its wall time (tens of milliseconds at 10,000 models).
    std::mem::forget((compiled, plan));
    written?;
    outcome
}

/// Start opening the run's connections while the project compiles: as
/// many as it has threads when it runs the whole project, one when a
/// selection may leave a single node.
fn warm_up(args: &RunArgs, retrying: bool) -> Option<crate::runner::Warming> {
    let project = &args.project;
    let selects = retrying
        || !project.select.is_empty()
        || !project.exclude.is_empty()
        || project.selector.is_some();
    let project_dir = match &project.project_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().ok()?,
    };
    crate::runner::Warming::start(
        &project_dir,
        project.profiles_dir.as_deref(),
        project.target.as_deref(),
        args.allow_protected,
        |target| match selects {
            true => 1,
            false => args.threads.unwrap_or(target.threads).max(1),
        },
    )
}

/// Run `plan` and report it: per-node lines, run_results.json, a summary.
/// `unmatched`: the selection criteria that matched nothing, warned about.
fn run_plan(
    args: &RunArgs,
    compiled: &Compiled,
    plan: &Plan,
    unmatched: &[String],
    retry: Option<Retrying>,
    warming: Option<crate::runner::Warming>,
) -> Result<i32> {
    let manifest = &compiled.manifest;
    log(
        "MainReportVersion",
        &format!(
            "Running with weir {} on target `{}`",
            env!("CARGO_PKG_VERSION"),
            compiled.target.name
        ),
        json!({}),
    );
    log(
        "FoundStats",
        &format!("Found {}", found_summary(manifest)),
        json!({}),
    );
    for criterion in unmatched {
        log(
            "NoNodesForSelectionCriteria",
            &unmatched_message(criterion),
            json!({"spec_raw": criterion}),
        );
    }
    if plan.tasks.is_empty() {
        if retry.is_some() {
            let message = "Nothing to retry: the last run had no errors, failures or skips.";
            log("NothingToDo", message, json!({}));
            return Ok(0);
        }
        // As dbt: no hooks, no SQL, exit 0, and a run_results.json
        // with no results, so that nothing reads the previous run's as this one's.
        let message = "Nothing to do. Try checking your model configs and model specification args";
        log("NothingToDo", message, json!({}));
        let options = RunOptions {
            threads: args.threads.unwrap_or(compiled.target.threads).max(1),
            fail_fast: args.fail_fast,
            full_refresh: args.full_refresh,
            ..RunOptions::default()
        };
        let results = RunResults {
            invocation_id: manifest.metadata.invocation_id.clone(),
            generated_at: crate::clock::now_rfc3339(),
            elapsed_time: 0.0,
            args: run_args(&invocation_args(), args, compiled, &options),
            results: Vec::new(),
        };
        results.write(&compiled.project.target_dir())?;
        return Ok(0);
    }
    log("Blank", "", json!({}));
    let timeout = match args.timeout {
        Some(seconds) if seconds > 0.0 && seconds.is_finite() => {
            Some(std::time::Duration::from_secs_f64(seconds))
        }
        Some(seconds) => {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("--timeout must be a positive number of seconds, got {seconds}"),
            ));
        }
        None => None,
    };
    let options = RunOptions {
        threads: args.threads.unwrap_or(compiled.target.threads).max(1),
        fail_fast: args.fail_fast,
        full_refresh: args.full_refresh,
        store_failures: args.store_failures,
        timeout,
        cancel: CancelHandle::new(),
        connections: warming
            .map(crate::runner::Warming::finish)
            .unwrap_or_default(),
    };
    crate::timing::phase("connections warmed");
    options.cancel.cancel_on_signals();
    let json_log = args.log_format == LogFormat::Json;
    let progress = crate::progress::wanted(json_log).then(|| Progress::start(plan.tasks.len()));
    // Asked once: the lines are printed under the scheduler's lock.
    let secrets = crate::env::secrets::known();
    let on_event = |event: &Event| {
        if let Some(progress) = &progress {
            progress.update(event);
        }
        print_event(event, &secrets);
    };
    let mut results = crate::runner::run(compiled, plan, &options, &on_event)?;
    drop(progress);
    crate::timing::phase("run");
    let invocation = match retry {
        Some(retry) => retry.invocation,
        None => invocation_args(),
    };
    results.args = run_args(&invocation, args, compiled, &options);
    results.write(&compiled.project.target_dir())?;
    crate::timing::phase("run_results.json written");
    print_summary(plan, &results);
    print_skipped_side_effects();
    if options.cancel.is_cancelled() {
        return Ok(130);
    }
    Ok(if results.has_failures() { 1 } else { 0 })
}

/// This process's arguments after the program name, without the project and
/// profiles folders (`weir retry` is told those anew).
fn invocation_args() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--project-dir" || arg == "--profiles-dir" {
            args.next();
        } else if !arg.starts_with("--project-dir=") && !arg.starts_with("--profiles-dir=") {
            out.push(arg);
        }
    }
    out
}

/// run_results.json's `args`: dbt's keys, and the command line `weir retry` replays.
fn run_args(
    invocation: &[String],
    args: &RunArgs,
    compiled: &Compiled,
    options: &RunOptions,
) -> Json {
    json!({
        "which": invocation.first().cloned().unwrap_or_default(),
        "select": args.project.select,
        "exclude": args.project.exclude,
        "target": compiled.target.name,
        "vars": compiled.cli_vars,
        "threads": options.threads,
        "full_refresh": options.full_refresh,
        "fail_fast": options.fail_fast,
        "project_dir": compiled.project.root.display().to_string(),
        "profiles_dir": args.project.profiles_dir.as_ref().map(|d| d.display().to_string()),
        "log_format": match args.log_format { LogFormat::Json => "json", LogFormat::Text => "text" },
        "invocation_command": format!("weir {}", invocation.join(" ")),
        "weir_invocation": invocation,
    })
}

/// `weir retry`: the last run's command again, limited to what did not succeed.
fn retry_command(args: &RetryArgs) -> Result<i32> {
    let project_dir = match &args.project_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|e| Error::io(".", e))?,
    };
    let project = crate::project::Project::load(&project_dir)?;
    let path = project.target_dir().join("run_results.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::io(&path, e).with_hint("weir retry needs the run_results.json of a previous run")
    })?;
    let previous: Json = serde_json::from_str(&text).map_err(|e| {
        Error::new(ErrorKind::Project, format!("not a run_results.json: {e}")).in_file(&path)
    })?;
    let invocation: Vec<String> = previous["args"]["weir_invocation"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if invocation.is_empty() {
        return Err(Error::new(
            ErrorKind::Project,
            "the last run left no command line to retry (args.weir_invocation)",
        )
        .in_file(&path));
    }
    let unique_ids: HashSet<String> = previous["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| matches!(r["status"].as_str(), Some("error" | "fail" | "skipped")))
        .filter_map(|r| r["unique_id"].as_str())
        .filter(|id| !id.starts_with("operation."))
        .map(str::to_string)
        .collect();
    let mut argv = vec!["weir".to_string()];
    argv.extend(invocation.iter().cloned());
    argv.push("--project-dir".into());
    argv.push(project_dir.display().to_string());
    let profiles_dir = args
        .profiles_dir
        .clone()
        .or_else(|| previous["args"]["profiles_dir"].as_str().map(PathBuf::from));
    if let Some(dir) = profiles_dir {
        argv.push("--profiles-dir".into());
        argv.push(dir.display().to_string());
    }
    let cli = Cli::try_parse_from(&argv).map_err(|e| {
        Error::new(
            ErrorKind::Project,
            format!("cannot replay `weir {}`: {e}", invocation.join(" ")),
        )
        .in_file(&path)
    })?;
    let retry = Retrying {
        invocation,
        unique_ids,
    };
    match cli.command {
        Command::Seed(args) => run_nodes(&args, Some(ResourceType::Seed), Some(retry)),
        Command::Run(args) => run_nodes(&args, Some(ResourceType::Model), Some(retry)),
        Command::Test(args) => run_nodes(&args, Some(ResourceType::Test), Some(retry)),
        Command::Build(args) => run_nodes(&args, None, Some(retry)),
        Command::Snapshot(args) => run_nodes(&args, Some(ResourceType::Snapshot), Some(retry)),
        _ => Err(Error::new(
            ErrorKind::Project,
            format!("`weir {}` cannot be retried", retry.invocation.join(" ")),
        )
        .in_file(&path)),
    }
}

/// dbt's NoNodesForSelectionCriteria warning.
fn unmatched_message(criterion: &str) -> String {
    format!("The selection criterion '{criterion}' does not match any enabled nodes")
}

/// `--log-format json`, for the whole process.
static JSON_LOG: AtomicBool = AtomicBool::new(false);

/// Print one line of a run: `HH:MM:SS  message` as dbt does, or a JSON
/// object in dbt's shape (`info` with name, msg, level, ts; `data`).
fn log(name: &str, message: &str, data: Json) {
    let now = std::time::SystemTime::now();
    if JSON_LOG.load(Ordering::Relaxed) {
        if message.is_empty() {
            return;
        }
        let level = if name.contains("Error") {
            "error"
        } else if matches!(name, "NothingToDo" | "NoNodesForSelectionCriteria") {
            "warn"
        } else {
            "info"
        };
        let line = json!({
            "info": {
                "name": name,
                "msg": message,
                "level": level,
                "ts": crate::clock::rfc3339(now),
                "invocation_id": Json::Null,
            },
            "data": data,
        });
        println!("{line}");
    } else {
        crate::progress::print(&timestamped(message, now));
    }
}

/// `message` as dbt prints a log line: each line after `HH:MM:SS  `.
fn timestamped(message: &str, now: std::time::SystemTime) -> String {
    let ts = crate::clock::rfc3339(now);
    // `2026-11-21T08:19:00.123456Z` -> `08:19:00`
    let time = ts.get(11..19).unwrap_or("");
    let mut text = String::new();
    for line in message.lines() {
        if !line.is_empty() {
            text.push_str(time);
            text.push_str("  ");
            text.push_str(line);
        }
        text.push('\n');
    }
    if text.is_empty() {
        text.push('\n');
    }
    text
}

/// `--defer`: point the selected nodes at the --state run's relations of
/// the parents this run does not build, and say which.
fn defer_parents(
    compiled: &mut Compiled,
    state: &crate::env::state::State,
    plan: &Plan,
    favor_state: bool,
) -> Result<()> {
    use crate::adapter::Adapter;
    let selected = plan.tasks.iter().map(|t| t.unique_id.clone()).collect();
    let mut adapter = None;
    let (target, root) = (compiled.target.clone(), compiled.project.root.clone());
    let mut exists = |relation: &crate::manifest::Relation| -> Result<bool> {
        let adapter = match &mut adapter {
            Some(adapter) => adapter,
            None => adapter.insert(crate::adapter::connect(&target, &root)?),
        };
        Ok(!adapter
            .relation_kinds(&relation.schema, &[relation.identifier.as_str()])?
            .is_empty())
    };
    let deferred = crate::env::state::defer(
        &mut compiled.manifest,
        state,
        &selected,
        favor_state,
        &mut exists,
    )?;
    for (parent, relation) in deferred {
        log(
            "DeferRelation",
            &format!(
                "Deferring {} to {relation} (--state)",
                crate::graph::short_name(&parent)
            ),
            json!({"unique_id": parent, "relation_name": relation.to_string()}),
        );
    }
    Ok(())
}

/// What side effects this run skipped, as `[dev] would run: ...` lines.
fn print_skipped_side_effects() {
    let notes = crate::env::side_effects::take_notes();
    if notes.is_empty() {
        return;
    }
    println!("\nSide effects run only on protected targets; skipped here:");
    for note in notes {
        println!("  {note}");
    }
}

/// `3 models, 3 seeds, 1 source`.
fn found_summary(manifest: &Manifest) -> String {
    let count = |kind: ResourceType| {
        manifest
            .nodes
            .values()
            .filter(|n| n.resource_type == kind)
            .count()
    };
    let mut parts = vec![
        plural(count(ResourceType::Model), "model"),
        plural(count(ResourceType::Seed), "seed"),
        plural(count(ResourceType::Test), "data test"),
    ];
    if !manifest.sources.is_empty() {
        parts.push(plural(manifest.sources.len(), "source"));
    }
    parts.join(", ")
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `sql table model`, `seed file`: how dbt names what a task builds.
fn task_description(task: &Task) -> String {
    match (task.resource_type, &task.materialization) {
        (ResourceType::Seed, _) => "seed file".to_string(),
        (ResourceType::Snapshot, _) => "snapshot".to_string(),
        (ResourceType::Test, _) | (_, Materialization::Test) => "test".to_string(),
        (_, m) => format!("sql {} model", m.as_str()),
    }
}

/// What a progress line names: `schema.relation`, or a test's name.
fn task_label(task: &Task) -> String {
    if task.resource_type == ResourceType::Test {
        task.name.clone()
    } else {
        format!("{}.{}", task.relation.schema, task.relation.identifier)
    }
}

/// A dbt progress line: text, dots, and a bracketed status at column 80.
fn progress_line(index: usize, total: usize, text: &str, status: &str) -> String {
    let head = format!("{index} of {total} {text} ");
    let dots = 80usize.saturating_sub(head.len() + status.len() + 1).max(3);
    format!("{head}{} {status}", ".".repeat(dots))
}

/// A node's line; `secrets` are masked in it (see [`crate::env::secrets::known`]).
fn print_event(event: &Event, secrets: &[String]) {
    let name = match event {
        Event::Start { .. } => "NodeStart",
        Event::Finish { .. } => "NodeFinished",
        Event::Hook { .. } => "HookFinished",
    };
    // Only the JSON log prints the data.
    let data = if JSON_LOG.load(Ordering::Relaxed) {
        event_data(event, secrets)
    } else {
        Json::Null
    };
    let line = match event {
        Event::Start { index, total, task } => {
            let text = format!("START {} {}", task_description(task), task_label(task));
            progress_line(*index, *total, &text, "[RUN]")
        }
        Event::Hook {
            name,
            index,
            total,
            result,
        } => {
            let took = result.execution_time;
            let (word, status) = match result.status {
                Status::Error => ("ERROR", format!("[ERROR in {took:.2}s]")),
                _ => ("OK", format!("[OK in {took:.2}s]")),
            };
            progress_line(*index, *total, &format!("{word} hook: {name}"), &status)
        }
        Event::Finish {
            index,
            total,
            task,
            result,
        } if task.resource_type == ResourceType::Test => {
            let took = result.execution_time;
            let failures = result.failures.unwrap_or(0);
            let (text, status) = match result.status {
                Status::Pass | Status::Success => (
                    format!("PASS {}", task.name),
                    format!("[PASS in {took:.2}s]"),
                ),
                Status::Warn => (
                    format!("WARN {failures} {}", task.name),
                    format!("[WARN {failures} in {took:.2}s]"),
                ),
                Status::Fail => (
                    format!("FAIL {failures} {}", task.name),
                    format!("[FAIL {failures} in {took:.2}s]"),
                ),
                Status::Error => (
                    format!("ERROR {}", task.name),
                    format!("[ERROR in {took:.2}s]"),
                ),
                Status::Skipped => (format!("SKIP test {}", task.name), "[SKIP]".to_string()),
            };
            progress_line(*index, *total, &text, &status)
        }
        Event::Finish {
            index,
            total,
            task,
            result,
        } => {
            let relation = format!("{}.{}", task.relation.schema, task.relation.identifier);
            let (word, status) = match result.status {
                Status::Success | Status::Pass => {
                    let word = match task.resource_type {
                        ResourceType::Seed => "OK loaded",
                        ResourceType::Snapshot => "OK snapshotted",
                        _ => "OK created",
                    };
                    (
                        word.to_string(),
                        format!("[{} in {:.2}s]", result.message, result.execution_time),
                    )
                }
                Status::Skipped => ("SKIP".to_string(), "[SKIP]".to_string()),
                Status::Warn => (
                    "WARN".to_string(),
                    format!("[WARN in {:.2}s]", result.execution_time),
                ),
                Status::Error | Status::Fail => (
                    "ERROR creating".to_string(),
                    format!("[ERROR in {:.2}s]", result.execution_time),
                ),
            };
            progress_line(
                *index,
                *total,
                &match (task.resource_type, result.status) {
                    // dbt: `OK snapshotted snapshots.orders_snapshot`.
                    (ResourceType::Snapshot, Status::Success) => format!("{word} {relation}"),
                    _ => format!("{word} {} {relation}", task_description(task)),
                },
                &status,
            )
        }
    };
    log(name, &scrub_with(&line, secrets), data);
}

/// The event's `data` in dbt's JSON log: node_info as dbt gives it.
fn event_data(event: &Event, secrets: &[String]) -> Json {
    let node_info = |task: &Task, status: &str, result: Option<&crate::results::NodeResult>| {
        json!({
            "unique_id": task.unique_id,
            "node_name": task.name,
            "resource_type": task.resource_type.as_str(),
            "materialized": task.materialization.as_str(),
            "node_status": status,
            "node_relation": {
                "database": task.relation.database,
                "schema": task.relation.schema,
                "alias": task.relation.identifier,
                "relation_name": task.relation.to_string(),
            },
            "execution_time": result.map(|r| r.execution_time),
            "message": result.map(|r| scrub_with(&r.message, secrets)),
            "failures": result.and_then(|r| r.failures),
            "rows_affected": result.and_then(|r| r.rows_affected),
            "adapter_response": result.filter(|r| !r.code.is_empty()).map(|r| json!({"_message": r.message, "code": r.code, "rows_affected": r.rows_affected})),
        })
    };
    match event {
        Event::Start { index, total, task } => {
            json!({"index": index, "total": total, "node_info": node_info(task, "started", None)})
        }
        Event::Finish {
            index,
            total,
            task,
            result,
        } => {
            json!({"index": index, "total": total, "node_info": node_info(task, result.status.as_str(), Some(result))})
        }
        Event::Hook {
            name,
            index,
            total,
            result,
        } => {
            json!({"index": index, "total": total, "hook": name, "status": result.status.as_str(), "execution_time": result.execution_time})
        }
    }
}

fn print_summary(plan: &Plan, results: &RunResults) {
    // As dbt counts: nodes, not the on-run-start / on-run-end hooks.
    let count = |status: Status| {
        results
            .results
            .iter()
            .filter(|r| r.status == status && !r.unique_id.starts_with("operation."))
            .count()
    };
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for task in &plan.tasks {
        let kind = match task.resource_type {
            ResourceType::Seed => "seed".to_string(),
            ResourceType::Snapshot => "snapshot".to_string(),
            ResourceType::Test => "data test".to_string(),
            _ => format!("{} model", task.materialization.as_str()),
        };
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| plural(*n, k)).collect();
    log("Blank", "", json!({}));
    log(
        "FinishedRunningStats",
        &format!(
            "Finished running {} in {:.2}s.",
            kinds.join(", "),
            results.elapsed_time
        ),
        json!({"elapsed_time": results.elapsed_time}),
    );
    let failures: Vec<_> = results
        .results
        .iter()
        .filter(|r| r.status.is_failure())
        .collect();
    let warnings: Vec<_> = results
        .results
        .iter()
        .filter(|r| r.status == Status::Warn)
        .collect();
    let outcome = if failures.is_empty() && warnings.is_empty() {
        "Completed successfully".to_string()
    } else if failures.is_empty() {
        format!("Completed with {}:", plural(warnings.len(), "warning"))
    } else if warnings.is_empty() {
        format!("Completed with {}:", plural(failures.len(), "error"))
    } else {
        format!(
            "Completed with {} and {}:",
            plural(failures.len(), "error"),
            plural(warnings.len(), "warning")
        )
    };
    log("Blank", "", json!({}));
    log("EndOfRunSummary", &outcome, json!({}));
    for result in failures.iter().chain(&warnings) {
        let what = match result.status {
            Status::Fail => "Failure in",
            Status::Warn => "Warning in",
            _ => "Error in",
        };
        log("Blank", "", json!({}));
        log(
            "RunResultError",
            &format!("  {what} {}: {}", result.unique_id, scrub(&result.message)),
            json!({"unique_id": result.unique_id, "status": result.status.as_str()}),
        );
    }
    let (pass, warn, error, skip) = (
        count(Status::Success) + count(Status::Pass),
        count(Status::Warn),
        count(Status::Error) + count(Status::Fail),
        count(Status::Skipped),
    );
    let total = plan.tasks.len();
    log("Blank", "", json!({}));
    log(
        "StatsLine",
        &format!("Done. PASS={pass} WARN={warn} ERROR={error} SKIP={skip} TOTAL={total}"),
        json!({"stats": {"pass": pass, "warn": warn, "error": error, "skip": skip, "total": total}}),
    );
}

fn deploy_command(args: &DeployArgs) -> Result<i32> {
    use crate::env::deploy::{self, Deploy};
    let project = &args.project;
    if !project.select.is_empty() || !project.exclude.is_empty() || project.selector.is_some() {
        return Err(Error::new(
            ErrorKind::Usage,
            "weir deploy builds the whole project: every schema of the set is swapped, so \
             --select, --exclude and --selector do not apply",
        ));
    }
    let deploy = Deploy::compile(&project.compile_options()?)?;
    // The live names are what later runs compare with (--state).
    deploy
        .live
        .manifest
        .write(&deploy.live.project.target_dir())?;
    crate::env::state::write_fingerprints(&deploy.live)?;
    let shadow = &deploy.shadow;
    let selection = Selection::for_project(&shadow.project.root)?;
    let plan = Plan::build(
        &shadow.manifest,
        &selection,
        &RetryPolicy::for_target(&shadow.target.name),
    )?;
    // A deploy runs without --store-failures (see the RunOptions below).
    crate::env::protect::preflight(shadow, &plan, args.allow_protected, false)?;
    println!(
        "Deploying {} to target `{}` through {}",
        found_summary(&shadow.manifest),
        shadow.target.name,
        deploy
            .schemas
            .iter()
            .map(|s| format!("{s}{}", deploy::NEXT))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut adapter = crate::adapter::connect(&shadow.target, &shadow.project.root)?;
    deploy::lock(&mut adapter, &shadow.target.name, &deploy.schemas)?;
    for warning in deploy::prepare(&mut adapter, &deploy)? {
        println!("note: {warning}");
    }
    println!();
    let options = RunOptions {
        threads: args.threads.unwrap_or(shadow.target.threads).max(1),
        ..RunOptions::default()
    };
    options.cancel.cancel_on_signals();
    let secrets = crate::env::secrets::known();
    let results = crate::runner::run(shadow, &plan, &options, &|e| print_event(e, &secrets))?;
    results.write(&shadow.project.target_dir())?;
    print_summary(&plan, &results);
    print_skipped_side_effects();
    if results.has_failures() {
        println!(
            "\nDeploy stopped before the swap: production is unchanged. The shadow set is \
             kept for inspection ({}{} ...) until the next deploy.",
            deploy.schemas.first().map_or("", String::as_str),
            deploy::NEXT
        );
        return Ok(1);
    }
    let swapped = deploy::swap(&mut adapter, &deploy.schemas)?;
    println!(
        "\nSwapped in {} schema(s) in one transaction: {}{}; the previous set is kept as \
         <schema>{} for `weir rollback`.",
        deploy.schemas.len(),
        deploy.schemas.join(", "),
        match swapped.lock_retries {
            0 => String::new(),
            n => format!(" (waited for readers {n} time(s))"),
        },
        deploy::PREV
    );
    Ok(0)
}

fn rollback_command(args: &DeployArgs) -> Result<i32> {
    let compiled = Compiled::load(&args.project.compile_options()?)?;
    crate::env::protect::check_may_run(&compiled.target, args.allow_protected)?;
    let schemas = crate::env::deploy::schema_set(&compiled.manifest);
    let mut adapter = crate::adapter::connect(&compiled.target, &compiled.project.root)?;
    crate::env::deploy::lock(&mut adapter, &compiled.target.name, &schemas)?;
    crate::env::deploy::rollback(&mut adapter, &schemas)?;
    println!(
        "Rolled back {} schema(s): {} are the previous set again; the replaced set is kept as \
         <schema>{} until the next deploy.",
        schemas.len(),
        schemas.join(", "),
        crate::env::deploy::NEXT
    );
    Ok(0)
}

fn grants_command(args: &GrantsArgs) -> Result<i32> {
    let compiled = Compiled::load(&args.project.compile_options()?)?;
    let layout = crate::env::grants::layout(&compiled, &args.developers)?;
    let statements = crate::env::grants::sql(&layout);
    if !args.apply {
        for statement in &statements {
            println!("{};", scrub(statement));
        }
        return Ok(0);
    }
    crate::env::protect::check_may_run(&compiled.target, args.allow_protected)?;
    let mut adapter = crate::adapter::connect(&compiled.target, &compiled.project.root)?;
    crate::adapter::in_transaction(&mut adapter, |a| {
        for statement in &statements {
            a.execute(statement)?;
        }
        Ok(())
    })?;
    println!(
        "Applied {} statements: {} protected schema(s) owned by their targets' roles; \
         {} reads them, {} and {} build only their own schemas.",
        statements.len(),
        layout.owners.len(),
        layout.reader_role,
        layout.developer_role,
        layout.ci_role
    );
    Ok(0)
}

fn clean_command(args: &CleanArgs) -> Result<i32> {
    let older_than = args
        .older_than
        .as_deref()
        .map(crate::env::ci::parse_age)
        .transpose()?;
    let compiled = Compiled::load(&args.project.compile_options()?)?;
    // A record naming a live schema (edited by hand, or a prod schema that
    // was once built with a suffix) is never acted on.
    let protected = crate::env::protect::protected_schemas(
        &compiled.project,
        &compiled.target,
        &compiled.cli_vars,
    )?;
    let database = compiled.target.dbname.clone();
    let is_protected = |schema: &str| protected.iter().any(|p| p.covers(&database, schema));
    let suffix = args
        .project
        .schema_suffix
        .as_deref()
        .map(crate::env::naming::sanitize);
    let mut adapter = crate::adapter::connect(&compiled.target, &compiled.project.root)?;
    let recorded = crate::env::ci::recorded(&mut adapter)?;
    let kept_protected: Vec<&str> = recorded
        .iter()
        .filter(|s| is_protected(&s.name))
        .map(|s| s.name.as_str())
        .collect();
    for name in &kept_protected {
        println!(
            "Keeping {name}: it belongs to a protected target, although recorded as a CI schema"
        );
    }
    let doomed = crate::env::ci::to_drop(recorded, older_than, suffix.as_deref(), &is_protected);
    if doomed.is_empty() {
        println!("No CI schemas to drop.");
        return Ok(0);
    }
    for schema in &doomed {
        if args.dry_run {
            println!(
                "Would drop schema {} (suffix {})",
                schema.name, schema.suffix
            );
        } else {
            crate::env::ci::drop_schema(&mut adapter, &schema.name)?;
            println!("Dropped schema {} (suffix {})", schema.name, schema.suffix);
        }
    }
    Ok(0)
}

fn debug_command(args: &ProjectArgs) -> Result<i32> {
    let options = args.compile_options()?;
    let project = crate::project::Project::load(&options.project_dir)?;
    println!("weir {}", env!("CARGO_PKG_VERSION"));
    println!("project: {} ({})", project.name, project.root.display());
    let target = crate::profile::load_target(
        options.profiles_dir.as_deref(),
        &project.root,
        &project.profile,
        options.target.as_deref(),
    )?;
    match &target.profiles_file {
        Some(path) => println!("profiles.yml: {}", path.display()),
        None => println!("profiles.yml: none found; using the embedded default target"),
    }
    println!(
        "profile: {}  target: {}  type: {}",
        target.profile_name, target.name, target.adapter_type
    );
    match &target.host {
        Some(host) => println!(
            "connection: {}@{}:{}/{}",
            scrub(&target.user),
            host,
            target.port.unwrap_or(5432),
            target.dbname
        ),
        None => println!(
            "connection: embedded local PostgreSQL under {}",
            project.root.join(".weir").display()
        ),
    }
    println!("schema: {}  threads: {}", target.schema, target.threads);
    let started = Instant::now();
    match crate::adapter::connect(&target, &project.root) {
        Ok(_) => {
            println!(
                "connection test: OK ({:.2}s)",
                started.elapsed().as_secs_f64()
            );
            Ok(0)
        }
        Err(err) => {
            println!(
                "connection test: FAILED\n  {}",
                err.scrub(&target.secrets())
            );
            Ok(1)
        }
    }
}

fn local_command(args: &LocalArgs) -> Result<i32> {
    use crate::adapter::local::LocalCluster;
    let dir = match &args.project_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|e| Error::io(".", e))?,
    };
    match args.action {
        LocalAction::Start => {
            let cluster = LocalCluster::ensure_running(&dir)?;
            println!(
                "embedded PostgreSQL running: {} (data in {})",
                cluster.describe(),
                cluster.data_dir().display()
            );
        }
        LocalAction::Stop => {
            if LocalCluster::stop(&dir)? {
                println!("embedded PostgreSQL stopped");
            } else {
                println!("embedded PostgreSQL was not running");
            }
        }
        LocalAction::Status => match LocalCluster::status(&dir)? {
            Some(cluster) => println!(
                "running: {} (data in {})",
                cluster.describe(),
                cluster.data_dir().display()
            ),
            None => println!("not running"),
        },
    }
    Ok(0)
}
