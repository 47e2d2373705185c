//! Declarations: clauses written twice, and every name a runbook declares
//! (inputs, secrets, checks and captures share one namespace; channels,
//! templates and steps have their own). Duplicates point at both places.

use super::scope::Sym;
use super::{an, Compiler, HashMap, Hasher};
use crate::ast::{self, Block};
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use crate::span::Span;

const RESERVED: &[&str] = &["run", "failure", "this", "now", "self"];

impl Compiler<'_> {
    fn duplicate(&mut self, what: &str, name: &ast::Ident, first: Span) {
        self.diags.push(
            Diag::error(
                Code::DuplicateName,
                format!("{what} `{}` is declared twice", name.node),
            )
            .label(name.span, "declared again here")
            .label(first, "first declared here")
            .help("names must be unique: rename one of them"),
        );
    }

    pub(super) fn declare(&mut self, name: &ast::Ident, sym: Sym) {
        if RESERVED.contains(&name.node.as_str()) {
            self.diags.push(
                Diag::error(
                    Code::ReservedName,
                    format!("`{}` is a reserved name", name.node),
                )
                .label(name.span, "reserved for built-in values")
                .help("choose another name"),
            );
            return;
        }
        if let Some((prev, first)) = self.globals.syms.get(&name.node) {
            let what = sym.describe();
            let first = *first;
            if prev.describe() == what {
                self.duplicate(what, name, first);
            } else {
                let prev = prev.describe();
                self.diags.push(
                    Diag::error(
                        Code::DuplicateName,
                        format!("`{}` is declared twice: as {} and as {}", name.node, an(prev), an(what)),
                    )
                    .label(name.span, format!("declared again here, as {}", an(what)))
                    .label(first, format!("first declared here, as {}", an(prev)))
                    .help("inputs, secrets, checks and captures share one set of names, so a condition knows which one it reads: rename one of them"),
                );
            }
            return;
        }
        self.globals
            .syms
            .insert(name.node.clone(), (sym, name.span));
    }

    /// Metadata, `after rollback verify` and handlers may each be written once.
    pub(super) fn repeated_clauses(&mut self, rb: &ast::Runbook) {
        for (what, first, again) in &rb.repeated_meta {
            self.diags.push(
                Diag::error(Code::RepeatedClause, format!("`{what}` is written twice"))
                    .label(*again, "written again here")
                    .label(*first, "first written here")
                    .help("keep one of them"),
            );
        }
        for a in rb.after_rollback.iter().skip(1) {
            self.diags.push(
                Diag::error(
                    Code::RepeatedClause,
                    "`after rollback verify` is written twice",
                )
                .label(a.verify.span, "written again here")
                .help("combine the conditions with `and`"),
            );
        }
        for a in rb.always.iter().skip(1) {
            self.diags.push(
                Diag::error(Code::RepeatedClause, "`always` is written twice")
                    .label(a.span, "written again here")
                    .help("put all the cleanup steps in one `always` block, in the order they run"),
            );
        }
        for (what, hs) in [
            ("on failure", &rb.on_failure),
            ("on success", &rb.on_success),
        ] {
            for h in hs.iter().skip(1) {
                self.diags.push(
                    Diag::error(Code::RepeatedClause, format!("`{what}` is written twice"))
                        .label(h.span, "written again here")
                        .help("put all its actions in one block"),
                );
            }
        }
    }

    /// Channels, templates, checks, steps and captures (inputs and secrets
    /// are declared as they are typed, in `inputs.rs`).
    pub(super) fn declarations(&mut self, rb: &ast::Runbook) {
        for ch in &rb.channels {
            if let Some(first) = self.channels.get(&ch.name.node) {
                let first = *first;
                self.duplicate("channel", &ch.name, first);
            } else {
                self.channels.insert(ch.name.node.clone(), ch.name.span);
            }
        }
        for t in &rb.templates {
            if let Some((first, _)) = self.templates.get(&t.name.node) {
                let first = *first;
                self.duplicate("template", &t.name, first);
            } else {
                self.templates
                    .insert(t.name.node.clone(), (t.name.span, t.text.clone()));
            }
        }
        for ch in &rb.checks {
            self.declare(&ch.name, Sym::Check);
        }
        // Only to find duplicates: keyed by the tree's own names, sized once
        // (a 10,000-step file grew an owned-key map a dozen times).
        let count = rb.body.iter().map(|b| b.steps().len()).sum();
        let mut steps: HashMap<&str, Span> =
            HashMap::with_capacity_and_hasher(count, Hasher::default());
        let (starts, after) = super::steps::block_indices(rb);
        for (block, &start) in rb.body.iter().zip(&starts) {
            if let Block::Parallel { steps, span } = block {
                if steps.is_empty() {
                    self.diags.push(
                        Diag::error(Code::EmptyParallel, "`parallel` block has no steps")
                            .label(*span, "empty")
                            .help("put two or more steps inside, or remove the block"),
                    );
                }
            }
            // A capture of a `for` body is one per item: only the later
            // steps of the body read it (the same item's).
            super::steps::each_step_at(block, start, None, &mut |s, at, body_end| {
                self.declare_step(&mut steps, s, at, body_end);
            });
        }
        // `always` steps come after every block, one block each (see
        // `always_to_nodes`).
        let cleanup = rb.always.first().into_iter().flat_map(|a| &a.steps);
        for (i, s) in cleanup.enumerate() {
            self.declare_step(&mut steps, s, after + i, None);
        }
    }

    fn declare_step<'a>(
        &mut self,
        steps: &mut HashMap<&'a str, Span>,
        s: &'a ast::Step,
        block: usize,
        body_end: Option<usize>,
    ) {
        if let Some(first) = steps.get(s.name.node.as_str()) {
            let first = *first;
            self.duplicate("step", &s.name, first);
        } else {
            steps.insert(&s.name.node, s.name.span);
        }
        if let Some(c) = &s.capture {
            self.declare(
                &c.name,
                Sym::Capture {
                    format: c.format,
                    block,
                    body_end,
                    step: s.name.node.clone(),
                },
            );
        }
    }
}
