//! `runbook fmt`: every runbook in the repository and 1,000 generated ones
//! (with odd spacing and comments everywhere) format to a text that
//! compiles to the same graph, and formatting twice changes nothing.
//! The CLI: `--check` prints a diff and exits 1, an invalid file exits 3
//! and is left as it is.

use proptest::prelude::*;
use runbook::compile;
use runbook::fmt::{self, format_checked, format_text};
use runbook::source::Source;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::generate;

fn runbooks_in(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "runbook"))
        .collect();
    out.sort();
    out
}

/// Formats, and asserts what `fmt` promises: the same graph, and a fixed
/// point. Returns the formatted text.
fn assert_round_trip(source: &Source) -> String {
    let before = compile::compile(source)
        .unwrap_or_else(|r| panic!("{} does not compile:\n{}", source.name, r.render(false)));
    let formatted = format_text(source).expect("a source that compiles parses");
    let again = Source::new(source.name.clone(), formatted.clone());
    let after = compile::compile(&again).unwrap_or_else(|r| {
        panic!(
            "{} formatted does not compile:\n{}\n{formatted}",
            source.name,
            r.render(false)
        )
    });
    let (a, b) = (fmt::meaning(&before.graph), fmt::meaning(&after.graph));
    if a != b {
        let pretty = |v| serde_json::to_string_pretty(&v).unwrap_or_default();
        panic!(
            "{}: the formatted text means something else:\n{}\n{formatted}",
            source.name,
            fmt::unified_diff("graph", &pretty(a), &pretty(b))
        );
    }
    assert_eq!(
        format_checked(source).ok().as_deref(),
        Some(formatted.as_str()),
        "format_checked agrees"
    );
    let twice = format_text(&again).expect("formatted text parses");
    assert_eq!(
        twice, formatted,
        "{}: formatting is not idempotent",
        source.name
    );
    formatted
}

#[test]
fn every_repository_runbook_round_trips() {
    let mut files = runbooks_in("runbooks");
    files.extend(runbooks_in("tests/warnings"));
    assert!(files.len() > 10, "found {} runbooks", files.len());
    for f in files {
        let source = Source::read(&f).expect("readable");
        assert_round_trip(&source);
    }
}

#[test]
fn the_repository_runbooks_are_formatted() {
    for f in runbooks_in("runbooks") {
        let source = Source::read(&f).expect("readable");
        let formatted = assert_round_trip(&source);
        assert!(
            formatted == source.text,
            "{} is not formatted (run `runbook fmt runbooks/`):\n{}",
            source.name,
            fmt::unified_diff(&source.name, &source.text, &formatted)
        );
    }
}

#[test]
fn invalid_runbooks_are_refused_not_formatted() {
    let files = runbooks_in("tests/invalid");
    assert!(!files.is_empty());
    for f in files {
        let Ok(source) = Source::read(&f) else {
            continue; // not UTF-8: refused before formatting is considered
        };
        match format_checked(&source) {
            Err(fmt::Error::Invalid(report)) => assert!(report.has_errors()),
            other => panic!("{}: expected Invalid, got {other:?}", source.name),
        }
    }
}

/// Rewrites every run of whitespace outside string literals and comments (`choices`
/// picks what replaces it: more spaces, tabs, line breaks, blank lines or a
/// comment), and everything after the last token of a line.
fn perturb(text: &str, choices: &[u8]) -> String {
    const REPLACEMENTS: &[&str] = &[
        " ",
        "   ",
        "\t",
        "\n",
        "\n\n\n",
        " # a comment\n",
        "\n    # a comment on its own line\n\n",
        "  ",
    ];
    let mut out = String::with_capacity(text.len() * 2);
    let mut next = choices.iter().cycle();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("\"\"\"") {
            let end = rest[3..].find("\"\"\"").map_or(rest.len(), |i| i + 6);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else if c == '#' {
            let end = rest.find('\n').unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else if c == '"' {
            let mut end = 1;
            let bytes = rest.as_bytes();
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            let end = (end + 1).min(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else if c.is_whitespace() {
            let end = rest
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(rest.len());
            let had_newline = rest[..end].contains('\n');
            let pick = REPLACEMENTS[usize::from(*next.next().unwrap_or(&0)) % REPLACEMENTS.len()];
            out.push_str(pick);
            if had_newline && !pick.contains('\n') {
                // Keep line structure where the generator had it, so that a
                // comment never swallows the next token.
                out.push('\n');
            }
            rest = &rest[end..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn generated_runbooks_round_trip(
        steps in 1usize..16, // every kind of step the generator writes (10) and a parallel group
        choices in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let text = perturb(&generate::runbook(steps), &choices);
        let source = Source::new("generated.runbook", text);
        assert_round_trip(&source);
    }
}

fn runbook_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
}

#[test]
fn cli_check_prints_a_diff_and_fmt_rewrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("messy.runbook");
    let messy = "runbook messy {\n      title   \"Messy\"\n\n\n\n  step a { run \"echo hi\"   # greet\n  }\n}\n";
    std::fs::write(&path, messy).expect("write");

    let out = runbook_bin()
        .args(["fmt", "--check"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(diff.contains("-      title   \"Messy\""), "{diff}");
    assert!(diff.contains("+  title \"Messy\""), "{diff}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), messy);

    let out = runbook_bin().arg("fmt").arg(&path).output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let formatted = std::fs::read_to_string(&path).expect("read");
    assert_eq!(
        formatted,
        "runbook messy {\n  title \"Messy\"\n\n  step a {\n    run \"echo hi\"  # greet\n  }\n}\n"
    );
    let out = runbook_bin()
        .args(["fmt", "--check"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn cli_refuses_an_invalid_runbook_and_leaves_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.runbook");
    let bad = "runbook bad {\n  step a {   run \"x\"\n    when nope\n  }\n}\n";
    std::fs::write(&path, bad).expect("write");
    for args in [&["fmt"][..], &["fmt", "--check"][..]] {
        let out = runbook_bin().args(args).arg(&path).output().expect("runs");
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("nope"), "{stderr}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), bad);
    }
}
