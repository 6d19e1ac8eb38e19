//! `weir deps`: install the project's packages (see `crate::deps`). It needs
//! no target and no compile: only the project's files and the sources of
//! its packages.

use crate::deps::{DepsOptions, DepsReport};
use crate::error::Result;

use super::ProjectRequest;

pub fn deps(request: &ProjectRequest, options: &DepsOptions) -> Result<DepsReport> {
    crate::deps::deps(&request.project_dir()?, options)
}
