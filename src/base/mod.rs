//! Leaf helpers every layer may use, and which use nothing of weir but its
//! error type: digests, environment-variable reads, secrets and scrubbing,
//! SQL quoting, the clock, phase timings, work on all cores, Python-style JSON.

pub mod clock;
pub mod env_vars;
pub mod hash;
pub mod parallel;
pub mod pyjson;
pub mod quote;
pub mod secrets;
pub mod timing;
