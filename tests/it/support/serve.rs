//! `runbook serve` started by a test (the real binary, on 127.0.0.1, a free
//! port it picks and prints), in a temporary directory with a config
//! holding three tokens, a routes file and runbooks; and the programs the
//! serve tests drive (`prometheus-alertmanager`, `chromedriver`, `chromium`),
//! which must be installed: a missing one FAILS the test (`.ci/run`
//! installs them).

use super::client::{http_request, HttpResponse};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `trigger` only (what Alertmanager uses).
pub const TRIGGER: &str = "trigger-token-aaaaaaaaaaaaaaaa";
/// `view` and `approve`: a person.
pub const ALICE: &str = "alice-token-bbbbbbbbbbbbbbbbbb";
/// `view` only.
pub const VIEWER: &str = "viewer-token-cccccccccccccccccc";
/// `view`, `approve` and `trigger`: a person who starts runs too.
pub const BOB: &str = "bob-token-dddddddddddddddddddddd";

/// A program the test needs: its path, or a panic saying how to install it.
pub fn require(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{program}` is not on PATH: this test needs it. Install it: \
                 apt-get install --no-install-recommends {package} (as .ci/run does)"
            )
        })
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A running `runbook serve`; killed on drop.
pub struct Serve {
    child: Child,
    pub url: String,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Serve {
    /// Writes `files` (name, text) and a `runbook.yaml` with the three
    /// tokens into a fresh directory and starts `runbook serve` there with
    /// `--routes routes.yaml` (if written) and `extra` arguments.
    pub fn start(files: &[(&str, &str)], extra: &[&str]) -> Serve {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        std::fs::write(
            dir.join("runbook.yaml"),
            "runs_dir: runs\nserve:\n  tokens:\n    \
             - { name: alertmanager, roles: [trigger], env: T_TRIGGER }\n    \
             - { name: alice, roles: [view, approve], env: T_ALICE }\n    \
             - { name: viewer, roles: [view], env: T_VIEWER }\n    \
             - { name: bob, roles: [view, approve, trigger], env: T_BOB }\n",
        )
        .expect("write config");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write a test file");
        }
        let (child, url) = spawn(&dir, extra);
        Serve {
            child,
            url,
            dir,
            _tmp: tmp,
        }
    }

    /// A request with `Authorization: Bearer TOKEN` (if given).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth {
            h.push(("Authorization", a));
        }
        http_request(method, &format!("{}{path}", self.url), &h, body).expect("request to serve")
    }

    /// Kills the server (SIGKILL), and with it the runs it runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts it again in the same directory, with
    /// the same files (it listens on a new port).
    pub fn restart(&mut self, extra: &[&str]) {
        self.kill();
        let (child, url) = spawn(&self.dir, extra);
        self.child = child;
        self.url = url;
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.dir.join("runs")
    }

    /// Run directories (each with a journal).
    pub fn run_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.runs_dir())
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().join("journal.jsonl").is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    pub fn journal(&self, id: &str) -> String {
        std::fs::read_to_string(self.runs_dir().join(id).join("journal.jsonl")).unwrap_or_default()
    }

    /// The alert log's records.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.runs_dir().join("alerts.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("an alert log line"))
            .collect()
    }

    /// Waits until run `id` has a question waiting (its request file
    /// written: the journal's `approval_asked` comes just before it).
    pub fn wait_pending(&self, id: &str) {
        self.wait("the approval request", Duration::from_secs(30), || {
            let r = self.request("GET", &format!("/api/runs/{id}"), Some(VIEWER), &[], b"");
            r.status == 200
                && r.json()["pending_approvals"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
        });
    }

    /// Waits until `f` holds (polling), or panics with `what`.
    pub fn wait(&self, what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while t.elapsed() < limit {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out after {limit:?} waiting for {what}");
    }
}

/// Starts `runbook serve` in `dir` (see [`Serve::start`]); the child and
/// the URL it listens on.
fn spawn(dir: &Path, extra: &[&str]) -> (Child, String) {
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        "runbook.yaml",
    ];
    if dir.join("routes.yaml").is_file() {
        args.extend(["--routes", "routes.yaml"]);
    }
    args.extend_from_slice(extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .current_dir(dir)
        .args(&args)
        .env("T_TRIGGER", TRIGGER)
        .env("T_ALICE", ALICE)
        .env("T_VIEWER", VIEWER)
        .env("T_BOB", BOB)
        .env("RUNBOOK_STATE_DIR", dir.join("state"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runbook serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        let mut sent = false;
        let mut all = String::new();
        for line in lines.by_ref().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(Ok(url.to_string()));
                sent = true;
            }
        }
        if !sent {
            let _ = tx.send(Err(all));
        }
    });
    let url = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(url)) => url,
        Ok(Err(stderr)) => panic!("runbook serve did not start:\n{stderr}"),
        Err(_) => panic!("runbook serve did not say where it listens within 30 s"),
    };
    (child, url)
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `url` until it answers 200.
pub fn wait_http_ok(url: &str, limit: Duration, log: &Path) {
    let t = Instant::now();
    while t.elapsed() < limit {
        if http_request("GET", url, &[], b"").is_ok_and(|r| r.status == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{url} not ready after {limit:?}; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}
