//! weir runs dbt-style SQL projects the way an orchestrator needs them.
//!
//! The flow is one-way: files on disk become a [`Project`]; compiling it for
//! a [`Target`] gives a [`Manifest`] (Jinja rendered, relations named, DAG
//! ordered); a [`Selection`] of it becomes a [`Plan`] of per-node tasks;
//! [`run`] executes the tasks through an [`Adapter`] on PostgreSQL and
//! reports [`RunResults`]. The `weir` command line and the Python module are
//! thin shells over these functions. ARCHITECTURE.md has the code map.

pub(crate) mod adapter;
pub(crate) mod base;
pub(crate) mod compile;
pub(crate) mod deps;
pub(crate) mod env;
pub(crate) mod error;
pub(crate) mod graph;
pub(crate) mod jinja;
pub mod logs;
pub(crate) mod manifest;
pub(crate) mod materialize;
pub(crate) mod plan;
pub(crate) mod project;
#[cfg(feature = "python")]
mod python;
pub(crate) mod results;
pub(crate) mod runner;
pub(crate) mod select;
pub(crate) mod target;
pub mod workflow;

pub use adapter::local::LocalCluster;
pub use adapter::postgres::{ConnectionSettings, PostgresAdapter};
pub use adapter::{Adapter, RelationKind, connect, in_transaction};
pub use base::{secrets, timing};
pub use compile::{CompileOptions, Compiled, RunRenderer, compile};
pub use deps::add::AddSource;
pub use deps::{DepsOptions, DepsReport, InstalledPackage};
pub use error::{Error, ErrorKind, Result};
pub use graph::short_name;
pub use manifest::{Manifest, Materialization, Node, Relation, ResourceType};
pub use plan::{Plan, RetryPolicy, Task};
pub use project::{Project, yaml};
pub use results::{NodeResult, RunResults, Status};
pub use runner::{CancelHandle, Event, RunOptions, Warming, run};
pub use select::list::{ListOptions, ListOutput, list};
pub use select::{IndirectSelection, Selection, Selectors};
pub use target::profile::{load_target, parse_target};
pub use target::{Secret, Target};
