//! What each selection method matches, as dbt's selector methods define it:
//! the graph members (nodes and sources) a `method:value` picks.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use super::spec::{Criterion, Method};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Exposure, Manifest, Node, ResourceType, SourceNode};
use crate::project::versions::{compare_versions, is_version, same_version, version_text};

/// Every resource type dbt knows; `resource_type:` accepts these.
pub const RESOURCE_TYPES: [&str; 19] = [
    "model",
    "analysis",
    "test",
    "snapshot",
    "operation",
    "seed",
    "rpc",
    "sql_operation",
    "doc",
    "source",
    "macro",
    "exposure",
    "metric",
    "group",
    "saved_query",
    "semantic_model",
    "unit_test",
    "fixture",
    "function",
];

/// A member of the selection graph: a node of the manifest, a source or
/// an exposure.
#[derive(Debug, Clone, Copy)]
pub enum Member<'a> {
    Node(&'a Node),
    Source(&'a SourceNode),
    Exposure(&'a Exposure),
}

impl<'a> Member<'a> {
    /// The node, source or exposure with this unique_id.
    pub fn find(manifest: &'a Manifest, unique_id: &str) -> Option<Member<'a>> {
        match manifest.nodes.get(unique_id) {
            Some(node) => Some(Member::Node(node)),
            None => manifest
                .sources
                .get(unique_id)
                .map(Member::Source)
                .or_else(|| manifest.exposures.get(unique_id).map(Member::Exposure)),
        }
    }

    pub fn unique_id(&self) -> &'a str {
        match self {
            Member::Node(n) => &n.unique_id,
            Member::Source(s) => &s.unique_id,
            Member::Exposure(e) => &e.unique_id,
        }
    }

    pub fn resource_type(&self) -> &'static str {
        match self {
            Member::Node(n) => n.resource_type.as_str(),
            Member::Source(_) => "source",
            Member::Exposure(_) => "exposure",
        }
    }

    pub fn package_name(&self) -> &'a str {
        match self {
            Member::Node(n) => &n.package_name,
            Member::Source(s) => &s.package_name,
            Member::Exposure(e) => &e.package_name,
        }
    }

    pub fn original_file_path(&self) -> &'a str {
        match self {
            Member::Node(n) => &n.original_file_path,
            Member::Source(s) => &s.original_file_path,
            Member::Exposure(e) => &e.original_file_path,
        }
    }

    /// The properties file that describes the node, if any (dbt's patch_path).
    pub fn patch_file(&self) -> Option<&'a str> {
        match self {
            Member::Node(n) => n.patch_path.as_deref(),
            Member::Source(_) | Member::Exposure(_) => None,
        }
    }

    pub fn fqn(&self) -> &'a [String] {
        match self {
            Member::Node(n) => &n.fqn,
            Member::Source(s) => &s.fqn,
            Member::Exposure(e) => &e.fqn,
        }
    }

    /// A version of a versioned model.
    fn is_versioned(&self) -> bool {
        matches!(self, Member::Node(n) if n.version.is_some())
    }

    fn tags(&self) -> &'a [String] {
        match self {
            Member::Node(n) => &n.tags,
            Member::Source(s) => &s.tags,
            Member::Exposure(e) => &e.tags,
        }
    }

    /// The config as the manifest shows it, dbt's defaults included.
    pub fn config(&self) -> std::borrow::Cow<'a, Map<String, Json>> {
        match self {
            Member::Node(n) => std::borrow::Cow::Owned(n.full_config()),
            Member::Source(s) => std::borrow::Cow::Owned(s.full_config()),
            Member::Exposure(e) => std::borrow::Cow::Borrowed(&e.config),
        }
    }

    /// The name `dbt ls` prints: `source_name.table` for a source,
    /// `name.v2` for a version of a model.
    pub fn search_name(&self) -> String {
        match self {
            Member::Node(n) => match &n.version {
                Some(version) => format!("{}.v{}", n.name, version_text(version)),
                None => n.name.clone(),
            },
            Member::Source(s) => format!("{}.{}", s.source_name, s.name),
            Member::Exposure(e) => e.name.clone(),
        }
    }

    /// The selector `dbt ls` prints for this member.
    pub fn selector(&self) -> String {
        match self {
            Member::Node(n) => n.fqn.join("."),
            Member::Source(s) => {
                format!("source:{}.{}.{}", s.package_name, s.source_name, s.name)
            }
            Member::Exposure(e) => format!("exposure:{}.{}", e.package_name, e.name),
        }
    }

    /// The manifest's JSON for this member (what dbt's `to_dict` gives).
    pub fn to_json(self) -> Json {
        match self {
            Member::Node(n) => serde_json::to_value(n),
            Member::Source(s) => serde_json::to_value(s),
            Member::Exposure(e) => serde_json::to_value(e),
        }
        .unwrap_or(Json::Null)
    }

    fn test(&self) -> Option<&'a Node> {
        match self {
            Member::Node(n) if n.resource_type == ResourceType::Test => Some(n),
            _ => None,
        }
    }
}

/// The members of one manifest that selection sees, and where the project
/// is on disk (`path:` matches only paths that exist, as dbt globs them).
pub struct Universe<'a> {
    pub manifest: &'a Manifest,
    pub members: Vec<Member<'a>>,
    pub root: Option<PathBuf>,
    /// `--state`, for `state:` and `result:` (see select::state).
    pub state: Option<std::sync::Arc<crate::select::state::State>>,
}

impl<'a> Universe<'a> {
    pub fn new(manifest: &'a Manifest, root: Option<PathBuf>) -> Universe<'a> {
        let mut members: Vec<Member> = manifest
            .nodes
            .values()
            .filter(|n| n.config.get("enabled") != Some(&Json::Bool(false)))
            .map(Member::Node)
            .collect();
        members.extend(manifest.sources.values().map(Member::Source));
        members.extend(manifest.exposures.values().map(Member::Exposure));
        Universe {
            manifest,
            members,
            root,
            state: None,
        }
    }

    /// The unique_ids a criterion's method and value pick, before graph operators.
    pub fn search(&self, criterion: &Criterion) -> Result<BTreeSet<&'a str>> {
        let value = criterion.value_text();
        let pick = |keep: &dyn Fn(&Member<'a>) -> bool| -> BTreeSet<&'a str> {
            self.members
                .iter()
                .filter(|m| keep(m))
                .map(Member::unique_id)
                .collect()
        };
        let selected = match criterion.method {
            Method::Fqn => pick(&|m| {
                !matches!(m, Member::Source(_)) && fqn_matches(m.fqn(), &value, m.is_versioned())
            }),
            Method::Tag => pick(&|m| m.tags().iter().any(|t| fnmatch(&value, t))),
            Method::Group => pick(&|m| {
                matches!(m, Member::Node(_))
                    && m.config()
                        .get("group")
                        .and_then(Json::as_str)
                        .is_some_and(|g| !g.is_empty() && fnmatch(&value, g))
            }),
            Method::Access => pick(&|m| match m {
                Member::Node(n) if n.resource_type == ResourceType::Model => {
                    n.config
                        .get("access")
                        .and_then(Json::as_str)
                        .unwrap_or("protected")
                        == value
                }
                _ => false,
            }),
            Method::Source => {
                let (package, source, table) = source_parts(&value, criterion)?;
                pick(&|m| match m {
                    Member::Source(s) => {
                        fnmatch(package, &s.package_name)
                            && fnmatch(source, &s.source_name)
                            && fnmatch(table, &s.name)
                    }
                    Member::Node(_) | Member::Exposure(_) => false,
                })
            }
            Method::Exposure => {
                let (package, name) = match value.split('.').collect::<Vec<_>>().as_slice() {
                    [name] => ("*", *name),
                    [package, name] => (*package, *name),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::Selection,
                            format!(
                                "`{}`: an exposure selector has at most two parts",
                                criterion.raw
                            ),
                        )
                        .with_hint("use exposure:name or exposure:package.name"));
                    }
                };
                pick(&|m| match m {
                    Member::Exposure(e) => {
                        fnmatch(package, &e.package_name) && fnmatch(name, &e.name)
                    }
                    _ => false,
                })
            }
            Method::Path => {
                let pattern = path_pattern(&value, criterion)?;
                // dbt also matches the properties file that describes a node.
                pick(&|m| {
                    path_matches(&pattern, m.original_file_path(), self.root.as_deref())
                        || m.patch_file()
                            .is_some_and(|f| path_matches(&pattern, f, self.root.as_deref()))
                })
            }
            Method::File => pick(&|m| {
                let path = m.original_file_path();
                let name = path.rsplit('/').next().unwrap_or(path);
                let stem = match name.rsplit_once('.') {
                    Some((stem, _)) if !stem.is_empty() => stem,
                    _ => name,
                };
                fnmatch(&value, name) || fnmatch(&value, stem)
            }),
            Method::Package => {
                let package = if value == "this" {
                    self.manifest.metadata.project_name.as_str()
                } else {
                    value.as_str()
                };
                pick(&|m| fnmatch(package, m.package_name()))
            }
            // dbt searches configs of nodes and sources, not of exposures.
            Method::Config => pick(&|m| {
                !matches!(m, Member::Exposure(_)) && config_matches(&m.config(), criterion)
            }),
            Method::TestName => pick(&|m| {
                m.test()
                    .and_then(|t| t.test.as_ref())
                    .is_some_and(|t| fnmatch(&value, &t.name))
            }),
            Method::TestType => {
                let (generic, singular) = match value.as_str() {
                    "generic" | "schema" => (true, false),
                    "singular" => (false, true),
                    "data" => (true, true),
                    // weir reads no unit tests, so none is selected.
                    "unit" => (false, false),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::Selection,
                            format!("`{}`: unknown test type `{value}`", criterion.raw),
                        )
                        .with_hint("use test_type:generic, singular, unit or data"));
                    }
                };
                pick(&|m| {
                    m.test()
                        .is_some_and(|t| if t.test.is_some() { generic } else { singular })
                })
            }
            Method::ResourceType => {
                if !RESOURCE_TYPES.contains(&value.as_str()) {
                    let err = Error::new(
                        ErrorKind::Selection,
                        format!("`{}`: unknown resource type `{value}`", criterion.raw),
                    );
                    let hint =
                        crate::error::did_you_mean(&value, RESOURCE_TYPES).unwrap_or_else(|| {
                            format!("resource types: {}", RESOURCE_TYPES.join(", "))
                        });
                    return Err(err.with_hint(hint));
                }
                pick(&|m| m.resource_type() == value)
            }
            Method::Version => {
                let versions = |m: &Member<'a>| match m {
                    Member::Node(n) if n.resource_type == ResourceType::Model => {
                        Some((n.version.as_deref(), n.latest_version.as_deref()))
                    }
                    _ => None,
                };
                // dbt compares a version with the latest only when both are set (and true).
                let against_latest = |m: &Member<'a>, wanted: Ordering| match versions(m) {
                    Some((Some(v), Some(latest))) if is_version(v) && is_version(latest) => {
                        compare_versions(v, latest) == wanted
                    }
                    _ => false,
                };
                match value.as_str() {
                    "latest" => pick(
                        &|m| matches!(versions(m), Some((Some(v), Some(l))) if same_version(v, l)),
                    ),
                    "prerelease" => pick(&|m| against_latest(m, Ordering::Greater)),
                    "old" => pick(&|m| against_latest(m, Ordering::Less)),
                    "none" => pick(&|m| matches!(versions(m), Some((None, _)))),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::Selection,
                            format!("`{}`: unknown version selector `{value}`", criterion.raw),
                        )
                        .with_hint("use version:latest, prerelease, old or none"));
                    }
                }
            }
            Method::Metric | Method::SemanticModel | Method::SavedQuery | Method::UnitTest => {
                let what = match criterion.method {
                    Method::Metric => "metrics",
                    Method::SemanticModel => "semantic models",
                    Method::SavedQuery => "saved queries",
                    _ => "unit tests",
                };
                return Err(Error::new(
                    ErrorKind::Selection,
                    format!(
                        "`{}`: this manifest has no {what}; weir does not read {what} yet",
                        criterion.raw
                    ),
                ));
            }
            Method::State | Method::Result if self.state.is_some() => {
                let state = self.state.as_deref().expect("checked above");
                let ids = match criterion.method {
                    Method::State => state.select(&value)?,
                    _ => state.select_result(&value)?,
                };
                pick(&|m| ids.contains(m.unique_id()))
            }
            Method::State | Method::Result => {
                return Err(Error::new(
                    ErrorKind::Selection,
                    format!(
                        "`{}`: `{}:` compares with a previous run's artifacts: pass --state DIR",
                        criterion.raw,
                        criterion.method.name()
                    ),
                ));
            }
            Method::SourceStatus => {
                return Err(Error::new(
                    ErrorKind::Selection,
                    format!(
                        "`{}`: weir does not read source freshness (sources.json) yet",
                        criterion.raw
                    ),
                ));
            }
        };
        Ok(selected)
    }
}

/// `source:name`, `source:name.table`, `source:package.name.table`.
fn source_parts<'v>(value: &'v str, criterion: &Criterion) -> Result<(&'v str, &'v str, &'v str)> {
    let parts: Vec<&str> = value.split('.').collect();
    match parts.as_slice() {
        [source] => Ok(("*", source, "*")),
        [source, table] => Ok(("*", source, table)),
        [package, source, table] => Ok((package, source, table)),
        _ => Err(Error::new(
            ErrorKind::Selection,
            format!(
                "`{}`: a source selector has at most three parts",
                criterion.raw
            ),
        )
        .with_hint("use source:name, source:name.table or source:package.name.table")),
    }
}

/// dbt's qualified-name match, on the fqn and on the fqn without its package.
fn fqn_matches(fqn: &[String], selector: &str, versioned: bool) -> bool {
    fqn_is_selected(fqn, selector, versioned)
        || (fqn.len() > 1 && fqn_is_selected(&fqn[1..], selector, versioned))
}

/// The name itself, a prefix of the fqn (`shop.staging`), or a pattern over
/// the rest of it from the first part with a wildcard. A version of a model
/// (fqn ending in `name`, `v2`) is also selected by its model's name, and
/// by `name.v2` or `name_v2` after any prefix, as dbt matches it.
fn fqn_is_selected(fqn: &[String], selector: &str, versioned: bool) -> bool {
    let leaf = match (versioned, fqn) {
        (true, [.., name, version]) => {
            let tail: Vec<&str> = selector.rsplit('.').take(2).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            if name == selector || format!("{name}_{version}") == tail.join("_") {
                return true;
            }
            name
        }
        (_, [.., leaf]) => {
            if leaf == selector {
                return true;
            }
            leaf
        }
        (_, []) => return false,
    };
    let flat: Vec<&str> = fqn.iter().flat_map(|s| s.split('.')).collect();
    let parts: Vec<&str> = selector.split('.').collect();
    if flat.len() < parts.len() {
        return false;
    }
    for (i, part) in parts.iter().enumerate() {
        if part.contains(['*', '?', '[', ']']) {
            if fnmatch(&parts[i..].join("."), &flat[i..].join(".")) {
                return true;
            }
            return !selector.contains('.') && fnmatch(selector, leaf);
        }
        if flat[i] != *part {
            return false;
        }
    }
    true
}

/// `config.<key>[.<key>...]:value`: equal, contained in a list, or a
/// boolean written as true/false in any case; `severity` ignores case.
fn config_matches(config: &Map<String, Json>, criterion: &Criterion) -> bool {
    let mut value = None;
    for (i, key) in criterion.arguments.iter().enumerate() {
        let next = if i == 0 {
            config.get(key)
        } else {
            value.and_then(|v: &Json| v.get(key))
        };
        match next {
            Some(v) => value = Some(v),
            None => return false,
        }
    }
    let Some(value) = value else {
        return false;
    };
    let wanted = &criterion.value;
    let ignore_case = criterion.arguments == ["severity"];
    let wanted_bool = wanted.as_str().and_then(|s| {
        if s.eq_ignore_ascii_case("true") {
            Some(true)
        } else if s.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            None
        }
    });
    let equal = |candidate: &Json| {
        candidate == wanted
            || (ignore_case
                && matches!((candidate, wanted), (Json::String(a), Json::String(b)) if a.eq_ignore_ascii_case(b)))
            || wanted_bool.is_some_and(|b| candidate == &Json::Bool(b))
    };
    match value {
        Json::Array(items) => items.iter().any(equal),
        other => equal(other),
    }
}

/// A `path:` value as the segments of a relative glob.
fn path_pattern(value: &str, criterion: &Criterion) -> Result<Vec<String>> {
    if value.starts_with('/') {
        return Err(Error::new(
            ErrorKind::Selection,
            format!(
                "`{}`: a path selector is relative to the project folder",
                criterion.raw
            ),
        ));
    }
    let segments: Vec<String> = value
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_string)
        .collect();
    if segments.is_empty() {
        return Err(Error::new(
            ErrorKind::Selection,
            format!("`{}`: the path is empty", criterion.raw),
        )
        .with_hint("use path:models or path:models/staging/orders.sql"));
    }
    Ok(segments)
}

/// A member is on a path when its file, or a folder above it, matches the
/// glob and exists in the project (dbt globs the project folder).
fn path_matches(pattern: &[String], file: &str, root: Option<&Path>) -> bool {
    let parts: Vec<&str> = file.split('/').filter(|s| !s.is_empty()).collect();
    (0..=parts.len()).rev().any(|n| {
        let candidate = &parts[..n];
        glob_segments(pattern, candidate)
            && root.is_none_or(|root| root.join(candidate.join("/")).exists())
    })
}

/// Path glob by segments: `**` spans any number of folders.
fn glob_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| glob_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((segment, path_rest)) => fnmatch(first, segment) && glob_segments(rest, path_rest),
            None => false,
        },
    }
}

/// Python's fnmatch: `*`, `?`, `[seq]` and `[!seq]`; an unclosed `[` is literal.
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?', '[']) {
        return pattern == text;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Backtracking over the last `*` only: linear enough for selectors.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match class(&p[pi..], t[ti]) {
                Some((len, true)) => Some(len),
                Some((_, false)) => None,
                None => (t[ti] == '[').then_some(1),
            },
            Some(c) => (*c == t[ti]).then_some(1),
            None => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ti += 1;
            }
            None => match star {
                Some((star_pi, star_ti)) => {
                    pi = star_pi + 1;
                    ti = star_ti + 1;
                    star = Some((star_pi, star_ti + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A `[...]` class at the start of `p`: its length and whether `c` is in
/// it, or None when the bracket is not closed.
fn class(p: &[char], c: char) -> Option<(usize, bool)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!'));
    if negate {
        i += 1;
    }
    // A `]` right after the opening is a member, not the end.
    let start = i;
    let mut matched = false;
    loop {
        let first = *p.get(i)?;
        if first == ']' && i > start {
            return Some((i + 1, matched != negate));
        }
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
            let last = p[i + 2];
            matched |= first <= c && c <= last;
            i += 3;
        } else {
            matched |= first == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_as_python() {
        assert!(fnmatch("stg_*", "stg_orders"));
        assert!(fnmatch("*", ""));
        assert!(!fnmatch("stg_*", "orders"));
        assert!(fnmatch("s?g", "stg"));
        assert!(fnmatch("[sx]tg", "stg"));
        assert!(!fnmatch("[!s]tg", "stg"));
        assert!(fnmatch("[a-c]x", "bx"));
        assert!(fnmatch("a[", "a["));
        assert!(fnmatch("*.*.orders", "shop.marts.orders"));
        assert!(fnmatch("*a*b*c", "xxaxxbxxbc"));
        assert!(!fnmatch("*a*b*c", "xxaxxbxxb"));
    }

    #[test]
    fn qualified_names() {
        let fqn: Vec<String> = ["shop", "staging", "stg_orders"].map(String::from).to_vec();
        assert!(fqn_matches(&fqn, "stg_orders", false));
        assert!(fqn_matches(&fqn, "staging", false));
        assert!(fqn_matches(&fqn, "shop.staging", false));
        assert!(fqn_matches(&fqn, "shop.staging.stg_*", false));
        assert!(fqn_matches(&fqn, "stg_*", false));
        assert!(fqn_matches(&fqn, "*", false));
        assert!(!fqn_matches(&fqn, "marts", false));
        assert!(!fqn_matches(&fqn, "", false));
        let version: Vec<String> = ["shop", "marts", "dim", "v2"].map(String::from).to_vec();
        for selected in [
            "dim",
            "dim.v2",
            "dim_v2",
            "other.dim.v2",
            "d*",
            "marts.dim",
            "*.v2",
        ] {
            assert!(fqn_matches(&version, selected, true), "{selected}");
        }
        for not_selected in ["v2", "dim_v1", "dim.v1", "shop.dim"] {
            assert!(!fqn_matches(&version, not_selected, true), "{not_selected}");
        }
    }

    #[test]
    fn path_globs() {
        let pattern = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
        assert!(path_matches(&pattern("models"), "models/a/b.sql", None));
        assert!(path_matches(
            &pattern("models/*/b.sql"),
            "models/a/b.sql",
            None
        ));
        assert!(path_matches(&pattern("**/b.sql"), "models/a/b.sql", None));
        assert!(!path_matches(
            &pattern("models/b.sql"),
            "models/a/b.sql",
            None
        ));
        assert!(!path_matches(&pattern("a"), "models/a/b.sql", None));
    }
}
