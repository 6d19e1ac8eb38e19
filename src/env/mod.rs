//! Operations over a compiled project that keep environments (dev, CI,
//! staging, prod) apart: CI schemas and their cleanup, blue-green deploys,
//! grants, and the preflight that checks a run's writes against the schemas
//! of protected targets. The policies themselves live with the target.

pub mod ci;
pub mod deploy;
pub mod grants;
pub mod lease;
pub mod protect;
