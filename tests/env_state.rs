//! Slim CI on the shop project: `state:` selection against prod's artifacts
//! after body, config, macro, var and env_var changes (and none after a
//! change of target alone), `result:` from an earlier run, and `--defer`
//! building a changed model in a CI schema against its parent in prod.

mod support;

use std::path::{Path, PathBuf};

use support::cli::{both, stdout, weir};
use support::{TestProject, embedded_profiles};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

struct Slim {
    project: TestProject,
    state: PathBuf,
}

impl Slim {
    /// The shop project with prod's artifacts saved as the state to compare with.
    fn new(test: &str) -> Slim {
        let project = TestProject::copy_of("shop", test);
        project.write("profiles.yml", &embedded_profiles(""));
        project.write(
            "models/staging/stg_regions.sql",
            "select '{{ env_var('SHOP_REGION', 'eu') }}' as region\n",
        );
        let output = weir(&project.root, &["compile", "--target", "prod"], &[]);
        assert_eq!(output.status.code(), Some(0), "{}", both(&output));
        let state = project.root.join("prod-state");
        copy_dir(&project.root.join("target"), &state);
        Slim { project, state }
    }

    /// The models `ls` selects on `target` with `selector`, by name.
    fn models(&self, target: &str, selector: &str, env: &[(&str, &str)]) -> Vec<String> {
        self.models_with(target, selector, &[], env)
    }

    fn models_with(
        &self,
        target: &str,
        selector: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Vec<String> {
        let state = self.state.to_str().unwrap();
        let mut args = vec![
            "ls",
            "--target",
            target,
            "--state",
            state,
            "--select",
            selector,
            "--output",
            "name",
            "--resource-type",
            "model",
        ];
        args.extend(extra);
        let output = weir(&self.project.root, &args, env);
        assert_eq!(output.status.code(), Some(0), "{}", both(&output));
        let mut names: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
        names.sort();
        names
    }

    fn edit(&self, relative: &str, edit: impl Fn(&str) -> String) {
        let text = std::fs::read_to_string(self.project.root.join(relative)).unwrap();
        self.project.write(relative, &edit(&text));
    }
}

const NONE: [&str; 0] = [];

#[test]
fn nothing_is_modified_when_only_the_target_differs() {
    let slim = Slim::new("state_same");
    // dev compiles stg_orders differently (target.name) and into other schemas.
    for target in ["dev", "ci", "staging", "prod"] {
        assert_eq!(slim.models(target, "state:modified", &[]), NONE, "{target}");
    }
    assert_eq!(slim.models("dev", "state:new", &[]), NONE);
}

#[test]
fn a_body_change_selects_the_model_and_its_descendants() {
    let slim = Slim::new("state_body");
    slim.edit("models/staging/stg_payments.sql", |t| {
        format!("-- reviewed\n{t}")
    });
    assert_eq!(
        slim.models("ci", "state:modified+", &[]),
        ["customers", "orders", "stg_payments"]
    );
    assert_eq!(
        slim.models("ci", "state:modified.body", &[]),
        ["stg_payments"]
    );
    assert_eq!(slim.models("ci", "state:modified.configs", &[]), NONE);
    // A new model is new, and modified.
    slim.project
        .write("models/marts/refunds.sql", "select 1 as id\n");
    assert_eq!(slim.models("ci", "state:new", &[]), ["refunds"]);
    assert_eq!(
        slim.models("ci", "state:modified", &[]),
        ["refunds", "stg_payments"]
    );
}

#[test]
fn a_config_change_selects_the_model_and_its_descendants() {
    let slim = Slim::new("state_configs");
    slim.edit("models/staging/schema.yml", |t| {
        t.replace(
            "  - name: stg_customers\n",
            "  - name: stg_customers\n    config:\n      tags: [pii]\n",
        )
    });
    assert_eq!(
        slim.models("ci", "state:modified+", &[]),
        ["customers", "stg_customers"]
    );
    assert_eq!(
        slim.models("ci", "state:modified.configs", &[]),
        ["stg_customers"]
    );
    assert_eq!(slim.models("ci", "state:modified.body", &[]), NONE);
    assert_eq!(slim.models("ci", "state:modified.relation", &[]), NONE);
    // Moving a model to another custom schema is a relation change.
    slim.edit("models/staging/stg_orders.sql", |t| {
        format!("{{{{ config(schema='orders') }}}}\n{t}")
    });
    assert_eq!(
        slim.models("ci", "state:modified.relation", &[]),
        ["stg_orders"]
    );
}

#[test]
fn a_macro_change_selects_the_models_that_call_it() {
    let slim = Slim::new("state_macros");
    slim.edit("macros/cents_to_dollars.sql", |t| {
        t.replace("scale=2", "scale=4")
    });
    assert_eq!(
        slim.models("ci", "state:modified+", &[]),
        ["customers", "orders", "stg_payments"]
    );
    assert_eq!(
        slim.models("ci", "state:modified.macros", &[]),
        ["stg_payments"]
    );
    assert_eq!(slim.models("ci", "state:modified.body", &[]), NONE);
    // Through another macro, too.
    slim.project.write(
        "macros/money.sql",
        "{% macro money(column_name) -%}{{ cents_to_dollars(column_name) }}{%- endmacro %}\n",
    );
    slim.edit("models/staging/stg_payments.sql", |t| {
        t.replace("cents_to_dollars('amount')", "money('amount')")
    });
    std::fs::remove_dir_all(&slim.state).unwrap();
    let output = weir(&slim.project.root, &["compile", "--target", "prod"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    copy_dir(&slim.project.root.join("target"), &slim.state);
    slim.edit("macros/cents_to_dollars.sql", |t| {
        t.replace("scale=4", "scale=3")
    });
    assert_eq!(
        slim.models("ci", "state:modified.macros", &[]),
        ["stg_payments"]
    );
}

#[test]
fn a_var_or_env_var_change_selects_the_models_that_read_it() {
    let slim = Slim::new("state_vars");
    let vars = ["--vars", "{payment_methods: [credit_card, coupon]}"];
    assert_eq!(
        slim.models_with("ci", "state:modified+", &vars, &[]),
        ["customers", "orders"]
    );
    assert_eq!(
        slim.models_with("ci", "state:modified.vars", &vars, &[]),
        ["orders"]
    );
    // The same values as prod: nothing.
    let same = [
        "--vars",
        "{payment_methods: [credit_card, coupon, bank_transfer, gift_card]}",
    ];
    assert_eq!(slim.models_with("ci", "state:modified", &same, &[]), NONE);
    // An env_var a model reads.
    assert_eq!(
        slim.models("ci", "state:modified", &[("SHOP_REGION", "us")]),
        ["stg_regions"]
    );
    assert_eq!(
        slim.models("ci", "state:modified", &[("SHOP_REGION", "eu")]),
        NONE
    );
}

#[test]
fn result_selects_from_the_last_run() {
    let project = TestProject::copy_of("shop", "state_result");
    project.write(
        "models/marts/broken.sql",
        "select no_such_column from {{ ref('orders') }}\n",
    );
    let output = weir(&project.root, &["build"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let state = project.root.join("last-run");
    copy_dir(&project.root.join("target"), &state);
    let output = weir(
        &project.root,
        &[
            "ls",
            "--state",
            state.to_str().unwrap(),
            "--select",
            "result:error",
            "--output",
            "name",
        ],
        &[],
    );
    assert_eq!(stdout(&output).trim(), "broken", "{}", both(&output));
    let output = weir(&project.root, &["ls", "--select", "result:error"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        support::cli::stderr(&output).contains("pass --state DIR"),
        "{}",
        both(&output)
    );
}

#[test]
fn defer_builds_a_changed_model_in_a_ci_schema_against_prod() {
    let slim = Slim::new("state_defer");
    let root = &slim.project.root;
    let output = weir(root, &["build", "--target", "prod"], &[("CI", "true")]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    // prod's artifacts, now with results, are the state.
    copy_dir(&root.join("target"), &slim.state);

    slim.edit("models/marts/customers.sql", |t| format!("-- pr 1\n{t}"));
    let state = slim.state.to_str().unwrap();
    let output = weir(
        root,
        &[
            "build",
            "--target",
            "ci",
            "--select",
            "state:modified+",
            "--state",
            state,
            "--defer",
        ],
        &[("WEIR_SCHEMA_SUFFIX", "pr_1")],
    );
    let out = both(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(
        out.contains("Deferring orders to \"postgres\".\"analytics_marts\".\"orders\""),
        "{out}"
    );
    assert!(out.contains("PASS=4"), "customers and its 3 tests: {out}");

    let compiled = slim.project.compile();
    let mut db = slim.project.connect(&compiled);
    let count = |db: &mut weir::PostgresAdapter, sql: &str| -> i64 {
        db.client().query_one(sql, &[]).unwrap().get(0)
    };
    assert_eq!(
        count(
            &mut db,
            "select count(*) from analytics_marts_pr_1.customers"
        ),
        10
    );
    assert_eq!(
        count(
            &mut db,
            "select count(*) from pg_tables where schemaname = 'analytics_marts_pr_1'"
        ),
        1,
        "only customers was built in the CI schema"
    );
    // Without --defer, the missing parent fails the CI build.
    let output = weir(
        root,
        &[
            "run",
            "--target",
            "ci",
            "--select",
            "state:modified",
            "--state",
            state,
        ],
        &[("WEIR_SCHEMA_SUFFIX", "pr_2")],
    );
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        both(&output).contains("does not exist"),
        "{}",
        both(&output)
    );
}
