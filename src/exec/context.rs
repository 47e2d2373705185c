//! The run context: everything a node needs while the run goes on
//! (inputs, secrets, captures, adapters, the emitter), template data and
//! the resolver that conditions read values through.

use super::cond::{follow, Resolve, V};
use super::template::{paths_under, placeholder, Form, Templates};
use super::{RunOptions, Settings};
use crate::adapters::{Adapters, Rendered};
use crate::events::{Emitter, EventKind, Mode};
use crate::plan::{Graph, Ref, RefRoot, Text, Value};
use indexmap::IndexMap;
use serde_json::{Map, Value as J};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// What a template or condition reads at run time besides inputs, secrets
/// and captures: the loop variable, and `failure.*` in `on failure`.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    pub loop_var: Option<(String, V)>,
    /// A step of a `for` block: its variable and item. Kept apart from
    /// `loop_var` (a fan-out inside the step), so that journal events of
    /// the step name no fan-out item: the node id names the item.
    pub body_var: Option<(String, V)>,
    /// `failure.*` (the `on failure` handler only).
    pub failure: Option<Failure>,
    /// `run.outcome` and `run.rollback` (the `always` steps only).
    pub concluded: Option<Concluded>,
    /// A step of a `for` block: the item's label. Its captures are kept
    /// apart from other items' (stored as `NAME[ITEM]`).
    pub item: Option<String>,
    /// `self.*` (a step's `undo` and `undo when` only).
    pub own: Option<OwnStep>,
}

/// How the step being undone went, as its `undo` reads it: `self.outcome`
/// (`succeeded`, or `failed` when its action completed but its `verify`
/// or `capture` did not) and `self.attempts` (attempts of its action).
#[derive(Debug, Clone)]
pub struct OwnStep {
    pub outcome: &'static str,
    pub attempts: u32,
}

/// How the run came out, as an `always` step reads it: `run.outcome`
/// (`Outcome::as_str`) and `run.rollback` (as `failure.rollback`; `none`
/// when nothing failed).
#[derive(Debug, Clone)]
pub struct Concluded {
    pub outcome: &'static str,
    pub rollback: &'static str,
}

/// What `on failure` knows about the failure: `failure.step`,
/// `failure.reason`, and `failure.rollback`, so that a message can say
/// whether humans must finish the job.
#[derive(Debug, Clone)]
pub struct Failure {
    pub step: String,
    pub reason: String,
    /// `complete` (every undo ran and `after rollback verify` held),
    /// `incomplete` (an undo failed or health did not come back), or
    /// `skipped` (cancelled with `--no-rollback-on-cancel`).
    pub rollback: &'static str,
    /// `failure.completed`: steps that completed (succeeded), in order.
    pub completed: Vec<String>,
    /// `failure.undone`: steps whose undo succeeded.
    pub undone: Vec<String>,
    /// `failure.kept`: changes a keep point left in place.
    pub kept: Vec<String>,
}

fn names(v: &[String]) -> J {
    J::Array(v.iter().cloned().map(J::String).collect())
}

impl Bindings {
    pub fn with_item(&self, var: &str, item: V) -> Bindings {
        Bindings {
            loop_var: Some((var.to_owned(), item)),
            body_var: self.body_var.clone(),
            failure: self.failure.clone(),
            concluded: self.concluded.clone(),
            item: self.item.clone(),
            own: self.own.clone(),
        }
    }

    pub fn item_display(&self) -> Option<String> {
        self.loop_var.as_ref().map(|(_, v)| v.display())
    }
}

pub struct RunCtx {
    pub graph: Arc<Graph>,
    pub opts: RunOptions,
    pub adapters: Adapters,
    pub emitter: Arc<Emitter>,
    pub templates: Templates,
    pub captures: Mutex<IndexMap<String, V>>,
    /// The `always` steps are running: the run's steps are over, so they
    /// are cancelled as the rollback is (by a second Ctrl-C), not by the
    /// first, which has stopped the steps already.
    pub cleanup: std::sync::atomic::AtomicBool,
    /// The arm each `if` took (`None`: no arm), decided once when the
    /// first of its nodes is reached, or read back from the journal by
    /// `runbook resume`.
    pub branches: tokio::sync::Mutex<std::collections::HashMap<usize, Option<usize>>>,
    /// The attempts of fallback ladders abandoned so far: (ladder,
    /// attempt). A node of an attempt runs only if every attempt before
    /// it was abandoned (`exec::ladder`).
    pub abandoned: Mutex<std::collections::HashSet<(usize, usize)>>,
    /// Items of `for` blocks that failed within `max_failures`, by block:
    /// their later steps are skipped.
    pub failed_items: Mutex<std::collections::HashMap<usize, Vec<usize>>>,
    /// When the run started (RFC 3339), `run.started`.
    pub started: String,
    /// The run's status updates in progress (`every D notify ...`).
    pub(crate) run_updates: std::sync::Mutex<Option<super::status::RunUpdates>>,
    base_send: Map<String, J>,
    base_display: Map<String, J>,
    has_secrets: bool,
}

pub fn value_json(v: &Value) -> J {
    V::from_value(v).to_json()
}

impl RunCtx {
    pub fn new(
        graph: Arc<Graph>,
        opts: RunOptions,
        adapters: Adapters,
        emitter: Arc<Emitter>,
    ) -> Self {
        let mut base = Map::new();
        for (k, v) in &opts.inputs {
            base.insert(k.clone(), value_json(v));
        }
        let mut run = Map::new();
        run.insert("id".into(), J::String(opts.run_id.clone()));
        run.insert("runbook".into(), J::String(graph.runbook.clone()));
        run.insert("mode".into(), J::String(opts.mode.as_str().into()));
        let started = emitter.clock().timestamp();
        run.insert("started".into(), J::String(started.clone()));
        base.insert("run".into(), J::Object(run));
        let mut base_send = base.clone();
        let mut base_display = base;
        for (k, v) in &opts.secrets {
            // An unknown secret (dry run without it) is shown masked either way.
            base_send.insert(
                k.clone(),
                J::String(
                    v.clone()
                        .unwrap_or_else(|| crate::events::redact::MASK.into()),
                ),
            );
            base_display.insert(k.clone(), J::String(crate::events::redact::MASK.into()));
        }
        // A dry run shows stand-ins for what it does not know.
        let templates = if opts.mode == Mode::DryRun {
            Templates::with_stand_ins()
        } else {
            Templates::new()
        };
        RunCtx {
            has_secrets: !opts.secrets.is_empty(),
            graph,
            opts,
            adapters,
            emitter,
            templates,
            captures: Mutex::new(IndexMap::new()),
            cleanup: std::sync::atomic::AtomicBool::new(false),
            branches: tokio::sync::Mutex::new(std::collections::HashMap::new()),
            failed_items: Mutex::new(std::collections::HashMap::new()),
            abandoned: Mutex::new(std::collections::HashSet::new()),
            started,
            run_updates: std::sync::Mutex::new(None),
            base_send,
            base_display,
        }
    }

    pub fn mode(&self) -> Mode {
        self.opts.mode
    }

    pub fn settings(&self) -> &Settings {
        &self.opts.settings
    }

    pub fn simulated(&self) -> bool {
        self.opts.mode != Mode::Live
    }

    /// The token that cancels work in `phase`: the run's steps (and their
    /// checks) stop at the first Ctrl-C; undos, handlers and the `always`
    /// steps only at the second.
    pub(crate) fn cancel_for(&self, phase: crate::events::Phase) -> &CancellationToken {
        use crate::events::Phase;
        match phase {
            Phase::Undo | Phase::Handler | Phase::Status => &self.opts.cancel_rollback,
            _ if self.cleanup.load(std::sync::atomic::Ordering::Relaxed) => {
                &self.opts.cancel_rollback
            }
            _ => &self.opts.cancel,
        }
    }

    pub fn emit(&self, node: Option<&str>, kind: EventKind) {
        self.emitter.emit(node, kind)
    }

    fn data(
        &self,
        form: Form,
        template: &str,
        scope: &Bindings,
        args: Option<&IndexMap<String, Rendered>>,
    ) -> J {
        let base = match form {
            Form::Send => &self.base_send,
            Form::Display => &self.base_display,
        };
        // Only the values the template names: building every input and
        // capture for every render made a run quadratic in its number of
        // captures (and copying the inputs was most of a render).
        let words = template_words(template);
        let mut m = match &words {
            Some(words) => {
                let mut m = Map::new();
                for w in words {
                    if let Some((k, v)) = base.get_key_value(*w) {
                        m.insert(k.clone(), v.clone());
                    }
                }
                m
            }
            None => base.clone(),
        };
        if let Ok(caps) = self.captures.lock() {
            let insert = |m: &mut Map<String, J>, k: &String, v: &V| {
                let j = match v {
                    V::Unknown(_) => placeholder(k, &paths_under(template, k)),
                    v => v.to_json(),
                };
                m.insert(k.clone(), j);
            };
            match &words {
                Some(words) => {
                    for w in words {
                        if let Some((k, v)) = caps.get_key_value(*w) {
                            insert(&mut m, k, v);
                        }
                        // A `for` step reads its own item's capture.
                        if let Some(v) = scope.item.as_ref().and_then(|i| caps.get(&item_key(w, i)))
                        {
                            insert(&mut m, &(*w).to_owned(), v);
                        }
                    }
                }
                None => caps.iter().for_each(|(k, v)| insert(&mut m, k, v)),
            }
        }
        for (var, v) in scope.body_var.iter().chain(&scope.loop_var) {
            m.insert(var.clone(), v.to_json());
        }
        if let Some(c) = &scope.concluded {
            if let Some(J::Object(run)) = m.get_mut("run") {
                run.insert("outcome".into(), J::String(c.outcome.into()));
                run.insert("rollback".into(), J::String(c.rollback.into()));
            }
        }
        if let Some(failure) = &scope.failure {
            let mut f = Map::new();
            f.insert("step".into(), J::String(failure.step.clone()));
            f.insert("reason".into(), J::String(failure.reason.clone()));
            f.insert("rollback".into(), J::String(failure.rollback.into()));
            f.insert("completed".into(), names(&failure.completed));
            f.insert("undone".into(), names(&failure.undone));
            f.insert("kept".into(), names(&failure.kept));
            m.insert("failure".into(), J::Object(f));
        }
        if let Some(own) = &scope.own {
            let mut o = Map::new();
            o.insert("outcome".into(), J::String(own.outcome.into()));
            o.insert("attempts".into(), J::from(own.attempts));
            m.insert("self".into(), J::Object(o));
        }
        if let Some(args) = args {
            for (k, r) in args {
                let s = match form {
                    Form::Send => r.send.clone(),
                    Form::Display => r.display.clone(),
                };
                m.insert(k.clone(), J::String(s));
            }
        }
        J::Object(m)
    }

    /// Renders a text for sending and for display.
    pub fn render(
        &self,
        text: &Text,
        scope: &Bindings,
        args: Option<&IndexMap<String, Rendered>>,
    ) -> Result<Rendered, String> {
        let with_secrets =
            self.has_secrets || args.is_some_and(|a| a.values().any(Rendered::has_secret));
        self.templates
            .render(text, with_secrets, &|form| {
                self.data(form, &text.template, scope, args)
            })
            .map_err(|e| {
                format!(
                    "template `{}`: {e}",
                    self.emitter.redactor().redact(&text.template)
                )
            })
    }

    /// [`Self::render`] for a text people read (a notification, an
    /// approval question), with every known secret masked in both forms.
    /// The compiler refuses secrets in such texts, but a capture can hold
    /// one (`run "vault read ..."` then `notify ... "{{out}}"`); what is sent
    /// to a channel, written to an approval file or shown at a prompt never
    /// passes through the journal's redaction.
    pub fn render_message(
        &self,
        text: &Text,
        scope: &Bindings,
        args: Option<&IndexMap<String, Rendered>>,
    ) -> Result<Rendered, String> {
        let r = self.render(text, scope, args)?;
        let redactor = self.emitter.redactor();
        Ok(Rendered {
            send: redactor.redact(&r.send),
            display: redactor.redact(&r.display),
        })
    }

    pub fn capture(&self, name: &str) -> Option<V> {
        self.captures.lock().ok().and_then(|c| c.get(name).cloned())
    }

    /// Counts a failed item of a `for` block against its `max_failures`:
    /// `true` if the run may go on (its later steps are then skipped).
    pub fn tolerate_item_failure(&self, item: crate::plan::ItemRef) -> bool {
        let Some(max) = self
            .graph
            .for_blocks
            .get(item.block)
            .and_then(|b| b.max_failures)
        else {
            return false;
        };
        let Ok(mut failed) = self.failed_items.lock() else {
            return false;
        };
        let list = failed.entry(item.block).or_default();
        if list.contains(&item.index) {
            return true;
        }
        if list.len() < max {
            list.push(item.index);
            return true;
        }
        false
    }

    /// An item of a `for` block that failed earlier (within its
    /// `max_failures`): its later steps do not run.
    pub fn item_failed(&self, item: crate::plan::ItemRef) -> bool {
        self.failed_items
            .lock()
            .is_ok_and(|f| f.get(&item.block).is_some_and(|l| l.contains(&item.index)))
    }

    /// A failed item read back from the journal by `runbook resume`.
    pub fn note_failed_item(&self, item: crate::plan::ItemRef) {
        if let Ok(mut f) = self.failed_items.lock() {
            let list = f.entry(item.block).or_default();
            if !list.contains(&item.index) {
                list.push(item.index);
            }
        }
    }

    pub fn store_capture(&self, name: &str, v: V) {
        if let Ok(mut c) = self.captures.lock() {
            c.insert(name.to_owned(), v);
        }
    }
}

/// Where the capture `name` of a `for` step of item `item` is stored:
/// `NAME[ITEM]`, so that items running at once keep their own.
pub fn item_key(name: &str, item: &str) -> String {
    format!("{name}[{item}]")
}

/// Every distinct identifier-like word of `template` (letters, digits, `_`;
/// literal text included): a superset of the top-level names it can read,
/// since handlebars reads a value only through a path that spells its name.
/// `None` when the template can reach values without naming them (`this`,
/// `@root`, `lookup`): it then gets every value.
fn template_words(template: &str) -> Option<Vec<&str>> {
    let mut words: Vec<&str> = template
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    if words
        .iter()
        .any(|w| matches!(*w, "this" | "root" | "lookup"))
    {
        return None;
    }
    words.sort_unstable();
    words.dedup();
    Some(words)
}

/// Reads values for a condition or an `expect`.
pub struct Resolver<'a> {
    pub ctx: &'a RunCtx,
    pub scope: &'a Bindings,
    /// Results of the checks the condition names.
    pub checks: &'a IndexMap<String, Result<V, String>>,
    /// A probe's observation (inside a check's `expect`).
    pub probe: Option<&'a IndexMap<String, V>>,
}

impl Resolve for Resolver<'_> {
    fn resolve(&self, r: &Ref) -> Result<V, String> {
        let base = match r.root {
            RefRoot::Input => match self.ctx.opts.inputs.get(&r.name) {
                Some(v) => V::from_value(v),
                // A secret (the emitter masks its value in the log).
                None => match self.ctx.opts.secrets.get(&r.name) {
                    Some(Some(s)) => V::Str(s.clone()),
                    Some(None) => V::Unknown(format!("secret `{}` is not set (dry run)", r.name)),
                    None => return Err(format!("input `{}` has no value", r.name)),
                },
            },
            RefRoot::Capture => match self
                .scope
                .item
                .as_ref()
                .and_then(|i| self.ctx.capture(&item_key(&r.name, i)))
                .or_else(|| self.ctx.capture(&r.name))
            {
                Some(v) => v,
                None => {
                    return Err(format!(
                        "capture `{}` has no value (its step did not run or did not succeed)",
                        r.name
                    ))
                }
            },
            RefRoot::Check => match self.checks.get(&r.name) {
                Some(v) => v.clone()?,
                None => return Err(format!("check `{}` was not evaluated", r.name)),
            },
            RefRoot::LoopVar => match [&self.scope.loop_var, &self.scope.body_var]
                .into_iter()
                .flatten()
                .find(|(var, _)| *var == r.name)
            {
                Some((_, v)) => v.clone(),
                None => return Err(format!("`{}` is not bound here", r.name)),
            },
            RefRoot::Run if r.name == "now" => {
                return Ok(V::Time(self.ctx.emitter.clock().wall_now()));
            }
            RefRoot::Run if r.name == "run" && r.path.first().is_some_and(|f| f == "started") => {
                return humantime::parse_rfc3339(&self.ctx.started)
                    .map(V::Time)
                    .map_err(|e| {
                        format!("`run.started` ({}) is not a time: {e}", self.ctx.started)
                    });
            }
            RefRoot::Run => {
                let (field, rest) = split_field(r);
                let s = match field {
                    "id" => self.ctx.opts.run_id.clone(),
                    "runbook" => self.ctx.graph.runbook.clone(),
                    "mode" => self.ctx.opts.mode.as_str().to_owned(),
                    "started" => self.ctx.started.clone(),
                    "outcome" | "rollback" => match &self.scope.concluded {
                        Some(c) if field == "outcome" => c.outcome.to_owned(),
                        Some(c) => c.rollback.to_owned(),
                        None => {
                            return Err(format!("`run.{field}` is only known in an `always` step"))
                        }
                    },
                    other => return Err(format!("`run.{other}` does not exist")),
                };
                return follow(V::Str(s), &format!("run.{field}"), rest);
            }
            RefRoot::Failure => {
                let Some(failure) = &self.scope.failure else {
                    return Err("`failure` is only defined in `on failure`".into());
                };
                let (field, rest) = split_field(r);
                let list = |v: &[String]| V::List(v.iter().cloned().map(V::Str).collect());
                let s = match field {
                    "step" => failure.step.clone(),
                    "reason" => failure.reason.clone(),
                    "rollback" => failure.rollback.to_owned(),
                    "completed" => {
                        return follow(list(&failure.completed), "failure.completed", rest)
                    }
                    "undone" => return follow(list(&failure.undone), "failure.undone", rest),
                    "kept" => return follow(list(&failure.kept), "failure.kept", rest),
                    other => return Err(format!("`failure.{other}` does not exist")),
                };
                return follow(V::Str(s), &format!("failure.{field}"), rest);
            }
            RefRoot::SelfStep => {
                let Some(own) = &self.scope.own else {
                    return Err("`self` is only defined in a step's `undo`".into());
                };
                let (field, rest) = split_field(r);
                let v = match field {
                    "outcome" => V::Str(own.outcome.to_owned()),
                    "attempts" => V::Int(i64::from(own.attempts)),
                    other => return Err(format!("`self.{other}` does not exist")),
                };
                return follow(v, &format!("self.{field}"), rest);
            }
            RefRoot::Probe => match self.probe.and_then(|p| p.get(&r.name)) {
                Some(v) => v.clone(),
                None => return Err(format!("the probe observed no `{}`", r.name)),
            },
        };
        follow(base, &r.name, &r.path)
    }
}

/// `run.id` is written as name `run`, path `["id"]`; accept both shapes.
fn split_field(r: &Ref) -> (&str, &[String]) {
    if r.name == "run" || r.name == "failure" || r.name == "self" {
        match r.path.split_first() {
            Some((f, rest)) => (f.as_str(), rest),
            None => ("", &[]),
        }
    } else {
        (r.name.as_str(), r.path.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::template_words;

    #[test]
    fn template_words_are_a_superset_of_the_names_read() {
        assert_eq!(
            template_words("configctl {{live.revision}} {{svc}} --x {{ live.x }}"),
            Some(vec!["configctl", "live", "revision", "svc", "x"])
        );
        assert_eq!(template_words("{{[état].a}}"), Some(vec!["a", "état"]));
        assert_eq!(template_words("plain text"), Some(vec!["plain", "text"]));
    }

    #[test]
    fn templates_that_reach_all_values_get_all_values() {
        assert_eq!(template_words("{{#each this}}{{@key}}{{/each}}"), None);
        assert_eq!(template_words("{{@root.live}}"), None);
        assert_eq!(template_words("{{lookup run name}}"), None);
    }
}
