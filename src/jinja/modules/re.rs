//! `modules.re`: Python's re on fancy-regex (backtracking, so lookaround
//! and backreferences work as in Python): match, fullmatch, search,
//! findall, sub, subn, split, escape, compile and the flags. Positions are
//! in characters, as Python counts them. Replacements take Python's `\1`
//! and `\g<name>`; a function as the replacement is not supported.
//! `re.ASCII` is accepted, but `\w`, `\d` and `\s` stay Unicode-aware.

use std::sync::Arc;

use fancy_regex::{Captures, Regex};
use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Error as JinjaError, ErrorKind as JinjaErrorKind, State};

use crate::jinja::context::unknown_method;

const IGNORECASE: i64 = 2;
const MULTILINE: i64 = 8;
const DOTALL: i64 = 16;
const VERBOSE: i64 = 64;
const ASCII: i64 = 256;

fn error(message: impl Into<String>) -> JinjaError {
    JinjaError::new(JinjaErrorKind::InvalidOperation, message.into())
}

/// A compiled pattern: `re.compile(...)`, and what every function compiles.
#[derive(Debug)]
pub struct Pattern {
    source: String,
    flags: i64,
    regex: Regex,
    /// The same pattern anchored at the start, for match().
    anchored: Regex,
    /// Anchored at both ends, for fullmatch().
    full: Regex,
}

impl Pattern {
    pub fn new(source: &str, flags: i64) -> Result<Pattern, JinjaError> {
        let mut inline = String::new();
        for (flag, letter) in [
            (IGNORECASE, 'i'),
            (MULTILINE, 'm'),
            (DOTALL, 's'),
            (VERBOSE, 'x'),
        ] {
            if flags & flag != 0 {
                inline.push(letter);
            }
        }
        let prefix = if inline.is_empty() {
            String::new()
        } else {
            format!("(?{inline})")
        };
        let translated = translate(source);
        let build = |text: String| {
            Regex::new(&text).map_err(|e| error(format!("re: invalid pattern `{source}`: {e}")))
        };
        Ok(Pattern {
            source: source.to_string(),
            flags,
            regex: build(format!("{prefix}{translated}"))?,
            anchored: build(format!("{prefix}\\A(?:{translated})"))?,
            full: build(format!("{prefix}\\A(?:{translated})\\z"))?,
        })
    }

    fn captures<'t>(
        &self,
        regex: &Regex,
        text: &'t str,
    ) -> Result<Option<Captures<'t>>, JinjaError> {
        regex
            .captures(text)
            .map_err(|e| error(format!("re: `{}`: {e}", self.source)))
    }

    fn all_captures<'t>(&self, text: &'t str) -> Result<Vec<Captures<'t>>, JinjaError> {
        self.regex
            .captures_iter(text)
            .map(|c| c.map_err(|e| error(format!("re: `{}`: {e}", self.source))))
            .collect()
    }

    fn as_match(&self, captures: Option<Captures>, text: &str) -> Value {
        match captures {
            None => Value::from(()),
            Some(captures) => Value::from_object(Match::new(&captures, &self.regex, text)),
        }
    }

    fn findall(&self, text: &str) -> Result<Value, JinjaError> {
        let groups = self.regex.captures_len() - 1;
        let group = |c: &Captures, i: usize| Value::from(c.get(i).map_or("", |m| m.as_str()));
        let items: Vec<Value> = self
            .all_captures(text)?
            .iter()
            .map(|c| match groups {
                0 => group(c, 0),
                1 => group(c, 1),
                n => Value::from((1..=n).map(|i| group(c, i)).collect::<Vec<_>>()),
            })
            .collect();
        Ok(Value::from(items))
    }

    /// (result, number of replacements)
    fn sub(
        &self,
        replacement: &str,
        text: &str,
        count: usize,
    ) -> Result<(String, usize), JinjaError> {
        let template = python_replacement(replacement)?;
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut done = 0;
        for captures in self.all_captures(text)? {
            if count > 0 && done == count {
                break;
            }
            let whole = captures.get(0).expect("group 0 always matches");
            out.push_str(&text[last..whole.start()]);
            captures.expand(&template, &mut out);
            last = whole.end();
            done += 1;
        }
        out.push_str(&text[last..]);
        Ok((out, done))
    }

    fn split(&self, text: &str, maxsplit: usize) -> Result<Value, JinjaError> {
        let mut parts = Vec::new();
        let mut last = 0;
        for (n, captures) in self.all_captures(text)?.iter().enumerate() {
            if maxsplit > 0 && n == maxsplit {
                break;
            }
            let whole = captures.get(0).expect("group 0 always matches");
            parts.push(Value::from(&text[last..whole.start()]));
            for i in 1..captures.len() {
                parts.push(
                    captures
                        .get(i)
                        .map_or(Value::from(()), |m| Value::from(m.as_str())),
                );
            }
            last = whole.end();
        }
        parts.push(Value::from(&text[last..]));
        Ok(Value::from(parts))
    }

    /// The functions of the module and the methods of a pattern, with the
    /// pattern's own arguments already taken.
    fn apply(&self, function: &str, args: &[Value]) -> Result<Value, JinjaError> {
        match function {
            "match" | "search" | "fullmatch" => {
                let (text,): (String,) = from_args(args)?;
                let regex = match function {
                    "match" => &self.anchored,
                    "fullmatch" => &self.full,
                    _ => &self.regex,
                };
                Ok(self.as_match(self.captures(regex, &text)?, &text))
            }
            "findall" => {
                let (text,): (String,) = from_args(args)?;
                self.findall(&text)
            }
            "sub" | "subn" => {
                let (replacement, text, count, kwargs): (Value, String, Option<usize>, Kwargs) =
                    from_args(args)?;
                let count = count.or(kwargs.get("count")?).unwrap_or(0);
                kwargs.assert_all_used()?;
                let Some(replacement) = replacement.as_str() else {
                    return Err(error(
                        "re.sub: weir takes a string as the replacement, not a function",
                    ));
                };
                let (result, n) = self.sub(replacement, &text, count)?;
                Ok(if function == "sub" {
                    Value::from(result)
                } else {
                    Value::from(vec![Value::from(result), Value::from(n)])
                })
            }
            "split" => {
                let (text, maxsplit, kwargs): (String, Option<usize>, Kwargs) = from_args(args)?;
                let maxsplit = maxsplit.or(kwargs.get("maxsplit")?).unwrap_or(0);
                kwargs.assert_all_used()?;
                self.split(&text, maxsplit)
            }
            other => Err(unknown_method("re.Pattern", other)),
        }
    }
}

/// Python pattern syntax that Rust's differs on: `\Z` is Rust's `\z`.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('Z') => out.push_str("\\z"),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Python's replacement syntax (`\1`, `\g<1>`, `\g<name>`, `\n`, `\\`) as
/// the regex crate's (`${1}`, `${name}`, `$$`).
fn python_replacement(replacement: &str) -> Result<String, JinjaError> {
    let mut out = String::with_capacity(replacement.len());
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => {
                    let mut number = d.to_string();
                    if let Some(e) = chars.peek().filter(|e| e.is_ascii_digit()) {
                        number.push(*e);
                        chars.next();
                    }
                    out.push_str(&format!("${{{number}}}"));
                }
                Some('g') => {
                    if chars.next() != Some('<') {
                        return Err(error("re.sub: `\\g` must be followed by `<name>`"));
                    }
                    let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return Err(error("re.sub: the replacement ends with a lone `\\`")),
            },
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A match: `group()`, `groups()`, `groupdict()`, `start()`, `end()`, `span()`.
#[derive(Debug)]
struct Match {
    /// Each group's text and character span; None when it did not take part.
    groups: Vec<Option<(String, usize, usize)>>,
    names: Vec<(String, usize)>,
}

impl Match {
    fn new(captures: &Captures, regex: &Regex, text: &str) -> Match {
        let chars = |byte: usize| text[..byte].chars().count();
        Match {
            groups: (0..captures.len())
                .map(|i| {
                    captures
                        .get(i)
                        .map(|m| (m.as_str().to_string(), chars(m.start()), chars(m.end())))
                })
                .collect(),
            names: regex
                .capture_names()
                .enumerate()
                .filter_map(|(i, name)| name.map(|n| (n.to_string(), i)))
                .collect(),
        }
    }

    fn index(&self, key: &Value) -> Result<usize, JinjaError> {
        let index = match key.as_str() {
            Some(name) => self.names.iter().find(|(n, _)| n == name).map(|(_, i)| *i),
            None => key.as_usize(),
        };
        index
            .filter(|i| *i < self.groups.len())
            .ok_or_else(|| error(format!("no such group: {key}")))
    }

    fn text(&self, index: usize) -> Value {
        self.groups[index]
            .as_ref()
            .map_or(Value::from(()), |(t, _, _)| Value::from(t.as_str()))
    }
}

impl Object for Match {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        let span = |args: &[Value]| -> Result<(i64, i64), JinjaError> {
            let (group,): (Option<Value>,) = from_args(args)?;
            let index = self.index(&group.unwrap_or(Value::from(0)))?;
            Ok(self.groups[index]
                .as_ref()
                .map_or((-1, -1), |(_, s, e)| (*s as i64, *e as i64)))
        };
        match method {
            "group" => match args {
                [] => Ok(self.text(0)),
                [one] => Ok(self.text(self.index(one)?)),
                many => Ok(Value::from(
                    many.iter()
                        .map(|g| Ok(self.text(self.index(g)?)))
                        .collect::<Result<Vec<_>, JinjaError>>()?,
                )),
            },
            "groups" => Ok(Value::from(
                (1..self.groups.len())
                    .map(|i| self.text(i))
                    .collect::<Vec<_>>(),
            )),
            "groupdict" => Ok(Value::from_iter(
                self.names
                    .iter()
                    .map(|(name, i)| (name.clone(), self.text(*i))),
            )),
            "start" => Ok(Value::from(span(args)?.0)),
            "end" => Ok(Value::from(span(args)?.1)),
            "span" => {
                let (start, end) = span(args)?;
                Ok(Value::from(vec![start, end]))
            }
            other => Err(unknown_method("re.Match", other)),
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        // `m[1]` is `m.group(1)` in Python.
        self.index(key).ok().map(|i| self.text(i))
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (text, start, end) = self.groups[0].as_ref().expect("group 0 always matches");
        write!(
            f,
            "<re.Match object; span=({start}, {end}), match='{text}'>"
        )
    }
}

/// A compiled pattern as a template value.
#[derive(Debug)]
struct CompiledPattern(Pattern);

impl Object for CompiledPattern {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "pattern" => Some(Value::from(self.0.source.as_str())),
            "flags" => Some(Value::from(self.0.flags)),
            "groups" => Some(Value::from(self.0.regex.captures_len() - 1)),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        self.0.apply(method, args)
    }
}

/// `modules.re`.
#[derive(Debug)]
pub struct Module;

impl Object for Module {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let flag = match key.as_str()? {
            "I" | "IGNORECASE" => IGNORECASE,
            "M" | "MULTILINE" => MULTILINE,
            "S" | "DOTALL" => DOTALL,
            "X" | "VERBOSE" => VERBOSE,
            "A" | "ASCII" => ASCII,
            _ => return None,
        };
        Some(Value::from(flag))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, JinjaError> {
        // Every function but escape takes the pattern first and `flags` last
        // (positionally or by keyword).
        if method == "escape" {
            let (text,): (String,) = from_args(args)?;
            return Ok(Value::from(fancy_regex::escape(&text).into_owned()));
        }
        let (pattern, rest) = args
            .split_first()
            .ok_or_else(|| error(format!("re.{method}() takes a pattern")))?;
        let pattern_text = match pattern.downcast_object_ref::<CompiledPattern>() {
            Some(compiled) => compiled.0.source.clone(),
            None => pattern
                .as_str()
                .ok_or_else(|| error(format!("re.{method}(): the pattern must be a string")))?
                .to_string(),
        };
        let (mut rest, kwargs): (Vec<Value>, Option<Kwargs>) = match rest.last() {
            Some(last) if last.is_kwargs() => (
                rest[..rest.len() - 1].to_vec(),
                Some(Kwargs::try_from(last.clone())?),
            ),
            _ => (rest.to_vec(), None),
        };
        // The positional arity of each function before `flags`.
        let before_flags = match method {
            "compile" => 0,
            "match" | "search" | "fullmatch" | "findall" => 1,
            "split" => 2,
            "sub" | "subn" => 3,
            other => return Err(unknown_method("re", other)),
        };
        let mut flags = 0;
        if rest.len() > before_flags {
            flags = rest
                .pop()
                .and_then(|f| f.as_i64())
                .ok_or_else(|| error(format!("re.{method}(): flags must be an integer")))?;
        }
        let mut passed: Vec<(String, Value)> = Vec::new();
        if let Some(kwargs) = kwargs {
            if let Some(value) = kwargs.get::<Option<i64>>("flags")? {
                flags = value;
            }
            for key in kwargs.args() {
                if key != "flags" {
                    passed.push((key.to_string(), kwargs.get::<Value>(key)?));
                }
            }
        }
        let compiled = match pattern.downcast_object_ref::<CompiledPattern>() {
            Some(compiled) if flags == 0 => Pattern::new(&compiled.0.source, compiled.0.flags)?,
            _ => Pattern::new(&pattern_text, flags)?,
        };
        if method == "compile" {
            return Ok(Value::from_object(CompiledPattern(compiled)));
        }
        if !passed.is_empty() {
            rest.push(Value::from(Kwargs::from_iter(passed)));
        }
        compiled.apply(method, &rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> Pattern {
        Pattern::new(p, 0).unwrap()
    }

    #[test]
    fn substitutes_with_python_replacements() {
        let p = pattern(r"(?P<word>\w+)@(\w+)");
        let (out, n) = p
            .sub(r"\2 at \g<word> ($1)", "ann@shop, bob@web", 0)
            .unwrap();
        assert_eq!(out, "shop at ann ($1), web at bob ($1)");
        assert_eq!(n, 2);
        assert_eq!(pattern("a").sub("b", "aaa", 2).unwrap().0, "bba");
    }

    #[test]
    fn splits_and_finds_as_python() {
        let p = pattern(r"(,)\s*");
        let parts = p.split("a, b,c", 0).unwrap();
        assert_eq!(parts.to_string(), r#"["a", ",", "b", ",", "c"]"#);
        assert_eq!(
            pattern(r"\d+").findall("a1b22").unwrap().to_string(),
            r#"["1", "22"]"#
        );
        assert_eq!(
            pattern(r"(\w)=(\d)")
                .findall("a=1 b=2")
                .unwrap()
                .to_string(),
            r#"[["a", "1"], ["b", "2"]]"#
        );
    }

    #[test]
    fn lookaround_backreferences_and_anchors() {
        let p = pattern(r"(?<=\$)(\d+)(?!\d)");
        assert!(p.captures(&p.regex, "cost $42").unwrap().is_some());
        let p = pattern(r"(\w)\1");
        assert!(p.captures(&p.regex, "book").unwrap().is_some());
        let p = pattern(r"b");
        assert!(p.captures(&p.anchored, "abc").unwrap().is_none());
        assert!(
            pattern(r"abc\Z")
                .captures(&pattern(r"abc\Z").regex, "xabc")
                .unwrap()
                .is_some()
        );
        assert!(Pattern::new("(", 0).is_err());
    }

    #[test]
    fn flags_are_python_values() {
        let p = Pattern::new("^b", IGNORECASE | MULTILINE).unwrap();
        assert!(p.captures(&p.regex, "a\nB").unwrap().is_some());
    }
}
