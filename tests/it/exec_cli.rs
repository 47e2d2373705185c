//! `runbook run` end to end: the real binary, real shell commands in a temp
//! directory, exit codes, `--output json`, and secrets kept out of every
//! output.

use std::path::Path;
use std::process::{Command, Output};

const SECRET: &str = "cli-secret-Zq9-value";

fn runbook(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("run")
        .args(args)
        .arg("--runs-dir")
        .arg(dir.join("runs"))
        .current_dir(dir)
        .env("RUNBOOK_STATE_DIR", dir.join("state"))
        .env("RB_TEST_SECRET", SECRET)
        .output()
        .expect("runbook runs")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), text).unwrap();
    name.to_owned()
}

fn journals(dir: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir.join("runs")).unwrap() {
        let p = e.unwrap().path().join("journal.jsonl");
        if !p.is_file() {
            continue; // runs/locks
        }
        // Without the hash chain's `"prev":...,"hash":...,` prefix, nor the
        // first line's hash of run.json: the events as streamed.
        for line in std::fs::read_to_string(p).unwrap().lines() {
            let mut plain = match line.get(runbook::durable::journal::PREFIX_LEN..) {
                Some(rest) if line.starts_with("{\"prev\":") => format!("{{{rest}"),
                _ => line.to_owned(),
            };
            let key = format!(",\"{}\":\"", runbook::durable::journal::RUN_JSON_KEY);
            if let Some(at) = plain.find(&key) {
                plain.replace_range(at..plain.len() - 1, "");
            }
            all.push_str(&plain);
            all.push('\n');
        }
    }
    all
}

const ROLLBACK: &str = r#"
runbook cli_rollback {
  input name: string
  secret tok = env "RB_TEST_SECRET"
  step a { run "echo {{name}} > a.txt" undo "rm a.txt" }
  step b { run "echo token={{tok}} >&2; exit 7" undo "true" }
}
"#;

#[test]
fn a_failed_live_run_rolls_back_with_its_exit_code_and_no_secret_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "r.runbook", ROLLBACK);
    let out = runbook(dir.path(), &[&f, "--input", "name=x; touch pwned"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(runbook::exit::ROLLED_BACK),
        "{stdout}\n{stderr}"
    );
    assert!(!dir.path().join("a.txt").exists(), "the undo of `a` ran");
    assert!(!dir.path().join("pwned").exists(), "an input ran a command");
    assert!(stdout.contains("rolled back cleanly"), "{stdout}");
    for (what, text) in [
        ("stdout", stdout.as_ref()),
        ("stderr", stderr.as_ref()),
        ("journal", &journals(dir.path())),
    ] {
        assert!(!text.contains(SECRET), "the secret leaked into {what}");
    }
}

#[test]
fn a_failing_undo_exits_rollback_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let text = ROLLBACK.replace("undo \"rm a.txt\"", "undo \"exit 9\"");
    let f = write(dir.path(), "r.runbook", &text);
    let out = runbook(dir.path(), &[&f, "--input", "name=n"]);
    assert_eq!(out.status.code(), Some(runbook::exit::ROLLBACK_INCOMPLETE));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ROLLBACK INCOMPLETE"));
}

#[test]
fn invalid_inputs_exit_invalid_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "r.runbook", ROLLBACK);
    let out = runbook(dir.path(), &[&f, "--input", "nme=x"]);
    assert_eq!(out.status.code(), Some(runbook::exit::INVALID));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did you mean `name`"), "{stderr}");
    assert!(stderr.contains("`name` (string) is required"), "{stderr}");
    assert!(!dir.path().join("runs").exists());
}

#[test]
fn a_bad_config_is_an_error_pointing_at_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "r.runbook", ROLLBACK);
    write(
        dir.path(),
        "runbook.yaml",
        "shell:\n  cwd: /tmp\n  envv: {}\n",
    );
    let out = runbook(dir.path(), &[&f, "--input", "name=x", "--dry-run"]);
    assert_eq!(out.status.code(), Some(runbook::exit::INVALID));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field `envv`"), "{stderr}");
    assert!(stderr.contains("runbook.yaml:3"), "{stderr}");
}

#[test]
fn dry_run_of_the_flagship_streams_json_and_executes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let flagship = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/runbooks/api_config_rollback.runbook"
    );
    let out = runbook(
        dir.path(),
        &[
            flagship,
            "--dry-run",
            "--input",
            "bad_revision=r42",
            "--output",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["kind"], "run_started");
    assert_eq!(lines[0]["mode"], "dry_run");
    assert_eq!(lines.last().unwrap()["kind"], "run_finished");
    assert!(lines
        .iter()
        .filter(|l| l["kind"] == "action_started")
        .all(|l| l["simulated"] == true));
    // The journal holds the same lines.
    assert_eq!(journals(dir.path()), stdout);
}

#[test]
fn assume_needs_a_known_check() {
    let dir = tempfile::tempdir().unwrap();
    let flagship = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/runbooks/api_config_rollback.runbook"
    );
    let out = runbook(
        dir.path(),
        &[
            flagship,
            "--dry-run",
            "--input",
            "bad_revision=r42",
            "--assume",
            "errors_lo=false",
        ],
    );
    assert_eq!(out.status.code(), Some(runbook::exit::INVALID));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `errors_low`"));
}

/// Live runs use a current-thread runtime: the two steps of a `parallel`
/// block must still run at the same time. Each waits (up to its 20 s
/// timeout) for the other to have started, so the run succeeds only if
/// both are running at once; and both `action_started` come before either
/// `action_finished`, which each comes after a real `sleep`.
#[test]
fn the_steps_of_a_parallel_block_overlap_in_a_live_run() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "p.runbook",
        r#"
runbook overlap {
  parallel {
    step a {
      run "touch a.started; while [ ! -e b.started ]; do sleep 0.05; done; sleep 0.3" readonly
      timeout 20s
    }
    step b {
      run "touch b.started; while [ ! -e a.started ]; do sleep 0.05; done; sleep 0.3" readonly
      timeout 20s
    }
  }
}
"#,
    );
    let out = runbook(dir.path(), &[&f, "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kinds: Vec<(String, String)> = journals(dir.path())
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            matches!(
                v["kind"].as_str(),
                Some("action_started" | "action_finished")
            )
        })
        .map(|v| {
            (
                v["kind"].as_str().unwrap_or_default().to_owned(),
                v["node"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let first_finish = kinds
        .iter()
        .position(|(k, _)| k == "action_finished")
        .unwrap();
    let started: Vec<&str> = kinds[..first_finish]
        .iter()
        .map(|(_, n)| n.as_str())
        .collect();
    assert_eq!(started.len(), 2, "{kinds:?}");
    assert!(
        started.contains(&"a") && started.contains(&"b"),
        "{kinds:?}"
    );
}

#[test]
fn run_shows_a_few_warnings_of_each_kind_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("runbook many {\n  input unused_a: string = \"x\"\n");
    for i in 0..7 {
        text.push_str(&format!("  step s{i} {{ run \"true\" }}\n"));
    }
    text.push_str("}\n");
    let file = write(dir.path(), "many.runbook", &text);
    let out = runbook(dir.path(), &[&file, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = stderr
        .matches("changes something but has no `undo`")
        .count();
    assert_eq!(shown, 3, "{stderr}");
    assert!(
        stderr.contains(
            "4 more runbook::write_without_undo warnings not shown (`runbook check many.runbook` lists every one)"
        ),
        "{stderr}"
    );
    // A kind with fewer warnings than the cut is shown whole, and not counted.
    assert_eq!(stderr.matches("is never used").count(), 1, "{stderr}");
}
