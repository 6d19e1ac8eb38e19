//! `weir deps`: the packages of packages.yml (or dependencies.yml) and
//! theirs, resolved with dbt's rules (`resolve`), pinned in
//! package-lock.yml (`lock`), fetched from a local folder (a symlink, as
//! dbt makes), a git repository (`git`) or the package hub (`hub`), and
//! installed under `packages-install-path` as dbt lays it out: one folder
//! per package, named after its project. Everything is installed into a
//! staging folder first and swapped in at the end, so a failed download
//! leaves the previous dbt_packages/ as it was.

pub mod add;
pub mod git;
pub mod hub;
mod install;
pub mod lock;
mod resolve;
pub mod version;

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::project::Project;
use crate::project::packages::{self, PackageSpec, Source};

/// What `weir deps` was asked to do beyond installing.
#[derive(Debug, Clone, Default)]
pub struct DepsOptions {
    /// Resolve and write package-lock.yml, install nothing (`--lock`).
    pub lock_only: bool,
    /// Resolve again even when the lock matches packages.yml (`--upgrade`).
    pub upgrade: bool,
    /// Skip the check of each package's `require-dbt-version`
    /// (`--no-version-check`).
    pub skip_version_check: bool,
    /// Write this package (`NAME@VERSION`) into packages.yml first
    /// (`--add-package`, `--source`).
    pub add_package: Option<(String, add::AddSource)>,
}

/// One installed package, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledPackage {
    /// As dbt shows it: the hub name, the git URL (and subdirectory), the local path.
    pub shown: String,
    /// The folder under the install path: the package's project name.
    pub name: String,
    /// `version 1.2.0`, `revision <commit>`, `<local @ ../path>`.
    pub installed_from: String,
    pub subdirectory: Option<String>,
    /// For a hub package, the newest version it could have.
    pub latest: Option<String>,
    /// For a hub package, the version installed.
    pub version: Option<String>,
}

/// What `weir deps` did.
#[derive(Debug, Clone, Default)]
pub struct DepsReport {
    /// packages.yml or dependencies.yml, when the project has one.
    pub packages_file: Option<PathBuf>,
    /// package-lock.yml, when it was written (not when it was honoured).
    pub lock_written: Option<PathBuf>,
    pub install_path: PathBuf,
    pub installed: Vec<InstalledPackage>,
    /// Warnings to show (a git package following a branch).
    pub warnings: Vec<String>,
}

/// Install the packages of the project at `root`.
pub fn deps(root: &Path, options: &DepsOptions) -> Result<DepsReport> {
    let project = Project::load_root(root)?;
    if let Some((spec, source)) = &options.add_package {
        add::add_package(root, spec, *source)?;
    }
    let install_path = root.join(&project.packages_install_path);
    let mut report = DepsReport {
        install_path: install_path.clone(),
        ..DepsReport::default()
    };
    let Some(file) = packages::read(root)? else {
        return Ok(report);
    };
    report.packages_file = Some(file.path.clone());
    if file.specs.is_empty() {
        return Ok(report);
    }
    let specs = file
        .specs
        .iter()
        .map(|spec| render_spec(spec, &file.path, &file.text))
        .collect::<Result<Vec<_>>>()?;
    let hash = lock::spec_hash(&file.specs, &render_json);
    let lock = packages::read_lock(root)?;
    let honour = lock
        .as_ref()
        .filter(|lock| !options.upgrade && lock.sha1_hash.as_deref() == Some(hash.as_str()));

    let staging = Staging::create(&install_path)?;
    let mut resolver = resolve::Resolver::new(root, staging.downloads());
    let pinned = match honour {
        Some(lock) => {
            let locked = lock
                .packages
                .iter()
                .map(|spec| render_spec(spec, &lock.path, ""))
                .collect::<Result<Vec<_>>>()?;
            resolver.pin_locked(&locked, &lock.path)?
        }
        None => resolver.resolve(&specs, &file)?,
    };
    resolve::check_names(&pinned, &project.name)?;
    report.warnings = std::mem::take(&mut resolver.warnings);
    let lock_path = root.join(packages::LOCK_FILE);
    let lock_text = honour
        .is_none()
        .then(|| lock::write(&resolve::locked(&pinned), &hash));
    if options.lock_only {
        if let Some(text) = &lock_text {
            write_lock(&lock_path, text)?;
            report.lock_written = Some(lock_path);
        }
        return Ok(report);
    }
    for package in &pinned {
        install::install(
            package,
            staging.packages(),
            staging.downloads(),
            &mut resolver,
        )?;
        if !options.skip_version_check {
            install::check_dbt_version(package, &staging.packages().join(&package.name))?;
        }
        report.installed.push(package.report());
    }
    if let Some(text) = &lock_text {
        write_lock(&lock_path, text)?;
        report.lock_written = Some(lock_path);
    }
    staging.swap_into(&install_path)?;
    Ok(report)
}

fn write_lock(path: &Path, text: &str) -> Result<()> {
    crate::base::atomic_file::write(path, text.as_bytes()).map_err(|e| Error::io(path, e))
}

/// A spec with the `{{ env_var(...) }}` of its values rendered, as dbt
/// renders packages.yml (secret env vars allowed: git credentials).
fn render_spec(spec: &PackageSpec, path: &Path, text: &str) -> Result<PackageSpec> {
    let render = |value: &str| -> Result<String> {
        if !value.contains("{{") && !value.contains("{%") {
            return Ok(value.to_string());
        }
        crate::jinja::render_profile_value(value)
            .map(|(rendered, _)| match rendered {
                Json::String(text) => text,
                other => other.to_string(),
            })
            .map_err(|err| {
                let err = Error::new(err.kind(), err.message()).in_file(path);
                if text.is_empty() {
                    err
                } else {
                    err.at_line_of(text, spec.line)
                }
            })
    };
    let source = match &spec.source {
        Source::Local { path } => Source::Local {
            path: render(path)?,
        },
        Source::Git {
            url,
            revision,
            subdirectory,
        } => Source::Git {
            url: render(url)?,
            revision: revision.as_deref().map(render).transpose()?,
            subdirectory: subdirectory.as_deref().map(render).transpose()?,
        },
        Source::Hub {
            package,
            versions,
            install_prerelease,
        } => Source::Hub {
            package: render(package)?,
            versions: versions
                .iter()
                .map(|v| render(v))
                .collect::<Result<Vec<_>>>()?,
            install_prerelease: *install_prerelease,
        },
        Source::Tarball { url } => Source::Tarball { url: render(url)? },
    };
    Ok(PackageSpec {
        source,
        ..spec.clone()
    })
}

/// A value of a spec with its text rendered, for the lock's hash.
fn render_json(value: &Json) -> Json {
    match value {
        Json::String(s) if s.contains("{{") => crate::jinja::render_profile_value(s)
            .map_or_else(|_| value.clone(), |(rendered, _)| rendered),
        other => other.clone(),
    }
}

/// Where the new packages are put together before they replace the old:
/// a hidden folder beside the install path (so the final rename stays on
/// one file system), removed whatever happens.
struct Staging {
    root: PathBuf,
    packages: PathBuf,
    downloads: PathBuf,
}

impl Staging {
    fn create(install_path: &Path) -> Result<Staging> {
        let parent = install_path.parent().unwrap_or(Path::new("."));
        let name = install_path
            .file_name()
            .map_or("dbt_packages".into(), |n| n.to_string_lossy().into_owned());
        let root = parent.join(format!(".{name}.weir-deps-{}", std::process::id()));
        if root.exists() {
            std::fs::remove_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        }
        let packages = root.join("packages");
        let downloads = root.join("downloads");
        for dir in [&packages, &downloads] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        Ok(Staging {
            root,
            packages,
            downloads,
        })
    }

    fn packages(&self) -> &Path {
        &self.packages
    }

    fn downloads(&self) -> &Path {
        &self.downloads
    }

    /// Replace `install_path` with the staged packages: the old folder is
    /// moved aside, the new one renamed in, the old one removed; if the
    /// rename fails, the old folder is put back.
    fn swap_into(&self, install_path: &Path) -> Result<()> {
        let aside = self.root.join("previous");
        let had_old = install_path.symlink_metadata().is_ok();
        if had_old {
            std::fs::rename(install_path, &aside).map_err(|e| Error::io(install_path, e))?;
        }
        if let Err(err) = std::fs::rename(&self.packages, install_path) {
            if had_old {
                let _ = std::fs::rename(&aside, install_path);
            }
            return Err(Error::io(install_path, err));
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
