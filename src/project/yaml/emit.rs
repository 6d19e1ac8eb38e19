//! YAML text as dbt's `toyaml` writes it (PyYAML's `safe_dump` with keys
//! in order): block style, sequences in a mapping not indented, strings
//! quoted only when they must be, single quotes first, non-ASCII escaped.
//! Unlike PyYAML, long lines are not folded at 80 columns.

use super::resolve;
use super::tree::{Kind, Yaml};

/// A whole document.
pub fn document(value: &Yaml) -> String {
    let mut out = String::new();
    match value.kind() {
        Kind::Sequence(items) if !items.is_empty() => sequence(items, 0, &mut out),
        Kind::Mapping(map) if !map.is_empty() => mapping(value, 0, &mut out),
        _ => {
            let (text, plain) = scalar(value, 0);
            out.push_str(&text);
            out.push('\n');
            // PyYAML ends a document that is one plain scalar explicitly.
            if plain {
                out.push_str("...\n");
            }
        }
    }
    out
}

/// A scalar (or an empty collection) as it is written after `key: `.
pub fn scalar_text(value: &Yaml) -> String {
    scalar(value, 0).0
}

fn mapping(value: &Yaml, indent: usize, out: &mut String) {
    let Some(map) = value.as_mapping() else {
        return;
    };
    for (i, (key, item)) in map.iter().enumerate() {
        // The first entry of a mapping inside a sequence follows its `- `.
        if i > 0 || out.is_empty() || out.ends_with('\n') {
            push_indent(indent, out);
        }
        match key.kind() {
            Kind::Sequence(_) | Kind::Mapping(_) => {
                out.push_str(&super::to_json(key).to_string());
            }
            _ => out.push_str(&key_text(key)),
        }
        out.push(':');
        value_after(item, indent, true, out);
    }
}

fn sequence(items: &[Yaml], indent: usize, out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || out.is_empty() || out.ends_with('\n') {
            push_indent(indent, out);
        }
        out.push('-');
        value_after(item, indent, false, out);
    }
}

/// What follows `key:` or `-`: a scalar on the same line, or a collection
/// below it (a mapping indented, a sequence in a mapping not).
fn value_after(item: &Yaml, indent: usize, in_mapping: bool, out: &mut String) {
    match item.kind() {
        Kind::Mapping(map) if !map.is_empty() => {
            if in_mapping {
                out.push('\n');
            } else {
                out.push(' ');
            }
            mapping(item, indent + 2, out);
        }
        Kind::Sequence(items) if !items.is_empty() => {
            if in_mapping {
                out.push('\n');
                sequence(items, indent, out);
            } else {
                out.push(' ');
                sequence(items, indent + 2, out);
            }
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(item, indent + 2).0);
            out.push('\n');
        }
    }
}

fn push_indent(indent: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A scalar's text and whether it is plain; `indent` is where continuation
/// lines of a quoted string start.
fn scalar(value: &Yaml, indent: usize) -> (String, bool) {
    match value.kind() {
        Kind::Null => ("null".into(), true),
        Kind::Bool(b) => (b.to_string(), true),
        Kind::Int(i) => (i.to_string(), true),
        Kind::Float(f) => (float_text(*f), true),
        Kind::String(s) => string(s, indent, false),
        Kind::Sequence(_) => ("[]".into(), false),
        Kind::Mapping(_) => ("{}".into(), false),
    }
}

fn key_text(key: &Yaml) -> String {
    match key.kind() {
        Kind::String(s) => string(s, 0, true).0,
        _ => scalar(key, 0).0,
    }
}

/// Python's `repr()` of a float, as PyYAML writes it: always with a dot.
pub fn float_text(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    // `{:e}` gives the shortest digits that read back as `f`.
    let exp_form = format!("{f:e}");
    let (mantissa, exponent) = exp_form.split_once('e').unwrap_or((&exp_form, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{text}")
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{first}.{rest}e{exp_sign}{:02}", exponent.abs())
    }
}

/// What PyYAML's emitter finds in a string, to choose its style.
struct Analysis {
    multiline: bool,
    plain: bool,
    single_quoted: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_end(c: Option<char>) -> bool {
    c.is_none_or(|c| matches!(c, '\0' | ' ' | '\t' | '\r') || is_break(c))
}

fn analyse(s: &str) -> Analysis {
    let chars: Vec<char> = s.chars().collect();
    // Only block style is written, so only block indicators matter.
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut trailing_space) = (false, false);
    let (mut leading_break, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let last = chars.len().saturating_sub(1);
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = is_blank_or_end(chars.get(i + 1).copied());
        if i == 0 {
            block_indicators |= "#,[]{}&*!|>'\"%@`".contains(c)
                || ((c == '?' || c == ':' || c == '-') && followed_by_whitespace);
        } else {
            block_indicators |=
                (c == ':' && followed_by_whitespace) || (c == '#' && preceded_by_whitespace);
        }
        line_breaks |= is_break(c);
        // allow_unicode is off in dbt's toyaml: anything past ASCII is escaped.
        if !(c == '\n' || (' '..='~').contains(&c)) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i == last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            leading_break |= i == 0;
            trailing_break |= i == last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = matches!(c, '\0' | ' ' | '\t' | '\r') || is_break(c);
    }
    let edges = leading_space || leading_break || trailing_space || trailing_break;
    Analysis {
        multiline: line_breaks,
        plain: !(edges || break_space || space_break || special || line_breaks || block_indicators),
        single_quoted: !(break_space || space_break || special),
    }
}

/// A string in the first style PyYAML would choose: plain, single-quoted,
/// double-quoted.
fn string(s: &str, indent: usize, simple_key: bool) -> (String, bool) {
    let analysis = analyse(s);
    if !s.is_empty() && !resolve::is_special(s) && analysis.plain {
        return (s.to_string(), true);
    }
    if analysis.single_quoted && !(simple_key && analysis.multiline) {
        return (single_quoted(s, indent), false);
    }
    (double_quoted(s), false)
}

fn single_quoted(s: &str, indent: usize) -> String {
    let mut out = String::from("'");
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => out.push_str("''"),
            // A line break in a quoted scalar folds into a space unless an
            // empty line follows it: each break is written twice.
            '\n' => {
                out.push('\n');
                out.push('\n');
                while chars.peek() == Some(&'\n') {
                    chars.next();
                    out.push('\n');
                }
                push_indent(indent, &mut out);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        let escape = match c {
            '\0' => Some('0'),
            '\u{7}' => Some('a'),
            '\u{8}' => Some('b'),
            '\t' => Some('t'),
            '\n' => Some('n'),
            '\u{b}' => Some('v'),
            '\u{c}' => Some('f'),
            '\r' => Some('r'),
            '\u{1b}' => Some('e'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            '\u{85}' => Some('N'),
            '\u{a0}' => Some('_'),
            '\u{2028}' => Some('L'),
            '\u{2029}' => Some('P'),
            _ => None,
        };
        match escape {
            Some(e) => {
                out.push('\\');
                out.push(e);
            }
            None if (' '..='~').contains(&c) => out.push(c),
            None => {
                let code = c as u32;
                let text = if code <= 0xff {
                    format!("\\x{code:02X}")
                } else if code <= 0xffff {
                    format!("\\u{code:04X}")
                } else {
                    format!("\\U{code:08X}")
                };
                out.push_str(&text);
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::yaml::from_json;
    use serde_json::json;

    fn dump(value: serde_json::Value) -> String {
        document(&from_json(&value))
    }

    // Each expectation is PyYAML 6's `safe_dump(value, sort_keys=False)`.
    #[test]
    fn block_style_as_pyyaml_writes_it() {
        assert_eq!(
            dump(json!({"a": 1, "b": [1, 2], "c": {"d": null}, "e": "yes"})),
            "a: 1\nb:\n- 1\n- 2\nc:\n  d: null\ne: 'yes'\n"
        );
        assert_eq!(
            dump(json!([[1, 2], {"a": 1, "b": [3]}])),
            "- - 1\n  - 2\n- a: 1\n  b:\n  - 3\n"
        );
        assert_eq!(
            dump(json!({"k": [{"a": 1, "b": 2}]})),
            "k:\n- a: 1\n  b: 2\n"
        );
        assert_eq!(dump(json!({"e": [], "m": {}})), "e: []\nm: {}\n");
        assert_eq!(dump(json!("x")), "x\n...\n");
        assert_eq!(dump(json!(null)), "null\n...\n");
        assert_eq!(dump(json!("yes")), "'yes'\n");
        assert_eq!(dump(json!([])), "[]\n");
    }

    #[test]
    fn strings_are_quoted_as_pyyaml_quotes_them() {
        let cases = [
            ("a: b", "'a: b'"),
            ("a #b", "'a #b'"),
            ("#c", "'#c'"),
            ("- x", "'- x'"),
            ("-x", "-x"),
            ("x-", "x-"),
            ("@x", "'@x'"),
            ("?x", "?x"),
            ("? x", "'? x'"),
            ("x:", "'x:'"),
            ("a,b", "a,b"),
            ("x]", "x]"),
            ("{x}", "'{x}'"),
            ("it's", "it's"),
            ("'x", "'''x'"),
            ("\"x", "'\"x'"),
            (" lead", "' lead'"),
            ("tail ", "'tail '"),
            ("", "''"),
            ("1_000", "'1_000'"),
            ("0x1F", "'0x1F'"),
            ("010", "'010'"),
            ("1:20", "'1:20'"),
            ("2024-01-01", "'2024-01-01'"),
            ("~", "'~'"),
            ("Null", "'Null'"),
            ("on", "'on'"),
            ("y", "y"),
            ("1e3", "1e3"),
            (".5", "'.5'"),
            ("+1", "'+1'"),
            ("é", "\"\\xE9\""),
            ("tab\there", "\"tab\\there\""),
            ("\u{1}", "\"\\x01\""),
            ("\u{a0}x", "\"\\_x\""),
            ("x\u{2028}y", "\"x\\Ly\""),
            ("a\n", "'a\n\n  '"),
        ];
        for (text, want) in cases {
            assert_eq!(
                dump(json!({ "k": text })),
                format!("k: {want}\n"),
                "{text:?}"
            );
        }
        assert_eq!(dump(json!({"a b": 1})), "a b: 1\n");
    }

    #[test]
    fn floats_are_written_as_python_repr() {
        for (f, want) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (1e20, "1.0e+20"),
            (1e16, "1.0e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (1e-5, "1.0e-05"),
            (-2.5e-7, "-2.5e-07"),
            (123.456, "123.456"),
        ] {
            assert_eq!(float_text(f), want, "{f}");
        }
    }
}
