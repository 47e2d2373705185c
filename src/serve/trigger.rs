//! What an alert or a `POST /runs` does: find the route, claim the
//! deduplication key, start the run (or the proposal's dry run) through
//! the [`Launcher`], record it in the alert log; proposals and their
//! approval; a resolved alert. No HTTP here (see `api`).

use super::alert_log::{Action, AlertLog, Record};
use super::alertmanager::{Alert, AlertStatus};
use super::dedup::{Active, Dedup, Key};
use super::launcher::{Job, LaunchError, Launcher, Queue};
use super::routes::{Route, RouteMode, Routes};
use crate::durable::sys::now_rfc3339;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where the proposals are kept, in the runs directory (the whole list,
/// rewritten atomically at each change; reloaded at start). With a
/// PostgreSQL store they are rows of `runbook_proposals` instead.
pub const PROPOSALS_FILE: &str = "proposals.json";

/// A dry run waiting for someone to approve the live run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proposal {
    pub id: String,
    pub route: String,
    pub alertname: String,
    pub fingerprint: String,
    pub inputs: Vec<String>,
    pub dry_run_id: String,
    pub created: String,
    pub state: ProposalState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ProposalState {
    Pending,
    Approved {
        by: String,
        reason: String,
        run_id: String,
    },
    Denied {
        by: String,
        reason: String,
    },
    Cancelled {
        why: String,
    },
}

/// The alert handling state shared by the request handlers.
pub struct Trigger {
    pub routes: Routes,
    pub launcher: Arc<dyn Launcher>,
    pub dedup: Arc<Dedup>,
    pub log: Arc<AlertLog>,
    pub proposals: Mutex<IndexMap<String, Proposal>>,
    /// [`PROPOSALS_FILE`] in the runs directory.
    pub proposals_file: PathBuf,
    /// `serve --store postgres://...`: runs are queued for workers, and
    /// the store keeps the proposals and which alerts are being handled
    /// (`launcher` is this queue too).
    pub queue: Option<Arc<Queue>>,
}

impl ProposalState {
    /// Its name in the store (`runbook_proposals.state`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ProposalState::Pending => "pending",
            ProposalState::Approved { .. } => "approved",
            ProposalState::Denied { .. } => "denied",
            ProposalState::Cancelled { .. } => "cancelled",
        }
    }
}

impl Proposal {
    /// What the alert log records of a decision on this proposal: denied
    /// until an approval has started its run.
    fn decision_record(&self, by: &str, reason: &str) -> Record {
        Record {
            ts: now_rfc3339(),
            action: Action::ProposalDenied,
            route: Some(self.route.clone()),
            alertname: self.alertname.clone(),
            fingerprint: self.fingerprint.clone(),
            status: "firing".into(),
            run_id: None,
            proposal: Some(self.id.clone()),
            by: Some(by.to_owned()),
            detail: Some(reason.to_owned()),
        }
    }

    fn row(&self) -> Result<crate::store::postgres::serve::ProposalRow, String> {
        Ok(crate::store::postgres::serve::ProposalRow {
            id: self.id.clone(),
            route: self.route.clone(),
            fingerprint: self.fingerprint.clone(),
            state: self.state.as_str().to_owned(),
            body: serde_json::to_string(self).map_err(|e| e.to_string())?,
        })
    }
}

/// The proposals a PostgreSQL store keeps, oldest first.
pub fn stored_proposals(queue: &Queue) -> Result<Vec<Proposal>, String> {
    queue
        .store
        .proposals()?
        .into_iter()
        .map(|r| {
            serde_json::from_str(&r.body)
                .map_err(|e| format!("proposal {} in the store is not readable: {e}", r.id))
        })
        .collect()
}

/// The proposals kept in `file` (none if it does not exist yet); a
/// pending one holds its route and alert again (deduplication).
pub fn load_proposals(file: &Path, dedup: &Dedup) -> Result<IndexMap<String, Proposal>, String> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(IndexMap::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let list: Vec<Proposal> = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not readable: {e}", file.display()))?;
    let mut out = IndexMap::new();
    for p in list {
        if p.state == ProposalState::Pending {
            dedup.set(
                &(p.route.clone(), p.fingerprint.clone()),
                Active::Proposal(p.id.clone()),
            );
        }
        out.insert(p.id.clone(), p);
    }
    Ok(out)
}

/// What was done with one alert (the webhook's answer).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub fingerprint: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Trigger {
    /// Handles one alert (blocking: it may validate and start a run).
    pub fn alert(&self, alert: &Alert) -> Outcome {
        let alertname = alert.labels.get("alertname").cloned().unwrap_or_default();
        let mut rec = Record {
            ts: now_rfc3339(),
            action: Action::NoRoute,
            route: None,
            alertname,
            fingerprint: alert.fingerprint.clone(),
            status: alert.status.as_str().into(),
            run_id: None,
            proposal: None,
            by: None,
            detail: None,
        };
        let Some(route) = self.routes.route_for(alert) else {
            return self.done(rec);
        };
        rec.route = Some(route.name.clone());
        let key: Key = (route.name.clone(), alert.fingerprint.clone());
        if alert.status == AlertStatus::Resolved {
            rec.action = Action::Resolved;
            if let Some(Active::Proposal(pid)) = self.holder(&key) {
                rec.proposal = Some(pid.clone());
                if route.cancel_on_resolved && self.cancel_proposal(&key, &pid) {
                    rec.action = Action::ProposalCancelled;
                }
            }
            return self.done(rec);
        }
        if let Err(holder) = self.dedup.claim(&key) {
            rec.action = Action::Duplicate;
            rec.detail = Some(format!("already handled by {holder}"));
            if let Active::Run(id) = &holder {
                rec.run_id = Some(id.clone());
            }
            return self.done(rec);
        }
        let inputs = match route.inputs_for(alert) {
            Ok(i) => i,
            Err(e) => {
                self.dedup.release(&key, &Active::Starting);
                rec.action = Action::NotStarted;
                rec.detail = Some(e);
                return self.done(rec);
            }
        };
        let dry = route.mode != RouteMode::Run;
        match self.start(
            route,
            &key,
            inputs.clone(),
            dry,
            route.mode != RouteMode::Propose,
            "alertmanager",
        ) {
            Err(LaunchError::Held(holder)) => {
                // The store says another run or proposal handles it (this
                // server before a restart, or another server).
                rec.action = Action::Duplicate;
                rec.detail = Some(format!("already handled by {holder}"));
                if let Active::Run(id) = &holder {
                    rec.run_id = Some(id.clone());
                }
            }
            Ok(run_id) => {
                rec.run_id = Some(run_id.clone());
                rec.action = Action::Started;
                if route.mode == RouteMode::Propose {
                    let id = format!("p-{run_id}");
                    let p = Proposal {
                        id: id.clone(),
                        route: route.name.clone(),
                        alertname: rec.alertname.clone(),
                        fingerprint: alert.fingerprint.clone(),
                        inputs,
                        dry_run_id: run_id,
                        created: now_rfc3339(),
                        state: ProposalState::Pending,
                    };
                    if let Some(q) = &self.queue {
                        // The dry run's request holds the alert in the
                        // store until the proposal row does.
                        if let Err(e) = p.row().and_then(|row| q.store.insert_proposal(&row)) {
                            rec.action = Action::NotStarted;
                            rec.detail = Some(format!("the proposal was not stored: {e}"));
                            return self.done(rec);
                        }
                    } else {
                        if let Ok(mut ps) = self.proposals.lock() {
                            ps.insert(id.clone(), p);
                            self.keep(&ps);
                        }
                        self.dedup.set(&key, Active::Proposal(id.clone()));
                    }
                    rec.action = Action::Proposed;
                    rec.proposal = Some(id);
                }
            }
            Err(e) => {
                rec.action = Action::NotStarted;
                rec.detail = Some(e.to_string());
            }
        }
        self.done(rec)
    }

    /// What holds `key`: this process's claims, then (queued runs) the
    /// store's requests and proposals.
    fn holder(&self, key: &Key) -> Option<Active> {
        if let Some(h) = self.dedup.get(key) {
            return Some(h);
        }
        let q = self.queue.as_ref()?;
        match q.store.alert_holder(&key.0, &key.1) {
            Ok(h) => h.map(Active::from),
            Err(e) => {
                eprintln!("warning: {e}");
                None
            }
        }
    }

    /// Starts a run for `route` under the claimed `key`; `hold`: the key is
    /// held by the run until it ends (else the caller sets its holder).
    /// Releases the key on failure.
    fn start(
        &self,
        route: &Route,
        key: &Key,
        inputs: Vec<String>,
        dry_run: bool,
        hold: bool,
        started_by: &str,
    ) -> Result<String, LaunchError> {
        let job = Job {
            runbook: route.runbook.clone(),
            inputs,
            values: IndexMap::new(),
            dry_run,
            started_by: started_by.to_owned(),
            alert: Some(key.clone()),
        };
        let dedup = self.dedup.clone();
        let k = key.clone();
        let on_finish: super::launcher::OnFinish = Box::new(move |id, _| {
            if hold {
                dedup.release(&k, &Active::Run(id.to_owned()));
            }
        });
        match self.launcher.launch(job, on_finish) {
            Ok(id) if self.launcher.keeps_keys() => {
                // The store holds the alert now (the queued request).
                self.dedup.release(key, &Active::Starting);
                Ok(id)
            }
            Ok(id) => {
                if hold {
                    // The run may already have ended (and released
                    // nothing: the key was `Starting`).
                    self.dedup.set(key, Active::Run(id.clone()));
                    if self.finished(&id) {
                        self.dedup.release(key, &Active::Run(id.clone()));
                    }
                }
                Ok(id)
            }
            Err(e) => {
                self.dedup.release(key, &Active::Starting);
                Err(e)
            }
        }
    }

    /// A run launched here whose journal says it ended.
    fn finished(&self, run_id: &str) -> bool {
        let dir = self.log_dir().join(run_id);
        crate::durable::runs::run_summary(&dir).state != crate::durable::runs::RunStatus::Running
    }

    fn log_dir(&self) -> std::path::PathBuf {
        self.log.dir()
    }

    fn cancel_proposal(&self, key: &Key, pid: &str) -> bool {
        if let Some(q) = &self.queue {
            let cancelled = self.stored_proposal(q, pid).and_then(|mut p| {
                p.state = ProposalState::Cancelled {
                    why: "the alert resolved".into(),
                };
                let row = p.row()?;
                q.store.decide_proposal(pid, &row.state, &row.body, None)
            });
            return cancelled.unwrap_or_else(|e| {
                eprintln!("warning: {e}");
                false
            });
        }
        let Ok(mut ps) = self.proposals.lock() else {
            return false;
        };
        match ps.get_mut(pid) {
            Some(p) if p.state == ProposalState::Pending => {
                p.state = ProposalState::Cancelled {
                    why: "the alert resolved".into(),
                };
                self.keep(&ps);
                self.dedup.release(key, &Active::Proposal(pid.to_owned()));
                true
            }
            _ => false,
        }
    }

    /// Approves (starting the live run) or denies a pending proposal.
    pub fn decide_proposal(
        &self,
        pid: &str,
        approve: bool,
        by: &str,
        reason: &str,
    ) -> Result<Proposal, String> {
        if let Some(q) = &self.queue {
            return self.decide_stored(q, pid, approve, by, reason);
        }
        let p = {
            let ps = self.proposals.lock().map_err(|_| "poisoned".to_string())?;
            ps.get(pid)
                .cloned()
                .ok_or_else(|| format!("no proposal `{pid}`"))?
        };
        if p.state != ProposalState::Pending {
            return Err(format!("proposal `{pid}` is no longer pending"));
        }
        let key: Key = (p.route.clone(), p.fingerprint.clone());
        let mut rec = p.decision_record(by, reason);
        let state = if approve {
            let route = self
                .routes
                .get(&p.route)
                .ok_or_else(|| format!("the route `{}` is gone", p.route))?;
            self.dedup.set(&key, Active::Starting);
            let run_id = self
                .start(route, &key, p.inputs.clone(), false, true, by)
                .map_err(|e| e.to_string())?;
            rec.action = Action::ProposalApproved;
            rec.run_id = Some(run_id.clone());
            ProposalState::Approved {
                by: by.to_owned(),
                reason: reason.to_owned(),
                run_id,
            }
        } else {
            self.dedup.release(&key, &Active::Proposal(pid.to_owned()));
            ProposalState::Denied {
                by: by.to_owned(),
                reason: reason.to_owned(),
            }
        };
        let mut ps = self.proposals.lock().map_err(|_| "poisoned".to_string())?;
        let out = ps.get_mut(pid).map(|q| {
            q.state = state;
            q.clone()
        });
        self.keep(&ps);
        drop(ps);
        self.done(rec);
        out.ok_or_else(|| format!("no proposal `{pid}`"))
    }

    /// One proposal of the store.
    fn stored_proposal(&self, q: &Queue, pid: &str) -> Result<Proposal, String> {
        stored_proposals(q)?
            .into_iter()
            .find(|p| p.id == pid)
            .ok_or_else(|| format!("no proposal `{pid}`"))
    }

    /// [`Trigger::decide_proposal`] with the store: the decision is placed
    /// once, and an approval queues the live run in the same transaction.
    fn decide_stored(
        &self,
        q: &Queue,
        pid: &str,
        approve: bool,
        by: &str,
        reason: &str,
    ) -> Result<Proposal, String> {
        let mut p = self.stored_proposal(q, pid)?;
        if p.state != ProposalState::Pending {
            return Err(format!("proposal `{pid}` is no longer pending"));
        }
        let mut rec = p.decision_record(by, reason);
        let live = if approve {
            let route = self
                .routes
                .get(&p.route)
                .ok_or_else(|| format!("the route `{}` is gone", p.route))?;
            let r = q
                .prepare(Job {
                    runbook: route.runbook.clone(),
                    inputs: p.inputs.clone(),
                    values: IndexMap::new(),
                    dry_run: false,
                    started_by: by.to_owned(),
                    alert: Some((p.route.clone(), p.fingerprint.clone())),
                })
                .map_err(|e| e.to_string())?;
            rec.action = Action::ProposalApproved;
            rec.run_id = Some(r.run_id.clone());
            p.state = ProposalState::Approved {
                by: by.to_owned(),
                reason: reason.to_owned(),
                run_id: r.run_id.clone(),
            };
            Some(r)
        } else {
            p.state = ProposalState::Denied {
                by: by.to_owned(),
                reason: reason.to_owned(),
            };
            None
        };
        let row = p.row()?;
        if !q
            .store
            .decide_proposal(pid, &row.state, &row.body, live.as_ref())?
        {
            return Err(format!("proposal `{pid}` is no longer pending"));
        }
        self.done(rec);
        Ok(p)
    }

    /// Starts a run from `POST /runs`: a route's runbook with the given
    /// inputs (no alert, so no deduplication but the runbook's lock).
    pub fn run_route(
        &self,
        route: &str,
        values: IndexMap<String, yaml_serde::Value>,
        dry_run: bool,
        started_by: &str,
    ) -> Result<String, RunError> {
        let route = self
            .routes
            .get(route)
            .ok_or_else(|| RunError::UnknownRoute(route.to_owned()))?;
        let job = Job {
            runbook: route.runbook.clone(),
            inputs: Vec::new(),
            values,
            dry_run,
            started_by: started_by.to_owned(),
            alert: None,
        };
        self.launcher
            .launch(job, Box::new(|_, _| {}))
            .map_err(|e| match e {
                LaunchError::Store(e) => RunError::Store(e),
                e => RunError::Invalid(e.to_string()),
            })
    }

    /// The proposals (with a store: its rows; unreadable ones are an
    /// empty list and a warning).
    pub fn proposals(&self) -> Vec<Proposal> {
        if let Some(q) = &self.queue {
            return stored_proposals(q).unwrap_or_else(|e| {
                eprintln!("warning: {e}");
                Vec::new()
            });
        }
        self.proposals
            .lock()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Writes the proposals to [`PROPOSALS_FILE`] (called with the lock
    /// held, so that writes come in the order of the changes).
    fn keep(&self, ps: &IndexMap<String, Proposal>) {
        let list: Vec<&Proposal> = ps.values().collect();
        let dir = self.log_dir();
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| serde_json::to_vec_pretty(&list).map_err(std::io::Error::other))
            .and_then(|b| crate::durable::sys::write_atomic(&self.proposals_file, &b, true));
        if let Err(e) = written {
            eprintln!(
                "warning: cannot write {}: {e} (pending proposals would be lost on a restart)",
                self.proposals_file.display()
            );
        }
    }

    fn done(&self, rec: Record) -> Outcome {
        if let Err(e) = self.log.append(&rec) {
            eprintln!("warning: cannot append to the alert log: {e}");
        }
        Outcome {
            fingerprint: rec.fingerprint,
            action: rec.action,
            run_id: rec.run_id,
            detail: rec.detail,
        }
    }
}

/// Why `POST /runs` started nothing.
#[derive(Debug)]
pub enum RunError {
    UnknownRoute(String),
    Invalid(String),
    /// The store could not queue it.
    Store(String),
}
