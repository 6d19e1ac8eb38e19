//! The one error type of weir: what went wrong, where (file and line), and
//! whether trying again could help.

use std::fmt;
use std::path::{Path, PathBuf};

/// What kind of thing went wrong. The kind decides the exit status of the CLI,
/// the Python exception class, and whether a retry is worth it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// Bad command-line arguments or API use.
    Usage,
    /// A file could not be read or written.
    Io,
    /// dbt_project.yml, a properties YAML or a CSV is malformed.
    Project,
    /// profiles.yml is missing, malformed, or lacks the target.
    Profile,
    /// A Jinja template failed to parse or render.
    Template,
    /// A template asked the database while rendering where none was at
    /// hand (the compile): the node renders again when it runs.
    NeedsDatabase,
    /// `ref` or `source` names something that does not exist.
    MissingNode,
    /// The model DAG has a cycle.
    Cycle,
    /// A selector could not be parsed or evaluated.
    Selection,
    /// The embedded local PostgreSQL could not be set up or started.
    LocalDatabase,
    /// The database failed in a way a retry can fix: lost connection,
    /// shutdown, serialization failure, deadlock, lock timeout, too many connections.
    Transient,
    /// The database rejected the SQL: a retry would fail the same way.
    Database,
}

/// A weir error: a kind, a message a user can act on, and where it comes from.
/// Serializable: a node that failed to render keeps its error in the
/// compile cache, to fail with it when it runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    file: Option<PathBuf>,
    /// 32 bits: a line past 4 billion is not worth a larger error.
    line: Option<std::num::NonZeroU32>,
    snippet: Option<String>,
    /// What the error happened inside of: `in macro x (macros/x.sql:3),
    /// called from model m (models/m.sql:1)`.
    context: Option<Box<str>>,
    hint: Option<Box<str>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            file: None,
            line: None,
            snippet: None,
            context: None,
            hint: None,
        }
    }

    /// Attach the file the error is about (kept if one is already set).
    pub fn in_file(mut self, file: impl AsRef<Path>) -> Self {
        if self.file.is_none() {
            self.file = Some(file.as_ref().to_path_buf());
        }
        self
    }

    /// Attach the 1-based line the error is about (kept if one is already set).
    pub fn at_line(mut self, line: usize) -> Self {
        if self.line.is_none() {
            self.line = std::num::NonZeroU32::new(u32::try_from(line).unwrap_or(u32::MAX));
        }
        self
    }

    /// The error is at `line` of `text`: that line is the snippet.
    pub fn at_line_of(self, text: &str, line: usize) -> Self {
        let source = line
            .checked_sub(1)
            .and_then(|index| text.lines().nth(index));
        let error = self.at_line(line);
        match source {
            Some(source) => error.with_snippet(source.trim_end()),
            None => error,
        }
    }

    /// The offending source text, shown under the message.
    pub fn with_snippet(mut self, snippet: impl Into<String>) -> Self {
        self.snippet = Some(snippet.into());
        self
    }

    /// A suggestion shown after the message ("did you mean `stg_orders`?").
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into().into_boxed_str());
        self
    }

    /// Say what the error happened inside of; a second call adds to the
    /// first (`in macro x (...)`, then `called for seed s (...)`).
    pub fn with_context(mut self, context: &str) -> Self {
        self.context = Some(match self.context.take() {
            Some(inner) => format!("{inner}, {context}").into_boxed_str(),
            None => context.into(),
        });
        self
    }

    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    pub fn io(path: impl AsRef<Path>, err: std::io::Error) -> Self {
        let path = path.as_ref();
        Error::new(
            ErrorKind::Io,
            format!("cannot access {}: {err}", path.display()),
        )
        .in_file(path)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    pub fn line(&self) -> Option<usize> {
        self.line.map(|line| line.get() as usize)
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// True when the same work, tried again later, could succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// Exit status of the CLI for this error: 1 when a node failed in the
    /// database, 2 for a usage or project error.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Transient | ErrorKind::Database => 1,
            _ => 2,
        }
    }

    /// Replace every occurrence of each secret in the message, snippet and hint.
    pub fn scrub(mut self, secrets: &[String]) -> Self {
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            self.message = self.message.replace(secret.as_str(), "*****");
            self.snippet = self.snippet.map(|s| s.replace(secret.as_str(), "*****"));
            let mask = |s: Box<str>| s.replace(secret.as_str(), "*****").into_boxed_str();
            self.context = self.context.map(mask);
            self.hint = self.hint.map(mask);
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line()) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            _ => {}
        }
        f.write_str(&self.message)?;
        if let Some(snippet) = &self.snippet {
            for line in snippet.lines() {
                write!(f, "\n  | {line}")?;
            }
        }
        if let Some(context) = &self.context {
            write!(f, "\n  {context}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// The 1-based line of a byte offset in a text.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The names closest to `wanted`, for "did you mean" hints.
pub fn did_you_mean<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(wanted, c), c))
        .filter(|(d, c)| *d <= (wanted.len().max(c.len()) / 3).max(1))
        .min()
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous_diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous_diagonal + usize::from(ca != *cb);
            previous_diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_and_hint() {
        let err = Error::new(ErrorKind::MissingNode, "model `stg_order` not found")
            .in_file("models/orders.sql")
            .at_line(3)
            .with_hint("did you mean `stg_orders`?");
        assert_eq!(
            err.to_string(),
            "models/orders.sql:3: model `stg_order` not found\n  hint: did you mean `stg_orders`?"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("stg_order", ["stg_orders", "customers"]).as_deref(),
            Some("did you mean `stg_orders`?")
        );
        assert_eq!(did_you_mean("zzz", ["stg_orders"]), None);
    }

    #[test]
    fn scrub_removes_secrets() {
        let err =
            Error::new(ErrorKind::Database, "password hunter2 rejected").scrub(&["hunter2".into()]);
        assert_eq!(err.message(), "password ***** rejected");
    }
}
