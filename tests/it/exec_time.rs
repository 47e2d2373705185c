//! Retries, backoff, timeouts and verify windows, on tokio's paused clock:
//! minutes of virtual time, no real sleeping.

use crate::exec_support;

use exec_support::*;
use runbook::events::CheckStatus;
use runbook::events::{EventKind, Mode, Outcome};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(start_paused = true)]
async fn retries_with_exponential_backoff_on_virtual_time() {
    let text = r#"
runbook retry {
  step flaky { run "flaky" undo "unflaky" retry 3 backoff 5s exponential }
}
"#;
    let n = Arc::new(AtomicU32::new(0));
    let n2 = n.clone();
    let shell = FakeShell::new(move |_, _| {
        if n2.fetch_add(1, Ordering::SeqCst) < 3 {
            ShellBehaviour::Exit(1, "not yet".into())
        } else {
            ShellBehaviour::Exit(0, String::new())
        }
    });
    let wall = Instant::now();
    let ran = run(
        compile(text),
        options(Mode::Live),
        &[],
        adapters(shell, Default::default()),
    )
    .await;
    assert!(
        wall.elapsed() < Duration::from_secs(2),
        "virtual time, not real sleeps"
    );
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    let retries: Vec<(u32, u64)> = ran
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RetryScheduled {
                attempt, delay_ms, ..
            } => Some((*attempt, *delay_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [(2, 5_000), (3, 10_000), (4, 20_000)]);
    let done = ran.of("node_succeeded");
    assert!(matches!(
        &done[0].kind,
        EventKind::NodeSucceeded { attempts: 4, .. }
    ));
    // 35 s of virtual time went by.
    assert!(ran.events.last().unwrap().t_ms >= 35_000);
}

#[tokio::test(start_paused = true)]
async fn fixed_backoff_and_giving_up() {
    let text = r#"
runbook retry {
  step a { run "a" undo "undo a" }
  step flaky { run "always FAIL" retry 2 backoff 1m }
}
"#;
    let shell = FakeShell::failing_on_marker();
    let ran = run(
        compile(text),
        options(Mode::Live),
        &[],
        adapters(shell.clone(), Default::default()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::RolledBack);
    let delays: Vec<u64> = ran
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RetryScheduled { delay_ms, .. } => Some(*delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [60_000, 60_000]);
    assert_eq!(
        shell
            .commands()
            .iter()
            .filter(|c| c.contains("FAIL"))
            .count(),
        3
    );
    assert!(ran
        .summary
        .failure_reason
        .unwrap()
        .contains("after 3 attempts"));
}

#[tokio::test(start_paused = true)]
async fn verify_window_expiry_fails_the_step_and_rolls_back() {
    let text = r#"
runbook verify {
  check healthy { shell "probe" expect exit == 0 }
  step fix {
    run "fix"
    undo "unfix"
    verify healthy within 10m every 30s
  }
}
"#;
    let shell = FakeShell::failing_on_marker();
    let mut ad = adapters(shell.clone(), Default::default());
    ad.oracle = Some(Arc::new(FnOracle(Box::new(|_, _| CheckStatus::Fail))));
    let wall = Instant::now();
    let ran = run(compile(text), options(Mode::Live), &[], ad).await;
    assert!(wall.elapsed() < Duration::from_secs(2));
    assert_eq!(ran.summary.outcome, Outcome::RolledBack);
    // Polls at 0, 30s, ..., 600s: 21 polls, then the window closes.
    assert_eq!(ran.of("verify_poll").len(), 21);
    assert!(ran
        .summary
        .failure_reason
        .as_deref()
        .unwrap()
        .contains("did not hold"));
    // The action completed, so its undo runs even though verify failed.
    assert_eq!(shell.commands(), ["fix", "unfix"]);
    let fail_t = ran.of("node_failed")[0].t_ms;
    assert_eq!(fail_t, 600_000);
}

#[tokio::test(start_paused = true)]
async fn verify_needs_consecutive_passes() {
    let text = r#"
runbook verify {
  check healthy { shell "probe" expect exit == 0 }
  step fix { run "fix" undo "unfix" verify healthy within 5m every 10s consecutive 3 }
}
"#;
    let mut ad = adapters(FakeShell::failing_on_marker(), Default::default());
    // poll: 1 pass, 2 fail, 3 pass, 4 pass, 5 pass -> done at poll 5.
    ad.oracle = Some(Arc::new(FnOracle(Box::new(|_, poll| {
        if poll == 2 {
            CheckStatus::Fail
        } else {
            CheckStatus::Pass
        }
    }))));
    let ran = run(compile(text), options(Mode::Live), &[], ad).await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    assert_eq!(ran.of("verify_poll").len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_fails_the_attempt_and_is_retried() {
    let text = r#"
runbook slow {
  step slow { run "slow" undo "unslow" timeout 30s retry 1 backoff 1s }
}
"#;
    let shell = FakeShell::new(|_, _| ShellBehaviour::Sleep(Duration::from_secs(3600)));
    let ran = run(
        compile(text),
        options(Mode::Live),
        &[],
        adapters(shell, Default::default()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::RolledBack);
    assert_eq!(ran.of("timeout").len(), 2);
    // A timed-out write is in doubt: not undone, and said so.
    let EventKind::RollbackStarted {
        plan, not_undone, ..
    } = &ran.of("rollback_started")[0].kind
    else {
        unreachable!()
    };
    assert!(plan.is_empty());
    assert_eq!(not_undone[0].node, "slow");
}

#[tokio::test(start_paused = true)]
async fn an_adapter_ignoring_its_timeout_is_abandoned_after_the_grace() {
    let text = r#"
runbook hang {
  step hang { run "hang" timeout 10s }
}
"#;
    let shell = FakeShell::new(|_, _| ShellBehaviour::Hang);
    let ran = run(
        compile(text),
        options(Mode::Live),
        &[],
        adapters(shell, Default::default()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::RolledBack);
    let t = ran.of("node_failed")[0].t_ms;
    assert_eq!(t, 10_000 + runbook::exec::GRACE.as_millis() as u64);
}

#[tokio::test(start_paused = true)]
async fn cancellation_stops_new_steps_and_rolls_back() {
    let text = r#"
runbook cancel {
  step a { run "a" undo "undo a" }
  step b { run "b" undo "undo b" }
  step c { run "c" undo "undo c" }
}
"#;
    let shell = FakeShell::new(|_, cmd| match cmd {
        "b" => ShellBehaviour::Sleep(Duration::from_secs(60)),
        _ => ShellBehaviour::Exit(0, String::new()),
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
        adapters(shell.clone(), Default::default()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Cancelled);
    assert_eq!(ran.summary.exit_code, runbook::exit::CANCELLED);
    let cmds = shell.commands();
    assert!(!cmds.contains(&"c".to_string()));
    assert!(cmds.contains(&"undo a".to_string()));
    assert!(!ran.of("cancel_requested").is_empty());
}
