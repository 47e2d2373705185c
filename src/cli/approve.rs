//! `runbook approve` / `runbook deny`: answer a run's pending approval
//! from another terminal (no TTY needed), through the store: the run
//! directory's files (default), or the rows of a PostgreSQL store
//! (`--store postgres://...` or `store:` in the config), from any machine
//! and runs directory.

use crate::durable::approvals::{default_approver, ApprovalBox, FileBox, Give, RequestRecord, Via};
use crate::exit;
use std::path::PathBuf;
use std::sync::Arc;

/// Answer the approval a run is waiting for (without NODE: list what is
/// pending).
#[derive(clap::Args, Debug, Clone)]
pub struct DecideArgs {
    pub run_id: String,
    /// The step waiting (`step[item]` inside a `for`).
    pub node: Option<String>,
    /// Who decides (default: the user name). Not verified; an `approve
    /// ... by other` step compares it with who started the run.
    #[arg(long = "as", value_name = "NAME")]
    pub by: Option<String>,
    /// Why; recorded in the journal.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// The store the run uses: `postgres://USER@HOST:PORT/DB` (the
    /// password in $RUNBOOK_STORE_PASSWORD; default: the config's
    /// `store:`, else the runs directory's files).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The approvals the run's store keeps, or the exit code after saying why
/// not.
fn approvals(args: &DecideArgs) -> Result<Arc<dyn ApprovalBox>, i32> {
    let config = match crate::config::Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(*e));
            return Err(exit::INVALID);
        }
    };
    let url = args
        .store
        .as_deref()
        .or(config.store.as_ref().and_then(|s| s.url.as_deref()));
    if let Some(url) = url.filter(|u| *u != "files") {
        let store = crate::store::open_postgres(Some(url), config.store.as_ref()).map_err(|e| {
            eprintln!("error: {e}");
            exit::INVALID
        })?;
        let dir = super::runs::runs_dir(args.runs_dir.as_deref(), args.config.as_deref());
        return Ok(crate::store::Store::approvals(
            &store,
            &dir.join(&args.run_id),
        ));
    }
    let dir = super::runs::runs_dir(args.runs_dir.as_deref(), args.config.as_deref());
    let run_dir = dir.join(&args.run_id);
    if !run_dir.is_dir() {
        eprintln!(
            "error: no run `{}` under {} (see `runbook runs`; a run on a PostgreSQL store: --store)",
            args.run_id,
            dir.display()
        );
        return Err(exit::INVALID);
    }
    Ok(Arc::new(FileBox { run_dir }))
}

fn list(pending: Vec<RequestRecord>, run_id: &str) {
    if pending.is_empty() {
        println!("nothing is waiting for approval in run {run_id}");
    }
    for r in pending {
        // The message is a rendered template (redacted when the run
        // wrote it): shown as the console shows text, escapes escaped.
        let message = crate::report::console::terminal_safe(&r.message);
        let other = if r.by_other {
            "  (by someone other than whoever started the run)"
        } else {
            ""
        };
        println!("{}  asked {}: {message}{other}", r.key, r.asked);
    }
}

pub(super) fn execute(args: DecideArgs, approve: bool) -> i32 {
    if let Err(e) = super::runs::check_run_id(&args.run_id) {
        eprintln!("error: {e}");
        return exit::INVALID;
    }
    let inbox = match approvals(&args) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let runtime = match super::current_thread_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let Some(node) = args.node else {
        return match runtime.block_on(inbox.pending(&args.run_id)) {
            Ok(p) => {
                list(p, &args.run_id);
                exit::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        };
    };
    let by = args.by.unwrap_or_else(default_approver);
    let give = Give {
        approve,
        by: &by,
        reason: args.reason.as_deref(),
        via: Via::Command,
    };
    match runtime.block_on(inbox.decide(&args.run_id, &node, &give)) {
        Ok(record) => {
            println!("{record}");
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
