//! A temporary directory to run the real `runbook` binary in, its runs
//! under `runs/`: what the process-level tests (operations, resume after a
//! kill) share to start runs, read their journals and wait on them.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct CliEnv {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    /// An environment variable every command gets (a secret's source).
    env: Option<(&'static str, &'static str)>,
}

impl CliEnv {
    /// A fresh directory holding `files` (name, text).
    pub fn new(files: &[(&str, &str)], env: Option<(&'static str, &'static str)>) -> CliEnv {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write a test file");
        }
        CliEnv {
            _tmp: tmp,
            dir,
            env,
        }
    }

    /// This directory's state directory (`RUNBOOK_STATE_DIR`, where run
    /// locks live): never the user's own, and one per test, so that tests
    /// running at once never share a lock.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// `runbook ARGS` in the directory, stdin empty, no colours, its own
    /// state directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_runbook"));
        c.current_dir(&self.dir)
            .env("NO_COLOR", "1")
            .env("RUNBOOK_STATE_DIR", self.state_dir())
            .args(args)
            .stdin(Stdio::null());
        if let Some((k, v)) = self.env {
            c.env(k, v);
        }
        c
    }

    /// `runbook run FILE --runs-dir runs -i dir=<this directory> EXTRA...`,
    /// not started: the caller sets stdout and stderr and spawns it.
    pub fn run_here(&self, file: &str, extra: &[&str]) -> Command {
        let kv = format!("dir={}", self.dir.display());
        let mut args = vec!["run", file, "--runs-dir", "runs", "-i", kv.as_str()];
        args.extend_from_slice(extra);
        self.cmd(&args)
    }

    pub fn out(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("runbook runs")
    }

    /// Run ids under `runs/` that have a journal, sorted (oldest first).
    pub fn run_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.join("runs"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().join("journal.jsonl").exists())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The first run's id, waiting up to 20 s for it to appear.
    pub fn first_run(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(id) = self.run_ids().into_iter().next() {
                return id;
            }
            assert!(Instant::now() < deadline, "no run appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn journal_path(&self, id: &str) -> PathBuf {
        self.dir.join("runs").join(id).join("journal.jsonl")
    }

    pub fn journal(&self, id: &str) -> String {
        std::fs::read_to_string(self.journal_path(id)).unwrap_or_default()
    }

    /// Waits (up to 30 s) until run `id`'s journal has a line containing
    /// every one of `parts`.
    pub fn wait_for(&self, id: &str, parts: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .journal(id)
            .lines()
            .any(|l| parts.iter().all(|p| l.contains(p)))
        {
            assert!(
                Instant::now() < deadline,
                "the journal never had {parts:?}:\n{}",
                self.journal(id)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The lines of a marker file the test's steps append to (none if it
    /// is not there yet).
    pub fn lines_of(&self, marker: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(marker))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until the last line of the marker file `marker` is `line`.
    /// The journal records an action's start before its shell writes the
    /// line; on a loaded machine the line comes later, and a kill between
    /// the two would cut the shell off before it wrote it.
    pub fn wait_for_last_line(&self, marker: &str, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.lines_of(marker).last().map(String::as_str) != Some(line) {
            assert!(
                Instant::now() < deadline,
                "the last line of {marker} never became {line:?}: {:?}",
                self.lines_of(marker)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs `file` with `args` in the background and SIGKILLs it while the
    /// action of step `node` runs, once its shell has written `line` as
    /// the last line of the marker file `m` (see
    /// [`CliEnv::wait_for_last_line`]): the run's id.
    pub fn run_killed_in(&self, file: &str, args: &[&str], node: &str, line: &str) -> String {
        let mut child = self
            .run_here(file, args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("runbook starts");
        let id = self.first_run();
        self.wait_for(&id, &[node, "action_started"]);
        self.wait_for_last_line("m", line);
        let _ = child.kill();
        let _ = child.wait();
        id
    }

    /// Lines in a marker file the test's steps append to (0 if none).
    pub fn count(&self, marker: &str) -> usize {
        self.lines_of(marker).len()
    }
}

/// stdout and stderr together, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
