//! The durable journal: hash chain, write-ahead fsyncs, torn tails,
//! corruption, resume-append, and property tests over the reader and the
//! verifier.

use proptest::prelude::*;
use runbook::digest::sha256_hex;
use runbook::durable::journal::{
    chain_line, event_hash, journal_in_use, parse_journal, read_journal, verify_bytes,
    verify_chain, Durability, JournalError, JournalWriter, GENESIS, JOURNAL_FILE, PREFIX_LEN,
};
use runbook::events::Phase;
use runbook::events::{
    ActionStatus, Counts, Event, EventKind, Mode, Outcome, Sink, JOURNAL_FORMAT,
};
use runbook::plan::{CaptureFormat, Effect};

fn ev(seq: u64, node: Option<&str>, kind: EventKind) -> Event {
    Event {
        seq,
        ts: format!("2024-05-01T10:00:{:02}.000Z", seq % 60).into(),
        t_ms: seq * 10,
        run_id: "r-1".into(),
        node: node.map(Into::into),
        kind,
    }
}

fn started(adapter: &'static str, effect: Effect) -> EventKind {
    EventKind::ActionStarted {
        adapter: adapter.into(),
        phase: Phase::Action,
        attempt: 1,
        item: None,
        effect,
        request: "kubectl rollout undo deploy/web --token ***".into(),
        timeout: Some(std::time::Duration::from_secs(30)),
        simulated: false,
    }
}

fn finished() -> EventKind {
    EventKind::ActionFinished {
        adapter: "shell".into(),
        phase: Phase::Action,
        attempt: 1,
        item: None,
        status: ActionStatus::Ok,
        exit: Some(0),
        http_status: None,
        elapsed_ms: 12,
        output: Some("deployment.apps/web rolled back\n\"quoted\" é ✓".into()),
        error: None,
    }
}

/// A realistic little run: every kind of line the reader meets.
fn sample() -> Vec<Event> {
    let kinds: Vec<(Option<&str>, EventKind)> = vec![
        (
            None,
            EventKind::RunStarted {
                format: JOURNAL_FORMAT,
                runbook: "rollback-web".into(),
                title: Some("Roll back web".into()),
                mode: Mode::Live,
                inputs: [("service".to_owned(), serde_json::json!("web"))]
                    .into_iter()
                    .collect(),
                secrets: vec!["token".into()],
                source_sha256: "ab".repeat(32),
                parallel: 4,
                notes: vec![],
            },
        ),
        (Some("check"), EventKind::NodeReady { deps: vec![] }),
        (Some("check"), started("http", Effect::Read)),
        (Some("check"), finished()),
        (
            Some("check"),
            EventKind::CaptureStored {
                name: "live".into(),
                format: CaptureFormat::Json,
                value: serde_json::json!({"revision": 41, "ok": true, "x": [1.5, null]}),
            },
        ),
        (
            Some("check"),
            EventKind::NodeSucceeded {
                attempts: 1,
                elapsed_ms: 12,
                failed_items: vec![],
            },
        ),
        (
            Some("undo"),
            EventKind::NodeReady {
                deps: vec!["check".into()],
            },
        ),
        (Some("undo"), started("shell", Effect::Write)),
        (Some("undo"), finished()),
        (
            Some("undo"),
            EventKind::NodeSucceeded {
                attempts: 1,
                elapsed_ms: 40,
                failed_items: vec![],
            },
        ),
        (
            None,
            EventKind::Warning {
                message: "line\nbreak and \u{0} nul".into(),
            },
        ),
        (
            None,
            EventKind::RunFinished {
                outcome: Outcome::Succeeded,
                exit_code: 0,
                elapsed_ms: 60,
                failed_step: None,
                failure_reason: None,
                counts: Counts::default(),
            },
        ),
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, (n, k))| ev(i as u64 + 1, n, k))
        .collect()
}

/// The bytes the writer produces for `events` (through the real writer).
fn journal_bytes(events: &[Event]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = JournalWriter::create(dir.path(), Durability::Buffered).expect("create");
    for e in events {
        w.append(e).expect("append");
    }
    w.finish().expect("finish");
    std::fs::read(dir.path().join(JOURNAL_FILE)).expect("read")
}

fn line_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' && i + 1 < bytes.len() {
            starts.push(i + 1);
        }
    }
    starts
}

#[test]
fn writes_a_chain_that_reads_back_and_verifies() {
    let events = sample();
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("runs").join("r-1");
    let mut w = JournalWriter::create(&run_dir, Durability::WriteAhead).expect("create");
    for e in &events {
        w.event(e).expect("event");
    }
    w.finish().expect("finish");
    assert_eq!(w.last_seq(), events.len() as u64);
    let path = run_dir.join(JOURNAL_FILE);

    let read = read_journal(&path).expect("read");
    assert_eq!(read.events, events);
    assert!(read.torn_tail.is_none());
    assert!(read.warnings.is_empty());

    let v = verify_chain(&path).expect("verified");
    assert_eq!(v.events, events.len());
    assert_eq!(v.last_seq, events.len() as u64);
    assert_eq!(v.last_hash, w.last_hash());
    assert!(v.torn_tail.is_none());
    assert!(v.to_string().contains("intact"), "{v}");

    // The format, checked the way an auditor would, by hand.
    let text = std::fs::read_to_string(&path).expect("text");
    let mut prev = GENESIS.to_owned();
    for line in text.lines() {
        assert!(line.starts_with(&format!("{{\"prev\":\"{prev}\",\"hash\":\"")));
        let hash = &line[9 + 64 + 10..9 + 64 + 10 + 64];
        let event_json = format!("{{{}", &line[PREFIX_LEN..]);
        assert_eq!(sha256_hex(format!("{prev}{event_json}").as_bytes()), hash);
        assert_eq!(event_hash(&prev, event_json.as_bytes()), hash);
        // The event JSON is exactly the event's serialization.
        let parsed: Event = serde_json::from_str(&event_json).expect("event json");
        assert_eq!(serde_json::to_string(&parsed).expect("json"), event_json);
        // The next line's prev is this line's hash.
        prev = hash.to_owned();
    }
}

#[test]
fn fsyncs_before_changes_and_after_their_outcomes_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = JournalWriter::create(dir.path(), Durability::WriteAhead).expect("create");
    // After each event of the sample, how many fsyncs there have been.
    let mut synced_after = Vec::new();
    for e in sample() {
        w.append(&e).expect("append");
        let node = e.node.as_deref().unwrap_or("").to_owned();
        synced_after.push((node, e.kind.name(), w.syncs()));
    }
    let syncs_at = |node: &str, kind: &str| {
        synced_after
            .iter()
            .find(|(n, k, _)| n == node && *k == kind)
            .map(|(_, _, s)| *s)
            .expect("event in the sample")
    };
    // The read step: nothing is synced for it, not even its outcome (a power
    // cut may lose it; resume then runs the read again).
    assert_eq!(syncs_at("check", "action_started"), 0);
    assert_eq!(syncs_at("check", "node_succeeded"), 0);
    // The write step: on disk before it starts (the read step's outcome with
    // it), and its outcome on disk before anything else happens. Its
    // action's end needs no fsync of its own: the outcome follows.
    assert_eq!(syncs_at("undo", "action_started"), 1);
    assert_eq!(syncs_at("undo", "action_finished"), 1);
    assert_eq!(syncs_at("undo", "node_succeeded"), 2);
    assert_eq!(syncs_at("", "run_finished"), 3);
    assert!(!started("http", Effect::Read).is_write_ahead());
    assert!(started("shell", Effect::Write).is_write_ahead());
    assert!(!finished().is_write_ahead());
    w.finish().expect("finish");
    // Nothing written since the last (run_finished) fsync.
    assert_eq!(w.syncs(), 3);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = JournalWriter::create(dir.path(), Durability::Buffered).expect("create");
    for e in sample() {
        w.append(&e).expect("append");
    }
    w.finish().expect("finish");
    assert_eq!(w.syncs(), 0);
    assert_eq!(Durability::for_mode(Mode::Live), Durability::WriteAhead);
    assert_eq!(Durability::for_mode(Mode::DryRun), Durability::Buffered);
    assert_eq!(Durability::for_mode(Mode::Drill), Durability::Buffered);
}

#[test]
fn the_writer_refuses_a_gap_and_an_existing_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = JournalWriter::create(dir.path(), Durability::Buffered).expect("create");
    let events = sample();
    w.append(&events[0]).expect("first");
    let e = w.append(&events[2]).expect_err("gap");
    assert!(e.to_string().contains("does not follow"), "{e}");
    drop(w);
    let e = JournalWriter::create(dir.path(), Durability::Buffered).expect_err("exists");
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
}

#[test]
fn torn_last_line_is_ignored_with_a_warning() {
    let events = sample();
    let bytes = journal_bytes(&events);
    let starts = line_starts(&bytes);
    let last = *starts.last().expect("lines");
    // Cut in the middle of the last line.
    let cut = &bytes[..last + 30];
    let read = parse_journal(cut).expect("read");
    assert_eq!(read.events, events[..events.len() - 1]);
    let torn = read.torn_tail.expect("torn");
    assert_eq!(torn.offset, last as u64);
    assert_eq!(torn.bytes, 30);
    assert_eq!(torn.line, events.len());
    assert_eq!(read.warnings.len(), 1);
    assert!(
        read.warnings[0].contains("incomplete"),
        "{:?}",
        read.warnings
    );

    // A whole last line but without its newline is torn too.
    let read = parse_journal(&bytes[..bytes.len() - 1]).expect("read");
    assert_eq!(read.events.len(), events.len() - 1);
    assert!(read.torn_tail.is_some());

    // A last line of garbage WITH its newline is not a torn write (the
    // writer writes a line and its newline at once): corrupt, at its line.
    let mut zeros = bytes.clone();
    zeros.extend_from_slice(&[0u8; 40]);
    zeros.push(b'\n');
    match parse_journal(&zeros) {
        Err(e @ JournalError::Corrupt { line, offset, .. }) => {
            assert_eq!(line, events.len() + 1);
            assert_eq!(offset, bytes.len() as u64);
            assert!(
                e.to_string().contains("not a write cut off by a crash"),
                "{e}"
            );
        }
        other => panic!("a complete bad last line must be refused: {other:?}"),
    }

    // The verifier reports the torn tail but no break.
    let v = verify_bytes(&bytes[..last + 30]).expect("verified");
    assert_eq!(v.events, events.len() - 1);
    assert_eq!(v.torn_tail.expect("torn").offset, last as u64);
    assert!(v_string(&bytes[..last + 30]).contains("incomplete"));
}

fn v_string(bytes: &[u8]) -> String {
    verify_bytes(bytes)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

#[test]
fn a_bad_line_in_the_middle_is_an_error_with_its_line_number() {
    let events = sample();
    let bytes = journal_bytes(&events);
    let starts = line_starts(&bytes);
    for (garbage, what) in [
        (&b"{not json}"[..], "garbage"),
        (&b""[..], "empty line"),
        (&b"{\"seq\":1}"[..], "not an event"),
    ] {
        let mut b = bytes[..starts[3]].to_vec();
        b.extend_from_slice(garbage);
        b.push(b'\n');
        b.extend_from_slice(&bytes[starts[3]..]);
        match parse_journal(&b) {
            Err(JournalError::Corrupt { line, offset, .. }) => {
                assert_eq!(line, 4, "{what}");
                assert_eq!(offset, starts[3] as u64, "{what}");
            }
            other => panic!("{what}: {other:?}"),
        }
        let msg = parse_journal(&b).expect_err("corrupt").to_string();
        assert!(msg.contains("line 4"), "{msg}");
    }
}

#[test]
fn reads_a_journal_without_the_chain() {
    let events = sample();
    let mut plain = Vec::new();
    for e in &events {
        plain.extend_from_slice(&serde_json::to_vec(e).expect("json"));
        plain.push(b'\n');
    }
    let read = parse_journal(&plain).expect("read");
    assert_eq!(read.events, events);
    let brk = verify_bytes(&plain).expect_err("no chain");
    assert_eq!(brk.line, 1);
    assert_eq!(brk.seq, Some(1));
    assert!(brk.reason.contains("without the hash chain"), "{brk}");
}

fn lines_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn join(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

#[test]
fn verify_reports_the_first_broken_link() {
    let events = sample();
    let bytes = journal_bytes(&events);
    let lines = lines_of(&bytes);

    // An edited value: that line's hash no longer matches.
    let mut edited = lines.clone();
    let s = String::from_utf8(edited[7].clone()).expect("utf8");
    edited[7] = s.replace("rollout undo", "rollout redo").into_bytes();
    assert_ne!(edited[7], lines[7]);
    let brk = verify_bytes(&join(&edited)).expect_err("edited");
    assert_eq!((brk.line, brk.seq), (8, Some(8)));
    assert!(brk.reason.contains("edited"), "{brk}");
    assert!(brk.to_string().contains("line 8 (seq 8)"), "{brk}");

    // Edited, and its own hash recomputed: the next line's prev breaks.
    let mut forged = lines.clone();
    let prev = String::from_utf8(forged[7][9..73].to_vec()).expect("prev");
    let json = {
        let mut j = b"{".to_vec();
        j.extend_from_slice(&edited[7][PREFIX_LEN..]);
        j
    };
    forged[7] = chain_line(&prev, &json);
    let brk = verify_bytes(&join(&forged)).expect_err("forged");
    assert_eq!((brk.line, brk.seq), (9, Some(9)));
    assert!(brk.reason.contains("line 8"), "{brk}");

    // A deleted line in the middle.
    let mut deleted = lines.clone();
    deleted.remove(4);
    let brk = verify_bytes(&join(&deleted)).expect_err("deleted");
    assert_eq!((brk.line, brk.seq), (5, Some(6)));

    // The first line deleted.
    let brk = verify_bytes(&join(&lines[1..])).expect_err("first deleted");
    assert_eq!(brk.line, 1);
    assert!(brk.reason.contains("all zeros"), "{brk}");

    // Two lines swapped.
    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    let brk = verify_bytes(&join(&swapped)).expect_err("swapped");
    assert_eq!((brk.line, brk.seq), (3, Some(4)));

    // A line duplicated.
    let mut dup = lines.clone();
    dup.insert(5, lines[4].clone());
    let brk = verify_bytes(&join(&dup)).expect_err("duplicated");
    assert_eq!(brk.line, 6);

    // A bad hash (valid hex, wrong value).
    let mut bad = lines.clone();
    bad[0][9 + 64 + 10] = if bad[0][9 + 64 + 10] == b'a' {
        b'b'
    } else {
        b'a'
    };
    let brk = verify_bytes(&join(&bad)).expect_err("bad hash");
    assert_eq!(brk.line, 1);

    // Via the file, as `runbook verify-journal` does.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(JOURNAL_FILE);
    std::fs::write(&path, join(&swapped)).expect("write");
    match verify_chain(&path) {
        Err(JournalError::Chain(brk)) => assert_eq!(brk.line, 3),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        verify_chain(&dir.path().join("missing")),
        Err(JournalError::Io { .. })
    ));
}

#[test]
fn resume_appends_after_cutting_a_torn_tail() {
    let events = sample();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = JournalWriter::create(dir.path(), Durability::WriteAhead).expect("create");
    for e in &events[..8] {
        w.append(e).expect("append");
    }
    assert!(journal_in_use(dir.path()));
    // Two processes never append to one journal.
    match JournalWriter::open_append(dir.path(), Durability::WriteAhead) {
        Err(JournalError::Io { source, .. }) => {
            assert!(source.to_string().contains("in use"), "{source}")
        }
        other => panic!("{other:?}"),
    }
    drop(w); // the process dies
    assert!(!journal_in_use(dir.path()));
    // ... in the middle of writing line 9.
    let path = dir.path().join(JOURNAL_FILE);
    let whole = std::fs::read(&path).expect("read");
    let mut torn = whole.clone();
    torn.extend_from_slice(b"{\"prev\":\"0123");
    std::fs::write(&path, &torn).expect("tear");

    let (mut w, read) =
        JournalWriter::open_append(dir.path(), Durability::WriteAhead).expect("reopen");
    assert_eq!(read.events, events[..8]);
    assert_eq!(
        read.torn_tail.as_ref().map(|t| t.offset),
        Some(whole.len() as u64)
    );
    assert_eq!(w.last_seq(), 8);
    assert_eq!(
        std::fs::read(&path).expect("read"),
        whole,
        "torn tail cut off"
    );
    for e in &events[8..] {
        w.append(e).expect("append");
    }
    w.finish().expect("finish");
    drop(w);
    let v = verify_chain(&path).expect("chain continues across the resume");
    assert_eq!(v.events, events.len());
    assert_eq!(read_journal(&path).expect("read").events, events);

    // A terminated line of garbage at the end is not a torn write: it is
    // refused, and nothing is cut.
    let good = std::fs::read(&path).expect("read");
    let mut zeros = good.clone();
    zeros.extend_from_slice(&[0u8; 16]);
    zeros.push(b'\n');
    std::fs::write(&path, &zeros).expect("write");
    assert!(matches!(
        JournalWriter::open_append(dir.path(), Durability::WriteAhead),
        Err(JournalError::Corrupt { .. })
    ));
    assert_eq!(
        std::fs::read(&path).expect("read"),
        zeros,
        "nothing was cut"
    );
    std::fs::write(&path, &good).expect("write");

    // A journal with a broken chain is not resumed from.
    let lines = lines_of(&std::fs::read(&path).expect("read"));
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    std::fs::write(&path, join(&swapped)).expect("write");
    assert!(matches!(
        JournalWriter::open_append(dir.path(), Durability::WriteAhead),
        Err(JournalError::Chain(_))
    ));
}

#[test]
fn every_truncation_of_a_valid_journal_recovers_the_complete_lines() {
    let events = sample();
    let bytes = journal_bytes(&events);
    let ends: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    for cut in 0..=bytes.len() {
        let complete = ends.iter().filter(|e| **e <= cut).count();
        let read = parse_journal(&bytes[..cut]).expect("a prefix always reads");
        assert_eq!(read.events, events[..complete], "cut at {cut}");
        assert_eq!(
            read.torn_tail.is_some(),
            !ends.contains(&cut) && cut > 0,
            "cut at {cut}"
        );
        let v = verify_bytes(&bytes[..cut]).expect("a prefix always verifies");
        assert_eq!(v.events, complete, "cut at {cut}");
    }
}

// ------------------------------------------------------------ properties --

fn arb_kind() -> impl Strategy<Value = (Option<String>, EventKind)> {
    // Any characters, control characters and newlines included.
    let text = "(?s).{0,40}";
    prop_oneof![
        text.prop_map(|message| (None, EventKind::Warning { message })),
        (text, prop::collection::vec("[a-z_]{1,8}", 0..3))
            .prop_map(|(n, deps)| (Some(n), EventKind::NodeReady { deps })),
        (text, text, any::<bool>()).prop_map(|(n, request, write)| (
            Some(n),
            EventKind::ActionStarted {
                adapter: "shell".into(),
                phase: Phase::Action,
                attempt: 1,
                item: None,
                effect: if write { Effect::Write } else { Effect::Read },
                request,
                timeout: None,
                simulated: false,
            }
        )),
        (text, any::<i64>(), -1000i32..1000).prop_map(|(n, i, f)| (
            Some(n.clone()),
            EventKind::CaptureStored {
                name: n,
                format: CaptureFormat::Json,
                value: serde_json::json!({ "i": i, "f": f64::from(f) / 4.0 }),
            }
        )),
        (text, any::<u32>()).prop_map(|(n, attempts)| (
            Some(n),
            EventKind::NodeSucceeded {
                attempts,
                elapsed_ms: 1,
                failed_items: vec![],
            }
        )),
    ]
}

fn arb_events() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(arb_kind(), 1..10).prop_map(|kinds| {
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, (node, kind))| Event {
                seq: i as u64 + 1,
                ts: "2024-05-01T10:00:00.000Z".into(),
                t_ms: i as u64,
                run_id: "r".into(),
                node: node.map(Into::into),
                kind,
            })
            .collect()
    })
}

/// Journal bytes built in memory exactly as the writer does (checked
/// against the writer in `in_memory_encoding_matches_the_writer`).
fn encode(events: &[Event]) -> Vec<u8> {
    let mut prev = GENESIS.to_owned();
    let mut out = Vec::new();
    for e in events {
        let line = chain_line(&prev, &serde_json::to_vec(e).expect("json"));
        prev = String::from_utf8(line[PREFIX_LEN - 66..PREFIX_LEN - 2].to_vec()).expect("hash");
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    out
}

#[test]
fn a_forged_line_is_caught_even_when_the_next_prev_is_patched() {
    // Each `hash` covers its `prev`, which is the previous `hash`: forging
    // line 8 means recomputing its hash, then line 9's prev, then line 9's
    // hash, and so on to the end. Stopping anywhere is detected there.
    let events = sample();
    let lines = lines_of(&journal_bytes(&events));
    let hash_of =
        |l: &[u8]| String::from_utf8(l[PREFIX_LEN - 66..PREFIX_LEN - 2].to_vec()).expect("hash");
    let mut forged = lines.clone();
    let edited = String::from_utf8(lines[7].clone())
        .expect("utf8")
        .replace("rollout undo", "rollout redo");
    let json = format!("{{{}", &edited[PREFIX_LEN..]);
    forged[7] = chain_line(
        std::str::from_utf8(&lines[7][9..73]).expect("prev"),
        json.as_bytes(),
    );
    // Line 9's prev patched to the forged hash, its own hash left.
    let new_hash = hash_of(&forged[7]);
    let mut l9 = forged[8].clone();
    l9[9..73].copy_from_slice(new_hash.as_bytes());
    forged[8] = l9;
    let brk = verify_bytes(&join(&forged)).expect_err("forged");
    assert_eq!((brk.line, brk.seq), (9, Some(9)));
    assert!(brk.reason.contains("does not match its content"), "{brk}");
    // The prev field alone edited: that line's hash covers it.
    let mut prev_only = lines.clone();
    prev_only[3][9..73].copy_from_slice(hash_of(&lines[1]).as_bytes());
    let brk = verify_bytes(&join(&prev_only)).expect_err("prev edited");
    assert_eq!(brk.line, 4);
    // A line whose prev and hash are both recomputed over another prev.
    let mut relinked = lines.clone();
    let json = format!(
        "{{{}",
        String::from_utf8(lines[3][PREFIX_LEN..].to_vec()).expect("utf8")
    );
    relinked[3] = chain_line(&hash_of(&lines[1]), json.as_bytes());
    let brk = verify_bytes(&join(&relinked)).expect_err("relinked");
    assert_eq!(brk.line, 4);
    assert!(brk.reason.contains("line 3"), "{brk}");
}

#[test]
fn in_memory_encoding_matches_the_writer() {
    assert_eq!(encode(&sample()), journal_bytes(&sample()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_journal(&bytes);
        let _ = verify_bytes(&bytes);
    }

    #[test]
    fn valid_lines_mixed_with_garbage_never_panic(
        events in arb_events(),
        garbage in prop::collection::vec(any::<u8>(), 0..64),
        at in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&events);
        let i = at.index(bytes.len() + 1);
        bytes.splice(i..i, garbage);
        let _ = parse_journal(&bytes);
        let _ = verify_bytes(&bytes);
    }

    #[test]
    fn a_truncated_journal_reads_back_its_complete_lines(
        events in arb_events(),
        at in any::<prop::sample::Index>(),
    ) {
        let bytes = encode(&events);
        let cut = at.index(bytes.len() + 1);
        let complete = bytes[..cut].iter().filter(|b| **b == b'\n').count();
        let read = parse_journal(&bytes[..cut]).expect("a prefix always reads");
        prop_assert_eq!(&read.events[..], &events[..complete]);
        prop_assert_eq!(read.torn_tail.is_some(), cut > 0 && bytes[cut - 1] != b'\n');
        let v = verify_bytes(&bytes[..cut]).expect("a prefix always verifies");
        prop_assert_eq!(v.events, complete);
    }

    #[test]
    fn a_flipped_byte_breaks_the_chain_at_its_line_or_the_next(
        events in arb_events(),
        line_at in any::<prop::sample::Index>(),
        byte_at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let bytes = encode(&events);
        let starts = line_starts(&bytes);
        let k = line_at.index(starts.len());
        let start = starts[k];
        let end = starts.get(k + 1).copied().unwrap_or(bytes.len()); // after its '\n'
        // Any byte of the line, its newline included, except the newline of
        // the last line (which makes it a torn tail: see below).
        let len = if k + 1 == starts.len() { end - start - 1 } else { end - start };
        let pos = start + byte_at.index(len);
        let mut flipped = bytes.clone();
        flipped[pos] ^= mask;
        let brk = verify_bytes(&flipped).expect_err("a flipped byte is detected");
        prop_assert!(
            brk.line == k + 1 || brk.line == k + 2,
            "flip at line {} detected at line {}: {}", k + 1, brk.line, brk
        );
    }

    #[test]
    fn a_flipped_final_newline_is_a_torn_tail(events in arb_events(), mask in 1u8..=255) {
        let mut bytes = encode(&events);
        let last = bytes.len() - 1;
        bytes[last] ^= mask;
        let v = verify_bytes(&bytes);
        match v {
            Ok(v) => {
                prop_assert_eq!(v.events, events.len() - 1);
                prop_assert!(v.torn_tail.is_some());
            }
            // The flip made another newline... impossible: '\n' ^ mask != '\n'.
            Err(brk) => prop_assert!(false, "{}", brk),
        }
    }
}

#[test]
fn a_buffered_writer_writes_whole_lines_and_everything_on_drop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(JOURNAL_FILE);
    let mut w = JournalWriter::create(dir.path(), Durability::Buffered).expect("create");
    let mut events = Vec::new();
    for seq in 1..=2000u64 {
        let e = ev(
            seq,
            Some("step"),
            EventKind::Warning {
                message: "x".repeat(100),
            },
        );
        w.append(&e).expect("append");
        events.push(e);
        if seq == 1 {
            assert_eq!(std::fs::metadata(&path).expect("meta").len(), 0, "buffered");
        }
        if seq % 97 == 0 {
            // Whatever is on disk so far is whole lines.
            let read = read_journal(&path).expect("read");
            assert!(read.torn_tail.is_none(), "at {seq}");
            assert_eq!(read.events[..], events[..read.events.len()]);
        }
    }
    assert!(
        std::fs::metadata(&path).expect("meta").len() > 0,
        "written in chunks"
    );
    assert_eq!(w.syncs(), 0);
    drop(w); // without finish: still written
    assert_eq!(read_journal(&path).expect("read").events, events);
    assert_eq!(verify_chain(&path).expect("chain").events, 2000);
}
