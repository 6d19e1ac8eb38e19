//! Ephemeral models are never built: a node that refs one gets its SQL as a
//! CTE named `__dbt__cte__<name>`, ephemerals of ephemerals first, injected
//! as dbt injects them.

use std::collections::{BTreeMap, HashMap};

use crate::manifest::{Materialization, Node, Relation};

/// What `ref` to an ephemeral model renders as.
pub fn cte_relation(identifier: &str) -> Relation {
    Relation {
        quoting: Default::default(),
        database: String::new(),
        schema: String::new(),
        identifier: format!("__dbt__cte__{identifier}"),
    }
}

/// What `ref` to a compiled node renders as: its relation, or its CTE.
pub fn ref_relation(node: &Node) -> Relation {
    if node.materialization == Materialization::Ephemeral {
        cte_relation(&node.relation.identifier)
    } else {
        node.relation.clone()
    }
}

/// Inject into every node the CTEs of the ephemeral models it depends on,
/// and record them as the node's extra_ctes. `order` has parents first.
pub fn inject_ctes(nodes: &mut BTreeMap<String, Node>, order: &[String]) {
    let is_ephemeral = |node: &Node| node.materialization == Materialization::Ephemeral;
    if !nodes.values().any(is_ephemeral) {
        return;
    }
    // Each ephemeral model's SQL before injection, and the CTEs it needs.
    let mut own_sql: HashMap<String, String> = HashMap::new();
    let mut ctes_of: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for id in order {
        let node = &nodes[id];
        let mut ctes: Vec<(String, String)> = Vec::new();
        // An ephemeral parent that failed to render fails its children, as
        // dbt fails them when it compiles the CTE into them.
        let mut inherited = None;
        for parent in &node.depends_on_nodes {
            let Some(parent_node) = nodes.get(parent).filter(|p| is_ephemeral(p)) else {
                continue;
            };
            if inherited.is_none() && node.render_error.is_none() {
                inherited.clone_from(&parent_node.render_error);
            }
            for cte in ctes_of.get(parent).into_iter().flatten() {
                add(&mut ctes, cte.clone());
            }
            let sql = format!(
                " __dbt__cte__{} as (\n{}\n)",
                parent_node.relation.identifier,
                own_sql
                    .get(parent)
                    .map_or(parent_node.compiled_code.as_str(), String::as_str)
            );
            add(&mut ctes, (parent.clone(), sql));
        }
        if is_ephemeral(node) {
            own_sql.insert(id.clone(), node.compiled_code.clone());
        }
        if inherited.is_some() {
            let node = nodes.get_mut(id).expect("a node of the order");
            node.render_error = inherited;
            node.compiled_code = String::new();
            ctes_of.insert(id.clone(), Vec::new());
            continue;
        }
        if !ctes.is_empty() {
            let node = nodes.get_mut(id).expect("a node of the order");
            node.compiled_code = inject(&node.compiled_code, &ctes);
            node.extra_ctes = ctes.clone();
        }
        ctes_of.insert(id.clone(), ctes);
    }
}

fn add(ctes: &mut Vec<(String, String)>, cte: (String, String)) {
    if !ctes.iter().any(|(id, _)| *id == cte.0) {
        ctes.push(cte);
    }
}

/// dbt's inject_ctes_into_sql: after a leading `with` (and `recursive`),
/// else in a new `with` before the first token. Also used at run time, on
/// an incremental model rendered again, with the node's `extra_ctes`.
pub fn inject(sql: &str, ctes: &[(String, String)]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let joined = ctes
        .iter()
        .map(|(_, sql)| sql.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    // A leading `with` may come after comments, as dbt's SQL parser sees it.
    let start = sql.len() - skip_comments(sql).len();
    let rest = &sql[start..];
    match leading_with(rest) {
        Some(with_end) => format!(
            "{}{}{joined}, {}",
            &sql[..start],
            &rest[..with_end],
            &rest[with_end..]
        ),
        None => {
            let start = sql.len() - sql.trim_start().len();
            format!("{}with{joined} {}", &sql[..start], &sql[start..])
        }
    }
}

/// `sql` after its leading whitespace and `--` / `/* */` comments.
fn skip_comments(sql: &str) -> &str {
    let mut rest = sql.trim_start();
    loop {
        if let Some(line) = rest.strip_prefix("--") {
            rest = line.find('\n').map_or("", |end| &line[end..]).trim_start();
        } else if let Some(block) = rest.strip_prefix("/*") {
            rest = block
                .find("*/")
                .map_or("", |end| &block[end + 2..])
                .trim_start();
        } else {
            return rest;
        }
    }
}

/// The end of a leading `with` / `with recursive` keyword, if the SQL starts with one.
fn leading_with(sql: &str) -> Option<usize> {
    let word_end = |text: &str| {
        text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len())
    };
    let first = word_end(sql);
    if !sql[..first].eq_ignore_ascii_case("with") {
        return None;
    }
    let after = &sql[first..];
    let gap = after.len() - after.trim_start().len();
    let second = word_end(&after[gap..]);
    if second > 0 && after[gap..gap + second].eq_ignore_ascii_case("recursive") {
        return Some(first + gap + second);
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctes() -> Vec<(String, String)> {
        vec![(
            "model.p.e".into(),
            " __dbt__cte__e as (\nselect 1\n)".into(),
        )]
    }

    #[test]
    fn adds_a_with_before_the_first_token() {
        assert_eq!(
            inject("\nselect * from __dbt__cte__e", &ctes()),
            "\nwith __dbt__cte__e as (\nselect 1\n) select * from __dbt__cte__e"
        );
    }

    #[test]
    fn joins_an_existing_with() {
        assert_eq!(
            inject("WITH a as (select 2) select * from a", &ctes()),
            "WITH __dbt__cte__e as (\nselect 1\n),  a as (select 2) select * from a"
        );
        assert_eq!(
            inject(
                "\n-- setup\n/* a */ with a as (select 2) select * from a",
                &ctes()
            ),
            "\n-- setup\n/* a */ with __dbt__cte__e as (\nselect 1\n),  a as (select 2) select * from a"
        );
        assert_eq!(leading_with("with recursive r as (...)"), Some(14));
        assert_eq!(leading_with("without_a_with"), None);
    }
}
