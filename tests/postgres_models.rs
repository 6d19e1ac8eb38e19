//! Model materializations beyond view and table on a throwaway PostgreSQL:
//! materialized views, and what runs around a build (hooks, grants, docs).

mod support;

use weir::{Compiled, RunOptions, RunResults, Status};

use support::{TestProject, count, plan, relation};

fn run(compiled: &Compiled, select: &[&str], full_refresh: bool) -> RunResults {
    let options = RunOptions {
        threads: 2,
        fail_fast: false,
        full_refresh,
        ..RunOptions::default()
    };
    weir::run(compiled, &plan(compiled, select), &options, &|_| {}).unwrap()
}

fn message(results: &RunResults, name: &str) -> (Status, String) {
    let result = results
        .results
        .iter()
        .find(|r| r.unique_id == format!("model.shop.{name}"))
        .unwrap();
    (result.status, result.message.clone())
}

#[test]
fn materialized_views_are_created_then_refreshed() {
    let project = TestProject::copy_of("shop", "matview");
    project.write(
        "models/order_counts.sql",
        "{{ config(materialized='materialized_view') }}\n\
         select count(*) as n from public.events\n",
    );
    let compiled = project.compile();
    let mut db = project.connect(&compiled);
    db.client()
        .batch_execute(
            "create table public.events (id int); insert into public.events values (1), (2);",
        )
        .unwrap();

    let first = run(&compiled, &["order_counts"], false);
    assert_eq!(
        message(&first, "order_counts"),
        (Status::Success, "SELECT 1".into())
    );
    let counts = relation(&compiled, "order_counts");
    let n = |db: &mut weir::PostgresAdapter| -> i64 {
        db.client()
            .query_one(&format!("select n from {counts}"), &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(n(&mut db), 2);
    let kind: String = db
        .client()
        .query_one(
            "select relkind::text from pg_class where oid = $1::text::regclass",
            &[&counts.to_string()],
        )
        .unwrap()
        .get(0);
    assert_eq!(kind, "m");

    db.client()
        .batch_execute("insert into public.events values (3)")
        .unwrap();
    let second = run(&compiled, &["order_counts"], false);
    assert_eq!(
        message(&second, "order_counts"),
        (Status::Success, "REFRESH MATERIALIZED VIEW".into())
    );
    assert_eq!(n(&mut db), 3);

    // As in dbt, a changed query takes effect on full refresh.
    project.write(
        "models/order_counts.sql",
        "{{ config(materialized='materialized_view') }}\n\
         select count(*) * 10 as n from public.events\n",
    );
    let compiled = project.compile();
    let third = run(&compiled, &["order_counts"], true);
    assert_eq!(
        message(&third, "order_counts"),
        (Status::Success, "SELECT 1".into())
    );
    assert_eq!(n(&mut db), 30);
    assert_eq!(count(&mut db, &counts), 1);
}

#[test]
fn hooks_grants_and_docs_run_around_builds() {
    let project = TestProject::copy_of("shop", "hooks");
    project.append(
        "dbt_project.yml",
        "on-run-start:\n  - create table if not exists public.hook_log (id serial, msg text)\n\
         on-run-end: \"insert into public.hook_log (msg) values ('end {{ target.name }}')\"\n",
    );
    let model = |grantee: &str| {
        format!(
            "{{{{ config(materialized='incremental', grants={{'select': ['{grantee}']}},\n\
             persist_docs={{'relation': true, 'columns': true}},\n\
             pre_hook=\"insert into public.hook_log (msg) values ('pre {{{{ this.name }}}}')\",\n\
             post_hook={{'sql': \"insert into public.hook_log (msg) values ('post'); select 1\", 'transaction': false}}) }}}}\n\
             select 1 as id\n"
        )
    };
    project.write("models/hooked.sql", &model("reporter"));
    project.write(
        "models/hooked.yml",
        "version: 2\nmodels:\n  - name: hooked\n    description: \"Built with hooks, it's documented\"\n    columns:\n      - name: id\n        description: The key\n      - name: missing\n        description: Not built\n",
    );
    let compiled = project.compile();
    let mut db = project.connect(&compiled);
    db.client()
        .batch_execute("create role reporter; create role analyst;")
        .unwrap();

    let first = run(&compiled, &["hooked"], false);
    assert!(!first.has_failures(), "{:?}", first.results);
    let ids: Vec<&str> = first.results.iter().map(|r| r.unique_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "model.shop.hooked",
            "operation.shop.shop-on-run-start-0",
            "operation.shop.shop-on-run-end-0"
        ]
    );
    let hooked = relation(&compiled, "hooked").to_string();
    let log = |db: &mut weir::PostgresAdapter| -> Vec<String> {
        db.client()
            .query("select msg from public.hook_log order by id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(log(&mut db), ["pre hooked", "post", "end dev"]);
    let privileges = |db: &mut weir::PostgresAdapter| -> (bool, bool) {
        let row = db
            .client()
            .query_one(
                "select has_table_privilege('reporter', $1, 'select'), \
                 has_table_privilege('analyst', $1, 'select')",
                &[&hooked],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(privileges(&mut db), (true, false));
    let docs = db
        .client()
        .query_one(
            "select obj_description($1::text::regclass, 'pg_class'), col_description($1::text::regclass, 1)",
            &[&hooked],
        )
        .unwrap();
    assert_eq!(
        (docs.get::<_, String>(0), docs.get::<_, String>(1)),
        ("Built with hooks, it's documented".into(), "The key".into())
    );

    // The table is kept by the incremental run: grants move to the new role.
    project.write("models/hooked.sql", &model("analyst"));
    let compiled = project.compile();
    let second = run(&compiled, &["hooked"], false);
    assert!(!second.has_failures(), "{:?}", second.results);
    assert_eq!(
        message(&second, "hooked"),
        (Status::Success, "INSERT 0 1".into())
    );
    assert_eq!(privileges(&mut db), (false, true));
    assert_eq!(
        log(&mut db),
        [
            "pre hooked",
            "post",
            "end dev",
            "pre hooked",
            "post",
            "end dev"
        ]
    );
}

#[test]
fn a_failing_on_run_start_skips_every_node() {
    let project = TestProject::copy_of("shop", "hooks_fail");
    let yml = std::fs::read_to_string(project.root.join("dbt_project.yml")).unwrap();
    project.write(
        "dbt_project.yml",
        &format!("{yml}\non-run-start: \"select * from no_such_table\"\n"),
    );
    let compiled = project.compile();
    let results = run(&compiled, &["stg_orders"], false);
    let hook = results
        .results
        .iter()
        .find(|r| r.unique_id == "operation.shop.shop-on-run-start-0")
        .unwrap();
    assert_eq!(hook.status, Status::Error);
    assert!(
        hook.message.starts_with(
            "on-run-start hook failed: dbt_project.yml: relation \"no_such_table\" does not exist"
        ),
        "{}",
        hook.message
    );
    let (status, reason) = message(&results, "stg_orders");
    assert_eq!(status, Status::Skipped);
    assert_eq!(
        reason,
        "skipped because operation.shop.shop-on-run-start-0 failed"
    );
}

/// dbt's on-run-end context: `results` (each with its `node`), and the
/// `schemas` / `database_schemas` of what was built, not of what failed.
#[test]
fn on_run_end_hooks_see_results_and_schemas() {
    let project = TestProject::copy_of("shop", "run_end");
    project.append(
        "dbt_project.yml",
        "on-run-start: select 1\non-run-end:\n\
         - \"{{ record_results() }}\"\n\
         - \"{% for schema in schemas %}grant usage on schema {{ schema }} to reader;{% endfor %}\"\n\
         - \"create table public.built_in as select * from (values {% for (database, schema) in database_schemas %}('{{ database }}', '{{ schema }}'){{ ',' if not loop.last }}{% endfor %}) v (d, s)\"\n",
    );
    // A macro reads `results` from the hook's context, as dbt's macros can.
    project.write(
        "macros/record_results.sql",
        "{% macro record_results() %}\n\
         create table public.run_log (unique_id text, status text, resource_type text, name text, \
         rows_affected bigint, failures int, message text, timed boolean);\n\
         {% for r in results %}\n\
         insert into public.run_log values ('{{ r.node.unique_id }}', '{{ r.status }}', \
         '{{ r.node.resource_type }}', '{{ r.node.name }}', \
         {{ r.adapter_response.get('rows_affected', 'null') }}, \
         {{ r.failures if r.failures is not none else 'null' }}, \
         {{ \"'\" ~ r.message | replace(\"'\", \"''\") ~ \"'\" if r.message else 'null' }}, \
         {{ r.execution_time >= 0 and r.timing | length == 2 and r.thread_id is string }});\n\
         {% endfor %}\n\
         {% endmacro %}\n",
    );
    project.write("models/plain.sql", "select 1 as id\n");
    project.write(
        "models/marts/two_rows.sql",
        "select 1 as id union all select 2\n",
    );
    project.write(
        "models/broken.sql",
        "{{ config(schema='broken') }}\nselect * from public.nowhere\n",
    );
    project.write(
        "models/after_broken.sql",
        "{{ config(schema='after') }}\nselect * from {{ ref('broken') }}\n",
    );
    project.write(
        "tests/two_rows_has_no_two.sql",
        "select * from {{ ref('two_rows') }} where id = 2\n",
    );
    let compiled = project.compile();
    let mut db = project.connect(&compiled);
    db.client().batch_execute("create role reader").unwrap();

    let results = run(
        &compiled,
        &["plain two_rows broken after_broken two_rows_has_no_two"],
        false,
    );
    let hooks: Vec<(&str, Status)> = results
        .results
        .iter()
        .filter(|r| r.unique_id.starts_with("operation."))
        .map(|r| (r.unique_id.as_str(), r.status))
        .collect();
    assert_eq!(
        hooks,
        [
            ("operation.shop.shop-on-run-start-0", Status::Success),
            ("operation.shop.shop-on-run-end-0", Status::Success),
            ("operation.shop.shop-on-run-end-1", Status::Success),
            ("operation.shop.shop-on-run-end-2", Status::Success),
        ],
        "{:?}",
        results.results
    );

    let rows: Vec<String> = db
        .client()
        .query(
            "select concat_ws(' | ', unique_id, status, resource_type, name, \
             coalesce(rows_affected::text, '-'), coalesce(failures::text, '-'), timed) \
             from public.run_log order by unique_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        rows,
        [
            "model.shop.after_broken | skipped | model | after_broken | - | - | t",
            "model.shop.broken | error | model | broken | - | - | t",
            "model.shop.plain | success | model | plain | -1 | - | t",
            "model.shop.two_rows | success | model | two_rows | 2 | - | t",
            "test.shop.two_rows_has_no_two | fail | test | two_rows_has_no_two | 1 | 1 | t",
        ]
    );
    let messages: Vec<Option<String>> = db
        .client()
        .query(
            "select message from public.run_log where unique_id in \
             ('model.shop.plain', 'model.shop.broken') order by unique_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        messages[0]
            .as_deref()
            .is_some_and(|m| m.contains("nowhere")),
        "{messages:?}"
    );
    assert_eq!(messages[1].as_deref(), Some("CREATE VIEW"));

    let schema = relation(&compiled, "plain").schema;
    let marts = relation(&compiled, "two_rows").schema;
    assert_eq!(marts, format!("{schema}_marts"));
    let built: Vec<(String, String)> = db
        .client()
        .query("select d, s from public.built_in order by s", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let database = relation(&compiled, "plain").database;
    assert_eq!(
        built,
        [
            (database.clone(), schema.clone()),
            (database, marts.clone())
        ]
    );
    for (name, usage) in [
        (schema.clone(), true),
        (marts, true),
        (format!("{schema}_broken"), false),
        (format!("{schema}_after"), false),
    ] {
        let granted: bool = db
            .client()
            .query_one(
                "select coalesce((select has_schema_privilege('reader', oid, 'usage') \
                 from pg_namespace where nspname = $1), false)",
                &[&name],
            )
            .unwrap()
            .get(0);
        assert_eq!(granted, usage, "usage on {name}");
    }
}
