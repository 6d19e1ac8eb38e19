//! CI schemas: a CI run builds into throwaway schemas named with a suffix
//! (`--schema-suffix`, `$WEIR_SCHEMA_SUFFIX`, or a `ci` target's pull request
//! or commit), records each one in `weir_meta.ci_schemas`, and `weir clean`
//! drops those, and only those.

use std::time::Duration;

use crate::adapter::Adapter;
use crate::adapter::postgres::PostgresAdapter;
use crate::base::quote::{quote_identifier, quote_literal};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Manifest;
use crate::plan::Plan;

/// The schema and table where weir records the CI schemas it created.
pub const META_SCHEMA: &str = "weir_meta";
pub const CI_TABLE: &str = "ci_schemas";

/// The schemas a plan writes, each once, sorted: with `store_failures`
/// (the run's --store-failures), the audit schemas of the tests it makes
/// store their failing rows too.
pub fn plan_schemas(manifest: &Manifest, plan: &Plan, store_failures: bool) -> Vec<String> {
    let mut schemas: Vec<String> = plan
        .tasks
        .iter()
        .filter_map(|t| manifest.nodes.get(&t.unique_id))
        .filter(|n| crate::manifest::builds_relation(n, store_failures))
        .map(|n| n.relation.schema.clone())
        .collect();
    schemas.sort();
    schemas.dedup();
    schemas
}

/// The schema and table of the records (also set up by `weir grants`).
pub fn create_meta_sql() -> Vec<String> {
    vec![
        format!("create schema if not exists {META_SCHEMA}"),
        format!(
            "create table if not exists {META_SCHEMA}.{CI_TABLE} (\n  \
               schema_name text primary key,\n  \
               suffix text not null,\n  \
               target_name text not null,\n  \
               created_at timestamptz not null default now(),\n  \
               last_used_at timestamptz not null default now()\n)"
        ),
    ]
}

/// Record `schemas` as CI schemas of `suffix`, before the run creates them,
/// so that a run that dies half-way still leaves nothing `weir clean` misses.
pub fn record(
    adapter: &mut dyn Adapter,
    schemas: &[String],
    suffix: &str,
    target_name: &str,
) -> Result<()> {
    if schemas.is_empty() {
        return Ok(());
    }
    // Checked first: `create ... if not exists` needs CREATE on weir_meta even
    // when the table is there, which a CI role (see env::grants) lacks.
    let mut statements = if table_exists(adapter)? {
        Vec::new()
    } else {
        create_meta_sql()
    };
    let rows: Vec<String> = schemas
        .iter()
        .map(|s| {
            format!(
                "({}, {}, {})",
                quote_literal(s),
                quote_literal(suffix),
                quote_literal(target_name)
            )
        })
        .collect();
    statements.push(format!(
        "insert into {META_SCHEMA}.{CI_TABLE} (schema_name, suffix, target_name) values {} \
         on conflict (schema_name) do update set last_used_at = now()",
        rows.join(", ")
    ));
    execute_all(adapter, &statements)
}

/// Run statements one by one (the adapter takes one per call), in one transaction.
fn execute_all(adapter: &mut dyn Adapter, statements: &[String]) -> Result<()> {
    crate::adapter::in_transaction(adapter, |a| {
        for sql in statements {
            a.execute(sql)?;
        }
        Ok(())
    })
}

fn table_exists(adapter: &mut dyn Adapter) -> Result<bool> {
    let rows = adapter.query_text(&format!(
        "select to_regclass('{META_SCHEMA}.{CI_TABLE}') is not null"
    ))?;
    Ok(rows.first().and_then(|r| r[0].as_deref()) == Some("t"))
}

/// A recorded CI schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiSchema {
    pub name: String,
    pub suffix: String,
    /// Seconds since the last run that used it.
    pub idle_seconds: u64,
}

/// The recorded CI schemas, oldest use first; none when nothing was ever recorded.
pub fn recorded(adapter: &mut PostgresAdapter) -> Result<Vec<CiSchema>> {
    if !table_exists(adapter)? {
        return Ok(Vec::new());
    }
    let rows = adapter.query_text(&format!(
        "select schema_name, suffix, extract(epoch from now() - last_used_at)::bigint \
         from {META_SCHEMA}.{CI_TABLE} order by last_used_at, schema_name"
    ))?;
    Ok(rows
        .into_iter()
        .map(|r| CiSchema {
            name: r[0].clone().unwrap_or_default(),
            suffix: r[1].clone().unwrap_or_default(),
            idle_seconds: r[2].as_deref().and_then(|s| s.parse().ok()).unwrap_or(0),
        })
        .collect())
}

/// What `weir clean` drops: recorded schemas idle at least `older_than`
/// (all when None), of one suffix when given, never a protected one.
pub fn to_drop(
    recorded: Vec<CiSchema>,
    older_than: Option<Duration>,
    suffix: Option<&str>,
    is_protected: &dyn Fn(&str) -> bool,
) -> Vec<CiSchema> {
    recorded
        .into_iter()
        .filter(|s| older_than.is_none_or(|age| s.idle_seconds >= age.as_secs()))
        .filter(|s| suffix.is_none_or(|x| s.suffix == x))
        .filter(|s| !is_protected(&s.name))
        .collect()
}

/// Drop one recorded CI schema and its record, in one transaction.
pub fn drop_schema(adapter: &mut dyn Adapter, schema: &str) -> Result<()> {
    execute_all(
        adapter,
        &[
            format!("drop schema if exists {} cascade", quote_identifier(schema)),
            format!(
                "delete from {META_SCHEMA}.{CI_TABLE} where schema_name = {}",
                quote_literal(schema)
            ),
        ],
    )
}

/// `7d`, `12h`, `30m`, `2w`, `90s`: an age for `weir clean --older-than`.
pub fn parse_age(text: &str) -> Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if seconds > 0 => Ok(Duration::from_secs(n * seconds)),
        _ => Err(Error::new(
            ErrorKind::Usage,
            format!("--older-than `{text}`: expected a number and a unit, like 7d, 12h, 30m or 2w"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_schemas_are_recorded_when_the_run_stores_failures() {
        let (manifest, plan) = crate::materialize::testing::storing_failures();
        assert_eq!(
            plan_schemas(&manifest, &plan, false),
            ["audit_config", "audit_view", "dev"]
        );
        assert_eq!(
            plan_schemas(&manifest, &plan, true),
            ["audit_config", "audit_flag", "audit_view", "dev"],
            "--store-failures stores the failures of tests whose config does not say"
        );
    }

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_age("90s").unwrap(), Duration::from_secs(90));
        assert!(parse_age("7 days").is_err());
        assert!(parse_age("d").is_err());
    }

    #[test]
    fn only_old_unprotected_schemas_of_the_suffix_are_dropped() {
        let schema = |name: &str, suffix: &str, idle: u64| CiSchema {
            name: name.into(),
            suffix: suffix.into(),
            idle_seconds: idle,
        };
        let recorded = vec![
            schema("a_pr_1", "pr_1", 10),
            schema("a_pr_2", "pr_2", 100_000),
            schema("analytics", "pr_2", 100_000),
        ];
        let names = |v: Vec<CiSchema>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
        let protected = |s: &str| s == "analytics";
        assert_eq!(
            names(to_drop(recorded.clone(), None, None, &protected)),
            ["a_pr_1", "a_pr_2"]
        );
        assert_eq!(
            names(to_drop(
                recorded.clone(),
                Some(Duration::from_secs(3600)),
                None,
                &protected
            )),
            ["a_pr_2"]
        );
        assert_eq!(
            names(to_drop(recorded, None, Some("pr_1"), &protected)),
            ["a_pr_1"]
        );
    }
}
