//! Side effects on a throwaway cluster: hooks and operations marked as side
//! effects (by `side_effect()`, `side_effect: true`, or a listed macro) run
//! on prod and are only noted as `[dev] would run: ...` on dev.

mod support;

use support::cli::{both, stdout, weir};
use support::{TestProject, embedded_profiles};
use weir::Target;

fn events(project: &TestProject) -> Vec<String> {
    let mut db = weir::connect(&Target::embedded_default("shop", None), &project.root).unwrap();
    let mut events: Vec<String> = db
        .client()
        .query("select what from audit.events", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    events.sort();
    db.client().batch_execute("truncate audit.events").unwrap();
    events
}

#[test]
fn side_effects_run_on_prod_and_are_only_noted_elsewhere() {
    let project = TestProject::copy_of("shop", "side_effects");
    // dev (the first target) builds in its own schema.
    let profiles = embedded_profiles("").replacen("schema: analytics", "schema: dev_alice", 1);
    project.write("profiles.yml", &profiles);
    let dbt_project = std::fs::read_to_string(project.root.join("dbt_project.yml")).unwrap();
    let dbt_project = dbt_project
        .replace(
            "vars:\n",
            "on-run-start:\n  - \"create schema if not exists audit\"\n  \
             - \"create table if not exists audit.events (what text)\"\n\
             on-run-end:\n  - \"{{ notify('run finished') }}\"\n  \
             - \"insert into audit.events values ('plain on-run-end')\"\n\
             vars:\n  weir:\n    side_effects: [purge_staging]\n",
        )
        .replace(
            "      +schema: marts\n",
            "      +schema: marts\n      customers:\n        +post-hook:\n          \
             - sql: \"insert into audit.events values ('customers hook')\"\n            \
             side_effect: true\n          - \"{{ purge_staging() }}\"\n          \
             - \"insert into audit.events values ('ordinary post-hook')\"\n",
        );
    project.write("dbt_project.yml", &dbt_project);
    project.write(
        "macros/side_effects.sql",
        "{% macro notify(message) %}{{ side_effect() }}insert into audit.events values ('notified: {{ message }}'){% endmacro %}\n\
         {% macro purge_staging() %}insert into audit.events values ('purged'){% endmacro %}\n",
    );

    let output = weir(&project.root, &["build"], &[]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    for skipped in [
        "[dev] would run: insert into audit.events values ('notified: run finished')",
        "[dev] would run: insert into audit.events values ('customers hook')",
        "[dev] would run: insert into audit.events values ('purged')",
    ] {
        assert!(out.contains(skipped), "{skipped}\n{out}");
    }
    assert_eq!(events(&project), ["ordinary post-hook", "plain on-run-end"]);

    let output = weir(
        &project.root,
        &["build", "--target", "prod"],
        &[("CI", "true")],
    );
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(!out.contains("would run"), "{out}");
    assert_eq!(
        events(&project),
        [
            "customers hook",
            "notified: run finished",
            "ordinary post-hook",
            "plain on-run-end",
            "purged"
        ]
    );
}
