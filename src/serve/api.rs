//! The HTTP surface: the router, authentication of every request, and the
//! JSON API. Errors are JSON `{"error": "..."}` with a 4xx status (401 no
//! or wrong token, 403 a missing role or CSRF token, 404, 400 a malformed
//! body, 413 a body over the cap); nothing is started on any of them.

use super::auth::{cookie_value, Identity, COOKIE};
use super::runs::{NotFound, RunAt};
use super::{alertmanager, page, sse, svg, App};
use crate::config::Role;
use crate::durable::approvals::{ApprovalError, Give, Via};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

pub type AppState = Arc<App>;

pub fn router(app: AppState, max_body: usize) -> Router {
    Router::new()
        .route("/", get(page::runs_page))
        .route("/login", get(page::login_page).post(login))
        .route("/logout", post(logout))
        .route("/runs", post(post_run))
        .route("/runs/{id}", get(page::run_page))
        .route("/runs/{id}/events", get(sse::events))
        .route("/runs/{id}/graph.svg", get(svg::graph_svg))
        .route("/runs/{id}/approvals/{key}", post(decide_approval))
        .route("/proposals/{id}", post(decide_proposal))
        .route("/alertmanager", post(alertmanager_hook))
        .route("/api/runs", get(api_runs))
        .route("/api/runs/{id}", get(api_run))
        .route("/api/alerts", get(api_alerts))
        .route("/api/proposals", get(api_proposals))
        .route("/static/app.js", get(page::app_js))
        .route("/static/style.css", get(page::style_css))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// A JSON error response.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// Who made a request, and how.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    /// Logged in with the session cookie: the session's CSRF token, which
    /// every form it posts must carry.
    pub csrf: Option<String>,
}

/// The caller of a request with `role`: a bearer token, else the session
/// cookie. 401 without either (or a wrong one), 403 without the role.
pub fn caller(app: &App, headers: &HeaderMap, role: Role) -> Result<Caller, Response> {
    let caller = if let Some(h) = headers.get(header::AUTHORIZATION) {
        let id = h
            .to_str()
            .ok()
            .and_then(|h| app.auth.bearer(h))
            .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "wrong or malformed bearer token"))?;
        Caller {
            identity: id,
            csrf: None,
        }
    } else {
        let s = headers
            .get(header::COOKIE)
            .and_then(|c| c.to_str().ok())
            .and_then(cookie_value)
            .and_then(|v| app.auth.session(v))
            .ok_or_else(|| {
                error(
                    StatusCode::UNAUTHORIZED,
                    "no credentials: send `Authorization: Bearer TOKEN`, or log in at /login",
                )
            })?;
        Caller {
            identity: s.identity,
            csrf: Some(s.csrf),
        }
    };
    if !caller.identity.has(role) {
        return Err(error(
            StatusCode::FORBIDDEN,
            format!(
                "`{}` does not have the `{}` role",
                caller.identity.name,
                role.as_str()
            ),
        ));
    }
    Ok(caller)
}

/// A form posted with the session cookie must carry its CSRF token.
fn check_csrf(caller: &Caller, given: Option<&str>) -> Result<(), Response> {
    match &caller.csrf {
        None => Ok(()),
        Some(expected) => match given {
            Some(g) if super::auth::constant_time_eq(g.as_bytes(), expected.as_bytes()) => Ok(()),
            _ => Err(error(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: reload the page and try again",
            )),
        },
    }
}

/// A body as JSON or as a form (by its content type).
fn parse_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let r = if ct.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    };
    r.map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("malformed request body: {e}"),
        )
    })
}

/// A browser (form post) goes back to a page; an API client gets JSON.
fn answer(headers: &HeaderMap, back: &str, json: serde_json::Value) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        Redirect::to(back).into_response()
    } else {
        Json(json).into_response()
    }
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(app): State<AppState>, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return error(StatusCode::BAD_REQUEST, "malformed login form");
    };
    let Some(identity) = app.auth.token(&form.token) else {
        return (
            StatusCode::UNAUTHORIZED,
            page::login_html(Some("wrong token")),
        )
            .into_response();
    };
    match app.auth.login(identity) {
        Ok(session) => (
            [(
                header::SET_COOKIE,
                format!("{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/"),
            )],
            Redirect::to("/"),
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(v) = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(cookie_value)
    {
        app.auth.logout(v);
    }
    Redirect::to("/login").into_response()
}

/// Runs `f` off the async threads (it reads files, compiles, starts
/// runs); its error, or a lost task, is a 500.
pub async fn blocking<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// A view-role caller's run.
pub async fn view_run(app: &AppState, headers: &HeaderMap, id: &str) -> Result<RunAt, Response> {
    caller(app, headers, Role::View)?;
    run_dir(app, id).await
}

/// A run id from a path: a plain run id of a run that exists (in the runs
/// directory, or the store).
pub async fn run_dir(app: &AppState, id: &str) -> Result<RunAt, Response> {
    crate::session::check_run_id(id).map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    let runs = app.runs.clone();
    let id = id.to_owned();
    match tokio::task::spawn_blocking(move || runs.at(&id)).await {
        Ok(Ok(at)) => Ok(at),
        Ok(Err(NotFound::No(e))) => Err(error(StatusCode::NOT_FOUND, e)),
        Ok(Err(NotFound::Failed(e))) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

#[derive(Deserialize)]
struct Decision {
    /// `approve` or `deny`.
    decision: String,
    reason: String,
    #[serde(default)]
    csrf: Option<String>,
}

/// An approve-role caller's decision (JSON or a form with its CSRF
/// token): who, approve or not, the reason (required).
fn read_decision(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Caller, bool, String), Response> {
    let c = caller(app, headers, Role::Approve)?;
    let d: Decision = parse_body(headers, body)?;
    check_csrf(&c, d.csrf.as_deref())?;
    let approve = match d.decision.as_str() {
        "approve" => true,
        "deny" => false,
        other => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("decision `{other}`: `approve` or `deny`"),
            ))
        }
    };
    let reason = d.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "a reason is required"));
    }
    Ok((c, approve, reason))
}

async fn decide_approval(
    State(app): State<AppState>,
    Path((id, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (c, approve, reason) = or_return!(read_decision(&app, &headers, &body));
    let at = or_return!(run_dir(&app, &id).await);
    let by = c.identity.name.clone();
    let result = tokio::task::spawn_blocking(move || {
        at.decide(
            &key,
            &Give {
                approve,
                by: &by,
                reason: Some(&reason),
                via: Via::Web,
            },
        )
    })
    .await;
    match result {
        Ok(Ok(record)) => answer(
            &headers,
            &format!("/runs/{id}"),
            serde_json::to_value(&record).unwrap_or_default(),
        ),
        // The run's starter approving a `by other` step: forbidden, and
        // recorded (the run's journal gets `approval_attempt_refused`).
        Ok(Err(e @ ApprovalError::SelfApproval { .. })) => {
            error(StatusCode::FORBIDDEN, e.to_string())
        }
        Ok(Err(e)) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn decide_proposal(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (c, approve, reason) = or_return!(read_decision(&app, &headers, &body));
    let app2 = app.clone();
    let by = c.identity.name.clone();
    let r = tokio::task::spawn_blocking(move || {
        app2.trigger.decide_proposal(&id, approve, &by, &reason)
    })
    .await;
    match r {
        Ok(Ok(p)) => answer(&headers, "/", serde_json::to_value(&p).unwrap_or_default()),
        Ok(Err(e)) => error(StatusCode::CONFLICT, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    /// A route of the routes file: its runbook.
    route: String,
    #[serde(default)]
    inputs: indexmap::IndexMap<String, yaml_serde::Value>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /runs`: starts a route's runbook (role trigger).
async fn post_run(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get(header::AUTHORIZATION).is_none() {
        return error(
            StatusCode::UNAUTHORIZED,
            "POST /runs takes `Authorization: Bearer TOKEN`",
        );
    }
    let by = match caller(&app, &headers, Role::Trigger) {
        Ok(c) => c.identity.name.clone(),
        Err(r) => return r,
    };
    let b: RunBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("malformed request body: {e}"),
            )
        }
    };
    let app2 = app.clone();
    let r = tokio::task::spawn_blocking(move || {
        app2.trigger.run_route(&b.route, b.inputs, b.dry_run, &by)
    })
    .await;
    match r {
        Ok(Ok(id)) => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "run_id": id, "url": format!("/runs/{id}") })),
        )
            .into_response(),
        Ok(Err(super::trigger::RunError::UnknownRoute(r))) => {
            error(StatusCode::NOT_FOUND, format!("no route `{r}`"))
        }
        Ok(Err(super::trigger::RunError::Invalid(e))) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        Ok(Err(super::trigger::RunError::Store(e))) => error(StatusCode::SERVICE_UNAVAILABLE, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /alertmanager`: the webhook (role trigger, bearer token).
async fn alertmanager_hook(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.get(header::AUTHORIZATION).is_none() {
        return error(
            StatusCode::UNAUTHORIZED,
            "the webhook takes `Authorization: Bearer TOKEN` (http_config.authorization in alertmanager.yml)",
        );
    }
    if let Err(r) = caller(&app, &headers, Role::Trigger) {
        return r;
    }
    let payload = match alertmanager::parse(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let app2 = app.clone();
    let r = tokio::task::spawn_blocking(move || {
        payload
            .alerts
            .iter()
            .map(|a| app2.trigger.alert(a))
            .collect::<Vec<_>>()
    })
    .await;
    match r {
        Ok(outcomes) => Json(serde_json::json!({ "alerts": outcomes })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn api_runs(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = caller(&app, &headers, Role::View) {
        return r;
    }
    let runs = app.runs.clone();
    match blocking(move || runs.list()).await {
        Ok(runs) => Json(runs).into_response(),
        Err(r) => r,
    }
}

async fn api_run(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let at = or_return!(view_run(&app, &headers, &id).await);
    let r = tokio::task::spawn_blocking(move || {
        let (read, _) = at.read();
        let state = read.unreadable.is_none().then_some(read.state);
        serde_json::json!({
            "run": read.listing,
            "state": state,
            "pending_approvals": at.pending(),
        })
    })
    .await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn api_alerts(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = caller(&app, &headers, Role::View) {
        return r;
    }
    Json(app.trigger.log.read()).into_response()
}

async fn api_proposals(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = caller(&app, &headers, Role::View) {
        return r;
    }
    let app2 = app.clone();
    match blocking(move || Ok::<_, String>(app2.trigger.proposals())).await {
        Ok(p) => Json(p).into_response(),
        Err(r) => r,
    }
}
