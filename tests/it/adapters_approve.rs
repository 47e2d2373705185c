//! The real approve adapter on a real terminal: this test binary runs
//! itself as a child on a pseudo-terminal (stdin, stdout and stderr all the
//! pty's slave side) and answers the prompt through the master side.

use runbook::adapters::approve::RealApprove;
use runbook::adapters::{ApprovalRequest, ApproveAdapter, Call, ErrorKind};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "RUNBOOK_T_APPROVE_CHILD";
const TIMEOUT_ENV: &str = "RUNBOOK_T_APPROVE_TIMEOUT_MS";

/// Runs in the child only: asks once on the real terminal and prints the
/// outcome as one `DECISION ...` line.
#[tokio::test]
async fn tty_child_helper() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let timeout = std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    let mut call = Call::simple("drain");
    call.item = Some("eu-west".into());
    let answer = RealApprove::new()
        .ask(
            &call,
            &ApprovalRequest {
                message: "Drain eu-west now?".into(),
                timeout,
                preapproved: false,
                by_other: false,
                attempts: None,
            },
        )
        .await;
    match answer {
        Ok(d) => println!("DECISION approved={} by={}", d.approved, d.by),
        Err(e) => println!("DECISION error={:?} message={}", e.kind, e.message),
    }
}

/// A pty pair: (master, slave).
fn open_pty() -> (File, OwnedFd) {
    // SAFETY: plain libc calls on fds this function owns; results checked.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(
            master >= 0,
            "posix_openpt: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(libc::grantpt(master), 0, "grantpt");
        assert_eq!(libc::unlockpt(master), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(
            libc::ptsname_r(master, name.as_mut_ptr(), name.len()),
            0,
            "ptsname_r"
        );
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        assert!(
            slave >= 0,
            "open slave: {}",
            std::io::Error::last_os_error()
        );
        (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
    }
}

struct Session {
    master: File,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
    child: std::process::Child,
}

impl Session {
    fn start(timeout_ms: Option<u64>) -> Session {
        let (master, slave) = open_pty();
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = Command::new(exe);
        cmd.args([
            "--exact",
            "adapters_approve::tty_child_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave));
        if let Some(ms) = timeout_ms {
            cmd.env(TIMEOUT_ENV, ms.to_string());
        }
        let child = cmd.spawn().expect("spawn the child test");
        let mut reader = master.try_clone().expect("dup master");
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Session {
            master,
            output,
            seen: String::new(),
            child,
        }
    }

    /// Reads the terminal until `what` shows up; panics with what was seen.
    fn expect(&mut self, what: &str, within: Duration) {
        let t = Instant::now();
        while !self.seen.contains(what) {
            let left = within.saturating_sub(t.elapsed());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!(
                    "{what:?} not seen within {within:?}; terminal:\n{}",
                    self.seen
                ),
            }
        }
    }

    fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .expect("type on the terminal");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_yes_on_the_terminal_approves() {
    let mut s = Session::start(Some(20_000));
    s.expect("[y/N]", Duration::from_secs(20));
    assert!(s.seen.contains("step `drain` (item eu-west)"), "{}", s.seen);
    assert!(s.seen.contains("Drain eu-west now?"), "{}", s.seen);
    s.type_line("y");
    s.expect("DECISION", Duration::from_secs(10));
    s.expect("\n", Duration::from_secs(1));
    assert!(s.seen.contains("DECISION approved=true"), "{}", s.seen);
}

#[test]
fn anything_else_refuses() {
    let mut s = Session::start(None);
    s.expect("[y/N]", Duration::from_secs(20));
    s.type_line("nope");
    s.expect("DECISION", Duration::from_secs(10));
    assert!(s.seen.contains("DECISION approved=false"), "{}", s.seen);
}

#[test]
fn no_answer_times_out() {
    let mut s = Session::start(Some(500));
    s.expect("[y/N]", Duration::from_secs(20));
    let t = Instant::now();
    s.expect("DECISION", Duration::from_secs(10));
    assert!(s.seen.contains("DECISION error=Timeout"), "{}", s.seen);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // The blocked read of the terminal does not keep the process alive.
    let t = Instant::now();
    loop {
        match s.child.try_wait().expect("poll the child") {
            Some(status) => {
                assert!(status.success(), "{status}; terminal:\n{}", s.seen);
                break;
            }
            None if t.elapsed() > Duration::from_secs(10) => {
                panic!("the child did not exit after the timeout:\n{}", s.seen)
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[tokio::test]
async fn without_a_terminal_the_real_adapter_refuses() {
    // `cargo test` may run on a terminal; `without_terminal` is what the
    // adapter does when stdin or stderr is not one.
    let e = RealApprove::without_terminal()
        .ask(
            &Call::simple("drain"),
            &ApprovalRequest {
                message: "Drain?".into(),
                timeout: None,
                preapproved: false,
                by_other: false,
                attempts: None,
            },
        )
        .await
        .expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(e.message.contains("--approve drain"), "{e}");
}
