//! dbt's node selection: the grammar (`+x`, `x+2`, `@x`, `method:value`,
//! union by space, intersection by comma, --exclude, --selector from
//! selectors.yml) and its evaluation over a manifest's nodes and sources.

pub mod list;
pub mod methods;
pub mod selectors;
pub mod spec;
pub mod state;

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::error::Result;
use crate::manifest::{Manifest, ResourceType};
use methods::{Member, Universe};
pub use selectors::Selectors;
pub use spec::IndirectSelection;
use spec::{Criterion, Spec};

/// What to select: the selection arguments of a command, and the project's
/// selectors.yml when it has one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// `--select`: criteria; empty means everything (or the default selector).
    pub select: Vec<String>,
    /// `--exclude`.
    pub exclude: Vec<String>,
    /// `--selector NAME`: a selector of selectors.yml, used instead of
    /// --select and --exclude (as dbt does).
    pub selector: Option<String>,
    /// `--indirect-selection`.
    pub indirect_selection: IndirectSelection,
    /// The project's selectors.yml (empty when it has none).
    pub selectors: Selectors,
    /// The project folder: `path:` matches only files and folders that exist
    /// there, as dbt's glob does. None matches on the paths alone.
    pub project_root: Option<PathBuf>,
    /// `--state`: an earlier run's artifacts, for `state:` and `result:`.
    pub state: Option<std::sync::Arc<crate::select::state::State>>,
}

impl Selection {
    pub fn all() -> Selection {
        Selection::default()
    }

    /// A selection for the project at `root`, with its selectors.yml read.
    pub fn for_project(root: &std::path::Path) -> Result<Selection> {
        Ok(Selection {
            selectors: Selectors::load(root)?,
            project_root: Some(root.to_path_buf()),
            ..Selection::default()
        })
    }

    /// The selected nodes (models, seeds, tests; no sources), in the
    /// manifest's dependency order: what a command runs.
    pub fn resolve(&self, manifest: &Manifest) -> Result<Vec<String>> {
        if self.selects_everything() {
            return Ok(manifest.order.clone());
        }
        let selected = self.resolve_members(manifest)?;
        Ok(manifest
            .order
            .iter()
            .filter(|id| selected.contains(id.as_str()))
            .cloned()
            .collect())
    }

    /// Every selected graph member, sources included, by unique_id: what
    /// `ls` lists. Tests come with the nodes they test as
    /// `indirect_selection` says.
    pub fn resolve_members<'m>(&self, manifest: &'m Manifest) -> Result<BTreeSet<&'m str>> {
        let spec = self.spec()?;
        let mut universe = Universe::new(manifest, self.project_root.clone());
        universe.state = self.state.clone();
        let graph = Graph::new(universe);
        Ok(graph.select(&spec)?.0)
    }

    /// The --select and --exclude criteria (each space-separated part) that
    /// match no node, source or exposure on their own: dbt warns about each
    /// (`The selection criterion '...' does not match any enabled nodes`).
    /// A selector of selectors.yml is not checked, as in dbt. `matched_any`:
    /// the selection as a whole matched something, which answers for a
    /// single criterion without resolving it again.
    pub fn unmatched(&self, manifest: &Manifest, matched_any: bool) -> Result<Vec<String>> {
        if self.selector.is_some() {
            return Ok(Vec::new());
        }
        let parts = |args: &[String]| -> Vec<String> {
            args.iter()
                .flat_map(|arg| arg.split_whitespace())
                .map(str::to_string)
                .collect()
        };
        let (select, exclude) = (parts(&self.select), parts(&self.exclude));
        if select.len() == 1 && exclude.is_empty() && matched_any {
            return Ok(Vec::new());
        }
        let mut unmatched = Vec::new();
        for part in select.into_iter().chain(exclude) {
            let alone = Selection {
                select: vec![part.clone()],
                exclude: Vec::new(),
                ..self.clone()
            };
            if alone.resolve_members(manifest)?.is_empty() {
                unmatched.push(part);
            }
        }
        Ok(unmatched)
    }

    /// No --select, --exclude or selector: every node, as dbt's default `fqn:*`.
    pub fn selects_everything(&self) -> bool {
        self.selector.is_none()
            && self.select.is_empty()
            && self.exclude.is_empty()
            && self.selectors.default_name().is_none()
    }

    /// The parsed selection: the named or default selector, else --select
    /// minus --exclude.
    fn spec(&self) -> Result<Spec> {
        if let Some(name) = &self.selector {
            return self.selectors.definition(name, self.indirect_selection);
        }
        if self.select.is_empty()
            && self.exclude.is_empty()
            && let Some(name) = self.selectors.default_name()
        {
            return self.selectors.definition(name, self.indirect_selection);
        }
        Spec::from_arguments(&self.select, &self.exclude, self.indirect_selection)
    }
}

/// The graph of members: edges from the manifest's parent and child maps,
/// kept to members (disabled nodes are not).
struct Graph<'a> {
    universe: Universe<'a>,
    members: std::collections::HashMap<&'a str, Member<'a>>,
}

type Ids<'a> = BTreeSet<&'a str>;

impl<'a> Graph<'a> {
    fn new(universe: Universe<'a>) -> Graph<'a> {
        let members = universe
            .members
            .iter()
            .map(|m| (m.unique_id(), *m))
            .collect();
        Graph { universe, members }
    }

    fn edges(&self, id: &str, parents: bool) -> impl Iterator<Item = &'a str> + '_ {
        let map = if parents {
            &self.universe.manifest.parent_map
        } else {
            &self.universe.manifest.child_map
        };
        map.get(id)
            .into_iter()
            .flatten()
            .filter_map(|next| self.members.get_key_value(next.as_str()).map(|(k, _)| *k))
    }

    /// Ancestors (or descendants) of `start` within `depth` steps, layer by
    /// layer as dbt walks them: a start node is included only when another
    /// start node reaches it.
    fn walk(&self, start: &Ids<'a>, depth: Option<usize>, parents: bool) -> Ids<'a> {
        let mut found = Ids::new();
        let mut layer = start.clone();
        let mut steps = 0;
        while !layer.is_empty() && depth.is_none_or(|d| steps < d) {
            let mut next = Ids::new();
            for id in &layer {
                for other in self.edges(id, parents) {
                    if !found.contains(other) {
                        next.insert(other);
                    }
                }
            }
            found.extend(next.iter().copied());
            layer = next;
            steps += 1;
        }
        found
    }

    /// (direct, indirect) for a spec: indirect are tests held back by
    /// cautious or buildable selection until their other parents show up.
    fn select(&self, spec: &Spec) -> Result<(Ids<'a>, Ids<'a>)> {
        match spec {
            Spec::Everything(indirect) => {
                let all: Ids = self.members.keys().copied().collect();
                Ok(self.expand_tests(all, *indirect))
            }
            Spec::Criterion(criterion) => self.criterion(criterion),
            Spec::Union(parts, indirect)
            | Spec::Intersection(parts, indirect)
            | Spec::Difference(parts, indirect) => {
                let mut direct_sets = Vec::with_capacity(parts.len());
                let mut indirect_sets = Vec::with_capacity(parts.len());
                for part in parts {
                    let (direct, indirect) = self.select(part)?;
                    let mut both = direct.clone();
                    both.extend(indirect);
                    direct_sets.push(direct);
                    indirect_sets.push(both);
                }
                let direct = combine(spec, direct_sets);
                let indirect_nodes = combine(spec, indirect_sets);
                let direct = self.incorporate(direct, &indirect_nodes, *indirect);
                Ok((direct, indirect_nodes))
            }
        }
    }

    fn criterion(&self, criterion: &Criterion) -> Result<(Ids<'a>, Ids<'a>)> {
        let collected = self.universe.search(criterion)?;
        let mut selected = collected.clone();
        if criterion.childrens_parents {
            let mut family = self.walk(&collected, None, false);
            family.extend(collected.iter().copied());
            selected.extend(self.walk(&family, None, true));
            selected.extend(family);
        }
        if let Some(depth) = criterion.parents {
            selected.extend(self.walk(&collected, depth, true));
        }
        if let Some(depth) = criterion.children {
            selected.extend(self.walk(&collected, depth, false));
        }
        Ok(self.expand_tests(selected, criterion.indirect))
    }

    fn depends_on(&self, id: &str) -> &'a [String] {
        self.universe
            .manifest
            .nodes
            .get(id)
            .map_or(&[], |n| n.depends_on_nodes.as_slice())
    }

    fn is_test(&self, id: &str) -> bool {
        self.universe
            .manifest
            .nodes
            .get(id)
            .is_some_and(|n| n.resource_type == ResourceType::Test)
    }

    /// The tests of the selected nodes: in when the mode says so, else
    /// kept aside as indirect.
    fn expand_tests(&self, selected: Ids<'a>, mode: IndirectSelection) -> (Ids<'a>, Ids<'a>) {
        if mode == IndirectSelection::Empty {
            return (selected, Ids::new());
        }
        let buildable: Ids = if mode == IndirectSelection::Buildable {
            let mut set = self.walk(&selected, None, true);
            set.extend(selected.iter().copied());
            set.extend(self.universe.manifest.sources.keys().map(String::as_str));
            set
        } else {
            Ids::new()
        };
        let mut direct = selected.clone();
        let mut indirect = Ids::new();
        for id in &selected {
            for child in self.edges(id, false) {
                if !self.is_test(child) {
                    continue;
                }
                let parents = self.depends_on(child);
                let all_in = |set: &Ids| parents.iter().all(|p| set.contains(p.as_str()));
                let held_back = mode != IndirectSelection::Eager
                    && !all_in(&selected)
                    && !(mode == IndirectSelection::Buildable && all_in(&buildable));
                if held_back {
                    indirect.insert(child);
                } else {
                    direct.insert(child);
                }
            }
        }
        (direct, indirect)
    }

    /// Tests held back earlier whose parents are now all selected.
    fn incorporate(&self, direct: Ids<'a>, indirect: &Ids<'a>, mode: IndirectSelection) -> Ids<'a> {
        if &direct == indirect {
            return direct;
        }
        let within = match mode {
            IndirectSelection::Cautious => direct.clone(),
            IndirectSelection::Buildable => {
                let mut set = self.walk(&direct, None, true);
                set.extend(direct.iter().copied());
                set
            }
            _ => return direct,
        };
        let mut selected = direct;
        for id in indirect {
            if self.universe.manifest.nodes.contains_key(*id)
                && self
                    .depends_on(id)
                    .iter()
                    .all(|p| within.contains(p.as_str()))
            {
                selected.insert(id);
            }
        }
        selected
    }
}

/// The set operation of a spec over its parts' results.
fn combine<'a>(spec: &Spec, mut sets: Vec<Ids<'a>>) -> Ids<'a> {
    if sets.is_empty() {
        return Ids::new();
    }
    let first = sets.remove(0);
    match spec {
        Spec::Intersection(..) => sets
            .iter()
            .fold(first, |acc, s| acc.intersection(s).copied().collect()),
        Spec::Difference(..) => sets
            .iter()
            .fold(first, |acc, s| acc.difference(s).copied().collect()),
        _ => sets.into_iter().fold(first, |mut acc, s| {
            acc.extend(s);
            acc
        }),
    }
}
