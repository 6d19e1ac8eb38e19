//! Reading a dbt project from disk, without Jinja: dbt_project.yml, the model,
//! seed and macro files, and the properties YAML beside them.

mod blocks;
pub mod config;
mod digest;
mod files;
pub mod packages;
pub mod properties;
pub mod rendering;
pub mod versions;
pub mod yaml;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Value as Json};
use yaml::{Kind, Yaml};

use crate::error::{Error, ErrorKind, Result};
pub use blocks::Block;
pub use config::ConfigTree;
pub use digest::SourceDigest;
pub use properties::{Column, ExposureDefinition, ModelProperties, Properties};

/// A file of the project: where it is and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectFile {
    /// Path relative to the project root, with `/` separators.
    pub original_file_path: String,
    /// Path relative to the resource folder it was found in (models/, seeds/, macros/).
    pub path: String,
    pub text: String,
}

impl ProjectFile {
    /// File name without its extension: the node's name.
    pub fn stem(&self) -> &str {
        let name = self.path.rsplit('/').next().unwrap_or(&self.path);
        name.rsplit_once('.').map_or(name, |(stem, _)| stem)
    }

    /// Folders between the resource folder and the file, for the fqn.
    pub fn folders(&self) -> Vec<&str> {
        let mut parts: Vec<&str> = self.path.split('/').collect();
        parts.pop();
        parts
    }
}

/// A dbt project as found on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub root: PathBuf,
    pub name: String,
    pub version: Option<String>,
    /// The profile to read from profiles.yml (defaults to the project name).
    pub profile: String,
    pub model_paths: Vec<String>,
    pub seed_paths: Vec<String>,
    pub macro_paths: Vec<String>,
    /// Every resource folder (models, seeds, snapshots, analyses, macros,
    /// tests): where properties YAML is read, as dbt reads it.
    pub properties_paths: Vec<String>,
    pub target_path: String,
    /// Where `dbt.log` goes (`log-path`, default `logs`).
    pub log_path: String,
    /// Global `vars:` of dbt_project.yml.
    pub vars: Map<String, Json>,
    pub models_config: ConfigTree,
    pub seeds_config: ConfigTree,
    pub models: Vec<ProjectFile>,
    /// Seeds: CSV files.
    pub seeds: Vec<ProjectFile>,
    /// Macro files, and the generic-test files under test paths' `generic/`.
    pub macros: Vec<ProjectFile>,
    /// `{% snapshot %}` blocks from snapshot-paths.
    pub snapshots: Vec<Block>,
    /// SQL files under analysis-paths: compiled, never run.
    pub analyses: Vec<ProjectFile>,
    /// Singular tests: SQL files under test-paths.
    pub singular_tests: Vec<ProjectFile>,
    /// The `data_tests:` (or older `tests:`) config tree.
    pub tests_config: ConfigTree,
    /// `{% docs %}` blocks from .md files.
    pub docs: Vec<Block>,
    pub snapshots_config: ConfigTree,
    /// The `exposures:` config tree (`+enabled`, `+tags`, `+meta`).
    pub exposures_config: ConfigTree,
    /// The `sources:` config tree (`+enabled`, `+meta`; dbt 1.11 ignores
    /// its `+tags`).
    pub sources_config: ConfigTree,
    /// The properties YAML files (`schema.yml`), parsed on first use: a
    /// reused compile (see compile::cache) needs none of them.
    property_files: Vec<ProjectFile>,
    properties: OnceLock<Result<Properties>>,
    pub packages_install_path: String,
    /// Packages installed under `packages-install-path` (dbt_packages/), as
    /// `dbt deps` leaves them; empty for a package itself.
    pub packages: Vec<Project>,
    /// `dispatch:`: for a macro namespace, the packages `adapter.dispatch`
    /// searches, in order (only the root project's count, as in dbt).
    pub dispatch: Vec<(String, Vec<String>)>,
    /// `quoting:` of dbt_project.yml (database, schema, identifier: true or
    /// false); only the root project's counts, as in dbt.
    pub quoting: Map<String, Json>,
    /// `on-run-start:` and `on-run-end:` SQL (Jinja), run around a whole run.
    pub on_run_start: Vec<String>,
    pub on_run_end: Vec<String>,
    /// Every file this project (not its packages) was read from, in one digest.
    pub digest: SourceDigest,
}

impl Project {
    /// Read the project rooted at `root` (the folder holding dbt_project.yml)
    /// and the packages installed in it.
    pub fn load(root: &Path) -> Result<Project> {
        let mut project = Project::load_one(root)?;
        let install_path = root.join(&project.packages_install_path);
        if install_path.is_dir() {
            let entries =
                std::fs::read_dir(&install_path).map_err(|e| Error::io(&install_path, e))?;
            let mut folders: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.join("dbt_project.yml").is_file())
                .collect();
            folders.sort();
            for folder in folders {
                let package = Project::load_one(&folder)?;
                if package.name == project.name
                    || project.packages.iter().any(|p| p.name == package.name)
                {
                    return Err(Error::new(
                        ErrorKind::Project,
                        format!("two projects are named `{}`", package.name),
                    )
                    .in_file(folder.join("dbt_project.yml"))
                    .with_hint("each package under dbt_packages/ needs its own name"));
                }
                project.packages.push(package);
            }
        }
        let installed: Vec<String> = project.packages.iter().map(|p| p.name.clone()).collect();
        packages::check_installed(root, &install_path, &installed)?;
        Ok(project)
    }

    /// Read the project rooted at `root` alone, not the packages installed
    /// in it (which `weir deps` is about to replace).
    pub fn load_root(root: &Path) -> Result<Project> {
        Project::load_one(root)
    }

    /// The project and its packages, the project first.
    pub fn all_projects(&self) -> impl Iterator<Item = &Project> {
        std::iter::once(self).chain(&self.packages)
    }

    fn load_one(root: &Path) -> Result<Project> {
        let project_file = root.join("dbt_project.yml");
        if !project_file.is_file() {
            return Err(Error::new(
                ErrorKind::Project,
                format!("no dbt_project.yml in {}", root.display()),
            )
            .with_hint("run weir from the project folder or pass --project-dir"));
        }
        let text =
            std::fs::read_to_string(&project_file).map_err(|e| Error::io(&project_file, e))?;
        let doc = yaml::parse(&text, &project_file)?;
        let name = match doc.get("name") {
            None => {
                return Err(
                    Error::new(ErrorKind::Project, "dbt_project.yml has no `name:`")
                        .in_file(&project_file),
                );
            }
            Some(name) => name
                .as_str()
                .ok_or_else(|| {
                    yaml::value_error(
                        ErrorKind::Project,
                        format!("the project `name:` must be text, got `{name}`"),
                        &project_file,
                        &text,
                        name,
                    )
                })?
                .to_string(),
        };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::new(
                ErrorKind::Project,
                format!("project name `{name}` may hold only letters, digits and underscores"),
            )
            .in_file(&project_file)
            .at_line_of(&text, doc.get("name").map_or(0, Yaml::line)));
        }
        let paths = |key: &str, default: &str| -> Result<Vec<String>> {
            let value = doc.get(key);
            if let Some(node) = value {
                let folders = match node.kind() {
                    Kind::Null | Kind::String(_) => true,
                    Kind::Sequence(items) => items.iter().all(|i| i.as_str().is_some()),
                    _ => false,
                };
                if !folders {
                    return Err(yaml::value_error(
                        ErrorKind::Project,
                        format!("`{key}` must be a list of folders, like [\"{default}\"]"),
                        &project_file,
                        &text,
                        node,
                    ));
                }
            }
            let list = yaml::string_list(value);
            Ok(if list.is_empty() {
                vec![default.to_string()]
            } else {
                list
            })
        };
        let model_paths = paths("model-paths", "models")?;
        let seed_paths = paths("seed-paths", "seeds")?;
        let macro_paths = paths("macro-paths", "macros")?;
        let snapshot_paths = paths("snapshot-paths", "snapshots")?;
        let analysis_paths = paths("analysis-paths", "analyses")?;
        let test_paths = paths("test-paths", "tests")?;
        let vars = match doc.get("vars") {
            None => Map::new(),
            Some(value) => match yaml::to_json(value) {
                Json::Object(map) => map,
                Json::Null => Map::new(),
                _ => {
                    return Err(yaml::value_error(
                        ErrorKind::Project,
                        "`vars:` must be a mapping",
                        &project_file,
                        &text,
                        value,
                    ));
                }
            },
        };

        let docs_paths: Vec<String> = {
            let mut all: Vec<String> = [
                &model_paths,
                &seed_paths,
                &macro_paths,
                &snapshot_paths,
                &analysis_paths,
            ]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
            all.sort();
            all.dedup();
            all
        };
        // Properties YAML is read from every resource folder, tests' too, as dbt reads it.
        let properties_paths: Vec<String> = {
            let mut all: Vec<String> = docs_paths.iter().chain(&test_paths).cloned().collect();
            all.sort();
            all.dedup();
            all
        };
        let folders = files::Folders::walk(root, docs_paths.iter().chain(&test_paths))?;
        let select =
            |paths: &[String], extensions: &[&str]| folders.select(root, paths, extensions);
        let [
            models,
            seeds,
            mut macros,
            snapshot_files,
            analyses,
            test_files,
            docs_files,
            property_files,
        ] = files::read(
            root,
            [
                select(&model_paths, &["sql"]),
                select(&seed_paths, &["csv"]),
                select(&macro_paths, &["sql"]),
                select(&snapshot_paths, &["sql"]),
                select(&analysis_paths, &["sql"]),
                select(&test_paths, &["sql"]),
                select(&docs_paths, &["md"]),
                select(&properties_paths, &["yml", "yaml"]),
            ],
        )?;
        // As dbt reads test paths: `generic/` holds generic tests (`{% test %}`
        // blocks, read as macros) and `fixtures/` unit-test fixtures; only the
        // rest are singular tests.
        let mut singular_tests = Vec::new();
        for file in test_files {
            match file.path.split('/').next() {
                Some("generic") if file.path.contains('/') => macros.push(file),
                Some("fixtures") if file.path.contains('/') => {}
                _ => singular_tests.push(file),
            }
        }
        macros.sort_by(|a, b| a.original_file_path.cmp(&b.original_file_path));
        let mut digest = digest::DigestBuilder::new(&text);
        digest.add_files("models", &models);
        digest.add_files("seeds", &seeds);
        digest.add_files("macros", &macros);
        digest.add_files("snapshots", &snapshot_files);
        digest.add_files("analyses", &analyses);
        digest.add_files("tests", &singular_tests);
        digest.add_files("docs", &docs_files);
        digest.add_files("properties", &property_files);
        let snapshots = blocks_of(root, &snapshot_files, blocks::snapshot_blocks)?;
        let docs = blocks_of(root, &docs_files, blocks::docs_blocks)?;
        crate::base::timing::phase("project files read");

        let mut project = Project {
            root: root.to_path_buf(),
            profile: yaml::str_field(&doc, "profile")
                .unwrap_or(&name)
                .to_string(),
            version: doc.get("version").map(|v| match v.as_str() {
                Some(s) => s.to_string(),
                None => v.to_string(),
            }),
            model_paths,
            seed_paths,
            macro_paths,
            properties_paths,
            target_path: yaml::str_field(&doc, "target-path")
                .unwrap_or("target")
                .to_string(),
            log_path: yaml::str_field(&doc, "log-path")
                .unwrap_or("logs")
                .to_string(),
            vars,
            models_config: ConfigTree::default(),
            seeds_config: ConfigTree::default(),
            snapshots_config: ConfigTree::default(),
            exposures_config: ConfigTree::default(),
            sources_config: ConfigTree::default(),
            tests_config: ConfigTree::default(),
            singular_tests,
            snapshots,
            analyses,
            docs,
            models,
            seeds,
            macros,
            property_files,
            properties: OnceLock::new(),
            packages: Vec::new(),
            packages_install_path: yaml::str_field(&doc, "packages-install-path")
                .unwrap_or("dbt_packages")
                .to_string(),
            dispatch: dispatch_config(doc.get("dispatch"), &text, &project_file)?,
            quoting: match doc.get("quoting") {
                None => Map::new(),
                Some(value) => properties::quoting_map(value).map_err(|message| {
                    yaml::value_error(ErrorKind::Project, message, &project_file, &text, value)
                })?,
            },
            on_run_start: yaml::string_list(doc.get("on-run-start")),
            on_run_end: yaml::string_list(doc.get("on-run-end")),
            digest: digest.finish(),
            name,
        };
        project.set_config_trees(&doc, &text, &project_file)?;
        Ok(project)
    }

    /// The config blocks of dbt_project.yml (`doc`, read from `text`).
    fn set_config_trees(&mut self, doc: &Yaml, text: &str, file: &Path) -> Result<()> {
        let tree = |key: &str| ConfigTree::from_yaml(doc.get(key), key, text, file);
        self.models_config = tree("models")?;
        self.seeds_config = tree("seeds")?;
        self.snapshots_config = tree("snapshots")?;
        self.exposures_config = tree("exposures")?;
        self.sources_config = tree("sources")?;
        self.tests_config = tree(if doc.get("data_tests").is_some() {
            "data_tests"
        } else {
            "tests"
        })?;
        Ok(())
    }

    /// The project and its packages as one compile sees them: every value of
    /// dbt_project.yml's config blocks and of the properties files that dbt
    /// renders (see [`rendering`]) rendered by `render` (target, var,
    /// env_var). None when no such value holds Jinja: the project is used
    /// as it is.
    pub fn rendered(&self, render: &dyn rendering::Render) -> Result<Option<Project>> {
        let own = self.rendered_one(render)?;
        let mut packages = Vec::with_capacity(self.packages.len());
        for package in &self.packages {
            packages.push(package.rendered_one(render)?);
        }
        if own.is_none() && packages.iter().all(Option::is_none) {
            return Ok(None);
        }
        let mut project = own.unwrap_or_else(|| self.clone());
        project.packages = packages
            .into_iter()
            .zip(&self.packages)
            .map(|(rendered, package)| rendered.unwrap_or_else(|| package.clone()))
            .collect();
        Ok(Some(project))
    }

    fn rendered_one(&self, render: &dyn rendering::Render) -> Result<Option<Project>> {
        let configs = [
            &self.models_config,
            &self.seeds_config,
            &self.snapshots_config,
            &self.exposures_config,
            &self.sources_config,
            &self.tests_config,
        ]
        .iter()
        .any(|tree| tree.has_jinja());
        let properties = self
            .property_files
            .iter()
            .any(|file| rendering::has_jinja(&file.text));
        if !configs && !properties {
            return Ok(None);
        }
        let mut project = self.clone();
        if configs {
            let file = self.root.join("dbt_project.yml");
            let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
            let doc = yaml::parse(&text, &file)?;
            let value = |s: &str| render.render(&self.name, true, s);
            let doc = rendering::render_tree(
                &doc,
                &mut Vec::new(),
                &rendering::project_key_rendered,
                &value,
                &file,
                &text,
            )?;
            project.set_config_trees(&doc, &text, &file)?;
        }
        if properties {
            let parsed = Properties::parse_rendered(
                &self.root,
                &self.property_files,
                Some((&self.name, render)),
            )?;
            project.properties = OnceLock::from(Ok(parsed));
        }
        Ok(Some(project))
    }

    /// The properties YAML file at `original_file_path`, as read.
    pub fn property_file(&self, original_file_path: &str) -> Option<&ProjectFile> {
        self.property_files
            .iter()
            .find(|file| file.original_file_path == original_file_path)
    }

    /// The properties YAML of this project (not its packages), parsed the
    /// first time it is asked for; its error, every time.
    pub fn properties(&self) -> Result<&Properties> {
        self.properties
            .get_or_init(|| {
                let parsed = Properties::parse(&self.root, &self.property_files);
                crate::base::timing::phase("properties parsed");
                parsed
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Where artifacts go: `<project>/target` unless `target-path` says otherwise.
    pub fn target_dir(&self) -> PathBuf {
        self.root.join(&self.target_path)
    }

    /// Where the debug log `dbt.log` goes: `<project>/logs` unless `log-path` says otherwise.
    pub fn log_dir(&self) -> PathBuf {
        self.root.join(&self.log_path)
    }
}

/// `dispatch: [{macro_namespace: x, search_order: [a, b]}]`.
fn dispatch_config(
    value: Option<&Yaml>,
    text: &str,
    file: &Path,
) -> Result<Vec<(String, Vec<String>)>> {
    let fail = |message: String, node: &Yaml| {
        yaml::value_error(ErrorKind::Project, message, file, text, node)
    };
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(items) = value.as_sequence() else {
        return Err(fail(
            "`dispatch:` must be a list of `macro_namespace:` and `search_order:` entries".into(),
            value,
        ));
    };
    let mut config = Vec::new();
    for item in items {
        let Some(namespace) = yaml::str_field(item, "macro_namespace") else {
            return Err(fail(
                "a `dispatch:` entry has no `macro_namespace:` string".into(),
                item,
            ));
        };
        let order = match item.get("search_order") {
            Some(names)
                if names
                    .as_sequence()
                    .is_some_and(|names| names.iter().all(Yaml::is_string)) =>
            {
                yaml::string_list(Some(names))
            }
            other => {
                return Err(fail(
                    format!(
                        "the `dispatch:` entry for `{namespace}` needs a `search_order:` list of package names"
                    ),
                    other.unwrap_or(item),
                ));
            }
        };
        config.push((namespace.to_string(), order));
    }
    Ok(config)
}

/// The `{% snapshot %}` or `{% docs %}` blocks of `files`; an error names its file.
fn blocks_of(
    root: &Path,
    files: &[ProjectFile],
    parse: fn(&ProjectFile) -> Result<Vec<Block>>,
) -> Result<Vec<Block>> {
    let mut out = Vec::new();
    for file in files {
        out.extend(parse(file).map_err(|e| e.in_file(root.join(&file.original_file_path)))?);
    }
    Ok(out)
}
