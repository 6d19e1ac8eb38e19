//! dbt's logs: the lines a command prints (`HH:MM:SS  message`, or one JSON
//! object per line with `--log-format json`) and the project's debug log
//! file, `<log-path>/dbt.log`, where `{{ log(msg) }}` writes.

pub mod progress;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use serde_json::{Value as Json, json};

/// `--log-format json`, for the whole process.
static JSON: AtomicBool = AtomicBool::new(false);
/// Log lines go to stderr: the command's stdout is data (`weir ls`).
static TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Print log lines as JSON objects (`--log-format json`) or as text.
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

pub fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Send log lines to stderr, for a command whose stdout is data.
pub fn to_stderr() {
    TO_STDERR.store(true, Ordering::Relaxed);
}

/// Print one line of a command: `HH:MM:SS  message` as dbt does, or a JSON
/// object in dbt's shape (`info` with name, msg, level, ts; `data`).
pub fn emit(name: &str, message: &str, data: Json) {
    let now = SystemTime::now();
    let text = if is_json() {
        if message.is_empty() {
            return;
        }
        let level = if name.contains("Error") {
            "error"
        } else if matches!(
            name,
            "NothingToDo" | "NoNodesForSelectionCriteria" | "TargetUnreadable"
        ) {
            "warn"
        } else {
            "info"
        };
        let line = json!({
            "info": {
                "name": name,
                "msg": message,
                "level": level,
                "ts": crate::base::clock::rfc3339(now),
                "invocation_id": Json::Null,
            },
            "data": data,
        });
        format!("{line}\n")
    } else {
        timestamped(message, now)
    };
    if TO_STDERR.load(Ordering::Relaxed) {
        eprint!("{text}");
    } else {
        progress::print(&text);
    }
}

/// `message` as dbt prints a log line: each line after `HH:MM:SS  `.
pub fn timestamped(message: &str, now: SystemTime) -> String {
    let ts = crate::base::clock::rfc3339(now);
    // `2026-11-21T08:19:00.123456Z` -> `08:19:00`
    let time = ts.get(11..19).unwrap_or("");
    let mut text = String::new();
    for line in message.lines() {
        if !line.is_empty() {
            text.push_str(time);
            text.push_str("  ");
            text.push_str(line);
        }
        text.push('\n');
    }
    if text.is_empty() {
        text.push('\n');
    }
    text
}

/// A project's `dbt.log`, opened (for appending) when a first line comes,
/// under a header naming the invocation as dbt's does.
#[derive(Debug)]
pub struct DebugLog {
    path: PathBuf,
    invocation_id: String,
    /// None until the first line; then the file, or the error that stopped it
    /// (reported once: a log that cannot be written must not fail a compile).
    file: Mutex<Option<Option<File>>>,
}

impl DebugLog {
    /// `<dir>/dbt.log`; nothing is created until a line is written.
    pub fn new(dir: &Path, invocation_id: &str) -> DebugLog {
        DebugLog {
            path: dir.join("dbt.log"),
            invocation_id: invocation_id.to_string(),
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `message` at `level` (`debug`, `info`), each line as dbt writes it:
    /// `HH:MM:SS.ffffff [level] [thread]: line`.
    pub fn write(&self, level: &str, message: &str) {
        let now = crate::base::clock::rfc3339(SystemTime::now());
        let time = now.get(11..26).unwrap_or("");
        let mut slot = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let file = slot.get_or_insert_with(|| self.open(time));
        let Some(file) = file else { return };
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("Thread");
        let mut text = String::new();
        for line in message.lines() {
            text.push_str(&format!("{time} [{level:<5}] [{thread}]: {line}\n"));
        }
        if let Err(err) = file.write_all(text.as_bytes()) {
            eprintln!(
                "warning: {}: {err}; no more lines go there",
                self.path.display()
            );
            *slot = Some(None);
        }
    }

    fn open(&self, time: &str) -> Option<File> {
        let opened = self
            .path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| File::options().create(true).append(true).open(&self.path))
            .and_then(|mut file| {
                let rule = "=".repeat(30);
                writeln!(file, "\n{rule} {time} | {} {rule}", self.invocation_id)?;
                Ok(file)
            });
        match opened {
            Ok(file) => Some(file),
            Err(err) => {
                eprintln!(
                    "warning: cannot write the debug log {}: {err}",
                    self.path.display()
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_carry_the_time_of_day() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(8 * 3600 + 19 * 60);
        assert_eq!(timestamped("a\n\nb", at), "08:19:00  a\n\n08:19:00  b\n");
        assert_eq!(timestamped("", at), "\n");
    }

    #[test]
    fn the_debug_log_appends_under_a_header_per_invocation() {
        let dir = std::env::temp_dir().join(format!("weir-debug-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = DebugLog::new(&dir.join("logs"), "inv-1");
        first.write("debug", "one\ntwo");
        DebugLog::new(&dir.join("logs"), "inv-2").write("info", "three");
        let text = std::fs::read_to_string(first.path()).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("=====") && lines[0].contains("| inv-1 ="));
        assert!(lines[1].ends_with(": one") && lines[1].contains(" [debug] ["));
        assert!(lines[2].ends_with(": two"));
        assert!(lines[3].contains("| inv-2 ="));
        assert!(lines[4].ends_with(": three") && lines[4].contains(" [info ] ["));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
