//! `runbook verify-journal RUN_ID`: checks the journal's hash chain.

use crate::durable::journal::{JournalError, JOURNAL_FILE};
use crate::exit;
use std::path::PathBuf;

/// Check a run's journal (exit 0: intact; 1: the chain is broken, the
/// first broken link is shown; 3: no such run).
#[derive(clap::Args, Debug, Clone)]
pub struct VerifyJournalArgs {
    #[arg(required_unless_present = "journal")]
    pub run_id: Option<String>,
    /// Check this journal file instead (e.g. one `runbook export` wrote):
    /// its chain only, there is no run.json beside it to check.
    #[arg(long, value_name = "FILE", conflicts_with = "run_id")]
    pub journal: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check the run's rows in a PostgreSQL store instead
    /// (`postgres://USER@HOST:PORT/DB`; see docs/team.md).
    #[arg(long, value_name = "URL", conflicts_with_all = ["runs_dir", "journal"])]
    pub store: Option<String>,
}

pub(super) fn execute(args: VerifyJournalArgs) -> i32 {
    let run_id = match (&args.run_id, &args.journal) {
        (_, Some(file)) => return verify_file(file),
        (Some(id), None) => id,
        (None, None) => {
            eprintln!("error: give a RUN_ID or --journal FILE");
            return exit::USAGE;
        }
    };
    if let Err(e) = super::runs::check_run_id(run_id) {
        eprintln!("error: {e}");
        return exit::INVALID;
    }
    if args.store.is_some() {
        let store = match super::queue::StoreArgs::named(&args.store, &args.config) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let run = match store.stored_run(run_id) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::INVALID;
            }
        };
        let place = std::path::PathBuf::from(format!("run {run_id} in the store {}", store.url()));
        return report(&place, run.check());
    }
    let dir = super::runs::runs_dir(args.runs_dir.as_deref(), args.config.as_deref());
    let path = dir.join(run_id).join(JOURNAL_FILE);
    report(&path, crate::durable::run_meta::check(&dir.join(run_id)))
}

/// `--journal FILE`: the chain of a journal file on its own.
fn verify_file(path: &std::path::Path) -> i32 {
    report(path, crate::durable::journal::verify_chain(path))
}

/// Prints what the check of the journal at `path` found; its exit code.
fn report<T: std::fmt::Display>(path: &std::path::Path, checked: Result<T, JournalError>) -> i32 {
    match checked {
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
