//! Running one drill: compile the runbook, check the scenario against it,
//! run the real executor with drill adapters on a paused (virtual) clock,
//! and judge the expectations.

use super::adapters::DrillWorld;
use super::expect::{evaluate, Verdict};
use super::scenario::{self, LoadedScenario};
use crate::clock::Clock;
use crate::compile;
use crate::diagnostics::Code;
use crate::diagnostics::{Diag, Report};
use crate::events::{Emitter, Event, Mode, Recorder, Redactor, Sink};
use crate::exec::{self, RunOptions};
use crate::plan::Graph;
use crate::source::Source;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A drill that ran (its expectations may still have failed).
#[derive(Debug)]
pub struct DrillRun {
    pub name: String,
    pub scenario_path: PathBuf,
    pub graph: Arc<Graph>,
    pub events: Vec<Event>,
    pub verdicts: Vec<Verdict>,
    /// Wall-clock time the drill took.
    pub wall: Duration,
    /// Warnings about the scenario (a check rule that never answers...),
    /// located in it; `None` when there are none.
    pub warnings: Option<Report>,
}

impl DrillRun {
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.passed)
    }

    /// The virtual duration of the incident.
    pub fn virtual_ms(&self) -> u64 {
        self.events.last().map(|e| e.t_ms).unwrap_or(0)
    }
}

/// Why a drill could not run: every problem, as diagnostics on the file
/// they are about (the scenario or the runbook).
#[derive(Debug)]
pub struct DrillError {
    pub reports: Vec<Report>,
}

impl DrillError {
    fn on(name: String, text: String, diags: Vec<Diag>) -> Self {
        DrillError {
            reports: vec![Report::new(Source::new(name, text), diags)],
        }
    }
}

/// Where virtual time starts: fixed, so that drill logs are reproducible.
pub fn drill_epoch() -> SystemTime {
    // 2026-01-01T00:00:00Z
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// Loads a scenario and runs it; `extra` sinks see every event (e.g. the
/// console for `runbook drill`).
pub fn run_file(path: &std::path::Path, extra: Vec<Box<dyn Sink>>) -> Result<DrillRun, DrillError> {
    let loaded = scenario::load(path)
        .map_err(|(text, diags)| DrillError::on(path.display().to_string(), text, diags))?;
    run(&loaded, extra)
}

pub fn run(loaded: &LoadedScenario, extra: Vec<Box<dyn Sink>>) -> Result<DrillRun, DrillError> {
    let scenario_name = loaded.path.display().to_string();
    let rb_path = loaded.runbook_path();
    // Only a runbook, beside the scenario: any other file named here would
    // be compiled, and its text shown in the diagnostics and the JUnit
    // report (`runbook: /etc/passwd`). Refused without reading it.
    let named = &loaded.scenario.runbook;
    if named.is_absolute() || named.extension().is_none_or(|e| e != "runbook") {
        let span = scenario::key_span(&loaded.text, "runbook");
        return Err(DrillError::on(
            scenario_name,
            loaded.text.clone(),
            vec![Diag::error(
                Code::DrillRunbookUnreadable,
                "`runbook:` must name a `.runbook` file by a path relative to the scenario",
            )
            .label(span, "not a relative path to a .runbook file")
            .help("e.g. `runbook: api_config_rollback.runbook`; the file is not read")],
        ));
    }
    let source = Source::read(&rb_path).map_err(|e| {
        let span = scenario::key_span(&loaded.text, "runbook");
        DrillError::on(
            scenario_name.clone(),
            loaded.text.clone(),
            vec![Diag::error(Code::DrillRunbookUnreadable, e.to_string())
                .label(span, "this runbook")
                .help("`runbook:` is a path relative to the scenario file")],
        )
    })?;
    let compiled = compile::compile(&source).map_err(|r| DrillError { reports: vec![r] })?;
    let graph = Arc::new(compiled.graph);

    let mut diags = Vec::new();
    let inputs_map: indexmap::IndexMap<String, yaml_serde::Value> = loaded.scenario.inputs.clone();
    let inputs = match exec::inputs::resolve(&graph.inputs, &[], Some(&inputs_map)) {
        Ok(i) => i,
        Err(errors) => {
            for e in errors {
                let name = e.split('`').nth(1).unwrap_or("inputs").to_string();
                let span = match scenario::key_span(&loaded.text, &name) {
                    s if s.is_empty() => scenario::key_span(&loaded.text, "inputs"),
                    s => s,
                };
                diags.push(
                    Diag::error(Code::DrillInvalidInput, e)
                        .label(span, "here")
                        .help("give inputs under `inputs:` in the scenario"),
                );
            }
            Default::default()
        }
    };
    // Durations, counts and `for` lists that name inputs take the
    // scenario's values, before the scenario is checked against the steps
    // (a `for` block over an input names its steps after the items).
    let graph = if graph.slot_inputs.is_empty() || diags.iter().any(Diag::is_error) {
        graph
    } else {
        let bound = compile::compile_with_inputs(&source, &inputs)
            .map_err(|r| DrillError { reports: vec![r] })?;
        Arc::new(bound.graph)
    };
    diags.splice(0..0, scenario::validate(loaded, &graph));
    if diags.iter().any(Diag::is_error) {
        return Err(DrillError::on(scenario_name, loaded.text.clone(), diags));
    }
    let warnings = (!diags.is_empty()).then(|| {
        Report::new(
            Source::new(scenario_name.clone(), loaded.text.clone()),
            diags,
        )
    });

    let secrets: indexmap::IndexMap<String, Option<String>> = graph
        .secrets
        .iter()
        .map(|s| {
            let v = loaded
                .scenario
                .secrets
                .get(&s.name)
                .cloned()
                .unwrap_or_else(|| format!("drill-secret-{}", s.name));
            (s.name.clone(), Some(v))
        })
        .collect();
    let name = loaded.name();
    let mut opts = RunOptions::new(format!("drill-{name}"), Mode::Drill);
    opts.inputs = inputs;
    opts.secrets = secrets.clone();
    opts.notes = vec![
        "drill: every action, check and approval answers from the scenario; time is virtual".into(),
    ];
    let redactor = Redactor::new(secrets.values().flatten().map(String::as_str));

    let wall = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| {
            DrillError::on(
                scenario_name.clone(),
                loaded.text.clone(),
                vec![Diag::error(
                    Code::DrillRuntime,
                    format!("cannot start the runtime: {e}"),
                )],
            )
        })?;
    let recorder = Recorder::new();
    let events_handle = recorder.events.clone();
    let scenario = loaded.scenario.clone();
    let g = graph.clone();
    let sink = recorder.clone();
    runtime.block_on(async move {
        let clock = Clock::start_at(drill_epoch());
        let world = DrillWorld::new(scenario, clock, events_handle);
        let mut sinks: Vec<(Box<dyn Sink>, bool)> = vec![(Box::new(sink), true)];
        sinks.extend(extra.into_iter().map(|s| (s, false)));
        let emitter = Arc::new(Emitter::new(opts.run_id.clone(), clock, redactor, sinks));
        exec::run(g, opts, world.adapters(), emitter).await;
    });
    let events = recorder.take();
    let verdicts = evaluate(&loaded.scenario.expect, &events);
    Ok(DrillRun {
        name,
        scenario_path: loaded.path.clone(),
        graph,
        events,
        verdicts,
        wall: wall.elapsed(),
        warnings,
    })
}
