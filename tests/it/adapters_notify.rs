//! The real notify adapter against a real webhook receiver on 127.0.0.1
//! that records what it got.

use crate::support;

use indexmap::IndexMap;
use runbook::adapters::notify::RealNotify;
use runbook::adapters::{Call, ErrorKind, NotifyAdapter, NotifyRequest, NotifyTarget, Rendered};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Reply, TestHttpServer};

const SECRET: &str = "xoxb-SECRET-9f8e7d";

fn secret(send: &str, display: &str) -> Rendered {
    Rendered {
        send: send.into(),
        display: display.into(),
    }
}

fn request(channel: &str, target: NotifyTarget, text: Rendered) -> NotifyRequest {
    NotifyRequest {
        channel: channel.into(),
        target,
        text,
        fields: IndexMap::new(),
        timeout: Some(Duration::from_secs(10)),
    }
}

fn call(step: &str) -> Call {
    let mut c = Call::simple(step);
    c.run_id = "run-20240501-abc".into();
    c.runbook = "drain-region".into();
    c
}

/// A Slack incoming-webhook URL whose path is the secret.
fn slack_url(server: &TestHttpServer) -> Rendered {
    secret(
        &format!("{}/services/T000/B000/{SECRET}", server.url()),
        &format!("{}/services/T000/B000/***", server.url()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_gets_a_text_payload() {
    let server = TestHttpServer::start();
    let req = request(
        "ops-slack",
        NotifyTarget::Slack {
            url: slack_url(&server),
        },
        Rendered::plain("Draining eu-west: 3 replicas \"left\"\nsee runbook"),
    );
    let receipt = RealNotify::default()
        .send(&call("announce"), &req)
        .await
        .expect("posted");
    assert_eq!(receipt.status, Some(200));
    let got = server.wait_for_requests(1, Duration::from_secs(5));
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, format!("/services/T000/B000/{SECRET}"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        serde_json::json!({"text": "Draining eu-west: 3 replicas \"left\"\nsee runbook"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_gets_the_run_step_channel_text_and_fields_with_headers() {
    let server = TestHttpServer::start();
    let mut req = request(
        "pager",
        NotifyTarget::Webhook {
            url: Rendered::plain(format!("{}/hooks/pager?src=runbook", server.url())),
            headers: vec![
                (
                    "Authorization".into(),
                    secret(&format!("Bearer {SECRET}"), "Bearer ***"),
                ),
                ("X-Team".into(), Rendered::plain("sre")),
            ],
        },
        Rendered::plain("eu-west drained"),
    );
    req.fields
        .insert("region".into(), Rendered::plain("eu-west"));
    req.fields.insert("replicas".into(), Rendered::plain("3"));
    let receipt = RealNotify::default()
        .send(&call("page-oncall"), &req)
        .await
        .expect("posted");
    assert_eq!(receipt.status, Some(200));
    let got = server.wait_for_requests(1, Duration::from_secs(5));
    let r = &got[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/hooks/pager")
    );
    assert_eq!(r.query_param("src"), Some("runbook"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(r.header("x-team"), Some("sre"));
    assert_eq!(
        r.json(),
        serde_json::json!({
            "runbook": "drain-region",
            "run_id": "run-20240501-abc",
            "step": "page-oncall",
            "channel": "pager",
            "text": "eu-west drained",
            "fields": {"region": "eu-west", "replicas": "3"},
        })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_out_item_is_in_the_webhook_payload() {
    let server = TestHttpServer::start();
    let mut c = call("drain-each");
    c.item = Some("eu-west".into());
    let req = request(
        "hook",
        NotifyTarget::Webhook {
            url: Rendered::plain(format!("{}/hook", server.url())),
            headers: vec![],
        },
        Rendered::plain("done"),
    );
    RealNotify::default().send(&c, &req).await.expect("posted");
    let got = server.wait_for_requests(1, Duration::from_secs(5));
    assert_eq!(got[0].json()["item"], "eu-west");
    assert_eq!(got[0].json()["step"], "drain-each");
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_values_are_sent_but_never_shown() {
    let server = TestHttpServer::start();
    let mut req = request(
        "hook",
        NotifyTarget::Webhook {
            url: Rendered::plain(format!("{}/hook", server.url())),
            headers: vec![],
        },
        secret(&format!("token is {SECRET}"), "token is ***"),
    );
    req.fields.insert("token".into(), secret(SECRET, "***"));
    RealNotify::default()
        .send(&call("s"), &req)
        .await
        .expect("posted");
    let got = server.wait_for_requests(1, Duration::from_secs(5));
    // The wire gets the send form (the receiver is trusted with it).
    assert_eq!(got[0].json()["text"], format!("token is {SECRET}"));
    assert_eq!(got[0].json()["fields"]["token"], SECRET);
    // Debug of the request shows only display forms.
    assert!(!format!("{req:?}").contains(SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_2xx_status_is_an_answer() {
    let server = TestHttpServer::start();
    server.set_status("/services/T000/B000/xoxb-SECRET-9f8e7d", 502);
    let receipt = RealNotify::default()
        .send(
            &call("announce"),
            &request(
                "slack",
                NotifyTarget::Slack {
                    url: slack_url(&server),
                },
                Rendered::plain("hi"),
            ),
        )
        .await
        .expect("a 502 is an answer");
    assert_eq!(receipt.status, Some(502));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_webhook_is_an_error_without_secrets() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    let base = format!("http://127.0.0.1:{port}");
    let notify = RealNotify::default();
    let slack = request(
        "ops-slack",
        NotifyTarget::Slack {
            url: secret(
                &format!("{base}/services/T000/B000/{SECRET}"),
                &format!("{base}/services/T000/B000/***"),
            ),
        },
        Rendered::plain("hi"),
    );
    let e = notify
        .send(&call("announce"), &slack)
        .await
        .expect_err("nobody listens");
    eprintln!("unreachable slack: {e}");
    assert_eq!(e.kind, ErrorKind::Unreachable, "{e}");
    assert!(e.message.contains("ops-slack"), "{e}");
    assert!(!e.message.contains(SECRET), "{e}");
    assert!(!format!("{e:?}").contains(SECRET), "{e:?}");

    let hook = request(
        "pager",
        NotifyTarget::Webhook {
            url: secret(
                &format!("{base}/hook?key={SECRET}"),
                &format!("{base}/hook?key=***"),
            ),
            headers: vec![(
                "Authorization".into(),
                secret(&format!("Bearer {SECRET}"), "Bearer ***"),
            )],
        },
        secret(SECRET, "***"),
    );
    let e = notify
        .send(&call("page"), &hook)
        .await
        .expect_err("nobody listens");
    assert_eq!(e.kind, ErrorKind::Unreachable, "{e}");
    assert!(!e.message.contains(SECRET), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_webhook_times_out() {
    let server = TestHttpServer::start();
    server.set_reply(
        "/hook",
        Reply::text(200, "ok").with_delay(Duration::from_secs(3)),
    );
    let mut req = request(
        "hook",
        NotifyTarget::Webhook {
            url: Rendered::plain(format!("{}/hook", server.url())),
            headers: vec![],
        },
        Rendered::plain("hi"),
    );
    req.timeout = Some(Duration::from_millis(300));
    let t = Instant::now();
    let e = RealNotify::default()
        .send(&call("n"), &req)
        .await
        .expect_err("times out");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
}

/// A console that tests can read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

#[tokio::test]
async fn the_console_shows_the_display_form_with_the_channel() {
    let console = Captured::default();
    let notify = RealNotify::default().with_console(Arc::new(Mutex::new(console.clone())));
    let receipt = notify
        .send(
            &call("tell"),
            &request(
                "ops",
                NotifyTarget::Console,
                secret(
                    &format!("draining eu-west with {SECRET}"),
                    "draining eu-west with ***",
                ),
            ),
        )
        .await
        .expect("printed");
    assert_eq!(receipt.status, None);
    assert_eq!(console.text(), "[ops] draining eu-west with ***\n");
    assert!(!console.text().contains(SECRET));
}
