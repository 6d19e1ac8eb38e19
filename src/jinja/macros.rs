//! Macros from the project's macro-paths: all macro files form one template
//! module, so macros can call each other across files, and every macro is a
//! global function of the environment.

use std::path::{Path, PathBuf};

use crate::project::ProjectFile;

/// Name of the synthetic template that holds every macro file.
pub const MACRO_MODULE: &str = "__weir_macros__";

/// All macro files joined into one module, with a map back to the files.
#[derive(Debug, Clone, Default)]
pub struct MacroModule {
    pub source: String,
    /// (first line in `source`, file, number of lines) per macro file.
    spans: Vec<(usize, PathBuf, usize)>,
    /// (macro name, file it is defined in).
    pub names: Vec<(String, String)>,
}

impl MacroModule {
    pub fn build(root: &Path, files: &[ProjectFile]) -> MacroModule {
        let mut module = MacroModule::default();
        let mut next_line = 1;
        for file in files {
            let line_count = file.text.lines().count().max(1);
            module
                .spans
                .push((next_line, root.join(&file.original_file_path), line_count));
            module.source.push_str(&file.text);
            if !file.text.ends_with('\n') {
                module.source.push('\n');
            }
            next_line += line_count;
            for name in macro_names(&file.text) {
                module.names.push((name, file.original_file_path.clone()));
            }
        }
        module
    }

    /// The file and line of a line in the joined module.
    pub fn locate(&self, line: usize) -> Option<(&Path, usize)> {
        self.spans
            .iter()
            .find(|(start, _, count)| line >= *start && line < start + count)
            .map(|(start, file, _)| (file.as_path(), line - start + 1))
    }

    pub fn defines(&self, name: &str) -> bool {
        self.names.iter().any(|(n, _)| n == name)
    }
}

/// Names of the macros a file defines: `{% macro name(` or `{%- macro name(`.
pub fn macro_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{%") {
        rest = &rest[start + 2..];
        let tag = rest.trim_start_matches(['-', '+']).trim_start();
        for keyword in ["macro", "test"] {
            if let Some(after) = tag
                .strip_prefix(keyword)
                .filter(|a| a.starts_with(char::is_whitespace))
            {
                let name: String = after
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && keyword == "macro" {
                    names.push(name);
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_macro_names_with_whitespace_control() {
        let text = "{% macro cents_to_dollars(col) %}x{% endmacro %}\n{%- macro  other() -%}{%- endmacro -%}";
        assert_eq!(macro_names(text), vec!["cents_to_dollars", "other"]);
    }

    #[test]
    fn maps_module_lines_back_to_files() {
        let files = vec![
            ProjectFile {
                original_file_path: "macros/a.sql".into(),
                path: "a.sql".into(),
                text: "l1\nl2\n".into(),
            },
            ProjectFile {
                original_file_path: "macros/b.sql".into(),
                path: "b.sql".into(),
                text: "m1\nm2\nm3".into(),
            },
        ];
        let module = MacroModule::build(Path::new(""), &files);
        assert_eq!(module.locate(2), Some((Path::new("macros/a.sql"), 2)));
        assert_eq!(module.locate(5), Some((Path::new("macros/b.sql"), 3)));
    }
}
