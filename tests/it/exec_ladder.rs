//! `try { ... } else try { ... } else { ... }`: a fallback ladder. A failed
//! attempt's completed steps are undone (latest first) before the next
//! starts; once one succeeds the later ones are skipped; the last failing
//! fails the run; an attempt whose undo fails stops the run.

use crate::exec_support;

use exec_support::*;
use runbook::events::{EventKind, Mode, Outcome};
use runbook::exec::scheduler::NodeState;

/// `a2` fails when input `a` says so, `b1` when `b` does; `c1` when `c`
/// does. A command with `FAIL` in it exits 1.
const LADDER: &str = r#"
runbook ladder {
  input a: string = "ok"
  input b: string = "ok"
  input c: string = "ok"
  input undo_a: string = "ok"
  step before { run "do before" undo "undo before" }
  try {
    step a1 { run "do a1" undo "undo a1 {{undo_a}}" }
    step a2 { run "do a2 {{a}}" undo "undo a2" }
  } else try {
    step b1 { run "do b1 {{b}}" undo "undo b1" }
  } else {
    step c1 { run "do c1 {{c}}" undo "undo c1" }
  }
  step after { run "do after" undo "undo after" }
}
"#;

fn abandoned(ran: &Ran) -> Vec<(usize, String, String)> {
    ran.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AttemptAbandoned {
                attempt,
                label,
                step,
                ..
            } => Some((*attempt, label.clone(), step.clone())),
            _ => None,
        })
        .collect()
}

async fn go(inputs: &[(&str, &str)]) -> (Ran, std::sync::Arc<FakeShell>) {
    let sh = FakeShell::failing_on_marker();
    let ran = run(
        compile(LADDER),
        options(Mode::Live),
        inputs,
        adapters(sh.clone(), std::sync::Arc::new(FakeNotify::default())),
    )
    .await;
    (ran, sh)
}

#[tokio::test(start_paused = true)]
async fn the_first_attempt_that_works_ends_the_ladder() {
    let (ran, sh) = go(&[]).await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    assert_eq!(
        sh.commands(),
        ["do before", "do a1", "do a2 ok", "do after"]
    );
    for n in ["b1", "c1"] {
        assert_eq!(ran.state(n), NodeState::Skipped, "{n}");
    }
    assert!(ran.events.iter().any(|e| matches!(&e.kind,
        EventKind::NodeSkipped { reason, .. } if reason == "attempt 1 (try) succeeded")));
    assert!(abandoned(&ran).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_attempt_is_undone_before_the_next_and_the_run_succeeds() {
    let (ran, sh) = go(&[("a", "FAIL")]).await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded, "{}", ran.console);
    assert_eq!(
        sh.commands(),
        [
            "do before",
            "do a1",
            "do a2 FAIL",
            // a2's action failed: only a1 completed, and is undone first.
            "undo a1 ok",
            "do b1 ok",
            "do after"
        ]
    );
    assert_eq!(ran.state("a2"), NodeState::FailedContinued);
    assert_eq!(ran.state("b1"), NodeState::Succeeded);
    assert_eq!(ran.state("c1"), NodeState::Skipped);
    assert_eq!(
        abandoned(&ran),
        [(0, "attempt 1 (try)".to_owned(), "a2".to_owned())]
    );
    // The decision log says what was undone and what came next.
    assert!(ran.events.iter().any(|e| matches!(&e.kind,
        EventKind::AttemptUndone { clean: true, next: Some(n), .. } if n == "attempt 2 (else try)")));
}

#[tokio::test(start_paused = true)]
async fn every_attempt_failing_fails_the_run_and_undoes_each_once() {
    let (ran, sh) = go(&[("a", "FAIL"), ("b", "FAIL"), ("c", "FAIL")]).await;
    assert_eq!(ran.summary.outcome, Outcome::RolledBack, "{}", ran.console);
    assert_eq!(ran.summary.failed_step.as_deref(), Some("c1"));
    assert_eq!(
        sh.commands(),
        [
            "do before",
            "do a1",
            "do a2 FAIL",
            "undo a1 ok",
            "do b1 FAIL",
            "do c1 FAIL",
            // The run's rollback: not a1 again.
            "undo before"
        ]
    );
    assert_eq!(ran.state("after"), NodeState::NotRun);
    assert_eq!(abandoned(&ran).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_undo_of_an_abandoned_attempt_stops_the_run_incomplete() {
    let (ran, sh) = go(&[("a", "FAIL"), ("undo_a", "FAIL")]).await;
    assert_eq!(
        ran.summary.outcome,
        Outcome::RollbackIncomplete,
        "{}",
        ran.console
    );
    let cmds = sh.commands();
    assert!(!cmds.iter().any(|c| c.starts_with("do b1")), "{cmds:?}");
    // The failed undo is not run again by the run's rollback.
    assert_eq!(
        cmds,
        [
            "do before",
            "do a1",
            "do a2 FAIL",
            "undo a1 FAIL",
            "undo before"
        ]
    );
    assert!(ran.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::AttemptUndone {
            clean: false,
            next: None,
            ..
        }
    )));
    assert!(ran
        .summary
        .failure_reason
        .as_deref()
        .is_some_and(|r| r.contains("no further attempt starts")));
}

#[tokio::test(start_paused = true)]
async fn a_keep_point_in_an_attempt_stays_when_it_is_abandoned() {
    let text = r#"
runbook r {
  try {
    step mitigate { run "do mitigate" undo "undo mitigate" keep }
    step tidy { run "do tidy FAIL" undo "undo tidy" }
  } else {
    step page { run "do page" undo none "a page cannot be unsent" }
  }
}
"#;
    let sh = FakeShell::failing_on_marker();
    let ran = run(
        compile(text),
        options(Mode::Live),
        &[],
        adapters(sh.clone(), std::sync::Arc::new(FakeNotify::default())),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded, "{}", ran.console);
    assert_eq!(sh.commands(), ["do mitigate", "do tidy FAIL", "do page"]);
}

/// Killed in the middle of a ladder's second attempt, after the first was
/// abandoned and undone: `resume` runs no completed step again, does not
/// try the first attempt again, and does not undo it twice.
#[test]
fn resume_after_kill_mid_ladder_runs_no_finished_step_again() {
    use crate::support::{text, CliEnv};
    let body = r#"
runbook r {
  input dir: string
  try {
    step a1 {
      run "echo a1 >> {{dir}}/m"
      undo "echo undo-a1 >> {{dir}}/m"
    }
    step a2 { run "echo a2 >> {{dir}}/m; false" undo "echo undo-a2 >> {{dir}}/m" }
  } else {
    step b1 { run "echo b1 >> {{dir}}/m" undo "echo undo-b1 >> {{dir}}/m" }
    step b2 { run "echo b2 >> {{dir}}/m; sleep 3" undo "echo undo-b2 >> {{dir}}/m" }
  }
  step after { run "echo after >> {{dir}}/m" undo "echo undo-after >> {{dir}}/m" }
}
"#;
    let e = CliEnv::new(&[("r.runbook", body)], None);
    let marks = || e.lines_of("m");
    let id = e.run_killed_in("r.runbook", &[], "b2", "b2");
    let before = marks();
    assert_eq!(before, ["a1", "a2", "undo-a1", "b1", "b2"], "{before:?}");
    let o = e.out(&["resume", &id, "--runs-dir", "runs", "--assume-done", "b2"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let after = marks();
    assert_eq!(&after[before.len()..], ["after"], "{}", text(&o));
}
