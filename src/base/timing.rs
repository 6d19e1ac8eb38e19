//! Phase timings for whoever profiles weir: with `WEIR_TIMINGS=1` set, each
//! `phase` call prints the wall and CPU time (all threads) since the previous
//! one to stderr, and the resident memory. CPU time stays meaningful on a
//! busy machine.

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
    static LAST: Mutex<Option<(Instant, f64)>> = Mutex::new(None);
    let now = (Instant::now(), process_cpu_seconds());
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((wall, cpu)) = *last {
        eprintln!(
            "[timing] {name}: {:.1} ms wall, {:.1} ms cpu, {} MB resident",
            (now.0 - wall).as_secs_f64() * 1000.0,
            (now.1 - cpu) * 1000.0,
            resident_megabytes()
        );
    }
    *last = Some(now);
}

fn process_cpu_seconds() -> f64 {
    cpu_time::ProcessTime::try_now().map_or(0.0, |t| t.as_duration().as_secs_f64())
}

/// The process's resident memory now, from /proc (0 where there is none).
fn resident_megabytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    pages * 4096 / (1 << 20)
}
