//! `if C { ... } else if C { ... } else { ... }`: decided once when
//! reached (journalled as `branch_taken`), only the arm taken runs, and
//! the rollback undoes only what that arm did.

use crate::exec_support;

use exec_support::*;
use runbook::adapters::Adapters;
use runbook::events::{CheckStatus, EventKind, Mode, Outcome};
use runbook::exec::scheduler::NodeState;
use std::sync::{Arc, Mutex};

const LADDER: &str = r#"
runbook ladder {
  input mode: string = "b"
  input fail: bool = false
  check primary_ok {
    shell "probe primary"
    expect exit == 0
  }
  step first { run "do first" undo "undo first" }
  if mode == "a" {
    step a1 { run "do a1" undo "undo a1" }
  } else if mode == "b" and primary_ok {
    step b1 { run "do b1" undo "undo b1" }
    step b2 { run "do b2" undo "undo b2" }
  } else {
    step c1 { run "do c1" undo "undo c1" }
  }
  step last {
    when fail
    run "do last FAIL"
    undo "undo last"
  }
}
"#;

fn taken(ran: &Ran) -> Vec<(Option<usize>, String, Vec<String>)> {
    ran.events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::BranchTaken {
                arm,
                taken,
                skipped,
                ..
            } => Some((*arm, taken.clone(), skipped.clone())),
            _ => None,
        })
        .collect()
}

/// Adapters whose check `primary_ok` answers `primary`, counting probes.
fn with_primary(sh: Arc<FakeShell>, primary: bool, probes: Arc<Mutex<u32>>) -> Adapters {
    let mut ad = adapters(sh, Arc::new(FakeNotify::default()));
    ad.oracle = Some(Arc::new(FnOracle(Box::new(move |_, _| {
        *probes.lock().unwrap() += 1;
        if primary {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        }
    }))));
    ad
}

#[tokio::test(start_paused = true)]
async fn the_first_arm_that_holds_runs_and_the_rollback_undoes_only_it() {
    let sh = FakeShell::failing_on_marker();
    let probes = Arc::new(Mutex::new(0));
    let ran = run(
        compile(LADDER),
        options(Mode::Live),
        &[("fail", "true")],
        with_primary(sh.clone(), true, probes.clone()),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::RolledBack);
    assert_eq!(
        sh.commands(),
        [
            "do first",
            "do b1",
            "do b2",
            "do last FAIL",
            "undo b2",
            "undo b1",
            "undo first"
        ]
    );
    assert_eq!(ran.state("a1"), NodeState::Skipped);
    assert_eq!(ran.state("c1"), NodeState::Skipped);
    // Decided once, with the steps it leaves out.
    assert_eq!(
        taken(&ran),
        [(
            Some(1),
            "else if mode == \"b\" and primary_ok".to_owned(),
            vec!["a1".to_owned(), "c1".to_owned()]
        )]
    );
    // The check was probed once, for the decision.
    assert_eq!(*probes.lock().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_arm_holding_takes_else() {
    let sh = FakeShell::failing_on_marker();
    let ran = run(
        compile(LADDER),
        options(Mode::Live),
        &[],
        with_primary(sh.clone(), false, Arc::new(Mutex::new(0))),
    )
    .await;
    assert_eq!(ran.summary.outcome, Outcome::Succeeded);
    assert_eq!(ran.state("c1"), NodeState::Succeeded);
    for n in ["a1", "b1", "b2"] {
        assert_eq!(ran.state(n), NodeState::Skipped, "{n}");
    }
    assert_eq!(taken(&ran)[0].1, "else");
    let skipped = ran.of("node_skipped");
    assert!(skipped.iter().any(|e| matches!(&e.kind,
        EventKind::NodeSkipped { reason, .. } if reason == "the branch took `else`")));
}

#[tokio::test(start_paused = true)]
async fn without_else_and_no_arm_holding_the_run_goes_on() {
    let text = r#"
runbook r {
  input mode: string = "z"
  step first { run "do first" undo "undo first" }
  if mode == "a" {
    step a1 { run "do a1" undo "undo a1" }
  }
  step last { run "do last" undo "undo last" }
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
    assert_eq!(sh.commands(), ["do first", "do last"]);
    assert_eq!(
        taken(&ran),
        [(None, "none".to_owned(), vec!["a1".to_owned()])]
    );
}

#[test]
fn the_graph_holds_the_branch_and_each_arm_runs_in_order() {
    let g = compile(LADDER);
    assert_eq!(g.branches.len(), 1);
    let arms: Vec<Vec<String>> = g.branches[0].arms.iter().map(|a| a.nodes.clone()).collect();
    assert_eq!(arms, [vec!["a1"], vec!["b1", "b2"], vec!["c1"]]);
    let deps = |id: &str| g.node(id).unwrap().deps.clone();
    assert_eq!(deps("a1"), ["first"]);
    assert_eq!(deps("b1"), ["first"]);
    assert_eq!(deps("b2"), ["b1"]);
    assert_eq!(deps("c1"), ["first"]);
    assert_eq!(deps("last"), ["a1", "b2", "c1"]);
}

#[test]
fn an_arm_step_reads_the_captures_above_it_in_its_arm_but_not_below() {
    let ok = r#"
runbook r {
  input go: bool = true
  if go {
    step read { run "show" readonly capture text as seen }
    step use { run "use {{seen}}" undo "unuse {{seen}}" }
  }
}
"#;
    assert!(runbook::compile::compile(&runbook::source::Source::new("ok", ok)).is_ok());
    let bad = r#"
runbook r {
  input go: bool = true
  if go {
    step use { run "use {{seen}}" undo "unuse {{seen}}" }
    step read { run "show" readonly capture text as seen }
  }
}
"#;
    let report = runbook::compile::check(&runbook::source::Source::new("bad", bad));
    assert!(
        report
            .diags
            .iter()
            .any(|d| d.code == "runbook::capture_not_set"),
        "{}",
        report.render(false)
    );
}
