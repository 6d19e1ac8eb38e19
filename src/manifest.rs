//! The compiled project for one target: every node with its resolved config,
//! relation and SQL, and the edges between them; written as dbt's manifest v12.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value, json};

mod test_config;

use crate::base::quote::Quoted;
use crate::error::{Error, Result};
/// A node's columns are as its properties YAML declares them.
pub use crate::project::Column;
pub use test_config::{StoreFailuresAs, TestConfig, builds_relation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Model,
    Seed,
    Test,
    Snapshot,
    Analysis,
    Source,
    /// Only as a task of `build`: dbt lists an exposure as `no-op`.
    Exposure,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Model => "model",
            ResourceType::Seed => "seed",
            ResourceType::Test => "test",
            ResourceType::Snapshot => "snapshot",
            ResourceType::Analysis => "analysis",
            ResourceType::Source => "source",
            ResourceType::Exposure => "exposure",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a node lives in the database. Displays as dbt-postgres prints a
/// relation name: `"database"."schema"."identifier"`, each part quoted
/// unless its `quoting` says not to. Two relations are the same by their
/// names alone: quoting is how they are written, not which they are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relation {
    pub database: String,
    pub schema: String,
    pub identifier: String,
    #[serde(default, skip_serializing_if = "Quoting::is_all")]
    pub quoting: Quoting,
}

impl Relation {
    fn key(&self) -> (&str, &str, &str) {
        (&self.database, &self.schema, &self.identifier)
    }
}

impl PartialEq for Relation {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Relation {}

impl std::hash::Hash for Relation {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for Relation {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Relation {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// dbt's quote policy: which parts of a relation's name are quoted (all, by
/// default, as dbt-postgres does). `quoting:` of dbt_project.yml sets it for
/// every node; a source's and its table's `quoting:` for the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quoting {
    pub database: bool,
    pub schema: bool,
    pub identifier: bool,
}

impl Default for Quoting {
    fn default() -> Self {
        Quoting {
            database: true,
            schema: true,
            identifier: true,
        }
    }
}

impl Quoting {
    pub fn is_all(&self) -> bool {
        *self == Quoting::default()
    }

    /// This policy with the parts `overrides` (a `quoting:` mapping) sets.
    pub fn merged(mut self, overrides: &serde_json::Map<String, Value>) -> Quoting {
        for (key, value) in overrides {
            let Some(value) = value.as_bool() else {
                continue;
            };
            match key.as_str() {
                "database" => self.database = value,
                "schema" => self.schema = value,
                "identifier" => self.identifier = value,
                _ => {}
            }
        }
        self
    }
}

/// A part of a relation's name, quoted or as written.
struct Part<'a>(&'a str, bool);

impl fmt::Display for Part<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            true => Quoted(self.0).fmt(f),
            false => f.write_str(self.0),
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An ephemeral model's CTE has a name only.
        if self.database.is_empty() && self.schema.is_empty() {
            return f.write_str(&self.identifier);
        }
        write!(
            f,
            "{}.{}.{}",
            Part(&self.database, self.quoting.database),
            Part(&self.schema, self.quoting.schema),
            Part(&self.identifier, self.quoting.identifier)
        )
    }
}

/// How a model is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Materialization {
    View,
    Table,
    Incremental,
    Ephemeral,
    MaterializedView,
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
            "materialized_view" => Materialization::MaterializedView,
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
            Materialization::MaterializedView => "materialized_view",
            Materialization::Seed => "seed",
            Materialization::Test => "test",
            Materialization::Other(name) => name,
        }
    }
}

/// What a generic test node tests and with which arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestMetadata {
    /// The test's name without namespace: `unique`, `accepted_values`.
    pub name: String,
    pub namespace: Option<String>,
    /// The test macro's arguments as declared (`model` as a Jinja string).
    pub kwargs: Map<String, Value>,
    pub column_name: Option<String>,
    /// The unique_id of the model or seed the test is attached to.
    pub attached_node: String,
}

/// A `ref` call as written, and as dbt's manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RefCall {
    pub name: String,
    pub package: Option<String>,
    /// `v=` / `version=` as written: a number or a string (boxed: most
    /// refs have none, and a JSON value is large).
    pub version: Option<Box<Value>>,
}

/// A node of the DAG: a model, seed or test, compiled for one target.
// `remote = "Self"`: the derives make `Node::serialize`/`Node::deserialize`
// (the compile cache's form, see compile::cache) and leave the `Serialize`
// trait to the manifest's dbt shape below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
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
    pub refs: Vec<RefCall>,
    /// `source` calls as written: [source_name, table_name].
    pub sources: Vec<[String; 2]>,
    /// Retries for this node from its `retries` config, if it has one.
    pub retries: Option<u32>,
    /// For generic tests: what they test.
    pub test: Option<TestMetadata>,
    /// The properties YAML that describes the node (project-relative).
    pub patch_path: Option<String>,
    /// The ephemeral models injected into compiled_code: (unique_id, CTE SQL).
    pub extra_ctes: Vec<(String, String)>,
    /// A versioned model's `v`, and its model's latest version (boxed, as
    /// in [`RefCall`]).
    pub version: Option<Box<Value>>,
    pub latest_version: Option<Box<Value>>,
    /// Why the node's SQL could not be rendered (with `execute` true), when
    /// it could not: as in dbt, the node stays in the manifest, the DAG and
    /// `ls`, and fails with this error when it runs.
    pub render_error: Option<Box<Error>>,
}

impl Node {
    /// Err with the node's render error, when its SQL could not be rendered:
    /// what running or compiling it fails with.
    pub fn check_rendered(&self) -> Result<()> {
        match &self.render_error {
            Some(error) => Err(Error::clone(error)),
            None => Ok(()),
        }
    }

    /// True when rendering the node's SQL asked the database, which the
    /// compile does not have: the runner renders it as it builds it.
    pub fn needs_database(&self) -> bool {
        self.render_error
            .as_ref()
            .is_some_and(|e| e.kind() == crate::error::ErrorKind::NeedsDatabase)
    }

    /// The config as the manifest shows it: what the node sets over dbt's defaults.
    pub fn full_config(&self) -> Map<String, Value> {
        match serde_json::to_value(ConfigOut {
            set: &self.config,
            defaults: config_defaults(self.resource_type),
        }) {
            Ok(Value::Object(map)) => map,
            _ => self.config.clone(),
        }
    }

    /// dbt's `is_relational`, which gives the manifest's `relation_name`:
    /// models (but ephemeral ones), seeds and snapshots, and a test whose
    /// config says `store_failures: true` (dbt 1.11 looks at nothing else:
    /// not `store_failures_as`, and --store-failures only when the command
    /// that parses has it, which a compile never does).
    ///
    /// Not whether a run writes the relation: ask
    /// [`builds_relation`], with the run's --store-failures.
    pub fn is_relational(&self) -> bool {
        if self.resource_type == ResourceType::Analysis {
            return false;
        }
        match self.materialization {
            Materialization::Ephemeral => false,
            Materialization::Test => {
                self.config.get("store_failures").and_then(Value::as_bool) == Some(true)
            }
            _ => true,
        }
    }
}

/// A source table declared in a properties YAML (`remote = "Self"`: as [`Node`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
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
    /// The YAML tags of the source and the table, sorted.
    pub tags: Vec<String>,
    /// dbt_project.yml's `+meta`, then the source's, then the table's.
    pub meta: Map<String, Value>,
    /// The source's own `meta:`.
    pub source_meta: Map<String, Value>,
}

impl SourceNode {
    /// The config as the manifest shows it: dbt's source defaults with the
    /// resolved tags and meta.
    pub fn full_config(&self) -> Map<String, Value> {
        let mut config = SOURCE_CONFIG.clone();
        config.insert("meta".into(), Value::Object(self.meta.clone()));
        config.insert("tags".into(), json!(self.tags));
        config
    }
}

/// A source's config as dbt 1.11 writes it, before tags and meta.
static SOURCE_CONFIG: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    object(json!({
        "enabled": true, "event_time": null,
        "freshness": {"warn_after": {"count": null, "period": null},
                      "error_after": {"count": null, "period": null}, "filter": null},
        "loaded_at_field": null, "loaded_at_query": null, "meta": {}, "tags": [],
        "static_analysis": null,
    }))
});

/// An exposure: something downstream of the project (a dashboard, a
/// notebook, an application) and the nodes it reads (`remote = "Self"`: as
/// [`Node`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct Exposure {
    /// `exposure.<package>.<name>`.
    pub unique_id: String,
    pub name: String,
    pub package_name: String,
    /// The properties file, relative to its model path.
    pub path: String,
    pub original_file_path: String,
    pub fqn: Vec<String>,
    /// dashboard, notebook, analysis, ml or application.
    pub kind: String,
    /// `email` and `name` (null when not given), then any other keys.
    pub owner: Map<String, Value>,
    pub description: String,
    pub label: Option<String>,
    pub maturity: Option<String>,
    pub url: Option<String>,
    pub tags: Vec<String>,
    pub meta: Map<String, Value>,
    /// enabled, tags and meta as resolved.
    pub config: Map<String, Value>,
    /// The config as written in dbt_project.yml and the `config:` block.
    pub unrendered_config: Map<String, Value>,
    /// Sources first, then refs, in the order written (as dbt lists them).
    pub depends_on_nodes: Vec<String>,
    pub refs: Vec<RefCall>,
    /// `source` calls as written: [source_name, table_name].
    pub sources: Vec<[String; 2]>,
}

/// A `{% docs %}` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocBlock {
    pub unique_id: String,
    pub name: String,
    /// Always `doc`.
    pub resource_type: String,
    pub package_name: String,
    pub path: String,
    pub original_file_path: String,
    pub block_contents: String,
}

/// Facts about the compile that produced a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub project_name: String,
    pub target_name: String,
    pub adapter_type: String,
    pub invocation_id: String,
    pub generated_at: String,
    /// The compile cache's key when this compile may be reused: an artifact
    /// last written from the same key is rewritten only where it differs.
    pub reuse_key: Option<String>,
    /// Whether this manifest is a reused compile rather than a fresh one.
    pub reused: bool,
}

/// Every node of a project compiled for one target, in dependency order.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub metadata: Metadata,
    /// Models, seeds and tests keyed by unique_id.
    pub nodes: BTreeMap<String, Node>,
    pub sources: BTreeMap<String, SourceNode>,
    pub docs: BTreeMap<String, DocBlock>,
    pub exposures: BTreeMap<String, Exposure>,
    /// unique_id -> unique_ids of its parents (nodes and sources).
    pub parent_map: BTreeMap<String, Vec<String>>,
    /// unique_id -> unique_ids of its children.
    pub child_map: BTreeMap<String, Vec<String>>,
    /// Node unique_ids in an order where every parent comes before its children.
    pub order: Vec<String>,
    /// Nodes disabled by their config (`enabled: false`), as dbt keeps them
    /// in the manifest's `disabled`: never selected, planned or run.
    pub disabled: BTreeMap<String, Node>,
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

    /// The manifest in dbt's v12 JSON shape, as a JSON value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(ManifestOut::new(self, &self.nodes)).expect("manifest serializes")
    }

    /// Write the manifest as dbt's v12 JSON to `writer`, its nodes
    /// serialized on all cores: a 10,000-model manifest is tens of megabytes.
    pub fn to_writer(&self, writer: impl std::io::Write) -> serde_json::Result<()> {
        serde_json::to_writer(writer, &ManifestOut::new(self, ParallelNodes(&self.nodes)))
    }
}

/// dbt's default config of each kind of node. A node stores only the config
/// it sets; the manifest shows every key, as dbt writes it.
pub fn config_defaults(resource_type: ResourceType) -> &'static Map<String, Value> {
    static MODEL: LazyLock<Map<String, Value>> =
        LazyLock::new(|| defaults_with(json!({"access": "protected", "freshness": null})));
    static SEED: LazyLock<Map<String, Value>> =
        LazyLock::new(|| defaults_with(json!({"delimiter": ",", "quote_columns": null})));
    static TEST: LazyLock<Map<String, Value>> = LazyLock::new(|| {
        object(json!({
            "enabled": true, "alias": null, "schema": "dbt_test__audit", "database": null, "tags": [],
            "meta": {}, "group": null, "static_analysis": null, "materialized": "test", "severity": "ERROR", "store_failures": null,
            "store_failures_as": null, "where": null, "limit": null, "fail_calc": "count(*)",
            "warn_if": "!= 0", "error_if": "!= 0",
        }))
    });
    static SNAPSHOT: LazyLock<Map<String, Value>> = LazyLock::new(|| {
        defaults_with(json!({
            "materialized": "snapshot", "strategy": null, "target_schema": null, "target_database": null,
            "updated_at": null, "check_cols": null,
            "snapshot_meta_column_names": {
                "dbt_valid_to": null, "dbt_valid_from": null, "dbt_scd_id": null,
                "dbt_updated_at": null, "dbt_is_deleted": null,
            },
            "dbt_valid_to_current": null,
        }))
    });
    static ANALYSIS: LazyLock<Map<String, Value>> = LazyLock::new(|| defaults_with(json!({})));
    match resource_type {
        ResourceType::Seed => &SEED,
        ResourceType::Test => &TEST,
        ResourceType::Snapshot => &SNAPSHOT,
        ResourceType::Analysis => &ANALYSIS,
        _ => &MODEL,
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn defaults_with(extra: Value) -> Map<String, Value> {
    let mut defaults = object(json!({
        "enabled": true, "alias": null, "schema": null, "database": null, "tags": [], "meta": {},
        "group": null, "static_analysis": null, "materialized": "view", "incremental_strategy": null,
        "batch_size": null, "lookback": 1, "begin": null, "persist_docs": {}, "post-hook": [],
        "pre-hook": [], "quoting": {}, "column_types": {}, "full_refresh": null, "unique_key": null,
        "on_schema_change": "ignore", "on_configuration_change": "apply", "grants": {}, "packages": [],
        "docs": {"show": true, "node_color": null}, "contract": {"enforced": false, "alias_types": true},
        "event_time": null, "concurrent_batches": null,
    }));
    defaults.extend(object(extra));
    defaults
}

/// A node's config with dbt's defaults filled in.
struct ConfigOut<'a> {
    set: &'a Map<String, Value>,
    defaults: &'static Map<String, Value>,
}

impl Serialize for ConfigOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let defaults = self
            .defaults
            .iter()
            .map(|(key, default)| (key, self.set.get(key).unwrap_or(default)));
        let extra = self
            .set
            .iter()
            .filter(|(key, _)| !self.defaults.contains_key(*key));
        serializer.collect_map(defaults.chain(extra))
    }
}

/// `{}` in JSON.
#[derive(Serialize)]
struct EmptyMap {}

const NO_ITEMS: [(); 0] = [];

/// The nodes, serialized on all cores a batch at a time: they are most of a
/// manifest, and a batch bounds the memory the serialized text takes.
struct ParallelNodes<'a>(&'a BTreeMap<String, Node>);

impl Serialize for ParallelNodes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap};
        const BATCH: usize = 2048;
        let nodes: Vec<&Node> = self.0.values().collect();
        let mut map = serializer.serialize_map(Some(nodes.len()))?;
        for batch in nodes.chunks(BATCH) {
            let serialized = crate::base::parallel::map(batch, serde_json::value::to_raw_value);
            for (node, json) in batch.iter().zip(serialized) {
                map.serialize_entry(&node.unique_id, &json.map_err(S::Error::custom)?)?;
            }
        }
        map.end()
    }
}

#[derive(Serialize)]
struct ManifestOut<'a, Nodes: Serialize = &'a BTreeMap<String, Node>> {
    metadata: MetadataOut<'a>,
    nodes: Nodes,
    sources: &'a BTreeMap<String, SourceNode>,
    macros: EmptyMap,
    docs: &'a BTreeMap<String, DocBlock>,
    exposures: &'a BTreeMap<String, Exposure>,
    metrics: EmptyMap,
    groups: EmptyMap,
    selectors: EmptyMap,
    disabled: BTreeMap<&'a str, [&'a Node; 1]>,
    parent_map: &'a BTreeMap<String, Vec<String>>,
    child_map: &'a BTreeMap<String, Vec<String>>,
    group_map: EmptyMap,
    saved_queries: EmptyMap,
    semantic_models: EmptyMap,
    unit_tests: EmptyMap,
}

impl<'a, Nodes: Serialize> ManifestOut<'a, Nodes> {
    fn new(manifest: &'a Manifest, nodes: Nodes) -> Self {
        let m = &manifest.metadata;
        ManifestOut {
            metadata: MetadataOut {
                dbt_schema_version: "https://schemas.getdbt.com/dbt/manifest/v12.json",
                dbt_version: crate::base::DBT_VERSION,
                generated_at: &m.generated_at,
                invocation_id: &m.invocation_id,
                env: EmptyMap {},
                project_name: &m.project_name,
                project_id: None,
                user_id: None,
                send_anonymous_usage_stats: false,
                adapter_type: &m.adapter_type,
            },
            nodes,
            sources: &manifest.sources,
            macros: EmptyMap {},
            docs: &manifest.docs,
            exposures: &manifest.exposures,
            metrics: EmptyMap {},
            groups: EmptyMap {},
            selectors: EmptyMap {},
            disabled: manifest
                .disabled
                .iter()
                .map(|(id, node)| (id.as_str(), [node]))
                .collect(),
            parent_map: &manifest.parent_map,
            child_map: &manifest.child_map,
            group_map: EmptyMap {},
            saved_queries: EmptyMap {},
            semantic_models: EmptyMap {},
            unit_tests: EmptyMap {},
        }
    }
}

#[derive(Serialize)]
struct MetadataOut<'a> {
    dbt_schema_version: &'static str,
    dbt_version: &'static str,
    generated_at: &'a str,
    invocation_id: &'a str,
    env: EmptyMap,
    project_name: &'a str,
    project_id: Option<()>,
    user_id: Option<()>,
    send_anonymous_usage_stats: bool,
    adapter_type: &'a str,
}

#[derive(Serialize)]
struct Checksum<'a> {
    name: &'static str,
    checksum: &'a str,
}

#[derive(Serialize)]
struct Docs {
    show: bool,
    node_color: Option<()>,
}

#[derive(Serialize)]
struct Contract {
    enforced: bool,
    alias_types: bool,
    checksum: Option<()>,
}

#[derive(Serialize)]
struct ColumnOut<'a> {
    name: &'a str,
    description: &'a str,
    meta: EmptyMap,
    data_type: Option<&'a str>,
    constraints: [(); 0],
    quote: Option<()>,
    tags: [(); 0],
}

/// Columns as dbt writes them: a mapping from name to column.
struct ColumnsOut<'a>(&'a [Column]);

impl Serialize for ColumnsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|c| {
            (
                &c.name,
                ColumnOut {
                    name: &c.name,
                    description: &c.description,
                    meta: EmptyMap {},
                    data_type: c.data_type.as_deref(),
                    constraints: NO_ITEMS,
                    quote: None,
                    tags: NO_ITEMS,
                },
            )
        }))
    }
}

#[derive(Serialize)]
struct NodeOut<'a> {
    database: &'a str,
    schema: &'a str,
    name: &'a str,
    resource_type: &'static str,
    package_name: &'a str,
    path: &'a str,
    original_file_path: &'a str,
    unique_id: &'a str,
    fqn: &'a [String],
    alias: &'a str,
    checksum: Checksum<'a>,
    config: ConfigOut<'a>,
    tags: &'a [String],
    description: &'a str,
    columns: ColumnsOut<'a>,
    meta: EmptyMap,
    group: Option<()>,
    docs: Docs,
    patch_path: Option<String>,
    build_path: Option<()>,
    unrendered_config: EmptyMap,
    created_at: f64,
    config_call_dict: EmptyMap,
    relation_name: Option<String>,
    raw_code: &'a str,
    depends_on: DependsOn<'a>,
    /// Seeds have a root_path and none of the compiled fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    root_path: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    compiled: Option<CompiledOut<'a>>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    model: Option<ModelOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_metadata: Option<TestMetadataOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attached_node: Option<&'a str>,
}

/// What every node but a seed has: how its SQL was compiled.
#[derive(Serialize)]
struct CompiledOut<'a> {
    language: &'static str,
    refs: &'a [RefCall],
    sources: &'a [[String; 2]],
    metrics: [(); 0],
    compiled_path: Option<()>,
    compiled: bool,
    compiled_code: &'a str,
    extra_ctes_injected: bool,
    extra_ctes: Vec<ExtraCte<'a>>,
    contract: Contract,
}

#[derive(Serialize)]
struct ExtraCte<'a> {
    id: &'a str,
    sql: &'a str,
}

/// What only models have.
#[derive(Serialize)]
struct ModelOut<'a> {
    access: &'static str,
    constraints: [(); 0],
    version: Option<&'a Value>,
    latest_version: Option<&'a Value>,
    deprecation_date: Option<()>,
}

/// Seeds list only the macros they depend on.
#[derive(Serialize)]
struct DependsOn<'a> {
    macros: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<&'a [String]>,
}

#[derive(Serialize)]
struct TestMetadataOut<'a> {
    name: &'a str,
    kwargs: &'a Map<String, Value>,
    namespace: Option<&'a str>,
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let seed = self.resource_type == ResourceType::Seed;
        NodeOut {
            database: &self.relation.database,
            schema: &self.relation.schema,
            name: &self.name,
            resource_type: self.resource_type.as_str(),
            package_name: &self.package_name,
            path: &self.path,
            original_file_path: &self.original_file_path,
            unique_id: &self.unique_id,
            fqn: &self.fqn,
            alias: &self.relation.identifier,
            checksum: Checksum {
                name: if self.checksum.is_empty() {
                    "none"
                } else {
                    "sha256"
                },
                checksum: &self.checksum,
            },
            config: ConfigOut {
                set: &self.config,
                defaults: config_defaults(self.resource_type),
            },
            tags: &self.tags,
            description: &self.description,
            columns: ColumnsOut(&self.columns),
            meta: EmptyMap {},
            group: None,
            docs: Docs {
                show: true,
                node_color: None,
            },
            patch_path: self
                .patch_path
                .as_ref()
                .map(|p| format!("{}://{p}", self.package_name)),
            build_path: None,
            unrendered_config: EmptyMap {},
            created_at: 0.0,
            config_call_dict: EmptyMap {},
            relation_name: self.is_relational().then(|| self.relation.to_string()),
            raw_code: &self.raw_code,
            depends_on: DependsOn {
                macros: &self.depends_on_macros,
                nodes: (!seed).then_some(self.depends_on_nodes.as_slice()),
            },
            root_path: seed.then_some(""),
            compiled: (!seed).then(|| CompiledOut {
                language: "sql",
                refs: &self.refs,
                sources: &self.sources,
                metrics: NO_ITEMS,
                compiled_path: None,
                compiled: self.render_error.is_none(),
                compiled_code: &self.compiled_code,
                extra_ctes_injected: true,
                extra_ctes: self
                    .extra_ctes
                    .iter()
                    .map(|(id, sql)| ExtraCte { id, sql })
                    .collect(),
                contract: Contract {
                    enforced: false,
                    alias_types: true,
                    checksum: None,
                },
            }),
            model: (self.resource_type == ResourceType::Model).then_some(ModelOut {
                access: "protected",
                constraints: NO_ITEMS,
                version: self.version.as_deref(),
                latest_version: self.latest_version.as_deref(),
                deprecation_date: None,
            }),
            test_metadata: self.test.as_ref().map(|t| TestMetadataOut {
                name: &t.name,
                kwargs: &t.kwargs,
                namespace: t.namespace.as_deref(),
            }),
            column_name: self.test.as_ref().and_then(|t| t.column_name.as_deref()),
            attached_node: self.test.as_ref().map(|t| t.attached_node.as_str()),
        }
        .serialize(serializer)
    }
}

impl Serialize for Exposure {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        json!({
            "name": self.name,
            "resource_type": "exposure",
            "package_name": self.package_name,
            "path": self.path,
            "original_file_path": self.original_file_path,
            "unique_id": self.unique_id,
            "fqn": self.fqn,
            "type": self.kind,
            "owner": self.owner,
            "description": self.description,
            "label": self.label,
            "maturity": self.maturity,
            "meta": self.meta,
            "tags": self.tags,
            "config": self.config,
            "unrendered_config": self.unrendered_config,
            "url": self.url,
            "depends_on": {"macros": [], "nodes": self.depends_on_nodes},
            "refs": self.refs,
            "sources": self.sources,
            "metrics": [],
            "created_at": 0.0,
        })
        .serialize(serializer)
    }
}

impl Serialize for SourceNode {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        json!({
            "database": self.relation.database,
            "schema": self.relation.schema,
            "name": self.name,
            "resource_type": "source",
            "package_name": self.package_name,
            "path": self.original_file_path,
            "original_file_path": self.original_file_path,
            "unique_id": self.unique_id,
            "fqn": self.fqn,
            "source_name": self.source_name,
            "source_description": "",
            "loader": "",
            "identifier": self.relation.identifier,
            "quoting": {},
            "loaded_at_field": null,
            "freshness": {"warn_after": {}, "error_after": {}, "filter": null},
            "external": null,
            "description": self.description,
            "columns": {},
            "meta": self.meta,
            "source_meta": self.source_meta,
            "tags": self.tags,
            "config": self.full_config(),
            "patch_path": null,
            "unrendered_config": {},
            "relation_name": self.relation.to_string(),
            "created_at": 0.0,
        })
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::Relation;

    #[test]
    fn relations_quote_each_part() {
        let relation = Relation {
            quoting: Default::default(),
            database: "db".into(),
            schema: "a\"b".into(),
            identifier: "t".into(),
        };
        assert_eq!(relation.to_string(), "\"db\".\"a\"\"b\".\"t\"");
    }
}
