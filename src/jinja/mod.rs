//! The Jinja environment models are rendered in: `ref`, `source`, `config`,
//! `var`, `env_var`, `target`, `this` and the project's macros, as dbt defines them.

mod builtins;
mod column;
pub(crate) mod context;
pub mod database;
pub mod macros;
mod modules;
mod mutable;
pub mod native;
mod relation;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::{Rest, Value};
use minijinja::{Environment, State, UndefinedBehavior};
use serde_json::{Map, Value as Json};

use context::{ConfigObject, RefFunction, SourceFunction, VarFunction};
pub use context::{ModelInfo, PLACEHOLDER, RenderCapture};
use macros::Macros;

use crate::base::secrets::SECRET_ENV_PREFIX;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Relation;
use crate::project::{Project, ProjectFile};

/// What every render of one compile shares: the names `ref` and `source`
/// can reach, the vars, and the target.
#[derive(Debug)]
pub struct CompileScope {
    pub project_name: String,
    /// Model and seed name -> unique_ids (one per package that has it).
    pub nodes_by_name: HashMap<String, Vec<String>>,
    /// (source name, table name) -> (unique_id, relation), one per package.
    pub sources: HashMap<(String, String), Vec<(String, Relation)>>,
    /// The root project's vars overlaid with --vars.
    pub vars: Map<String, Json>,
    /// The vars of each package (not the root), layered as dbt does.
    pub package_vars: HashMap<String, Map<String, Json>>,
    /// `target` as models see it (never the password).
    pub target: Map<String, Json>,
    /// Keys of `target` whose values came from a secret env var: reading
    /// one is an error.
    pub target_secrets: std::collections::BTreeSet<String>,
    pub invocation_id: String,
    /// When the run started: `run_started_at`, a UTC datetime as in dbt.
    pub run_started_at: std::time::SystemTime,
}

impl CompileScope {
    /// What `ref` reaches from a node of `current_package`: the node of the
    /// named package, else of the current package, else of the root project,
    /// else of any package, as dbt resolves it.
    pub fn resolve_ref(
        &self,
        current_package: &str,
        package: Option<&str>,
        name: &str,
    ) -> Option<&str> {
        let candidates = self.nodes_by_name.get(name)?;
        pick(
            candidates,
            |id| package_of(id),
            current_package,
            package,
            &self.project_name,
        )
        .map(String::as_str)
    }

    /// What `source` reaches from a node of `current_package`.
    pub fn resolve_source(
        &self,
        current_package: &str,
        source: &str,
        table: &str,
    ) -> Option<&(String, Relation)> {
        let candidates = self.sources.get(&(source.to_string(), table.to_string()))?;
        pick(
            candidates,
            |(id, _)| package_of(id),
            current_package,
            None,
            &self.project_name,
        )
    }
}

/// `model.<package>.<name>` -> `<package>`.
fn package_of(unique_id: &str) -> &str {
    unique_id.split('.').nth(1).unwrap_or_default()
}

fn pick<'a, T>(
    candidates: &'a [T],
    package_of: impl Fn(&T) -> &str,
    current: &str,
    wanted: Option<&str>,
    root: &str,
) -> Option<&'a T> {
    let in_package = |p: &str| candidates.iter().find(|c| package_of(c) == p);
    match wanted {
        Some(package) => in_package(package),
        None => in_package(current)
            .or_else(|| in_package(root))
            .or_else(|| candidates.first()),
    }
}

/// One node to render.
pub struct RenderRequest<'a> {
    pub file: &'a ProjectFile,
    /// The package the node belongs to, for `ref` and `source` resolution.
    pub package: &'a str,
    pub unique_id: &'a str,
    /// Config from dbt_project.yml and properties, before the file's config().
    pub base_config: &'a Arc<Map<String, Json>>,
    /// `model` as the template sees it.
    pub model: Value,
    /// Resolved relations by unique_id; None on the first pass, when `ref`
    /// and `this` render as placeholders.
    pub relations: Option<&'a Arc<HashMap<String, Relation>>>,
    /// For a generic test: the arguments its macro is called with.
    pub generic_test: Option<GenericTestCall<'a>>,
    /// `graph` once every node is known (see [`flat_graph`]); None while
    /// nodes are rendered the first time, when reading `graph` marks the
    /// capture's `read_graph`.
    pub graph: Option<Value>,
    /// `execute`: false renders as dbt parses (see [`JinjaEnv::render`]).
    pub execute: bool,
}

/// The call a generic test node makes: `{{ test_x(**_dbt_generic_test_kwargs) }}`.
pub struct GenericTestCall<'a> {
    /// The macro's arguments as declared (`model` is a Jinja string).
    pub kwargs: &'a Map<String, Json>,
    /// The tested model's name, when `model` is `get_where_subquery(ref(name))`
    /// and the test has no `where` config: the relation can be used as is.
    pub plain_model_ref: Option<&'a crate::manifest::RefCall>,
}

/// The name prefix of generic test templates: the rest of the name is the source.
const GENERIC_TEST_TEMPLATE: &str = "__weir_generic_test__:";

/// A Jinja environment loaded with a project's macros.
pub struct JinjaEnv {
    env: Environment<'static>,
    /// The project root, so errors name files as the user can open them.
    root: PathBuf,
    /// Each package's folder, by name, for the files of its nodes.
    roots: HashMap<String, PathBuf>,
    macros: Macros,
    scope: Arc<CompileScope>,
    /// `target`, converted once.
    target: Value,
}

impl JinjaEnv {
    /// An environment with the macros of `project` and its packages: each
    /// macro callable by name, and as `<package>.<name>`.
    pub fn new(project: &Project, scope: CompileScope) -> Result<JinjaEnv> {
        let macros = Macros::load(project)?;
        let mut env = base_environment();
        env.add_function("return", macros::return_value);
        // Generic tests of one kind share their one-line template, and
        // weir's built-in macros have one each: compiled on first use only,
        // and cached by the environment.
        env.set_loader(|name| {
            Ok(match name.strip_prefix(GENERIC_TEST_TEMPLATE) {
                Some(text) => Some(text.to_string()),
                None => macros::builtin_template(name),
            })
        });
        env.add_global("invocation_id", scope.invocation_id.clone());
        let debug_log = crate::logs::DebugLog::new(&project.log_dir(), &scope.invocation_id);
        env.add_function("log", move |args: Rest<Value>| {
            builtins::log(Some(&debug_log), &args)
        });
        env.add_global(
            "run_started_at",
            Value::from_object(modules::datetime::DateTime::run_started_at(
                scope.run_started_at,
            )),
        );
        for def in macros
            .all()
            .filter(|d| d.package != macros::BUILTIN_PACKAGE)
        {
            env.add_template_owned(def.template_name.clone(), def.source.clone())
                .map_err(|e| convert_error(&e, &macros, &def.file, Some(&def.source), None))?;
        }
        for def in macros.by_name.values() {
            let (template_name, name) = (def.template_name.clone(), def.name.clone());
            let catch_all = def.catch_all.clone();
            env.add_function(def.name.clone(), move |state: &State, args: Rest<Value>| {
                macros::call_macro(state, &template_name, &name, catch_all.as_deref(), &args)
            });
        }
        let index = Arc::new(builtins::MacroIndex::new(
            &macros,
            &project.name,
            &project.dispatch,
        ));
        for package in macros.by_package.keys() {
            let namespace = builtins::Namespace {
                package: package.clone(),
                index: index.clone(),
            };
            env.add_global(package.clone(), Value::from_object(namespace));
        }
        env.add_global("adapter", Value::from_object(builtins::Adapter { index }));
        Ok(JinjaEnv {
            env,
            target: target_value(&scope),
            root: project.root.clone(),
            roots: project
                .all_projects()
                .map(|p| (p.name.clone(), p.root.clone()))
                .collect(),
            macros,
            scope: Arc::new(scope),
        })
    }

    pub fn scope(&self) -> &CompileScope {
        &self.scope
    }

    /// True when `package` (or, without one, anything) defines the macro.
    pub fn has_macro_in(&self, package: Option<&str>, name: &str) -> bool {
        match package {
            Some(package) => self
                .macros
                .by_package
                .get(package)
                .is_some_and(|m| m.contains_key(name)),
            None => self.macros.defines(name),
        }
    }

    /// True when the project itself defines the macro (an override of a built-in).
    pub fn project_defines(&self, name: &str) -> bool {
        self.macros
            .by_name
            .get(name)
            .is_some_and(|m| m.package != "dbt")
    }

    pub fn macro_names(&self) -> impl Iterator<Item = &str> {
        self.macros.by_name.keys().map(String::as_str)
    }

    /// Render a node's SQL, capturing its refs, sources and config() calls.
    pub fn render(&self, request: &RenderRequest<'_>) -> Result<RenderCapture> {
        self.render_in(request, false, None)
    }

    /// [`render`](Self::render) with `is_incremental()` answering
    /// `is_incremental` (at run time the database decides what the compile
    /// could not) and `extra` variables in the context (an on-run-end hook's
    /// `results`, `schemas` and `database_schemas`).
    pub fn render_in(
        &self,
        request: &RenderRequest<'_>,
        is_incremental: bool,
        extra: Option<Value>,
    ) -> Result<RenderCapture> {
        macros::refuel();
        let capture = Arc::new(RenderCapture::default());
        let this = match request.relations {
            Some(relations) => context::relation_value(relations.get(request.unique_id)),
            None => Value::from_object(relation::RelationObject::placeholder(
                request.unique_id,
                &capture,
            )),
        };
        let ref_function = Arc::new(RefFunction {
            package: request.package.to_string(),
            scope: self.scope.clone(),
            capture: capture.clone(),
            relations: request.relations.cloned(),
        });
        let ctx = minijinja::context! {
            ref => Value::from_dyn_object(ref_function.clone()),
            source => Value::from_object(SourceFunction {
                package: request.package.to_string(),
                scope: self.scope.clone(),
                capture: capture.clone(),
            }),
            config => Value::from_object(ConfigObject {
                base: Arc::clone(request.base_config),
                capture: capture.clone(),
            }),
            var => Value::from_object(VarFunction {
                scope: self.scope.clone(),
                package: request.package.to_string(),
            }),
            target => self.target.clone(),
            this => this,
            model => match request.model.downcast_object::<ModelInfo>() {
                Some(info) => Value::from_object(context::RenderedModel { info, capture: capture.clone() }),
                None => request.model.clone(),
            },
            project_name => self.scope.project_name.clone(),
            __weir_capture => Value::from_object(context::CaptureHandle(capture.clone())),
            graph => request
                .graph
                .clone()
                .unwrap_or_else(|| Value::from_object(context::GraphProbe(capture.clone()))),
            is_incremental => Value::from_function(move || is_incremental),
            execute => request.execute,
        };
        let ctx = match extra {
            Some(extra) => minijinja::context! { ..ctx, ..extra },
            None => ctx,
        };
        // Errors name the file as the user can open it (a package's node
        // in the package's folder); most renders have none.
        let root = self.roots.get(request.package).unwrap_or(&self.root);
        let file = || root.join(&request.file.original_file_path);
        let source = Some(request.file.text.as_str());
        let caller = Caller {
            root: &self.root,
            unique_id: request.unique_id,
        };
        let ctx = match &request.generic_test {
            Some(call) => {
                let kwargs = self
                    .test_kwargs(call, &ctx, &ref_function, &capture)
                    .map_err(|e| convert_error(&e, &self.macros, &file(), None, Some(&caller)))?;
                minijinja::context! { _dbt_generic_test_kwargs => kwargs, ..ctx }
            }
            None => ctx,
        };
        let text = mutable::rewrite_empty_literals(&request.file.text);
        let template = match request.generic_test {
            Some(_) => self
                .env
                .get_template(&format!("{GENERIC_TEST_TEMPLATE}{text}")),
            None => self
                .env
                .template_from_named_str(&request.file.original_file_path, &text),
        }
        .map_err(|e| convert_error(&e, &self.macros, &file(), source, Some(&caller)))?;
        let sql = template
            .render(ctx)
            .map_err(|e| convert_error(&e, &self.macros, &file(), source, Some(&caller)))?;
        let mut capture = Arc::try_unwrap(capture).unwrap_or_else(|shared| shared.snapshot());
        capture.sql = sql;
        Ok(capture)
    }

    /// The arguments of a generic test's macro, evaluated as dbt does: strings
    /// that look like `ref(...)`, `source(...)`, `var(...)`, `env_var(...)` or
    /// are one `{{ ... }}` are Jinja; `column_name` stays a string. The tested
    /// relation skips get_where_subquery when it could only return it as is.
    fn test_kwargs(
        &self,
        call: &GenericTestCall<'_>,
        ctx: &Value,
        ref_function: &RefFunction,
        capture: &RenderCapture,
    ) -> std::result::Result<Value, minijinja::Error> {
        let mut kwargs = Vec::with_capacity(call.kwargs.len());
        for (key, value) in call.kwargs {
            let value = match (key.as_str(), call.plain_model_ref) {
                ("column_name", _) => Value::from_serialize(value),
                ("model", Some(tested)) if !self.project_defines("get_where_subquery") => {
                    capture.record_macro("macro.dbt.get_where_subquery".to_string());
                    ref_function.resolve(tested.clone())?
                }
                _ => self.evaluate_argument(value, ctx)?,
            };
            kwargs.push((key.clone(), value));
        }
        Ok(Value::from_iter(kwargs))
    }

    fn evaluate_argument(
        &self,
        value: &Json,
        ctx: &Value,
    ) -> std::result::Result<Value, minijinja::Error> {
        Ok(match value {
            Json::String(text) => match jinja_expression(text) {
                Some(expression) => self.env.compile_expression(expression)?.eval(ctx)?,
                None => Value::from(text.as_str()),
            },
            // Lists and dicts from YAML can be changed in place, as in dbt.
            Json::Array(items) => mutable::new_list(Some(Value::from(
                items
                    .iter()
                    .map(|item| self.evaluate_argument(item, ctx))
                    .collect::<std::result::Result<Vec<_>, _>>()?,
            )))?,
            Json::Object(map) => mutable::new_dict(Some(Value::from_iter(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.evaluate_argument(v, ctx)?)))
                    .collect::<std::result::Result<Vec<_>, minijinja::Error>>()?,
            )))?,
            other => Value::from_serialize(other),
        })
    }

    /// Call a macro of the project by name, for the overridable naming macros
    /// (generate_schema_name and friends). Returns its output, trimmed.
    pub fn call_macro(&self, name: &str, args: &[Value], model: Value) -> Result<String> {
        let def = &self.macros.by_name[name];
        macros::refuel();
        let ctx = minijinja::context! {
            target => self.target.clone(),
            var => Value::from_object(VarFunction {
                scope: self.scope.clone(),
                package: self.scope.project_name.clone(),
            }),
            model => model,
        };
        let catch_all = def.catch_all.as_deref();
        macros::invoke(&self.env, &def.template_name, name, catch_all, args, ctx)
            .map(|value| value.to_string().trim().to_string())
            .map_err(|e| {
                let caller = Caller {
                    root: &self.root,
                    unique_id: "",
                };
                convert_error(
                    &e,
                    &self.macros,
                    &def.file,
                    Some(&def.source),
                    Some(&caller),
                )
            })
    }
}

/// dbt's flat graph, as templates read it through `graph`: each node,
/// source and exposure as the manifest writes it, by unique_id.
pub fn flat_graph(
    nodes: &std::collections::BTreeMap<String, crate::manifest::Node>,
    sources: &std::collections::BTreeMap<String, crate::manifest::SourceNode>,
    exposures: &std::collections::BTreeMap<String, crate::manifest::Exposure>,
) -> Value {
    let mut graph = Map::new();
    for key in context::GRAPH_KEYS {
        let collection = match key {
            "nodes" => serde_json::to_value(nodes),
            "sources" => serde_json::to_value(sources),
            "exposures" => serde_json::to_value(exposures),
            _ => Ok(Json::Object(Map::new())),
        };
        graph.insert(key.to_string(), collection.unwrap_or(Json::Null));
    }
    Value::from_serialize(graph)
}

/// The Jinja expression a generic test argument stands for, if any: the
/// inside of a lone `{{ ... }}`, or a call of ref/source/var/env_var/doc.
fn jinja_expression(text: &str) -> Option<&str> {
    let trimmed = text.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        && !inner.contains("{{")
    {
        return Some(inner.trim());
    }
    let is_call = ["env_var", "ref", "var", "source", "doc"]
        .iter()
        .any(|name| {
            trimmed
                .strip_prefix(name)
                .map(str::trim_start)
                .and_then(|rest| rest.strip_prefix('('))
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with(')'))
        });
    is_call.then_some(trimmed)
}

/// The settings and functions shared by every environment weir makes.
/// What `side_effect()` renders: a mark that the side-effect gate
/// (target::side_effects) finds and removes.
pub const SIDE_EFFECT_MARK: &str = "/*\u{1}weir:side-effect\u{1}*/";

fn base_environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Everything rendered is SQL: no HTML or JSON escaping, whatever the
    // file (hooks from dbt_project.yml would otherwise be JSON-quoted).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_keep_trailing_newline(false);
    env.set_fuel(Some(macros::FUEL));
    env.set_formatter(macros::counting_formatter);
    env.add_function("env_var", env_var);
    env.add_function("is_incremental", || false);
    // Marks a hook or macro as a side effect: see target::side_effects.
    env.add_function("side_effect", || SIDE_EFFECT_MARK.to_string());
    env.add_global("execute", true);
    env.add_global("modules", Value::from_object(modules::Modules));
    builtins::register(&mut env);
    native::register(&mut env);
    env.add_function(mutable::NEW_LIST, mutable::new_list);
    env.add_function(mutable::NEW_DICT, mutable::new_dict);
    env.add_function(mutable::BOUNDED, mutable::bounded);
    env
}

/// `env_var(name, default)` in models, macros and YAML. As in dbt, a secret
/// is refused: only profiles.yml may read one, so its value can never reach
/// compiled SQL, the manifest or a log.
fn env_var(name: String, default: Option<Value>) -> Result<String, minijinja::Error> {
    if name.starts_with(SECRET_ENV_PREFIX) {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!(
                "env var `{name}` is a secret ({SECRET_ENV_PREFIX}*): secrets may be read only in \
                 profiles.yml, never where they could end up in SQL, artifacts or logs"
            ),
        ));
    }
    env_var_value(name, default)
}

/// `env_var(name, default)`: the environment variable, or the default, or an error.
fn env_var_value(name: String, default: Option<Value>) -> Result<String, minijinja::Error> {
    match crate::base::env_vars::env_var(&name) {
        Some(value) => Ok(value),
        None => match default {
            Some(value) if !value.is_undefined() => Ok(value.to_string()),
            _ => Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("env var `{name}` is not set and has no default"),
            )),
        },
    }
}

/// Render a string that only needs `env_var` (profiles.yml, source schemas).
pub fn render_standalone(text: &str) -> Result<String> {
    macros::refuel();
    let env = base_environment();
    env.render_str(text, minijinja::context! {})
        .map_err(|e| convert_error(&e, &Macros::default(), Path::new(""), Some(text), None))
}

/// Render a profiles.yml value: `env_var` may read secrets there. Also says
/// whether it read one: models may not see such a value (see [`CompileScope::target_secrets`]).
pub fn render_profile_value(text: &str) -> Result<(Json, bool)> {
    macros::refuel();
    let mut env = base_environment();
    let read_secret = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&read_secret);
    env.add_function("env_var", move |name: String, default: Option<Value>| {
        if name.starts_with(SECRET_ENV_PREFIX) {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        env_var_value(name, default)
    });
    let rendered = native::render(&env, text, minijinja::context! {})
        .map_err(|e| convert_error(&e, &Macros::default(), Path::new(""), Some(text), None))?;
    Ok((
        rendered,
        read_secret.load(std::sync::atomic::Ordering::Relaxed),
    ))
}

/// Renders the YAML values dbt renders (dbt_project.yml's config blocks,
/// properties files, data tests' configs) natively, with `target`, `var`
/// and `env_var`, as dbt's YAML renderers do.
pub struct YamlRenderer {
    env: Environment<'static>,
    target: Value,
    /// Each package's vars (the root's included), as models see them.
    package_vars: HashMap<String, Map<String, Json>>,
    /// `--vars`: all that `var()` sees in dbt_project.yml.
    cli_vars: Map<String, Json>,
}

impl YamlRenderer {
    pub fn new(
        target: &Map<String, Json>,
        target_secrets: &std::collections::BTreeSet<String>,
        package_vars: HashMap<String, Map<String, Json>>,
        cli_vars: Map<String, Json>,
    ) -> YamlRenderer {
        YamlRenderer {
            env: base_environment(),
            target: target_value_of(target, target_secrets),
            package_vars,
            cli_vars,
        }
    }
}

impl crate::project::rendering::Render for YamlRenderer {
    fn render(&self, package: &str, in_project_file: bool, text: &str) -> Result<Json> {
        macros::refuel();
        let vars = match in_project_file {
            true => self.cli_vars.clone(),
            false => self
                .package_vars
                .get(package)
                .cloned()
                .unwrap_or_else(|| self.cli_vars.clone()),
        };
        let var = Value::from_function(
            move |name: String,
                  default: Option<Value>|
                  -> std::result::Result<Value, minijinja::Error> {
                match (vars.get(&name), default) {
                    (Some(value), _) => Ok(Value::from_serialize(value)),
                    (None, Some(default)) => Ok(default),
                    (None, None) => Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!(
                            "required var `{name}` is not set: add it under `vars:` in \
                             dbt_project.yml or pass --vars"
                        ),
                    )),
                }
            },
        );
        let ctx = minijinja::context! { target => self.target.clone(), var => var };
        native::render(&self.env, text, ctx)
            .map_err(|e| convert_error(&e, &Macros::default(), Path::new(""), Some(text), None))
    }
}

/// `target` as templates see it: a key whose value came from a secret env
/// var fails when read, as dbt refuses a secret outside profiles.yml (a
/// model could otherwise put a reversed or spaced copy, which no scrub
/// recognises, into SQL, artifacts and the database).
fn target_value(scope: &CompileScope) -> Value {
    target_value_of(&scope.target, &scope.target_secrets)
}

fn target_value_of(
    target: &Map<String, Json>,
    secrets: &std::collections::BTreeSet<String>,
) -> Value {
    target
        .iter()
        .map(|(key, value)| {
            let value = match secrets.contains(key) {
                true => Value::from(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!(
                        "`target.{key}` is read from a secret env var ({SECRET_ENV_PREFIX}*) in \
                         profiles.yml: secret env vars are allowed only in profiles.yml or \
                         packages.yml, never where they could end up in SQL, artifacts or logs"
                    ),
                )),
                false => Value::from_serialize(value),
            };
            (key.clone(), value)
        })
        .collect()
}

/// A `+` or `-` that minijinja refused between objects: most likely
/// datetime arithmetic, which weir spells as methods.
fn is_datetime_operator(message: &str, line: &str) -> bool {
    let plus_or_minus = ["tried to use + operator", "tried to use - operator"]
        .iter()
        .any(|op| message.contains(op));
    plus_or_minus
        && (message.contains("plain object")
            || ["datetime", "timedelta", "run_started_at"]
                .iter()
                .any(|word| line.contains(word)))
}

/// Who a template was rendered for, so that an error inside a macro names
/// the chain of calls that led there.
struct Caller<'a> {
    /// The root project's folder: paths in the chain are relative to it.
    root: &'a Path,
    /// The node rendered, if one was (else empty).
    unique_id: &'a str,
}

impl Caller<'_> {
    /// `model m` for `model.p.m`, as the chain names the node.
    fn node(&self) -> Option<String> {
        let (kind, rest) = self.unique_id.split_once('.')?;
        let (_, name) = rest.split_once('.')?;
        // A generic test's id ends in a hash after its name.
        let name = match kind {
            "test" => name.split('.').next().unwrap_or(name),
            _ => name,
        };
        Some(format!("{kind} {name}"))
    }
}

/// `in macro b (macros/b.sql:3), called from macro a (macros/a.sql:7),
/// called from model m (models/m.sql:1)`: None unless the error is inside a macro.
fn call_chain(
    frames: &[(&str, usize)],
    macros: &Macros,
    file: &Path,
    caller: &Caller,
) -> Option<String> {
    let (innermost, _) = frames.first()?;
    macros.of_template(innermost)?;
    let relative = |path: &Path| {
        path.strip_prefix(caller.root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let steps: Vec<String> = frames
        .iter()
        .filter_map(|(name, line)| match macros.of_template(name) {
            Some(def) => Some(format!(
                "macro {} ({}:{line})",
                def.name,
                relative(&def.file)
            )),
            // A generic test's one-line template has no line of the YAML.
            None if name.starts_with(GENERIC_TEST_TEMPLATE) => caller
                .node()
                .map(|node| format!("{node} ({})", relative(file))),
            None => caller
                .node()
                .map(|node| format!("{node} ({}:{line})", relative(file))),
        })
        .collect();
    Some(format!("in {}", steps.join(", called from ")))
}

/// Turn a minijinja error into a weir error that names the file and line
/// (the macro's file when the error happened inside a macro) and, for a
/// render, the calls that led into the macro.
fn convert_error(
    err: &minijinja::Error,
    macros: &Macros,
    file: &Path,
    source_text: Option<&str>,
    caller: Option<&Caller>,
) -> Error {
    let (err, frames) = macros::frames(err);
    let node_file = file;
    let mut message = match err.detail() {
        Some(detail) => detail.to_string(),
        None => err.kind().to_string(),
    };
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        message.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    let undefined_call = message.contains("undefined is not callable");
    // `ref` and `source` name what they cannot find this way (see context.rs).
    let missing = (message.starts_with("model `") || message.starts_with("source `"))
        && message.contains("` not found");
    let kind = if missing {
        ErrorKind::MissingNode
    } else if message.contains(database::NEEDS_DATABASE) {
        ErrorKind::NeedsDatabase
    } else {
        ErrorKind::Template
    };
    let mut error = match err.kind() {
        minijinja::ErrorKind::OutOfFuel => Error::new(
            kind,
            format!(
                "this template ran more than {} Jinja instructions ({message}): \
                 a loop or a recursion that does not end?",
                macros::FUEL
            ),
        )
        .with_hint(
            "the line shown is where it stopped; look for the loop or the macro that calls itself",
        ),
        _ if message.contains("recursion limit exceeded")
            || message.contains("macro calls nested more than") =>
        {
            Error::new(kind, message.clone())
                .with_hint("a macro calls itself (or another that calls it back) without end")
        }
        _ => Error::new(kind, message.clone()),
    };
    if undefined_call {
        error = error.with_hint("a function or macro called on this line is not defined: check its name, and that its file is under macro-paths");
    }
    let (file, text) = match err.name().and_then(|name| macros.of_template(name)) {
        Some(def) => (def.file.as_path(), Some(def.source.as_str())),
        None => (file, source_text),
    };
    if let Some(line) = err.line() {
        error = error.at_line(line);
        if let Some(text) = text.and_then(|t| t.lines().nth(line - 1)) {
            if is_datetime_operator(&message, text) {
                error = error.with_hint(
                    "minijinja cannot overload `+` and `-`, so weir's datetime, date and \
                     timedelta have methods for them: write `a.plus(b)` for `a + b` and \
                     `a.minus(b)` for `a - b`, e.g. \
                     `run_started_at.minus(modules.datetime.timedelta(days=1))`",
                );
            }
            error = error.with_snippet(text.trim_end());
        }
    }
    if let Some(chain) = caller.and_then(|c| call_chain(&frames, macros, node_file, c)) {
        error = error.with_context(&chain);
    }
    if file.as_os_str().is_empty() {
        error
    } else {
        error.in_file(file)
    }
}
