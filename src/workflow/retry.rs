//! `weir retry`: what the last run (its run_results.json) left to do.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::error::{Error, ErrorKind, Result};

/// The last run of a project, as `weir retry` replays it.
#[derive(Debug, Clone)]
pub struct LastRun {
    /// The run_results.json read.
    pub path: PathBuf,
    /// Its command line after the program name (`run -s orders`), without
    /// the project and profiles folders.
    pub invocation: Vec<String>,
    /// The profiles folder it used, if one was given.
    pub profiles_dir: Option<PathBuf>,
    /// The nodes that errored, failed or were skipped.
    pub unfinished: HashSet<String>,
}

impl LastRun {
    /// Read `<target-path>/run_results.json` of the project at `project_dir`.
    pub fn load(project_dir: &Path) -> Result<LastRun> {
        let project = crate::project::Project::load(project_dir)?;
        let path = project.target_dir().join("run_results.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::io(&path, e).with_hint("weir retry needs the run_results.json of a previous run")
        })?;
        let previous: Json = serde_json::from_str(&text).map_err(|e| {
            Error::new(ErrorKind::Project, format!("not a run_results.json: {e}")).in_file(&path)
        })?;
        let invocation: Vec<String> = previous["args"]["weir_invocation"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect();
        if invocation.is_empty() {
            return Err(Error::new(
                ErrorKind::Project,
                "the last run left no command line to retry (args.weir_invocation)",
            )
            .in_file(&path));
        }
        let unfinished = previous["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| matches!(r["status"].as_str(), Some("error" | "fail" | "skipped")))
            .filter_map(|r| r["unique_id"].as_str())
            .filter(|id| !id.starts_with("operation."))
            .map(str::to_string)
            .collect();
        let profiles_dir = previous["args"]["profiles_dir"].as_str().map(PathBuf::from);
        Ok(LastRun {
            path,
            invocation,
            profiles_dir,
            unfinished,
        })
    }

    /// An error about replaying this run, in its run_results.json.
    pub fn error(&self, message: String) -> Error {
        Error::new(ErrorKind::Project, message).in_file(&self.path)
    }
}
