//! dbt's Relation as templates see it: what `ref`, `source`, `this` and
//! `api.Relation.create` return. It renders as the quoted name
//! (`"db"."schema"."name"`, or the bare CTE name of an ephemeral model) and
//! has dbt's attributes and methods (`include`, `incorporate`, `quote`,
//! `render`, dict-style `get`). Immutable: every method returns a new one.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error as JinjaError, ErrorKind as JinjaErrorKind, State};

use super::context::{PLACEHOLDER, RenderCapture, unknown_method};
use crate::base::quote::Quoted;
use crate::manifest::Relation;

/// What an ephemeral model's CTE is named after: `__dbt__cte__<name>`.
pub const EPHEMERAL_PREFIX: &str = "__dbt__cte__";

/// The three parts of a relation's name, in order.
const PARTS: [&str; 3] = ["database", "schema", "identifier"];

/// dbt's relation types.
const TYPES: [&str; 5] = ["table", "view", "cte", "materialized_view", "external"];

fn error(message: impl Into<String>) -> JinjaError {
    JinjaError::new(JinjaErrorKind::InvalidOperation, message.into())
}

/// A relation: its path, type, and which parts render and are quoted.
#[derive(Debug, Clone)]
pub struct RelationObject {
    /// database, schema, identifier; None for a part the relation has not.
    path: [Option<String>; 3],
    kind: Option<String>,
    include: [bool; 3],
    quote: [bool; 3],
    /// On the first render pass, before relations are named: the node it
    /// stands for, rendered as a placeholder. Reading anything that depends
    /// on the name marks the render to be done again.
    pending: Option<(String, Arc<RenderCapture>)>,
}

impl RelationObject {
    /// A relation named by the compile: an ephemeral model's CTE has neither
    /// database nor schema, renders unquoted, and is of type `cte`.
    pub fn resolved(relation: &Relation) -> RelationObject {
        let is_cte = relation.database.is_empty() && relation.schema.is_empty();
        if is_cte {
            return RelationObject {
                path: [None, None, Some(relation.identifier.clone())],
                kind: Some("cte".to_string()),
                include: [true; 3],
                quote: [true, true, false],
                pending: None,
            };
        }
        RelationObject {
            path: [
                Some(relation.database.clone()),
                Some(relation.schema.clone()),
                Some(relation.identifier.clone()),
            ],
            kind: None,
            include: [true; 3],
            quote: [
                relation.quoting.database,
                relation.quoting.schema,
                relation.quoting.identifier,
            ],
            pending: None,
        }
    }

    /// The first pass's stand-in for the relation of node `unique_id`.
    pub fn placeholder(unique_id: &str, capture: &Arc<RenderCapture>) -> RelationObject {
        RelationObject {
            path: [None, None, None],
            kind: None,
            include: [true; 3],
            quote: [true; 3],
            pending: Some((unique_id.to_string(), capture.clone())),
        }
    }

    /// `api.Relation.create(database=..., schema=..., identifier=..., type=...)`.
    pub fn create(
        path: [Option<String>; 3],
        kind: Option<String>,
    ) -> Result<RelationObject, JinjaError> {
        Ok(RelationObject {
            path,
            kind: check_type(kind)?,
            include: [true; 3],
            quote: [true; 3],
            pending: None,
        })
    }

    /// The rendering has to wait for the relation's name: note it.
    fn needs_name(&self) {
        if let Some((_, capture)) = &self.pending {
            capture.needs_final_render.store(true, Ordering::Relaxed);
        }
    }

    fn part(&self, index: usize) -> Value {
        self.needs_name();
        match (&self.pending, &self.path[index]) {
            (Some(_), _) => Value::from(""),
            (None, Some(part)) => Value::from(part.as_str()),
            (None, None) => Value::from(()),
        }
    }

    fn is(&self, kind: &str) -> Value {
        self.needs_name();
        Value::from(self.kind.as_deref() == Some(kind))
    }

    /// `{"database": ..., "schema": ..., "identifier": ...}` with booleans.
    fn policy(flags: &[bool; 3]) -> Value {
        PARTS
            .iter()
            .zip(flags)
            .map(|(part, flag)| (*part, Value::from(*flag)))
            .collect()
    }

    fn path_value(&self) -> Value {
        (0..3).map(|i| (PARTS[i], self.part(i))).collect()
    }

    /// A copy with the flags named in `kwargs` changed (`include`, `quote`).
    fn with_flags(
        &self,
        kwargs: &Kwargs,
        flags: impl Fn(&mut RelationObject) -> &mut [bool; 3],
    ) -> Result<RelationObject, JinjaError> {
        self.needs_name();
        let mut out = self.clone();
        for (i, part) in PARTS.iter().enumerate() {
            if let Some(flag) = kwargs.get::<Option<Value>>(part)?
                && !flag.is_none()
            {
                flags(&mut out)[i] = flag.is_true();
            }
        }
        kwargs.assert_all_used()?;
        Ok(out)
    }

    /// `incorporate(path={...}, type=...)`: a copy with parts or type replaced.
    fn incorporate(&self, kwargs: &Kwargs) -> Result<RelationObject, JinjaError> {
        let mut out = self.clone();
        if let Some(path) = kwargs.get::<Option<Value>>("path")?
            && !path.is_none()
        {
            for key in path.try_iter()? {
                let name = key.as_str().unwrap_or_default();
                let Some(index) = PARTS.iter().position(|p| *p == name) else {
                    return Err(error(format!(
                        "incorporate(path=...): `{key}` is not database, schema or identifier"
                    )));
                };
                out.path[index] = optional_text(path.get_item(&key)?);
            }
        }
        if let Some(kind) = kwargs.get::<Option<Value>>("type")? {
            out.kind = check_type(optional_text(kind))?;
        }
        kwargs.assert_all_used()?;
        self.needs_name();
        Ok(out)
    }

    /// The name as dbt renders it: the included, present parts, joined by
    /// dots, each quoted if its policy says so.
    fn write_name(&self, f: &mut impl fmt::Write) -> fmt::Result {
        if let Some((unique_id, _)) = &self.pending {
            return write!(f, "{PLACEHOLDER}{unique_id}{PLACEHOLDER}");
        }
        let mut first = true;
        for i in 0..3 {
            let Some(part) = self.path[i].as_deref().filter(|_| self.include[i]) else {
                continue;
            };
            if !first {
                f.write_char('.')?;
            }
            first = false;
            if self.quote[i] {
                write!(f, "{}", Quoted(part))?;
            } else {
                f.write_str(part)?;
            }
        }
        Ok(())
    }

    fn rendered(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_name(&mut out);
        out
    }
}

/// A string, or None for none/undefined.
fn optional_text(value: Value) -> Option<String> {
    if value.is_none() || value.is_undefined() {
        None
    } else {
        Some(
            value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string),
        )
    }
}

fn check_type(kind: Option<String>) -> Result<Option<String>, JinjaError> {
    match kind {
        Some(kind) if !TYPES.contains(&kind.as_str()) => Err(error(format!(
            "`{kind}` is not a relation type: one of {}",
            TYPES.join(", ")
        ))),
        other => Ok(other),
    }
}

impl Object for RelationObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        // dbt's Relation is dict-like: packages test `relation is mapping`.
        ObjectRepr::Map
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["path", "type", "quote_policy", "include_policy", "metadata"])
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "database" => self.part(0),
            "schema" => self.part(1),
            "identifier" | "name" | "table" => self.part(2),
            "type" => {
                self.needs_name();
                Value::from(self.kind.clone())
            }
            "is_table" => self.is("table"),
            "is_view" => self.is("view"),
            "is_cte" => self.is("cte"),
            "is_materialized_view" => self.is("materialized_view"),
            "can_be_renamed" | "can_be_replaced" => {
                self.needs_name();
                Value::from(matches!(self.kind.as_deref(), Some("table" | "view")))
            }
            "path" => self.path_value(),
            "quote_policy" => Self::policy(&self.quote),
            "include_policy" => Self::policy(&self.include),
            "metadata" => Value::from_iter([("type", "PostgresRelation")]),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let derived = |relation: RelationObject| Ok(Value::from_object(relation));
        match method {
            "include" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                derived(self.with_flags(&kwargs, |r| &mut r.include)?)
            }
            "quote" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                derived(self.with_flags(&kwargs, |r| &mut r.quote)?)
            }
            "incorporate" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                derived(self.incorporate(&kwargs)?)
            }
            "replace_path" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                let mut out = (**self).clone();
                for (i, part) in PARTS.iter().enumerate() {
                    if let Some(value) = kwargs.get::<Option<Value>>(part)? {
                        out.path[i] = optional_text(value);
                    }
                }
                kwargs.assert_all_used()?;
                self.needs_name();
                derived(out)
            }
            "without_identifier" => {
                let () = from_args(args)?;
                self.needs_name();
                let mut out = (**self).clone();
                out.include[2] = false;
                derived(out)
            }
            "render" => {
                let () = from_args(args)?;
                self.needs_name();
                Ok(Value::from(self.rendered()))
            }
            "information_schema" => {
                let (view,): (Option<String>,) = from_args(args)?;
                self.needs_name();
                let mut schema = RelationObject {
                    path: [
                        self.path[0].clone(),
                        Some("INFORMATION_SCHEMA".into()),
                        view,
                    ],
                    kind: None,
                    include: [true; 3],
                    quote: [true, false, false],
                    pending: None,
                };
                if self.pending.is_some() {
                    schema.path[0] = Some(String::new());
                }
                derived(schema)
            }
            other => Err(unknown_method("relation", other)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_name(f)
    }
}

/// `api.Relation`: `create(...)` and `add_ephemeral_prefix(name)`.
#[derive(Debug)]
pub struct RelationFactory;

impl Object for RelationFactory {
    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        match method {
            "create" => {
                let (database, schema, identifier, kwargs): (
                    Option<Value>,
                    Option<Value>,
                    Option<Value>,
                    Kwargs,
                ) = from_args(args)?;
                let mut path = [database, schema, identifier].map(|v| v.and_then(optional_text));
                for (i, part) in PARTS.iter().enumerate() {
                    if let Some(value) = kwargs.get::<Option<Value>>(part)? {
                        path[i] = optional_text(value);
                    }
                }
                let kind = kwargs.get::<Option<Value>>("type")?.and_then(optional_text);
                // Accepted as dbt accepts them; PostgreSQL quotes every part.
                for ignored in ["quote_policy", "include_policy", "limit", "metadata"] {
                    let _ = kwargs.get::<Option<Value>>(ignored)?;
                }
                kwargs.assert_all_used()?;
                Ok(Value::from_object(RelationObject::create(path, kind)?))
            }
            "add_ephemeral_prefix" => {
                let (name,): (String,) = from_args(args)?;
                Ok(Value::from(format!("{EPHEMERAL_PREFIX}{name}")))
            }
            other => Err(unknown_method("api.Relation", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, relation: RelationObject) -> String {
        let mut env = minijinja::Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_global(
            "api",
            Value::from_iter([("Relation", Value::from_object(RelationFactory))]),
        );
        env.render_str(
            template,
            minijinja::context! { r => Value::from_object(relation) },
        )
        .unwrap()
    }

    fn table() -> RelationObject {
        RelationObject::resolved(&Relation {
            quoting: Default::default(),
            database: "db".into(),
            schema: "sch".into(),
            identifier: "t".into(),
        })
    }

    #[test]
    fn renders_as_the_quoted_name_and_has_its_parts() {
        assert_eq!(render("{{ r }}", table()), r#""db"."sch"."t""#);
        assert_eq!(
            render(
                "{{ r.database }} {{ r.schema }} {{ r.identifier }} {{ r.name }} {{ r.type }}",
                table()
            ),
            "db sch t t None"
        );
        assert_eq!(
            render("{{ r.render() }}|{{ r | string }}", table()),
            r#""db"."sch"."t"|"db"."sch"."t""#
        );
    }

    #[test]
    fn include_quote_and_incorporate_make_new_relations() {
        let out = render(
            "{{ r.include(database=false) }} {{ r.quote(identifier=false) }} \
             {{ r.incorporate(path={'identifier': 't__tmp', 'database': none}) }} \
             {{ r.incorporate(type='table').is_table }} {{ r.is_table }} \
             {{ r.without_identifier() }}",
            table(),
        );
        assert_eq!(
            out,
            r#""sch"."t" "db"."sch".t "sch"."t__tmp" True False "db"."sch""#
        );
    }

    #[test]
    fn is_a_mapping_with_dbt_metadata() {
        let out = render(
            "{{ r is mapping }} {{ r.get('metadata', {}).get('type', '').endswith('Relation') }} \
             {{ r.get('nothing', 'default') }} {{ r.path.schema }} {{ r.include_policy.database }}",
            table(),
        );
        assert_eq!(out, "True True default sch True");
    }

    #[test]
    fn an_ephemeral_model_is_a_bare_cte_name() {
        let cte = RelationObject::resolved(&Relation {
            quoting: Default::default(),
            database: String::new(),
            schema: String::new(),
            identifier: "__dbt__cte__e".into(),
        });
        let out = render(
            "{{ r }} {{ r.is_cte }} {{ r.name.startswith(api.Relation.add_ephemeral_prefix('')) }}",
            cte,
        );
        assert_eq!(out, "__dbt__cte__e True True");
    }

    #[test]
    fn create_takes_parts_by_name_or_position() {
        let mut env = minijinja::Environment::new();
        env.add_global(
            "api",
            Value::from_iter([("Relation", Value::from_object(RelationFactory))]),
        );
        let out = env
            .render_str(
                "{{ api.Relation.create(schema='s', identifier='t') }} \
                 {{ api.Relation.create('d', 's', 't', type='view').is_view }}",
                (),
            )
            .unwrap();
        assert_eq!(out, r#""s"."t" True"#);
        let err = env
            .render_str("{{ api.Relation.create(identifier='t', type='nope') }}", ())
            .unwrap_err();
        assert!(err.to_string().contains("not a relation type"), "{err}");
    }

    #[test]
    fn a_placeholder_renders_its_marker_and_asks_for_a_final_render() {
        let capture = Arc::new(RenderCapture::default());
        let out = render(
            "{{ r }}|{{ r.get('metadata').type }}",
            RelationObject::placeholder("model.p.a", &capture),
        );
        assert_eq!(out, "\u{1a}model.p.a\u{1a}|PostgresRelation");
        assert!(!capture.needs_final_render.load(Ordering::Relaxed));
        render(
            "{{ r.schema }}",
            RelationObject::placeholder("model.p.a", &capture),
        );
        assert!(capture.needs_final_render.load(Ordering::Relaxed));
    }
}
