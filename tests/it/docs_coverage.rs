//! The language reference stays true and complete.
//!
//! * Every ```` ```runbook ```` block in `docs/language.md` compiles with no
//!   warnings; ```` ```runbook,warning ```` blocks compile with at least one
//!   warning; ```` ```runbook,invalid ```` blocks must NOT compile. A block
//!   may name the diagnostic it is about with a line `# expect: CODE`; that
//!   code must then be among its diagnostics.
//! * Every keyword (`kw_*` rule) and operator (`op_*` rule) of
//!   `grammar/runbook.pest` is mentioned in backticks in the reference and
//!   used by at least one runbook in `runbooks/`; every diagnostic code the
//!   compiler can emit is documented. Each test lists everything missing at
//!   once, not only the first gap.

use pest::Parser;
use runbook::compile::{check, compile};
use runbook::source::Source;
use runbook::syntax::{Rule, RunbookParser};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const GRAMMAR: &str = include_str!("../../grammar/runbook.pest");
const DOCS: &str = include_str!("../../docs/language.md");
const DOCS_PATH: &str = "docs/language.md";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---- fenced blocks -----------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Clean,
    Warning,
    Invalid,
}

#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    expect: Expect,
    text: String,
}

/// Every fenced block whose info string starts with `runbook`.
fn runbook_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, Option<Expect>, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let mut attrs = info.trim().split(',').map(str::trim);
                    let lang = attrs.next().unwrap_or("");
                    let expect = (lang == "runbook").then(|| {
                        let attrs: Vec<&str> = attrs.collect();
                        if attrs.contains(&"invalid") {
                            Expect::Invalid
                        } else if attrs.contains(&"warning") {
                            Expect::Warning
                        } else {
                            Expect::Clean
                        }
                    });
                    open = Some((i + 1, expect, String::new()));
                }
            }
            Some((start, expect, text)) => {
                if trimmed.starts_with("```") {
                    if let Some(expect) = expect.take() {
                        blocks.push(Block {
                            line: *start,
                            expect,
                            text: std::mem::take(text),
                        });
                    }
                    open = None;
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    assert!(
        open.is_none(),
        "{DOCS_PATH}: a fenced block is never closed"
    );
    blocks
}

/// `# expect: runbook::unknown_name` lines of a block.
fn expected_codes(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("# expect:"))
        .map(str::trim)
        .collect()
}

#[test]
fn every_runbook_block_in_the_reference_behaves_as_labelled() {
    let blocks = runbook_blocks(DOCS);
    assert!(
        blocks.len() >= 20,
        "expected the reference to hold many ```runbook examples, found {}",
        blocks.len()
    );
    let mut failures = Vec::new();
    for b in &blocks {
        let name = format!("{DOCS_PATH}:{}", b.line);
        let source = Source::new(name.clone(), b.text.clone());
        let report = check(&source);
        let codes: Vec<&str> = report.diags.iter().map(|d| d.code).collect();
        let compiled = compile(&source);
        let problem = match (&b.expect, &compiled) {
            (Expect::Invalid, Ok(_)) => {
                Some("is marked `invalid` but compiles without errors".to_string())
            }
            (Expect::Clean | Expect::Warning, Err(r)) => {
                Some(format!("does not compile:\n{}", r.render(false)))
            }
            (Expect::Clean, Ok(c)) if !c.warnings.is_empty() => Some(format!(
                "compiles with warnings (mark it ```runbook,warning if they are the point):\n{}",
                report.render(false)
            )),
            (Expect::Warning, Ok(c)) if c.warnings.is_empty() => {
                Some("is marked `warning` but compiles without any".to_string())
            }
            _ => None,
        };
        if let Some(p) = problem {
            failures.push(format!("{name}: the block {p}"));
            continue;
        }
        for want in expected_codes(&b.text) {
            if !codes.contains(&want) {
                failures.push(format!(
                    "{name}: expected diagnostic `{want}`, got {codes:?}:\n{}",
                    report.render(false)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runbook blocks are wrong:\n\n{}",
        failures.len(),
        blocks.len(),
        failures.join("\n\n")
    );
}

#[test]
fn block_extraction_reads_fences_and_labels() {
    let md = "text\n```runbook\nrunbook a {}\n```\n```text\nx\n```\n  ```runbook,invalid\nbad\n  ```\n```runbook, warning\nw\n```\n";
    let blocks = runbook_blocks(md);
    let got: Vec<(usize, &Expect, &str)> = blocks
        .iter()
        .map(|b| (b.line, &b.expect, b.text.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, &Expect::Clean, "runbook a {}\n"),
            (8, &Expect::Invalid, "bad\n"),
            (11, &Expect::Warning, "w\n"),
        ]
    );
    assert_eq!(
        expected_codes("# expect: runbook::x\n  # expect:  runbook::y\n"),
        vec!["runbook::x", "runbook::y"]
    );
}

// ---- what the reference mentions -------------------------------------------

/// The contents of every inline code span outside fenced blocks.
fn inline_code(markdown: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // A run of N backticks opens a span that the next run of exactly
        // N backticks closes (CommonMark); an unmatched run is plain text.
        let mut rest = line;
        while let Some(open) = rest.find('`') {
            let after = &rest[open..];
            let ticks = after.len() - after.trim_start_matches('`').len();
            let body = &after[ticks..];
            match closing_run(body, ticks) {
                Some(close) => {
                    spans.push(body[..close].trim().to_string());
                    rest = &body[close + ticks..];
                }
                None => rest = body,
            }
        }
    }
    spans
}

/// Offset of the first run of exactly `ticks` backticks in `text`.
fn closing_run(text: &str, ticks: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i] == b'`' {
            i += 1;
        }
        if i - start == ticks {
            return Some(start);
        }
    }
    None
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `word` appears as a whole word (keywords) or a whole token (operators)
/// in some inline code span.
fn mentioned(spans: &[String], word: &str) -> bool {
    let wordy = word.chars().all(is_ident_char);
    spans.iter().any(|s| {
        if wordy {
            s.split(|c: char| !is_ident_char(c)).any(|w| w == word)
        } else {
            s.split_whitespace().any(|t| t == word)
        }
    })
}

/// `(rule, text)` of every rule named `prefix*` whose body is one literal,
/// e.g. `kw_no_data = @{ "no_data" ~ !ident_char }` or `op_le = { "<=" }`.
fn literal_rules(prefix: &str) -> Vec<(String, String)> {
    let mut rules = Vec::new();
    for line in GRAMMAR.lines() {
        let line = line.trim();
        let Some((name, body)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if !name.starts_with(prefix) || !name.chars().all(is_ident_char) {
            continue;
        }
        let literal = body.split('"').nth(1);
        match literal {
            Some(text) if !text.is_empty() => rules.push((name.to_string(), text.to_string())),
            _ => panic!("grammar rule `{name}` has no literal to look for: {line}"),
        }
    }
    rules
}

#[test]
fn the_grammar_has_the_rules_this_test_relies_on() {
    let kws = literal_rules("kw_");
    assert!(kws.len() > 50, "found only {} keyword rules", kws.len());
    assert!(kws.contains(&("kw_no_data".into(), "no_data".into())));
    assert!(kws.contains(&("kw_max_failures".into(), "max_failures".into())));
    let ops = literal_rules("op_");
    assert!(ops.contains(&("op_le".into(), "<=".into())));
    assert!(ops.contains(&("op_matches".into(), "matches".into())));
    let spans = inline_code(
        "a `on no_data pass` and ``x `y` z`` b ` ```runbook ` c `unmatched\n```\n`fenced`\n```\n",
    );
    assert_eq!(spans, vec!["on no_data pass", "x `y` z", "```runbook"]);
    assert!(mentioned(&spans, "no_data"));
    assert!(!mentioned(&spans, "fenced"));
    assert!(!mentioned(&spans, "data"));
}

// ---- what the runbooks use ---------------------------------------------------

fn runbook_files() -> Vec<PathBuf> {
    let dir = root().join("runbooks");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "runbook"))
        .collect();
    files.sort();
    files
}

/// Names of every grammar rule that matched somewhere in `runbooks/`,
/// from the real parser's tree (so `in` inside a string does not count),
/// plus `scalar_type:int`, `http_method:get`... for the words those rules
/// match.
fn rules_used_by_runbooks() -> BTreeSet<String> {
    let files = runbook_files();
    assert!(
        files.len() >= 6,
        "expected at least six runbooks in runbooks/, found {}",
        files.len()
    );
    let mut used = BTreeSet::new();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let pairs = RunbookParser::parse(Rule::file, &text)
            .unwrap_or_else(|e| panic!("{} does not parse:\n{e}", path.display()));
        for pair in pairs.flatten() {
            let rule = format!("{:?}", pair.as_rule());
            if matches!(pair.as_rule(), Rule::scalar_type | Rule::http_method) {
                used.insert(format!("{rule}:{}", pair.as_str().to_ascii_lowercase()));
            }
            used.insert(rule);
        }
    }
    used
}

fn missing_report(what: &str, missing: &[String]) -> String {
    format!("{} {what}:\n  {}", missing.len(), missing.join("\n  "))
}

fn check_literal_rules(prefix: &str, kind: &str) {
    let spans = inline_code(DOCS);
    let used = rules_used_by_runbooks();
    let mut undocumented = Vec::new();
    let mut unused = Vec::new();
    for (rule, text) in literal_rules(prefix) {
        if !mentioned(&spans, &text) {
            undocumented.push(format!("`{text}` ({rule})"));
        }
        if !used.contains(&rule) {
            unused.push(format!("`{text}` ({rule})"));
        }
    }
    let mut problems = Vec::new();
    if !undocumented.is_empty() {
        problems.push(missing_report(
            &format!("{kind}s are not mentioned in backticks in {DOCS_PATH}"),
            &undocumented,
        ));
    }
    if !unused.is_empty() {
        problems.push(missing_report(
            &format!("{kind}s are not used by any runbook in runbooks/"),
            &unused,
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn every_keyword_is_documented_and_used_by_a_runbook() {
    check_literal_rules("kw_", "keyword");
}

#[test]
fn every_operator_is_documented_and_used_by_a_runbook() {
    check_literal_rules("op_", "operator");
}

/// Scalar input types and HTTP methods are words inside `scalar_type` and
/// `http_method` rules rather than `kw_` rules, but are part of the
/// language all the same.
#[test]
fn every_type_and_http_method_is_documented_and_used_by_a_runbook() {
    let spans = inline_code(DOCS);
    let used = rules_used_by_runbooks();
    let mut missing = Vec::new();
    let words = [
        (
            "scalar_type",
            &["string", "int", "float", "bool", "duration"][..],
        ),
        (
            "http_method",
            &["get", "head", "post", "put", "patch", "delete"][..],
        ),
    ];
    for (rule, list) in words {
        for word in list {
            if !mentioned(&spans, word) {
                missing.push(format!(
                    "`{word}` ({rule}) is not mentioned in backticks in {DOCS_PATH}"
                ));
            }
            if !used.contains(&format!("{rule}:{word}")) {
                missing.push(format!(
                    "`{word}` ({rule}) is not used by any runbook in runbooks/"
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

// ---- diagnostics ---------------------------------------------------------------

/// Every diagnostic code with the given prefix (`runbook::`, `drill::`),
/// from the one enum that defines them.
fn codes_with_prefix(prefix: &str) -> BTreeSet<String> {
    runbook::diagnostics::Code::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .filter(|c| c.starts_with(prefix))
        .collect()
}

#[test]
fn every_diagnostic_code_is_documented() {
    let codes = codes_with_prefix("runbook::");
    assert!(
        codes.len() > 30,
        "only {} runbook:: codes in diagnostics::Code",
        codes.len()
    );
    let spans = inline_code(DOCS);
    let missing: Vec<String> = codes
        .iter()
        .filter(|c| !spans.iter().any(|s| s == *c))
        .map(|c| format!("`{c}`"))
        .collect();
    assert!(
        missing.is_empty(),
        "{}",
        missing_report(
            &format!("diagnostic codes are not documented in {DOCS_PATH}"),
            &missing
        )
    );
}

#[test]
fn every_drill_code_is_documented() {
    let drills = std::fs::read_to_string(root().join("docs/drills.md")).expect("docs/drills.md");
    let spans = inline_code(&drills);
    let missing: Vec<String> = codes_with_prefix("drill::")
        .into_iter()
        .filter(|c| !spans.iter().any(|s| s == c))
        .map(|c| format!("`{c}`"))
        .collect();
    assert!(
        missing.is_empty(),
        "{}",
        missing_report("drill codes are not documented in docs/drills.md", &missing)
    );
}
