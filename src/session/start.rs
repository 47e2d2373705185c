//! [`Session::start`]: a fresh run, from a [`RunRequest`].

use super::meta::{absolute, lock_key, meta_bytes, write_meta, RunMeta, RUN_META, RUN_SOURCE};
use super::request::{DryRun, Inputs, RunRequest, Runbook};
use super::{bind_inputs, load_config, load_runbook_source, Error, Notice, Session};
use crate::adapters::{dry_run::Assumptions, Adapters};
use crate::diagnostics::did_you_mean;
use crate::durable::journal::{Durability, JournalWriter};
use crate::events::Mode;
use crate::exec::{self, inputs, RunOptions};
use crate::plan::{Graph, Value};
use indexmap::IndexMap;
use std::path::Path;
use std::sync::Arc;

/// What a request's validation gives a run.
struct Validated {
    inputs: IndexMap<String, Value>,
    assume: IndexMap<String, bool>,
    secrets: IndexMap<String, Option<String>>,
}

impl Session {
    /// Validates the request, takes the runbook's lock (live runs),
    /// creates the run directory with its journal and `run.json`, and
    /// builds the runtime. Nothing has run yet.
    pub fn start(req: RunRequest, notices: &mut dyn FnMut(Notice)) -> Result<Session, Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (config, settings, env_inputs) =
            load_config(req.config.as_deref(), req.env.as_deref())?;
        let (source, compiled) = load_runbook_source(&req.runbook, notices)?;
        let graph = Arc::new(compiled.graph);
        let v = validate(&graph, &req, env_inputs)?;
        let graph = bind_inputs(&req.runbook, &source, graph, &v.inputs)?;

        let mode = if req.dry_run.is_some() {
            Mode::DryRun
        } else {
            Mode::Live
        };
        let run_id = match &req.run_id {
            Some(id) => {
                super::check_run_id(id).map_err(Error::invalid)?;
                id.clone()
            }
            None => exec::new_run_id(),
        };
        let runs_dir = req.runs_dir.clone().unwrap_or_else(|| config.runs_dir());
        let run_dir = runs_dir.join(&run_id);
        if req.run_id.is_some() && run_dir.exists() {
            return Err(Error::invalid(format!(
                "run {run_id}: {} exists already (a run id is used once)",
                run_dir.display()
            )));
        }
        // A live run holds the runbook's lock for its whole length.
        let mut start_warnings = Vec::new();
        let mut lock_name = None;
        let mut opts = RunOptions::new(run_id.clone(), mode);
        let (guard, store) = if req.dry_run.is_some() {
            // A dry run takes no lock; a PostgreSQL store keeps its journal
            // too (a server reading runs from the store shows it), without
            // what a takeover needs: a dry run is never taken over.
            (None, dry_run_store(&req, &config)?)
        } else {
            let key = lock_key(&graph, &v.inputs, &run_id).map_err(Error::invalid)?;
            let (g, store) = super::take_lock(req.lock_place(), &config, &key, &run_id, &opts)?;
            start_warnings.extend(g.broke_message());
            lock_name = Some(key);
            (Some(g), Some(store))
        };
        let journal = JournalWriter::create(&run_dir, Durability::for_mode(mode))
            .and_then(|mut j| {
                let group = super::group_commit(&mut j)?;
                Ok((j, group))
            })
            .map_err(|e| {
                Error::Internal(format!(
                    "cannot create the journal under {}: {e}",
                    runs_dir.display()
                ))
            });
        let (mut journal, group) = journal?;
        let journal_path = journal.path().to_path_buf();
        let started_by = req
            .started_by
            .clone()
            .unwrap_or_else(crate::durable::sys::user);
        let meta = RunMeta {
            file: runbook_file(&req.runbook, &run_dir)?,
            config: req.config.as_deref().map(absolute),
            env: req.env.clone(),
            parallel: req.parallel,
            lock_key: lock_name,
            started_by: Some(started_by.clone()),
        };
        write_meta(&run_dir, &meta)
            .and_then(|sha| journal.record_run_json(&sha))
            .map_err(|e| {
                Error::Internal(format!(
                    "cannot write {}: {e}",
                    run_dir.join(RUN_META).display()
                ))
            })?;
        let run_json = meta_bytes(&meta).map_err(|e| Error::Internal(e.to_string()))?;
        let config_text = config_text(req.config.as_deref())?;
        let inputs_json = inputs_json(&v.inputs);
        let store_journal = super::store_journal(
            store.as_deref(),
            &crate::store::JournalRun {
                run_id: &run_id,
                runbook: &graph.runbook,
                run_json: &run_json,
                existing: &[],
                takeover: req.dry_run.is_none().then_some(crate::store::TakeoverData {
                    source: &source.text,
                    source_name: &source.name,
                    config: config_text.as_deref(),
                    inputs: &inputs_json,
                }),
                epoch: None,
            },
        )?;

        let mut notes = match &req.dry_run {
            Some(dry) => dry_run_notes(dry, &v),
            None => Vec::new(),
        };
        notes.push(format!("journal: {}", journal_path.display()));
        let adapters = match &req.dry_run {
            Some(dry) => dry_run_adapters(dry, v.assume, &settings),
            None => {
                let mut a = super::real_adapters(&settings, req.terminal);
                super::inbox(
                    &mut a,
                    &run_dir,
                    req.terminal,
                    req.lock_place(),
                    &config,
                    Some(&started_by),
                )?;
                a
            }
        };
        let redactor = super::redactor(&v.secrets);

        opts.parallel = req.parallel;
        opts.inputs = v.inputs;
        opts.secrets = v.secrets;
        opts.settings = settings;
        opts.preapproved = req.approve.iter().cloned().collect();
        opts.notes = notes;
        opts.start_warnings = start_warnings;
        opts.rollback_on_cancel = req.rollback_on_cancel;

        // A dry run that probes nothing runs on tokio's paused clock: waits,
        // backoffs and verify windows take no wall time (the log still shows
        // the virtual times a real run would take at least).
        let virtual_time = req.dry_run.as_ref().is_some_and(|d| !d.live_checks);
        let runtime = super::start_runtime(virtual_time, group)?;
        Ok(Session {
            run_id,
            runs_dir,
            journal: journal_path,
            mode,
            graph,
            opts,
            adapters,
            redactor,
            sinks: super::sinks(Box::new(journal), store_journal, req.reporters),
            runtime,
            lock: guard,
            resumed: None,
            watch_signals: req.terminal,
            after: None,
        })
    }
}

impl Session {
    /// Validates `req` as [`Session::start`] would (config, runbook,
    /// inputs, `--approve`), without taking a lock, creating a run or
    /// reading secrets (a queued request's secrets are read by the worker
    /// that runs it). For `runbook enqueue`.
    pub fn check(req: &RunRequest, notices: &mut dyn FnMut(Notice)) -> Result<(), Error> {
        let (_, _, env_inputs) = load_config(req.config.as_deref(), req.env.as_deref())?;
        let (source, compiled) = load_runbook_source(&req.runbook, notices)?;
        let graph = Arc::new(compiled.graph);
        let mut errors = Vec::new();
        let values = resolve_inputs(&graph, &req.inputs, env_inputs, &mut errors);
        check_approvals(&graph, &req.approve, &mut errors);
        if errors.is_empty() {
            bind_inputs(&req.runbook, &source, graph, &values).map(|_| ())
        } else {
            Err(Error::Invalid(errors))
        }
    }
}

/// The text of the config file a run loads (`None`: there is none), for
/// the machine that may take the run over.
fn config_text(path: Option<&Path>) -> Result<Option<String>, Error> {
    let (path, required) = match path {
        Some(p) => (p.to_owned(), true),
        None => (std::path::PathBuf::from(crate::config::DEFAULT_FILE), false),
    };
    match crate::fs_read::read_to_string(&path, crate::fs_read::CONFIG) {
        Ok(text) => Ok(Some(text)),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::invalid(format!(
            "cannot read config {}: {e}",
            path.display()
        ))),
    }
}

/// The run's inputs as a JSON object (inputs are never secrets).
fn inputs_json(inputs: &IndexMap<String, Value>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = inputs
        .iter()
        .map(|(k, v)| (k.clone(), exec::context::value_json(v)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The runbook file `run.json` names: the file run, or the source text
/// kept in the run directory.
fn runbook_file(runbook: &Runbook, run_dir: &Path) -> Result<std::path::PathBuf, Error> {
    match runbook {
        Runbook::File(path) => Ok(absolute(path)),
        Runbook::Text { text, .. } => {
            let path = run_dir.join(RUN_SOURCE);
            std::fs::write(&path, text)
                .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))?;
            Ok(absolute(&path))
        }
    }
}

/// Every problem with the request's inputs, assumptions, approvals and
/// secrets, in that order, or their values.
fn validate(
    graph: &Graph,
    req: &RunRequest,
    env_inputs: IndexMap<String, yaml_serde::Value>,
) -> Result<Validated, Error> {
    let mut errors = Vec::new();
    let inputs = resolve_inputs(graph, &req.inputs, env_inputs, &mut errors);
    let assume = match &req.dry_run {
        Some(dry) => assumptions(graph, &dry.assume, &mut errors),
        None => IndexMap::new(),
    };
    check_approvals(graph, &req.approve, &mut errors);
    let secrets = match inputs::load_secrets(&graph.secrets, req.dry_run.is_none()) {
        Ok(s) => s,
        Err(e) => {
            errors.extend(e);
            IndexMap::new()
        }
    };
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    Ok(Validated {
        inputs,
        assume,
        secrets,
    })
}

/// `--approve` names steps of the runbook.
fn check_approvals(graph: &Graph, approve: &[String], errors: &mut Vec<String>) {
    let step_names: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    for s in approve {
        if !step_names.contains(&s.as_str()) {
            let hint = did_you_mean(s, step_names.iter().copied())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            errors.push(format!("--approve: no step named `{s}`{hint}"));
        }
        let by_other = graph.node(s).is_some_and(|n| {
            [n.action.as_ref(), n.approval.as_deref()]
                .into_iter()
                .flatten()
                .any(|a| matches!(a, crate::plan::Action::Approve { by_other: true, .. }))
        });
        if by_other {
            errors.push(format!(
                "--approve: step `{s}` must be approved by someone other than whoever starts the run (`approve ... by other`): it cannot be pre-approved"
            ));
        }
    }
}

/// Inputs: `args`, then `values`, then the file, then the environment's,
/// then defaults.
fn resolve_inputs(
    graph: &Graph,
    given: &Inputs,
    env_inputs: IndexMap<String, yaml_serde::Value>,
    errors: &mut Vec<String>,
) -> IndexMap<String, Value> {
    let mut args = Vec::new();
    for kv in &given.args {
        match inputs::parse_kv(kv) {
            Ok(p) => args.push(p),
            Err(e) => errors.push(format!("--input {e}")),
        }
    }
    let mut values = env_inputs;
    if let Some(p) = &given.file {
        match crate::fs_read::read_to_string(p, crate::fs_read::INPUTS) {
            Ok(text) => match inputs::parse_inputs_file(&p.display().to_string(), &text) {
                Ok(m) => values.extend(m),
                Err(e) => errors.push(e),
            },
            Err(e) => errors.push(format!("cannot read {}: {e}", p.display())),
        }
    }
    values.extend(given.values.clone());
    match inputs::resolve(&graph.inputs, &args, Some(&values)) {
        Ok(v) => v,
        Err(e) => {
            errors.extend(e);
            IndexMap::new()
        }
    }
}

/// A dry run's answers of checks, `CHECK=ANSWER` each.
fn assumptions(
    graph: &Graph,
    given: &[String],
    errors: &mut Vec<String>,
) -> IndexMap<String, bool> {
    let check_names: Vec<&str> = graph.checks.iter().map(|c| c.name.as_str()).collect();
    let mut assume = IndexMap::new();
    for a in given {
        match inputs::parse_kv(a) {
            Ok((k, v)) => {
                let b = match v.trim() {
                    "true" | "pass" => true,
                    "false" | "fail" => false,
                    other => {
                        errors.push(format!(
                            "--assume {k}={other}: the answer must be true or false"
                        ));
                        continue;
                    }
                };
                if !check_names.contains(&k.as_str()) {
                    let hint = did_you_mean(&k, check_names.iter().copied())
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default();
                    errors.push(format!("--assume: no check named `{k}`{hint}"));
                }
                assume.insert(k, b);
            }
            Err(e) => errors.push(format!("--assume {e}")),
        }
    }
    assume
}

/// What a dry run states in `run_started`: how it answers checks, how time
/// passes, which secrets it did without.
fn dry_run_notes(dry: &DryRun, v: &Validated) -> Vec<String> {
    let mut notes = vec![
        "dry run: nothing is spawned, sent, notified or asked; each action shows what would run"
            .to_owned(),
    ];
    if dry.live_checks {
        notes.push("checks: read-only probes (http get/head, promql) are probed for real (--live-checks); other checks pass by default".to_owned());
    } else {
        notes.push(
            "checks are not probed: each passes by default; --assume CHECK=false makes one fail"
                .to_owned(),
        );
        notes.push("virtual time: waits, backoffs and verify windows take no wall time".to_owned());
    }
    for (k, v) in &v.assume {
        notes.push(format!(
            "assumed: check {k} is {}",
            if *v { "passing" } else { "failing" }
        ));
    }
    let missing: Vec<&str> = v
        .secrets
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    if !missing.is_empty() {
        notes.push(format!(
            "secrets not available (fine in a dry run): {}",
            missing.join(", ")
        ));
    }
    notes
}

/// A dry run's adapters: nothing executes; checks answer from the
/// assumptions, or are probed for real with `live_checks`.
fn dry_run_adapters(
    dry: &DryRun,
    assume: IndexMap<String, bool>,
    settings: &exec::Settings,
) -> Adapters {
    let mut a = Adapters::dry_run(IndexMap::new());
    a.oracle = Some(Arc::new(
        Assumptions::new(assume).with_live_checks(dry.live_checks),
    ));
    if dry.live_checks {
        a.probes = super::real_adapters(settings, false).probes;
    }
    a
}

/// The store a dry run's journal is copied to: a PostgreSQL store named by
/// `--store` or the config's `store:`, else none.
fn dry_run_store(
    req: &RunRequest,
    config: &crate::config::Config,
) -> Result<Option<Box<dyn crate::store::Store>>, Error> {
    let url = req
        .store
        .as_deref()
        .or_else(|| config.store.as_ref().and_then(|s| s.url.as_deref()));
    match url {
        None | Some("files") => Ok(None),
        Some(url) => {
            let default = crate::store::StoreConfig::default();
            let settings = config.store.as_ref().unwrap_or(&default);
            crate::store::postgres::PgStore::new(url, settings)
                .map(|s| Some(Box::new(s) as Box<dyn crate::store::Store>))
                .map_err(Error::invalid)
        }
    }
}
