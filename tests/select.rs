//! dbt's selection grammar evaluated on the shop example project.

use std::path::Path;

use weir::manifest::Manifest;
use weir::select::Selection;

fn manifest() -> Manifest {
    let project = weir::project::Project::load(Path::new("dags/dbt/shop")).unwrap();
    let target = weir::profile::Target::embedded_default("shop", Some("dev"));
    weir::compile(&project, &target, &Default::default()).unwrap()
}

/// Selected node names, sorted.
fn names(select: &[&str], exclude: &[&str]) -> Vec<String> {
    let selection = Selection {
        select: select.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
    };
    let manifest = manifest();
    let mut names: Vec<String> = selection
        .resolve(&manifest)
        .unwrap()
        .iter()
        .map(|id| manifest.nodes[id].name.clone())
        .collect();
    names.sort();
    names
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
