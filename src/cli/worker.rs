//! `runbook worker`: claims queued run requests from a PostgreSQL store
//! and runs them (docs/team.md).
//!
//! The main task talks to the database: it hands back the requests of
//! dead workers, claims requests while fewer than `--concurrency` run
//! (`FOR UPDATE SKIP LOCKED`), renews its heartbeat, and records each
//! request's run id and outcome. Each run is a session on a thread of its
//! own, with real adapters, the worker's runs directory and the store's
//! locks. It wakes on `NOTIFY runbook_queue`, and polls every third of
//! the lease in case a notification was missed. On SIGTERM (or Ctrl-C) it
//! claims nothing more, lets the runs in progress finish, and exits 0.

use super::queue::StoreArgs;
use crate::session::{Inputs, RunRequest, Runbook, Session};
use crate::store::postgres::{queue::Claimed, PgStore};
use std::path::PathBuf;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Run queued run requests (several workers may share one store).
#[derive(clap::Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Runs at once, at most.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: u64,
    /// Only run requests queued with this tag (repeatable; default: every
    /// request).
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Where this worker's run directories are created (default: from the
    /// config, else .runbook/runs).
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// What a run's thread tells the main task.
enum Event {
    Started(i64, String),
    Finished(i64, String, i32),
}

pub(super) fn execute(args: WorkerArgs) -> i32 {
    let (config, store) = match args.store.open() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let runtime = match super::current_thread_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let worker = Worker {
        name: format!("{}:{}", crate::durable::sys::hostname(), std::process::id()),
        concurrency: usize::try_from(args.concurrency).unwrap_or(1),
        tags: args.tag,
        runs_dir: args.runs_dir.unwrap_or_else(|| config.runs_dir()),
        config: args.store.config,
        store,
    };
    match runtime.block_on(worker.work()) {
        Ok(()) => crate::exit::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            crate::exit::INTERNAL
        }
    }
}

struct Worker {
    name: String,
    concurrency: usize,
    tags: Vec<String>,
    runs_dir: PathBuf,
    config: Option<PathBuf>,
    store: PgStore,
}

impl Worker {
    async fn work(self) -> Result<(), String> {
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
                if let Err(e) = self.claim_all(&client, &mut running, &tx).await {
                    eprintln!("worker {}: {e}", self.name);
                }
            } else if stopping && running == 0 {
                eprintln!("worker {}: stopped", self.name);
                return Ok(());
            }
            tokio::select! {
                _ = term.recv(), if !stopping => stopping = self.stop(running),
                _ = interrupt.recv(), if !stopping => stopping = self.stop(running),
                n = next(&mut notified) => if n.is_none() { notified = None },
                Some(event) = events.recv() => {
                    match &event {
                        Event::Started(id, run_id) => {
                            eprintln!("worker {}: request {id}: run {run_id}", self.name);
                        }
                        Event::Finished(id, outcome, code) => {
                            running -= 1;
                            eprintln!("worker {}: request {id}: {outcome} (exit {code})", self.name);
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
            Event::Finished(id, outcome, code) => {
                self.store.finished(client, *id, outcome, *code).await
            }
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
        while *running < self.concurrency {
            let Some(claimed) = self.store.claim(client, &self.name, &self.tags).await? else {
                break;
            };
            eprintln!(
                "worker {}: request {}: {}",
                self.name, claimed.id, claimed.path
            );
            *running += 1;
            self.spawn(claimed, tx.clone());
        }
        Ok(())
    }

    /// Runs a claimed request on a thread of its own.
    fn spawn(&self, claimed: Claimed, tx: UnboundedSender<Event>) {
        let mut request = RunRequest::new(Runbook::Text {
            name: claimed.path,
            text: claimed.source,
        });
        request.inputs = Inputs {
            args: claimed.inputs,
            ..Default::default()
        };
        request.config = self.config.clone();
        request.runs_dir = Some(self.runs_dir.clone());
        request.store = Some(self.store.url().to_owned());
        let id = claimed.id;
        let name = self.name.clone();
        std::thread::spawn(move || {
            let finished = match Session::start(request, &mut super::print_notice) {
                Err(e) => {
                    eprintln!("worker {name}: request {id}: {e}");
                    let what = if matches!(e, crate::session::Error::Internal(_)) {
                        "error"
                    } else {
                        "invalid"
                    };
                    Event::Finished(id, what.to_owned(), e.exit_code())
                }
                Ok(session) => {
                    let _ = tx.send(Event::Started(id, session.run_id().to_owned()));
                    let f = session.run();
                    Event::Finished(
                        id,
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
