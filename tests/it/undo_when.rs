//! `undo when COND ACTION`, `self.*` in an undo, and `failure.completed`,
//! `failure.undone`, `failure.kept` in `on failure` (issue 12 items 1 and
//! 6), with the real binary and marker files: an undo whose condition is
//! false is not run and the journal says why; a step skipped by its `when`
//! is never undone; the handler reads what happened.

use crate::support;

use support::{text, CliEnv};

const RUNBOOK: &str = r#"
runbook undo_when_test {
  input dir: string
  input skip: bool = true
  step changed {
    run "echo changed > {{dir}}/changed.out; cat {{dir}}/changed.out"
    capture text as changed_state
    undo when changed_state == "changed" "echo {{self.outcome}} {{self.attempts}} >> {{dir}}/changed.undo"
  }
  step unchanged {
    run "echo already"
    capture text as unchanged_state
    undo when unchanged_state == "changed" "echo x >> {{dir}}/unchanged.undo"
  }
  step skipped {
    when not skip
    run "echo x >> {{dir}}/skipped.marker"
    undo "echo x >> {{dir}}/skipped.undo"
  }
  step boom {
    run "exit 3" readonly
  }
  on failure {
    run "printf '%s\\n' {{failure.completed}} >> {{dir}}/completed.list"
    run "printf '%s\\n' {{failure.undone}} >> {{dir}}/undone.list"
  }
}
"#;

fn lines(cli: &CliEnv, file: &str) -> Vec<String> {
    std::fs::read_to_string(cli.dir.join(file))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_undo_runs_only_when_its_condition_holds_and_reads_self() {
    let cli = CliEnv::new(&[("u.runbook", RUNBOOK)], None);
    let out = cli.run_here("u.runbook", &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    // The changed step is undone, with how it went; the unchanged one is
    // not (its condition is false); the skipped one never ran, so it is
    // not undone either.
    assert_eq!(lines(&cli, "changed.undo"), ["succeeded 1"]);
    assert_eq!(cli.count("unchanged.undo"), 0);
    assert_eq!(cli.count("skipped.marker"), 0);
    assert_eq!(cli.count("skipped.undo"), 0);
    let journal = cli.journal(&cli.first_run());
    let started = journal
        .lines()
        .find(|l| l.contains("\"rollback_started\""))
        .expect("a rollback_started line");
    assert!(
        started.contains(r#"undo when unchanged_state == \"changed\": false"#),
        "{started}"
    );
    assert!(!started.contains("skipped"), "{started}");
    assert!(
        journal
            .lines()
            .any(|l| l.contains("\"undo_when\"") && l.contains("\"result\":true")),
        "{journal}"
    );
    // The handler reads what completed and what was undone.
    assert_eq!(lines(&cli, "completed.list"), ["changed", "unchanged"]);
    assert_eq!(lines(&cli, "undone.list"), ["changed"]);
}

#[test]
fn self_is_only_known_in_an_undo() {
    let bad = r#"
runbook r {
  step a {
    run "echo {{self.outcome}}"
    undo "x"
  }
}
"#;
    let cli = CliEnv::new(&[("r.runbook", bad)], None);
    let out = cli.out(&["check", "r.runbook"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out).contains("`self` is only known in a step's `undo`"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_failed_handler_action_is_reported_and_the_exit_code_stands() {
    let rb = r#"
runbook handler_fails {
  input dir: string
  step a { run "echo x >> {{dir}}/a.marker" undo none "a marker" }
  on success {
    run "exit 7"
    run "echo x >> {{dir}}/after.marker"
  }
}
"#;
    let cli = CliEnv::new(&[("h.runbook", rb)], None);
    let out = cli.run_here("h.runbook", &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("! 1 handler action(s) failed"),
        "{}",
        text(&out)
    );
    // The next handler action still runs.
    assert_eq!(cli.count("after.marker"), 1);
    let journal = cli.journal(&cli.first_run());
    let finished = journal
        .lines()
        .find(|l| l.contains("\"run_finished\""))
        .expect("run_finished");
    assert!(finished.contains("\"handler_failed\":1"), "{finished}");
    let runs = cli.out(&["runs", "--runs-dir", "runs"]);
    assert!(
        text(&runs).contains("1 handler action(s) failed"),
        "{}",
        text(&runs)
    );
}
