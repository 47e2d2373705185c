//! The web page, rendered on the server (a little JavaScript, served by
//! the binary, appends the live decision log and recolours the graph): the
//! run list with filters, a run page (graph, pending approvals with
//! Approve / Deny asking for a reason, the decision log with every
//! condition's values and every check's observed vs expected), the login
//! form. Every text from a journal is already redacted by the run's
//! `Redactor`; all of it is HTML-escaped here.

use super::api::{caller, run_dir, AppState, Caller};
use super::runs::RunAt;
use crate::config::Role;
use crate::durable::approvals::RequestRecord;
use crate::durable::runs::{RunListing, RunState};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write;

/// HTML-escapes text (element content and quoted attributes).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn layout(title: &str, who: Option<&str>, body: &str) -> String {
    let who = who
        .map(|w| {
            format!(
                r#"<span class="who">{}</span> <form method="post" action="/logout" class="inline"><button>log out</button></form>"#,
                esc(w)
            )
        })
        .unwrap_or_default();
    document(
        title,
        "/static/style.css",
        Some(("/static/app.js", &who)),
        body,
    )
}

/// A whole HTML page: `css` the stylesheet's address; `live` the script's
/// address and what the header shows on the right (the served page).
pub fn document(title: &str, css: &str, live: Option<(&str, &str)>, body: &str) -> String {
    // A drill report is opened from its files: its home is the index beside
    // it, not the file system's root.
    let (script, who, home) = match live {
        Some((js, who)) => (
            format!(r#"<script src="{}" defer></script>"#, esc(js)),
            who,
            "/",
        ),
        None => (String::new(), "", "index.html"),
    };
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{t} · runbook</title><link rel="stylesheet" href="{css}">{script}</head><body><header><a href="{home}" class="home">runbook</a> {who}</header><main>{body}</main></body></html>"#,
        t = esc(title),
        css = esc(css),
    )
}

/// The login form (`error`: why the last attempt failed).
pub fn login_html(error: Option<&str>) -> Html<String> {
    let e = error
        .map(|e| format!(r#"<p class="error">{}</p>"#, esc(e)))
        .unwrap_or_default();
    Html(layout(
        "log in",
        None,
        &format!(
            r#"<h1>Log in</h1>{e}<form method="post" action="/login"><label>Token <input type="password" name="token" autocomplete="current-password" required></label> <button>Log in</button></form>"#
        ),
    ))
}

pub async fn login_page() -> Html<String> {
    login_html(None)
}

/// A page for a browser: the caller, or a redirect to the login form.
fn page_caller(app: &AppState, headers: &HeaderMap) -> Result<Caller, Response> {
    caller(app, headers, Role::View).map_err(|r| {
        if r.status() == axum::http::StatusCode::UNAUTHORIZED {
            Redirect::to("/login").into_response()
        } else {
            r
        }
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub q: Option<String>,
}

fn matches(run: &RunListing, f: &Filters) -> bool {
    let state_ok = f
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .is_none_or(|s| run.state.as_str() == s);
    let q_ok = f.q.as_deref().filter(|q| !q.is_empty()).is_none_or(|q| {
        run.id.contains(q) || run.runbook.as_deref().is_some_and(|r| r.contains(q))
    });
    state_ok && q_ok
}

const STATES: &[&str] = &[
    "running",
    "succeeded",
    "rolled_back",
    "rollback_incomplete",
    "cancelled",
    "interrupted",
];

/// `GET /`: runs, newest first, with filters; pending proposals; the last
/// alerts received.
pub async fn runs_page(
    State(app): State<AppState>,
    Query(f): Query<Filters>,
    headers: HeaderMap,
) -> Response {
    let c = or_return!(page_caller(&app, &headers));
    // Both may be read from the store (blocking).
    let app2 = app.clone();
    let (runs, proposals) = tokio::task::spawn_blocking(move || {
        (
            app2.runs.list().unwrap_or_default(),
            app2.trigger.proposals(),
        )
    })
    .await
    .unwrap_or_default();
    let mut b = String::from("<h1>Runs</h1>");
    let _ = write!(
        b,
        r#"<form method="get" action="/" class="filters"><label>state <select name="state"><option value="">any</option>{}</select></label> <label>search <input name="q" value="{}"></label> <button>filter</button></form>"#,
        STATES
            .iter()
            .map(|s| format!(
                r#"<option{}>{s}</option>"#,
                if f.state.as_deref() == Some(s) {
                    " selected"
                } else {
                    ""
                }
            ))
            .collect::<String>(),
        esc(f.q.as_deref().unwrap_or(""))
    );
    b.push_str(r#"<table class="runs"><thead><tr><th>run</th><th>runbook</th><th>started</th><th>state</th><th>last event</th></tr></thead><tbody>"#);
    for r in runs.iter().filter(|r| matches(r, &f)) {
        let _ = write!(
            b,
            r#"<tr class="run {st}" data-run="{id}"><td><a href="/runs/{id}">{id}</a></td><td>{rb}</td><td>{started}</td><td><span class="state {st}">{st}</span></td><td>{last}</td></tr>"#,
            id = esc(&r.id),
            rb = esc(r.runbook.as_deref().unwrap_or("?")),
            started = esc(r.started.as_deref().unwrap_or("")),
            st = r.state.as_str(),
            last = esc(&r
                .last_event
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default()),
        );
    }
    b.push_str("</tbody></table>");
    let proposals: Vec<_> = proposals
        .into_iter()
        .filter(|p| p.state == super::trigger::ProposalState::Pending)
        .collect();
    if !proposals.is_empty() {
        b.push_str("<h2>Proposals waiting for approval</h2>");
        for p in proposals {
            let _ = write!(
                b,
                r#"<div class="proposal" data-proposal="{id}"><p>{alert} via route <b>{route}</b>: dry run <a href="/runs/{dry}">{dry}</a>; inputs {inputs}</p>{form}</div>"#,
                id = esc(&p.id),
                alert = esc(&p.alertname),
                route = esc(&p.route),
                dry = esc(&p.dry_run_id),
                inputs = esc(&p.inputs.join(", ")),
                form = decision_form(&format!("/proposals/{}", p.id), &c),
            );
        }
    }
    let alerts = app.trigger.log.read();
    if !alerts.is_empty() {
        b.push_str(r#"<h2>Alerts received</h2><table class="alerts"><thead><tr><th>time</th><th>alert</th><th>status</th><th>route</th><th>action</th><th>run</th><th>detail</th></tr></thead><tbody>"#);
        for a in alerts.iter().rev().take(50) {
            let _ = write!(
                b,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                esc(&a.ts),
                esc(&a.alertname),
                esc(&a.status),
                esc(a.route.as_deref().unwrap_or("")),
                esc(&serde_json::to_value(a.action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()),
                a.run_id
                    .as_deref()
                    .map(|r| format!(r#"<a href="/runs/{0}">{0}</a>"#, esc(r)))
                    .unwrap_or_default(),
                esc(a.detail.as_deref().unwrap_or("")),
            );
        }
        b.push_str("</tbody></table>");
    }
    Html(layout("runs", Some(&c.identity.name), &b)).into_response()
}

/// Approve / Deny with a required reason; the CSRF token of a session.
fn decision_form(action: &str, c: &Caller) -> String {
    if !c.identity.has(Role::Approve) {
        return r#"<p class="note">(the approve role is needed to decide)</p>"#.into();
    }
    format!(
        r#"<form method="post" action="{a}" class="decide"><input type="hidden" name="csrf" value="{csrf}"><label>reason <input name="reason" required></label> <button name="decision" value="approve" class="approve">Approve</button> <button name="decision" value="deny" class="deny">Deny</button></form>"#,
        a = esc(action),
        csrf = esc(c.csrf.as_deref().unwrap_or("")),
    )
}

/// One line of the decision log, for people: the page and the live
/// stream show the same.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub seq: u64,
    pub ts: String,
    pub kind: String,
    pub node: String,
    pub detail: String,
    /// The approval's key (`node`, or `node[item]` in a fan-out), on the
    /// approval rows: the live page adds or removes its form by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn values_read(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|r| format!("{} = {}", text(&r["name"]), text(&r["value"])))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// A journal event (its JSON) as a [`Row`].
pub fn row(e: &Value) -> Row {
    let s = |k: &str| e.get(k).map(text).unwrap_or_default();
    let kind = s("kind");
    let detail = match kind.as_str() {
        "condition_evaluated" => format!(
            "{} `{}` = {}; values read: {}{}",
            s("purpose"),
            s("expr"),
            s("result"),
            values_read(&e["values"]),
            e.get("error")
                .filter(|v| !v.is_null())
                .map(|v| format!("; error: {}", text(v)))
                .unwrap_or_default()
        ),
        "check_evaluated" => {
            let observed = e["observed"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| format!("{k} = {}", text(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let expects = e["expects"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| {
                            format!(
                                "`{}` → {} ({})",
                                text(&x["expr"]),
                                text(&x["result"]),
                                values_read(&x["values"])
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            format!(
                "{}: {} — observed {observed}; expected {expects}",
                s("check"),
                s("status")
            )
        }
        "node_skipped" => format!(
            "{}; values read: {}",
            s("reason"),
            values_read(&e["values"])
        ),
        "action_started" => format!(
            "{} {} attempt {}: {}",
            s("adapter"),
            s("phase"),
            s("attempt"),
            s("request")
        ),
        "action_finished" => {
            let mut d = format!("{} {} in {} ms", s("adapter"), s("status"), s("elapsed_ms"));
            if let Some(x) = e.get("exit").filter(|v| !v.is_null()) {
                let _ = write!(d, ", exit {}", text(x));
            }
            if let Some(x) = e.get("error").filter(|v| !v.is_null()) {
                let _ = write!(d, ": {}", text(x));
            }
            d
        }
        "node_failed" => format!("{} (attempts {})", s("reason"), s("attempts")),
        "approval_asked" => s("message"),
        "approval_given" | "approval_refused" => {
            format!(
                "by {}{}",
                s("by"),
                e.get("reason")
                    .filter(|v| !v.is_null())
                    .map(|r| format!(": {}", text(r)))
                    .unwrap_or_default()
            )
        }
        "run_finished" => format!(
            "{} (exit {}){}",
            s("outcome"),
            s("exit_code"),
            e.get("failed_step")
                .filter(|v| !v.is_null())
                .map(|f| format!(", failed step {}", text(f)))
                .unwrap_or_default()
        ),
        _ => {
            let mut rest = e.as_object().cloned().unwrap_or_default();
            for k in [
                "seq", "ts", "t_ms", "run_id", "kind", "node", "v", "hash", "prev",
            ] {
                rest.remove(k);
            }
            Value::Object(rest).to_string()
        }
    };
    let key = kind.starts_with("approval_").then(|| {
        let item = e.get("item").and_then(Value::as_str);
        crate::durable::approvals::approval_key(&s("node"), item)
    });
    Row {
        seq: e["seq"].as_u64().unwrap_or(0),
        ts: s("ts"),
        kind,
        node: s("node"),
        detail,
        key,
    }
}

pub fn row_html(r: &Row) -> String {
    format!(
        r#"<tr class="ev {k}" data-seq="{seq}"><td>{seq}</td><td>{ts}</td><td>{k}</td><td>{node}</td><td>{d}</td></tr>"#,
        seq = r.seq,
        ts = esc(&r.ts),
        k = esc(&r.kind),
        node = esc(&r.node),
        d = esc(&r.detail),
    )
}

/// A run as the run page shows it.
pub struct RunView {
    pub listing: RunListing,
    pub state: RunState,
    pub pending: Vec<RequestRecord>,
    pub rows: Vec<Row>,
    pub svg: String,
    /// Who started the run (`run.json`; `None` for runs started before
    /// it was kept).
    pub started_by: Option<String>,
}

impl RunView {
    /// Reads the run `at`; its graph from `graphs`.
    pub fn load(at: &RunAt, graphs: &super::svg::GraphCache) -> Result<RunView, String> {
        let (read, meta) = at.read();
        if let Some(e) = read.unreadable {
            return Err(e);
        }
        let (listing, state) = (read.listing, read.state);
        let pending = at.pending();
        let keys: Vec<String> = pending.iter().map(|p| p.key.clone()).collect();
        let rows = read
            .events
            .iter()
            .filter_map(|ev| serde_json::to_value(ev).ok())
            .map(|v| row(&v))
            .collect();
        let svg = match at
            .source(meta.as_ref())
            .and_then(|(name, text)| graphs.graph_of(&name, text))
        {
            Ok(g) => super::svg::render(&g, &state, &keys),
            Err(e) => format!(r#"<p class="error">cannot draw the graph: {}</p>"#, esc(&e)),
        };
        let started_by = meta.and_then(|m| m.started_by);
        Ok(RunView {
            listing,
            state,
            pending,
            rows,
            svg,
            started_by,
        })
    }
}

/// `GET /runs/{id}`.
pub async fn run_page(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = or_return!(page_caller(&app, &headers));
    let at = or_return!(run_dir(&app, &id).await);
    let app2 = app.clone();
    let v = or_return!(super::api::blocking(move || RunView::load(&at, &app2.graphs)).await);
    let st = v.listing.state.as_str();
    let mut b = format!(
        r#"<h1>Run <code>{id}</code></h1><p>{rb} · mode {mode} · started {started}{by} · <span class="state {st}" id="run-state">{st}</span></p>"#,
        id = esc(&id),
        rb = esc(v.listing.runbook.as_deref().unwrap_or("?")),
        mode = esc(&v.state.mode.map(|m| format!("{m:?}")).unwrap_or_default()),
        started = esc(v.listing.started.as_deref().unwrap_or("")),
        by = v
            .started_by
            .as_deref()
            .map(|who| format!(r#" by <span id="started-by">{}</span>"#, esc(who)))
            .unwrap_or_default(),
    );
    if let Some((node, reason)) = &v.state.failed {
        let _ = write!(
            b,
            r#"<p class="failure">step <b>{}</b> failed: {}</p>"#,
            esc(node),
            esc(reason)
        );
    }
    if !v.state.inputs.is_empty() {
        b.push_str(r#"<h2>Inputs</h2><table class="inputs">"#);
        for (k, val) in &v.state.inputs {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(k),
                esc(&text(val))
            );
        }
        b.push_str("</table>");
    }
    let _ = write!(b, r#"<h2>Steps</h2><div class="graph-box">{}</div>"#, v.svg);
    // The questions waiting; the live page adds a question asked later
    // from the template (the caller's form, its action set by the script).
    let _ = write!(
        b,
        r#"<template id="decide-template">{}</template><div id="pending"{}><h2>Waiting for approval</h2>"#,
        decision_form("", &c),
        if v.pending.is_empty() { " hidden" } else { "" },
    );
    {
        for p in &v.pending {
            let _ = write!(
                b,
                r#"<div class="approval" data-key="{k}"><p><b>{k}</b> asked {asked}: {m}</p>{form}</div>"#,
                k = esc(&p.key),
                asked = esc(&p.asked),
                m = esc(&p.message),
                form = decision_form(&format!("/runs/{id}/approvals/{}", p.key), &c),
            );
        }
    }
    b.push_str("</div>");
    if !v.state.approvals.is_empty() {
        b.push_str(r#"<h2>Approvals</h2><ul class="approvals">"#);
        for (node, (ok, by)) in &v.state.approvals {
            let _ = write!(
                b,
                "<li>{} {} by {}</li>",
                esc(node),
                if *ok { "approved" } else { "denied" },
                esc(by)
            );
        }
        b.push_str("</ul>");
    }
    let last = v.rows.last().map(|r| r.seq).unwrap_or(0);
    let _ = write!(
        b,
        r#"<h2>Decision log</h2><table class="log" id="log" data-run="{id}" data-after="{last}" data-live="{live}"><thead><tr><th>#</th><th>time</th><th>event</th><th>step</th><th>detail</th></tr></thead><tbody>"#,
        id = esc(&id),
        live = st == "running",
    );
    for r in &v.rows {
        b.push_str(&row_html(r));
    }
    b.push_str("</tbody></table>");
    Html(layout(&format!("run {id}"), Some(&c.identity.name), &b)).into_response()
}

pub async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/app.js"),
    )
        .into_response()
}

pub async fn style_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("static/style.css"),
    )
        .into_response()
}
