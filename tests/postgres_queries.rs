//! Queries while rendering: a node whose SQL asks the database is marked by
//! the compile (which never connects) and rendered as it runs, after its
//! upstream nodes are built, on its own connection.

mod support;

use weir::{Adapter, ErrorKind, RunOptions, Status};

use support::{TestProject, plan, relation};

/// Reads the columns of `orders` (built first) as dbt_utils.star does, in a macro.
const STAR: &str = "select {{ column_list(ref('orders')) }} from {{ ref('orders') }}\n";

const STAR_MACRO: &str = "\
{% macro column_list(relation) -%}
{%- set cols = adapter.get_columns_in_relation(relation) -%}
{%- for c in cols %}{{ c.quoted }}{{ ', ' if not loop.last }}{% endfor -%}
{%- endmacro %}
";

/// run_query, statement/load_result, get_relation and drop_relation.
const QUERIES: &str = "\
-- depends_on: {{ ref('orders') }} {{ ref('stg_orders') }} {{ ref('stg_customers') }}
{% if execute -%}
{%- set counted = run_query('select count(*) as n, 7.5::numeric as half, true as yes from ' ~ ref('stg_orders')) -%}
{%- call statement('total', fetch_result=True) -%}
select count(*) as c from {{ ref('stg_customers') }}
{%- endcall -%}
{%- call statement('scratch') -%}
create table {{ this.schema }}.scratch as select 1 as a
{%- endcall -%}
{%- set scratch = adapter.get_relation(this.database, this.schema, 'scratch') -%}
{%- do adapter.drop_relation(scratch) -%}
{%- set orders = adapter.get_relation(database=this.database, schema=this.schema, identifier='orders') -%}
select {{ counted.columns[0].values()[0] }} as orders,
  {{ counted[0][0] + 1 }} as plus_one,
  {{ counted.rows[0]['half'] }} as half,
  {{ counted[0].yes }} as yes,
  '{{ counted.column_names | join(',') }}' as names,
  {{ load_result('total')['data'][0][0] }} as customers,
  {{ load_result('total').table.rows | length }} as total_rows,
  '{{ orders.type }}' as orders_type,
  '{{ scratch.type }}' as scratch_type,
  {{ adapter.get_relation(this.database, this.schema, 'scratch') is none }} as scratch_dropped
{%- endif %}
";

/// A generic test that reads the columns of the model it tests.
const COLUMN_COUNT_TEST: &str = "\
{% test has_columns(model, at_least) %}
{%- set n = adapter.get_columns_in_relation(model) | length if execute else 0 -%}
select 1 as too_few where {{ n }} < {{ at_least }}
{% endtest %}
";

/// A query the database rejects: this node fails, the others build.
const BAD_QUERY: &str = "\
{% if execute %}{% set r = run_query('select no_such_column from ' ~ ref('orders')) %}{% endif %}
select 1 as one
";

fn project(name: &str) -> TestProject {
    let project = TestProject::copy_of("shop", name);
    project.write("models/marts/orders_star.sql", STAR);
    project.write("macros/column_list.sql", STAR_MACRO);
    project.write("macros/has_columns.sql", COLUMN_COUNT_TEST);
    project.write("models/marts/bad_query.sql", BAD_QUERY);
    project.write(
        "models/marts/star.yml",
        "version: 2\nmodels:\n  - name: orders_star\n    data_tests:\n      - has_columns:\n          at_least: 3\n",
    );
    project.write("models/marts/queries.sql", QUERIES);
    project
}

#[test]
fn the_compile_marks_only_the_nodes_that_ask_the_database_and_never_connects() {
    let project = project("queries_compile");
    // No cluster is started by a compile: the database is unreachable.
    let compiled = project.compile();
    let asking: Vec<&str> = compiled
        .manifest
        .nodes
        .values()
        .filter(|n| n.needs_database())
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(
        asking,
        [
            "bad_query",
            "orders_star",
            "queries",
            "has_columns_orders_star_3"
        ]
    );
    let node = compiled
        .manifest
        .nodes
        .values()
        .find(|n| n.name == "queries")
        .unwrap();
    let error = node.check_rendered().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NeedsDatabase);
    assert!(error.message().contains("run_query()"), "{error}");
    // Their upstream nodes are known from the parse render.
    assert!(node.depends_on_nodes.iter().any(|d| d.ends_with(".orders")));
    assert!(
        node.depends_on_nodes
            .iter()
            .any(|d| d.ends_with(".stg_customers"))
    );
}

#[test]
fn nodes_that_ask_the_database_render_as_they_run_after_their_parents() {
    let project = project("queries_run");
    let compiled = project.compile();
    let results = weir::run(
        &compiled,
        &plan(&compiled, &[]),
        &RunOptions {
            threads: 4,
            ..RunOptions::default()
        },
        &|_| {},
    )
    .unwrap();
    for result in &results.results {
        if result.unique_id.ends_with(".bad_query") {
            assert_eq!(result.status, Status::Error);
            assert!(
                result.message.contains("no_such_column"),
                "{}",
                result.message
            );
            continue;
        }
        assert!(
            matches!(result.status, Status::Success | Status::Pass),
            "{}: {}\n{}",
            result.unique_id,
            result.message,
            result.compiled_code
        );
    }
    let mut db = project.connect(&compiled);
    let star = relation(&compiled, "orders_star");
    let orders = relation(&compiled, "orders");
    let columns = |db: &mut weir::PostgresAdapter, r: &weir::Relation| -> Vec<String> {
        db.columns(&format!("{}.{}", r.schema, r.identifier))
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(columns(&mut db, &star), columns(&mut db, &orders));
    assert!(!columns(&mut db, &star).is_empty());
    let queries = relation(&compiled, "queries");
    let row = db
        .client()
        .query_one(
            &format!(
                "select concat_ws('|', orders, plus_one, half, yes, names, customers, \
                 total_rows, orders_type, scratch_type, scratch_dropped) from {queries}"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        "30|31|7.5|t|n,half,yes|10|1|table|table|t"
    );
    // run_results carry the SQL that ran, rendered with the database.
    let ran = results
        .results
        .iter()
        .find(|r| r.unique_id.ends_with(".queries"))
        .unwrap();
    assert!(
        ran.compiled_code.contains("select 30 as orders"),
        "{}",
        ran.compiled_code
    );

    // One node alone, as an orchestrator's task builds it.
    let id = compiled
        .manifest
        .nodes
        .values()
        .find(|n| n.name == "orders_star")
        .unwrap()
        .unique_id
        .clone();
    let result = weir::workflow::node::run_node(
        &compiled,
        &weir::workflow::Guard::new(),
        &id,
        weir::workflow::node::NodeOptions::default(),
    )
    .unwrap();
    assert_eq!(result.status, Status::Success, "{}", result.message);
    assert!(
        result.compiled_code.contains("\"order_id\""),
        "{}",
        result.compiled_code
    );
}
