//! AST -> checked, resolved [`plan::Graph`].
//!
//! Small passes, each adding to one list of diagnostics, so that a file
//! with five mistakes reports five errors. One file per pass, in the order
//! [`Compiler::runbook`] runs them:
//! [`declarations`] (clauses written twice, duplicate and reserved names) ->
//! [`inputs`] (types, defaults, secrets) -> [`channels`] -> [`checks`] ->
//! [`steps`] (nodes, policies, graph edges) with their [`actions`] ->
//! [`handlers`] -> [`escalate`] (where it may be) -> [`lints`] (warnings);
//! [`undo_none`] (acknowledged writes) with the steps; [`limits`] (name lengths, verify
//! probes) runs with the declarations and the steps. Shared by several passes:
//! [`texts`] (handlebars syntax, every `{{name}}` resolved), [`http`]
//! (requests), [`conditions`] (type-checked expressions), [`scope`] (which
//! names a text or condition may read).

mod actions;
mod channels;
mod checks;
mod conditions;
mod declarations;
mod escalate;
mod foreach;
mod handlers;
mod http;
mod input_slots;
mod inputs;
mod ladder;
mod limits;
mod lints;
mod list_words;
mod placeholders;
mod repeat;
mod scope;
mod status;
mod steps;
mod texts;
mod undo_none;
mod undo_when;
mod values;

use crate::ast;
use crate::diagnostics::{Diag, Report};
use crate::plan::{self, Escape, Graph};
use crate::source::Source;
use crate::span::Span;
use conditions::Lowering;
use indexmap::IndexMap as StdIndexMap;
use scope::{Globals, Scope};

/// The compiler's maps and sets: keyed by a runbook's names and texts,
/// hashed with foldhash (randomly seeded, several times faster than std's
/// SipHash on these short keys).
pub(crate) type Hasher = foldhash::fast::RandomState;
pub(crate) type IndexMap<K, V> = StdIndexMap<K, V, Hasher>;
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, Hasher>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, Hasher>;

pub use limits::{MAX_NAME_CHARS, MAX_VERIFY_POLLS};
pub use placeholders::{scan as scan_placeholders, Placeholder};
pub use scope::{CLEANUP_RUN_FIELDS, FAILURE_FIELDS, RUN_FIELDS};

/// A graph that compiled, with the warnings a reviewer should see.
#[derive(Debug)]
pub struct Compiled {
    pub graph: Graph,
    pub warnings: Vec<Diag>,
}

/// Compiles one runbook. On error, the report holds every error found (and
/// the warnings).
pub fn compile(source: &Source) -> Result<Compiled, Report> {
    compile_inputs::<Hasher>(source, None)
}

/// [`compile`] for a run: durations and counts that name an input (`wait
/// soak`, `retry attempts`) take the run's values, and the clauses' rules
/// check them (`retry 0` is as wrong from an input as written), located
/// where the input is named.
pub fn compile_with_inputs<S: std::hash::BuildHasher>(
    source: &Source,
    inputs: &indexmap::IndexMap<String, plan::Value, S>,
) -> Result<Compiled, Report> {
    compile_inputs(source, Some(inputs))
}

fn compile_inputs<S: std::hash::BuildHasher>(
    source: &Source,
    inputs: Option<&indexmap::IndexMap<String, plan::Value, S>>,
) -> Result<Compiled, Report> {
    let (graph, diags) = compile_diags(&source.text, inputs);
    match graph {
        Some(graph) if !diags.iter().any(Diag::is_error) => Ok(Compiled {
            graph,
            warnings: diags,
        }),
        _ => Err(Report::new(source.clone(), diags)),
    }
}

/// All diagnostics for a source, errors and warnings, in one report.
pub fn check(source: &Source) -> Report {
    let (_, diags) = compile_diags::<Hasher>(&source.text, None);
    Report::new(source.clone(), diags)
}

/// [`check`] for raw file contents: invalid UTF-8 is reported as a
/// diagnostic pointing at the first bad byte.
pub fn check_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Report {
    let name = name.into();
    match String::from_utf8(bytes) {
        Ok(text) => check(&Source::new(name, text)),
        Err(e) => Report::not_utf8(name, e.as_bytes()),
    }
}

fn compile_diags<S: std::hash::BuildHasher>(
    text: &str,
    inputs: Option<&indexmap::IndexMap<String, plan::Value, S>>,
) -> (Option<Graph>, Vec<Diag>) {
    let (mut rb, mut diags) = match crate::syntax::parse(text) {
        Ok(x) => x,
        Err(d) => return (None, d),
    };
    let mut values = ast::SlotValues::new();
    if !rb.input_slots.is_empty() {
        // Durations and counts that name inputs: read again with their
        // values (defaults, then the run's).
        values = input_slots::slot_values(&rb, inputs);
        if !values.is_empty() {
            match crate::syntax::parse_bound(text, Some(&values)) {
                Ok((bound, d)) => (rb, diags) = (bound, d),
                Err(d) => return (None, d),
            }
        }
    }
    // Literals already reported as invalid (a duration of `10x` reads as
    // zero): later passes must not report them again.
    let invalid_literals = diags.iter().filter_map(Diag::primary_span).collect();
    let mut c = Compiler {
        invalid_literals,
        templates_ok: HashSet::default(),
        regexes: HashMap::default(),
        source: text,
        globals: Globals::default(),
        diags: Vec::new(),
        used: HashSet::default(),
        channels: IndexMap::default(),
        templates: IndexMap::default(),
        for_var: None,
        for_blocks: Vec::new(),
        given: inputs
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        list_inputs: Vec::new(),
    };
    let graph = c.runbook(&rb);
    diags.append(&mut c.diags);
    input_slots::name_inputs(&rb, &values, &mut diags);
    dedup(&mut diags);
    (Some(graph), diags)
}

/// A template used from several places can report the same problem more
/// than once; keep the first.
fn dedup(diags: &mut Vec<Diag>) {
    let mut seen = HashSet::default();
    diags.retain(|d| seen.insert((d.code, d.message.clone(), d.primary_span())));
}

struct Compiler<'s> {
    source: &'s str,
    invalid_literals: HashSet<Span>,
    /// Texts handlebars has already accepted.
    templates_ok: HashSet<String>,
    /// `matches` patterns already compiled: the error's last line, if any.
    /// Runbooks repeat the same few patterns; compiling each once is most
    /// of what a large runbook's conditions cost.
    regexes: HashMap<String, Option<String>>,
    globals: Globals,
    diags: Vec<Diag>,
    used: HashSet<String>,
    channels: IndexMap<String, Span>,
    templates: IndexMap<String, (Span, ast::Str)>,
    /// The loop variable of the `for` block whose steps are compiled.
    for_var: Option<(String, plan::Type)>,
    /// The `for` blocks with steps compiled so far.
    for_blocks: Vec<plan::ForBlock>,
    /// The run's input values (`compile_with_inputs`); defaults are added
    /// once the inputs are compiled. A `for` block's list from an input
    /// is read here.
    given: HashMap<String, plan::Value>,
    /// Inputs whose lists `for` blocks unrolled (bound again for a run,
    /// like the slots).
    list_inputs: Vec<String>,
}

impl Compiler<'_> {
    fn lowering(&mut self) -> Lowering<'_> {
        Lowering {
            globals: &self.globals,
            source: self.source,
            diags: &mut self.diags,
            used: &mut self.used,
            regexes: &mut self.regexes,
        }
    }

    /// The passes, in order. Each appends to `self.diags` and goes on, so
    /// that one run reports every mistake.
    fn runbook(&mut self, rb: &ast::Runbook) -> Graph {
        self.repeated_clauses(rb);
        self.name_lengths(rb);
        // Declarations first: names may be used before they are declared.
        let inputs = self.inputs(&rb.inputs);
        for i in &inputs {
            if let Some(d) = &i.default {
                self.given
                    .entry(i.name.clone())
                    .or_insert_with(|| d.clone());
            }
        }
        let secrets = self.secrets(&rb.secrets);
        self.declarations(rb);
        let mut slot_inputs = self.input_slots(rb);

        let channels = rb.channels.iter().map(|c| self.channel(c)).collect();
        let checks = rb.checks.iter().map(|c| self.check(c)).collect();

        let lock_scope = Scope {
            no_secrets: Some("the lock key is written to the lock file"),
            ..Scope::default()
        };
        let lock = match &rb.lock {
            Some(l) => self.text(l, Escape::Plain, &lock_scope),
            None => plan::Text {
                template: rb.name.node.clone(),
                escape: Escape::Plain,
                secrets: vec![],
                span: rb.name.span,
            },
        };

        let (nodes, edges, branches, ladders) = self.steps_to_nodes(rb);
        for name in std::mem::take(&mut self.list_inputs) {
            if !slot_inputs.contains(&name) {
                slot_inputs.push(name);
            }
        }
        let (on_failure, on_success, after_rollback) = self.handlers(rb);
        // Sent while any step may be running: they read inputs, not captures.
        let status_updates = self.status_updates(&rb.status_updates, &Scope::default());

        self.escalate_placement(rb);
        self.lint_unused(rb);
        self.lint_irreversible(&nodes, &branches);

        Graph {
            format: plan::GRAPH_FORMAT,
            runbook: rb.name.node.clone(),
            title: rb.title.as_ref().map(|s| s.value.clone()),
            owner: rb.owner.as_ref().map(|s| s.value.clone()),
            tags: rb.tags.iter().map(|s| s.value.clone()).collect(),
            lock,
            source_sha256: crate::digest::sha256_hex(self.source.as_bytes()),
            inputs,
            secrets,
            channels,
            checks,
            nodes,
            edges,
            on_failure,
            on_success,
            after_rollback,
            branches,
            ladders,
            for_blocks: std::mem::take(&mut self.for_blocks),
            slot_inputs,
            status_updates,
        }
    }
}

/// Records that a name is read (for the unused-name lint), allocating only
/// the first time.
pub(crate) fn mark_used(used: &mut HashSet<String>, name: &str) {
    if !used.contains(name) {
        used.insert(name.to_string());
    }
}

/// "an int", "a string", "a one_of [...]": the article for a type or kind.
pub(crate) fn an(what: impl std::fmt::Display) -> String {
    let w = what.to_string();
    let vowel = (w.starts_with(['a', 'e', 'i', 'o', 'u']) && !w.starts_with("one_of"))
        || w.starts_with("http");
    format!("{} {w}", if vowel { "an" } else { "a" })
}
