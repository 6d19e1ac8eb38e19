//! dbt's Column as templates see it (`name`, `data_type`, `quoted`,
//! `is_string`, `string_size`, ...), and `api.Column`: `create`,
//! `translate_type`, `numeric_type` and `string_type`, with PostgreSQL's
//! names for dbt's portable types.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error as JinjaError, ErrorKind as JinjaErrorKind, State};

use super::context::unknown_method;
use crate::base::quote::quote_identifier;

/// dbt's portable type labels PostgreSQL names otherwise; any other type
/// name (`integer`, `timestamp`, ...) is PostgreSQL's already and kept.
const TYPE_LABELS: [(&str, &str); 1] = [("STRING", "TEXT")];

const STRING_TYPES: [&str; 6] = [
    "text",
    "character varying",
    "varchar",
    "character",
    "char",
    "string",
];
const INTEGER_TYPES: [&str; 9] = [
    "integer",
    "int",
    "bigint",
    "smallint",
    "int2",
    "int4",
    "int8",
    "serial",
    "bigserial",
];
const FLOAT_TYPES: [&str; 5] = ["real", "float4", "float", "double precision", "float8"];
const NUMERIC_TYPES: [&str; 2] = ["numeric", "decimal"];

/// `api.Column.translate_type(dtype)`.
pub fn translate_type(dtype: &str) -> String {
    let upper = dtype.to_ascii_uppercase();
    TYPE_LABELS
        .iter()
        .find(|(label, _)| *label == upper)
        .map_or_else(|| dtype.to_string(), |(_, sql)| sql.to_string())
}

/// `numeric(precision,scale)`, or the bare type without both.
pub fn numeric_type(dtype: &str, precision: Option<i64>, scale: Option<i64>) -> String {
    match (precision, scale) {
        (Some(precision), Some(scale)) => format!("{dtype}({precision},{scale})"),
        _ => dtype.to_string(),
    }
}

pub fn string_type(size: i64) -> String {
    format!("character varying({size})")
}

fn error(message: impl Into<String>) -> JinjaError {
    JinjaError::new(JinjaErrorKind::InvalidOperation, message.into())
}

/// One column of a relation.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnObject {
    pub name: String,
    pub dtype: String,
    pub char_size: Option<i64>,
    pub numeric_precision: Option<i64>,
    pub numeric_scale: Option<i64>,
}

impl ColumnObject {
    pub fn new(name: &str, dtype: &str) -> ColumnObject {
        ColumnObject {
            name: name.to_string(),
            dtype: dtype.to_string(),
            char_size: None,
            numeric_precision: None,
            numeric_scale: None,
        }
    }

    fn base_type(&self) -> String {
        self.dtype.to_ascii_lowercase()
    }

    pub fn is_string(&self) -> bool {
        STRING_TYPES.contains(&self.base_type().as_str())
    }

    pub fn is_integer(&self) -> bool {
        INTEGER_TYPES.contains(&self.base_type().as_str())
    }

    pub fn is_float(&self) -> bool {
        FLOAT_TYPES.contains(&self.base_type().as_str())
    }

    pub fn is_numeric(&self) -> bool {
        NUMERIC_TYPES.contains(&self.base_type().as_str())
    }

    pub fn is_number(&self) -> bool {
        self.is_integer() || self.is_float() || self.is_numeric()
    }

    /// A string column's size: 256 when the type has none, as in dbt.
    pub fn string_size(&self) -> Result<i64, JinjaError> {
        if !self.is_string() {
            return Err(error(format!(
                "string_size(): column `{}` is `{}`, not a string",
                self.name, self.dtype
            )));
        }
        Ok(self.char_size.unwrap_or(256))
    }

    /// The type as a column definition writes it. PostgreSQL's varchar
    /// without a size stays without one.
    pub fn data_type(&self) -> String {
        if self.is_string() {
            return match (self.base_type().as_str(), self.char_size) {
                ("text", _) => self.dtype.clone(),
                ("character varying", None) => "character varying".to_string(),
                (_, size) => string_type(size.unwrap_or(256)),
            };
        }
        if self.is_numeric() {
            return numeric_type(&self.dtype, self.numeric_precision, self.numeric_scale);
        }
        self.dtype.clone()
    }

    /// A string column can widen to a longer string column.
    pub fn can_expand_to(&self, other: &ColumnObject) -> bool {
        self.is_string()
            && other.is_string()
            && matches!((self.string_size(), other.string_size()), (Ok(a), Ok(b)) if a < b)
    }
}

impl Object for ColumnObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["name", "column", "dtype", "data_type", "quoted"])
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let optional = |n: Option<i64>| n.map_or(Value::from(()), Value::from);
        Some(match key.as_str()? {
            "name" | "column" => Value::from(self.name.clone()),
            "dtype" => Value::from(self.dtype.clone()),
            "data_type" => Value::from(self.data_type()),
            "quoted" => Value::from(quote_identifier(&self.name)),
            "char_size" => optional(self.char_size),
            "numeric_precision" => optional(self.numeric_precision),
            "numeric_scale" => optional(self.numeric_scale),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let flag = |value: bool| -> Result<Value, JinjaError> {
            let () = from_args(args)?;
            Ok(Value::from(value))
        };
        match method {
            "is_string" => flag(self.is_string()),
            "is_number" => flag(self.is_number()),
            "is_numeric" => flag(self.is_numeric()),
            "is_integer" => flag(self.is_integer()),
            "is_float" => flag(self.is_float()),
            "string_size" => {
                let () = from_args(args)?;
                Ok(Value::from(self.string_size()?))
            }
            "can_expand_to" => {
                let (other,): (Value,) = from_args(args)?;
                let other = other
                    .downcast_object_ref::<ColumnObject>()
                    .ok_or_else(|| error(format!("can_expand_to(): `{other}` is not a column")))?;
                Ok(Value::from(self.can_expand_to(other)))
            }
            "literal" => {
                let (value,): (Value,) = from_args(args)?;
                Ok(Value::from(format!("{value}::{}", self.data_type())))
            }
            other => Err(unknown_method("column", other)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Column {} ({})>", self.name, self.data_type())
    }
}

/// `api.Column`: call it or `create(name, dtype)` for a column; and the
/// type helpers.
#[derive(Debug)]
pub struct ColumnFactory;

impl ColumnFactory {
    fn create(args: &[Value]) -> Result<Value, JinjaError> {
        let (name, dtype, kwargs): (String, Option<String>, Kwargs) = from_args(args)?;
        let dtype = match dtype {
            Some(dtype) => dtype,
            None => kwargs
                .get::<Option<String>>("dtype")?
                .or(kwargs.get::<Option<String>>("label_or_dtype")?)
                .ok_or_else(|| error("api.Column: a column needs a name and a type"))?,
        };
        let mut column = ColumnObject::new(&name, &translate_type(&dtype));
        column.char_size = kwargs.get("char_size")?;
        column.numeric_precision = kwargs.get("numeric_precision")?;
        column.numeric_scale = kwargs.get("numeric_scale")?;
        kwargs.assert_all_used()?;
        Ok(Value::from_object(column))
    }
}

impl Object for ColumnFactory {
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, JinjaError> {
        ColumnFactory::create(args)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        match method {
            "create" => ColumnFactory::create(args),
            "translate_type" => {
                let (dtype,): (String,) = from_args(args)?;
                Ok(Value::from(translate_type(&dtype)))
            }
            "numeric_type" => {
                let (dtype, precision, scale): (String, Option<i64>, Option<i64>) =
                    from_args(args)?;
                Ok(Value::from(numeric_type(&dtype, precision, scale)))
            }
            "string_type" => {
                let (size,): (i64,) = from_args(args)?;
                Ok(Value::from(string_type(size)))
            }
            other => Err(unknown_method("api.Column", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str) -> String {
        let mut env = minijinja::Environment::new();
        env.add_global(
            "api",
            Value::from_iter([("Column", Value::from_object(ColumnFactory))]),
        );
        env.render_str(template, ()).unwrap()
    }

    #[test]
    fn translate_type_maps_dbt_labels_and_keeps_the_rest() {
        assert_eq!(
            render(
                "{{ api.Column.translate_type('string') }} {{ api.Column.translate_type('Integer') }} \
                 {{ api.Column.translate_type('bigint') }} {{ api.Column.numeric_type('numeric', 28, 6) }} \
                 {{ api.Column.numeric_type('numeric', none, none) }} {{ api.Column.string_type(10) }}"
            ),
            "TEXT Integer bigint numeric(28,6) numeric character varying(10)"
        );
    }

    #[test]
    fn a_column_knows_its_kind_and_sizes() {
        let out = render(
            "{% set c = api.Column('Total', 'numeric', numeric_precision=10, numeric_scale=2) %}\
             {{ c.name }} {{ c.quoted }} {{ c.data_type }} {{ c.is_number() }} {{ c.is_numeric() }} {{ c.is_string() }}",
        );
        assert_eq!(out, r#"Total "Total" numeric(10,2) True True False"#);
        let out = render(
            "{% set a = api.Column.create('a', 'varchar', char_size=10) %}\
             {% set b = api.Column.create('b', 'character varying') %}\
             {{ a.data_type }} {{ b.data_type }} {{ a.string_size() }} {{ b.string_size() }} \
             {{ a.can_expand_to(b) }} {{ b.can_expand_to(a) }} {{ api.Column('i', 'integer').is_integer() }} \
             {{ api.Column('f', 'float8').is_float() }} {{ api.Column('s', 'string').dtype }}",
        );
        assert_eq!(
            out,
            "character varying(10) character varying 10 256 True False True True TEXT"
        );
    }

    #[test]
    fn string_size_of_a_number_is_an_error() {
        let mut env = minijinja::Environment::new();
        env.add_global(
            "api",
            Value::from_iter([("Column", Value::from_object(ColumnFactory))]),
        );
        let err = env
            .render_str("{{ api.Column('n', 'integer').string_size() }}", ())
            .unwrap_err();
        assert!(err.to_string().contains("not a string"), "{err}");
    }
}
