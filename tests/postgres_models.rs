//! Model materializations beyond view and table on a throwaway PostgreSQL:
//! materialized views, and what runs around a build (hooks, grants, docs).

mod support;

use weir::compile::Compiled;
use weir::results::{RunResults, Status};
use weir::runner::{self, RunOptions};

use support::{TestProject, count, plan, relation};

fn run(compiled: &Compiled, select: &[&str], full_refresh: bool) -> RunResults {
    let options = RunOptions {
        threads: 2,
        fail_fast: false,
        full_refresh,
    };
    runner::run(compiled, &plan(compiled, select), &options, &|_| {}).unwrap()
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
    let n = |db: &mut weir::adapter::postgres::PostgresAdapter| -> i64 {
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
