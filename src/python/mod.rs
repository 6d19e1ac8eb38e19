//! The pyo3 module `weir._core`: a compiled project, its nodes and tasks,
//! running one node, and weir's exception classes. Wrapped by `python/weir`.

mod convert;
mod env;
mod errors;
mod project;

use pyo3::prelude::*;

/// weir's Rust core. Use it through the `weir` package.
#[pymodule]
mod _core {
    use std::path::PathBuf;

    use pyo3::prelude::*;

    #[pymodule_export]
    use super::env::{deploy_prepare, deploy_rollback, deploy_swap, side_effect_notes};
    #[pymodule_export]
    use super::errors::{DatabaseError, ProjectError, TransientError, UsageError, WeirError};
    #[pymodule_export]
    use super::project::{Node, Project, Task};

    /// Stop the embedded PostgreSQL of the project at `project_dir` (under
    /// `<project_dir>/.weir/`). Returns True when a running cluster was stopped.
    #[pyfunction]
    fn local_cluster_stop(py: Python<'_>, project_dir: PathBuf) -> PyResult<bool> {
        Ok(py.detach(|| crate::adapter::local::LocalCluster::stop(&project_dir))?)
    }

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))
    }
}
