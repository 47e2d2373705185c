//! `always { ... }`: cleanup steps run after the steps and after any
//! rollback, on success, on failure and on cancellation; they read
//! `run.outcome` and `run.rollback`; a failed one never stops the next,
//! never changes the outcome, and is never undone.

use crate::exec_support;

use exec_support::*;
use runbook::events::{EventKind, Mode, Outcome};
use runbook::exec::scheduler::NodeState;
use runbook::exit;
use std::sync::Arc;
use std::time::Duration;

/// Patching with a snapshot: the snapshot is deleted either way, but only
/// once a restore that needed it has succeeded (`run.rollback` is not
/// `incomplete`). `tell` says how the run ended.
const PATCH: &str = r#"
runbook patch {
  channel log = console
  input fail_after: bool = false
  step snapshot {
    run "snapshot create"
    capture text as snap
  }
  step patch {
    run "patch apply"
    undo run "snapshot restore {{snap}}"
  }
  step health {
    when fail_after
    run "health FAIL"
  }
  always {
    step delete_snapshot {
      when run.rollback != "incomplete"
      run "snapshot delete {{snap}}"
    }
    step tell {
      notify log "patch {{run.outcome}} (rollback {{run.rollback}}): {{snap}}"
    }
    step record {
      when run.outcome != "succeeded"
      run "record {{snap}}"
    }
  }
  on failure { notify log "failed: rollback {{failure.rollback}}" }
  on success { notify log "succeeded" }
}
"#;

fn shell(restore_fails: bool) -> Arc<FakeShell> {
    FakeShell::new(move |_, cmd| {
        if cmd.starts_with("snapshot create") {
            ShellBehaviour::Exit(0, "snap-7\n".into())
        } else if cmd.contains("FAIL") || (restore_fails && cmd.contains("restore")) {
            ShellBehaviour::Exit(1, "boom\n".into())
        } else {
            ShellBehaviour::Exit(0, String::new())
        }
    })
}

#[tokio::test(start_paused = true)]
async fn on_success_the_cleanup_runs_after_the_steps_and_before_on_success() {
    let sh = shell(false);
    let notify = Arc::new(FakeNotify::default());
    let ran = run(
        compile(PATCH),
        options(Mode::Live),
        &[],
        adapters(sh.clone(), notify.clone()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    assert_eq!(ran.summary.exit_code, 0);
    assert_eq!(
        sh.commands(),
        ["snapshot create", "patch apply", "snapshot delete snap-7"]
    );
    let sent: Vec<String> = notify
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.1.clone())
        .collect();
    // The cleanup's message comes before `on success`.
    assert_eq!(
        sent,
        ["patch succeeded (rollback none): snap-7", "succeeded"]
    );
    assert_eq!(ran.state("record"), NodeState::Skipped);
    let skipped = ran.of("node_skipped");
    assert!(skipped.iter().any(|e| e.node.as_deref() == Some("record")));
}

#[tokio::test(start_paused = true)]
async fn after_a_clean_rollback_the_snapshot_is_deleted_after_the_restore() {
    let sh = shell(false);
    let notify = Arc::new(FakeNotify::default());
    let ran = run(
        compile(PATCH),
        options(Mode::Live),
        &[("fail_after", "true")],
        adapters(sh.clone(), notify.clone()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::RolledBack);
    assert_eq!(ran.summary.exit_code, exit::ROLLED_BACK);
    assert_eq!(
        sh.commands(),
        [
            "snapshot create",
            "patch apply",
            "health FAIL",
            "snapshot restore snap-7",
            // After the restore that needed it, never before.
            "snapshot delete snap-7",
            "record snap-7",
        ]
    );
    let sent: Vec<String> = notify
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.1.clone())
        .collect();
    assert_eq!(
        sent,
        [
            "patch rolled_back (rollback complete): snap-7",
            "failed: rollback complete"
        ]
    );
    // The cleanup is not the run's failure, and nothing undoes it.
    assert_eq!(ran.summary.failed_step.as_deref(), Some("health"));
    assert_eq!(ran.undone(), ["patch"]);
    let order = ran.kinds();
    let finished = order.iter().position(|k| *k == "rollback_finished");
    let handler = order.iter().position(|k| *k == "handler_started");
    let delete = ran
        .events
        .iter()
        .position(|e| {
            e.node.as_deref() == Some("delete_snapshot")
                && matches!(e.kind, EventKind::NodeSucceeded { .. })
        })
        .unwrap();
    assert!(finished.unwrap() < delete && delete < handler.unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_failed_restore_keeps_the_snapshot_and_the_failure_is_not_hidden() {
    let sh = shell(true);
    let notify = Arc::new(FakeNotify::default());
    let ran = run(
        compile(PATCH),
        options(Mode::Live),
        &[("fail_after", "true")],
        adapters(sh.clone(), notify.clone()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::RollbackIncomplete);
    assert_eq!(ran.summary.exit_code, exit::ROLLBACK_INCOMPLETE);
    // The snapshot is still needed: not deleted.
    assert!(
        !sh.commands().iter().any(|c| c.contains("delete")),
        "{:?}",
        sh.commands()
    );
    assert!(sh.commands().contains(&"record snap-7".to_owned()));
    assert_eq!(ran.state("delete_snapshot"), NodeState::Skipped);
    let skipped = ran.of("node_skipped");
    let reason = skipped
        .iter()
        .find(|e| e.node.as_deref() == Some("delete_snapshot"))
        .map(|e| match &e.kind {
            EventKind::NodeSkipped { reason, .. } => reason.clone(),
            _ => String::new(),
        })
        .unwrap();
    assert!(reason.contains("run.rollback"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_cleanup_step_is_reported_the_next_runs_and_the_outcome_stays() {
    let text = r#"
runbook c {
  step a { run "do a" undo "undo a" }
  always {
    step first { run "clean FAIL" }
    step second { run "clean two" }
  }
}
"#;
    let sh = FakeShell::failing_on_marker();
    let ran = run(
        compile(text),
        options(Mode::Live),
        &[],
        adapters(sh.clone(), Arc::new(FakeNotify::default())),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    assert_eq!(sh.commands(), ["do a", "clean FAIL", "clean two"]);
    assert_eq!(ran.state("first"), NodeState::FailedContinued);
    assert_eq!(ran.state("second"), NodeState::Succeeded);
    // Nothing rolled back: a cleanup failure is not the run's.
    assert!(ran.of("rollback_started").is_empty());
    let failed = ran.of("node_failed");
    assert!(matches!(
        failed[0].kind,
        EventKind::NodeFailed {
            continued: true,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_rolls_back_then_cleans_up() {
    let text = r#"
runbook c {
  step a { run "do a" undo "undo a" }
  step slow { run "do slow" undo "undo slow" timeout 10m }
  always {
    step clean {
      when run.outcome == "cancelled" and run.rollback == "complete"
      run "clean"
    }
  }
}
"#;
    let sh = FakeShell::new(|_, cmd| {
        if cmd == "do slow" {
            ShellBehaviour::Sleep(Duration::from_secs(60))
        } else {
            ShellBehaviour::Exit(0, String::new())
        }
    });
    let opts = options(Mode::Live);
    let cancel = opts.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        cancel.cancel();
    });
    let ran = run(
        compile(text),
        opts,
        &[],
        adapters(sh.clone(), Arc::new(FakeNotify::default())),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Cancelled);
    // The first Ctrl-C stopped the steps, not the cleanup.
    assert_eq!(sh.commands(), ["do a", "do slow", "undo a", "clean"]);
    assert_eq!(ran.state("clean"), NodeState::Succeeded);
}

#[test]
fn the_plan_and_the_graph_show_the_cleanup_apart() {
    let g = compile(PATCH);
    let cleanup: Vec<&str> = g
        .nodes
        .iter()
        .filter(|n| n.cleanup)
        .map(|n| n.id.as_str())
        .collect();
    assert_eq!(cleanup, ["delete_snapshot", "tell", "record"]);
    // One after another, and after no step of the run.
    let deps: Vec<Vec<String>> = g
        .nodes
        .iter()
        .filter(|n| n.cleanup)
        .map(|n| n.deps.clone())
        .collect();
    assert_eq!(
        deps,
        [
            vec![],
            vec!["delete_snapshot".to_owned()],
            vec!["tell".to_owned()]
        ]
    );
    assert!(g
        .nodes
        .iter()
        .filter(|n| n.cleanup)
        .all(|n| n.continue_on_error));
}
