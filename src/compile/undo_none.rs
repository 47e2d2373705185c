//! `undo none "why"`: a write acknowledged to have no undo. It silences
//! `write_without_undo`, and its reason is carried into the graph (shown
//! by `plan`, written in the journal's rollback plan). Only a step that
//! changes something may say it, and only with a reason.

use super::Compiler;
use crate::ast;
use crate::diagnostics::{Code, Diag};
use crate::plan::Effect;
use crate::span::Spanned;

impl Compiler<'_> {
    /// Checks `undo none "why"` on step `step` whose action has `effect`;
    /// the reason, for the node.
    pub(super) fn undo_none(
        &mut self,
        step: &str,
        clause: &Spanned<ast::Str>,
        effect: Effect,
    ) -> String {
        if effect < Effect::Write {
            let what = match effect {
                Effect::Read => "only reads",
                Effect::Notify => "only sends a message",
                _ => "changes nothing",
            };
            self.diags.push(
                Diag::error(
                    Code::UndoWithoutEffect,
                    format!("step `{step}` says `undo none`, but it {what}"),
                )
                .label(clause.span, "nothing to acknowledge")
                .help("remove `undo none`: it is for a step that changes something and cannot be undone by the runbook"),
            );
        }
        let reason = clause.node.value.trim();
        if reason.is_empty() {
            self.diags.push(
                Diag::error(
                    Code::EmptyReason,
                    format!("step `{step}` says `undo none` without a reason"),
                )
                .label(clause.node.span, "empty reason")
                .help("say why the change is not undone, for the reviewer and the journal: `undo none \"the new certificate is valid either way\"`"),
            );
        }
        reason.to_owned()
    }
}
