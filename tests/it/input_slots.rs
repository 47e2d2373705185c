//! Durations and counts that name a typed input (issue 12 item 9), end to
//! end through the real binary: the run's value is what runs, and a bad
//! value is refused before anything runs, located at the input's name.

use std::path::Path;
use std::process::{Command, Output};

const RUNBOOK: &str = r#"runbook flaky_restart {
  input attempts: int = 1
  input soak: duration = 1s
  step restart {
    run "echo try >> tries.txt; exit 1"
    undo none "a restart has no undo"
    retry attempts
    timeout soak
  }
}
"#;

fn runbook(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(args)
        .current_dir(dir)
        .env("RUNBOOK_STATE_DIR", dir.join("state"))
        .output()
        .expect("runbook runs")
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.runbook"), RUNBOOK).unwrap();
    dir
}

#[test]
fn a_retry_count_from_an_input_is_what_the_run_does() {
    let dir = setup();
    let out = runbook(
        dir.path(),
        &[
            "run",
            "r.runbook",
            "--input",
            "attempts=2",
            "--runs-dir",
            "runs",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    let tries = std::fs::read_to_string(dir.path().join("tries.txt")).unwrap();
    // `retry 2`: the first attempt and two more.
    assert_eq!(tries.lines().count(), 3, "{tries}");
}

#[test]
fn a_bad_value_is_refused_before_anything_runs_naming_the_input() {
    let dir = setup();
    let out = runbook(
        dir.path(),
        &[
            "run",
            "r.runbook",
            "--input",
            "soak=0s",
            "--runs-dir",
            "runs",
        ],
    );
    assert_eq!(out.status.code(), Some(runbook::exit::INVALID));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("runbook::zero_duration"), "{stderr}");
    assert!(stderr.contains("r.runbook:8:13"), "{stderr}");
    assert!(stderr.contains("input `soak` in this run"), "{stderr}");
    assert!(!dir.path().join("tries.txt").exists());
    assert!(!dir.path().join("runs").exists());
}

#[test]
fn plan_shows_the_values_in_place() {
    let dir = setup();
    let out = runbook(
        dir.path(),
        &[
            "plan",
            "r.runbook",
            "--input",
            "attempts=4",
            "--input",
            "soak=7m",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("retry 4"), "{stdout}");
    assert!(stdout.contains("timeout 7m per attempt"), "{stdout}");
    assert!(
        stdout.contains("durations and counts from inputs: attempts, soak"),
        "{stdout}"
    );
}
