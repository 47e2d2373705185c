//! The executor's own overhead per node: a dry run of a 10,000-node
//! runbook, compiled once outside the measurement, executed in-process the
//! way `runbook run --dry-run` assembles a run (`src/cli/run.rs`): dry-run
//! adapters, the paused (virtual) clock on a current-thread runtime, and the
//! decision log written to `journal.jsonl` in a temporary runs directory.
//!
//! cargo bench --bench engine
//!
//! Variants, so that the journal's share can be told from the scheduler's:
//!
//! * `trivial/journal`: 10,000 steps `run "true" readonly` (4 events each),
//!   journal written: the figure the 5 µs/node target is about.
//! * `trivial/journal+console`: plus the console reporter (to a sink), as the
//!   CLI does without `--output json`.
//! * `trivial/no_sinks`: no sink at all: the scheduler, adapters and event
//!   construction only.
//! * `generated/journal`: the compile benchmark's realistic 10,000 steps
//!   (templates, `when`, retries, verify windows, fan-outs, notifications,
//!   captures; `benches/support/generate.rs`), journal written.
//!
//! Two clocks: `engine_dry_run_10000_nodes` is wall time;
//! `engine_dry_run_10000_nodes_cpu` is the CPU time of the thread that runs
//! the (single-threaded) run, which a loaded machine inflates much less.
//!
//! Only the run is timed (`iter_custom`): creating the journal's directory
//! and file is inside the timing, deleting it afterwards is not. The
//! runbooks are also written to `target/engine-bench/` for whole-process
//! measurements (`bench/compare.sh`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use indexmap::IndexMap;
use runbook::adapters::{dry_run::Assumptions, Adapters};
use runbook::events::{Emitter, Mode, Sink};
use runbook::exec::{self, inputs, redact::Redactor, RunOptions};
use runbook::plan::Graph;
use runbook::report::{console::Console, journal};
use runbook::source::Source;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/generate.rs"]
mod generate;

const NODES: usize = 10_000;

/// `n` independent-looking steps in sequence, each `run "true" readonly`
/// (readonly: no "write without undo" warning; the executor does the same
/// work for either effect in a dry run).
fn trivial(n: usize) -> String {
    let mut s = String::with_capacity(n * 40 + 64);
    s.push_str("runbook trivial {\n");
    for i in 0..n {
        s.push_str(&format!(
            "  step s{i} {{\n    run \"true\" readonly\n  }}\n"
        ));
    }
    s.push_str("}\n");
    s
}

fn compile(name: &str, text: String) -> Arc<Graph> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/engine-bench");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(format!("{name}.runbook")), &text);
    }
    let source = Source::new(format!("{name}.runbook"), text);
    match runbook::compile::compile(&source) {
        Ok(c) => {
            assert_eq!(c.graph.nodes.len(), NODES, "{name}: node count");
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

/// One dry run, assembled as `runbook run --dry-run` does; returns the
/// run's directory (to delete outside the timing).
async fn dry_run(graph: &Arc<Graph>, runs_dir: &Path, sinks: Sinks) -> PathBuf {
    let run_id = exec::new_run_id();
    let input_values = inputs::resolve(&graph.inputs, &[], None).expect("inputs have defaults");
    let secrets = inputs::load_secrets(&graph.secrets, false).expect("secrets optional");
    let redactor = Redactor::new(secrets.values().flatten().map(String::as_str));
    let mut out: Vec<(Box<dyn Sink>, bool)> = Vec::new();
    if sinks != Sinks::None {
        let j = journal::Journal::create(runs_dir, &run_id, journal::Durability::Buffered)
            .expect("journal");
        out.push((Box::new(j), true));
    }
    if sinks == Sinks::JournalConsole {
        out.push((
            Box::new(Console::new(Box::new(std::io::sink()), false)),
            false,
        ));
    }
    let mut adapters = Adapters::dry_run(IndexMap::new());
    adapters.oracle = Some(Arc::new(Assumptions::new(IndexMap::new())));
    let mut opts = RunOptions::new(run_id.clone(), Mode::DryRun);
    opts.inputs = input_values;
    opts.secrets = secrets;
    let clock = exec::clock::Clock::start();
    let emitter = Arc::new(Emitter::new(run_id.clone(), clock, redactor, out));
    let summary = exec::run(graph.clone(), opts, adapters, emitter).await;
    assert_eq!(summary.exit_code, 0, "the dry run succeeds");
    runs_dir.join(run_id)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// CPU time of the calling thread (user + system). A dry run on a
/// current-thread runtime does all its work, journal writes included, on
/// this thread, so this is the engine's cost without the time the thread
/// spent waiting for a core on a loaded machine.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[derive(Clone, Copy)]
enum Clock {
    Wall,
    ThreadCpu,
}

fn bench_engine(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let runs_dir = tmp.path().join("runs");
    let graphs = [
        ("trivial", compile("trivial-10000", trivial(NODES))),
        (
            "generated",
            compile("generated-10000", generate::runbook(NODES)),
        ),
    ];
    let _ = std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/engine-bench/small.runbook"),
        trivial(1).replace("runbook trivial", "runbook small"),
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
                        let (w0, c0) = (Instant::now(), thread_cpu());
                        // A fresh runtime per run, as the CLI has.
                        let rt = runtime();
                        let dir = rt.block_on(dry_run(graph, &runs_dir, sinks));
                        drop(rt);
                        total += match clock {
                            Clock::Wall => w0.elapsed(),
                            Clock::ThreadCpu => thread_cpu().saturating_sub(c0),
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

criterion_group!(benches, bench_engine);
criterion_main!(benches);
