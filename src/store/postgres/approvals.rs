//! Approvals as rows (`runbook_approvals`, migration 4): any process that
//! reaches the database answers a run's question (`runbook approve RUN_ID
//! NODE --store postgres://...`), from any machine and runs directory; the
//! waiting run wakes on `NOTIFY runbook_approvals` (and polls every
//! [`POLL`] in case a notification was missed).
//!
//! The rules are those of the files ([`crate::durable::approvals`]): one
//! decision per request (placed by `UPDATE ... WHERE approved IS NULL`:
//! of two deciders exactly one wins), a newer ask of the same key
//! supersedes an older one, the run closes its question when it stops
//! waiting, and a self-approval of an `approve ... by other` step is
//! refused and kept as a row of `runbook_approval_refusals`.

use super::PgStore;
use crate::durable::approvals::{
    asker_gone, decision_record, new_request, refused_attempt, self_approval, ApprovalBox,
    ApprovalError, Ask, DecisionRecord, Give, RefusedAttempt, RequestRecord, Via,
};
use async_trait::async_trait;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex};
use tokio_postgres::{Client, Row};

/// The channel a decision is announced on.
pub const CHANNEL: &str = "runbook_approvals";

/// How often a waiting run reads its request's row anyway, unless the
/// store's `poll:` says otherwise.
pub const POLL: Duration = Duration::from_secs(2);

const REQUEST_COLUMNS: &str = "id, run_id, key, node, item, message, asked, timeout_ms, pid, \
     host, started_by, by_other";
const DECISION_COLUMNS: &str = "id, key, approved, decided_by, reason, decided, via";

/// The approvals of a PostgreSQL store. Connections are made on first use,
/// on the runtime of the caller (the run's own, for a waiting run).
pub struct PgApprovals {
    store: PgStore,
    client: Mutex<Option<Client>>,
    /// The listening connection (kept alive with its client) and its
    /// notifications.
    listen: Mutex<Option<(Client, mpsc::UnboundedReceiver<()>)>>,
}

impl PgApprovals {
    pub fn new(store: PgStore) -> Self {
        PgApprovals {
            store,
            client: Mutex::new(None),
            listen: Mutex::new(None),
        }
    }

    fn fail(&self, what: &str) -> impl Fn(tokio_postgres::Error) -> ApprovalError + Send + 'static {
        let what = what.to_owned();
        let store = self.store.clone();
        move |e| ApprovalError::Store(store.db_message(&what, &e))
    }

    /// Runs `f` with the connection, connecting first if needed (and again
    /// after the connection was lost).
    async fn with_client<T>(
        &self,
        f: impl for<'c> FnOnce(
            &'c mut Client,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, ApprovalError>> + Send + 'c>,
        >,
    ) -> Result<T, ApprovalError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(
                self.store
                    .connect_checked()
                    .await
                    .map_err(ApprovalError::Store)?,
            );
        }
        match guard.as_mut() {
            Some(client) => f(client).await,
            None => Err(ApprovalError::Store("no connection".into())),
        }
    }
}

fn request_of(r: &Row) -> RequestRecord {
    let timeout_ms: Option<i64> = r.get(7);
    let pid: i32 = r.get(8);
    RequestRecord {
        id: r.get(0),
        run_id: r.get(1),
        key: r.get(2),
        node: r.get(3),
        item: r.get(4),
        message: r.get(5),
        asked: r.get(6),
        timeout_ms: timeout_ms.map(|t| u64::try_from(t).unwrap_or(0)),
        pid: u32::try_from(pid).unwrap_or(0),
        host: r.get(9),
        started_by: r.get(10),
        by_other: r.get(11),
    }
}

fn via_of(s: &str) -> Via {
    match s {
        "command" => Via::Command,
        "web" => Via::Web,
        "terminal" => Via::Terminal,
        "timeout" => Via::Timeout,
        _ => Via::Cancelled,
    }
}

/// The decision of a row read with [`DECISION_COLUMNS`], if it has one.
fn decision_of(r: &Row) -> Option<DecisionRecord> {
    let approved: Option<bool> = r.get(2);
    let via: Option<String> = r.get(6);
    Some(DecisionRecord {
        request_id: r.get(0),
        key: r.get(1),
        approved: approved?,
        by: r.get::<_, Option<String>>(3).unwrap_or_default(),
        reason: r.get(4),
        decided: r.get::<_, Option<String>>(5).unwrap_or_default(),
        via: via_of(via.as_deref()?),
    })
}

async fn place(
    client: &Client,
    request_id: &str,
    d: &DecisionRecord,
) -> Result<Result<DecisionRecord, DecisionRecord>, tokio_postgres::Error> {
    let via = crate::durable::approvals::via_name(d.via);
    let placed = client
        .execute(
            "UPDATE runbook_approvals SET approved = $2, decided_by = $3, reason = $4,
                    decided = $5, via = $6
             WHERE id = $1 AND approved IS NULL",
            &[&request_id, &d.approved, &d.by, &d.reason, &d.decided, &via],
        )
        .await?;
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &request_id])
        .await?;
    if placed == 1 {
        return Ok(Ok(d.clone()));
    }
    let row = client
        .query_one(
            &format!("SELECT {DECISION_COLUMNS} FROM runbook_approvals WHERE id = $1"),
            &[&request_id],
        )
        .await?;
    Ok(match decision_of(&row) {
        Some(existing) => Err(existing),
        // Not decided and not updated: cannot happen (the row exists).
        None => Ok(d.clone()),
    })
}

#[async_trait]
impl ApprovalBox for PgApprovals {
    async fn ask(&self, ask: &Ask<'_>) -> Result<RequestRecord, ApprovalError> {
        // Listen before the question exists, so that no decision on it
        // can be announced before this run hears the channel (a lost
        // notification would wait for the poll). A waiter already holding
        // the listening connection means it is set up.
        if let Ok(mut listen) = self.listen.try_lock() {
            if listen.is_none() {
                *listen = self.store.listen_on(CHANNEL).await.ok();
            }
        }
        let r = new_request(ask);
        let fail = self.fail("recording an approval request");
        self.with_client(|c| {
            let r = r.clone();
            Box::pin(async move {
                let timeout_ms = r.timeout_ms.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
                let pid = i32::try_from(r.pid).unwrap_or(0);
                c.execute(
                    "INSERT INTO runbook_approvals (id, run_id, key, node, item, message, asked,
                         timeout_ms, pid, host, started_by, by_other)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    &[
                        &r.id,
                        &r.run_id,
                        &r.key,
                        &r.node,
                        &r.item,
                        &r.message,
                        &r.asked,
                        &timeout_ms,
                        &pid,
                        &r.host,
                        &r.started_by,
                        &r.by_other,
                    ],
                )
                .await
                .map_err(fail)?;
                Ok(r)
            })
        })
        .await
    }

    async fn decision_for(
        &self,
        request: &RequestRecord,
    ) -> Result<Option<DecisionRecord>, ApprovalError> {
        let fail = self.fail("reading an approval");
        let id = request.id.clone();
        self.with_client(|c| {
            Box::pin(async move {
                let row = c
                    .query_opt(
                        &format!("SELECT {DECISION_COLUMNS} FROM runbook_approvals WHERE id = $1"),
                        &[&id],
                    )
                    .await
                    .map_err(fail)?;
                Ok(row.as_ref().and_then(decision_of))
            })
        })
        .await
    }

    async fn refused_since(
        &self,
        request: &RequestRecord,
        seen: usize,
    ) -> Result<Vec<RefusedAttempt>, ApprovalError> {
        let fail = self.fail("reading refused approvals");
        let id = request.id.clone();
        let skip = i64::try_from(seen).unwrap_or(i64::MAX);
        self.with_client(|c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT request_id, by, via, reason, why, at
                         FROM runbook_approval_refusals WHERE request_id = $1
                         ORDER BY seq OFFSET $2",
                        &[&id, &skip],
                    )
                    .await
                    .map_err(fail)?;
                Ok(rows
                    .iter()
                    .map(|r| RefusedAttempt {
                        request_id: r.get(0),
                        by: r.get(1),
                        via: via_of(r.get(2)),
                        reason: r.get(3),
                        why: r.get(4),
                        at: r.get(5),
                    })
                    .collect())
            })
        })
        .await
    }

    async fn close(
        &self,
        request: &RequestRecord,
        record: &DecisionRecord,
    ) -> Result<Result<DecisionRecord, DecisionRecord>, ApprovalError> {
        let fail = self.fail("closing an approval");
        let id = request.id.clone();
        let record = record.clone();
        self.with_client(|c| Box::pin(async move { place(c, &id, &record).await.map_err(fail) }))
            .await
    }

    async fn decide(
        &self,
        run_id: &str,
        key: &str,
        give: &Give<'_>,
    ) -> Result<DecisionRecord, ApprovalError> {
        let fail = self.fail("recording a decision");
        let (run_id, key) = (run_id.to_owned(), key.to_owned());
        let give_owned = (
            give.approve,
            give.by.to_owned(),
            give.reason.map(str::to_owned),
            give.via,
        );
        let pending = self.pending(&run_id).await?;
        self.with_client(|c| {
            Box::pin(async move {
                let (approve, by, reason, via) = give_owned;
                let give = Give {
                    approve,
                    by: &by,
                    reason: reason.as_deref(),
                    via,
                };
                let row = c
                    .query_opt(
                        &format!(
                            "SELECT {REQUEST_COLUMNS} FROM runbook_approvals
                             WHERE run_id = $1 AND key = $2 ORDER BY seq DESC LIMIT 1"
                        ),
                        &[&run_id, &key],
                    )
                    .await
                    .map_err(&fail)?;
                let Some(row) = row else {
                    return Err(ApprovalError::NoRequest {
                        key,
                        pending: pending.into_iter().map(|r| r.key).collect(),
                    });
                };
                let request = request_of(&row);
                let existing = c
                    .query_one(
                        &format!("SELECT {DECISION_COLUMNS} FROM runbook_approvals WHERE id = $1"),
                        &[&request.id],
                    )
                    .await
                    .map_err(&fail)?;
                if let Some(d) = decision_of(&existing) {
                    return Err(ApprovalError::AlreadyDecided {
                        key,
                        record: Box::new(d),
                    });
                }
                if let Some(gone) = asker_gone(&request) {
                    return Err(gone);
                }
                if let Some(why) = self_approval(&request, &give) {
                    let a = refused_attempt(&request, &give, &why);
                    let via = crate::durable::approvals::via_name(a.via);
                    c.execute(
                        "INSERT INTO runbook_approval_refusals (request_id, by, via, reason, why, at)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&a.request_id, &a.by, &via, &a.reason, &a.why, &a.at],
                    )
                    .await
                    .map_err(&fail)?;
                    c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &request.id])
                        .await
                        .map_err(&fail)?;
                    return Err(ApprovalError::SelfApproval { key, why });
                }
                let record = decision_record(&request, &give);
                match place(c, &request.id, &record).await.map_err(&fail)? {
                    Ok(placed) => {
                        let newer: i64 = c
                            .query_one(
                                "SELECT count(*) FROM runbook_approvals
                                 WHERE run_id = $1 AND key = $2
                                   AND seq > (SELECT seq FROM runbook_approvals WHERE id = $3)",
                                &[&run_id, &key, &request.id],
                            )
                            .await
                            .map_err(&fail)?
                            .get(0);
                        if newer > 0 {
                            Err(ApprovalError::Superseded { key })
                        } else {
                            Ok(placed)
                        }
                    }
                    Err(existing) => Err(ApprovalError::AlreadyDecided {
                        key,
                        record: Box::new(existing),
                    }),
                }
            })
        })
        .await
    }

    async fn pending(&self, run_id: &str) -> Result<Vec<RequestRecord>, ApprovalError> {
        let fail = self.fail("listing approvals");
        let run_id = run_id.to_owned();
        self.with_client(|c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        &format!(
                            "SELECT {REQUEST_COLUMNS} FROM (
                                 SELECT DISTINCT ON (key) * FROM runbook_approvals
                                 WHERE run_id = $1 ORDER BY key, seq DESC) newest
                             WHERE approved IS NULL ORDER BY seq"
                        ),
                        &[&run_id],
                    )
                    .await
                    .map_err(fail)?;
                Ok(rows.iter().map(request_of).collect())
            })
        })
        .await
    }

    async fn changed(&self) {
        let mut guard = self.listen.lock().await;
        if guard.is_none() {
            match self.store.listen_on(CHANNEL).await {
                Ok(l) => *guard = Some(l),
                // No listening connection: the poll finds the answer.
                Err(_) => return std::future::pending().await,
            }
        }
        let got = match guard.as_mut() {
            Some((_, rx)) => rx.recv().await,
            None => None,
        };
        if got.is_none() {
            // The connection ended: listen again on the next call, after
            // a pause (the poll goes on meanwhile).
            *guard = None;
            drop(guard);
            tokio::time::sleep(self.store.approval_poll()).await;
        }
    }

    fn poll(&self) -> Duration {
        self.store.approval_poll()
    }
}
