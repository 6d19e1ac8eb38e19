//! Leaf helpers every layer may use, and which use nothing of weir but its
//! error type: digests, environment-variable reads, secrets and scrubbing,
//! SQL quoting, the clock, phase timings, work on all cores, Python-style JSON.

pub mod atomic_file;
pub mod clock;
pub mod env_vars;
pub mod hash;
pub mod parallel;
pub mod pyjson;
pub mod quote;
pub mod secrets;
pub mod timing;

/// The dbt-core release whose artifacts weir writes, as `metadata.dbt_version`
/// of manifest.json (v12) and run_results.json (v6): the 1.11 line, which the
/// parity tests run against. dbt itself writes its exact patch release; no
/// reader (dbt's `--state`, dbt-artifacts-parser) needs more than the line.
pub const DBT_VERSION: &str = "1.11.0";
