//! Evaluating a scenario's expectations against the events of its run.

use super::scenario::Expectations;
use crate::events::{Event, EventKind};
use serde::Serialize;

/// One expectation, with what was expected and what was observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// `outcome`, `skipped`, `rollback`, `notifications[1]`...
    pub name: String,
    pub passed: bool,
    pub expected: String,
    pub observed: String,
}

/// Facts about a finished run, read off its events.
#[derive(Debug, Default)]
pub struct Facts {
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
    pub elapsed_ms: u64,
    pub succeeded: Vec<String>,
    pub skipped: Vec<String>,
    pub failed: Vec<String>,
    pub undone: Vec<String>,
    pub undo_failed: Vec<String>,
    /// (channel, text, delivered, virtual ms since the start): a send that
    /// failed is kept to be shown, but never satisfies an expectation.
    pub notifications: Vec<(String, String, bool, u64)>,
    /// Retries of step actions (not of their undos), one entry each.
    pub retries: Vec<String>,
    /// Steps where the run's starter tried to approve an `approve ... by
    /// other` and was refused.
    pub self_approval_refused: Vec<String>,
}

impl Facts {
    pub fn from_events(events: &[Event]) -> Facts {
        let mut f = Facts::default();
        for e in events {
            let node = e.node.as_deref().unwrap_or_default().to_owned();
            match &e.kind {
                EventKind::NodeSucceeded { .. } => f.succeeded.push(node),
                EventKind::NodeSkipped { .. } => f.skipped.push(node),
                EventKind::NodeFailed { .. } => f.failed.push(node),
                // An undo retries with its step's policy, under the step's
                // name, after the step has finished: those are not retries
                // of the step's action.
                EventKind::RetryScheduled { .. } if f.ran(&node) => {}
                EventKind::UndoFinished { ok, .. } => {
                    f.undone.push(node.clone());
                    if !ok {
                        f.undo_failed.push(node);
                    }
                }
                EventKind::NotificationSent {
                    channel, text, ok, ..
                } => f
                    .notifications
                    .push((channel.clone(), text.clone(), *ok, e.t_ms)),
                EventKind::RetryScheduled { .. } => f.retries.push(node),
                EventKind::ApprovalAttemptRefused { .. } => f.self_approval_refused.push(node),
                EventKind::RunFinished {
                    outcome,
                    exit_code,
                    elapsed_ms,
                    ..
                } => {
                    f.outcome = Some(outcome.as_str().to_string());
                    f.exit_code = Some(*exit_code);
                    f.elapsed_ms = *elapsed_ms;
                }
                _ => {}
            }
        }
        f
    }

    /// What became of a step, for saying why an expectation missed it.
    fn state(&self, step: &str) -> &'static str {
        let has = |l: &[String]| l.iter().any(|s| s == step);
        if has(&self.failed) {
            "it failed"
        } else if has(&self.succeeded) {
            "it succeeded"
        } else if has(&self.skipped) {
            "it was skipped"
        } else {
            "it never started"
        }
    }

    /// What became of a step's undo.
    fn undo_state(&self, step: &str) -> &'static str {
        if self.undo_failed.iter().any(|s| s == step) {
            "its undo failed"
        } else if self.undone.iter().any(|s| s == step) {
            "its undo succeeded"
        } else {
            "it was never undone"
        }
    }

    fn ran(&self, step: &str) -> bool {
        [&self.succeeded, &self.failed, &self.skipped]
            .iter()
            .any(|l| l.iter().any(|s| s == step))
    }
}

/// ` at +5m` when the expectation names a time, else nothing.
fn shown_at(wanted: bool, t_ms: u64) -> String {
    if wanted {
        let t = std::time::Duration::from_millis(t_ms);
        format!(" at +{}", humantime::format_duration(t))
    } else {
        String::new()
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// Every expectation of the scenario, in the order written.
pub fn evaluate(exp: &Expectations, events: &[Event]) -> Vec<Verdict> {
    let f = Facts::from_events(events);
    let mut out = Vec::new();
    if let Some(o) = &exp.outcome {
        let seen = f
            .outcome
            .clone()
            .unwrap_or_else(|| "(run did not finish)".into());
        out.push(Verdict {
            name: "outcome".into(),
            passed: &seen == o,
            expected: o.clone(),
            observed: seen,
        });
    }
    if let Some(c) = exp.exit_code {
        out.push(Verdict {
            name: "exit_code".into(),
            passed: f.exit_code == Some(c),
            expected: c.to_string(),
            observed: f
                .exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "(none)".into()),
        });
    }
    for (what, want, seen) in [
        ("succeeded", &exp.succeeded, &f.succeeded),
        ("skipped", &exp.skipped, &f.skipped),
        ("failed", &exp.failed, &f.failed),
        ("undo_failed", &exp.undo_failed, &f.undo_failed),
        (
            "self_approval_refused",
            &exp.self_approval_refused,
            &f.self_approval_refused,
        ),
    ] {
        if want.is_empty() {
            continue;
        }
        let missing: Vec<String> = want
            .iter()
            .filter(|w| !seen.contains(w))
            .map(|w| {
                let state = if what == "undo_failed" {
                    f.undo_state(w)
                } else {
                    f.state(w)
                };
                format!("{w} ({state})")
            })
            .collect();
        out.push(Verdict {
            name: what.into(),
            passed: missing.is_empty(),
            expected: format!("includes {}", list(want)),
            observed: if missing.is_empty() {
                list(seen)
            } else {
                format!("{}; missing: {}", list(seen), missing.join(", "))
            },
        });
    }
    let none_of = [
        (
            "not_run",
            &exp.not_run,
            ("never started", "none of them started", "started"),
        ),
        (
            "not_undone",
            &exp.not_undone,
            ("never undone", "none of them was undone", "undo ran"),
        ),
    ];
    for (what, want, (expected, none, some)) in none_of {
        if want.is_empty() {
            continue;
        }
        let hit: Vec<String> = want
            .iter()
            .filter_map(|s| match what {
                "not_run" => f.ran(s).then(|| format!("{s} ({})", f.state(s))),
                _ => f
                    .undone
                    .contains(s)
                    .then(|| format!("{s} ({})", f.undo_state(s))),
            })
            .collect();
        out.push(Verdict {
            name: what.into(),
            passed: hit.is_empty(),
            expected: format!("{expected}: {}", list(want)),
            observed: if hit.is_empty() {
                none.into()
            } else {
                format!("{some}: {}", hit.join(", "))
            },
        });
    }
    if let Some(order) = &exp.rollback {
        out.push(Verdict {
            name: "rollback".into(),
            passed: &f.undone == order,
            expected: list(order),
            observed: list(&f.undone),
        });
    }
    let mut from = 0;
    for (i, n) in exp.notifications.iter().enumerate() {
        let re = n.matches.as_ref().and_then(|r| regex::Regex::new(r).ok());
        let at_ms = n.at.map(|d| crate::clock::ms(d.0));
        let fits = |(ch, text, ok, t): &(String, String, bool, u64)| {
            *ok && ch == &n.channel
                && at_ms.is_none_or(|a| a == *t)
                && n.contains
                    .as_ref()
                    .is_none_or(|c| text.contains(c.as_str()))
                && re.as_ref().is_none_or(|r| r.is_match(text))
        };
        let found = f.notifications[from..].iter().position(fits);
        let mut expected = format!("to {}", n.channel);
        if let Some(c) = &n.contains {
            expected.push_str(&format!(" containing {c:?}"));
        }
        if let Some(m) = &n.matches {
            // One line: a newline in the pattern is shown as `\n`.
            expected.push_str(&format!(" matching /{}/", m.replace('\n', "\\n")));
        }
        if let Some(a) = n.at {
            expected.push_str(&format!(" at +{}", humantime::format_duration(a.0)));
        }
        let observed = match found {
            Some(at) => {
                let (ch, text, _, t) = &f.notifications[from + at];
                from += at + 1;
                format!("to {ch}: {text:?}{}", shown_at(n.at.is_some(), *t))
            }
            None => {
                let sent: Vec<String> = f
                    .notifications
                    .iter()
                    .map(|(c, text, ok, t)| {
                        let failed = if *ok { "" } else { " (sending FAILED)" };
                        format!("{c}: {text:?}{}{failed}", shown_at(n.at.is_some(), *t))
                    })
                    .collect();
                format!("not found (in order); sent: {}", list(&sent))
            }
        };
        out.push(Verdict {
            name: format!("notifications[{}]", i + 1),
            passed: found.is_some(),
            expected,
            observed,
        });
    }
    if let Some(max) = exp.max_duration {
        let max_ms = u64::try_from(max.0.as_millis()).unwrap_or(u64::MAX);
        out.push(Verdict {
            name: "max_duration".into(),
            passed: f.elapsed_ms <= max_ms,
            expected: format!("at most {}", humantime::format_duration(max.0)),
            observed: humantime::format_duration(std::time::Duration::from_millis(f.elapsed_ms))
                .to_string(),
        });
    }
    for (step, n) in &exp.retries {
        let seen = f.retries.iter().filter(|s| *s == step).count() as u32;
        out.push(Verdict {
            name: format!("retries.{step}"),
            passed: seen == *n,
            expected: n.to_string(),
            observed: seen.to_string(),
        });
    }
    out
}
