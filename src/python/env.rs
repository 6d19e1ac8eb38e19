//! Environment steps an orchestrator runs as tasks of their own: the
//! blue-green deploy's prepare and swap, rollback, and the side effects a
//! task skipped (for its log).

use std::path::PathBuf;

use pyo3::prelude::*;

use super::convert;
use crate::compile::CompileOptions;
use crate::env::deploy::{self, Deploy};

fn options(
    project_dir: PathBuf,
    target: Option<String>,
    profiles_dir: Option<PathBuf>,
    vars: Option<&Bound<'_, PyAny>>,
) -> PyResult<CompileOptions> {
    Ok(CompileOptions {
        project_dir,
        profiles_dir,
        target,
        vars: convert::vars(vars)?,
    })
}

/// The deploy's live and shadow compiles, checked to be allowed here, and a connection.
fn start(
    options: &CompileOptions,
) -> crate::Result<(Deploy, crate::adapter::postgres::PostgresAdapter)> {
    let deploy = Deploy::compile(options)?;
    crate::env::protect::check_may_run(&deploy.live.target, false)?;
    let mut adapter = crate::adapter::connect(&deploy.live.target, &deploy.live.project.root)?;
    deploy::lock(&mut adapter, &deploy.live.target.name, &deploy.schemas)?;
    Ok((deploy, adapter))
}

/// Swap or roll back the deploy's schema set, without the GIL; returns the schemas.
fn swap_step(
    py: Python<'_>,
    options: &CompileOptions,
    step: fn(&mut dyn crate::adapter::Adapter, &[String]) -> crate::Result<deploy::Swapped>,
) -> PyResult<Vec<String>> {
    Ok(py.detach(|| {
        let (deploy, mut adapter) = start(options)?;
        step(&mut adapter, &deploy.schemas)?;
        Ok::<_, crate::Error>(deploy.schemas)
    })?)
}

/// Get the shadow set (`<schema>__next`) ready before its nodes are built:
/// drop what a failed deploy left, copy incremental tables. Returns notes to log.
#[pyfunction]
#[pyo3(signature = (project_dir, target=None, profiles_dir=None, vars=None))]
pub fn deploy_prepare(
    py: Python<'_>,
    project_dir: PathBuf,
    target: Option<String>,
    profiles_dir: Option<PathBuf>,
    vars: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<String>> {
    let options = options(project_dir, target, profiles_dir, vars)?;
    Ok(py.detach(|| {
        let (deploy, mut adapter) = start(&options)?;
        deploy::prepare(&mut adapter, &deploy)
    })?)
}

/// Swap every schema of the built shadow set in, in one transaction; the
/// replaced set stays as `<schema>__prev`. Returns the swapped schemas.
#[pyfunction]
#[pyo3(signature = (project_dir, target=None, profiles_dir=None, vars=None))]
pub fn deploy_swap(
    py: Python<'_>,
    project_dir: PathBuf,
    target: Option<String>,
    profiles_dir: Option<PathBuf>,
    vars: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<String>> {
    let options = options(project_dir, target, profiles_dir, vars)?;
    swap_step(py, &options, deploy::swap)
}

/// Swap the set the last deploy replaced back in. Returns the schemas.
#[pyfunction]
#[pyo3(signature = (project_dir, target=None, profiles_dir=None, vars=None))]
pub fn deploy_rollback(
    py: Python<'_>,
    project_dir: PathBuf,
    target: Option<String>,
    profiles_dir: Option<PathBuf>,
    vars: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<String>> {
    let options = options(project_dir, target, profiles_dir, vars)?;
    swap_step(py, &options, deploy::rollback)
}

/// The side effects skipped in this process since the last call, as
/// `[dev] would run: ...` lines.
#[pyfunction]
pub fn side_effect_notes() -> Vec<String> {
    crate::env::side_effects::take_notes()
}
