//! Limits that keep what a runbook declares within what the engine shows
//! and runs sensibly: names of at most [`MAX_NAME_CHARS`] characters, and
//! verify windows of at most [`MAX_VERIFY_POLLS`] probes.

use super::Compiler;
use crate::ast::{self, Block};
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use std::time::Duration;

/// The longest name a runbook may declare, in characters. Names are shown
/// in every console line, summary row, plan, report and lock key; a name
/// of 65,536 characters once panicked the console after the step had run.
pub const MAX_NAME_CHARS: usize = 64;

/// The most probes one verify may make (`within / every`): a drill runs the
/// window on a virtual clock, and `within 30d every 1s` is 2.6 million
/// probes, each journaled.
pub const MAX_VERIFY_POLLS: u128 = 10_000;

impl Compiler<'_> {
    /// Every declared name longer than [`MAX_NAME_CHARS`]: the runbook's,
    /// inputs, secrets, channels, templates, checks, steps, captures, loop
    /// variables and notify arguments.
    pub(super) fn name_lengths(&mut self, rb: &ast::Runbook) {
        let mut names: Vec<(&str, &ast::Ident)> = vec![("runbook", &rb.name)];
        names.extend(rb.inputs.iter().map(|i| ("input", &i.name)));
        names.extend(rb.secrets.iter().map(|s| ("secret", &s.name)));
        names.extend(rb.channels.iter().map(|c| ("channel", &c.name)));
        names.extend(rb.templates.iter().map(|t| ("template", &t.name)));
        names.extend(rb.checks.iter().map(|c| ("check", &c.name)));
        let handlers = rb.on_failure.iter().chain(&rb.on_success);
        let mut actions: Vec<&ast::Action> = handlers
            .flat_map(|h| h.actions.iter().map(|a| &a.node))
            .collect();
        for step in rb.body.iter().flat_map(Block::steps) {
            names.push(("step", &step.name));
            if let Some(c) = &step.capture {
                names.push(("capture", &c.name));
            }
            actions.extend(step.action.iter().map(|a| &a.node));
            actions.extend(step.undo.iter().map(|a| &a.node));
        }
        for mut action in actions {
            if let ast::Action::For { var, body, .. } = action {
                names.push(("loop variable", var));
                action = &body.node;
            }
            if let ast::Action::Notify { args, .. } = action {
                names.extend(args.iter().map(|a| ("notify argument", &a.name)));
            }
        }
        for (what, name) in names {
            let chars = name.node.chars().count();
            if chars > MAX_NAME_CHARS {
                self.diags.push(
                    Diag::error(
                        Code::NameTooLong,
                        format!("this {what} name is {chars} characters long; the limit is {MAX_NAME_CHARS}"),
                    )
                    .label(name.span, format!("{chars} characters"))
                    .help(format!("use a name of at most {MAX_NAME_CHARS} characters (it is shown in every line the run prints); say more in a comment")),
                );
            }
        }
    }

    /// Refuses a verify that would probe more than [`MAX_VERIFY_POLLS`]
    /// times in its window.
    pub(super) fn verify_polls(&mut self, v: &ast::Verify, every: Duration) {
        if every.is_zero() {
            return; // `zero_duration` says it
        }
        let polls = v.within.node.as_millis() / every.as_millis().max(1);
        if polls > MAX_VERIFY_POLLS {
            let at = v.every.as_ref().map_or(v.within.span, |e| e.span);
            let suggested = v.within.node.as_millis().div_ceil(MAX_VERIFY_POLLS);
            let suggested = humantime::format_duration(Duration::from_secs(
                (suggested as u64).div_ceil(1000).max(1),
            ));
            self.diags.push(
                Diag::error(
                    Code::TooManyPolls,
                    format!("this verify would probe {polls} times; the limit is {MAX_VERIFY_POLLS}"),
                )
                .label(at, "probes this often")
                .label(v.within.span, "over this window")
                .help(format!("probe less often (`every {suggested}` or more for this window) or shorten the window")),
            );
        }
    }
}
