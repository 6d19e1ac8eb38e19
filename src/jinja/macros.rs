//! Macros from the project's macro-paths. Each macro becomes its own small
//! template and a global function, so any macro can call any other, and
//! `return(...)` hands a value back to the caller as in dbt.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::value::Value;
use minijinja::{Environment, State};

use crate::error::{Error, ErrorKind, Result};
use crate::project::ProjectFile;

/// One `{% macro %}` block.
#[derive(Debug, Clone, PartialEq)]
pub struct MacroDef {
    pub name: String,
    /// The file it is defined in, as errors name it.
    pub file: PathBuf,
    /// The template holding only this macro, padded with newlines so its
    /// line numbers are those of the file.
    pub template_name: String,
    pub source: String,
}

/// Every macro of the project, by name.
#[derive(Debug, Clone, Default)]
pub struct Macros {
    pub by_name: BTreeMap<String, MacroDef>,
}

impl Macros {
    pub fn parse(root: &Path, files: &[ProjectFile]) -> Result<Macros> {
        let mut macros = Macros::default();
        for file in files {
            let path = root.join(&file.original_file_path);
            for block in macro_blocks(&file.text).map_err(|e| e.in_file(&path))? {
                let template_name = format!("{}#{}", file.original_file_path, block.name);
                let def = MacroDef {
                    source: "\n".repeat(block.line - 1) + &file.text[block.start..block.end],
                    name: block.name,
                    file: path.clone(),
                    template_name,
                };
                if let Some(previous) = macros.by_name.get(&def.name) {
                    return Err(Error::new(
                        ErrorKind::Project,
                        format!(
                            "macro `{}` is defined twice: here and in {}",
                            def.name,
                            previous.file.display()
                        ),
                    )
                    .in_file(&path)
                    .at_line(block.line));
                }
                macros.by_name.insert(def.name.clone(), def);
            }
        }
        Ok(macros)
    }

    /// The file a macro template belongs to.
    pub fn file_of_template(&self, template_name: &str) -> Option<&Path> {
        let name = template_name.rsplit_once('#')?.1;
        self.by_name
            .get(name)
            .filter(|d| d.template_name == template_name)
            .map(|d| d.file.as_path())
    }

    pub fn defines(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
}

struct Block {
    name: String,
    start: usize,
    end: usize,
    line: usize,
}

/// Find `{% macro name(...) %} ... {% endmacro %}` blocks (with `-` whitespace control).
fn macro_blocks(text: &str) -> Result<Vec<Block>> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize)> = None;
    let mut position = 0;
    while let Some(found) = text[position..].find("{%") {
        let start = position + found;
        let Some(close) = text[start..].find("%}") else {
            break;
        };
        let end = start + close + 2;
        let tag = text[start + 2..end - 2]
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        let keyword = tag
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("");
        match (keyword, &open) {
            ("macro", None) => {
                let name: String = tag["macro".len()..]
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                open = Some((name, start));
            }
            ("macro", Some((name, _))) => {
                return Err(Error::new(
                    ErrorKind::Template,
                    format!("macro inside macro `{name}`: close it with {{% endmacro %}} first"),
                )
                .at_line(crate::error::line_of_offset(text, start)));
            }
            ("endmacro", Some(_)) => {
                let (name, block_start) = open.take().expect("checked above");
                blocks.push(Block {
                    name,
                    start: block_start,
                    end,
                    line: crate::error::line_of_offset(text, block_start),
                });
            }
            _ => {}
        }
        position = end;
    }
    if let Some((name, start)) = open {
        return Err(Error::new(
            ErrorKind::Template,
            format!("macro `{name}` is never closed with {{% endmacro %}}"),
        )
        .at_line(crate::error::line_of_offset(text, start)));
    }
    Ok(blocks)
}

thread_local! {
    /// The value passed to `return(...)`, on its way to the macro call that catches it.
    static RETURNED: RefCell<Option<Value>> = const { RefCell::new(None) };
}

/// `return(value)`: end the macro and hand `value` to its caller.
pub fn return_value(value: Value) -> std::result::Result<Value, minijinja::Error> {
    RETURNED.with(|slot| *slot.borrow_mut() = Some(value));
    Err(minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        "return() used outside a macro",
    ))
}

/// Names from the caller's context that a macro sees, as in dbt.
const FORWARDED: &[&str] = &[
    "ref",
    "source",
    "config",
    "var",
    "target",
    "this",
    "model",
    "project_name",
];

/// Call a macro from any template: its template is evaluated with the
/// caller's dbt context, so `ref`, `this` and `config` keep working inside.
pub fn call_macro(
    state: &State,
    template_name: &str,
    name: &str,
    args: &[Value],
) -> std::result::Result<Value, minijinja::Error> {
    let mut ctx = BTreeMap::new();
    for key in FORWARDED {
        if let Some(value) = state.lookup(key) {
            ctx.insert(*key, value);
        }
    }
    invoke(state.env(), template_name, name, args, Value::from(ctx))
}

/// Evaluate a macro's template with `ctx` and call the macro; a `return(...)`
/// inside it becomes the result.
pub fn invoke(
    env: &Environment,
    template_name: &str,
    name: &str,
    args: &[Value],
    ctx: Value,
) -> std::result::Result<Value, minijinja::Error> {
    let template = env.get_template(template_name)?;
    let module = template.render_captured(ctx)?;
    match module.state().call_macro(name, args) {
        Ok(output) => Ok(Value::from_safe_string(output)),
        Err(err) => match RETURNED.with(|slot| slot.borrow_mut().take()) {
            Some(value) => Ok(value),
            None => Err(err),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> ProjectFile {
        ProjectFile {
            original_file_path: path.into(),
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn finds_blocks_with_whitespace_control_and_keeps_lines() {
        let text = "-- header\n{% macro a(x) %}{{ x }}{% endmacro %}\n\n{%- macro  b() -%}\nb\n{%- endmacro -%}\n";
        let macros = Macros::parse(Path::new("p"), &[file("macros/m.sql", text)]).unwrap();
        let b = &macros.by_name["b"];
        assert_eq!(b.source, "\n\n\n{%- macro  b() -%}\nb\n{%- endmacro -%}");
        assert_eq!(b.file, Path::new("p/macros/m.sql"));
        assert_eq!(
            macros.file_of_template("macros/m.sql#a"),
            Some(Path::new("p/macros/m.sql"))
        );
    }

    #[test]
    fn an_unclosed_macro_is_an_error_with_its_line() {
        let err = Macros::parse(Path::new(""), &[file("macros/m.sql", "\n{% macro a() %}x")])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "macros/m.sql:2: macro `a` is never closed with {% endmacro %}"
        );
    }

    #[test]
    fn a_macro_defined_twice_is_an_error() {
        let files = [
            file("macros/a.sql", "{% macro x() %}{% endmacro %}"),
            file("macros/b.sql", "{% macro x() %}{% endmacro %}"),
        ];
        let err = Macros::parse(Path::new(""), &files).unwrap_err();
        assert_eq!(
            err.to_string(),
            "macros/b.sql:1: macro `x` is defined twice: here and in macros/a.sql"
        );
    }
}
