//! `undo when COND ACTION`: an undo that runs only if its condition holds
//! when the rollback reaches the step. The condition reads what a step's
//! `verify` reads (inputs, checks, earlier captures and the step's own)
//! and `self.outcome` / `self.attempts`, how the step being undone went.

use super::scope::Scope;
use super::Compiler;
use crate::ast;
use crate::plan;

/// The compiled `undo when` of step `s` (whose clauses see `base`).
pub(super) fn check(c: &mut Compiler<'_>, s: &ast::Step, base: &Scope) -> Option<Box<plan::Expr>> {
    let cond = s.undo_when.as_ref()?;
    let scope = Scope {
        own_capture: s.capture.as_ref().map(|c| c.name.node.clone()),
        own_step: true,
        no_secrets: Some("conditions are logged with every value they read"),
        ..base.clone()
    };
    Some(Box::new(c.lowering().condition(cond, &scope)))
}
