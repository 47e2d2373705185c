//! Safe under real outages: the machinery that lets a run survive
//! a crash, be resumed without repeating a destructive step, keep two
//! people from running the same thing at once, and be approved from
//! another terminal.
//!
//! * [`journal`]: the write-ahead, hash-chained `journal.jsonl` (a
//!   [`Sink`](crate::events::Sink)), its crash-tolerant reader and the chain
//!   verifier (`runbook verify-journal`).
//! * [`group_commit`]: the journal's deferred fsync of a change's outcome,
//!   flushed with the next event or when the engine's thread goes idle.
//! * [`lock`]: the run lock (`<locks dir>/<key>.lock`, flock-backed, one
//!   locks directory per machine: [`lock::locks_dir`]), stale-lock
//!   detection and `--break-lock`.
//! * [`run_meta`]: `run.json`, whose SHA-256 the journal's first line
//!   records; [`run_meta::check`] refuses one that does not match.
//! * [`approvals`]: `runbook approve` / `deny` from another terminal, and
//!   the [`InboxApprover`](approvals::InboxApprover) that waits for them.
//! * [`replay`]: the one fold of a run's events into its state
//!   ([`RunState`](replay::RunState)), for `runbook runs` and `runbook resume`.
//! * [`runs`]: `runbook runs` (every run and its state).
//!
//! Every module's docs end with a "Wiring" section: the few lines the
//! executor and the CLI need. In order, for `runbook run` (live):
//!
//! 1. `lock::acquire(&lock::locks_dir(--locks-dir, config.locks_dir)?,
//!    lock_key, run_id, --break-lock)`; keep the guard for the whole run;
//!    log `guard.broke_message()` as a `warning`.
//! 2. `journal::JournalWriter::create(run_dir, Durability::for_mode(mode))`
//!    as the emitter's critical sink; for a live run, `writer.group_commit()`
//!    and its `flush` as the runtime's `on_thread_park` hook
//!    (`session::runtime_with`). Before the first event:
//!    `writer.record_run_json(&run_meta::write(run_dir, &bytes)?)`.
//! 3. Wrap the approver in `approvals::InboxApprover::new(run_dir, approver)`.
//!
//! For `runbook resume RUN_ID`: `run_meta::check(run_dir)` (the chain and
//! `run.json`), the same lock, `JournalWriter::open_append` (which hands
//! back the events read), `replay::replay(&events)`, and an emitter
//! numbering from `writer.last_seq() + 1`.
//!
//! Layout of a runs directory:
//!
//! ```text
//! <state dir>/locks/<key>.lock           lock::acquire (lock::locks_dir)
//! .runbook/runs/
//!   <run id>/journal.jsonl               journal::JournalWriter
//!   <run id>/run.json                    run_meta::write
//!   <run id>/approvals/<node>.request.json   approvals::request
//!   <run id>/approvals/<node>.decision.json  approvals::decide
//! ```

/// The runs directory when neither `--runs-dir` nor the config names one.
pub const DEFAULT_RUNS_DIR: &str = ".runbook/runs";

pub mod approvals;
pub mod group_commit;
pub mod journal;
pub mod lock;
pub mod replay;
pub mod run_meta;
pub mod runs;
pub mod sys;
