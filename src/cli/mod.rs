//! Command-line interface: argument parsing and one module per command.

mod approve;
mod check;
mod drill;
mod graph;
mod plan;
mod resume;
pub mod run;
mod runs;
mod verify_journal;

use clap::{Parser, Subcommand};

/// Exit code for "the runbook or its inputs are invalid" (shared by all
/// commands; see docs/cli.md).
pub const EXIT_INVALID: i32 = 3;
/// Exit code for a usage error (bad flags), as clap uses.
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser, Debug)]
#[command(name = "runbook", version, about = "Runbooks as code: check, plan, run, drill", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compile runbooks and report every problem found.
    Check(check::CheckArgs),
    /// Print the compiled step graph (dot, mermaid or json).
    Graph(graph::GraphArgs),
    /// Print, in order, what a run would do and what each failure rolls back.
    Plan(plan::PlanArgs),
    /// Run a runbook (or dry-run it), writing the decision log.
    Run(run::RunArgs),
    /// Rehearse a runbook against one scripted incident.
    Drill(drill::DrillArgs),
    /// Run every drill (`*.drill.yaml`) under the given paths.
    Test(drill::TestArgs),
    /// Pick up an interrupted run from its journal.
    Resume(resume::ResumeArgs),
    /// List runs with their state.
    Runs(runs::RunsArgs),
    /// Approve a step a run is waiting on (from another terminal).
    Approve(approve::DecideArgs),
    /// Refuse a step a run is waiting on (from another terminal).
    Deny(approve::DecideArgs),
    /// Check a run journal's hash chain; report the first broken link.
    VerifyJournal(verify_journal::VerifyJournalArgs),
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Check(a) => check::execute(a),
        Command::Graph(a) => graph::execute(a),
        Command::Plan(a) => plan::execute(a),
        Command::Run(a) => run::execute(a),
        Command::Drill(a) => drill::execute_drill(a),
        Command::Test(a) => drill::execute_test(a),
        Command::Resume(a) => resume::execute(a),
        Command::Runs(a) => runs::execute(a),
        Command::Approve(a) => approve::execute(a, true),
        Command::Deny(a) => approve::execute(a, false),
        Command::VerifyJournal(a) => verify_journal::execute(a),
    }
}

/// Reads and compiles one runbook, printing diagnostics to stderr on
/// failure (warnings too, on success). `None` means "exit invalid".
pub fn load(path: &std::path::Path) -> Option<crate::compile::Compiled> {
    use std::io::IsTerminal;
    let source = match crate::source::Source::read(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    let color = std::io::stderr().is_terminal();
    match crate::compile::compile(&source) {
        Ok(c) => {
            if !c.warnings.is_empty() {
                use crate::diagnostics::{Report, WARNINGS_SHOWN_PER_CODE};
                let mut report = Report::new(source, c.warnings.clone());
                let left_out = report.abridge(WARNINGS_SHOWN_PER_CODE);
                eprint!("{}", report.render(color));
                for (code, n) in left_out {
                    eprintln!(
                        "  ⚠ {n} more {code} warning{} not shown (`runbook check {}` lists every one)",
                        if n == 1 { "" } else { "s" },
                        path.display()
                    );
                }
            }
            Some(c)
        }
        Err(report) => {
            eprint!("{}", report.render(color));
            eprintln!(
                "error: {} is not a valid runbook ({} errors)",
                path.display(),
                report.errors()
            );
            None
        }
    }
}
