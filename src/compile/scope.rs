//! What a name can refer to at a given place in a runbook.

use super::IndexMap;
use crate::ast::CaptureFormat;
use crate::diagnostics::Code;
use crate::plan::{RefRoot, Type};
use crate::span::Span;

/// A runbook-level name.
#[derive(Debug, Clone)]
pub(super) enum Sym {
    Input(Type),
    Secret,
    Check,
    Capture {
        format: CaptureFormat,
        /// Index of the top-level block that sets it.
        block: usize,
        /// Set in a `for` body: the scope index where the body ends (each
        /// item has its own value, read by the body's later steps only).
        body_end: Option<usize>,
        step: String,
    },
}

impl Sym {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Sym::Input(_) => "input",
            Sym::Secret => "secret",
            Sym::Check => "check",
            Sym::Capture { .. } => "capture",
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Globals {
    pub syms: IndexMap<String, (Sym, Span)>,
    /// The captures each check's probe and expectations read: a condition
    /// may use the check only where they are set.
    pub check_captures: IndexMap<String, Vec<String>>,
}

/// The probe observations a check's `expect` can read.
/// A probe observation's name and the constructor of its type.
pub(super) type ProbeVar = (&'static str, fn() -> Type);

pub(super) fn probe_vars(kind: &str) -> &'static [ProbeVar] {
    match kind {
        "http" => &[
            ("status", || Type::Int),
            ("elapsed", || Type::Duration),
            ("body", || Type::String),
            ("json", || Type::Json),
        ],
        "promql" => &[("value", || Type::Float)],
        _ => &[
            ("exit", || Type::Int),
            ("stdout", || Type::String),
            ("stderr", || Type::String),
            ("elapsed", || Type::Duration),
        ],
    }
}

/// Where a condition or text is, and so what it may read.
#[derive(Debug, Clone, Default)]
pub(super) struct Scope {
    /// Block of the step being compiled: captures of earlier blocks are
    /// visible. `None`: outside steps (handlers see every capture).
    pub block: Option<usize>,
    /// The step's own capture is visible (in its `verify` and `undo`).
    pub own_capture: Option<String>,
    pub loop_var: Option<(String, Type)>,
    pub args: Vec<String>,
    /// `Some(kind)` inside a check's `expect`.
    pub probe: Option<&'static str>,
    pub failure: bool,
    /// In a step's `undo` (its action and `undo when`): `self.*` is known.
    pub own_step: bool,
    /// In a step of `always { ... }`: `run.outcome` and `run.rollback` are
    /// known.
    pub cleanup: bool,
    pub checks: bool,
    pub captures: bool,
    /// `None`: secrets may be read here (the text is sent, not shown).
    /// `Some(why)`: they may not, and why.
    pub no_secrets: Option<&'static str>,
}

pub(super) enum Resolved {
    Found(RefRoot, Type),
    /// The name exists but may not be used here: a diagnostic code, a
    /// message saying why, and a help.
    NotHere(Code, String, Option<String>),
    Unknown,
}

/// The label under a name that exists but may not be used where it is.
pub(super) fn not_here_label(code: Code) -> &'static str {
    match code {
        Code::SecretExposed => "a secret",
        Code::CaptureNotSet => "not set yet",
        _ => "not available here",
    }
}

pub const RUN_FIELDS: &[&str] = &["id", "runbook", "mode", "started"];
/// Fields of `run` known only in an `always` step: `run.outcome`
/// (`succeeded`, `rolled_back`, ...) and `run.rollback` (`none`,
/// `complete`, `incomplete`, `skipped`).
pub const CLEANUP_RUN_FIELDS: &[&str] = &["outcome", "rollback"];
/// Every field of `run` in an `always` step.
pub(super) const RUN_FIELDS_IN_ALWAYS: &[&str] =
    &["id", "runbook", "mode", "started", "outcome", "rollback"];
pub const FAILURE_FIELDS: &[&str] = &["step", "reason", "rollback", "completed", "undone", "kept"];
/// Fields of `self` in a step's `undo` and `undo when`: how the step
/// being undone went.
pub(super) const SELF_FIELDS: &[&str] = &["outcome", "attempts"];

/// The fields a built-in record has here (`None`: not a built-in record).
pub(super) fn builtin_fields(kind: RefRoot, scope: &Scope) -> Option<&'static [&'static str]> {
    match kind {
        RefRoot::Run if scope.cleanup => Some(RUN_FIELDS_IN_ALWAYS),
        RefRoot::Run => Some(RUN_FIELDS),
        RefRoot::Failure => Some(FAILURE_FIELDS),
        RefRoot::SelfStep => Some(SELF_FIELDS),
        _ => None,
    }
}

/// The type of a built-in record's field.
pub(super) fn builtin_field_type(kind: RefRoot, field: &str) -> Type {
    match (kind, field) {
        (RefRoot::Run, "started") => Type::Time,
        (RefRoot::Failure, "completed" | "undone" | "kept") => Type::List(Box::new(Type::String)),
        (RefRoot::SelfStep, "attempts") => Type::Int,
        _ => Type::String,
    }
}

impl Scope {
    pub(super) fn resolve(&self, globals: &Globals, name: &str) -> Resolved {
        if let Some(kind) = self.probe {
            if let Some((_, t)) = probe_vars(kind).iter().find(|(n, _)| *n == name) {
                return Resolved::Found(RefRoot::Probe, t());
            }
        }
        if let Some((v, t)) = &self.loop_var {
            if v == name {
                return Resolved::Found(RefRoot::LoopVar, t.clone());
            }
        }
        if self.args.iter().any(|a| a == name) {
            return Resolved::Found(RefRoot::LoopVar, Type::String);
        }
        if name == "run" {
            return Resolved::Found(RefRoot::Run, Type::Json);
        }
        if name == "self" {
            if self.own_step {
                return Resolved::Found(RefRoot::SelfStep, Type::Json);
            }
            return Resolved::NotHere(
                Code::NotInScope,
                "`self` is only known in a step's `undo` and `undo when`".into(),
                Some("`self.outcome` and `self.attempts` say how the step being undone went; elsewhere, read a step's capture".into()),
            );
        }
        if name == "failure" {
            if self.failure {
                return Resolved::Found(RefRoot::Failure, Type::Json);
            }
            return Resolved::NotHere(
                Code::NotInScope,
                "`failure` is only set in `on failure` handlers".into(),
                Some("move this into `on failure { ... }`".into()),
            );
        }
        let Some((sym, _)) = globals.syms.get(name) else {
            return Resolved::Unknown;
        };
        match sym {
            Sym::Input(t) => Resolved::Found(RefRoot::Input, t.clone()),
            Sym::Secret => match self.no_secrets {
                None => Resolved::Found(RefRoot::Input, Type::Secret),
                Some(why) => Resolved::NotHere(
                    Code::SecretExposed,
                    format!("secret `{name}` cannot be used here: {why}"),
                    Some("secrets may only appear in URLs, headers, request bodies and commands, which are sent but never logged".into()),
                ),
            },
            Sym::Check => {
                if self.checks {
                    self.check_reads(globals, name)
                } else {
                    Resolved::NotHere(
                        Code::NotInScope,
                        format!("check `{name}` cannot be read here"),
                        Some("checks are conditions: use them in `when`, `verify` or `after rollback verify`".into()),
                    )
                }
            }
            Sym::Capture {
                format,
                block,
                body_end,
                step,
            } => {
                let ty = match format {
                    CaptureFormat::Json => Type::Json,
                    CaptureFormat::Text => Type::String,
                };
                if !self.captures {
                    return Resolved::NotHere(
                        Code::NotInScope,
                        format!("capture `{name}` cannot be read here"),
                        Some("captures are set by steps, and this is read outside them: pass what it needs as an input".into()),
                    );
                }
                if let Some(end) = body_end {
                    let outside = match self.block {
                        None => true,
                        Some(b) => b >= *end,
                    };
                    if outside && self.own_capture.as_deref() != Some(name) {
                        return Resolved::NotHere(
                            Code::CaptureInForBody,
                            format!("capture `{name}` is set by step `{step}` of a `for` body: each item has its own"),
                            Some(format!("read `{name}` in a later step of the same `for` body, or capture what you need after the block")),
                        );
                    }
                }
                let visible = match self.block {
                    None => true,
                    Some(b) => *block < b || self.own_capture.as_deref() == Some(name),
                };
                if visible {
                    Resolved::Found(RefRoot::Capture, ty)
                } else {
                    let help = match self.block {
                        Some(b) if b == *block => format!("`{name}` is set by step `{step}`, which runs in parallel with this one: move `{step}` before the `parallel` block"),
                        _ => format!("`{name}` is set by step `{step}`, which comes later: move `{step}` before this step"),
                    };
                    Resolved::NotHere(
                        Code::CaptureNotSet,
                        format!("capture `{name}` is read before step `{step}` sets it"),
                        Some(help),
                    )
                }
            }
        }
    }

    /// A check used here: every capture it reads must be set by now.
    fn check_reads(&self, globals: &Globals, name: &str) -> Resolved {
        for cap in globals.check_captures.get(name).into_iter().flatten() {
            if let Resolved::NotHere(code, _, help) = self.resolve(globals, cap) {
                return Resolved::NotHere(
                    code,
                    format!("check `{name}` reads capture `{cap}`, which is not set here"),
                    help,
                );
            }
        }
        Resolved::Found(RefRoot::Check, Type::Bool)
    }

    /// Every name visible here, for "did you mean".
    pub(super) fn visible_names<'a>(&'a self, globals: &'a Globals) -> Vec<&'a str> {
        let mut v: Vec<&str> = globals.syms.keys().map(String::as_str).collect();
        if let Some((n, _)) = &self.loop_var {
            v.push(n);
        }
        v.extend(self.args.iter().map(String::as_str));
        if let Some(kind) = self.probe {
            v.extend(probe_vars(kind).iter().map(|(n, _)| *n));
        }
        v
    }
}
