//! Issue 11, item 10: limits and terminal safety, through the real binary.
//! A name too long to show, YAML nested too deep to parse in time, a
//! verify with millions of probes, escape sequences in a command's output,
//! a reader that closes the pipe early, and a config that cannot work.

use crate::support;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::CliEnv;

const INVALID: i32 = runbook::exit::INVALID;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_long_step_name_is_refused_before_anything_runs() {
    let name = format!("s{}", "x".repeat(70_000));
    let rb = format!(
        "runbook long {{\n  step {name} {{\n    run \"touch ran.txt\" readonly\n  }}\n}}\n"
    );
    let env = CliEnv::new(&[("long.runbook", &rb)], None);
    let o = env.out(&["run", "long.runbook", "--runs-dir", "runs"]);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(INVALID),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(
        err.contains("runbook::name_too_long"),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(!err.contains("panicked"));
    assert!(!env.dir.join("ran.txt").exists(), "the step ran");
}

#[test]
fn escape_sequences_in_command_output_are_shown_escaped() {
    let rb = r#"runbook ansi {
  step paint {
    run "printf '\\033]0;pwned\\007\\033[31mRED\\033[0m\\r\\n'; echo err >&2; exit 3" readonly
  }
}
"#;
    let env = CliEnv::new(&[("ansi.runbook", rb)], None);
    let o = env.out(&["run", "ansi.runbook", "--runs-dir", "runs"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{7}') && !out.contains('\r'),
        "raw control characters reached the terminal: {out:?}"
    );
    assert!(out.contains(r"\x1b[31mRED\x1b[0m"), "{out}");
    assert!(out.contains(r"\x1b]0;pwned\x07"), "{out}");
    // The journal keeps the bytes, as JSON escapes.
    let journal = std::fs::read_dir(env.dir.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("journal.jsonl"))
        .find(|p| p.is_file())
        .expect("a journal");
    let j = std::fs::read_to_string(journal).unwrap();
    assert!(j.contains(r"\u001b[31mRED"), "{j}");
}

#[test]
fn a_reader_that_closes_the_pipe_ends_the_command_quietly() {
    let mut rb = String::from("runbook big {\n");
    for i in 0..3000 {
        rb.push_str(&format!("  step s{i} {{ run \"echo {i}\" readonly }}\n"));
    }
    rb.push_str("}\n");
    let env = CliEnv::new(&[("big.runbook", &rb)], None);
    for args in [
        &["graph", "big.runbook"][..],
        &["graph", "big.runbook", "--format", "json"],
        &["plan", "big.runbook"],
    ] {
        let mut child = env
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read a little, as `head -c 10` does, then close the pipe.
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 10];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // 0 if it was all written before the pipe closed, else killed by
        // SIGPIPE as `cat` would be (141 in a shell); never 101 (a panic).
        use std::os::unix::process::ExitStatusExt;
        assert!(
            o.status.code() == Some(0) || o.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {err}",
            o.status
        );
    }
}

#[test]
fn a_drill_verifying_every_second_for_thirty_days_is_refused_at_once() {
    let rb = r#"runbook polls {
  check ok { shell "true" expect exit == 0 }
  step wait_for_it {
    run "echo go" readonly
    verify ok within 30d every 1s
  }
}
"#;
    let scenario = "runbook: polls.runbook\nname: slow\nchecks:\n  ok: fail\n";
    let env = CliEnv::new(
        &[("polls.runbook", rb), ("polls.slow.drill.yaml", scenario)],
        None,
    );
    let start = Instant::now();
    let o = env.out(&[
        "drill",
        "--scenario",
        "polls.slow.drill.yaml",
        "polls.runbook",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(INVALID), "{err}");
    assert!(err.contains("runbook::too_many_polls"), "{err}");
    assert!(
        err.contains("every 4m 20s"),
        "the help says how to fix it: {err}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn deeply_nested_yaml_is_refused_before_it_is_parsed() {
    let rb =
        "runbook tiny {\n  input x: string = \"a\"\n  step a { run \"echo {{x}}\" readonly }\n}\n";
    let deep = |prefix: &str| format!("{prefix}{}1{}\n", "[".repeat(40_000), "]".repeat(40_000));
    let scenario = format!(
        "runbook: tiny.runbook\nname: deep\n{}",
        deep("actions:\n  a:\n    stdout: ")
    );
    let env = CliEnv::new(
        &[
            ("tiny.runbook", rb),
            ("tiny.deep.drill.yaml", &scenario),
            ("config.yaml", &deep("shell:\n  env: ")),
            ("inputs.yaml", &deep("x: ")),
        ],
        None,
    );
    for args in [
        &[
            "drill",
            "--scenario",
            "tiny.deep.drill.yaml",
            "tiny.runbook",
        ][..],
        &[
            "run",
            "tiny.runbook",
            "--config",
            "config.yaml",
            "--runs-dir",
            "runs",
        ],
        &["plan", "tiny.runbook", "--inputs", "inputs.yaml"],
    ] {
        let start = Instant::now();
        let o = env.out(args);
        let err = stderr(&o);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{args:?} took {:?}",
            start.elapsed()
        );
        assert_ne!(o.status.code(), Some(0), "{args:?}");
        assert!(
            err.contains("nested more than 64 levels deep at line"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_zero_timeout_or_an_empty_runs_dir_in_the_config_is_refused() {
    let rb = "runbook tiny {\n  step a { run \"touch ran.txt\" readonly }\n}\n";
    for (config, expected) in [
        ("defaults:\n  timeout: 0s\n", "timeout of zero"),
        ("runs_dir: \"\"\n", "empty directory path"),
    ] {
        let env = CliEnv::new(&[("tiny.runbook", rb), ("runbook.yaml", config)], None);
        let o = env.out(&["run", "tiny.runbook"]);
        let err = stderr(&o);
        assert_ne!(o.status.code(), Some(0), "{config:?}: {err}");
        assert!(err.contains(expected), "{config:?}: {err}");
        assert!(err.contains("runbook.yaml:"), "located: {err}");
        assert!(
            !env.dir.join("ran.txt").exists(),
            "{config:?}: the step ran"
        );
    }
}

#[test]
fn a_setsid_child_does_not_survive_the_timeout() {
    if std::process::Command::new("setsid")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no setsid on this machine");
        return;
    }
    // The child leaves the command's process group and session, writes its
    // pid, and would sleep for a minute.
    let rb = r#"runbook detach {
  step hang {
    run "setsid sh -c 'echo $$ > child.pid; exec sleep 60' & sleep 60" readonly
    timeout 1s
  }
}
"#;
    let env = CliEnv::new(&[("detach.runbook", rb)], None);
    let start = Instant::now();
    let o = env.out(&["run", "detach.runbook", "--runs-dir", "runs"]);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(start.elapsed() < Duration::from_secs(20));
    let pid: i32 = std::fs::read_to_string(env.dir.join("child.pid"))
        .expect("the child started")
        .trim()
        .parse()
        .unwrap();
    // Dead (or a zombie waiting for init to reap it): its state in /proc.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(") ")
            .map(|(_, r)| &r[..1])
            .unwrap_or("gone");
        if matches!(state, "gone" | "Z" | "X") {
            break;
        }
        if Instant::now() > deadline {
            // Do not leave it behind for the next test run.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the setsid child {pid} survived the timeout (state {state})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
