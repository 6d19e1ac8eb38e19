//! Python values in and out of weir's types: vars, selectors, node results.

use std::path::Path;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Value as Json};

use crate::error::{Error, ErrorKind};
use crate::results::NodeResult;
use crate::select::{IndirectSelection, Selection};

/// `vars=`: a dict, or a YAML (or JSON) mapping as text, like dbt's `--vars`.
pub fn vars(value: Option<&Bound<'_, PyAny>>) -> PyResult<Map<String, Json>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Map::new());
    };
    let json = if let Ok(text) = value.cast::<PyString>() {
        let text = text.to_cow()?;
        crate::project::yaml::parse_text(&text)
            .map(|value| crate::project::yaml::to_json(&value))
            .map_err(|e| Error::new(ErrorKind::Usage, format!("vars: not a YAML mapping: {e}")))?
    } else {
        to_json(value)?
    };
    match json {
        Json::Object(map) => Ok(map),
        Json::Null => Ok(Map::new()),
        other => Err(Error::new(
            ErrorKind::Usage,
            format!("vars must be a mapping of names to values, got {other}"),
        )
        .into()),
    }
}

/// A plain Python value (None, bool, int, float, str, list, tuple, dict) as JSON.
fn to_json(value: &Bound<'_, PyAny>) -> PyResult<Json> {
    if value.is_none() {
        Ok(Json::Null)
    } else if let Ok(b) = value.cast::<PyBool>() {
        Ok(Json::Bool(b.is_true()))
    } else if value.is_instance_of::<PyInt>() {
        match value.extract::<i64>() {
            Ok(n) => Ok(Json::from(n)),
            Err(_) => Ok(Json::from(value.extract::<u64>()?)),
        }
    } else if value.is_instance_of::<PyFloat>() {
        Ok(Json::from(value.extract::<f64>()?))
    } else if let Ok(s) = value.cast::<PyString>() {
        Ok(Json::String(s.to_cow()?.into_owned()))
    } else if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in dict.iter() {
            map.insert(k.str()?.to_cow()?.into_owned(), to_json(&v)?);
        }
        Ok(Json::Object(map))
    } else if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let items: PyResult<Vec<Json>> = value.try_iter()?.map(|item| to_json(&item?)).collect();
        Ok(Json::Array(items?))
    } else {
        Err(PyTypeError::new_err(format!(
            "vars values must be None, bool, int, float, str, list or dict; got {}",
            value.get_type().name()?
        )))
    }
}

/// A selector argument: None, one string, or an iterable of strings.
fn strings(value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match value {
        None => Ok(Vec::new()),
        Some(v) if v.is_none() => Ok(Vec::new()),
        Some(v) => match v.cast::<PyString>() {
            Ok(s) => Ok(vec![s.to_cow()?.into_owned()]),
            Err(_) => v
                .try_iter()?
                .map(|item| item?.extract::<String>())
                .collect(),
        },
    }
}

/// The selection arguments of `select()` and `tasks()` as a [`Selection`] of
/// the project at `root` (its selectors.yml read, `path:` matched there).
pub fn selection(
    root: &Path,
    select: Option<&Bound<'_, PyAny>>,
    exclude: Option<&Bound<'_, PyAny>>,
    selector: Option<String>,
    indirect_selection: Option<&str>,
) -> PyResult<Selection> {
    let mut selection = Selection::for_project(root)?;
    selection.select = strings(select)?;
    selection.exclude = strings(exclude)?;
    selection.selector = selector;
    if let Some(mode) = indirect_selection {
        selection.indirect_selection = IndirectSelection::parse(mode)?;
    }
    Ok(selection)
}

/// What `run_node` returns: a dict of plain values, nothing secret.
pub fn node_result<'py>(py: Python<'py>, result: &NodeResult) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("unique_id", &result.unique_id)?;
    dict.set_item("status", result.status.as_str())?;
    // Returned values become XComs and log lines: no secret goes in.
    dict.set_item("message", crate::base::secrets::scrub(&result.message))?;
    dict.set_item("code", &result.code)?;
    dict.set_item("rows_affected", result.rows_affected)?;
    dict.set_item("failures", result.failures)?;
    dict.set_item("execution_time", result.execution_time)?;
    dict.set_item("relation_name", &result.relation_name)?;
    dict.set_item("attempts", result.attempts)?;
    dict.set_item("started_at", crate::base::clock::rfc3339(result.started_at))?;
    dict.set_item(
        "completed_at",
        crate::base::clock::rfc3339(result.completed_at),
    )?;
    dict.set_item(
        "compiled_code",
        crate::base::secrets::scrub(&result.compiled_code),
    )?;
    Ok(dict)
}
