//! The real HTTP adapter against a real HTTP server on 127.0.0.1.

use crate::support;

use runbook::adapters::http::RealHttp;
use runbook::adapters::{Call, ErrorKind, HttpAdapter, HttpBody, HttpCall, Rendered};
use runbook::plan::BodyKind;
use std::time::{Duration, Instant};
use support::{Reply, TestHttpServer};

fn get(url: String) -> HttpCall {
    HttpCall {
        method: "GET".into(),
        url: Rendered::plain(url),
        headers: vec![],
        body: None,
        timeout: Some(Duration::from_secs(10)),
    }
}

fn secret(send: &str, display: &str) -> Rendered {
    Rendered {
        send: send.into(),
        display: display.into(),
    }
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn health_endpoint_answers_200_with_elapsed() {
    let server = TestHttpServer::start();
    let resp = RealHttp::default()
        .send(
            &Call::simple("health"),
            &get(format!("{}/healthz", server.url())),
        )
        .await
        .expect("answer");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, "ok");
    assert!(!resp.body_truncated);
    assert_eq!(resp.json, None);
    assert!(resp.elapsed > Duration::ZERO);
    assert!(resp.elapsed < Duration::from_secs(5), "{:?}", resp.elapsed);
    let reqs = server.requests_to("/healthz");
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "GET");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_endpoint_times_out() {
    let server = TestHttpServer::start();
    let mut req = get(format!("{}/slow?ms=3000", server.url()));
    req.timeout = Some(Duration::from_millis(300));
    let t = Instant::now();
    let e = RealHttp::default()
        .send(&Call::simple("slow"), &req)
        .await
        .expect_err("times out");
    let took = t.elapsed();
    eprintln!("slow endpoint vs 300ms timeout: {took:?}: {e}");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_adapter_default_timeout_applies_without_one() {
    let server = TestHttpServer::start();
    let mut req = get(format!("{}/slow?ms=3000", server.url()));
    req.timeout = None;
    let e = RealHttp::new(Some(Duration::from_millis(200)))
        .send(&Call::simple("slow"), &req)
        .await
        .expect_err("times out");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_endpoint_within_its_timeout_answers() {
    let server = TestHttpServer::start();
    let resp = RealHttp::default()
        .send(
            &Call::simple("slow"),
            &get(format!("{}/slow?ms=300", server.url())),
        )
        .await
        .expect("answer");
    assert_eq!(resp.status, 200);
    assert!(
        resp.elapsed >= Duration::from_millis(300),
        "{:?}",
        resp.elapsed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_endpoint_is_an_answer() {
    let server = TestHttpServer::start();
    let http = RealHttp::default();
    let resp = http
        .send(&Call::simple("f"), &get(format!("{}/fail", server.url())))
        .await
        .expect("a 500 is an answer");
    assert_eq!((resp.status, resp.body.as_str()), (500, "fail"));
    let resp = http
        .send(
            &Call::simple("f"),
            &get(format!("{}/status/503", server.url())),
        )
        .await
        .expect("a 503 is an answer");
    assert_eq!(resp.status, 503);
    let resp = http
        .send(
            &Call::simple("f"),
            &get(format!("{}/status/204", server.url())),
        )
        .await
        .expect("a 204 is an answer");
    assert_eq!((resp.status, resp.body.as_str()), (204, ""));
    assert_eq!(resp.json, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_body_is_parsed() {
    let server = TestHttpServer::start();
    server.set_json(
        "/api/region/eu-west",
        serde_json::json!({"state": "draining", "replicas": 3, "healthy": true}),
    );
    let resp = RealHttp::default()
        .send(
            &Call::simple("state"),
            &get(format!("{}/api/region/eu-west", server.url())),
        )
        .await
        .expect("answer");
    assert_eq!(resp.status, 200);
    let json = resp.json.expect("parsed");
    assert_eq!(json["state"], "draining");
    assert_eq!(json["replicas"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_body_head_is_kept_under_the_cap() {
    let server = TestHttpServer::start();
    let big = format!("[{}1]", "1,".repeat(5000));
    server.set_json("/big", &big);
    let mut call = Call::simple("big");
    call.output_cap = 100;
    let resp = RealHttp::default()
        .send(&call, &get(format!("{}/big", server.url())))
        .await
        .expect("answer");
    assert!(resp.body_truncated);
    assert_eq!(resp.body, big[..100]);
    // A truncated body is not parsed.
    assert_eq!(resp.json, None);

    call.output_cap = big.len();
    let resp = RealHttp::default()
        .send(&call, &get(format!("{}/big", server.url())))
        .await
        .expect("answer");
    assert!(!resp.body_truncated);
    assert_eq!(resp.body.len(), big.len());
    assert!(resp.json.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn post_body_and_headers_reach_the_server() {
    let server = TestHttpServer::start();
    let token = "tok-4f9a-SECRET";
    let req = HttpCall {
        method: "POST".into(),
        url: Rendered::plain(format!("{}/api/deploy?region=eu-west", server.url())),
        headers: vec![
            (
                "Authorization".into(),
                secret(&format!("Bearer {token}"), "Bearer ***"),
            ),
            ("X-Runbook-Step".into(), Rendered::plain("deploy")),
        ],
        body: Some(HttpBody {
            kind: BodyKind::Json,
            text: Rendered::plain(r#"{"version":"1.2.3","force":false}"#),
        }),
        timeout: Some(Duration::from_secs(10)),
    };
    let resp = RealHttp::default()
        .send(&Call::simple("deploy"), &req)
        .await
        .expect("answer");
    assert_eq!(resp.status, 200);
    let got = server.wait_for_requests(1, Duration::from_secs(5));
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/api/deploy");
    assert_eq!(r.query_param("region"), Some("eu-west"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(r.header("x-runbook-step"), Some("deploy"));
    assert_eq!(
        r.json(),
        serde_json::json!({"version": "1.2.3", "force": false})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn text_bodies_and_explicit_content_types() {
    let server = TestHttpServer::start();
    let http = RealHttp::default();
    let mut req = HttpCall {
        method: "PUT".into(),
        url: Rendered::plain(format!("{}/a", server.url())),
        headers: vec![],
        body: Some(HttpBody {
            kind: BodyKind::Text,
            text: Rendered::plain("drain now"),
        }),
        timeout: Some(Duration::from_secs(10)),
    };
    http.send(&Call::simple("t"), &req).await.expect("answer");
    req.headers.push((
        "content-type".into(),
        Rendered::plain("application/x-custom"),
    ));
    http.send(&Call::simple("t"), &req).await.expect("answer");
    let got = server.wait_for_requests(2, Duration::from_secs(5));
    assert_eq!(got[0].method, "PUT");
    assert_eq!(got[0].body_str(), "drain now");
    assert_eq!(
        got[0].header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(got[1].header("content-type"), Some("application/x-custom"));
    let types: Vec<_> = got[1]
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .collect();
    assert_eq!(types.len(), 1, "{:?}", got[1].headers);
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_refused_is_unreachable_without_the_secret() {
    let port = closed_port();
    let token = "s3cr3t-token-value";
    let req = HttpCall {
        method: "GET".into(),
        url: secret(
            &format!("http://127.0.0.1:{port}/api/{token}/health?token={token}"),
            &format!("http://127.0.0.1:{port}/api/***/health?token=***"),
        ),
        headers: vec![("X-Api-Key".into(), secret(token, "***"))],
        body: None,
        timeout: Some(Duration::from_secs(5)),
    };
    let e = RealHttp::default()
        .send(&Call::simple("down"), &req)
        .await
        .expect_err("nobody listens");
    eprintln!("connection refused: {e}");
    assert_eq!(e.kind, ErrorKind::Unreachable, "{e}");
    assert!(!e.message.contains(token), "{e}");
    assert!(!format!("{e:?}").contains(token), "{e:?}");
    assert!(e.message.contains("api/***/health"), "{e}");
    assert!(
        e.message.to_lowercase().contains("refused"),
        "the message should say why: {e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_errors_without_the_secret() {
    let token = "s3cr3t\nvalue";
    let req = HttpCall {
        method: "GET".into(),
        url: Rendered::plain("http://127.0.0.1:1/x"),
        headers: vec![("X-Api-Key".into(), secret(token, "***"))],
        body: None,
        timeout: Some(Duration::from_secs(5)),
    };
    let http = RealHttp::default();
    let e = http
        .send(&Call::simple("bad"), &req)
        .await
        .expect_err("invalid header value");
    assert!(e.message.contains("X-Api-Key"), "{e}");
    assert!(!e.message.contains("s3cr3t"), "{e}");

    let req = HttpCall {
        url: secret("not a url s3cr3t", "not a url ***"),
        headers: vec![],
        ..req
    };
    let e = http
        .send(&Call::simple("bad"), &req)
        .await
        .expect_err("invalid URL");
    assert!(e.message.contains("invalid URL"), "{e}");
    assert!(!e.message.contains("s3cr3t"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancellation_aborts_the_request() {
    let server = TestHttpServer::start();
    let mut req = get(format!("{}/slow?ms=5000", server.url()));
    req.timeout = None;
    let call = Call::simple("c");
    let cancel = call.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let t = Instant::now();
    let e = RealHttp::default()
        .send(&call, &req)
        .await
        .expect_err("cancelled");
    assert_eq!(e.kind, ErrorKind::Cancelled, "{e}");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_replies_are_answered_one_by_one() {
    // One request per call: the adapter never retries by itself.
    let server = TestHttpServer::start();
    server.push_reply("/flaky", Reply::status(503));
    let http = RealHttp::default();
    let url = format!("{}/flaky", server.url());
    let a = http
        .send(&Call::simple("f"), &get(url.clone()))
        .await
        .expect("answer");
    assert_eq!(a.status, 503);
    assert_eq!(server.requests_to("/flaky").len(), 1);
    let b = http
        .send(&Call::simple("f"), &get(url))
        .await
        .expect("answer");
    assert_eq!(b.status, 404);
    assert_eq!(server.requests_to("/flaky").len(), 2);
}
