//! Putting one pinned package in the staged install folder, as `dbt deps`
//! lays it out: a local package as a symlink to its folder, a git package
//! as its checkout (or the checkout's subdirectory), a hub package as its
//! unpacked tarball; each in a folder named after its project.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::resolve::{How, Pinned, Resolver};
use super::version;
use crate::base::DBT_VERSION;
use crate::error::{Error, ErrorKind, Result};
use crate::project::yaml::{self, Kind};

pub fn install(
    package: &Pinned,
    packages_dir: &Path,
    downloads: &Path,
    resolver: &mut Resolver<'_>,
) -> Result<()> {
    let dest = packages_dir.join(&package.name);
    match &package.how {
        How::Local { dir, .. } => symlink(dir, &dest),
        How::Git {
            checkout,
            subdirectory,
            ..
        } => {
            let from = match subdirectory {
                Some(sub) => checkout.join(sub),
                None => checkout.clone(),
            };
            move_dir(&from, &dest)
        }
        How::Tarball { dir, .. } => move_dir(dir, &dest),
        How::Hub {
            package: hub_name,
            version,
            tarball,
        } => {
            let archive =
                downloads.join(format!("{}.{version}.tar.gz", hub_name.replace('/', "_")));
            let what = format!("{hub_name} {version}");
            resolver.hub().download(tarball, &archive, &what)?;
            let into = resolver.scratch("unpacked");
            let dir = unpack(&archive, &into).map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("the tarball of {what} from {tarball}: {}", e.message()),
                )
            })?;
            move_dir(&dir, &dest)
        }
    }
}

/// Unpack a .tar.gz into `into` and return the package's folder: the one
/// folder the archive holds (hub tarballs hold `<repo>-<version>/`), else
/// `into` itself. Entries that would land outside `into` are refused.
pub fn unpack(archive: &Path, into: &Path) -> Result<PathBuf> {
    let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    tar.set_preserve_permissions(false);
    std::fs::create_dir_all(into).map_err(|e| Error::io(into, e))?;
    tar.unpack(into).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot unpack {}: {e}", archive.display()),
        )
    })?;
    let entries: Vec<PathBuf> = std::fs::read_dir(into)
        .map_err(|e| Error::io(into, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    match entries.as_slice() {
        [only] if only.is_dir() => Ok(only.clone()),
        _ => Ok(into.to_path_buf()),
    }
}

fn move_dir(from: &Path, to: &Path) -> Result<()> {
    if !from.is_dir() {
        return Err(Error::new(
            ErrorKind::Project,
            format!("{} is not a folder", from.display()),
        ));
    }
    std::fs::rename(from, to).map_err(|e| Error::io(to, e))
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link).map_err(|e| Error::io(link, e))
}

#[cfg(not(unix))]
fn symlink(_target: &Path, link: &Path) -> Result<()> {
    Err(Error::new(
        ErrorKind::Io,
        "local packages are installed as symlinks, which this system does not offer",
    )
    .in_file(link))
}

/// Refuse a package whose `require-dbt-version` leaves out the dbt version
/// weir stands for, naming the package and the line of the requirement.
pub fn check_dbt_version(package: &Pinned, installed: &Path) -> Result<()> {
    let file = installed.join("dbt_project.yml");
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    let doc = yaml::parse(&text, &file)?;
    let Some(node) = doc.get("require-dbt-version") else {
        return Ok(());
    };
    let required: Vec<String> = match node.kind() {
        Kind::String(s) => vec![s.clone()],
        Kind::Sequence(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let described = || {
        let snippet = text
            .lines()
            .nth(node.line().saturating_sub(1))
            .unwrap_or_default()
            .trim();
        format!(
            "the package {} ({}, required by {}) has `{snippet}` in its dbt_project.yml (line {})",
            package.shown,
            package.report().installed_from,
            package.required_by,
            node.line()
        )
    };
    let fits = version::satisfies(DBT_VERSION, &required).map_err(|e| {
        Error::new(
            ErrorKind::Project,
            format!("{}: {}", described(), e.message()),
        )
    })?;
    if fits {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Project,
        format!(
            "{}, which leaves out dbt {DBT_VERSION}, the version weir is compatible with",
            described()
        ),
    )
    .with_hint(
        "require a version of the package that supports this dbt version, or run \
         `weir deps --no-version-check` to install it anyway",
    ))
}
