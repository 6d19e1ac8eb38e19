//! One function per command: a call into the library workflow, and what to
//! print of its answer. Each returns the exit status.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::json;

use super::args::{
    CleanArgs, Cli, Command, DeployArgs, GrantsArgs, LocalAction, LsArgs, LsOutput, ProjectArgs,
    RetryArgs, RunArgs,
};
use super::output::{print_event, print_skipped_side_effects, print_summary, unmatched_message};
use weir::Compiled;
use weir::Event;
use weir::Plan;
use weir::Result;
use weir::logs::progress::Progress;
use weir::logs::{emit as log, timestamped};
use weir::secrets::scrub;
use weir::workflow::maintain::{self, LocalState};
use weir::workflow::retry::LastRun;
use weir::workflow::run::{Outcome, Reporter, RunRequest};
use weir::workflow::{self, found_summary};
use weir::{ListOptions, ListOutput};
use weir::{Relation, ResourceType};

pub fn compile(args: &ProjectArgs) -> Result<i32> {
    let started = Instant::now();
    let compiled = workflow::compile(&args.project()?, &args.selection())?;
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

pub fn ls(args: &LsArgs) -> Result<i32> {
    // stdout is the listing: what templates log goes to stderr.
    weir::logs::to_stderr();
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
    let (lines, unmatched) = workflow::list(
        &args.project.project()?,
        &args.project.selection(),
        &options,
    )?;
    // dbt logs these warnings among its other lines; here they go to stderr,
    // so that stdout stays the listing alone for scripts that read it.
    let now = std::time::SystemTime::now();
    for criterion in unmatched {
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

/// `weir run`, `seed`, `test`, `build`, `snapshot`: `only` the nodes of one
/// type (None: all, as `build`).
pub fn run(args: &RunArgs, only: Option<ResourceType>) -> Result<i32> {
    let request = RunRequest {
        only,
        ..args.request(invocation_args())?
    };
    run_request(request, args.log_format == super::args::LogFormat::Json)
}

fn run_request(request: RunRequest, json_log: bool) -> Result<i32> {
    weir::logs::set_json(json_log);
    // Ctrl-C and SIGTERM cancel the running queries; a second one ends weir.
    request.cancel.cancel_on_signals();
    let printer = RunPrinter {
        json_log,
        progress: OnceLock::new(),
        secrets: weir::secrets::known(),
    };
    let outcome = workflow::run::run(&request, &printer);
    // Cleared before the summary, which prints below the last node's line.
    drop(printer.progress.into_inner());
    let code = match outcome? {
        Outcome::NothingToRetry => {
            let message = "Nothing to retry: the last run had no errors, failures or skips.";
            log("NothingToDo", message, json!({}));
            0
        }
        Outcome::NothingToDo => {
            let message =
                "Nothing to do. Try checking your model configs and model specification args";
            log("NothingToDo", message, json!({}));
            0
        }
        Outcome::Ran(ran) => {
            print_summary(&ran.plan, &ran.results);
            print_skipped_side_effects();
            let code = match (ran.cancelled, ran.results.has_failures()) {
                (true, _) => 130,
                (false, true) => 1,
                (false, false) => 0,
            };
            // The process ends here: see `compile`.
            std::mem::forget(ran);
            code
        }
    };
    Ok(code)
}

/// Prints a run as dbt does: a header, one line per node (a progress bar
/// under them on a terminal).
struct RunPrinter {
    json_log: bool,
    progress: OnceLock<Progress>,
    /// Asked once: the lines are printed under the scheduler's lock.
    secrets: Vec<String>,
}

impl Reporter for RunPrinter {
    fn started(&self, compiled: &Compiled, plan: &Plan, unmatched: &[String]) {
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
            &format!("Found {}", found_summary(&compiled.manifest)),
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
            return;
        }
        log("Blank", "", json!({}));
        if weir::logs::progress::wanted(self.json_log) {
            let _ = self.progress.set(Progress::start(plan.tasks.len()));
        }
    }

    fn deferred(&self, parent: &str, relation: &Relation) {
        log(
            "DeferRelation",
            &format!(
                "Deferring {} to {relation} (--state)",
                weir::short_name(parent)
            ),
            json!({"unique_id": parent, "relation_name": relation.to_string()}),
        );
    }

    fn event(&self, event: &Event) {
        if let Some(progress) = self.progress.get() {
            match event {
                Event::Start { index, task, .. } => progress.started(*index, &task.name),
                Event::Finish { index, .. } => progress.finished(*index),
                Event::Hook { .. } => {}
            }
        }
        print_event(event, &self.secrets);
    }
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

/// `weir retry`: the last run's command again, limited to what did not succeed.
pub fn retry(args: &RetryArgs) -> Result<i32> {
    let project_dir = match &args.project_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|e| weir::Error::io(".", e))?,
    };
    let last = LastRun::load(&project_dir)?;
    let mut argv = vec!["weir".to_string()];
    argv.extend(last.invocation.iter().cloned());
    argv.push("--project-dir".into());
    argv.push(project_dir.display().to_string());
    if let Some(dir) = args.profiles_dir.as_ref().or(last.profiles_dir.as_ref()) {
        argv.push("--profiles-dir".into());
        argv.push(dir.display().to_string());
    }
    let replayed = <Cli as clap::Parser>::try_parse_from(&argv).map_err(|e| {
        last.error(format!(
            "cannot replay `weir {}`: {e}",
            last.invocation.join(" ")
        ))
    })?;
    let (args, only) = match &replayed.command {
        Command::Seed(args) => (args, Some(ResourceType::Seed)),
        Command::Run(args) => (args, Some(ResourceType::Model)),
        Command::Test(args) => (args, Some(ResourceType::Test)),
        Command::Build(args) => (args, None),
        Command::Snapshot(args) => (args, Some(ResourceType::Snapshot)),
        _ => {
            return Err(last.error(format!(
                "`weir {}` cannot be retried",
                last.invocation.join(" ")
            )));
        }
    };
    let request = RunRequest {
        only,
        retry: Some(last.unfinished.clone()),
        ..args.request(last.invocation.clone())?
    };
    run_request(request, args.log_format == super::args::LogFormat::Json)
}

pub fn deploy(args: &DeployArgs) -> Result<i32> {
    let printer = DeployPrinter {
        secrets: weir::secrets::known(),
    };
    let request = args.request()?;
    request.cancel.cancel_on_signals();
    let deployed = workflow::deploy::deploy(&request, &printer)?;
    print_summary(&deployed.plan, &deployed.results);
    print_skipped_side_effects();
    let Some(swapped) = deployed.swapped else {
        println!(
            "\nDeploy stopped before the swap: production is unchanged. The shadow set is \
             kept for inspection ({}{} ...) until the next deploy.",
            deployed.schemas.first().map_or("", String::as_str),
            weir::workflow::deploy::NEXT
        );
        return Ok(1);
    };
    println!(
        "\nSwapped in {} schema(s) in one transaction: {}{}; the previous set is kept as \
         <schema>{} for `weir rollback`.",
        deployed.schemas.len(),
        deployed.schemas.join(", "),
        match swapped.lock_retries {
            0 => String::new(),
            n => format!(" (waited for readers {n} time(s))"),
        },
        weir::workflow::deploy::PREV
    );
    Ok(0)
}

/// Prints a deploy: where it builds, its notes, one line per node.
struct DeployPrinter {
    secrets: Vec<String>,
}

impl Reporter for DeployPrinter {
    fn started(&self, shadow: &Compiled, _plan: &Plan, _unmatched: &[String]) {
        let schemas = weir::workflow::deploy::schema_set(&shadow.manifest);
        println!(
            "Deploying {} to target `{}` through {}",
            found_summary(&shadow.manifest),
            shadow.target.name,
            schemas.join(", ")
        );
    }

    fn note(&self, message: &str) {
        println!("note: {message}");
    }

    fn event(&self, event: &Event) {
        print_event(event, &self.secrets);
    }
}

pub fn rollback(args: &DeployArgs) -> Result<i32> {
    let schemas = workflow::deploy::rollback(&args.request()?)?;
    println!(
        "Rolled back {} schema(s): {} are the previous set again; the replaced set is kept as \
         <schema>{} until the next deploy.",
        schemas.len(),
        schemas.join(", "),
        weir::workflow::deploy::NEXT
    );
    Ok(0)
}

pub fn grants(args: &GrantsArgs) -> Result<i32> {
    let grants = maintain::grants(
        &args.project.project()?,
        &args.developers,
        args.apply,
        args.allow_protected,
    )?;
    if !grants.applied {
        for statement in &grants.statements {
            println!("{};", scrub(statement));
        }
        return Ok(0);
    }
    let layout = &grants.layout;
    println!(
        "Applied {} statements: {} protected schema(s) owned by their targets' roles; \
         {} reads them, {} and {} build only their own schemas.",
        grants.statements.len(),
        layout.owners.len(),
        layout.reader_role,
        layout.developer_role,
        layout.ci_role
    );
    Ok(0)
}

pub fn clean(args: &CleanArgs) -> Result<i32> {
    let cleaned = maintain::clean(
        &args.project.project()?,
        args.older_than.as_deref(),
        args.dry_run,
        &mut |schema| match args.dry_run {
            true => println!(
                "Would drop schema {} (suffix {})",
                schema.name, schema.suffix
            ),
            false => println!("Dropped schema {} (suffix {})", schema.name, schema.suffix),
        },
    )?;
    for name in &cleaned.kept_protected {
        println!(
            "Keeping {name}: it belongs to a protected target, although recorded as a CI schema"
        );
    }
    if cleaned.doomed.is_empty() {
        println!("No CI schemas to drop.");
    }
    Ok(0)
}

pub fn debug(args: &ProjectArgs) -> Result<i32> {
    println!("weir {}", env!("CARGO_PKG_VERSION"));
    let found = maintain::debug(&args.project()?)?;
    let target = &found.target;
    println!(
        "project: {} ({})",
        found.project_name,
        found.project_root.display()
    );
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
            found.project_root.join(".weir").display()
        ),
    }
    println!("schema: {}  threads: {}", target.schema, target.threads);
    match found.connection {
        Ok(took) => {
            println!("connection test: OK ({:.2}s)", took.as_secs_f64());
            Ok(0)
        }
        Err(message) => {
            println!("connection test: FAILED\n  {message}");
            Ok(1)
        }
    }
}

pub fn deps(args: &super::args::DepsArgs) -> Result<i32> {
    let (project, options) = args.request();
    let report = weir::workflow::deps::deps(&project, &options)?;
    let Some(file) = &report.packages_file else {
        log(
            "DepsNoPackagesFound",
            "Warning: No packages were found in packages.yml",
            json!({}),
        );
        return Ok(0);
    };
    if let (Some((spec, _)), Some(file)) = (&options.add_package, &report.packages_file) {
        log(
            "DepsAddPackage",
            &format!("Added new package {spec} to {}", file.display()),
            json!({"package_name": spec, "packages_filepath": file.display().to_string()}),
        );
    }
    for warning in &report.warnings {
        log("DepsUnpinned", &format!("[WARNING]: {warning}"), json!({}));
    }
    if let Some(lock) = &report.lock_written {
        log(
            "DepsLockUpdating",
            &format!("Updating lock file in file path: {}", lock.display()),
            json!({"lock_filepath": lock.display().to_string()}),
        );
    }
    if report.installed.is_empty() && !options.lock_only {
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        log(
            "DepsNoPackagesFound",
            &format!("Warning: No packages were found in {name}"),
            json!({}),
        );
    }
    let mut outdated = Vec::new();
    for package in &report.installed {
        log(
            "DepsStartPackageInstall",
            &format!("Installing {}", package.shown),
            json!({"package_name": package.shown}),
        );
        log(
            "DepsInstallInfo",
            &format!("Installed from {}", package.installed_from),
            json!({"version_name": package.installed_from}),
        );
        if let (Some(version), Some(latest)) = (&package.version, &package.latest) {
            if version == latest {
                log("DepsUpToDate", "Up to date!", json!({}));
            } else {
                log(
                    "DepsUpdateAvailable",
                    &format!("Updated version available: {latest}"),
                    json!({"version_latest": latest}),
                );
                outdated.push(package.shown.clone());
            }
        }
        if let Some(sub) = &package.subdirectory {
            log(
                "DepsListSubdirectory",
                &format!("and subdirectory {sub}"),
                json!({"subdirectory": sub}),
            );
        }
    }
    if !outdated.is_empty() {
        let names = outdated
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ");
        log(
            "DepsNotifyUpdatesAvailable",
            &format!(
                "Updates available for packages: [{names}]\nUpdate your versions in packages.yml, then run weir deps"
            ),
            json!({"packages": outdated}),
        );
    }
    Ok(0)
}

pub fn local(args: &super::args::LocalArgs) -> Result<i32> {
    let dir = match &args.project_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|e| weir::Error::io(".", e))?,
    };
    let action = match args.action {
        LocalAction::Start => maintain::LocalAction::Start,
        LocalAction::Stop => maintain::LocalAction::Stop,
        LocalAction::Status => maintain::LocalAction::Status,
    };
    match (args.action, maintain::local(&dir, action)?) {
        (LocalAction::Start, LocalState::Running(cluster)) => println!(
            "embedded PostgreSQL running: {} (data in {})",
            cluster.describe(),
            cluster.data_dir().display()
        ),
        (_, LocalState::Running(cluster)) => println!(
            "running: {} (data in {})",
            cluster.describe(),
            cluster.data_dir().display()
        ),
        (_, LocalState::Stopped) => println!("embedded PostgreSQL stopped"),
        (LocalAction::Stop, LocalState::NotRunning) => {
            println!("embedded PostgreSQL was not running")
        }
        (_, LocalState::NotRunning) => println!("not running"),
    }
    Ok(0)
}
