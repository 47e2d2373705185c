//! A run lock in PostgreSQL: the row of `runbook_locks` for its key, with
//! a lease (`lease_until`) and a fencing epoch that grows by one at every
//! acquisition.
//!
//! * **Taking it**: in one transaction, the row (created if missing) is
//!   locked `FOR UPDATE`; if its lease is still running, the lock is held:
//!   refused with its holder (run id, pid, host, user, since when) and
//!   when the lease would run out. Otherwise (released, or expired: its
//!   holder stopped heartbeating) it becomes this run's with the next
//!   epoch. Taking over an expired lease is said in a warning. A lock
//!   held by an earlier owner of the same run, which this process took
//!   over (`runbook_runs` names it the owner), moves with the run at once.
//! * **Holding it**: a thread of its own renews the lease every third of
//!   its length (`UPDATE ... WHERE key AND epoch`), reconnecting when the
//!   connection is lost. If the row has another epoch (taken over), or
//!   no renewal succeeded for long enough that the lease could run out
//!   before the next attempt, the run's `on_lost` is called: the session
//!   cancels the run so that it starts no new action.
//! * **Releasing it**: dropping the [`Lease`] sets `lease_until` to
//!   `-infinity` if the epoch is still its own; the row keeps its last
//!   holder and epoch.

use super::PgStore;
use crate::durable::lock::LockHolder;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A held lease; dropping it releases the lock.
pub struct Lease {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    epoch: i64,
    took_over: Option<String>,
}

/// What taking the lock gave: the epoch, and the expired holder it took
/// over from.
type Taken = (i64, Option<String>);

impl Lease {
    /// Takes the lock `key` for `run_id` (see the module docs); blocks
    /// until it is taken or refused.
    pub(crate) fn acquire(
        store: PgStore,
        key: &str,
        run_id: &str,
        on_lost: Box<dyn FnOnce() + Send>,
    ) -> Result<Lease, String> {
        let (result_tx, result_rx) = std::sync::mpsc::channel::<Result<Taken, String>>();
        let (stop_tx, stop_rx) = oneshot::channel();
        let me = LockHolder::me(key, run_id);
        let failed = result_tx.clone();
        let thread = super::spawn_on_runtime(
            "runbook-lease",
            move |e| {
                let _ = failed.send(Err(e));
            },
            move || hold(store, me, result_tx, stop_rx, on_lost),
        )?;
        match result_rx.recv() {
            Ok(Ok((epoch, took_over))) => Ok(Lease {
                stop: Some(stop_tx),
                thread: Some(thread),
                epoch,
                took_over,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err("the lease's thread ended before taking the lock".to_owned())
            }
        }
    }

    /// The fencing epoch of this holding.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// A warning when an expired lease of another run was taken over.
    pub fn took_over_message(&self) -> Option<String> {
        self.took_over.clone()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The lease's thread: take the lock, say so, renew until told to stop,
/// then release it.
async fn hold(
    store: PgStore,
    me: LockHolder,
    result: std::sync::mpsc::Sender<Result<Taken, String>>,
    mut stop: oneshot::Receiver<()>,
    on_lost: Box<dyn FnOnce() + Send>,
) {
    let started = Instant::now();
    let taken = async {
        let client = store.connect().await?;
        store.check_schema(&client).await?;
        let taken = take(&store, &client, &me).await?;
        Ok::<_, String>((client, taken))
    }
    .await;
    let (client, epoch) = match taken {
        Ok((client, (epoch, took_over))) => {
            let _ = result.send(Ok((epoch, took_over)));
            (client, epoch)
        }
        Err(e) => {
            let _ = result.send(Err(e));
            return;
        }
    };
    let period = store.lease / 3;
    let mut valid_until = started + store.lease;
    let mut client = Some(client);
    let mut on_lost = Some(on_lost);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(period) => {}
        }
        let sent = Instant::now();
        match renew(&store, &mut client, &me.key, epoch, period).await {
            Ok(true) => valid_until = sent + store.lease,
            Ok(false) => {
                // Another run holds it now (took it over after it expired).
                if let Some(f) = on_lost.take() {
                    f();
                }
                let _ = stop.await;
                return;
            }
            Err(_) if Instant::now() + period < valid_until => {}
            Err(_) => {
                // Not renewed in time: the lease may run out before the
                // next attempt. Stop the run; keep trying to hold the row
                // (and release it at the end) in case the database comes
                // back.
                if let Some(f) = on_lost.take() {
                    f();
                }
            }
        }
    }
    if let Ok(c) = connected(&store, &mut client, period).await {
        let _ = tokio::time::timeout(
            period,
            c.execute(
                "UPDATE runbook_locks SET lease_until = '-infinity' WHERE key = $1 AND epoch = $2",
                &[&me.key, &epoch],
            ),
        )
        .await;
    }
}

/// Takes the lock in one transaction, or says who holds it.
async fn take(
    store: &PgStore,
    client: &tokio_postgres::Client,
    me: &LockHolder,
) -> Result<Taken, String> {
    let fail = |e: tokio_postgres::Error| store.db_message("taking the lock", &e);
    client
        .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .map_err(fail)?;
    let result = async {
        client
            .execute(
                "INSERT INTO runbook_locks (key, run_id, host, username, pid, epoch, acquired, lease_until)
                 VALUES ($1, '', '', '', 0, 0, now(), '-infinity') ON CONFLICT (key) DO NOTHING",
                &[&me.key],
            )
            .await
            .map_err(fail)?;
        let row = client
            .query_one(
                "SELECT run_id, host, username, pid,
                        to_char(acquired AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                        lease_until > now(), lease_until = '-infinity', epoch,
                        CASE WHEN lease_until = '-infinity' THEN 0
                             ELSE extract(epoch FROM lease_until - now())::float8 END
                 FROM runbook_locks WHERE key = $1 FOR UPDATE",
                &[&me.key],
            )
            .await
            .map_err(fail)?;
        let pid: i32 = row.get(3);
        let holder = LockHolder {
            key: me.key.clone(),
            pid: u32::try_from(pid).unwrap_or(0),
            host: row.get(1),
            user: row.get(2),
            run_id: row.get(0),
            started: row.get(4),
        };
        let (live, released, epoch): (bool, bool, i64) = (row.get(5), row.get(6), row.get(7));
        let remaining: f64 = row.get(8);
        // Held by an earlier owner of this very run, which this process
        // took over (the run's row names it as owner, at a newer epoch
        // that fences the old one): the lock moves with the run, without
        // waiting for the old lease to run out.
        let own_run = live
            && holder.run_id == me.run_id
            && client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM runbook_runs WHERE run_id = $1 AND host = $2
                         AND pid = $3 AND ended IS NULL)",
                    &[&me.run_id, &me.host, &i32::try_from(me.pid).unwrap_or(i32::MAX)],
                )
                .await
                .map_err(fail)?
                .get::<_, bool>(0);
        if live && !own_run {
            return Err(format!(
                "the lock `{}` is held by {holder} in the store {}; its lease is renewed while \
                 that run lives and runs out {:.0}s after its last heartbeat (now in {:.0}s). \
                 Wait for that run to end; if its machine died, the lock is free once the lease \
                 runs out",
                me.key,
                store.url,
                store.lease.as_secs_f64(),
                remaining.max(0.0)
            ));
        }
        let took_over = if own_run {
            Some(format!(
                "took over the lock `{}` from {holder}, the owner this run was taken over from",
                me.key
            ))
        } else {
            (!released && epoch > 0).then(|| {
                format!(
                    "took over the lock `{}` from {holder}, whose lease ran out {:.0}s ago (it stopped heartbeating)",
                    me.key,
                    -remaining
                )
            })
        };
        let pid = i32::try_from(me.pid).unwrap_or(i32::MAX);
        let secs = store.lease.as_secs_f64();
        let row = client
            .query_one(
                "UPDATE runbook_locks SET run_id = $2, host = $3, username = $4, pid = $5,
                        epoch = epoch + 1, acquired = now(),
                        lease_until = now() + make_interval(secs => $6)
                 WHERE key = $1 RETURNING epoch",
                &[&me.key, &me.run_id, &me.host, &me.user, &pid, &secs],
            )
            .await
            .map_err(fail)?;
        Ok((row.get(0), took_over))
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    client.batch_execute(end).await.map_err(fail)?;
    result
}

/// Renews the lease: `Ok(false)` when the row is no longer this epoch's.
async fn renew(
    store: &PgStore,
    client: &mut Option<tokio_postgres::Client>,
    key: &str,
    epoch: i64,
    timeout: Duration,
) -> Result<bool, String> {
    let c = connected(store, client, timeout).await?;
    let secs = store.lease.as_secs_f64();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&key, &epoch, &secs];
    let update = c.execute(
        "UPDATE runbook_locks SET lease_until = now() + make_interval(secs => $3)
         WHERE key = $1 AND epoch = $2",
        &params,
    );
    match tokio::time::timeout(timeout, update).await {
        Ok(Ok(n)) => Ok(n == 1),
        Ok(Err(e)) => {
            *client = None;
            Err(store.db_message("renewing the lease", &e))
        }
        Err(_) => {
            *client = None;
            Err(store.message("renewing the lease", "timed out"))
        }
    }
}

/// The client, reconnected if it was lost.
async fn connected<'a>(
    store: &PgStore,
    client: &'a mut Option<tokio_postgres::Client>,
    timeout: Duration,
) -> Result<&'a tokio_postgres::Client, String> {
    if client.as_ref().is_some_and(|c| c.is_closed()) {
        *client = None;
    }
    if client.is_none() {
        match tokio::time::timeout(timeout, store.connect()).await {
            Ok(Ok(c)) => *client = Some(c),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(store.message("reconnecting", "timed out")),
        }
    }
    client
        .as_ref()
        .ok_or_else(|| store.message("reconnecting", "no connection"))
}
