//! Properties YAML (version 2): descriptions, columns, configs and tests of
//! models and seeds, and the sources a project reads from.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::ProjectFile;
use super::versions::{self, ModelVersion};
use super::yaml::{self, Kind, Yaml, str_field};
use crate::error::{Error, ErrorKind, Result};

/// One column declared in a properties YAML.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub description: String,
    pub data_type: Option<String>,
}

/// What a properties YAML says about one model, seed, snapshot or analysis.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelProperties {
    pub description: String,
    pub columns: Vec<Column>,
    pub config: Map<String, Json>,
    /// Tests as declared, for the test runner.
    pub tests: Vec<DeclaredTest>,
    /// Where the entry is: the properties file and line.
    pub file: String,
    pub line: usize,
    /// `versions:` of a model: each is a node of its own.
    pub versions: Vec<ModelVersion>,
    /// `latest_version:` as written (boxed: a JSON value is 72 bytes, and
    /// few models have one).
    pub latest_version: Option<Box<Json>>,
    /// A snapshot defined in YAML (dbt 1.9+, `relation: ref('m')`): the SQL
    /// dbt gives it, `select * from {{ <relation> }}`, as a file of its own
    /// named `<properties file>/<name>.sql`.
    pub snapshot_sql: Option<Box<ProjectFile>>,
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
    /// Tests on the table and its columns.
    pub tests: Vec<DeclaredTest>,
    /// `quoting:` of the table (database, schema, identifier: true/false).
    pub quoting: Map<String, Json>,
}

/// A data test as a properties file declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredTest {
    /// The column it tests; None for a test of the whole model or table.
    pub column: Option<String>,
    /// The test as written: a name, or a mapping of the name to arguments.
    pub definition: Json,
    /// The line it is written on.
    pub line: usize,
}

/// A `sources:` entry: a schema of tables loaded by something else.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDefinition {
    pub name: String,
    /// `database:` and `schema:` as written: they may hold Jinja, which the
    /// compiler renders (a schema defaults to the source name, as in dbt).
    pub database: Option<String>,
    pub schema: Option<String>,
    /// Where `database:` and `schema:` are written, for render errors.
    pub database_line: usize,
    pub schema_line: usize,
    pub description: String,
    /// `tags:`, `meta:` and `config:` as written on the source.
    pub tags: Vec<String>,
    pub meta: Map<String, Json>,
    pub config: Map<String, Json>,
    pub tables: Vec<SourceTable>,
    /// `quoting:` of the source, which its tables' own override.
    pub quoting: Map<String, Json>,
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
    pub snapshots: BTreeMap<String, ModelProperties>,
    pub analyses: BTreeMap<String, ModelProperties>,
    pub sources: Vec<SourceDefinition>,
    pub exposures: Vec<ExposureDefinition>,
}

impl Properties {
    pub fn parse(root: &Path, files: &[ProjectFile]) -> Result<Properties> {
        Properties::parse_rendered(root, files, None)
    }

    /// [`parse`](Self::parse), each value dbt renders rendered first by
    /// `render` for the package named beside it (see [`super::rendering`]).
    pub fn parse_rendered(
        root: &Path,
        files: &[ProjectFile],
        render: Option<(&str, &dyn super::rendering::Render)>,
    ) -> Result<Properties> {
        let mut properties = Properties::default();
        // Parsing the YAML and reading its entries is most of the work: it
        // runs on all cores, the merge below in file order. Each entry keeps
        // its own result, so the first error is the one a serial read meets.
        let read = crate::base::parallel::map(files, |file| {
            let path = root.join(&file.original_file_path);
            FileEntries::read(file, &path, render)
        });
        for (file, read) in files.iter().zip(read) {
            let path = root.join(&file.original_file_path);
            let entries = read?;
            for (section, target, entries) in [
                ("models", &mut properties.models, entries.models),
                ("seeds", &mut properties.seeds, entries.seeds),
                ("snapshots", &mut properties.snapshots, entries.snapshots),
                ("analyses", &mut properties.analyses, entries.analyses),
            ] {
                for entry in entries? {
                    let (name, props) = entry?;
                    if let Some(previous) = target.get(&name) {
                        return Err(Error::new(
                            ErrorKind::Project,
                            format!(
                                "{} `{name}` is described twice: here and in {}:{}",
                                singular(section),
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
    snapshots: Result<Vec<Result<(String, ModelProperties)>>>,
    analyses: Result<Vec<Result<(String, ModelProperties)>>>,
    sources: Result<Vec<Result<SourceDefinition>>>,
    exposures: Result<Vec<Result<ExposureDefinition>>>,
}

impl FileEntries {
    fn read(
        file: &ProjectFile,
        path: &Path,
        render: Option<(&str, &dyn super::rendering::Render)>,
    ) -> Result<FileEntries> {
        let mut doc = yaml::parse(&file.text, path)?;
        if !doc.is_mapping() {
            return Err(
                Error::new(ErrorKind::Project, "a properties file must be a mapping").in_file(path),
            );
        }
        if let Some((package, render)) = render
            && super::rendering::has_jinja(&file.text)
        {
            doc = rendered_sections(&doc, package, render, path, &file.text)?;
        }
        let at = InFile { file, path };
        let section = |key: &str| sequence(&doc, key, &at);
        let model_entries = |key: &str| {
            section(key).map(|entries| {
                entries
                    .iter()
                    .map(|entry| {
                        let (name, mut props) = model_properties(entry, singular(key), &at)?;
                        match key {
                            "models" => {
                                (props.versions, props.latest_version) =
                                    versions::parse(entry, &name, &at)?;
                            }
                            "snapshots" => props.snapshot_sql = snapshot_sql(entry, &name, &at)?,
                            _ => {}
                        }
                        Ok((name, props))
                    })
                    .collect()
            })
        };
        Ok(FileEntries {
            models: model_entries("models"),
            seeds: model_entries("seeds"),
            snapshots: model_entries("snapshots"),
            analyses: model_entries("analyses"),
            sources: section("sources").map(|entries| {
                entries
                    .iter()
                    .map(|entry| source_definition(entry, &at))
                    .collect()
            }),
            exposures: section("exposures").map(|entries| {
                entries
                    .iter()
                    .map(|entry| exposure_definition(entry, &at))
                    .collect()
            }),
        })
    }
}

/// `doc` with each entry of each section rendered by dbt's rule.
fn rendered_sections(
    doc: &Yaml,
    package: &str,
    render: &dyn super::rendering::Render,
    path: &Path,
    text: &str,
) -> Result<Yaml> {
    let Some(sections) = doc.as_mapping() else {
        return Ok(doc.clone());
    };
    let value = |s: &str| render.render(package, false, s);
    let mut out = yaml::Mapping::new();
    for (key, section) in sections {
        let name = yaml::key_string(key);
        let section = match section.as_sequence() {
            Some(entries) => {
                let rule =
                    |keypath: &[String]| super::rendering::properties_key_rendered(&name, keypath);
                let mut rendered = Vec::with_capacity(entries.len());
                for entry in entries {
                    rendered.push(super::rendering::render_tree(
                        entry,
                        &mut Vec::new(),
                        &rule,
                        &value,
                        path,
                        text,
                    )?);
                }
                Yaml::at(section.line(), Kind::Sequence(rendered))
            }
            None => section.clone(),
        };
        out.insert(key.clone(), section);
    }
    Ok(Yaml::at(doc.line(), Kind::Mapping(out)))
}

/// The properties file being read: errors name it, and quote its lines.
pub(super) struct InFile<'a> {
    pub file: &'a ProjectFile,
    pub path: &'a Path,
}

impl InFile<'_> {
    /// An error about the value `node`: this file, the value's line.
    pub fn error(&self, message: impl Into<String>, node: &Yaml) -> Error {
        yaml::value_error(
            ErrorKind::Project,
            message,
            self.path,
            &self.file.text,
            node,
        )
    }
}

/// The items of the list under `key`; a value that is not a list is an
/// error at its line.
pub(super) fn sequence<'a>(doc: &'a Yaml, key: &str, at: &InFile) -> Result<&'a [Yaml]> {
    match doc.get(key) {
        None => Ok(&[]),
        Some(value) if value.is_null() => Ok(&[]),
        Some(value) => value
            .as_sequence()
            .ok_or_else(|| at.error(format!("`{key}:` must be a list"), value)),
    }
}

/// The entry's `name:`, which must be a string; errors point at the entry.
fn required_name(entry: &Yaml, what: &str, at: &InFile) -> Result<String> {
    if !entry.is_mapping() {
        return Err(at.error(
            format!(
                "a {what} entry must be a mapping with a `name:`, got `{}`",
                yaml_text(entry)
            ),
            entry,
        ));
    }
    match entry.get("name") {
        Some(name) => match name.kind() {
            Kind::String(text) if !text.trim().is_empty() => Ok(text.clone()),
            Kind::Null => Err(at.error(format!("a {what} entry has no `name:`"), entry)),
            Kind::String(_) => Err(at.error(format!("a {what} entry has an empty `name:`"), name)),
            _ => Err(at.error(
                format!(
                    "the `name:` of a {what} entry must be a string, got `{}`",
                    yaml_text(name)
                ),
                name,
            )),
        },
        None => Err(at.error(format!("a {what} entry has no `name:`"), entry)),
    }
}

/// The line an entry is known by: its `name:`'s.
fn name_line(entry: &Yaml) -> usize {
    entry.get("name").unwrap_or(entry).line()
}

/// A YAML value as it would be written, on one line.
pub(super) fn yaml_text(value: &Yaml) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// `model` for `models`: what one entry of a section is called.
fn singular(section: &str) -> &str {
    match section {
        "analyses" => "analysis",
        other => other.strip_suffix('s').unwrap_or(other),
    }
}

/// The SQL of a snapshot whose entry names the relation it records
/// (`relation: ref('orders')` or `source('raw', 'orders')`); None for an
/// entry that only describes a `{% snapshot %}` block.
fn snapshot_sql(entry: &Yaml, name: &str, at: &InFile) -> Result<Option<Box<ProjectFile>>> {
    let Some(relation) = entry.get("relation") else {
        return Ok(None);
    };
    let call = relation.as_str().map(str::trim).unwrap_or_default();
    let is_call = |function: &str| call.starts_with(function) && call.ends_with(')');
    if !(is_call("ref(") || is_call("source(")) {
        return Err(at.error(
            format!(
                "the `relation:` of snapshot `{name}` must be `ref('...')` or `source('...', '...')`, got `{}`",
                yaml_text(relation)
            ),
            relation,
        ));
    }
    // Padded with the lines above it, so that an error in the call names
    // the line it is written on.
    let text =
        "\n".repeat(relation.line().saturating_sub(1)) + &format!("select * from {{{{ {call} }}}}");
    Ok(Some(Box::new(ProjectFile {
        original_file_path: at.file.original_file_path.clone(),
        path: format!("{}/{name}.sql", at.file.path),
        text,
    })))
}

fn model_properties(entry: &Yaml, what: &str, at: &InFile) -> Result<(String, ModelProperties)> {
    let name = required_name(entry, what, at)?;
    let line = name_line(entry);
    let mut props = ModelProperties {
        description: str_field(entry, "description")
            .unwrap_or_default()
            .to_string(),
        file: at.file.original_file_path.clone(),
        line,
        ..Default::default()
    };
    if let Some(config) = entry.get("config") {
        match yaml::to_json(config) {
            Json::Object(config) => props.config = config,
            Json::Null => {}
            _ => {
                return Err(at.error(format!("`config:` of `{name}` must be a mapping"), config));
            }
        }
    }
    // Tests written as anything but a list are an error, not left out.
    for key in ["data_tests", "tests"] {
        sequence(entry, key, at)?;
    }
    props.tests = declared_tests(entry, None);
    for column in sequence(entry, "columns", at)? {
        let Some(column_name) = str_field(column, "name") else {
            return Err(at.error(format!("a column of `{name}` has no `name:`"), column));
        };
        props.columns.push(column_of(column, column_name));
        props
            .tests
            .extend(declared_tests(column, Some(column_name)));
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

/// The tests of a model, table or column, each with its line.
pub(super) fn declared_tests(entry: &Yaml, column: Option<&str>) -> Vec<DeclaredTest> {
    tests_of(entry)
        .map(|test| DeclaredTest {
            column: column.map(str::to_string),
            definition: yaml::to_json(test),
            line: test.line(),
        })
        .collect()
}

fn source_definition(entry: &Yaml, at: &InFile) -> Result<SourceDefinition> {
    let name = required_name(entry, "source", at)?;
    let line = name_line(entry);
    let mut tables = Vec::new();
    for table in sequence(entry, "tables", at)? {
        let table_name = required_name(table, "source table", at)?;
        let mut tests = declared_tests(table, None);
        for column in sequence(table, "columns", at)? {
            let Some(column_name) = str_field(column, "name") else {
                continue;
            };
            tests.extend(declared_tests(column, Some(column_name)));
        }
        let (tags, meta, config) = tags_meta_config(table, &table_name, at)?;
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
            quoting: quoting_of(table, at)?,
        });
    }
    let (tags, meta, config) = tags_meta_config(entry, &name, at)?;
    Ok(SourceDefinition {
        tags,
        meta,
        config,
        database: str_field(entry, "database").map(str::to_string),
        schema: str_field(entry, "schema").map(str::to_string),
        database_line: entry.get("database").map_or(line, Yaml::line),
        schema_line: entry.get("schema").map_or(line, Yaml::line),
        description: str_field(entry, "description")
            .unwrap_or_default()
            .to_string(),
        tables,
        quoting: quoting_of(entry, at)?,
        file: at.file.original_file_path.clone(),
        line,
        name,
    })
}

/// A `quoting:` mapping (`database`, `schema`, `identifier`: true or false).
pub(super) fn quoting_of(entry: &Yaml, at: &InFile) -> Result<Map<String, Json>> {
    match entry.get("quoting") {
        None => Ok(Map::new()),
        Some(value) => quoting_map(value).map_err(|message| at.error(message, value)),
    }
}

/// `quoting:` as written, or why it cannot be.
pub fn quoting_map(value: &Yaml) -> std::result::Result<Map<String, Json>, String> {
    if value.is_null() {
        return Ok(Map::new());
    }
    let Some(mapping) = value.as_mapping() else {
        return Err(format!(
            "`quoting:` must be a mapping of database, schema and identifier to true or false, got `{}`",
            yaml_text(value)
        ));
    };
    let mut out = Map::new();
    for (key, part) in mapping {
        let key = yaml::key_string(key);
        match (key.as_str(), part.as_bool()) {
            ("database" | "schema" | "identifier" | "column", Some(b)) => {
                out.insert(key, Json::Bool(b));
            }
            ("database" | "schema" | "identifier" | "column", None) if part.is_null() => {}
            _ => {
                return Err(format!(
                    "`quoting: {{{key}: {}}}`: quoting takes database, schema, identifier \
                     (and column), each true or false",
                    yaml_text(part)
                ));
            }
        }
    }
    Ok(out)
}

/// The exposure types dbt accepts.
const EXPOSURE_TYPES: [&str; 5] = ["dashboard", "notebook", "analysis", "ml", "application"];

fn exposure_definition(entry: &Yaml, at: &InFile) -> Result<ExposureDefinition> {
    let name = required_name(entry, "exposure", at)?;
    let line = name_line(entry);
    let name_node = entry.get("name").unwrap_or(entry);
    // An error about `key:` points at its value, or at the entry's name.
    let fail = |message: String, key: &str| at.error(message, entry.get(key).unwrap_or(name_node));
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(fail(
            format!("exposure name `{name}` may hold only letters, digits and underscores"),
            "name",
        )
        .with_hint("put a display name with spaces or punctuation in `label:`"));
    }
    let text = |key: &str| -> Result<Option<String>> {
        let Some(value) = entry.get(key) else {
            return Ok(None);
        };
        match value.kind() {
            Kind::Null => Ok(None),
            Kind::String(s) => Ok(Some(s.clone())),
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => Ok(Some(value.to_string())),
            _ => Err(fail(
                format!("`{key}:` of exposure `{name}` must be a string"),
                key,
            )),
        }
    };
    let mapping = |key: &str| -> Result<Map<String, Json>> {
        match entry.get(key).map(yaml::to_json) {
            None | Some(Json::Null) => Ok(Map::new()),
            Some(Json::Object(map)) => Ok(map),
            Some(_) => Err(fail(
                format!("`{key}:` of exposure `{name}` must be a mapping"),
                key,
            )),
        }
    };
    let kind = text("type")?.ok_or_else(|| {
        fail(format!("exposure `{name}` has no `type:`"), "name")
            .with_hint(format!("use one of {}", EXPOSURE_TYPES.join(", ")))
    })?;
    if !EXPOSURE_TYPES.contains(&kind.as_str()) {
        return Err(fail(
            format!("exposure `{name}` has an unknown type `{kind}`"),
            "type",
        )
        .with_hint(format!("use one of {}", EXPOSURE_TYPES.join(", "))));
    }
    let owner = mapping("owner")?;
    if !["name", "email"]
        .iter()
        .any(|k| owner.get(*k).is_some_and(|v| !v.is_null()))
    {
        return Err(fail(
            format!("exposure `{name}` needs an `owner:` with a `name:` or an `email:`"),
            "owner",
        ));
    }
    let maturity = text("maturity")?;
    if let Some(m) = &maturity
        && !["high", "medium", "low"].contains(&m.as_str())
    {
        return Err(fail(
            format!("exposure `{name}` has an unknown maturity `{m}`"),
            "maturity",
        )
        .with_hint("use high, medium or low"));
    }
    let mut depends_on = Vec::new();
    if let Some(value) = entry.get("depends_on").filter(|v| !v.is_null()) {
        let Some(items) = value.as_sequence() else {
            return Err(fail(
                format!("`depends_on:` of exposure `{name}` must be a list"),
                "depends_on",
            ));
        };
        for item in items {
            let Some(call) = item.as_str() else {
                return Err(at.error(
                    format!(
                        "a `depends_on:` entry of exposure `{name}` must be a string such as \"ref('orders')\""
                    ),
                    item,
                ));
            };
            depends_on.push((call.to_string(), item.line()));
        }
    }
    let tags = match entry.get("tags") {
        None => Vec::new(),
        Some(tags) => match tags.kind() {
            Kind::Null => Vec::new(),
            Kind::String(tag) => vec![tag.clone()],
            Kind::Sequence(items) if items.iter().all(Yaml::is_string) => {
                yaml::string_list(Some(tags))
            }
            _ => {
                return Err(fail(
                    format!("`tags:` of exposure `{name}` must be a string or a list of strings"),
                    "tags",
                ));
            }
        },
    };
    Ok(ExposureDefinition {
        kind,
        owner,
        description: text("description")?.unwrap_or_default(),
        label: text("label")?,
        maturity,
        url: text("url")?,
        tags,
        meta: mapping("meta")?,
        config: mapping("config")?,
        depends_on,
        file: at.file.original_file_path.clone(),
        line,
        name,
    })
}

/// `tags:`, `meta:` and `config:` as written on a source or a table.
type Labels = (Vec<String>, Map<String, Json>, Map<String, Json>);

/// The `tags:`, `meta:` and `config:` of a source or source table; each
/// error names the line of the value at fault.
fn tags_meta_config(entry: &Yaml, name: &str, at: &InFile) -> Result<Labels> {
    let fail = |key: &str, what: &str, node: &Yaml| {
        at.error(format!("`{key}:` of `{name}` must be {what}"), node)
    };
    let tags = match entry.get("tags") {
        None => Vec::new(),
        Some(tags) => match tags.kind() {
            Kind::Null => Vec::new(),
            Kind::String(tag) => vec![tag.clone()],
            Kind::Sequence(items) if items.iter().all(Yaml::is_string) => {
                yaml::string_list(Some(tags))
            }
            _ => return Err(fail("tags", "a string or a list of strings", tags)),
        },
    };
    let mapping = |key: &str| {
        let Some(value) = entry.get(key) else {
            return Ok(Map::new());
        };
        match yaml::to_json(value) {
            Json::Null => Ok(Map::new()),
            Json::Object(map) => Ok(map),
            _ => Err(fail(key, "a mapping", value)),
        }
    };
    let meta = mapping("meta")?;
    let config = mapping("config")?;
    if let Some(enabled) = entry.get("config").and_then(|c| c.get("enabled"))
        && enabled.as_bool().is_none()
    {
        return Err(fail("enabled", "true or false", enabled));
    }
    Ok((tags, meta, config))
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
