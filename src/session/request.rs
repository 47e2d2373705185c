//! What a caller asks of a session: a fresh run ([`RunRequest`]) or the
//! resumption of one ([`ResumeRequest`]).

use crate::events::Sink;
use indexmap::IndexMap;
use std::path::PathBuf;

/// The runbook to run.
#[derive(Debug, Clone)]
pub enum Runbook {
    /// A file (`runbook run FILE`); resume reads it again.
    File(PathBuf),
    /// Source text, e.g. the body of an HTTP request. `name` is what
    /// diagnostics call it. The text is kept in the run directory
    /// (`source.runbook`) so that the run can be resumed.
    Text { name: String, text: String },
}

/// The values of a run's inputs, from every place they may come from.
/// Precedence: `args`, then `values`, then `file`, then the config
/// environment's inputs, then the runbook's defaults.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `NAME=VALUE`, as `--input` takes them: each value is read as its
    /// input's declared type.
    pub args: Vec<String>,
    /// Structured values (a JSON or YAML body), checked against the types.
    pub values: IndexMap<String, yaml_serde::Value>,
    /// A YAML file mapping input names to values (`--inputs FILE`).
    pub file: Option<PathBuf>,
}

/// How a dry run answers checks.
#[derive(Debug, Clone, Default)]
pub struct DryRun {
    /// `CHECK=ANSWER` (`true`/`pass`, `false`/`fail`), as `--assume`
    /// takes them: a check's answer (every other check passes).
    pub assume: Vec<String>,
    /// Probe read-only checks (http get/head, promql) for real; waits then
    /// take wall time.
    pub live_checks: bool,
}

/// A fresh run.
pub struct RunRequest {
    pub runbook: Runbook,
    pub inputs: Inputs,
    /// `Some`: execute nothing, show what each action would run.
    pub dry_run: Option<DryRun>,
    /// The config file (`None`: `./runbook.yaml` if present).
    pub config: Option<PathBuf>,
    /// A named environment of the config file.
    pub env: Option<String>,
    /// Steps running at once, at most.
    pub parallel: usize,
    /// Steps whose `approve` is given in advance.
    pub approve: Vec<String>,
    /// Where run directories are created (`None`: the config's, else
    /// `.runbook/runs`).
    pub runs_dir: Option<PathBuf>,
    /// Where run locks live (`None`: the config's `locks_dir`, else the
    /// machine-wide state directory: `durable::lock::locks_dir`).
    pub locks_dir: Option<PathBuf>,
    /// Take over the runbook's lock if the run holding it is dead.
    pub break_lock: bool,
    /// `--store`: where locks are shared (`postgres://...`, or `files`);
    /// `None`: the config's `store:`, else the files.
    pub store: Option<String>,
    /// On cancellation, roll back what completed.
    pub rollback_on_cancel: bool,
    /// Where events go besides the journal (console, JSON lines...; none
    /// is fine).
    pub reporters: Vec<Box<dyn Sink>>,
    /// The run is attended from this process's terminal: approvals are
    /// asked on stdin (notices on stderr), and Ctrl-C / SIGTERM cancel it.
    /// Without: approvals come only from `runbook approve` / `deny`, and
    /// the caller cancels through [`Session::cancel_handle`](super::Session::cancel_handle).
    pub terminal: bool,
    /// Who starts the run (`approve ... by other` refuses their approval);
    /// `None`: the OS user of this process (see docs/team.md,
    /// "Identities").
    pub started_by: Option<String>,
    /// The run's id, chosen by the caller (`runbook serve` queueing a run
    /// links to it before a worker starts it); `None`: a fresh one.
    pub run_id: Option<String>,
}

impl RunRequest {
    /// A live run of `runbook` with the defaults of `runbook run`: no
    /// inputs, 4 steps at once, rollback on cancel, no reporter, no
    /// terminal.
    pub fn new(runbook: Runbook) -> Self {
        RunRequest {
            runbook,
            inputs: Inputs::default(),
            dry_run: None,
            config: None,
            env: None,
            parallel: 4,
            approve: Vec::new(),
            runs_dir: None,
            locks_dir: None,
            break_lock: false,
            store: None,
            rollback_on_cancel: true,
            reporters: Vec::new(),
            terminal: false,
            started_by: None,
            run_id: None,
        }
    }
}

/// Picking up an interrupted run from its run directory.
pub struct ResumeRequest {
    pub run_id: String,
    /// `None`: the config's (`./runbook.yaml`), else `.runbook/runs`.
    pub runs_dir: Option<PathBuf>,
    /// The runbook file, if it moved (default: the one the run started).
    pub file: Option<PathBuf>,
    /// Resume although the runbook changed since the run started.
    pub force: bool,
    /// Steps (or undos) in doubt that took effect.
    pub assume_done: Vec<String>,
    /// Steps (or undos) in doubt that did not.
    pub assume_failed: Vec<String>,
    /// As in [`RunRequest`].
    pub locks_dir: Option<PathBuf>,
    /// Take over the lock if the process holding it is dead.
    pub break_lock: bool,
    /// As in [`RunRequest`].
    pub store: Option<String>,
    /// As in [`RunRequest`].
    pub reporters: Vec<Box<dyn Sink>>,
    /// As in [`RunRequest`].
    pub terminal: bool,
    /// With a PostgreSQL store: how long the run's owner must have been
    /// silent before it is taken over (`None`: the store's `grace:`).
    pub grace: Option<std::time::Duration>,
    /// Set by [`Session::take_over`](super::Session::take_over): the run
    /// was taken over from the store.
    pub(crate) takeover: Option<TakenOver>,
}

/// What a takeover gives the resumed session.
#[derive(Debug, Clone)]
pub(crate) struct TakenOver {
    /// The owner epoch claimed (every journal insert is fenced by it).
    pub epoch: i64,
    /// The config the run started with, as written into the run directory
    /// (`None`: it had none).
    pub config: Option<PathBuf>,
    /// `run_taken_over`, for the journal.
    pub event: crate::events::EventKind,
}

impl ResumeRequest {
    /// Resumes `run_id` with no answers, no reporter, no terminal.
    pub fn new(run_id: impl Into<String>) -> Self {
        ResumeRequest {
            run_id: run_id.into(),
            runs_dir: None,
            file: None,
            force: false,
            assume_done: Vec::new(),
            assume_failed: Vec::new(),
            locks_dir: None,
            break_lock: false,
            store: None,
            reporters: Vec::new(),
            terminal: false,
            grace: None,
            takeover: None,
        }
    }
}
