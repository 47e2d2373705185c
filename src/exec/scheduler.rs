//! The DAG scheduler: starts each node when its dependencies are done,
//! at most `--parallel` at once, and stops starting nodes at the first
//! failure (other than `on_error continue`) or on cancellation.

use super::action::{fan_out, ForEach, Site};
use super::cond::V;
use super::context::{Bindings, RunCtx};
use super::unwind::CatchUnwind;
use super::waiting::FlushWhenWaiting;
use crate::clock::ms;
use crate::events::Phase;
use crate::events::{ActionStatus, ConditionPurpose, EventKind};
use crate::plan::{Action, CaptureFormat, Effect};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

/// Where a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    NotRun,
    Succeeded,
    Skipped,
    Failed,
    /// Failed with `on_error continue`: the run went on.
    FailedContinued,
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct NodeResult {
    pub idx: usize,
    pub state: NodeState,
    pub reason: String,
    pub attempts: u32,
    /// The action succeeded (so its undo applies), even if a later
    /// `capture` or `verify` failed.
    pub action_done: bool,
    /// The action timed out or was cancelled: its effect is unknown.
    pub in_doubt: bool,
    /// For a fan-out: the items that completed, in completion order.
    pub items: Option<Vec<V>>,
}

impl NodeResult {
    pub fn new(idx: usize) -> Self {
        NodeResult {
            idx,
            state: NodeState::NotRun,
            reason: String::new(),
            attempts: 0,
            action_done: false,
            in_doubt: false,
            items: None,
        }
    }
}

/// What the graph run left behind.
#[derive(Debug, Clone, Default)]
pub struct GraphOutcome {
    /// Results of the nodes that ran, in completion order.
    pub results: Vec<NodeResult>,
    pub states: Vec<NodeState>,
    /// The first failure: (step, reason).
    pub failure: Option<(String, String)>,
    pub cancelled: bool,
}

fn capture(
    ctx: &RunCtx,
    node_id: &str,
    format: CaptureFormat,
    name: &str,
    output: Option<String>,
) -> Result<(), String> {
    let v = match output {
        None if ctx.mode() == crate::events::Mode::DryRun => {
            V::Unknown(format!("`{name}` is captured from a simulated action"))
        }
        None => {
            return Err(format!(
                "capture `{name}`: the action produced no output to capture"
            ))
        }
        Some(text) => match format {
            CaptureFormat::Text => V::Str(text.trim_end_matches(['\n', '\r']).to_owned()),
            CaptureFormat::Json => match serde_json::from_str::<serde_json::Value>(text.trim()) {
                Ok(j) => V::from_json(&j),
                Err(e) => {
                    return Err(format!(
                        "capture json as `{name}`: the output is not JSON ({e})"
                    ))
                }
            },
        },
    };
    ctx.emit(
        Some(node_id),
        EventKind::CaptureStored {
            name: name.to_owned(),
            format,
            value: v.to_json(),
        },
    );
    ctx.store_capture(name, v);
    Ok(())
}

/// Runs one node: condition, action (with retries or fan-out), capture,
/// verify.
pub async fn run_node(ctx: Arc<RunCtx>, idx: usize) -> NodeResult {
    let node = &ctx.graph.nodes[idx];
    let id = node.id.as_str();
    let mut res = NodeResult::new(idx);
    let t0 = ctx.emitter.emit_with(Some(id), |_| EventKind::NodeReady {
        deps: node.deps.clone(),
    });
    let scope = Bindings::default();

    let fail = |mut res: NodeResult, reason: String| -> NodeResult {
        let cancelled = res.state == NodeState::Cancelled || ctx.opts.cancel.is_cancelled();
        let continued = node.continue_on_error && !cancelled;
        ctx.emit(
            Some(id),
            EventKind::NodeFailed {
                reason: reason.clone(),
                attempts: res.attempts,
                continued,
            },
        );
        res.state = if cancelled {
            NodeState::Cancelled
        } else if continued {
            NodeState::FailedContinued
        } else {
            NodeState::Failed
        };
        res.reason = reason;
        res
    };

    if let Some(when) = &node.when {
        let c = ctx
            .condition(Some(id), when, ConditionPurpose::When, &scope, 1)
            .await;
        match c.result {
            Ok(Some(false)) => {
                let reason = format!("`{}` is false", when.text);
                ctx.emit(
                    Some(id),
                    EventKind::NodeSkipped {
                        reason: reason.clone(),
                        values: c.values,
                    },
                );
                res.state = NodeState::Skipped;
                res.reason = reason;
                return res;
            }
            Ok(_) => {}
            Err(e) => {
                return fail(
                    res,
                    format!("condition `{}` could not be evaluated: {e}", when.text),
                )
            }
        }
    }

    let site = Site {
        node: id,
        phase: Phase::Action,
        effect: node.effect,
        timeout: node.timeout.or(ctx.settings().default_timeout),
        explicit_timeout: node.timeout.is_some(),
    };
    if let Some(gate) = &node.approval {
        let gate_site = Site {
            effect: Effect::None,
            ..site.clone()
        };
        let a = ctx.attempt(gate, &gate_site, &scope, 1).await;
        if !a.is_ok() {
            if a.status == ActionStatus::Cancelled {
                res.state = NodeState::Cancelled;
            }
            return fail(res, a.reason);
        }
    }
    let mut output = None;
    let mut failed_items = Vec::new();
    match &node.action {
        None => {}
        Some(Action::ForEach {
            var,
            list,
            parallel,
            max_failures,
            body,
        }) => {
            let items = match ctx.for_items(id, list, &scope).await {
                Ok(items) => items,
                Err(e) => return fail(res, e),
            };
            let each = ForEach {
                node_idx: idx,
                var,
                items,
                parallel: *parallel,
                max_failures: *max_failures,
                body,
            };
            let fo = fan_out(&ctx, each, &scope).await;
            res.attempts = fo.attempts;
            res.action_done = !fo.completed.is_empty();
            res.items = Some(fo.completed);
            failed_items = fo.failed;
            if !fo.ok {
                if fo.cancelled {
                    res.state = NodeState::Cancelled;
                }
                return fail(res, fo.reason);
            }
        }
        Some(action) => {
            let a = ctx.with_retry(action, &site, &scope, node.retry).await;
            res.attempts = a.attempts;
            if !a.is_ok() {
                if a.status == ActionStatus::Cancelled {
                    res.state = NodeState::Cancelled;
                }
                res.in_doubt = matches!(a.status, ActionStatus::Timeout | ActionStatus::Cancelled)
                    && node.effect >= Effect::Write;
                let attempts = if a.attempts > 1 {
                    format!(" after {} attempts", a.attempts)
                } else {
                    String::new()
                };
                return fail(res, format!("{}{attempts}", a.reason));
            }
            res.action_done = true;
            output = a.output;
        }
    }

    if let Some(cap) = &node.capture {
        if let Err(e) = capture(&ctx, id, cap.format, &cap.name, output) {
            return fail(res, e);
        }
    }

    if let Some(v) = &node.verify {
        if let Err(e) = ctx
            .verify(
                Some(id),
                v,
                ConditionPurpose::Verify,
                &scope,
                &ctx.opts.cancel,
            )
            .await
        {
            return fail(res, e);
        }
    }

    ctx.emitter
        .emit_with(Some(id), |now| EventKind::NodeSucceeded {
            attempts: res.attempts,
            elapsed_ms: ms(now - t0),
            failed_items,
        });
    res.state = NodeState::Succeeded;
    res
}

/// A node whose run panicked: failed, as the executor's fault.
fn internal_error(ctx: &RunCtx, i: usize, e: &str) -> NodeResult {
    let id = ctx
        .graph
        .nodes
        .get(i)
        .map(|n| n.id.clone())
        .unwrap_or_default();
    let reason = format!("internal error in the executor: {e}");
    ctx.emit(
        Some(&id),
        EventKind::NodeFailed {
            reason: reason.clone(),
            attempts: 0,
            continued: false,
        },
    );
    NodeResult {
        state: NodeState::Failed,
        reason,
        ..NodeResult::new(i)
    }
}

/// Runs the graph until every node has run or been skipped, or until the
/// first failure / cancellation (running nodes are then waited for; they
/// see the cancellation through their `Call::cancel`).
pub async fn run_graph(ctx: &Arc<RunCtx>) -> GraphOutcome {
    run_graph_from(ctx, Vec::new()).await
}

/// [`run_graph`] from a resumed state: the `seeds` (nodes that ended
/// before, in completion order) are not run again; their dependents start
/// as if they had just ended. Seeds come first in the outcome's `results`,
/// so a rollback undoes them in reverse completion order too.
pub async fn run_graph_from(ctx: &Arc<RunCtx>, seeds: Vec<NodeResult>) -> GraphOutcome {
    let nodes = &ctx.graph.nodes;
    let n = nodes.len();
    // foldhash, sized once: the graph's own ids, looked up once per
    // dependency and per edge (SipHash and the growing were a few percent
    // of a large dry run).
    let mut index: HashMap<&str, usize, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(n, foldhash::fast::RandomState::default());
    index.extend(nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)));
    let mut remaining = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut add_edge = |from: &str, to: usize, remaining: &mut Vec<usize>| {
        if let Some(&f) = index.get(from) {
            if f != to && !dependents[f].contains(&to) {
                dependents[f].push(to);
                remaining[to] += 1;
            }
        }
    };
    for (i, node) in nodes.iter().enumerate() {
        for d in &node.deps {
            add_edge(d, i, &mut remaining);
        }
    }
    for e in &ctx.graph.edges {
        if let Some(&to) = index.get(e.to.as_str()) {
            add_edge(&e.from, to, &mut remaining);
        }
    }
    let mut out = GraphOutcome {
        states: vec![NodeState::NotRun; n],
        ..GraphOutcome::default()
    };
    let mut seeded = vec![false; n];
    for r in seeds {
        let Some(state) = out.states.get_mut(r.idx) else {
            continue;
        };
        if seeded[r.idx] {
            continue;
        }
        seeded[r.idx] = true;
        *state = r.state;
        if matches!(
            r.state,
            NodeState::Succeeded | NodeState::Skipped | NodeState::FailedContinued
        ) {
            for &d in &dependents[r.idx] {
                remaining[d] = remaining[d].saturating_sub(1);
            }
        }
        out.results.push(r);
    }
    let mut ready: VecDeque<usize> = (0..n)
        .filter(|&i| remaining[i] == 0 && !seeded[i])
        .collect();
    let parallel = ctx.opts.parallel.max(1);
    let mut set = tokio::task::JoinSet::new();
    let mut running: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut stopping = false;
    loop {
        let r = if !stopping && set.is_empty() && (ready.len() == 1 || parallel == 1) {
            // Nothing else could run beside it (no other node is ready, and
            // only an ending node makes one ready): run it in this task.
            // A task per node was a fifth of a dry run's time.
            let Some(i) = ready.pop_front() else { break };
            let node = std::pin::pin!(run_node(ctx.clone(), i));
            let mut node = CatchUnwind::new(node);
            // A node that ends without waiting (all of a dry run's) needs
            // no watch on the cancellation token: registering with it, per
            // node, cost more than the check. Unless it is cancelled
            // already, which the scheduler must hear first.
            let first = if ctx.opts.cancel.is_cancelled() {
                Poll::Pending
            } else {
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut node).poll(cx))).await
            };
            if let Poll::Ready(r) = first {
                r.unwrap_or_else(|e| internal_error(ctx, i, &e))
            } else {
                loop {
                    tokio::select! {
                        // As when the node runs in its own task: the scheduler
                        // hears of a cancellation before the node does.
                        biased;
                        _ = ctx.opts.cancel.cancelled(), if !out.cancelled => {
                            out.cancelled = true;
                            stopping = true;
                            ctx.emit(None, EventKind::CancelRequested { stage: "first".into() });
                        }
                        r = &mut node => break r.unwrap_or_else(|e| internal_error(ctx, i, &e)),
                    }
                }
            }
        } else {
            while !stopping && set.len() < parallel {
                let Some(i) = ready.pop_front() else { break };
                let ctx = ctx.clone();
                let h = set.spawn(async move {
                    let emitter = ctx.emitter.clone();
                    let node = std::pin::pin!(run_node(ctx, i));
                    FlushWhenWaiting::new(&emitter, node).await
                });
                running.insert(h.id(), i);
            }
            if set.is_empty() {
                break;
            }
            let joined = tokio::select! {
                j = set.join_next_with_id() => j,
                _ = ctx.opts.cancel.cancelled(), if !out.cancelled => {
                    out.cancelled = true;
                    stopping = true;
                    ctx.emit(None, EventKind::CancelRequested { stage: "first".into() });
                    continue;
                }
            };
            let Some(joined) = joined else { break };
            match joined {
                Ok((tid, r)) => {
                    running.remove(&tid);
                    r
                }
                Err(e) => {
                    let i = running.remove(&e.id()).unwrap_or(0);
                    internal_error(ctx, i, &e.to_string())
                }
            }
        };
        let i = r.idx;
        out.states[i] = r.state;
        match r.state {
            NodeState::Succeeded | NodeState::Skipped | NodeState::FailedContinued => {
                for &d in &dependents[i] {
                    remaining[d] -= 1;
                    if remaining[d] == 0 {
                        ready.push_back(d);
                    }
                }
            }
            NodeState::Failed => {
                stopping = true;
                if out.failure.is_none() {
                    out.failure = Some((nodes[i].id.clone(), r.reason.clone()));
                }
            }
            NodeState::Cancelled => {
                stopping = true;
                out.cancelled = true;
            }
            NodeState::NotRun => {}
        }
        out.results.push(r);
        if ctx.emitter.failed() && out.failure.is_none() {
            stopping = true;
            out.failure = Some(("journal".into(), "the journal could not be written".into()));
        }
    }
    out
}
