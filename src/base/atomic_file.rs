//! Files written whole or not at all: into a temporary file in the same
//! folder, then renamed over the old one. A reader sees the old file or the
//! new one, and a write that fails midway (a full disk, a file size limit)
//! leaves the old file as it was and no temporary behind.
//!
//! No fsync: the artifacts are rebuilt by the next command, and syncing a
//! manifest of tens of megabytes would cost more than writing it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replace `path` with `bytes`.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

/// Replace `path` with `bytes`, readable and writable by its owner only
/// (from the moment it exists: never briefly readable by others).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_to(path, 0o600, |file| file.write_all(bytes))
}

/// Replace `path` with what `write` writes into the file it is given. The
/// closure must flush anything it buffers before it returns.
pub fn write_with<T>(path: &Path, write: impl FnOnce(&mut File) -> io::Result<T>) -> io::Result<T> {
    write_to(path, 0o666, write)
}

fn write_to<T>(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut File) -> io::Result<T>,
) -> io::Result<T> {
    let temporary = temporary_path(path);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .and_then(|mut file| write(&mut file));
    written
        .and_then(|value| std::fs::rename(&temporary, path).map(|()| value))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
}

/// `<folder>/.<name>.<pid>.<n>.tmp`: unique per process and call, hidden,
/// and in the destination's folder so that the rename never crosses devices.
fn temporary_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weir-atomic-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_write_failing_midway_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = folder("fail");
        let path = dir.join("manifest.json");
        write(&path, b"{\"old\": true}").unwrap();
        let err = write_with(&path, |file| {
            file.write_all(b"{\"new\": ")?;
            Err::<(), _>(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"old\": true}");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "only manifest.json is left");
        write(&path, b"{\"new\": true}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"new\": true}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn private_files_are_owner_only() {
        let dir = folder("private");
        let path = dir.join("password");
        write_private(&path, b"secret\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
