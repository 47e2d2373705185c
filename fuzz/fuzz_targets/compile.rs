//! Arbitrary bytes -> `compile::check_bytes` -> both renderings. Any panic,
//! stack overflow or hang is a bug: the compiler must answer every input
//! with diagnostics. See docs/architecture.md for how to run it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runbook::plan::Graph;

fuzz_target!(|data: &[u8]| {
    let report = runbook::compile::check_bytes("fuzz.runbook", data.to_vec());
    let _ = report.render(false);
    let _ = report.to_json();
    if report.has_errors() {
        return;
    }
    // What compiles must survive the JSON round trip the executor makes.
    let compiled = runbook::compile::compile(&report.source).expect("check and compile agree");
    let json = serde_json::to_string(&compiled.graph).expect("graph serializes");
    let back: Graph = serde_json::from_str(&json).expect("graph reads back");
    assert_eq!(back, compiled.graph);
});
