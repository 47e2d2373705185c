//! `runbook serve --store postgres://...` with a real PostgreSQL
//! ([`PgCluster`]), a real `runbook serve` and a real `runbook worker` on
//! loopback: an alert queues a run that the worker runs, the API and the
//! run list page read it from the store, a re-sent alert starts nothing
//! (also after the server restarts), a proposal survives a restart and
//! approving it queues the live run, a resolved alert cancels a stored
//! proposal, and approving a waiting step from the
//! page (session cookie + CSRF token, as the form does) lets the worker's
//! run go on, the store's journal (`runbook export`) saying who approved.

use crate::serve_api::alert;
use crate::support::serve::{Killed, Serve, ALICE, VIEWER};
use crate::support::PgCluster;
use std::process::{Command, Stdio};
use std::time::Duration;

const GATED: &str = r#"runbook gated {
  input service: string
  step gate {
    approve "Restart {{service}}?" timeout 2m
    run "echo restarting {{service}}" readonly
  }
}
"#;

const QUICK: &str = r#"runbook quick {
  input service: string
  step work {
    run "echo fixing {{service}}" readonly
  }
}
"#;

const ROUTES: &str = r#"routes:
  - name: api
    alertname: ApiDown
    runbook: gated.runbook
    mode: run
    inputs:
      service: { label: service }
  - name: propose
    alertname: Proposed
    runbook: quick.runbook
    mode: propose
    inputs:
      service: { value: api }
    cancel_on_resolved: true
"#;

const JSON: (&str, &str) = ("Content-Type", "application/json");
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// The run's state as `GET /api/runs` lists it (from the store).
fn listed_state(s: &Serve, id: &str) -> Option<String> {
    let r = s.request("GET", "/api/runs", Some(VIEWER), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
        .as_array()?
        .iter()
        .find(|run| run["id"] == id)
        .and_then(|run| run["state"].as_str().map(str::to_owned))
}

fn login(s: &Serve, token: &str) -> String {
    let r = s.request(
        "POST",
        "/login",
        None,
        &[FORM],
        format!("token={token}").as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    r.header("set-cookie")
        .expect("a session cookie")
        .split(';')
        .next()
        .expect("cookie")
        .to_owned()
}

#[test]
fn alerts_queue_runs_for_workers_deduplicated_in_the_store_and_approved_from_the_page() {
    let pg = PgCluster::migrated();
    let url = pg.url();
    let store = ["--store", url.as_str()];
    let mut s = Serve::start(
        &[
            ("gated.runbook", GATED),
            ("quick.runbook", QUICK),
            ("routes.yaml", ROUTES),
        ],
        &store,
    );

    // The alert queues a run: nothing runs in the server.
    let a = alert(&s, "firing", "ApiDown", "fpapi1");
    assert_eq!(a["action"], "started", "{a}");
    let id = a["run_id"].as_str().expect("a run id").to_owned();
    assert!(s.run_ids().is_empty(), "the server ran nothing itself");
    assert_eq!(
        pg.psql("SELECT count(*) FROM runbook_queue WHERE state = 'queued'")
            .trim(),
        "1"
    );

    // A worker runs it; the API and the page list it from the store.
    let _worker = Killed(
        Command::new(env!("CARGO_BIN_EXE_runbook"))
            .args(["worker", "--concurrency", "4", "--config", "runbook.yaml"])
            .args(store)
            .arg("--runs-dir")
            .arg(s.dir.join("worker-runs"))
            .current_dir(&s.dir)
            .env("RUNBOOK_STATE_DIR", s.dir.join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("runbook worker starts"),
    );
    s.wait("the worker's run listed", Duration::from_secs(60), || {
        listed_state(&s, &id).as_deref() == Some("running")
    });
    s.wait_pending(&id);
    let viewer = login(&s, VIEWER);
    let page = s.request("GET", "/", None, &[("Cookie", &viewer)], b"");
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains(&format!(r#"data-run="{id}""#)),
        "{}",
        page.text()
    );
    assert!(page
        .text()
        .contains(r#"<span class="state running">running</span>"#));

    // The same alert again starts nothing, also after a restart.
    let again = alert(&s, "firing", "ApiDown", "fpapi1");
    assert_eq!(again["action"], "duplicate", "{again}");
    assert_eq!(again["run_id"], id.as_str());
    s.restart(&store);
    let again = alert(&s, "firing", "ApiDown", "fpapi1");
    assert_eq!(again["action"], "duplicate", "after a restart: {again}");
    assert_eq!(again["run_id"], id.as_str());

    // A proposal: its dry run queued and run by the worker, kept across a
    // restart, the same alert refused while it is pending.
    let p = alert(&s, "firing", "Proposed", "fpprop1");
    assert_eq!(p["action"], "proposed", "{p}");
    let dry = p["run_id"].as_str().expect("the dry run's id").to_owned();
    s.wait("the proposal's dry run", Duration::from_secs(60), || {
        listed_state(&s, &dry).as_deref() == Some("succeeded")
    });
    s.restart(&store);
    let r = s.request("GET", "/api/proposals", Some(VIEWER), &[], b"");
    let proposals = r.json();
    let pid = proposals[0]["id"]
        .as_str()
        .expect("the proposal, reloaded")
        .to_owned();
    assert_eq!(proposals[0]["state"]["state"], "pending", "{proposals}");
    assert_eq!(proposals[0]["dry_run_id"], dry.as_str());
    let again = alert(&s, "firing", "Proposed", "fpprop1");
    assert_eq!(again["action"], "duplicate", "{again}");
    let r = s.request(
        "POST",
        &format!("/proposals/{pid}"),
        Some(ALICE),
        &[JSON],
        br#"{"decision":"approve","reason":"dry run looks right"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let live = r.json()["state"]["run_id"]
        .as_str()
        .expect("the live run's id")
        .to_owned();
    s.wait(
        "the approved proposal's run",
        Duration::from_secs(60),
        || listed_state(&s, &live).as_deref() == Some("succeeded"),
    );
    let r = s.request(
        "POST",
        &format!("/proposals/{pid}"),
        Some(ALICE),
        &[JSON],
        br#"{"decision":"approve","reason":"twice"}"#,
    );
    assert_eq!(r.status, 409, "decided once: {}", r.text());

    // Another proposal, and its alert resolved after a restart: the route
    // says `cancel_on_resolved`, so the stored proposal is cancelled and
    // cannot be approved any more.
    let p = alert(&s, "firing", "Proposed", "fpprop2");
    assert_eq!(p["action"], "proposed", "{p}");
    s.restart(&store);
    let resolved = alert(&s, "resolved", "Proposed", "fpprop2");
    assert_eq!(resolved["action"], "proposal_cancelled", "{resolved}");
    let pid2 = format!("p-{}", p["run_id"].as_str().expect("the dry run's id"));
    let r = s.request("GET", "/api/proposals", Some(VIEWER), &[], b"");
    let proposals = r.json();
    let stored = proposals
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["id"] == pid2.as_str()))
        .unwrap_or_else(|| panic!("{pid2} listed: {proposals}"));
    assert_eq!(stored["state"]["state"], "cancelled", "{proposals}");
    let r = s.request(
        "POST",
        &format!("/proposals/{pid2}"),
        Some(ALICE),
        &[JSON],
        br#"{"decision":"approve","reason":"too late"}"#,
    );
    assert_eq!(r.status, 409, "cancelled: {}", r.text());

    // Approving the waiting step from the page: the session's form with
    // its CSRF token.
    let alice = login(&s, ALICE);
    let page = s.request(
        "GET",
        &format!("/runs/{id}"),
        None,
        &[("Cookie", &alice)],
        b"",
    );
    assert_eq!(page.status, 200, "{}", page.text());
    let text = page.text();
    assert!(
        text.contains("<svg"),
        "the graph is drawn from the store's source"
    );
    let csrf = text
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("the form's CSRF token")
        .to_owned();
    let r = s.request(
        "POST",
        &format!("/runs/{id}/approvals/gate"),
        None,
        &[FORM, ("Cookie", &alice)],
        format!("decision=approve&reason=restart+is+safe&csrf={csrf}").as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    s.wait("the worker's run to go on", Duration::from_secs(60), || {
        listed_state(&s, &id).as_deref() == Some("succeeded")
    });
    let out = s.dir.join("export.jsonl");
    let export = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["export", &id, "--out"])
        .arg(&out)
        .args(store)
        .current_dir(&s.dir)
        .output()
        .expect("runbook export runs");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let journal = std::fs::read_to_string(&out).expect("the export");
    assert!(
        journal.contains(r#""kind":"approval_given","by":"alice","reason":"restart is safe""#),
        "{journal}"
    );
    assert!(
        s.run_ids().is_empty(),
        "still no run in the server's directory"
    );
}
