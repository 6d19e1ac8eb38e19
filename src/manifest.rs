//! The compiled project for one target: every node with its resolved config,
//! relation and SQL, and the edges between them; written as dbt's manifest v12.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Model,
    Seed,
    Test,
    Source,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Model => "model",
            ResourceType::Seed => "seed",
            ResourceType::Test => "test",
            ResourceType::Source => "source",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a node lives in the database. Displays as dbt-postgres prints a
/// relation name: `"database"."schema"."identifier"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Relation {
    pub database: String,
    pub schema: String,
    pub identifier: String,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            quote_identifier(&self.database),
            quote_identifier(&self.schema),
            quote_identifier(&self.identifier)
        )
    }
}

/// Quote an identifier for PostgreSQL.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How a model is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Materialization {
    View,
    Table,
    Incremental,
    Ephemeral,
    Seed,
    Test,
    /// Any other name, kept so the error can name it when the node runs.
    Other(String),
}

impl Materialization {
    pub fn parse(name: &str) -> Self {
        match name {
            "view" => Materialization::View,
            "table" => Materialization::Table,
            "incremental" => Materialization::Incremental,
            "ephemeral" => Materialization::Ephemeral,
            "seed" => Materialization::Seed,
            "test" => Materialization::Test,
            other => Materialization::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Materialization::View => "view",
            Materialization::Table => "table",
            Materialization::Incremental => "incremental",
            Materialization::Ephemeral => "ephemeral",
            Materialization::Seed => "seed",
            Materialization::Test => "test",
            Materialization::Other(name) => name,
        }
    }
}

/// One column declared in a properties YAML.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Column {
    pub name: String,
    pub description: String,
    pub data_type: Option<String>,
}

/// A node of the DAG: a model, seed or test, compiled for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// `model.<package>.<name>`, `seed.<package>.<name>`.
    pub unique_id: String,
    pub name: String,
    pub resource_type: ResourceType,
    pub package_name: String,
    /// Path relative to the resource's root folder (models/, seeds/).
    pub path: String,
    /// Path relative to the project root.
    pub original_file_path: String,
    pub fqn: Vec<String>,
    /// sha256 of the file's contents.
    pub checksum: String,
    pub materialization: Materialization,
    /// The resolved config as dbt shows it in the manifest (materialized, schema, tags, ...).
    pub config: Map<String, Value>,
    pub tags: Vec<String>,
    pub description: String,
    pub columns: Vec<Column>,
    pub relation: Relation,
    pub raw_code: String,
    pub compiled_code: String,
    /// unique_ids of the nodes this one reads from, in first-use order.
    pub depends_on_nodes: Vec<String>,
    /// Macros this node calls, as `macro.<package>.<name>`.
    pub depends_on_macros: Vec<String>,
    /// `ref` calls as written: [package?, name].
    pub refs: Vec<Vec<String>>,
    /// `source` calls as written: [source_name, table_name].
    pub sources: Vec<[String; 2]>,
    /// Retries for this node from its `retries` config, if it has one.
    pub retries: Option<u32>,
}

/// A source table declared in a properties YAML.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceNode {
    /// `source.<package>.<source_name>.<table_name>`.
    pub unique_id: String,
    pub source_name: String,
    pub name: String,
    pub package_name: String,
    pub original_file_path: String,
    pub description: String,
    pub relation: Relation,
    pub fqn: Vec<String>,
}

/// Facts about the compile that produced a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub project_name: String,
    pub target_name: String,
    pub adapter_type: String,
    pub invocation_id: String,
    pub generated_at: String,
}

/// Every node of a project compiled for one target, in dependency order.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub metadata: Metadata,
    /// Models, seeds and tests keyed by unique_id.
    pub nodes: BTreeMap<String, Node>,
    pub sources: BTreeMap<String, SourceNode>,
    /// unique_id -> unique_ids of its parents (nodes and sources).
    pub parent_map: BTreeMap<String, Vec<String>>,
    /// unique_id -> unique_ids of its children.
    pub child_map: BTreeMap<String, Vec<String>>,
    /// Node unique_ids in an order where every parent comes before its children.
    pub order: Vec<String>,
}

impl Manifest {
    pub fn node(&self, unique_id: &str) -> Result<&Node> {
        self.nodes.get(unique_id).ok_or_else(|| {
            let hint = crate::error::did_you_mean(unique_id, self.nodes.keys().map(String::as_str));
            let err = Error::new(
                crate::error::ErrorKind::Usage,
                format!(
                    "no node `{unique_id}` in project `{}`",
                    self.metadata.project_name
                ),
            );
            match hint {
                Some(hint) => err.with_hint(hint),
                None => err,
            }
        })
    }

    /// The manifest in dbt's v12 JSON shape.
    pub fn to_json(&self) -> Value {
        let nodes: Map<String, Value> = self
            .nodes
            .values()
            .map(|n| (n.unique_id.clone(), node_json(n)))
            .collect();
        let sources: Map<String, Value> = self
            .sources
            .values()
            .map(|s| (s.unique_id.clone(), source_json(s)))
            .collect();
        json!({
            "metadata": {
                "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
                "dbt_version": "1.9.0",
                "generated_at": self.metadata.generated_at,
                "invocation_id": self.metadata.invocation_id,
                "env": {},
                "project_name": self.metadata.project_name,
                "project_id": null,
                "user_id": null,
                "send_anonymous_usage_stats": false,
                "adapter_type": self.metadata.adapter_type,
                "weir": {"target_name": self.metadata.target_name},
            },
            "nodes": nodes,
            "sources": sources,
            "macros": {},
            "docs": {},
            "exposures": {},
            "metrics": {},
            "groups": {},
            "selectors": {},
            "disabled": {},
            "parent_map": self.parent_map,
            "child_map": self.child_map,
            "group_map": {},
            "saved_queries": {},
            "semantic_models": {},
            "unit_tests": {},
        })
    }

    /// Write the manifest to `<target_dir>/manifest.json`.
    pub fn write(&self, target_dir: &Path) -> Result<()> {
        std::fs::create_dir_all(target_dir).map_err(|e| Error::io(target_dir, e))?;
        let path = target_dir.join("manifest.json");
        let text = serde_json::to_string(&self.to_json()).expect("manifest serializes");
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
    }
}

fn node_json(node: &Node) -> Value {
    let columns: Map<String, Value> = node
        .columns
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                json!({
                    "name": c.name, "description": c.description, "meta": {},
                    "data_type": c.data_type, "constraints": [], "quote": null, "tags": [],
                }),
            )
        })
        .collect();
    let refs: Vec<Value> = node
        .refs
        .iter()
        .map(|r| match r.as_slice() {
            [package, name] => json!({"name": name, "package": package, "version": null}),
            [name] => json!({"name": name, "package": null, "version": null}),
            _ => json!({}),
        })
        .collect();
    json!({
        "database": node.relation.database,
        "schema": node.relation.schema,
        "name": node.name,
        "resource_type": node.resource_type.as_str(),
        "package_name": node.package_name,
        "path": node.path,
        "original_file_path": node.original_file_path,
        "unique_id": node.unique_id,
        "fqn": node.fqn,
        "alias": node.relation.identifier,
        "checksum": {"name": "sha256", "checksum": node.checksum},
        "config": node.config,
        "tags": node.tags,
        "description": node.description,
        "columns": columns,
        "meta": {},
        "group": null,
        "docs": {"show": true, "node_color": null},
        "patch_path": null,
        "build_path": null,
        "unrendered_config": {},
        "created_at": 0.0,
        "config_call_dict": {},
        "relation_name": (node.materialization != Materialization::Ephemeral).then(|| node.relation.to_string()),
        "raw_code": node.raw_code,
        "language": "sql",
        "refs": refs,
        "sources": node.sources,
        "metrics": [],
        "depends_on": {"macros": node.depends_on_macros, "nodes": node.depends_on_nodes},
        "compiled_path": null,
        "compiled": true,
        "compiled_code": node.compiled_code,
        "extra_ctes_injected": true,
        "extra_ctes": [],
        "contract": {"enforced": false, "alias_types": true, "checksum": null},
        "access": "protected",
        "constraints": [],
        "version": null,
        "latest_version": null,
        "deprecation_date": null,
    })
}

fn source_json(source: &SourceNode) -> Value {
    json!({
        "database": source.relation.database,
        "schema": source.relation.schema,
        "name": source.name,
        "resource_type": "source",
        "package_name": source.package_name,
        "path": source.original_file_path,
        "original_file_path": source.original_file_path,
        "unique_id": source.unique_id,
        "fqn": source.fqn,
        "source_name": source.source_name,
        "source_description": "",
        "loader": "",
        "identifier": source.relation.identifier,
        "quoting": {},
        "loaded_at_field": null,
        "freshness": {"warn_after": {}, "error_after": {}, "filter": null},
        "external": null,
        "description": source.description,
        "columns": {},
        "meta": {},
        "source_meta": {},
        "tags": [],
        "config": {"enabled": true},
        "patch_path": null,
        "unrendered_config": {},
        "relation_name": source.relation.to_string(),
        "created_at": 0.0,
    })
}
