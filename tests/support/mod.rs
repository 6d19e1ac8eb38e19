//! Shared helpers for the integration tests: a private copy of an example
//! project whose throwaway local cluster stops on drop, profiles for every
//! target, and the `weir` binary run in a controlled environment ([`cli`]).

#![allow(dead_code)] // each test binary uses its own subset

pub mod cli;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use weir::{
    CompileOptions, Compiled, LocalCluster, Plan, PostgresAdapter, Relation, RetryPolicy, Selection,
};

/// A copy of `dags/dbt/<example>` in its own folder. Dropping it (also while
/// a test panics) stops its cluster and deletes its files.
pub struct TestProject {
    pub root: PathBuf,
    /// The folder created for this project; removed on drop.
    holder: PathBuf,
}

impl TestProject {
    /// A fresh copy of an example project under the target directory.
    pub fn copy_of(example: &str, test_name: &str) -> TestProject {
        TestProject::create(example, test_name, 0o755)
    }

    /// A copy inside a folder only its owner may enter (like /root), which the
    /// `postgres` OS user cannot traverse.
    pub fn copy_in_private_dir(example: &str, test_name: &str) -> TestProject {
        TestProject::create(example, test_name, 0o700)
    }

    fn create(example: &str, test_name: &str, mode: u32) -> TestProject {
        let holder = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("weir-tests")
            .join(format!("{test_name}-{}", std::process::id()));
        if holder.exists() {
            stop_and_remove(&holder.join(example));
            fs::remove_dir_all(&holder).unwrap();
        }
        fs::create_dir_all(&holder).unwrap();
        fs::set_permissions(&holder, fs::Permissions::from_mode(mode)).unwrap();
        let root = holder.join(example);
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("dags/dbt")
            .join(example);
        copy_project(&source, &root);
        TestProject { root, holder }
    }

    /// Write (or overwrite) a file of the project.
    pub fn write(&self, relative: &str, text: &str) {
        let path = self.root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Add `text` at the end of a file of the project (`dbt_project.yml`).
    pub fn append(&self, relative: &str, text: &str) {
        let before = fs::read_to_string(self.root.join(relative)).unwrap();
        self.write(relative, &format!("{before}\n{text}"));
    }

    /// The project compiled for its default target (`dev`: embedded).
    pub fn compile(&self) -> Compiled {
        Compiled::load(&CompileOptions {
            project_dir: self.root.clone(),
            profiles_dir: Some(self.root.clone()),
            ..Default::default()
        })
        .unwrap()
    }

    /// A new connection to the project's cluster, started if need be.
    pub fn connect(&self, compiled: &Compiled) -> PostgresAdapter {
        weir::connect(&compiled.target, &compiled.project.root).unwrap()
    }
}

impl Drop for TestProject {
    fn drop(&mut self) {
        stop_and_remove(&self.root);
        let _ = fs::remove_dir_all(&self.holder);
    }
}

/// Stop a project's cluster and delete its data, wherever it is kept.
fn stop_and_remove(root: &Path) {
    if let Err(err) = LocalCluster::destroy(root) {
        eprintln!(
            "could not remove the test cluster of {}: {err}",
            root.display()
        );
    }
}

/// Copy a project, leaving out what running it produced (.weir, target).
fn copy_project(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".weir" || name == "target" || name == "logs" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_project(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The plan of a selection (`[]` for everything) with the target's retry policy.
pub fn plan(compiled: &Compiled, select: &[&str]) -> Plan {
    let selection = Selection {
        select: select.iter().map(|s| s.to_string()).collect(),
        ..Selection::default()
    };
    let policy = RetryPolicy::for_target(&compiled.target.name);
    Plan::build(&compiled.manifest, &selection, &policy).unwrap()
}

/// The relation a node of the project was built as.
pub fn relation(compiled: &Compiled, name: &str) -> Relation {
    compiled
        .manifest
        .nodes
        .values()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node named {name}"))
        .relation
        .clone()
}

pub fn count(db: &mut PostgresAdapter, relation: &Relation) -> i64 {
    db.client()
        .query_one(&format!("select count(*) from {relation}"), &[])
        .unwrap()
        .get(0)
}

/// Every table and view in `schema`, sorted.
pub fn relations_in(db: &mut PostgresAdapter, schema: &str) -> Vec<String> {
    db.client()
        .query(
            "select table_name::text from information_schema.tables \
             where table_schema = $1 order by 1",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// profiles.yml for the shop project where every target runs on the
/// project's embedded cluster: dev, ci, staging and prod, all with schema
/// `analytics`, and `extra` appended to each target's settings.
pub fn embedded_profiles(extra: &str) -> String {
    let mut out = String::from("shop:\n  target: dev\n  outputs:\n");
    for name in ["dev", "ci", "staging", "prod"] {
        out.push_str(&format!(
            "    {name}:\n      type: postgres\n      user: postgres\n      dbname: postgres\n      schema: analytics\n      threads: 4\n"
        ));
        for line in extra.lines().filter(|l| !l.trim().is_empty()) {
            out.push_str(&format!("      {}\n", line.trim()));
        }
    }
    out
}

/// Switch the shop project's dbt_project.yml to the prefix convention.
pub fn with_prefix_convention(dbt_project: &str) -> String {
    dbt_project.replace("vars:\n", "vars:\n  weir:\n    schema_naming: prefix\n")
}
