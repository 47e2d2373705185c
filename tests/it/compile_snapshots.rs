//! Directory-driven snapshots of what the compiler says.
//!
//! - `tests/invalid/*.runbook`: one file per distinct error. Each must fail
//!   with the number of errors in [`ERRORS`] (1 unless listed), and its
//!   diagnostics are snapshot twice: as rendered for a terminal (no colour)
//!   and as the JSON of `runbook check --format json`.
//! - `tests/warnings/*.runbook`: compile, but warn; same two snapshots.
//! - `runbooks/*.runbook`: the examples compile without errors; the compiled
//!   graph is snapshot as JSON (the source hash and byte spans redacted, so
//!   that editing a comment does not churn the snapshot).
//!
//! Review workflow: `cargo insta test --review`, or run with
//! `INSTA_UPDATE=always` and read every changed `.snap` before committing.

use runbook::compile;
use runbook::diagnostics::Report;
use std::path::Path;

/// Invalid files that must report more than one error, and why.
const ERRORS: &[(&str, usize)] = &[
    // Every mistake in the file, at once.
    ("multiple_errors.runbook", 5),
    // A call short of an argument, a subexpression's with one too many.
    ("template_function_arity.runbook", 2),
    // The capture is read in the `when`, the command and the `undo`.
    ("capture_read_before_set.runbook", 3),
    // The sibling's capture is read by the command and the `undo`.
    ("capture_from_parallel_sibling.runbook", 2),
    // Both the action and the undo loop over the string.
    ("for_over_non_list.runbook", 2),
    // The reserved input, then each `{{run}}` that now means the built-in.
    ("reserved_name.runbook", 3),
    // The URL does not start with http(s)://, and a value is in its scheme.
    ("unsafe_placeholder_url_scheme.runbook", 2),
];

fn display_name(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn report_of(path: &Path) -> Report {
    let bytes = std::fs::read(path).expect("test file is readable");
    compile::check_bytes(display_name(path), bytes)
}

/// What a reviewer sees: the counts, then miette's rendering.
fn rendered(report: &Report) -> String {
    format!(
        "{} error(s), {} warning(s)\n\n{}",
        report.errors(),
        report.warnings(),
        report.render(false)
    )
}

#[test]
fn invalid_runbooks() {
    insta::glob!("../invalid", "*.runbook", |path| {
        let name = file_name(path);
        let report = report_of(path);
        let expected = ERRORS
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, n)| *n)
            .unwrap_or(1);
        assert_eq!(
            report.errors(),
            expected,
            "{name}: expected {expected} error(s), got:\n{}",
            report.render(false)
        );
        insta::assert_snapshot!("invalid", rendered(&report));
        insta::assert_json_snapshot!("invalid_json", report.to_json());
    });
}

#[test]
fn every_multi_error_file_exists() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    for (name, _) in ERRORS {
        assert!(
            dir.join(name).is_file(),
            "ERRORS names a missing file: {name}"
        );
    }
}

#[test]
fn invalid_runbooks_cover_distinct_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let count = std::fs::read_dir(&dir)
        .expect("tests/invalid exists")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "runbook"))
        .count();
    assert!(count >= 45, "only {count} invalid runbooks");
}

#[test]
fn warning_runbooks() {
    insta::glob!("../warnings", "*.runbook", |path| {
        let name = file_name(path);
        let report = report_of(path);
        assert_eq!(
            report.errors(),
            0,
            "{name} must compile:\n{}",
            report.render(false)
        );
        assert!(report.warnings() >= 1, "{name} must warn");
        insta::assert_snapshot!("warning", rendered(&report));
        insta::assert_json_snapshot!("warning_json", report.to_json());
    });
}

#[test]
fn example_runbooks_compile_to_graphs() {
    insta::glob!("../../runbooks", "*.runbook", |path| {
        let name = file_name(path);
        let source = runbook::source::Source::read(path).expect("example is UTF-8");
        let source = runbook::source::Source {
            name: display_name(path),
            ..source
        };
        let compiled = match compile::compile(&source) {
            Ok(c) => c,
            Err(report) => panic!("{name} does not compile:\n{}", report.render(false)),
        };
        let warnings = Report::new(source, compiled.warnings.clone());
        insta::assert_snapshot!("example_warnings", rendered(&warnings));
        // Redacted: the source hash and the byte spans, which change with
        // every edit of the file (a comment, a blank line). Spans are tested
        // by the diagnostics snapshots.
        insta::assert_json_snapshot!("example_graph", compiled.graph, {
            ".source_sha256" => "[sha256]",
            ".**.span" => "[span]",
        });
    });
}
