//! dbt's runtime library as weir writes it: the cross-database macros, type
//! helpers, Relation and Column objects, and Jinja as dbt has it (implicit
//! varargs/kwargs, mutable vars, `model.config` seeing `config()`), compiled
//! from the `cross_db` fixture (snapshots; tests/python/test_dbt_parity.py
//! compares the same fixture with dbt-core's compiled SQL).

use std::path::Path;

use serde_json::Map;
use weir::{Manifest, Project, ResourceType, parse_target};

const PROFILES: &str = "
test:
  target: dev
  outputs:
    dev: {type: postgres, schema: dev_alice, threads: 2}
";

/// Compile a throwaway project of `files` (path, text), each in a folder of its own.
fn compile(files: &[(&str, &str)]) -> weir::Result<Manifest> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let root = std::env::temp_dir().join(format!(
        "weir_runtime_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&root);
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let result = compile_dir(&root);
    let _ = std::fs::remove_dir_all(&root);
    result
}

fn compile_dir(root: &Path) -> weir::Result<Manifest> {
    let project = Project::load(root)?;
    let target = parse_target(PROFILES, Path::new("profiles.yml"), "test", Some("dev"))?;
    weir::compile(&project, &target, &Map::new())
}

fn model_sql(manifest: &Manifest) -> String {
    let mut out = String::new();
    for node in manifest.nodes.values() {
        if node.resource_type == ResourceType::Model {
            out.push_str(&format!(
                "-- {}\n{}\n\n",
                node.unique_id,
                node.compiled_code.trim_end()
            ));
        }
    }
    out
}

#[test]
fn cross_database_macros_compile_as_dbt_postgres_compiles_them() {
    let manifest = compile_dir(Path::new("tests/fixtures/cross_db")).unwrap();
    insta::assert_snapshot!(model_sql(&manifest));
    let relations = &manifest.nodes["model.cross_db.relations"];
    assert!(
        relations
            .depends_on_macros
            .contains(&"macro.dbt.make_intermediate_relation".to_string()),
        "{:?}",
        relations.depends_on_macros
    );
}

#[test]
fn a_project_override_wins_dispatch_in_the_dbt_namespace() {
    let manifest = compile(&[
        ("dbt_project.yml", "name: p\nprofile: test\n"),
        (
            "macros/m.sql",
            "{% macro default__type_string() %}{{ return('varchar') }}{% endmacro %}",
        ),
        (
            "models/a.sql",
            "select {{ dbt.type_string() }}, {{ type_string() }}, {{ dbt.any_value('x') }}",
        ),
    ])
    .unwrap();
    assert_eq!(
        manifest.nodes["model.p.a"].compiled_code,
        "select varchar, varchar, min(x)"
    );
}

#[test]
fn an_unsupported_datepart_names_the_model() {
    let err = compile(&[
        ("dbt_project.yml", "name: p\nprofile: test\n"),
        (
            "models/a.sql",
            "select\n{{ dbt.datediff('a', 'b', 'fortnight') }}",
        ),
    ])
    .unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("Unsupported datepart for macro datediff in postgres: fortnight"),
        "{shown}"
    );
    assert!(shown.contains("cross_db.sql"), "{shown}");
}

#[test]
fn relations_from_ref_and_this_keep_their_rendering_and_ephemerals_stay_ctes() {
    let manifest = compile(&[
        ("dbt_project.yml", "name: p\nprofile: test\n"),
        ("models/e.sql", "{{ config(materialized='ephemeral') }}select 1 as x"),
        (
            "models/a.sql",
            "select '{{ ref('e').is_cte }}' as cte, '{{ ref('e').name }}' as name from {{ ref('e') }} \
             cross join {{ this.incorporate(path={'identifier': 'b'}).include(database=false) }}",
        ),
    ])
    .unwrap();
    let sql = &manifest.nodes["model.p.a"].compiled_code;
    assert!(
        sql.contains("select 'True' as cte, '__dbt__cte__e' as name from __dbt__cte__e cross join \"dev_alice\".\"b\""),
        "{sql}"
    );
}

#[test]
fn a_project_naming_override_can_call_dbts_default_and_templates_can_call_the_naming_macros() {
    let manifest = compile(&[
        ("dbt_project.yml", "name: p\nprofile: test\n"),
        (
            "macros/naming.sql",
            "{% macro generate_schema_name(custom_schema_name, node) -%}\
             {{ default__generate_schema_name(custom_schema_name, node) }}_x\
             {%- endmacro %}",
        ),
        (
            "models/a.sql",
            "{{ config(schema='marts') }}select '{{ generate_database_name(none, model) }}' as db, \
             '{{ generate_alias_name('other', model) }}' as alias",
        ),
    ])
    .unwrap();
    let node = &manifest.nodes["model.p.a"];
    assert_eq!(node.relation.schema, "dev_alice_marts_x");
    assert_eq!(
        node.compiled_code,
        "select 'postgres' as db, 'other' as alias"
    );
}

/// As dbt parses (`execute` false) a query runs nothing, so the project
/// loads and lists the node; compiling it fails that node alone, clearly.
#[test]
fn what_needs_the_database_while_rendering_fails_its_node_clearly() {
    for call in [
        "{% set cols = adapter.get_columns_in_relation(ref('a')) %}{{ cols | length }}",
        "{% set result = run_query('select 1') %}",
        "{% call statement('x', fetch_result=True) %}select 1{% endcall %}\
         {% set rows = load_result('x') %}{{ rows is none }}",
        "{% if adapter.get_relation(this.database, this.schema, 'a') is none %}x{% endif %}",
        "{% if load_relation(ref('a')) is none %}x{% endif %}",
    ] {
        let manifest = compile(&[
            ("dbt_project.yml", "name: p\nprofile: test\n"),
            ("models/a.sql", "select 1 as x"),
            ("models/b.sql", call),
        ])
        .unwrap_or_else(|e| panic!("{call}: the project must load: {e}"));
        let b = &manifest.nodes["model.p.b"];
        let shown = b
            .render_error
            .as_ref()
            .unwrap_or_else(|| panic!("{call}: b must fail to compile"))
            .to_string();
        assert!(
            shown.contains("asks the database while rendering"),
            "{call}: {shown}"
        );
        assert!(shown.contains("models/b.sql"), "{call}: {shown}");
        assert!(manifest.nodes["model.p.a"].render_error.is_none());
    }
}
