//! The `weir` binary as a user runs it, in an environment the tests control.

use std::path::Path;
use std::process::{Command, Output};

/// Run `weir` on a project with CI's variables unset (the test runner may
/// itself run in CI) and $USER set to `alice` (the shop project's dev schema
/// is `dev_<user>`), plus `env`.
pub fn weir(project: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(project, args, env).output().expect("weir runs")
}

/// The command [`weir`] runs, to spawn it instead (and signal it).
pub fn command(project: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command
        .args(args)
        .arg("--project-dir")
        .arg(project)
        .env_remove("CI")
        .env_remove("WEIR_SCHEMA_SUFFIX")
        // A `ci` target names its schemas from these when set.
        .env_remove("GITHUB_REF")
        .env_remove("GITHUB_SHA")
        .env_remove("CI_MERGE_REQUEST_IID")
        .env_remove("CI_COMMIT_SHORT_SHA")
        .env_remove("GIT_COMMIT")
        .env_remove("BUILDKITE_COMMIT")
        .env("USER", "alice");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// stdout and stderr, for assertion messages.
pub fn both(output: &Output) -> String {
    format!("{}\n{}", stdout(output), stderr(output))
}
