//! `runbook export RUN_ID`: a run's journal from the PostgreSQL store,
//! written as the `journal.jsonl` file it mirrors (docs/team.md).

use super::queue::StoreArgs;
use crate::exit;
use std::io::Write;
use std::path::PathBuf;

/// Write a run's journal kept in the PostgreSQL store as JSONL (the same
/// bytes as its journal.jsonl); its hash chain is checked and reported.
#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    pub run_id: String,
    /// The file to write (default: standard output); it must not exist.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub(super) fn execute(args: ExportArgs) -> i32 {
    if let Err(e) = super::runs::check_run_id(&args.run_id) {
        eprintln!("error: {e}");
        return exit::INVALID;
    }
    let (_, store) = match args.store.open() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let bytes = match store.export(&args.run_id) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let written = match &args.out {
        Some(path) => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => std::io::stdout()
            .lock()
            .write_all(&bytes)
            .map_err(|e| format!("cannot write the journal: {e}")),
    };
    if let Err(e) = written {
        eprintln!("error: {e}");
        return exit::INTERNAL;
    }
    match crate::durable::journal::verify_bytes(&bytes) {
        Ok(v) => {
            eprintln!("run {}: {v}", args.run_id);
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: run {}: {e}", args.run_id);
            1
        }
    }
}
