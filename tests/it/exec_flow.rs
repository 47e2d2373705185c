//! Graph flow: `on_error continue`, `when`, `for` fan-outs with `parallel`
//! and `max_failures`, fan-out undo over completed items only, captures.

use crate::exec_support;

use exec_support::*;
use runbook::events::{EventKind, Mode, Outcome};
use runbook::exit;
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn on_error_continue_records_the_failure_and_goes_on() {
    let text = r#"
runbook cont {
  step a { run "do a" undo "undo a" }
  step b { run "do b FAIL" on_error continue }
  step c { run "do c" undo "undo c" }
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
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    assert_eq!(ran.summary.exit_code, exit::SUCCESS);
    assert_eq!(shell.commands(), ["do a", "do b FAIL", "do c"]);
    let failed = ran.of("node_failed");
    assert_eq!(failed.len(), 1);
    assert!(matches!(
        &failed[0].kind,
        EventKind::NodeFailed {
            continued: true,
            ..
        }
    ));
    assert!(ran.of("rollback_started").is_empty());
    assert!(
        ran.console.contains("failed (continued)"),
        "{}",
        ran.console
    );
}

#[tokio::test(start_paused = true)]
async fn a_false_when_skips_and_logs_the_values_that_made_it_false() {
    let text = r#"
runbook cond {
  input service: string = "api"
  input bad_revision: string
  step show { run "show {{service}}" readonly capture json as live }
  step revert {
    when live.revision == bad_revision
    run "revert {{service}}"
    undo "apply {{service}}"
  }
  step after { run "after" readonly }
}
"#;
    let shell = FakeShell::new(|_, cmd| {
        if cmd.starts_with("show") {
            ShellBehaviour::Exit(0, r#"{"revision": "r41"}"#.into())
        } else {
            ShellBehaviour::Exit(0, String::new())
        }
    });
    let ran = run(
        compile(text),
        options(Mode::Live),
        &[("bad_revision", "r42")],
        adapters(shell.clone(), Default::default()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    assert_eq!(shell.commands(), ["show api", "after"]);
    let skipped = ran.of("node_skipped");
    let EventKind::NodeSkipped { values, .. } = &skipped[0].kind else {
        unreachable!()
    };
    let names: Vec<(&str, String)> = values
        .iter()
        .map(|v| (v.name.as_str(), v.value.to_string()))
        .collect();
    assert_eq!(
        names,
        [
            ("live.revision", "\"r41\"".into()),
            ("bad_revision", "\"r42\"".into())
        ]
    );
    // And the true branch.
    let ran = run(
        compile(text),
        options(Mode::Live),
        &[("bad_revision", "r41")],
        adapters(shell.clone(), Default::default()),
    )
    .await;
    assert!(ran.of("node_skipped").is_empty());
    assert!(shell.commands().contains(&"revert api".to_string()));
}

const FANOUT: &str = r#"
runbook fan {
  input regions: list<string> = ["r1", "r2", "bad-r3", "r4", "bad-r5", "r6"]
  step drain {
    for region in regions parallel 2 max_failures MAXF {
      run "drain {{region}}"
    }
    undo for region in regions {
      run "restore {{region}}"
    }
  }
  step next { run "next FAILNEXT" undo "undo next" }
}
"#;

fn fan_shell() -> std::sync::Arc<FakeShell> {
    FakeShell::new(|_, cmd| {
        if cmd.contains("bad") && cmd.starts_with("drain")
            || cmd.contains("FAIL ")
            || cmd.ends_with("FAIL")
        {
            ShellBehaviour::Exit(1, String::new())
        } else {
            ShellBehaviour::Sleep(Duration::from_secs(1))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn fan_out_within_max_failures_succeeds_and_respects_parallel() {
    let text = FANOUT.replace("MAXF", "2").replace("FAILNEXT", "ok");
    let shell = fan_shell();
    let ran = run(
        compile(&text),
        options(Mode::Live),
        &[],
        adapters(shell.clone(), Default::default()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded, "{}", ran.console);
    assert_eq!(shell.max_concurrent(), 2);
    let drains = shell
        .commands()
        .iter()
        .filter(|c| c.starts_with("drain"))
        .count();
    assert_eq!(drains, 6);
    let ok = ran.of("node_succeeded");
    assert!(
        matches!(&ok[0].kind, EventKind::NodeSucceeded { failed_items, .. } if failed_items.len() == 2)
    );
}

#[tokio::test(start_paused = true)]
async fn fan_out_over_max_failures_stops_and_undoes_only_completed_items() {
    // max_failures 0: the first failure (bad-r3) stops new items.
    let text = FANOUT.replace("MAXF", "0").replace("FAILNEXT", "ok");
    let shell = fan_shell();
    let ran = run(
        compile(&text),
        options(Mode::Live),
        &[],
        adapters(shell.clone(), Default::default()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::RolledBack, "{}", ran.console);
    assert_eq!(ran.summary.failed_step.as_deref(), Some("drain"));
    let cmds = shell.commands();
    // r1, r2 run together (1s each); then r3 fails at once and r4 starts
    // beside it; no item starts after the failure.
    assert!(!cmds.contains(&"drain r6".to_string()), "{cmds:?}");
    assert!(!cmds.contains(&"drain bad-r5".to_string()), "{cmds:?}");
    let restored: Vec<&String> = cmds.iter().filter(|c| c.starts_with("restore")).collect();
    let drained_ok: Vec<String> = cmds
        .iter()
        .filter(|c| c.starts_with("drain") && !c.contains("bad"))
        .map(|c| c.replace("drain", "restore"))
        .collect();
    // Every completed item is restored, in reverse completion order, and nothing else.
    let mut expect = drained_ok.clone();
    expect.reverse();
    assert_eq!(
        restored.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        expect.iter().map(|s| s.as_str()).collect::<Vec<_>>()
    );
    assert!(!restored.iter().any(|c| c.contains("bad")));
    let plan = ran.of("rollback_started");
    let EventKind::RollbackStarted { plan, .. } = &plan[0].kind else {
        unreachable!()
    };
    assert_eq!(plan[0].node, "drain");
    assert_eq!(plan[0].items.len(), drained_ok.len());
}

#[tokio::test(start_paused = true)]
async fn a_later_failure_undoes_every_item_of_a_completed_fan_out() {
    let text = FANOUT.replace("MAXF", "2").replace("FAILNEXT", "FAIL");
    let shell = fan_shell();
    let ran = run(
        compile(&text),
        options(Mode::Live),
        &[],
        adapters(shell.clone(), Default::default()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::RolledBack, "{}", ran.console);
    let restored = shell
        .commands()
        .iter()
        .filter(|c| c.starts_with("restore"))
        .count();
    assert_eq!(restored, 4, "the 4 good regions, not the 2 that failed");
}

#[tokio::test(start_paused = true)]
async fn parallel_bounds_running_nodes() {
    let text = r#"
runbook wide {
  parallel {
    step a { run "a" readonly }
    step b { run "b" readonly }
    step c { run "c" readonly }
    step d { run "d" readonly }
  }
}
"#;
    let shell = FakeShell::new(|_, _| ShellBehaviour::Sleep(Duration::from_secs(1)));
    let mut opts = options(Mode::Live);
    opts.parallel = 3;
    let ran = run(
        compile(text),
        opts,
        &[],
        adapters(shell.clone(), Default::default()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    assert_eq!(shell.max_concurrent(), 3);
}
