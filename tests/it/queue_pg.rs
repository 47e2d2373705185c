//! The run queue against a real PostgreSQL ([`PgCluster`]): `runbook
//! enqueue` validates before it stores, `runbook worker` processes run
//! each request exactly once, `runbook queue` shows the states, and a
//! worker stops promptly on SIGTERM.

use crate::support::{wait_exit, PgCluster};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Appends one line (O_APPEND: `>>`) to the request's own marker file.
const RUNBOOK: &str = r#"
runbook queued {
  input dir: string
  input n: string
  lock "queued/{{n}}"
  step mark {
    run "echo {{run.id}} >> {{dir}}/{{n}}.marker; sleep 0.2"
  }
}
"#;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A migrated cluster and a directory holding the runbook.
fn setup() -> (PgCluster, tempfile::TempDir) {
    let pg = PgCluster::start();
    let out = bin()
        .args(["store", "migrate", "--store", &pg.url()])
        .current_dir(std::env::temp_dir())
        .output()
        .expect("migrate runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("q.runbook"), RUNBOOK).expect("write runbook");
    (pg, dir)
}

fn enqueue(pg: &PgCluster, dir: &Path, inputs: &[String]) -> Output {
    let mut cmd = bin();
    cmd.args(["enqueue", "q.runbook", "--store", &pg.url()]);
    for i in inputs {
        cmd.args(["--input", i]);
    }
    cmd.current_dir(dir).output().expect("enqueue runs")
}

fn worker(pg: &PgCluster, dir: &Path, name: &str, concurrency: &str) -> Child {
    let runs: PathBuf = dir.join(format!("runs-{name}"));
    bin()
        .args(["worker", "--store", &pg.url(), "--concurrency", concurrency])
        .arg("--runs-dir")
        .arg(&runs)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker starts")
}

fn queue(pg: &PgCluster) -> String {
    let out = bin()
        .args(["queue", "--store", &pg.url()])
        .current_dir(std::env::temp_dir())
        .output()
        .expect("queue runs");
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sigterm(child: &Child) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill sends a signal to the worker this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

fn worker_log(mut child: Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
    }
    s
}

#[test]
fn two_workers_run_twenty_requests_each_exactly_once() {
    let (pg, dir) = setup();
    let d = dir.path().display().to_string();
    // Half queued before the workers start, half while they run (NOTIFY).
    for n in 0..10 {
        let out = enqueue(&pg, dir.path(), &[format!("dir={d}"), format!("n={n}")]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut one = worker(&pg, dir.path(), "one", "3");
    let mut two = worker(&pg, dir.path(), "two", "3");
    for n in 10..20 {
        let out = enqueue(&pg, dir.path(), &[format!("dir={d}"), format!("n={n}")]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while pg.psql("SELECT count(*) FROM runbook_queue WHERE state = 'done'") != "20" {
        assert!(Instant::now() < deadline, "not all done: {}", queue(&pg));
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&one);
    sigterm(&two);
    assert_eq!(wait_exit(&mut one, Duration::from_secs(20)).code(), Some(0));
    assert_eq!(wait_exit(&mut two, Duration::from_secs(20)).code(), Some(0));
    let (log_one, log_two) = (worker_log(one), worker_log(two));

    for n in 0..20 {
        let marker = std::fs::read_to_string(dir.path().join(format!("{n}.marker")))
            .unwrap_or_else(|e| panic!("request {n} never ran: {e}"));
        assert_eq!(marker.lines().count(), 1, "request {n} ran: {marker:?}");
        // The run id the marker got is the one recorded on the request.
        let recorded = pg.psql(&format!(
            "SELECT run_id FROM runbook_queue WHERE inputs[2] = 'n={n}'"
        ));
        assert_eq!(marker.trim(), recorded, "request {n}");
    }
    assert_eq!(
        pg.psql(
            "SELECT count(*), min(attempts), max(attempts), min(outcome), max(exit_code)
             FROM runbook_queue"
        ),
        "20|1|1|succeeded|0"
    );
    // Both workers took part (each claims up to 3 at once, runs take 0.2s).
    let workers = pg.psql("SELECT count(DISTINCT claimed_by) FROM runbook_queue");
    assert_eq!(workers, "2", "{log_one}\n{log_two}");
    let listing = queue(&pg);
    assert_eq!(listing.lines().count(), 21, "{listing}");
    assert!(
        listing
            .lines()
            .skip(1)
            .all(|l| l.contains("\tdone\t") && l.contains("\tsucceeded\t0\t")),
        "{listing}"
    );
}

#[test]
fn an_invalid_request_is_refused_at_enqueue_and_not_queued() {
    let (pg, dir) = setup();
    let d = dir.path().display().to_string();
    // A missing input.
    let missing = enqueue(&pg, dir.path(), &[format!("dir={d}")]);
    assert_eq!(missing.status.code(), Some(3), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("not queued"),
        "{}",
        stderr(&missing)
    );
    assert!(stderr(&missing).contains("`n`"), "{}", stderr(&missing));
    // An input the runbook does not have.
    let unknown = enqueue(
        &pg,
        dir.path(),
        &[format!("dir={d}"), "n=1".into(), "m=2".into()],
    );
    assert_eq!(unknown.status.code(), Some(3), "{}", stderr(&unknown));
    // A runbook that does not compile.
    std::fs::write(
        dir.path().join("q.runbook"),
        "runbook broken {\n  step {\n}\n",
    )
    .expect("write");
    let broken = enqueue(&pg, dir.path(), &[format!("dir={d}"), "n=1".into()]);
    assert_eq!(broken.status.code(), Some(3), "{}", stderr(&broken));
    assert_eq!(pg.psql("SELECT count(*) FROM runbook_queue"), "0");
    assert_eq!(queue(&pg).lines().count(), 1, "only the header");
}

#[test]
fn queue_shows_queued_and_a_worker_exits_0_promptly_on_sigterm_while_idle() {
    let (pg, dir) = setup();
    let d = dir.path().display().to_string();
    let out = bin()
        .args(["enqueue", "q.runbook", "--store", &pg.url(), "--tag", "eu"])
        .args(["--input", &format!("dir={d}"), "--input", "n=tagged"])
        .current_dir(dir.path())
        .output()
        .expect("enqueue runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("queued request 1"));
    // A worker of another tag leaves it queued.
    let mut other = bin()
        .args(["worker", "--store", &pg.url(), "--tag", "us"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker starts");
    let started = Instant::now();
    while !worker_started(&pg) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "worker never connected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let listing = queue(&pg);
    let row = listing.lines().nth(1).expect("a row");
    assert!(
        row.starts_with("1\tqueued\teu\t0\t-\t-\t-\t-\t"),
        "{listing}"
    );
    assert!(row.ends_with("q.runbook"), "{listing}");

    // Woken by NOTIFY: done well before the first poll (a third of the
    // 30s lease).
    let queued = Instant::now();
    let out = bin()
        .args(["enqueue", "q.runbook", "--store", &pg.url(), "--tag", "us"])
        .args(["--input", &format!("dir={d}"), "--input", "n=us"])
        .current_dir(dir.path())
        .output()
        .expect("enqueue runs");
    assert!(out.status.success(), "{}", stderr(&out));
    while pg.psql("SELECT count(*) FROM runbook_queue WHERE id = 2 AND state = 'done'") != "1" {
        assert!(
            queued.elapsed() < Duration::from_secs(5),
            "not woken: {}",
            queue(&pg)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("us.marker"))
            .expect("ran")
            .lines()
            .count(),
        1
    );

    let asked = Instant::now();
    sigterm(&other);
    let status = wait_exit(&mut other, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", worker_log(other));
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(
        pg.psql("SELECT state FROM runbook_queue WHERE id = 1"),
        "queued"
    );
}

/// With `poll: 10m` the worker looks for requests only when it starts,
/// when a run of its own ends and when `NOTIFY runbook_queue` wakes it:
/// a request queued after it started, idle, is run well within the
/// test's limit only because the notification woke it.
#[test]
fn an_idle_worker_with_a_ten_minute_poll_is_woken_by_notify() {
    let (pg, dir) = setup();
    let d = dir.path().display().to_string();
    std::fs::write(
        dir.path().join("runbook.yaml"),
        format!("store:\n  url: {}\n  poll: 10m\n", pg.url()),
    )
    .expect("write config");
    let mut idle = bin()
        .args(["worker", "--runs-dir", "runs-idle"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker starts");
    let limit = Instant::now() + Duration::from_secs(120);
    while !worker_started(&pg) {
        assert!(Instant::now() < limit, "worker never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    // It has looked once, found nothing, and now waits for a notification
    // (or the poll, ten minutes away). Two requests, one after the other.
    for n in ["first", "second"] {
        let out = bin()
            .args(["enqueue", "q.runbook", "--input", &format!("dir={d}")])
            .args(["--input", &format!("n={n}")])
            .current_dir(dir.path())
            .output()
            .expect("enqueue runs");
        assert!(out.status.success(), "{}", stderr(&out));
        while pg.psql("SELECT count(*) FROM runbook_queue WHERE state = 'queued'") != "0"
            || pg.psql("SELECT count(*) FROM runbook_queue WHERE state = 'running'") != "0"
        {
            assert!(Instant::now() < limit, "not woken: {}", queue(&pg));
            std::thread::sleep(Duration::from_millis(50));
        }
        let marker = std::fs::read_to_string(dir.path().join(format!("{n}.marker")))
            .unwrap_or_else(|e| panic!("request {n} never ran: {e}"));
        assert_eq!(marker.lines().count(), 1, "{n}: {marker:?}");
    }
    assert_eq!(
        pg.psql("SELECT string_agg(state || ':' || outcome, ',' ORDER BY id) FROM runbook_queue"),
        "done:succeeded,done:succeeded"
    );
    sigterm(&idle);
    assert_eq!(
        wait_exit(&mut idle, Duration::from_secs(20)).code(),
        Some(0),
        "{}",
        worker_log(idle)
    );
}

/// A worker is listening on the queue's channel.
fn worker_started(pg: &PgCluster) -> bool {
    pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN runbook_queue'") != "0"
}

/// Runs a while, so that a worker can be stopped or killed mid-run.
const SLOW: &str = r#"
runbook slow {
  input dir: string
  step mark {
    run "echo x >> {{dir}}/slow.marker; sleep 3"
  }
}
"#;

#[test]
fn sigterm_finishes_the_run_in_progress_and_a_killed_workers_run_in_doubt_is_not_rerun() {
    let (pg, dir) = setup();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("slow.runbook"), SLOW).expect("write");
    std::fs::write(
        dir.path().join("runbook.yaml"),
        format!("store:\n  url: {}\n  lease: 1s\n", pg.url()),
    )
    .expect("write config");
    let slow = |pg: &PgCluster| {
        let out = bin()
            .args(["enqueue", "slow.runbook", "--input", &format!("dir={d}")])
            .current_dir(dir.path())
            .output()
            .expect("enqueue runs");
        assert!(out.status.success(), "{}", stderr(&out));
        pg.psql("SELECT max(id) FROM runbook_queue")
    };
    let running = |pg: &PgCluster, id: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while pg.psql(&format!(
            "SELECT count(*) FROM runbook_queue WHERE id = {id} AND run_id IS NOT NULL"
        )) != "1"
        {
            assert!(Instant::now() < deadline, "never started: {}", queue(pg));
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // SIGTERM mid-run: the run finishes, its outcome is recorded, exit 0.
    let first = slow(&pg);
    let mut w = bin()
        .args(["worker", "--runs-dir", "runs-a"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker starts");
    running(&pg, &first);
    sigterm(&w);
    assert_eq!(wait_exit(&mut w, Duration::from_secs(20)).code(), Some(0));
    assert_eq!(
        pg.psql(&format!(
            "SELECT state, outcome, exit_code FROM runbook_queue WHERE id = {first}"
        )),
        "done|succeeded|0",
        "{}",
        worker_log(w)
    );

    // SIGKILL mid-run: another worker takes the run over after the grace
    // (the 1s lease); its step is in doubt and has no verify, so the run
    // cannot go on without an answer: the request is orphaned
    // (`not_resumed`) and the step is not started again.
    let second = slow(&pg);
    let mut killed = bin()
        .args(["worker", "--runs-dir", "runs-b"])
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .expect("worker starts");
    running(&pg, &second);
    // Killed mid-step: once its command has written the marker (the run id
    // is recorded before the step starts).
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(dir.path().join("slow.marker")).map_or(0, |m| m.lines().count())
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "the second run's step never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    killed.kill().expect("SIGKILL");
    let _ = killed.wait();
    let mut other = bin()
        .args(["worker", "--runs-dir", "runs-c"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while pg.psql(&format!(
        "SELECT state FROM runbook_queue WHERE id = {second}"
    )) != "orphaned"
    {
        assert!(Instant::now() < deadline, "not orphaned: {}", queue(&pg));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    sigterm(&other);
    assert_eq!(
        wait_exit(&mut other, Duration::from_secs(20)).code(),
        Some(0)
    );
    let log = worker_log(other);
    assert!(log.contains("taking over run"), "{log}");
    assert!(log.contains("taken over but not resumed"), "{log}");
    assert_eq!(
        pg.psql(&format!(
            "SELECT outcome FROM runbook_queue WHERE id = {second}"
        )),
        "not_resumed"
    );
    let marker = std::fs::read_to_string(dir.path().join("slow.marker")).expect("marker");
    assert_eq!(
        marker.lines().count(),
        2,
        "each request started once: {marker:?}"
    );
    let journals = std::fs::read_dir(dir.path().join("runs-c"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        journals, 1,
        "the other worker rebuilt the run's directory only"
    );

    // A human answers: the step took effect. The resume takes the
    // orphaned request with it, which ends with the run's outcome.
    let run_id = pg.psql(&format!(
        "SELECT run_id FROM runbook_queue WHERE id = {second}"
    ));
    let resumed = bin()
        .args([
            "resume",
            &run_id,
            "--assume-done",
            "mark",
            "--runs-dir",
            "runs-d",
        ])
        .current_dir(dir.path())
        .output()
        .expect("resume runs");
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(
        pg.psql(&format!(
            "SELECT state, outcome, exit_code FROM runbook_queue WHERE id = {second}"
        )),
        "done|succeeded|0"
    );
    let marker = std::fs::read_to_string(dir.path().join("slow.marker")).expect("marker");
    assert_eq!(marker.lines().count(), 2, "not run again: {marker:?}");
}

#[test]
fn a_worker_reconnects_after_the_database_restarts_and_runs_what_is_queued_then() {
    let (pg, dir) = setup();
    std::fs::write(
        dir.path().join("runbook.yaml"),
        format!("store:\n  url: {}\n  lease: 1s\n", pg.url()),
    )
    .expect("write config");
    let mut w = worker(&pg, dir.path(), "r", "1");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !worker_started(&pg) {
        assert!(Instant::now() < deadline, "the worker never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    pg.stop_server();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        w.try_wait().expect("try_wait").is_none(),
        "the worker outlives the database"
    );
    pg.start_server();
    let d = dir.path().display().to_string();
    let out = enqueue(&pg, dir.path(), &[format!("dir={d}"), "n=after".to_owned()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg
        .psql("SELECT count(*) FROM runbook_queue WHERE state = 'done' AND outcome = 'succeeded'")
        != "1"
    {
        assert!(Instant::now() < deadline, "never run: {}", queue(&pg));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("after.marker"))
            .map(|m| m.lines().count())
            .unwrap_or(0),
        1
    );
    sigterm(&w);
    assert_eq!(wait_exit(&mut w, Duration::from_secs(20)).code(), Some(0));
    let log = worker_log(w);
    assert!(log.contains("reconnected to"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}
