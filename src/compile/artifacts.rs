//! The artifacts of a compile, written to the project's target folder:
//! manifest.json (patched in place when it already holds this very compile,
//! see [`super::cache`]) and weir_state.json (see [`super::fingerprints`]).

use std::path::Path;

use super::Compiled;
use super::cache;
use super::fingerprints::{FINGERPRINTS_FILE, Fingerprints};
use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// Write `manifest` to `<target_dir>/manifest.json`, streamed. When the file
/// holds this very compile already (a reused compile, see compile::cache),
/// only its invocation id and time are rewritten.
pub fn write_manifest(manifest: &Manifest, target_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(target_dir).map_err(|e| Error::io(target_dir, e))?;
    let path = target_dir.join("manifest.json");
    let key = manifest.metadata.reuse_key.as_deref();
    if let Some(key) = key
        && cache::artifact_is_current(&path, key)
        && rewrite_metadata(manifest, &path)?
    {
        cache::note_artifact(&path, Some(key));
        return Ok(());
    }
    let masked = crate::base::atomic_file::write_with(&path, |file| {
        // Secrets are masked on the way out, whatever put them in a node.
        let scrub = crate::base::secrets::ScrubWriter::new(file);
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, scrub);
        manifest
            .to_writer(&mut writer)
            .map_err(std::io::Error::other)?;
        let (_, masked) = writer
            .into_inner()
            .map_err(|e| e.into_error())?
            .finish_reporting()?;
        Ok(masked)
    })
    .map_err(|e| Error::io(&path, e))?;
    // A masked file differs from what the compile holds: never patched.
    cache::note_artifact(&path, key.filter(|_| !masked));
    Ok(())
}

/// Write `weir_state.json` beside manifest.json, so that this run can later
/// serve as `--state`.
pub fn write_fingerprints(compiled: &Compiled) -> Result<()> {
    let dir = compiled.project.target_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let path = dir.join(FINGERPRINTS_FILE);
    let text = Fingerprints::of(compiled).to_json(&compiled.target.name);
    crate::base::atomic_file::write(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))
}

/// Overwrite `generated_at` and `invocation_id` in the manifest at `path`,
/// in place: both have a fixed width. False when the file does not start
/// as weir writes it.
fn rewrite_metadata(manifest: &Manifest, path: &Path) -> Result<bool> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let io = |e| Error::io(path, e);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    let mut head = vec![0; 1024];
    let read = file.read(&mut head).map_err(io)?;
    head.truncate(read);
    let fields = [
        ("\"generated_at\":\"", &manifest.metadata.generated_at),
        ("\"invocation_id\":\"", &manifest.metadata.invocation_id),
    ];
    let mut writes = Vec::new();
    for (field, value) in fields {
        let Some(start) = memchr::memmem::find(&head, field.as_bytes()) else {
            return Ok(false);
        };
        let start = start + field.len();
        let end = start + value.len();
        if head.get(end) != Some(&b'"') || head[start..end].contains(&b'"') {
            return Ok(false);
        }
        writes.push((start as u64, value));
    }
    for (offset, value) in writes {
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        file.write_all(value.as_bytes()).map_err(io)?;
    }
    Ok(true)
}
