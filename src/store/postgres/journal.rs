//! A run's journal in PostgreSQL: a row of `runbook_runs` for the run and
//! one row of `runbook_journal` per line, the same bytes as the line of
//! `journal.jsonl` (built by the same [`Chain`]), so the store holds the
//! same hash chain and `runbook export` gives back the file.
//!
//! * **Write-ahead**: [`PgJournal`] is a critical sink beside the journal
//!   file. Lines go to a thread of its own (its own connection and
//!   runtime), which inserts whatever is waiting in one statement
//!   (autocommit: one transaction) and acknowledges the last `seq`
//!   committed. An event that the file journal fsyncs before the run goes
//!   on ([`EventKind::is_write_ahead`](crate::events::EventKind::is_write_ahead):
//!   an effectful action's start, every outcome) waits for its
//!   acknowledgement, so a change's `action_started` is committed before
//!   its command runs; other events are pipelined and committed with the
//!   next wait (at the latest when the run waits: [`Sink::flush`]).
//! * **Failure**: an insert that fails (the database is down, the row
//!   exists) fails this event and every one after it; the emitter then
//!   stops the run (the journal is critical): no change starts that the
//!   store could not record. The thread does not reconnect.
//! * **Heartbeat**: the thread renews the run row's `heartbeat` every
//!   third of the store's lease; when the sink is dropped (the run's
//!   process lets go of it) `ended` is set.
//! * **Resume**: given the journal file's verified lines, the lines the
//!   store lacks are inserted first, then the chain goes on.

use super::PgStore;
use crate::durable::journal::{verify_bytes, Chain};
use crate::durable::lock::LockHolder;
use crate::events::{Event, Sink};
use crate::store::JournalRun;
use std::io;
use tokio::sync::mpsc;

/// The journal's rows being written; a critical [`Sink`].
pub struct PgJournal {
    chain: Chain,
    buf: Vec<u8>,
    tx: Option<mpsc::UnboundedSender<(u64, String)>>,
    /// The last `seq` committed, or why writing stopped.
    acks: std::sync::mpsc::Receiver<Result<u64, String>>,
    sent: u64,
    committed: u64,
    failed: Option<String>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for PgJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgJournal(seq {})", self.chain.last_seq())
    }
}

/// What the thread starts from.
struct Start {
    run_id: String,
    runbook: String,
    run_json: Vec<u8>,
    /// (seq, line) of the file's lines.
    existing: Vec<(i64, String)>,
    source: Option<String>,
    source_name: Option<String>,
    config: Option<String>,
    inputs: Option<String>,
    /// The epoch claimed by a takeover.
    claimed: Option<i64>,
}

impl PgJournal {
    /// Connects, checks the schema, creates (or, resuming, takes back) the
    /// run's row and copies the lines of `run.existing` the store lacks;
    /// blocks until that is done or refused.
    pub fn open(store: PgStore, run: &JournalRun<'_>) -> Result<PgJournal, String> {
        let verified = verify_bytes(run.existing).map_err(|e| e.to_string())?;
        let mut existing = Vec::new();
        for (i, line) in run
            .existing
            .split(|&b| b == b'\n')
            .take(verified.events)
            .enumerate()
        {
            let line = String::from_utf8(line.to_vec())
                .map_err(|_| "a journal line is not UTF-8".to_owned())?;
            existing.push((i64::try_from(i + 1).unwrap_or(i64::MAX), line));
        }
        let mut chain = Chain::continuing(&verified.last_hash, verified.last_seq);
        if verified.events == 0 {
            // A new run: its first line records run.json's hash, as the
            // file's does.
            chain = Chain::new();
            chain
                .record_run_json(&crate::digest::sha256_hex(run.run_json))
                .map_err(|e| e.to_string())?;
        }
        let start = Start {
            run_id: run.run_id.to_owned(),
            runbook: run.runbook.to_owned(),
            run_json: run.run_json.to_vec(),
            existing,
            source: run.takeover.map(|t| t.source.to_owned()),
            source_name: run.takeover.map(|t| t.source_name.to_owned()),
            config: run.takeover.and_then(|t| t.config.map(str::to_owned)),
            inputs: run.takeover.map(|t| t.inputs.to_owned()),
            claimed: run.epoch,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (ack_tx, acks) = std::sync::mpsc::channel();
        let failed = ack_tx.clone();
        let thread = super::spawn_on_runtime(
            "runbook-pg-journal",
            move |e| {
                let _ = failed.send(Err(e));
            },
            move || write(store, start, rx, ack_tx),
        )?;
        let j = PgJournal {
            committed: verified.last_seq,
            sent: verified.last_seq,
            chain,
            buf: Vec::with_capacity(1024),
            tx: Some(tx),
            acks,
            failed: None,
            thread: Some(thread),
        };
        // The thread's first word: the row is there or not (dropping `j`
        // stops the thread).
        match j.acks.recv() {
            Ok(Ok(_)) => Ok(j),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the journal's thread ended before it started".to_owned()),
        }
    }

    fn fail(&mut self, e: String) -> io::Error {
        self.failed = Some(e.clone());
        io::Error::other(e)
    }

    /// Waits until `seq` is committed.
    fn wait(&mut self, seq: u64) -> io::Result<()> {
        if let Some(e) = &self.failed {
            return Err(io::Error::other(e.clone()));
        }
        while self.committed < seq {
            match self.acks.recv() {
                Ok(Ok(s)) => self.committed = s,
                Ok(Err(e)) => return Err(self.fail(e)),
                Err(_) => {
                    return Err(self.fail("the journal's connection to the store ended".to_owned()))
                }
            }
        }
        Ok(())
    }

    /// Hands the event's line to the thread.
    fn send(&mut self, ev: &Event) -> io::Result<()> {
        if let Some(e) = &self.failed {
            return Err(io::Error::other(e.clone()));
        }
        self.buf.clear();
        let hash = self.chain.line(ev, &mut self.buf)?;
        self.buf.pop();
        let line = String::from_utf8(std::mem::take(&mut self.buf)).map_err(io::Error::other)?;
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send((ev.seq, line)).is_ok());
        if !sent {
            // The thread stopped: its reason is among the acknowledgements.
            let _ = self.wait(u64::MAX);
            let e = self
                .failed
                .clone()
                .unwrap_or_else(|| "the journal's connection to the store ended".to_owned());
            return Err(self.fail(e));
        }
        self.chain.advance(hash, ev.seq);
        self.sent = ev.seq;
        while let Ok(ack) = self.acks.try_recv() {
            match ack {
                Ok(s) => self.committed = s,
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(())
    }

    fn stop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Sink for PgJournal {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.send(ev)?;
        if ev.kind.is_write_ahead() {
            self.wait(ev.seq)?;
        }
        Ok(())
    }

    fn event_durable_later(&mut self, ev: &Event) -> io::Result<()> {
        self.send(ev)
    }

    fn durable(&mut self) -> io::Result<()> {
        self.wait(self.sent)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.wait(self.sent)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.wait(self.sent)
    }
}

impl Drop for PgJournal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread: the run's row, the missing lines, then every line sent
/// (in batches) and the heartbeat, until the sink is dropped.
async fn write(
    store: PgStore,
    start: Start,
    mut rx: mpsc::UnboundedReceiver<(u64, String)>,
    acks: std::sync::mpsc::Sender<Result<u64, String>>,
) {
    let run_id = start.run_id.clone();
    let opened = async {
        let client = store.connect().await?;
        store.check_schema(&client).await?;
        let me = LockHolder::me("", &run_id);
        let pid = i32::try_from(me.pid).unwrap_or(i32::MAX);
        let machine = crate::durable::sys::machine();
        let fresh = start.existing.is_empty();
        let fail = |e| store.db_message(&format!("creating the journal of run {run_id}"), &e);
        let epoch: i64 = if fresh {
            client
                .execute(
                    "INSERT INTO runbook_runs (run_id, runbook, run_json, host, username, pid,
                         epoch, source, source_name, config, inputs, machine)
                     VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $10, $11)",
                    &[
                        &run_id,
                        &start.runbook,
                        &start.run_json,
                        &me.host,
                        &me.user,
                        &pid,
                        &start.source,
                        &start.source_name,
                        &start.config,
                        &start.inputs,
                        &machine,
                    ],
                )
                .await
                .map_err(fail)?;
            1
        } else if let Some(claimed) = start.claimed {
            // Taken over: the row is ours as long as its epoch is.
            let n = client
                .execute(
                    "UPDATE runbook_runs SET host = $3, username = $4, pid = $5,
                         machine = $6, heartbeat = now(), ended = NULL
                     WHERE run_id = $1 AND epoch = $2",
                    &[&run_id, &claimed, &me.host, &me.user, &pid, &machine],
                )
                .await
                .map_err(fail)?;
            if n != 1 {
                return Err(fenced(&run_id, claimed));
            }
            claimed
        } else {
            // Resumed where it ran: the next owner epoch.
            client
                .query_one(
                    "INSERT INTO runbook_runs (run_id, runbook, run_json, host, username, pid,
                         epoch, machine)
                     VALUES ($1, $2, $3, $4, $5, $6, 1, $7)
                     ON CONFLICT (run_id) DO UPDATE SET host = $4, username = $5, pid = $6,
                         machine = $7, heartbeat = now(), ended = NULL,
                         epoch = runbook_runs.epoch + 1
                     RETURNING epoch",
                    &[
                        &run_id,
                        &start.runbook,
                        &start.run_json,
                        &me.host,
                        &me.user,
                        &pid,
                        &machine,
                    ],
                )
                .await
                .map_err(fail)?
                .get(0)
        };
        let have: i64 = client
            .query_one(
                "SELECT coalesce(max(seq), 0) FROM runbook_journal WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(|e| store.db_message("reading the journal", &e))?
            .get(0);
        let (seqs, lines): (Vec<i64>, Vec<String>) = start
            .existing
            .into_iter()
            .filter(|(s, _)| *s > have)
            .unzip();
        insert(&client, &run_id, epoch, &seqs, &lines)
            .await
            .map_err(|e| e.message(&store, "copying the journal's lines"))?;
        Ok::<_, String>((client, epoch))
    }
    .await;
    let (client, epoch) = match opened {
        Ok(c) => {
            let _ = acks.send(Ok(0));
            c
        }
        Err(e) => {
            let _ = acks.send(Err(e));
            return;
        }
    };
    let mut beat = tokio::time::interval(store.lease / 3);
    beat.tick().await;
    let mut seqs = Vec::new();
    let mut lines = Vec::new();
    loop {
        tokio::select! {
            got = rx.recv() => {
                let Some((seq, line)) = got else { break };
                seqs.push(i64::try_from(seq).unwrap_or(i64::MAX));
                lines.push(line);
                while let Ok((s, l)) = rx.try_recv() {
                    seqs.push(i64::try_from(s).unwrap_or(i64::MAX));
                    lines.push(l);
                }
                let last = seqs.last().copied().unwrap_or(0);
                if let Err(e) = insert(&client, &run_id, epoch, &seqs, &lines).await {
                    let _ = acks.send(Err(e.message(
                        &store,
                        &format!("writing the journal of run {run_id}"),
                    )));
                    return;
                }
                let _ = acks.send(Ok(u64::try_from(last).unwrap_or(0)));
                seqs.clear();
                lines.clear();
            }
            _ = beat.tick() => {
                match client
                    .execute(
                        "UPDATE runbook_runs SET heartbeat = now() WHERE run_id = $1 AND epoch = $2",
                        &[&run_id, &epoch],
                    )
                    .await
                {
                    Ok(0) => {
                        // Taken over: the next event fails, the run stops.
                        let _ = acks.send(Err(fenced(&run_id, epoch)));
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => eprintln!("{}", store.db_message("the run's heartbeat", &e)),
                }
            }
        }
    }
    let _ = client
        .execute(
            "UPDATE runbook_runs SET ended = now() WHERE run_id = $1 AND epoch = $2",
            &[&run_id, &epoch],
        )
        .await;
}

/// Why a process that lost its run stops.
fn fenced(run_id: &str, epoch: i64) -> String {
    format!(
        "run {run_id} was taken over by another process (its owner epoch is no longer {epoch}): \
         this process writes nothing more to its journal and starts no new action"
    )
}

/// Why an insert failed.
enum InsertError {
    Db(tokio_postgres::Error),
    Fenced(String),
}

impl InsertError {
    fn message(&self, store: &PgStore, what: &str) -> String {
        match self {
            InsertError::Db(e) => store.db_message(what, e),
            InsertError::Fenced(m) => store.message(what, m),
        }
    }
}

/// Inserts lines, fenced: only while the run's row still has `epoch` (the
/// row is share-locked for the insert, so a takeover, which updates it,
/// waits for the insert to commit and every later insert finds the new
/// epoch and inserts nothing).
async fn insert(
    client: &tokio_postgres::Client,
    run_id: &str,
    epoch: i64,
    seqs: &[i64],
    lines: &[String],
) -> Result<(), InsertError> {
    if seqs.is_empty() {
        return Ok(());
    }
    let n = client
        .execute(
            "WITH owner AS (SELECT 1 FROM runbook_runs WHERE run_id = $1 AND epoch = $4 FOR SHARE)
             INSERT INTO runbook_journal (run_id, seq, line)
             SELECT $1, s, l FROM unnest($2::bigint[], $3::text[]) AS t(s, l), owner",
            &[&run_id, &seqs, &lines, &epoch],
        )
        .await
        .map_err(InsertError::Db)?;
    if usize::try_from(n).ok() == Some(seqs.len()) {
        Ok(())
    } else {
        Err(InsertError::Fenced(fenced(run_id, epoch)))
    }
}

impl PgStore {
    /// A run's journal as `journal.jsonl` bytes (each row's line and its
    /// `\n`, in `seq` order), for `runbook export`.
    pub fn export(&self, run_id: &str) -> Result<Vec<u8>, String> {
        super::block_on(async {
            let client = self.connect().await?;
            self.check_schema(&client).await?;
            let known = client
                .query_opt("SELECT 1 FROM runbook_runs WHERE run_id = $1", &[&run_id])
                .await
                .map_err(|e| self.db_message("reading the run", &e))?;
            if known.is_none() {
                return Err(format!("no run `{run_id}` in the store {}", self.url));
            }
            let rows = client
                .query(
                    "SELECT line FROM runbook_journal WHERE run_id = $1 ORDER BY seq",
                    &[&run_id],
                )
                .await
                .map_err(|e| self.db_message("reading the journal", &e))?;
            let mut out = Vec::new();
            for row in rows {
                let line: &str = row.get(0);
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
            Ok(out)
        })?
    }
}
