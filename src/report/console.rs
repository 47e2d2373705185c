//! The console: the run for people. One line per decision; on a TTY a
//! spinner per running node (indicatif), plain lines otherwise; a summary
//! table at the end.

use crate::events::{
    ActionStatus, ConditionPurpose, Event, EventKind, Mode, Outcome, Sink, ValueRead,
};
use crate::events::{CheckStatus, NotUndone, Phase, UndoPlanEntry};
use indexmap::IndexMap;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Bytes of text a console holds back before it writes them.
const CHUNK: usize = 32 * 1024;

#[derive(Debug, Clone, Default)]
struct Row {
    state: &'static str,
    attempts: u32,
    elapsed_ms: Option<u64>,
    note: String,
    undo: Option<&'static str>,
}

/// The summary's rows by node, in the order the nodes started. Hashed with
/// foldhash: node ids are the run's own, not an attacker's.
type Rows = IndexMap<Arc<str>, Row, foldhash::fast::RandomState>;

/// outcome, exit code, elapsed ms, failed step, failure reason.
type Finished = (Outcome, i32, u64, Option<String>, Option<String>);

pub struct Console {
    out: Box<dyn Write + Send>,
    bars: Option<(MultiProgress, IndexMap<String, ProgressBar>)>,
    /// Keyed by the events' shared node ids (no copy per event).
    rows: Rows,
    /// The row of the last event's node, and its index in `rows`.
    last_row: Option<(Arc<str>, usize)>,
    mode: Mode,
    finished: Option<Finished>,
    /// Lines of output shown under a failed action.
    pub output_lines: usize,
    /// Rendered lines not written yet, each ending in `\n`. Written when
    /// [`CHUNK`] is reached, when the run may wait ([`Sink::flush`]: the
    /// engine is about to wait for a process, a request, a timer or a
    /// person, and before an approval prompt) and at the end: a write per
    /// line was a third of a dry run's system time, and a live step's lines
    /// are held back only for the microseconds until the engine waits.
    text: String,
    /// Nodes sending a status update (`every D notify`) now: their
    /// notification is shown with the time since the run started.
    status_sends: Vec<String>,
}

fn short(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max && is_one_line(s) {
        return Cow::Borrowed(s);
    }
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= max {
        Cow::Owned(one)
    } else {
        let cut: String = one.chars().take(max.saturating_sub(1)).collect();
        Cow::Owned(format!("{cut}…"))
    }
}

/// Whether `s` is already as `short` writes it: words separated by single
/// spaces, none around them.
fn is_one_line(s: &str) -> bool {
    let mut prev_space = true;
    for c in s.chars() {
        if c == ' ' {
            if prev_space {
                return false;
            }
            prev_space = true;
        } else if c.is_whitespace() {
            return false;
        } else {
            prev_space = false;
        }
    }
    !prev_space || s.is_empty()
}

fn dur(ms: u64) -> String {
    let mut s = String::new();
    write_dur(&mut s, ms);
    s
}

fn write_dur(out: &mut String, ms: u64) {
    if ms < 1000 {
        out.push_str(itoa::Buffer::new().format(ms));
        out.push_str("ms");
    } else {
        let _ = write!(
            out,
            "{}",
            humantime::format_duration(Duration::from_millis(ms - ms % 100))
        );
    }
}

fn values(v: &[ValueRead]) -> String {
    if v.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = v
        .iter()
        .map(|r| format!("{}={}", r.name, short(&r.value.to_string(), 60)))
        .collect();
    format!(" ({})", parts.join(", "))
}

impl Console {
    /// `tty`: draw spinners (indicatif) for running nodes.
    pub fn new(out: Box<dyn Write + Send>, tty: bool) -> Self {
        let bars = tty.then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                IndexMap::new(),
            )
        });
        Console {
            out,
            bars,
            rows: Rows::default(),
            mode: Mode::Live,
            finished: None,
            output_lines: 5,
            text: String::new(),
            status_sends: Vec::new(),
            last_row: None,
        }
    }

    /// Writes the text held back.
    fn write_text(&mut self) -> std::io::Result<()> {
        if self.text.is_empty() {
            return Ok(());
        }
        let r = write_safe(self.out.as_mut(), &self.text);
        self.text.clear();
        r
    }

    /// `msg` is built only when there are spinners to show it.
    fn spin(&mut self, node: &str, msg: impl FnOnce() -> String) {
        if let Some((mp, bars)) = &mut self.bars {
            let msg = msg();
            let bar = bars.entry(node.to_owned()).or_insert_with(|| {
                let b = mp.add(ProgressBar::new_spinner());
                if let Ok(style) =
                    ProgressStyle::with_template("{spinner} {prefix} {msg} {elapsed}")
                {
                    b.set_style(style);
                }
                b.set_prefix(node.to_owned());
                b.enable_steady_tick(Duration::from_millis(100));
                b
            });
            bar.set_message(msg);
        }
    }

    fn unspin(&mut self, node: &str) {
        if let Some((mp, bars)) = &mut self.bars {
            if let Some(b) = bars.shift_remove(node) {
                b.finish_and_clear();
                mp.remove(&b);
            }
        }
    }

    fn row(&mut self, ev: &Event) -> &mut Row {
        let i = match (&self.last_row, &ev.node) {
            // The same shared id as the last event's: no hashing.
            (Some((n, i)), Some(node)) if Arc::ptr_eq(n, node) => *i,
            _ => {
                // One hash, found or inserted.
                let k = ev.node.clone().unwrap_or_else(|| Arc::from(""));
                let entry = self.rows.entry(k);
                let i = entry.index();
                entry.or_default();
                self.last_row = ev.node.clone().map(|n| (n, i));
                i
            }
        };
        &mut self.rows[i]
    }

    /// Appends the event's lines to `lines`, each ending in `\n`.
    fn render(&mut self, ev: &Event, out: &mut String) {
        let node: &str = ev.node.as_deref().unwrap_or_default();
        let mut lines = Lines(out);
        let sim = self.mode == Mode::DryRun;
        match &ev.kind {
            EventKind::RunStarted {
                runbook,
                title,
                mode,
                inputs,
                notes,
                ..
            } => {
                self.mode = *mode;
                let m = match mode {
                    Mode::Live => "LIVE run",
                    Mode::DryRun => "DRY RUN (nothing is executed)",
                    Mode::Drill => "drill",
                };
                lines.push(format!(
                    "▶ {runbook}{} — {m}, run {}",
                    title.as_ref().map(|t| format!(": {t}")).unwrap_or_default(),
                    ev.run_id
                ));
                if !inputs.is_empty() {
                    let i: Vec<String> = inputs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    lines.push(format!("  inputs: {}", short(&i.join(" "), 200)));
                }
                for n in notes {
                    lines.push(format!("  note: {n}"));
                }
            }
            EventKind::NodeReady { .. } => {
                self.row(ev).state = "running";
                self.spin(node, || "ready".into());
            }
            EventKind::ConditionEvaluated {
                purpose,
                expr,
                values: v,
                result,
                error,
                note,
            } => {
                let what = match purpose {
                    ConditionPurpose::When => "when",
                    ConditionPurpose::Verify => "verify",
                    ConditionPurpose::AfterRollback => "after rollback verify",
                    ConditionPurpose::ForList => "for",
                    ConditionPurpose::Branch => "branch",
                    ConditionPurpose::Until => "loop until",
                    ConditionPurpose::UndoWhen => "undo when",
                };
                let r = match (result, error) {
                    (_, Some(e)) => format!("error: {e}"),
                    (Some(b), _) => b.to_string(),
                    (None, _) => note.clone().unwrap_or_else(|| "undecided".into()),
                };
                if *purpose == ConditionPurpose::ForList {
                    lines.push(format!("  [{node}] for `{expr}`: {r}"));
                } else {
                    lines.push(format!("  [{node}] {what} `{expr}` → {r}{}", values(v)));
                }
            }
            EventKind::NodeSkipped { reason, .. } => {
                self.unspin(node);
                let row = self.row(ev);
                row.state = "skipped";
                row.note = reason.clone();
                lines.push(format!("⤼ {node} skipped: {reason}"));
            }
            EventKind::ActionStarted {
                adapter,
                phase,
                attempt,
                item,
                request,
                simulated,
                ..
            } => {
                if *phase == Phase::Status {
                    self.status_sends.push(node.to_owned());
                }
                if adapter == "notify" || adapter == "approve" {
                    // `notification_sent` / `approval_asked` say it better.
                    self.spin(node, || adapter.to_string());
                    return;
                }
                let verb = if *simulated { "would run" } else { "run" };
                let ph = match phase {
                    Phase::Undo => " undo",
                    Phase::Handler => "",
                    _ => "",
                };
                // The line every action writes: written in place.
                let o = &mut *lines.0;
                o.push_str("  [");
                o.push_str(node);
                o.push(']');
                o.push_str(ph);
                if let Some(i) = item {
                    o.push_str(" [");
                    o.push_str(i);
                    o.push(']');
                }
                o.push(' ');
                o.push_str(verb);
                o.push(' ');
                o.push_str(adapter);
                o.push_str(": ");
                o.push_str(&short(request, 300));
                if *attempt > 1 {
                    let _ = write!(o, " (attempt {attempt})");
                }
                o.push('\n');
                self.spin(node, || {
                    let it = item.as_ref().map(|i| format!(" [{i}]")).unwrap_or_default();
                    let at = if *attempt > 1 { format!(" (attempt {attempt})") } else { String::new() };
                    format!("{adapter}{it}{at}")
                });
            }
            EventKind::ActionFinished {
                adapter,
                status,
                exit,
                http_status,
                elapsed_ms,
                output,
                error,
                item,
                ..
            } => {
                if !sim || *status != ActionStatus::Ok {
                    let it = item.as_ref().map(|i| format!(" [{i}]")).unwrap_or_default();
                    let code = match (exit, http_status) {
                        (Some(e), _) => format!(" exit {e}"),
                        (_, Some(s)) => format!(" HTTP {s}"),
                        _ => String::new(),
                    };
                    let mark = if *status == ActionStatus::Ok { "✓" } else { "✗" };
                    let err = error.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
                    lines.push(format!(
                        "  [{node}]{it} {mark} {adapter}{code} in {}{err}",
                        dur(*elapsed_ms)
                    ));
                    if *status != ActionStatus::Ok {
                        if let Some(o) = output {
                            let all: Vec<&str> = o.lines().collect();
                            let from = all.len().saturating_sub(self.output_lines);
                            for l in &all[from..] {
                                lines.push(format!("      │ {l}"));
                            }
                        }
                    }
                }
            }
            EventKind::CheckEvaluated {
                check,
                status,
                passed,
                observed,
                expects,
                error,
                note,
                ..
            } => {
                let s = match status {
                    CheckStatus::Pass => "pass",
                    CheckStatus::Fail => "fail",
                    CheckStatus::NoData => "no data",
                    CheckStatus::Error => "error",
                };
                let mut detail = Vec::new();
                for (k, v) in observed {
                    if k != "body" && k != "stdout" && k != "stderr" && k != "json" {
                        detail.push(format!("{k}={v}"));
                    }
                }
                for e in expects {
                    let m = match e.result {
                        Some(true) => "✓",
                        Some(false) => "✗",
                        None => "?",
                    };
                    detail.push(format!("{} {m}", e.expr));
                }
                if let Some(e) = error {
                    detail.push(e.clone());
                }
                if let Some(n) = note {
                    detail.push(n.clone());
                }
                let pass = if *status == CheckStatus::NoData {
                    format!(" → {}", if *passed { "counts as pass" } else { "counts as fail" })
                } else {
                    String::new()
                };
                lines.push(format!("  [{node}] check {check}: {s}{pass} ({})", detail.join("; ")));
            }
            EventKind::RetryScheduled {
                attempt,
                delay_ms,
                reason,
                item,
            } => {
                let it = item.as_ref().map(|i| format!(" [{i}]")).unwrap_or_default();
                lines.push(format!(
                    "  [{node}]{it} ↻ attempt {attempt} in {} ({reason})",
                    dur(*delay_ms)
                ));
            }
            EventKind::Timeout { after_ms, .. } => {
                lines.push(format!("  [{node}] ⏱ timed out after {}", dur(*after_ms)));
            }
            EventKind::VerifyPoll {
                poll,
                passed,
                streak,
                needed,
                remaining_ms,
            } => {
                lines.push(format!(
                    "  [{node}] verify poll {poll}: {} ({streak}/{needed} in a row, {} left)",
                    if *passed { "holds" } else { "does not hold" },
                    dur(*remaining_ms)
                ));
                self.spin(node, || format!("verifying, poll {poll}"));
            }
            EventKind::CaptureStored { name, value, .. } => {
                lines.push(format!("  [{node}] captured {name} = {}", short(&value.to_string(), 120)));
            }
            EventKind::NodeSucceeded {
                attempts,
                elapsed_ms,
                failed_items,
            } => {
                self.unspin(node);
                let row = self.row(ev);
                row.state = if sim { "ok (simulated)" } else { "ok" };
                row.attempts = *attempts;
                row.elapsed_ms = Some(*elapsed_ms);
                if !failed_items.is_empty() {
                    row.note = format!("{} item(s) failed within max_failures", failed_items.len());
                }
                let o = &mut *lines.0;
                o.push_str("✓ ");
                o.push_str(node);
                o.push_str(" (");
                write_dur(o, *elapsed_ms);
                o.push_str(")\n");
            }
            EventKind::NodeFailed {
                reason,
                attempts,
                continued,
            } => {
                self.unspin(node);
                let row = self.row(ev);
                row.state = if *continued { "failed (continued)" } else { "FAILED" };
                row.attempts = *attempts;
                row.note = short(reason, 80).into_owned();
                let c = if *continued { " (the run goes on)" } else { "" };
                lines.push(format!("✗ {node} failed: {reason}{c}"));
            }
            EventKind::RollbackStarted {
                reason,
                plan,
                not_undone,
            } => {
                lines.push(format!("↩ rolling back: {reason}"));
                undo_plan_lines(&mut lines, "nothing to undo", plan, not_undone);
            }
            EventKind::UndoFinished { ok, error, .. } => {
                self.row(ev).undo = Some(if *ok { "undone" } else { "UNDO FAILED" });
                match error {
                    Some(e) if !ok => lines.push(format!("  ↩ {node}: undo failed: {e}")),
                    _ => lines.push(format!("  ↩ {node}: undone")),
                }
            }
            EventKind::RollbackFinished {
                clean,
                failed_undos,
                after_rollback_verified,
            } => {
                let v = match after_rollback_verified {
                    Some(true) => ", health verified",
                    Some(false) => ", health NOT restored",
                    None => "",
                };
                if *clean {
                    lines.push(format!("↩ rollback complete{v}"));
                } else {
                    lines.push(format!(
                        "↩ ROLLBACK INCOMPLETE{v}{}",
                        if failed_undos.is_empty() {
                            String::new()
                        } else {
                            format!(": undo failed for {}", failed_undos.join(", "))
                        }
                    ));
                }
            }
            EventKind::NotificationSent {
                channel,
                text,
                ok,
                simulated,
                ..
            } => {
                let v = if *simulated { "would notify" } else if *ok { "notified" } else { "could not notify" };
                // A status update: when it went out (virtual in a drill or a dry run).
                let at = match self.status_sends.iter().position(|n| n == node) {
                    Some(i) => {
                        self.status_sends.swap_remove(i);
                        let secs = Duration::from_secs(ev.t_ms / 1000);
                        format!(" (status update at +{})", humantime::format_duration(secs))
                    }
                    None => String::new(),
                };
                lines.push(format!("  [{node}] ✉ {v} {channel}{at}: {}", short(text, 200)));
            }
            EventKind::ApprovalAsked { message, preapproved, .. } => {
                let p = if *preapproved { " (pre-approved)" } else { "" };
                lines.push(format!("  [{node}] ? approval: {message}{p}"));
                self.spin(node, || "waiting for approval".into());
            }
            EventKind::ApprovalGiven { by, .. } => lines.push(format!("  [{node}] approved by {by}")),
            EventKind::ApprovalRefused { by, reason } => lines.push(format!(
                "  [{node}] refused by {by}{}",
                reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
            )),
            EventKind::ApprovalAttemptRefused { by, why, .. } => {
                lines.push(format!("  [{node}] approval by {by} refused: {why}"))
            }
            EventKind::HandlerStarted { handler, .. } => {
                lines.push(format!("• {}", handler.replace('_', " ")));
            }
            EventKind::BranchTaken {
                taken,
                skipped,
                item,
                ..
            } => {
                let skipped = if skipped.is_empty() {
                    String::new()
                } else {
                    format!(" (not: {})", skipped.join(", "))
                };
                let item = item
                    .as_ref()
                    .map(|i| format!(" for item `{i}`"))
                    .unwrap_or_default();
                lines.push(format!("⑂ branch{item}: {taken}{skipped}"));
            }
            EventKind::AttemptAbandoned {
                label,
                step,
                reason,
                plan,
                not_undone,
                ..
            } => {
                lines.push(format!(
                    "⤼ {label} abandoned: step `{step}` failed: {reason}"
                ));
                undo_plan_lines(&mut lines, "nothing of it to undo", plan, not_undone);
            }
            EventKind::AttemptUndone {
                clean,
                failed_undos,
                next,
                ..
            } => {
                if *clean {
                    match next {
                        Some(n) => lines.push(format!("⤼ attempt undone; trying {n}")),
                        None => lines.push("⤼ attempt undone".into()),
                    }
                } else {
                    lines.push(format!(
                        "⤼ ATTEMPT NOT UNDONE{}: the run stops",
                        if failed_undos.is_empty() {
                            String::new()
                        } else {
                            format!(" (failed: {})", failed_undos.join(", "))
                        }
                    ));
                }
            }
            EventKind::CancelRequested { stage } => lines.push(if stage == "first" {
                "■ cancel requested: no new step starts; running ones are stopped; then rollback (Ctrl-C again to stop the rollback)".into()
            } else {
                "■ second cancel: the rollback stops here".into()
            }),
            EventKind::Warning { message } => lines.push(format!("! {message}")),
            EventKind::RunTakenOver {
                by,
                host,
                pid,
                from_host,
                from_user,
                from_pid,
                silent_ms,
                owner_gone,
                old_epoch,
                new_epoch,
            } => lines.push(format!(
                "⇄ taken over by {by} on {host} (pid {pid}) from {from_user}@{from_host} (pid {from_pid}), silent for {:.1}s{}; epoch {old_epoch} → {new_epoch}",
                *silent_ms as f64 / 1000.0,
                if *owner_gone { ", its process gone" } else { "" }
            )),
            EventKind::RunFinished {
                outcome,
                exit_code,
                elapsed_ms,
                failed_step,
                failure_reason,
                counts,
            } => {
                if counts.handler_failed > 0 {
                    lines.push(format!(
                        "! {} handler action(s) failed: the outcome and exit code stand, but what they were to do is not done",
                        counts.handler_failed
                    ));
                }
                self.finished = Some((*outcome, *exit_code, *elapsed_ms, failed_step.clone(), failure_reason.clone()));
            }
        }
    }
}

/// Width as `{:w$}` counts it: in chars.
/// The undo order of a rollback or of an abandoned attempt (`nothing`
/// when it is empty), then what is not undone and why.
fn undo_plan_lines(
    lines: &mut Lines<'_>,
    nothing: &str,
    plan: &[UndoPlanEntry],
    not_undone: &[NotUndone],
) {
    if plan.is_empty() {
        lines.push(format!("  {nothing}"));
    } else {
        let p: Vec<String> = plan
            .iter()
            .map(|e| {
                if e.items.is_empty() {
                    e.node.clone()
                } else {
                    format!("{} [{}]", e.node, e.items.join(", "))
                }
            })
            .collect();
        lines.push(format!("  undo order: {}", p.join(" → ")));
    }
    for n in not_undone {
        lines.push(format!("  not undone: {} ({})", n.node, n.reason));
    }
}

fn width(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// `s` then spaces up to `w` chars: `{:w$}` for a string.
fn pad_right(out: &mut String, s: &str, w: usize) {
    out.push_str(s);
    out.extend(std::iter::repeat_n(' ', w.saturating_sub(width(s))));
}

/// Spaces up to `w` chars, then `s`: `{:>w$}`.
fn pad_left(out: &mut String, s: &str, w: usize) {
    out.extend(std::iter::repeat_n(' ', w.saturating_sub(width(s))));
    out.push_str(s);
}

/// Appends the summary table and the outcome to `out`, each line ending in
/// `\n`, writing `out` to `w_out` whenever it reaches [`CHUNK`].
fn summary(
    rows: &Rows,
    finished: &Option<Finished>,
    mode: Mode,
    out: &mut String,
    w_out: &mut dyn Write,
) -> std::io::Result<()> {
    if rows.is_empty() && finished.is_none() {
        return Ok(());
    }
    let w = rows.keys().map(|k| width(k)).max().unwrap_or(4).max(4);
    // Padded by hand, not with `{:w$}`: a width over 65,535 panics in
    // `format!`, and a name can be that long.
    out.push('\n');
    pad_right(out, "STEP", w);
    let _ = writeln!(
        out,
        "  {:18}  {:>8}  {:>8}  {:12}  NOTE",
        "RESULT", "ATTEMPTS", "TIME", "UNDO"
    );
    // Every row is written in place, with two scratch strings for its
    // numbers: a run can have tens of thousands of rows.
    let (mut attempts, mut time) = (String::new(), String::new());
    for (k, r) in rows {
        if out.len() >= CHUNK {
            write_safe(w_out, out)?;
            out.clear();
        }
        attempts.clear();
        if r.attempts > 0 {
            attempts.push_str(itoa::Buffer::new().format(r.attempts));
        } else {
            attempts.push('-');
        }
        time.clear();
        match r.elapsed_ms {
            Some(ms) => write_dur(&mut time, ms),
            None => time.push('-'),
        }
        let start = out.len();
        // What `write!(out, "{k:w$}  {:18}  {:>8}  {:>8}  {:12}  {}", ...)`
        // writes, without the formatting machinery (a fifth of the time of
        // a dry run's console).
        pad_right(out, k, w);
        out.push_str("  ");
        pad_right(out, r.state, 18);
        out.push_str("  ");
        pad_left(out, &attempts, 8);
        out.push_str("  ");
        pad_left(out, &time, 8);
        out.push_str("  ");
        pad_right(out, r.undo.unwrap_or("-"), 12);
        out.push_str("  ");
        out.push_str(&r.note);
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
        out.push('\n');
    }
    if let Some((outcome, code, ms, step, reason)) = finished {
        let o = match outcome {
            Outcome::Succeeded => "SUCCEEDED",
            Outcome::RolledBack => "FAILED, rolled back cleanly",
            Outcome::RollbackIncomplete => "FAILED, ROLLBACK INCOMPLETE: humans needed",
            Outcome::Kept => "FAILED after a keep point: mitigation kept, later steps rolled back",
            Outcome::NothingChanged => "STOPPED, nothing changed",
            Outcome::NeedsHuman => "ESCALATED, NEEDS A HUMAN: stopped, nothing undone",
            Outcome::Cancelled => "CANCELLED",
        };
        let why = match (step, reason) {
            (Some(s), Some(r)) => format!(" — `{s}`: {r}"),
            (None, Some(r)) => format!(" — {r}"),
            _ => String::new(),
        };
        let sim = if mode == Mode::DryRun {
            " (dry run: nothing was executed)"
        } else {
            ""
        };
        let _ = writeln!(out, "\n{o}{why} in {}{sim}, exit code {code}", dur(*ms));
    }
    Ok(())
}

/// `s` with every character a terminal would interpret shown escaped
/// instead: C0 and C1 controls but the newline and the tab (`\x1b`,
/// `\r`, `\u{9b}`: an escape sequence in a command's output must not
/// recolour, move the cursor or retitle the terminal of the person
/// running the incident) and the bidirectional overrides that reorder what
/// is shown (`\u{202e}`). Text from the engine itself never has them, so
/// the usual case borrows.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    fn hidden(c: char) -> bool {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if !hidden(c) {
            out.push(c);
        } else if c == '\r' {
            out.push_str("\\r");
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// Writes `s` to `w` as [`terminal_safe`] shows it.
fn write_safe(w: &mut dyn Write, s: &str) -> std::io::Result<()> {
    w.write_all(terminal_safe(s).as_bytes())
}

/// Where `render` puts the lines of an event.
struct Lines<'a>(&'a mut String);

/// Each line of `lines` prefixed with `+H:MM:SS` since the run started.
fn virtual_stamp(t_ms: u64, lines: &str) -> String {
    let secs = t_ms / 1000;
    let stamp = format!("+{}:{:02}:{:02} ", secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::with_capacity(lines.len() + 16);
    for l in lines.split_inclusive('\n') {
        out.push_str(&stamp);
        out.push_str(l);
    }
    out
}

impl Lines<'_> {
    fn push(&mut self, line: String) {
        self.0.push_str(&line);
        self.0.push('\n');
    }
}

impl Sink for Console {
    fn event(&mut self, ev: &Event) -> std::io::Result<()> {
        let mut text = std::mem::take(&mut self.text);
        let start = text.len();
        self.render(ev, &mut text);
        if self.mode == Mode::Drill
            && !matches!(
                ev.kind,
                EventKind::RunStarted { .. } | EventKind::RunFinished { .. }
            )
            && text.len() > start
        {
            // A drill's log says when each thing happened on its virtual
            // clock: minutes of incident in milliseconds of test.
            let stamped = virtual_stamp(ev.t_ms, &text[start..]);
            text.truncate(start);
            text.push_str(&stamped);
        }
        self.text = text;
        if let Some((mp, _)) = &self.bars {
            let lines = self.text[start..].strip_suffix('\n').unwrap_or_default();
            if !lines.is_empty() {
                for l in lines.split('\n') {
                    mp.println(terminal_safe(l))?;
                }
            }
            self.text.truncate(start);
            return Ok(());
        }
        if self.text.len() >= CHUNK {
            self.write_text()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.write_text()?;
        self.out.flush()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        if let Some((mp, bars)) = &mut self.bars {
            for (_, b) in bars.drain(..) {
                b.finish_and_clear();
            }
            let _ = mp.clear();
        }
        self.bars = None;
        let Console {
            rows,
            finished,
            mode,
            text,
            out,
            ..
        } = self;
        summary(rows, finished, *mode, text, out.as_mut())?;
        self.write_text()?;
        self.out.flush()
    }
}

impl Drop for Console {
    /// A run that ends without `finish` still shows what it rendered.
    fn drop(&mut self) {
        let _ = self.write_text();
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(terminal_safe("plain\tline\n"), "plain\tline\n");
        assert_eq!(
            terminal_safe("\u{1b}[31mRED\u{1b}[0m\r\u{7}"),
            "\\x1b[31mRED\\x1b[0m\\r\\x07"
        );
        assert_eq!(
            terminal_safe("a\u{9b}2Jb\u{202e}c"),
            "a\\u{9b}2Jb\\u{202e}c"
        );
    }

    #[test]
    fn a_name_wider_than_format_allows_does_not_panic() {
        let name = "s".repeat(70_000);
        let mut rows = Rows::default();
        rows.insert(Arc::from(name.as_str()), Row::default());
        let mut out = String::new();
        let mut sink = Vec::new();
        summary(&rows, &None, Mode::Live, &mut out, &mut sink).unwrap();
        let all = String::from_utf8(sink).unwrap() + &out;
        assert!(all.starts_with("\nSTEP"), "{}", &all[..40]);
        assert!(all.contains(&name));
    }

    #[test]
    fn padding_matches_the_format_macros() {
        for s in [
            "",
            "ok",
            "exactly-eighteen!!",
            "longer than the column is",
            "déploiement",
            "✓ ok",
        ] {
            for w in [0, 4, 8, 12, 18] {
                let mut right = String::new();
                pad_right(&mut right, s, w);
                assert_eq!(right, format!("{s:w$}"), "{s:?} {w}");
                let mut left = String::new();
                pad_left(&mut left, s, w);
                assert_eq!(left, format!("{s:>w$}"), "{s:?} {w}");
            }
        }
    }
}
