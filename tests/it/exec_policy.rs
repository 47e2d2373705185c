//! Rollback policy (issue 12): acknowledged writes (`undo none "why"`).

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
    let shell = FakeShell::failing_on_marker();
    let notify = Arc::new(FakeNotify::default());
    let ran = run(
        compile(ACKNOWLEDGED),
        options(Mode::Live),
        &[],
        adapters(shell.clone(), notify),
    )
    .await;
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
