//! The reliability review's attacks on the write-guard, secrets, resource
//! bounds and hostile input (issue 12, items 4-6, 8-11, and the ones that
//! held: YAML bombs, names with quotes and semicolons, seed garbage, a
//! million-row seed), each reproduced and checked to hold: a clear error
//! naming the file and line, nothing sent to the database, no crash, no hang.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::cli::{both, stderr, weir};
use support::{TestProject, embedded_profiles};
use weir::LocalCluster;

/// A copy of the shop project whose models are built by `macros/` verbatim:
/// a custom schema is the schema itself, on every target (a common override).
fn verbatim_schemas(test_name: &str) -> TestProject {
    let project = TestProject::copy_of("shop", test_name);
    project.write("profiles.yml", &embedded_profiles(""));
    project.write(
        "macros/generate_schema_name.sql",
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n\
         {%- if custom_schema_name is none -%}{{ target.schema }}_{{ target.name }}\n\
         {%- else -%}{{ custom_schema_name | trim }}{%- endif -%}\n\
         {%- endmacro %}\n",
    );
    project
}

const RAW_SOURCES: &str = "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: customers\n      - name: orders\n";

/// The error every refused run ends with, and no cluster started for it.
fn refused_before_any_sql(project: &TestProject, output: &Output) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{}", both(output));
    assert!(err.contains("Nothing was sent to the database"), "{err}");
    assert_eq!(LocalCluster::status(&project.root).unwrap(), None);
    err
}

#[test]
fn a_dev_snapshot_into_prods_snapshot_schema_fails_before_any_sql() {
    let project = TestProject::copy_of("shop", "rel_guard_snapshot");
    project.write("profiles.yml", &embedded_profiles(""));
    // dbt's legacy `target_schema` names one schema on every target.
    project.write(
        "snapshots/orders_snapshot.sql",
        "{% snapshot orders_snapshot %}\n\
         {{ config(target_schema='snapshots', unique_key='order_id', strategy='check', check_cols='all') }}\n\
         select * from {{ ref('stg_orders') }}\n{% endsnapshot %}\n",
    );
    let output = weir(&project.root, &["snapshot"], &[]);
    let err = refused_before_any_sql(&project, &output);
    assert!(
        err.contains(
            "snapshots/orders_snapshot.sql: `orders_snapshot` would write \
             \"postgres\".\"snapshots\".\"orders_snapshot\", but schema `snapshots` belongs to \
             protected target `prod`"
        ),
        "{err}"
    );
    assert!(err.contains("configure `schema` instead"), "{err}");
}

#[test]
fn a_model_writing_into_a_source_schema_fails_on_every_target() {
    let project = verbatim_schemas("rel_guard_source");
    project.write("models/sources.yml", RAW_SOURCES);
    let orders = std::fs::read_to_string(project.root.join("models/marts/orders.sql")).unwrap();
    project.write(
        "models/marts/orders.sql",
        &format!("{{{{ config(schema='raw') }}}}\n{orders}"),
    );
    for (target, env) in [("dev", vec![]), ("prod", vec![("CI", "true")])] {
        let output = weir(&project.root, &["build", "--target", target], &env);
        let err = refused_before_any_sql(&project, &output);
        assert!(
            err.contains(
                "models/marts/orders.sql:1: `orders` would write \"postgres\".\"raw\".\"orders\", \
                 but it is source `raw.orders` itself (declared in models/sources.yml:6)"
            ),
            "{target}: {err}"
        );
    }
    // Into the source's schema, not over a source's relation: refused too.
    let customers =
        std::fs::read_to_string(project.root.join("models/marts/customers.sql")).unwrap();
    project.write("models/marts/orders.sql", &orders);
    project.write(
        "models/marts/customers.sql",
        &format!("{{{{ config(schema='raw', alias='customers_clean') }}}}\n{customers}"),
    );
    let output = weir(&project.root, &["run", "-s", "customers"], &[]);
    let err = refused_before_any_sql(&project, &output);
    assert!(
        err.contains(
            "but schema `raw` holds source `raw.customers` (declared in models/sources.yml:5)"
        ),
        "{err}"
    );
}

#[test]
fn sources_the_project_loads_itself_in_its_own_schema_build() {
    // The seeds-as-sources layout: the sources live in the target's own
    // schema (dev's, `dev_$USER`), where its seeds load them.
    let project = TestProject::copy_of("shop", "rel_guard_own_sources");
    project.write(
        "models/sources.yml",
        "version: 2\nsources:\n  - name: shop_raw\n    schema: dev_alice\n    tables:\n      - name: raw_orders\n",
    );
    project.write(
        "models/staging/orders_from_source.sql",
        "select * from {{ source('shop_raw', 'raw_orders') }}\n",
    );
    // The seed writes the source's very relation, the model reads it.
    for command in ["seed", "build"] {
        let output = weir(&project.root, &[command], &[]);
        assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    }
}

#[test]
fn grants_make_source_schemas_read_only_for_developers() {
    let project = TestProject::copy_of("shop", "rel_guard_grants");
    let root = &project.root;
    // The embedded cluster is reached through its owner-only socket.
    let cluster = LocalCluster::ensure_running(root).unwrap();
    let (host, port) = (cluster.socket_dir().display().to_string(), cluster.port());
    let target = |name: &str, user: &str, schema: &str| {
        format!(
            "    {name}:\n      type: postgres\n      host: {host}\n      port: {port}\n      \
             user: {user}\n      dbname: postgres\n      schema: {schema}\n      threads: 2\n"
        )
    };
    project.write(
        "profiles.yml",
        &format!(
            "shop:\n  target: dev\n  outputs:\n{}{}{}",
            target("admin", "postgres", "admin"),
            target("dev", "alice", "alice_dev"),
            target("prod", "shop_prod", "analytics"),
        ),
    );
    project.write("models/sources.yml", RAW_SOURCES);
    let dbt_project = std::fs::read_to_string(root.join("dbt_project.yml")).unwrap();
    project.write(
        "dbt_project.yml",
        &dbt_project.replace(
            "vars:\n",
            "vars:\n  weir:\n    grants:\n      developers: [alice]\n",
        ),
    );
    let connect = |name: &str| {
        let text = std::fs::read_to_string(root.join("profiles.yml")).unwrap();
        let target =
            weir::parse_target(&text, &root.join("profiles.yml"), "shop", Some(name)).unwrap();
        weir::connect(&target, root).unwrap()
    };
    // The loader's data, there before weir.
    connect("admin")
        .client()
        .batch_execute(
            "create schema raw; create table raw.orders (id int); insert into raw.orders values (1)",
        )
        .unwrap();
    let output = weir(root, &["grants", "--target", "admin", "--apply"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));

    let mut alice = connect("dev");
    let rows: i64 = alice
        .client()
        .query_one("select count(*) from raw.orders", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "developers read the sources");
    for write in [
        "insert into raw.orders values (2)",
        "truncate raw.orders",
        "drop table raw.orders",
        "create table raw.orders_copy (id int)",
    ] {
        let code = alice
            .client()
            .batch_execute(write)
            .err()
            .and_then(|e| e.code().map(|c| c.code().to_string()));
        assert_eq!(code.as_deref(), Some("42501"), "{write}");
    }
}

#[test]
fn a_secret_in_any_profile_key_never_reaches_a_model() {
    let project = TestProject::copy_of("shop", "rel_guard_secret_key");
    let profiles = std::fs::read_to_string(project.root.join("profiles.yml")).unwrap();
    project.write(
        "profiles.yml",
        &profiles.replacen(
            "      threads: 4\n",
            "      threads: 4\n      api_key: \"{{ env_var('DBT_ENV_SECRET_API_KEY') }}\"\n",
            1,
        ),
    );
    // A transformed copy: no scrub of the secret's value would catch it.
    project.write(
        "models/staging/leak.sql",
        "select '{{ target.api_key | reverse }}' as k\n",
    );
    let secret = [("DBT_ENV_SECRET_API_KEY", "sk-live-0123456789")];
    let output = weir(&project.root, &["compile"], &secret);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        err.contains(
            "models/staging/leak.sql:1: `target.api_key` is read from a secret env var \
             (DBT_ENV_SECRET_*) in profiles.yml"
        ),
        "{err}"
    );
    // Other keys of the target stay readable.
    project.write(
        "models/staging/leak.sql",
        "select '{{ target.name }}' as k\n",
    );
    let output = weir(&project.root, &["compile"], &secret);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    for entry in walk(&project.root.join("target")) {
        let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap()).into_owned();
        assert!(!text.contains("9876543210"), "{}", entry.display());
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn two_models_building_one_relation_fail_the_compile() {
    let project = TestProject::copy_of("shop", "rel_guard_alias");
    project.write(
        "models/staging/orders_v2.sql",
        "{{ config(alias='stg_orders') }}\nselect 1 as order_id\n",
    );
    let output = weir(&project.root, &["compile"], &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        err.contains(
            "models/staging/orders_v2.sql:1: found two resources with the database representation \
             \"\"postgres\".\"dev_alice\".\"stg_orders\"\"."
        ),
        "{err}"
    );
    assert!(
        err.contains("- model.shop.orders_v2 (models/staging/orders_v2.sql)\n")
            && err.contains("- model.shop.stg_orders (models/staging/stg_orders.sql)"),
        "{err}"
    );
}

#[test]
fn a_name_longer_than_postgres_keeps_fails_the_compile() {
    let project = TestProject::copy_of("shop", "rel_guard_long_name");
    let name = "orders_by_customer_and_payment_method_and_month_for_the_finance_team";
    assert!(name.len() > 63);
    project.write(&format!("models/marts/{name}.sql"), "select 1 as x\n");
    let output = weir(&project.root, &["compile"], &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        err.contains(&format!(
            "models/marts/{name}.sql: relation name '{name}' of `{name}` is 68 bytes long, more \
             than the 63 PostgreSQL keeps: it would cut it to '{}'",
            &name[..63]
        )),
        "{err}"
    );
}

#[test]
fn mutual_macro_recursion_is_an_error_not_a_crash() {
    let project = TestProject::copy_of("shop", "rel_guard_recursion");
    project.write(
        "macros/ping_pong.sql",
        "{% macro ping(n) %}{{ pong(n + 1) }}{% endmacro %}\n\
         {% macro pong(n) %}{{ ping(n + 1) }}{% endmacro %}\n",
    );
    project.write("models/staging/loop.sql", "select {{ ping(0) }} as x\n");
    let output = weir(&project.root, &["compile"], &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        err.contains(
            "macros/ping_pong.sql:2: macro calls nested more than 64 deep: ping \
             (macros/ping_pong.sql) → pong (macros/ping_pong.sql) → ping (macros/ping_pong.sql)"
        ),
        "{err}"
    );
}

#[test]
fn threads_beyond_the_maximum_are_an_error_not_an_abort() {
    let project = TestProject::copy_of("shop", "rel_guard_threads");
    // A server that refuses at once: nothing here may depend on connecting.
    let profiles = |threads: u32| {
        format!(
            "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: 127.0.0.1\n      \
             port: 1\n      user: postgres\n      dbname: postgres\n      schema: dev\n      \
             threads: {threads}\n"
        )
    };
    project.write("profiles.yml", &profiles(100_000));
    let output = weir(&project.root, &["run"], &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        err.contains(
            "profiles.yml:11: target `dev`: `threads: 100000` is more than weir runs at once (at most 256)"
        ),
        "{err}"
    );
    project.write("profiles.yml", &profiles(4));
    let output = weir(&project.root, &["run", "--threads", "100000"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        stderr(&output).contains("--threads 100000: weir builds at most 256 nodes at once"),
        "{}",
        both(&output)
    );
}

#[test]
fn a_string_that_keeps_doubling_is_an_error_not_an_abort() {
    let project = TestProject::copy_of("shop", "rel_guard_doubling");
    // Doubled 40 times it would be 1 TiB: through macro calls...
    project.write(
        "macros/double.sql",
        "{% macro double(s, n) %}{% if n > 0 %}{{ return(double_again(s ~ s, n - 1)) }}\
         {% else %}{{ return(s) }}{% endif %}{% endmacro %}\n\
         {% macro double_again(s, n) %}{{ return(double(s, n)) }}{% endmacro %}\n",
    );
    project.write(
        "models/staging/bomb.sql",
        "select {{ double('x', 40) | length }} as n\n",
    );
    let output = weir(&project.root, &["compile"], &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        err.contains(
            "macros/double.sql:1: an argument of this macro call is 128 MiB, more than the 64 MiB"
        ),
        "{err}"
    );
    // ...and written out on every turn of a loop.
    project.write(
        "models/staging/bomb.sql",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}\
         {% set ns.s = ns.s ~ ns.s %}{{ ns.s }}{% endfor %}\n",
    );
    let output = weir(&project.root, &["compile"], &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        err.contains("models/staging/bomb.sql:1: the text this template renders is"),
        "{err}"
    );
    // ...and kept, never written, in a namespace or a list that outlives
    // each turn of the loop.
    for (kept, what) in [
        (
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}\
             {% set ns.s = ns.s ~ ns.s %}{% endfor %}select 1\n",
            "a value set on a namespace is 128 MiB",
        ),
        (
            "{% set l = ['x'] %}{% for i in range(40) %}\
             {% do l.append(l[-1] ~ l[-1]) %}{% endfor %}select 1\n",
            "a value added to a list or dict is 128 MiB",
        ),
    ] {
        project.write("models/staging/bomb.sql", kept);
        let output = weir(&project.root, &["compile"], &[]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{}", both(&output));
        assert!(
            err.contains(&format!("models/staging/bomb.sql:1: {what}")),
            "{err}"
        );
    }
}

#[test]
fn a_protected_setting_that_is_not_true_or_false_is_an_error() {
    let project = TestProject::copy_of("shop", "rel_guard_protected_value");
    project.write("profiles.yml", &embedded_profiles("protected: enabled"));
    for target in ["dev", "staging"] {
        let output = weir(&project.root, &["run", "--target", target], &[]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{}", both(&output));
        assert!(
            err.contains("`protected` must be true or false, got `enabled`")
                && err.contains("profiles.yml:"),
            "{target}: {err}"
        );
    }
    assert_eq!(LocalCluster::status(&project.root).unwrap(), None);
}

#[test]
fn project_settings_of_the_wrong_type_are_errors() {
    let project = TestProject::copy_of("shop", "rel_guard_types");
    let dbt_project = std::fs::read_to_string(project.root.join("dbt_project.yml")).unwrap();
    project.write(
        "dbt_project.yml",
        &dbt_project.replace("model-paths: [\"models\"]", "model-paths: 5"),
    );
    let output = weir(&project.root, &["compile"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        stderr(&output).contains(
            "dbt_project.yml:6: `model-paths` must be a list of folders, like [\"models\"]"
        ),
        "{}",
        both(&output)
    );
    project.write("dbt_project.yml", &dbt_project);
    project.write(
        "models/staging/more.yml",
        "version: 2\nmodels:\n  - name: stg_orders_extra\n    columns: 5\n",
    );
    project.write("models/staging/stg_orders_extra.sql", "select 1 as x\n");
    let output = weir(&project.root, &["compile"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        stderr(&output).contains("models/staging/more.yml:4: `columns:` must be a list"),
        "{}",
        both(&output)
    );
}

#[test]
fn a_seed_whose_quote_never_closes_names_the_line() {
    let project = TestProject::copy_of("shop", "rel_guard_seed_quote");
    project.write(
        "seeds/notes.csv",
        "id,note\n1,fine\n2,\"never closed\n3,x\n4,y\n",
    );
    let output = weir(&project.root, &["seed", "-s", "notes"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        both(&output).contains(
            "seeds/notes.csv:3: the quote opened on line 3 is never closed: the rest of the file \
             would load as one field"
        ),
        "{}",
        both(&output)
    );
}

/// `weir` with a deadline: None when it had to be killed.
fn weir_within(project: &Path, args: &[&str], limit: Duration) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .arg("--project-dir")
        .arg(project)
        .env("USER", "alice")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_fifo_and_a_symlink_loop_in_models_do_not_hang_the_walk() {
    let project = TestProject::copy_of("shop", "rel_guard_walk");
    let fifo = project.root.join("models/staging/pipe.sql");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let output = weir_within(&project.root, &["compile"], Duration::from_secs(60))
        .expect("a FIFO must not block the compile");
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));

    // Two folders linking to each other: a loop through two symlinks.
    std::fs::create_dir_all(project.root.join("models/a")).unwrap();
    std::fs::create_dir_all(project.root.join("models/b")).unwrap();
    std::os::unix::fs::symlink("../b", project.root.join("models/a/to_b")).unwrap();
    std::os::unix::fs::symlink("../a", project.root.join("models/b/to_a")).unwrap();
    let output = weir_within(&project.root, &["compile"], Duration::from_secs(60))
        .expect("a symlink loop must not make the walk endless");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        err.contains("a folder the walk is already inside of: following it would never end"),
        "{err}"
    );
}

/// Billion laughs: ten anchors, each a list of ten aliases of the one
/// before (10^10 values once expanded), under `key`, indented by `indent`.
fn laughs(key: &str, indent: &str) -> String {
    let mut out = format!(
        "{indent}{key}:\n{indent}  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    );
    for i in 1..10 {
        let aliases = vec![format!("*a{}", i - 1); 10].join(", ");
        out.push_str(&format!("{indent}  a{i}: &a{i} [{aliases}]\n"));
    }
    out
}

/// The line an error names in `file` (`<...>/file:<line>: `).
fn line_named(err: &str, file: &str) -> usize {
    let at = err
        .find(&format!("{file}:"))
        .unwrap_or_else(|| panic!("no {file}: in {err}"));
    err[at + file.len() + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no line after {file}: in {err}"))
}

#[test]
fn a_yaml_bomb_in_any_project_file_is_an_error_naming_its_line() {
    let project = TestProject::copy_of("shop", "rel_guard_bomb");
    let dbt_project = std::fs::read_to_string(project.root.join("dbt_project.yml")).unwrap();
    let profiles = std::fs::read_to_string(project.root.join("profiles.yml")).unwrap();
    let bombed = [
        (
            "models/bomb.yml",
            format!(
                "version: 2\n{}models:\n  - name: stg_orders\n",
                laughs("x", "")
            ),
        ),
        (
            "dbt_project.yml",
            dbt_project.replacen(
                "\nvars:\n",
                &format!("\nvars:\n{}", laughs("laughs", "  ")),
                1,
            ),
        ),
        (
            "profiles.yml",
            format!("{}{profiles}", laughs("laughs", "")),
        ),
    ];
    for (file, text) in bombed {
        project.write(file, &text);
        let first = text.lines().position(|l| l.contains("a0: &a0")).unwrap() + 1;
        let output = weir_within(&project.root, &["compile"], Duration::from_secs(20))
            .unwrap_or_else(|| panic!("a bomb in {file} must not take the compile's time"));
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{file}: {}", both(&output));
        assert!(err.contains("(is this a YAML bomb?)"), "{file}: {err}");
        let line = line_named(&err, file);
        assert!(
            (first..first + 10).contains(&line),
            "{file}: line {line} is not one of the bomb's ({first}..): {err}"
        );
        // Put the file back for the next one.
        match file {
            "dbt_project.yml" => project.write(file, &dbt_project),
            "profiles.yml" => project.write(file, &profiles),
            _ => std::fs::remove_file(project.root.join(file)).unwrap(),
        }
    }
    let output = weir(&project.root, &["compile"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
}

#[test]
fn names_with_quotes_and_semicolons_are_quoted_never_run() {
    let project = TestProject::copy_of("shop", "rel_guard_names");
    project.write("seeds/o'brien;x.csv", "id,\"na\"\"me;--\"\n1,a\n");
    project.write(
        "models/a\"b;c.sql",
        "select * from {{ ref(\"o'brien;x\") }}\n",
    );
    project.write(
        "models/injected.sql",
        "{{ config(materialized='table', schema=\"s'; drop schema dev_alice cascade; --\") }}\n\
         select * from {{ ref('a\"b;c') }}\n",
    );
    let output = weir(&project.root, &["build"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let target = weir::Target::embedded_default("shop", None);
    let mut db = weir::connect(&target, &project.root).unwrap();
    let rows = db
        .client()
        .query(
            "select n.nspname::text, c.relname::text from pg_class c \
             join pg_namespace n on n.oid = c.relnamespace \
             where c.relname in ('o''brien;x', 'a\"b;c', 'injected') order by 2",
            &[],
        )
        .unwrap();
    let relations: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        relations,
        [
            ("dev_alice".to_string(), "a\"b;c".to_string()),
            (
                "dev_alice_s'; drop schema dev_alice cascade; --".to_string(),
                "injected".to_string()
            ),
            ("dev_alice".to_string(), "o'brien;x".to_string()),
        ]
    );
    let row = db
        .client()
        .query_one(
            "select \"na\"\"me;--\" from \"dev_alice_s'; drop schema dev_alice cascade; --\".injected",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "a");
    // The rest of the dev schema is there: nothing was dropped.
    let orders: i64 = db
        .client()
        .query_one("select count(*) from dev_alice_marts.orders", &[])
        .unwrap()
        .get(0);
    assert!(orders > 0);

    // A ref to such a name is looked up, never spliced into SQL.
    project.write(
        "models/badref.sql",
        "select 1 as id\nunion all select * from {{ ref('nope\"; drop table x; --') }}\n",
    );
    let output = weir(&project.root, &["build"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        stderr(&output).contains(
            "models/badref.sql:2: model `nope\"; drop table x; --` not found: nothing in the \
             project or its packages is named `nope\"; drop table x; --`"
        ),
        "{}",
        both(&output)
    );
}

#[test]
fn seed_garbage_is_an_error_naming_the_seed_and_the_line() {
    let project = TestProject::copy_of("shop", "rel_guard_seed_garbage");
    project.write(
        "seeds/garbage.yml",
        "version: 2\nseeds:\n  - name: garbage\n    config:\n      column_types: {amount: integer}\n",
    );
    let garbage: [(&[u8], i32, &str); 4] = [
        (
            b"id,amount\n1,2\n2,\xff\xfe\n",
            2,
            "seeds/garbage.csv:3: not UTF-8 text: byte 0xff on this line is not valid UTF-8",
        ),
        (
            b"id,amount\n1,2\n2,3,4\n",
            1,
            "seeds/garbage.csv:3: cannot read the CSV",
        ),
        (
            b"id,amount\n1,2\n2,a\x00b\n",
            1,
            "seeds/garbage.csv: invalid byte sequence for encoding \"UTF8\": 0x00",
        ),
        (
            b"id,amount\n1,2\n2,abc\n",
            1,
            "seeds/garbage.csv: invalid input syntax for type integer: \"abc\"",
        ),
    ];
    for (bytes, code, expected) in garbage {
        std::fs::write(project.root.join("seeds/garbage.csv"), bytes).unwrap();
        let output = weir(&project.root, &["seed"], &[]);
        assert_eq!(output.status.code(), Some(code), "{}", both(&output));
        assert!(
            both(&output).contains(expected),
            "{expected}:\n{}",
            both(&output)
        );
        if code == 1 {
            // The other seeds loaded: one bad file spoils nothing else.
            assert!(both(&output).contains("PASS=3"), "{}", both(&output));
        }
    }
}

#[test]
fn a_million_row_seed_loads_whole() {
    let project = TestProject::copy_of("shop", "rel_guard_big_seed");
    let mut csv = String::with_capacity(24_000_000);
    csv.push_str("id,name,amount\n");
    for i in 1..=1_000_000u64 {
        csv.push_str(&format!("{i},name {i},{}.25\n", i % 1000));
    }
    project.write("seeds/big.csv", &csv);
    let output = weir(&project.root, &["seed", "-s", "big"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let target = weir::Target::embedded_default("shop", None);
    let mut db = weir::connect(&target, &project.root).unwrap();
    let row = db
        .client()
        .query_one(
            "select count(*), sum(id)::text, count(distinct name), round(sum(amount)::numeric, 2)::text \
             from dev_alice.big",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1_000_000);
    assert_eq!(row.get::<_, String>(1), "500000500000");
    assert_eq!(row.get::<_, i64>(2), 1_000_000);
    // 1000 times 0..999 plus .25 per row.
    assert_eq!(row.get::<_, String>(3), "499750000.00");
}
