//! `runbook serve` under load, whole process (the release binary, on
//! 127.0.0.1), fed the way Alertmanager feeds it:
//!
//! cargo bench --bench serve
//!
//! 1. **Alert to first step**: 50 alerts one after the other (each its own
//!    fingerprint and lock key, so each starts a run): the time from
//!    sending `POST /alertmanager` to its answer (the run validated, its
//!    lock taken, its journal created), and to the run's first step
//!    starting (`action_started` in the journal, polled every 0.2 ms).
//! 2. **Concurrent live runs with the page open**: K alerts at once
//!    (K = 10, 50, 100, 200), each run holding for 3 s, and for each run
//!    one SSE client following its decision log (`/runs/ID/events`, what
//!    the run page does) until the stream ends: whether every run
//!    finished and every stream received every event, the time from the
//!    first alert to the last stream's end, how late events reached the
//!    clients (receipt time minus the event's own timestamp), and the
//!    server's peak RSS.
//!
//! Figures are printed; docs/performance.md ("serve") has them.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const TRIGGER: &str = "bench-trigger-token-0123456789";
const VIEW: &str = "bench-view-token-0123456789ab";

const RUNBOOK: &str = r#"runbook bench_fix {
  input id: string
  input hold: int = 0
  lock "bench/{{id}}"
  step first {
    run "true" readonly
  }
  step hold {
    run "sleep {{hold}}" readonly
  }
}
"#;

const ROUTES: &str = r#"routes:
  - name: bench
    alertname: Bench
    runbook: bench.runbook
    mode: run
    inputs:
      id: { label: id }
      hold: { label: hold }
"#;

struct Server {
    child: Child,
    addr: String,
    runs: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("runbook.yaml"),
        "runs_dir: runs\nserve:\n  tokens:\n    - { name: am, roles: [trigger], env: B_TRIGGER }\n    - { name: page, roles: [view], env: B_VIEW }\n",
    )
    .unwrap();
    std::fs::write(p.join("bench.runbook"), RUNBOOK).unwrap();
    std::fs::write(p.join("routes.yaml"), ROUTES).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .current_dir(p)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--routes",
            "routes.yaml",
            "--config",
            "runbook.yaml",
        ])
        .env("B_TRIGGER", TRIGGER)
        .env("B_VIEW", VIEW)
        .env("RUNBOOK_STATE_DIR", p.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let l = lines.next().expect("serve exited").unwrap();
        if let Some(u) = l.strip_prefix("listening on http://") {
            break u.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        addr,
        runs: p.join("runs"),
        _dir: dir,
    }
}

fn payload(id: &str, hold: u32) -> String {
    format!(
        r#"{{"version":"4","groupKey":"g","receiver":"r","status":"firing","alerts":[{{"status":"firing","labels":{{"alertname":"Bench","id":"{id}","hold":"{hold}"}},"annotations":{{}},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"{id}"}}]}}"#
    )
}

/// POSTs an alert; the run id.
fn alert(s: &Server, id: &str, hold: u32) -> String {
    let body = payload(id, hold);
    let mut c = TcpStream::connect(&s.addr).unwrap();
    write!(
        c,
        "POST /alertmanager HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TRIGGER}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let json = &out[out.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let a = &v["alerts"][0];
    assert_eq!(a["action"], "started", "{v}");
    a["run_id"].as_str().unwrap().to_string()
}

fn journal(s: &Server, run: &str) -> String {
    std::fs::read_to_string(s.runs.join(run).join("journal.jsonl")).unwrap_or_default()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn latency(s: &Server, n: usize) {
    let mut answered = Vec::new();
    let mut first = Vec::new();
    for i in 0..n {
        let t0 = Instant::now();
        let run = alert(s, &format!("lat{i}"), 0);
        answered.push(t0.elapsed().as_secs_f64() * 1e3);
        while !journal(s, &run).contains("\"action_started\"") {
            std::thread::sleep(Duration::from_micros(200));
        }
        first.push(t0.elapsed().as_secs_f64() * 1e3);
        while !journal(s, &run).contains("\"run_finished\"") {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    println!(
        "alert -> answered: median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        pct(&mut answered, 0.5),
        pct(&mut answered, 0.95),
        pct(&mut answered, 1.0)
    );
    println!(
        "alert -> first step started: median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        pct(&mut first, 0.5),
        pct(&mut first, 0.95),
        pct(&mut first, 1.0)
    );
}

/// Follows one run's SSE stream to its end: (events received, delays in ms).
fn follow(addr: String, run: String) -> (usize, Vec<f64>) {
    let mut c = TcpStream::connect(&addr).unwrap();
    write!(
        c,
        "GET /runs/{run}/events?after=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {VIEW}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut n = 0;
    let mut delays = Vec::new();
    for line in BufReader::new(c).lines() {
        let Ok(line) = line else { break };
        if line.starts_with("event: end") {
            break;
        }
        // A chunk's data line (the body is chunked: sizes on lines of their own).
        if let Some(d) = line.strip_prefix("data: ") {
            let now = SystemTime::now();
            let v: serde_json::Value = serde_json::from_str(d).unwrap();
            let ts = humantime::parse_rfc3339(v["ts"].as_str().unwrap()).unwrap();
            delays.push(now.duration_since(ts).unwrap_or_default().as_secs_f64() * 1e3);
            n += 1;
        }
    }
    (n, delays)
}

fn peak_rss_mb(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn concurrent(k: usize, hold: u32) {
    let s = start();
    let t0 = Instant::now();
    let runs: Vec<String> = (0..k)
        .map(|i| alert(&s, &format!("c{k}x{i}"), hold))
        .collect();
    let started = t0.elapsed();
    let clients: Vec<_> = runs
        .iter()
        .map(|r| {
            let (a, r) = (s.addr.clone(), r.clone());
            std::thread::spawn(move || follow(a, r))
        })
        .collect();
    let mut delays = Vec::new();
    let mut complete = 0;
    for (c, r) in clients.into_iter().zip(&runs) {
        let (n, d) = c.join().unwrap();
        let events = journal(&s, r).lines().count();
        if n == events && journal(&s, r).contains("\"run_finished\"") {
            complete += 1;
        }
        delays.extend(d);
    }
    let all = t0.elapsed();
    println!(
        "{k} live runs + {k} SSE clients: {complete}/{k} runs finished with every event streamed; \
         alerts answered in {:.2} s, all streams ended {:.2} s after the first alert (runs hold {hold} s); \
         event delay median {:.0} ms, p95 {:.0} ms, max {:.0} ms; serve peak RSS {:.0} MB",
        started.as_secs_f64(),
        all.as_secs_f64(),
        pct(&mut delays, 0.5),
        pct(&mut delays, 0.95),
        pct(&mut delays, 1.0),
        peak_rss_mb(s.child.id()),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // without it: a small smoke run of both parts.
    let full = std::env::args().any(|a| a == "--bench");
    let s = start();
    latency(&s, if full { 50 } else { 3 });
    drop(s);
    if full {
        for k in [10, 50, 100, 200] {
            concurrent(k, 3);
        }
    } else {
        concurrent(3, 0);
    }
}
