//! `runbook approve` / `runbook deny`: answer a run's pending approval
//! from another terminal (no TTY needed).

use crate::durable::approvals::{decide, default_approver, pending};
use crate::exit;
use std::path::PathBuf;

/// Answer the approval a run is waiting for (without NODE: list what is
/// pending).
#[derive(clap::Args, Debug, Clone)]
pub struct DecideArgs {
    pub run_id: String,
    /// The step waiting (`step[item]` inside a `for`).
    pub node: Option<String>,
    /// Who decides (default: the user name).
    #[arg(long = "as", value_name = "NAME")]
    pub by: Option<String>,
    /// Why; recorded in the journal.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub(super) fn execute(args: DecideArgs, approve: bool) -> i32 {
    if let Err(e) = super::runs::check_run_id(&args.run_id) {
        eprintln!("error: {e}");
        return exit::INVALID;
    }
    let dir = super::runs::runs_dir(args.runs_dir.as_deref(), args.config.as_deref());
    let run_dir = dir.join(&args.run_id);
    if !run_dir.is_dir() {
        eprintln!(
            "error: no run `{}` under {} (see `runbook runs`)",
            args.run_id,
            dir.display()
        );
        return exit::INVALID;
    }
    let Some(node) = args.node else {
        let p = pending(&run_dir);
        if p.is_empty() {
            println!("nothing is waiting for approval in run {}", args.run_id);
        }
        for r in p {
            // The message is a rendered template (redacted when the run
            // wrote it): shown as the console shows text, escapes escaped.
            let message = crate::report::console::terminal_safe(&r.message);
            println!("{}  asked {}: {message}", r.key, r.asked);
        }
        return exit::SUCCESS;
    };
    let by = args.by.unwrap_or_else(default_approver);
    match decide(&run_dir, &node, approve, &by, args.reason.as_deref()) {
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
