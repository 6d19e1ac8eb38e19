//! The crate's layering, checked from its own source: every top-level module
//! of src/ imports (`crate::X`) only modules of a lower rank, so the flow
//! files -> Project -> Manifest -> Plan -> Runner -> Results never loops
//! back. ARCHITECTURE.md's code map says why each module sits where it does;
//! this table must say the same.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of src/ and its rank: a module may import
/// `crate::X` only for an X of strictly lower rank.
const RANKS: &[(&str, u32)] = &[
    ("error", 0),
    ("base", 1),
    ("graph", 1),
    ("logs", 2),
    ("project", 3),
    ("manifest", 4),
    ("results", 4),
    ("jinja", 5),
    ("target", 6),
    ("deps", 6),
    ("adapter", 7),
    ("compile", 8),
    ("select", 9),
    ("plan", 10),
    ("materialize", 11),
    ("runner", 12),
    ("env", 13),
    ("workflow", 14),
    ("cli", 15),
    ("python", 15),
];

/// The shells: what they import is not checked (they sit on top), but no
/// other module may import them.
const SHELLS: &[&str] = &["cli", "python"];

/// One `crate::X` reference: the file and line it is on, and X's module.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Import {
    file: String,
    line: usize,
    module: String,
}

#[test]
fn modules_import_only_lower_ranks() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = top_level_modules(&src);
    let ranks: BTreeMap<&str, u32> = RANKS.iter().copied().collect();
    let mut problems = Vec::new();
    for module in &modules {
        if !ranks.contains_key(module.as_str()) {
            problems.push(format!(
                "src/{module}: a top-level module missing from the rank table of tests/layering.rs \
                 (and from ARCHITECTURE.md's code map)"
            ));
        }
    }
    let reexports = root_reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut edges: BTreeMap<(String, String), Import> = BTreeMap::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        let Some(from) = module_of(relative) else {
            continue; // lib.rs and main.rs
        };
        let display = format!("src/{}", relative.display());
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, name) in crate_paths(&text) {
            let module = if modules.contains(&name) {
                name
            } else if let Some(module) = reexports.get(&name) {
                module.clone()
            } else {
                problems.push(format!(
                    "{display}:{line}: `crate::{name}` is neither a module nor a re-export of lib.rs"
                ));
                continue;
            };
            if module == from {
                continue;
            }
            let import = Import {
                file: display.clone(),
                line,
                module: module.clone(),
            };
            if !SHELLS.contains(&from.as_str()) {
                let rank = |m: &str| ranks.get(m).copied();
                if let (Some(own), Some(theirs)) = (rank(&from), rank(&module))
                    && theirs >= own
                {
                    problems.push(format!(
                        "{display}:{line}: `{from}` (rank {own}) imports `{module}` (rank {theirs}); \
                         a module imports only lower ranks"
                    ));
                }
            }
            edges.entry((from.clone(), module)).or_insert(import);
        }
    }
    for cycle in cycles(&edges) {
        let mut text = format!(
            "a cycle between top-level modules: `{}`",
            cycle.join("` -> `")
        );
        for pair in cycle.windows(2) {
            let import = &edges[&(pair[0].clone(), pair[1].clone())];
            text.push_str(&format!(
                "\n    {} -> {}: {}:{}",
                pair[0], pair[1], import.file, import.line
            ));
        }
        problems.push(text);
    }
    assert!(
        problems.is_empty(),
        "the layering is broken ({} problems):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// ARCHITECTURE.md's code map has a paragraph for every top-level module
/// (headed by its path) and names every file-level submodule.
#[test]
fn architecture_md_names_every_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for module in top_level_modules(&src) {
        let file = format!("### `src/{module}.rs`");
        let folder = format!("### `src/{module}/`");
        if !doc.contains(&file) && !doc.contains(&folder) {
            missing.push(format!("src/{module}: no `{file}` or `{folder}` heading"));
        }
    }
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        if relative.components().count() < 2 {
            continue; // a top-level module, checked above
        }
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let name = if stem == "mod" {
            file.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
        } else {
            stem
        };
        if !doc.contains(&format!("`{name}`")) && !doc.contains(&format!("`{name}/`")) {
            missing.push(format!("src/{}: `{name}` is not named", relative.display()));
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map misses modules:\n{}",
        missing.join("\n")
    );
}

/// src/X.rs and src/X/ (lib.rs and main.rs are the crate itself).
fn top_level_modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name()?.to_str()?.to_string();
            if path.is_dir() {
                Some(name)
            } else {
                let stem = name.strip_suffix(".rs")?;
                (stem != "lib" && stem != "main").then(|| stem.to_string())
            }
        })
        .collect()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The top-level module a file under src/ belongs to.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(stem) => Some(stem.to_string()),
        None => Some(first.to_string()),
    }
}

/// Names lib.rs re-exports at the crate root (`pub use m::{A, b::C}`), by
/// the module they come from.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let code = strip_comments_and_literals(lib);
    let mut out = BTreeMap::new();
    for statement in code.split(';') {
        let Some(rest) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim().trim_start_matches("crate::");
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in split_top_level(items) {
            let name = item.rsplit("::").next().unwrap_or("");
            let name = name.rsplit(" as ").next().unwrap_or(name).trim();
            if !name.is_empty() {
                out.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    out
}

/// Each `crate::X` of Rust source, with its line: `crate::a::b`, and each
/// item of `crate::{a, b::{c, d}}`. Comments and literals do not count.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let code = strip_comments_and_literals(text);
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find("crate::") {
        let at = from + found;
        from = at + "crate::".len();
        let before = at.checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$') {
            continue;
        }
        let line = code[..at].matches('\n').count() + 1;
        let rest = code[from..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let end = closing_brace(group);
            for item in split_top_level(&group[..end]) {
                let name = leading_ident(&item);
                if !name.is_empty() && name != "self" {
                    out.push((line, name));
                }
            }
        } else {
            let name = leading_ident(rest);
            if !name.is_empty() {
                out.push((line, name));
            }
        }
    }
    out
}

fn leading_ident(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The index of the `}` closing a group whose `{` was just before `text`.
fn closing_brace(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

/// `a, b::{c, d}, e` -> [`a`, `b::{c, d}`, `e`].
fn split_top_level(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current.trim().to_string());
    items.retain(|i| !i.is_empty());
    items
}

/// `text` with comments, strings and char literals blanked out (newlines
/// kept, so line numbers hold).
fn strip_comments_and_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"' | '#')) && !ident_before(&chars, i) {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            i = j + 1;
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    blank(&mut out, ch);
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // An escaped char literal: '\n', '\'', '\u{1}'.
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3; // 'x'
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_')
}

/// One loop through each group of modules that import each other (a
/// strongly connected component of more than one module), as
/// `[a, b, a]`.
fn cycles(edges: &BTreeMap<(String, String), Import>) -> Vec<Vec<String>> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        graph.entry(from).or_default().insert(to);
        graph.entry(to).or_default();
    }
    let reaches = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            for next in &graph[node] {
                if seen.insert(next.to_string()) {
                    stack.push(next);
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&str, BTreeSet<String>> =
        graph.keys().map(|node| (*node, reaches(node))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for node in graph.keys() {
        if done.contains(*node) || !reach[node].contains(*node) {
            continue;
        }
        let component: BTreeSet<&str> = graph
            .keys()
            .filter(|other| reach[node].contains(**other) && reach[**other].contains(*node))
            .copied()
            .collect();
        done.extend(component.iter().copied());
        out.push(shortest_loop(&graph, node, &component));
    }
    out
}

/// The shortest path from `start` back to itself, inside `component`.
fn shortest_loop(
    graph: &BTreeMap<&str, BTreeSet<&str>>,
    start: &str,
    component: &BTreeSet<&str>,
) -> Vec<String> {
    let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for next in &graph[node] {
            if !component.contains(next) {
                continue;
            }
            if *next == start {
                let mut path = vec![start.to_string()];
                let mut at = node;
                while at != start {
                    path.push(at.to_string());
                    at = previous[at];
                }
                path.push(start.to_string());
                path.reverse();
                return path;
            }
            if !previous.contains_key(next) {
                previous.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    vec![start.to_string()]
}

/// The checker itself: what it counts as an import, and what it ignores.
#[test]
fn crate_paths_are_read_from_code_only() {
    let text = r##"
use crate::error::Result;
use crate::{jinja::{self, Env}, manifest, self};
// use crate::cli::nothing;
/* crate::runner /* nested */ crate::env */
let s = "crate::select";
let r = r#"crate::plan"#;
let c = '"'; let l: &'static str = "";
fn f() -> crate::graph::Dag { $crate::x(); other_crate::y() }
"##;
    let paths: Vec<(usize, String)> = crate_paths(text);
    let expected = [(2, "error"), (3, "jinja"), (3, "manifest"), (9, "graph")]
        .map(|(line, name)| (line, name.to_string()));
    assert_eq!(paths, expected);
}

#[test]
fn a_loop_is_named_whole() {
    let import = |m: &str| Import {
        file: "src/x.rs".into(),
        line: 1,
        module: m.into(),
    };
    let edges: BTreeMap<(String, String), Import> =
        [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e")]
            .into_iter()
            .map(|(f, t)| ((f.to_string(), t.to_string()), import(t)))
            .collect();
    assert_eq!(cycles(&edges), vec![vec!["a", "b", "c", "a"]]);
}

#[test]
fn root_reexports_map_to_their_module() {
    let lib =
        "pub use compile::{CompileOptions, Compiled, compile};\npub use error::{Error, Result};";
    let map = root_reexports(lib);
    assert_eq!(map["Compiled"], "compile");
    assert_eq!(map["Result"], "error");
}
