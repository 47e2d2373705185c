//! Where the server reads runs: the runs directory's files, or (`serve
//! --store postgres://...`) the store's `runbook_runs` and
//! `runbook_journal` rows through the same readers as `runbook runs
//! --store` ([`crate::store::postgres::runs`]). Approvals are answered
//! through the store's approvals (files, or PostgreSQL rows: the waiting
//! worker wakes on their NOTIFY).

use crate::durable::approvals::{
    decide_give, pending, ApprovalBox, ApprovalError, DecisionRecord, Give, RequestRecord,
};
use crate::durable::runs::{read_run, RunListing, RunRead};
use crate::session::RunMeta;
use crate::store::postgres::{runs::StoredRun, PgStore};
use std::path::PathBuf;
use std::sync::Arc;

/// Where runs are read.
#[derive(Clone)]
pub enum Runs {
    Files(PathBuf),
    Store(Arc<PgStore>),
}

/// One run, found.
pub enum RunAt {
    Dir(PathBuf),
    Store(Arc<PgStore>, Box<StoredRun>),
}

/// Why a run was not found.
pub enum NotFound {
    No(String),
    Failed(String),
}

/// Runs `f` on a runtime of its own (called off the async threads).
fn block<T>(f: impl std::future::Future<Output = T>) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(f))
        .map_err(|e| format!("cannot start a runtime: {e}"))
}

impl Runs {
    /// Every run, newest first.
    pub fn list(&self) -> Result<Vec<RunListing>, String> {
        match self {
            Runs::Files(dir) => crate::durable::runs::list_runs(dir).map_err(|e| e.to_string()),
            Runs::Store(s) => s.list_runs(),
        }
    }

    /// The run `id` (a plain run id), read.
    pub fn at(&self, id: &str) -> Result<RunAt, NotFound> {
        crate::session::check_run_id(id).map_err(NotFound::No)?;
        match self {
            Runs::Files(dir) => {
                let dir = dir.join(id);
                if !dir.join(crate::durable::journal::JOURNAL_FILE).is_file() {
                    return Err(NotFound::No(format!("no run `{id}`")));
                }
                Ok(RunAt::Dir(dir))
            }
            Runs::Store(s) => match s.run_exists(id) {
                Ok(true) => s
                    .stored_run(id)
                    .map(|r| RunAt::Store(s.clone(), Box::new(r)))
                    .map_err(NotFound::Failed),
                Ok(false) => Err(NotFound::No(format!("no run `{id}` in the store"))),
                Err(e) => Err(NotFound::Failed(e)),
            },
        }
    }
}

impl RunAt {
    /// The run's journal replayed; `run.json` (checked against the
    /// journal) if readable.
    pub fn read(&self) -> (RunRead, Option<RunMeta>) {
        match self {
            RunAt::Dir(dir) => (
                read_run(dir),
                crate::session::read_meta(dir).ok().map(|(m, _)| m),
            ),
            RunAt::Store(_, r) => {
                let meta = r
                    .check()
                    .ok()
                    .and_then(|c| serde_json::from_slice(&c.run_json).ok());
                (r.read(), meta)
            }
        }
    }

    /// The runbook's source as the run started it: (name, text).
    pub fn source(&self, meta: Option<&RunMeta>) -> Result<(String, String), String> {
        let kept = match self {
            RunAt::Dir(dir) => Some(dir.join(crate::session::RUN_SOURCE)),
            RunAt::Store(s, r) => {
                if let Some(found) = s.run_source(&r.run_id)? {
                    return Ok(found);
                }
                None
            }
        };
        let path = match (kept, meta) {
            (Some(k), _) if k.is_file() => k,
            // A dry run in the store keeps no source: the file its
            // run.json names, if this machine can read it.
            (_, Some(m)) => m.file.clone(),
            _ => return Err("run.json is missing or does not match the journal".into()),
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok((path.display().to_string(), text))
    }

    /// The run's questions waiting for an answer.
    pub fn pending(&self) -> Vec<RequestRecord> {
        match self {
            RunAt::Dir(dir) => pending(dir),
            RunAt::Store(s, r) => {
                let b = crate::store::postgres::approvals::PgApprovals::new(PgStore::clone(s));
                block(b.pending(&r.run_id))
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default()
            }
        }
    }

    /// Answers the question `key`.
    pub fn decide(&self, key: &str, give: &Give<'_>) -> Result<DecisionRecord, ApprovalError> {
        match self {
            RunAt::Dir(dir) => decide_give(dir, key, give),
            RunAt::Store(s, r) => {
                let b = crate::store::postgres::approvals::PgApprovals::new(PgStore::clone(s));
                block(b.decide(&r.run_id, key, give)).map_err(ApprovalError::Store)?
            }
        }
    }
}
