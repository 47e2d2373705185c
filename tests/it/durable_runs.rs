//! Rebuilding a run from its journal (replay) at each point a crash can
//! leave it, and listing runs with their state.

use runbook::durable::journal::{read_journal, Durability, JournalWriter, JOURNAL_FILE};
use runbook::durable::runs::{list_runs, replay, run_summary, Completed, RunStatus};
use runbook::events::Phase;
use runbook::events::{
    ActionStatus, Counts, Event, EventKind, Mode, NotUndone, Outcome, UndoPlanEntry, JOURNAL_FORMAT,
};
use runbook::plan::{CaptureFormat, Effect};

/// Builds events with consecutive seqs.
struct Log {
    run_id: String,
    events: Vec<Event>,
}

impl Log {
    fn new(run_id: &str) -> Self {
        let mut l = Log {
            run_id: run_id.into(),
            events: Vec::new(),
        };
        l.push(
            None,
            EventKind::RunStarted {
                format: JOURNAL_FORMAT,
                runbook: "rollback-web".into(),
                title: None,
                mode: Mode::Live,
                inputs: [("service".to_owned(), serde_json::json!("web"))]
                    .into_iter()
                    .collect(),
                secrets: vec![],
                source_sha256: "ab".repeat(32),
                parallel: 4,
                notes: vec![],
            },
        );
        l
    }

    fn push(&mut self, node: Option<&str>, kind: EventKind) -> &mut Self {
        let seq = self.events.len() as u64 + 1;
        self.events.push(Event {
            seq,
            ts: format!("2024-05-01T10:{:02}:00.000Z", seq % 60).into(),
            t_ms: seq,
            run_id: self.run_id.as_str().into(),
            node: node.map(Into::into),
            kind,
        });
        self
    }

    fn ready(&mut self, n: &str) -> &mut Self {
        self.push(Some(n), EventKind::NodeReady { deps: vec![] })
    }

    fn start(&mut self, n: &str, phase: Phase, item: Option<&str>, attempt: u32) -> &mut Self {
        self.push(
            Some(n),
            EventKind::ActionStarted {
                adapter: "shell".into(),
                phase,
                attempt,
                item: item.map(str::to_owned),
                effect: Effect::Write,
                request: format!("do {n}"),
                timeout: None,
                simulated: false,
            },
        )
    }

    fn finish(
        &mut self,
        n: &str,
        phase: Phase,
        item: Option<&str>,
        attempt: u32,
        status: ActionStatus,
    ) -> &mut Self {
        self.push(
            Some(n),
            EventKind::ActionFinished {
                adapter: "shell".into(),
                phase,
                attempt,
                item: item.map(str::to_owned),
                status,
                exit: Some(0),
                http_status: None,
                elapsed_ms: 1,
                output: None,
                error: None,
            },
        )
    }

    fn succeeded(&mut self, n: &str) -> &mut Self {
        self.push(
            Some(n),
            EventKind::NodeSucceeded {
                attempts: 1,
                elapsed_ms: 1,
                failed_items: vec![],
            },
        )
    }

    /// A whole successful step.
    fn step(&mut self, n: &str) -> &mut Self {
        self.ready(n)
            .start(n, Phase::Action, None, 1)
            .finish(n, Phase::Action, None, 1, ActionStatus::Ok)
            .succeeded(n)
    }

    fn failed(&mut self, n: &str, continued: bool) -> &mut Self {
        self.push(
            Some(n),
            EventKind::NodeFailed {
                reason: "exit 1".into(),
                attempts: 1,
                continued,
            },
        )
    }

    fn rollback(&mut self, plan: &[&str]) -> &mut Self {
        self.push(
            None,
            EventKind::RollbackStarted {
                reason: "deploy failed".into(),
                plan: plan
                    .iter()
                    .map(|n| UndoPlanEntry {
                        node: (*n).into(),
                        items: vec![],
                    })
                    .collect(),
                not_undone: vec![NotUndone {
                    node: "notify".into(),
                    reason: "no undo".into(),
                }],
            },
        )
    }

    fn undone(&mut self, n: &str, ok: bool) -> &mut Self {
        self.start(n, Phase::Undo, None, 1)
            .finish(n, Phase::Undo, None, 1, ActionStatus::Ok)
            .push(
                Some(n),
                EventKind::UndoFinished {
                    ok,
                    attempts: 1,
                    items: vec![],
                    error: None,
                },
            )
    }

    fn run_finished(&mut self, outcome: Outcome) -> &mut Self {
        self.push(
            None,
            EventKind::RunFinished {
                outcome,
                exit_code: outcome.exit_code(),
                elapsed_ms: 10,
                failed_step: None,
                failure_reason: None,
                counts: Counts::default(),
            },
        )
    }
}

#[test]
fn between_steps_nothing_is_in_doubt() {
    let mut log = Log::new("r");
    log.step("scale").step("drain").ready("switch");
    let st = replay(&log.events);
    assert_eq!(st.run_id.as_deref(), Some("r"));
    assert_eq!(st.runbook.as_deref(), Some("rollback-web"));
    assert_eq!(st.source_sha256.as_deref(), Some("ab".repeat(32).as_str()));
    assert_eq!(st.mode, Some(Mode::Live));
    assert_eq!(st.inputs["service"], "web");
    assert_eq!(st.sessions, 1);
    assert_eq!(st.last_seq, log.events.len() as u64);
    assert_eq!(
        st.completed.keys().collect::<Vec<_>>(),
        ["scale", "drain"],
        "in completion order"
    );
    assert!(st.in_doubt.is_empty());
    assert_eq!(st.unfinished, ["switch"]);
    assert!(st.failed.is_none());
    assert!(st.rollback.is_none());
    assert!(!st.needs_rollback());
    assert!(st.finished.is_none());
    assert!(st.warnings.is_empty(), "{:?}", st.warnings);
}

#[test]
fn mid_step_the_started_action_is_in_doubt() {
    let mut log = Log::new("r");
    log.step("scale")
        .ready("drain")
        .start("drain", Phase::Action, None, 1)
        .finish("drain", Phase::Action, None, 1, ActionStatus::Failed)
        .push(
            Some("drain"),
            EventKind::RetryScheduled {
                attempt: 2,
                delay_ms: 100,
                reason: "exit 1".into(),
                item: None,
            },
        )
        .start("drain", Phase::Action, None, 2);
    let st = replay(&log.events);
    assert!(st.is_completed("scale"));
    assert!(!st.is_completed("drain"));
    assert_eq!(st.in_doubt.len(), 1);
    let d = &st.in_doubt[0];
    assert_eq!(
        (d.node.as_str(), d.phase, d.attempt, d.effect),
        ("drain", Phase::Action, 2, Effect::Write)
    );
    assert_eq!(d.request, "do drain");
    assert!(d.has_effect());
    assert_eq!(st.in_doubt_with_effect().count(), 1);
    assert_eq!(st.attempts["drain"], 2);
    assert_eq!(st.unfinished, ["drain"]);

    // Resume settles it (verify passed, or --assume-done): no longer in doubt.
    log.succeeded("drain");
    let st = replay(&log.events);
    assert!(st.in_doubt.is_empty());
    assert!(st.is_completed("drain"));
    assert!(st.unfinished.is_empty());
}

#[test]
fn skipped_and_continued_failures_are_completed() {
    let mut log = Log::new("r");
    log.ready("canary")
        .push(
            Some("canary"),
            EventKind::NodeSkipped {
                reason: "when false".into(),
                values: vec![],
            },
        )
        .ready("notify")
        .start("notify", Phase::Action, None, 1)
        .finish("notify", Phase::Action, None, 1, ActionStatus::Failed)
        .failed("notify", true);
    let st = replay(&log.events);
    assert!(matches!(st.completed["canary"], Completed::Skipped { .. }));
    assert!(matches!(
        st.completed["notify"],
        Completed::FailedContinued { .. }
    ));
    assert!(st.failed.is_none());
    assert!(!st.needs_rollback());
}

#[test]
fn captures_and_fan_out_items_are_kept() {
    let mut log = Log::new("r");
    log.step("probe")
        .push(
            Some("probe"),
            EventKind::CaptureStored {
                name: "live".into(),
                format: CaptureFormat::Json,
                value: serde_json::json!({"revision": 41}),
            },
        )
        .ready("drain")
        .start("drain", Phase::Action, Some("eu"), 1)
        .start("drain", Phase::Action, Some("us"), 1)
        .finish("drain", Phase::Action, Some("eu"), 1, ActionStatus::Ok);
    let st = replay(&log.events);
    let cap = &st.captures["live"];
    assert_eq!(cap.node.as_deref(), Some("probe"));
    assert_eq!(cap.format, CaptureFormat::Json);
    assert_eq!(cap.value["revision"], 41);
    assert_eq!(st.items_done["drain"], ["eu"]);
    assert_eq!(st.in_doubt.len(), 1);
    assert_eq!(st.in_doubt[0].item.as_deref(), Some("us"));
}

#[test]
fn mid_rollback_only_the_remaining_undos_are_left() {
    let mut log = Log::new("r");
    log.step("scale")
        .step("drain")
        .ready("switch")
        .start("switch", Phase::Action, None, 1)
        .finish("switch", Phase::Action, None, 1, ActionStatus::Failed)
        .failed("switch", false)
        .rollback(&["drain", "scale"])
        .undone("drain", true)
        .start("scale", Phase::Undo, None, 1);
    let st = replay(&log.events);
    assert_eq!(st.failed, Some(("switch".to_owned(), "exit 1".to_owned())));
    assert!(st.needs_rollback());
    let rb = st.rollback.as_ref().expect("rollback");
    assert_eq!(rb.reason, "deploy failed");
    assert_eq!(rb.undone.keys().collect::<Vec<_>>(), ["drain"]);
    assert!(rb.undone["drain"].ok);
    assert_eq!(
        rb.remaining()
            .iter()
            .map(|p| p.node.as_str())
            .collect::<Vec<_>>(),
        ["scale"]
    );
    assert_eq!(rb.not_undone[0].node, "notify");
    assert_eq!(rb.finished, None);
    // The undo of `scale` started and never finished: in doubt.
    assert_eq!(st.in_doubt.len(), 1);
    assert_eq!(
        (st.in_doubt[0].node.as_str(), st.in_doubt[0].phase),
        ("scale", Phase::Undo)
    );
    // The failed step is settled, not in doubt, not completed.
    assert!(!st.is_completed("switch"));
    assert!(st.unfinished.is_empty());

    // A resumed rollback logging its remaining plan again keeps what was
    // undone; finishing it ends the need.
    log.rollback(&["scale"])
        .undone("scale", false)
        .push(
            None,
            EventKind::RollbackFinished {
                clean: false,
                failed_undos: vec!["scale".into()],
                after_rollback_verified: None,
            },
        )
        .run_finished(Outcome::RollbackIncomplete);
    let st = replay(&log.events);
    let rb = st.rollback.as_ref().expect("rollback");
    assert_eq!(rb.plan.len(), 2);
    assert!(rb.remaining().is_empty());
    assert!(!rb.undone["scale"].ok);
    assert_eq!(rb.finished, Some(false));
    assert!(st.in_doubt.is_empty());
    assert!(!st.needs_rollback());
    assert_eq!(st.finished, Some((Outcome::RollbackIncomplete, 5)));
}

#[test]
fn a_cancelled_run_needs_its_rollback() {
    let mut log = Log::new("r");
    log.step("scale").push(
        None,
        EventKind::CancelRequested {
            stage: "first".into(),
        },
    );
    let st = replay(&log.events);
    assert_eq!(st.cancelled, ["first"]);
    assert!(st.needs_rollback());
}

#[test]
fn approvals_and_handlers_are_recorded() {
    let mut log = Log::new("r");
    log.ready("drain")
        .push(
            Some("drain"),
            EventKind::ApprovalGiven {
                by: "alice".into(),
                reason: None,
            },
        )
        .push(
            Some("on_failure"),
            EventKind::HandlerStarted {
                handler: "on_failure".into(),
                actions: 1,
            },
        )
        .start("on_failure", Phase::Handler, None, 1);
    let st = replay(&log.events);
    assert_eq!(st.approvals["drain"], (true, "alice".to_owned()));
    assert_eq!(st.handlers_started, ["on_failure"]);
    assert_eq!(st.in_doubt[0].phase, Phase::Handler);
}

#[test]
fn odd_sequences_are_warnings_not_failures() {
    let mut log = Log::new("r");
    log.finish("ghost", Phase::Action, None, 1, ActionStatus::Ok)
        .push(
            Some("x"),
            EventKind::UndoFinished {
                ok: true,
                attempts: 1,
                items: vec![],
                error: None,
            },
        );
    let st = replay(&log.events);
    assert_eq!(st.warnings.len(), 2, "{:?}", st.warnings);
    let st = replay(&[]);
    assert_eq!(st.run_id, None);
    assert_eq!(st.last_seq, 0);
}

fn write_run(runs: &std::path::Path, log: &Log) -> JournalWriter {
    let mut w =
        JournalWriter::create(&runs.join(&log.run_id), Durability::WriteAhead).expect("create");
    for e in &log.events {
        w.append(e).expect("append");
    }
    w
}

#[test]
fn a_torn_action_finished_leaves_the_action_in_doubt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::new("r");
    log.step("scale")
        .ready("drain")
        .start("drain", Phase::Action, None, 1)
        .finish("drain", Phase::Action, None, 1, ActionStatus::Ok);
    drop(write_run(dir.path(), &log));
    // Power cut while writing the action_finished line.
    let path = dir.path().join("r").join(JOURNAL_FILE);
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 20]).expect("tear");
    let read = read_journal(&path).expect("read");
    assert!(read.torn_tail.is_some());
    let st = replay(&read.events);
    assert_eq!(st.in_doubt.len(), 1);
    assert_eq!(st.in_doubt[0].node, "drain");
    let s = run_summary(&dir.path().join("r"));
    assert_eq!(s.state, RunStatus::Interrupted);
    assert!(
        s.problem.as_deref().unwrap_or("").contains("incomplete"),
        "{s:?}"
    );
    assert_eq!(s.last_event.expect("last").kind, "action_started");
}

#[test]
fn runs_are_listed_with_their_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path();
    let mut ok = Log::new("2024-a-ok");
    ok.step("scale").run_finished(Outcome::Succeeded);
    let mut rolled = Log::new("2024-b-rolled");
    rolled.step("scale").run_finished(Outcome::RolledBack);
    let mut incomplete = Log::new("2024-c-incomplete");
    incomplete.run_finished(Outcome::RollbackIncomplete);
    let mut cancelled = Log::new("2024-d-cancelled");
    cancelled.run_finished(Outcome::Cancelled);
    let mut crashed = Log::new("2024-e-crashed");
    crashed
        .ready("drain")
        .start("drain", Phase::Action, None, 1);
    let mut live = Log::new("2024-f-live");
    live.ready("drain");
    for l in [&ok, &rolled, &incomplete, &cancelled, &crashed] {
        let mut w = write_run(runs, l);
        runbook::events::Sink::finish(&mut w).expect("finish");
    }
    let live_writer = write_run(runs, &live); // still running: holds its journal
    std::fs::create_dir_all(runs.join("locks")).expect("locks dir");
    std::fs::create_dir_all(runs.join("empty-dir")).expect("a dir without a journal");
    let corrupt = runs.join("2024-g-corrupt");
    std::fs::create_dir_all(&corrupt).expect("mkdir");
    std::fs::write(corrupt.join(JOURNAL_FILE), b"garbage\nmore garbage\n").expect("write");

    let list = list_runs(runs).expect("list");
    let states: Vec<(&str, RunStatus)> = list.iter().map(|r| (r.id.as_str(), r.state)).collect();
    assert_eq!(
        states,
        [
            ("2024-f-live", RunStatus::Running),
            ("2024-e-crashed", RunStatus::Interrupted),
            ("2024-d-cancelled", RunStatus::Cancelled),
            ("2024-c-incomplete", RunStatus::RollbackIncomplete),
            ("2024-b-rolled", RunStatus::RolledBack),
            ("2024-a-ok", RunStatus::Succeeded),
            // Unreadable: no start time, listed last, with the problem.
            ("2024-g-corrupt", RunStatus::Interrupted),
        ]
    );
    let crashed = &list[1];
    assert_eq!(crashed.runbook.as_deref(), Some("rollback-web"));
    assert_eq!(crashed.started.as_deref(), Some("2024-05-01T10:01:00.000Z"));
    let last = crashed.last_event.as_ref().expect("last");
    assert_eq!(last.to_string(), "#3 action_started drain");
    assert!(list[6].problem.as_deref().unwrap_or("").contains("line 1"));
    assert_eq!(
        RunStatus::RollbackIncomplete.to_string(),
        "rollback_incomplete"
    );

    drop(live_writer); // the process dies
    let list = list_runs(runs).expect("list");
    assert_eq!(list[0].state, RunStatus::Interrupted);
    assert!(list_runs(&runs.join("missing")).expect("none").is_empty());
}

#[test]
fn an_action_finished_without_its_steps_outcome_is_in_doubt() {
    // The run died after the action's end (not fsynced on its own) reached
    // the file, before the step's outcome: the step is in doubt, never
    // silently run again.
    let mut log = Log::new("r");
    log.step("scale")
        .ready("drain")
        .start("drain", Phase::Action, None, 1)
        .finish("drain", Phase::Action, None, 1, ActionStatus::Ok);
    let st = replay(&log.events);
    assert!(!st.is_completed("drain"));
    assert_eq!(st.in_doubt.len(), 1, "{:?}", st.in_doubt);
    let d = &st.in_doubt[0];
    assert_eq!(
        (d.node.as_str(), d.phase, d.attempt),
        ("drain", Phase::Action, 1)
    );
    assert!(d.finished);
    assert_eq!(st.in_doubt_with_effect().count(), 1);
    // Its outcome settles it.
    log.succeeded("drain");
    assert!(replay(&log.events).in_doubt.is_empty());

    // A failed attempt that ended is not in doubt (the step failed or will
    // retry); neither is a read.
    let mut log = Log::new("r");
    log.ready("drain")
        .start("drain", Phase::Action, None, 1)
        .finish("drain", Phase::Action, None, 1, ActionStatus::Failed);
    assert!(replay(&log.events).in_doubt.is_empty());

    // The same for an undo whose undo_finished is missing.
    let mut log = Log::new("r");
    log.step("scale").failed("drain", false).push(
        None,
        EventKind::RollbackStarted {
            reason: "drain failed".into(),
            plan: vec![runbook::events::UndoPlanEntry {
                node: "scale".into(),
                items: vec![],
            }],
            not_undone: vec![],
        },
    );
    log.start("scale", Phase::Undo, None, 1).finish(
        "scale",
        Phase::Undo,
        None,
        1,
        ActionStatus::Ok,
    );
    let st = replay(&log.events);
    assert_eq!(st.in_doubt.len(), 1, "{:?}", st.in_doubt);
    assert_eq!(
        (st.in_doubt[0].phase, st.in_doubt[0].finished),
        (Phase::Undo, true)
    );
}

#[test]
fn the_honest_outcomes_are_replayed_and_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path();
    let cases = [
        ("2024-a-kept", Outcome::Kept, RunStatus::Kept, 6),
        (
            "2024-b-nothing",
            Outcome::NothingChanged,
            RunStatus::NothingChanged,
            7,
        ),
        (
            "2024-c-human",
            Outcome::NeedsHuman,
            RunStatus::NeedsHuman,
            8,
        ),
    ];
    for (id, outcome, _, code) in cases {
        let mut log = Log::new(id);
        log.step("scale").run_finished(outcome);
        // Replay derives the outcome and exit code the run wrote.
        assert_eq!(replay(&log.events).finished, Some((outcome, code)));
        let mut w = write_run(runs, &log);
        runbook::events::Sink::finish(&mut w).expect("finish");
    }
    let list = list_runs(runs).expect("list");
    let states: Vec<(&str, RunStatus)> = list.iter().map(|r| (r.id.as_str(), r.state)).collect();
    let expected: Vec<(&str, RunStatus)> = cases.iter().rev().map(|c| (c.0, c.2)).collect();
    assert_eq!(states, expected);
    let shown: Vec<String> = list.iter().map(|r| r.state.to_string()).collect();
    assert_eq!(shown, ["needs_human", "nothing_changed", "kept"]);
}
