//! Secrets never leave weir: after runs that use a profiles.yml password and
//! `DBT_ENV_SECRET_*` values (one even written in a model's SQL), neither
//! stdout, stderr, manifest.json, run_results.json, the compiled SQL files,
//! the compile cache nor logs/dbt.log hold them.

mod support;

use std::path::Path;

use support::TestProject;
use support::cli::{both, stderr, stdout, weir};
use weir::LocalCluster;

const PASSWORD: &str = "pw-Hunter2-0xC0FFEE";
const TOKEN: &str = "tok-Sw0rdf1sh-1337";
const ENV: [(&str, &str); 2] = [
    ("DBT_ENV_SECRET_PG_PASSWORD", PASSWORD),
    ("DBT_ENV_SECRET_API_TOKEN", TOKEN),
];

/// Every file under `dir` (recursively) with its text.
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            out.push((path.display().to_string(), text));
        }
    }
    out
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [PASSWORD, TOKEN] {
        assert!(!text.contains(secret), "{what} holds a secret:\n{text}");
    }
}

#[test]
fn no_secret_reaches_output_artifacts_or_compiled_files() {
    let project = TestProject::copy_of("shop", "secrets");
    // A target with a `host` (the cluster's socket, where it asks no
    // password) and a password, which hands a secret token to models.
    let cluster = LocalCluster::ensure_running(&project.root).unwrap();
    let (host, port) = (cluster.socket_dir().display(), cluster.port());
    project.write(
        "profiles.yml",
        &format!(
            "shop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: {host}\n      \
             port: {port}\n      user: postgres\n      password: \"{{{{ env_var('DBT_ENV_SECRET_PG_PASSWORD') }}}}\"\n      \
             dbname: postgres\n      schema: dev\n      threads: 2\n      \
             api_token: \"{{{{ env_var('DBT_ENV_SECRET_API_TOKEN') }}}}\"\n    \
             literal:\n      type: postgres\n      host: {host}\n      port: {port}\n      user: postgres\n      \
             password: {PASSWORD}\n      dbname: postgres\n      schema: dev_literal\n      threads: 2\n"
        ),
    );
    // One model carries the token in its SQL; one fails with it in the
    // error. (Through `target.api_token` a model may not read it at all:
    // tests/reliability_guard.rs.)
    project.write(
        "models/uses_token.sql",
        &format!("select '{TOKEN}' as token\n"),
    );
    project.write(
        "models/fails_with_token.sql",
        &format!("select '{TOKEN}'::integer as token\n"),
    );

    let mut outputs = Vec::new();
    for args in [
        &["build"][..],
        &["build", "--target", "literal"],
        &["compile"],
        &["ls", "--output", "json"],
        &["debug"],
    ] {
        let output = weir(&project.root, args, &ENV);
        outputs.push((args.join(" "), both(&output), output.status.code()));
    }
    assert_eq!(
        outputs[0].2,
        Some(1),
        "the failing model fails: {}",
        outputs[0].1
    );
    assert!(
        outputs[0].1.contains("invalid input syntax"),
        "{}",
        outputs[0].1
    );
    assert!(
        outputs[0].1.contains("*****"),
        "masked, not dropped: {}",
        outputs[0].1
    );
    assert_eq!(outputs[4].2, Some(0), "{}", outputs[4].1);
    for (command, text, _) in &outputs {
        assert_no_secret(&format!("output of `weir {command}`"), text);
    }
    let mut artifacts = files_under(&project.root.join("target"));
    artifacts.extend(files_under(&project.root.join("logs")));
    assert!(artifacts.iter().any(|(p, _)| p.ends_with("manifest.json")));

    assert!(
        artifacts
            .iter()
            .any(|(p, _)| p.ends_with("run_results.json"))
    );
    assert!(artifacts.iter().any(|(p, _)| p.ends_with("uses_token.sql")));
    for (path, text) in &artifacts {
        assert_no_secret(path, text);
    }
    // A model that logs the token (a compile that logs is never cached).
    project.write(
        "models/logs_token.sql",
        &format!("{{{{ log('the token is {TOKEN}', info=True) }}}}\nselect 1 as id\n"),
    );
    let output = weir(&project.root, &["run", "-s", "logs_token"], &ENV);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        stdout(&output).contains("the token is *****"),
        "{}",
        both(&output)
    );
    assert_no_secret("output of `weir run -s logs_token`", &both(&output));
    let log = std::fs::read_to_string(project.root.join("logs/dbt.log")).unwrap();
    assert!(log.contains("the token is *****"), "{log}");
    // A compile holding a secret's value is never cached; without those
    // models the compile is, and its cache holds the profile's target.
    for model in ["uses_token", "fails_with_token", "logs_token"] {
        std::fs::remove_file(project.root.join(format!("models/{model}.sql"))).unwrap();
    }
    let output = weir(&project.root, &["compile"], &ENV);
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        files_under(&project.root.join("target"))
            .iter()
            .any(|(p, _)| p.contains("/weir_cache/")),
        "the compile cache is checked too"
    );
    for (path, text) in files_under(&project.root.join("logs"))
        .into_iter()
        .chain(files_under(&project.root.join("target")))
    {
        assert_no_secret(&path, &text);
    }

    // The model itself ran with the real value: only what weir writes is masked.
    let target = weir::Target::embedded_default("shop", None);
    let mut db = weir::connect(&target, &project.root).unwrap();
    let token: String = db
        .client()
        .query_one("select token from dev.uses_token", &[])
        .unwrap()
        .get(0);
    assert_eq!(token, TOKEN);
}

#[test]
fn models_may_not_read_secret_env_vars() {
    let project = TestProject::copy_of("shop", "secrets_env_var");
    project.write(
        "models/reads_secret.sql",
        "select '{{ env_var(\"DBT_ENV_SECRET_API_TOKEN\") }}' as token\n",
    );
    let output = weir(&project.root, &["compile"], &ENV);
    assert_eq!(output.status.code(), Some(2), "{}", both(&output));
    let err = stderr(&output);
    assert!(err.contains("models/reads_secret.sql:1:"), "{err}");
    assert!(
        err.contains("env var `DBT_ENV_SECRET_API_TOKEN` is a secret"),
        "{err}"
    );
    assert_no_secret("stderr", &both(&output));
}
