//! dbt's selection grammar evaluated on the shop example and the fixtures:
//! every method, graph operator, set operation, indirect selection mode,
//! selectors.yml, and the errors a user sees for a bad selector.

use std::path::{Path, PathBuf};

use weir::{
    IndirectSelection, ListOptions, ListOutput, Manifest, ResourceType, Selection, Selectors, list,
};

fn compile(dir: &str) -> Manifest {
    let project = weir::Project::load(Path::new(dir)).unwrap();
    let target = weir::Target::embedded_default(&project.name, Some("dev"));
    weir::compile(&project, &target, &Default::default()).unwrap()
}

fn manifest() -> Manifest {
    compile("dags/dbt/shop")
}

fn selection(select: &[&str], exclude: &[&str]) -> Selection {
    Selection {
        select: select.iter().map(|s| s.to_string()).collect(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        ..Selection::default()
    }
}

/// Selected model and seed names, sorted.
fn names(select: &[&str], exclude: &[&str]) -> Vec<String> {
    names_in(&manifest(), &selection(select, exclude))
}

fn names_in(manifest: &Manifest, selection: &Selection) -> Vec<String> {
    let mut names: Vec<String> = selection
        .resolve(manifest)
        .unwrap()
        .into_iter()
        .filter(|id| manifest.nodes[id].resource_type != ResourceType::Test)
        .map(|id| manifest.nodes[&id].name.clone())
        .collect();
    names.sort();
    names
}

/// What `ls --output name` prints.
fn ls(manifest: &Manifest, selection: &Selection) -> Vec<String> {
    let options = ListOptions {
        output: ListOutput::Name,
        ..ListOptions::default()
    };
    list(manifest, selection, &options).unwrap()
}

fn error(manifest: &Manifest, selection: &Selection) -> weir::Error {
    selection.resolve(manifest).unwrap_err()
}

#[test]
fn plain_names_and_wildcards() {
    assert_eq!(names(&["orders"], &[]), ["orders"]);
    assert_eq!(
        names(&["stg_*"], &[]),
        ["stg_customers", "stg_orders", "stg_payments"]
    );
    // A folder of the fqn selects everything in it.
    assert_eq!(
        names(&["staging"], &[]),
        ["stg_customers", "stg_orders", "stg_payments"]
    );
    assert_eq!(names(&["shop.marts.*"], &[]), ["customers", "orders"]);
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
    // `+` works on any method.
    assert_eq!(
        names(&["tag:raw+1"], &[]),
        [
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
    // --exclude alone leaves out of everything.
    assert_eq!(
        names(&[], &["tag:staging", "tag:raw"]),
        ["customers", "orders"]
    );
}

#[test]
fn methods() {
    assert_eq!(
        names(&["tag:raw"], &[]),
        ["raw_customers", "raw_orders", "raw_payments"]
    );
    assert_eq!(names(&["path:models/marts"], &[]), ["customers", "orders"]);
    assert_eq!(names(&["models/marts/orders.sql"], &[]), ["orders"]);
    assert_eq!(names(&["file:orders.sql"], &[]), ["orders"]);
    assert_eq!(names(&["orders.sql"], &[]), ["orders"]);
    assert_eq!(names(&["file:raw_*"], &[]).len(), 3);
    assert_eq!(
        names(&["resource_type:seed"], &["raw_orders"]),
        ["raw_customers", "raw_payments"]
    );
    assert_eq!(names(&["fqn:shop.marts.orders"], &[]), ["orders"]);
    assert_eq!(names(&["package:shop"], &[]).len(), 8);
    assert_eq!(names(&["package:this"], &[]).len(), 8);
    assert_eq!(names(&["package:other"], &[]), Vec::<String>::new());
    assert_eq!(
        names(&["config.materialized:table"], &[]),
        ["customers", "orders"]
    );
    assert_eq!(
        names(&["config.schema:marts"], &[]),
        ["customers", "orders"]
    );
    // Lists match a member; nested keys descend; booleans ignore case.
    assert_eq!(names(&["config.tags:marts"], &[]), ["customers", "orders"]);
    assert_eq!(names(&["config.docs.show:True"], &[]).len(), 8);
    assert_eq!(names(&["access:protected"], &[]).len(), 5);
    assert_eq!(names(&["version:none"], &[]).len(), 5);
}

#[test]
fn test_methods() {
    let manifest = manifest();
    let tests = |select: &str| -> Vec<String> {
        let mut names: Vec<String> = selection(&[select], &[])
            .resolve(&manifest)
            .unwrap()
            .into_iter()
            .map(|id| manifest.nodes[&id].name.clone())
            .collect();
        names.sort();
        names
    };
    assert_eq!(tests("test_type:generic").len(), 12);
    assert_eq!(tests("test_type:data").len(), 12);
    assert_eq!(tests("test_type:singular"), Vec::<String>::new());
    assert_eq!(tests("test_type:unit"), Vec::<String>::new());
    assert_eq!(tests("test_name:unique").len(), 5);
    assert_eq!(
        tests("test_name:accepted_*"),
        ["accepted_values_stg_orders_status__placed__shipped__completed__return_pending__returned"]
    );
    assert_eq!(tests("config.severity:error").len(), 12);
}

#[test]
fn sources_are_graph_members() {
    let manifest = compile("tests/fixtures/features");
    let all = Selection::default();
    assert!(ls(&manifest, &all).contains(&"app.users".to_string()));
    let only = |s: &str| ls(&manifest, &selection(&[s], &[]));
    // The sources' own tests come along, as dbt selects tests eagerly.
    assert_eq!(
        only("source:app"),
        [
            "app.events",
            "app.users",
            "source_not_null_app_events_user_id",
            "source_unique_app_users_id"
        ]
    );
    assert_eq!(
        only("source:app.users"),
        ["app.users", "source_unique_app_users_id"]
    );
    assert_eq!(
        only("source:features.app.us*"),
        ["app.users", "source_unique_app_users_id"]
    );
    assert_eq!(
        only("source:app.users+"),
        [
            // The exposures downstream of it, first by unique_id.
            "marts_report",
            "mixed",
            "ml_scores",
            "weekly_dashboard",
            "daily_events",
            "users",
            "users_snapshot",
            "app.users",
            "assert_no_negative_weights",
            "source_unique_app_users_id"
        ]
    );
    assert_eq!(
        only("+users"),
        ["users", "app.users", "source_unique_app_users_id"]
    );
    // A command runs nodes only: sources are never in `resolve`.
    let run = selection(&["source:app+"], &[]).resolve(&manifest).unwrap();
    assert!(run.iter().all(|id| manifest.nodes.contains_key(id)));
    let names: Vec<&str> = run
        .iter()
        .map(|id| manifest.nodes[id].name.as_str())
        .collect();
    for expected in [
        "users",
        "daily_events",
        "base_events",
        "user_counts",
        "source_unique_app_users_id",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.contains('.')),
        "no source in {names:?}"
    );
}

#[test]
fn tests_follow_the_nodes_they_test() {
    let manifest = manifest();
    let tests_of = |selection: &Selection| -> Vec<String> {
        let mut names: Vec<String> = selection
            .resolve(&manifest)
            .unwrap()
            .into_iter()
            .filter(|id| manifest.nodes[id].resource_type == ResourceType::Test)
            .map(|id| manifest.nodes[&id].name.clone())
            .collect();
        names.sort();
        names
    };
    let relationships = "relationships_orders_customer_id__customer_id__ref_customers_";
    let customers = [
        "not_null_customers_customer_id",
        "unique_customers_customer_id",
    ];
    // Eager: a test is selected when any node it tests is; relationships
    // tests two nodes, so selecting either brings it.
    assert_eq!(
        tests_of(&selection(&["customers"], &[])),
        [customers[0], relationships, customers[1]]
    );
    assert_eq!(
        tests_of(&selection(&["customers"], &[relationships])),
        customers
    );
    // Excluding a model excludes its tests too, as in dbt.
    assert_eq!(tests_of(&selection(&["customers"], &["orders"])), customers);
    assert_eq!(tests_of(&selection(&["resource_type:test"], &[])).len(), 12);

    let with = |select: &[&str], mode: IndirectSelection| Selection {
        indirect_selection: mode,
        ..selection(select, &[])
    };
    // Cautious: only when every tested node is selected.
    assert_eq!(
        tests_of(&with(&["customers"], IndirectSelection::Cautious)),
        customers
    );
    assert_eq!(
        tests_of(&with(&["customers orders"], IndirectSelection::Cautious)).len(),
        5
    );
    // Buildable: the selected nodes' ancestors count too.
    assert_eq!(
        tests_of(&with(&["customers"], IndirectSelection::Buildable)),
        [customers[0], relationships, customers[1]]
    );
    // Empty: none.
    assert_eq!(
        tests_of(&with(&["customers"], IndirectSelection::Empty)),
        Vec::<String>::new()
    );
}

/// A copy of the shop project with `selectors` as its selectors.yml.
fn shop_with_selectors(test: &str, selectors: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("weir-select")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("selectors.yml"), selectors).unwrap();
    dir
}

const SELECTORS: &str = "\
selectors:
  - name: marts
    description: The marts.
    definition: 'tag:marts'
  - name: staging_tree
    default: true
    definition:
      method: path
      value: models/staging
      children: true
      children_depth: 1
  - name: combined
    definition:
      union:
        - method: selector
          value: marts
        - intersection:
            - tag: raw
            - 'raw_o*'
        - exclude:
            - customers
  - name: upstream_of_orders
    definition:
      method: fqn
      value: orders
      parents: true
      indirect_selection: empty
";

#[test]
fn selectors_yml() {
    let manifest = manifest();
    let dir = shop_with_selectors("selectors_yml", SELECTORS);
    let named = |name: Option<&str>| Selection {
        selector: name.map(str::to_string),
        selectors: Selectors::load(&dir).unwrap(),
        project_root: Some(PathBuf::from("dags/dbt/shop")),
        ..Selection::default()
    };
    assert_eq!(
        names_in(&manifest, &named(Some("marts"))),
        ["customers", "orders"]
    );
    assert_eq!(
        names_in(&manifest, &named(Some("combined"))),
        ["orders", "raw_orders"]
    );
    let upstream = named(Some("upstream_of_orders"));
    assert_eq!(names_in(&manifest, &upstream).len(), 5);
    assert!(
        upstream
            .resolve(&manifest)
            .unwrap()
            .iter()
            .all(|id| !id.starts_with("test."))
    );
    // No --select: the default selector.
    assert_eq!(
        names_in(&manifest, &named(None)),
        [
            "customers",
            "orders",
            "stg_customers",
            "stg_orders",
            "stg_payments"
        ]
    );
    // --select wins over the default.
    let explicit = Selection {
        select: vec!["orders".into()],
        ..named(None)
    };
    assert_eq!(names_in(&manifest, &explicit), ["orders"]);
    assert_eq!(
        Selectors::load(&dir)
            .unwrap()
            .names()
            .map(|(n, _)| n)
            .collect::<Vec<_>>(),
        ["marts", "staging_tree", "combined", "upstream_of_orders"]
    );
}

#[test]
fn selectors_yml_errors_name_the_file_and_line() {
    let load = |text: &str| {
        let dir = shop_with_selectors("selector_errors", text);
        Selectors::load(&dir).unwrap_err()
    };
    let err =
        load("selectors:\n  - name: a\n    definition:\n      method: colour\n      value: blue\n");
    assert_eq!(err.file().unwrap().file_name().unwrap(), "selectors.yml");
    assert_eq!(err.line(), Some(4), "{err}");
    assert!(err.to_string().contains("`colour`"), "{err}");

    let err = load("selectors:\n  - name: a\n    definition:\n      union: nope\n");
    assert_eq!(err.line(), Some(4), "{err}");

    let err = load("selectors:\n  - name: a\n    definition: x\n  - name: a\n    definition: y\n");
    assert!(
        err.to_string().contains("two selectors are named `a`"),
        "{err}"
    );
    assert_eq!(err.line(), Some(4), "{err}");

    let err = load("selectors: [\n");
    assert!(err.to_string().contains("selectors.yml"), "{err}");

    let dir = shop_with_selectors("missing_selector", SELECTORS);
    let missing = Selection {
        selector: Some("mart".into()),
        ..Selection::for_project(&dir).unwrap()
    };
    let err = error(&manifest(), &missing);
    assert!(
        err.to_string().contains("no selector named `mart`"),
        "{err}"
    );
    assert_eq!(err.hint(), Some("did you mean `marts`?"));
}

#[test]
fn bad_selectors_are_clear_errors() {
    let manifest = manifest();
    let message = |s: &str| error(&manifest, &selection(&[s], &[])).to_string();
    assert_eq!(
        error(&manifest, &selection(&["colour:blue"], &[])).message(),
        "unknown selection method `colour` in `colour:blue`"
    );
    assert!(message("tagg:x").contains("did you mean `tag`?"));
    assert!(message("@orders+").contains("`@orders+`"));
    assert!(message("resource_type:modell").contains("did you mean `model`?"));
    assert!(message("test_type:unitt").contains("`test_type:unitt`"));
    assert!(message("source:a.b.c.d").contains("`source:a.b.c.d`"));
    assert!(message("exposure:a.b.c").contains("`exposure:a.b.c`"));
    assert!(message("state:modified").contains("--state"));
    assert!(message("config:table").contains("`config:table`"));
    assert!(message("orders,,customers").contains("`orders,,customers`"));
    assert!(message("path:/etc").contains("`path:/etc`"));
}

#[test]
fn criteria_matching_nothing_are_named_each() {
    let manifest = manifest();
    let unmatched = |select: &[&str], exclude: &[&str]| {
        selection(select, exclude)
            .unmatched(&manifest, true)
            .unwrap()
    };
    // As dbt: every space-separated part of --select and --exclude on its
    // own; an intersection is one criterion.
    assert_eq!(
        unmatched(
            &["tag:nothing orders", "stg_payments"],
            &["stg_orders,tag:nothing", "customers"]
        ),
        ["tag:nothing", "stg_orders,tag:nothing"]
    );
    // Sources are graph members: selecting one matches.
    let features = compile("tests/fixtures/features");
    assert_eq!(
        selection(&["source:app", "source:nope"], &[])
            .unmatched(&features, true)
            .unwrap(),
        ["source:nope"]
    );
    assert!(unmatched(&["orders"], &[]).is_empty());
    assert!(unmatched(&[], &[]).is_empty());
    // A single criterion is resolved only when the selection matched nothing.
    assert!(
        selection(&["nothing_here"], &[])
            .unmatched(&manifest, true)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        selection(&["nothing_here"], &[])
            .unmatched(&manifest, false)
            .unwrap(),
        ["nothing_here"]
    );
}
