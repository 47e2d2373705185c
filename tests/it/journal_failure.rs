//! When the journal cannot be written (a full disk), nothing is changed
//! that the journal does not record: a change whose start could not be
//! written is not started, and neither is anything after it, undos
//! included. The run stops and says so; `runbook resume` later picks up
//! from a record that matches the world.
//!
//! The disk fills up for real: the process runs under `ulimit -f` (the
//! largest file it may write, in 512-byte blocks) with SIGXFSZ ignored, so
//! a journal write past the limit fails with EFBIG as on a full disk. The
//! limit is moved over the whole run, so that the failure hits every kind of
//! event in turn.

use crate::support;
use support::{text, CliEnv};

const RUNBOOK: &str = r#"
runbook journal_full {
  step s0 {
    run "echo s0 >> actions.log"
    undo "echo undo-s0 >> actions.log"
  }
  step s1 {
    run "echo s1 >> actions.log"
    undo "echo undo-s1 >> actions.log"
  }
  step s2 {
    run "echo s2 >> actions.log"
    undo "echo undo-s2 >> actions.log"
  }
  step s3 {
    run "echo s3 >> actions.log"
    undo "echo undo-s3 >> actions.log"
  }
}
"#;

/// The `action_started` lines of the journal, as the actions.log names
/// them: `s1` for a step's action, `undo-s1` for its undo.
fn journaled_starts(journal: &str) -> Vec<String> {
    journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "action_started")
        .map(|v| {
            let node = v["node"].as_str().unwrap_or_default().to_owned();
            match v["phase"].as_str() {
                Some("undo") => format!("undo-{node}"),
                _ => node,
            }
        })
        .collect()
}

#[test]
fn no_change_is_made_that_the_journal_does_not_record() {
    let mut full_disks = 0;
    for blocks in 1..=14 {
        let env = CliEnv::new(&[("full.runbook", RUNBOOK)], None);
        let out = std::process::Command::new("/bin/sh")
            .current_dir(&env.dir)
            .env("NO_COLOR", "1")
            .env("RUNBOOK_STATE_DIR", env.state_dir())
            .stdin(std::process::Stdio::null())
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" run full.runbook --runs-dir runs"
            ))
            .arg(env!("CARGO_BIN_EXE_runbook"))
            .output()
            .expect("sh runs");
        let ran: Vec<String> = std::fs::read_to_string(env.dir.join("actions.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        let journal = env.journal(&env.first_run());
        let journaled = journaled_starts(&journal);
        for action in &ran {
            assert!(
                journaled.contains(action),
                "limit {blocks} blocks: `{action}` ran but its start is not in the journal\n\
                 journal starts: {journaled:?}\n{}",
                text(&out)
            );
        }
        let code = out.status.code();
        if code == Some(0) {
            assert_eq!(ran, ["s0", "s1", "s2", "s3"], "limit {blocks}");
            continue;
        }
        full_disks += 1;
        let all = text(&out);
        assert!(
            all.contains("journal"),
            "limit {blocks}: the output names the journal as the cause:\n{all}"
        );
        // Changes made and not undone: humans must look (exit 5); none: the
        // world is as it was (exit 4); no action ran at all: nothing
        // changed (exit 7).
        let left = ran
            .iter()
            .filter(|a| !a.starts_with("undo-") && !ran.contains(&format!("undo-{a}")))
            .count();
        let expected = if left > 0 {
            5
        } else if ran.is_empty() {
            7
        } else {
            4
        };
        assert_eq!(
            code,
            Some(expected),
            "limit {blocks}: {left} change(s) left in place; actions {ran:?}\n{all}"
        );

        // With room on the disk again, resume finishes the run from the
        // record: every step done exactly once, none repeated or skipped.
        let id = env.first_run();
        let mut args = vec![
            "resume".to_owned(),
            id.clone(),
            "--runs-dir".into(),
            "runs".into(),
        ];
        let mut resumed = env.out(&args.iter().map(String::as_str).collect::<Vec<_>>());
        if text(&resumed).contains("the journal has no run_started") {
            // Not even the first line fitted: nothing was started, so there
            // is nothing to resume (run it again).
            assert!(ran.is_empty(), "limit {blocks}: {ran:?} ran unrecorded");
            continue;
        }
        if resumed.status.code() == Some(3) {
            // A step whose outcome the full disk swallowed is in doubt: it
            // did run (actions.log says so), as whoever resumes would check.
            let said = text(&resumed);
            let doubt = ["s0", "s1", "s2", "s3"]
                .into_iter()
                .find(|s| said.contains(&format!("--assume-done {s}")))
                .unwrap_or_else(|| panic!("limit {blocks}: resume refused:\n{said}"));
            assert!(
                ran.iter().any(|a| a == doubt),
                "limit {blocks}: {doubt} in doubt but never ran"
            );
            args.extend(["--assume-done".to_owned(), doubt.to_owned()]);
            resumed = env.out(&args.iter().map(String::as_str).collect::<Vec<_>>());
        }
        assert_eq!(
            resumed.status.code(),
            Some(0),
            "limit {blocks}:\n{}",
            text(&resumed)
        );
        let after = std::fs::read_to_string(env.dir.join("actions.log")).unwrap_or_default();
        assert_eq!(
            after.lines().collect::<Vec<_>>(),
            ["s0", "s1", "s2", "s3"],
            "limit {blocks}: each step once"
        );
    }
    assert!(
        full_disks >= 8,
        "the limit must hit most events: {full_disks}"
    );
}
