//! The one JSON form of an event (`src/events/json.rs`, what the journal
//! and `--output json` write) must not change: the journal's hash chain
//! covers its bytes, and journals written before must still verify and
//! read back. `event_json.jsonl` holds the bytes the events below were
//! written as before the serializer was rewritten by hand (serde's derived
//! code with `#[serde(flatten)]`), one line per event.

use proptest::prelude::*;
use runbook::events::{ActionStatus, CheckStatus, Event, EventKind, Phase};
use runbook::plan::Effect;
use std::sync::Arc;
use std::time::Duration;

const GOLDEN: &str = include_str!("../event_json.jsonl");

/// One event of every kind: first with every optional field present, then
/// (where a kind has any) with each one absent.
fn cases() -> Vec<Event> {
    use runbook::events::{
        ConditionPurpose, Counts, ExpectResult, Mode, NotUndone, Outcome, UndoPlanEntry, ValueRead,
    };
    use runbook::plan::CaptureFormat;
    use serde_json::json;
    let text = "quote \" backslash \\ slash / tab\t nul\u{0} é 🚀";
    let s = || text.to_string();
    let read = || ValueRead {
        name: "live.revision".into(),
        value: json!({"a": [1, 2.5, null, true], "b": text}),
    };
    let inputs = || {
        let mut m = indexmap::IndexMap::new();
        m.insert("version".to_string(), json!("1.2.3"));
        m.insert("replicas".to_string(), json!(3));
        m
    };
    let observed = || {
        let mut m = indexmap::IndexMap::new();
        m.insert("status".to_string(), json!(200));
        m.insert("value".to_string(), json!({"k": text}));
        m
    };
    let kinds = vec![
        EventKind::RunStarted {
            format: 1,
            runbook: "deploy".into(),
            title: Some(s()),
            mode: Mode::DryRun,
            inputs: inputs(),
            secrets: vec!["token".into()],
            source_sha256: "ab".repeat(32),
            parallel: 4,
            notes: vec![s(), "two".into()],
        },
        EventKind::RunStarted {
            format: 1,
            runbook: "deploy".into(),
            title: None,
            mode: Mode::Live,
            inputs: indexmap::IndexMap::new(),
            secrets: vec![],
            source_sha256: String::new(),
            parallel: 1,
            notes: vec![],
        },
        EventKind::NodeReady {
            deps: vec!["a".into(), s()],
        },
        EventKind::NodeReady { deps: vec![] },
        EventKind::ConditionEvaluated {
            purpose: ConditionPurpose::ForList,
            expr: "live.revision == inputs.version".into(),
            values: vec![read(), read()],
            result: Some(false),
            error: Some(s()),
            note: Some("dry run".into()),
        },
        EventKind::ConditionEvaluated {
            purpose: ConditionPurpose::AfterRollback,
            expr: "x".into(),
            values: vec![],
            result: None,
            error: None,
            note: None,
        },
        EventKind::NodeSkipped {
            reason: s(),
            values: vec![read()],
        },
        EventKind::ActionStarted {
            adapter: "shell".into(),
            phase: Phase::Undo,
            attempt: 2,
            item: Some(s()),
            effect: Effect::Irreversible,
            request: s(),
            timeout: Some(Duration::from_millis(330_250)),
            simulated: true,
        },
        EventKind::ActionStarted {
            adapter: "http".into(),
            phase: Phase::Handler,
            attempt: 1,
            item: None,
            effect: Effect::Read,
            request: String::new(),
            timeout: None,
            simulated: false,
        },
        EventKind::ActionFinished {
            adapter: "shell".into(),
            phase: Phase::Check,
            attempt: u32::MAX,
            item: Some(s()),
            status: ActionStatus::Timeout,
            exit: Some(i32::MIN),
            http_status: Some(503),
            elapsed_ms: u64::MAX,
            output: Some(s()),
            error: Some(s()),
        },
        EventKind::ActionFinished {
            adapter: "approve".into(),
            phase: Phase::Action,
            attempt: 1,
            item: None,
            status: ActionStatus::Cancelled,
            exit: None,
            http_status: None,
            elapsed_ms: 0,
            output: None,
            error: None,
        },
        EventKind::CheckEvaluated {
            check: "errors_low".into(),
            probe: s(),
            status: CheckStatus::NoData,
            passed: true,
            observed: observed(),
            expects: vec![
                ExpectResult {
                    expr: "value < 0.01".into(),
                    result: Some(true),
                    values: vec![read()],
                    error: Some(s()),
                },
                ExpectResult {
                    expr: "status == 200".into(),
                    result: None,
                    values: vec![],
                    error: None,
                },
            ],
            error: Some(s()),
            note: Some(s()),
        },
        EventKind::CheckEvaluated {
            check: "c".into(),
            probe: String::new(),
            status: CheckStatus::Error,
            passed: false,
            observed: indexmap::IndexMap::new(),
            expects: vec![],
            error: None,
            note: None,
        },
        EventKind::RetryScheduled {
            attempt: 3,
            delay_ms: 1500,
            reason: s(),
            item: Some(s()),
        },
        EventKind::RetryScheduled {
            attempt: 2,
            delay_ms: 0,
            reason: String::new(),
            item: None,
        },
        EventKind::Timeout {
            phase: Phase::Action,
            attempt: 1,
            after_ms: 300_000,
            item: Some(s()),
        },
        EventKind::Timeout {
            phase: Phase::Check,
            attempt: 4,
            after_ms: 1,
            item: None,
        },
        EventKind::VerifyPoll {
            poll: 7,
            passed: false,
            streak: 0,
            needed: 3,
            remaining_ms: 42,
        },
        EventKind::CaptureStored {
            name: "rev".into(),
            format: CaptureFormat::Json,
            value: json!({"nested": {"list": [text, 1e100, -0.0]}}),
        },
        EventKind::CaptureStored {
            name: "out".into(),
            format: CaptureFormat::Text,
            value: json!(text),
        },
        EventKind::NodeSucceeded {
            attempts: 2,
            elapsed_ms: 17,
            failed_items: vec![s(), "b".into()],
        },
        EventKind::NodeSucceeded {
            attempts: 1,
            elapsed_ms: 0,
            failed_items: vec![],
        },
        EventKind::NodeFailed {
            reason: s(),
            attempts: 3,
            continued: true,
        },
        EventKind::RollbackStarted {
            reason: s(),
            plan: vec![
                UndoPlanEntry {
                    node: "scale".into(),
                    items: vec![s(), "b".into()],
                },
                UndoPlanEntry {
                    node: "deploy".into(),
                    items: vec![],
                },
            ],
            not_undone: vec![NotUndone {
                node: "notify".into(),
                reason: s(),
            }],
        },
        EventKind::UndoFinished {
            ok: false,
            attempts: 2,
            items: vec![s()],
            error: Some(s()),
        },
        EventKind::UndoFinished {
            ok: true,
            attempts: 1,
            items: vec![],
            error: None,
        },
        EventKind::RollbackFinished {
            clean: false,
            failed_undos: vec!["scale".into()],
            after_rollback_verified: Some(false),
        },
        EventKind::RollbackFinished {
            clean: true,
            failed_undos: vec![],
            after_rollback_verified: None,
        },
        EventKind::NotificationSent {
            channel: "ops".into(),
            text: s(),
            ok: false,
            http_status: Some(500),
            simulated: false,
        },
        EventKind::NotificationSent {
            channel: "ops".into(),
            text: String::new(),
            ok: true,
            http_status: None,
            simulated: true,
        },
        EventKind::ApprovalAsked {
            message: s(),
            timeout: Some(Duration::from_secs(3600)),
            preapproved: false,
        },
        EventKind::ApprovalAsked {
            message: String::new(),
            timeout: None,
            preapproved: true,
        },
        EventKind::ApprovalGiven {
            by: "alice".into(),
            reason: Some(s()),
        },
        EventKind::ApprovalGiven {
            by: "--approve".into(),
            reason: None,
        },
        EventKind::ApprovalRefused {
            by: s(),
            reason: Some(s()),
        },
        EventKind::ApprovalRefused {
            by: "bob".into(),
            reason: None,
        },
        EventKind::HandlerStarted {
            handler: "on_failure".into(),
            actions: 2,
        },
        EventKind::CancelRequested {
            stage: "second".into(),
        },
        EventKind::Warning { message: s() },
        EventKind::RunFinished {
            outcome: Outcome::RollbackIncomplete,
            exit_code: 5,
            elapsed_ms: 1234,
            failed_step: Some("deploy".into()),
            failure_reason: Some(s()),
            counts: Counts {
                succeeded: 1,
                failed: 2,
                skipped: 3,
                not_run: 4,
                undone: 5,
                undo_failed: 6,
                handler_failed: 0,
            },
        },
        EventKind::RunFinished {
            outcome: Outcome::Succeeded,
            exit_code: 0,
            elapsed_ms: 0,
            failed_step: None,
            failure_reason: None,
            counts: Counts::default(),
        },
        // Kinds added after the serializer was rewritten: their lines were
        // written by it when they were added.
        EventKind::BranchTaken {
            branch: 1,
            arm: Some(0),
            taken: format!("if {text}"),
            item: None,
            skipped: vec![s(), "b".into()],
        },
        EventKind::BranchTaken {
            branch: 0,
            arm: None,
            taken: "none".into(),
            item: None,
            skipped: Vec::new(),
        },
        EventKind::ApprovalAttemptRefused {
            by: "bob".into(),
            via: "web".into(),
            reason: Some(s()),
            why: format!("`bob` started this run: {text}"),
        },
        EventKind::RunTakenOver {
            by: "worker bastion-2:4121".into(),
            host: "bastion-2".into(),
            pid: 4121,
            from_host: "bastion-1".into(),
            from_user: "alice".into(),
            from_pid: 977,
            silent_ms: 61_250,
            owner_gone: false,
            old_epoch: 1,
            new_epoch: 2,
        },
        EventKind::AttemptAbandoned {
            ladder: 0,
            attempt: 1,
            label: "attempt 2 (else try)".into(),
            step: s(),
            reason: format!("verify did not hold: {text}"),
            plan: vec![UndoPlanEntry {
                node: s(),
                items: vec![],
            }],
            not_undone: vec![NotUndone {
                node: "b".into(),
                reason: "it has no undo".into(),
            }],
        },
        EventKind::AttemptUndone {
            ladder: 0,
            attempt: 1,
            clean: false,
            failed_undos: vec![s()],
            next: None,
        },
        EventKind::AttemptUndone {
            ladder: 2,
            attempt: 0,
            clean: true,
            failed_undos: vec![],
            next: Some("attempt 2 (else)".into()),
        },
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Event {
            seq: u64::try_from(i).unwrap_or(0) + 1,
            ts: Arc::from("2026-11-22T22:12:53.810Z"),
            t_ms: u64::try_from(i).unwrap_or(0) * 1000,
            run_id: Arc::from("20261122-221253-ab12"),
            node: (i % 3 != 0).then(|| Arc::from(if i % 3 == 1 { "step" } else { text })),
            kind,
        })
        .collect()
}

#[test]
fn every_kind_is_written_as_before() {
    let golden: Vec<&str> = GOLDEN.lines().collect();
    let cases = cases();
    assert_eq!(cases.len(), golden.len(), "one golden line per case");
    for (ev, expected) in cases.iter().zip(golden) {
        let got = serde_json::to_string(ev).expect("serialize");
        assert_eq!(got, expected, "{}", ev.kind.name());
    }
    let mut kinds: Vec<&str> = cases.iter().map(|ev| ev.kind.name()).collect();
    kinds.dedup();
    assert_eq!(kinds, EventKind::ALL, "every kind, in the documented order");
}

#[test]
fn every_golden_line_reads_back_as_its_event() {
    for (ev, line) in cases().into_iter().zip(GOLDEN.lines()) {
        let back: Event = serde_json::from_str(line).expect("deserialize");
        assert_eq!(back, ev);
    }
}

/// The kinds every step emits, with arbitrary text in every string field.
fn step_kinds(text: &str) -> Vec<EventKind> {
    let s = || text.to_string();
    vec![
        EventKind::NodeReady {
            deps: vec![s(), "b".into()],
        },
        EventKind::ActionStarted {
            adapter: s().into(),
            phase: Phase::Action,
            attempt: 1,
            item: Some(s()),
            effect: Effect::Write,
            request: s(),
            timeout: Some(Duration::from_secs(300)),
            simulated: false,
        },
        EventKind::ActionFinished {
            adapter: "shell".into(),
            phase: Phase::Undo,
            attempt: 2,
            item: None,
            status: ActionStatus::Failed,
            exit: Some(-1),
            http_status: None,
            elapsed_ms: 5,
            output: Some(s()),
            error: Some(s()),
        },
        EventKind::NodeSucceeded {
            attempts: 1,
            elapsed_ms: 0,
            failed_items: vec![s()],
        },
        EventKind::Warning { message: s() },
    ]
}

proptest! {
    /// Any text is escaped as serde_json escapes a string, and reads back.
    #[test]
    fn any_text_round_trips(text in any::<String>()) {
        for kind in step_kinds(&text) {
            let ev = Event {
                seq: 1,
                ts: Arc::from("2026-11-22T22:12:53.810Z"),
                t_ms: 0,
                run_id: Arc::from(text.as_str()),
                node: Some(Arc::from(text.as_str())),
                kind,
            };
            let line = serde_json::to_string(&ev).expect("serialize");
            let quoted = serde_json::to_string(&text).expect("string");
            let run_id = format!(r#""run_id":{quoted},"node":{quoted},"kind":"#);
            prop_assert!(line.contains(&run_id), "{}", line);
            let back: Event = serde_json::from_str(&line).expect("deserialize");
            prop_assert_eq!(back, ev);
        }
    }
}
