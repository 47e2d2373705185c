//! The integration tests, in one binary (one link instead of one per
//! file): each module is one area, run as `cargo test --test it AREA`
//! (e.g. `cargo test --test it compile_snapshots`).
//!
//! Data the tests read stays beside this directory: `tests/invalid/`,
//! `tests/warnings/`, `tests/drills/`; snapshots are in `tests/it/snapshots/`.

// Test code may unwrap (a panic is the failure report), and its helpers
// are `pub` for the other modules of this binary.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod exec_support;
/// The runbook generator the benchmarks use (for property tests).
#[path = "../../benches/support/generate.rs"]
mod generate;
mod support;

mod adapters_approve;
mod adapters_http;
mod adapters_notify;
mod adapters_promql;
mod adapters_shell;
mod adversarial;
mod approvals_pg;
mod approve_by_other;
mod compile_props;
mod compile_snapshots;
mod console_buffering;
mod docs_coverage;
mod drill_reports;
mod drill_rules;
mod durable_approvals;
mod durable_journal;
mod durable_lock;
mod durable_lock_dirs;
mod durable_run_meta;
mod durable_runs;
mod editors;
mod event_json;
mod exec_always;
mod exec_branches;
mod exec_cli;
mod exec_decision_log;
mod exec_dry_run;
mod exec_flow;
mod exec_foreach;
mod exec_injection;
mod exec_ladder;
mod exec_nested;
mod exec_policy;
mod exec_rollback;
mod exec_secrets;
mod exec_time;
mod exec_values;
mod failure_rollback;
mod fmt;
mod group_commit;
mod handler_secrets;
mod harness_selftest;
mod hostile_limits;
mod input_slots;
mod journal_failure;
mod journal_pg;
mod layering;
mod lsp;
mod nonregular_files;
mod ops_cli;
mod plan_snapshots;
mod queue_pg;
mod redaction_encodings;
mod resume_always_kill;
mod resume_fanout_kill;
mod resume_kill;
mod resume_lost_read;
mod secret_leaks;
mod serve_alertmanager;
mod serve_api;
mod serve_browser;
mod serve_drill_html;
mod serve_store_pg;
mod shell_start_gate;
mod status_updates;
mod store_pg;
mod takeover_pg;
mod undo_when;
