//! A project loaded as dbt loads it (tests/fixtures/loading): YAML values
//! rendered where dbt renders them, generic tests in tests/generic, unit-test
//! fixtures that are not tests, disabled nodes, and `quoting:`; and the
//! errors of values that cannot be rendered, each naming its file and line.

use std::path::Path;

use serde_json::{Map, json};
use weir::{Manifest, Project, Target, parse_target};

const PROFILES: &str = "
test:
  target: dev
  outputs:
    dev: {type: postgres, schema: dev_alice, threads: 2}
    ci: {type: postgres, schema: ci_run, threads: 2}
";

fn target(name: &str) -> Target {
    parse_target(PROFILES, Path::new("profiles.yml"), "test", Some(name)).unwrap()
}

fn compile(target_name: &str) -> Manifest {
    let project = Project::load(Path::new("tests/fixtures/loading")).unwrap();
    // The ci_only model reads a var that only ci runs are given.
    let mut vars = Map::new();
    if target_name == "ci" {
        vars.insert("ci_only_var".into(), json!(1));
    }
    weir::compile(&project, &target(target_name), &vars).unwrap()
}

#[test]
fn yaml_values_are_rendered_for_the_target() {
    let dev = compile("dev");
    let source = &dev.sources["source.loading.raw.orders"];
    // The source's schema and identifier are Jinja; its `quoting:` leaves
    // the database bare and the table quoted, the project's leaves
    // identifiers bare.
    assert_eq!(
        source.relation.to_string(),
        "postgres.\"dev_alice_raw\".\"orders_north\""
    );
    let region = &dev.nodes["model.loading.dim_region.v1"];
    assert_eq!(region.relation.identifier, "region_north");
    assert_eq!(
        dev.nodes["model.loading.stg_orders"].relation.to_string(),
        "\"postgres\".\"dev_alice\".stg_orders"
    );
    let staging = &dev.nodes["model.loading.stg_payments"];
    assert_eq!(staging.config["materialized"], json!("view"));
    assert_eq!(staging.config["tags"], json!(["dev_tag"]));
    let seed = &dev.nodes["seed.loading.payments"];
    assert_eq!(
        seed.config["column_types"],
        json!({"amount": "numeric(10, 2)"})
    );
    let not_null = &dev.nodes["test.loading.source_not_null_raw_orders_id.f232a64478"];
    assert_eq!(not_null.config["severity"], json!("warn"));
    // Descriptions are rendered with the docs, not as YAML values.
    assert_eq!(source.description, "");
    // The unique test is enabled everywhere but dev; the ci_only folder only on ci.
    let unique = |m: &Manifest| m.nodes.keys().any(|id| id.contains("unique_stg_orders_id"));
    let ci_only = |m: &Manifest| m.nodes.contains_key("model.loading.only_in_ci");
    assert!(!unique(&dev) && !ci_only(&dev));
    let ci = compile("ci");
    assert!(unique(&ci) && ci_only(&ci));
    assert_eq!(
        ci.nodes["model.loading.stg_payments"].config["materialized"],
        json!("table")
    );
    assert_eq!(
        ci.nodes["test.loading.source_not_null_raw_orders_id.f232a64478"].config["severity"],
        json!("error")
    );
}

#[test]
fn test_paths_hold_generic_tests_fixtures_and_singular_tests() {
    let dev = compile("dev");
    let tests: Vec<&str> = dev
        .nodes
        .values()
        .filter(|n| n.resource_type == weir::ResourceType::Test)
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(
        tests,
        [
            "is_even_stg_orders_id",
            "no_negative_amounts",
            "not_null_orders_history_id",
            "source_not_null_raw_orders_id"
        ]
    );
}

#[test]
fn a_snapshot_defined_in_yaml_selects_its_relation_and_yaml_in_every_resource_folder_is_read() {
    let dev = compile("dev");
    let snapshot = &dev.nodes["snapshot.loading.orders_history"];
    assert_eq!(snapshot.raw_code, "select * from {{ ref('stg_orders') }}");
    assert_eq!(snapshot.path, "orders_history.yml/orders_history.sql");
    assert_eq!(snapshot.original_file_path, "snapshots/orders_history.yml");
    assert_eq!(snapshot.fqn, ["loading", "orders_history"]);
    assert_eq!(snapshot.depends_on_nodes, ["model.loading.stg_orders"]);
    assert_eq!(snapshot.config["strategy"], json!("check"));
    assert_eq!(snapshot.description, "Every version of every order.");
    // analyses/analyses.yml describes the analysis.
    assert_eq!(
        dev.nodes["analysis.loading.quoted_group"].description,
        "Amounts under a quoted column name."
    );
}

#[test]
fn a_node_disabled_in_its_sql_may_fail_to_render() {
    let dev = compile("dev");
    assert!(!dev.nodes.contains_key("model.loading.disabled_in_sql"));
    // Kept in the manifest's `disabled`, as dbt keeps them.
    let disabled: Vec<&str> = dev.disabled.keys().map(String::as_str).collect();
    assert_eq!(
        disabled,
        [
            "model.loading.disabled_in_sql",
            "model.loading.only_in_ci",
            "test.loading.unique_stg_orders_id.beb6e97f2f"
        ]
    );
}

/// Compile a throwaway project of `files` for dev; its error, with the
/// project's folder left out.
fn error_of(name: &str, files: &[(&str, &str)]) -> (weir::Error, String) {
    let root = std::env::temp_dir().join(format!("weir_loading_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut files = files.to_vec();
    files.push(("dbt_project.yml", "name: p\nprofile: test\n"));
    for (path, text) in &files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if !path.exists() {
            std::fs::write(path, text).unwrap();
        }
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

#[test]
fn a_source_value_that_cannot_render_names_its_line() {
    let (err, shown) = error_of(
        "source",
        &[
            ("models/m.sql", "select 1"),
            (
                "models/sources.yml",
                "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: t\n    \
                 schema: \"{{ var('nowhere') }}\"\n",
            ),
        ],
    );
    assert_eq!(err.line(), Some(6), "{shown}");
    assert!(shown.starts_with("models/sources.yml:6:"), "{shown}");
    assert!(shown.contains("nowhere"), "{shown}");
}

#[test]
fn a_project_config_that_cannot_render_names_its_line() {
    let (err, shown) = error_of(
        "project",
        &[
            ("models/m.sql", "select 1"),
            (
                "dbt_project.yml",
                "name: p\nprofile: test\nmodels:\n  p:\n    +enabled: \"{{ target.name | as_bool }}\"\n",
            ),
        ],
    );
    assert_eq!(err.line(), Some(5), "{shown}");
    assert!(shown.contains("into type 'bool'"), "{shown}");
}

#[test]
fn a_test_config_that_cannot_render_names_the_test() {
    let (err, shown) = error_of(
        "test_config",
        &[
            ("models/m.sql", "select 1 as id"),
            (
                "models/schema.yml",
                "version: 2\nmodels:\n  - name: m\n    columns:\n      - name: id\n        \
                 data_tests:\n          - unique:\n              config:\n                \
                 severity: \"{{ env_var('WEIR_TEST_UNSET_SEVERITY') }}\"\n",
            ),
        ],
    );
    assert_eq!(err.line(), Some(7), "{shown}");
    assert!(shown.contains("WEIR_TEST_UNSET_SEVERITY"), "{shown}");
}

#[test]
fn quoting_must_be_true_or_false() {
    let (err, shown) = error_of(
        "quoting",
        &[
            ("models/m.sql", "select 1"),
            (
                "dbt_project.yml",
                "name: p\nprofile: test\nquoting:\n  identifier: sometimes\n",
            ),
        ],
    );
    assert_eq!(err.line(), Some(4), "{shown}");
    assert!(shown.contains("true or false"), "{shown}");
}
