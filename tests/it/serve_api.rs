//! `runbook serve`'s HTTP API against the real binary: every refusal is a
//! clear 4xx and starts nothing (wrong token, missing role, CSRF, oversized
//! body, malformed Alertmanager payloads); the webhook starts a route's run
//! once per alert fingerprint; `POST /runs`; approving over the API records
//! the token's name and reason in the journal.

use crate::support::serve::{Serve, ALICE, TRIGGER, VIEWER};
use std::time::Duration;

/// Waits for an approval, then fails: prepare has an undo, restart fails.
pub const FIX_RUNBOOK: &str = r#"runbook fix_api {
  input service: string
  step prepare {
    run "echo preparing {{service}}"
    undo "echo unprepare {{service}}"
  }
  step gate {
    approve "Restart {{service}}?" timeout 2m
    run "echo restarting {{service}}" readonly
  }
  step restart {
    run "exit 3" irreversible
  }
}
"#;

/// Runs for a few seconds.
pub const SLOW_RUNBOOK: &str = r#"runbook slow_fix {
  input service: string
  step work {
    run "sleep 4; echo {{service}}" readonly
  }
}
"#;

pub const ROUTES: &str = r#"routes:
  - name: api
    alertname: ApiDown
    matchers: ['severity="page"']
    runbook: fix.runbook
    mode: run
    inputs:
      service: { label: service }
  - name: slow
    alertname: Slow
    runbook: slow.runbook
    mode: run
    inputs:
      service: { label: service }
  - name: propose
    alertname: Proposed
    runbook: slow.runbook
    mode: propose
    inputs:
      service: { value: api }
    cancel_on_resolved: true
"#;

pub fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("fix.runbook", FIX_RUNBOOK),
        ("slow.runbook", SLOW_RUNBOOK),
        ("routes.yaml", ROUTES),
    ]
}

/// A version 4 webhook body with one alert.
pub fn payload(status: &str, alertname: &str, fingerprint: &str) -> String {
    format!(
        r#"{{"version":"4","groupKey":"{{}}:{{}}","receiver":"runbook","status":"{status}","alerts":[{{"status":"{status}","labels":{{"alertname":"{alertname}","severity":"page","service":"api"}},"annotations":{{"summary":"api down"}},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"{fingerprint}"}}]}}"#
    )
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// Posts one alert as Alertmanager would; what serve did with it.
pub fn alert(s: &Serve, status: &str, alertname: &str, fingerprint: &str) -> serde_json::Value {
    let body = payload(status, alertname, fingerprint);
    let r = s.request(
        "POST",
        "/alertmanager",
        Some(TRIGGER),
        &[JSON],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["alerts"][0].clone()
}

#[test]
fn refusals_are_clear_4xx_and_start_nothing() {
    let s = Serve::start(&files(), &["--max-body", "4096"]);
    let body = payload("firing", "Slow", "aaa111");
    let post =
        |token: Option<&str>, b: &[u8]| s.request("POST", "/alertmanager", token, &[JSON], b);

    // No token, a wrong one, one without the trigger role.
    let r = post(None, body.as_bytes());
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("Bearer"));
    let r = post(Some("not-a-token-at-all-xxxxxxxx"), body.as_bytes());
    assert_eq!(r.status, 401, "{}", r.text());
    let r = post(Some(VIEWER), body.as_bytes());
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r
        .text()
        .contains("`viewer` does not have the `trigger` role"));

    // Malformed payloads.
    for (bad, why) in [
        ("{", "not an Alertmanager"),
        (
            &payload("firing", "Slow", "aaa111").replace("\"4\"", "\"3\""),
            "version",
        ),
        (&payload("firing", "Slow", "../../x"), "fingerprint"),
        (&payload("burning", "Slow", "aaa111"), "not an Alertmanager"),
        (
            &payload("firing", "Slow", "aaa111").replace("\"alertname\":\"Slow\",", ""),
            "alertname",
        ),
    ] {
        let r = post(Some(TRIGGER), bad.as_bytes());
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(
            r.json()["error"].as_str().unwrap().contains(why),
            "{}",
            r.text()
        );
    }

    // Oversized body: 413.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(8192));
    let r = post(Some(TRIGGER), big.as_bytes());
    assert_eq!(r.status, 413, "{}", r.text());

    // POST /runs: token, role, body, route.
    let run = br#"{"route":"slow","inputs":{"service":"api"}}"#;
    assert_eq!(s.request("POST", "/runs", None, &[JSON], run).status, 401);
    assert_eq!(
        s.request("POST", "/runs", Some(ALICE), &[JSON], run).status,
        403
    );
    let r = s.request("POST", "/runs", Some(TRIGGER), &[JSON], b"{\"route\":");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.request(
        "POST",
        "/runs",
        Some(TRIGGER),
        &[JSON],
        br#"{"route":"nope"}"#,
    );
    assert_eq!(r.status, 404, "{}", r.text());
    // Inputs are typed and validated like --input: `service` is required.
    let r = s.request(
        "POST",
        "/runs",
        Some(TRIGGER),
        &[JSON],
        br#"{"route":"slow"}"#,
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("service"), "{}", r.text());

    // Reading needs the view role.
    assert_eq!(s.request("GET", "/api/runs", None, &[], b"").status, 401);
    assert_eq!(
        s.request("GET", "/api/runs", Some(TRIGGER), &[], b"")
            .status,
        403
    );
    let r = s.request("GET", "/api/runs", Some(VIEWER), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!([]));
    // A browser without a session is sent to the login form.
    let r = s.request("GET", "/", None, &[], b"");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    // Path tricks are refused.
    let r = s.request("GET", "/api/runs/..", Some(VIEWER), &[], b"");
    assert!(r.status == 400 || r.status == 404, "{}", r.status);

    assert!(
        s.run_ids().is_empty(),
        "something started: {:?}",
        s.run_ids()
    );
}

#[test]
fn webhook_starts_once_per_fingerprint_and_records_resends() {
    let s = Serve::start(&files(), &[]);
    let out = alert(&s, "firing", "Slow", "fp1");
    assert_eq!(out["action"], "started", "{out}");
    let run_id = out["run_id"].as_str().unwrap().to_string();
    // Re-sent while the run is active: recorded, not started.
    let out = alert(&s, "firing", "Slow", "fp1");
    assert_eq!(out["action"], "duplicate", "{out}");
    assert_eq!(out["run_id"], run_id.as_str());
    // Another alert of the same runbook: its lock refuses a second run.
    let out = alert(&s, "firing", "Slow", "fp2");
    assert_eq!(out["action"], "not_started", "{out}");
    assert!(out["detail"].as_str().unwrap().contains("lock"), "{out}");
    // Resolved: recorded. No route: recorded.
    assert_eq!(alert(&s, "resolved", "Slow", "fp1")["action"], "resolved");
    assert_eq!(alert(&s, "firing", "Unknown", "fp3")["action"], "no_route");
    assert_eq!(s.run_ids(), vec![run_id.clone()]);
    let actions: Vec<String> = s
        .alerts()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions,
        [
            "started",
            "duplicate",
            "not_started",
            "resolved",
            "no_route"
        ]
    );
    // Once the run ended, the same alert starts a new run.
    s.wait("the run to finish", Duration::from_secs(30), || {
        s.journal(&run_id).contains("\"run_finished\"")
    });
    s.wait("the key to be released", Duration::from_secs(10), || {
        alert(&s, "firing", "Slow", "fp1")["action"] == "started"
    });
    assert_eq!(s.run_ids().len(), 2);
}

#[test]
fn proposal_waits_for_approval_and_a_resolved_alert_cancels_it() {
    let s = Serve::start(&files(), &[]);
    let out = alert(&s, "firing", "Proposed", "pp1");
    assert_eq!(out["action"], "proposed", "{out}");
    let dry = out["run_id"].as_str().unwrap().to_string();
    s.wait("the dry run", Duration::from_secs(30), || {
        s.journal(&dry).contains("\"mode\":\"dry_run\"")
    });
    // Resolved: the pending proposal is cancelled, nothing else starts.
    let out = alert(&s, "resolved", "Proposed", "pp1");
    assert_eq!(out["action"], "proposal_cancelled", "{out}");
    let ps = s
        .request("GET", "/api/proposals", Some(VIEWER), &[], b"")
        .json();
    assert_eq!(ps[0]["state"]["state"], "cancelled", "{ps}");

    // A new proposal, approved over the API: the live run starts.
    let out = alert(&s, "firing", "Proposed", "pp2");
    assert_eq!(out["action"], "proposed", "{out}");
    let pid = format!("p-{}", out["run_id"].as_str().unwrap());
    let decide = |token: &str, body: &str| {
        s.request(
            "POST",
            &format!("/proposals/{pid}"),
            Some(token),
            &[JSON],
            body.as_bytes(),
        )
    };
    assert_eq!(
        decide(VIEWER, r#"{"decision":"approve","reason":"x"}"#).status,
        403
    );
    let r = decide(ALICE, r#"{"decision":"approve","reason":"  "}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = decide(
        ALICE,
        r#"{"decision":"approve","reason":"dry run looks right"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let p = r.json();
    assert_eq!(p["state"]["by"], "alice");
    let live = p["state"]["run_id"].as_str().unwrap().to_string();
    s.wait("the live run", Duration::from_secs(30), || {
        s.journal(&live).contains("\"mode\":\"live\"")
    });
    // Decided once only.
    assert_eq!(
        decide(ALICE, r#"{"decision":"deny","reason":"late"}"#).status,
        409
    );
    let log = s.alerts();
    let approved = log
        .iter()
        .find(|a| a["action"] == "proposal_approved")
        .expect("approval recorded");
    assert_eq!(approved["by"], "alice");
    assert_eq!(approved["detail"], "dry run looks right");
}

/// Proposals are kept in the runs directory: after a restart a pending
/// one is still listed, still holds its alert (a re-sent alert starts
/// nothing), and a resolved alert still cancels it.
#[test]
fn a_pending_proposal_survives_a_restart_and_a_resolved_alert_still_cancels_it() {
    let mut s = Serve::start(&files(), &[]);
    let out = alert(&s, "firing", "Proposed", "rs1");
    assert_eq!(out["action"], "proposed", "{out}");
    let pid = format!("p-{}", out["run_id"].as_str().unwrap());
    s.restart(&[]);
    let ps = s
        .request("GET", "/api/proposals", Some(VIEWER), &[], b"")
        .json();
    assert_eq!(ps[0]["id"], pid.as_str(), "{ps}");
    assert_eq!(ps[0]["state"]["state"], "pending", "{ps}");
    let runs = s.run_ids().len();
    let again = alert(&s, "firing", "Proposed", "rs1");
    assert_eq!(again["action"], "duplicate", "{again}");
    assert_eq!(s.run_ids().len(), runs, "a re-sent alert started nothing");
    let out = alert(&s, "resolved", "Proposed", "rs1");
    assert_eq!(out["action"], "proposal_cancelled", "{out}");
    // The cancellation is kept too.
    s.restart(&[]);
    let ps = s
        .request("GET", "/api/proposals", Some(VIEWER), &[], b"")
        .json();
    assert_eq!(ps[0]["state"]["state"], "cancelled", "{ps}");
}

#[test]
fn approving_over_the_api_records_who_and_why_in_the_journal() {
    let s = Serve::start(&files(), &[]);
    let r = s.request(
        "POST",
        "/runs",
        Some(TRIGGER),
        &[JSON],
        br#"{"route":"api","inputs":{"service":"api"}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["run_id"].as_str().unwrap().to_string();
    s.wait_pending(&id);
    let path = format!("/runs/{id}/approvals/gate");
    // A session cookie without the CSRF token is refused (a cross-site
    // form could send the cookie, never the token).
    let login = s.request(
        "POST",
        "/login",
        None,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("token={ALICE}").as_bytes(),
    );
    assert_eq!(login.status, 303);
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(login.header("set-cookie").unwrap().contains("HttpOnly"));
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let r = s.request(
        "POST",
        &path,
        None,
        &[form, ("Cookie", &cookie)],
        b"decision=approve&reason=ok",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("CSRF"));
    let r = s.request(
        "POST",
        &path,
        None,
        &[form, ("Cookie", &cookie)],
        b"decision=approve&reason=ok&csrf=0000",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!s.journal(&id).contains("approval_given"));
    // The viewer cannot approve; alice can, over the API.
    let r = s.request(
        "POST",
        &path,
        Some(VIEWER),
        &[JSON],
        br#"{"decision":"approve","reason":"x"}"#,
    );
    assert_eq!(r.status, 403);
    let r = s.request(
        "POST",
        &path,
        Some(ALICE),
        &[JSON],
        br#"{"decision":"approve","reason":"error budget burning"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["via"], "web");
    s.wait("the run to finish", Duration::from_secs(30), || {
        s.journal(&id).contains("\"run_finished\"")
    });
    let j = s.journal(&id);
    assert!(
        j.contains(r#""kind":"approval_given","by":"alice","reason":"error budget burning""#),
        "{j}"
    );
    let run = s
        .request("GET", &format!("/api/runs/{id}"), Some(VIEWER), &[], b"")
        .json();
    assert_eq!(run["run"]["state"], "rolled_back", "{run}");
    assert_eq!(run["state"]["failed"][0], "restart");
}
