//! The decision log's events: the only interface between the executor and
//! the reporters (journal, console, `--output json`, drills).
//!
//! The executor builds an [`EventKind`], an [`Emitter`] stamps it with a
//! sequence number, timestamps, the run id and the node, redacts every known
//! secret value from its text ([`Redactor`]), and hands it to each [`Sink`]
//! in turn, synchronously: when `emit` returns, every sink has the event
//! (for the journal: written, and fsynced where
//! [`EventKind::is_write_ahead`] holds, before the side effect starts).
//!
//! The JSON form (one object per line in `journal.jsonl`) is written by one
//! serializer (`json.rs`) and documented in `docs/decision-log.md`; a test
//! checks that every kind is documented.
//!
//! This layer depends on nothing of the executor or the adapters: the
//! vocabulary they share with it ([`Phase`], [`CheckStatus`]) is defined
//! here, and the clock and the exit codes sit below it
//! ([`crate::clock`], [`crate::exit`]).

mod emitter;
mod json;
mod kinds;
pub mod redact;

pub use emitter::{Emitter, Recorder, Sink};
pub use kinds::*;
pub use redact::Redactor;
