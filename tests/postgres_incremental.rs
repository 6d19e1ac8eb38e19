//! Incremental models on a throwaway PostgreSQL: each strategy over several
//! runs, `is_incremental()` and `{{ this }}`, schema changes, full refresh.

mod support;

use weir::{Compiled, NodeResult, RunOptions, RunResults, Status};

use support::{TestProject, plan, relation};

fn run(compiled: &Compiled, select: &[&str], full_refresh: bool) -> RunResults {
    let options = RunOptions {
        threads: 2,
        fail_fast: false,
        full_refresh,
        ..RunOptions::default()
    };
    let results = weir::run(compiled, &plan(compiled, select), &options, &|_| {}).unwrap();
    for result in &results.results {
        assert_ne!(result.status, Status::Error, "{}", result.message);
    }
    results
}

/// The rows of a query as text, for comparing.
fn rows(project: &TestProject, compiled: &Compiled, sql: &str) -> Vec<String> {
    let mut db = project.connect(compiled);
    db.client()
        .query(&format!("select t::text from ({sql}) t"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The first column of a query's rows, as text.
fn values(project: &TestProject, compiled: &Compiled, sql: &str) -> Vec<String> {
    let mut db = project.connect(compiled);
    db.client()
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn execute(project: &TestProject, compiled: &Compiled, sql: &str) {
    project
        .connect(compiled)
        .client()
        .batch_execute(sql)
        .unwrap();
}

fn result<'a>(results: &'a RunResults, unique_id: &str) -> &'a NodeResult {
    results
        .results
        .iter()
        .find(|r| r.unique_id == unique_id)
        .unwrap()
}

fn message(results: &RunResults, unique_id: &str) -> String {
    result(results, unique_id).message.clone()
}

/// Compile, create public.src, run `models`, run `change`, run them again.
fn run_twice(
    project: &TestProject,
    models: &[&str],
    change: &str,
) -> (Compiled, RunResults, RunResults) {
    let compiled = project.compile();
    execute(project, &compiled, SOURCE);
    let first = run(&compiled, models, false);
    execute(project, &compiled, change);
    let second = run(&compiled, models, false);
    (compiled, first, second)
}

const SOURCE: &str = "create table public.src (id int, day int, v text);
insert into public.src values (1, 1, 'a'), (2, 1, 'b'), (3, 2, 'c');";

#[test]
fn strategies_add_and_replace_rows_across_runs() {
    let project = TestProject::copy_of("shop", "incr_strategies");
    project.write(
        "models/appended.sql",
        "{{ config(materialized='incremental') }}\n\
         select id, day, v from public.src\n\
         {% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}\n",
    );
    project.write(
        "models/deleted.sql",
        "{{ config(materialized='incremental', unique_key='id') }}\n\
         select id, day, v from public.src\n\
         {% if is_incremental() %}where day >= (select max(day) from {{ this }}){% endif %}\n",
    );
    project.write(
        "models/merged.sql",
        "{{ config(materialized='incremental', incremental_strategy='merge', unique_key=['id', 'day']) }}\n\
         select id, day, v from public.src\n\
         {% if is_incremental() %}where day >= (select max(day) from {{ this }}){% endif %}\n",
    );
    let (compiled, first, second) = run_twice(
        &project,
        &["appended deleted merged"],
        "update public.src set v = 'c2' where id = 3; insert into public.src values (4, 2, 'd');",
    );
    assert_eq!(message(&first, "model.shop.appended"), "SELECT 3");
    assert_eq!(message(&second, "model.shop.appended"), "INSERT 0 1");
    assert_eq!(message(&second, "model.shop.deleted"), "INSERT 0 2");
    assert_eq!(message(&second, "model.shop.merged"), "MERGE 2");
    let appended = result(&second, "model.shop.appended");
    let this = relation(&compiled, "appended");
    assert!(
        appended
            .compiled_code
            .contains(&format!("where id > (select max(id) from {this})")),
        "{}",
        appended.compiled_code
    );

    let ordered = |name: &str| {
        let relation = relation(&compiled, name);
        rows(
            &project,
            &compiled,
            &format!("select id, day, v from {relation} order by id, v"),
        )
    };
    assert_eq!(
        ordered("appended"),
        ["(1,1,a)", "(2,1,b)", "(3,2,c)", "(4,2,d)"]
    );
    assert_eq!(
        ordered("deleted"),
        ["(1,1,a)", "(2,1,b)", "(3,2,c2)", "(4,2,d)"]
    );
    assert_eq!(
        ordered("merged"),
        ["(1,1,a)", "(2,1,b)", "(3,2,c2)", "(4,2,d)"]
    );

    // A full refresh rebuilds from scratch: the appended model picks up the update.
    let refreshed = run(&compiled, &["appended"], true);
    assert_eq!(message(&refreshed, "model.shop.appended"), "SELECT 4");
    assert_eq!(
        ordered("appended"),
        ["(1,1,a)", "(2,1,b)", "(3,2,c2)", "(4,2,d)"]
    );
}

#[test]
fn schema_changes_follow_on_schema_change() {
    let project = TestProject::copy_of("shop", "incr_schema");
    let model = |name: &str, on_change: &str, columns: &str| {
        project.write(
            &format!("models/{name}.sql"),
            &format!(
                "{{{{ config(materialized='incremental', on_schema_change='{on_change}') }}}}\n\
                 select {columns} from public.src\n\
                 {{% if is_incremental() %}}where id > (select max(id) from {{{{ this }}}}){{% endif %}}\n"
            ),
        );
    };
    for (name, on_change) in [
        ("ignored", "ignore"),
        ("appended", "append_new_columns"),
        ("synced", "sync_all_columns"),
        ("strict", "fail"),
    ] {
        model(name, on_change, "id, day");
    }
    let compiled = project.compile();
    execute(&project, &compiled, SOURCE);
    run(&compiled, &["ignored appended synced strict"], false);

    for (name, on_change) in [
        ("ignored", "ignore"),
        ("appended", "append_new_columns"),
        ("synced", "sync_all_columns"),
        ("strict", "fail"),
    ] {
        model(name, on_change, "id, v, day::bigint as day");
    }
    let compiled = project.compile();
    execute(
        &project,
        &compiled,
        "insert into public.src values (4, 2, 'd');",
    );
    let options = RunOptions {
        threads: 2,
        fail_fast: false,
        full_refresh: false,
        ..RunOptions::default()
    };
    let results = weir::run(
        &compiled,
        &plan(&compiled, &["ignored appended synced strict"]),
        &options,
        &|_| {},
    )
    .unwrap();
    let strict = results
        .results
        .iter()
        .find(|r| r.unique_id == "model.shop.strict")
        .unwrap();
    assert_eq!(strict.status, Status::Error);
    assert!(
        strict.message.starts_with(
            "models/strict.sql: the columns of this incremental model no longer match its table"
        ),
        "{}",
        strict.message
    );
    assert!(
        strict.message.contains("new columns: v (text)"),
        "{}",
        strict.message
    );

    let columns = |name: &str| {
        let relation = relation(&compiled, name);
        values(
            &project,
            &compiled,
            &format!(
                "select attname || ' ' || format_type(atttypid, atttypmod) from pg_attribute \
                 where attrelid = '{relation}'::regclass and attnum > 0 and not attisdropped order by attnum"
            ),
        )
    };
    assert_eq!(columns("ignored"), ["id integer", "day integer"]);
    assert_eq!(columns("appended"), ["id integer", "day integer", "v text"]);
    assert_eq!(columns("synced"), ["id integer", "v text", "day bigint"]);
    assert_eq!(columns("strict"), ["id integer", "day integer"]);
    let all = |name: &str| {
        let relation = relation(&compiled, name);
        rows(
            &project,
            &compiled,
            &format!("select * from {relation} order by id"),
        )
    };
    assert_eq!(all("ignored"), ["(1,1)", "(2,1)", "(3,2)", "(4,2)"]);
    assert_eq!(all("appended"), ["(1,1,)", "(2,1,)", "(3,2,)", "(4,2,d)"]);
    assert_eq!(all("synced"), ["(1,,1)", "(2,,1)", "(3,,2)", "(4,d,2)"]);
    assert_eq!(all("strict"), ["(1,1)", "(2,1)", "(3,2)"]);
}

#[test]
fn incremental_runs_read_ephemeral_parents_as_ctes() {
    let project = TestProject::copy_of("shop", "incr_ephemeral");
    project.write(
        "models/src_rows.sql",
        "{{ config(materialized='ephemeral') }}\nselect id, day, v from public.src\n",
    );
    project.write(
        "models/src_upper.sql",
        "{{ config(materialized='ephemeral') }}\nselect id, day, upper(v) as v from {{ ref('src_rows') }}\n",
    );
    project.write(
        "models/from_ephemeral.sql",
        "{{ config(materialized='incremental', unique_key='id') }}\n\
         with picked as (select * from {{ ref('src_upper') }})\n\
         select id, day, v from picked\n\
         {% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}\n",
    );
    let (compiled, first, second) = run_twice(
        &project,
        &["from_ephemeral"],
        "insert into public.src values (4, 2, 'd');",
    );
    assert_eq!(message(&first, "model.shop.from_ephemeral"), "SELECT 3");
    assert_eq!(message(&second, "model.shop.from_ephemeral"), "INSERT 0 1");
    let code = &result(&second, "model.shop.from_ephemeral").compiled_code;
    assert!(code.contains("__dbt__cte__src_rows as ("), "{code}");
    assert!(code.contains("where id > (select max(id) from"), "{code}");
    let relation = relation(&compiled, "from_ephemeral");
    assert_eq!(
        rows(
            &project,
            &compiled,
            &format!("select * from {relation} order by id")
        ),
        ["(1,1,A)", "(2,1,B)", "(3,2,C)", "(4,2,D)"]
    );
}
