//! What a scalar means, as PyYAML's safe loader (dbt's) decides it: YAML 1.1
//! rules, so `yes`/`no`/`on`/`off` are booleans, `010` is octal, `1_000` is
//! a thousand and `1e3` (no dot) is text. Dates stay text: Jinja prints a
//! date and its text the same way.

use super::tree::Kind;

/// The value of a plain (unquoted, untagged) scalar.
pub fn plain(text: &str) -> Kind {
    if is_null(text) {
        Kind::Null
    } else if let Some(b) = boolean(text) {
        Kind::Bool(b)
    } else if !text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
        // Most scalars are words: no number starts that way.
        Kind::String(text.to_string())
    } else if let Some(kind) = integer(text) {
        kind
    } else if let Some(f) = float(text) {
        Kind::Float(f)
    } else {
        Kind::String(text.to_string())
    }
}

/// The value of a scalar with an explicit core tag (`!!str`, `!!int`, ...);
/// an error names what the text is not.
pub fn tagged(text: &str, tag: &str) -> Result<Kind, String> {
    let fail = |what: &str| format!("`!!{tag} {text}` is not {what}");
    match tag {
        "null" if is_null(text) => Ok(Kind::Null),
        "null" => Err(fail("null")),
        "bool" => boolean(text)
            .map(Kind::Bool)
            .ok_or_else(|| fail("a boolean")),
        "int" => integer(text).ok_or_else(|| fail("an integer")),
        "float" => float(text)
            .or_else(|| integer(text).map(|k| as_float(&k)))
            .map(Kind::Float)
            .ok_or_else(|| fail("a number")),
        _ => Ok(Kind::String(text.to_string())),
    }
}

/// True when a plain scalar with this text would not read back as the same
/// text: such strings must be quoted when written.
pub fn is_special(text: &str) -> bool {
    !matches!(plain(text), Kind::String(_)) || is_timestamp(text) || text == "<<" || text == "="
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn boolean(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn split_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

fn all(text: &str, allowed: impl Fn(u8) -> bool) -> bool {
    !text.is_empty() && text.bytes().all(allowed)
}

/// `[-+]?` then `0b[01_]+`, `0x[0-9a-fA-F_]+`, `0[0-7_]+`, `0`,
/// `[1-9][0-9_]*`, or base 60 (`1:30`).
fn integer(text: &str) -> Option<Kind> {
    let (negative, digits) = split_sign(text);
    let (radix, body) = if let Some(body) = digits.strip_prefix("0b") {
        all(body, |b| b == b'0' || b == b'1' || b == b'_').then_some((2, body))?
    } else if let Some(body) = digits.strip_prefix("0x") {
        all(body, |b| b.is_ascii_hexdigit() || b == b'_').then_some((16, body))?
    } else if digits == "0" {
        (10, digits)
    } else if let Some(body) = digits.strip_prefix('0') {
        all(body, |b| (b'0'..=b'7').contains(&b) || b == b'_').then_some((8, body))?
    } else if digits.contains(':') {
        return base60(digits, false).map(|v| {
            let v = if negative { -v } else { v };
            integer_kind(v)
        });
    } else {
        let first = *digits.as_bytes().first()?;
        ((b'1'..=b'9').contains(&first) && all(digits, |b| b.is_ascii_digit() || b == b'_'))
            .then_some((10, digits))?
    };
    let body: String = body.chars().filter(|&c| c != '_').collect();
    if body.is_empty() {
        return Some(Kind::Int(0));
    }
    Some(match i128::from_str_radix(&body, radix) {
        Ok(v) => integer_kind(if negative { -v } else { v }),
        // Wider than i128: only a float can hold it.
        Err(_) => Kind::Float(f64::INFINITY * if negative { -1.0 } else { 1.0 }),
    })
}

/// An integer that does not fit in 64 bits becomes a float, as JSON would.
fn integer_kind(value: i128) -> Kind {
    i64::try_from(value).map_or(Kind::Float(value as f64), Kind::Int)
}

/// `[1-9][0-9_]*(:[0-5]?[0-9])+` for an integer; with `fraction`, the last
/// part may be `[0-5]?[0-9]\.[0-9_]*` (a float).
fn base60(text: &str, fraction: bool) -> Option<i128> {
    let mut parts = text.split(':');
    let head = parts.next()?;
    let first = *head.as_bytes().first()?;
    let head_ok = if fraction {
        first.is_ascii_digit() && all(head, |b| b.is_ascii_digit() || b == b'_')
    } else {
        (b'1'..=b'9').contains(&first) && all(head, |b| b.is_ascii_digit() || b == b'_')
    };
    if !head_ok {
        return None;
    }
    let mut value: i128 = head.replace('_', "").parse().ok()?;
    let mut count = 0;
    for part in parts {
        let part = if fraction {
            part.split('.').next()?
        } else {
            part
        };
        let sixty = match part.as_bytes() {
            [d @ b'0'..=b'9'] => (d - b'0') as i128,
            [t @ b'0'..=b'5', d @ b'0'..=b'9'] => ((t - b'0') * 10 + (d - b'0')) as i128,
            _ => return None,
        };
        value = value.checked_mul(60)?.checked_add(sixty)?;
        count += 1;
    }
    (count > 0).then_some(value)
}

/// `[-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?`, `\.[0-9][0-9_]*(exp)?`,
/// base 60 with a fraction, `[-+]?\.inf` and `\.nan`.
fn float(text: &str) -> Option<f64> {
    match text {
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let (negative, body) = if text.starts_with('.') {
        (false, text)
    } else {
        split_sign(text)
    };
    let sign = if negative { -1.0 } else { 1.0 };
    if body.contains(':') {
        let (whole, fraction) = body.rsplit_once('.')?;
        if !fraction.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
            return None;
        }
        let whole = base60(&format!("{whole}.0"), true)?;
        let fraction: f64 = format!("0.{}", fraction.replace('_', "")).parse().ok()?;
        return Some(sign * (whole as f64 + fraction));
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.')?;
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let whole_ok = if whole.is_empty() {
        // `.5`: the fraction must start with a digit, and no sign is allowed.
        text.starts_with('.') && fraction.as_bytes().first().is_some_and(u8::is_ascii_digit)
    } else {
        whole.as_bytes()[0].is_ascii_digit() && digits_ok(whole)
    };
    if !whole_ok || !digits_ok(fraction) {
        return None;
    }
    if let Some(exponent) = exponent {
        let digits = exponent.strip_prefix(['-', '+'])?;
        if !all(digits, |b| b.is_ascii_digit()) {
            return None;
        }
    }
    let cleaned: String = mantissa.chars().filter(|&c| c != '_').collect();
    let cleaned = if cleaned.ends_with('.') {
        format!("{cleaned}0")
    } else {
        cleaned
    };
    let value: f64 = match exponent {
        Some(exponent) => format!("{cleaned}e{exponent}").parse().ok()?,
        None => cleaned.parse().ok()?,
    };
    Some(sign * value)
}

fn as_float(kind: &Kind) -> f64 {
    match kind {
        Kind::Int(i) => *i as f64,
        Kind::Float(f) => *f,
        _ => f64::NAN,
    }
}

/// PyYAML's timestamp: `YYYY-MM-DD`, or `YYYY-M-D` then `T`/`t`/blanks,
/// `H:MM:SS`, an optional fraction and an optional zone.
fn is_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    let mut at = 0;
    let digits = |at: &mut usize, min: usize, max: usize| -> bool {
        let start = *at;
        while *at < b.len() && *at - start < max && b[*at].is_ascii_digit() {
            *at += 1;
        }
        *at - start >= min
    };
    let byte = |at: &mut usize, want: u8| -> bool {
        let ok = b.get(*at) == Some(&want);
        *at += usize::from(ok);
        ok
    };
    if b.len() == 10 {
        let date = digits(&mut at, 4, 4)
            && byte(&mut at, b'-')
            && digits(&mut at, 2, 2)
            && byte(&mut at, b'-')
            && digits(&mut at, 2, 2);
        if date {
            return true;
        }
        at = 0;
    }
    let date = digits(&mut at, 4, 4)
        && byte(&mut at, b'-')
        && digits(&mut at, 1, 2)
        && byte(&mut at, b'-')
        && digits(&mut at, 1, 2);
    if !date {
        return false;
    }
    let blank = |c: u8| c == b' ' || c == b'\t';
    if matches!(b.get(at), Some(b'T' | b't')) {
        at += 1;
    } else if b.get(at).copied().is_some_and(blank) {
        while b.get(at).copied().is_some_and(blank) {
            at += 1;
        }
    } else {
        return false;
    }
    let time = digits(&mut at, 1, 2)
        && byte(&mut at, b':')
        && digits(&mut at, 2, 2)
        && byte(&mut at, b':')
        && digits(&mut at, 2, 2);
    if !time {
        return false;
    }
    if byte(&mut at, b'.') {
        digits(&mut at, 0, usize::MAX);
    }
    while b.get(at).copied().is_some_and(blank) {
        at += 1;
    }
    if at == b.len() {
        return !blank(b[at - 1]);
    }
    if byte(&mut at, b'Z') {
        return at == b.len();
    }
    if !matches!(b.get(at), Some(b'-' | b'+')) {
        return false;
    }
    at += 1;
    if !digits(&mut at, 1, 2) {
        return false;
    }
    if byte(&mut at, b':') && !digits(&mut at, 2, 2) {
        return false;
    }
    at == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Kind {
        plain(text)
    }

    // Each expectation is what PyYAML 6's safe_load returns for the scalar.
    #[test]
    fn booleans_and_nulls_are_yaml_1_1() {
        for t in ["yes", "Yes", "YES", "on", "On", "true", "True"] {
            assert_eq!(kind(t), Kind::Bool(true), "{t}");
        }
        for t in ["no", "NO", "off", "Off", "false", "FALSE"] {
            assert_eq!(kind(t), Kind::Bool(false), "{t}");
        }
        for t in ["y", "n", "Y", "yEs", "tRue"] {
            assert_eq!(kind(t), Kind::String(t.into()), "{t}");
        }
        for t in ["", "~", "null", "Null", "NULL"] {
            assert_eq!(kind(t), Kind::Null, "{t}");
        }
        assert_eq!(kind("nULL"), Kind::String("nULL".into()));
    }

    #[test]
    fn integers_are_yaml_1_1() {
        let cases = [
            ("0", 0),
            ("7", 7),
            ("-7", -7),
            ("+7", 7),
            ("1_000", 1000),
            ("010", 8),
            ("0o17", 0),
            ("0x1F", 31),
            ("0b101", 5),
            ("1:30", 90),
            ("-1:00:01", -3601),
        ];
        for (text, want) in cases {
            if text == "0o17" {
                assert_eq!(kind(text), Kind::String(text.into()));
            } else {
                assert_eq!(kind(text), Kind::Int(want), "{text}");
            }
        }
        for t in ["09", "1:60", "0x", "1e3", "12abc", "-", "+", "1__a"] {
            assert_eq!(kind(t), Kind::String(t.into()), "{t}");
        }
    }

    #[test]
    fn floats_need_a_dot_as_in_yaml_1_1() {
        let cases = [
            ("1.5", 1.5),
            ("-1.5", -1.5),
            ("1.", 1.0),
            (".5", 0.5),
            ("1.5e+3", 1500.0),
            ("1.5E-1", 0.15),
            ("1_000.5", 1000.5),
            ("1:30.5", 90.5),
        ];
        for (text, want) in cases {
            assert_eq!(kind(text), Kind::Float(want), "{text}");
        }
        assert_eq!(kind(".inf"), Kind::Float(f64::INFINITY));
        assert_eq!(kind("-.Inf"), Kind::Float(f64::NEG_INFINITY));
        assert!(matches!(kind(".nan"), Kind::Float(f) if f.is_nan()));
        for t in [
            "1.5e3", "-.5", "1.2.3", "1.0.0", "e3", ".", "0.1.0", "1.5e+",
        ] {
            assert_eq!(kind(t), Kind::String(t.into()), "{t}");
        }
    }

    #[test]
    fn text_that_would_read_back_as_another_type_is_special() {
        let special = [
            "yes",
            "1",
            "1.0",
            "",
            "~",
            "<<",
            "=",
            "2024-01-31",
            "2024-1-1 10:00:00",
            "2001-12-14t21:59:43.10-05:00",
            "2001-12-14 21:59:43.10 Z",
        ];
        for t in special {
            assert!(is_special(t), "{t}");
        }
        for t in [
            "x",
            "y",
            "1e3",
            "1.0.0",
            "2024-01",
            "2024-01-31x",
            "2024-1-1",
            "2024-01-01 10:00",
        ] {
            assert!(!is_special(t), "{t}");
        }
    }

    #[test]
    fn explicit_tags_convert_or_fail() {
        assert_eq!(tagged("1", "str"), Ok(Kind::String("1".into())));
        assert_eq!(tagged("1", "float"), Ok(Kind::Float(1.0)));
        assert_eq!(tagged("yes", "bool"), Ok(Kind::Bool(true)));
        assert!(tagged("x", "int").unwrap_err().contains("not an integer"));
    }
}
