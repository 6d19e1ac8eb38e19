//! Snapshots on a throwaway PostgreSQL over several runs: the timestamp and
//! check strategies keep type-2 history as dbt does (dbt_scd_id,
//! dbt_updated_at, dbt_valid_from, dbt_valid_to), and hard deletes close rows.

mod support;

use weir::{Compiled, RunOptions, RunResults, Status};

use support::{TestProject, plan, relation};

fn run(compiled: &Compiled) -> RunResults {
    let results = weir::run(
        compiled,
        &plan(compiled, &["by_time by_check"]),
        &RunOptions::default(),
        &|_| {},
    )
    .unwrap();
    for result in &results.results {
        assert_eq!(result.status, Status::Success, "{}", result.message);
    }
    results
}

/// (id, status, current?) of every version, in order.
fn history(project: &TestProject, compiled: &Compiled, name: &str) -> Vec<(i32, String, bool)> {
    let relation = relation(compiled, name);
    project
        .connect(compiled)
        .client()
        .query(
            &format!(
                "select id, status, dbt_valid_to is null from {relation} \
                 order by id, dbt_valid_from, dbt_valid_to nulls last"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[test]
fn snapshots_keep_the_history_of_changed_and_deleted_rows() {
    let project = TestProject::copy_of("shop", "snapshots");
    project.write(
        "models/by_time.sql",
        "{{ config(materialized='snapshot', strategy='timestamp', unique_key='id', \
         updated_at='updated_at', invalidate_hard_deletes=true) }}\n\
         select * from public.src\n",
    );
    project.write(
        "models/by_check.sql",
        "{{ config(materialized='snapshot', strategy='check', unique_key='id', \
         check_cols=['status']) }}\n\
         select id, status from public.src\n",
    );
    let compiled = project.compile();
    project
        .connect(&compiled)
        .client()
        .batch_execute(
            "create table public.src (id int, status text, updated_at timestamp);
             insert into public.src values (1, 'new', '2026-01-01'), (2, 'new', '2026-01-01');",
        )
        .unwrap();
    let first = run(&compiled);
    assert_eq!(first.results[0].message, "SELECT 2");
    assert_eq!(
        history(&project, &compiled, "by_time"),
        [(1, "new".to_string(), true), (2, "new".to_string(), true)]
    );

    // Nothing changed: nothing new.
    let again = run(&compiled);
    assert!(
        again.results.iter().all(|r| r.message == "INSERT 0 0"),
        "{:?}",
        again.results
    );

    project
        .connect(&compiled)
        .client()
        .batch_execute(
            "update public.src set status = 'shipped', updated_at = '2026-01-02' where id = 1;
             delete from public.src where id = 2;
             insert into public.src values (3, 'new', '2026-01-02');",
        )
        .unwrap();
    let third = run(&compiled);
    assert!(
        third.results.iter().all(|r| r.message == "INSERT 0 2"),
        "{:?}",
        third.results
    );
    assert_eq!(
        history(&project, &compiled, "by_time"),
        [
            (1, "new".to_string(), false),
            (1, "shipped".to_string(), true),
            (2, "new".to_string(), false),
            (3, "new".to_string(), true),
        ]
    );
    // Without invalidate_hard_deletes a deleted row stays current.
    assert_eq!(
        history(&project, &compiled, "by_check"),
        [
            (1, "new".to_string(), false),
            (1, "shipped".to_string(), true),
            (2, "new".to_string(), true),
            (3, "new".to_string(), true),
        ]
    );
    let scd_ids: i64 = project
        .connect(&compiled)
        .client()
        .query_one(
            &format!(
                "select count(distinct dbt_scd_id) from {}",
                relation(&compiled, "by_time")
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(scd_ids, 4);
}

#[test]
fn snapshot_blocks_run_with_weir_snapshot_and_in_build() {
    let project = TestProject::copy_of("shop", "snapshot_blocks");
    // No protected target: beside prod, whose snapshots land in this same
    // `snapshots` schema, a dev snapshot is refused (tests/reliability_guard.rs).
    project.write(
        "profiles.yml",
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      user: postgres\n      \
         dbname: postgres\n      schema: dev\n      threads: 4\n",
    );
    project.write(
        "snapshots/customers_snapshot.sql",
        "{% snapshot customers_snapshot %}\n\
         {{ config(target_schema='snapshots', unique_key='id', strategy='check', check_cols='all') }}\n\
         select * from {{ ref('raw_customers') }}\n\
         {% endsnapshot %}\n",
    );
    let weir = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .arg("--project-dir")
            .arg(&project.root)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(output.status.code(), Some(0), "{out}");
        out
    };
    let out = weir(&["build", "--select", "+customers_snapshot"]);
    assert!(
        out.contains("START snapshot snapshots.customers_snapshot"),
        "{out}"
    );
    assert!(
        out.contains("OK snapshotted snapshots.customers_snapshot ..."),
        "{out}"
    );
    let compiled = project.compile();
    let snapshot = relation(&compiled, "customers_snapshot");
    assert_eq!(snapshot.schema, "snapshots");
    let mut db = project.connect(&compiled);
    assert_eq!(support::count(&mut db, &snapshot), 10);

    db.client()
        .batch_execute(&format!(
            "update {} set last_name = 'Renamed' where id = 1",
            relation(&compiled, "raw_customers")
        ))
        .unwrap();
    let out = weir(&["snapshot"]);
    assert!(out.contains("[INSERT 0 1 in "), "{out}");
    assert!(
        out.contains("Done. PASS=1 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=1"),
        "{out}"
    );
    assert_eq!(support::count(&mut db, &snapshot), 11);
}
