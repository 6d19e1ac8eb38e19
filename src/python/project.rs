//! `weir.Project`: a project compiled once for one target, with its nodes,
//! selection, per-node tasks and `run_node`; plus the `Node` and `Task` views.

use std::path::PathBuf;
use std::sync::Arc;

use postgres::SimpleQueryMessage;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::convert;
use crate::compile::Compiled;
use crate::error::{Error, ErrorKind, did_you_mean};
use crate::manifest::Node as ManifestNode;
use crate::plan::{Plan, RetryPolicy, Task as PlanTask};
use crate::results::Status;
use crate::workflow::node::NodeOptions;
use crate::workflow::{Guard, ProjectRequest};

/// A dbt project compiled for one target. Compiling happens once, in the
/// constructor; every other method reads the result (or runs one node).
#[pyclass(frozen, module = "weir")]
pub struct Project {
    compiled: Arc<Compiled>,
    /// The write-guard `run_node` passes, as `weir run` does.
    guard: Arc<Guard>,
}

#[pymethods]
impl Project {
    /// Read and compile the project at `project_dir` for `target` (the
    /// profile's default target when None). `vars` is a dict, or a YAML/JSON
    /// string as dbt's `--vars` takes it. With `shadow=True` every schema is
    /// the blue-green deploy's shadow `<schema>__next`.
    #[new]
    #[pyo3(signature = (project_dir, target=None, profiles_dir=None, vars=None, shadow=false))]
    fn new(
        py: Python<'_>,
        project_dir: PathBuf,
        target: Option<String>,
        profiles_dir: Option<PathBuf>,
        vars: Option<&Bound<'_, PyAny>>,
        shadow: bool,
    ) -> PyResult<Self> {
        let request = ProjectRequest {
            project_dir: Some(project_dir),
            profiles_dir,
            target,
            vars: convert::vars(vars)?,
            shadow,
            ..ProjectRequest::default()
        };
        let compiled = py.detach(|| request.compile())?;
        Ok(Project {
            compiled: Arc::new(compiled),
            guard: Arc::new(Guard::new()),
        })
    }

    /// The project's name (`name:` of dbt_project.yml).
    #[getter]
    fn name(&self) -> &str {
        &self.compiled.project.name
    }

    /// The name of the target the project was compiled for.
    #[getter]
    fn target_name(&self) -> &str {
        &self.compiled.target.name
    }

    /// The folder holding dbt_project.yml.
    #[getter]
    fn project_dir(&self) -> PathBuf {
        self.compiled.project.root.clone()
    }

    /// The schema the target builds into.
    #[getter]
    fn target_schema(&self) -> &str {
        &self.compiled.target.schema
    }

    /// Every model, seed and data test, parents before children.
    #[getter]
    fn nodes(&self) -> Vec<Node> {
        let manifest = &self.compiled.manifest;
        manifest
            .order
            .iter()
            .map(|id| Node::from_manifest(&manifest.nodes[id]))
            .collect()
    }

    /// The node with this unique_id (`model.shop.orders`) or name (`orders`).
    fn node(&self, name_or_id: &str) -> PyResult<Node> {
        let manifest = &self.compiled.manifest;
        let found = manifest
            .nodes
            .get(name_or_id)
            .or_else(|| manifest.nodes.values().find(|n| n.name == name_or_id));
        match found {
            Some(node) => Ok(Node::from_manifest(node)),
            None => {
                let err = Error::new(
                    ErrorKind::Usage,
                    format!(
                        "no node `{name_or_id}` in project `{}`",
                        manifest.metadata.project_name
                    ),
                );
                let names = manifest.nodes.values().map(|n| n.name.as_str());
                Err(match did_you_mean(name_or_id, names) {
                    Some(hint) => err.with_hint(hint),
                    None => err,
                }
                .into())
            }
        }
    }

    /// unique_ids chosen by dbt's selection syntax (`+orders`, `tag:marts`,
    /// `path:models/staging`...), parents first. Each of `select` and
    /// `exclude` is a string or a list of strings; no `select` means all.
    /// `selector` names a selector of selectors.yml (used instead of
    /// select/exclude); `indirect_selection` is dbt's `eager` (the default),
    /// `cautious`, `buildable` or `empty`: which data tests come along.
    #[pyo3(signature = (select=None, exclude=None, selector=None, indirect_selection=None))]
    fn select(
        &self,
        select: Option<&Bound<'_, PyAny>>,
        exclude: Option<&Bound<'_, PyAny>>,
        selector: Option<String>,
        indirect_selection: Option<&str>,
    ) -> PyResult<Vec<String>> {
        let selection = self.selection(select, exclude, selector, indirect_selection)?;
        Ok(selection.resolve(&self.compiled.manifest)?)
    }

    /// One task per selected node that runs (ephemeral models are inlined),
    /// parents first, with the upstream tasks it waits for and its retries:
    /// the node's `retries` config, else `retries` given here, else the
    /// target's policy (prod 3, staging 1, others 0).
    /// Selection arguments as for `select()`.
    #[pyo3(signature = (select=None, exclude=None, retries=None, selector=None, indirect_selection=None))]
    fn tasks(
        &self,
        select: Option<&Bound<'_, PyAny>>,
        exclude: Option<&Bound<'_, PyAny>>,
        retries: Option<u32>,
        selector: Option<String>,
        indirect_selection: Option<&str>,
    ) -> PyResult<Vec<Task>> {
        let selection = self.selection(select, exclude, selector, indirect_selection)?;
        let mut policy = RetryPolicy::for_target(&self.compiled.target.name);
        if let Some(retries) = retries {
            policy.default_retries = retries;
        }
        let plan = Plan::build(&self.compiled.manifest, &selection, &policy)?;
        let manifest = &self.compiled.manifest;
        Ok(plan
            .tasks
            .iter()
            .map(|task| Task::from_plan(task, &manifest.nodes[&task.unique_id]))
            .collect())
    }

    /// Build one node on the target, once (no retry here: the orchestrator
    /// retries), after the checks `weir run` makes: a protected target runs
    /// only in CI or where WEIR_ALLOW_PROTECTED is set, and nothing is written
    /// into a schema another protected target owns (UsageError, before any
    /// SQL). `store_failures` is `weir test --store-failures`. A project
    /// compiled with `shadow=True` builds only as a step of a deploy: pass
    /// `deploy_id`, the id its prepare step took the deploy lease with.
    /// Returns a dict:
    /// unique_id, status, message, code, rows_affected, execution_time,
    /// relation_name, attempts, started_at, completed_at. Raises
    /// TransientError when a retry could succeed, DatabaseError when it
    /// could not.
    #[pyo3(signature = (unique_id, store_failures=false, deploy_id=None))]
    fn run_node<'py>(
        &self,
        py: Python<'py>,
        unique_id: &str,
        store_failures: bool,
        deploy_id: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (compiled, guard) = (Arc::clone(&self.compiled), Arc::clone(&self.guard));
        let options = NodeOptions {
            store_failures,
            deploy_id,
        };
        let result =
            py.detach(|| crate::workflow::node::run_node(&compiled, &guard, unique_id, options))?;
        if result.status == Status::Error
            && let Some(err) = result.error.clone()
        {
            return Err(err.into());
        }
        convert::node_result(py, &result)
    }

    /// Run `sql` (one or more statements, no parameters) on the target and
    /// return the rows they return, every value
    /// as text or None. For checks, tests and setup, not for building models.
    fn query(&self, py: Python<'_>, sql: &str) -> PyResult<Vec<Vec<Option<String>>>> {
        let compiled = Arc::clone(&self.compiled);
        Ok(py.detach(|| query(&compiled, sql))?)
    }

    /// The manifest as dbt's manifest.json (v12) text.
    fn manifest_json(&self) -> String {
        crate::base::secrets::scrub_json(&self.compiled.manifest.to_json().to_string())
    }

    /// Write `<project>/<target-path>/manifest.json`.
    fn write_manifest(&self, py: Python<'_>) -> PyResult<()> {
        let compiled = Arc::clone(&self.compiled);
        Ok(py.detach(|| {
            crate::compile::artifacts::write_manifest(
                &compiled.manifest,
                &compiled.project.target_dir(),
            )
        })?)
    }

    fn __repr__(&self) -> String {
        format!(
            "<weir.Project {} target={} nodes={}>",
            self.compiled.project.name,
            self.compiled.target.name,
            self.compiled.manifest.nodes.len()
        )
    }
}

impl Project {
    fn selection(
        &self,
        select: Option<&Bound<'_, PyAny>>,
        exclude: Option<&Bound<'_, PyAny>>,
        selector: Option<String>,
        indirect_selection: Option<&str>,
    ) -> PyResult<crate::select::Selection> {
        convert::selection(
            &self.compiled.project.root,
            select,
            exclude,
            selector,
            indirect_selection,
        )
    }
}

/// A model, seed or data test of a compiled project.
#[pyclass(frozen, module = "weir", get_all)]
pub struct Node {
    /// `model.<project>.<name>`, `seed.<project>.<name>`.
    unique_id: String,
    name: String,
    /// `model`, `seed` or `test`.
    resource_type: String,
    /// unique_ids of the nodes and sources this node reads.
    depends_on: Vec<String>,
    /// `view`, `table`, `incremental`, `ephemeral`, `seed`...
    materialization: String,
    /// `"database"."schema"."identifier"`; None for an ephemeral model or a
    /// test that stores no failures.
    relation_name: Option<String>,
    schema: String,
    tags: Vec<String>,
    /// The node's own `retries` config, if any.
    retries: Option<u32>,
    original_file_path: String,
    fqn: Vec<String>,
    description: String,
    compiled_code: String,
}

impl Node {
    fn from_manifest(node: &ManifestNode) -> Node {
        Node {
            unique_id: node.unique_id.clone(),
            name: node.name.clone(),
            resource_type: node.resource_type.as_str().to_string(),
            depends_on: node.depends_on_nodes.clone(),
            materialization: node.materialization.as_str().to_string(),
            relation_name: run_builds_relation(node).then(|| node.relation.to_string()),
            schema: node.relation.schema.clone(),
            tags: node.tags.clone(),
            retries: node.retries,
            original_file_path: node.original_file_path.clone(),
            fqn: node.fqn.clone(),
            description: node.description.clone(),
            compiled_code: crate::base::secrets::scrub(&node.compiled_code).into_owned(),
        }
    }
}

#[pymethods]
impl Node {
    fn __repr__(&self) -> String {
        format!("<weir.Node {} ({})>", self.unique_id, self.materialization)
    }
}

/// One node to run on the target, as an orchestrator schedules it.
#[pyclass(frozen, module = "weir", get_all)]
pub struct Task {
    unique_id: String,
    name: String,
    resource_type: String,
    materialization: String,
    /// `"database"."schema"."identifier"`; None for a test that stores no failures.
    relation_name: Option<String>,
    /// unique_ids of the tasks that must finish first.
    upstream: Vec<String>,
    /// How many times the orchestrator retries the task after a transient failure.
    retries: u32,
    tags: Vec<String>,
}

impl Task {
    fn from_plan(task: &PlanTask, node: &ManifestNode) -> Task {
        Task {
            unique_id: task.unique_id.clone(),
            name: task.name.clone(),
            resource_type: task.resource_type.as_str().to_string(),
            materialization: task.materialization.as_str().to_string(),
            relation_name: run_builds_relation(node).then(|| task.relation.to_string()),
            upstream: task.upstream.clone(),
            retries: task.retries,
            tags: task.tags.clone(),
        }
    }
}

#[pymethods]
impl Task {
    fn __repr__(&self) -> String {
        format!(
            "<weir.Task {} retries={} upstream={:?}>",
            self.unique_id, self.retries, self.upstream
        )
    }
}

/// `Project.query`: rows as text, through the same connection code as `run_node`.
fn query(compiled: &Compiled, sql: &str) -> crate::Result<Vec<Vec<Option<String>>>> {
    let secrets = compiled.target.secrets();
    let mut adapter = crate::adapter::connect(&compiled.target, &compiled.project.root)
        .map_err(|e| e.scrub(&secrets))?;
    let messages = adapter
        .client()
        .simple_query(sql)
        .map_err(|e| crate::adapter::classify(&e).scrub(&secrets))?;
    let mut rows = Vec::new();
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message {
            rows.push(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// Whether `run_node` writes the node's relation: it is given no
/// --store-failures, so a test does only when its config stores failures.
fn run_builds_relation(node: &ManifestNode) -> bool {
    crate::manifest::builds_relation(node, false)
}
