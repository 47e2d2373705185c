//! The real shell adapter: `/bin/sh -c COMMAND` in its own process group.
//!
//! * The command runs with stdin closed (`/dev/null`), stdout and stderr
//!   piped and read concurrently, each into a buffer that keeps the *tail*
//!   (the last `Call::output_cap` bytes; a UTF-8 sequence cut at the start
//!   is dropped whole rather than turned into a replacement character).
//! * It is the leader of a new process group (`process_group(0)`), so that
//!   at the timeout or on cancellation the *whole group* is signalled:
//!   `killpg(SIGTERM)`, then up to [`RealShell::grace`] for the group to
//!   empty, then `killpg(SIGKILL)`. A child the command spawned (`sleep 30 &`)
//!   dies with it, and so does one that left the group (`setsid`, a
//!   double fork): every process the command starts carries [`MARK_VAR`]
//!   in its environment, and after the group kill every process still
//!   carrying this command's mark is killed (Linux, [`kill_marked`]).
//!   Timers are `tokio::time` only.
//! * When the shell exits by itself, a background process it left behind
//!   may still hold stdout/stderr open; the adapter then waits at most
//!   [`DRAIN`] for the pipes to close and reports what it read. Such a
//!   process is *not* killed: it was started on purpose (`nohup ... &`).
//! * Errors carry the `display` form only: the command line (`send` form)
//!   is never put in a message.
//! * When the call's [`StartBarrier`] is pending (a change in a live run:
//!   its `action_started` is written but not yet fsynced), the shell starts
//!   held at a gate: its script is [`GATE`] followed by the command, on the
//!   same line (so the command's line numbers are unchanged), with stdin a
//!   pipe. The adapter spawns it, passes the barrier (the fsync), and only
//!   then writes the newline that opens the gate. The fsync thus overlaps
//!   the exec and start-up of `/bin/sh` instead of preceding them, and the
//!   command still cannot run before its start is on disk: if the barrier
//!   fails, or runbook dies before opening the gate, the shell reads end of
//!   file and exits (status 125) without running any of the command. After
//!   the gate, stdin is `/dev/null`, as for a command started without one.

use super::*;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;
use tokio::time::Instant;

/// What a gated shell runs before the command: wait for the gate's
/// newline on stdin (end of file: exit without running the command), then
/// give the command `/dev/null` as stdin.
pub const GATE: &str = "read -r _ || exit 125; exec </dev/null; ";

/// How long to keep reading stdout/stderr after the shell exited, when a
/// background process still holds them open.
pub const DRAIN: Duration = Duration::from_millis(200);

/// Default time between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(500);

/// How often the group is polled for emptiness during the grace period.
const GROUP_POLL: Duration = Duration::from_millis(10);

/// Runs shell commands for real.
#[derive(Debug, Clone)]
pub struct RealShell {
    /// Working directory when the request has none.
    pub default_cwd: Option<PathBuf>,
    /// Environment added under the request's (the request wins on a clash).
    pub default_env: IndexMap<String, String>,
    /// Timeout when the request has none (`None`: no timeout).
    pub default_timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL of the group.
    pub grace: Duration,
}

impl Default for RealShell {
    fn default() -> Self {
        RealShell {
            default_cwd: None,
            default_env: IndexMap::new(),
            default_timeout: None,
            grace: DEFAULT_GRACE,
        }
    }
}

/// A byte buffer that keeps the last `cap` bytes written to it.
#[derive(Debug, Default)]
pub struct TailBuffer {
    cap: usize,
    buf: Vec<u8>,
    total: u64,
}

impl TailBuffer {
    pub fn new(cap: usize) -> Self {
        TailBuffer {
            cap,
            buf: Vec::new(),
            total: 0,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        self.buf.extend_from_slice(bytes);
        // Amortised: drop the front only when the buffer is twice the cap.
        if self.buf.len() > self.cap.saturating_mul(2).max(8 * 1024) {
            let excess = self.buf.len() - self.cap;
            self.buf.drain(..excess);
        }
    }

    /// The kept tail as (lossy) UTF-8, and whether bytes were dropped.
    pub fn finish(&self) -> (String, bool) {
        let mut start = self.buf.len().saturating_sub(self.cap);
        let truncated = self.total > self.cap as u64;
        if truncated {
            // Do not start in the middle of a UTF-8 sequence.
            let mut skipped = 0;
            while skipped < 3 && start < self.buf.len() && (self.buf[start] & 0xC0) == 0x80 {
                start += 1;
                skipped += 1;
            }
        }
        (
            String::from_utf8_lossy(&self.buf[start..]).into_owned(),
            truncated,
        )
    }
}

/// Reads `r` to its end into `into`. Reading inside the adapter's own
/// future (not a task per stream) saves two task spawns, a shared buffer
/// each and a wake-up per live step.
async fn pump(r: Option<impl AsyncRead + Unpin>, into: &mut TailBuffer) {
    let Some(mut r) = r else {
        return;
    };
    let mut chunk = [0u8; 8 * 1024];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => into.push(&chunk[..n]),
        }
    }
}

/// Sends `sig` to process group `pgid`. Returns false if the group has no
/// process left (ESRCH).
fn killpg(pgid: i32, sig: i32) -> bool {
    if pgid <= 1 {
        // Never signal "every process" or init by accident.
        return false;
    }
    // SAFETY: killpg has no memory-safety preconditions.
    let rc = unsafe { libc::killpg(pgid, sig) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether process group `pgid` still has a live (non-zombie) member. A
/// zombie is dead; it counts for `kill(0)` until its parent reaps it, and an
/// orphan's new parent (PID 1 in a container) may never do so.
#[cfg(target_os = "linux")]
fn group_alive(pgid: i32) -> bool {
    if !killpg(pgid, 0) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`; comm may contain spaces and ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|f| f.parse::<i32>().ok());
        pgrp == Some(pgid) && !matches!(state, "Z" | "X" | "x")
    })
}

#[cfg(not(target_os = "linux"))]
fn group_alive(pgid: i32) -> bool {
    killpg(pgid, 0)
}

/// The environment variable that marks every process a command starts,
/// however it detaches: its value is unique to one command (this process's
/// id and a counter), and children inherit it.
pub const MARK_VAR: &str = "RUNBOOK_SHELL_CALL";

/// A fresh value for [`MARK_VAR`].
fn new_mark() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// SIGKILLs every process still carrying `mark` in its environment: what a
/// timed-out or cancelled command left outside its process group
/// (`setsid`, a daemon's double fork). Linux only (`/proc/PID/environ`,
/// readable for this user's processes); a process that clears or rewrites
/// its environment escapes (docs/security.md). Repeated while it finds some,
/// as one may fork while the others are killed.
#[cfg(target_os = "linux")]
fn kill_marked(mark: &str) {
    let needle = format!("{MARK_VAR}={mark}\0");
    let me = std::process::id().to_string();
    for _ in 0..5 {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        let mut found = false;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| *n != me && n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            let marked = memchr::memmem::find(&env, needle.as_bytes())
                .is_some_and(|at| at == 0 || env[at - 1] == 0);
            if let (true, Ok(pid)) = (marked, pid.parse::<i32>()) {
                // SAFETY: kill has no memory-safety preconditions; pid is
                // a process of this user carrying this command's mark.
                if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                    found = true;
                }
            }
        }
        if !found {
            return;
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn kill_marked(_mark: &str) {}

/// SIGKILLs the group on drop while armed.
struct GroupGuard {
    pgid: i32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            killpg(self.pgid, libc::SIGKILL);
        }
    }
}

enum Ending {
    Exited(std::io::Result<ExitStatus>),
    TimedOut(Duration),
    Cancelled,
}

impl RealShell {
    /// Kills the group: SIGTERM, up to `grace` for it to empty, SIGKILL.
    /// Reaps the leader. Returns how the leader ended, if it could be reaped.
    async fn kill_group(&self, child: &mut Child, pgid: i32) -> Option<ExitStatus> {
        killpg(pgid, libc::SIGTERM);
        let deadline = Instant::now() + self.grace;
        let mut status = tokio::time::timeout_at(deadline, child.wait())
            .await
            .ok()
            .and_then(Result::ok);
        // The leader is gone (or the grace is over); wait for the rest of
        // the group until the deadline.
        while status.is_some() && Instant::now() < deadline {
            if !group_alive(pgid) {
                return status;
            }
            tokio::time::sleep(GROUP_POLL).await;
        }
        killpg(pgid, libc::SIGKILL);
        if status.is_none() {
            status = child.wait().await.ok();
        }
        status
    }
}

#[async_trait]
impl ShellAdapter for RealShell {
    fn passes_start_barrier(&self) -> bool {
        true
    }

    async fn run(&self, call: &Call, req: &ShellRequest) -> AdapterResult<ShellOutput> {
        let started = Instant::now();
        let timeout = req.timeout.or(self.default_timeout);
        let gated = call.start.is_pending();
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c");
        if gated {
            cmd.arg(format!("{GATE}{}", req.command.send))
                .stdin(Stdio::piped());
        } else {
            cmd.arg(&req.command.send).stdin(Stdio::null());
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mark = new_mark();
        let cwd = req.cwd.as_ref().or(self.default_cwd.as_ref());
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        for (k, v) in &self.default_env {
            if !req.env.contains_key(k) {
                cmd.env(k, v);
            }
        }
        cmd.envs(&req.env);
        cmd.env(MARK_VAR, &mark);

        if call.cancel.is_cancelled() {
            return Err(AdapterError::cancelled());
        }
        let mut child = cmd.spawn().map_err(|e| {
            let place = match cwd {
                Some(dir) => format!(" in {}", dir.display()),
                None => String::new(),
            };
            AdapterError::new(
                ErrorKind::Unreachable,
                format!("cannot start /bin/sh{place}: {e}"),
            )
        })?;
        let pgid = child.id().map(|id| id as i32).unwrap_or(0);
        // If this future is dropped before the command ends (the executor's
        // safety net), the whole group is killed, not only the leader.
        let mut guard = GroupGuard { pgid, armed: true };
        if gated {
            let gate = child.stdin.take();
            if !call.start.pass() {
                // Closing the gate unopened makes the shell exit before the
                // command; the kill makes sure of it.
                drop(gate);
                killpg(pgid, libc::SIGKILL);
                let _ = child.wait().await;
                guard.armed = false;
                return Err(AdapterError::new(ErrorKind::Other, START_NOT_RECORDED));
            }
            if let Some(mut gate) = gate {
                // One byte into an empty pipe does not block. A shell that
                // is already gone (it could not start) tells by its status.
                let _ = gate.write_all(b"\n").await;
            }
        }

        let cap = call.output_cap;
        let (mut out, mut err) = (TailBuffer::new(cap), TailBuffer::new(cap));
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let result = {
            // Both pipes are read while the shell runs (a full pipe would
            // block it) and while its group is being killed.
            let reading = async { tokio::join!(pump(stdout, &mut out), pump(stderr, &mut err)) };
            tokio::pin!(reading);
            let mut read_all = false;

            let ending = {
                let wait = child.wait();
                tokio::pin!(wait);
                let sleep = async {
                    match timeout {
                        Some(t) => tokio::time::sleep_until(started + t).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut reading, if !read_all => read_all = true,
                        status = &mut wait => break Ending::Exited(status),
                        _ = &mut sleep => break Ending::TimedOut(timeout.unwrap_or_default()),
                        _ = call.cancel.cancelled() => break Ending::Cancelled,
                    }
                }
            };

            let result = match ending {
                Ending::Exited(status) => {
                    // A background process left on purpose is not killed.
                    guard.armed = false;
                    status.map_err(|e| {
                        AdapterError::new(
                            ErrorKind::Other,
                            format!("cannot wait for the shell process: {e}"),
                        )
                    })
                }
                stopped => {
                    let kill = self.kill_group(&mut child, pgid);
                    tokio::pin!(kill);
                    let status = loop {
                        tokio::select! {
                            _ = &mut reading, if !read_all => read_all = true,
                            status = &mut kill => break status,
                        }
                    };
                    // What left the group (`setsid`) dies with it too.
                    kill_marked(&mark);
                    guard.armed = false;
                    Err(match stopped {
                        Ending::TimedOut(after) => AdapterError::new(
                            ErrorKind::Timeout,
                            format!(
                                "timed out after {}: process group killed{}",
                                humantime::format_duration(after),
                                how_killed(status)
                            ),
                        ),
                        _ => AdapterError::new(
                            ErrorKind::Cancelled,
                            format!("cancelled: process group killed{}", how_killed(status)),
                        ),
                    })
                }
            };

            // Let the readers see EOF (at once when nothing else holds the
            // pipes), but never wait long for a background process.
            if !read_all {
                let _ = tokio::time::timeout(DRAIN, &mut reading).await;
            }
            result
        };
        let status = result?;
        let (stdout, stdout_truncated) = out.finish();
        let (stderr, stderr_truncated) = err.finish();
        Ok(ShellOutput {
            exit: status.code(),
            signal: status.signal(),
            stdout,
            stdout_truncated,
            stderr,
            stderr_truncated,
            elapsed: started.elapsed(),
        })
    }
}

fn how_killed(status: Option<ExitStatus>) -> String {
    match status.and_then(|s| s.signal()) {
        Some(sig) if sig == libc::SIGTERM => " (SIGTERM)".into(),
        Some(sig) if sig == libc::SIGKILL => " (SIGKILL after the grace period)".into(),
        Some(sig) => format!(" (signal {sig})"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_buffer_keeps_the_tail() {
        let mut t = TailBuffer::new(4);
        t.push(b"ab");
        assert_eq!(t.finish(), ("ab".into(), false));
        t.push(b"cd");
        assert_eq!(t.finish(), ("abcd".into(), false));
        t.push(b"e");
        assert_eq!(t.finish(), ("bcde".into(), true));
        let mut t = TailBuffer::new(4);
        t.push(b"0123456789");
        assert_eq!(t.finish(), ("6789".into(), true));
        let mut t = TailBuffer::new(4);
        t.push(b"abcd");
        assert_eq!(t.finish(), ("abcd".into(), false));
        for _ in 0..10_000 {
            t.push(b"xy");
        }
        t.push(b"z");
        assert_eq!(t.finish(), ("yxyz".into(), true));
    }

    #[test]
    fn tail_buffer_zero_cap() {
        let mut t = TailBuffer::new(0);
        t.push(b"");
        assert_eq!(t.finish(), (String::new(), false));
        t.push(b"x");
        assert_eq!(t.finish(), (String::new(), true));
    }

    #[test]
    fn tail_buffer_does_not_start_mid_character() {
        let mut t = TailBuffer::new(5);
        t.push("aé€".as_bytes()); // 1 + 2 + 3 bytes
        t.push(b"z");
        // The tail is 5 bytes: the last byte of 'é' is dropped, not replaced.
        assert_eq!(t.finish(), ("€z".into(), true));
    }
}
