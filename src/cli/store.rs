//! `runbook store migrate`: applies the PostgreSQL store's migrations.

#[derive(clap::Subcommand, Debug, Clone)]
pub enum StoreCommand {
    /// Create or upgrade the store's tables (versioned; safe to run again,
    /// and from several machines at once).
    Migrate(MigrateArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub store: super::queue::StoreArgs,
}

pub(super) fn execute(command: StoreCommand) -> i32 {
    match command {
        StoreCommand::Migrate(a) => migrate(a),
    }
}

fn migrate(args: MigrateArgs) -> i32 {
    let (_, store) = match args.store.open() {
        Ok(s) => s,
        Err(code) => return code,
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
