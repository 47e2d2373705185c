//! `runbook fmt [--check] FILE|DIR...`: rewrite runbooks in the canonical
//! layout (`crate::fmt`), or with `--check` print what would change.

use crate::fmt::{self, Error};
use crate::source::Source;
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct FmtArgs {
    /// Runbook files, or directories searched for `*.runbook` files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Change nothing: print a diff of every file not formatted and exit 1.
    #[arg(long)]
    pub check: bool,
}

/// What became of one file.
enum Outcome {
    Unchanged,
    Changed,
    Invalid,
    Failed,
}

pub(super) fn execute(args: FmtArgs) -> i32 {
    let files = match super::check::runbook_files(&args.paths) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let outcomes: Vec<Outcome> = files.iter().map(|f| one_file(f, args.check)).collect();
    let count = |wanted: fn(&Outcome) -> bool| outcomes.iter().filter(|o| wanted(o)).count();
    let changed = count(|o| matches!(o, Outcome::Changed));
    let invalid = count(|o| matches!(o, Outcome::Invalid));
    let failed = count(|o| matches!(o, Outcome::Failed));
    let verb = if args.check {
        "not formatted"
    } else {
        "reformatted"
    };
    eprintln!(
        "{} runbook{}: {changed} {verb}, {invalid} invalid",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
    );
    if invalid > 0 {
        crate::exit::INVALID
    } else if failed > 0 || (args.check && changed > 0) {
        crate::exit::INTERNAL
    } else {
        crate::exit::SUCCESS
    }
}

fn one_file(path: &std::path::Path, check: bool) -> Outcome {
    let source = match Source::read(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Invalid;
        }
    };
    let formatted = match fmt::format_checked(&source) {
        Ok(t) => t,
        Err(Error::Invalid(report)) => {
            eprint!("{}", report.render(std::io::stderr().is_terminal()));
            eprintln!("error: {} does not compile: left as it is", source.name);
            return Outcome::Invalid;
        }
        Err(Error::ChangedMeaning(why)) => {
            eprintln!(
                "error: {}: not formatted, {why} (a bug in `runbook fmt`; please report it)",
                source.name
            );
            return Outcome::Failed;
        }
    };
    if formatted == source.text {
        return Outcome::Unchanged;
    }
    if check {
        print!(
            "{}",
            fmt::unified_diff(&source.name, &source.text, &formatted)
        );
        return Outcome::Changed;
    }
    match std::fs::write(path, formatted) {
        Ok(()) => {
            eprintln!("formatted {}", source.name);
            Outcome::Changed
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", source.name);
            Outcome::Failed
        }
    }
}
