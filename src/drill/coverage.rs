//! What a set of drills exercised in a runbook, and what it never did.

use crate::events::{ConditionPurpose, Event, EventKind};
use crate::plan::Graph;
use serde::Serialize;
use std::collections::BTreeSet;

/// One thing a drill can exercise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// `step announce`, `when revert_config = false`, `undo freeze_deploys`...
    pub what: String,
    pub covered: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub runbook: String,
    pub items: Vec<Item>,
}

impl Coverage {
    pub fn covered(&self) -> usize {
        self.items.iter().filter(|i| i.covered).count()
    }

    pub fn percent(&self) -> f64 {
        if self.items.is_empty() {
            100.0
        } else {
            100.0 * self.covered() as f64 / self.items.len() as f64
        }
    }

    pub fn missing(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| !i.covered)
    }
}

#[derive(Default)]
struct Seen {
    ran: BTreeSet<String>,
    when_true: BTreeSet<String>,
    when_false: BTreeSet<String>,
    retried: BTreeSet<String>,
    undone: BTreeSet<String>,
    verified: BTreeSet<String>,
    handlers: BTreeSet<String>,
    approvals_refused: BTreeSet<String>,
    /// (branch, arm) taken; `None`: no arm held.
    arms: BTreeSet<(usize, Option<usize>)>,
    /// (ladder, attempt) abandoned.
    abandoned: BTreeSet<(usize, usize)>,
}

/// How a node is named in coverage: a step of a `for` block as `STEP[*]`.
fn shown_id(graph: &Graph, n: &crate::plan::Node) -> String {
    match n.item.and_then(|i| graph.for_blocks.get(i.block)) {
        Some(b) => {
            let label = b.item_label(n.item.map_or(0, |i| i.index));
            match n.id.strip_suffix(&format!("[{label}]")) {
                Some(step) => format!("{step}[*]"),
                None => n.id.clone(),
            }
        }
        None => n.id.clone(),
    }
}

/// Coverage of `graph` by the events of several runs of it.
pub fn measure<'a>(graph: &Graph, runs: impl IntoIterator<Item = &'a [Event]>) -> Coverage {
    let mut s = Seen::default();
    for events in runs {
        let mut finished: BTreeSet<String> = BTreeSet::new();
        for e in events {
            let node = e.node.as_deref().unwrap_or_default().to_owned();
            match &e.kind {
                EventKind::NodeSucceeded { .. }
                | EventKind::NodeFailed { .. }
                | EventKind::NodeSkipped { .. } => {
                    if !matches!(e.kind, EventKind::NodeSkipped { .. }) {
                        s.ran.insert(node.clone());
                    }
                    finished.insert(node);
                }
                EventKind::ConditionEvaluated {
                    purpose: ConditionPurpose::When,
                    result,
                    ..
                } => match result {
                    Some(true) => {
                        s.when_true.insert(node);
                    }
                    Some(false) => {
                        s.when_false.insert(node);
                    }
                    None => {}
                },
                // An undo retries under its step's name after the step has
                // finished: that is not a rehearsal of the step's retry.
                EventKind::RetryScheduled { .. } if !finished.contains(&node) => {
                    s.retried.insert(node);
                }
                EventKind::UndoFinished { .. } => {
                    s.undone.insert(node);
                }
                EventKind::VerifyPoll { .. } => {
                    s.verified.insert(node);
                }
                EventKind::HandlerStarted { handler, .. } => {
                    s.handlers.insert(handler.clone());
                }
                EventKind::ApprovalRefused { .. } => {
                    s.approvals_refused.insert(node);
                }
                EventKind::BranchTaken { branch, arm, .. } => {
                    s.arms.insert((*branch, *arm));
                }
                EventKind::AttemptAbandoned {
                    ladder, attempt, ..
                } => {
                    s.abandoned.insert((*ladder, *attempt));
                }
                _ => {}
            }
        }
    }
    let mut items: Vec<Item> = Vec::new();
    // A step of a `for` block counts once for all its items (`defrag[*]`):
    // covered if a drill did it for any item. Its clauses are the same for
    // every item, and a `when` on the item (`when ring == "broad"`) can
    // hold for one item only. Each item is counted as reached, below.
    let mut add = |what: String, covered: bool| match items.iter_mut().find(|i| i.what == what) {
        Some(i) => i.covered |= covered,
        None => items.push(Item { what, covered }),
    };
    for n in &graph.nodes {
        let shown = shown_id(graph, n);
        let shown = shown.as_str();
        // A body step: done for any item, in any drill (the items of a list
        // input may differ from one drill to the next).
        let step = shown.strip_suffix("[*]").filter(|_| n.item.is_some());
        let done = |set: &BTreeSet<String>| match step {
            Some(step) => set.iter().any(|id| {
                id.strip_prefix(step)
                    .is_some_and(|r| r.starts_with('[') && r.ends_with(']'))
            }),
            None => set.contains(&n.id),
        };
        add(format!("step {shown}"), done(&s.ran));
        if n.when.is_some() {
            add(format!("when of {shown} is true"), done(&s.when_true));
            add(format!("when of {shown} is false"), done(&s.when_false));
        }
        if n.retry.retries > 0 {
            add(format!("retry of {shown}"), done(&s.retried));
        }
        if n.verify.is_some() {
            add(format!("verify of {shown}"), done(&s.verified));
        }
        if n.undo.is_some() {
            add(format!("undo of {shown}"), done(&s.undone));
        }
        let asks =
            n.approval.is_some() || matches!(n.action, Some(crate::plan::Action::Approve { .. }));
        if asks {
            add(
                format!("refused approval of {shown}"),
                done(&s.approvals_refused),
            );
        }
    }
    // Each item of each `for` block reached: one of its steps ran or was
    // skipped by its `when`.
    for (b, block) in graph.for_blocks.iter().enumerate() {
        for index in 0..block.item_count() {
            let reached = graph
                .nodes
                .iter()
                .filter(|n| n.item.is_some_and(|i| i.block == b && i.index == index))
                .any(|n| s.ran.contains(&n.id) || s.when_false.contains(&n.id));
            add(
                format!("item {} of `for {}`", block.item_label(index), block.var),
                reached,
            );
        }
    }
    // Each arm of each `if` taken, and "no arm" for one without `else`.
    // An `if` in a `for` body is one branch per item (the same span): it
    // counts once, an arm taken if any item took it.
    let mut seen: Vec<crate::span::Span> = Vec::new();
    for branch in &graph.branches {
        if seen.contains(&branch.span) {
            continue;
        }
        seen.push(branch.span);
        let copies: Vec<usize> = (0..graph.branches.len())
            .filter(|&c| graph.branches[c].span == branch.span)
            .collect();
        let took = |arm: Option<usize>| copies.iter().any(|&c| s.arms.contains(&(c, arm)));
        let n = seen.len();
        for (k, arm) in branch.arms.iter().enumerate() {
            add(
                format!("branch {n} taking `{}`", arm.label(k)),
                took(Some(k)),
            );
        }
        if branch.arms.iter().all(|a| a.condition.is_some()) {
            add(format!("branch {n} taking no arm"), took(None));
        }
    }
    // Each attempt of each ladder but the last abandoned (its steps are
    // counted as steps: reaching the next attempt needs this).
    for (l, ladder) in graph.ladders.iter().enumerate() {
        for k in 0..ladder.attempts.len().saturating_sub(1) {
            add(
                format!("ladder {} abandoning {}", l + 1, ladder.label(k)),
                s.abandoned.contains(&(l, k)),
            );
        }
    }
    if !graph.on_failure.is_empty() {
        add(
            "on failure handler".into(),
            s.handlers.contains("on_failure"),
        );
    }
    if !graph.on_success.is_empty() {
        add(
            "on success handler".into(),
            s.handlers.contains("on_success"),
        );
    }
    Coverage {
        runbook: graph.runbook.clone(),
        items,
    }
}
