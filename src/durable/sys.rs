//! Small operating-system helpers shared by the durable modules: advisory
//! locks (`flock`), process liveness (`kill(pid, 0)`), host and user names,
//! atomic file creation, and file names made safe from arbitrary keys.
//!
//! Unix only, like the rest of the engine (process groups, signals).

use crate::digest::sha256_hex;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tries to take an advisory lock (`flock`) on `file` without waiting.
/// `Ok(true)`: taken (held until the file is closed or [`unlock`]ed);
/// `Ok(false)`: another open file description holds a conflicting lock.
pub fn try_flock(file: &File, exclusive: bool) -> io::Result<bool> {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    } | libc::LOCK_NB;
    loop {
        // SAFETY: flock on a valid, open file descriptor owned by `file`.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(code) if code == libc::EWOULDBLOCK || code == libc::EAGAIN => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Releases an advisory lock taken with [`try_flock`].
pub fn unlock(file: &File) {
    // SAFETY: flock on a valid, open file descriptor owned by `file`.
    unsafe {
        libc::flock(file.as_raw_fd(), libc::LOCK_UN);
    }
}

/// Whether the process `pid` exists on this host: `Some(false)` only when
/// `kill(pid, 0)` fails with `ESRCH`; `None` when it cannot be told (a pid
/// of 0 or out of range).
pub fn pid_alive(pid: u32) -> Option<bool> {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return None;
    };
    if p <= 0 {
        return None;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(p, 0) };
    if rc == 0 {
        return Some(true);
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::ESRCH) => Some(false),
        // EPERM: it exists but belongs to someone else.
        Some(libc::EPERM) => Some(true),
        _ => None,
    }
}

/// This process's machine, as far as a process id means anything: the
/// kernel's boot id and the pid namespace (`/proc/sys/kernel/random/boot_id`
/// and `/proc/self/ns/pid`, Linux). Two processes with the same value see
/// the same process ids, so [`pid_alive`] of one tells about the other; a
/// host name alone does not (containers sharing it, a reboot). `None` when
/// it cannot be read.
pub fn machine() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let boot = boot.trim();
    (!boot.is_empty()).then(|| format!("{boot} {}", ns.display()))
}

/// This host's name (`gethostname`), or `"unknown-host"`.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_owned();
    if name.is_empty() {
        "unknown-host".into()
    } else {
        name
    }
}

/// The user running this process: `$USER`, `$LOGNAME`, else `uid N`.
pub fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .map(|u| clean_text(&u, 64))
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            // SAFETY: getuid cannot fail.
            let uid = unsafe { libc::getuid() };
            format!("uid {uid}")
        })
}

/// Now, RFC 3339 UTC with milliseconds (the journal's timestamp format).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// "12m 3s ago" for an RFC 3339 timestamp, when it parses and is past.
pub fn ago(ts: &str) -> Option<String> {
    let t = humantime::parse_rfc3339_weak(ts).ok()?;
    let d = std::time::SystemTime::now().duration_since(t).ok()?;
    let d = std::time::Duration::from_secs(d.as_secs());
    Some(format!("{} ago", humantime::format_duration(d)))
}

/// Control characters replaced by spaces, cut to `max` characters: for
/// free text from another user (approver names, reasons) that ends up on
/// a terminal, so that it cannot move the cursor or fake output.
pub fn clean_text(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A file-name-safe, injective rendering of an arbitrary key (a lock key, a
/// node id): ASCII letters, digits, `_`, `-` and `.` (not first) are kept;
/// every other byte (`/`, spaces, `%`, control characters, each byte of a
/// non-ASCII character) becomes `%XX`. So `..`, `a/b`, `.hidden` and
/// unicode can never name another directory or a hidden file. The empty key
/// is `%`. Names longer than 120 bytes are cut and end with `~` and 16 hex
/// digits of the key's SHA-256, keeping them distinct and under the usual
/// 255-byte limit.
pub fn file_name_for(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for (i, b) in key.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if keep {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    if out.len() > 120 {
        out.truncate(100);
        out.push('~');
        out.push_str(&sha256_hex(key.as_bytes())[..16]);
    }
    out
}

/// Lower-case hex of a SHA-256 digest into 64 bytes, without allocating.
pub(crate) fn hex_into(digest: &[u8; 32], out: &mut [u8; 64]) {
    // Both digits of a byte from one table lookup: every journal line
    // writes a hash, and the digit-by-digit loop was a third of the time
    // spent around the hashing itself.
    static PAIRS: [[u8; 2]; 256] = {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut t = [[0u8; 2]; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = [DIGITS[b >> 4], DIGITS[b & 0x0f]];
            b += 1;
        }
        t
    };
    for (pair, b) in out.chunks_exact_mut(2).zip(digest) {
        pair.copy_from_slice(&PAIRS[usize::from(*b)]);
    }
}

/// fsyncs a directory, so that a file created, renamed or removed in it
/// survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether `file` is (still) the file at `path` (same device and inode).
pub fn same_file(file: &File, path: &Path) -> io::Result<bool> {
    let a = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(b) => Ok(a.dev() == b.dev() && a.ino() == b.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A temporary file beside `dest` (same directory, so a rename or link is
/// atomic), created exclusively, with `bytes` written and fsynced. Returns
/// its path and the open file.
pub fn temp_beside(dest: &Path, bytes: &[u8]) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = dest.parent().unwrap_or(Path::new("."));
    let stem = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{stem}.{}.{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(mut f) => {
                let written = f.write_all(bytes).and_then(|()| f.sync_data());
                if let Err(e) = written {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
                return Ok((tmp, f));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Writes `dest` atomically: a reader sees the old content or the whole
/// new content, never a part. `replace: false` refuses (with
/// `AlreadyExists`) if `dest` exists, atomically too (a hard link, which
/// unlike a rename never replaces): of two writers racing, exactly one wins.
pub fn write_atomic(dest: &Path, bytes: &[u8], replace: bool) -> io::Result<()> {
    let (tmp, file) = temp_beside(dest, bytes)?;
    drop(file);
    let placed = if replace {
        std::fs::rename(&tmp, dest)
    } else {
        let r = std::fs::hard_link(&tmp, dest);
        let _ = std::fs::remove_file(&tmp);
        r
    };
    if placed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    placed?;
    if let Some(dir) = dest.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        let keys = [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            "a b",
            "a%2Fb",
            "déploiement",
            "x\ny",
            "ok-key_1.2",
            ".hidden",
        ];
        let names: Vec<String> = keys.iter().map(|k| file_name_for(k)).collect();
        for (k, n) in keys.iter().zip(&names) {
            assert!(!n.is_empty(), "{k:?}");
            assert!(!n.starts_with('.'), "{k:?} -> {n}");
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.%~".contains(&b)),
                "{k:?} -> {n}"
            );
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "{names:?}");
        assert_eq!(file_name_for("ok-key_1.2"), "ok-key_1.2");
        assert_eq!(file_name_for("a/b"), "a%2Fb");
        assert_eq!(file_name_for("a%2Fb"), "a%252Fb");
        let long = "k".repeat(500);
        let n = file_name_for(&long);
        assert!(n.len() <= 120, "{}", n.len());
        assert_ne!(n, file_name_for(&"k".repeat(501)));
    }

    #[test]
    fn liveness_and_names() {
        assert_eq!(pid_alive(std::process::id()), Some(true));
        assert_eq!(pid_alive(0), None);
        assert_eq!(pid_alive(u32::MAX), None);
        assert!(!hostname().is_empty());
        #[cfg(target_os = "linux")]
        assert!(
            machine().is_some_and(|m| m.contains("pid:[")),
            "{:?}",
            machine()
        );
        assert!(!user().is_empty());
        assert_eq!(clean_text("a\x1b[2Jb\n", 100), "a [2Jb");
    }
}
