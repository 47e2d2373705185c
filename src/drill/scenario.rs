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
#[derive(Debug, Clone)]
pub enum CheckScript {
    Always(Answer),
    Sequence(Vec<Answer>),
    Rules(CheckRules),
}

const ANSWERS: [&str; 4] = ["pass", "fail", "no_data", "error"];

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
    let text = crate::fs_read::read_to_string(path, crate::fs_read::SCENARIO).map_err(|e| {
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
            let d = yaml_diag(&text, &e.to_string(), e.location().map(|l| l.index()));
            Err((text, vec![d]))
        }
    }
}

/// The rest of the line from `start`.
fn line_span(text: &str, start: usize) -> Span {
    let start = start.min(text.len());
    let end = text[start..]
        .find('\n')
        .map(|i| start + i)
        .unwrap_or(text.len());
    Span::new(start, end.max(start))
}

/// Byte offset of 1-based `line`, `column`.
fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return Some(offset + column.saturating_sub(1).min(l.len()));
        }
        offset += l.len();
    }
    None
}

/// A serde_yaml-style error as a diagnostic. Its message reads
/// `path: what at line L column C[, while parsing X at line L column C]`;
/// the position becomes the label. Errors raised by our own types (a
/// duration, a check's answer, a field of check rules) are located by
/// serde at the enclosing mapping, so the offending value or key is looked
/// up from there.
fn yaml_diag(text: &str, raw: &str, index: Option<usize>) -> Diag {
    let (head, context) = match raw.split_once(", while ") {
        Some((h, c)) => (h, Some(c)),
        None => (raw, None),
    };
    let mut msg = head.split(" at line ").next().unwrap_or(head).to_string();
    // Say "an integer", not Rust's name for it.
    for ty in ["i32", "u32", "u16", "u64", "i64"] {
        msg = msg.replace(&format!("expected {ty}"), "expected an integer");
    }
    let from = index.unwrap_or(0).min(text.len());
    let backticked = |after: &str| -> Option<String> {
        let i = msg.find(after)? + after.len();
        let rest = msg[i..].strip_prefix('`')?;
        Some(rest[..rest.find('`')?].to_string())
    };
    let mut label = "here".to_string();
    let mut span = index.map(|i| line_span(text, i)).unwrap_or_default();
    if let Some(v) = backticked("invalid duration ").or_else(|| backticked("unknown answer ")) {
        if let Some(s) = word_between(text, &v, from, text.len()) {
            span = s;
            label = if msg.contains("invalid duration") {
                "not a duration".into()
            } else {
                "not a check answer".into()
            };
        }
    } else if let Some(k) = backticked("unknown field ") {
        let s = key_in(&text[from..], &[], &k);
        if !s.is_empty() {
            span = Span::new(from + s.start, from + s.end);
        }
        label = "unknown key".into();
    }
    // "unknown field `x`, expected one of `a`, `b`": suggest the closest.
    let wrong = backticked("unknown field ")
        .or_else(|| backticked("unknown variant "))
        .or_else(|| backticked("unknown answer "));
    let suggestion = wrong.and_then(|w| {
        let known: Vec<String> = match msg.split_once("expected") {
            Some((_, list)) => list
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect(),
            None => ANSWERS.iter().map(|a| a.to_string()).collect(),
        };
        did_you_mean(&w, known.iter().map(String::as_str))
    });
    if let Some((_, want)) = msg.split_once("invalid type: ") {
        if let Some((_, ty)) = want.split_once(", expected ") {
            label = format!("expected {ty}");
        }
    }
    // serde names the enclosing mapping for errors raised by our own types:
    // name the key the value is under, as it is written.
    if let Some((path, rest)) = msg.split_once(": ") {
        let is_path = !path.is_empty()
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c));
        let written = yaml_path_at(text, span.start);
        if is_path && written.len() > path.len() && written.starts_with(path) {
            let boundary = written[path.len()..].starts_with(['.', '[']);
            if boundary {
                msg = format!("{written}: {rest}");
            }
        }
    }
    let mut d = Diag::error("drill::invalid_scenario", msg).label(span, label);
    if let Some(c) = context {
        // "parsing a flow sequence at line 3 column 12"
        let re = regex::Regex::new(r"^(.*) at line (\d+) column (\d+)").ok();
        if let Some(caps) = re.as_ref().and_then(|re| re.captures(c)) {
            let line = caps[2].parse().unwrap_or(0);
            let column = caps[3].parse().unwrap_or(0);
            if let Some(at) = offset_of(text, line, column) {
                d = d.label(
                    Span::new(at, (at + 1).min(text.len())),
                    format!("while {} that starts here", &caps[1]),
                );
            }
        }
    }
    let docs = "see docs/drills.md for the scenario format";
    let hint = if suggestion.is_some() {
        suggestion
    } else if context.is_some_and(|c| c.contains("flow sequence")) {
        Some("close the `[` list with `]`, or write one `- item` per line".to_string())
    } else if context.is_some_and(|c| c.contains("flow mapping")) {
        Some("close the `{` mapping with `}`, or write one `key: value` per line".to_string())
    } else {
        None
    };
    d.help(match hint {
        Some(s) => format!("{s} ({docs})"),
        None => docs.to_string(),
    })
}

/// The path of mapping keys and list items (`checks.errors_low.rules[0].plus`)
/// under which `offset` is written, read off the indentation of block-style
/// YAML (flow collections are not entered).
fn yaml_path_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let before: Vec<&str> = text[..line_start].split_inclusive('\n').collect();
    let line = &text[line_start..offset];
    // A key, possibly after a `- `, at the start of a line: (its column,
    // whether it opens a list item, the key).
    let key_of = |l: &str| -> Option<(usize, bool, String)> {
        let ind = indent_of(l);
        let rest = &l[ind..];
        let (col, item, rest) = match rest.strip_prefix("- ") {
            Some(r) => (ind + 2, true, r),
            None => (ind, false, rest),
        };
        let end = rest.find(':')?;
        let key = rest[..end].trim().trim_matches(['"', '\'']);
        let simple = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        simple.then(|| (col, item, key.to_string()))
    };
    let mut parts: Vec<String> = Vec::new();
    let (mut col, mut item) = match key_of(line) {
        Some((c, i, k)) => {
            parts.push(k);
            (c, i)
        }
        None => return String::new(),
    };
    let mut i = before.len();
    while i > 0 {
        if item {
            // The index of this list item among its siblings.
            let dash = col - 2;
            let mut index = 0;
            while i > 0 {
                let l = before[i - 1];
                if is_blank(l) || indent_of(l) > dash {
                    i -= 1;
                    continue;
                }
                if indent_of(l) == dash && l[dash..].starts_with("- ") {
                    index += 1;
                    i -= 1;
                    continue;
                }
                break;
            }
            if let Some(last) = parts.last_mut() {
                *last = format!("[{index}].{last}");
            }
            col = dash;
            item = false;
            continue;
        }
        i -= 1;
        let l = before[i];
        if is_blank(l) || indent_of(l) >= col {
            continue;
        }
        match key_of(l) {
            // `- a: 1` above `  b: 2`: b is a sibling of a in that item.
            Some((c, true, _)) if c == col => item = true,
            Some((c, it, k)) if c < col => {
                parts.push(k);
                col = c;
                item = it;
            }
            _ => {}
        }
    }
    parts.reverse();
    parts.join(".").replace(".[", "[")
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

/// A word in `text[from..to]` (not part of a longer name).
fn word_between(text: &str, word: &str, from: usize, to: usize) -> Option<Span> {
    let re = regex::Regex::new(&format!(
        r"(^|[^A-Za-z0-9_]){}([^A-Za-z0-9_]|$)",
        regex::escape(word)
    ))
    .ok()?;
    let m = re.find(&text[from..to])?;
    let s = from + m.start() + m.as_str().find(word)?;
    Some(Span::new(s, s + word.len()))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// `key:` at the start of `line` (after its indentation), bare or quoted:
/// the end of `key:` (just after the colon) within the line.
fn key_at_line_start(line: &str, key: &str) -> Option<usize> {
    let ind = indent_of(line);
    let rest = &line[ind..];
    for q in ["", "\"", "'"] {
        let name = format!("{q}{key}{q}");
        if let Some(after) = rest.strip_prefix(name.as_str()) {
            let gap = after.len() - after.trim_start_matches([' ', '\t']).len();
            if after[gap..].starts_with(':') {
                return Some(ind + name.len() + gap + 1);
            }
        }
    }
    None
}

/// The byte range of the value of the block-style key at `path`
/// (`["expect", "rollback"]`): from just after `rollback:` to the end of the
/// lines indented deeper than it. Keys are matched at their level only, so
/// `rollback:` under `actions:` is not `expect.rollback`.
fn value_range(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let (mut start, mut end) = (0, text.len());
    for (depth, key) in path.iter().enumerate() {
        let mut level = None;
        let mut found = None;
        let mut offset = start;
        for (i, line) in text[start..end].split_inclusive('\n').enumerate() {
            let line_start = offset;
            offset += line.len();
            // Below the top level the first piece is the rest of the
            // parent's own line (`expect:` or `rollback: [a, b]`).
            if (depth > 0 && i == 0) || is_blank(line) {
                continue;
            }
            let ind = indent_of(line);
            if ind != *level.get_or_insert(ind) {
                continue;
            }
            if let Some(colon) = key_at_line_start(line, key) {
                found = Some((line_start + colon, ind));
                break;
            }
        }
        let (value_start, key_indent) = found?;
        // The value runs until a line indented no deeper than the key (a
        // `- item` at the key's own indentation still belongs to it).
        let mut value_end = end;
        let mut offset = value_start;
        for (i, line) in text[value_start..end].split_inclusive('\n').enumerate() {
            let line_start = offset;
            offset += line.len();
            if i == 0 || is_blank(line) {
                continue;
            }
            let ind = indent_of(line);
            if ind < key_indent || (ind == key_indent && !line[ind..].starts_with("- ")) {
                value_end = line_start;
                break;
            }
        }
        start = value_start;
        end = value_end;
    }
    Some((start, end))
}

/// The span of `key` as a mapping key (block or flow style) inside the value
/// of `path`; anywhere in the file if that section cannot be found.
pub fn key_in(text: &str, path: &[&str], key: &str) -> Span {
    let pattern = format!(
        r#"(?m)(?:^[ \t]*(?:- )?|[{{,][ \t]*)["']?({})["']?[ \t]*:"#,
        regex::escape(key)
    );
    if let (Some((from, to)), Ok(re)) = (value_range(text, path), regex::Regex::new(&pattern)) {
        if let Some(c) = re.captures(&text[from..to]).and_then(|c| c.get(1)) {
            return Span::new(from + c.start(), from + c.end());
        }
    }
    key_span(text, key)
}

/// The span of `word` (a list item, a value) inside the value of `path`;
/// if it is not written as such there (quoted, escaped), the key of `path`.
pub fn word_in(text: &str, path: &[&str], word: &str) -> Span {
    value_range(text, path)
        .and_then(|(from, to)| word_between(text, word, from, to))
        .unwrap_or_else(|| match path.split_last() {
            Some((last, parents)) => key_in(text, parents, last),
            None => Span::default(),
        })
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
            unknown(
                &mut diags,
                "input",
                k,
                &inputs,
                key_in(&s.text, &["inputs"], k),
            );
        }
    }
    for i in graph.inputs.iter().filter(|i| i.default.is_none()) {
        if sc.inputs.contains_key(&i.name) {
            continue;
        }
        let (span, label) = match key_in(&s.text, &[], "inputs") {
            sp if sp.is_empty() => (
                key_span(&s.text, "runbook"),
                "this scenario has no `inputs:`".to_string(),
            ),
            sp => (sp, format!("`{}` is not given here", i.name)),
        };
        diags.push(
            Diag::error(
                "drill::missing_input",
                format!(
                    "input `{}` ({}) is required: runbook `{}` gives it no default",
                    i.name, i.ty, graph.runbook
                ),
            )
            .label(span, label)
            .help(format!("add `{}: VALUE` under `inputs:`", i.name)),
        );
    }
    for k in sc.secrets.keys() {
        if !secrets.contains(&k.as_str()) {
            unknown(
                &mut diags,
                "secret",
                k,
                &secrets,
                key_in(&s.text, &["secrets"], k),
            );
        }
    }
    for (k, script) in &sc.checks {
        if !checks.contains(&k.as_str()) {
            unknown(
                &mut diags,
                "check",
                k,
                &checks,
                key_in(&s.text, &["checks"], k),
            );
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
                            word_in(&s.text, &["checks", k], step),
                        );
                    }
                }
            }
        }
    }
    let handler_names = ["on_failure", "on_success"];
    for k in sc.actions.keys() {
        if !steps.contains(&k.as_str()) && !handler_names.contains(&k.as_str()) {
            unknown(
                &mut diags,
                "step",
                k,
                &steps,
                key_in(&s.text, &["actions"], k),
            );
        }
    }
    for k in sc.undo.keys() {
        match graph.node(k) {
            None => unknown(&mut diags, "step", k, &steps, key_in(&s.text, &["undo"], k)),
            Some(n) if n.undo.is_none() => diags.push(
                Diag::error(
                    "drill::no_undo",
                    format!("step `{k}` has no undo to script"),
                )
                .label(key_in(&s.text, &["undo"], k), "no `undo` in the runbook")
                .help("remove this entry, or add an `undo` to the step"),
            ),
            Some(_) => {}
        }
    }
    for k in sc.approvals.keys() {
        match graph.node(k) {
            None => unknown(
                &mut diags,
                "step",
                k,
                &steps,
                key_in(&s.text, &["approvals"], k),
            ),
            Some(n) => {
                let asks = n.approval.is_some()
                    || matches!(n.action, Some(crate::plan::Action::Approve { .. }));
                if !asks {
                    diags.push(
                        Diag::error(
                            "drill::no_approval",
                            format!("step `{k}` asks for no approval"),
                        )
                        .label(
                            key_in(&s.text, &["approvals"], k),
                            "no `approve` in this step",
                        )
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
                    word_in(&s.text, &["expect", what], name),
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
                    word_in(&s.text, &["expect", "rollback"], name),
                ),
                Some(n) if n.undo.is_none() => diags.push(
                    Diag::error(
                        "drill::no_undo",
                        format!("step `{name}` has no undo, so it can never be in the rollback"),
                    )
                    .label(
                        word_in(&s.text, &["expect", "rollback"], name),
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
            unknown(
                &mut diags,
                "step",
                k,
                &steps,
                key_in(&s.text, &["expect", "retries"], k),
            );
        }
    }
    for n in &e.notifications {
        if !channels.contains(&n.channel.as_str()) {
            unknown(
                &mut diags,
                "channel",
                &n.channel,
                &channels,
                word_in(&s.text, &["expect", "notifications"], &n.channel),
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
                        word_in(&s.text, &["expect", "notifications"], re),
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
                        word_in(&s.text, &["expect", "outcome"], o),
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
    fn names_are_found_in_their_own_section() {
        let text = "actions:\n  rollback: {fail_first: 1}\n  x: {stdout: \"rollback\"}\n\
                    approvals: {rollback: {approve: false}}\n\
                    expect:\n  outcome: rolled_back\n  rollback: [x, rollback]\n\
                    \x20 retries: {rollbak: 1}\n";
        let at = |s: Span| &text[s.start..];
        assert!(at(key_in(text, &["approvals"], "rollback")).starts_with("rollback: {approve"));
        assert!(at(key_in(text, &["expect", "retries"], "rollbak")).starts_with("rollbak: 1}"));
        assert!(at(word_in(text, &["expect", "rollback"], "rollback")).starts_with("rollback]"));
        // Not in the section: the section's key.
        assert!(at(word_in(text, &["expect", "outcome"], "succeeded")).starts_with("outcome"));
    }

    #[test]
    fn block_values_end_at_the_next_key_of_their_level() {
        let text = "checks:\n  a:\n    default: fail\n    rules:\n    - succeeded: s1\n  b: pass\nexpect:\n  skipped:\n  - s1\n  failed: [s2]\n";
        let (from, to) = value_range(text, &["checks", "a"]).unwrap();
        assert!(text[from..to].contains("succeeded: s1") && !text[from..to].contains("b: pass"));
        let (from, to) = value_range(text, &["expect", "skipped"]).unwrap();
        assert_eq!(text[from..to].trim(), "- s1");
    }

    #[test]
    fn shape_errors_point_at_the_value_with_a_suggestion() {
        for (text, at, help) in [
            (
                "runbook: x\nchecks:\n  a: passs\n",
                "passs",
                "did you mean `pass`?",
            ),
            (
                "runbook: x\nexpect:\n  outcome: succeeded\n  max_duration: 5 minutes\n",
                "5 minutes",
                "",
            ),
            (
                "runbook: x\nchecks:\n  a:\n    defualt: fail\n",
                "defualt",
                "did you mean `default`?",
            ),
        ] {
            let Err((_, d)) = parse(Path::new("t.drill.yaml"), text.to_string()) else {
                panic!("should fail: {text}")
            };
            let span = d[0].primary_span().unwrap_or_default();
            assert!(
                text[span.start..].starts_with(at),
                "{text}: {:?}",
                &text[span.start..]
            );
            assert!(
                d[0].help.as_deref().unwrap_or("").contains(help),
                "{:?}",
                d[0].help
            );
        }
    }

    #[test]
    fn paths_are_read_off_the_indentation() {
        let text = "checks:\n  a:\n    rules:\n      - answer: pass\n        after: 1m\n      - succeeded: s\n        plus: 2 minutes\nexpect:\n  max_duration: 5 minutes\n";
        let at = |v: &str| yaml_path_at(text, text.find(v).unwrap());
        assert_eq!(at("2 minutes"), "checks.a.rules[1].plus");
        assert_eq!(at("1m"), "checks.a.rules[0].after");
        assert_eq!(at(" s\n"), "checks.a.rules[1].succeeded");
        assert_eq!(at("5 minutes"), "expect.max_duration");
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
