//! Project + target -> Manifest: render every model, resolve configs and
//! relation names, build the DAG. Both the CLI and Python call this.

pub mod artifacts;
pub mod cache;
mod disabled;
mod docs;
mod ephemeral;
mod exposures;
pub mod fingerprints;
pub mod generic_tests;
mod nodes;
pub(crate) mod validate;
mod versions;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use minijinja::value::Value;
use serde_json::{Map, Value as Json, json};

use crate::error::{Error, ErrorKind, Result};
use crate::graph::Dag;
use crate::jinja::{
    CompileScope, GenericTestCall, JinjaEnv, PLACEHOLDER, RenderCapture, RenderRequest,
};
use crate::manifest::{
    Manifest, Materialization, Metadata, Node, Relation, ResourceType, SourceNode,
};
use crate::project::Project;
use crate::target::Target;
use nodes::{Pending, pending_nodes, pending_test, source_nodes};

mod render;
pub use render::{RunFlags, RunRenderer};

/// Where a project and its profile are, and what to compile them for.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    pub project_dir: PathBuf,
    pub profiles_dir: Option<PathBuf>,
    /// The target name; None means the profile's default target.
    pub target: Option<String>,
    /// `--vars`: overrides the project's vars.
    pub vars: Map<String, Json>,
    /// `--schema-suffix`: appended to every schema (see target::naming).
    pub schema_suffix: Option<String>,
    /// The blue-green deploy's shadow suffix (`__next`): every schema of
    /// the compile is its shadow (see env::deploy).
    pub shadow_suffix: Option<String>,
}

/// A project compiled for one target: what every command and task starts from.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub project: Project,
    pub target: Target,
    pub manifest: Manifest,
    /// `--vars`, kept so nodes can be rendered again at run time.
    pub cli_vars: Map<String, Json>,
}

impl Compiled {
    /// Read the project and its profile, then compile.
    pub fn load(options: &CompileOptions) -> Result<Compiled> {
        crate::base::timing::phase("start");
        let project = Project::load(&options.project_dir)?;
        crate::base::timing::phase("project load");
        let mut target = crate::target::profile::load_target(
            options.profiles_dir.as_deref(),
            &project.root,
            &project.profile,
            options.target.as_deref(),
        )?;
        let overrides = [
            (crate::target::naming::SUFFIX_KEY, &options.schema_suffix),
            (crate::target::naming::SHADOW_KEY, &options.shadow_suffix),
        ];
        for (key, value) in overrides {
            if let Some(value) = value {
                target
                    .extra
                    .insert(key.to_string(), Json::String(value.clone()));
            }
        }
        let manifest = compile(&project, &target, &options.vars)?;
        Ok(Compiled {
            project,
            target,
            manifest,
            cli_vars: options.vars.clone(),
        })
    }
}

/// Compile `project` for `target`, or reuse the last compile of the same
/// inputs (see [`cache`]).
pub fn compile(
    project: &Project,
    target: &Target,
    cli_vars: &Map<String, Json>,
) -> Result<Manifest> {
    crate::base::timing::phase("profile and target");
    let key = cache::Key::of(project, target, cli_vars);
    if let Some(key) = &key
        && let Some(mut manifest) = cache::load(project, target, key)
    {
        manifest.metadata.reuse_key = Some(key.as_str().to_string());
        crate::base::timing::phase("compile cache read");
        return Ok(manifest);
    }
    let unrepeatable = crate::base::env_vars::unrepeatable_count();
    let mut manifest = compile_project(project, target, cli_vars)?;
    if let Some(key) = key
        && crate::base::env_vars::unrepeatable_count() == unrepeatable
    {
        manifest.metadata.reuse_key = Some(key.as_str().to_string());
        cache::save(project, target, &key, &manifest);
        crate::base::timing::phase("compile cache written");
    }
    Ok(manifest)
}

/// Compile `project` for `target` from its files.
fn compile_project(
    project: &Project,
    target: &Target,
    cli_vars: &Map<String, Json>,
) -> Result<Manifest> {
    // The YAML values dbt renders, rendered for this target.
    let renderer = crate::jinja::YamlRenderer::new(
        &target_context(target),
        &target.secret_keys,
        package_vars(project, cli_vars),
        cli_vars.clone(),
    );
    let rendered = project.rendered(&renderer)?;
    let project = rendered.as_ref().unwrap_or(project);
    // Broken properties YAML is the first error, as when it was read.
    for package in project.all_projects() {
        package.properties()?;
    }
    let mut pending = pending_nodes(project)?;
    crate::base::timing::phase("pending nodes");
    let sources = source_nodes(project, target)?;
    let scope = compile_scope(project, target, cli_vars, &pending, &sources);
    let jinja = JinjaEnv::new(project, scope)?;
    crate::base::timing::phase("jinja env");
    let mut tests = Vec::new();
    for package in project.all_projects() {
        let resolve = |name: &str, version: Option<&Json>| {
            let key = versions::ref_key(name, version);
            jinja
                .scope()
                .resolve_ref(&package.name, None, &key)
                .map(str::to_string)
        };
        let source_enabled = |id: &str| sources.contains_key(id);
        for test in generic_tests::collect(package, &resolve, &source_enabled, &renderer)? {
            check_test_macro(&jinja, package, &test)?;
            tests.push((test, package));
        }
    }
    pending.extend(
        tests
            .iter()
            .map(|(test, package)| pending_test(test, package, project)),
    );

    crate::base::timing::phase("generic tests");
    let (captures, mut render_errors) = render_all(&jinja, &pending)?;
    crate::base::timing::phase("render");

    // `quoting:` of dbt_project.yml names every node's relation.
    let quoting = crate::manifest::Quoting::default().merged(&project.quoting);
    let rendered_nodes: Vec<_> = pending.iter().zip(&captures).collect();
    let configured = crate::base::parallel::map(&rendered_nodes, |(node, capture)| {
        let mut config = Map::clone(&node.base_config);
        if let Some(capture) = capture {
            crate::project::config::merge_config(&mut config, &capture.config.lock().unwrap());
        }
        relation_for(&jinja, node, &config, target).map(|mut relation| {
            relation.quoting = quoting;
            (config, relation)
        })
    });
    let mut relations = Vec::with_capacity(pending.len());
    let mut configs = Vec::with_capacity(pending.len());
    for configured in configured {
        let (config, relation) = configured?;
        relations.push(relation);
        configs.push(config);
    }
    // What `ref` renders: an ephemeral model is a CTE, not a relation.
    let mut rendered = HashMap::with_capacity(pending.len());
    for ((node, config), relation) in pending.iter().zip(&configs).zip(&relations) {
        let relation = match config.get("materialized").and_then(Json::as_str) {
            Some("ephemeral") => ephemeral::cte_relation(&relation.identifier),
            _ => relation.clone(),
        };
        rendered.insert(node.unique_id.clone(), relation);
    }
    let rendered = Arc::new(rendered);
    crate::base::timing::phase("relations");

    let reads_graph: Vec<bool> = captures
        .iter()
        .map(|c| {
            c.as_ref()
                .is_some_and(|c| c.read_graph.load(Ordering::Relaxed))
        })
        .collect();
    let to_build: Vec<_> = pending
        .iter()
        .zip(captures)
        .zip(configs)
        .zip(relations)
        .zip(render_errors.iter_mut().map(Option::take))
        .collect();
    let built = crate::base::parallel::map_owned(
        to_build,
        |((((node, capture), config), relation), mut render_error)| {
            let compiled_code = match &capture {
                None => String::new(),
                Some(_) if render_error.is_some() => String::new(),
                Some(c) if c.needs_final_render.load(Ordering::Relaxed) => {
                    let request = render_request(node, Some(&rendered));
                    match jinja.render(&request) {
                        Ok(capture) => capture.sql,
                        Err(error) => {
                            render_error = Some(error);
                            String::new()
                        }
                    }
                }
                Some(c) => substitute_placeholders(&c.sql, &rendered),
            };
            let mut node = build_node(node, config, capture, compiled_code, relation)?;
            node.render_error = render_error.map(Box::new);
            Ok(node)
        },
    );
    let mut nodes = BTreeMap::new();
    for node in built {
        let node = node?;
        nodes.insert(node.unique_id.clone(), node);
    }
    crate::base::timing::phase("build nodes");
    validate::configs(project, &nodes)?;
    crate::base::timing::phase("validate");
    let disabled = |n: &Node| n.config.get("enabled") == Some(&Json::Bool(false));
    let disabled_ids: HashSet<String> = nodes
        .values()
        .filter(|n| disabled(n))
        .map(|n| n.unique_id.clone())
        .collect();
    // Kept, as dbt keeps them, in the manifest's `disabled`.
    let disabled_nodes: BTreeMap<String, Node> = disabled_ids
        .iter()
        .filter_map(|id| nodes.get(id).map(|n| (id.clone(), n.clone())))
        .collect();
    // The tests of a disabled model or seed are disabled with it, as in dbt.
    nodes.retain(|_, n| {
        !disabled(n)
            && !n
                .test
                .as_ref()
                .is_some_and(|t| disabled_ids.contains(&t.attached_node))
    });
    validate::relations(project, &nodes)?;
    let docs = docs::doc_blocks(project);
    let mut sources = sources;
    let descriptions = docs::Descriptions::new(&docs, &project.name);
    descriptions.render_all(project, &mut nodes, &mut sources)?;

    crate::base::timing::phase("docs");
    let mut exposures = exposures::exposures(project, jinja.scope(), &nodes, &sources)?;
    descriptions.render_exposures(project, &mut exposures)?;
    // Templates that read `graph` see every node only now: render them again.
    if reads_graph.contains(&true) {
        let graph = crate::jinja::flat_graph(&nodes, &sources, &exposures);
        for (node, _) in pending.iter().zip(&reads_graph).filter(|(_, r)| **r) {
            if let Some(built) = nodes
                .get_mut(&node.unique_id)
                .filter(|n| n.render_error.is_none())
            {
                let mut request = render_request(node, Some(&rendered));
                request.graph = Some(graph.clone());
                match jinja.render(&request) {
                    Ok(capture) => built.compiled_code = capture.sql,
                    Err(error) => built.render_error = Some(Box::new(error)),
                }
            }
        }
    }
    drop(rendered);
    drop(pending);
    drop(tests);
    crate::base::timing::phase("exposures, graph, freeing the render's data");
    // The manifest's edge maps are built beside the DAG's order.
    let ((parent_map, child_map), order) = crate::base::parallel::both(
        || edge_maps(&nodes, &sources, &exposures),
        || dag_order(project, &nodes),
    );
    let order = order?;
    ephemeral::inject_ctes(&mut nodes, &order);
    crate::base::timing::phase("dag + ctes + edge maps");
    Ok(Manifest {
        metadata: Metadata {
            project_name: project.name.clone(),
            target_name: target.name.clone(),
            adapter_type: target.adapter_type.clone(),
            invocation_id: jinja.scope().invocation_id.clone(),
            generated_at: crate::base::clock::now_rfc3339(),
            reuse_key: None,
            reused: false,
        },
        nodes,
        sources,
        docs,
        exposures,
        parent_map,
        child_map,
        order,
        disabled: disabled_nodes,
    })
}

fn compile_scope(
    project: &Project,
    target: &Target,
    cli_vars: &Map<String, Json>,
    pending: &[Pending],
    sources: &BTreeMap<String, SourceNode>,
) -> CompileScope {
    let mut package_vars = package_vars(project, cli_vars);
    let vars = package_vars.remove(&project.name).unwrap_or_default();
    CompileScope {
        project_name: project.name.clone(),
        nodes_by_name: {
            let mut by_name: HashMap<String, Vec<String>> = HashMap::new();
            // Analyses and tests cannot be ref'd.
            let referable = pending.iter().filter(|n| {
                !matches!(n.resource_type, ResourceType::Analysis | ResourceType::Test)
            });
            for node in referable {
                for name in node.ref_names() {
                    by_name
                        .entry(name)
                        .or_default()
                        .push(node.unique_id.clone());
                }
            }
            by_name
        },
        sources: {
            let mut by_name: HashMap<(String, String), Vec<(String, Relation)>> = HashMap::new();
            for source in sources.values() {
                let key = (source.source_name.clone(), source.name.clone());
                by_name
                    .entry(key)
                    .or_default()
                    .push((source.unique_id.clone(), source.relation.clone()));
            }
            by_name
        },
        vars,
        package_vars,
        target: target_context(target),
        target_secrets: target.secret_keys.clone(),
        invocation_id: crate::base::clock::invocation_id(),
        run_started_at: std::time::SystemTime::now(),
    }
}

/// The test's macro must exist: `test_<name>`, in its package when namespaced.
fn check_test_macro(
    jinja: &JinjaEnv,
    package: &Project,
    test: &generic_tests::GenericTest,
) -> Result<()> {
    let namespace = test.metadata.namespace.as_deref();
    if jinja.has_macro_in(namespace, &test.macro_name) {
        return Ok(());
    }
    let err = Error::new(
        ErrorKind::Project,
        format!(
            "test `{}` on `{}` has no definition: no `{{% test {} %}}` block or `{}` macro{}",
            test.metadata.name,
            crate::graph::short_name(&test.metadata.attached_node),
            test.metadata.name,
            test.macro_name,
            namespace
                .map(|n| format!(" in package `{n}`"))
                .unwrap_or_default(),
        ),
    )
    .in_file(package.root.join(&test.file.original_file_path))
    .at_line(test.line);
    let known = jinja.macro_names().filter_map(|m| m.strip_prefix("test_"));
    Err(
        match crate::error::did_you_mean(&test.metadata.name, known) {
            Some(hint) => err.with_hint(hint),
            None => err,
        },
    )
}

/// The vars each project sees, as dbt layers them: the package's own vars,
/// then the root project's global vars, then the root's vars scoped to that
/// package (`vars: {package: {...}}`), then --vars.
fn package_vars(
    root: &Project,
    cli_vars: &Map<String, Json>,
) -> HashMap<String, Map<String, Json>> {
    let names: Vec<&str> = root.all_projects().map(|p| p.name.as_str()).collect();
    let global = |vars: &Map<String, Json>| -> Map<String, Json> {
        vars.iter()
            .filter(|(key, value)| !(value.is_object() && names.contains(&key.as_str())))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    };
    let root_global = global(&root.vars);
    root.all_projects()
        .map(|project| {
            let mut vars = if project.name == root.name {
                Map::new()
            } else {
                global(&project.vars)
            };
            vars.extend(root_global.clone());
            if let Some(Json::Object(scoped)) = root.vars.get(&project.name) {
                vars.extend(scoped.clone());
            }
            vars.extend(cli_vars.clone());
            (project.name.clone(), vars)
        })
        .collect()
}

/// `target` as models see it: dbt's keys, never the password.
pub fn target_context(target: &Target) -> Map<String, Json> {
    let mut map = Map::new();
    for (key, value) in &target.extra {
        map.insert(key.clone(), value.clone());
    }
    map.insert("name".into(), json!(target.name));
    map.insert("target_name".into(), json!(target.name));
    map.insert("profile_name".into(), json!(target.profile_name));
    map.insert("type".into(), json!(target.adapter_type));
    map.insert("schema".into(), json!(target.schema));
    map.insert("database".into(), json!(target.dbname));
    map.insert("dbname".into(), json!(target.dbname));
    map.insert("user".into(), json!(target.user));
    map.insert(
        "host".into(),
        json!(target.host.as_deref().unwrap_or("localhost")),
    );
    map.insert("port".into(), json!(target.port.unwrap_or(5432)));
    map.insert("threads".into(), json!(target.threads));
    map
}

fn render_request<'a>(
    node: &'a Pending<'a>,
    relations: Option<&'a Arc<HashMap<String, Relation>>>,
) -> RenderRequest<'a> {
    RenderRequest {
        file: node.file,
        package: &node.package.name,
        unique_id: &node.unique_id,
        base_config: &node.base_config,
        model: Value::from_object(crate::jinja::ModelInfo {
            name: node.name.clone(),
            unique_id: node.unique_id.clone(),
            resource_type: node.resource_type.as_str(),
            original_file_path: node.file.original_file_path.clone(),
            path: node.file.path.clone(),
            fqn: node.fqn.clone(),
            config: Arc::clone(&node.base_config),
        }),
        relations,
        generic_test: node.test.map(|test| GenericTestCall {
            kwargs: &test.metadata.kwargs,
            plain_model_ref: test
                .plain_ref
                .as_ref()
                .filter(|_| node.base_config.get("where").is_none_or(Json::is_null)),
        }),
        graph: None,
        execute: true,
    }
}

/// What the first render of each node gave: its capture (None for a seed),
/// and the error of a node that renders only as dbt parses it.
type FirstRenders = (Vec<Option<RenderCapture>>, Vec<Option<Error>>);

/// The first render of every node, on all cores, with `ref` and `this` as
/// placeholders. Seeds get None.
///
/// A node whose render fails is rendered again as dbt parses it, with
/// `execute` false: when that fails too, the project does not load (dbt
/// stops its parse there: a Jinja syntax error, a call of an unknown macro,
/// a `ref` to nothing); when it succeeds, its refs and config place the node
/// in the DAG, and the first error is the node's, to fail it when it runs
/// while the rest of the project runs (dbt's compile-time error). The first
/// fatal error in file order wins, so messages do not depend on thread timing.
fn render_all(jinja: &JinjaEnv, pending: &[Pending]) -> Result<FirstRenders> {
    let render_one = |node: &Pending| -> Result<(Option<RenderCapture>, Option<Error>)> {
        if node.resource_type == ResourceType::Seed {
            return Ok((None, None));
        }
        let config_only = |file: &crate::project::ProjectFile| {
            let mut request = render_request(node, None);
            request.file = file;
            jinja.render(&request).ok()
        };
        // Disabled by dbt_project.yml or properties: not rendered, unless
        // its own config() enables it again.
        if disabled::says_disabled(&node.base_config)
            && !disabled::own_config(node, config_only)
                .is_some_and(|c| disabled::captured_enabled(&c, true))
        {
            return Ok((Some(RenderCapture::default()), None));
        }
        match jinja.render(&render_request(node, None)) {
            Ok(capture) => Ok((Some(capture), None)),
            Err(error) => match disabled::own_config(node, config_only) {
                // A node that disables itself is not compiled: its render
                // errors do not count, as in dbt.
                Some(capture) if disabled::captured_enabled(&capture, false) => {
                    Ok((Some(capture), None))
                }
                _ => {
                    let mut parse = render_request(node, None);
                    parse.execute = false;
                    let parsed = jinja.render(&parse)?;
                    Ok((Some(parsed), Some(error)))
                }
            },
        }
    };
    crate::base::parallel::map(pending, render_one)
        .into_iter()
        .collect::<Result<Vec<_>>>()
        .map(|rendered| rendered.into_iter().unzip())
}

/// dbt's naming: generate_schema_name, generate_alias_name and
/// generate_database_name, the project's own when it defines them (called
/// with the node being named, as dbt passes it), else dbt's defaults.
fn relation_for(
    jinja: &JinjaEnv,
    node: &Pending,
    config: &Map<String, Json>,
    target: &Target,
) -> Result<Relation> {
    if let Some(relation) = legacy_snapshot_relation(node, config, target) {
        return Ok(relation);
    }
    let custom = |key: &str| {
        config
            .get(key)
            .and_then(Json::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let naming_node = std::sync::OnceLock::new();
    let project_macro = |name: &str, custom: Option<&str>| -> Result<Option<String>> {
        if !jinja.project_defines(name) {
            return Ok(None);
        }
        let node_value = naming_node.get_or_init(|| naming_node_value(node, config));
        let args = [Value::from(custom), node_value.clone()];
        jinja
            .call_macro(name, &args, node_value.clone())
            .map(Some)
            .map_err(|e| e.with_context(&naming_context(node)))
    };
    let custom_schema = custom("schema");
    let generated_schema = project_macro("generate_schema_name", custom_schema)?;
    // weir's prefix convention, CI suffix and deploy shadow: see target::naming.
    let schema = crate::target::naming::node_schema(
        target,
        &jinja.scope().vars,
        custom_schema,
        generated_schema,
    )
    .map_err(|e| e.in_file(&node.file.original_file_path))?;
    let identifier = match project_macro("generate_alias_name", custom("alias"))? {
        Some(alias) => alias,
        None => match (config.get("alias").and_then(Json::as_str), node) {
            (Some(alias), _) => alias.to_string(),
            (None, Pending { test: Some(t), .. }) => t.alias.clone(),
            (
                None,
                Pending {
                    version: Some(v), ..
                },
            ) => v.alias(),
            (None, _) => node.name.clone(),
        },
    };
    let database = match project_macro("generate_database_name", custom("database"))? {
        Some(database) => database,
        None => config
            .get("database")
            .and_then(Json::as_str)
            .unwrap_or(&target.dbname)
            .to_string(),
    };
    Ok(Relation {
        quoting: Default::default(),
        database,
        schema,
        identifier,
    })
}

/// `node` as a project's naming macro sees it: the node being named, with
/// the attributes dbt's parsed node has by then.
fn naming_node_value(node: &Pending, config: &Map<String, Json>) -> Value {
    let tags = crate::project::config::string_list(config.get("tags"));
    let version = node.version.as_ref().map(|v| v.version.v.clone());
    Value::from_serialize(json!({
        "name": node.name,
        "unique_id": node.unique_id,
        "resource_type": node.resource_type.as_str(),
        "package_name": node.package.name,
        "path": node.file.path,
        "original_file_path": node.file.original_file_path,
        "fqn": node.fqn,
        "config": config,
        "tags": tags,
        "raw_code": node.file.text,
        "language": "sql",
        "version": version,
    }))
}

/// `called for seed s (seeds/s.csv)`: the node a naming macro was naming.
fn naming_context(node: &Pending) -> String {
    format!(
        "called for {} {} ({})",
        node.resource_type, node.name, node.file.original_file_path
    )
}

/// A snapshot configured with `target_schema` goes exactly there, as in dbt
/// before 1.9: generate_schema_name is not consulted.
fn legacy_snapshot_relation(
    node: &Pending,
    config: &Map<String, Json>,
    target: &Target,
) -> Option<Relation> {
    if node.resource_type != ResourceType::Snapshot {
        return None;
    }
    let schema = config.get("target_schema").and_then(Json::as_str)?;
    let text = |key: &str, default: &str| {
        config
            .get(key)
            .and_then(Json::as_str)
            .unwrap_or(default)
            .to_string()
    };
    Some(Relation {
        quoting: Default::default(),
        database: text("target_database", &target.dbname),
        schema: schema.to_string(),
        identifier: text("alias", &node.name),
    })
}

/// Replace the first pass's `\u{1a}<unique_id>\u{1a}` markers with relation names.
fn substitute_placeholders(sql: &str, relations: &HashMap<String, Relation>) -> String {
    if !sql.contains(PLACEHOLDER) {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 64);
    for (i, part) in sql.split(PLACEHOLDER).enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        } else if let Some(relation) = relations.get(part) {
            // Writing to a String cannot fail.
            let _ = write!(out, "{relation}");
        }
    }
    out
}

fn build_node(
    node: &Pending,
    mut config: Map<String, Json>,
    capture: Option<RenderCapture>,
    compiled_code: String,
    relation: Relation,
) -> Result<Node> {
    let materialized = config
        .get("materialized")
        .and_then(Json::as_str)
        .unwrap_or("view")
        .to_string();
    let tags = match config.get("tags") {
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        Some(Json::String(tag)) => vec![tag.clone()],
        _ => Vec::new(),
    };
    let tags = match node.test {
        Some(test) => test.node_tags(tags),
        None => tags,
    };
    // A `retries` of the wrong type is reported, with its file and line, by
    // validate::configs.
    let retries = config
        .get("retries")
        .and_then(Json::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let properties = match &node.version {
        Some(version) => Some(&version.properties),
        None => nodes::properties_of(node.package.properties()?, node.resource_type, &node.name),
    };
    let tags = match &node.version {
        Some(version) => {
            let call = capture.as_ref().map(|c| c.config.lock().unwrap().clone());
            version.apply_file_config(&mut config, tags, &call.unwrap_or_default())
        }
        None => tags,
    };
    let (refs, depends_on_nodes, sources, source_ids, macros) = match capture {
        Some(c) => (
            c.refs.into_inner().unwrap(),
            c.ref_ids.into_inner().unwrap(),
            c.sources.into_inner().unwrap(),
            c.source_ids.into_inner().unwrap(),
            c.macros.into_inner().unwrap(),
        ),
        None => Default::default(),
    };
    let mut depends_on = source_ids;
    depends_on.extend(depends_on_nodes);
    let mut macros = macros;
    if let Some(test) = node.test {
        // dbt lists the test's own macro first, its arguments' helpers after.
        let own = macros
            .iter()
            .position(|m| m.ends_with(&format!(".{}", test.macro_name)));
        if let Some(position) = own {
            let own = macros.remove(position);
            macros.insert(0, own);
        }
    }
    let (raw_code, checksum) = match (node.test, node.resource_type) {
        (Some(test), _) => (test.raw_code.clone(), String::new()),
        (None, ResourceType::Seed) => (
            String::new(),
            crate::base::hash::sha256_hex(node.checksum_text.trim()),
        ),
        (None, _) => (
            node.file.text.trim().to_string(),
            crate::base::hash::sha256_hex(node.checksum_text.trim()),
        ),
    };
    let description = match (node.test, properties) {
        (Some(test), _) => test.description.clone(),
        (None, Some(p)) => p.description.clone(),
        (None, None) => String::new(),
    };
    Ok(Node {
        unique_id: node.unique_id.clone(),
        name: node.name.clone(),
        resource_type: node.resource_type,
        package_name: node.package.name.clone(),
        path: node.file.path.clone(),
        original_file_path: node.file.original_file_path.clone(),
        fqn: node.fqn.clone(),
        checksum,
        materialization: Materialization::parse(&materialized),
        config,
        tags,
        description,
        columns: properties.map(|p| p.columns.clone()).unwrap_or_default(),
        relation,
        raw_code,
        compiled_code,
        depends_on_nodes: depends_on,
        depends_on_macros: macros,
        refs,
        sources,
        retries,
        test: node.test.map(|t| t.metadata.clone()),
        patch_path: properties.map(|p| p.file.clone()),
        extra_ctes: Vec::new(),
        version: node.version.as_ref().map(|v| Box::new(v.version.v.clone())),
        latest_version: node.version.as_ref().map(|v| Box::new(v.latest.clone())),
        render_error: None,
    })
}

/// Every node, parents first; a cycle is an error in the file of a node on it.
fn dag_order(project: &Project, nodes: &BTreeMap<String, Node>) -> Result<Vec<String>> {
    let dag = Dag::new(
        nodes
            .values()
            .map(|n| (n.unique_id.as_str(), n.depends_on_nodes.as_slice())),
    );
    dag.order().map_err(|e| {
        let first = e.message().split('`').nth(1).unwrap_or("");
        match nodes.values().find(|n| n.name == first) {
            Some(node) => e.in_file(project.root.join(&node.original_file_path)),
            None => e,
        }
    })
}

fn edge_maps(
    nodes: &BTreeMap<String, Node>,
    sources: &BTreeMap<String, SourceNode>,
    exposures: &BTreeMap<String, crate::manifest::Exposure>,
) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>) {
    let parent_map: BTreeMap<String, Vec<String>> = nodes
        .values()
        .map(|n| (&n.unique_id, &n.depends_on_nodes))
        .chain(
            exposures
                .values()
                .map(|e| (&e.unique_id, &e.depends_on_nodes)),
        )
        .map(|(id, depends_on)| {
            let mut parents = depends_on.clone();
            parents.sort();
            (id.clone(), parents)
        })
        .chain(sources.keys().map(|id| (id.clone(), Vec::new())))
        .collect();
    let mut child_map: BTreeMap<String, Vec<String>> = parent_map
        .keys()
        .map(|id| (id.clone(), Vec::new()))
        .collect();
    // Children are pushed in the parent map's order: each list comes out sorted.
    for (id, parents) in &parent_map {
        for parent in parents {
            if let Some(children) = child_map.get_mut(parent) {
                children.push(id.clone());
            }
        }
    }
    (parent_map, child_map)
}
