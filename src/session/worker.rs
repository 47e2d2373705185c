//! The worker behind `runbook worker` (docs/team.md): claims queued run
//! requests and orphaned runs from a PostgreSQL store and runs them.
//!
//! The main task talks to the database: it hands back the requests of
//! dead workers, takes over orphaned runs (their owner silent for the
//! store's grace: [`Session::take_over`]) and claims requests while fewer
//! than `--concurrency` run (`FOR UPDATE SKIP LOCKED`), renews its
//! heartbeat, and records each request's run id and outcome. Each run is a session on a thread of its
//! own, with real adapters, the worker's runs directory and the store's
//! locks. It looks for work when it starts, when `NOTIFY runbook_queue`
//! wakes it, when one of its runs ends, and every `poll:` of the store
//! (default: a third of the lease) in case a notification was missed;
//! its heartbeat does not look. On SIGTERM (or Ctrl-C) it
//! claims nothing more, lets the runs in progress finish, and exits 0.

use crate::session::{DryRun, Inputs, Notice, ResumeRequest, RunRequest, Runbook, Session};
use crate::store::postgres::{queue::Claimed, serve::Served, takeover::Claim, PgStore};
use std::path::PathBuf;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// What a run's thread tells the main task: a request's run started; a
/// run ended (its request, if it came from the queue).
enum Event {
    Started(i64, String),
    Finished(Option<i64>, String, i32),
    /// A run taken over could not go on (its exit code).
    NotResumed(Option<i64>, i32),
}

/// A worker: its name (`HOST:PID`), how many runs at once, the tags it
/// takes, where its run directories go, the config its runs load, the
/// store, and where notices (compile warnings...) of its runs go.
pub struct Worker {
    pub name: String,
    pub concurrency: usize,
    pub tags: Vec<String>,
    pub runs_dir: PathBuf,
    pub config: Option<PathBuf>,
    pub store: PgStore,
    pub notice: fn(Notice),
}

impl Worker {
    /// Runs until SIGTERM or Ctrl-C (then finishes the runs in progress).
    pub async fn work(self) -> Result<(), String> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut client = self.store.connect_checked().await?;
        let (mut _listening, mut notified) = match self.store.listen().await {
            Ok((client, rx)) => (Some(client), Some(rx)),
            Err(e) => {
                eprintln!("worker {}: {e}; polling only", self.name);
                (None, None)
            }
        };
        let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
        let (tx, mut events) = unbounded_channel();
        let mut beat = tokio::time::interval(self.store.lease() / 3);
        let mut poll = tokio::time::interval(self.store.queue_poll());
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Whether to look for work on this turn of the loop.
        let mut look = true;
        let mut running = 0usize;
        let mut stopping = false;
        eprintln!(
            "worker {}: taking requests from {}",
            self.name,
            self.store.url()
        );
        // Records of runs that could not be written (the connection was
        // lost): written again once it is back.
        let mut unrecorded: Vec<Event> = Vec::new();
        loop {
            if client.is_closed() {
                // The database restarted or the network dropped: connect
                // again, at most once a heartbeat (no busy loop); runs in
                // progress go on meanwhile.
                match self.store.connect_checked().await {
                    Ok(c) => {
                        eprintln!("worker {}: reconnected to {}", self.name, self.store.url());
                        client = c;
                        look = true;
                        if notified.is_none() {
                            if let Ok((c, rx)) = self.store.listen().await {
                                _listening = Some(c);
                                notified = Some(rx);
                            }
                        }
                    }
                    Err(e) => eprintln!("worker {}: {e}", self.name),
                }
            }
            if !client.is_closed() {
                for event in std::mem::take(&mut unrecorded) {
                    if let Err(e) = self.record(&client, &event).await {
                        eprintln!("worker {}: {e}", self.name);
                        unrecorded.push(event);
                    }
                }
            }
            if !stopping && !client.is_closed() {
                if std::mem::take(&mut look) {
                    if let Err(e) = self.claim_all(&client, &mut running, &tx).await {
                        eprintln!("worker {}: {e}", self.name);
                    }
                }
            } else if stopping && running == 0 {
                eprintln!("worker {}: stopped", self.name);
                return Ok(());
            }
            tokio::select! {
                _ = term.recv(), if !stopping => stopping = self.stop(running),
                _ = interrupt.recv(), if !stopping => stopping = self.stop(running),
                n = next(&mut notified) => {
                    look = true;
                    if n.is_none() { notified = None }
                }
                _ = poll.tick() => look = true,
                Some(event) = events.recv() => {
                    // A run that ended makes room.
                    look = !matches!(event, Event::Started(..));
                    match &event {
                        Event::Started(id, run_id) => {
                            eprintln!("worker {}: request {id}: run {run_id}", self.name);
                        }
                        Event::Finished(Some(id), outcome, code) => {
                            running -= 1;
                            eprintln!("worker {}: request {id}: {outcome} (exit {code})", self.name);
                        }
                        Event::Finished(None, outcome, code) => {
                            running -= 1;
                            eprintln!("worker {}: taken-over run: {outcome} (exit {code})", self.name);
                        }
                        Event::NotResumed(id, code) => {
                            running -= 1;
                            eprintln!(
                                "worker {}: request {}: taken over but not resumed (exit {code}): resume it with `runbook resume RUN_ID --store`",
                                self.name,
                                id.map_or("-".to_owned(), |i| i.to_string())
                            );
                        }
                    }
                    if let Err(e) = self.record(&client, &event).await {
                        eprintln!("worker {}: {e}", self.name);
                        unrecorded.push(event);
                    }
                }
                _ = beat.tick() => {
                    if let Err(e) = self.store.heartbeat(&client, &self.name).await {
                        eprintln!("worker {}: {e}", self.name);
                    }
                }
            }
        }
    }

    /// Writes a run's start or outcome into its request's row.
    async fn record(&self, client: &tokio_postgres::Client, event: &Event) -> Result<(), String> {
        match event {
            Event::Started(id, run_id) => self.store.started(client, *id, run_id).await,
            Event::Finished(Some(id), outcome, code) => {
                self.store
                    .finished(client, &self.name, *id, outcome, *code)
                    .await
            }
            Event::NotResumed(Some(id), code) => {
                self.store.not_resumed(client, &self.name, *id, *code).await
            }
            Event::Finished(None, ..) | Event::NotResumed(None, _) => Ok(()),
        }
    }

    /// SIGTERM: claim nothing more.
    fn stop(&self, running: usize) -> bool {
        eprintln!(
            "worker {}: stopping: claiming no more requests, finishing {running} run(s)",
            self.name
        );
        true
    }

    /// Hands back dead workers' requests, then claims while there is room.
    async fn claim_all(
        &self,
        client: &tokio_postgres::Client,
        running: &mut usize,
        tx: &UnboundedSender<Event>,
    ) -> Result<(), String> {
        let (back, orphaned) = self.store.reap(client).await?;
        if back + orphaned > 0 {
            eprintln!(
                "worker {}: {back} request(s) of dead workers handed back, {orphaned} orphaned",
                self.name
            );
        }
        // Orphaned runs first: they were started and may hold a change
        // half done.
        while *running < self.concurrency {
            let Some(claim) = self.store.claim_orphan(client, &self.name).await? else {
                break;
            };
            eprintln!(
                "worker {}: taking over run {} (request {}) from pid {} on {}",
                self.name,
                claim.run_id,
                claim.request.map_or("-".to_owned(), |r| r.to_string()),
                claim.from_pid,
                claim.from_host
            );
            *running += 1;
            self.spawn_takeover(claim, tx.clone());
        }
        while *running < self.concurrency {
            let Some(claimed) = self.store.claim(client, &self.name, &self.tags).await? else {
                break;
            };
            eprintln!(
                "worker {}: request {}: {}",
                self.name, claimed.id, claimed.path
            );
            // What `runbook serve` queued with it (dry run, who started
            // it, structured inputs, its run id); defaults otherwise.
            let served = match self.store.served(client, claimed.id).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("worker {}: request {}: {e}", self.name, claimed.id);
                    Served::default()
                }
            };
            *running += 1;
            self.spawn(claimed, served, tx.clone());
        }
        Ok(())
    }

    /// Who takes a run over, for its journal.
    fn by(&self) -> String {
        format!("worker {}", self.name)
    }

    /// Goes on with a run taken over from a dead owner, on a thread of its
    /// own (`Session::take_over`: the same in-doubt rules as `resume`).
    fn spawn_takeover(&self, claim: Claim, tx: UnboundedSender<Event>) {
        let mut request = ResumeRequest::new(claim.run_id.clone());
        request.runs_dir = Some(self.runs_dir.clone());
        request.store = Some(self.store.url().to_owned());
        let name = self.name.clone();
        let by = self.by();
        let mut notice = self.notice;
        let store = self.store.clone();
        std::thread::spawn(move || {
            let finished = match Session::take_over(&claim, &by, request, &mut notice) {
                Err(e) => {
                    eprintln!("worker {name}: run {}: cannot go on: {e}", claim.run_id);
                    if let Err(e) = store.release_run(&claim.run_id, claim.new_epoch) {
                        eprintln!("worker {name}: {e}");
                    }
                    Event::NotResumed(claim.request, e.exit_code())
                }
                Ok(session) => {
                    let f = session.run();
                    Event::Finished(
                        claim.request,
                        f.summary.outcome.as_str().to_owned(),
                        f.summary.exit_code,
                    )
                }
            };
            let _ = tx.send(finished);
        });
    }

    /// Runs a claimed request on a thread of its own.
    fn spawn(&self, claimed: Claimed, served: Served, tx: UnboundedSender<Event>) {
        let mut request = RunRequest::new(Runbook::Text {
            name: claimed.path,
            text: claimed.source,
        });
        // Structured inputs were validated by the server before it queued
        // them; unreadable ones (a hand-edited row) make the run invalid.
        let values = match served.values.as_deref().map(serde_json::from_str) {
            None => Ok(indexmap::IndexMap::new()),
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(format!("the request's input values are not readable: {e}")),
        };
        request.inputs = Inputs {
            args: claimed.inputs,
            values: values.clone().unwrap_or_default(),
            ..Default::default()
        };
        request.dry_run = served.dry_run.then(DryRun::default);
        request.started_by = served.started_by;
        request.run_id = served.run_id;
        request.config = self.config.clone();
        request.runs_dir = Some(self.runs_dir.clone());
        request.store = Some(self.store.url().to_owned());
        let id = claimed.id;
        let name = self.name.clone();
        let mut notice = self.notice;
        std::thread::spawn(move || {
            let started = match values {
                Ok(_) => Session::start(request, &mut notice),
                Err(e) => Err(crate::session::Error::Invalid(vec![e])),
            };
            let finished = match started {
                Err(e) => {
                    eprintln!("worker {name}: request {id}: {e}");
                    let what = if matches!(e, crate::session::Error::Internal(_)) {
                        "error"
                    } else {
                        "invalid"
                    };
                    Event::Finished(Some(id), what.to_owned(), e.exit_code())
                }
                Ok(session) => {
                    let _ = tx.send(Event::Started(id, session.run_id().to_owned()));
                    let f = session.run();
                    Event::Finished(
                        Some(id),
                        f.summary.outcome.as_str().to_owned(),
                        f.summary.exit_code,
                    )
                }
            };
            let _ = tx.send(finished);
        });
    }
}

/// The next notification, or never when there is no listening connection.
async fn next(rx: &mut Option<UnboundedReceiver<()>>) -> Option<()> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
