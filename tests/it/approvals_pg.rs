//! Approvals through a PostgreSQL store ([`PgCluster`], real server): a
//! run waiting on `approve` on one "machine" is answered by `runbook
//! approve --store` from another process with another runs directory; the
//! decision is a row (approver, reason, via) and goes to the journal. A
//! run of `runbook worker` waits and wakes the same way.

use crate::support::{wait_exit, CliEnv, PgCluster};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUNBOOK: &str = r#"
runbook gated {
  input dir: string
  step ask {
    approve "Drain eu-west?" timeout 60s
  }
  step after {
    run "echo x >> {{dir}}/after.marker"
  }
}
"#;

fn machine(url: &str) -> CliEnv {
    machine_with(url, "", RUNBOOK)
}

/// A machine whose `store:` has `extra` settings too, with `runbook`.
fn machine_with(url: &str, extra: &str, runbook: &str) -> CliEnv {
    let config = format!("store:\n  url: {url}\n{extra}");
    CliEnv::new(&[("g.runbook", runbook), ("runbook.yaml", &config)], None)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits (at most `limit`) for the waiting run to end successfully, its
/// step after the approval run once.
fn ends_ok_after_one_step(run: &mut std::process::Child, here: &CliEnv, limit: Duration) {
    let status = wait_exit(run, limit);
    let mut out = String::new();
    if let Some(mut e) = run.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut out);
    }
    assert!(status.success(), "{out}");
    assert_eq!(here.count("after.marker"), 1, "the step after ran once");
}

/// A migrated cluster.
fn cluster() -> PgCluster {
    let pg = PgCluster::start();
    let out = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["store", "migrate", "--store", &pg.url()])
        .current_dir(std::env::temp_dir())
        .output()
        .expect("runbook store migrate runs");
    assert!(out.status.success(), "{}", text(&out));
    pg
}

/// The run id and key of the first pending approval row, once there is one.
fn wait_pending_row(pg: &PgCluster) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = pg.psql(
            "SELECT run_id || ' ' || key FROM runbook_approvals WHERE approved IS NULL LIMIT 1",
        );
        if let Some((run, key)) = row.split_once(' ') {
            return (run.to_owned(), key.to_owned());
        }
        assert!(
            Instant::now() < deadline,
            "no approval was asked: {}",
            pg.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn approval_given_from_another_process_and_runs_directory_while_the_run_waits() {
    let pg = cluster();
    let here = machine(&pg.url());
    let mut run = here
        .run_here("g.runbook", &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runbook starts");
    let (run_id, key) = wait_pending_row(&pg);
    assert_eq!(key, "ask");

    // Another machine: its own directory, no runs of its own, no config.
    let there = CliEnv::new(&[], None);
    let url = pg.url();
    let listed = there.out(&["approve", &run_id, "--store", &url]);
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(text(&listed).contains("ask  asked"), "{}", text(&listed));

    let approved = there.out(&[
        "approve",
        &run_id,
        "ask",
        "--store",
        &url,
        "--as",
        "bob",
        "--reason",
        "looks safe",
    ]);
    assert!(approved.status.success(), "{}", text(&approved));
    assert!(
        text(&approved).contains("approved by bob"),
        "{}",
        text(&approved)
    );

    ends_ok_after_one_step(&mut run, &here, Duration::from_secs(30));

    let journal = here.journal(&run_id);
    let given = journal
        .lines()
        .find(|l| l.contains("\"approval_given\""))
        .unwrap_or_else(|| panic!("no approval_given in {journal}"));
    assert!(given.contains("\"by\":\"bob\""), "{given}");
    assert!(given.contains("\"reason\":\"looks safe\""), "{given}");
    assert_eq!(
        pg.psql("SELECT decided_by || '|' || reason || '|' || via FROM runbook_approvals"),
        "bob|looks safe|command"
    );

    // A second answer is refused, saying who decided.
    let again = there.out(&["deny", &run_id, "ask", "--store", &url, "--as", "eve"]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already closed: approved by bob"),
        "{}",
        text(&again)
    );
}

/// A machine whose store polls every 10 minutes, its approval timing out
/// after 10 minutes too (a run that timed out would still find the
/// decision when it closes its question): only `NOTIFY` wakes it in time.
fn slow_machine(pg: &PgCluster) -> CliEnv {
    let runbook = RUNBOOK.replace("timeout 60s", "timeout 10m");
    machine_with(&pg.url(), "  poll: 10m\n", &runbook)
}

/// Once a question is pending, bob approves it (reason `go`) from another
/// process with no config; the run id.
fn approve_as_bob(pg: &PgCluster) -> String {
    let (run_id, key) = wait_pending_row(pg);
    let there = CliEnv::new(&[], None);
    let approved = there.out(&[
        "approve",
        &run_id,
        &key,
        "--store",
        &pg.url(),
        "--as",
        "bob",
        "--reason",
        "go",
    ]);
    assert!(approved.status.success(), "{}", text(&approved));
    run_id
}

/// With `poll: 10m` the waiting run reads its row once when it asks and
/// then only when `NOTIFY runbook_approvals` wakes it: it goes on well
/// within the test's limit only because the notification of `runbook
/// approve --store` from another process woke it.
#[test]
fn a_run_waiting_with_a_ten_minute_poll_is_woken_by_notify() {
    let pg = cluster();
    let here = slow_machine(&pg);
    let mut run = here
        .run_here("g.runbook", &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runbook starts");
    let run_id = approve_as_bob(&pg);
    // The step's timeout and the poll are 10 minutes away: only the
    // notification ends the wait in time.
    ends_ok_after_one_step(&mut run, &here, Duration::from_secs(120));
    let journal = here.journal(&run_id);
    assert!(
        journal
            .lines()
            .any(|l| l.contains("\"approval_given\"") && l.contains("\"by\":\"bob\"")),
        "{journal}"
    );
}

#[test]
fn approve_with_the_store_names_a_run_nobody_asked_about() {
    let pg = cluster();
    let there = CliEnv::new(&[], None);
    let out = there.out(&["approve", "r-nope", "ask", "--store", &pg.url()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no approval is pending for `ask`"),
        "{}",
        text(&out)
    );
}

/// `n` requests of `g.runbook` queued on `here`, then a worker with
/// `--concurrency` (runs directory `runs`) started.
fn queue_and_work(here: &CliEnv, n: usize, concurrency: &str) -> std::process::Child {
    let d = format!("dir={}", here.dir.display());
    for _ in 0..n {
        let queued = here.out(&["enqueue", "g.runbook", "--input", &d]);
        assert!(queued.status.success(), "{}", text(&queued));
    }
    here.cmd(&["worker", "--concurrency", concurrency, "--runs-dir", "runs"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the worker starts")
}

/// Waits (up to 120 s) until `n` requests are `done`, then SIGTERMs the
/// worker, which exits 0.
fn all_done_then_stop(pg: &PgCluster, n: usize, mut worker: std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while pg.psql("SELECT count(*) FROM runbook_queue WHERE state = 'done'") != n.to_string() {
        assert!(
            Instant::now() < deadline,
            "not all done: {}",
            pg.psql("SELECT * FROM runbook_queue")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = i32::try_from(worker.id()).expect("pid");
    // SAFETY: kill sends SIGTERM to the worker this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(
        wait_exit(&mut worker, Duration::from_secs(20)).code(),
        Some(0)
    );
}

/// A run a worker took from the queue, waiting on `approve` with `poll:
/// 10m` (the worker's and the approval's): `runbook approve --store` from
/// another process wakes it by `NOTIFY` and the request ends `done`.
#[test]
fn a_workers_run_waiting_on_an_approval_is_woken_by_notify() {
    let pg = cluster();
    let here = slow_machine(&pg);
    let worker = queue_and_work(&here, 1, "1");
    let run_id = approve_as_bob(&pg);
    all_done_then_stop(&pg, 1, worker);
    assert_eq!(
        pg.psql("SELECT outcome, exit_code FROM runbook_queue"),
        "succeeded|0"
    );
    assert_eq!(here.count("after.marker"), 1, "the step after ran once");
    let journal = here.journal(&run_id);
    assert!(
        journal.lines().any(|l| l.contains("\"approval_given\"")
            && l.contains("\"by\":\"bob\"")
            && l.contains("\"reason\":\"go\"")),
        "{journal}"
    );
}

/// `--concurrency 1`: while its run waits on an approval the worker
/// claims nothing more (both requests were queued before it started, so a
/// worker that ignored the limit would have claimed both at once); the
/// second request runs once the first has ended.
#[test]
fn a_worker_with_concurrency_one_runs_one_request_at_a_time() {
    let pg = cluster();
    let here = machine(&pg.url());
    let worker = queue_and_work(&here, 2, "1");
    wait_pending_row(&pg);
    assert_eq!(
        pg.psql("SELECT state FROM runbook_queue ORDER BY id"),
        "running\nqueued"
    );
    let first = approve_as_bob(&pg);
    let second = approve_as_bob(&pg);
    assert_ne!(first, second);
    all_done_then_stop(&pg, 2, worker);
    assert_eq!(here.count("after.marker"), 2, "each request's step once");
}
