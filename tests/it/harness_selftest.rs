//! Proves that the shared test harness in `tests/it/support` works, with real
//! sockets and a real Prometheus. If one of these fails, fix the harness
//! before trusting any other integration test.

use crate::support;

use std::time::{Duration, Instant};

use support::{
    http_get, http_post, http_request, run_cli, runbook_bin, temp_dir, url_encode, Prometheus,
    Reply, TestHttpServer,
};

#[test]
fn healthz_and_builtin_routes() {
    let server = TestHttpServer::start();
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert_ne!(server.addr().port(), 0);

    let r = http_get(&format!("{}/healthz", server.url()));
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let head = http_request("HEAD", &format!("{}/healthz", server.url()), &[], b"")
        .expect("HEAD /healthz");
    assert_eq!((head.status, head.body.len()), (200, 0));

    assert_eq!(http_get(&format!("{}/fail", server.url())).status, 500);
    assert_eq!(
        http_get(&format!("{}/status/503", server.url())).status,
        503
    );
    assert_eq!(
        http_get(&format!("{}/status/204", server.url())).status,
        204
    );
    assert_eq!(
        http_get(&format!("{}/status/abc", server.url())).status,
        400
    );
    assert_eq!(http_get(&format!("{}/nope", server.url())).status, 404);

    let json = http_get(&format!("{}/json", server.url()));
    assert_eq!(json.status, 200);
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.json(), serde_json::json!({}));
}

#[test]
fn records_post_and_put_with_headers_and_body_in_order() {
    let server = TestHttpServer::start();
    let payload = r#"{"text":"drain eu-west: started"}"#;
    let r = http_request(
        "POST",
        &format!("{}/hooks/slack?channel=ops", server.url()),
        &[
            ("Content-Type", "application/json"),
            ("X-Runbook-Id", "rb-42"),
        ],
        payload.as_bytes(),
    )
    .expect("POST to the test server");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));

    let r = http_request(
        "PUT",
        &format!("{}/regions/eu-west/drain", server.url()),
        &[],
        b"",
    )
    .expect("PUT to the test server");
    assert_eq!(r.status, 200);
    http_get(&format!("{}/healthz", server.url()));

    let reqs = server.requests();
    let summary: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("POST", "/hooks/slack"),
            ("PUT", "/regions/eu-west/drain"),
            ("GET", "/healthz")
        ]
    );
    let post = &reqs[0];
    assert_eq!(post.body_str(), payload);
    assert_eq!(post.json()["text"], "drain eu-west: started");
    assert_eq!(post.header("x-runbook-id"), Some("rb-42"));
    assert_eq!(post.header("CONTENT-TYPE"), Some("application/json"));
    assert_eq!(post.query.as_deref(), Some("channel=ops"));
    assert_eq!(post.query_param("channel"), Some("ops"));
    assert!(reqs[1].body.is_empty());

    assert_eq!(server.requests_to("/hooks/slack").len(), 1);
    assert_eq!(server.requests_to("hooks/slack").len(), 1);
    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[test]
fn large_body_with_expect_continue_is_recorded_whole() {
    // curl sends `Expect: 100-continue` for bodies over 1 KiB.
    let server = TestHttpServer::start();
    let body = "x".repeat(200_000);
    let r = http_request(
        "POST",
        &format!("{}/big", server.url()),
        &[("Expect", "100-continue")],
        body.as_bytes(),
    )
    .expect("POST a large body");
    assert_eq!(r.status, 200);
    assert_eq!(server.requests()[0].body.len(), body.len());
}

#[test]
fn slow_delays_without_blocking_other_requests() {
    let server = TestHttpServer::start();
    let url = server.url();
    let slow = std::thread::spawn(move || {
        let t = Instant::now();
        let r = http_get(&format!("{url}/slow?ms=700"));
        (r.status, t.elapsed())
    });
    // While /slow sleeps, another request is answered at once.
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    assert_eq!(http_get(&format!("{}/healthz", server.url())).status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(400),
        "/healthz took {:?} while /slow was running",
        t.elapsed()
    );
    let (status, took) = slow.join().expect("slow request thread");
    assert_eq!(status, 200);
    assert!(
        took >= Duration::from_millis(700),
        "/slow?ms=700 took {took:?}"
    );
    assert!(took < Duration::from_secs(5), "/slow?ms=700 took {took:?}");
    assert_eq!(server.requests()[0].query_param("ms"), Some("700"));
}

#[test]
fn overrides_and_queued_replies() {
    let server = TestHttpServer::start();
    server.set_json("/json", serde_json::json!({"healthy": true, "replicas": 3}));
    let r = http_get(&format!("{}/json", server.url()));
    assert_eq!(
        r.json(),
        serde_json::json!({"healthy": true, "replicas": 3})
    );

    server.set_json("/api/region/eu", r#"{"state":"draining"}"#);
    let r = http_get(&format!("{}/api/region/eu?verbose=1", server.url()));
    assert_eq!(
        (r.status, r.json()["state"].as_str()),
        (200, Some("draining"))
    );

    // An override applies to every method, so a webhook can be made to fail.
    server.set_status("/hooks/pager", 502);
    let r = http_post(
        &format!("{}/hooks/pager", server.url()),
        "text/plain",
        b"hi",
    );
    assert_eq!(r.status, 502);
    assert_eq!(server.requests_to("/hooks/pager")[0].body_str(), "hi");
    server.set_status("/healthz", 503);
    assert_eq!(http_get(&format!("{}/healthz", server.url())).status, 503);
    server.clear_reply("/healthz");
    assert_eq!(http_get(&format!("{}/healthz", server.url())).status, 200);

    // Queued replies are one-shot and come first: a flaky endpoint.
    server.push_reply("/flaky", Reply::status(503));
    server.push_reply(
        "/flaky",
        Reply::text(429, "slow down").with_header("Retry-After", "1"),
    );
    let a = http_post(&format!("{}/flaky", server.url()), "text/plain", b"");
    let b = http_post(&format!("{}/flaky", server.url()), "text/plain", b"");
    let c = http_post(&format!("{}/flaky", server.url()), "text/plain", b"");
    assert_eq!((a.status, b.status, c.status), (503, 429, 200));
    assert_eq!(b.header("retry-after"), Some("1"));
    assert_eq!(b.text(), "slow down");

    // A delayed reply.
    server.set_reply(
        "/lag",
        Reply::text(200, "late").with_delay(Duration::from_millis(300)),
    );
    let t = Instant::now();
    assert_eq!(http_get(&format!("{}/lag", server.url())).text(), "late");
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[test]
#[should_panic(expected = "invalid JSON")]
fn set_json_rejects_invalid_json() {
    TestHttpServer::start().set_json("/json", "{not json");
}

#[test]
fn metrics_endpoint_serves_prometheus_text() {
    let server = TestHttpServer::start();
    server.set_metric("error_rate{region=\"eu-west\"}", 0.25);
    server.set_metric("queue_depth", 12.0);
    server.set_metric("weird", f64::INFINITY);
    let r = http_get(&format!("{}/metrics", server.url()));
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")));
    let text = r.text();
    assert!(
        text.contains("error_rate{region=\"eu-west\"} 0.25\n"),
        "{text}"
    );
    assert!(text.contains("queue_depth 12\n"), "{text}");
    assert!(text.contains("weird +Inf\n"), "{text}");
    server.remove_metric("queue_depth");
    assert!(!http_get(&format!("{}/metrics", server.url()))
        .text()
        .contains("queue_depth"));
}

#[test]
fn wait_for_requests_sees_requests_from_another_thread() {
    let server = TestHttpServer::start();
    let url = server.url();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        http_post(&format!("{url}/hook"), "application/json", b"{}");
        http_post(&format!("{url}/hook"), "application/json", b"[]");
    });
    let reqs = server.wait_for_requests(2, Duration::from_secs(10));
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].body_str(), "[]");
    sender.join().expect("sender thread");
}

#[test]
#[should_panic(expected = "waited")]
fn wait_for_requests_times_out_loudly() {
    TestHttpServer::start().wait_for_requests(1, Duration::from_millis(100));
}

#[test]
fn server_stops_on_drop() {
    let server = TestHttpServer::start();
    let url = format!("{}/healthz", server.url());
    assert_eq!(http_get(&url).status, 200);
    drop(server);
    let answer = http_request("GET", &url, &[], b"");
    assert!(
        answer.is_err(),
        "server still answers after drop: {answer:?}"
    );
}

#[tokio::test]
async fn server_works_from_a_tokio_test() {
    let server = TestHttpServer::start();
    let url = server.url();
    let r = tokio::task::spawn_blocking(move || {
        http_post(
            &format!("{url}/hooks/slack"),
            "application/json",
            br#"{"a":1}"#,
        )
    })
    .await
    .expect("blocking task");
    assert_eq!(r.status, 200);
    assert_eq!(server.requests()[0].json()["a"], 1);
}

/// The engine talks HTTP with reqwest (keep-alive, connection pool): the
/// server must serve many requests over reused connections, concurrently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_works_with_a_pooled_reqwest_client() {
    // reqwest is built with `rustls-no-provider`; a client needs a provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = TestHttpServer::start();
    server.set_json("/api/status", r#"{"ready":true}"#);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client");
    let base = server.url();

    let slow = tokio::spawn({
        let (client, base) = (client.clone(), base.clone());
        async move {
            let r = client.get(format!("{base}/slow?ms=300")).send().await;
            r.expect("GET /slow").status().as_u16()
        }
    });
    for i in 0..20 {
        let r = client
            .post(format!("{base}/hooks/slack"))
            .json(&serde_json::json!({"n": i}))
            .send()
            .await
            .expect("POST /hooks/slack");
        assert_eq!(r.status().as_u16(), 200);
        let r = client
            .get(format!("{base}/api/status"))
            .send()
            .await
            .expect("GET /api/status");
        let body: serde_json::Value = r.json().await.expect("JSON body");
        assert_eq!(body["ready"], true);
    }
    let r = client.get(format!("{base}/fail")).send().await;
    assert_eq!(r.expect("GET /fail").status().as_u16(), 500);
    assert_eq!(slow.await.expect("slow task"), 200);

    let hooks = server.requests_to("/hooks/slack");
    let ns: Vec<i64> = hooks
        .iter()
        .map(|r| r.json()["n"].as_i64().expect("n"))
        .collect();
    assert_eq!(ns, (0..20).collect::<Vec<i64>>());
}

#[test]
fn url_encode_escapes_promql() {
    assert_eq!(
        url_encode("rate(x{a=\"b c\"}[1m])"),
        "rate%28x%7Ba%3D%22b%20c%22%7D%5B1m%5D%29"
    );
    assert_eq!(url_encode("A-z_0.9~"), "A-z_0.9~");
}

#[test]
fn cli_helpers_find_and_run_the_binary() {
    let bin = runbook_bin();
    assert!(bin.is_file(), "{} is not a file", bin.display());
    let dir = temp_dir();
    assert!(dir.path().is_dir());
    let out = run_cli(["--help"], dir.path());
    assert!(
        out.status.code().is_some(),
        "runbook was killed by a signal: {out:?}"
    );
}

#[test]
fn prometheus_scrapes_values_set_by_the_test() {
    let Some(prom) = Prometheus::start() else {
        return;
    };
    let ready = http_get(&format!("{}/-/ready", prom.url()));
    assert_eq!(ready.status, 200);

    prom.set_metric("runbook_selftest_error_rate{region=\"eu-west\"}", 0.42);
    prom.set_metric("runbook_selftest_error_rate{region=\"us-east\"}", 0.01);
    let t = Instant::now();
    let series = prom.wait_for_series(
        "runbook_selftest_error_rate{region=\"eu-west\"}",
        Duration::from_secs(30),
    );
    eprintln!("series visible {:?} after set_metric", t.elapsed());
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].value, 0.42);
    assert_eq!(series[0].metric["region"], "eu-west");
    assert_eq!(series[0].metric["job"], Prometheus::JOB);

    // The raw HTTP API gives the same value the test set.
    let url = format!(
        "{}/api/v1/query?query={}",
        prom.url(),
        url_encode("runbook_selftest_error_rate{region=\"eu-west\"}")
    );
    let body = http_get(&url).json();
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["result"][0]["value"][1], "0.42");

    // PromQL over both series, and a change picked up at the next scrape.
    let max = prom.wait_for_value(
        "max(runbook_selftest_error_rate)",
        0.42,
        Duration::from_secs(30),
    );
    assert!(max.metric.is_empty());
    prom.set_metric("runbook_selftest_error_rate{region=\"eu-west\"}", 0.05);
    let t = Instant::now();
    prom.wait_for_value(
        "runbook_selftest_error_rate{region=\"eu-west\"}",
        0.05,
        Duration::from_secs(30),
    );
    eprintln!("changed value visible after {:?}", t.elapsed());

    assert!(prom.query("this is not promql").is_err());
    assert_eq!(prom.query("1 + 1").expect("scalar query")[0].value, 2.0);
}

#[test]
fn prometheus_start_with_metrics_has_data_at_once() {
    let Some(prom) = Prometheus::start_with_metrics(&[("runbook_selftest_up_nodes", 7.0)]) else {
        return;
    };
    let samples = prom
        .query("runbook_selftest_up_nodes")
        .expect("query right after start");
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert_eq!(samples[0].value, 7.0);
}

#[test]
#[should_panic(expected = "did not return")]
fn prometheus_wait_times_out_loudly() {
    let Some(prom) = Prometheus::start() else {
        // Keep the `should_panic` contract when Prometheus is absent locally.
        panic!("did not return: prometheus is not installed");
    };
    prom.wait_for_series("runbook_selftest_never_set", Duration::from_millis(500));
}
