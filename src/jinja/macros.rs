//! Macros from the project's macro-paths. Each macro becomes its own small
//! template and a global function, so any macro can call any other, and
//! `return(...)` hands a value back to the caller as in dbt.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, State};

use crate::error::{Error, ErrorKind, Result};
use crate::project::{Project, ProjectFile};

/// One `{% macro %}` block.
#[derive(Debug, Clone, PartialEq)]
pub struct MacroDef {
    pub name: String,
    /// `dbt` for weir's built-in macros, else the project's name.
    pub package: String,
    /// The file it is defined in, as errors name it.
    pub file: PathBuf,
    /// The template holding only this macro, padded with newlines so its
    /// line numbers are those of the file.
    pub template_name: String,
    pub source: String,
    /// Its parameters, when its body reads `varargs` or `kwargs`: the calls
    /// of such a macro pass extra arguments there, as in dbt.
    pub catch_all: Option<Arc<CatchAll>>,
}

/// The parameters of a macro that takes extra arguments through dbt's
/// implicit `varargs` (positional) or `kwargs` (keyword).
#[derive(Debug, Clone, PartialEq)]
pub struct CatchAll {
    params: Vec<String>,
    varargs: bool,
    kwargs: bool,
}

/// Every macro of the project and its packages.
#[derive(Debug, Clone, Default)]
pub struct Macros {
    /// The macro an unqualified call reaches: the root project's, else a
    /// package's, else weir's built-in one.
    pub by_name: BTreeMap<String, MacroDef>,
    /// Package name -> its macros, for `package.macro(...)` calls.
    pub by_package: BTreeMap<String, BTreeMap<String, MacroDef>>,
}

/// weir's own macros, standing in for dbt's global project.
const BUILTINS: &[(&str, &str)] = &[
    ("tests.sql", include_str!("builtins/tests.sql")),
    ("cross_db.sql", include_str!("builtins/cross_db.sql")),
    ("types.sql", include_str!("builtins/types.sql")),
    ("helpers.sql", include_str!("builtins/helpers.sql")),
];

/// The package of weir's built-in macros, as dbt names its global project.
pub const BUILTIN_PACKAGE: &str = "dbt";

/// The built-in macros, parsed once per process.
fn builtin_macros() -> &'static Macros {
    static BUILT: std::sync::OnceLock<Macros> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let mut macros = Macros::default();
        for (name, text) in BUILTINS {
            let file = ProjectFile {
                original_file_path: format!("<weir>/macros/{name}"),
                path: name.to_string(),
                text: text.to_string(),
            };
            macros
                .add_file(Path::new(""), BUILTIN_PACKAGE, &file)
                .expect("weir's built-in macros parse");
        }
        macros
    })
}

/// The source of a built-in macro's template, for the environment's loader:
/// built-in macros are compiled only when a template calls them.
pub fn builtin_template(template_name: &str) -> Option<String> {
    builtin_macros()
        .of_template(template_name)
        .map(|def| def.source.clone())
}

impl Macros {
    /// weir's built-in macros, then the packages', then the project's: a later
    /// one with the name of an earlier one wins unqualified calls.
    pub fn load(project: &Project) -> Result<Macros> {
        let packages = project.packages.iter().chain([project]);
        Macros::from_files(
            packages.map(|p| (p.root.as_path(), p.name.as_str(), p.macros.as_slice())),
        )
    }

    /// Built-ins, then each (root, package name, macro files) in order.
    pub fn from_files<'a>(
        packages: impl IntoIterator<Item = (&'a Path, &'a str, &'a [ProjectFile])>,
    ) -> Result<Macros> {
        let mut macros = builtin_macros().clone();
        for (root, package, files) in packages {
            for file in files {
                macros.add_file(root, package, file)?;
            }
        }
        Ok(macros)
    }

    fn add_file(&mut self, root: &Path, package: &str, file: &ProjectFile) -> Result<()> {
        let path = root.join(&file.original_file_path);
        for block in macro_blocks(&file.text).map_err(|e| e.in_file(&path))? {
            let template_name = format!("{package}/{}#{}", file.original_file_path, block.name);
            let text = &file.text[block.start..block.end];
            let text = match block.kind {
                BlockKind::Macro => text.to_string(),
                BlockKind::Test => test_block_as_macro(text),
            };
            let text = super::mutable::rewrite_empty_literals(&text).into_owned();
            let def = MacroDef {
                catch_all: CatchAll::of(&text).map(Arc::new),
                source: "\n".repeat(block.line - 1) + &text,
                name: block.name,
                package: package.to_string(),
                file: path.clone(),
                template_name,
            };
            let namespace = self.by_package.entry(package.to_string()).or_default();
            if let Some(previous) = namespace.get(&def.name) {
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
            namespace.insert(def.name.clone(), def.clone());
            self.by_name.insert(def.name.clone(), def);
        }
        Ok(())
    }

    /// Every macro, each once.
    pub fn all(&self) -> impl Iterator<Item = &MacroDef> {
        self.by_package.values().flat_map(BTreeMap::values)
    }

    /// The macro a template was made from.
    pub fn of_template(&self, template_name: &str) -> Option<&MacroDef> {
        let (package, rest) = template_name.split_once('/')?;
        let name = rest.rsplit_once('#')?.1;
        self.by_package
            .get(package)?
            .get(name)
            .filter(|d| d.template_name == template_name)
    }

    pub fn defines(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
}

impl CatchAll {
    /// The parameters of the macro `{% macro name(a, b=1) %}...` when its
    /// body reads `varargs` or `kwargs`; None otherwise.
    fn of(text: &str) -> Option<CatchAll> {
        let (varargs, kwargs) = (mentions(text, "varargs"), mentions(text, "kwargs"));
        if !varargs && !kwargs {
            return None;
        }
        Some(CatchAll {
            params: parameters(text),
            varargs,
            kwargs,
        })
    }

    /// Split a call's arguments: what the declared parameters take, and the
    /// extra positional and keyword arguments (`varargs`, `kwargs`). An extra
    /// argument the macro has no catch-all for stays, for minijinja to refuse.
    fn split<'a>(&self, args: &'a [Value]) -> (Cow<'a, [Value]>, Value, Value) {
        let (positional, keywords) = match args.last() {
            Some(last) if last.is_kwargs() => (&args[..args.len() - 1], Some(last)),
            _ => (args, None),
        };
        let taken = match self.varargs {
            true => positional.len().min(self.params.len()),
            false => positional.len(),
        };
        let varargs = Value::from(positional[taken..].to_vec());
        let mut kept = Vec::new();
        let mut extra = Vec::new();
        if let Some(keywords) = keywords.and_then(|k| Kwargs::try_from(k.clone()).ok()) {
            for key in keywords.args() {
                let value = keywords.get::<Value>(key).unwrap_or_default();
                let declared = key == "caller" || self.params.iter().any(|p| p == key);
                match declared || !self.kwargs {
                    true => kept.push((key.to_string(), value)),
                    false => extra.push((key.to_string(), value)),
                }
            }
        }
        if taken == positional.len() && extra.is_empty() {
            return (Cow::Borrowed(args), varargs, Value::from_iter(extra));
        }
        let mut passed = positional[..taken].to_vec();
        if !kept.is_empty() {
            passed.push(Value::from(Kwargs::from_iter(kept)));
        }
        (Cow::Owned(passed), varargs, Value::from_iter(extra))
    }
}

/// `word` appears in `text` as a name of its own, not inside another.
fn mentions(text: &str, word: &str) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        !text[..at].chars().next_back().is_some_and(is_name)
            && !text[at + word.len()..].chars().next().is_some_and(is_name)
    })
}

/// The parameter names of a macro block's opening tag, in order.
fn parameters(text: &str) -> Vec<String> {
    let Some(open) = text.find('(') else {
        return Vec::new();
    };
    let mut params = Vec::new();
    let (mut depth, mut quote, mut current) = (0usize, None::<char>, String::new());
    for c in text[open + 1..].chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')') if depth == 0 => break,
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            (None, ',') if depth == 0 => {
                params.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        if quote.is_none() && depth == 0 {
            current.push(c);
        }
    }
    params.push(current);
    params
        .iter()
        .map(|p| p.split('=').next().unwrap_or_default().trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BlockKind {
    Macro,
    /// `{% test name(...) %}`: a generic test, callable as the macro `test_<name>`.
    Test,
}

struct Block {
    /// The macro's name (`test_<name>` for a test block).
    name: String,
    kind: BlockKind,
    start: usize,
    end: usize,
    line: usize,
}

/// Find `{% macro name(...) %} ... {% endmacro %}` and `{% test name(...) %}
/// ... {% endtest %}` blocks (with `-` whitespace control).
fn macro_blocks(text: &str) -> Result<Vec<Block>> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, BlockKind, usize)> = None;
    let mut position = 0;
    while let Some(found) = text[position..].find("{%") {
        let start = position + found;
        // The closing `%}` comes after the opening `{%`: in `{%}` it does not.
        let Some(close) = text[start + 2..].find("%}") else {
            break;
        };
        let end = start + 2 + close + 2;
        let tag = text[start + 2..end - 2]
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        let keyword = tag
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("");
        let line = || crate::error::line_of_offset(text, start);
        match (keyword, &open) {
            ("macro" | "test", None) => {
                let name: String = tag[keyword.len()..]
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                open = Some(match keyword {
                    "test" => (format!("test_{name}"), BlockKind::Test, start),
                    _ => (name, BlockKind::Macro, start),
                });
            }
            ("macro" | "test", Some((name, _, _))) => {
                return Err(Error::new(
                    ErrorKind::Template,
                    format!("`{keyword}` block inside `{name}`: close `{name}` first"),
                )
                .at_line(line()));
            }
            ("endmacro", Some((_, BlockKind::Macro, _)))
            | ("endtest", Some((_, BlockKind::Test, _))) => {
                let (name, kind, block_start) = open.take().expect("matched Some");
                blocks.push(Block {
                    name,
                    kind,
                    start: block_start,
                    end,
                    line: crate::error::line_of_offset(text, block_start),
                });
            }
            ("endmacro" | "endtest", _) => {
                return Err(Error::new(
                    ErrorKind::Template,
                    format!("`{keyword}` without an opening block"),
                )
                .at_line(line()));
            }
            _ => {}
        }
        position = end;
    }
    if let Some((name, kind, start)) = open {
        let closing = if kind == BlockKind::Test {
            "endtest"
        } else {
            "endmacro"
        };
        return Err(Error::new(
            ErrorKind::Template,
            format!("macro `{name}` is never closed with {{% {closing} %}}"),
        )
        .at_line(crate::error::line_of_offset(text, start)));
    }
    Ok(blocks)
}

/// `{% test name(args) %}body{% endtest %}` -> `{% macro test_name(args) %}body{% endmacro %}`,
/// keeping every newline where it was.
fn test_block_as_macro(text: &str) -> String {
    let opening = text.find("test").expect("a test block starts with `test`");
    let mut out = format!(
        "{}macro test_{}",
        &text[..opening],
        text[opening + 4..].trim_start()
    );
    if let Some(closing) = out.rfind("endtest") {
        out.replace_range(closing..closing + "endtest".len(), "endmacro");
    }
    out
}

thread_local! {
    /// The value passed to `return(...)`, on its way to the macro call that catches it.
    static RETURNED: RefCell<Option<Value>> = const { RefCell::new(None) };
}

/// `return(value)`: end the macro and hand `value` to its caller.
pub fn return_value(value: Value) -> std::result::Result<Value, minijinja::Error> {
    check_text(&value, "what this macro returns")?;
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
    "is_incremental",
    "graph",
    "execute",
    super::database::CONTEXT_NAME,
    // A node rendered as it runs sees the run's flags, not the compile's.
    "flags",
    // Only an on-run-end hook has these.
    "results",
    "schemas",
    "database_schemas",
];

/// Call a macro from any template: its template is evaluated with the
/// caller's dbt context, so `ref`, `this` and `config` keep working inside.
pub fn call_macro(
    state: &State,
    template_name: &str,
    name: &str,
    catch_all: Option<&CatchAll>,
    args: &[Value],
) -> std::result::Result<Value, minijinja::Error> {
    record_direct_call(state, template_name, name);
    let mut ctx = BTreeMap::new();
    for key in FORWARDED {
        if let Some(value) = state.lookup(key) {
            ctx.insert(*key, value);
        }
    }
    invoke(
        state.env(),
        template_name,
        name,
        catch_all,
        args,
        Value::from(ctx),
    )
    .map_err(|err| {
        // The error keeps its place in the macro; the caller's template
        // gives this frame its own (minijinja locates an error once), so the
        // error names every call on the way (see [`frames`]).
        match err.line() {
            Some(_) => minijinja::Error::new(err.kind(), CALL_FRAME).with_source(err),
            None => err,
        }
    })
}

/// The detail of an error that only records where a macro was called.
const CALL_FRAME: &str = "\u{1}weir:called from here";

/// An error's innermost cause, and the templates and lines of the macro
/// calls it came through, innermost first (the cause's own place included).
pub fn frames(err: &minijinja::Error) -> (&minijinja::Error, Vec<(&str, usize)>) {
    let mut frames = Vec::new();
    let mut current = err;
    loop {
        if let (Some(name), Some(line)) = (current.name(), current.line()) {
            frames.push((name, line));
        }
        let inner = std::error::Error::source(current)
            .and_then(|source| source.downcast_ref::<minijinja::Error>());
        match inner {
            Some(inner) if current.detail() == Some(CALL_FRAME) => current = inner,
            _ => break,
        }
    }
    frames.reverse();
    (current, frames)
}

/// dbt lists in a node's depends_on.macros the macros its own SQL calls:
/// calls made from a node's template (macro templates are named `...#name`).
fn record_direct_call(state: &State, template_name: &str, name: &str) {
    if state.name().contains('#') {
        return;
    }
    let Some(handle) = state.lookup(super::context::CAPTURE) else {
        return;
    };
    if let Some(handle) = handle.downcast_object_ref::<super::context::CaptureHandle>() {
        let package = template_name.split('/').next().unwrap_or_default();
        handle.0.record_macro(format!("macro.{package}.{name}"));
    }
}

/// Evaluate a macro's template with `ctx` and call the macro; a `return(...)`
/// inside it becomes the result.
pub fn invoke(
    env: &Environment,
    template_name: &str,
    name: &str,
    catch_all: Option<&CatchAll>,
    args: &[Value],
    ctx: Value,
) -> std::result::Result<Value, minijinja::Error> {
    let _call = NestedCall::enter(template_name)?;
    for arg in args {
        check_text(arg, "an argument of this macro call")?;
    }
    let (args, ctx) = match catch_all {
        Some(catch_all) => {
            let (args, varargs, kwargs) = catch_all.split(args);
            (args, minijinja::context! { varargs, kwargs, ..ctx })
        }
        None => (Cow::Borrowed(args), ctx),
    };
    let template = env.get_template(template_name)?;
    let module = template.render_captured(ctx)?;
    // A `return()` outside any macro leaves its value behind: drop it, or
    // this call's own error would be taken for that return.
    RETURNED.with(|slot| slot.borrow_mut().take());
    let result = module.state().call_macro(name, &args);
    spend_fuel(
        module
            .state()
            .fuel_levels()
            .map_or(0, |(consumed, _)| consumed),
    )?;
    let value = match result {
        Ok(output) => Value::from_safe_string(output),
        Err(err) => match RETURNED.with(|slot| slot.borrow_mut().take()) {
            // A list or dict returned can be changed in place by the caller.
            Some(value) => super::mutable::make_mutable(value),
            None => return Err(err),
        },
    };
    check_text(&value, "what this macro returns")?;
    Ok(value)
}

/// How deep macro calls may nest. Every call evaluates its macro's template
/// anew, so minijinja's own recursion limit (per evaluation) never sees a
/// macro that calls another that calls it back: without this bound that
/// recursion overflows the thread's stack and aborts the process (the
/// Python interpreter with it). A level takes ~20 KiB of stack in a debug
/// build, so 64 fit with room to spare in the 2 MiB of a spawned thread;
/// dbt's own macros nest under 20 deep, and dbt itself (Python's limit of
/// 1,000 frames, ~15 per macro call) stops not far above 64.
pub const MAX_MACRO_DEPTH: usize = 64;

thread_local! {
    /// The templates of the macro calls in progress on this thread, outermost first.
    static CALLS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// One macro call in progress: entered in [`invoke`], left on drop.
struct NestedCall;

impl NestedCall {
    fn enter(template_name: &str) -> std::result::Result<NestedCall, minijinja::Error> {
        CALLS.with(|calls| {
            let mut calls = calls.borrow_mut();
            if calls.len() >= MAX_MACRO_DEPTH {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!(
                        "macro calls nested more than {MAX_MACRO_DEPTH} deep: {}",
                        describe_cycle(&calls, template_name)
                    ),
                ));
            }
            calls.push(template_name.to_string());
            Ok(NestedCall)
        })
    }
}

impl Drop for NestedCall {
    fn drop(&mut self) {
        CALLS.with(|calls| calls.borrow_mut().pop());
    }
}

/// The macros that keep calling each other, as `a → b → a`: the calls since
/// the last one to `next`'s macro, else the innermost few.
fn describe_cycle(calls: &[String], next: &str) -> String {
    let start = match calls.iter().rposition(|t| t == next) {
        Some(at) => at,
        None => calls.len().saturating_sub(5),
    };
    let name = |template: &str| {
        let (package_file, name) = template.rsplit_once('#').unwrap_or(("", template));
        let file = package_file
            .split_once('/')
            .map_or(package_file, |(_, f)| f);
        format!("{name} ({file})")
    };
    let chain: Vec<String> = calls[start..]
        .iter()
        .map(|t| name(t))
        .chain([name(next)])
        .collect();
    format!(
        "{} (a macro that calls itself, directly or through others, without end)",
        chain.join(" → ")
    )
}

/// Jinja instructions one render may execute, in the node's template and
/// in each macro call. minijinja counts them per evaluation, and every macro
/// call is an evaluation of its own, so the calls of one render also share
/// [`FUEL`] between them: a loop or a recursion without end stops with
/// an error instead of running forever. Every node of the 10,000-model
/// benchmark and of the fixture projects needs under 10,000: the limit is
/// thousands of times that, and a runaway template still stops within
/// seconds.
pub const FUEL: u64 = 50_000_000;

thread_local! {
    /// Instructions the macro calls of the current render have used.
    static SPENT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A new render starts with the whole budget.
pub fn refuel() {
    SPENT.with(|spent| spent.set(0));
    EMITTED.with(|emitted| emitted.set(0));
}

/// The most text one render may produce, and the longest string a macro
/// call may take or return. The instruction budget does not bound memory:
/// a string doubled 40 times takes a few hundred instructions and ~1 TB.
/// The largest SQL of the benchmark and fixture projects is a few KiB;
/// models that union thousands of relations reach a few MiB.
pub const MAX_TEXT_BYTES: usize = 64 << 20;

thread_local! {
    /// Bytes the `{{ ... }}` of the current render have written.
    static EMITTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The error for text over [`MAX_TEXT_BYTES`].
fn too_large(what: &str, bytes: usize) -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!(
            "{what} is {} MiB, more than the {} MiB one render may produce (a string that keeps \
             doubling, or a loop that never ends?)",
            bytes >> 20,
            MAX_TEXT_BYTES >> 20
        ),
    )
}

/// A macro's argument or result: refused when it is a string over the limit.
pub(super) fn check_text(value: &Value, what: &str) -> std::result::Result<(), minijinja::Error> {
    match value.as_str() {
        Some(text) if text.len() > MAX_TEXT_BYTES => Err(too_large(what, text.len())),
        _ => Ok(()),
    }
}

/// Writes what a `{{ ... }}` renders, as minijinja would, counting it
/// against the render's [`MAX_TEXT_BYTES`].
pub fn counting_formatter(
    out: &mut minijinja::Output,
    state: &State,
    value: &Value,
) -> std::result::Result<(), minijinja::Error> {
    let bytes = value.as_str().map_or(0, str::len);
    let total = EMITTED.with(|emitted| {
        let total = emitted.get().saturating_add(bytes);
        emitted.set(total);
        total
    });
    if total > MAX_TEXT_BYTES {
        return Err(too_large("the text this template renders", total));
    }
    minijinja::escape_formatter(out, state, value)
}

fn spend_fuel(consumed: u64) -> std::result::Result<(), minijinja::Error> {
    let total = SPENT.with(|spent| {
        let total = spent.get().saturating_add(consumed);
        spent.set(total);
        total
    });
    if total > FUEL {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::OutOfFuel,
            "the macro calls of this render",
        ));
    }
    Ok(())
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

    /// The macros of one package `p` rooted at `root`.
    fn load(root: &str, files: &[ProjectFile]) -> Result<Macros> {
        Macros::from_files([(Path::new(root), "p", files)])
    }

    #[test]
    fn a_stray_return_is_not_taken_for_a_later_call_result() {
        let mut env = Environment::new();
        env.add_function("return", return_value);
        env.add_template(
            "t",
            "{% macro m(x) %}{{ x }}{% endmacro %}{% macro r() %}{{ return(7) }}{% endmacro %}",
        )
        .unwrap();
        let no_context = Value::from(BTreeMap::<String, Value>::new());
        // return() outside a macro fails and leaves its value behind ...
        assert!(env.render_str("{{ return(1) }}", ()).is_err());
        // ... which a later failing call must not take as its result.
        let args = [Value::from(1), Value::from(2)];
        let err = invoke(&env, "t", "m", None, &args, no_context.clone()).unwrap_err();
        assert!(err.to_string().contains("too many arguments"), "{err}");
        assert_eq!(
            invoke(&env, "t", "r", None, &[], no_context).unwrap(),
            Value::from(7)
        );
    }

    #[test]
    fn every_builtin_macro_compiles() {
        let env = Environment::new();
        for def in builtin_macros().all() {
            env.template_from_str(&def.source)
                .unwrap_or_else(|e| panic!("{}: {e}", def.template_name));
            assert_eq!(
                builtin_template(&def.template_name).as_ref(),
                Some(&def.source)
            );
        }
        assert!(builtin_macros().by_name.len() > 60);
    }

    #[test]
    fn a_macro_reading_varargs_or_kwargs_takes_extra_arguments() {
        let text = "{% macro m(a, b=[1, 2], c='x,y') %}{{ varargs }}{{ kwargs }}{% endmacro %}";
        let catch_all = CatchAll::of(text).unwrap();
        assert_eq!(catch_all.params, ["a", "b", "c"]);
        assert!(CatchAll::of("{% macro m(a) %}{{ my_kwargs }}{% endmacro %}").is_none());
        let mut env = Environment::new();
        env.add_template("t", text).unwrap();
        let kwargs = Kwargs::from_iter([("extra", Value::from(4))]);
        let args = [1, 2, 5, 6]
            .map(Value::from)
            .into_iter()
            .chain([Value::from(kwargs)]);
        let args: Vec<Value> = args.collect();
        let ctx = || Value::from(BTreeMap::<String, Value>::new());
        let out = invoke(&env, "t", "m", Some(&catch_all), &args, ctx());
        assert_eq!(out.unwrap().to_string(), "[6]{\"extra\": 4}");
        // Without a catch-all, an unknown keyword is refused as before.
        let err = invoke(&env, "t", "m", None, &args, ctx()).unwrap_err();
        assert!(err.to_string().contains("too many arguments"), "{err}");
        let only_kwargs = CatchAll {
            params: vec!["a".into()],
            varargs: false,
            kwargs: true,
        };
        let (passed, varargs, kwargs) = only_kwargs.split(&args);
        assert_eq!(
            (passed.len(), varargs.len(), kwargs.len()),
            (4, Some(0), Some(1))
        );
    }

    #[test]
    fn a_tag_that_closes_itself_is_not_a_tag() {
        // `{%}`: the `%}` overlaps the `{%`, so the tag runs on to the next
        // `%}` (as Jinja reads it) and swallows the macro's opening.
        let text = "{%}{% macro m() %}x{% endmacro %}";
        assert!(macro_blocks(text).is_err());
        assert!(macro_blocks("{%}").unwrap().is_empty());
        assert!(macro_blocks("{%}%}").unwrap().is_empty());
    }

    #[test]
    fn a_test_block_becomes_a_macro_named_test_name() {
        let text = "{% test is_positive(model, column_name) %}\nselect 1\n{% endtest %}";
        let macros = load("", &[file("macros/t.sql", text)]).unwrap();
        assert_eq!(
            macros.by_name["test_is_positive"].source,
            "{% macro test_is_positive(model, column_name) %}\nselect 1\n{% endmacro %}"
        );
    }

    #[test]
    fn a_project_macro_replaces_a_builtin() {
        let text = "{% macro test_unique(model, column_name) %}mine{% endmacro %}";
        let macros = load("", &[file("macros/u.sql", text)]).unwrap();
        assert_eq!(macros.by_name["test_unique"].package, "p");
        assert_eq!(macros.by_name["test_not_null"].package, "dbt");
        assert_eq!(macros.by_package["dbt"]["test_unique"].package, "dbt");
    }

    #[test]
    fn finds_blocks_with_whitespace_control_and_keeps_lines() {
        let text = "-- header\n{% macro a(x) %}{{ x }}{% endmacro %}\n\n{%- macro  b() -%}\nb\n{%- endmacro -%}\n";
        let macros = load("p", &[file("macros/m.sql", text)]).unwrap();
        let b = &macros.by_name["b"];
        assert_eq!(b.source, "\n\n\n{%- macro  b() -%}\nb\n{%- endmacro -%}");
        assert_eq!(b.file, Path::new("p/macros/m.sql"));
        let a = macros.of_template("p/macros/m.sql#a").unwrap();
        assert_eq!(a.file, Path::new("p/macros/m.sql"));
    }

    #[test]
    fn an_unclosed_macro_is_an_error_with_its_line() {
        let err = load("", &[file("macros/m.sql", "\n{% macro a() %}x")]).unwrap_err();
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
        let err = load("", &files).unwrap_err();
        assert_eq!(
            err.to_string(),
            "macros/b.sql:1: macro `x` is defined twice: here and in macros/a.sql"
        );
    }
}
