//! The executor's own cost, in-process, assembled the way `runbook run`
//! assembles a run (`src/cli/run.rs`): the graph compiled once outside the
//! measurement, then `runbook::exec::run` with the mode's adapters, the
//! mode's runtime (`session::runtime`) and the hash-chained journal
//! (`durable::journal::JournalWriter`) written to a temporary runs
//! directory.
//!
//! cargo bench --bench engine
//!
//! **Dry runs of 10,000 nodes** (`engine_dry_run_10000_nodes`, wall clock;
//! `engine_dry_run_10000_nodes_cpu`, CPU time of the one thread that runs a
//! dry run, which a loaded machine inflates much less):
//!
//! * `trivial/journal`: 10,000 steps `run "true" readonly` (4 events each),
//!   the journal written (buffered, as in a dry run): the figure the
//!   "5 µs per node" target is about.
//! * `trivial/journal+console`: plus the console reporter (to a sink), as the
//!   CLI does without `--output json`.
//! * `trivial/no_sinks`: no sink at all: scheduler, adapters, events.
//! * `generated/journal`: the compile benchmark's realistic 10,000 steps
//!   (templates, `when`, retries, verify windows, fan-outs, notifications,
//!   captures; `benches/support/generate.rs`), journal written.
//!
//! **Real runs of 1,000 `run "true"` steps** (`engine_real_run_1000_true`,
//! wall clock), against the same loop in-process:
//!
//! * `sh_loop`: 1,000 times `/bin/sh -c true` with stdout and stderr piped
//!   and read, as the shell adapter runs a command, from a plain loop.
//! * `runbook/journal_write_ahead`: the real adapters on the CLI's
//!   current-thread runtime (`session::runtime`) with the journal fsynced
//!   at every write-ahead event, as `runbook run` does (none per step here:
//!   a `readonly` step's outcome rides on the next fsync; the whole-process
//!   comparison in `bench/compare.sh` also runs the steps as writes).
//! * `runbook/journal_buffered`: the same with the journal buffered (no
//!   fsync): the engine without the durability cost.
//! * `runbook_multi_thread/journal_write_ahead`: the first on a
//!   multi-thread runtime (what the CLI used before).
//!
//! Only the run is timed (`iter_custom`): creating the journal is inside the
//! timing, deleting it afterwards is not. The runbooks are also written to
//! `engine-bench/` under the target directory (`$CARGO_TARGET_DIR`, else
//! `target/`) for whole-process measurements.

// A benchmark may unwrap: a panic is its failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// The allocator `runbook` itself uses (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use indexmap::IndexMap;
use runbook::adapters::{dry_run::Assumptions, real, Adapters};
use runbook::durable::journal::{Durability, JournalWriter};
use runbook::events::{Emitter, Mode, Redactor, Sink};
use runbook::exec::{self, inputs, RunOptions};
use runbook::plan::Graph;
use runbook::report::console::Console;
use runbook::source::Source;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/generate.rs"]
mod generate;

const NODES: usize = 10_000;
const TRUE_STEPS: usize = 1_000;

/// `n` steps in sequence, each `run "true" readonly` (readonly: no "write
/// without undo" warning; a dry run does the same work for any effect, and
/// a real run fsyncs no step of it, where a `write` fsyncs its
/// `action_started`, the previous outcome with it).
fn trivial(name: &str, n: usize) -> String {
    let mut s = String::with_capacity(n * 40 + 64);
    s.push_str(&format!("runbook {name} {{\n"));
    for i in 0..n {
        s.push_str(&format!(
            "  step s{i} {{\n    run \"true\" readonly\n  }}\n"
        ));
    }
    s.push_str("}\n");
    s
}

fn compile(name: &str, text: String, nodes: usize) -> Arc<Graph> {
    let dir = generate::output_dir("engine-bench");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(format!("{name}.runbook")), &text);
    }
    let source = Source::new(format!("{name}.runbook"), text);
    match runbook::compile::compile(&source) {
        Ok(c) => {
            assert_eq!(c.graph.nodes.len(), nodes, "{name}: node count");
            Arc::new(c.graph)
        }
        Err(report) => panic!("{name} does not compile:\n{}", report.render(false)),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sinks {
    Journal,
    JournalConsole,
    None,
}

impl Sinks {
    fn name(self) -> &'static str {
        match self {
            Sinks::Journal => "journal",
            Sinks::JournalConsole => "journal+console",
            Sinks::None => "no_sinks",
        }
    }
}

/// One run, assembled as `runbook run` does; returns the run's directory
/// (to delete outside the timing).
async fn one_run(
    graph: &Arc<Graph>,
    runs_dir: &Path,
    mode: Mode,
    durability: Durability,
    sinks: Sinks,
) -> PathBuf {
    let run_id = exec::new_run_id();
    let run_dir = runs_dir.join(&run_id);
    let input_values = inputs::resolve(&graph.inputs, &[], None).expect("inputs have defaults");
    let secrets =
        inputs::load_secrets(&graph.secrets, mode == Mode::Live).expect("secrets available");
    let redactor = Redactor::new(secrets.values().flatten().map(String::as_str));
    let mut out: Vec<(Box<dyn Sink>, bool)> = Vec::new();
    if sinks != Sinks::None {
        let j = JournalWriter::create(&run_dir, durability).expect("journal");
        out.push((Box::new(j), true));
    }
    if sinks == Sinks::JournalConsole {
        out.push((
            Box::new(Console::new(Box::new(std::io::sink()), false)),
            false,
        ));
    }
    let mut opts = RunOptions::new(run_id.clone(), mode);
    let adapters = if mode == Mode::DryRun {
        let mut a = Adapters::dry_run(IndexMap::new());
        a.oracle = Some(Arc::new(Assumptions::new(IndexMap::new())));
        a
    } else {
        real::real(real::RealSettings {
            prometheus_url: None,
            shell_cwd: None,
            shell_env: IndexMap::new(),
            shell_timeout: opts.settings.default_timeout,
            http_timeout: Some(opts.settings.check_timeout),
            kill_grace: None,
            no_prompt: true,
        })
    };
    opts.inputs = input_values;
    opts.secrets = secrets;
    let clock = runbook::clock::Clock::start();
    let emitter = Arc::new(Emitter::new(run_id, clock, redactor, out));
    let summary = exec::run(graph.clone(), opts, adapters, emitter).await;
    assert_eq!(summary.exit_code, 0, "the run succeeds");
    run_dir
}

#[derive(Clone, Copy)]
enum Clock {
    Wall,
    ThreadCpu,
}

fn bench_dry_runs(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let runs_dir = tmp.path().join("runs");
    let graphs = [
        (
            "trivial",
            compile("trivial-10000", trivial("trivial", NODES), NODES),
        ),
        (
            "generated",
            compile("generated-10000", generate::runbook(NODES), NODES),
        ),
    ];
    let _ = std::fs::write(
        generate::output_dir("engine-bench").join("small.runbook"),
        trivial("small", 1),
    );

    let cases = [
        ("trivial", Sinks::Journal),
        ("trivial", Sinks::JournalConsole),
        ("trivial", Sinks::None),
        ("generated", Sinks::Journal),
    ];
    for (group_name, clock) in [
        ("engine_dry_run_10000_nodes", Clock::Wall),
        ("engine_dry_run_10000_nodes_cpu", Clock::ThreadCpu),
    ] {
        let mut group = c.benchmark_group(group_name);
        group
            .sample_size(20)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(10))
            .throughput(Throughput::Elements(NODES as u64));
        for (name, sinks) in cases {
            let graph = &graphs.iter().find(|g| g.0 == name).expect("graph").1;
            group.bench_function(BenchmarkId::new(name, sinks.name()), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (w0, c0) = (Instant::now(), cpu::thread_cpu());
                        // A fresh runtime per run, as the CLI has.
                        let rt = runbook::session::runtime(true).expect("runtime");
                        let dir = rt.block_on(one_run(
                            graph,
                            &runs_dir,
                            Mode::DryRun,
                            Durability::for_mode(Mode::DryRun),
                            sinks,
                        ));
                        drop(rt);
                        total += match clock {
                            Clock::Wall => w0.elapsed(),
                            Clock::ThreadCpu => cpu::thread_cpu().saturating_sub(c0),
                        };
                        let _ = std::fs::remove_dir_all(dir);
                    }
                    total
                })
            });
        }
        group.finish();
    }
}

/// What the shell adapter does for one command, from a plain loop.
fn sh_true() {
    let out = Command::new("/bin/sh")
        .args(["-c", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("/bin/sh runs");
    assert!(out.status.success());
}

fn bench_real_runs(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let runs_dir = tmp.path().join("runs");
    let graph = compile("true-1000", trivial("true_1000", TRUE_STEPS), TRUE_STEPS);
    let mut group = c.benchmark_group("engine_real_run_1000_true");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(TRUE_STEPS as u64));
    group.bench_function("sh_loop", |b| {
        b.iter(|| (0..TRUE_STEPS).for_each(|_| sh_true()))
    });
    let variants = [
        (
            "runbook",
            "journal_write_ahead",
            false,
            Durability::WriteAhead,
        ),
        ("runbook", "journal_buffered", false, Durability::Buffered),
        (
            "runbook_multi_thread",
            "journal_write_ahead",
            true,
            Durability::WriteAhead,
        ),
    ];
    for (name, journal, multi_thread, durability) in variants {
        group.bench_function(BenchmarkId::new(name, journal), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = Instant::now();
                    let rt = if multi_thread {
                        tokio::runtime::Builder::new_multi_thread()
                            .enable_all()
                            .build()
                            .expect("runtime")
                    } else {
                        runbook::session::runtime(false).expect("runtime")
                    };
                    let dir = rt.block_on(one_run(
                        &graph,
                        &runs_dir,
                        Mode::Live,
                        durability,
                        Sinks::Journal,
                    ));
                    drop(rt);
                    total += t0.elapsed();
                    let _ = std::fs::remove_dir_all(dir);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_dry_runs, bench_real_runs);
criterion_main!(benches);
