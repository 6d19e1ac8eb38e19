//! What must hold before a run sends SQL, for a whole plan (`weir run`) and
//! for one orchestrator task (`run_node`) alike: a protected target runs only
//! from CI or a production scheduler, no relation lands in a schema another
//! protected target owns or in a schema holding a declared source, and a CI run records its schemas before creating
//! them, for `weir clean`.

use std::sync::OnceLock;

use crate::compile::Compiled;
use crate::env::protect::ProtectedSchema;
use crate::error::Result;
use crate::plan::Plan;

/// The write-guard of one compiled project. The schemas the other protected
/// targets own are found by compiling the project for each of them, once per
/// guard: an Airflow task process keeps one project, and so one guard.
#[derive(Debug, Default)]
pub struct Guard {
    protected: OnceLock<Vec<ProtectedSchema>>,
}

impl Guard {
    pub fn new() -> Guard {
        Guard::default()
    }

    /// Refuse `plan` before any SQL when it may not run here or would write
    /// into a protected schema; then record a CI run's schemas.
    /// `store_failures`: the run's --store-failures, which makes tests write.
    pub fn check(
        &self,
        compiled: &Compiled,
        plan: &Plan,
        allow_protected: bool,
        store_failures: bool,
    ) -> Result<()> {
        crate::target::protect::check_may_run(&compiled.target, allow_protected)?;
        crate::env::protect::check_source_schemas(compiled, plan, store_failures)?;
        crate::env::protect::check_writes(
            &compiled.manifest,
            plan,
            self.protected(compiled)?,
            &compiled.project.root,
            store_failures,
        )?;
        record_ci_schemas(compiled, plan, store_failures)
    }

    fn protected(&self, compiled: &Compiled) -> Result<&[ProtectedSchema]> {
        if let Some(protected) = self.protected.get() {
            return Ok(protected);
        }
        let found = crate::env::protect::protected_schemas(
            &compiled.project,
            &compiled.target,
            &compiled.cli_vars,
        )?;
        Ok(self.protected.get_or_init(|| found))
    }
}

/// A CI run (one with a schema suffix) records the schemas it will create.
fn record_ci_schemas(compiled: &Compiled, plan: &Plan, store_failures: bool) -> Result<()> {
    let Some(suffix) = crate::target::naming::schema_suffix(&compiled.target) else {
        return Ok(());
    };
    let schemas = crate::env::ci::plan_schemas(&compiled.manifest, plan, store_failures);
    if schemas.is_empty() {
        return Ok(());
    }
    let mut adapter = crate::adapter::connect(&compiled.target, &compiled.project.root)?;
    crate::env::ci::record(&mut adapter, &schemas, &suffix, &compiled.target.name)
}
