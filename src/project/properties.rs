//! Properties YAML (version 2): descriptions, columns, configs and tests of
//! models and seeds, and the sources a project reads from.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{Map, Value as Json};
use serde_yaml::Value as Yaml;

use super::ProjectFile;
use super::versions::{self, ModelVersion};
use super::yaml::{self, line_of_key, str_field};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Column;

/// What a properties YAML says about one model or seed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelProperties {
    pub description: String,
    pub columns: Vec<Column>,
    pub config: Map<String, Json>,
    /// Tests as declared (column name, test definition), for the test runner.
    pub tests: Vec<(Option<String>, Json)>,
    /// Where the entry is: the properties file and line.
    pub file: String,
    pub line: usize,
    /// `versions:` of a model: each is a node of its own.
    pub versions: Vec<ModelVersion>,
    /// `latest_version:` as written (boxed: a JSON value is 72 bytes, and
    /// few models have one).
    pub latest_version: Option<Box<Json>>,
}

/// One table of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTable {
    pub name: String,
    pub identifier: String,
    pub description: String,
    /// `tags:`, `meta:` and `config:` as written on the table.
    pub tags: Vec<String>,
    pub meta: Map<String, Json>,
    pub config: Map<String, Json>,
    /// Tests on the table and its columns: (column, test definition).
    pub tests: Vec<(Option<String>, Json)>,
}

/// A `sources:` entry: a schema of tables loaded by something else.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDefinition {
    pub name: String,
    pub database: Option<String>,
    /// Defaults to the source name, as in dbt.
    pub schema: String,
    pub description: String,
    /// `tags:`, `meta:` and `config:` as written on the source.
    pub tags: Vec<String>,
    pub meta: Map<String, Json>,
    pub config: Map<String, Json>,
    pub tables: Vec<SourceTable>,
    pub file: String,
    pub line: usize,
}

/// An `exposures:` entry: something downstream (a dashboard, a notebook)
/// that reads the project's nodes. Values are kept as written; the
/// compiler resolves `depends_on` and writes dbt's manifest entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ExposureDefinition {
    pub name: String,
    /// dashboard, notebook, analysis, ml or application.
    pub kind: String,
    /// `{name, email, ...}` as written.
    pub owner: Map<String, Json>,
    pub description: String,
    pub label: Option<String>,
    pub maturity: Option<String>,
    pub url: Option<String>,
    pub tags: Vec<String>,
    pub meta: Map<String, Json>,
    /// `config:` as written (enabled, tags, meta).
    pub config: Map<String, Json>,
    /// `depends_on:` entries as written, each with its line.
    pub depends_on: Vec<(String, usize)>,
    pub file: String,
    pub line: usize,
}

/// Everything the project's properties files declare.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Properties {
    pub models: BTreeMap<String, ModelProperties>,
    pub seeds: BTreeMap<String, ModelProperties>,
    pub sources: Vec<SourceDefinition>,
    pub exposures: Vec<ExposureDefinition>,
}

impl Properties {
    pub fn parse(root: &Path, files: &[ProjectFile]) -> Result<Properties> {
        let mut properties = Properties::default();
        // Parsing the YAML and reading its entries is most of the work: it
        // runs on all cores, the merge below in file order. Each entry keeps
        // its own result, so the first error is the one a serial read meets.
        let read = crate::parallel::map(files, |file| {
            let path = root.join(&file.original_file_path);
            FileEntries::read(file, &path)
        });
        for (file, read) in files.iter().zip(read) {
            let path = root.join(&file.original_file_path);
            let entries = read?;
            for (section, target, entries) in [
                ("models", &mut properties.models, entries.models),
                ("seeds", &mut properties.seeds, entries.seeds),
            ] {
                for entry in entries? {
                    let (name, props) = entry?;
                    if let Some(previous) = target.get(&name) {
                        return Err(Error::new(
                            ErrorKind::Project,
                            format!(
                                "{} `{name}` is described twice: here and in {}:{}",
                                &section[..section.len() - 1],
                                previous.file,
                                previous.line
                            ),
                        )
                        .in_file(&path)
                        .at_line(props.line));
                    }
                    target.insert(name, props);
                }
            }
            for source in entries.sources? {
                properties.sources.push(source?);
            }
            for exposure in entries.exposures? {
                let exposure = exposure?;
                if let Some(previous) = properties
                    .exposures
                    .iter()
                    .find(|e| e.name == exposure.name)
                {
                    return Err(Error::new(
                        ErrorKind::Project,
                        format!(
                            "exposure `{}` is declared twice: here and in {}:{}",
                            exposure.name, previous.file, previous.line
                        ),
                    )
                    .in_file(&path)
                    .at_line(exposure.line));
                }
                properties.exposures.push(exposure);
            }
        }
        Ok(properties)
    }
}

/// The entries of one properties file, each read on its own: a section that
/// is not a list fails whole, an entry that is wrong fails alone.
struct FileEntries {
    models: Result<Vec<Result<(String, ModelProperties)>>>,
    seeds: Result<Vec<Result<(String, ModelProperties)>>>,
    sources: Result<Vec<Result<SourceDefinition>>>,
    exposures: Result<Vec<Result<ExposureDefinition>>>,
}

impl FileEntries {
    fn read(file: &ProjectFile, path: &Path) -> Result<FileEntries> {
        let doc = yaml::parse(&file.text, path)?;
        if !doc.is_mapping() {
            return Err(
                Error::new(ErrorKind::Project, "a properties file must be a mapping").in_file(path),
            );
        }
        let names = yaml::name_lines(&file.text);
        let section = |key: &str| sequence(&doc, key, file, path, 1);
        let model_entries = |key: &str| {
            section(key).map(|entries| {
                entries
                    .into_iter()
                    .map(|(entry, at)| {
                        let (name, mut props) = model_properties(entry, file, path, &names, at)?;
                        if key == "models" {
                            (props.versions, props.latest_version) =
                                versions::parse(entry, &name, file, path, props.line)?;
                        }
                        Ok((name, props))
                    })
                    .collect()
            })
        };
        Ok(FileEntries {
            models: model_entries("models"),
            seeds: model_entries("seeds"),
            sources: section("sources").map(|entries| {
                entries
                    .into_iter()
                    .map(|(entry, at)| source_definition(entry, file, path, &names, at))
                    .collect()
            }),
            exposures: section("exposures").map(|entries| {
                entries
                    .into_iter()
                    .map(|(entry, at)| exposure_definition(entry, file, path, &names, at))
                    .collect()
            }),
        })
    }
}

/// The items of the list under `key` (searched from `from_line`), each
/// with the line it starts on.
pub(super) fn sequence<'a>(
    doc: &'a Yaml,
    key: &str,
    file: &ProjectFile,
    path: &Path,
    from_line: usize,
) -> Result<Vec<(&'a Yaml, usize)>> {
    let key_line = line_of_key(&file.text, key, from_line);
    match doc.get(key) {
        None | Some(Yaml::Null) => Ok(Vec::new()),
        Some(Yaml::Sequence(items)) => Ok(items
            .iter()
            .zip(yaml::item_lines(&file.text, key_line, items.len()))
            .collect()),
        Some(_) => Err(
            Error::new(ErrorKind::Project, format!("`{key}:` must be a list"))
                .in_file(path)
                .at_line(key_line),
        ),
    }
}

/// The entry's `name:`, which must be a string; errors point at the entry.
fn required_name(
    entry: &Yaml,
    what: &str,
    file: &ProjectFile,
    path: &Path,
    at: usize,
) -> Result<String> {
    let fail = |message: String| {
        Error::new(ErrorKind::Project, message)
            .in_file(path)
            .at_line_of(&file.text, at)
    };
    if !entry.is_mapping() {
        return Err(fail(format!(
            "a {what} entry must be a mapping with a `name:`, got `{}`",
            yaml_text(entry)
        )));
    }
    match entry.get("name") {
        Some(Yaml::String(name)) if !name.trim().is_empty() => Ok(name.clone()),
        None | Some(Yaml::Null) => Err(fail(format!("a {what} entry has no `name:`"))),
        Some(Yaml::String(_)) => Err(fail(format!("a {what} entry has an empty `name:`"))),
        Some(other) => Err(fail(format!(
            "the `name:` of a {what} entry must be a string, got `{}`",
            yaml_text(other)
        ))),
    }
}

/// A YAML value as it would be written, on one line.
pub(super) fn yaml_text(value: &Yaml) -> String {
    let text = match value {
        Yaml::Sequence(_) | Yaml::Mapping(_) => yaml::to_json(value).to_string(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

fn model_properties(
    entry: &Yaml,
    file: &ProjectFile,
    path: &Path,
    names: &HashMap<String, usize>,
    at: usize,
) -> Result<(String, ModelProperties)> {
    let name = required_name(entry, "model", file, path, at)?;
    let line = names.get(&name).copied().unwrap_or(at);
    let mut props = ModelProperties {
        description: str_field(entry, "description")
            .unwrap_or_default()
            .to_string(),
        file: file.original_file_path.clone(),
        line,
        ..Default::default()
    };
    match entry.get("config").map(yaml::to_json) {
        Some(Json::Object(config)) => props.config = config,
        Some(Json::Null) | None => {}
        Some(_) => {
            let at = line_of_key(&file.text, "config", line).max(line);
            return Err(Error::new(
                ErrorKind::Project,
                format!("`config:` of `{name}` must be a mapping"),
            )
            .in_file(path)
            .at_line_of(&file.text, at));
        }
    }
    for key in ["data_tests", "tests"] {
        sequence(entry, key, file, path, line)?;
    }
    for test in tests_of(entry) {
        props.tests.push((None, yaml::to_json(test)));
    }
    for (column, column_at) in sequence(entry, "columns", file, path, line)? {
        let Some(column_name) = str_field(column, "name") else {
            return Err(Error::new(
                ErrorKind::Project,
                format!("a column of `{name}` has no `name:`"),
            )
            .in_file(path)
            .at_line_of(&file.text, column_at));
        };
        props.columns.push(column_of(column, column_name));
        for test in tests_of(column) {
            props
                .tests
                .push((Some(column_name.to_string()), yaml::to_json(test)));
        }
    }
    Ok((name, props))
}

/// `data_tests:` (dbt 1.8+) and `tests:` (older) of a model or column.
pub(super) fn tests_of(entry: &Yaml) -> impl Iterator<Item = &Yaml> {
    ["data_tests", "tests"]
        .into_iter()
        .filter_map(|key| entry.get(key).and_then(Yaml::as_sequence))
        .flatten()
}

fn source_definition(
    entry: &Yaml,
    file: &ProjectFile,
    path: &Path,
    names: &HashMap<String, usize>,
    at: usize,
) -> Result<SourceDefinition> {
    let name = required_name(entry, "source", file, path, at)?;
    let line = names.get(&name).copied().unwrap_or(at);
    let rendered = |key: &str| -> Result<Option<String>> {
        str_field(entry, key)
            .map(|v| render_if_jinja(v).map_err(|e| e.in_file(path).at_line(line)))
            .transpose()
    };
    let mut tables = Vec::new();
    {
        for (table, table_at) in sequence(entry, "tables", file, path, line)? {
            let table_name = required_name(table, "source table", file, path, table_at)?;
            let mut tests: Vec<(Option<String>, Json)> =
                tests_of(table).map(|t| (None, yaml::to_json(t))).collect();
            for (column, _) in sequence(table, "columns", file, path, table_at)? {
                let Some(column_name) = str_field(column, "name") else {
                    continue;
                };
                tests.extend(
                    tests_of(column).map(|t| (Some(column_name.to_string()), yaml::to_json(t))),
                );
            }
            let table_line = table_at;
            let (tags, meta, config) =
                tags_meta_config(table, &table_name, file, path, table_line)?;
            tables.push(SourceTable {
                tags,
                meta,
                config,
                identifier: str_field(table, "identifier")
                    .unwrap_or(&table_name)
                    .to_string(),
                description: str_field(table, "description")
                    .unwrap_or_default()
                    .to_string(),
                name: table_name,
                tests,
            });
        }
    }
    let (tags, meta, config) = tags_meta_config(entry, &name, file, path, line)?;
    Ok(SourceDefinition {
        tags,
        meta,
        config,
        database: rendered("database")?,
        schema: rendered("schema")?.unwrap_or_else(|| name.clone()),
        description: str_field(entry, "description")
            .unwrap_or_default()
            .to_string(),
        tables,
        file: file.original_file_path.clone(),
        line,
        name,
    })
}

/// The exposure types dbt accepts.
const EXPOSURE_TYPES: [&str; 5] = ["dashboard", "notebook", "analysis", "ml", "application"];

fn exposure_definition(
    entry: &Yaml,
    file: &ProjectFile,
    path: &Path,
    names: &HashMap<String, usize>,
    at: usize,
) -> Result<ExposureDefinition> {
    let name = required_name(entry, "exposure", file, path, at)?;
    let line = names.get(&name).copied().unwrap_or(at);
    let fail = |message: String, at: usize| {
        Error::new(ErrorKind::Project, message)
            .in_file(path)
            .at_line(if at > 0 { at } else { line })
    };
    let key_line = |key: &str| line_of_key(&file.text, key, line);
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(fail(
            format!("exposure name `{name}` may hold only letters, digits and underscores"),
            line,
        )
        .with_hint("put a display name with spaces or punctuation in `label:`"));
    }
    let text = |key: &str| -> Result<Option<String>> {
        match entry.get(key) {
            None | Some(Yaml::Null) => Ok(None),
            Some(Yaml::String(s)) => Ok(Some(s.clone())),
            Some(Yaml::Number(n)) => Ok(Some(n.to_string())),
            Some(Yaml::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(fail(
                format!("`{key}:` of exposure `{name}` must be a string"),
                key_line(key),
            )),
        }
    };
    let mapping = |value: Option<&Yaml>, key: &str| -> Result<Map<String, Json>> {
        match value.map(yaml::to_json) {
            None | Some(Json::Null) => Ok(Map::new()),
            Some(Json::Object(map)) => Ok(map),
            Some(_) => Err(fail(
                format!("`{key}:` of exposure `{name}` must be a mapping"),
                key_line(key),
            )),
        }
    };
    let kind = text("type")?.ok_or_else(|| {
        fail(format!("exposure `{name}` has no `type:`"), line)
            .with_hint(format!("use one of {}", EXPOSURE_TYPES.join(", ")))
    })?;
    if !EXPOSURE_TYPES.contains(&kind.as_str()) {
        return Err(fail(
            format!("exposure `{name}` has an unknown type `{kind}`"),
            key_line("type"),
        )
        .with_hint(format!("use one of {}", EXPOSURE_TYPES.join(", "))));
    }
    let owner = mapping(entry.get("owner"), "owner")?;
    if !["name", "email"]
        .iter()
        .any(|k| owner.get(*k).is_some_and(|v| !v.is_null()))
    {
        return Err(fail(
            format!("exposure `{name}` needs an `owner:` with a `name:` or an `email:`"),
            key_line("owner"),
        ));
    }
    let maturity = text("maturity")?;
    if let Some(m) = &maturity
        && !["high", "medium", "low"].contains(&m.as_str())
    {
        return Err(fail(
            format!("exposure `{name}` has an unknown maturity `{m}`"),
            key_line("maturity"),
        )
        .with_hint("use high, medium or low"));
    }
    let mut depends_on = Vec::new();
    match entry.get("depends_on") {
        None | Some(Yaml::Null) => {}
        Some(Yaml::Sequence(items)) => {
            let mut from = key_line("depends_on");
            for item in items {
                let Some(call) = item.as_str() else {
                    return Err(fail(
                        format!(
                            "a `depends_on:` entry of exposure `{name}` must be a string such as \"ref('orders')\""
                        ),
                        from,
                    ));
                };
                from = line_of_text(&file.text, call, from);
                depends_on.push((call.to_string(), from));
            }
        }
        Some(_) => {
            return Err(fail(
                format!("`depends_on:` of exposure `{name}` must be a list"),
                key_line("depends_on"),
            ));
        }
    }
    let tags = match entry.get("tags") {
        None | Some(Yaml::Null) => Vec::new(),
        Some(Yaml::String(tag)) => vec![tag.clone()],
        Some(Yaml::Sequence(items)) if items.iter().all(Yaml::is_string) => {
            yaml::string_list(entry.get("tags"))
        }
        Some(_) => {
            return Err(fail(
                format!("`tags:` of exposure `{name}` must be a string or a list of strings"),
                key_line("tags"),
            ));
        }
    };
    Ok(ExposureDefinition {
        kind,
        owner,
        description: text("description")?.unwrap_or_default(),
        label: text("label")?,
        maturity,
        url: text("url")?,
        tags,
        meta: mapping(entry.get("meta"), "meta")?,
        config: mapping(entry.get("config"), "config")?,
        depends_on,
        file: file.original_file_path.clone(),
        line,
        name,
    })
}

/// The 1-based line at or after `from` that holds `needle`, else `from`.
fn line_of_text(text: &str, needle: &str, from: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map_or(from, |(i, _)| i + 1)
}

/// `tags:`, `meta:` and `config:` as written on a source or a table.
type Labels = (Vec<String>, Map<String, Json>, Map<String, Json>);

/// The `tags:`, `meta:` and `config:` of a source or source table; each
/// error names the line of the key at fault.
fn tags_meta_config(
    entry: &Yaml,
    name: &str,
    file: &ProjectFile,
    path: &Path,
    line: usize,
) -> Result<Labels> {
    let fail = |key: &str, what: &str| {
        let at = line_of_key(&file.text, key, line).max(line);
        Error::new(
            ErrorKind::Project,
            format!("`{key}:` of `{name}` must be {what}"),
        )
        .in_file(path)
        .at_line_of(&file.text, at)
    };
    let tags = match entry.get("tags") {
        None | Some(Yaml::Null) => Vec::new(),
        Some(Yaml::String(tag)) => vec![tag.clone()],
        Some(Yaml::Sequence(items)) if items.iter().all(Yaml::is_string) => {
            yaml::string_list(entry.get("tags"))
        }
        Some(_) => return Err(fail("tags", "a string or a list of strings")),
    };
    let mapping = |key: &str| match entry.get(key).map(yaml::to_json) {
        None | Some(Json::Null) => Ok(Map::new()),
        Some(Json::Object(map)) => Ok(map),
        Some(_) => Err(fail(key, "a mapping")),
    };
    let meta = mapping("meta")?;
    let config = mapping("config")?;
    if let Some(enabled) = config.get("enabled")
        && !enabled.is_boolean()
    {
        return Err(fail("enabled", "true or false"));
    }
    Ok((tags, meta, config))
}

fn render_if_jinja(value: &str) -> Result<String> {
    if value.contains("{{") || value.contains("{%") {
        crate::jinja::render_standalone(value)
    } else {
        Ok(value.to_string())
    }
}

/// A column entry of a properties YAML, its `name:` already read.
pub(super) fn column_of(column: &Yaml, name: &str) -> Column {
    Column {
        name: name.to_string(),
        description: str_field(column, "description")
            .unwrap_or_default()
            .to_string(),
        data_type: str_field(column, "data_type").map(str::to_string),
    }
}
