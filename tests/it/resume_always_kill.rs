//! `runbook resume` after the real binary is SIGKILLed inside an `always`
//! step or inside an arm of an `if`. `always`, after a successful run and
//! after a rollback: the cleanup steps that ended do not run again, the one
//! cut off is settled by its `verify` (or by the operator when it has
//! none), the ones never started run, and nothing is rolled back because of
//! the cleanup. `if`: the resumed run goes on in the arm taken before the
//! kill (the branch is not decided again, though its check now reads
//! otherwise), and a rollback undoes only that arm.

use crate::support;

use std::process::{Child, Stdio};
use std::time::Duration;
use support::{text, CliEnv};

/// `a` (undo), then with `fail=true` `boom` fails and `a` is undone. The
/// cleanup: `first`, `slow` (cut off while it sleeps; its verify reads its
/// marker) or `bare` (no verify: in doubt needs an answer), `last`.
const RUNBOOK: &str = r#"
runbook cleanup_kill {
  input dir: string
  input fail: bool = false
  input bare: bool = false
  check slow_done {
    shell "test -f {{dir}}/slow.marker"
    expect exit == 0
  }
  step a {
    run "echo x >> {{dir}}/a.marker"
    undo "echo u >> {{dir}}/a.undo"
  }
  step boom {
    when fail
    run "exit 1" readonly
  }
  always {
    step first { run "echo x >> {{dir}}/first.marker" }
    step slow {
      when not bare
      run "echo x >> {{dir}}/slow.marker; sleep 3"
      verify slow_done within 5s every 1s
    }
    step bare_step {
      when bare
      run "echo x >> {{dir}}/bare.marker; sleep 3"
    }
    step last {
      when run.outcome == "succeeded" or run.rollback == "complete"
      run "echo {{run.outcome}} >> {{dir}}/last.marker"
    }
  }
}
"#;

fn start(cli: &CliEnv, extra: &[&str]) -> Child {
    cli.run_here("c.runbook", extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn kill_when(cli: &CliEnv, mut child: Child, marker: &str) {
    cli.wait_for(&cli.first_run(), &["action_started"]);
    while cli.count(marker) == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn resume(cli: &CliEnv, extra: &[&str]) -> std::process::Output {
    let id = cli.first_run();
    let mut args = vec!["resume", id.as_str(), "--runs-dir", "runs"];
    args.extend_from_slice(extra);
    cli.out(&args)
}

fn marker(cli: &CliEnv, name: &str) -> String {
    std::fs::read_to_string(cli.dir.join(name)).unwrap_or_default()
}

fn verified(cli: &CliEnv) {
    let id = cli.first_run();
    let v = cli.out(&["verify-journal", &id, "--runs-dir", "runs"]);
    assert!(v.status.success(), "{}", text(&v));
    assert!(cli
        .journal(&id)
        .lines()
        .last()
        .is_some_and(|l| l.contains("\"kind\":\"run_finished\"")));
}

#[test]
fn killed_in_a_cleanup_step_after_success_resumes_the_cleanup_only() {
    let cli = CliEnv::new(&[("c.runbook", RUNBOOK)], None);
    let child = start(&cli, &[]);
    kill_when(&cli, child, "slow.marker");

    let out = resume(&cli, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(cli.count("a.marker"), 1);
    assert_eq!(
        cli.count("a.undo"),
        0,
        "a cleanup step is not the run's failure"
    );
    assert_eq!(
        cli.count("first.marker"),
        1,
        "an ended cleanup step runs once"
    );
    assert_eq!(cli.count("slow.marker"), 1, "its verify settles it");
    assert_eq!(marker(&cli, "last.marker"), "succeeded\n");
    assert!(cli.journal(&cli.first_run()).contains("its verify decides"));
    verified(&cli);
}

#[test]
fn killed_in_a_cleanup_step_after_a_rollback_keeps_the_outcome_and_the_undos() {
    let cli = CliEnv::new(&[("c.runbook", RUNBOOK)], None);
    let child = start(&cli, &["-i", "fail=true"]);
    kill_when(&cli, child, "slow.marker");

    let out = resume(&cli, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(cli.count("a.undo"), 1, "the undo ran once, before the kill");
    assert_eq!(cli.count("first.marker"), 1);
    assert_eq!(cli.count("slow.marker"), 1);
    assert_eq!(marker(&cli, "last.marker"), "rolled_back\n");
    verified(&cli);
}

#[test]
fn a_cleanup_step_in_doubt_without_a_verify_is_asked_about() {
    let cli = CliEnv::new(&[("c.runbook", RUNBOOK)], None);
    let child = start(&cli, &["-i", "bare=true"]);
    kill_when(&cli, child, "bare.marker");
    let before = cli.journal(&cli.first_run());

    let asked = resume(&cli, &[]);
    assert_eq!(asked.status.code(), Some(3), "{}", text(&asked));
    assert!(
        text(&asked).contains("--assume-done bare_step"),
        "{}",
        text(&asked)
    );
    assert_eq!(cli.journal(&cli.first_run()), before);

    let out = resume(&cli, &["--assume-done", "bare_step"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(cli.count("bare.marker"), 1);
    assert_eq!(cli.count("first.marker"), 1);
    assert_eq!(marker(&cli, "last.marker"), "succeeded\n");
    verified(&cli);
}

/// The arm `b` is taken while `choose_b` exists; the test removes it
/// before resuming, so a decision taken again would go the other way.
const BRANCHES: &str = r#"
runbook branch_kill {
  input dir: string
  input fail: bool = false
  check choose_b {
    shell "test -f {{dir}}/choose_b"
    expect exit == 0
  }
  check b1_done {
    shell "test -f {{dir}}/b1.marker"
    expect exit == 0
  }
  step a {
    run "echo x >> {{dir}}/a.marker"
    undo "echo u >> {{dir}}/a.undo"
  }
  if choose_b {
    step b1 {
      run "echo x >> {{dir}}/b1.marker; sleep 3"
      verify b1_done within 5s every 1s
      undo "echo u >> {{dir}}/b1.undo"
    }
    step b2 {
      run "echo x >> {{dir}}/b2.marker"
      undo "echo u >> {{dir}}/b2.undo"
    }
  } else {
    step c1 {
      run "echo x >> {{dir}}/c1.marker"
      undo "echo u >> {{dir}}/c1.undo"
    }
  }
  step boom {
    when fail
    run "exit 1" readonly
  }
}
"#;

fn killed_in_a_branch(extra: &[&str]) -> CliEnv {
    let cli = CliEnv::new(&[("b.runbook", BRANCHES)], None);
    std::fs::write(cli.dir.join("choose_b"), "").unwrap();
    let child = cli
        .run_here("b.runbook", extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    kill_when(&cli, child, "b1.marker");
    std::fs::remove_file(cli.dir.join("choose_b")).unwrap();
    cli
}

fn branch_decisions(cli: &CliEnv) -> usize {
    cli.journal(&cli.first_run())
        .lines()
        .filter(|l| l.contains("\"kind\":\"branch_taken\""))
        .count()
}

#[test]
fn killed_inside_a_branch_resumes_in_the_same_arm() {
    let cli = killed_in_a_branch(&[]);
    let out = resume(&cli, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(cli.count("a.marker"), 1);
    assert_eq!(
        cli.count("b1.marker"),
        1,
        "settled by its verify, not run again"
    );
    assert_eq!(cli.count("b2.marker"), 1, "the arm taken goes on");
    assert_eq!(cli.count("c1.marker"), 0, "the branch is not decided again");
    assert_eq!(branch_decisions(&cli), 1);
    verified(&cli);
}

#[test]
fn killed_inside_a_branch_then_failing_undoes_only_that_arm() {
    let cli = killed_in_a_branch(&["-i", "fail=true"]);
    let out = resume(&cli, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(cli.count("c1.marker"), 0);
    assert_eq!(cli.count("b2.undo"), 1);
    assert_eq!(cli.count("b1.undo"), 1);
    assert_eq!(cli.count("a.undo"), 1);
    assert_eq!(cli.count("c1.undo"), 0);
    assert_eq!(branch_decisions(&cli), 1);
    verified(&cli);
}
