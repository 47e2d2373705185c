//! The drill scenario file (`*.drill.yaml`): which runbook, which inputs,
//! how the world answers, and what the runbook must have done.
//!
//! Read with `yaml_serde` into typed structs (unknown keys are errors), then
//! checked against the compiled graph so that a misspelt step or check name
//! is reported at its line, with a "did you mean".

use crate::diagnostics::{did_you_mean, Diag};
use crate::plan::Graph;
use crate::span::Span;
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
    /// How each approval is decided (default: approved at once).
    #[serde(default)]
    pub approvals: IndexMap<String, ApprovalScript>,
    /// Handler actions (`on_failure`, `on_success`) answer like `actions`.
    #[serde(default)]
    pub expect: Expectations,
}

/// Check status a script can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Pass,
    Fail,
    NoData,
    Error,
}

/// `errors_low: fail`, `api_healthy: [fail, fail, pass]` (by probe number;
/// the last repeats), or rules by virtual time and by what has happened.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CheckScript {
    Always(Answer),
    Sequence(Vec<Answer>),
    Rules(CheckRules),
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
    /// ...and this much longer has passed since (with `succeeded`).
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationExpect {
    pub channel: String,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub matches: Option<String>,
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

/// Reads and parses a scenario; a YAML or shape error comes back as a
/// diagnostic at its line.
pub fn load(path: &Path) -> Result<LoadedScenario, (String, Vec<Diag>)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        (
            String::new(),
            vec![Diag::error(
                "drill::unreadable",
                format!("cannot read {}: {e}", path.display()),
            )],
        )
    })?;
    parse(path, text)
}

pub fn parse(path: &Path, text: String) -> Result<LoadedScenario, (String, Vec<Diag>)> {
    match yaml_serde::from_str::<Scenario>(&text) {
        Ok(scenario) => Ok(LoadedScenario {
            path: path.to_path_buf(),
            text,
            scenario,
        }),
        Err(e) => {
            let span = e
                .location()
                .map(|l| {
                    let start = l.index().min(text.len());
                    let end = text[start..]
                        .find('\n')
                        .map(|i| start + i)
                        .unwrap_or(text.len());
                    Span::new(start, end.max(start))
                })
                .unwrap_or_default();
            let msg = e.to_string();
            // yaml_serde appends " at line L column C"; the label shows that.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            let d = Diag::error("drill::invalid_scenario", msg)
                .label(span, "here")
                .help("see docs/drills.md for the scenario format");
            Err((text, vec![d]))
        }
    }
}

/// The span of `key:` as a mapping key in the text (first occurrence at or
/// after `from`), for pointing at names that do not resolve.
pub fn key_span(text: &str, key: &str) -> Span {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let bare = trimmed.trim_start_matches("- ");
        let lead = indent + (trimmed.len() - bare.len());
        for (quote, prefix) in [
            ("", key.to_string()),
            ("\"", format!("\"{key}\"")),
            ("'", format!("'{key}'")),
        ] {
            if let Some(rest) = bare.strip_prefix(prefix.as_str()) {
                if rest.trim_start().starts_with(':') {
                    let start = offset + lead + quote.len();
                    return Span::new(start, start + key.len());
                }
            }
        }
        offset += line.len();
    }
    Span::default()
}

/// A value in a list (`skipped: [a, b]`): the first `a` appearing as a word.
fn word_span(text: &str, word: &str, after_key: &str) -> Span {
    let from = key_span(text, after_key).start;
    let re = regex::Regex::new(&format!(
        r"(^|[^A-Za-z0-9_]){}([^A-Za-z0-9_]|$)",
        regex::escape(word)
    ));
    if let Ok(re) = re {
        if let Some(m) = re.find_at(text, from) {
            let s = m.start() + m.as_str().find(word).unwrap_or(0);
            return Span::new(s, s + word.len());
        }
    }
    Span::default()
}

/// Checks every name in the scenario against the compiled graph.
pub fn validate(s: &LoadedScenario, graph: &Graph) -> Vec<Diag> {
    let mut diags = Vec::new();
    let sc = &s.scenario;
    let steps: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    let checks: Vec<&str> = graph.checks.iter().map(|c| c.name.as_str()).collect();
    let inputs: Vec<&str> = graph.inputs.iter().map(|i| i.name.as_str()).collect();
    let secrets: Vec<&str> = graph.secrets.iter().map(|i| i.name.as_str()).collect();
    let channels: Vec<&str> = graph.channels.iter().map(|c| c.name.as_str()).collect();
    let unknown = |diags: &mut Vec<Diag>, what: &str, name: &str, known: &[&str], span: Span| {
        diags.push(
            Diag::error("drill::unknown_name", format!("unknown {what} `{name}`"))
                .label(
                    span,
                    format!("runbook `{}` has no {what} by this name", graph.runbook),
                )
                .maybe_help(
                    did_you_mean(name, known.iter().copied())
                        .or_else(|| Some(format!("known: {}", known.join(", ")))),
                ),
        );
    };
    for k in sc.inputs.keys() {
        if !inputs.contains(&k.as_str()) {
            unknown(&mut diags, "input", k, &inputs, key_span(&s.text, k));
        }
    }
    for k in sc.secrets.keys() {
        if !secrets.contains(&k.as_str()) {
            unknown(&mut diags, "secret", k, &secrets, key_span(&s.text, k));
        }
    }
    for (k, script) in &sc.checks {
        if !checks.contains(&k.as_str()) {
            unknown(&mut diags, "check", k, &checks, key_span(&s.text, k));
        }
        if let CheckScript::Rules(r) = script {
            for rule in &r.rules {
                if let Some(step) = &rule.succeeded {
                    if !steps.contains(&step.as_str()) {
                        unknown(
                            &mut diags,
                            "step",
                            step,
                            &steps,
                            word_span(&s.text, step, k),
                        );
                    }
                }
            }
        }
    }
    let handler_names = ["on_failure", "on_success"];
    for k in sc.actions.keys() {
        if !steps.contains(&k.as_str()) && !handler_names.contains(&k.as_str()) {
            unknown(&mut diags, "step", k, &steps, key_span(&s.text, k));
        }
    }
    for k in sc.undo.keys() {
        match graph.node(k) {
            None => unknown(&mut diags, "step", k, &steps, key_span(&s.text, k)),
            Some(n) if n.undo.is_none() => diags.push(
                Diag::error(
                    "drill::no_undo",
                    format!("step `{k}` has no undo to script"),
                )
                .label(key_span(&s.text, k), "no `undo` in the runbook")
                .help("remove this entry, or add an `undo` to the step"),
            ),
            Some(_) => {}
        }
    }
    for k in sc.approvals.keys() {
        match graph.node(k) {
            None => unknown(&mut diags, "step", k, &steps, key_span(&s.text, k)),
            Some(n) => {
                let asks = n.approval.is_some()
                    || matches!(n.action, Some(crate::plan::Action::Approve { .. }));
                if !asks {
                    diags.push(
                        Diag::error(
                            "drill::no_approval",
                            format!("step `{k}` asks for no approval"),
                        )
                        .label(key_span(&s.text, k), "no `approve` in this step")
                        .help("script approvals only for steps with `approve`"),
                    );
                }
            }
        }
    }
    let e = &sc.expect;
    for (what, list) in [
        ("succeeded", &e.succeeded),
        ("skipped", &e.skipped),
        ("failed", &e.failed),
        ("not_run", &e.not_run),
        ("undo_failed", &e.undo_failed),
    ] {
        for name in list {
            if !steps.contains(&name.as_str()) {
                unknown(
                    &mut diags,
                    "step",
                    name,
                    &steps,
                    word_span(&s.text, name, what),
                );
            }
        }
    }
    if let Some(rb) = &e.rollback {
        for name in rb {
            match graph.node(name) {
                None => unknown(
                    &mut diags,
                    "step",
                    name,
                    &steps,
                    word_span(&s.text, name, "rollback"),
                ),
                Some(n) if n.undo.is_none() => diags.push(
                    Diag::error(
                        "drill::no_undo",
                        format!("step `{name}` has no undo, so it can never be in the rollback"),
                    )
                    .label(
                        word_span(&s.text, name, "rollback"),
                        "no `undo` in the runbook",
                    )
                    .help("list only steps that have an `undo`"),
                ),
                Some(_) => {}
            }
        }
    }
    for k in e.retries.keys() {
        if !steps.contains(&k.as_str()) {
            unknown(&mut diags, "step", k, &steps, key_span(&s.text, k));
        }
    }
    for n in &e.notifications {
        if !channels.contains(&n.channel.as_str()) {
            unknown(
                &mut diags,
                "channel",
                &n.channel,
                &channels,
                word_span(&s.text, &n.channel, "channel"),
            );
        }
        if let Some(re) = &n.matches {
            if let Err(err) = regex::Regex::new(re) {
                diags.push(
                    Diag::error(
                        "drill::invalid_regex",
                        "invalid regular expression in `matches`",
                    )
                    .label(
                        word_span(&s.text, re, "matches"),
                        err.to_string()
                            .lines()
                            .last()
                            .unwrap_or("invalid")
                            .to_string(),
                    ),
                );
            }
        }
    }
    if let Some(o) = &e.outcome {
        let known = [
            "succeeded",
            "rolled_back",
            "rollback_incomplete",
            "cancelled",
        ];
        if !known.contains(&o.as_str()) {
            diags.push(
                Diag::error("drill::unknown_outcome", format!("unknown outcome `{o}`"))
                    .label(
                        word_span(&s.text, o, "outcome"),
                        format!("one of: {}", known.join(", ")),
                    )
                    .maybe_help(did_you_mean(o, known)),
            );
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_span_finds_nested_keys() {
        let text = "checks:\n  errors_lo: fail\n";
        let s = key_span(text, "errors_lo");
        assert_eq!(&text[s.start..s.end], "errors_lo");
    }

    #[test]
    fn yaml_errors_point_at_their_line() {
        let text = "runbook: x.runbook\nexpect:\n  outcome: succeeded\n  bogus: 1\n".to_string();
        let Err((_, d)) = parse(Path::new("t.drill.yaml"), text.clone()) else {
            panic!("should fail")
        };
        let span = d[0].primary_span().unwrap_or_default();
        assert!(
            text[span.start..].starts_with("bogus"),
            "{:?}",
            &text[span.start..]
        );
        assert!(d[0].message.contains("bogus"));
    }
}
