//! Versions and ranges as dbt reads them for packages and
//! `require-dbt-version`: `X.Y.Z` with an optional prerelease and build,
//! behind `=`, `>`, `>=`, `<` or `<=` (no caret or tilde: a bare version is
//! exact, not `^X.Y.Z` as in Cargo). A list of them is their intersection.

use std::cmp::Ordering;
use std::fmt;

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matcher {
    Exact,
    Above,
    AtLeast,
    Below,
    AtMost,
}

/// One version with its matcher: `>=1.0.0`, `1.2.0-rc1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    matcher: Matcher,
    numbers: [u64; 3],
    prerelease: Option<String>,
    build: Option<String>,
}

impl Spec {
    pub fn parse(text: &str) -> Result<Spec> {
        let invalid = || {
            Error::new(
                ErrorKind::Project,
                format!("\"{text}\" is not a valid semantic version (like 1.2.0 or >=1.2.0)"),
            )
        };
        let (matcher, rest) = [
            (">=", Matcher::AtLeast),
            ("<=", Matcher::AtMost),
            (">", Matcher::Above),
            ("<", Matcher::Below),
            ("=", Matcher::Exact),
        ]
        .into_iter()
        .find_map(|(prefix, m)| text.strip_prefix(prefix).map(|rest| (m, rest)))
        .unwrap_or((Matcher::Exact, text));
        let (rest, build) = match rest.split_once('+') {
            Some((head, build)) => {
                let ok = build
                    .split('.')
                    .all(|part| part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
                if !ok {
                    return Err(invalid());
                }
                (head, Some(build.to_string()))
            }
            None => (rest, None),
        };
        // Three numbers, then the prerelease, with or without its `-`.
        let mut numbers = [0u64; 3];
        let mut cursor = rest;
        for (i, number) in numbers.iter_mut().enumerate() {
            let digits = cursor.bytes().take_while(u8::is_ascii_digit).count();
            let part = &cursor[..digits];
            if part.is_empty() || (part.len() > 1 && part.starts_with('0')) {
                return Err(invalid());
            }
            *number = part.parse().map_err(|_| invalid())?;
            cursor = &cursor[digits..];
            if i < 2 {
                cursor = cursor.strip_prefix('.').ok_or_else(invalid)?;
            }
        }
        let prerelease = cursor.strip_prefix('-').unwrap_or(cursor);
        let prerelease = if prerelease.is_empty() {
            if cursor == "-" {
                return Err(invalid());
            }
            None
        } else {
            let valid = prerelease.split('.').all(|part| {
                let numeric = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
                if numeric {
                    part == "0" || !part.starts_with('0')
                } else {
                    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }
            });
            if !valid {
                return Err(invalid());
            }
            Some(prerelease.to_string())
        };
        Ok(Spec {
            matcher,
            numbers,
            prerelease,
            build,
        })
    }

    pub fn is_prerelease(&self) -> bool {
        self.prerelease.is_some()
    }

    fn is_lower_bound(&self) -> bool {
        matches!(self.matcher, Matcher::Above | Matcher::AtLeast)
    }

    fn is_upper_bound(&self) -> bool {
        matches!(self.matcher, Matcher::Below | Matcher::AtMost)
    }

    fn is_exact(&self) -> bool {
        self.matcher == Matcher::Exact
    }

    /// dbt's order of two specs: by version (a release above its
    /// prereleases, except under a `<` bound, so that `<2.0.0` keeps out
    /// `2.0.0-rc1`), then, for one version, by what the matchers let in.
    fn compare(&self, other: &Spec) -> Ordering {
        for (a, b) in self.numbers.iter().zip(&other.numbers) {
            match a.cmp(b) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        match (&self.prerelease, &other.prerelease) {
            (None, None) => {}
            (None, Some(_)) if self.matcher == Matcher::Below => return Ordering::Less,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(a), Some(b)) => match compare_prerelease(a, b) {
                Ordering::Equal => {}
                unequal => return unequal,
            },
        }
        use Matcher::*;
        let (m, o) = (self.matcher, other.matcher);
        if matches!((m, o), (AtLeast, AtMost) | (AtMost, AtLeast)) {
            return Ordering::Equal;
        }
        if (m == Below && o == AtMost)
            || (o == Above && m == AtLeast)
            || (self.is_upper_bound() && other.is_lower_bound())
        {
            return Ordering::Less;
        }
        if (o == Below && m == AtMost)
            || (m == Above && o == AtLeast)
            || (self.is_lower_bound() && other.is_upper_bound())
        {
            return Ordering::Greater;
        }
        Ordering::Equal
    }
}

/// Dot-separated parts: numbers numerically and below words, words by
/// their text; a shorter text first when the parts agree.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    for (x, y) in a.split('.').zip(b.split('.')) {
        let numeric = |s: &str| {
            (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
                .then(|| s.parse::<u128>().ok())
                .flatten()
        };
        let order = match (numeric(x), numeric(y)) {
            (Some(i), Some(j)) => i.cmp(&j),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let matcher = match self.matcher {
            Matcher::Exact => "",
            Matcher::Above => ">",
            Matcher::AtLeast => ">=",
            Matcher::Below => "<",
            Matcher::AtMost => "<=",
        };
        let [major, minor, patch] = self.numbers;
        write!(f, "{matcher}{major}.{minor}.{patch}")?;
        if let Some(pre) = &self.prerelease {
            write!(f, "-{pre}")?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

/// The versions a list of specs allows together: a lower and an upper
/// bound (None: unbounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    start: Option<Spec>,
    end: Option<Spec>,
}

/// The specs' ranges do not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disjoint;

impl Range {
    pub fn any() -> Range {
        Range {
            start: None,
            end: None,
        }
    }

    fn of(spec: &Spec) -> Range {
        let bounded = Some(spec.clone());
        match spec.matcher {
            Matcher::Exact => Range {
                start: bounded.clone(),
                end: bounded,
            },
            Matcher::Above | Matcher::AtLeast => Range {
                start: bounded,
                end: None,
            },
            Matcher::Below | Matcher::AtMost => Range {
                start: None,
                end: bounded,
            },
        }
    }

    /// The intersection of `specs`, in dbt's way (its order included).
    pub fn intersect(specs: &[Spec]) -> std::result::Result<Range, Disjoint> {
        let Some((last, others)) = specs.split_last() else {
            return Ok(Range::any());
        };
        let mut range = Range::of(last);
        for spec in others {
            range = range.reduce(&Range::of(spec))?;
        }
        Ok(range)
    }

    fn reduce(&self, other: &Range) -> std::result::Result<Range, Disjoint> {
        let (start, end) = match (&self.start, &other.start) {
            (Some(a), Some(b)) if a.is_exact() && b.is_exact() => {
                if a.compare(b) != Ordering::Equal {
                    return Err(Disjoint);
                }
                (Some(a.clone()), Some(a.clone()))
            }
            _ => (
                combine(&self.start, &other.start, Bound::Lower)?,
                combine(&self.end, &other.end, Bound::Upper)?,
            ),
        };
        if let (Some(s), Some(e)) = (&start, &end)
            && s.compare(e) == Ordering::Greater
        {
            return Err(Disjoint);
        }
        Ok(Range { start, end })
    }

    /// True when `version` (an exact version) lies in this range.
    pub fn contains(&self, version: &Spec) -> bool {
        let mut specs = vec![version.clone()];
        specs.extend(self.start.clone());
        specs.extend(self.end.clone());
        Range::intersect(&specs).is_ok()
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.start, &self.end) {
            (None, None) => write!(f, "any version"),
            (Some(s), Some(e)) if s == e => write!(f, "{s}"),
            (Some(s), Some(e)) => write!(f, "{s}, {e}"),
            (Some(s), None) => write!(f, "{s}"),
            (None, Some(e)) => write!(f, "{e}"),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Bound {
    Lower,
    Upper,
}

/// Two lower (or two upper) bounds as one: the tighter one, or the exact
/// version when one is exact and the other lets it in.
fn combine(
    a: &Option<Spec>,
    b: &Option<Spec>,
    bound: Bound,
) -> std::result::Result<Option<Spec>, Disjoint> {
    let (a, b) = match (a, b) {
        (None, other) | (other, None) => return Ok(other.clone()),
        (Some(a), Some(b)) => (a, b),
    };
    let keep_tighter = |a: &Spec, b: &Spec| {
        let order = a.compare(b);
        let b_tighter = match bound {
            Bound::Lower => order == Ordering::Less,
            Bound::Upper => order == Ordering::Greater,
        };
        if b_tighter { b.clone() } else { a.clone() }
    };
    if !a.is_exact() && !b.is_exact() {
        return Ok(Some(keep_tighter(a, b)));
    }
    let (limit, exact) = if a.is_exact() { (b, a) } else { (a, b) };
    let order = limit.compare(exact);
    let lets_in = match bound {
        Bound::Lower => {
            order == Ordering::Less
                || (order == Ordering::Equal && limit.matcher == Matcher::AtLeast)
        }
        Bound::Upper => {
            order == Ordering::Greater
                || (order == Ordering::Equal && limit.matcher == Matcher::AtMost)
        }
    };
    if lets_in {
        Ok(Some(exact.clone()))
    } else {
        Err(Disjoint)
    }
}

/// The highest of `available` (version texts as the hub lists them) in
/// `range`, as written there.
pub fn highest_in<'a>(range: &Range, available: &[&'a str]) -> Option<&'a str> {
    let mut best: Option<(Spec, &str)> = None;
    for text in available {
        let Ok(version) = Spec::parse(text) else {
            continue;
        };
        if !range.contains(&version) {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|(top, _)| top.compare(&version) == Ordering::Less)
        {
            best = Some((version, text));
        }
    }
    best.map(|(_, text)| text)
}

/// `available` without prereleases (unless they may be installed), lowest
/// first.
pub fn installable<'a>(available: &[&'a str], prerelease: bool) -> Vec<&'a str> {
    let mut versions: Vec<(Spec, &str)> = available
        .iter()
        .filter_map(|text| Spec::parse(text).ok().map(|spec| (spec, *text)))
        .filter(|(spec, _)| prerelease || !spec.is_prerelease())
        .collect();
    versions.sort_by(|a, b| a.0.compare(&b.0));
    versions.into_iter().map(|(_, text)| text).collect()
}

/// True when `version` satisfies every spec of `requirement` (dbt's check
/// of `require-dbt-version`). An unparseable spec is an error.
pub fn satisfies(version: &str, requirement: &[String]) -> Result<bool> {
    let mut specs = vec![Spec::parse(version)?];
    for text in requirement {
        specs.push(Spec::parse(text)?);
    }
    Ok(requirement.is_empty() || Range::intersect(&specs).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(list: &[&str]) -> Vec<Spec> {
        list.iter().map(|s| Spec::parse(s).unwrap()).collect()
    }

    #[test]
    fn parses_dbt_versions() {
        assert_eq!(Spec::parse(">=1.2.3").unwrap().to_string(), ">=1.2.3");
        assert_eq!(Spec::parse("1.0.0rc1").unwrap().to_string(), "1.0.0-rc1");
        assert_eq!(
            Spec::parse("1.0.0-b2+x.y").unwrap().to_string(),
            "1.0.0-b2+x.y"
        );
        for bad in ["1.0", "01.0.0", "1.0.0-", ">= 1.0.0", "^1.0.0", "1.2", "x"] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_intersect_as_in_dbt() {
        let range = Range::intersect(&specs(&[">=1.0.0", "<2.0.0"])).unwrap();
        let available = ["0.9.0", "1.0.0", "1.3.0", "1.10.0", "2.0.0", "2.0.0-rc1"];
        assert_eq!(highest_in(&range, &available), Some("1.10.0"));
        let exact = Range::intersect(&specs(&["1.3.0", ">=1.0.0"])).unwrap();
        assert_eq!(highest_in(&exact, &available), Some("1.3.0"));
        assert!(Range::intersect(&specs(&[">=1.0.0", "<2.0.0", ">=2.0.0"])).is_err());
        assert!(Range::intersect(&specs(&["1.0.0", "1.1.0"])).is_err());
        assert!(Range::intersect(&specs(&[">1.0.0", "1.0.0"])).is_err());
        assert!(Range::intersect(&specs(&[">=1.0.0", "<=1.0.0"])).is_ok());
    }

    #[test]
    fn prereleases_stay_out_unless_asked() {
        let available = ["1.0.0", "1.1.0-rc1", "1.1.0"];
        assert_eq!(installable(&available, false), ["1.0.0", "1.1.0"]);
        assert_eq!(
            installable(&available, true),
            ["1.0.0", "1.1.0-rc1", "1.1.0"]
        );
        let below = Range::intersect(&specs(&["<1.1.0"])).unwrap();
        assert_eq!(highest_in(&below, &available), Some("1.0.0"));
    }

    #[test]
    fn require_dbt_version() {
        let req = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(satisfies("1.11.0", &req(&[">=1.3.0", "<2.0.0"])).unwrap());
        assert!(!satisfies("1.11.0", &req(&[">=1.12.0"])).unwrap());
        assert!(satisfies("1.11.0", &[]).unwrap());
        assert!(satisfies("1.11.0", &req(&["1.x"])).is_err());
    }
}
