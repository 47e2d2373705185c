//! `Event::write_json` (the journal's and `--output json`'s writer) must
//! give exactly serde_json's bytes: the journal's hash chain covers them.

use proptest::prelude::*;
use runbook::adapters::Phase;
use runbook::events::{ActionStatus, Event, EventKind};
use runbook::plan::Effect;
use std::sync::Arc;
use std::time::Duration;

fn same_bytes(ev: &Event) {
    let expected = serde_json::to_vec(ev).expect("serde_json");
    let mut got = Vec::new();
    ev.write_json(&mut got).expect("write_json");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
}

fn event(node: Option<&str>, text: &str, kind: EventKind) -> Event {
    Event {
        seq: 12_345_678_901,
        ts: Arc::from("2026-11-22T22:12:53.810Z"),
        t_ms: u64::MAX,
        run_id: Arc::from(text),
        node: node.map(Arc::from),
        kind,
    }
}

/// Every hand-written kind, with each optional field absent and present.
fn kinds(text: &str) -> Vec<EventKind> {
    let s = || text.to_string();
    let mut out = vec![
        EventKind::NodeReady { deps: vec![] },
        EventKind::NodeReady {
            deps: vec![s(), "b".into(), s()],
        },
        EventKind::NodeSucceeded {
            attempts: 0,
            elapsed_ms: 0,
            failed_items: vec![],
        },
        EventKind::NodeSucceeded {
            attempts: u32::MAX,
            elapsed_ms: 17,
            failed_items: vec![s(), s()],
        },
    ];
    let phases = [Phase::Action, Phase::Undo, Phase::Check, Phase::Handler];
    let effects = [
        Effect::None,
        Effect::Read,
        Effect::Notify,
        Effect::Write,
        Effect::Irreversible,
    ];
    let statuses = [
        ActionStatus::Ok,
        ActionStatus::Failed,
        ActionStatus::Timeout,
        ActionStatus::Cancelled,
        ActionStatus::Error,
    ];
    for (i, phase) in phases.into_iter().enumerate() {
        for (j, effect) in effects.into_iter().enumerate() {
            let some = (i + j) % 2 == 0;
            out.push(EventKind::ActionStarted {
                adapter: if some { "shell".into() } else { s().into() },
                phase,
                attempt: u32::try_from(i * 7 + j).unwrap_or(0),
                item: some.then(s),
                effect,
                request: s(),
                timeout: [
                    None,
                    Some(Duration::from_secs(300)),
                    Some(Duration::from_millis(330_250)),
                ][(i + j) % 3],
                simulated: some,
            });
        }
        for (j, status) in statuses.into_iter().enumerate() {
            let some = (i + j) % 2 == 1;
            out.push(EventKind::ActionFinished {
                adapter: "http".into(),
                phase,
                attempt: 1,
                item: some.then(s),
                status,
                exit: [None, Some(0), Some(-1), Some(i32::MIN)][(i + j) % 4],
                http_status: some.then_some(503),
                elapsed_ms: u64::try_from(j * 1000).unwrap_or(0),
                output: some.then(s),
                error: (!some).then(s),
            });
        }
    }
    out
}

#[test]
fn hand_written_kinds_match_serde_json() {
    for text in [
        "",
        "true",
        "s0",
        "quote \" backslash \\ slash / done",
        "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f} \u{7f}",
        "héllo wörld ✓ 🚀",
    ] {
        for node in [None, Some(text), Some("step")] {
            for kind in kinds(text) {
                same_bytes(&event(node, text, kind));
            }
        }
    }
}

/// The fast check for "nothing to escape" looks at eight bytes at a time:
/// each special byte at each position of a word and of the tail.
#[test]
fn one_special_byte_anywhere() {
    for len in [1usize, 7, 8, 9, 16, 21] {
        for pos in 0..len {
            for c in [
                '\u{0}', '\u{1f}', '"', '\\', '\u{7f}', ' ', '!', 'é', '\u{80}',
            ] {
                let mut text: String = "a".repeat(len);
                text.replace_range(pos..pos + 1, &c.to_string());
                for kind in kinds(&text).into_iter().take(6) {
                    same_bytes(&event(Some(&text), &text, kind));
                }
            }
        }
    }
}

#[test]
fn other_kinds_go_through_serde() {
    same_bytes(&event(
        Some("n"),
        "x",
        EventKind::Warning {
            message: "a \"warning\"\n".into(),
        },
    ));
    same_bytes(&event(
        None,
        "x",
        EventKind::NodeFailed {
            reason: "exit 1".into(),
            attempts: 3,
            continued: false,
        },
    ));
}

proptest! {
    #[test]
    fn any_text_matches_serde_json(text in any::<String>()) {
        for kind in kinds(&text).into_iter().step_by(3) {
            let ev = event(Some(&text), &text, kind);
            let expected = serde_json::to_vec(&ev).expect("serde_json");
            let mut got = Vec::new();
            ev.write_json(&mut got).expect("write_json");
            prop_assert_eq!(got, expected);
        }
    }
}
