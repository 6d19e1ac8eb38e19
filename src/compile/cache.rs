//! A compile reused when nothing it read has changed: the same build of weir,
//! the same files (by content), the same target, vars and environment
//! variables. Kept per target under `<target-path>/weir_cache/`; any doubt
//! (an unreadable or foreign file, a changed variable) means compiling again.
//!
//! Never reused: a project whose files name `invocation_id` or
//! `run_started_at`, and a compile that read the clock or printed (see
//! [`super::inputs`]). Never written: a compile holding a secret's value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use crate::manifest::{DocBlock, Exposure, Manifest, Metadata, Node, SourceNode};
use crate::profile::Target;
use crate::project::Project;

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
        let mut hasher = Sha256::new();
        hasher.update(FORMAT);
        hasher.update(env!("WEIR_SOURCE_DIGEST"));
        hasher.update(project.root.to_string_lossy().as_bytes());
        for package in project.all_projects() {
            hasher.update(package.digest.sha256);
        }
        // Debug shows every field of the target but the password.
        hasher.update(format!("{target:?}"));
        hasher.update(serde_json::to_string(cli_vars).unwrap_or_default());
        Some(Key(super::hex(&hasher.finalize())))
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

/// The manifest in the cache's form: nodes as they are held in memory, not as
/// dbt writes them. Written borrowed, read owned: the two must list the same
/// fields in the same order.
#[derive(Serialize)]
struct CachedRef<'a> {
    metadata: &'a Metadata,
    nodes: BTreeMap<&'a str, NodeRef<'a>>,
    sources: BTreeMap<&'a str, SourceRef<'a>>,
    docs: &'a BTreeMap<String, DocBlock>,
    exposures: BTreeMap<&'a str, ExposureRef<'a>>,
    parent_map: &'a BTreeMap<String, Vec<String>>,
    child_map: &'a BTreeMap<String, Vec<String>>,
    order: &'a [String],
}

#[derive(Deserialize)]
struct Cached {
    metadata: Metadata,
    nodes: BTreeMap<String, OwnedNode>,
    sources: BTreeMap<String, OwnedSource>,
    docs: BTreeMap<String, DocBlock>,
    exposures: BTreeMap<String, OwnedExposure>,
    parent_map: BTreeMap<String, Vec<String>>,
    child_map: BTreeMap<String, Vec<String>>,
    order: Vec<String>,
}

/// The compile of `key`, from the cache, with a new invocation id and time;
/// None when there is none or it may be stale.
pub fn load(project: &Project, target: &Target, key: &Key) -> Option<Manifest> {
    let bytes = std::fs::read(file_for(project, target)).ok()?;
    let (header_len, rest) = bytes.split_first_chunk::<8>()?;
    let header_len = usize::try_from(u64::from_le_bytes(*header_len)).ok()?;
    let (header, body) = rest.split_at_checked(header_len)?;
    let header: Header = rmp_serde::from_slice(header).ok()?;
    if header.key != key.0 || header.env != hashed_env(&header_names(&header)) {
        return None;
    }
    let cached: Cached = rmp_serde::from_slice(body).ok()?;
    let mut metadata = cached.metadata;
    metadata.invocation_id = crate::clock::invocation_id();
    metadata.generated_at = crate::clock::now_rfc3339();
    Some(Manifest {
        metadata,
        nodes: unwrap_values(cached.nodes, |n| n.0),
        sources: unwrap_values(cached.sources, |s| s.0),
        docs: cached.docs,
        exposures: unwrap_values(cached.exposures, |e| e.0),
        parent_map: cached.parent_map,
        child_map: cached.child_map,
        order: cached.order,
    })
}

/// Keep `manifest` for the next compile of `key`. Best effort: a cache that
/// cannot be written is only a slower next compile.
pub fn save(project: &Project, target: &Target, key: &Key, manifest: &Manifest) {
    let env = crate::compile::inputs::env_reads();
    let names: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
    let header = Header {
        key: key.0.clone(),
        env: hashed_env(&names),
    };
    let cached = CachedRef {
        metadata: &manifest.metadata,
        nodes: wrap_values(&manifest.nodes, NodeRef),
        sources: wrap_values(&manifest.sources, SourceRef),
        docs: &manifest.docs,
        exposures: wrap_values(&manifest.exposures, ExposureRef),
        parent_map: &manifest.parent_map,
        child_map: &manifest.child_map,
        order: &manifest.order,
    };
    let (Ok(header), Ok(body)) = (rmp_serde::to_vec(&header), rmp_serde::to_vec(&cached)) else {
        return;
    };
    if holds_secret(&body) {
        return;
    }
    let path = file_for(project, target);
    let mut bytes = Vec::with_capacity(8 + header.len() + body.len());
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&body);
    let _ = write_atomically(&path, &bytes);
}

/// `<target-path>/weir_cache/compile-<target>.bin`: one per target, so
/// switching targets does not throw the other's away.
fn file_for(project: &Project, target: &Target) -> PathBuf {
    let name = crate::env::naming::sanitize(&target.name);
    cache_dir(project).join(format!("compile-{name}.bin"))
}

pub fn cache_dir(project: &Project) -> PathBuf {
    project.target_dir().join("weir_cache")
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
            (name.to_string(), value.map(|v| super::sha256_hex(&v)))
        })
        .collect()
}

/// Whether `bytes` contain a secret weir knows (a password, a
/// `DBT_ENV_SECRET_*` value): those never reach the disk unmasked.
fn holds_secret(bytes: &[u8]) -> bool {
    crate::env::secrets::known()
        .iter()
        .any(|secret| memchr::memmem::find(bytes, secret.as_bytes()).is_some())
}

/// Write through a temporary file and a rename: a reader sees the old file or
/// the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
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
#[derive(Serialize)]
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
