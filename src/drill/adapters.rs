//! Drill adapters: every action, probe and approval answers from the
//! scenario's script, on the run's (virtual) clock. Nothing is spawned,
//! sent or asked.

use super::scenario::{ActionResult, ActionScript, Answer, CheckScript, Scenario};
use crate::adapters::*;
use crate::clock::Clock;
use crate::events::CheckStatus;
use crate::events::Phase;
use crate::events::{Event, EventKind};
use crate::plan::CheckSpec;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The scripted world of one drill.
pub struct DrillWorld {
    scenario: Scenario,
    clock: Clock,
    /// The run's events so far: checks can answer by what has happened.
    events: Arc<Mutex<Vec<Event>>>,
    probes: Mutex<HashMap<String, u32>>,
}

impl DrillWorld {
    pub fn new(scenario: Scenario, clock: Clock, events: Arc<Mutex<Vec<Event>>>) -> Arc<Self> {
        Arc::new(DrillWorld {
            scenario,
            clock,
            events,
            probes: Mutex::new(HashMap::new()),
        })
    }

    /// The adapter set for a drill.
    pub fn adapters(self: &Arc<Self>) -> Adapters {
        Adapters {
            shell: self.clone(),
            http: self.clone(),
            promql: self.clone(),
            notify: self.clone(),
            approve: self.clone(),
            probes: ProbeAdapters {
                shell: self.clone(),
                http: self.clone(),
                promql: self.clone(),
            },
            oracle: Some(self.clone()),
        }
    }

    fn script(&self, call: &Call) -> ActionScript {
        let (table, node) = match call.phase {
            Phase::Undo => (&self.scenario.undo, call.node.as_str()),
            // A status update (the run's or a step's) answers as scripted
            // under `status_update`, not as the step's action.
            Phase::Status => (&self.scenario.actions, crate::exec::status::RUN_NODE),
            _ => (&self.scenario.actions, call.node.as_str()),
        };
        let Some(base) = table.get(node) else {
            return ActionScript::default();
        };
        match call.item.as_ref().and_then(|i| base.items.get(i)) {
            Some(item) => item.clone(),
            None => base.clone(),
        }
    }

    /// Waits the scripted time of an attempt; `Err(Timeout)` if that is
    /// longer than the request's timeout.
    async fn take_time(
        &self,
        script: &ActionScript,
        timeout: Option<Duration>,
    ) -> AdapterResult<Duration> {
        let takes = script.takes.map(|d| d.0).unwrap_or_default();
        match timeout {
            Some(t) if takes > t => {
                tokio::time::sleep(t).await;
                Err(AdapterError::timeout(t))
            }
            _ => {
                tokio::time::sleep(takes).await;
                Ok(takes)
            }
        }
    }

    /// What this attempt does, after `fail_first`.
    fn result(script: &ActionScript, attempt: u32) -> ActionResult {
        match script.fail_first {
            Some(n) if attempt <= n => match script.result {
                Some(ActionResult::Ok) | None => ActionResult::Fail,
                Some(r) => r,
            },
            Some(_) => ActionResult::Ok,
            None => script.result.unwrap_or(ActionResult::Ok),
        }
    }

    async fn scripted_timeout(timeout: Option<Duration>) -> AdapterError {
        match timeout {
            Some(t) => {
                tokio::time::sleep(t).await;
                AdapterError::timeout(t)
            }
            None => AdapterError::new(
                ErrorKind::Timeout,
                "drill: scripted timeout (the step sets no timeout, so it fails at once)",
            ),
        }
    }

    fn check_answer(&self, check: &str) -> (Answer, String) {
        let probe = {
            let mut p = self.probes.lock().unwrap_or_else(|e| e.into_inner());
            let n = p.entry(check.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let Some(script) = self.scenario.checks.get(check) else {
            return (Answer::Pass, "drill: not scripted, passes".into());
        };
        match script {
            CheckScript::Always(a) => (*a, "drill: scripted".into()),
            CheckScript::Sequence(seq) => {
                let i = (probe as usize)
                    .saturating_sub(1)
                    .min(seq.len().saturating_sub(1));
                (
                    seq.get(i).copied().unwrap_or(Answer::Pass),
                    format!("drill: scripted answer for probe {probe}"),
                )
            }
            CheckScript::Rules(rules) => {
                let now = self.clock.elapsed();
                for (i, rule) in rules.rules.iter().enumerate() {
                    let mut ok = true;
                    if let Some(after) = rule.after {
                        ok &= now >= after.0;
                    }
                    if let Some(n) = rule.from_probe {
                        ok &= probe >= n;
                    }
                    let plus = rule.plus.map(|d| d.0).unwrap_or_default();
                    if let Some(step) = &rule.succeeded {
                        ok &= self.succeeded_at(step).is_some_and(|t| now >= t + plus);
                    }
                    if let Some(step) = &rule.undone {
                        ok &= self.undone_at(step).is_some_and(|t| now >= t + plus);
                    }
                    if ok {
                        return (rule.answer, format!("drill: scripted (rule {})", i + 1));
                    }
                }
                (rules.default, "drill: scripted (default)".into())
            }
        }
    }

    /// When the step's undo finished well, if it has.
    fn undone_at(&self, step: &str) -> Option<Duration> {
        let events = self.events.lock().ok()?;
        events.iter().find_map(|e| match (&e.kind, &e.node) {
            (EventKind::UndoFinished { ok: true, .. }, Some(n)) if &**n == step => {
                Some(Duration::from_millis(e.t_ms))
            }
            _ => None,
        })
    }

    fn succeeded_at(&self, step: &str) -> Option<Duration> {
        let events = self.events.lock().ok()?;
        // The step's action finishing well is what changes the world; its
        // node succeeds only after its own `verify`, which may be waiting
        // for exactly this answer.
        events.iter().find_map(|e| match (&e.kind, &e.node) {
            (
                EventKind::ActionFinished {
                    phase: Phase::Action,
                    status: crate::events::ActionStatus::Ok,
                    item: None,
                    ..
                },
                Some(n),
            ) if &**n == step => Some(Duration::from_millis(e.t_ms)),
            (EventKind::NodeSucceeded { .. }, Some(n)) if &**n == step => {
                Some(Duration::from_millis(e.t_ms))
            }
            _ => None,
        })
    }
}

#[async_trait]
impl ShellAdapter for DrillWorld {
    async fn run(&self, call: &Call, req: &ShellRequest) -> AdapterResult<ShellOutput> {
        let script = self.script(call);
        let elapsed = self.take_time(&script, req.timeout).await?;
        match Self::result(&script, call.attempt) {
            ActionResult::Ok => Ok(ShellOutput {
                exit: Some(0),
                stdout: script.stdout.clone().unwrap_or_default(),
                elapsed,
                ..ShellOutput::default()
            }),
            ActionResult::Fail => Ok(ShellOutput {
                exit: Some(script.exit.unwrap_or(1)),
                stdout: script.stdout.clone().unwrap_or_default(),
                stderr: "drill: scripted failure".into(),
                elapsed,
                ..ShellOutput::default()
            }),
            ActionResult::Timeout => Err(Self::scripted_timeout(req.timeout).await),
            ActionResult::Error => Err(AdapterError::new(
                ErrorKind::Unreachable,
                "drill: scripted error",
            )),
        }
    }
}

#[async_trait]
impl HttpAdapter for DrillWorld {
    async fn send(&self, call: &Call, req: &HttpCall) -> AdapterResult<HttpResponse> {
        let script = self.script(call);
        let elapsed = self.take_time(&script, req.timeout).await?;
        let body = script
            .body
            .clone()
            .or_else(|| script.stdout.clone())
            .unwrap_or_default();
        let json = serde_json::from_str(&body).ok();
        match Self::result(&script, call.attempt) {
            ActionResult::Ok => Ok(HttpResponse {
                status: script.status.filter(|s| *s < 400).unwrap_or(200),
                elapsed,
                body,
                body_truncated: false,
                json,
            }),
            ActionResult::Fail => Ok(HttpResponse {
                status: script.status.filter(|s| *s >= 400).unwrap_or(500),
                elapsed,
                body,
                body_truncated: false,
                json,
            }),
            ActionResult::Timeout => Err(Self::scripted_timeout(req.timeout).await),
            ActionResult::Error => Err(AdapterError::new(
                ErrorKind::Unreachable,
                "drill: scripted error (connection refused)",
            )),
        }
    }
}

#[async_trait]
impl PromqlAdapter for DrillWorld {
    async fn query(&self, _call: &Call, _req: &PromqlQuery) -> AdapterResult<PromqlAnswer> {
        Err(AdapterError::new(
            ErrorKind::Other,
            "drill: checks are answered by the scenario, not probed",
        ))
    }
}

#[async_trait]
impl NotifyAdapter for DrillWorld {
    async fn send(&self, call: &Call, req: &NotifyRequest) -> AdapterResult<NotifyReceipt> {
        let script = self.script(call);
        let elapsed = self.take_time(&script, req.timeout).await?;
        match Self::result(&script, call.attempt) {
            ActionResult::Ok => Ok(NotifyReceipt {
                status: Some(200),
                elapsed,
            }),
            ActionResult::Fail => Ok(NotifyReceipt {
                status: Some(script.status.unwrap_or(500)),
                elapsed,
            }),
            ActionResult::Timeout => Err(Self::scripted_timeout(req.timeout).await),
            ActionResult::Error => Err(AdapterError::new(
                ErrorKind::Unreachable,
                "drill: scripted error",
            )),
        }
    }
}

#[async_trait]
impl ApproveAdapter for DrillWorld {
    /// The scripted answers in order, each at its virtual time; the
    /// starter's approval of an `approve ... by other` step is refused
    /// (reported like a real inbox does) and the next answer is waited for.
    async fn ask(&self, call: &Call, req: &ApprovalRequest) -> AdapterResult<ApprovalDecision> {
        let Some(answers) = self.scenario.approvals.get(&call.node) else {
            return Ok(ApprovalDecision {
                approved: true,
                by: "drill (not scripted: approved)".into(),
                reason: None,
            });
        };
        let timed_out = || {
            AdapterError::new(
                ErrorKind::Timeout,
                format!(
                    "approval timed out after {}",
                    humantime::format_duration(req.timeout.unwrap_or_default())
                ),
            )
        };
        let start = tokio::time::Instant::now();
        for script in &answers.0 {
            let after = script.after.map(|d| d.0).unwrap_or_default();
            if let Some(t) = req.timeout {
                if after > t {
                    tokio::time::sleep_until(start + t).await;
                    return Err(timed_out());
                }
            }
            tokio::time::sleep_until(start + after).await;
            let by = script.by.clone().unwrap_or_else(|| "drill".into());
            let starter = self.scenario.started_by.as_deref();
            if req.by_other && script.approve && starter == Some(by.as_str()) {
                if let Some(tx) = &req.attempts {
                    let _ = tx.send(RefusedNote {
                        by: by.clone(),
                        via: "drill".into(),
                        reason: script.reason.clone(),
                        why: crate::durable::approvals::starter_refused(&by, &call.node),
                    });
                }
                continue;
            }
            return Ok(ApprovalDecision {
                approved: script.approve,
                by,
                reason: script.reason.clone(),
            });
        }
        // Only the starter answered: nobody else does.
        match req.timeout {
            Some(t) => {
                tokio::time::sleep_until(start + t).await;
                Err(timed_out())
            }
            None => Err(AdapterError::new(
                ErrorKind::Refused,
                format!(
                    "drill: step `{}` must be approved by someone other than the run's \
                     starter, and no other answer is scripted",
                    call.node
                ),
            )),
        }
    }
}

impl CheckOracle for DrillWorld {
    fn answer(&self, _call: &Call, check: &CheckSpec) -> Option<OracleAnswer> {
        let (answer, note) = self.check_answer(&check.name);
        let status = match answer {
            Answer::Pass => CheckStatus::Pass,
            Answer::Fail => CheckStatus::Fail,
            Answer::NoData => CheckStatus::NoData,
            Answer::Error => CheckStatus::Error,
        };
        Some(OracleAnswer { status, note })
    }
}
