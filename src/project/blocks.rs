//! Named Jinja blocks that stand for a whole resource in a file:
//! `{% snapshot name %}...{% endsnapshot %}` and `{% docs name %}...{% enddocs %}`.

use super::ProjectFile;
use crate::error::{Error, ErrorKind, Result, line_of_offset};

/// One block: its name, and its body as a file whose text keeps the body's
/// line numbers (the lines before it are blank).
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub name: String,
    pub file: ProjectFile,
    /// The body exactly as written, for raw_code and docs.
    pub contents: String,
    /// The whole file the block is in: dbt's checksum covers all of it.
    pub file_text: String,
}

pub fn snapshot_blocks(file: &ProjectFile) -> Result<Vec<Block>> {
    blocks(file, "snapshot")
}

pub fn docs_blocks(file: &ProjectFile) -> Result<Vec<Block>> {
    blocks(file, "docs")
}

/// Every `{% <keyword> name %} body {% end<keyword> %}` of a file.
fn blocks(file: &ProjectFile, keyword: &str) -> Result<Vec<Block>> {
    let text = &file.text;
    let closing = format!("end{keyword}");
    let mut found = Vec::new();
    let mut open: Option<(String, usize, usize)> = None;
    let mut position = 0;
    while let Some(offset) = text[position..].find("{%") {
        let start = position + offset;
        // The closing `%}` comes after the opening `{%`: in `{%}` it does not.
        let Some(length) = text[start + 2..].find("%}") else {
            break;
        };
        let end = start + 2 + length + 2;
        let tag = text[start + 2..end - 2]
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        let mut words = tag.split_whitespace();
        match (words.next(), &open) {
            (Some(word), None) if word == keyword => {
                let name = words.next().unwrap_or_default().to_string();
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(Error::new(
                        ErrorKind::Project,
                        format!("`{{% {keyword} %}}` needs a name: `{{% {keyword} my_name %}}`"),
                    )
                    .at_line(line_of_offset(text, start)));
                }
                open = Some((name, end, line_of_offset(text, start)));
            }
            (Some(word), Some((name, body_start, line))) if word == closing => {
                let contents = text[*body_start..start].to_string();
                let body_line = line_of_offset(text, *body_start);
                found.push(Block {
                    name: name.clone(),
                    file: ProjectFile {
                        original_file_path: file.original_file_path.clone(),
                        path: file.path.clone(),
                        text: "\n".repeat(body_line - 1) + &contents,
                    },
                    contents,
                    file_text: text.clone(),
                });
                let _ = line;
                open = None;
            }
            _ => {}
        }
        position = end;
    }
    if let Some((name, _, line)) = open {
        return Err(Error::new(
            ErrorKind::Project,
            format!("`{{% {keyword} {name} %}}` is never closed with `{{% {closing} %}}`"),
        )
        .at_line(line));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> ProjectFile {
        ProjectFile {
            original_file_path: "snapshots/s.sql".into(),
            path: "s.sql".into(),
            text: text.into(),
        }
    }

    #[test]
    fn a_block_keeps_its_lines() {
        let blocks = snapshot_blocks(&file(
            "-- header\n{% snapshot orders_snapshot %}\nselect 1\n{% endsnapshot %}\n",
        ))
        .unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].name, "orders_snapshot");
        assert_eq!(blocks[0].contents, "\nselect 1\n");
        assert_eq!(blocks[0].file.text, "\n\nselect 1\n");
    }

    #[test]
    fn a_tag_that_closes_itself_is_not_a_tag() {
        // `{%}`: the `%}` overlaps the `{%`; this panicked slicing the tag.
        assert!(snapshot_blocks(&file("{%}")).unwrap().is_empty());
        assert!(snapshot_blocks(&file("{%}%}")).unwrap().is_empty());
    }

    #[test]
    fn an_unclosed_block_names_its_line() {
        let err = docs_blocks(&file("\n\n{% docs intro %}\nhello")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`{% docs intro %}` is never closed with `{% enddocs %}`"
        );
        assert_eq!(err.line(), Some(3));
    }
}
