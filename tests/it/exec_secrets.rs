//! Secrets are sent, never shown: not in the journal, not on the console,
//! not in an error message, even when a command echoes them back.

use crate::exec_support;

use exec_support::*;
use runbook::events::{Mode, Outcome};
use std::sync::Arc;

const SECRET: &str = "s3cr3t-T0KEN-value-4242";

fn runbook_text(path: &str) -> String {
    format!(
        r#"
runbook secrets {{
  secret token = file "{path}"
  channel log = console
  step deploy {{
    run "deploy --token {{{{token}}}}"
    undo "undeploy --token {{{{token}}}}"
  }}
  step boom {{ run "FAIL --token {{{{token}}}}" }}
  on failure {{ notify log "failed: {{{{failure.reason}}}}" }}
}}
"#
    )
}

#[tokio::test(start_paused = true)]
async fn a_secret_never_reaches_the_journal_the_console_or_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    let graph = compile(&runbook_text(&path.display().to_string()));

    // The fake shell echoes its command line back, on stdout and stderr, and
    // fails with it in its output: the worst case for redaction.
    let shell = FakeShell::new(|_, cmd| {
        if cmd.starts_with("FAIL") {
            ShellBehaviour::Exit(3, format!("error: bad token in `{cmd}`\n"))
        } else {
            ShellBehaviour::Exit(0, format!("ran {cmd}\n"))
        }
    });
    let notify = Arc::new(FakeNotify::default());
    let mut opts = options(Mode::Live);
    opts.secrets = runbook::exec::inputs::load_secrets(&graph.secrets, true).unwrap();
    let ran = run(graph, opts, &[], adapters(shell.clone(), notify.clone())).await;
    assert_eq!(ran.summary.outcome, Outcome::RolledBack);

    // It was sent: the adapter got the real value.
    assert!(
        shell.commands().iter().all(|c| c.contains(SECRET)),
        "{:?}",
        shell.commands()
    );
    // It was never shown.
    assert!(!ran.journal.contains(SECRET), "journal leaks the secret");
    assert!(
        !ran.console.contains(SECRET),
        "console leaks the secret:\n{}",
        ran.console
    );
    let reason = ran.summary.failure_reason.clone().unwrap_or_default();
    assert!(!reason.contains(SECRET));
    // Partial forms neither (a suffix would betray it).
    assert!(!ran.journal.contains("T0KEN-value"));
    // What is shown instead.
    assert!(
        ran.journal.contains("deploy --token '***'") || ran.journal.contains("deploy --token ***")
    );
    // The failure text sent by `on failure` holds the redacted reason only.
    for (_, text) in notify.sent.lock().unwrap().iter() {
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[test]
fn a_missing_secret_is_an_error_naming_where_it_was_looked_for() {
    let graph = compile(&runbook_text("/nonexistent/runbook-test-token"));
    let errs = runbook::exec::inputs::load_secrets(&graph.secrets, true).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].contains("/nonexistent/runbook-test-token"),
        "{errs:?}"
    );
    // A dry run does without it.
    let ok = runbook::exec::inputs::load_secrets(&graph.secrets, false).unwrap();
    assert_eq!(ok.get("token"), Some(&None));
}
