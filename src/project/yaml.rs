//! YAML as weir reads it: saphyr's parser (pure Rust, maintained), a tree
//! whose every node knows its line, scalars typed as dbt's PyYAML types
//! them, merge keys, and limits against hostile input. Errors name the file
//! and line: of a syntax error, or of the value a caller finds wrong.

mod emit;
mod load;
mod resolve;
mod tree;

use std::path::Path;

use serde_json::Value as Json;

pub use tree::{Kind, Mapping, Yaml};

use crate::error::{Error, ErrorKind, Result};

/// Parse a YAML document; an empty file (or one of comments) is an empty
/// mapping.
pub fn parse(text: &str, path: &Path) -> Result<Yaml> {
    let value = load::load(text).map_err(|err| {
        // An error at the end of the input is reported on the last line that exists.
        let line = err.line.min(text.lines().count()).max(1);
        Error::new(ErrorKind::Project, format!("invalid YAML: {}", err.message))
            .in_file(path)
            .at_line_of(text, line)
    })?;
    if value.is_null() && !has_content(text) {
        return Ok(Yaml::at(1, Kind::Mapping(Mapping::new())));
    }
    Ok(value)
}

/// Parse YAML that is not a file (`fromyaml`, `--vars`): the error is the
/// message alone.
pub fn parse_text(text: &str) -> std::result::Result<Yaml, String> {
    load::load(text).map_err(|err| format!("{} (line {})", err.message, err.line))
}

/// True when a text holds more than blank lines, comments and markers.
fn has_content(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start_matches('\u{feff}').trim();
        !(line.is_empty() || line.starts_with('#') || line == "---" || line == "...")
    })
}

/// An error found in the value `node` of the file at `path` (whose text is
/// `text`): it names that file and the value's line, whatever line it had
/// (a template counts lines from the start of the value), with that line
/// of the file as its snippet.
pub fn error_at(err: Error, path: &Path, text: &str, node: &Yaml) -> Error {
    let moved = Error::new(err.kind(), err.message())
        .in_file(path)
        .at_line_of(text, node.line());
    match err.hint() {
        Some(hint) => moved.with_hint(hint),
        None => moved,
    }
}

/// A new error about the value `node` of the file at `path`.
pub fn value_error(
    kind: ErrorKind,
    message: impl Into<String>,
    path: &Path,
    text: &str,
    node: &Yaml,
) -> Error {
    Error::new(kind, message)
        .in_file(path)
        .at_line_of(text, node.line())
}

/// A string field of a mapping, if present and a string.
pub fn str_field<'a>(value: &'a Yaml, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Yaml::as_str)
}

/// A list of strings from a field that may be one string or a list.
pub fn string_list(value: Option<&Yaml>) -> Vec<String> {
    match value.map(Yaml::kind) {
        Some(Kind::String(s)) => vec![s.clone()],
        Some(Kind::Sequence(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Convert YAML to JSON (for configs and vars); keys become strings, and
/// floats JSON cannot hold (NaN, infinities) become null.
pub fn to_json(value: &Yaml) -> Json {
    match value.kind() {
        Kind::Null => Json::Null,
        Kind::Bool(b) => Json::Bool(*b),
        Kind::Int(i) => Json::from(*i),
        Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Kind::String(s) => Json::String(s.clone()),
        Kind::Sequence(items) => Json::Array(items.iter().map(to_json).collect()),
        Kind::Mapping(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (key_string(k), to_json(v)))
                .collect(),
        ),
    }
}

/// A mapping key as a JSON key.
pub fn key_string(key: &Yaml) -> String {
    match key.kind() {
        Kind::String(s) => s.clone(),
        Kind::Null => "null".to_string(),
        Kind::Bool(b) => b.to_string(),
        Kind::Int(i) => i.to_string(),
        Kind::Float(f) => emit::float_text(*f),
        Kind::Sequence(_) | Kind::Mapping(_) => to_json(key).to_string(),
    }
}

/// JSON as a YAML tree (with no lines).
pub fn from_json(value: &Json) -> Yaml {
    let kind = match value {
        Json::Null => Kind::Null,
        Json::Bool(b) => Kind::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Kind::Int(i),
            None => Kind::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Kind::String(s.clone()),
        Json::Array(items) => Kind::Sequence(items.iter().map(from_json).collect()),
        Json::Object(map) => {
            let mut mapping = Mapping::new();
            for (k, v) in map {
                mapping.insert(Yaml::from(k.as_str()), from_json(v));
            }
            Kind::Mapping(mapping)
        }
    };
    Yaml::new(kind)
}

/// A scalar as PyYAML writes it after `key: ` (quoted only when it must be).
pub fn scalar_text(value: &Yaml) -> String {
    emit::scalar_text(value)
}

/// YAML text as dbt's `toyaml` (PyYAML's `safe_dump`) writes it.
pub fn to_string(value: &Yaml) -> String {
    emit::document(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_names_file_and_line() {
        let err = parse(
            "name: shop\nmodels:\n  - [unclosed\n",
            Path::new("dbt_project.yml"),
        )
        .unwrap_err();
        assert_eq!(err.file(), Some(Path::new("dbt_project.yml")));
        assert_eq!(err.line(), Some(3));
        assert!(err.message().starts_with("invalid YAML: "), "{err}");
    }

    #[test]
    fn a_byte_order_mark_is_not_content() {
        let value = parse("\u{feff}name: shop\n", Path::new("dbt_project.yml")).unwrap();
        assert_eq!(str_field(&value, "name"), Some("shop"));
        let value = parse("\u{feff}", Path::new("x.yml")).unwrap();
        assert!(value.as_mapping().is_some_and(Mapping::is_empty));
    }

    #[test]
    fn a_file_of_comments_is_an_empty_mapping() {
        let value = parse("# nothing yet\n\n", Path::new("schema.yml")).unwrap();
        assert!(value.as_mapping().is_some_and(Mapping::is_empty));
        // An explicit null is not empty.
        assert!(parse("~\n", Path::new("x.yml")).unwrap().is_null());
    }

    #[test]
    fn a_value_error_names_the_value_line() {
        let text = "version: 2\nsources:\n  - name: raw\n    schema: \"{{ target.schema }}\"\n";
        let doc = parse(text, Path::new("models/sources.yml")).unwrap();
        let schema = doc.get("sources").unwrap().as_sequence().unwrap()[0]
            .get("schema")
            .unwrap();
        let template_error = Error::new(ErrorKind::Template, "undefined").at_line(1);
        let err = error_at(
            template_error,
            Path::new("models/sources.yml"),
            text,
            schema,
        );
        assert_eq!(err.line(), Some(4));
        assert_eq!(
            err.to_string(),
            "models/sources.yml:4: undefined\n  |     schema: \"{{ target.schema }}\""
        );
    }

    #[test]
    fn json_round_trip_keeps_order_and_types() {
        let json = serde_json::json!({"z": 1, "a": [true, null, 1.5, "x"], "m": {"k": "yes"}});
        let text = to_string(&from_json(&json));
        let back = to_json(&parse(&text, Path::new("x.yml")).unwrap());
        assert_eq!(back, json);
        assert_eq!(
            back.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["z", "a", "m"]
        );
    }
}
