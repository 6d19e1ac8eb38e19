//! The selection grammar as dbt parses it: `@`, `[n]+method.arg:value+[n]`,
//! union by space, intersection by comma, and the set operations that
//! --exclude and selectors.yml build from them.

use serde_json::Value as Json;

use crate::error::{Error, ErrorKind, Result};

/// Which tests come along with the nodes they test (dbt's
/// `--indirect-selection`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IndirectSelection {
    /// A test is selected when any node it tests is.
    #[default]
    Eager,
    /// A test is selected only when every node it tests is.
    Cautious,
    /// Like cautious, but the selected nodes' ancestors count as selected.
    Buildable,
    /// No test is selected unless the selection names it.
    Empty,
}

impl IndirectSelection {
    pub fn parse(text: &str) -> Result<IndirectSelection> {
        match text.to_ascii_lowercase().as_str() {
            "eager" => Ok(IndirectSelection::Eager),
            "cautious" => Ok(IndirectSelection::Cautious),
            "buildable" => Ok(IndirectSelection::Buildable),
            "empty" => Ok(IndirectSelection::Empty),
            _ => Err(Error::new(
                ErrorKind::Selection,
                format!("unknown indirect selection `{text}`"),
            )
            .with_hint("use one of eager, cautious, buildable, empty")),
        }
    }
}

/// A selection method: the part before `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Fqn,
    Tag,
    Group,
    Access,
    Source,
    Path,
    File,
    Package,
    Config,
    TestName,
    TestType,
    ResourceType,
    State,
    Exposure,
    Metric,
    Result,
    SourceStatus,
    Version,
    SemanticModel,
    SavedQuery,
    UnitTest,
}

/// Every method dbt knows, by the name a selector uses.
pub const METHODS: [(&str, Method); 21] = [
    ("fqn", Method::Fqn),
    ("tag", Method::Tag),
    ("group", Method::Group),
    ("access", Method::Access),
    ("source", Method::Source),
    ("path", Method::Path),
    ("file", Method::File),
    ("package", Method::Package),
    ("config", Method::Config),
    ("test_name", Method::TestName),
    ("test_type", Method::TestType),
    ("resource_type", Method::ResourceType),
    ("state", Method::State),
    ("exposure", Method::Exposure),
    ("metric", Method::Metric),
    ("result", Method::Result),
    ("source_status", Method::SourceStatus),
    ("version", Method::Version),
    ("semantic_model", Method::SemanticModel),
    ("saved_query", Method::SavedQuery),
    ("unit_test", Method::UnitTest),
];

impl Method {
    pub fn name(self) -> &'static str {
        METHODS
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("", |(name, _)| name)
    }

    /// `method.arg.arg` as written before the `:`; `raw` is the whole
    /// criterion, for messages.
    pub fn parse(text: &str, raw: &str) -> Result<(Method, Vec<String>)> {
        let mut parts = text.split('.');
        let name = parts.next().unwrap_or("");
        let arguments: Vec<String> = parts.map(str::to_string).collect();
        let Some(&(_, method)) = METHODS.iter().find(|(n, _)| *n == name) else {
            let err = Error::new(
                ErrorKind::Selection,
                format!("unknown selection method `{name}` in `{raw}`"),
            );
            let hint = crate::error::did_you_mean(name, METHODS.iter().map(|(n, _)| *n))
                .unwrap_or_else(|| {
                    let names: Vec<&str> = METHODS.iter().map(|(n, _)| *n).collect();
                    format!("methods: {}", names.join(", "))
                });
            return Err(err.with_hint(hint));
        };
        if method == Method::Config {
            if arguments.is_empty() || arguments.iter().any(String::is_empty) {
                return Err(Error::new(
                    ErrorKind::Selection,
                    format!("`{raw}`: `config` needs a key, as in `config.materialized:table`"),
                ));
            }
        } else if !arguments.is_empty() {
            return Err(Error::new(
                ErrorKind::Selection,
                format!(
                    "`{raw}`: only `config` takes a `.key`; `{name}` does not take `.{}`",
                    arguments.join(".")
                ),
            ));
        }
        Ok((method, arguments))
    }
}

/// One criterion: a method and value with its graph operators.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// The text as written, for messages.
    pub raw: String,
    pub method: Method,
    /// For `config.a.b:value`: `["a", "b"]`.
    pub arguments: Vec<String>,
    /// A string from the command line; any YAML scalar from selectors.yml.
    pub value: Json,
    /// `@`: the descendants and all their ancestors.
    pub childrens_parents: bool,
    /// `+x` / `n+x`: ancestors, `None` depth meaning all of them.
    pub parents: Option<Option<usize>>,
    /// `x+` / `x+n`: descendants.
    pub children: Option<Option<usize>>,
    pub indirect: IndirectSelection,
}

impl Criterion {
    /// The value as text (every method but `config` compares text).
    pub fn value_text(&self) -> String {
        match &self.value {
            Json::String(s) => s.clone(),
            Json::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// Parse one criterion as dbt's RAW_SELECTOR_PATTERN does:
    /// `(@)?((\d*)\+)?(([\w.]+):)?(.*?)(\+(\d*))?`.
    pub fn parse(raw: &str, indirect: IndirectSelection) -> Result<Criterion> {
        if raw.contains(['\n', '\r']) {
            return Err(Error::new(
                ErrorKind::Selection,
                format!("selector `{}` spans lines", raw.escape_debug()),
            ));
        }
        let (childrens_parents, rest) = match raw.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (parents, rest) = match rest[digits..].strip_prefix('+') {
            Some(after) => (Some(depth(&rest[..digits], raw)?), after),
            None => (None, rest),
        };
        // The value is lazy, so a trailing `+digits` belongs to the children operator.
        let without_digits = rest.trim_end_matches(|c: char| c.is_ascii_digit());
        let (children, body) = match without_digits.strip_suffix('+') {
            Some(body) => (Some(depth(&rest[without_digits.len()..], raw)?), body),
            None => (None, rest),
        };
        let (method, arguments, value) = match split_method(body) {
            Some((method_text, value)) => {
                let (method, arguments) = Method::parse(method_text, raw)?;
                (method, arguments, value)
            }
            None => (default_method(body), Vec::new(), body),
        };
        let criterion = Criterion {
            raw: raw.to_string(),
            method,
            arguments,
            value: Json::String(value.to_string()),
            childrens_parents,
            parents,
            children,
            indirect,
        };
        criterion.check()?;
        Ok(criterion)
    }

    /// What dbt rejects about a criterion once parsed.
    pub fn check(&self) -> Result<()> {
        if self.childrens_parents && self.children.is_some() {
            return Err(Error::new(
                ErrorKind::Selection,
                format!("`{}`: `@` and a trailing `+` cannot be combined", self.raw),
            )
            .with_hint("`@x` already selects every descendant of x"));
        }
        Ok(())
    }
}

/// `method:` at the start of a criterion: word characters and dots, then `:`.
fn split_method(body: &str) -> Option<(&str, &str)> {
    let (method, value) = body.split_once(':')?;
    let is_method = !method.is_empty()
        && method
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
    is_method.then_some((method, value))
}

/// dbt's choice when no method is written: a path if it has a `/`, a file
/// if it ends like one, otherwise a name in the fqn.
fn default_method(value: &str) -> Method {
    let lower = value.to_ascii_lowercase();
    if value.contains('/') {
        Method::Path
    } else if lower.ends_with(".sql") || lower.ends_with(".py") || lower.ends_with(".csv") {
        Method::File
    } else {
        Method::Fqn
    }
}

/// `""` means unlimited depth.
fn depth(digits: &str, raw: &str) -> Result<Option<usize>> {
    if digits.is_empty() {
        return Ok(None);
    }
    digits.parse().map(Some).map_err(|_| {
        Error::new(
            ErrorKind::Selection,
            format!("`{raw}`: depth `{digits}` is too large"),
        )
    })
}

/// A parsed selection: criteria combined by set operations. Each
/// operation carries the indirect selection it applies when it combines.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// Every node, source and exposure: what no --select means.
    Everything(IndirectSelection),
    Criterion(Box<Criterion>),
    Union(Vec<Spec>, IndirectSelection),
    Intersection(Vec<Spec>, IndirectSelection),
    /// The first minus the union of the others.
    Difference(Vec<Spec>, IndirectSelection),
}

impl Spec {
    /// `--select` arguments (each may hold several space-separated
    /// criteria, each a comma-separated intersection) minus `--exclude`.
    pub fn from_arguments(
        select: &[String],
        exclude: &[String],
        indirect: IndirectSelection,
    ) -> Result<Spec> {
        let included = if select.is_empty() {
            Spec::Everything(indirect)
        } else {
            cli_union(select, indirect)?
        };
        let excluded = cli_union(exclude, indirect)?;
        // dbt's difference of the two unions keeps its own default (eager).
        Ok(Spec::Difference(
            vec![included, excluded],
            IndirectSelection::Eager,
        ))
    }
}

fn cli_union(arguments: &[String], indirect: IndirectSelection) -> Result<Spec> {
    let mut union = Vec::new();
    for argument in arguments {
        for part in argument.split_whitespace() {
            let criteria = part
                .split(',')
                .map(|c| {
                    if c.is_empty() {
                        Err(Error::new(
                            ErrorKind::Selection,
                            format!("`{part}`: empty criterion between commas"),
                        ))
                    } else {
                        Criterion::parse(c, indirect).map(|c| Spec::Criterion(Box::new(c)))
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            union.push(Spec::Intersection(criteria, indirect));
        }
    }
    Ok(Spec::Union(union, indirect))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Criterion {
        Criterion::parse(raw, IndirectSelection::Eager).unwrap()
    }

    #[test]
    fn operators_and_methods() {
        let c = parse("2+tag:nightly+3");
        assert_eq!(c.method, Method::Tag);
        assert_eq!(c.value, "nightly");
        assert_eq!(c.parents, Some(Some(2)));
        assert_eq!(c.children, Some(Some(3)));
        let c = parse("@config.meta.owner:ann");
        assert!(c.childrens_parents);
        assert_eq!(c.method, Method::Config);
        assert_eq!(c.arguments, ["meta", "owner"]);
        let c = parse("+orders");
        assert_eq!(
            (c.method, c.parents, c.children),
            (Method::Fqn, Some(None), None)
        );
        assert_eq!(parse("models/staging").method, Method::Path);
        assert_eq!(parse("orders.sql").method, Method::File);
        assert_eq!(parse("2020_orders").value, "2020_orders");
        assert_eq!(parse("2020_orders").parents, None);
        assert_eq!(parse("@+orders").parents, Some(None));
    }

    #[test]
    fn malformed_criteria_are_errors_naming_the_text() {
        let err = |raw: &str| {
            Criterion::parse(raw, IndirectSelection::Eager)
                .unwrap_err()
                .to_string()
        };
        assert!(err("colour:blue").contains("`colour`"));
        assert!(err("@orders+").contains("`@orders+`"));
        assert!(err("tag.x:y").contains("`tag.x:y`"));
        assert!(err("config:table").contains("`config:table`"));
        assert!(err("99999999999999999999999+x").contains("too large"));
    }
}
