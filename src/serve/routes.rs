//! The routes file: which alert starts which runbook, with which inputs,
//! in which mode.
//!
//! ```yaml
//! routes:
//!   - name: api-rollback
//!     alertname: ApiErrorRate
//!     matchers: ['severity="page"', 'service=~"api|web"']
//!     runbook: runbooks/api_config_rollback.runbook
//!     mode: propose            # run | dry-run | propose
//!     inputs:
//!       bad_revision: { label: revision }
//!       note: { annotation: summary }
//!       env: { value: prod }
//!     cancel_on_resolved: true
//! ```
//!
//! Unknown keys, wrong types, bad matchers, a runbook that does not exist
//! or does not compile: an error naming the file, line and column. Paths
//! are relative to the routes file.

use super::alertmanager::Alert;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What a matched alert does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteMode {
    /// A live run.
    Run,
    /// A dry run only.
    DryRun,
    /// A dry run, then a live run once someone with the approve role
    /// approves the proposal.
    Propose,
}

impl RouteMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteMode::Run => "run",
            RouteMode::DryRun => "dry-run",
            RouteMode::Propose => "propose",
        }
    }
}

/// Where an input's value comes from: exactly one of `label`,
/// `annotation` or `value`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSource {
    /// The alert's label of that name.
    #[serde(default)]
    pub label: Option<String>,
    /// The alert's annotation of that name.
    #[serde(default)]
    pub annotation: Option<String>,
    /// A fixed value.
    #[serde(default)]
    pub value: Option<String>,
}

/// A label matcher, in Alertmanager's syntax: `name="value"`,
/// `name!="value"`, `name=~"regex"`, `name!~"regex"` (quotes optional).
#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<regex::Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl Matcher {
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let t = text.trim();
        let at = t
            .find(['=', '!'])
            .ok_or_else(|| format!("`{t}` is not a matcher: write `label=\"value\"`, `label!=\"value\"`, `label=~\"regex\"` or `label!~\"regex\"`"))?;
        let label = t[..at].trim();
        let valid_label = !label.is_empty()
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !label.starts_with(|c: char| c.is_ascii_digit());
        if !valid_label {
            return Err(format!(
                "`{label}` is not a label name (letters, digits, `_`)"
            ));
        }
        let rest = &t[at..];
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Re, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotRe, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::Ne, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Eq, v)
        } else {
            return Err(format!("`{t}`: the operator must be one of =, !=, =~, !~"));
        };
        let v = value.trim();
        let value = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            v[1..v.len() - 1].replace("\\\"", "\"")
        } else {
            v.to_owned()
        };
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                // Anchored, as Alertmanager anchors them.
                regex::Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("`{value}` is not a regular expression: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            label: label.to_owned(),
            op,
            value,
            regex,
        })
    }

    /// A missing label matches as the empty string (as in Alertmanager).
    pub fn matches(&self, labels: &indexmap::IndexMap<String, String>) -> bool {
        let v = labels.get(&self.label).map(String::as_str).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(r)) => r.is_match(v),
            (MatchOp::NotRe, Some(r)) => !r.is_match(v),
            _ => false,
        }
    }
}

/// One route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Unique; part of the deduplication key.
    pub name: String,
    pub alertname: String,
    /// As written (parsed into `matchers` when the file is loaded).
    #[serde(default, rename = "matchers")]
    pub matcher_texts: Vec<String>,
    #[serde(skip)]
    pub matchers: Vec<Matcher>,
    /// The runbook file (relative to the routes file).
    pub runbook: PathBuf,
    pub mode: RouteMode,
    #[serde(default)]
    pub inputs: indexmap::IndexMap<String, InputSource>,
    /// A `resolved` alert cancels this route's pending proposal.
    #[serde(default)]
    pub cancel_on_resolved: bool,
}

impl Route {
    pub fn matches(&self, alert: &Alert) -> bool {
        alert.labels.get("alertname").map(String::as_str) == Some(self.alertname.as_str())
            && self.matchers.iter().all(|m| m.matches(&alert.labels))
    }

    /// The run's inputs as `NAME=VALUE` (typed by the runbook like
    /// `--input`), or the label or annotation that is missing.
    pub fn inputs_for(&self, alert: &Alert) -> Result<Vec<String>, String> {
        self.inputs
            .iter()
            .map(|(name, src)| {
                let value = match (&src.label, &src.annotation, &src.value) {
                    (Some(l), None, None) => alert
                        .labels
                        .get(l)
                        .ok_or_else(|| format!("input `{name}`: the alert has no label `{l}`"))?,
                    (None, Some(a), None) => alert.annotations.get(a).ok_or_else(|| {
                        format!("input `{name}`: the alert has no annotation `{a}`")
                    })?,
                    (None, None, Some(v)) => v,
                    _ => {
                        return Err(format!(
                            "input `{name}`: give one of label, annotation, value"
                        ))
                    }
                };
                Ok(format!("{name}={value}"))
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    routes: Vec<Route>,
}

/// The routes, in order (the first that matches an alert wins).
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub routes: Vec<Route>,
}

/// A routes file that cannot be used: `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutesError(pub String);

impl std::fmt::Display for RoutesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Routes {
    pub fn load(path: &Path) -> Result<Routes, RoutesError> {
        let text = crate::fs_read::read_to_string(path, crate::fs_read::CONFIG)
            .map_err(|e| RoutesError(format!("cannot read routes file {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Routes::parse(&path.display().to_string(), &text, base)
    }

    /// Parses a routes file; runbook paths are joined to `base` and each
    /// runbook is compiled.
    pub fn parse(name: &str, text: &str, base: &Path) -> Result<Routes, RoutesError> {
        let at = |offset: usize| {
            let (line, col) = line_col(text, offset);
            format!("{name}:{line}:{col}")
        };
        if let Err(e) = crate::yaml_depth::check(text) {
            return Err(RoutesError(format!("{}: {}", at(e.offset), e.message())));
        }
        let file: RoutesFile = yaml_serde::from_str(text).map_err(|e| {
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            match e.location() {
                Some(l) => RoutesError(format!("{name}:{}:{}: {msg}", l.line(), l.column())),
                None => RoutesError(format!("{name}: {msg}")),
            }
        })?;
        let mut routes = Vec::new();
        for mut r in file.routes {
            let where_ = |needle: &str| at(find_value(text, needle));
            if routes.iter().any(|o: &Route| o.name == r.name) {
                return Err(RoutesError(format!(
                    "{}: two routes are named `{}`",
                    where_(&r.name),
                    r.name
                )));
            }
            for t in &r.matcher_texts {
                let m = Matcher::parse(t)
                    .map_err(|e| RoutesError(format!("{}: route `{}`: {e}", where_(t), r.name)))?;
                r.matchers.push(m);
            }
            for (input, src) in &r.inputs {
                let n = [&src.label, &src.annotation, &src.value]
                    .iter()
                    .filter(|x| x.is_some())
                    .count();
                if n != 1 {
                    return Err(RoutesError(format!(
                        "{}: route `{}`: input `{input}`: give exactly one of `label`, `annotation` or `value`",
                        where_(input),
                        r.name
                    )));
                }
            }
            let written = r.runbook.display().to_string();
            r.runbook = base.join(&r.runbook);
            let runbook = crate::session::Runbook::File(r.runbook.clone());
            if let Err(e) = crate::session::load_runbook(&runbook, &mut |_| {}) {
                let why = match e {
                    crate::session::Error::Runbook { report, .. } => {
                        format!(
                            "it does not compile ({} errors, the first: {}; `runbook check {}` shows them all)",
                            report.errors(),
                            report
                                .diags
                                .iter()
                                .find(|d| d.level == crate::diagnostics::Level::Error)
                                .map(|d| d.message.as_str())
                                .unwrap_or("?"),
                            r.runbook.display()
                        )
                    }
                    other => other.to_string(),
                };
                return Err(RoutesError(format!(
                    "{}: route `{}`: runbook {written}: {why}",
                    where_(&written),
                    r.name
                )));
            }
            routes.push(r);
        }
        Ok(Routes { routes })
    }

    /// The first route matching `alert`.
    pub fn route_for(&self, alert: &Alert) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(alert))
    }

    pub fn get(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }
}

/// The offset of `needle` written as a value (after `: `), else anywhere,
/// else 0.
fn find_value(text: &str, needle: &str) -> usize {
    text.find(&format!(": {needle}"))
        .map(|i| i + 2)
        .or_else(|| text.find(needle))
        .unwrap_or(0)
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> indexmap::IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matchers_follow_alertmanager_syntax() {
        let l = labels(&[("severity", "page"), ("service", "api")]);
        assert!(Matcher::parse("severity=\"page\"").unwrap().matches(&l));
        assert!(Matcher::parse("severity=page").unwrap().matches(&l));
        assert!(!Matcher::parse("severity!=page").unwrap().matches(&l));
        assert!(Matcher::parse("service=~\"api|web\"").unwrap().matches(&l));
        // Anchored: `ap` does not match `api`.
        assert!(!Matcher::parse("service=~ap").unwrap().matches(&l));
        assert!(Matcher::parse("service!~web").unwrap().matches(&l));
        assert!(Matcher::parse("missing=\"\"").unwrap().matches(&l));
        assert!(Matcher::parse("no operator").is_err());
        assert!(Matcher::parse("x=~\"(\"").is_err());
        assert!(Matcher::parse("9x=a").is_err());
    }

    #[test]
    fn located_errors() {
        let text =
            "routes:\n  - name: a\n    alertname: A\n    runbook: x.runbook\n    mode: sometimes\n";
        let e = Routes::parse("routes.yaml", text, Path::new(".")).unwrap_err();
        assert!(e.0.starts_with("routes.yaml:5:"), "{e}");
        assert!(e.0.contains("sometimes"), "{e}");
        let text = "routes:\n  - name: a\n    alertname: A\n    matchers: ['sev~x']\n    runbook: x.runbook\n    mode: run\n";
        let e = Routes::parse("routes.yaml", text, Path::new(".")).unwrap_err();
        assert!(e.0.starts_with("routes.yaml:4:"), "{e}");
        let text = "routes:\n  - name: a\n    alertname: A\n    runbook: does/not/exist.runbook\n    mode: run\n";
        let e = Routes::parse("routes.yaml", text, Path::new(".")).unwrap_err();
        assert!(
            e.0.starts_with("routes.yaml:4:14: route `a`: runbook does/not/exist.runbook"),
            "{e}"
        );
    }
}
