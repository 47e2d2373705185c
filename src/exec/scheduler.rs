//! The DAG scheduler: starts each node when its dependencies are done,
//! at most `--parallel` at once, and stops starting nodes at the first
//! failure (other than `on_error continue`) or on cancellation.

use super::action::{fan_out, FanOut, ForEach, Site};
use super::cond::V;
use super::context::{Bindings, RunCtx};
use super::unwind::CatchUnwind;
use super::waiting::FlushWhenWaiting;
use crate::clock::ms;
use crate::durable::replay::InDoubt;
use crate::events::Phase;
use crate::events::{ActionStatus, ConditionPurpose, EventKind};
use crate::plan::{Action, CaptureFormat, Effect, ItemRef};
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
    /// For a fan-out resumed after an interruption: items whose effect is
    /// unknown (started, never finished, not decided): never undone, and
    /// a rollback that leaves them is not complete.
    pub in_doubt_items: Vec<String>,
    /// A step of a ladder's attempt that was abandoned: its undo then ran
    /// and succeeded (`Some(true)`; nothing was left to undo counts too)
    /// or failed (`Some(false)`). The run's rollback leaves it alone.
    pub undone_in_attempt: Option<bool>,
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
            in_doubt_items: Vec::new(),
            undone_in_attempt: None,
        }
    }
}

/// What a `for` fan-out had done when the run was cut off (items in their
/// journalled, display form): `runbook resume` runs only the items never
/// started. See `exec::resume`.
#[derive(Debug, Clone, Default)]
pub struct FanOutSoFar {
    /// Items whose action finished ok (or taken as done), in that order.
    pub done: Vec<String>,
    /// Items that failed (or taken as failed), with why.
    pub failed: Vec<(String, String)>,
    /// Items in doubt with no answer: the step's `verify` decides, once the
    /// other items have run.
    pub in_doubt: Vec<InDoubt>,
    /// Attempts already made (counted in the step's `attempts`).
    pub attempts: u32,
}

/// The values of `list` whose display form is in `shown`, in the order of
/// `shown`; an item the list does not have keeps its shown form.
pub fn values_of(list: &[V], shown: &[String]) -> Vec<V> {
    shown
        .iter()
        .map(|s| {
            list.iter()
                .find(|v| v.display() == *s)
                .cloned()
                .unwrap_or_else(|| V::Str(s.clone()))
        })
        .collect()
}

impl FanOutSoFar {
    /// Splits the fan-out's `list` (as it evaluates now) into the items
    /// never started (to run now), what the fan-out starts from (items done
    /// and failed), and the items in doubt with their values.
    fn split(&self, list: Vec<V>) -> (Vec<V>, FanOut, Vec<(InDoubt, V)>) {
        let doubt: Vec<String> = self
            .in_doubt
            .iter()
            .filter_map(|d| d.item.clone())
            .collect();
        let prior = FanOut {
            completed: values_of(&list, &self.done),
            failed: self
                .failed
                .iter()
                .map(|(item, why)| format!("{item}: {why}"))
                .collect(),
            attempts: self.attempts,
            ..FanOut::default()
        };
        let pending = self
            .in_doubt
            .iter()
            .cloned()
            .zip(values_of(&list, &doubt))
            .collect();
        let started = |v: &V| {
            let shown = v.display();
            self.done.contains(&shown)
                || self.failed.iter().any(|(i, _)| *i == shown)
                || doubt.contains(&shown)
        };
        let todo = list.into_iter().filter(|v| !started(v)).collect();
        (todo, prior, pending)
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

pub(super) fn capture(
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
/// verify. `so_far`: a fan-out resumed after an interruption, whose
/// condition and approval were passed before it: only its items never
/// started run, then its `verify` (which decides its items in doubt).
pub async fn run_node(ctx: Arc<RunCtx>, idx: usize, so_far: Option<FanOutSoFar>) -> NodeResult {
    run_node_in(ctx, idx, so_far, Bindings::default()).await
}

/// [`run_node`] with names bound (`run.outcome` for an `always` step),
/// and the step's status updates sent while it is in progress.
async fn run_node_in(
    ctx: Arc<RunCtx>,
    idx: usize,
    so_far: Option<FanOutSoFar>,
    scope: Bindings,
) -> NodeResult {
    let graph = ctx.graph.clone();
    let node = &graph.nodes[idx];
    if node.status_updates.is_empty() {
        return run_node_work(ctx, idx, so_far, scope).await;
    }
    let work = run_node_work(ctx.clone(), idx, so_far, scope.clone());
    super::status::beside(&ctx, &node.id, &node.status_updates, &scope, work).await
}

async fn run_node_work(
    ctx: Arc<RunCtx>,
    idx: usize,
    so_far: Option<FanOutSoFar>,
    scope: Bindings,
) -> NodeResult {
    let node = &ctx.graph.nodes[idx];
    let id = node.id.as_str();
    let mut res = NodeResult::new(idx);
    let scope = item_scope(&ctx, node, scope);
    let t0 = ctx.emitter.emit_with(Some(id), |_| EventKind::NodeReady {
        deps: node.deps.clone(),
    });
    let fail = |mut res: NodeResult, reason: String| -> NodeResult {
        let cancelled =
            res.state == NodeState::Cancelled || ctx.cancel_for(Phase::Action).is_cancelled();
        // A failed attempt of a ladder (not its last) is abandoned and the
        // run goes on with the next (`exec::ladder`); an `escalate` in it
        // stops the run as anywhere.
        let continued = !cancelled
            && (node.continue_on_error
                || node.item.is_some_and(|i| ctx.tolerate_item_failure(i))
                || (super::ladder::abandons(&ctx, node)
                    && !reason.starts_with(super::action::ESCALATED)));
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

    let resumed = so_far.is_some();
    // A graph compiled without the value of a `for` block's list input
    // (`runbook check`) is never run: a run binds its inputs first.
    if let Some(b) = node
        .item
        .and_then(|i| ctx.graph.for_blocks.get(i.block))
        .filter(|b| b.pending)
    {
        let input = b.input.clone().unwrap_or_default();
        return fail(
            res,
            format!("the items of input `{input}` were not bound before the run started"),
        );
    }
    if let Some(item) = node.item.filter(|i| ctx.item_failed(*i)) {
        let label = ctx
            .graph
            .for_blocks
            .get(item.block)
            .map(|b| b.item_label(item.index))
            .unwrap_or_default();
        let reason = format!("an earlier step of item `{label}` failed");
        return skipped(&ctx, id, res, reason);
    }
    // A node in a nested arm runs if every arm around it is taken: the
    // outermost decided first (an inner block is decided only once its
    // own arm is taken).
    let chain = node
        .branch
        .filter(|_| !resumed)
        .map(|b| ctx.graph.arm_chain(b))
        .unwrap_or_default();
    for b in chain {
        match ctx.branch_taken(id, b.branch).await {
            Ok(Some(arm)) if arm == b.arm => {}
            Ok(taken) => {
                let reason = match taken.and_then(|a| {
                    ctx.graph
                        .branches
                        .get(b.branch)
                        .and_then(|br| br.arms.get(a))
                        .map(|x| x.label(a))
                }) {
                    Some(label) => format!("the branch took `{label}`"),
                    None => "no arm of the branch holds".to_owned(),
                };
                return skipped(&ctx, id, res, reason);
            }
            Err(e) => return fail(res, e),
        }
    }
    // After the arms: a ladder in an arm not taken is skipped as the
    // arm's steps are, not as attempts after one that succeeded.
    if let Some(reason) = node
        .attempt
        .and_then(|a| super::ladder::skip_reason(&ctx, a))
    {
        return skipped(&ctx, id, res, reason);
    }
    if let Some(when) = node.when.as_ref().filter(|_| !resumed) {
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
    };
    if let Some(gate) = node.approval.as_ref().filter(|_| !resumed) {
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
    let mut pending: Vec<(InDoubt, V)> = Vec::new();
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
                Err(e) => {
                    res.in_doubt_items = so_far
                        .iter()
                        .flat_map(|s| s.in_doubt.iter().filter_map(|d| d.item.clone()))
                        .collect();
                    return fail(res, e);
                }
            };
            let (items, prior) = match &so_far {
                None => (items, FanOut::default()),
                Some(s) => {
                    let (todo, prior, doubt) = s.split(items);
                    pending = doubt;
                    (todo, prior)
                }
            };
            let each = ForEach {
                node_idx: idx,
                var,
                items,
                parallel: *parallel,
                max_failures: *max_failures,
                body,
                prior,
            };
            let fo = fan_out(&ctx, each, &scope).await;
            res.attempts = fo.attempts;
            res.action_done = !fo.completed.is_empty();
            res.items = Some(fo.completed);
            failed_items = fo.failed;
            res.in_doubt_items = pending.iter().map(|(_, v)| v.display()).collect();
            if !fo.ok {
                if fo.cancelled {
                    res.state = NodeState::Cancelled;
                }
                return fail(res, fo.reason);
            }
        }
        Some(action) if node.repeat.is_some() => {
            if let Err(e) = super::repeat::run(&ctx, node, action, &site, &scope, &mut res).await {
                return fail(res, e);
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

    // A loop captured each round's output itself.
    if let Some(cap) = node.capture.as_ref().filter(|_| node.repeat.is_none()) {
        if let Err(e) = capture(&ctx, id, cap.format, &stored_as(&cap.name, &scope), output) {
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
                ctx.cancel_for(Phase::Action),
            )
            .await
        {
            return fail(res, e);
        }
    } else if !pending.is_empty() {
        // `resume` asks about items in doubt of a step without a verify.
        return fail(
            res,
            "items in doubt after an interruption, and no answer was given".into(),
        );
    }
    // The step's verify holds with every other item done: the items that
    // were in doubt took effect.
    for (d, v) in pending {
        super::resume::settle_item(
            &ctx,
            &d,
            ActionStatus::Ok,
            "its step's verify holds: taken as done",
        );
        res.items.get_or_insert_with(Vec::new).push(v);
    }
    res.in_doubt_items.clear();

    ctx.emitter
        .emit_with(Some(id), |now| EventKind::NodeSucceeded {
            attempts: res.attempts,
            elapsed_ms: ms(now - t0),
            failed_items,
        });
    res.state = NodeState::Succeeded;
    res
}

/// `res` skipped for `reason` (journalled as `node_skipped`).
fn skipped(ctx: &RunCtx, id: &str, mut res: NodeResult, reason: String) -> NodeResult {
    ctx.emit(
        Some(id),
        EventKind::NodeSkipped {
            reason: reason.clone(),
            values: Vec::new(),
        },
    );
    res.state = NodeState::Skipped;
    res.reason = reason;
    res
}

/// `scope` with a `for` step's item bound: its loop variable, and its
/// own captures (for its action, verify and undo alike).
pub(super) fn item_scope(ctx: &RunCtx, node: &crate::plan::Node, scope: Bindings) -> Bindings {
    bind_item(ctx, node.item, scope)
}

/// `scope` with item `item` of a `for` block bound, if any.
fn bind_item(ctx: &RunCtx, item: Option<ItemRef>, mut scope: Bindings) -> Bindings {
    if let Some(item) = item {
        if let Some(b) = ctx.graph.for_blocks.get(item.block) {
            if let Some(v) = b.items.get(item.index) {
                scope.body_var = Some((b.var.clone(), V::from_value(v)));
            }
            scope.item = Some(b.item_label(item.index));
        }
    }
    scope
}

/// The name a capture is stored under: `NAME[ITEM]` in a `for` block.
pub(super) fn stored_as(name: &str, scope: &Bindings) -> String {
    match &scope.item {
        Some(i) => super::context::item_key(name, i),
        None => name.to_owned(),
    }
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
    run_graph_from(ctx, Vec::new(), HashMap::new()).await
}

/// [`run_graph`] from a resumed state: the `seeds` (nodes that ended
/// before, in completion order) are not run again; their dependents start
/// as if they had just ended. Seeds come first in the outcome's `results`,
/// so a rollback undoes them in reverse completion order too. The fan-outs
/// in `partial` (cut off part way) resume from where they were.
pub async fn run_graph_from(
    ctx: &Arc<RunCtx>,
    seeds: Vec<NodeResult>,
    mut partial: HashMap<usize, FanOutSoFar>,
) -> GraphOutcome {
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
    // The `always` steps are not the run's: `run_cleanup` runs them after.
    let mut ready: VecDeque<usize> = (0..n)
        .filter(|&i| remaining[i] == 0 && !seeded[i] && !nodes[i].cleanup)
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
            let node = std::pin::pin!(run_node(ctx.clone(), i, partial.remove(&i)));
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
                let so_far = partial.remove(&i);
                let h = set.spawn(async move {
                    let emitter = ctx.emitter.clone();
                    let node = std::pin::pin!(run_node(ctx, i, so_far));
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
        if r.state == NodeState::FailedContinued && super::ladder::abandons(ctx, &nodes[i]) {
            // A failed attempt of a ladder: undone, then the next starts
            // (its dependents are released), unless the undo failed.
            let reason = r.reason.clone();
            out.results.push(r);
            let at = out.results.len() - 1;
            let undo = super::rollback::Undone::default();
            let clean =
                super::ladder::abandon(ctx, at, &reason, &mut out.results, &undo, true).await;
            if !clean {
                stopping = true;
                if out.failure.is_none() {
                    out.failure = Some((
                        nodes[i].id.clone(),
                        super::ladder::not_undone_reason(ctx, &nodes[i], &reason),
                    ));
                }
            } else if ctx.opts.cancel.is_cancelled() {
                stopping = true;
                if !out.cancelled {
                    out.cancelled = true;
                    ctx.emit(
                        None,
                        EventKind::CancelRequested {
                            stage: "first".into(),
                        },
                    );
                }
            } else {
                for &d in &dependents[i] {
                    remaining[d] -= 1;
                    if remaining[d] == 0 {
                        ready.push_back(d);
                    }
                }
            }
            if ctx.emitter.failed() && out.failure.is_none() {
                stopping = true;
                out.failure = Some(("journal".into(), "the journal could not be written".into()));
            }
            continue;
        }
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

/// Runs the `always` steps, one after another in the order written, once
/// the run's steps and any rollback are over; `done` (ended before a
/// resume) are not run again. A failed one is reported (`node_failed`,
/// continued) and the next runs anyway. They read `run.outcome` and
/// `run.rollback` through `scope`. Returns each one run, with where it
/// ended.
pub(crate) async fn run_cleanup(
    ctx: &Arc<RunCtx>,
    done: &[String],
    scope: &Bindings,
) -> Vec<(usize, NodeState)> {
    let mut out = Vec::new();
    let todo = ctx
        .graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.cleanup && !done.contains(&n.id))
        .map(|(i, _)| i);
    for i in todo {
        ctx.cleanup
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let node = std::pin::pin!(run_node_in(ctx.clone(), i, None, scope.clone()));
        let r = CatchUnwind::new(node)
            .await
            .unwrap_or_else(|e| internal_error(ctx, i, &e));
        out.push((i, r.state));
    }
    out
}

impl RunCtx {
    /// The arm branch `b` takes: decided once, by the first of its nodes
    /// to be reached (`node`), from its arms' conditions in order (the
    /// first that holds; `else` if none does; no arm without an `else`),
    /// and journalled as `branch_taken`; the same answer after that, and
    /// after a resume.
    pub(crate) async fn branch_taken(&self, node: &str, b: usize) -> Result<Option<usize>, String> {
        let mut taken = self.branches.lock().await;
        if let Some(arm) = taken.get(&b) {
            return Ok(*arm);
        }
        let Some(branch) = self.graph.branches.get(b) else {
            return Err(format!("branch {b} is not in the graph"));
        };
        let mut arm = None;
        // In a `for` body: the conditions read the item's variable and
        // captures.
        let scope = bind_item(self, branch.item, Bindings::default());
        for (k, a) in branch.arms.iter().enumerate() {
            let Some(c) = &a.condition else {
                arm = Some(k);
                break;
            };
            let r = self
                .condition(Some(node), c, ConditionPurpose::Branch, &scope, 1)
                .await;
            match r.result {
                Ok(Some(true)) => {
                    arm = Some(k);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "the branch condition `{}` could not be evaluated: {e}",
                        c.text
                    ))
                }
            }
        }
        let skipped = branch
            .arms
            .iter()
            .enumerate()
            .filter(|(k, _)| Some(*k) != arm)
            .flat_map(|(_, a)| a.nodes.iter().cloned())
            .collect();
        self.emit(
            Some(node),
            EventKind::BranchTaken {
                branch: b,
                arm,
                taken: arm
                    .and_then(|k| branch.arms.get(k).map(|a| a.label(k)))
                    .unwrap_or_else(|| "none".into()),
                item: branch.item.and_then(|i| {
                    self.graph
                        .for_blocks
                        .get(i.block)
                        .map(|f| f.item_label(i.index))
                }),
                skipped,
            },
        );
        taken.insert(b, arm);
        Ok(arm)
    }
}
