//! The functions and objects dbt puts in every template besides `ref` and
//! friends: exceptions, tojson/fromjson, toyaml/fromyaml, zip, set,
//! local_md5, print, log, adapter.dispatch/quote, api.Relation.create, flags.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{Kwargs, Object, Rest, Value, from_args};
use minijinja::{Environment, Error as JinjaError, ErrorKind as JinjaErrorKind, State};

use super::context::unknown_method;

fn error(message: impl Into<String>) -> JinjaError {
    JinjaError::new(JinjaErrorKind::InvalidOperation, message.into())
}

/// Register the dbt builtins that do not depend on the project.
pub fn register(env: &mut Environment<'static>) {
    minijinja_contrib::add_to_environment(env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_global("exceptions", Value::from_object(Exceptions));
    register_queries(env);
    env.add_global("api", Value::from_object(Api));
    env.add_global(
        "flags",
        Value::from_serialize(serde_json::json!({
            "FULL_REFRESH": false, "STORE_FAILURES": false, "WHICH": "compile", "FAIL_FAST": false,
        })),
    );
    env.add_function("tojson", tojson);
    env.add_function("fromjson", fromjson);
    env.add_function("toyaml", toyaml);
    env.add_function("fromyaml", fromyaml);
    env.add_function("zip", zip);
    // dbt's `set` gives none for what is not iterable; weir's fails, as
    // `set_strict` does in dbt, so the mistake is seen where it is made.
    env.add_function("set", set);
    env.add_function("set_strict", set);
    env.add_function("zip_strict", zip);
    env.add_function("local_md5", |text: String| -> String {
        crate::base::hash::md5_hex(&text)
    });
    env.add_function("print", |value: Value| {
        crate::base::env_vars::note_unrepeatable();
        println!("{value}");
        String::new()
    });
    // Until the project is known (profiles.yml), there is no debug log file.
    env.add_function("log", |args: Rest<Value>| log(None, &args));
}

/// `log(msg, info=False)` as dbt has it: the message goes to the debug log
/// (`<log-path>/dbt.log`) and, with `info`, is printed as a log line too.
/// Renders nothing. A compile that logged is never reused from the cache:
/// reusing it would not log again.
pub fn log(debug_log: Option<&crate::logs::DebugLog>, args: &[Value]) -> Result<Value, JinjaError> {
    let (message, info, kwargs): (Value, Option<Value>, Kwargs) = from_args(args)?;
    let info = match info {
        Some(info) => info.is_true(),
        None => kwargs
            .get::<Option<Value>>("info")?
            .is_some_and(|info| info.is_true()),
    };
    kwargs.assert_all_used()?;
    crate::base::env_vars::note_unrepeatable();
    let message = crate::base::secrets::scrub(&message.to_string()).into_owned();
    if info {
        crate::logs::emit(
            "JinjaLogInfo",
            &message,
            serde_json::json!({ "msg": message }),
        );
    }
    if let Some(debug_log) = debug_log {
        debug_log.write(if info { "info" } else { "debug" }, &message);
    }
    Ok(Value::from(""))
}

/// `exceptions.raise_compiler_error(msg)` and `exceptions.warn(msg)`.
#[derive(Debug)]
struct Exceptions;

impl Object for Exceptions {
    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let (message, _rest): (String, Rest<Value>) = from_args(args)?;
        match method {
            "raise_compiler_error" => Err(error(format!("compilation error: {message}"))),
            "warn" => {
                crate::base::env_vars::note_unrepeatable();
                eprintln!("warning: {message}");
                Ok(Value::from(""))
            }
            other => Err(unknown_method("exceptions", other)),
        }
    }
}

/// `api`: `api.Relation` and `api.Column`.
#[derive(Debug)]
struct Api;

impl Object for Api {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "Relation" => Some(Value::from_object(super::relation::RelationFactory)),
            "Column" => Some(Value::from_object(super::column::ColumnFactory)),
            _ => None,
        }
    }
}

/// Where every macro's template is: by package, and the one an unqualified
/// name reaches.
#[derive(Debug)]
pub struct MacroIndex {
    root_package: String,
    /// dbt_project.yml's `dispatch:` search orders by macro namespace.
    search_orders: HashMap<String, Vec<String>>,
    winners: HashMap<String, Target>,
    packages: HashMap<String, HashMap<String, Target>>,
}

/// A macro's template, and its parameters when it takes `varargs`/`kwargs`.
type Target = (String, Option<Arc<super::macros::CatchAll>>);

impl MacroIndex {
    pub fn new(
        macros: &super::macros::Macros,
        root_package: &str,
        dispatch: &[(String, Vec<String>)],
    ) -> MacroIndex {
        let templates = |defs: &std::collections::BTreeMap<String, super::macros::MacroDef>| {
            defs.values()
                .map(|d| {
                    let target = (d.template_name.clone(), d.catch_all.clone());
                    (d.name.clone(), target)
                })
                .collect()
        };
        MacroIndex {
            root_package: root_package.to_string(),
            search_orders: dispatch.iter().cloned().collect(),
            winners: templates(&macros.by_name),
            packages: macros
                .by_package
                .iter()
                .map(|(p, defs)| (p.clone(), templates(defs)))
                .collect(),
        }
    }

    fn callable(&self, package: Option<&str>, name: &str) -> Option<Value> {
        let (template, catch_all) = match package {
            Some(package) => self.packages.get(package)?.get(name)?,
            None => self.winners.get(name)?,
        };
        Some(Value::from_object(MacroCallable {
            name: name.to_string(),
            template: template.clone(),
            catch_all: catch_all.clone(),
        }))
    }
}

/// `dbt_utils.star(...)`: the macros of one package.
#[derive(Debug)]
pub struct Namespace {
    pub package: String,
    pub index: Arc<MacroIndex>,
}

impl Object for Namespace {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.index.callable(Some(&self.package), key.as_str()?)
    }
}

/// `adapter`: `dispatch` finds `postgres__<name>` or `default__<name>`, in the
/// root project first, then in the macro's package; `quote` quotes an identifier.
#[derive(Debug)]
pub struct Adapter {
    pub index: Arc<MacroIndex>,
}

impl Adapter {
    fn dispatch(&self, name: &str, namespace: Option<&str>) -> Option<Value> {
        // dbt's order: the project's `dispatch:` search order for the
        // namespace, else the root project then the namespace.
        let packages: Vec<Option<&str>> = match namespace {
            Some(namespace) => match self.index.search_orders.get(namespace) {
                Some(order) => order.iter().map(|p| Some(p.as_str())).collect(),
                None => vec![Some(self.index.root_package.as_str()), Some(namespace)],
            },
            None => vec![None],
        };
        packages.into_iter().find_map(|package| {
            ["postgres", "default"]
                .iter()
                .find_map(|prefix| self.index.callable(package, &format!("{prefix}__{name}")))
        })
    }
}

impl Object for Adapter {
    fn call_method(
        self: &Arc<Self>,
        state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        match method {
            "dispatch" => {
                let (name, namespace, kwargs): (String, Option<String>, Kwargs) = from_args(args)?;
                let namespace = namespace.or(kwargs.get::<Option<String>>("macro_namespace")?);
                kwargs.assert_all_used()?;
                self.dispatch(&name, namespace.as_deref()).ok_or_else(|| {
                    let place = namespace
                        .map(|n| format!(" in `{n}` or the project"))
                        .unwrap_or_default();
                    error(format!(
                        "adapter.dispatch: no macro `postgres__{name}` or `default__{name}`{place}"
                    ))
                })
            }
            "quote" => {
                let (identifier,): (String,) = from_args(args)?;
                Ok(Value::from(crate::base::quote::quote_as_dbt(&identifier)))
            }
            other if DATABASE_METHODS.contains(&other) => {
                match database(state, &format!("adapter.{other}()"))? {
                    Some(db) => super::database::adapter_method(db.database(), other, args),
                    None => Ok(parse_time_answer(other)),
                }
            }
            other => Err(JinjaError::new(
                JinjaErrorKind::UnknownMethod,
                format!("adapter has no method `{other}`"),
            )),
        }
    }
}

/// dbt's adapter methods that ask the database: weir does not query while
/// rendering (yet), and says so rather than "no such method".
const DATABASE_METHODS: &[&str] = &[
    "get_relation",
    "load_relation",
    "get_columns_in_relation",
    "get_missing_columns",
    "list_relations_without_caching",
    "list_schemas",
    "check_schema_exists",
    "create_schema",
    "drop_schema",
    "drop_relation",
    "rename_relation",
    "truncate_relation",
    "expand_target_column_types",
    "get_column_schema_from_query",
    "already_exists",
    "execute",
];

/// The error for what needs a query while rendering without a database:
/// the compile's, which marks the node to be rendered when it runs.
fn needs_database(what: &str) -> JinjaError {
    error(format!(
        "{what} {} where no connection is at hand: weir renders a node's SQL \
         with its connection as the node runs, but not yet its hooks or `weir compile`",
        super::database::NEEDS_DATABASE
    ))
}

/// True while a node renders to be compiled or run; false as dbt parses.
fn is_executing(state: &State<'_, '_>) -> bool {
    state.lookup("execute").is_some_and(|v| v.is_true())
}

/// What a database method answers as dbt parses (`execute` false), when
/// dbt's adapter asks nothing: an empty list for what lists, false for
/// what checks, none for the rest. Templates that guard with `execute`
/// never see it; those that do not still parse, as in dbt.
fn parse_time_answer(method: &str) -> Value {
    match method {
        "get_columns_in_relation"
        | "get_missing_columns"
        | "list_relations_without_caching"
        | "list_schemas"
        | "get_column_schema_from_query" => Value::from(Vec::<Value>::new()),
        "check_schema_exists" | "already_exists" => Value::from(false),
        _ => Value::from(()),
    }
}

/// `run_query`, `statement` and `load_result`. With a database (a node
/// rendered as it runs) they query it; as dbt parses (`execute` false) they
/// run nothing: `statement` renders nothing, the others give none; at
/// compile time, when the database is not at hand, they fail with
/// [`needs_database`] and the node is rendered again when it runs.
fn register_queries(env: &mut Environment<'static>) {
    env.add_function(
        "run_query",
        |state: &State<'_, '_>, sql: String| -> Result<Value, JinjaError> {
            match database(state, "run_query()")? {
                Some(db) => Ok(db.run(&sql).map_err(|e| db_error(&e))?.0),
                None => Ok(Value::from(())),
            }
        },
    );
    env.add_function(
        "load_result",
        |state: &State<'_, '_>, name: String| -> Result<Value, JinjaError> {
            match database(state, "load_result()")? {
                Some(db) => Ok(db.load(&name)),
                None => Ok(Value::from(())),
            }
        },
    );
    env.add_function("statement", statement);
}

/// `{% call statement(name, fetch_result=False, auto_begin=True) %}sql{% endcall %}`.
fn statement(state: &State<'_, '_>, args: Rest<Value>) -> Result<Value, JinjaError> {
    let Some(db) = database(state, "statement()")? else {
        return Ok(Value::from(""));
    };
    let (name, kwargs): (Option<String>, Kwargs) = from_args(&args)?;
    let name = match name {
        Some(name) => name,
        None => kwargs
            .get::<Option<String>>("name")?
            .unwrap_or_else(|| "statement".to_string()),
    };
    let fetch = kwargs.get::<Option<bool>>("fetch_result")?.unwrap_or(false);
    let _: Option<Value> = kwargs.get("auto_begin")?;
    let _: Option<Value> = kwargs.get("language")?;
    let caller: Value = kwargs.get("caller")?;
    kwargs.assert_all_used()?;
    let sql = caller.call(state, &[])?.to_string();
    let (table, response) = db.run(&sql).map_err(|e| db_error(&e))?;
    db.store(&name, fetch.then_some(table), response);
    Ok(Value::from(""))
}

/// The render's database: None as dbt parses (`execute` false), an error
/// when executing without one (the compile).
fn database(
    state: &State<'_, '_>,
    what: &str,
) -> Result<Option<Arc<super::database::RenderDatabase>>, JinjaError> {
    if !is_executing(state) {
        return Ok(None);
    }
    super::database::RenderDatabase::of(state)
        .map(Some)
        .ok_or_else(|| needs_database(what))
}

fn db_error(error: &crate::error::Error) -> JinjaError {
    super::database::jinja_error(error)
}

/// A macro as a value: what `adapter.dispatch` and `package.name` return.
struct MacroCallable {
    name: String,
    template: String,
    catch_all: Option<Arc<super::macros::CatchAll>>,
}

impl fmt::Debug for MacroCallable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<macro {}>", self.name)
    }
}

impl Object for MacroCallable {
    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, JinjaError> {
        let catch_all = self.catch_all.as_deref();
        super::macros::call_macro(state, &self.template, &self.name, catch_all, args)
    }
}

fn tojson(value: Value, kwargs: Kwargs) -> Result<String, JinjaError> {
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let json: serde_json::Value =
        serde_json::to_value(&value).map_err(|e| error(format!("tojson: {e}")))?;
    let json = if sort_keys == Some(true) {
        sorted(json)
    } else {
        json
    };
    Ok(crate::base::pyjson::python_json(&json))
}

fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

fn fromjson(text: String, default: Option<Value>) -> Result<Value, JinjaError> {
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(value) => Ok(super::mutable::from_json(&value)),
        Err(e) => default.ok_or_else(|| error(format!("fromjson: {e}"))),
    }
}

fn toyaml(value: Value) -> Result<String, JinjaError> {
    let json: serde_json::Value =
        serde_json::to_value(&value).map_err(|e| error(format!("toyaml: {e}")))?;
    let yaml = crate::project::yaml::from_json(&json);
    Ok(crate::project::yaml::to_string(&yaml))
}

fn fromyaml(text: String, default: Option<Value>) -> Result<Value, JinjaError> {
    match crate::project::yaml::parse_text(&text) {
        Ok(value) => Ok(super::mutable::from_json(&crate::project::yaml::to_json(
            &value,
        ))),
        Err(e) => default.ok_or_else(|| error(format!("fromyaml: {e}"))),
    }
}

/// Python's zip: lists of the n-th items, as long as the shortest input.
fn zip(lists: Rest<Value>) -> Result<Value, JinjaError> {
    let lists: Vec<Vec<Value>> = lists
        .iter()
        .map(|list| list.try_iter().map(Iterator::collect))
        .collect::<Result<_, _>>()?;
    let length = lists.iter().map(Vec::len).min().unwrap_or(0);
    Ok(Value::from(
        (0..length)
            .map(|i| Value::from(lists.iter().map(|l| l[i].clone()).collect::<Vec<_>>()))
            .collect::<Vec<_>>(),
    ))
}

/// Python's set, as a sorted list without repeats: two sets of the same
/// items compare equal whatever order they were built in, as Python's do
/// (whose iteration order is arbitrary anyway).
fn set(items: Value) -> Result<Value, JinjaError> {
    let mut out: Vec<Value> = Vec::new();
    for item in items.try_iter()? {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out.sort();
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use crate::base::env_vars::unrepeatable_count;
    use crate::jinja::render_standalone;

    #[test]
    fn log_renders_nothing_and_marks_the_compile_unrepeatable() {
        let before = unrepeatable_count();
        let text = "a{{ log('x') }}b{{ log('y', info=False) }}c{{ log(1, False) }}d";
        assert_eq!(render_standalone(text).unwrap(), "abcd");
        assert!(unrepeatable_count() >= before + 3);
        let err = render_standalone("{{ log('x', level='warn') }}").unwrap_err();
        assert!(err.to_string().contains("level"), "{err}");
    }

    #[test]
    fn sets_of_the_same_items_are_equal_whatever_their_order() {
        let out =
            render_standalone("{{ set(['b', 'a', 'b']) == set(['a', 'b']) }} {{ set([2, 1]) }}")
                .unwrap();
        assert_eq!(out, "True [1, 2]");
    }

    #[test]
    fn toyaml_writes_and_fromyaml_reads_as_dbt_does() {
        // PyYAML's safe_dump(..., sort_keys=False) of the same value.
        let out = render_standalone("{{ toyaml({'b': [1, 'yes'], 'a': none}) }}").unwrap();
        assert_eq!(out, "b:\n- 1\n- 'yes'\na: null\n");
        let out = render_standalone(
            "{% set v = fromyaml('a: [1, on]\\nb: 010\\nc: &c {x: 1}\\nd: {<<: *c, y: 2}') %}\
             {{ v.a[1] is true }} {{ v.b }} {{ v.d.x }}{{ v.d.y }} {{ fromyaml('a: [', 'bad') }}",
        )
        .unwrap();
        assert_eq!(out, "True 8 12 bad");
        let err = render_standalone("{{ fromyaml('a: b: c') }}").unwrap_err();
        assert!(err.message().contains("fromyaml"), "{err}");
    }
}
