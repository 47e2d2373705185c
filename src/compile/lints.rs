//! Lints (warnings): a write without `undo`; an irreversible step with no
//! approval before it; unused inputs, checks, templates, secrets,
//! channels; a `timeout` on the line after `approve "..."`.

use super::steps::effect_of;
use super::Compiler;
use crate::ast;
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use crate::plan::{self, Effect};
use crate::span::{Span, Spanned};
use std::time::Duration;

impl Compiler<'_> {
    pub(super) fn lint_unused(&mut self, rb: &ast::Runbook) {
        let used = |c: &Compiler, key: &str| c.used.contains(key);
        let mut warns = Vec::new();
        for i in &rb.inputs {
            if !used(self, &i.name.node) {
                warns.push(("input", &i.name));
            }
        }
        for s in &rb.secrets {
            if !used(self, &s.name.node) {
                warns.push(("secret", &s.name));
            }
        }
        for c in &rb.checks {
            if !used(self, &c.name.node) {
                warns.push(("check", &c.name));
            }
        }
        for t in &rb.templates {
            if !used(self, &format!("template:{}", t.name.node)) {
                warns.push(("template", &t.name));
            }
        }
        for ch in &rb.channels {
            if !used(self, &format!("channel:{}", ch.name.node)) {
                warns.push(("channel", &ch.name));
            }
        }
        for (what, name) in warns {
            self.diags.push(
                Diag::warning(
                    Code::Unused,
                    format!("{what} `{}` is never used", name.node),
                )
                .label(name.span, "declared here")
                .help(format!(
                    "remove it, or use it (an unused {what} is often a misspelling elsewhere)"
                )),
            );
        }
        for block in &rb.body {
            for s in block.steps() {
                let Some(a) = &s.action else { continue };
                if effect_of(&a.node) == Effect::Write && s.undo.is_none() && s.undo_none.is_none()
                {
                    self.diags.push(
                        Diag::warning(Code::WriteWithoutUndo, format!("step `{}` changes something but has no `undo`", s.name.node))
                            .label(a.span, "changes something")
                            .help("add `undo ACTION` so that a failure later can roll it back; mark the action `readonly` if it only reads, `irreversible` if it cannot be undone, or say `undo none \"why\"` if leaving it in place is intended"),
                    );
                }
            }
        }
    }

    /// `approve "..."` followed by `timeout D` on the next line: the
    /// grammar gives the timeout to the approval, while a reader sees the
    /// step's timeout clause.
    pub(super) fn lint_approval_timeout(&mut self, message: &ast::Str, t: &Spanned<Duration>) {
        let between = self
            .source
            .get(message.span.end..t.span.start)
            .unwrap_or("");
        if !between.contains('\n') {
            return;
        }
        self.diags.push(
            Diag::warning(
                Code::AmbiguousTimeout,
                "this `timeout` is the approval's, not the step's",
            )
            .label(t.span, "how long to wait for a human to answer")
            .label(message.span, "it continues this `approve`")
            .help("if it is meant for the approval, write it on the same line: `approve \"...\" timeout 15m`; for the step's timeout, put `timeout` before `approve`"),
        );
    }

    /// The span of a node's name in `step NAME {`.
    fn step_name_span(&self, n: &plan::Node) -> Span {
        let from = n.span.start + "step".len();
        self.source
            .get(from..n.span.end)
            .and_then(|rest| rest.find(n.id.as_str()))
            .map(|at| Span::new(from + at, from + at + n.id.len()))
            .unwrap_or(n.span)
    }

    /// An irreversible step needs a human yes first: an `approve` gate in
    /// the step itself, or an approval in a step that finishes before it (a
    /// parallel sibling does not count: it runs at the same time).
    pub(super) fn lint_irreversible(&mut self, nodes: &[plan::Node], branches: &[plan::Branch]) {
        if nodes.iter().all(|n| n.effect != Effect::Irreversible) {
            return;
        }
        // An approval only protects what follows if a refusal stops the run:
        // not when it can be skipped (`when`) or its failure is ignored.
        let approves = |n: &plan::Node| {
            (n.approval.is_some() || matches!(n.action, Some(plan::Action::Approve { .. })))
                && n.when.is_none()
                && !n.continue_on_error
        };
        // Blocks: runs of nodes with the same dependencies.
        let mut blocks: Vec<&[plan::Node]> = Vec::new();
        let mut start = 0;
        for i in 1..=nodes.len() {
            if i == nodes.len() || nodes[i].deps != nodes[start].deps {
                blocks.push(&nodes[start..i]);
                start = i;
            }
        }
        let mut approved_before = false;
        // An approval in an arm of an `if` protects only the steps after it
        // in that arm (those of blocks nested in it included): the other
        // arms, and what follows the block, may run without it.
        let mut arm_approved: Vec<plan::BranchRef> = Vec::new();
        for block in blocks {
            for n in block {
                let in_arm = n.branch.is_some_and(|b| {
                    plan::arm_chain(branches, b)
                        .iter()
                        .any(|a| arm_approved.contains(a))
                });
                if n.effect != Effect::Irreversible
                    || approved_before
                    || in_arm
                    || n.approval.is_some()
                {
                    continue;
                }
                let mut d = Diag::warning(
                    Code::IrreversibleWithoutApprove,
                    format!(
                        "step `{}` is irreversible and no approval comes before it",
                        n.id
                    ),
                )
                .label(self.step_name_span(n), "runs without a human saying yes");
                match block
                    .iter()
                    .find(|s| s.id != n.id && s.branch.is_none() && approves(s))
                {
                    Some(sibling) => {
                        d = d
                            .label(self.step_name_span(sibling), "asks at the same time, not before")
                            .help(format!("move step `{}` out of the `parallel` block, before it, or add `approve \"...\"` to step `{}` itself", sibling.id, n.id));
                    }
                    None => {
                        d = d.help("add `approve \"...\"` to the step (it is asked before the action runs), or a step that approves before it");
                    }
                }
                self.diags.push(d);
            }
            for n in block.iter().filter(|n| approves(n)) {
                match n.branch {
                    Some(b) => arm_approved.push(b),
                    None => approved_before = true,
                }
            }
        }
    }
}
