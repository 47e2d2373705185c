//! The dry-run adapters: nothing is spawned, sent, notified or asked.
//!
//! Each call succeeds at once with an empty answer; the executor has
//! already logged exactly what would have been executed (the `display`
//! form of the request, secrets as `***`) in its `action_started` event.
//! Checks are answered by [`Assumptions`]: every check passes unless
//! `--assume CHECK=false` says otherwise, and the answer's note says so.

use super::*;
use crate::plan::{CheckSpec, Probe};

/// Simulates every adapter kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct DryRun;

/// What every simulated outcome says about itself.
pub const NOTE: &str = "dry run: not executed";

#[async_trait]
impl ShellAdapter for DryRun {
    async fn run(&self, _call: &Call, _req: &ShellRequest) -> AdapterResult<ShellOutput> {
        Ok(ShellOutput {
            exit: Some(0),
            ..ShellOutput::default()
        })
    }
}

#[async_trait]
impl HttpAdapter for DryRun {
    async fn send(&self, _call: &Call, _req: &HttpCall) -> AdapterResult<HttpResponse> {
        Ok(HttpResponse {
            status: 200,
            ..HttpResponse::default()
        })
    }
}

#[async_trait]
impl PromqlAdapter for DryRun {
    async fn query(&self, _call: &Call, _req: &PromqlQuery) -> AdapterResult<PromqlAnswer> {
        // Never consulted when the oracle answers; an empty vector (no_data)
        // is the honest answer of a Prometheus that was not asked.
        Ok(PromqlAnswer {
            result: PromqlResult::Vector { samples: vec![] },
            elapsed: Duration::ZERO,
        })
    }
}

#[async_trait]
impl NotifyAdapter for DryRun {
    async fn send(&self, _call: &Call, _req: &NotifyRequest) -> AdapterResult<NotifyReceipt> {
        Ok(NotifyReceipt::default())
    }
}

#[async_trait]
impl ApproveAdapter for DryRun {
    async fn ask(&self, _call: &Call, _req: &ApprovalRequest) -> AdapterResult<ApprovalDecision> {
        Ok(ApprovalDecision {
            approved: true,
            by: "dry run".into(),
            reason: Some("approvals are granted in a dry run".into()),
        })
    }
}

/// Dry-run answers to checks: pass unless assumed otherwise.
#[derive(Debug, Clone, Default)]
pub struct Assumptions {
    /// `--assume CHECK=true|false`.
    pub assume: IndexMap<String, bool>,
    /// `--live-checks`: read-only probes (`http get`/`head`, `promql`) not
    /// named in `assume` are probed for real.
    pub live_checks: bool,
}

impl Assumptions {
    pub fn new(assume: IndexMap<String, bool>) -> Self {
        Assumptions {
            assume,
            live_checks: false,
        }
    }

    pub fn with_live_checks(mut self, live: bool) -> Self {
        self.live_checks = live;
        self
    }
}

/// Whether a probe only reads (may be run for real with `--live-checks`).
pub fn probe_is_read_only(probe: &Probe) -> bool {
    match probe {
        Probe::Http(h) => matches!(h.method.as_str(), "GET" | "HEAD"),
        Probe::Promql { .. } => true,
        // A shell probe could do anything: it stays simulated.
        Probe::Shell { .. } => false,
    }
}

impl CheckOracle for Assumptions {
    fn answer(&self, _call: &Call, check: &CheckSpec) -> Option<OracleAnswer> {
        match self.assume.get(&check.name) {
            Some(true) => Some(OracleAnswer {
                status: CheckStatus::Pass,
                note: format!("dry run: assumed to pass (--assume {}=true)", check.name),
            }),
            Some(false) => Some(OracleAnswer {
                status: CheckStatus::Fail,
                note: format!("dry run: assumed to fail (--assume {}=false)", check.name),
            }),
            None if self.live_checks && probe_is_read_only(&check.probe) => None,
            None => Some(OracleAnswer {
                status: CheckStatus::Pass,
                note: format!(
                    "dry run: not probed, passes by default (--assume {}=false to flip)",
                    check.name
                ),
            }),
        }
    }
}
