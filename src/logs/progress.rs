//! The progress bar of `weir run`, `build`, `seed` and `test` on a terminal:
//! one line under dbt's per-node lines, redrawn in place, never in a pipe.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the elapsed time is redrawn when no node starts or ends.
const TICK: Duration = Duration::from_millis(250);
const WIDTH: usize = 30;

/// The bar being shown, if any: what [`print`] draws under each line.
static BAR: Mutex<Option<Bar>> = Mutex::new(None);

struct Bar {
    total: usize,
    done: usize,
    /// The nodes running, by their `index` (start order) and name.
    running: Vec<(usize, String)>,
    started: Instant,
    /// The terminal's columns: the bar never wraps.
    columns: usize,
}

impl Bar {
    fn render(&self) -> String {
        let filled = (self.done * WIDTH).checked_div(self.total).unwrap_or(WIDTH);
        let secs = self.started.elapsed().as_secs();
        let mut line = format!(
            "[{}{}] {}/{} {:02}:{:02}",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            self.done,
            self.total,
            secs / 60,
            secs % 60
        );
        let names: Vec<&str> = self.running.iter().map(|(_, n)| n.as_str()).collect();
        if !names.is_empty() {
            line.push_str(&format!(" running {}: {}", names.len(), names.join(", ")));
        }
        // One column spare: a line that fills the terminal wraps on some.
        let room = self.columns.saturating_sub(1);
        if line.chars().count() > room {
            line = line
                .chars()
                .take(room.saturating_sub(3))
                .collect::<String>()
                + "...";
        }
        line
    }
}

/// Whether a run prints a bar: stdout is a terminal, the log is text, and
/// neither CI (`CI` set to anything but `false` / `0`) nor a dumb terminal says no.
pub fn wanted(json_log: bool) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "false" | "0"));
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    !json_log && !ci && !dumb && std::io::stdout().is_terminal()
}

/// Shows the bar while it lives (a thread keeps the elapsed time current);
/// dropping it erases the bar, so what follows prints as without one.
pub struct Progress {
    stop: Option<Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Start a bar for `total` nodes.
    pub fn start(total: usize) -> Progress {
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse().ok())
            .filter(|&c: &usize| c >= 20)
            .unwrap_or(80);
        *lock() = Some(Bar {
            total,
            done: 0,
            running: Vec::new(),
            started: Instant::now(),
            columns,
        });
        let (stop, ticks) = mpsc::channel::<()>();
        let ticker = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = ticks.recv_timeout(TICK) {
                print("");
            }
        });
        print("");
        Progress {
            stop: Some(stop),
            ticker: Some(ticker),
        }
    }

    /// Count the node started `index`-th as running; call before printing its line.
    pub fn started(&self, index: usize, name: &str) {
        if let Some(bar) = lock().as_mut() {
            bar.running.push((index, name.to_string()));
        }
    }

    /// Count the node started `index`-th (or skipped) as done.
    pub fn finished(&self, index: usize) {
        if let Some(bar) = lock().as_mut() {
            bar.running.retain(|(i, _)| *i != index);
            bar.done += 1;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
        if lock().take().is_some() {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<Bar>> {
    BAR.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Print `text` (whole lines) to stdout: as is, or above the bar when one is shown.
pub fn print(text: &str) {
    let bar = lock();
    let mut out = std::io::stdout().lock();
    match bar.as_ref() {
        None => {
            let _ = out.write_all(text.as_bytes());
        }
        Some(bar) => {
            let _ = write!(out, "\r\x1b[2K{text}{}", bar.render());
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(done: usize, running: &[&str], columns: usize) -> Bar {
        Bar {
            total: 4,
            done,
            running: running
                .iter()
                .enumerate()
                .map(|(i, n)| (i, n.to_string()))
                .collect(),
            started: Instant::now(),
            columns,
        }
    }

    #[test]
    fn shows_done_of_total_elapsed_and_running_nodes() {
        assert_eq!(
            bar(1, &["orders", "customers"], 120).render(),
            "[#######-----------------------] 1/4 00:00 running 2: orders, customers"
        );
        assert_eq!(
            bar(4, &[], 120).render(),
            "[##############################] 4/4 00:00"
        );
    }

    #[test]
    fn never_wider_than_the_terminal() {
        let line = bar(0, &["a_long_model_name", "another_long_one"], 60).render();
        assert_eq!(line.chars().count(), 59);
        assert!(line.ends_with("..."), "{line}");
    }
}
