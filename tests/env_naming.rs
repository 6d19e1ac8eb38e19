//! Schema naming per environment: dbt's default, the prefix convention
//! switched on in dbt_project.yml, a project's own generate_schema_name, and
//! `target.name` in a model, built on a throwaway cluster.

mod support;

use std::path::Path;

use support::cli::{both, weir};
use support::{TestProject, embedded_profiles, relations_in, with_prefix_convention};
use weir::{CompileOptions, Compiled, Manifest};

fn compile(project: &Path, target: &str) -> Manifest {
    Compiled::load(&CompileOptions {
        project_dir: project.to_path_buf(),
        profiles_dir: Some(project.to_path_buf()),
        target: Some(target.into()),
        ..Default::default()
    })
    .unwrap()
    .manifest
}

fn schema_of(manifest: &Manifest, name: &str) -> String {
    manifest
        .nodes
        .values()
        .find(|n| n.name == name)
        .unwrap()
        .relation
        .schema
        .clone()
}

fn prefix_project(test: &str) -> TestProject {
    let project = TestProject::copy_of("shop", test);
    let dbt_project = std::fs::read_to_string(project.root.join("dbt_project.yml")).unwrap();
    project.write("dbt_project.yml", &with_prefix_convention(&dbt_project));
    // An explicit empty suffix: the test may itself run in CI, whose
    // environment would otherwise name the `ci` target's schemas.
    project.write("profiles.yml", &embedded_profiles("schema_suffix: ''"));
    project
}

#[test]
fn the_prefix_convention_names_schemas_per_environment() {
    let project = prefix_project("naming_prefix");
    for (target, staging_schema, marts_schema) in [
        ("prod", "prod_analytics", "prod_marts"),
        ("staging", "staging_analytics", "staging_marts"),
        ("ci", "ci_analytics", "ci_marts"),
    ] {
        let manifest = compile(&project.root, target);
        assert_eq!(schema_of(&manifest, "stg_orders"), staging_schema);
        assert_eq!(schema_of(&manifest, "orders"), marts_schema);
        assert_eq!(schema_of(&manifest, "raw_orders"), staging_schema);
    }

    // A developer's build, as a developer runs it: `<user>_<schema>`.
    let output = weir(&project.root, &["build"], &[("USER", "Alice")]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let compiled = project.compile();
    let mut db = project.connect(&compiled);
    assert_eq!(
        relations_in(&mut db, "alice_marts"),
        ["customers", "orders"]
    );
    assert_eq!(relations_in(&mut db, "alice_analytics").len(), 6);
    assert!(relations_in(&mut db, "analytics_marts").is_empty());
}

#[test]
fn dbt_naming_stays_the_default_and_a_project_override_wins() {
    let project = TestProject::copy_of("shop", "naming_default");
    project.write("profiles.yml", &embedded_profiles(""));
    let manifest = compile(&project.root, "prod");
    assert_eq!(schema_of(&manifest, "orders"), "analytics_marts");
    assert_eq!(schema_of(&manifest, "stg_orders"), "analytics");

    // The project's generate_schema_name wins over the convention...
    let dbt_project = std::fs::read_to_string(project.root.join("dbt_project.yml")).unwrap();
    project.write("dbt_project.yml", &with_prefix_convention(&dbt_project));
    project.write(
        "macros/generate_schema_name.sql",
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n\
         {{ target.name }}__{{ custom_schema_name or 'base' }}\n\
         {%- endmacro %}\n",
    );
    let manifest = compile(&project.root, "prod");
    assert_eq!(schema_of(&manifest, "orders"), "prod__marts");
    // ...but a CI suffix still applies on top of it.
    project.write("profiles.yml", &embedded_profiles("schema_suffix: PR-7"));
    let manifest = compile(&project.root, "ci");
    assert_eq!(schema_of(&manifest, "orders"), "ci__marts_pr_7");
}

#[test]
fn a_bad_setting_names_dbt_project_yml() {
    let project = TestProject::copy_of("shop", "naming_bad");
    let dbt_project = std::fs::read_to_string(project.root.join("dbt_project.yml")).unwrap();
    project.write(
        "dbt_project.yml",
        &dbt_project.replace("vars:\n", "vars:\n  weir:\n    schema_naming: sideways\n"),
    );
    let output = weir(&project.root, &["compile"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        support::cli::stderr(&output)
            .contains("dbt_project.yml: `vars: weir: schema_naming:` must be `dbt` or `prefix`"),
        "{}",
        both(&output)
    );
}

#[test]
fn target_name_decides_environment_specific_logic() {
    // stg_orders keeps only recent orders on dev (see its file).
    let project = TestProject::copy_of("shop", "naming_target_name");
    let dev = compile(&project.root, "dev");
    let prod = compile(&project.root, "prod");
    let sql = |m: &Manifest| m.nodes["model.shop.stg_orders"].compiled_code.clone();
    assert!(sql(&dev).contains("where order_date >="), "{}", sql(&dev));
    assert!(!sql(&prod).contains("where order_date"), "{}", sql(&prod));
}
