//! What a compile reads besides the project's files, its target and its vars:
//! the environment variables that templates and schema naming consult, and
//! whether anything happened that a reused compile could not repeat (a read
//! of the clock, printed output). The compile cache keys on the first and
//! refuses the second.
//!
//! Recorded for the whole process, as the environment itself is: a compile
//! may look at more variables than it read (never fewer), so a reuse is never
//! wrong, only sometimes missed.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

static ENV_READS: RwLock<BTreeMap<String, Option<String>>> = RwLock::new(BTreeMap::new());
static UNREPEATABLE: AtomicU64 = AtomicU64::new(0);

/// The environment variable `name`, remembered as read. Secrets are not
/// remembered: only profiles.yml reads them, and the target they make is
/// part of the cache key already.
pub fn env_var(name: &str) -> Option<String> {
    let value = std::env::var(name).ok();
    if name.starts_with(crate::base::secrets::SECRET_ENV_PREFIX) {
        return value;
    }
    // Schema naming asks for the same variable once per node, on every
    // core: a shared look first, so the threads do not queue on a lock.
    let known = ENV_READS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        == Some(&value);
    if !known {
        ENV_READS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), value.clone());
    }
    value
}

/// Every variable read so far in this process, by name (None: unset).
pub fn env_reads() -> Vec<(String, Option<String>)> {
    let reads = ENV_READS.read().unwrap_or_else(|e| e.into_inner());
    reads.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Something happened that a reused compile would not do again: the clock
/// or the host's time zone was read, or a template printed or logged.
pub fn note_unrepeatable() {
    UNREPEATABLE.fetch_add(1, Ordering::Relaxed);
}

/// How many unrepeatable things happened so far: a compile compares the count
/// before and after itself.
pub fn unrepeatable_count() -> u64 {
    UNREPEATABLE.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn remembers_set_and_unset_variables() {
        let path = super::env_var("PATH");
        assert!(path.is_some());
        assert_eq!(super::env_var("WEIR_TEST_SURELY_UNSET_VARIABLE"), None);
        let reads = super::env_reads();
        assert!(reads.contains(&("PATH".to_string(), path)));
        assert!(reads.contains(&("WEIR_TEST_SURELY_UNSET_VARIABLE".to_string(), None)));
    }
}
