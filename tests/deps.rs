//! `weir deps` against sources the test makes: a local package, a git
//! repository made with the git command line, and a package hub served by a
//! std HTTP server on 127.0.0.1 (its JSON index and .tar.gz tarballs made
//! here). No other network is used.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};
use support::cli::{both, stderr, stdout, weir};

/// A folder of its own under the system's temporary folder, emptied first.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-deps-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A dbt project named `name` at `dir`, with one model and `packages.yml`.
fn project(dir: &Path, name: &str, packages: &str) {
    write(
        &dir.join("dbt_project.yml"),
        &format!("name: {name}\nversion: '1.0'\nprofile: {name}\n"),
    );
    write(&dir.join("models/one.sql"), "select 1 as id\n");
    write(&dir.join("packages.yml"), packages);
}

/// A package project: dbt_project.yml with `extra` lines, and a macro.
fn package(dir: &Path, name: &str, extra: &str) {
    write(
        &dir.join("dbt_project.yml"),
        &format!("name: {name}\nversion: '1.0'\n{extra}"),
    );
    write(
        &dir.join(format!("macros/{name}.sql")),
        &format!("{{% macro {name}_hello() %}}'{name}'{{% endmacro %}}\n"),
    );
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "weir")
        .env("GIT_AUTHOR_EMAIL", "weir@example.invalid")
        .env("GIT_COMMITTER_NAME", "weir")
        .env("GIT_COMMITTER_EMAIL", "weir@example.invalid")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A .tar.gz of `dir`'s files under one top folder `top`, as the hub's
/// tarballs are laid out.
fn tarball(dir: &Path, top: &str) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut archive = tar::Builder::new(encoder);
    archive.append_dir_all(top, dir).unwrap();
    archive.into_inner().unwrap().finish().unwrap()
}

/// A package hub on 127.0.0.1: paths to bodies, changeable while it runs.
struct Hub {
    url: String,
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    /// Every version published, by package.
    packages: BTreeMap<String, BTreeMap<String, Json>>,
}

impl Hub {
    fn start() -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let files: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
        let served = Arc::clone(&files);
        // Serves until the test process ends; one request per connection.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if header.trim().is_empty() => break,
                        Ok(_) => {}
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body = served.lock().unwrap().get(&path).cloned();
                let (status, body) = match body {
                    Some(body) => ("200 OK", body),
                    None => ("404 Not Found", b"not found".to_vec()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Hub {
            url,
            files,
            packages: BTreeMap::new(),
        }
    }

    /// Publish `org/<name>` at `version`: its project `dir` as a tarball,
    /// with its own `packages` and `require_dbt_version` in the index.
    fn publish(&mut self, name: &str, version: &str, dir: &Path, packages: Json, requires: Json) {
        let tar_path = format!("/tarballs/{name}-{version}.tar.gz");
        let body = tarball(dir, &format!("{name}-{version}"));
        self.files.lock().unwrap().insert(tar_path.clone(), body);
        self.packages.entry(format!("org/{name}")).or_default().insert(
            version.to_string(),
            json!({
                "id": format!("org/{name}/{version}"),
                "name": name,
                "version": version,
                "packages": packages,
                "require_dbt_version": requires,
                "downloads": {"tarball": format!("{}{}", self.url.trim_end_matches('/'), tar_path)},
            }),
        );
        let mut files = self.files.lock().unwrap();
        let names: Vec<&String> = self.packages.keys().collect();
        files.insert(
            "/api/v1/index.json".into(),
            serde_json::to_vec(&names).unwrap(),
        );
        for (package, versions) in &self.packages {
            let (_, short) = package.split_once('/').unwrap();
            let latest = versions.keys().last().unwrap();
            files.insert(
                format!("/api/v1/{package}.json"),
                serde_json::to_vec(&json!({
                    "name": short, "namespace": "org", "latest": latest, "versions": versions,
                }))
                .unwrap(),
            );
        }
    }
}

/// The hub of these tests: hub_a 1.0.0, 1.2.0 (which needs hub_b
/// >=0.2.0,<0.4.0), 2.0.0 and 3.0.0 (for dbt 99 only); hub_b 0.1.0, 0.3.0, 0.5.0.
fn standard_hub(dir: &Path) -> Hub {
    let mut hub = Hub::start();
    for (name, version) in [("hub_b", "0.1.0"), ("hub_b", "0.3.0"), ("hub_b", "0.5.0")] {
        let src = dir.join(format!("src/{name}-{version}"));
        package(&src, name, &format!("# {name} {version}\n"));
        hub.publish(name, version, &src, json!([]), json!([">=1.0.0"]));
    }
    for (version, packages, requires) in [
        ("1.0.0", json!([]), json!([])),
        (
            "1.2.0",
            json!([{"package": "org/hub_b", "version": [">=0.2.0", "<0.4.0"]}]),
            json!([">=1.3.0", "<2.0.0"]),
        ),
        ("2.0.0", json!([]), json!(">=1.0.0")),
        ("3.0.0", json!([]), json!([">=99.0.0"])),
    ] {
        let src = dir.join(format!("src/hub_a-{version}"));
        package(&src, "hub_a", &format!("# hub_a {version}\n"));
        hub.publish("hub_a", version, &src, packages, requires);
    }
    hub
}

/// A git repository with two commits: `sub/` (project git_sub) changed
/// after tag v1, and `other/` (project git_other) added in the second.
/// Returns its path and both commits.
fn git_repo(dir: &Path) -> (PathBuf, String, String) {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch=main"]);
    package(&repo.join("sub"), "git_sub", "# at v1\n");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "v1"]);
    git(&repo, &["tag", "v1"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    package(&repo.join("sub"), "git_sub", "# after v1\n");
    package(&repo.join("other"), "git_other", "");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "after v1"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    (repo, first, second)
}

fn hub_env(hub: &Hub) -> [(&'static str, &str); 1] {
    [("DBT_PACKAGE_HUB_URL", hub.url.as_str())]
}

#[test]
fn installs_local_git_and_hub_packages_and_honours_the_lock() {
    let dir = scratch("install");
    let mut hub = standard_hub(&dir);
    let (repo, _, second) = git_repo(&dir);
    package(&dir.join("local_pkg"), "local_one", "");
    let root = dir.join("project");
    let packages = format!(
        "packages:\n  - local: ../local_pkg\n  - git: \"{repo}\"\n    revision: v1\n    \
         subdirectory: sub\n  - git: \"{repo}\"\n    revision: {second}\n    subdirectory: other\n  \
         - package: org/hub_a\n    version: [\">=1.0.0\", \"<2.0.0\"]\n",
        repo = repo.display()
    );
    project(&root, "proj", &packages);

    let output = weir(&root, &["deps"], &hub_env(&hub));
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let out = stdout(&output);
    for line in [
        "Installing ../local_pkg",
        "Installed from <local @ ../local_pkg>",
        &format!("Installing {}/sub", repo.display()),
        "and subdirectory sub",
        &format!("Installed from revision {second}"),
        "Installing org/hub_a",
        "Installed from version 1.2.0",
        // 3.0.0 is for dbt 99: the newest this dbt can have is 2.0.0.
        "Updated version available: 2.0.0",
        "Installing org/hub_b",
        "Installed from version 0.3.0",
        "Updating lock file in file path:",
    ] {
        assert!(out.contains(line), "no `{line}` in:\n{out}");
    }

    let installed = root.join("dbt_packages");
    let local = installed.join("local_one");
    assert!(local.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(&local).unwrap(),
        dir.join("local_pkg").canonicalize().unwrap()
    );
    // The tag's content, not the branch's newer commit.
    assert!(read(&installed.join("git_sub/dbt_project.yml")).contains("# at v1"));
    assert!(installed.join("git_other/macros/git_other.sql").is_file());
    assert!(read(&installed.join("hub_a/dbt_project.yml")).contains("# hub_a 1.2.0"));
    assert!(read(&installed.join("hub_b/dbt_project.yml")).contains("# hub_b 0.3.0"));
    let mut names: Vec<String> = std::fs::read_dir(&installed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["git_other", "git_sub", "hub_a", "hub_b", "local_one"]
    );
    // Nothing left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("weir-deps"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let lock = read(&root.join("package-lock.yml"));
    let v1 = git(&repo, &["rev-parse", "v1"]);
    let expected_start = format!(
        "packages:\n  - local: ../local_pkg\n    name: local_one\n  - git: {repo}\n    name: git_sub\n    \
         revision: {v1}\n    subdirectory: sub\n  - git: {repo}\n    name: git_other\n    revision: {second}\n    \
         subdirectory: other\n  - name: hub_a\n    package: org/hub_a\n    version: 1.2.0\n  - name: hub_b\n    \
         package: org/hub_b\n    version: 0.3.0\nsha1_hash: ",
        repo = repo.display()
    );
    assert!(lock.starts_with(&expected_start), "{lock}");

    // The project and its packages load.
    let output = weir(&root, &["ls", "--output", "name"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));

    // A newer hub_a in range is published: the unchanged packages.yml
    // installs the lock again...
    let src = dir.join("src/hub_a-1.3.0");
    package(&src, "hub_a", "# hub_a 1.3.0\n");
    hub.publish("hub_a", "1.3.0", &src, json!([]), json!([]));
    let output = weir(&root, &["deps"], &hub_env(&hub));
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        !stdout(&output).contains("Updating lock file"),
        "{}",
        stdout(&output)
    );
    assert!(read(&installed.join("hub_a/dbt_project.yml")).contains("# hub_a 1.2.0"));
    assert_eq!(read(&root.join("package-lock.yml")), lock);

    // ... and --upgrade resolves again: 1.3.0 needs no hub_b.
    let output = weir(&root, &["deps", "--upgrade"], &hub_env(&hub));
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(read(&installed.join("hub_a/dbt_project.yml")).contains("# hub_a 1.3.0"));
    assert!(!installed.join("hub_b").exists());
    let upgraded = read(&root.join("package-lock.yml"));
    assert!(
        upgraded.contains("version: 1.3.0") && !upgraded.contains("hub_b"),
        "{upgraded}"
    );

    // A changed packages.yml is resolved again too; --lock writes the lock only.
    write(
        &root.join("packages.yml"),
        "packages:\n  - package: org/hub_a\n    version: 1.0.0\n",
    );
    let output = weir(&root, &["deps", "--lock"], &hub_env(&hub));
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(read(&root.join("package-lock.yml")).contains("version: 1.0.0"));
    assert!(read(&installed.join("hub_a/dbt_project.yml")).contains("# hub_a 1.3.0"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_version_conflict_names_both_requirers_and_changes_nothing() {
    let dir = scratch("conflict");
    let hub = standard_hub(&dir);
    let root = dir.join("project");
    project(
        &root,
        "proj",
        "packages:\n  - package: org/hub_a\n    version: [\">=1.2.0\", \"<2.0.0\"]\n  \
         - package: org/hub_b\n    version: \">=0.5.0\"\n",
    );
    package(&root.join("dbt_packages/kept"), "kept", "");
    let output = weir(&root, &["deps"], &hub_env(&hub));
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    let err = stderr(&output);
    assert!(
        err.contains("no version of org/hub_b satisfies every requirement"),
        "{err}"
    );
    assert!(err.contains("`>=0.5.0` by packages.yml (line 4)"), "{err}");
    assert!(
        err.contains("`>=0.2.0, <0.4.0` by org/hub_a 1.2.0"),
        "{err}"
    );
    assert!(err.contains("packages.yml:4"), "{err}");
    assert!(root.join("dbt_packages/kept/dbt_project.yml").is_file());
    assert!(!root.join("package-lock.yml").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn require_dbt_version_is_checked() {
    let dir = scratch("require");
    package(
        &dir.join("future"),
        "future",
        "require-dbt-version: [\">=1.0.0\", \">=99.0.0\"]\n",
    );
    let root = dir.join("project");
    project(&root, "proj", "packages:\n  - local: ../future\n");
    let output = weir(&root, &["deps"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    let err = stderr(&output);
    assert!(err.contains("the package ../future"), "{err}");
    assert!(
        err.contains(
            "require-dbt-version: [\">=1.0.0\", \">=99.0.0\"]` in its dbt_project.yml (line 3)"
        ),
        "{err}"
    );
    assert!(err.contains("leaves out dbt 1.11.0"), "{err}");
    assert!(!root.join("dbt_packages").exists());

    let output = weir(&root, &["deps", "--no-version-check"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(root.join("dbt_packages/future/dbt_project.yml").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreachable_hub_leaves_dbt_packages_as_it_was() {
    let dir = scratch("offline");
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", listener.local_addr().unwrap())
    };
    let root = dir.join("project");
    project(
        &root,
        "proj",
        "packages:\n  - package: org/hub_a\n    version: 1.0.0\n",
    );
    package(
        &root.join("dbt_packages/hub_a"),
        "hub_a",
        "# installed before\n",
    );
    let output = weir(&root, &["deps"], &[("DBT_PACKAGE_HUB_URL", &closed)]);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "could not download the package index of {closed} from {closed}api/v1/index.json"
        )),
        "{err}"
    );
    assert!(err.contains("DBT_PACKAGE_HUB_URL"), "{err}");
    assert!(err.contains("packages.yml:2"), "{err}");
    assert!(read(&root.join("dbt_packages/hub_a/dbt_project.yml")).contains("# installed before"));
    let names: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("weir-deps")), "{names:?}");
    assert!(!names.contains(&"package-lock.yml".to_string()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_package_says_to_run_weir_deps() {
    let dir = scratch("missing");
    package(&dir.join("local_pkg"), "local_one", "");
    let root = dir.join("project");
    project(
        &root,
        "proj",
        "packages:\n  - local: ../local_pkg\n  - package: org/hub_a\n    version: 1.0.0\n",
    );
    let output = weir(&root, &["ls"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    let err = stderr(&output);
    assert!(
        err.contains("packages.yml:2: package `../local_pkg` is listed here but not installed"),
        "{err}"
    );
    assert!(err.contains("(as `local_one`)"), "{err}");
    assert!(err.contains("run `weir deps`"), "{err}");

    // With the local package installed, the hub package (its name unknown
    // without a lock) is still missing: dbt's count.
    package(&root.join("dbt_packages/local_one"), "local_one", "");
    let err = stderr(&weir(&root, &["ls"], &[]));
    assert!(
        err.contains("packages.yml:3: package `org/hub_a` is listed here but not installed"),
        "{err}"
    );
    assert!(err.contains("2 listed, 1 installed"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn packages_in_both_files_are_refused() {
    let dir = scratch("both");
    let root = dir.join("project");
    project(&root, "proj", "packages:\n  - local: ../a\n");
    write(
        &root.join("dependencies.yml"),
        "packages:\n  - local: ../b\n",
    );
    let output = weir(&root, &["deps"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        stderr(&output).contains("cannot be in both packages.yml and dependencies.yml"),
        "{}",
        stderr(&output)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_git_package_on_its_default_branch_is_installed_with_a_warning() {
    let dir = scratch("unpinned");
    let (repo, _, second) = git_repo(&dir);
    let root = dir.join("project");
    project(
        &root,
        "proj",
        &format!(
            "packages:\n  - git: \"{repo}\"\n    subdirectory: sub\n  - git: \"{repo}\"\n    \
             subdirectory: other\n    warn-unpinned: false\n",
            repo = repo.display()
        ),
    );
    let output = weir(&root, &["deps"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let out = stdout(&output);
    let warning = format!(
        "[WARNING]: The git package \"{}/sub\" is pinned to the \"HEAD\" branch",
        repo.display()
    );
    assert!(out.contains(&warning), "{out}");
    assert_eq!(out.matches("[WARNING]").count(), 1, "{out}");
    // The branch's newest commit.
    assert!(read(&root.join("dbt_packages/git_sub/dbt_project.yml")).contains("# after v1"));
    assert!(read(&root.join("package-lock.yml")).contains(&format!("revision: {second}")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn add_package_writes_packages_yml_then_installs() {
    let dir = scratch("add");
    let hub = standard_hub(&dir);
    package(&dir.join("local_pkg"), "local_one", "");
    let root = dir.join("project");
    project(
        &root,
        "proj",
        "packages:\n  # pinned for now\n  - local: ../local_pkg\n  - package: org/hub_a\n    version: 1.0.0\n",
    );
    let output = weir(
        &root,
        &["deps", "--add-package", "org/hub_a"],
        &hub_env(&hub),
    );
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    assert!(
        stderr(&output).contains("needs a version"),
        "{}",
        stderr(&output)
    );

    let output = weir(
        &root,
        &["deps", "--add-package", "org/hub_a@>=1.1.0,<3.0.0"],
        &hub_env(&hub),
    );
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(stdout(&output).contains("Added new package org/hub_a@>=1.1.0,<3.0.0"));
    // The old entry of hub_a is replaced; the file is written as dbt writes it.
    assert_eq!(
        read(&root.join("packages.yml")),
        "packages:\n  - local: ../local_pkg\n  - package: org/hub_a\n    version:\n      - '>=1.1.0'\n      - <3.0.0\n"
    );
    assert!(read(&root.join("dbt_packages/hub_a/dbt_project.yml")).contains("# hub_a 2.0.0"));
    assert!(root.join("dbt_packages/local_one").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tarball_package_is_downloaded_and_named_by_its_entry() {
    let dir = scratch("tarball");
    let hub = standard_hub(&dir);
    let root = dir.join("project");
    let url = format!("{}tarballs/hub_b-0.3.0.tar.gz", hub.url);
    project(
        &root,
        "proj",
        &format!("packages:\n  - tarball: {url}\n    name: hub_b\n"),
    );
    let output = weir(&root, &["ls"], &[]);
    assert!(
        stderr(&output).contains("package `") && stderr(&output).contains("(as `hub_b`)"),
        "{}",
        both(&output)
    );
    let output = weir(&root, &["deps"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(read(&root.join("dbt_packages/hub_b/dbt_project.yml")).contains("# hub_b 0.3.0"));
    assert_eq!(
        read(&root.join("package-lock.yml"))
            .lines()
            .take(3)
            .collect::<Vec<_>>(),
        [
            "packages:",
            "  - name: hub_b",
            &format!("    tarball: {url}")
        ]
    );
    let output = weir(&root, &["ls"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn env_var_in_packages_yml_is_rendered_and_the_lock_keeps_it_unrendered() {
    let dir = scratch("env_var");
    let (repo, first, _) = git_repo(&dir);
    let root = dir.join("project");
    project(
        &root,
        "proj",
        "packages:\n  - git: \"{{ env_var('WEIR_TEST_REPO') }}\"\n    revision: v1\n    subdirectory: sub\n",
    );
    let repo_text = repo.display().to_string();
    let output = weir(&root, &["deps"], &[("WEIR_TEST_REPO", &repo_text)]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(read(&root.join("dbt_packages/git_sub/dbt_project.yml")).contains("# at v1"));
    let lock = read(&root.join("package-lock.yml"));
    assert!(
        lock.starts_with(&format!(
            "packages:\n  - git: '{{{{ env_var(''WEIR_TEST_REPO'') }}}}'\n    name: git_sub\n    revision: {first}\n"
        )),
        "{lock}"
    );
    // The lock is honoured on the next run, its template rendered again.
    let output = weir(&root, &["deps"], &[("WEIR_TEST_REPO", &repo_text)]);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        !stdout(&output).contains("Updating lock file"),
        "{}",
        stdout(&output)
    );
    assert!(root.join("dbt_packages/git_sub").is_dir());
    let _ = std::fs::remove_dir_all(&dir);
}
