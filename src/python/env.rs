//! Environment steps an orchestrator runs as tasks of their own: the
//! blue-green deploy's prepare and swap, rollback, and the side effects a
//! task skipped (for its log).

use std::path::PathBuf;

use pyo3::prelude::*;

use super::convert;
use crate::workflow::ProjectRequest;
use crate::workflow::deploy::DeployRequest;

/// A deploy step's request, as a task of the production scheduler makes it
/// (protected targets run only where CI or WEIR_ALLOW_PROTECTED is set).
fn request(
    project_dir: PathBuf,
    target: Option<String>,
    profiles_dir: Option<PathBuf>,
    vars: Option<&Bound<'_, PyAny>>,
    deploy_id: Option<String>,
) -> PyResult<DeployRequest> {
    Ok(DeployRequest {
        project: ProjectRequest {
            project_dir: Some(project_dir),
            profiles_dir,
            target,
            vars: convert::vars(vars)?,
            ..ProjectRequest::default()
        },
        deploy_id,
        ..DeployRequest::default()
    })
}

/// Get the shadow set (`<schema>__next`) ready before its nodes are built:
/// take the deploy lease for `deploy_id` (its later steps pass the same id),
/// drop what a failed deploy left, copy incremental tables. Returns notes to log.
#[pyfunction]
#[pyo3(signature = (project_dir, target=None, profiles_dir=None, vars=None, deploy_id=None))]
pub fn deploy_prepare(
    py: Python<'_>,
    project_dir: PathBuf,
    target: Option<String>,
    profiles_dir: Option<PathBuf>,
    vars: Option<&Bound<'_, PyAny>>,
    deploy_id: Option<String>,
) -> PyResult<Vec<String>> {
    let request = request(project_dir, target, profiles_dir, vars, deploy_id)?;
    Ok(py.detach(|| crate::workflow::deploy::prepare(&request))?)
}

/// Swap every schema of the built shadow set in, in one transaction, if
/// `deploy_id` still holds the deploy lease (which ends with the swap); the
/// replaced set stays as `<schema>__prev`. Returns the swapped schemas.
#[pyfunction]
#[pyo3(signature = (project_dir, target=None, profiles_dir=None, vars=None, deploy_id=None))]
pub fn deploy_swap(
    py: Python<'_>,
    project_dir: PathBuf,
    target: Option<String>,
    profiles_dir: Option<PathBuf>,
    vars: Option<&Bound<'_, PyAny>>,
    deploy_id: Option<String>,
) -> PyResult<Vec<String>> {
    let request = request(project_dir, target, profiles_dir, vars, deploy_id)?;
    Ok(py.detach(|| crate::workflow::deploy::swap(&request))?)
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
    let request = request(project_dir, target, profiles_dir, vars, None)?;
    Ok(py.detach(|| crate::workflow::deploy::rollback(&request))?)
}

/// The side effects skipped in this process since the last call, as
/// `[dev] would run: ...` lines.
#[pyfunction]
pub fn side_effect_notes() -> Vec<String> {
    crate::target::side_effects::take_notes()
}
