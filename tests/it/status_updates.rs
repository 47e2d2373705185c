//! `every D notify ...`: periodic status updates beside the whole run and
//! beside one step. The first goes out after five minutes (or the
//! interval, if shorter), then one every interval; the run's go on through
//! the rollback and stop before the handlers; a step's stop when it ends;
//! a failed one is a warning. Dry runs and drills show them at their
//! virtual times.

use crate::exec_support;
use crate::support::run_cli;

use exec_support::*;
use runbook::events::{EventKind, Mode, Outcome, Phase};
use std::sync::Arc;
use std::time::Duration;

const SOAK: &str = r#"
runbook soak {
  input service: string = "api"
  input fail_after: bool = false
  channel ops = console
  every 20m notify ops "run: {{service}} still mitigating"
  step pause {
    run "pause {{service}}"
    undo "resume {{service}}"
  }
  step soak {
    run "soak 45m"
    every 10m notify ops "step: soaking {{service}}"
  }
  step check {
    when fail_after
    run "check FAIL"
  }
  on failure { notify ops "handler: failed" }
  on success { notify ops "handler: done" }
}
"#;

/// Sleeps 45 (virtual) minutes on `soak`, 30 on an undo, fails on `FAIL`.
fn shell() -> Arc<FakeShell> {
    FakeShell::new(|_, cmd| {
        if cmd.starts_with("soak") {
            ShellBehaviour::Sleep(Duration::from_secs(45 * 60))
        } else if cmd.starts_with("resume") {
            ShellBehaviour::Sleep(Duration::from_secs(30 * 60))
        } else if cmd.contains("FAIL") {
            ShellBehaviour::Exit(1, "boom\n".into())
        } else {
            ShellBehaviour::Exit(0, String::new())
        }
    })
}

/// (node, minutes since the start, text) of every notification sent.
fn sent(ran: &Ran) -> Vec<(String, u64, String)> {
    ran.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::NotificationSent { text, .. } => Some((
                e.node.as_deref().unwrap_or_default().to_owned(),
                e.t_ms / 60_000,
                text.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn live_options() -> runbook::exec::RunOptions {
    let mut o = options(Mode::Live);
    o.settings.default_timeout = Some(Duration::from_secs(3600));
    o
}

#[tokio::test(start_paused = true)]
async fn updates_go_out_at_five_minutes_then_every_interval_while_run_and_step_last() {
    let notify = Arc::new(FakeNotify::default());
    let ran = run(
        compile(SOAK),
        live_options(),
        &[],
        adapters(shell(), notify.clone()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    let s = |node: &str, min: u64, text: &str| (node.to_owned(), min, text.to_owned());
    assert_eq!(
        sent(&ran),
        [
            s("soak", 5, "step: soaking api"),
            s("status_update", 5, "run: api still mitigating"),
            s("soak", 15, "step: soaking api"),
            s("soak", 25, "step: soaking api"),
            s("status_update", 25, "run: api still mitigating"),
            s("soak", 35, "step: soaking api"),
            // The step ends at 45m: its update due then is not sent, and
            // the run's stop before the handler.
            s("on_success", 45, "handler: done"),
        ]
    );
    // In the journal: actions of phase `status`, each with its end.
    let status_actions = ran
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::ActionStarted {
                    phase: Phase::Status,
                    ..
                }
            )
        })
        .count();
    assert_eq!(status_actions, 6);
    assert_eq!(
        ran.journal.matches(r#""phase":"status""#).count(),
        12,
        "{}",
        ran.journal
    );
}

#[tokio::test(start_paused = true)]
async fn the_runs_updates_go_on_through_the_rollback_and_stop_before_the_handler() {
    let notify = Arc::new(FakeNotify::default());
    let ran = run(
        compile(SOAK),
        live_options(),
        &[("fail_after", "true")],
        adapters(shell(), notify.clone()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::RolledBack);
    let run_updates: Vec<u64> = sent(&ran)
        .into_iter()
        .filter(|(n, _, _)| n == "status_update")
        .map(|(_, m, _)| m)
        .collect();
    // 45m of soak, then a 30m undo: 5, 25, 45 (not sent: the step ends
    // then, not the run), 65; the run ends at 75m.
    assert_eq!(run_updates, [5, 25, 45, 65]);
    let last = sent(&ran).pop().map(|(n, m, _)| (n, m));
    assert_eq!(last, Some(("on_failure".to_owned(), 75)));
}

#[tokio::test(start_paused = true)]
async fn a_short_run_sends_no_update() {
    let notify = Arc::new(FakeNotify::default());
    let quick = FakeShell::new(|_, _| ShellBehaviour::Exit(0, String::new()));
    let ran = run(
        compile(SOAK),
        live_options(),
        &[],
        adapters(quick, notify.clone()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    assert_eq!(
        notify.sent.lock().unwrap().clone(),
        [("ops".to_owned(), "handler: done".to_owned())]
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_shows_the_updates_at_their_virtual_times() {
    let notify = Arc::new(FakeNotify::default());
    let ran = run(
        compile(SOAK.replace("run \"soak 45m\"", "wait 45m").as_str()),
        options(Mode::DryRun),
        &[],
        adapters(shell(), notify),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    for line in [
        "[soak] ✉ would notify ops (status update at +5m): step: soaking api",
        "[status_update] ✉ would notify ops (status update at +25m): run: api still mitigating",
        "[soak] ✉ would notify ops (status update at +35m): step: soaking api",
    ] {
        assert!(ran.console.contains(line), "{line}\n{}", ran.console);
    }
    assert!(!ran.console.contains("+45m"), "{}", ran.console);
}

#[test]
fn the_plan_shows_each_schedule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("soak.runbook"), SOAK).unwrap();
    let out = run_cli(["plan", "soak.runbook"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "status update every 20m while the run is in progress (first at 5m):\n  notify ops: run: api still mitigating"
        ),
        "{text}"
    );
    assert!(
        text.contains("status update every 10m while the step is in progress (first at 5m):"),
        "{text}"
    );
}

/// A drill: the updates at their virtual times (`at:`), and a failing
/// update (`actions: {status_update: ...}`) is a warning, not a failure.
#[test]
fn drills_assert_when_updates_went_out_and_a_failed_one_fails_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rb = SOAK.replace("run \"soak 45m\"", "wait 45m");
    std::fs::write(dir.path().join("soak.runbook"), rb).unwrap();
    std::fs::write(
        dir.path().join("soak.times.drill.yaml"),
        "runbook: soak.runbook\nexpect:\n  outcome: succeeded\n  not_undone: [pause]\n  notifications:\n    - {channel: ops, contains: \"soaking\", at: 5m}\n    - {channel: ops, contains: \"still mitigating\", at: 25m}\n    - {channel: ops, contains: \"soaking\", at: 35m}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("soak.refused.drill.yaml"),
        "runbook: soak.runbook\nactions:\n  status_update: {result: fail, status: 429}\nexpect:\n  outcome: succeeded\n  exit_code: 0\n",
    )
    .unwrap();
    // Wrong time: the drill fails and says when it was sent.
    std::fs::write(
        dir.path().join("soak.wrong.drill.yaml"),
        "runbook: soak.runbook\nexpect:\n  notifications:\n    - {channel: ops, contains: \"soaking\", at: 10m}\n",
    )
    .unwrap();
    let out = run_cli(["test", "."], dir.path());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("PASS  soak/soak.times"), "{text}");
    assert!(text.contains("PASS  soak/soak.refused"), "{text}");
    assert!(text.contains("FAIL  soak/soak.wrong"), "{text}");
    assert!(
        text.contains("expected to ops containing \"soaking\" at +10m"),
        "{text}"
    );
    assert!(text.contains("\"step: soaking api\" at +5m"), "{text}");
}

#[test]
fn an_update_after_after_rollback_every_is_its_own_line_and_zero_is_refused() {
    let text = "runbook r {\n  channel ops = console\n  step a { run \"a\" undo \"b\" }\n  after rollback verify true within 5m every 30s\n  every 2m notify ops \"x\"\n}\n";
    let g = compile(text);
    assert_eq!(g.status_updates.len(), 1);
    assert_eq!(g.status_updates[0].every, Duration::from_secs(120));
    let v = g.after_rollback.as_ref().expect("after rollback");
    assert_eq!(v.every, Duration::from_secs(30));
    let zero = runbook::source::Source::new("z.runbook", text.replace("every 2m", "every 0s"));
    let report = runbook::compile::check(&zero);
    assert!(
        report
            .diags
            .iter()
            .any(|d| d.message.contains("a status update interval of zero")),
        "{:?}",
        report.diags
    );
}

/// `runbook drill` stamps each line with the virtual time it happened at.
#[test]
fn a_drill_log_shows_virtual_times() {
    let dir = tempfile::tempdir().unwrap();
    let rb = SOAK.replace("run \"soak 45m\"", "wait 45m");
    std::fs::write(dir.path().join("soak.runbook"), rb).unwrap();
    std::fs::write(
        dir.path().join("soak.drill.yaml"),
        "runbook: soak.runbook\nexpect:\n  outcome: succeeded\n",
    )
    .unwrap();
    let out = run_cli(
        ["drill", "soak.runbook", "--scenario", "soak.drill.yaml"],
        dir.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for line in [
        "+0:00:00   [pause] ",
        "+0:05:00   [soak] ✉ ",
        "+0:35:00   [soak] ✉ ",
        "+0:45:00 ✓ soak (45m)",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}
