//! dbt's selection grammar evaluated on the shop example project.

use std::path::Path;

use weir::manifest::{Manifest, ResourceType};
use weir::select::Selection;

fn manifest() -> Manifest {
    let project = weir::project::Project::load(Path::new("dags/dbt/shop")).unwrap();
    let target = weir::profile::Target::embedded_default("shop", Some("dev"));
    weir::compile(&project, &target, &Default::default()).unwrap()
}

/// Selected model and seed names, sorted.
fn names(select: &[&str], exclude: &[&str]) -> Vec<String> {
    let manifest = manifest();
    let mut names: Vec<String> = selected(&manifest, select, exclude)
        .into_iter()
        .filter(|id| manifest.nodes[id].resource_type != ResourceType::Test)
        .map(|id| manifest.nodes[&id].name.clone())
        .collect();
    names.sort();
    names
}

fn selected(manifest: &Manifest, select: &[&str], exclude: &[&str]) -> Vec<String> {
    let selection = Selection {
        select: select.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
    };
    selection.resolve(manifest).unwrap()
}

#[test]
fn plain_names_and_wildcards() {
    assert_eq!(names(&["orders"], &[]), ["orders"]);
    assert_eq!(
        names(&["stg_*"], &[]),
        ["stg_customers", "stg_orders", "stg_payments"]
    );
}

#[test]
fn graph_operators() {
    assert_eq!(
        names(&["+orders"], &[]),
        [
            "orders",
            "raw_orders",
            "raw_payments",
            "stg_orders",
            "stg_payments"
        ]
    );
    assert_eq!(
        names(&["stg_orders+"], &[]),
        ["customers", "orders", "stg_orders"]
    );
    assert_eq!(
        names(&["1+orders"], &[]),
        ["orders", "stg_orders", "stg_payments"]
    );
    assert_eq!(names(&["raw_orders+1"], &[]), ["raw_orders", "stg_orders"]);
    assert_eq!(
        names(&["@stg_orders"], &[]),
        [
            "customers",
            "orders",
            "raw_customers",
            "raw_orders",
            "raw_payments",
            "stg_customers",
            "stg_orders",
            "stg_payments"
        ]
    );
}

#[test]
fn union_intersection_and_exclude() {
    assert_eq!(names(&["orders customers"], &[]), ["customers", "orders"]);
    assert_eq!(
        names(&["orders", "customers"], &[]),
        ["customers", "orders"]
    );
    assert_eq!(
        names(&["+customers,tag:staging"], &[]),
        ["stg_customers", "stg_orders", "stg_payments"]
    );
    assert_eq!(names(&["tag:marts"], &["customers"]), ["orders"]);
}

#[test]
fn methods() {
    assert_eq!(
        names(&["tag:raw"], &[]),
        ["raw_customers", "raw_orders", "raw_payments"]
    );
    assert_eq!(names(&["path:models/marts"], &[]), ["customers", "orders"]);
    assert_eq!(
        names(&["resource_type:seed"], &["raw_orders"]),
        ["raw_customers", "raw_payments"]
    );
    assert_eq!(names(&["fqn:shop.marts.orders"], &[]), ["orders"]);
}

#[test]
fn unknown_method_is_a_clear_error() {
    let selection = Selection {
        select: vec!["colour:blue".into()],
        exclude: vec![],
    };
    let err = selection.resolve(&manifest()).unwrap_err();
    assert_eq!(
        err.message(),
        "unknown selection method `colour` in `colour:blue`"
    );
}

#[test]
fn tests_follow_the_nodes_they_test() {
    let manifest = manifest();
    let tests_of = |select: &[&str], exclude: &[&str]| -> Vec<String> {
        let mut names: Vec<String> = selected(&manifest, select, exclude)
            .into_iter()
            .filter(|id| manifest.nodes[id].resource_type == ResourceType::Test)
            .map(|id| manifest.nodes[&id].name.clone())
            .collect();
        names.sort();
        names
    };
    // Eager: a test is selected when any node it tests is; relationships
    // tests two nodes, so selecting either brings it.
    assert_eq!(
        tests_of(&["customers"], &[]),
        [
            "not_null_customers_customer_id",
            "relationships_orders_customer_id__customer_id__ref_customers_",
            "unique_customers_customer_id"
        ]
    );
    assert_eq!(
        tests_of(
            &["customers"],
            &["relationships_orders_customer_id__customer_id__ref_customers_"]
        ),
        [
            "not_null_customers_customer_id",
            "unique_customers_customer_id"
        ]
    );
    assert_eq!(tests_of(&["resource_type:test"], &[]).len(), 12);
}
