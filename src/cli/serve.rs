//! `runbook serve`: the HTTP API, the web page and the Alertmanager
//! webhook (`src/serve/`, docs/serve.md). Prints the address it listens on
//! (`listening on http://ADDR`) on stderr once it accepts connections.

use crate::exit;
use crate::serve::{self, App, Options};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Serve the API, the web page and the Alertmanager webhook.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8480")]
    pub listen: SocketAddr,
    /// Allow an address that is not loopback.
    #[arg(long)]
    pub public: bool,
    /// The routes file: which alert starts which runbook.
    #[arg(long, value_name = "FILE.yaml")]
    pub routes: Option<PathBuf>,
    /// The config file (tokens under `serve:`; default ./runbook.yaml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A named environment of the config file, for the runs started.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Where run directories are (default: from the config, else
    /// .runbook/runs).
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Where run locks live (as `runbook run --locks-dir`).
    #[arg(long, value_name = "DIR")]
    pub locks_dir: Option<PathBuf>,
    /// Queue the runs for `runbook worker` in this PostgreSQL store
    /// (`postgres://USER@HOST:PORT/DB`) and read runs from it; default: the
    /// config's `store:`, else run them in this process.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// The largest request body accepted, in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = serve::DEFAULT_MAX_BODY)]
    pub max_body: usize,
}

pub(super) fn execute(args: ServeArgs) -> i32 {
    if let Err(e) = serve::check_listen(&args.listen, args.public) {
        eprintln!("error: {e}");
        return exit::USAGE;
    }
    let opts = Options {
        listen: args.listen,
        routes: args.routes,
        config: args.config,
        env: args.env,
        runs_dir: args.runs_dir,
        locks_dir: args.locks_dir,
        store: args.store,
        max_body: args.max_body,
    };
    let app = match App::new(&opts) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::INTERNAL;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(opts.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", opts.listen);
                return exit::INTERNAL;
            }
        };
        let addr = listener.local_addr().unwrap_or(opts.listen);
        eprintln!("listening on http://{addr}");
        match serve::serve(app, listener, opts.max_body).await {
            Ok(()) => exit::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                exit::INTERNAL
            }
        }
    })
}
