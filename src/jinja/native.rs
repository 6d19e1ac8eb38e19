//! dbt's native rendering of YAML values (profiles.yml, dbt_project.yml,
//! properties files): a value that is one `{{ ... }}` keeps the type of what
//! the expression returns (`"{{ target.name != 'ci' }}"` is a bool), and the
//! filters `as_text`, `as_bool`, `as_number` and `as_native` turn the
//! rendered text into the value it spells (Python's literal syntax). In SQL
//! the same filters return their input unchanged, as dbt's do.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, Value};
use minijinja::{Environment, ErrorKind as JinjaErrorKind};
use serde_json::{Map, Value as Json};

thread_local! {
    /// True while a YAML value is evaluated natively: the filters then mark
    /// their result instead of passing it through.
    static NATIVE: Cell<bool> = const { Cell::new(false) };
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    Text,
    Bool,
    Number,
    Native,
}

/// A value passed through one of the filters in a native render: its text,
/// and what the filter asked it to become.
#[derive(Debug)]
struct Marked {
    mark: Mark,
    text: String,
}

impl fmt::Display for Marked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Object for Marked {
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !self.text.is_empty()
    }
}

fn filter(mark: Mark) -> impl Fn(Value) -> Value + Send + Sync + 'static {
    move |value: Value| {
        if !NATIVE.with(Cell::get) {
            return value;
        }
        let text = match value.downcast_object_ref::<Marked>() {
            Some(marked) => marked.text.clone(),
            None => value.to_string(),
        };
        Value::from_object(Marked { mark, text })
    }
}

/// The four filters, in every environment weir makes.
pub fn register(env: &mut Environment<'static>) {
    env.add_filter("as_text", filter(Mark::Text));
    env.add_filter("as_bool", filter(Mark::Bool));
    env.add_filter("as_number", filter(Mark::Number));
    env.add_filter("as_native", filter(Mark::Native));
}

/// The expression of a value that is one `{{ ... }}` and nothing else.
fn lone_expression(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner)
}

/// Render a YAML string value as dbt's native renderer does: text without
/// Jinja is itself; one `{{ expr }}` is the value of `expr` (a marked value
/// converted as its filter says); anything else renders to text.
pub fn render(
    env: &Environment<'_>,
    text: &str,
    ctx: Value,
) -> std::result::Result<Json, minijinja::Error> {
    if !text.contains("{{") && !text.contains("{%") {
        return Ok(Json::String(text.to_string()));
    }
    if let Some(expression) = lone_expression(text)
        && let Ok(compiled) = env.compile_expression(expression)
    {
        let previous = NATIVE.with(|n| n.replace(true));
        let value = compiled.eval(ctx);
        NATIVE.with(|n| n.set(previous));
        return to_native(value?);
    }
    env.render_str(text, ctx).map(Json::String)
}

fn to_native(value: Value) -> std::result::Result<Json, minijinja::Error> {
    let Some(marked) = value.downcast_object_ref::<Marked>() else {
        if value.is_undefined() {
            return Ok(Json::String(String::new()));
        }
        return serde_json::to_value(&value)
            .map_err(|e| minijinja::Error::new(JinjaErrorKind::InvalidOperation, e.to_string()));
    };
    if marked.mark == Mark::Text {
        return Ok(Json::String(marked.text.clone()));
    }
    let parsed = literal(&marked.text);
    let fail = |what: &str| {
        minijinja::Error::new(
            JinjaErrorKind::InvalidOperation,
            format!(
                "could not convert value '{}' into type '{what}'",
                marked.text
            ),
        )
    };
    match (marked.mark, parsed) {
        (Mark::Bool, Some(Json::Bool(b))) => Ok(Json::Bool(b)),
        (Mark::Bool, _) => Err(fail("bool")),
        (Mark::Number, Some(Json::Number(n))) => Ok(Json::Number(n)),
        (Mark::Number, _) => Err(fail("number")),
        (_, Some(value)) => Ok(value),
        (_, None) => Ok(Json::String(marked.text.clone())),
    }
}

/// A Python literal (what `ast.literal_eval` reads): numbers, quoted
/// strings, True/False/None, lists, tuples and dicts of them. None when
/// the text is not one.
pub fn literal(text: &str) -> Option<Json> {
    let mut parser = Literal {
        chars: text.trim_start_matches([' ', '\t']).chars().collect(),
        at: 0,
    };
    let value = parser.value()?;
    parser.space();
    (parser.at == parser.chars.len()).then_some(value)
}

struct Literal {
    chars: Vec<char>,
    at: usize,
}

impl Literal {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.space();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Json> {
        self.space();
        match self.peek()? {
            '\'' | '"' => self.string().map(Json::String),
            '[' => self.items(']').map(Json::Array),
            '(' => self.items(')').map(Json::Array),
            '{' => self.dict(),
            '-' | '+' | '.' | '0'..='9' => self.number(),
            _ => {
                let word: String = self.chars[self.at..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .collect();
                self.at += word.chars().count();
                match word.as_str() {
                    "True" => Some(Json::Bool(true)),
                    "False" => Some(Json::Bool(false)),
                    "None" => Some(Json::Null),
                    _ => None,
                }
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.at += 1;
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.at += 1;
            match c {
                c if c == quote => return Some(out),
                '\n' => return None,
                '\\' => {
                    let escaped = self.peek()?;
                    self.at += 1;
                    match escaped {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        '\\' | '\'' | '"' => out.push(escaped),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn items(&mut self, close: char) -> Option<Vec<Json>> {
        self.at += 1;
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.value()?);
            if !self.eat(',') {
                return self.eat(close).then_some(items);
            }
        }
    }

    fn dict(&mut self) -> Option<Json> {
        self.at += 1;
        let mut map = Map::new();
        loop {
            if self.eat('}') {
                return Some(Json::Object(map));
            }
            let key = match self.value()? {
                Json::String(s) => s,
                other => other.to_string(),
            };
            if !self.eat(':') {
                return None;
            }
            map.insert(key, self.value()?);
            if !self.eat(',') {
                return self.eat('}').then_some(Json::Object(map));
            }
        }
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
        {
            // A sign only leads the number or its exponent.
            let c = self.peek()?;
            if matches!(c, '+' | '-')
                && self.at != start
                && !matches!(self.chars[self.at - 1], 'e' | 'E')
            {
                break;
            }
            self.at += 1;
        }
        let text: String = self.chars[start..self.at]
            .iter()
            .filter(|c| **c != '_')
            .collect();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(&text)),
        };
        let radix = |prefix: [&str; 2], radix| {
            prefix
                .iter()
                .find_map(|p| digits.strip_prefix(p))
                .and_then(|d| i64::from_str_radix(d, radix).ok())
        };
        let integer = radix(["0x", "0X"], 16)
            .or_else(|| radix(["0o", "0O"], 8))
            .or_else(|| radix(["0b", "0B"], 2))
            .or_else(|| {
                // Python refuses leading zeros (`007`) but for zero itself.
                let leading_zero = digits.len() > 1 && digits.starts_with('0');
                (!leading_zero || digits.chars().all(|c| c == '0'))
                    .then(|| digits.parse::<i64>().ok())
                    .flatten()
            });
        if let Some(n) = integer {
            return Some(Json::from(if negative { -n } else { n }));
        }
        let is_float = digits.contains(['.', 'e', 'E']);
        let float: f64 = digits.parse().ok().filter(|_| is_float)?;
        let float = if negative { -float } else { float };
        serde_json::Number::from_f64(float).map(Json::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> Environment<'static> {
        let mut env = Environment::new();
        register(&mut env);
        env
    }

    fn native(text: &str) -> std::result::Result<Json, minijinja::Error> {
        render(
            &env(),
            text,
            minijinja::context! { port => "5433", flag => "True" },
        )
    }

    #[test]
    fn one_expression_keeps_its_type() {
        assert_eq!(native("{{ 1 + 1 }}").unwrap(), json!(2));
        assert_eq!(native("{{ 'ci' != 'dev' }}").unwrap(), json!(true));
        assert_eq!(native("{{ port }}").unwrap(), json!("5433"));
        assert_eq!(native("plain").unwrap(), json!("plain"));
        assert_eq!(native("p{{ port }}").unwrap(), json!("p5433"));
    }

    #[test]
    fn filters_convert_the_rendered_text() {
        assert_eq!(native("{{ port | as_number }}").unwrap(), json!(5433));
        assert_eq!(native("{{ flag | as_bool }}").unwrap(), json!(true));
        assert_eq!(
            native("{{ '[1, \"a\"]' | as_native }}").unwrap(),
            json!([1, "a"])
        );
        assert_eq!(native("{{ 5 | as_text }}").unwrap(), json!("5"));
        assert_eq!(native("{{ 'x' | as_native }}").unwrap(), json!("x"));
        let err = native("{{ 'yes' | as_bool }}").unwrap_err();
        assert!(err.to_string().contains("into type 'bool'"), "{err}");
        assert!(native("{{ 'True' | as_number }}").is_err());
        // Inside a longer text the filters pass the text through.
        assert_eq!(native("p={{ port | as_number }}").unwrap(), json!("p=5433"));
        assert_eq!(env().render_str("{{ 3 | as_number }}", ()).unwrap(), "3");
    }

    #[test]
    fn python_literals() {
        assert_eq!(literal("  -12"), Some(json!(-12)));
        assert_eq!(literal("1_000"), Some(json!(1000)));
        assert_eq!(literal("0x1f"), Some(json!(31)));
        assert_eq!(literal("2.5e1"), Some(json!(25.0)));
        assert_eq!(literal("None"), Some(json!(null)));
        assert_eq!(
            literal("{'a': (1, False), \"b\": 'it\\'s'}"),
            Some(json!({"a": [1, false], "b": "it's"}))
        );
        assert_eq!(literal("007"), None);
        assert_eq!(literal("true"), None);
        assert_eq!(literal("1 2"), None);
    }
}
