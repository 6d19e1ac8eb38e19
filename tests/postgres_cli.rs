//! The run commands of the `weir` binary beyond build: `weir retry` after a
//! failure, `--log-format json`, `--retries`, and run_results' `args`.

mod support;

use support::TestProject;
use support::cli::{stdout, weir};

fn run_results(project: &TestProject) -> serde_json::Value {
    let text = std::fs::read_to_string(project.root.join("target/run_results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn statuses(project: &TestProject) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = run_results(project)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["unique_id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn retry_runs_what_failed_or_was_skipped_with_the_same_selection() {
    let project = TestProject::copy_of("shop", "cli_retry");
    let orders = std::fs::read_to_string(project.root.join("models/marts/orders.sql")).unwrap();
    project.write(
        "models/marts/orders.sql",
        &format!("{}\nwhere no_such_column > 0\n", orders.trim_end()),
    );
    let output = weir(
        &project.root,
        &[
            "build",
            "--select",
            "+customers",
            "--exclude",
            "not_null_orders_order_id",
            "--threads",
            "2",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let args = &run_results(&project)["args"];
    assert_eq!(args["which"], "build");
    assert_eq!(args["select"], serde_json::json!(["+customers"]));
    assert_eq!(
        args["exclude"],
        serde_json::json!(["not_null_orders_order_id"])
    );
    assert_eq!(args["target"], "dev");
    let first = statuses(&project);
    let redo: Vec<&str> = first
        .iter()
        .filter(|(_, s)| s != "success" && s != "pass")
        .map(|(id, _)| id.as_str())
        .collect();
    assert!(redo.contains(&"model.shop.orders"), "{first:?}");
    assert!(redo.contains(&"model.shop.customers"), "{first:?}");

    project.write("models/marts/orders.sql", &orders);
    let output = weir(&project.root, &["retry"], &[]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("TOTAL={}", redo.len())),
        "only the {} failed or skipped nodes run again:\n{out}",
        redo.len()
    );
    let second = statuses(&project);
    let ids: Vec<&str> = second.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, redo);
    assert!(
        second.iter().all(|(_, s)| s == "success" || s == "pass"),
        "{second:?}"
    );
    // The retry recorded the original command: a second retry has nothing to do.
    assert_eq!(run_results(&project)["args"]["which"], "build");
    let output = weir(&project.root, &["retry"], &[]);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stdout(&output).contains("Nothing to retry"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn json_logs_are_one_object_per_line_with_node_info() {
    let project = TestProject::copy_of("shop", "cli_json");
    let output = weir(
        &project.root,
        &[
            "build",
            "--select",
            "+stg_orders",
            "--log-format",
            "json",
            "--retries",
            "2",
        ],
        &[],
    );
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let finished = lines
        .iter()
        .find(|l| {
            l["info"]["name"] == "NodeFinished"
                && l["data"]["node_info"]["unique_id"] == "model.shop.stg_orders"
        })
        .unwrap();
    let node = &finished["data"]["node_info"];
    assert_eq!(node["unique_id"], "model.shop.stg_orders");
    assert_eq!(node["node_status"], "success");
    assert_eq!(node["adapter_response"]["_message"], "CREATE VIEW");
    assert!(
        finished["info"]["msg"]
            .as_str()
            .unwrap()
            .contains("OK created sql view model"),
        "{finished}"
    );
    assert!(finished["info"]["ts"].as_str().unwrap().ends_with('Z'));
    let stats = lines
        .iter()
        .find(|l| l["info"]["name"] == "StatsLine")
        .unwrap();
    assert_eq!(
        stats["data"]["stats"]["pass"], 5,
        "a seed, a view and 3 tests"
    );

    // Text lines start with a dbt-style time of day.
    let output = weir(&project.root, &["run", "--select", "stg_orders"], &[]);
    let out = stdout(&output);
    let line = out.lines().find(|l| l.contains(" START ")).unwrap();
    let (time, _) = line.split_once("  ").unwrap();
    assert_eq!(time.len(), 8, "{line}");
    assert_eq!(time.matches(':').count(), 2, "{line}");
}

#[test]
fn run_results_report_what_the_database_said() {
    let project = TestProject::copy_of("shop", "cli_adapter_response");
    let output = weir(&project.root, &["build", "--select", "+customers"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let results = run_results(&project);
    let response = |id: &str| {
        results["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"] == id)
            .unwrap()["adapter_response"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(key, _)| *key != "weir")
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect::<serde_json::Value>()
    };
    assert_eq!(
        response("model.shop.stg_orders"),
        serde_json::json!({"_message": "CREATE VIEW", "code": "CREATE VIEW", "rows_affected": -1})
    );
    assert_eq!(
        response("model.shop.orders"),
        serde_json::json!({"_message": "SELECT 30", "code": "SELECT", "rows_affected": 30})
    );
    assert_eq!(response("seed.shop.raw_orders")["rows_affected"], 30);
    let timing = &results["results"][0]["timing"];
    assert_eq!(timing[1]["name"], "execute");
}

#[test]
fn a_test_names_its_relation_only_when_it_stores_its_failures() {
    let project = TestProject::copy_of("shop", "cli_test_relation_name");
    let relation_name = |project: &TestProject, id: &str| {
        run_results(project)["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"] == id)
            .unwrap()["relation_name"]
            .clone()
    };
    let test = "test.shop.unique_orders_order_id.fed79b3a6e";
    let output = weir(&project.root, &["build", "--select", "+customers"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    // As dbt: a test that stores nothing has no relation; a model has its own.
    assert_eq!(relation_name(&project, test), serde_json::Value::Null);
    assert_eq!(
        relation_name(&project, "model.shop.orders"),
        r#""postgres"."dev_alice_marts"."orders""#
    );
    let output = weir(
        &project.root,
        &["test", "--select", "orders", "--store-failures"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(
        relation_name(&project, test),
        r#""postgres"."dev_alice_dbt_test__audit"."unique_orders_order_id""#
    );
}
