//! Rendering nodes again at run time, for what only the database can decide:
//! `is_incremental()` is true once an incremental model's table exists.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Compiled, Pending, compile_scope, pending_nodes, render_request};
use crate::error::{Error, ErrorKind, Result};
use crate::jinja::JinjaEnv;
use crate::manifest::Relation;

/// A project's Jinja environment kept for a run, with every relation resolved.
pub struct RunRenderer<'a> {
    jinja: JinjaEnv,
    pending: HashMap<String, Pending<'a>>,
    relations: Arc<HashMap<String, Relation>>,
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
            .map(|n| (n.unique_id.clone(), n.relation.clone()))
            .collect();
        Ok(RunRenderer {
            jinja,
            pending: pending
                .into_iter()
                .map(|p| (p.unique_id.clone(), p))
                .collect(),
            relations: Arc::new(relations),
        })
    }

    /// The SQL of a model rendered with `is_incremental()` answering `is_incremental`.
    pub fn render_node(&self, unique_id: &str, is_incremental: bool) -> Result<String> {
        let node = self.pending.get(unique_id).ok_or_else(|| {
            Error::new(
                ErrorKind::Usage,
                format!("no model `{unique_id}` to render"),
            )
        })?;
        let request = render_request(node, Some(&self.relations));
        Ok(self
            .jinja
            .render_with_incremental(&request, is_incremental)?
            .sql)
    }
}
