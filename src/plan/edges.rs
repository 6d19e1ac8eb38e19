//! What each task waits for, computed on the manifest's graph with dense
//! indexes: a 10,000-model project with 20,000 tests is planned in
//! milliseconds, not by comparing every test with everything below it.
//!
//! As dbt's selected graph: a task waits for its nearest selected ancestors,
//! across any node that is not run (ephemeral, analysis, not selected). And
//! as `dbt build`: a node waits for each selected test whose parents are all
//! above it; only where no task it waits for already does.

use std::collections::{BTreeMap, HashMap};

use crate::manifest::{Manifest, ResourceType};

/// The manifest's nodes and the sources they read, numbered so that every
/// parent comes before its children.
pub struct Graph<'m> {
    ids: Vec<&'m str>,
    index: HashMap<&'m str, usize>,
    parents: Vec<Vec<usize>>,
    is_test: Vec<bool>,
}

impl<'m> Graph<'m> {
    pub fn new(manifest: &'m Manifest) -> Graph<'m> {
        let mut graph = Graph {
            ids: Vec::with_capacity(manifest.order.len() + manifest.sources.len()),
            index: HashMap::with_capacity(manifest.order.len() + manifest.sources.len()),
            parents: Vec::new(),
            is_test: Vec::new(),
        };
        for id in &manifest.order {
            // A parent not met yet is a source (the order puts parent nodes
            // first): numbered here, before its child, with no parents.
            let parents = manifest.parent_map.get(id).map_or(&[][..], Vec::as_slice);
            let parents = parents.iter().map(|p| graph.number(p, None)).collect();
            let is_test = manifest
                .nodes
                .get(id)
                .is_some_and(|n| n.resource_type == ResourceType::Test);
            graph.number(id, Some((parents, is_test)));
        }
        graph
    }

    /// The number of `id`, given one if it has none yet.
    fn number(&mut self, id: &'m str, node: Option<(Vec<usize>, bool)>) -> usize {
        let (parents, is_test) = node.unwrap_or_default();
        if let Some(&known) = self.index.get(id) {
            if !parents.is_empty() {
                self.parents[known] = parents;
            }
            self.is_test[known] |= is_test;
            return known;
        }
        let number = self.ids.len();
        self.ids.push(id);
        self.index.insert(id, number);
        self.parents.push(parents);
        self.is_test.push(is_test);
        number
    }

    pub fn get(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn id(&self, number: usize) -> &'m str {
        self.ids[number]
    }

    /// For each node in `tasks` (numbers): the tasks it waits for, found
    /// through any node that is not a task. Indexed like `tasks`.
    pub fn upstream(&self, tasks: &[usize]) -> Vec<Vec<usize>> {
        let mut is_task = vec![false; self.ids.len()];
        for &task in tasks {
            is_task[task] = true;
        }
        // Only the non-tasks above some task need their nearest tasks.
        let mut needed = vec![false; self.ids.len()];
        let mut stack: Vec<usize> = tasks.to_vec();
        while let Some(node) = stack.pop() {
            for &parent in &self.parents[node] {
                if !is_task[parent] && !needed[parent] {
                    needed[parent] = true;
                    stack.push(parent);
                }
            }
        }
        let mut through: Vec<Vec<usize>> = vec![Vec::new(); self.ids.len()];
        let nearest = |node: usize, through: &[Vec<usize>]| -> Vec<usize> {
            let mut out = Vec::new();
            for &parent in &self.parents[node] {
                if is_task[parent] {
                    out.push(parent);
                } else {
                    out.extend_from_slice(&through[parent]);
                }
            }
            out.sort_unstable();
            out.dedup();
            out
        };
        for node in 0..self.ids.len() {
            if needed[node] {
                through[node] = nearest(node, &through);
            }
        }
        tasks.iter().map(|&task| nearest(task, &through)).collect()
    }

    /// The tests each task must wait for. `tasks` and `upstream` as from
    /// [`Graph::upstream`]; the answer is indexed like `tasks`.
    pub fn test_gates(&self, tasks: &[usize], upstream: &[Vec<usize>]) -> Vec<Vec<usize>> {
        let mut gates = vec![Vec::new(); tasks.len()];
        // Tests grouped by their parents: the tests of one model gate the
        // same tasks.
        let mut by_parents: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
        for &task in tasks.iter().filter(|&&t| self.is_test[t]) {
            let mut parents = self.parents[task].clone();
            parents.sort_unstable();
            parents.dedup();
            if !parents.is_empty() {
                by_parents.entry(parents).or_default().push(task);
            }
        }
        let built: Vec<(usize, usize)> = tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| !self.is_test[**t])
            .map(|(position, &t)| (position, t))
            .collect();
        let (single, multiple): (Vec<_>, Vec<_>) =
            by_parents.into_iter().partition(|(p, _)| p.len() == 1);
        let single: Vec<(usize, Vec<usize>)> =
            single.into_iter().map(|(p, tests)| (p[0], tests)).collect();
        let mut scratch = PassScratch {
            bit: vec![0; self.ids.len()],
            above: vec![0; self.ids.len()],
        };
        for pass in single.chunks(64) {
            self.single_parent_pass(pass, &built, upstream, &mut scratch, &mut gates);
        }
        for (parents, tests) in &multiple {
            let below = self.below_all(parents);
            for &(position, task) in &built {
                let gated = |n: usize| below[n / 64] & (1 << (n % 64)) != 0;
                if gated(task) && !upstream[position].iter().any(|&up| gated(up)) {
                    gates[position].extend_from_slice(tests);
                }
            }
        }
        gates
    }

    /// Up to 64 single-parent test groups at once, one bit each: a bitmask
    /// per node of the group parents above it. A task is gated by the groups
    /// above it that are above none of the tasks it waits for.
    fn single_parent_pass(
        &self,
        pass: &[(usize, Vec<usize>)],
        built: &[(usize, usize)],
        upstream: &[Vec<usize>],
        scratch: &mut PassScratch,
        gates: &mut [Vec<usize>],
    ) {
        let PassScratch { bit, above } = scratch;
        for (b, (parent, _)) in pass.iter().enumerate() {
            bit[*parent] = 1 << b;
        }
        // Nothing before the first parent of the pass is below it.
        let first = pass.iter().map(|(p, _)| *p).min().unwrap_or(0);
        above[first..].fill(0);
        for node in first..self.ids.len() {
            if self.is_test[node] {
                continue;
            }
            let mut mask = 0;
            for &parent in &self.parents[node] {
                if parent >= first {
                    mask |= above[parent] | bit[parent];
                }
            }
            above[node] = mask;
        }
        for &(position, task) in built.iter().filter(|(_, task)| *task > first) {
            let already = upstream[position]
                .iter()
                .filter(|&&up| up >= first)
                .fold(0, |mask, &up| mask | above[up]);
            let mut newly = above[task] & !already;
            while newly != 0 {
                let b = newly.trailing_zeros() as usize;
                gates[position].extend_from_slice(&pass[b].1);
                newly &= newly - 1;
            }
        }
        for (parent, _) in pass {
            bit[*parent] = 0;
        }
    }

    /// A bitset of the nodes below every one of `parents`.
    fn below_all(&self, parents: &[usize]) -> Vec<u64> {
        let words = self.ids.len().div_ceil(64);
        let mut all = vec![u64::MAX; words];
        for &parent in parents {
            let mut below = vec![0u64; words];
            let has = |set: &[u64], n: usize| set[n / 64] & (1 << (n % 64)) != 0;
            for node in parent + 1..self.ids.len() {
                if !self.is_test[node]
                    && self.parents[node]
                        .iter()
                        .any(|&p| p == parent || has(&below, p))
                {
                    below[node / 64] |= 1 << (node % 64);
                }
            }
            for (word, b) in all.iter_mut().zip(below) {
                *word &= b;
            }
        }
        all
    }
}

/// Buffers reused from one single-parent pass to the next.
struct PassScratch {
    /// The bit of each parent of the pass, 0 for other nodes.
    bit: Vec<u64>,
    /// The pass's parents above each node, valid from the pass's first parent on.
    above: Vec<u64>,
}
