//! Generic tests declared in properties YAML (`data_tests:` / `tests:`)
//! become test nodes, named, hashed and configured exactly as dbt does it.

use serde_json::{Map, Value as Json, json};

use crate::base::hash::md5_hex;
use crate::base::pyjson::{python_repr, python_str};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{RefCall, TestMetadata};
use crate::project::properties::DeclaredTest;
use crate::project::versions::{ModelVersion, version_text};
use crate::project::{ModelProperties, Project, ProjectFile};

/// Keys of a test definition that are config, not arguments of the test macro.
const CONFIG_ARGS: &[&str] = &[
    "severity",
    "tags",
    "enabled",
    "where",
    "limit",
    "warn_if",
    "error_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "meta",
    "database",
    "schema",
    "alias",
];

/// One generic test applied to one model, seed or column.
#[derive(Debug, Clone)]
pub struct GenericTest {
    pub unique_id: String,
    /// The full name, used for the unique_id and fqn.
    pub name: String,
    /// The name the compiled file and relation get (hashed when the full name is long).
    pub alias: String,
    pub fqn: Vec<String>,
    /// The test's config from its definition; defaults are added by the compiler.
    pub config: Map<String, Json>,
    pub metadata: TestMetadata,
    pub description: String,
    /// The Jinja that calls the test macro: `{{ test_unique(**_dbt_generic_test_kwargs) }}`.
    pub file: ProjectFile,
    /// dbt's raw_code: `{{ test_unique(**_dbt_generic_test_kwargs) }}`.
    pub raw_code: String,
    /// The macro that implements the test (`test_unique`).
    pub macro_name: String,
    /// The line the test is declared on in the properties file.
    pub line: usize,
    /// The tested model or seed's `ref`, when the test's relation is a
    /// plain `ref` (not a source).
    pub plain_ref: Option<RefCall>,
    /// The tags a test of a source inherits: the source's and the table's.
    pub inherited_tags: Vec<String>,
}

impl GenericTest {
    /// The node's tags as dbt 1.11 makes them: the inherited tags and the
    /// test's own, sorted, then the rest of its config's tags.
    pub fn node_tags(&self, config_tags: Vec<String>) -> Vec<String> {
        if self.inherited_tags.is_empty() {
            return config_tags;
        }
        let own = crate::project::config::string_list(self.config.get("tags"));
        let mut tags: Vec<String> = self.inherited_tags.iter().cloned().chain(own).collect();
        tags.sort();
        tags.dedup();
        for tag in config_tags {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        tags
    }
}

/// Every generic test of the project, in the order the YAML declares them.
pub fn collect(
    project: &Project,
    node_ids: &dyn Fn(&str, Option<&Json>) -> Option<String>,
    source_enabled: &dyn Fn(&str) -> bool,
    render: &dyn crate::project::rendering::Render,
) -> Result<Vec<GenericTest>> {
    // What each test is attached to, then every (attached, column, test):
    // the tests are built on all cores, in declaration order.
    let mut tested = Vec::new();
    let mut declared: Vec<(usize, &DeclaredTest)> = Vec::new();
    // Each version of a versioned model has tests of its own.
    let versions: Vec<(&String, &ModelVersion, ModelProperties)> = project
        .properties()?
        .models
        .iter()
        .flat_map(|(name, p)| p.versions.iter().map(move |v| (name, v, p.of_version(v))))
        .collect();
    let properties = project.properties()?;
    for section in [&properties.models, &properties.seeds, &properties.snapshots] {
        for (name, properties) in section {
            if !properties.versions.is_empty() {
                continue;
            }
            let Some(attached_node) = node_ids(name, None) else {
                continue;
            };
            let index = tested.len();
            tested.push(Tested {
                name: name.clone(),
                name_prefix: "",
                model: format!("ref('{name}')"),
                plain_ref: Some(RefCall {
                    name: name.clone(),
                    package: None,
                    version: None,
                }),
                attached_node,
                tags: Vec::new(),
                file: &properties.file,
                line: properties.line,
            });
            declared.extend(properties.tests.iter().map(|test| (index, test)));
        }
    }
    for (name, version, properties) in &versions {
        let Some(attached_node) = node_ids(name, Some(&version.v)) else {
            continue;
        };
        let index = tested.len();
        tested.push(Tested {
            name: format!("{name}_v{}", version_text(&version.v)),
            name_prefix: "",
            model: super::versions::test_model_ref(name, &version.v),
            plain_ref: Some(RefCall {
                name: name.to_string(),
                package: None,
                version: Some(Box::new(version.v.clone())),
            }),
            attached_node,
            tags: Vec::new(),
            file: &properties.file,
            line: properties.line,
        });
        declared.extend(properties.tests.iter().map(|test| (index, test)));
    }
    for source in &project.properties()?.sources {
        for table in &source.tables {
            let attached_node = format!("source.{}.{}.{}", project.name, source.name, table.name);
            // A disabled source's tests are disabled with it.
            if !source_enabled(&attached_node) {
                continue;
            }
            let index = tested.len();
            tested.push(Tested {
                name: format!("{}_{}", source.name, table.name),
                name_prefix: "source_",
                model: format!("source('{}', '{}')", source.name, table.name),
                plain_ref: None,
                attached_node,
                tags: source.tags.iter().chain(&table.tags).cloned().collect(),
                file: &source.file,
                line: source.line,
            });
            declared.extend(table.tests.iter().map(|test| (index, test)));
        }
    }
    crate::base::parallel::map(&declared, |(index, test)| {
        build(project, &tested[*index], test, render)
    })
    .into_iter()
    .collect()
}

/// What a generic test is attached to: a model or seed, or a source table.
struct Tested<'a> {
    /// The name in the test's name: `orders`, or `<source>_<table>`.
    name: String,
    /// `source_` for tests of sources, as dbt names them.
    name_prefix: &'static str,
    /// The Jinja for the relation: `ref('orders')`, `source('app', 'events')`.
    model: String,
    /// The ref when the relation is a plain ref.
    plain_ref: Option<RefCall>,
    attached_node: String,
    /// Tags the tests inherit (a source's and its table's).
    tags: Vec<String>,
    /// The properties file and line that declare the tests.
    file: &'a str,
    line: usize,
}

fn build(
    project: &Project,
    tested: &Tested,
    test: &DeclaredTest,
    render: &dyn crate::project::rendering::Render,
) -> Result<GenericTest> {
    let column = test.column.as_deref();
    let definition = &test.definition;
    // Errors name the test's own line, else the tested entry's.
    let line = if test.line > 0 {
        test.line
    } else {
        tested.line
    };
    let model = tested.name.as_str();
    let yml = project.root.join(tested.file);
    let fail = |message: String| {
        // Read again only to quote the line: this is the error path.
        let text = std::fs::read_to_string(&yml).unwrap_or_default();
        Error::new(ErrorKind::Project, message)
            .in_file(&yml)
            .at_line_of(&text, line)
    };
    let (test_name, mut args) = match definition {
        Json::String(name) => (name.clone(), Map::new()),
        Json::Object(map) if map.contains_key("test_name") => {
            let mut args = map.clone();
            let name = args
                .remove("test_name")
                .and_then(|n| n.as_str().map(str::to_string));
            (
                name.ok_or_else(|| {
                    fail(format!(
                        "a test of `{model}` has a `test_name` that is not a string"
                    ))
                })?,
                args,
            )
        }
        Json::Object(map) if map.len() == 1 => {
            let (name, value) = map.iter().next().expect("one entry");
            match value {
                Json::Object(args) => (name.clone(), args.clone()),
                Json::Null => (name.clone(), Map::new()),
                other => {
                    return Err(fail(format!(
                        "the arguments of test `{name}` on `{model}` must be a mapping, got `{other}`"
                    )));
                }
            }
        }
        other => {
            return Err(fail(format!(
                "a test of `{model}` must be a test name or a mapping with one key (the test name), got `{other}`"
            )));
        }
    };
    if args.contains_key("model") {
        return Err(fail(format!(
            "test `{test_name}` on `{model}` passes `model`: weir sets it to the tested node"
        )));
    }
    if let Some(column) = column {
        args.insert("column_name".into(), json!(column));
    }
    if let Some(Json::Object(arguments)) = args.remove("arguments") {
        args.extend(arguments);
    }

    let mut config = Map::new();
    let mut nested_config = match args.remove("config") {
        Some(Json::Object(map)) => map,
        _ => Map::new(),
    };
    for key in CONFIG_ARGS {
        let value = args.remove(*key).or_else(|| nested_config.remove(*key));
        if let Some(value) = value.filter(|v| !v.is_null()) {
            config.insert(key.to_string(), value);
        }
    }
    config.extend(nested_config);
    // As dbt's test builder does: each config value that is a string is
    // rendered natively (`enabled: "{{ target.name != 'ci' }}"`).
    for value in config.values_mut() {
        if let Json::String(text) = value
            && crate::project::rendering::has_jinja(text)
        {
            *value = render.render(&project.name, false, text).map_err(|e| {
                let text = std::fs::read_to_string(&yml).unwrap_or_default();
                let moved = Error::new(e.kind(), e.message())
                    .in_file(&yml)
                    .at_line_of(&text, line);
                match e.hint() {
                    Some(hint) => moved.with_hint(hint),
                    None => moved,
                }
            })?;
        }
    }
    let description = match args.remove("description") {
        Some(Json::String(d)) => d,
        _ => String::new(),
    };
    let custom_name = match args.remove("name") {
        Some(Json::String(n)) => Some(n),
        _ => None,
    };
    args.insert(
        "model".into(),
        json!(format!("{{{{ get_where_subquery({}) }}}}", tested.model)),
    );

    let (namespace, short_test_name) = match test_name.split_once('.') {
        Some((namespace, name)) => (Some(namespace.to_string()), name.to_string()),
        None => (None, test_name.clone()),
    };
    let (alias, name) = match custom_name {
        Some(name) => (name.clone(), name),
        None => {
            let prefix = match &namespace {
                Some(ns) => format!("{}{ns}_{short_test_name}", tested.name_prefix),
                None => format!("{}{short_test_name}", tested.name_prefix),
            };
            let (short, full) = synthesize_names(&prefix, model, &args);
            if short != full {
                config.entry("alias").or_insert_with(|| json!(short));
            }
            (short, full)
        }
    };
    let alias = config
        .get("alias")
        .and_then(Json::as_str)
        .map_or(alias, str::to_string);

    let metadata = TestMetadata {
        name: short_test_name.clone(),
        namespace: namespace.clone(),
        kwargs: args.clone(),
        column_name: column.map(str::to_string),
        attached_node: tested.attached_node.clone(),
    };
    let hash = {
        let metadata_repr = python_repr(&hashable(&json!({
            "name": short_test_name,
            "kwargs": args,
            "namespace": namespace,
        })));
        let digest = md5_hex(&format!("{name}{metadata_repr}"));
        digest[digest.len() - 10..].to_string()
    };
    let macro_name = format!("test_{short_test_name}");
    let call = match &namespace {
        Some(namespace) => format!("{namespace}.{macro_name}"),
        None => macro_name.clone(),
    };
    let mut fqn = vec![project.name.clone()];
    fqn.extend(folders_under_resource_path(project, tested.file));
    fqn.push(name.clone());

    Ok(GenericTest {
        unique_id: format!("test.{}.{name}.{hash}", project.name),
        raw_code: format!(
            "{{{{ {call}(**_dbt_generic_test_kwargs) }}}}{}",
            config_call(&config)
        ),
        file: ProjectFile {
            original_file_path: tested.file.to_string(),
            path: format!("{alias}.sql"),
            text: format!("{{{{ {call}(**_dbt_generic_test_kwargs) }}}}"),
        },
        macro_name,
        line,
        plain_ref: tested.plain_ref.clone().map(|mut call| {
            // dbt records the version as written in the YAML for the two
            // tests it parses without Jinja, as the string of the test's
            // `model` argument for the others.
            let shortcut =
                namespace.is_none() && ["unique", "not_null"].contains(&short_test_name.as_str());
            if let Some(version) = call.version.as_mut().filter(|_| !shortcut) {
                **version = Json::String(version_text(version));
            }
            call
        }),
        inherited_tags: tested.tags.clone(),
        name,
        alias,
        fqn,
        config,
        metadata,
        description,
    })
}

/// dbt's synthesize_generic_test_names: `<test>_<model>_<flattened args>`,
/// shortened with an md5 when 64 characters or longer.
fn synthesize_names(test: &str, model: &str, args: &Map<String, Json>) -> (String, String) {
    let mut keys: Vec<&String> = args.keys().filter(|k| *k != "model").collect();
    keys.sort();
    let mut parts = Vec::new();
    for key in keys {
        match &args[key] {
            Json::Object(map) => parts.extend(map.values().map(python_str)),
            Json::Array(items) => parts.extend(items.iter().map(python_str)),
            other => parts.push(python_str(other)),
        }
    }
    let cleaned: Vec<String> = parts.iter().map(|p| replace_non_word_runs(p)).collect();
    let identifier = format!("{test}_{model}");
    let full = format!("{identifier}_{}", cleaned.join("__"));
    if full.len() >= 64 {
        let truncated: String = identifier.chars().take(30).collect();
        (format!("{truncated}_{}", md5_hex(&full)), full)
    } else {
        (full.clone(), full)
    }
}

/// `re.sub("[^0-9a-zA-Z_]+", "_", text)`.
fn replace_non_word_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

/// The folders between the resource path (models/) and the properties file.
pub(crate) fn folders_under_resource_path(project: &Project, file: &str) -> Vec<String> {
    let within = project
        .properties_paths
        .iter()
        .find_map(|root| file.strip_prefix(&format!("{root}/")))
        .unwrap_or(file);
    let mut parts: Vec<String> = within.split('/').map(str::to_string).collect();
    parts.pop();
    parts
}

/// `config(key="value", ...)` for raw_code, as dbt writes it.
fn config_call(config: &Map<String, Json>) -> String {
    if config.is_empty() {
        return String::new();
    }
    let items: Vec<String> = config
        .iter()
        .map(|(key, value)| match value {
            Json::String(s) => format!("{key}=\"{}\"", s.replace('"', "\\\"")),
            other => format!("{key}={}", python_str(other)),
        })
        .collect();
    format!("{{{{ config({}) }}}}", items.join(","))
}

/// dbt's get_hashable_md: dicts with sorted keys, lists, everything else `str()`.
fn hashable(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Json::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), hashable(&map[k])))
                    .collect(),
            )
        }
        Json::Array(items) => Json::Array(items.iter().map(hashable).collect()),
        other => Json::String(python_str(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dbt() {
        let args =
            json!({"column_name": "customer_id", "to": "ref('customers')", "field": "customer_id"});
        let (short, full) = synthesize_names("relationships", "orders", args.as_object().unwrap());
        assert_eq!(
            full,
            "relationships_orders_customer_id__customer_id__ref_customers_"
        );
        assert_eq!(short, full);
        let args = json!({"column_name": "status", "values": ["placed", "shipped", "completed", "return_pending", "returned"]});
        let (short, full) =
            synthesize_names("accepted_values", "stg_orders", args.as_object().unwrap());
        assert_eq!(
            full,
            "accepted_values_stg_orders_status__placed__shipped__completed__return_pending__returned"
        );
        assert_eq!(
            short,
            "accepted_values_stg_orders_4f514bf94b77b7ea437830eec4421c58"
        );
    }

    #[test]
    fn repr_matches_python() {
        let value = json!({"b": ["1", "it's"], "a": {"x": "say \"hi\""}});
        assert_eq!(
            python_repr(&hashable(&value)),
            r#"{'a': {'x': 'say "hi"'}, 'b': ['1', "it's"]}"#
        );
        assert_eq!(python_str(&json!(1.0)), "1.0");
        assert_eq!(python_str(&json!(null)), "None");
    }
}
