//! weir runs dbt-style SQL projects the way an orchestrator needs them.
//!
//! The flow is one-way: files on disk become a [`project::Project`]; compiling
//! it for a [`profile::Target`] gives a [`manifest::Manifest`] (Jinja rendered,
//! relations named, DAG ordered); a selection of it becomes a [`plan::Plan`] of
//! per-node tasks; the [`runner`] executes tasks through an [`adapter`] on
//! PostgreSQL and reports [`results`]. The CLI ([`cli`]) and the Python module
//! are thin shells over these functions.

pub mod adapter;
pub mod atomic_file;
pub mod cli;
pub mod clock;
pub mod compile;
pub mod env;
pub mod error;
pub mod graph;
pub mod jinja;
pub mod manifest;
pub mod materialize;
pub mod parallel;
pub mod plan;
pub mod profile;
pub mod progress;
pub mod project;
pub mod pyjson;
#[cfg(feature = "python")]
mod python;
pub mod results;
pub mod runner;
pub mod select;
pub mod timing;

pub use compile::{CompileOptions, Compiled, compile};
pub use error::{Error, ErrorKind, Result};
