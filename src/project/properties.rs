//! Properties YAML (version 2): descriptions, columns, configs and tests of
//! models and seeds, and the sources a project reads from.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{Map, Value as Json};
use serde_yaml::Value as Yaml;

use super::ProjectFile;
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
}

/// One table of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTable {
    pub name: String,
    pub identifier: String,
    pub description: String,
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
    pub tables: Vec<SourceTable>,
    pub file: String,
    pub line: usize,
}

/// Everything the project's properties files declare.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Properties {
    pub models: BTreeMap<String, ModelProperties>,
    pub seeds: BTreeMap<String, ModelProperties>,
    pub sources: Vec<SourceDefinition>,
}

impl Properties {
    pub fn parse(root: &Path, files: &[ProjectFile]) -> Result<Properties> {
        let mut properties = Properties::default();
        // Parsing the YAML is most of the work: it runs on all cores, the
        // merge below in file order.
        let parsed = crate::parallel::map(files, |file| {
            let path = root.join(&file.original_file_path);
            yaml::parse(&file.text, &path).map(|doc| (doc, yaml::name_lines(&file.text)))
        });
        for (file, parsed) in files.iter().zip(parsed) {
            let path = root.join(&file.original_file_path);
            let (doc, names) = parsed?;
            if !doc.is_mapping() {
                return Err(
                    Error::new(ErrorKind::Project, "a properties file must be a mapping")
                        .in_file(&path),
                );
            }
            for (section, target) in [
                ("models", &mut properties.models),
                ("seeds", &mut properties.seeds),
            ] {
                for entry in sequence(&doc, section, file, &path)? {
                    let (name, props) = model_properties(entry, file, &path, &names)?;
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
            for entry in sequence(&doc, "sources", file, &path)? {
                properties
                    .sources
                    .push(source_definition(entry, file, &path, &names)?);
            }
        }
        Ok(properties)
    }
}

fn sequence<'a>(doc: &'a Yaml, key: &str, file: &ProjectFile, path: &Path) -> Result<&'a [Yaml]> {
    match doc.get(key) {
        None | Some(Yaml::Null) => Ok(&[]),
        Some(Yaml::Sequence(items)) => Ok(items),
        Some(_) => Err(
            Error::new(ErrorKind::Project, format!("`{key}:` must be a list"))
                .in_file(path)
                .at_line(line_of_key(&file.text, key, 1)),
        ),
    }
}

fn required_name(entry: &Yaml, what: &str, file: &ProjectFile, path: &Path) -> Result<String> {
    str_field(entry, "name").map(str::to_string).ok_or_else(|| {
        let snippet = serde_yaml::to_string(entry).unwrap_or_default();
        Error::new(ErrorKind::Project, format!("a {what} entry has no `name:`"))
            .in_file(path)
            .at_line(line_of_key(
                &file.text,
                snippet
                    .lines()
                    .next()
                    .unwrap_or("")
                    .split(':')
                    .next()
                    .unwrap_or(""),
                1,
            ))
    })
}

fn model_properties(
    entry: &Yaml,
    file: &ProjectFile,
    path: &Path,
    names: &HashMap<String, usize>,
) -> Result<(String, ModelProperties)> {
    let name = required_name(entry, "model", file, path)?;
    let line = names.get(&name).copied().unwrap_or(0);
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
            return Err(Error::new(
                ErrorKind::Project,
                format!("`config:` of `{name}` must be a mapping"),
            )
            .in_file(path)
            .at_line(line));
        }
    }
    for test in tests_of(entry) {
        props.tests.push((None, yaml::to_json(test)));
    }
    if let Some(Yaml::Sequence(columns)) = entry.get("columns") {
        for column in columns {
            let Some(column_name) = str_field(column, "name") else {
                return Err(Error::new(
                    ErrorKind::Project,
                    format!("a column of `{name}` has no `name:`"),
                )
                .in_file(path)
                .at_line(line));
            };
            props.columns.push(Column {
                name: column_name.to_string(),
                description: str_field(column, "description")
                    .unwrap_or_default()
                    .to_string(),
                data_type: str_field(column, "data_type").map(str::to_string),
            });
            for test in tests_of(column) {
                props
                    .tests
                    .push((Some(column_name.to_string()), yaml::to_json(test)));
            }
        }
    }
    Ok((name, props))
}

/// `data_tests:` (dbt 1.8+) and `tests:` (older) of a model or column.
fn tests_of(entry: &Yaml) -> impl Iterator<Item = &Yaml> {
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
) -> Result<SourceDefinition> {
    let name = required_name(entry, "source", file, path)?;
    let line = names.get(&name).copied().unwrap_or(0);
    let rendered = |key: &str| -> Result<Option<String>> {
        str_field(entry, key)
            .map(|v| render_if_jinja(v).map_err(|e| e.in_file(path).at_line(line)))
            .transpose()
    };
    let mut tables = Vec::new();
    if let Some(Yaml::Sequence(items)) = entry.get("tables") {
        for table in items {
            let table_name = required_name(table, "source table", file, path)?;
            let mut tests: Vec<(Option<String>, Json)> =
                tests_of(table).map(|t| (None, yaml::to_json(t))).collect();
            if let Some(Yaml::Sequence(columns)) = table.get("columns") {
                for column in columns {
                    let Some(column_name) = str_field(column, "name") else {
                        continue;
                    };
                    tests.extend(
                        tests_of(column).map(|t| (Some(column_name.to_string()), yaml::to_json(t))),
                    );
                }
            }
            tables.push(SourceTable {
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
    Ok(SourceDefinition {
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

fn render_if_jinja(value: &str) -> Result<String> {
    if value.contains("{{") || value.contains("{%") {
        crate::jinja::render_standalone(value)
    } else {
        Ok(value.to_string())
    }
}
