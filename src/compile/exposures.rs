//! Exposures: the `exposures:` of properties YAML resolved against the
//! compiled nodes and sources, with configs layered as dbt 1.11 layers them.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

use crate::error::{Error, ErrorKind, Result};
use crate::jinja::CompileScope;
use crate::manifest::{Exposure, Node, RefCall, SourceNode};
use crate::project::versions::ref_version;
use crate::project::{ExposureDefinition, Project};

/// One `depends_on:` entry: `ref('name')`, `ref('package', 'name')` (with an
/// optional `v=`/`version=`), or `source('source', 'table')`.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Ref(RefCall),
    Source { source: String, table: String },
}

/// The enabled exposures of the project and its packages.
pub fn exposures(
    project: &Project,
    scope: &CompileScope,
    nodes: &BTreeMap<String, Node>,
    sources: &BTreeMap<String, SourceNode>,
) -> Result<BTreeMap<String, Exposure>> {
    let mut out = BTreeMap::new();
    for package in project.all_projects() {
        for definition in &package.properties()?.exposures {
            let exposure = build(package, project, scope, definition, nodes, sources)?;
            if exposure.config.get("enabled") != Some(&Json::Bool(false)) {
                out.insert(exposure.unique_id.clone(), exposure);
            }
        }
    }
    Ok(out)
}

fn build(
    package: &Project,
    root: &Project,
    scope: &CompileScope,
    definition: &ExposureDefinition,
    nodes: &BTreeMap<String, Node>,
    sources: &BTreeMap<String, SourceNode>,
) -> Result<Exposure> {
    let file = package.root.join(&definition.file);
    // The file's path below its model path, as dbt writes `path`.
    let path = package
        .model_paths
        .iter()
        .find_map(|base| {
            definition
                .file
                .strip_prefix(base.trim_end_matches('/'))
                .and_then(|rest| rest.strip_prefix('/'))
        })
        .unwrap_or(&definition.file)
        .to_string();
    let mut fqn = vec![package.name.clone()];
    fqn.extend(super::generic_tests::folders_under_resource_path(
        package,
        &definition.file,
    ));
    fqn.push(definition.name.clone());

    // dbt_project.yml's `exposures:` tree (the package's, then the root's),
    // then the `config:` block, whose keys replace what the tree set.
    let mut unrendered = package.exposures_config.resolve(&fqn);
    if package.name != root.name {
        crate::project::config::merge_config(&mut unrendered, &root.exposures_config.resolve(&fqn));
    }
    for (key, value) in &definition.config {
        unrendered.insert(key.clone(), value.clone());
    }
    let enabled = match unrendered.get("enabled") {
        None | Some(Json::Null) => true,
        Some(Json::Bool(b)) => *b,
        Some(other) => {
            return Err(Error::new(
                ErrorKind::Project,
                format!(
                    "`enabled` of exposure `{}` must be true or false, got {other}",
                    definition.name
                ),
            )
            .in_file(&file)
            .at_line(definition.line));
        }
    };
    let mut tags = crate::project::config::string_list(unrendered.get("tags"));
    tags.extend(definition.tags.iter().cloned());
    tags.sort();
    tags.dedup();
    let mut meta = definition.meta.clone();
    if let Some(Json::Object(config_meta)) = unrendered.get("meta") {
        meta.extend(config_meta.clone());
    }
    let mut owner = Map::new();
    owner.insert(
        "email".into(),
        definition.owner.get("email").cloned().unwrap_or(Json::Null),
    );
    owner.insert(
        "name".into(),
        definition.owner.get("name").cloned().unwrap_or(Json::Null),
    );
    for (key, value) in &definition.owner {
        owner.entry(key.clone()).or_insert_with(|| value.clone());
    }

    let unique_id = format!("exposure.{}.{}", package.name, definition.name);
    let mut refs = Vec::new();
    let mut source_calls = Vec::new();
    let mut ref_ids = Vec::new();
    let mut source_ids = Vec::new();
    for (text, line) in &definition.depends_on {
        let at = |e: Error| e.in_file(&file).at_line(*line).with_snippet(text.trim());
        match parse_call(text).map_err(at)? {
            Call::Ref(call) => {
                let name = &call.name;
                let key = super::versions::ref_key(name, call.version.as_deref());
                let id = scope
                    .resolve_ref(&package.name, call.package.as_deref(), &key)
                    .map(str::to_string);
                let id = match id {
                    Some(id) if nodes.contains_key(&id) || !enabled => id,
                    Some(_) => {
                        return Err(at(Error::new(
                            ErrorKind::MissingNode,
                            format!(
                                "exposure `{}` depends on `{name}`, which is disabled",
                                definition.name
                            ),
                        )));
                    }
                    None if key != *name => {
                        let version = crate::project::versions::version_text(
                            call.version.as_deref().unwrap_or(&Json::Null),
                        );
                        let err = Error::new(
                            ErrorKind::MissingNode,
                            format!(
                                "exposure `{}` depends on version `{version}` of `{name}`, which was not found",
                                definition.name
                            ),
                        );
                        return Err(at(
                            match super::versions::describe_versions(&scope.nodes_by_name, name) {
                                Some(versions) => {
                                    err.with_hint(format!("its versions are {versions}"))
                                }
                                None => err.with_hint(format!("`{name}` is not a versioned model")),
                            },
                        ));
                    }
                    None => {
                        let err = Error::new(
                            ErrorKind::MissingNode,
                            format!(
                                "exposure `{}` depends on a node named `{name}`, which was not found",
                                definition.name
                            ),
                        );
                        let known = scope
                            .nodes_by_name
                            .keys()
                            .map(String::as_str)
                            .filter(|n| !n.contains('.'));
                        return Err(at(match crate::error::did_you_mean(name, known) {
                            Some(hint) => err.with_hint(hint),
                            None => err,
                        }));
                    }
                };
                if !ref_ids.contains(&id) {
                    ref_ids.push(id);
                }
                refs.push(call);
            }
            Call::Source { source, table } => {
                let Some((id, _)) = scope.resolve_source(&package.name, &source, &table) else {
                    let err = Error::new(
                        ErrorKind::MissingNode,
                        format!(
                            "exposure `{}` depends on a source named `{source}.{table}`, which was not found",
                            definition.name
                        ),
                    );
                    let known: Vec<String> = sources
                        .values()
                        .map(|s| format!("{}.{}", s.source_name, s.name))
                        .collect();
                    let wanted = format!("{source}.{table}");
                    return Err(at(
                        match crate::error::did_you_mean(&wanted, known.iter().map(String::as_str))
                        {
                            Some(hint) => err.with_hint(hint),
                            None => err,
                        },
                    ));
                };
                if !source_ids.contains(id) {
                    source_ids.push(id.clone());
                }
                source_calls.push([source, table]);
            }
        }
    }
    let mut depends_on_nodes = source_ids;
    depends_on_nodes.extend(ref_ids);

    let mut config = Map::new();
    config.insert("enabled".into(), json!(enabled));
    config.insert("tags".into(), json!(tags));
    config.insert("meta".into(), Json::Object(meta.clone()));
    Ok(Exposure {
        unique_id,
        name: definition.name.clone(),
        package_name: package.name.clone(),
        path,
        original_file_path: definition.file.clone(),
        fqn,
        kind: definition.kind.clone(),
        owner,
        description: definition.description.clone(),
        label: definition.label.clone(),
        maturity: definition.maturity.clone(),
        url: definition.url.clone(),
        tags,
        meta,
        config,
        unrendered_config: unrendered,
        depends_on_nodes,
        refs,
        sources: source_calls,
    })
}

/// Parse `ref(...)` or `source(...)` with string arguments, as dbt's docs
/// write them. dbt renders the entry as `{{ <entry> }}`, so `{{ ... }}` in
/// the entry itself fails there as it does here.
fn parse_call(text: &str) -> Result<Call> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::Project,
            format!("`depends_on:` entry `{}` {why}", text.trim()),
        )
        .with_hint("write ref('model'), ref('package', 'model') or source('source', 'table')")
    };
    let text = text.trim();
    if text.contains("{{") || text.contains("{%") {
        return Err(bad(
            "holds Jinja delimiters; write the call without `{{ }}`",
        ));
    }
    let (function, rest) = text
        .split_once('(')
        .ok_or_else(|| bad("is not a ref() or source() call"))?;
    let arguments = rest
        .trim_end()
        .strip_suffix(')')
        .ok_or_else(|| bad("does not end with `)`"))?;
    let mut positional = Vec::new();
    let (mut version, mut v): (Option<Json>, Option<Json>) = (None, None);
    let mut chars = arguments.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        if first == '\'' || first == '"' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some(c) if c == first => break,
                    Some(c) => value.push(c),
                    None => return Err(bad("has an unclosed string")),
                }
            }
            positional.push(value);
        } else {
            // A keyword argument: only the version of a ref (`v=2`, `version=2`).
            let keyword: String = chars.by_ref().take_while(|c| *c != '=').collect();
            let keyword = keyword.trim().to_string();
            if function.trim() != "ref" || !matches!(keyword.as_str(), "v" | "version") {
                return Err(bad(&format!("has an unexpected argument `{keyword}`")));
            }
            let value: String = chars.by_ref().take_while(|c| *c != ',').collect();
            let value = version_literal(value.trim())
                .ok_or_else(|| bad(&format!("gives `{keyword}=` no number or quoted string")))?;
            if keyword == "version" {
                version = Some(value);
            } else {
                v = Some(value);
            }
            continue;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(c) => return Err(bad(&format!("has `{c}` where a `,` belongs"))),
        }
    }
    let version = ref_version(version, v).map(Box::new);
    match (function.trim(), positional.as_slice()) {
        ("ref", [name]) => Ok(Call::Ref(RefCall {
            package: None,
            name: name.clone(),
            version,
        })),
        ("ref", [package, name]) => Ok(Call::Ref(RefCall {
            package: Some(package.clone()),
            name: name.clone(),
            version,
        })),
        ("source", [source, table]) => Ok(Call::Source {
            source: source.clone(),
            table: table.clone(),
        }),
        ("ref", _) => Err(bad(
            "needs one or two names: ref('model') or ref('package', 'model')",
        )),
        ("source", _) => Err(bad("needs two names: source('source', 'table')")),
        (other, _) => Err(bad(&format!("calls `{other}`, not ref() or source()"))),
    }
}

/// A version as an exposure writes it: `2`, `1.5`, `'2'` or `"beta"`.
fn version_literal(text: &str) -> Option<Json> {
    let quoted = ['\'', '"']
        .iter()
        .find_map(|q| text.strip_prefix(*q)?.strip_suffix(*q));
    match quoted {
        Some(inner) => Some(Json::String(inner.to_string())),
        None => match text.parse::<i64>() {
            Ok(n) => Some(json!(n)),
            Err(_) => text
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| json!(f)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(package: Option<&str>, name: &str) -> Call {
        Call::Ref(RefCall {
            package: package.map(str::to_string),
            name: name.to_string(),
            version: None,
        })
    }

    #[test]
    fn calls_as_dbt_writes_them() {
        assert_eq!(
            parse_call("ref('orders')").unwrap(),
            reference(None, "orders")
        );
        assert_eq!(
            parse_call(" ref( \"shop\" , 'orders' ) ").unwrap(),
            reference(Some("shop"), "orders")
        );
        let versioned = |version: Json| {
            Call::Ref(RefCall {
                package: None,
                name: "orders".into(),
                version: Some(Box::new(version)),
            })
        };
        assert_eq!(
            parse_call("ref('orders', v=2)").unwrap(),
            versioned(json!(2))
        );
        assert_eq!(
            parse_call("ref('orders', version='2')").unwrap(),
            versioned(json!("2"))
        );
        assert_eq!(
            parse_call("ref('orders', v=1.5, version=3)").unwrap(),
            versioned(json!(3))
        );
        assert_eq!(
            parse_call("ref('orders', version=0, v=4)").unwrap(),
            versioned(json!(4))
        );
        assert_eq!(
            parse_call("source('app', 'events')").unwrap(),
            Call::Source {
                source: "app".into(),
                table: "events".into()
            }
        );
    }

    #[test]
    fn anything_else_is_an_error_naming_the_entry() {
        for bad in [
            "orders",
            "ref(orders)",
            "ref('a', 'b', 'c')",
            "source('app')",
            "{{ ref('orders') }}",
            "metric('m')",
            "ref('orders'",
            "ref('orders)",
            "source('a', 'b', v=1)",
            "ref('orders', v=two)",
        ] {
            let err = parse_call(bad).unwrap_err();
            assert!(err.message().contains(bad.trim()), "{bad}: {err}");
        }
    }
}
