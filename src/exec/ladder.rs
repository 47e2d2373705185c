//! Fallback ladders at run time: `try { A } else try { B } else { C }`.
//!
//! The attempts are laid out one after another in the graph (the first
//! node of an attempt depends on the last node of the one before), so the
//! scheduler reaches them in order. What this module adds:
//!
//! * A node of attempt `k` runs only if every attempt before `k` was
//!   abandoned; otherwise it is skipped: an earlier attempt succeeded, or
//!   its own attempt was abandoned ([`skip_reason`]).
//! * A step of an attempt other than the last that fails is reported
//!   `node_failed` with `continued` (the run goes on), and [`abandon`]
//!   undoes the attempt's completed steps, latest first (keep points, `undo
//!   when`, items and steps in doubt as in a rollback), journalled as
//!   `attempt_abandoned`, `undo_finished`..., `attempt_undone`. If every
//!   undo succeeded the next attempt starts; if not, the run stops and its
//!   rollback is incomplete (the steps left are listed, never undone
//!   twice).
//! * The last attempt failing fails the run as any step does: the
//!   rollback undoes it and everything before the ladder, not the
//!   abandoned attempts (undone already).

use super::context::RunCtx;
use super::rollback::{plan_undos, run_undos, RollbackReport, Undone};
use super::scheduler::NodeResult;
use crate::events::EventKind;
use crate::plan::{AttemptRef, Node};
use std::sync::Arc;

/// Whether a failure of `node` abandons its attempt (instead of failing
/// the run): it is in an attempt other than its ladder's last, and does
/// not go on by itself (`on_error continue`).
pub(crate) fn abandons(ctx: &RunCtx, node: &Node) -> bool {
    !node.continue_on_error
        && node.attempt.is_some_and(|a| {
            ctx.graph
                .ladders
                .get(a.ladder)
                .is_some_and(|l| !l.is_last(a.attempt))
        })
}

fn label(ctx: &RunCtx, a: AttemptRef) -> String {
    ctx.graph
        .ladders
        .get(a.ladder)
        .map(|l| l.label(a.attempt))
        .unwrap_or_else(|| format!("attempt {}", a.attempt + 1))
}

/// Why a node of attempt `a` does not run, if it does not: its attempt was
/// abandoned, or an earlier one succeeded (attempts are reached in order,
/// so an earlier one not abandoned has succeeded).
pub(crate) fn skip_reason(ctx: &RunCtx, a: AttemptRef) -> Option<String> {
    let abandoned = ctx.abandoned.lock().ok()?;
    if abandoned.contains(&(a.ladder, a.attempt)) {
        return Some(format!("{} was abandoned", label(ctx, a)));
    }
    (0..a.attempt)
        .find(|&k| !abandoned.contains(&(a.ladder, k)))
        .map(|k| {
            format!(
                "{} succeeded",
                label(
                    ctx,
                    AttemptRef {
                        ladder: a.ladder,
                        attempt: k
                    }
                )
            )
        })
}

/// Marks attempt `a` abandoned (also when read back from a journal).
pub(crate) fn mark_abandoned(ctx: &RunCtx, a: AttemptRef) {
    if let Ok(mut set) = ctx.abandoned.lock() {
        set.insert((a.ladder, a.attempt));
    }
}

/// Abandons the attempt of the node of `results[failed]` (which failed,
/// `reason`): undoes the attempt's completed steps among `results`, latest
/// first, and marks them (`undone_in_attempt`). `done`: undos that
/// finished before a resume. Returns whether the attempt was undone
/// cleanly (the next attempt may start).
pub(crate) async fn abandon(
    ctx: &Arc<RunCtx>,
    failed: usize,
    reason: &str,
    results: &mut [NodeResult],
    done: &Undone,
    announce: bool,
) -> bool {
    let graph = ctx.graph.clone();
    let Some(fr) = results.get(failed) else {
        return false;
    };
    let node = &graph.nodes[fr.idx];
    let Some(a) = node.attempt else {
        return false;
    };
    mark_abandoned(ctx, a);
    let mine: Vec<usize> = (0..results.len())
        .filter(|&i| {
            graph.nodes[results[i].idx].attempt == Some(a) && results[i].undone_in_attempt.is_none()
        })
        .collect();
    let subset: Vec<NodeResult> = mine.iter().map(|&i| results[i].clone()).collect();
    let planned = plan_undos(ctx, &subset, done).await;
    let mut report = RollbackReport {
        clean: !planned.left_in_doubt,
        ..RollbackReport::default()
    };
    if announce {
        ctx.emit(
            Some(&node.id),
            EventKind::AttemptAbandoned {
                ladder: a.ladder,
                attempt: a.attempt,
                label: label(ctx, a),
                step: node.id.clone(),
                reason: reason.to_owned(),
                plan: planned.entries(ctx),
                not_undone: planned.not_undone.clone(),
            },
        );
    }
    run_undos(ctx, &planned.plan, done, &mut report).await;
    // Left in doubt (its effect, or its `undo when`, unknown): not undone,
    // and the run cannot say the attempt is gone.
    let doubtful: Vec<&str> = subset
        .iter()
        .filter(|r| r.in_doubt || !r.in_doubt_items.is_empty())
        .map(|r| graph.nodes[r.idx].id.as_str())
        .chain(
            planned
                .not_undone
                .iter()
                .filter(|n| n.reason.contains("could not be evaluated"))
                .map(|n| n.node.as_str()),
        )
        .collect();
    for &i in &mine {
        let id = graph.nodes[results[i].idx].id.as_str();
        let failed_undo = report.failed_undos.iter().any(|f| f == id) || doubtful.contains(&id);
        results[i].undone_in_attempt = Some(!failed_undo);
    }
    let clean = report.clean;
    let ladder = graph.ladders.get(a.ladder);
    let next = ladder
        .filter(|l| a.attempt + 1 < l.attempts.len() && clean)
        .map(|l| l.label(a.attempt + 1));
    ctx.emit(
        Some(&node.id),
        EventKind::AttemptUndone {
            ladder: a.ladder,
            attempt: a.attempt,
            clean,
            failed_undos: report.failed_undos.clone(),
            next,
        },
    );
    clean
}

/// The failure the run stops with when attempt `a` could not be undone.
pub(crate) fn not_undone_reason(ctx: &RunCtx, node: &Node, reason: &str) -> String {
    match node.attempt {
        Some(a) => format!(
            "{reason}; {} was abandoned, and its undo did not complete, so no further attempt starts",
            label(ctx, a)
        ),
        None => reason.to_owned(),
    }
}
