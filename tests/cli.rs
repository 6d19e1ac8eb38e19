//! The `weir` binary as a user runs it: commands, progress lines, artifacts
//! and exit statuses, on a copy of the shop project with its own cluster.

mod support;

use std::path::Path;

use support::TestProject;
use support::cli::{stderr, stdout, weir};

fn run_results(project: &TestProject) -> serde_json::Value {
    let text = std::fs::read_to_string(project.root.join("target/run_results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn build_prints_a_line_per_node_and_writes_artifacts() {
    let project = TestProject::copy_of("shop", "cli_build");
    let output = weir(&project.root, &["build"], &[]);
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
        out.contains("Done. PASS=20 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=20"),
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
    let output = weir(&project.root, &["run", "--select", "+orders"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("Done. PASS=3 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=3"),
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
    let output = weir(&project.root, &["build"], &[]);
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
    let output = weir(Path::new("tests/fixtures/missing_ref"), &["compile"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(
            "tests/fixtures/missing_ref/models/orders.sql:3: model `stg_order` not found"
        ),
        "{}",
        stderr(&output)
    );
    let output = weir(Path::new("tests/fixtures/cycle"), &["ls"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("`a` -> `b` -> `c` -> `a`"));
    let output = weir(
        Path::new("dags/dbt/shop"),
        &["run", "--threads", "many"],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn ls_prints_selected_nodes() {
    let output = weir(
        Path::new("dags/dbt/shop"),
        &["ls", "--select", "stg_orders+", "--output", "name"],
        &[],
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
        &[],
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
        let output = weir(shop, &all, &[]);
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
    let output = weir(&project.root, &["debug", "--target", "dev"], &[]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}\n{}", stderr(&output));
    assert!(out.contains("target: dev"), "{out}");
    assert!(out.contains("embedded local PostgreSQL"), "{out}");
    assert!(out.contains("connection test: OK"), "{out}");
}

/// The stdout lines `HH:MM:SS  <message>`, without their time.
fn log_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|line| {
            let (time, message) = line.split_at_checked(10)?;
            let is_time =
                time.ends_with("  ") && time[..8].chars().all(|c| c.is_ascii_digit() || c == ':');
            is_time.then_some(message)
        })
        .collect()
}

#[test]
fn log_in_a_template_logs_as_dbt_does() {
    let project = TestProject::copy_of("shop", "cli_jinja_log");
    project.write(
        "models/logged.sql",
        "{{ log('hello ' ~ 'logged', info=True) }}{{ log('only in the file') }}select 1 as id\n",
    );
    let debug_log = project.root.join("logs/dbt.log");
    for round in ["first", "again: a compile that logged is never reused"] {
        let output = weir(&project.root, &["compile"], &[]);
        let out = stdout(&output);
        assert_eq!(output.status.code(), Some(0), "{out}\n{}", stderr(&output));
        assert!(log_lines(&out).contains(&"hello logged"), "{round}: {out}");
        assert!(!out.contains("only in the file"), "{out}");
        assert!(!out.contains("reused"), "{round}: {out}");
    }
    let compiled =
        std::fs::read_to_string(project.root.join("target/compiled/shop/models/logged.sql"))
            .unwrap();
    assert_eq!(compiled.trim(), "select 1 as id");
    // Both messages, from both compiles, in the debug log.
    let text = std::fs::read_to_string(&debug_log).unwrap();
    assert_eq!(
        text.matches(" | ").count(),
        2,
        "a header per compile: {text}"
    );
    assert_eq!(text.matches("[info ] [").count(), 2, "{text}");
    assert_eq!(text.matches("]: hello logged\n").count(), 2, "{text}");
    assert_eq!(text.matches("[debug] [").count(), 2, "{text}");
    assert_eq!(text.matches("]: only in the file\n").count(), 2, "{text}");

    // Without the log, the same project's compile is reused: the cache was on.
    project.write("models/logged.sql", "select 1 as id\n");
    for reused in [false, true] {
        let out = stdout(&weir(&project.root, &["compile"], &[]));
        assert_eq!(out.contains("(reused: no input changed)"), reused, "{out}");
    }
    project.write(
        "models/logged.sql",
        "{{ log('hello ' ~ 'logged', info=True) }}select 1 as id\n",
    );

    // ls keeps stdout for the listing.
    let output = weir(&project.root, &["ls", "-s", "logged"], &[]);
    assert_eq!(stdout(&output), "shop.logged\n");
    assert!(log_lines(&stderr(&output)).contains(&"hello logged"));

    // With --log-format json, an event as dbt's JinjaLogInfo.
    let output = weir(
        &project.root,
        &["run", "-s", "logged", "--log-format", "json"],
        &[],
    );
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}\n{}", stderr(&output));
    let event = out
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|event| event["info"]["name"] == "JinjaLogInfo")
        .unwrap_or_else(|| panic!("no JinjaLogInfo event: {out}"));
    assert_eq!(event["info"]["msg"], "hello logged");
    assert_eq!(event["info"]["level"], "info");
    assert_eq!(event["data"]["msg"], "hello logged");
}

#[test]
fn a_model_that_fails_to_render_is_listed_and_fails_alone() {
    let project = TestProject::copy_of("shop", "cli_render_error");
    project.write(
        "models/marts/orders.sql",
        "select * from {{ ref('stg_orders') }}\n\
         {% if execute %}{{ exceptions.raise_compiler_error('orders cannot compile') }}{% endif %}\n",
    );
    let output = weir(&project.root, &["ls"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("shop.marts.orders"),
        "{}",
        stdout(&output)
    );
    // As `dbt compile`: the rest is written, the selected broken node fails it.
    let output = weir(&project.root, &["compile"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output)
            .contains("models/marts/orders.sql:2: compilation error: orders cannot compile"),
        "{}",
        stderr(&output)
    );
    assert!(
        project
            .root
            .join("target/compiled/shop/models/staging/stg_orders.sql")
            .exists()
    );
    let output = weir(&project.root, &["compile", "-s", "stg_orders"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let output = weir(&project.root, &["build"], &[]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("orders cannot compile"), "{out}");
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
fn compile_asks_the_database_whether_an_incremental_model_is_built() {
    let project = TestProject::copy_of("shop", "cli_compile_incremental");
    project.write(
        "models/marts/order_ids.sql",
        "{{ config(materialized='incremental') }}\n\
         select order_id from {{ ref('stg_orders') }}\n\
         {% if is_incremental() %}where order_id > (select max(order_id) from {{ this }}){% endif %}\n",
    );
    let compiled_sql = || {
        std::fs::read_to_string(
            project
                .root
                .join("target/compiled/shop/models/marts/order_ids.sql"),
        )
        .unwrap()
    };
    let output = weir(&project.root, &["compile"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!compiled_sql().contains("where order_id >"));
    let output = weir(&project.root, &["build", "-s", "+order_ids"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let output = weir(&project.root, &["compile"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        compiled_sql().contains("where order_id >"),
        "{}",
        compiled_sql()
    );
    // No database to ask: the compile still works, as a first build, and says so.
    let output = weir(&project.root, &["local", "stop"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = weir(&project.root, &["compile"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("is_incremental() is false"),
        "{}",
        stdout(&output)
    );
    assert!(!compiled_sql().contains("where order_id >"));
}
