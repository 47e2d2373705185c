//! Steps to nodes: conditions type-checked; retry, timeout, verify and
//! `consecutive` validated; `undo` only where there is an effect;
//! `capture` only on `run`/`http`. Edges: every node of a block depends on
//! every node of the previous block (a `parallel { }` is one block).

use super::scope::Scope;
use super::Compiler;
use crate::ast::{self, Block, EffectMark};
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use crate::plan::{self, Effect};
use crate::span::Spanned;
use std::time::Duration;

impl Compiler<'_> {
    pub(super) fn steps_to_nodes(
        &mut self,
        rb: &ast::Runbook,
    ) -> (
        Vec<plan::Node>,
        Vec<plan::Edge>,
        Vec<plan::Branch>,
        Vec<plan::Ladder>,
    ) {
        let count = rb.body.iter().map(|b| b.steps().len()).sum();
        // A node is several hundred bytes: growing the vector would copy them.
        let mut lay = Lay {
            nodes: Vec::with_capacity(count),
            edges: Vec::with_capacity(count),
            branches: Vec::new(),
            ladders: Vec::new(),
        };
        // The last nodes of the last block that had steps: every node of
        // the next block depends on them (all of a `parallel`; the last of
        // each arm of an `if`).
        let mut prev: Vec<usize> = Vec::new();
        let mut group = 0;
        let (starts, _) = block_indices(rb);
        for (block, &start) in rb.body.iter().zip(&starts) {
            if let Block::For(_) | Block::If { .. } | Block::Try { .. } = block {
                prev = self.nested_to_nodes(block, start, prev, &mut lay, None);
                continue;
            }
            let Lay { nodes, edges, .. } = &mut lay;
            let g = match block {
                Block::Parallel { .. } => {
                    group += 1;
                    Some(group - 1)
                }
                _ => None,
            };
            let first = nodes.len();
            for s in block.steps() {
                let mut node = self.step(s, start, false);
                node.group = g;
                node.deps = prev.iter().map(|&p| nodes[p].id.clone()).collect();
                for d in &node.deps {
                    edges.push(plan::Edge {
                        from: d.clone(),
                        to: node.id.clone(),
                    });
                }
                nodes.push(node);
            }
            if nodes.len() > first {
                prev = (first..nodes.len()).collect();
            }
        }
        let Lay {
            mut nodes,
            mut edges,
            branches,
            ladders,
        } = lay;
        self.always_to_nodes(rb, &mut nodes, &mut edges);
        if !nodes.iter().any(|n| !n.cleanup)
            && !self
                .diags
                .iter()
                .any(|d| d.code == Code::EmptyParallel.as_str())
        {
            self.diags.push(
                Diag::error(
                    Code::NoSteps,
                    format!("runbook `{}` has no steps", rb.name.node),
                )
                .label(rb.name.span, "nothing to run")
                .help("add a `step NAME { ... }` with an action such as `run \"...\"`"),
            );
        }
        (nodes, edges, branches, ladders)
    }

    /// A step, `if` or `for` written at scope index `start` after the
    /// nodes `prev`, in the arm `arm` (if any). Returns the nodes the next
    /// block depends on (`prev` again if it had none).
    pub(super) fn nested_to_nodes(
        &mut self,
        block: &Block,
        start: usize,
        prev: Vec<usize>,
        lay: &mut Lay,
        arm: Option<plan::BranchRef>,
    ) -> Vec<usize> {
        let last = match block {
            Block::Step(s) => {
                let mut node = self.step(s, start, false);
                node.branch = arm;
                let mut before = prev.clone();
                push_after(node, &mut before, &mut lay.nodes, &mut lay.edges);
                before
            }
            Block::If { arms, span } => self.if_to_nodes(arms, *span, start, &prev, lay, arm),
            Block::For(f) => self.for_to_nodes(f, start, &prev, lay, arm),
            Block::Try {
                steps,
                attempts,
                span,
            } => {
                let first = lay.nodes.len();
                let last = self.try_to_nodes(
                    steps,
                    attempts,
                    *span,
                    start,
                    &prev,
                    &mut lay.nodes,
                    &mut lay.edges,
                    &mut lay.ladders,
                );
                for n in &mut lay.nodes[first..] {
                    n.branch = arm;
                }
                last
            }
            // Not nested (`syntax::build` reports it); a top-level one is
            // laid out by `steps_to_nodes`.
            Block::Parallel { .. } => Vec::new(),
        };
        if last.is_empty() {
            prev
        } else {
            last
        }
    }

    /// An `if` block: its arms' conditions (read where the block starts),
    /// and each arm's body one block after another, the first after
    /// `prev`; in the arm `parent` if nested in one. Returns the last
    /// nodes of each arm that has steps.
    fn if_to_nodes(
        &mut self,
        arms: &[ast::IfArm],
        span: crate::span::Span,
        start: usize,
        prev: &[usize],
        lay: &mut Lay,
        parent: Option<plan::BranchRef>,
    ) -> Vec<usize> {
        let b = lay.branches.len();
        // Reserved first: the branches nested in the arms come after.
        lay.branches.push(plan::Branch {
            arms: Vec::new(),
            span,
            parent,
            item: None,
        });
        let scope = Scope {
            block: Some(start),
            checks: true,
            captures: true,
            no_secrets: Some("conditions are logged with every value they read"),
            loop_var: self.for_var.clone(),
            ..Scope::default()
        };
        let mut plan_arms = Vec::new();
        let mut last = Vec::new();
        let mut at = start;
        for (k, arm) in arms.iter().enumerate() {
            let condition = arm
                .condition
                .as_ref()
                .map(|c| self.lowering().condition(c, &scope));
            let first = lay.nodes.len();
            let mut before: Vec<usize> = prev.to_vec();
            let here = Some(plan::BranchRef { branch: b, arm: k });
            for block in &arm.body {
                before = self.nested_to_nodes(block, at, before, lay, here);
                at += width(block);
            }
            if lay.nodes.len() > first {
                last.extend(before);
            }
            plan_arms.push(plan::BranchArm {
                condition,
                nodes: lay.nodes[first..].iter().map(|n| n.id.clone()).collect(),
            });
        }
        lay.branches[b].arms = plan_arms;
        last
    }

    /// The steps of `always { ... }`: nodes after the run's own, marked
    /// `cleanup`, each depending on the one before (they run one after
    /// another). Each is a block of its own, after every block of the run:
    /// it reads every capture, and those of earlier cleanup steps.
    fn always_to_nodes(
        &mut self,
        rb: &ast::Runbook,
        nodes: &mut Vec<plan::Node>,
        edges: &mut Vec<plan::Edge>,
    ) {
        let Some(always) = rb.always.first() else {
            return;
        };
        let mut prev: Option<String> = None;
        let base = block_indices(rb).1;
        for (i, s) in always.steps.iter().enumerate() {
            let mut node = self.step(s, base + i, true);
            if let Some(p) = prev.take() {
                edges.push(plan::Edge {
                    from: p.clone(),
                    to: node.id.clone(),
                });
                node.deps = vec![p];
            }
            prev = Some(node.id.clone());
            nodes.push(node);
        }
    }

    pub(super) fn step(&mut self, s: &ast::Step, block: usize, cleanup: bool) -> plan::Node {
        for (what, first, again) in &s.repeated {
            let what = if *what == "action" { "an action" } else { what };
            self.diags.push(
                Diag::error(
                    Code::RepeatedClause,
                    format!("step `{}` has {what} written twice", s.name.node),
                )
                .label(*again, "again here")
                .label(*first, "first here")
                .help(if what == "an action" {
                    "a step does one thing: split it into two steps"
                } else {
                    "keep one of them"
                }),
            );
        }
        // Commands, URLs, headers and bodies may read secrets: they are
        // sent, and masked wherever they are shown. Conditions, messages and
        // fan-out lists set their own `no_secrets`.
        let base = Scope {
            block: Some(block),
            checks: true,
            captures: true,
            cleanup,
            no_secrets: None,
            loop_var: self.for_var.clone(),
            ..Scope::default()
        };
        if cleanup {
            self.cleanup_clauses(s);
        }
        let when = s.when.as_ref().map(|w| {
            let scope = Scope {
                no_secrets: Some("conditions are logged with every value they read"),
                ..base.clone()
            };
            Box::new(self.lowering().condition(w, &scope))
        });
        let approval = s.approval.as_ref().map(|a| self.action(a, &base));
        let action = s.action.as_ref().map(|a| self.action(a, &base));
        let status_updates = self.status_updates(&s.status_updates, &base);
        let effect = s
            .action
            .as_ref()
            .map(|a| effect_of(&a.node))
            .unwrap_or(Effect::None);

        if s.action.is_none() && s.verify.is_none() && s.repeat.is_none() {
            self.diags.push(
                Diag::error(
                    Code::EmptyStep,
                    format!("step `{}` does nothing", s.name.node),
                )
                .label(s.name.span, "no action and no verify")
                .help("add an action (`run`, `http`, `notify`, `approve`, `wait`) or a `verify`"),
            );
        }

        let retry = match &s.retry {
            None => plan::RetryPolicy::NONE,
            Some(r) => {
                if (r.attempts.node == 0 || r.attempts.node > 100)
                    && !self.invalid_literals.contains(&r.attempts.span)
                {
                    self.diags.push(
                        Diag::error(
                            Code::InvalidRetry,
                            format!("`retry {}` is out of range", r.attempts.node),
                        )
                        .label(r.attempts.span, "retries must be between 1 and 100")
                        .help("`retry 3 backoff 5s exponential` tries up to 4 times"),
                    );
                }
                plan::RetryPolicy {
                    retries: r.attempts.node.min(100) as u32,
                    backoff: r
                        .backoff
                        .as_ref()
                        .map(|b| b.node)
                        .unwrap_or(DEFAULT_BACKOFF),
                    exponential: r.exponential,
                    jitter: r.jitter,
                }
            }
        };
        if let Some(t) = &s.timeout {
            self.positive(t, "a timeout");
        }
        let verify = s.verify.as_ref().map(|v| {
            let scope = Scope {
                own_capture: s.capture.as_ref().map(|c| c.name.node.clone()),
                no_secrets: Some("conditions are logged with every value they read"),
                ..base.clone()
            };
            self.verify(v, &scope, false)
        });
        let repeat = s.repeat.as_ref().map(|l| {
            let scope = Scope {
                own_capture: s.capture.as_ref().map(|c| c.name.node.clone()),
                no_secrets: Some("conditions are logged with every value they read"),
                ..base.clone()
            };
            super::repeat::check(self, s, l, &scope)
        });
        let undo = s.undo.as_ref().map(|u| {
            let effect_here = effect;
            if matches!(effect_here, Effect::None | Effect::Read | Effect::Notify) {
                let (what, help) = match effect_here {
                    Effect::Read => ("only reads", "remove the `undo`; if the action does change something, drop `readonly`"),
                    Effect::Notify => ("only sends a message", "remove the `undo`: a sent message cannot be unsent; send a correction from a later step or from `on failure`"),
                    _ => ("changes nothing", "remove the `undo`: only steps that change something are rolled back"),
                };
                self.diags.push(
                    Diag::error(
                        Code::UndoWithoutEffect,
                        format!("step `{}` has an `undo`, but it {what}", s.name.node),
                    )
                    .label(u.span, "nothing to undo")
                    .help(help),
                );
            }
            let scope = Scope {
                own_capture: s.capture.as_ref().map(|c| c.name.node.clone()),
                own_step: true,
                ..base.clone()
            };
            self.action(u, &scope)
        });
        let undo_when = super::undo_when::check(self, s, &base);
        let undo_none = s
            .undo_none
            .as_ref()
            .map(|u| self.undo_none(&s.name.node, u, effect));
        let capture = s.capture.as_ref().map(|c| {
            let ok = matches!(
                s.action.as_ref().map(|a| &a.node),
                Some(ast::Action::Run { .. }) | Some(ast::Action::Http(_))
            );
            if !ok {
                self.diags.push(
                    Diag::error(
                        Code::CaptureWithoutOutput,
                        format!(
                            "step `{}` captures output, but its action has none",
                            s.name.node
                        ),
                    )
                    .label(c.span, "nothing to capture")
                    .help("`capture` reads the output of a `run` command or an `http` response"),
                );
            }
            plan::CaptureSpec {
                format: match c.format {
                    ast::CaptureFormat::Json => plan::CaptureFormat::Json,
                    ast::CaptureFormat::Text => plan::CaptureFormat::Text,
                },
                name: c.name.node.clone(),
            }
        });
        let continue_on_error = match &s.continue_on_error {
            // A cleanup step's failure never stops the other cleanup steps.
            _ if cleanup => true,
            Some(v) => v.node,
            None => effect == Effect::Notify,
        };
        plan::Node {
            id: s.name.node.clone(),
            group: None,
            deps: Vec::new(),
            when,
            approval: approval.map(Box::new),
            action,
            effect,
            retry,
            timeout: s.timeout.as_ref().map(|t| t.node),
            verify: verify.map(Box::new),
            repeat: repeat.map(Box::new),
            undo: undo.map(Box::new),
            undo_none,
            undo_when,
            undo_timeout: s.undo_timeout.as_ref().map(|t| {
                self.positive(t, "an undo timeout");
                t.node
            }),
            capture: capture.map(Box::new),
            continue_on_error,
            keep: s.keep.is_some(),
            cleanup,
            branch: None,
            item: None,
            attempt: None,
            status_updates,
            span: s.span,
        }
    }

    /// `undo` and `on_error` mean nothing in an `always` step: nothing
    /// rolls it back (the rollback is over when it runs), and its failure
    /// never stops the cleanup steps after it.
    fn cleanup_clauses(&mut self, s: &ast::Step) {
        if let Some(u) = &s.undo {
            self.diags.push(
                Diag::error(
                    Code::ClauseInAlways,
                    format!("step `{}` in `always` has an `undo`", s.name.node),
                )
                .label(u.span, "never run")
                .help("`always` steps run after the rollback, so nothing undoes them: move the step before `always` if it must be undone, or remove the `undo`"),
            );
        }
        if let Some(c) = &s.continue_on_error {
            self.diags.push(
                Diag::error(
                    Code::ClauseInAlways,
                    format!("step `{}` in `always` has `on_error`", s.name.node),
                )
                .label(c.span, "has no effect here")
                .help("a failed `always` step is reported and the next one runs anyway: remove `on_error`"),
            );
        }
    }

    pub(super) fn positive(&mut self, d: &Spanned<Duration>, what: &str) {
        if d.node.is_zero() && !self.invalid_literals.contains(&d.span) {
            self.diags.push(
                Diag::error(
                    Code::ZeroDuration,
                    format!("{what} of zero never lets anything finish"),
                )
                .label(d.span, "zero")
                .help("give a positive duration such as `30s`"),
            );
        }
    }

    pub(super) fn verify(
        &mut self,
        v: &ast::Verify,
        scope: &Scope,
        after_rollback: bool,
    ) -> plan::VerifyPolicy {
        let condition = self.lowering().condition(&v.condition, scope);
        self.positive(&v.within, "a verify window");
        let every = match &v.every {
            Some(e) => {
                self.positive(e, "a verify interval");
                if e.node > v.within.node && !v.within.node.is_zero() {
                    self.diags.push(
                        Diag::error(
                            Code::VerifyInterval,
                            "the verify interval is longer than its window",
                        )
                        .label(e.span, "checks every this long")
                        .label(v.within.span, "but gives up after this")
                        .help(
                            "use an interval shorter than the window, e.g. `within 10m every 30s`",
                        ),
                    );
                }
                e.node
            }
            None if after_rollback => (v.within.node / 10)
                .max(Duration::from_secs(1))
                .min(v.within.node),
            None => v.within.node,
        };
        self.verify_polls(v, every);
        let consecutive = match &v.consecutive {
            Some(c) if c.node == 0 && !self.invalid_literals.contains(&c.span) => {
                self.diags.push(
                    Diag::error(
                        Code::InvalidConsecutive,
                        "`consecutive 0` can never be met",
                    )
                    .label(c.span, "must be at least 1")
                    .help("`consecutive N` asks for N passing probes in a row, e.g. `consecutive 3`; leave it out for 1"),
                );
                1
            }
            Some(c) => {
                // Probes happen at 0, every, 2*every, ... up to the window.
                let probes = if every.is_zero() {
                    u64::MAX
                } else {
                    (v.within.node.as_millis() / every.as_millis()).min(u64::MAX as u128 - 1) as u64
                        + 1
                };
                if c.node > probes && !v.within.node.is_zero() {
                    self.diags.push(
                        Diag::error(
                            Code::VerifyUnreachable,
                            format!("`consecutive {}` can never be met: the window allows only {probes} probes", c.node),
                        )
                        .label(c.span, format!("needs {} passes in a row", c.node))
                        .label(v.within.span, format!("{probes} probes fit in this window"))
                        .help("widen the window, probe more often, or ask for fewer passes in a row"),
                    );
                }
                c.node.min(u32::MAX as u64) as u32
            }
            None => 1,
        };
        plan::VerifyPolicy {
            condition,
            within: v.within.node,
            every,
            consecutive,
        }
    }
}

/// Adds `node` after the nodes `before` (its dependencies, with their
/// edges), and makes it what the next node of its sequence waits for.
/// Returns its id.
pub(super) fn push_after(
    mut node: plan::Node,
    before: &mut Vec<usize>,
    nodes: &mut Vec<plan::Node>,
    edges: &mut Vec<plan::Edge>,
) -> String {
    node.deps = before.iter().map(|&p| nodes[p].id.clone()).collect();
    for d in &node.deps {
        edges.push(plan::Edge {
            from: d.clone(),
            to: node.id.clone(),
        });
    }
    *before = vec![nodes.len()];
    let id = node.id.clone();
    nodes.push(node);
    id
}

const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

pub(super) fn effect_of(a: &ast::Action) -> Effect {
    match a {
        ast::Action::Run { effect, .. } => match effect.map(|e| e.node) {
            Some(EffectMark::Readonly) => Effect::Read,
            Some(EffectMark::Irreversible) => Effect::Irreversible,
            None => Effect::Write,
        },
        ast::Action::Http(req) => match req.effect.map(|e| e.node) {
            Some(EffectMark::Readonly) => Effect::Read,
            Some(EffectMark::Irreversible) => Effect::Irreversible,
            None if matches!(req.method.node.as_str(), "GET" | "HEAD") => Effect::Read,
            None => Effect::Write,
        },
        ast::Action::Notify { .. } => Effect::Notify,
        ast::Action::Approve { .. } | ast::Action::Wait(_) | ast::Action::Escalate(_) => {
            Effect::None
        }
        ast::Action::For { body, .. } => effect_of(&body.node),
    }
}

/// The scope index (`Scope::block`) where each block starts: a capture
/// is visible to the steps with a higher index. A step is one index, a
/// `parallel` block one for all its steps, each step of an `if` one of its
/// own (an arm's steps run one after another: see [`step_index`]). Also
/// the first index after the run's blocks (where the `always` steps
/// start).
pub(super) fn block_indices(rb: &ast::Runbook) -> (Vec<usize>, usize) {
    let mut next = 0;
    let mut out = Vec::with_capacity(rb.body.len());
    for block in &rb.body {
        out.push(next);
        next += width(block);
    }
    (out, next)
}

/// How many scope indices a block takes: one for a step or a `parallel`
/// block (its steps run at once), one per step of a ladder, of an `if`
/// (its arms' blocks one after another, arm after arm) and of a `for`
/// body (at least one).
pub(super) fn width(block: &Block) -> usize {
    match block {
        Block::If { arms, .. } => arms.iter().flat_map(|a| &a.body).map(width).sum(),
        Block::Try { steps, .. } => steps.len(),
        Block::For(f) => f.body.iter().map(width).sum::<usize>().max(1),
        Block::Step(_) | Block::Parallel { .. } => 1,
    }
}

/// Calls `f` on every step of `block` (which starts at scope index
/// `start`), nested ones included, with its scope index and, in a `for`
/// body, the index where the body ends.
pub(super) fn each_step_at<'a>(
    block: &'a Block,
    start: usize,
    body_end: Option<usize>,
    f: &mut dyn FnMut(&'a ast::Step, usize, Option<usize>),
) {
    match block {
        Block::Step(s) => f(s, start, body_end),
        Block::Parallel { steps, .. } => steps.iter().for_each(|s| f(s, start, body_end)),
        Block::Try { steps, .. } => {
            for (k, s) in steps.iter().enumerate() {
                f(s, start + k, body_end);
            }
        }
        Block::If { arms, .. } => {
            let mut at = start;
            for b in arms.iter().flat_map(|a| &a.body) {
                each_step_at(b, at, body_end, f);
                at += width(b);
            }
        }
        Block::For(fb) => {
            let end = Some(start + width(block));
            let mut at = start;
            for b in &fb.body {
                each_step_at(b, at, end, f);
                at += width(b);
            }
        }
    }
}

/// The nodes, edges, branches and ladders laid out so far.
pub(super) struct Lay {
    pub nodes: Vec<plan::Node>,
    pub edges: Vec<plan::Edge>,
    pub branches: Vec<plan::Branch>,
    pub ladders: Vec<plan::Ladder>,
}
