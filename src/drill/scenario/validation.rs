//! The names a scenario uses, checked against the compiled graph.

use super::locate::{item_in, key_in, key_span, word_in};
use super::model::{CheckRule, CheckScript, Dur, LoadedScenario};
use crate::diagnostics::Code;
use crate::diagnostics::{did_you_mean, Diag};
use crate::plan::Graph;
use crate::span::Span;

/// Checks every name in the scenario against the compiled graph.
pub fn validate(s: &LoadedScenario, graph: &Graph) -> Vec<Diag> {
    let mut diags = Vec::new();
    let sc = &s.scenario;
    let steps: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    let checks: Vec<&str> = graph.checks.iter().map(|c| c.name.as_str()).collect();
    let inputs: Vec<&str> = graph.inputs.iter().map(|i| i.name.as_str()).collect();
    let secrets: Vec<&str> = graph.secrets.iter().map(|i| i.name.as_str()).collect();
    let channels: Vec<&str> = graph.channels.iter().map(|c| c.name.as_str()).collect();
    let unknown = |diags: &mut Vec<Diag>, what: &str, name: &str, known: &[&str], span: Span| {
        diags.push(
            Diag::error(Code::DrillUnknownName, format!("unknown {what} `{name}`"))
                .label(
                    span,
                    format!("runbook `{}` has no {what} by this name", graph.runbook),
                )
                .maybe_help(
                    did_you_mean(name, known.iter().copied())
                        .or_else(|| Some(format!("known: {}", known.join(", ")))),
                ),
        );
    };
    for k in sc.inputs.keys() {
        if !inputs.contains(&k.as_str()) {
            unknown(
                &mut diags,
                "input",
                k,
                &inputs,
                key_in(&s.text, &["inputs"], k),
            );
        }
    }
    for i in graph.inputs.iter().filter(|i| i.default.is_none()) {
        if sc.inputs.contains_key(&i.name) {
            continue;
        }
        let (span, label) = match key_in(&s.text, &[], "inputs") {
            sp if sp.is_empty() => (
                key_span(&s.text, "runbook"),
                "this scenario has no `inputs:`".to_string(),
            ),
            sp => (sp, format!("`{}` is not given here", i.name)),
        };
        diags.push(
            Diag::error(
                Code::DrillMissingInput,
                format!(
                    "input `{}` ({}) is required: runbook `{}` gives it no default",
                    i.name, i.ty, graph.runbook
                ),
            )
            .label(span, label)
            .help(format!("add `{}: VALUE` under `inputs:`", i.name)),
        );
    }
    for k in sc.secrets.keys() {
        if !secrets.contains(&k.as_str()) {
            unknown(
                &mut diags,
                "secret",
                k,
                &secrets,
                key_in(&s.text, &["secrets"], k),
            );
        }
    }
    for (k, script) in &sc.checks {
        if !checks.contains(&k.as_str()) {
            unknown(
                &mut diags,
                "check",
                k,
                &checks,
                key_in(&s.text, &["checks"], k),
            );
        }
        if let CheckScript::Rules(r) = script {
            shadowed_rules(s, k, &r.rules, &mut diags);
            for rule in &r.rules {
                for step in rule.succeeded.iter().chain(&rule.undone) {
                    if !steps.contains(&step.as_str()) {
                        unknown(
                            &mut diags,
                            "step",
                            step,
                            &steps,
                            word_in(&s.text, &["checks", k], step),
                        );
                    }
                }
                if let Some(step) = &rule.undone {
                    if graph.node(step).is_some_and(|n| n.undo.is_none()) {
                        diags.push(
                            Diag::error(
                                Code::DrillNoUndo,
                                format!(
                                    "step `{step}` has no undo, so `undone: {step}` never matches"
                                ),
                            )
                            .label(
                                word_in(&s.text, &["checks", k], step),
                                "no `undo` in the runbook",
                            )
                            .help("name a step that has an `undo`"),
                        );
                    }
                }
            }
        }
    }
    // `status_update`: how every status update answers (`every D notify`).
    let handler_names = ["on_failure", "on_success", crate::exec::status::RUN_NODE];
    for k in sc.actions.keys() {
        if !steps.contains(&k.as_str()) && !handler_names.contains(&k.as_str()) {
            unknown(
                &mut diags,
                "step",
                k,
                &steps,
                key_in(&s.text, &["actions"], k),
            );
        }
    }
    for k in sc.undo.keys() {
        match graph.node(k) {
            None => unknown(&mut diags, "step", k, &steps, key_in(&s.text, &["undo"], k)),
            Some(n) if n.undo.is_none() => diags.push(
                Diag::error(
                    Code::DrillNoUndo,
                    format!("step `{k}` has no undo to script"),
                )
                .label(key_in(&s.text, &["undo"], k), "no `undo` in the runbook")
                .help("remove this entry, or add an `undo` to the step"),
            ),
            Some(_) => {}
        }
    }
    for k in sc.approvals.keys() {
        match graph.node(k) {
            None => unknown(
                &mut diags,
                "step",
                k,
                &steps,
                key_in(&s.text, &["approvals"], k),
            ),
            Some(n) => {
                let asks = n.approval.is_some()
                    || matches!(n.action, Some(crate::plan::Action::Approve { .. }));
                if !asks {
                    diags.push(
                        Diag::error(
                            Code::DrillNoApproval,
                            format!("step `{k}` asks for no approval"),
                        )
                        .label(
                            key_in(&s.text, &["approvals"], k),
                            "no `approve` in this step",
                        )
                        .help("script approvals only for steps with `approve`"),
                    );
                }
            }
        }
    }
    let e = &sc.expect;
    for (what, list) in [
        ("succeeded", &e.succeeded),
        ("skipped", &e.skipped),
        ("failed", &e.failed),
        ("not_run", &e.not_run),
        ("undo_failed", &e.undo_failed),
        ("self_approval_refused", &e.self_approval_refused),
        ("not_undone", &e.not_undone),
    ] {
        for name in list {
            if !steps.contains(&name.as_str()) {
                unknown(
                    &mut diags,
                    "step",
                    name,
                    &steps,
                    word_in(&s.text, &["expect", what], name),
                );
            }
        }
    }
    if let Some(rb) = &e.rollback {
        for name in rb {
            match graph.node(name) {
                None => unknown(
                    &mut diags,
                    "step",
                    name,
                    &steps,
                    word_in(&s.text, &["expect", "rollback"], name),
                ),
                Some(n) if n.undo.is_none() => diags.push(
                    Diag::error(
                        Code::DrillNoUndo,
                        format!("step `{name}` has no undo, so it can never be in the rollback"),
                    )
                    .label(
                        word_in(&s.text, &["expect", "rollback"], name),
                        "no `undo` in the runbook",
                    )
                    .help("list only steps that have an `undo`"),
                ),
                Some(_) => {}
            }
        }
    }
    for k in e.retries.keys() {
        if !steps.contains(&k.as_str()) {
            unknown(
                &mut diags,
                "step",
                k,
                &steps,
                key_in(&s.text, &["expect", "retries"], k),
            );
        }
    }
    for n in &e.notifications {
        if !channels.contains(&n.channel.as_str()) {
            unknown(
                &mut diags,
                "channel",
                &n.channel,
                &channels,
                word_in(&s.text, &["expect", "notifications"], &n.channel),
            );
        }
        if let Some(re) = &n.matches {
            if let Err(err) = regex::Regex::new(re) {
                diags.push(
                    Diag::error(
                        Code::DrillInvalidRegex,
                        "invalid regular expression in `matches`",
                    )
                    .label(
                        word_in(&s.text, &["expect", "notifications"], re),
                        err.to_string()
                            .lines()
                            .last()
                            .unwrap_or("invalid")
                            .to_string(),
                    ),
                );
            }
        }
    }
    if let Some(o) = &e.outcome {
        let known = [
            "succeeded",
            "rolled_back",
            "rollback_incomplete",
            "kept",
            "nothing_changed",
            "needs_human",
            "cancelled",
        ];
        if !known.contains(&o.as_str()) {
            diags.push(
                Diag::error(Code::DrillUnknownOutcome, format!("unknown outcome `{o}`"))
                    .label(
                        word_in(&s.text, &["expect", "outcome"], o),
                        format!("one of: {}", known.join(", ")),
                    )
                    .maybe_help(did_you_mean(o, known)),
            );
        }
    }
    diags
}

/// Whether `earlier` matches whenever `later` does (so `later`, tried
/// after it, never answers): each of its conditions is one `later` has
/// too, at least as strict.
fn shadows(earlier: &CheckRule, later: &CheckRule) -> bool {
    let at_least = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (None, _) => true,
        (Some(a), Some(b)) => b >= a,
        (Some(_), None) => false,
    };
    let ms = |d: Option<Dur>| d.map(|d| crate::clock::ms(d.0));
    let plus = |r: &CheckRule| ms(r.plus).unwrap_or(0);
    let same_step = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (None, _) => true,
        (Some(a), Some(b)) => a == b && plus(later) >= plus(earlier),
        (Some(_), None) => false,
    };
    at_least(ms(earlier.after), ms(later.after))
        && at_least(
            earlier.from_probe.map(u64::from),
            later.from_probe.map(u64::from),
        )
        && same_step(&earlier.succeeded, &later.succeeded)
        && same_step(&earlier.undone, &later.undone)
}

/// A warning for each rule of `check` that an earlier rule shadows.
fn shadowed_rules(s: &LoadedScenario, check: &str, rules: &[CheckRule], diags: &mut Vec<Diag>) {
    for (j, later) in rules.iter().enumerate() {
        let Some(i) = rules[..j].iter().position(|e| shadows(e, later)) else {
            continue;
        };
        let path = ["checks", check, "rules"];
        diags.push(
            Diag::warning(
                Code::DrillShadowedRule,
                format!(
                    "rule {} of check `{check}` never answers: rule {} before it matches whenever it does",
                    j + 1,
                    i + 1
                ),
            )
            .label(item_in(&s.text, &path, j), "never reached")
            .label(item_in(&s.text, &path, i), "matches first")
            .help("rules are tried in order and the first that matches answers: put the stricter rule first"),
        );
    }
}
