//! Starting runs: the [`Launcher`] interface and its two implementations:
//! [`Embedded`] runs each run on its own thread of this process through
//! [`session`](crate::session) (file store, one machine); [`Queue`]
//! validates the run the same way and queues it in a PostgreSQL store for
//! `runbook worker` (`serve --store postgres://...`): the server then
//! keeps no run of its own.

use crate::durable::runs::RunStatus;
use crate::session::{self, DryRun, Inputs, RunRequest, Runbook, Session};
use crate::store::postgres::queue::NewRequest;
use crate::store::postgres::serve::ServedRequest;
use crate::store::postgres::PgStore;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A run to start.
#[derive(Debug, Clone)]
pub struct Job {
    pub runbook: PathBuf,
    /// `NAME=VALUE`, typed by the runbook's declarations (as `--input`).
    pub inputs: Vec<String>,
    /// Structured values (a JSON body), checked against the types.
    pub values: indexmap::IndexMap<String, yaml_serde::Value>,
    pub dry_run: bool,
    /// Who starts it: the token's name (`POST /runs`, an approved
    /// proposal), or `alertmanager`.
    pub started_by: String,
    /// The route and alert fingerprint that start it (none for `POST
    /// /runs`): a [`Queue`] refuses it while the store holds them.
    pub alert: Option<super::dedup::Key>,
}

/// Why nothing was started.
#[derive(Debug)]
pub enum LaunchError {
    /// The request is invalid, or the run could not start.
    Session(session::Error),
    /// The store holds the alert's route and fingerprint ([`Queue`]).
    Held(super::dedup::Active),
    /// The store could not be reached or written.
    Store(String),
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LaunchError::Session(e) => write!(f, "{e}"),
            LaunchError::Held(h) => write!(f, "already handled by {h}"),
            LaunchError::Store(e) => f.write_str(e),
        }
    }
}

/// Called once when a started run ends (with how it ended).
pub type OnFinish = Box<dyn FnOnce(&str, RunStatus) + Send>;

/// Starts runs.
pub trait Launcher: Send + Sync {
    /// Validates `job` in full and starts it; returns its run id once its
    /// journal exists. Blocks while it validates (call it off the async
    /// threads). Nothing is started on error.
    fn launch(&self, job: Job, on_finish: OnFinish) -> Result<String, LaunchError>;

    /// Cancels a run this launcher started and that is still going.
    fn cancel(&self, run_id: &str) -> bool;

    /// The store keeps which alerts are being handled (across restarts):
    /// a started run holds nothing in this process.
    fn keeps_keys(&self) -> bool {
        false
    }
}

/// Runs in this process, one thread each, journals in `runs_dir`.
pub struct Embedded {
    pub runs_dir: PathBuf,
    pub locks_dir: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub env: Option<String>,
    live: Arc<Mutex<HashMap<String, session::Cancel>>>,
}

impl Embedded {
    pub fn new(
        runs_dir: PathBuf,
        locks_dir: Option<PathBuf>,
        config: Option<PathBuf>,
        env: Option<String>,
    ) -> Self {
        Embedded {
            runs_dir,
            locks_dir,
            config,
            env,
            live: Arc::default(),
        }
    }
}

impl Launcher for Embedded {
    fn launch(&self, job: Job, on_finish: OnFinish) -> Result<String, LaunchError> {
        self.start(job, on_finish).map_err(LaunchError::Session)
    }

    fn cancel(&self, run_id: &str) -> bool {
        let cancel = self.live.lock().ok().and_then(|l| l.get(run_id).cloned());
        match cancel {
            Some(c) => {
                c.cancel();
                true
            }
            None => false,
        }
    }
}

impl Embedded {
    fn start(&self, job: Job, on_finish: OnFinish) -> Result<String, session::Error> {
        let mut request = RunRequest::new(Runbook::File(job.runbook));
        request.inputs = Inputs {
            args: job.inputs,
            values: job.values,
            file: None,
        };
        request.dry_run = job.dry_run.then(DryRun::default);
        request.config = self.config.clone();
        request.env = self.env.clone();
        request.runs_dir = Some(self.runs_dir.clone());
        request.locks_dir = self.locks_dir.clone();
        request.started_by = Some(job.started_by);
        let session = Session::start(request, &mut |_| {})?;
        let run_id = session.run_id().to_owned();
        if let Ok(mut live) = self.live.lock() {
            live.insert(run_id.clone(), session.cancel_handle());
        }
        let live = self.live.clone();
        let id = run_id.clone();
        std::thread::Builder::new()
            .name(format!("run {id}"))
            .spawn(move || {
                let finished = session.run();
                if let Ok(mut l) = live.lock() {
                    l.remove(&id);
                }
                on_finish(&id, RunStatus::from_outcome(finished.summary.outcome));
            })
            .map_err(|e| session::Error::Internal(format!("cannot start a thread: {e}")))?;
        Ok(run_id)
    }
}

/// Queues runs in a PostgreSQL store for `runbook worker`: each is
/// validated here as `runbook enqueue` does (config, runbook, inputs;
/// secrets are read by the worker), given its run id, and stored with who
/// started it and the alert that did (deduplicated in the store).
pub struct Queue {
    pub store: PgStore,
    pub config: Option<PathBuf>,
}

impl Queue {
    /// `job` validated and made a request for the store (not stored yet).
    pub fn prepare(&self, job: Job) -> Result<ServedRequest, LaunchError> {
        let source = crate::source::Source::read(&job.runbook)
            .map_err(|e| LaunchError::Session(session::Error::invalid(e)))?;
        let path = std::path::absolute(&job.runbook).unwrap_or_else(|_| job.runbook.clone());
        let mut request = RunRequest::new(Runbook::Text {
            name: job.runbook.display().to_string(),
            text: source.text.clone(),
        });
        request.inputs = Inputs {
            args: job.inputs.clone(),
            values: job.values.clone(),
            file: None,
        };
        request.dry_run = job.dry_run.then(DryRun::default);
        request.config = self.config.clone();
        request.started_by = Some(job.started_by.clone());
        Session::check(&request, &mut |_| {}).map_err(LaunchError::Session)?;
        let values = if job.values.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&job.values).map_err(|e| {
                LaunchError::Session(session::Error::invalid(format!(
                    "the inputs cannot be queued as JSON: {e}"
                )))
            })?)
        };
        Ok(ServedRequest {
            request: NewRequest {
                path: path.display().to_string(),
                source: source.text,
                inputs: job.inputs,
                tag: None,
            },
            dry_run: job.dry_run,
            started_by: job.started_by,
            values,
            run_id: crate::exec::new_run_id(),
            alert: job.alert,
        })
    }
}

impl Launcher for Queue {
    fn launch(&self, job: Job, _on_finish: OnFinish) -> Result<String, LaunchError> {
        let r = self.prepare(job)?;
        match self.store.enqueue_served(&r) {
            Ok(Ok(_)) => Ok(r.run_id),
            Ok(Err(holder)) => Err(LaunchError::Held(holder.into())),
            Err(e) => Err(LaunchError::Store(e)),
        }
    }

    /// A queued run is the worker's: cancel it there.
    fn cancel(&self, _run_id: &str) -> bool {
        false
    }

    fn keeps_keys(&self) -> bool {
        true
    }
}
