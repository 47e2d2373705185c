//! The step graph as SVG: one box per step, columns by depth (longest
//! path from a step without dependencies), arrows for dependencies, and
//! for a step with an `undo` a dashed edge to its undo box. Each box
//! carries its status (`data-status`, and a CSS class colouring it).

use super::api::{view_run, AppState};
use super::page::esc;
use crate::durable::runs::{Completed, RunState};
use crate::plan::Graph;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

const W: usize = 150;
const H: usize = 34;
const GAP_X: usize = 60;
const GAP_Y: usize = 62;

/// A step's status in a run.
pub fn node_status(state: &RunState, pending: &[String], node: &str) -> &'static str {
    if pending
        .iter()
        .any(|k| k == node || k.starts_with(&format!("{node}[")))
    {
        return "waiting";
    }
    if state.failed.as_ref().is_some_and(|(n, _)| n == node) {
        return "failed";
    }
    match state.completed.get(node) {
        Some(Completed::Succeeded { .. }) => "succeeded",
        Some(Completed::Skipped { .. }) => "skipped",
        Some(Completed::FailedContinued { .. }) => "failed",
        None if state.unfinished.iter().any(|n| n == node) => "running",
        None => "pending",
    }
}

/// An undo's status: `undone`, `undo-failed`, or `none`.
fn undo_status(state: &RunState, node: &str) -> &'static str {
    match state
        .rollback
        .as_ref()
        .and_then(|r| r.undone.get(node))
        .map(|u| u.ok)
    {
        Some(true) => "undone",
        Some(false) => "undo-failed",
        None => "none",
    }
}

/// The SVG of `graph` coloured by `state`.
pub fn render(graph: &Graph, state: &RunState, pending: &[String]) -> String {
    let mut depth: HashMap<&str, usize> = HashMap::new();
    for n in &graph.nodes {
        // Nodes are in a topological order.
        let d = n
            .deps
            .iter()
            .filter_map(|d| depth.get(d.as_str()))
            .map(|d| d + 1)
            .max()
            .unwrap_or(0);
        depth.insert(&n.id, d);
    }
    let mut rows: HashMap<usize, usize> = HashMap::new();
    let mut pos: HashMap<&str, (usize, usize)> = HashMap::new();
    for n in &graph.nodes {
        let col = depth.get(n.id.as_str()).copied().unwrap_or(0);
        let row = rows.entry(col).or_insert(0);
        pos.insert(&n.id, (20 + col * (W + GAP_X), 20 + *row * GAP_Y * 2));
        *row += 1;
    }
    let width = pos.values().map(|p| p.0 + W + 20).max().unwrap_or(200);
    let height = pos
        .values()
        .map(|p| p.1 + H + GAP_Y + 20)
        .max()
        .unwrap_or(100);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="step graph"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>"#
    );
    for e in &graph.edges {
        if let (Some(a), Some(b)) = (pos.get(e.from.as_str()), pos.get(e.to.as_str())) {
            s.push_str(&format!(
                r#"<line class="edge" x1="{}" y1="{}" x2="{}" y2="{}" marker-end="url(#arrow)"/>"#,
                a.0 + W,
                a.1 + H / 2,
                b.0,
                b.1 + H / 2
            ));
        }
    }
    for n in &graph.nodes {
        let Some(&(x, y)) = pos.get(n.id.as_str()) else {
            continue;
        };
        let status = node_status(state, pending, &n.id);
        s.push_str(&format!(
            r#"<g class="node {status}" data-node="{id}" data-status="{status}"><rect x="{x}" y="{y}" width="{W}" height="{H}" rx="6"/><text x="{tx}" y="{ty}">{id}</text><title>{id}: {status}</title></g>"#,
            id = esc(&n.id),
            tx = x + 8,
            ty = y + 21,
        ));
        if n.undo.is_some() {
            let u = undo_status(state, &n.id);
            let uy = y + GAP_Y;
            s.push_str(&format!(
                r#"<line class="undo-edge" x1="{cx}" y1="{y1}" x2="{cx}" y2="{uy}" stroke-dasharray="4 3" marker-end="url(#arrow)"/><g class="undo {u}" data-undo="{id}" data-status="{u}"><rect x="{ux}" y="{uy}" width="{uw}" height="{uh}" rx="4"/><text x="{tx}" y="{ty}">undo {id}</text></g>"#,
                id = esc(&n.id),
                cx = x + W / 2,
                y1 = y + H,
                ux = x + 10,
                uw = W - 20,
                uh = H - 8,
                tx = x + 16,
                ty = uy + 17,
            ));
        }
    }
    s.push_str("</svg>");
    s
}

/// Most graphs kept; beyond, the cache starts again (a server shows the
/// runs of a few runbooks, each compiled once per source).
const CACHED_GRAPHS: usize = 256;

/// The graphs of the runs shown, by the SHA-256 of their runbook's source:
/// the run page and `graph.svg` compile a runbook once per source, not
/// once per request.
#[derive(Default)]
pub struct GraphCache {
    graphs: std::sync::Mutex<HashMap<String, std::sync::Arc<Graph>>>,
    compiled: std::sync::atomic::AtomicUsize,
}

impl GraphCache {
    /// The graph of a run's runbook source (`name`, `text`): compiled, or
    /// taken from the cache when that source was compiled before.
    pub fn graph_of(&self, name: &str, text: String) -> Result<std::sync::Arc<Graph>, String> {
        let key = crate::digest::sha256_hex(text.as_bytes());
        if let Some(g) = self.graphs.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(g);
        }
        let runbook = crate::session::Runbook::Text {
            name: name.to_owned(),
            text,
        };
        let graph = crate::session::load_runbook(&runbook, &mut |_| {})
            .map(|c| std::sync::Arc::new(c.graph))
            .map_err(|e| e.to_string())?;
        self.compiled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut c) = self.graphs.lock() {
            if c.len() >= CACHED_GRAPHS {
                c.clear();
            }
            c.insert(key, graph.clone());
        }
        Ok(graph)
    }

    /// How many runbooks were compiled (not taken from the cache).
    pub fn compiled(&self) -> usize {
        self.compiled.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `GET /runs/{id}/graph.svg`.
pub async fn graph_svg(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let at = or_return!(view_run(&app, &headers, &id).await);
    let app2 = app.clone();
    match super::api::blocking(move || super::page::RunView::load(&at, &app2.graphs)).await {
        Ok(v) => ([(header::CONTENT_TYPE, "image/svg+xml")], v.svg).into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::GraphCache;

    const RUNBOOK: &str = "runbook cached {\n  step a {\n    run \"true\" readonly\n  }\n}\n";

    #[test]
    fn a_runbook_is_compiled_once_per_source() {
        let cache = GraphCache::default();
        let g = cache.graph_of("r1", RUNBOOK.to_owned()).unwrap();
        assert_eq!(g.runbook, "cached");
        cache.graph_of("r1", RUNBOOK.to_owned()).unwrap();
        cache.graph_of("r2", RUNBOOK.to_owned()).unwrap();
        assert_eq!(cache.compiled(), 1, "one source, one compile");
        cache
            .graph_of("r3", RUNBOOK.replace("true", "false"))
            .unwrap();
        assert_eq!(cache.compiled(), 2, "another source is compiled");
    }
}
