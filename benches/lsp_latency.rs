//! Latency of `runbook lsp` from a `didChange` to the diagnostics it
//! publishes, on a 300-line runbook (`generate::runbook_of_lines(300)`),
//! measured from the client side of the real binary's stdio: what an editor
//! waits for after a keystroke. Each change alternates between the valid
//! runbook and one with a misspelt name (one error with a did-you-mean), so
//! both paths are timed.
//!
//! `cargo bench --bench lsp_latency` (release profile; results in
//! docs/performance.md).

// A benchmark may unwrap: a panic is its failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use serde_json::json;
use std::time::{Duration, Instant};

#[path = "support/generate.rs"]
mod generate;
#[path = "../tests/it/support/lsp_client.rs"]
mod lsp_client;

use lsp_client::{Client, URI};

const ROUNDS: usize = 500;

fn main() {
    let valid = generate::runbook_of_lines(300);
    let broken = valid.replacen("when state_0.revision", "when stat_0.revision", 1);
    assert_ne!(valid, broken, "the misspelling applies");
    let lines = valid.lines().count();

    let mut client = Client::start(env!("CARGO_BIN_EXE_runbook"));
    client.request("initialize", json!({"processId": null, "capabilities": {}}));
    client.notify("initialized", json!({}));
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "runbook", "version": 1, "text": valid}}),
    );
    assert!(
        client.diagnostics().is_empty(),
        "the generated runbook is valid"
    );

    let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (text, errors) = if round % 2 == 0 {
            (&broken, 1)
        } else {
            (&valid, 0)
        };
        let start = Instant::now();
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": URI, "version": round + 2}, "contentChanges": [{"text": text}]}),
        );
        let diagnostics = client.diagnostics();
        times.push(start.elapsed());
        assert_eq!(diagnostics.len(), errors, "{diagnostics:?}");
    }
    client.request("shutdown", serde_json::Value::Null);
    client.notify("exit", serde_json::Value::Null);
    let _ = client.child.wait();

    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "lsp didChange -> publishDiagnostics, {lines}-line runbook ({} bytes), {ROUNDS} changes: \
         median {:.3} ms, p95 {:.3} ms, max {:.3} ms",
        valid.len(),
        ms(at(0.5)),
        ms(at(0.95)),
        ms(at(1.0)),
    );
}
