//! Finding and reading a project's files: each folder walked once (models/
//! holds the models, their docs and their properties), every file read in
//! one pass on all cores.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::ProjectFile;
use crate::error::{Error, ErrorKind, Result};

/// A file found under one of the project's folders.
pub struct Found {
    /// The folder it was found under (models/, seeds/...).
    base: PathBuf,
    path: PathBuf,
}

/// The files under each of a project's folders.
pub struct Folders {
    files: HashMap<String, Vec<PathBuf>>,
}

impl Folders {
    /// Walk each of `folders` (relative to `root`) once; a folder that does
    /// not exist holds nothing.
    pub fn walk<'a>(root: &Path, folders: impl IntoIterator<Item = &'a String>) -> Result<Folders> {
        let mut files = HashMap::new();
        for folder in folders {
            if !files.contains_key(folder) {
                files.insert(folder.clone(), walk_folder(&root.join(folder))?);
            }
        }
        Ok(Folders { files })
    }

    /// The files under `folders` ending in one of `extensions`.
    pub fn select(&self, root: &Path, folders: &[String], extensions: &[&str]) -> Vec<Found> {
        folders
            .iter()
            .flat_map(|folder| {
                let base = root.join(folder);
                self.files
                    .get(folder)
                    .into_iter()
                    .flatten()
                    .filter(|path| {
                        path.extension()
                            .and_then(|e| e.to_str())
                            .is_some_and(|e| extensions.contains(&e))
                    })
                    .map(move |path| Found {
                        base: base.clone(),
                        path: path.clone(),
                    })
            })
            .collect()
    }
}

/// Every file under `base`, following symlinked folders. Only regular files
/// count: a FIFO or a socket would block the read that follows. A symlink
/// to a folder the walk is inside of is an error: following it never ends.
fn walk_folder(base: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    if !base.is_dir() {
        return Ok(found);
    }
    let real_base = std::fs::canonicalize(base).map_err(|e| Error::io(base, e))?;
    // Each folder to walk with the real paths of the folders it is inside
    // of (itself last), as the walk reached it.
    let mut stack = vec![(base.to_path_buf(), vec![real_base])];
    while let Some((dir, inside)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(|e| Error::io(&path, e))?;
            let real = |parent: &[PathBuf]| parent.last().map(|p| p.join(entry.file_name()));
            if file_type.is_dir() {
                let mut inside = inside.clone();
                inside.extend(real(&inside));
                stack.push((path, inside));
            } else if file_type.is_file() {
                found.push(path);
            } else if file_type.is_symlink() {
                match std::fs::metadata(&path) {
                    Ok(target) if target.is_dir() => {
                        let real = std::fs::canonicalize(&path).map_err(|e| Error::io(&path, e))?;
                        if inside.iter().any(|folder| folder.starts_with(&real)) {
                            return Err(Error::new(
                                ErrorKind::Project,
                                format!(
                                    "a symlink to {}, a folder the walk is already inside of: \
                                     following it would never end",
                                    real.display()
                                ),
                            )
                            .in_file(&path)
                            .with_hint(
                                "remove the symlink, or point it at a folder outside this one",
                            ));
                        }
                        let mut inside = inside.clone();
                        inside.push(real);
                        stack.push((path, inside));
                    }
                    Ok(target) if target.is_file() => found.push(path),
                    // A FIFO, socket or device: not a project file.
                    Ok(_) => {}
                    // Dangling: reading it says so, if it is a file weir reads.
                    Err(_) => found.push(path),
                }
            }
        }
    }
    Ok(found)
}

/// A project file that is not UTF-8 text: the line of its first bad byte.
fn not_utf8(path: &Path, err: std::string::FromUtf8Error) -> Error {
    let valid = err.utf8_error().valid_up_to();
    let bytes = err.as_bytes();
    let line = bytes[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
    Error::new(
        ErrorKind::Project,
        format!(
            "not UTF-8 text: byte 0x{:02x} on this line is not valid UTF-8",
            bytes[valid]
        ),
    )
    .in_file(path)
    .at_line(line)
    .with_hint("save the file as UTF-8")
}

/// Read every group of files at once; each group comes back sorted by path.
pub fn read<const N: usize>(root: &Path, groups: [Vec<Found>; N]) -> Result<[Vec<ProjectFile>; N]> {
    let tagged: Vec<(usize, Found)> = groups
        .into_iter()
        .enumerate()
        .flat_map(|(group, files)| files.into_iter().map(move |file| (group, file)))
        .collect();
    let read = |(group, found): (usize, Found)| -> Result<(usize, ProjectFile)> {
        let bytes = std::fs::read(&found.path).map_err(|e| Error::io(&found.path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| not_utf8(&found.path, e))?;
        let file = ProjectFile {
            original_file_path: relative(root, &found.path),
            path: relative(&found.base, &found.path),
            text,
        };
        Ok((group, file))
    };
    let mut out: [Vec<ProjectFile>; N] = std::array::from_fn(|_| Vec::new());
    for result in crate::base::parallel::map_owned(tagged, read) {
        let (group, file) = result?;
        out[group].push(file);
    }
    for files in &mut out {
        files.sort_by(|a, b| a.original_file_path.cmp(&b.original_file_path));
    }
    Ok(out)
}

fn relative(base: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(base).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
