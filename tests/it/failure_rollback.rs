//! `failure.rollback` in `on failure`: whether the rollback left the world
//! as it was (`complete`), needs a human (`incomplete`), or was not done
//! (`skipped`, a cancel with `--no-rollback-on-cancel`).

use crate::exec_support;

use exec_support::*;
use runbook::events::{Mode, Outcome};
use std::sync::Arc;
use std::time::Duration;

const RUNBOOK: &str = r#"
runbook failing {
  channel log = console
  step a { run "a" undo "undo a" }
  step b { run "b" undo "undo b" }
  on failure { notify log "{{failure.step}}|{{failure.rollback}}" }
}
"#;

async fn handler_message(
    shell: Arc<FakeShell>,
    opts: runbook::exec::RunOptions,
    outcome: Outcome,
) -> String {
    let notify = Arc::new(FakeNotify::default());
    let ran = run(compile(RUNBOOK), opts, &[], adapters(shell, notify.clone())).await;
    assert_eq!(ran.summary.outcome, outcome, "{}", ran.console);
    let sent = notify.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    sent[0].1.clone()
}

#[tokio::test(start_paused = true)]
async fn every_undo_ran_is_complete() {
    let shell = FakeShell::new(|_, cmd| match cmd {
        "b" => ShellBehaviour::Exit(1, "boom".into()),
        _ => ShellBehaviour::Exit(0, String::new()),
    });
    let msg = handler_message(shell, options(Mode::Live), Outcome::RolledBack).await;
    assert_eq!(msg, "b|complete");
}

#[tokio::test(start_paused = true)]
async fn a_failed_undo_is_incomplete() {
    let shell = FakeShell::new(|_, cmd| match cmd {
        "b" | "undo a" => ShellBehaviour::Exit(1, "boom".into()),
        _ => ShellBehaviour::Exit(0, String::new()),
    });
    let msg = handler_message(shell, options(Mode::Live), Outcome::RollbackIncomplete).await;
    assert_eq!(msg, "b|incomplete");
}

#[tokio::test(start_paused = true)]
async fn a_cancel_without_rollback_is_skipped() {
    let shell = FakeShell::new(|_, cmd| match cmd {
        "b" => ShellBehaviour::Sleep(Duration::from_secs(60)),
        _ => ShellBehaviour::Exit(0, String::new()),
    });
    let mut opts = options(Mode::Live);
    opts.rollback_on_cancel = false;
    let cancel = opts.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        cancel.cancel();
    });
    let msg = handler_message(shell.clone(), opts, Outcome::Cancelled).await;
    assert!(msg.ends_with("|skipped"), "{msg}");
    assert!(!shell.commands().iter().any(|c| c.starts_with("undo")));
}
