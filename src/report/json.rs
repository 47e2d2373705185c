//! `--output json`: every event as one JSON line on stdout, the same
//! objects as the journal.

use crate::events::{Event, Sink};
use std::io::Write;

pub struct JsonLines<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W) -> Self {
        JsonLines { out }
    }
}

impl<W: Write + Send> Sink for JsonLines<W> {
    fn event(&mut self, ev: &Event) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(256);
        serde_json::to_writer(&mut line, ev).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
