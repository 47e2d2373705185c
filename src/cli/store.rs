//! `runbook store migrate`: applies the PostgreSQL store's migrations.

use std::path::PathBuf;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum StoreCommand {
    /// Create or upgrade the store's tables (versioned; safe to run again,
    /// and from several machines at once).
    Migrate(MigrateArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct MigrateArgs {
    /// The store: `postgres://USER@HOST:PORT/DB` (the password in
    /// $RUNBOOK_STORE_PASSWORD; default: the config's `store:`).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// The config file (default: ./runbook.yaml if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub(super) fn execute(command: StoreCommand) -> i32 {
    match command {
        StoreCommand::Migrate(a) => migrate(a),
    }
}

fn migrate(args: MigrateArgs) -> i32 {
    let config = match crate::config::Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(*e));
            return crate::exit::INVALID;
        }
    };
    let store = match crate::store::open_postgres(args.store.as_deref(), config.store.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::exit::INVALID;
        }
    };
    match store.migrate() {
        Ok((before, after)) if before == after => {
            println!(
                "store {}: schema at version {after}, nothing to do",
                store.url()
            );
            crate::exit::SUCCESS
        }
        Ok((before, after)) => {
            println!(
                "store {}: schema migrated from version {before} to {after}",
                store.url()
            );
            crate::exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            crate::exit::INTERNAL
        }
    }
}
