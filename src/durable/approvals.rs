//! Approvals from another terminal.
//!
//! A step waiting on `approve` writes a request file; anyone who can write
//! to the run directory answers it with `runbook approve RUN_ID NODE` or
//! `runbook deny RUN_ID NODE`, which writes a decision file; the waiting run
//! polls for it. No TTY is needed on either side.
//!
//! Files, in `<run_dir>/approvals/` (names: [`sys::file_name_for`] of the
//! approval key, the node id, or `node[item]` inside a `for`):
//!
//! * `<key>.request.json`: [`RequestRecord`], written (atomically) when the
//!   question is asked. Its `id` is fresh for every ask (a retry, a
//!   resumed run asking again), and a decision answers one `id`.
//! * `<key>.decision.json`: [`DecisionRecord`], created atomically and
//!   exclusively (a temporary file hard-linked into place, which fails if
//!   the name exists): of two people deciding at once, exactly one wins, the
//!   other is told who did. The waiting run also *closes* the request the
//!   same way when it stops waiting (answered on its own terminal, timed
//!   out, cancelled), so a late `runbook approve` says the question is
//!   closed instead of recording an answer nobody reads.
//! * A decision for an older request (a new ask supersedes it) is kept as
//!   `<key>.decision.<request id>.json`.
//!
//! Free text from the decider (`--as`, `--reason`) is cleaned of control
//! characters and cut to a sane length: it is shown on the run's console.
//!
//! # Where it is used
//!
//! * `runbook run` and `runbook resume` wrap a live run's approver in an
//!   [`InboxApprover`]; the executor emits `approval_asked` before `ask`
//!   and `approval_given` / `approval_refused` with the returned
//!   [`ApprovalDecision`]'s `by` and `reason` after it.
//! * `runbook approve` / `runbook deny RUN_ID NODE [--as NAME] [--reason
//!   TEXT]` call [`decide`]; without NODE, they list [`pending`].

use super::sys;
use crate::adapters::approve::PromptWriter;
use crate::adapters::{
    AdapterError, AdapterResult, ApprovalDecision, ApprovalRequest, ApproveAdapter, Call,
    ErrorKind, RefusedNote,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The approvals directory in a run directory.
pub const APPROVALS_DIR: &str = "approvals";

/// How often a waiting run looks for a decision.
pub const POLL_EVERY: Duration = Duration::from_millis(200);

/// Longest `by` kept.
const MAX_BY: usize = 100;
/// Longest reason kept.
const MAX_REASON: usize = 2000;

/// A question waiting for an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Fresh for every ask.
    pub id: String,
    /// The approval key: the node id, or `node[item]`.
    pub key: String,
    pub run_id: String,
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The question (display form: no secret).
    pub message: String,
    /// RFC 3339 UTC.
    pub asked: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The process waiting for the answer.
    pub pid: u32,
    pub host: String,
    /// Who started the run (see docs/team.md, "Identities").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// `approve ... by other`: whoever started the run may not approve.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_other: bool,
}

/// How a question was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// `runbook approve` / `runbook deny`.
    Command,
    /// The web page or JSON API of `runbook serve` (`by`: the token's name).
    Web,
    /// Answered on the run's own terminal.
    Terminal,
    /// Nobody answered in time (refused).
    Timeout,
    /// The run was cancelled while waiting (refused).
    Cancelled,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The [`RequestRecord::id`] answered.
    pub request_id: String,
    pub key: String,
    pub approved: bool,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339 UTC.
    pub decided: String,
    pub via: Via,
}

impl DecisionRecord {
    pub fn decision(&self) -> ApprovalDecision {
        ApprovalDecision {
            approved: self.approved,
            by: self.by.clone(),
            reason: self.reason.clone(),
        }
    }
}

impl std::fmt::Display for DecisionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.via {
            Via::Timeout => write!(f, "timed out (refused) at {}", self.decided)?,
            Via::Cancelled => write!(f, "cancelled (refused) at {}", self.decided)?,
            Via::Command | Via::Terminal | Via::Web => write!(
                f,
                "{} by {} at {}{}",
                if self.approved { "approved" } else { "denied" },
                self.by,
                self.decided,
                match self.via {
                    Via::Terminal => " on the run's terminal",
                    Via::Web => " on the web page",
                    _ => "",
                }
            )?,
        }
        if let Some(r) = &self.reason {
            write!(f, " ({r})")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no approval is pending for `{key}` in this run; {}", pending_list(.pending))]
    NoRequest { key: String, pending: Vec<String> },
    #[error("the approval of `{key}` was already closed: {record}")]
    AlreadyDecided {
        key: String,
        record: Box<DecisionRecord>,
    },
    #[error(
        "the process that asked for the approval of `{key}` (pid {pid}) is gone: the run was \
         interrupted; resume it with `runbook resume {run_id}`, and it will ask again"
    )]
    NotWaiting {
        key: String,
        pid: u32,
        run_id: String,
    },
    #[error(
        "the run asked again for the approval of `{key}` while this decision was being \
         recorded (a retry or a resume): decide again"
    )]
    Superseded { key: String },
    #[error("cannot read or write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a valid approval file: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{why}; the attempt is recorded")]
    SelfApproval { key: String, why: String },
    #[error("{0}")]
    Store(String),
}

fn pending_list(p: &[String]) -> String {
    if p.is_empty() {
        "nothing is waiting for approval".into()
    } else {
        format!("waiting for approval: {}", p.join(", "))
    }
}

/// The approval key of a call: the node, or `node[item]` in a `for`.
pub fn approval_key(node: &str, item: Option<&str>) -> String {
    match item {
        Some(item) => format!("{node}[{item}]"),
        None => node.to_owned(),
    }
}

/// Who approves by default: the user running `runbook approve`.
pub fn default_approver() -> String {
    sys::user()
}

fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join(APPROVALS_DIR)
}

fn request_path(run_dir: &Path, key: &str) -> PathBuf {
    dir(run_dir).join(format!("{}.request.json", sys::file_name_for(key)))
}

fn decision_path(run_dir: &Path, key: &str) -> PathBuf {
    dir(run_dir).join(format!("{}.decision.json", sys::file_name_for(key)))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, ApprovalError> {
    match crate::fs_read::read(path, crate::fs_read::APPROVAL) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ApprovalError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ApprovalError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn to_json<T: Serialize>(v: &T) -> io::Result<Vec<u8>> {
    let mut b = serde_json::to_vec_pretty(v).map_err(io::Error::other)?;
    b.push(b'\n');
    Ok(b)
}

fn fresh_id(key: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = format!(
        "{key}\0{}\0{nanos}\0{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    crate::digest::sha256_hex(seed.as_bytes())[..16].to_owned()
}

/// Moves a decision that answers another request out of the way.
fn archive_decision(run_dir: &Path, key: &str, old: Option<&DecisionRecord>) -> io::Result<()> {
    let from = decision_path(run_dir, key);
    let tag = match old {
        Some(d) => sys::file_name_for(&d.request_id),
        None => format!("unreadable-{}", fresh_id(key)),
    };
    let to = dir(run_dir).join(format!("{}.decision.{tag}.json", sys::file_name_for(key)));
    match std::fs::rename(&from, &to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes a request for `node` (no item, no timeout, run id from the run
/// directory's name). See [`request_with`].
pub fn request(run_dir: &Path, node: &str, message: &str) -> io::Result<RequestRecord> {
    let run_id = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    request_with(run_dir, &run_id, node, None, message, None)
}

/// Writes `<key>.request.json` with a fresh id (replacing an older
/// request for the same key, whose decision, if any, is archived).
pub fn request_with(
    run_dir: &Path,
    run_id: &str,
    node: &str,
    item: Option<&str>,
    message: &str,
    timeout: Option<Duration>,
) -> io::Result<RequestRecord> {
    ask_file(
        run_dir,
        &Ask {
            run_id,
            node,
            item,
            message,
            timeout,
            started_by: None,
            by_other: false,
        },
    )
}

/// A fresh request record for `ask`.
pub fn new_request(ask: &Ask<'_>) -> RequestRecord {
    let key = approval_key(ask.node, ask.item);
    RequestRecord {
        id: fresh_id(&key),
        key,
        run_id: ask.run_id.to_owned(),
        node: ask.node.to_owned(),
        item: ask.item.map(str::to_owned),
        message: ask.message.to_owned(),
        asked: sys::now_rfc3339(),
        timeout_ms: ask
            .timeout
            .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        pid: std::process::id(),
        host: sys::hostname(),
        started_by: ask.started_by.map(str::to_owned),
        by_other: ask.by_other,
    }
}

fn ask_file(run_dir: &Path, ask: &Ask<'_>) -> io::Result<RequestRecord> {
    std::fs::create_dir_all(dir(run_dir))?;
    let record = new_request(ask);
    let key = &record.key;
    let dpath = decision_path(run_dir, key);
    if dpath.exists() {
        let old = read_json::<DecisionRecord>(&dpath).ok().flatten();
        archive_decision(run_dir, key, old.as_ref())?;
    }
    sys::write_atomic(&request_path(run_dir, key), &to_json(&record)?, true)?;
    Ok(record)
}

/// The decision answering `request`, if there is one.
pub fn decision_for(
    run_dir: &Path,
    request: &RequestRecord,
) -> Result<Option<DecisionRecord>, ApprovalError> {
    Ok(
        read_json::<DecisionRecord>(&decision_path(run_dir, &request.key))?
            .filter(|d| d.request_id == request.id),
    )
}

/// Requests that have no decision yet, by key.
pub fn pending(run_dir: &Path) -> Vec<RequestRecord> {
    let Ok(entries) = std::fs::read_dir(dir(run_dir)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(".request.json") || name.starts_with('.') {
            continue;
        }
        let Ok(Some(req)) = read_json::<RequestRecord>(&entry.path()) else {
            continue;
        };
        if matches!(decision_for(run_dir, &req), Ok(None)) {
            out.push(req);
        }
    }
    out.sort_by(|a, b| a.asked.cmp(&b.asked).then(a.key.cmp(&b.key)));
    out
}

/// Places `record` as the decision of `request`, exclusively. Returns the
/// decision in force: `Ok(record)` if it was placed, `Err(existing)` if
/// another decision for the same request got there first.
fn place(
    run_dir: &Path,
    request: &RequestRecord,
    record: &DecisionRecord,
) -> Result<Result<DecisionRecord, DecisionRecord>, ApprovalError> {
    let path = decision_path(run_dir, &request.key);
    let io_err = |source| ApprovalError::Io {
        path: path.clone(),
        source,
    };
    let bytes = to_json(record).map_err(io_err)?;
    for _ in 0..3 {
        match sys::write_atomic(&path, &bytes, false) {
            Ok(()) => return Ok(Ok(record.clone())),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let existing = read_json::<DecisionRecord>(&path).ok().flatten();
                match existing {
                    Some(d) if d.request_id == request.id => return Ok(Err(d)),
                    // A decision of an older request, or unreadable: archive.
                    other => {
                        archive_decision(run_dir, &request.key, other.as_ref()).map_err(io_err)?
                    }
                }
            }
            Err(e) => return Err(io_err(e)),
        }
    }
    Err(io_err(io::Error::other(
        "the decision file kept reappearing",
    )))
}

/// Records a decision from another terminal (`runbook approve` / `deny`)
/// for the pending request `key` (a node id, or `node[item]`) of the run
/// in `run_dir`. Fails if nothing is pending for it, if it was already
/// decided or closed (saying how), or if the process that asked is gone.
pub fn decide(
    run_dir: &Path,
    key: &str,
    approve: bool,
    by: &str,
    reason: Option<&str>,
) -> Result<DecisionRecord, ApprovalError> {
    decide_via(run_dir, key, approve, by, reason, Via::Command)
}

/// [`decide`], saying where the decision came from (`runbook serve`
/// records [`Via::Web`]).
pub fn decide_via(
    run_dir: &Path,
    key: &str,
    approve: bool,
    by: &str,
    reason: Option<&str>,
    via: Via,
) -> Result<DecisionRecord, ApprovalError> {
    decide_give(
        run_dir,
        key,
        &Give {
            approve,
            by,
            reason,
            via,
        },
    )
}

/// [`decide_via`], the decision given as a [`Give`]. A self-approval of
/// an `approve ... by other` step is refused
/// ([`ApprovalError::SelfApproval`]) and kept as a [`RefusedAttempt`].
pub fn decide_give(
    run_dir: &Path,
    key: &str,
    give: &Give<'_>,
) -> Result<DecisionRecord, ApprovalError> {
    let rpath = request_path(run_dir, key);
    let Some(request) = read_json::<RequestRecord>(&rpath)? else {
        return Err(ApprovalError::NoRequest {
            key: key.to_owned(),
            pending: pending(run_dir).into_iter().map(|r| r.key).collect(),
        });
    };
    if let Some(existing) = decision_for(run_dir, &request)? {
        return Err(ApprovalError::AlreadyDecided {
            key: key.to_owned(),
            record: Box::new(existing),
        });
    }
    if let Some(gone) = asker_gone(&request) {
        return Err(gone);
    }
    if let Some(why) = self_approval(&request, give) {
        append_refused(
            run_dir,
            &request.key,
            &refused_attempt(&request, give, &why),
        )?;
        return Err(ApprovalError::SelfApproval {
            key: key.to_owned(),
            why,
        });
    }
    let record = decision_record(&request, give);
    match place(run_dir, &request, &record)? {
        Ok(placed) => {
            // Asked again meanwhile? Then this answered a question that no
            // longer stands.
            match read_json::<RequestRecord>(&rpath)? {
                Some(now) if now.id == request.id => Ok(placed),
                _ => Err(ApprovalError::Superseded {
                    key: key.to_owned(),
                }),
            }
        }
        Err(existing) => Err(ApprovalError::AlreadyDecided {
            key: key.to_owned(),
            record: Box::new(existing),
        }),
    }
}

// --------------------------------------------------------------- boxes --

/// A question to ask: [`ApprovalBox::ask`].
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub run_id: &'a str,
    pub node: &'a str,
    pub item: Option<&'a str>,
    pub message: &'a str,
    pub timeout: Option<Duration>,
    /// Who started the run.
    pub started_by: Option<&'a str>,
    /// `approve ... by other`.
    pub by_other: bool,
}

/// A decision someone gives: [`ApprovalBox::decide`].
#[derive(Debug, Clone, Copy)]
pub struct Give<'a> {
    pub approve: bool,
    pub by: &'a str,
    pub reason: Option<&'a str>,
    pub via: Via,
}

/// An attempt to approve that was refused without answering the question
/// (the run's starter approving an `approve ... by other` step). Kept
/// beside the request; the waiting run records it in its journal
/// (`approval_attempt_refused`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedAttempt {
    pub request_id: String,
    pub by: String,
    pub via: Via,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it was refused.
    pub why: String,
    /// RFC 3339 UTC.
    pub at: String,
}

/// Where approval requests and decisions are kept: the run directory's
/// files ([`FileBox`]) or the rows of a PostgreSQL store
/// (`store::postgres::approvals`). The waiting run asks and waits; any
/// process that reaches the same place decides.
#[async_trait]
pub trait ApprovalBox: Send + Sync {
    /// Records a question (a fresh request id; it supersedes an older
    /// question of the same key).
    async fn ask(&self, ask: &Ask<'_>) -> Result<RequestRecord, ApprovalError>;

    /// The decision answering `request`, if there is one.
    async fn decision_for(
        &self,
        request: &RequestRecord,
    ) -> Result<Option<DecisionRecord>, ApprovalError>;

    /// The refused attempts on `request`, after the first `seen`.
    async fn refused_since(
        &self,
        request: &RequestRecord,
        seen: usize,
    ) -> Result<Vec<RefusedAttempt>, ApprovalError>;

    /// Places `record` (the waiting run closing its question) unless a
    /// decision got there first: `Ok(record)`, or `Err(the one in force)`.
    async fn close(
        &self,
        request: &RequestRecord,
        record: &DecisionRecord,
    ) -> Result<Result<DecisionRecord, DecisionRecord>, ApprovalError>;

    /// Answers the pending question `key` of run `run_id` (see [`decide`]).
    async fn decide(
        &self,
        run_id: &str,
        key: &str,
        give: &Give<'_>,
    ) -> Result<DecisionRecord, ApprovalError>;

    /// The questions of `run_id` that have no decision yet.
    async fn pending(&self, run_id: &str) -> Result<Vec<RequestRecord>, ApprovalError>;

    /// Resolves when an answer may have come (a notification); never, for
    /// a box that is polled.
    async fn changed(&self) {
        std::future::pending::<()>().await
    }

    /// How often a waiting run looks for an answer.
    fn poll(&self) -> Duration {
        POLL_EVERY
    }
}

/// Why the run's starter may not approve step `key` (`approve ... by
/// other`), in the words every store and the drills use.
pub fn starter_refused(starter: &str, key: &str) -> String {
    format!(
        "`{starter}` started this run, and step `{key}` must be approved by someone else \
         (`approve ... by other`)"
    )
}

/// Why `give` may not answer `request`: the run's starter approving an
/// `approve ... by other` step (denying stays allowed: it stops the run).
/// The check is the same on every store.
pub fn self_approval(request: &RequestRecord, give: &Give<'_>) -> Option<String> {
    if !request.by_other || !give.approve {
        return None;
    }
    match request.started_by.as_deref() {
        Some(starter) if starter != give.by => None,
        Some(starter) => Some(starter_refused(starter, &request.key)),
        None => Some(format!(
            "step `{}` must be approved by someone other than whoever started the run \
             (`approve ... by other`), and who started it is not known",
            request.key
        )),
    }
}

/// The decision record `give` makes for `request` (free text cleaned).
pub fn decision_record(request: &RequestRecord, give: &Give<'_>) -> DecisionRecord {
    let by = sys::clean_text(give.by, MAX_BY);
    DecisionRecord {
        request_id: request.id.clone(),
        key: request.key.clone(),
        approved: give.approve,
        by: if by.is_empty() { sys::user() } else { by },
        reason: give
            .reason
            .map(|r| sys::clean_text(r, MAX_REASON))
            .filter(|r| !r.is_empty()),
        decided: sys::now_rfc3339(),
        via: give.via,
    }
}

/// The attempt record of a refused `give`.
pub fn refused_attempt(request: &RequestRecord, give: &Give<'_>, why: &str) -> RefusedAttempt {
    let d = decision_record(request, give);
    RefusedAttempt {
        request_id: request.id.clone(),
        by: d.by,
        via: give.via,
        reason: d.reason,
        why: why.to_owned(),
        at: d.decided,
    }
}

/// The process that asked is known gone (same host, pid dead).
pub fn asker_gone(request: &RequestRecord) -> Option<ApprovalError> {
    (request.host == sys::hostname() && sys::pid_alive(request.pid) == Some(false)).then(|| {
        ApprovalError::NotWaiting {
            key: request.key.clone(),
            pid: request.pid,
            run_id: request.run_id.clone(),
        }
    })
}

/// The run directory's files (the default store): see the module docs.
#[derive(Debug, Clone)]
pub struct FileBox {
    pub run_dir: PathBuf,
}

fn refused_path(run_dir: &Path, key: &str) -> PathBuf {
    dir(run_dir).join(format!("{}.refused.jsonl", sys::file_name_for(key)))
}

/// Appends a refused attempt (one line, one `write` on an `O_APPEND`
/// file: concurrent appends do not interleave).
fn append_refused(
    run_dir: &Path,
    key: &str,
    attempt: &RefusedAttempt,
) -> Result<(), ApprovalError> {
    use std::io::Write;
    let path = refused_path(run_dir, key);
    let io_err = |source| ApprovalError::Io {
        path: path.clone(),
        source,
    };
    let mut line = serde_json::to_vec(attempt)
        .map_err(io::Error::other)
        .map_err(io_err)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_err)?;
    f.write_all(&line).map_err(io_err)?;
    f.sync_data().map_err(io_err)
}

/// The refused attempts on `request` (files).
pub fn refused_for(run_dir: &Path, request: &RequestRecord) -> Vec<RefusedAttempt> {
    let Ok(bytes) = crate::fs_read::read(
        &refused_path(run_dir, &request.key),
        crate::fs_read::APPROVAL,
    ) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| serde_json::from_str::<RefusedAttempt>(l).ok())
        .filter(|a| a.request_id == request.id)
        .collect()
}

#[async_trait]
impl ApprovalBox for FileBox {
    async fn ask(&self, ask: &Ask<'_>) -> Result<RequestRecord, ApprovalError> {
        ask_file(&self.run_dir, ask).map_err(|source| ApprovalError::Io {
            path: dir(&self.run_dir),
            source,
        })
    }

    async fn decision_for(
        &self,
        request: &RequestRecord,
    ) -> Result<Option<DecisionRecord>, ApprovalError> {
        decision_for(&self.run_dir, request)
    }

    async fn refused_since(
        &self,
        request: &RequestRecord,
        seen: usize,
    ) -> Result<Vec<RefusedAttempt>, ApprovalError> {
        Ok(refused_for(&self.run_dir, request)
            .into_iter()
            .skip(seen)
            .collect())
    }

    async fn close(
        &self,
        request: &RequestRecord,
        record: &DecisionRecord,
    ) -> Result<Result<DecisionRecord, DecisionRecord>, ApprovalError> {
        place(&self.run_dir, request, record)
    }

    async fn decide(
        &self,
        _run_id: &str,
        key: &str,
        give: &Give<'_>,
    ) -> Result<DecisionRecord, ApprovalError> {
        decide_give(&self.run_dir, key, give)
    }

    async fn pending(&self, _run_id: &str) -> Result<Vec<RequestRecord>, ApprovalError> {
        Ok(pending(&self.run_dir))
    }
}

// ------------------------------------------------------------ approver --

/// An approver that asks its inner approver (the terminal prompt) and, at
/// the same time, waits for `runbook approve` / `deny` from another
/// terminal (or the web page), through its [`ApprovalBox`]; the first
/// answer wins. See the module docs.
///
/// * Pre-approved (`--approve STEP`): the inner approver answers, nothing
///   is written.
/// * `approve ... by other`: the inner approver (the terminal of whoever
///   started the run) is not asked; only another identity can approve.
///   Refused attempts are passed to the executor as they happen.
/// * The inner approver failing to ask (`Refused`: no terminal; or any
///   error but a timeout or a cancellation) is not an answer: the wait goes
///   on for another terminal's decision.
/// * The request's timeout: `Err(Timeout)`; `Call::cancel`:
///   `Err(Cancelled)`. Both close the request (a late decision is refused).
pub struct InboxApprover {
    inbox: Arc<dyn ApprovalBox>,
    inner: Arc<dyn ApproveAdapter>,
    poll: Duration,
    notice: Option<PromptWriter>,
    started_by: Option<String>,
}

impl std::fmt::Debug for InboxApprover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxApprover")
            .field("poll", &self.poll)
            .field("started_by", &self.started_by)
            .finish_non_exhaustive()
    }
}

impl InboxApprover {
    /// Requests and decisions in the files of `run_dir`.
    pub fn new(run_dir: impl Into<PathBuf>, inner: Arc<dyn ApproveAdapter>) -> Self {
        Self::with_box(
            Arc::new(FileBox {
                run_dir: run_dir.into(),
            }),
            inner,
        )
    }

    /// Requests and decisions in `inbox` (a store's).
    pub fn with_box(inbox: Arc<dyn ApprovalBox>, inner: Arc<dyn ApproveAdapter>) -> Self {
        InboxApprover {
            poll: inbox.poll(),
            inbox,
            inner,
            notice: None,
            started_by: None,
        }
    }

    /// Polls every `every` instead of the box's interval.
    pub fn poll_every(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(1));
        self
    }

    /// Who started the run (checked by `approve ... by other`).
    pub fn started_by(mut self, who: impl Into<String>) -> Self {
        self.started_by = Some(who.into());
        self
    }

    /// Where to tell people how to answer from another terminal (stderr).
    pub fn with_notice(mut self, out: PromptWriter) -> Self {
        self.notice = Some(out);
        self
    }

    fn say(&self, text: &str) {
        if let Some(out) = &self.notice {
            let mut w = out.lock().unwrap_or_else(|p| p.into_inner());
            let _ = w.write_all(text.as_bytes()).and_then(|()| w.flush());
        }
    }

    /// Closes the request with `record` unless a decision got there first;
    /// returns the decision in force.
    async fn close(&self, request: &RequestRecord, record: DecisionRecord) -> DecisionRecord {
        match self.inbox.close(request, &record).await {
            Ok(Ok(placed)) => placed,
            Ok(Err(existing)) => existing,
            // Cannot write: the answer stands; a late `approve` will be
            // told the process is gone, or will be ignored.
            Err(_) => record,
        }
    }

    fn closing(request: &RequestRecord, via: Via, reason: &str) -> DecisionRecord {
        DecisionRecord {
            request_id: request.id.clone(),
            key: request.key.clone(),
            approved: false,
            by: match via {
                Via::Timeout => "timeout".into(),
                _ => "cancellation".into(),
            },
            reason: Some(reason.to_owned()),
            decided: sys::now_rfc3339(),
            via,
        }
    }

    /// The decision in force after closing on a timeout or cancellation:
    /// `Ok` if a real decision got there first, else `err`.
    async fn close_refused(
        &self,
        request: &RequestRecord,
        via: Via,
        err: AdapterError,
    ) -> AdapterResult<ApprovalDecision> {
        let d = self
            .close(request, Self::closing(request, via, &err.message))
            .await;
        if d.via == via {
            Err(err)
        } else {
            self.said_elsewhere(&d);
            Ok(d.decision())
        }
    }

    fn said_elsewhere(&self, d: &DecisionRecord) {
        if matches!(d.via, Via::Command | Via::Web) {
            self.say(&format!(
                "\n{} from another terminal: {d}\n",
                if d.approved { "Approved" } else { "Denied" }
            ));
        }
    }

    /// Passes on the refused attempts not seen yet; how many there are.
    async fn report_refused(
        &self,
        request: &RequestRecord,
        req: &ApprovalRequest,
        seen: usize,
    ) -> usize {
        let Ok(new) = self.inbox.refused_since(request, seen).await else {
            return seen;
        };
        for a in &new {
            self.say(&format!(
                "Refused: {} tried to approve step `{}` ({})\n",
                a.by, request.key, a.why
            ));
            if let Some(tx) = &req.attempts {
                let _ = tx.send(RefusedNote {
                    by: a.by.clone(),
                    via: via_name(a.via).to_owned(),
                    reason: a.reason.clone(),
                    why: a.why.clone(),
                });
            }
        }
        seen + new.len()
    }
}

/// The journal's name of a [`Via`].
pub fn via_name(via: Via) -> &'static str {
    match via {
        Via::Command => "command",
        Via::Web => "web",
        Via::Terminal => "terminal",
        Via::Timeout => "timeout",
        Via::Cancelled => "cancelled",
    }
}

fn step_of(call: &Call) -> String {
    match &call.item {
        Some(item) => format!("`{}` (item {item})", call.node),
        None => format!("`{}`", call.node),
    }
}

#[async_trait]
impl ApproveAdapter for InboxApprover {
    async fn ask(&self, call: &Call, req: &ApprovalRequest) -> AdapterResult<ApprovalDecision> {
        if req.preapproved && !req.by_other {
            return self.inner.ask(call, req).await;
        }
        if call.cancel.is_cancelled() {
            return Err(AdapterError::cancelled());
        }
        let request = self
            .inbox
            .ask(&Ask {
                run_id: &call.run_id,
                node: &call.node,
                item: call.item.as_deref(),
                message: &req.message,
                timeout: req.timeout,
                started_by: self.started_by.as_deref(),
                by_other: req.by_other,
            })
            .await
            .map_err(|e| {
                AdapterError::new(
                    ErrorKind::Other,
                    format!(
                        "cannot record the approval request of step {}: {e}",
                        step_of(call)
                    ),
                )
            })?;
        let key_arg = shlex::try_quote(&request.key)
            .map(|q| q.into_owned())
            .unwrap_or_else(|_| request.key.clone());
        let run_arg = shlex::try_quote(&call.run_id)
            .map(|q| q.into_owned())
            .unwrap_or_else(|_| call.run_id.clone());
        let who = match (req.by_other, &self.started_by) {
            (true, Some(starter)) => format!(" (by someone other than {starter})"),
            (true, None) => " (by someone other than whoever started the run)".to_owned(),
            (false, _) => String::new(),
        };
        self.say(&format!(
            "Waiting for approval of step {}{who}: from another terminal, \
             `runbook approve {run_arg} {key_arg}` or `runbook deny {run_arg} {key_arg}`\n",
            step_of(call)
        ));

        let timeout_err = || {
            AdapterError::new(
                ErrorKind::Timeout,
                format!(
                    "no answer to the approval of step {} within {} (neither on this terminal \
                     nor with `runbook approve`)",
                    step_of(call),
                    humantime::format_duration(req.timeout.unwrap_or_default())
                ),
            )
        };
        // The run's own terminal is its starter's: not asked when the step
        // needs someone else.
        let inner = self.inner.ask(call, req);
        tokio::pin!(inner);
        let mut inner_live = !req.by_other;
        let deadline = async {
            match req.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refused_seen = 0;
        loop {
            let look = tokio::select! {
                biased;
                _ = call.cancel.cancelled() => {
                    return self.close_refused(&request, Via::Cancelled, AdapterError::cancelled()).await;
                }
                answer = &mut inner, if inner_live => match answer {
                    Ok(d) => {
                        let record = DecisionRecord {
                            request_id: request.id.clone(),
                            key: request.key.clone(),
                            approved: d.approved,
                            by: d.by.clone(),
                            reason: d.reason.clone(),
                            decided: sys::now_rfc3339(),
                            via: Via::Terminal,
                        };
                        let in_force = self.close(&request, record).await;
                        if in_force.via == Via::Terminal {
                            return Ok(d);
                        }
                        self.said_elsewhere(&in_force);
                        return Ok(in_force.decision());
                    }
                    Err(e) if e.kind == ErrorKind::Timeout => {
                        return self.close_refused(&request, Via::Timeout, timeout_err()).await;
                    }
                    Err(e) if e.kind == ErrorKind::Cancelled => {
                        return self.close_refused(&request, Via::Cancelled, e).await;
                    }
                    Err(_) => {
                        inner_live = false;
                        false
                    }
                },
                _ = tick.tick() => true,
                _ = self.inbox.changed() => true,
                _ = &mut deadline => {
                    return self.close_refused(&request, Via::Timeout, timeout_err()).await;
                }
            };
            if look {
                if req.by_other {
                    refused_seen = self.report_refused(&request, req, refused_seen).await;
                }
                if let Ok(Some(d)) = self.inbox.decision_for(&request).await {
                    self.said_elsewhere(&d);
                    return Ok(d.decision());
                }
            }
        }
    }
}
