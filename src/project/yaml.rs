//! YAML parsing with errors that name the file and line.

use std::path::Path;

use serde_yaml::Value;

use crate::error::{Error, ErrorKind, Result};

/// Parse a YAML document; an empty file is an empty mapping.
pub fn parse(text: &str, path: &Path) -> Result<Value> {
    // Editors on Windows start files with a byte order mark; YAML allows it,
    // but serde_yaml reads it as the start of a second document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Ok(Value::Mapping(Default::default()));
    }
    serde_yaml::from_str(text).map_err(|err| {
        // An error at the end of the input is reported on the last line that exists.
        let line = err
            .location()
            .map(|l| l.line())
            .unwrap_or(0)
            .min(text.lines().count());
        let message = err.to_string();
        // serde_yaml appends " at line N column M"; the line is shown by the prefix instead.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        let mut error = Error::new(ErrorKind::Project, format!("invalid YAML: {message}"))
            .in_file(path)
            .at_line(line);
        if let Some(source_line) = text
            .lines()
            .nth(line.saturating_sub(1))
            .filter(|_| line > 0)
        {
            error = error.with_snippet(source_line);
        }
        error
    })
}

/// The 1-based line where `key:` first appears at the start of a line (after
/// indentation) at or after `from_line`; used to point errors at YAML entries.
pub fn line_of_key(text: &str, key: &str, from_line: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(from_line.saturating_sub(1))
        .find(|(_, line)| {
            let trimmed = line.trim_start().trim_start_matches("- ");
            trimmed
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
                || trimmed
                    .strip_prefix("name:")
                    .is_some_and(|rest| rest.trim().trim_matches(|c| c == '"' || c == '\'') == key)
        })
        .map(|(i, _)| i + 1)
        .unwrap_or(0)
}

/// The 1-based lines of the first `count` items (`- ...`) of the block
/// sequence under the key on line `key_line`, in one pass over the text;
/// `key_line` for an item not found (a sequence in flow style, say). Lets
/// errors point at entries that have no name to search by.
pub fn item_lines(text: &str, key_line: usize, count: usize) -> Vec<usize> {
    let mut found = Vec::with_capacity(count);
    if key_line > 0 {
        let indent = |line: &str| line.len() - line.trim_start().len();
        let mut lines = text.lines().enumerate().skip(key_line - 1);
        if let Some((_, key)) = lines.next() {
            let key_indent = indent(key);
            let mut item_indent = None;
            for (i, line) in lines {
                let trimmed = line.trim_start();
                if found.len() == count {
                    break;
                }
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                let here = indent(line);
                let is_item = trimmed == "-" || trimmed.starts_with("- ");
                match item_indent {
                    None if is_item && here >= key_indent => item_indent = Some(here),
                    None => break,
                    Some(at) if here < at || (here == at && !is_item) => break,
                    Some(_) => {}
                }
                if is_item && Some(here) == item_indent {
                    found.push(i + 1);
                }
            }
        }
    }
    found.resize(count, key_line);
    found
}

/// The line of each `name: <value>` entry of a YAML text (its first
/// occurrence), so a file listing thousands of models is scanned once.
pub fn name_lines(text: &str) -> std::collections::HashMap<String, usize> {
    let mut lines = std::collections::HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(value) = trimmed.strip_prefix("name:") {
            let value = value
                .split(" #")
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(|c| c == '"' || c == '\'');
            lines.entry(value.to_string()).or_insert(index + 1);
        }
    }
    lines
}

/// A string field of a mapping, if present and a string.
pub fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A list of strings from a field that may be one string or a list.
pub fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Convert YAML to JSON (for configs and vars); keys become strings.
pub fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => serde_json::to_value(n).unwrap_or(serde_json::Value::Null),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Sequence(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Mapping(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (key_string(k), to_json(v)))
                .collect(),
        ),
        Value::Tagged(tagged) => to_json(&tagged.value),
    }
}

fn key_string(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".to_string(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
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
        assert!(err.line().is_some());
    }

    #[test]
    fn a_byte_order_mark_is_not_content() {
        let value = parse("\u{feff}name: shop\n", Path::new("dbt_project.yml")).unwrap();
        assert_eq!(str_field(&value, "name"), Some("shop"));
    }

    #[test]
    fn finds_the_line_of_a_list_item() {
        let text = "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: x\n  - description: b\n  # note\n  - 5\nseeds: [1]\n";
        assert_eq!(item_lines(text, 2, 4), [3, 6, 8, 2]);
        assert_eq!(item_lines(text, 4, 1), [5]);
        assert_eq!(item_lines(text, 9, 1), [9]);
        assert_eq!(item_lines(text, 0, 1), [0]);
    }

    #[test]
    fn finds_the_line_of_a_key() {
        let text = "version: 2\nmodels:\n  - name: orders\n    description: x\n";
        assert_eq!(line_of_key(text, "orders", 1), 3);
        assert_eq!(line_of_key(text, "models", 1), 2);
    }
}
