//! The floor under a live `run "true"` step: a bare tokio loop that does
//! only what the write-ahead journal and the shell adapter must do per
//! step, with no engine around it. `bench/compare.sh` times it beside
//! `runbook run` and the plain sh loop, so that the engine's own share of a
//! live step can be told from the disk's.
//!
//!     cargo run --release --example live_step_floor -- N MODE JOURNAL
//!
//! Each of the N steps appends a ~350-byte line to JOURNAL, runs
//! `/bin/sh -c true` (stdin `/dev/null` or the gate, stdout and stderr
//! piped and read to their end, its own process group), appends three more
//! lines and prints one. MODE:
//!
//! * `none`: no fsync (what a `readonly` step costs);
//! * `fsync`: `fdatasync` after the first line, before the spawn;
//! * `gate`: the shell is spawned held at runbook's gate, the journal is
//!   fsynced while it starts, then the gate is opened (what runbook does).

// A benchmark may unwrap: a panic is its failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::io::Write;
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(mode), Some(journal)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: live_step_floor N none|fsync|gate JOURNAL".into());
    };
    let n: usize = n.parse()?;
    let (sync, gate) = match mode.as_str() {
        "none" => (false, false),
        "fsync" => (true, false),
        "gate" => (true, true),
        other => return Err(format!("unknown mode {other}").into()),
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal)?;
    let pad = "x".repeat(300);
    let mut stdout = std::io::stdout().lock();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for i in 0..n {
            // One `write` a line, as runbook's journal does (`writeln!` on
            // a `File` makes a system call per piece).
            file.write_all(
                format!("{{\"seq\":{i},\"kind\":\"action_started\",\"pad\":\"{pad}\"}}\n")
                    .as_bytes(),
            )?;
            if sync && !gate {
                file.sync_data()?;
            }
            let script = if gate {
                "read -r _ || exit 125; exec </dev/null; true"
            } else {
                "true"
            };
            let mut child = tokio::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(script)
                .stdin(if gate { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()?;
            if gate {
                let mut opener = child.stdin.take().ok_or("no stdin")?;
                file.sync_data()?;
                opener.write_all(b"\n").await?;
            }
            let mut out = child.stdout.take().ok_or("no stdout")?;
            let mut err = child.stderr.take().ok_or("no stderr")?;
            let (mut o, mut e) = (Vec::new(), Vec::new());
            let (r1, r2, status) = tokio::join!(
                out.read_to_end(&mut o),
                err.read_to_end(&mut e),
                child.wait()
            );
            r1?;
            r2?;
            if !status?.success() {
                return Err("sh -c true failed".into());
            }
            for k in 0..3 {
                file.write_all(
                    format!("{{\"seq\":{i},\"kind\":\"after{k}\",\"pad\":\"{pad}\"}}\n").as_bytes(),
                )?;
            }
            stdout.write_all(format!("  [s{i}] shell exit 0\n").as_bytes())?;
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    file.sync_data()?;
    Ok(())
}
