//! `escalate "reason"`: a step's action that stops the run and hands over
//! to a human (outcome `needs_human`, nothing undone). Its reason is a
//! message people read (no secrets, not empty), and it is only ever a
//! step's own action: not fanned out by `for`, not an undo, not in a
//! handler (the run has already ended there).

use super::scope::Scope;
use super::Compiler;
use crate::ast;
use crate::diagnostics::{Code, Diag};
use crate::plan::{self, Escape};
use crate::span::Span;

impl Compiler<'_> {
    pub(super) fn escalate(&mut self, reason: &ast::Str, scope: &Scope) -> plan::Action {
        if reason.value.trim().is_empty() {
            self.diags.push(
                Diag::error(Code::EmptyReason, "`escalate` without a reason")
                    .label(reason.span, "empty reason")
                    .help("say what the human must decide: `escalate \"more than 3 nodes down: a quorum decision\"`"),
            );
        }
        let scope = Scope {
            no_secrets: Some("the escalation reason is shown to people"),
            ..scope.clone()
        };
        plan::Action::Escalate {
            reason: self.text(reason, Escape::Plain, &scope),
        }
    }

    /// `escalate` anywhere but as a step's action.
    pub(super) fn escalate_placement(&mut self, rb: &ast::Runbook) {
        let mut misplaced: Vec<(Span, &str)> = Vec::new();
        for block in &rb.body {
            for s in block.steps() {
                if let Some(a) = &s.action {
                    if let ast::Action::For { body, .. } = &a.node {
                        if matches!(body.node, ast::Action::Escalate(_)) {
                            misplaced.push((body.span, "in a `for`"));
                        }
                    }
                }
                if let Some(u) = &s.undo {
                    if escalates(&u.node) {
                        misplaced.push((u.span, "as an undo"));
                    }
                }
            }
        }
        for h in rb.on_failure.iter().chain(&rb.on_success) {
            for a in &h.actions {
                if escalates(&a.node) {
                    misplaced.push((a.span, "in a handler"));
                }
            }
        }
        for (span, where_) in misplaced {
            self.diags.push(
                Diag::error(
                    Code::MisplacedEscalate,
                    format!("`escalate` cannot be used {where_}"),
                )
                .label(span, "not a step's own action")
                .help("put `escalate \"reason\"` in a step of its own, with a `when` saying when a human must take over"),
            );
        }
    }
}

fn escalates(a: &ast::Action) -> bool {
    match a {
        ast::Action::Escalate(_) => true,
        ast::Action::For { body, .. } => escalates(&body.node),
        _ => false,
    }
}
