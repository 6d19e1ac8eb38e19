//! A compile reused when nothing it read has changed: the same build of weir,
//! the same files (by content), the same target, vars and environment
//! variables. Kept per target under `<target-path>/weir_cache/`; any doubt
//! (an unreadable or foreign file, a changed variable) means compiling again.
//!
//! Never reused: a project whose files name `invocation_id` or
//! `run_started_at`, and a compile that read the clock, printed or logged (see
//! [`crate::base::env_vars`]). Never written: a compile holding a secret's value.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use crate::manifest::{DocBlock, Exposure, Manifest, Metadata, Node, SourceNode};
use crate::project::Project;
use crate::target::Target;

/// Bumped when the file's layout changes in a way the source digest misses.
const FORMAT: &str = "weir compile cache 1";
/// Set (to anything but `0`) to compile from scratch every time.
pub const DISABLE_ENV: &str = "WEIR_NO_COMPILE_CACHE";

/// Everything a compile depends on but the environment variables it reads,
/// as a sha256 in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    /// None when the project's compile can never be reused, or reuse is off.
    pub fn of(project: &Project, target: &Target, cli_vars: &Map<String, Json>) -> Option<Key> {
        if std::env::var(DISABLE_ENV).is_ok_and(|v| v != "0")
            || project
                .all_projects()
                .any(|p| p.digest.mentions_run_identity)
        {
            return None;
        }
        let packages: Vec<String> = project
            .all_projects()
            .map(|p| crate::base::hash::hex(&p.digest.sha256))
            .collect();
        let parts = [
            FORMAT.to_string(),
            env!("WEIR_SOURCE_DIGEST").to_string(),
            project.root.to_string_lossy().into_owned(),
            packages.join(","),
            // Debug shows every field of the target but the password; secrets
            // elsewhere in it are masked, so the key cannot betray them.
            crate::base::secrets::scrub(&format!("{target:?}")).into_owned(),
            serde_json::to_string(cli_vars).unwrap_or_default(),
        ];
        let mut hasher = Sha256::new();
        for part in parts {
            // Lengths first: no two lists of parts hash alike.
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Some(Key(crate::base::hash::hex(&hasher.finalize())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the cache file starts with: enough to tell whether the rest applies.
#[derive(Serialize, Deserialize)]
struct Header {
    key: String,
    /// Environment variables and a sha256 of their value (None: unset).
    env: Vec<(String, Option<String>)>,
}

/// The manifest but its nodes, in the cache's form. Written borrowed, read
/// owned: the two list the same fields in the same order.
#[derive(Serialize)]
struct RestRef<'a> {
    metadata: &'a Metadata,
    sources: BTreeMap<&'a str, SourceRef<'a>>,
    docs: &'a BTreeMap<String, DocBlock>,
    exposures: BTreeMap<&'a str, ExposureRef<'a>>,
    parent_map: &'a BTreeMap<String, Vec<String>>,
    child_map: &'a BTreeMap<String, Vec<String>>,
    order: &'a [String],
    disabled: Vec<NodeRef<'a>>,
}

#[derive(Deserialize)]
struct Rest {
    metadata: Metadata,
    sources: BTreeMap<String, OwnedSource>,
    docs: BTreeMap<String, DocBlock>,
    exposures: BTreeMap<String, OwnedExposure>,
    parent_map: BTreeMap<String, Vec<String>>,
    child_map: BTreeMap<String, Vec<String>>,
    order: Vec<String>,
    disabled: Vec<OwnedNode>,
}

/// Nodes per frame: frames are encoded and decoded on all cores. At least
/// 16 frames, so that a small project's nodes are shared out between cores
/// too; at most 2,048 nodes each, as many small batches would leave the
/// allocator holding more memory once they are merged.
fn nodes_per_frame(nodes: usize) -> usize {
    nodes.div_ceil(16).clamp(64, 2048)
}

/// One frame of the file, decoded.
enum Decoded {
    Rest(Box<Rest>),
    Nodes(Vec<OwnedNode>),
}

/// The compile of `key`, from the cache, with a new invocation id and time;
/// None when there is none or it may be stale.
///
/// The file is a sequence of frames (a length, then MessagePack): the
/// header, the manifest but its nodes, then the nodes in batches.
pub fn load(project: &Project, target: &Target, key: &Key) -> Option<Manifest> {
    let bytes = std::fs::read(file_for(project, target)).ok()?;
    let frames = split_frames(&bytes)?;
    let (header, rest) = frames.split_first()?;
    let header: Header = rmp_serde::from_slice(header.1).ok()?;
    if header.key != key.0 || header.env != hashed_env(&header_names(&header)) {
        return None;
    }
    let decoded = crate::base::parallel::map(rest, |(index, frame)| match index {
        0 => rmp_serde::from_slice(frame).map(|r| Decoded::Rest(Box::new(r))),
        _ => rmp_serde::from_slice(frame).map(Decoded::Nodes),
    });
    let mut manifest_rest = None;
    let mut nodes = Vec::new();
    for frame in decoded {
        match frame.ok()? {
            Decoded::Rest(rest) => manifest_rest = Some(*rest),
            Decoded::Nodes(batch) => nodes.extend(batch.into_iter().map(|n| n.0)),
        }
    }
    let rest = manifest_rest?;
    let mut metadata = rest.metadata;
    metadata.invocation_id = crate::base::clock::invocation_id();
    metadata.generated_at = crate::base::clock::now_rfc3339();
    metadata.reused = true;
    Some(Manifest {
        metadata,
        // Written in key order: the map is built without comparing keys.
        nodes: nodes
            .into_iter()
            .map(|n| (n.unique_id.clone(), n))
            .collect(),
        sources: unwrap_values(rest.sources, |s| s.0),
        docs: rest.docs,
        exposures: unwrap_values(rest.exposures, |e| e.0),
        parent_map: rest.parent_map,
        child_map: rest.child_map,
        order: rest.order,
        disabled: rest
            .disabled
            .into_iter()
            .map(|n| (n.0.unique_id.clone(), n.0))
            .collect(),
    })
}

/// Keep `manifest` for the next compile of `key`. Best effort: a cache that
/// cannot be written is only a slower next compile.
pub fn save(project: &Project, target: &Target, key: &Key, manifest: &Manifest) {
    let env = crate::base::env_vars::env_reads();
    let names: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
    let header = Header {
        key: key.0.clone(),
        env: hashed_env(&names),
    };
    let rest = RestRef {
        metadata: &manifest.metadata,
        sources: wrap_values(&manifest.sources, SourceRef),
        docs: &manifest.docs,
        exposures: wrap_values(&manifest.exposures, ExposureRef),
        parent_map: &manifest.parent_map,
        child_map: &manifest.child_map,
        order: &manifest.order,
        disabled: manifest.disabled.values().map(NodeRef).collect(),
    };
    let nodes: Vec<NodeRef> = manifest.nodes.values().map(NodeRef).collect();
    let batches: Vec<&[NodeRef]> = nodes.chunks(nodes_per_frame(nodes.len())).collect();
    let (rest, batches) = crate::base::parallel::both(
        || rmp_serde::to_vec(&rest),
        || crate::base::parallel::map(&batches, rmp_serde::to_vec),
    );
    let Ok(header) = rmp_serde::to_vec(&header) else {
        return;
    };
    let mut frames = vec![header];
    let Ok(rest) = rest else {
        return;
    };
    frames.push(rest);
    for batch in batches {
        let Ok(batch) = batch else {
            return;
        };
        frames.push(batch);
    }
    if holds_secret(&frames) {
        return;
    }
    // Written frame by frame: a copy of the whole would add tens of megabytes
    // to the compile's peak memory.
    let _ = write_atomically_with(&file_for(project, target), |file| {
        for frame in &frames {
            file.write_all(&(frame.len() as u64).to_le_bytes())?;
            file.write_all(frame)?;
        }
        Ok(())
    });
}

/// The frames of a cache file, each with its index after the header; None if
/// the file is cut short.
fn split_frames(mut bytes: &[u8]) -> Option<Vec<(usize, &[u8])>> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<8>()?;
        let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
        let (frame, rest) = rest.split_at_checked(len)?;
        frames.push((frames.len().wrapping_sub(1), frame));
        bytes = rest;
    }
    Some(frames)
}

/// Whether the artifact at `path` is as a compile of `key` last wrote it:
/// the same compile inputs, and the file untouched since (length and
/// modification time as recorded in its stamp).
pub fn artifact_is_current(path: &Path, key: &str) -> bool {
    let Ok(stamp) = std::fs::read_to_string(stamp_for(path)) else {
        return false;
    };
    Some(stamp.trim()) == file_stamp(path, key).as_deref()
}

/// Record that the artifact at `path` was just written from a compile of
/// `key`; None forgets it (the next write rewrites it whole).
pub fn note_artifact(path: &Path, key: Option<&str>) {
    let stamp = stamp_for(path);
    match key.and_then(|key| file_stamp(path, key)) {
        Some(text) => {
            let _ = write_atomically(&stamp, text.as_bytes());
        }
        None => {
            let _ = std::fs::remove_file(stamp);
        }
    }
}

fn stamp_for(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let dir = path.parent().unwrap_or(Path::new("."));
    dir.join("weir_cache").join(format!("{name}.stamp"))
}

fn file_stamp(path: &Path, key: &str) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!("{key} {} {}", meta.len(), modified.as_nanos()))
}

/// `<target-path>/weir_cache/compile-<target>.bin`: one per target, so
/// switching targets does not throw the other's away.
fn file_for(project: &Project, target: &Target) -> PathBuf {
    let name = crate::target::naming::sanitize(&target.name);
    project
        .target_dir()
        .join("weir_cache")
        .join(format!("compile-{name}.bin"))
}

fn header_names(header: &Header) -> Vec<&str> {
    header.env.iter().map(|(name, _)| name.as_str()).collect()
}

/// The variables' values now, each as a sha256: the cache need not hold them.
fn hashed_env(names: &[&str]) -> Vec<(String, Option<String>)> {
    names
        .iter()
        .map(|name| {
            let value = std::env::var(name).ok();
            (
                name.to_string(),
                value.map(|v| crate::base::hash::sha256_hex(&v)),
            )
        })
        .collect()
}

/// Whether any of `frames` holds a secret weir knows (a password, a
/// `DBT_ENV_SECRET_*` value): those never reach the disk unmasked.
fn holds_secret(frames: &[Vec<u8>]) -> bool {
    let secrets = crate::base::secrets::known();
    frames.iter().any(|frame| {
        secrets
            .iter()
            .any(|secret| memchr::memmem::find(frame, secret.as_bytes()).is_some())
    })
}

/// Write through a temporary file and a rename (see [`crate::base::atomic_file`]),
/// creating the folder first.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, |file| file.write_all(bytes))
}

/// [`write_atomically`] of what `write` writes, buffered.
fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::base::atomic_file::write_with(path, |file| {
        let mut file = std::io::BufWriter::new(file);
        write(&mut file)?;
        // No fsync: after a crash a torn file fails to decode, and the
        // next compile starts from scratch.
        file.flush()
    })
}

fn wrap_values<'a, T, W>(
    map: &'a BTreeMap<String, T>,
    wrap: impl Fn(&'a T) -> W,
) -> BTreeMap<&'a str, W> {
    map.iter().map(|(k, v)| (k.as_str(), wrap(v))).collect()
}

fn unwrap_values<W, T>(map: BTreeMap<String, W>, unwrap: impl Fn(W) -> T) -> BTreeMap<String, T> {
    map.into_iter().map(|(k, v)| (k, unwrap(v))).collect()
}

// Nodes, sources and exposures serialize as dbt's manifest shows them; the
// cache uses their derived form (`#[serde(remote = "Self")]` in manifest.rs).
#[derive(Serialize, Clone, Copy)]
struct NodeRef<'a>(#[serde(with = "Node")] &'a Node);
#[derive(Deserialize)]
struct OwnedNode(#[serde(with = "Node")] Node);
#[derive(Serialize)]
struct SourceRef<'a>(#[serde(with = "SourceNode")] &'a SourceNode);
#[derive(Deserialize)]
struct OwnedSource(#[serde(with = "SourceNode")] SourceNode);
#[derive(Serialize)]
struct ExposureRef<'a>(#[serde(with = "Exposure")] &'a Exposure);
#[derive(Deserialize)]
struct OwnedExposure(#[serde(with = "Exposure")] Exposure);
