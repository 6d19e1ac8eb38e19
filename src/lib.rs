//! weir runs dbt-style SQL projects the way an orchestrator needs them.
//!
//! The flow is one-way: files on disk become a [`project::Project`]; compiling
//! it for a [`target::Target`] gives a [`manifest::Manifest`] (Jinja rendered,
//! relations named, DAG ordered); a selection of it becomes a [`plan::Plan`] of
//! per-node tasks; the [`runner`] executes tasks through an [`adapter`] on
//! PostgreSQL and reports [`results`]. The CLI ([`cli`]) and the Python module
//! are thin shells over these functions.

pub mod adapter;
pub mod base;
pub mod cli;
pub mod compile;
pub mod env;
pub mod error;
pub mod graph;
pub mod jinja;
pub mod manifest;
pub mod materialize;
pub mod plan;
pub mod progress;
pub mod project;
#[cfg(feature = "python")]
mod python;
pub mod results;
pub mod runner;
pub mod select;
pub mod target;

pub use compile::{CompileOptions, Compiled, compile};
pub use error::{Error, ErrorKind, Result};
