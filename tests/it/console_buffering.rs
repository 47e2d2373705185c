//! The console holds its lines back and writes them in chunks, but shows
//! them before the run waits (and before an approval prompt), in a dry run
//! and in a live one. The text is the same either way.

use crate::exec_support;

use exec_support::compile;
use indexmap::IndexMap;
use runbook::adapters::Adapters;
use runbook::clock::Clock;
use runbook::events::{Emitter, Event, EventKind, Mode, Redactor, Sink};
use runbook::exec::{self, RunOptions};
use runbook::report::{console::Console, SharedBuf};
use std::sync::{Arc, Mutex};

fn event(seq: u64, node: Option<&str>, kind: EventKind) -> Event {
    Event {
        seq,
        ts: Arc::from("2026-01-01T00:00:00.000Z"),
        t_ms: 0,
        run_id: Arc::from("r"),
        node: node.map(Arc::from),
        kind,
    }
}

fn run_started(mode: Mode) -> EventKind {
    EventKind::RunStarted {
        format: 1,
        runbook: "rb".into(),
        title: None,
        mode,
        inputs: IndexMap::new(),
        secrets: vec![],
        source_sha256: String::new(),
        parallel: 1,
        notes: vec![],
    }
}

fn node_events() -> Vec<Event> {
    vec![
        event(2, Some("s0"), EventKind::NodeReady { deps: vec![] }),
        event(
            3,
            Some("s0"),
            EventKind::ActionStarted {
                adapter: "shell".into(),
                phase: runbook::events::Phase::Action,
                attempt: 1,
                item: None,
                effect: runbook::plan::Effect::Read,
                request: "true".into(),
                timeout: None,
                simulated: true,
            },
        ),
        event(
            4,
            Some("s0"),
            EventKind::NodeSucceeded {
                attempts: 1,
                elapsed_ms: 0,
                failed_items: vec![],
            },
        ),
    ]
}

#[test]
fn a_dry_run_console_writes_when_flushed_or_finished() {
    let buf = SharedBuf::new();
    let mut c = Console::new(Box::new(buf.clone()), false);
    c.event(&event(1, None, run_started(Mode::DryRun))).unwrap();
    for ev in node_events() {
        c.event(&ev).unwrap();
    }
    assert_eq!(buf.contents(), "", "held back until the run waits");
    c.flush().unwrap();
    let shown = buf.contents();
    assert!(shown.starts_with("▶ rb — DRY RUN (nothing is executed), run r\n"));
    assert!(shown.ends_with("  [s0] would run shell: true\n✓ s0 (0ms)\n"));
    c.finish().unwrap();
    assert!(buf
        .contents()
        .ends_with("s0    ok (simulated)             1       0ms  -\n"));
}

#[test]
fn a_live_console_holds_its_lines_until_the_run_waits_too() {
    let buf = SharedBuf::new();
    let mut c = Console::new(Box::new(buf.clone()), false);
    c.event(&event(1, None, run_started(Mode::Live))).unwrap();
    let evs = node_events();
    c.event(&evs[1]).unwrap();
    assert_eq!(buf.contents(), "", "held back until the run waits");
    c.flush().unwrap();
    assert_eq!(
        buf.contents(),
        "▶ rb — LIVE run, run r\n  [s0] would run shell: true\n"
    );
}

/// A live run whose only step asks for approval, on a scripted terminal
/// that shares its output with the console: what a person at the terminal
/// sees, in order.
#[tokio::test]
async fn an_approval_prompt_comes_after_the_lines_before_it() {
    let graph = compile(
        "runbook ask {\n  step go {\n    approve \"Proceed?\"\n    run \"true\" readonly\n  }\n}\n",
    );
    let screen = SharedBuf::new();
    let console = Console::new(Box::new(screen.clone()), false);
    let emitter = Arc::new(Emitter::new(
        "r",
        Clock::start(),
        Redactor::new([]),
        vec![(Box::new(console) as Box<dyn Sink>, false)],
    ));
    let mut adapters = Adapters::dry_run(IndexMap::new());
    let prompt: runbook::adapters::approve::PromptWriter = Arc::new(Mutex::new(screen.clone()));
    adapters.approve = Arc::new(runbook::adapters::approve::RealApprove::scripted(
        &b"y\n"[..],
        prompt,
    ));
    let opts = RunOptions::new("r", Mode::Live);
    let summary = exec::run(graph, opts, adapters, emitter.clone()).await;
    emitter.finish();
    assert_eq!(summary.exit_code, 0);
    let shown = screen.contents();
    let asked = shown
        .find("? approval: Proceed?")
        .expect("the console line");
    let prompt = shown
        .find("Approval needed for step `go`")
        .unwrap_or_else(|| panic!("the prompt in:\n{shown}"));
    assert!(asked < prompt, "the prompt came first:\n{shown}");
}

#[test]
fn a_console_dropped_without_finish_still_writes_its_lines() {
    let buf = SharedBuf::new();
    let mut c = Console::new(Box::new(buf.clone()), false);
    c.event(&event(1, None, run_started(Mode::DryRun))).unwrap();
    drop(c);
    assert_eq!(
        buf.contents(),
        "▶ rb — DRY RUN (nothing is executed), run r\n"
    );
}

/// Counts the events it saw each time it was flushed.
#[derive(Clone, Default)]
struct FlushPoints {
    seen: Arc<Mutex<(Vec<String>, Vec<usize>)>>,
}

impl Sink for FlushPoints {
    fn event(&mut self, ev: &Event) -> std::io::Result<()> {
        self.seen.lock().unwrap().0.push(ev.kind.name().to_owned());
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut s = self.seen.lock().unwrap();
        let n = s.0.len();
        s.1.push(n);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn sinks_are_flushed_before_a_run_waits() {
    let graph = compile("runbook w {\n  step a {\n    wait 1m\n  }\n}\n");
    let probe = FlushPoints::default();
    let emitter = Arc::new(Emitter::new(
        "r",
        Clock::start_at(std::time::UNIX_EPOCH),
        Redactor::new([]),
        vec![(Box::new(probe.clone()) as Box<dyn Sink>, false)],
    ));
    let opts = RunOptions::new("r", Mode::DryRun);
    let summary = exec::run(graph, opts, Adapters::dry_run(IndexMap::new()), emitter).await;
    assert_eq!(summary.exit_code, 0);
    let (kinds, flushes) = probe.seen.lock().unwrap().clone();
    let started = kinds.iter().position(|k| k == "action_started").unwrap();
    assert!(
        flushes.contains(&(started + 1)),
        "flushed right after action_started, while the wait waits: {flushes:?} of {kinds:?}"
    );
}
