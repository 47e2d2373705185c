//! The events and their small types: what the decision log says. Written
//! by `json.rs` (one serializer), read back by serde's derived code.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

/// Version of the journal format.
pub const JOURNAL_FORMAT: u32 = 1;

/// One entry of the decision log. Serialized by hand (`json.rs`) as
/// `seq, ts, t_ms, run_id, node?, kind` and the kind's fields; read back
/// with the derived code below.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    /// 1, 2, 3... in emission order, with no gaps.
    pub seq: u64,
    /// Wall-clock time, RFC 3339 UTC with milliseconds. In a drill, the
    /// run's start time plus the virtual time elapsed. Shared: the events
    /// of one millisecond hold the same string.
    #[serde(deserialize_with = "de_shared")]
    pub ts: Arc<str>,
    /// Milliseconds since the run started, on the run's clock (virtual in a
    /// drill): what drills assert durations on.
    pub t_ms: u64,
    /// Shared by every event of the run.
    #[serde(deserialize_with = "de_shared")]
    pub run_id: Arc<str>,
    /// The step this is about; `None` for run-level events. Handlers use
    /// `on_failure` / `on_success`. Shared by the events of one node.
    #[serde(default, deserialize_with = "de_opt_shared")]
    pub node: Option<Arc<str>>,
    #[serde(flatten)]
    pub kind: EventKind,
}

fn de_shared<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
    String::deserialize(d).map(Arc::from)
}

fn de_opt_shared<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<str>>, D::Error> {
    Option::<String>::deserialize(d).map(|o| o.map(Arc::from))
}

/// How the run is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Live,
    DryRun,
    Drill,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::DryRun => "dry_run",
            Mode::Drill => "drill",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step succeeded, was skipped, or failed with `on_error continue`.
    Succeeded,
    /// A step failed and every undo succeeded (and `after rollback verify`
    /// passed, if any).
    RolledBack,
    /// A step failed and an undo failed, or the system was not healthy after
    /// the rollback: humans needed.
    RollbackIncomplete,
    /// A step failed after a keep point had completed: the keep point and
    /// what completed before it stay; what completed after it was undone
    /// cleanly ("kept mitigation, later step failed").
    Kept,
    /// A step failed before any change (a write, or an action whose effect
    /// is unknown) had completed: nothing to undo ("stopped, nothing
    /// changed").
    NothingChanged,
    /// A step escalated (`escalate "reason"`): the run stopped there and
    /// nothing was undone ("needs a human").
    NeedsHuman,
    /// Stopped by Ctrl-C / SIGTERM.
    Cancelled,
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Succeeded => crate::exit::SUCCESS,
            Outcome::RolledBack => crate::exit::ROLLED_BACK,
            Outcome::RollbackIncomplete => crate::exit::ROLLBACK_INCOMPLETE,
            Outcome::Kept => crate::exit::KEPT,
            Outcome::NothingChanged => crate::exit::NOTHING_CHANGED,
            Outcome::NeedsHuman => crate::exit::NEEDS_HUMAN,
            Outcome::Cancelled => crate::exit::CANCELLED,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::RolledBack => "rolled_back",
            Outcome::RollbackIncomplete => "rollback_incomplete",
            Outcome::Kept => "kept",
            Outcome::NothingChanged => "nothing_changed",
            Outcome::NeedsHuman => "needs_human",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// What a condition was evaluated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionPurpose {
    When,
    Verify,
    AfterRollback,
    /// The list of a `for`.
    ForList,
    /// An arm's condition of an `if`.
    Branch,
    /// `loop until`: whether to run the action again.
    Until,
    /// `undo when`: whether the rollback runs a step's undo.
    UndoWhen,
}

/// A value a condition read, as it was when read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueRead {
    /// As written: `live.revision`, `errors_low`, `run.mode`.
    pub name: String,
    /// The value (secrets as `"***"`; `null` if absent or unknown).
    pub value: serde_json::Value,
}

/// One `expect` of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectResult {
    pub expr: String,
    /// `null`: could not be evaluated (see `error`).
    pub result: Option<bool>,
    pub values: Vec<ValueRead>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why the executor is calling an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A step's action.
    Action,
    /// A step's `undo`, during the rollback.
    Undo,
    /// A probe of a check (in a `when`, a `verify`, an `after rollback`).
    Check,
    /// An action of `on failure` / `on success`.
    Handler,
    /// A periodic status update (`every D notify ...`).
    Status,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
    NoData,
    Error,
}

/// How one attempt of an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    Ok,
    /// Ran, and said no (exit != 0, HTTP >= 400, approval refused).
    Failed,
    Timeout,
    Cancelled,
    /// No answer (could not spawn, connection refused, ...).
    Error,
}

/// One entry of the rollback plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoPlanEntry {
    pub node: String,
    /// For a fan-out: the items that completed, in the order they will be
    /// undone. Empty for a plain step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
}

/// A completed step with no undo, or a step whose state is unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotUndone {
    pub node: String,
    pub reason: String,
}

/// Per-node totals in `run_finished`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    pub not_run: usize,
    pub undone: usize,
    pub undo_failed: usize,
    /// Actions of `on failure` / `on success` that failed: reported, they
    /// do not change the outcome or the exit code.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handler_failed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Every kind of event. Serialized as `"kind": "<snake_case name>"` with
/// the fields beside it, in the order written here, an optional field left
/// out when it is `None` or an empty list (`json.rs`, which the derived
/// reading below must agree with).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted {
        format: u32,
        runbook: String,
        #[serde(default)]
        title: Option<String>,
        mode: Mode,
        /// Every input with its value (secrets are never inputs).
        inputs: IndexMap<String, serde_json::Value>,
        /// Names of the secrets; values are never logged.
        secrets: Vec<String>,
        source_sha256: String,
        parallel: usize,
        /// Dry run: a plain statement of how checks are answered.
        #[serde(default)]
        notes: Vec<String>,
    },
    NodeReady {
        deps: Vec<String>,
    },
    ConditionEvaluated {
        purpose: ConditionPurpose,
        expr: String,
        values: Vec<ValueRead>,
        /// `null` when it could not be decided (see `error`, or in a dry run a
        /// value from a simulated action).
        result: Option<bool>,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        note: Option<String>,
    },
    NodeSkipped {
        reason: String,
        /// The values that made the condition false.
        values: Vec<ValueRead>,
    },
    ActionStarted {
        /// `shell`, `http`, `notify`, `approve`, `wait`.
        adapter: Cow<'static, str>,
        phase: Phase,
        attempt: u32,
        #[serde(default)]
        item: Option<String>,
        effect: crate::plan::Effect,
        /// Exactly what is executed, secrets as `***`.
        request: String,
        #[serde(default, deserialize_with = "crate::plan::dur::option::deserialize")]
        timeout: Option<std::time::Duration>,
        /// Nothing was executed (dry run).
        simulated: bool,
    },
    ActionFinished {
        /// `shell`, `http`, `notify`, `approve`, `wait`.
        adapter: Cow<'static, str>,
        phase: Phase,
        attempt: u32,
        #[serde(default)]
        item: Option<String>,
        status: ActionStatus,
        #[serde(default)]
        exit: Option<i32>,
        #[serde(default)]
        http_status: Option<u16>,
        elapsed_ms: u64,
        /// Tail of the output (stdout then stderr; HTTP body head).
        #[serde(default)]
        output: Option<String>,
        #[serde(default)]
        error: Option<String>,
    },
    CheckEvaluated {
        check: String,
        /// The probe as executed (secrets as `***`).
        probe: String,
        status: CheckStatus,
        /// As a boolean in its condition (`no_data` per `on no_data`).
        passed: bool,
        /// What was observed (status, elapsed, value, exit...).
        observed: IndexMap<String, serde_json::Value>,
        expects: Vec<ExpectResult>,
        #[serde(default)]
        error: Option<String>,
        /// How the answer was obtained when nothing was probed.
        #[serde(default)]
        note: Option<String>,
    },
    RetryScheduled {
        /// The attempt about to be made.
        attempt: u32,
        delay_ms: u64,
        reason: String,
        #[serde(default)]
        item: Option<String>,
    },
    Timeout {
        phase: Phase,
        attempt: u32,
        after_ms: u64,
        #[serde(default)]
        item: Option<String>,
    },
    VerifyPoll {
        poll: u32,
        passed: bool,
        /// Passes in a row so far, and how many are needed.
        streak: u32,
        needed: u32,
        /// Time left in the window.
        remaining_ms: u64,
    },
    CaptureStored {
        name: String,
        format: crate::plan::CaptureFormat,
        /// The captured value (redacted).
        value: serde_json::Value,
    },
    NodeSucceeded {
        attempts: u32,
        elapsed_ms: u64,
        /// Items of a fan-out that failed within `max_failures`.
        #[serde(default)]
        failed_items: Vec<String>,
    },
    NodeFailed {
        reason: String,
        attempts: u32,
        /// `on_error continue`: the run goes on.
        continued: bool,
    },
    RollbackStarted {
        /// The failed step that triggered it (or `cancelled`).
        reason: String,
        /// The undos to run, in order.
        plan: Vec<UndoPlanEntry>,
        /// Completed steps that will not be undone, and why.
        not_undone: Vec<NotUndone>,
    },
    UndoFinished {
        ok: bool,
        attempts: u32,
        #[serde(default)]
        items: Vec<String>,
        #[serde(default)]
        error: Option<String>,
    },
    RollbackFinished {
        clean: bool,
        failed_undos: Vec<String>,
        /// `after rollback verify` result, if the runbook has one.
        #[serde(default)]
        after_rollback_verified: Option<bool>,
    },
    NotificationSent {
        channel: String,
        text: String,
        ok: bool,
        #[serde(default)]
        http_status: Option<u16>,
        simulated: bool,
    },
    ApprovalAsked {
        message: String,
        #[serde(default, deserialize_with = "crate::plan::dur::option::deserialize")]
        timeout: Option<std::time::Duration>,
        preapproved: bool,
    },
    ApprovalGiven {
        by: String,
        #[serde(default)]
        reason: Option<String>,
    },
    ApprovalRefused {
        by: String,
        #[serde(default)]
        reason: Option<String>,
    },
    /// An attempt to approve refused without answering the question (the
    /// run's starter approving an `approve ... by other` step); the step
    /// goes on waiting.
    ApprovalAttemptRefused {
        by: String,
        /// `command`, `web` or `terminal`.
        via: String,
        #[serde(default)]
        reason: Option<String>,
        why: String,
    },
    HandlerStarted {
        /// `on_failure` or `on_success`.
        handler: String,
        actions: usize,
    },
    /// An `if` block was reached and decided: `arm` (0-based; `None`: no
    /// arm holds and there is no `else`) runs, `skipped` steps do not.
    BranchTaken {
        branch: usize,
        #[serde(default)]
        arm: Option<usize>,
        /// `if COND`, `else if COND`, `else`, or `none`.
        taken: String,
        /// In a `for` body: the item the block was decided for (each item
        /// decides its own copy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<String>,
        #[serde(default)]
        skipped: Vec<String>,
    },
    /// A step of a fallback ladder's attempt (not the last) failed: the
    /// attempt is abandoned. Its completed steps are undone next (each an
    /// `undo_finished`, `plan` in order), then `attempt_undone`.
    AttemptAbandoned {
        ladder: usize,
        /// From 0.
        attempt: usize,
        /// `attempt 1 (try)`.
        label: String,
        /// The step that failed, and why.
        step: String,
        reason: String,
        plan: Vec<UndoPlanEntry>,
        not_undone: Vec<NotUndone>,
    },
    /// The undo of an abandoned attempt is over: `clean` (everything
    /// undone: the next attempt, `next`, starts) or not (the run stops,
    /// its rollback is incomplete).
    AttemptUndone {
        ladder: usize,
        attempt: usize,
        clean: bool,
        #[serde(default)]
        failed_undos: Vec<String>,
        /// The attempt that starts now, if the undo was clean.
        #[serde(default)]
        next: Option<String>,
    },
    CancelRequested {
        /// `first`: stop and roll back; `second`: stop the rollback too.
        stage: String,
    },
    Warning {
        message: String,
    },
    /// This process took the run over from an owner that stopped
    /// heartbeating (docs/team.md): the old owner's epoch no longer
    /// writes to the journal.
    RunTakenOver {
        /// Who took it over (`worker HOST:PID`, or `resume by USER`).
        by: String,
        /// Where: this process's host and pid.
        host: String,
        pid: u32,
        /// The owner it was taken from, as its row last named it.
        from_host: String,
        from_user: String,
        from_pid: i64,
        /// How long that owner had been silent, in milliseconds.
        silent_ms: u64,
        /// That owner's process was on this machine and is gone: taken
        /// over without waiting for the grace (`runbook resume --store`).
        #[serde(default)]
        owner_gone: bool,
        old_epoch: i64,
        new_epoch: i64,
    },
    RunFinished {
        outcome: Outcome,
        exit_code: i32,
        elapsed_ms: u64,
        #[serde(default)]
        failed_step: Option<String>,
        #[serde(default)]
        failure_reason: Option<String>,
        counts: Counts,
    },
}

impl EventKind {
    /// The `kind` string of this event.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::RunStarted { .. } => "run_started",
            EventKind::NodeReady { .. } => "node_ready",
            EventKind::ConditionEvaluated { .. } => "condition_evaluated",
            EventKind::NodeSkipped { .. } => "node_skipped",
            EventKind::ActionStarted { .. } => "action_started",
            EventKind::ActionFinished { .. } => "action_finished",
            EventKind::CheckEvaluated { .. } => "check_evaluated",
            EventKind::RetryScheduled { .. } => "retry_scheduled",
            EventKind::Timeout { .. } => "timeout",
            EventKind::VerifyPoll { .. } => "verify_poll",
            EventKind::CaptureStored { .. } => "capture_stored",
            EventKind::NodeSucceeded { .. } => "node_succeeded",
            EventKind::NodeFailed { .. } => "node_failed",
            EventKind::RollbackStarted { .. } => "rollback_started",
            EventKind::UndoFinished { .. } => "undo_finished",
            EventKind::RollbackFinished { .. } => "rollback_finished",
            EventKind::NotificationSent { .. } => "notification_sent",
            EventKind::ApprovalAsked { .. } => "approval_asked",
            EventKind::ApprovalGiven { .. } => "approval_given",
            EventKind::ApprovalRefused { .. } => "approval_refused",
            EventKind::ApprovalAttemptRefused { .. } => "approval_attempt_refused",
            EventKind::HandlerStarted { .. } => "handler_started",
            EventKind::BranchTaken { .. } => "branch_taken",
            EventKind::AttemptAbandoned { .. } => "attempt_abandoned",
            EventKind::AttemptUndone { .. } => "attempt_undone",
            EventKind::CancelRequested { .. } => "cancel_requested",
            EventKind::Warning { .. } => "warning",
            EventKind::RunTakenOver { .. } => "run_taken_over",
            EventKind::RunFinished { .. } => "run_finished",
        }
    }

    /// Every kind name, for the documentation test.
    pub const ALL: &'static [&'static str] = &[
        "run_started",
        "node_ready",
        "condition_evaluated",
        "node_skipped",
        "action_started",
        "action_finished",
        "check_evaluated",
        "retry_scheduled",
        "timeout",
        "verify_poll",
        "capture_stored",
        "node_succeeded",
        "node_failed",
        "rollback_started",
        "undo_finished",
        "rollback_finished",
        "notification_sent",
        "approval_asked",
        "approval_given",
        "approval_refused",
        "handler_started",
        "cancel_requested",
        "warning",
        "run_finished",
        "branch_taken",
        "approval_attempt_refused",
        "run_taken_over",
        "attempt_abandoned",
        "attempt_undone",
    ];

    /// Events after which a durable journal must be on disk before the run
    /// goes on: the start of an action that changes the world, and every
    /// outcome of a node or undo (the write-ahead rule).
    ///
    /// `action_finished` is not one: the node's outcome, which is, follows
    /// it at once (after a capture, or the polls of a `verify`), and no
    /// other side effect can start in between without an fsync of its own.
    /// If the run dies before the outcome is on disk, resume finds the
    /// step's action started with no outcome and treats the step as in
    /// doubt, whether or not its `action_finished` reached the disk (see
    /// `durable::runs::replay`). The journal writer further skips the
    /// fsync of a node's outcome when its action only read
    /// (`JournalWriter::must_sync`): a step that reads costs no fsync, one
    /// that changes something two.
    pub fn is_write_ahead(&self) -> bool {
        match self {
            EventKind::ActionStarted {
                effect, simulated, ..
            } => !simulated && *effect >= crate::plan::Effect::Notify,
            EventKind::NodeSucceeded { .. }
            | EventKind::NodeFailed { .. }
            | EventKind::UndoFinished { .. }
            | EventKind::RollbackStarted { .. }
            | EventKind::RollbackFinished { .. }
            | EventKind::AttemptAbandoned { .. }
            | EventKind::AttemptUndone { .. }
            | EventKind::RunFinished { .. } => true,
            _ => false,
        }
    }
}
