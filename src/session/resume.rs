//! [`Session::resume`]: the same session, opened from an existing run
//! directory (see `exec::resume` and docs/operations.md).

use super::meta::{check_run_id, lock_key, read_meta};
use super::request::{ResumeRequest, Runbook};
use super::{bind_inputs, load_config, load_runbook_source, Error, Notice, Resumed, Session};
use crate::durable::journal::{read_journal, Durability, JournalWriter, JOURNAL_FILE};
use crate::durable::replay::{replay, RunState};
use crate::durable::runs::RunStatus;
use crate::events::{Event, Mode, Outcome};
use crate::exec::resume::{Resume, Target};
use crate::exec::{self, inputs, RunOptions};
use crate::plan::Graph;
use indexmap::IndexMap;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

impl Session {
    /// Reopens an interrupted run: checks that it can be resumed (a live
    /// run, not finished, not running, the same runbook unless `force`),
    /// that nothing in doubt is left unanswered, takes its lock back, and
    /// opens its journal for appending. Completed steps are not run again.
    pub fn resume(req: ResumeRequest, notices: &mut dyn FnMut(Notice)) -> Result<Session, Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        check_run_id(&req.run_id).map_err(Error::invalid)?;
        if req.takeover.is_none() {
            if let Some(store) = pg_store(&req)? {
                // The store keeps the run: take it over (from any machine).
                let me = crate::durable::lock::LockHolder::me("", &req.run_id);
                let by = format!("resume by {}", me.user);
                // Its name in the queue, if a worker had the run.
                let owner = format!("resume {}:{}", me.host, me.pid);
                let claim = store
                    .claim_run(&req.run_id, &owner)
                    .map_err(Error::invalid)?;
                if let Some(claim) = claim {
                    return match Session::take_over(&claim, &by, req, notices) {
                        Ok(session) => Ok(session.recording_request(store, claim.request, owner)),
                        Err(e) => {
                            let _ = store.release_run(&claim.run_id, claim.new_epoch);
                            if let Some(id) = claim.request {
                                let _ = store.finish_request(id, &owner, None, e.exit_code());
                            }
                            Err(e)
                        }
                    };
                }
            }
        }
        let runs_dir = super::runs_dir(req.runs_dir.as_deref(), None);
        let run_id = req.run_id.clone();
        let run_dir = runs_dir.join(&run_id);
        if !run_dir.join(JOURNAL_FILE).exists() {
            return Err(Error::invalid(format!(
                "no run `{run_id}` under {} (see `runbook runs`)",
                runs_dir.display()
            )));
        }
        let (meta, unchecked) = read_meta(&run_dir).map_err(Error::invalid)?;
        if let Some(w) = unchecked {
            notices(Notice::Warning(w));
        }
        let config_path = match &req.takeover {
            Some(t) => t.config.clone(),
            None => meta.config.clone(),
        };
        let (config, settings, _) = load_config(config_path.as_deref(), meta.env.as_deref())?;
        let file = req.file.clone().unwrap_or(meta.file.clone());
        let runbook = Runbook::File(file.clone());
        let (source, compiled) = load_runbook_source(&runbook, notices)?;
        let graph = Arc::new(compiled.graph);

        // The journal as it stands (a torn last line is reported and ignored).
        let read = read_journal(&run_dir.join(JOURNAL_FILE)).map_err(Error::invalid)?;
        let mut start_warnings = Vec::new();
        for w in &read.warnings {
            notices(Notice::Warning(w.clone()));
            start_warnings.push(w.clone());
        }
        let st = replay(&read.events);
        check_resumable(&st, &run_id, &run_dir)?;
        if let Some(summary) = changed_runbook(&st, &graph, &file, &read.events) {
            if !req.force {
                return Err(Error::invalid(format!(
                    "{summary}. Resuming a different runbook than the one that ran is refused; \
                     check the change, then add --force to resume anyway"
                )));
            }
            notices(Notice::Warning(format!("--force: {summary}")));
            start_warnings.push(format!("resumed with --force: {summary}"));
        }

        // Inputs from the journal (validated against the runbook as it is);
        // secrets from their sources, never from the journal.
        let mut journal_inputs: IndexMap<String, yaml_serde::Value> = IndexMap::new();
        for (k, v) in &st.inputs {
            let y = yaml_serde::to_value(v)
                .map_err(|e| Error::invalid(format!("input `{k}` from the journal: {e}")))?;
            journal_inputs.insert(k.clone(), y);
        }
        let input_values =
            inputs::resolve(&graph.inputs, &[], Some(&journal_inputs)).map_err(Error::Invalid)?;
        let graph = bind_inputs(&runbook, &source, graph, &input_values)?;
        let secrets = inputs::load_secrets(&graph.secrets, true).map_err(Error::Invalid)?;

        let mut resume = Resume::new(st);
        resume.assume_done = targets(&req.assume_done, "--assume-done")?;
        resume.assume_failed = targets(&req.assume_failed, "--assume-failed")?;
        resume.name_for_steps(&graph);
        let questions = exec::resume::questions(&graph, &resume);
        if !questions.is_empty() {
            return Err(Error::Unanswered(questions));
        }

        // The run's lock: its own stale lock (the process that died) is
        // taken over; anyone else's is refused (or broken with --break-lock).
        let key = match meta.lock_key.clone() {
            Some(k) => k,
            None => lock_key(&graph, &input_values, &run_id).map_err(Error::invalid)?,
        };
        let opts = RunOptions::new(run_id.clone(), Mode::Live);
        let (guard, store) = super::take_lock(req.lock_place(), &config, &key, &run_id, &opts)?;
        start_warnings.extend(guard.broke_message());

        let (mut writer, reread) =
            JournalWriter::open_append(&run_dir, Durability::WriteAhead).map_err(Error::invalid)?;
        let group = super::group_commit(&mut writer).map_err(Error::invalid)?;
        if reread.events.len() != read.events.len() {
            return Err(Error::invalid(
                "the journal changed while resuming; try again",
            ));
        }
        let last_seq = writer.last_seq();
        let journal_path = writer.path().to_path_buf();
        // The store's copy (PostgreSQL) catches up with the file's lines,
        // then goes on with the same chain.
        let read_file = |p: &Path| {
            crate::fs_read::read(p, crate::fs_read::JOURNAL)
                .map_err(|e| Error::invalid(format!("cannot read {}: {e}", p.display())))
        };
        let existing = read_file(&journal_path)?;
        let run_json = read_file(&run_dir.join(crate::durable::run_meta::RUN_META))?;
        let store_journal = super::store_journal(
            Some(store.as_ref()),
            &crate::store::JournalRun {
                run_id: &run_id,
                runbook: &graph.runbook,
                run_json: &run_json,
                existing: &existing,
                takeover: None,
                epoch: req.takeover.as_ref().map(|t| t.epoch),
            },
        )?;

        let redactor = super::redactor(&secrets);
        let mut adapters = super::real_adapters(&settings, req.terminal);
        super::inbox(
            &mut adapters,
            &run_dir,
            req.terminal,
            req.lock_place(),
            &config,
            // The run's starter, not whoever resumes it.
            meta.started_by.as_deref(),
        )?;

        let mut opts = opts;
        opts.parallel = meta.parallel.max(1);
        opts.inputs = input_values;
        opts.secrets = secrets;
        opts.settings = settings;
        opts.notes = vec![
            format!("resumed after seq {last_seq}"),
            format!("journal: {}", journal_path.display()),
        ];
        opts.start_warnings = start_warnings;
        if let Some(t) = &req.takeover {
            opts.notes.push(format!(
                "taken over from the store: owner epoch {}",
                t.epoch
            ));
            opts.start_events.push(t.event.clone());
        }
        let runtime = super::start_runtime(false, group)?;
        Ok(Session {
            run_id,
            runs_dir,
            journal: journal_path,
            mode: Mode::Live,
            graph,
            opts,
            adapters,
            redactor,
            sinks: super::sinks(Box::new(writer), store_journal, req.reporters),
            runtime,
            lock: Some(guard),
            resumed: Some(Resumed {
                state: resume,
                after_seq: last_seq,
            }),
            watch_signals: req.terminal,
            after: None,
        })
    }
}

/// The PostgreSQL store a resume names (`--store`, else `store:` in
/// ./runbook.yaml), with its `--grace`; `None`: the files.
fn pg_store(req: &ResumeRequest) -> Result<Option<crate::store::postgres::PgStore>, Error> {
    let config = crate::config::Config::load(None).map_err(Error::Config)?;
    let settings = config.store.clone().unwrap_or_default();
    let url = req.store.as_deref().or(settings.url.as_deref());
    let store = match url {
        None | Some("files") => return Ok(None),
        Some(url) => {
            crate::store::postgres::PgStore::new(url, &settings).map_err(Error::invalid)?
        }
    };
    match req.grace {
        Some(g) => store.with_grace(g).map(Some).map_err(Error::invalid),
        None => Ok(Some(store)),
    }
}

/// `--assume-done` / `--assume-failed` values as steps or fan-out items;
/// every malformed one is reported.
fn targets(values: &[String], flag: &str) -> Result<HashSet<Target>, Error> {
    let mut errors = Vec::new();
    let mut out = HashSet::new();
    for v in values {
        match Target::parse(v) {
            Ok(t) => {
                out.insert(t);
            }
            Err(e) => errors.push(format!("{flag} {e}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(errors))
    }
}

/// Refuses a run there is nothing to resume of: no start, a dry run, a
/// finished run (but a cancelled one whose rollback is unfinished), a run
/// still going.
fn check_resumable(st: &RunState, run_id: &str, run_dir: &Path) -> Result<(), Error> {
    if st.sessions == 0 {
        return Err(Error::invalid(
            "the journal has no run_started: there is nothing to resume",
        ));
    }
    if st.mode != Some(Mode::Live) {
        return Err(Error::invalid(
            "a dry run changed nothing: run it again instead of resuming it",
        ));
    }
    if let Some((outcome, _)) = st.finished {
        let rollback_unfinished = st
            .rollback
            .as_ref()
            .map(|rb| rb.finished != Some(true) || rb.undone.values().any(|u| !u.ok))
            .unwrap_or(true);
        if !(outcome == Outcome::Cancelled && rollback_unfinished) {
            return Err(Error::invalid(format!(
                "run {run_id} already finished ({}): there is nothing to resume",
                RunStatus::from_outcome(outcome)
            )));
        }
    }
    if crate::durable::journal::journal_in_use(run_dir) {
        return Err(Error::invalid(format!(
            "run {run_id} is still running (another process holds its journal)"
        )));
    }
    Ok(())
}

/// If the runbook changed since the run started: what changed, in terms of
/// the steps the run went through and those it had not reached.
fn changed_runbook(st: &RunState, graph: &Graph, file: &Path, events: &[Event]) -> Option<String> {
    let old_sha = st.source_sha256.clone().unwrap_or_default();
    if old_sha == graph.source_sha256 {
        return None;
    }
    let seen: Vec<&str> = events.iter().filter_map(|e| e.node.as_deref()).collect();
    let mut gone: Vec<&str> = seen
        .iter()
        .copied()
        .filter(|n| !n.starts_with("on_") && graph.node(n).is_none())
        .collect();
    gone.sort_unstable();
    gone.dedup();
    let fresh: Vec<&str> = graph
        .nodes
        .iter()
        .map(|n| n.id.as_str())
        .filter(|n| !seen.iter().any(|s| s == n))
        .collect();
    let list = |names: Vec<&str>| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    Some(format!(
        "{} changed since the run started (sha256 {} in the journal, {} now); \
         steps the run went through that the runbook no longer has: {}; \
         steps it had not reached: {}",
        file.display(),
        short(&old_sha),
        short(&graph.source_sha256),
        list(gone),
        list(fresh)
    ))
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
