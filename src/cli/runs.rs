//! `runbook runs`: every run under the runs directory with its state.

use crate::durable::runs::list_runs;
use crate::exit;
use std::path::PathBuf;

/// List runs (newest first): id, runbook, started, state, last event.
#[derive(clap::Args, Debug, Clone)]
pub struct RunsArgs {
    /// The runs directory (default: from the config, else .runbook/runs).
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// The config file (default: ./runbook.yaml if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// List the runs a PostgreSQL store holds instead
    /// (`postgres://USER@HOST:PORT/DB`, the password in
    /// $RUNBOOK_STORE_PASSWORD; see docs/team.md).
    #[arg(long, value_name = "URL", conflicts_with = "runs_dir")]
    pub store: Option<String>,
}

pub(super) use crate::session::{check_run_id, runs_dir};

pub(super) fn execute(args: RunsArgs) -> i32 {
    if args.store.is_some() {
        let store = match super::queue::StoreArgs::named(&args.store, &args.config) {
            Ok(s) => s,
            Err(code) => return code,
        };
        return match store.list_runs() {
            Ok(runs) => print(&runs, &format!("in the store {}", store.url()), true),
            Err(e) => {
                eprintln!("error: {e}");
                exit::INTERNAL
            }
        };
    }
    let dir = runs_dir(args.runs_dir.as_deref(), args.config.as_deref());
    let runs = match list_runs(&dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot list {}: {e}", dir.display());
            return exit::INTERNAL;
        }
    };
    print(&runs, &format!("under {}", dir.display()), false)
}

/// Prints the runs (`place`: where they are, for "no runs ..."); `store`:
/// they were read from a store, where an interrupted run can be taken over.
fn print(runs: &[crate::durable::runs::RunListing], place: &str, store: bool) -> i32 {
    if runs.is_empty() {
        println!("no runs {place}");
        return exit::SUCCESS;
    }
    let rows: Vec<[String; 5]> = runs
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.runbook.clone().unwrap_or_else(|| "?".into()),
                r.started.clone().unwrap_or_else(|| "?".into()),
                r.state.to_string(),
                r.last_event
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["ID", "RUNBOOK", "STARTED", "STATE", "LAST EVENT"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i == 4 {
                s.push_str(c);
            } else {
                // Padded by hand: `{:w$}` panics for a width over 65,535,
                // and run.json (where the runbook's name is read) is a file.
                s.push_str(c);
                s.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        s.trim_end().to_owned()
    };
    println!("{}", line(header));
    for (row, r) in rows.iter().zip(runs) {
        println!("{}", line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
        if let Some(p) = &r.problem {
            println!("    warning: {p}");
        }
        if r.handler_failed > 0 {
            println!(
                "    warning: {} handler action(s) failed (the outcome stands; see the journal's warnings)",
                r.handler_failed
            );
        }
    }
    if runs
        .iter()
        .any(|r| r.state == crate::durable::runs::RunStatus::Interrupted)
    {
        if store {
            println!("\ninterrupted runs can be taken over from any machine with `runbook resume RUN_ID --store URL`, or by a `runbook worker` (see docs/team.md)");
        } else {
            println!("\ninterrupted runs can be picked up with `runbook resume RUN_ID` (see docs/operations.md)");
        }
    }
    exit::SUCCESS
}
