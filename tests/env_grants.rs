//! Roles and grants on a throwaway cluster: after `weir grants --apply`, prod
//! builds and deploys as its own role, and a developer's (or CI's)
//! connection can read prod but its writes fail in the database itself.

mod support;

use std::path::Path;

use support::TestProject;
use support::cli::{both, stdout, weir};
use weir::{LocalCluster, PostgresAdapter};

fn profiles(host: &Path, port: u16) -> String {
    let host = host.display();
    let target = |name: &str, user: &str, schema: &str, extra: &str| {
        format!(
            "    {name}:\n      type: postgres\n      host: {host}\n      port: {port}\n      \
             user: {user}\n      dbname: postgres\n      schema: {schema}\n      threads: 2\n{extra}"
        )
    };
    format!(
        "shop:\n  target: dev\n  outputs:\n{}{}{}{}",
        target("admin", "postgres", "admin", ""),
        target("dev", "alice", "alice_dev", ""),
        target(
            "ci",
            "ci_runner",
            "analytics",
            "      schema_suffix: pr_1\n"
        ),
        target("prod", "shop_prod", "analytics", ""),
    )
}

/// A connection as the user of one of the profile's targets.
fn connect_as(root: &Path, target: &str) -> PostgresAdapter {
    let text = std::fs::read_to_string(root.join("profiles.yml")).unwrap();
    let target =
        weir::parse_target(&text, &root.join("profiles.yml"), "shop", Some(target)).unwrap();
    weir::connect(&target, root).unwrap()
}

/// The SQLSTATE a statement fails with, or None when it succeeds.
fn sqlstate(db: &mut PostgresAdapter, sql: &str) -> Option<String> {
    db.client().batch_execute(sql).err().map(|e| {
        e.code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| e.to_string())
    })
}

#[test]
fn a_developers_write_into_prod_fails_in_the_database() {
    let project = TestProject::copy_of("shop", "grants");
    let root = &project.root;
    let cluster = LocalCluster::ensure_running(root).unwrap();
    project.write(
        "profiles.yml",
        &profiles(cluster.socket_dir(), cluster.port()),
    );
    let dbt_project = std::fs::read_to_string(root.join("dbt_project.yml")).unwrap();
    project.write(
        "dbt_project.yml",
        &dbt_project.replace(
            "vars:\n",
            "vars:\n  weir:\n    grants:\n      developers: [alice]\n",
        ),
    );

    let output = weir(root, &["grants", "--target", "admin"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let printed = stdout(&output);
    assert!(
        printed.contains("alter schema \"analytics_marts\" owner to \"shop_prod\""),
        "{printed}"
    );
    assert!(
        printed.contains("grant \"shop_developer\" to \"alice\""),
        "{printed}"
    );
    let output = weir(root, &["grants", "--target", "admin", "--apply"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    // Applying twice changes nothing and fails nothing.
    let output = weir(root, &["grants", "--target", "admin", "--apply"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));

    let output = weir(root, &["build", "--target", "prod"], &[("CI", "true")]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));

    let mut alice = connect_as(root, "dev");
    let rows: i64 = alice
        .client()
        .query_one("select count(*) from analytics_marts.orders", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 30, "developers read prod");
    for write in [
        "insert into analytics_marts.customers (customer_id) values (999)",
        "update analytics.raw_orders set status = 'x'",
        "create table analytics.sneaky (i int)",
        "create or replace view analytics_marts.orders as select 1 as order_id",
        "drop table analytics_marts.customers",
        "alter schema analytics_marts rename to mine",
        // Prod's audit schema is prod's before any prod run stores failures.
        "create table analytics_dbt_test__audit.sneaky (i int)",
    ] {
        assert_eq!(
            sqlstate(&mut alice, write).as_deref(),
            Some("42501"),
            "{write}"
        );
    }
    // Her own schemas are hers.
    assert_eq!(
        sqlstate(
            &mut alice,
            "create schema alice_scratch; create table alice_scratch.t (i int)"
        ),
        None
    );
    let output = weir(root, &["build", "--target", "dev"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));

    // CI builds its own schemas, records them, and cannot write prod either.
    let output = weir(root, &["build", "--target", "ci"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let mut ci = connect_as(root, "ci");
    assert_eq!(
        sqlstate(&mut ci, "delete from analytics_marts.orders").as_deref(),
        Some("42501")
    );

    // A deploy keeps what readers were granted, and what they were not.
    let output = weir(root, &["deploy", "--target", "prod"], &[("CI", "true")]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let mut alice = connect_as(root, "dev");
    let rows: i64 = alice
        .client()
        .query_one("select count(*) from analytics_marts.customers", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 10);
    assert_eq!(
        sqlstate(
            &mut alice,
            "insert into analytics_marts.customers (customer_id) values (999)"
        )
        .as_deref(),
        Some("42501")
    );
    assert_eq!(
        sqlstate(&mut alice, "create table analytics.sneaky (i int)").as_deref(),
        Some("42501")
    );
}
