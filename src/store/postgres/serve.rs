//! What `runbook serve --store postgres://...` keeps in the store
//! (migration 6): the requests it queues for `runbook worker` (dry run or
//! not, who started them, structured inputs, the run id chosen for them,
//! the route and alert that started them), the deduplication of alerts
//! across server restarts, and the proposals waiting for approval.
//!
//! * **Deduplication**: [`PgStore::enqueue_served`] queues a request of an
//!   alert (route, fingerprint) only if no request of it is queued, running
//!   or orphaned and no proposal of it is pending; the check and the insert
//!   are one transaction under an advisory lock of the pair, so two servers
//!   (or a restarted one) never both start it.
//! * **Proposals**: rows of `runbook_proposals` with the proposal as the
//!   server shows it (`body`, JSON); a decision is placed once
//!   (`WHERE state = 'pending'`), and approving one queues its live run in
//!   the same transaction.

use super::queue::{NewRequest, CHANNEL};
use super::PgStore;
use tokio_postgres::{Client, Transaction};

/// A request the server queues: [`NewRequest`] and what a served run
/// needs besides.
#[derive(Debug, Clone)]
pub struct ServedRequest {
    pub request: NewRequest,
    pub dry_run: bool,
    pub started_by: String,
    /// Structured inputs (a JSON object), `None`: none.
    pub values: Option<String>,
    /// The run id the worker gives the run.
    pub run_id: String,
    /// The route and alert fingerprint that started it (deduplication).
    pub alert: Option<(String, String)>,
}

/// What holds an alert's (route, fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A request queued, running or orphaned: its run id.
    Run(String),
    /// A pending proposal: its id.
    Proposal(String),
}

/// A proposal's row.
#[derive(Debug, Clone)]
pub struct ProposalRow {
    pub id: String,
    pub route: String,
    pub fingerprint: String,
    /// `pending`, `approved`, `denied` or `cancelled`.
    pub state: String,
    /// The proposal as the server shows it (JSON).
    pub body: String,
}

/// What a worker needs of a request the server queued (all defaults for
/// a request of `runbook enqueue`).
#[derive(Debug, Clone, Default)]
pub struct Served {
    pub dry_run: bool,
    pub started_by: Option<String>,
    pub values: Option<String>,
    pub run_id: Option<String>,
}

const HOLDER: &str = "SELECT 'proposal', id FROM runbook_proposals
                       WHERE route = $1 AND fingerprint = $2 AND state = 'pending'
                      UNION ALL
                      SELECT 'run', coalesce(run_id, planned_run_id) FROM runbook_queue
                       WHERE route = $1 AND fingerprint = $2
                         AND state IN ('queued', 'running', 'orphaned')
                      LIMIT 1";

async fn holder_on(
    store: &PgStore,
    tx: &Transaction<'_>,
    route: &str,
    fingerprint: &str,
) -> Result<Option<Holder>, String> {
    let row = tx
        .query_opt(HOLDER, &[&route, &fingerprint])
        .await
        .map_err(|e| store.db_message("reading the alert's runs", &e))?;
    Ok(row.map(|r| {
        let kind: String = r.get(0);
        let id: Option<String> = r.get(1);
        let id = id.unwrap_or_default();
        if kind == "proposal" {
            Holder::Proposal(id)
        } else {
            Holder::Run(id)
        }
    }))
}

/// Serializes everything about one alert (route, fingerprint) until the
/// transaction ends.
async fn lock_alert(
    store: &PgStore,
    tx: &Transaction<'_>,
    route: &str,
    fingerprint: &str,
) -> Result<(), String> {
    // The route's length first: no two pairs give the same key.
    let key = format!("runbook serve {}:{route}{fingerprint}", route.len());
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&key],
    )
    .await
    .map(|_| ())
    .map_err(|e| store.db_message("locking the alert", &e))
}

async fn insert(store: &PgStore, tx: &Transaction<'_>, r: &ServedRequest) -> Result<i64, String> {
    let fail = |e: tokio_postgres::Error| store.db_message("enqueue", &e);
    let (route, fingerprint) = match &r.alert {
        Some((a, b)) => (Some(a.as_str()), Some(b.as_str())),
        None => (None, None),
    };
    let id: i64 = tx
        .query_one(
            "INSERT INTO runbook_queue (path, source, inputs, tag, dry_run, started_by,
                                        input_values, planned_run_id, route, fingerprint)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &r.request.path,
                &r.request.source,
                &r.request.inputs,
                &r.request.tag,
                &r.dry_run,
                &r.started_by,
                &r.values,
                &r.run_id,
                &route,
                &fingerprint,
            ],
        )
        .await
        .map_err(fail)?
        .get(0);
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &id.to_string()])
        .await
        .map_err(fail)?;
    Ok(id)
}

impl PgStore {
    /// Queues `r` for the workers (and notifies them); for an alert, only
    /// if nothing holds its route and fingerprint: else what does.
    pub fn enqueue_served(&self, r: &ServedRequest) -> Result<Result<i64, Holder>, String> {
        super::block_on(async {
            let mut client = self.connect_checked().await?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| self.db_message("enqueue", &e))?;
            if let Some((route, fingerprint)) = &r.alert {
                lock_alert(self, &tx, route, fingerprint).await?;
                if let Some(h) = holder_on(self, &tx, route, fingerprint).await? {
                    return Ok(Err(h));
                }
            }
            let id = insert(self, &tx, r).await?;
            tx.commit()
                .await
                .map_err(|e| self.db_message("enqueue", &e))?;
            Ok(Ok(id))
        })?
    }

    /// What holds the alert's route and fingerprint, if anything.
    pub fn alert_holder(&self, route: &str, fingerprint: &str) -> Result<Option<Holder>, String> {
        super::block_on(async {
            let mut client = self.connect_checked().await?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| self.db_message("reading the alert's runs", &e))?;
            holder_on(self, &tx, route, fingerprint).await
        })?
    }

    /// Stores a new proposal (pending).
    pub fn insert_proposal(&self, p: &ProposalRow) -> Result<(), String> {
        super::block_on(async {
            let client = self.connect_checked().await?;
            client
                .execute(
                    "INSERT INTO runbook_proposals (id, route, fingerprint, state, body)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&p.id, &p.route, &p.fingerprint, &p.state, &p.body],
                )
                .await
                .map(|_| ())
                .map_err(|e| self.db_message("storing a proposal", &e))
        })?
    }

    /// Every proposal, oldest first.
    pub fn proposals(&self) -> Result<Vec<ProposalRow>, String> {
        super::block_on(async {
            let client = self.connect_checked().await?;
            let rows = client
                .query(
                    "SELECT id, route, fingerprint, state, body FROM runbook_proposals
                     ORDER BY created, id",
                    &[],
                )
                .await
                .map_err(|e| self.db_message("reading the proposals", &e))?;
            Ok(rows
                .iter()
                .map(|r| ProposalRow {
                    id: r.get(0),
                    route: r.get(1),
                    fingerprint: r.get(2),
                    state: r.get(3),
                    body: r.get(4),
                })
                .collect())
        })?
    }

    /// Decides the pending proposal `id` (its new `state` and `body`),
    /// queueing `then` in the same transaction (an approval's live run).
    /// `false`: it was not pending any more (nothing queued).
    pub fn decide_proposal(
        &self,
        id: &str,
        state: &str,
        body: &str,
        then: Option<&ServedRequest>,
    ) -> Result<bool, String> {
        super::block_on(async {
            let mut client = self.connect_checked().await?;
            let fail = |e: tokio_postgres::Error| self.db_message("deciding a proposal", &e);
            let tx = client.transaction().await.map_err(fail)?;
            let n = tx
                .execute(
                    "UPDATE runbook_proposals SET state = $2, body = $3, decided = now()
                     WHERE id = $1 AND state = 'pending'",
                    &[&id, &state, &body],
                )
                .await
                .map_err(fail)?;
            if n == 0 {
                return Ok(false);
            }
            if let Some(r) = then {
                insert(self, &tx, r).await?;
            }
            tx.commit().await.map_err(fail)?;
            Ok(true)
        })?
    }

    /// The journal lines of `run_id` after `after` (seq, line), in order:
    /// a live page following a run.
    pub async fn journal_after(
        &self,
        client: &Client,
        run_id: &str,
        after: i64,
    ) -> Result<Vec<(i64, String)>, String> {
        let rows = client
            .query(
                "SELECT seq, line FROM runbook_journal WHERE run_id = $1 AND seq > $2
                 ORDER BY seq",
                &[&run_id, &after],
            )
            .await
            .map_err(|e| self.db_message("reading the journal", &e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// What the server queued with request `id` besides the runbook and
    /// its `NAME=VALUE` inputs.
    pub async fn served(&self, client: &Client, id: i64) -> Result<Served, String> {
        let row = client
            .query_opt(
                "SELECT dry_run, started_by, input_values, planned_run_id
                 FROM runbook_queue WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(|e| self.db_message("reading a request", &e))?;
        Ok(row
            .map(|r| Served {
                dry_run: r.get(0),
                started_by: r.get(1),
                values: r.get(2),
                run_id: r.get(3),
            })
            .unwrap_or_default())
    }

    /// Whether the store holds run `run_id`.
    pub fn run_exists(&self, run_id: &str) -> Result<bool, String> {
        super::block_on(async {
            let client = self.connect_checked().await?;
            client
                .query_opt("SELECT 1 FROM runbook_runs WHERE run_id = $1", &[&run_id])
                .await
                .map(|r| r.is_some())
                .map_err(|e| self.db_message("reading the run", &e))
        })?
    }

    /// The runbook source a live run started with (name, text); `None`
    /// for a dry run (its source is not stored).
    pub fn run_source(&self, run_id: &str) -> Result<Option<(String, String)>, String> {
        super::block_on(async {
            let client = self.connect_checked().await?;
            let row = client
                .query_opt(
                    "SELECT source_name, source FROM runbook_runs
                     WHERE run_id = $1 AND source IS NOT NULL",
                    &[&run_id],
                )
                .await
                .map_err(|e| self.db_message("reading the run", &e))?;
            Ok(row.map(|r| {
                let name: Option<String> = r.get(0);
                (name.unwrap_or_default(), r.get(1))
            }))
        })?
    }
}
