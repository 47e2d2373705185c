//! The web page in a real headless Chromium, driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`; the test fails without
//! them): log in, the run list shows the run, the run page shows the graph
//! with the waiting step, the Approve button (with its reason) resumes the
//! run, the live log receives the rest, the graph marks the failed step and
//! the undone one, and the journal records who approved and why.
//!
//! The drill report (`runbook test --html DIR`) is opened from its files.
//!
//! `RUNBOOK_UPDATE_SCREENSHOTS=1` writes the screenshots to
//! `docs/serve-runs.png`, `docs/serve-approve.png`, `docs/serve-run.png`,
//! `docs/drill-report.png` and `docs/drill-run.png`.

use crate::support::serve::{free_port, require, Killed, Serve, ALICE, TRIGGER};
use base64::Engine;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One WebDriver request (chromedriver keeps connections open, so not the
/// raw `Connection: close` client): status and JSON body.
fn webdriver(method: &str, url: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let client = reqwest::Client::new();
        let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut req = client.request(m, url).timeout(Duration::from_secs(60));
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let v: Value = r.json().await.map_err(|e| e.to_string())?;
        Ok((status, v))
    })
}

/// A WebDriver session on chromedriver.
struct Browser {
    base: String,
    session: String,
    _driver: Killed,
    _profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    fn start() -> Browser {
        let chromium = require("chromium", "chromium");
        let driver = require("chromedriver", "chromium-driver");
        let port = free_port();
        let child = Killed(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let base = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        while !webdriver("GET", &format!("{base}/status"), None)
            .is_ok_and(|(_, v)| v["value"]["ready"] == true)
        {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "chromedriver not ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--window-size=1280,900",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let (_, v) =
            webdriver("POST", &format!("{base}/session"), Some(&caps)).expect("new session");
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        Browser {
            base,
            session,
            _driver: child,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let body = (method != "GET").then_some(&body);
        let (status, v) = webdriver(method, &url, body).expect("webdriver call");
        (status, v["value"].clone())
    }

    /// Runs `script` in the page; what it returns.
    fn execute(&self, script: &str) -> Value {
        let (s, v) = self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        );
        assert_eq!(s, 200, "{v}");
        v
    }

    fn go(&self, url: &str) {
        let (s, v) = self.call("POST", "/url", json!({ "url": url }));
        assert_eq!(s, 200, "{v}");
    }

    fn find(&self, css: &str) -> Option<String> {
        let (s, v) = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        (s == 200).then(|| {
            v[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("{css}: {v}"))
                .to_string()
        })
    }

    /// Waits for an element (the page may still be loading, or the live
    /// log still receiving).
    fn wait_for(&self, css: &str, limit: Duration) -> String {
        let t = Instant::now();
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            assert!(
                t.elapsed() < limit,
                "no `{css}` on the page after {limit:?}; page:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_in(&self, element: &str, text: &str) {
        let (s, v) = self.call(
            "POST",
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        );
        assert_eq!(s, 200, "{v}");
    }

    fn click(&self, element: &str) {
        let (s, v) = self.call("POST", &format!("/element/{element}/click"), json!({}));
        assert_eq!(s, 200, "{v}");
    }

    fn source(&self) -> String {
        self.call("GET", "/source", json!({}))
            .1
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn screenshot(&self, docs_name: &str) {
        let (s, v) = self.call("GET", "/screenshot", json!({}));
        assert_eq!(s, 200);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        if std::env::var_os("RUNBOOK_UPDATE_SCREENSHOTS").is_some() {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs")
                .join(docs_name);
            std::fs::write(path, png).unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = webdriver(
            "DELETE",
            &format!("{}/session/{}", self.base, self.session),
            None,
        );
    }
}

#[test]
fn approve_from_the_page_resumes_the_run_and_the_journal_says_who() {
    let s = Serve::start(&super::serve_api::files(), &[]);
    let r = s.request(
        "POST",
        "/runs",
        Some(TRIGGER),
        &[("Content-Type", "application/json")],
        br#"{"route":"api","inputs":{"service":"api"}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["run_id"].as_str().unwrap().to_string();
    s.wait_pending(&id);

    let b = Browser::start();
    // Not logged in: the login form.
    b.go(&format!("{}/", s.url));
    let token = b.wait_for("input[name=token]", Duration::from_secs(10));
    b.type_in(&token, ALICE);
    let submit = b.wait_for("form[action='/login'] button", Duration::from_secs(5));
    b.click(&submit);

    // The run list shows the run, running.
    b.wait_for(
        &format!("tr.run.running[data-run='{id}']"),
        Duration::from_secs(10),
    );
    assert!(b.source().contains("fix_api"));
    b.screenshot("serve-runs.png");

    // The run page: the graph, the step waiting, the question.
    b.go(&format!("{}/runs/{id}", s.url));
    b.wait_for(
        "svg.graph g.node.waiting[data-node='gate']",
        Duration::from_secs(10),
    );
    b.wait_for(
        "svg.graph g.node.succeeded[data-node='prepare']",
        Duration::from_secs(5),
    );
    assert!(b.source().contains("Restart api?"));
    let reason = b.wait_for(
        ".approval[data-key='gate'] input[name=reason]",
        Duration::from_secs(5),
    );
    b.type_in(&reason, "dashboards agree");
    b.screenshot("serve-approve.png");
    let approve = b.wait_for(
        ".approval[data-key='gate'] button.approve",
        Duration::from_secs(5),
    );
    b.click(&approve);

    // The run resumes; the log and the graph show how it ended: `restart`
    // failed, `prepare` undone.
    b.wait_for("tr.ev.run_finished", Duration::from_secs(30));
    b.wait_for(
        "svg.graph g.node.failed[data-node='restart']",
        Duration::from_secs(10),
    );
    b.wait_for(
        "svg.graph g.undo.undone[data-undo='prepare']",
        Duration::from_secs(10),
    );
    let page = b.source();
    assert!(page.contains("step <b>restart</b> failed"), "{page}");
    assert!(page.contains("gate approved by alice"), "{page}");
    b.screenshot("serve-run.png");

    let j = s.journal(&id);
    assert!(
        j.contains(r#""kind":"approval_given","by":"alice","reason":"dashboards agree""#),
        "{j}"
    );
}

/// A question asked while the run page is open arrives over the live log:
/// its form appears without the page being reloaded (a marker set in the
/// page survives), and approving from it resumes the run.
#[test]
fn a_question_asked_while_the_page_is_open_gets_its_form_without_a_reload() {
    let runbook = "runbook later_gate {\n  step work {\n    run \"sleep 3\" readonly\n  }\n  \
                   step gate {\n    approve \"Go on?\" timeout 2m\n  }\n}\n";
    let routes = "routes:\n  - name: later\n    alertname: Never\n    runbook: later.runbook\n    mode: run\n";
    let s = Serve::start(&[("later.runbook", runbook), ("routes.yaml", routes)], &[]);
    let b = Browser::start();
    b.go(&format!("{}/login", s.url));
    let token = b.wait_for("input[name=token]", Duration::from_secs(10));
    b.type_in(&token, ALICE);
    let submit = b.wait_for("form[action='/login'] button", Duration::from_secs(5));
    b.click(&submit);
    b.wait_for("table", Duration::from_secs(10));

    let r = s.request(
        "POST",
        "/runs",
        Some(TRIGGER),
        &[("Content-Type", "application/json")],
        br#"{"route":"later"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["run_id"].as_str().unwrap().to_string();
    b.go(&format!("{}/runs/{id}", s.url));
    b.wait_for(
        "svg.graph g.node.running[data-node='work']",
        Duration::from_secs(10),
    );
    assert!(
        b.find(".approval[data-key='gate']").is_none(),
        "asked too early"
    );
    b.execute("window.__kept = 'same page'; return null;");

    let reason = b.wait_for(
        ".approval[data-key='gate'] input[name=reason]",
        Duration::from_secs(30),
    );
    assert_eq!(
        b.execute("return window.__kept || null;"),
        json!("same page")
    );
    b.type_in(&reason, "looked fine");
    let approve = b.wait_for(
        ".approval[data-key='gate'] button.approve",
        Duration::from_secs(5),
    );
    b.click(&approve);
    s.wait("the run to finish", Duration::from_secs(30), || {
        s.journal(&id).contains("run_finished")
    });
    let j = s.journal(&id);
    assert!(
        j.contains(r#""kind":"approval_given","by":"alice","reason":"looked fine""#),
        "{j}"
    );
}

/// `runbook test --html DIR` in a real browser, from the files alone (no
/// server: the report is opened as `file://`): the index lists the drills
/// with their coverage, a drill's page draws the graph with its own style
/// sheet applied (the failed step is drawn in another colour than a step
/// that never started), and the expectations are in a table.
#[test]
fn the_drill_report_opens_from_its_files_with_graph_and_coverage() {
    let out = crate::support::temp_dir();
    let html = crate::serve_drill_html::drill_report(out.path());

    let b = Browser::start();
    b.go(&format!("file://{}", html.join("index.html").display()));
    b.wait_for("tr.drill.succeeded", Duration::from_secs(10));
    b.wait_for(
        "div.coverage[data-runbook='api_config_rollback']",
        Duration::from_secs(5),
    );
    let rows = b.execute("return document.querySelectorAll('tr.drill').length;");
    assert!(rows.as_u64().unwrap_or(0) >= 14, "{rows}");
    assert!(b.source().contains("(100%)"));
    b.screenshot("drill-report.png");

    b.go(&format!(
        "file://{}",
        html.join("api_config_rollback.drain_fails_in_one_region__rollback_in_reverse_order.html")
            .display()
    ));
    b.wait_for(
        "g.node.failed[data-node='drain_canaries']",
        Duration::from_secs(10),
    );
    let fill = |css: &str| {
        b.execute(&format!(
            "return getComputedStyle(document.querySelector(\"{css}\")).fill;"
        ))
    };
    let failed = fill("g.node.failed[data-node='drain_canaries'] rect");
    let pending = fill("g.node.pending[data-node='unfreeze'] rect");
    // #ef9a9a in style.css: the sheet was found and applied.
    assert_eq!(failed, json!("rgb(239, 154, 154)"));
    assert_ne!(failed, pending);
    assert!(b.source().contains("includes drain_canaries"));
    b.execute("document.querySelector('h2').scrollIntoView(); return null;");
    b.screenshot("drill-run.png");
    // The header's link leads back to the index, beside the page.
    let home = b.wait_for("header a.home", Duration::from_secs(5));
    b.click(&home);
    b.wait_for("tr.drill.succeeded", Duration::from_secs(10));
}
