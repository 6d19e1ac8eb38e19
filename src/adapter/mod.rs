//! Database adapters: what materializations need from a connection, how to
//! connect to a target, and which database errors a retry can fix.

pub mod local;
pub mod postgres;
pub mod queries;

use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::target::Target;

/// What a relation already in the database is, as `pg_class.relkind` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    View,
    MaterializedView,
    ForeignTable,
}

impl RelationKind {
    /// The kind for a `relkind` letter; None for indexes, sequences and the like.
    pub fn from_relkind(relkind: char) -> Option<RelationKind> {
        match relkind {
            'r' | 'p' => Some(RelationKind::Table),
            'v' => Some(RelationKind::View),
            'm' => Some(RelationKind::MaterializedView),
            'f' => Some(RelationKind::ForeignTable),
            _ => None,
        }
    }

    /// The words naming the kind in `alter ...` and `drop ...`.
    pub fn sql_keyword(self) -> &'static str {
        match self {
            RelationKind::Table => "table",
            RelationKind::View => "view",
            RelationKind::MaterializedView => "materialized view",
            RelationKind::ForeignTable => "foreign table",
        }
    }
}

/// A column of a relation in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    /// `integer`, `character varying(10)`, `numeric(12,2)`, ...
    pub data_type: String,
}

/// What a materialization needs from a database connection. Every error is
/// already classified (transient or not) and scrubbed of the target's secrets.
///
/// Statements whose outcome nothing waits for are deferred: they run, in
/// order, at the start of the next round trip, before the statement sent
/// then, so that a build costs few round trips. An error in one of them
/// fails that next call, and the statements after it do not run.
pub trait Adapter {
    /// Run one statement; returns the row count the server reports (0 for DDL).
    fn execute(&mut self, sql: &str) -> Result<u64>;
    /// Run one of weir's own statements (one statement, no result wanted)
    /// at the start of the next round trip; see the trait's docs.
    fn defer(&mut self, sql: &str);
    /// Send the deferred statements now, on their own.
    fn flush(&mut self) -> Result<()>;
    /// Deferred: a transaction's first statement goes with its `begin`.
    fn begin(&mut self) -> Result<()>;
    fn commit(&mut self) -> Result<()>;
    fn rollback(&mut self) -> Result<()>;
    fn schema_exists(&mut self, schema: &str) -> Result<bool>;
    /// Which of `names` exist in `schema`, and as what.
    fn relation_kinds(
        &mut self,
        schema: &str,
        names: &[&str],
    ) -> Result<Vec<(String, RelationKind)>>;
    /// Run SQL that may hold several statements (a hook), discarding any rows.
    fn batch_execute(&mut self, sql: &str) -> Result<()>;
    /// Run one query and return its rows with every value as text (None for NULL).
    fn query_text(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>>;
    /// The columns of a relation (`"schema"."name"`, or a temporary table's
    /// quoted name) in order, with their types as `format_type` spells them.
    fn columns(&mut self, relation: &str) -> Result<Vec<ColumnInfo>>;
    /// Run a `copy ... from stdin` statement fed with `data`; returns the rows copied.
    fn copy_in(&mut self, sql: &str, data: &[u8]) -> Result<u64>;
    /// True once the connection is lost: it must be replaced before more work.
    fn is_closed(&self) -> bool;
}

/// Run `work` in one transaction: committed when it succeeds, rolled back when it fails.
pub fn in_transaction<T>(
    adapter: &mut dyn Adapter,
    work: impl FnOnce(&mut dyn Adapter) -> Result<T>,
) -> Result<T> {
    adapter.begin()?;
    match work(adapter).and_then(|value| adapter.commit().map(|()| value)) {
        Ok(value) => Ok(value),
        // The commit carries deferred statements: one of them may have
        // failed, leaving the transaction open and aborted.
        Err(err) => {
            // The first error is the one to report; a failed rollback only
            // means the connection is gone, which the caller sees next time.
            let _ = adapter.rollback();
            Err(err)
        }
    }
}

/// Connect to `target`; an embedded target starts the project's local cluster first.
pub fn connect(target: &Target, project_root: &Path) -> Result<postgres::PostgresAdapter> {
    let settings = postgres::ConnectionSettings::for_target(target, project_root)?;
    postgres::PostgresAdapter::connect(&settings)
}

/// SQLSTATE codes a retry can fix, besides the whole of class 08 (connection exception).
const TRANSIENT_SQLSTATES: &[&str] = &[
    "57P01", // admin_shutdown
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now
    "40001", // serialization_failure
    "40P01", // deadlock_detected
    "55P03", // lock_not_available
    "53300", // too_many_connections
];

/// Whether an error with this SQLSTATE is worth retrying.
pub fn sqlstate_kind(code: &str) -> ErrorKind {
    if code.starts_with("08") || TRANSIENT_SQLSTATES.contains(&code) {
        ErrorKind::Transient
    } else {
        ErrorKind::Database
    }
}

/// A driver error as a weir error: Postgres's message, detail, context and
/// hint with the SQLSTATE; transient when a retry could succeed.
pub fn classify(err: &postgres::Error) -> Error {
    match err.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let mut message = format!("{} (SQLSTATE {code})", db.message());
            if let Some(detail) = db.detail() {
                message.push_str("\n  detail: ");
                message.push_str(detail);
            }
            if let Some(context) = db.where_() {
                message.push_str("\n  context: ");
                message.push_str(context);
            }
            let error = Error::new(sqlstate_kind(code), message);
            match db.hint() {
                Some(hint) => error.with_hint(hint),
                None => error,
            }
        }
        None => {
            let kind = if is_connection_failure(err) {
                ErrorKind::Transient
            } else {
                ErrorKind::Database
            };
            let message = match std::error::Error::source(err) {
                Some(source) => format!("{err}: {source}"),
                // The driver only says "connection closed".
                None if err.is_closed() => "lost the connection to the database: the server \
                    closed it (shut down, restarted, or the session was terminated)"
                    .to_string(),
                None => err.to_string(),
            };
            Error::new(kind, message)
        }
    }
}

/// A lost or unreachable server, as opposed to a driver-side mistake.
fn is_connection_failure(err: &postgres::Error) -> bool {
    let io_cause = std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>());
    err.is_closed() || io_cause || err.to_string().starts_with("timeout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_and_concurrency_failures_are_transient() {
        for code in [
            "08000", "08003", "08006", "08001", "08004", "57P01", "57P02", "57P03", "40001",
            "40P01", "55P03", "53300",
        ] {
            assert_eq!(sqlstate_kind(code), ErrorKind::Transient, "{code}");
        }
    }

    #[test]
    fn sql_and_permission_failures_are_permanent() {
        for code in [
            "42601", "42P01", "42703", "22P02", "23505", "42501", "28P01", "3D000", "57014",
            "53100", "XX000",
        ] {
            assert_eq!(sqlstate_kind(code), ErrorKind::Database, "{code}");
        }
    }

    #[test]
    fn relkinds_map_to_sql_keywords() {
        assert_eq!(
            RelationKind::from_relkind('p').map(RelationKind::sql_keyword),
            Some("table")
        );
        assert_eq!(
            RelationKind::from_relkind('m').map(RelationKind::sql_keyword),
            Some("materialized view")
        );
        assert_eq!(RelationKind::from_relkind('i'), None);
    }
}
