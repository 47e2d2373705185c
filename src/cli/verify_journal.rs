//! `runbook verify-journal RUN_ID`: checks the journal's hash chain.

use crate::durable::journal::{JournalError, JOURNAL_FILE};
use crate::exit;
use std::path::PathBuf;

/// Check a run's journal (exit 0: intact; 1: the chain is broken, the
/// first broken link is shown; 3: no such run).
#[derive(clap::Args, Debug, Clone)]
pub struct VerifyJournalArgs {
    pub run_id: String,
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub(super) fn execute(args: VerifyJournalArgs) -> i32 {
    if let Err(e) = super::runs::check_run_id(&args.run_id) {
        eprintln!("error: {e}");
        return exit::INVALID;
    }
    let dir = super::runs::runs_dir(args.runs_dir.as_deref(), args.config.as_deref());
    let path = dir.join(&args.run_id).join(JOURNAL_FILE);
    match crate::durable::run_meta::check(&dir.join(&args.run_id)) {
        Ok(v) => {
            println!("{}: {v}", path.display());
            exit::SUCCESS
        }
        Err(JournalError::Io { path, source }) => {
            eprintln!("error: cannot read {}: {source}", path.display());
            exit::INVALID
        }
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            1
        }
    }
}
