//! `GET /runs/{id}/events?after=SEQ`: the decision log live, as
//! server-sent events. The run's journal is followed (read from where the
//! last read stopped, complete lines only, every `POLL`); each event is
//! sent as `event: row` with a [`Row`](super::page::Row) as data and its
//! seq as id (a reconnecting browser sends `Last-Event-ID`). The stream
//! ends after `run_finished`. The journal is already redacted. With a
//! PostgreSQL store the run's `runbook_journal` rows are polled instead
//! (every `STORE_POLL`, on one connection per stream; no LISTEN: the
//! journal's inserts do not notify).

use super::api::{view_run, AppState};
use super::page::row;
use super::runs::RunAt;
use crate::durable::journal::JOURNAL_FILE;
use crate::store::postgres::PgStore;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

/// How often a followed journal is read.
pub const POLL: Duration = Duration::from_millis(100);

/// How often a followed run's rows are read from a PostgreSQL store.
pub const STORE_POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Default, Deserialize)]
pub struct After {
    #[serde(default)]
    pub after: Option<u64>,
}

/// Follows one journal file.
struct Follow {
    path: std::path::PathBuf,
    offset: u64,
    partial: Vec<u8>,
    after: u64,
    queue: std::collections::VecDeque<Event>,
    finished: bool,
}

impl Follow {
    /// Reads what was appended; queues the events after `after`.
    fn read(&mut self) -> std::io::Result<()> {
        let mut f = std::fs::File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        while let Some(nl) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            self.line(&line);
        }
        Ok(())
    }

    /// Queues one journal line's event if it comes after `after`.
    fn line(&mut self, line: &[u8]) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            return;
        };
        let r = row(&v);
        if r.kind == "run_finished" {
            self.finished = true;
        }
        if r.seq <= self.after {
            return;
        }
        self.after = r.seq;
        if let Ok(ev) = Event::default()
            .event("row")
            .id(r.seq.to_string())
            .json_data(&r)
        {
            self.queue.push_back(ev);
        }
    }
}

pub async fn events(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<After>,
    headers: HeaderMap,
) -> Response {
    let at = or_return!(view_run(&app, &headers, &id).await);
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let after = last_id.or(q.after).unwrap_or(0);
    let dir = match at {
        RunAt::Dir(dir) => dir,
        RunAt::Store(store, run) => return follow_store(store, run.run_id, after),
    };
    let follow = Follow {
        path: dir.join(JOURNAL_FILE),
        offset: 0,
        partial: Vec::new(),
        after,
        queue: Default::default(),
        finished: false,
    };
    let stream = futures_util::stream::unfold(Some(follow), |state| async move {
        let mut f = state?;
        loop {
            if let Some(ev) = f.queue.pop_front() {
                return Some((Ok::<_, Infallible>(ev), Some(f)));
            }
            if f.finished {
                return Some((Ok(Event::default().event("end").data("run finished")), None));
            }
            let (r, back) = match tokio::task::spawn_blocking(move || {
                let r = f.read();
                (r, f)
            })
            .await
            {
                Ok(x) => x,
                Err(_) => return None,
            };
            f = back;
            if r.is_err() {
                return None;
            }
            if f.queue.is_empty() && !f.finished {
                tokio::time::sleep(POLL).await;
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The stream of a run in a PostgreSQL store: its rows after `after`,
/// polled every [`STORE_POLL`] on one connection.
fn follow_store(store: std::sync::Arc<PgStore>, run_id: String, after: u64) -> Response {
    let follow = Follow {
        path: std::path::PathBuf::new(),
        offset: 0,
        partial: Vec::new(),
        after,
        queue: Default::default(),
        finished: false,
    };
    let stream = futures_util::stream::unfold(
        Some((follow, None::<tokio_postgres::Client>)),
        move |state| {
            let (store, run_id) = (store.clone(), run_id.clone());
            async move {
                let (mut f, mut client) = state?;
                loop {
                    if let Some(ev) = f.queue.pop_front() {
                        return Some((Ok::<_, Infallible>(ev), Some((f, client))));
                    }
                    if f.finished {
                        return Some((
                            Ok(Event::default().event("end").data("run finished")),
                            None,
                        ));
                    }
                    let c = match client.take() {
                        Some(c) if !c.is_closed() => c,
                        _ => store.connect_checked().await.ok()?,
                    };
                    let after = i64::try_from(f.after).unwrap_or(i64::MAX);
                    let lines = store.journal_after(&c, &run_id, after).await.ok()?;
                    client = Some(c);
                    for (_, line) in &lines {
                        f.line(line.as_bytes());
                    }
                    if f.queue.is_empty() && !f.finished {
                        tokio::time::sleep(STORE_POLL).await;
                    }
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
