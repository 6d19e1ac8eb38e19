//! The runner's control of running queries, on a throwaway PostgreSQL:
//! timeouts, Ctrl-C and --fail-fast cancel them, and an advisory lock per
//! relation keeps two runs from building one relation at once.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use weir::{
    Adapter, CancelHandle, Compiled, ConnectionSettings, PostgresAdapter, RunOptions, RunResults,
    Status, Warming,
};

use support::{TestProject, count, plan, relation};

/// node name -> (status, message)
fn outcomes(compiled: &Compiled, results: &RunResults) -> HashMap<String, (Status, String)> {
    results
        .results
        .iter()
        .map(|r| {
            let name = compiled.manifest.nodes[&r.unique_id].name.clone();
            (name, (r.status, r.message.clone()))
        })
        .collect()
}

/// Wait until a query matching `pattern` runs (or waits) on the server; an
/// idle connection whose last query matched does not count.
fn wait_for_query(db: &mut PostgresAdapter, pattern: &str) {
    for _ in 0..600 {
        let running: i64 = db
            .client()
            .query_one(
                "select count(*) from pg_stat_activity \
                 where state = 'active' and query like $1 and pid != pg_backend_pid()",
                &[&pattern],
            )
            .unwrap()
            .get(0);
        if running > 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no query like {pattern} started");
}

fn slow_project(name: &str) -> TestProject {
    let project = TestProject::copy_of("shop", name);
    project.write(
        "models/slow.sql",
        "{{ config(materialized='table') }}\nselect 1 as id from pg_sleep(60)\n",
    );
    project.write("models/after_slow.sql", "select * from {{ ref('slow') }}\n");
    project
}

#[test]
fn a_node_past_its_timeout_is_cancelled_and_only_it_fails() {
    let project = slow_project("timeout");
    project.write(
        "models/slow.sql",
        "{{ config(materialized='table', timeout=0.5) }}\nselect 1 as id from pg_sleep(60)\n",
    );
    project.write("models/quick.sql", "select 1 as id\n");
    let compiled = project.compile();
    let options = RunOptions {
        threads: 2,
        ..RunOptions::default()
    };
    let results = weir::run(
        &compiled,
        &plan(&compiled, &["slow+ quick"]),
        &options,
        &|_| {},
    )
    .unwrap();
    let outcome = outcomes(&compiled, &results);
    assert_eq!(outcome["slow"].0, Status::Error);
    assert_eq!(
        outcome["slow"].1,
        "models/slow.sql: cancelled after its timeout of 0.5s: canceling statement due to user request (SQLSTATE 57014)"
    );
    assert_eq!(outcome["after_slow"].0, Status::Skipped);
    assert_eq!(outcome["quick"].0, Status::Success);

    // --timeout applies to every node that has no `timeout` of its own.
    project.write(
        "models/slow.sql",
        "{{ config(materialized='table') }}\nselect 1 as id from pg_sleep(60)\n",
    );
    let compiled = project.compile();
    let options = RunOptions {
        timeout: Some(Duration::from_millis(300)),
        ..RunOptions::default()
    };
    let results = weir::run(&compiled, &plan(&compiled, &["slow"]), &options, &|_| {}).unwrap();
    assert!(
        results.results[0]
            .message
            .contains("cancelled after its timeout of 0.3s"),
        "{}",
        results.results[0].message
    );
}

#[test]
fn ctrl_c_cancels_the_running_queries_and_keeps_the_old_relation() {
    let project = slow_project("interrupt");
    project.write(
        "models/slow.sql",
        "{{ config(materialized='table') }}\nselect 1 as id {% if var('slow', false) %}from pg_sleep(60){% endif %}\n",
    );
    let compiled = project.compile();
    // A first, quick build leaves a table for the interrupted rebuild to keep.
    let results = weir::run(
        &compiled,
        &plan(&compiled, &["slow"]),
        &RunOptions::default(),
        &|_| {},
    )
    .unwrap();
    assert!(!results.has_failures(), "{:?}", results.results);

    let compiled = weir::Compiled::load(&weir::CompileOptions {
        project_dir: project.root.clone(),
        profiles_dir: Some(project.root.clone()),
        vars: serde_json::json!({"slow": true})
            .as_object()
            .unwrap()
            .clone(),
        ..Default::default()
    })
    .unwrap();
    let cancel = CancelHandle::new();
    let options = RunOptions {
        threads: 1,
        cancel: cancel.clone(),
        ..RunOptions::default()
    };
    let mut watcher = project.connect(&compiled);
    let results = std::thread::scope(|scope| {
        scope.spawn(|| {
            wait_for_query(&mut watcher, "%pg_sleep(60)%");
            cancel.cancel();
        });
        weir::run(
            &compiled,
            &plan(&compiled, &["slow+ stg_orders stg_customers"]),
            &options,
            &|_| {},
        )
        .unwrap()
    });
    let outcome = outcomes(&compiled, &results);
    assert_eq!(outcome["slow"].0, Status::Error);
    assert!(
        outcome["slow"].1.starts_with(
            "models/slow.sql: cancelled: the run was interrupted: canceling statement"
        ),
        "{}",
        outcome["slow"].1
    );
    assert_eq!(outcome["after_slow"].0, Status::Skipped);
    // With one thread, slow ran first (plan order): the rest never started.
    for name in ["stg_orders", "stg_customers"] {
        assert_eq!(
            outcome[name],
            (
                Status::Skipped,
                "skipped because the run was interrupted".into()
            ),
            "{name}"
        );
    }
    let mut db = project.connect(&compiled);
    assert_eq!(count(&mut db, &relation(&compiled, "slow")), 1);
}

#[test]
fn fail_fast_cancels_what_is_running() {
    let project = slow_project("fail_fast");
    project.write(
        "models/broken.sql",
        "{{ config(materialized='table') }}\nselect 1 / 0 as boom from pg_sleep(0.2)\n",
    );
    let compiled = project.compile();
    let options = RunOptions {
        threads: 2,
        fail_fast: true,
        ..RunOptions::default()
    };
    let results = weir::run(
        &compiled,
        &plan(&compiled, &["slow broken"]),
        &options,
        &|_| {},
    )
    .unwrap();
    let outcome = outcomes(&compiled, &results);
    assert!(
        outcome["broken"].1.contains("division by zero"),
        "{:?}",
        outcome["broken"]
    );
    assert_eq!(outcome["slow"].0, Status::Error);
    assert!(
        outcome["slow"]
            .1
            .contains("cancelled because the run stopped after `broken` failed (--fail-fast)"),
        "{}",
        outcome["slow"].1
    );
}

#[test]
fn a_second_run_waits_for_the_relation_the_first_is_building() {
    let project = TestProject::copy_of("shop", "advisory");
    project.write("models/lonely.sql", "select 1 as id\n");
    let compiled = project.compile();
    let stg_orders = relation(&compiled, "lonely").to_string();
    let mut other_run = project.connect(&compiled);
    let key = format!("2003134834, hashtext('{}')", stg_orders.replace('\'', "''"));
    other_run
        .client()
        .batch_execute(&format!("select pg_advisory_lock({key})"))
        .unwrap();

    // Held past the node's timeout: a clear error.
    let options = RunOptions {
        timeout: Some(Duration::from_millis(500)),
        ..RunOptions::default()
    };
    let results = weir::run(&compiled, &plan(&compiled, &["lonely"]), &options, &|_| {}).unwrap();
    let message = &results.results[0].message;
    assert!(
        message.contains(&format!(
            "waiting for another run that is building {stg_orders}"
        )),
        "{message}"
    );
    assert!(message.contains("timeout of 0.5s"), "{message}");

    // Released while the run waits: the run goes on and succeeds.
    let mut watcher = project.connect(&compiled);
    let results = std::thread::scope(|scope| {
        scope.spawn(|| {
            wait_for_query(&mut watcher, "select pg_advisory_lock(%");
            other_run
                .client()
                .batch_execute(&format!("select pg_advisory_unlock({key})"))
                .unwrap();
        });
        weir::run(
            &compiled,
            &plan(&compiled, &["lonely"]),
            &RunOptions::default(),
            &|_| {},
        )
        .unwrap()
    });
    assert_eq!(
        results.results[0].status,
        Status::Success,
        "{}",
        results.results[0].message
    );
}

/// `select pg_advisory_<verb>(<key>)` from another connection.
fn advisory(db: &mut PostgresAdapter, verb: &str, key: &str) {
    db.client()
        .batch_execute(&format!("select pg_advisory_{verb}({key})"))
        .unwrap();
}

#[test]
fn a_test_storing_failures_by_flag_or_config_waits_for_its_audit_relation() {
    let project = TestProject::copy_of("shop", "advisory_audit");
    project.write("models/lonely.sql", "select 1 as id\n");
    project.write(
        "models/lonely.yml",
        "version: 2
models:
  - name: lonely
    columns:
      - name: id
        data_tests:
          - not_null
          - unique:
              config:
                store_failures: true
",
    );
    let compiled = project.compile();
    let built = weir::run(
        &compiled,
        &plan(&compiled, &["lonely"]),
        &RunOptions::default(),
        &|_| {},
    )
    .unwrap();
    assert!(
        built
            .results
            .iter()
            .all(|r| matches!(r.status, Status::Success | Status::Pass)),
        "{:?}",
        built.results
    );

    // Another run holds the lock of each test's audit relation.
    let mut other_run = project.connect(&compiled);
    let mut hold = |test: &str| {
        let audit = relation(&compiled, test).to_string();
        let key = format!("2003134834, hashtext('{}')", audit.replace('\'', "''"));
        advisory(&mut other_run, "lock", &key);
        (audit, key)
    };
    let (flagged_audit, flagged_key) = hold("not_null_lonely_id");
    let (configured_audit, _) = hold("unique_lonely_id");
    let held_past_timeout = |test: &str, store_failures: bool| {
        let options = RunOptions {
            store_failures,
            timeout: Some(Duration::from_millis(500)),
            ..RunOptions::default()
        };
        let results = weir::run(&compiled, &plan(&compiled, &[test]), &options, &|_| {}).unwrap();
        assert_eq!(results.results.len(), 1, "{test} alone");
        (
            results.results[0].status,
            results.results[0].message.clone(),
        )
    };

    // Stored because its config says so, or because of --store-failures:
    // either way the test waits for the other run, up to its timeout.
    for (test, audit, store_failures) in [
        ("unique_lonely_id", &configured_audit, false),
        ("not_null_lonely_id", &flagged_audit, true),
    ] {
        let (status, message) = held_past_timeout(test, store_failures);
        assert_eq!(status, Status::Error, "{test}: {message}");
        assert!(
            message.contains(&format!("waiting for another run that is building {audit}")),
            "{test}: {message}"
        );
        assert!(message.contains("timeout of 0.5s"), "{test}: {message}");
    }
    // Storing nothing, the test writes no relation and takes no lock.
    let (status, message) = held_past_timeout("not_null_lonely_id", false);
    assert_eq!(status, Status::Pass, "{message}");

    // Released while the flagged test waits: it goes on and stores its rows.
    let mut watcher = project.connect(&compiled);
    let results = std::thread::scope(|scope| {
        scope.spawn(|| {
            wait_for_query(&mut watcher, "select pg_advisory_lock(%");
            advisory(&mut other_run, "unlock", &flagged_key);
        });
        let options = RunOptions {
            store_failures: true,
            ..RunOptions::default()
        };
        weir::run(
            &compiled,
            &plan(&compiled, &["not_null_lonely_id"]),
            &options,
            &|_| {},
        )
        .unwrap()
    });
    assert_eq!(
        results.results[0].status,
        Status::Pass,
        "{}",
        results.results[0].message
    );
    let stored = relation(&compiled, "not_null_lonely_id");
    assert_eq!(count(&mut watcher, &stored), 0, "the audit table, empty");
}

#[test]
fn a_cluster_stopped_mid_run_fails_clearly_keeps_old_relations_and_retry_finishes() {
    use weir::LocalCluster;
    let project = TestProject::copy_of("shop", "cluster_stop");
    // Slow only while public.go_slow exists.
    project.write(
        "models/slow.sql",
        "{{ config(materialized='table') }}\n\
         select 1 as id from (select pg_sleep(case when to_regclass('public.go_slow') is null \
         then 0 else 60 end)) s\n",
    );
    project.write("models/after_slow.sql", "select * from {{ ref('slow') }}\n");
    let weir = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .arg("--project-dir")
            .arg(&project.root)
            .output()
            .unwrap()
    };
    let output = weir(&["build"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let compiled = project.compile();
    let mut db = project.connect(&compiled);
    db.client()
        .batch_execute("create table public.go_slow ()")
        .unwrap();

    let child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["build", "--select", "slow+", "--project-dir"])
        .arg(&project.root)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_query(&mut db, "%pg_sleep(%");
    drop(db);
    assert!(LocalCluster::stop(&project.root).unwrap());
    let output = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{out}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project.root.join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    let status = |id: &str| {
        results["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"] == id)
            .map(|r| {
                let message = r["message"].as_str().unwrap_or("").to_string();
                (
                    r["status"].clone(),
                    message,
                    r["adapter_response"]["weir"]["transient"].clone(),
                )
            })
            .unwrap()
    };
    let (slow_status, slow_message, transient) = status("model.shop.slow");
    assert_eq!(slow_status, "error");
    assert!(
        slow_message.starts_with("models/slow.sql: lost the connection to the database")
            || slow_message.contains("(SQLSTATE 57P01)"),
        "{slow_message}"
    );
    // What a retry can fix, as an orchestrator needs to know.
    assert_eq!(transient, true);
    assert_eq!(status("model.shop.after_slow").0, "skipped");

    // After a restart the old table is there, whole; `weir retry` finishes.
    LocalCluster::ensure_running(&project.root).unwrap();
    let mut db = project.connect(&compiled);
    assert_eq!(count(&mut db, &relation(&compiled, "slow")), 1);
    db.client()
        .batch_execute("drop table public.go_slow")
        .unwrap();
    let output = weir(&["retry"]);
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("OK created sql table model"), "{out}");
    assert_eq!(count(&mut db, &relation(&compiled, "after_slow")), 1);
}

#[test]
fn a_backend_killed_mid_model_is_retried_and_the_run_succeeds() {
    let project = TestProject::copy_of("shop", "killed");
    // Slow only while public.go_slow exists; the killer drops it.
    project.write(
        "models/victim.sql",
        "{{ config(materialized='table', retries=2) }}\n\
         select 1 as id from (select pg_sleep(case when to_regclass('public.go_slow') is null \
         then 0 else 60 end)) s\n",
    );
    let compiled = project.compile();
    let mut killer = project.connect(&compiled);
    killer
        .client()
        .batch_execute("create table public.go_slow ()")
        .unwrap();
    let results = std::thread::scope(|scope| {
        scope.spawn(|| {
            wait_for_query(&mut killer, "%pg_sleep(%");
            killer
                .client()
                .batch_execute(
                    "drop table public.go_slow;
                     select pg_terminate_backend(pid) from pg_stat_activity
                     where query like '%pg_sleep(%' and pid != pg_backend_pid();",
                )
                .unwrap();
        });
        weir::run(
            &compiled,
            &plan(&compiled, &["victim"]),
            &RunOptions::default(),
            &|_| {},
        )
        .unwrap()
    });
    let victim = &results.results[0];
    assert_eq!(
        (victim.status, victim.attempts),
        (Status::Success, 2),
        "{}",
        victim.message
    );
    let mut db = project.connect(&compiled);
    assert_eq!(count(&mut db, &relation(&compiled, "victim")), 1);
}

#[test]
fn connections_opened_ahead_serve_only_the_target_they_were_opened_for() {
    let project = TestProject::copy_of("shop", "warm");
    project.write(
        "profiles.yml",
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      user: postgres\n      \
         dbname: postgres\n      schema: warm\n      threads: 2\n    elsewhere:\n      \
         type: postgres\n      user: postgres\n      dbname: elsewhere\n      schema: warm\n      \
         threads: 2\n",
    );
    project.write("models/lonely.sql", "select 1 as id\n");
    let compiled = project.compile();
    let mut db = project.connect(&compiled);
    let lonely = relation(&compiled, "lonely");
    let run_with = |target: Option<&str>| {
        let warming = Warming::start(&project.root, Some(&project.root), target, false, |t| {
            t.threads
        })
        .expect("the cluster runs: connections are opened");
        let options = RunOptions {
            connections: warming.finish(),
            ..RunOptions::default()
        };
        weir::run(&compiled, &plan(&compiled, &["lonely"]), &options, &|_| {}).unwrap()
    };

    // Opened on another database: the run opens its own and builds where
    // its target says.
    let results = run_with(Some("elsewhere"));
    assert_eq!(results.results[0].status, Status::Success);
    assert_eq!(count(&mut db, &lonely), 1);
    let mut elsewhere = PostgresAdapter::connect(&ConnectionSettings {
        dbname: "elsewhere".into(),
        ..ConnectionSettings::for_target(&compiled.target, &project.root).unwrap()
    })
    .unwrap();
    let built_elsewhere = elsewhere
        .query_text("select to_regclass('warm.lonely') is not null")
        .unwrap();
    assert_eq!(built_elsewhere, vec![vec![Some("f".to_string())]]);

    // Opened for the run's own target: taken, and the run is the same.
    db.execute(&format!("drop view {lonely}")).unwrap();
    let results = run_with(None);
    assert_eq!(results.results[0].status, Status::Success);
    assert_eq!(count(&mut db, &lonely), 1);
}
