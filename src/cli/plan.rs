//! `runbook plan FILE [--input k=v ...]`: what a run would do, in order,
//! with commands rendered (secrets as `***`, values not known before the
//! run as `<name>`) and the rollback that a failure at each step triggers
//! (the last steps with an undo by name, the earlier ones counted: the
//! plan stays linear in the number of steps).

use crate::exec::context::value_json;
use crate::exec::inputs;
use crate::exec::template::Templates;
use crate::plan::{Action, Graph, Node, Text, Value, VerifyPolicy};
use clap::Args;
use serde_json::{Map, Value as J};
use std::fmt::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The runbook file.
    pub file: PathBuf,
    /// An input value (repeatable).
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    pub input: Vec<String>,
    /// A YAML file mapping input names to values.
    #[arg(long, value_name = "FILE.yaml")]
    pub inputs: Option<PathBuf>,
}

pub(super) fn execute(args: PlanArgs) -> i32 {
    let runbook = crate::session::Runbook::File(args.file.clone());
    let (source, compiled) =
        match crate::session::load_runbook_source(&runbook, &mut super::print_notice) {
            Ok(x) => x,
            Err(e) => return super::print_error(e),
        };
    let graph = compiled.graph;
    let mut errors = Vec::new();
    let mut cli = Vec::new();
    for kv in &args.input {
        match inputs::parse_kv(kv) {
            Ok(p) => cli.push(p),
            Err(e) => errors.push(e),
        }
    }
    let file = match &args.inputs {
        None => None,
        Some(p) => match crate::fs_read::read_to_string(p, crate::fs_read::INPUTS) {
            Ok(t) => match inputs::parse_inputs_file(&p.display().to_string(), &t) {
                Ok(m) => Some(m),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            Err(e) => {
                errors.push(format!("cannot read {}: {e}", p.display()));
                None
            }
        },
    };
    let values = match inputs::resolve(&graph.inputs, &cli, file.as_ref()) {
        Ok(v) if errors.is_empty() => v,
        Ok(_) => {
            errors.iter().for_each(|e| eprintln!("error: {e}"));
            return crate::exit::INVALID;
        }
        Err(es) => {
            errors
                .iter()
                .chain(es.iter())
                .for_each(|e| eprintln!("error: {e}"));
            return crate::exit::INVALID;
        }
    };
    let graph = match crate::session::bind_inputs(&runbook, &source, graph.into(), &values) {
        Ok(g) => g,
        Err(e) => return super::print_error(e),
    };
    print!("{}", render_plan(&graph, &values));
    0
}

/// The data a template sees in a plan: inputs as given, secrets masked, and
/// everything only known during the run as `<name>`.
fn base_data(graph: &Graph, inputs: &indexmap::IndexMap<String, Value>) -> Map<String, J> {
    let mut m = Map::new();
    for (k, v) in inputs {
        m.insert(k.clone(), value_json(v));
    }
    for s in &graph.secrets {
        m.insert(s.name.clone(), J::String("***".into()));
    }
    // Values known only at run time show as their names, e.g. `<run.id>`.
    let placeholders = |root: &str, fields: &[&str]| {
        let map: Map<String, J> = fields
            .iter()
            .map(|f| (f.to_string(), J::String(format!("<{root}.{f}>"))))
            .collect();
        J::Object(map)
    };
    let fields: Vec<&str> = crate::compile::RUN_FIELDS
        .iter()
        .chain(crate::compile::CLEANUP_RUN_FIELDS)
        .copied()
        .collect();
    let mut run = placeholders("run", &fields);
    run["runbook"] = J::String(graph.runbook.clone());
    m.insert("run".into(), run);
    m.insert(
        "failure".into(),
        placeholders("failure", crate::compile::FAILURE_FIELDS),
    );
    m
}

struct Renderer<'a> {
    /// The runbook's capture names.
    captures: std::collections::HashSet<&'a str>,
    templates: Templates,
    data: Map<String, J>,
}

impl Renderer<'_> {
    fn text(&self, t: &Text, extra: &Map<String, J>) -> String {
        let mut data = self.data.clone();
        for (k, v) in extra {
            data.insert(k.clone(), v.clone());
        }
        // Captures are only known during the run: answer any path under
        // them with a placeholder. Only the names the text reads are looked
        // up (not every capture of the runbook for every text: that was
        // quadratic in the number of steps).
        for name in referenced_roots(&t.template) {
            if let Some(name) = self.captures.get(name) {
                let paths = crate::exec::template::paths_under(&t.template, name);
                data.insert(
                    name.to_string(),
                    crate::exec::template::placeholder(name, &paths),
                );
            }
        }
        // Escaped exactly as the run would (a shell command shows its
        // quoting), so what is printed is what would execute.
        match self
            .templates
            .render_str(&t.template, t.escape, &J::Object(data))
        {
            Ok(s) => s,
            Err(e) => format!("{} (cannot render before the run: {e})", t.template),
        }
    }

    fn items(&self, list: &crate::plan::Expr) -> Option<Vec<J>> {
        if let crate::plan::ExprKind::Ref(r) = &list.kind {
            if r.path.is_empty() {
                if let Some(J::Array(a)) = self.data.get(&r.name) {
                    return Some(a.clone());
                }
            }
        }
        if let crate::plan::ExprKind::Literal {
            value: Value::List(l),
        } = &list.kind
        {
            return Some(l.iter().map(value_json).collect());
        }
        None
    }

    fn action(&self, a: &Action, extra: &Map<String, J>, indent: &str, out: &mut String) {
        match a {
            Action::Shell { command } => {
                let _ = writeln!(out, "{indent}run: {}", self.text(command, extra));
            }
            Action::Http(req) => {
                let _ = writeln!(
                    out,
                    "{indent}http: {} {}",
                    req.method,
                    self.text(&req.url, extra)
                );
                for h in &req.headers {
                    let _ = writeln!(
                        out,
                        "{indent}  header {}: {}",
                        h.name,
                        self.text(&h.value, extra)
                    );
                }
                if let Some(b) = &req.body {
                    let _ = writeln!(out, "{indent}  body: {}", self.text(&b.text, extra));
                }
            }
            Action::Notify {
                channel,
                message,
                args,
                ..
            } => {
                let mut with_args = extra.clone();
                for (k, v) in args.iter() {
                    with_args.insert(k.clone(), J::String(self.text(v, extra)));
                }
                let text = self.text(message, &with_args);
                let _ = writeln!(
                    out,
                    "{indent}notify {channel}: {}",
                    text.trim_end().replace('\n', &format!("\n{indent}  "))
                );
            }
            Action::Approve {
                message,
                timeout,
                by_other,
            } => {
                let t = timeout
                    .map(|t| format!(" (timeout {})", humantime::format_duration(t)))
                    .unwrap_or_default();
                let other = if *by_other {
                    " (by someone other than whoever started the run)"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "{indent}approve: {}{other}{t}",
                    self.text(message, extra)
                );
            }
            Action::Escalate { reason } => {
                let _ = writeln!(out, "{indent}escalate: {}", self.text(reason, extra));
            }
            Action::Wait { duration } => {
                let _ = writeln!(
                    out,
                    "{indent}wait {}",
                    humantime::format_duration(*duration)
                );
            }
            Action::ForEach {
                var,
                list,
                parallel,
                max_failures,
                body,
            } => {
                let mf = max_failures
                    .map(|m| format!(", max_failures {m}"))
                    .unwrap_or_default();
                match self.items(list) {
                    Some(items) => {
                        let _ = writeln!(
                            out,
                            "{indent}for {var} in {} ({} items, {parallel} at a time{mf}):",
                            list.text,
                            items.len()
                        );
                        for item in items {
                            let mut e = extra.clone();
                            e.insert(var.clone(), item);
                            self.action(body, &e, &format!("{indent}  "), out);
                        }
                    }
                    None => {
                        let _ = writeln!(out, "{indent}for {var} in {} (known during the run, {parallel} at a time{mf}):", list.text);
                        let mut e = extra.clone();
                        e.insert(var.clone(), J::String(format!("<{var}>")));
                        self.action(body, &e, &format!("{indent}  "), out);
                    }
                }
            }
        }
    }
}

/// The first segment of every dotted word inside `{{...}}` in `template`
/// (`live` for `{{live.revision}}`), as [`crate::exec::template::paths_under`]
/// reads them; repeated names appear once.
fn referenced_roots(template: &str) -> Vec<&str> {
    let mut roots: Vec<&str> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after.find("}}").unwrap_or(after.len());
        for word in after[..close].split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')) {
            let root = word.split('.').next().unwrap_or_default();
            if !root.is_empty() && !roots.contains(&root) {
                roots.push(root);
            }
        }
        rest = &after[close..];
    }
    roots
}

/// How many of the steps above a failing step its plan line names before
/// it counts the rest: listing every one made the plan quadratic in the
/// number of steps (2,000 steps with an undo: a 22 MB plan; 20,000: 4.7 GB
/// of memory).
const ROLLBACK_LISTED: usize = 3;

/// `a, then b, then c`, or `a, then b, then c, then the N earlier steps
/// with an undo, in reverse order (x back to y)`: what a failure rolls
/// back, from the steps above with an undo (`undoable`, oldest first).
fn rollback_above(undoable: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = undoable
        .iter()
        .rev()
        .take(ROLLBACK_LISTED)
        .map(|s| s.to_string())
        .collect();
    let earlier = undoable.len().saturating_sub(ROLLBACK_LISTED);
    if earlier == 1 {
        out.push(undoable[0].to_string());
    } else if earlier > 1 {
        out.push(format!(
            "the {earlier} earlier steps with an undo, in reverse order ({} back to {})",
            undoable[earlier - 1],
            undoable[0]
        ));
    }
    out
}

/// `COND within W every E[, N passes in a row]`.
fn verify_text(v: &VerifyPolicy) -> String {
    let mut s = format!(
        "{} within {} every {}",
        v.condition.text,
        humantime::format_duration(v.within),
        humantime::format_duration(v.every)
    );
    if v.consecutive > 1 {
        s.push_str(&format!(", {} passes in a row", v.consecutive));
    }
    s
}

fn policy(n: &Node) -> Vec<String> {
    let mut p = Vec::new();
    if n.retry.retries > 0 {
        let delays: Vec<String> = (2..=n.retry.retries + 1)
            .map(|a| humantime::format_duration(n.retry.delay_before(a)).to_string())
            .collect();
        let jitter = if n.retry.jitter {
            ", each jittered to between half and all of it"
        } else {
            ""
        };
        p.push(format!(
            "retry {} (waits {}{jitter})",
            n.retry.retries,
            delays.join(", ")
        ));
    }
    if let Some(t) = n.timeout {
        p.push(format!(
            "timeout {} per attempt",
            humantime::format_duration(t)
        ));
    }
    p
}

pub(super) fn render_plan(graph: &Graph, inputs: &indexmap::IndexMap<String, Value>) -> String {
    let r = Renderer {
        captures: graph
            .nodes
            .iter()
            .filter_map(|n| n.capture.as_ref().map(|c| c.name.as_str()))
            .collect(),
        templates: Templates::with_stand_ins(),
        data: base_data(graph, inputs),
    };
    let none = Map::new();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan for {}{}",
        graph.runbook,
        graph
            .title
            .as_ref()
            .map(|t| format!(": {t}"))
            .unwrap_or_default()
    );
    let shown: Vec<String> = inputs
        .iter()
        .map(|(k, v)| format!("{k}={}", value_json(v)))
        .collect();
    let _ = writeln!(
        out,
        "inputs: {}",
        if shown.is_empty() {
            "(none)".into()
        } else {
            shown.join(" ")
        }
    );
    // Inputs bound into the plan: `for` lists apart from durations and
    // counts.
    let is_list = |name: &String| {
        graph
            .inputs
            .iter()
            .any(|i| i.name == *name && matches!(i.ty, crate::plan::Type::List(_)))
    };
    let (lists, slots): (Vec<&String>, Vec<&String>) =
        graph.slot_inputs.iter().partition(|n| is_list(n));
    for (what, names) in [
        ("durations and counts from inputs", slots),
        ("`for` blocks laid out from inputs", lists),
    ] {
        if !names.is_empty() {
            let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
            let _ = writeln!(out, "{what}: {}", names.join(", "));
        }
    }
    if !graph.secrets.is_empty() {
        let _ = writeln!(
            out,
            "secrets: {} (shown as ***)",
            graph
                .secrets
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(out, "lock: {}", r.text(&graph.lock, &none));
    if !graph.status_updates.is_empty() {
        let _ = writeln!(out);
        status_plan(
            &r,
            &graph.status_updates,
            "while the run is in progress",
            "",
            &mut out,
        );
    }
    let mut undoable: Vec<String> = Vec::new();
    let mut step_no = 0;
    let mut i = 0;
    // The `always` steps come last in the graph, and print apart.
    let run_steps = graph.nodes.iter().take_while(|n| !n.cleanup).count();
    while i < run_steps {
        let group = graph.nodes[i].group;
        // A nested branch prints within the outermost around it.
        let root = |n: &Node| n.branch.map(|b| graph.arm_chain(b)[0]);
        let branch = root(&graph.nodes[i]).map(|b| b.branch);
        let ladder = graph.nodes[i].attempt.map(|a| a.ladder);
        let members: Vec<&Node> = match (group, branch) {
            (None, None) if ladder.is_some() => graph.nodes[i..]
                .iter()
                .take_while(|n| n.attempt.map(|a| a.ladder) == ladder)
                .collect(),
            (Some(g), _) => graph.nodes[i..]
                .iter()
                .take_while(|n| n.group == Some(g))
                .collect(),
            (None, Some(b)) => graph.nodes[i..]
                .iter()
                .take_while(|n| root(n).map(|x| x.branch) == Some(b))
                .collect(),
            (None, None) => vec![&graph.nodes[i]],
        };
        step_no += 1;
        out.push('\n');
        let group = group.or(branch).or(ladder);
        if ladder.is_some() {
            let _ = writeln!(
                out,
                "{step_no}. fallback ladder: the attempts in order until one succeeds; a failed attempt's completed steps are undone before the next starts"
            );
        } else if let Some(b) = branch.and_then(|b| graph.branches.get(b)) {
            let _ = writeln!(
                out,
                "{step_no}. branch, decided when reached: the first arm that holds runs{}",
                if b.arms.iter().any(|a| a.condition.is_none()) {
                    ""
                } else {
                    " (none if none holds)"
                }
            );
        } else if members.len() > 1 || group.is_some() {
            let _ = writeln!(
                out,
                "{step_no}. in parallel: {}",
                members
                    .iter()
                    .map(|n| n.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for (k, n) in members.iter().enumerate() {
            let label = if group.is_some() {
                format!("   {step_no}{}.", (b'a' + (k as u8 % 26)) as char)
            } else {
                format!("{step_no}.")
            };
            // The label of each arm (outermost first) it is the first of.
            let chain = n.branch.map(|b| graph.arm_chain(b)).unwrap_or_default();
            for (depth, b) in chain.iter().enumerate() {
                let br = graph.branches.get(b.branch);
                let arm = br.and_then(|x| x.arms.get(b.arm));
                if arm.and_then(|a| a.nodes.first()) == Some(&n.id) {
                    let label = arm.map(|a| a.label(b.arm)).unwrap_or_default();
                    let pad = "  ".repeat(depth);
                    let _ = writeln!(out, "   {pad}{label}:");
                }
            }
            if let Some(a) = n.attempt {
                let l = graph.ladders.get(a.ladder);
                if l.and_then(|l| l.attempts.get(a.attempt))
                    .and_then(|x| x.nodes.first())
                    == Some(&n.id)
                {
                    let label = l.map(|l| l.label(a.attempt)).unwrap_or_default();
                    let _ = writeln!(out, "   {label}:");
                }
            }
            let effect = format!("{:?}", n.effect).to_lowercase();
            let _ = writeln!(out, "{label} {} [{effect}]", n.id);
            let ind = if group.is_some() { "       " } else { "   " };
            // A step of a `for` block: its item bound, and said.
            let mut item = Map::new();
            if let Some(at) = n.item {
                if let Some(b) = graph.for_blocks.get(at.block) {
                    if let Some(input) = b.input.as_ref().filter(|_| b.pending) {
                        let _ = writeln!(
                            out,
                            "{ind}for {} in {input}: one step per item of input `{input}`, laid out when its value is given",
                            b.var
                        );
                    }
                    if let Some(v) = b.items.get(at.index) {
                        item.insert(b.var.clone(), value_json(v));
                        let _ = writeln!(
                            out,
                            "{ind}for {} = {} (item {} of {}{}{})",
                            b.var,
                            value_json(v),
                            at.index + 1,
                            b.items.len(),
                            match b.parallel {
                                1 => String::new(),
                                p => format!(", up to {p} items at once"),
                            },
                            match b.max_failures {
                                Some(m) => format!(", up to {m} item(s) may fail"),
                                None => String::new(),
                            }
                        );
                    }
                }
            }
            let none = item; // the item bound, as the actions read it
            if let Some(w) = &n.when {
                let _ = writeln!(out, "{ind}only when: {}", w.text);
            }
            if let Some(a) = &n.approval {
                r.action(a, &none, ind, &mut out);
            }
            match &n.action {
                Some(a) => r.action(a, &none, ind, &mut out),
                None => {
                    let _ = writeln!(out, "{ind}(verify only)");
                }
            }
            for p in policy(n) {
                let _ = writeln!(out, "{ind}{p}");
            }
            if let Some(l) = &n.repeat {
                let _ = writeln!(
                    out,
                    "{ind}loop until: {} (every {}, within {})",
                    l.condition.text,
                    humantime::format_duration(l.every),
                    humantime::format_duration(l.within)
                );
            }
            if let Some(v) = &n.verify {
                let _ = writeln!(out, "{ind}verify: {}", verify_text(v));
            }
            if let Some(c) = &n.capture {
                let format = format!("{:?}", c.format).to_lowercase();
                let _ = writeln!(out, "{ind}capture {format} as {}", c.name);
            }
            if let Some(u) = &n.undo {
                let mut s = String::new();
                r.action(u, &none, "", &mut s);
                let _ = writeln!(
                    out,
                    "{ind}undo: {}",
                    s.trim_end().replace('\n', &format!("\n{ind}      "))
                );
            }
            if let (Some(c), Some(_)) = (&n.undo_when, &n.undo) {
                let _ = writeln!(
                    out,
                    "{ind}undo only when {} (evaluated at rollback)",
                    c.text
                );
            }
            if let (Some(t), Some(_)) = (n.undo_timeout, &n.undo) {
                let _ = writeln!(
                    out,
                    "{ind}undo timeout {} per attempt",
                    humantime::format_duration(t)
                );
            }
            if let Some(why) = &n.undo_none {
                let _ = writeln!(out, "{ind}undo: none ({why})");
            }
            status_plan(
                &r,
                &n.status_updates,
                "while the step is in progress",
                ind,
                &mut out,
            );
            if n.keep {
                let _ = writeln!(
                    out,
                    "{ind}keep point: once it has completed, a later failure keeps it and what completed before it"
                );
            }
            let mut rollback: Vec<String> = Vec::new();
            if n.undo.is_some() {
                match (&n.action, n.verify.is_some()) {
                    (Some(Action::ForEach { .. }), _) => {
                        rollback.push(format!("{} (the items that completed)", n.id))
                    }
                    (_, true) => rollback.push(format!("{} (if its action completed)", n.id)),
                    _ => {}
                }
            }
            if n.branch.is_none()
                && n.attempt.is_none()
                && members.len() > 1
                && members.iter().any(|m| m.id != n.id && m.undo.is_some())
            {
                rollback.push("parallel steps that completed".into());
            }
            // A step of a ladder's attempt: the steps above it in its own
            // attempt (the earlier attempts were undone, or it never runs).
            let attempt = n.attempt.and_then(|a| {
                let l = graph.ladders.get(a.ladder)?;
                Some((a, l, l.attempts.get(a.attempt)?))
            });
            if let Some((_, _, at)) = attempt {
                let mine = at.nodes.iter().position(|m| *m == n.id).unwrap_or(0);
                for m in at.nodes[..mine].iter().rev() {
                    if graph.node(m).is_some_and(|x| x.undo.is_some()) {
                        rollback.push(m.clone());
                    }
                }
            }
            let falls_back = attempt
                .filter(|(a, l, _)| !l.is_last(a.attempt) && !n.continue_on_error)
                .map(|(a, l, _)| l.label(a.attempt + 1));
            if let Some(next) = falls_back {
                let _ = writeln!(
                    out,
                    "{ind}if it fails: its attempt is abandoned{}, then {next} starts",
                    if rollback.is_empty() {
                        ": nothing to undo".to_owned()
                    } else {
                        format!(" and undone ({})", rollback.join(", then "))
                    }
                );
                continue;
            }
            if let Some(b) = n.branch.map(|b| graph.arm_chain(b)[0]) {
                // The steps above it in its own arm (the outermost): those
                // of a nested arm only if that arm ran.
                let arm = graph.branches.get(b.branch).and_then(|x| x.arms.get(b.arm));
                let chain = n.branch.map(|x| graph.arm_chain(x)).unwrap_or_default();
                for m in arm.into_iter().flat_map(|a| &a.nodes).rev() {
                    let above = members.iter().position(|x| x.id == *m)
                        < members.iter().position(|x| x.id == n.id);
                    let Some(x) = members.iter().find(|x| x.id == *m && x.undo.is_some()) else {
                        continue;
                    };
                    // A ladder's steps: its own attempt's are listed above
                    // (the others were undone, or never ran).
                    let ladder = |y: &Node| y.attempt.map(|a| a.ladder);
                    if !above || (x.attempt.is_some() && ladder(x) == ladder(n)) {
                        continue;
                    }
                    let sure = x.branch.is_some_and(|xb| chain.contains(&xb));
                    rollback.push(if x.attempt.is_some() {
                        format!("{m} (if its attempt ran and was not abandoned)")
                    } else if sure {
                        m.clone()
                    } else {
                        format!("{m} (if its arm ran)")
                    });
                }
            }
            let names: Vec<&str> = undoable.iter().map(String::as_str).collect();
            rollback.extend(rollback_above(&names));
            if matches!(n.action, Some(Action::Escalate { .. })) && !n.continue_on_error {
                let _ = writeln!(
                    out,
                    "{ind}if it runs: the run stops for a human (needs_human); nothing is undone"
                );
            } else if n.continue_on_error {
                let _ = writeln!(out, "{ind}if it fails: recorded, and the run goes on");
            } else if let Some(m) = n
                .item
                .and_then(|i| graph.for_blocks.get(i.block))
                .and_then(|b| b.max_failures)
                .filter(|m| *m > 0)
            {
                let _ = writeln!(
                    out,
                    "{ind}if it fails: the later steps of its item are skipped; past {m} failed item(s), the run stops{}",
                    if rollback.is_empty() {
                        "; nothing to roll back".to_owned()
                    } else {
                        format!(" and rolls back {}", rollback.join(", then "))
                    }
                );
            } else if rollback.is_empty() {
                let _ = writeln!(out, "{ind}if it fails: the run stops; nothing to roll back");
            } else {
                let _ = writeln!(
                    out,
                    "{ind}if it fails: the run stops and rolls back {}",
                    rollback.join(", then ")
                );
            }
        }
        for n in &members {
            if n.undo.is_some() {
                undoable.push(if n.attempt.is_some() {
                    format!("{} (if its attempt ran and was not abandoned)", n.id)
                } else if n.branch.is_some() {
                    format!("{} (if its arm ran)", n.id)
                } else {
                    n.id.clone()
                });
            }
        }
        // A failure after a keep point undoes only what came after it.
        if members.iter().any(|n| n.keep) {
            undoable.clear();
        }
        i += members.len();
    }
    cleanup_plan(&r, &graph.nodes[run_steps..], &mut out);
    for (name, actions) in [
        ("on failure", &graph.on_failure),
        ("on success", &graph.on_success),
    ] {
        if !actions.is_empty() {
            let _ = writeln!(out, "\n{name}:");
            for a in actions {
                r.action(a, &none, "   ", &mut out);
            }
        }
    }
    if let Some(v) = &graph.after_rollback {
        let _ = writeln!(out, "\nafter a rollback, verify: {}", verify_text(v));
    }
    out
}

/// `every D notify ...`: the schedule, then the message.
fn status_plan(
    r: &Renderer<'_>,
    updates: &[crate::plan::StatusUpdate],
    while_: &str,
    ind: &str,
    out: &mut String,
) {
    for u in updates {
        let first = humantime::format_duration(u.due(1));
        let every = humantime::format_duration(u.every);
        let _ = writeln!(
            out,
            "{ind}status update every {every} {while_} (first at {first}):"
        );
        r.action(&u.notify, &Map::new(), &format!("{ind}  "), out);
    }
}

/// The `always` steps: after the steps and any rollback, in order.
fn cleanup_plan(r: &Renderer<'_>, nodes: &[Node], out: &mut String) {
    if nodes.is_empty() {
        return;
    }
    let none = Map::new();
    let _ = writeln!(
        out,
        "\nalways (after the steps and any rollback, whatever the outcome; run.outcome and run.rollback known):"
    );
    let ind = "   ";
    for (k, n) in nodes.iter().enumerate() {
        let effect = format!("{:?}", n.effect).to_lowercase();
        let _ = writeln!(out, "A{}. {} [{effect}]", k + 1, n.id);
        if let Some(w) = &n.when {
            let _ = writeln!(out, "{ind}only when: {}", w.text);
        }
        if let Some(a) = &n.approval {
            r.action(a, &none, ind, out);
        }
        match &n.action {
            Some(a) => r.action(a, &none, ind, out),
            None => {
                let _ = writeln!(out, "{ind}(verify only)");
            }
        }
        for p in policy(n) {
            let _ = writeln!(out, "{ind}{p}");
        }
        if let Some(v) = &n.verify {
            let _ = writeln!(out, "{ind}verify: {}", verify_text(v));
        }
        if let Some(c) = &n.capture {
            let format = format!("{:?}", c.format).to_lowercase();
            let _ = writeln!(out, "{ind}capture {format} as {}", c.name);
        }
        let _ = writeln!(
            out,
            "{ind}if it fails: recorded; nothing is undone, and the next `always` step runs"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_last_steps_and_counts_the_rest() {
        assert!(rollback_above(&[]).is_empty());
        assert_eq!(rollback_above(&["a", "b"]), ["b", "a"]);
        assert_eq!(rollback_above(&["a", "b", "c", "d"]), ["d", "c", "b", "a"]);
        assert_eq!(
            rollback_above(&["a", "b", "c", "d", "e", "f"]),
            [
                "f",
                "e",
                "d",
                "the 3 earlier steps with an undo, in reverse order (c back to a)"
            ]
        );
    }

    #[test]
    fn the_plan_grows_linearly_with_the_steps() {
        let size = |n: usize| {
            let mut rb = String::from("runbook big {\n");
            for i in 0..n {
                rb.push_str(&format!(
                    "  step s{i} {{ run \"echo {i}\" undo \"echo u{i}\" capture text as c{i} }}\n"
                ));
            }
            rb.push_str("}\n");
            let source = crate::source::Source::new("big.runbook", rb);
            let graph = crate::compile::compile(&source).expect("compiles").graph;
            render_plan(&graph, &indexmap::IndexMap::new()).len()
        };
        let (small, large) = (size(200), size(2000));
        // Ten times the steps, about ten times the text (not a hundred).
        assert!(large < small * 12, "{small} -> {large}");
    }
}
