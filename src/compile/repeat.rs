//! `loop until COND every D within D`: the step's action run again and
//! again until a condition holds (it may read the step's own capture, set
//! anew by each round). Only a `run`, `http` or `notify` action can be
//! repeated: a `for` has its own items, an approval is asked once, and a
//! `wait` repeated is a longer `wait`.

use super::scope::Scope;
use super::Compiler;
use crate::ast;
use crate::diagnostics::{Code, Diag};
use crate::plan;

pub(super) fn check(
    c: &mut Compiler<'_>,
    s: &ast::Step,
    l: &ast::Verify,
    scope: &Scope,
) -> plan::VerifyPolicy {
    let refused = match s.action.as_ref().map(|a| &a.node) {
        None => Some((
            format!("step `{}` loops, but has no action to repeat", s.name.node),
            "add the `run` or `http` action to repeat, or wait for the condition with `verify`",
        )),
        Some(ast::Action::For { .. }) => Some((
            "a `for` cannot be repeated by `loop`".to_string(),
            "loop in a step of its own, before or after the fan-out",
        )),
        Some(ast::Action::Approve { .. }) => Some((
            "an approval cannot be repeated by `loop`".to_string(),
            "ask once, in its own step; loop the action that follows it",
        )),
        Some(ast::Action::Wait(_)) => Some((
            "a `wait` cannot be repeated by `loop`".to_string(),
            "wait for the condition with `verify COND within D every D` instead",
        )),
        _ => None,
    };
    if let Some((message, help)) = refused {
        c.diags.push(
            Diag::error(Code::InvalidLoop, message)
                .label(l.span, "repeats the action")
                .help(help),
        );
    }
    c.verify(l, scope, false)
}
