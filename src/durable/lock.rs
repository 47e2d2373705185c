//! The run lock: one run at a time per lock key.
//!
//! A lock is the file `<locks dir>/<key as a file name>.lock` holding
//! JSON [`LockHolder`] `{key, pid, host, user, run_id, started}`, plus an
//! advisory `flock` on it held by the running process for the whole run.
//!
//! * **Where**: one locks directory for the machine, not per runs
//!   directory (runs directories are relative to where `runbook` is
//!   started, and the same runbook started from two directories must still
//!   be refused): [`locks_dir`] is `--locks-dir`, else `locks_dir:` in
//!   `runbook.yaml`, else `locks/` under the state directory
//!   ([`state_dir`]: `$RUNBOOK_STATE_DIR`, else `$XDG_STATE_HOME/runbook`,
//!   else `/var/lib/runbook` for root and `~/.local/state/runbook` for
//!   other users).
//! * **Only a regular file** is a lock: a FIFO, a symbolic link, a
//!   directory or a device at a lock's name is refused
//!   ([`LockError::NotAFile`]), never followed or read (it is opened with
//!   `O_NOFOLLOW | O_NONBLOCK` and its type checked with `fstat`).
//!
//! * **Atomic creation**: the file is written complete (and fsynced) under a
//!   temporary name with the flock already held, then hard-linked to its
//!   name, which fails if the name exists (like `O_EXCL`, but the lock is
//!   never visible half-written or unlocked).
//! * **Held**: the name exists and its flock is held: [`LockError::Held`],
//!   at once, whose message says who, since when, and what to do.
//! * **Stale**: the flock is free *and* the holder is on this host *and*
//!   `kill(pid, 0)` says `ESRCH`: the process died without removing it
//!   (SIGKILL, power cut). [`LockError::Stale`] unless `break_stale`
//!   (`--break-lock`), in which case it is atomically replaced (rename over
//!   it while holding its flock) and [`LockGuard::broke`] returns the old
//!   holder, for the caller to log.
//! * A lock from **another host** is never broken automatically (its pid
//!   means nothing here, and flock does not cross hosts on network file
//!   systems); nor one whose pid is alive (a reused pid is possible, but a
//!   human decides). Their messages say how to remove the file by hand.
//! * The [`LockGuard`] removes the file when dropped (only if the file is
//!   still its own), then the flock goes with the file descriptor.
//!
//! Keys are rendered by the compiler without secrets; the file holds only
//! the key, ids, and names. The file name is [`sys::file_name_for`] of the
//! key: `/`, `..`, spaces and unicode cannot escape the `locks` directory.
//!
//! # Where it is used
//!
//! `runbook run` and `runbook resume` take the lock for a live run (a dry
//! run or drill touches nothing and takes no lock) in the locks directory
//! [`locks_dir`] gives, once the run id is chosen and before the journal
//! is created, warn with
//! [`LockGuard::broke_message`] after `run_started` when `--break-lock`
//! took a stale lock, and keep the guard until the run has finished.

use super::sys;
use crate::fs_read;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The locks directory under the state directory (and, before locks were
/// machine-wide, under a runs directory: `runbook runs` skips it).
pub const LOCKS_DIR: &str = "locks";

/// The environment variable naming the state directory.
pub const STATE_DIR_ENV: &str = "RUNBOOK_STATE_DIR";

/// The state directory of root.
pub const ROOT_STATE_DIR: &str = "/var/lib/runbook";

/// Where this machine's runbook state (its locks) lives:
/// `$RUNBOOK_STATE_DIR`, else `$XDG_STATE_HOME/runbook` (an absolute path
/// only, as the XDG spec says), else `/var/lib/runbook` for root and
/// `$HOME/.local/state/runbook` for other users.
pub fn state_dir() -> Result<PathBuf, String> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var(STATE_DIR_ENV) {
        return Ok(dir);
    }
    if let Some(xdg) = var("XDG_STATE_HOME").filter(|p| p.is_absolute()) {
        return Ok(xdg.join("runbook"));
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(PathBuf::from(ROOT_STATE_DIR));
    }
    match var("HOME") {
        Some(home) => Ok(home.join(".local/state/runbook")),
        None => Err(format!(
            "cannot tell where run locks live: $HOME is not set; set {STATE_DIR_ENV}, \
             `locks_dir:` in runbook.yaml, or --locks-dir"
        )),
    }
}

/// The locks directory: `flag` (`--locks-dir`), else `configured`
/// (`locks_dir:` in `runbook.yaml`), else `locks/` under [`state_dir`].
pub fn locks_dir(flag: Option<&Path>, configured: Option<&Path>) -> Result<PathBuf, String> {
    match flag.or(configured) {
        Some(dir) => Ok(dir.to_owned()),
        None => Ok(state_dir()?.join(LOCKS_DIR)),
    }
}

/// Who holds a lock: the lock file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub key: String,
    pub pid: u32,
    pub host: String,
    pub user: String,
    pub run_id: String,
    /// RFC 3339 UTC.
    pub started: String,
}

impl LockHolder {
    /// This process, now.
    pub fn me(key: &str, run_id: &str) -> Self {
        LockHolder {
            key: key.to_owned(),
            pid: std::process::id(),
            host: sys::hostname(),
            user: sys::user(),
            run_id: run_id.to_owned(),
            started: sys::now_rfc3339(),
        }
    }

    fn since(&self) -> String {
        match sys::ago(&self.started) {
            Some(ago) => format!("{} ({ago})", self.started),
            None => self.started.clone(),
        }
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run {} (pid {} on {}, user {}) since {}",
            self.run_id,
            self.pid,
            self.host,
            self.user,
            self.since()
        )
    }
}

/// Why a lock was not taken. `Display` is the message for people.
#[derive(Debug)]
pub enum LockError {
    /// Another run holds it (or may: see `why`).
    Held {
        holder: Box<LockHolder>,
        path: PathBuf,
        /// Why it is treated as held although its flock is free (another
        /// host; a live pid not holding it), `None` when the flock is held.
        why: Option<String>,
    },
    /// Left by a process that died on this host; `--break-lock` breaks it.
    Stale {
        holder: Box<LockHolder>,
        path: PathBuf,
    },
    /// Something other than a regular file at the lock's name (a FIFO, a
    /// symbolic link, a directory...): refused, never followed or read.
    NotAFile {
        path: PathBuf,
        /// "a FIFO", "a symbolic link"...
        kind: String,
    },
    /// A lock file that cannot be read as a lock: never broken
    /// automatically.
    Unreadable {
        path: PathBuf,
        /// Its flock is held by a live process.
        in_use: bool,
        reason: String,
    },
    Io {
        path: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { holder, path, why } => {
                write!(f, "the lock `{}` is held by {holder}", holder.key)?;
                match why {
                    None => write!(
                        f,
                        ": wait for that run to finish (`runbook runs` shows it), or stop it \
                         (Ctrl-C in its terminal, or `kill {}` on {}); a lock left by a process \
                         that is gone can then be broken with `--break-lock`; lock file {}",
                        holder.pid,
                        holder.host,
                        path.display()
                    ),
                    Some(why) => write!(
                        f,
                        "; {why}: it is not broken automatically. If you are sure no run holds \
                         it, remove {} by hand",
                        path.display()
                    ),
                }
            }
            LockError::Stale { holder, path } => write!(
                f,
                "the lock `{}` was left by {holder}, and that process is gone (it crashed or was \
                 killed): check what it did (`runbook runs`, `runbook resume {}`), then run again \
                 with `--break-lock` to break it (this is logged); lock file {}",
                holder.key,
                holder.run_id,
                path.display()
            ),
            LockError::Unreadable {
                path,
                in_use,
                reason,
            } => {
                write!(
                    f,
                    "the lock file {} cannot be read ({reason})",
                    path.display()
                )?;
                if *in_use {
                    write!(f, "; a live process holds it, so a run is in progress")
                } else {
                    write!(
                        f,
                        "; it is not broken automatically: if no run is in progress, remove it by hand"
                    )
                }
            }
            LockError::NotAFile { path, kind } => write!(
                f,
                "the lock file {} is {kind}, not a regular file: it is refused, not followed \
                 (a lock file is only ever a regular file that runbook creates). If no run is \
                 in progress, remove it by hand (`rm {}`) and start again",
                path.display(),
                path.display()
            ),
            LockError::Io { path, source } => {
                write!(f, "cannot take the lock {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A held lock; released (file removed, flock dropped) on drop.
#[derive(Debug)]
pub struct LockGuard {
    file: Option<File>,
    path: PathBuf,
    holder: LockHolder,
    broke: Option<LockHolder>,
}

impl LockGuard {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the lock file says (this run).
    pub fn holder(&self) -> &LockHolder {
        &self.holder
    }

    /// The stale lock this acquisition broke, if any: log it.
    pub fn broke(&self) -> Option<&LockHolder> {
        self.broke.as_ref()
    }

    /// The log line for [`LockGuard::broke`].
    pub fn broke_message(&self) -> Option<String> {
        self.broke.as_ref().map(|old| {
            format!(
                "broke the stale lock `{}` left by {old} (--break-lock)",
                old.key
            )
        })
    }

    /// Releases now, reporting a failure to remove the file.
    pub fn release(mut self) -> io::Result<()> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> io::Result<()> {
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        // Remove the name only if it is still ours (never someone else's
        // lock that replaced a broken one), while still holding the flock.
        let result = match sys::same_file(&file, &self.path) {
            Ok(true) => match std::fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            },
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
        drop(file);
        result
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}

/// The lock file of `key` in the locks directory `locks_dir`.
pub fn lock_path(locks_dir: &Path, key: &str) -> PathBuf {
    locks_dir.join(format!("{}.lock", sys::file_name_for(key)))
}

/// Opens an existing lock file without following a symbolic link or
/// waiting on a FIFO; `Ok(None)` if there is none.
fn open_existing(path: &Path) -> Result<Option<File>, LockError> {
    let not_a_file = |kind: &str| LockError::NotAFile {
        path: path.to_owned(),
        kind: kind.to_owned(),
    };
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(not_a_file("a symbolic link"));
        }
        Err(source) => {
            return Err(LockError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    match fs_read::check_regular(&file, fs_read::LOCK) {
        Ok(()) => Ok(Some(file)),
        Err(e) => match fs_read::refusal(&e) {
            Some(fs_read::Refused::NotRegular { kind, .. }) => Err(not_a_file(kind)),
            _ => Err(LockError::Io {
                path: path.to_owned(),
                source: e,
            }),
        },
    }
}

fn read_holder(file: &mut File) -> Result<LockHolder, String> {
    let bytes = fs_read::read_open(file, fs_read::LOCK).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not a lock: {e}"))
}

/// A new lock file with the flock held, written under a temporary name.
fn prepare(path: &Path, me: &LockHolder) -> io::Result<(PathBuf, File)> {
    let mut content = serde_json::to_vec_pretty(me).map_err(io::Error::other)?;
    content.push(b'\n');
    let (tmp, file) = sys::temp_beside(path, &content)?;
    match sys::try_flock(&file, true) {
        Ok(true) => Ok((tmp, file)),
        Ok(false) => {
            let _ = std::fs::remove_file(&tmp);
            Err(io::Error::other("a fresh temporary lock file was locked"))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// What is at the lock's name.
enum Existing {
    /// Gone meanwhile, or replaced: try again.
    Retry,
    /// Stale, with its flock now held by us (keep the file open while
    /// replacing it).
    Stale(LockHolder, File),
}

fn examine(path: &Path, me: &LockHolder) -> Result<Existing, LockError> {
    let io_err = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    let Some(mut file) = open_existing(path)? else {
        return Ok(Existing::Retry);
    };
    let free = sys::try_flock(&file, true).map_err(io_err)?;
    if !free {
        // Replaced meanwhile (a stale lock being broken): look again.
        if !sys::same_file(&file, path).map_err(io_err)? {
            return Ok(Existing::Retry);
        }
        return Err(match read_holder(&mut file) {
            Ok(holder) => LockError::Held {
                holder: Box::new(holder),
                path: path.to_owned(),
                why: None,
            },
            Err(reason) => LockError::Unreadable {
                path: path.to_owned(),
                in_use: true,
                reason,
            },
        });
    }
    // We hold its flock: is the name still this file (not removed by its
    // releasing owner, or replaced by a breaker)?
    if !sys::same_file(&file, path).map_err(io_err)? {
        return Ok(Existing::Retry);
    }
    let holder = read_holder(&mut file).map_err(|reason| LockError::Unreadable {
        path: path.to_owned(),
        in_use: false,
        reason,
    })?;
    if holder.host != me.host {
        return Err(LockError::Held {
            why: Some(format!(
                "it was taken on another host ({}), whose processes cannot be checked from here",
                holder.host
            )),
            holder: Box::new(holder),
            path: path.to_owned(),
        });
    }
    match sys::pid_alive(holder.pid) {
        Some(false) => Ok(Existing::Stale(holder, file)),
        Some(true) => Err(LockError::Held {
            why: Some(format!(
                "process {} is alive but does not hold the lock (its pid may have been reused \
                 by another program)",
                holder.pid
            )),
            holder: Box::new(holder),
            path: path.to_owned(),
        }),
        None => Err(LockError::Held {
            why: Some(format!(
                "cannot tell whether process {} is alive",
                holder.pid
            )),
            holder: Box::new(holder),
            path: path.to_owned(),
        }),
    }
}

/// Takes the lock `key` for `run_id` in the locks directory `locks_dir`
/// (see [`locks_dir`]; created if missing); see the module docs.
pub fn acquire(
    locks_dir: &Path,
    key: &str,
    run_id: &str,
    break_stale: bool,
) -> Result<LockGuard, LockError> {
    let path = lock_path(locks_dir, key);
    let io_err = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let dir = locks_dir.to_owned();
    std::fs::create_dir_all(&dir).map_err(io_err)?;
    let me = LockHolder::me(key, run_id);
    for _ in 0..20 {
        let (tmp, file) = prepare(&path, &me).map_err(io_err)?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sys::sync_dir(&dir).map_err(io_err)?;
                return Ok(LockGuard {
                    file: Some(file),
                    path,
                    holder: me,
                    broke: None,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(e)),
        }
        drop(file);
        match examine(&path, &me)? {
            Existing::Retry => continue,
            Existing::Stale(holder, old) => {
                if !break_stale {
                    return Err(LockError::Stale {
                        holder: Box::new(holder),
                        path,
                    });
                }
                // Holding the old file's flock, put ours in its place: a
                // concurrent breaker either finds the old flock taken, or
                // (after we drop it) a name that is no longer that file.
                let (tmp, file) = prepare(&path, &me).map_err(io_err)?;
                let renamed = std::fs::rename(&tmp, &path);
                if renamed.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                renamed.map_err(io_err)?;
                sys::sync_dir(&dir).map_err(io_err)?;
                drop(old);
                return Ok(LockGuard {
                    file: Some(file),
                    path,
                    holder: me,
                    broke: Some(holder),
                });
            }
        }
    }
    Err(io_err(io::Error::other(
        "the lock file kept changing while it was being taken; try again",
    )))
}

/// Who holds the lock `key`, if anyone, and whether it is live (its flock
/// held). For `runbook runs` and error messages; never breaks anything.
pub fn inspect(locks_dir: &Path, key: &str) -> Option<(LockHolder, bool)> {
    let path = lock_path(locks_dir, key);
    let mut file = open_existing(&path).ok()??;
    let live = match sys::try_flock(&file, false) {
        Ok(true) => {
            sys::unlock(&file);
            false
        }
        Ok(false) => true,
        Err(_) => false,
    };
    let holder = read_holder(&mut file).ok()?;
    Some((holder, live))
}
