//! Reading a file a user names (a runbook, a scenario, a config, an inputs
//! or secret file, a journal, `run.json`, an approval file): only a regular
//! file, and only up to a size cap.
//!
//! `std::fs::read("/dev/zero")` grows memory until the process is killed,
//! and reading a FIFO blocks until someone writes to it. [`read`] opens
//! with `O_NONBLOCK` (opening a FIFO returns at once instead of waiting for
//! a writer), checks the type of what it opened with `fstat` (so nothing
//! can be swapped between a check and the read), refuses anything but a
//! regular file, refuses a file over its cap, and reads at most cap + 1
//! bytes (a file that grows while it is read is refused too).
//!
//! Refusals are `io::Error`s whose message says what was refused and what
//! to do (its inner error is a [`Refused`]), so a caller that prints
//! `cannot read {path}: {e}` needs no change of its own.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// A kind of file with its size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// What it is, for messages: "runbook", "secret file".
    pub what: &'static str,
    /// The largest size accepted, in bytes.
    pub max_bytes: u64,
}

impl Kind {
    pub const fn new(what: &'static str, max_bytes: u64) -> Kind {
        Kind { what, max_bytes }
    }
}

const MIB: u64 = 1024 * 1024;

pub const RUNBOOK: Kind = Kind::new("runbook", 10 * MIB);
pub const SCENARIO: Kind = Kind::new("drill scenario", 10 * MIB);
pub const CONFIG: Kind = Kind::new("config file", 10 * MIB);
pub const INPUTS: Kind = Kind::new("inputs file", 10 * MIB);
pub const SECRET: Kind = Kind::new("secret file", MIB);
pub const APPROVAL: Kind = Kind::new("approval file", 64 * 1024);
pub const RUN_META: Kind = Kind::new("run.json", MIB);
/// A journal holds every event of a run, read whole by `resume`, `runs`
/// and `verify-journal`: generous, but bounded (a long run with verify
/// polls every second for a day writes well under 100 MiB).
pub const JOURNAL: Kind = Kind::new("journal", 1024 * MIB);
pub const LOCK: Kind = Kind::new("lock file", 64 * 1024);

/// Why a file was refused (the inner error of the `io::Error` [`read`]
/// returns).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the {what} is not a regular file ({kind}): give a regular file")]
    NotRegular {
        what: &'static str,
        kind: &'static str,
    },
    #[error("the {what} is {size}, over the limit of {limit}: give a smaller file")]
    TooLarge {
        what: &'static str,
        size: String,
        limit: String,
    },
}

/// Whether `e` is a refusal of [`read`] / [`check_regular`] (its message
/// is for people, and says nothing of the file's content).
pub fn refusal(e: &io::Error) -> Option<&Refused> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Refused>())
}

/// Opens `path` for reading without blocking on a FIFO, and checks that it
/// is a regular file. The descriptor is blocking again for the reads
/// (`O_NONBLOCK` changes nothing for a regular file anyway).
pub fn open(path: &Path, kind: Kind) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    check_regular(&file, kind)?;
    Ok(file)
}

/// Refuses an open file that is not a regular file (`fstat`).
pub fn check_regular(file: &File, kind: Kind) -> io::Result<()> {
    let t = file.metadata()?.file_type();
    if t.is_file() {
        return Ok(());
    }
    let name = if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a file"
    };
    Err(refused(Refused::NotRegular {
        what: kind.what,
        kind: name,
    }))
}

fn refused(r: Refused) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, r)
}

fn too_large(kind: Kind, size_bytes: u64) -> io::Error {
    let (mut size, mut limit) = (human_size(size_bytes), human_size(kind.max_bytes));
    if size == limit {
        // Just over: rounded, both would read the same.
        size = format!("{} bytes", size_bytes);
        limit = format!("{} bytes", kind.max_bytes);
    }
    refused(Refused::TooLarge {
        what: kind.what,
        size,
        limit,
    })
}

/// `12.3 MiB`, `64 KiB`, `17 bytes`.
fn human_size(n: u64) -> String {
    // Display only: the precision lost converting to f64 is far below the
    // one decimal shown.
    #[allow(clippy::cast_precision_loss)]
    let f = n as f64;
    if n >= MIB {
        trim_unit(f / MIB as f64, "MiB")
    } else if n >= 1024 {
        trim_unit(f / 1024.0, "KiB")
    } else {
        format!("{n} bytes")
    }
}

fn trim_unit(v: f64, unit: &str) -> String {
    let s = format!("{v:.1}");
    let s = s.strip_suffix(".0").unwrap_or(&s);
    format!("{s} {unit}")
}

/// Reads at most `kind.max_bytes` from an open regular file.
pub fn read_open(file: &mut File, kind: Kind) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    if len > kind.max_bytes {
        return Err(too_large(kind, len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.by_ref()
        .take(kind.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > kind.max_bytes {
        // It grew while it was read: at least this large.
        return Err(too_large(kind, bytes.len() as u64));
    }
    Ok(bytes)
}

/// The bytes of the regular file `path`, at most `kind.max_bytes`; see
/// the module docs.
pub fn read(path: &Path, kind: Kind) -> io::Result<Vec<u8>> {
    let mut file = open(path, kind)?;
    read_open(&mut file, kind)
}

/// [`read`] as UTF-8 text (`InvalidData` otherwise, as
/// `std::fs::read_to_string`).
pub fn read_to_string(path: &Path, kind: Kind) -> io::Result<String> {
    String::from_utf8(read(path, kind)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_plainly() {
        assert_eq!(human_size(17), "17 bytes");
        assert_eq!(human_size(64 * 1024), "64 KiB");
        assert_eq!(human_size(10 * MIB), "10 MiB");
        assert_eq!(human_size(12 * MIB + MIB / 3), "12.3 MiB");
    }

    #[test]
    fn refuses_devices_and_large_files_reads_the_rest() {
        let e = read(Path::new("/dev/zero"), RUNBOOK).expect_err("a device");
        assert_eq!(
            e.to_string(),
            "the runbook is not a regular file (a character device): give a regular file"
        );
        assert!(refusal(&e).is_some());
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 64 * 1024 + 1]).expect("write");
        let e = read(&big, APPROVAL).expect_err("too large");
        assert_eq!(
            e.to_string(),
            "the approval file is 65537 bytes, over the limit of 65536 bytes: give a smaller file"
        );
        std::fs::write(&big, vec![b'x'; 2 * 1024 * 1024]).expect("write");
        let e = read(&big, SECRET).expect_err("too large");
        assert_eq!(
            e.to_string(),
            "the secret file is 2 MiB, over the limit of 1 MiB: give a smaller file"
        );
        let e = read(dir.path(), RUNBOOK).expect_err("a directory");
        assert!(e.to_string().contains("(a directory)"), "{e}");
        std::fs::write(&big, b"ok").expect("write");
        assert_eq!(read(&big, APPROVAL).expect("reads"), b"ok");
        let missing = read(&dir.path().join("missing"), RUNBOOK).expect_err("missing");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert!(refusal(&missing).is_none());
    }
}
