//! The Python exception classes of weir and the one place where a
//! [`crate::Error`] becomes one of them.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use crate::error::{Error, ErrorKind};

pyo3::create_exception!(
    weir.errors,
    WeirError,
    PyException,
    "Base class of every error weir raises. Attributes: kind, file, line, hint."
);
pyo3::create_exception!(
    weir.errors,
    ProjectError,
    WeirError,
    "The project, its profile, a template or the DAG is wrong (bad YAML, missing ref, cycle...)."
);
pyo3::create_exception!(
    weir.errors,
    UsageError,
    WeirError,
    "The API was called wrongly: an unknown node, a bad selector."
);
pyo3::create_exception!(
    weir.errors,
    DatabaseError,
    WeirError,
    "The database rejected the work; trying again would fail the same way."
);
pyo3::create_exception!(
    weir.errors,
    TransientError,
    WeirError,
    "The database failed in a way a retry can fix: lost connection, shutdown, serialization failure."
);

/// The snake_case name of a kind, as Python sees it in `error.kind`.
fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Usage => "usage",
        ErrorKind::Io => "io",
        ErrorKind::Project => "project",
        ErrorKind::Profile => "profile",
        ErrorKind::Template => "template",
        ErrorKind::NeedsDatabase => "needs_database",
        ErrorKind::MissingNode => "missing_node",
        ErrorKind::Cycle => "cycle",
        ErrorKind::Selection => "selection",
        ErrorKind::LocalDatabase => "local_database",
        ErrorKind::Transient => "transient",
        ErrorKind::Database => "database",
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        // Python tracebacks end up in Airflow's logs: no secret goes in.
        let message = crate::base::secrets::scrub(&err.to_string()).into_owned();
        let py_err = match err.kind() {
            ErrorKind::Io
            | ErrorKind::Project
            | ErrorKind::Profile
            | ErrorKind::Template
            | ErrorKind::NeedsDatabase
            | ErrorKind::MissingNode
            | ErrorKind::Cycle => ProjectError::new_err(message),
            ErrorKind::Usage | ErrorKind::Selection => UsageError::new_err(message),
            ErrorKind::LocalDatabase | ErrorKind::Database => DatabaseError::new_err(message),
            ErrorKind::Transient => TransientError::new_err(message),
        };
        Python::attach(|py| {
            let value = py_err.value(py);
            // Setting attributes on a fresh exception instance cannot fail in practice;
            // if it did, the exception would still carry its message.
            let _ = value.setattr("kind", kind_name(err.kind()));
            let _ = value.setattr("file", err.file().map(|f| f.display().to_string()));
            let _ = value.setattr("line", err.line());
            let _ = value.setattr(
                "hint",
                err.hint()
                    .map(|h| crate::base::secrets::scrub(h).into_owned()),
            );
        });
        py_err
    }
}
