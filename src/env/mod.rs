//! Environments (dev, CI, staging, prod) that are safe by construction: schema
//! naming per target, protected targets, secrets, state comparison, CI schemas,
//! blue-green deploys and grants.

pub mod ci;
pub mod deploy;
pub mod grants;
pub mod naming;
pub mod protect;
pub mod side_effects;
pub mod state;
