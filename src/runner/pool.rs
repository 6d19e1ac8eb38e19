//! Connections opened while the project compiles, so that a run's first
//! nodes do not wait for PostgreSQL to start their backends.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::adapter::postgres::{ConnectionSettings, PostgresAdapter};
use crate::target::Target;

/// Connections a run takes instead of opening its own, when they were
/// opened with the settings it connects with. Clones share them.
#[derive(Clone, Default)]
pub struct Pool(Arc<Mutex<Option<Opened>>>);

struct Opened {
    settings: ConnectionSettings,
    connections: Vec<PostgresAdapter>,
}

impl Pool {
    /// The connections opened with `settings`; none when they were opened
    /// for anything else (the guess made before compiling was wrong).
    pub(super) fn take_for(&self, settings: &ConnectionSettings) -> Vec<PostgresAdapter> {
        let opened = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        match opened {
            Some(opened) if opened.settings == *settings => opened.connections,
            _ => Vec::new(),
        }
    }
}

impl PartialEq for Pool {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Pool {}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, |o| o.connections.len());
        write!(f, "Pool({open} open)")
    }
}

/// The most connections opened ahead of a run.
const WARM_UP_MAX: usize = 16;

/// Connections being opened in the background.
pub struct Warming {
    settings: ConnectionSettings,
    threads: Vec<JoinHandle<Option<PostgresAdapter>>>,
}

impl Warming {
    /// Start opening `count` connections to the target a run of the project
    /// at `project_dir` will most likely use, found the cheap way (the
    /// profile named in dbt_project.yml, read without Jinja). None when that
    /// fails, when the target is protected and not allowed to run, or when
    /// it is an embedded cluster that is not running: nothing is started
    /// and nothing reaches a database it should not.
    pub fn start(
        project_dir: &Path,
        profiles_dir: Option<&Path>,
        target_name: Option<&str>,
        allow_protected: bool,
        count: impl FnOnce(&Target) -> usize,
    ) -> Option<Warming> {
        let path = project_dir.join("dbt_project.yml");
        let text = std::fs::read_to_string(&path).ok()?;
        let doc = crate::project::yaml::parse(&text, &path).ok()?;
        let field = |key| crate::project::yaml::str_field(&doc, key);
        let profile = field("profile").or_else(|| field("name"))?;
        let target =
            crate::target::profile::load_target(profiles_dir, project_dir, profile, target_name)
                .ok()?;
        crate::target::protect::check_may_run(&target, allow_protected).ok()?;
        let settings = ConnectionSettings::for_running_target(&target, project_dir).ok()??;
        // The run needs no more than its nodes, unknown until it compiles:
        // the rest are opened by the workers that need them.
        let threads = (0..count(&target).min(WARM_UP_MAX))
            .map(|_| {
                let settings = settings.clone();
                // A failed connection is the run's to report, when it connects.
                std::thread::spawn(move || PostgresAdapter::connect(&settings).ok())
            })
            .collect();
        Some(Warming { settings, threads })
    }

    /// Wait for the connections being opened.
    pub fn finish(self) -> Pool {
        let connections = self
            .threads
            .into_iter()
            .filter_map(|thread| thread.join().ok().flatten())
            .collect();
        Pool(Arc::new(Mutex::new(Some(Opened {
            settings: self.settings,
            connections,
        }))))
    }
}
