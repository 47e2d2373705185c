//! A run session: everything between "run this runbook" and the run's
//! outcome, for every caller that starts runs (`runbook run`, `runbook
//! resume`, and a server or queue worker). It owns:
//!
//! * the request's validation: config and environment, the runbook
//!   compiled, inputs, secrets, dry-run assumptions, pre-approvals
//!   ([`Session::start`]); for a resume, the run directory, its journal
//!   replayed and the questions it leaves ([`Session::resume`]);
//! * the run's durable state: the run lock, the journal (write-ahead, with
//!   its group commit hooked into the runtime), `run.json`;
//! * the adapters (real, or a dry run's), the approvals inbox, the
//!   current-thread runtime ([`runtime`]), Ctrl-C / SIGTERM for a run
//!   attended from a terminal ([`Cancel`] for any other caller).
//!
//! It prints nothing: errors are typed ([`Error`], with their exit code),
//! what happens on the way is handed to the caller as [`Notice`]s, and
//! events go to the journal and the [`Sink`]s the caller asks for.
//!
//! ```no_run
//! use runbook::session::{Runbook, RunRequest, Session};
//! let request = RunRequest::new(Runbook::File("deploy.runbook".into()));
//! let session = Session::start(request, &mut |notice| eprintln!("{notice:?}"))?;
//! println!("run {}", session.run_id());
//! let finished = session.run(); // blocks this thread until the run ends
//! std::process::exit(finished.summary.exit_code);
//! # Ok::<(), runbook::session::Error>(())
//! ```
//!
//! [`Session::run`] blocks its thread on the run's own current-thread
//! runtime (the journal's deferred fsync is flushed whenever that thread
//! parks): a caller that serves many runs gives each its own thread.

mod error;
mod meta;
mod request;
mod resume;
mod runtime;
mod signals;
mod start;
mod takeover;
pub mod worker;

pub use error::{Error, Notice};
pub use meta::{
    check_run_id, lock_key, read_meta, resume_command, runs_dir, write_meta, RunMeta, RUN_META,
    RUN_SOURCE,
};
pub use request::{DryRun, Inputs, ResumeRequest, RunRequest, Runbook};
pub use runtime::{group_commit, runtime, runtime_with};
pub use signals::Cancel;

use crate::adapters::{real, Adapters};
use crate::compile::Compiled;
use crate::config::Config;
use crate::diagnostics::Report;
use crate::durable::approvals::InboxApprover;
use crate::events::redact::Redactor;
use crate::events::{Emitter, Mode, Outcome, Sink};
use crate::exec::{self, resume::Resume, RunOptions, RunSummary};
use crate::plan::Graph;
use crate::source::Source;
use indexmap::IndexMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A run ready to go: validated, its lock held, its journal open, its
/// runtime built. [`Session::run`] runs it.
pub struct Session {
    run_id: String,
    runs_dir: PathBuf,
    journal: PathBuf,
    mode: Mode,
    graph: Arc<Graph>,
    opts: RunOptions,
    adapters: Adapters,
    redactor: Redactor,
    /// The journal (critical) first, then the caller's reporters.
    sinks: Vec<(Box<dyn Sink>, bool)>,
    runtime: tokio::runtime::Runtime,
    /// Released when the run ends.
    lock: Option<crate::store::RunLock>,
    resumed: Option<Resumed>,
    watch_signals: bool,
    /// What to do once the run ended (record its queue request's outcome).
    after: Option<After>,
}

/// Called with a session's end, once its lock is released.
type After = Box<dyn FnOnce(&Finished) + Send>;

/// Where a resumed run picks up.
struct Resumed {
    state: Resume,
    after_seq: u64,
}

/// How a session's run ended.
#[derive(Debug, Clone)]
pub struct Finished {
    pub run_id: String,
    pub summary: RunSummary,
    /// The run's `journal.jsonl`.
    pub journal: PathBuf,
    /// A live run that was cancelled: the command that picks it up.
    pub resume_command: Option<String>,
    /// Some undo did not finish ok (a cancelled rollback...).
    pub rollback_unfinished: bool,
}

impl Session {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's `journal.jsonl`.
    pub fn journal(&self) -> &Path {
        &self.journal
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A resumed run: the last journalled seq it continues after.
    pub fn resumed_after(&self) -> Option<u64> {
        self.resumed.as_ref().map(|r| r.after_seq)
    }

    /// Cancels the run from another thread.
    pub fn cancel_handle(&self) -> Cancel {
        Cancel {
            cancel: self.opts.cancel.clone(),
            cancel_rollback: self.opts.cancel_rollback.clone(),
        }
    }

    /// A run taken over by `runbook resume --store` whose queue request
    /// `request` it took with it (as `owner`): the request gets the run's
    /// outcome when it ends (a failure to record it is printed).
    pub(crate) fn recording_request(
        mut self,
        store: crate::store::postgres::PgStore,
        request: Option<i64>,
        owner: String,
    ) -> Session {
        if let Some(id) = request {
            self.after = Some(Box::new(move |f: &Finished| {
                let outcome = f.summary.outcome.as_str();
                if let Err(e) = store.finish_request(id, &owner, Some(outcome), f.summary.exit_code)
                {
                    eprintln!("queue request {id}: its outcome was not recorded: {e}");
                }
            }));
        }
        self
    }

    /// Runs (or resumes) the run to its end, on this thread; releases the
    /// lock after.
    pub fn run(self) -> Finished {
        let Session {
            run_id,
            runs_dir,
            journal,
            mode,
            graph,
            opts,
            adapters,
            redactor,
            sinks,
            runtime,
            lock,
            resumed,
            watch_signals,
            after,
        } = self;
        let cancel = Cancel {
            cancel: opts.cancel.clone(),
            cancel_rollback: opts.cancel_rollback.clone(),
        };
        let id = run_id.clone();
        let summary = runtime.block_on(async move {
            let emitter = Emitter::new(id, crate::clock::Clock::start(), redactor, sinks);
            if watch_signals {
                signals::watch_signals(cancel);
            }
            match resumed {
                None => exec::run(graph, opts, adapters, Arc::new(emitter)).await,
                Some(r) => {
                    let emitter = Arc::new(emitter.continuing_after(r.after_seq));
                    exec::resume::resume(graph, opts, adapters, emitter, r.state).await
                }
            }
        });
        runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        drop(lock);
        let live_cancelled = mode == Mode::Live && summary.outcome == Outcome::Cancelled;
        let finished = Finished {
            resume_command: live_cancelled.then(|| resume_command(&run_id, &runs_dir)),
            rollback_unfinished: summary.undos.iter().any(|(_, ok)| !ok),
            run_id,
            summary,
            journal,
        };
        if let Some(after) = after {
            after(&finished);
        }
        finished
    }
}

/// The config file and the settings of its selected environment (with the
/// environment's inputs).
pub(crate) fn load_config(
    path: Option<&Path>,
    env: Option<&str>,
) -> Result<(Config, exec::Settings, IndexMap<String, yaml_serde::Value>), Error> {
    let config = Config::load(path).map_err(Error::Config)?;
    let (settings, env_inputs) = config.settings(env).map_err(Error::Config)?;
    Ok((config, settings, env_inputs))
}

/// Reads and compiles a runbook; its warnings are a [`Notice`].
pub fn load_runbook(runbook: &Runbook, notices: &mut dyn FnMut(Notice)) -> Result<Compiled, Error> {
    load_runbook_source(runbook, notices).map(|(_, c)| c)
}

/// [`load_runbook`], with the source it compiled (to compile it again with
/// a run's inputs: [`bind_inputs`]).
pub fn load_runbook_source(
    runbook: &Runbook,
    notices: &mut dyn FnMut(Notice),
) -> Result<(Source, Compiled), Error> {
    let source = match runbook {
        Runbook::File(path) => Source::read(path).map_err(Error::invalid)?,
        Runbook::Text { name, text } => Source::new(name.clone(), text.clone()),
    };
    match crate::compile::compile(&source) {
        Ok(c) => {
            if !c.warnings.is_empty() {
                let report = Report::new(source.clone(), c.warnings.clone());
                notices(Notice::CompileWarnings {
                    name: runbook_name(runbook),
                    report,
                });
            }
            Ok((source, c))
        }
        Err(report) => Err(Error::Runbook {
            name: runbook_name(runbook),
            report,
        }),
    }
}

fn runbook_name(runbook: &Runbook) -> String {
    match runbook {
        Runbook::File(path) => path.display().to_string(),
        Runbook::Text { name, .. } => name.clone(),
    }
}

/// The graph a run executes: durations and counts that name an input
/// (`wait soak`, `retry attempts`) take the run's values, checked by the
/// clauses' rules; a bad value is a located error naming the input.
pub fn bind_inputs(
    runbook: &Runbook,
    source: &Source,
    graph: Arc<Graph>,
    inputs: &IndexMap<String, crate::plan::Value>,
) -> Result<Arc<Graph>, Error> {
    if graph.slot_inputs.is_empty() {
        return Ok(graph);
    }
    match crate::compile::compile_with_inputs(source, inputs) {
        Ok(c) => Ok(Arc::new(c.graph)),
        Err(report) => Err(Error::Runbook {
            name: runbook_name(runbook),
            report,
        }),
    }
}

/// The real adapters with the config's settings; for a run attended from a
/// terminal, approvals are asked there too.
fn real_adapters(settings: &exec::Settings, terminal: bool) -> Adapters {
    real::real(real::RealSettings {
        prometheus_url: settings.prometheus_url.clone(),
        shell_cwd: settings.shell_cwd.clone(),
        shell_env: settings.shell_env.clone(),
        shell_timeout: settings.default_timeout,
        http_timeout: Some(settings.check_timeout),
        kill_grace: None,
        no_prompt: !terminal,
    })
}

/// Wraps the approver so that `runbook approve` / `deny` from another
/// terminal, process or machine can answer (live runs), through the
/// store's approvals (the run directory's files, or PostgreSQL rows).
fn inbox(
    adapters: &mut Adapters,
    run_dir: &Path,
    terminal: bool,
    place: LockPlace<'_>,
    config: &Config,
    started_by: Option<&str>,
) -> Result<(), Error> {
    let store = crate::store::open(&crate::store::Choice {
        flag: place.store,
        config: config.store.as_ref(),
        locks_dir_flag: place.locks_dir,
        locks_dir_config: config.locks_dir.as_deref(),
    })
    .map_err(Error::invalid)?;
    let mut approver = InboxApprover::with_box(store.approvals(run_dir), adapters.approve.clone())
        .started_by(
            started_by
                .map(str::to_owned)
                .unwrap_or_else(crate::durable::sys::user),
        );
    if terminal {
        let stderr: crate::adapters::approve::PromptWriter =
            Arc::new(std::sync::Mutex::new(std::io::stderr()));
        approver = approver.with_notice(stderr);
    }
    adapters.approve = Arc::new(approver);
    Ok(())
}

/// Where a request says to take its lock: `--store`, `--locks-dir`,
/// `--break-lock`.
pub(crate) struct LockPlace<'a> {
    store: Option<&'a str>,
    locks_dir: Option<&'a Path>,
    break_lock: bool,
}

impl RunRequest {
    fn lock_place(&self) -> LockPlace<'_> {
        LockPlace {
            store: self.store.as_deref(),
            locks_dir: self.locks_dir.as_deref(),
            break_lock: self.break_lock,
        }
    }
}

impl ResumeRequest {
    fn lock_place(&self) -> LockPlace<'_> {
        LockPlace {
            store: self.store.as_deref(),
            locks_dir: self.locks_dir.as_deref(),
            break_lock: self.break_lock,
        }
    }
}

/// The run's lock from the store `--store` or the config names (the
/// files by default). Losing it (a PostgreSQL lease taken over or not
/// renewed in time) cancels the run without rollback: no new action
/// starts, since another run may hold the lock now.
fn take_lock(
    place: LockPlace<'_>,
    config: &Config,
    key: &str,
    run_id: &str,
    opts: &RunOptions,
) -> Result<(crate::store::RunLock, Box<dyn crate::store::Store>), Error> {
    let LockPlace {
        store: flag,
        locks_dir,
        break_lock,
    } = place;
    let store = crate::store::open(&crate::store::Choice {
        flag,
        config: config.store.as_ref(),
        locks_dir_flag: locks_dir,
        locks_dir_config: config.locks_dir.as_deref(),
    })
    .map_err(Error::invalid)?;
    let cancel = Cancel {
        cancel: opts.cancel.clone(),
        cancel_rollback: opts.cancel_rollback.clone(),
    };
    let on_lost = Box::new(move || {
        eprintln!("the run lost its lock (its lease was taken over or could not be renewed): no new action starts");
        cancel.stop_rollback();
        cancel.cancel();
    });
    let lock = store
        .lock(key, run_id, break_lock, on_lost)
        .map_err(Error::invalid)?;
    Ok((lock, store))
}

/// The store's copy of the journal, if it keeps one (PostgreSQL): a
/// second critical sink, written ahead like the file.
fn store_journal(
    store: Option<&dyn crate::store::Store>,
    run: &crate::store::JournalRun<'_>,
) -> Result<Option<Box<dyn Sink>>, Error> {
    match store {
        Some(s) => s.journal(run).map_err(Error::invalid),
        None => Ok(None),
    }
}

/// The journal first, then the store's copy of it (the failure of either
/// stops the run), then the reporters.
fn sinks(
    journal: Box<dyn Sink>,
    store_journal: Option<Box<dyn Sink>>,
    reporters: Vec<Box<dyn Sink>>,
) -> Vec<(Box<dyn Sink>, bool)> {
    let mut all = vec![(journal, true)];
    all.extend(store_journal.map(|j| (j, true)));
    all.extend(reporters.into_iter().map(|r| (r, false)));
    all
}

fn start_runtime(
    virtual_time: bool,
    group: Option<crate::durable::group_commit::GroupCommit>,
) -> Result<tokio::runtime::Runtime, Error> {
    runtime_with(virtual_time, group)
        .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))
}

/// The redactor of a run: every secret value known.
fn redactor(secrets: &IndexMap<String, Option<String>>) -> Redactor {
    Redactor::new(secrets.values().flatten().map(String::as_str))
}
