//! The run queue of a PostgreSQL store: `runbook enqueue` stores a
//! validated run request, `runbook worker` runs them, `runbook queue`
//! lists them (docs/team.md).

use crate::session::{Inputs, RunRequest, Runbook, Session};
use crate::store::postgres::queue::NewRequest;
use std::path::PathBuf;

// The store of a queue or store command: `--store`, else the config's
// `store:` (no doc comment: clap would take it for the commands' about).
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// The store: `postgres://USER@HOST:PORT/DB` (the password in
    /// $RUNBOOK_STORE_PASSWORD; default: the config's `store:`).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// The config file (default: ./runbook.yaml if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Queue a run of a runbook (validated first: a runbook that does not
/// compile or bad inputs are refused with exit 3 and nothing is queued).
#[derive(clap::Args, Debug, Clone)]
pub struct EnqueueArgs {
    /// The runbook file (its text is stored with the request).
    pub file: PathBuf,
    /// An input value (repeatable).
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    pub input: Vec<String>,
    /// Only workers started with this `--tag` run it.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// List the queued, running and done run requests.
#[derive(clap::Args, Debug, Clone)]
pub struct QueueArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

impl StoreArgs {
    /// The PostgreSQL store of a command whose `--store` and `--config`
    /// are its own, or the exit code after saying why not.
    pub(super) fn named(
        store: &Option<String>,
        config: &Option<PathBuf>,
    ) -> Result<crate::store::postgres::PgStore, i32> {
        let args = StoreArgs {
            store: store.clone(),
            config: config.clone(),
        };
        args.open().map(|(_, s)| s)
    }

    /// The config and the PostgreSQL store, or the exit code after saying
    /// why not.
    pub(super) fn open(
        &self,
    ) -> Result<(crate::config::Config, crate::store::postgres::PgStore), i32> {
        let config = match crate::config::Config::load(self.config.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(*e));
                return Err(crate::exit::INVALID);
            }
        };
        match crate::store::open_postgres(self.store.as_deref(), config.store.as_ref()) {
            Ok(s) => Ok((config, s)),
            Err(e) => {
                eprintln!("error: {e}");
                Err(crate::exit::INVALID)
            }
        }
    }
}

pub(super) fn enqueue(args: EnqueueArgs) -> i32 {
    let (_, store) = match args.store.open() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let source = match crate::source::Source::read(&args.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::INVALID;
        }
    };
    let path = std::path::absolute(&args.file).unwrap_or_else(|_| args.file.clone());
    let mut request = RunRequest::new(Runbook::Text {
        name: args.file.display().to_string(),
        text: source.text.clone(),
    });
    request.inputs = Inputs {
        args: args.input.clone(),
        ..Default::default()
    };
    request.config = args.store.config.clone();
    if let Err(e) = Session::check(&request, &mut super::print_notice) {
        eprintln!("error: not queued");
        return super::print_error(e);
    }
    let new = NewRequest {
        path: path.display().to_string(),
        source: source.text.clone(),
        inputs: args.input,
        tag: args.tag,
    };
    match store.enqueue(&new) {
        Ok(id) => {
            println!("queued request {id}");
            crate::exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            crate::exit::INTERNAL
        }
    }
}

pub(super) fn list(args: QueueArgs) -> i32 {
    let (_, store) = match args.store.open() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let rows = match store.list_queue() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::INTERNAL;
        }
    };
    let dash = |o: Option<String>| o.unwrap_or_else(|| "-".to_owned());
    println!("ID\tSTATE\tTAG\tATTEMPTS\tRUN\tOUTCOME\tEXIT\tWORKER\tRUNBOOK");
    for r in rows {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.id,
            r.state,
            dash(r.tag),
            r.attempts,
            dash(r.run_id),
            dash(r.outcome),
            dash(r.exit_code.map(|c| c.to_string())),
            dash(r.claimed_by),
            r.path
        );
    }
    crate::exit::SUCCESS
}
