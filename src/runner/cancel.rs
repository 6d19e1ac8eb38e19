//! Stopping queries that are no longer wanted: a watchdog thread sends
//! PostgreSQL's cancel request (what pg_cancel_backend does) to the nodes
//! running on Ctrl-C or SIGTERM, after a --fail-fast failure, or past a
//! node's timeout.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ::postgres::{CancelToken, NoTls};

/// Stops a run from another thread: what a Ctrl-C handler calls. Clones
/// share the same flag.
#[derive(Clone, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    pub fn new() -> CancelHandle {
        CancelHandle::default()
    }

    /// Cancel the queries running now and start no more tasks.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Cancel on Ctrl-C, SIGTERM and SIGHUP alike (an orchestrator stops a
    /// task with SIGTERM): the running queries are cancelled, their advisory
    /// locks released, and the run reports them as errors for `weir retry`.
    /// A second signal ends the process at once. One handler per process: a
    /// later call (a second run in one process, as in tests) keeps the first.
    pub fn cancel_on_signals(&self) {
        let cancel = self.clone();
        let _ = ctrlc::set_handler(move || {
            if cancel.is_cancelled() {
                std::process::exit(130);
            }
            cancel.cancel();
        });
    }
}

impl PartialEq for CancelHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CancelHandle {}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CancelHandle(cancelled: {})", self.is_cancelled())
    }
}

/// Why a running node was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Interrupted,
    /// --fail-fast, after the named node failed.
    FailFast(String),
    Timeout(Duration),
}

impl Stop {
    /// What a cancelled node's result says.
    pub fn message(&self) -> String {
        match self {
            Stop::Interrupted => "cancelled: the run was interrupted".to_string(),
            Stop::FailFast(name) => {
                format!("cancelled because the run stopped after `{name}` failed (--fail-fast)")
            }
            Stop::Timeout(limit) => {
                format!("cancelled after its timeout of {}s", format_seconds(*limit))
            }
        }
    }
}

fn format_seconds(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds.fract() == 0.0 {
        format!("{seconds:.0}")
    } else {
        format!("{seconds}")
    }
}

struct Running {
    token: CancelToken,
    deadline: Option<(Instant, Duration)>,
    stopped: Option<Stop>,
    /// When the last cancel request went out: a request that arrives between
    /// two statements cancels nothing, so it is sent again until the node ends.
    cancelled_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    /// Task index -> the query running for it.
    running: HashMap<usize, Running>,
    /// Set once: every node running now or later is stopped for this.
    stop_all: Option<Stop>,
    done: bool,
}

/// The nodes running now, and the thread that cancels them.
#[derive(Default)]
pub(super) struct Watchdog {
    state: Mutex<State>,
    wake: Condvar,
}

/// How often the watchdog looks at the Ctrl-C flag.
const POLL: Duration = Duration::from_millis(100);
/// How often a stopped node that is still running is cancelled again.
const RECANCEL: Duration = Duration::from_millis(200);

impl Watchdog {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A node is about to run on the connection of `token`; Err when the
    /// run is stopping and it must not start.
    pub(super) fn watch(
        &self,
        index: usize,
        token: CancelToken,
        timeout: Option<Duration>,
    ) -> Result<(), Stop> {
        let mut state = self.lock();
        if let Some(stop) = &state.stop_all {
            return Err(stop.clone());
        }
        state.running.insert(
            index,
            Running {
                token,
                deadline: timeout.map(|t| (Instant::now() + t, t)),
                stopped: None,
                cancelled_at: None,
            },
        );
        // Only a deadline may be sooner than the watchdog's next look: waking
        // it for every node would cost a thread switch per node.
        if timeout.is_some() {
            self.wake.notify_all();
        }
        Ok(())
    }

    /// Why the run is stopping, if it is.
    pub(super) fn stopping(&self) -> Option<Stop> {
        self.lock().stop_all.clone()
    }

    /// The node is done; returns why it was cancelled, if it was.
    pub(super) fn unwatch(&self, index: usize) -> Option<Stop> {
        self.lock().running.remove(&index).and_then(|r| r.stopped)
    }

    /// Cancel every running node, and any that starts from now on.
    pub(super) fn stop_all(&self, why: Stop) {
        let mut state = self.lock();
        if state.stop_all.is_none() {
            state.stop_all = Some(why);
            self.wake.notify_all();
        }
    }

    /// The run is over: the watchdog thread returns.
    pub(super) fn finish(&self) {
        self.lock().done = true;
        self.wake.notify_all();
    }

    /// The watchdog thread: cancels what must stop until [`finish`](Self::finish).
    /// Cancel requests go out under the lock, so a node cannot finish and
    /// start another query on the same connection in between.
    pub(super) fn run(&self, cancel: &CancelHandle) {
        let mut state = self.lock();
        while !state.done {
            if cancel.is_cancelled() && state.stop_all.is_none() {
                state.stop_all = Some(Stop::Interrupted);
            }
            let now = Instant::now();
            let stop_all = state.stop_all.clone();
            let mut next_deadline: Option<Instant> = None;
            for running in state.running.values_mut() {
                if running.stopped.is_some() {
                    if running
                        .cancelled_at
                        .is_none_or(|at| now.duration_since(at) >= RECANCEL)
                    {
                        let _ = running.token.cancel_query(NoTls);
                        running.cancelled_at = Some(now);
                    }
                    continue;
                }
                let why = match (&stop_all, running.deadline) {
                    (Some(stop), _) => Some(stop.clone()),
                    (None, Some((deadline, limit))) if deadline <= now => {
                        Some(Stop::Timeout(limit))
                    }
                    (None, Some((deadline, _))) => {
                        next_deadline = Some(next_deadline.map_or(deadline, |d| d.min(deadline)));
                        None
                    }
                    (None, None) => None,
                };
                if let Some(why) = why {
                    // A failed cancel means the connection is gone: the node
                    // fails on its own.
                    let _ = running.token.cancel_query(NoTls);
                    running.stopped = Some(why);
                    running.cancelled_at = Some(now);
                }
            }
            let wait = next_deadline.map_or(POLL, |d| d.saturating_duration_since(now).min(POLL));
            state = self
                .wake
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_say_why() {
        assert_eq!(
            Stop::Timeout(Duration::from_millis(1500)).message(),
            "cancelled after its timeout of 1.5s"
        );
        assert_eq!(
            Stop::Timeout(Duration::from_secs(3)).message(),
            "cancelled after its timeout of 3s"
        );
        assert!(
            Stop::FailFast("orders".into())
                .message()
                .contains("`orders` failed")
        );
    }

    #[test]
    fn handles_share_one_flag() {
        let handle = CancelHandle::new();
        let clone = handle.clone();
        assert!(!clone.is_cancelled());
        handle.cancel();
        assert!(clone.is_cancelled());
        assert_eq!(handle, clone);
        assert_ne!(handle, CancelHandle::new());
    }
}
