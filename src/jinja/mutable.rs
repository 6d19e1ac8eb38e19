//! Lists and dicts that templates can change in place, as dbt's Python Jinja
//! allows: `{% set cols = [] %}{% do cols.append(c) %}`. minijinja's own
//! literals are immutable, so `set x = []` and `set x = {}` are rewritten to
//! create these objects before a template is compiled. So is `{% do expr %}`:
//! Jinja2's `do` evaluates any expression (`{% do x.append(y) if cond %}`),
//! minijinja's only a call, so it becomes an assignment that is never read.

use std::sync::{Arc, Mutex};

use super::context::unknown_method;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value, ValueKind, from_args};
use minijinja::{Error as JinjaError, ErrorKind as JinjaErrorKind, State};

/// Name of the global functions that make the mutable containers.
pub const NEW_LIST: &str = "__weir_list";
pub const NEW_DICT: &str = "__weir_dict";
/// Name of the global function that bounds what a namespace attribute is set
/// to (see [`bounded`]).
pub const BOUNDED: &str = "__weir_bounded";

/// The variable a rewritten `{% do %}` assigns.
const DO_VALUE: &str = "__weir_do";

/// `{% set name = [] %}` -> `{% set name = __weir_list() %}`, the same for
/// `{}`, and a list or dict literal `[a, b]` -> `__weir_list([a, b])`;
/// `{% do expr %}` -> `{% set __weir_do = expr %}`; everything else, newlines included, is left as it is.
pub fn rewrite_empty_literals(source: &str) -> std::borrow::Cow<'_, str> {
    if !source.contains("{%") || tags(source).all(|tag| rewrite_tag(tag).is_none()) {
        return std::borrow::Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len() + 32);
    let mut copied = 0;
    for tag in tags(source) {
        if let Some(rewritten) = rewrite_tag(tag) {
            let start = tag.as_ptr() as usize - source.as_ptr() as usize;
            out.push_str(&source[copied..start]);
            out.push_str(&rewritten);
            copied = start + tag.len();
        }
    }
    out.push_str(&source[copied..]);
    std::borrow::Cow::Owned(out)
}

/// Every `{% ... %}` tag of `source`, in order.
fn tags(source: &str) -> impl Iterator<Item = &str> {
    let mut position = 0;
    std::iter::from_fn(move || {
        let start = position + source[position..].find("{%")?;
        // The closing `%}` comes after the opening `{%`: in `{%}` it does not.
        let end = start + 2 + source[start + 2..].find("%}")? + 2;
        position = end;
        Some(&source[start..end])
    })
}

/// A new mutable list, of `items` when given (`__weir_list([a, b])`).
pub fn new_list(items: Option<Value>) -> Result<Value, JinjaError> {
    let items = match items {
        Some(items) => items.try_iter()?.collect(),
        None => Vec::new(),
    };
    Ok(Value::from_object(MutableList(Mutex::new(items))))
}

/// A new mutable dict, of `entries` when given (`__weir_dict({...})`).
pub fn new_dict(entries: Option<Value>) -> Result<Value, JinjaError> {
    let mut pairs = Vec::new();
    if let Some(entries) = entries {
        for key in entries.try_iter()? {
            let value = entries.get_item(&key)?;
            pairs.push((key, value));
        }
    }
    Ok(Value::from_object(MutableDict(Mutex::new(pairs))))
}

/// A list literal stored into a mutable container becomes mutable itself,
/// as the Python list it stands for is: `{% do d.update({k: []}) %}` then
/// `{% do d[k].append(x) %}`. A literal has no other reference that could
/// tell the copy apart.
fn stored(value: Value) -> Value {
    match value.downcast_object_ref::<Vec<Value>>() {
        Some(items) => Value::from_object(MutableList(Mutex::new(
            items.iter().cloned().map(stored).collect(),
        ))),
        None => value,
    }
}

/// The rewritten `{% set %}` or `{% do %}` tag, or None when it stays as it is.
fn rewrite_tag(tag: &str) -> Option<String> {
    let inner = tag[2..tag.len() - 2].trim_matches(['-', '+']).trim();
    let open = if tag.starts_with("{%-") { "{%-" } else { "{%" };
    let close = if tag.ends_with("-%}") { "-%}" } else { "%}" };
    if let Some(expression) = inner
        .strip_prefix("do")
        .filter(|e| e.starts_with(char::is_whitespace) && !e.trim().is_empty())
    {
        return Some(format!(
            "{open} set {DO_VALUE} = {} {close}",
            expression.trim()
        ));
    }
    let assignment = inner
        .strip_prefix("set")
        .filter(|a| a.starts_with(char::is_whitespace))?;
    let (name, value) = assignment.split_once('=')?;
    let (name, value) = (name.trim(), value.trim());
    if value.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return None;
    }
    let constructor = match value.chars().next() {
        Some('[') if encloses(value) => Some(NEW_LIST),
        Some('{') if encloses(value) => Some(NEW_DICT),
        _ => None,
    };
    let value = match (constructor, value) {
        (Some(constructor), "[]" | "{}") => format!("{constructor}()"),
        (Some(constructor), literal) => format!("{constructor}({literal})"),
        (None, value) => value.to_string(),
    };
    // A namespace's attribute outlives the loop turn that sets it, so
    // `{% set ns.s = ns.s ~ ns.s %}` in a loop could double a string until
    // memory runs out without writing a byte: each value is bounded.
    let value = match name.contains('.') {
        true => format!("{BOUNDED}({value})"),
        false if constructor.is_none() => return None,
        false => value,
    };
    Some(format!("{open} set {name} = {value} {close}"))
}

/// What `{% set ns.attr = value %}` stores: `value`, refused when it is a
/// string over the most text one render may produce.
pub fn bounded(value: Value) -> Result<Value, JinjaError> {
    super::macros::check_text(&value, "a value set on a namespace")?;
    Ok(value)
}

/// True when the bracket `value` opens with closes at its very end: it is
/// one literal, not `[a][0]` or `[a] + b`.
fn encloses(value: &str) -> bool {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (at, c) in value.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '{' | '(') => depth += 1,
            (None, ']' | '}' | ')') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return at + 1 == value.len();
                }
            }
            _ => {}
        }
    }
    false
}

/// A value read from JSON (vars, YAML, fromjson) with its lists and dicts
/// mutable, as Python's are: `{% do var('cols').append('x') %}`.
pub fn from_json(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Array(items) => Value::from_object(MutableList(Mutex::new(
            items.iter().map(from_json).collect(),
        ))),
        serde_json::Value::Object(map) => Value::from_object(MutableDict(Mutex::new(
            map.iter()
                .map(|(k, v)| (Value::from(k.as_str()), from_json(v)))
                .collect(),
        ))),
        other => Value::from_serialize(other),
    }
}

/// A list a macro returned, made mutable (its items too); anything else as it is.
pub fn make_mutable(value: Value) -> Value {
    match value.downcast_object_ref::<Vec<Value>>() {
        Some(items) => Value::from_object(MutableList(Mutex::new(
            items.iter().cloned().map(make_mutable).collect(),
        ))),
        None => value,
    }
}

/// A list with Python's mutating methods.
#[derive(Debug, Default)]
pub struct MutableList(Mutex<Vec<Value>>);

impl MutableList {
    fn items(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}

impl Object for MutableList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = self.0.lock().unwrap();
        let index = key.as_i64()?;
        let index = if index < 0 {
            items.len() as i64 + index
        } else {
            index
        };
        items.get(usize::try_from(index).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Iter(Box::new(self.items().into_iter()))
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.lock().unwrap().len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        // Arguments are read and compared before the lock is taken: they may
        // be this very list, and the lock is not reentrant.
        match method {
            "append" => {
                let (item,): (Value,) = from_args(args)?;
                refuse_cycle(self, &item)?;
                self.0.lock().unwrap().push(stored(item));
            }
            "extend" => {
                let (more,): (Value,) = from_args(args)?;
                let more: Vec<Value> = more.try_iter()?.map(stored).collect();
                for item in &more {
                    refuse_cycle(self, item)?;
                }
                self.0.lock().unwrap().extend(more);
            }
            "insert" => {
                let (index, item): (usize, Value) = from_args(args)?;
                refuse_cycle(self, &item)?;
                let mut items = self.0.lock().unwrap();
                let index = index.min(items.len());
                items.insert(index, stored(item));
            }
            "pop" => {
                let (index,): (Option<i64>,) = from_args(args)?;
                let mut items = self.0.lock().unwrap();
                let len = items.len() as i64;
                let index = index.map_or(len - 1, |i| if i < 0 { len + i } else { i });
                return usize::try_from(index)
                    .ok()
                    .filter(|i| *i < items.len())
                    .map(|i| items.remove(i))
                    .ok_or_else(|| {
                        JinjaError::new(
                            JinjaErrorKind::InvalidOperation,
                            "pop from empty list or bad index",
                        )
                    });
            }
            "remove" => {
                let (item,): (Value,) = from_args(args)?;
                if let Some(position) = self.items().iter().position(|i| *i == item) {
                    let mut items = self.0.lock().unwrap();
                    if position < items.len() {
                        items.remove(position);
                    }
                }
            }
            "reverse" => self.0.lock().unwrap().reverse(),
            "index" => {
                let (item,): (Value,) = from_args(args)?;
                return Ok(Value::from(self.items().iter().position(|i| *i == item)));
            }
            "count" => {
                let (item,): (Value,) = from_args(args)?;
                return Ok(Value::from(
                    self.items().iter().filter(|i| **i == item).count(),
                ));
            }
            "copy" => return Ok(Value::from(self.items())),
            other => return Err(unknown_method("list", other)),
        }
        Ok(Value::from(()))
    }
}

/// How deep `refuse_cycle` looks; deeper values are let in unchecked.
const CYCLE_SEARCH_DEPTH: usize = 64;

/// A container may not hold itself, directly or through others: printing or
/// comparing it would recurse without end (Python prints `[...]`; minijinja
/// would overflow the stack). Nor a string over the render's text limit.
fn refuse_cycle<T: Object + 'static>(container: &Arc<T>, value: &Value) -> Result<(), JinjaError> {
    // What a container holds outlives the loop turn that adds it: bound it,
    // as a namespace's attributes are (see [`bounded`]).
    super::macros::check_text(value, "a value added to a list or dict")?;
    fn holds(value: &Value, target: *const (), depth: usize) -> bool {
        if depth == 0 {
            return false;
        }
        let pointer = value
            .downcast_object_ref::<MutableList>()
            .map(|l| l as *const MutableList as *const ())
            .or_else(|| {
                value
                    .downcast_object_ref::<MutableDict>()
                    .map(|d| d as *const MutableDict as *const ())
            });
        if pointer == Some(target) {
            return true;
        }
        let children: Vec<Value> = if let Some(list) = value.downcast_object_ref::<MutableList>() {
            list.0.lock().unwrap().clone()
        } else if let Some(dict) = value.downcast_object_ref::<MutableDict>() {
            dict.0
                .lock()
                .unwrap()
                .iter()
                .map(|(_, v)| v.clone())
                .collect()
        } else if matches!(value.kind(), ValueKind::Seq | ValueKind::Map) {
            match value.try_iter() {
                Ok(keys) if value.kind() == ValueKind::Map => {
                    keys.filter_map(|k| value.get_item(&k).ok()).collect()
                }
                Ok(items) => items.collect(),
                Err(_) => Vec::new(),
            }
        } else {
            Vec::new()
        };
        children.iter().any(|c| holds(c, target, depth - 1))
    }
    if holds(
        value,
        Arc::as_ptr(container) as *const (),
        CYCLE_SEARCH_DEPTH,
    ) {
        return Err(JinjaError::new(
            JinjaErrorKind::InvalidOperation,
            "cannot put a list or dict inside itself",
        ));
    }
    Ok(())
}

/// A dict with Python's mutating methods, keys kept in insertion order.
#[derive(Debug, Default)]
pub struct MutableDict(Mutex<Vec<(Value, Value)>>);

impl Object for MutableDict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let entries = self.0.lock().unwrap().clone();
        Enumerator::Iter(Box::new(entries.into_iter().map(|(k, _)| k)))
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.lock().unwrap().len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let set = |entries: &mut Vec<(Value, Value)>, key: Value, value: Value| match entries
            .iter_mut()
            .find(|(k, _)| *k == key)
        {
            Some(entry) => entry.1 = value,
            None => entries.push((key, value)),
        };
        // As for lists: arguments are read before the lock is taken.
        match method {
            "update" => {
                let (other,): (Value,) = from_args(args)?;
                let mut pairs = Vec::new();
                for key in other.try_iter()? {
                    let value = stored(other.get_item(&key)?);
                    refuse_cycle(self, &value)?;
                    pairs.push((key, value));
                }
                let mut entries = self.0.lock().unwrap();
                for (key, value) in pairs {
                    set(&mut entries, key, value);
                }
                Ok(Value::from(()))
            }
            "setdefault" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                let value = stored(default.unwrap_or(Value::from(())));
                refuse_cycle(self, &value)?;
                let mut entries = self.0.lock().unwrap();
                if let Some((_, value)) = entries.iter().find(|(k, _)| *k == key) {
                    return Ok(value.clone());
                }
                entries.push((key, value.clone()));
                Ok(value)
            }
            "pop" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                let mut entries = self.0.lock().unwrap();
                match entries.iter().position(|(k, _)| *k == key) {
                    Some(position) => Ok(entries.remove(position).1),
                    None => Ok(default.unwrap_or(Value::from(()))),
                }
            }
            "get" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                let entries = self.0.lock().unwrap();
                let found = entries
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone());
                Ok(found.or(default).unwrap_or(Value::from(())))
            }
            "keys" => Ok(Value::from(
                self.0
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(k, _)| k.clone())
                    .collect::<Vec<_>>(),
            )),
            "values" => Ok(Value::from(
                self.0
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(_, v)| v.clone())
                    .collect::<Vec<_>>(),
            )),
            "items" => Ok(Value::from(
                self.0
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| Value::from(vec![k.clone(), v.clone()]))
                    .collect::<Vec<_>>(),
            )),
            other => Err(unknown_method("dict", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_cannot_hold_itself() {
        let env = minijinja::Environment::new();
        let mut env = env;
        env.add_function(NEW_LIST, new_list);
        env.add_function(NEW_DICT, new_dict);
        env.add_function(BOUNDED, bounded);
        let render = |source: &str| env.render_str(&rewrite_empty_literals(source), ());
        for source in [
            "{% set x = [] %}{% do x.append(x) %}",
            "{% set x = [] %}{% do x.extend([x]) %}",
            "{% set x = [] %}{% set y = [] %}{% do y.append(x) %}{% do x.insert(0, [y]) %}",
            "{% set d = {} %}{% do d.update({'me': d}) %}",
        ] {
            let err = render(source).unwrap_err();
            assert!(err.to_string().contains("inside itself"), "{source}: {err}");
        }
        // Reading a list while changing it is fine: no lock is held twice.
        assert_eq!(
            render("{% set x = [] %}{% do x.append(1) %}{% do x.extend(x) %}{% do x.remove(x) %}{{ x.count(1) }}{{ x.index(x) }}").unwrap(),
            "2None"
        );
    }

    #[test]
    fn list_literals_stored_in_a_container_can_change_in_place() {
        let mut env = minijinja::Environment::new();
        env.add_function(NEW_LIST, new_list);
        env.add_function(NEW_DICT, new_dict);
        let source = "{% set d = {} %}{% do d.update({'k': []}) %}{% do d['k'].append(1) %}\
             {% set l = [] %}{% do l.append([]) %}{% do l[0].append(2) %}\
             {% do d.setdefault('s', []).append(3) %}{{ d['k'] }}{{ l }}{{ d['s'] }}";
        let out = env.render_str(&rewrite_empty_literals(source), ()).unwrap();
        assert_eq!(out, "[1][[2]][3]");
    }

    #[test]
    fn rewrites_only_empty_literal_assignments() {
        assert_eq!(
            rewrite_empty_literals("{%- set cols = [] -%}\n{% set d = {} %}{% set x = [1] %}[]"),
            "{%- set cols = __weir_list() -%}\n{% set d = __weir_dict() %}{% set x = __weir_list([1]) %}[]"
        );
        assert_eq!(
            rewrite_empty_literals(
                "{% set d = {'a': [1]} %}{% set y = [1][0] %}{% set z = [1] + [2] %}{% set s = ']' %}"
            ),
            "{% set d = __weir_dict({'a': [1]}) %}{% set y = [1][0] %}{% set z = [1] + [2] %}{% set s = ']' %}"
        );
        assert!(matches!(
            rewrite_empty_literals("{% set x = 1 %}{{ [] }}"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(rewrite_empty_literals("{%}[]%}"), "{%}[]%}");
    }

    #[test]
    fn a_namespace_attribute_is_set_through_the_bound() {
        assert_eq!(
            rewrite_empty_literals("{% set ns.s = ns.s ~ 'x' %}{% set ns.l = [] %}{% set t = 1 %}"),
            "{% set ns.s = __weir_bounded(ns.s ~ 'x') %}\
             {% set ns.l = __weir_bounded(__weir_list()) %}{% set t = 1 %}"
        );
    }

    #[test]
    fn do_takes_any_expression_as_in_jinja2() {
        let mut env = minijinja::Environment::new();
        env.add_function(NEW_LIST, new_list);
        let render = |source: &str| env.render_str(&rewrite_empty_literals(source), ());
        let source = "{% set cols = [] %}{% for c in ['a', 'skip', 'b'] %}\
                      {%- do cols.append(c) if c != 'skip' -%}{% endfor %}\
                      {% do cols.append('z') %}{% do 1 + 1 %}{{ cols | join(',') }}";
        assert_eq!(render(source).unwrap(), "a,b,z");
        assert_eq!(
            rewrite_empty_literals("{%- do x.append(1) if y -%}{% domain %}{%do%}"),
            "{%- set __weir_do = x.append(1) if y -%}{% domain %}{%do%}"
        );
    }
}
