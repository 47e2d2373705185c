//! Stamping, redacting and handing out events: the [`Emitter`] and the
//! [`Sink`]s it feeds.

use super::{Event, EventKind};
use crate::clock::Clock;
use crate::events::redact::Redactor;
use std::sync::{Arc, Mutex};

/// A consumer of events: the journal, the console, `--output json`, a
/// drill's recorder.
pub trait Sink: Send {
    /// Called once per event, in `seq` order. An error is reported once as
    /// a warning on the other sinks and the sink is dropped from the run
    /// (except the journal, whose failure stops the run: see `Emitter`).
    fn event(&mut self, ev: &Event) -> std::io::Result<()>;

    /// Called when the run may wait (for a process, a request, a timer, a
    /// human): whatever the sink holds back for speed must reach its reader
    /// now. An error counts as one from [`Sink::event`].
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    /// Called once at the end of the run (flush, print the summary).
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    /// [`Sink::event`] for the start of an action whose caller makes it
    /// durable itself, with [`Sink::durable`], before the action can change
    /// anything ([`Emitter::emit_durable_later`]). A sink that fsyncs may
    /// leave this event's fsync to that call.
    fn event_durable_later(&mut self, ev: &Event) -> std::io::Result<()> {
        self.event(ev)
    }

    /// Every event delivered so far must now be on disk (fsynced), where
    /// the sink makes such a promise at all.
    fn durable(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A sink that keeps every event in memory (tests, drills).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    pub events: std::sync::Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn take(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Sink for Recorder {
    fn event(&mut self, ev: &Event) -> std::io::Result<()> {
        if let Ok(mut e) = self.events.lock() {
            e.push(ev.clone());
        }
        Ok(())
    }
}

struct EmitterState {
    seq: u64,
    sinks: Vec<(Box<dyn Sink>, bool)>,
    failed: bool,
    /// The node ids of the last events, shared rather than copied into
    /// each event (a node's events come in a row, or nearly).
    nodes: [Option<Arc<str>>; NODE_CACHE],
    next_node: usize,
}

const NODE_CACHE: usize = 8;

impl EmitterState {
    fn node(&mut self, node: &str) -> Arc<str> {
        // Newest first: the node of the last event is the likeliest.
        for back in 1..=NODE_CACHE {
            let i = (self.next_node + NODE_CACHE - back) % NODE_CACHE;
            match &self.nodes[i] {
                Some(n) if &**n == node => return n.clone(),
                _ => {}
            }
        }
        let n: Arc<str> = Arc::from(node);
        self.nodes[self.next_node] = Some(n.clone());
        self.next_node = (self.next_node + 1) % NODE_CACHE;
        n
    }
}

/// Stamps, redacts and distributes events. Cheap to share (`Arc`).
pub struct Emitter {
    run_id: Arc<str>,
    clock: Clock,
    redactor: Redactor,
    state: Mutex<EmitterState>,
}

impl Emitter {
    /// `sinks`: each with `critical` — a failing critical sink (the
    /// journal) marks the emitter failed, which stops the run.
    pub fn new(
        run_id: impl Into<String>,
        clock: Clock,
        redactor: Redactor,
        sinks: Vec<(Box<dyn Sink>, bool)>,
    ) -> Self {
        Emitter {
            run_id: Arc::from(run_id.into()),
            clock,
            redactor,
            state: Mutex::new(EmitterState {
                seq: 0,
                sinks,
                failed: false,
                nodes: Default::default(),
                next_node: 0,
            }),
        }
    }

    /// Numbers the next event `last_seq + 1`: a resumed run goes on with
    /// the journal's numbering.
    pub fn continuing_after(self, last_seq: u64) -> Self {
        if let Ok(mut st) = self.state.lock() {
            st.seq = last_seq;
        }
        self
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Whether a critical sink (the journal) failed: the run must stop.
    pub fn failed(&self) -> bool {
        self.state.lock().map(|s| s.failed).unwrap_or(true)
    }

    pub fn emit(&self, node: Option<&str>, kind: EventKind) {
        self.emit_with(node, |_| kind);
    }

    /// Emits the event `kind` builds from the instant the event is stamped
    /// with, and returns that instant: one reading of the clock serves
    /// both the event's time and a duration it reports (or a later one
    /// measures from), where reading it was a tenth of a dry run's time.
    pub fn emit_with(
        &self,
        node: Option<&str>,
        kind: impl FnOnce(tokio::time::Instant) -> EventKind,
    ) -> tokio::time::Instant {
        self.emit_to_sinks(node, kind, false)
    }

    /// [`emit_with`](Self::emit_with) for the start of an action that makes
    /// its start durable by calling [`durable`](Self::durable) before it
    /// changes anything: the journal may leave this event's fsync to that
    /// call, so that the fsync overlaps the action's own start-up (a shell's
    /// exec: see `adapters::StartBarrier`). The caller must call `durable`
    /// before the action can have an effect.
    pub fn emit_durable_later(
        &self,
        node: Option<&str>,
        kind: impl FnOnce(tokio::time::Instant) -> EventKind,
    ) -> tokio::time::Instant {
        self.emit_to_sinks(node, kind, true)
    }

    /// Makes every event emitted so far durable ([`Sink::durable`]).
    /// Returns false if the journal failed (now or before): what was to
    /// start must not.
    pub fn durable(&self) -> bool {
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        self.deliver(&mut st, |s| s.durable());
        !st.failed
    }

    fn emit_to_sinks(
        &self,
        node: Option<&str>,
        kind: impl FnOnce(tokio::time::Instant) -> EventKind,
        durable_later: bool,
    ) -> tokio::time::Instant {
        let Ok(mut st) = self.state.lock() else {
            return self.clock.now();
        };
        st.seq += 1;
        let (now, ts, t_ms) = self.clock.stamp_now();
        let mut kind = kind(now);
        if !self.redactor.is_empty() {
            kind.map_text(&|s| self.redactor.redact_if_needed(s));
        }
        let ev = Event {
            seq: st.seq,
            ts,
            t_ms,
            run_id: self.run_id.clone(),
            node: node.map(|n| st.node(n)),
            kind,
        };
        if durable_later {
            self.deliver(&mut st, |s| s.event_durable_later(&ev));
        } else {
            self.deliver(&mut st, |s| s.event(&ev));
        }
        now
    }

    /// Flushes every sink ([`Sink::flush`]): the run may now wait.
    pub fn flush(&self) {
        if let Ok(mut st) = self.state.lock() {
            self.deliver(&mut st, |s| s.flush());
        }
    }

    /// Applies `f` to each sink; a sink that fails is dropped from the run
    /// and the others get a warning saying so.
    fn deliver(
        &self,
        st: &mut EmitterState,
        mut f: impl FnMut(&mut dyn Sink) -> std::io::Result<()>,
    ) {
        let mut errors = Vec::new();
        let mut i = 0;
        while i < st.sinks.len() {
            if let Err(e) = f(st.sinks[i].0.as_mut()) {
                let critical = st.sinks[i].1;
                errors.push(format!(
                    "{} output failed: {e}",
                    if critical { "journal" } else { "an" }
                ));
                if critical {
                    st.failed = true;
                }
                st.sinks.remove(i);
            } else {
                i += 1;
            }
        }
        for message in errors {
            st.seq += 1;
            let (ts, t_ms) = self.clock.stamp();
            let w = Event {
                seq: st.seq,
                ts,
                t_ms,
                run_id: self.run_id.clone(),
                node: None,
                kind: EventKind::Warning {
                    message: self.redactor.redact(&message),
                },
            };
            for (s, _) in st.sinks.iter_mut() {
                let _ = s.event(&w);
            }
        }
    }

    /// Flushes every sink and prints summaries; called once, at the end.
    pub fn finish(&self) {
        if let Ok(mut st) = self.state.lock() {
            for (s, _) in st.sinks.iter_mut() {
                let _ = s.finish();
            }
        }
    }
}
