//! The commands around runs: `weir debug`, `grants`, `clean` and `local`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::ProjectRequest;
use crate::adapter::local::LocalCluster;
use crate::env::ci::CiSchema;
use crate::env::grants::Layout;
use crate::error::Result;
use crate::target::profile::Target;

/// What `weir debug` found.
#[derive(Debug)]
pub struct Debugged {
    pub project_name: String,
    pub project_root: PathBuf,
    pub target: Target,
    /// How long connecting took, or why it failed (secrets masked).
    pub connection: std::result::Result<Duration, String>,
}

/// `weir debug`: the project and target, and a connection check.
pub fn debug(request: &ProjectRequest) -> Result<Debugged> {
    let options = request.compile_options()?;
    // Only the root project: its packages need not be installed to check a connection.
    let project = crate::project::Project::load_root(&options.project_dir)?;
    let target = crate::target::profile::load_target(
        options.profiles_dir.as_deref(),
        &project.root,
        &project.profile,
        options.target.as_deref(),
    )?;
    let started = Instant::now();
    let connection = match crate::adapter::connect(&target, &project.root) {
        Ok(_) => Ok(started.elapsed()),
        Err(err) => Err(err.scrub(&target.secrets()).to_string()),
    };
    Ok(Debugged {
        project_name: project.name.clone(),
        project_root: project.root.clone(),
        target,
        connection,
    })
}

/// `weir grants`: the SQL of the environment layout, applied or not.
#[derive(Debug)]
pub struct Grants {
    pub layout: Layout,
    pub statements: Vec<String>,
    pub applied: bool,
}

/// The roles and grants of the layout; with `apply`, run on the target in
/// one transaction (a protected target only from CI or `allow_protected`).
pub fn grants(
    request: &ProjectRequest,
    developers: &[String],
    apply: bool,
    allow_protected: bool,
) -> Result<Grants> {
    let compiled = crate::compile::Compiled::load(&request.compile_options()?)?;
    let layout = crate::env::grants::layout(&compiled, developers)?;
    let statements = crate::env::grants::sql(&layout);
    if apply {
        crate::target::protect::check_may_run(&compiled.target, allow_protected)?;
        let mut adapter = crate::adapter::connect(&compiled.target, &compiled.project.root)?;
        crate::adapter::in_transaction(&mut adapter, |a| {
            for statement in &statements {
                a.execute(statement)?;
            }
            Ok(())
        })?;
    }
    Ok(Grants {
        layout,
        statements,
        applied: apply,
    })
}

/// What `weir clean` did, or would do with `dry_run`.
#[derive(Debug)]
pub struct Cleaned {
    /// Recorded as CI schemas, yet owned by a protected target: never dropped.
    pub kept_protected: Vec<String>,
    /// What was dropped (or, with `dry_run`, would be).
    pub doomed: Vec<CiSchema>,
}

/// `weir clean`: drop the recorded CI schemas (of `--schema-suffix` only,
/// when given; unused for `older_than`, when given). `dropped` hears of each
/// schema once it is gone (or, with `dry_run`, would be).
pub fn clean(
    request: &ProjectRequest,
    older_than: Option<&str>,
    dry_run: bool,
    dropped: &mut dyn FnMut(&CiSchema),
) -> Result<Cleaned> {
    let older_than = older_than.map(crate::env::ci::parse_age).transpose()?;
    let compiled = crate::compile::Compiled::load(&request.compile_options()?)?;
    // A record naming a live schema (edited by hand, or a prod schema that
    // was once built with a suffix) is never acted on.
    let protected = crate::env::protect::protected_schemas(
        &compiled.project,
        &compiled.target,
        &compiled.cli_vars,
    )?;
    let database = compiled.target.dbname.clone();
    let is_protected = |schema: &str| protected.iter().any(|p| p.covers(&database, schema));
    let suffix = request
        .schema_suffix
        .as_deref()
        .map(crate::target::naming::sanitize);
    let mut adapter = crate::adapter::connect(&compiled.target, &compiled.project.root)?;
    let recorded = crate::env::ci::recorded(&mut adapter)?;
    let kept_protected = recorded
        .iter()
        .filter(|s| is_protected(&s.name))
        .map(|s| s.name.clone())
        .collect();
    let doomed = crate::env::ci::to_drop(recorded, older_than, suffix.as_deref(), &is_protected);
    for schema in &doomed {
        if !dry_run {
            crate::env::ci::drop_schema(&mut adapter, &schema.name)?;
        }
        dropped(schema);
    }
    Ok(Cleaned {
        kept_protected,
        doomed,
    })
}

/// `weir local`: the embedded PostgreSQL of a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalAction {
    Start,
    Stop,
    Status,
}

/// The embedded cluster after a `weir local` action.
#[derive(Debug)]
pub enum LocalState {
    Running(LocalCluster),
    NotRunning,
    /// `stop` stopped it.
    Stopped,
}

pub fn local(project_dir: &Path, action: LocalAction) -> Result<LocalState> {
    Ok(match action {
        LocalAction::Start => LocalState::Running(LocalCluster::ensure_running(project_dir)?),
        LocalAction::Stop => match LocalCluster::stop(project_dir)? {
            true => LocalState::Stopped,
            false => LocalState::NotRunning,
        },
        LocalAction::Status => match LocalCluster::status(project_dir)? {
            Some(cluster) => LocalState::Running(cluster),
            None => LocalState::NotRunning,
        },
    })
}
