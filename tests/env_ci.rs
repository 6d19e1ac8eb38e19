//! CI schemas on a throwaway cluster: builds with `--schema-suffix`,
//! `$WEIR_SCHEMA_SUFFIX` or a `ci` target's pull request land in their own
//! recorded schemas, and `weir clean` drops those (by age, or all) and
//! nothing else.

mod support;

use support::cli::{both, stdout, weir};
use support::{TestProject, embedded_profiles};
use weir::PostgresAdapter;

fn schemas(db: &mut PostgresAdapter) -> Vec<String> {
    db.client()
        .query(
            "select nspname::text from pg_namespace where nspname !~ '^pg_' \
             and nspname not in ('information_schema', 'public') order by 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn recorded(db: &mut PostgresAdapter) -> Vec<String> {
    db.client()
        .query(
            "select schema_name from weir_meta.ci_schemas order by 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn clean_drops_the_ci_schemas_weir_created_and_nothing_else() {
    let project = TestProject::copy_of("shop", "ci_clean");
    project.write("profiles.yml", &embedded_profiles(""));
    let root = &project.root;
    let ok = |args: &[&str], env: &[(&str, &str)]| {
        let output = weir(root, args, env);
        assert_eq!(output.status.code(), Some(0), "{}", both(&output));
        output
    };
    ok(&["build", "--target", "prod"], &[("CI", "true")]);
    ok(&["build", "--target", "ci", "--schema-suffix", "PR-1"], &[]);
    ok(
        &["seed", "--target", "ci"],
        &[("WEIR_SCHEMA_SUFFIX", "pr_2")],
    );
    // A `ci` target with no suffix takes the pull request from CI's environment.
    ok(
        &["seed", "--target", "ci"],
        &[("GITHUB_REF", "refs/pull/9/merge")],
    );

    let compiled = project.compile();
    let mut db = project.connect(&compiled);
    db.client()
        .batch_execute("create schema scratch; create table scratch.notes as select 1 as n")
        .unwrap();
    assert_eq!(
        schemas(&mut db),
        [
            "analytics",
            "analytics_marts",
            "analytics_marts_pr_1",
            "analytics_pr_1",
            "analytics_pr_2",
            "analytics_pr_9",
            "scratch",
            "weir_meta"
        ]
    );
    assert_eq!(
        recorded(&mut db),
        [
            "analytics_marts_pr_1",
            "analytics_pr_1",
            "analytics_pr_2",
            "analytics_pr_9"
        ]
    );

    // Only what was idle long enough goes.
    db.client()
        .batch_execute(
            "update weir_meta.ci_schemas set last_used_at = now() - interval '10 days' \
             where suffix = 'pr_1'",
        )
        .unwrap();
    let output = ok(
        &["clean", "--target", "ci", "--older-than", "7d", "--dry-run"],
        &[],
    );
    assert!(
        stdout(&output).contains("Would drop schema analytics_pr_1"),
        "{}",
        both(&output)
    );
    assert_eq!(recorded(&mut db).len(), 4, "a dry run drops nothing");
    let output = ok(&["clean", "--target", "ci", "--older-than", "7d"], &[]);
    assert_eq!(
        stdout(&output).matches("Dropped schema").count(),
        2,
        "{}",
        both(&output)
    );
    assert_eq!(recorded(&mut db), ["analytics_pr_2", "analytics_pr_9"]);

    // A record naming a prod schema (edited by hand) is never acted on.
    db.client()
        .batch_execute(
            "insert into weir_meta.ci_schemas (schema_name, suffix, target_name) \
             values ('analytics_marts', 'pr_3', 'ci')",
        )
        .unwrap();
    let output = ok(&["clean", "--target", "ci"], &[]);
    let out = stdout(&output);
    assert!(out.contains("Keeping analytics_marts"), "{out}");
    assert!(out.contains("Dropped schema analytics_pr_2"), "{out}");
    assert!(out.contains("Dropped schema analytics_pr_9"), "{out}");
    assert_eq!(
        schemas(&mut db),
        ["analytics", "analytics_marts", "scratch", "weir_meta"]
    );
    let rows: i64 = db
        .client()
        .query_one("select count(*) from analytics_marts.customers", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 10, "prod untouched");
    let output = ok(&["clean", "--target", "ci"], &[]);
    assert!(stdout(&output).contains("No CI schemas to drop."));
}

#[test]
fn clean_drops_the_audit_schema_of_a_ci_run_given_store_failures() {
    let project = TestProject::copy_of("shop", "ci_clean_audit");
    project.write("profiles.yml", &embedded_profiles(""));
    let root = &project.root;
    let ok = |args: &[&str]| {
        let output = weir(root, args, &[]);
        assert_eq!(output.status.code(), Some(0), "{}", both(&output));
        output
    };
    // No test of the shop project configures store_failures: only the flag
    // makes this run create an audit schema.
    ok(&[
        "build",
        "--target",
        "ci",
        "--schema-suffix",
        "PR-4",
        "--store-failures",
    ]);

    let compiled = project.compile();
    let mut db = project.connect(&compiled);
    let ci_schemas = [
        "analytics_dbt_test__audit_pr_4",
        "analytics_marts_pr_4",
        "analytics_pr_4",
    ];
    let stored: i64 = db
        .client()
        .query_one(
            "select count(*) from pg_tables where schemaname = 'analytics_dbt_test__audit_pr_4'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(stored > 0, "the tests stored their failures");
    assert_eq!(
        recorded(&mut db),
        ci_schemas,
        "recorded before it was created"
    );

    let output = ok(&["clean", "--target", "ci"]);
    let out = stdout(&output);
    for schema in ci_schemas {
        assert!(out.contains(&format!("Dropped schema {schema}")), "{out}");
    }
    assert_eq!(schemas(&mut db), ["weir_meta"], "nothing left behind");
}
