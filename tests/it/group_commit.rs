//! Group commit (`durable::group_commit`): the outcome of a step that
//! changed something is fsynced together with what follows it, and never
//! later than the moment the engine's thread goes idle.

use indexmap::IndexMap;
use runbook::adapters::{
    real, AdapterResult, Adapters, Call, ShellAdapter, ShellOutput, ShellRequest,
};
use runbook::durable::group_commit::GroupCommit;
use runbook::durable::journal::{Durability, JournalWriter};
use runbook::events::{Emitter, Event, EventKind, Mode, Redactor, Sink};
use runbook::exec::{self, inputs, RunOptions};
use runbook::plan::{CaptureFormat, Effect, Graph};
use runbook::source::Source;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn ev(seq: u64, node: Option<&str>, kind: EventKind) -> Event {
    Event {
        seq,
        ts: Arc::from("2026-11-22T10:00:00.000Z"),
        t_ms: seq,
        run_id: Arc::from("r1"),
        node: node.map(Arc::from),
        kind,
    }
}

fn started(effect: Effect) -> EventKind {
    EventKind::ActionStarted {
        adapter: "shell".into(),
        phase: runbook::events::Phase::Action,
        item: None,
        attempt: 1,
        effect,
        request: "true".into(),
        timeout: None,
        simulated: false,
    }
}

fn succeeded() -> EventKind {
    EventKind::NodeSucceeded {
        attempts: 1,
        elapsed_ms: 1,
        failed_items: vec![],
    }
}

fn ready() -> EventKind {
    EventKind::NodeReady { deps: vec![] }
}

/// Appends `kinds` in order and returns the writer's fsync count after each.
fn syncs_after(w: &mut JournalWriter, first_seq: u64, kinds: Vec<(&str, EventKind)>) -> Vec<u64> {
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, (node, kind))| {
            w.append(&ev(first_seq + i as u64, Some(node), kind))
                .expect("append");
            w.syncs()
        })
        .collect()
}

/// Steps `a` and `b`, each changing something, one after the other.
fn two_changes() -> Vec<(&'static str, EventKind)> {
    vec![
        ("a", ready()),
        ("a", started(Effect::Write)),
        ("a", succeeded()),
        ("b", ready()),
        ("b", started(Effect::Write)),
        ("b", succeeded()),
    ]
}

#[test]
fn a_change_outcome_is_synced_with_the_next_start_not_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = JournalWriter::create(dir.path(), Durability::WriteAhead).expect("create");
    let g = w.group_commit().expect("group commit");
    // Two changes in a row: one fsync each (their start), the first one's
    // outcome riding on the second one's start.
    let syncs = syncs_after(&mut w, 1, two_changes());
    assert_eq!(syncs, vec![0, 1, 1, 1, 2, 2]);
    assert!(g.is_pending(), "b's outcome waits for what comes next");

    // Anything but a `node_ready` after it takes it to disk, even an event
    // that needs no fsync itself (a read's start, a stored capture...).
    let syncs = syncs_after(
        &mut w,
        7,
        vec![
            ("c", ready()),
            (
                "c",
                EventKind::CaptureStored {
                    name: "x".into(),
                    format: CaptureFormat::Text,
                    value: serde_json::json!("1"),
                },
            ),
        ],
    );
    assert_eq!(syncs, vec![2, 3]);
    assert!(!g.is_pending());

    // The park hook's flush takes it to disk when nothing follows.
    let syncs = syncs_after(
        &mut w,
        9,
        vec![("c", started(Effect::Write)), ("c", succeeded())],
    );
    assert_eq!(syncs, vec![4, 4]);
    assert!(g.is_pending());
    g.flush();
    assert!(!g.is_pending());
    assert_eq!(w.syncs(), 5);
    g.flush();
    assert_eq!(w.syncs(), 5, "nothing deferred: no fsync");

    // A read's outcome is never synced on its own, deferred or not.
    let syncs = syncs_after(
        &mut w,
        11,
        vec![
            ("d", ready()),
            ("d", started(Effect::Read)),
            ("d", succeeded()),
        ],
    );
    assert_eq!(syncs, vec![5, 5, 5]);
    assert!(!g.is_pending());
}

#[test]
fn without_group_commit_a_change_outcome_is_synced_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = JournalWriter::create(dir.path(), Durability::WriteAhead).expect("create");
    let syncs = syncs_after(&mut w, 1, two_changes());
    assert_eq!(syncs, vec![0, 1, 2, 2, 3, 4]);
}

#[test]
fn a_buffered_journal_has_nothing_to_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = JournalWriter::create(dir.path(), Durability::Buffered).expect("create");
    let g = runbook::session::group_commit(&mut w).expect("group commit");
    assert!(g.is_none(), "dry runs and drills never fsync");
}

const PARALLEL: &str = r#"
runbook grouped {
  parallel {
    step change {
      run "true"
    }
    step watch {
      run "while [ ! -e release ]; do sleep 0.02; done" readonly
      timeout 30s
    }
  }
}
"#;

/// A live run of `text` ready to go: its graph, options, the real adapters
/// (shell in `dir`) and a write-ahead journal under `dir/runs` with group
/// commit on.
struct Live {
    graph: Arc<Graph>,
    opts: RunOptions,
    adapters: Adapters,
    journal: JournalWriter,
    group: GroupCommit,
}

fn live(dir: &Path, name: &str, text: &str) -> Live {
    let source = Source::new(name, text.to_owned());
    let graph = match runbook::compile::compile(&source) {
        Ok(c) => Arc::new(c.graph),
        Err(report) => panic!("does not compile:\n{}", report.render(false)),
    };
    let run_id = exec::new_run_id();
    let mut journal =
        JournalWriter::create(&dir.join("runs").join(&run_id), Durability::WriteAhead)
            .expect("journal");
    let group = journal.group_commit().expect("group commit");
    let mut opts = RunOptions::new(run_id, Mode::Live);
    opts.inputs = inputs::resolve(&graph.inputs, &[], None).expect("no inputs");
    let adapters = real::real(real::RealSettings {
        prometheus_url: None,
        shell_cwd: Some(dir.to_path_buf()),
        shell_env: IndexMap::new(),
        shell_timeout: opts.settings.default_timeout,
        http_timeout: Some(opts.settings.check_timeout),
        kill_grace: None,
        no_prompt: true,
    });
    Live {
        graph,
        opts,
        adapters,
        journal,
        group,
    }
}

impl Live {
    /// Runs it to its end (inside a runtime); the exit code.
    async fn run(self) -> i32 {
        let emitter = Arc::new(Emitter::new(
            self.opts.run_id.clone(),
            runbook::clock::Clock::start(),
            Redactor::new(std::iter::empty::<&str>()),
            vec![(Box::new(self.journal) as Box<dyn Sink>, true)],
        ));
        exec::run(self.graph, self.opts, self.adapters, emitter)
            .await
            .exit_code
    }
}

/// A live run of PARALLEL in `dir` on the CLI's runtime, with or without
/// the park hook; returns whether `change`'s outcome still waited for its
/// fsync while `watch` was running, and the exit code.
fn run_parallel(dir: &Path, hook: bool) -> (bool, i32) {
    let live = live(dir, "grouped.runbook", PARALLEL);
    let group = live.group.clone();
    let journal_path = live.journal.path().to_path_buf();
    let runtime =
        runbook::session::runtime_with(false, hook.then(|| group.clone())).expect("runtime");
    let run = std::thread::spawn(move || runtime.block_on(live.run()));

    // Wait for `change` to finish while `watch` polls for its file.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&journal_path).unwrap_or_default();
        let done = text
            .lines()
            .any(|l| l.contains(r#""node":"change""#) && l.contains(r#""kind":"node_succeeded""#));
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "change never finished:\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The engine's thread now only waits for `watch`.
    std::thread::sleep(Duration::from_millis(300));
    let pending = group.is_pending();
    std::fs::write(dir.join("release"), "").expect("release watch");
    let code = run.join().expect("the run's thread");
    (pending, code)
}

#[test]
fn a_change_outcome_reaches_the_disk_before_the_engine_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pending, code) = run_parallel(dir.path(), true);
    assert_eq!(code, 0);
    assert!(
        !pending,
        "with the park hook, change's outcome is fsynced as soon as the engine goes idle"
    );

    // Without the hook (what the CLI never does), the outcome would wait
    // for the next event: here, the end of `watch`.
    let dir = tempfile::tempdir().expect("tempdir");
    let (pending, code) = run_parallel(dir.path(), false);
    assert_eq!(code, 0);
    assert!(
        pending,
        "without the hook, nothing flushes it while watch runs"
    );
}

#[test]
fn a_start_left_to_its_caller_is_synced_by_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = JournalWriter::create(dir.path(), Durability::WriteAhead).expect("create");
    let g = w.group_commit().expect("group commit");
    w.append(&ev(1, Some("a"), ready())).expect("append");
    w.append_durable_later(&ev(2, Some("a"), started(Effect::Write)))
        .expect("append");
    assert_eq!(w.syncs(), 0, "the start's fsync is left to its caller");
    assert!(g.is_pending());
    w.durable().expect("durable");
    assert_eq!(w.syncs(), 1);
    assert!(!g.is_pending());
    w.durable().expect("durable");
    assert_eq!(w.syncs(), 1, "nothing waits: no fsync");

    // The outcome, then the next change's start: one fsync for both.
    w.append(&ev(3, Some("a"), succeeded())).expect("append");
    w.append(&ev(4, Some("b"), ready())).expect("append");
    w.append_durable_later(&ev(5, Some("b"), started(Effect::Write)))
        .expect("append");
    assert_eq!(w.syncs(), 1);
    w.durable().expect("durable");
    assert_eq!(w.syncs(), 2);

    // Any event after a start left pending takes it to disk first.
    w.append(&ev(6, Some("b"), succeeded())).expect("append");
    w.append_durable_later(&ev(7, Some("c"), started(Effect::Write)))
        .expect("append");
    w.append(&ev(
        8,
        None,
        EventKind::Warning {
            message: "w".into(),
        },
    ))
    .expect("append");
    assert_eq!(w.syncs(), 3);
    assert!(!g.is_pending());
}

#[test]
fn without_group_commit_a_start_is_synced_at_once_even_if_left_to_its_caller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = JournalWriter::create(dir.path(), Durability::WriteAhead).expect("create");
    w.append_durable_later(&ev(1, Some("a"), started(Effect::Write)))
        .expect("append");
    assert_eq!(w.syncs(), 1, "nothing else would sync it before a wait");
}

/// What a shell adapter saw when the engine called it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    node: String,
    barrier_pending: bool,
    start_synced: bool,
}

/// The real shell adapter, noting whether each call's start was on disk.
struct Watching {
    inner: runbook::adapters::shell::RealShell,
    takes_barrier: bool,
    group: GroupCommit,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
}

#[async_trait::async_trait]
impl ShellAdapter for Watching {
    async fn run(&self, call: &Call, req: &ShellRequest) -> AdapterResult<ShellOutput> {
        let seen = Seen {
            node: call.node.clone(),
            barrier_pending: call.start.is_pending(),
            start_synced: !self.group.is_pending(),
        };
        self.seen.lock().expect("seen").push(seen);
        self.inner.run(call, req).await
    }

    fn passes_start_barrier(&self) -> bool {
        self.takes_barrier
    }
}

const CHANGE_THEN_READ: &str = r#"
runbook gated {
  step change {
    run "true"
  }
  step look {
    run "true" readonly
  }
}
"#;

/// A live run of CHANGE_THEN_READ with a shell adapter that takes the start
/// barrier or not; what it saw, the journal's fsyncs and the exit code.
fn run_watched(dir: &Path, takes_barrier: bool) -> (Vec<Seen>, u64, i32) {
    let mut live = live(dir, "gated.runbook", CHANGE_THEN_READ);
    let group = live.group.clone();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    live.adapters.shell = Arc::new(Watching {
        inner: runbook::adapters::shell::RealShell::default(),
        takes_barrier,
        group: group.clone(),
        seen: seen.clone(),
    });
    let runtime = runbook::session::runtime_with(false, Some(group.clone())).expect("runtime");
    let code = runtime.block_on(live.run());
    let seen = seen.lock().expect("seen").clone();
    (seen, group.syncs(), code)
}

#[test]
fn a_change_hands_its_start_fsync_only_to_an_adapter_that_takes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (seen, _, code) = run_watched(dir.path(), true);
    assert_eq!(code, 0);
    assert_eq!(
        seen,
        vec![
            Seen {
                node: "change".into(),
                barrier_pending: true,
                start_synced: false,
            },
            Seen {
                node: "look".into(),
                barrier_pending: false,
                start_synced: true,
            },
        ],
        "the change's start waits for the adapter's barrier; a read has none"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let (seen, _, code) = run_watched(dir.path(), false);
    assert_eq!(code, 0);
    assert!(
        seen.iter().all(|s| !s.barrier_pending && s.start_synced),
        "an adapter that does not take the barrier is called with the start on disk: {seen:?}"
    );
}
