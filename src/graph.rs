//! The model DAG (petgraph): build it from each node's parents, find cycles
//! with the whole loop, and order nodes so parents come first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::error::{Error, ErrorKind, Result};

/// A DAG over unique_ids; an edge runs from parent to child.
#[derive(Debug, Default)]
pub struct Dag {
    graph: DiGraph<String, ()>,
    index: HashMap<String, NodeIndex>,
}

impl Dag {
    /// Build from (unique_id, parents) pairs. Parents not among the ids
    /// (sources, say) are not part of the DAG.
    pub fn new<'a>(nodes: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Dag {
        let nodes: Vec<(&str, &[String])> = nodes.into_iter().collect();
        let mut dag = Dag::default();
        for (id, _) in &nodes {
            let ix = dag.graph.add_node(id.to_string());
            dag.index.insert(id.to_string(), ix);
        }
        for (id, parents) in &nodes {
            let child = dag.index[*id];
            for parent in parents.iter() {
                if let Some(&parent) = dag.index.get(parent) {
                    dag.graph.update_edge(parent, child, ());
                }
            }
        }
        dag
    }

    /// unique_ids with every parent before its children; among nodes that are
    /// ready at the same time, alphabetical order, so runs read the same every
    /// time. A cycle is an error that prints the whole loop.
    pub fn order(&self) -> Result<Vec<String>> {
        let mut waiting: Vec<usize> = self
            .graph
            .node_indices()
            .map(|ix| {
                self.graph
                    .neighbors_directed(ix, Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: BinaryHeap<Reverse<(&str, NodeIndex)>> = self
            .graph
            .node_indices()
            .filter(|ix| waiting[ix.index()] == 0)
            .map(|ix| Reverse((self.graph[ix].as_str(), ix)))
            .collect();
        let mut order = Vec::with_capacity(self.graph.node_count());
        while let Some(Reverse((id, ix))) = ready.pop() {
            order.push(id.to_string());
            for child in self.graph.neighbors_directed(ix, Direction::Outgoing) {
                waiting[child.index()] -= 1;
                if waiting[child.index()] == 0 {
                    ready.push(Reverse((self.graph[child].as_str(), child)));
                }
            }
        }
        if order.len() == self.graph.node_count() {
            Ok(order)
        } else {
            Err(self.cycle_error())
        }
    }

    fn cycle_error(&self) -> Error {
        let cycle = self.find_cycle().unwrap_or_default();
        let names: Vec<String> = cycle
            .iter()
            .map(|id| format!("`{}`", short_name(id)))
            .collect();
        Error::new(
            ErrorKind::Cycle,
            format!("the DAG has a cycle: {}", names.join(" -> ")),
        )
        .with_hint("a model cannot depend, directly or through others, on itself; remove one of these refs")
    }

    /// One cycle as a list of unique_ids, first one repeated at the end,
    /// starting from the alphabetically smallest node for stable messages.
    fn find_cycle(&self) -> Option<Vec<String>> {
        let mut components = tarjan_scc(&self.graph);
        components.retain(|c| c.len() > 1 || self.graph.contains_edge(c[0], c[0]));
        let component = components
            .into_iter()
            .min_by_key(|c| c.iter().map(|ix| self.graph[*ix].clone()).min())?;
        let start = *component.iter().min_by_key(|ix| &self.graph[**ix])?;
        // Walk the component: breadth-first from start back to start gives the shortest loop.
        let in_component = |ix: NodeIndex| component.contains(&ix);
        let mut previous: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(current) = queue.pop_front() {
            let mut children: Vec<NodeIndex> = self
                .graph
                .neighbors(current)
                .filter(|c| in_component(*c))
                .collect();
            children.sort_by(|a, b| self.graph[*a].cmp(&self.graph[*b]));
            for child in children {
                if child == start {
                    let mut path = vec![current];
                    while let Some(&p) = previous.get(path.last().unwrap()) {
                        path.push(p);
                    }
                    path.reverse();
                    if path[0] != start {
                        path.insert(0, start);
                    }
                    path.push(start);
                    return Some(path.into_iter().map(|ix| self.graph[ix].clone()).collect());
                }
                if child != start && !previous.contains_key(&child) {
                    previous.insert(child, current);
                    queue.push_back(child);
                }
            }
        }
        None
    }
}

/// `model.shop.orders` -> `orders`.
pub fn short_name(unique_id: &str) -> &str {
    unique_id.splitn(3, '.').nth(2).unwrap_or(unique_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag(edges: &[(&str, &[&str])]) -> Dag {
        let owned: Vec<(String, Vec<String>)> = edges
            .iter()
            .map(|(id, parents)| {
                (
                    id.to_string(),
                    parents.iter().map(|p| p.to_string()).collect(),
                )
            })
            .collect();
        Dag::new(owned.iter().map(|(id, p)| (id.as_str(), p.as_slice())))
    }

    #[test]
    fn parents_come_first() {
        let order = dag(&[
            ("model.p.c", &["model.p.b"]),
            ("model.p.b", &["model.p.a"]),
            ("model.p.a", &[]),
        ])
        .order()
        .unwrap();
        assert_eq!(order, vec!["model.p.a", "model.p.b", "model.p.c"]);
    }

    #[test]
    fn a_cycle_prints_the_whole_loop() {
        let err = dag(&[
            ("model.p.a", &["model.p.c"]),
            ("model.p.b", &["model.p.a"]),
            ("model.p.c", &["model.p.b"]),
            ("model.p.d", &["model.p.a"]),
        ])
        .order()
        .unwrap_err();
        assert_eq!(
            err.message(),
            "the DAG has a cycle: `a` -> `b` -> `c` -> `a`"
        );
    }

    #[test]
    fn a_self_reference_is_a_cycle() {
        let err = dag(&[("model.p.a", &["model.p.a"])]).order().unwrap_err();
        assert_eq!(err.message(), "the DAG has a cycle: `a` -> `a`");
    }
}
