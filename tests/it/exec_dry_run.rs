//! Every example runbook runs in `--dry-run`: nothing is executed, each
//! action says what would run, and the console log is snapshotted.

use crate::exec_support;

use exec_support::*;
use indexmap::IndexMap;
use runbook::adapters::Adapters;
use runbook::events::{EventKind, Mode, Outcome};
use runbook::plan::{Graph, Type};

fn example_value(ty: &Type) -> String {
    match ty {
        Type::String | Type::Secret => "example".into(),
        Type::Int => "1".into(),
        Type::Float => "0.5".into(),
        Type::Bool => "true".into(),
        Type::Duration => "1m".into(),
        // Distinct items: a `for` block's items name its steps.
        Type::List(inner) => format!("{0}-1,{0}-2", example_value(inner)),
        Type::OneOf(v) => v.first().cloned().unwrap_or_default(),
        Type::Json => "{}".into(),
        Type::Time => unreachable!("no input can be declared as a time"),
    }
}

fn required_inputs(g: &Graph) -> Vec<(String, String)> {
    g.inputs
        .iter()
        .filter(|i| i.default.is_none())
        .map(|i| (i.name.clone(), example_value(&i.ty)))
        .collect()
}

/// The graph a run of the example compiles: what names inputs (a `for`
/// list, `wait soak`) bound to the example's inputs, as `runbook run`
/// binds them (`session::bind_inputs`).
fn bound(text: &str, g: std::sync::Arc<Graph>) -> std::sync::Arc<Graph> {
    if g.slot_inputs.is_empty() {
        return g;
    }
    let values = runbook::exec::inputs::resolve(&g.inputs, &required_inputs(&g), None)
        .expect("valid inputs");
    let source = runbook::source::Source::new("example", text);
    match runbook::compile::compile_with_inputs(&source, &values) {
        Ok(c) => std::sync::Arc::new(c.graph),
        Err(r) => panic!("{}", r.render(false)),
    }
}

async fn dry_run(g: std::sync::Arc<Graph>, assume: &[(&str, bool)]) -> Ran {
    let inputs = required_inputs(&g);
    let inputs: Vec<(&str, &str)> = inputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let assume: IndexMap<String, bool> = assume.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let mut opts = options(Mode::DryRun);
    opts.secrets = runbook::exec::inputs::load_secrets(&g.secrets, false).unwrap();
    // Secrets a developer happens to have must not change the snapshot.
    for v in opts.secrets.values_mut() {
        *v = None;
    }
    opts.parallel = 1;
    run(g, opts, &inputs, Adapters::dry_run(assume)).await
}

fn examples() -> Vec<std::path::PathBuf> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "runbook"))
        .collect();
    v.sort();
    v
}

#[tokio::test(start_paused = true)]
async fn every_example_runbook_dry_runs_and_executes_nothing() {
    let examples = examples();
    assert!(!examples.is_empty());
    for path in examples {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let g = bound(&text, compile(&text));
        let ran = dry_run(g, &[]).await;
        // Checks pass by default: a runbook whose verify expects a check to
        // fail (e.g. "confirm the canary is failing") rolls back in a dry
        // run (or stops before changing anything), and the snapshot shows
        // it; it must still end, and cleanly.
        assert!(
            matches!(
                ran.summary.outcome,
                Outcome::Succeeded | Outcome::RolledBack | Outcome::NothingChanged | Outcome::Kept
            ),
            "{name}:\n{}",
            ran.console
        );
        for e in &ran.events {
            if let EventKind::ActionStarted { simulated, .. }
            | EventKind::NotificationSent { simulated, .. } = &e.kind
            {
                assert!(simulated, "{name}: an action was not simulated");
            }
        }
        assert!(
            ran.console.contains("DRY RUN"),
            "{name}: the dry run does not say so"
        );
        insta::assert_snapshot!(format!("dry_run_{name}"), ran.console);
    }
}

#[tokio::test(start_paused = true)]
async fn assume_walks_the_other_path_of_a_condition() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/runbooks/api_config_rollback.runbook"
    );
    let g = compile(&std::fs::read_to_string(path).unwrap());
    // errors_low failing: revert_config's `when` can no longer be ruled out,
    // so it "runs", and its verify (api_healthy and errors_low) never holds.
    let ran = dry_run(g, &[("errors_low", false)]).await;
    assert!(ran.of("node_skipped").is_empty(), "{}", ran.console);
    assert_eq!(ran.summary.failed_step.as_deref(), Some("revert_config"));
    assert!(
        ran.console
            .contains("assumed to fail (--assume errors_low=false)"),
        "{}",
        ran.console
    );
    insta::assert_snapshot!("dry_run_api_config_rollback_errors_high", ran.console);
}
