//! `<run dir>/run.json`, chained into the journal.
//!
//! `run.json` says how a run was started (the runbook file, config,
//! environment, parallelism, lock key); `runbook resume` starts again from
//! it. Beside the journal but outside its hash chain, it could be swapped
//! unnoticed: a resume would then load another runbook or config, or take
//! another lock than the one the run held. So its SHA-256 is written into
//! the journal's first line ([`JournalWriter::record_run_json`]) and
//! [`check`] (used by `resume` and `verify-journal`) refuses a `run.json`
//! whose bytes do not match, along with a broken chain.
//!
//! # Wiring
//!
//! `runbook run`: after `JournalWriter::create`, before the first event:
//! `let sha = run_meta::write(&run_dir, &bytes)?; journal.record_run_json(&sha)?;`.
//! `runbook resume`: `run_meta::check(&run_dir)?.run_json` are the bytes
//! to parse (print its `warning`, if any).
//!
//! [`JournalWriter::record_run_json`]: super::journal::JournalWriter::record_run_json

use super::journal::{verify_chain, JournalError, Verified, JOURNAL_FILE, RUN_JSON_KEY};
use super::sys;
use crate::fs_read;
use std::fmt;
use std::io;
use std::path::Path;

/// The file's name in a run directory.
pub const RUN_META: &str = "run.json";

/// Writes `<run_dir>/run.json` (atomically; it must not exist yet) and
/// returns the SHA-256 of its bytes, for the journal.
pub fn write(run_dir: &Path, bytes: &[u8]) -> io::Result<String> {
    sys::write_atomic(&run_dir.join(RUN_META), bytes, false)?;
    Ok(crate::digest::sha256_hex(bytes))
}

/// A run whose journal's chain holds and whose `run.json` matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedRun {
    pub verified: Verified,
    /// `run.json`'s bytes, as checked (parse these, not the file again).
    pub run_json: Vec<u8>,
    /// Set when the journal records no hash for `run.json` (written by an
    /// earlier version): the file could not be checked.
    pub warning: Option<String>,
}

impl fmt::Display for CheckedRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The chain's line first, ending with the hash to anchor elsewhere.
        write!(f, "{}", self.verified)?;
        match (&self.warning, &self.verified.run_json_sha256) {
            (Some(w), _) => write!(f, "\nwarning: {w}"),
            (None, Some(sha)) => write!(f, "\n{RUN_META} matches the journal (sha256 {sha})"),
            (None, None) => Ok(()),
        }
    }
}

/// Verifies the journal's chain and `run.json` against the hash its first
/// line records; returns `run.json`'s bytes. A `run.json` that does not
/// match is [`JournalError::RunMeta`]. A journal with events but no hash
/// recorded (an earlier version wrote it) passes with a warning.
pub fn check(run_dir: &Path) -> Result<CheckedRun, JournalError> {
    let verified = verify_chain(&run_dir.join(JOURNAL_FILE))?;
    let path = run_dir.join(RUN_META);
    let run_json = fs_read::read(&path, fs_read::RUN_META).map_err(|source| JournalError::Io {
        path: path.clone(),
        source,
    })?;
    check_verified(verified, run_json, &path)
}

/// [`check`] of a journal and `run.json` held elsewhere (a store's rows);
/// `path` names `run.json` in messages.
pub fn check_bytes(
    journal: &[u8],
    run_json: Vec<u8>,
    path: &Path,
) -> Result<CheckedRun, JournalError> {
    let verified = super::journal::verify_bytes(journal).map_err(JournalError::Chain)?;
    check_verified(verified, run_json, path)
}

fn check_verified(
    verified: Verified,
    run_json: Vec<u8>,
    path: &Path,
) -> Result<CheckedRun, JournalError> {
    let path = path.to_owned();
    let actual = crate::digest::sha256_hex(&run_json);
    let warning = match &verified.run_json_sha256 {
        Some(recorded) if *recorded == actual => None,
        Some(recorded) => {
            return Err(JournalError::RunMeta {
                path,
                reason: format!(
                    "does not match the journal: its first line records sha256 {recorded} \
                     (`{RUN_JSON_KEY}`), the file's is {actual}. It was replaced or edited \
                     after the run started, so the runbook, config and lock key it names \
                     cannot be trusted; put the original back (from a copy), or leave this \
                     run and start a new one"
                ),
            });
        }
        None if verified.events == 0 => None,
        None => Some(format!(
            "the journal does not record {RUN_META}'s hash (it was written by an earlier \
             version), so {} is not checked",
            path.display()
        )),
    };
    Ok(CheckedRun {
        verified,
        run_json,
        warning,
    })
}
