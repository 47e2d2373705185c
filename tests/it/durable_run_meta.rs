//! `run.json` is chained into the journal (its SHA-256 in the first line):
//! `resume` and `verify-journal` refuse a swapped `run.json`. And a last
//! journal line that ends with its newline but does not read (or breaks
//! the chain) is tampering, refused, never cut like a torn write.

use crate::support;

use runbook::durable::journal::{
    read_journal, Durability, JournalError, JournalWriter, RUN_JSON_KEY,
};
use runbook::durable::run_meta;
use runbook::events::{Event, EventKind, Mode};
use std::sync::Arc;
use support::{text, CliEnv};

const RUNBOOK: &str = r#"
runbook meta {
  input dir: string
  step a {
    run "echo x >> {{dir}}/a.marker"
    undo "true"
  }
}
"#;

const OTHER: &str = r#"
runbook other {
  input dir: string
  step z {
    run "echo x >> {{dir}}/z.marker"
    undo "true"
  }
}
"#;

fn ev(seq: u64, kind: EventKind) -> Event {
    Event {
        seq,
        ts: Arc::from("2026-01-01T00:00:00.000Z"),
        t_ms: seq,
        run_id: Arc::from("r-1"),
        node: None,
        kind,
    }
}

fn started() -> EventKind {
    EventKind::RunStarted {
        format: runbook::events::JOURNAL_FORMAT,
        runbook: "meta".into(),
        title: None,
        mode: Mode::Live,
        inputs: Default::default(),
        secrets: vec![],
        source_sha256: "0".repeat(64),
        parallel: 1,
        notes: vec![],
    }
}

#[test]
fn the_journal_records_run_json_and_check_refuses_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path();
    let mut w = JournalWriter::create(run_dir, Durability::WriteAhead).expect("create");
    let sha = run_meta::write(run_dir, b"{\"lock_key\":\"db\"}").expect("write run.json");
    w.record_run_json(&sha).expect("before the first line");
    let events = vec![
        ev(1, started()),
        ev(
            2,
            EventKind::Warning {
                message: "w".into(),
            },
        ),
    ];
    for e in &events {
        w.append(e).expect("append");
    }
    assert!(
        w.record_run_json(&sha).is_err(),
        "only before the first line"
    );
    drop(w);

    // The hash is in the first line, inside what the chain covers, and
    // readers of events ignore it.
    let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).expect("journal");
    let first = journal.lines().next().expect("a line");
    assert!(
        first.ends_with(&format!(",\"{RUN_JSON_KEY}\":\"{sha}\"}}")),
        "{first}"
    );
    assert_eq!(
        read_journal(&run_dir.join("journal.jsonl"))
            .expect("reads")
            .events,
        events
    );
    let ok = run_meta::check(run_dir).expect("matches");
    assert_eq!(ok.run_json, b"{\"lock_key\":\"db\"}");
    assert_eq!(ok.verified.run_json_sha256.as_deref(), Some(sha.as_str()));
    assert!(ok.warning.is_none());

    // Swapped: refused, saying which file and what to do.
    std::fs::write(run_dir.join("run.json"), b"{\"lock_key\":\"other\"}").expect("swap");
    match run_meta::check(run_dir) {
        Err(e @ JournalError::RunMeta { .. }) => {
            let m = e.to_string();
            assert!(m.contains("run.json does not match the journal"), "{m}");
            assert!(m.contains(&sha), "{m}");
            assert!(m.contains("start a new one"), "{m}");
        }
        other => panic!("a swapped run.json must be refused: {other:?}"),
    }
}

fn finished_run(env: &CliEnv) -> String {
    let out = env.run_here("meta.runbook", &[]).output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    env.first_run()
}

#[test]
fn resume_and_verify_journal_refuse_a_swapped_run_json() {
    let env = CliEnv::new(&[("meta.runbook", RUNBOOK), ("other.runbook", OTHER)], None);
    let id = finished_run(&env);
    let run_json = env.dir.join("runs").join(&id).join("run.json");

    let v = env.out(&["verify-journal", &id, "--runs-dir", "runs"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert!(
        text(&v).contains("run.json matches the journal"),
        "{}",
        text(&v)
    );
    // Untouched, resume gets past run.json (and refuses a finished run).
    let r = env.out(&["resume", &id, "--runs-dir", "runs"]);
    assert!(text(&r).contains("already finished"), "{}", text(&r));

    // Point run.json at another runbook and another lock key.
    let original = std::fs::read_to_string(&run_json).expect("run.json");
    let swapped = original
        .replace("meta.runbook", "other.runbook")
        .replace("\"lock_key\": \"meta\"", "\"lock_key\": \"elsewhere\"");
    assert_ne!(swapped, original);
    std::fs::write(&run_json, swapped).expect("swap");
    let journal_before = env.journal(&id);

    let v = env.out(&["verify-journal", &id, "--runs-dir", "runs"]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(
        text(&v).contains("run.json does not match the journal"),
        "{}",
        text(&v)
    );
    let r = env.out(&["resume", &id, "--runs-dir", "runs"]);
    assert_eq!(r.status.code(), Some(3), "{}", text(&r));
    let t = text(&r);
    assert!(t.contains("run.json does not match the journal"), "{t}");
    assert!(
        t.contains(&format!("runs/{id}/run.json")),
        "names the file: {t}"
    );
    assert_eq!(env.journal(&id), journal_before, "the journal is untouched");
    assert_eq!(env.count("z.marker"), 0, "the other runbook never ran");
}

#[test]
fn resume_refuses_a_complete_last_line_that_does_not_read_and_cuts_nothing() {
    let env = CliEnv::new(&[("meta.runbook", RUNBOOK)], None);
    let id = finished_run(&env);
    let path = env.journal_path(&id);
    let good = std::fs::read(&path).expect("journal");

    // Garbage with its newline, an edited last line (chain broken, still
    // JSON), and an event line that does not parse as an event.
    let mut garbage = good.clone();
    garbage.extend_from_slice(b"{\"not\":\"an event\"}\n");
    let mut edited = good.clone();
    let at = edited.len() - 3;
    edited[at] = if edited[at] == b'1' { b'2' } else { b'1' };
    let mut zeros = good.clone();
    zeros.extend_from_slice(&[0u8; 24]);
    zeros.push(b'\n');
    for (what, bytes) in [
        ("garbage", &garbage),
        ("edited", &edited),
        ("zeros", &zeros),
    ] {
        std::fs::write(&path, bytes).expect("write");
        let r = env.out(&["resume", &id, "--runs-dir", "runs"]);
        assert_eq!(r.status.code(), Some(3), "{what}: {}", text(&r));
        let t = text(&r);
        assert!(
            t.contains("hash chain breaks at line") || t.contains("is corrupt at line"),
            "{what}: {t}"
        );
        assert!(!t.contains("already finished"), "{what}: {t}");
        assert_eq!(
            &std::fs::read(&path).expect("journal"),
            bytes,
            "{what}: nothing cut"
        );
        let v = env.out(&["verify-journal", &id, "--runs-dir", "runs"]);
        assert_eq!(v.status.code(), Some(1), "{what}: {}", text(&v));
    }

    // The same line without its newline is a torn write: resume cuts it
    // (and then finds the run finished).
    let mut torn = good.clone();
    torn.extend_from_slice(b"{\"prev\":\"00");
    std::fs::write(&path, &torn).expect("write");
    let r = env.out(&["resume", &id, "--runs-dir", "runs"]);
    let t = text(&r);
    assert!(t.contains("incomplete"), "{t}");
    assert!(t.contains("already finished"), "{t}");
}
