//! Resuming a run from its journal (`runbook resume`): the executor starts
//! from the state [`replay`](crate::durable::replay::replay) rebuilt instead
//! of from nothing, with the same scheduler and rollback as a fresh run.
//!
//! * Nodes that ended (succeeded, skipped, failed with `on_error
//!   continue`) are never run again: they seed the scheduler, their
//!   captures seed the context.
//! * A node **in doubt** (its action with an effect started and never
//!   finished) is settled first: by the operator (`--assume-done NODE` /
//!   `--assume-failed NODE`), else by evaluating its `verify`; without
//!   either, [`questions`] says so and nothing is resumed. A fan-out with
//!   some items done is settled the same way (its items are never run twice).
//! * A run that had failed or been cancelled, or whose rollback had
//!   started, goes on with the rollback: undos that finished ok are not
//!   repeated; an undo in doubt is settled by `--assume-done NODE` (taken as
//!   done) or `--assume-failed NODE` (run again).
//! * Handlers (`on failure` / `on success`) that had started are not run
//!   again.

use super::cond::V;
use super::context::{Bindings, RunCtx};
use super::scheduler::{self, GraphOutcome, NodeResult, NodeState};
use super::{conclude, start, RunOptions, RunSummary};
use crate::adapters::{Adapters, Phase};
use crate::durable::replay::{Completed, RunState};
use crate::events::{ConditionPurpose, Emitter, EventKind};
use crate::plan::{Action, Graph};
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A run to resume: its replayed state and the operator's answers.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub state: RunState,
    /// `--assume-done NODE`.
    pub assume_done: HashSet<String>,
    /// `--assume-failed NODE`.
    pub assume_failed: HashSet<String>,
}

impl Resume {
    /// A run to resume from its [`replay`](crate::durable::replay::replay)ed
    /// state, no answers given yet.
    pub fn new(state: RunState) -> Self {
        Resume {
            state,
            ..Resume::default()
        }
    }

    fn assumed(&self, node: &str) -> Option<bool> {
        if self.assume_done.contains(node) {
            Some(true)
        } else if self.assume_failed.contains(node) {
            Some(false)
        } else {
            None
        }
    }

    /// Fan-out nodes that did not end but have items done or in doubt.
    fn partial_fan_outs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let st = &self.state;
        let failed = st.failed.as_ref().map(|f| f.0.as_str());
        let mut add = |n: &String| {
            if !st.completed.contains_key(n) && Some(n.as_str()) != failed && !out.contains(n) {
                out.push(n.clone());
            }
        };
        for (n, items) in &st.items_ok {
            if !items.is_empty() {
                add(n);
            }
        }
        for d in &st.in_doubt {
            if d.phase == Phase::Action && d.item.is_some() {
                add(&d.node);
            }
        }
        out
    }
}

/// What stops a resume until the operator answers, one message each: an
/// in-doubt step with no `verify`, an in-doubt undo, a half-done fan-out;
/// and `--assume-*` flags that name nothing in doubt. Empty: go ahead.
pub fn questions(graph: &Graph, r: &Resume) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_doubt: Vec<String> = Vec::new();
    for n in r.assume_done.intersection(&r.assume_failed) {
        out.push(format!(
            "`{n}` is given both --assume-done and --assume-failed"
        ));
    }
    let partial = r.partial_fan_outs();
    for d in r.state.in_doubt_with_effect() {
        if in_doubt.contains(&d.node) || d.phase == Phase::Check || d.phase == Phase::Handler {
            continue;
        }
        in_doubt.push(d.node.clone());
        if r.assumed(&d.node).is_some() {
            continue;
        }
        let ended = if d.finished {
            "ran, but the run stopped before its outcome was journalled"
        } else {
            "started and never finished"
        };
        let what = match d.phase {
            Phase::Undo => format!(
                "the undo of step `{}` ({}) {ended}: it is in doubt",
                d.node, d.request
            ),
            _ => {
                let has_verify = graph.node(&d.node).is_some_and(|n| {
                    n.verify.is_some() && !matches!(n.action, Some(Action::ForEach { .. }))
                });
                if has_verify {
                    continue;
                }
                format!(
                    "step `{}` ({}) {ended}: it is in doubt and has no `verify` to decide",
                    d.node, d.request
                )
            }
        };
        out.push(format!(
            "{what}; check by hand, then resume with --assume-done {n} (it took effect) or \
             --assume-failed {n} (it did not)",
            n = d.node
        ));
    }
    for n in partial {
        if in_doubt.contains(&n) {
            continue;
        }
        in_doubt.push(n.clone());
        if r.assumed(&n).is_some() {
            continue;
        }
        out.push(format!(
            "fan-out step `{n}` was cut off with {} item(s) done; its items are not run twice: \
             check the rest by hand, then resume with --assume-done {n} or --assume-failed {n}",
            r.state.items_ok.get(&n).map(Vec::len).unwrap_or(0)
        ));
    }
    let mut assumed: Vec<&String> = r.assume_done.iter().chain(&r.assume_failed).collect();
    assumed.sort();
    assumed.dedup();
    for n in assumed {
        if !in_doubt.contains(n) {
            out.push(format!(
                "`{n}` is not in doubt in this run: --assume-done / --assume-failed apply only to \
                 steps (or undos) whose action started and never finished"
            ));
        }
    }
    out
}

/// The items of fan-out `idx` named by `shown` (their display form), in
/// that order, as the list evaluates now.
async fn items_of(ctx: &Arc<RunCtx>, idx: usize, shown: &[String]) -> Option<Vec<V>> {
    let node = ctx.graph.nodes.get(idx)?;
    let Some(Action::ForEach { list, .. }) = &node.action else {
        return None;
    };
    let all = ctx
        .for_items(&node.id, list, &Bindings::default())
        .await
        .ok()?;
    Some(
        shown
            .iter()
            .filter_map(|s| all.iter().find(|v| v.display() == *s).cloned())
            .collect(),
    )
}

fn warn(ctx: &RunCtx, node: Option<&str>, message: String) {
    ctx.emit(node, EventKind::Warning { message });
}

/// Resumes a run: see the module docs. Call [`questions`] first (and
/// refuse if it has any); `opts.notes` should say where it resumes from.
pub async fn resume(
    graph: Arc<Graph>,
    opts: RunOptions,
    adapters: Adapters,
    emitter: Arc<Emitter>,
    r: Resume,
) -> RunSummary {
    let flushed = emitter.clone();
    let run = std::pin::pin!(resume_flushed(graph, opts, adapters, emitter, r));
    super::waiting::FlushWhenWaiting::new(&flushed, run).await
}

/// [`resume`], whose sinks are flushed whenever it waits.
async fn resume_flushed(
    graph: Arc<Graph>,
    opts: RunOptions,
    adapters: Adapters,
    emitter: Arc<Emitter>,
    r: Resume,
) -> RunSummary {
    let ctx = Arc::new(RunCtx::new(graph.clone(), opts, adapters, emitter));
    start(&ctx, &graph);
    let st = &r.state;
    for (name, c) in &st.captures {
        ctx.store_capture(name, V::from_json(&c.value));
    }
    let index: HashMap<&str, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut failure = st.failed.clone();
    let cancelled = !st.cancelled.is_empty();
    let mut seeds: Vec<NodeResult> = Vec::new();

    // Nodes that ended, in the order they ended.
    for id in &st.ended {
        let Some(&idx) = index.get(id.as_str()) else {
            warn(
                &ctx,
                None,
                format!("the journal names step `{id}`, which the runbook does not have"),
            );
            continue;
        };
        let node = &graph.nodes[idx];
        let mut res = NodeResult::new(idx);
        match st.completed.get(id) {
            Some(Completed::Succeeded { .. }) => {
                res.state = NodeState::Succeeded;
                res.action_done = node.action.is_some();
            }
            Some(Completed::Skipped { reason }) => {
                res.state = NodeState::Skipped;
                res.reason = reason.clone();
            }
            Some(Completed::FailedContinued { reason }) => {
                res.state = NodeState::FailedContinued;
                res.reason = reason.clone();
                res.action_done = st.action_ok.contains(id);
            }
            None => {
                res.state = NodeState::Failed;
                res.action_done = st.action_ok.contains(id);
            }
        }
        if let Some(shown) = r.state.items_ok.get(id) {
            res.items = items_of(&ctx, idx, shown).await;
            res.action_done = res.action_done || !shown.is_empty();
        }
        seeds.push(res);
    }

    // Settle what is in doubt.
    let mut undone: IndexMap<String, bool> = st
        .rollback
        .as_ref()
        .map(|rb| rb.undone.iter().map(|(n, u)| (n.clone(), u.ok)).collect())
        .unwrap_or_default();
    let mut settled: Vec<String> = Vec::new();
    let mut doubts: Vec<(String, Phase, u32)> = st
        .in_doubt_with_effect()
        .filter(|d| matches!(d.phase, Phase::Action | Phase::Undo))
        .map(|d| (d.node.clone(), d.phase, d.attempt))
        .collect();
    for n in r.partial_fan_outs() {
        if !doubts.iter().any(|d| d.0 == n) {
            doubts.push((n, Phase::Action, 0));
        }
    }
    for (id, phase, attempt) in doubts {
        if settled.contains(&id) {
            continue;
        }
        settled.push(id.clone());
        let Some(&idx) = index.get(id.as_str()) else {
            continue;
        };
        let node = &graph.nodes[idx];
        if phase == Phase::Undo {
            match r.assumed(&id) {
                Some(true) => {
                    warn(
                        &ctx,
                        Some(&id),
                        "its undo was in doubt: taken as done (--assume-done)".into(),
                    );
                    ctx.emit(
                        Some(&id),
                        EventKind::UndoFinished {
                            ok: true,
                            attempts: 0,
                            items: Vec::new(),
                            error: None,
                        },
                    );
                    undone.insert(id.clone(), true);
                }
                _ => {
                    warn(
                        &ctx,
                        Some(&id),
                        "its undo was in doubt: taken as not done (--assume-failed); it runs again"
                            .into(),
                    );
                    undone.shift_remove(&id);
                }
            }
            continue;
        }
        let done = match r.assumed(&id) {
            Some(true) => {
                warn(
                    &ctx,
                    Some(&id),
                    "in doubt (its action started and never finished): taken as done (--assume-done)"
                        .into(),
                );
                Ok(())
            }
            Some(false) => {
                warn(
                    &ctx,
                    Some(&id),
                    "in doubt (its action started and never finished): taken as failed (--assume-failed)"
                        .into(),
                );
                Err("in doubt after an interruption; taken as failed (--assume-failed)".to_owned())
            }
            None => match &node.verify {
                Some(v) => {
                    warn(
                        &ctx,
                        Some(&id),
                        "in doubt (its action started and never finished): its verify decides"
                            .into(),
                    );
                    ctx.verify(
                        Some(&id),
                        v,
                        ConditionPurpose::Verify,
                        &Bindings::default(),
                        &ctx.opts.cancel,
                    )
                    .await
                    .map_err(|e| {
                        format!("in doubt after an interruption, and its verify does not hold: {e}")
                    })
                }
                // `questions` refused this resume already.
                None => Err("in doubt after an interruption, and no answer was given".to_owned()),
            },
        };
        let mut res = NodeResult::new(idx);
        res.attempts = attempt;
        if let Some(shown) = r.state.items_ok.get(&id) {
            res.items = items_of(&ctx, idx, shown).await;
        }
        match done {
            Ok(()) => {
                if node.capture.is_some() {
                    warn(
                        &ctx,
                        Some(&id),
                        "its output was not recorded: its capture has no value".into(),
                    );
                }
                ctx.emit(
                    Some(&id),
                    EventKind::NodeSucceeded {
                        attempts: attempt,
                        elapsed_ms: 0,
                        failed_items: Vec::new(),
                    },
                );
                res.state = NodeState::Succeeded;
                res.action_done = true;
                res.items = match (res.items.take(), &node.action) {
                    // Every item taken as done: all of the list.
                    (_, Some(Action::ForEach { list, .. })) => {
                        ctx.for_items(&id, list, &Bindings::default()).await.ok()
                    }
                    (items, _) => items,
                };
            }
            Err(reason) => {
                let continued = node.continue_on_error;
                ctx.emit(
                    Some(&id),
                    EventKind::NodeFailed {
                        reason: reason.clone(),
                        attempts: attempt,
                        continued,
                    },
                );
                res.in_doubt = r.assumed(&id).is_none();
                res.action_done = res.items.as_ref().is_some_and(|i| !i.is_empty());
                res.reason = reason.clone();
                if continued {
                    res.state = NodeState::FailedContinued;
                } else {
                    res.state = NodeState::Failed;
                    if failure.is_none() {
                        failure = Some((id.clone(), reason));
                    }
                }
            }
        }
        seeds.retain(|s| s.idx != idx);
        seeds.push(res);
    }

    let rolling_back = failure.is_some() || cancelled || st.rollback.is_some();
    let g = if rolling_back {
        let mut states = vec![NodeState::NotRun; graph.nodes.len()];
        for s in &seeds {
            if let Some(x) = states.get_mut(s.idx) {
                *x = s.state;
            }
        }
        let failure = match (failure, &st.rollback) {
            (Some(f), _) => Some(f),
            (None, Some(rb)) if !cancelled => Some((String::new(), rb.reason.clone())),
            (None, _) => None,
        };
        GraphOutcome {
            results: seeds,
            states,
            cancelled: cancelled && failure.is_none(),
            failure,
        }
    } else {
        scheduler::run_graph_from(&ctx, seeds).await
    };
    conclude(&ctx, g, &undone, &st.handlers_started).await
}
