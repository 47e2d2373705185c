//! The real shell adapter against real processes in a temp dir.

use crate::support;

use runbook::adapters::shell::RealShell;
use runbook::adapters::{Call, ErrorKind, Rendered, ShellAdapter, ShellRequest};
use runbook::exec::template::Templates;
use runbook::plan::{Escape, Text};
use std::path::Path;
use std::time::{Duration, Instant};
use support::shell_request as req;

/// Whether a process is alive (a zombie is dead: it only waits to be reaped).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("?");
            !matches!(state, "Z" | "X")
        }
    }
}

/// Waits up to `within` for `pid` to die; returns how long it took.
async fn wait_dead(pid: i32, within: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < within {
        if !alive(pid) {
            return Some(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

async fn read_pid(path: &Path, within: Duration) -> i32 {
    let t = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                return pid;
            }
        }
        assert!(t.elapsed() < within, "{} never appeared", path.display());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Kills a leftover process if a test failed half way.
struct KillOnDrop(i32);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0 > 1 && alive(self.0) {
            // SAFETY: plain syscall.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

#[tokio::test]
async fn runs_in_the_working_directory_with_the_environment() {
    let dir = support::temp_dir();
    let mut r = req(
        "printf '%s' \"$RUNBOOK_T_REGION\" > out.txt && echo written",
        dir.path(),
    );
    r.env.insert("RUNBOOK_T_REGION".into(), "eu-west".into());
    let out = RealShell::default()
        .run(&Call::simple("write"), &r)
        .await
        .expect("command runs");
    assert_eq!(out.exit, Some(0));
    assert_eq!(out.signal, None);
    assert_eq!(out.stdout, "written\n");
    assert!(!out.stdout_truncated);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).expect("file written"),
        "eu-west"
    );
}

#[tokio::test]
async fn adapter_defaults_apply_when_the_request_has_none() {
    let dir = support::temp_dir();
    let shell = RealShell {
        default_cwd: Some(dir.path().to_path_buf()),
        default_env: [
            ("RUNBOOK_T_A".to_string(), "from-config".to_string()),
            ("RUNBOOK_T_B".to_string(), "config".to_string()),
        ]
        .into_iter()
        .collect(),
        ..RealShell::default()
    };
    let mut r = req("pwd; echo \"$RUNBOOK_T_A $RUNBOOK_T_B\"", dir.path());
    r.cwd = None;
    r.env.insert("RUNBOOK_T_B".into(), "request".into());
    let out = shell.run(&Call::simple("d"), &r).await.expect("runs");
    let canonical = dir.path().canonicalize().expect("canonical temp dir");
    assert_eq!(
        out.stdout,
        format!("{}\nfrom-config request\n", canonical.display())
    );
}

#[tokio::test]
async fn exit_code_and_stderr_are_captured() {
    let dir = support::temp_dir();
    let out = RealShell::default()
        .run(
            &Call::simple("fail"),
            &req("echo partial; echo 'disk full' >&2; exit 3", dir.path()),
        )
        .await
        .expect("a non-zero exit is an answer");
    assert_eq!(out.exit, Some(3));
    assert_eq!(out.stdout, "partial\n");
    assert_eq!(out.stderr, "disk full\n");
}

#[tokio::test]
async fn a_signal_is_reported() {
    let dir = support::temp_dir();
    let out = RealShell::default()
        .run(&Call::simple("sig"), &req("kill -USR1 $$", dir.path()))
        .await
        .expect("answer");
    assert_eq!(out.exit, None);
    assert_eq!(out.signal, Some(libc::SIGUSR1));
}

#[tokio::test]
async fn stdin_is_closed() {
    let dir = support::temp_dir();
    let t = Instant::now();
    let out = RealShell::default()
        .run(&Call::simple("cat"), &req("cat; echo eof", dir.path()))
        .await
        .expect("answer");
    assert_eq!(out.stdout, "eof\n");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_hanging_command_is_killed_at_its_timeout() {
    let dir = support::temp_dir();
    let mut r = req("sleep 30", dir.path());
    r.timeout = Some(Duration::from_millis(500));
    let t = Instant::now();
    let e = RealShell::default()
        .run(&Call::simple("hang"), &r)
        .await
        .expect_err("times out");
    let took = t.elapsed();
    eprintln!("sleep 30 with a 500ms timeout: returned after {took:?}: {e}");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.message.contains("500ms"), "{e}");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn a_child_of_the_command_dies_with_it_at_the_timeout() {
    let dir = support::temp_dir();
    let mut r = req("sleep 30 & echo $! > pid; wait", dir.path());
    r.timeout = Some(Duration::from_millis(500));
    let t = Instant::now();
    let e = RealShell::default()
        .run(&Call::simple("bg"), &r)
        .await
        .expect_err("times out");
    let returned = t.elapsed();
    assert_eq!(e.kind, ErrorKind::Timeout);
    let pid = read_pid(&dir.path().join("pid"), Duration::from_secs(1)).await;
    let _guard = KillOnDrop(pid);
    let dead_after = wait_dead(pid, Duration::from_secs(2)).await;
    eprintln!(
        "background child {pid}: adapter returned after {returned:?}, child dead {dead_after:?} later"
    );
    assert!(
        dead_after.is_some(),
        "the background child {pid} survived the timeout"
    );
    assert!(returned < Duration::from_millis(1500), "{returned:?}");
}

#[tokio::test]
async fn a_child_ignoring_sigterm_gets_sigkill_after_the_grace() {
    let dir = support::temp_dir();
    let shell = RealShell {
        grace: Duration::from_millis(300),
        ..RealShell::default()
    };
    // SIG_IGN for TERM is inherited by the background `sleep`.
    let mut r = req("trap '' TERM; sleep 30 & echo $! > pid; wait", dir.path());
    r.timeout = Some(Duration::from_millis(400));
    let t = Instant::now();
    let e = shell
        .run(&Call::simple("stubborn"), &r)
        .await
        .expect_err("times out");
    let returned = t.elapsed();
    assert_eq!(e.kind, ErrorKind::Timeout);
    let pid = read_pid(&dir.path().join("pid"), Duration::from_secs(1)).await;
    let _guard = KillOnDrop(pid);
    let dead_after = wait_dead(pid, Duration::from_secs(2)).await;
    eprintln!(
        "TERM-ignoring group: returned after {returned:?} ({e}), child dead {dead_after:?} later"
    );
    assert!(dead_after.is_some(), "{pid} survived SIGKILL");
    assert!(returned >= Duration::from_millis(700), "{returned:?}");
    assert!(returned < Duration::from_millis(2000), "{returned:?}");
}

#[tokio::test]
async fn cancellation_kills_the_group() {
    let dir = support::temp_dir();
    let mut r = req("sleep 30 & echo $! > pid; wait", dir.path());
    r.timeout = None;
    let call = Call::simple("cancel-me");
    let cancel = call.cancel.clone();
    let pid_path = dir.path().join("pid");
    let run = tokio::spawn(async move { RealShell::default().run(&call, &r).await });
    let pid = read_pid(&pid_path, Duration::from_secs(5)).await;
    let _guard = KillOnDrop(pid);
    let t = Instant::now();
    cancel.cancel();
    let e = run.await.expect("task").expect_err("cancelled is an error");
    let returned = t.elapsed();
    let dead_after = wait_dead(pid, Duration::from_secs(2)).await;
    eprintln!(
        "cancel: adapter returned {returned:?} after cancel, child dead {dead_after:?} later"
    );
    assert_eq!(e.kind, ErrorKind::Cancelled, "{e}");
    assert!(returned < Duration::from_secs(1), "{returned:?}");
    assert!(dead_after.is_some(), "{pid} survived the cancellation");
}

#[tokio::test]
async fn output_is_capped_keeping_the_tail() {
    let dir = support::temp_dir();
    let mut call = Call::simple("loud");
    call.output_cap = 100;
    let out = RealShell::default()
        .run(
            &call,
            &req("seq 1 100000; seq 1 3000 >&2; echo last", dir.path()),
        )
        .await
        .expect("answer");
    assert_eq!(out.exit, Some(0));
    assert!(out.stdout_truncated);
    assert!(out.stdout.len() <= 100, "{}", out.stdout.len());
    assert!(
        out.stdout.ends_with("99999\n100000\nlast\n"),
        "{}",
        out.stdout
    );
    assert!(out.stderr_truncated);
    assert!(out.stderr.ends_with("2999\n3000\n"), "{}", out.stderr);

    let small = RealShell::default()
        .run(&call, &req("echo short", dir.path()))
        .await
        .expect("answer");
    assert_eq!(
        (small.stdout.as_str(), small.stdout_truncated),
        ("short\n", false)
    );
}

#[tokio::test]
async fn a_background_process_holding_stdout_does_not_block_the_answer() {
    let dir = support::temp_dir();
    let t = Instant::now();
    let out = RealShell::default()
        .run(
            &Call::simple("daemon"),
            &req("sleep 5 & echo $! > pid; echo started", dir.path()),
        )
        .await
        .expect("answer");
    let pid = read_pid(&dir.path().join("pid"), Duration::from_secs(1)).await;
    let _guard = KillOnDrop(pid);
    assert_eq!(out.exit, Some(0));
    assert_eq!(out.stdout, "started\n");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

/// Hostile inputs rendered through the executor's templates (shell
/// escaping) stay one argument each and run nothing.
#[tokio::test]
async fn inputs_rendered_into_a_command_stay_one_argument() {
    let dir = support::temp_dir();
    let templates = Templates::new();
    let text = Text {
        template: "printf '%s\\n' {{target}}".into(),
        escape: Escape::Shell,
        secrets: vec![],
        span: Default::default(),
    };
    let hostile = [
        "x; rm -rf /",
        "$(touch pwned)",
        "`touch pwned`",
        "a' ; touch pwned; echo 'b",
        "a\" ; touch pwned; echo \"b",
        "line1\nline2; touch pwned",
        "*",
        "-n",
        "",
        "x && touch pwned || touch pwned",
        "$HOME ${PATH} \\ | > pwned",
    ];
    for input in hostile {
        let data = serde_json::json!({ "target": input });
        let command = templates
            .render(&text, false, &|_| data.clone())
            .expect("renders");
        let out = RealShell::default()
            .run(
                &Call::simple("inject"),
                &ShellRequest {
                    command,
                    ..req("", dir.path())
                },
            )
            .await
            .expect("runs");
        assert_eq!(out.exit, Some(0), "{input:?}: {out:?}");
        assert_eq!(out.stdout, format!("{input}\n"), "{input:?}");
        assert!(
            !dir.path().join("pwned").exists(),
            "{input:?} ran a command"
        );
    }
    // The crate's quoting is shlex's: the same holds for a plain
    // `shlex::try_quote`d value.
    let quoted = shlex::try_quote("x; rm -rf /").expect("quotable");
    let out = RealShell::default()
        .run(
            &Call::simple("inject"),
            &req(&format!("printf '%s\\n' {quoted}"), dir.path()),
        )
        .await
        .expect("runs");
    assert_eq!(out.stdout, "x; rm -rf /\n");
}

#[tokio::test]
async fn errors_never_show_the_send_form_of_the_command() {
    let dir = support::temp_dir();
    let secret = "hunter2-very-secret";
    let command = Rendered {
        send: format!("sleep 30 # {secret}"),
        display: "sleep 30 # ***".into(),
    };
    let e = RealShell::default()
        .run(
            &Call::simple("s"),
            &ShellRequest {
                command: command.clone(),
                timeout: Some(Duration::from_millis(200)),
                ..req("", dir.path())
            },
        )
        .await
        .expect_err("times out");
    assert!(!e.message.contains(secret), "{e}");
    assert!(!format!("{e:?}").contains(secret), "{e:?}");

    let missing = dir.path().join("no-such-dir");
    let e = RealShell::default()
        .run(
            &Call::simple("s"),
            &ShellRequest {
                command,
                ..req("", &missing)
            },
        )
        .await
        .expect_err("cannot start");
    assert_eq!(e.kind, ErrorKind::Unreachable, "{e}");
    assert!(e.message.contains("no-such-dir"), "{e}");
    assert!(!e.message.contains(secret), "{e}");
}

#[tokio::test]
async fn an_already_cancelled_call_spawns_nothing() {
    let dir = support::temp_dir();
    let call = Call::simple("c");
    call.cancel.cancel();
    let e = RealShell::default()
        .run(&call, &req("touch ran", dir.path()))
        .await
        .expect_err("cancelled");
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert!(!dir.path().join("ran").exists());
}

#[tokio::test]
async fn dropping_the_call_kills_the_group() {
    // The executor's safety net drops an adapter future that overran its
    // timeout + grace: the whole group dies, not only the shell.
    let dir = support::temp_dir();
    let mut r = req("sleep 30 & echo $! > pid; wait", dir.path());
    r.timeout = None;
    let pid_path = dir.path().join("pid");
    let run =
        tokio::spawn(async move { RealShell::default().run(&Call::simple("dropped"), &r).await });
    let pid = read_pid(&pid_path, Duration::from_secs(5)).await;
    let _guard = KillOnDrop(pid);
    run.abort();
    assert!(run.await.is_err_and(|e| e.is_cancelled()));
    let dead_after = wait_dead(pid, Duration::from_secs(2)).await;
    eprintln!("dropped future: child dead {dead_after:?} after the abort");
    assert!(dead_after.is_some(), "{pid} survived the drop");
}

#[tokio::test]
async fn output_written_while_dying_is_read_and_does_not_block_the_exit() {
    let dir = support::temp_dir();
    let shell = RealShell {
        grace: Duration::from_secs(5),
        ..RealShell::default()
    };
    // On SIGTERM the shell writes four pipe buffers' worth before exiting:
    // unless the pipe is read while the group is being killed, it blocks
    // until the SIGKILL at the end of the grace.
    let mut r = req(
        "trap 'head -c 262144 /dev/zero | tr \"\\0\" x; echo; echo done; exit 0' TERM; \
         sleep 30 & wait",
        dir.path(),
    );
    r.timeout = Some(Duration::from_millis(300));
    let t = Instant::now();
    let e = shell
        .run(&Call::simple("chatty"), &r)
        .await
        .expect_err("times out");
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(!e.message.contains("SIGKILL"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
}
