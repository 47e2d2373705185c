//! Checks (probe -> observation -> expects), conditions that read them,
//! and `verify ... within ... every ...` polling.

use super::cond::{eval, V};
use super::context::{Bindings, Resolver, RunCtx};
use crate::adapters::{
    AdapterError, Call, HttpBody, HttpCall, PromqlQuery, PromqlResult, ShellRequest,
};
use crate::clock::ms;
use crate::events::{CheckStatus, Phase};
use crate::events::{ConditionPurpose, EventKind, ExpectResult, ValueRead};
use crate::plan::{CheckSpec, Effect, Expr, ExprKind, NoDataPolicy, Probe, RefRoot, VerifyPolicy};
use indexmap::IndexMap;
use std::time::Duration;

/// The outcome of evaluating a condition.
#[derive(Debug, Clone)]
pub struct CondOutcome {
    /// `Ok(Some(b))`: decided; `Ok(None)`: unknown (dry run); `Err`: could
    /// not be evaluated.
    pub result: Result<Option<bool>, String>,
    pub values: Vec<ValueRead>,
}

fn check_names(e: &Expr, out: &mut Vec<String>) {
    match &e.kind {
        ExprKind::Ref(r) if r.root == RefRoot::Check && !out.contains(&r.name) => {
            out.push(r.name.clone());
        }
        ExprKind::Not { operand } => check_names(operand, out),
        ExprKind::Binary { lhs, rhs, .. }
        | ExprKind::Index {
            value: lhs,
            index: rhs,
        } => {
            check_names(lhs, out);
            check_names(rhs, out);
        }
        ExprKind::Field { value, .. } => check_names(value, out),
        ExprKind::Call { args, .. } => {
            for a in args {
                check_names(a, out);
            }
        }
        _ => {}
    }
}

impl RunCtx {
    fn call(&self, node: &str, phase: Phase, attempt: u32, effect: Effect) -> Call {
        let cancel = self.cancel_for(phase).clone();
        Call {
            run_id: self.opts.run_id.clone(),
            runbook: self.graph.runbook.clone(),
            node: node.to_owned(),
            item: None,
            attempt,
            phase,
            check: None,
            effect,
            cancel,
            output_cap: self.settings().output_cap,
            start: crate::adapters::StartBarrier::passed(),
        }
    }

    pub(crate) fn make_call(
        &self,
        node: &str,
        phase: Phase,
        attempt: u32,
        effect: Effect,
        item: Option<String>,
    ) -> Call {
        let mut c = self.call(node, phase, attempt, effect);
        c.item = item;
        c
    }

    /// Evaluates a condition: probes the checks it names (each once), then
    /// evaluates it and logs `condition_evaluated`.
    pub async fn condition(
        &self,
        node: Option<&str>,
        expr: &Expr,
        purpose: ConditionPurpose,
        scope: &Bindings,
        poll: u32,
    ) -> CondOutcome {
        let mut names = Vec::new();
        check_names(expr, &mut names);
        let mut checks = IndexMap::new();
        for name in names {
            let r = match self.graph.check(&name) {
                Some(spec) => self.check(node.unwrap_or("run"), spec, poll).await,
                None => Err(format!("no check named `{name}`")),
            };
            checks.insert(name, r);
        }
        let resolver = Resolver {
            ctx: self,
            scope,
            checks: &checks,
            probe: None,
        };
        let mut values = Vec::new();
        let v = eval(expr, &resolver, &mut values);
        let (result, note) = match v {
            Ok(V::Bool(b)) => (Ok(Some(b)), None),
            Ok(V::Unknown(why)) => (Ok(None), Some(format!("undecided: {why}"))),
            Ok(other) => (
                Err(format!(
                    "`{}` is {}, not a bool",
                    expr.text,
                    other.describe()
                )),
                None,
            ),
            Err(e) => (Err(e), None),
        };
        self.emit(
            node,
            EventKind::ConditionEvaluated {
                purpose,
                expr: expr.text.clone(),
                values: values.clone(),
                result: result.clone().ok().flatten(),
                error: result.clone().err(),
                note,
            },
        );
        CondOutcome { result, values }
    }

    /// Evaluates a check as a boolean (its `on no_data` policy applied).
    /// `Err`: the check errored (no answer), never a guess.
    pub async fn check(&self, node: &str, spec: &CheckSpec, poll: u32) -> Result<V, String> {
        let mut call = self.call(node, Phase::Check, poll, Effect::Read);
        call.check = Some(spec.name.clone());
        let passed_for = |status: CheckStatus| match status {
            CheckStatus::Pass => true,
            CheckStatus::NoData => spec.on_no_data == NoDataPolicy::Pass,
            CheckStatus::Fail | CheckStatus::Error => false,
        };
        let scope = Bindings::default();
        if let Some(oracle) = &self.adapters.oracle {
            if let Some(answer) = oracle.answer(&call, spec) {
                let probe = self
                    .probe_display(spec, &scope)
                    .unwrap_or_else(|e| format!("<{e}>"));
                let passed = passed_for(answer.status);
                self.emit(
                    Some(node),
                    EventKind::CheckEvaluated {
                        check: spec.name.clone(),
                        probe,
                        status: answer.status,
                        passed,
                        observed: IndexMap::new(),
                        expects: vec![],
                        error: None,
                        note: Some(answer.note.clone()),
                    },
                );
                return match answer.status {
                    CheckStatus::Error => Err(format!("check `{}`: {}", spec.name, answer.note)),
                    s => Ok(V::Bool(passed_for(s))),
                };
            }
        }
        let (probe_display, observed) = self.probe(&call, spec, &scope).await;
        let (status, expects, error) = match observed {
            Err((status, msg)) => (status, vec![], Some(msg)),
            Ok(obs) => {
                let mut expects = Vec::new();
                let mut status = CheckStatus::Pass;
                let none = IndexMap::new();
                for e in &spec.expects {
                    let resolver = Resolver {
                        ctx: self,
                        scope: &scope,
                        checks: &none,
                        probe: Some(&obs),
                    };
                    let mut values = Vec::new();
                    let (result, error) = match eval(e, &resolver, &mut values) {
                        Ok(V::Bool(b)) => (Some(b), None),
                        Ok(other) => (None, Some(format!("not a bool: {}", other.describe()))),
                        Err(err) => (None, Some(err)),
                    };
                    match result {
                        Some(true) => {}
                        Some(false) if status == CheckStatus::Pass => status = CheckStatus::Fail,
                        Some(false) => {}
                        None => status = CheckStatus::Error,
                    }
                    expects.push(ExpectResult {
                        expr: e.text.clone(),
                        result,
                        values,
                        error,
                    });
                }
                let observed_json = obs.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
                let passed = passed_for(status);
                self.emit(
                    Some(node),
                    EventKind::CheckEvaluated {
                        check: spec.name.clone(),
                        probe: probe_display,
                        status,
                        passed,
                        observed: observed_json,
                        expects: expects.clone(),
                        error: None,
                        note: None,
                    },
                );
                return match status {
                    CheckStatus::Error => Err(format!(
                        "check `{}`: an expectation could not be evaluated",
                        spec.name
                    )),
                    s => Ok(V::Bool(passed_for(s))),
                };
            }
        };
        let passed = passed_for(status);
        self.emit(
            Some(node),
            EventKind::CheckEvaluated {
                check: spec.name.clone(),
                probe: probe_display,
                status,
                passed,
                observed: IndexMap::new(),
                expects,
                error: error.clone(),
                note: None,
            },
        );
        match status {
            CheckStatus::Error => Err(format!(
                "check `{}`: {}",
                spec.name,
                error.unwrap_or_default()
            )),
            s => Ok(V::Bool(passed_for(s))),
        }
    }

    fn probe_display(&self, spec: &CheckSpec, scope: &Bindings) -> Result<String, String> {
        Ok(match &spec.probe {
            Probe::Http(h) => format!("{} {}", h.method, self.render(&h.url, scope, None)?.display),
            Probe::Promql { query } => {
                format!("promql {}", self.render(query, scope, None)?.display)
            }
            Probe::Shell { command } => {
                format!("shell {}", self.render(command, scope, None)?.display)
            }
        })
    }

    /// Runs a probe. `Err((status, message))` when there is no observation
    /// (error) or nothing to observe (no_data).
    async fn probe(
        &self,
        call: &Call,
        spec: &CheckSpec,
        scope: &Bindings,
    ) -> (String, Result<IndexMap<String, V>, (CheckStatus, String)>) {
        let default_timeout = self.settings().check_timeout;
        let err = |e: AdapterError| (CheckStatus::Error, e.message);
        let mut obs = IndexMap::new();
        match &spec.probe {
            Probe::Http(h) => {
                let url = match self.render(&h.url, scope, None) {
                    Ok(u) => u,
                    Err(e) => return (h.method.clone(), Err((CheckStatus::Error, e))),
                };
                let display = format!("{} {}", h.method, url.display);
                let mut headers = Vec::new();
                for hd in &h.headers {
                    match self.render(&hd.value, scope, None) {
                        Ok(v) => headers.push((hd.name.clone(), v)),
                        Err(e) => return (display, Err((CheckStatus::Error, e))),
                    }
                }
                let body = match &h.body {
                    Some(b) => match self.render(&b.text, scope, None) {
                        Ok(t) => Some(HttpBody {
                            kind: b.kind,
                            text: t,
                        }),
                        Err(e) => return (display, Err((CheckStatus::Error, e))),
                    },
                    None => None,
                };
                let timeout = Some(h.timeout.unwrap_or(default_timeout));
                let req = HttpCall {
                    method: h.method.clone(),
                    url,
                    headers,
                    body,
                    timeout,
                };
                let r = self
                    .guarded(
                        self.adapters.probes.http.send(call, &req),
                        timeout,
                        &call.cancel,
                    )
                    .await;
                match r {
                    Ok(resp) => {
                        obs.insert("status".into(), V::Int(i64::from(resp.status)));
                        obs.insert("elapsed".into(), V::Dur(resp.elapsed));
                        obs.insert("body".into(), V::Str(resp.body.clone()));
                        if let Some(j) = &resp.json {
                            obs.insert("json".into(), V::from_json(j));
                        }
                        (display, Ok(obs))
                    }
                    Err(e) => (display, Err(err(e))),
                }
            }
            Probe::Promql { query } => {
                let q = match self.render(query, scope, None) {
                    Ok(q) => q,
                    Err(e) => return ("promql".into(), Err((CheckStatus::Error, e))),
                };
                let display = format!("promql {}", q.display);
                let timeout = Some(default_timeout);
                let req = PromqlQuery {
                    query: q,
                    base_url: self.settings().prometheus_url.clone(),
                    timeout,
                };
                let r = self
                    .guarded(
                        self.adapters.probes.promql.query(call, &req),
                        timeout,
                        &call.cancel,
                    )
                    .await;
                match r {
                    Ok(a) => match promql_value(&a.result) {
                        Ok(v) => {
                            obs.insert("value".into(), V::Float(v));
                            obs.insert("elapsed".into(), V::Dur(a.elapsed));
                            (display, Ok(obs))
                        }
                        Err(e) => (display, Err(e)),
                    },
                    Err(e) => (display, Err(err(e))),
                }
            }
            Probe::Shell { command } => {
                let c = match self.render(command, scope, None) {
                    Ok(c) => c,
                    Err(e) => return ("shell".into(), Err((CheckStatus::Error, e))),
                };
                let display = format!("shell {}", c.display);
                let timeout = Some(default_timeout);
                let req = ShellRequest {
                    command: c,
                    cwd: self.settings().shell_cwd.clone(),
                    env: self.settings().shell_env.clone(),
                    timeout,
                };
                let r = self
                    .guarded(
                        self.adapters.probes.shell.run(call, &req),
                        timeout,
                        &call.cancel,
                    )
                    .await;
                match r {
                    Ok(out) => {
                        obs.insert(
                            "exit".into(),
                            out.exit.map(|e| V::Int(i64::from(e))).unwrap_or(V::Null),
                        );
                        obs.insert("stdout".into(), V::Str(out.stdout.clone()));
                        obs.insert("stderr".into(), V::Str(out.stderr.clone()));
                        obs.insert("elapsed".into(), V::Dur(out.elapsed));
                        (display, Ok(obs))
                    }
                    Err(e) => (display, Err(err(e))),
                }
            }
        }
    }

    /// Calls an adapter with a safety net: the adapter enforces `timeout`
    /// itself; if it has not answered `GRACE` after it (or after a cancel),
    /// the call is abandoned.
    pub(crate) async fn guarded<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, AdapterError>>,
        timeout: Option<Duration>,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<T, AdapterError> {
        let safety = async {
            match timeout {
                Some(t) => tokio::time::sleep(t.saturating_add(super::GRACE)).await,
                None => std::future::pending::<()>().await,
            }
        };
        let cancelled = async {
            cancel.cancelled().await;
            tokio::time::sleep(super::GRACE).await;
        };
        tokio::select! {
            // The answer first: an adapter that answers at once (a dry run)
            // never arms the two timers.
            biased;
            r = fut => r,
            _ = safety => Err(AdapterError::timeout(timeout.unwrap_or_default())),
            _ = cancelled => Err(AdapterError::cancelled()),
        }
    }

    /// Polls `policy.condition` every `policy.every` until it has held
    /// `policy.consecutive` times in a row or the window closes.
    pub async fn verify(
        &self,
        node: Option<&str>,
        policy: &VerifyPolicy,
        purpose: ConditionPurpose,
        scope: &Bindings,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<(), String> {
        let clock = *self.emitter.clock();
        let start = clock.now();
        let deadline = start + policy.within;
        let needed = policy.consecutive.max(1);
        let mut streak = 0u32;
        let mut poll = 0u32;
        let mut last = String::new();
        loop {
            poll += 1;
            let out = self
                .condition(node, &policy.condition, purpose, scope, poll)
                .await;
            let passed = match &out.result {
                Ok(Some(b)) => *b,
                // Undecidable in a dry run: the check defaults apply, and a
                // value from a simulated step is taken as holding.
                Ok(None) => true,
                Err(e) => {
                    last = e.clone();
                    false
                }
            };
            if !passed && last.is_empty() {
                last = "condition false".into();
            }
            streak = if passed { streak + 1 } else { 0 };
            let now = clock.now();
            let remaining = deadline.saturating_duration_since(now);
            self.emit(
                node,
                EventKind::VerifyPoll {
                    poll,
                    passed,
                    streak,
                    needed,
                    remaining_ms: ms(remaining),
                },
            );
            if streak >= needed {
                return Ok(());
            }
            if now + policy.every > deadline {
                return Err(format!(
                    "verify `{}` did not hold {} time(s) in a row within {} ({} poll(s); last: {})",
                    policy.condition.text,
                    needed,
                    humantime::format_duration(policy.within),
                    poll,
                    if passed { "passed" } else { last.as_str() }
                ));
            }
            tokio::select! {
                _ = tokio::time::sleep(policy.every) => {}
                _ = cancel.cancelled() => return Err("cancelled during verify".into()),
            }
            last.clear();
        }
    }
}

/// A PromQL result as one number: a scalar or a single sample. NaN and an
/// empty vector are `no_data`; several samples or another type is an error.
pub fn promql_value(r: &PromqlResult) -> Result<f64, (CheckStatus, String)> {
    let v = match r {
        PromqlResult::Scalar { value } => *value,
        PromqlResult::Vector { samples } => match samples.as_slice() {
            [] => return Err((CheckStatus::NoData, "the query returned an empty vector".into())),
            [one] => one.value,
            many => {
                return Err((
                    CheckStatus::Error,
                    format!(
                        "the query returned {} samples; a check needs exactly one (aggregate with sum(), max() ... or filter by label)",
                        many.len()
                    ),
                ))
            }
        },
        PromqlResult::Other { result_type } => {
            return Err((
                CheckStatus::Error,
                format!("the query returned a {result_type}; a check needs a scalar or a one-sample vector"),
            ))
        }
    };
    if v.is_nan() {
        return Err((CheckStatus::NoData, "the query returned NaN".into()));
    }
    Ok(v)
}
