//! Never a panic: thousands of broken projects, each compiled under
//! `catch_unwind`. Every one must either compile or fail with a weir::Error
//! whose message names the file at fault, and its line where the file has
//! lines. The inputs are generated from one valid project: every YAML value
//! replaced by every other type, every file truncated and garbled, binary
//! garbage, empty files, huge lines, and a catalogue of broken Jinja,
//! configs, cycles, missing and duplicate nodes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Once;

use weir::Error;
use weir::yaml::{self, Kind, Mapping, Yaml};

/// The valid project every case starts from: path -> contents.
fn base_project() -> BTreeMap<&'static str, Vec<u8>> {
    let files: [(&str, &str); 13] = [
        (
            "dbt_project.yml",
            r#"name: fuzz
version: "1.0"
config-version: 2
profile: fuzz
model-paths: ["models"]
seed-paths: ["seeds"]
macro-paths: ["macros"]
target-path: target
vars:
  start: "2024-01-01"
  nested: {a: [1, 2]}
  fuzz:
    scoped: 1
models:
  fuzz:
    +materialized: view
    staging:
      +tags: ["staging"]
    marts:
      +materialized: table
      +tags: ["nightly"]
      +schema: marts
      +enabled: true
      +meta: {owner: ann}
      +pre-hook: "select 1"
seeds:
  fuzz:
    +tags: raw
    +quote_columns: false
"#,
        ),
        (
            "models/staging/stg.sql",
            r#"{{ config(materialized='view', tags=['staging'], meta={'a': 1}) }}
select id, {{ cents('amount') }} as amount
from {{ source('app', 'events') }}
where day >= '{{ var("start") }}'
"#,
        ),
        (
            "models/marts/fact.sql",
            r#"{% set cols = ['id', 'amount'] %}
select {% for c in cols %}{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}
from {{ ref('stg') }}
join {{ ref('lookup') }} using (id)
{% if is_incremental() %} where 1 = 1 {% endif %}
-- {{ this }} {{ target.name }} {{ config.get('materialized') }}
"#,
        ),
        (
            "models/schema.yml",
            r#"version: 2

sources:
  - name: app
    schema: raw
    description: The app.
    tags: [app]
    meta: {owner: ann}
    tables:
      - name: events
        identifier: app_events
        description: Events.
        config:
          enabled: true
          meta: {pii: false}

exposures:
  - name: board
    type: dashboard
    maturity: high
    url: https://example.com
    owner:
      name: Ann
      email: ann@example.com
    tags: [bi]
    meta: {tier: 1}
    config:
      enabled: true
    depends_on:
      - ref('fact')
      - source('app', 'events')

models:
  - name: stg
    description: Staged.
    config:
      alias: stg_alias
      tags: [x]
    columns:
      - name: id
        description: Key.
        data_tests: [unique, not_null]
      - name: amount
        data_tests:
          - accepted_values:
              arguments:
                values: [1, 2]
          - positive
  - name: fact
    columns:
      - name: id
        data_tests:
          - relationships:
              arguments:
                to: ref('stg')
                field: id
              config:
                severity: warn
  - name: dim
    latest_version: 2
    config:
      materialized: table
    columns:
      - name: id
        data_tests: [unique]
      - name: label
    versions:
      - v: 1
        defined_in: dim_old
        columns:
          - include: all
            exclude: [label]
      - v: 2
        description: Current.
        config:
          alias: dim_now
        data_tests: []
"#,
        ),
        (
            "models/marts/dim_old.sql",
            "select id from {{ ref('stg') }}\n",
        ),
        (
            "models/marts/dim.sql",
            "select id, 'x' as label from {{ ref('dim', v=1) }}\n",
        ),
        (
            "seeds/props.yml",
            r#"version: 2
seeds:
  - name: lookup
    description: Lookup.
    config:
      column_types: {id: integer}
    columns:
      - name: id
        data_tests: [not_null]
"#,
        ),
        ("seeds/lookup.csv", "id,name\n1,a\n2,b\n"),
        (
            "macros/cents.sql",
            r#"{% macro cents(column) %}({{ column }} / 100.0){% endmacro %}

{% test positive(model, column_name) %}
select * from {{ model }} where {{ column_name }} < 0
{% endtest %}
"#,
        ),
        (
            "models/docs.md",
            "{% docs stg_doc %}\nStaged rows, one per event.\n{% enddocs %}\n",
        ),
        (
            "analyses/by_id.sql",
            "select id, count(*) from {{ ref('fact') }} join {{ ref('dim') }} using (id) group by 1\n",
        ),
        (
            "snapshots/stg_snapshot.sql",
            r#"{% snapshot stg_snapshot %}
{{ config(target_schema='snapshots', unique_key='id', strategy='check', check_cols='all') }}
select * from {{ ref('stg') }}
{% endsnapshot %}
"#,
        ),
        (
            "selectors.yml",
            r#"selectors:
  - name: nightly
    definition:
      union:
        - tag: nightly
        - method: fqn
          value: stg
          children: true
        - exclude:
            - lookup
"#,
        ),
    ];
    files
        .into_iter()
        .map(|(path, text)| (path, text.as_bytes().to_vec()))
        .collect()
}

/// What a case must end in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// Compiling may succeed (the change may still be valid); an error must
    /// still name the file.
    Either,
    /// An error naming this file, with a line.
    ErrorAtLine,
    /// An error naming this file (some errors are about a whole file).
    ErrorInFile,
}

struct Case {
    name: String,
    /// The file the case breaks: the error must name it (or one of `also`).
    file: String,
    also: Vec<String>,
    files: BTreeMap<String, Vec<u8>>,
    expect: Expect,
}

fn case(name: impl Into<String>, file: &str, contents: impl Into<Vec<u8>>, expect: Expect) -> Case {
    let mut files: BTreeMap<String, Vec<u8>> = base_project()
        .into_iter()
        .map(|(p, t)| (p.to_string(), t))
        .collect();
    files.insert(file.to_string(), contents.into());
    Case {
        name: name.into(),
        file: file.to_string(),
        also: Vec::new(),
        files,
        expect,
    }
}

/// Compile a project the way every command does, selectors.yml included.
fn compile_dir(root: &Path) -> Result<(), Error> {
    let project = weir::Project::load(root)?;
    let target = weir::Target::embedded_default(&project.name, Some("dev"));
    let manifest = weir::compile(&project, &target, &Default::default())?;
    let selection = weir::Selection {
        selector: Some("nightly".into()),
        ..weir::Selection::for_project(root)?
    };
    // A broken selectors.yml may have lost the selector; that error names no line.
    if selection.selectors.names().any(|(n, _)| n == "nightly") {
        selection.resolve(&manifest)?;
    }
    Ok(())
}

thread_local! {
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    static IN_CASE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A panic inside a case is recorded for the report instead of printed;
/// any other (a failed assertion) is reported as usual.
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CASE.with(|c| c.get()) {
                return default(info);
            }
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            PANIC.with(|p| *p.borrow_mut() = Some(format!("{message} at {location}")));
        }));
    });
}

/// Run every case; return one line per case that broke the rules.
fn run(cases: Vec<Case>, dir_name: &str) -> Vec<String> {
    quiet_panics();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("weir-fuzz")
        .join(format!("{dir_name}-{}", std::process::id()));
    let mut failures = Vec::new();
    // WEIR_FUZZ_CASE=<text> runs only the cases whose name holds it, and
    // names each before it runs (to find one that crashes the process).
    let only = std::env::var("WEIR_FUZZ_CASE").ok();
    let first: usize = std::env::var("WEIR_FUZZ_FIRST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for case in cases.into_iter().skip(first) {
        if let Some(only) = &only {
            if !case.name.contains(only.as_str()) {
                continue;
            }
            eprintln!("case: {}", case.name);
        }
        let _ = std::fs::remove_dir_all(&root);
        for (path, contents) in &case.files {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, contents).unwrap();
        }
        PANIC.with(|p| p.borrow_mut().take());
        IN_CASE.with(|c| c.set(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| compile_dir(&root)));
        IN_CASE.with(|c| c.set(false));
        if std::env::var_os("WEIR_FUZZ_SHOW").is_some() {
            match &outcome {
                Ok(Err(err)) => eprintln!(
                    "  -> {}",
                    err.to_string().replace(&format!("{}/", root.display()), "")
                ),
                Ok(Ok(())) => eprintln!("  -> compiled"),
                Err(_) => eprintln!("  -> panicked"),
            }
        }
        let problem = match outcome {
            Err(_) => Some(format!(
                "panicked: {}",
                PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default()
            )),
            Ok(Ok(())) if case.expect != Expect::Either => Some("compiled without an error".into()),
            Ok(Ok(())) => None,
            Ok(Err(err)) => check_error(&err, &case, &root),
        };
        if let Some(problem) = problem {
            failures.push(format!("{} [{}]: {problem}", case.name, case.file));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    failures
}

/// The error names a file; the broken one when the case expects an error,
/// and its line when that file has lines.
fn check_error(err: &Error, case: &Case, root: &Path) -> Option<String> {
    let shown = err.to_string();
    let shown_line = shown.lines().next().unwrap_or("");
    let Some(file) = err.file() else {
        return Some(format!("error names no file: {shown_line}"));
    };
    if !shown.contains(&file.display().to_string()) {
        return Some(format!("Display does not name the file: {shown_line}"));
    }
    let message = err.message();
    let excused = WHOLE_FILE.iter().any(|m| message.contains(m));
    if err.line().is_none() && !excused {
        return Some(format!("no line: {shown_line}"));
    }
    if case.expect == Expect::Either {
        return None;
    }
    let names_it = std::iter::once(&case.file)
        .chain(&case.also)
        .any(|f| file == root.join(f) || file.ends_with(f));
    if !names_it {
        return Some(format!("names {} instead: {shown_line}", file.display()));
    }
    if case.expect == Expect::ErrorAtLine && err.line().is_none() {
        return Some(format!("no line: {shown_line}"));
    }
    None
}

/// Errors about a file as a whole: they name no line.
const WHOLE_FILE: &[&str] = &[
    "stream did not contain valid UTF-8",
    "dbt_project.yml has no `name:`",
    "a properties file must be a mapping",
    "two nodes are named",
    "two projects are named",
    "the DAG has a cycle",
    "no dbt_project.yml",
];

fn assert_none(failures: Vec<String>, total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} cases broke the rules:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------- generators

/// Every value one YAML node can be replaced with.
fn replacements() -> Vec<Yaml> {
    let mut nested = Mapping::new();
    nested.insert("k".into(), Yaml::from(vec![Yaml::new(Kind::Null)]));
    vec![
        Yaml::new(Kind::Null),
        Yaml::from(true),
        Yaml::from(7),
        Yaml::from(-1),
        Yaml::from(1.5),
        Yaml::from("x"),
        Yaml::from(""),
        Yaml::from("{{ nope("),
        Yaml::from(Vec::new()),
        Yaml::from(vec![Yaml::from(Mapping::new()), Yaml::from(1)]),
        Yaml::from(Mapping::new()),
        Yaml::from(nested),
    ]
}

/// Paths (indexes into maps and lists) of every node of a YAML tree.
fn node_paths(value: &Yaml, path: &mut Vec<Yaml>, out: &mut Vec<Vec<Yaml>>) {
    out.push(path.clone());
    match value.kind() {
        Kind::Mapping(map) => {
            for (key, child) in map {
                path.push(key.clone());
                node_paths(child, path, out);
                path.pop();
            }
        }
        Kind::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(Yaml::from(i as i64));
                node_paths(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The child of `value` at one step of a path.
fn child_mut<'a>(value: &'a mut Yaml, step: &Yaml) -> Option<&'a mut Yaml> {
    match value.kind_mut() {
        Kind::Mapping(map) => map.get_mut(step),
        Kind::Sequence(items) => step.as_u64().and_then(|i| items.get_mut(i as usize)),
        _ => None,
    }
}

fn replace_at(value: &mut Yaml, path: &[Yaml], with: Yaml) {
    let Some((first, rest)) = path.split_first() else {
        *value = with;
        return;
    };
    if let Some(child) = child_mut(value, first) {
        replace_at(child, rest, with);
    }
}

/// A map key of the node at `path` replaced by a key of another type.
fn rekey_at(value: &mut Yaml, path: &[Yaml], new_key: Yaml) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut parent = &mut *value;
    for step in parent_path {
        match child_mut(parent, step) {
            Some(next) => parent = next,
            None => return,
        }
    }
    if let Kind::Mapping(map) = parent.kind_mut()
        && let Some(child) = map.remove(last)
    {
        map.insert(new_key, child);
    }
}

/// Every node of every YAML file replaced by every other type, and every
/// map key by keys of other types.
fn yaml_type_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (file, text) in base_project() {
        if !file.ends_with(".yml") {
            continue;
        }
        let text = String::from_utf8(text).unwrap();
        let doc = yaml::parse(&text, Path::new(file)).unwrap();
        let mut paths = Vec::new();
        node_paths(&doc, &mut Vec::new(), &mut paths);
        for path in &paths {
            for (i, with) in replacements().into_iter().enumerate() {
                let mut mutated = doc.clone();
                replace_at(&mut mutated, path, with);
                let text = yaml::to_string(&mutated);
                cases.push(case(
                    format!("{file}: value at {} -> replacement {i}", show_path(path)),
                    file,
                    text,
                    Expect::Either,
                ));
            }
            if path.last().is_some_and(Yaml::is_string) {
                for new_key in [Yaml::from(3), Yaml::new(Kind::Null), Yaml::from(false)] {
                    let mut mutated = doc.clone();
                    rekey_at(&mut mutated, path, new_key.clone());
                    let text = yaml::to_string(&mutated);
                    cases.push(case(
                        format!("{file}: key at {} -> {new_key:?}", show_path(path)),
                        file,
                        text,
                        Expect::Either,
                    ));
                }
            }
        }
    }
    cases
}

fn show_path(path: &[Yaml]) -> String {
    let parts: Vec<String> = path.iter().map(Yaml::to_string).collect();
    format!("/{}", parts.join("/"))
}

/// A small deterministic generator, so a failure can be reproduced.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that mean something to YAML, Jinja, CSV or UTF-8.
const NASTY: &[&[u8]] = &[
    b"{",
    b"}",
    b"{{",
    b"}}",
    b"{%",
    b"%}",
    b"{#",
    b"%",
    b":",
    b"-",
    b"'",
    b"\"",
    b"\n",
    b"\t",
    b"[",
    b"]",
    b"#",
    b"|",
    b",",
    b"\0",
    b"\\",
    b"&",
    b"*",
    b"!",
    b"?",
    b">",
    "é".as_bytes(),
    b"\xff",
    b"\xc3",
    b"  ",
    b"\r\n",
    b"(",
    b")",
    b".",
];

/// Every file cut short at many points, and garbled at random places.
fn truncated_and_garbled_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for (file, text) in base_project() {
        let step = (text.len() / 40).max(1);
        for cut in (0..text.len()).step_by(step) {
            cases.push(case(
                format!("{file} cut at byte {cut}"),
                file,
                text[..cut].to_vec(),
                Expect::Either,
            ));
        }
        for round in 0..40 {
            let mut bytes = text.clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len());
                let nasty = NASTY[rng.below(NASTY.len())];
                let remove = rng.below(3).min(bytes.len() - at);
                bytes.splice(at..at + remove, nasty.iter().copied());
            }
            cases.push(case(
                format!("{file} garbled #{round}"),
                file,
                bytes,
                Expect::Either,
            ));
        }
    }
    cases
}

/// Binary garbage, empty files, huge lines, and invalid UTF-8 in every file.
fn garbage_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    let huge = "x".repeat(2_000_000);
    for (file, text) in base_project() {
        let garbage: Vec<u8> = (0..4096).map(|_| (rng.next() & 0xff) as u8).collect();
        cases.push(case(
            format!("{file} binary garbage"),
            file,
            garbage,
            Expect::Either,
        ));
        cases.push(case(
            format!("{file} empty"),
            file,
            Vec::new(),
            Expect::Either,
        ));
        cases.push(case(
            format!("{file} only whitespace"),
            file,
            "\n \n\t\n",
            Expect::Either,
        ));
        let mut long = text.clone();
        long.extend_from_slice(format!("\n# {huge}\n").as_bytes());
        cases.push(case(
            format!("{file} huge comment line"),
            file,
            long,
            Expect::Either,
        ));
        let mut long = text.clone();
        long.extend_from_slice(huge.as_bytes());
        cases.push(case(
            format!("{file} huge last line"),
            file,
            long,
            Expect::Either,
        ));
        let mut invalid = text.clone();
        invalid.splice(text.len() / 2..text.len() / 2, *b"\xff\xfe");
        cases.push(case(
            format!("{file} invalid UTF-8"),
            file,
            invalid,
            Expect::ErrorInFile,
        ));
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend_from_slice(&text);
        cases.push(case(
            format!("{file} byte order mark"),
            file,
            bom,
            Expect::Either,
        ));
        let crlf = String::from_utf8(text.clone())
            .unwrap()
            .replace('\n', "\r\n");
        cases.push(case(format!("{file} CRLF"), file, crlf, Expect::Either));
    }
    cases
}

const MODEL: &str = "models/marts/fact.sql";

/// Broken Jinja in a model: each must fail at a line of that model, but
/// for a few that Jinja lets through.
fn broken_jinja_cases() -> Vec<Case> {
    let broken = [
        "select {{ ref('stg') ",
        "select {{ ref('stg') }",
        "select {% if true %} 1",
        "select {% for x in [1] %} 1",
        "{% for x in %}{% endfor %}",
        "{% endif %}",
        "{% endfor %}",
        "{% else %}",
        "{% if %}{% endif %}",
        "{% set %}",
        "{% set x = %}",
        "{% macro %}{% endmacro %}",
        "{% macro m( %}{% endmacro %}",
        "{% call %}{% endcall %}",
        "{% block %}",
        "{% raw %} never closed",
        "{# never closed",
        "{{ }}",
        "{{ 1 + }}",
        "{{ (1 }}",
        "{{ [1, }}",
        "{{ {'a': } }}",
        "{{ 'unterminated }}",
        "{{ 1 // 0 }}",
        "{{ 1 % 0 }}",
        "{{ 2 ** 100000 }}",
        "{{ x | no_such_filter }}",
        "{{ 1 is no_such_test }}",
        "{{ no_such_function() }}",
        "{{ none() }}",
        "{{ 'a'() }}",
        "{{ {}.a.b.c }}",
        "{{ 'a' + 1 }}",
        "{{ [1] + 'a' }}",
        "{{ range(1, 2, 0) | list }}",
        "{{ ref() }}",
        "{{ ref(1) }}",
        "{{ ref(none) }}",
        "{{ ref('a', 'b', 'c', 'd') }}",
        "{{ ref('no_such_model') }}",
        "{{ ref('no_such_package', 'stg') }}",
        "{{ source() }}",
        "{{ source('app') }}",
        "{{ source('app', 'nope') }}",
        "{{ source('nope', 'events') }}",
        "{{ source(1, 2) }}",
        "{{ var() }}",
        "{{ var('not_defined') }}",
        "{{ var(none) }}",
        "{{ env_var() }}",
        "{{ env_var('WEIR_FUZZ_SURELY_UNSET') }}",
        "{{ env_var(1) }}",
        "{{ config(1) }}",
        "{{ config('materialized') }}",
        "{{ config(materialized=[]) }}",
        "{{ config(materialized={}) }}",
        "{{ config(materialized=none) }}",
        "{{ config(tags=1) }}",
        "{{ config(tags={'a': 1}) }}",
        "{{ config(enabled='maybe') }}",
        "{{ config(schema=[1]) }}",
        "{{ config(alias=3) }}",
        "{{ config(database={}) }}",
        "{{ config(pre_hook=3) }}",
        "{{ config.require('no_such_key') }}",
        "{{ config.get() }}",
        "{{ exceptions.raise_compiler_error('boom') }}",
        "{{ exceptions.raise_compiler_error() }}",
        "{{ exceptions.nope() }}",
        "{{ return(1) }}",
        "{{ fromjson('{') }}",
        "{{ fromyaml('a: b: c') }}",
        "{{ fromyaml('a: [') }}",
        "{{ tojson(none) }}{{ toyaml(none) }}{{ tojson() }}",
        "{{ zip(1, 2) }}",
        "{{ set(1) }}",
        "{{ local_md5() }}",
        "{{ modules.re.compile('(') }}",
        "{{ modules.re.sub('a', 'b') }}",
        "{{ modules.re.sub('a', 1, 'x') }}",
        "{{ modules.re.match('a', 'a').group(5) }}",
        "{{ modules.re.nope('a', 'b') }}",
        "{{ modules.datetime.datetime.strptime('x', '%Y') }}",
        "{{ modules.datetime.datetime(2020, 13, 1) }}",
        "{{ modules.datetime.datetime(2020, 1, 1).strftime('%Q') }}",
        "{{ modules.datetime.datetime.now() - modules.datetime.timedelta(days=1) }}",
        "{{ modules.datetime.timedelta(nope=1) }}",
        "{{ modules.pytz.timezone('Nowhere/Land') }}",
        "{{ modules.pytz.timezone() }}",
        "{{ modules.pytz.utc.localize('2024-01-01') }}",
        "{{ modules.pytz.utc.localize(modules.datetime.datetime.now(modules.pytz.utc)) }}",
        "{{ modules.datetime.datetime(2024, 1, 1, tzinfo='UTC') }}",
        "{{ modules.datetime.datetime(9999, 12, 31).plus(modules.datetime.timedelta(days=1)) }}",
        "{{ modules.datetime.datetime(1, 1, 1).minus(modules.datetime.timedelta(days=1)) }}",
        "{{ modules.datetime.datetime(2024, 1, 1).minus(run_started_at) }}",
        "{{ modules.datetime.date(2024, 1, 1).minus('x') }}",
        "{{ modules.datetime.timedelta(days=1e300) }}",
        "{{ modules.datetime.timedelta(days=999999999, hours=24) }}",
        "{{ modules.datetime.timezone(modules.datetime.timedelta(hours=24)) }}",
        "{{ modules.datetime.datetime.fromtimestamp(1e300) }}",
        "{{ modules.datetime.datetime.fromtimestamp('x') }}",
        "{{ modules.datetime.datetime.strptime('+99:99', '%z') }}",
        "{{ modules.datetime.datetime.fromisoformat('2024-01-01T10:00[Mars/Base]') }}",
        "{{ modules.datetime.datetime(2024, 1, 1).isoformat(timespec='nope') }}",
        "{{ modules.datetime.datetime(2024, 1, 1, fold=2) }}",
        "{{ modules.datetime.time(24) }}",
        "{{ modules.datetime.datetime(2024, 1, 1, 0, 0, 0, 0, none, 5) }}",
        "{{ modules.re.match('(', 'x') }}",
        "{{ adapter.dispatch() }}",
        "{{ adapter.dispatch('no_such_macro')() }}",
        "{{ adapter.dispatch(1)() }}",
        "{{ adapter.quote() }}",
        "{{ adapter.no_such_method() }}",
        "{{ api.Relation.nope() }}",
        "{{ this.nope.nope() }}",
        "{{ target.nope.nope }}",
        "{{ graph.nodes.nope.nope }}",
        "{{ is_incremental(1, 2) }}",
        "{{ cents(1, 2, 3, 4) }}",
        "{{ cents(column=1, nope=2) }}",
        "{{ dbt.nope() }}",
        "{{ no_such_package.macro() }}",
        "{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}",
        "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}",
        "{% set x = [] %}{% do x.append(x) %}{{ x }}",
        "{% set d = {} %}{% do d.update(1) %}",
        "{% set l = [] %}{% do l.nope() %}",
        "{% do [].pop() %}",
        "{% do {}.pop('a') %}",
        "{% for i in 1 %}{% endfor %}",
        "{% for a, b in [1] %}{% endfor %}",
        "{% include 'nope.sql' %}",
        "{% import 'nope.sql' as n %}",
        "{% extends 'nope.sql' %}",
        "{% from 'nope' import x %}",
        "{% filter nope %}x{% endfilter %}",
        "{{ '%s' % () }}",
        "{{ '{}'.format() }}",
        "{{ 'x' * -1 }}{{ 'x' * 99999999999 }}",
    ];
    // Jinja (and dbt) let these through: an undefined value, a big number.
    let may_compile = [
        "{{ 1 / 0 }}",
        "{{ 99999999999999999999999999999 }}",
        "{{ [1][5] }}",
        "{{ [1]['a'] }}",
        "{{ none.x }}",
        "{{ modules.datetime.nope }}",
        "{{ ref('stg', version=[]) }}",
        "{{ config() }}",
        "{{ config({'a': 1}, {'b': 2}) }}",
        "{{ fromjson(1) }}",
        "{{ api.Relation.create(database=[], schema={}, identifier=1) }}",
        "{{ cents() }}",
    ];
    // The config's file is known but not the line it was set on.
    let in_file = ["{{ config(retries=-1) }}", "{{ config(retries='x') }}"];
    let expectations = [
        (&broken[..], Expect::ErrorAtLine),
        (&may_compile[..], Expect::Either),
        (&in_file[..], Expect::ErrorInFile),
    ];
    let mut cases: Vec<Case> = Vec::new();
    for (list, expect) in expectations {
        for jinja in list {
            cases.push(case(
                format!("model: {jinja}"),
                MODEL,
                format!("-- line 1\n{jinja}\nselect 1\n"),
                expect,
            ));
        }
    }
    // Deep nesting: errors, not a stack overflow.
    let deep = format!(
        "{}1{}",
        "{% if true %}".repeat(2000),
        "{% endif %}".repeat(2000)
    );
    cases.push(case(
        "model: 2000 nested ifs",
        MODEL,
        deep,
        Expect::ErrorAtLine,
    ));
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
    cases.push(case(
        "model: 5000 nested parentheses",
        MODEL,
        deep,
        Expect::ErrorAtLine,
    ));
    let deep = format!("{{{{ {}1{} }}}}", "[".repeat(5000), "]".repeat(5000));
    cases.push(case(
        "model: 5000 nested lists",
        MODEL,
        deep,
        Expect::ErrorAtLine,
    ));
    cases
}

/// Broken macros: errors name the macro file (or the model calling it).
fn broken_macro_cases() -> Vec<Case> {
    let broken = [
        "{% macro cents(column) %}",
        "{% macro cents(column) %}{{ column }{% endmacro %}",
        "{% macro cents(column) %}{% if %}{% endif %}{% endmacro %}",
        "{% macro cents(column %}{% endmacro %}",
        "{% macro cents(column) %}{% endmacro %}{% macro cents(column) %}{% endmacro %}",
        "{% macro (column) %}{% endmacro %}",
        "{% macro 1cents(column) %}{% endmacro %}",
        "{% test positive(model, column_name) %}",
        "{% test positive %}{% endtest %}",
        "{% test %}{% endtest %}",
        "{% docs %}{% enddocs %}",
        "{% materialization nope, default %}",
        "{% macro cents(column) %}{{ cents(column) }}{% endmacro %}",
        "{% macro cents(column) %}{{ exceptions.raise_compiler_error('no') }}{% endmacro %}",
        "{% macro cents(column) %}{{ return(ref('nope')) }}{% endmacro %}",
        "{% macro cents(column) %}{{ 1 / 0 }}{% endmacro %}",
        "{% macro cents(column) %}{% endmacro %}",
        "{{ this_is_not_a_macro }}",
        "{% endmacro %}",
    ];
    broken
        .iter()
        .map(|text| {
            case(
                format!("macro: {text}"),
                "macros/cents.sql",
                format!("-- macros\n{text}\n"),
                Expect::Either,
            )
        })
        .collect()
}

/// Projects that are wrong as a whole: each must fail naming the right file.
fn structural_cases() -> Vec<Case> {
    let mut cases = vec![
        case(
            "a model refs itself",
            MODEL,
            "select * from {{ ref('fact') }}\n",
            Expect::ErrorInFile,
        ),
        case(
            "missing ref",
            MODEL,
            "-- x\nselect * from {{ ref('stgg') }}\n",
            Expect::ErrorAtLine,
        ),
        case(
            "unknown version of a model",
            MODEL,
            "-- x\nselect * from {{ ref('dim', v=7) }}\n",
            Expect::ErrorAtLine,
        ),
        case(
            "a version of a model that has none",
            MODEL,
            "-- x\nselect * from {{ ref('stg', version='2') }}\n",
            Expect::ErrorAtLine,
        ),
        case(
            "a version that is a list",
            MODEL,
            "-- x\nselect * from {{ ref('dim', v=[1]) }}\n",
            Expect::ErrorAtLine,
        ),
        case(
            "latest_version that is no version",
            "models/schema.yml",
            String::from_utf8(base_project()["models/schema.yml"].clone())
                .unwrap()
                .replace("latest_version: 2", "latest_version: 3"),
            Expect::ErrorAtLine,
        ),
        case(
            "a version listed twice",
            "models/schema.yml",
            String::from_utf8(base_project()["models/schema.yml"].clone())
                .unwrap()
                .replace("- v: 2", "- v: 1.0"),
            Expect::ErrorAtLine,
        ),
        // dbt leaves the version out (with a warning); its ref then fails.
        Case {
            also: vec!["models/marts/dim.sql".into()],
            ..case(
                "a version without its file",
                "models/schema.yml",
                String::from_utf8(base_project()["models/schema.yml"].clone())
                    .unwrap()
                    .replace("defined_in: dim_old", "defined_in: dim_gone"),
                Expect::ErrorAtLine,
            )
        },
        case(
            "missing source table",
            MODEL,
            "-- x\nselect * from {{ source('app', 'nope') }}\n",
            Expect::ErrorAtLine,
        ),
        case(
            "missing source",
            MODEL,
            "-- x\nselect * from {{ source('nope', 'events') }}\n",
            Expect::ErrorAtLine,
        ),
        case(
            "compiler error raised",
            MODEL,
            "-- x\n{{ exceptions.raise_compiler_error('boom') }}\n",
            Expect::ErrorAtLine,
        ),
        case(
            "unclosed tag",
            MODEL,
            "-- x\nselect {{ ref('stg') \n",
            Expect::ErrorAtLine,
        ),
        case(
            "unknown filter",
            MODEL,
            "-- x\nselect {{ 1 | nope }}\n",
            Expect::ErrorAtLine,
        ),
        case(
            "unknown test",
            "models/schema.yml",
            String::from_utf8(base_project()["models/schema.yml"].clone())
                .unwrap()
                .replace("- positive", "- no_such_test"),
            Expect::ErrorAtLine,
        ),
        case(
            "properties of a model described twice",
            "models/schema.yml",
            String::from_utf8(base_project()["models/schema.yml"].clone())
                .unwrap()
                .replace("name: fact", "name: stg"),
            Expect::ErrorAtLine,
        ),
        case(
            "YAML syntax error",
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: stg\n   description: [\n",
            Expect::ErrorAtLine,
        ),
        case(
            "dbt_project.yml syntax error",
            "dbt_project.yml",
            "name: fuzz\nmodels: {\n",
            Expect::ErrorAtLine,
        ),
        case(
            "dbt_project.yml without name",
            "dbt_project.yml",
            "version: 2\n",
            Expect::ErrorInFile,
        ),
        case(
            "project name with a dash",
            "dbt_project.yml",
            "name: my-project\n",
            Expect::ErrorAtLine,
        ),
        case(
            "selectors.yml with an unknown method",
            "selectors.yml",
            "selectors:\n  - name: nightly\n    definition: 'colour:blue'\n",
            Expect::ErrorAtLine,
        ),
        case(
            "selectors.yml with a cycle through selectors",
            "selectors.yml",
            "selectors:\n  - name: nightly\n    definition:\n      method: selector\n      value: nightly\n",
            Expect::ErrorAtLine,
        ),
    ];
    // Two files, one name; a cycle across two models.
    // Errors about two files may name either (the message names both).
    let mut dup = case(
        "two models with one name",
        "models/other/stg.sql",
        "select 1\n",
        Expect::ErrorInFile,
    );
    dup.also.push("models/staging/stg.sql".into());
    cases.push(dup);
    let mut dup = case(
        "a model and a seed with one name",
        "models/lookup.sql",
        "select 1\n",
        Expect::ErrorInFile,
    );
    dup.also.push("seeds/lookup.csv".into());
    cases.push(dup);
    let mut cycle = case(
        "cycle of two models",
        "models/staging/stg.sql",
        "select * from {{ ref('fact') }}\n",
        Expect::ErrorInFile,
    );
    cycle.also.push(MODEL.into());
    cases.push(cycle);
    let mut disabled = case(
        "ref to a disabled model",
        "models/staging/stg.sql",
        "{{ config(enabled=false) }}\nselect 1\n",
        Expect::Either,
    );
    disabled.file = MODEL.into();
    cases.push(disabled);
    cases
}

/// Broken CSV seeds.
fn broken_seed_cases() -> Vec<Case> {
    let broken = [
        "",
        "id,name\n1\n2,b,c\n",
        "id,id\n1,2\n",
        ",\n,\n",
        "\"id,name\n1,a\n",
        "id,name\n1,\"a\n",
        "\n\n\n",
        "id;name\n1;a\n",
    ];
    broken
        .iter()
        .map(|text| {
            case(
                format!("seed: {text:?}"),
                "seeds/lookup.csv",
                *text,
                Expect::Either,
            )
        })
        .collect()
}

/// A package under dbt_packages/ with broken files.
fn broken_package_cases() -> Vec<Case> {
    let packages: [(&str, &str); 8] = [
        ("dbt_packages/pkg/dbt_project.yml", "name: [pkg\n"),
        ("dbt_packages/pkg/dbt_project.yml", "name: fuzz\n"),
        ("dbt_packages/pkg/dbt_project.yml", "version: 1\n"),
        ("dbt_packages/pkg/dbt_project.yml", "\u{0}\u{1}\u{2}"),
        ("dbt_packages/pkg/dbt_project.yml", "name: pkg\nmodels: 3\n"),
        ("dbt_packages/pkg/models/m.sql", "{{ ref('nope') }}"),
        ("dbt_packages/pkg/models/m.sql", "{% if %}"),
        ("dbt_packages/pkg/macros/m.sql", "{% macro m( %}"),
    ];
    packages
        .iter()
        .map(|(file, text)| {
            let mut c = case(
                format!("package: {file}: {text:?}"),
                file,
                *text,
                Expect::Either,
            );
            c.files
                .entry("dbt_packages/pkg/dbt_project.yml".into())
                .or_insert_with(|| b"name: pkg\n".to_vec());
            c
        })
        .collect()
}

// --------------------------------------------------------------------- tests

#[test]
fn the_base_project_compiles() {
    let failures = run(
        vec![case(
            "base",
            "dbt_project.yml",
            base_project()["dbt_project.yml"].clone(),
            Expect::Either,
        )],
        "base",
    );
    assert_none(failures, 1);
    // And compiling it really succeeds (not just "an error naming a file").
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("weir-fuzz-base-ok");
    let _ = std::fs::remove_dir_all(&root);
    for (path, contents) in base_project() {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, contents).unwrap();
    }
    compile_dir(&root).unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn yaml_values_of_every_type() {
    let cases = yaml_type_cases();
    let total = cases.len();
    assert_none(run(cases, "yaml_types"), total);
}

#[test]
fn truncated_and_garbled_files() {
    let cases = truncated_and_garbled_cases();
    let total = cases.len();
    assert_none(run(cases, "truncated"), total);
}

#[test]
fn garbage_empty_and_huge_files() {
    let cases = garbage_cases();
    let total = cases.len();
    assert_none(run(cases, "garbage"), total);
}

#[test]
fn broken_jinja() {
    let cases = broken_jinja_cases();
    let total = cases.len();
    assert_none(run(cases, "jinja"), total);
}

#[test]
fn broken_macros() {
    let cases = broken_macro_cases();
    let total = cases.len();
    assert_none(run(cases, "macros"), total);
}

#[test]
fn broken_projects() {
    let cases = structural_cases();
    let total = cases.len();
    assert_none(run(cases, "structure"), total);
}

#[test]
fn broken_seeds_and_packages() {
    let mut cases = broken_seed_cases();
    cases.extend(broken_package_cases());
    let total = cases.len();
    assert_none(run(cases, "seeds_packages"), total);
}

#[test]
fn broken_profiles() {
    quiet_panics();
    let base = "fuzz:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: localhost\n      port: 5432\n      user: u\n      password: p\n      dbname: d\n      schema: s\n      threads: 2\n";
    let doc = yaml::parse(base, Path::new("profiles.yml")).unwrap();
    let mut paths = Vec::new();
    node_paths(&doc, &mut Vec::new(), &mut paths);
    let mut failures = Vec::new();
    let mut total = 0;
    for path in &paths {
        for with in replacements() {
            let mut mutated = doc.clone();
            replace_at(&mut mutated, path, with);
            let text = yaml::to_string(&mutated);
            total += 1;
            IN_CASE.with(|c| c.set(true));
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                weir::parse_target(&text, Path::new("profiles.yml"), "fuzz", None)
            }));
            IN_CASE.with(|c| c.set(false));
            match outcome {
                Err(_) => failures.push(format!(
                    "profiles.yml at {}: panicked: {}",
                    show_path(path),
                    PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default()
                )),
                Ok(Err(err)) if !err.to_string().contains("profiles.yml") => {
                    failures.push(format!("profiles.yml at {}: {err}", show_path(path)))
                }
                _ => {}
            }
        }
    }
    assert_none(failures, total);
}

#[test]
fn selector_strings() {
    quiet_panics();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("weir-fuzz")
        .join(format!("selectors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (path, contents) in base_project() {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, contents).unwrap();
    }
    let project = weir::Project::load(&root).unwrap();
    let target = weir::Target::embedded_default("fuzz", Some("dev"));
    let manifest = weir::compile(&project, &target, &Default::default()).unwrap();
    // Pieces of the grammar, glued at random: operators, methods, values.
    let pieces = [
        "+",
        "@",
        "2",
        "0",
        "99999999999999999999",
        ",",
        " ",
        ":",
        ".",
        "*",
        "?",
        "[",
        "]",
        "!",
        "-",
        "/",
        "tag",
        "fqn",
        "path",
        "file",
        "source",
        "config",
        "package",
        "test_name",
        "test_type",
        "resource_type",
        "exposure",
        "state",
        "selector",
        "stg",
        "fact",
        "models",
        "app.events",
        "materialized",
        "é",
        "\u{0}",
        "\n",
        "'",
        "\"",
        "{{",
        "%",
    ];
    let mut rng = Rng(0x5e1e_c7ed_0000_0001);
    let mut failures = Vec::new();
    for round in 0..5000 {
        let text: String = (0..=rng.below(8))
            .map(|_| pieces[rng.below(pieces.len())])
            .collect();
        let selection = weir::Selection {
            select: vec![text.clone()],
            exclude: if round % 3 == 0 {
                vec![text.clone()]
            } else {
                Vec::new()
            },
            indirect_selection: [
                weir::IndirectSelection::Eager,
                weir::IndirectSelection::Cautious,
                weir::IndirectSelection::Buildable,
                weir::IndirectSelection::Empty,
            ][round % 4],
            project_root: Some(root.clone()),
            ..Default::default()
        };
        IN_CASE.with(|c| c.set(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            selection.resolve_members(&manifest).map(|s| s.len())
        }));
        IN_CASE.with(|c| c.set(false));
        match outcome {
            Err(_) => failures.push(format!(
                "{text:?}: panicked: {}",
                PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default()
            )),
            Ok(Err(err)) if err.message().is_empty() => {
                failures.push(format!("{text:?}: empty message"))
            }
            _ => {}
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    assert_none(failures, 5000);
}
