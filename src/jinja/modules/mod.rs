//! `modules` in the Jinja context, as dbt provides it: `modules.datetime`,
//! `modules.pytz` and `modules.re` (see their modules for how far each
//! follows Python).

pub mod datetime;
pub mod re;

use std::sync::Arc;

use minijinja::value::{Object, Value};

/// The `modules` global.
#[derive(Debug)]
pub struct Modules;

impl Object for Modules {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "datetime" => Some(Value::from_object(datetime::Module)),
            "pytz" => Some(Value::from_object(datetime::Pytz)),
            "re" => Some(Value::from_object(re::Module)),
            _ => None,
        }
    }
}
