//! Runs on disk: listing them with their state (`runbook runs`).
//!
//! * [`list_runs`] reads every `<runs_dir>/<id>/journal.jsonl`: a
//!   `run_finished` gives the state; without one, the run is `running` if a
//!   live process holds its journal (the journal writer's flock, see
//!   [`journal_in_use`]), else `interrupted`.
//! * A run's state is the one fold of its events,
//!   [`replay`](super::replay::replay) (re-exported here), which
//!   `runbook resume` uses too.
//!
//! # Wiring
//!
//! * `runbook runs`: `list_runs(&runs_dir)`, print one line per run
//!   (id, runbook, started, state, last event); every field is from the
//!   journal, already redacted.

use super::journal::{self, journal_in_use, JournalRead, JOURNAL_FILE};
use crate::events::Outcome;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use super::replay::{
    replay, Completed, InDoubt, RollbackState, RunState, StoredCapture, UndoResult,
};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// No `run_finished` yet, and its process is alive.
    Running,
    Succeeded,
    RolledBack,
    RollbackIncomplete,
    /// A step failed after a keep point: mitigation kept.
    Kept,
    /// A step failed before anything changed.
    NothingChanged,
    /// A step escalated: a human decides.
    NeedsHuman,
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
            RunStatus::Kept => "kept",
            RunStatus::NothingChanged => "nothing_changed",
            RunStatus::NeedsHuman => "needs_human",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn from_outcome(o: Outcome) -> Self {
        match o {
            Outcome::Succeeded => RunStatus::Succeeded,
            Outcome::RolledBack => RunStatus::RolledBack,
            Outcome::RollbackIncomplete => RunStatus::RollbackIncomplete,
            Outcome::Kept => RunStatus::Kept,
            Outcome::NothingChanged => RunStatus::NothingChanged,
            Outcome::NeedsHuman => RunStatus::NeedsHuman,
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
    /// Actions of `on failure` / `on success` that failed (the outcome
    /// stands; a human should look at what they were to do).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handler_failed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Summarizes one run directory (which must hold a journal).
pub fn run_summary(run_dir: &Path) -> RunListing {
    read_run(run_dir).listing
}

/// One run directory, its journal read and replayed once: the listing, the
/// events and the state, for a caller that shows more than the listing
/// (the run page of `runbook serve`).
pub struct RunRead {
    pub listing: RunListing,
    /// Every complete event (none when the journal is unreadable).
    pub events: Vec<crate::events::Event>,
    pub state: RunState,
    /// Why the journal could not be read at all (`None`: it was read).
    pub unreadable: Option<String>,
}

/// Reads one run directory (which must hold a journal): see [`RunRead`].
pub fn read_run(run_dir: &Path) -> RunRead {
    let id = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let in_use = journal_in_use(run_dir);
    summarize(
        id,
        journal::read_journal(&run_dir.join(JOURNAL_FILE)),
        in_use,
    )
}

/// One run from its journal as read (a file, or a store's rows) and
/// whether a live process holds it (`alive`): without a `run_finished`, a
/// run is `running` if so, else `interrupted`. The store reads its runs
/// through this too ([`crate::store`] is above this layer).
pub fn summarize(
    id: String,
    read: Result<JournalRead, journal::JournalError>,
    alive: bool,
) -> RunRead {
    let (read, problem, unreadable) = match read {
        Ok(r) => {
            let problem = r.warnings.first().cloned();
            (r, problem, None)
        }
        Err(e) => (
            JournalRead::default(),
            Some(e.to_string()),
            Some(e.to_string()),
        ),
    };
    let st = replay(&read.events);
    let state = match st.finished {
        Some((o, _)) => RunStatus::from_outcome(o),
        None if alive => RunStatus::Running,
        None => RunStatus::Interrupted,
    };
    let listing = RunListing {
        id,
        runbook: st.runbook.clone(),
        started: st.started.clone(),
        state,
        last_event: read.events.last().map(|ev| LastEvent {
            seq: ev.seq,
            ts: ev.ts.to_string(),
            kind: ev.kind.name().to_owned(),
            node: ev.node.as_deref().map(str::to_owned),
        }),
        problem,
        handler_failed: st.handler_failed,
    };
    RunRead {
        listing,
        events: read.events,
        state: st,
        unreadable,
    }
}

/// Newest first (by `run_started` time, then id), as `runbook runs` shows
/// them.
pub fn sort_newest_first(runs: &mut [RunListing]) {
    runs.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| b.id.cmp(&a.id)));
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
    sort_newest_first(&mut runs);
    Ok(runs)
}
