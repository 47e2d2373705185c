//! Operating runs with the real binary: locks, approvals from a second
//! process, Ctrl-C (one and two), `verify-journal` on an edited journal,
//! and secrets kept out of everything these write.

use crate::support;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{text, CliEnv};
const SECRET: &str = "s3cr3t-ops-value";

const RUNBOOK: &str = r#"
runbook ops {
  input dir: string
  secret tok = env "RB_SECRET"
  step a {
    run "echo x >> {{dir}}/a.marker; test -n {{tok}}"
    undo "echo u >> {{dir}}/a.undo0; sleep 3; echo u >> {{dir}}/a.undo"
  }
  step b {
    run "echo x >> {{dir}}/b.marker; sleep 30"
    undo "echo u >> {{dir}}/b.undo"
  }
}
"#;

const GATED: &str = r#"
runbook gated {
  input dir: string
  step gate { approve "Go ahead?" timeout 60s }
  step after { run "echo x >> {{dir}}/after.marker" undo "true" }
}
"#;

struct Env {
    cli: CliEnv,
}

impl Env {
    fn new() -> Env {
        let cli = CliEnv::new(
            &[("ops.runbook", RUNBOOK), ("gated.runbook", GATED)],
            Some(("RB_SECRET", SECRET)),
        );
        Env { cli }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.cli.cmd(args)
    }

    fn start(&self, file: &str, extra: &[&str]) -> Child {
        self.cli
            .run_here(file, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn out(&self, args: &[&str]) -> Output {
        self.cli.out(args)
    }

    fn run_ids(&self) -> Vec<String> {
        self.cli.run_ids()
    }

    fn first_run(&self) -> String {
        self.cli.first_run()
    }

    fn journal_at(&self, runs: &std::path::Path, id: &str) -> String {
        std::fs::read_to_string(runs.join(id).join("journal.jsonl")).unwrap_or_default()
    }

    fn journal(&self, id: &str) -> String {
        self.cli.journal(id)
    }

    fn wait_for(&self, id: &str, parts: &[&str]) {
        self.cli.wait_for(id, parts)
    }

    fn count(&self, marker: &str) -> usize {
        self.cli.count(marker)
    }

    /// Until step `b`'s command runs: its `action_started` is journalled
    /// while its shell starts, so the marker its command writes comes a
    /// little later (much later on a loaded machine).
    fn wait_until_b_runs(&self, id: &str) {
        self.wait_for(id, &["\"node\":\"b\"", "action_started"]);
        while self.count("b.marker") == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn lock_text(&self) -> String {
        let mut all = String::new();
        if let Ok(rd) = std::fs::read_dir(self.cli.state_dir().join("locks")) {
            for e in rd.flatten() {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        all
    }
}

fn sigint(child: &Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn no_secret(s: &str) {
    assert!(!s.contains(SECRET), "the secret leaked:\n{s}");
}

#[test]
fn a_held_lock_is_refused_with_its_holder_and_a_stale_one_is_broken() {
    let env = Env::new();
    let first = env.start("ops.runbook", &[]);
    let id = env.first_run();
    env.wait_until_b_runs(&id);
    let lock = env.lock_text();
    assert!(lock.contains(&id), "{lock}");
    no_secret(&lock);

    let kv = format!("dir={}", env.cli.dir.display());
    let second = env.out(&["run", "ops.runbook", "--runs-dir", "runs", "-i", &kv]);
    assert_eq!(second.status.code(), Some(3), "{}", text(&second));
    let t = text(&second);
    assert!(t.contains(&id), "the holder's run id is shown: {t}");
    assert!(t.contains(&first.id().to_string()), "the holder's pid: {t}");
    no_secret(&t);
    // --break-lock does not break a live lock.
    let live = env.out(&[
        "run",
        "ops.runbook",
        "--runs-dir",
        "runs",
        "-i",
        &kv,
        "--break-lock",
    ]);
    assert_eq!(live.status.code(), Some(3), "{}", text(&live));

    // SIGKILL: the lock is left behind, stale.
    let mut first = first;
    first.kill().unwrap();
    first.wait().unwrap();
    let stale = env.out(&["run", "ops.runbook", "--runs-dir", "runs", "-i", &kv]);
    assert_eq!(stale.status.code(), Some(3));
    assert!(text(&stale).contains("--break-lock"), "{}", text(&stale));

    let broken = env
        .cmd(&[
            "run",
            "ops.runbook",
            "--runs-dir",
            "runs",
            "-i",
            &kv,
            "--break-lock",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.run_ids().len() < 2 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let new_id = env.run_ids().into_iter().find(|r| *r != id).unwrap();
    env.wait_for(
        &new_id,
        &["\"kind\":\"warning\"", "broke the stale lock", &id],
    );
    // The run installs its SIGINT handler once its thread first waits (a
    // step's process): before that, SIGINT would kill it outright.
    env.wait_for(&new_id, &["\"node\":\"a\"", "action_finished"]);
    sigint(&broken);
    let o = broken.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let runs = env.out(&["runs", "--runs-dir", "runs"]);
    let t = text(&runs);
    assert!(t.contains("interrupted") && t.contains("cancelled"), "{t}");
    no_secret(&t);
    no_secret(&env.journal(&id));
    no_secret(&env.journal(&new_id));
}

fn approval_round(approve: bool) {
    let env = Env::new();
    let child = env.start("gated.runbook", &[]);
    let id = env.first_run();
    env.wait_for(&id, &["\"node\":\"gate\"", "approval_asked"]);
    // The request file may trail the event by a moment.
    let verb = if approve { "approve" } else { "deny" };
    let by = if approve { "alice" } else { "bob" };
    let deadline = Instant::now() + Duration::from_secs(20);
    let decided = loop {
        let o = env.out(&[
            verb,
            &id,
            "gate",
            "--as",
            by,
            "--reason",
            "checked the graphs",
            "--runs-dir",
            "runs",
        ]);
        if o.status.success() || Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(decided.status.success(), "{}", text(&decided));
    let o = child.wait_with_output().unwrap();
    let j = env.journal(&id);
    if approve {
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(env.count("after.marker"), 1);
        assert!(
            j.lines().any(|l| l.contains("approval_given")
                && l.contains("\"by\":\"alice\"")
                && l.contains("checked the graphs")),
            "{j}"
        );
    } else {
        // Refused before anything changed: stopped, nothing changed.
        assert_eq!(o.status.code(), Some(7), "{}", text(&o));
        assert_eq!(env.count("after.marker"), 0);
        assert!(
            j.lines()
                .any(|l| l.contains("approval_refused") && l.contains("\"by\":\"bob\"")),
            "{j}"
        );
    }
    // A second answer is refused: the question is closed.
    let late = env.out(&["approve", &id, "gate", "--runs-dir", "runs"]);
    assert!(!late.status.success());
}

#[test]
fn approve_from_a_second_process_while_the_run_waits() {
    approval_round(true);
}

#[test]
fn deny_from_a_second_process_while_the_run_waits() {
    approval_round(false);
}

#[test]
fn sigint_mid_run_rolls_back_and_exits_130() {
    let env = Env::new();
    let child = env.start("ops.runbook", &[]);
    let id = env.first_run();
    env.wait_until_b_runs(&id);
    sigint(&child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert_eq!(env.count("a.undo"), 1, "a's undo ran");
    assert_eq!(
        env.count("b.undo"),
        0,
        "b was cancelled, not completed: not undone"
    );
    let j = env.journal(&id);
    assert!(j.contains("cancel_requested") && j.contains("rollback_finished"));
    no_secret(&text(&o));
    no_secret(&j);
}

#[test]
fn a_second_sigint_stops_the_rollback_and_prints_the_resume_command() {
    let env = Env::new();
    let child = env.start("ops.runbook", &[]);
    let id = env.first_run();
    env.wait_until_b_runs(&id);
    sigint(&child);
    env.wait_for(
        &id,
        &["\"node\":\"a\"", "action_started", "\"phase\":\"undo\""],
    );
    while env.count("a.undo0") == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    sigint(&child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let t = text(&o);
    let cmd = format!("runbook resume {id} --runs-dir runs");
    assert!(t.contains(&cmd), "{t}");
    assert_eq!(env.count("a.undo"), 0, "the undo was stopped");

    // The printed command picks it up: the rollback finishes.
    let r = env.out(&["resume", &id, "--runs-dir", "runs"]);
    assert!(
        matches!(r.status.code(), Some(4) | Some(130)),
        "{}",
        text(&r)
    );
    assert_eq!(env.count("a.undo"), 1);
    assert_eq!(env.count("a.marker"), 1);
    assert_eq!(env.count("b.marker"), 1);
    no_secret(&text(&r));
}

#[test]
fn verify_journal_finds_an_edited_line() {
    let env = Env::new();
    let child = env.start("ops.runbook", &[]);
    let id = env.first_run();
    env.wait_until_b_runs(&id);
    sigint(&child);
    let _ = child.wait_with_output().unwrap();
    let ok = env.out(&["verify-journal", &id, "--runs-dir", "runs"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("intact"));

    let path = env.cli.dir.join("runs").join(&id).join("journal.jsonl");
    let j = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = j.lines().map(str::to_owned).collect();
    let n = lines.iter().position(|l| l.contains("a.marker")).unwrap();
    lines[n] = lines[n].replace("a.marker", "z.marker");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let bad = env.out(&["verify-journal", &id, "--runs-dir", "runs"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let t = text(&bad);
    assert!(t.contains(&format!("line {}", n + 1)), "{t}");
    assert!(t.contains("edited"), "{t}");
}

/// The bash block of docs/operations.md that checks a journal with
/// `sha256sum` alone.
fn documented_audit() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    let start = doc
        .find("```bash\nJ=.runbook/runs/RUN_ID/journal.jsonl")
        .unwrap()
        + "```bash\n".len();
    let len = doc[start..].find("```").unwrap();
    doc[start..start + len].to_owned()
}

#[test]
fn the_documented_sha256sum_audit_agrees_with_verify_journal() {
    let env = Env::new();
    std::fs::write(
        env.cli.dir.join("small.runbook"),
        "runbook small {\n  step a { run \"echo 'é ✓ \\\"q\\\" \\\\ back'\" readonly }\n  step b { run \"true\" readonly }\n}\n",
    )
    .unwrap();
    let r = env.out(&["run", "small.runbook"]);
    assert!(r.status.success(), "{}", text(&r));
    let runs = env.cli.dir.join(".runbook/runs");
    let id = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n != "locks")
        .unwrap();
    let v = env.out(&["verify-journal", &id]);
    assert!(v.status.success(), "{}", text(&v));
    let last = text(&v)
        .split("last hash ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(str::to_owned)
        .unwrap();
    assert!(
        text(&v).contains("run.json matches the journal"),
        "{}",
        text(&v)
    );
    let script = documented_audit().replace("RUN_ID", &id);
    let audit = |what: &str| {
        let o = Command::new("bash")
            .args(["-c", &script])
            .current_dir(&env.cli.dir)
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        (o.status.code(), text(&o), what.to_owned())
    };
    let (code, out, _) = audit("intact");
    assert_eq!(code, Some(0), "{out}");
    let lines = env.journal_at(&runs, &id).lines().count();
    assert_eq!(
        out.trim(),
        format!("intact: {lines} lines, last hash {last}")
    );

    // An edited line is caught by the script too, at that line.
    let path = runs.join(&id).join("journal.jsonl");
    let j = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, j.replacen("\"node\":\"b\"", "\"node\":\"c\"", 1)).unwrap();
    let n = j
        .lines()
        .position(|l| l.contains("\"node\":\"b\""))
        .unwrap()
        + 1;
    let (code, out, _) = audit("edited");
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        out.trim(),
        format!("line {n}: its hash does not match its content")
    );
    // A deleted line: the next one's prev gives it away.
    let mut ls: Vec<&str> = j.lines().collect();
    ls.remove(2);
    std::fs::write(&path, ls.join("\n") + "\n").unwrap();
    let (code, out, _) = audit("deleted");
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out.trim(), "line 3: its prev is not the hash of line 2");
}
