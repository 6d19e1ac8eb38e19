//! The library workflow both shells call: the CLI (src/cli/) and the Python
//! module (src/python/) turn their arguments into the requests of this
//! module and print or convert what comes back; neither sequences steps of
//! its own. A run is compile → select → plan → guard (protected targets,
//! CI schema records) → defer → run → run_results.json ([`run`]); an
//! orchestrator's task builds one node through the same guard
//! ([`node::run_node`]); a deploy builds a shadow set and swaps it in
//! ([`deploy`]).

pub mod deploy;
pub mod deps;
mod guard;
pub mod maintain;
pub mod node;
pub mod retry;
pub mod run;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use crate::compile::{CompileOptions, Compiled};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Manifest, Node, ResourceType};
use crate::select::{IndirectSelection, Selection};

pub use crate::target::side_effects::take_notes as take_side_effect_notes;
pub use guard::Guard;

/// Where the project is and how to compile it, as every command takes it.
#[derive(Debug, Clone, Default)]
pub struct ProjectRequest {
    /// The folder holding dbt_project.yml; None is the current folder.
    pub project_dir: Option<PathBuf>,
    pub profiles_dir: Option<PathBuf>,
    pub target: Option<String>,
    /// `--vars`: overrides the project's vars (see [`parse_vars`]).
    pub vars: Map<String, Json>,
    /// `--schema-suffix`: every schema becomes `<schema>_<suffix>` (CI).
    pub schema_suffix: Option<String>,
    /// Every schema is the blue-green deploy's shadow `<schema>__next`.
    pub shadow: bool,
}

impl ProjectRequest {
    /// The project folder: the one given, else the current folder.
    pub fn project_dir(&self) -> Result<PathBuf> {
        match &self.project_dir {
            Some(dir) => Ok(dir.clone()),
            None => std::env::current_dir().map_err(|e| Error::io(".", e)),
        }
    }

    pub fn compile_options(&self) -> Result<CompileOptions> {
        Ok(CompileOptions {
            project_dir: self.project_dir()?,
            profiles_dir: self.profiles_dir.clone(),
            target: self.target.clone(),
            vars: self.vars.clone(),
            schema_suffix: self.schema_suffix.clone(),
            shadow_suffix: self.shadow.then(|| crate::env::deploy::NEXT.to_string()),
        })
    }

    /// Compile without writing anything.
    pub fn compile(&self) -> Result<Compiled> {
        Compiled::load(&self.compile_options()?)
    }

    /// Compile and write target/manifest.json (and weir_state.json beside
    /// it, for later `--state` comparisons), as every dbt command does.
    pub fn compile_and_write(&self) -> Result<Compiled> {
        let compiled = self.compile()?;
        write_artifacts(&compiled)?;
        Ok(compiled)
    }
}

/// Which nodes: dbt's selection arguments.
#[derive(Debug, Clone, Default)]
pub struct SelectionRequest {
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    /// A selector of selectors.yml; replaces select and exclude.
    pub selector: Option<String>,
    /// `eager` (default), `cautious`, `buildable` or `empty`.
    pub indirect_selection: Option<String>,
    /// An earlier run's target/ folder, for `state:`/`result:` and defer.
    pub state: Option<PathBuf>,
    pub defer: bool,
    pub favor_state: bool,
}

impl SelectionRequest {
    /// True when the request may leave out part of the project.
    pub fn narrows(&self) -> bool {
        !self.select.is_empty() || !self.exclude.is_empty() || self.selector.is_some()
    }

    /// The selection, with the project's selectors.yml and the --state run.
    pub fn resolve(&self, compiled: &Compiled) -> Result<Selection> {
        let indirect_selection = match &self.indirect_selection {
            Some(mode) => IndirectSelection::parse(mode).map_err(|e| {
                Error::new(
                    ErrorKind::Usage,
                    format!("--indirect-selection: {}", e.message()),
                )
            })?,
            None => IndirectSelection::default(),
        };
        let state = match &self.state {
            Some(dir) => Some(Arc::new(crate::select::state::State::load(dir, compiled)?)),
            None if self.defer || self.favor_state => {
                return Err(Error::new(
                    ErrorKind::Usage,
                    "--defer and --favor-state need --state DIR: the run to read unbuilt parents from",
                ));
            }
            None => None,
        };
        Ok(Selection {
            select: self.select.clone(),
            exclude: self.exclude.clone(),
            selector: self.selector.clone(),
            indirect_selection,
            state,
            ..Selection::for_project(&compiled.project.root)?
        })
    }
}

/// target/manifest.json and weir_state.json, written at once.
pub fn write_artifacts(compiled: &Compiled) -> Result<()> {
    let (fingerprints, manifest) = crate::base::parallel::both(
        || crate::compile::artifacts::write_fingerprints(compiled),
        || {
            crate::compile::artifacts::write_manifest(
                &compiled.manifest,
                &compiled.project.target_dir(),
            )
        },
    );
    manifest?;
    fingerprints?;
    crate::base::timing::phase("manifest and fingerprints written");
    Ok(())
}

/// `--vars '{key: value}'`: a YAML (or JSON) mapping.
pub fn parse_vars(text: Option<&str>) -> Result<Map<String, Json>> {
    let Some(text) = text else {
        return Ok(Map::new());
    };
    let value = crate::project::yaml::parse(text, Path::new("--vars"))
        .map_err(|e| Error::new(ErrorKind::Usage, e.message().to_string()))?;
    match crate::project::yaml::to_json(&value) {
        Json::Object(map) => Ok(map),
        _ => Err(Error::new(
            ErrorKind::Usage,
            format!("--vars must be a YAML mapping like '{{key: value}}', got `{text}`"),
        )),
    }
}

/// `weir compile`: the project compiled and its artifacts written, with the
/// selected models' SQL under target/compiled/ (secrets masked).
pub fn compile(project: &ProjectRequest, selection: &SelectionRequest) -> Result<Compiled> {
    let mut compiled = project.compile()?;
    let selected = selection.resolve(&compiled)?.resolve(&compiled.manifest)?;
    crate::base::timing::phase("selection");
    answer_is_incremental(&mut compiled, &selected)?;
    write_artifacts(&compiled)?;
    let compiled_dir = compiled.project.target_dir().join("compiled");
    let models: Vec<&Node> = selected
        .iter()
        .map(|id| &compiled.manifest.nodes[id])
        .filter(|node| node.resource_type == ResourceType::Model && node.render_error.is_none())
        .collect();
    let written = crate::base::parallel::map(&models, |node| {
        let path = compiled_dir
            .join(&node.package_name)
            .join(&node.original_file_path);
        // Rewriting thousands of unchanged files costs more than reading them.
        if std::fs::read(&path).is_ok_and(|old| old == node.compiled_code.as_bytes()) {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let sql = crate::base::secrets::scrub(&node.compiled_code);
        crate::base::atomic_file::write(&path, sql.as_bytes()).map_err(|e| Error::io(&path, e))
    });
    written.into_iter().collect::<Result<()>>()?;
    crate::base::timing::phase("compiled files");
    // As `dbt compile`: the artifacts and the other nodes' SQL are written,
    // and a selected node that failed to render fails the command.
    let selected: std::collections::HashSet<&str> = selected.iter().map(String::as_str).collect();
    for id in &compiled.manifest.order {
        if selected.contains(id.as_str()) {
            compiled.manifest.nodes[id].check_rendered()?;
        }
    }
    Ok(compiled)
}

/// As `dbt compile`, which asks the database: a selected incremental model
/// whose table exists (and whose config asks no full refresh) is compiled
/// with `is_incremental()` true. The database is asked only when such a
/// model is selected, and never started: when it cannot be reached, the
/// compile goes on with the answer of a first build (false) and says so,
/// where dbt would fail.
fn answer_is_incremental(compiled: &mut Compiled, selected: &[String]) -> Result<()> {
    use crate::adapter::Adapter;
    use crate::adapter::postgres::{ConnectionSettings, PostgresAdapter};
    let incremental: Vec<&Node> = selected
        .iter()
        .filter_map(|id| compiled.manifest.nodes.get(id))
        .filter(|node| {
            node.materialization == crate::manifest::Materialization::Incremental
                && node.render_error.is_none()
                && node.config.get("full_refresh") != Some(&Json::Bool(true))
        })
        .collect();
    if incremental.is_empty() {
        return Ok(());
    }
    let offline = |why: &str| {
        crate::logs::emit(
            "Note",
            &format!(
                "{why}: incremental models are compiled as on their first build \
                 (is_incremental() is false)"
            ),
            serde_json::json!({}),
        );
    };
    let (target, root) = (&compiled.target, &compiled.project.root);
    let adapter = ConnectionSettings::for_running_target(target, root)
        .and_then(|settings| settings.map(|s| PostgresAdapter::connect(&s)).transpose());
    let mut adapter = match adapter {
        Ok(Some(adapter)) => adapter,
        Ok(None) => {
            offline("the local PostgreSQL is not running");
            return Ok(());
        }
        Err(error) => {
            let secrets = target.secrets();
            offline(&format!(
                "cannot reach the database ({})",
                error.scrub(&secrets)
            ));
            return Ok(());
        }
    };
    let mut existing = Vec::new();
    for node in incremental {
        let relation = &node.relation;
        let kinds = adapter.relation_kinds(&relation.schema, &[relation.identifier.as_str()])?;
        if kinds.first().map(|(_, kind)| *kind) == Some(crate::adapter::RelationKind::Table) {
            existing.push(node.unique_id.clone());
        }
    }
    if existing.is_empty() {
        return Ok(());
    }
    let renderer = crate::compile::RunRenderer::new(compiled)?;
    let rendered: Vec<(String, Result<String>)> = existing
        .into_iter()
        .map(|id| {
            let sql = renderer.render_node(&id, true);
            (id, sql)
        })
        .collect();
    drop(renderer);
    // The manifest is no longer the cached compile: written whole.
    compiled.manifest.metadata.reuse_key = None;
    for (id, sql) in rendered {
        if let Some(node) = compiled.manifest.nodes.get_mut(&id) {
            match sql {
                Ok(sql) => node.compiled_code = sql,
                Err(error) => node.render_error = Some(Box::new(error)),
            }
        }
    }
    Ok(())
}

/// `weir ls`: the listing's lines, and the selection criteria that matched
/// nothing (for warnings).
pub fn list(
    project: &ProjectRequest,
    selection: &SelectionRequest,
    options: &crate::select::list::ListOptions,
) -> Result<(Vec<String>, Vec<String>)> {
    let compiled = project.compile_and_write()?;
    let selection = selection.resolve(&compiled)?;
    let lines = crate::select::list::list(&compiled.manifest, &selection, options)?;
    let unmatched = selection.unmatched(&compiled.manifest, !lines.is_empty())?;
    Ok((lines, unmatched))
}

/// `3 models, 3 seeds, 1 source`: what a project holds, as dbt says it.
pub fn found_summary(manifest: &Manifest) -> String {
    let count = |kind: ResourceType| {
        manifest
            .nodes
            .values()
            .filter(|n| n.resource_type == kind)
            .count()
    };
    let mut parts = vec![
        plural(count(ResourceType::Model), "model"),
        plural(count(ResourceType::Seed), "seed"),
        plural(count(ResourceType::Test), "data test"),
    ];
    if !manifest.sources.is_empty() {
        parts.push(plural(manifest.sources.len(), "source"));
    }
    parts.join(", ")
}

/// `1 model`, `2 models`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}
