//! Shared harness for the integration tests. Use it from a test file with
//!
//! ```ignore
//! use crate::support;
//! use support::{Prometheus, TestHttpServer};
//! ```
//!
//! - [`TestHttpServer`]: a real HTTP/1.1 server on 127.0.0.1 (health checks,
//!   JSON APIs, slow/failing endpoints, webhook receiver that records requests).
//! - [`Prometheus`]: a real `prometheus` process scraping metrics the test sets.
//! - [`PgCluster`]: a real PostgreSQL server on loopback in a temporary directory.
//! - [`http_get`] / [`http_post`] / [`http_request`]: a raw std::net client.
//! - [`temp_dir`], [`runbook_bin`], [`run_cli`], [`run_cli_env`],
//!   [`shell_request`], [`run_files`].
//! - [`CliEnv`]: a directory to start runs of the real binary in and watch
//!   their journals (operations and resume tests).
//!
//! Each test module uses a subset of this module, hence the `allow`s.
#![allow(dead_code, unused_imports)]

mod cli_env;
mod client;
mod postgres;
mod prometheus;
pub mod serve;
mod server;

pub use cli_env::{text, CliEnv};
pub use client::{http_get, http_post, http_request, url_encode, HttpResponse};
pub use postgres::{postgres_bin, wait_exit, PgCluster};
pub use prometheus::{prometheus_bin, PromSample, Prometheus, BIN_ENV, REQUIRE_ENV};
pub use server::{RecordedRequest, Reply, TestHttpServer};

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh temporary directory, removed when the returned value is dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("runbook-test-")
        .tempdir()
        .expect("cannot create a temporary directory")
}

/// A request to the shell adapter: `command` (no placeholders) in `cwd`,
/// no extra environment, a 20 s timeout that only a broken test reaches.
pub fn shell_request(command: &str, cwd: &Path) -> runbook::adapters::ShellRequest {
    runbook::adapters::ShellRequest {
        command: runbook::adapters::Rendered::plain(command),
        cwd: Some(cwd.to_path_buf()),
        env: indexmap::IndexMap::new(),
        timeout: Some(std::time::Duration::from_secs(20)),
    }
}

/// Path of the `runbook` binary that Cargo built for these tests.
pub fn runbook_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_runbook"))
}

/// Runs `runbook <args>` in `cwd`, waits, and returns its output (stdin is
/// empty; run locks under `cwd/.runbook-state`, never the user's state
/// directory). The exit status is not checked: assert on `output.status`.
pub fn run_cli<I, S>(args: I, cwd: impl AsRef<Path>) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_cli_env(args, cwd, std::iter::empty::<(&str, &str)>())
}

/// Like [`run_cli`], with extra environment variables for the child.
pub fn run_cli_env<I, S, E, K, V>(args: I, cwd: impl AsRef<Path>, envs: E) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
    E: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let cwd = cwd.as_ref();
    Command::new(runbook_bin())
        .args(args)
        .env("RUNBOOK_STATE_DIR", cwd.join(".runbook-state"))
        .envs(envs)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} in {}: {e}",
                runbook_bin().display(),
                cwd.display()
            )
        })
}

/// Runs `cmd` (stdin empty) and returns its output, failing the test if it
/// has not exited within `limit`: for commands that must refuse at once
/// what would otherwise make them hang (a FIFO, `/dev/zero`).
pub fn output_within(mut cmd: Command, limit: std::time::Duration) -> Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let deadline = std::time::Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{cmd:?} still ran after {limit:?} (killed):\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Makes a FIFO at `path` (`mkfifo`).
pub fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(ok.success(), "mkfifo {}", path.display());
}

/// Every file a run leaves behind under `dir` (journal, run metadata), as
/// text: what the secret tests search for a leak.
pub fn run_files(dir: &Path) -> String {
    let mut all = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                all.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    all
}
