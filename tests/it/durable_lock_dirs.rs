//! Locks are machine-wide: they live in one locks directory (under
//! `$RUNBOOK_STATE_DIR`, `locks_dir:` in the config, or `--locks-dir`), not
//! under the runs directory, so the same runbook started from two
//! directories is refused the second time. Something other than a regular
//! file at a lock's name (a FIFO, a symbolic link) is refused at once,
//! never followed.

use crate::support;

use runbook::durable::lock::{acquire, lock_path, LockError};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{mkfifo, output_within, text, CliEnv};

const RUNBOOK: &str = r#"
runbook held {
  input dir: string
  step a {
    run "echo x >> {{dir}}/a.marker; sleep 30"
    undo "true"
  }
}
"#;

const QUICK: &str = r#"
runbook held {
  input dir: string
  step a {
    run "echo x >> {{dir}}/a.marker"
    undo "true"
  }
}
"#;

/// `runbook run FILE -i dir=...` in `env`'s directory, with its default
/// runs directory (relative: `.runbook/runs` there) and the shared state
/// directory `state`.
fn run_default(
    env: &CliEnv,
    file: &str,
    state: &std::path::Path,
    extra: &[&str],
) -> std::process::Command {
    let kv = format!("dir={}", env.dir.display());
    let mut args = vec!["run", file, "-i", kv.as_str()];
    args.extend_from_slice(extra);
    let mut c = env.cmd(&args);
    c.env("RUNBOOK_STATE_DIR", state);
    c
}

#[test]
fn the_same_runbook_from_two_directories_is_refused_the_second_time() {
    let state = tempfile::tempdir().expect("state dir");
    let one = CliEnv::new(&[("held.runbook", RUNBOOK)], None);
    let two = CliEnv::new(&[("held.runbook", QUICK)], None);
    let mut first = run_default(&one, "held.runbook", state.path(), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("first run");
    let deadline = Instant::now() + Duration::from_secs(20);
    while one.count("a.marker") == 0 {
        assert!(
            Instant::now() < deadline,
            "the first run never started its step"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The lock is in the state directory, not in either runs directory.
    let lock = state.path().join("locks").join("held.lock");
    assert!(lock.is_file(), "{}", lock.display());
    assert!(!one.dir.join(".runbook/runs/locks").exists());

    let second = output_within(
        run_default(&two, "held.runbook", state.path(), &[]),
        Duration::from_secs(20),
    );
    assert_eq!(second.status.code(), Some(3), "{}", text(&second));
    assert!(
        text(&second).contains("the lock `held` is held by"),
        "{}",
        text(&second)
    );
    assert_eq!(two.count("a.marker"), 0, "the second run did nothing");

    // Another locks directory (the flag) is another set of locks.
    let elsewhere = two.dir.join("my-locks");
    let e = elsewhere.display().to_string();
    let third = output_within(
        run_default(&two, "held.runbook", state.path(), &["--locks-dir", &e]),
        Duration::from_secs(20),
    );
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    assert_eq!(two.count("a.marker"), 1);
    assert!(elsewhere.is_dir());
    // ... and so is the config's `locks_dir:`.
    let cfg_locks = two.dir.join("cfg-locks");
    std::fs::write(
        two.dir.join("runbook.yaml"),
        format!("locks_dir: {}\n", cfg_locks.display()),
    )
    .expect("config");
    let fourth = output_within(
        run_default(&two, "held.runbook", state.path(), &[]),
        Duration::from_secs(20),
    );
    assert_eq!(fourth.status.code(), Some(0), "{}", text(&fourth));
    assert!(cfg_locks.is_dir());

    first.kill().expect("kill");
    first.wait().expect("wait");
}

#[test]
fn a_fifo_or_a_symlink_at_the_lock_is_refused_quickly() {
    let env = CliEnv::new(&[("held.runbook", QUICK)], None);
    let locks = env.state_dir().join("locks");
    std::fs::create_dir_all(&locks).expect("locks dir");
    let lock = locks.join("held.lock");
    let kv = format!("dir={}", env.dir.display());

    mkfifo(&lock);
    let out = output_within(
        env.cmd(&["run", "held.runbook", "-i", &kv]),
        Duration::from_secs(5),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("is a FIFO, not a regular file"),
        "{}",
        text(&out)
    );
    // --break-lock does not break it either.
    let out = output_within(
        env.cmd(&["run", "held.runbook", "-i", &kv, "--break-lock"]),
        Duration::from_secs(5),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    std::fs::remove_file(&lock).expect("rm fifo");

    // A symlink to a file that is not a lock (nor runbook's to touch).
    let victim = env.dir.join("victim.txt");
    std::fs::write(&victim, "keep me\n").expect("victim");
    std::os::unix::fs::symlink(&victim, &lock).expect("symlink");
    for extra in [&[][..], &["--break-lock"][..]] {
        let mut args = vec!["run", "held.runbook", "-i", kv.as_str()];
        args.extend_from_slice(extra);
        let out = output_within(env.cmd(&args), Duration::from_secs(5));
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(
            text(&out).contains("is a symbolic link, not a regular file"),
            "{}",
            text(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "keep me\n"
    );
    assert_eq!(env.count("a.marker"), 0, "no run started");
}

#[test]
fn acquire_refuses_non_regular_files_by_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let locks = dir.path();
    mkfifo(&lock_path(locks, "f"));
    std::os::unix::fs::symlink("/dev/null", lock_path(locks, "s")).expect("symlink");
    std::os::unix::fs::symlink(locks.join("nowhere"), lock_path(locks, "d")).expect("dangling");
    std::fs::create_dir(lock_path(locks, "dir")).expect("dir");
    for (key, kind) in [
        ("f", "a FIFO"),
        ("s", "a symbolic link"),
        ("d", "a symbolic link"),
        ("dir", "a directory"),
    ] {
        match acquire(locks, key, "r", true) {
            Err(LockError::NotAFile { kind: k, .. }) => assert_eq!(k, kind, "{key}"),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert!(
        !locks.join("nowhere").exists(),
        "the dangling link was not followed"
    );
}

#[test]
fn the_state_directory_follows_the_documented_order() {
    // A FIFO where the lock is expected: the refusal names the path used.
    let env = CliEnv::new(&[("held.runbook", QUICK)], None);
    let kv = format!("dir={}", env.dir.display());
    let xdg = env.dir.join("xdg");
    let home = env.dir.join("home");
    let at = |dir: std::path::PathBuf| {
        std::fs::create_dir_all(&dir).expect("dir");
        let lock = dir.join("held.lock");
        mkfifo(&lock);
        lock
    };
    let by_xdg = at(xdg.join("runbook/locks"));
    let by_home = at(home.join(".local/state/runbook/locks"));
    let by_state = at(env.dir.join("explicit/locks"));
    let refused_at = |envs: &[(&str, &std::path::Path)], lock: &std::path::Path| {
        let mut c = env.cmd(&["run", "held.runbook", "-i", &kv]);
        c.env_remove("RUNBOOK_STATE_DIR")
            .env_remove("XDG_STATE_HOME");
        for (k, v) in envs {
            c.env(k, v);
        }
        let out = output_within(c, Duration::from_secs(5));
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(
            text(&out).contains(&lock.display().to_string()),
            "{envs:?}: {}",
            text(&out)
        );
    };
    refused_at(
        &[
            ("RUNBOOK_STATE_DIR", &env.dir.join("explicit")),
            ("XDG_STATE_HOME", &xdg),
            ("HOME", &home),
        ],
        &by_state,
    );
    refused_at(&[("XDG_STATE_HOME", &xdg), ("HOME", &home)], &by_xdg);
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        refused_at(&[("HOME", &home)], &by_home);
        // A relative XDG_STATE_HOME is ignored, as the XDG spec says.
        refused_at(
            &[
                ("XDG_STATE_HOME", std::path::Path::new("rel")),
                ("HOME", &home),
            ],
            &by_home,
        );
    }
    let flag = std::path::Path::new("/x/flag");
    let cfg = std::path::Path::new("/x/cfg");
    assert_eq!(
        runbook::durable::lock::locks_dir(Some(flag), Some(cfg)),
        Ok(flag.to_path_buf())
    );
    assert_eq!(
        runbook::durable::lock::locks_dir(None, Some(cfg)),
        Ok(cfg.to_path_buf())
    );
}
