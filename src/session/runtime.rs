//! The tokio runtime a session runs on, and the journal's group commit
//! hooked into it.

use crate::durable::{
    group_commit::GroupCommit,
    journal::{Durability, JournalWriter},
};

/// The tokio runtime of a run: current-thread (paused clock for a dry run
/// probing nothing).
///
/// Live runs need no second thread: a run waits on processes, sockets,
/// timers and signals, all driven by this thread's I/O and time drivers;
/// the steps of a `parallel` block still run at once (their processes and
/// requests are in flight together; `tests/it/exec_cli.rs` checks that two
/// overlap); a terminal approval reads stdin on its own detached thread
/// (`adapters::approve`) and `runbook approve` answers through files polled
/// on a timer (`durable::approvals`). On a multi-thread runtime a step's
/// task, its pipe readers and the child's exit woke each other across
/// worker threads: about 10 % of a `run "true"` step
/// (`docs/performance.md`). The journal's fsyncs now hold up the other
/// steps of a `parallel` block too while they last (they held up only the
/// emitting step's worker before); their processes keep running meanwhile.
pub fn runtime(virtual_time: bool) -> std::io::Result<tokio::runtime::Runtime> {
    runtime_with(virtual_time, None)
}

/// [`runtime`], flushing the journal's deferred fsync (`group`) whenever
/// its thread is about to block: a change's outcome is on disk before the
/// run waits for anything (`durable::group_commit`).
pub fn runtime_with(
    virtual_time: bool,
    group: Option<GroupCommit>,
) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_all();
    if virtual_time {
        b.start_paused(true);
    }
    if let Some(g) = group {
        b.on_thread_park(move || g.flush());
    }
    b.build()
}

/// Turns on the journal's group commit for a write-ahead (live) journal.
pub fn group_commit(journal: &mut JournalWriter) -> std::io::Result<Option<GroupCommit>> {
    match journal.durability() {
        Durability::WriteAhead => journal.group_commit().map(Some),
        Durability::Buffered => Ok(None),
    }
}
