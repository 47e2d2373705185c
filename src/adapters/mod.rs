//! Adapters: the only code that touches the world.
//!
//! The executor (`crate::exec`) decides *what* to do and *when*; an adapter
//! does one thing (run a command, send a request, query Prometheus, post a
//! message, ask a human) and reports what happened. There is one trait per
//! action kind, each object-safe (via `async_trait`) so that the executor
//! holds them as `Arc<dyn ...>` chosen by mode:
//!
//! | mode    | shell / http / promql / notify / approve                         |
//! |---------|------------------------------------------------------------------|
//! | real    | `shell.rs`, `http.rs`, `promql.rs`, `notify.rs`, `approve.rs`     |
//! | dry run | [`dry_run`] (nothing spawned, sent or asked)                      |
//! | drill   | scripted adapters (`drill::adapters`) answering from a scenario  |
//!
//! # The contract every adapter keeps
//!
//! * **Never panic**, whatever the request: failures are [`AdapterError`]s.
//! * **Timeouts**: every request carries `timeout: Option<Duration>` (the
//!   step's per-attempt timeout, or the request/check timeout, already
//!   resolved against the config defaults by the executor). The adapter
//!   enforces it itself, with `tokio::time` only (never `std::thread::sleep`
//!   or `std::time::Instant` for waiting), so that a drill on tokio's paused
//!   clock sees virtual time, and reports [`ErrorKind::Timeout`]. The shell
//!   adapter kills the *whole process group* at the timeout (the command runs
//!   in its own group: `process_group(0)`, then `killpg(SIGTERM)`, a short
//!   grace, `killpg(SIGKILL)`), so a child the command spawned dies with it.
//!   The executor also wraps every call in `tokio::time::timeout(timeout +
//!   GRACE)` as a safety net; an adapter must not rely on being dropped.
//! * **Cancellation**: [`Call::cancel`] is cancelled on Ctrl-C or when the
//!   run stops starting new work. An adapter selects on it while it waits,
//!   cleans up (kills the process group, aborts the request) and returns
//!   [`ErrorKind::Cancelled`] promptly (within about a second).
//! * **Caps**: captured output (shell stdout/stderr, HTTP bodies) is capped
//!   at [`Call::output_cap`] bytes per stream; the *tail* is kept for shell
//!   output (the end of a failing command's output is what explains it), the
//!   *head* for HTTP bodies (JSON must parse from the start), and the
//!   `truncated` flag says that bytes were dropped. Non-UTF-8 bytes are
//!   replaced (lossy), never an error.
//! * **Secrets**: a request holds [`Rendered`] strings: `send` has secrets
//!   substituted and is the only thing put on the wire / in the process;
//!   `display` has them as `***` and is the only thing an adapter may put in
//!   a log line, an error message, or an outcome field. Error messages must
//!   not echo a URL or command in its `send` form (e.g. use
//!   `reqwest::Error::without_url()`). The executor redacts every known
//!   secret value from what it logs as a second line of defence, but the
//!   adapter is the first.
//! * **Effects stay honest**: an adapter does exactly what the request says,
//!   once per call. Retries, backoff, polling and deciding what a non-zero
//!   exit or an HTTP 500 *means* are the executor's job: a command that exits
//!   1 is an `Ok(ShellOutput { exit: Some(1), .. })`, an HTTP 500 is an
//!   `Ok(HttpResponse { status: 500, .. })`. `Err` is for "no answer"
//!   (could not spawn, connection refused, DNS, TLS, timeout, cancelled).

pub mod approve;
pub mod dry_run;
pub mod http;
pub mod notify;
pub mod promql;
pub mod real;
pub mod shell;

use async_trait::async_trait;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

// The decision log's words for why an adapter is called and how a check
// came out: defined with the events, which must not depend on adapters.
use crate::events::{CheckStatus, Phase};
pub use crate::plan::Effect;

/// Default cap on captured output per stream (64 KiB).
pub const DEFAULT_OUTPUT_CAP: usize = 64 * 1024;

/// A string rendered from a template twice: once for sending (secrets
/// substituted) and once for showing (secrets as `***`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    /// What goes on the wire / into the process. Never log this.
    pub send: String,
    /// What may be logged, shown or journalled.
    pub display: String,
}

impl Rendered {
    /// A string with no secret in it: both forms are the same.
    pub fn plain(s: impl Into<String>) -> Self {
        let s = s.into();
        Rendered {
            send: s.clone(),
            display: s,
        }
    }

    pub fn has_secret(&self) -> bool {
        self.send != self.display
    }
}

/// `Debug` shows only the display form, so that `{:?}` can never leak.
impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.display)
    }
}

/// Who is calling and why; the same for every adapter kind. Drill adapters
/// script their answers by `node`, `item`, `attempt` and `check`.
#[derive(Debug, Clone)]
pub struct Call {
    pub run_id: String,
    pub runbook: String,
    /// The step id (or `on_failure` / `on_success` for handlers).
    pub node: String,
    /// The fan-out item (display form) for a `for` body, else `None`.
    pub item: Option<String>,
    /// 1-based attempt number of this node (or poll number for checks).
    pub attempt: u32,
    pub phase: Phase,
    /// The check being probed, for [`Phase::Check`].
    pub check: Option<String>,
    /// The effect class of the action (from the compiled graph).
    pub effect: Effect,
    /// Cancelled when the run stops: return `ErrorKind::Cancelled` promptly.
    pub cancel: CancellationToken,
    /// Bytes kept per captured stream.
    pub output_cap: usize,
    /// Whether the action's start is on disk yet; see [`StartBarrier`].
    pub start: StartBarrier,
}

/// Why a change did not start when the journal could not record its start.
pub const START_NOT_RECORDED: &str = "not started: the journal could not be written (a change \
     is never made unrecorded; free the disk, then `runbook resume` the run)";

/// An effectful action's `action_started` must be on disk (fsynced) before
/// the action can change anything: the write-ahead journal. Usually the
/// engine fsyncs it before calling the adapter and the barrier is already
/// passed. An adapter that says so ([`ShellAdapter::passes_start_barrier`])
/// is instead handed the fsync, to do at the last moment before the effect:
/// the real shell adapter starts `/bin/sh` held at a gate, calls
/// [`pass`](StartBarrier::pass), and opens the gate only if it returns
/// true. The fsync then overlaps the shell's exec and start-up instead of
/// coming before them (on the reference machine each is about a quarter of
/// a `run "true"` step).
#[derive(Clone, Default)]
pub struct StartBarrier(Option<Arc<dyn Fn() -> bool + Send + Sync>>);

impl StartBarrier {
    /// Nothing left to do: the start is on disk, or needs not be.
    pub fn passed() -> Self {
        StartBarrier(None)
    }

    /// `make_durable` fsyncs the start; it returns false if the journal
    /// failed, and the action must then not start.
    pub fn new(make_durable: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        StartBarrier(Some(Arc::new(make_durable)))
    }

    /// Whether [`pass`](Self::pass) has work to do.
    pub fn is_pending(&self) -> bool {
        self.0.is_some()
    }

    /// Makes the start durable. False: the journal could not record it,
    /// and the action must not start.
    pub fn pass(&self) -> bool {
        self.0.as_ref().is_none_or(|make_durable| make_durable())
    }
}

impl std::fmt::Debug for StartBarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_pending() {
            "StartBarrier(pending)"
        } else {
            "StartBarrier(passed)"
        })
    }
}

impl Call {
    /// A call for tests and tools: node `node`, attempt 1, phase action.
    pub fn simple(node: impl Into<String>) -> Self {
        Call {
            run_id: "test".into(),
            runbook: "test".into(),
            node: node.into(),
            item: None,
            attempt: 1,
            phase: Phase::Action,
            check: None,
            effect: Effect::Write,
            cancel: CancellationToken::new(),
            output_cap: DEFAULT_OUTPUT_CAP,
            start: StartBarrier::passed(),
        }
    }
}

/// Why an adapter got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request's timeout passed (the process group was killed).
    Timeout,
    /// `Call::cancel` fired.
    Cancelled,
    /// Connection refused, DNS failure, TLS error, spawn failure...
    Unreachable,
    /// The answer came but could not be understood (bad JSON from
    /// Prometheus, a vector where a scalar was needed...).
    BadResponse,
    /// No TTY to ask on, approval timed out, and other refusals to proceed.
    Refused,
    /// Anything else.
    Other,
}

/// An adapter's failure to get an answer. `message` must be safe to log:
/// no secret, no `send` form of anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct AdapterError {
    pub kind: ErrorKind,
    pub message: String,
}

impl AdapterError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AdapterError {
            kind,
            message: message.into(),
        }
    }

    pub fn timeout(after: Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!("timed out after {}", humantime::format_duration(after)),
        )
    }

    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "cancelled")
    }
}

pub type AdapterResult<T> = Result<T, AdapterError>;

// ---------------------------------------------------------------- shell --

#[derive(Debug, Clone)]
pub struct ShellRequest {
    /// The command line, run with `sh -c` (inputs already shell-quoted).
    pub command: Rendered,
    /// Working directory (config `shell.cwd`); `None`: the current one.
    pub cwd: Option<PathBuf>,
    /// Extra environment (config `shell.env` and the selected `--env`).
    pub env: IndexMap<String, String>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShellOutput {
    /// Exit code; `None` if killed by a signal.
    pub exit: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// Tail of stdout, at most `Call::output_cap` bytes.
    pub stdout: String,
    pub stdout_truncated: bool,
    pub stderr: String,
    pub stderr_truncated: bool,
    #[serde(with = "crate::plan::dur")]
    pub elapsed: Duration,
}

#[async_trait]
pub trait ShellAdapter: Send + Sync {
    /// Runs `sh -c command` in its own process group; see the module docs
    /// for timeouts, cancellation and caps.
    async fn run(&self, call: &Call, req: &ShellRequest) -> AdapterResult<ShellOutput>;

    /// Whether [`run`](Self::run) passes `call.start` (a [`StartBarrier`])
    /// itself before the command can have an effect. The engine hands the
    /// start's fsync only to an adapter that says so; any other gets the
    /// barrier already passed.
    fn passes_start_barrier(&self) -> bool {
        false
    }
}

// ----------------------------------------------------------------- http --

#[derive(Debug, Clone)]
pub struct HttpCall {
    /// Upper case method.
    pub method: String,
    /// Percent-encoded where values were substituted.
    pub url: Rendered,
    pub headers: Vec<(String, Rendered)>,
    pub body: Option<HttpBody>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct HttpBody {
    pub kind: crate::plan::BodyKind,
    pub text: Rendered,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpResponse {
    pub status: u16,
    #[serde(with = "crate::plan::dur")]
    pub elapsed: Duration,
    /// Head of the body, at most `Call::output_cap` bytes, lossy UTF-8.
    pub body: String,
    pub body_truncated: bool,
    /// The body parsed as JSON, when it is JSON (and was not truncated).
    pub json: Option<serde_json::Value>,
}

#[async_trait]
pub trait HttpAdapter: Send + Sync {
    /// Sends one request (reqwest + rustls in the real adapter). Any status
    /// is an `Ok`; only "no response" is an `Err`.
    async fn send(&self, call: &Call, req: &HttpCall) -> AdapterResult<HttpResponse>;
}

// --------------------------------------------------------------- promql --

#[derive(Debug, Clone)]
pub struct PromqlQuery {
    /// The PromQL expression (values substituted plainly).
    pub query: Rendered,
    /// Base URL of Prometheus, from the config file (`prometheus.url`).
    /// `None`: no Prometheus configured; the adapter returns
    /// `ErrorKind::Unreachable` with a message saying to configure it.
    pub base_url: Option<String>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromSample {
    pub labels: IndexMap<String, String>,
    /// May be NaN or infinite (Prometheus sends "NaN", "+Inf").
    pub value: f64,
}

/// The raw answer of `/api/v1/query`. The executor, not the adapter,
/// decides what it means: a scalar or a single sample is a value, NaN or an
/// empty vector is `no_data`, several samples is an error (never a guess).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum PromqlResult {
    Scalar {
        value: f64,
    },
    Vector {
        samples: Vec<PromSample>,
    },
    /// A range vector or string result: reported as a check error.
    Other {
        result_type: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromqlAnswer {
    pub result: PromqlResult,
    #[serde(with = "crate::plan::dur")]
    pub elapsed: Duration,
}

#[async_trait]
pub trait PromqlAdapter: Send + Sync {
    /// An instant query (`GET {base_url}/api/v1/query?query=...`).
    async fn query(&self, call: &Call, req: &PromqlQuery) -> AdapterResult<PromqlAnswer>;
}

// --------------------------------------------------------------- notify --

#[derive(Debug, Clone)]
pub enum NotifyTarget {
    /// Slack incoming webhook: POST `{"text": text}`.
    Slack { url: Rendered },
    /// Generic webhook: POST JSON `{"runbook","run_id","step","text",
    /// "fields": {arg: value, ...}}` with the given headers.
    Webhook {
        url: Rendered,
        headers: Vec<(String, Rendered)>,
    },
    /// Printed to the console (stderr), prefixed with the channel name.
    Console,
}

#[derive(Debug, Clone)]
pub struct NotifyRequest {
    /// The channel's name in the runbook.
    pub channel: String,
    pub target: NotifyTarget,
    /// The rendered message (plain escaping).
    pub text: Rendered,
    /// The notify arguments, rendered (they are also visible in `text`).
    pub fields: IndexMap<String, Rendered>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NotifyReceipt {
    /// HTTP status of the post; `None` for the console.
    pub status: Option<u16>,
    #[serde(with = "crate::plan::dur")]
    pub elapsed: Duration,
}

#[async_trait]
pub trait NotifyAdapter: Send + Sync {
    /// Posts the message once. A non-2xx status is an `Ok` with that status
    /// (the executor fails the step); no response is an `Err`.
    async fn send(&self, call: &Call, req: &NotifyRequest) -> AdapterResult<NotifyReceipt>;
}

// -------------------------------------------------------------- approve --

#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    /// The question, display form (an approval prompt is shown, not sent).
    pub message: String,
    /// How long to wait for an answer; `None`: forever (until cancelled).
    pub timeout: Option<Duration>,
    /// The step was pre-approved with `--approve STEP`.
    pub preapproved: bool,
    /// `approve ... by other`: whoever started the run may not approve.
    pub by_other: bool,
    /// Where the approver reports attempts it refused while waiting (the
    /// executor journals each as `approval_attempt_refused`).
    pub attempts: Option<tokio::sync::mpsc::UnboundedSender<RefusedNote>>,
}

/// An attempt to approve that was refused without answering (the run's
/// starter approving an `approve ... by other` step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedNote {
    pub by: String,
    /// `command`, `web`, `terminal`.
    pub via: String,
    pub reason: Option<String>,
    /// Why it was refused.
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    pub approved: bool,
    /// Who decided (`--approve` on the command line, a user name, ...).
    pub by: String,
    pub reason: Option<String>,
}

#[async_trait]
pub trait ApproveAdapter: Send + Sync {
    /// Asks a human. If `preapproved`, answer approved at once (by
    /// "--approve"). On a TTY: prompt with the message and the step. With
    /// no TTY: `Err(Refused)` with a message naming `--approve STEP`. The
    /// timeout passing is `Err(Timeout)`.
    async fn ask(&self, call: &Call, req: &ApprovalRequest) -> AdapterResult<ApprovalDecision>;
}

// --------------------------------------------------------- check oracle --

/// An answer to a check given without probing anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OracleAnswer {
    pub status: CheckStatus,
    /// Why: stated in the decision log ("dry run: checks pass by default").
    pub note: String,
}

/// Answers checks without probing: dry runs (assumed results) and drills
/// (scripted results). `None` means "probe it for real" with the probe
/// adapters (e.g. `--live-checks` for a read-only probe).
pub trait CheckOracle: Send + Sync {
    fn answer(&self, call: &Call, check: &crate::plan::CheckSpec) -> Option<OracleAnswer>;
}

// ------------------------------------------------------------- the set --

/// The adapters one run uses, chosen by mode.
#[derive(Clone)]
pub struct Adapters {
    pub shell: Arc<dyn ShellAdapter>,
    pub http: Arc<dyn HttpAdapter>,
    pub promql: Arc<dyn PromqlAdapter>,
    pub notify: Arc<dyn NotifyAdapter>,
    pub approve: Arc<dyn ApproveAdapter>,
    /// Probes of checks (real ones in a live run or with `--live-checks`).
    pub probes: ProbeAdapters,
    /// Consulted before every probe; `None` in a real run.
    pub oracle: Option<Arc<dyn CheckOracle>>,
}

/// The adapters checks probe with.
#[derive(Clone)]
pub struct ProbeAdapters {
    pub shell: Arc<dyn ShellAdapter>,
    pub http: Arc<dyn HttpAdapter>,
    pub promql: Arc<dyn PromqlAdapter>,
}

impl Adapters {
    /// Everything simulated: the dry-run set (checks pass unless assumed
    /// otherwise in `assume`).
    pub fn dry_run(assume: IndexMap<String, bool>) -> Self {
        let d = Arc::new(dry_run::DryRun);
        Adapters {
            shell: d.clone(),
            http: d.clone(),
            promql: d.clone(),
            notify: d.clone(),
            approve: d.clone(),
            probes: ProbeAdapters {
                shell: d.clone(),
                http: d.clone(),
                promql: d,
            },
            oracle: Some(Arc::new(dry_run::Assumptions::new(assume))),
        }
    }
}
