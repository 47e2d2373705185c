//! `runbook drill RUNBOOK --scenario FILE` and `runbook test [PATH...]`.

use crate::drill::coverage::{self, Coverage};
use crate::drill::junit;
use crate::drill::runner::{self, DrillError, DrillRun};
use crate::drill::scenario;
use crate::events::Sink;
use crate::report::console::Console;
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct DrillArgs {
    /// The runbook to rehearse (overrides the scenario's `runbook:`).
    pub runbook: PathBuf,
    /// The scenario file (`*.drill.yaml`).
    #[arg(long)]
    pub scenario: PathBuf,
    /// Do not print the decision log, only the expectations.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Files or directories searched for `*.drill.yaml` (default: .).
    pub paths: Vec<PathBuf>,
    /// `junit` writes JUnit XML to stdout (the human lines go to stderr).
    #[arg(long, value_enum, default_value_t = TestFormat::Human)]
    pub format: TestFormat,
    /// Report which steps, branches, retries, undos and handlers the drills
    /// exercised, per runbook.
    #[arg(long)]
    pub coverage: bool,
    /// Fail unless coverage of every runbook is at least this percentage.
    #[arg(long, value_name = "PERCENT")]
    pub min_coverage: Option<f64>,
    /// Drills running at once (default: the number of CPUs).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Also write an HTML report (each drill's graph, expectations and
    /// decision log; coverage) into this directory: DIR/index.html.
    #[arg(long, value_name = "DIR")]
    pub html: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum TestFormat {
    Human,
    Junit,
}

fn print_errors(e: &DrillError) {
    let color = std::io::stderr().is_terminal();
    for r in &e.reports {
        eprint!("{}", r.render(color));
    }
}

/// The scenario is checked twice over for some mistakes (its own name
/// check, then the executor's input resolution): keep one diagnostic per
/// mistake, the first, which is the scenario's own and says more. Two
/// diagnostics are the same mistake when they point at the same place, or
/// when the second points nowhere and names the same thing (`reason`).
fn dedupe(mut e: DrillError) -> DrillError {
    fn subject(message: &str) -> Option<&str> {
        message.split('`').nth(1)
    }
    for r in &mut e.reports {
        let mut places = Vec::new();
        let mut subjects = Vec::new();
        r.diags.retain(|d| {
            let dup = match d.primary_span().filter(|s| !s.is_empty()) {
                Some(s) => places.contains(&(s.start, s.end)),
                None => subject(&d.message).is_some_and(|n| subjects.contains(&n.to_string())),
            };
            if let Some(s) = d.primary_span() {
                places.push((s.start, s.end));
            }
            if let Some(n) = subject(&d.message) {
                subjects.push(n.to_string());
            }
            !dup
        });
    }
    e
}

/// `PASS`/`FAIL` lines for each expectation.
pub(super) fn verdict_lines(run: &DrillRun) -> String {
    let mut s = String::new();
    // One column for the names, wide enough for `retries.some_long_step`.
    let width = run
        .verdicts
        .iter()
        .map(|v| v.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(18);
    for v in &run.verdicts {
        let mark = if v.passed { "pass" } else { "FAIL" };
        s.push_str(&format!(
            "  {mark}  {:<width$} expected {}\n",
            v.name, v.expected
        ));
        if !v.passed || v.observed != v.expected {
            s.push_str(&format!("        {:<width$} observed {}\n", "", v.observed));
        }
    }
    if run.verdicts.is_empty() {
        s.push_str("  (the scenario has no expectations)\n");
    }
    s
}

pub(super) fn execute_drill(args: DrillArgs) -> i32 {
    let mut loaded = match scenario::load(&args.scenario) {
        Ok(l) => l,
        Err((text, diags)) => {
            print_errors(&DrillError {
                reports: vec![crate::diagnostics::Report::new(
                    crate::source::Source::new(args.scenario.display().to_string(), text),
                    diags,
                )],
            });
            return crate::exit::INVALID;
        }
    };
    // The runbook named on the command line wins; keep the path as given.
    let cwd = std::env::current_dir().unwrap_or_default();
    let base = loaded
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    loaded.scenario.runbook = relative_to(&cwd.join(&args.runbook), &cwd.join(base));
    let extra: Vec<Box<dyn Sink>> = if args.quiet {
        vec![]
    } else {
        vec![Box::new(Console::new(Box::new(std::io::stdout()), false))]
    };
    match runner::run(&loaded, extra).map_err(dedupe) {
        Err(e) => {
            print_errors(&e);
            crate::exit::INVALID
        }
        Ok(run) => {
            if let Some(w) = &run.warnings {
                eprint!("{}", w.render(std::io::stderr().is_terminal()));
            }
            if !args.quiet {
                println!();
            }
            println!(
                "drill {} ({} wall, {} virtual)",
                run.name,
                fmt_wall(run.wall),
                fmt_virtual(run.virtual_ms())
            );
            print!("{}", verdict_lines(&run));
            if run.passed() {
                println!("drill passed");
                0
            } else {
                println!(
                    "drill FAILED: {} of {} expectations not met",
                    run.verdicts.iter().filter(|v| !v.passed).count(),
                    run.verdicts.len()
                );
                1
            }
        }
    }
}

/// `target` as a path relative to `base` (both absolute).
fn relative_to(target: &Path, base: &Path) -> PathBuf {
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    out
}

fn fmt_wall(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn fmt_virtual(ms: u64) -> String {
    humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
}

pub(super) fn execute_test(args: TestArgs) -> i32 {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let files = match super::check::discover(&paths, ".drill.yaml") {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::USAGE;
        }
    };
    if files.is_empty() {
        eprintln!(
            "error: no *.drill.yaml files found under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return crate::exit::USAGE;
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
        .max(1);
    let started = std::time::Instant::now();
    let results = run_all(&files, jobs);

    let human_to_stderr = args.format == TestFormat::Junit;
    let mut out = String::new();
    let (mut passed, mut failed) = (0, 0);
    let mut cases = Vec::new();
    let mut by_runbook: BTreeMap<
        String,
        (
            std::sync::Arc<crate::plan::Graph>,
            Vec<Vec<crate::events::Event>>,
        ),
    > = BTreeMap::new();
    let mut html_pages: Vec<DrillRun> = Vec::new();
    for (file, result) in files.iter().zip(results) {
        match result {
            Ok(run) => {
                if let Some(w) = &run.warnings {
                    eprint!("{}", w.render(std::io::stderr().is_terminal()));
                }
                let ok = run.passed();
                let label = format!("{}/{}", run.graph.runbook, run.name);
                if ok {
                    passed += 1;
                    out.push_str(&format!(
                        "PASS  {label} ({}, {} virtual)\n",
                        fmt_wall(run.wall),
                        fmt_virtual(run.virtual_ms())
                    ));
                } else {
                    failed += 1;
                    out.push_str(&format!("FAIL  {label} ({})\n", file.display()));
                    for v in run.verdicts.iter().filter(|v| !v.passed) {
                        out.push_str(&format!(
                            "        {}: expected {}, observed {}\n",
                            v.name, v.expected, v.observed
                        ));
                    }
                }
                cases.push(junit::Case {
                    suite: run.graph.runbook.clone(),
                    name: run.name.clone(),
                    seconds: run.wall.as_secs_f64(),
                    failure: (!ok).then(|| verdict_lines(&run)),
                });
                let entry = by_runbook
                    .entry(run.graph.runbook.clone())
                    .or_insert_with(|| (run.graph.clone(), Vec::new()));
                if args.html.is_some() {
                    entry.1.push(run.events.clone());
                    html_pages.push(run);
                } else {
                    entry.1.push(run.events);
                }
            }
            Err(e) => {
                failed += 1;
                out.push_str(&format!(
                    "ERROR {} (the drill could not run)\n",
                    file.display()
                ));
                for r in &e.reports {
                    out.push_str(&r.render(false));
                }
                cases.push(junit::Case {
                    suite: "invalid".into(),
                    name: file.display().to_string(),
                    seconds: 0.0,
                    failure: Some(e.reports.iter().map(|r| r.render(false)).collect()),
                });
            }
        }
    }
    out.push_str(&format!(
        "{passed} passed, {failed} failed ({} drills in {})\n",
        passed + failed,
        fmt_wall(started.elapsed())
    ));
    let mut coverage_failed = false;
    if let Some(dir) = &args.html {
        let coverages: Vec<Coverage> = by_runbook
            .values()
            .map(|(graph, runs)| coverage::measure(graph, runs.iter().map(Vec::as_slice)))
            .collect();
        let pages: Vec<crate::serve::drill_html::DrillPage> = html_pages
            .iter()
            .map(|r| crate::serve::drill_html::DrillPage {
                name: &r.name,
                graph: &r.graph,
                events: &r.events,
                verdicts: &r.verdicts,
            })
            .collect();
        match crate::serve::drill_html::write(dir, &pages, &coverages) {
            Ok(index) => out.push_str(&format!("HTML report: {}\n", index.display())),
            Err(e) => {
                eprintln!(
                    "error: cannot write the HTML report to {}: {e}",
                    dir.display()
                );
                return crate::exit::INTERNAL;
            }
        }
    }
    if args.coverage || args.min_coverage.is_some() {
        for (graph, runs) in by_runbook.values() {
            let c = coverage::measure(graph, runs.iter().map(Vec::as_slice));
            out.push_str(&coverage_text(&c));
            if args.min_coverage.is_some_and(|m| c.percent() + 1e-9 < m) {
                coverage_failed = true;
            }
        }
    }
    if human_to_stderr {
        eprint!("{out}");
        print!("{}", junit::render(&cases));
    } else {
        print!("{out}");
    }
    if failed > 0 || coverage_failed {
        1
    } else {
        0
    }
}

pub(super) fn coverage_text(c: &Coverage) -> String {
    let mut s = format!(
        "coverage of {}: {}/{} ({:.0}%)\n",
        c.runbook,
        c.covered(),
        c.items.len(),
        c.percent()
    );
    for i in c.missing() {
        s.push_str(&format!("  never rehearsed: {}\n", i.what));
    }
    s
}

/// Runs every drill, `jobs` at a time, keeping the input order.
fn run_all(files: &[PathBuf], jobs: usize) -> Vec<Result<DrillRun, DrillError>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<DrillRun, DrillError>>>> =
        files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.min(files.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(f) = files.get(i) else { break };
                let r = runner::run_file(f, vec![]).map_err(dedupe);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(DrillError { reports: vec![] }))
        })
        .collect()
}
