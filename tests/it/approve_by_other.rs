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

/// bob starts the run over `POST /runs`; its id, once it waits on `gate`.
fn bob_starts_the_run(s: &Serve) -> String {
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
    id
}

#[test]
fn the_same_web_user_is_refused_with_a_reason_and_another_user_approves() {
    let s = Serve::start(&[("two.runbook", RUNBOOK), ("routes.yaml", ROUTES)], &[]);
    let id = bob_starts_the_run(&s);
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

/// The starter is kept in `run.json`: a run bob started from the web and
/// resumed from the command line by the OS user still refuses bob's
/// approval, and the OS user (not the starter) may approve.
#[test]
fn the_starter_survives_a_resume_and_is_shown_on_the_run_page() {
    let mut s = Serve::start(&[("two.runbook", RUNBOOK), ("routes.yaml", ROUTES)], &[]);
    let id = bob_starts_the_run(&s);
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(s.runs_dir().join(&id).join("run.json")).expect("run.json"),
    )
    .expect("run.json is JSON");
    assert_eq!(meta["started_by"], "bob", "{meta}");
    let page = s.request("GET", &format!("/runs/{id}"), Some(ALICE), &[], b"");
    assert!(
        page.text()
            .contains(r#"by <span id="started-by">bob</span>"#),
        "{}",
        page.text()
    );

    // The server dies; the OS user resumes the run from a terminal.
    s.kill();
    let dir = s.dir.clone();
    let cli = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_runbook"));
        c.current_dir(&dir)
            .args(args)
            .env("RUNBOOK_STATE_DIR", dir.join("state"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    };
    let mut resumed = crate::support::serve::Killed(
        cli(&["resume", &id, "--runs-dir", "runs"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("runbook resume starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(
        &cli(&["approve", &id, "--runs-dir", "runs"])
            .output()
            .expect("approve lists")
            .stdout,
    )
    .contains("gate  asked")
        || s.journal(&id).matches("\"approval_asked\"").count() < 2
    {
        assert!(Instant::now() < deadline, "never asked again");
        std::thread::sleep(Duration::from_millis(100));
    }
    // bob is still the starter after the resume...
    let bob = cli(&["approve", &id, "gate", "--runs-dir", "runs", "--as", "bob"])
        .output()
        .expect("approve runs");
    assert_eq!(bob.status.code(), Some(1), "{bob:?}");
    assert!(
        String::from_utf8_lossy(&bob.stderr).contains("`bob` started this run"),
        "{bob:?}"
    );
    // ...and the user who resumed it is not: their approval goes through.
    let me = cli(&[
        "approve",
        &id,
        "gate",
        "--runs-dir",
        "runs",
        "--reason",
        "ok",
    ])
    .output()
    .expect("approve runs");
    assert!(me.status.success(), "{me:?}");
    let status = crate::support::wait_exit(&mut resumed.0, Duration::from_secs(30));
    assert!(status.success(), "{}", s.journal(&id));
    assert!(s.journal(&id).contains("\"outcome\":\"succeeded\""));
}
