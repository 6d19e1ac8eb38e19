//! Blue-green deploys: the whole project is built and tested in a shadow set
//! of schemas (`<schema>__next`); only when everything passed are all the
//! schemas of the set swapped in one transaction (ALTER SCHEMA ... RENAME),
//! the previous set kept as `<schema>__prev` for `weir rollback`.
//!
//! Readers never see a mix: the swap first takes an ACCESS EXCLUSIVE lock on
//! every live relation, so a query that already read the old set finishes
//! before the swap, and one that waited resolves its names again after it,
//! to the new set. Views built in the shadow set refer to their relations by
//! OID, and a schema rename keeps OIDs: they follow their tables.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::adapter::Adapter;
use crate::base::quote::{quote_identifier, quote_literal};
use crate::compile::{CompileOptions, Compiled};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Manifest, Materialization};

/// The suffix of the schemas a deploy builds in.
pub const NEXT: &str = "__next";
/// The suffix the replaced set keeps, for rollback.
pub const PREV: &str = "__prev";
/// How long the swap waits for one lock before letting readers go first and
/// trying again: far below deadlock_timeout, so a reader is never the victim.
const SWAP_LOCK_TIMEOUT_MS: u64 = 250;
const SWAP_ATTEMPTS: u32 = 40;
/// The first int of a deploy's advisory lock on one schema (`wdpl` in ASCII;
/// the runner's per-relation locks use `weir`), the schema's hash the second.
const DEPLOY_LOCK_CLASS: i32 = 0x7764_706c;

/// The project compiled for its live schemas and for the shadow set.
pub struct Deploy {
    pub live: Compiled,
    pub shadow: Compiled,
    /// The live schemas of the set, sorted.
    pub schemas: Vec<String>,
}

impl Deploy {
    pub fn compile(options: &CompileOptions) -> Result<Deploy> {
        let live = crate::compile::Compiled::load(options)?;
        let shadow = crate::compile::Compiled::load(&CompileOptions {
            shadow_suffix: Some(NEXT.to_string()),
            ..options.clone()
        })?;
        let schemas = schema_set(&live.manifest);
        Ok(Deploy {
            live,
            shadow,
            schemas,
        })
    }
}

/// Every schema the project builds a relation in, audit schemas included:
/// a deploy's run stores the failures its tests' configs ask it to (it is
/// given no --store-failures), and those schemas are swapped with the rest.
pub fn schema_set(manifest: &Manifest) -> Vec<String> {
    let set: BTreeSet<String> = manifest
        .nodes
        .values()
        .filter(|n| crate::manifest::builds_relation(n, false))
        .map(|n| n.relation.schema.clone())
        .collect();
    set.into_iter().collect()
}

/// Take the deploy lock of every schema of `schemas` on `adapter`'s session:
/// two deploys (or a deploy and a rollback) of one schema set never run at
/// once, whichever machine they run on. Held until the session ends, so a
/// deploy holds it from `prepare` through the build to `swap` on the one
/// connection it keeps, and a deploy that dies releases it with its
/// connection. The second deployer fails at once, naming the first: a wait
/// would hold a CI runner for a whole build only to swap prod a second time,
/// and schedulers queue or retry their own jobs (the error is transient).
pub fn lock(adapter: &mut dyn Adapter, target: &str, schemas: &[String]) -> Result<()> {
    let me = format!(
        "weir deploy {target}: pid {} on {}",
        std::process::id(),
        hostname()
    );
    take_locks(adapter, target, &me, "pg_try_advisory_lock", schemas)
}

/// This process as a deploy in one process names itself (its lease's id):
/// target, pid, host and start time, so no two are alike.
pub fn process_name(target: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "weir deploy {target}: pid {} on {} at {}.{:09}",
        std::process::id(),
        hostname(),
        now.as_secs(),
        now.subsec_nanos()
    )
}

/// The deploy lock of every schema of `schemas`, shared: what a node task of
/// a deploy run as separate steps holds while it builds into the shadow set.
/// Tasks of one deploy share it; a `prepare`, `swap` or rollback (which take
/// it whole) waits for none of them, and fails at once, as [`lock`] does.
pub fn lock_shared(
    adapter: &mut dyn Adapter,
    target: &str,
    deploy_id: &str,
    schemas: &[String],
) -> Result<()> {
    let me = format!("weir deploy {target}: step of {deploy_id}");
    take_locks(adapter, target, &me, "pg_try_advisory_lock_shared", schemas)
}

/// Release every deploy lock this session holds, before its connection
/// closes: a server process ends a moment after its client leaves, and the
/// next step must not find the lock still held by the last one.
pub fn unlock(adapter: &mut dyn Adapter) {
    // A lost connection released them already.
    let _ = adapter.execute("select pg_advisory_unlock_all()");
}

fn take_locks(
    adapter: &mut dyn Adapter,
    target: &str,
    me: &str,
    function: &str,
    schemas: &[String],
) -> Result<()> {
    // What the second deployer is shown (PostgreSQL keeps 63 bytes).
    let me: String = me
        .char_indices()
        .take_while(|(i, c)| i + c.len_utf8() <= 63)
        .map(|(_, c)| c)
        .collect();
    adapter.execute(&format!("set application_name = {}", quote_literal(&me)))?;
    let mut sorted: Vec<&String> = schemas.iter().collect();
    sorted.sort();
    let mut taken = Vec::new();
    let unlock = function.replace("try_advisory_lock", "advisory_unlock");
    for schema in sorted {
        let key = format!("{DEPLOY_LOCK_CLASS}, hashtext({})", quote_literal(schema));
        let rows = adapter.query_text(&format!("select {function}({key})"))?;
        if rows
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.as_deref())
            == Some("t")
        {
            taken.push(key);
            continue;
        }
        let holder = lock_holder(adapter, schema)?;
        for key in taken {
            adapter.execute(&format!("select {unlock}({key})"))?;
        }
        return Err(Error::new(
            ErrorKind::Transient,
            format!(
                "another weir deploy of target `{target}` is running ({holder}); it holds the \
                 deploy lock of schema `{schema}`. Nothing was changed."
            ),
        )
        .with_hint(
            "wait for it to finish, then deploy again; a deploy whose process died releases \
             the lock with its connection",
        ));
    }
    Ok(())
}

/// Who holds the deploy lock of `schema`: its session's application name
/// (a weir deploy sets it to its pid and host), since when it is connected,
/// and its server process.
fn lock_holder(adapter: &mut dyn Adapter, schema: &str) -> Result<String> {
    let rows = adapter.query_text(&format!(
        "select a.application_name, to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), \
         a.pid::text from pg_locks l join pg_stat_activity a on a.pid = l.pid \
         where l.locktype = 'advisory' and l.granted and l.objsubid = 2 \
         and l.classid = {DEPLOY_LOCK_CLASS}::oid and l.objid = hashtext({})::oid \
         and l.database = (select oid from pg_database where datname = current_database()) \
         and a.pid <> pg_backend_pid() order by l.mode = 'ExclusiveLock' desc limit 1",
        quote_literal(schema)
    ))?;
    Ok(match rows.first().map(|r| r.as_slice()) {
        Some([name, started, pid]) => format!(
            "{}, started at {}, database process {}",
            name.as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or("a session with no application name"),
            started.as_deref().unwrap_or("an unknown time"),
            pid.as_deref().unwrap_or("unknown")
        ),
        // It finished between the two questions.
        _ => "it has just finished".to_string(),
    })
}

fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| {
            std::fs::read_to_string(path)
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "an unknown host".to_string())
}

fn with(schema: &str, suffix: &str) -> String {
    format!("{schema}{suffix}")
}

fn schema_exists(adapter: &mut dyn Adapter, schema: &str) -> Result<bool> {
    adapter.schema_exists(schema)
}

/// Get the shadow set ready to be built: what a failed deploy left is
/// dropped, the previous set is checked to be droppable at swap time, and
/// incremental models start from a copy of their live table (their history
/// may not be rebuildable from sources). Returns warnings to show.
pub fn prepare(adapter: &mut dyn Adapter, deploy: &Deploy) -> Result<Vec<String>> {
    check_shadow_droppable(adapter, &deploy.schemas)?;
    for schema in &deploy.schemas {
        let next = with(schema, NEXT);
        adapter
            .execute(&format!(
                "drop schema if exists {} cascade",
                quote_identifier(&next)
            ))
            .map_err(|e| {
                Error::new(
                    e.kind(),
                    format!(
                        "cannot drop schema `{next}`, which weir deploy rebuilds the shadow set \
                         in: {}. Nothing was changed.",
                        e.message()
                    ),
                )
                .with_hint(format!(
                    "drop `{next}` yourself (as its owner or a superuser), then deploy again"
                ))
            })?;
    }
    check_prev_droppable(adapter, &deploy.schemas)?;
    let mut warnings = Vec::new();
    for node in deploy.live.manifest.nodes.values() {
        if node.materialization != Materialization::Incremental {
            continue;
        }
        let live = &node.relation;
        let exists = adapter
            .relation_kinds(&live.schema, &[live.identifier.as_str()])?
            .into_iter()
            .any(|(_, kind)| kind == crate::adapter::RelationKind::Table);
        if !exists {
            continue;
        }
        let Some(shadow) = deploy.shadow.manifest.nodes.get(&node.unique_id) else {
            continue;
        };
        let shadow = &shadow.relation;
        let statements = [
            format!(
                "create schema if not exists {}",
                quote_identifier(&shadow.schema)
            ),
            format!("create table {shadow} (like {live} including all)"),
            format!("insert into {shadow} select * from {live}"),
        ];
        crate::adapter::in_transaction(adapter, |a| {
            for sql in &statements {
                a.execute(sql)?;
            }
            Ok(())
        })?;
        warnings.push(format!(
            "{} starts from a copy of {live} (incremental)",
            node.name
        ));
    }
    warnings.extend(
        external_dependents(adapter, &deploy.schemas)?
            .into_iter()
            .map(|(dependent, on)| {
                format!(
                    "{dependent} (outside the deployed schemas) reads {on}: after the swap it \
                     still reads the previous set, in {}; recreate it to read the new one",
                    with(on.split('.').next().unwrap_or(""), PREV)
                )
            }),
    );
    Ok(warnings)
}

/// A deploy drops and rebuilds `<schema>__next`; one the deploy's role may
/// not drop (a developer made it, say) would fail the drop with a bare
/// permission error. Say whose it is and what to do instead.
fn check_shadow_droppable(adapter: &mut dyn Adapter, schemas: &[String]) -> Result<()> {
    if schemas.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = schemas
        .iter()
        .map(|s| quote_literal(&with(s, NEXT)))
        .collect();
    let rows = adapter.query_text(&format!(
        "select n.nspname, pg_get_userbyid(n.nspowner), current_user::text from pg_namespace n \
         where n.nspname in ({}) and not pg_has_role(current_user, n.nspowner, 'USAGE') \
         order by 1",
        list.join(", ")
    ))?;
    let Some([Some(next), Some(owner), Some(me)]) = rows.first().map(|r| r.as_slice()) else {
        return Ok(());
    };
    Err(Error::new(
        ErrorKind::Usage,
        format!(
            "schema `{next}` exists and belongs to `{owner}`, not to `{me}`, the role this \
             deploy connects as: weir deploy builds its shadow set in `{next}` and must drop \
             it first. Nothing was changed."
        ),
    )
    .with_hint(format!(
        "if what is in it is not needed, drop it as `{owner}` or a superuser \
         (`drop schema {} cascade`), else rename it; then deploy again. `<schema>{NEXT}` \
         and `<schema>{PREV}` are weir deploy's: keep other work out of them",
        quote_identifier(next)
    )))
}

/// Views and other objects outside `schemas` that depend on relations in
/// them: (dependent, relation), both as `schema.name`.
fn external_dependents(
    adapter: &mut dyn Adapter,
    schemas: &[String],
) -> Result<Vec<(String, String)>> {
    if schemas.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = schemas.iter().map(|s| quote_literal(s)).collect();
    let sql = format!(
        "select distinct dn.nspname || '.' || dc.relname, sn.nspname || '.' || sc.relname \
         from pg_depend d \
         join pg_rewrite r on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid \
         join pg_class dc on dc.oid = r.ev_class \
         join pg_namespace dn on dn.oid = dc.relnamespace \
         join pg_class sc on d.refclassid = 'pg_class'::regclass and sc.oid = d.refobjid \
         join pg_namespace sn on sn.oid = sc.relnamespace \
         where sn.nspname in ({0}) and dn.nspname not in ({0}) and dc.oid <> sc.oid \
         order by 1, 2",
        list.join(", ")
    );
    Ok(adapter
        .query_text(&sql)?
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap_or_default(),
                r[1].clone().unwrap_or_default(),
            )
        })
        .collect())
}

/// The swap drops the previous set; objects outside it that read it would
/// go with it (`cascade`), so the deploy stops first, naming them.
fn check_prev_droppable(adapter: &mut dyn Adapter, schemas: &[String]) -> Result<()> {
    let prev: Vec<String> = schemas.iter().map(|s| with(s, PREV)).collect();
    let dependents = external_dependents(adapter, &prev)?;
    if let Some((dependent, on)) = dependents.first() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "{dependent} reads {on}, which this deploy would drop with the previous set \
                 ({} object(s) outside the set depend on it); nothing was changed",
                dependents.len()
            ),
        )
        .with_hint("recreate those views on the live schemas, or drop them, then deploy again"));
    }
    Ok(())
}

/// What a swap did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swapped {
    /// How many times the swap let readers finish before it got its locks.
    pub lock_retries: u32,
}

/// Swap every schema of the set with its shadow, in one transaction: the live
/// one becomes `__prev` (replacing an older one), the shadow becomes live.
/// `also` runs last in the same transaction (the lease's end).
pub fn swap(adapter: &mut dyn Adapter, schemas: &[String], also: &[String]) -> Result<Swapped> {
    for schema in schemas {
        if !schema_exists(adapter, &with(schema, NEXT))? {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "nothing to swap in: schema {} does not exist",
                    with(schema, NEXT)
                ),
            )
            .with_hint("build the shadow set first (weir deploy does)"));
        }
    }
    check_prev_droppable(adapter, schemas)?;
    let mut statements = Vec::new();
    for schema in schemas {
        let (live, next, prev) = (
            quote_identifier(schema),
            quote_identifier(&with(schema, NEXT)),
            quote_identifier(&with(schema, PREV)),
        );
        statements.push(format!("drop schema if exists {prev} cascade"));
        statements.push(format!(
            "do $$ begin if exists (select from pg_namespace where nspname = {}) then \
             execute {}; end if; end $$",
            quote_literal(schema),
            quote_literal(&format!("alter schema {live} rename to {prev}"))
        ));
        statements.push(format!("alter schema {next} rename to {live}"));
    }
    statements.extend(also.iter().cloned());
    let copy_grants = grants_copy_sql(adapter, schemas, NEXT)?;
    renames_under_locks(adapter, schemas, &copy_grants, &statements)
}

/// Undo the last deploy: the live set goes back to `__next` and `__prev`
/// becomes live again, in one transaction.
/// `also` runs last in the same transaction.
pub fn rollback(adapter: &mut dyn Adapter, schemas: &[String], also: &[String]) -> Result<Swapped> {
    let mut missing = Vec::new();
    for schema in schemas {
        if !schema_exists(adapter, &with(schema, PREV))? {
            missing.push(with(schema, PREV));
        }
    }
    if !missing.is_empty() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("nothing to roll back to: {} missing", missing.join(", ")),
        )
        .with_hint(
            "a rollback needs the set the last deploy replaced; it is kept until the next deploy",
        ));
    }
    let mut statements = Vec::new();
    for schema in schemas {
        let (live, next, prev) = (
            quote_identifier(schema),
            quote_identifier(&with(schema, NEXT)),
            quote_identifier(&with(schema, PREV)),
        );
        statements.push(format!("drop schema if exists {next} cascade"));
        statements.push(format!("alter schema {live} rename to {next}"));
        statements.push(format!("alter schema {prev} rename to {live}"));
    }
    statements.extend(also.iter().cloned());
    let copy_grants = grants_copy_sql(adapter, schemas, PREV)?;
    renames_under_locks(adapter, schemas, &copy_grants, &statements)
}

/// Lock every live relation, then run the renames, in one transaction; when
/// a reader holds a lock past the lock timeout, roll back, let it finish,
/// and try again.
fn renames_under_locks(
    adapter: &mut dyn Adapter,
    schemas: &[String],
    grants: &[String],
    renames: &[String],
) -> Result<Swapped> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = crate::adapter::in_transaction(adapter, |a| {
            a.execute(&format!(
                "set local lock_timeout = '{SWAP_LOCK_TIMEOUT_MS}ms'"
            ))?;
            let relations = live_relations(a, schemas)?;
            if !relations.is_empty() {
                a.execute(&format!(
                    "lock table {} in access exclusive mode",
                    relations.join(", ")
                ))?;
            }
            for sql in grants.iter().chain(renames) {
                a.execute(sql)?;
            }
            Ok(())
        });
        match outcome {
            Ok(()) => {
                return Ok(Swapped {
                    lock_retries: attempt - 1,
                });
            }
            Err(err) if err.is_transient() && attempt < SWAP_ATTEMPTS => {
                std::thread::sleep(Duration::from_millis(20 * u64::from(attempt.min(10))));
            }
            Err(err) => return Err(err),
        }
    }
}

/// The tables and views of the live schemas, quoted, in a stable order.
fn live_relations(adapter: &mut dyn Adapter, schemas: &[String]) -> Result<Vec<String>> {
    let list: Vec<String> = schemas.iter().map(|s| quote_literal(s)).collect();
    let rows = adapter.query_text(&format!(
        "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname in ({}) and c.relkind in ('r', 'p', 'v', 'm') order by 1, 2",
        list.join(", ")
    ))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            format!(
                "{}.{}",
                quote_identifier(r[0].as_deref().unwrap_or("")),
                quote_identifier(r[1].as_deref().unwrap_or(""))
            )
        })
        .collect())
}

/// GRANTs giving the schemas `<schema><suffix>` (and their relations, and the
/// default privileges for new tables) what the live schemas grant today, so
/// that readers keep their access across the swap.
fn grants_copy_sql(
    adapter: &mut dyn Adapter,
    schemas: &[String],
    suffix: &str,
) -> Result<Vec<String>> {
    let list: Vec<String> = schemas.iter().map(|s| quote_literal(s)).collect();
    let list = list.join(", ");
    let grantee =
        "case when a.grantee = 0 then 'public' else quote_ident(a.grantee::regrole::text) end";
    let mut out = Vec::new();
    let schema_rows = adapter.query_text(&format!(
        "select n.nspname, a.privilege_type, {grantee}, a.is_grantable \
         from pg_namespace n, aclexplode(n.nspacl) a \
         where n.nspname in ({list}) and a.grantee <> n.nspowner order by 1, 2, 3"
    ))?;
    for r in schema_rows {
        let [Some(schema), Some(privilege), Some(grantee), grantable] = &r[..] else {
            continue;
        };
        out.push(format!(
            "grant {privilege} on schema {} to {grantee}{}",
            quote_identifier(&with(schema, suffix)),
            grant_option(grantable)
        ));
    }
    let relation_rows = adapter.query_text(&format!(
        "select n.nspname, c.relname, a.privilege_type, {grantee}, a.is_grantable \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a \
         where n.nspname in ({list}) and c.relkind in ('r', 'p', 'v', 'm') \
         and a.grantee <> c.relowner \
         and exists (select from pg_class c2 join pg_namespace n2 on n2.oid = c2.relnamespace \
                     where n2.nspname = n.nspname || {} and c2.relname = c.relname) \
         order by 1, 2, 3, 4",
        quote_literal(suffix)
    ))?;
    for r in relation_rows {
        let [
            Some(schema),
            Some(name),
            Some(privilege),
            Some(grantee),
            grantable,
        ] = &r[..]
        else {
            continue;
        };
        out.push(format!(
            "grant {privilege} on {}.{} to {grantee}{}",
            quote_identifier(&with(schema, suffix)),
            quote_identifier(name),
            grant_option(grantable)
        ));
    }
    let default_rows = adapter.query_text(&format!(
        "select n.nspname, quote_ident(d.defaclrole::regrole::text), d.defaclobjtype, \
         a.privilege_type, {grantee}, a.is_grantable \
         from pg_default_acl d join pg_namespace n on n.oid = d.defaclnamespace, \
         aclexplode(d.defaclacl) a where n.nspname in ({list}) order by 1, 2, 3, 4, 5"
    ))?;
    let object_words: BTreeMap<&str, &str> = [
        ("r", "tables"),
        ("S", "sequences"),
        ("f", "functions"),
        ("T", "types"),
    ]
    .into_iter()
    .collect();
    for r in default_rows {
        let [
            Some(schema),
            Some(role),
            Some(kind),
            Some(privilege),
            Some(grantee),
            grantable,
        ] = &r[..]
        else {
            continue;
        };
        let Some(objects) = object_words.get(kind.as_str()) else {
            continue;
        };
        out.push(format!(
            "alter default privileges for role {role} in schema {} grant {privilege} on {objects} to {grantee}{}",
            quote_identifier(&with(schema, suffix)),
            grant_option(grantable)
        ));
    }
    Ok(out)
}

fn grant_option(grantable: &Option<String>) -> &'static str {
    if grantable.as_deref() == Some("t") {
        " with grant option"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::materialize::testing::Recorder;

    #[test]
    fn the_set_holds_the_audit_schemas_the_deploy_run_stores_failures_in() {
        // A deploy runs without --store-failures: `by_flag` stores nothing,
        // and store_failures_as: ephemeral wins over store_failures: true.
        let (manifest, _) = crate::materialize::testing::storing_failures();
        assert_eq!(schema_set(&manifest), ["audit_config", "audit_view", "dev"]);
    }

    #[test]
    fn swap_renames_every_schema_in_one_transaction_under_locks() {
        let mut db = Recorder {
            schemas: vec!["a__next".into(), "b__next".into()],
            ..Recorder::default()
        };
        swap(&mut db, &["a".into(), "b".into()], &[]).unwrap();
        let script = db.statements.join(";\n");
        let begin = script.find("begin").unwrap();
        let commit = script.rfind("commit").unwrap();
        for expected in [
            "drop schema if exists \"a__prev\" cascade",
            "alter schema \"a__next\" rename to \"a\"",
            "alter schema \"b__next\" rename to \"b\"",
        ] {
            let at = script
                .find(expected)
                .unwrap_or_else(|| panic!("{expected}:\n{script}"));
            assert!(
                begin < at && at < commit,
                "{expected} inside the transaction"
            );
        }
    }

    #[test]
    fn swap_refuses_without_a_shadow_set() {
        let mut db = Recorder::default();
        let err = swap(&mut db, &["a".into()], &[]).unwrap_err();
        assert!(
            err.to_string().contains("schema a__next does not exist"),
            "{err}"
        );
        let err = rollback(&mut db, &["a".into()], &[]).unwrap_err();
        assert!(err.to_string().contains("a__prev missing"), "{err}");
    }
}
