//! The PostgreSQL store against the file store, whole process (the release
//! binary), on a real PostgreSQL started on 127.0.0.1 in a temporary
//! directory (`tests/it/support/postgres.rs`, here with `fsync=on`, as in
//! production: the file store fdatasyncs its journal too):
//!
//! cargo bench --bench store
//!
//! 1. **Per-step overhead**: `runbook run` of a runbook of 1,000 steps
//!    `run "true"` (each a change: its start is journaled write-ahead) and
//!    of the same runbook with 1 step, with the file store (`--runs-dir`)
//!    and with `--store postgres://...`, alternating, several rounds. The
//!    cost of a step is the slope (t_1000 - t_1) / 999, so that start-up
//!    (and, for PostgreSQL, connecting) is not in it; the medians of the
//!    rounds are reported, with the difference per step.
//! 2. **Worker throughput**: 200 run requests (`runbook enqueue` of a
//!    one-step runbook, `run "true"`) queued before 4 `runbook worker`s
//!    start (`--concurrency 1` each, their own runs directories; each
//!    request its own lock key); timed
//!    from starting the workers until the queue table shows all 200
//!    `done`; runs per second. Then every request must have succeeded
//!    (`exit_code` 0) and been claimed once.
//!
//! Figures are printed; docs/performance.md ("Store") has them.
//! Without `--bench` (`cargo test --all-targets`), a small smoke run of
//! both parts.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[allow(dead_code)] // the tests use more of it than this benchmark
#[path = "../tests/it/support/postgres.rs"]
mod postgres;

use postgres::{wait_exit, PgCluster};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
}

/// `n` steps in sequence, each `run "true"` (a change, no undo: the
/// "write without undo" warning goes to stderr, which is discarded).
fn true_steps(name: &str, n: usize) -> String {
    let mut s = format!("runbook {name} {{\n");
    for i in 0..n {
        s.push_str(&format!("  step s{i} {{\n    run \"true\"\n  }}\n"));
    }
    s.push_str("}\n");
    s
}

/// Runs `cmd` to completion; fails with its stderr unless it exits 0.
fn ok(cmd: &mut Command, what: &str) {
    let out = cmd.stdout(Stdio::null()).output().expect(what);
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One whole `runbook run`; its wall time.
fn timed_run(dir: &Path, file: &str, store: Option<&str>) -> Duration {
    let mut cmd = bin();
    cmd.current_dir(dir)
        .args(["run", file, "--runs-dir", "runs"])
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    if let Some(url) = store {
        cmd.args(["--store", url]);
    }
    let t0 = Instant::now();
    ok(&mut cmd, "runbook run");
    t0.elapsed()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn per_step(pg: &PgCluster, steps: usize, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("many.runbook"), true_steps("many", steps)).unwrap();
    std::fs::write(p.join("one.runbook"), true_steps("one", 1)).unwrap();
    let url = pg.url();
    let stores = [("file", None), ("postgres", Some(url.as_str()))];
    // [store][one, many] -> a time per round, in ms.
    let mut t = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    // One warm-up run of each (page cache, the server's first queries).
    for (_, store) in stores {
        timed_run(p, "one.runbook", store);
    }
    for _ in 0..rounds {
        for (i, (_, store)) in stores.iter().enumerate() {
            t[i][0].push(ms(timed_run(p, "one.runbook", *store)));
            t[i][1].push(ms(timed_run(p, "many.runbook", *store)));
        }
    }
    println!(
        "per-step overhead: {steps} steps `run \"true\"`, whole `runbook run`, medians of {rounds} alternating rounds"
    );
    println!("| store | 1 step | {steps} steps | per step |");
    println!("|---|---:|---:|---:|");
    let mut slopes = [0.0; 2];
    for (i, (name, _)) in stores.iter().enumerate() {
        let one = median(&mut t[i][0]);
        let many = median(&mut t[i][1]);
        slopes[i] = (many - one) / (steps - 1) as f64;
        println!(
            "| {name} | {one:.1} ms | {many:.0} ms | {:.3} ms |",
            slopes[i]
        );
    }
    println!(
        "postgres - file: {:+.3} ms a step ({:.2}x)",
        slopes[1] - slopes[0],
        slopes[1] / slopes[0]
    );
}

/// A small run: one step `run "true"`. Its own lock key per request (a
/// runbook's lock is its name by default, and a run refuses to start while
/// another holds it: the requests would fail, not queue up).
const SMALL: &str = r#"runbook small {
  input n: string
  lock "small/{{n}}"
  step s0 {
    run "true"
  }
}
"#;

fn sigterm(child: &Child) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill sends a signal to a worker this benchmark started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

fn throughput(pg: &PgCluster, runs: usize, workers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("small.runbook"), SMALL).unwrap();
    let url = pg.url();
    pg.psql("TRUNCATE runbook_queue");
    for n in 0..runs {
        ok(
            bin().current_dir(p).args([
                "enqueue",
                "small.runbook",
                "--input",
                &format!("n={n}"),
                "--store",
                &url,
            ]),
            "runbook enqueue",
        );
    }
    let t0 = Instant::now();
    let mut children: Vec<Child> = (0..workers)
        .map(|w| {
            bin()
                .current_dir(p)
                .args(["worker", "--store", &url, "--concurrency", "1"])
                .arg("--runs-dir")
                .arg(p.join(format!("runs-{w}")))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(p.join(format!("worker-{w}.log"))).unwrap())
                .spawn()
                .expect("runbook worker starts")
        })
        .collect();
    let want = runs.to_string();
    let deadline = t0 + Duration::from_secs(600);
    while pg.psql("SELECT count(*) FROM runbook_queue WHERE state = 'done'") != want {
        assert!(Instant::now() < deadline, "the workers did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
    let elapsed = t0.elapsed();
    for c in &children {
        sigterm(c);
    }
    for c in &mut children {
        assert_eq!(wait_exit(c, Duration::from_secs(30)).code(), Some(0));
    }
    assert_eq!(
        pg.psql("SELECT count(*) FROM runbook_queue WHERE exit_code = 0 AND attempts = 1"),
        want,
        "every request succeeded, claimed once: {}\n{}",
        pg.psql("SELECT id, attempts, outcome, exit_code FROM runbook_queue ORDER BY id"),
        (0..workers)
            .map(|w| std::fs::read_to_string(p.join(format!("worker-{w}.log"))).unwrap_or_default())
            .collect::<String>()
    );
    let by_worker = pg.psql(
        "SELECT string_agg(n::text, ' ' ORDER BY n DESC) FROM \
         (SELECT count(*) AS n FROM runbook_queue GROUP BY claimed_by) c",
    );
    println!(
        "throughput: {workers} workers (--concurrency 1), {runs} queued one-step runs: \
         all done in {:.2} s, {:.1} runs/s (requests per worker: {by_worker})",
        elapsed.as_secs_f64(),
        runs as f64 / elapsed.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // without it: a small smoke run of both parts.
    let full = std::env::args().any(|a| a == "--bench");
    let pg = PgCluster::start_durable();
    ok(
        bin()
            .current_dir(std::env::temp_dir())
            .args(["store", "migrate", "--store", &pg.url()]),
        "runbook store migrate",
    );
    if full {
        per_step(&pg, 1_000, 5);
        throughput(&pg, 200, 4);
    } else {
        per_step(&pg, 10, 1);
        throughput(&pg, 8, 2);
    }
}
