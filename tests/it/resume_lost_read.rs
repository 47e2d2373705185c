//! The outcome of a step that only reads is not fsynced before the next
//! step starts (docs/decision-log.md, "Durability"): a power cut can lose
//! it. `runbook resume` must then run the read again, without asking,
//! and never run again a step that changed something.

use crate::support;

use support::{text, CliEnv};

const RUNBOOK: &str = r#"
runbook lost_read {
  step probe { run "echo x >> probe.marker" readonly }
  step change {
    run  "echo x >> change.marker"
    undo "rm change.marker"
  }
}
"#;

#[test]
fn a_read_whose_outcome_was_lost_runs_again_without_a_question() {
    let env = CliEnv::new(&[("r.runbook", RUNBOOK)], None);
    let dir = env.dir.as_path();
    let out = env.out(&["run", "r.runbook", "--runs-dir", "runs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A power cut just before `change` started: what was not fsynced is
    // lost, from `probe`'s outcome on. Cut the journal after its
    // action_finished line.
    let run_id = env.first_run();
    let path = env.journal_path(&run_id);
    let journal = std::fs::read_to_string(&path).unwrap();
    let mut kept = String::new();
    for line in journal.lines() {
        kept.push_str(line);
        kept.push('\n');
        if line.contains("\"node\":\"probe\"") && line.contains("\"kind\":\"action_finished\"") {
            break;
        }
    }
    assert!(kept.len() < journal.len(), "the cut removes the rest");
    std::fs::write(&path, kept).unwrap();
    std::fs::remove_file(dir.join("change.marker")).unwrap();

    let out = env.out(&["resume", &run_id, "--runs-dir", "runs"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(env.count("probe.marker"), 2, "the read ran again: {all}");
    assert_eq!(env.count("change.marker"), 1, "{all}");
    let v = env.out(&["verify-journal", &run_id, "--runs-dir", "runs"]);
    assert!(v.status.success(), "{v:?}");
}
