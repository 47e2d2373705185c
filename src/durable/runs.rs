//! Runs on disk: listing them with their state (`runbook runs`) and
//! rebuilding a run's state from its journal for `runbook resume`.
//!
//! * [`list_runs`] reads every `<runs_dir>/<id>/journal.jsonl`: a
//!   `run_finished` gives the state; without one, the run is `running` if a
//!   live process holds its journal (the journal writer's flock, see
//!   [`journal_in_use`]), else `interrupted`.
//! * [`replay`] folds a run's events into a [`RunState`]: what completed
//!   (in completion order, which the rollback order depends on), what is
//!   **in doubt** (an `action_started` with no `action_finished`: the
//!   process died while the action ran, so whether it took effect is
//!   unknown; likewise an `action_finished` ok whose node, or undo, has no
//!   outcome journalled: the run died before the step's outcome, and with
//!   it perhaps its `verify`, was on disk), the captures, and how far a
//!   rollback went.
//!
//! # Wiring (phase 2)
//!
//! * `runbook runs`: `list_runs(&runs_dir)`, print one line per run
//!   (id, runbook, started, state, last event); every field is from the
//!   journal, already redacted.
//! * `runbook resume RUN_ID`: `JournalWriter::open_append` (journal
//!   module), then `let st = replay(&read.events)`;
//!   refuse if `st.finished.is_some()`; compare `st.source_sha256` with the
//!   runbook file's (refuse unless `--force`); for each `st.in_doubt` entry
//!   whose `effect` is `Write` or more (or `Notify`), evaluate the node's
//!   `verify` or stop and ask (`--assume-done` / `--assume-failed`), and
//!   record the answer as `node_succeeded` / `node_failed` (which settles it
//!   on a later replay). Seed the scheduler with `st.completed` (not run
//!   again), the context with `st.captures`, and if `st.rollback` is
//!   `Some`, run only `RollbackState::remaining()` (undos already finished
//!   are not repeated; an in-doubt undo is in `in_doubt` with phase
//!   `undo`). If `st.needs_rollback()` and no rollback started, start it
//!   from `st.completed`.

use super::journal::{self, journal_in_use, JournalRead, JOURNAL_FILE};
use crate::adapters::Phase;
use crate::events::{Event, EventKind, Mode, NotUndone, Outcome, UndoPlanEntry};
use crate::plan::{CaptureFormat, Effect};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// No `run_finished` yet, and its process is alive.
    Running,
    Succeeded,
    RolledBack,
    RollbackIncomplete,
    Cancelled,
    /// No `run_finished`, and no process holds it: crashed or killed;
    /// `runbook resume` picks it up.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::RolledBack => "rolled_back",
            RunStatus::RollbackIncomplete => "rollback_incomplete",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn from_outcome(o: Outcome) -> Self {
        match o {
            Outcome::Succeeded => RunStatus::Succeeded,
            Outcome::RolledBack => RunStatus::RolledBack,
            Outcome::RollbackIncomplete => RunStatus::RollbackIncomplete,
            Outcome::Cancelled => RunStatus::Cancelled,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last event of a run, briefly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastEvent {
    pub seq: u64,
    pub ts: String,
    /// Its `kind` (`action_started`...).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl std::fmt::Display for LastEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} {}", self.seq, self.kind)?;
        if let Some(n) = &self.node {
            write!(f, " {n}")?;
        }
        Ok(())
    }
}

/// One run in `runbook runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunListing {
    /// The run directory's name.
    pub id: String,
    /// From `run_started` (`None`: not readable).
    pub runbook: Option<String>,
    /// `run_started`'s timestamp.
    pub started: Option<String>,
    pub state: RunStatus,
    pub last_event: Option<LastEvent>,
    /// A journal that could not be read fully (corrupt in the middle, a
    /// torn last line), said plainly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Summarizes one run directory (which must hold a journal).
pub fn run_summary(run_dir: &Path) -> RunListing {
    let id = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let in_use = journal_in_use(run_dir);
    let (read, problem) = match journal::read_journal(&run_dir.join(JOURNAL_FILE)) {
        Ok(r) => {
            let problem = r.warnings.first().cloned();
            (r, problem)
        }
        Err(e) => (JournalRead::default(), Some(e.to_string())),
    };
    let mut runbook = None;
    let mut started = None;
    let mut finished = None;
    for ev in &read.events {
        match &ev.kind {
            EventKind::RunStarted { runbook: rb, .. } if runbook.is_none() => {
                runbook = Some(rb.clone());
                started = Some(ev.ts.to_string());
            }
            EventKind::RunFinished { outcome, .. } => finished = Some(*outcome),
            _ => {}
        }
    }
    let state = match finished {
        Some(o) => RunStatus::from_outcome(o),
        None if in_use => RunStatus::Running,
        None => RunStatus::Interrupted,
    };
    RunListing {
        id,
        runbook,
        started,
        state,
        last_event: read.events.last().map(|ev| LastEvent {
            seq: ev.seq,
            ts: ev.ts.to_string(),
            kind: ev.kind.name().to_owned(),
            node: ev.node.as_deref().map(str::to_owned),
        }),
        problem,
    }
}

/// Every run under `runs_dir` (each subdirectory with a journal), newest
/// first (by `run_started` time, then id). A missing `runs_dir` is no runs.
pub fn list_runs(runs_dir: &Path) -> std::io::Result<Vec<RunListing>> {
    let entries = match std::fs::read_dir(runs_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut runs = Vec::new();
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if !path.is_dir() || !path.join(JOURNAL_FILE).is_file() {
            continue;
        }
        runs.push(run_summary(&path));
    }
    runs.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| b.id.cmp(&a.id)));
    Ok(runs)
}

// ------------------------------------------------------------- replay --

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
    pub mode: Option<Mode>,
    pub inputs: IndexMap<String, serde_json::Value>,
    /// `run_started` events seen (1, plus one per resume that logs one).
    pub sessions: usize,
    pub last_seq: u64,
    /// Nodes that ended, in the order they ended.
    pub completed: IndexMap<String, Completed>,
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
    /// Highest attempt started, by node (action phase).
    pub attempts: IndexMap<String, u32>,
    /// Captures by name, the last value stored.
    pub captures: IndexMap<String, StoredCapture>,
    /// Approvals by node: `(approved, by)`.
    pub approvals: IndexMap<String, (bool, String)>,
    pub rollback: Option<RollbackState>,
    /// `on_failure` / `on_success` handlers that started.
    pub handlers_started: Vec<String>,
    /// `cancel_requested` stages seen (`first`, `second`).
    pub cancelled: Vec<String>,
    /// `run_finished`: outcome and exit code.
    pub finished: Option<(Outcome, i32)>,
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

type ActionKey = (String, u8, Option<String>, u32);

fn phase_tag(p: Phase) -> u8 {
    match p {
        Phase::Action => 0,
        Phase::Undo => 1,
        Phase::Check => 2,
        Phase::Handler => 3,
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
                            && *status == crate::events::ActionStatus::Ok
                            && matches!(phase, Phase::Action | Phase::Undo) =>
                    {
                        d.finished = true;
                        open.insert(key, d);
                    }
                    Some(_) => {}
                }
                if let (Phase::Action, Some(item), crate::events::ActionStatus::Ok) =
                    (phase, item, status)
                {
                    let done = st.items_done.entry(n).or_default();
                    if !done.contains(item) {
                        done.push(item.clone());
                    }
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
            EventKind::CancelRequested { stage } => st.cancelled.push(stage.clone()),
            EventKind::RunFinished {
                outcome, exit_code, ..
            } => st.finished = Some((*outcome, *exit_code)),
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
    st.unfinished = ready
        .into_iter()
        .filter(|n| {
            !st.completed.contains_key(n) && st.failed.as_ref().map(|(f, _)| f != n).unwrap_or(true)
        })
        .collect();
    st
}
