//! What templates ask the database while a node renders at run time
//! (`run_query`, `statement`/`load_result`, adapter's database methods), as a
//! trait the adapter implements over the node's own connection, and the
//! agate-like objects the answers are given to templates as.
//!
//! A render without a database (the compile) that asks one fails with
//! [`NEEDS_DATABASE`] in its message: the compile marks the node, and the
//! runner renders it again with a connection when it builds it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value, from_args};
use minijinja::{Error as JinjaError, ErrorKind as JinjaErrorKind, State};

use super::context::unknown_method;
use crate::error::Result;

/// The words every "this render needs the database" error carries.
pub const NEEDS_DATABASE: &str = "asks the database while rendering";

/// The name a render's database handle has in the template context.
pub const CONTEXT_NAME: &str = "__weir_database";

/// The rows one query returned, every value as PostgreSQL's text (None for NULL).
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub column_names: Vec<String>,
    /// PostgreSQL's type name of each column (`int4`, `text`, `numeric`, ...).
    pub column_types: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// The command tag's row count, as dbt's `response.rows_affected`.
    pub rows_affected: u64,
}

/// A column of a relation in the database, as `get_columns_in_relation` lists it.
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    pub name: String,
    /// The type without size (`character varying`, `numeric`, ...).
    pub data_type: String,
    pub char_size: Option<i64>,
    pub numeric_precision: Option<i64>,
    pub numeric_scale: Option<i64>,
}

/// What a template can ask the database, on the connection that builds the node.
pub trait Database: Send + Sync {
    /// Run SQL; the rows of its last statement.
    fn query(&self, sql: &str) -> Result<QueryResult>;
    /// The columns of `schema.identifier`, in order; empty when it does not exist.
    fn columns(&self, schema: &str, identifier: &str) -> Result<Vec<ColumnInfo>>;
    /// `table`, `view` or `materialized_view` when the relation exists.
    fn relation_type(&self, schema: &str, identifier: &str) -> Result<Option<&'static str>>;
}

/// One render's handle: the database, and the results `statement` stored
/// for `load_result`.
pub struct RenderDatabase {
    database: Arc<dyn Database>,
    results: Mutex<HashMap<String, Value>>,
}

impl fmt::Debug for RenderDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<database>")
    }
}

impl Object for RenderDatabase {}

impl RenderDatabase {
    /// The value to put in a render's context under [`CONTEXT_NAME`].
    pub fn context_value(database: Arc<dyn Database>) -> Value {
        Value::from_object(RenderDatabase {
            database,
            results: Mutex::new(HashMap::new()),
        })
    }

    /// The render's database, when it has one and `execute` is true.
    pub fn of(state: &State<'_, '_>) -> Option<Arc<RenderDatabase>> {
        state
            .lookup(CONTEXT_NAME)
            .and_then(|v| v.downcast_object::<RenderDatabase>())
    }

    pub fn database(&self) -> &dyn Database {
        &*self.database
    }

    /// Run `sql`: the table of its rows and dbt's adapter response.
    pub fn run(&self, sql: &str) -> Result<(Value, Value)> {
        let result = self.database.query(sql)?;
        let response = Value::from_serialize(serde_json::json!({
            "_message": format!("OK {}", result.rows_affected),
            "code": "OK",
            "rows_affected": result.rows_affected,
        }));
        Ok((Table::value(result), response))
    }

    /// `statement(name, fetch_result=...)` stores what `load_result(name)` gives.
    pub fn store(&self, name: &str, table: Option<Value>, response: Value) {
        let data = table
            .as_ref()
            .and_then(|t| t.downcast_object_ref::<Table>().map(Table::data))
            .unwrap_or_else(|| Value::from(()));
        let result = Value::from_object(LoadResult {
            response,
            table: table.unwrap_or_else(|| Value::from(())),
            data,
        });
        self.lock().insert(name.to_string(), result);
    }

    pub fn load(&self, name: &str) -> Value {
        self.lock()
            .get(name)
            .cloned()
            .unwrap_or_else(|| Value::from(()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
        self.results
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What `load_result(name)` returns: `.response`, `.table`, `.data`, or as `['data']`.
#[derive(Debug)]
struct LoadResult {
    response: Value,
    table: Value,
    data: Value,
}

impl Object for LoadResult {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["response", "table", "data"])
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "response" => self.response.clone(),
            "table" => self.table.clone(),
            "data" => self.data.clone(),
            _ => return None,
        })
    }
}

/// A query's rows as agate's Table: `rows`, `columns`, `column_names`,
/// `column_types`, `table[i][j]`, iteration over rows, `print_table()`.
#[derive(Debug)]
pub struct Table {
    names: Vec<String>,
    types: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Table {
    fn value(result: QueryResult) -> Value {
        let rows = result
            .rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .zip(&result.column_types)
                    .map(|(v, t)| typed(v, t))
                    .collect()
            })
            .collect();
        Value::from_object(Table {
            names: result.column_names,
            types: result.column_types,
            rows,
        })
    }

    fn row(&self, index: usize) -> Value {
        Value::from_object(Row {
            names: self.names.clone(),
            values: self.rows[index].clone(),
        })
    }

    /// `load_result(...)['data']`: the rows as lists.
    fn data(&self) -> Value {
        Value::from(
            self.rows
                .iter()
                .map(|r| Value::from(r.clone()))
                .collect::<Vec<_>>(),
        )
    }

    fn rows_value(&self) -> Value {
        Value::from(
            (0..self.rows.len())
                .map(|i| self.row(i))
                .collect::<Vec<_>>(),
        )
    }

    fn columns_value(&self) -> Value {
        Value::from_object(Columns(
            self.names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    Value::from_object(TableColumn {
                        name: name.clone(),
                        values: self.rows.iter().map(|r| r[i].clone()).collect(),
                    })
                })
                .collect(),
            self.names.clone(),
        ))
    }
}

/// A value as agate types it: numbers for PostgreSQL's numeric types, a
/// boolean for `bool`, text for the rest.
fn typed(value: Option<String>, pg_type: &str) -> Value {
    let Some(text) = value else {
        return Value::from(());
    };
    match pg_type {
        "int2" | "int4" | "int8" | "oid" => text
            .parse::<i64>()
            .map_or_else(|_| Value::from(text), Value::from),
        "float4" | "float8" | "numeric" => match text.parse::<i64>() {
            Ok(whole) if pg_type == "numeric" && !text.contains('.') => Value::from(whole),
            _ => text
                .parse::<f64>()
                .map_or_else(|_| Value::from(text), Value::from),
        },
        "bool" => Value::from(text == "t"),
        _ => Value::from(text),
    }
}

impl Object for Table {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.rows.len())
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(index) = key.as_usize() {
            return (index < self.rows.len()).then(|| self.row(index));
        }
        Some(match key.as_str()? {
            "rows" => self.rows_value(),
            "columns" => self.columns_value(),
            "column_names" => Value::from(self.names.clone()),
            "column_types" => Value::from(self.types.clone()),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        match method {
            "print_table" => {
                crate::base::env_vars::note_unrepeatable();
                println!("{}", self.names.join(" | "));
                for row in &self.rows {
                    let cells: Vec<String> = row.iter().map(ToString::to_string).collect();
                    println!("{}", cells.join(" | "));
                }
                Ok(Value::from(()))
            }
            "__len__" => {
                let () = from_args(args)?;
                Ok(Value::from(self.rows.len()))
            }
            other => Err(unknown_method("table", other)),
        }
    }
}

/// One row: by position, by column name, or as an attribute.
#[derive(Debug)]
struct Row {
    names: Vec<String>,
    values: Vec<Value>,
}

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.values.len())
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(index) = key.as_i64() {
            let len = self.values.len() as i64;
            let index = if index < 0 { index + len } else { index };
            return usize::try_from(index)
                .ok()
                .and_then(|i| self.values.get(i).cloned());
        }
        let name = key.as_str()?;
        let at = self.names.iter().position(|n| n == name)?;
        self.values.get(at).cloned()
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        match method {
            "values" => {
                let () = from_args(args)?;
                Ok(Value::from(self.values.clone()))
            }
            "keys" => {
                let () = from_args(args)?;
                Ok(Value::from(self.names.clone()))
            }
            other => Err(unknown_method("row", other)),
        }
    }
}

/// `table.columns`: by position or by name, and agate's `keys()`,
/// `values()` and `items()`.
#[derive(Debug)]
struct Columns(Vec<Value>, Vec<String>);

impl Object for Columns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.len())
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(index) = key.as_usize() {
            return self.0.get(index).cloned();
        }
        let at = self
            .1
            .iter()
            .position(|n| Some(n.as_str()) == key.as_str())?;
        self.0.get(at).cloned()
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let () = from_args(args)?;
        match method {
            "keys" => Ok(Value::from(self.1.clone())),
            "values" => Ok(Value::from(self.0.clone())),
            "items" => Ok(Value::from(
                self.1
                    .iter()
                    .zip(&self.0)
                    .map(|(name, column)| {
                        Value::from(vec![Value::from(name.as_str()), column.clone()])
                    })
                    .collect::<Vec<_>>(),
            )),
            other => Err(unknown_method("columns", other)),
        }
    }
}

/// One column of a query's rows: `name`, `values()`.
#[derive(Debug)]
struct TableColumn {
    name: String,
    values: Vec<Value>,
}

impl Object for TableColumn {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "name" => Some(Value::from(self.name.clone())),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        match method {
            "values" | "values_distinct" => {
                let () = from_args(args)?;
                let mut values = self.values.clone();
                if method == "values_distinct" {
                    let mut seen = Vec::new();
                    values.retain(|v| {
                        let new = !seen.contains(v);
                        if new {
                            seen.push(v.clone());
                        }
                        new
                    });
                }
                Ok(Value::from(values))
            }
            other => Err(unknown_method("column", other)),
        }
    }
}

/// A database failure inside a template, as a template error.
pub fn jinja_error(error: &crate::error::Error) -> JinjaError {
    JinjaError::new(JinjaErrorKind::InvalidOperation, error.to_string())
}

/// adapter's database methods, answered by `db`.
pub fn adapter_method(
    db: &dyn Database,
    method: &str,
    args: &[Value],
) -> Result<Value, JinjaError> {
    let fail = |e: crate::error::Error| jinja_error(&e);
    match method {
        "get_relation" => {
            let (database, schema, identifier, kwargs): (
                Option<Value>,
                Option<String>,
                Option<String>,
                minijinja::value::Kwargs,
            ) = from_args(args)?;
            let database = database
                .or(kwargs.get::<Option<Value>>("database")?)
                .filter(|d| !d.is_none())
                .map(|d| d.to_string());
            let schema = schema.or(kwargs.get::<Option<String>>("schema")?);
            let identifier = identifier.or(kwargs.get::<Option<String>>("identifier")?);
            kwargs.assert_all_used()?;
            let (Some(schema), Some(identifier)) = (schema, identifier) else {
                return Err(JinjaError::new(
                    JinjaErrorKind::MissingArgument,
                    "adapter.get_relation(database, schema, identifier) needs a schema and an identifier",
                ));
            };
            found_relation(db, database, schema, identifier)
        }
        "load_relation" => {
            let (relation,): (Value,) = from_args(args)?;
            let (database, schema, identifier) = relation_parts(&relation)?;
            found_relation(db, database, schema, identifier)
        }
        "get_columns_in_relation" => {
            let (relation,): (Value,) = from_args(args)?;
            let (_, schema, identifier) = relation_parts(&relation)?;
            let columns = db.columns(&schema, &identifier).map_err(fail)?;
            Ok(Value::from(
                columns
                    .into_iter()
                    .map(|c| {
                        Value::from_object(super::column::ColumnObject {
                            name: c.name,
                            dtype: c.data_type,
                            char_size: c.char_size,
                            numeric_precision: c.numeric_precision,
                            numeric_scale: c.numeric_scale,
                        })
                    })
                    .collect::<Vec<_>>(),
            ))
        }
        "drop_relation" => {
            let (relation,): (Value,) = from_args(args)?;
            let (_, schema, identifier) = relation_parts(&relation)?;
            // What is there decides the `drop` statement, not what the
            // template believes the relation is.
            if let Some(kind) = db.relation_type(&schema, &identifier).map_err(fail)? {
                let keyword = kind.replace('_', " ");
                let sql = format!("drop {keyword} if exists {relation} cascade");
                db.query(&sql).map_err(fail)?;
            }
            Ok(Value::from(""))
        }
        "check_schema_exists" => {
            let (_database, schema): (Value, String) = from_args(args)?;
            let sql = format!(
                "select 1 from pg_namespace where nspname = {}",
                crate::base::quote::quote_literal(&schema)
            );
            Ok(Value::from(!db.query(&sql).map_err(fail)?.rows.is_empty()))
        }
        other => Err(JinjaError::new(
            JinjaErrorKind::InvalidOperation,
            format!("adapter.{other}() is not supported by weir yet"),
        )),
    }
}

/// `database`, `schema`, `identifier` of a Relation (or anything with those attributes).
fn relation_parts(relation: &Value) -> Result<(Option<String>, String, String), JinjaError> {
    let part = |name: &str| -> Result<Option<String>, JinjaError> {
        let value = relation.get_attr(name)?;
        Ok((!value.is_undefined() && !value.is_none()).then(|| value.to_string()))
    };
    match (part("schema")?, part("identifier")?) {
        (Some(schema), Some(identifier)) => Ok((part("database")?, schema, identifier)),
        _ => Err(JinjaError::new(
            JinjaErrorKind::InvalidOperation,
            format!("`{relation}` is not a relation with a schema and an identifier"),
        )),
    }
}

/// The relation as the database has it, typed; none when it does not exist.
fn found_relation(
    db: &dyn Database,
    database: Option<String>,
    schema: String,
    identifier: String,
) -> Result<Value, JinjaError> {
    let kind = db
        .relation_type(&schema, &identifier)
        .map_err(|e| jinja_error(&e))?;
    match kind {
        Some(kind) => Ok(Value::from_object(super::relation::RelationObject::create(
            [database, Some(schema), Some(identifier)],
            Some(kind.to_string()),
        )?)),
        None => Ok(Value::from(())),
    }
}
