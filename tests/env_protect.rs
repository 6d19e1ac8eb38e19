//! Protected targets on a throwaway cluster: prod refuses to run outside CI
//! and sends no SQL; a dev run that would write into a schema prod owns fails
//! before any SQL, naming the relation.

mod support;

use support::cli::{both, stderr, weir};
use support::{TestProject, embedded_profiles, relations_in, with_prefix_convention};
use weir::LocalCluster;

/// Schemas that are not PostgreSQL's own.
fn user_schemas(project: &TestProject) -> Vec<String> {
    let compiled = project.compile();
    let mut db = project.connect(&compiled);
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

#[test]
fn prod_refuses_to_run_outside_ci_and_sends_no_sql() {
    let project = TestProject::copy_of("shop", "protect_prod");
    project.write("profiles.yml", &embedded_profiles(""));
    for command in ["build", "run", "seed"] {
        let output = weir(&project.root, &[command, "--target", "prod"], &[]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{}", both(&output));
        assert!(err.contains("target `prod` is protected"), "{err}");
        assert!(err.contains("profiles.yml:"), "names the file: {err}");
        assert!(err.contains("Nothing was sent to the database"), "{err}");
        assert!(err.contains("weir deploy --target prod"), "{err}");
    }
    // Nothing connected: the embedded cluster was never even started...
    assert_eq!(LocalCluster::status(&project.root).unwrap(), None);
    // ...and once started, it holds nothing.
    assert!(user_schemas(&project).is_empty());

    // `CI=false` is not CI; `protected: true` protects any target.
    project.write("profiles.yml", &embedded_profiles("protected: true"));
    let output = weir(
        &project.root,
        &["run", "--target", "staging"],
        &[("CI", "false")],
    );
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(stderr(&output).contains("it says `protected: true`"));
    assert!(user_schemas(&project).is_empty());

    // In CI, or with --allow-protected, prod builds.
    project.write("profiles.yml", &embedded_profiles(""));
    let output = weir(
        &project.root,
        &["seed", "--target", "prod"],
        &[("CI", "true")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let output = weir(
        &project.root,
        &["run", "--target", "prod", "--allow-protected"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert_eq!(user_schemas(&project), ["analytics", "analytics_marts"]);

    // A prod that says `protected: false` runs anywhere.
    project.write("profiles.yml", &embedded_profiles("protected: false"));
    let output = weir(&project.root, &["run", "--target", "prod"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
}

#[test]
fn a_dev_run_whose_custom_schema_lands_in_prod_fails_before_any_sql() {
    let project = TestProject::copy_of("shop", "protect_custom_schema");
    let dbt_project = std::fs::read_to_string(project.root.join("dbt_project.yml")).unwrap();
    project.write("dbt_project.yml", &with_prefix_convention(&dbt_project));
    project.write("profiles.yml", &embedded_profiles(""));
    // A common override: the custom schema verbatim, on every target.
    project.write(
        "macros/generate_schema_name.sql",
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n\
         {%- if custom_schema_name is none -%}{{ target.schema }}_{{ target.name }}\n\
         {%- else -%}{{ custom_schema_name | trim }}{%- endif -%}\n\
         {%- endmacro %}\n",
    );
    project.write(
        "models/marts/orders.sql",
        &format!(
            "{{{{ config(schema='prod_marts') }}}}\n{}",
            std::fs::read_to_string(project.root.join("models/marts/orders.sql")).unwrap()
        ),
    );
    let output = weir(&project.root, &["build"], &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        err.contains(
            "models/marts/orders.sql: `orders` would write \"postgres\".\"prod_marts\".\"orders\", \
             but schema `prod_marts` belongs to protected target `prod`"
        ),
        "{err}"
    );
    assert!(err.contains("Nothing was sent to the database"), "{err}");
    assert_eq!(LocalCluster::status(&project.root).unwrap(), None);
    assert!(user_schemas(&project).is_empty());

    // The same holds when the dev target simply names prod's schema.
    let project = TestProject::copy_of("shop", "protect_same_schema");
    project.write("profiles.yml", &embedded_profiles(""));
    let output = weir(&project.root, &["run", "--select", "stg_orders"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        stderr(&output)
            .contains("`stg_orders` would write \"postgres\".\"analytics\".\"stg_orders\""),
        "{}",
        both(&output)
    );
    assert!(user_schemas(&project).is_empty());
}

#[test]
fn a_dev_run_in_its_own_schemas_passes_the_check() {
    let project = TestProject::copy_of("shop", "protect_dev_ok");
    let output = weir(&project.root, &["build"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let compiled = project.compile();
    let mut db = project.connect(&compiled);
    assert_eq!(
        relations_in(&mut db, "dev_alice_marts"),
        ["customers", "orders"]
    );
}

#[test]
fn a_dev_run_storing_failures_in_an_audit_schema_prod_owns_fails_before_any_sql() {
    let project = TestProject::copy_of("shop", "protect_audit_schema");
    project.write("profiles.yml", &embedded_profiles(""));
    // Every target keeps its own schemas, but all of them store test
    // failures in one shared `dbt_test__audit`, which prod's tests write to
    // when its runs store failures.
    project.write(
        "macros/generate_schema_name.sql",
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n\
         {%- if custom_schema_name == 'dbt_test__audit' -%}dbt_test__audit\n\
         {%- elif custom_schema_name is none -%}{{ target.schema }}_{{ target.name }}\n\
         {%- else -%}{{ target.schema }}_{{ target.name }}_{{ custom_schema_name | trim }}\n\
         {%- endif -%}\n\
         {%- endmacro %}\n",
    );
    // Without --store-failures no test writes: the build passes the check.
    let output = weir(&project.root, &["build"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let built = user_schemas(&project);
    assert_eq!(built, ["analytics_dev", "analytics_dev_marts"]);

    // With it, every test would write into prod's audit schema.
    let output = weir(&project.root, &["test", "--store-failures"], &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        err.contains("would write \"postgres\".\"dbt_test__audit\".")
            && err.contains("but schema `dbt_test__audit` belongs to protected target `prod`"),
        "{err}"
    );
    assert!(err.contains("models/"), "names the test's file: {err}");
    assert!(err.contains("Nothing was sent to the database"), "{err}");
    assert_eq!(user_schemas(&project), built, "no audit schema created");
}
