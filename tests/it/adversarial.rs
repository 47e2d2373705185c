//! Hostile values through every place a value can land (issue 11, items
//! 1-4 and the JSON body of 10): each must arrive as exactly one literal
//! value, or be refused before anything runs or is sent; nothing else may
//! run.
//!
//! * Shell: a real `/bin/sh`. Each step writes its arguments NUL-terminated
//!   to a file (`printf '%s\000' ARGS`): the file must hold exactly one
//!   argument, the value (with the step's literal prefix), and no command
//!   injected by a value (`touch PWNED`) may have run.
//! * HTTP: a real server on 127.0.0.1; the path segment, query value,
//!   header and JSON string must hold the value, decoded, as sent.
//! * PromQL: a real Prometheus. `absent(missing{got="{{v}}"})` must come
//!   back with the label `got` equal to the value (`absent` returns the
//!   labels of its equality matchers); the
//!   attack of the issue must not turn a query true. Without `prometheus`
//!   the PromQL test warns and passes, unless `RUNBOOK_REQUIRE_PROMETHEUS`
//!   is set (CI), where it fails.
//! * Every shipped runbook compiles with no unsafe placeholder.

use crate::exec_support;
use crate::support;

use exec_support::{compile, options, run};
use percent_encoding::percent_decode_str;
use runbook::adapters::promql::RealPromql;
use runbook::adapters::{real, Adapters, Call, PromqlAdapter, PromqlQuery, PromqlResult};
use runbook::events::{EventKind, Mode, Outcome};
use runbook::exec::template::Templates;
use runbook::plan::Probe;
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use support::{Prometheus, TestHttpServer};

/// The values an attacker would paste into an alert or a chat.
fn hostile() -> Vec<String> {
    let mut v: Vec<String> = [
        "$(touch PWNED)",
        "`touch PWNED`",
        "x; touch PWNED",
        "x && touch PWNED",
        "x | touch PWNED",
        "line\ntouch PWNED",
        "it's'; touch PWNED; '",
        "say \"hi\"; touch PWNED; \"",
        "back\\slash\\",
        "\\\"; touch PWNED #",
        "a\0b",
        "crlf\r\nX-Injected: 1",
        "..",
        ".",
        "ünïcødé ✓ 日本",
        "*",
        "~",
        "~root",
        "#x",
        "-n",
        "",
        "$HOME ${PATH} $((1+1))",
        "!x ^y {a,b}",
        "api\"}) or vector(1) or sum(up{job=\"x",
        "a/b?c=d&e#f %2e%2E",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("{}$(touch PWNED)'\"", "A".repeat(100 * 1024)));
    v
}

fn shown(v: &str) -> String {
    let s = format!("{v:?}");
    if s.len() > 60 {
        format!("{}... ({} bytes)", &s[..60], v.len())
    } else {
        s
    }
}

// ---- shell -----------------------------------------------------------------

const SHELL: &str = r#"
runbook adversarial_shell {
  input v: string
  step unquoted { run "printf '%s\\000' {{v}} > unquoted.out" readonly }
  step partial { run "printf '%s\\000' --flag={{v}} > partial.out" readonly }
  step double { run "printf '%s\\000' \"note: {{v}}\" > double.out" readonly }
  step single { run "printf '%s\\000' 'note: {{v}}' > single.out" readonly }
  step substitution { run "printf '%s\\000' \"$(printf '%s' {{v}})\" > substitution.out" readonly }
  step nested { run "printf '%s\\000' \"$(printf '%s' \"x{{v}}\")\" > nested.out" readonly }
}
"#;

/// Each step's output file and the one argument it must have received.
fn shell_expectations(v: &str) -> Vec<(&'static str, String)> {
    vec![
        ("unquoted.out", v.to_string()),
        ("partial.out", format!("--flag={v}")),
        ("double.out", format!("note: {v}")),
        ("single.out", format!("note: {v}")),
        // `$(...)` drops trailing newlines; no value here ends with one.
        ("substitution.out", v.to_string()),
        ("nested.out", format!("x{v}")),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_shell_receives_each_value_as_one_literal_argument() {
    let graph = compile(SHELL);
    for v in hostile() {
        let dir = tempfile::tempdir().unwrap();
        let adapters: Adapters = real::real(real::RealSettings {
            shell_cwd: Some(dir.path().to_path_buf()),
            ..Default::default()
        });
        let ran = run(graph.clone(), options(Mode::Live), &[("v", &v)], adapters).await;
        assert!(
            !dir.path().join("PWNED").exists(),
            "{}: an injected command ran",
            shown(&v)
        );
        if v.contains('\0') {
            // No shell argument can hold a NUL: refused before running.
            assert_ne!(ran.summary.outcome, Outcome::Succeeded, "{}", shown(&v));
            assert!(!dir.path().join("unquoted.out").exists());
            assert!(ran.console.contains("NUL"), "{}", ran.console);
            continue;
        }
        assert_eq!(
            ran.summary.outcome,
            Outcome::Succeeded,
            "{}: {}",
            shown(&v),
            ran.console
        );
        for (file, expected) in shell_expectations(&v) {
            let got = std::fs::read(dir.path().join(file)).unwrap();
            let args: Vec<&[u8]> = got.split(|b| *b == 0).collect();
            // NUL-terminated: one argument, then the empty tail.
            assert_eq!(args.len(), 2, "{file} for {}: {:?}", shown(&v), args.len());
            assert_eq!(
                String::from_utf8_lossy(args[0]),
                expected,
                "{file} for {}",
                shown(&v)
            );
        }
    }
}

// ---- HTTP ------------------------------------------------------------------

const HTTP: &str = r#"
runbook adversarial_http {
  input base: string
  input v: string
  step path {
    http post "{{base}}/p/{{v}}/end" readonly
    on_error continue
  }
  step query {
    http post "{{base}}/q?v={{v}}&after=1" readonly
    on_error continue
  }
  step header {
    http post "{{base}}/h" readonly {
      header "X-Value" = "{{v}}"
    }
    on_error continue
  }
  step body {
    http post "{{base}}/j" readonly {
      body json "{\"v\": \"{{v}}\", \"n\": 1}"
    }
    on_error continue
  }
}
"#;

fn decoded(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Whether step `name` failed in the run (an error, not a request).
fn failed(events: &[runbook::events::Event], name: &str) -> bool {
    events
        .iter()
        .any(|e| e.node.as_deref() == Some(name) && matches!(&e.kind, EventKind::NodeFailed { .. }))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_server_receives_each_value_literally_in_path_query_header_and_body() {
    let server = TestHttpServer::start();
    let graph = compile(HTTP);
    for v in hostile() {
        server.clear_requests();
        let adapters: Adapters = real::real(real::RealSettings::default());
        let base = server.url();
        let ran = run(
            graph.clone(),
            options(Mode::Live),
            &[("base", &base), ("v", &v)],
            adapters,
        )
        .await;
        let who = shown(&v);
        // A server may refuse a 100 KB URL or header (the connection is
        // closed): then the step failed and nothing else arrived.
        let too_big = |step: &str| v.len() > 8 * 1024 && failed(&ran.events, step);

        // Path: one segment, percent-decoded back to the value; a dot
        // segment is refused (the request would go elsewhere).
        let paths: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/p/"))
            .collect();
        if v == ".." || v == "." || too_big("path") {
            assert!(paths.is_empty(), "{who}: sent {paths:?}");
            assert!(failed(&ran.events, "path"), "{who}");
        } else {
            assert_eq!(paths.len(), 1, "{who}: {}", ran.console);
            let segment = paths[0]
                .path
                .strip_prefix("/p/")
                .and_then(|p| p.strip_suffix("/end"))
                .expect("one segment between /p/ and /end");
            assert!(!segment.contains('/'), "{who}: {segment}");
            assert_eq!(decoded(segment), v, "{who}");
        }

        // Query: the value of `v`, and `after` untouched.
        let q = server.requests_to("/q");
        if too_big("query") {
            assert!(q.is_empty(), "{who}");
        } else {
            assert_eq!(q.len(), 1, "{who}: {}", ran.console);
            assert_eq!(decoded(q[0].query_param("v").unwrap_or("")), v, "{who}");
            assert_eq!(q[0].query_param("after"), Some("1"), "{who}");
        }

        // Header: control characters (CR, LF, NUL) and non-ASCII are refused.
        let h = server.requests_to("/h");
        if v.chars().any(|c| c.is_ascii_control()) || !v.is_ascii() || too_big("header") {
            assert!(h.is_empty(), "{who}: sent {h:?}");
            assert!(failed(&ran.events, "header"), "{who}");
        } else {
            assert_eq!(h.len(), 1, "{who}: {}", ran.console);
            assert_eq!(
                h[0].header("X-Value"),
                Some(v.as_str()),
                "{who}: {:?}",
                h[0].headers
            );
            assert!(h[0].header("X-Injected").is_none(), "{who}");
        }

        // JSON body: the string holds the value; the other key is intact.
        let j = server.requests_to("/j");
        assert_eq!(j.len(), 1, "{who}: {}", ran.console);
        assert_eq!(j[0].json(), json!({"v": v, "n": 1}), "{who}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_base_urls_json_scalars_and_dot_segments_are_errors_not_requests() {
    let server = TestHttpServer::start();
    let graph = compile(
        r#"
runbook http_rules {
  input base: string
  input config: string
  input flag: string = "on"
  step read {
    run "printf '%s' {{config}}" readonly
    capture json as cfg
  }
  step put {
    http put "{{base}}/flags/{{flag}}/state" readonly {
      body json "{\"limit\": {{cfg.limit}}}"
    }
  }
}
"#,
    );
    // A string input is refused outside JSON strings when compiled; a
    // captured JSON value is only known when rendered.
    let cases: &[(&str, &str, &str, bool)] = &[
        ("good", r#"{"limit": 10}"#, "on", true),
        ("good", r#"{"limit": 2.5}"#, "on", true),
        ("bad json", r#"{"limit": "abc"}"#, "on", false),
        (
            "json injection",
            r#"{"limit": "1, \"admin\": true"}"#,
            "on",
            false,
        ),
        ("dot segment", r#"{"limit": 10}"#, "..", false),
        ("base with credentials", r#"{"limit": 10}"#, "on", false),
        ("base not http", r#"{"limit": 10}"#, "on", false),
    ];
    for (what, limit, flag, sent) in cases {
        server.clear_requests();
        let base = match *what {
            "base with credentials" => server.url().replace("http://", "http://u:p@"),
            "base not http" => server.url().replace("http://", "file://"),
            _ => server.url(),
        };
        let adapters: Adapters = real::real(real::RealSettings::default());
        let ran = run(
            graph.clone(),
            options(Mode::Live),
            &[("base", &base), ("config", limit), ("flag", flag)],
            adapters,
        )
        .await;
        let requests = server.requests();
        if *sent {
            assert_eq!(
                ran.summary.outcome,
                Outcome::Succeeded,
                "{what}: {}",
                ran.console
            );
            assert_eq!(requests.len(), 1, "{what}");
            assert_eq!(requests[0].path, "/flags/on/state");
        } else {
            assert_ne!(
                ran.summary.outcome,
                Outcome::Succeeded,
                "{what}: {}",
                ran.console
            );
            assert!(requests.is_empty(), "{what}: sent {requests:?}");
        }
    }
}

// ---- PromQL ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_reads_each_value_as_one_string() {
    let Some(prom) = Prometheus::start() else {
        return;
    };
    let graph = compile(
        r#"
runbook adversarial_promql {
  input v: string
  input n: float = 1
  check echoes {
    promql "absent(runbook_adv_missing{got=\"{{v}}\"}) * {{n}}"
    expect value == 1
  }
  check single {
    promql "absent(runbook_adv_missing{got='{{v}}'})"
    expect value == 1
  }
  check attack {
    promql "sum(up{job=\"{{v}}\"}) or vector(0)"
    expect value == 0
  }
  step probe { verify echoes and single and attack within 1s every 1s }
}
"#,
    );
    let templates = Templates::new();
    let adapter = RealPromql::default();
    for v in hostile() {
        let data = json!({"v": v, "n": 1});
        for check in &graph.checks {
            let Probe::Promql { query } = &check.probe else {
                continue;
            };
            let rendered = templates.render(query, false, &|_| data.clone());
            if v.contains('\0') {
                // Prometheus's lexer refuses a NUL even escaped; either
                // way nothing is asked with the value cut short.
                if let Ok(r) = &rendered {
                    assert!(r.send.contains("\\x00"), "{}", r.send);
                }
                continue;
            }
            let rendered = rendered.unwrap_or_else(|e| panic!("{}: {e}", shown(&v)));
            let answer = adapter
                .query(
                    &Call::simple("probe"),
                    &PromqlQuery {
                        query: rendered.clone(),
                        base_url: Some(prom.url()),
                        timeout: Some(Duration::from_secs(10)),
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("{} in {}: {e}", shown(&v), check.name));
            let PromqlResult::Vector { samples } = answer.result else {
                panic!("{}: not a vector", shown(&v));
            };
            assert_eq!(samples.len(), 1, "{} in {}", shown(&v), check.name);
            if check.name == "attack" {
                assert_eq!(samples[0].value, 0.0, "{}", shown(&v));
            } else {
                // An empty label value removes the label.
                let got = samples[0].labels.get("got").map(String::as_str);
                let want = (!v.is_empty()).then_some(v.as_str());
                assert_eq!(got, want, "{} in {}", shown(&v), check.name);
            }
        }
    }
    // Outside strings only a number goes.
    let numbers = &graph.checks[0];
    let Probe::Promql { query } = &numbers.probe else {
        unreachable!()
    };
    for n in ["1 or vector(5)", "Inf", "0x1", "1)"] {
        let r = templates.render(query, false, &|_| json!({"v": "x", "n": n}));
        assert!(r.is_err(), "{n}: {r:?}");
    }
}

/// The real PromQL adapter, keeping every query and answer.
struct RecordingPromql {
    inner: RealPromql,
    seen: std::sync::Mutex<Vec<(String, PromqlResult)>>,
}

#[async_trait::async_trait]
impl PromqlAdapter for RecordingPromql {
    async fn query(
        &self,
        call: &Call,
        req: &PromqlQuery,
    ) -> runbook::adapters::AdapterResult<runbook::adapters::PromqlAnswer> {
        let answer = self.inner.query(call, req).await?;
        self.seen
            .lock()
            .unwrap()
            .push((req.query.send.clone(), answer.result.clone()));
        Ok(answer)
    }
}

/// A check that reads a capture (issue 12 item 9): a value a step captured
/// from the world reaches a real Prometheus as one string, through the
/// whole engine (real shell, real capture, real PromQL adapter).
#[tokio::test(flavor = "multi_thread")]
async fn a_capture_read_by_a_check_reaches_a_real_prometheus_as_one_string() {
    let prom = Prometheus::start().expect("prometheus is required (see .ci/run)");
    let graph = compile(
        r#"
runbook capture_in_check {
  input v: string
  check echoes {
    promql "absent(runbook_adv_missing{got=\"{{found}}\"})"
    expect value == 1
  }
  check attack {
    promql "sum(up{job=\"{{found}}\"}) or vector(0)"
    expect value == 0
  }
  step find {
    run "printf '%s' {{v}}" readonly
    capture text as found
  }
  step probe { verify echoes and attack within 1s every 1s }
}
"#,
    );
    for v in hostile() {
        if v.contains('\0') || v.len() > 64 * 1024 {
            // No shell argument holds a NUL (refused: see above); a capture
            // keeps only the start of a very long output.
            continue;
        }
        let recording = std::sync::Arc::new(RecordingPromql {
            inner: RealPromql::default(),
            seen: std::sync::Mutex::new(Vec::new()),
        });
        let mut adapters: Adapters = real::real(real::RealSettings {
            prometheus_url: Some(prom.url()),
            ..Default::default()
        });
        adapters.probes.promql = recording.clone();
        let mut opts = options(Mode::Live);
        opts.settings.prometheus_url = Some(prom.url());
        let ran = run(graph.clone(), opts, &[("v", &v)], adapters).await;
        assert_eq!(
            ran.summary.outcome,
            Outcome::Succeeded,
            "{}: {}",
            shown(&v),
            ran.console
        );
        let seen = recording.seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{}: {:?}", shown(&v), seen.len());
        for (query, result) in seen.iter() {
            let PromqlResult::Vector { samples } = result else {
                panic!("{}: not a vector", shown(&v));
            };
            assert_eq!(samples.len(), 1, "{}: {query}", shown(&v));
            if query.starts_with("absent") {
                let got = samples[0].labels.get("got").map(String::as_str);
                assert_eq!(got, (!v.is_empty()).then_some(v.as_str()), "{}", shown(&v));
            } else {
                assert_eq!(samples[0].value, 0.0, "{}", shown(&v));
            }
        }
    }
}

// ---- the shipped runbooks ----------------------------------------------------

#[test]
fn every_shipped_runbook_compiles_with_no_unsafe_placeholder() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "runbook") {
            continue;
        }
        seen += 1;
        let source = runbook::source::Source::read(&path).unwrap();
        let report = runbook::compile::check(&source);
        let codes: Vec<&str> = report.to_json().iter().map(|d| d.code).collect();
        assert!(
            !report.has_errors() && !codes.iter().any(|c| c.contains("placeholder")),
            "{}: {}",
            path.display(),
            report.render(false)
        );
    }
    assert!(seen >= 6, "only {seen} runbooks in {}", dir.display());
}
