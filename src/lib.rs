//! runbook: runbooks as code. Parse, compile to a step graph, execute with
//! rollback and a decision log, rehearse in drills.
//!
//! Data flows one way: [`source::Source`] -> pest parse -> [`ast`] ->
//! compile passes -> [`plan::Graph`] -> executor -> events -> reporters.

pub mod adapters;
pub mod ast;
pub mod cli;
pub mod clock;
pub mod compile;
pub mod config;
pub mod diagnostic_code;
pub mod diagnostics;
pub mod digest;
pub mod drill;
pub mod durable;
pub mod escape;
pub mod events;
pub mod exec;
pub mod exit;
pub mod fmt;
pub mod fs_read;
pub mod indexed_source;
pub mod lsp;
pub mod plan;
pub mod report;
pub mod serve;
pub mod session;
pub mod source;
pub mod span;
pub mod store;
pub mod syntax;
pub mod yaml_depth;
