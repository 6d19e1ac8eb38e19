//! Running the shop project on a throwaway embedded PostgreSQL: relations and
//! row counts, idempotent reruns, atomic swaps, failures, skips and retries.

mod support;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use weir::{
    Adapter, Compiled, ErrorKind, Event, LocalCluster, Plan, PostgresAdapter, RunOptions,
    RunResults, Status,
};

use support::{TestProject, count, plan, relation, relations_in};

fn options(threads: usize) -> RunOptions {
    RunOptions {
        threads,
        fail_fast: false,
        full_refresh: false,
        ..RunOptions::default()
    }
}

fn run(compiled: &Compiled, plan: &Plan) -> RunResults {
    weir::run(compiled, plan, &options(4), &|_| {}).unwrap()
}

/// node name -> (status, message)
fn outcomes(compiled: &Compiled, results: &RunResults) -> HashMap<String, (Status, String)> {
    results
        .results
        .iter()
        .map(|r| {
            let name = compiled.manifest.nodes[&r.unique_id].name.clone();
            (name, (r.status, r.message.clone()))
        })
        .collect()
}

const SHOP_ROWS: [(&str, i64); 8] = [
    ("raw_customers", 10),
    ("raw_orders", 30),
    ("raw_payments", 38),
    ("stg_customers", 10),
    ("stg_orders", 30),
    ("stg_payments", 38),
    ("orders", 30),
    ("customers", 10),
];

#[test]
fn seed_and_run_build_every_relation_and_reruns_change_nothing() {
    let project = TestProject::copy_of("shop", "build");
    let compiled = project.compile();
    let plan = plan(&compiled, &[]);
    let events = Mutex::new(Vec::new());
    let record = |event: &Event| {
        let line = match event {
            Event::Start { index, task, .. } => format!("{index} start {}", task.name),
            Event::Finish { index, task, .. } => format!("{index} finish {}", task.name),
            Event::Hook { name, .. } => format!("hook {name}"),
        };
        events.lock().unwrap().push(line);
    };

    let first = weir::run(&compiled, &plan, &options(4), &record).unwrap();
    let outcome = outcomes(&compiled, &first);
    assert!(!first.has_failures(), "{outcome:?}");
    assert_eq!(outcome["raw_orders"], (Status::Success, "COPY 30".into()));
    assert_eq!(
        outcome["stg_orders"],
        (Status::Success, "CREATE VIEW".into())
    );
    assert_eq!(outcome["orders"], (Status::Success, "SELECT 30".into()));
    assert_eq!(
        first.invocation_id,
        compiled.manifest.metadata.invocation_id
    );

    let events = events.into_inner().unwrap();
    assert_eq!(events.len(), 40, "20 nodes, of which 12 tests");
    for task in &plan.tasks {
        let start = events
            .iter()
            .position(|e| e.ends_with(&format!("start {}", task.name)));
        let finish = events
            .iter()
            .position(|e| e.ends_with(&format!("finish {}", task.name)));
        assert!(start.unwrap() < finish.unwrap(), "{events:?}");
    }

    let mut db = project.connect(&compiled);
    let expect_rows = |db: &mut PostgresAdapter| {
        for (name, rows) in SHOP_ROWS {
            assert_eq!(count(db, &relation(&compiled, name)), rows, "{name}");
        }
    };
    expect_rows(&mut db);
    let order_date_type: String = db
        .client()
        .query_one(
            "select data_type::text from information_schema.columns \
             where table_schema = $1 and table_name = 'raw_orders' and column_name = 'order_date'",
            &[&relation(&compiled, "raw_orders").schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(order_date_type, "date");

    let second = run(&compiled, &plan);
    assert!(!second.has_failures());
    expect_rows(&mut db);
    let staging = relation(&compiled, "stg_orders").schema;
    let marts = relation(&compiled, "orders").schema;
    assert_eq!(
        relations_in(&mut db, &staging),
        [
            "raw_customers",
            "raw_orders",
            "raw_payments",
            "stg_customers",
            "stg_orders",
            "stg_payments"
        ]
    );
    assert_eq!(relations_in(&mut db, &marts), ["customers", "orders"]);

    let single = weir::workflow::node::run_node(
        &compiled,
        &weir::workflow::Guard::new(),
        "model.shop.orders",
        Default::default(),
    )
    .unwrap();
    assert_eq!(
        (single.status, single.rows_affected, single.attempts),
        (Status::Success, Some(30), 1)
    );
}

#[test]
fn readers_never_see_a_relation_missing_while_it_is_rebuilt() {
    let project = TestProject::copy_of("shop", "swap");
    let compiled = project.compile();
    assert!(!run(&compiled, &plan(&compiled, &[])).has_failures());
    let rebuild = plan(&compiled, &["orders stg_orders"]);
    let models = rebuild
        .tasks
        .iter()
        .filter(|t| t.resource_type == weir::ResourceType::Model);
    assert_eq!(models.count(), 2);

    let table = relation(&compiled, "orders");
    let view = relation(&compiled, "stg_orders");
    let mut reader = project.connect(&compiled);
    let done = AtomicBool::new(false);
    let reads = std::thread::scope(|scope| {
        let polling = scope.spawn(|| {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) {
                for relation in [&table, &view] {
                    let sql = format!("select count(*) from {relation}");
                    let row = reader.client().query_one(&sql, &[]);
                    let rows: i64 = row
                        .unwrap_or_else(|e| panic!("reading {relation} failed: {e:?}"))
                        .get(0);
                    assert_eq!(rows, 30, "{relation}");
                    reads += 1;
                }
            }
            reads
        });
        for _ in 0..6 {
            let results = weir::run(&compiled, &rebuild, &options(2), &|_| {}).unwrap();
            assert!(!results.has_failures(), "{:?}", results.results);
        }
        done.store(true, Ordering::Relaxed);
        polling.join().unwrap()
    });
    assert!(reads > 10, "the reader only read {reads} times");
}

#[test]
fn a_broken_model_fails_naming_its_file_and_skips_only_its_downstream() {
    let project = TestProject::copy_of("shop", "broken");
    project.write(
        "models/staging/stg_payments.sql",
        "select\n    id as payment_id,\n    order_id,\n    payment_method\n    amount / 100 as amount\nfrom {{ ref('raw_payments') }}\n",
    );
    project.write(
        "models/events.sql",
        "{{ config(materialized='custom_mat') }}\nselect 1 as id\n",
    );
    let compiled = project.compile();
    let results = run(&compiled, &plan(&compiled, &[]));
    let outcome = outcomes(&compiled, &results);

    for name in [
        "raw_customers",
        "raw_orders",
        "raw_payments",
        "stg_customers",
        "stg_orders",
    ] {
        assert_eq!(outcome[name].0, Status::Success, "{name}");
    }
    let broken = results
        .results
        .iter()
        .find(|r| r.unique_id == "model.shop.stg_payments")
        .unwrap();
    let error = broken.error.as_ref().unwrap();
    assert_eq!(broken.status, Status::Error);
    assert_eq!(error.kind(), ErrorKind::Database);
    assert_eq!(broken.attempts, 1);
    insta::assert_snapshot!(error.to_string(), @r#"
    models/staging/stg_payments.sql: syntax error at or near "/" (SQLSTATE 42601)
      |     amount / 100 as amount
      |            ^
    "#);
    for name in ["orders", "customers"] {
        assert_eq!(
            outcome[name],
            (
                Status::Skipped,
                "skipped because upstream `stg_payments` failed".into()
            ),
            "{name}"
        );
    }
    assert_eq!(
        outcome["events"],
        (
            Status::Error,
            "models/events.sql: materialization `custom_mat` of `events` is not supported yet"
                .into()
        )
    );

    let err = weir::workflow::node::run_node(
        &compiled,
        &weir::workflow::Guard::new(),
        "model.shop.stg_payments",
        Default::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Database);
    assert_eq!(err.to_string(), error.to_string());
}

#[test]
fn lost_connections_are_transient_and_retried() {
    let project = TestProject::copy_of("shop", "transient");
    // Dies on its first attempt only: sequences are not rolled back.
    project.write(
        "models/flaky.sql",
        "{{ config(materialized='table', retries=1) }}\n\
         select case when nextval('public.flaky_attempts') = 1\n\
         then pg_terminate_backend(pg_backend_pid()) else true end as ok\n",
    );
    project.write(
        "models/doomed.sql",
        "{{ config(materialized='table', retries=1) }}\n\
         select pg_terminate_backend(pg_backend_pid()) as ok\n",
    );
    let compiled = project.compile();
    let mut victim = project.connect(&compiled);
    let mut killer = project.connect(&compiled);
    let pid = victim.backend_pid().unwrap();
    killer
        .client()
        .execute("select pg_terminate_backend($1)", &[&pid])
        .unwrap();
    let err = victim.execute("select 1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(
        victim.is_closed() || err.message().contains("57P01"),
        "{err}"
    );

    killer
        .execute("create sequence public.flaky_attempts")
        .unwrap();
    let results = run(&compiled, &plan(&compiled, &["flaky doomed"]));
    let by_id: HashMap<&str, _> = results
        .results
        .iter()
        .map(|r| (r.unique_id.as_str(), r))
        .collect();
    let flaky = by_id["model.shop.flaky"];
    assert_eq!((flaky.status, flaky.attempts), (Status::Success, 2));
    let doomed = by_id["model.shop.doomed"];
    assert_eq!((doomed.status, doomed.attempts), (Status::Error, 2));
    assert!(doomed.error.as_ref().unwrap().is_transient());

    let err = weir::workflow::node::run_node(
        &compiled,
        &weir::workflow::Guard::new(),
        "model.shop.doomed",
        Default::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(err.to_string().starts_with("models/doomed.sql: "), "{err}");
}

#[test]
fn connection_errors_are_transient_and_never_show_the_password() {
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut target = weir::Target::embedded_default("shop", Some("prod"));
    target.host = Some("127.0.0.1".into());
    target.port = Some(free_port);
    target.user = "hunter2".into();
    target.password = Some(weir::Secret::new("hunter2"));
    let err = weir::connect(&target, std::path::Path::new("."))
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(
        err.to_string()
            .contains("cannot connect to database `postgres`")
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn the_local_cluster_starts_once_stops_and_restarts() {
    let project = TestProject::copy_in_private_dir("shop", "cluster");
    let root = project.root.as_path();
    assert_eq!(LocalCluster::status(root).unwrap(), None);
    let clusters: Vec<LocalCluster> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| LocalCluster::ensure_running(root).unwrap()))
            .collect();
        starts.into_iter().map(|s| s.join().unwrap()).collect()
    });
    assert!(clusters.windows(2).all(|pair| pair[0] == pair[1]));
    let cluster = clusters[0].clone();
    if is_root() {
        // The `postgres` user cannot enter the project: data moved to the temp dir.
        assert!(cluster.data_dir().starts_with(std::env::temp_dir()));
        assert!(root.join(".weir/cluster").is_file());
    } else {
        assert_eq!(cluster.data_dir(), root.join(".weir/pgdata"));
    }

    let clock = Instant::now();
    assert_eq!(LocalCluster::ensure_running(root).unwrap(), cluster);
    eprintln!("ensure_running on a running cluster: {:?}", clock.elapsed());

    let compiled = project.compile();
    let mut db = project.connect(&compiled);
    db.execute("select 1").unwrap();
    drop(db);
    // A newcomer's target may name a database initdb did not make.
    let mut target = compiled.target.clone();
    target.dbname = "analytics".into();
    let mut db = weir::connect(&target, root).unwrap();
    let dbname: String = db
        .client()
        .query_one("select current_database()::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(dbname, "analytics");
    drop(db);

    assert!(LocalCluster::stop(root).unwrap());
    assert_eq!(LocalCluster::status(root).unwrap(), None);
    assert!(!LocalCluster::stop(root).unwrap());
    let restarted = LocalCluster::ensure_running(root).unwrap();
    assert_eq!(restarted, cluster, "a restart keeps the data dir and port");

    assert!(LocalCluster::stop(root).unwrap());
    let conf = cluster.data_dir().join("postgresql.conf");
    let mut settings = std::fs::read_to_string(&conf).unwrap();
    settings.push_str("shared_buffers = 'plenty'\n");
    std::fs::write(&conf, settings).unwrap();
    let err = LocalCluster::ensure_running(root).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LocalDatabase);
    let shown = err.to_string();
    assert!(shown.contains("pg_ctl start failed"), "{shown}");
    assert!(shown.contains("postgres.log:"), "{shown}");
    assert!(
        shown.contains(r#"invalid value for parameter "shared_buffers""#),
        "{shown}"
    );
    eprintln!("{shown}");

    LocalCluster::destroy(root).unwrap();
    assert!(!cluster.data_dir().exists());
    assert!(!root.join(".weir/cluster").exists());
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
