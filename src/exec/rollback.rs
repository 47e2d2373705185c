//! The rollback (undo of every completed step, in reverse completion order)
//! and the `on failure` / `on success` handlers.

use super::action::Site;
use super::cond::V;
use super::context::{Bindings, OwnStep, RunCtx};
use super::scheduler::{NodeResult, NodeState};
use crate::events::Phase;
use crate::events::{ConditionPurpose, EventKind, NotUndone, UndoPlanEntry};
use crate::plan::{Action, Effect, RetryPolicy};
use indexmap::IndexMap;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct RollbackReport {
    pub clean: bool,
    /// (node, ok) in the order they were undone.
    pub undos: Vec<(String, bool)>,
    pub failed_undos: Vec<String>,
    pub after_rollback_verified: Option<bool>,
    /// Steps left in place by a keep point (see [`super::keep`]).
    pub kept: Vec<String>,
}

pub(super) struct Planned<'a> {
    pub(super) result: &'a NodeResult,
    items: Option<Vec<V>>,
}

/// What a rollback cut off before `runbook resume` had undone.
#[derive(Debug, Clone, Default)]
pub struct Undone {
    /// Undos that finished, by node, and whether they succeeded: those that
    /// did are not run again.
    pub nodes: IndexMap<String, bool>,
    /// Items of a fan-out's undo that finished ok (or were taken as done),
    /// by node: the node's undo runs for its other items only.
    pub items: IndexMap<String, Vec<String>>,
}

impl Undone {
    fn undone(&self, node: &str, item: &V) -> bool {
        self.items
            .get(node)
            .is_some_and(|items| items.contains(&item.display()))
    }
}

fn effect_of(a: &Action) -> Effect {
    match a {
        Action::Shell { .. } => Effect::Write,
        Action::Http(h) if matches!(h.method.as_str(), "GET" | "HEAD") => Effect::Read,
        Action::Http(_) => Effect::Write,
        Action::Notify { .. } => Effect::Notify,
        Action::Approve { .. } | Action::Wait { .. } | Action::Escalate { .. } => Effect::None,
        Action::ForEach { body, .. } => effect_of(body),
    }
}

/// `self.*` for the undo of the step that gave `r`.
fn own_scope(r: &NodeResult) -> Bindings {
    Bindings {
        own: Some(OwnStep {
            outcome: if r.state == NodeState::Succeeded {
                "succeeded"
            } else {
                "failed"
            },
            attempts: r.attempts,
        }),
        ..Bindings::default()
    }
}

enum UndoWhen {
    Run,
    /// The condition was false: why, for the rollback plan.
    Skip(String),
    /// It could not be evaluated: the undo is not run, and the rollback
    /// cannot say the world is back as it was.
    Unknown(String),
}

/// Evaluates a node's `undo when` (logged as `condition_evaluated`, purpose
/// `undo_when`). Undecided (a dry run's simulated value): the undo runs,
/// as a dry run shows every undo that may run.
async fn undo_wanted(ctx: &Arc<RunCtx>, node: &crate::plan::Node, scope: &Bindings) -> UndoWhen {
    let Some(cond) = node.undo_when.as_deref() else {
        return UndoWhen::Run;
    };
    let out = ctx
        .condition(Some(&node.id), cond, ConditionPurpose::UndoWhen, scope, 1)
        .await;
    match out.result {
        Ok(Some(true)) | Ok(None) => UndoWhen::Run,
        Ok(Some(false)) => UndoWhen::Skip(format!("undo when {}: false", cond.text)),
        Err(e) => UndoWhen::Unknown(format!(
            "undo when {}: could not be evaluated ({e}); not undone, check it by hand",
            cond.text
        )),
    }
}

/// Undoes every completed step in reverse completion order. A failing undo
/// is logged and the rollback goes on; the result is then not clean.
pub async fn rollback(ctx: &Arc<RunCtx>, results: &[NodeResult], reason: &str) -> RollbackReport {
    rollback_resumed(ctx, results, reason, &Undone::default()).await
}

/// [`rollback`] resumed: the undos in `done` that succeeded are not run
/// again (they count in the report as done); the others are run, each for
/// the items of its fan-out not undone yet.
pub async fn rollback_resumed(
    ctx: &Arc<RunCtx>,
    results: &[NodeResult],
    reason: &str,
    done: &Undone,
) -> RollbackReport {
    let graph = &ctx.graph;
    let planned = plan_undos(ctx, results, done).await;
    ctx.emit(
        None,
        EventKind::RollbackStarted {
            reason: reason.to_owned(),
            plan: planned.entries(ctx),
            not_undone: planned.not_undone.clone(),
        },
    );
    let mut report = RollbackReport {
        clean: !planned.left_in_doubt,
        kept: planned.kept.clone(),
        ..RollbackReport::default()
    };
    for (node, ok) in &done.nodes {
        if *ok {
            report.undos.push((node.clone(), true));
        }
    }
    run_undos(ctx, &planned.plan, done, &mut report).await;
    let cancel = ctx.opts.cancel_rollback.clone();
    // Nothing undone (all kept, or nothing to undo): the system is as the
    // steps left it, and there is nothing for `after rollback verify` to
    // confirm.
    let undid_something = !report.undos.is_empty();
    if let (Some(policy), true) = (&graph.after_rollback, undid_something) {
        let ok = ctx
            .verify(
                None,
                policy,
                ConditionPurpose::AfterRollback,
                &Bindings::default(),
                &cancel,
            )
            .await
            .is_ok();
        report.after_rollback_verified = Some(ok);
        if !ok {
            report.clean = false;
        }
    }
    ctx.emit(
        None,
        EventKind::RollbackFinished {
            clean: report.clean,
            failed_undos: report.failed_undos.clone(),
            after_rollback_verified: report.after_rollback_verified,
        },
    );
    report
}

/// What a rollback (or the undo of an abandoned attempt) will undo, in
/// order, and what it leaves.
pub(super) struct UndoPlan<'a> {
    pub(super) plan: Vec<Planned<'a>>,
    pub(super) not_undone: Vec<NotUndone>,
    /// Something is left whose state is unknown: not clean.
    pub(super) left_in_doubt: bool,
    pub(super) kept: Vec<String>,
}

impl UndoPlan<'_> {
    pub(super) fn entries(&self, ctx: &RunCtx) -> Vec<UndoPlanEntry> {
        self.plan
            .iter()
            .map(|p| UndoPlanEntry {
                node: ctx.graph.nodes[p.result.idx].id.clone(),
                items: p.items.iter().flatten().map(V::display).collect(),
            })
            .collect()
    }
}

/// The undos of `results`, latest first: keep points, items in doubt,
/// `undo when` and undos done before a resume (`done`) decided.
pub(super) async fn plan_undos<'a>(
    ctx: &Arc<RunCtx>,
    results: &'a [NodeResult],
    done: &Undone,
) -> UndoPlan<'a> {
    let graph = &ctx.graph;
    let mut plan = Vec::new();
    let mut not_undone = Vec::new();
    // Items in doubt are left as they are: the rollback cannot say the
    // world is back as it was.
    let mut left_in_doubt = false;
    let keep = super::keep::KeepPoint::find(graph, results);
    let mut kept = Vec::new();
    for (i, r) in results.iter().enumerate().rev() {
        let node = &graph.nodes[r.idx];
        if let Some(k) = &keep {
            if k.covers(i) {
                if let Some(entry) = k.not_undone(graph, r) {
                    kept.push(entry.node.clone());
                    not_undone.push(entry);
                }
                continue;
            }
        }
        if !r.in_doubt_items.is_empty() {
            left_in_doubt = true;
            not_undone.push(NotUndone {
                node: node.id.clone(),
                reason: format!(
                    "item(s) {} in doubt after an interruption: their effect is unknown, so they \
                     are not undone; check them by hand",
                    r.in_doubt_items.join(", ")
                ),
            });
        }
        if r.in_doubt {
            not_undone.push(NotUndone {
                node: node.id.clone(),
                reason: format!(
                    "in doubt: {}; its effect is unknown, so it is not undone",
                    r.reason
                ),
            });
            continue;
        }
        if !r.action_done {
            continue;
        }
        // Undone already, when the attempt of a ladder it belonged to was
        // abandoned; or that undo failed, and it is left as it is.
        match r.undone_in_attempt {
            Some(true) => continue,
            Some(false) => {
                left_in_doubt = true;
                not_undone.push(NotUndone {
                    node: node.id.clone(),
                    reason: "its undo failed when its attempt was abandoned; check it by hand"
                        .into(),
                });
                continue;
            }
            None => {}
        }
        if done.nodes.get(&node.id) == Some(&true) {
            continue;
        }
        match &node.undo {
            Some(_) => {
                let scope = super::scheduler::item_scope(ctx, node, own_scope(r));
                match undo_wanted(ctx, node, &scope).await {
                    UndoWhen::Run => {}
                    UndoWhen::Skip(reason) => {
                        not_undone.push(NotUndone {
                            node: node.id.clone(),
                            reason,
                        });
                        continue;
                    }
                    UndoWhen::Unknown(reason) => {
                        left_in_doubt = true;
                        not_undone.push(NotUndone {
                            node: node.id.clone(),
                            reason,
                        });
                        continue;
                    }
                }
                let items = r.items.as_ref().map(|items| {
                    items
                        .iter()
                        .rev()
                        .filter(|v| !done.undone(&node.id, v))
                        .cloned()
                        .collect::<Vec<_>>()
                });
                plan.push(Planned { result: r, items });
            }
            None if node.effect >= Effect::Write => not_undone.push(NotUndone {
                node: node.id.clone(),
                reason: match &node.undo_none {
                    Some(why) => format!("undo none: {why}"),
                    None => "it has no undo".into(),
                },
            }),
            None => {}
        }
    }
    UndoPlan {
        plan,
        not_undone,
        left_in_doubt,
        kept,
    }
}

/// Runs the planned undos in order, each logged as `undo_finished`, into
/// `report` (a failed one makes it not clean).
pub(super) async fn run_undos(
    ctx: &Arc<RunCtx>,
    plan: &[Planned<'_>],
    done: &Undone,
    report: &mut RollbackReport,
) {
    let graph = &ctx.graph;
    let cancel = ctx.opts.cancel_rollback.clone();
    let mut told_cancel = false;
    for p in plan {
        let node = &graph.nodes[p.result.idx];
        let Some(undo) = node.undo.as_deref() else {
            continue;
        };
        let id = node.id.as_str();
        let shown_items: Vec<String> = p.items.iter().flatten().map(V::display).collect();
        if cancel.is_cancelled() {
            if !told_cancel {
                ctx.emit(
                    None,
                    EventKind::CancelRequested {
                        stage: "second".into(),
                    },
                );
                told_cancel = true;
            }
            ctx.emit(
                Some(id),
                EventKind::UndoFinished {
                    ok: false,
                    attempts: 0,
                    items: shown_items,
                    error: Some("not undone: the rollback was cancelled".into()),
                },
            );
            report.clean = false;
            report.failed_undos.push(id.to_owned());
            report.undos.push((id.to_owned(), false));
            continue;
        }
        let site = Site {
            node: id,
            phase: Phase::Undo,
            effect: effect_of(undo),
            // The undo's own timeout: the step's bounds its action only.
            timeout: node.undo_timeout.or(ctx.settings().default_timeout),
        };
        let scope = super::scheduler::item_scope(ctx, node, own_scope(p.result));
        let (ok, attempts, error) = match undo {
            Action::ForEach {
                var, list, body, ..
            } => {
                let items = match &p.items {
                    Some(items) => Ok(items.clone()),
                    None => ctx
                        .for_items(id, list, &scope)
                        .await
                        .map(|items| items.into_iter().filter(|v| !done.undone(id, v)).collect()),
                };
                match items {
                    Err(e) => (false, 0, Some(e)),
                    Ok(items) => {
                        let mut attempts = 0;
                        let mut errors = Vec::new();
                        for item in items {
                            let s = scope.with_item(var, item.clone());
                            let a = ctx.with_retry(body, &site, &s, node.retry).await;
                            attempts += a.attempts;
                            if !a.is_ok() {
                                errors.push(format!("{}: {}", item.display(), a.reason));
                            }
                        }
                        (
                            errors.is_empty(),
                            attempts,
                            (!errors.is_empty()).then(|| errors.join("; ")),
                        )
                    }
                }
            }
            single => {
                let a = ctx.with_retry(single, &site, &scope, node.retry).await;
                (
                    a.is_ok(),
                    a.attempts,
                    (!a.is_ok()).then(|| a.reason.clone()),
                )
            }
        };
        ctx.emit(
            Some(id),
            EventKind::UndoFinished {
                ok,
                attempts,
                items: shown_items,
                error,
            },
        );
        if !ok {
            report.clean = false;
            report.failed_undos.push(id.to_owned());
        }
        report.undos.push((id.to_owned(), ok));
    }
}

/// Runs `on failure` or `on success`. A failing handler action is logged
/// (as a warning) and never changes the outcome; how many failed is
/// returned, for `run_finished`'s counts.
pub async fn handler(ctx: &Arc<RunCtx>, name: &str, actions: &[Action], scope: &Bindings) -> usize {
    if actions.is_empty() {
        return 0;
    }
    let mut failed = 0;
    ctx.emit(
        Some(name),
        EventKind::HandlerStarted {
            handler: name.to_owned(),
            actions: actions.len(),
        },
    );
    for action in actions {
        let site = Site {
            node: name,
            phase: Phase::Handler,
            effect: effect_of(action),
            timeout: ctx.settings().default_timeout,
        };
        let failures: Vec<String> = match action {
            Action::ForEach {
                var, list, body, ..
            } => match ctx.for_items(name, list, scope).await {
                Err(e) => vec![e],
                Ok(items) => {
                    let mut f = Vec::new();
                    for item in items {
                        let a = ctx
                            .with_retry(body, &site, &scope.with_item(var, item), RetryPolicy::NONE)
                            .await;
                        if !a.is_ok() {
                            f.push(a.reason);
                        }
                    }
                    f
                }
            },
            single => {
                let a = ctx
                    .with_retry(single, &site, scope, RetryPolicy::NONE)
                    .await;
                if a.is_ok() {
                    vec![]
                } else {
                    vec![a.reason]
                }
            }
        };
        failed += usize::from(!failures.is_empty());
        for f in failures {
            ctx.emit(
                Some(name),
                EventKind::Warning {
                    message: format!("{name} action `{}` failed: {f}", action.adapter()),
                },
            );
        }
    }
    failed
}
