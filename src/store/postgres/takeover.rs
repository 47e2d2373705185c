//! Taking over a run whose owner died (issue 13, docs/team.md).
//!
//! A run's row in `runbook_runs` names its owner (host, user, pid) and an
//! owner **epoch**. The owner renews `heartbeat` every third of the lease
//! while it lives and sets `ended` when it lets go. A run whose row has
//! no `ended` and whose heartbeat is older than the store's grace is
//! **orphaned**: its process died (or stalled longer than the grace).
//! `runbook resume RUN_ID --store` and `runbook worker` do not wait for the
//! grace when the row's owner was on their own machine (same host name and
//! `machine`: boot id and pid namespace) and that process is gone
//! (`kill(pid, 0)`): a worker restarted after a crash takes its own runs
//! back at once.
//!
//! [`PgStore::claim_run`] / [`PgStore::claim_orphan`] take such a run in
//! one transaction: the row is locked (`FOR UPDATE`, or `FOR UPDATE SKIP
//! LOCKED` for a worker looking for any orphan, so two workers never take
//! the same run), checked, and given the next epoch and the new owner;
//! its journal rows, `run.json`, source, config and the queue request it
//! belongs to (re-assigned to the new worker or resume) are read in the same
//! transaction. Every journal insert is fenced by the epoch
//! ([`super::journal`]), so from that commit on the old owner can write
//! nothing more: by the write-ahead rule it starts no new action.
//!
//! The session ([`crate::session::Session::take_over`]) then rebuilds the
//! run directory from the rows and resumes the run with the same in-doubt
//! rules as `runbook resume`.

use super::PgStore;
use crate::durable::lock::LockHolder;
use tokio_postgres::Client;

/// Whether a run's owner, as its row names it (`host`, `machine`, `pid`),
/// ran on this machine (same host name, boot and pid namespace: see
/// [`crate::durable::sys::machine`]) and its process is gone. `false`
/// when that cannot be told (another machine, a row without `machine`).
pub(super) fn owner_gone_here(host: &str, machine: Option<&str>, pid: i32) -> bool {
    machine.is_some()
        && host == crate::durable::sys::hostname()
        && machine.map(str::to_owned) == crate::durable::sys::machine()
        && u32::try_from(pid)
            .ok()
            .and_then(crate::durable::sys::pid_alive)
            == Some(false)
}

/// A run this process now owns.
#[derive(Debug, Clone)]
pub struct Claim {
    pub run_id: String,
    pub old_epoch: i64,
    pub new_epoch: i64,
    /// The previous owner, as its row named it.
    pub from_host: String,
    pub from_user: String,
    pub from_pid: i64,
    /// How long the previous owner had been silent (ms; 0 if it ended).
    pub silent_ms: u64,
    /// The previous owner's process was on this machine and is gone: the
    /// run was taken over without waiting for the grace.
    pub owner_gone: bool,
    /// The runbook's text and name, the config's text (if any).
    pub source: String,
    pub source_name: String,
    pub config: Option<String>,
    /// `run.json`'s bytes and the journal's (each row's line and `\n`).
    pub run_json: Vec<u8>,
    pub journal: Vec<u8>,
    /// The queue request the run belongs to, now this claimer's.
    pub request: Option<i64>,
}

/// Which run to claim.
#[derive(Debug, Clone, Copy)]
enum Which<'a> {
    /// This one (`runbook resume RUN_ID --store`): an error says why not.
    Run(&'a str),
    /// The longest-silent orphan, if any (`runbook worker`).
    AnyOrphan,
    /// This one, found with its owner's process gone on this machine
    /// (`runbook worker`): `None` if that no longer holds.
    DeadHere(&'a str),
}

const COLUMNS: &str = "run_id, epoch, host, username, pid, source, source_name, config, run_json,
    ended IS NOT NULL, greatest(extract(epoch FROM now() - heartbeat) * 1000, 0)::float8, machine";

impl PgStore {
    /// Claims run `run_id` for this process (`runbook resume RUN_ID
    /// --store`), named `owner` in the queue: refused while its owner
    /// heartbeats (younger than the grace, not ended), unless that owner's
    /// process was on this machine ([`crate::durable::sys::machine`]) and
    /// is gone (then at once). `Ok(None)`: the store has no such run, or
    /// one written before migration 5 (no source kept: it is resumed where
    /// its run directory is). A queue request the run belongs to becomes
    /// `owner`'s, so that no worker's reaper marks it `orphaned`: the
    /// caller records its outcome ([`PgStore::finish_request`]).
    pub fn claim_run(&self, run_id: &str, owner: &str) -> Result<Option<Claim>, String> {
        super::block_on(async {
            let client = self.connect().await?;
            self.check_schema(&client).await?;
            self.claim_takeover(&client, Which::Run(run_id), owner)
                .await
        })?
    }

    /// Records the outcome of a run's queue request that `owner` took
    /// with the run ([`PgStore::claim_run`]): `done` with the run's
    /// outcome, or `orphaned` / `not_resumed` when `outcome` is `None` (the
    /// run could not go on); only while the request is still `owner`'s.
    pub fn finish_request(
        &self,
        id: i64,
        owner: &str,
        outcome: Option<&str>,
        exit_code: i32,
    ) -> Result<(), String> {
        super::block_on(async {
            let client = self.connect().await?;
            match outcome {
                Some(outcome) => self.finished(&client, owner, id, outcome, exit_code).await,
                None => self.not_resumed(&client, owner, id, exit_code).await,
            }
        })?
    }

    /// Claims the longest-silent orphaned run, if there is one, for the
    /// worker named `worker` (`SKIP LOCKED`: a run another worker is
    /// claiming is passed over); the queue request it belongs to becomes
    /// that worker's.
    pub async fn claim_orphan(
        &self,
        client: &Client,
        worker: &str,
    ) -> Result<Option<Claim>, String> {
        // A run whose owner died on this machine first: it needs no grace
        // (its heartbeat may still be fresh), and it is this machine's to
        // take, as no other machine can tell that its owner is gone.
        let fail = |e: tokio_postgres::Error| self.db_message("looking for dead runs", &e);
        let Some(machine) = crate::durable::sys::machine() else {
            return self.claim_takeover(client, Which::AnyOrphan, worker).await;
        };
        let here = client
            .query(
                "SELECT run_id, host, pid FROM runbook_runs
                 WHERE ended IS NULL AND source IS NOT NULL AND host = $1 AND machine = $2
                 ORDER BY heartbeat",
                &[&crate::durable::sys::hostname(), &machine],
            )
            .await
            .map_err(fail)?;
        for row in here {
            let (run_id, host, pid): (String, String, i32) = (row.get(0), row.get(1), row.get(2));
            if !owner_gone_here(&host, Some(&machine), pid) {
                continue;
            }
            if let Some(claim) = self
                .claim_takeover(client, Which::DeadHere(&run_id), worker)
                .await?
            {
                return Ok(Some(claim));
            }
        }
        self.claim_takeover(client, Which::AnyOrphan, worker).await
    }

    /// Lets go of a claimed run that could not be resumed (its row gets
    /// `ended`, so no worker claims it again; `runbook resume RUN_ID
    /// --store` still can), if the epoch is still `epoch`.
    pub fn release_run(&self, run_id: &str, epoch: i64) -> Result<(), String> {
        super::block_on(async {
            let client = self.connect().await?;
            client
                .execute(
                    "UPDATE runbook_runs SET ended = now() WHERE run_id = $1 AND epoch = $2",
                    &[&run_id, &epoch],
                )
                .await
                .map(|_| ())
                .map_err(|e| self.db_message("releasing a run", &e))
        })?
    }

    async fn claim_takeover(
        &self,
        client: &Client,
        which: Which<'_>,
        owner: &str,
    ) -> Result<Option<Claim>, String> {
        let fail = |e: tokio_postgres::Error| self.db_message("taking over a run", &e);
        client.batch_execute("BEGIN").await.map_err(fail)?;
        let result = self.claim_in_tx(client, which, owner).await;
        let end = if matches!(result, Ok(Some(_))) {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        client.batch_execute(end).await.map_err(fail)?;
        result
    }

    async fn claim_in_tx(
        &self,
        client: &Client,
        which: Which<'_>,
        owner: &str,
    ) -> Result<Option<Claim>, String> {
        let fail = |e: tokio_postgres::Error| self.db_message("taking over a run", &e);
        let grace = self.grace.as_secs_f64();
        let row = match which {
            Which::Run(id) => client
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM runbook_runs WHERE run_id = $1 FOR UPDATE"),
                    &[&id],
                )
                .await
                .map_err(fail)?,
            Which::AnyOrphan => client
                .query_opt(
                    &format!(
                        "SELECT {COLUMNS} FROM runbook_runs
                         WHERE ended IS NULL AND source IS NOT NULL
                           AND heartbeat < now() - make_interval(secs => $1)
                         ORDER BY heartbeat LIMIT 1 FOR UPDATE SKIP LOCKED"
                    ),
                    &[&grace],
                )
                .await
                .map_err(fail)?,
            Which::DeadHere(id) => client
                .query_opt(
                    &format!(
                        "SELECT {COLUMNS} FROM runbook_runs
                         WHERE run_id = $1 AND ended IS NULL FOR UPDATE SKIP LOCKED"
                    ),
                    &[&id],
                )
                .await
                .map_err(fail)?,
        };
        let Some(row) = row else { return Ok(None) };
        let run_id: String = row.get(0);
        let old_epoch: i64 = row.get(1);
        let (from_host, from_user, from_pid): (String, String, i32) =
            (row.get(2), row.get(3), row.get(4));
        let source: Option<String> = row.get(5);
        let ended: bool = row.get(9);
        let silent_ms: f64 = row.get(10);
        let machine: Option<String> = row.get(11);
        let me = LockHolder::me("", &run_id);
        // Its owner process was on this machine and is gone: no need to
        // wait for its heartbeat to age.
        let owner_gone = !matches!(which, Which::AnyOrphan)
            && !ended
            && owner_gone_here(&from_host, machine.as_deref(), from_pid);
        if matches!(which, Which::DeadHere(_)) && !owner_gone {
            // Taken and resumed by another process meanwhile (the row was
            // read before it was locked).
            return Ok(None);
        }
        if !ended && !owner_gone && silent_ms < grace * 1000.0 {
            return Err(format!(
                "run {run_id} is alive: its owner (pid {from_pid} on {from_host}, user {from_user}) \
                 heartbeated {:.1}s ago in the store {}. A run is taken over only once its owner \
                 has been silent for the store's grace ({:.0}s)",
                silent_ms / 1000.0,
                self.url,
                grace
            ));
        }
        // Started before the store kept what a takeover needs (schema
        // version 5): it is resumed where its run directory is.
        let Some(source) = source else {
            return Ok(None);
        };
        let pid = i32::try_from(me.pid).unwrap_or(i32::MAX);
        let new_epoch: i64 = client
            .query_one(
                "UPDATE runbook_runs SET epoch = epoch + 1, host = $2, username = $3, pid = $4,
                     machine = $5, heartbeat = now(), ended = NULL
                 WHERE run_id = $1 RETURNING epoch",
                &[
                    &run_id,
                    &me.host,
                    &me.user,
                    &pid,
                    &crate::durable::sys::machine(),
                ],
            )
            .await
            .map_err(fail)?
            .get(0);
        let journal: String = client
            .query_one(
                "SELECT coalesce(string_agg(line || E'\\n', '' ORDER BY seq), '')
                 FROM runbook_journal WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(fail)?
            .get(0);
        let request: Option<i64> = client
            .query_opt(
                "UPDATE runbook_queue SET state = 'running', claimed_by = $2,
                     heartbeat = now(), finished = NULL
                 WHERE run_id = $1 AND state IN ('running', 'orphaned') RETURNING id",
                &[&run_id, &owner],
            )
            .await
            .map_err(fail)?
            .map(|r| r.get(0));
        Ok(Some(Claim {
            old_epoch,
            new_epoch,
            from_host,
            from_user,
            from_pid: i64::from(from_pid),
            silent_ms: if ended { 0 } else { silent_ms as u64 },
            owner_gone,
            source,
            source_name: row
                .get::<_, Option<String>>(6)
                .unwrap_or_else(|| run_id.clone()),
            config: row.get(7),
            run_json: row.get(8),
            journal: journal.into_bytes(),
            request,
            run_id,
        }))
    }
}
