//! The per-render objects of dbt's Jinja context: `ref`, `source`, `config`,
//! `var` and relations. Each render records what the template called.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error as JinjaError, ErrorKind as JinjaErrorKind, State};
use serde_json::{Map, Value as Json};

use super::CompileScope;
use super::relation::RelationObject;
use crate::manifest::{RefCall, Relation};
use crate::project::versions::{describe_versions, ref_key, ref_version, version_text};

/// Marks a relation that is not resolved yet on the first pass:
/// `\u{1a}<unique_id>\u{1a}` is replaced by the relation name afterwards.
pub const PLACEHOLDER: char = '\u{1a}';

/// What one render produced and what the template asked for.
#[derive(Debug, Default)]
pub struct RenderCapture {
    pub sql: String,
    /// `ref` calls as written.
    pub refs: Mutex<Vec<RefCall>>,
    /// unique_ids of the nodes referenced, in first-use order.
    pub ref_ids: Mutex<Vec<String>>,
    pub sources: Mutex<Vec<[String; 2]>>,
    pub source_ids: Mutex<Vec<String>>,
    /// What the file's config() calls set.
    pub config: Mutex<Map<String, Json>>,
    /// Set when the template looked inside an unresolved relation
    /// (`ref('x').schema`): the placeholder output cannot be trusted and the
    /// node must be rendered again with relations resolved.
    pub needs_final_render: AtomicBool,
    /// `macro.<package>.<name>` of the macros the node calls directly.
    pub macros: Mutex<Vec<String>>,
    /// Set when the template read `graph` while it was not complete: the
    /// node is rendered again once every node is known.
    pub read_graph: AtomicBool,
}

impl RenderCapture {
    pub(super) fn snapshot(&self) -> RenderCapture {
        RenderCapture {
            sql: self.sql.clone(),
            refs: Mutex::new(self.refs.lock().unwrap().clone()),
            ref_ids: Mutex::new(self.ref_ids.lock().unwrap().clone()),
            sources: Mutex::new(self.sources.lock().unwrap().clone()),
            source_ids: Mutex::new(self.source_ids.lock().unwrap().clone()),
            config: Mutex::new(self.config.lock().unwrap().clone()),
            needs_final_render: AtomicBool::new(self.needs_final_render.load(Ordering::Relaxed)),
            macros: Mutex::new(self.macros.lock().unwrap().clone()),
            read_graph: AtomicBool::new(self.read_graph.load(Ordering::Relaxed)),
        }
    }

    /// Note a macro the node called (not one called by another macro).
    pub(super) fn record_macro(&self, unique_id: String) {
        RenderCapture::push_unique(&self.macros, unique_id);
    }

    fn push_unique<T: PartialEq>(list: &Mutex<Vec<T>>, item: T) {
        let mut list = list.lock().unwrap();
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// The error for `object.method()` when the object has no such method.
pub(crate) fn unknown_method(object: &str, method: &str) -> JinjaError {
    JinjaError::new(
        JinjaErrorKind::UnknownMethod,
        format!("{object} has no method `{method}`"),
    )
}

fn error(message: impl Into<String>) -> JinjaError {
    JinjaError::new(JinjaErrorKind::InvalidOperation, message.into())
}

/// The capture of the render in progress, reachable from macro calls.
#[derive(Debug)]
pub(super) struct CaptureHandle(pub(super) Arc<RenderCapture>);

impl Object for CaptureHandle {}

/// `graph` while nodes are still being rendered: every collection is empty
/// (as dbt's graph is while it parses), and reading one marks the node for
/// a second render with the whole graph.
#[derive(Debug)]
pub(super) struct GraphProbe(pub(super) Arc<RenderCapture>);

/// The collections of dbt's flat graph.
pub const GRAPH_KEYS: [&str; 8] = [
    "nodes",
    "sources",
    "exposures",
    "metrics",
    "groups",
    "semantic_models",
    "saved_queries",
    "unit_tests",
];

impl Object for GraphProbe {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.read_graph.store(true, Ordering::Relaxed);
        GRAPH_KEYS
            .contains(&key.as_str()?)
            .then(|| Value::from_serialize(Map::new()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.0.read_graph.store(true, Ordering::Relaxed);
        Enumerator::Str(&GRAPH_KEYS)
    }
}

/// Name of the context variable that holds the [`CaptureHandle`].
pub(super) const CAPTURE: &str = "__weir_capture";

/// A resolved node's relation; undefined where there is no node (a project hook).
pub(super) fn relation_value(relation: Option<&Relation>) -> Value {
    match relation {
        Some(relation) => Value::from_object(RelationObject::resolved(relation)),
        None => Value::UNDEFINED,
    }
}

/// `ref('name')`, `ref('package', 'name')`, either with `v=` or `version=`.
#[derive(Debug)]
pub(super) struct RefFunction {
    /// The package of the node being rendered.
    pub(super) package: String,
    pub(super) scope: Arc<CompileScope>,
    pub(super) capture: Arc<RenderCapture>,
    pub(super) relations: Option<Arc<HashMap<String, Relation>>>,
}

impl Object for RefFunction {
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, JinjaError> {
        let (first, second, kwargs): (String, Option<String>, Kwargs) = from_args(args)?;
        let version_argument = |key: &str| -> Result<Option<Json>, JinjaError> {
            match kwargs.get::<Option<Value>>(key)? {
                None => Ok(None),
                Some(v) if v.is_none() || v.is_undefined() => Ok(None),
                Some(v) if v.is_number() || v.as_str().is_some() => serde_json::to_value(&v)
                    .map(Some)
                    .map_err(|e| error(format!("ref(): {e}"))),
                Some(v) => Err(error(format!(
                    "the version argument of ref() must be a string or a number, got `{v}`"
                ))),
            }
        };
        let version = ref_version(version_argument("version")?, version_argument("v")?);
        let (package, name) = match second {
            Some(name) => (Some(first), name),
            None => (None, first),
        };
        self.resolve(RefCall {
            name,
            package,
            version: version.map(Box::new),
        })
    }
}

impl RefFunction {
    /// `ref([package,] name[, v=version])`: the relation, recorded as a dependency.
    pub(super) fn resolve(&self, call: RefCall) -> Result<Value, JinjaError> {
        let name = &call.name;
        let key = ref_key(name, call.version.as_deref());
        let Some(unique_id) = self
            .scope
            .resolve_ref(&self.package, call.package.as_deref(), &key)
        else {
            return Err(error(self.not_found(&call, &key)));
        };
        let unique_id = unique_id.to_string();
        RenderCapture::push_unique(&self.capture.refs, call);
        let value = match &self.relations {
            Some(relations) => relation_value(relations.get(&unique_id)),
            None => Value::from_object(RelationObject::placeholder(&unique_id, &self.capture)),
        };
        RenderCapture::push_unique(&self.capture.ref_ids, unique_id);
        Ok(value)
    }

    /// Why `ref` found nothing: no such model, or no such version of it.
    fn not_found(&self, call: &RefCall, key: &str) -> String {
        let name = &call.name;
        let place = match &call.package {
            Some(package) => format!("package `{package}`"),
            None => "the project or its packages".to_string(),
        };
        let versions = describe_versions(&self.scope.nodes_by_name, name);
        if key != name {
            let version = version_text(call.version.as_deref().unwrap_or(&Json::Null));
            return match versions {
                Some(versions) => format!(
                    "model `{name}` version `{version}` not found: its versions are {versions}"
                ),
                None if self.scope.nodes_by_name.contains_key(name) => format!(
                    "model `{name}` version `{version}` not found: `{name}` is not a versioned model (drop `v=`)"
                ),
                None => format!(
                    "model `{name}` version `{version}` not found: nothing in {place} is named `{name}`"
                ),
            };
        }
        let mut message = format!("model `{name}` not found: nothing in {place} is named `{name}`");
        if let Some(versions) = versions {
            message = format!(
                "model `{name}` not found: it has versions {versions}, but none is its latest (`latest_version:` names a version with no file)"
            );
        } else if let Some(hint) = crate::error::did_you_mean(
            name,
            self.scope
                .nodes_by_name
                .keys()
                .map(String::as_str)
                .filter(|n| !n.contains('.')),
        ) {
            message.push_str(&format!(" ({hint})"));
        }
        message
    }
}

/// `source('source_name', 'table_name')`.
#[derive(Debug)]
pub(super) struct SourceFunction {
    pub(super) package: String,
    pub(super) scope: Arc<CompileScope>,
    pub(super) capture: Arc<RenderCapture>,
}

impl Object for SourceFunction {
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, JinjaError> {
        let (source_name, table_name): (String, String) = from_args(args)?;
        let Some((unique_id, relation)) =
            self.scope
                .resolve_source(&self.package, &source_name, &table_name)
        else {
            let known: Vec<String> = self
                .scope
                .sources
                .keys()
                .map(|(s, t)| format!("{s}.{t}"))
                .collect();
            let wanted = format!("{source_name}.{table_name}");
            let mut message =
                format!("source `{wanted}` not found: no properties YAML declares it");
            if let Some(hint) =
                crate::error::did_you_mean(&wanted, known.iter().map(String::as_str))
            {
                message.push_str(&format!(" ({hint})"));
            }
            return Err(error(message));
        };
        RenderCapture::push_unique(&self.capture.sources, [source_name, table_name]);
        RenderCapture::push_unique(&self.capture.source_ids, unique_id.clone());
        Ok(Value::from_object(RelationObject::resolved(relation)))
    }
}

/// `config(...)` to set, `config.get(key, default)` and `config.require(key)` to read.
#[derive(Debug)]
pub(super) struct ConfigObject {
    pub(super) base: Arc<Map<String, Json>>,
    pub(super) capture: Arc<RenderCapture>,
}

impl ConfigObject {
    fn lookup(&self, key: &str) -> Option<Json> {
        self.capture
            .config
            .lock()
            .unwrap()
            .get(key)
            .or_else(|| self.base.get(key))
            .cloned()
    }
}

impl Object for ConfigObject {
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, JinjaError> {
        let mut set = Map::new();
        for arg in args {
            let json: Json =
                serde_json::to_value(arg).map_err(|e| error(format!("config(): {e}")))?;
            match json {
                Json::Object(map) => set.extend(map),
                other => {
                    return Err(error(format!(
                        "config() takes keyword arguments or one dict, got `{other}`"
                    )));
                }
            }
        }
        let mut config = self.capture.config.lock().unwrap();
        crate::project::config::merge_config(&mut config, &set);
        Ok(Value::from(""))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        match method {
            "get" => {
                let (key, default): (String, Option<Value>) = from_args(args)?;
                Ok(match self.lookup(&key) {
                    Some(value) => super::mutable::from_json(&value),
                    None => default.unwrap_or(Value::from(())),
                })
            }
            "require" => {
                let (key,): (String,) = from_args(args)?;
                self.lookup(&key)
                    .map(|value| super::mutable::from_json(&value))
                    .ok_or_else(|| error(format!("config `{key}` is required but not set")))
            }
            other => Err(unknown_method("config", other)),
        }
    }
}

/// `var('name')` and `var('name', default)`.
#[derive(Debug)]
pub(super) struct VarFunction {
    pub(super) scope: Arc<CompileScope>,
    /// The package of the node being rendered: packages see their own vars.
    pub(super) package: String,
}

impl Object for VarFunction {
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, JinjaError> {
        let (name, default): (String, Option<Value>) = from_args(args)?;
        let vars = self
            .scope
            .package_vars
            .get(&self.package)
            .unwrap_or(&self.scope.vars);
        match (vars.get(&name), default) {
            (Some(value), _) => Ok(super::mutable::from_json(value)),
            (None, Some(default)) => Ok(default),
            (None, None) => Err(error(format!(
                "required var `{name}` is not set: add it under `vars:` in dbt_project.yml or pass --vars"
            ))),
        }
    }
}

/// `model` during one render: [`ModelInfo`], with `config` seeing what the
/// node's own `config()` calls set so far, as dbt's does.
#[derive(Debug)]
pub(super) struct RenderedModel {
    pub(super) info: Arc<ModelInfo>,
    pub(super) capture: Arc<RenderCapture>,
}

impl Object for RenderedModel {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if key.as_str()? != "config" {
            return self.info.get_value(key);
        }
        let mut config = Map::clone(&self.info.config);
        crate::project::config::merge_config(&mut config, &self.capture.config.lock().unwrap());
        Some(super::mutable::from_json(&Json::Object(config)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.info.enumerate()
    }
}

/// `model` as templates see it: the node being rendered. Fields are made
/// into values only when a template reads them.
#[derive(Debug)]
pub struct ModelInfo {
    pub name: String,
    pub unique_id: String,
    pub resource_type: &'static str,
    pub original_file_path: String,
    pub path: String,
    pub fqn: Vec<String>,
    pub config: Arc<Map<String, Json>>,
}

impl Object for ModelInfo {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "name" | "alias" => Value::from(self.name.clone()),
            "unique_id" => Value::from(self.unique_id.clone()),
            "resource_type" => Value::from(self.resource_type),
            "original_file_path" => Value::from(self.original_file_path.clone()),
            "path" => Value::from(self.path.clone()),
            "fqn" => Value::from_serialize(&self.fqn),
            "config" => super::mutable::from_json(&Json::Object(Map::clone(&self.config))),
            "package_name" => Value::from(self.unique_id.split('.').nth(1).unwrap_or_default()),
            _ => return None,
        })
    }
}
