//! The command line's words and flags (dbt's), and the workflow requests
//! they stand for.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use weir::Result;
use weir::workflow::deploy::DeployRequest;
use weir::workflow::run::RunRequest;
use weir::workflow::{ProjectRequest, SelectionRequest};

#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "Compile and run dbt-style SQL projects, one task per model"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Install the packages of packages.yml (or dependencies.yml) into
    /// dbt_packages/, pinned in package-lock.yml.
    Deps(DepsArgs),
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
pub struct ProjectArgs {
    /// The folder holding dbt_project.yml (default: the current folder).
    #[arg(long, global = true)]
    pub project_dir: Option<PathBuf>,
    /// The folder holding profiles.yml (default: $DBT_PROFILES_DIR, the project folder, ~/.dbt).
    #[arg(long, global = true)]
    pub profiles_dir: Option<PathBuf>,
    /// The target of the profile to use (default: the profile's `target:`).
    #[arg(long, short = 't', global = true)]
    pub target: Option<String>,
    /// Variables as a YAML mapping, overriding the project's vars: --vars '{key: value}'.
    #[arg(long, global = true)]
    pub vars: Option<String>,
    /// Nodes to include (dbt selection syntax); repeatable.
    #[arg(long, short = 's', num_args = 1.., global = true, alias = "models", short_alias = 'm')]
    pub select: Vec<String>,
    /// Nodes to leave out (dbt selection syntax); repeatable.
    #[arg(long, num_args = 1.., global = true)]
    pub exclude: Vec<String>,
    /// A selector defined in the project's selectors.yml; replaces --select and --exclude.
    #[arg(long, global = true)]
    pub selector: Option<String>,
    /// Which tests come with the nodes they test: eager (any of them is
    /// selected), cautious (all are), buildable (all are, or are their
    /// ancestors), empty (none).
    #[arg(long, global = true, value_name = "MODE")]
    pub indirect_selection: Option<String>,
    /// An earlier run's target/ folder (its manifest.json, weir_state.json and
    /// run_results.json), for `state:` and `result:` selection and --defer.
    #[arg(long, global = true, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Parents this run does not build, missing on this target, are read
    /// from where the --state run built them.
    #[arg(long, global = true)]
    pub defer: bool,
    /// With --defer: read unbuilt parents from the --state run even when they
    /// exist on this target.
    #[arg(long, global = true)]
    pub favor_state: bool,
    /// Build every schema as `<schema>_<suffix>` (a pull request or commit),
    /// recorded for `weir clean` [env: WEIR_SCHEMA_SUFFIX].
    #[arg(long, global = true, value_name = "SUFFIX")]
    pub schema_suffix: Option<String>,
}

impl ProjectArgs {
    pub fn project(&self) -> Result<ProjectRequest> {
        Ok(ProjectRequest {
            project_dir: self.project_dir.clone(),
            profiles_dir: self.profiles_dir.clone(),
            target: self.target.clone(),
            vars: weir::workflow::parse_vars(self.vars.as_deref())?,
            schema_suffix: self.schema_suffix.clone(),
            shadow: false,
        })
    }

    pub fn selection(&self) -> SelectionRequest {
        SelectionRequest {
            select: self.select.clone(),
            exclude: self.exclude.clone(),
            selector: self.selector.clone(),
            indirect_selection: self.indirect_selection.clone(),
            state: self.state.clone(),
            defer: self.defer,
            favor_state: self.favor_state,
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// How many nodes to build at once (default: the target's threads).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Rebuild incremental models and seeds from scratch.
    #[arg(long)]
    pub full_refresh: bool,
    /// Stop at the first failure.
    #[arg(long, short = 'x')]
    pub fail_fast: bool,
    /// Run a protected target (prod) outside CI: for emergencies only.
    #[arg(long)]
    pub allow_protected: bool,
    /// Retry transient failures (lost connection, deadlock) this many times,
    /// unless a node's `retries` config says otherwise (default: the target's policy).
    #[arg(long)]
    pub retries: Option<u32>,
    /// Cancel a node that runs longer than this many seconds (a node's
    /// `timeout` config wins).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Keep the failing rows of tests in `<schema>_dbt_test__audit` (a test's
    /// `store_failures` config wins).
    #[arg(long)]
    pub store_failures: bool,
    /// `text` lines as dbt prints them, or one JSON object per line for machines.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl RunArgs {
    /// The run these flags ask for; `invocation` is the command line to
    /// record for `weir retry`.
    pub fn request(&self, invocation: Vec<String>) -> Result<RunRequest> {
        Ok(RunRequest {
            project: self.project.project()?,
            selection: self.project.selection(),
            threads: self.threads,
            retries: self.retries,
            full_refresh: self.full_refresh,
            fail_fast: self.fail_fast,
            allow_protected: self.allow_protected,
            store_failures: self.store_failures,
            timeout: self.timeout,
            invocation,
            log_format: match self.log_format {
                LogFormat::Json => "json",
                LogFormat::Text => "text",
            }
            .to_string(),
            ..RunRequest::default()
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// How many nodes to build at once (default: the target's threads).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run a protected target (prod) outside CI: for emergencies only.
    #[arg(long)]
    pub allow_protected: bool,
}

impl DeployArgs {
    pub fn request(&self) -> Result<DeployRequest> {
        Ok(DeployRequest {
            project: self.project.project()?,
            selection: self.project.selection(),
            threads: self.threads,
            allow_protected: self.allow_protected,
            ..DeployRequest::default()
        })
    }
}

#[derive(Debug, Args)]
pub struct GrantsArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Run the SQL on the target's database (as a role that may create roles),
    /// instead of printing it.
    #[arg(long)]
    pub apply: bool,
    /// A developer's login role, besides `vars: weir: grants: developers:`; repeatable.
    #[arg(long = "developer", value_name = "ROLE")]
    pub developers: Vec<String>,
    /// Apply on a protected target outside CI.
    #[arg(long)]
    pub allow_protected: bool,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Only schemas no run has used for this long: 7d, 12h, 30m, 2w.
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<String>,
    /// Print what would be dropped, and drop nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct DepsArgs {
    /// The folder holding dbt_project.yml (default: the current folder).
    #[arg(long)]
    pub project_dir: Option<PathBuf>,
    /// Resolve the packages and write package-lock.yml without installing them.
    #[arg(long)]
    pub lock: bool,
    /// Resolve the packages again (the newest versions their ranges allow),
    /// even when package-lock.yml matches packages.yml.
    #[arg(long)]
    pub upgrade: bool,
    /// Install packages whose `require-dbt-version` leaves out weir's dbt version.
    #[arg(long)]
    pub no_version_check: bool,
    /// Add a package to packages.yml, as NAME@VERSION (a version or a
    /// comma-separated range; a revision for git), then install.
    #[arg(long, value_name = "NAME@VERSION")]
    pub add_package: Option<String>,
    /// Where --add-package's package comes from.
    #[arg(long, value_enum, default_value = "hub")]
    pub source: PackageSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PackageSource {
    Hub,
    Git,
    Local,
}

impl DepsArgs {
    pub fn request(&self) -> (ProjectRequest, weir::DepsOptions) {
        let project = ProjectRequest {
            project_dir: self.project_dir.clone(),
            ..ProjectRequest::default()
        };
        let options = weir::DepsOptions {
            lock_only: self.lock,
            upgrade: self.upgrade,
            skip_version_check: self.no_version_check,
            add_package: self.add_package.clone().map(|spec| {
                let source = match self.source {
                    PackageSource::Hub => weir::AddSource::Hub,
                    PackageSource::Git => weir::AddSource::Git,
                    PackageSource::Local => weir::AddSource::Local,
                };
                (spec, source)
            }),
        };
        (project, options)
    }
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The folder holding dbt_project.yml (default: the current folder).
    #[arg(long)]
    pub project_dir: Option<PathBuf>,
    /// The folder holding profiles.yml (default: as the last run found it).
    #[arg(long)]
    pub profiles_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LsOutput {
    Name,
    Path,
    Json,
    Selector,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// What to print for each node.
    #[arg(long, short = 'o', value_enum, default_value = "selector")]
    pub output: LsOutput,
    /// Only these resource types (model, seed, test, source, snapshot,
    /// analysis, exposure, ..., or `default` and `all`).
    #[arg(long, alias = "resource-types", num_args = 1..)]
    pub resource_type: Vec<String>,
    /// Leave out these resource types.
    #[arg(long, alias = "exclude-resource-types", num_args = 1..)]
    pub exclude_resource_type: Vec<String>,
    /// With `--output json`: print these keys (dotted for nested ones)
    /// instead of dbt's default set.
    #[arg(long, num_args = 1..)]
    pub output_keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LocalArgs {
    #[arg(value_enum)]
    pub action: LocalAction,
    /// The folder holding dbt_project.yml (default: the current folder).
    #[arg(long)]
    pub project_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LocalAction {
    Start,
    Stop,
    Status,
}
