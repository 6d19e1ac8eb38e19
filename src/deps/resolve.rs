//! Packages and their packages resolved as dbt resolves them: each package
//! gathers every requirement made of it (a hub package's version ranges are
//! intersected, a git package's revisions must agree), is pinned (the
//! highest hub version in the range that suits weir's dbt version, the
//! commit a revision points at), and its own packages.yml (or the hub's
//! list) is read in turn. A conflict names every requirer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::hub::Hub;
use super::lock::Locked;
use super::version::{self, Range, Spec};
use super::{InstalledPackage, git, render_spec};
use crate::base::DBT_VERSION;
use crate::error::{Error, ErrorKind, Result};
use crate::project::packages::{self, PackageSpec, PackagesFile, Source};
use crate::project::yaml;

/// One package pinned to what will be installed.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub shown: String,
    /// Its project name: the folder it is installed as.
    pub name: String,
    pub how: How,
    pub latest: Option<String>,
    /// Who asked for it, for messages.
    pub required_by: String,
}

#[derive(Debug, Clone)]
pub enum How {
    /// `written`: the path as in packages.yml; `dir`: where it is.
    Local { written: String, dir: PathBuf },
    /// A clone at `commit`; the package is `checkout`/`subdirectory`.
    Git {
        written_url: String,
        commit: String,
        subdirectory: Option<String>,
        checkout: PathBuf,
    },
    Hub {
        package: String,
        version: String,
        tarball: String,
    },
    /// Downloaded and unpacked at `dir`.
    Tarball { url: String, dir: PathBuf },
}

impl Pinned {
    pub fn report(&self) -> InstalledPackage {
        let (installed_from, subdirectory, version) = match &self.how {
            How::Local { written, .. } => (format!("<local @ {written}>"), None, None),
            How::Git {
                commit,
                subdirectory,
                ..
            } => (format!("revision {commit}"), subdirectory.clone(), None),
            How::Hub { version, .. } => (format!("version {version}"), None, Some(version.clone())),
            How::Tarball { url, .. } => (format!("tarball {url}"), None, None),
        };
        InstalledPackage {
            shown: self.shown.clone(),
            name: self.name.clone(),
            installed_from,
            subdirectory,
            latest: self.latest.clone(),
            version,
        }
    }
}

/// The lock's entries for `pinned`.
pub fn locked(pinned: &[Pinned]) -> Vec<(Locked, String)> {
    pinned
        .iter()
        .map(|p| {
            let locked = match &p.how {
                How::Local { written, .. } => Locked::Local {
                    path: written.clone(),
                },
                How::Git {
                    written_url,
                    commit,
                    subdirectory,
                    ..
                } => Locked::Git {
                    url: written_url.clone(),
                    commit: commit.clone(),
                    subdirectory: subdirectory.clone(),
                },
                How::Hub {
                    package, version, ..
                } => Locked::Hub {
                    package: package.clone(),
                    version: version.clone(),
                },
                How::Tarball { url, .. } => Locked::Tarball { url: url.clone() },
            };
            (locked, p.name.clone())
        })
        .collect()
}

/// Two packages installed as one folder, or as the root project's name, are
/// refused (dbt's rule).
pub fn check_names(pinned: &[Pinned], root_name: &str) -> Result<()> {
    let mut seen: BTreeMap<&str, &Pinned> = BTreeMap::new();
    for package in pinned {
        let safe = !package.name.is_empty()
            && package
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !safe {
            return Err(Error::new(
                ErrorKind::Project,
                format!(
                    "the package {} is named `{}`: a package's name may hold only letters, \
                     digits and underscores",
                    package.shown, package.name
                ),
            ));
        }
        if package.name == root_name {
            return Err(Error::new(
                ErrorKind::Project,
                format!(
                    "the package {} is a project named `{root_name}`, as this project is",
                    package.shown
                ),
            )
            .with_hint("a project cannot depend on itself"));
        }
        if let Some(other) = seen.insert(&package.name, package) {
            return Err(Error::new(
                ErrorKind::Project,
                format!(
                    "two packages are projects named `{}`: {} (required by {}) and {} (required by {})",
                    package.name, other.shown, other.required_by, package.shown, package.required_by
                ),
            )
            .with_hint("each package under dbt_packages/ needs its own name"));
        }
    }
    Ok(())
}

/// One requirement of a package: by whom, and what it asked.
#[derive(Debug, Clone)]
struct Requirement {
    by: String,
    /// The packages.yml entry, for an error's file and line.
    at: Option<(PathBuf, String, usize)>,
    spec: PackageSpec,
}

/// Every requirement of one package, in the order they were met.
#[derive(Debug, Clone)]
struct Wanted {
    requirements: Vec<Requirement>,
}

impl Wanted {
    fn first(&self) -> &PackageSpec {
        &self.requirements[0].spec
    }

    /// `err` located at the first requirement written in a file.
    fn locate(&self, err: Error) -> Error {
        match self.requirements.iter().find_map(|r| r.at.as_ref()) {
            Some((path, text, line)) if err.file().is_none() => {
                err.in_file(path).at_line_of(text, *line)
            }
            _ => err,
        }
    }

    fn required_by(&self) -> String {
        self.requirements
            .iter()
            .map(|r| r.by.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub struct Resolver<'a> {
    root: &'a Path,
    downloads: PathBuf,
    hub: Option<Hub>,
    /// Clones made, by URL and revision: each is made once.
    clones: BTreeMap<(String, Option<String>), (PathBuf, String)>,
    made: usize,
    /// Warnings for the user (a git package that follows a branch), once each.
    pub warnings: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub fn new(root: &'a Path, downloads: &Path) -> Resolver<'a> {
        Resolver {
            root,
            downloads: downloads.to_path_buf(),
            hub: None,
            clones: BTreeMap::new(),
            made: 0,
            warnings: Vec::new(),
        }
    }

    pub fn hub(&mut self) -> &mut Hub {
        self.hub.get_or_insert_with(Hub::from_env)
    }

    /// A fresh folder under the downloads folder.
    pub fn scratch(&mut self, stem: &str) -> PathBuf {
        self.made += 1;
        self.downloads.join(format!("{stem}-{}", self.made))
    }

    /// Resolve packages.yml's `specs` and, in rounds, the packages they
    /// require, as dbt does.
    pub fn resolve(&mut self, specs: &[PackageSpec], file: &PackagesFile) -> Result<Vec<Pinned>> {
        let file_name = file
            .path
            .file_name()
            .map_or("packages.yml".into(), |n| n.to_string_lossy().into_owned());
        let mut pending: Vec<Requirement> = specs
            .iter()
            .map(|spec| Requirement {
                by: format!("{file_name} (line {})", spec.line),
                at: Some((file.path.clone(), file.text.clone(), spec.line)),
                spec: spec.clone(),
            })
            .collect();
        let mut wanted: Vec<(String, Wanted)> = Vec::new();
        let mut expanded: BTreeSet<String> = BTreeSet::new();
        while !pending.is_empty() {
            let mut next = Vec::new();
            for requirement in pending {
                let key = requirement.spec.key();
                let index = match wanted.iter().position(|(k, _)| *k == key) {
                    Some(i) => {
                        let first = wanted[i].1.first().clone();
                        if std::mem::discriminant(&first.source)
                            != std::mem::discriminant(&requirement.spec.source)
                        {
                            return Err(Error::new(
                                ErrorKind::Project,
                                format!(
                                    "{} is required from two kinds of source: by {} and by {}",
                                    requirement.spec.display(),
                                    wanted[i].1.required_by(),
                                    requirement.by
                                ),
                            ));
                        }
                        wanted[i].1.requirements.push(requirement);
                        i
                    }
                    None => {
                        wanted.push((
                            key,
                            Wanted {
                                requirements: vec![requirement],
                            },
                        ));
                        wanted.len() - 1
                    }
                };
                let want = wanted[index].1.clone();
                let pinned = self.pin(&want)?;
                let marker = format!("{}@{}", wanted[index].0, pinned.report().installed_from);
                if !expanded.insert(marker) {
                    continue;
                }
                let by = match &pinned.how {
                    How::Hub { version, .. } => format!("{} {version}", pinned.shown),
                    _ => pinned.shown.clone(),
                };
                for spec in self.packages_of(&pinned)? {
                    next.push(Requirement {
                        by: by.clone(),
                        at: None,
                        spec,
                    });
                }
            }
            pending = next;
        }
        wanted.iter().map(|(_, want)| self.pin(want)).collect()
    }

    /// Pin the packages of package-lock.yml as they are written there.
    pub fn pin_locked(&mut self, locked: &[PackageSpec], lock_path: &Path) -> Result<Vec<Pinned>> {
        let text = std::fs::read_to_string(lock_path).unwrap_or_default();
        locked
            .iter()
            .map(|spec| {
                let want = Wanted {
                    requirements: vec![Requirement {
                        by: format!("package-lock.yml (line {})", spec.line),
                        at: Some((lock_path.to_path_buf(), text.clone(), spec.line)),
                        spec: spec.clone(),
                    }],
                };
                self.pin(&want)
            })
            .collect()
    }

    fn pin(&mut self, want: &Wanted) -> Result<Pinned> {
        let first = want.first().clone();
        let shown = first.display();
        let required_by = want.required_by();
        let pinned = |name: String, how: How, latest: Option<String>| Pinned {
            shown: shown.clone(),
            name,
            how,
            latest,
            required_by: required_by.clone(),
        };
        match &first.source {
            Source::Local { path } => {
                let dir = self.root.join(path);
                let dir = dir.canonicalize().map_err(|e| {
                    want.locate(Error::new(
                        ErrorKind::Project,
                        format!("the local package {path} cannot be read: {e}"),
                    ))
                })?;
                let name = project_name(&dir).map_err(|e| want.locate(e))?;
                Ok(pinned(
                    name,
                    How::Local {
                        written: written(&want.requirements[0].spec, "local", path),
                        dir,
                    },
                    None,
                ))
            }
            Source::Git {
                url, subdirectory, ..
            } => {
                let mut revisions: Vec<(&str, &str)> = Vec::new();
                for r in &want.requirements {
                    if let Source::Git {
                        revision: Some(rev),
                        ..
                    } = &r.spec.source
                        && !revisions.iter().any(|(seen, _)| seen == rev)
                    {
                        revisions.push((rev, &r.by));
                    }
                }
                if let [(a, by_a), (b, by_b), ..] = revisions.as_slice() {
                    return Err(want.locate(Error::new(
                        ErrorKind::Project,
                        format!(
                            "{shown} is required at two revisions: `{a}` by {by_a} and `{b}` by {by_b}"
                        ),
                    ).with_hint("require one revision of a git package everywhere")));
                }
                let revision = revisions.first().map(|(rev, _)| rev.to_string());
                let warn = want
                    .requirements
                    .iter()
                    .all(|r| r.spec.raw.get("warn-unpinned") != Some(&Json::Bool(false)));
                if warn && matches!(revision.as_deref(), None | Some("HEAD" | "main" | "master")) {
                    let followed = revision.as_deref().unwrap_or("HEAD");
                    let note = format!(
                        "The git package \"{shown}\" is pinned to the \"{followed}\" branch: a \
                         change there reaches this project without warning. Pin a tag or a commit \
                         in `revision:` (or set `warn-unpinned: false`)."
                    );
                    if !self.warnings.contains(&note) {
                        self.warnings.push(note);
                    }
                }
                let written_url = written(&want.requirements[0].spec, "git", url);
                let (checkout, commit) = self
                    .clone_at(url, &written_url, revision.as_deref())
                    .map_err(|e| want.locate(e))?;
                let dir = match subdirectory {
                    Some(sub) => checkout.join(sub),
                    None => checkout.clone(),
                };
                let name = project_name(&dir).map_err(|e| want.locate(e))?;
                Ok(pinned(
                    name,
                    How::Git {
                        written_url,
                        commit,
                        subdirectory: subdirectory.clone(),
                        checkout,
                    },
                    None,
                ))
            }
            Source::Hub { package, .. } => self.pin_hub(want, package, &shown, &required_by),
            Source::Tarball { url } => {
                let name = first.name.clone().unwrap_or_default();
                let archive = self.scratch("tarball").with_extension("tar.gz");
                let what = format!("the package {name}");
                self.hub()
                    .download(url, &archive, &what)
                    .map_err(|e| want.locate(e))?;
                let into = self.scratch("unpacked");
                let dir = super::install::unpack(&archive, &into)?;
                Ok(pinned(
                    name,
                    How::Tarball {
                        url: url.clone(),
                        dir,
                    },
                    None,
                ))
            }
        }
    }

    fn pin_hub(
        &mut self,
        want: &Wanted,
        package: &str,
        shown: &str,
        required_by: &str,
    ) -> Result<Pinned> {
        let mut specs = Vec::new();
        let mut asked: Vec<(String, &str)> = Vec::new();
        let mut prerelease = false;
        for r in &want.requirements {
            if let Source::Hub {
                versions,
                install_prerelease,
                ..
            } = &r.spec.source
            {
                let parsed = versions
                    .iter()
                    .map(|v| Spec::parse(v))
                    .collect::<Result<Vec<_>>>()
                    .map_err(|e| want.locate(e))?;
                prerelease |= *install_prerelease || parsed.iter().any(Spec::is_prerelease);
                specs.extend(parsed);
                asked.push((versions.join(", "), &r.by));
            }
        }
        let range = Range::intersect(&specs).map_err(|_| {
            let each = asked
                .iter()
                .map(|(versions, by)| format!("`{versions}` by {by}"))
                .collect::<Vec<_>>()
                .join(" and ");
            want.locate(
                Error::new(
                    ErrorKind::Project,
                    format!("no version of {package} satisfies every requirement: {each}"),
                )
                .with_hint("change the ranges so that they overlap"),
            )
        })?;
        let hub = self.hub();
        let base = hub.base().to_string();
        if !hub.lists(package).map_err(|e| want.locate(e))? {
            return Err(want.locate(Error::new(
                ErrorKind::Project,
                format!("the package hub at {base} has no package {package}"),
            )));
        }
        let versions = hub.versions(package).map_err(|e| want.locate(e))?;
        let compatible: Vec<&str> = versions
            .iter()
            .filter(|(_, info)| {
                version::satisfies(DBT_VERSION, &info.require_dbt_version).unwrap_or(false)
            })
            .map(|(v, _)| v.as_str())
            .collect();
        let installable = version::installable(&compatible, prerelease);
        let Some(chosen) = version::highest_in(&range, &installable) else {
            let listed = if installable.is_empty() {
                "none".to_string()
            } else {
                installable.join(", ")
            };
            return Err(want.locate(Error::new(
                ErrorKind::Project,
                format!(
                    "no version of {package} in `{range}` (required by {required_by}) works with \
                     dbt {DBT_VERSION}: the versions that do are {listed}"
                ),
            )));
        };
        let info = &versions[chosen];
        Ok(Pinned {
            shown: shown.to_string(),
            name: info.name.clone(),
            how: How::Hub {
                package: package.to_string(),
                version: chosen.to_string(),
                tarball: info.tarball.clone(),
            },
            latest: installable.last().map(|v| v.to_string()),
            required_by: required_by.to_string(),
        })
    }

    fn clone_at(
        &mut self,
        url: &str,
        shown: &str,
        revision: Option<&str>,
    ) -> Result<(PathBuf, String)> {
        let key = (url.to_string(), revision.map(str::to_string));
        if let Some(found) = self.clones.get(&key) {
            return Ok(found.clone());
        }
        let dest = self.scratch("git");
        let commit = git::clone_at(url, shown, revision, &dest)?;
        self.clones.insert(key, (dest.clone(), commit.clone()));
        Ok((dest, commit))
    }

    /// The packages a pinned package requires, rendered.
    fn packages_of(&mut self, pinned: &Pinned) -> Result<Vec<PackageSpec>> {
        let dir = match &pinned.how {
            How::Local { dir, .. } | How::Tarball { dir, .. } => dir.clone(),
            How::Git {
                checkout,
                subdirectory,
                ..
            } => match subdirectory {
                Some(sub) => checkout.join(sub),
                None => checkout.clone(),
            },
            How::Hub {
                package, version, ..
            } => {
                let listed = self.hub().versions(package)?[version].packages.clone();
                let origin = PathBuf::from(format!("{package} {version} on the package hub"));
                let tree = yaml::from_json(&match listed {
                    Json::Null => Json::Array(Vec::new()),
                    other => other,
                });
                let specs = packages::parse_list(&tree, &origin, "")?;
                return specs
                    .iter()
                    .map(|spec| render_spec(spec, &origin, ""))
                    .collect();
            }
        };
        let Some(file) = packages::read(&dir)? else {
            return Ok(Vec::new());
        };
        file.specs
            .iter()
            .map(|spec| render_spec(spec, &file.path, &file.text))
            .collect()
    }
}

/// The value as the user wrote it (with its `{{ }}`, which the lock keeps
/// rather than a secret it renders to).
fn written(spec: &PackageSpec, key: &str, rendered: &str) -> String {
    spec.raw
        .get(key)
        .and_then(Json::as_str)
        .unwrap_or(rendered)
        .to_string()
}

/// The `name:` of the dbt_project.yml in `dir`.
pub fn project_name(dir: &Path) -> Result<String> {
    let file = dir.join("dbt_project.yml");
    if !file.is_file() {
        return Err(Error::new(
            ErrorKind::Project,
            format!("no dbt_project.yml in the package at {}", dir.display()),
        )
        .with_hint("a git package kept in a folder of its repository needs `subdirectory:`"));
    }
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    let doc = yaml::parse(&text, &file)?;
    let name = yaml::str_field(&doc, "name").unwrap_or_default();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::new(
            ErrorKind::Project,
            format!("the package's project name `{name}` must be letters, digits and underscores"),
        )
        .in_file(&file));
    }
    Ok(name.to_string())
}
