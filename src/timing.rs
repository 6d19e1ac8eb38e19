//! Phase timings for whoever profiles weir: with `WEIR_TIMINGS=1` set, each
//! `phase` call prints the time since the previous one to stderr.

use std::sync::Mutex;
use std::sync::OnceLock;
use std::time::Instant;

fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("WEIR_TIMINGS").is_some_and(|v| v != "0"))
}

/// Mark the end of a phase named `name`.
pub fn phase(name: &str) {
    if !enabled() {
        return;
    }
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let now = Instant::now();
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(previous) = *last {
        eprintln!(
            "[timing] {name}: {:.1} ms",
            (now - previous).as_secs_f64() * 1000.0
        );
    }
    *last = Some(now);
}
