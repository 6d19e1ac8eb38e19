//! One digest of every file a project was read from, the compile cache's
//! record of "the same files" (see compile::cache).

use sha2::{Digest, Sha256};

use super::ProjectFile;

/// The sha256 of a project's files (paths and contents, in a fixed order),
/// and whether any of them names what differs between two runs of the same
/// files: such a project's compile is never reused.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDigest {
    pub sha256: [u8; 32],
    pub mentions_run_identity: bool,
}

/// Names whose value is new on every run; a template that reads them cannot be
/// compiled once for many runs. Looked for in the text, so a mention in a
/// comment counts too: a cache miss costs time, a wrong hit costs correctness.
const RUN_IDENTITY: [&str; 2] = ["invocation_id", "run_started_at"];

/// Collects the files of one project as it is read.
pub struct DigestBuilder {
    hasher: Sha256,
    mentions_run_identity: bool,
}

impl DigestBuilder {
    /// Starts with dbt_project.yml's text.
    pub fn new(project_yml: &str) -> Self {
        let mut builder = DigestBuilder {
            hasher: Sha256::new(),
            mentions_run_identity: false,
        };
        builder.add_text("dbt_project.yml", project_yml);
        builder
    }

    /// Adds files of one kind (`kind` keeps a model apart from a macro at the same path).
    pub fn add_files(&mut self, kind: &str, files: &[ProjectFile]) {
        for file in files {
            self.hasher.update(kind.as_bytes());
            self.hasher.update([0]);
            self.add_text(&file.original_file_path, &file.text);
        }
    }

    fn add_text(&mut self, path: &str, text: &str) {
        // Lengths first: no two sequences of files hash the same text.
        self.hasher.update((path.len() as u64).to_le_bytes());
        self.hasher.update(path.as_bytes());
        self.hasher.update((text.len() as u64).to_le_bytes());
        self.hasher.update(text.as_bytes());
        self.mentions_run_identity |= RUN_IDENTITY.iter().any(|name| text.contains(name));
    }

    pub fn finish(self) -> SourceDigest {
        SourceDigest {
            sha256: self.hasher.finalize().into(),
            mentions_run_identity: self.mentions_run_identity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> ProjectFile {
        ProjectFile {
            original_file_path: format!("models/{path}"),
            path: path.to_string(),
            text: text.to_string(),
        }
    }

    fn digest(kind: &str, files: &[ProjectFile]) -> SourceDigest {
        let mut builder = DigestBuilder::new("name: p");
        builder.add_files(kind, files);
        builder.finish()
    }

    #[test]
    fn changes_with_any_path_text_or_kind() {
        let base = digest("models", &[file("a.sql", "select 1")]);
        assert_eq!(base, digest("models", &[file("a.sql", "select 1")]));
        assert_ne!(base, digest("models", &[file("a.sql", "select 2")]));
        assert_ne!(base, digest("models", &[file("b.sql", "select 1")]));
        assert_ne!(base, digest("macros", &[file("a.sql", "select 1")]));
        // Moving text from a path into the text before it is a different project.
        assert_ne!(
            digest("models", &[file("a", "bc")]),
            digest("models", &[file("ab", "c")])
        );
    }

    #[test]
    fn notices_run_identity() {
        assert!(!digest("models", &[file("a.sql", "select 1")]).mentions_run_identity);
        let stamped = file("a.sql", "select '{{ invocation_id }}' as run");
        assert!(digest("models", &[stamped]).mentions_run_identity);
    }
}
