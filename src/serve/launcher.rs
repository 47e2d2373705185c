//! Starting runs: the [`Launcher`] interface and its embedded
//! implementation, which runs each run on its own thread of this process
//! through [`session`](crate::session) (file store, one machine). A queue
//! for workers can implement the same trait.

use crate::durable::runs::RunStatus;
use crate::session::{self, DryRun, Inputs, RunRequest, Runbook, Session};
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
}

/// Called once when a started run ends (with how it ended).
pub type OnFinish = Box<dyn FnOnce(&str, RunStatus) + Send>;

/// Starts runs.
pub trait Launcher: Send + Sync {
    /// Validates `job` in full and starts it; returns its run id once its
    /// journal exists. Blocks while it validates (call it off the async
    /// threads). Nothing is started on error.
    fn launch(&self, job: Job, on_finish: OnFinish) -> Result<String, session::Error>;

    /// Cancels a run this launcher started and that is still going.
    fn cancel(&self, run_id: &str) -> bool;
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
    fn launch(&self, job: Job, on_finish: OnFinish) -> Result<String, session::Error> {
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
