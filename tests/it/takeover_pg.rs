//! Takeover of dead runs through the PostgreSQL store (issue 13): a run
//! whose owner stopped heartbeating for longer than the grace is claimed
//! by a worker or by `runbook resume RUN_ID --store` on another machine
//! (another runs directory), and goes on from the store's rows with the
//! in-doubt rules of `resume`: the completed step is not run again, the
//! step cut off is decided by its verify. The old owner, if it comes back,
//! is fenced by the epoch and starts nothing more.

use crate::support::{output_within, text, wait_exit, CliEnv, PgCluster};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// `b` is cut off while it sleeps; its verify reads the marker its command
/// wrote first.
const RUNBOOK: &str = r#"
runbook takeover {
  input dir: string
  check b_done {
    shell "test -f {{dir}}/b.marker"
    expect exit == 0
  }
  step a {
    run "echo a >> {{dir}}/a.marker"
  }
  step b {
    run "echo b >> {{dir}}/b.marker; sleep 4"
    verify b_done within 5s every 1s
  }
  step c {
    run "echo c >> {{dir}}/c.marker"
  }
}
"#;

/// A machine: a directory whose runbook.yaml names the store with a 1s
/// lease and a 3s grace (and, for the first machine, the runbook).
fn machine(pg: &PgCluster, with_runbook: bool) -> CliEnv {
    let config = format!("store:\n  url: {}\n  lease: 1s\n  grace: 3s\n", pg.url());
    let mut files = vec![("runbook.yaml", config.as_str())];
    if with_runbook {
        files.push(("t.runbook", RUNBOOK));
    }
    CliEnv::new(&files, None)
}

/// Waits until `marker` (in `m`'s directory) has a line.
fn wait_marker(m: &CliEnv, marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while m.count(marker) == 0 {
        assert!(Instant::now() < deadline, "{marker} never written");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill sends a signal to a process this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// The run's journal as the store holds it (`runbook export`), checked.
fn exported(m: &CliEnv, pg: &PgCluster, id: &str) -> String {
    let out = m.out(&["export", id, "--store", &pg.url()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hash chain is intact"),
        "{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The one `run_taken_over` line of a journal, parsed.
fn taken_over(journal: &str) -> serde_json::Value {
    let lines: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains("\"kind\":\"run_taken_over\""))
        .collect();
    assert_eq!(lines.len(), 1, "one takeover recorded: {journal}");
    serde_json::from_str(lines[0]).expect("a journal line")
}

/// The one `run_taken_over` of a journal, by `runbook resume`, from
/// epoch 1 to 2.
fn taken_over_by_resume(journal: &str) -> serde_json::Value {
    let t = taken_over(journal);
    assert!(
        t["by"]
            .as_str()
            .is_some_and(|b| b.starts_with("resume by ")),
        "{t}"
    );
    assert_eq!(
        (t["old_epoch"].as_i64(), t["new_epoch"].as_i64()),
        (Some(1), Some(2))
    );
    t
}

/// Every step ran once; `b` was settled by its verify, not run again.
fn each_step_once(m: &CliEnv, journal: &str) {
    assert_eq!(m.count("a.marker"), 1, "a completed: not run again");
    assert_eq!(m.count("b.marker"), 1, "b in doubt: decided by its verify");
    assert_eq!(m.count("c.marker"), 1, "c ran once");
    assert!(journal.contains("its verify decides"), "{journal}");
    assert!(
        journal
            .lines()
            .last()
            .is_some_and(|l| l.contains("\"kind\":\"run_finished\"") && l.contains("succeeded")),
        "{journal}"
    );
}

fn runs_store(m: &CliEnv, pg: &PgCluster) -> String {
    let out = m.out(&["runs", "--store", &pg.url()]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `runbook worker --runs-dir RUNS` in `m`.
fn worker(m: &CliEnv, runs: &str) -> Child {
    m.cmd(&["worker", "--runs-dir", runs])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("worker starts")
}

/// SIGTERM to a worker, which exits 0.
fn stop(mut worker: Child) {
    signal(&worker, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut worker, Duration::from_secs(20)).code(),
        Some(0)
    );
}

/// Waits (up to 60 s) until request `id` is `done`.
fn wait_done(pg: &PgCluster, id: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while pg.psql(&format!("SELECT state FROM runbook_queue WHERE id = {id}")) != "done" {
        assert!(
            Instant::now() < deadline,
            "never done: {}",
            pg.psql("SELECT * FROM runbook_queue")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The queued run `id` succeeded, each step once, taken over by a worker:
/// its journal and the `run_taken_over` event.
fn succeeded_once_taken_over(m: &CliEnv, pg: &PgCluster, id: &str) -> (String, serde_json::Value) {
    assert_eq!(
        pg.psql("SELECT outcome, exit_code FROM runbook_queue"),
        "succeeded|0"
    );
    let journal = exported(m, pg, id);
    each_step_once(m, &journal);
    let t = taken_over(&journal);
    (journal, t)
}

/// The runbook queued (request 1), a worker with runs directory `runs-a`
/// SIGKILLed mid-`b`: the dead worker and the request's run id.
fn queued_run_cut_off(m: &CliEnv, pg: &PgCluster) -> (Child, String) {
    let d = format!("dir={}", m.dir.display());
    let out = m.out(&["enqueue", "t.runbook", "--input", &d]);
    assert!(out.status.success(), "{}", text(&out));
    let mut first = worker(m, "runs-a");
    wait_marker(m, "b.marker");
    signal(&first, libc::SIGKILL);
    let _ = first.wait();
    let id = pg.psql("SELECT run_id FROM runbook_queue");
    assert!(!id.is_empty(), "the request's run is recorded");
    (first, id)
}

#[test]
fn a_sigkilled_workers_run_is_taken_over_by_another_worker_after_the_grace() {
    let pg = PgCluster::migrated();
    let m = machine(&pg, true);
    let (first, id) = queued_run_cut_off(&m, &pg);
    // On its own machine the dead worker's run reads `interrupted` at once
    // (its process is gone).
    assert!(
        runs_store(&m, &pg).contains("interrupted"),
        "{}",
        runs_store(&m, &pg)
    );
    // As another machine's worker would have recorded it: a worker on the
    // run's own machine would take it over at once (the next test).
    pg.psql(&format!(
        "UPDATE runbook_runs SET host = 'bastion-1' WHERE run_id = '{id}'"
    ));

    let started = Instant::now();
    let second = worker(&m, "runs-b");
    wait_done(&pg, 1);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "taken over only after the grace"
    );
    stop(second);
    let (journal, t) = succeeded_once_taken_over(&m, &pg, &id);
    assert_eq!(
        (t["old_epoch"].as_i64(), t["new_epoch"].as_i64()),
        (Some(1), Some(2))
    );
    assert!(
        t["by"].as_str().is_some_and(|b| b.starts_with("worker ")),
        "{t}"
    );
    assert_eq!(t["from_pid"].as_i64(), Some(i64::from(first.id())));
    assert!(t["silent_ms"].as_u64().is_some_and(|ms| ms >= 3000), "{t}");
    // The new machine's file journal is the rows.
    let file = std::fs::read_to_string(m.dir.join("runs-b").join(&id).join("journal.jsonl"))
        .expect("the taking worker's journal");
    assert_eq!(file, journal);
    let listed = runs_store(&m, &pg);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("succeeded")),
        "{listed}"
    );
}

/// `runbook run` on one machine, cut off mid-`b`; `runbook resume --store`
/// from another directory with its own runs directory.
fn cut_off_run(m: &CliEnv) -> (Child, String) {
    let child = m
        .run_here("t.runbook", &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runbook starts");
    let id = m.first_run();
    wait_marker(m, "b.marker");
    (child, id)
}

fn resume_elsewhere(other: &CliEnv, pg: &PgCluster, id: &str) -> Output {
    other.out(&[
        "resume",
        id,
        "--store",
        &pg.url(),
        "--runs-dir",
        "elsewhere",
    ])
}

#[test]
fn resume_store_takes_a_dead_run_over_from_another_runs_directory() {
    let pg = PgCluster::migrated();
    let m = machine(&pg, true);
    let other = machine(&pg, false);
    let (mut child, id) = cut_off_run(&m);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // As another machine's run would have recorded it: on this machine a
    // resume would take over a run whose process is gone at once.
    pg.psql(&format!(
        "UPDATE runbook_runs SET host = 'bastion-1' WHERE run_id = '{id}'"
    ));

    let early = resume_elsewhere(&other, &pg, &id);
    assert_eq!(early.status.code(), Some(3), "{}", text(&early));
    assert!(text(&early).contains("is alive"), "{}", text(&early));
    assert!(
        !other.dir.join("elsewhere").exists(),
        "a refused takeover writes nothing"
    );

    std::thread::sleep(Duration::from_millis(3200));
    let out = resume_elsewhere(&other, &pg, &id);
    assert!(out.status.success(), "{}", text(&out));
    let journal = exported(&other, &pg, &id);
    each_step_once(&m, &journal);
    taken_over_by_resume(&journal);
    let file = std::fs::read_to_string(other.dir.join("elsewhere").join(&id).join("journal.jsonl"))
        .expect("the new runs directory has the journal");
    assert_eq!(file, journal, "the new file journal starts from the rows");
    let v = other.out(&["verify-journal", &id, "--runs-dir", "elsewhere"]);
    assert!(v.status.success(), "{}", text(&v));
    let again = resume_elsewhere(&other, &pg, &id);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert!(
        text(&again).contains("already finished"),
        "{}",
        text(&again)
    );
}

#[test]
fn the_old_owner_coming_back_after_a_takeover_starts_no_new_action() {
    let pg = PgCluster::migrated();
    let m = machine(&pg, true);
    let other = machine(&pg, false);
    let (mut child, id) = cut_off_run(&m);
    signal(&child, libc::SIGSTOP);
    // Alive on this machine (stopped, not gone): the grace applies.
    let early = resume_elsewhere(&other, &pg, &id);
    if early.status.code() != Some(3) {
        signal(&child, libc::SIGCONT);
    }
    assert_eq!(early.status.code(), Some(3), "{}", text(&early));
    assert!(text(&early).contains("is alive"), "{}", text(&early));
    std::thread::sleep(Duration::from_millis(3200));
    let out = resume_elsewhere(&other, &pg, &id);
    if !out.status.success() {
        signal(&child, libc::SIGCONT);
    }
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(m.count("c.marker"), 1);
    let before = exported(&other, &pg, &id);

    signal(&child, libc::SIGCONT);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    let mut log = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut log);
    }
    assert!(
        !status.success(),
        "the fenced owner does not succeed: {log}"
    );
    assert_eq!(
        m.count("c.marker"),
        1,
        "the old owner started no new action: {log}"
    );
    assert_eq!(m.count("b.marker"), 1, "{log}");
    let own = m.journal(&id);
    assert!(own.contains("was taken over by another process"), "{own}");
    assert_eq!(
        exported(&other, &pg, &id),
        before,
        "the old owner wrote no row after the takeover"
    );
    each_step_once(&m, &before);
}

/// A machine whose store has a 10-minute lease and grace: a resume that
/// waited for either would not finish within the test's limit.
fn slow_grace_machine(pg: &PgCluster) -> CliEnv {
    let config = format!("store:\n  url: {}\n  lease: 10m\n  grace: 10m\n", pg.url());
    CliEnv::new(&[("runbook.yaml", &config), ("t.runbook", RUNBOOK)], None)
}

/// `resume --store` (in `m`, runs directory `runs`), killed if it has
/// not finished well within the 10-minute grace.
fn resume_here(m: &CliEnv, pg: &PgCluster, id: &str) -> Output {
    output_within(
        m.cmd(&["resume", id, "--store", &pg.url(), "--runs-dir", "runs"]),
        Duration::from_secs(120),
    )
}

#[test]
fn resume_store_on_the_runs_own_machine_takes_a_killed_run_over_without_the_grace() {
    let pg = PgCluster::migrated();
    let m = slow_grace_machine(&pg);
    let (mut child, id) = cut_off_run(&m);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        runs_store(&m, &pg).contains("interrupted"),
        "within the grace, on its own machine, the run is seen dead"
    );

    let out = resume_here(&m, &pg, &id);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("its process is gone"), "{}", text(&out));
    let journal = exported(&m, &pg, &id);
    each_step_once(&m, &journal);
    let t = taken_over_by_resume(&journal);
    assert_eq!(t["owner_gone"].as_bool(), Some(true), "{t}");
    assert_eq!(t["from_pid"].as_i64(), Some(i64::from(child.id())));
    // The lock (10-minute lease, held by the killed process) moved with
    // the run, and says so.
    assert!(
        journal.contains("the owner this run was taken over from"),
        "{journal}"
    );
    // Resumed in the run's own directory: the dead owner's file journal is
    // kept beside, the rows are the record.
    let file = std::fs::read_to_string(m.journal_path(&id)).expect("the resumed run's journal");
    assert_eq!(file, journal);
    let before = std::fs::read_to_string(
        m.dir
            .join("runs")
            .join(&id)
            .join("journal.jsonl.before-epoch-2"),
    )
    .expect("the dead owner's journal, kept");
    assert!(
        before.contains("\"node\":\"b\",\"kind\":\"action_started\""),
        "{before}"
    );
}

/// A worker restarted on the machine where a worker died (the common case:
/// systemd restarts it) takes the dead worker's run over at once, without
/// waiting for a 10-minute grace: its process is gone, and this machine
/// can tell. The same in-doubt rules: no step that ended runs again.
#[test]
fn a_worker_on_the_dead_workers_machine_takes_its_run_over_without_the_grace() {
    let pg = PgCluster::migrated();
    let m = slow_grace_machine(&pg);
    let (first, id) = queued_run_cut_off(&m, &pg);

    // Done within wait_done's minute: well inside the 10-minute grace.
    let second = worker(&m, "runs-b");
    wait_done(&pg, 1);
    stop(second);
    let (_, t) = succeeded_once_taken_over(&m, &pg, &id);
    assert_eq!(t["owner_gone"].as_bool(), Some(true), "{t}");
    assert_eq!(t["from_pid"].as_i64(), Some(i64::from(first.id())));
    assert!(
        t["by"].as_str().is_some_and(|b| b.starts_with("worker ")),
        "{t}"
    );
}

#[test]
fn resume_store_of_a_dead_workers_run_takes_its_queue_request_too() {
    let pg = PgCluster::migrated();
    let m = machine(&pg, true);
    let (_first, id) = queued_run_cut_off(&m, &pg);

    // The worker's process is gone: resumed at once, on this machine.
    let out = resume_here(&m, &pg, &id);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        pg.psql("SELECT state, outcome, exit_code FROM runbook_queue WHERE id = 1"),
        "done|succeeded|0",
        "the request reflects the resumed run's end"
    );
    assert!(
        pg.psql("SELECT claimed_by FROM runbook_queue WHERE id = 1")
            .starts_with("resume "),
        "{}",
        pg.psql("SELECT * FROM runbook_queue")
    );
    let journal = exported(&m, &pg, &id);
    each_step_once(&m, &journal);

    // Past the lease and the grace, another worker looks for dead runs
    // and requests (before each claim) while it runs a second request.
    std::thread::sleep(Duration::from_millis(3200));
    let second = worker(&m, "runs-c");
    let elsewhere = m.dir.join("second");
    std::fs::create_dir(&elsewhere).expect("a directory for the second request");
    let d2 = format!("dir={}", elsewhere.display());
    let out = m.out(&["enqueue", "t.runbook", "--input", &d2]);
    assert!(out.status.success(), "{}", text(&out));
    wait_done(&pg, 2);
    stop(second);
    assert_eq!(
        pg.psql("SELECT state, outcome, exit_code FROM runbook_queue WHERE id = 1"),
        "done|succeeded|0",
        "not orphaned by the reaper: {}",
        pg.psql("SELECT * FROM runbook_queue")
    );
    assert_eq!(exported(&m, &pg, &id), journal, "nothing written since");
    each_step_once(&m, &journal);
    taken_over_by_resume(&journal);
    assert!(
        !m.dir.join("runs-c").join(&id).exists(),
        "the second worker did not take the run over"
    );
}
