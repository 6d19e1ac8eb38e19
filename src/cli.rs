//! The `weir` command line: dbt's commands and flags, each a thin call into
//! the library. Exit status 0 on success, 1 when a node failed, 2 on a usage
//! or project error.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value as Json, json};

use crate::compile::{CompileOptions, Compiled};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Manifest, Materialization, ResourceType};
use crate::plan::{Plan, RetryPolicy, Task};
use crate::results::{RunResults, Status};
use crate::runner::{Event, RunOptions};
use crate::select::Selection;

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
    /// Show the target and check the connection.
    Debug(ProjectArgs),
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
}

#[derive(Debug, Clone, Copy, ValueEnum)]
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
    /// Only nodes of these resource types (model, seed).
    #[arg(long, num_args = 1..)]
    resource_type: Vec<String>,
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
            eprintln!("error: {err}");
            err.exit_code()
        }
    }
}

fn run_command(command: Command) -> Result<i32> {
    match command {
        Command::Compile(args) => compile_command(&args),
        Command::Ls(args) => ls_command(&args),
        Command::Seed(args) => run_nodes(&args, Some(ResourceType::Seed)),
        Command::Run(args) => run_nodes(&args, Some(ResourceType::Model)),
        Command::Test(args) => run_nodes(&args, Some(ResourceType::Test)),
        Command::Build(args) => run_nodes(&args, None),
        Command::Debug(args) => debug_command(&args),
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

    fn selection(&self) -> Selection {
        Selection {
            select: self.select.clone(),
            exclude: self.exclude.clone(),
        }
    }

    /// Compile and write target/manifest.json, as every dbt command does.
    fn compile(&self) -> Result<Compiled> {
        let compiled = Compiled::load(&self.compile_options()?)?;
        compiled.manifest.write(&compiled.project.target_dir())?;
        Ok(compiled)
    }
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
    let selected = args.selection().resolve(&compiled.manifest)?;
    let compiled_dir = compiled.project.target_dir().join("compiled");
    let mut made_dirs = std::collections::HashSet::new();
    for id in &selected {
        let node = &compiled.manifest.nodes[id];
        if node.resource_type != ResourceType::Model {
            continue;
        }
        let path = compiled_dir
            .join(&node.package_name)
            .join(&node.original_file_path);
        // Rewriting thousands of unchanged files costs more than reading them.
        if std::fs::read(&path).is_ok_and(|old| old == node.compiled_code.as_bytes()) {
            continue;
        }
        if let Some(parent) = path.parent()
            && made_dirs.insert(parent.to_path_buf())
        {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, &node.compiled_code).map_err(|e| Error::io(&path, e))?;
    }
    println!(
        "Compiled {} for target `{}` in {:.2}s; wrote {}",
        found_summary(&compiled.manifest),
        compiled.target.name,
        started.elapsed().as_secs_f64(),
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
    let manifest = &compiled.manifest;
    let mut out = std::io::stdout().lock();
    // dbt lists nodes sorted by unique_id, not in build order.
    let mut selected = args.project.selection().resolve(manifest)?;
    selected.sort();
    for id in selected {
        let node = &manifest.nodes[&id];
        if !args.resource_type.is_empty()
            && !args
                .resource_type
                .iter()
                .any(|t| t == node.resource_type.as_str())
        {
            continue;
        }
        let line = match args.output {
            LsOutput::Name => node.name.clone(),
            LsOutput::Path => node.original_file_path.clone(),
            LsOutput::Selector => node.fqn.join("."),
            LsOutput::Json => json!({
                "name": node.name,
                "resource_type": node.resource_type.as_str(),
                "package_name": node.package_name,
                "original_file_path": node.original_file_path,
                "unique_id": node.unique_id,
                "alias": node.relation.identifier,
                "config": node.config,
                "tags": node.tags,
                "depends_on": {"nodes": node.depends_on_nodes, "macros": node.depends_on_macros},
            })
            .to_string(),
        };
        let _ = writeln!(out, "{line}");
    }
    Ok(0)
}

fn run_nodes(args: &RunArgs, only: Option<ResourceType>) -> Result<i32> {
    let compiled = args.project.compile()?;
    let manifest = &compiled.manifest;
    let mut plan = Plan::build(
        manifest,
        &args.project.selection(),
        &RetryPolicy::for_target(&compiled.target.name),
    )?;
    if let Some(kind) = only {
        plan.tasks.retain(|t| t.resource_type == kind);
    }
    println!(
        "Running with weir {} on target `{}`",
        env!("CARGO_PKG_VERSION"),
        compiled.target.name
    );
    println!("Found {}", found_summary(manifest));
    println!();
    if plan.tasks.is_empty() {
        println!("Nothing to do: the selection matched no nodes.");
        return Ok(0);
    }
    let options = RunOptions {
        threads: args.threads.unwrap_or(compiled.target.threads).max(1),
        fail_fast: args.fail_fast,
        full_refresh: args.full_refresh,
    };
    let results = crate::runner::run(&compiled, &plan, &options, &print_event)?;
    results.write(&compiled.project.target_dir())?;
    print_summary(&plan, &results);
    Ok(if results.has_failures() { 1 } else { 0 })
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

fn print_event(event: &Event) {
    let line = match event {
        Event::Start { index, total, task } => {
            let text = format!("START {} {}", task_description(task), task_label(task));
            progress_line(*index, *total, &text, "[RUN]")
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
                    let word = if task.resource_type == ResourceType::Seed {
                        "OK loaded"
                    } else {
                        "OK created"
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
                &format!("{word} {} {relation}", task_description(task)),
                &status,
            )
        }
    };
    println!("{line}");
}

fn print_summary(plan: &Plan, results: &RunResults) {
    let count = |status: Status| {
        results
            .results
            .iter()
            .filter(|r| r.status == status)
            .count()
    };
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for task in &plan.tasks {
        let kind = match task.resource_type {
            ResourceType::Seed => "seed".to_string(),
            ResourceType::Test => "data test".to_string(),
            _ => format!("{} model", task.materialization.as_str()),
        };
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| plural(*n, k)).collect();
    println!();
    println!(
        "Finished running {} in {:.2}s.",
        kinds.join(", "),
        results.elapsed_time
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
    if failures.is_empty() && warnings.is_empty() {
        println!("\nCompleted successfully");
    } else if failures.is_empty() {
        println!("\nCompleted with {}:", plural(warnings.len(), "warning"));
    } else if warnings.is_empty() {
        println!("\nCompleted with {}:", plural(failures.len(), "error"));
    } else {
        println!(
            "\nCompleted with {} and {}:",
            plural(failures.len(), "error"),
            plural(warnings.len(), "warning")
        );
    }
    for result in failures.iter().chain(&warnings) {
        let what = match result.status {
            Status::Fail => "Failure in",
            Status::Warn => "Warning in",
            _ => "Error in",
        };
        println!("\n  {what} {}: {}", result.unique_id, result.message);
    }
    println!(
        "\nDone. PASS={} WARN={} ERROR={} SKIP={} TOTAL={}",
        count(Status::Success) + count(Status::Pass),
        count(Status::Warn),
        count(Status::Error) + count(Status::Fail),
        count(Status::Skipped),
        results.results.len()
    );
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
            target.user,
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
                "embedded PostgreSQL running on 127.0.0.1:{} ({})",
                cluster.port(),
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
                "running on 127.0.0.1:{} ({})",
                cluster.port(),
                cluster.data_dir().display()
            ),
            None => println!("not running"),
        },
    }
    Ok(0)
}
