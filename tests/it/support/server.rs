//! `TestHttpServer`: a real HTTP/1.1 server on 127.0.0.1 for integration tests.
//!
//! Built on `tiny_http`. One accept thread plus one thread per request, so a
//! `/slow` request never blocks the others, and it works the same from plain
//! `#[test]` and from `#[tokio::test]` (it never touches a tokio runtime).
//!
//! Routing, first match wins (`path` is the URL path without the query):
//! 1. a one-shot reply queued with [`TestHttpServer::push_reply`] for `path`;
//! 2. a per-path override set with `set_reply` / `set_json` / `set_status`;
//! 3. behaviour routes, for any method:
//!    `/slow?ms=N` sleeps N ms (default 1000) then 200 "ok";
//!    `/fail` -> 500 "fail"; `/status/NNN` -> status NNN;
//! 4. GET/HEAD: `/healthz` -> 200 "ok"; `/json` -> 200 `{}` (application/json);
//!    `/metrics` -> the metrics set with `set_metric`, in Prometheus text format;
//!    anything else -> 404;
//! 5. any other method (POST, PUT, PATCH, DELETE, ...) on any path -> 200 "ok".
//!
//! Every request (any method, any path) is recorded before it is answered.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request as received by [`TestHttpServer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Upper-case method, e.g. `"POST"`.
    pub method: String,
    /// URL path without the query string, e.g. `"/hooks/slack"`.
    pub path: String,
    /// Raw query string without the `?`, if any (`"ms=200"`).
    pub query: Option<String>,
    /// Header (name, value) pairs as received, in order (names as sent).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// First header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body in the message if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {} body is not JSON ({e}): {:?}",
                self.method,
                self.path,
                self.body_str()
            )
        })
    }

    /// Value of a query parameter (not percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        query_param(self.query.as_deref(), name)
    }
}

/// A canned response for a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// Sleep this long before answering (the request is recorded first).
    pub delay: Duration,
}

impl Reply {
    /// A `text/plain` reply.
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into().into_bytes(),
            content_type: "text/plain; charset=utf-8".to_string(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// An `application/json` reply. Panics if `body` is not valid JSON, so a
    /// typo in a test's fixture fails loudly here rather than in the engine.
    pub fn json(status: u16, body: impl std::fmt::Display) -> Reply {
        let body = body.to_string();
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&body) {
            panic!("Reply::json given invalid JSON ({e}): {body}");
        }
        Reply {
            content_type: "application/json".to_string(),
            ..Reply::text(status, body)
        }
    }

    /// A reply with only a status code (the body is the status number, or
    /// empty for 204 and 304, which must not have one).
    pub fn status(status: u16) -> Reply {
        let body = if status == 204 || status == 304 {
            String::new()
        } else {
            status.to_string()
        };
        Reply::text(status, body)
    }

    pub fn with_delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

#[derive(Default)]
struct State {
    overrides: HashMap<String, Reply>,
    queued: HashMap<String, VecDeque<Reply>>,
    metrics: BTreeMap<String, f64>,
    /// (arrival sequence number, request); sorted by sequence on read.
    requests: Vec<(u64, RecordedRequest)>,
}

struct Shared {
    state: Mutex<State>,
    /// Notified whenever a request is recorded.
    recorded: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler thread must not make every later call panic too.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A real HTTP/1.1 server on `127.0.0.1:<random port>`; stops on drop.
pub struct TestHttpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

fn normalize_path(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// Formats a sample value the way the Prometheus text format expects.
fn prom_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

impl TestHttpServer {
    /// Binds 127.0.0.1 on a random free port and starts serving.
    pub fn start() -> TestHttpServer {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .expect("TestHttpServer: cannot bind 127.0.0.1:0");
        let addr = server
            .server_addr()
            .to_ip()
            .expect("TestHttpServer: tiny_http listens on an IP address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            recorded: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let accept_thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("test-http-{}", addr.port()))
                .spawn(move || accept_loop(server, shared, stop))
                .expect("TestHttpServer: cannot spawn the accept thread")
        };
        TestHttpServer {
            addr,
            shared,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    /// Base URL without a trailing slash, e.g. `"http://127.0.0.1:41234"`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// All requests received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        let mut reqs = self.shared.lock().requests.clone();
        reqs.sort_by_key(|(seq, _)| *seq);
        reqs.into_iter().map(|(_, r)| r).collect()
    }

    /// Requests received so far whose path is `path` (query ignored), in order.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        let path = normalize_path(path);
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Forgets all recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Blocks until at least `n` requests have been recorded and returns all of
    /// them; panics with what was received if `timeout` passes first.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while state.requests.len() < n {
            let now = Instant::now();
            if now >= deadline {
                let got: Vec<String> = state
                    .requests
                    .iter()
                    .map(|(_, r)| format!("{} {}", r.method, r.path))
                    .collect();
                panic!(
                    "TestHttpServer {}: waited {timeout:?} for {n} request(s), got {}: {got:?}",
                    self.url(),
                    got.len()
                );
            }
            state = self
                .shared
                .recorded
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(state);
        self.requests()
    }

    /// From now on, answer every request to `path` with 200 and this JSON body
    /// (`&str`, `String` or `serde_json::Value`). Panics if it is not valid JSON.
    pub fn set_json(&self, path: &str, body: impl std::fmt::Display) {
        self.set_reply(path, Reply::json(200, body));
    }

    /// From now on, answer every request to `path` with this status code.
    pub fn set_status(&self, path: &str, status: u16) {
        self.set_reply(path, Reply::status(status));
    }

    /// From now on, answer every request to `path` with `reply`.
    pub fn set_reply(&self, path: &str, reply: Reply) {
        self.shared
            .lock()
            .overrides
            .insert(normalize_path(path), reply);
    }

    /// Answer the *next* request to `path` with `reply` (FIFO, one-shot; these
    /// go before any override). E.g. push 503, 503 to make a hook flaky.
    pub fn push_reply(&self, path: &str, reply: Reply) {
        self.shared
            .lock()
            .queued
            .entry(normalize_path(path))
            .or_default()
            .push_back(reply);
    }

    /// Removes the override and any queued replies for `path`.
    pub fn clear_reply(&self, path: &str) {
        let path = normalize_path(path);
        let mut state = self.shared.lock();
        state.overrides.remove(&path);
        state.queued.remove(&path);
    }

    /// Sets a sample served on `GET /metrics`; `series` is a full series in
    /// exposition syntax, e.g. `error_rate{region="eu-west"}`.
    pub fn set_metric(&self, series: &str, value: f64) {
        self.shared.lock().metrics.insert(series.to_string(), value);
    }

    /// Stops serving this series on `/metrics`.
    pub fn remove_metric(&self, series: &str) {
        self.shared.lock().metrics.remove(series);
    }

    /// The current `/metrics` body.
    pub fn metrics_text(&self) -> String {
        render_metrics(&self.shared.lock().metrics)
    }
}

impl Drop for TestHttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.accept_thread.take() {
            // Never turn a failing test into a double panic.
            let _ = thread.join();
        }
    }
}

fn render_metrics(metrics: &BTreeMap<String, f64>) -> String {
    metrics
        .iter()
        .map(|(series, v)| format!("{series} {}\n", prom_value(*v)))
        .collect()
}

fn accept_loop(server: tiny_http::Server, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let seq = AtomicU64::new(0);
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_millis(20)) {
            Ok(Some(request)) => {
                let n = seq.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&shared);
                let spawned = std::thread::Builder::new()
                    .name("test-http-request".to_string())
                    .spawn(move || handle(request, n, &shared));
                if let Err(e) = spawned {
                    eprintln!("TestHttpServer: cannot spawn a request thread: {e}");
                }
            }
            Ok(None) => {}
            Err(e) => {
                // An accept error (e.g. a client that hung up); keep serving.
                eprintln!("TestHttpServer: {e}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    // `server` is dropped here, which closes the listening socket.
}

fn handle(mut request: tiny_http::Request, seq: u64, shared: &Shared) {
    let method = request.method().as_str().to_ascii_uppercase();
    let (path, query) = match request.url().split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (request.url().to_string(), None),
    };
    let headers = request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
        .collect();
    let mut body = Vec::new();
    if let Err(e) = request.as_reader().read_to_end(&mut body) {
        eprintln!("TestHttpServer: reading the body of {method} {path} failed: {e}");
    }
    let recorded = RecordedRequest {
        method,
        path,
        query,
        headers,
        body,
    };

    let reply = {
        let mut state = shared.lock();
        state.requests.push((seq, recorded.clone()));
        shared.recorded.notify_all();
        route(&mut state, &recorded)
    };

    if !reply.delay.is_zero() {
        std::thread::sleep(reply.delay);
    }
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    let all_headers =
        std::iter::once(("Content-Type".to_string(), reply.content_type)).chain(reply.headers);
    for (k, v) in all_headers {
        match tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            Ok(h) => response.add_header(h),
            Err(()) => eprintln!("TestHttpServer: invalid response header {k:?}: {v:?}"),
        }
    }
    // The client may have given up (e.g. a timeout test); that is not our error.
    let _ = request.respond(response);
}

fn route(state: &mut State, req: &RecordedRequest) -> Reply {
    if let Some(reply) = state
        .queued
        .get_mut(&req.path)
        .and_then(VecDeque::pop_front)
    {
        return reply;
    }
    if let Some(reply) = state.overrides.get(&req.path) {
        return reply.clone();
    }
    if req.path == "/slow" {
        return match query_param(req.query.as_deref(), "ms").map(str::parse::<u64>) {
            None => Reply::text(200, "ok").with_delay(Duration::from_millis(1000)),
            Some(Ok(ms)) => Reply::text(200, "ok").with_delay(Duration::from_millis(ms)),
            Some(Err(e)) => Reply::text(400, format!("bad ms: {e}")),
        };
    }
    if req.path == "/fail" {
        return Reply::text(500, "fail");
    }
    if let Some(code) = req.path.strip_prefix("/status/") {
        return match code.parse::<u16>() {
            Ok(code) if (200..=599).contains(&code) => Reply::status(code),
            _ => Reply::text(400, format!("bad status {code:?} (200..=599)")),
        };
    }
    let is_read = req.method == "GET" || req.method == "HEAD";
    if !is_read {
        return Reply::text(200, "ok");
    }
    match req.path.as_str() {
        "/healthz" => Reply::text(200, "ok"),
        "/json" => Reply::json(200, "{}"),
        "/metrics" => Reply {
            content_type: "text/plain; version=0.0.4; charset=utf-8".to_string(),
            ..Reply::text(200, render_metrics(&state.metrics))
        },
        _ => Reply::text(404, format!("no route for GET {}", req.path)),
    }
}
