//! Group commit: one fsync for a change's outcome and whatever comes next.
//!
//! A step that changes something needs two records on disk: its
//! `action_started` before the command runs, and its outcome before anything
//! else happens. In a run of such steps the outcome of one is followed at
//! once by the next one's `node_ready` and `action_started`, which is synced
//! anyway; fsyncing the outcome on its own as well doubles the cost of every
//! step (an fsync is 0.1–0.3 ms on common disks, a `run "true"` step 0.8 ms).
//!
//! So the [`JournalWriter`](super::journal::JournalWriter), once
//! [`group_commit`](super::journal::JournalWriter::group_commit) is called,
//! writes such an outcome at once but *defers* its fsync to the first of:
//!
//! * the next event that is not a `node_ready` (the next action's start,
//!   which is synced anyway, a condition, a check, an approval asked, a
//!   warning...): the writer fsyncs after writing it;
//! * the moment the thread that runs the engine has nothing left to do and
//!   is about to block (waiting for a process, a timer, an answer):
//!   [`GroupCommit::flush`], which the CLI installs as tokio's
//!   `on_thread_park` hook.
//!
//! Either way the outcome is on disk before another action starts and
//! before the engine waits for anything: nothing happens in the world
//! between a change's end and its outcome reaching the disk but the
//! engine's own bookkeeping (microseconds). A power cut in that window
//! leaves the step "in doubt" for `runbook resume`, exactly as a power cut
//! while its command ran would.
//!
//! A writer without [`group_commit`](super::journal::JournalWriter::group_commit)
//! (library users, tests that drive it by hand) fsyncs every outcome at
//! once, since nothing would flush it before a wait.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// A handle on a journal's deferred fsync; cheap to clone, `Send + Sync`
/// (tokio's park hook needs both).
#[derive(Debug, Clone)]
pub struct GroupCommit(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    /// A second handle on the journal file: fsync applies to the file,
    /// whichever descriptor asks.
    file: File,
    /// An outcome is written and not yet synced.
    pending: AtomicBool,
    /// fsyncs done by [`GroupCommit::flush`] (tests, benchmarks).
    syncs: AtomicU64,
    /// An fsync done by `flush` failed (the first failure's message): the
    /// writer refuses every event after it, which stops the run (a journal
    /// that may have lost a record cannot vouch for what follows). Read at
    /// every event: a `OnceLock` costs one atomic load.
    failure: OnceLock<String>,
}

impl GroupCommit {
    pub(super) fn new(file: File) -> Self {
        GroupCommit(Arc::new(Shared {
            file,
            pending: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
            failure: OnceLock::new(),
        }))
    }

    /// fsyncs the deferred outcome, if there is one. Call it before the
    /// engine's thread blocks: `Builder::on_thread_park(move || g.flush())`.
    pub fn flush(&self) {
        if !self.0.pending.swap(false, Ordering::AcqRel) {
            return;
        }
        match self.0.file.sync_data() {
            Ok(()) => {
                self.0.syncs.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let _ = self.0.failure.set(e.to_string());
            }
        }
    }

    /// Whether an outcome waits for its fsync.
    pub fn is_pending(&self) -> bool {
        self.0.pending.load(Ordering::Acquire)
    }

    /// How many fsyncs [`flush`](Self::flush) did.
    pub fn syncs(&self) -> u64 {
        self.0.syncs.load(Ordering::Relaxed)
    }

    pub(super) fn defer(&self) {
        self.0.pending.store(true, Ordering::Release);
    }

    /// The writer is about to fsync everything written: nothing is left for
    /// `flush`.
    pub(super) fn covered(&self) {
        self.0.pending.store(false, Ordering::Release);
    }

    /// A `flush` that failed, as an error for the writer's next event.
    pub(super) fn failure(&self) -> Option<io::Error> {
        self.0.failure.get().map(|m| {
            io::Error::other(format!(
                "an fsync of the journal failed earlier ({m}); the record may be incomplete"
            ))
        })
    }
}
