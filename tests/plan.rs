//! What each task waits for, on tests/fixtures/plan_edges: a source with a
//! test, an ephemeral model between two tasks, a relationships test whose
//! two parents meet below, and selections that leave nodes out.

use std::collections::BTreeMap;
use std::path::Path;

use weir::{Manifest, Plan, RetryPolicy, Selection};

fn manifest() -> Manifest {
    let project = weir::Project::load(Path::new("tests/fixtures/plan_edges")).unwrap();
    let target = weir::Target::embedded_default(&project.name, Some("dev"));
    weir::compile(&project, &target, &Default::default()).unwrap()
}

/// Task name -> the names of what it waits for (tests by their short name).
fn upstream(select: &[&str]) -> BTreeMap<String, Vec<String>> {
    let selection = Selection {
        select: select.iter().map(|s| s.to_string()).collect(),
        ..Selection::default()
    };
    let plan = Plan::build(&manifest(), &selection, &RetryPolicy::for_target("dev")).unwrap();
    let short = |id: &str| id.split('.').nth(2).unwrap().to_string();
    plan.tasks
        .iter()
        .map(|task| {
            (
                task.name.clone(),
                task.upstream.iter().map(|u| short(u)).collect(),
            )
        })
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_node_waits_for_its_parents_and_the_nearest_tests_above_it() {
    let plan = upstream(&[]);
    // The source's test gates what reads the source; the ephemeral `inlined`
    // has no task, so `c` waits for `a` and the test of `a` through it.
    assert_eq!(plan["a"], names(&["source_not_null_raw_events_id"]));
    assert_eq!(plan["b"], names(&["source_not_null_raw_events_id"]));
    assert_eq!(plan["c"], names(&["a", "unique_a_id"]));
    // `d` is the first node below both parents of the relationships test.
    assert_eq!(
        plan["d"],
        names(&[
            "b",
            "c",
            "relationships_c_id__id__ref_b_",
            "unique_b_id",
            "unique_c_id"
        ])
    );
    // `e` waits for those tests through `d` only.
    assert_eq!(plan["e"], names(&["d"]));
    assert_eq!(plan["relationships_c_id__id__ref_b_"], names(&["b", "c"]));
    assert_eq!(plan["source_not_null_raw_events_id"], Vec::<String>::new());
    assert!(!plan.contains_key("inlined"));
}

#[test]
fn a_selection_keeps_the_order_of_the_nodes_it_leaves_out() {
    // As dbt's selected graph: `d` reads `a` through `c` and `inlined`, which
    // are not run, so it still waits for `a` and for the test of `a`.
    let plan = upstream(&["a", "d"]);
    assert_eq!(
        plan,
        BTreeMap::from([
            ("a".to_string(), names(&[])),
            ("d".to_string(), names(&["a", "unique_a_id"])),
            ("unique_a_id".to_string(), names(&["a"])),
        ])
    );
}
