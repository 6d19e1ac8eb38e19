//! dbt's node selection: `name`, `+name`, `name+`, `2+name+3`, `@name`, `*`,
//! `tag:x`, `path:x`, union by space, intersection by comma, and --exclude.

use std::collections::{BTreeSet, HashSet, VecDeque};

use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Manifest, ResourceType};

/// What to select: the --select and --exclude arguments as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub select: Vec<String>,
    pub exclude: Vec<String>,
}

impl Selection {
    pub fn all() -> Selection {
        Selection::default()
    }

    /// The unique_ids selected, in the manifest's dependency order. Tests
    /// are also selected when any node they test is (dbt's eager indirect
    /// selection), unless excluded.
    pub fn resolve(&self, manifest: &Manifest) -> Result<Vec<String>> {
        let mut selected = if self.select.is_empty() {
            manifest.nodes.keys().cloned().collect()
        } else {
            union(manifest, &self.select)?
        };
        let excluded = if self.exclude.is_empty() {
            BTreeSet::new()
        } else {
            union(manifest, &self.exclude)?
        };
        selected.retain(|id| !excluded.contains(id));
        let indirect: Vec<String> = manifest
            .nodes
            .values()
            .filter(|n| n.resource_type == ResourceType::Test && !excluded.contains(&n.unique_id))
            .filter(|n| {
                n.depends_on_nodes
                    .iter()
                    .any(|parent| selected.contains(parent))
            })
            .map(|n| n.unique_id.clone())
            .collect();
        selected.extend(indirect);
        Ok(manifest
            .order
            .iter()
            .filter(|id| selected.contains(*id))
            .cloned()
            .collect())
    }
}

/// Each argument may hold several space-separated criteria: all are unioned.
fn union(manifest: &Manifest, arguments: &[String]) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for argument in arguments {
        for criterion in argument.split_whitespace() {
            out.extend(intersection(manifest, criterion)?);
        }
    }
    Ok(out)
}

fn intersection(manifest: &Manifest, criterion: &str) -> Result<BTreeSet<String>> {
    let mut parts = criterion.split(',');
    let mut result = graph_criterion(manifest, parts.next().unwrap_or(""))?;
    for part in parts {
        let next = graph_criterion(manifest, part)?;
        result.retain(|id| next.contains(id));
    }
    Ok(result)
}

/// One criterion with its graph operators: `[n]+method:value+[n]` or `@value`.
fn graph_criterion(manifest: &Manifest, text: &str) -> Result<BTreeSet<String>> {
    if text.is_empty() {
        return Err(Error::new(ErrorKind::Selection, "empty selector"));
    }
    let (at, rest) = match text.strip_prefix('@') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let leading_digits = rest.chars().take_while(char::is_ascii_digit).count();
    let (parents, rest) = match rest[leading_digits..].strip_prefix('+') {
        Some(after) => (Some(depth(&rest[..leading_digits], text)?), after),
        None => (None, rest),
    };
    let trailing_digits = rest.chars().rev().take_while(char::is_ascii_digit).count();
    let body = &rest[..rest.len() - trailing_digits];
    let (children, value) = match body.strip_suffix('+') {
        Some(before) => (
            Some(depth(&rest[rest.len() - trailing_digits..], text)?),
            before,
        ),
        None => (None, rest),
    };
    if at && (parents.is_some() || children.is_some()) {
        return Err(Error::new(
            ErrorKind::Selection,
            format!("`{text}`: `@` cannot be combined with `+`"),
        ));
    }
    let seeds = method_criterion(manifest, value)?;
    let mut result = seeds.clone();
    if at {
        let descendants = walk(manifest, &seeds, None, Direction::Children);
        result.extend(walk(manifest, &descendants, None, Direction::Parents));
        result.extend(descendants);
    }
    if let Some(limit) = parents {
        result.extend(walk(manifest, &seeds, limit, Direction::Parents));
    }
    if let Some(limit) = children {
        result.extend(walk(manifest, &seeds, limit, Direction::Children));
    }
    Ok(result)
}

/// `""` means unlimited depth.
fn depth(digits: &str, text: &str) -> Result<Option<usize>> {
    if digits.is_empty() {
        return Ok(None);
    }
    digits.parse().map(Some).map_err(|_| {
        Error::new(
            ErrorKind::Selection,
            format!("`{text}`: bad depth `{digits}`"),
        )
    })
}

#[derive(Clone, Copy)]
enum Direction {
    Parents,
    Children,
}

/// Nodes reachable from `start` (not including it) within `limit` steps.
fn walk(
    manifest: &Manifest,
    start: &BTreeSet<String>,
    limit: Option<usize>,
    direction: Direction,
) -> BTreeSet<String> {
    let edges = match direction {
        Direction::Parents => &manifest.parent_map,
        Direction::Children => &manifest.child_map,
    };
    let mut seen: HashSet<&str> = HashSet::new();
    let mut queue: VecDeque<(&str, usize)> = start.iter().map(|id| (id.as_str(), 0)).collect();
    let mut out = BTreeSet::new();
    while let Some((id, steps)) = queue.pop_front() {
        if limit.is_some_and(|l| steps >= l) {
            continue;
        }
        for next in edges.get(id).into_iter().flatten() {
            if manifest.nodes.contains_key(next) && seen.insert(next) {
                out.insert(next.clone());
                queue.push_back((next, steps + 1));
            }
        }
    }
    out
}

/// `method:value`, or a bare name / path / wildcard.
fn method_criterion(manifest: &Manifest, value: &str) -> Result<BTreeSet<String>> {
    let (method, pattern) = match value.split_once(':') {
        Some((method, pattern)) => (method, pattern),
        None => ("", value),
    };
    let nodes = manifest.nodes.values();
    let selected: BTreeSet<String> = match method {
        "" => nodes
            .filter(|n| {
                wildcard(pattern, &n.name)
                    || n.fqn.join(".") == pattern
                    || path_matches(pattern, &n.original_file_path)
            })
            .map(|n| n.unique_id.clone())
            .collect(),
        "tag" => nodes
            .filter(|n| n.tags.iter().any(|t| wildcard(pattern, t)))
            .map(|n| n.unique_id.clone())
            .collect(),
        "path" => nodes
            .filter(|n| path_matches(pattern, &n.original_file_path))
            .map(|n| n.unique_id.clone())
            .collect(),
        "resource_type" => nodes
            .filter(|n| n.resource_type.as_str() == pattern)
            .map(|n| n.unique_id.clone())
            .collect(),
        "fqn" => nodes
            .filter(|n| {
                wildcard(pattern, &n.fqn.join("."))
                    || n.fqn.last().is_some_and(|l| wildcard(pattern, l))
            })
            .map(|n| n.unique_id.clone())
            .collect(),
        other => {
            return Err(Error::new(
                ErrorKind::Selection,
                format!("unknown selection method `{other}` in `{value}`"),
            )
            .with_hint("methods understood: tag:, path:, fqn:, resource_type:"));
        }
    };
    Ok(selected)
}

/// A path selector matches the file or any folder above it.
fn path_matches(pattern: &str, file: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    if !pattern.contains('/') && !pattern.contains('.') {
        return false;
    }
    file == pattern || file.starts_with(&format!("{pattern}/")) || wildcard(pattern, file)
}

/// Shell-style `*` and `?` matching.
fn wildcard(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards() {
        assert!(wildcard("stg_*", "stg_orders"));
        assert!(wildcard("*", "x"));
        assert!(!wildcard("stg_*", "orders"));
        assert!(wildcard("s?g", "stg"));
    }
}
