//! `runbook run FILE`: compile, validate inputs, and execute the graph
//! (for real, or `--dry-run`), writing the decision log.

use crate::adapters::{dry_run::Assumptions, real, Adapters};
use crate::config::Config;
use crate::durable::{
    approvals::InboxApprover, group_commit::GroupCommit, journal::Durability,
    journal::JournalWriter, lock,
};
use crate::events::{Emitter, Mode, Sink};
use crate::exec::{self, exit, inputs, redact::Redactor, RunOptions};
use crate::plan::{Graph, Value};
use crate::report::{console::Console, json::JsonLines};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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
    /// Where run locks live (default: from the config, else
    /// $RUNBOOK_STATE_DIR/locks, see docs/operations.md).
    #[arg(long, value_name = "DIR")]
    pub locks_dir: Option<PathBuf>,
    /// Take over the runbook's lock if the run holding it is dead (its
    /// process is gone); logged as a warning.
    #[arg(long)]
    pub break_lock: bool,
    /// On Ctrl-C / SIGTERM, stop without rolling back (`runbook resume`
    /// rolls back later).
    #[arg(long)]
    pub no_rollback_on_cancel: bool,
}

/// `<run dir>/run.json`: how the run was started, for `runbook resume`
/// (never a secret: those are re-loaded from their sources).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMeta {
    /// The runbook file, absolute.
    pub file: PathBuf,
    #[serde(default)]
    pub config: Option<PathBuf>,
    #[serde(default)]
    pub env: Option<String>,
    pub parallel: usize,
    /// The lock key the run holds (live runs).
    #[serde(default)]
    pub lock_key: Option<String>,
}

pub const RUN_META: &str = crate::durable::run_meta::RUN_META;

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_owned())
    })
}

pub fn write_meta(run_dir: &Path, meta: &RunMeta) -> std::io::Result<String> {
    let json = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
    crate::durable::run_meta::write(run_dir, &json)
}

pub fn read_meta(run_dir: &Path) -> Result<RunMeta, String> {
    let path = run_dir.join(RUN_META);
    let checked = crate::durable::run_meta::check(run_dir).map_err(|e| e.to_string())?;
    checked
        .warning
        .iter()
        .for_each(|w| eprintln!("warning: {w}"));
    serde_json::from_slice(&checked.run_json)
        .map_err(|e| format!("{} is not readable: {e}", path.display()))
}

/// The run's lock key: the runbook's `lock` rendered with the inputs (the
/// runbook's name by default). Secrets are never rendered into it.
pub fn lock_key(
    graph: &Graph,
    inputs: &IndexMap<String, Value>,
    run_id: &str,
) -> Result<String, String> {
    let mut data = serde_json::Map::new();
    for (k, v) in inputs {
        data.insert(k.clone(), exec::context::value_json(v));
    }
    for s in &graph.secrets {
        data.insert(
            s.name.clone(),
            serde_json::Value::String(exec::redact::MASK.into()),
        );
    }
    data.insert(
        "run".into(),
        serde_json::json!({"id": run_id, "runbook": graph.runbook, "mode": "live"}),
    );
    let key = exec::template::Templates::new()
        .render_str(
            &graph.lock.template,
            crate::plan::Escape::Plain,
            &serde_json::Value::Object(data),
        )
        .map_err(|e| format!("the runbook's `lock` key cannot be rendered: {e}"))?;
    let key = key.trim().to_owned();
    Ok(if key.is_empty() {
        graph.runbook.clone()
    } else {
        key
    })
}

/// Takes the run lock, or says who holds it.
pub fn take_lock(
    locks_dir: &Path,
    key: &str,
    run_id: &str,
    break_lock: bool,
) -> Result<lock::LockGuard, String> {
    lock::acquire(locks_dir, key, run_id, break_lock).map_err(|e| e.to_string())
}

/// Wraps the approver so that `runbook approve` / `deny` from another
/// terminal can answer (live runs).
pub fn inbox(adapters: &mut Adapters, run_dir: &Path) {
    let stderr: crate::adapters::approve::PromptWriter =
        Arc::new(std::sync::Mutex::new(std::io::stderr()));
    adapters.approve = Arc::new(
        InboxApprover::new(run_dir.to_owned(), adapters.approve.clone()).with_notice(stderr),
    );
}

/// The command that resumes a run.
pub fn resume_command(run_id: &str, runs_dir: &Path) -> String {
    let dir = runs_dir.display().to_string();
    let mut cmd = format!("runbook resume {run_id}");
    if dir != crate::durable::DEFAULT_RUNS_DIR {
        let q = shlex::try_quote(&dir)
            .map(|q| q.into_owned())
            .unwrap_or(dir);
        cmd.push_str(&format!(" --runs-dir {q}"));
    }
    cmd
}

/// The tokio runtime of a run: current-thread (paused clock for a dry run
/// probing nothing).
///
/// Live runs need no second thread: a run waits on processes, sockets,
/// timers and signals, all driven by this thread's I/O and time drivers;
/// the steps of a `parallel` block still run at once (their processes and
/// requests are in flight together; `tests/exec_cli.rs` checks that two
/// overlap); a terminal approval reads stdin on its own detached thread
/// (`adapters::approve`) and `runbook approve` answers through files polled
/// on a timer (`durable::approvals`). On a multi-thread runtime a step's
/// task, its pipe readers and the child's exit woke each other across
/// worker threads: about 10 % of a `run "true"` step
/// (`docs/performance.md`). The journal's fsyncs now hold up the other
/// steps of a `parallel` block too while they last (they held up only the
/// emitting step's worker before); their processes keep running meanwhile.
pub fn runtime(virtual_time: bool) -> std::io::Result<tokio::runtime::Runtime> {
    runtime_with(virtual_time, None)
}

/// [`runtime`], flushing the journal's deferred fsync (`group`) whenever
/// its thread is about to block: a change's outcome is on disk before the
/// run waits for anything (`durable::group_commit`).
pub fn runtime_with(
    virtual_time: bool,
    group: Option<GroupCommit>,
) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_all();
    if virtual_time {
        b.start_paused(true);
    }
    if let Some(g) = group {
        b.on_thread_park(move || g.flush());
    }
    b.build()
}

/// Turns on the journal's group commit for a write-ahead (live) journal.
pub fn group_commit(journal: &mut JournalWriter) -> std::io::Result<Option<GroupCommit>> {
    match journal.durability() {
        Durability::WriteAhead => journal.group_commit().map(Some),
        Durability::Buffered => Ok(None),
    }
}

/// First Ctrl-C / SIGTERM: `cancel`; second: `cancel_rollback`. Call
/// inside the runtime.
pub fn watch_signals(cancel: CancellationToken, cancel_rollback: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        for stage in 0..2 {
            let got = tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                r = async {
                    match term.as_mut() {
                        Some(t) => t.recv().await,
                        None => std::future::pending().await,
                    }
                } => r.is_some(),
            };
            if !got {
                return;
            }
            if stage == 0 {
                eprintln!("\ncancelling: no new step starts, running actions are stopped, then the rollback (Ctrl-C again stops the rollback)");
                cancel.cancel();
            } else {
                eprintln!("\nstopping the rollback");
                cancel_rollback.cancel();
            }
        }
    });
}

fn invalid(errors: &[String]) -> i32 {
    for e in errors {
        eprintln!("error: {e}");
    }
    exit::INVALID
}

/// The config file and the settings of its selected environment (with the
/// environment's inputs). On error the located diagnostic is printed and
/// the exit code for an invalid configuration is returned.
pub fn load_config(
    path: Option<&Path>,
    env: Option<&str>,
) -> Result<(Config, exec::Settings, IndexMap<String, yaml_serde::Value>), i32> {
    let config = Config::load(path).map_err(|e| {
        eprintln!("{:?}", miette::Report::new(*e));
        exit::INVALID
    })?;
    let (settings, env_inputs) = config.settings(env).map_err(|e| {
        eprintln!("{:?}", miette::Report::new(*e));
        exit::INVALID
    })?;
    Ok((config, settings, env_inputs))
}

/// Runs the command; returns the process exit code.
pub fn execute(args: RunArgs) -> i32 {
    let _ = rustls::crypto::ring::default_provider().install_default();

    let (config, settings, env_inputs) =
        match load_config(args.config.as_deref(), args.env.as_deref()) {
            Ok(c) => c,
            Err(code) => return code,
        };
    let Some(compiled) = super::load(&args.file) else {
        return exit::INVALID;
    };
    let graph = Arc::new(compiled.graph);

    // Inputs: --input, then --inputs FILE, then the environment's, then defaults.
    let mut errors = Vec::new();
    let mut cli_inputs = Vec::new();
    for kv in &args.input {
        match inputs::parse_kv(kv) {
            Ok(p) => cli_inputs.push(p),
            Err(e) => errors.push(format!("--input {e}")),
        }
    }
    let mut file_inputs: IndexMap<String, yaml_serde::Value> = env_inputs;
    if let Some(p) = &args.inputs {
        match crate::fs_read::read_to_string(p, crate::fs_read::INPUTS) {
            Ok(text) => match inputs::parse_inputs_file(&p.display().to_string(), &text) {
                Ok(m) => file_inputs.extend(m),
                Err(e) => errors.push(e),
            },
            Err(e) => errors.push(format!("cannot read {}: {e}", p.display())),
        }
    }
    let input_values = match inputs::resolve(&graph.inputs, &cli_inputs, Some(&file_inputs)) {
        Ok(v) => v,
        Err(e) => {
            errors.extend(e);
            IndexMap::new()
        }
    };
    let check_names: Vec<&str> = graph.checks.iter().map(|c| c.name.as_str()).collect();
    let mut assume = IndexMap::new();
    for a in &args.assume {
        match inputs::parse_kv(a) {
            Ok((k, v)) => {
                let b = match v.trim() {
                    "true" | "pass" => true,
                    "false" | "fail" => false,
                    other => {
                        errors.push(format!(
                            "--assume {k}={other}: the answer must be true or false"
                        ));
                        continue;
                    }
                };
                if !check_names.contains(&k.as_str()) {
                    let hint = crate::diagnostics::did_you_mean(&k, check_names.iter().copied())
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default();
                    errors.push(format!("--assume: no check named `{k}`{hint}"));
                }
                assume.insert(k, b);
            }
            Err(e) => errors.push(format!("--assume {e}")),
        }
    }
    let step_names: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    for s in &args.approve {
        if !step_names.contains(&s.as_str()) {
            let hint = crate::diagnostics::did_you_mean(s, step_names.iter().copied())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            errors.push(format!("--approve: no step named `{s}`{hint}"));
        }
    }
    let secrets = match inputs::load_secrets(&graph.secrets, !args.dry_run) {
        Ok(s) => s,
        Err(e) => {
            errors.extend(e);
            IndexMap::new()
        }
    };
    if !errors.is_empty() {
        return invalid(&errors);
    }

    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Live
    };
    let run_id = exec::new_run_id();
    let runs_dir = args.runs_dir.clone().unwrap_or_else(|| config.runs_dir());
    let run_dir = runs_dir.join(&run_id);
    // A live run holds the runbook's lock for its whole length.
    let mut start_warnings = Vec::new();
    let mut lock_name = None;
    let guard = if args.dry_run {
        None
    } else {
        let key = match lock_key(&graph, &input_values, &run_id) {
            Ok(k) => k,
            Err(e) => return invalid(&[e]),
        };
        let locks = lock::locks_dir(args.locks_dir.as_deref(), config.locks_dir.as_deref());
        match locks.and_then(|dir| take_lock(&dir, &key, &run_id, args.break_lock)) {
            Ok(g) => {
                start_warnings.extend(g.broke_message());
                lock_name = Some(key);
                Some(g)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return exit::INVALID;
            }
        }
    };
    let journal = JournalWriter::create(&run_dir, Durability::for_mode(mode)).and_then(|mut j| {
        let group = group_commit(&mut j)?;
        Ok((j, group))
    });
    let (mut journal, group) = match journal {
        Ok(j) => j,
        Err(e) => {
            eprintln!(
                "error: cannot create the journal under {}: {e}",
                runs_dir.display()
            );
            return exit::INTERNAL;
        }
    };
    let journal_path = journal.path().to_path_buf();
    let meta = RunMeta {
        file: absolute(&args.file),
        config: args.config.as_deref().map(absolute),
        env: args.env.clone(),
        parallel: usize::try_from(args.parallel).unwrap_or(4),
        lock_key: lock_name,
    };
    if let Err(e) = write_meta(&run_dir, &meta).and_then(|sha| journal.record_run_json(&sha)) {
        eprintln!(
            "error: cannot write {}: {e}",
            run_dir.join(RUN_META).display()
        );
        return exit::INTERNAL;
    }

    let mut notes = Vec::new();
    if args.dry_run {
        notes.push("dry run: nothing is spawned, sent, notified or asked; each action shows what would run".to_owned());
        if args.live_checks {
            notes.push("checks: read-only probes (http get/head, promql) are probed for real (--live-checks); other checks pass by default".to_owned());
        } else {
            notes.push("checks are not probed: each passes by default; --assume CHECK=false makes one fail".to_owned());
        }
        if !args.live_checks {
            notes.push(
                "virtual time: waits, backoffs and verify windows take no wall time".to_owned(),
            );
        }
        for (k, v) in &assume {
            notes.push(format!(
                "assumed: check {k} is {}",
                if *v { "passing" } else { "failing" }
            ));
        }
        let missing: Vec<&str> = secrets
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.as_str())
            .collect();
        if !missing.is_empty() {
            notes.push(format!(
                "secrets not available (fine in a dry run): {}",
                missing.join(", ")
            ));
        }
    }
    notes.push(format!("journal: {}", journal_path.display()));

    let redactor = Redactor::new(secrets.values().flatten().map(String::as_str));
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let out_sink: Box<dyn Sink> = match args.output {
        OutputFormat::Human => Box::new(Console::new(Box::new(stdout), tty)),
        OutputFormat::Json => Box::new(JsonLines::new(stdout)),
    };

    let real_settings = real::RealSettings {
        prometheus_url: settings.prometheus_url.clone(),
        shell_cwd: settings.shell_cwd.clone(),
        shell_env: settings.shell_env.clone(),
        shell_timeout: settings.default_timeout,
        http_timeout: Some(settings.check_timeout),
        kill_grace: None,
        no_prompt: false,
    };
    let adapters = if args.dry_run {
        let mut a = Adapters::dry_run(IndexMap::new());
        a.oracle = Some(Arc::new(
            Assumptions::new(assume).with_live_checks(args.live_checks),
        ));
        if args.live_checks {
            a.probes = real::real(real_settings).probes;
        }
        a
    } else {
        let mut a = real::real(real_settings);
        inbox(&mut a, &run_dir);
        a
    };

    let mut opts = RunOptions::new(run_id.clone(), mode);
    opts.parallel = usize::try_from(args.parallel).unwrap_or(4);
    opts.inputs = input_values;
    opts.secrets = secrets;
    opts.settings = settings;
    opts.preapproved = args.approve.iter().cloned().collect();
    opts.notes = notes;
    opts.start_warnings = start_warnings;
    opts.rollback_on_cancel = !args.no_rollback_on_cancel;
    let cancel = opts.cancel.clone();
    let cancel_rollback = opts.cancel_rollback.clone();

    // A dry run that probes nothing runs on tokio's paused clock: waits,
    // backoffs and verify windows take no wall time (the log still shows
    // the virtual times a real run would take at least).
    let virtual_time = args.dry_run && !args.live_checks;
    let runtime = match runtime_with(virtual_time, group) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::INTERNAL;
        }
    };
    eprintln!("run id: {run_id}");
    let id = run_id.clone();
    let summary = runtime.block_on(async move {
        let clock = exec::clock::Clock::start();
        let emitter = Arc::new(Emitter::new(
            id,
            clock,
            redactor,
            vec![
                (Box::new(journal) as Box<dyn Sink>, true),
                (out_sink, false),
            ],
        ));
        watch_signals(cancel, cancel_rollback);
        exec::run(graph, opts, adapters, emitter).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    drop(guard);
    if args.output == OutputFormat::Human {
        eprintln!("decision log: {}", journal_path.display());
    }
    after_run(&summary, &run_id, &runs_dir, mode);
    summary.exit_code
}

/// Tells how to pick up a run that did not end cleanly.
pub fn after_run(summary: &exec::RunSummary, run_id: &str, runs_dir: &Path, mode: Mode) {
    if mode != Mode::Live {
        return;
    }
    let rollback_stopped = summary.undos.iter().any(|(_, ok)| !ok);
    if summary.outcome == crate::events::Outcome::Cancelled {
        eprintln!(
            "the run was cancelled{}; to pick it up: {}",
            if rollback_stopped {
                " and its rollback is unfinished"
            } else {
                ""
            },
            resume_command(run_id, runs_dir)
        );
    }
}
