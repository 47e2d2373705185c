//! `runbook check FILE|DIR...`: compile everything, report everything.

use crate::compile;
use crate::diagnostics::Code;
use crate::diagnostics::Report;
use crate::source::Source;
use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Runbook files, or directories searched for `*.runbook` files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Treat warnings as errors.
    #[arg(long)]
    pub deny_warnings: bool,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

/// Every `*.runbook` under the given paths, sorted; files given by name are
/// taken whatever their extension.
pub(super) fn discover(paths: &[PathBuf], extension: &str) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, extension, &mut out)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, extension, out)?;
        } else if path.to_string_lossy().ends_with(extension) {
            out.push(path);
        }
    }
    Ok(())
}

/// [`discover`] for commands that need at least one runbook: an error is
/// printed and the exit code returned.
pub(super) fn runbook_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, i32> {
    let files = discover(paths, ".runbook").map_err(|e| {
        eprintln!("error: {e}");
        crate::exit::USAGE
    })?;
    if files.is_empty() {
        eprintln!("error: no *.runbook files found under the given paths");
        return Err(crate::exit::USAGE);
    }
    Ok(files)
}

pub(super) fn execute(args: CheckArgs) -> i32 {
    let files = match runbook_files(&args.paths) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let color = std::io::stderr().is_terminal();
    let (mut errors, mut warnings) = (0, 0);
    let mut json = Vec::new();
    for f in &files {
        let report = match Source::read(f) {
            Ok(source) => compile::check(&source),
            Err(e) => {
                errors += 1;
                if args.format == Format::Json {
                    json.push(serde_json::json!({
                        "file": f.display().to_string(), "line": 1, "column": 1,
                        "severity": "error", "code": Code::Unreadable.as_str(), "message": e.to_string(),
                    }));
                } else {
                    eprintln!("error: {e}");
                }
                continue;
            }
        };
        errors += report.errors();
        warnings += report.warnings();
        match args.format {
            Format::Human => eprint!("{}", report.render(color)),
            Format::Json => json.extend(
                report
                    .to_json()
                    .into_iter()
                    .filter_map(|d| serde_json::to_value(d).ok()),
            ),
        }
        let _: &Report = &report;
    }
    match args.format {
        Format::Json => println!("{}", serde_json::Value::Array(json)),
        Format::Human => eprintln!(
            "checked {} runbook{}: {errors} error{}, {warnings} warning{}",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" },
        ),
    }
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        1
    } else {
        0
    }
}
