//! `runbook serve`: one process serving the JSON API, the web page and the
//! Alertmanager webhook, running the runs it starts itself (embedded, on
//! the file store). See docs/serve.md.
//!
//! * `routes`: the routes file (alert -> runbook, inputs, mode);
//!   `alertmanager`: the webhook payload; `dedup`: one active run per
//!   route and alert; `alert_log`: what became of every alert;
//!   `trigger`: alerts, proposals and `POST /runs` turned into runs
//!   through a `launcher::Launcher` (embedded threads; a queue later).
//! * `auth`: tokens, roles, web sessions, CSRF; `api`: the HTTP handlers
//!   (JSON); `page`: the HTML pages; `sse`: the live decision log;
//!   `svg`: the step graph.

// The request helpers return the rejection itself (a `Response`, 128
// bytes) as their error: once per request, never in a loop.
#![allow(clippy::result_large_err)]

/// The value of a `Result<T, Response>`, or returns the response (the
/// handlers' refusals).
macro_rules! or_return {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

pub mod alert_log;
pub mod alertmanager;
pub mod api;
pub mod auth;
pub mod dedup;
pub mod drill_html;
pub mod launcher;
pub mod page;
pub mod routes;
pub mod runs;
pub mod sse;
pub mod svg;
pub mod trigger;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The largest request body accepted (413 beyond).
pub const DEFAULT_MAX_BODY: usize = 256 * 1024;

/// How `runbook serve` was asked to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub routes: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub env: Option<String>,
    pub runs_dir: Option<PathBuf>,
    pub locks_dir: Option<PathBuf>,
    /// `--store`: `postgres://...` queues runs for workers (else the
    /// config's `store:`; `files` or none: runs in this process).
    pub store: Option<String>,
    pub max_body: usize,
}

/// Everything the handlers share.
pub struct App {
    /// This server's own files (the alert log, proposals without a store).
    pub runs_dir: PathBuf,
    /// Where runs are read: the runs directory, or the store.
    pub runs: runs::Runs,
    pub auth: auth::Auth,
    pub trigger: trigger::Trigger,
    /// The runs' graphs, compiled once per runbook source.
    pub graphs: svg::GraphCache,
}

/// Why the server did not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl App {
    /// Reads the config (tokens) and the routes file, compiles every
    /// route's runbook.
    pub fn new(opts: &Options) -> Result<App, StartError> {
        let config = crate::config::Config::load(opts.config.as_deref())
            .map_err(|e| StartError(format!("{:?}", miette::Report::new(*e))))?;
        let auth = auth::Auth::from_config(&config.serve).map_err(StartError)?;
        if auth.is_empty() {
            return Err(StartError(
                "no tokens: add `serve: { tokens: [...] }` to the config (see docs/serve.md); nothing would be allowed in".into(),
            ));
        }
        let routes = match &opts.routes {
            Some(p) => routes::Routes::load(p).map_err(|e| StartError(e.0))?,
            None => routes::Routes::default(),
        };
        let runs_dir = opts.runs_dir.clone().unwrap_or_else(|| config.runs_dir());
        let locks_dir = opts.locks_dir.clone().or(config.locks_dir.clone());
        let url = opts
            .store
            .as_deref()
            .or_else(|| config.store.as_ref().and_then(|s| s.url.as_deref()))
            .filter(|u| *u != "files");
        let queue = match url {
            None => None,
            Some(url) => {
                if opts.env.is_some() {
                    return Err(StartError(
                        "--env selects the environment of runs this process runs; with a PostgreSQL store the workers run them (give `runbook worker` its config)".into(),
                    ));
                }
                let store = crate::store::open_postgres(Some(url), config.store.as_ref())
                    .map_err(StartError)?;
                let q = launcher::Queue {
                    store,
                    config: opts.config.clone(),
                };
                // The store reachable and migrated; its proposals readable.
                trigger::stored_proposals(&q).map_err(StartError)?;
                Some(Arc::new(q))
            }
        };
        let launcher: Arc<dyn launcher::Launcher> = match &queue {
            Some(q) => q.clone(),
            None => Arc::new(launcher::Embedded::new(
                runs_dir.clone(),
                locks_dir,
                opts.config.clone(),
                opts.env.clone(),
            )),
        };
        let dedup: Arc<dedup::Dedup> = Arc::default();
        let proposals_file = runs_dir.join(trigger::PROPOSALS_FILE);
        let proposals = match &queue {
            Some(_) => indexmap::IndexMap::new(),
            None => trigger::load_proposals(&proposals_file, &dedup).map_err(StartError)?,
        };
        let runs = match &queue {
            Some(q) => runs::Runs::Store(Arc::new(q.store.clone())),
            None => runs::Runs::Files(runs_dir.clone()),
        };
        Ok(App {
            trigger: trigger::Trigger {
                routes,
                launcher,
                dedup,
                log: Arc::new(alert_log::AlertLog::new(&runs_dir)),
                proposals: std::sync::Mutex::new(proposals),
                proposals_file,
                queue,
            },
            runs,
            runs_dir,
            auth,
            graphs: svg::GraphCache::default(),
        })
    }
}

/// Serves `app` on `listener` until the process ends.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    max_body: usize,
) -> std::io::Result<()> {
    let router = api::router(Arc::new(app), max_body);
    axum::serve(listener, router).await
}

/// Refuses an address off loopback unless `public` says so.
pub fn check_listen(addr: &SocketAddr, public: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || public {
        Ok(())
    } else {
        Err(format!(
            "{addr} is not a loopback address: pass --public to listen there (and put TLS in front)"
        ))
    }
}
