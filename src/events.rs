//! The decision log's events: the only interface between the executor and
//! the reporters (journal, console, `--output json`, drills).
//!
//! The executor builds an [`EventKind`], an [`Emitter`] stamps it with a
//! sequence number, timestamps, the run id and the node, redacts every known
//! secret value from its text, and hands it to each [`Sink`] in turn,
//! synchronously: when `emit` returns, every sink has the event (for the
//! journal: written; issue 5 adds "and fsynced" for events where
//! [`EventKind::is_write_ahead`] holds, before the side effect starts).
//!
//! The JSON form (one object per line in `journal.jsonl`) is documented in
//! `docs/decision-log.md`; a test checks that every kind is documented.

use crate::adapters::{CheckStatus, Phase};
use crate::exec::redact::Redactor;
use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

/// Version of the journal format.
pub const JOURNAL_FORMAT: u32 = 1;

/// One entry of the decision log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, 3... in emission order, with no gaps.
    pub seq: u64,
    /// Wall-clock time, RFC 3339 UTC with milliseconds. In a drill, the
    /// run's start time plus the virtual time elapsed. Shared: the events
    /// of one millisecond hold the same string.
    #[serde(serialize_with = "ser_str", deserialize_with = "de_shared")]
    pub ts: Arc<str>,
    /// Milliseconds since the run started, on the run's clock (virtual in a
    /// drill): what drills assert durations on.
    pub t_ms: u64,
    /// Shared by every event of the run.
    #[serde(serialize_with = "ser_str", deserialize_with = "de_shared")]
    pub run_id: Arc<str>,
    /// The step this is about; `None` for run-level events. Handlers use
    /// `on_failure` / `on_success`. Shared by the events of one node.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_str",
        deserialize_with = "de_opt_shared"
    )]
    pub node: Option<Arc<str>>,
    #[serde(flatten)]
    pub kind: EventKind,
}

fn ser_str<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

fn ser_opt_str<S: Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(&**v),
        None => s.serialize_none(),
    }
}

/// As `plan::dur::option` writes it (`"5m 30s"`), without building a
/// `String` for it.
fn ser_opt_dur<S: Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.collect_str(&humantime::format_duration(*d)),
        None => s.serialize_none(),
    }
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
    /// Stopped by Ctrl-C / SIGTERM.
    Cancelled,
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Succeeded => crate::exec::exit::SUCCESS,
            Outcome::RolledBack => crate::exec::exit::ROLLED_BACK,
            Outcome::RollbackIncomplete => crate::exec::exit::ROLLBACK_INCOMPLETE,
            Outcome::Cancelled => crate::exec::exit::CANCELLED,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::RolledBack => "rolled_back",
            Outcome::RollbackIncomplete => "rollback_incomplete",
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
}

/// Every kind of event. Serialized as `"kind": "<snake_case name>"` with
/// the fields beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted {
        format: u32,
        runbook: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        mode: Mode,
        /// Every input with its value (secrets are never inputs).
        inputs: IndexMap<String, serde_json::Value>,
        /// Names of the secrets; values are never logged.
        secrets: Vec<String>,
        source_sha256: String,
        parallel: usize,
        /// Dry run: a plain statement of how checks are answered.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<String>,
        effect: crate::plan::Effect,
        /// Exactly what is executed, secrets as `***`.
        request: String,
        #[serde(
            default,
            serialize_with = "ser_opt_dur",
            deserialize_with = "crate::plan::dur::option::deserialize",
            skip_serializing_if = "Option::is_none"
        )]
        timeout: Option<std::time::Duration>,
        /// Nothing was executed (dry run).
        simulated: bool,
    },
    ActionFinished {
        /// `shell`, `http`, `notify`, `approve`, `wait`.
        adapter: Cow<'static, str>,
        phase: Phase,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<String>,
        status: ActionStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        http_status: Option<u16>,
        elapsed_ms: u64,
        /// Tail of the output (stdout then stderr; HTTP body head).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// How the answer was obtained when nothing was probed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    RetryScheduled {
        /// The attempt about to be made.
        attempt: u32,
        delay_ms: u64,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<String>,
    },
    Timeout {
        phase: Phase,
        attempt: u32,
        after_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        items: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    RollbackFinished {
        clean: bool,
        failed_undos: Vec<String>,
        /// `after rollback verify` result, if the runbook has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_rollback_verified: Option<bool>,
    },
    NotificationSent {
        channel: String,
        text: String,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        http_status: Option<u16>,
        simulated: bool,
    },
    ApprovalAsked {
        message: String,
        #[serde(
            default,
            serialize_with = "ser_opt_dur",
            deserialize_with = "crate::plan::dur::option::deserialize",
            skip_serializing_if = "Option::is_none"
        )]
        timeout: Option<std::time::Duration>,
        preapproved: bool,
    },
    ApprovalGiven {
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    ApprovalRefused {
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    HandlerStarted {
        /// `on_failure` or `on_success`.
        handler: String,
        actions: usize,
    },
    CancelRequested {
        /// `first`: stop and roll back; `second`: stop the rollback too.
        stage: String,
    },
    Warning {
        message: String,
    },
    RunFinished {
        outcome: Outcome,
        exit_code: i32,
        elapsed_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed_step: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
            EventKind::HandlerStarted { .. } => "handler_started",
            EventKind::CancelRequested { .. } => "cancel_requested",
            EventKind::Warning { .. } => "warning",
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
    ];

    /// Events after which a durable journal must be on disk before the run
    /// goes on: the start of an action that changes the world, and every
    /// outcome of a node or undo (issue 5's write-ahead rule).
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
            | EventKind::RunFinished { .. } => true,
            _ => false,
        }
    }

    /// Applies `f` to every free-text field (messages, commands, outputs,
    /// values read), so that secrets can be redacted in one place.
    pub fn map_text(&mut self, f: &dyn Fn(&str) -> Option<String>) {
        fn s(f: &dyn Fn(&str) -> Option<String>, x: &mut String) {
            if let Some(r) = f(x) {
                *x = r;
            }
        }
        fn o(f: &dyn Fn(&str) -> Option<String>, x: &mut Option<String>) {
            if let Some(x) = x {
                s(f, x);
            }
        }
        fn j(f: &dyn Fn(&str) -> Option<String>, v: &mut serde_json::Value) {
            match v {
                serde_json::Value::String(x) => s(f, x),
                serde_json::Value::Array(a) => a.iter_mut().for_each(|v| j(f, v)),
                serde_json::Value::Object(m) => m.values_mut().for_each(|v| j(f, v)),
                _ => {}
            }
        }
        fn reads(f: &dyn Fn(&str) -> Option<String>, v: &mut [ValueRead]) {
            v.iter_mut().for_each(|r| j(f, &mut r.value));
        }
        match self {
            EventKind::RunStarted { inputs, notes, .. } => {
                inputs.values_mut().for_each(|v| j(f, v));
                notes.iter_mut().for_each(|x| s(f, x));
            }
            EventKind::NodeReady { .. } => {}
            EventKind::ConditionEvaluated {
                values,
                error,
                note,
                ..
            } => {
                reads(f, values);
                o(f, error);
                o(f, note);
            }
            EventKind::NodeSkipped { reason, values } => {
                s(f, reason);
                reads(f, values);
            }
            EventKind::ActionStarted { item, request, .. } => {
                o(f, item);
                s(f, request);
            }
            EventKind::ActionFinished {
                item,
                output,
                error,
                ..
            } => {
                o(f, item);
                o(f, output);
                o(f, error);
            }
            EventKind::CheckEvaluated {
                probe,
                observed,
                expects,
                error,
                note,
                ..
            } => {
                s(f, probe);
                observed.values_mut().for_each(|v| j(f, v));
                for e in expects {
                    reads(f, &mut e.values);
                    o(f, &mut e.error);
                }
                o(f, error);
                o(f, note);
            }
            EventKind::RetryScheduled { reason, item, .. } => {
                s(f, reason);
                o(f, item);
            }
            EventKind::Timeout { item, .. } => o(f, item),
            EventKind::VerifyPoll { .. } => {}
            EventKind::CaptureStored { value, .. } => j(f, value),
            EventKind::NodeSucceeded { failed_items, .. } => {
                failed_items.iter_mut().for_each(|x| s(f, x))
            }
            EventKind::NodeFailed { reason, .. } => s(f, reason),
            EventKind::RollbackStarted {
                reason,
                plan,
                not_undone,
            } => {
                s(f, reason);
                for p in plan {
                    p.items.iter_mut().for_each(|x| s(f, x));
                }
                for n in not_undone {
                    s(f, &mut n.reason);
                }
            }
            EventKind::UndoFinished { items, error, .. } => {
                items.iter_mut().for_each(|x| s(f, x));
                o(f, error);
            }
            EventKind::RollbackFinished { .. } => {}
            EventKind::NotificationSent { text, .. } => s(f, text),
            EventKind::ApprovalAsked { message, .. } => s(f, message),
            EventKind::ApprovalGiven { by, reason } | EventKind::ApprovalRefused { by, reason } => {
                s(f, by);
                o(f, reason);
            }
            EventKind::HandlerStarted { .. } => {}
            EventKind::CancelRequested { .. } => {}
            EventKind::Warning { message } => s(f, message),
            EventKind::RunFinished { failure_reason, .. } => o(f, failure_reason),
        }
    }
}

/// A consumer of events: the journal, the console, `--output json`, a
/// drill's recorder.
pub trait Sink: Send {
    /// Called once per event, in `seq` order. An error is reported once as
    /// a warning on the other sinks and the sink is dropped from the run
    /// (except the journal, whose failure stops the run: see `Emitter`).
    fn event(&mut self, ev: &Event) -> std::io::Result<()>;

    /// Called when the run may wait (for a process, a request, a timer, a
    /// human): whatever the sink holds back for speed must reach its reader
    /// now. An error counts as one from [`Sink::event`].
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    /// Called once at the end of the run (flush, print the summary).
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    /// [`Sink::event`] for the start of an action whose caller makes it
    /// durable itself, with [`Sink::durable`], before the action can change
    /// anything ([`Emitter::emit_durable_later`]). A sink that fsyncs may
    /// leave this event's fsync to that call.
    fn event_durable_later(&mut self, ev: &Event) -> std::io::Result<()> {
        self.event(ev)
    }

    /// Every event delivered so far must now be on disk (fsynced), where
    /// the sink makes such a promise at all.
    fn durable(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A sink that keeps every event in memory (tests, drills).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    pub events: std::sync::Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn take(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Sink for Recorder {
    fn event(&mut self, ev: &Event) -> std::io::Result<()> {
        if let Ok(mut e) = self.events.lock() {
            e.push(ev.clone());
        }
        Ok(())
    }
}

struct EmitterState {
    seq: u64,
    sinks: Vec<(Box<dyn Sink>, bool)>,
    failed: bool,
    /// The node ids of the last events, shared rather than copied into
    /// each event (a node's events come in a row, or nearly).
    nodes: [Option<Arc<str>>; NODE_CACHE],
    next_node: usize,
}

const NODE_CACHE: usize = 8;

impl EmitterState {
    fn node(&mut self, node: &str) -> Arc<str> {
        // Newest first: the node of the last event is the likeliest.
        for back in 1..=NODE_CACHE {
            let i = (self.next_node + NODE_CACHE - back) % NODE_CACHE;
            match &self.nodes[i] {
                Some(n) if &**n == node => return n.clone(),
                _ => {}
            }
        }
        let n: Arc<str> = Arc::from(node);
        self.nodes[self.next_node] = Some(n.clone());
        self.next_node = (self.next_node + 1) % NODE_CACHE;
        n
    }
}

/// Stamps, redacts and distributes events. Cheap to share (`Arc`).
pub struct Emitter {
    run_id: Arc<str>,
    clock: crate::exec::clock::Clock,
    redactor: Redactor,
    state: Mutex<EmitterState>,
}

impl Emitter {
    /// `sinks`: each with `critical` — a failing critical sink (the
    /// journal) marks the emitter failed, which stops the run.
    pub fn new(
        run_id: impl Into<String>,
        clock: crate::exec::clock::Clock,
        redactor: Redactor,
        sinks: Vec<(Box<dyn Sink>, bool)>,
    ) -> Self {
        Emitter {
            run_id: Arc::from(run_id.into()),
            clock,
            redactor,
            state: Mutex::new(EmitterState {
                seq: 0,
                sinks,
                failed: false,
                nodes: Default::default(),
                next_node: 0,
            }),
        }
    }

    /// Numbers the next event `last_seq + 1`: a resumed run goes on with
    /// the journal's numbering.
    pub fn continuing_after(self, last_seq: u64) -> Self {
        if let Ok(mut st) = self.state.lock() {
            st.seq = last_seq;
        }
        self
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn clock(&self) -> &crate::exec::clock::Clock {
        &self.clock
    }

    /// Whether a critical sink (the journal) failed: the run must stop.
    pub fn failed(&self) -> bool {
        self.state.lock().map(|s| s.failed).unwrap_or(true)
    }

    pub fn emit(&self, node: Option<&str>, kind: EventKind) {
        self.emit_with(node, |_| kind);
    }

    /// Emits the event `kind` builds from the instant the event is stamped
    /// with, and returns that instant: one reading of the clock serves
    /// both the event's time and a duration it reports (or a later one
    /// measures from), where reading it was a tenth of a dry run's time.
    pub fn emit_with(
        &self,
        node: Option<&str>,
        kind: impl FnOnce(tokio::time::Instant) -> EventKind,
    ) -> tokio::time::Instant {
        self.emit_to_sinks(node, kind, false)
    }

    /// [`emit_with`](Self::emit_with) for the start of an action that makes
    /// its start durable by calling [`durable`](Self::durable) before it
    /// changes anything: the journal may leave this event's fsync to that
    /// call, so that the fsync overlaps the action's own start-up (a shell's
    /// exec: see `adapters::StartBarrier`). The caller must call `durable`
    /// before the action can have an effect.
    pub fn emit_durable_later(
        &self,
        node: Option<&str>,
        kind: impl FnOnce(tokio::time::Instant) -> EventKind,
    ) -> tokio::time::Instant {
        self.emit_to_sinks(node, kind, true)
    }

    /// Makes every event emitted so far durable ([`Sink::durable`]).
    /// Returns false if the journal failed (now or before): what was to
    /// start must not.
    pub fn durable(&self) -> bool {
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        self.deliver(&mut st, |s| s.durable());
        !st.failed
    }

    fn emit_to_sinks(
        &self,
        node: Option<&str>,
        kind: impl FnOnce(tokio::time::Instant) -> EventKind,
        durable_later: bool,
    ) -> tokio::time::Instant {
        let Ok(mut st) = self.state.lock() else {
            return self.clock.now();
        };
        st.seq += 1;
        let (now, ts, t_ms) = self.clock.stamp_now();
        let mut kind = kind(now);
        if !self.redactor.is_empty() {
            kind.map_text(&|s| self.redactor.redact_if_needed(s));
        }
        let ev = Event {
            seq: st.seq,
            ts,
            t_ms,
            run_id: self.run_id.clone(),
            node: node.map(|n| st.node(n)),
            kind,
        };
        if durable_later {
            self.deliver(&mut st, |s| s.event_durable_later(&ev));
        } else {
            self.deliver(&mut st, |s| s.event(&ev));
        }
        now
    }

    /// Flushes every sink ([`Sink::flush`]): the run may now wait.
    pub fn flush(&self) {
        if let Ok(mut st) = self.state.lock() {
            self.deliver(&mut st, |s| s.flush());
        }
    }

    /// Applies `f` to each sink; a sink that fails is dropped from the run
    /// and the others get a warning saying so.
    fn deliver(
        &self,
        st: &mut EmitterState,
        mut f: impl FnMut(&mut dyn Sink) -> std::io::Result<()>,
    ) {
        let mut errors = Vec::new();
        let mut i = 0;
        while i < st.sinks.len() {
            if let Err(e) = f(st.sinks[i].0.as_mut()) {
                let critical = st.sinks[i].1;
                errors.push(format!(
                    "{} output failed: {e}",
                    if critical { "journal" } else { "an" }
                ));
                if critical {
                    st.failed = true;
                }
                st.sinks.remove(i);
            } else {
                i += 1;
            }
        }
        for message in errors {
            st.seq += 1;
            let (ts, t_ms) = self.clock.stamp();
            let w = Event {
                seq: st.seq,
                ts,
                t_ms,
                run_id: self.run_id.clone(),
                node: None,
                kind: EventKind::Warning {
                    message: self.redactor.redact(&message),
                },
            };
            for (s, _) in st.sinks.iter_mut() {
                let _ = s.event(&w);
            }
        }
    }

    /// Flushes every sink and prints summaries; called once, at the end.
    pub fn finish(&self) {
        if let Ok(mut st) = self.state.lock() {
            for (s, _) in st.sinks.iter_mut() {
                let _ = s.finish();
            }
        }
    }
}

// ------------------------------------------------------------ JSON out --

impl Event {
    /// Appends the event's JSON to `out`, byte for byte what
    /// `serde_json::to_writer` writes (the journal hashes these bytes).
    ///
    /// The kinds every step emits (a dry run of trivial steps writes
    /// nothing else) are written by hand: serde's derived code goes
    /// through a map serializer because of `#[serde(flatten)]`, and
    /// escapes keys and names that are known to be plain ASCII; that was
    /// about a seventh of a dry run's time. The other kinds go through
    /// serde. `tests/event_json.rs` holds the two to the same bytes.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        use EventKind as K;
        match &self.kind {
            K::NodeReady { .. }
            | K::ActionStarted { .. }
            | K::ActionFinished { .. }
            | K::NodeSucceeded { .. } => {}
            _ => return serde_json::to_writer(out, self),
        }
        out.extend_from_slice(b"{\"seq\":");
        json_uint(out, self.seq);
        out.extend_from_slice(b",\"ts\":");
        json_str(out, &self.ts);
        out.extend_from_slice(b",\"t_ms\":");
        json_uint(out, self.t_ms);
        out.extend_from_slice(b",\"run_id\":");
        json_str(out, &self.run_id);
        if let Some(node) = &self.node {
            out.extend_from_slice(b",\"node\":");
            json_str(out, node);
        }
        // Each kind's name is written with the constant text around it:
        // one fixed-size copy instead of a call to copy a name found at run
        // time.
        match &self.kind {
            K::NodeReady { deps } => {
                out.extend_from_slice(b",\"kind\":\"node_ready\",\"deps\":");
                json_str_list(out, deps);
            }
            K::ActionStarted {
                adapter,
                phase,
                attempt,
                item,
                effect,
                request,
                timeout,
                simulated,
            } => {
                out.extend_from_slice(b",\"kind\":\"action_started\"");
                json_action_head(out, adapter, *phase, *attempt, item);
                out.extend_from_slice(b",\"effect\":\"");
                out.extend_from_slice(effect_name(*effect).as_bytes());
                out.extend_from_slice(b"\",\"request\":");
                json_str(out, request);
                if let Some(t) = timeout {
                    out.extend_from_slice(b",\"timeout\":\"");
                    json_duration(out, *t);
                    out.push(b'"');
                }
                out.extend_from_slice(b",\"simulated\":");
                json_bool(out, *simulated);
            }
            K::ActionFinished {
                adapter,
                phase,
                attempt,
                item,
                status,
                exit,
                http_status,
                elapsed_ms,
                output,
                error,
            } => {
                out.extend_from_slice(b",\"kind\":\"action_finished\"");
                json_action_head(out, adapter, *phase, *attempt, item);
                out.extend_from_slice(b",\"status\":\"");
                out.extend_from_slice(status_name(*status).as_bytes());
                out.push(b'"');
                if let Some(exit) = exit {
                    out.extend_from_slice(b",\"exit\":");
                    out.extend_from_slice(itoa::Buffer::new().format(*exit).as_bytes());
                }
                if let Some(h) = http_status {
                    out.extend_from_slice(b",\"http_status\":");
                    json_uint(out, u64::from(*h));
                }
                out.extend_from_slice(b",\"elapsed_ms\":");
                json_uint(out, *elapsed_ms);
                if let Some(output) = output {
                    out.extend_from_slice(b",\"output\":");
                    json_str(out, output);
                }
                if let Some(error) = error {
                    out.extend_from_slice(b",\"error\":");
                    json_str(out, error);
                }
            }
            K::NodeSucceeded {
                attempts,
                elapsed_ms,
                failed_items,
            } => {
                out.extend_from_slice(b",\"kind\":\"node_succeeded\",\"attempts\":");
                json_uint(out, u64::from(*attempts));
                out.extend_from_slice(b",\"elapsed_ms\":");
                json_uint(out, *elapsed_ms);
                if !failed_items.is_empty() {
                    out.extend_from_slice(b",\"failed_items\":");
                    json_str_list(out, failed_items);
                }
            }
            _ => return Err(serde::ser::Error::custom("unreachable event kind")),
        }
        out.push(b'}');
        Ok(())
    }
}

/// The fields `action_started` and `action_finished` open with, in their
/// serde order: adapter, phase, attempt, then item if there is one.
fn json_action_head(
    out: &mut Vec<u8>,
    adapter: &str,
    phase: Phase,
    attempt: u32,
    item: &Option<String>,
) {
    out.extend_from_slice(b",\"adapter\":");
    json_str(out, adapter);
    out.extend_from_slice(b",\"phase\":\"");
    out.extend_from_slice(phase_name(phase).as_bytes());
    out.extend_from_slice(b"\",\"attempt\":");
    json_uint(out, u64::from(attempt));
    if let Some(item) = item {
        out.extend_from_slice(b",\"item\":");
        json_str(out, item);
    }
}

// These four match the kinds' `#[serde(rename_all = "snake_case")]`.

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Action => "action",
        Phase::Undo => "undo",
        Phase::Check => "check",
        Phase::Handler => "handler",
    }
}

fn effect_name(e: crate::plan::Effect) -> &'static str {
    use crate::plan::Effect as E;
    match e {
        E::None => "none",
        E::Read => "read",
        E::Notify => "notify",
        E::Write => "write",
        E::Irreversible => "irreversible",
    }
}

fn status_name(s: ActionStatus) -> &'static str {
    match s {
        ActionStatus::Ok => "ok",
        ActionStatus::Failed => "failed",
        ActionStatus::Timeout => "timeout",
        ActionStatus::Cancelled => "cancelled",
        ActionStatus::Error => "error",
    }
}

/// `d` as humantime writes it (digits, unit letters and spaces: nothing
/// JSON escapes). Every action of a run mostly has the same timeout: the
/// last one formatted is kept per thread rather than formatted again.
fn json_duration(out: &mut Vec<u8>, d: std::time::Duration) {
    use std::cell::RefCell;
    use std::fmt::Write;
    thread_local! {
        static LAST: RefCell<Option<(std::time::Duration, String)>> = const { RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((l, text)) if *l == d => out.extend_from_slice(text.as_bytes()),
            _ => {
                let mut text = String::new();
                let _ = write!(text, "{}", humantime::format_duration(d));
                out.extend_from_slice(text.as_bytes());
                *last = Some((d, text));
            }
        }
    });
}

fn json_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

fn json_uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn json_str_list(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, s);
    }
    out.push(b']');
}

/// A JSON string as serde_json escapes it: `"`, `\` and the control
/// characters below 0x20 (short forms where JSON has them, else `\u00xx`
/// in lower case); everything else, non-ASCII included, as is.
fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    if !needs_escape(s.as_bytes()) {
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    let mut rest = s.as_bytes();
    while let Some(i) = rest
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
    {
        out.extend_from_slice(&rest[..i]);
        let b = rest[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Whether `b` holds a byte [`json_str`] escapes, eight bytes at a time:
/// nearly every string an event holds (times, ids, names, commands) has
/// none, and is then copied as it is.
fn needs_escape(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Sets a byte's high bit where that byte of `x` is below `n` (n <= 128)
    // and its high bit was clear; exact as a yes/no for the whole word.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        if below(x, 0x20)
            | below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1)
            != 0
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&c| c < 0x20 || c == b'"' || c == b'\\')
}
