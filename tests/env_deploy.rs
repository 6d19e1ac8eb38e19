//! Blue-green deploys on a throwaway cluster: the whole project is built and
//! tested in `<schema>__next` and swapped in at once; views across schemas
//! still resolve; a failing test leaves prod byte-for-byte as it was; a
//! reader polling during deploys never sees a mix; rollback restores the
//! previous set.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::cli::{both, stdout, weir};
use support::{TestProject, embedded_profiles};
use weir::{PostgresAdapter, Target};

/// The shop project plus three relations carrying a version: a table in
/// each schema of the set and a view over both.
fn project(test: &str) -> TestProject {
    let project = TestProject::copy_of("shop", test);
    project.write("profiles.yml", &embedded_profiles(""));
    project.write(
        "models/marts/version_a.sql",
        "{{ config(materialized='table') }}\nselect {{ var('version', 1) }} as v\n",
    );
    project.write(
        "models/staging/version_b.sql",
        "{{ config(materialized='table') }}\nselect {{ var('version', 1) }} as v\n",
    );
    project.write(
        "models/marts/version_pair.sql",
        "{{ config(materialized='view') }}\n\
         select a.v as a, b.v as b from {{ ref('version_a') }} a cross join {{ ref('version_b') }} b\n",
    );
    project
}

fn deploy(project: &TestProject, version: u32) -> std::process::Output {
    let vars = format!("{{version: {version}}}");
    weir(
        &project.root,
        &["deploy", "--target", "prod", "--vars", &vars],
        &[("CI", "true")],
    )
}

fn connect(project: &TestProject) -> PostgresAdapter {
    weir::connect(&Target::embedded_default("shop", None), &project.root).unwrap()
}

/// (a, b, pair.a, pair.b) as readers of the live set see them.
fn versions(db: &mut PostgresAdapter) -> Result<[i32; 4], String> {
    db.client()
        .query_one(
            "select (select v from analytics_marts.version_a), (select v from analytics.version_b), \
             (select a from analytics_marts.version_pair), (select b from analytics_marts.version_pair)",
            &[],
        )
        .map(|row| [row.get(0), row.get(1), row.get(2), row.get(3)])
        .map_err(|e| e.to_string())
}

fn schemas(db: &mut PostgresAdapter) -> Vec<String> {
    db.client()
        .query(
            "select nspname::text from pg_namespace where nspname like 'analytics%' order by 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn deploy_swaps_the_whole_set_and_rollback_restores_it() {
    let project = project("deploy_swap");
    let output = deploy(&project, 1);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        stdout(&output).contains("Swapped in 2 schema(s)"),
        "{}",
        both(&output)
    );
    let mut db = connect(&project);
    assert_eq!(versions(&mut db), Ok([1; 4]));
    assert_eq!(schemas(&mut db), ["analytics", "analytics_marts"]);
    // The view was built in the shadow set, and follows its tables.
    let definition: String = db
        .client()
        .query_one("select pg_get_viewdef('analytics_marts.version_pair')", &[])
        .unwrap()
        .get(0);
    assert!(!definition.contains("__next"), "{definition}");
    assert!(definition.contains("analytics.version_b"), "{definition}");

    let output = deploy(&project, 2);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert_eq!(versions(&mut db), Ok([2; 4]));
    assert_eq!(
        schemas(&mut db),
        [
            "analytics",
            "analytics__prev",
            "analytics_marts",
            "analytics_marts__prev"
        ]
    );
    let count: i64 = db
        .client()
        .query_one("select count(*) from analytics_marts__prev.customers", &[])
        .unwrap()
        .get(0);
    assert_eq!(count, 10);

    // Rollback is protected like any change to prod.
    let output = weir(&project.root, &["rollback", "--target", "prod"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert_eq!(versions(&mut db), Ok([2; 4]));
    let output = weir(
        &project.root,
        &["rollback", "--target", "prod"],
        &[("CI", "true")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert_eq!(versions(&mut db), Ok([1; 4]));
    assert_eq!(
        schemas(&mut db),
        [
            "analytics",
            "analytics__next",
            "analytics_marts",
            "analytics_marts__next"
        ]
    );
    // Nothing left to roll back to.
    let output = weir(
        &project.root,
        &["rollback", "--target", "prod"],
        &[("CI", "true")],
    );
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        both(&output).contains("nothing to roll back to"),
        "{}",
        both(&output)
    );
    // A later deploy starts from a clean shadow set.
    let output = deploy(&project, 3);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert_eq!(versions(&mut db), Ok([3; 4]));
}

/// Every live relation: its OID, kind and an md5 of its rows in a stable
/// order, plus the schemas' OIDs and the views' definitions.
fn fingerprint(db: &mut PostgresAdapter) -> Vec<String> {
    let mut out: Vec<String> = db
        .client()
        .query(
            "select n.nspname || ' ' || n.oid from pg_namespace n \
             where n.nspname in ('analytics', 'analytics_marts') order by 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let relations: Vec<(String, String, String)> = db
        .client()
        .query(
            "select n.nspname::text, c.relname::text, c.oid::text || ' ' || c.relkind::text \
             from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where n.nspname in ('analytics', 'analytics_marts') and c.relkind in ('r', 'v') \
             order by 1, 2",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    for (schema, name, identity) in relations {
        let rows: Option<String> = db
            .client()
            .query_one(
                &format!(
                    "select md5(string_agg(t::text, '|' order by t::text)) from \"{schema}\".\"{name}\" t"
                ),
                &[],
            )
            .unwrap()
            .get(0);
        let definition: Option<String> = db
            .client()
            .query_one(
                "select pg_get_viewdef(c.oid) from pg_class c join pg_namespace n \
                 on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2 and c.relkind = 'v'",
                &[&schema, &name],
            )
            .map(|r| r.get(0))
            .unwrap_or(None);
        out.push(format!(
            "{schema}.{name} {identity} {rows:?} {definition:?}"
        ));
    }
    out
}

#[test]
fn a_failing_test_leaves_prod_byte_for_byte_as_it_was() {
    let project = project("deploy_failing_test");
    let output = deploy(&project, 1);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let mut db = connect(&project);
    let before = fingerprint(&mut db);
    assert!(before.len() > 10, "{before:?}");

    project.write(
        "models/marts/versions.yml",
        "version: 2\nmodels:\n  - name: version_a\n    columns:\n      - name: v\n        \
         data_tests:\n          - accepted_values:\n              arguments:\n                values: [1]\n                quote: false\n",
    );
    let output = deploy(&project, 2);
    let out = both(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("production is unchanged"), "{out}");
    assert_eq!(fingerprint(&mut db), before);
    assert_eq!(versions(&mut db), Ok([1; 4]));
    // The shadow set stays for inspection.
    let shadow: i32 = db
        .client()
        .query_one("select v from analytics_marts__next.version_a", &[])
        .unwrap()
        .get(0);
    assert_eq!(shadow, 2);
}

#[test]
fn a_reader_polling_during_deploys_never_sees_a_mix() {
    let project = project("deploy_readers");
    let output = deploy(&project, 1);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let mut db = connect(&project);
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                seen.push(versions(&mut db));
            }
            seen
        })
    };
    for version in 2..=4 {
        let output = deploy(&project, version);
        assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    }
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();

    assert!(!seen.is_empty());
    let mut last = 1;
    for observation in &seen {
        let values = observation
            .as_ref()
            .unwrap_or_else(|e| panic!("reader failed: {e}"));
        assert!(
            values.iter().all(|v| *v == values[0]),
            "a mix of old and new: {values:?}"
        );
        assert!(values[0] >= last, "went back from {last} to {}", values[0]);
        last = values[0];
    }
    assert_eq!(versions(&mut connect(&project)), Ok([4; 4]));
}
