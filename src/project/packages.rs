//! The packages a project asks for (packages.yml or dependencies.yml), the
//! versions `weir deps` pinned for them (package-lock.yml), and the check
//! that they are installed, with no Jinja and no network: installing them
//! is `deps`.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::yaml::{self, Kind, Yaml};
use crate::error::{Error, ErrorKind, Result};

pub const PACKAGES_FILE: &str = "packages.yml";
pub const DEPENDENCIES_FILE: &str = "dependencies.yml";
pub const LOCK_FILE: &str = "package-lock.yml";

/// Where a package comes from, with its values as written (a value may
/// hold `{{ env_var(...) }}`, rendered by `deps`).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `local:`, a folder relative to the root project.
    Local { path: String },
    /// `git:` with an optional `revision:` (a branch, tag or commit) and
    /// `subdirectory:` (the folder of the repository holding dbt_project.yml).
    Git {
        url: String,
        revision: Option<String>,
        subdirectory: Option<String>,
    },
    /// `package: org/name` on the package hub, with `version:` (one version
    /// or a list of ranges) and `install_prerelease`.
    Hub {
        package: String,
        versions: Vec<String>,
        install_prerelease: bool,
    },
    /// `tarball:` a URL of a .tar.gz, with a required `name:`.
    Tarball { url: String },
}

/// One entry of a `packages:` list.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageSpec {
    pub source: Source,
    /// `name:` as written (the lock writes it for every package).
    pub name: Option<String>,
    /// The entry's line in its file (0 when it came from the hub's index).
    pub line: usize,
    /// The entry as written, as dbt keeps it (`unrendered`) for the lock's hash.
    pub raw: Json,
}

impl PackageSpec {
    /// How dbt names the package in its messages: the hub name, the git URL
    /// (with its subdirectory) or the local path.
    pub fn display(&self) -> String {
        match &self.source {
            Source::Local { path } => path.clone(),
            Source::Git {
                url, subdirectory, ..
            } => match subdirectory {
                Some(sub) => format!("{url}/{sub}"),
                None => url.clone(),
            },
            Source::Hub { package, .. } => package.clone(),
            Source::Tarball { url } => url.clone(),
        }
    }

    /// The key under which two requirements of one package meet: a git URL
    /// with and without `.git` is one package, as in dbt.
    pub fn key(&self) -> String {
        match &self.source {
            Source::Git {
                url, subdirectory, ..
            } => {
                let url = url.strip_suffix(".git").unwrap_or(url);
                match subdirectory {
                    Some(sub) => format!("git:{url}/{sub}"),
                    None => format!("git:{url}"),
                }
            }
            Source::Local { path } => format!("local:{path}"),
            Source::Hub { package, .. } => format!("hub:{package}"),
            Source::Tarball { url } => format!("tarball:{url}"),
        }
    }
}

/// A project's packages.yml or dependencies.yml: which one, its text and
/// its entries.
#[derive(Debug, Clone)]
pub struct PackagesFile {
    pub path: PathBuf,
    pub text: String,
    pub specs: Vec<PackageSpec>,
}

/// The `packages:` of the project at `root`: from dependencies.yml when it
/// has that key, else from packages.yml; both having it is an error, as in
/// dbt. None when neither file lists packages.
pub fn read(root: &Path) -> Result<Option<PackagesFile>> {
    let packages = read_yaml(&root.join(PACKAGES_FILE))?;
    let dependencies = read_yaml(&root.join(DEPENDENCIES_FILE))?;
    let has_key = |file: &Option<(PathBuf, String, Yaml)>| {
        file.as_ref()
            .is_some_and(|(_, _, doc)| doc.get("packages").is_some())
    };
    if has_key(&packages) && has_key(&dependencies) {
        return Err(Error::new(
            ErrorKind::Project,
            "the `packages:` key cannot be in both packages.yml and dependencies.yml",
        )
        .in_file(root.join(DEPENDENCIES_FILE))
        .with_hint("keep the packages in one of the two files"));
    }
    let chosen = if has_key(&dependencies) {
        dependencies
    } else {
        packages
    };
    let Some((path, text, doc)) = chosen else {
        return Ok(None);
    };
    let Some(list) = doc.get("packages") else {
        return Ok(None);
    };
    let specs = parse_list(list, &path, &text)?;
    Ok(Some(PackagesFile { path, text, specs }))
}

fn read_yaml(path: &Path) -> Result<Option<(PathBuf, String, Yaml)>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let doc = yaml::parse(&text, path)?;
    if !(doc.is_mapping() || doc.is_null()) {
        return Err(yaml::value_error(
            ErrorKind::Project,
            "this file must be a mapping with a `packages:` list",
            path,
            &text,
            &doc,
        ));
    }
    Ok(Some((path.to_path_buf(), text, doc)))
}

/// A `packages:` list (of packages.yml, the lock, or a hub index entry's
/// `packages`), each entry checked as dbt checks it.
pub fn parse_list(list: &Yaml, path: &Path, text: &str) -> Result<Vec<PackageSpec>> {
    let bad = |node: &Yaml, message: String| {
        yaml::value_error(ErrorKind::Project, message, path, text, node)
    };
    let items = match list.kind() {
        Kind::Null => return Ok(Vec::new()),
        Kind::Sequence(items) => items,
        _ => {
            return Err(bad(
                list,
                "`packages:` must be a list of packages (`- package: ...`, `- git: ...`, `- local: ...`)"
                    .to_string(),
            ));
        }
    };
    items.iter().map(|item| parse_entry(item, &bad)).collect()
}

fn parse_entry(item: &Yaml, bad: &dyn Fn(&Yaml, String) -> Error) -> Result<PackageSpec> {
    let Some(map) = item.as_mapping() else {
        return Err(bad(
            item,
            format!("a package must be a mapping like `package: org/name`, got `{item}`"),
        ));
    };
    let kinds: Vec<&str> = ["local", "git", "package", "tarball", "private"]
        .into_iter()
        .filter(|key| map.get(key).is_some())
        .collect();
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => {
            return Err(bad(
                item,
                "a package needs one of `package:` (the hub), `git:`, `local:` or `tarball:`"
                    .to_string(),
            ));
        }
        many => {
            return Err(bad(
                item,
                format!("a package has one source, this one has {}", many.join(", ")),
            ));
        }
    };
    let allowed: &[&str] = match kind {
        "local" => &["local", "name"],
        "git" => &["git", "revision", "subdirectory", "warn-unpinned", "name"],
        "package" => &[
            "package",
            "version",
            "install_prerelease",
            "install-prerelease",
            "name",
        ],
        "tarball" => &["tarball", "name"],
        _ => {
            return Err(bad(
                item,
                "a `private:` package needs a git provider integration; use `git:` instead"
                    .to_string(),
            ));
        }
    };
    for (key, _) in map.iter() {
        let key_text = yaml::key_string(key);
        if !allowed.contains(&key_text.as_str()) {
            return Err(bad(
                key,
                format!(
                    "unknown key `{key_text}` in a `{kind}:` package; it may have {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    let text_of = |key: &str| -> Result<Option<String>> {
        match map.get(key) {
            None => Ok(None),
            Some(value) => match value.kind() {
                Kind::String(s) if !s.is_empty() => Ok(Some(s.clone())),
                Kind::Null => Ok(None),
                _ => Err(bad(value, format!("`{key}:` must be text, got `{value}`"))),
            },
        }
    };
    // A version or revision may be written as a number (`revision: 1.0`):
    // dbt reads it as its text.
    let version_text = |value: &Yaml| -> Result<String> {
        match value.kind() {
            Kind::String(s) => Ok(s.clone()),
            Kind::Int(_) | Kind::Float(_) => Ok(yaml::key_string(value)),
            _ => Err(bad(
                value,
                format!("a version must be text like \"1.2.0\", got `{value}`"),
            )),
        }
    };
    let required = |key: &str| -> Result<String> {
        text_of(key)?.ok_or_else(|| bad(item, format!("a `{kind}:` package needs `{key}:` text")))
    };
    let source = match kind {
        "local" => Source::Local {
            path: required("local")?,
        },
        "git" => Source::Git {
            url: required("git")?,
            revision: map.get("revision").map(version_text).transpose()?,
            subdirectory: text_of("subdirectory")?,
        },
        "tarball" => {
            if text_of("name")?.is_none() {
                return Err(bad(
                    item,
                    "a `tarball:` package needs a `name:`".to_string(),
                ));
            }
            Source::Tarball {
                url: required("tarball")?,
            }
        }
        _ => {
            let package = required("package")?;
            if !package.contains('/') {
                return Err(bad(
                    map.get("package").unwrap_or(item),
                    format!(
                        "`{package}` has no namespace: packages on the hub are named like \
                         dbt-labs/dbt_utils"
                    ),
                ));
            }
            let versions = match map.get("version") {
                None => Vec::new(),
                Some(value) => match value.kind() {
                    Kind::Sequence(items) => {
                        items.iter().map(version_text).collect::<Result<Vec<_>>>()?
                    }
                    Kind::Null => Vec::new(),
                    _ => vec![version_text(value)?],
                },
            };
            if versions.is_empty() || versions.iter().any(String::is_empty) {
                return Err(bad(
                    item,
                    format!(
                        "{package} has no `version:`: a hub package needs one, like \
                         `version: [\">=1.0.0\", \"<2.0.0\"]`"
                    ),
                ));
            }
            let prerelease = map
                .get("install_prerelease")
                .or_else(|| map.get("install-prerelease"));
            let install_prerelease = match prerelease {
                None => false,
                Some(value) => match value.kind() {
                    Kind::Bool(b) => *b,
                    Kind::Null => false,
                    _ => {
                        return Err(bad(
                            value,
                            format!("`install_prerelease:` must be true or false, got `{value}`"),
                        ));
                    }
                },
            };
            Source::Hub {
                package,
                versions,
                install_prerelease,
            }
        }
    };
    Ok(PackageSpec {
        source,
        name: text_of("name")?,
        line: item.line(),
        raw: yaml::to_json(item),
    })
}

/// package-lock.yml: every package `weir deps` installed (direct and
/// transitive) pinned, with its installed name, and the hash of the
/// packages spec it was made from.
#[derive(Debug, Clone)]
pub struct Lock {
    pub path: PathBuf,
    pub packages: Vec<PackageSpec>,
    pub sha1_hash: Option<String>,
}

/// The lock of the project at `root`, if it has one.
pub fn read_lock(root: &Path) -> Result<Option<Lock>> {
    let Some((path, text, doc)) = read_yaml(&root.join(LOCK_FILE))? else {
        return Ok(None);
    };
    let packages = match doc.get("packages") {
        Some(list) => parse_list(list, &path, &text)?,
        None => Vec::new(),
    };
    let sha1_hash = yaml::str_field(&doc, "sha1_hash").map(str::to_string);
    Ok(Some(Lock {
        path,
        packages,
        sha1_hash,
    }))
}

/// Refuse to go on when the project lists a package that is not installed
/// under `install_path` (`installed`: the names found there), naming the
/// entry's file and line and saying to run `weir deps`. A package's
/// installed name is its lock entry's `name`, a local package's own
/// dbt_project.yml name, a tarball's `name:`, or else unknown: then, as dbt does, the count of
/// packages installed must reach the count listed.
pub fn check_installed(root: &Path, install_path: &Path, installed: &[String]) -> Result<()> {
    let Some(file) = read(root)? else {
        return Ok(());
    };
    let lock = read_lock(root).ok().flatten();
    let missing = |spec: &PackageSpec, detail: String| {
        Error::new(
            ErrorKind::Project,
            format!(
                "package `{}` is listed here but not installed in {}{detail}",
                spec.display(),
                install_path.display()
            ),
        )
        .in_file(&file.path)
        .at_line_of(&file.text, spec.line)
        .with_hint("run `weir deps` to install the project's packages")
    };
    let mut unknown = Vec::new();
    for spec in &file.specs {
        let name = expected_name(root, spec, lock.as_ref());
        match name {
            Some(name) if !installed.contains(&name) => {
                return Err(missing(spec, format!(" (as `{name}`)")));
            }
            Some(_) => {}
            None => unknown.push(spec),
        }
    }
    if let Some(first) = unknown.first()
        && installed.len() < file.specs.len()
    {
        return Err(missing(
            first,
            format!(
                ": {} listed, {} installed",
                file.specs.len(),
                installed.len()
            ),
        ));
    }
    Ok(())
}

fn expected_name(root: &Path, spec: &PackageSpec, lock: Option<&Lock>) -> Option<String> {
    if let Source::Local { path } = &spec.source
        && !path.contains("{{")
    {
        let project_file = root.join(path).join("dbt_project.yml");
        let text = std::fs::read_to_string(project_file).ok()?;
        let doc = yaml::parse_text(&text).ok()?;
        return yaml::str_field(&doc, "name").map(str::to_string);
    }
    if let Source::Tarball { .. } = &spec.source {
        return spec.name.clone();
    }
    let key = spec.key();
    lock?
        .packages
        .iter()
        .find(|locked| locked.key() == key)
        .and_then(|locked| locked.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(text: &str) -> Result<Vec<PackageSpec>> {
        let path = Path::new("packages.yml");
        let doc = yaml::parse(text, path)?;
        parse_list(doc.get("packages").unwrap(), path, text)
    }

    #[test]
    fn reads_the_three_sources() {
        let list = specs(
            "packages:\n  - local: ../utils\n  - git: https://x/y.git\n    revision: 1.0\n    \
             subdirectory: sub\n  - package: org/pkg\n    version: [\">=1.0.0\", \"<2.0.0\"]\n",
        )
        .unwrap();
        assert_eq!(
            list[0].source,
            Source::Local {
                path: "../utils".into()
            }
        );
        assert_eq!(
            list[1].source,
            Source::Git {
                url: "https://x/y.git".into(),
                revision: Some("1.0".into()),
                subdirectory: Some("sub".into())
            }
        );
        assert_eq!(list[2].line, 6);
        assert_eq!(list[1].key(), "git:https://x/y/sub");
        match &list[2].source {
            Source::Hub { versions, .. } => assert_eq!(versions, &[">=1.0.0", "<2.0.0"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_entries_name_their_line() {
        let err = specs("packages:\n  - package: dbt_utils\n    version: 1.0.0\n").unwrap_err();
        assert_eq!(err.line(), Some(2));
        assert!(err.message().contains("namespace"), "{err}");
        let err = specs("packages:\n  - local: a\n  - package: org/x\n").unwrap_err();
        assert_eq!(err.line(), Some(3));
        assert!(err.message().contains("version"), "{err}");
        let err = specs("packages:\n  - git: a\n    revison: main\n").unwrap_err();
        assert!(err.message().contains("revison"), "{err}");
    }
}
