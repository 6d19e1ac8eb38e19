//! From saphyr's parser events to weir's tree: scalars typed as PyYAML
//! types them, merge keys (`<<: *base`) applied as PyYAML applies them,
//! and limits that keep hostile input from taking the machine.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::resolve;
use super::tree::{Kind, Mapping, Yaml};

/// How deep collections may nest. dbt's files nest a dozen levels at most;
/// the parser refuses flow collections deeper than 255 on its own.
pub const MAX_DEPTH: usize = 100;

/// How many nodes aliases may add to one document: enough for anchors
/// reused across a large project, far too few for a "billion laughs".
pub const MAX_ALIAS_NODES: usize = 1_000_000;

/// Why a text is not a YAML document weir can read, and on which line.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub line: usize,
    pub message: String,
}

impl LoadError {
    fn at(span: &Span, message: impl Into<String>) -> LoadError {
        LoadError {
            line: span.start.line(),
            message: message.into(),
        }
    }
}

/// Read one YAML document; a text with no document is `Null`.
pub fn load(text: &str) -> Result<Yaml, LoadError> {
    let mut builder = Builder::default();
    for event in Parser::new_from_str(text) {
        // After an error the parser repeats it forever: stop at the first.
        let (event, span) = event.map_err(|e| {
            let message = if e.info() == "recursion limit exceeded" {
                depth_message()
            } else {
                e.info().to_string()
            };
            LoadError {
                line: e.marker().line(),
                message,
            }
        })?;
        builder.event(event, &span)?;
    }
    Ok(builder.root.unwrap_or_else(|| Yaml::at(1, Kind::Null)))
}

fn depth_message() -> String {
    format!("collections nest deeper than {MAX_DEPTH} levels")
}

/// A finished node, with what the limits need to know of it.
struct Built {
    node: Yaml,
    /// Nodes in it, itself included.
    size: usize,
    /// Levels of collections in it.
    height: usize,
}

enum Collection {
    Sequence(Vec<Yaml>),
    Mapping(MappingState),
}

#[derive(Default)]
struct MappingState {
    entries: Vec<(Yaml, Yaml)>,
    /// Where each explicit key was written, to refuse it a second time;
    /// built once the mapping is large enough for a scan to cost more.
    seen: Option<HashMap<KeyId, usize>>,
    /// A key waiting for its value; true when it is a merge key (`<<`).
    key: Option<(Yaml, bool)>,
    /// Mappings to merge in, in PyYAML's order (see `merged`).
    merges: Vec<Vec<(Yaml, Yaml)>>,
}

struct Frame {
    line: usize,
    anchor: usize,
    size: usize,
    height: usize,
    collection: Collection,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Yaml, usize, usize)>,
    alias_nodes: usize,
    documents: usize,
    root: Option<Yaml>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<(), LoadError> {
        let line = span.start.line();
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(LoadError::at(
                        span,
                        "a second YAML document starts here; weir reads one document per file",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let merge_key = style == ScalarStyle::Plain && tag.is_none() && text == "<<";
                let kind =
                    scalar(&text, style, tag.as_deref()).map_err(|m| LoadError::at(span, m))?;
                let built = Built {
                    node: Yaml::at(line, kind),
                    size: 1,
                    height: 0,
                };
                self.finish_node(built, anchor, merge_key)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(line, anchor, Collection::Sequence(Vec::new()), span)?
            }
            Event::MappingStart(anchor, _) => self.open(
                line,
                anchor,
                Collection::Mapping(MappingState::default()),
                span,
            )?,
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                let kind = match frame.collection {
                    Collection::Sequence(items) => Kind::Sequence(items),
                    Collection::Mapping(state) => Kind::Mapping(merged(state)),
                };
                let built = Built {
                    node: Yaml::at(frame.line, kind),
                    size: frame.size + 1,
                    height: frame.height + 1,
                };
                self.finish_node(built, frame.anchor, false)?;
            }
            Event::Alias(id) => {
                let Some((node, size, height)) = self.anchors.get(&id) else {
                    return Err(LoadError::at(span, "an alias to an unknown anchor"));
                };
                self.alias_nodes += size;
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(LoadError::at(
                        span,
                        format!(
                            "aliases expand to more than {MAX_ALIAS_NODES} values (is this a YAML bomb?)"
                        ),
                    ));
                }
                if self.stack.len() + height > MAX_DEPTH {
                    return Err(LoadError::at(span, depth_message()));
                }
                let built = Built {
                    node: node.clone(),
                    size: *size,
                    height: *height,
                };
                self.finish_node(built, 0, false)?;
            }
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn open(
        &mut self,
        line: usize,
        anchor: usize,
        collection: Collection,
        span: &Span,
    ) -> Result<(), LoadError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(LoadError::at(span, depth_message()));
        }
        self.stack.push(Frame {
            line,
            anchor,
            size: 0,
            height: 0,
            collection,
        });
        Ok(())
    }

    /// A node is complete: remember it under its anchor, and put it in its
    /// parent (or make it the document).
    fn finish_node(
        &mut self,
        built: Built,
        anchor: usize,
        merge_key: bool,
    ) -> Result<(), LoadError> {
        if anchor != 0 {
            self.anchors
                .insert(anchor, (built.node.clone(), built.size, built.height));
        }
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(built.node);
            return Ok(());
        };
        parent.size += built.size;
        parent.height = parent.height.max(built.height);
        match &mut parent.collection {
            Collection::Sequence(items) => items.push(built.node),
            Collection::Mapping(state) => match state.key.take() {
                None => state.key = Some((built.node, merge_key)),
                Some((key, true)) => state.merges.push(merge_sources(built.node, key.line())?),
                Some((key, false)) => {
                    if let Some(first) = state.line_of(&key) {
                        return Err(LoadError {
                            line: key.line(),
                            message: format!(
                                "duplicate key `{key}` in a mapping (first on line {first})"
                            ),
                        });
                    }
                    state.entries.push((key, built.node));
                }
            },
        }
        Ok(())
    }
}

impl MappingState {
    /// The line of an explicit key equal to `key`, if there is one; keeps
    /// `key` in the index (when there is one) for the next look-up.
    fn line_of(&mut self, key: &Yaml) -> Option<usize> {
        const SCAN: usize = 16;
        if self.seen.is_none() && self.entries.len() < SCAN {
            return self
                .entries
                .iter()
                .find(|(k, _)| same_key(k, key))
                .map(|(k, _)| k.line());
        }
        let entries = &self.entries;
        let seen = self.seen.get_or_insert_with(|| {
            entries
                .iter()
                .map(|(k, _)| (KeyId::of(k), k.line()))
                .collect()
        });
        match seen.get(&KeyId::of(key)) {
            Some(line) => Some(*line),
            None => {
                seen.insert(KeyId::of(key), key.line());
                None
            }
        }
    }
}

/// The entries a `<<:` value brings: a mapping's, or those of a list of
/// mappings, the last of the list first (its values are overridden by the
/// earlier ones, as in PyYAML).
fn merge_sources(value: Yaml, key_line: usize) -> Result<Vec<(Yaml, Yaml)>, LoadError> {
    let not_mapping = || LoadError {
        line: key_line,
        message: "a merge key `<<:` takes a mapping or a list of mappings".into(),
    };
    match value.kind() {
        Kind::Mapping(map) => Ok(map.iter().cloned().collect()),
        Kind::Sequence(items) => {
            let mut entries = Vec::new();
            for item in items.iter().rev() {
                let map = item.as_mapping().ok_or_else(not_mapping)?;
                entries.extend(map.iter().cloned());
            }
            Ok(entries)
        }
        _ => Err(not_mapping()),
    }
}

/// The mapping PyYAML builds: merged entries first, then those written; a
/// key keeps the place it first had and the value it was last given.
fn merged(state: MappingState) -> Mapping {
    if state.merges.is_empty() {
        return Mapping::from_entries(state.entries);
    }
    let mut out: Vec<(Yaml, Yaml)> = Vec::new();
    let mut index: HashMap<KeyId, usize> = HashMap::new();
    for (key, value) in state.merges.into_iter().flatten().chain(state.entries) {
        match index.get(&KeyId::of(&key)) {
            Some(&at) => out[at].1 = value,
            None => {
                index.insert(KeyId::of(&key), out.len());
                out.push((key, value));
            }
        }
    }
    Mapping::from_entries(out)
}

/// `KeyId::of(a) == KeyId::of(b)`, without building either.
fn same_key(a: &Yaml, b: &Yaml) -> bool {
    match (a.kind(), b.kind()) {
        (Kind::String(x), Kind::String(y)) => x == y,
        (Kind::Float(x), Kind::Float(y)) => x.to_bits() == y.to_bits(),
        (Kind::Sequence(_) | Kind::Mapping(_), _) | (_, Kind::Sequence(_) | Kind::Mapping(_)) => {
            KeyId::of(a) == KeyId::of(b)
        }
        (x, y) => x == y,
    }
}

/// What makes two keys the same key.
#[derive(Hash, PartialEq, Eq)]
enum KeyId {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    String(String),
    Collection(String),
}

impl KeyId {
    fn of(key: &Yaml) -> KeyId {
        match key.kind() {
            Kind::Null => KeyId::Null,
            Kind::Bool(b) => KeyId::Bool(*b),
            Kind::Int(i) => KeyId::Int(*i),
            Kind::Float(f) => KeyId::Float(f.to_bits()),
            Kind::String(s) => KeyId::String(s.clone()),
            Kind::Sequence(_) | Kind::Mapping(_) => {
                KeyId::Collection(super::to_json(key).to_string())
            }
        }
    }
}

/// A scalar's value: quoted and block scalars are text, plain ones are
/// typed, and the core tags (`!!str`, `!!int`, ...) convert.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Kind, String> {
    match tag {
        Some(tag) if tag.is_yaml_core_schema() => resolve::tagged(text, &tag.suffix),
        // The non-specific tag `!`: text, whatever it looks like.
        Some(tag) if tag.handle.is_empty() && tag.suffix == "!" => {
            Ok(Kind::String(text.to_string()))
        }
        // Other tags mean something to other programs; weir reads the value.
        _ if style != ScalarStyle::Plain => Ok(Kind::String(text.to_string())),
        _ => Ok(resolve::plain(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::yaml::to_json;
    use serde_json::json;

    fn json_of(text: &str) -> serde_json::Value {
        to_json(&load(text).unwrap())
    }

    #[test]
    fn every_node_knows_its_line() {
        let doc = load(
            "version: 2\nsources:\n  - name: raw\n    schema: x\n    tables:\n      - name: t\n",
        )
        .unwrap();
        let source = &doc.get("sources").unwrap().as_sequence().unwrap()[0];
        assert_eq!(source.line(), 3);
        assert_eq!(source.get("schema").unwrap().line(), 4);
        let table = &source.get("tables").unwrap().as_sequence().unwrap()[0];
        assert_eq!(table.get("name").unwrap().line(), 6);
        // An empty value is on its key's line.
        let doc = load("a:\nb: 1\n").unwrap();
        assert_eq!(doc.get("a").unwrap().line(), 1);
        assert!(doc.get("a").unwrap().is_null());
    }

    #[test]
    fn merge_keys_are_applied_as_pyyaml_applies_them() {
        // PyYAML: {'x': {'a': 1, 'b': 2}, 'y': {'a': 1, 'b': 3, 'c': 4}}
        assert_eq!(
            json_of("x: &x {a: 1, b: 2}\ny:\n  <<: *x\n  b: 3\n  c: 4\n"),
            json!({"x": {"a": 1, "b": 2}, "y": {"a": 1, "b": 3, "c": 4}})
        );
        // A list: the first mapping wins; keys come last-mapping first.
        // PyYAML: {'r': 10, 'x': 1, 'y': 2, 'label': 'l'} for << : [*C, *B]
        let text = "- &C {x: 1, y: 2}\n- &B {r: 10, x: 9}\n- << : [*C, *B]\n  label: l\n";
        let doc = json_of(text);
        assert_eq!(doc[2], json!({"r": 10, "x": 1, "y": 2, "label": "l"}));
        assert_eq!(
            doc[2].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["r", "x", "y", "label"]
        );
        // A quoted `<<` is an ordinary key.
        assert_eq!(json_of("'<<': {a: 1}\n"), json!({"<<": {"a": 1}}));
        let err = load("a: &a 1\nb:\n  <<: *a\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("merge key"), "{}", err.message);
    }

    #[test]
    fn merged_values_keep_the_line_they_were_written_on() {
        let doc = load("base: &b\n  schema: s\nt:\n  <<: *b\n  name: n\n").unwrap();
        let t = doc.get("t").unwrap();
        assert_eq!(t.get("schema").unwrap().line(), 2);
        assert_eq!(t.get("name").unwrap().line(), 5);
    }

    #[test]
    fn a_duplicate_key_names_both_lines() {
        let err = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("duplicate key `a`"), "{}", err.message);
        assert!(err.message.contains("line 1"), "{}", err.message);
    }

    #[test]
    fn a_yaml_bomb_stops_with_an_error() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let err = load(&text).unwrap_err();
        assert!(err.message.contains("YAML bomb"), "{}", err.message);
        assert!((6..=10).contains(&err.line), "line {}", err.line);
        // An alias inside its own anchor is refused, not followed.
        let err = load("a: &a [1, *a]\n").unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn deep_nesting_stops_at_the_limit_in_linear_time() {
        // 250 KB of nested flow sequences: the parser's own limit.
        let flow = format!("{}{}", "[".repeat(125_000), "]".repeat(125_000));
        let err = load(&flow).unwrap_err();
        assert!(err.message.contains("nest deeper than"), "{}", err.message);
        assert_eq!(err.line, 1);
        // Flow nesting under the parser's limit but over weir's.
        let flow = format!("k: {}{}", "[".repeat(200), "]".repeat(200));
        assert!(
            load(&flow)
                .unwrap_err()
                .message
                .contains("nest deeper than")
        );
        // 250 KB of block sequences on one line, and of indented mappings.
        let block = format!("{}x\n", "- ".repeat(125_000));
        assert!(
            load(&block)
                .unwrap_err()
                .message
                .contains("nest deeper than")
        );
        let mut indented = String::new();
        for i in 0..700 {
            indented.push_str(&" ".repeat(i));
            indented.push_str("a:\n");
        }
        let err = load(&indented).unwrap_err();
        assert_eq!(err.line, MAX_DEPTH + 1);
        // Aliases cannot nest past the limit either.
        let deep = format!(
            "a: &a {}1{}\nb: {}*a{}\n",
            "[".repeat(60),
            "]".repeat(60),
            "[".repeat(60),
            "]".repeat(60)
        );
        let err = load(&deep).unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn one_document_per_file() {
        assert_eq!(json_of("--- {a: 1}\n...\n"), json!({"a": 1}));
        let err = load("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(load("# nothing\n").unwrap().is_null());
    }

    #[test]
    fn scalars_are_typed_as_dbt_types_them() {
        assert_eq!(
            json_of(
                "a: yes\nb: 'yes'\nc: !!str 1\nd: ! 1\ne: !custom 1\nf: 1e3\ng: 0x10\nh: |\n  x\n"
            ),
            json!({"a": true, "b": "yes", "c": "1", "d": "1", "e": 1, "f": "1e3", "g": 16, "h": "x\n"})
        );
        let err = load("a: 1\nb: !!int x\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let err = load("name: shop\nmodels:\n  - [unclosed\n").unwrap_err();
        assert_eq!(err.line, 4);
        let err = load("a: *nope\n").unwrap_err();
        assert_eq!(err.line, 1);
    }
}
