//! Periodic status updates: `every D notify ...`, at runbook level (while
//! the run is in progress) or in a step (while the step is).

use super::scope::Scope;
use super::Compiler;
use crate::ast;
use crate::plan;

impl Compiler<'_> {
    /// The updates of the runbook (`scope`: what their messages may read,
    /// inputs at runbook level) or of one step (its action's scope).
    pub(super) fn status_updates(
        &mut self,
        updates: &[ast::StatusUpdate],
        scope: &Scope,
    ) -> Vec<plan::StatusUpdate> {
        updates
            .iter()
            .map(|u| {
                self.positive(&u.every, "a status update interval");
                plan::StatusUpdate {
                    every: u.every.node,
                    notify: self.action(&u.notify, scope),
                    span: u.span,
                }
            })
            .collect()
    }
}
