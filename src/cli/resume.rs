//! `runbook resume RUN_ID`: picks up an interrupted run from its journal
//! (see `exec::resume` and docs/operations.md).

use super::run::OutputFormat;
use crate::session::{ResumeRequest, Session};
use std::path::PathBuf;

/// Resume an interrupted run: completed steps (and fan-out items) are not
/// run again; a step or item in doubt is decided by its verify or by
/// --assume-done / --assume-failed.
#[derive(clap::Args, Debug, Clone)]
pub struct ResumeArgs {
    pub run_id: String,
    /// Resume although the runbook file changed since the run started.
    #[arg(long)]
    pub force: bool,
    /// A step (or undo) in doubt took effect; STEP[ITEM]: one item of a
    /// fan-out, STEP alone: all its items in doubt (repeatable).
    #[arg(long = "assume-done", value_name = "STEP[ITEM]")]
    pub assume_done: Vec<String>,
    /// A step (or undo) in doubt did not take effect; STEP[ITEM]: one item
    /// of a fan-out, STEP alone: all its items in doubt (repeatable).
    #[arg(long = "assume-failed", value_name = "STEP[ITEM]")]
    pub assume_failed: Vec<String>,
    /// The runbook file, if it moved (default: the one the run started).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Where run locks live (default: the config's `locks_dir`, else
    /// $RUNBOOK_STATE_DIR/locks; see docs/operations.md).
    #[arg(long, value_name = "DIR")]
    pub locks_dir: Option<PathBuf>,
    /// Take over the lock if the process holding it is dead.
    #[arg(long)]
    pub break_lock: bool,
    /// Where run locks are shared: `postgres://USER@HOST:PORT/DB` (the
    /// password in $RUNBOOK_STORE_PASSWORD), or `files` (default: the
    /// config's `store:`, else the files; see docs/team.md).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// With a PostgreSQL store: take the run over only once its owner has
    /// been silent this long (default: the store's `grace:`, else its
    /// lease; never shorter than the lease). See docs/team.md.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub grace: Option<std::time::Duration>,
    #[arg(long, value_enum, default_value = "human")]
    pub output: OutputFormat,
}

pub(super) fn execute(args: ResumeArgs) -> i32 {
    let output = args.output;
    let request = ResumeRequest {
        run_id: args.run_id,
        runs_dir: args.runs_dir,
        locks_dir: args.locks_dir,
        file: args.file,
        force: args.force,
        assume_done: args.assume_done,
        assume_failed: args.assume_failed,
        break_lock: args.break_lock,
        store: args.store,
        reporters: vec![output.sink()],
        terminal: true,
        grace: args.grace,
        takeover: None,
    };
    let session = match Session::resume(request, &mut super::print_notice) {
        Ok(s) => s,
        Err(e) => return super::print_error(e),
    };
    eprintln!(
        "resuming run {} after seq {}",
        session.run_id(),
        session.resumed_after().unwrap_or(0)
    );
    super::run::finish(session.run(), output)
}
