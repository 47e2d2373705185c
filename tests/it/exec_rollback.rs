//! Rollback: order, failing undos, `after rollback verify`, handlers.

use crate::exec_support;

use exec_support::*;
use runbook::events::CheckStatus;
use runbook::events::{EventKind, Mode, Outcome};
use runbook::exit;
use std::sync::Arc;

const CHAIN: &str = r#"
runbook chain {
  channel log = console
  step a { run "do a" undo "undo a" }
  step b { run "do b" undo "undo b" }
  parallel {
    step c1 { run "do c1" undo "undo c1" }
    step c2 { run "do c2" undo "undo c2" }
  }
  step d { run "do d FAIL" undo "undo d" }
  step e { run "do e" undo "undo e" }
  on failure { notify log "failed at {{failure.step}}: {{failure.reason}}" }
  on success { notify log "all good" }
}
"#;

#[tokio::test(start_paused = true)]
async fn rollback_runs_in_reverse_completion_order_after_a_mid_run_failure() {
    let shell = FakeShell::failing_on_marker();
    let notify = Arc::new(FakeNotify::default());
    let mut opts = options(Mode::Live);
    opts.parallel = 1; // c1 then c2: a deterministic completion order
    let ran = run(
        compile(CHAIN),
        opts,
        &[],
        adapters(shell.clone(), notify.clone()),
    )
    .await;

    assert_eq!(ran.summary.outcome, Outcome::RolledBack);
    assert_eq!(ran.summary.exit_code, exit::ROLLED_BACK);
    assert_eq!(ran.summary.failed_step.as_deref(), Some("d"));
    assert_eq!(
        shell.commands(),
        [
            "do a",
            "do b",
            "do c1",
            "do c2",
            "do d FAIL", // d fails: e never starts
            "undo c2",
            "undo c1",
            "undo b",
            "undo a", // d did not complete: not undone
        ]
    );
    assert_eq!(ran.undone(), ["c2", "c1", "b", "a"]);
    // The plan is logged before any undo runs.
    let plan = ran.of("rollback_started");
    let EventKind::RollbackStarted { plan, .. } = &plan[0].kind else {
        unreachable!()
    };
    let order: Vec<&str> = plan.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(order, ["c2", "c1", "b", "a"]);
    // on failure sees failure.step / failure.reason; on success never runs.
    let sent = notify.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, "failed at d: exited with status 1");
    assert!(
        ran.console.contains("FAILED, rolled back cleanly"),
        "{}",
        ran.console
    );
}

#[tokio::test(start_paused = true)]
async fn parallel_group_completion_order_decides_undo_order() {
    // c2 finishes before c1 (c1 sleeps): so c1 is undone first.
    let shell = FakeShell::new(|_, cmd| match cmd {
        "do c1" => ShellBehaviour::Sleep(std::time::Duration::from_secs(3)),
        c if c.contains("FAIL") => ShellBehaviour::Exit(2, String::new()),
        _ => ShellBehaviour::Exit(0, String::new()),
    });
    let ran = run(
        compile(CHAIN),
        options(Mode::Live),
        &[],
        adapters(shell.clone(), Default::default()),
    )
    .await;
    assert_eq!(ran.undone(), ["c1", "c2", "b", "a"]);
    assert_eq!(shell.max_concurrent(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failing_undo_is_logged_the_rest_goes_on_and_the_run_is_rollback_incomplete() {
    let shell = FakeShell::new(|_, cmd| {
        if cmd.contains("FAIL") || cmd == "undo b" {
            ShellBehaviour::Exit(1, "nope".into())
        } else {
            ShellBehaviour::Exit(0, String::new())
        }
    });
    let ran = run(
        compile(CHAIN),
        options(Mode::Live),
        &[],
        adapters(shell.clone(), Default::default()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::RollbackIncomplete);
    assert_eq!(ran.summary.exit_code, exit::ROLLBACK_INCOMPLETE);
    // The undo of `a` still ran after the undo of `b` failed.
    assert!(shell
        .commands()
        .ends_with(&["undo b".to_string(), "undo a".to_string()]));
    let failed: Vec<_> = ran
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::UndoFinished {
                ok: false, error, ..
            } => Some((e.node.clone(), error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0.as_deref(), Some("b"));
    let fin = ran.of("rollback_finished");
    assert!(
        matches!(&fin[0].kind, EventKind::RollbackFinished { clean: false, failed_undos, .. } if failed_undos == &["b"])
    );
    assert!(
        ran.console.contains("ROLLBACK INCOMPLETE"),
        "{}",
        ran.console
    );
}

#[tokio::test(start_paused = true)]
async fn a_rollback_that_does_not_restore_health_is_never_clean() {
    let text = r#"
runbook healthy_after {
  check healthy { shell "true" expect exit == 0 }
  step a { run "do a" undo "undo a" }
  step b { run "do b FAIL" }
  after rollback verify healthy within 1m every 10s
}
"#;
    let mut ad = adapters(FakeShell::failing_on_marker(), Default::default());
    ad.oracle = Some(Arc::new(FnOracle(Box::new(|_, _| CheckStatus::Fail))));
    let ran = run(compile(text), options(Mode::Live), &[], ad).await;
    assert_eq!(ran.summary.outcome, Outcome::RollbackIncomplete);
    // Polled at 0s, 10s, ... 60s.
    assert_eq!(ran.of("verify_poll").len(), 7);
    assert!(matches!(
        &ran.of("rollback_finished")[0].kind,
        EventKind::RollbackFinished {
            clean: false,
            after_rollback_verified: Some(false),
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn success_runs_on_success_and_no_rollback() {
    let text = CHAIN.replace("do d FAIL", "do d");
    let notify = Arc::new(FakeNotify::default());
    let ran = run(
        compile(&text),
        options(Mode::Live),
        &[],
        adapters(FakeShell::failing_on_marker(), notify.clone()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    assert_eq!(ran.summary.exit_code, exit::SUCCESS);
    assert!(ran.of("rollback_started").is_empty());
    assert_eq!(notify.sent.lock().unwrap()[0].1, "all good");
}
