//! `approve ... by other`: whoever started the run cannot approve the
//! step (web: the token's name; CLI: the OS user, or `--as`); the refused
//! attempt is answered with a reason, resumes nothing and is journalled
//! (`approval_attempt_refused`); someone else's approval goes through.

use crate::support::serve::{Serve, ALICE, BOB};
use crate::support::CliEnv;
use std::process::Stdio;
use std::time::{Duration, Instant};

const RUNBOOK: &str = r#"runbook two_person {
  input dir: string
  step gate {
    approve "Fail over the primary?" by other timeout 2m
  }
  step after {
    run "echo x >> {{dir}}/after.marker" readonly
  }
}
"#;

const ROUTES: &str = "routes:\n  - name: failover\n    alertname: Never\n    runbook: two.runbook\n    mode: run\n    inputs:\n      dir: { value: . }\n";

const JSON: (&str, &str) = ("Content-Type", "application/json");

#[test]
fn the_same_web_user_is_refused_with_a_reason_and_another_user_approves() {
    let s = Serve::start(&[("two.runbook", RUNBOOK), ("routes.yaml", ROUTES)], &[]);
    // bob starts the run.
    let r = s.request(
        "POST",
        "/runs",
        Some(BOB),
        &[JSON],
        br#"{"route":"failover","inputs":{"dir":"."}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["run_id"].as_str().unwrap().to_string();
    s.wait_pending(&id);
    let path = format!("/runs/{id}/approvals/gate");

    // bob approving his own run: 403 with the reason, nothing resumed.
    let r = s.request(
        "POST",
        &path,
        Some(BOB),
        &[JSON],
        br#"{"decision":"approve","reason":"trust me"}"#,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text().contains("`bob` started this run")
            && r.text().contains("approved by someone else"),
        "{}",
        r.text()
    );
    s.wait(
        "the refused attempt in the journal",
        Duration::from_secs(10),
        || s.journal(&id).contains("approval_attempt_refused"),
    );
    let journal = s.journal(&id);
    let refused = journal
        .lines()
        .find(|l| l.contains("\"approval_attempt_refused\""))
        .expect("journalled");
    assert!(refused.contains("\"by\":\"bob\""), "{refused}");
    assert!(refused.contains("\"via\":\"web\""), "{refused}");
    assert!(refused.contains("\"reason\":\"trust me\""), "{refused}");
    assert!(!journal.contains("approval_given"), "{journal}");
    assert!(!journal.contains("\"after\""), "nothing resumed: {journal}");

    // alice approves: the run goes on.
    let r = s.request(
        "POST",
        &path,
        Some(ALICE),
        &[JSON],
        br#"{"decision":"approve","reason":"checked the replica lag"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    s.wait("the run to finish", Duration::from_secs(30), || {
        s.journal(&id).contains("run_finished")
    });
    let journal = s.journal(&id);
    let given = journal
        .lines()
        .find(|l| l.contains("\"approval_given\""))
        .expect("approved");
    assert!(given.contains("\"by\":\"alice\""), "{given}");
    assert!(journal.contains("\"outcome\":\"succeeded\""), "{journal}");
}

#[test]
fn the_cli_user_who_started_the_run_is_refused_another_name_approves() {
    let env = CliEnv::new(&[("two.runbook", RUNBOOK)], None);
    let mut run = env
        .run_here("two.runbook", &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("runbook starts");
    let id = env.first_run();
    env.wait_for(&id, &["approval_asked"]);
    // The question is recorded just after `approval_asked` is journalled.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&env.out(&["approve", &id, "--runs-dir", "runs"]).stdout)
        .contains("gate  asked")
    {
        assert!(Instant::now() < deadline, "never pending");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Same OS user, no --as: refused.
    let same = env.out(&["approve", &id, "gate", "--runs-dir", "runs"]);
    assert_eq!(same.status.code(), Some(1));
    let err = String::from_utf8_lossy(&same.stderr);
    assert!(err.contains("started this run"), "{err}");
    assert!(err.contains("the attempt is recorded"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.journal(&id).contains("approval_attempt_refused") {
        assert!(Instant::now() < deadline, "{}", env.journal(&id));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(env.count("after.marker"), 0);
    // Pre-approving it is refused up front.
    let pre = env.out(&[
        "run",
        "two.runbook",
        "--runs-dir",
        "runs2",
        "-i",
        "dir=.",
        "--approve",
        "gate",
    ]);
    assert_eq!(pre.status.code(), Some(3), "{pre:?}");
    assert!(
        String::from_utf8_lossy(&pre.stderr).contains("cannot be pre-approved"),
        "{pre:?}"
    );
    // Another name (free text, not verified: docs/team.md) approves.
    let other = env.out(&[
        "approve",
        &id,
        "gate",
        "--runs-dir",
        "runs",
        "--as",
        "carol",
        "--reason",
        "ok",
    ]);
    assert!(other.status.success(), "{other:?}");
    let status = crate::support::wait_exit(&mut run, Duration::from_secs(30));
    assert!(status.success());
    assert_eq!(env.count("after.marker"), 1);
}
