//! Secrets: the passwords of profiles.yml and the values of `DBT_ENV_SECRET_*`,
//! known process-wide so that every artifact, file and message weir writes is
//! scrubbed of them, whichever code path produced the text.
//!
//! Values shorter than [`MIN_SECRET_LEN`] are not scrubbed: hiding `1` or
//! `true` would corrupt every artifact while protecting nothing.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::Mutex;

/// Environment variables whose values are secrets, as dbt names them.
pub const SECRET_ENV_PREFIX: &str = "DBT_ENV_SECRET_";
/// What secrets are replaced with.
pub const MASK: &str = "*****";
/// Shorter values are not worth hiding and would mangle unrelated text.
pub const MIN_SECRET_LEN: usize = 4;

static REGISTERED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remember secrets (a target's password) for every later scrub in this process.
pub fn register(values: impl IntoIterator<Item = String>) {
    let mut registered = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    for value in values {
        if value.len() >= MIN_SECRET_LEN && !registered.contains(&value) {
            registered.push(value);
        }
    }
}

/// The values of every `DBT_ENV_SECRET_*` variable of the environment.
pub fn env_secrets() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(key, value)| {
            let key = key.to_str()?;
            let value = value.into_string().ok()?;
            (key.starts_with(SECRET_ENV_PREFIX) && value.len() >= MIN_SECRET_LEN).then_some(value)
        })
        .collect()
}

/// Every secret known now, longest first (so a secret containing another is
/// masked whole).
pub fn known() -> Vec<String> {
    let mut all = REGISTERED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for value in env_secrets() {
        if !all.contains(&value) {
            all.push(value);
        }
    }
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    all
}

/// `text` with every known secret masked.
pub fn scrub(text: &str) -> Cow<'_, str> {
    scrub_with(text, &known())
}

/// `text` with each of `secrets` masked.
pub fn scrub_with<'t>(text: &'t str, secrets: &[String]) -> Cow<'t, str> {
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

/// JSON `text` with every known secret masked, raw or JSON-escaped, as the
/// artifacts weir writes are.
pub fn scrub_json(text: &str) -> String {
    let mut writer = ScrubWriter::new(Vec::with_capacity(text.len()));
    // Writing to a Vec cannot fail.
    let _ = writer.write_all(text.as_bytes());
    let bytes = writer.finish().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A writer that masks secrets in what passes through it, also when a secret
/// is split across two writes, and a secret's JSON-escaped form too (for
/// artifacts). [`ScrubWriter::finish`] writes the held-back tail.
pub struct ScrubWriter<W: Write> {
    inner: Option<W>,
    /// Longest first: where two start at one place, the longer is masked.
    patterns: Vec<memchr::memmem::Finder<'static>>,
    pending: Vec<u8>,
    /// The longest pattern minus one: what may be the start of a split secret.
    keep: usize,
    masked: bool,
}

impl<W: Write> ScrubWriter<W> {
    /// Scrubs every secret known now.
    pub fn new(inner: W) -> ScrubWriter<W> {
        ScrubWriter::with_secrets(inner, &known())
    }

    pub fn with_secrets(inner: W, secrets: &[String]) -> ScrubWriter<W> {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        for secret in secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = &escaped[1..escaped.len().saturating_sub(1).max(1)];
            for form in [secret.as_str(), escaped] {
                if !form.is_empty() && !patterns.iter().any(|p| p == form.as_bytes()) {
                    patterns.push(form.as_bytes().to_vec());
                }
            }
        }
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let keep = patterns.first().map_or(0, |p| p.len() - 1);
        ScrubWriter {
            inner: Some(inner),
            patterns: patterns
                .iter()
                .map(|p| memchr::memmem::Finder::new(p).into_owned())
                .collect(),
            pending: Vec::new(),
            keep,
            masked: false,
        }
    }

    /// Write out what is held back, flush, and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        self.finish_reporting().map(|(inner, _)| inner)
    }

    /// [`ScrubWriter::finish`], and whether any secret was masked.
    pub fn finish_reporting(mut self) -> io::Result<(W, bool)> {
        self.drain(true)?;
        let mut inner = self
            .inner
            .take()
            .expect("inner writer present until finish");
        inner.flush()?;
        Ok((inner, self.masked))
    }

    fn drain(&mut self, all: bool) -> io::Result<()> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(());
        };
        if self.patterns.is_empty() {
            inner.write_all(&self.pending)?;
            self.pending.clear();
            return Ok(());
        }
        let limit = if all {
            self.pending.len()
        } else {
            self.pending.len().saturating_sub(self.keep)
        };
        let mut out = Vec::with_capacity(limit);
        let mut i = 0;
        // A pattern starting before `limit` lies wholly in `pending`.
        while i < limit {
            let rest = &self.pending[i..];
            let next = self
                .patterns
                .iter()
                .filter_map(|p| p.find(rest).map(|at| (at, p.needle().len())))
                .filter(|(at, _)| i + at < limit)
                .min_by_key(|(at, _)| *at);
            match next {
                Some((at, len)) => {
                    out.extend_from_slice(&rest[..at]);
                    out.extend_from_slice(MASK.as_bytes());
                    self.masked = true;
                    i += at + len;
                }
                None => {
                    out.extend_from_slice(&self.pending[i..limit]);
                    i = limit;
                }
            }
        }
        inner.write_all(&out)?;
        self.pending.drain(..i.min(self.pending.len()));
        Ok(())
    }
}

impl<W: Write> Write for ScrubWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= 64 * 1024 || self.patterns.is_empty() {
            self.drain(false)?;
        }
        Ok(buf.len())
    }

    /// Flushes what cannot be the start of a secret; the rest waits for
    /// more bytes or [`ScrubWriter::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.drain(false)?;
        match self.inner.as_mut() {
            Some(inner) => inner.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for ScrubWriter<W> {
    fn drop(&mut self) {
        // Best effort for a writer dropped without `finish`: an error here has
        // no one to report to, and the caller's own flush reports I/O errors.
        let _ = self.drain(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubbed(chunks: &[&str], secrets: &[&str]) -> String {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let mut writer = ScrubWriter::with_secrets(Vec::new(), &secrets);
        for chunk in chunks {
            writer.write_all(chunk.as_bytes()).unwrap();
            writer.flush().unwrap();
        }
        String::from_utf8(writer.finish().unwrap()).unwrap()
    }

    #[test]
    fn secrets_are_masked_even_when_split_across_writes() {
        assert_eq!(
            scrubbed(
                &["pass=hun", "ter2-xyz; again hunter2-xyz"],
                &["hunter2-xyz"]
            ),
            "pass=*****; again *****"
        );
        assert_eq!(scrubbed(&["no secrets here"], &[]), "no secrets here");
        assert_eq!(scrubbed(&["a", "b", "c"], &["zzzz"]), "abc");
    }

    #[test]
    fn json_escaped_forms_and_longest_first() {
        assert_eq!(
            scrubbed(&[r#"{"p": "qu\"ote"}"#], &["qu\"ote"]),
            r#"{"p": "*****"}"#
        );
        assert_eq!(
            scrubbed(&["s3cret-long and s3cret"], &["s3cret", "s3cret-long"]),
            "***** and *****"
        );
    }

    #[test]
    fn short_values_are_left_alone() {
        assert_eq!(
            scrub_with("true or 1", &["1".into(), "true".into()]),
            "***** or 1"
        );
    }
}
