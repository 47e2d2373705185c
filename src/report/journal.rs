//! The journal: `<runs dir>/<run id>/journal.jsonl`, one JSON object per
//! event, in `seq` order.
//!
//! Every line is written whole with one `write_all` of the serialized event
//! plus `\n`, so a crash leaves at worst a torn *last* line. Durability is a
//! policy ([`Durability`]): buffered (dry runs: nothing real happens),
//! flushed to the OS at every write-ahead point (the default for live runs),
//! or fsynced there (issue 5). [`Journal::encode`] is the single place where
//! an event becomes bytes, where issue 5's hash chain (`prev`: the SHA-256
//! of the previous line) will be added.

use crate::events::{Event, Sink};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The runs directory when the config names none.
pub const DEFAULT_RUNS_DIR: &str = ".runbook/runs";
pub const FILE_NAME: &str = "journal.jsonl";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Written through a buffer, flushed at the end (dry runs, drills).
    Buffered,
    /// Flushed to the OS after every write-ahead event
    /// ([`EventKind::is_write_ahead`](crate::events::EventKind::is_write_ahead)).
    Flush,
    /// Flushed and `fsync`ed after every write-ahead event.
    Fsync,
}

pub struct Journal {
    w: BufWriter<File>,
    path: PathBuf,
    durability: Durability,
}

impl Journal {
    /// Creates `<runs_dir>/<run_id>/journal.jsonl` (the run directory must
    /// not exist yet: a run id is never reused).
    pub fn create(runs_dir: &Path, run_id: &str, durability: Durability) -> std::io::Result<Self> {
        let dir = runs_dir.join(run_id);
        std::fs::create_dir_all(runs_dir)?;
        std::fs::create_dir(&dir)?;
        let path = dir.join(FILE_NAME);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Journal {
            w: BufWriter::with_capacity(64 * 1024, f),
            path,
            durability,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One event as one line of bytes.
    pub fn encode(&mut self, ev: &Event) -> std::io::Result<Vec<u8>> {
        // Most lines are a few hundred bytes: one allocation, not several.
        let mut line = Vec::with_capacity(512);
        serde_json::to_writer(&mut line, ev).map_err(std::io::Error::other)?;
        line.push(b'\n');
        Ok(line)
    }
}

impl Sink for Journal {
    fn event(&mut self, ev: &Event) -> std::io::Result<()> {
        let line = self.encode(ev)?;
        self.w.write_all(&line)?;
        match self.durability {
            Durability::Buffered => {}
            Durability::Flush if ev.kind.is_write_ahead() => self.w.flush()?,
            Durability::Fsync if ev.kind.is_write_ahead() => {
                self.w.flush()?;
                self.w.get_ref().sync_data()?;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.w.flush()?;
        if self.durability != Durability::Buffered {
            self.w.get_ref().sync_all()?;
        }
        Ok(())
    }
}

/// Reads a journal back: every whole line that parses, and a warning for
/// a torn or invalid line (never a panic).
pub fn read(path: &Path) -> std::io::Result<(Vec<Event>, Vec<String>)> {
    let text = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&text);
    let mut events = Vec::new();
    let mut warnings = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Event>(line) {
            Ok(e) => events.push(e),
            Err(e) => warnings.push(format!("line {}: ignored ({e})", i + 1)),
        }
    }
    Ok((events, warnings))
}
