//! The hand-written parser (tried first) against the pest grammar (the
//! reference): on every text, the same tree and the same conversion errors
//! where both accept, and never a file accepted by one alone. See
//! `src/syntax/descent.rs` and docs/architecture.md.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fast = runbook::syntax::parse_fast(text);
    let reference = runbook::syntax::parse_with_pest(text);
    match (fast, reference) {
        (Some(fast), Ok(reference)) => {
            assert_eq!(fast.0, reference.0, "trees differ");
            assert_eq!(format!("{:?}", fast.1), format!("{:?}", reference.1));
        }
        (None, Err(_)) => {}
        (Some(_), Err(_)) => panic!("hand-written parser accepts what pest rejects"),
        (None, Ok(_)) => panic!("hand-written parser gave a valid file to pest"),
    }
});
