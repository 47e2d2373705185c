//! Where the state that several machines share lives: the run locks, in
//! the local files (the default, one machine) or in PostgreSQL (a team:
//! `--store postgres://...` or `store:` in `runbook.yaml`).
//!
//! The session ([`crate::session`]) opens the store once per run with
//! [`open`] and asks it for the run's lock ([`Store::lock`]); nothing else
//! knows which store is used.
//!
//! * [`Files`]: the flock-backed lock files of [`crate::durable::lock`],
//!   unchanged.
//! * [`postgres::PgStore`]: a row per lock key with a lease and a fencing
//!   epoch, renewed by a heartbeat thread while the run holds it; a run
//!   whose lease is lost (taken over after it expired, or not renewed in
//!   time) is cancelled: it starts no new action and does not roll back
//!   (it no longer holds the lock). Schema in versioned migrations,
//!   applied by `runbook store migrate`.
//!
//! A PostgreSQL store also keeps a copy of each live run's journal
//! ([`Store::journal`]: the same lines, written ahead like the file's);
//! `journal.jsonl` stays the one `runs` and `resume` read. Approvals
//! ([`Store::approvals`]) are the run directory's files or PostgreSQL rows
//! (docs/team.md says what is and is not shared).
//!
//! The password of a PostgreSQL store never appears in a URL (a URL is
//! shown in messages and in `ps`): it comes from the environment variable
//! `RUNBOOK_STORE_PASSWORD` (or the one `password_env:` names) or from the
//! file `password_file:` names, and every message about the store goes
//! through a [`Redactor`](crate::events::redact::Redactor) that knows it.

pub mod postgres;

use crate::durable::approvals::{ApprovalBox, FileBox};
use crate::durable::lock::{self, LockError, LockGuard};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The environment variable holding the store's password (unless the
/// config's `password_env:` names another).
pub const PASSWORD_ENV: &str = "RUNBOOK_STORE_PASSWORD";

/// How long a lease lasts without a heartbeat, unless configured.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// `store:` in `runbook.yaml`.
///
/// ```yaml
/// store:
///   url: postgres://runbook@db.internal:5432/runbook
///   password_file: /etc/runbook/store-password   # or password_env: NAME
///   ca_file: /etc/runbook/db-ca.pem   # TLS, trusting this CA too
///   lease: 30s
///   grace: 60s     # a run silent this long is orphaned: taken over
///   poll: 2s       # how often workers and waiting runs look anyway
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://USER@HOST:PORT/DB` (no password); absent: the files.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A file holding the password (its first line).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Certificates (PEM) to trust for the server's, besides the
    /// system's; naming one requires TLS (as `sslmode=require` does).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long a run's lock outlives its last heartbeat.
    #[serde(default, with = "crate::plan::dur::option")]
    pub lease: Option<Duration>,
    /// How long a run's heartbeat may be silent before the run is
    /// orphaned and another machine may take it over (default: the lease;
    /// never shorter than it).
    #[serde(default, with = "crate::plan::dur::option")]
    pub grace: Option<Duration>,
    /// How often a worker looks for queued requests and a run waiting on
    /// an approval reads its row, in case a `NOTIFY` was lost (default: a
    /// third of the lease for a worker, 2s for an approval).
    #[serde(default, with = "crate::plan::dur::option")]
    pub poll: Option<Duration>,
}

/// A store: where a run's lock is taken.
pub trait Store: Send + Sync {
    /// What the store is, for messages (a URL without password).
    fn describe(&self) -> String;

    /// Takes the lock `key` for `run_id`, for as long as the returned
    /// [`RunLock`] lives. `break_stale` takes over a lock whose holder is
    /// known dead (files: `--break-lock`; PostgreSQL takes over an expired
    /// lease in any case). `on_lost` is called once, from another thread,
    /// if the lock is lost while held (PostgreSQL: the lease).
    fn lock(
        &self,
        key: &str,
        run_id: &str,
        break_stale: bool,
        on_lost: Box<dyn FnOnce() + Send>,
    ) -> Result<RunLock, String>;

    /// The store's own copy of a live run's journal, a second critical
    /// [`Sink`](crate::events::Sink) beside `journal.jsonl` that writes
    /// the same lines (same bytes, same hash chain) and holds the
    /// write-ahead rule too; `None` for the files (the journal file is
    /// the journal). See [`postgres::journal`].
    fn journal(
        &self,
        _run: &JournalRun<'_>,
    ) -> Result<Option<Box<dyn crate::events::Sink>>, String> {
        Ok(None)
    }

    /// Where the approvals of the run in `run_dir` are asked and answered
    /// (files: `run_dir/approvals/`; PostgreSQL: rows, by run id).
    fn approvals(&self, run_dir: &Path) -> Arc<dyn ApprovalBox>;
}

/// A run whose journal a store keeps ([`Store::journal`]).
#[derive(Debug, Clone, Copy)]
pub struct JournalRun<'a> {
    pub run_id: &'a str,
    /// The runbook's name.
    pub runbook: &'a str,
    /// `run.json`'s bytes (its SHA-256 is in the first line).
    pub run_json: &'a [u8],
    /// The journal file's lines so far (a resumed run; empty for a new
    /// one), whose chain was verified: lines the store lacks are copied
    /// first, and the store's chain goes on from the last one.
    pub existing: &'a [u8],
    /// What another machine needs to take the run over (a new run; kept
    /// as they are when resuming).
    pub takeover: Option<TakeoverData<'a>>,
    /// The owner epoch this process claimed by taking the run over
    /// ([`postgres::takeover`]); `None`: a new run (epoch 1), or a resume
    /// on the run's own machine, which takes the next epoch.
    pub epoch: Option<i64>,
}

/// What a new run stores for a takeover (never a secret: those are read
/// again from their sources on the machine that takes over).
#[derive(Debug, Clone, Copy)]
pub struct TakeoverData<'a> {
    /// The runbook's source text and the name diagnostics give it.
    pub source: &'a str,
    pub source_name: &'a str,
    /// The text of the runbook.yaml the run started with, if any.
    pub config: Option<&'a str>,
    /// The run's non-secret inputs, as a JSON object.
    pub inputs: &'a str,
}

/// A held run lock; released when dropped.
pub enum RunLock {
    File(Box<LockGuard>),
    Postgres(postgres::Lease),
}

impl RunLock {
    /// A warning to log when a stale lock was broken to take this one.
    pub fn broke_message(&self) -> Option<String> {
        match self {
            RunLock::File(g) => g.broke_message(),
            RunLock::Postgres(l) => l.took_over_message(),
        }
    }
}

/// The local files: locks under a machine's locks directory.
pub struct Files {
    pub locks_dir: PathBuf,
}

impl Store for Files {
    fn describe(&self) -> String {
        format!("files (locks in {})", self.locks_dir.display())
    }

    fn lock(
        &self,
        key: &str,
        run_id: &str,
        break_stale: bool,
        _on_lost: Box<dyn FnOnce() + Send>,
    ) -> Result<RunLock, String> {
        match lock::acquire(&self.locks_dir, key, run_id, break_stale) {
            Ok(g) => Ok(RunLock::File(Box::new(g))),
            // A run taking its own lock back (resume): the process that
            // held it died.
            Err(LockError::Stale { holder, .. }) if holder.run_id == run_id => {
                lock::acquire(&self.locks_dir, key, run_id, true)
                    .map(|g| RunLock::File(Box::new(g)))
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn approvals(&self, run_dir: &Path) -> Arc<dyn ApprovalBox> {
        Arc::new(FileBox {
            run_dir: run_dir.to_owned(),
        })
    }
}

/// Where a store is chosen from: `--store`, then the config's `store:`.
#[derive(Debug, Clone, Default)]
pub struct Choice<'a> {
    /// `--store URL`.
    pub flag: Option<&'a str>,
    /// `store:` in `runbook.yaml`.
    pub config: Option<&'a StoreConfig>,
    /// `--locks-dir`, then `locks_dir:` (files only).
    pub locks_dir_flag: Option<&'a Path>,
    pub locks_dir_config: Option<&'a Path>,
}

/// The store a run uses: PostgreSQL when a URL is given, else the files.
pub fn open(choice: &Choice<'_>) -> Result<Box<dyn Store>, String> {
    let url = choice
        .flag
        .or_else(|| choice.config.and_then(|c| c.url.as_deref()));
    match url {
        None | Some("files") => {
            let locks_dir = lock::locks_dir(choice.locks_dir_flag, choice.locks_dir_config)?;
            Ok(Box::new(Files { locks_dir }))
        }
        Some(url) => {
            let default = StoreConfig::default();
            let config = choice.config.unwrap_or(&default);
            Ok(Box::new(postgres::PgStore::new(url, config)?))
        }
    }
}

/// The PostgreSQL store named by `--store` or the config (for `runbook
/// store migrate`); an error when neither names one.
pub fn open_postgres(
    flag: Option<&str>,
    config: Option<&StoreConfig>,
) -> Result<postgres::PgStore, String> {
    let default = StoreConfig::default();
    let config = config.unwrap_or(&default);
    match flag.or(config.url.as_deref()) {
        Some(url) => postgres::PgStore::new(url, config),
        None => Err(
            "no PostgreSQL store named: give --store postgres://USER@HOST:PORT/DB or `store: { url: ... }` in runbook.yaml"
                .to_owned(),
        ),
    }
}
