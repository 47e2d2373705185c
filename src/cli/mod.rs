//! Command-line interface: argument parsing and one module per command.

mod approve;
mod check;
mod drill;
mod export;
mod fmt;
mod graph;
mod lsp;
mod plan;
mod queue;
mod resume;
mod run;
mod runs;
mod serve;
mod store;
mod verify_journal;
mod worker;

use clap::{Parser, Subcommand};

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
    /// Rewrite runbooks in the canonical layout (`--check`: print a diff).
    Fmt(fmt::FmtArgs),
    /// Manage the shared store (`runbook store migrate`).
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Serve the Language Server Protocol on stdin/stdout (for editors).
    Lsp(lsp::LspArgs),
    /// Serve the JSON API, the web page and the Alertmanager webhook.
    Serve(serve::ServeArgs),
    /// Queue a run in the PostgreSQL store, for a worker to run.
    Enqueue(queue::EnqueueArgs),
    /// List the run requests of the PostgreSQL store's queue.
    Queue(queue::QueueArgs),
    /// Run queued run requests until SIGTERM.
    Worker(worker::WorkerArgs),
    /// Write a run's journal kept in the PostgreSQL store as JSONL.
    Export(export::ExportArgs),
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                crate::exit::USAGE
            } else {
                0
            };
            let _ = e.print();
            return code;
        }
    };
    if cli.command.only_prints() {
        default_sigpipe();
    }
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
        Command::Fmt(a) => fmt::execute(a),
        Command::Lsp(a) => lsp::execute(a),
        Command::Serve(a) => serve::execute(a),
        Command::Store(c) => store::execute(c),
        Command::Enqueue(a) => queue::enqueue(a),
        Command::Queue(a) => queue::list(a),
        Command::Worker(a) => worker::execute(a),
        Command::Export(a) => export::execute(a),
    }
}

impl Command {
    /// Commands that read files and print, and never write to a process or
    /// a socket: a reader that goes away (`runbook graph x | head`) may end
    /// them at once, as it ends `cat`.
    fn only_prints(&self) -> bool {
        matches!(
            self,
            Command::Check(_)
                | Command::Graph(_)
                | Command::Plan(_)
                | Command::Runs(_)
                | Command::VerifyJournal(_)
        )
    }
}

/// Restores the default action of SIGPIPE (end the process), which the Rust
/// runtime sets to "ignore" before `main`: with it ignored, `println!` to a
/// closed pipe panics (exit 101 and a panic message). Not for `run`,
/// `resume` and the others: they write to commands' stdin and to sockets,
/// where a reader that went away is an error to handle, not a reason to
/// stop a run halfway.
fn default_sigpipe() {
    // SAFETY: `signal` with `SIG_DFL` only changes this process's signal
    // disposition; no handler runs, and no other thread exists yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Reads and compiles one runbook, printing diagnostics to stderr on
/// failure (warnings too, on success). `None` means "exit invalid".
pub fn load(path: &std::path::Path) -> Option<crate::compile::Compiled> {
    let runbook = crate::session::Runbook::File(path.to_owned());
    crate::session::load_runbook(&runbook, &mut print_notice)
        .map_err(print_error)
        .ok()
}

/// Prints what a session notices on the way (stderr).
fn print_notice(notice: crate::session::Notice) {
    use crate::diagnostics::WARNINGS_SHOWN_PER_CODE;
    use crate::session::Notice;
    match notice {
        Notice::CompileWarnings { name, mut report } => {
            let left_out = report.abridge(WARNINGS_SHOWN_PER_CODE);
            eprint!("{}", report.render(stderr_color()));
            for (code, n) in left_out {
                eprintln!(
                    "  ⚠ {n} more {code} warning{} not shown (`runbook check {name}` lists every one)",
                    if n == 1 { "" } else { "s" },
                );
            }
        }
        Notice::Warning(w) => eprintln!("warning: {w}"),
    }
}

/// Prints why a session did not start (stderr); returns its exit code.
fn print_error(error: crate::session::Error) -> i32 {
    use crate::session::Error;
    let code = error.exit_code();
    match error {
        Error::Config(e) => eprintln!("{:?}", miette::Report::new(*e)),
        Error::Runbook { name, report } => {
            eprint!("{}", report.render(stderr_color()));
            eprintln!(
                "error: {name} is not a valid runbook ({} errors)",
                report.errors()
            );
        }
        Error::Invalid(errors) => errors.iter().for_each(|e| eprintln!("error: {e}")),
        Error::Unanswered(questions) => {
            questions.iter().for_each(|q| eprintln!("error: {q}"));
            eprintln!("nothing was resumed; the journal is unchanged");
        }
        Error::Internal(e) => eprintln!("error: {e}"),
    }
    code
}

fn stderr_color() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// The single-threaded tokio runtime a command talking to the store runs
/// on; `Err` is the exit code, the reason already printed.
fn current_thread_runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start a runtime: {e}");
            crate::exit::INTERNAL
        })
}
