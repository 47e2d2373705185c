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
//!   either, [`questions`] says so and nothing is resumed.
//! * A `for` fan-out cut off part way is resumed **item by item**: items
//!   whose action finished are done (never run again, undone in a
//!   rollback), items that failed stay failed, items never started run now
//!   (or, if the run is rolling back, are not undone), and each item in
//!   doubt is settled by `--assume-done NODE[ITEM]` / `--assume-failed
//!   NODE[ITEM]` (`NODE` alone: every item of the step in doubt), else by
//!   the step's `verify` once the other items have run. The answer is
//!   journalled as that item's `action_finished`, so a later replay counts
//!   it like any other item.
//! * A run that had failed or been cancelled, or whose rollback had
//!   started, goes on with the rollback: undos that finished ok are not
//!   repeated, nor are the items of a fan-out's undo that finished ok; an
//!   undo (or undo item) in doubt is settled by `--assume-done` (taken as
//!   done) or `--assume-failed` (run again).
//! * Handlers (`on failure` / `on success`) that had started are not run
//!   again.
//! * An `if` decided before (`branch_taken`) is not decided again: the run
//!   goes on in the arm it took, even if its conditions read otherwise now.
//! * `always` steps that ended are not run again; the others run once the
//!   run's steps and rollback are over, as in a fresh run (one in doubt is
//!   settled as any step is).

use super::cond::V;
use super::context::{Bindings, RunCtx};
use super::rollback::Undone;
use super::scheduler::{self, FanOutSoFar, GraphOutcome, NodeResult, NodeState};
use super::{conclude, start, RunOptions, RunSummary};
use crate::adapters::Adapters;
use crate::durable::replay::{Completed, InDoubt, RunState};
use crate::events::Phase;
use crate::events::{ActionStatus, ConditionPurpose, Emitter, EventKind};
use crate::plan::{Action, Graph};
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

/// What `--assume-done` / `--assume-failed` name: a step (or its undo),
/// `NODE`, or one item of a fan-out, `NODE[ITEM]` (the item as the journal
/// shows it). `NODE` alone on a fan-out means every item of it in doubt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub node: String,
    pub item: Option<String>,
}

impl Target {
    /// `NODE` or `NODE[ITEM]`. Step names are identifiers, so the first `[`
    /// ends the node; the item runs to the final `]` (it may hold brackets).
    pub fn parse(s: &str) -> Result<Target, String> {
        let (node, item) = match s.split_once('[') {
            None => (s, None),
            Some((node, rest)) => match rest.strip_suffix(']') {
                Some(item) => (node, Some(item.to_owned())),
                None => {
                    return Err(format!(
                        "`{s}`: an item of a fan-out is written STEP[ITEM], ending in `]`"
                    ))
                }
            },
        };
        if node.is_empty() {
            return Err(format!(
                "`{s}`: name a step (STEP, or STEP[ITEM] for one item of a fan-out)"
            ));
        }
        Ok(Target {
            node: node.to_owned(),
            item,
        })
    }

    fn of(d: &InDoubt) -> Target {
        Target {
            node: d.node.clone(),
            item: d.item.clone(),
        }
    }
}

impl Target {
    /// `STEP[ITEM]` naming a step of a `for` block (a node of its own,
    /// `defrag[etcd-2]`) rather than an item of a fan-out.
    fn for_step(self, graph: &Graph) -> Target {
        let whole = self.to_string();
        if self.item.is_some() && graph.node(&whole).is_some() {
            Target {
                node: whole,
                item: None,
            }
        } else {
            self
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.item {
            None => write!(f, "{}", self.node),
            Some(item) => write!(f, "{}[{item}]", self.node),
        }
    }
}

/// A run to resume: its replayed state and the operator's answers.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub state: RunState,
    /// `--assume-done NODE` / `NODE[ITEM]`.
    pub assume_done: HashSet<Target>,
    /// `--assume-failed NODE` / `NODE[ITEM]`.
    pub assume_failed: HashSet<Target>,
}

impl Resume {
    /// Reads `--assume-*` values that name a step of a `for` block
    /// (`soak[etcd-2]`) as that step.
    pub fn name_for_steps(&mut self, graph: &Graph) {
        for set in [&mut self.assume_done, &mut self.assume_failed] {
            *set = std::mem::take(set)
                .into_iter()
                .map(|t| t.for_step(graph))
                .collect();
        }
    }

    /// A run to resume from its [`replay`](crate::durable::replay::replay)ed
    /// state, no answers given yet.
    pub fn new(state: RunState) -> Self {
        Resume {
            state,
            ..Resume::default()
        }
    }

    /// The answer for `node` (or one of its items): one naming the item
    /// wins over one naming the whole step.
    fn answer(&self, node: &str, item: Option<&str>) -> Option<bool> {
        let exact = Target {
            node: node.to_owned(),
            item: item.map(str::to_owned),
        };
        let whole = Target {
            node: node.to_owned(),
            item: None,
        };
        [exact, whole].iter().find_map(|t| {
            if self.assume_done.contains(t) {
                Some(true)
            } else if self.assume_failed.contains(t) {
                Some(false)
            } else {
                None
            }
        })
    }

    /// The run goes straight to its rollback: it had failed, been
    /// cancelled or started rolling back. A fan-out cut off then is not
    /// continued, so its `verify` cannot decide its items in doubt.
    fn rolling_back(&self) -> bool {
        let st = &self.state;
        st.failed.is_some() || !st.cancelled.is_empty() || st.rollback.is_some()
    }

    /// Items of fan-outs (actions or undos) in doubt that may have changed
    /// the world.
    fn items_in_doubt(&self) -> impl Iterator<Item = &InDoubt> {
        self.state
            .in_doubt_with_effect()
            .filter(|d| d.item.is_some() && matches!(d.phase, Phase::Action | Phase::Undo))
    }

    /// Fan-out nodes that did not end but have items done, failed or in
    /// doubt: they resume item by item.
    fn partial_fan_outs(&self) -> Vec<String> {
        let st = &self.state;
        let mut out: Vec<String> = Vec::new();
        let in_doubt = st
            .in_doubt
            .iter()
            .filter(|d| d.phase == Phase::Action && d.item.is_some())
            .map(|d| &d.node);
        for n in st
            .items_done
            .keys()
            .chain(st.items_failed.keys())
            .chain(in_doubt)
        {
            if !st.completed.contains_key(n) && !st.ended.contains(n) && !out.contains(n) {
                out.push(n.clone());
            }
        }
        out
    }
}

/// One message asking about the unanswered items in doubt of one fan-out
/// (its action or its undo).
fn ask_items(node: &str, phase: Phase, items: &[&str]) -> String {
    let listed = items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let (what, done, failed) = match phase {
        Phase::Undo => (
            format!("the undo of fan-out step `{node}` was cut off with item(s) {listed} in doubt (started, never finished)"),
            "its undo took effect: not run again",
            "it did not: it runs again",
        ),
        _ => (
            format!("fan-out step `{node}` was cut off with item(s) {listed} in doubt (started, never finished) and no `verify` to decide"),
            "it took effect",
            "it did not: the item failed",
        ),
    };
    let first = items.first().copied().unwrap_or_default();
    format!(
        "{what}; check each by hand, then resume with --assume-done '{node}[{first}]' ({done}) \
         or --assume-failed '{node}[{first}]' ({failed}), one per item, or --assume-done {node} / \
         --assume-failed {node} for all of them"
    )
}

/// What stops a resume until the operator answers, one message each: an
/// in-doubt step with no `verify`, an in-doubt undo, items of a fan-out in
/// doubt; and `--assume-*` flags that name nothing in doubt. Empty: go
/// ahead.
pub fn questions(graph: &Graph, r: &Resume) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_doubt: Vec<String> = Vec::new();
    let mut both: Vec<&Target> = r.assume_done.intersection(&r.assume_failed).collect();
    both.sort();
    for t in both {
        out.push(format!(
            "`{t}` is given both --assume-done and --assume-failed"
        ));
    }
    for d in r.state.in_doubt_with_effect() {
        if d.item.is_some()
            || in_doubt.contains(&d.node)
            || d.phase == Phase::Check
            || d.phase == Phase::Handler
            || d.phase == Phase::Status
        {
            continue;
        }
        in_doubt.push(d.node.clone());
        if r.answer(&d.node, None).is_some() {
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
                if graph.node(&d.node).is_some_and(|n| n.verify.is_some()) {
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
    // Unanswered items in doubt, by fan-out and phase, in journal order.
    let mut unanswered: Vec<((String, Phase), Vec<&str>)> = Vec::new();
    for d in r.items_in_doubt() {
        if !in_doubt.contains(&d.node) {
            in_doubt.push(d.node.clone());
        }
        if r.answer(&d.node, d.item.as_deref()).is_some() {
            continue;
        }
        let has_verify = graph.node(&d.node).is_some_and(|n| n.verify.is_some());
        if d.phase == Phase::Action && has_verify && !r.rolling_back() {
            continue;
        }
        let key = (d.node.clone(), d.phase);
        let item = d.item.as_deref().unwrap_or_default();
        match unanswered.iter_mut().find(|(k, _)| *k == key) {
            Some((_, items)) => items.push(item),
            None => unanswered.push((key, vec![item])),
        }
    }
    for ((node, phase), items) in &unanswered {
        out.push(ask_items(node, *phase, items));
    }
    let mut assumed: Vec<&Target> = r.assume_done.iter().chain(&r.assume_failed).collect();
    assumed.sort();
    assumed.dedup();
    for t in assumed {
        let known = match &t.item {
            None => in_doubt.contains(&t.node),
            Some(_) => r.items_in_doubt().any(|d| Target::of(d) == *t),
        };
        if known {
            continue;
        }
        let items: Vec<String> = r
            .items_in_doubt()
            .filter(|d| d.node == t.node)
            .filter_map(|d| d.item.as_ref().map(|i| format!("`{}[{i}]`", d.node)))
            .collect();
        let hint = if items.is_empty() {
            String::new()
        } else {
            format!(" (in doubt in this step: {})", items.join(", "))
        };
        out.push(format!(
            "`{t}` is not in doubt in this run{hint}: --assume-done / --assume-failed apply only \
             to steps, undos and fan-out items whose action started and never finished"
        ));
    }
    out
}

/// Journals the answer for an item of a fan-out in doubt (a warning that
/// says why, then the item's `action_finished` with the answer's status),
/// so that a later replay counts the item like any other that finished.
pub(crate) fn settle_item(ctx: &RunCtx, d: &InDoubt, status: ActionStatus, why: &str) {
    let item = d.item.as_deref().unwrap_or_default();
    let what = match d.phase {
        Phase::Undo => "the undo of item",
        _ => "item",
    };
    warn(
        ctx,
        Some(&d.node),
        format!("{what} `{item}` was in doubt (started, never finished): {why}"),
    );
    ctx.emit(
        Some(&d.node),
        EventKind::ActionFinished {
            adapter: d.adapter.clone().into(),
            phase: d.phase,
            attempt: d.attempt,
            item: d.item.clone(),
            status,
            exit: None,
            http_status: None,
            elapsed_ms: 0,
            output: None,
            error: (status != ActionStatus::Ok).then(|| why.to_owned()),
        },
    );
}

/// The items of fan-out `idx` named by `shown` (their display form), in
/// that order, as the list evaluates now. An item the list no longer has
/// (or a list that no longer evaluates) keeps its journalled form, so
/// that what was done is still undone.
async fn items_of(ctx: &Arc<RunCtx>, idx: usize, shown: &[String]) -> Option<Vec<V>> {
    let node = ctx.graph.nodes.get(idx)?;
    let Some(Action::ForEach { list, .. }) = &node.action else {
        return None;
    };
    let all = ctx
        .for_items(&node.id, list, &Bindings::default())
        .await
        .unwrap_or_default();
    Some(scheduler::values_of(&all, shown))
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
    // The branches decided before: the run goes on in the arms taken.
    ctx.branches
        .lock()
        .await
        .extend(st.branches.iter().map(|(b, a)| (*b, *a)));
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
                if let Some(item) = node.item.filter(|_| !node.continue_on_error) {
                    ctx.note_failed_item(item);
                }
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

    // Attempts of ladders abandoned before: not tried again; their steps
    // undone then are not undone again. One whose undo was cut off is
    // undone now (its undos that finished are not run again).
    for a in &st.abandoned {
        let at = crate::plan::AttemptRef {
            ladder: a.ladder,
            attempt: a.attempt,
        };
        super::ladder::mark_abandoned(&ctx, at);
        if a.clean.is_none() {
            let failed = seeds.iter().rposition(|s| {
                graph.nodes[s.idx].attempt == Some(at) && s.state == NodeState::FailedContinued
            });
            if let Some(f) = failed {
                let reason = seeds[f].reason.clone();
                let done = Undone {
                    nodes: a.undone.clone(),
                    items: IndexMap::new(),
                };
                let clean =
                    super::ladder::abandon(&ctx, f, &reason, &mut seeds, &done, false).await;
                if !clean && failure.is_none() {
                    let node = &graph.nodes[seeds[f].idx];
                    failure = Some((
                        node.id.clone(),
                        super::ladder::not_undone_reason(&ctx, node, &reason),
                    ));
                }
                continue;
            }
        }
        for s in seeds.iter_mut() {
            if graph.nodes[s.idx].attempt == Some(at) {
                let id = &graph.nodes[s.idx].id;
                s.undone_in_attempt = Some(a.undone.get(id).copied().unwrap_or(true));
            }
        }
    }

    // Settle what is in doubt.
    let mut undone = Undone {
        nodes: st
            .rollback
            .as_ref()
            .map(|rb| rb.undone.iter().map(|(n, u)| (n.clone(), u.ok)).collect())
            .unwrap_or_default(),
        items: st.undo_items_ok.clone(),
    };
    let mut settled: Vec<String> = Vec::new();
    let doubts: Vec<(String, Phase, u32)> = st
        .in_doubt_with_effect()
        .filter(|d| d.item.is_none() && matches!(d.phase, Phase::Action | Phase::Undo))
        .map(|d| (d.node.clone(), d.phase, d.attempt))
        .collect();
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
            match r.answer(&id, None) {
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
                    undone.nodes.insert(id.clone(), true);
                }
                _ => {
                    warn(
                        &ctx,
                        Some(&id),
                        "its undo was in doubt: taken as not done (--assume-failed); it runs again"
                            .into(),
                    );
                    undone.nodes.shift_remove(&id);
                }
            }
            continue;
        }
        let done = match r.answer(&id, None) {
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
                res.in_doubt = r.answer(&id, None).is_none();
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

    // Items of fan-out undos in doubt: an answer settles each; taken as
    // done, it is not undone again.
    for d in r.items_in_doubt().filter(|d| d.phase == Phase::Undo) {
        let Some(item) = d.item.as_deref() else {
            continue;
        };
        if r.answer(&d.node, Some(item)) == Some(true) {
            settle_item(&ctx, d, ActionStatus::Ok, "taken as done (--assume-done)");
            let items = undone.items.entry(d.node.clone()).or_default();
            if !items.iter().any(|i| i == item) {
                items.push(item.to_owned());
            }
        } else {
            settle_item(
                &ctx,
                d,
                ActionStatus::Failed,
                "taken as not done (--assume-failed); it runs again",
            );
        }
    }

    // Fan-outs cut off part way: each item settled on its own.
    let mut partial: HashMap<usize, FanOutSoFar> = HashMap::new();
    let rolling_back = failure.is_some() || cancelled || st.rollback.is_some();
    for id in r.partial_fan_outs() {
        let Some(&idx) = index.get(id.as_str()) else {
            continue;
        };
        let so_far = fan_out_so_far(&ctx, &r, &id);
        if !rolling_back {
            partial.insert(idx, so_far);
            continue;
        }
        // The run rolls back: the fan-out is not continued. What was done
        // is undone; what is still in doubt is not.
        let reason = format!(
            "cut off by an interruption with {} item(s) done; the run rolls back",
            so_far.done.len()
        );
        let mut res = NodeResult::new(idx);
        res.attempts = so_far.attempts;
        res.items = items_of(&ctx, idx, &so_far.done).await;
        res.action_done = !so_far.done.is_empty();
        res.in_doubt_items = so_far
            .in_doubt
            .iter()
            .filter_map(|d| d.item.clone())
            .collect();
        res.state = NodeState::Failed;
        res.reason = reason.clone();
        ctx.emit(
            Some(&id),
            EventKind::NodeFailed {
                reason,
                attempts: so_far.attempts,
                continued: false,
            },
        );
        seeds.push(res);
    }

    // `always` steps that ended are not run again; they are not the run's
    // steps (never undone, never what the scheduler starts from).
    let (cleaned, main): (Vec<NodeResult>, Vec<NodeResult>) =
        seeds.into_iter().partition(|s| graph.nodes[s.idx].cleanup);
    let seeds = main;
    let cleanup_done: Vec<String> = cleaned
        .iter()
        .map(|s| graph.nodes[s.idx].id.clone())
        .collect();
    // The run's status updates, counted from the resume.
    super::status::start_run_updates(&ctx);
    let mut g = if rolling_back {
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
        scheduler::run_graph_from(&ctx, seeds, partial).await
    };
    for s in &cleaned {
        if let Some(x) = g.states.get_mut(s.idx) {
            *x = s.state;
        }
    }
    conclude(&ctx, g, &undone, &st.handlers_started, &cleanup_done).await
}

/// What fan-out `id` had done when it was cut off, with the answers for its
/// items in doubt journalled: taken as done, as failed, or (no answer) left
/// for its `verify` to decide. An item in doubt that changes nothing runs
/// again.
fn fan_out_so_far(ctx: &RunCtx, r: &Resume, id: &str) -> FanOutSoFar {
    let st = &r.state;
    let mut so_far = FanOutSoFar {
        done: st.items_done.get(id).cloned().unwrap_or_default(),
        failed: st
            .items_failed
            .get(id)
            .map(|f| f.iter().map(|(i, why)| (i.clone(), why.clone())).collect())
            .unwrap_or_default(),
        ..FanOutSoFar::default()
    };
    let doubts = st
        .in_doubt
        .iter()
        .filter(|d| d.node == id && d.phase == Phase::Action);
    for d in doubts {
        let Some(item) = d.item.as_deref() else {
            continue;
        };
        if !d.has_effect() {
            settle_item(
                ctx,
                d,
                ActionStatus::Cancelled,
                "it changes nothing, so it runs again",
            );
            continue;
        }
        match r.answer(id, Some(item)) {
            Some(true) => {
                settle_item(ctx, d, ActionStatus::Ok, "taken as done (--assume-done)");
                so_far.done.push(item.to_owned());
            }
            Some(false) => {
                let why = "in doubt after an interruption; taken as failed (--assume-failed)";
                settle_item(ctx, d, ActionStatus::Failed, why);
                so_far.failed.push((item.to_owned(), why.to_owned()));
            }
            None => so_far.in_doubt.push(d.clone()),
        }
    }
    // Attempts as a fan-out counts them: one per item that ended.
    so_far.attempts = u32::try_from(so_far.done.len() + so_far.failed.len()).unwrap_or(u32::MAX);
    so_far
}
