//! A run directory's own files and names: `run.json` (how the run was
//! started), the lock key, the run id, the command that resumes it.

use crate::exec;
use crate::plan::{Graph, Value};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
    /// Who started the run (web token name, queued request's submitter,
    /// else the OS user): `approve ... by other` refuses their approval,
    /// after a resume too. `None` in runs started before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
}

pub const RUN_META: &str = crate::durable::run_meta::RUN_META;

/// Where a run started from source text keeps it (see
/// [`Runbook::Text`](super::Runbook::Text)).
pub const RUN_SOURCE: &str = "source.runbook";

pub(crate) fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_owned())
    })
}

/// Writes `run.json`; returns its SHA-256, which the journal's first line
/// records (`JournalWriter::record_run_json`).
pub fn write_meta(run_dir: &Path, meta: &RunMeta) -> std::io::Result<String> {
    crate::durable::run_meta::write(run_dir, &meta_bytes(meta)?)
}

/// `run.json`'s bytes, as [`write_meta`] writes them.
pub(crate) fn meta_bytes(meta: &RunMeta) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)
}

/// Reads `run.json` after checking the journal's chain and that the file
/// is the one the journal recorded. A journal older than that record
/// passes, with the warning returned beside the metadata.
pub fn read_meta(run_dir: &Path) -> Result<(RunMeta, Option<String>), String> {
    let path = run_dir.join(RUN_META);
    let checked = crate::durable::run_meta::check(run_dir).map_err(|e| e.to_string())?;
    let meta = serde_json::from_slice(&checked.run_json)
        .map_err(|e| format!("{} is not readable: {e}", path.display()))?;
    Ok((meta, checked.warning))
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
            serde_json::Value::String(crate::events::redact::MASK.into()),
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

/// The runs directory: `given`, else the config's, else the default.
pub fn runs_dir(given: Option<&Path>, config: Option<&Path>) -> PathBuf {
    if let Some(d) = given {
        return d.to_owned();
    }
    crate::config::Config::load(config)
        .map(|c| c.runs_dir())
        .unwrap_or_else(|_| PathBuf::from(crate::durable::DEFAULT_RUNS_DIR))
}

/// A run id as a caller gives it: a plain directory name.
pub fn check_run_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id == "."
        || id == ".."
        || id == crate::durable::lock::LOCKS_DIR
        || id.contains(['/', '\\', '\0'])
    {
        return Err(format!("`{id}` is not a run id (see `runbook runs`)"));
    }
    Ok(())
}
