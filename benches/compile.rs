//! Compile time and throughput of generated runbooks: 1,000 steps (the
//! target: under 50 ms), 10,000 steps, and a 300-line file; each in wall
//! time and in the thread's CPU time (`*_cpu`). Also the parse alone, and
//! the rendering of 10,000 warnings. Run with `cargo bench --bench compile`.
//!
//! The generated sources are also written under `compile-bench/` in the
//! target directory (`$CARGO_TARGET_DIR`, else `target/`): `steps-1000`,
//! `steps-10000` and `lines-300.runbook`, so that the real binary can be
//! timed and its peak memory measured on them:
//! `/usr/bin/time -v target/release/runbook check target/compile-bench/steps-10000.runbook`,
//! `hyperfine -N 'target/release/runbook check target/compile-bench/lines-300.runbook'`.

// A benchmark may unwrap: a panic is its failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// The allocator `runbook` itself uses (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use runbook::compile;
use runbook::source::Source;
use std::time::Duration;

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/generate.rs"]
mod generate;

fn write_sample(name: &str, text: &str) {
    let dir = generate::output_dir("compile-bench");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(format!("{name}.runbook")), text);
    }
}

/// Compiles `source` once outside the measurement: the benchmark means
/// nothing unless the runbook is valid and clean.
fn assert_compiles(source: &Source, steps: Option<usize>) {
    match compile::compile(source) {
        Ok(c) => {
            if let Some(steps) = steps {
                assert_eq!(c.graph.nodes.len(), steps);
            }
            assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        }
        Err(report) => panic!(
            "generated runbook does not compile:\n{}",
            report.render(false)
        ),
    }
}

fn bench_compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(2));
    let mut inputs = Vec::new();
    for steps in [1_000usize, 10_000] {
        let text = generate::runbook(steps);
        write_sample(&format!("steps-{steps}"), &text);
        let source = Source::new(format!("steps-{steps}.runbook"), text);
        assert_compiles(&source, Some(steps));
        inputs.push(("steps", steps, source));
    }
    // A file of the size people write by hand (300 lines): the in-process
    // share of `runbook check` on it.
    let text = generate::runbook_of_lines(300);
    write_sample("lines-300", &text);
    let source = Source::new("lines-300.runbook", text);
    assert_compiles(&source, None);
    inputs.push(("lines", 300, source));

    for (kind, size, source) in &inputs {
        group.throughput(Throughput::Bytes(source.text.len() as u64));
        // The graph is dropped inside the measurement, as it always was:
        // keeping outputs alive to drop them outside (criterion's
        // `iter_with_large_drop`) measured slower, since every iteration
        // then touches fresh memory.
        group.bench_with_input(BenchmarkId::new(*kind, size), source, |b, source| {
            b.iter(|| compile::compile(black_box(source)).map(|c| c.graph.nodes.len()))
        });
        // The same, timing the thread's CPU time instead of the wall
        // clock: a machine shared with other work inflates it less.
        let cpu_id = BenchmarkId::new(format!("{kind}_cpu"), size);
        group.bench_with_input(cpu_id, source, |b, source| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = cpu::thread_cpu();
                    let nodes = compile::compile(black_box(source)).map(|c| c.graph.nodes.len());
                    total += cpu::thread_cpu().saturating_sub(start);
                    black_box(nodes.is_ok());
                }
                total
            })
        });
    }
    group.finish();

    // The share of the parse (pest) and the tree builder in the total.
    let text = generate::runbook(10_000);
    let mut group = c.benchmark_group("syntax");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("parse/10000", |b| {
        b.iter(|| runbook::syntax::parse(black_box(&text)).map(|(rb, _)| rb.body.len()))
    });
    group.finish();

    // Rendering many diagnostics: 10,000 steps that change something
    // without an `undo`, one warning each, as `runbook check` prints them
    // (miette, no colour) and as `check --format json` does. Both were
    // quadratic in the file's size before src/indexed_source.rs.
    let text: String = std::iter::once("runbook warned {\n".to_owned())
        .chain((0..10_000).map(|i| format!("  step s{i} {{\n    run \"true\"\n  }}\n")))
        .chain(std::iter::once("}\n".to_owned()))
        .collect();
    let source = Source::new("warned.runbook", text);
    let report = match compile::compile(&source) {
        Ok(c) => runbook::diagnostics::Report::new(source, c.warnings),
        Err(r) => panic!("the warned runbook does not compile:\n{}", r.render(false)),
    };
    assert_eq!(report.warnings(), 10_000, "one warning per step");
    let mut group = c.benchmark_group("diagnostics");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("render/10000_warnings", |b| {
        b.iter(|| black_box(&report).render(false).len())
    });
    group.bench_function("to_json/10000_warnings", |b| {
        b.iter(|| black_box(&report).to_json().len())
    });
    group.finish();
}

criterion_group!(benches, bench_compile);
criterion_main!(benches);
