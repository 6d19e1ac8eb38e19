//! The YAML tree weir reads: every node knows the line it starts on, so an
//! error about a value names the line of that value.

use std::fmt;

/// One node of a YAML document and the 1-based line it starts on (0 for a
/// node made in code rather than read from a file).
#[derive(Debug, Clone)]
pub struct Yaml {
    kind: Kind,
    line: usize,
}

/// What a node holds, with scalars already typed as PyYAML's safe loader
/// (which dbt uses) types them.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Sequence(Vec<Yaml>),
    Mapping(Mapping),
}

/// Equal when the contents are: where a node was written does not matter.
impl PartialEq for Yaml {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl Yaml {
    /// A node read from line `line`.
    pub fn at(line: usize, kind: Kind) -> Yaml {
        Yaml { kind, line }
    }

    /// A node made in code, with no line of its own.
    pub fn new(kind: Kind) -> Yaml {
        Yaml { kind, line: 0 }
    }

    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    pub fn kind_mut(&mut self) -> &mut Kind {
        &mut self.kind
    }

    /// The 1-based line the node starts on; 0 when it was made in code.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The value under a string key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        self.as_mapping()?.get(key)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            Kind::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self.kind {
            Kind::Int(i) => Some(i),
            _ => None,
        }
    }

    /// A whole number that is not negative.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_i64().and_then(|i| u64::try_from(i).ok())
    }

    pub fn as_sequence(&self) -> Option<&[Yaml]> {
        match &self.kind {
            Kind::Sequence(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_mapping(&self) -> Option<&Mapping> {
        match &self.kind {
            Kind::Mapping(map) => Some(map),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        self.kind == Kind::Null
    }

    pub fn is_string(&self) -> bool {
        matches!(self.kind, Kind::String(_))
    }

    pub fn is_number(&self) -> bool {
        matches!(self.kind, Kind::Int(_) | Kind::Float(_))
    }

    pub fn is_sequence(&self) -> bool {
        matches!(self.kind, Kind::Sequence(_))
    }

    pub fn is_mapping(&self) -> bool {
        matches!(self.kind, Kind::Mapping(_))
    }
}

impl From<&str> for Yaml {
    fn from(s: &str) -> Yaml {
        Yaml::new(Kind::String(s.to_string()))
    }
}

impl From<String> for Yaml {
    fn from(s: String) -> Yaml {
        Yaml::new(Kind::String(s))
    }
}

impl From<bool> for Yaml {
    fn from(b: bool) -> Yaml {
        Yaml::new(Kind::Bool(b))
    }
}

impl From<i64> for Yaml {
    fn from(i: i64) -> Yaml {
        Yaml::new(Kind::Int(i))
    }
}

impl From<f64> for Yaml {
    fn from(f: f64) -> Yaml {
        Yaml::new(Kind::Float(f))
    }
}

impl From<Vec<Yaml>> for Yaml {
    fn from(items: Vec<Yaml>) -> Yaml {
        Yaml::new(Kind::Sequence(items))
    }
}

impl From<Mapping> for Yaml {
    fn from(map: Mapping) -> Yaml {
        Yaml::new(Kind::Mapping(map))
    }
}

/// A node on one line, as an error message quotes it: a scalar as YAML
/// writes it, a collection as JSON.
impl fmt::Display for Yaml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Sequence(_) | Kind::Mapping(_) => {
                write!(f, "{}", super::to_json(self))
            }
            _ => f.write_str(super::emit::scalar_text(self).trim_end()),
        }
    }
}

/// The entries of a YAML mapping in the order written. A mapping read from
/// a file has no key twice (the loader refuses it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping {
    entries: Vec<(Yaml, Yaml)>,
}

impl Mapping {
    pub fn new() -> Mapping {
        Mapping::default()
    }

    pub(super) fn from_entries(entries: Vec<(Yaml, Yaml)>) -> Mapping {
        Mapping { entries }
    }

    /// The value under a string key.
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        self.entry(key).map(|(_, value)| value)
    }

    /// The key node and value under a string key: the key's line is where
    /// the entry is written.
    pub fn entry(&self, key: &str) -> Option<&(Yaml, Yaml)> {
        self.entries.iter().find(|(k, _)| k.as_str() == Some(key))
    }

    pub fn get_mut(&mut self, key: &Yaml) -> Option<&mut Yaml> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value)
    }

    /// Set `key` to `value`, in place when the key is already there.
    pub fn insert(&mut self, key: Yaml, value: Yaml) {
        match self.get_mut(&key) {
            Some(slot) => *slot = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Take out the entry of `key`, keeping the others in order.
    pub fn remove(&mut self, key: &Yaml) -> Option<Yaml> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(index).1)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, (Yaml, Yaml)> {
        self.entries.iter()
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, (Yaml, Yaml)> {
        self.entries.iter_mut()
    }

    pub fn keys(&self) -> impl Iterator<Item = &Yaml> {
        self.entries.iter().map(|(key, _)| key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<'a> IntoIterator for &'a Mapping {
    type Item = &'a (Yaml, Yaml);
    type IntoIter = std::slice::Iter<'a, (Yaml, Yaml)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}
