//! Data tests on a throwaway PostgreSQL as `dbt build` runs them: each
//! model's tests right after it, severities, warn_if / error_if, where,
//! limit, store_failures, and what a failing test skips.

mod support;

use std::collections::HashMap;

use weir::{Compiled, NodeResult, RunOptions, Status};

use support::{TestProject, count, plan};

const MODELS: &str = "version: 2
models:
  - name: checked
    columns:
      - name: n
        data_tests:
          - unique
          - accepted_values:
              arguments:
                values: [1, 2]
                quote: false
              config:
                store_failures: true
                where: n < 5
          - not_null:
              config:
                warn_if: '>= 1'
                error_if: '>= 2'
  - name: warned
    columns:
      - name: n
        data_tests:
          - not_null:
              config:
                severity: WARN
          - accepted_values:
              arguments:
                values: [7]
              config:
                severity: warn
                limit: 1
";

fn project(name: &str) -> TestProject {
    let project = TestProject::copy_of("shop", name);
    project.write(
        "models/checked.sql",
        "select n from generate_series(1, 5) n union all select null\n",
    );
    project.write(
        "models/after_checked.sql",
        "select * from {{ ref('checked') }}\n",
    );
    project.write(
        "models/warned.sql",
        "select null::int as n union all select 8 union all select 9\n",
    );
    project.write(
        "models/after_warned.sql",
        "select * from {{ ref('warned') }}\n",
    );
    project.write("models/checks.yml", MODELS);
    project
}

fn by_name<'r>(compiled: &Compiled, results: &'r [NodeResult]) -> HashMap<String, &'r NodeResult> {
    results
        .iter()
        .map(|r| (compiled.manifest.nodes[&r.unique_id].name.clone(), r))
        .collect()
}

#[test]
fn tests_pass_warn_and_fail_and_a_failure_skips_downstream() {
    let project = project("tests_build");
    let compiled = project.compile();
    let plan = plan(&compiled, &["checked after_checked warned after_warned"]);
    let options = RunOptions {
        threads: 1,
        fail_fast: false,
        full_refresh: false,
        ..RunOptions::default()
    };
    let order = std::sync::Mutex::new(Vec::new());
    let record = |event: &weir::Event| {
        if let weir::Event::Start { task, .. } = event {
            order.lock().unwrap().push(task.name.clone());
        }
    };
    let results = weir::run(&compiled, &plan, &options, &record).unwrap();
    let result = by_name(&compiled, &results.results);
    let outcome = |name: &str| (result[name].status, result[name].failures);

    assert_eq!(outcome("checked"), (Status::Success, None));
    assert_eq!(outcome("unique_checked_n"), (Status::Pass, Some(0)));
    let accepted = "accepted_values_checked_n__False__1__2";
    assert_eq!(outcome(accepted), (Status::Fail, Some(2)));
    assert_eq!(
        result[accepted].message,
        "Got 2 results, configured to fail if != 0"
    );
    assert_eq!(outcome("not_null_checked_n"), (Status::Warn, Some(1)));
    assert_eq!(
        result["not_null_checked_n"].message,
        "Got 1 result, configured to warn if >= 1"
    );
    assert_eq!(outcome("after_checked").0, Status::Skipped);
    assert_eq!(
        result["after_checked"].message,
        format!("skipped because upstream `{accepted}` failed")
    );

    assert_eq!(outcome("warned"), (Status::Success, None));
    assert_eq!(outcome("not_null_warned_n"), (Status::Warn, Some(1)));
    // `limit: 1` caps the rows counted.
    assert_eq!(
        outcome("accepted_values_warned_n__7"),
        (Status::Warn, Some(1))
    );
    assert_eq!(outcome("after_warned"), (Status::Success, None));
    assert!(results.has_failures());

    // One thread: each model's tests start right after it.
    let order = order.into_inner().unwrap();
    let position = |name: &str| order.iter().position(|n| n == name).unwrap();
    assert_eq!(
        position("checked") + 1,
        position("accepted_values_checked_n__False__1__2")
            .min(position("not_null_checked_n"))
            .min(position("unique_checked_n"))
    );

    // The failing rows are kept in the audit schema.
    let audit = &compiled.manifest.nodes[&result[accepted].unique_id].relation;
    assert!(audit.schema.ends_with("_dbt_test__audit"), "{audit}");
    let mut db = project.connect(&compiled);
    assert_eq!(count(&mut db, audit), 2);

    let json = results.to_json();
    let stored = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == result[accepted].unique_id.as_str())
        .unwrap();
    assert_eq!(stored["status"], "fail");
    assert_eq!(stored["failures"], 2);
    let passed = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == result["unique_checked_n"].unique_id.as_str())
        .unwrap();
    assert_eq!(passed["message"], serde_json::Value::Null);
    assert_eq!(passed["failures"], 0);
}

#[test]
fn weir_test_runs_only_tests_and_exits_1_on_a_failure() {
    let project = project("tests_cli");
    let weir = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .arg("--project-dir")
            .arg(&project.root)
            .output()
            .unwrap()
    };
    let output = weir(&["run", "--select", "checked warned"]);
    assert_eq!(output.status.code(), Some(0));
    let output = weir(&["test", "--select", "warned", "--store-failures"]);
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("WARN 1 not_null_warned_n ..."), "{out}");
    assert!(out.contains("[WARN 1 in "), "{out}");
    assert!(out.contains("Completed with 2 warnings:"), "{out}");
    assert!(
        out.contains("Done. PASS=0 WARN=2 ERROR=0 SKIP=0 NO-OP=0 TOTAL=2"),
        "{out}"
    );
    // --store-failures kept the failing row of each test.
    let compiled = project.compile();
    let stored = compiled
        .manifest
        .nodes
        .values()
        .find(|n| n.name == "not_null_warned_n")
        .unwrap()
        .relation
        .clone();
    let mut db = project.connect(&compiled);
    assert_eq!(count(&mut db, &stored), 1);

    let output = weir(&["test", "--select", "checked"]);
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("START test unique_checked_n"), "{out}");
    assert!(
        out.contains("FAIL 2 accepted_values_checked_n__False__1__2 ..."),
        "{out}"
    );
    assert!(out.contains("[FAIL 2 in "), "{out}");
    assert!(
        out.contains("Done. PASS=1 WARN=1 ERROR=1 SKIP=0 NO-OP=0 TOTAL=3"),
        "{out}"
    );
}
