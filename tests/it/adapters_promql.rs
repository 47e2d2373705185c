//! The real PromQL adapter against a real Prometheus (Debian's `prometheus`,
//! started on 127.0.0.1 by the harness, scraping metrics this test sets),
//! and against a fake one for the failure modes.
//!
//! The harness panics when `prometheus` is missing and
//! `RUNBOOK_REQUIRE_PROMETHEUS` is set (CI); otherwise it warns loudly.

use crate::support;

use runbook::adapters::promql::RealPromql;
use runbook::adapters::{
    Call, ErrorKind, PromSample, PromqlAdapter, PromqlQuery, PromqlResult, Rendered,
};
use std::time::{Duration, Instant};
use support::{Prometheus, Reply, TestHttpServer};

fn query(base: &str, q: &str) -> PromqlQuery {
    PromqlQuery {
        query: Rendered::plain(q),
        base_url: Some(base.to_string()),
        timeout: Some(Duration::from_secs(10)),
    }
}

async fn ask(base: &str, q: &str) -> PromqlResult {
    RealPromql::default()
        .query(&Call::simple("probe"), &query(base, q))
        .await
        .unwrap_or_else(|e| panic!("query {q:?} failed: {e}"))
        .result
}

fn samples(r: PromqlResult) -> Vec<PromSample> {
    match r {
        PromqlResult::Vector { samples } => samples,
        other => panic!("expected a vector, got {other:?}"),
    }
}

fn scalar(r: PromqlResult) -> f64 {
    match r {
        PromqlResult::Scalar { value } => value,
        other => panic!("expected a scalar, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn instant_queries_against_a_real_prometheus() {
    let Some(prom) = Prometheus::start_with_metrics(&[
        ("runbook_t_error_rate{region=\"eu-west\"}", 0.25),
        ("runbook_t_error_rate{region=\"us-east\"}", 0.01),
        ("runbook_t_broken", f64::NAN),
        ("runbook_t_unbounded", f64::INFINITY),
    ]) else {
        return;
    };
    let base = prom.url();
    prom.wait_for_series("runbook_t_error_rate", Duration::from_secs(30));
    prom.wait_for_series("runbook_t_unbounded", Duration::from_secs(30));

    // A single series: a one-sample vector with its labels.
    let t = Instant::now();
    let answer = RealPromql::default()
        .query(
            &Call::simple("probe"),
            &query(&base, "runbook_t_error_rate{region=\"eu-west\"}"),
        )
        .await
        .expect("answer");
    eprintln!(
        "single-sample query: {:?} (elapsed field {:?})",
        t.elapsed(),
        answer.elapsed
    );
    let s = samples(answer.result);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].value, 0.25);
    assert_eq!(s[0].labels["region"], "eu-west");
    assert_eq!(s[0].labels["__name__"], "runbook_t_error_rate");
    assert_eq!(s[0].labels["job"], Prometheus::JOB);

    // No series: an empty vector (the executor's no_data).
    assert!(samples(ask(&base, "runbook_t_never_set").await).is_empty());

    // Several series: several samples (the executor's error, not a guess).
    let mut s = samples(ask(&base, "runbook_t_error_rate").await);
    s.sort_by(|a, b| a.labels["region"].cmp(&b.labels["region"]));
    let got: Vec<(&str, f64)> = s
        .iter()
        .map(|s| (s.labels["region"].as_str(), s.value))
        .collect();
    assert_eq!(got, [("eu-west", 0.25), ("us-east", 0.01)]);

    // Characters that need encoding (braces, quotes, regex, pipes, spaces, +).
    let s = samples(
        ask(
            &base,
            "sum by (region) (runbook_t_error_rate{region=~\"eu-.*|us-east\"}) + 0",
        )
        .await,
    );
    assert_eq!(s.len(), 2, "{s:?}");
    let s = samples(ask(&base, "max(runbook_t_error_rate) * 4").await);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].value, 1.0);
    assert!(s[0].labels.is_empty(), "{:?}", s[0].labels);

    // Scalars.
    assert_eq!(
        scalar(ask(&base, "scalar(runbook_t_error_rate{region=\"eu-west\"})").await),
        0.25
    );
    assert_eq!(scalar(ask(&base, "1 + 1").await), 2.0);
    // scalar() of several series is NaN.
    assert!(scalar(ask(&base, "scalar(runbook_t_error_rate)").await).is_nan());

    // NaN and infinities.
    assert!(scalar(ask(&base, "0/0").await).is_nan());
    assert_eq!(scalar(ask(&base, "1/0").await), f64::INFINITY);
    assert_eq!(scalar(ask(&base, "-1/0").await), f64::NEG_INFINITY);
    let s = samples(ask(&base, "runbook_t_broken").await);
    assert_eq!(s.len(), 1);
    assert!(s[0].value.is_nan(), "{s:?}");
    let s = samples(ask(&base, "runbook_t_unbounded").await);
    assert_eq!(s[0].value, f64::INFINITY);

    // Range vectors and strings are reported, not guessed at.
    assert_eq!(
        ask(&base, "runbook_t_error_rate[1m]").await,
        PromqlResult::Other {
            result_type: "matrix".into()
        }
    );
    assert_eq!(
        ask(&base, "\"hello\"").await,
        PromqlResult::Other {
            result_type: "string".into()
        }
    );

    // A bad query: BadResponse with Prometheus' own error.
    let e = RealPromql::default()
        .query(&Call::simple("probe"), &query(&base, "this is not promql"))
        .await
        .expect_err("bad query");
    eprintln!("bad query: {e}");
    assert_eq!(e.kind, ErrorKind::BadResponse, "{e}");
    assert!(e.message.contains("bad_data"), "{e}");
    assert!(e.message.contains("parse error"), "{e}");
    assert!(e.message.contains("this is not promql"), "{e}");

    // The base URL from the adapter's settings (with a trailing slash).
    let from_config = RealPromql::new(Some(format!("{base}/")), None);
    let mut q = query(&base, "runbook_t_error_rate{region=\"us-east\"}");
    q.base_url = None;
    let s = samples(
        from_config
            .query(&Call::simple("probe"), &q)
            .await
            .expect("answer")
            .result,
    );
    assert_eq!(s[0].value, 0.01);

    // A value changed by the test is seen at the next scrape.
    prom.set_metric("runbook_t_error_rate{region=\"eu-west\"}", 0.5);
    let t = Instant::now();
    loop {
        let s = samples(ask(&base, "runbook_t_error_rate{region=\"eu-west\"}").await);
        if s.len() == 1 && s[0].value == 0.5 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the new value never showed: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("changed value seen by the adapter after {:?}", t.elapsed());
}

#[tokio::test]
async fn no_prometheus_configured_says_where_to_set_it() {
    let mut q = query("", "up");
    q.base_url = None;
    let e = RealPromql::default()
        .query(&Call::simple("probe"), &q)
        .await
        .expect_err("not configured");
    assert_eq!(e.kind, ErrorKind::Unreachable);
    assert!(e.message.contains("prometheus.url"), "{e}");
    assert!(e.message.contains("runbook.yaml"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_prometheus_hides_credentials() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    let e = RealPromql::default()
        .query(
            &Call::simple("probe"),
            &query(&format!("http://admin:pa55word@127.0.0.1:{port}"), "up"),
        )
        .await
        .expect_err("nobody listens");
    eprintln!("unreachable: {e}");
    assert_eq!(e.kind, ErrorKind::Unreachable, "{e}");
    assert!(!e.message.contains("pa55word"), "{e}");
    assert!(!e.message.contains("admin"), "{e}");
    assert!(e.message.contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_that_are_not_the_api_are_bad_responses() {
    let server = TestHttpServer::start();
    let base = server.url();
    // Not JSON (a 404 text, as a server without the API answers).
    server.set_reply("/api/v1/query", Reply::text(404, "404 page not found"));
    let e = RealPromql::default()
        .query(&Call::simple("probe"), &query(&base, "up"))
        .await
        .expect_err("404");
    assert_eq!(e.kind, ErrorKind::BadResponse, "{e}");
    assert!(e.message.contains("404"), "{e}");

    // JSON, but not the API's.
    server.set_json("/api/v1/query", r#"{"hello": "world"}"#);
    let e = RealPromql::default()
        .query(&Call::simple("probe"), &query(&base, "up"))
        .await
        .expect_err("not the API");
    assert_eq!(e.kind, ErrorKind::BadResponse, "{e}");

    // The API's error form, with an error status.
    server.set_reply(
        "/api/v1/query",
        Reply::json(
            503,
            r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
        ),
    );
    let e = RealPromql::default()
        .query(&Call::simple("probe"), &query(&base, "up"))
        .await
        .expect_err("error answer");
    assert_eq!(e.kind, ErrorKind::BadResponse, "{e}");
    assert!(e.message.contains("timeout: query timed out"), "{e}");

    // The query is sent percent-encoded, in a form body.
    let got = server.requests_to("/api/v1/query");
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].body_str(), "query=up");
    server.clear_requests();
    server.set_json(
        "/api/v1/query",
        r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#,
    );
    let q = "rate(x{a=\"b c\"}[1m]) + 1";
    let r = ask(&base, q).await;
    assert_eq!(scalar(r), f64::INFINITY);
    assert_eq!(
        server.requests_to("/api/v1/query")[0].body_str(),
        format!("query={}", support::url_encode(q))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_prometheus_times_out() {
    let server = TestHttpServer::start();
    server.set_reply(
        "/api/v1/query",
        Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
        .with_delay(Duration::from_secs(3)),
    );
    let mut q = query(&server.url(), "up");
    q.timeout = Some(Duration::from_millis(300));
    let t = Instant::now();
    let e = RealPromql::default()
        .query(&Call::simple("probe"), &q)
        .await
        .expect_err("times out");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
}
