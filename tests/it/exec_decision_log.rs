//! The journal's schema is documented, and what is written parses back.

use crate::exec_support;

use exec_support::*;
use runbook::events::{Event, EventKind, Mode};

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/decision-log.md")).unwrap()
}

#[test]
fn every_event_kind_is_documented() {
    let doc = doc();
    let missing: Vec<&str> = EventKind::ALL
        .iter()
        .filter(|k| !doc.contains(&format!("### `{k}`")))
        .copied()
        .collect();
    assert!(missing.is_empty(), "undocumented event kinds: {missing:?}");
    // And no heading documents a kind that does not exist.
    for line in doc.lines() {
        if let Some(k) = line.strip_prefix("### `").and_then(|l| l.strip_suffix('`')) {
            assert!(
                EventKind::ALL.contains(&k),
                "documented but not a kind: {k}"
            );
        }
    }
}

#[test]
fn every_exit_code_is_documented() {
    let doc = doc();
    for (code, _) in runbook::exit::ALL {
        assert!(
            doc.contains(&format!("| {code} ")),
            "exit code {code} is not documented"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_journal_is_one_parseable_event_per_line_in_seq_order() {
    let text = r#"
runbook j {
  input n: int = 1
  check ok { shell "true" expect exit == 0 }
  channel log = console
  step a { when n == 1 and ok run "a" capture text as out undo "undo a" }
  step b { run "b FAIL" retry 1 backoff 1s }
  on failure { notify log "x" }
}
"#;
    let ran = run(
        compile(text),
        options(Mode::Live),
        &[],
        adapters(FakeShell::failing_on_marker(), Default::default()),
    )
    .await;
    let events: Vec<Event> = ran
        .journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events, ran.events);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        assert_eq!(&*e.run_id, "test-run");
    }
    let kinds = ran.kinds();
    for k in [
        "run_started",
        "node_ready",
        "check_evaluated",
        "condition_evaluated",
        "action_started",
        "action_finished",
        "capture_stored",
        "node_succeeded",
        "retry_scheduled",
        "node_failed",
        "rollback_started",
        "undo_finished",
        "rollback_finished",
        "handler_started",
        "notification_sent",
        "run_finished",
    ] {
        assert!(kinds.contains(&k), "no {k} in {kinds:?}");
    }
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"));
    // The `kind` field and the documented common fields are on every line.
    for l in ran.journal.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        for f in ["seq", "ts", "t_ms", "run_id", "kind"] {
            assert!(v.get(f).is_some(), "{f} missing in {l}");
        }
    }
}

#[test]
fn a_torn_last_line_is_ignored_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("journal.jsonl");
    std::fs::write(
        &p,
        "{\"seq\":1,\"ts\":\"x\",\"t_ms\":0,\"run_id\":\"r\",\"kind\":\"warning\",\"message\":\"m\"}\n{\"seq\":2,\"ts",
    )
    .unwrap();
    let read = runbook::durable::journal::read_journal(&p).unwrap();
    assert_eq!(read.events.len(), 1);
    assert!(read.torn_tail.is_some());
    assert_eq!(read.warnings.len(), 1);
}
