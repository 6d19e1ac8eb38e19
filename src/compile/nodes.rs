//! The nodes a project declares before any Jinja runs: the models, seeds,
//! tests and sources of the project and of its packages, with their configs
//! from dbt_project.yml and properties YAML.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use super::generic_tests::GenericTest;
use super::versions::{self, Versioned};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Relation, ResourceType, SourceNode};
use crate::project::config::merge_config;
use crate::project::properties::{ModelProperties, Properties};
use crate::project::{Project, ProjectFile};
use crate::target::Target;

/// A node before rendering: identity and config from the project files.
pub struct Pending<'a> {
    pub file: &'a ProjectFile,
    /// What the checksum covers: the file, or for a snapshot block the whole
    /// file it is in.
    pub checksum_text: &'a str,
    /// The project or package that declares the node.
    pub package: &'a Project,
    pub unique_id: String,
    pub name: String,
    pub resource_type: ResourceType,
    pub fqn: Vec<String>,
    pub base_config: Arc<Map<String, Json>>,
    /// Set for generic tests.
    pub test: Option<&'a GenericTest>,
    /// Set for a version of a versioned model (boxed: most nodes are not).
    pub version: Option<Box<Versioned<'a>>>,
}

impl Pending<'_> {
    /// The names `ref` finds the node by.
    pub fn ref_names(&self) -> Vec<String> {
        match &self.version {
            Some(version) => version.ref_names(),
            None => vec![self.name.clone()],
        }
    }
}

/// What the properties YAML says about the node `name` of this type.
pub fn properties_of<'a>(
    properties: &'a Properties,
    resource_type: ResourceType,
    name: &str,
) -> Option<&'a ModelProperties> {
    match resource_type {
        ResourceType::Model => properties.models.get(name),
        ResourceType::Seed => properties.seeds.get(name),
        ResourceType::Snapshot => properties.snapshots.get(name),
        ResourceType::Analysis => properties.analyses.get(name),
        _ => None,
    }
}

/// Models and seeds of the project and its packages. A package node's config
/// comes from the package's dbt_project.yml, overridden by the root's.
pub fn pending_nodes(root: &Project) -> Result<Vec<Pending<'_>>> {
    let mut pending = Vec::new();
    for package in root.all_projects() {
        let overrides = (package.name != root.name).then_some(root);
        pending.extend(package_nodes(package, overrides)?);
    }
    Ok(pending)
}

fn package_nodes<'a>(package: &'a Project, root: Option<&'a Project>) -> Result<Vec<Pending<'a>>> {
    let mut declared: Vec<(ResourceType, String, &ProjectFile, &str)> = Vec::new();
    for file in &package.models {
        declared.push((
            ResourceType::Model,
            file.stem().to_string(),
            file,
            &file.text,
        ));
    }
    for file in &package.seeds {
        declared.push((
            ResourceType::Seed,
            file.stem().to_string(),
            file,
            &file.text,
        ));
    }
    for block in &package.snapshots {
        declared.push((
            ResourceType::Snapshot,
            block.name.clone(),
            &block.file,
            &block.file_text,
        ));
    }
    // Snapshots defined in properties YAML (dbt 1.9+): as in dbt, their
    // checksum is their YAML file's.
    for (name, properties) in &package.properties()?.snapshots {
        if let Some(sql) = &properties.snapshot_sql {
            let yaml = package.property_file(&sql.original_file_path);
            let checksum_text = yaml.map_or(sql.text.as_str(), |file| file.text.as_str());
            declared.push((ResourceType::Snapshot, name.clone(), sql, checksum_text));
        }
    }
    for file in &package.analyses {
        declared.push((
            ResourceType::Analysis,
            file.stem().to_string(),
            file,
            &file.text,
        ));
    }
    for file in &package.singular_tests {
        declared.push((
            ResourceType::Test,
            file.stem().to_string(),
            file,
            &file.text,
        ));
    }

    let mut pending: Vec<Pending> = Vec::with_capacity(declared.len());
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut claims = versions::claims(package)?;
    for (resource_type, name, file, checksum_text) in declared {
        let mut version = match resource_type {
            ResourceType::Model => claims.remove(file.stem()).map(Box::new),
            _ => None,
        };
        // Analyses and tests live in their own namespaces: they are never
        // ref'd; the versions of a model share its name.
        if !matches!(resource_type, ResourceType::Analysis | ResourceType::Test)
            && version.is_none()
            && let Some(other) = seen.insert(name.clone(), &file.original_file_path)
        {
            return Err(Error::new(
                ErrorKind::Project,
                format!(
                    "two nodes are named `{name}`: {other} and {}",
                    file.original_file_path
                ),
            )
            .in_file(package.root.join(&file.original_file_path))
            .with_hint("names must be unique across models, seeds and snapshots: rename one"));
        }
        let mut fqn = vec![package.name.clone()];
        if resource_type == ResourceType::Analysis {
            fqn.push("analysis".to_string());
        }
        let mut folders = file.folders();
        if resource_type == ResourceType::Snapshot {
            // A `{% snapshot %}` block's fqn has its file's name; a YAML
            // snapshot's path is `<file>.yml/<name>.sql`, and its fqn has
            // only the folders above the YAML file.
            if file.original_file_path.ends_with(".sql") {
                folders.push(file.stem());
            } else {
                folders.pop();
            }
        }
        fqn.extend(folders.into_iter().map(str::to_string));
        fqn.push(name.clone());
        let tree = |p: &Project, fqn: &[String]| match resource_type {
            ResourceType::Seed => p.seeds_config.resolve(fqn),
            ResourceType::Snapshot => p.snapshots_config.resolve(fqn),
            ResourceType::Test => p.tests_config.resolve(fqn),
            _ => p.models_config.resolve(fqn),
        };
        let layered = |fqn: &[String]| {
            let mut config = tree(package, fqn);
            if let Some(root) = root {
                merge_config(&mut config, &tree(root, fqn));
            }
            config
        };
        // A version's fqn ends in its model's name and `v<version>`.
        let (name, unique_id) = match &mut version {
            Some(version) => {
                version.file_config = layered(&fqn);
                fqn.pop();
                fqn.push(version.model.to_string());
                fqn.push(version.fqn_leaf());
                (version.model.to_string(), version.unique_id(&package.name))
            }
            None => {
                let unique_id = format!("{resource_type}.{}.{name}", package.name);
                (name, unique_id)
            }
        };
        let mut base_config = layered(&fqn);
        let properties = match &version {
            Some(version) => Some(&version.properties),
            None => properties_of(package.properties()?, resource_type, &name),
        };
        if let Some(props) = properties {
            merge_config(&mut base_config, &props.config);
        }
        let default_materialization = match resource_type {
            ResourceType::Seed => "seed",
            ResourceType::Snapshot => "snapshot",
            ResourceType::Test => "test",
            _ => "view",
        };
        base_config
            .entry("materialized")
            .or_insert_with(|| json!(default_materialization));
        if resource_type == ResourceType::Test {
            base_config
                .entry("schema")
                .or_insert_with(|| json!("dbt_test__audit"));
        }
        pending.push(Pending {
            file,
            checksum_text,
            package,
            unique_id,
            name,
            resource_type,
            fqn,
            base_config: Arc::new(base_config),
            test: None,
            version,
        });
    }
    Ok(pending)
}

/// A generic test: what it declares, over the `data_tests:` config of
/// dbt_project.yml (the package's, then the root's), over the defaults the
/// runner and the relation name need (its audit schema and materialization).
pub fn pending_test<'a>(
    test: &'a GenericTest,
    package: &'a Project,
    root: &'a Project,
) -> Pending<'a> {
    let mut base_config = Map::new();
    base_config.insert("materialized".into(), json!("test"));
    base_config.insert("schema".into(), json!("dbt_test__audit"));
    merge_config(&mut base_config, &package.tests_config.resolve(&test.fqn));
    if package.name != root.name {
        merge_config(&mut base_config, &root.tests_config.resolve(&test.fqn));
    }
    merge_config(&mut base_config, &test.config);
    Pending {
        file: &test.file,
        checksum_text: "",
        package,
        unique_id: test.unique_id.clone(),
        name: test.name.clone(),
        resource_type: ResourceType::Test,
        fqn: test.fqn.clone(),
        base_config: Arc::new(base_config),
        test: Some(test),
        version: None,
    }
}

/// The enabled source tables every project and package declares, with
/// configs layered as dbt 1.11 layers them: `enabled` and `meta` from the
/// `sources:` tree of dbt_project.yml (the package's, then the root's), then
/// the source's YAML, then the table's; tags from the YAML only.
pub fn source_nodes(root: &Project, target: &Target) -> Result<BTreeMap<String, SourceNode>> {
    let mut sources = BTreeMap::new();
    for project in root.all_projects() {
        for definition in &project.properties()?.sources {
            // Rendered already when they held Jinja (see project::rendering);
            // a schema defaults to the source's name, as in dbt.
            let database = definition.database.clone();
            let schema = definition
                .schema
                .clone()
                .unwrap_or_else(|| definition.name.clone());
            let folders =
                super::generic_tests::folders_under_resource_path(project, &definition.file);
            for table in &definition.tables {
                let mut fqn = vec![project.name.clone()];
                fqn.extend(folders.iter().cloned());
                fqn.push(definition.name.clone());
                fqn.push(table.name.clone());
                let mut config = project.sources_config.resolve(&fqn);
                if project.name != root.name {
                    merge_config(&mut config, &root.sources_config.resolve(&fqn));
                }
                let mut meta = match config.remove("meta") {
                    Some(Json::Object(meta)) => meta,
                    _ => Map::new(),
                };
                let mut source_meta = definition.meta.clone();
                let mut tags = Vec::new();
                for (own_tags, own_meta, own_config) in [
                    (&definition.tags, &definition.meta, &definition.config),
                    (&table.tags, &table.meta, &table.config),
                ] {
                    meta.extend(own_meta.clone());
                    tags.extend(own_tags.iter().cloned());
                    for (key, value) in own_config {
                        match (key.as_str(), value) {
                            ("meta", Json::Object(more)) => meta.extend(more.clone()),
                            ("tags", more) => {
                                tags.extend(crate::project::config::string_list(Some(more)));
                            }
                            _ => {
                                config.insert(key.clone(), value.clone());
                            }
                        }
                    }
                }
                if let Some(Json::Object(more)) = definition.config.get("meta") {
                    source_meta.extend(more.clone());
                }
                if config.get("enabled") == Some(&Json::Bool(false)) {
                    continue;
                }
                tags.sort();
                tags.dedup();
                let unique_id =
                    format!("source.{}.{}.{}", project.name, definition.name, table.name);
                let database = database.clone().unwrap_or_else(|| target.dbname.clone());
                let source = SourceNode {
                    unique_id: unique_id.clone(),
                    source_name: definition.name.clone(),
                    name: table.name.clone(),
                    package_name: project.name.clone(),
                    original_file_path: definition.file.clone(),
                    description: table.description.clone(),
                    relation: Relation {
                        // dbt's precedence: the table's, the source's, the project's.
                        quoting: crate::manifest::Quoting::default()
                            .merged(&root.quoting)
                            .merged(&definition.quoting)
                            .merged(&table.quoting),
                        database,
                        schema: schema.clone(),
                        identifier: table.identifier.clone(),
                    },
                    fqn,
                    tags,
                    meta,
                    source_meta,
                };
                sources.insert(unique_id, source);
            }
        }
    }
    Ok(sources)
}
