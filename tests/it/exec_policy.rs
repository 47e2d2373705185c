//! Rollback policy (issue 12): acknowledged writes (`undo none "why"`),
//! keep points (`keep`), honest outcomes (`kept`, `nothing_changed`).

use crate::exec_support;

use exec_support::*;
use runbook::events::{EventKind, Mode, Outcome};
use runbook::source::Source;
use std::sync::Arc;

const ACKNOWLEDGED: &str = r#"
runbook acknowledged {
  step backup { run "do backup" undo none "a local copy: the undo of b restores from it" }
  step b { run "do b" undo "undo b" }
  step c { run "do c FAIL" undo "undo c" }
}
"#;

/// Runs `text` live; a shell command with `FAIL` in it fails.
async fn run_live(text: &str) -> (Ran, Arc<FakeShell>, Arc<FakeNotify>) {
    let shell = FakeShell::failing_on_marker();
    let notify = Arc::new(FakeNotify::default());
    let ran = run(
        compile(text),
        options(Mode::Live),
        &[],
        adapters(shell.clone(), notify.clone()),
    )
    .await;
    (ran, shell, notify)
}

fn codes(text: &str) -> Vec<String> {
    let report = runbook::compile::check(&Source::new("t.runbook", text));
    report.diags.iter().map(|d| d.code.to_string()).collect()
}

#[test]
fn undo_none_silences_write_without_undo_and_keeps_the_write_effect() {
    assert_eq!(codes(ACKNOWLEDGED), Vec::<String>::new());
    let without = ACKNOWLEDGED.replace(
        r#" undo none "a local copy: the undo of b restores from it""#,
        "",
    );
    assert_eq!(codes(&without), ["runbook::write_without_undo"]);
    let graph = compile(ACKNOWLEDGED);
    let backup = graph.node("backup").unwrap();
    assert_eq!(backup.effect, runbook::plan::Effect::Write);
    assert_eq!(
        backup.undo_none.as_deref(),
        Some("a local copy: the undo of b restores from it")
    );
}

#[test]
fn undo_and_undo_none_on_one_step_is_a_repeated_clause() {
    let text = r#"runbook r { step a { run "x" undo "y" undo none "z" } }"#;
    assert_eq!(codes(text), ["runbook::repeated_clause"]);
    let text = r#"runbook r { step a { run "x" readonly undo none "z" } }"#;
    assert_eq!(codes(text), ["runbook::undo_without_effect"]);
}

#[tokio::test(start_paused = true)]
async fn rollback_lists_an_acknowledged_write_with_its_reason() {
    let (ran, shell, _) = run_live(ACKNOWLEDGED).await;
    assert_eq!(ran.summary.outcome, Outcome::RolledBack);
    assert_eq!(
        shell.commands(),
        ["do backup", "do b", "do c FAIL", "undo b"]
    );
    let started = ran.of("rollback_started");
    let EventKind::RollbackStarted { not_undone, .. } = &started[0].kind else {
        unreachable!()
    };
    assert_eq!(not_undone.len(), 1);
    assert_eq!(not_undone[0].node, "backup");
    assert_eq!(
        not_undone[0].reason,
        "undo none: a local copy: the undo of b restores from it"
    );
    assert!(
        ran.journal
            .contains("undo none: a local copy: the undo of b restores from it"),
        "{}",
        ran.journal
    );
}

const KEEP: &str = r#"
runbook keep {
  channel log = console
  check healthy { shell "probe" }
  step freeze { run "do freeze" undo "undo freeze" }
  step revert { run "do revert" undo "undo revert" keep }
  step drain { run "do drain" undo "undo drain" }
  step unfreeze { run "do unfreeze FAIL" undo "undo unfreeze" }
  on failure { notify log "rollback {{failure.rollback}}" }
  after rollback verify healthy within 1m every 10s
}
"#;

#[tokio::test(start_paused = true)]
async fn a_failure_after_a_keep_point_undoes_only_what_came_after_it() {
    let (ran, shell, notify) = run_live(KEEP).await;
    assert_eq!(ran.summary.outcome, Outcome::Kept);
    assert_eq!(ran.summary.exit_code, runbook::exit::KEPT);
    assert_eq!(
        shell.commands(),
        [
            "do freeze",
            "do revert",
            "do drain",
            "do unfreeze FAIL",
            "undo drain", // after the keep point: undone
        ]
    );
    // Something was undone: `after rollback verify` runs.
    assert_eq!(ran.of("verify_poll").len(), 1);
    let started = ran.of("rollback_started");
    let EventKind::RollbackStarted { not_undone, .. } = &started[0].kind else {
        unreachable!()
    };
    let kept: Vec<(&str, &str)> = not_undone
        .iter()
        .map(|n| (n.node.as_str(), n.reason.as_str()))
        .collect();
    assert_eq!(
        kept,
        [
            ("revert", "kept: it is the keep point"),
            (
                "freeze",
                "kept: it completed before the keep point `revert`"
            ),
        ]
    );
    let sent = notify.sent.lock().unwrap().clone();
    assert_eq!(sent[0].1, "rollback kept");
    assert!(ran.console.contains("mitigation kept"), "{}", ran.console);
    assert!(
        ran.journal.contains(r#""outcome":"kept""#),
        "{}",
        ran.journal
    );
}

#[tokio::test(start_paused = true)]
async fn everything_kept_means_no_after_rollback_verify() {
    // The failure comes right after the keep point: nothing to undo.
    let text = KEEP.replace(r#"step drain { run "do drain" undo "undo drain" }"#, "");
    let (ran, shell, _) = run_live(&text).await;
    assert_eq!(ran.summary.outcome, Outcome::Kept);
    // No undo and no probe: `after rollback verify` did not run.
    assert_eq!(
        shell.commands(),
        ["do freeze", "do revert", "do unfreeze FAIL"]
    );
    assert!(ran.of("verify_poll").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_keep_point_skipped_by_its_when_keeps_nothing() {
    let text = KEEP.replace(
        r#"step revert { run "do revert" undo "undo revert" keep }"#,
        r#"step revert { when false run "do revert" undo "undo revert" keep }"#,
    );
    let (ran, _, _) = run_live(&text).await;
    assert_eq!(ran.summary.outcome, Outcome::RolledBack);
    assert_eq!(ran.summary.exit_code, runbook::exit::ROLLED_BACK);
    assert_eq!(ran.undone(), ["drain", "freeze"]);
}

#[tokio::test(start_paused = true)]
async fn a_failure_before_any_change_is_nothing_changed_without_a_rollback() {
    let text = r#"
runbook guard {
  channel log = console
  check healthy { shell "probe" }
  step look { run "do look" readonly }
  step guard { run "do guard FAIL" readonly }
  step change { run "do change" undo "undo change" }
  on failure { notify log "rollback {{failure.rollback}}" }
  after rollback verify healthy within 1m every 10s
}
"#;
    let (ran, shell, notify) = run_live(text).await;
    assert_eq!(ran.summary.outcome, Outcome::NothingChanged);
    assert_eq!(ran.summary.exit_code, runbook::exit::NOTHING_CHANGED);
    // No rollback, and no after rollback verify (its probe never ran).
    assert_eq!(shell.commands(), ["do look", "do guard FAIL"]);
    assert!(ran.of("rollback_started").is_empty());
    assert!(ran.of("verify_poll").is_empty());
    let sent = notify.sent.lock().unwrap().clone();
    assert_eq!(sent[0].1, "rollback none");
    assert!(
        ran.console.contains("STOPPED, nothing changed"),
        "{}",
        ran.console
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_that_did_not_complete_is_still_nothing_changed() {
    let text = r#"
runbook first_write_fails {
  step change { run "do change FAIL" undo "undo change" }
}
"#;
    let (ran, shell, _) = run_live(text).await;
    assert_eq!(ran.summary.outcome, Outcome::NothingChanged);
    assert_eq!(shell.commands(), ["do change FAIL"]);
}

const ESCALATE: &str = r#"
runbook escalate {
  channel log = console
  input members_down: int = 2
  check healthy { shell "probe" }
  step drain { run "do drain" undo "undo drain" }
  step quorum_at_risk {
    when members_down > 1
    escalate "{{members_down}} members down: a human decides"
    retry 3
  }
  step defrag { run "do defrag" undo "undo defrag" }
  on failure { notify log "{{failure.step}}: {{failure.reason}} (rollback {{failure.rollback}})" }
  after rollback verify healthy within 1m every 10s
}
"#;

#[tokio::test(start_paused = true)]
async fn escalate_stops_the_run_for_a_human_and_undoes_nothing() {
    let (ran, shell, notify) = run_live(ESCALATE).await;
    assert_eq!(ran.summary.outcome, Outcome::NeedsHuman);
    assert_eq!(ran.summary.exit_code, runbook::exit::NEEDS_HUMAN);
    assert_eq!(ran.summary.failed_step.as_deref(), Some("quorum_at_risk"));
    // Not retried, nothing undone, no after rollback verify.
    assert_eq!(shell.commands(), ["do drain"]);
    let escalations: Vec<_> = ran
        .of("action_started")
        .into_iter()
        .filter(|e| e.node.as_deref() == Some("quorum_at_risk"))
        .collect();
    assert_eq!(escalations.len(), 1);
    assert!(ran.of("rollback_started").is_empty());
    assert!(ran.of("verify_poll").is_empty());
    let sent = notify.sent.lock().unwrap().clone();
    assert_eq!(
        sent[0].1,
        "quorum_at_risk: escalated to a human: 2 members down: a human decides (rollback escalated)"
    );
    assert!(ran.console.contains("NEEDS A HUMAN"), "{}", ran.console);
    assert!(
        ran.journal.contains(r#""outcome":"needs_human""#),
        "{}",
        ran.journal
    );
}

#[tokio::test(start_paused = true)]
async fn an_escalate_skipped_by_its_when_lets_the_run_go_on() {
    let text = ESCALATE.replace("= 2", "= 1");
    let (ran, shell, _) = run_live(&text).await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    assert_eq!(shell.commands(), ["do drain", "do defrag"]);
}

#[test]
fn escalate_is_only_a_steps_own_action() {
    let text = r#"runbook r { step a { run "x" undo escalate "no" } }"#;
    assert_eq!(codes(text), ["runbook::misplaced_escalate"]);
    let text =
        r#"runbook r { input l: list<string> = ["a"] step a { for x in l { escalate "{{x}}" } } }"#;
    assert_eq!(codes(text), ["runbook::misplaced_escalate"]);
    let text = r#"runbook r { step a { escalate "" } }"#;
    assert_eq!(codes(text), ["runbook::empty_reason"]);
}

// ---- timeouts that mean one thing -------------------------------------------

/// Runs a drill of `runbook` (text) with `scenario` (YAML, without its
/// `runbook:` line); panics with the verdicts if an expectation fails.
fn drill(runbook: &str, scenario: &str) -> runbook::drill::runner::DrillRun {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.runbook"), runbook).unwrap();
    let path = dir.path().join("t.drill.yaml");
    std::fs::write(&path, format!("runbook: t.runbook\n{scenario}")).unwrap();
    let ran = runbook::drill::runner::run_file(&path, vec![]).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.reports
                .iter()
                .map(|r| r.render(false))
                .collect::<String>()
        )
    });
    assert!(ran.passed(), "{:#?}", ran.verdicts);
    ran
}

const TIMEOUTS: &str = r#"
runbook timeouts {
  step gated {
    approve "Go on?" timeout 10m
    run "deployctl unfreeze api"
    timeout 30s
    undo "deployctl freeze api"
  }
  step restart {
    run "systemctl restart api"
    timeout 10s
    undo "systemctl start api-old"
  }
  step fails { run "false" undo none "a test" }
}
"#;

#[test]
fn an_approval_waits_its_own_timeout_not_the_steps() {
    // The step's `timeout 30s` bounds the unfreeze; the approver answers
    // after 2 minutes, well inside the approval's own 10 minutes.
    let ran = drill(
        TIMEOUTS,
        "approvals:\n  gated: {approve: true, after: 2m, by: alice}\n\
         expect:\n  succeeded: [gated, restart]\n",
    );
    assert!(ran.events.iter().any(|e| e.kind.name() == "approval_given"));
}

#[test]
fn an_undo_has_its_own_timeout_not_the_steps() {
    // `restart` has `timeout 10s`; its undo takes 1 minute: the run's
    // default (5m) bounds it, not the step's 10 seconds.
    drill(
        TIMEOUTS,
        "undo:\n  restart: {takes: 1m}\n  gated: {takes: 1m}\n\
         actions:\n  fails: {result: fail}\n\
         expect:\n  outcome: rolled_back\n  rollback: [restart, gated]\n  undo_failed: []\n",
    );
    // With `undo timeout 20s`, the same minute is too long.
    let text = TIMEOUTS.replace(
        r#"undo "systemctl start api-old""#,
        r#"undo timeout 20s "systemctl start api-old""#,
    );
    drill(
        &text,
        "undo:\n  restart: {takes: 1m}\n\
         actions:\n  fails: {result: fail}\n\
         expect:\n  outcome: rollback_incomplete\n  undo_failed: [restart]\n",
    );
}

#[test]
fn after_rollback_verify_takes_consecutive() {
    let text = r#"
runbook r {
  check healthy { shell "probe" }
  step a { run "do a" undo "undo a" }
  after rollback verify healthy within 1m every 10s consecutive 3
}
"#;
    let policy = compile(text).after_rollback.clone().unwrap();
    assert_eq!(policy.consecutive, 3);
    let zero = text.replace("consecutive 3", "consecutive 0");
    assert_eq!(codes(&zero), ["runbook::invalid_consecutive"]);
}
