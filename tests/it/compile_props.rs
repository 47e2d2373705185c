//! Robustness of the parser and compiler: whatever the input, `check`
//! returns diagnostics (and renders them) instead of panicking or running
//! out of stack.
//!
//! Run with `cargo test --test it compile_props`; more cases with
//! `PROPTEST_CASES=5000 cargo test --release --test it compile_props`.
//! The cargo-fuzz target `fuzz/fuzz_targets/compile.rs` covers the same
//! ground with coverage guidance (see docs/architecture.md).

use proptest::prelude::*;
use runbook::compile;
use runbook::diagnostics::Report;
use runbook::plan::Graph;
use runbook::source::Source;
use std::path::Path;

use crate::generate;

/// Compiles raw bytes and exercises everything a caller does with the
/// result: both renderings, and, when it compiles, a JSON round trip of the
/// graph (the executor reads graphs back from disk on resume).
fn exercise(bytes: Vec<u8>) -> Report {
    let report = compile::check_bytes("prop.runbook", bytes);
    let _ = report.render(false);
    let _ = report.render(true);
    let _ = serde_json::to_string(&report.to_json()).expect("diagnostics serialize");
    if !report.has_errors() {
        let compiled = compile::compile(&report.source).expect("check and compile agree");
        let json = serde_json::to_string(&compiled.graph).expect("graph serializes");
        let back: Graph = serde_json::from_str(&json).expect("graph reads back");
        assert_eq!(back, compiled.graph, "graph JSON round trip");
    }
    report
}

/// Every runbook the repository holds: the examples, the warning and the
/// invalid cases. Mutations of real text reach deeper than random bytes.
fn corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["runbooks", "tests/invalid", "tests/warnings"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|x| x == "runbook") {
                if let Ok(b) = std::fs::read(&p) {
                    // The 10,000-parenthesis file adds nothing but time.
                    if b.len() < 8_000 {
                        out.push(b);
                    }
                }
            }
        }
    }
    out.push(generate::runbook(12).into_bytes());
    out
}

/// Words of the language and the punctuation between them.
const VOCABULARY: &[&str] = &[
    "runbook",
    "title",
    "owner",
    "tags",
    "lock",
    "input",
    "secret",
    "channel",
    "template",
    "check",
    "step",
    "parallel",
    "on",
    "failure",
    "success",
    "after",
    "rollback",
    "verify",
    "within",
    "every",
    "consecutive",
    "when",
    "retry",
    "backoff",
    "exponential",
    "timeout",
    "undo",
    "capture",
    "json",
    "text",
    "as",
    "on_error",
    "continue",
    "fail",
    "pass",
    "no_data",
    "for",
    "in",
    "max_failures",
    "run",
    "readonly",
    "irreversible",
    "http",
    "get",
    "head",
    "post",
    "put",
    "patch",
    "delete",
    "header",
    "body",
    "notify",
    "approve",
    "wait",
    "promql",
    "shell",
    "expect",
    "env",
    "file",
    "slack",
    "webhook",
    "console",
    "string",
    "int",
    "float",
    "bool",
    "duration",
    "list",
    "one_of",
    "and",
    "or",
    "not",
    "contains",
    "matches",
    "true",
    "false",
    "status",
    "elapsed",
    "value",
    "stdout",
    "exit",
    "run.id",
    "failure.reason",
    "service",
    "live",
    "live.revision",
    "regions",
    "x",
    "_",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "<",
    ">",
    "<=",
    ">=",
    "==",
    "!=",
    "=",
    ":",
    ",",
    ".",
    "#",
    "&&",
    "!",
    "\n",
    "\"",
    "\"\"\"",
    "\"https://a.example.com/{{x}}\"",
    "\"{{service}}\"",
    "\"{{#if x}}y{{/if}}\"",
    "\"{{#each regions}}{{this}}{{/each}}\"",
    "\"{{\"",
    "\"}}\"",
    "\"\\u{41}\"",
    "\"\\q\"",
    "\"{\\\"a\\\": {{x}}}\"",
    "\"^a(b\"",
    "0",
    "1",
    "3",
    "-1",
    "0.5",
    "30s",
    "5m",
    "800ms",
    "10x",
    "0s",
    "1h30m",
    "99999999999999999999",
    "99999999999999999999d",
    "é",
    "\t",
    "# comment\n",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(VOCABULARY),
            prop::sample::select(&[" ", "", "\n", "  "][..]),
        ),
        0..200,
    )
    .prop_map(|parts| {
        let mut s = String::new();
        for (w, sep) in parts {
            s.push_str(w);
            s.push_str(sep);
        }
        s
    })
}

/// A plausible runbook frame around a soup, so that the soup reaches the
/// step and condition rules rather than failing at the first token.
fn framed_soup() -> impl Strategy<Value = String> {
    (token_soup(), prop::sample::select(&["when ", "run ", "", "verify ", "expect "][..])).prop_map(
        |(soup, lead)| {
            format!(
                "runbook soup {{\n  input x: bool = true\n  input service: string = \"a\"\n  input regions: list<string> = [\"a\"]\n  step s {{\n    {lead}{soup}\n  }}\n}}\n"
            )
        },
    )
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Duplicate { at: usize, len: usize, to: usize },
    Swap { a: usize, b: usize, len: usize },
    Insert { at: usize, byte: u8 },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = 0usize..100_000;
    let len = 0usize..64;
    prop_oneof![
        (pos.clone(), len.clone()).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (pos.clone(), len.clone(), pos.clone()).prop_map(|(at, len, to)| Mutation::Duplicate {
            at,
            len,
            to
        }),
        (pos.clone(), pos.clone(), len).prop_map(|(a, b, len)| Mutation::Swap { a, b, len }),
        (pos.clone(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        pos.prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(text: &mut Vec<u8>, m: &Mutation) {
    let n = text.len();
    if n == 0 {
        if let Mutation::Insert { byte, .. } = m {
            text.push(*byte);
        }
        return;
    }
    let clamp = |x: usize| x % (n + 1);
    match *m {
        Mutation::Delete { at, len } => {
            let at = clamp(at);
            let end = (at + len).min(n);
            text.drain(at..end);
        }
        Mutation::Duplicate { at, len, to } => {
            let at = clamp(at);
            let end = (at + len).min(n);
            let piece: Vec<u8> = text[at..end].to_vec();
            let to = clamp(to);
            text.splice(to..to, piece);
        }
        Mutation::Swap { a, b, len } => {
            let (a, b) = (clamp(a).min(clamp(b)), clamp(a).max(clamp(b)));
            let len = len.min(b - a).min(n - b);
            for i in 0..len {
                text.swap(a + i, b + i);
            }
        }
        Mutation::Insert { at, byte } => text.insert(clamp(at), byte),
        Mutation::Truncate { at } => text.truncate(clamp(at)),
    }
}

/// 256 cases a property, or `PROPTEST_CASES` (an explicit `cases` in the
/// config would otherwise override the variable).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        exercise(bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,512}") {
        exercise(text.into_bytes());
    }

    #[test]
    fn token_soups_never_panic(soup in token_soup()) {
        exercise(soup.into_bytes());
    }

    #[test]
    fn framed_token_soups_never_panic(soup in framed_soup()) {
        exercise(soup.into_bytes());
    }

    #[test]
    fn mutated_runbooks_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let corpus = corpus();
        let mut text = pick.get(&corpus).clone();
        for m in &mutations {
            apply(&mut text, m);
        }
        exercise(text);
    }
}

fn codes(report: &Report) -> Vec<&'static str> {
    report.diags.iter().map(|d| d.code).collect()
}

#[test]
fn ten_thousand_nested_parentheses_are_too_deep() {
    let n = 10_000;
    let text = format!(
        "runbook deep {{\n  input x: int = 1\n  step s {{\n    when {}x > 0{}\n    run \"true\" readonly\n  }}\n}}\n",
        "(".repeat(n),
        ")".repeat(n)
    );
    let report = exercise(text.into_bytes());
    assert_eq!(codes(&report), vec!["runbook::too_deep"]);
    assert!(report.diags[0].message.contains("nested too deeply"));
}

#[test]
fn ten_megabytes_of_open_brackets_are_too_deep() {
    for open in ["(", "[", "{"] {
        let report = exercise(open.repeat(10 << 20).into_bytes());
        assert_eq!(codes(&report), vec!["runbook::too_deep"], "{open}");
    }
}

#[test]
fn long_operator_and_not_chains_are_too_deep_not_a_stack_overflow() {
    let chains = [
        format!("x{}", " and x".repeat(100_000)),
        format!("{}x", "not ".repeat(100_000)),
        format!("x{}", " == x".repeat(100_000)),
        format!("{}x{}", "not not (".repeat(40), ")".repeat(40)),
    ];
    for chain in chains {
        let text = format!(
            "runbook long {{\n  input x: bool = true\n  step s {{\n    when {chain}\n    run \"true\" readonly\n  }}\n}}\n"
        );
        let report = exercise(text.into_bytes());
        assert!(
            codes(&report).contains(&"runbook::too_deep"),
            "{:?}",
            codes(&report)
        );
    }
}

#[test]
fn deep_but_allowed_conditions_compile() {
    // 60 operators in a row is silly but legal, and must survive the trip
    // through JSON that the executor makes.
    let chain = format!("x{}", " and x".repeat(60));
    let text = format!(
        "runbook ok {{\n  input x: bool = true\n  step s {{\n    when {chain}\n    run \"true\" readonly\n  }}\n}}\n"
    );
    let report = exercise(text.into_bytes());
    assert!(!report.has_errors(), "{}", report.render(false));
}

#[test]
fn a_ten_megabyte_generated_runbook_compiles() {
    let text = generate::runbook_of_size(10 << 20);
    assert!(text.len() >= 10 << 20);
    let source = Source::new("big.runbook", text);
    match compile::compile(&source) {
        Ok(c) => assert!(c.graph.nodes.len() > 30_000),
        Err(report) => panic!("{}", report.render(false)),
    }
}

#[test]
fn ten_megabytes_of_garbage_is_an_error_not_a_hang() {
    let line = "step s { run \"x\" when ((a and b) or not c) } # \u{1F600}\n";
    let text = line.repeat((10 << 20) / line.len());
    let report = exercise(text.into_bytes());
    assert!(report.has_errors());
}

#[test]
fn invalid_utf8_points_at_the_first_bad_byte() {
    let mut bytes = b"runbook caf".to_vec();
    bytes.push(0xE9);
    bytes.extend_from_slice(b" {\n}\n");
    let report = exercise(bytes);
    assert_eq!(codes(&report), vec!["runbook::not_utf8"]);
    let json = report.to_json();
    assert_eq!((json[0].line, json[0].column), (1, 12));
}

#[test]
fn a_lone_continuation_byte_and_a_truncated_sequence_are_reported() {
    for bytes in [vec![0x80], vec![b'r', 0xE2, 0x82]] {
        let report = exercise(bytes);
        assert_eq!(codes(&report), vec!["runbook::not_utf8"]);
    }
}
