//! `runbook worker`: the arguments; the worker itself is
//! [`crate::session::worker`] (docs/team.md).

use super::queue::StoreArgs;
use crate::session::worker::Worker;
use std::path::PathBuf;

/// Run queued run requests (several workers may share one store).
#[derive(clap::Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Runs at once, at most.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: u64,
    /// Only run requests queued with this tag (repeatable; default: every
    /// request).
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Where this worker's run directories are created (default: from the
    /// config, else .runbook/runs).
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Take over a started run once its owner has been silent this long
    /// (default: the store's `grace:`, else its lease; never shorter than
    /// the lease). See docs/team.md.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub grace: Option<std::time::Duration>,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub(super) fn execute(args: WorkerArgs) -> i32 {
    let (config, store) = match args.store.open() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let store = match args.grace.map(|g| store.clone().with_grace(g)) {
        None => store,
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return crate::exit::INVALID;
        }
    };
    let runtime = match super::current_thread_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let worker = Worker {
        name: format!("{}:{}", crate::durable::sys::hostname(), std::process::id()),
        concurrency: usize::try_from(args.concurrency).unwrap_or(1),
        tags: args.tag,
        runs_dir: args.runs_dir.unwrap_or_else(|| config.runs_dir()),
        config: args.store.config,
        store,
        notice: super::print_notice,
    };
    match runtime.block_on(worker.work()) {
        Ok(()) => crate::exit::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            crate::exit::INTERNAL
        }
    }
}
