//! Reading runs from the store: `runbook runs --store`, `runbook
//! verify-journal RUN_ID --store`, and the run pages of a server pointed
//! at the store read `runbook_runs` and `runbook_journal` here.
//!
//! A run's rows are its `journal.jsonl` (each row's line and a `\n`, in
//! `seq` order) and its `run.json` (the row's `run_json`); they are read,
//! checked and replayed by the same code as the files
//! ([`durable::runs::summarize`], [`durable::run_meta::check_bytes`]), so
//! a run reads the same from either place. Without a `run_finished`, a run
//! is `running` while its row's heartbeat is younger than the store's
//! grace and it has not ended, else `interrupted` (a worker, or `runbook
//! resume --store`, can take it over: [`super::takeover`]).

use super::PgStore;
use crate::durable::journal::{parse_journal, JournalError};
use crate::durable::run_meta::{check_bytes, CheckedRun, RUN_META};
use crate::durable::runs::{sort_newest_first, summarize, RunListing, RunRead};
use tokio_postgres::Client;

/// A run's row and journal as the store holds them.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub run_id: String,
    /// The journal's lines, each with its `\n`: `journal.jsonl`'s bytes.
    pub journal: Vec<u8>,
    /// `run.json`'s bytes.
    pub run_json: Vec<u8>,
    /// Whoever owns it now (host, user, pid).
    pub host: String,
    pub username: String,
    pub pid: i32,
    /// Not ended, heartbeating within the grace, and (read on its owner's
    /// machine) its owner process still exists.
    pub alive: bool,
    /// Seconds since its last heartbeat.
    pub heartbeat_age: f64,
}

impl StoredRun {
    /// The run as `runbook runs` lists it, with its events and state.
    pub fn read(&self) -> RunRead {
        summarize(
            self.run_id.clone(),
            parse_journal(&self.journal),
            self.alive,
        )
    }

    /// The journal's chain and `run.json` against the hash it records.
    pub fn check(&self) -> Result<CheckedRun, JournalError> {
        check_bytes(&self.journal, self.run_json.clone(), &self.run_json_name())
    }

    /// How `run.json` is named in messages: the store's row.
    fn run_json_name(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("run {} ({RUN_META} in the store)", self.run_id))
    }
}

/// The columns [`stored`] reads, with the run's journal aggregated.
const SELECT: &str = "SELECT r.run_id, r.run_json, r.host, r.username, r.pid,
        r.ended IS NULL AND r.heartbeat > now() - make_interval(secs => $1),
        extract(epoch FROM now() - r.heartbeat)::float8,
        coalesce((SELECT string_agg(j.line || E'\\n', '' ORDER BY j.seq)
                  FROM runbook_journal j WHERE j.run_id = r.run_id), ''),
        r.machine
     FROM runbook_runs r";

fn stored(row: &tokio_postgres::Row) -> StoredRun {
    let journal: String = row.get(7);
    StoredRun {
        run_id: row.get(0),
        run_json: row.get(1),
        host: row.get(2),
        username: row.get(3),
        pid: row.get(4),
        // Heartbeating, unless its owner was on this machine and is gone.
        alive: row.get::<_, bool>(5)
            && !super::takeover::owner_gone_here(
                &row.get::<_, String>(2),
                row.get::<_, Option<String>>(8).as_deref(),
                row.get(4),
            ),
        heartbeat_age: row.get(6),
        journal: journal.into_bytes(),
    }
}

impl PgStore {
    /// Every run the store holds, read and replayed, newest first.
    pub fn list_runs(&self) -> Result<Vec<RunListing>, String> {
        let runs = super::block_on(async {
            let client = self.connect().await?;
            self.check_schema(&client).await?;
            let secs = self.grace.as_secs_f64();
            let rows = client
                .query(SELECT, &[&secs])
                .await
                .map_err(|e| self.db_message("reading the runs", &e))?;
            Ok::<_, String>(rows.iter().map(stored).collect::<Vec<_>>())
        })??;
        let mut listed: Vec<RunListing> = runs.iter().map(|r| r.read().listing).collect();
        sort_newest_first(&mut listed);
        Ok(listed)
    }

    /// One run's row and journal; an error naming the store when it holds
    /// no such run.
    pub fn stored_run(&self, run_id: &str) -> Result<StoredRun, String> {
        super::block_on(async {
            let client = self.connect().await?;
            self.check_schema(&client).await?;
            self.stored_run_on(&client, run_id).await
        })?
    }

    /// [`PgStore::stored_run`] on a connection.
    pub(crate) async fn stored_run_on(
        &self,
        client: &Client,
        run_id: &str,
    ) -> Result<StoredRun, String> {
        let secs = self.grace.as_secs_f64();
        let row = client
            .query_opt(&format!("{SELECT} WHERE r.run_id = $2"), &[&secs, &run_id])
            .await
            .map_err(|e| self.db_message("reading the run", &e))?;
        row.map(|r| stored(&r))
            .ok_or_else(|| format!("no run `{run_id}` in the store {}", self.url))
    }
}
