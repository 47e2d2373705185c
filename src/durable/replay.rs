//! The one fold of a run's events into a picture of the run ([`RunState`]):
//! `runbook runs` reads its state from it, `runbook resume`
//! ([`exec::resume`](crate::exec::resume)) restarts the executor from it.
//!
//! [`replay`] keeps what completed (in completion order, which the
//! rollback order depends on), what is **in doubt** (an `action_started`
//! with no `action_finished`: the process died while the action ran, so
//! whether it took effect is unknown; likewise an `action_finished` ok
//! whose node, or undo, has no outcome journalled: the run died before the
//! step's outcome, and with it perhaps its `verify`, was on disk), the
//! captures, how far a rollback went, and how the run ended.
//!
//! # Wiring
//!
//! `runbook resume RUN_ID` (`session::Session::resume`):
//! `JournalWriter::open_append` (journal module), then
//! `let st = replay(&read.events)`; refuse if `st.finished.is_some()`
//! (unless a cancelled run's rollback is unfinished); compare
//! `st.source_sha256` with the runbook file's (refuse unless `--force`);
//! for each `st.in_doubt` entry whose `effect` is `Notify` or more,
//! evaluate the node's `verify` or stop and ask (`--assume-done` /
//! `--assume-failed`), and record the answer as `node_succeeded` /
//! `node_failed` (which settles it on a later replay). Seed the scheduler
//! with `st.ended` (not run again), the context with `st.captures`, and if
//! `st.rollback` is `Some`, run only `RollbackState::remaining()` (undos
//! already finished are not repeated; an in-doubt undo is in `in_doubt`
//! with phase `undo`). If `st.needs_rollback()` and no rollback started,
//! start it from `st.completed`.
//!
//! A fan-out is folded item by item: `items_done` / `items_failed` (items
//! whose action finished, for nodes not ended), items in doubt in
//! `in_doubt` with their `item`, and `undo_items_ok` (items whose undo
//! finished ok): `exec::resume` runs only the items never started and
//! undoes only the items not undone yet.

use crate::events::Phase;
use crate::events::{ActionStatus, Event, EventKind, Mode, NotUndone, Outcome, UndoPlanEntry};
use crate::plan::{CaptureFormat, Effect};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How a node ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "as")]
pub enum Completed {
    Succeeded {
        /// Items of a fan-out that failed within `max_failures`.
        failed_items: Vec<String>,
    },
    Skipped {
        reason: String,
    },
    /// Failed with `on_error continue`: the run went on.
    FailedContinued {
        reason: String,
    },
}

/// An action that started and never finished: it may or may not have
/// taken effect. Or one that finished ok but whose step (or undo) has no
/// outcome in the journal (`finished`): it took effect, but whether the
/// step as a whole (its capture, its `verify`) succeeded is not known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InDoubt {
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    pub phase: Phase,
    pub attempt: u32,
    pub adapter: String,
    pub effect: Effect,
    /// What was being executed (display form).
    pub request: String,
    /// The `action_started` event's seq.
    pub seq: u64,
    /// Its `action_finished` (ok) is in the journal, its outcome is not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finished: bool,
}

impl InDoubt {
    /// Whether repeating it could change the world twice.
    pub fn has_effect(&self) -> bool {
        self.effect >= Effect::Notify
    }
}

/// A capture, as journalled (secrets in it are `***`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCapture {
    pub node: Option<String>,
    pub format: CaptureFormat,
    pub value: serde_json::Value,
}

/// One finished undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoResult {
    pub ok: bool,
    pub attempts: u32,
    pub items: Vec<String>,
    pub error: Option<String>,
}

/// An abandoned attempt of a ladder, as the journal tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbandonedAttempt {
    pub ladder: usize,
    pub attempt: usize,
    /// Its undos that finished, by node: ok or not.
    pub undone: IndexMap<String, bool>,
    /// `attempt_undone`: whether its undo was clean.
    pub clean: Option<bool>,
}

/// How far a rollback went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackState {
    pub reason: String,
    /// The undos to run, in order.
    pub plan: Vec<UndoPlanEntry>,
    pub not_undone: Vec<NotUndone>,
    /// Undos that finished, by node, in the order they finished.
    pub undone: IndexMap<String, UndoResult>,
    /// `rollback_finished`: whether it was clean.
    pub finished: Option<bool>,
}

impl RollbackState {
    /// Plan entries whose undo has not finished, in plan order: what a
    /// resumed rollback still has to do.
    pub fn remaining(&self) -> Vec<&UndoPlanEntry> {
        self.plan
            .iter()
            .filter(|p| !self.undone.contains_key(&p.node))
            .collect()
    }
}

/// A run rebuilt from its journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: Option<String>,
    pub runbook: Option<String>,
    /// The runbook source's hash at the first start: resume refuses a
    /// changed runbook.
    pub source_sha256: Option<String>,
    /// The first `run_started`'s timestamp.
    pub started: Option<String>,
    pub mode: Option<Mode>,
    pub inputs: IndexMap<String, serde_json::Value>,
    /// `run_started` events seen (1, plus one per resume that logs one).
    pub sessions: usize,
    pub last_seq: u64,
    /// Nodes that ended, in the order they ended.
    pub completed: IndexMap<String, Completed>,
    /// Every node with an outcome journalled (`node_succeeded`,
    /// `node_skipped`, `node_failed`, continued or not), in the order of
    /// its last one: what a resumed scheduler starts from.
    pub ended: Vec<String>,
    /// Nodes with an action attempt (or fan-out item) that finished ok.
    pub action_ok: BTreeSet<String>,
    /// Fan-out items whose action finished ok, by node, in that order,
    /// whatever became of the node (unlike `items_done`).
    pub items_ok: IndexMap<String, Vec<String>>,
    /// The failure that stopped the run (`node_failed` without
    /// `continued`), the first one.
    pub failed: Option<(String, String)>,
    /// Nodes that became ready and have no outcome yet.
    pub unfinished: Vec<String>,
    /// Actions started and never finished, for nodes (or undos) not settled.
    pub in_doubt: Vec<InDoubt>,
    /// Items of a fan-out whose action finished ok, for nodes not ended:
    /// a resumed fan-out needs only the others.
    pub items_done: IndexMap<String, Vec<String>>,
    /// Items of a fan-out whose last attempt finished and failed, with why,
    /// for nodes not ended: a resumed fan-out counts them against its
    /// `max_failures` and does not run them again.
    pub items_failed: IndexMap<String, IndexMap<String, String>>,
    /// Items of a fan-out's undo whose action finished ok, by node, in that
    /// order: a resumed rollback undoes only the other items.
    pub undo_items_ok: IndexMap<String, Vec<String>>,
    /// Highest attempt started, by node (action phase).
    pub attempts: IndexMap<String, u32>,
    /// Captures by name, the last value stored.
    pub captures: IndexMap<String, StoredCapture>,
    /// Approvals by node: `(approved, by)`.
    pub approvals: IndexMap<String, (bool, String)>,
    pub rollback: Option<RollbackState>,
    /// `on_failure` / `on_success` handlers that started.
    pub handlers_started: Vec<String>,
    /// The arm each `if` took (`branch_taken`), by branch: a resumed run
    /// goes on in the same arm.
    pub branches: IndexMap<usize, Option<usize>>,
    /// Attempts of fallback ladders abandoned (`attempt_abandoned`), in
    /// order: a resumed run does not try them again, nor undo their steps
    /// twice.
    pub abandoned: Vec<AbandonedAttempt>,
    /// `cancel_requested` stages seen (`first`, `second`).
    pub cancelled: Vec<String>,
    /// `run_finished`: outcome and exit code.
    pub finished: Option<(Outcome, i32)>,
    /// `run_finished`: handler actions that failed.
    pub handler_failed: usize,
    /// Events that did not fit (an `action_finished` with no start...).
    pub warnings: Vec<String>,
}

impl RunState {
    /// A step failed or the run was cancelled, and the rollback did not
    /// finish (or did not start).
    pub fn needs_rollback(&self) -> bool {
        (self.failed.is_some() || !self.cancelled.is_empty())
            && self.rollback.as_ref().and_then(|r| r.finished).is_none()
            && self.finished.is_none()
    }

    /// In-doubt actions that may have changed the world.
    pub fn in_doubt_with_effect(&self) -> impl Iterator<Item = &InDoubt> {
        self.in_doubt.iter().filter(|d| d.has_effect())
    }

    pub fn is_completed(&self, node: &str) -> bool {
        self.completed.contains_key(node)
    }
}

/// Appends `item` unless `items` has it already.
fn push_new(items: &mut Vec<String>, item: &str) {
    if !items.iter().any(|i| i == item) {
        items.push(item.to_owned());
    }
}

type ActionKey = (String, u8, Option<String>, u32);

fn phase_tag(p: Phase) -> u8 {
    match p {
        Phase::Action => 0,
        Phase::Undo => 1,
        Phase::Check => 2,
        Phase::Handler => 3,
        Phase::Status => 4,
    }
}

/// Folds a run's events (from [`journal::read_journal`], torn tail already
/// dropped) into its state. Never fails: what does not fit is a warning.
pub fn replay(events: &[Event]) -> RunState {
    let mut st = RunState::default();
    let mut open: IndexMap<ActionKey, InDoubt> = IndexMap::new();
    let mut ready: Vec<String> = Vec::new();
    for ev in events {
        st.last_seq = ev.seq;
        if st.run_id.is_none() {
            st.run_id = Some(ev.run_id.to_string());
        }
        let node = ev.node.as_deref().map(str::to_owned);
        if let (
            Some(n),
            EventKind::NodeSucceeded { .. }
            | EventKind::NodeSkipped { .. }
            | EventKind::NodeFailed { .. },
        ) = (&node, &ev.kind)
        {
            st.ended.retain(|e| e != n);
            st.ended.push(n.clone());
        }
        match &ev.kind {
            EventKind::RunStarted {
                runbook,
                mode,
                inputs,
                source_sha256,
                ..
            } => {
                st.sessions += 1;
                if st.sessions == 1 {
                    st.runbook = Some(runbook.clone());
                    st.started = Some(ev.ts.to_string());
                    st.mode = Some(*mode);
                    st.inputs = inputs.clone();
                    st.source_sha256 = Some(source_sha256.clone());
                }
            }
            EventKind::NodeReady { .. } => {
                if let Some(n) = node {
                    if !ready.contains(&n) {
                        ready.push(n);
                    }
                }
            }
            EventKind::ActionStarted {
                adapter,
                phase,
                attempt,
                item,
                effect,
                request,
                ..
            } => {
                let Some(n) = node else {
                    st.warnings
                        .push(format!("seq {}: action_started without a node", ev.seq));
                    continue;
                };
                if *phase == Phase::Action {
                    let a = st.attempts.entry(n.clone()).or_insert(0);
                    *a = (*a).max(*attempt);
                    // Retried: its earlier failure is not its last word.
                    if let (Some(item), Some(failed)) = (item, st.items_failed.get_mut(&n)) {
                        failed.shift_remove(item);
                    }
                }
                open.insert(
                    (n.clone(), phase_tag(*phase), item.clone(), *attempt),
                    InDoubt {
                        node: n,
                        item: item.clone(),
                        phase: *phase,
                        attempt: *attempt,
                        adapter: adapter.to_string(),
                        effect: *effect,
                        request: request.clone(),
                        seq: ev.seq,
                        finished: false,
                    },
                );
            }
            EventKind::ActionFinished {
                phase,
                attempt,
                item,
                status,
                exit,
                error,
                ..
            } => {
                let Some(n) = node else {
                    st.warnings
                        .push(format!("seq {}: action_finished without a node", ev.seq));
                    continue;
                };
                let key = (n.clone(), phase_tag(*phase), item.clone(), *attempt);
                match open.shift_remove(&key) {
                    None => st.warnings.push(format!(
                        "seq {}: action_finished for `{n}` with no matching action_started",
                        ev.seq
                    )),
                    // Done, but the step's (or undo's) outcome is still to
                    // come: until it does, the step is in doubt. (A fan-out
                    // item is counted in `items_done` instead.)
                    Some(mut d)
                        if item.is_none()
                            && *status == ActionStatus::Ok
                            && matches!(phase, Phase::Action | Phase::Undo) =>
                    {
                        d.finished = true;
                        open.insert(key, d);
                    }
                    Some(_) => {}
                }
                match (phase, status, item) {
                    (Phase::Action, ActionStatus::Ok, item) => {
                        st.action_ok.insert(n.clone());
                        if let Some(item) = item {
                            if let Some(failed) = st.items_failed.get_mut(&n) {
                                failed.shift_remove(item);
                            }
                            push_new(st.items_ok.entry(n.clone()).or_default(), item);
                            push_new(st.items_done.entry(n).or_default(), item);
                        }
                    }
                    (Phase::Action, _, Some(item)) => {
                        let why = match (error, exit) {
                            (Some(e), _) => e.clone(),
                            (None, Some(code)) => format!("exit {code}"),
                            (None, None) => format!("{status:?}").to_lowercase(),
                        };
                        st.items_failed
                            .entry(n)
                            .or_default()
                            .insert(item.clone(), why);
                    }
                    (Phase::Undo, ActionStatus::Ok, Some(item)) => {
                        push_new(st.undo_items_ok.entry(n).or_default(), item);
                    }
                    _ => {}
                }
            }
            EventKind::CaptureStored {
                name,
                format,
                value,
            } => {
                st.captures.insert(
                    name.clone(),
                    StoredCapture {
                        node,
                        format: *format,
                        value: value.clone(),
                    },
                );
            }
            EventKind::NodeSucceeded { failed_items, .. } => {
                if let Some(n) = node {
                    st.completed.shift_remove(&n);
                    st.completed.insert(
                        n,
                        Completed::Succeeded {
                            failed_items: failed_items.clone(),
                        },
                    );
                }
            }
            EventKind::NodeSkipped { reason, .. } => {
                if let Some(n) = node {
                    st.completed.shift_remove(&n);
                    st.completed.insert(
                        n,
                        Completed::Skipped {
                            reason: reason.clone(),
                        },
                    );
                }
            }
            EventKind::NodeFailed {
                reason, continued, ..
            } => {
                if let Some(n) = node {
                    if *continued {
                        st.completed.shift_remove(&n);
                        st.completed.insert(
                            n,
                            Completed::FailedContinued {
                                reason: reason.clone(),
                            },
                        );
                    } else {
                        // Settles the node (no longer in doubt) without
                        // completing it.
                        st.completed.shift_remove(&n);
                        if st.failed.is_none() {
                            st.failed = Some((n.clone(), reason.clone()));
                        }
                        st.items_done.shift_remove(&n);
                        st.items_failed.shift_remove(&n);
                        open.retain(|k, _| !(k.0 == n && k.1 == phase_tag(Phase::Action)));
                        ready.retain(|r| r != &n);
                    }
                }
            }
            EventKind::RollbackStarted {
                reason,
                plan,
                not_undone,
            } => match &mut st.rollback {
                // A resumed rollback may log its (remaining) plan again:
                // keep what was undone.
                Some(rb) => {
                    rb.reason = reason.clone();
                    for p in plan {
                        if !rb.plan.iter().any(|q| q.node == p.node) {
                            rb.plan.push(p.clone());
                        }
                    }
                }
                None => {
                    st.rollback = Some(RollbackState {
                        reason: reason.clone(),
                        plan: plan.clone(),
                        not_undone: not_undone.clone(),
                        undone: IndexMap::new(),
                        finished: None,
                    })
                }
            },
            EventKind::UndoFinished {
                ok,
                attempts,
                items,
                error,
            } => {
                let Some(n) = node else {
                    st.warnings
                        .push(format!("seq {}: undo_finished without a node", ev.seq));
                    continue;
                };
                open.retain(|k, _| !(k.0 == n && k.1 == phase_tag(Phase::Undo)));
                let in_attempt =
                    st.rollback.is_none() && st.abandoned.last().is_some_and(|a| a.clean.is_none());
                if in_attempt {
                    if let Some(a) = st.abandoned.last_mut() {
                        a.undone.insert(n, *ok);
                    }
                    continue;
                }
                match &mut st.rollback {
                    Some(rb) => {
                        rb.undone.insert(
                            n,
                            UndoResult {
                                ok: *ok,
                                attempts: *attempts,
                                items: items.clone(),
                                error: error.clone(),
                            },
                        );
                    }
                    None => st.warnings.push(format!(
                        "seq {}: undo_finished for `{n}` before any rollback_started",
                        ev.seq
                    )),
                }
            }
            EventKind::RollbackFinished { clean, .. } => match &mut st.rollback {
                Some(rb) => rb.finished = Some(*clean),
                None => st.warnings.push(format!(
                    "seq {}: rollback_finished before any rollback_started",
                    ev.seq
                )),
            },
            EventKind::ApprovalGiven { by, .. } => {
                if let Some(n) = node {
                    st.approvals.insert(n, (true, by.clone()));
                }
            }
            EventKind::ApprovalRefused { by, .. } => {
                if let Some(n) = node {
                    st.approvals.insert(n, (false, by.clone()));
                }
            }
            EventKind::HandlerStarted { handler, .. } => {
                st.handlers_started.push(handler.clone());
            }
            EventKind::BranchTaken { branch, arm, .. } => {
                st.branches.insert(*branch, *arm);
            }
            EventKind::AttemptAbandoned {
                ladder, attempt, ..
            } => st.abandoned.push(AbandonedAttempt {
                ladder: *ladder,
                attempt: *attempt,
                undone: IndexMap::new(),
                clean: None,
            }),
            EventKind::AttemptUndone {
                ladder,
                attempt,
                clean,
                ..
            } => {
                if let Some(a) = st
                    .abandoned
                    .iter_mut()
                    .find(|a| a.ladder == *ladder && a.attempt == *attempt)
                {
                    a.clean = Some(*clean);
                }
            }
            EventKind::CancelRequested { stage } => st.cancelled.push(stage.clone()),
            EventKind::RunFinished {
                outcome,
                exit_code,
                counts,
                ..
            } => {
                st.finished = Some((*outcome, *exit_code));
                st.handler_failed = counts.handler_failed;
            }
            _ => {}
        }
    }
    // Settled nodes are not in doubt, whatever their open actions say.
    st.in_doubt = open
        .into_values()
        .filter(|d| match d.phase {
            Phase::Action => !st.completed.contains_key(&d.node),
            _ => true,
        })
        .collect();
    st.items_done.retain(|n, _| !st.completed.contains_key(n));
    st.items_failed
        .retain(|n, items| !items.is_empty() && !st.completed.contains_key(n));
    st.unfinished = ready
        .into_iter()
        .filter(|n| {
            !st.completed.contains_key(n) && st.failed.as_ref().map(|(f, _)| f != n).unwrap_or(true)
        })
        .collect();
    st
}
