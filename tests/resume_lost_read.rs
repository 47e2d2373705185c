//! The outcome of a step that only reads is not fsynced before the next
//! step starts (docs/decision-log.md, "Durability"): a power cut can lose
//! it. `runbook resume` must then run the read again, without asking,
//! and never run again a step that changed something.

use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_runbook");

const RUNBOOK: &str = r#"
runbook lost_read {
  step probe { run "echo x >> probe.marker" readonly }
  step change {
    run  "echo x >> change.marker"
    undo "rm change.marker"
  }
}
"#;

fn runbook(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runbook runs")
}

fn count(dir: &std::path::Path, marker: &str) -> usize {
    std::fs::read_to_string(dir.join(marker))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn a_read_whose_outcome_was_lost_runs_again_without_a_question() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("r.runbook"), RUNBOOK).unwrap();
    let out = runbook(dir, &["run", "r.runbook", "--runs-dir", "runs"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // A power cut just before `change` started: what was not fsynced is
    // lost, from `probe`'s outcome on. Cut the journal after its
    // action_finished line.
    let run_id = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n != "locks")
        .expect("a run directory");
    let path = dir.join("runs").join(&run_id).join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut kept = String::new();
    for line in text.lines() {
        kept.push_str(line);
        kept.push('\n');
        if line.contains("\"node\":\"probe\"") && line.contains("\"kind\":\"action_finished\"") {
            break;
        }
    }
    assert!(kept.len() < text.len(), "the cut removes the rest");
    std::fs::write(&path, kept).unwrap();
    std::fs::remove_file(dir.join("change.marker")).unwrap();

    let out = runbook(dir, &["resume", &run_id, "--runs-dir", "runs"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(count(dir, "probe.marker"), 2, "the read ran again: {all}");
    assert_eq!(count(dir, "change.marker"), 1, "{all}");
    let v = runbook(dir, &["verify-journal", &run_id, "--runs-dir", "runs"]);
    assert!(v.status.success(), "{v:?}");
}
