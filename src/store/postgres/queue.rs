//! The run queue (`runbook_queue`): requests stored by `runbook enqueue`,
//! claimed by `runbook worker` with `FOR UPDATE SKIP LOCKED` (two workers
//! never claim one request), woken by `NOTIFY runbook_queue`.
//!
//! A claimed request is `running` with its worker's name in `claimed_by`;
//! the worker renews `heartbeat` every third of the store's lease. A
//! request whose heartbeat is older than the lease belongs to a worker
//! that died: it is handed back (`queued`) when its run had not started
//! (no `run_id`). A started run whose journal the store keeps is taken
//! over by another worker once silent for the grace
//! ([`super::takeover`]), the request with it; any other started run is
//! marked `orphaned` (it is not started a second time).

use super::PgStore;
use std::time::Duration;
use tokio_postgres::Client;

/// The channel `enqueue` notifies and workers listen on.
pub const CHANNEL: &str = "runbook_queue";

/// A request to store: the runbook's source text and path, its inputs
/// (`NAME=VALUE`, as `--input` takes them) and an optional tag.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub path: String,
    pub source: String,
    pub inputs: Vec<String>,
    pub tag: Option<String>,
}

/// A request a worker claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub path: String,
    pub source: String,
    pub inputs: Vec<String>,
}

/// A row of `runbook queue`.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: i64,
    pub state: String,
    pub tag: Option<String>,
    pub path: String,
    pub claimed_by: Option<String>,
    pub attempts: i32,
    pub run_id: Option<String>,
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
}

impl PgStore {
    /// How long a worker's heartbeat (and a run's lock) lasts.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// A connection to a database whose schema is this binary's.
    pub async fn connect_checked(&self) -> Result<Client, String> {
        let client = self.connect().await?;
        self.check_schema(&client).await?;
        Ok(client)
    }

    /// Stores a request and notifies the workers; its id.
    pub fn enqueue(&self, req: &NewRequest) -> Result<i64, String> {
        super::block_on(async {
            let mut client = self.connect_checked().await?;
            let fail = |e: tokio_postgres::Error| self.db_message("enqueue", &e);
            let tx = client.transaction().await.map_err(fail)?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO runbook_queue (path, source, inputs, tag)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&req.path, &req.source, &req.inputs, &req.tag],
                )
                .await
                .map_err(fail)?
                .get(0);
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &id.to_string()])
                .await
                .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            Ok(id)
        })?
    }

    /// Every request, oldest first.
    pub fn list_queue(&self) -> Result<Vec<Listed>, String> {
        super::block_on(async {
            let client = self.connect_checked().await?;
            let rows = client
                .query(
                    "SELECT id, state, tag, path, claimed_by, attempts, run_id, outcome, exit_code
                     FROM runbook_queue ORDER BY id",
                    &[],
                )
                .await
                .map_err(|e| self.db_message("listing the queue", &e))?;
            Ok(rows
                .iter()
                .map(|r| Listed {
                    id: r.get(0),
                    state: r.get(1),
                    tag: r.get(2),
                    path: r.get(3),
                    claimed_by: r.get(4),
                    attempts: r.get(5),
                    run_id: r.get(6),
                    outcome: r.get(7),
                    exit_code: r.get(8),
                })
                .collect())
        })?
    }

    /// A connection listening on [`CHANNEL`] (on the current runtime): a
    /// message on the receiver for each notification; the receiver closes
    /// when the connection ends (the worker then polls). The connection
    /// lives as long as the returned client.
    pub async fn listen(
        &self,
    ) -> Result<(Client, tokio::sync::mpsc::UnboundedReceiver<()>), String> {
        self.listen_on(CHANNEL).await
    }

    /// A connection listening on `channel` (see [`PgStore::listen`]).
    pub async fn listen_on(
        &self,
        channel: &str,
    ) -> Result<(Client, tokio::sync::mpsc::UnboundedReceiver<()>), String> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let client = self.open(Some(tx)).await?;
        client
            .batch_execute(&format!("LISTEN {channel}"))
            .await
            .map_err(|e| self.db_message("LISTEN", &e))?;
        Ok((client, rx))
    }

    /// Hands back the requests of workers whose heartbeat is older than
    /// the lease: `queued` again if their run had not started, else
    /// `orphaned`. How many were handed back and orphaned.
    pub async fn reap(&self, client: &Client) -> Result<(u64, u64), String> {
        let secs = self.lease.as_secs_f64();
        let fail = |e: tokio_postgres::Error| self.db_message("handing back requests", &e);
        let back = client
            .execute(
                "UPDATE runbook_queue SET state = 'queued', claimed_by = NULL, heartbeat = NULL
                 WHERE state = 'running' AND run_id IS NULL
                   AND heartbeat < now() - make_interval(secs => $1)",
                &[&secs],
            )
            .await
            .map_err(fail)?;
        // A run the store can hand to another machine stays `running`: a
        // worker takes it over ([`PgStore::claim_orphan`]) and the request
        // with it. Only a run whose journal is not in the store (or whose
        // row was written before migration 5, or ended) is orphaned.
        let orphaned = client
            .execute(
                "UPDATE runbook_queue q SET state = 'orphaned', finished = now()
                 WHERE state = 'running' AND run_id IS NOT NULL
                   AND heartbeat < now() - make_interval(secs => $1)
                   AND NOT EXISTS (SELECT 1 FROM runbook_runs r
                                   WHERE r.run_id = q.run_id AND r.source IS NOT NULL
                                     AND r.ended IS NULL)",
                &[&secs],
            )
            .await
            .map_err(fail)?;
        Ok((back, orphaned))
    }

    /// Claims the oldest queued request (of one of `tags`, if any) for
    /// `worker`; `None` when there is none free.
    pub async fn claim(
        &self,
        client: &Client,
        worker: &str,
        tags: &[String],
    ) -> Result<Option<Claimed>, String> {
        let row = client
            .query_opt(
                "UPDATE runbook_queue SET state = 'running', claimed_by = $1, claimed = now(),
                        heartbeat = now(), attempts = attempts + 1
                 WHERE id = (SELECT id FROM runbook_queue
                             WHERE state = 'queued'
                               AND (cardinality($2::text[]) = 0 OR tag = ANY($2))
                             ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)
                 RETURNING id, path, source, inputs",
                &[&worker, &tags],
            )
            .await
            .map_err(|e| self.db_message("claiming a request", &e))?;
        Ok(row.map(|r| Claimed {
            id: r.get(0),
            path: r.get(1),
            source: r.get(2),
            inputs: r.get(3),
        }))
    }

    /// Renews the heartbeat of `worker`'s running requests.
    pub async fn heartbeat(&self, client: &Client, worker: &str) -> Result<(), String> {
        client
            .execute(
                "UPDATE runbook_queue SET heartbeat = now()
                 WHERE state = 'running' AND claimed_by = $1",
                &[&worker],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.db_message("heartbeat", &e))
    }

    /// Records the run a request started.
    pub async fn started(&self, client: &Client, id: i64, run_id: &str) -> Result<(), String> {
        client
            .execute(
                "UPDATE runbook_queue SET run_id = $2 WHERE id = $1",
                &[&id, &run_id],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.db_message("recording a run", &e))
    }

    /// Records how a request ended (`outcome`: the run's, or `invalid` /
    /// `error` when it could not start).
    /// Records that a run taken over by `worker` could not go on (a step
    /// in doubt without a verify needs an answer, a secret is missing
    /// here...): the request is `orphaned`, outcome `not_resumed`, until a
    /// human resumes the run (`runbook resume RUN_ID --store`).
    pub async fn not_resumed(
        &self,
        client: &Client,
        worker: &str,
        id: i64,
        exit_code: i32,
    ) -> Result<(), String> {
        client
            .execute(
                "UPDATE runbook_queue SET state = 'orphaned', outcome = 'not_resumed',
                        exit_code = $2, finished = now()
                 WHERE id = $1 AND claimed_by = $3",
                &[&id, &exit_code, &worker],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.db_message("recording an outcome", &e))
    }

    /// Only while the request is still `worker`'s: a worker whose run was
    /// taken over from it does not overwrite the new owner's record.
    pub async fn finished(
        &self,
        client: &Client,
        worker: &str,
        id: i64,
        outcome: &str,
        exit_code: i32,
    ) -> Result<(), String> {
        client
            .execute(
                "UPDATE runbook_queue SET state = 'done', outcome = $2, exit_code = $3,
                        finished = now()
                 WHERE id = $1 AND claimed_by = $4",
                &[&id, &outcome, &exit_code, &worker],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.db_message("recording an outcome", &e))
    }
}
