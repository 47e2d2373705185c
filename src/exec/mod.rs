//! The executor: runs a compiled [`Graph`] unchanged against a set of
//! [`Adapters`], reporting every decision as an [`Event`](crate::events::Event).
//!
//! * [`scheduler`]: the DAG loop (deps, `--parallel`, stop at first failure).
//! * [`action`]: one action (render, adapter call, meaning of the answer),
//!   retries with backoff, `for` fan-outs with `parallel` / `max_failures`.
//! * [`check`]: checks, conditions, `verify` polling.
//! * [`rollback`]: undo in reverse completion order, handlers; `keep`:
//!   keep points and the outcome of a failed run.
//! * [`cond`], [`template`]: conditions, templates.
//! * [`inputs`]: `--input` / `--inputs` validation, secret loading.
//!
//! Below the executor: [`crate::clock`] (everything waits through
//! `tokio::time`, virtual in drills) and, with the events, secret
//! redaction ([`crate::events::redact`]). A run ends with an [`Outcome`]
//! and its exit code ([`crate::exit`]). `exec::{clock, exit, redact}`
//! re-export those for the code that still names them there.

pub mod action;
pub mod check;
pub mod cond;
pub mod context;
pub mod inputs;
mod keep;
pub(crate) mod ladder;
mod repeat;
pub mod resume;
pub mod rollback;
pub mod scheduler;
pub mod status;
pub mod template;
mod unwind;
mod values;
pub(crate) mod waiting;

use crate::adapters::Adapters;
use crate::events::{Counts, Emitter, EventKind, Mode, Outcome};
use crate::plan::{Graph, Value};
use context::{Bindings, RunCtx};
use indexmap::IndexMap;
use scheduler::NodeState;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long past its timeout (or a cancellation) an adapter call is given
/// before the executor abandons it.
pub const GRACE: Duration = Duration::from_secs(5);

/// Run-wide settings, from the config file and the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Per-attempt timeout of a step without its own `timeout`.
    pub default_timeout: Option<Duration>,
    /// Timeout of a check's probe without its own.
    pub check_timeout: Duration,
    /// Timeout of a notification.
    pub notify_timeout: Duration,
    pub shell_cwd: Option<PathBuf>,
    pub shell_env: IndexMap<String, String>,
    pub prometheus_url: Option<String>,
    /// Bytes kept per captured stream.
    pub output_cap: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_timeout: Some(Duration::from_secs(300)),
            check_timeout: Duration::from_secs(10),
            notify_timeout: Duration::from_secs(10),
            shell_cwd: None,
            shell_env: IndexMap::new(),
            prometheus_url: None,
            output_cap: crate::adapters::DEFAULT_OUTPUT_CAP,
        }
    }
}

/// Everything a run needs besides the graph, the adapters and the sinks.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_id: String,
    pub mode: Mode,
    /// Nodes running at once (`--parallel`).
    pub parallel: usize,
    /// Validated inputs (see [`inputs::resolve`]), defaults applied.
    pub inputs: IndexMap<String, Value>,
    /// Secret values; `None`: not available (allowed in a dry run only).
    pub secrets: IndexMap<String, Option<String>>,
    pub settings: Settings,
    /// Steps pre-approved with `--approve STEP`.
    pub preapproved: HashSet<String>,
    /// First Ctrl-C: stop starting nodes, cancel running actions, roll back.
    pub cancel: CancellationToken,
    /// Second Ctrl-C: stop the rollback too.
    pub cancel_rollback: CancellationToken,
    /// Stated in `run_started` (e.g. how a dry run answers checks).
    pub notes: Vec<String>,
    /// On cancellation, roll back what completed (`false`:
    /// `--no-rollback-on-cancel`, leave it as it is).
    pub rollback_on_cancel: bool,
    /// Logged as `warning` events right after `run_started` (a broken
    /// lock...).
    pub start_warnings: Vec<String>,
    /// Logged right after `run_started`, before the warnings (a takeover:
    /// `run_taken_over`).
    pub start_events: Vec<EventKind>,
}

impl RunOptions {
    pub fn new(run_id: impl Into<String>, mode: Mode) -> Self {
        RunOptions {
            run_id: run_id.into(),
            mode,
            parallel: 4,
            inputs: IndexMap::new(),
            secrets: IndexMap::new(),
            settings: Settings::default(),
            preapproved: HashSet::new(),
            cancel: CancellationToken::new(),
            cancel_rollback: CancellationToken::new(),
            notes: Vec::new(),
            rollback_on_cancel: true,
            start_warnings: Vec::new(),
            start_events: Vec::new(),
        }
    }
}

/// What a run did, for the caller (the CLI, drills, tests).
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub outcome: Outcome,
    pub exit_code: i32,
    pub failed_step: Option<String>,
    pub failure_reason: Option<String>,
    /// Every node with where it ended, in graph order.
    pub nodes: Vec<(String, NodeState)>,
    /// Undos run, in order, with success.
    pub undos: Vec<(String, bool)>,
    pub elapsed: Duration,
}

/// A run id: UTC time plus a short hash of the time and process.
pub fn new_run_id() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now();
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let hex: String = h
        .finalize()
        .iter()
        .take(3)
        .map(|b| format!("{b:02x}"))
        .collect();
    let ts = humantime::format_rfc3339_seconds(now).to_string();
    let compact: String = ts.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("{compact}-{hex}")
}

/// Logs `run_started` (and the start warnings).
fn start(ctx: &Arc<RunCtx>, graph: &Graph) {
    ctx.emit(
        None,
        EventKind::RunStarted {
            format: crate::events::JOURNAL_FORMAT,
            runbook: graph.runbook.clone(),
            title: graph.title.clone(),
            mode: ctx.opts.mode,
            inputs: ctx
                .opts
                .inputs
                .iter()
                .map(|(k, v)| (k.clone(), context::value_json(v)))
                .collect(),
            secrets: ctx.opts.secrets.keys().cloned().collect(),
            source_sha256: graph.source_sha256.clone(),
            parallel: ctx.opts.parallel,
            notes: ctx.opts.notes.clone(),
        },
    );
    for kind in &ctx.opts.start_events {
        ctx.emit(None, kind.clone());
    }
    for message in &ctx.opts.start_warnings {
        ctx.emit(
            None,
            EventKind::Warning {
                message: message.clone(),
            },
        );
    }
}

/// Runs `graph` to its end: the steps, then the rollback and `on failure`
/// after a failure or cancellation, or `on success`.
pub async fn run(
    graph: Arc<Graph>,
    opts: RunOptions,
    adapters: Adapters,
    emitter: Arc<Emitter>,
) -> RunSummary {
    let flushed = emitter.clone();
    let run = std::pin::pin!(async move {
        let ctx = Arc::new(RunCtx::new(graph.clone(), opts, adapters, emitter));
        start(&ctx, &graph);
        status::start_run_updates(&ctx);
        let g = scheduler::run_graph(&ctx).await;
        conclude(&ctx, g, &rollback::Undone::default(), &[], &[]).await
    });
    waiting::FlushWhenWaiting::new(&flushed, run).await
}

/// After the graph: the rollback (skipping the undos, and undo items, in
/// `undone` that succeeded before a resume), then the `always` steps (but
/// those in `cleanup_done`, ended before a resume), then `on failure`, or
/// `on success` (handlers in `handlers_done` already started before a
/// resume and are not run again); then `run_finished`.
pub(crate) async fn conclude(
    ctx: &Arc<RunCtx>,
    mut g: scheduler::GraphOutcome,
    undone: &rollback::Undone,
    handlers_done: &[String],
    cleanup_done: &[String],
) -> RunSummary {
    let graph = ctx.graph.clone();
    let emitter = ctx.emitter.clone();
    let clock = *emitter.clock();
    let run_handler = |name: &'static str| !handlers_done.iter().any(|h| h == name);
    let mut undos = Vec::new();
    let mut counts = Counts::default();
    let failure = match (&g.failure, g.cancelled) {
        (Some(f), _) => Some(f.clone()),
        (None, true) => Some((String::new(), "cancelled".to_owned())),
        (None, false) => None,
    };
    let outcome = match &failure {
        None => {
            cleanup(ctx, &mut g, cleanup_done, Outcome::Succeeded, "none").await;
            status::stop_run_updates(ctx).await;
            if run_handler("on_success") {
                counts.handler_failed =
                    rollback::handler(ctx, "on_success", &graph.on_success, &Bindings::default())
                        .await;
            }
            Outcome::Succeeded
        }
        Some((step, reason)) => {
            let why = if step.is_empty() {
                reason.clone()
            } else {
                format!("step `{step}` failed: {reason}")
            };
            let skip_rollback = g.cancelled && g.failure.is_none() && !ctx.opts.rollback_on_cancel;
            // An `escalate`: the run stops as it is, for a human.
            let escalated = !g.cancelled
                && reason.starts_with(action::ESCALATED)
                && graph.node(step).is_some_and(|n| {
                    matches!(n.action, Some(crate::plan::Action::Escalate { .. }))
                });
            // A failure before any change completed: nothing to roll back.
            let nothing_changed = !g.cancelled
                && !keep::anything_changed(&graph, &g.results)
                && undone.nodes.is_empty();
            let mut kept = Vec::new();
            let clean = if skip_rollback {
                ctx.emit(
                    None,
                    EventKind::Warning {
                        message: "cancelled: nothing is rolled back (--no-rollback-on-cancel); \
                                  `runbook resume` rolls back later"
                            .into(),
                    },
                );
                false
            } else if nothing_changed || escalated {
                true
            } else {
                let report = rollback::rollback_resumed(ctx, &g.results, &why, undone).await;
                counts.undone = report.undos.iter().filter(|(_, ok)| *ok).count();
                counts.undo_failed = report.undos.len() - counts.undone;
                undos = report.undos.clone();
                kept = report.kept;
                report.clean
            };
            let rollback = if skip_rollback {
                "skipped"
            } else if escalated {
                "escalated"
            } else if nothing_changed {
                "none"
            } else if !clean {
                "incomplete"
            } else if !kept.is_empty() {
                "kept"
            } else {
                "complete"
            };
            let outcome = if g.cancelled {
                Outcome::Cancelled
            } else if escalated {
                Outcome::NeedsHuman
            } else if nothing_changed {
                Outcome::NothingChanged
            } else {
                keep::failed_outcome(clean, &kept)
            };
            cleanup(ctx, &mut g, cleanup_done, outcome, rollback).await;
            status::stop_run_updates(ctx).await;
            let scope = Bindings {
                failure: Some(context::Failure {
                    step: step.clone(),
                    reason: reason.clone(),
                    rollback,
                    completed: g
                        .results
                        .iter()
                        .filter(|r| r.state == NodeState::Succeeded && !graph.nodes[r.idx].cleanup)
                        .map(|r| graph.nodes[r.idx].id.clone())
                        .collect(),
                    undone: undos
                        .iter()
                        .filter(|(_, ok)| *ok)
                        .map(|(n, _)| n.clone())
                        .collect(),
                    kept: kept.clone(),
                }),
                ..Bindings::default()
            };
            if run_handler("on_failure") {
                counts.handler_failed =
                    rollback::handler(ctx, "on_failure", &graph.on_failure, &scope).await;
            }
            outcome
        }
    };
    for s in &g.states {
        match s {
            NodeState::Succeeded => counts.succeeded += 1,
            NodeState::Failed | NodeState::FailedContinued | NodeState::Cancelled => {
                counts.failed += 1
            }
            NodeState::Skipped => counts.skipped += 1,
            NodeState::NotRun => counts.not_run += 1,
        }
    }
    let exit_code = outcome.exit_code();
    let elapsed = clock.elapsed();
    ctx.emit(
        None,
        EventKind::RunFinished {
            outcome,
            exit_code,
            elapsed_ms: crate::clock::ms(elapsed),
            failed_step: failure
                .as_ref()
                .map(|f| f.0.clone())
                .filter(|s| !s.is_empty()),
            failure_reason: failure.as_ref().map(|f| f.1.clone()),
            counts,
        },
    );
    emitter.finish();
    RunSummary {
        outcome,
        exit_code,
        failed_step: failure
            .as_ref()
            .map(|f| f.0.clone())
            .filter(|s| !s.is_empty()),
        failure_reason: failure.map(|f| f.1),
        nodes: graph
            .nodes
            .iter()
            .zip(&g.states)
            .map(|(n, s)| (n.id.clone(), *s))
            .collect(),
        undos,
        elapsed,
    }
}

/// Runs the `always` steps with the outcome decided (see
/// [`scheduler::run_cleanup`]) and records where each ended.
async fn cleanup(
    ctx: &Arc<RunCtx>,
    g: &mut scheduler::GraphOutcome,
    done: &[String],
    outcome: Outcome,
    rollback: &'static str,
) {
    let scope = Bindings {
        concluded: Some(context::Concluded {
            outcome: outcome.as_str(),
            rollback,
        }),
        ..Bindings::default()
    };
    for (i, state) in scheduler::run_cleanup(ctx, done, &scope).await {
        if let Some(s) = g.states.get_mut(i) {
            *s = state;
        }
    }
}
