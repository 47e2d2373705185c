//! Inputs never change the shape of a command: a value becomes one shell
//! word, a URL component is percent-encoded, a JSON string is escaped.

use crate::exec_support;

use exec_support::*;
use runbook::adapters::{real, Adapters};
use runbook::events::{EventKind, Mode, Outcome};
use std::sync::Arc;

const ATTACKS: &[&str] = &[
    "x; rm -rf /",
    "$(touch pwned)",
    "`touch pwned`",
    "a' ; touch pwned ; echo 'b",
    "a\" ; touch pwned ; echo \"b",
    "x && touch pwned || touch pwned",
    "--help\ntouch pwned",
    "*",
];

const TEXT: &str = r#"
runbook inject {
  input target: string
  step echo { run "printf '%s' {{target}} > out.txt" readonly }
}
"#;

#[tokio::test(start_paused = true)]
async fn each_input_stays_one_shell_word() {
    for attack in ATTACKS {
        let shell = FakeShell::failing_on_marker();
        let ran = run(
            compile(TEXT),
            options(Mode::Live),
            &[("target", attack)],
            adapters(shell.clone(), Default::default()),
        )
        .await;
        assert_eq!(ran.summary.outcome, Outcome::Succeeded);
        let cmd = &shell.commands()[0];
        let words = shlex::split(cmd).expect("a valid command line");
        assert_eq!(words, ["printf", "%s", attack, ">", "out.txt"], "{cmd}");
    }
}

#[tokio::test]
async fn a_real_shell_sees_the_literal_value_and_runs_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let adapters: Adapters = real::real(real::RealSettings {
        shell_cwd: Some(dir.path().to_path_buf()),
        ..Default::default()
    });
    for attack in ATTACKS {
        let ran = run(
            compile(TEXT),
            options(Mode::Live),
            &[("target", attack)],
            adapters.clone(),
        )
        .await;
        assert_eq!(ran.summary.outcome, Outcome::Succeeded, "{}", ran.console);
        let out = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
        assert_eq!(out, *attack);
        assert!(!dir.path().join("pwned").exists(), "{attack} ran a command");
    }
}

#[tokio::test(start_paused = true)]
async fn url_and_json_values_are_escaped_for_their_context() {
    let text = r#"
runbook http_inject {
  input target: string
  step post {
    http post "https://lb.example.com/regions/{{target}}/drain" {
      body json """{"region": "{{target}}"}"""
    }
  }
}
"#;
    let shell = FakeShell::failing_on_marker();
    let ran = run(
        compile(text),
        options(Mode::DryRun),
        &[("target", "a/b?c=\"d\"&e")],
        adapters(shell, Default::default()),
    )
    .await;
    let req = ran
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ActionStarted { request, .. } => Some(request.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        req.starts_with("POST https://lb.example.com/regions/a%2Fb%3Fc%3D%22d%22%26e/drain"),
        "{req}"
    );
    let body = req.split("\n\n").nth(1).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(parsed["region"], "a/b?c=\"d\"&e");
    let _ = Arc::new(());
}
