//! The compile cache: a compile is reused only while nothing it read has
//! changed, and a reused compile is the compile it replaces.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value as Json, json};
use weir::{Manifest, Project, Target, parse_target};

const PROFILES: &str = "
test:
  target: dev
  outputs:
    dev: {type: postgres, schema: dev_alice, threads: 2}
    prod: {type: postgres, host: db.internal, dbname: warehouse, schema: analytics}
";

fn target(name: &str) -> Target {
    parse_target(PROFILES, Path::new("profiles.yml"), "test", Some(name)).unwrap()
}

/// A copy of `tests/fixtures/<fixture>` (without its target/) of its own.
fn copy_fixture(fixture: &str, test: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("weir-cache-tests")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(fixture),
        &root,
    );
    root
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() != "target" {
                copy_dir(&path, &to.join(entry.file_name()));
            }
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

fn compile_with(root: &Path, target_name: &str, vars: &Map<String, Json>) -> Manifest {
    let project = Project::load(root).unwrap();
    weir::compile(&project, &target(target_name), vars).unwrap()
}

fn compile(root: &Path) -> Manifest {
    compile_with(root, "dev", &Map::new())
}

/// The manifest without what differs between any two compiles.
fn comparable(mut manifest: Manifest) -> Manifest {
    manifest.metadata.invocation_id.clear();
    manifest.metadata.generated_at.clear();
    manifest.metadata.reused = false;
    manifest
}

#[test]
fn a_reused_compile_is_the_compile_it_replaces() {
    for fixture in ["features", "packages", "run_parity", "schema_override"] {
        let root = copy_fixture(fixture, &format!("equal_{fixture}"));
        let fresh = compile(&root);
        assert!(!fresh.metadata.reused, "{fixture}: nothing to reuse yet");
        let reused = compile(&root);
        assert!(reused.metadata.reused, "{fixture}: not reused");
        assert_ne!(reused.metadata.invocation_id, fresh.metadata.invocation_id);
        assert_eq!(comparable(reused), comparable(fresh), "{fixture}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}

#[test]
fn any_changed_input_compiles_again() {
    let root = copy_fixture("features", "changes");
    let first = compile(&root);
    assert!(compile(&root).metadata.reused);

    // A model's text.
    let model = first
        .nodes
        .values()
        .find(|n| n.resource_type == weir::ResourceType::Model && n.package_name == "features")
        .unwrap();
    let path = root.join(&model.original_file_path);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n-- edited")).unwrap();
    let edited = compile(&root);
    assert!(!edited.metadata.reused);
    assert!(
        edited.nodes[&model.unique_id]
            .raw_code
            .ends_with("-- edited")
    );
    assert!(compile(&root).metadata.reused);

    // A new file, vars, another target: each compiles again, then is reused.
    std::fs::write(root.join("models/added_by_test.sql"), "select 1 as id").unwrap();
    let added = compile(&root);
    assert!(!added.metadata.reused);
    assert!(added.nodes.contains_key("model.features.added_by_test"));
    let vars: Map<String, Json> = [("unused_by_the_project".to_string(), json!(1))]
        .into_iter()
        .collect();
    assert!(!compile_with(&root, "dev", &vars).metadata.reused);
    assert!(compile_with(&root, "dev", &vars).metadata.reused);
    assert!(!compile_with(&root, "prod", &Map::new()).metadata.reused);
    assert!(compile_with(&root, "prod", &Map::new()).metadata.reused);
    // Each target keeps its own (the last): dev's is still there.
    assert!(compile_with(&root, "dev", &vars).metadata.reused);
    std::fs::remove_dir_all(&root).unwrap();
}

/// The CLI, with an environment of the test's choosing.
fn weir(root: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let project_yml = std::fs::read_to_string(root.join("dbt_project.yml")).unwrap();
    let profile = project_yml
        .lines()
        .find_map(|line| line.strip_prefix("profile:"))
        .unwrap()
        .trim();
    let profiles = root.join("profiles_for_test");
    std::fs::create_dir_all(&profiles).unwrap();
    let text = PROFILES.replacen("test:", &format!("{profile}:"), 1);
    std::fs::write(profiles.join("profiles.yml"), text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .arg("--project-dir")
        .arg(root)
        .arg("--profiles-dir")
        .arg(&profiles)
        .envs(env.iter().copied())
        .env_remove("WEIR_NO_COMPILE_CACHE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn reused(stdout: &str) -> bool {
    stdout.contains("(reused: no input changed)")
}

/// A one-model project whose model is `sql`.
fn one_model_project(test: &str, sql: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("weir-cache-tests")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("models")).unwrap();
    std::fs::write(
        root.join("dbt_project.yml"),
        "name: test\nprofile: test\nconfig-version: 2\n",
    )
    .unwrap();
    std::fs::write(root.join("models/only.sql"), sql).unwrap();
    root
}

fn compiled_sql(root: &Path) -> String {
    std::fs::read_to_string(root.join("target/compiled/test/models/only.sql")).unwrap()
}

#[test]
fn an_environment_variable_a_model_read_is_checked() {
    let root = one_model_project(
        "env",
        "select '{{ env_var('WEIR_TEST_COLOUR', 'none') }}' as c",
    );
    let red = [("WEIR_TEST_COLOUR", "red")];
    assert!(!reused(&weir(&root, &red, &["compile"])));
    assert!(reused(&weir(&root, &red, &["compile"])));
    assert!(compiled_sql(&root).contains("'red'"));
    let blue = [("WEIR_TEST_COLOUR", "blue")];
    assert!(!reused(&weir(&root, &blue, &["compile"])));
    assert!(compiled_sql(&root).contains("'blue'"));
    // Unset is a value too: the default.
    assert!(!reused(&weir(&root, &[], &["compile"])));
    assert!(compiled_sql(&root).contains("'none'"));
    // The cache holds no value of the variable, only a digest.
    let cache = std::fs::read(root.join("target/weir_cache/compile-dev.bin")).unwrap();
    assert!(
        cache.windows(4).any(|w| w == b"none"),
        "the compiled SQL is kept"
    );
    assert!(!cache.windows(4).any(|w| w == b"blue"));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn what_differs_on_every_run_is_never_reused() {
    for (name, sql) in [
        ("invocation", "select '{{ invocation_id }}' as run"),
        ("started", "select '{{ run_started_at }}' as run"),
        (
            "now",
            "select '{{ modules.datetime.datetime.now() }}' as run",
        ),
        ("print", "{% do print('hello') %}select 1 as one"),
    ] {
        let root = one_model_project(name, sql);
        for _ in 0..2 {
            assert!(!reused(&weir(&root, &[], &["compile"])), "{name}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}

#[test]
fn a_reused_compile_rewrites_only_the_manifest_metadata() {
    let root = copy_fixture("features", "manifest");
    let compile_args = ["compile"];
    let read = |root: &Path| -> Json {
        serde_json::from_str(&std::fs::read_to_string(root.join("target/manifest.json")).unwrap())
            .unwrap()
    };
    let without_metadata = |mut manifest: Json| {
        manifest.as_object_mut().unwrap().remove("metadata");
        manifest
    };
    assert!(!reused(&weir(&root, &[], &compile_args)));
    let fresh = read(&root);
    assert!(reused(&weir(&root, &[], &compile_args)));
    let patched = read(&root);
    for field in ["invocation_id", "generated_at"] {
        assert_ne!(
            patched["metadata"][field], fresh["metadata"][field],
            "{field}"
        );
    }
    assert_eq!(
        without_metadata(patched.clone()),
        without_metadata(fresh.clone())
    );

    // A manifest changed behind weir's back is written whole again.
    std::fs::write(root.join("target/manifest.json"), "{}").unwrap();
    assert!(reused(&weir(&root, &[], &compile_args)));
    assert_eq!(without_metadata(read(&root)), without_metadata(fresh));
    std::fs::remove_dir_all(&root).unwrap();
}
