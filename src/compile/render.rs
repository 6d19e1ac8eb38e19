//! Rendering at run time, for what only the database can decide
//! (`is_incremental()` is true once an incremental model's table exists) and
//! for hooks, which dbt renders when they run.

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::value::Value;
use serde_json::Map;

use super::generic_tests::GenericTest;
use super::{Compiled, Pending, compile_scope, ephemeral, pending_nodes, render_request};
use crate::error::{Error, ErrorKind, Result};
use crate::jinja::{JinjaEnv, RenderRequest};
use crate::manifest::{Manifest, Relation};
use crate::project::ProjectFile;

/// What a run's `flags` say to a node rendered as it runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFlags {
    pub full_refresh: bool,
    pub store_failures: bool,
}

/// A project's Jinja environment kept for a run, with every relation resolved.
pub struct RunRenderer<'a> {
    jinja: JinjaEnv,
    /// The root project's name: project hooks resolve `ref` from it.
    root_package: String,
    pending: HashMap<String, Pending<'a>>,
    /// The compiled manifest: the ephemeral CTEs each node needs, and `graph`.
    manifest: &'a Manifest,
    relations: Arc<HashMap<String, Relation>>,
    /// Whether hooks marked as side effects run on this target.
    side_effects: crate::target::side_effects::Policy,
    /// `graph`, built from the manifest the first time a template reads it.
    graph: std::sync::OnceLock<Value>,
    compiled: &'a Compiled,
    /// The generic tests with the package declaring each, collected again
    /// the first time one renders as it runs.
    tests: std::sync::OnceLock<Result<Vec<(GenericTest, String)>>>,
}

impl<'a> RunRenderer<'a> {
    /// Parse the project's macros again; the manifest gives the relations.
    pub fn new(compiled: &'a Compiled) -> Result<RunRenderer<'a>> {
        let project = &compiled.project;
        let pending = pending_nodes(project)?;
        let sources = &compiled.manifest.sources;
        let scope = compile_scope(
            project,
            &compiled.target,
            &compiled.cli_vars,
            &pending,
            sources,
        );
        let jinja = JinjaEnv::new(project, scope)?;
        let relations = compiled
            .manifest
            .nodes
            .values()
            .map(|n| (n.unique_id.clone(), ephemeral::ref_relation(n)))
            .collect();
        let mut vars = project.vars.clone();
        vars.extend(compiled.cli_vars.clone());
        Ok(RunRenderer {
            side_effects: crate::target::side_effects::Policy::new(&compiled.target, &vars),
            jinja,
            root_package: project.name.clone(),
            manifest: &compiled.manifest,
            pending: pending
                .into_iter()
                .map(|p| (p.unique_id.clone(), p))
                .collect(),
            relations: Arc::new(relations),
            graph: std::sync::OnceLock::new(),
            compiled,
            tests: std::sync::OnceLock::new(),
        })
    }

    /// Every generic test of the project, as the compile collected them.
    fn generic_tests(&self) -> Result<&[(GenericTest, String)]> {
        let collect = || -> Result<Vec<(GenericTest, String)>> {
            let (project, target) = (&self.compiled.project, &self.compiled.target);
            let cli_vars = &self.compiled.cli_vars;
            let renderer = crate::jinja::YamlRenderer::new(
                &super::target_context(target),
                &target.secret_keys,
                super::package_vars(project, cli_vars),
                cli_vars.clone(),
            );
            let mut tests = Vec::new();
            for package in project.all_projects() {
                let resolve = |name: &str, version: Option<&serde_json::Value>| {
                    let key = super::versions::ref_key(name, version);
                    self.jinja
                        .scope()
                        .resolve_ref(&package.name, None, &key)
                        .map(str::to_string)
                };
                let source_enabled = |id: &str| self.manifest.sources.contains_key(id);
                for test in
                    super::generic_tests::collect(package, &resolve, &source_enabled, &renderer)?
                {
                    tests.push((test, package.name.clone()));
                }
            }
            Ok(tests)
        };
        self.tests
            .get_or_init(collect)
            .as_deref()
            .map_err(Clone::clone)
    }

    /// Render; a template that reads `graph` is rendered again with the
    /// whole graph, as at compile time.
    fn render_with_graph(
        &self,
        mut request: RenderRequest<'_>,
        is_incremental: bool,
        extra: Option<Value>,
    ) -> Result<String> {
        let first = self
            .jinja
            .render_in(&request, is_incremental, extra.clone())?;
        if !first.read_graph.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(first.sql);
        }
        let m = self.manifest;
        request.graph = Some(
            self.graph
                .get_or_init(|| crate::jinja::flat_graph(&m.nodes, &m.sources, &m.exposures))
                .clone(),
        );
        Ok(self.jinja.render_in(&request, is_incremental, extra)?.sql)
    }

    fn pending(&self, unique_id: &str) -> Result<&Pending<'a>> {
        self.pending.get(unique_id).ok_or_else(|| {
            Error::new(
                ErrorKind::Usage,
                format!("no model or seed `{unique_id}` to render"),
            )
        })
    }

    /// The SQL of a model rendered with `is_incremental()` answering
    /// `is_incremental`, with the CTEs of its ephemeral parents injected as
    /// the compile injected them (an ephemeral model is never incremental,
    /// so its compiled SQL stands).
    pub fn render_node(&self, unique_id: &str, is_incremental: bool) -> Result<String> {
        let node = self.pending(unique_id)?;
        let request = render_request(node, Some(&self.relations));
        let sql = self.render_with_graph(request, is_incremental, None)?;
        let extra_ctes = &self.manifest.node(unique_id)?.extra_ctes;
        Ok(ephemeral::inject(&sql, extra_ctes))
    }

    /// A node whose SQL asks the database, rendered as it runs with
    /// `database` (the node's own connection), with its ephemeral CTEs.
    /// `graph` is given from the start: the queries run once. `flags` are
    /// the run's (`WHICH` is `run`, not `compile`).
    pub fn render_node_with_database(
        &self,
        unique_id: &str,
        is_incremental: bool,
        database: Arc<dyn crate::jinja::database::Database>,
        run: RunFlags,
    ) -> Result<String> {
        let test;
        let node = match self.pending.get(unique_id) {
            Some(node) => node,
            None => {
                let project = &self.compiled.project;
                let found = self
                    .generic_tests()?
                    .iter()
                    .find(|(t, _)| t.unique_id == unique_id);
                let package =
                    found.and_then(|(_, p)| project.all_projects().find(|a| a.name == *p));
                match (found, package) {
                    (Some((generic, _)), Some(package)) => {
                        test = super::pending_test(generic, package, project);
                        &test
                    }
                    _ => {
                        let message = format!("no model, seed or test `{unique_id}` to render");
                        return Err(Error::new(ErrorKind::Usage, message));
                    }
                }
            }
        };
        let mut request = render_request(node, Some(&self.relations));
        let m = self.manifest;
        request.graph = Some(
            self.graph
                .get_or_init(|| crate::jinja::flat_graph(&m.nodes, &m.sources, &m.exposures))
                .clone(),
        );
        let extra = minijinja::context! {
            __weir_database => crate::jinja::database::RenderDatabase::context_value(database),
            flags => Value::from_serialize(serde_json::json!({
                "FULL_REFRESH": run.full_refresh, "STORE_FAILURES": run.store_failures,
                "WHICH": "run", "FAIL_FAST": false,
            })),
        };
        let sql = self
            .jinja
            .render_in(&request, is_incremental, Some(extra))?
            .sql;
        let extra_ctes = &self.manifest.node(unique_id)?.extra_ctes;
        Ok(ephemeral::inject(&sql, extra_ctes))
    }

    /// A node's pre-hook or post-hook, rendered in the node's context
    /// (`this`, `ref`, `config`, ...); errors name the node's file.
    pub fn render_hook(&self, unique_id: &str, sql: &str) -> Result<String> {
        let node = self.pending(unique_id)?;
        let file = ProjectFile {
            original_file_path: node.file.original_file_path.clone(),
            path: node.file.path.clone(),
            text: sql.to_string(),
        };
        let mut request = render_request(node, Some(&self.relations));
        request.file = &file;
        let rendered = self.render_with_graph(request, false, None)?;
        Ok(self.side_effects.gate(sql, rendered))
    }

    /// An `on-run-start` / `on-run-end` hook of dbt_project.yml; `context`
    /// adds what only on-run-end hooks see (`results`, `schemas`, ...).
    pub fn render_project_hook(&self, sql: &str, context: Option<Value>) -> Result<String> {
        let file = ProjectFile {
            original_file_path: "dbt_project.yml".to_string(),
            path: "dbt_project.yml".to_string(),
            text: sql.to_string(),
        };
        let config = std::sync::Arc::new(Map::new());
        let request = RenderRequest {
            file: &file,
            package: &self.root_package,
            unique_id: "",
            base_config: &config,
            model: Value::from(()),
            relations: Some(&self.relations),
            generic_test: None,
            graph: None,
            execute: true,
        };
        let rendered = self.render_with_graph(request, false, context)?;
        Ok(self.side_effects.gate(sql, rendered))
    }
}
