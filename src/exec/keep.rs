//! Keep points (`keep`) and the honest outcome of a failed run.
//!
//! A step marked `keep` that has completed is a keep point: a failure
//! later undoes only the steps that completed after it; the keep point
//! and everything that completed before it stay ("kept mitigation, later
//! step failed"). The latest keep point to complete wins. A failure before
//! any change completed is "stopped, nothing changed": there is nothing
//! to roll back.

use super::scheduler::{NodeResult, NodeState};
use crate::events::{NotUndone, Outcome};
use crate::plan::{Effect, Graph};

/// The latest keep point that completed, by its index in the results
/// (completion order).
pub(crate) struct KeepPoint {
    at: usize,
    node: String,
}

impl KeepPoint {
    pub(crate) fn find(graph: &Graph, results: &[NodeResult]) -> Option<KeepPoint> {
        results
            .iter()
            .enumerate()
            .rev()
            .find(|(_, r)| r.state == NodeState::Succeeded && graph.nodes[r.idx].keep)
            .map(|(at, r)| KeepPoint {
                at,
                node: graph.nodes[r.idx].id.clone(),
            })
    }

    /// The result at `i` (completion order) completed at or before the
    /// keep point.
    pub(crate) fn covers(&self, i: usize) -> bool {
        i <= self.at
    }

    /// How a result the keep point covers is reported in the rollback
    /// plan: only a step that changed something is worth naming.
    pub(crate) fn not_undone(&self, graph: &Graph, r: &NodeResult) -> Option<NotUndone> {
        let node = &graph.nodes[r.idx];
        if !changed(graph, r) {
            return None;
        }
        let reason = if node.id == self.node {
            "kept: it is the keep point".to_owned()
        } else {
            format!("kept: it completed before the keep point `{}`", self.node)
        };
        Some(NotUndone {
            node: node.id.clone(),
            reason,
        })
    }
}

/// The result changed the world, or may have: a write that completed (or
/// some of whose items did), or an action whose effect is unknown.
pub(crate) fn changed(graph: &Graph, r: &NodeResult) -> bool {
    let node = &graph.nodes[r.idx];
    let wrote = node.effect >= Effect::Write
        && (r.action_done || r.items.as_ref().is_some_and(|i| !i.is_empty()));
    wrote || r.in_doubt || !r.in_doubt_items.is_empty()
}

/// Whether anything the run did may have changed the world.
pub(crate) fn anything_changed(graph: &Graph, results: &[NodeResult]) -> bool {
    results.iter().any(|r| changed(graph, r))
}

/// The outcome of a failed (not cancelled) run whose rollback ran.
pub(crate) fn failed_outcome(clean: bool, kept: &[String]) -> Outcome {
    match (clean, kept.is_empty()) {
        (false, _) => Outcome::RollbackIncomplete,
        (true, false) => Outcome::Kept,
        (true, true) => Outcome::RolledBack,
    }
}
