//! The Jinja environment models are rendered in: `ref`, `source`, `config`,
//! `var`, `env_var`, `target`, `this` and the project's macros, as dbt defines them.

mod context;
pub mod macros;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::{Rest, Value};
use minijinja::{Environment, State, UndefinedBehavior};
use serde_json::{Map, Value as Json};

use context::{ConfigObject, RefFunction, RelationValue, SourceFunction, VarFunction};
pub use context::{PLACEHOLDER, RenderCapture};
use macros::{MACRO_MODULE, MacroModule};

use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Relation;
use crate::project::ProjectFile;

/// What every render of one compile shares: the names `ref` and `source`
/// can reach, the vars, and the target.
#[derive(Debug, Default)]
pub struct CompileScope {
    pub project_name: String,
    /// Model and seed name -> unique_id.
    pub nodes_by_name: HashMap<String, String>,
    /// (source name, table name) -> (unique_id, relation).
    pub sources: HashMap<(String, String), (String, Relation)>,
    /// Project vars overlaid with --vars.
    pub vars: Map<String, Json>,
    /// `target` as models see it (never the password).
    pub target: Map<String, Json>,
}

/// One node to render.
pub struct RenderRequest<'a> {
    pub file: &'a ProjectFile,
    pub unique_id: &'a str,
    /// Config from dbt_project.yml and properties, before the file's config().
    pub base_config: &'a Map<String, Json>,
    /// `model` as the template sees it.
    pub model: Value,
    /// Resolved relations by unique_id; None on the first pass, when `ref`
    /// and `this` render as placeholders.
    pub relations: Option<&'a Arc<HashMap<String, Relation>>>,
}

/// A Jinja environment loaded with a project's macros.
pub struct JinjaEnv {
    env: Environment<'static>,
    /// The project root, so errors name files as the user can open them.
    root: PathBuf,
    macros: MacroModule,
    scope: Arc<CompileScope>,
}

impl JinjaEnv {
    pub fn new(root: &Path, macro_files: &[ProjectFile], scope: CompileScope) -> Result<JinjaEnv> {
        let macros = MacroModule::build(root, macro_files);
        let mut env = base_environment();
        env.add_template_owned(MACRO_MODULE, macros.source.clone())
            .map_err(|e| convert_error(&e, &macros, Path::new("macros"), None))?;
        for (name, _) in &macros.names {
            let macro_name = name.clone();
            env.add_function(name.clone(), move |state: &State, args: Rest<Value>| {
                call_project_macro(state, &macro_name, &args)
            });
        }
        Ok(JinjaEnv {
            env,
            root: root.to_path_buf(),
            macros,
            scope: Arc::new(scope),
        })
    }

    pub fn scope(&self) -> &CompileScope {
        &self.scope
    }

    /// True when the project defines a macro with this name (an override of a built-in).
    pub fn has_macro(&self, name: &str) -> bool {
        self.macros.defines(name)
    }

    /// Render a node's SQL, capturing its refs, sources and config() calls.
    pub fn render(&self, request: &RenderRequest<'_>) -> Result<RenderCapture> {
        let capture = Arc::new(RenderCapture::default());
        let this = match request.relations {
            Some(relations) => RelationValue::resolved(relations.get(request.unique_id).cloned()),
            None => RelationValue::placeholder(request.unique_id, &capture),
        };
        let ctx = minijinja::context! {
            ref => Value::from_object(RefFunction {
                scope: self.scope.clone(),
                capture: capture.clone(),
                relations: request.relations.cloned(),
            }),
            source => Value::from_object(SourceFunction { scope: self.scope.clone(), capture: capture.clone() }),
            config => Value::from_object(ConfigObject {
                base: request.base_config.clone(),
                capture: capture.clone(),
            }),
            var => Value::from_object(VarFunction { scope: self.scope.clone() }),
            target => Value::from_serialize(&self.scope.target),
            this => Value::from_object(this),
            model => request.model.clone(),
            project_name => self.scope.project_name.clone(),
        };
        let file = &self.root.join(&request.file.original_file_path);
        let template = self
            .env
            .template_from_named_str(&request.file.original_file_path, &request.file.text)
            .map_err(|e| convert_error(&e, &self.macros, file, Some(&request.file.text)))?;
        let sql = template
            .render(ctx)
            .map_err(|e| convert_error(&e, &self.macros, file, Some(&request.file.text)))?;
        let mut capture = Arc::try_unwrap(capture).unwrap_or_else(|shared| shared.snapshot());
        capture.sql = sql;
        Ok(capture)
    }

    /// Call a macro of the project by name with string arguments, for the
    /// overridable naming macros (generate_schema_name and friends).
    pub fn call_macro(&self, name: &str, args: &[Value], model: Value) -> Result<String> {
        let ctx = minijinja::context! {
            target => Value::from_serialize(&self.scope.target),
            var => Value::from_object(VarFunction { scope: self.scope.clone() }),
            model => model,
        };
        let template = self
            .env
            .get_template(MACRO_MODULE)
            .map_err(|e| convert_error(&e, &self.macros, Path::new("macros"), None))?;
        let module = template
            .render_captured(ctx)
            .map_err(|e| convert_error(&e, &self.macros, Path::new("macros"), None))?;
        module
            .state()
            .call_macro(name, args)
            .map(|s| s.trim().to_string())
            .map_err(|e| convert_error(&e, &self.macros, Path::new("macros"), None))
    }
}

/// The settings and functions shared by every environment weir makes.
fn base_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_keep_trailing_newline(false);
    env.add_function("env_var", env_var);
    env.add_function("is_incremental", || false);
    env.add_function("log", |_msg: Value, _rest: Rest<Value>| String::new());
    env.add_global("execute", true);
    env
}

/// Call a project macro from any template: the macro module is evaluated
/// with the caller's dbt context, so `ref`, `this`, `config` keep working.
fn call_project_macro(
    state: &State,
    name: &str,
    args: &[Value],
) -> Result<Value, minijinja::Error> {
    let mut ctx = std::collections::BTreeMap::new();
    for key in [
        "ref",
        "source",
        "config",
        "var",
        "target",
        "this",
        "model",
        "project_name",
    ] {
        if let Some(value) = state.lookup(key) {
            ctx.insert(key, value);
        }
    }
    let template = state.env().get_template(MACRO_MODULE)?;
    let module = template.render_captured(Value::from(ctx))?;
    module
        .state()
        .call_macro(name, args)
        .map(Value::from_safe_string)
}

/// `env_var(name, default)`: the environment variable, or the default, or an error.
fn env_var(name: String, default: Option<Value>) -> Result<String, minijinja::Error> {
    match std::env::var(&name) {
        Ok(value) => Ok(value),
        Err(_) => match default {
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
    let env = base_environment();
    env.render_str(text, minijinja::context! {})
        .map_err(|e| convert_error(&e, &MacroModule::default(), Path::new(""), Some(text)))
}

/// Turn a minijinja error into a weir error that names the file and line
/// (the macro file when the error happened inside a macro).
fn convert_error(
    err: &minijinja::Error,
    macros: &MacroModule,
    file: &Path,
    source_text: Option<&str>,
) -> Error {
    let mut message = match err.detail() {
        Some(detail) => detail.to_string(),
        None => err.kind().to_string(),
    };
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        message.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    let mut error = Error::new(ErrorKind::Template, message);
    match (err.name(), err.line()) {
        (Some(MACRO_MODULE), Some(line)) => {
            if let Some((macro_file, macro_line)) = macros.locate(line) {
                error = error.in_file(macro_file).at_line(macro_line);
            }
            if let Some(text) = macros.source.lines().nth(line - 1) {
                error = error.with_snippet(text.trim_end());
            }
        }
        (_, Some(line)) => {
            error = error.in_file(file).at_line(line);
            if let Some(text) = source_text.and_then(|s| s.lines().nth(line - 1)) {
                error = error.with_snippet(text.trim_end());
            }
        }
        _ => {}
    }
    if file.as_os_str().is_empty() {
        error
    } else {
        error.in_file(file)
    }
}
