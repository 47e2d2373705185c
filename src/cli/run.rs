//! `runbook run FILE`: its arguments, turned into a
//! [`session::RunRequest`]; the session compiles, validates and runs
//! (for real, or `--dry-run`), writing the decision log; this prints.

use crate::events::Sink;
use crate::report::{console::Console, json::JsonLines};
use crate::session::{self, DryRun, Inputs, RunRequest, Runbook, Session};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Lines for people, a summary table at the end.
    Human,
    /// The journal's JSON lines, streamed to stdout.
    Json,
}

/// Run a runbook (exit codes: 0 success, 3 invalid runbook/inputs/config,
/// 4 failed and rolled back cleanly, 5 failed and rollback incomplete,
/// 130 cancelled, 1 internal error).
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The runbook file.
    pub file: PathBuf,
    /// An input value (repeatable).
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    pub input: Vec<String>,
    /// A YAML file mapping input names to values.
    #[arg(long, value_name = "FILE.yaml")]
    pub inputs: Option<PathBuf>,
    /// Execute nothing: show what each action would run; checks pass by
    /// default (see --assume).
    #[arg(long)]
    pub dry_run: bool,
    /// In a dry run: the answer of a check (repeatable), e.g.
    /// `--assume errors_low=false`.
    #[arg(long, value_name = "CHECK=true|false", requires = "dry_run")]
    pub assume: Vec<String>,
    /// In a dry run: probe read-only checks (http get/head, promql) for real.
    #[arg(long, requires = "dry_run")]
    pub live_checks: bool,
    /// The config file (default: ./runbook.yaml if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A named environment of the config file.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Steps running at once, at most.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub parallel: u64,
    /// Pre-approve the `approve` of a step (repeatable).
    #[arg(long = "approve", value_name = "STEP")]
    pub approve: Vec<String>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub output: OutputFormat,
    /// Where run directories are created (default: from the config, else
    /// .runbook/runs).
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Where run locks live (default: the config's `locks_dir`, else
    /// $RUNBOOK_STATE_DIR/locks; see docs/operations.md).
    #[arg(long, value_name = "DIR")]
    pub locks_dir: Option<PathBuf>,
    /// Take over the runbook's lock if the run holding it is dead (its
    /// process is gone); logged as a warning.
    #[arg(long)]
    pub break_lock: bool,
    /// Where run locks are shared: `postgres://USER@HOST:PORT/DB` (the
    /// password in $RUNBOOK_STORE_PASSWORD), or `files` (default: the
    /// config's `store:`, else the files; see docs/team.md).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// On Ctrl-C / SIGTERM, stop without rolling back (`runbook resume`
    /// rolls back later).
    #[arg(long)]
    pub no_rollback_on_cancel: bool,
}

impl OutputFormat {
    /// The reporter on stdout.
    pub(super) fn sink(self) -> Box<dyn Sink> {
        let stdout = std::io::stdout();
        match self {
            OutputFormat::Human => {
                let tty = stdout.is_terminal();
                Box::new(Console::new(Box::new(stdout), tty))
            }
            OutputFormat::Json => Box::new(JsonLines::new(stdout)),
        }
    }
}

/// Runs the command; returns the process exit code.
pub(super) fn execute(args: RunArgs) -> i32 {
    let output = args.output;
    let request = RunRequest {
        runbook: Runbook::File(args.file),
        inputs: Inputs {
            args: args.input,
            values: Default::default(),
            file: args.inputs,
        },
        dry_run: args.dry_run.then_some(DryRun {
            assume: args.assume,
            live_checks: args.live_checks,
        }),
        config: args.config,
        env: args.env,
        parallel: usize::try_from(args.parallel).unwrap_or(4),
        approve: args.approve,
        runs_dir: args.runs_dir,
        locks_dir: args.locks_dir,
        break_lock: args.break_lock,
        store: args.store,
        rollback_on_cancel: !args.no_rollback_on_cancel,
        reporters: vec![output.sink()],
        terminal: true,
        // The OS user: what `runbook approve` from the same account
        // carries too (docs/team.md, "Identities").
        started_by: None,
        run_id: None,
    };
    let session = match Session::start(request, &mut super::print_notice) {
        Ok(s) => s,
        Err(e) => return super::print_error(e),
    };
    eprintln!("run id: {}", session.run_id());
    finish(session.run(), output)
}

/// Says where the decision log is, and how to pick up a run that did not
/// end cleanly; returns the run's exit code.
pub(super) fn finish(finished: session::Finished, output: OutputFormat) -> i32 {
    if output == OutputFormat::Human {
        eprintln!("decision log: {}", finished.journal.display());
    }
    if let Some(cmd) = &finished.resume_command {
        eprintln!(
            "the run was cancelled{}; to pick it up: {cmd}",
            if finished.rollback_unfinished {
                " and its rollback is unfinished"
            } else {
                ""
            },
        );
    }
    finished.summary.exit_code
}
