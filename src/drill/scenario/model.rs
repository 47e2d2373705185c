//! The scenario's typed form, as `yaml_serde` reads it.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A duration written like the runbook language (`30s`, `2m`, `1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::syntax::parse_duration(s.trim())
            .map(Dur)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration `{s}`: {e} (write e.g. `30s`, `5m`, `1h30m`)"
                ))
            })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Path of the runbook, relative to the scenario file.
    pub runbook: PathBuf,
    /// Shown in reports; defaults to the file name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Input values (YAML scalars and lists).
    #[serde(default)]
    pub inputs: IndexMap<String, yaml_serde::Value>,
    /// Secret values for the drill; a secret not given gets a placeholder.
    #[serde(default)]
    pub secrets: IndexMap<String, String>,
    /// How each check answers.
    #[serde(default)]
    pub checks: IndexMap<String, CheckScript>,
    /// How each step's action answers (default: succeeds at once).
    #[serde(default)]
    pub actions: IndexMap<String, ActionScript>,
    /// How each step's undo answers (default: succeeds at once).
    #[serde(default)]
    pub undo: IndexMap<String, ActionScript>,
    /// How each approval is decided (default: approved at once): one
    /// answer, or several tried in order (a self-approval the step refuses
    /// goes on to the next).
    #[serde(default)]
    pub approvals: IndexMap<String, ApprovalAnswers>,
    /// Who starts the drilled run (`approve ... by other` refuses their
    /// approval); default: nobody who answers.
    #[serde(default)]
    pub started_by: Option<String>,
    /// Handler actions (`on_failure`, `on_success`) answer like `actions`.
    #[serde(default)]
    pub expect: Expectations,
}

/// Check status a script can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Pass,
    Fail,
    NoData,
    Error,
}

/// `errors_low: fail`, `api_healthy: [fail, fail, pass]` (by probe number;
/// the last repeats), or rules by virtual time and by what has happened.
#[derive(Debug, Clone)]
pub enum CheckScript {
    Always(Answer),
    Sequence(Vec<Answer>),
    Rules(CheckRules),
}

pub(super) const ANSWERS: [&str; 4] = ["pass", "fail", "no_data", "error"];

fn answer(s: &str) -> Result<Answer, String> {
    match s {
        "pass" => Ok(Answer::Pass),
        "fail" => Ok(Answer::Fail),
        "no_data" => Ok(Answer::NoData),
        "error" => Ok(Answer::Error),
        _ => Err(format!(
            "unknown answer `{s}`: a check answers `pass`, `fail`, `no_data` or `error`"
        )),
    }
}

/// One word; any other shape (a list, a mapping, a number) is named as
/// what it is, not as serde's "expected a Value::Tagged enum".
impl<'de> Deserialize<'de> for Answer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        use yaml_serde::Value;
        let shape = match Value::deserialize(d)? {
            Value::String(s) => return answer(&s).map_err(D::Error::custom),
            Value::Sequence(_) => "a list".to_owned(),
            Value::Mapping(_) => "a mapping".to_owned(),
            Value::Null => "empty".to_owned(),
            other => format!(
                "`{}`",
                yaml_serde::to_string(&other).unwrap_or_default().trim_end()
            ),
        };
        Err(D::Error::custom(format!(
            "an answer is one word, `pass`, `fail`, `no_data` or `error`, but this one is {shape} \
             (a list of answers by probe goes directly under the check's name, not under `answer:` or `default:`)"
        )))
    }
}

/// Told apart by shape (a word, a list, a mapping), so that a mistake is
/// reported as what it is rather than as "did not match any variant".
impl<'de> Deserialize<'de> for CheckScript {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        use yaml_serde::Value;
        match Value::deserialize(d)? {
            Value::String(s) => answer(&s)
                .map(CheckScript::Always)
                .map_err(D::Error::custom),
            Value::Sequence(items) if items.is_empty() => Err(D::Error::custom(
                "an empty list of answers: give at least one (the last repeats)",
            )),
            Value::Sequence(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => answer(s),
                    other => Err(format!(
                        "unknown answer `{}`: a check answers `pass`, `fail`, `no_data` or `error`",
                        yaml_serde::to_string(other).unwrap_or_default().trim_end()
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(CheckScript::Sequence)
                .map_err(D::Error::custom),
            v @ Value::Mapping(_) => yaml_serde::from_value::<CheckRules>(v)
                .map(CheckScript::Rules)
                .map_err(|e| D::Error::custom(e.to_string())),
            _ => Err(D::Error::custom(
                "a check is scripted as an answer (`pass`, `fail`, `no_data`, `error`), \
                 a list of answers by probe, or `{default: ..., rules: [...]}`",
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRules {
    /// The answer when no rule matches.
    pub default: Answer,
    /// Tried in order; the first that matches answers.
    #[serde(default)]
    pub rules: Vec<CheckRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRule {
    pub answer: Answer,
    /// Matches once this much virtual time has passed since the run began.
    #[serde(default)]
    pub after: Option<Dur>,
    /// Matches once this step's action has succeeded (before its own
    /// `verify`, which may be waiting for this very answer)...
    #[serde(default)]
    pub succeeded: Option<String>,
    /// Matches once this step's undo has run and succeeded (the rollback
    /// restored it)...
    #[serde(default)]
    pub undone: Option<String>,
    /// ...and this much longer has passed since (with `succeeded` or
    /// `undone`).
    #[serde(default)]
    pub plus: Option<Dur>,
    /// Matches from this probe number of the check on (1-based).
    #[serde(default)]
    pub from_probe: Option<u32>,
}

/// How an action (or undo) answers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionScript {
    /// Every attempt: `ok` (default), `fail`, `timeout`, `error`.
    #[serde(default)]
    pub result: Option<ActionResult>,
    /// The first N attempts fail (as `result` says, or `fail`), then it works.
    #[serde(default)]
    pub fail_first: Option<u32>,
    /// Exit code of a failing shell command (default 1).
    #[serde(default)]
    pub exit: Option<i32>,
    /// HTTP status of a failing request (default 500) or of any response.
    #[serde(default)]
    pub status: Option<u16>,
    /// Output returned (shell stdout; HTTP body).
    #[serde(default)]
    pub stdout: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Virtual time each attempt takes.
    #[serde(default)]
    pub takes: Option<Dur>,
    /// Per fan-out item overrides.
    #[serde(default)]
    pub items: IndexMap<String, ActionScript>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionResult {
    Ok,
    Fail,
    Timeout,
    Error,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalScript {
    pub approve: bool,
    /// Virtual time before the answer.
    #[serde(default)]
    pub after: Option<Dur>,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `{approve: true, by: bob}`, or a list of such answers in the order they
/// come (each `after` counts from the question).
#[derive(Debug, Clone)]
pub struct ApprovalAnswers(pub Vec<ApprovalScript>);

/// Told apart by shape, so that a mistake inside an answer is reported as
/// itself rather than as "did not match any variant".
impl<'de> Deserialize<'de> for ApprovalAnswers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        use yaml_serde::Value;
        let one = |v: Value| {
            yaml_serde::from_value::<ApprovalScript>(v).map_err(|e| D::Error::custom(e.to_string()))
        };
        match Value::deserialize(d)? {
            Value::Sequence(items) if items.is_empty() => Err(D::Error::custom(
                "an empty list of answers: give at least one",
            )),
            Value::Sequence(items) => items
                .into_iter()
                .map(one)
                .collect::<Result<Vec<_>, _>>()
                .map(ApprovalAnswers),
            v @ Value::Mapping(_) => one(v).map(|a| ApprovalAnswers(vec![a])),
            _ => Err(D::Error::custom(
                "an approval is scripted as `{approve: true|false, after: D, by: NAME, reason: TEXT}` \
                 or a list of those",
            )),
        }
    }
}

/// What the runbook must have done. Every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// `succeeded`, `rolled_back`, `rollback_incomplete`, `cancelled`.
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Steps that succeeded (at least these).
    #[serde(default)]
    pub succeeded: Vec<String>,
    #[serde(default)]
    pub skipped: Vec<String>,
    #[serde(default)]
    pub failed: Vec<String>,
    /// Steps that never started.
    #[serde(default)]
    pub not_run: Vec<String>,
    /// The undos that ran, in order (exactly).
    #[serde(default)]
    pub rollback: Option<Vec<String>>,
    /// Undos that failed.
    #[serde(default)]
    pub undo_failed: Vec<String>,
    /// Steps whose undo never ran (kept, skipped by `undo when`, or never
    /// reached by a rollback).
    #[serde(default)]
    pub not_undone: Vec<String>,
    /// Notifications that must have been sent (and delivered: a send that
    /// failed does not count), in this order (others may come between).
    #[serde(default)]
    pub notifications: Vec<NotificationExpect>,
    /// Upper bound on the incident's virtual duration.
    #[serde(default)]
    pub max_duration: Option<Dur>,
    /// Retries of a step: `{revert_config: 2}`.
    #[serde(default)]
    pub retries: IndexMap<String, u32>,
    /// Steps where the run's starter (`started_by`) approving was refused
    /// (`approve ... by other`), at least these.
    #[serde(default)]
    pub self_approval_refused: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationExpect {
    pub channel: String,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub matches: Option<String>,
    /// Sent at exactly this virtual time after the run started (a status
    /// update's schedule).
    #[serde(default)]
    pub at: Option<Dur>,
}

/// A scenario read from disk, with its text for diagnostics.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub path: PathBuf,
    pub text: String,
    pub scenario: Scenario,
}

impl LoadedScenario {
    pub fn name(&self) -> String {
        self.scenario.name.clone().unwrap_or_else(|| {
            self.path
                .file_name()
                .map(|f| {
                    f.to_string_lossy()
                        .trim_end_matches(".drill.yaml")
                        .to_string()
                })
                .unwrap_or_default()
        })
    }

    pub fn runbook_path(&self) -> PathBuf {
        let base = self.path.parent().unwrap_or(Path::new("."));
        base.join(&self.scenario.runbook)
    }
}
