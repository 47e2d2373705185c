//! Every file a user names (runbook, drill scenario, config, inputs file,
//! secret file, journal, run.json, approval file), given as `/dev/zero` or
//! as a FIFO, is refused at once with a clear message: never read until
//! memory runs out, never waited on.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{mkfifo, output_within, text, CliEnv};

const RUNBOOK: &str = r#"
runbook files {
  input dir: string
  step a {
    run "echo x >> {{dir}}/a.marker"
    undo "true"
  }
}
"#;

const LIMIT: Duration = Duration::from_secs(5);

/// `/dev/zero` (through a symlink named like the file, where the name
/// matters) and a FIFO, each with the words its refusal must say.
fn specials(dir: &Path, name: &str) -> Vec<(PathBuf, &'static str)> {
    let fifo = dir.join(format!("fifo-{name}"));
    mkfifo(&fifo);
    vec![
        (
            PathBuf::from("/dev/zero"),
            "not a regular file (a character device)",
        ),
        (fifo, "not a regular file (a FIFO)"),
    ]
}

fn refused(env: &CliEnv, args: &[&str], what: &str, says: &str) {
    let out = output_within(env.cmd(args), LIMIT);
    // Words only: miette wraps long messages in a frame.
    let t = text(&out)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!out.status.success(), "{args:?} succeeded: {t}");
    assert!(
        t.contains(what) && t.contains(says),
        "{args:?}: expected `{what}` ... `{says}`:\n{t}"
    );
    assert_eq!(env.count("a.marker"), 0, "{args:?}: nothing ran");
}

#[test]
fn runbook_scenario_config_and_inputs_files() {
    let env = CliEnv::new(&[("files.runbook", RUNBOOK)], None);
    let kv = format!("dir={}", env.dir.display());
    for (p, says) in specials(&env.dir, "rb") {
        let p = p.display().to_string();
        refused(&env, &["check", &p], "the runbook is", says);
        refused(&env, &["run", &p, "-i", &kv], "the runbook is", says);
        refused(
            &env,
            &["drill", "files.runbook", "--scenario", &p],
            "the drill scenario is",
            says,
        );
        refused(
            &env,
            &["run", "files.runbook", "-i", &kv, "--config", &p],
            "the config file is",
            says,
        );
        refused(
            &env,
            &["run", "files.runbook", "-i", &kv, "--inputs", &p],
            "the inputs file is",
            says,
        );
        refused(
            &env,
            &["plan", "files.runbook", "-i", &kv, "--inputs", &p],
            "the inputs file is",
            says,
        );
    }
}

#[test]
fn secret_files() {
    let env = CliEnv::new(&[], None);
    let kv = format!("dir={}", env.dir.display());
    for (p, says) in specials(&env.dir, "secret") {
        let rb = format!(
            "runbook files {{\n  input dir: string\n  secret tok = file \"{}\"\n  step a {{\n    \
             run \"echo x >> {{{{dir}}}}/a.marker; test -n {{{{tok}}}}\"\n    undo \"true\"\n  }}\n}}\n",
            p.display()
        );
        std::fs::write(env.dir.join("files.runbook"), rb).expect("runbook");
        refused(
            &env,
            &["run", "files.runbook", "-i", &kv],
            "the secret file is",
            says,
        );
    }
}

/// A finished run, then `file` in it replaced by each special file.
#[test]
fn journal_run_json_and_approval_files() {
    let env = CliEnv::new(&[("files.runbook", RUNBOOK)], None);
    let out = env.run_here("files.runbook", &[]).output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::remove_file(env.dir.join("a.marker")).expect("reset the marker");
    let id = env.first_run();
    let run_dir = env.dir.join("runs").join(&id);
    let swap = |file: &Path, special: &Path| {
        let _ = std::fs::remove_file(file);
        if special.starts_with("/dev") {
            std::os::unix::fs::symlink(special, file).expect("symlink");
        } else {
            // A FIFO of its own at the file's name.
            mkfifo(file);
        }
    };
    for (special, says) in specials(&env.dir, "run") {
        for (name, what) in [
            ("journal.jsonl", "the journal is"),
            ("run.json", "the run.json is"),
        ] {
            let file = run_dir.join(name);
            let saved = std::fs::read(&file).expect("read");
            swap(&file, &special);
            refused(
                &env,
                &["verify-journal", &id, "--runs-dir", "runs"],
                what,
                says,
            );
            refused(&env, &["resume", &id, "--runs-dir", "runs"], what, says);
            // `runs` does not hang on it either.
            let runs = output_within(env.cmd(&["runs", "--runs-dir", "runs"]), LIMIT);
            assert!(runs.status.code().is_some(), "{}", text(&runs));
            std::fs::remove_file(&file).expect("rm");
            std::fs::write(&file, &saved).expect("restore");
        }

        let approvals = run_dir.join("approvals");
        std::fs::create_dir_all(&approvals).expect("approvals dir");
        let request = approvals.join("a.request.json");
        swap(&request, &special);
        refused(
            &env,
            &["approve", &id, "a", "--runs-dir", "runs"],
            "the approval file is",
            says,
        );
        std::fs::remove_file(&request).expect("rm");
    }
}
