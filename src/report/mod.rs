//! Reporters: the [`Sink`](crate::events::Sink)s a run writes to.
//!
//! * The journal, `.runbook/runs/<id>/journal.jsonl` (the decision log, one
//!   JSON object per event, documented in `docs/decision-log.md`), is
//!   [`durable::journal::JournalWriter`](crate::durable::journal::JournalWriter):
//!   write-ahead and hash-chained.
//! * [`console::Console`]: the same run for people: one line per decision,
//!   spinners for running nodes on a TTY, a summary table at the end.
//! * [`json::JsonLines`]: `--output json`, the journal streamed to stdout.
//!
//! Reporters see only [`Event`](crate::events::Event)s, already redacted.

pub mod console;
pub mod json;

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A cloneable in-memory writer (tests grep what was printed).
#[derive(Debug, Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn contents(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut b) => {
                b.extend_from_slice(buf);
                Ok(buf.len())
            }
            Err(_) => Err(std::io::Error::other("buffer poisoned")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
