//! Drill speed: a drill is a unit test for a runbook and must run in
//! milliseconds whatever the virtual time it covers.
//!
//! cargo bench --bench drill

// A benchmark may unwrap: a panic is its failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// The allocator `runbook` itself uses (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn drills() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("runbooks"))
        .expect("runbooks/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".drill.yaml"))
        .collect();
    v.sort();
    v
}

fn run(path: &Path) {
    let r = runbook::drill::runner::run_file(path, vec![]).expect("the drill runs");
    assert!(r.passed(), "{} failed", path.display());
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("drill");
    // The revert never verifies: the whole 10-minute verify window (20 polls
    // every 30s) expires, then the rollback and its own verify run.
    let window = root().join("runbooks/api_config_rollback.undo_fails.drill.yaml");
    g.bench_function("flagship_10m_verify_window_expires", |b| {
        b.iter(|| run(&window))
    });
    let happy = root().join("runbooks/api_config_rollback.happy.drill.yaml");
    g.bench_function("flagship_happy_path", |b| b.iter(|| run(&happy)));
    let all = drills();
    g.sample_size(20);
    g.bench_function(
        format!("all_{}_example_drills_sequential", all.len()),
        |b| b.iter(|| all.iter().for_each(|p| run(p))),
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
