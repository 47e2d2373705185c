//! The process exit codes of every command, in one place (documented in
//! `docs/decision-log.md` and `docs/cli.md`). No imports of other crate
//! modules: everything from `events` to `cli` can use it.

/// Every step succeeded (or was skipped, or failed with `on_error continue`).
pub const SUCCESS: i32 = 0;
/// Internal error: the journal could not be created, the runtime failed.
pub const INTERNAL: i32 = 1;
/// A usage error (unknown flag...), as clap reports it.
pub const USAGE: i32 = 2;
/// The runbook does not compile, or the inputs, secrets or config are
/// invalid: nothing was run. (Shared with every command.)
pub const INVALID: i32 = 3;
/// A step failed and the rollback completed cleanly.
pub const ROLLED_BACK: i32 = 4;
/// A step failed and the rollback is incomplete (an undo failed, or the
/// `after rollback verify` did not pass): humans needed.
pub const ROLLBACK_INCOMPLETE: i32 = 5;
/// A step failed after a keep point (`keep`) had completed: the mitigation
/// up to it is kept, what completed after it was rolled back cleanly.
pub const KEPT: i32 = 6;
/// A step failed before any change had completed: nothing was undone
/// because nothing had changed.
pub const NOTHING_CHANGED: i32 = 7;
/// A step escalated (`escalate "reason"`): the run stopped there and
/// nothing was undone: a human decides what comes next.
pub const NEEDS_HUMAN: i32 = 8;
/// Cancelled (Ctrl-C / SIGTERM) — whatever completed was rolled back.
pub const CANCELLED: i32 = 130;

/// Every exit code with its meaning, for help texts and the docs test.
pub const ALL: &[(i32, &str)] = &[
    (SUCCESS, "success"),
    (
        INTERNAL,
        "internal error (journal not writable, runtime failure)",
    ),
    (
        INVALID,
        "invalid runbook, inputs, secrets or config: nothing was run",
    ),
    (ROLLED_BACK, "a step failed; rolled back cleanly"),
    (
        ROLLBACK_INCOMPLETE,
        "a step failed; rollback incomplete: humans needed",
    ),
    (
        KEPT,
        "a step failed after a keep point: mitigation kept, later steps rolled back",
    ),
    (
        NOTHING_CHANGED,
        "a step failed before anything changed: stopped, nothing to roll back",
    ),
    (
        NEEDS_HUMAN,
        "a step escalated: stopped there, nothing undone, a human decides",
    ),
    (CANCELLED, "cancelled (Ctrl-C / SIGTERM)"),
];

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<i32> = super::ALL.iter().map(|(c, _)| *c).collect();
        codes.push(super::USAGE);
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), super::ALL.len() + 1);
    }
}
