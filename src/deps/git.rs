//! Git packages through the git command line: a clone checked out at the
//! requested revision (a commit, a tag or a branch; the default branch when
//! none), and the commit it landed on, which the lock pins.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, ErrorKind, Result};

/// A full commit id: checked out after a whole clone, since a shallow clone
/// fetches only branches and tags.
pub fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Clone `url` into `dest` at `revision` and return the commit checked out.
/// `shown` is the URL as the user wrote it (it may hide a token that `url`
/// holds), used in every message.
pub fn clone_at(url: &str, shown: &str, revision: Option<&str>, dest: &Path) -> Result<String> {
    let dest_text = dest.to_string_lossy().into_owned();
    match revision {
        Some(commit) if is_commit(commit) => {
            run(
                &["clone", "--quiet", "--no-checkout", url, &dest_text],
                None,
                url,
                shown,
            )?;
            run(
                &["checkout", "--quiet", "--detach", commit],
                Some(dest),
                url,
                shown,
            )?;
        }
        Some(branch_or_tag) => {
            run(
                &[
                    "clone",
                    "--quiet",
                    "--depth",
                    "1",
                    "--branch",
                    branch_or_tag,
                    url,
                    &dest_text,
                ],
                None,
                url,
                shown,
            )?;
        }
        None => {
            run(
                &["clone", "--quiet", "--depth", "1", url, &dest_text],
                None,
                url,
                shown,
            )?;
        }
    }
    let sha = run(&["rev-parse", "HEAD"], Some(dest), url, shown)?;
    Ok(sha.trim().to_string())
}

fn run(args: &[&str], dir: Option<&Path>, url: &str, shown: &str) -> Result<String> {
    let mut command = Command::new("git");
    command
        .args(args)
        .env("LC_ALL", "C")
        // Never wait on a password prompt: a private repository needs its
        // credentials in the URL (from an env var) or a credential helper.
        .env("GIT_TERMINAL_PROMPT", "0");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot run git to install the package {shown}: {e}"),
        )
        .with_hint("git packages need the git command line installed and on PATH")
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).replace(url, shown);
        let detail = stderr
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with("warning:"))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::new(
            ErrorKind::Io,
            format!("`git {}` failed for {shown}: {detail}", args[0]),
        )
        .with_hint("check the URL and the `revision:` (a branch, a tag or a full commit id)"));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
