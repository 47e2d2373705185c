//! `alerts.jsonl` (in the runs directory): every alert received and what
//! was done with it (started, duplicate, resolved, rejected...), one JSON
//! object a line, appended. Read back for the page and `GET /api/alerts`.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const ALERTS_FILE: &str = "alerts.jsonl";

/// What became of an alert (or a proposal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A run was started (`run_id`).
    Started,
    /// A dry run was started and a proposal waits for approval.
    Proposed,
    /// The same alert is already being handled (`detail`: by what).
    Duplicate,
    /// A resolved alert, recorded.
    Resolved,
    /// A resolved alert cancelled its route's pending proposal.
    ProposalCancelled,
    ProposalApproved,
    ProposalDenied,
    /// No route matches.
    NoRoute,
    /// The run could not start (inputs, lock held...: `detail`).
    NotStarted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub ts: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    pub alertname: String,
    pub fingerprint: String,
    /// `firing` or `resolved`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The log file, appended under a lock.
#[derive(Debug)]
pub struct AlertLog {
    path: PathBuf,
    write: Mutex<()>,
}

impl AlertLog {
    pub fn new(runs_dir: &Path) -> Self {
        AlertLog {
            path: runs_dir.join(ALERTS_FILE),
            write: Mutex::new(()),
        }
    }

    /// The directory the log is in (the runs directory).
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    pub fn append(&self, record: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let _g = self
            .write
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(&line)?;
        f.sync_data()
    }

    /// Every record, oldest first (unreadable lines skipped).
    pub fn read(&self) -> Vec<Record> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
