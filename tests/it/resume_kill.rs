//! `runbook resume` after the real binary is SIGKILLed at several points
//! (mid-step, between steps, mid-rollback) and after a torn journal line:
//! the marker files the steps append to show that no completed step (or
//! finished undo) ran twice and that the run finished.

use crate::support;

use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::time::Duration;
use support::{text, CliEnv};
const SECRET: &str = "s3cr3t-resume-value";

/// `a` (undo), `pause` (a wait: the window between steps), `b` (verify
/// by a check on its marker), `c` (no verify: in doubt needs an answer),
/// `d`. With `fail=true`, `boom` fails at the end and everything rolls back.
const RUNBOOK: &str = r#"
runbook markers {
  input dir: string
  input fail: bool = false
  secret tok = env "RB_SECRET"
  check b_done {
    shell "test -f {{dir}}/b.marker"
    expect exit == 0
  }
  step a {
    run "echo x >> {{dir}}/a.marker; test -n {{tok}}"
    undo "echo u >> {{dir}}/a.undo"
  }
  step pause { wait 2s }
  step b {
    run "echo x >> {{dir}}/b.marker; sleep 2"
    verify b_done within 5s every 1s
    undo "echo u >> {{dir}}/b.undo; sleep 2"
  }
  step c {
    run "echo x >> {{dir}}/c.marker; sleep 2"
    undo "echo u >> {{dir}}/c.undo"
  }
  step d { run "echo x >> {{dir}}/d.marker" irreversible }
  step boom {
    when fail
    run "exit 1"
  }
}
"#;

struct Env {
    cli: CliEnv,
}

impl Env {
    fn new() -> Env {
        let cli = CliEnv::new(&[("m.runbook", RUNBOOK)], Some(("RB_SECRET", SECRET)));
        Env { cli }
    }

    fn start(&self, extra: &[&str]) -> Child {
        self.cli
            .run_here("m.runbook", extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run_out(&self, args: &[&str]) -> Output {
        self.cli.out(args)
    }

    fn run_id(&self) -> String {
        self.cli.first_run()
    }

    fn journal_path(&self) -> PathBuf {
        self.cli.journal_path(&self.run_id())
    }

    fn journal(&self) -> String {
        self.cli.journal(&self.run_id())
    }

    /// Waits until the journal has a line containing every one of `parts`.
    fn wait_for(&self, parts: &[&str]) {
        self.cli.wait_for(&self.run_id(), parts)
    }

    fn count(&self, marker: &str) -> usize {
        self.cli.count(marker)
    }

    fn resume(&self, extra: &[&str]) -> Output {
        let id = self.run_id();
        let mut args = vec!["resume", id.as_str(), "--runs-dir", "runs"];
        args.extend_from_slice(extra);
        self.run_out(&args)
    }

    fn assert_no_secret(&self, outputs: &[&Output]) {
        assert!(!self.journal().contains(SECRET), "secret in the journal");
        for o in outputs {
            assert!(!String::from_utf8_lossy(&o.stdout).contains(SECRET));
            assert!(!String::from_utf8_lossy(&o.stderr).contains(SECRET));
        }
        let runs = self.run_out(&["runs", "--runs-dir", "runs"]);
        assert!(!String::from_utf8_lossy(&runs.stdout).contains(SECRET));
    }
}

fn kill9(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn finished(journal: &str) -> bool {
    journal
        .lines()
        .last()
        .is_some_and(|l| l.contains("\"kind\":\"run_finished\""))
}

fn verify_ok(env: &Env) {
    let id = env.run_id();
    let v = env.run_out(&["verify-journal", &id, "--runs-dir", "runs"]);
    assert!(v.status.success(), "{}", text(&v));
}

#[test]
fn killed_mid_step_with_a_verify_resumes_without_running_it_again() {
    let env = Env::new();
    let child = env.start(&[]);
    env.wait_for(&["\"node\":\"b\"", "action_started"]);
    // b's marker is written at once, then it sleeps: kill inside it.
    while env.count("b.marker") == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    kill9(child);
    let listing = env.run_out(&["runs", "--runs-dir", "runs"]);
    assert!(text(&listing).contains("interrupted"), "{}", text(&listing));

    let out = env.resume(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (m, n) in [
        ("a.marker", 1),
        ("b.marker", 1),
        ("c.marker", 1),
        ("d.marker", 1),
    ] {
        assert_eq!(env.count(m), n, "{m}");
    }
    let j = env.journal();
    assert!(finished(&j));
    assert!(j.contains("its verify decides"));
    verify_ok(&env);
    env.assert_no_secret(&[&out, &listing]);
}

#[test]
fn killed_mid_step_without_a_verify_asks_then_honours_assume_done() {
    let env = Env::new();
    let child = env.start(&[]);
    env.wait_for(&["\"node\":\"c\"", "action_started"]);
    while env.count("c.marker") == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    kill9(child);
    let before = env.journal();

    let asked = env.resume(&[]);
    assert_eq!(asked.status.code(), Some(3), "{}", text(&asked));
    assert!(text(&asked).contains("--assume-done c"), "{}", text(&asked));
    assert!(text(&asked).contains("in doubt"));
    assert_eq!(env.journal(), before, "a refused resume changes nothing");

    let wrong = env.resume(&["--assume-done", "a"]);
    assert_eq!(wrong.status.code(), Some(3));
    assert!(
        text(&wrong).contains("`a` is not in doubt"),
        "{}",
        text(&wrong)
    );

    let out = env.resume(&["--assume-done", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for m in ["a.marker", "b.marker", "c.marker", "d.marker"] {
        assert_eq!(env.count(m), 1, "{m}");
    }
    assert!(finished(&env.journal()));
    verify_ok(&env);
    env.assert_no_secret(&[&asked, &out]);
}

#[test]
fn killed_mid_step_assumed_failed_rolls_back_what_completed() {
    let env = Env::new();
    let child = env.start(&[]);
    env.wait_for(&["\"node\":\"c\"", "action_started"]);
    kill9(child);
    let out = env.resume(&["--assume-failed", "c"]);
    // Rolled back cleanly: exit 4.
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(env.count("a.marker"), 1);
    assert_eq!(env.count("b.marker"), 1);
    assert_eq!(env.count("d.marker"), 0);
    assert_eq!(
        env.count("c.undo"),
        0,
        "a step taken as failed is not undone"
    );
    assert_eq!(env.count("b.undo"), 1);
    assert_eq!(env.count("a.undo"), 1);
    assert!(finished(&env.journal()));
}

#[test]
fn killed_between_steps_resumes_from_the_next_step() {
    let env = Env::new();
    let child = env.start(&[]);
    env.wait_for(&["\"node\":\"pause\"", "action_started"]);
    kill9(child);
    assert_eq!(env.count("a.marker"), 1);
    assert_eq!(env.count("b.marker"), 0);
    let out = env.resume(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for m in ["a.marker", "b.marker", "c.marker", "d.marker"] {
        assert_eq!(env.count(m), 1, "{m}");
    }
    assert!(finished(&env.journal()));
    verify_ok(&env);
}

#[test]
fn a_torn_last_line_is_ignored_with_a_warning() {
    let env = Env::new();
    let child = env.start(&[]);
    env.wait_for(&["\"node\":\"pause\"", "action_started"]);
    kill9(child);
    // Cut the last line in the middle (a power cut while writing it).
    let path = env.journal_path();
    let bytes = std::fs::read(&path).unwrap();
    let last_start = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let cut = last_start + (bytes.len() - last_start) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();
    let v = env.run_out(&["verify-journal", &env.run_id(), "--runs-dir", "runs"]);
    assert!(
        v.status.success(),
        "a torn tail is not a broken chain: {}",
        text(&v)
    );
    assert!(text(&v).contains("incomplete"));

    let out = env.resume(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("incomplete"), "{}", text(&out));
    for m in ["a.marker", "b.marker", "c.marker", "d.marker"] {
        assert_eq!(env.count(m), 1, "{m}");
    }
    assert!(finished(&env.journal()));
    verify_ok(&env);
}

#[test]
fn killed_mid_rollback_resumes_without_repeating_finished_undos() {
    let env = Env::new();
    let child = env.start(&["-i", "fail=true"]);
    // Rollback order: c, b, a. c's undo is instant; kill inside b's.
    env.wait_for(&["\"node\":\"c\"", "undo_finished"]);
    env.wait_for(&["\"node\":\"b\"", "action_started", "\"phase\":\"undo\""]);
    while env.count("b.undo") == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    kill9(child);
    assert_eq!(env.count("c.undo"), 1);

    let asked = env.resume(&[]);
    assert_eq!(asked.status.code(), Some(3), "{}", text(&asked));
    assert!(
        text(&asked).contains("the undo of step `b`"),
        "{}",
        text(&asked)
    );

    // Its marker says it ran: taken as done, not run again.
    let out = env.resume(&["--assume-done", "b"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    for m in ["a.marker", "b.marker", "c.marker", "d.marker"] {
        assert_eq!(env.count(m), 1, "{m}");
    }
    assert_eq!(env.count("c.undo"), 1, "a finished undo is not repeated");
    assert_eq!(env.count("b.undo"), 1);
    assert_eq!(env.count("a.undo"), 1);
    assert!(finished(&env.journal()));
    verify_ok(&env);

    let again = env.resume(&[]);
    assert_eq!(again.status.code(), Some(3));
    assert!(
        text(&again).contains("already finished"),
        "{}",
        text(&again)
    );
}

#[test]
fn resume_refuses_a_changed_runbook_unless_forced() {
    let env = Env::new();
    let child = env.start(&[]);
    env.wait_for(&["\"node\":\"pause\"", "action_started"]);
    kill9(child);
    let path = env.cli.dir.join("m.runbook");
    let changed = RUNBOOK.replace("step d {", "step d2 { run \"true\" readonly }\n  step d {");
    std::fs::write(&path, changed).unwrap();
    let before = env.journal();
    let out = env.resume(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("changed since the run started"), "{t}");
    assert!(t.contains("--force"), "{t}");
    assert_eq!(env.journal(), before);

    let forced = env.resume(&["--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    let t = text(&forced);
    assert!(t.contains("steps it had not reached: b, c, d2, d"), "{t}");
    for m in ["a.marker", "b.marker", "c.marker", "d.marker"] {
        assert_eq!(env.count(m), 1, "{m}");
    }
    assert!(env.journal().contains("resumed with --force"));
}
