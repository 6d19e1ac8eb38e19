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
