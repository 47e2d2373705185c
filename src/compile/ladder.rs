//! `try { steps } else try { steps } else { steps }`: a fallback ladder.
//!
//! Each attempt's steps run one after another; the first step of an
//! attempt depends on the last step of the attempt before it, so the
//! attempts are tried in the order written. The block's successors depend
//! on the last step of every attempt (one of them ends the ladder; the
//! steps of the others end skipped, or failed and undone). The executor
//! decides at run time which attempts run (`exec::ladder`): a failed step
//! of an attempt other than the last abandons it, its completed steps are
//! undone, and the next attempt starts; an attempt that succeeds makes the
//! later ones skipped.

use super::Compiler;
use crate::ast;
use crate::diagnostics::{Code, Diag};
use crate::plan;

impl Compiler<'_> {
    /// The nodes of a ladder whose steps start at scope index `start`,
    /// after the nodes `prev`. Returns the last node of each attempt that
    /// has steps.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn try_to_nodes(
        &mut self,
        steps: &[ast::Step],
        attempts: &[ast::Arm],
        span: crate::span::Span,
        start: usize,
        prev: &[usize],
        nodes: &mut Vec<plan::Node>,
        edges: &mut Vec<plan::Edge>,
        ladders: &mut Vec<plan::Ladder>,
    ) -> Vec<usize> {
        let l = ladders.len();
        if attempts.len() < 2 {
            let at = attempts.first().map_or(span, |a| a.span);
            self.diags.push(
                Diag::error(
                    Code::LadderWithoutFallback,
                    "this `try` has nothing to fall back to",
                )
                .label(at, "a single attempt")
                .help("a `try` block is a fallback ladder: add what to do when its steps fail, `} else try { step ... }` (another attempt) or `} else { step ... }` (the last resort, e.g. page a human); to run the steps plainly, remove `try { ... }` around them"),
            );
        }
        let mut plan_attempts = Vec::with_capacity(attempts.len());
        let mut last = Vec::new();
        // The last node of the attempt before: the next attempt starts
        // after it (whether it failed and was undone, or succeeded and the
        // next is skipped).
        let mut before: Vec<usize> = prev.to_vec();
        let mut at = 0;
        for (k, attempt) in attempts.iter().enumerate() {
            if attempt.len == 0 {
                let what = if k == 0 {
                    "the `try`".to_owned()
                } else if attempt.is_else {
                    "the `else`".to_owned()
                } else {
                    format!("attempt {} (`else try`)", k + 1)
                };
                self.diags.push(
                    Diag::error(
                        Code::EmptyStep,
                        format!("{what} of this ladder has no steps"),
                    )
                    .label(attempt.span, "nothing to try")
                    .help("put the steps of this attempt inside its braces, or remove the attempt"),
                );
            }
            let mut ids = Vec::with_capacity(attempt.len);
            for (j, s) in steps[at..at + attempt.len].iter().enumerate() {
                let mut node = self.step(s, start + at + j, false);
                node.attempt = Some(plan::AttemptRef {
                    ladder: l,
                    attempt: k,
                });
                ids.push(super::steps::push_after(node, &mut before, nodes, edges));
            }
            if attempt.len > 0 {
                last.extend(before.iter().copied());
            }
            at += attempt.len;
            plan_attempts.push(plan::Attempt {
                nodes: ids,
                is_else: attempt.is_else,
                span: attempt.span,
            });
        }
        ladders.push(plan::Ladder {
            attempts: plan_attempts,
            span,
        });
        last.sort_unstable();
        last.dedup();
        last
    }
}
