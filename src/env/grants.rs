//! Permissions in the database for an environment layout: each protected
//! target's login role owns that target's schemas; developers and CI read
//! them through a reader role and build only schemas of their own.
//!
//! Configured in dbt_project.yml (all keys optional):
//!
//! ```yaml
//! vars:
//!   weir:
//!     grants:
//!       developers: [alice, bob]      # login roles given the developer role
//!       reader_role: shop_reader      # default: <project>_reader
//!       developer_role: shop_developer
//!       ci_role: shop_ci
//! ```
//!
//! PostgreSQL cannot limit which schema names a role creates; the guarantee
//! is that nobody but a protected target's own role can create, replace or
//! drop anything in that target's schemas. The schemas holding the
//! project's sources stay their loader's: the reader role may read them,
//! developers and CI may not write them.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::base::quote::{quote_identifier, quote_literal};
use crate::compile::Compiled;
use crate::error::{Error, ErrorKind, Result};

use super::ci::{CI_TABLE, META_SCHEMA};
use super::lease::LEASE_TABLE;

/// Who owns and who reads what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub database: String,
    /// Protected schema -> the login role of the protected target building it.
    pub owners: BTreeMap<String, String>,
    pub reader_role: String,
    pub developer_role: String,
    pub ci_role: String,
    /// Login roles given the developer role.
    pub developers: Vec<String>,
    /// Login roles of `ci` targets, given the CI role.
    pub ci_users: Vec<String>,
    /// Schemas holding the project's sources (and no protected target's
    /// relations): read-only for the reader role, never written by weir.
    pub source_schemas: Vec<String>,
}

/// The layout of `compiled`'s profile: every protected target (this one
/// included) with the schemas the project builds there.
pub fn layout(compiled: &Compiled, extra_developers: &[String]) -> Result<Layout> {
    let project = &compiled.project;
    let settings = project
        .vars
        .get(crate::target::naming::SETTINGS_VAR)
        .and_then(|w| w.get("grants"))
        .cloned()
        .unwrap_or(Json::Null);
    let role = |key: &str, default: String| -> String {
        settings
            .get(key)
            .and_then(Json::as_str)
            .map_or(default, str::to_string)
    };
    let mut developers: Vec<String> = settings
        .get("developers")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    developers.extend(extra_developers.iter().cloned());
    developers.sort();
    developers.dedup();

    let others = crate::target::protect::other_targets(&compiled.target)?;
    // Each role needs its target read: every target left out is said.
    super::protect::warn_unreadable(&others.unreadable);
    let mut targets = others.targets;
    targets.push(compiled.target.clone());
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let mut ci_users = Vec::new();
    let database = &compiled.target.dbname;
    let mut source_schemas = source_schemas_of(&compiled.manifest, database);
    for target in &targets {
        if target.name == "ci" {
            ci_users.push(target.user.clone());
        }
        if !crate::target::protect::is_protected(target) {
            continue;
        }
        let manifest = if target.name == compiled.target.name {
            compiled.manifest.clone()
        } else {
            crate::compile::compile(project, target, &compiled.cli_vars)?
        };
        source_schemas.extend(source_schemas_of(&manifest, database));
        let mut schemas = vec![target.schema.clone()];
        // Its audit schemas too, whether or not its runs pass
        // --store-failures: owned by its role from the start, no developer
        // can create one first and so own what it later stores.
        schemas.extend(
            manifest
                .nodes
                .values()
                .filter(|n| crate::manifest::builds_relation(n, true))
                .map(|n| n.relation.schema.clone()),
        );
        for schema in schemas {
            if let Some(other) = owners.insert(schema.clone(), target.user.clone())
                && other != target.user
            {
                return Err(Error::new(
                    ErrorKind::Profile,
                    format!(
                        "schema `{schema}` is built by protected targets with different users \
                         (`{other}` and `{}`): one role must own it",
                        target.user
                    ),
                ));
            }
        }
    }
    ci_users.sort();
    ci_users.dedup();
    source_schemas.sort();
    source_schemas.dedup();
    // A source in a schema a protected target builds (a seed declared as a
    // source) is that target's; the admin target's own schema is no input.
    source_schemas.retain(|s| !owners.contains_key(s) && *s != compiled.target.schema);
    Ok(Layout {
        database: compiled.target.dbname.clone(),
        owners,
        reader_role: role("reader_role", format!("{}_reader", project.name)),
        developer_role: role("developer_role", format!("{}_developer", project.name)),
        ci_role: role("ci_role", format!("{}_ci", project.name)),
        developers,
        ci_users,
        source_schemas,
    })
}

/// The schemas of `database` that hold a source of `manifest`.
fn source_schemas_of(manifest: &crate::manifest::Manifest, database: &str) -> Vec<String> {
    manifest
        .sources
        .values()
        .filter(|s| s.relation.database == database)
        .map(|s| s.relation.schema.clone())
        .collect()
}

/// Idempotent SQL setting up `layout`: run as a role that may create roles
/// and change owners (a superuser, or the database owner with CREATEROLE).
pub fn sql(layout: &Layout) -> Vec<String> {
    let q = |name: &str| quote_identifier(name);
    let mut out = Vec::new();
    let mut logins: Vec<&String> = layout.owners.values().collect();
    logins.extend(&layout.developers);
    logins.extend(&layout.ci_users);
    logins.sort();
    logins.dedup();
    let groups = [&layout.reader_role, &layout.developer_role, &layout.ci_role];
    let mut create_roles = String::from("do $$ begin\n");
    for (name, login) in groups
        .iter()
        .map(|g| (*g, false))
        .chain(logins.iter().map(|l| (*l, true)))
    {
        create_roles.push_str(&format!(
            "  if not exists (select from pg_roles where rolname = {}) then create role {} {}; end if;\n",
            quote_literal(name),
            q(name),
            if login { "login" } else { "nologin" }
        ));
    }
    create_roles.push_str("end $$");
    out.push(create_roles);
    for group in [&layout.developer_role, &layout.ci_role] {
        out.push(format!("grant {} to {}", q(&layout.reader_role), q(group)));
    }
    for developer in &layout.developers {
        out.push(format!(
            "grant {} to {}",
            q(&layout.developer_role),
            q(developer)
        ));
    }
    for user in &layout.ci_users {
        out.push(format!("grant {} to {}", q(&layout.ci_role), q(user)));
    }
    // Their own schemas: developers, CI and the owners may create schemas.
    let mut creators: Vec<String> = vec![q(&layout.developer_role), q(&layout.ci_role)];
    let mut owner_roles: Vec<&String> = layout.owners.values().collect();
    owner_roles.sort();
    owner_roles.dedup();
    creators.extend(owner_roles.iter().map(|o| q(o)));
    out.push(format!(
        "grant connect, create on database {} to {}",
        q(&layout.database),
        creators.join(", ")
    ));
    for (schema, owner) in &layout.owners {
        let (s, o) = (q(schema), q(owner));
        out.push(format!("create schema if not exists {s} authorization {o}"));
        out.push(format!("alter schema {s} owner to {o}"));
        // Relations built before the layout existed change owner too, so
        // that only the owner can replace or drop them.
        out.push(format!(
            "do $$ declare r record; begin\n  for r in select c.relname, c.relkind from pg_class c \
             join pg_namespace n on n.oid = c.relnamespace where n.nspname = {} \
             and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f') loop\n    \
             execute format('alter %s %I.%I owner to %I', case r.relkind when 'v' then 'view' \
             when 'm' then 'materialized view' when 'S' then 'sequence' when 'f' then 'foreign table' \
             else 'table' end, {}, r.relname, {});\n  end loop;\nend $$",
            quote_literal(schema),
            quote_literal(schema),
            quote_literal(owner)
        ));
        out.push(format!("revoke all on schema {s} from public"));
        out.push(format!(
            "grant usage on schema {s} to {}",
            q(&layout.reader_role)
        ));
        out.push(format!(
            "grant select on all tables in schema {s} to {}",
            q(&layout.reader_role)
        ));
        out.push(format!(
            "alter default privileges for role {o} in schema {s} grant select on tables to {}",
            q(&layout.reader_role)
        ));
    }
    // Sources are inputs: readers (developers and CI among them) may read
    // them and nothing more; their loader keeps owning them. Skipped while
    // a schema does not exist yet (nothing loaded it).
    let writers = format!(
        "public, {}, {}",
        q(&layout.developer_role),
        q(&layout.ci_role)
    );
    let reader = q(&layout.reader_role);
    for schema in &layout.source_schemas {
        let s = q(schema);
        out.push(format!(
            "do $$ declare owner name; begin\n  select r.rolname into owner from pg_namespace n \
             join pg_roles r on r.oid = n.nspowner where n.nspname = {name};\n  if owner is null then return; end if;\n  \
             revoke create on schema {s} from {writers};\n  \
             revoke insert, update, delete, truncate, references, trigger on all tables in schema \
             {s} from {writers};\n  grant usage on schema {s} to {reader};\n  \
             grant select on all tables in schema {s} to {reader};\n  \
             execute format('alter default privileges for role %I in schema %I grant select on \
             tables to %I', owner, {name}, {reader_name});\nend $$",
            name = quote_literal(schema),
            reader_name = quote_literal(&layout.reader_role),
        ));
    }
    // The CI role records the schemas it creates, for `weir clean`.
    out.extend(super::ci::create_meta_sql());
    out.push(format!(
        "grant usage on schema {META_SCHEMA} to {}",
        q(&layout.ci_role)
    ));
    out.push(format!(
        "grant select, insert, update, delete on {META_SCHEMA}.{CI_TABLE} to {}",
        q(&layout.ci_role)
    ));
    // Protected targets' roles deploy, and hold the deploy lease to do so.
    out.extend(super::lease::create_sql().into_iter().skip(1));
    let deployers: std::collections::BTreeSet<&String> = layout.owners.values().collect();
    for role in deployers {
        out.push(format!(
            "grant usage on schema {META_SCHEMA} to {}",
            q(role)
        ));
        out.push(format!(
            "grant select, insert, update, delete on {META_SCHEMA}.{LEASE_TABLE} to {}",
            q(role)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_own_readers_read_and_roles_are_created_once() {
        let layout = Layout {
            database: "warehouse".into(),
            owners: BTreeMap::from([
                ("analytics".into(), "shop_prod".into()),
                ("analytics_marts".into(), "shop_prod".into()),
            ]),
            reader_role: "shop_reader".into(),
            developer_role: "shop_developer".into(),
            ci_role: "shop_ci".into(),
            developers: vec!["alice".into()],
            ci_users: vec!["runner".into()],
            source_schemas: vec!["raw".into()],
        };
        let sql = sql(&layout).join(";\n");
        for expected in [
            "create role \"shop_prod\" login",
            "create role \"shop_reader\" nologin",
            "grant \"shop_developer\" to \"alice\"",
            "grant \"shop_ci\" to \"runner\"",
            "grant connect, create on database \"warehouse\" to \"shop_developer\", \"shop_ci\", \"shop_prod\"",
            "alter schema \"analytics_marts\" owner to \"shop_prod\"",
            "revoke all on schema \"analytics\" from public",
            "alter default privileges for role \"shop_prod\" in schema \"analytics\" grant select on tables to \"shop_reader\"",
            "revoke create on schema \"raw\" from public, \"shop_developer\", \"shop_ci\"",
            "grant select on all tables in schema \"raw\" to \"shop_reader\"",
        ] {
            assert!(sql.contains(expected), "{expected}\n{sql}");
        }
        assert_eq!(sql.matches("create role \"shop_prod\"").count(), 1);
    }
}
