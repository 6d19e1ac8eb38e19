//! `{% docs %}` blocks and the `doc()` calls in descriptions that use them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{DocBlock, Exposure, Node, SourceNode};
use crate::project::Project;

/// Every docs block of the project and its packages, by unique_id.
pub fn doc_blocks(root: &Project) -> BTreeMap<String, DocBlock> {
    let mut docs = BTreeMap::new();
    for project in root.all_projects() {
        for block in &project.docs {
            let unique_id = format!("doc.{}.{}", project.name, block.name);
            docs.insert(
                unique_id.clone(),
                DocBlock {
                    unique_id,
                    name: block.name.clone(),
                    resource_type: "doc".to_string(),
                    package_name: project.name.clone(),
                    path: block.file.path.clone(),
                    original_file_path: block.file.original_file_path.clone(),
                    block_contents: block.contents.trim().to_string(),
                },
            );
        }
    }
    docs
}

/// Renders descriptions that call `doc('name')` or `doc('package', 'name')`.
pub struct Descriptions {
    env: minijinja::Environment<'static>,
}

impl Descriptions {
    pub fn new(docs: &BTreeMap<String, DocBlock>, root_package: &str) -> Descriptions {
        let by_name: HashMap<(String, String), String> = docs
            .values()
            .map(|d| {
                (
                    (d.package_name.clone(), d.name.clone()),
                    d.block_contents.clone(),
                )
            })
            .collect();
        let by_name = Arc::new(by_name);
        let root_package = root_package.to_string();
        let mut env = minijinja::Environment::new();
        env.add_function("doc", move |first: String, second: Option<String>| {
            let lookup = |package: &str, name: &str| {
                by_name
                    .get(&(package.to_string(), name.to_string()))
                    .cloned()
            };
            let found = match &second {
                Some(name) => lookup(&first, name),
                None => lookup(&root_package, &first).or_else(|| {
                    by_name
                        .iter()
                        .find(|((_, n), _)| *n == first)
                        .map(|(_, text)| text.clone())
                }),
            };
            found.ok_or_else(|| {
                let name = second.map_or(first.clone(), |n| format!("{first}.{n}"));
                minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("no `{{% docs {name} %}}` block for doc('{name}')"),
                )
            })
        });
        Descriptions { env }
    }

    /// The description with its Jinja rendered; plain text is returned as is.
    /// An error names `file` (the YAML that holds the description) and the
    /// line the description is on, else `entry_line`.
    fn render(&self, text: &mut String, file: &std::path::Path, entry_line: usize) -> Result<()> {
        if !has_jinja(text) {
            return Ok(());
        }
        *text = self
            .env
            .render_str(text, minijinja::context! {})
            .map_err(|e| {
                let detail = e
                    .detail()
                    .map_or_else(|| e.kind().to_string(), str::to_string);
                let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                let line = std::fs::read_to_string(file)
                    .ok()
                    .and_then(|yaml| yaml.lines().position(|l| l.contains(first.trim())))
                    .map_or(entry_line, |i| i + 1);
                Error::new(ErrorKind::Template, format!("in a description: {detail}"))
                    .in_file(file)
                    .at_line(line)
            })?;
        Ok(())
    }

    /// Render the descriptions of nodes, their columns, and sources.
    pub fn render_all(
        &self,
        root: &Project,
        nodes: &mut BTreeMap<String, Node>,
        sources: &mut BTreeMap<String, SourceNode>,
    ) -> Result<()> {
        let root_of = |package: &str| {
            root.all_projects()
                .find(|p| p.name == package)
                .map_or(root.root.clone(), |p| p.root.clone())
        };
        for node in nodes.values_mut() {
            let plain = std::iter::once(&node.description)
                .chain(node.columns.iter().map(|c| &c.description))
                .all(|text| !has_jinja(text));
            // Most descriptions are plain text: no file to name for them.
            if plain {
                continue;
            }
            // A model's or seed's description is in its properties YAML.
            let package = root
                .all_projects()
                .find(|p| p.name == node.package_name)
                .unwrap_or(root);
            let properties =
                super::nodes::properties_of(package.properties()?, node.resource_type, &node.name);
            let (file, line) = match properties {
                Some(p) => (package.root.join(&p.file), p.line),
                None => (
                    root_of(&node.package_name).join(&node.original_file_path),
                    0,
                ),
            };
            self.render(&mut node.description, &file, line)?;
            for column in &mut node.columns {
                self.render(&mut column.description, &file, line)?;
            }
        }
        for source in sources.values_mut() {
            let file = root_of(&source.package_name).join(&source.original_file_path);
            self.render(&mut source.description, &file, 0)?;
        }
        Ok(())
    }

    /// Render the descriptions of exposures, as dbt does.
    pub fn render_exposures(
        &self,
        root: &Project,
        exposures: &mut BTreeMap<String, Exposure>,
    ) -> Result<()> {
        for exposure in exposures.values_mut() {
            let package = root
                .all_projects()
                .find(|p| p.name == exposure.package_name)
                .unwrap_or(root);
            let file = package.root.join(&exposure.original_file_path);
            self.render(&mut exposure.description, &file, 0)?;
        }
        Ok(())
    }
}

/// Whether a description holds Jinja to render.
fn has_jinja(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}
