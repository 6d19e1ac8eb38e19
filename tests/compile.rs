//! Compiling fixture projects: rendered SQL, relation names per target, the
//! DAG, and the errors a user sees (snapshots).

use std::path::Path;

use serde_json::Map;
use weir::{Manifest, Project, ResourceType, Target, parse_target};

const PROFILES: &str = "
test:
  target: dev
  outputs:
    dev: {type: postgres, schema: dev_alice, threads: 2}
    prod: {type: postgres, host: db.internal, dbname: warehouse, schema: analytics, password: s3cret}
";

fn target(name: &str) -> Target {
    parse_target(PROFILES, Path::new("profiles.yml"), "test", Some(name)).unwrap()
}

fn compile(fixture: &str, target_name: &str) -> weir::Result<Manifest> {
    let project = Project::load(Path::new(fixture))?;
    weir::compile(&project, &target(target_name), &Map::new())
}

fn compile_err(fixture: &str) -> String {
    compile(fixture, "dev").unwrap_err().to_string()
}

/// Write a throwaway project of `files` (path, text), load and compile it
/// for dev; the error, with the project's folder left out of its text.
fn temp_project_error(name: &str, files: &[(&str, &str)]) -> (weir::Error, String) {
    let root = std::env::temp_dir().join(format!("weir_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let err = match Project::load(&root) {
        Ok(project) => match weir::compile(&project, &target("dev"), &Map::new()) {
            Ok(_) => panic!("{name}: compiled without an error"),
            Err(err) => err,
        },
        Err(err) => err,
    };
    let _ = std::fs::remove_dir_all(&root);
    let shown = err.to_string().replace(&format!("{}/", root.display()), "");
    (err, shown)
}

/// Every model's relation and compiled SQL, in DAG order.
fn compiled_sql(manifest: &Manifest) -> String {
    let mut out = String::new();
    for id in &manifest.order {
        let node = &manifest.nodes[id];
        out.push_str(&format!("-- {} -> {}\n", node.unique_id, node.relation));
        if node.resource_type == ResourceType::Model {
            out.push_str(node.compiled_code.trim_end());
            out.push_str("\n\n");
        }
    }
    out
}

#[test]
fn shop_compiles_for_dev() {
    let manifest = compile("dags/dbt/shop", "dev").unwrap();
    insta::assert_snapshot!(compiled_sql(&manifest));
}

#[test]
fn shop_compiles_for_prod_into_other_schemas_without_the_dev_filter() {
    let manifest = compile("dags/dbt/shop", "prod").unwrap();
    let orders = &manifest.nodes["model.shop.orders"];
    assert_eq!(
        orders.relation.to_string(),
        r#""warehouse"."analytics_marts"."orders""#
    );
    let stg_orders = &manifest.nodes["model.shop.stg_orders"];
    assert!(!stg_orders.compiled_code.contains("where order_date"));
    assert!(
        stg_orders
            .compiled_code
            .contains(r#""warehouse"."analytics"."raw_orders""#)
    );
}

#[test]
fn shop_dag_order_and_edges() {
    let manifest = compile("dags/dbt/shop", "dev").unwrap();
    let position = |id: &str| manifest.order.iter().position(|x| x == id).unwrap();
    assert!(position("seed.shop.raw_orders") < position("model.shop.stg_orders"));
    assert!(position("model.shop.stg_orders") < position("model.shop.orders"));
    assert!(position("model.shop.orders") < position("model.shop.customers"));
    assert_eq!(
        manifest.parent_map["model.shop.customers"],
        vec!["model.shop.orders", "model.shop.stg_customers"]
    );
    assert_eq!(
        manifest.child_map["model.shop.stg_payments"],
        vec![
            "model.shop.orders",
            "test.shop.not_null_stg_payments_payment_id.c19cc50075",
            "test.shop.unique_stg_payments_payment_id.3744510712"
        ]
    );
    let count = |kind| {
        manifest
            .nodes
            .values()
            .filter(|n| n.resource_type == kind)
            .count()
    };
    assert_eq!(count(ResourceType::Model), 5);
    assert_eq!(count(ResourceType::Seed), 3);
    assert_eq!(count(ResourceType::Test), 12);
}

#[test]
fn features_render_like_dbt() {
    let manifest = compile("tests/fixtures/features", "dev").unwrap();
    insta::assert_snapshot!(compiled_sql(&manifest));
    let events = &manifest.nodes["model.features.daily_events"];
    assert_eq!(events.tags, vec!["nightly", "finance"]);
    assert_eq!(events.retries, Some(2));
    assert_eq!(
        events.depends_on_nodes,
        vec!["source.features.app.events", "model.features.users"]
    );
    let users = &manifest.nodes["model.features.users"];
    assert_eq!(users.relation.identifier, "app_users_clean");
    assert_eq!(
        users.description, "Users from the app, one row each, with e-mail addresses lower-cased.",
        "doc() from a docs block"
    );
}

#[test]
fn a_project_can_override_generate_schema_name() {
    let manifest = compile("tests/fixtures/schema_override", "prod").unwrap();
    assert_eq!(
        manifest.nodes["model.schema_override.report"]
            .relation
            .schema,
        "reporting"
    );
    assert_eq!(
        manifest.nodes["model.schema_override.plain"]
            .relation
            .schema,
        "analytics"
    );
    assert!(
        manifest.nodes["model.schema_override.plain"]
            .compiled_code
            .contains(r#""warehouse"."reporting"."report""#)
    );
}

#[test]
fn manifest_json_has_dbt_v12_shape() {
    let manifest = compile("dags/dbt/shop", "prod").unwrap();
    let json = manifest.to_json();
    assert_eq!(
        json["metadata"]["dbt_schema_version"],
        "https://schemas.getdbt.com/dbt/manifest/v12.json"
    );
    let orders = &json["nodes"]["model.shop.orders"];
    assert_eq!(
        orders["relation_name"],
        r#""warehouse"."analytics_marts"."orders""#
    );
    assert_eq!(orders["config"]["materialized"], "table");
    assert_eq!(
        orders["fqn"],
        serde_json::json!(["shop", "marts", "orders"])
    );
    assert!(!json.to_string().contains("s3cret"));
}

#[test]
fn a_cycle_prints_the_whole_loop() {
    insta::assert_snapshot!(compile_err("tests/fixtures/cycle"));
}

#[test]
fn a_missing_ref_names_file_line_and_suggestion() {
    insta::assert_snapshot!(compile_err("tests/fixtures/missing_ref"));
}

#[test]
fn broken_yaml_names_file_and_line() {
    insta::assert_snapshot!(compile_err("tests/fixtures/bad_yaml"));
}

#[test]
fn an_error_inside_a_macro_names_the_macro_file_and_line_and_its_caller() {
    insta::assert_snapshot!(compile_err("tests/fixtures/macro_error"));
}

#[test]
fn packages_in_dbt_packages_are_nodes_and_macro_namespaces() {
    let manifest = compile("tests/fixtures/packages", "dev").unwrap();
    let calendar = &manifest.nodes["model.weir_utils.calendar"];
    assert_eq!(calendar.package_name, "weir_utils");
    assert_eq!(calendar.fqn, vec!["weir_utils", "calendar"]);
    // The package's own config, then the root project's override for it.
    assert_eq!(calendar.config["materialized"], "table");
    assert_eq!(calendar.relation.schema, "dev_alice_utils");
    assert_eq!(
        calendar.compiled_code,
        "select generate_series(1, 7) as day_number"
    );
    let orders = &manifest.nodes["model.packages.orders"];
    // The root project's postgres__ implementation wins the dispatch.
    assert!(
        orders
            .compiled_code
            .contains("md5(concat_ws('|', order_id, day_number))")
    );
    assert_eq!(
        manifest.parent_map["model.packages.doubled"],
        vec!["model.weir_utils.calendar_days"]
    );
    assert!(
        manifest
            .nodes
            .contains_key("test.packages.weir_utils_at_least_orders_day_number__1.54945810b8")
    );
}

#[test]
fn a_missing_ref_is_a_missing_node_error() {
    let err = compile("tests/fixtures/missing_ref", "dev").unwrap_err();
    assert_eq!(err.kind(), weir::ErrorKind::MissingNode);
}

#[test]
fn an_exposure_with_an_unknown_ref_names_file_and_line() {
    let err = compile("tests/fixtures/exposure_missing_ref", "dev").unwrap_err();
    assert_eq!(err.kind(), weir::ErrorKind::MissingNode);
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn exposures_are_in_the_manifest_and_its_edge_maps() {
    let manifest = compile("tests/fixtures/features", "dev").unwrap();
    let dashboard = &manifest.exposures["exposure.features.weekly_dashboard"];
    assert_eq!(
        dashboard.depends_on_nodes,
        [
            "source.features.app.events",
            "model.features.daily_events",
            "model.features.users"
        ]
    );
    assert_eq!(dashboard.tags, ["downstream", "reporting"]);
    assert_eq!(
        manifest.parent_map["exposure.features.ml_scores"],
        ["model.features.daily_events", "source.features.app.users"]
    );
    assert!(
        manifest.child_map["model.features.event_kinds"]
            .contains(&"exposure.features.churn_notebook".to_string())
    );
    // `config: {enabled: false}`: gone, with its edges.
    assert!(
        !manifest
            .exposures
            .contains_key("exposure.features.retired_app")
    );
    assert!(
        !manifest
            .child_map
            .values()
            .flatten()
            .any(|c| c.contains("retired_app"))
    );
    let json = manifest.to_json();
    assert_eq!(
        json["exposures"]["exposure.features.ml_scores"]["fqn"],
        serde_json::json!(["features", "marts", "ml_scores"])
    );
}

/// Broken exposures: each error names the properties file, the line of the
/// entry at fault and what is wrong with it.
#[test]
fn broken_exposures_name_file_line_and_text() {
    let cases: [(&str, usize, &str); 9] = [
        (
            "depends_on: [ref('nope')]",
            8,
            "`nope`, which was not found",
        ),
        ("depends_on: [\"source('app', 'nope')\"]", 8, "`app.nope`"),
        // Rendered as dbt renders an exposure's values, where `ref` is not defined.
        ("depends_on: [\"{{ ref('orders') }}\"]", 8, "ref is unknown"),
        (
            "depends_on: [orders]",
            8,
            "`orders` is not a ref() or source() call",
        ),
        ("depends_on: ref('orders')", 8, "must be a list"),
        ("depends_on: [[ref('orders')]]", 8, "must be a string"),
        ("maturity: huge", 8, "unknown maturity `huge`"),
        ("type: dashbord", 8, "unknown type `dashbord`"),
        (
            "owner: Finance",
            8,
            "`owner:` of exposure `revenue` must be a mapping",
        ),
    ];
    for (i, (line, at, message)) in cases.iter().enumerate() {
        // The broken key is line 8, in place of the valid one when it repeats it.
        let key = line.split(':').next().unwrap();
        let valid = |k: &str, text: &str| {
            if k == key {
                "    # replaced".to_string()
            } else {
                format!("    {text}")
            }
        };
        let text = format!(
            "version: 2\n\nexposures:\n  - name: revenue\n{}\n{}\n    description: x\n    {line}\n",
            valid("type", "type: dashboard"),
            valid("owner", "owner: {name: Finance}"),
        );
        let (err, _) = temp_project_error(
            &format!("exposure_{i}"),
            &[
                ("dbt_project.yml", "name: broken\nprofile: test\n"),
                ("models/orders.sql", "select 1 as id\n"),
                (
                    "models/sources.yml",
                    "version: 2\nsources:\n  - name: app\n    tables: [{name: events}]\n",
                ),
                ("models/exposures.yml", &text),
            ],
        );
        assert!(err.message().contains(message), "{line}: {err}");
        assert!(
            err.file()
                .is_some_and(|f| f.ends_with("models/exposures.yml")),
            "{line}: {err}"
        );
        assert_eq!(err.line(), Some(*at), "{line}: {err}\n{text}");
    }
}

/// A template that never ends (here a macro recursion that branches, so
/// minijinja's depth limit never trips) stops on Jinja's fuel limit with an
/// error naming the file.
#[test]
fn a_template_that_never_ends_stops_with_an_error_naming_the_file() {
    let (err, _) = temp_project_error(
        "fuel",
        &[
            ("dbt_project.yml", "name: fuel\nprofile: test\n"),
            (
                "macros/fib.sql",
                "{% macro fib(n) %}{% if n < 2 %}1{% else %}{{ fib(n - 1) }}{{ fib(n - 2) }}{% endif %}{% endmacro %}\n",
            ),
            ("models/a.sql", "select '{{ fib(60) }}'\n"),
        ],
    );
    assert_eq!(err.kind(), weir::ErrorKind::Template);
    assert!(err.file().unwrap().ends_with("macros/fib.sql"), "{err}");
    assert_eq!(err.line(), Some(1));
    assert!(err.message().contains("Jinja instructions"), "{err}");
}

/// `modules.re` and `modules.datetime` errors name the model and its line.
#[test]
fn python_module_errors_name_file_and_line() {
    let cases = [
        (
            "select 1\n{{ modules.re.compile('(') }}\n",
            "invalid pattern `(`",
            None,
        ),
        (
            "select 1\n{{ modules.datetime.datetime.strptime('2026-13-01', '%Y-%m-%d') }}\n",
            "month must be in 1..12",
            None,
        ),
        (
            "select 1\n{{ modules.datetime.date(2026, 1, 1).strftime('%Q') }}\n",
            "`%Q`",
            None,
        ),
        (
            "select 1\n{{ modules.datetime.datetime(2026, 1, 1) - modules.datetime.timedelta(days=1) }}\n",
            "unsupported types",
            Some("`a.minus(b)` for `a - b`"),
        ),
        (
            "select 1\n{% set start = run_started_at %}{{ start + start }}\n",
            "unsupported types plain object and plain object",
            Some("`a.plus(b)` for `a + b`"),
        ),
        (
            "select 1\n{{ modules.pytz.timezone('Mars/Olympus') }}\n",
            "unknown time zone 'Mars/Olympus'",
            None,
        ),
    ];
    for (i, (sql, message, hint)) in cases.iter().enumerate() {
        let (err, _) = temp_project_error(
            &format!("modules_{i}"),
            &[
                ("dbt_project.yml", "name: modules\nprofile: test\n"),
                ("models/m.sql", sql),
            ],
        );
        assert!(err.message().contains(message), "{sql}: {err}");
        assert!(err.file().unwrap().ends_with("models/m.sql"), "{err}");
        assert_eq!(err.line(), Some(2), "{err}");
        if let Some(hint) = hint {
            assert!(err.hint().is_some_and(|h| h.contains(hint)), "{err}");
        }
    }
}

/// Date arithmetic, which minijinja cannot spell with `+` and `-`, through
/// weir's `plus` and `minus` methods, in a compiled model.
#[test]
fn datetime_arithmetic_compiles_through_methods() {
    let root = std::env::temp_dir().join(format!("weir_datetime_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("models")).unwrap();
    std::fs::write(root.join("dbt_project.yml"), "name: dates\nprofile: test\n").unwrap();
    let model = "\
{%- set dt = modules.datetime -%}
{%- set start = dt.datetime(2024, 1, 31, 23, 30) -%}
select
    '{{ start.plus(dt.timedelta(hours=1)) }}' as next_month,
    '{{ dt.date(2024, 3, 1).minus(dt.timedelta(days=1)) }}' as leap_day,
    '{{ dt.datetime(2024, 3, 1).minus(start) }}' as span,
    {{ dt.datetime(2024, 3, 1).minus(start).total_seconds() }} as span_seconds,
    '{{ run_started_at.minus(dt.timedelta(days=1)) < run_started_at }}' as earlier,
    '{{ modules.pytz.timezone('America/New_York').localize(dt.datetime(2024, 3, 9, 12)).plus(dt.timedelta(days=1)).astimezone(modules.pytz.utc) }}' as noon_next_day_utc
";
    std::fs::write(root.join("models/dates.sql"), model).unwrap();
    let project = Project::load(&root).unwrap();
    let manifest = weir::compile(&project, &target("dev"), &Map::new()).unwrap();
    let _ = std::fs::remove_dir_all(&root);
    let sql = &manifest.nodes["model.dates.dates"].compiled_code;
    for expected in [
        "'2024-02-01 00:30:00' as next_month",
        "'2024-02-29' as leap_day",
        "'29 days, 0:30:00' as span",
        "2507400.0 as span_seconds",
        "'True' as earlier",
        "'2024-03-10 17:00:00+00:00' as noon_next_day_utc",
    ] {
        assert!(sql.contains(expected), "{expected} not in:\n{sql}");
    }
}

#[test]
fn dispatch_search_orders_pick_the_shim_package() {
    let manifest = compile("tests/fixtures/packages", "dev").unwrap();
    let sql = &manifest.nodes["model.packages.labels"].compiled_code;
    // weir_shims' postgres__as_text and default__day_label win over
    // weir_utils' own; the root project's override of surrogate_key stays first.
    assert!(sql.contains("day_number::text as day_text"), "{sql}");
    assert!(sql.contains("'shim day ' || day_number"), "{sql}");
    assert!(sql.contains("md5(concat_ws('|', day_number))"), "{sql}");
}

#[test]
fn a_broken_dispatch_config_names_file_and_line() {
    let cases = [
        ("dispatch: weir_utils\n", 3, "must be a list"),
        // The entry without a namespace, not the `dispatch:` above it.
        (
            "dispatch:\n  - search_order: [a]\n",
            4,
            "no `macro_namespace:`",
        ),
        // The value at fault, not the entry's first line.
        (
            "dispatch:\n  - macro_namespace: weir_utils\n    search_order: weir_utils\n",
            5,
            "for `weir_utils` needs a `search_order:` list",
        ),
    ];
    for (i, (yaml, line, message)) in cases.iter().enumerate() {
        let project = format!("name: d\nprofile: test\n{yaml}");
        let (err, _) =
            temp_project_error(&format!("dispatch_{i}"), &[("dbt_project.yml", &project)]);
        assert!(err.message().contains(message), "{yaml}: {err}");
        assert!(err.file().unwrap().ends_with("dbt_project.yml"));
        assert_eq!(err.line(), Some(*line), "{yaml}: {err}");
    }
}

/// An error about a YAML value names the line of that value, not of the
/// document or of the entry holding it (a template in a value counts its
/// own lines from 1: that used to be the line shown).
#[test]
fn yaml_value_errors_name_the_line_of_the_value() {
    let fixtures = "tests/fixtures/yaml_lines";
    let mut shown = Vec::new();
    for (project, file, line) in [
        ("source_jinja", "models/sources.yml", 4),
        ("column_test", "models/schema.yml", 8),
        ("project_vars", "dbt_project.yml", 5),
    ] {
        let root = format!("{fixtures}/{project}");
        let err = match Project::load(Path::new(&root)) {
            Ok(project) => compile_project(&project).unwrap_err(),
            Err(err) => err,
        };
        assert!(err.file().unwrap().ends_with(file), "{project}: {err}");
        assert_eq!(err.line(), Some(line), "{project}: {err}");
        shown.push(err.to_string());
    }
    let err = weir::load_target(
        Some(Path::new(&format!("{fixtures}/profiles"))),
        Path::new("."),
        "test",
        Some("prod"),
    )
    .unwrap_err();
    assert_eq!(err.line(), Some(10), "{err}");
    shown.push(err.to_string());
    insta::assert_snapshot!(shown.join("\n\n"));
}

fn compile_project(project: &Project) -> weir::Result<Manifest> {
    weir::compile(project, &target("dev"), &Map::new())
}

/// Anchors, merge keys and YAML 1.1 booleans mean what they mean to dbt.
#[test]
fn yaml_anchors_merge_keys_and_booleans_read_as_dbt_reads_them() {
    let manifest = compile("tests/fixtures/yaml_anchors", "dev").unwrap();
    let orders = &manifest.nodes["model.yaml_anchors.orders"];
    // `+enabled: yes` is true; `flag: on` is true and `'on'` is text.
    assert_eq!(orders.config["enabled"], true);
    assert_eq!(
        orders.compiled_code.trim(),
        "select 1 as id, 'us' as region, 'EUR' as currency,\n  1 as flag, 'on' as quoted"
    );
    // The merged column keeps the anchor's description and overrides its tests.
    let customers = &manifest.nodes["model.yaml_anchors.customers"];
    assert_eq!(customers.columns[0].name, "id");
    assert_eq!(customers.columns[0].description, "The ID.");
    let tests: Vec<&str> = manifest
        .nodes
        .keys()
        .filter(|id| id.starts_with("test."))
        .map(String::as_str)
        .collect();
    assert!(
        tests
            .iter()
            .any(|t| t.starts_with("test.yaml_anchors.unique_customers_id.")),
        "{tests:?}"
    );
    assert!(
        tests
            .iter()
            .any(|t| t.starts_with("test.yaml_anchors.not_null_orders_id.")),
        "{tests:?}"
    );
    assert!(
        !tests.iter().any(|t| t.contains("not_null_customers_id")),
        "{tests:?}"
    );
}

/// Errors that used to name no line: each names the file, the line and
/// shows the offending text.
#[test]
fn yaml_entry_errors_name_file_line_and_text() {
    let models = "version: 2\nmodels:\n  - name: a\n";
    let cases: [(&str, &str, &str); 9] = [
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: a\n  - description: no name\n",
            "",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: a\n  - name: [b, c]\n",
            "",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: a\n  - 5\n",
            "",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: a\n    config: [x]\n",
            "",
        ),
        (
            "models/schema.yml",
            "version: 2\nsources:\n  - name: app\n    tables:\n      - name: t\n      - identifier: u\n",
            "",
        ),
        (
            "models/schema.yml",
            "version: 2\nsources:\n  - name: app\n    tags: {a: 1}\n",
            "",
        ),
        ("dbt_project.yml", models, "seeds: [1]\n"),
        (
            "dbt_project.yml",
            models,
            "models:\n  p:\n    +retries: many\n",
        ),
        ("models/a.sql", models, "{{ config(retries='x') }}\n"),
    ];
    let mut shown = Vec::new();
    for (i, (file, yaml, extra)) in cases.iter().enumerate() {
        let mut project = "name: p\nprofile: test\n".to_string();
        let mut sql = "select 1 as id\n".to_string();
        match *file {
            "dbt_project.yml" => project.push_str(extra),
            "models/a.sql" => sql = format!("{extra}{sql}"),
            _ => {}
        }
        let (err, text) = temp_project_error(
            &format!("lines_{i}"),
            &[
                ("dbt_project.yml", &project),
                ("models/a.sql", &sql),
                ("models/schema.yml", yaml),
            ],
        );
        assert!(err.file().unwrap().ends_with(file), "{err}");
        assert!(err.line().is_some(), "{err}");
        shown.push(text);
    }
    insta::assert_snapshot!(shown.join("\n\n"));
}

/// A template that reads `graph` is rendered again once every node is
/// known: it sees the other models, their configs and edges, the sources
/// and the exposures (the first pass sees an empty graph).
#[test]
fn templates_that_read_graph_see_the_whole_project() {
    let manifest = compile("tests/fixtures/features", "dev").unwrap();
    let sql = &manifest.nodes["model.features.graph_summary"].compiled_code;
    assert!(
        sql.contains("'daily_events:table' as nightly_models"),
        "{sql}"
    );
    assert!(
        sql.contains("'model.features.users,source.features.app.events' as upstream"),
        "{sql}"
    );
    assert!(sql.contains("5 as source_count"), "{sql}");
    assert!(
        sql.contains("churn_notebook,marts_report,mixed,ml_scores,weekly_dashboard"),
        "{sql}"
    );
}

/// At run time too (a model rendered again for is_incremental(), a hook):
/// `graph` is the whole project.
#[test]
fn run_time_renders_see_the_whole_graph() {
    let project = Project::load(Path::new("tests/fixtures/features")).unwrap();
    let manifest = weir::compile(&project, &target("dev"), &Map::new()).unwrap();
    let compiled = weir::Compiled {
        project,
        target: target("dev"),
        manifest,
        cli_vars: Map::new(),
    };
    let renderer = weir::RunRenderer::new(&compiled).unwrap();
    let sql = renderer
        .render_node("model.features.graph_summary", false)
        .unwrap();
    assert_eq!(
        sql,
        compiled.manifest.nodes["model.features.graph_summary"].compiled_code
    );
    let hook = renderer
        .render_project_hook("select {{ graph.exposures | length }}", None)
        .unwrap();
    assert_eq!(hook, "select 5");
}

/// Versioned models as dbt 1.11 builds them (checked against dbt by the
/// parity tests): a node per version, named and configured per version,
/// and `ref` with and without `v=`.
#[test]
fn versioned_models_are_a_node_per_version() {
    let manifest = compile("tests/fixtures/versions", "dev").unwrap();
    insta::assert_snapshot!(compiled_sql(&manifest));
    let ids: Vec<&str> = manifest
        .nodes
        .keys()
        .map(String::as_str)
        .filter(|id| id.starts_with("model."))
        .collect();
    assert_eq!(
        ids,
        [
            "model.versions.customer_report",
            "model.versions.dim_customers.v1",
            "model.versions.dim_customers.v2",
            "model.versions.dim_customers.v3",
            "model.versions.fct_orders.v1",
            "model.versions.fct_orders.v2",
            "model.versions.order_report",
            "model.versions.stg_customers",
        ],
        "the version files are no models of their own"
    );
    let v1 = &manifest.nodes["model.versions.dim_customers.v1"];
    assert_eq!(v1.name, "dim_customers");
    assert_eq!(v1.fqn, ["versions", "marts", "dim_customers", "v1"]);
    assert_eq!(
        v1.relation.identifier, "customers_legacy",
        "the version's alias"
    );
    assert_eq!(v1.config["materialized"], "table", "the model's config");
    // The file's own config path still applies: dbt configures the file first.
    assert_eq!(v1.tags, ["file_name", "dim"]);
    assert_eq!(v1.description, "Customers, one row each.");
    let columns: Vec<&str> = v1.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["id", "name"], "include: all, exclude: [email]");
    let v3 = &manifest.nodes["model.versions.dim_customers.v3"];
    assert_eq!(v3.relation.identifier, "dim_customers_v3");
    assert_eq!(v3.original_file_path, "models/marts/customers_next.sql");
    assert_eq!(v3.config["materialized"], "view");
    assert_eq!(v3.version.as_deref(), Some(&serde_json::json!(3)));
    assert_eq!(v3.latest_version.as_deref(), Some(&serde_json::json!(2)));
    let latest = &manifest.nodes["model.versions.fct_orders.v2"];
    assert_eq!(latest.original_file_path, "models/marts/fct_orders.sql");
    assert_eq!(latest.relation.identifier, "fct_orders_v2");

    let report = &manifest.nodes["model.versions.customer_report"];
    assert_eq!(
        report.depends_on_nodes,
        [
            "model.versions.dim_customers.v2",
            "model.versions.dim_customers.v1",
            "model.versions.dim_customers.v3"
        ],
        "ref('m') is the latest version; v=1 and version='3' pick theirs"
    );
    assert_eq!(
        serde_json::to_value(&report.refs).unwrap(),
        serde_json::json!([
            {"name": "dim_customers", "package": null, "version": null},
            {"name": "dim_customers", "package": null, "version": 1},
            {"name": "dim_customers", "package": null, "version": "3"},
        ])
    );
    let tests: Vec<&str> = manifest
        .nodes
        .values()
        .filter(|n| {
            n.test
                .as_ref()
                .is_some_and(|t| t.attached_node == v1.unique_id)
        })
        .map(|n| n.unique_id.as_str())
        .collect();
    assert_eq!(
        tests,
        [
            "test.versions.has_rows_dim_customers_v1_.071c3a8764",
            "test.versions.not_null_dim_customers_v1_id.ccb11c9411",
            "test.versions.not_null_dim_customers_v1_name.9634b1668b",
            "test.versions.unique_dim_customers_v1_id.f55d167630",
        ]
    );
    let dashboard = &manifest.exposures["exposure.versions.customer_dashboard"];
    assert_eq!(
        dashboard.depends_on_nodes,
        [
            "model.versions.dim_customers.v2",
            "model.versions.fct_orders.v2",
            "model.versions.customer_report"
        ]
    );
    assert_eq!(
        dashboard.description, "What the customer team reads every Monday.",
        "doc() in an exposure's description"
    );
}

/// Mistakes with versions: each error names the file, the line and the text.
#[test]
fn version_errors_name_file_line_and_text() {
    let model = |versions: &str| {
        format!("version: 2\nmodels:\n  - name: dim\n    columns:\n      - name: id\n{versions}")
    };
    let cases: [(&str, String, &str); 10] = [
        (
            "models/report.sql",
            model("    versions:\n      - v: 1\n      - v: 2\n"),
            "select *\nfrom {{ ref('dim', v=9) }}\n",
        ),
        (
            "models/report.sql",
            model("    versions:\n      - v: 1\n"),
            "select * from {{ ref('report_base', version='2') }}\n",
        ),
        (
            "models/report.sql",
            model("    versions:\n      - v: 1\n"),
            "select * from {{ ref('dim', v=true) }}\n",
        ),
        (
            "models/schema.yml",
            model("    latest_version: 3\n    versions:\n      - v: 1\n      - v: 2\n"),
            "select 1\n",
        ),
        (
            "models/schema.yml",
            model("    versions:\n      - v: 1\n      - v: 1.0\n"),
            "select 1\n",
        ),
        (
            "models/schema.yml",
            model("    versions:\n      - v: 1\n      - defined_in: dim_v2\n"),
            "select 1\n",
        ),
        (
            "models/schema.yml",
            model(
                "    versions:\n      - v: 1\n        columns:\n          - include: [id]\n            exclude: [id]\n",
            ),
            "select 1\n",
        ),
        (
            "models/schema.yml",
            model(
                "    versions:\n      - v: 1\n        columns:\n          - include: all\n          - exclude: [id]\n",
            ),
            "select 1\n",
        ),
        (
            "models/schema.yml",
            model("    versions:\n      - v: [1]\n"),
            "select 1\n",
        ),
        (
            "models/exposures.yml",
            model("    versions:\n      - v: 1\n"),
            "select 1\n",
        ),
    ];
    let mut shown = Vec::new();
    for (i, (file, yaml, report)) in cases.iter().enumerate() {
        let exposures = "version: 2\nexposures:\n  - name: board\n    type: dashboard\n    owner: {name: A}\n    depends_on:\n      - ref('dim', v=4)\n";
        let (err, text) = temp_project_error(
            &format!("versions_{i}"),
            &[
                ("dbt_project.yml", "name: p\nprofile: test\n"),
                ("models/dim_v1.sql", "select 1 as id\n"),
                ("models/report_base.sql", "select 1 as id\n"),
                ("models/report.sql", report),
                ("models/schema.yml", yaml),
                (
                    "models/exposures.yml",
                    if *file == "models/exposures.yml" {
                        exposures
                    } else {
                        "version: 2\n"
                    },
                ),
            ],
        );
        assert!(err.file().unwrap().ends_with(file), "{err}");
        assert!(err.line().is_some(), "{err}");
        shown.push(text);
    }
    insta::assert_snapshot!(shown.join("\n\n"));
}

#[test]
fn tests_of_a_disabled_model_are_disabled_with_it() {
    let root = std::env::temp_dir().join(format!("weir_disabled_tests_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let files = [
        (
            "dbt_project.yml",
            "name: p\nprofile: test\nconfig-version: 2\n",
        ),
        ("models/kept.sql", "select 1 as id"),
        (
            "models/dropped.sql",
            "{{ config(enabled=false) }}\nselect 1 as id",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: kept\n    columns:\n      - name: id\n        data_tests: [unique]\n  - name: dropped\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n",
        ),
    ];
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let project = Project::load(&root).unwrap();
    let manifest = weir::compile(&project, &target("dev"), &Map::new()).unwrap();
    let ids: Vec<&str> = manifest.nodes.keys().map(String::as_str).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], "model.p.kept");
    assert!(ids.iter().all(|id| !id.contains("dropped")), "{ids:?}");
    assert!(
        ids.iter().any(|id| id.starts_with("test.p.unique_kept_id")),
        "{ids:?}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_package_node_and_a_naming_macro_errors_name_their_own_files_and_callers() {
    let package_model = [
        ("dbt_project.yml", "name: root\nprofile: root\n"),
        ("models/m.sql", "select 1 as id\n"),
        (
            "dbt_packages/pkg/dbt_project.yml",
            "name: pkg\nversion: '1.0'\n",
        ),
        (
            "dbt_packages/pkg/models/pkg_model.sql",
            "select 1 as id\n{{ no_such_macro() }}\n",
        ),
    ];
    let (_, shown) = temp_project_error("package_error", &package_model);
    assert!(
        shown.starts_with("dbt_packages/pkg/models/pkg_model.sql:2: "),
        "{shown}"
    );
    let naming = [
        ("dbt_project.yml", "name: root\nprofile: root\n"),
        ("seeds/s.csv", "id\n1\n"),
        (
            "macros/naming.sql",
            "{% macro generate_schema_name(custom_schema_name, node) %}\n\
             {{ node.resource_type ~ helper_that_is_not_there() }}\n{% endmacro %}\n",
        ),
    ];
    let (_, shown) = temp_project_error("naming_error", &naming);
    assert!(shown.starts_with("macros/naming.sql:2: "), "{shown}");
    assert!(
        shown.contains(
            "in macro generate_schema_name (macros/naming.sql:2), called for seed s (seeds/s.csv)"
        ),
        "{shown}"
    );
}

#[test]
fn a_node_that_renders_only_as_dbt_parses_it_stays_in_the_manifest() {
    let root = std::env::temp_dir().join(format!("weir_render_error_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let files = [
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        ("models/a.sql", "select 1 as id\n"),
        (
            "models/broken.sql",
            "select * from {{ ref('a') }}\n\
             {% if execute %}{{ exceptions.raise_compiler_error('only at run time') }}{% endif %}\n",
        ),
        ("models/below.sql", "select * from {{ ref('broken') }}\n"),
    ];
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let project = Project::load(&root).unwrap();
    let manifest = weir::compile(&project, &target("dev"), &Map::new()).unwrap();
    let broken = &manifest.nodes["model.p.broken"];
    let error = broken
        .render_error
        .as_ref()
        .expect("the render error is kept");
    assert!(
        error.to_string().contains("models/broken.sql:2: "),
        "{error}"
    );
    assert!(error.message().contains("only at run time"), "{error}");
    assert_eq!(broken.depends_on_nodes, vec!["model.p.a"]);
    assert_eq!(manifest.parent_map["model.p.below"], vec!["model.p.broken"]);
    assert!(manifest.nodes["model.p.below"].render_error.is_none());
    assert_eq!(manifest.order.len(), 3);
    assert_eq!(
        manifest.to_json()["nodes"]["model.p.broken"]["compiled"],
        false
    );
    // An error with `execute` false too is dbt's parse error: fatal.
    std::fs::write(
        root.join("models/broken.sql"),
        "select {{ exceptions.raise_compiler_error('at parse time') }}\n",
    )
    .unwrap();
    let project = Project::load(&root).unwrap();
    let err = weir::compile(&project, &target("dev"), &Map::new()).unwrap_err();
    assert!(err.message().contains("at parse time"), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_yaml_snapshot_whose_relation_is_not_a_ref_or_source_names_file_and_line() {
    let (err, _) = temp_project_error(
        "yaml_snapshot_relation",
        &[
            ("dbt_project.yml", "name: broken\nprofile: test\n"),
            ("models/orders.sql", "select 1 as id\n"),
            (
                "snapshots/history.yml",
                "snapshots:\n  - name: orders_history\n    relation: orders\n    config: {unique_key: id, strategy: check, check_cols: all}\n",
            ),
        ],
    );
    assert!(
        err.message()
            .contains("`relation:` of snapshot `orders_history` must be `ref('...')`"),
        "{err}"
    );
    assert!(
        err.file()
            .is_some_and(|f| f.ends_with("snapshots/history.yml")),
        "{err}"
    );
    assert_eq!(err.line(), Some(3), "{err}");
}
