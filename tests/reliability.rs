//! The reliability group: attacks of the reliability review (issue 12), each
//! reproduced against the real binary or library and a throwaway cluster,
//! asserting the behaviour that now holds. More attacks of the same group
//! live in tests/reliability_guard.rs; tests/RELIABILITY.md maps every
//! attack of the review to the test that keeps it.
//!
//! - another OS user cannot reach the embedded cluster (socket or TCP), nor
//!   read its log or password; TCP is off unless asked;
//! - a postmaster.pid naming another live process is not "running";
//! - two concurrent deploys: one wins, the other is told who holds the lock,
//!   and prod holds one version; a developer's `<schema>__next` gets a clear
//!   message;
//! - SIGTERM cancels the running query and `weir retry` re-runs the node;
//! - a write that fails midway (file size limit) keeps the previous manifest;
//! - a backend terminated, the cluster stopped, SIGINT or SIGKILL mid-model,
//!   and an incremental model terminated mid-merge: the old relation stays
//!   whole and `weir retry` finishes;
//! - two deploys run as steps (Airflow's prepare, node tasks, swap): the
//!   deploy lease keeps the second out of the first one's shadow set.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::cli::{both, stderr, stdout, weir};
use support::{TestProject, embedded_profiles};
use weir::{LocalCluster, PostgresAdapter, Target};

/// The OS user the attacks run as; created when missing.
const INTRUDER: &str = "weir_intruder";

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn require_root(test: &str) {
    assert!(
        is_root(),
        "{test} plays another OS user (useradd, runuser): run the reliability tests as root, \
         as CI does"
    );
}

/// The intruder's OS account, created on first use.
fn intruder() -> &'static str {
    let exists = Command::new("id")
        .arg("-u")
        .arg(INTRUDER)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let output = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin", INTRUDER])
            .output()
            .unwrap();
        // Another test binary may have created it meanwhile.
        assert!(
            output.status.success() || String::from_utf8_lossy(&output.stderr).contains("exists"),
            "useradd: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    INTRUDER
}

/// Run a program as the intruder.
fn as_intruder(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new("runuser");
    command
        .args(["-u", intruder(), "--"])
        .arg(program)
        .args(args)
        .current_dir("/")
        .env_remove("PGPASSWORD");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn psql() -> PathBuf {
    let in_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("psql"))
        .find(|p| p.is_file());
    let versioned = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/psql"))
        .find(|p| p.is_file());
    in_path
        .or(versioned)
        .expect("psql is installed with the PostgreSQL server")
}

/// `host=... port=...` from `weir local start`.
fn endpoint(start_output: &str) -> (String, u16) {
    let field = |name: &str| {
        start_output
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in: {start_output}"))
            .trim_end_matches(',')
            .to_string()
    };
    (field("host="), field("port=").parse().unwrap())
}

fn local(project: &TestProject, action: &str, env: &[(&str, &str)]) -> Output {
    let output = weir(&project.root, &["local", action], env);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    output
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn another_os_user_cannot_reach_the_embedded_cluster_nor_read_its_files() {
    require_root("another_os_user_cannot_reach_the_embedded_cluster");
    let project = TestProject::copy_of("shop", "rel_intruder");
    let psql = psql();
    let side_effect = std::env::temp_dir().join(format!("weir-pwned-{}", std::process::id()));
    let attack = format!(
        "copy (select 1) to program 'touch {}'",
        side_effect.display()
    );

    // Unless asked, no TCP listener at all.
    let started = stdout(&local(&project, "start", &[]));
    let (socket_dir, port) = endpoint(&started);
    assert!(!started.contains("127.0.0.1"), "{started}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on 127.0.0.1:{port}"
    );
    local(&project, "stop", &[]);

    let started = stdout(&local(&project, "start", &[("WEIR_LOCAL_TCP", "1")]));
    assert_eq!(endpoint(&started), (socket_dir.clone(), port), "{started}");
    assert!(started.contains(&format!("127.0.0.1:{port}")), "{started}");
    let cluster = LocalCluster::status(&project.root).unwrap().unwrap();
    assert!(cluster.tcp());
    let socket = Path::new(&socket_dir);
    assert_eq!(mode(socket), 0o700, "the socket's folder is owner-only");

    // The intruder reaches the folder around the socket's: only the
    // socket's own folder keeps it out (else this test would prove nothing).
    let parent = socket.parent().unwrap();
    let reach = as_intruder(
        Path::new("/usr/bin/test"),
        &["-x", &parent.display().to_string()],
        &[],
    );
    assert!(reach.status.success(), "{} is reachable", parent.display());

    let port_text = port.to_string();
    let via_socket = as_intruder(
        &psql,
        &[
            "-X",
            "-w",
            "-h",
            &socket_dir,
            "-p",
            &port_text,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            &attack,
        ],
        &[],
    );
    assert!(!via_socket.status.success(), "{}", both(&via_socket));
    assert!(
        stderr(&via_socket).contains("Permission denied"),
        "{}",
        both(&via_socket)
    );

    let tcp_args = [
        "-X",
        "-w",
        "-h",
        "127.0.0.1",
        "-p",
        &port_text,
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-c",
        &attack,
    ];
    let no_password = as_intruder(&psql, &tcp_args, &[]);
    assert!(!no_password.status.success(), "{}", both(&no_password));
    assert!(
        stderr(&no_password).contains("no password supplied"),
        "{}",
        both(&no_password)
    );
    let wrong_password = as_intruder(&psql, &tcp_args, &[("PGPASSWORD", "postgres")]);
    assert!(
        !wrong_password.status.success(),
        "{}",
        both(&wrong_password)
    );
    assert!(
        stderr(&wrong_password).contains("password authentication failed"),
        "{}",
        both(&wrong_password)
    );
    assert!(
        !side_effect.exists(),
        "the intruder ran a program as the cluster's user"
    );

    // The password, the log and the data are the owner's alone.
    let password_file = cluster.password_file().to_path_buf();
    let log = cluster.data_dir().parent().unwrap().join("postgres.log");
    assert_eq!(mode(&password_file), 0o600);
    assert_eq!(mode(&log), 0o600);
    assert_eq!(mode(cluster.data_dir()), 0o700);
    for file in [&password_file, &log] {
        let read = as_intruder(Path::new("/bin/cat"), &[&file.display().to_string()], &[]);
        assert!(
            !read.status.success(),
            "the intruder read {}",
            file.display()
        );
    }

    // The owner gets in both ways: with the password over TCP.
    let password = std::fs::read_to_string(&password_file).unwrap();
    let owner = Command::new(&psql)
        .args([
            "-X",
            "-w",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-p",
            &port_text,
            "-U",
            "postgres",
        ])
        .args(["-d", "postgres", "-c", "select current_user"])
        .env("PGPASSWORD", password.trim())
        .output()
        .unwrap();
    assert_eq!(stdout(&owner).trim(), "postgres", "{}", both(&owner));
    let owner = Command::new(&psql)
        .args([
            "-X",
            "-w",
            "-A",
            "-t",
            "-h",
            &socket_dir,
            "-p",
            &port_text,
            "-U",
            "postgres",
        ])
        .args(["-d", "postgres", "-c", "select 1"])
        .output()
        .unwrap();
    assert_eq!(stdout(&owner).trim(), "1", "{}", both(&owner));
}

/// pg_ctl of the installed server, as the cluster's OS user runs it.
fn pg_ctl_as_server_user(args: &[&str]) -> Output {
    let pg_ctl = psql().with_file_name("pg_ctl");
    let pg_ctl = if pg_ctl.is_file() {
        pg_ctl
    } else {
        std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .flatten()
            .map(|e| e.path().join("bin/pg_ctl"))
            .find(|p| p.is_file())
            .expect("pg_ctl is installed")
    };
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(pg_ctl)
        .args(args)
        .current_dir("/")
        .output()
        .unwrap()
}

#[test]
fn a_cluster_an_older_weir_left_open_on_tcp_is_closed_on_first_use() {
    require_root("a_cluster_an_older_weir_left_open_on_tcp_is_closed_on_first_use");
    let project = TestProject::copy_of("shop", "rel_upgrade");
    let cluster = LocalCluster::ensure_running(&project.root).unwrap();
    assert!(LocalCluster::stop(&project.root).unwrap());
    // What an older weir wrote: trust on 127.0.0.1, no socket.
    let data_dir = cluster.data_dir().display().to_string();
    let port = cluster.port();
    std::fs::write(
        cluster.data_dir().join("weir.conf"),
        format!("port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"),
    )
    .unwrap();
    std::fs::write(
        cluster.data_dir().join("pg_hba.conf"),
        "host all all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    let log = cluster.data_dir().parent().unwrap().join("postgres.log");
    let started = pg_ctl_as_server_user(&[
        "-D",
        &data_dir,
        "-l",
        &log.display().to_string(),
        "-w",
        "start",
    ]);
    assert!(started.status.success(), "{}", both(&started));
    let open = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
    assert!(
        postgres::Client::connect(&open, postgres::NoTls).is_ok(),
        "the old cluster lets anyone in over TCP"
    );

    assert_eq!(LocalCluster::status(&project.root).unwrap(), None);
    let closed = LocalCluster::ensure_running(&project.root).unwrap();
    assert_eq!(closed.socket_dir(), cluster.socket_dir());
    assert!(!closed.tcp());
    assert!(postgres::Client::connect(&open, postgres::NoTls).is_err());
    let compiled = project.compile();
    project
        .connect(&compiled)
        .client()
        .batch_execute("select 1")
        .unwrap();
}

#[test]
fn a_socket_folder_made_by_another_user_stops_the_start() {
    require_root("a_socket_folder_made_by_another_user_stops_the_start");
    // Deep enough that a socket in the data directory would pass the length
    // limit: the socket goes to this project's private folder in the temp dir.
    let project = TestProject::copy_of("shop", "rel_socket_folder_of_a_deeply_nested_project");
    let root = std::fs::canonicalize(&project.root).unwrap();
    assert!(root.join(".weir/pgdata").as_os_str().len() + 15 > 107);
    let digest = <sha2::Sha256 as sha2::Digest>::digest(root.as_os_str().as_encoded_bytes());
    let private = std::env::temp_dir().join(format!(
        "weir-{}",
        digest[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let _ = std::fs::remove_dir_all(&private);

    // The intruder makes it first, hoping to reach (or replace) the socket.
    let made = as_intruder(
        Path::new("/bin/mkdir"),
        &["-m", "0777", &private.display().to_string()],
        &[],
    );
    assert!(made.status.success(), "{}", both(&made));
    let err = LocalCluster::ensure_running(&project.root).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains(&format!(
            "{} should be a folder of the OS user running the local PostgreSQL (`postgres`)",
            private.display()
        )),
        "{shown}"
    );
    assert!(shown.contains("another user may have made it"), "{shown}");
    assert_eq!(LocalCluster::status(&project.root).unwrap(), None);

    std::fs::remove_dir_all(&private).unwrap();
    let cluster = LocalCluster::ensure_running(&project.root).unwrap();
    assert_eq!(cluster.socket_dir(), private.join("socket"));
    for folder in [&private, &private.join("socket")] {
        assert_eq!(mode(folder), 0o700, "{}", folder.display());
    }
    let compiled = project.compile();
    project
        .connect(&compiled)
        .client()
        .batch_execute("select 1")
        .unwrap();
    drop(project);
    assert!(!private.exists(), "destroy removes the private folder");
}

/// Write a postmaster.pid into `data_dir` naming `pid` as a ready postmaster.
fn fake_pid_file(data_dir: &Path, pid: u32) {
    std::fs::write(
        data_dir.join("postmaster.pid"),
        format!(
            "{pid}\n{}\n1700000000\n5432\n{}\n\n  1234   5678\nready   \n",
            data_dir.display(),
            data_dir.display()
        ),
    )
    .unwrap();
}

#[test]
fn a_stale_postmaster_pid_naming_another_live_process_is_not_running() {
    let other = TestProject::copy_of("shop", "rel_pid_other");
    let other_cluster = LocalCluster::ensure_running(&other.root).unwrap();
    let other_pid: u32 = std::fs::read_to_string(other_cluster.data_dir().join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let project = TestProject::copy_of("shop", "rel_pid");
    let cluster = LocalCluster::ensure_running(&project.root).unwrap();
    assert!(LocalCluster::stop(&project.root).unwrap());
    let data_dir = cluster.data_dir();

    // As a crash leaves it, its pid since taken by another cluster's postmaster.
    fake_pid_file(data_dir, other_pid);
    assert_eq!(LocalCluster::status(&project.root).unwrap(), None);
    // ... or by some other program.
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    fake_pid_file(data_dir, sleeper.id());
    assert_eq!(LocalCluster::status(&project.root).unwrap(), None);
    assert!(!LocalCluster::stop(&project.root).unwrap());

    // weir starts its own cluster over the stale file; the other one lives on.
    let restarted = LocalCluster::ensure_running(&project.root).unwrap();
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_eq!(restarted.data_dir(), data_dir);
    assert_eq!(
        LocalCluster::status(&project.root).unwrap(),
        Some(restarted)
    );
    assert_eq!(
        LocalCluster::status(&other.root).unwrap(),
        Some(other_cluster)
    );
}

/// The shop project deploying a version (`--vars {version: n}`) into two
/// tables, one of them as slow to build as `--vars {sleep: seconds}` says.
fn deploy_project(test: &str) -> TestProject {
    let project = TestProject::copy_of("shop", test);
    project.write("profiles.yml", &embedded_profiles(""));
    project.write(
        "models/marts/version_a.sql",
        "{{ config(materialized='table') }}\nselect {{ var('version', 1) }} as v\n",
    );
    project.write(
        "models/staging/version_b.sql",
        "{{ config(materialized='table') }}\nselect {{ var('version', 1) }} as v \
         from (select pg_sleep({{ var('sleep', 0) }})) s\n",
    );
    project
}

fn deploy_child(project: &TestProject, version: u32, sleep: u32) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["deploy", "--target", "prod", "--vars"])
        .arg(format!("{{version: {version}, sleep: {sleep}}}"))
        .arg("--project-dir")
        .arg(&project.root)
        .env("CI", "true")
        .env_remove("WEIR_SCHEMA_SUFFIX")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn superuser(project: &TestProject) -> PostgresAdapter {
    weir::connect(&Target::embedded_default("shop", None), &project.root).unwrap()
}

#[test]
fn two_concurrent_deploys_one_wins_the_other_is_told_and_prod_holds_one_version() {
    let project = deploy_project("rel_deploys");
    // The cluster is up before the race: both deploys only connect.
    LocalCluster::ensure_running(&project.root).unwrap();
    let children = [deploy_child(&project, 2, 4), deploy_child(&project, 3, 4)];
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners: Vec<usize> = (0..2)
        .filter(|&i| outputs[i].status.code() == Some(0))
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one deploy succeeds:\n{}\n---\n{}",
        both(&outputs[0]),
        both(&outputs[1])
    );
    let (winner, loser) = (winners[0], 1 - winners[0]);
    assert_eq!(
        outputs[loser].status.code(),
        Some(1),
        "{}",
        both(&outputs[loser])
    );
    let told = stderr(&outputs[loser]);
    assert!(
        told.contains(&format!(
            "another weir deploy of target `prod` is running (weir deploy prod: pid {} on ",
            pids[winner]
        )),
        "{told}"
    );
    assert!(told.contains("started at "), "{told}");
    assert!(told.contains("Nothing was changed"), "{told}");
    assert!(
        stdout(&outputs[winner]).contains("Swapped in"),
        "{}",
        both(&outputs[winner])
    );

    let version = [2, 3][winner];
    let mut db = superuser(&project);
    let row = db
        .client()
        .query_one(
            "select (select v from analytics_marts.version_a), (select v from analytics.version_b)",
            &[],
        )
        .unwrap();
    let live: (i32, i32) = (row.get(0), row.get(1));
    assert_eq!(
        live,
        (version, version),
        "prod holds the winner's version only"
    );
    // The lock went with the winner's connection: the next deploy runs.
    let output = weir(
        &project.root,
        &["deploy", "--target", "prod", "--vars", "{version: 4}"],
        &[("CI", "true")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
}

#[test]
fn a_developers_shadow_schema_stops_a_deploy_with_what_to_do() {
    let project = deploy_project("rel_shadow");
    let cluster = LocalCluster::ensure_running(&project.root).unwrap();
    let mut db = superuser(&project);
    db.client()
        .batch_execute(
            "create role alice login; create role shop_prod login; \
             grant create on database postgres to alice, shop_prod; \
             set role alice; create schema analytics__next; \
             create table analytics__next.scratch (id int); reset role",
        )
        .unwrap();
    // prod connects as its own role, through the cluster's socket.
    project.write(
        "profiles.yml",
        &format!(
            "shop:\n  target: prod\n  outputs:\n    prod:\n      type: postgres\n      host: {}\n      \
             port: {}\n      user: shop_prod\n      dbname: postgres\n      schema: analytics\n      threads: 2\n",
            cluster.socket_dir().display(),
            cluster.port()
        ),
    );
    let deploy = || {
        weir(
            &project.root,
            &["deploy", "--target", "prod", "--vars", "{version: 5}"],
            &[("CI", "true")],
        )
    };
    let output = deploy();
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    let told = stderr(&output);
    assert!(
        told.contains(
            "schema `analytics__next` exists and belongs to `alice`, not to `shop_prod`, the \
             role this deploy connects as"
        ),
        "{told}"
    );
    assert!(
        told.contains("drop schema \"analytics__next\" cascade"),
        "{told}"
    );
    assert!(told.contains("Nothing was changed"), "{told}");
    let scratch: i64 = db
        .client()
        .query_one("select count(*) from analytics__next.scratch", &[])
        .unwrap()
        .get(0);
    assert_eq!(scratch, 0, "the developer's schema is untouched");

    // Doing what the message says is enough.
    db.client()
        .batch_execute("drop schema analytics__next cascade")
        .unwrap();
    let output = deploy();
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
}

#[test]
fn sigterm_stops_a_deploy_before_the_swap_and_cancels_its_queries() {
    let project = deploy_project("rel_deploy_sigterm");
    let output = weir(
        &project.root,
        &["deploy", "--target", "prod", "--vars", "{version: 1}"],
        &[("CI", "true")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let mut db = superuser(&project);

    let child = deploy_child(&project, 2, 600);
    wait_until(&mut db, SLEEPING, |n| n > 0, "the deploy builds");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stdout(&output).contains("Deploy stopped before the swap: production is unchanged"),
        "{}",
        both(&output)
    );
    wait_until(&mut db, SLEEPING, |n| n == 0, "the query is cancelled");
    let row = db
        .client()
        .query_one(
            "select (select v from analytics_marts.version_a), (select v from analytics.version_b)",
            &[],
        )
        .unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, i32>(1)), (1, 1));
}

/// Wait until `sql` (a count) returns a number matching `done`.
fn wait_until(db: &mut PostgresAdapter, sql: &str, done: impl Fn(i64) -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = db.client().query_one(sql, &[]).unwrap().get(0);
        if done(n) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const SLEEPING: &str = "select count(*) from pg_stat_activity \
                        where query like '%pg_sleep(600)%' and pid <> pg_backend_pid()";

#[test]
fn sigterm_cancels_the_running_query_and_retry_reruns_the_node() {
    let project = TestProject::copy_of("shop", "rel_sigterm");
    project.write(
        "models/sleepy.sql",
        "{{ config(materialized='table') }}\nselect 1 as id from (select pg_sleep(600)) s\n",
    );
    let compiled = project.compile();
    let mut db = project.connect(&compiled);

    let child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "-s", "sleepy", "--project-dir"])
        .arg(&project.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(&mut db, SLEEPING, |n| n > 0, "the model runs");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", both(&output));
    // The server stopped the query: no backend sleeps on, no lock is held.
    wait_until(&mut db, SLEEPING, |n| n == 0, "the query is cancelled");
    let locks: i64 = db
        .client()
        .query_one(
            "select count(*) from pg_locks where locktype = 'advisory'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(locks, 0);

    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project.root.join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    let sleepy = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "model.shop.sleepy")
        .unwrap_or_else(|| panic!("no result for sleepy: {results}"));
    assert_eq!(sleepy["status"], "error", "{sleepy}");
    assert!(
        sleepy["message"].as_str().unwrap().contains("interrupted"),
        "{sleepy}"
    );

    // `weir retry` runs it again (quick now).
    project.write(
        "models/sleepy.sql",
        "{{ config(materialized='table') }}\nselect 1 as id\n",
    );
    let output = weir(&project.root, &["retry"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let out = stdout(&output);
    assert!(!out.contains("Nothing to retry"), "{out}");
    assert!(out.contains("sleepy"), "{out}");
    assert!(out.contains("PASS=1"), "{out}");
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_write_failing_midway_keeps_the_previous_manifest_whole() {
    let project = TestProject::copy_of("shop", "rel_full_disk");
    let compile = |limit_kib: Option<u64>| {
        // A file size limit makes writes past it fail with EFBIG, as a full
        // disk fails them; SIGXFSZ ignored, so weir sees the error.
        let limit = limit_kib.map_or("unlimited".to_string(), |k| (k * 2).to_string());
        Command::new("/bin/sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f \"$1\" && exec \"$2\" compile --project-dir \"$3\"")
            .arg("sh")
            .arg(&limit)
            .arg(env!("CARGO_BIN_EXE_weir"))
            .arg(&project.root)
            .env("WEIR_NO_COMPILE_CACHE", "1")
            .output()
            .unwrap()
    };
    let output = compile(None);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let target = project.root.join("target");
    let manifest = target.join("manifest.json");
    let before = std::fs::read(&manifest).unwrap();
    let files_before = files_under(&target);

    // A new model: the next manifest differs, and is larger than the limit.
    project.write("models/another.sql", "select 1 as id\n");
    // `ulimit -f` counts 512-byte blocks in POSIX sh (the limit given is
    // twice the KiB); a bash counting 1024-byte ones would still be below.
    let limit_kib = before.len() as u64 / 1024 / 4;
    assert!(limit_kib >= 4, "the manifest is {} bytes", before.len());
    let output = compile(Some(limit_kib));
    assert_ne!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        stderr(&output).contains("File too large"),
        "{}",
        both(&output)
    );

    assert_eq!(
        std::fs::read(&manifest).unwrap(),
        before,
        "the previous manifest.json is intact"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(target.join("weir_state.json")).unwrap())
            .expect("weir_state.json is whole");
    assert!(state.is_object());
    let mut files_after = files_under(&target);
    files_after.retain(|f| !f.ends_with("another.sql"));
    assert_eq!(files_after, files_before, "no temporary file is left");

    // Without the limit, the new manifest replaces the old one.
    let output = compile(None);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let after = std::fs::read_to_string(&manifest).unwrap();
    assert!(after.contains("model.shop.another"));
}

// Faults in the middle of a run: whatever stops a model's build, the old
// relation stays whole (the build is one transaction, swapped in at its
// commit), and `weir retry` finishes the job.

/// A table model (`victim`, `--vars {v: n}`) whose build waits at a gate:
/// `public.weir_gate()` sleeps while `public.gate.open` is false, and
/// raises while `public.gate.broken` is true. Built once, with `v = 1`.
fn gated_project(test: &str) -> (TestProject, PostgresAdapter) {
    let project = TestProject::copy_of("shop", test);
    project.write(
        "models/victim.sql",
        "{{ config(materialized='table') }}\n\
         select {{ var('v', 1) }} as v from (select public.weir_gate()) g\n",
    );
    LocalCluster::ensure_running(&project.root).unwrap();
    let mut db = superuser(&project);
    db.client()
        .batch_execute(
            "create table public.gate (open boolean not null, broken boolean not null); \
             insert into public.gate values (true, false); \
             create function public.weir_gate() returns int language plpgsql as $$ \
             begin \
               if (select broken from public.gate) then raise exception 'the gate is broken'; end if; \
               while not (select open from public.gate) loop perform pg_sleep(0.02); end loop; \
               return 1; \
             end $$",
        )
        .unwrap();
    let output = weir(&project.root, &["run", "-s", "victim"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert_eq!(values_of(&mut db, "victim"), vec![1]);
    (project, db)
}

fn set_gate(db: &mut PostgresAdapter, open: bool, broken: bool) {
    db.client()
        .execute(
            "update public.gate set open = $1, broken = $2",
            &[&open, &broken],
        )
        .unwrap();
}

/// Backends sleeping at the gate.
const AT_THE_GATE: &str = "select count(*) from pg_stat_activity \
                           where wait_event = 'PgSleep' and pid <> pg_backend_pid()";

/// The `v` of every row of the one table named `name`, sorted; and no
/// half-built relation of that name (`<name>__weir_tmp`) is left.
fn values_of(db: &mut PostgresAdapter, name: &str) -> Vec<i32> {
    let tables: Vec<String> = db
        .client()
        .query(
            "select format('%I.%I', n.nspname, c.relname) from pg_class c \
             join pg_namespace n on n.oid = c.relnamespace \
             where c.relname like $1 and c.relkind in ('r', 'v') order by 1",
            &[&format!("{name}%")],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables.len(), 1, "one relation named {name}: {tables:?}");
    db.client()
        .query(&format!("select v from {} order by v", tables[0]), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `weir` with these arguments, started and left running.
fn spawn(project: &TestProject, args: &[&str]) -> std::process::Child {
    support::cli::command(&project.root, args, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The child's output once it exits; killed and failed after 30 s.
fn finished(mut child: std::process::Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!(
                "weir did not stop: {}",
                both(&child.wait_with_output().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// `weir retry` finishes what the interrupted run left.
fn retry_finishes(project: &TestProject) {
    let output = weir(&project.root, &["retry"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(stdout(&output).contains("PASS=1"), "{}", both(&output));
}

#[test]
fn a_backend_terminated_mid_model_leaves_the_old_table_and_retry_finishes() {
    let (project, mut db) = gated_project("rel_terminated");
    set_gate(&mut db, false, false);
    let child = spawn(&project, &["run", "-s", "victim", "--vars", "{v: 2}"]);
    wait_until(&mut db, AT_THE_GATE, |n| n > 0, "the model builds");
    db.client()
        .batch_execute(
            "select pg_terminate_backend(pid) from pg_stat_activity \
             where wait_event = 'PgSleep' and pid <> pg_backend_pid()",
        )
        .unwrap();
    let output = finished(child);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(stdout(&output).contains("ERROR=1"), "{}", both(&output));
    assert_eq!(values_of(&mut db, "victim"), vec![1]);

    set_gate(&mut db, true, false);
    retry_finishes(&project);
    assert_eq!(values_of(&mut db, "victim"), vec![2]);
}

#[test]
fn sigint_mid_model_leaves_the_old_table_and_retry_finishes() {
    let (project, mut db) = gated_project("rel_sigint");
    set_gate(&mut db, false, false);
    let child = spawn(&project, &["run", "-s", "victim", "--vars", "{v: 2}"]);
    wait_until(&mut db, AT_THE_GATE, |n| n > 0, "the model builds");
    signal(&child, "INT");
    let output = finished(child);
    assert_eq!(output.status.code(), Some(130), "{}", both(&output));
    // Ctrl-C cancels the query: nothing waits at the gate any more.
    wait_until(&mut db, AT_THE_GATE, |n| n == 0, "the query is cancelled");
    assert_eq!(values_of(&mut db, "victim"), vec![1]);

    set_gate(&mut db, true, false);
    retry_finishes(&project);
    assert_eq!(values_of(&mut db, "victim"), vec![2]);
}

#[test]
fn a_cluster_stopped_mid_model_leaves_the_old_table_and_retry_finishes() {
    let (project, mut db) = gated_project("rel_stopped");
    set_gate(&mut db, false, false);
    let child = spawn(&project, &["run", "-s", "victim", "--vars", "{v: 2}"]);
    wait_until(&mut db, AT_THE_GATE, |n| n > 0, "the model builds");
    local(&project, "stop", &[]);
    let output = finished(child);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(stdout(&output).contains("ERROR=1"), "{}", both(&output));

    LocalCluster::ensure_running(&project.root).unwrap();
    let mut db = superuser(&project);
    assert_eq!(values_of(&mut db, "victim"), vec![1]);
    set_gate(&mut db, true, false);
    retry_finishes(&project);
    assert_eq!(values_of(&mut db, "victim"), vec![2]);
}

#[test]
fn sigkill_of_weir_mid_model_leaves_the_old_table_and_retry_finishes() {
    let (project, mut db) = gated_project("rel_sigkill");
    // A failed run: what `weir retry` replays.
    set_gate(&mut db, true, true);
    let output = weir(
        &project.root,
        &["run", "-s", "victim", "--vars", "{v: 2}"],
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    let run_results = project.root.join("target/run_results.json");
    let failed_run = std::fs::read(&run_results).unwrap();

    // The retry is killed outright mid-model: no handler runs, no results
    // are written, its server process is orphaned mid-transaction.
    set_gate(&mut db, false, false);
    let mut child = spawn(&project, &["retry"]);
    wait_until(&mut db, AT_THE_GATE, |n| n > 0, "the model builds");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(values_of(&mut db, "victim"), vec![1]);
    assert_eq!(std::fs::read(&run_results).unwrap(), failed_run);

    // Once through the gate, the orphan finds its client gone and rolls back.
    set_gate(&mut db, true, false);
    wait_until(
        &mut db,
        "select count(*) from pg_stat_activity \
         where query like '%weir_gate()%' and pid <> pg_backend_pid()",
        |n| n == 0,
        "the orphaned server process ends",
    );
    assert_eq!(values_of(&mut db, "victim"), vec![1]);
    retry_finishes(&project);
    assert_eq!(values_of(&mut db, "victim"), vec![2]);
}

#[test]
fn an_incremental_model_terminated_mid_merge_keeps_its_rows_and_retry_finishes() {
    let (project, mut db) = gated_project("rel_merge");
    project.write(
        "models/grows.sql",
        "{{ config(materialized='incremental', unique_key='id') }}\n\
         select id, {{ var('v', 1) }} as v from generate_series(1, {{ var('n', 100) }}) id\n",
    );
    let output = weir(&project.root, &["run", "-s", "grows"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let rows = |db: &mut PostgresAdapter| -> (i64, i32, i32) {
        let values = values_of(db, "grows");
        let n = values.len() as i64;
        (n, values[0], values[values.len() - 1])
    };
    assert_eq!(rows(&mut db), (100, 1, 1));
    // The new rows reach the table through the gate: the merge stops
    // inside its insert, after the rows it replaces were deleted.
    let table: String = db
        .client()
        .query_one(
            "select format('%I.%I', n.nspname, c.relname) from pg_class c \
             join pg_namespace n on n.oid = c.relnamespace where c.relname = 'grows'",
            &[],
        )
        .unwrap()
        .get(0);
    db.client()
        .batch_execute(&format!(
            "create function public.gate_trigger() returns trigger language plpgsql as $$ \
             begin perform public.weir_gate(); return null; end $$; \
             create trigger gate before insert or update on {table} \
             for each statement execute function public.gate_trigger()"
        ))
        .unwrap();

    set_gate(&mut db, false, false);
    let child = spawn(
        &project,
        &["run", "-s", "grows", "--vars", "{v: 2, n: 150}"],
    );
    wait_until(&mut db, AT_THE_GATE, |n| n > 0, "the merge runs");
    db.client()
        .batch_execute(
            "select pg_terminate_backend(pid) from pg_stat_activity \
             where wait_event = 'PgSleep' and pid <> pg_backend_pid()",
        )
        .unwrap();
    let output = finished(child);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert_eq!(rows(&mut db), (100, 1, 1), "every old row, unchanged");

    set_gate(&mut db, true, false);
    retry_finishes(&project);
    assert_eq!(rows(&mut db), (150, 2, 2));
}

// A blue-green deploy run as separate steps (an Airflow DAG run: prepare,
// a task per node, swap) holds no connection from step to step: the deploy
// lease carries the ownership of the shadow set between them.

/// A deploy of `deploy_project` on target `blue` as an Airflow DAG run
/// makes it: each step a library call of its own, under one deploy id.
struct Steps {
    request: weir::workflow::deploy::DeployRequest,
    shadow: weir::Compiled,
    id: String,
}

fn steps(project: &TestProject, id: &str, version: u32, sleep: u32) -> Steps {
    let vars = serde_json::json!({"version": version, "sleep": sleep});
    let project_request = weir::workflow::ProjectRequest {
        project_dir: Some(project.root.clone()),
        profiles_dir: Some(project.root.clone()),
        target: Some("blue".into()),
        vars: vars.as_object().unwrap().clone(),
        ..Default::default()
    };
    let shadow = weir::workflow::ProjectRequest {
        shadow: true,
        ..project_request.clone()
    }
    .compile()
    .unwrap();
    Steps {
        request: weir::workflow::deploy::DeployRequest {
            project: project_request,
            deploy_id: Some(id.to_string()),
            ..Default::default()
        },
        shadow,
        id: id.to_string(),
    }
}

impl Steps {
    fn prepare(&self) -> weir::Result<Vec<String>> {
        weir::workflow::deploy::prepare(&self.request)
    }

    fn node(&self, name: &str) -> weir::Result<weir::NodeResult> {
        let node = self.shadow.manifest.nodes.values().find(|n| n.name == name);
        weir::workflow::node::run_node(
            &self.shadow,
            &weir::workflow::Guard::new(),
            &node.unwrap().unique_id,
            weir::workflow::node::NodeOptions {
                deploy_id: Some(self.id.clone()),
                ..Default::default()
            },
        )
    }

    /// Every node of the shadow set, each once its upstream tasks are done.
    fn build(&self) -> weir::Result<()> {
        let plan = support::plan(&self.shadow, &[]);
        let mut done = std::collections::HashSet::new();
        while done.len() < plan.tasks.len() {
            for task in &plan.tasks {
                if !done.contains(&task.unique_id) && task.upstream.iter().all(|u| done.contains(u))
                {
                    weir::workflow::node::run_node(
                        &self.shadow,
                        &weir::workflow::Guard::new(),
                        &task.unique_id,
                        weir::workflow::node::NodeOptions {
                            deploy_id: Some(self.id.clone()),
                            ..Default::default()
                        },
                    )?;
                    done.insert(task.unique_id.clone());
                }
            }
        }
        Ok(())
    }

    fn swap(&self) -> weir::Result<Vec<String>> {
        weir::workflow::deploy::swap(&self.request)
    }
}

/// The version each of the two live tables holds.
fn live_versions(db: &mut PostgresAdapter) -> (i32, i32) {
    let row = db
        .client()
        .query_one(
            "select (select v from analytics_marts.version_a), (select v from analytics.version_b)",
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

fn leases(db: &mut PostgresAdapter) -> Vec<(String, String)> {
    db.client()
        .query(
            "select schema_name, deploy_id from weir_meta.deploy_leases order by 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn lapse(db: &mut PostgresAdapter, id: &str) {
    db.client()
        .execute(
            "update weir_meta.deploy_leases set expires_at = now() - interval '1 second' \
             where deploy_id = $1",
            &[&id],
        )
        .unwrap();
}

#[test]
fn two_deploys_run_as_steps_never_build_into_one_shadow_set() {
    let project = deploy_project("rel_deploy_steps");
    project.write(
        "profiles.yml",
        "shop:\n  target: blue\n  outputs:\n    blue:\n      type: postgres\n      user: postgres\n      \
         dbname: postgres\n      schema: analytics\n      threads: 2\n",
    );
    LocalCluster::ensure_running(&project.root).unwrap();
    let mut db = superuser(&project);
    let first = steps(&project, "dag/run-1", 1, 0);
    first.prepare().unwrap();
    first.build().unwrap();
    first.swap().unwrap();
    assert_eq!(live_versions(&mut db), (1, 1));
    assert_eq!(leases(&mut db), [], "the swap ended the lease");

    // Two DAG runs deploy at once: the second is told, at its first step.
    let (a, b) = (
        steps(&project, "dag/run-2", 2, 0),
        steps(&project, "dag/run-3", 3, 0),
    );
    a.prepare().unwrap();
    let err = b.prepare().unwrap_err();
    assert_eq!(err.kind(), weir::ErrorKind::Transient, "{err}");
    assert!(
        err.message().starts_with(
            "deploy `dag/run-2` of target `blue` holds the deploy lease of schema `analytics` \
             (taken at "
        ),
        "{err}"
    );
    assert!(err.message().ends_with("Nothing was changed."), "{err}");
    assert!(
        err.hint()
            .unwrap()
            .contains("delete from weir_meta.deploy_leases where deploy_id = 'dag/run-2'"),
        "{err:?}"
    );
    a.node("version_a").unwrap();
    // The second run's node tasks and swap are refused too, before any write.
    for err in [b.node("version_b").unwrap_err(), b.swap().unwrap_err()] {
        assert_eq!(err.kind(), weir::ErrorKind::Usage, "{err}");
        assert!(
            err.message().starts_with(
                "deploy `dag/run-3` of target `blue` does not hold the deploy lease of schema \
                 `analytics` (deploy `dag/run-2` holds it)"
            ),
            "{err}"
        );
    }
    // So is a node of the shadow set built outside any deploy, and a CLI deploy.
    let err = weir::workflow::node::run_node(
        &a.shadow,
        &weir::workflow::Guard::new(),
        "model.shop.version_b",
        Default::default(),
    )
    .unwrap_err();
    assert!(
        err.message()
            .contains("`version_b` builds into `analytics__next`, a deploy's shadow set"),
        "{err}"
    );
    let output = weir(&project.root, &["deploy", "--vars", "{version: 9}"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        stderr(&output).contains("deploy `dag/run-2` of target `blue` holds the deploy lease"),
        "{}",
        both(&output)
    );
    let shadow: i32 = db
        .client()
        .query_one("select v from analytics_marts__next.version_a", &[])
        .unwrap()
        .get(0);
    assert_eq!(shadow, 2, "the shadow set is the first run's alone");

    // The first run stalls past its lease: the second takes the set over,
    // and every later step of the first writes nothing.
    lapse(&mut db, "dag/run-2");
    b.prepare().unwrap();
    for err in [a.node("version_b").unwrap_err(), a.swap().unwrap_err()] {
        assert!(
            err.message().contains(
                "does not hold the deploy lease of schema `analytics` (deploy `dag/run-3` holds it)"
            ),
            "{err}"
        );
    }
    assert_eq!(live_versions(&mut db), (1, 1));
    b.build().unwrap();
    b.swap().unwrap();
    assert_eq!(live_versions(&mut db), (3, 3), "prod holds one version");
    assert_eq!(leases(&mut db), []);

    // A node task holds the shared deploy lock while it builds: even with its
    // lease lapsed, no other deploy takes the set over under it.
    let (c, d) = (
        steps(&project, "dag/run-4", 4, 600),
        steps(&project, "dag/run-5", 5, 0),
    );
    c.prepare().unwrap();
    std::thread::scope(|scope| {
        let building = scope.spawn(|| c.node("version_b"));
        wait_until(&mut db, SLEEPING, |n| n > 0, "the node task builds");
        lapse(&mut db, "dag/run-4");
        let err = d.prepare().unwrap_err();
        assert!(
            err.message().contains(
                "another weir deploy of target `blue` is running (weir deploy blue: step of \
                 dag/run-4"
            ),
            "{err}"
        );
        db.client()
            .batch_execute(
                "select pg_cancel_backend(pid) from pg_stat_activity \
                 where query like '%pg_sleep(600)%' and pid <> pg_backend_pid()",
            )
            .unwrap();
        assert!(building.join().unwrap().is_err());
    });
    d.prepare().unwrap();
    d.build().unwrap();
    d.swap().unwrap();
    assert_eq!(live_versions(&mut db), (5, 5));
}
