//! Helpers shared by the environment tests (tests/env_*.rs): the `weir`
//! binary run with a controlled environment, and profiles for every target.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;
use std::process::{Command, Output};

/// Run `weir` on a project with CI's variables unset (the test runner may
/// itself run in CI) and $USER set to `alice`, plus `env`.
pub fn weir(project: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
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
    command.output().expect("weir runs")
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

/// profiles.yml for the shop project where every target runs on the
/// project's embedded cluster: dev, ci, staging and prod, all with schema
/// `analytics`, and `extra` appended to each target's settings.
pub fn embedded_profiles(extra: &str) -> String {
    let mut out = String::from("shop:\n  target: dev\n  outputs:\n");
    for name in ["dev", "ci", "staging", "prod"] {
        out.push_str(&format!(
            "    {name}:\n      type: postgres\n      user: postgres\n      dbname: postgres\n      schema: analytics\n      threads: 4\n"
        ));
        for line in extra.lines().filter(|l| !l.trim().is_empty()) {
            out.push_str(&format!("      {}\n", line.trim()));
        }
    }
    out
}

/// Switch the shop project's dbt_project.yml to the prefix convention.
pub fn with_prefix_convention(dbt_project: &str) -> String {
    dbt_project.replace("vars:\n", "vars:\n  weir:\n    schema_naming: prefix\n")
}
