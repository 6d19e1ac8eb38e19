//! selectors.yml: named selections written as dbt's YAML selector
//! definitions, and the one marked `default: true`.

use std::path::{Path, PathBuf};

use crate::project::yaml::{Kind, Yaml};

use super::spec::{Criterion, IndirectSelection, Method, Spec};
use crate::error::{Error, ErrorKind, Result};

/// The selectors of a project's selectors.yml, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selectors {
    /// Where they were read from (None when the project has no selectors.yml).
    pub file: Option<PathBuf>,
    text: String,
    selectors: Vec<NamedSelector>,
}

#[derive(Debug, Clone, PartialEq)]
struct NamedSelector {
    name: String,
    description: String,
    default: bool,
    definition: Yaml,
    /// The line of its `name:`, for errors about its definition.
    line: usize,
}

impl Selectors {
    /// Read `<root>/selectors.yml`; no file means no selectors.
    pub fn load(root: &Path) -> Result<Selectors> {
        let path = root.join("selectors.yml");
        if !path.is_file() {
            return Ok(Selectors::default());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        Selectors::parse(&text, &path)
    }

    /// Parse the text of a selectors.yml found at `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Selectors> {
        let doc = crate::project::yaml::parse(text, path)?;
        let error = |message: String, line: usize| {
            Error::new(ErrorKind::Selection, message)
                .in_file(path)
                .at_line(line)
        };
        let items = match doc.get("selectors") {
            Some(value) if value.is_null() => &[],
            Some(value) => match value.as_sequence() {
                Some(items) => items,
                None => return Err(error("`selectors:` must be a list".into(), value.line())),
            },
            None if doc.as_mapping().is_some_and(|m| m.is_empty()) => &[],
            None => {
                return Err(error("selectors.yml has no `selectors:` list".into(), 1)
                    .with_hint("write `selectors:` followed by `- name: ...` entries"));
            }
        };
        let mut selectors: Vec<NamedSelector> = Vec::new();
        for item in items {
            let Some(name) = item.get("name").and_then(Yaml::as_str) else {
                let (message, line) = match item.get("name") {
                    Some(other) => (
                        format!(
                            "a selector's `name:` must be text, got `{}`",
                            one_line(other)
                        ),
                        other.line(),
                    ),
                    None => (
                        format!("a selector has no `name:`: `{}`", one_line(item)),
                        item.line(),
                    ),
                };
                return Err(error(message, line));
            };
            let line = item.get("name").map_or(item.line(), Yaml::line);
            if item.as_mapping().is_some_and(|m| {
                m.keys()
                    .filter_map(Yaml::as_str)
                    .any(|k| !matches!(k, "name" | "description" | "default" | "definition"))
            }) {
                let unknown: Vec<&str> = item
                    .as_mapping()
                    .into_iter()
                    .flat_map(|m| m.keys().filter_map(Yaml::as_str))
                    .filter(|k| !matches!(*k, "name" | "description" | "default" | "definition"))
                    .collect();
                return Err(error(
                    format!("selector `{name}` has unknown keys: {}", unknown.join(", ")),
                    line,
                )
                .with_hint("a selector has name, description, default and definition"));
            }
            let Some(definition) = item.get("definition") else {
                return Err(error(
                    format!("selector `{name}` has no `definition:`"),
                    line,
                ));
            };
            let default_node = item.get("default");
            let default = match default_node.map(render_scalar).transpose() {
                Err(e) => {
                    let node = default_node.unwrap_or(item);
                    return Err(crate::project::yaml::error_at(e, path, text, node));
                }
                Ok(None) => false,
                Ok(Some(value)) => match value.kind() {
                    Kind::Bool(b) => *b,
                    Kind::String(s) if s.eq_ignore_ascii_case("true") => true,
                    Kind::String(s) if s.eq_ignore_ascii_case("false") => false,
                    _ => {
                        return Err(error(
                            format!(
                                "`default:` of selector `{name}` must be true or false, got `{}`",
                                one_line(&value)
                            ),
                            value.line(),
                        ));
                    }
                },
            };
            if selectors.iter().any(|s| s.name == name) {
                return Err(error(format!("two selectors are named `{name}`"), line));
            }
            if default && let Some(other) = selectors.iter().find(|s| s.default) {
                return Err(error(
                    format!(
                        "selectors `{}` and `{name}` are both `default: true`",
                        other.name
                    ),
                    line,
                )
                .with_hint("only one selector can be the default"));
            }
            selectors.push(NamedSelector {
                name: name.to_string(),
                description: item
                    .get("description")
                    .and_then(Yaml::as_str)
                    .unwrap_or_default()
                    .to_string(),
                default,
                definition: definition.clone(),
                line,
            });
        }
        let parsed = Selectors {
            file: Some(path.to_path_buf()),
            text: text.to_string(),
            selectors,
        };
        // Check every definition now, so a broken selector is reported even
        // when another one is used.
        for selector in &parsed.selectors {
            parsed.definition(&selector.name, IndirectSelection::Eager)?;
        }
        Ok(parsed)
    }

    /// The selector marked `default: true`, if any.
    pub fn default_name(&self) -> Option<&str> {
        self.selectors
            .iter()
            .find(|s| s.default)
            .map(|s| s.name.as_str())
    }

    /// Names and descriptions, in file order.
    pub fn names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.selectors
            .iter()
            .map(|s| (s.name.as_str(), s.description.as_str()))
    }

    /// The parsed definition of selector `name`; `indirect` is the
    /// command's --indirect-selection, which criteria use unless they set
    /// their own.
    pub fn definition(&self, name: &str, indirect: IndirectSelection) -> Result<Spec> {
        let Some(index) = self.selectors.iter().position(|s| s.name == name) else {
            let err = Error::new(ErrorKind::Selection, format!("no selector named `{name}`"));
            let err = match &self.file {
                Some(file) => err.in_file(file),
                None => {
                    err.with_hint("selectors are defined in selectors.yml in the project folder")
                }
            };
            let names = self.selectors.iter().map(|s| s.name.as_str());
            return Err(match crate::error::did_you_mean(name, names) {
                Some(hint) => err.with_hint(hint),
                None if !self.selectors.is_empty() => {
                    let names: Vec<&str> = self.selectors.iter().map(|s| s.name.as_str()).collect();
                    err.with_hint(format!("selectors: {}", names.join(", ")))
                }
                None => err,
            });
        };
        let selector = &self.selectors[index];
        let parser = DefinitionParser {
            selectors: self,
            // A selector may use only the selectors defined before it, as in dbt.
            visible: index,
            indirect,
        };
        let root = &selector.definition;
        if let Some(map) = root.as_mapping()
            && (root.get("union").is_some() || root.get("intersection").is_some())
            && map.len() > 1
        {
            return Err(parser.error(
                format!(
                    "selector `{name}`: a root-level `union` or `intersection` must be the only key"
                ),
                root,
            ));
        }
        parser.parse(root, 0)
    }
}

struct DefinitionParser<'s> {
    selectors: &'s Selectors,
    visible: usize,
    indirect: IndirectSelection,
}

/// Deeper than any real selector; stops runaway nesting before the stack does.
const MAX_DEPTH: usize = 64;

impl DefinitionParser<'_> {
    /// An error in selectors.yml about the value `node`.
    fn error(&self, message: String, node: &Yaml) -> Error {
        let err = Error::new(ErrorKind::Selection, message);
        match &self.selectors.file {
            Some(file) => err
                .in_file(file)
                .at_line_of(&self.selectors.text, node.line()),
            None => err,
        }
    }

    /// Put the position of `node` on an error found reading it (from the
    /// grammar, or a template counting lines from the start of the value).
    fn locate(&self, err: Error, node: &Yaml) -> Error {
        match &self.selectors.file {
            Some(file) => crate::project::yaml::error_at(err, file, &self.selectors.text, node),
            None => err,
        }
    }

    fn parse(&self, definition: &Yaml, depth: usize) -> Result<Spec> {
        if depth > MAX_DEPTH {
            return Err(self.error(
                "selector definition is nested too deeply".into(),
                definition,
            ));
        }
        match definition.kind() {
            Kind::String(text) => {
                let text = render(text).map_err(|e| self.locate(e, definition))?;
                Criterion::parse(&text, self.indirect)
                    .map(|c| Spec::Criterion(Box::new(c)))
                    .map_err(|e| self.locate(e, definition))
            }
            Kind::Mapping(map) => {
                for key in map.keys() {
                    if !key.is_string() {
                        let shown = one_line(key);
                        return Err(
                            self.error(format!("selector keys must be text, got `{shown}`"), key)
                        );
                    }
                }
                if let Some(items) = definition.get("union") {
                    self.set_operation(items, "union", depth)
                } else if let Some(items) = definition.get("intersection") {
                    self.set_operation(items, "intersection", depth)
                } else {
                    self.criterion(definition, depth)
                }
            }
            _ => {
                let shown = one_line(definition);
                Err(self.error(
                    format!(
                        "a selector definition is a string, a mapping, a `union:` or an \
                         `intersection:`; got `{shown}`"
                    ),
                    definition,
                ))
            }
        }
    }

    /// `union: [...]` or `intersection: [...]`, with at most one `exclude:` entry.
    fn set_operation(&self, node: &Yaml, key: &str, depth: usize) -> Result<Spec> {
        let Some(items) = node.as_sequence() else {
            return Err(self.error(format!("`{key}:` must be a list"), node));
        };
        let mut parts = Vec::new();
        let mut exclusion = None;
        for item in items {
            if item.get("exclude").is_some() && item.is_mapping() {
                if exclusion.is_some() {
                    return Err(
                        self.error(format!("`{key}:` has more than one `exclude:` entry"), item)
                    );
                }
                exclusion = Some(self.exclusions(item, depth)?);
            } else if item.is_string() || item.is_mapping() {
                parts.push(self.parse(item, depth + 1)?);
            } else {
                let shown = one_line(item);
                return Err(self.error(
                    format!("an entry of `{key}:` must be a string or a mapping, got `{shown}`"),
                    item,
                ));
            }
        }
        // Set operations of selectors.yml combine with dbt's default (eager).
        let base = if key == "union" {
            Spec::Union(parts, IndirectSelection::Eager)
        } else {
            Spec::Intersection(parts, IndirectSelection::Eager)
        };
        Ok(match exclusion {
            Some(excluded) => Spec::Difference(vec![base, excluded], IndirectSelection::Eager),
            None => base,
        })
    }

    /// The `exclude:` list of an entry: the union of its definitions.
    fn exclusions(&self, entry: &Yaml, depth: usize) -> Result<Spec> {
        let Some(items) = entry.get("exclude").and_then(Yaml::as_sequence) else {
            let node = entry.get("exclude").unwrap_or(entry);
            return Err(self.error("`exclude:` must be a list".into(), node));
        };
        let mut parts = items
            .iter()
            .map(|item| self.parse(item, depth + 1))
            .collect::<Result<Vec<_>>>()?;
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Spec::Union(parts, IndirectSelection::Eager)
        })
    }

    /// `{tag: nightly}`, `{method: tag, value: nightly, children: true, ...}`
    /// or `{method: selector, value: other_selector}`.
    fn criterion(&self, definition: &Yaml, depth: usize) -> Result<Spec> {
        let map = definition.as_mapping().expect("checked by the caller");
        let shown = one_line(definition);
        let (method_text, method_node, value, options) = if map.len() == 1 {
            let (key, value) = map.iter().next().expect("one entry");
            (
                key.as_str().unwrap_or_default().to_string(),
                key,
                value.clone(),
                None,
            )
        } else if let (Some(method), Some(value)) =
            (definition.get("method"), definition.get("value"))
        {
            let Some(method_text) = method.as_str() else {
                return Err(self.error(format!("`method:` must be text in `{shown}`"), method));
            };
            (
                method_text.to_string(),
                method,
                value.clone(),
                Some(definition),
            )
        } else {
            let keys: Vec<String> = map.keys().map(one_line).collect();
            return Err(self.error(
                format!(
                    "a selector criterion has one key (`tag: nightly`) or `method:` and \
                     `value:`; got keys {}",
                    keys.join(", ")
                ),
                map.keys().next().unwrap_or(definition),
            ));
        };
        if method_text == "selector" {
            let Some(name) = value.as_str() else {
                return Err(self.error(
                    format!("`selector` needs a selector name in `{shown}`"),
                    &value,
                ));
            };
            let earlier = &self.selectors.selectors[..self.visible];
            let Some(position) = earlier.iter().position(|s| s.name == name) else {
                return Err(self
                    .error(
                        format!("selector `{name}` is not defined before it is used"),
                        &value,
                    )
                    .with_hint(
                        "a selector can use only selectors defined above it in selectors.yml",
                    ));
            };
            let other = &earlier[position];
            let nested = DefinitionParser {
                selectors: self.selectors,
                visible: position,
                indirect: self.indirect,
            };
            let spec = nested.parse(&other.definition, depth + 1)?;
            return self.with_exclusions(spec, options, depth);
        }
        let (method, arguments) =
            Method::parse(&method_text, &shown).map_err(|e| self.locate(e, method_node))?;
        let rendered = render_scalar(&value).map_err(|e| self.locate(e, &value))?;
        let value = match rendered.kind() {
            Kind::String(_) | Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) => {
                crate::project::yaml::to_json(&rendered)
            }
            _ => {
                return Err(self.error(
                    format!(
                        "the value of `{method_text}` must be a single value, got `{}`",
                        one_line(&rendered)
                    ),
                    &value,
                ));
            }
        };
        let flag = |key: &str| -> Result<bool> {
            let Some(node) = options.and_then(|o| o.get(key)) else {
                return Ok(false);
            };
            match node.kind() {
                Kind::Null => Ok(false),
                Kind::Bool(b) => Ok(*b),
                _ => Err(self.error(
                    format!("`{key}:` must be true or false, got `{}`", one_line(node)),
                    node,
                )),
            }
        };
        // As dbt reads them: a YAML 0 means no limit, like a missing depth.
        let depth_of = |key: &str| -> Result<Option<usize>> {
            let Some(node) = options.and_then(|o| o.get(key)) else {
                return Ok(None);
            };
            match node.kind() {
                Kind::Null => Ok(None),
                Kind::Int(_) if node.as_u64().is_some() => Ok(node
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| *n > 0)),
                Kind::String(s) if s.is_empty() => Ok(None),
                Kind::String(s) if s.parse::<usize>().is_ok() => Ok(s.parse().ok()),
                _ => Err(self.error(
                    format!("`{key}:` must be a whole number, got `{}`", one_line(node)),
                    node,
                )),
            }
        };
        let indirect_node = options.and_then(|o| o.get("indirect_selection"));
        let indirect = match indirect_node.map(|node| (node, node.kind())) {
            None | Some((_, Kind::Null)) => self.indirect,
            Some((node, Kind::String(s))) => {
                IndirectSelection::parse(s).map_err(|e| self.locate(e, node))?
            }
            Some((node, _)) => {
                return Err(self.error(
                    format!(
                        "`indirect_selection:` must be text, got `{}`",
                        one_line(node)
                    ),
                    node,
                ));
            }
        };
        if let Some(options) = options.and_then(Yaml::as_mapping) {
            const KNOWN: [&str; 10] = [
                "method",
                "value",
                "children",
                "parents",
                "children_depth",
                "parents_depth",
                "childrens_parents",
                "indirect_selection",
                "exclude",
                "description",
            ];
            if let Some((unknown, key)) = options
                .keys()
                .filter_map(|key| Some((key.as_str()?, key)))
                .find(|(k, _)| !KNOWN.contains(k))
            {
                return Err(self
                    .error(
                        format!("unknown key `{unknown}` in selector criterion `{shown}`"),
                        key,
                    )
                    .with_hint(format!("keys: {}", KNOWN.join(", "))));
            }
        }
        let parents_depth = depth_of("parents_depth")?;
        let children_depth = depth_of("children_depth")?;
        let criterion = Criterion {
            raw: shown.clone(),
            method,
            arguments,
            value,
            childrens_parents: flag("childrens_parents")?,
            parents: flag("parents")?.then_some(parents_depth),
            children: flag("children")?.then_some(children_depth),
            indirect,
        };
        let check_node = options
            .and_then(|o| o.get("childrens_parents"))
            .unwrap_or(definition);
        criterion.check().map_err(|e| self.locate(e, check_node))?;
        self.with_exclusions(Spec::Criterion(Box::new(criterion)), options, depth)
    }

    fn with_exclusions(&self, spec: Spec, options: Option<&Yaml>, depth: usize) -> Result<Spec> {
        match options.filter(|o| o.get("exclude").is_some()) {
            Some(entry) => Ok(Spec::Difference(
                vec![spec, self.exclusions(entry, depth)?],
                IndirectSelection::Eager,
            )),
            None => Ok(spec),
        }
    }
}

/// A YAML scalar with any Jinja in it rendered (dbt renders selectors.yml).
fn render_scalar(value: &Yaml) -> Result<Yaml> {
    match value.kind() {
        Kind::String(text) => Ok(Yaml::at(value.line(), Kind::String(render(text)?))),
        _ => Ok(value.clone()),
    }
}

fn render(text: &str) -> Result<String> {
    if text.contains("{{") || text.contains("{%") {
        crate::jinja::render_standalone(text)
    } else {
        Ok(text.to_string())
    }
}

/// A YAML value on one line, for messages.
fn one_line(value: &Yaml) -> String {
    match value.as_str() {
        Some(s) => s.to_string(),
        None => crate::project::yaml::to_json(value).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Selectors> {
        Selectors::parse(text, Path::new("selectors.yml"))
    }

    #[test]
    fn definitions_of_every_form() {
        let selectors = parse(
            "selectors:\n\
             - name: nightly\n  definition: 'tag:nightly'\n\
             - name: staging_tree\n  default: true\n  definition:\n    method: path\n    value: models/staging\n    children: true\n\
             - name: both\n  definition:\n    union:\n      - method: selector\n        value: nightly\n      - tag: raw\n      - exclude:\n          - orders\n",
        )
        .unwrap();
        assert_eq!(selectors.default_name(), Some("staging_tree"));
        let Spec::Criterion(c) = selectors
            .definition("staging_tree", IndirectSelection::Eager)
            .unwrap()
        else {
            panic!("a criterion")
        };
        assert_eq!(c.children, Some(None));
        assert!(matches!(
            selectors
                .definition("both", IndirectSelection::Eager)
                .unwrap(),
            Spec::Difference(..)
        ));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = parse("selectors:\n  - name: a\n    definition: 'colour:blue'\n").unwrap_err();
        assert_eq!(err.file(), Some(Path::new("selectors.yml")));
        assert_eq!(err.line(), Some(3));
        assert!(err.message().contains("colour"), "{err}");

        let err = parse("selectors:\n  - name: a\n    definition:\n      method: selector\n      value: b\n  - name: b\n    definition: x\n")
            .unwrap_err();
        assert_eq!(err.line(), Some(5), "{err}");

        let err = parse("selectors:\n  - name: a\n    default: true\n    definition: x\n  - name: b\n    default: true\n    definition: y\n")
            .unwrap_err();
        assert_eq!(err.line(), Some(5), "{err}");

        let err = parse("selectors:\n  - name: a\n    definition:\n      tag: x\n      path: y\n")
            .unwrap_err();
        assert_eq!(err.line(), Some(4), "{err}");
    }
}
