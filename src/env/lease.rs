//! The deploy lease: which deploy owns a schema set's shadow (`<schema>__next`)
//! between the steps of a deploy run as separate processes (an Airflow DAG
//! run: prepare, one task per node, swap). The advisory deploy lock
//! ([`super::deploy::lock`]) lives as long as one connection, so alone it
//! guards one step at a time; the lease, a row per live schema in
//! `weir_meta.deploy_leases`, carries the ownership from step to step.
//!
//! - `prepare` takes it (holding the exclusive deploy lock), so a second
//!   deployer is told who deploys, instead of dropping the first one's
//!   half-built shadow set;
//! - each node task renews it as it starts and as it ends (holding the
//!   shared deploy lock, so no one takes it over while the task builds);
//! - `swap` checks it and ends it in the transaction of its renames.
//!
//! A deploy that stopped between steps keeps the lease until it lapses
//! ([`LEASE_TTL`] after its last renewal); another deploy may then take it,
//! and every later step of the first one fails, writing nothing.

use std::time::Duration;

use super::ci::META_SCHEMA;
use crate::adapter::Adapter;
use crate::base::quote::quote_literal;
use crate::error::{Error, ErrorKind, Result};

pub const LEASE_TABLE: &str = "deploy_leases";

/// How long a lease lasts after its last renewal. Each step renews it as it
/// starts and as it ends, and a running step holds the shared deploy lock,
/// so this need only span the scheduler's gap between two steps.
pub const LEASE_TTL: Duration = Duration::from_secs(30 * 60);

/// The deploy a lease is taken for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Names the deploy: an Airflow deploy's `<dag_id>/<run_id>`, the CLI's
    /// pid and host.
    pub deploy_id: String,
    /// A deploy made of steps in separate processes, which holds the deploy
    /// lock only during each step. A deploy in one process holds it
    /// throughout: its lease is stale whenever its lock is free.
    pub spans_steps: bool,
}

/// The schema and table of the leases (also set up by `weir grants`).
pub fn create_sql() -> Vec<String> {
    vec![
        format!("create schema if not exists {META_SCHEMA}"),
        format!(
            "create table if not exists {META_SCHEMA}.{LEASE_TABLE} (\n  \
               schema_name text primary key,\n  \
               deploy_id text not null,\n  \
               spans_steps boolean not null,\n  \
               taken_at timestamptz not null default now(),\n  \
               expires_at timestamptz not null\n)"
        ),
    ]
}

fn table_exists(adapter: &mut dyn Adapter) -> Result<bool> {
    let rows = adapter.query_text(&format!(
        "select to_regclass('{META_SCHEMA}.{LEASE_TABLE}') is not null"
    ))?;
    Ok(rows.first().and_then(|r| r[0].as_deref()) == Some("t"))
}

fn list(schemas: &[String]) -> String {
    let quoted: Vec<String> = schemas.iter().map(|s| quote_literal(s)).collect();
    quoted.join(", ")
}

fn expiry() -> String {
    format!("now() + interval '{} seconds'", LEASE_TTL.as_secs())
}

const TIME: &str = "'YYYY-MM-DD HH24:MI:SS TZ'";

/// Take the lease of every schema of `schemas` for `holder`. Called holding
/// the exclusive deploy lock of all of them: no step of another deploy runs,
/// so another deploy's lease stands only while it spans steps and has not
/// lapsed. Taking one's own lease again (a prepare run twice) renews it.
pub fn take(
    adapter: &mut dyn Adapter,
    target: &str,
    holder: &Holder,
    schemas: &[String],
) -> Result<()> {
    if schemas.is_empty() {
        return Ok(());
    }
    let mut statements = if table_exists(adapter)? {
        Vec::new()
    } else {
        create_sql()
    };
    let rows: Vec<String> = schemas
        .iter()
        .map(|s| {
            format!(
                "({}, {}, {}, {})",
                quote_literal(s),
                quote_literal(&holder.deploy_id),
                holder.spans_steps,
                expiry()
            )
        })
        .collect();
    statements.push(format!(
        "insert into {META_SCHEMA}.{LEASE_TABLE} (schema_name, deploy_id, spans_steps, expires_at) \
         values {} on conflict (schema_name) do update set deploy_id = excluded.deploy_id, \
         spans_steps = excluded.spans_steps, taken_at = now(), expires_at = excluded.expires_at",
        rows.join(", ")
    ));
    crate::adapter::in_transaction(adapter, |a| {
        for sql in &statements[..statements.len() - 1] {
            a.execute(sql).map_err(|e| {
                e.with_hint(format!(
                    "the deploy lease lives in {META_SCHEMA}.{LEASE_TABLE}: `weir grants` \
                     creates it and lets protected targets' roles use it"
                ))
            })?;
        }
        let standing = a.query_text(&format!(
            "select schema_name, deploy_id, to_char(taken_at, {TIME}), to_char(expires_at, {TIME}) \
             from {META_SCHEMA}.{LEASE_TABLE} where schema_name in ({}) and deploy_id <> {} \
             and spans_steps and expires_at > now() order by 1 limit 1 for update",
            list(schemas),
            quote_literal(&holder.deploy_id)
        ))?;
        if let Some([Some(schema), Some(other), Some(taken), Some(expires)]) =
            standing.first().map(|r| r.as_slice())
        {
            return Err(Error::new(
                ErrorKind::Transient,
                format!(
                    "deploy `{other}` of target `{target}` holds the deploy lease of schema \
                     `{schema}` (taken at {taken}, held until {expires} unless one of its steps \
                     renews it): it is building its shadow set. Nothing was changed."
                ),
            )
            .with_hint(format!(
                "wait for it to swap, or for its lease to lapse; if it is dead, end it now: \
                 delete from {META_SCHEMA}.{LEASE_TABLE} where deploy_id = {}",
                quote_literal(other)
            )));
        }
        a.execute(&statements[statements.len() - 1])?;
        Ok(())
    })
}

/// Check that `deploy_id` still holds the lease of every schema of
/// `schemas`, and extend it: what a step of a deploy does before it writes.
pub fn renew(
    adapter: &mut dyn Adapter,
    target: &str,
    deploy_id: &str,
    schemas: &[String],
) -> Result<()> {
    if schemas.is_empty() {
        return Ok(());
    }
    if !table_exists(adapter)? {
        return Err(lost(target, deploy_id, &schemas[0], None));
    }
    let renewed = adapter.query_text(&format!(
        "update {META_SCHEMA}.{LEASE_TABLE} set expires_at = {} \
         where deploy_id = {} and schema_name in ({}) returning schema_name",
        expiry(),
        quote_literal(deploy_id),
        list(schemas)
    ))?;
    let renewed: Vec<&str> = renewed
        .iter()
        .filter_map(|r| r.first().and_then(|v| v.as_deref()))
        .collect();
    let Some(missing) = schemas.iter().find(|s| !renewed.contains(&s.as_str())) else {
        return Ok(());
    };
    let now = adapter.query_text(&format!(
        "select deploy_id from {META_SCHEMA}.{LEASE_TABLE} where schema_name = {}",
        quote_literal(missing)
    ))?;
    let other = now.first().and_then(|r| r[0].clone());
    Err(lost(target, deploy_id, missing, other))
}

fn lost(target: &str, deploy_id: &str, schema: &str, other: Option<String>) -> Error {
    let why = match other {
        Some(other) => format!("deploy `{other}` holds it"),
        None => "no deploy holds it: this one swapped, or never prepared".to_string(),
    };
    Error::new(
        ErrorKind::Usage,
        format!(
            "deploy `{deploy_id}` of target `{target}` does not hold the deploy lease of schema \
             `{schema}` ({why}), so this step may not write its shadow set. Nothing was changed."
        ),
    )
    .with_hint("run the deploy again from its first step (prepare)")
}

/// The statement ending `deploy_id`'s lease of `schemas`: run in the
/// transaction of the swap, so the lease ends exactly when the set is live.
pub fn release_sql(deploy_id: &str, schemas: &[String]) -> Vec<String> {
    if schemas.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "delete from {META_SCHEMA}.{LEASE_TABLE} where deploy_id = {} and schema_name in ({})",
        quote_literal(deploy_id),
        list(schemas)
    )]
}

/// End `deploy_id`'s lease of `schemas` (a deploy that stops before its swap).
pub fn release(adapter: &mut dyn Adapter, deploy_id: &str, schemas: &[String]) -> Result<()> {
    if !table_exists(adapter)? {
        return Ok(());
    }
    for sql in release_sql(deploy_id, schemas) {
        adapter.execute(&sql)?;
    }
    Ok(())
}
