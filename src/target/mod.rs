//! The target a project runs on, and the policies that follow from it:
//! profiles.yml and its targets, schema naming per environment, which
//! targets are protected, and which side effects run. Nothing here compiles
//! a project or talks to a database.

pub mod naming;
pub mod profile;
pub mod protect;
pub mod side_effects;

pub use profile::{Secret, Target};

/// The kind of environment a target's name stands for, by convention:
/// what schema prefix it gets, whether it is protected by default, and how
/// many times its tasks are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// `prod` or `production`.
    Production,
    /// `staging` or `stage`.
    Staging,
    /// `ci`.
    Ci,
    /// Any other name: a developer's own target.
    Development,
}

impl Environment {
    /// The environment a target named `target_name` stands for.
    pub fn of(target_name: &str) -> Environment {
        match target_name {
            "prod" | "production" => Environment::Production,
            "staging" | "stage" => Environment::Staging,
            "ci" => Environment::Ci,
            _ => Environment::Development,
        }
    }
}

/// The most nodes a run builds at once: each has a thread and a connection
/// of its own, and far more than a server's connections (PostgreSQL allows
/// 100 by default) only fail to connect.
pub const MAX_THREADS: usize = 256;

#[cfg(test)]
mod tests {
    use super::Environment;

    #[test]
    fn target_names_stand_for_environments() {
        assert_eq!(Environment::of("prod"), Environment::Production);
        assert_eq!(Environment::of("production"), Environment::Production);
        assert_eq!(Environment::of("stage"), Environment::Staging);
        assert_eq!(Environment::of("ci"), Environment::Ci);
        assert_eq!(Environment::of("dev"), Environment::Development);
        assert_eq!(Environment::of("Prod"), Environment::Development);
    }
}
