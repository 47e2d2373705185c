//! A handler may send a secret (paging someone needs a token) and never
//! shows it: `runbook run` end to end, the `on failure` handler posting to a
//! real HTTP server on 127.0.0.1 with the token in a header.

use crate::support;

use std::process::Command;
use std::time::Duration;
use support::{run_files, Reply, TestHttpServer};

const SECRET: &str = "pager-Tok3n-7f1e-value";

#[test]
fn on_failure_sends_the_token_to_the_pager_and_shows_it_nowhere() {
    let pager = TestHttpServer::start();
    pager.set_reply("/v1/page", Reply::json(202, r#"{"status":"paged"}"#));
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
runbook page_on_failure {{
  secret pager_token = env "RB_PAGER_TOKEN"
  step restart {{
    run "echo restarted > state.txt"
    undo "rm state.txt"
  }}
  step check {{ run "exit 3" readonly }}
  on failure {{
    http post "{}/v1/page" header "Authorization" = "Bearer {{{{pager_token}}}}" body json "{{\"summary\": \"{{{{failure.step}}}}: {{{{failure.reason}}}}\"}}"
  }}
}}
"#,
        pager.url()
    );
    std::fs::write(dir.path().join("r.runbook"), text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["run", "r.runbook", "--runs-dir"])
        .arg(dir.path().join("runs"))
        .current_dir(dir.path())
        .env("RUNBOOK_STATE_DIR", dir.path().join("state"))
        .env("RB_PAGER_TOKEN", SECRET)
        .output()
        .expect("runbook runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(runbook::exit::ROLLED_BACK),
        "{stdout}\n{stderr}"
    );
    assert!(!dir.path().join("state.txt").exists(), "the undo ran");

    // Sent: the pager got the real token, and the failure in the body.
    let pages = pager.wait_for_requests(1, Duration::from_secs(10));
    assert_eq!(pages.len(), 1, "one page");
    assert_eq!(
        pages[0].header("Authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(
        pages[0].json()["summary"],
        "check: exited with status 3",
        "{}",
        pages[0].body_str()
    );

    // Shown nowhere: not on the console, not in anything the run wrote.
    let files = run_files(&dir.path().join("runs"));
    assert!(
        files.contains("/v1/page"),
        "the journal records the request"
    );
    for (what, text) in [
        ("stdout", &*stdout),
        ("stderr", &*stderr),
        ("run files", &files),
    ] {
        assert!(!text.contains(SECRET), "the token leaked into {what}");
        assert!(
            !text.contains("Tok3n"),
            "part of the token leaked into {what}"
        );
    }
}
