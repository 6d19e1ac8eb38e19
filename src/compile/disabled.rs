//! Disabled nodes, as dbt treats them: a node disabled by dbt_project.yml or
//! its properties is never rendered, and a node whose own `config()` call
//! disables it may fail to render (a macro or model it calls may not exist
//! where it is disabled) without failing the compile. Only the `config()`
//! calls of such a node are evaluated, alone, to learn whether it is.

use serde_json::Value as Json;

use super::nodes::Pending;
use crate::jinja::RenderCapture;
use crate::project::ProjectFile;

/// True when a config map disables its node.
pub fn says_disabled(config: &serde_json::Map<String, Json>) -> bool {
    config.get("enabled") == Some(&Json::Bool(false))
}

/// How many blocks (`if`, `for`, `macro`, ...) are open at the end of `text`.
fn open_blocks(text: &str) -> usize {
    let mut depth: usize = 0;
    let mut rest = text;
    while let Some(open) = rest.find("{%") {
        let after = &rest[open + 2..];
        let tag = after.trim_start_matches(['-', '+', ' ', '\t', '\n', '\r']);
        let word: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let assigns = tag[..tag.find("%}").unwrap_or(tag.len())].contains('=');
        match word.as_str() {
            "if" | "for" | "macro" | "call" | "filter" | "with" | "block" => depth += 1,
            // `{% set x %}...{% endset %}` is a block; `{% set x = 1 %}` is not.
            "set" if !assigns => depth += 1,
            w if w.starts_with("end") => depth = depth.saturating_sub(1),
            _ => {}
        }
        rest = after;
    }
    depth
}

/// The `{{ config(...) }}` expressions of a node's SQL outside any block (a
/// call inside an `if` may not run), in order, each on the line it was
/// written on (so an error inside one names that line).
fn config_calls(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut position = 0;
    let mut found = false;
    while let Some(open) = text[position..].find("{{") {
        let start = position + open;
        let Some(close) = text[start..].find("}}") else {
            break;
        };
        let end = start + close + 2;
        let inner = text[start + 2..end - 2].trim_matches(|c: char| c == '-' || c.is_whitespace());
        if (inner.starts_with("config(") || inner.starts_with("config ("))
            && open_blocks(&text[..start]) == 0
        {
            let lines = text[..start].matches('\n').count() - out.matches('\n').count();
            out.push_str(&"\n".repeat(lines));
            out.push_str(&text[start..end]);
            found = true;
        }
        position = end;
    }
    found.then_some(out)
}

/// What a node's own `config()` calls capture, evaluated by `render`
/// without the rest of its SQL; None when it makes none or they cannot be
/// evaluated alone. Generic tests have no SQL of their own.
pub fn own_config(
    node: &Pending<'_>,
    render: impl Fn(&ProjectFile) -> Option<RenderCapture>,
) -> Option<RenderCapture> {
    if node.test.is_some() {
        return None;
    }
    let text = config_calls(&node.file.text)?;
    render(&ProjectFile {
        text,
        ..node.file.clone()
    })
}

/// True when a capture's `config()` calls set `enabled` to `value`.
pub fn captured_enabled(capture: &RenderCapture, value: bool) -> bool {
    capture
        .config
        .lock()
        .is_ok_and(|config| config.get("enabled") == Some(&Json::Bool(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_calls_keep_their_lines() {
        let text =
            "-- x\n{{ config(enabled=false) }}\nselect {{ nope() }}\n{{- config(tags=['a']) -}}\n";
        assert_eq!(
            config_calls(text).unwrap(),
            "\n{{ config(enabled=false) }}\n\n{{- config(tags=['a']) -}}"
        );
        assert_eq!(config_calls("select {{ ref('a') }}"), None);
        let conditional = "{% if target.name == 'ci' %}{{ config(enabled=false) }}{% endif %}";
        assert_eq!(config_calls(conditional), None);
        let after = "{% if x %}a{% endif %}\n{{ config(enabled=false) }}";
        assert_eq!(
            config_calls(after).unwrap(),
            "\n{{ config(enabled=false) }}"
        );
    }
}
