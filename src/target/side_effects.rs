//! Side effects: hooks and operations that act on the world (notify, call an
//! API, delete data) run only on protected targets; elsewhere they are
//! skipped and noted as `[dev] would run: ...`.
//!
//! Three ways to mark one:
//! - `{{ side_effect() }}` anywhere in a hook, an `on-run-start`/`on-run-end`
//!   operation, or in the body of a macro they call;
//! - a hook written as a mapping with `side_effect: true`
//!   (`post-hook: [{sql: "...", side_effect: true}]`);
//! - the macro's name listed in dbt_project.yml:
//!   `vars: {weir: {side_effects: [notify_slack]}}`.

use std::sync::Mutex;

use serde_json::{Map, Value as Json};

use super::Target;
use crate::jinja::SIDE_EFFECT_MARK as MARK;

static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// How side effects are treated on one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    target_name: String,
    /// Protected targets run side effects.
    run: bool,
    /// Macros listed in `vars: weir: side_effects:`.
    macros: Vec<String>,
}

impl Policy {
    pub fn new(target: &Target, vars: &Map<String, Json>) -> Policy {
        let macros = vars
            .get(super::naming::SETTINGS_VAR)
            .and_then(|w| w.get("side_effects"))
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_string))
            .collect();
        Policy {
            target_name: target.name.clone(),
            run: super::protect::is_protected(target),
            macros,
        }
    }

    /// The SQL to run for a hook whose text is `raw` and which rendered to
    /// `rendered`: unchanged when it is no side effect or this target runs
    /// them; empty (noted as `[target] would run: ...`) when it is skipped.
    pub fn gate(&self, raw: &str, rendered: String) -> String {
        let marked = rendered.contains(MARK) || self.calls_listed_macro(raw);
        if !marked {
            return rendered;
        }
        let sql = rendered.replace(MARK, "");
        if self.run {
            return sql;
        }
        let one_line: Vec<&str> = sql.split_whitespace().collect();
        note(format!(
            "[{}] would run: {}",
            self.target_name,
            crate::base::secrets::scrub(&one_line.join(" "))
        ));
        String::new()
    }

    fn calls_listed_macro(&self, raw: &str) -> bool {
        self.macros.iter().any(|name| {
            raw.match_indices(name.as_str()).any(|(at, _)| {
                let before = raw[..at].chars().next_back();
                let after = raw[at + name.len()..].trim_start().chars().next();
                before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
                    && after == Some('(')
            })
        })
    }
}

/// Prefix for a hook marked `side_effect: true` in its mapping, so the gate
/// sees it as if it called `side_effect()`.
pub fn mark_hook(sql: &str) -> String {
    format!("{{{{ side_effect() }}}}{sql}")
}

fn note(line: String) {
    NOTES.lock().unwrap_or_else(|e| e.into_inner()).push(line);
}

/// The side effects skipped since the last call, for the CLI or an Airflow
/// task to log.
pub fn take_notes() -> Vec<String> {
    std::mem::take(&mut *NOTES.lock().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(target: &str) -> Policy {
        let vars = json!({"weir": {"side_effects": ["notify_slack"]}});
        Policy::new(
            &Target::embedded_default("shop", Some(target)),
            vars.as_object().unwrap(),
        )
    }

    #[test]
    fn side_effects_run_only_on_protected_targets() {
        let marked = format!("{MARK}select pg_notify('deploys', 'done')");
        assert_eq!(
            policy("prod").gate("{{ side_effect() }}...", marked.clone()),
            "select pg_notify('deploys', 'done')"
        );
        assert_eq!(policy("dev").gate("{{ side_effect() }}...", marked), "");
        // Other tests may note too: look for this one.
        let expected = "[dev] would run: select pg_notify('deploys', 'done')".to_string();
        assert!(take_notes().contains(&expected));
    }

    #[test]
    fn listed_macros_mark_the_hooks_that_call_them() {
        let p = policy("dev");
        assert_eq!(p.gate("{{ notify_slack('x') }}", "select 1".into()), "");
        assert_eq!(
            p.gate("{{ my_notify_slack_wrapper() }}", "select 2".into()),
            "select 2"
        );
        assert_eq!(
            p.gate("grant select on x to y", "grant ...".into()),
            "grant ..."
        );
    }
}
