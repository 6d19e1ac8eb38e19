//! The PostgreSQL adapter: connection settings from a target, one connection
//! per worker, and driver errors turned into classified, scrubbed weir errors.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use ::postgres::error::{ErrorPosition, SqlState};
use ::postgres::{Client, NoTls, SimpleQueryMessage};

use super::local::LocalCluster;
use super::{Adapter, ColumnInfo, RelationKind, classify};
use crate::error::{ErrorKind, Result};
use crate::manifest::quote_identifier;
use crate::profile::{Secret, Target};

/// The driver's error; [`classify`] turns it into a weir error.
pub use ::postgres::Error;

/// dbt-postgres's default `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and as whom to connect. Debug and Display never show the password.
#[derive(Clone)]
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
            let cluster = LocalCluster::ensure_running(project_root)?;
            return Ok(ConnectionSettings {
                host: "127.0.0.1".to_string(),
                port: cluster.port(),
                // initdb made `postgres` the cluster's only role.
                user: "postgres".to_string(),
                password: None,
                dbname: target.dbname.clone(),
                connect_timeout,
                embedded: true,
            });
        }
        Ok(ConnectionSettings {
            host: target.host.clone().unwrap_or_default(),
            port: target.port.unwrap_or(5432),
            user: target.user.clone(),
            password: target.password.clone(),
            dbname: target.dbname.clone(),
            connect_timeout,
            embedded: false,
        })
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

/// One connection to PostgreSQL.
pub struct PostgresAdapter {
    client: Client,
    secrets: Vec<String>,
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
        Ok(PostgresAdapter { client, secrets })
    }

    /// The driver's client, for queries the [`Adapter`] trait has no method for.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The server process serving this connection (for `pg_terminate_backend`).
    pub fn backend_pid(&mut self) -> Result<i32> {
        let row = self
            .client
            .query_one("select pg_backend_pid()", &[])
            .map_err(|e| self.error(&e, None))?;
        Ok(row.get(0))
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
    fn execute(&mut self, sql: &str) -> Result<u64> {
        self.client
            .execute(sql, &[])
            .map_err(|e| self.error(&e, Some(sql)))
    }

    fn begin(&mut self) -> Result<()> {
        self.client
            .batch_execute("begin")
            .map_err(|e| self.error(&e, None))
    }

    fn commit(&mut self) -> Result<()> {
        self.client
            .batch_execute("commit")
            .map_err(|e| self.error(&e, None))
    }

    fn rollback(&mut self) -> Result<()> {
        self.client
            .batch_execute("rollback")
            .map_err(|e| self.error(&e, None))
    }

    fn schema_exists(&mut self, schema: &str) -> Result<bool> {
        let sql = "select exists (select 1 from pg_namespace where nspname = $1)";
        let row = self
            .client
            .query_one(sql, &[&schema])
            .map_err(|e| self.error(&e, None))?;
        Ok(row.get(0))
    }

    fn relation_kinds(
        &mut self,
        schema: &str,
        names: &[&str],
    ) -> Result<Vec<(String, RelationKind)>> {
        let sql = "select c.relname::text, c.relkind::text from pg_class c \
                   join pg_namespace n on n.oid = c.relnamespace \
                   where n.nspname = $1 and c.relname = any($2)";
        let rows = self
            .client
            .query(sql, &[&schema, &names])
            .map_err(|e| self.error(&e, None))?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let relkind: String = row.get(1);
                let kind = RelationKind::from_relkind(relkind.chars().next()?)?;
                Some((row.get(0), kind))
            })
            .collect())
    }

    fn batch_execute(&mut self, sql: &str) -> Result<()> {
        self.client
            .batch_execute(sql)
            .map_err(|e| self.error(&e, Some(sql)))
    }

    fn query_text(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let messages = self
            .client
            .simple_query(sql)
            .map_err(|e| self.error(&e, Some(sql)))?;
        Ok(messages
            .iter()
            .filter_map(|message| match message {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    fn columns(&mut self, relation: &str) -> Result<Vec<ColumnInfo>> {
        let sql = "select attname::text, format_type(atttypid, atttypmod) from pg_attribute \
                   where attrelid = $1::text::regclass and attnum > 0 and not attisdropped \
                   order by attnum";
        let rows = self
            .client
            .query(sql, &[&relation])
            .map_err(|e| self.error(&e, None))?;
        Ok(rows
            .iter()
            .map(|row| ColumnInfo {
                name: row.get(0),
                data_type: row.get(1),
            })
            .collect())
    }

    fn copy_in(&mut self, sql: &str, data: &[u8]) -> Result<u64> {
        let mut writer = self
            .client
            .copy_in(sql)
            .map_err(|e| classify(&e).scrub(&self.secrets))?;
        // A failed write means the server already rejected the COPY: finish()
        // reports its error, which says more than the broken pipe.
        let _ = writer.write_all(data);
        writer
            .finish()
            .map_err(|e| classify(&e).scrub(&self.secrets))
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
