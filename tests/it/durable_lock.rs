//! The run lock, including against a second real process (this test binary
//! re-run as a child that takes the lock and holds it until its stdin
//! closes, or is killed).

use runbook::durable::lock::{acquire, inspect, lock_path, LockError, LockHolder};
use runbook::durable::sys;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const CHILD_ENV: &str = "RUNBOOK_DURABLE_LOCK_CHILD";
const KEY: &str = "web deploy/../prod";

/// Not a test of its own: the body of the child process.
#[test]
fn child_lock_holder() {
    let Ok(runs) = std::env::var(CHILD_ENV) else {
        return;
    };
    let guard = acquire(Path::new(&runs), KEY, "child-run", false).expect("child acquires");
    println!("LOCKED {}", std::process::id());
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(guard);
}

/// Starts a child process holding `KEY` under `runs`; returns once it
/// holds it.
fn spawn_holder(runs: &Path) -> Child {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "durable_lock::child_lock_holder",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, runs)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            // The harness prints `test child_lock_holder ... ` first, on
            // the same line.
            Some(Ok(line)) if line.contains("LOCKED ") => {
                assert!(line.ends_with(&format!("LOCKED {}", child.id())), "{line}");
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("the child did not take the lock: {other:?}"),
        }
    }
    // Keep reading, so that the child never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

#[test]
fn a_lock_held_by_another_process_is_refused_with_its_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn_holder(dir.path());
    for break_stale in [false, true] {
        match acquire(dir.path(), KEY, "my-run", break_stale) {
            Err(LockError::Held { holder, path, why }) => {
                assert_eq!(holder.pid, child.id());
                assert_eq!(holder.run_id, "child-run");
                assert_eq!(holder.key, KEY);
                assert_eq!(holder.host, sys::hostname());
                assert!(why.is_none(), "{why:?}");
                assert_eq!(path, lock_path(dir.path(), KEY));
                let msg = LockError::Held { holder, path, why }.to_string();
                for needle in [
                    "run child-run",
                    &format!("pid {}", child.id()),
                    "since ",
                    " ago)",
                    "--break-lock",
                    KEY,
                ] {
                    assert!(msg.contains(needle), "{needle:?} in {msg}");
                }
            }
            other => panic!("expected Held, got {other:?}"),
        }
    }
    let (holder, live) = inspect(dir.path(), KEY).expect("inspect");
    assert!(live);
    assert_eq!(holder.pid, child.id());

    // The child releases it (stdin closes): the lock is free, file gone.
    drop(child.stdin.take());
    assert!(child.wait().expect("wait").success());
    assert!(!lock_path(dir.path(), KEY).exists());
    let guard = acquire(dir.path(), KEY, "my-run", false).expect("free now");
    assert!(guard.broke().is_none());
}

#[test]
fn a_stale_lock_of_a_killed_process_is_detected_and_broken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn_holder(dir.path());
    let pid = child.id();
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    assert!(
        lock_path(dir.path(), KEY).exists(),
        "a killed process leaves its lock"
    );
    assert_eq!(
        inspect(dir.path(), KEY).map(|(h, live)| (h.pid, live)),
        Some((pid, false))
    );

    match acquire(dir.path(), KEY, "my-run", false) {
        Err(e @ LockError::Stale { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("--break-lock"), "{msg}");
            assert!(msg.contains(&format!("pid {pid}")), "{msg}");
            assert!(msg.contains("is gone"), "{msg}");
            assert!(msg.contains("runbook resume child-run"), "{msg}");
            if let LockError::Stale { holder, .. } = e {
                assert_eq!(holder.pid, pid);
            }
        }
        other => panic!("expected Stale, got {other:?}"),
    }
    let guard = acquire(dir.path(), KEY, "my-run", true).expect("broken");
    assert_eq!(guard.broke().map(|h| h.pid), Some(pid));
    let msg = guard.broke_message().expect("message");
    assert!(msg.contains("broke the stale lock"), "{msg}");
    assert!(msg.contains("child-run"), "{msg}");
    let on_disk: LockHolder =
        serde_json::from_slice(&std::fs::read(lock_path(dir.path(), KEY)).expect("read"))
            .expect("json");
    assert_eq!(on_disk.run_id, "my-run");
    assert_eq!(on_disk.pid, std::process::id());
    // And it is really held now.
    assert!(matches!(
        acquire(dir.path(), KEY, "third", true),
        Err(LockError::Held { why: None, .. })
    ));
    guard.release().expect("release");
    assert!(!lock_path(dir.path(), KEY).exists());
}

fn write_lock(runs: &Path, key: &str, holder: &LockHolder) {
    let path = lock_path(runs, key);
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    std::fs::write(path, serde_json::to_vec(holder).expect("json")).expect("write");
}

fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().expect("spawn true");
    let pid = c.id();
    c.wait().expect("wait");
    pid
}

#[test]
fn locks_left_by_hand_are_judged_conservatively() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path();

    // Dead pid on this host, flock free: stale, breakable.
    let mut h = LockHolder::me("k1", "old-run");
    h.pid = dead_pid();
    write_lock(runs, "k1", &h);
    assert!(matches!(
        acquire(runs, "k1", "r", false),
        Err(LockError::Stale { .. })
    ));
    assert!(acquire(runs, "k1", "r", true)
        .expect("broken")
        .broke()
        .is_some());

    // Another host: never broken automatically.
    let mut h = LockHolder::me("k2", "remote-run");
    h.host = "elsewhere.example".into();
    h.pid = dead_pid();
    write_lock(runs, "k2", &h);
    match acquire(runs, "k2", "r", true) {
        Err(e @ LockError::Held { why: Some(_), .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("another host (elsewhere.example)"), "{msg}");
            assert!(msg.contains("remove"), "{msg}");
        }
        other => panic!("{other:?}"),
    }

    // A live pid (this very process) that does not hold the flock: not
    // broken (a reused pid is possible, a human decides).
    let h = LockHolder::me("k3", "odd-run");
    write_lock(runs, "k3", &h);
    match acquire(runs, "k3", "r", true) {
        Err(e @ LockError::Held { why: Some(_), .. }) => {
            assert!(e.to_string().contains("reused"), "{e}");
        }
        other => panic!("{other:?}"),
    }

    // Unreadable: never broken.
    let path = lock_path(runs, "k4");
    std::fs::write(&path, b"{garbage").expect("write");
    match acquire(runs, "k4", "r", true) {
        Err(e @ LockError::Unreadable { in_use: false, .. }) => {
            assert!(e.to_string().contains("remove it by hand"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(path.exists());
}

#[test]
fn a_second_acquire_in_the_same_process_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = acquire(dir.path(), "db", "run-1", false).expect("first");
    match acquire(dir.path(), "db", "run-2", true) {
        Err(LockError::Held { holder, why, .. }) => {
            assert_eq!(holder.run_id, "run-1");
            assert!(why.is_none());
        }
        other => panic!("{other:?}"),
    }
    drop(g);
    assert!(!lock_path(dir.path(), "db").exists());
    acquire(dir.path(), "db", "run-2", false).expect("free again");
}

#[test]
fn racing_acquirers_get_exactly_one_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 0..20 {
        let key = format!("race-{round}");
        let barrier = std::sync::Barrier::new(8);
        let results: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (barrier, key, runs) = (&barrier, &key, dir.path());
                    s.spawn(move || {
                        barrier.wait();
                        let r = acquire(runs, key, &format!("run-{i}"), true);
                        let ok = r.is_ok();
                        // Hold it until everyone has tried.
                        barrier.wait();
                        drop(r);
                        ok
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "round {round}");
    }
}

#[test]
fn keys_are_made_safe_file_names_and_never_collide() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = [
        "../../etc/passwd",
        "a/b",
        "a%2Fb",
        "a b",
        "déploiement été",
        "",
        ".",
        "..",
        "x\n\u{1b}[2J",
    ];
    let guards: Vec<_> = keys
        .iter()
        .map(|k| acquire(dir.path(), k, "r", false).expect("distinct keys do not collide"))
        .collect();
    // The directory given is the locks directory itself.
    let locks = dir.path().to_path_buf();
    for (k, g) in keys.iter().zip(&guards) {
        assert_eq!(g.path().parent(), Some(locks.as_path()), "{k:?}");
        let name = g.path().file_name().and_then(|n| n.to_str()).expect("name");
        assert!(!name.starts_with('.'), "{k:?} -> {name}");
        let holder: LockHolder =
            serde_json::from_slice(&std::fs::read(g.path()).expect("read")).expect("json");
        assert_eq!(holder.key, *k);
        assert_eq!(holder.run_id, "r");
        assert!(!holder.user.is_empty() && !holder.host.is_empty() && !holder.started.is_empty());
    }
    // Nothing but the lock files (no temporary left over).
    let n = std::fs::read_dir(&locks).expect("dir").count();
    assert_eq!(n, keys.len());
    // Nothing escaped the locks directory.
    assert!(!dir.path().join("etc").exists());
}

#[test]
fn a_guard_never_removes_a_lock_that_is_no_longer_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = acquire(dir.path(), "k", "r1", false).expect("acquire");
    // Someone replaced the file (by hand).
    let other = dir.path().join("other");
    std::fs::write(&other, b"{}").expect("write");
    std::fs::rename(&other, g.path()).expect("rename");
    let path = g.path().to_owned();
    drop(g);
    assert!(path.exists());
}
