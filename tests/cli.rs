//! The `weir` binary as a user runs it: commands, progress lines, artifacts
//! and exit statuses, on a copy of the shop project with its own cluster.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::TestProject;

fn weir(project: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .arg("--project-dir")
        .arg(project)
        .output()
        .expect("weir runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn run_results(project: &TestProject) -> serde_json::Value {
    let text = std::fs::read_to_string(project.root.join("target/run_results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn build_prints_a_line_per_node_and_writes_artifacts() {
    let project = TestProject::copy_of("shop", "cli_build");
    let output = weir(&project.root, &["build"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}\n{}", stderr(&output));
    assert!(
        out.contains("Found 5 models, 3 seeds, 12 data tests"),
        "{out}"
    );
    assert_eq!(out.matches(" START ").count(), 20, "{out}");
    assert!(out.contains("OK loaded seed file"), "{out}");
    assert!(out.contains("OK created sql table model"), "{out}");
    assert!(
        out.contains("Done. PASS=20 WARN=0 ERROR=0 SKIP=0 TOTAL=20"),
        "{out}"
    );

    let results = run_results(&project);
    let statuses: Vec<&str> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "success").count(), 8);
    assert_eq!(statuses.iter().filter(|s| **s == "pass").count(), 12);
    assert!(out.contains(" PASS unique_orders_order_id ..."), "{out}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project.root.join("target/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["nodes"].as_object().unwrap().len(),
        20,
        "5 models, 3 seeds, 12 tests"
    );

    // `run --select +orders` builds only models: the two staging views and orders.
    let output = weir(&project.root, &["run", "--select", "+orders"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("Done. PASS=3 WARN=0 ERROR=0 SKIP=0 TOTAL=3"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_failing_model_exits_1_and_skips_its_children() {
    let project = TestProject::copy_of("shop", "cli_failure");
    project.write(
        "models/marts/orders.sql",
        "select * from {{ ref('stg_orders') }} where no_such_column > 0\n",
    );
    let output = weir(&project.root, &["build"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    // customers, and the tests of orders and customers.
    assert!(out.contains("ERROR=1 SKIP=6"), "{out}");
    assert!(out.contains("no_such_column"), "{out}");
    let results = run_results(&project);
    let status_of = |id: &str| {
        results["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status_of("model.shop.orders"), "error");
    assert_eq!(status_of("model.shop.customers"), "skipped");
    assert_eq!(status_of("model.shop.stg_customers"), "success");
}

#[test]
fn project_errors_exit_2_and_name_the_file() {
    let output = weir(Path::new("tests/fixtures/missing_ref"), &["compile"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(
            "tests/fixtures/missing_ref/models/orders.sql:3: model `stg_order` not found"
        ),
        "{}",
        stderr(&output)
    );
    let output = weir(Path::new("tests/fixtures/cycle"), &["ls"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("`a` -> `b` -> `c` -> `a`"));
    let output = weir(Path::new("dags/dbt/shop"), &["run", "--threads", "many"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn ls_prints_selected_nodes() {
    let output = weir(
        Path::new("dags/dbt/shop"),
        &["ls", "--select", "stg_orders+", "--output", "name"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    let names: Vec<&str> = out.lines().collect();
    assert_eq!(
        names[..3],
        ["customers", "orders", "stg_orders"],
        "models first, by unique_id"
    );
    assert_eq!(names.len(), 11, "the three models and their eight tests");
    let output = weir(
        Path::new("dags/dbt/shop"),
        &["ls", "--resource-type", "seed"],
    );
    assert_eq!(
        stdout(&output),
        "shop.raw_customers\nshop.raw_orders\nshop.raw_payments\n"
    );
}

/// The stderr lines of dbt's NoNodesForSelectionCriteria warning, without
/// their `HH:MM:SS  ` time.
fn unmatched_warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.contains("does not match any enabled nodes"))
        .map(|line| {
            let (time, message) = line.split_at(10.min(line.len()));
            assert!(
                time.len() == 10
                    && time.ends_with("  ")
                    && time[..8].chars().filter(|c| *c == ':').count() == 2,
                "not a timestamped log line: {line}"
            );
            message
        })
        .collect()
}

#[test]
fn ls_warns_on_stderr_about_each_criterion_that_matches_nothing() {
    let shop = Path::new("dags/dbt/shop");
    let listing = |args: &[&str]| {
        let mut all = vec!["ls", "--output", "name"];
        all.extend(args);
        let output = weir(shop, &all);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        (stdout(&output), stderr(&output))
    };
    let (alone, quiet) = listing(&["--select", "stg_orders"]);
    assert!(alone.starts_with("stg_orders\n"), "{alone}");
    assert_eq!(unmatched_warnings(&quiet), Vec::<&str>::new(), "{quiet}");

    // Each criterion on its own, of --select and of --exclude; stdout is
    // still the listing alone.
    let (out, err) = listing(&[
        "--select",
        "stg_orders no_such_model",
        "tag:no_such_tag",
        "--exclude",
        "stg_customers path:models/nowhere",
    ]);
    assert_eq!(out, alone, "{err}");
    assert_eq!(
        unmatched_warnings(&err),
        [
            "The selection criterion 'no_such_model' does not match any enabled nodes",
            "The selection criterion 'tag:no_such_tag' does not match any enabled nodes",
            "The selection criterion 'path:models/nowhere' does not match any enabled nodes",
        ],
        "{err}"
    );

    // Nothing matched: the warning, then dbt's `No nodes selected!`.
    let (out, err) = listing(&["-s", "no_such_model"]);
    assert_eq!(out, "");
    assert_eq!(
        unmatched_warnings(&err),
        ["The selection criterion 'no_such_model' does not match any enabled nodes"],
        "{err}"
    );
    let warned = err.find("does not match").unwrap();
    assert!(err[warned..].contains("No nodes selected!"), "{err}");

    // As in dbt, a criterion is judged before --resource-type narrows the
    // listing: a model left out as not a seed is no unmatched criterion.
    let (out, err) = listing(&["-s", "stg_orders", "--resource-type", "seed"]);
    assert_eq!(out, "");
    assert_eq!(unmatched_warnings(&err), Vec::<&str>::new(), "{err}");
    assert!(err.contains("No nodes selected!"), "{err}");
}

#[test]
fn debug_reports_the_target_and_connects() {
    let project = TestProject::copy_of("shop", "cli_debug");
    let output = weir(&project.root, &["debug", "--target", "dev"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}\n{}", stderr(&output));
    assert!(out.contains("target: dev"), "{out}");
    assert!(out.contains("embedded local PostgreSQL"), "{out}");
    assert!(out.contains("connection test: OK"), "{out}");
}
