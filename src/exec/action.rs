//! Running one action: render, call the adapter, log, and decide what the
//! answer means; retries with backoff; `for` fan-outs.

use super::cond::V;
use super::context::{Bindings, RunCtx};
use crate::adapters::{
    ApprovalRequest, Call, ErrorKind, HttpBody, HttpCall, NotifyRequest, NotifyTarget,
    ShellRequest, StartBarrier, START_NOT_RECORDED,
};
use crate::clock::ms;
use crate::events::{ActionStatus, ConditionPurpose, EventKind, Phase};
use crate::plan::{Action, ChannelKind, Effect, Expr, HttpRequest, RetryPolicy, Text};
use indexmap::IndexMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The start of the failure reason of an `escalate` action.
pub const ESCALATED: &str = "escalated to a human: ";

/// How much output goes into the journal per event.
pub const LOG_OUTPUT_CAP: usize = 2048;

/// The result of one attempt (or of the last attempt after retries).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: ActionStatus,
    pub reason: String,
    /// Output to capture (stdout, HTTP body); `None` if simulated.
    pub output: Option<String>,
    /// A retry could change the answer (not for a refused approval).
    pub retryable: bool,
    pub attempts: u32,
}

impl Attempt {
    fn ok(output: Option<String>) -> Self {
        Attempt {
            status: ActionStatus::Ok,
            reason: String::new(),
            output,
            retryable: false,
            attempts: 1,
        }
    }

    fn fail(status: ActionStatus, reason: impl Into<String>) -> Self {
        Attempt {
            status,
            reason: reason.into(),
            output: None,
            retryable: status != ActionStatus::Cancelled,
            attempts: 1,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status == ActionStatus::Ok
    }
}

fn tail(s: &str, cap: usize) -> String {
    if s.len() <= cap {
        return s.to_owned();
    }
    let mut start = s.len() - cap;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

fn head(s: &str, cap: usize) -> String {
    if s.len() <= cap {
        return s.to_owned();
    }
    let mut end = cap;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn status_of(e: ErrorKind) -> ActionStatus {
    match e {
        ErrorKind::Timeout => ActionStatus::Timeout,
        ErrorKind::Cancelled => ActionStatus::Cancelled,
        _ => ActionStatus::Error,
    }
}

fn min_timeout(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Where an action runs: node, phase, effect, per-attempt timeout.
#[derive(Debug, Clone)]
pub struct Site<'a> {
    pub node: &'a str,
    pub phase: Phase,
    pub effect: Effect,
    /// The step's `timeout` (an undo's: its `undo timeout`), or the config
    /// default, per attempt. An approval has its own, and ignores this.
    pub timeout: Option<Duration>,
}

/// One attempt in progress, handed to the function for its kind of action:
/// where it runs, which attempt (of which fan-out item), the adapter call,
/// and the token that cancels it.
struct AttemptCtx<'a> {
    site: &'a Site<'a>,
    scope: &'a Bindings,
    attempt: u32,
    item: Option<String>,
    call: Call,
    cancel: &'a CancellationToken,
}

/// What an attempt's `action_started` announced, for its `action_finished`.
#[derive(Clone, Copy)]
struct Started {
    adapter: &'static str,
    timeout: Option<Duration>,
    t0: Instant,
}

/// How an attempt ended, as `action_finished` logs it.
struct Ended {
    status: ActionStatus,
    exit: Option<i32>,
    http_status: Option<u16>,
    output: Option<String>,
    error: Option<String>,
}

impl Ended {
    /// An end with no exit code, HTTP status or output.
    fn bare(status: ActionStatus, error: Option<String>) -> Self {
        Ended {
            status,
            exit: None,
            http_status: None,
            output: None,
            error,
        }
    }
}

impl RunCtx {
    /// Logs an action's start, and refuses a change (effect `write` or
    /// more, not simulated) once the journal has failed: write-ahead means
    /// nothing changes that the journal does not record (a full disk must
    /// not let a step run unrecorded, nor an undo: `runbook resume` must
    /// find a record that matches the world). A notification still goes
    /// out: it changes nothing, and it may be how anyone hears of the
    /// failure.
    ///
    /// A change whose adapter passes the start barrier itself (`barrier`)
    /// gets the start's fsync in `a.call.start` instead of before this
    /// returns.
    fn started(
        &self,
        a: &mut AttemptCtx<'_>,
        adapter: &'static str,
        request: String,
        timeout: Option<Duration>,
        barrier: bool,
    ) -> Result<Started, Attempt> {
        let site = a.site;
        let simulated = self.simulated();
        let change = !simulated && site.effect >= Effect::Write;
        let refused = || {
            let mut a = Attempt::fail(ActionStatus::Error, START_NOT_RECORDED);
            a.retryable = false;
            a
        };
        // Not even announced once the journal is known to be gone.
        if change && self.emitter.failed() {
            return Err(refused());
        }
        let (attempt, item) = (a.attempt, a.item.clone());
        let kind = |_| EventKind::ActionStarted {
            adapter: adapter.into(),
            phase: site.phase,
            attempt,
            item,
            effect: site.effect,
            request,
            timeout,
            simulated,
        };
        let t0 = if barrier && change {
            let emitter = self.emitter.clone();
            a.call.start = StartBarrier::new(move || emitter.durable());
            self.emitter.emit_durable_later(Some(site.node), kind)
        } else {
            self.emitter.emit_with(Some(site.node), kind)
        };
        // This very start may be what the journal failed to write.
        if change && self.emitter.failed() {
            return Err(refused());
        }
        Ok(Started {
            adapter,
            timeout,
            t0,
        })
    }

    /// The adapter gave no answer (it failed, timed out or was cancelled):
    /// logs the attempt's end and fails it with the adapter's message.
    fn adapter_failed(
        &self,
        a: &AttemptCtx<'_>,
        started: &Started,
        e: crate::adapters::AdapterError,
    ) -> Attempt {
        let status = status_of(e.kind);
        self.finished(a, started, Ended::bare(status, Some(e.message.clone())));
        Attempt::fail(status, e.message)
    }

    /// Logs the end of an attempt.
    fn finished(&self, a: &AttemptCtx<'_>, started: &Started, end: Ended) {
        let Started {
            adapter,
            timeout,
            t0,
        } = *started;
        let phase = a.site.phase;
        if end.status == ActionStatus::Timeout {
            self.emitter
                .emit_with(Some(a.site.node), |now| EventKind::Timeout {
                    phase,
                    attempt: a.attempt,
                    after_ms: ms(timeout.unwrap_or(now - t0)),
                    item: a.item.clone(),
                });
        }
        self.emitter
            .emit_with(Some(a.site.node), |now| EventKind::ActionFinished {
                adapter: adapter.into(),
                phase,
                attempt: a.attempt,
                item: a.item.clone(),
                status: end.status,
                exit: end.exit,
                http_status: end.http_status,
                elapsed_ms: ms(now - t0),
                output: end.output.filter(|o| !o.is_empty()),
                error: end.error,
            });
    }

    /// One attempt of a single (non-`for`) action.
    pub async fn attempt(
        &self,
        action: &Action,
        site: &Site<'_>,
        scope: &Bindings,
        attempt: u32,
    ) -> Attempt {
        let item = scope.item_display();
        let cancel = self.cancel_for(site.phase);
        if cancel.is_cancelled() {
            return Attempt::fail(ActionStatus::Cancelled, "cancelled before it started");
        }
        let call = self.make_call(site.node, site.phase, attempt, site.effect, item.clone());
        let mut a = AttemptCtx {
            site,
            scope,
            attempt,
            item,
            call,
            cancel,
        };
        match action {
            Action::Shell { command } => self.shell(&mut a, command).await,
            Action::Http(h) => self.http(&mut a, h).await,
            Action::Notify {
                channel,
                message,
                args,
                ..
            } => self.notify(&mut a, channel, message, args).await,
            Action::Approve {
                message,
                timeout,
                by_other,
            } => self.approve(&mut a, message, *timeout, *by_other).await,
            Action::Wait { duration } => self.wait(&mut a, *duration).await,
            Action::Escalate { reason } => self.escalate(&mut a, reason),
            Action::ForEach { .. } => Attempt::fail(ActionStatus::Error, "internal: nested `for`"),
        }
    }

    async fn shell(&self, a: &mut AttemptCtx<'_>, command: &Text) -> Attempt {
        let command = match self.render(command, a.scope, None) {
            Ok(c) => c,
            Err(e) => return Attempt::fail(ActionStatus::Error, e),
        };
        let timeout = a.site.timeout;
        let barrier = self.adapters.shell.passes_start_barrier();
        let started = match self.started(a, "shell", command.display.clone(), timeout, barrier) {
            Ok(s) => s,
            Err(refused) => return refused,
        };
        let req = ShellRequest {
            command,
            cwd: self.settings().shell_cwd.clone(),
            env: self.settings().shell_env.clone(),
            timeout,
        };
        let r = self
            .guarded(self.adapters.shell.run(&a.call, &req), timeout, a.cancel)
            .await;
        match r {
            Ok(out) => {
                let mut shown = tail(&out.stdout, LOG_OUTPUT_CAP);
                if !out.stderr.is_empty() {
                    if !shown.is_empty() && !shown.ends_with('\n') {
                        shown.push('\n');
                    }
                    shown.push_str(&tail(&out.stderr, LOG_OUTPUT_CAP));
                }
                let (status, reason) = match (out.exit, out.signal) {
                    (Some(0), _) => (ActionStatus::Ok, String::new()),
                    (Some(code), _) => (ActionStatus::Failed, format!("exited with status {code}")),
                    (None, Some(sig)) => (ActionStatus::Failed, format!("killed by signal {sig}")),
                    (None, None) => (ActionStatus::Failed, "ended without an exit status".into()),
                };
                let error = (status != ActionStatus::Ok).then(|| reason.clone());
                let end = Ended {
                    status,
                    exit: out.exit,
                    http_status: None,
                    output: Some(shown),
                    error,
                };
                self.finished(a, &started, end);
                if status == ActionStatus::Ok {
                    Attempt::ok((!self.simulated_output()).then_some(out.stdout))
                } else {
                    Attempt::fail(status, reason)
                }
            }
            Err(e) => {
                let mut failed = self.adapter_failed(a, &started, e);
                // The barrier found the journal gone: like a start refused
                // up front, retrying cannot help.
                if a.call.start.is_pending() && self.emitter.failed() {
                    failed.retryable = false;
                }
                failed
            }
        }
    }

    async fn http(&self, a: &mut AttemptCtx<'_>, h: &HttpRequest) -> Attempt {
        let scope = a.scope;
        let rendered = (|| -> Result<HttpCall, String> {
            let url = self.render(&h.url, scope, None)?;
            let mut headers = Vec::new();
            for hd in &h.headers {
                headers.push((hd.name.clone(), self.render(&hd.value, scope, None)?));
            }
            let body = match &h.body {
                Some(b) => Some(HttpBody {
                    kind: b.kind,
                    text: self.render(&b.text, scope, None)?,
                }),
                None => None,
            };
            Ok(HttpCall {
                method: h.method.clone(),
                url,
                headers,
                body,
                timeout: min_timeout(h.timeout, a.site.timeout),
            })
        })();
        let req = match rendered {
            Ok(r) => r,
            Err(e) => return Attempt::fail(ActionStatus::Error, e),
        };
        let mut shown = format!("{} {}", req.method, req.url.display);
        for (k, v) in &req.headers {
            shown.push_str(&format!("\n{k}: {}", v.display));
        }
        if let Some(b) = &req.body {
            shown.push_str(&format!("\n\n{}", b.text.display));
        }
        let timeout = req.timeout;
        let started = match self.started(a, "http", shown, timeout, false) {
            Ok(s) => s,
            Err(refused) => return refused,
        };
        let r = self
            .guarded(self.adapters.http.send(&a.call, &req), timeout, a.cancel)
            .await;
        match r {
            Ok(resp) => {
                let ok = resp.status < 400;
                let status = if ok {
                    ActionStatus::Ok
                } else {
                    ActionStatus::Failed
                };
                let reason = format!("HTTP {}", resp.status);
                let end = Ended {
                    status,
                    exit: None,
                    http_status: Some(resp.status),
                    output: Some(head(&resp.body, LOG_OUTPUT_CAP)),
                    error: (!ok).then(|| reason.clone()),
                };
                self.finished(a, &started, end);
                if ok {
                    Attempt::ok((!self.simulated_output()).then_some(resp.body))
                } else {
                    Attempt::fail(status, reason)
                }
            }
            Err(e) => self.adapter_failed(a, &started, e),
        }
    }

    async fn notify(
        &self,
        a: &mut AttemptCtx<'_>,
        channel: &str,
        message: &Text,
        args: &IndexMap<String, Text>,
    ) -> Attempt {
        let scope = a.scope;
        let rendered = (|| -> Result<NotifyRequest, String> {
            let mut fields = IndexMap::new();
            for (k, t) in args.iter() {
                let r = self.render_message(t, scope, Some(&fields))?;
                fields.insert(k.clone(), r);
            }
            let text = self.render_message(message, scope, Some(&fields))?;
            let spec = self
                .graph
                .channel(channel)
                .ok_or_else(|| format!("no channel named `{channel}`"))?;
            let target = match &spec.kind {
                ChannelKind::Slack { url } => NotifyTarget::Slack {
                    url: self.render(url, scope, None)?,
                },
                ChannelKind::Webhook { url, headers } => {
                    let mut hs = Vec::new();
                    for h in headers {
                        hs.push((h.name.clone(), self.render(&h.value, scope, None)?));
                    }
                    NotifyTarget::Webhook {
                        url: self.render(url, scope, None)?,
                        headers: hs,
                    }
                }
                ChannelKind::Console => NotifyTarget::Console,
            };
            Ok(NotifyRequest {
                channel: channel.to_owned(),
                target,
                text,
                fields,
                timeout: Some(a.site.timeout.unwrap_or(self.settings().notify_timeout)),
            })
        })();
        let req = match rendered {
            Ok(r) => r,
            Err(e) => return Attempt::fail(ActionStatus::Error, e),
        };
        let target = match &req.target {
            NotifyTarget::Slack { url } => format!("slack {}", url.display),
            NotifyTarget::Webhook { url, .. } => format!("webhook {}", url.display),
            NotifyTarget::Console => "console".into(),
        };
        let shown = format!("notify {} ({target}): {}", req.channel, req.text.display);
        let timeout = req.timeout;
        let started = match self.started(a, "notify", shown, timeout, false) {
            Ok(s) => s,
            Err(refused) => return refused,
        };
        let r = self
            .guarded(self.adapters.notify.send(&a.call, &req), timeout, a.cancel)
            .await;
        let (status, http_status, error) = match &r {
            Ok(rc) => match rc.status {
                Some(s) if s >= 400 => (ActionStatus::Failed, Some(s), Some(format!("HTTP {s}"))),
                s => (ActionStatus::Ok, s, None),
            },
            Err(e) => (status_of(e.kind), None, Some(e.message.clone())),
        };
        self.emit(
            Some(a.site.node),
            EventKind::NotificationSent {
                channel: req.channel.clone(),
                text: req.text.display.clone(),
                ok: status == ActionStatus::Ok,
                http_status,
                simulated: self.simulated(),
            },
        );
        let end = Ended {
            http_status,
            ..Ended::bare(status, error.clone())
        };
        self.finished(a, &started, end);
        if status == ActionStatus::Ok {
            Attempt::ok(None)
        } else {
            Attempt::fail(status, error.unwrap_or_default())
        }
    }

    async fn approve(
        &self,
        a: &mut AttemptCtx<'_>,
        message: &Text,
        timeout: Option<Duration>,
        by_other: bool,
    ) -> Attempt {
        let message = match self.render_message(message, a.scope, None) {
            Ok(m) => m.display,
            Err(e) => return Attempt::fail(ActionStatus::Error, e),
        };
        // The approval's own timeout: the step's bounds its action only.
        let node = Some(a.site.node);
        let preapproved = self.opts.preapproved.contains(a.site.node);
        self.emit(
            node,
            EventKind::ApprovalAsked {
                message: message.clone(),
                timeout,
                preapproved,
            },
        );
        let shown = format!("approve: {message}");
        let started = match self.started(a, "approve", shown, timeout, false) {
            Ok(s) => s,
            Err(refused) => return refused,
        };
        let (attempts, mut refused) = tokio::sync::mpsc::unbounded_channel();
        let req = ApprovalRequest {
            message,
            timeout,
            preapproved,
            by_other,
            attempts: Some(attempts),
        };
        // The prompt goes straight to the terminal: what the console holds
        // back must be there above it.
        self.emitter.flush();
        // Attempts refused while it waits (self-approval of a `by other`
        // step) go to the journal as they happen.
        let journal_refused = |note: crate::adapters::RefusedNote| {
            self.emit(
                node,
                EventKind::ApprovalAttemptRefused {
                    by: note.by,
                    via: note.via,
                    reason: note.reason,
                    why: note.why,
                },
            )
        };
        let asking = self.guarded(self.adapters.approve.ask(&a.call, &req), timeout, a.cancel);
        tokio::pin!(asking);
        let r = loop {
            tokio::select! {
                r = &mut asking => break r,
                Some(note) = refused.recv() => journal_refused(note),
            }
        };
        while let Ok(note) = refused.try_recv() {
            journal_refused(note);
        }
        let mut answer = match r {
            Ok(d) if d.approved => {
                self.emit(
                    node,
                    EventKind::ApprovalGiven {
                        by: d.by,
                        reason: d.reason,
                    },
                );
                Attempt::ok(None)
            }
            Ok(d) => {
                let reason = format!(
                    "approval refused by {}{}",
                    d.by,
                    d.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
                self.emit(
                    node,
                    EventKind::ApprovalRefused {
                        by: d.by,
                        reason: d.reason,
                    },
                );
                Attempt::fail(ActionStatus::Failed, reason)
            }
            Err(e) => {
                if e.kind != ErrorKind::Cancelled {
                    self.emit(
                        node,
                        EventKind::ApprovalRefused {
                            by: if e.kind == ErrorKind::Timeout {
                                "timeout".into()
                            } else {
                                "nobody".into()
                            },
                            reason: Some(e.message.clone()),
                        },
                    );
                }
                Attempt::fail(status_of(e.kind).max_failed(), e.message)
            }
        };
        answer.retryable = false;
        let error = (!answer.is_ok()).then(|| answer.reason.clone());
        self.finished(a, &started, Ended::bare(answer.status, error));
        answer
    }

    async fn wait(&self, a: &mut AttemptCtx<'_>, duration: Duration) -> Attempt {
        let shown = format!("wait {}", humantime::format_duration(duration));
        let started = match self.started(a, "wait", shown, None, false) {
            Ok(s) => s,
            Err(refused) => return refused,
        };
        let cancelled = tokio::select! {
            _ = tokio::time::sleep(duration) => false,
            _ = a.cancel.cancelled() => true,
        };
        let status = if cancelled {
            ActionStatus::Cancelled
        } else {
            ActionStatus::Ok
        };
        self.finished(a, &started, Ended::bare(status, None));
        if cancelled {
            Attempt::fail(status, "cancelled")
        } else {
            Attempt::ok(None)
        }
    }

    /// `escalate "reason"`: logged as an action that failed, never retried;
    /// the run then stops with nothing undone (see `exec::keep`). A dry run
    /// shows it and goes on (as it does past every simulated action), so
    /// the rest of the plan is seen; drills escalate for real.
    fn escalate(&self, a: &mut AttemptCtx<'_>, reason: &Text) -> Attempt {
        let reason = match self.render_message(reason, a.scope, None) {
            Ok(r) => r.display,
            Err(e) => return Attempt::fail(ActionStatus::Error, e),
        };
        let started = match self.started(a, "escalate", reason.clone(), None, false) {
            Ok(s) => s,
            Err(refused) => return refused,
        };
        if self.simulated_output() {
            self.finished(a, &started, Ended::bare(ActionStatus::Ok, None));
            return Attempt::ok(None);
        }
        self.finished(a, &started, Ended::bare(ActionStatus::Failed, None));
        let mut out = Attempt::fail(ActionStatus::Failed, format!("{ESCALATED}{reason}"));
        out.retryable = false;
        out
    }

    /// In a dry run an action's output is not real: captures are unknown.
    fn simulated_output(&self) -> bool {
        self.mode() == crate::events::Mode::DryRun
    }

    /// Attempts an action up to `1 + retry.retries` times with backoff.
    pub async fn with_retry(
        &self,
        action: &Action,
        site: &Site<'_>,
        scope: &Bindings,
        retry: RetryPolicy,
    ) -> Attempt {
        let mut attempt = 1;
        let cancel = self.cancel_for(site.phase);
        loop {
            let mut a = self.attempt(action, site, scope, attempt).await;
            a.attempts = attempt;
            if a.is_ok() || !a.retryable || attempt > retry.retries || cancel.is_cancelled() {
                return a;
            }
            attempt += 1;
            let seed = format!(
                "{}\u{0}{}\u{0}{}",
                self.opts.run_id,
                site.node,
                scope.item_display().unwrap_or_default()
            );
            let delay = retry.jittered(attempt, &seed);
            self.emit(
                Some(site.node),
                EventKind::RetryScheduled {
                    attempt,
                    delay_ms: ms(delay),
                    reason: a.reason.clone(),
                    item: scope.item_display(),
                },
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled() => {
                    let mut c = Attempt::fail(ActionStatus::Cancelled, "cancelled while waiting to retry");
                    c.attempts = attempt - 1;
                    return c;
                }
            }
        }
    }

    /// Evaluates a `for` list.
    pub async fn for_items(
        &self,
        node: &str,
        list: &Expr,
        scope: &Bindings,
    ) -> Result<Vec<V>, String> {
        let resolver = super::context::Resolver {
            ctx: self,
            scope,
            checks: &IndexMap::new(),
            probe: None,
        };
        let mut values = Vec::new();
        let v = super::cond::eval(list, &resolver, &mut values);
        let note = match &v {
            Ok(V::List(items)) => Some(format!(
                "{} item(s): {}",
                items.len(),
                items.iter().map(V::display).collect::<Vec<_>>().join(", ")
            )),
            Ok(V::Unknown(why)) => Some(format!(
                "dry run: the list is not known ({why}); one placeholder item is shown"
            )),
            _ => None,
        };
        let error = match &v {
            Err(e) => Some(e.clone()),
            Ok(V::List(_)) | Ok(V::Unknown(_)) => None,
            Ok(other) => Some(format!(
                "`{}` is {}, not a list",
                list.text,
                other.describe()
            )),
        };
        self.emit(
            Some(node),
            EventKind::ConditionEvaluated {
                purpose: ConditionPurpose::ForList,
                expr: list.text.clone(),
                values,
                result: None,
                error: error.clone(),
                note,
            },
        );
        if let Some(e) = error {
            return Err(e);
        }
        match v {
            Ok(V::List(items)) => Ok(items),
            _ => Ok(vec![V::Str(format!("<{}>", list.text))]),
        }
    }
}

/// The result of a fan-out.
#[derive(Debug, Clone, Default)]
pub struct FanOut {
    pub ok: bool,
    pub reason: String,
    /// Items that completed, in completion order.
    pub completed: Vec<V>,
    pub failed: Vec<String>,
    pub attempts: u32,
    pub cancelled: bool,
}

/// A `for` fan-out of one node, its list evaluated.
pub struct ForEach<'a> {
    /// The node's index in the graph.
    pub node_idx: usize,
    pub var: &'a str,
    pub items: Vec<V>,
    pub parallel: usize,
    pub max_failures: Option<usize>,
    pub body: &'a Action,
    /// What an interrupted run had done already (see [`fan_out`]).
    pub prior: FanOut,
}

/// Runs `body` once per item, at most `parallel` at once, stopping new
/// items once more than `max_failures` have failed. `each.prior`: what the
/// fan-out had done before an interruption (`runbook resume`; empty for a
/// fresh start): its items count as done or failed, and `each.items` are
/// the ones never started.
pub async fn fan_out(ctx: &Arc<RunCtx>, each: ForEach<'_>, scope: &Bindings) -> FanOut {
    let ForEach {
        node_idx,
        var,
        items,
        parallel,
        max_failures,
        body,
        prior,
    } = each;
    let allowed = max_failures.unwrap_or(0);
    let parallel = parallel.max(1);
    let mut set = tokio::task::JoinSet::new();
    let mut out = prior;
    let mut next = 0usize;
    let mut stop = out.failed.len() > allowed;
    let total = items.len() + out.completed.len() + out.failed.len();
    let body = Arc::new(body.clone());
    loop {
        while !stop && set.len() < parallel && next < items.len() {
            let item = items[next].clone();
            next += 1;
            let ctx = ctx.clone();
            let body = body.clone();
            let scope = scope.with_item(var, item.clone());
            set.spawn(async move {
                let emitter = ctx.emitter.clone();
                let run = std::pin::pin!(async {
                    let node = &ctx.graph.nodes[node_idx];
                    let site = Site {
                        node: &node.id,
                        phase: Phase::Action,
                        effect: node.effect,
                        timeout: node.timeout.or(ctx.settings().default_timeout),
                    };
                    ctx.with_retry(&body, &site, &scope, node.retry).await
                });
                let a = super::waiting::FlushWhenWaiting::new(&emitter, run).await;
                (item, a)
            });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        match joined {
            Ok((item, a)) => {
                out.attempts += a.attempts;
                if a.is_ok() {
                    out.completed.push(item);
                } else {
                    if a.status == ActionStatus::Cancelled {
                        out.cancelled = true;
                    }
                    out.failed.push(format!("{}: {}", item.display(), a.reason));
                }
            }
            Err(e) => out.failed.push(format!("internal error: {e}")),
        }
        if out.failed.len() > allowed
            || out.cancelled
            || ctx.cancel_for(Phase::Action).is_cancelled()
        {
            stop = true;
        }
    }
    let not_started = items.len() - next;
    out.ok = out.failed.len() <= allowed && !out.cancelled && not_started == 0;
    if !out.ok {
        out.reason = if out.cancelled || (not_started > 0 && out.failed.len() <= allowed) {
            format!(
                "cancelled with {} of {total} item(s) done",
                out.completed.len()
            )
        } else {
            format!(
                "{} of {total} item(s) failed (max_failures {allowed}){}: {}",
                out.failed.len(),
                if not_started > 0 {
                    format!(", {not_started} not started")
                } else {
                    String::new()
                },
                out.failed.join("; ")
            )
        };
    }
    out
}

trait MaxFailed {
    fn max_failed(self) -> ActionStatus;
}

impl MaxFailed for ActionStatus {
    /// A refusal (no TTY) is a failure, not an infrastructure error.
    fn max_failed(self) -> ActionStatus {
        match self {
            ActionStatus::Error => ActionStatus::Failed,
            s => s,
        }
    }
}
