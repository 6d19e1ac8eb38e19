//! The PostgreSQL adapter: connection settings from a target, one connection
//! per worker, and driver errors turned into classified, scrubbed weir errors.

use std::collections::HashSet;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use ::postgres::error::{ErrorPosition, SqlState};
use ::postgres::{Client, NoTls, SimpleQueryMessage};

use super::local::LocalCluster;
use super::{Adapter, ColumnInfo, RelationKind, classify};
use crate::base::quote::{quote_identifier, quote_literal};
use crate::error::{ErrorKind, Result};
use crate::target::{Secret, Target};

/// The driver's error; [`classify`] turns it into a weir error.
pub use ::postgres::Error;

/// dbt-postgres's default `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and as whom to connect. Debug and Display never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    pub dbname: String,
    pub connect_timeout: Duration,
    /// The project-local cluster, where a missing database may be created.
    pub embedded: bool,
}

impl ConnectionSettings {
    /// The settings of `target`; for an embedded target this starts (or finds)
    /// the project's local cluster.
    pub fn for_target(target: &Target, project_root: &Path) -> Result<ConnectionSettings> {
        Self::settings(target, project_root, true)?.ok_or_else(|| {
            crate::Error::new(ErrorKind::Database, "the local PostgreSQL did not start")
        })
    }

    /// The settings of `target` without starting anything: None for an
    /// embedded target whose cluster is not running.
    pub fn for_running_target(
        target: &Target,
        project_root: &Path,
    ) -> Result<Option<ConnectionSettings>> {
        Self::settings(target, project_root, false)
    }

    fn settings(
        target: &Target,
        project_root: &Path,
        start: bool,
    ) -> Result<Option<ConnectionSettings>> {
        if target.adapter_type != "postgres" {
            return Err(crate::Error::new(
                ErrorKind::Profile,
                format!(
                    "target `{}` has type `{}`, but weir runs on PostgreSQL only",
                    target.name, target.adapter_type
                ),
            )
            .with_hint("use `type: postgres`"));
        }
        let connect_timeout = target
            .connect_timeout_seconds
            .map_or(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs);
        if target.is_embedded() {
            let cluster = if start {
                LocalCluster::ensure_running(project_root)?
            } else {
                match LocalCluster::status(project_root)? {
                    Some(cluster) => cluster,
                    None => return Ok(None),
                }
            };
            return Ok(Some(ConnectionSettings {
                // Its Unix socket: the cluster admits only its owner there.
                host: cluster.socket_dir().to_string_lossy().into_owned(),
                port: cluster.port(),
                // initdb made `postgres` the cluster's only role.
                user: "postgres".to_string(),
                password: None,
                dbname: target.dbname.clone(),
                connect_timeout,
                embedded: true,
            }));
        }
        Ok(Some(ConnectionSettings {
            host: target.host.clone().unwrap_or_default(),
            port: target.port.unwrap_or(5432),
            user: target.user.clone(),
            password: target.password.clone(),
            dbname: target.dbname.clone(),
            connect_timeout,
            embedded: false,
        }))
    }

    fn secrets(&self) -> Vec<String> {
        self.password
            .iter()
            .map(|p| p.expose().to_string())
            .collect()
    }

    fn driver_config(&self, dbname: &str) -> ::postgres::Config {
        let mut config = ::postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(dbname)
            .application_name("weir")
            .connect_timeout(self.connect_timeout);
        if let Some(password) = &self.password {
            config.password(password.expose());
        }
        config
    }
}

impl fmt::Display for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "database `{}` on {}:{} as `{}`",
            self.dbname, self.host, self.port, self.user
        )
    }
}

impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionSettings({self})")
    }
}

/// One connection to PostgreSQL. Everything goes over the simple query
/// protocol: one round trip per call, carrying the deferred statements.
pub struct PostgresAdapter {
    client: Client,
    secrets: Vec<String>,
    /// Statements waiting for the next round trip ([`Adapter::defer`]).
    deferred: Vec<String>,
    /// Where the open transaction's `begin` waits in `deferred`, until it is sent.
    unsent_begin: Option<usize>,
    /// Which relations exist, asked in the round trip that took their lock:
    /// it answers `relation_kinds` until a statement that may change them runs.
    lookahead: Option<Lookahead>,
    /// Schemas seen to exist on this connection: asked once, not per node.
    known_schemas: HashSet<String>,
    /// Time spent waiting on the server, for the benchmarks' "time around the SQL".
    sql_time: Duration,
}

/// The relations of `schema` among `names` that exist, and as what.
struct Lookahead {
    schema: String,
    names: Vec<String>,
    kinds: Vec<(String, RelationKind)>,
}

impl Lookahead {
    /// The answer to `relation_kinds(schema, names)`, when this knows it.
    fn answer(&self, schema: &str, names: &[&str]) -> Option<Vec<(String, RelationKind)>> {
        if schema != self.schema || !names.iter().all(|n| self.names.iter().any(|k| k == n)) {
            return None;
        }
        Some(
            self.kinds
                .iter()
                .filter(|(name, _)| names.contains(&name.as_str()))
                .cloned()
                .collect(),
        )
    }
}

impl PostgresAdapter {
    pub fn connect(settings: &ConnectionSettings) -> Result<PostgresAdapter> {
        let secrets = settings.secrets();
        let client = match open(settings, &settings.dbname) {
            Err(err)
                if settings.embedded && err.code() == Some(&SqlState::INVALID_CATALOG_NAME) =>
            {
                create_database(settings)?;
                open(settings, &settings.dbname)
            }
            other => other,
        }
        .map_err(|err| connect_error(settings, &err))?;
        Ok(PostgresAdapter {
            client,
            secrets,
            deferred: Vec::new(),
            unsent_begin: None,
            lookahead: None,
            known_schemas: HashSet::new(),
            sql_time: Duration::ZERO,
        })
    }

    /// The driver's client, for queries the [`Adapter`] trait has no method
    /// for. Deferred statements stay deferred: [`Adapter::flush`] first.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Try the advisory lock `key` (the arguments of `pg_try_advisory_lock`)
    /// and, in the same round trip right after it, ask which of `names`
    /// exist in `schema`: what a build asks first. Once the lock is taken,
    /// that answers `relation_kinds` until a statement that may change
    /// relations runs. True when the lock was taken.
    pub fn try_lock(&mut self, key: &str, schema: &str, names: &[&str]) -> Result<bool> {
        self.lookahead = None;
        let sql = format!(
            "select pg_try_advisory_lock({key});\n{}",
            relations_sql(schema, names)
        );
        let messages = self.send(Some(&sql))?;
        let mut statements = split_statements(messages).into_iter();
        let taken = statements
            .next()
            .and_then(|rows| rows.into_iter().next())
            .and_then(|row| row.into_iter().next().flatten())
            .as_deref()
            == Some("t");
        if taken {
            self.lookahead = Some(Lookahead {
                schema: schema.to_string(),
                names: names.iter().map(|n| n.to_string()).collect(),
                kinds: relation_rows(statements.next().unwrap_or_default()),
            });
        }
        Ok(taken)
    }

    /// The time spent waiting on the server since the last call.
    pub fn take_sql_time(&mut self) -> Duration {
        std::mem::take(&mut self.sql_time)
    }

    /// One round trip, timed: the deferred statements, then `sql`. Returns
    /// the messages of `sql` alone. An error's snippet is cut from the text
    /// sent, so it shows the failing line whichever statement it is in.
    fn send(&mut self, sql: Option<&str>) -> Result<Vec<SimpleQueryMessage>> {
        let deferred = std::mem::take(&mut self.deferred);
        self.unsent_begin = None;
        let mut text = String::new();
        for statement in &deferred {
            text.push_str(statement);
            // A line comment at the end would swallow the semicolon.
            text.push_str(if statement.contains("--") {
                "\n;\n"
            } else {
                ";\n"
            });
        }
        match sql {
            Some(sql) => text.push_str(sql),
            None => text.truncate(text.trim_end().len()),
        }
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let messages = self.client.simple_query(&text);
        self.sql_time += started.elapsed();
        let messages = messages.map_err(|e| self.error(&e, Some(&text)))?;
        Ok(after_statements(messages, deferred.len()))
    }

    /// `send` for SQL that may change relations: what was looked ahead is stale.
    fn send_changing(&mut self, sql: Option<&str>) -> Result<Vec<SimpleQueryMessage>> {
        self.lookahead = None;
        self.send(sql)
    }

    /// A template's query (`run_query`, `statement`): the rows of its last
    /// statement, with column names and PostgreSQL's type names (asked by
    /// preparing it when it is one query; text otherwise) and the row count.
    pub fn query_table(&mut self, sql: &str) -> Result<crate::jinja::database::QueryResult> {
        let messages = self.send_changing(Some(sql))?;
        let mut result = crate::jinja::database::QueryResult::default();
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(columns) => {
                    result = crate::jinja::database::QueryResult {
                        column_names: columns.iter().map(|c| c.name().to_string()).collect(),
                        ..Default::default()
                    };
                }
                SimpleQueryMessage::Row(row) => result.rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                SimpleQueryMessage::CommandComplete(count) => result.rows_affected = count,
                _ => {}
            }
        }
        let body = sql.trim().trim_end_matches(';');
        let one_query = !body.contains(';') && {
            let first = body.split_whitespace().next().unwrap_or("");
            first.eq_ignore_ascii_case("select") || first.eq_ignore_ascii_case("with")
        };
        result.column_types = match one_query {
            true => match self.client.prepare(body) {
                Ok(statement) => statement
                    .columns()
                    .iter()
                    .map(|c| c.type_().name().to_string())
                    .collect(),
                Err(err) => return Err(self.error(&err, Some(sql))),
            },
            false => Vec::new(),
        };
        result
            .column_types
            .resize(result.column_names.len(), "text".to_string());
        Ok(result)
    }

    /// What cancels the query running on this connection, from another thread.
    pub fn cancel_token(&self) -> ::postgres::CancelToken {
        self.client.cancel_token()
    }

    /// The server process serving this connection (for `pg_terminate_backend`).
    pub fn backend_pid(&mut self) -> Result<i32> {
        let row = self
            .client
            .query_one("select pg_backend_pid()", &[])
            .map_err(|e| self.error(&e, None))?;
        Ok(row.get(0))
    }

    fn rows(&mut self, sql: &str, changing: bool) -> Result<Vec<Vec<Option<String>>>> {
        let messages = if changing {
            self.send_changing(Some(sql))?
        } else {
            self.send(Some(sql))?
        };
        Ok(split_statements(messages).into_iter().flatten().collect())
    }

    fn error(&self, err: &Error, sql: Option<&str>) -> crate::Error {
        let mut error = classify(err);
        let position = err.as_db_error().and_then(|db| db.position());
        if let (Some(ErrorPosition::Original(position)), Some(sql)) = (position, sql)
            && let Some(snippet) = snippet_at(sql, *position as usize)
        {
            error = error.with_snippet(snippet);
        }
        error.scrub(&self.secrets)
    }
}

fn open(settings: &ConnectionSettings, dbname: &str) -> Result<Client, Error> {
    settings.driver_config(dbname).connect(NoTls)
}

fn connect_error(settings: &ConnectionSettings, err: &Error) -> crate::Error {
    let cause = classify(err);
    let message = format!("cannot connect to {settings}: {}", cause.message());
    let error = crate::Error::new(cause.kind(), message);
    match cause.hint() {
        Some(hint) => error.with_hint(hint),
        None => error,
    }
    .scrub(&settings.secrets())
}

/// A newcomer's embedded target may name a database initdb did not create.
fn create_database(settings: &ConnectionSettings) -> Result<()> {
    let mut client = open(settings, "postgres").map_err(|e| connect_error(settings, &e))?;
    let sql = format!("create database {}", quote_identifier(&settings.dbname));
    match client.batch_execute(&sql) {
        // Another process created it first.
        Err(err) if err.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(()),
        Err(err) if err.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(()),
        Err(err) => Err(classify(&err)),
        Ok(()) => Ok(()),
    }
}

/// The messages after the first `skipped` statements' (each ends with its
/// CommandComplete): those of the statement a call is about.
fn after_statements(messages: Vec<SimpleQueryMessage>, skipped: usize) -> Vec<SimpleQueryMessage> {
    if skipped == 0 {
        return messages;
    }
    let mut completed = 0;
    messages
        .into_iter()
        .skip_while(|message| {
            if completed == skipped {
                return false;
            }
            if matches!(message, SimpleQueryMessage::CommandComplete(_)) {
                completed += 1;
            }
            true
        })
        .collect()
}

/// The rows of each statement, in order, every value as text.
fn split_statements(messages: Vec<SimpleQueryMessage>) -> Vec<Vec<Vec<Option<String>>>> {
    let mut statements = Vec::new();
    let mut rows = Vec::new();
    for message in messages {
        match message {
            SimpleQueryMessage::Row(row) => rows.push(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            SimpleQueryMessage::CommandComplete(_) => statements.push(std::mem::take(&mut rows)),
            _ => {}
        }
    }
    if !rows.is_empty() {
        statements.push(rows);
    }
    statements
}

/// Which of `names` exist in `schema`: rows of name and relkind.
fn relations_sql(schema: &str, names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| quote_literal(n)).collect();
    format!(
        "select c.relname::text, c.relkind::text from pg_class c \
         join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = {} and c.relname in ({})",
        quote_literal(schema),
        names.join(", ")
    )
}

fn relation_rows(rows: Vec<Vec<Option<String>>>) -> Vec<(String, RelationKind)> {
    rows.into_iter()
        .filter_map(|row| {
            let mut values = row.into_iter();
            let name = values.next()??;
            let kind = RelationKind::from_relkind(values.next()??.chars().next()?)?;
            Some((name, kind))
        })
        .collect()
}

/// The line of `sql` holding the 1-based character `position`, with a caret under it.
fn snippet_at(sql: &str, position: usize) -> Option<String> {
    let offset = sql.char_indices().nth(position.checked_sub(1)?)?.0;
    let line_start = sql[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = sql[offset..].find('\n').map_or(sql.len(), |i| offset + i);
    let column = sql[line_start..offset].chars().count();
    Some(format!(
        "{}\n{}^",
        &sql[line_start..line_end],
        " ".repeat(column)
    ))
}

impl Adapter for PostgresAdapter {
    /// The count is the last statement's.
    fn execute(&mut self, sql: &str) -> Result<u64> {
        let messages = self.send_changing(Some(sql))?;
        Ok(messages
            .iter()
            .rev()
            .find_map(|m| match m {
                SimpleQueryMessage::CommandComplete(rows) => Some(*rows),
                _ => None,
            })
            .unwrap_or(0))
    }

    fn defer(&mut self, sql: &str) {
        let sql = sql.trim().trim_end_matches(';').trim_end();
        if !sql.is_empty() {
            self.lookahead = None;
            self.deferred.push(sql.to_string());
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.send_changing(None).map(drop)
    }

    fn begin(&mut self) -> Result<()> {
        self.unsent_begin = Some(self.deferred.len());
        self.deferred.push("begin".to_string());
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        self.send_changing(Some("commit")).map(drop)
    }

    fn rollback(&mut self) -> Result<()> {
        self.lookahead = None;
        if let Some(begin) = self.unsent_begin.take() {
            // Nothing of the transaction reached the server: nothing to undo.
            self.deferred.truncate(begin);
            return Ok(());
        }
        // Whatever waits was deferred inside the failed transaction.
        self.deferred.clear();
        self.send(Some("rollback")).map(drop)
    }

    fn schema_exists(&mut self, schema: &str) -> Result<bool> {
        if self.known_schemas.contains(schema) {
            return Ok(true);
        }
        let sql = format!(
            "select exists (select 1 from pg_namespace where nspname = {})",
            quote_literal(schema)
        );
        let rows = self.rows(&sql, false)?;
        let exists = rows.first().and_then(|row| row.first()).cloned().flatten();
        if exists.as_deref() == Some("t") {
            self.known_schemas.insert(schema.to_string());
            return Ok(true);
        }
        Ok(false)
    }

    fn relation_kinds(
        &mut self,
        schema: &str,
        names: &[&str],
    ) -> Result<Vec<(String, RelationKind)>> {
        if let Some(known) = self
            .lookahead
            .as_ref()
            .and_then(|l| l.answer(schema, names))
        {
            return Ok(known);
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.rows(&relations_sql(schema, names), false)?;
        Ok(relation_rows(rows))
    }

    /// A hook's error must be the hook's: only a `begin` goes with it.
    fn batch_execute(&mut self, sql: &str) -> Result<()> {
        if self.deferred.iter().any(|s| s != "begin") {
            self.flush()?;
        }
        self.send_changing(Some(sql)).map(drop)
    }

    fn query_text(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        self.rows(sql, true)
    }

    fn columns(&mut self, relation: &str) -> Result<Vec<ColumnInfo>> {
        let sql = format!(
            "select attname::text, format_type(atttypid, atttypmod) from pg_attribute \
             where attrelid = {}::regclass and attnum > 0 and not attisdropped \
             order by attnum",
            quote_literal(relation)
        );
        let rows = self.rows(&sql, false)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let mut values = row.into_iter();
                Some(ColumnInfo {
                    name: values.next()??,
                    data_type: values.next()??,
                })
            })
            .collect())
    }

    /// COPY runs over the extended protocol: what is deferred goes first, alone.
    fn copy_in(&mut self, sql: &str, data: &[u8]) -> Result<u64> {
        self.flush()?;
        let started = Instant::now();
        let copied = match self.client.copy_in(sql) {
            Ok(mut writer) => {
                // A failed write means the server already rejected the COPY:
                // finish() reports its error, which says more than the broken pipe.
                let _ = writer.write_all(data);
                writer.finish()
            }
            Err(err) => Err(err),
        };
        self.sql_time += started.elapsed();
        copied.map_err(|e| classify(&e).scrub(&self.secrets))
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_points_at_the_error() {
        let sql = "create view x as (\nselec * from t\n)";
        assert_eq!(snippet_at(sql, 20).as_deref(), Some("selec * from t\n^"));
        assert_eq!(
            snippet_at(sql, 26).as_deref(),
            Some("selec * from t\n      ^")
        );
        assert_eq!(snippet_at(sql, 0), None);
        assert_eq!(snippet_at(sql, 999), None);
    }

    #[test]
    fn settings_never_show_the_password() {
        let settings = ConnectionSettings {
            host: "db".into(),
            port: 5432,
            user: "loader".into(),
            password: Some(Secret::new("hunter2")),
            dbname: "analytics".into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            embedded: false,
        };
        assert!(!format!("{settings} {settings:?}").contains("hunter2"));
    }
}
