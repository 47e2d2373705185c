//! `Prometheus`: a real `prometheus` server for integration tests.
//!
//! Starts the `prometheus` binary (Debian package `prometheus`; override the
//! path with `RUNBOOK_PROMETHEUS_BIN`) on `127.0.0.1:<free port>` with a temp
//! storage dir and a generated config that scrapes a [`TestHttpServer`]'s
//! `/metrics` every second (job `runbook-test`). Series therefore carry the
//! extra labels `job="runbook-test"` and `instance="127.0.0.1:<port>"`; a
//! `job`/`instance` label set by the test is renamed `exported_job` /
//! `exported_instance` by Prometheus.
//!
//! Missing binary: panics if `RUNBOOK_REQUIRE_PROMETHEUS` is set (CI always
//! sets it); otherwise `start()` prints a loud warning and returns `None`:
//!
//! ```ignore
//! let Some(prom) = Prometheus::start() else { return };
//! ```
//!
//! Do not keep a `Prometheus` in a `static`: statics are never dropped, so the
//! process would outlive the test binary.

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::client::{http_request, url_encode};
use super::server::TestHttpServer;

/// Env var that turns a missing `prometheus` binary into a test failure.
pub const REQUIRE_ENV: &str = "RUNBOOK_REQUIRE_PROMETHEUS";
/// Env var that overrides the path of the `prometheus` binary.
pub const BIN_ENV: &str = "RUNBOOK_PROMETHEUS_BIN";

/// How long `start()` waits for `/-/ready`, and then for the first scrape.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

/// One element of an instant-query result.
#[derive(Clone, Debug, PartialEq)]
pub struct PromSample {
    /// All labels of the series, including `__name__` when it has one.
    pub metric: BTreeMap<String, String>,
    pub value: f64,
}

/// A running Prometheus; the process is killed and its storage removed on drop.
pub struct Prometheus {
    child: Child,
    port: u16,
    target: TestHttpServer,
    log_path: PathBuf,
    // Dropped after `Drop::drop` has killed the process.
    _dir: tempfile::TempDir,
}

/// Looks the binary up: `$RUNBOOK_PROMETHEUS_BIN`, else `prometheus` on `PATH`.
pub fn prometheus_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(BIN_ENV) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("cannot bind 127.0.0.1:0 to find a free port")
        .port()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Prometheus {
    /// The scrape job name of the metrics target.
    pub const JOB: &'static str = "runbook-test";

    /// Starts Prometheus with an empty metrics target. Returns once Prometheus
    /// is ready *and* has scraped the target once (`up == 1`), so a metric set
    /// afterwards shows up within about one second (see `wait_for_series`).
    pub fn start() -> Option<Prometheus> {
        Prometheus::start_with_metrics(&[])
    }

    /// Like [`Prometheus::start`], with these series already on the target, so
    /// they are in Prometheus by the time this returns.
    pub fn start_with_metrics(metrics: &[(&str, f64)]) -> Option<Prometheus> {
        let Some(bin) = prometheus_bin() else {
            if std::env::var_os(REQUIRE_ENV).is_some() {
                panic!(
                    "the `prometheus` binary is not on PATH but {REQUIRE_ENV} is set: \
                     install it (apt-get install --no-install-recommends prometheus, \
                     as .ci/run does) or point {BIN_ENV} at it"
                );
            }
            // Written straight to the process's stderr, not with `eprintln!`,
            // which the test harness captures: a skip must be seen.
            let warning = format!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !! WARNING: `prometheus` is not on PATH: this test is SKIPPED.\n\
                 !! Install it: apt-get install --no-install-recommends prometheus\n\
                 !! CI sets {REQUIRE_ENV}=1, which makes this a failure.\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            let _ = std::io::Write::write_all(&mut std::io::stderr(), warning.as_bytes());
            return None;
        };

        let started = Instant::now();
        let target = TestHttpServer::start();
        for (series, value) in metrics {
            target.set_metric(series, *value);
        }
        let dir = tempfile::Builder::new()
            .prefix("runbook-prometheus-")
            .tempdir()
            .expect("cannot create a temp dir for Prometheus");
        let config_path = dir.path().join("prometheus.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: {job}\n    metrics_path: /metrics\n    \
             static_configs:\n      - targets: ['{target}']\n",
            job = Prometheus::JOB,
            target = target.addr(),
        );
        fs::write(&config_path, config).expect("cannot write prometheus.yml");
        let log_path = dir.path().join("prometheus.log");

        // The free port can be taken by someone else between our probe and
        // Prometheus binding it; then Prometheus exits and we try another.
        let mut last_failure = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = spawn(&bin, &config_path, dir.path(), &log_path, port);
            match wait_ready(&mut child, port, &log_path, started) {
                Ok(()) => {
                    let ready_after = started.elapsed();
                    let prom = Prometheus {
                        child,
                        port,
                        target,
                        log_path,
                        _dir: dir,
                    };
                    prom.wait_first_scrape(started);
                    // Prometheus applies scrape targets on a 5 s ticker, so
                    // the first scrape comes ~5-6 s after start.
                    eprintln!(
                        "Prometheus on {}: ready after {ready_after:?}, first scrape after {:?}",
                        prom.url(),
                        started.elapsed()
                    );
                    return Some(prom);
                }
                Err(failure) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let port_taken = failure.contains("address already in use");
                    last_failure = failure;
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!(
            "Prometheus ({}) did not start: {last_failure}",
            bin.display()
        );
    }

    /// Base URL, e.g. `"http://127.0.0.1:39123"`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The scraped metrics server (its `/metrics` is what Prometheus sees).
    pub fn target(&self) -> &TestHttpServer {
        &self.target
    }

    /// Sets a series on the scraped target, e.g.
    /// `set_metric("error_rate{region=\"eu\"}", 0.5)`. Prometheus sees it at
    /// the next scrape (at most ~1 s); use `wait_for_value` to wait for it.
    pub fn set_metric(&self, series: &str, value: f64) {
        self.target.set_metric(series, value);
    }

    /// Stops exposing a series; Prometheus marks it stale at the next scrape.
    pub fn remove_metric(&self, series: &str) {
        self.target.remove_metric(series);
    }

    /// Everything Prometheus has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Runs an instant query (`/api/v1/query`). Vector results give one
    /// sample per series, a scalar gives one sample with no labels. Errors
    /// (transport, HTTP status, PromQL error) are returned as text.
    pub fn query(&self, promql: &str) -> Result<Vec<PromSample>, String> {
        let url = format!("{}/api/v1/query?query={}", self.url(), url_encode(promql));
        let resp = http_request("GET", &url, &[], b"").map_err(|e| format!("GET {url}: {e}"))?;
        let body: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("HTTP {} non-JSON body ({e}): {}", resp.status, resp.text()))?;
        if resp.status != 200 || body["status"] != "success" {
            return Err(format!("HTTP {}: {body}", resp.status));
        }
        let data = &body["data"];
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .ok_or_else(|| format!("vector result is not an array: {body}"))?
                .iter()
                .map(|item| {
                    let metric = item["metric"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().into()))
                                .collect()
                        })
                        .unwrap_or_default();
                    Ok(PromSample {
                        metric,
                        value: parse_sample_value(&item["value"])?,
                    })
                })
                .collect(),
            Some("scalar") => Ok(vec![PromSample {
                metric: BTreeMap::new(),
                value: parse_sample_value(&data["result"])?,
            }]),
            other => Err(format!("unsupported resultType {other:?}: {body}")),
        }
    }

    /// Polls `query` until it returns at least one sample; panics (with the
    /// last answer, the scrape target's state and Prometheus's log) after
    /// `timeout`.
    pub fn wait_for_series(&self, promql: &str, timeout: Duration) -> Vec<PromSample> {
        self.wait_until(promql, timeout, "at least one series", |s| !s.is_empty())
    }

    /// Polls `query` until it returns exactly one sample equal to `expected`
    /// (within 1e-9); panics after `timeout` like `wait_for_series`.
    pub fn wait_for_value(&self, promql: &str, expected: f64, timeout: Duration) -> PromSample {
        let what = format!("one sample with value {expected}");
        let mut samples = self.wait_until(promql, timeout, &what, |s| {
            s.len() == 1 && (s[0].value - expected).abs() <= 1e-9
        });
        samples.remove(0)
    }

    /// Polls `query` until `done(samples)` holds; panics after `timeout`.
    pub fn wait_until(
        &self,
        promql: &str,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&[PromSample]) -> bool,
    ) -> Vec<PromSample> {
        let started = Instant::now();
        loop {
            let last = self.query(promql);
            if let Ok(samples) = &last {
                if done(samples) {
                    return samples.clone();
                }
            }
            if started.elapsed() >= timeout {
                panic!(
                    "Prometheus {}: query {promql:?} did not return {what} within {timeout:?}.\n\
                     last answer: {last:?}\n\
                     target {} serves /metrics:\n{}\n\
                     scrape targets: {}\n\
                     prometheus log (tail):\n{}",
                    self.url(),
                    self.target.url(),
                    self.target.metrics_text(),
                    self.targets_summary(),
                    tail(&self.log(), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn targets_summary(&self) -> String {
        match http_request("GET", &format!("{}/api/v1/targets", self.url()), &[], b"") {
            Ok(r) => r.text(),
            Err(e) => format!("<cannot read /api/v1/targets: {e}>"),
        }
    }

    fn wait_first_scrape(&self, started: Instant) {
        let up = format!(
            "up{{job=\"{}\",instance=\"{}\"}}",
            Prometheus::JOB,
            self.target.addr()
        );
        let remaining = STARTUP_TIMEOUT.saturating_sub(started.elapsed());
        self.wait_for_value(&up, 1.0, remaining.max(Duration::from_secs(5)));
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_sample_value(v: &serde_json::Value) -> Result<f64, String> {
    // [ <unix time>, "<value>" ]
    let text = v[1]
        .as_str()
        .ok_or_else(|| format!("sample is not [time, \"value\"]: {v}"))?;
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse()
            .map_err(|e| format!("bad sample value {text:?}: {e}")),
    }
}

fn spawn(bin: &Path, config: &Path, dir: &Path, log_path: &Path, port: u16) -> Child {
    let log = fs::File::create(log_path).expect("cannot create prometheus.log");
    let log_err = log.try_clone().expect("cannot clone the log file handle");
    Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .stdin(Stdio::null())
        // Never inherit the test's stdout/stderr: a leaked process would keep
        // CI's output pipe open.
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

/// Polls `/-/ready`. `Err` carries a description and the log tail if the
/// process exited; a timeout panics.
fn wait_ready(
    child: &mut Child,
    port: u16,
    log_path: &Path,
    started: Instant,
) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}/-/ready");
    loop {
        if let Some(status) = child
            .try_wait()
            .expect("cannot poll the prometheus process")
        {
            let log = fs::read_to_string(log_path).unwrap_or_default();
            return Err(format!("exited with {status}; log:\n{}", tail(&log, 30)));
        }
        if let Ok(resp) = http_request("GET", &url, &[], b"") {
            if resp.status == 200 {
                return Ok(());
            }
        }
        if started.elapsed() > STARTUP_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let log = fs::read_to_string(log_path).unwrap_or_default();
            panic!(
                "Prometheus on port {port} not ready after {STARTUP_TIMEOUT:?}; log:\n{}",
                tail(&log, 30)
            );
        }
        std::thread::sleep(POLL);
    }
}
