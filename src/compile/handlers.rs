//! Handlers (`on failure`, `on success`) and `after rollback verify`.

use super::scope::Scope;
use super::Compiler;
use crate::ast;
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use crate::plan;

impl Compiler<'_> {
    fn handler(&mut self, h: Option<&ast::Handler>, scope: &Scope) -> Vec<plan::Action> {
        let Some(h) = h else { return Vec::new() };
        h.actions
            .iter()
            .map(|a| {
                if matches!(a.node, ast::Action::Approve { .. }) {
                    self.diags.push(
                        Diag::error(
                            Code::ApproveInHandler,
                            "`approve` cannot be used in a handler",
                        )
                        .label(a.span, "handlers run unattended after the run has ended")
                        .help("handlers are for notifications and clean-up"),
                    );
                }
                self.action(a, scope)
            })
            .collect()
    }

    /// `on failure`, `on success` and `after rollback verify`.
    pub(super) fn handlers(
        &mut self,
        rb: &ast::Runbook,
    ) -> (
        Vec<plan::Action>,
        Vec<plan::Action>,
        Option<plan::VerifyPolicy>,
    ) {
        // As in steps: a handler's commands, URLs, headers and bodies may
        // send a secret (paging someone needs a token); its messages may not
        // (`notify` sets its own `no_secrets`).
        let handler_scope = |failure| Scope {
            failure,
            checks: false,
            captures: true,
            no_secrets: None,
            ..Scope::default()
        };
        let on_failure = self.handler(rb.on_failure.first(), &handler_scope(true));
        let on_success = self.handler(rb.on_success.first(), &handler_scope(false));
        let after_rollback = rb.after_rollback.first().map(|a| {
            let scope = Scope {
                checks: true,
                captures: true,
                no_secrets: Some("conditions are logged"),
                ..Scope::default()
            };
            self.verify(&a.verify, &scope, true)
        });
        (on_failure, on_success, after_rollback)
    }
}
