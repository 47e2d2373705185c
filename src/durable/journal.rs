//! The durable, tamper-evident journal: `<run dir>/journal.jsonl`.
//!
//! # Format
//!
//! One event per line, each line the event's JSON object (the
//! [`Event`] serialization documented in `docs/decision-log.md`) with two
//! keys put in front:
//!
//! ```text
//! {"prev":"<64 hex>","hash":"<64 hex>","seq":1,"ts":...,"kind":"run_started",...}\n
//! ```
//!
//! * `prev`: the previous line's `hash` (64 hex digits); 64 zeros on the
//!   first line.
//! * `hash`: hex SHA-256 of `prev` (its 64 ASCII hex digits) followed by the
//!   event's canonical JSON, which is the line with the
//!   `"prev":"...","hash":"...",` prefix removed: `{` + the line from byte
//!   [`PREFIX_LEN`] on. The prefix has a fixed layout, so an auditor can check
//!   a journal with nothing but `sha256sum` (see `docs/operations.md`).
//!
//! Since `hash` covers `prev`, which is the previous `hash`, each line's
//! `hash` covers every line before it, and each line is hashed once.
//! Editing, inserting, deleting or reordering lines breaks the chain at the
//! first line touched (or the line after it, for an edit whose `hash` was
//! recomputed); [`verify_chain`] reports the first broken link. Deleting
//! lines *at the end* is indistinguishable from a crash: anchor the last
//! hash elsewhere (`runbook verify-journal` prints it) to detect that too.
//! The chain has no key: someone who rewrites every line after an edit is
//! not detected by the chain alone.
//!
//! # Durability
//!
//! Each event is written with one `write` of the whole line (so a killed
//! process leaves whole lines; only a power cut can tear the last one).
//! With [`Durability::WriteAhead`] the file is `fsync`ed (`sync_data`) after
//! every event whose [`EventKind::is_write_ahead`](crate::events::EventKind::is_write_ahead) holds (an action with an
//! effect about to start, every outcome of a node or an undo; but not the
//! outcome of a node whose action only read: see `must_sync`) and at
//! [`Sink::finish`]; since [`Emitter::emit`](crate::events::Emitter::emit)
//! returns only when every sink has the event, the `action_started` of a
//! side effect is on disk before the adapter is called, and a node's outcome
//! is on disk before the next node starts. With
//! [`JournalWriter::group_commit`] (what `runbook run` and `resume` do) the
//! outcome of a change is fsynced with the event after it, or before the
//! engine's thread blocks, whichever comes first: one fsync per changing
//! step instead of two (`durable::group_commit`). [`Durability::Buffered`] (dry
//! runs, drills: nothing in the world to protect) never fsyncs and writes
//! whole lines in chunks of [`BUFFER`] bytes (and at finish, or when
//! dropped), saving a system call per event.
//!
//! The writer holds an exclusive `flock` on the journal for as long as it
//! lives: `runbook runs` tells a running run from an interrupted one by it
//! ([`journal_in_use`]), and two processes can never append to one journal.
//!
//! # Reading
//!
//! [`read_journal`] never panics, whatever the bytes: a last line without
//! its `\n` is a *torn tail* (reported, ignored, cut by `resume`); a
//! complete line that does not parse, the last one included, is
//! [`JournalError::Corrupt`] with its line number (each line is written
//! with its `\n` in one `write`, so only an edit or damage leaves one). It
//! reads journals without the chain keys too, since `prev` and `hash` are
//! simply extra keys. It reads only a regular file, of at most
//! [`fs_read::JOURNAL`]'s size.
//!
//! # run.json
//!
//! The first line also holds [`RUN_JSON_KEY`], the SHA-256 of the run's
//! `run.json` (how it was started: runbook file, config, lock key), so the
//! chain covers that file too: `resume` and `verify-journal` refuse a
//! `run.json` that does not match (`durable::run_meta`).
//!
//! # Where it is used
//!
//! * `runbook run` gives a [`JournalWriter::create`] (durability
//!   [`Durability::for_mode`]) to the emitter as its critical sink.
//! * `runbook resume` reopens the journal with
//!   [`JournalWriter::open_append`] (which refuses a broken chain or a
//!   journal in use, and cuts a torn tail), rebuilds the run with
//!   `runs::replay`, and numbers on from `last_seq() + 1` (the writer
//!   refuses a gap).
//! * `runbook verify-journal RUN_ID` prints [`verify_chain`]'s
//!   [`Verified`] or [`ChainBreak`] (its `Display` is the message).

use super::group_commit::GroupCommit;
use super::sys;
use crate::events::{Event, Mode, Sink};
use crate::fs_read;
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The journal's file name in a run directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// The key of the first line that holds the SHA-256 of the run's
/// `run.json` ([`JournalWriter::record_run_json`]).
pub const RUN_JSON_KEY: &str = "run_json_sha256";

/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const PREV_KEY: &[u8] = b"{\"prev\":\"";
const HASH_KEY: &[u8] = b"\",\"hash\":\"";
const PREFIX_END: &[u8] = b"\",";

/// Length of the `{"prev":"<64>","hash":"<64>",` prefix of every line.
pub const PREFIX_LEN: usize = PREV_KEY.len() + 64 + HASH_KEY.len() + 64 + PREFIX_END.len();

/// Bytes of whole lines a [`Durability::Buffered`] writer keeps before
/// writing them.
pub const BUFFER: usize = 64 * 1024;

/// When the writer writes and fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `sync_data` after every write-ahead event and at finish.
    WriteAhead,
    /// Written in chunks of whole lines, never fsynced: dry runs, drills.
    Buffered,
}

impl Durability {
    /// `WriteAhead` for a live run, `Buffered` for a dry run or a drill.
    pub fn for_mode(mode: Mode) -> Self {
        match mode {
            Mode::Live => Durability::WriteAhead,
            Mode::DryRun | Mode::Drill => Durability::Buffered,
        }
    }
}

/// The hash of a line's content: SHA-256 of `prev` then the event JSON.
pub fn event_hash(prev: &str, event_json: &[u8]) -> String {
    let mut out = [0u8; 64];
    hash_into(prev.as_bytes(), event_json, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// [`event_hash`] into a buffer of 64 hex digits, without allocating.
fn hash_into(prev: &[u8], event_json: &[u8], out: &mut [u8; 64]) {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(event_json);
    sys::hex_into(&h.finalize().into(), out);
}

/// Builds a chained line (without its `\n`) from `prev` and the event's
/// canonical JSON (which must be an object: `{...}` with at least one key).
pub fn chain_line(prev: &str, event_json: &[u8]) -> Vec<u8> {
    let hash = event_hash(prev, event_json);
    let body = event_json.get(1..).unwrap_or_default();
    let mut line = Vec::with_capacity(PREFIX_LEN + body.len() + 1);
    line.extend_from_slice(PREV_KEY);
    line.extend_from_slice(prev.as_bytes());
    line.extend_from_slice(HASH_KEY);
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(PREFIX_END);
    line.extend_from_slice(body);
    line
}

/// A hash chain being written: the next line's `prev`, the last `seq`, and
/// the SHA-256 of `run.json` that the first line records. It builds the
/// lines of every journal, the file ([`JournalWriter`]) and the rows of a
/// PostgreSQL store (`store::postgres::journal`), so both hold the same
/// bytes.
#[derive(Debug, Clone)]
pub struct Chain {
    /// 64 lower-case hex digits.
    prev: [u8; 64],
    last_seq: u64,
    /// Written into the first line ([`RUN_JSON_KEY`]), so that the chain
    /// covers `run.json`.
    run_json_sha256: Option<String>,
}

impl Default for Chain {
    fn default() -> Self {
        Chain::new()
    }
}

impl Chain {
    /// A chain with no line yet.
    pub fn new() -> Self {
        Chain {
            prev: genesis(),
            last_seq: 0,
            run_json_sha256: None,
        }
    }

    /// A chain going on after a verified last line (`last_hash`, which is
    /// 64 hex digits, else the chain starts over from [`GENESIS`]).
    pub fn continuing(last_hash: &str, last_seq: u64) -> Self {
        Chain {
            prev: last_hash
                .as_bytes()
                .try_into()
                .unwrap_or_else(|_| genesis()),
            last_seq,
            run_json_sha256: None,
        }
    }

    /// See [`JournalWriter::record_run_json`].
    pub fn record_run_json(&mut self, sha256: &str) -> io::Result<()> {
        if self.last_seq != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "run.json's hash goes into the journal's first line, which is already written",
            ));
        }
        if !is_hex64(sha256.as_bytes()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "run.json's hash must be 64 lower-case hex digits",
            ));
        }
        self.run_json_sha256 = Some(sha256.to_owned());
        Ok(())
    }

    /// The `seq` of the last line (0: none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The next line's `prev`.
    pub fn last_hash(&self) -> &str {
        std::str::from_utf8(&self.prev).unwrap_or(GENESIS)
    }

    /// Appends `ev`'s line and its `\n` to `buf`; returns the line's hash.
    /// The chain moves on only with [`advance`](Self::advance), once the
    /// line is stored. Refuses an event whose `seq` does not follow the
    /// last one (`buf` is then left as it was).
    pub fn line(&self, ev: &Event, buf: &mut Vec<u8>) -> io::Result<[u8; 64]> {
        if ev.seq != self.last_seq.wrapping_add(1) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "event seq {} does not follow the journal's last seq {} \
                     (on resume, number events from JournalWriter::last_seq() + 1)",
                    ev.seq, self.last_seq
                ),
            ));
        }
        // The line is built in place: the prefix without its `,`, then the
        // event's JSON (its `{` turned into that `,` once it is hashed).
        let start = buf.len();
        buf.extend_from_slice(PREV_KEY);
        buf.extend_from_slice(&self.prev);
        buf.extend_from_slice(HASH_KEY);
        let hash_at = buf.len();
        buf.extend_from_slice(&[b'0'; 64]);
        buf.push(b'"');
        let json_at = buf.len();
        if let Err(e) = serde_json::to_writer(&mut *buf, ev) {
            buf.truncate(start);
            return Err(io::Error::other(e));
        }
        let json = &buf[json_at..];
        if json.len() < 3 || json.first() != Some(&b'{') || json.last() != Some(&b'}') {
            buf.truncate(start);
            return Err(io::Error::other("an event did not serialize as an object"));
        }
        if self.last_seq == 0 {
            if let Some(sha) = &self.run_json_sha256 {
                // One more key at the end of the first event's object,
                // inside what the hash covers (readers of events ignore it).
                buf.pop();
                buf.extend_from_slice(b",\"");
                buf.extend_from_slice(RUN_JSON_KEY.as_bytes());
                buf.extend_from_slice(b"\":\"");
                buf.extend_from_slice(sha.as_bytes());
                buf.extend_from_slice(b"\"}");
            }
        }
        let json = &buf[json_at..];
        let mut hash = [0u8; 64];
        hash_into(&self.prev, json, &mut hash);
        buf[hash_at..hash_at + 64].copy_from_slice(&hash);
        buf[json_at] = b',';
        buf.push(b'\n');
        Ok(hash)
    }

    /// The line of `seq`, whose hash is `hash`, is stored.
    pub fn advance(&mut self, hash: [u8; 64], seq: u64) {
        self.prev = hash;
        self.last_seq = seq;
        self.run_json_sha256 = None;
    }
}

// ------------------------------------------------------------- writer --

/// Appends events to `journal.jsonl` with the hash chain; a [`Sink`].
#[derive(Debug)]
pub struct JournalWriter {
    file: File,
    path: PathBuf,
    /// The next line's `prev`, the last `seq`, `run.json`'s hash.
    chain: Chain,
    durability: Durability,
    /// Lines not written yet (buffered), or the line being written.
    buf: Vec<u8>,
    /// Bytes written since the last fsync.
    dirty: bool,
    syncs: u64,
    /// Nodes whose action may have changed the world (an effectful
    /// `action_started` was written) and whose outcome is not on disk yet.
    changing: Vec<std::sync::Arc<str>>,
    /// Set by [`JournalWriter::group_commit`]: such an outcome's fsync is
    /// deferred (see `durable::group_commit`).
    group: Option<GroupCommit>,
}

/// What an event asks of the disk once it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncNeed {
    /// fsync before the run goes on.
    Now,
    /// Under group commit, fsync with what comes next (or at the park
    /// hook): a change's outcome, or a start whose caller calls
    /// [`JournalWriter::durable`] before the action can change anything.
    Deferred,
    /// Nothing (it reaches the disk with the next fsync).
    No,
}

fn genesis() -> [u8; 64] {
    [b'0'; 64]
}

/// Takes the writer's exclusive flock, retrying briefly: `runs` listing
/// probes it with a shared lock for an instant.
fn lock_journal(file: &File, path: &Path) -> io::Result<()> {
    for _ in 0..50 {
        if sys::try_flock(file, true)? {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(io::Error::new(
        io::ErrorKind::WouldBlock,
        format!(
            "{} is in use by another runbook process (is the run still going? see `runbook runs`)",
            path.display()
        ),
    ))
}

impl JournalWriter {
    /// Creates `<run_dir>/journal.jsonl` (and `run_dir`), which must not
    /// exist yet, and locks it.
    pub fn create(run_dir: &Path, durability: Durability) -> io::Result<Self> {
        std::fs::create_dir_all(run_dir)?;
        let path = run_dir.join(JOURNAL_FILE);
        let file = OpenOptions::new()
            .append(true)
            .read(true)
            .create_new(true)
            .open(&path)?;
        lock_journal(&file, &path)?;
        if durability == Durability::WriteAhead {
            sys::sync_dir(run_dir)?;
        }
        Ok(JournalWriter {
            file,
            path,
            chain: Chain::new(),
            durability,
            buf: Vec::with_capacity(1024),
            dirty: false,
            syncs: 0,
            changing: Vec::new(),
            group: None,
        })
    }

    /// Opens an existing journal to append to it (resume): locks it, reads
    /// it, verifies the chain of every line before a torn tail (a broken
    /// chain is refused: the record cannot be trusted to resume from), cuts
    /// the torn tail off (so the next line does not glue onto it; it is
    /// reported in the returned read's `torn_tail` and `warnings`), and
    /// continues the chain.
    pub fn open_append(
        run_dir: &Path,
        durability: Durability,
    ) -> Result<(Self, JournalRead), JournalError> {
        let path = run_dir.join(JOURNAL_FILE);
        let io_err = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        // O_NONBLOCK and the type check: a FIFO put in its place must not
        // hang the resume.
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_err)?;
        fs_read::check_regular(&file, fs_read::JOURNAL).map_err(io_err)?;
        lock_journal(&file, &path).map_err(io_err)?;
        let bytes = fs_read::read_open(&mut file, fs_read::JOURNAL).map_err(io_err)?;
        let read = parse_journal(&bytes)?;
        // The record is what precedes a torn tail; its chain must hold.
        let keep = read
            .torn_tail
            .as_ref()
            .and_then(|t| usize::try_from(t.offset).ok())
            .unwrap_or(bytes.len())
            .min(bytes.len());
        let verified = verify_bytes(&bytes[..keep]).map_err(JournalError::Chain)?;
        // Only a last line without its `\n` is a torn tail (parse_journal
        // refuses a complete one that does not read): cut it.
        if let Some(torn) = &read.torn_tail {
            file.set_len(torn.offset).map_err(io_err)?;
            file.sync_data().map_err(io_err)?;
        }
        file.seek(io::SeekFrom::End(0)).map_err(io_err)?;
        Ok((
            JournalWriter {
                file,
                path,
                chain: Chain::continuing(&verified.last_hash, verified.last_seq),
                durability,
                buf: Vec::with_capacity(1024),
                dirty: false,
                syncs: 0,
                changing: Vec::new(),
                group: None,
            },
            read,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Chains the run's `run.json` into the journal: its SHA-256 is written
    /// into the first line (key [`RUN_JSON_KEY`]), which must not be
    /// written yet. `runbook resume` and `verify-journal` then refuse a
    /// `run.json` that does not match (`durable::run_meta`).
    pub fn record_run_json(&mut self, sha256: &str) -> io::Result<()> {
        self.chain.record_run_json(sha256)
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The `seq` of the last event written (0: none).
    pub fn last_seq(&self) -> u64 {
        self.chain.last_seq
    }

    /// The next line's `prev` (the last line's `hash`; [`GENESIS`] before
    /// the first): the value to print or send elsewhere to anchor the chain.
    pub fn last_hash(&self) -> &str {
        self.chain.last_hash()
    }

    /// Turns on group commit (a write-ahead writer only; a buffered one
    /// never fsyncs): the outcome of a change is fsynced together with what
    /// follows it, or by the returned handle's
    /// [`flush`](GroupCommit::flush), which must then run before the
    /// engine's thread blocks (the CLI installs it as tokio's
    /// `on_thread_park` hook). See `durable::group_commit`.
    pub fn group_commit(&mut self) -> io::Result<GroupCommit> {
        if let Some(g) = &self.group {
            return Ok(g.clone());
        }
        let g = GroupCommit::new(self.file.try_clone()?);
        self.group = Some(g.clone());
        Ok(g)
    }

    /// Appends one event; fsyncs if it is write-ahead (and the durability
    /// says so). Refuses an event whose `seq` does not follow the last one.
    pub fn append(&mut self, ev: &Event) -> io::Result<()> {
        self.append_with(ev, false)
    }

    /// [`append`](Self::append) for an effectful `action_started` whose
    /// caller calls [`durable`](Self::durable) before the action can change
    /// anything. Under group commit its fsync is left to that call (or to
    /// the park hook, or to the next event, whichever comes first), so that
    /// it can overlap the action's start-up; without group commit it is
    /// fsynced at once, as `append` would.
    pub fn append_durable_later(&mut self, ev: &Event) -> io::Result<()> {
        self.append_with(ev, true)
    }

    /// fsyncs whatever waits for its fsync (a start appended with
    /// [`append_durable_later`](Self::append_durable_later), a change's
    /// outcome under group commit). An error if that fsync fails, or if a
    /// group-commit flush failed earlier.
    pub fn durable(&mut self) -> io::Result<()> {
        if let Some(e) = self.group.as_ref().and_then(GroupCommit::failure) {
            return Err(e);
        }
        if self.group.as_ref().is_some_and(GroupCommit::is_pending) {
            self.sync()?;
        }
        Ok(())
    }

    fn append_with(&mut self, ev: &Event, durable_later: bool) -> io::Result<()> {
        if let Some(e) = self.group.as_ref().and_then(GroupCommit::failure) {
            return Err(e);
        }
        if self.durability == Durability::WriteAhead {
            self.buf.clear();
        }
        let next_prev = self.chain.line(ev, &mut self.buf)?;
        match self.durability {
            Durability::WriteAhead => {
                let r = self.file.write_all(&self.buf);
                self.buf.clear();
                r?;
            }
            Durability::Buffered => {
                if self.buf.len() >= BUFFER {
                    self.write_buffered()?;
                }
            }
        }
        self.chain.advance(next_prev, ev.seq);
        self.dirty = true;
        if self.durability == Durability::WriteAhead {
            match self.must_sync(ev, durable_later) {
                SyncNeed::Now => self.sync()?,
                SyncNeed::Deferred => match &self.group {
                    Some(g) => g.defer(),
                    None => self.sync()?,
                },
                SyncNeed::No => {
                    // A deferred outcome goes to disk with the first event
                    // after it that is more than bookkeeping: whatever that
                    // event starts happens after the outcome is durable.
                    let deferred = self.group.as_ref().is_some_and(GroupCommit::is_pending);
                    if deferred && !matches!(ev.kind, crate::events::EventKind::NodeReady { .. }) {
                        self.sync()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether `ev` must be on disk before the run goes on: what
    /// [`EventKind::is_write_ahead`] says, except for a node's outcome, which
    /// needs an fsync only if its action may have changed the world. The
    /// outcome of a step that only reads is written (a killed process
    /// keeps it) and reaches the disk with the next fsync (the next change's
    /// start, a rollback, the run's end); a power cut before then loses it,
    /// and resume runs the read again, which is safe.
    ///
    /// The outcome of a change is [`SyncNeed::Deferred`]: fsynced at once,
    /// or with what follows it under group commit.
    ///
    /// An effectful start whose caller makes it durable itself
    /// (`durable_later`) is [`SyncNeed::Deferred`] too: under group commit
    /// its fsync waits for [`durable`](Self::durable), the park hook or the
    /// next event.
    fn must_sync(&mut self, ev: &Event, durable_later: bool) -> SyncNeed {
        use crate::events::EventKind as K;
        match (&ev.kind, &ev.node) {
            (K::ActionStarted { phase, .. }, node) if ev.kind.is_write_ahead() => {
                if let (crate::events::Phase::Action, Some(node)) = (phase, node) {
                    if !self.changing.contains(node) {
                        self.changing.push(node.clone());
                    }
                }
                if durable_later {
                    SyncNeed::Deferred
                } else {
                    SyncNeed::Now
                }
            }
            (K::NodeSucceeded { .. } | K::NodeFailed { .. }, Some(node)) => {
                match self.changing.iter().position(|n| n == node) {
                    Some(i) => {
                        self.changing.swap_remove(i);
                        SyncNeed::Deferred
                    }
                    None => SyncNeed::No,
                }
            }
            (kind, _) if kind.is_write_ahead() => SyncNeed::Now,
            _ => SyncNeed::No,
        }
    }

    /// Writes what a buffered writer holds.
    fn write_buffered(&mut self) -> io::Result<()> {
        if self.durability == Durability::Buffered && !self.buf.is_empty() {
            let r = self.file.write_all(&self.buf);
            self.buf.clear();
            r?;
        }
        Ok(())
    }

    /// How many times the journal was fsynced (tests, benchmarks), by the
    /// writer or by its group commit's `flush`.
    pub fn syncs(&self) -> u64 {
        self.syncs + self.group.as_ref().map_or(0, GroupCommit::syncs)
    }

    /// fsyncs what was written (if anything since the last fsync).
    pub fn sync(&mut self) -> io::Result<()> {
        if let Some(g) = &self.group {
            g.covered();
        }
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
            self.syncs += 1;
        }
        Ok(())
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        let _ = self.write_buffered();
    }
}

impl Sink for JournalWriter {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.append(ev)
    }

    fn event_durable_later(&mut self, ev: &Event) -> io::Result<()> {
        self.append_durable_later(ev)
    }

    fn durable(&mut self) -> io::Result<()> {
        JournalWriter::durable(self)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.write_buffered()?;
        self.file.flush()?;
        if self.durability == Durability::WriteAhead {
            self.sync()?;
        }
        Ok(())
    }
}

/// Whether a live process holds the journal of `run_dir` open for writing
/// (its writer's flock): the run is still going. `false` if there is no
/// journal.
pub fn journal_in_use(run_dir: &Path) -> bool {
    let Ok(file) = fs_read::open(&run_dir.join(JOURNAL_FILE), fs_read::JOURNAL) else {
        return false;
    };
    match sys::try_flock(&file, false) {
        Ok(true) => {
            sys::unlock(&file);
            false
        }
        Ok(false) => true,
        Err(_) => false,
    }
}

// ------------------------------------------------------------- reader --

/// A last line cut short (power cut mid-write): ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Where it starts (bytes from the start of the file): the journal's
    /// length once it is cut off.
    pub offset: u64,
    /// Its length in bytes.
    pub bytes: u64,
    /// 1-based line number.
    pub line: usize,
}

/// What [`read_journal`] recovered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalRead {
    /// Every complete event, in order.
    pub events: Vec<Event>,
    pub torn_tail: Option<TornTail>,
    /// For people: the torn tail, said plainly.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read or write the journal {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A bad line before the last one: the journal was corrupted or edited.
    #[error(
        "the journal is corrupt at line {line} (byte {offset}): {reason}; \
         it was damaged or edited, and is left as it is: restore it from a copy, or inspect it \
         (`runbook verify-journal` shows the first broken link)"
    )]
    Corrupt {
        line: usize,
        offset: u64,
        reason: String,
    },
    #[error("{0}")]
    Chain(ChainBreak),
    /// The run's `run.json` does not match the hash the journal records
    /// (`durable::run_meta`).
    #[error("{} {reason}", path.display())]
    RunMeta { path: PathBuf, reason: String },
}

/// Reads a journal file; see the module docs.
pub fn read_journal(path: &Path) -> Result<JournalRead, JournalError> {
    let bytes = fs_read::read(path, fs_read::JOURNAL).map_err(|source| JournalError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_journal(&bytes)
}

/// One line of a journal: 1-based number, byte offset, bytes (no `\n`),
/// and whether it ended with `\n`.
struct Line<'a> {
    no: usize,
    offset: usize,
    bytes: &'a [u8],
    terminated: bool,
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut pos = 0usize;
    let mut no = 0usize;
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        no += 1;
        let rest = bytes.get(pos..).unwrap_or_default();
        let (len, terminated) = match rest.iter().position(|&b| b == b'\n') {
            Some(n) => (n, true),
            None => (rest.len(), false),
        };
        let line = Line {
            no,
            offset: pos,
            bytes: rest.get(..len).unwrap_or_default(),
            terminated,
        };
        pos += len + usize::from(terminated);
        Some(line)
    })
}

fn short_error(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// Parses journal bytes; never panics. Only a last line without its `\n`
/// is a torn tail: the writer writes a line and its `\n` with one `write`,
/// so a crash cannot leave a complete line that does not read; such a line,
/// last or not, was edited or damaged, and is [`JournalError::Corrupt`].
pub fn parse_journal(bytes: &[u8]) -> Result<JournalRead, JournalError> {
    let mut out = JournalRead::default();
    for line in lines(bytes) {
        if !line.terminated {
            let torn = TornTail {
                offset: line.offset as u64,
                bytes: line.bytes.len() as u64,
                line: line.no,
            };
            out.warnings.push(format!(
                "the journal's last line ({}, {} bytes) is incomplete (the run was cut off while \
                 writing it) and is ignored",
                torn.line, torn.bytes
            ));
            out.torn_tail = Some(torn);
            break;
        }
        match serde_json::from_slice::<Event>(line.bytes) {
            Ok(ev) => out.events.push(ev),
            Err(e) => {
                let mut reason = if line.bytes.is_empty() {
                    "empty line".to_owned()
                } else {
                    short_error(&e)
                };
                if line.offset + line.bytes.len() + 1 == bytes.len() {
                    reason.push_str(
                        "; it is the last line but ends with its newline, so it is not a write \
                         cut off by a crash (that leaves a line without its newline)",
                    );
                }
                return Err(JournalError::Corrupt {
                    line: line.no,
                    offset: line.offset as u64,
                    reason,
                });
            }
        }
    }
    Ok(out)
}

// ------------------------------------------------------------- verify --

/// The first broken link of a journal's hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// 1-based line number of the first line that does not check out.
    pub line: usize,
    /// Its `seq`, when it could be read.
    pub seq: Option<u64>,
    pub reason: String,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the journal's hash chain breaks at line {}", self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ChainBreak {}

/// A journal whose chain checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Complete, chained events.
    pub events: usize,
    /// `seq` of the last one (0: none).
    pub last_seq: u64,
    /// What the next line's `prev` must be (`GENESIS` if there is no line):
    /// the last line's `hash`. The anchor to keep elsewhere.
    pub last_hash: String,
    /// An incomplete last line (no `\n`), not part of the record.
    pub torn_tail: Option<TornTail>,
    /// What the first line records as the SHA-256 of `run.json`
    /// ([`RUN_JSON_KEY`]); `None` for a journal written before it was
    /// recorded, or by a writer given none.
    pub run_json_sha256: Option<String>,
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the journal's hash chain is intact: {} events, last seq {}, last hash {}",
            self.events, self.last_seq, self.last_hash
        )?;
        if let Some(t) = &self.torn_tail {
            write!(
                f,
                "; its last line ({}, {} bytes) is incomplete (cut off while being written) and is not part of the record",
                t.line, t.bytes
            )?;
        }
        Ok(())
    }
}

/// Verifies a journal file's hash chain; see [`verify_bytes`].
pub fn verify_chain(path: &Path) -> Result<Verified, JournalError> {
    let bytes = fs_read::read(path, fs_read::JOURNAL).map_err(|source| JournalError::Io {
        path: path.to_owned(),
        source,
    })?;
    verify_bytes(&bytes).map_err(JournalError::Chain)
}

fn is_hex64(b: &[u8]) -> bool {
    b.len() == 64 && b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

#[derive(serde::Deserialize)]
struct SeqOnly {
    seq: u64,
}

#[derive(serde::Deserialize)]
struct FirstLine {
    #[serde(default)]
    run_json_sha256: Option<String>,
}

/// Verifies the chain over journal bytes, line by line: the fixed prefix,
/// `hash` = SHA-256(prev + event JSON), `prev` = the previous line's `hash`,
/// `seq` = previous + 1 (from 1). Every `\n`-terminated line is
/// checked; an unterminated last line is a torn tail, reported but not a
/// break. Never panics.
pub fn verify_bytes(bytes: &[u8]) -> Result<Verified, ChainBreak> {
    let mut prev: [u8; 64] = genesis();
    let mut last_seq = 0u64;
    let mut events = 0usize;
    let mut run_json_sha256 = None;
    let mut json = Vec::new();
    let anchor = |prev: &[u8; 64]| String::from_utf8_lossy(prev).into_owned();
    for line in lines(bytes) {
        if !line.terminated {
            return Ok(Verified {
                events,
                last_seq,
                last_hash: anchor(&prev),
                torn_tail: Some(TornTail {
                    offset: line.offset as u64,
                    bytes: line.bytes.len() as u64,
                    line: line.no,
                }),
                run_json_sha256,
            });
        }
        let b = line.bytes;
        let seq_of = |json: &[u8]| serde_json::from_slice::<SeqOnly>(json).ok().map(|s| s.seq);
        let brk = |seq: Option<u64>, reason: String| ChainBreak {
            line: line.no,
            seq,
            reason,
        };
        let prefix_ok = b.len() > PREFIX_LEN
            && b.starts_with(PREV_KEY)
            && is_hex64(&b[PREV_KEY.len()..PREV_KEY.len() + 64])
            && b[PREV_KEY.len() + 64..].starts_with(HASH_KEY)
            && is_hex64(&b[PREV_KEY.len() + 64 + HASH_KEY.len()..PREFIX_LEN - PREFIX_END.len()])
            && b[PREFIX_LEN - PREFIX_END.len()..].starts_with(PREFIX_END);
        if !prefix_ok {
            let seq = serde_json::from_slice::<SeqOnly>(b).ok().map(|s| s.seq);
            return Err(brk(
                seq,
                "the line does not start with the chain's `{\"prev\":...,\"hash\":...,` \
                 (edited, or written without the hash chain)"
                    .into(),
            ));
        }
        let line_prev = &b[PREV_KEY.len()..PREV_KEY.len() + 64];
        let line_hash = &b[PREV_KEY.len() + 64 + HASH_KEY.len()..PREFIX_LEN - PREFIX_END.len()];
        json.clear();
        json.push(b'{');
        json.extend_from_slice(&b[PREFIX_LEN..]);
        let seq = seq_of(&json);
        let mut computed = [0u8; 64];
        hash_into(line_prev, &json, &mut computed);
        if computed[..] != *line_hash {
            return Err(brk(
                seq,
                "its `hash` does not match its content: the line was edited".into(),
            ));
        }
        let chained = line_prev == prev;
        if !chained {
            let reason = if line.no == 1 {
                "the first line's `prev` is not all zeros: lines before it were deleted".to_owned()
            } else {
                format!(
                    "its `prev` does not match line {}: a line was deleted, inserted or moved here, \
                     or line {} was edited",
                    line.no - 1,
                    line.no - 1
                )
            };
            return Err(brk(seq, reason));
        }
        let Some(seq_n) = seq else {
            return Err(brk(
                None,
                "the line is not a JSON object with a `seq`".into(),
            ));
        };
        if seq_n != last_seq.wrapping_add(1) {
            return Err(brk(
                seq,
                format!(
                    "seq {seq_n} where {} was expected: events are missing or out of order",
                    last_seq.wrapping_add(1)
                ),
            ));
        }
        if line.no == 1 {
            run_json_sha256 = serde_json::from_slice::<FirstLine>(&json)
                .ok()
                .and_then(|f| f.run_json_sha256);
        }
        last_seq = seq_n;
        events += 1;
        prev = computed;
    }
    Ok(Verified {
        events,
        last_seq,
        last_hash: anchor(&prev),
        torn_tail: None,
        run_json_sha256,
    })
}
