//! `runbook resume RUN_ID`: picks up an interrupted run from its journal
//! (see `exec::resume` and docs/operations.md).

use super::run::{self as runcmd, OutputFormat};
use crate::adapters::real;
use crate::durable::journal::{read_journal, Durability, JournalWriter, JOURNAL_FILE};
use crate::durable::lock::LockError;
use crate::durable::runs::{replay, RunStatus};
use crate::events::{Emitter, Mode, Outcome, Sink};
use crate::exec::{self, exit, inputs, redact::Redactor, resume::Resume, RunOptions};
use crate::report::{console::Console, json::JsonLines};
use indexmap::IndexMap;
use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// Resume an interrupted run: completed steps are not run again; a step
/// in doubt is decided by its verify or by --assume-done / --assume-failed.
#[derive(clap::Args, Debug, Clone)]
pub struct ResumeArgs {
    pub run_id: String,
    /// Resume although the runbook file changed since the run started.
    #[arg(long)]
    pub force: bool,
    /// A step (or undo) in doubt took effect (repeatable).
    #[arg(long = "assume-done", value_name = "NODE")]
    pub assume_done: Vec<String>,
    /// A step (or undo) in doubt did not take effect (repeatable).
    #[arg(long = "assume-failed", value_name = "NODE")]
    pub assume_failed: Vec<String>,
    /// The runbook file, if it moved (default: the one the run started).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Where run locks live (default: from the run's config, else
    /// $RUNBOOK_STATE_DIR/locks, see docs/operations.md).
    #[arg(long, value_name = "DIR")]
    pub locks_dir: Option<PathBuf>,
    /// Take over the lock if the process holding it is dead.
    #[arg(long)]
    pub break_lock: bool,
    #[arg(long, value_enum, default_value = "human")]
    pub output: OutputFormat,
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("error: {msg}");
    exit::INVALID
}

pub fn execute(args: ResumeArgs) -> i32 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Err(e) = super::runs::check_run_id(&args.run_id) {
        return fail(e);
    }
    let runs_dir = super::runs::runs_dir(args.runs_dir.as_deref(), None);
    let run_id = args.run_id.clone();
    let run_dir = runs_dir.join(&run_id);
    if !run_dir.join(JOURNAL_FILE).exists() {
        return fail(format!(
            "no run `{run_id}` under {} (see `runbook runs`)",
            runs_dir.display()
        ));
    }
    let meta = match runcmd::read_meta(&run_dir) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let (config, settings, _) =
        match runcmd::load_config(meta.config.as_deref(), meta.env.as_deref()) {
            Ok(c) => c,
            Err(code) => return code,
        };
    let file = args.file.clone().unwrap_or(meta.file.clone());
    let Some(compiled) = super::load(&file) else {
        return exit::INVALID;
    };
    let graph = Arc::new(compiled.graph);

    // The journal as it stands (a torn last line is reported and ignored).
    let read = match read_journal(&run_dir.join(JOURNAL_FILE)) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut start_warnings = Vec::new();
    for w in &read.warnings {
        eprintln!("warning: {w}");
        start_warnings.push(w.clone());
    }
    let st = replay(&read.events);
    if st.sessions == 0 {
        return fail("the journal has no run_started: there is nothing to resume");
    }
    if st.mode != Some(Mode::Live) {
        return fail("a dry run changed nothing: run it again instead of resuming it");
    }
    if let Some((outcome, _)) = st.finished {
        let rollback_unfinished = st
            .rollback
            .as_ref()
            .map(|rb| rb.finished != Some(true) || rb.undone.values().any(|u| !u.ok))
            .unwrap_or(true);
        if !(outcome == Outcome::Cancelled && rollback_unfinished) {
            return fail(format!(
                "run {run_id} already finished ({}): there is nothing to resume",
                RunStatus::from_outcome(outcome)
            ));
        }
    }
    if crate::durable::journal::journal_in_use(&run_dir) {
        return fail(format!(
            "run {run_id} is still running (another process holds its journal)"
        ));
    }
    let old_sha = st.source_sha256.clone().unwrap_or_default();
    if old_sha != graph.source_sha256 {
        let seen: Vec<&str> = read
            .events
            .iter()
            .filter_map(|e| e.node.as_deref())
            .collect();
        let gone: Vec<&str> = {
            let mut v: Vec<&str> = seen
                .iter()
                .copied()
                .filter(|n| !n.starts_with("on_") && graph.node(n).is_none())
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let summary = format!(
            "{} changed since the run started (sha256 {} in the journal, {} now); \
             steps the run went through that the runbook no longer has: {}; \
             steps it had not reached: {}",
            file.display(),
            short(&old_sha),
            short(&graph.source_sha256),
            if gone.is_empty() {
                "none".into()
            } else {
                gone.join(", ")
            },
            {
                let fresh: Vec<&str> = graph
                    .nodes
                    .iter()
                    .map(|n| n.id.as_str())
                    .filter(|n| !seen.iter().any(|s| s == n))
                    .collect();
                if fresh.is_empty() {
                    "none".into()
                } else {
                    fresh.join(", ")
                }
            }
        );
        if !args.force {
            return fail(format!(
                "{summary}. Resuming a different runbook than the one that ran is refused; \
                 check the change, then add --force to resume anyway"
            ));
        }
        eprintln!("warning: --force: {summary}");
        start_warnings.push(format!("resumed with --force: {summary}"));
    }

    // Inputs from the journal (validated against the runbook as it is);
    // secrets from their sources, never from the journal.
    let mut file_inputs: IndexMap<String, yaml_serde::Value> = IndexMap::new();
    for (k, v) in &st.inputs {
        match yaml_serde::to_value(v) {
            Ok(y) => {
                file_inputs.insert(k.clone(), y);
            }
            Err(e) => return fail(format!("input `{k}` from the journal: {e}")),
        }
    }
    let input_values = match inputs::resolve(&graph.inputs, &[], Some(&file_inputs)) {
        Ok(v) => v,
        Err(errs) => {
            for e in errs {
                eprintln!("error: {e}");
            }
            return exit::INVALID;
        }
    };
    let secrets = match inputs::load_secrets(&graph.secrets, true) {
        Ok(s) => s,
        Err(errs) => {
            for e in errs {
                eprintln!("error: {e}");
            }
            return exit::INVALID;
        }
    };

    let mut resume = Resume::new(st, &read.events);
    resume.assume_done = args.assume_done.iter().cloned().collect::<HashSet<_>>();
    resume.assume_failed = args.assume_failed.iter().cloned().collect::<HashSet<_>>();
    let questions = exec::resume::questions(&graph, &resume);
    if !questions.is_empty() {
        for q in &questions {
            eprintln!("error: {q}");
        }
        eprintln!("nothing was resumed; the journal is unchanged");
        return exit::INVALID;
    }

    // The run's lock: its own stale lock (the process that died) is
    // taken over; anyone else's is refused (or broken with --break-lock).
    let key = match meta.lock_key.clone() {
        Some(k) => k,
        None => match runcmd::lock_key(&graph, &input_values, &run_id) {
            Ok(k) => k,
            Err(e) => return fail(e),
        },
    };
    let locks_dir = match crate::durable::lock::locks_dir(
        args.locks_dir.as_deref(),
        config.locks_dir.as_deref(),
    ) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let guard = match crate::durable::lock::acquire(&locks_dir, &key, &run_id, args.break_lock) {
        Ok(g) => g,
        Err(LockError::Stale { holder, .. }) if holder.run_id == run_id => {
            match crate::durable::lock::acquire(&locks_dir, &key, &run_id, true) {
                Ok(g) => g,
                Err(e) => return fail(e),
            }
        }
        Err(e) => return fail(e),
    };
    start_warnings.extend(guard.broke_message());

    let (mut writer, read2) = match JournalWriter::open_append(&run_dir, Durability::WriteAhead) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let group = match runcmd::group_commit(&mut writer) {
        Ok(g) => g,
        Err(e) => return fail(e),
    };
    if read2.events.len() != read.events.len() {
        return fail("the journal changed while resuming; try again");
    }
    let last_seq = writer.last_seq();
    let journal_path = writer.path().to_path_buf();

    let redactor = Redactor::new(secrets.values().flatten().map(String::as_str));
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let out_sink: Box<dyn Sink> = match args.output {
        OutputFormat::Human => Box::new(Console::new(Box::new(stdout), tty)),
        OutputFormat::Json => Box::new(JsonLines::new(stdout)),
    };
    let mut adapters = real::real(real::RealSettings {
        prometheus_url: settings.prometheus_url.clone(),
        shell_cwd: settings.shell_cwd.clone(),
        shell_env: settings.shell_env.clone(),
        shell_timeout: settings.default_timeout,
        http_timeout: Some(settings.check_timeout),
        kill_grace: None,
        no_prompt: false,
    });
    runcmd::inbox(&mut adapters, &run_dir);

    let mut opts = RunOptions::new(run_id.clone(), Mode::Live);
    opts.parallel = meta.parallel.max(1);
    opts.inputs = input_values;
    opts.secrets = secrets;
    opts.settings = settings;
    opts.notes = vec![
        format!("resumed after seq {last_seq}"),
        format!("journal: {}", journal_path.display()),
    ];
    opts.start_warnings = start_warnings;
    let cancel = opts.cancel.clone();
    let cancel_rollback = opts.cancel_rollback.clone();
    let runtime = match runcmd::runtime_with(false, group) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::INTERNAL;
        }
    };
    eprintln!("resuming run {run_id} after seq {last_seq}");
    let id = run_id.clone();
    let summary = runtime.block_on(async move {
        let emitter = Arc::new(
            Emitter::new(
                id,
                exec::clock::Clock::start(),
                redactor,
                vec![(Box::new(writer) as Box<dyn Sink>, true), (out_sink, false)],
            )
            .continuing_after(last_seq),
        );
        runcmd::watch_signals(cancel, cancel_rollback);
        exec::resume::resume(graph, opts, adapters, emitter, resume).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    drop(guard);
    if args.output == OutputFormat::Human {
        eprintln!("decision log: {}", journal_path.display());
    }
    runcmd::after_run(&summary, &run_id, &runs_dir, Mode::Live);
    summary.exit_code
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
