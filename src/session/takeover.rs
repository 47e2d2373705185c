//! [`Session::take_over`]: a run whose owner died, claimed from the
//! PostgreSQL store ([`crate::store::postgres::takeover`]), goes on here.
//!
//! The run directory is rebuilt from the rows: `journal.jsonl` is the
//! store's lines (a `journal.jsonl` already there, from an earlier owner
//! on this machine, is kept beside as `journal.jsonl.before-epoch-N`,
//! likewise `run.json`: the rows are the record, since an insert that
//! failed stopped its run before the change it announced), `run.json` is
//! the row's, the runbook is the source kept in the row
//! (`source.runbook`) and the config the one the run started with
//! (`taken-over.yaml`). Then the run is resumed exactly as `runbook
//! resume` does (completed steps are not run again; a step in doubt is
//! decided by its verify or by an answer), with the claimed epoch fencing
//! its journal, and `run_taken_over` recorded right after `run_started`.
//! Secrets are read again from this machine's environment or files.

use super::meta::RUN_SOURCE;
use super::request::{ResumeRequest, TakenOver};
use super::{Error, Notice, Session};
use crate::durable::journal::JOURNAL_FILE;
use crate::durable::run_meta::RUN_META;
use crate::events::EventKind;
use crate::store::postgres::takeover::Claim;
use std::path::Path;

/// The config a taken-over run loads, in its run directory.
pub(super) const TAKEN_OVER_CONFIG: &str = "taken-over.yaml";

impl Session {
    /// Goes on with a run claimed from the store (see the module docs):
    /// `by` says who took it over (`worker HOST:PID`, `resume by USER`).
    /// The caller lets go of the claim
    /// ([`PgStore::release_run`](crate::store::postgres::PgStore::release_run))
    /// if this fails.
    pub fn take_over(
        claim: &Claim,
        by: &str,
        mut req: ResumeRequest,
        notices: &mut dyn FnMut(Notice),
    ) -> Result<Session, Error> {
        let runs_dir = super::runs_dir(req.runs_dir.as_deref(), None);
        let run_dir = runs_dir.join(&claim.run_id);
        let config = rebuild(&run_dir, claim).map_err(|e| {
            Error::Internal(format!(
                "cannot write the run directory {}: {e}",
                run_dir.display()
            ))
        })?;
        let me = crate::durable::lock::LockHolder::me("", &claim.run_id);
        notices(Notice::Warning(format!(
            "taking over run {} from pid {} on {} (silent for {:.1}s{}): owner epoch {} -> {}",
            claim.run_id,
            claim.from_pid,
            claim.from_host,
            claim.silent_ms as f64 / 1000.0,
            if claim.owner_gone {
                ", its process is gone"
            } else {
                ""
            },
            claim.old_epoch,
            claim.new_epoch
        )));
        req.runs_dir = Some(runs_dir);
        req.file = Some(run_dir.join(RUN_SOURCE));
        req.takeover = Some(TakenOver {
            epoch: claim.new_epoch,
            config,
            event: EventKind::RunTakenOver {
                by: by.to_owned(),
                host: me.host,
                pid: me.pid,
                from_host: claim.from_host.clone(),
                from_user: claim.from_user.clone(),
                from_pid: claim.from_pid,
                silent_ms: claim.silent_ms,
                owner_gone: claim.owner_gone,
                old_epoch: claim.old_epoch,
                new_epoch: claim.new_epoch,
            },
        });
        Session::resume(req, notices)
    }
}

/// Writes the run directory from the claim; the config's path, if the run
/// had one.
fn rebuild(run_dir: &Path, claim: &Claim) -> std::io::Result<Option<std::path::PathBuf>> {
    std::fs::create_dir_all(run_dir)?;
    for name in [JOURNAL_FILE, RUN_META] {
        let path = run_dir.join(name);
        if path.exists() {
            let aside = run_dir.join(format!("{name}.before-epoch-{}", claim.new_epoch));
            std::fs::rename(&path, aside)?;
        }
    }
    let sys = |name: &str, bytes: &[u8], replace: bool| {
        crate::durable::sys::write_atomic(&run_dir.join(name), bytes, replace)
    };
    sys(RUN_SOURCE, claim.source.as_bytes(), true)?;
    let config = match &claim.config {
        Some(text) => {
            sys(TAKEN_OVER_CONFIG, text.as_bytes(), true)?;
            Some(run_dir.join(TAKEN_OVER_CONFIG))
        }
        None => None,
    };
    sys(RUN_META, &claim.run_json, false)?;
    sys(JOURNAL_FILE, &claim.journal, false)?;
    Ok(config)
}
