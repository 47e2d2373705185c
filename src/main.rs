//! The `runbook` command. Everything lives in the library; this maps the
//! outcome to an exit code.

// A compile or a run makes many small, short-lived allocations (tree nodes,
// names, event fields); glibc's malloc and free took a third of the time
// (docs/performance.md). mimalloc's v2 line: v3 peaked 20 MB higher on a
// 10,000-step `check`. The benchmarks install the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(runbook::cli::main());
}
