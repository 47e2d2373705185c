//! The journal reader and the chain verifier over arbitrary bytes: never a
//! panic, and the reader's answers hang together.
//!
//!     cargo fuzz run --sanitizer none journal_read -- -max_total_time=150

#![no_main]

use libfuzzer_sys::fuzz_target;
use runbook::durable::journal::{parse_journal, verify_bytes, JournalError};

fuzz_target!(|data: &[u8]| {
    let verified = verify_bytes(data);
    match parse_journal(data) {
        Ok(read) => {
            // Cutting the torn tail off leaves a journal that reads back the
            // same events and has nothing torn.
            if let Some(torn) = &read.torn_tail {
                let cut = usize::try_from(torn.offset).expect("offset fits");
                assert!(cut <= data.len());
                assert_eq!(cut as u64 + torn.bytes, data.len() as u64);
                let again = parse_journal(&data[..cut]).expect("the prefix reads");
                assert_eq!(again.events, read.events);
                assert!(again.torn_tail.is_none());
                assert_eq!(read.warnings.len(), 1);
            } else {
                assert!(read.warnings.is_empty());
            }
            // Every event read serializes, and reads back the same.
            for ev in &read.events {
                let json = serde_json::to_vec(ev).expect("serializes");
                let back: runbook::events::Event =
                    serde_json::from_slice(&json).expect("reads back");
                assert_eq!(back.seq, ev.seq);
            }
        }
        Err(JournalError::Corrupt { line, offset, .. }) => {
            assert!(line >= 1);
            assert!(offset < data.len() as u64);
        }
        Err(other) => panic!("parse_journal on bytes gave {other}"),
    }
    if let Ok(v) = &verified {
        if let Some(t) = &v.torn_tail {
            assert_eq!(t.offset + t.bytes, data.len() as u64);
        }
        // Every complete line is chained and a JSON object: the reader
        // reads them all, but maybe the last (not an event: torn).
        if let Ok(read) = parse_journal(data) {
            assert!(read.events.len() <= v.events && v.events <= read.events.len() + 1);
        }
    }
});
