//! Lists and dicts that templates can change in place, as dbt's Python Jinja
//! allows: `{% set cols = [] %}{% do cols.append(c) %}`. minijinja's own
//! literals are immutable, so `set x = []` and `set x = {}` are rewritten to
//! create these objects before a template is compiled.

use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value, from_args};
use minijinja::{Error as JinjaError, ErrorKind as JinjaErrorKind, State};

/// Name of the global functions that make the mutable containers.
pub const NEW_LIST: &str = "__weir_list";
pub const NEW_DICT: &str = "__weir_dict";

/// `{% set name = [] %}` -> `{% set name = __weir_list() %}`, and the same for
/// `{}`; everything else, newlines included, is left as it is.
pub fn rewrite_empty_literals(source: &str) -> std::borrow::Cow<'_, str> {
    if !source.contains("[]") && !source.contains("{}") {
        return std::borrow::Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len() + 32);
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        // The closing `%}` comes after the opening `{%`: in `{%}` it does not.
        let Some(length) = rest[start + 2..].find("%}") else {
            break;
        };
        let end = start + 2 + length + 2;
        out.push_str(&rest[..start]);
        out.push_str(&rewrite_tag(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn rewrite_tag(tag: &str) -> String {
    let inner = tag[2..tag.len() - 2].trim_matches(['-', '+']).trim();
    let Some(assignment) = inner
        .strip_prefix("set")
        .filter(|a| a.starts_with(char::is_whitespace))
    else {
        return tag.to_string();
    };
    let Some((name, value)) = assignment.split_once('=') else {
        return tag.to_string();
    };
    let name = name.trim();
    let constructor = match value.trim() {
        "[]" => NEW_LIST,
        "{}" => NEW_DICT,
        _ => return tag.to_string(),
    };
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return tag.to_string();
    }
    let open = if tag.starts_with("{%-") { "{%-" } else { "{%" };
    let close = if tag.ends_with("-%}") { "-%}" } else { "%}" };
    format!("{open} set {name} = {constructor}() {close}")
}

fn unknown(kind: &str, method: &str) -> JinjaError {
    JinjaError::new(
        JinjaErrorKind::UnknownMethod,
        format!("{kind} has no method `{method}`"),
    )
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

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let mut items = self.0.lock().unwrap();
        match method {
            "append" => {
                let (item,): (Value,) = from_args(args)?;
                items.push(item);
            }
            "extend" => {
                let (more,): (Value,) = from_args(args)?;
                items.extend(more.try_iter()?);
            }
            "insert" => {
                let (index, item): (usize, Value) = from_args(args)?;
                let index = index.min(items.len());
                items.insert(index, item);
            }
            "pop" => {
                let (index,): (Option<i64>,) = from_args(args)?;
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
                if let Some(position) = items.iter().position(|i| *i == item) {
                    items.remove(position);
                }
            }
            "reverse" => items.reverse(),
            "index" => {
                let (item,): (Value,) = from_args(args)?;
                return Ok(Value::from(items.iter().position(|i| *i == item)));
            }
            "count" => {
                let (item,): (Value,) = from_args(args)?;
                return Ok(Value::from(items.iter().filter(|i| **i == item).count()));
            }
            "copy" => return Ok(Value::from(items.clone())),
            other => return Err(unknown("list", other)),
        }
        Ok(Value::from(()))
    }
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

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let mut entries = self.0.lock().unwrap();
        let set = |entries: &mut Vec<(Value, Value)>, key: Value, value: Value| match entries
            .iter_mut()
            .find(|(k, _)| *k == key)
        {
            Some(entry) => entry.1 = value,
            None => entries.push((key, value)),
        };
        match method {
            "update" => {
                let (other,): (Value,) = from_args(args)?;
                for key in other.try_iter()? {
                    let value = other.get_item(&key)?;
                    set(&mut entries, key, value);
                }
                Ok(Value::from(()))
            }
            "setdefault" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                if let Some((_, value)) = entries.iter().find(|(k, _)| *k == key) {
                    return Ok(value.clone());
                }
                let value = default.unwrap_or(Value::from(()));
                entries.push((key, value.clone()));
                Ok(value)
            }
            "pop" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                match entries.iter().position(|(k, _)| *k == key) {
                    Some(position) => Ok(entries.remove(position).1),
                    None => Ok(default.unwrap_or(Value::from(()))),
                }
            }
            "get" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                let found = entries
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone());
                Ok(found.or(default).unwrap_or(Value::from(())))
            }
            "keys" => Ok(Value::from(
                entries.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            )),
            "values" => Ok(Value::from(
                entries.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            )),
            "items" => Ok(Value::from(
                entries
                    .iter()
                    .map(|(k, v)| Value::from(vec![k.clone(), v.clone()]))
                    .collect::<Vec<_>>(),
            )),
            other => Err(unknown("dict", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_empty_literal_assignments() {
        assert_eq!(
            rewrite_empty_literals("{%- set cols = [] -%}\n{% set d = {} %}{% set x = [1] %}[]"),
            "{%- set cols = __weir_list() -%}\n{% set d = __weir_dict() %}{% set x = [1] %}[]"
        );
        assert_eq!(rewrite_empty_literals("{%}[]%}"), "{%}[]%}");
    }
}
