//! Shared helpers of the executor tests: compile a runbook from text, fake
//! adapters that record what they were asked, and a run that collects the
//! events, the console text and the journal text.
#![allow(dead_code)]

use async_trait::async_trait;
use indexmap::IndexMap;
use runbook::adapters::*;
use runbook::clock::Clock;
use runbook::durable::journal::{Durability, JournalWriter, JOURNAL_FILE};
use runbook::events::{CheckStatus, Emitter, Event, EventKind, Mode, Recorder, Redactor, Sink};
use runbook::exec::{self, RunOptions, RunSummary};
use runbook::plan::Graph;
use runbook::report::{console::Console, SharedBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn compile(text: &str) -> Arc<Graph> {
    let src = runbook::source::Source::new("test.runbook", text);
    match runbook::compile::compile(&src) {
        Ok(c) => Arc::new(c.graph),
        Err(r) => panic!("runbook does not compile:\n{}", r.render(false)),
    }
}

type ShellFn = dyn Fn(&Call, &str) -> ShellBehaviour + Send + Sync;

/// What a fake shell command does.
pub enum ShellBehaviour {
    Exit(i32, String),
    /// Sleeps (virtual time) then exits 0; honours the request timeout.
    Sleep(Duration),
    /// Never answers and ignores its timeout (tests the safety net).
    Hang,
}

/// A shell adapter that records every command (send form) and answers
/// from a closure.
pub struct FakeShell {
    pub log: Mutex<Vec<String>>,
    pub running: Mutex<(usize, usize)>,
    f: Box<ShellFn>,
}

impl FakeShell {
    pub fn new(f: impl Fn(&Call, &str) -> ShellBehaviour + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(FakeShell {
            log: Mutex::new(Vec::new()),
            running: Mutex::new((0, 0)),
            f: Box::new(f),
        })
    }

    /// Fails (exit 1) every command containing "FAIL", else exit 0.
    pub fn failing_on_marker() -> Arc<Self> {
        Self::new(|_, cmd| {
            if cmd.contains("FAIL") {
                ShellBehaviour::Exit(1, "boom\n".into())
            } else {
                ShellBehaviour::Exit(0, String::new())
            }
        })
    }

    pub fn commands(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Most commands running at once.
    pub fn max_concurrent(&self) -> usize {
        self.running.lock().unwrap().1
    }
}

#[async_trait]
impl ShellAdapter for FakeShell {
    async fn run(&self, call: &Call, req: &ShellRequest) -> AdapterResult<ShellOutput> {
        self.log.lock().unwrap().push(req.command.send.clone());
        {
            let mut r = self.running.lock().unwrap();
            r.0 += 1;
            r.1 = r.1.max(r.0);
        }
        let b = (self.f)(call, &req.command.send);
        let out = match b {
            ShellBehaviour::Exit(code, stdout) => Ok(ShellOutput {
                exit: Some(code),
                stdout,
                ..ShellOutput::default()
            }),
            ShellBehaviour::Sleep(d) => {
                let sleep = tokio::time::sleep(d);
                match req.timeout {
                    Some(t) if t < d => {
                        tokio::time::sleep(t).await;
                        Err(AdapterError::timeout(t))
                    }
                    _ => {
                        sleep.await;
                        Ok(ShellOutput {
                            exit: Some(0),
                            elapsed: d,
                            ..ShellOutput::default()
                        })
                    }
                }
            }
            ShellBehaviour::Hang => {
                std::future::pending::<()>().await;
                unreachable!()
            }
        };
        self.running.lock().unwrap().0 -= 1;
        out
    }
}

/// A notify adapter that records (channel, text sent).
#[derive(Default)]
pub struct FakeNotify {
    pub sent: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl NotifyAdapter for FakeNotify {
    async fn send(&self, _call: &Call, req: &NotifyRequest) -> AdapterResult<NotifyReceipt> {
        self.sent
            .lock()
            .unwrap()
            .push((req.channel.clone(), req.text.send.clone()));
        Ok(NotifyReceipt {
            status: Some(200),
            elapsed: Duration::ZERO,
        })
    }
}

/// A check oracle answering from a closure (check name, poll) -> status.
/// (check name, poll number) -> the check's status.
pub type OracleFn = dyn Fn(&str, u32) -> CheckStatus + Send + Sync;

pub struct FnOracle(pub Box<OracleFn>);

impl CheckOracle for FnOracle {
    fn answer(&self, call: &Call, check: &runbook::plan::CheckSpec) -> Option<OracleAnswer> {
        Some(OracleAnswer {
            status: (self.0)(&check.name, call.attempt),
            note: "scripted by the test".into(),
        })
    }
}

/// Dry-run adapters everywhere except the given shell and a recording
/// notifier; checks pass unless an oracle is set.
pub fn adapters(shell: Arc<FakeShell>, notify: Arc<FakeNotify>) -> Adapters {
    let mut a = Adapters::dry_run(IndexMap::new());
    a.shell = shell.clone();
    a.probes.shell = shell;
    a.notify = notify;
    a
}

pub struct Ran {
    pub summary: RunSummary,
    pub events: Vec<Event>,
    pub console: String,
    pub journal: String,
}

impl Ran {
    pub fn kinds(&self) -> Vec<&'static str> {
        self.events.iter().map(|e| e.kind.name()).collect()
    }

    pub fn of(&self, name: &str) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.kind.name() == name)
            .collect()
    }

    /// Where step `node` ended (it must be in the graph).
    pub fn state(&self, node: &str) -> runbook::exec::scheduler::NodeState {
        self.summary
            .nodes
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, s)| *s)
            .expect("a step of the graph")
    }

    /// Nodes of the `undo_finished` events, in order.
    pub fn undone(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::UndoFinished { .. }))
            .filter_map(|e| e.node.as_deref().map(str::to_owned))
            .collect()
    }
}

pub fn options(mode: Mode) -> RunOptions {
    let mut o = RunOptions::new("test-run", mode);
    o.parallel = 4;
    o
}

/// Runs `graph` with inputs resolved from `inputs` (NAME, VALUE) and the
/// defaults, collecting events, console text and the journal.
pub async fn run(
    graph: Arc<Graph>,
    mut opts: RunOptions,
    inputs: &[(&str, &str)],
    adapters: Adapters,
) -> Ran {
    let cli: Vec<(String, String)> = inputs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    opts.inputs = exec::inputs::resolve(&graph.inputs, &cli, None).expect("valid inputs");
    let dir = tempfile::tempdir().unwrap();
    // The journal `runbook run` writes (buffered, as a dry run's: the
    // fsyncs are tested in tests/it/durable_journal.rs).
    let run_dir = dir.path().join(&*opts.run_id);
    let j = JournalWriter::create(&run_dir, Durability::Buffered).unwrap();
    let path = run_dir.join(JOURNAL_FILE);
    let recorder = Recorder::new();
    let console = SharedBuf::new();
    let redactor = Redactor::new(opts.secrets.values().flatten().map(String::as_str));
    let emitter = Arc::new(Emitter::new(
        opts.run_id.clone(),
        Clock::start_at(std::time::UNIX_EPOCH),
        redactor,
        vec![
            (Box::new(j) as Box<dyn Sink>, true),
            (Box::new(recorder.clone()), false),
            (
                Box::new(Console::new(Box::new(console.clone()), false)),
                false,
            ),
        ],
    ));
    let summary = exec::run(graph, opts, adapters, emitter).await;
    let journal = std::fs::read_to_string(&path).unwrap();
    Ran {
        summary,
        events: recorder.take(),
        console: console.contents(),
        journal,
    }
}
