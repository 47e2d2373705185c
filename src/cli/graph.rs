//! `runbook graph FILE --format dot|mermaid|json`.

use crate::plan::{Action, BranchRef, Graph};
use clap::{Args, ValueEnum};
use std::fmt::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct GraphArgs {
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Mermaid,
    Json,
}

pub(super) fn execute(args: GraphArgs) -> i32 {
    let Some(compiled) = super::load(&args.file) else {
        return crate::exit::INVALID;
    };
    let g = &compiled.graph;
    let out = match args.format {
        GraphFormat::Dot => dot(g),
        GraphFormat::Mermaid => mermaid(g),
        GraphFormat::Json => serde_json::to_string_pretty(g).unwrap_or_default(),
    };
    println!("{out}");
    0
}

fn label(n: &crate::plan::Node) -> String {
    let what = match &n.action {
        Some(Action::ForEach { var, .. }) => format!(
            "for {var}: {}",
            n.action.as_ref().map(Action::adapter).unwrap_or("")
        ),
        Some(a) => a.adapter().to_string(),
        None => "verify".to_string(),
    };
    let cond = if n.when.is_some() { " (when)" } else { "" };
    format!("{}\\n{what}{cond}", n.id)
}

/// The run's last steps (no step of the run after them) and the first
/// `always` step, which runs after them and after any rollback.
fn into_cleanup(g: &Graph) -> Option<(Vec<&str>, &str)> {
    let first = g.nodes.iter().find(|n| n.cleanup)?;
    let last = g
        .nodes
        .iter()
        .filter(|n| !n.cleanup)
        .filter(|n| !g.edges.iter().any(|e| e.from == n.id))
        .map(|n| n.id.as_str())
        .collect();
    Some((last, first.id.as_str()))
}

/// Each `if` as a decision: (its id in the drawing, the nodes before it,
/// and each arm's label and first node). Edges into an arm's first node
/// are drawn through the decision instead.
struct Decision {
    id: String,
    before: Vec<String>,
    /// Each arm's label and what it leads to: its first node, or the
    /// decision of the block nested first in it.
    arms: Vec<(String, String)>,
    /// The arms' first nodes.
    firsts: Vec<String>,
}

fn decisions(g: &Graph) -> Vec<Decision> {
    g.branches
        .iter()
        .enumerate()
        .map(|(b, br)| {
            let mut arms = Vec::new();
            let mut firsts = Vec::new();
            for (k, a) in br.arms.iter().enumerate() {
                let Some(first) = a.nodes.first() else {
                    continue;
                };
                // The arm's first node is in a block nested in it: the
                // arm leads to that block's decision.
                let chain = g
                    .node(first)
                    .and_then(|n| n.branch)
                    .map(|r| g.arm_chain(r))
                    .unwrap_or_default();
                let here = BranchRef { branch: b, arm: k };
                let target = chain
                    .iter()
                    .position(|r| *r == here)
                    .and_then(|i| chain.get(i + 1))
                    .map_or_else(
                        || first.clone(),
                        |inner| format!("branch_{}", inner.branch + 1),
                    );
                arms.push((a.label(k), target));
                firsts.push(first.clone());
            }
            // Nested first in its parent's arm: reached from that decision.
            let nested_first = br.parent.is_some_and(|p| {
                g.branches
                    .get(p.branch)
                    .and_then(|pb| pb.arms.get(p.arm))
                    .and_then(|pa| pa.nodes.first())
                    .is_some_and(|n| firsts.contains(n))
            });
            let before = if nested_first {
                Vec::new()
            } else {
                firsts
                    .first()
                    .and_then(|n| g.node(n))
                    .map(|n| n.deps.clone())
                    .unwrap_or_default()
            };
            Decision {
                id: format!("branch_{}", b + 1),
                before,
                arms,
                firsts,
            }
        })
        .collect()
}

/// The edge from an attempt of a ladder to the next: taken only if the
/// attempt failed (and was undone). Its label, if `e` is one.
fn fallback(g: &Graph, e: &crate::plan::Edge) -> Option<String> {
    let to = g.node(&e.to)?.attempt?;
    let from = g.node(&e.from)?.attempt?;
    let l = g.ladders.get(to.ladder)?;
    let first = l.attempts.get(to.attempt)?.nodes.first()?;
    (from.ladder == to.ladder && from.attempt + 1 == to.attempt && *first == e.to)
        .then(|| format!("if it fails: undone, then {}", l.label(to.attempt)))
}

/// Whether the edge into `to` is drawn through a decision.
fn through_decision(ds: &[Decision], to: &str) -> bool {
    ds.iter().any(|d| d.firsts.iter().any(|n| n == to))
}

pub(super) fn dot(g: &Graph) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph \"{}\" {{", g.runbook);
    let _ = writeln!(s, "  rankdir=TB;\n  node [shape=box, style=rounded];");
    for n in g.nodes.iter().filter(|n| !n.cleanup) {
        let _ = writeln!(s, "  \"{}\" [label=\"{}\"];", n.id, label(n));
        if n.undo.is_some() {
            let _ = writeln!(
                s,
                "  \"undo:{}\" [label=\"undo {}\", style=dashed];",
                n.id, n.id
            );
            let _ = writeln!(
                s,
                "  \"{}\" -> \"undo:{}\" [style=dashed, label=\"on rollback\"];",
                n.id, n.id
            );
        }
    }
    if let Some((last, first)) = into_cleanup(g) {
        s.push_str("  subgraph cluster_always {\n    label=\"always (whatever the outcome)\";\n    style=dashed;\n");
        for n in g.nodes.iter().filter(|n| n.cleanup) {
            let _ = writeln!(s, "    \"{}\" [label=\"{}\"];", n.id, label(n));
        }
        s.push_str("  }\n");
        for l in last {
            let _ = writeln!(
                s,
                "  \"{l}\" -> \"{first}\" [style=dotted, label=\"after any rollback\"];"
            );
        }
    }
    let ds = decisions(g);
    for d in &ds {
        let _ = writeln!(s, "  \"{}\" [label=\"branch\", shape=diamond];", d.id);
        for b in &d.before {
            let _ = writeln!(s, "  \"{b}\" -> \"{}\";", d.id);
        }
        for (label, first) in &d.arms {
            let _ = writeln!(
                s,
                "  \"{}\" -> \"{first}\" [label=\"{}\"];",
                d.id,
                label.replace('\\', "\\\\").replace('"', "\\\"")
            );
        }
    }
    for e in g.edges.iter().filter(|e| !through_decision(&ds, &e.to)) {
        match fallback(g, e) {
            Some(l) => {
                let _ = writeln!(
                    s,
                    "  \"{}\" -> \"{}\" [style=dashed, label=\"{l}\"];",
                    e.from, e.to
                );
            }
            None => {
                let _ = writeln!(s, "  \"{}\" -> \"{}\";", e.from, e.to);
            }
        }
    }
    s.push('}');
    s
}

pub(super) fn mermaid(g: &Graph) -> String {
    let mut s = String::from("flowchart TD\n");
    for n in g.nodes.iter().filter(|n| !n.cleanup) {
        let _ = writeln!(s, "  {}[\"{}\"]", n.id, label(n).replace("\\n", "<br/>"));
        if n.undo.is_some() {
            let _ = writeln!(s, "  undo_{}([\"undo {}\"])", n.id, n.id);
            let _ = writeln!(s, "  {} -. on rollback .-> undo_{}", n.id, n.id);
        }
    }
    if let Some((last, first)) = into_cleanup(g) {
        s.push_str("  subgraph runbook_always[\"always (whatever the outcome)\"]\n");
        for n in g.nodes.iter().filter(|n| n.cleanup) {
            let _ = writeln!(s, "    {}[\"{}\"]", n.id, label(n).replace("\\n", "<br/>"));
        }
        s.push_str("  end\n");
        for l in last {
            let _ = writeln!(s, "  {l} -. after any rollback .-> {first}");
        }
    }
    let ds = decisions(g);
    for d in &ds {
        let _ = writeln!(s, "  {}{{branch}}", d.id);
        for b in &d.before {
            let _ = writeln!(s, "  {b} --> {}", d.id);
        }
        for (label, first) in &d.arms {
            let label = label.replace('"', "#quot;").replace('|', "#124;");
            let _ = writeln!(s, "  {} -->|\"{label}\"| {first}", d.id);
        }
    }
    for e in g.edges.iter().filter(|e| !through_decision(&ds, &e.to)) {
        match fallback(g, e) {
            Some(l) => {
                let _ = writeln!(s, "  {} -. \"{l}\" .-> {}", e.from, e.to);
            }
            None => {
                let _ = writeln!(s, "  {} --> {}", e.from, e.to);
            }
        }
    }
    s
}
