//! AST -> checked, resolved [`plan::Graph`].
//!
//! Small passes, each adding to one list of diagnostics, so that a file
//! with five mistakes reports five errors:
//! declarations (duplicates, reserved names) -> inputs (types, defaults) ->
//! texts (handlebars syntax, every `{{name}}` resolved) -> checks ->
//! steps (conditions type-checked, policies validated, graph edges) ->
//! handlers -> lints (warnings).

mod conditions;
mod placeholders;
mod scope;
mod texts;

use crate::ast::{self, Block, EffectMark, LiteralKind, TypeExpr};
use crate::diagnostics::{did_you_mean, Diag, Report};
use crate::plan::{self, Effect, Escape, Graph, Type, Value};
use crate::source::Source;
use crate::span::Span;
use conditions::{literal_value, Lowering};
use indexmap::IndexMap as StdIndexMap;

/// The compiler's maps and sets: keyed by a runbook's names and texts,
/// hashed with foldhash (randomly seeded, several times faster than std's
/// SipHash on these short keys).
pub(crate) type Hasher = foldhash::fast::RandomState;
pub(crate) type IndexMap<K, V> = StdIndexMap<K, V, Hasher>;
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, Hasher>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, Hasher>;
use scope::{Globals, Scope, Sym};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub use placeholders::{scan as scan_placeholders, Placeholder};
pub use scope::{FAILURE_FIELDS, RUN_FIELDS};

/// A graph that compiled, with the warnings a reviewer should see.
#[derive(Debug)]
pub struct Compiled {
    pub graph: Graph,
    pub warnings: Vec<Diag>,
}

/// Compiles one runbook. On error, the report holds every error found (and
/// the warnings).
pub fn compile(source: &Source) -> Result<Compiled, Report> {
    let (graph, diags) = compile_diags(&source.text);
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
    let (_, diags) = compile_diags(&source.text);
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

fn compile_diags(text: &str) -> (Option<Graph>, Vec<Diag>) {
    let (rb, mut diags) = match crate::syntax::parse(text) {
        Ok(x) => x,
        Err(d) => return (None, d),
    };
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
    };
    let graph = c.runbook(&rb);
    diags.append(&mut c.diags);
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
}

const RESERVED: &[&str] = &["run", "failure", "this"];

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

    fn duplicate(&mut self, what: &str, name: &ast::Ident, first: Span) {
        self.diags.push(
            Diag::error(
                "runbook::duplicate_name",
                format!("{what} `{}` is declared twice", name.node),
            )
            .label(name.span, "declared again here")
            .label(first, "first declared here")
            .help("names must be unique: rename one of them"),
        );
    }

    fn declare(&mut self, name: &ast::Ident, sym: Sym) {
        if RESERVED.contains(&name.node.as_str()) {
            self.diags.push(
                Diag::error(
                    "runbook::reserved_name",
                    format!("`{}` is a reserved name", name.node),
                )
                .label(name.span, "reserved for built-in values")
                .help("choose another name"),
            );
            return;
        }
        if let Some((prev, first)) = self.globals.syms.get(&name.node) {
            let what = sym.describe();
            let first = *first;
            if prev.describe() == what {
                self.duplicate(what, name, first);
            } else {
                let prev = prev.describe();
                self.diags.push(
                    Diag::error(
                        "runbook::duplicate_name",
                        format!("`{}` is declared twice: as {} and as {}", name.node, an(prev), an(what)),
                    )
                    .label(name.span, format!("declared again here, as {}", an(what)))
                    .label(first, format!("first declared here, as {}", an(prev)))
                    .help("inputs, secrets, checks and captures share one set of names, so a condition knows which one it reads: rename one of them"),
                );
            }
            return;
        }
        self.globals
            .syms
            .insert(name.node.clone(), (sym, name.span));
    }

    fn runbook(&mut self, rb: &ast::Runbook) -> Graph {
        for (what, first, again) in &rb.repeated_meta {
            self.diags.push(
                Diag::error(
                    "runbook::repeated_clause",
                    format!("`{what}` is written twice"),
                )
                .label(*again, "written again here")
                .label(*first, "first written here")
                .help("keep one of them"),
            );
        }
        for a in rb.after_rollback.iter().skip(1) {
            self.diags.push(
                Diag::error(
                    "runbook::repeated_clause",
                    "`after rollback verify` is written twice",
                )
                .label(a.verify.span, "written again here")
                .help("combine the conditions with `and`"),
            );
        }
        for (what, hs) in [
            ("on failure", &rb.on_failure),
            ("on success", &rb.on_success),
        ] {
            for h in hs.iter().skip(1) {
                self.diags.push(
                    Diag::error(
                        "runbook::repeated_clause",
                        format!("`{what}` is written twice"),
                    )
                    .label(h.span, "written again here")
                    .help("put all its actions in one block"),
                );
            }
        }

        // Declarations first: names may be used before they are declared.
        let inputs = self.inputs(&rb.inputs);
        let secrets = self.secrets(&rb.secrets);
        for ch in &rb.channels {
            if let Some(first) = self.channels.get(&ch.name.node) {
                let first = *first;
                self.duplicate("channel", &ch.name, first);
            } else {
                self.channels.insert(ch.name.node.clone(), ch.name.span);
            }
        }
        for t in &rb.templates {
            if let Some((first, _)) = self.templates.get(&t.name.node) {
                let first = *first;
                self.duplicate("template", &t.name, first);
            } else {
                self.templates
                    .insert(t.name.node.clone(), (t.name.span, t.text.clone()));
            }
        }
        for ch in &rb.checks {
            self.declare(&ch.name, Sym::Check);
        }
        // Only to find duplicates: keyed by the tree's own names, sized once
        // (a 10,000-step file grew an owned-key map a dozen times).
        let count = rb.body.iter().map(|b| b.steps().len()).sum();
        let mut steps: HashMap<&str, Span> =
            HashMap::with_capacity_and_hasher(count, Hasher::default());
        for (block_index, block) in rb.body.iter().enumerate() {
            if let Block::Parallel { steps, span } = block {
                if steps.is_empty() {
                    self.diags.push(
                        Diag::error("runbook::empty_parallel", "`parallel` block has no steps")
                            .label(*span, "empty")
                            .help("put two or more steps inside, or remove the block"),
                    );
                }
            }
            for s in block.steps() {
                if let Some(first) = steps.get(s.name.node.as_str()) {
                    let first = *first;
                    self.duplicate("step", &s.name, first);
                } else {
                    steps.insert(&s.name.node, s.name.span);
                }
                if let Some(c) = &s.capture {
                    self.declare(
                        &c.name,
                        Sym::Capture {
                            format: c.format,
                            block: block_index,
                            step: s.name.node.clone(),
                        },
                    );
                }
            }
        }
        drop(steps);

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

        let (nodes, edges) = self.steps_to_nodes(rb);
        if nodes.is_empty()
            && !self
                .diags
                .iter()
                .any(|d| d.code == "runbook::empty_parallel")
        {
            self.diags.push(
                Diag::error(
                    "runbook::no_steps",
                    format!("runbook `{}` has no steps", rb.name.node),
                )
                .label(rb.name.span, "nothing to run")
                .help("add a `step NAME { ... }` with an action such as `run \"...\"`"),
            );
        }

        // As in steps: a handler's commands, URLs, headers and bodies may
        // send a secret (paging someone needs a token); its messages may not
        // (`notify` sets its own `no_secrets`).
        let handler_scope = |failure| Scope {
            failure,
            checks: false,
            captures: true,
            no_secrets: None,
            ..Scope::default()
        };
        let on_failure = self.handler(rb.on_failure.first(), &handler_scope(true));
        let on_success = self.handler(rb.on_success.first(), &handler_scope(false));
        let after_rollback = rb.after_rollback.first().map(|a| {
            let scope = Scope {
                checks: true,
                captures: true,
                no_secrets: Some("conditions are logged"),
                ..Scope::default()
            };
            self.verify(&a.verify, &scope, true)
        });

        self.lint_unused(rb);
        self.lint_irreversible(&nodes);

        Graph {
            format: plan::GRAPH_FORMAT,
            runbook: rb.name.node.clone(),
            title: rb.title.as_ref().map(|s| s.value.clone()),
            owner: rb.owner.as_ref().map(|s| s.value.clone()),
            tags: rb.tags.iter().map(|s| s.value.clone()).collect(),
            lock,
            source_sha256: sha256_hex(self.source),
            inputs,
            secrets,
            channels,
            checks,
            nodes,
            edges,
            on_failure,
            on_success,
            after_rollback,
        }
    }

    // ---- inputs and secrets --------------------------------------------

    fn inputs(&mut self, inputs: &[ast::Input]) -> Vec<plan::InputSpec> {
        let mut out = Vec::new();
        for input in inputs {
            let ty = self.type_of(&input.ty);
            self.declare(&input.name, Sym::Input(ty.clone()));
            let default = input
                .default
                .as_ref()
                .and_then(|lit| self.default_value(lit, &ty, &input.name));
            out.push(plan::InputSpec {
                name: input.name.node.clone(),
                ty,
                default,
            });
        }
        out
    }

    fn type_of(&mut self, t: &crate::span::Spanned<TypeExpr>) -> Type {
        match &t.node {
            TypeExpr::String => Type::String,
            TypeExpr::Int => Type::Int,
            TypeExpr::Float => Type::Float,
            TypeExpr::Bool => Type::Bool,
            TypeExpr::Duration => Type::Duration,
            TypeExpr::List(inner) => Type::List(Box::new(self.type_of(inner))),
            TypeExpr::OneOf(values) => {
                if values.is_empty() {
                    self.diags.push(
                        Diag::error("runbook::empty_one_of", "`one_of` needs at least one value")
                            .label(t.span, "no values")
                            .help("list the allowed values: `one_of [\"a\", \"b\"]`"),
                    );
                }
                let mut seen: Vec<&str> = Vec::new();
                for v in values {
                    if seen.contains(&v.value.as_str()) {
                        self.diags.push(
                            Diag::error(
                                "runbook::duplicate_name",
                                format!("\"{}\" is listed twice", v.value),
                            )
                            .label(v.span, "again here"),
                        );
                    }
                    seen.push(&v.value);
                }
                Type::OneOf(values.iter().map(|s| s.value.clone()).collect())
            }
        }
    }

    /// A default must have the input's type (an int is accepted for a float).
    fn default_value(&mut self, lit: &ast::Literal, ty: &Type, name: &ast::Ident) -> Option<Value> {
        let misfit = match conform(lit, ty) {
            Ok(v) => return Some(v),
            Err(m) => m,
        };
        let d = match misfit {
            Misfit::NotOneOf {
                span,
                value,
                allowed,
            } => Diag::error(
                "runbook::not_one_of",
                format!(
                    "the default of input `{}`, \"{value}\", is not one of its allowed values",
                    name.node
                ),
            )
            .label(span, format!("allowed: {}", allowed.join(", ")))
            .help(
                did_you_mean(&value, allowed.iter().map(String::as_str)).unwrap_or_else(|| {
                    "use one of the allowed values, or add this one to the list".into()
                }),
            ),
            Misfit::Type {
                span,
                found,
                expected,
                item,
            } => {
                let message = match item {
                    Some(n) => format!(
                        "item {n} of the default of input `{}` is {}, but the input is {ty}",
                        name.node,
                        an(&found),
                        ty = an(ty)
                    ),
                    None => format!(
                        "the default of input `{}` is {}, but the input is {}",
                        name.node,
                        an(&found),
                        an(ty)
                    ),
                };
                let raw = self.source.get(span.start..span.end).unwrap_or("");
                let help = match &expected {
                    Type::Duration if found == "int" => {
                        format!("give the number a unit: `{raw}s` or `{raw}m`")
                    }
                    Type::Duration => "write a duration such as `30s` or `5m`".into(),
                    Type::String | Type::OneOf(_) => {
                        format!("put the value in double quotes: \"{raw}\"")
                    }
                    Type::Int | Type::Float if found == "string" => {
                        "drop the quotes: numbers are written without them".into()
                    }
                    _ => format!("write {} value, or change the input's type", an(&expected)),
                };
                Diag::error("runbook::default_type", message)
                    .label(span, an(&found))
                    .help(help)
            }
        };
        self.diags.push(d);
        None
    }

    fn secrets(&mut self, secrets: &[ast::Secret]) -> Vec<plan::SecretSpec> {
        let mut out = Vec::new();
        for s in secrets {
            self.declare(&s.name, Sym::Secret);
            let source = match &s.source {
                ast::SecretSource::Env(v) => {
                    if v.value.is_empty() || v.value.contains(['=', '\0']) {
                        self.diags.push(
                            Diag::error(
                                "runbook::invalid_secret_source",
                                "invalid environment variable name",
                            )
                            .label(v.span, "must be non-empty, without `=`")
                            .help("give the variable's name only, e.g. `env \"SLACK_WEBHOOK_URL\"`; its value is read when the runbook runs"),
                        );
                    }
                    plan::SecretSource::Env(v.value.clone())
                }
                ast::SecretSource::File(v) => {
                    if v.value.is_empty() {
                        self.diags.push(
                            Diag::error("runbook::invalid_secret_source", "empty file path")
                                .label(v.span, "give the path of the file holding the secret"),
                        );
                    }
                    plan::SecretSource::File(v.value.clone())
                }
            };
            out.push(plan::SecretSpec {
                name: s.name.node.clone(),
                source,
            });
        }
        out
    }

    // ---- channels and checks -------------------------------------------

    fn target(&mut self, t: &ast::Target) -> plan::Text {
        let scope = Scope::default();
        match t {
            ast::Target::Literal(s) => self.text(s, Escape::Plain, &scope),
            ast::Target::Name(n) => {
                match self.globals.syms.get(&n.node) {
                    Some((Sym::Secret, _)) | Some((Sym::Input(Type::String), _)) => {
                        mark_used(&mut self.used, &n.node)
                    }
                    Some((other, _)) => {
                        let what = other.describe();
                        self.diags.push(
                            Diag::error(
                                "runbook::type_mismatch",
                                format!("`{}` is {}, not a URL", n.node, an(what)),
                            )
                            .label(n.span, "expected a secret or a string input"),
                        );
                    }
                    None => {
                        let names: Vec<&str> =
                            self.globals.syms.keys().map(String::as_str).collect();
                        self.diags.push(
                            Diag::error(
                                "runbook::unknown_name",
                                format!("unknown name `{}`", n.node),
                            )
                            .label(n.span, "not a secret or input")
                            .maybe_help(did_you_mean(&n.node, names)),
                        );
                    }
                }
                let is_secret = matches!(self.globals.syms.get(&n.node), Some((Sym::Secret, _)));
                plan::Text {
                    template: format!("{{{{{}}}}}", n.node),
                    escape: Escape::Plain,
                    secrets: if is_secret {
                        vec![n.node.clone()]
                    } else {
                        vec![]
                    },
                    span: n.span,
                }
            }
        }
    }

    fn headers(&mut self, headers: &[ast::Header], scope: &Scope) -> Vec<plan::Header> {
        headers
            .iter()
            .map(|h| {
                let name_ok = !h.name.value.is_empty()
                    && h.name
                        .value
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b':');
                if !name_ok {
                    self.diags.push(
                        Diag::error(
                            "runbook::invalid_header",
                            format!("invalid header name \"{}\"", h.name.value),
                        )
                        .label(
                            h.name.span,
                            "header names are visible ASCII without `:` or spaces",
                        )
                        .help("the value goes after `=`: `header \"Authorization\" = \"Bearer {{token}}\"`"),
                    );
                }
                plan::Header {
                    name: h.name.value.clone(),
                    value: self.text(&h.value, Escape::Header, scope),
                }
            })
            .collect()
    }

    fn channel(&mut self, ch: &ast::Channel) -> plan::ChannelSpec {
        let kind = match &ch.kind {
            ast::ChannelKind::Slack(t) => plan::ChannelKind::Slack {
                url: self.target(t),
            },
            ast::ChannelKind::Webhook { target, headers } => {
                let url = self.target(target);
                let headers = self.headers(headers, &Scope::default());
                plan::ChannelKind::Webhook { url, headers }
            }
            ast::ChannelKind::Console => plan::ChannelKind::Console,
        };
        plan::ChannelSpec {
            name: ch.name.node.clone(),
            kind,
        }
    }

    fn http(&mut self, req: &ast::HttpRequest, scope: &Scope) -> plan::HttpRequest {
        let url = self.text(&req.url, Escape::Url, scope);
        self.url_shape(&req.url);
        if let Some(t) = &req.timeout {
            self.positive(t, "a request timeout");
        }
        plan::HttpRequest {
            method: req.method.node.clone(),
            url,
            headers: self.headers(&req.headers, scope),
            body: req.body.as_ref().map(|(kind, s)| {
                let (kind, escape) = match kind {
                    ast::BodyKind::Json => (plan::BodyKind::Json, Escape::Json),
                    ast::BodyKind::Text => (plan::BodyKind::Text, Escape::Plain),
                };
                if kind == plan::BodyKind::Json {
                    self.json_body_shape(s);
                }
                plan::Body {
                    kind,
                    text: self.text(s, escape, scope),
                }
            }),
            timeout: req.timeout.as_ref().map(|t| t.node),
        }
    }

    fn url_shape(&mut self, url: &ast::Str) {
        let v = url.value.trim_start();
        if !(v.starts_with("http://") || v.starts_with("https://") || v.starts_with("{{")) {
            self.diags.push(
                Diag::error(
                    "runbook::invalid_url",
                    "a URL must start with http:// or https://",
                )
                .label(url.span, "not an http(s) URL")
                .help("write the full URL, e.g. \"https://api.example.com/healthz\""),
            );
        }
    }

    /// A `body json` must be JSON once its placeholders are filled in. A
    /// placeholder inside a JSON string stands for text; outside one, for a
    /// number or a bool (`{"limit": {{limit}}}`).
    fn json_body_shape(&mut self, s: &ast::Str) {
        let v = &s.value;
        if v.contains("{{#") || v.contains("{{^") {
            // Blocks change the shape; it is only known when rendered.
            return;
        }
        let (found, _) = placeholders::scan(v);
        // Replace each `{{...}}` holding a placeholder; remember where the
        // probe text and the body text line up again after it.
        let mut probe = String::with_capacity(v.len());
        let mut map: Vec<(usize, usize)> = vec![(0, 0)];
        let mut copied = 0;
        let mut state = JsonScan::default();
        for p in &found {
            let open = v
                .get(..p.start)
                .and_then(|b| b.rfind("{{"))
                .unwrap_or(p.start);
            let close = v
                .get(p.end..)
                .and_then(|r| r.find("}}"))
                .map(|i| p.end + i + 2)
                .unwrap_or(p.end);
            if open < copied || close > v.len() {
                continue;
            }
            let before = &v[copied..open];
            probe.push_str(before);
            state.feed(before);
            probe.push_str(if state.in_string { "x" } else { "0" });
            copied = close;
            map.push((probe.len(), copied));
        }
        probe.push_str(&v[copied..]);
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&probe) {
            let at_probe = offset_of_line_col(&probe, e.line(), e.column());
            let i = map.partition_point(|(p, _)| *p <= at_probe);
            let at = match i.checked_sub(1).and_then(|i| map.get(i)) {
                Some((p, b)) => (b + (at_probe - p)).min(v.len()),
                None => 0,
            };
            let what = e.to_string();
            let what = what
                .split(" at line ")
                .next()
                .unwrap_or("not valid JSON")
                .to_string();
            let mut at = at;
            while at > 0 && !v.is_char_boundary(at) {
                at -= 1;
            }
            let end = v[at..]
                .chars()
                .next()
                .map(|c| at + c.len_utf8())
                .unwrap_or(at);
            self.diags.push(
                Diag::error(
                    "runbook::invalid_json_body",
                    "the request body is not valid JSON",
                )
                .label(s.sub_span(at, end), what)
                .help("write the body as JSON; put text placeholders inside JSON strings: {\"region\": \"{{region}}\", \"limit\": {{limit}}}"),
            );
        }
    }

    fn check(&mut self, c: &ast::Check) -> plan::CheckSpec {
        let text_scope = Scope::default();
        let (probe, kind) = match &c.probe.node {
            ast::Probe::Http(req) => (plan::Probe::Http(self.http(req, &text_scope)), "http"),
            ast::Probe::Promql(q) => (
                plan::Probe::Promql {
                    query: self.text(q, Escape::Promql, &text_scope),
                },
                "promql",
            ),
            ast::Probe::Shell(cmd) => (
                plan::Probe::Shell {
                    command: self.text(cmd, Escape::Shell, &text_scope),
                },
                "shell",
            ),
        };
        if let ast::Probe::Http(req) = &c.probe.node {
            if !matches!(req.method.node.as_str(), "GET" | "HEAD")
                && req.effect.map(|e| e.node) != Some(EffectMark::Readonly)
            {
                self.diags.push(
                    Diag::error(
                        "runbook::check_with_side_effect",
                        format!(
                            "check `{}` sends a {} request",
                            c.name.node, req.method.node
                        ),
                    )
                    .label(req.method.span, "checks must only read")
                    .help("use `get` or `head`, or mark a read-only query API with `readonly`"),
                );
            }
        }
        if c.expects.is_empty() && kind != "shell" {
            self.diags.push(
                Diag::error(
                    "runbook::check_without_expect",
                    format!("check `{}` has no `expect`", c.name.node),
                )
                .label(c.name.span, "nothing decides pass or fail")
                .help(if kind == "http" {
                    "add e.g. `expect status == 200`"
                } else {
                    "add e.g. `expect value < 0.05`"
                }),
            );
        }
        let scope = Scope {
            probe: Some(kind),
            no_secrets: Some("expectations are logged with the values they read"),
            ..Scope::default()
        };
        let expects = c
            .expects
            .iter()
            .map(|e| self.lowering().condition(e, &scope))
            .collect();
        plan::CheckSpec {
            name: c.name.node.clone(),
            probe,
            expects,
            on_no_data: match c.on_no_data.map(|s| s.node) {
                Some(ast::NoData::Pass) => plan::NoDataPolicy::Pass,
                _ => plan::NoDataPolicy::Fail,
            },
            span: c.span,
        }
    }

    // ---- steps and graph -------------------------------------------------

    fn steps_to_nodes(&mut self, rb: &ast::Runbook) -> (Vec<plan::Node>, Vec<plan::Edge>) {
        let count = rb.body.iter().map(|b| b.steps().len()).sum();
        // A node is several hundred bytes: growing the vector would copy them.
        let mut nodes: Vec<plan::Node> = Vec::with_capacity(count);
        let mut edges = Vec::with_capacity(count);
        // The nodes of the last block that had steps (each block's nodes
        // are contiguous): every node of the next block depends on them.
        let mut prev = 0..0;
        let mut group = 0;
        for (block_index, block) in rb.body.iter().enumerate() {
            let g = match block {
                Block::Step(_) => None,
                Block::Parallel { .. } => {
                    group += 1;
                    Some(group - 1)
                }
            };
            let start = nodes.len();
            for s in block.steps() {
                let mut node = self.step(s, block_index);
                node.group = g;
                node.deps = nodes[prev.clone()].iter().map(|n| n.id.clone()).collect();
                for d in &node.deps {
                    edges.push(plan::Edge {
                        from: d.clone(),
                        to: node.id.clone(),
                    });
                }
                nodes.push(node);
            }
            if nodes.len() > start {
                prev = start..nodes.len();
            }
        }
        (nodes, edges)
    }

    fn step(&mut self, s: &ast::Step, block: usize) -> plan::Node {
        for (what, first, again) in &s.repeated {
            let what = if *what == "action" { "an action" } else { what };
            self.diags.push(
                Diag::error(
                    "runbook::repeated_clause",
                    format!("step `{}` has {what} written twice", s.name.node),
                )
                .label(*again, "again here")
                .label(*first, "first here")
                .help(if what == "an action" {
                    "a step does one thing: split it into two steps"
                } else {
                    "keep one of them"
                }),
            );
        }
        // Commands, URLs, headers and bodies may read secrets: they are
        // sent, and masked wherever they are shown. Conditions, messages and
        // fan-out lists set their own `no_secrets`.
        let base = Scope {
            block: Some(block),
            checks: true,
            captures: true,
            no_secrets: None,
            ..Scope::default()
        };
        let when = s.when.as_ref().map(|w| {
            let scope = Scope {
                no_secrets: Some("conditions are logged with every value they read"),
                ..base.clone()
            };
            Box::new(self.lowering().condition(w, &scope))
        });
        let approval = s.approval.as_ref().map(|a| self.action(a, &base));
        let action = s.action.as_ref().map(|a| self.action(a, &base));
        let effect = s
            .action
            .as_ref()
            .map(|a| effect_of(&a.node))
            .unwrap_or(Effect::None);

        if s.action.is_none() && s.verify.is_none() {
            self.diags.push(
                Diag::error(
                    "runbook::empty_step",
                    format!("step `{}` does nothing", s.name.node),
                )
                .label(s.name.span, "no action and no verify")
                .help("add an action (`run`, `http`, `notify`, `approve`, `wait`) or a `verify`"),
            );
        }

        let retry = match &s.retry {
            None => plan::RetryPolicy::NONE,
            Some(r) => {
                if (r.attempts.node == 0 || r.attempts.node > 100)
                    && !self.invalid_literals.contains(&r.attempts.span)
                {
                    self.diags.push(
                        Diag::error(
                            "runbook::invalid_retry",
                            format!("`retry {}` is out of range", r.attempts.node),
                        )
                        .label(r.attempts.span, "retries must be between 1 and 100")
                        .help("`retry 3 backoff 5s exponential` tries up to 4 times"),
                    );
                }
                plan::RetryPolicy {
                    retries: r.attempts.node.min(100) as u32,
                    backoff: r
                        .backoff
                        .as_ref()
                        .map(|b| b.node)
                        .unwrap_or(DEFAULT_BACKOFF),
                    exponential: r.exponential,
                }
            }
        };
        if let Some(t) = &s.timeout {
            self.positive(t, "a timeout");
        }
        let verify = s.verify.as_ref().map(|v| {
            let scope = Scope {
                own_capture: s.capture.as_ref().map(|c| c.name.node.clone()),
                no_secrets: Some("conditions are logged with every value they read"),
                ..base.clone()
            };
            self.verify(v, &scope, false)
        });
        let undo = s.undo.as_ref().map(|u| {
            let effect_here = effect;
            if matches!(effect_here, Effect::None | Effect::Read | Effect::Notify) {
                let (what, help) = match effect_here {
                    Effect::Read => ("only reads", "remove the `undo`; if the action does change something, drop `readonly`"),
                    Effect::Notify => ("only sends a message", "remove the `undo`: a sent message cannot be unsent; send a correction from a later step or from `on failure`"),
                    _ => ("changes nothing", "remove the `undo`: only steps that change something are rolled back"),
                };
                self.diags.push(
                    Diag::error(
                        "runbook::undo_without_effect",
                        format!("step `{}` has an `undo`, but it {what}", s.name.node),
                    )
                    .label(u.span, "nothing to undo")
                    .help(help),
                );
            }
            let scope = Scope {
                own_capture: s.capture.as_ref().map(|c| c.name.node.clone()),
                ..base.clone()
            };
            self.action(u, &scope)
        });
        let capture = s.capture.as_ref().map(|c| {
            let ok = matches!(
                s.action.as_ref().map(|a| &a.node),
                Some(ast::Action::Run { .. }) | Some(ast::Action::Http(_))
            );
            if !ok {
                self.diags.push(
                    Diag::error(
                        "runbook::capture_without_output",
                        format!(
                            "step `{}` captures output, but its action has none",
                            s.name.node
                        ),
                    )
                    .label(c.span, "nothing to capture")
                    .help("`capture` reads the output of a `run` command or an `http` response"),
                );
            }
            plan::CaptureSpec {
                format: match c.format {
                    ast::CaptureFormat::Json => plan::CaptureFormat::Json,
                    ast::CaptureFormat::Text => plan::CaptureFormat::Text,
                },
                name: c.name.node.clone(),
            }
        });
        let continue_on_error = match &s.continue_on_error {
            Some(v) => v.node,
            None => effect == Effect::Notify,
        };
        plan::Node {
            id: s.name.node.clone(),
            group: None,
            deps: Vec::new(),
            when,
            approval: approval.map(Box::new),
            action,
            effect,
            retry,
            timeout: s.timeout.as_ref().map(|t| t.node),
            verify: verify.map(Box::new),
            undo: undo.map(Box::new),
            capture: capture.map(Box::new),
            continue_on_error,
            span: s.span,
        }
    }

    fn positive(&mut self, d: &crate::span::Spanned<Duration>, what: &str) {
        if d.node.is_zero() && !self.invalid_literals.contains(&d.span) {
            self.diags.push(
                Diag::error(
                    "runbook::zero_duration",
                    format!("{what} of zero never lets anything finish"),
                )
                .label(d.span, "zero")
                .help("give a positive duration such as `30s`"),
            );
        }
    }

    fn verify(
        &mut self,
        v: &ast::Verify,
        scope: &Scope,
        after_rollback: bool,
    ) -> plan::VerifyPolicy {
        let condition = self.lowering().condition(&v.condition, scope);
        self.positive(&v.within, "a verify window");
        let every = match &v.every {
            Some(e) => {
                self.positive(e, "a verify interval");
                if e.node > v.within.node && !v.within.node.is_zero() {
                    self.diags.push(
                        Diag::error(
                            "runbook::verify_interval",
                            "the verify interval is longer than its window",
                        )
                        .label(e.span, "checks every this long")
                        .label(v.within.span, "but gives up after this")
                        .help(
                            "use an interval shorter than the window, e.g. `within 10m every 30s`",
                        ),
                    );
                }
                e.node
            }
            None if after_rollback => (v.within.node / 10)
                .max(Duration::from_secs(1))
                .min(v.within.node),
            None => v.within.node,
        };
        let consecutive = match &v.consecutive {
            Some(c) if c.node == 0 && !self.invalid_literals.contains(&c.span) => {
                self.diags.push(
                    Diag::error(
                        "runbook::invalid_consecutive",
                        "`consecutive 0` can never be met",
                    )
                    .label(c.span, "must be at least 1")
                    .help("`consecutive N` asks for N passing probes in a row, e.g. `consecutive 3`; leave it out for 1"),
                );
                1
            }
            Some(c) => {
                // Probes happen at 0, every, 2*every, ... up to the window.
                let probes = if every.is_zero() {
                    u64::MAX
                } else {
                    (v.within.node.as_millis() / every.as_millis()).min(u64::MAX as u128 - 1) as u64
                        + 1
                };
                if c.node > probes && !v.within.node.is_zero() {
                    self.diags.push(
                        Diag::error(
                            "runbook::verify_unreachable",
                            format!("`consecutive {}` can never be met: the window allows only {probes} probes", c.node),
                        )
                        .label(c.span, format!("needs {} passes in a row", c.node))
                        .label(v.within.span, format!("{probes} probes fit in this window"))
                        .help("widen the window, probe more often, or ask for fewer passes in a row"),
                    );
                }
                c.node.min(u32::MAX as u64) as u32
            }
            None => 1,
        };
        plan::VerifyPolicy {
            condition,
            within: v.within.node,
            every,
            consecutive,
        }
    }

    fn action(&mut self, a: &crate::span::Spanned<ast::Action>, scope: &Scope) -> plan::Action {
        match &a.node {
            ast::Action::Run { command, .. } => plan::Action::Shell {
                command: self.text(command, Escape::Shell, scope),
            },
            ast::Action::Http(req) => plan::Action::Http(Box::new(self.http(req, scope))),
            ast::Action::Notify {
                channel,
                message,
                args,
            } => self.notify(channel, message, args, scope),
            ast::Action::Approve { message, timeout } => {
                if let Some(t) = timeout {
                    self.positive(t, "an approval timeout");
                    self.lint_approval_timeout(message, t);
                }
                let scope = Scope {
                    no_secrets: Some("the approval message is shown to people"),
                    ..scope.clone()
                };
                plan::Action::Approve {
                    message: self.text(message, Escape::Plain, &scope),
                    timeout: timeout.as_ref().map(|t| t.node),
                }
            }
            ast::Action::Wait(d) => {
                self.positive(d, "a wait");
                plan::Action::Wait { duration: d.node }
            }
            ast::Action::For {
                var,
                list,
                parallel,
                max_failures,
                body,
            } => {
                let list_scope = Scope {
                    no_secrets: Some("the items of a fan-out are logged"),
                    checks: false,
                    ..scope.clone()
                };
                let (list_expr, ty) = self.lowering().expr(list, &list_scope);
                let elem = match ty {
                    Some(Type::List(e)) => *e,
                    Some(Type::Json) | None => Type::Json,
                    Some(other) => {
                        self.diags.push(
                            Diag::error("runbook::for_over_non_list", format!("`for` needs a list, but this is {}", an(&other)))
                                .label(list.span, an(&other))
                                .help("declare the input as `list<string>` or write a list: `[\"a\", \"b\"]`"),
                        );
                        Type::Json
                    }
                };
                if self.globals.syms.contains_key(&var.node) {
                    self.diags.push(
                        Diag::error("runbook::shadowed_name", format!("loop variable `{}` hides a runbook name", var.node))
                            .label(var.span, "choose another name")
                            .help("a loop variable must not reuse the name of an input, secret, check or capture"),
                    );
                }
                if matches!(body.node, ast::Action::Approve { .. }) {
                    self.diags.push(
                        Diag::error("runbook::approve_in_for", "`approve` cannot be fanned out")
                            .label(body.span, "ask once, in its own step before the fan-out"),
                    );
                }
                if let Some(p) = parallel {
                    if p.node == 0 {
                        self.diags.push(
                            Diag::error(
                                "runbook::invalid_parallel",
                                "`parallel 0` would never run anything",
                            )
                            .label(p.span, "must be at least 1")
                            .help("`parallel N` runs up to N items at once; leave it out to run them one after another"),
                        );
                    }
                }
                let inner_scope = Scope {
                    loop_var: Some((var.node.clone(), elem)),
                    ..scope.clone()
                };
                plan::Action::ForEach {
                    var: var.node.clone(),
                    list: Box::new(list_expr),
                    parallel: parallel
                        .as_ref()
                        .map(|p| p.node.max(1) as usize)
                        .unwrap_or(1),
                    max_failures: max_failures.as_ref().map(|m| m.node as usize),
                    body: Box::new(self.action(body, &inner_scope)),
                }
            }
        }
    }

    fn notify(
        &mut self,
        channel: &ast::Ident,
        message: &ast::NotifyMessage,
        args: &[ast::NotifyArg],
        scope: &Scope,
    ) -> plan::Action {
        if !self.channels.contains_key(&channel.node) {
            let names: Vec<&str> = self.channels.keys().map(String::as_str).collect();
            self.diags.push(
                Diag::error(
                    "runbook::unknown_channel",
                    format!("unknown channel `{}`", channel.node),
                )
                .label(channel.span, "no channel by this name")
                .maybe_help(did_you_mean(&channel.node, names).or_else(|| {
                    Some("declare it: `channel NAME = slack URL | webhook URL | console`".into())
                })),
            );
        }
        self.used.insert(format!("channel:{}", channel.node));
        let text_scope = Scope {
            no_secrets: Some("messages are posted and shown"),
            ..scope.clone()
        };
        let mut arg_texts = StdIndexMap::new();
        for a in args {
            if arg_texts.contains_key(&a.name.node) {
                self.diags.push(
                    Diag::error(
                        "runbook::duplicate_name",
                        format!("argument `{}` is given twice", a.name.node),
                    )
                    .label(a.name.span, "again here"),
                );
                continue;
            }
            let t = self.text(&a.value, Escape::Plain, &text_scope);
            arg_texts.insert(a.name.node.clone(), t);
        }
        let with_args = Scope {
            args: args.iter().map(|a| a.name.node.clone()).collect(),
            ..text_scope
        };
        let (template, message) = match message {
            ast::NotifyMessage::Inline(s) => (None, self.text(s, Escape::Plain, &with_args)),
            ast::NotifyMessage::Template(name) => {
                match self.templates.get(&name.node).cloned() {
                    Some((_, text)) => {
                        self.used.insert(format!("template:{}", name.node));
                        let before = self.diags.len();
                        let t = self.text(&text, Escape::Plain, &with_args);
                        // Point problems found through this use back at it.
                        for d in &mut self.diags[before..] {
                            d.labels.push((name.span, "used here".into()));
                        }
                        (Some(name.node.clone()), t)
                    }
                    None => {
                        let names: Vec<&str> = self.templates.keys().map(String::as_str).collect();
                        self.diags.push(
                        Diag::error("runbook::unknown_template", format!("unknown template `{}`", name.node))
                            .label(name.span, "no template by this name")
                            .maybe_help(did_you_mean(&name.node, names).or_else(|| Some("write the message in quotes, or declare `template NAME = \"...\"`".into()))),
                    );
                        (
                            Some(name.node.clone()),
                            plan::Text {
                                template: String::new(),
                                escape: Escape::Plain,
                                secrets: vec![],
                                span: name.span,
                            },
                        )
                    }
                }
            }
        };
        plan::Action::Notify {
            channel: channel.node.clone(),
            template,
            message,
            args: Box::new(arg_texts),
        }
    }

    fn handler(&mut self, h: Option<&ast::Handler>, scope: &Scope) -> Vec<plan::Action> {
        let Some(h) = h else { return Vec::new() };
        h.actions
            .iter()
            .map(|a| {
                if matches!(a.node, ast::Action::Approve { .. }) {
                    self.diags.push(
                        Diag::error(
                            "runbook::approve_in_handler",
                            "`approve` cannot be used in a handler",
                        )
                        .label(a.span, "handlers run unattended after the run has ended")
                        .help("handlers are for notifications and clean-up"),
                    );
                }
                self.action(a, scope)
            })
            .collect()
    }

    // ---- lints -------------------------------------------------------------

    fn lint_unused(&mut self, rb: &ast::Runbook) {
        let used = |c: &Compiler, key: &str| c.used.contains(key);
        let mut warns = Vec::new();
        for i in &rb.inputs {
            if !used(self, &i.name.node) {
                warns.push(("input", &i.name));
            }
        }
        for s in &rb.secrets {
            if !used(self, &s.name.node) {
                warns.push(("secret", &s.name));
            }
        }
        for c in &rb.checks {
            if !used(self, &c.name.node) {
                warns.push(("check", &c.name));
            }
        }
        for t in &rb.templates {
            if !used(self, &format!("template:{}", t.name.node)) {
                warns.push(("template", &t.name));
            }
        }
        for ch in &rb.channels {
            if !used(self, &format!("channel:{}", ch.name.node)) {
                warns.push(("channel", &ch.name));
            }
        }
        for (what, name) in warns {
            self.diags.push(
                Diag::warning(
                    "runbook::unused",
                    format!("{what} `{}` is never used", name.node),
                )
                .label(name.span, "declared here")
                .help(format!(
                    "remove it, or use it (an unused {what} is often a misspelling elsewhere)"
                )),
            );
        }
        for block in &rb.body {
            for s in block.steps() {
                let Some(a) = &s.action else { continue };
                if effect_of(&a.node) == Effect::Write && s.undo.is_none() {
                    self.diags.push(
                        Diag::warning("runbook::write_without_undo", format!("step `{}` changes something but has no `undo`", s.name.node))
                            .label(a.span, "changes something")
                            .help("add `undo ACTION` so that a failure later can roll it back; mark the action `readonly` if it only reads, or `irreversible` if it cannot be undone"),
                    );
                }
            }
        }
    }

    /// `approve "..."` followed by `timeout D` on the next line: the
    /// grammar gives the timeout to the approval, while a reader sees the
    /// step's timeout clause.
    fn lint_approval_timeout(&mut self, message: &ast::Str, t: &crate::span::Spanned<Duration>) {
        let between = self
            .source
            .get(message.span.end..t.span.start)
            .unwrap_or("");
        if !between.contains('\n') {
            return;
        }
        self.diags.push(
            Diag::warning(
                "runbook::ambiguous_timeout",
                "this `timeout` is the approval's, not the step's",
            )
            .label(t.span, "how long to wait for a human to answer")
            .label(message.span, "it continues this `approve`")
            .help("if it is meant for the approval, write it on the same line: `approve \"...\" timeout 15m`; for the step's timeout, put `timeout` before `approve`"),
        );
    }

    /// The span of a node's name in `step NAME {`.
    fn step_name_span(&self, n: &plan::Node) -> Span {
        let from = n.span.start + "step".len();
        self.source
            .get(from..n.span.end)
            .and_then(|rest| rest.find(n.id.as_str()))
            .map(|at| Span::new(from + at, from + at + n.id.len()))
            .unwrap_or(n.span)
    }

    /// An irreversible step needs a human yes first: an `approve` gate in
    /// the step itself, or an approval in a step that finishes before it (a
    /// parallel sibling does not count: it runs at the same time).
    fn lint_irreversible(&mut self, nodes: &[plan::Node]) {
        if nodes.iter().all(|n| n.effect != Effect::Irreversible) {
            return;
        }
        // An approval only protects what follows if a refusal stops the run:
        // not when it can be skipped (`when`) or its failure is ignored.
        let approves = |n: &plan::Node| {
            (n.approval.is_some() || matches!(n.action, Some(plan::Action::Approve { .. })))
                && n.when.is_none()
                && !n.continue_on_error
        };
        // Blocks: runs of nodes with the same dependencies.
        let mut blocks: Vec<&[plan::Node]> = Vec::new();
        let mut start = 0;
        for i in 1..=nodes.len() {
            if i == nodes.len() || nodes[i].deps != nodes[start].deps {
                blocks.push(&nodes[start..i]);
                start = i;
            }
        }
        let mut approved_before = false;
        for block in blocks {
            for n in block {
                if n.effect != Effect::Irreversible || approved_before || n.approval.is_some() {
                    continue;
                }
                let mut d = Diag::warning(
                    "runbook::irreversible_without_approve",
                    format!(
                        "step `{}` is irreversible and no approval comes before it",
                        n.id
                    ),
                )
                .label(self.step_name_span(n), "runs without a human saying yes");
                match block.iter().find(|s| s.id != n.id && approves(s)) {
                    Some(sibling) => {
                        d = d
                            .label(self.step_name_span(sibling), "asks at the same time, not before")
                            .help(format!("move step `{}` out of the `parallel` block, before it, or add `approve \"...\"` to step `{}` itself", sibling.id, n.id));
                    }
                    None => {
                        d = d.help("add `approve \"...\"` to the step (it is asked before the action runs), or a step that approves before it");
                    }
                }
                self.diags.push(d);
            }
            approved_before |= block.iter().any(approves);
        }
    }
}

const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

fn effect_of(a: &ast::Action) -> Effect {
    match a {
        ast::Action::Run { effect, .. } => match effect.map(|e| e.node) {
            Some(EffectMark::Readonly) => Effect::Read,
            Some(EffectMark::Irreversible) => Effect::Irreversible,
            None => Effect::Write,
        },
        ast::Action::Http(req) => match req.effect.map(|e| e.node) {
            Some(EffectMark::Readonly) => Effect::Read,
            Some(EffectMark::Irreversible) => Effect::Irreversible,
            None if matches!(req.method.node.as_str(), "GET" | "HEAD") => Effect::Read,
            None => Effect::Write,
        },
        ast::Action::Notify { .. } => Effect::Notify,
        ast::Action::Approve { .. } | ast::Action::Wait(_) => Effect::None,
        ast::Action::For { body, .. } => effect_of(&body.node),
    }
}

/// Whether the text fed so far ends inside a JSON string.
#[derive(Default)]
struct JsonScan {
    in_string: bool,
    escaped: bool,
}

impl JsonScan {
    fn feed(&mut self, json: &str) {
        for c in json.chars() {
            match c {
                _ if self.escaped => self.escaped = false,
                '\\' if self.in_string => self.escaped = true,
                '"' => self.in_string = !self.in_string,
                _ => {}
            }
        }
    }
}

/// Byte offset of serde_json's 1-based line and column (column 0: the
/// line's start; columns count bytes).
fn offset_of_line_col(text: &str, line: usize, column: usize) -> usize {
    let mut start = 0;
    for (n, l) in text.split('\n').enumerate() {
        if n + 1 == line {
            let col = column.saturating_sub(1).min(l.len());
            let mut at = start + col;
            while at > 0 && !text.is_char_boundary(at) {
                at -= 1;
            }
            return at.min(text.len());
        }
        start += l.len() + 1;
    }
    text.len()
}

/// Why a literal does not fit a type.
enum Misfit {
    /// The literal (or, in a list, the item at `item`) has another type.
    Type {
        span: Span,
        found: String,
        expected: Type,
        item: Option<usize>,
    },
    /// A string not among a `one_of`'s values.
    NotOneOf {
        span: Span,
        value: String,
        allowed: Vec<String>,
    },
}

/// Converts a literal to a value of type `ty`, or says why it does not fit.
fn conform(lit: &ast::Literal, ty: &Type) -> Result<Value, Misfit> {
    let found = |l: &ast::Literal| {
        let mut sink = Vec::new();
        let (_, t) = literal_value(l, &mut sink);
        t.map(|t| t.to_string())
            .unwrap_or_else(|| "list of mixed types".into())
    };
    match (ty, &lit.kind) {
        (Type::String, LiteralKind::String(s)) => Ok(Value::String(s.clone())),
        (Type::OneOf(allowed), LiteralKind::String(s)) => {
            if allowed.contains(s) {
                Ok(Value::String(s.clone()))
            } else {
                Err(Misfit::NotOneOf {
                    span: lit.span,
                    value: s.clone(),
                    allowed: allowed.clone(),
                })
            }
        }
        (Type::Int, LiteralKind::Int(i)) => Ok(Value::Int(*i)),
        (Type::Float, LiteralKind::Float(f)) => Ok(Value::Float(*f)),
        (Type::Float, LiteralKind::Int(i)) => Ok(Value::Float(*i as f64)),
        (Type::Bool, LiteralKind::Bool(b)) => Ok(Value::Bool(*b)),
        (Type::Duration, LiteralKind::Duration(d)) => Ok(Value::Duration(*d)),
        (Type::List(elem), LiteralKind::List(items)) => items
            .iter()
            .enumerate()
            .map(|(n, i)| {
                conform(i, elem).map_err(|m| match m {
                    Misfit::Type {
                        span,
                        found,
                        expected,
                        item: None,
                    } => Misfit::Type {
                        span,
                        found,
                        expected,
                        item: Some(n + 1),
                    },
                    other => other,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List),
        _ => Err(Misfit::Type {
            span: lit.span,
            found: found(lit),
            expected: ty.clone(),
            item: None,
        }),
    }
}

/// "an int", "a string", "a one_of [...]": the article for a type or kind.
/// Records that a name is read (for the unused-name lint), allocating only
/// the first time.
pub(crate) fn mark_used(used: &mut HashSet<String>, name: &str) {
    if !used.contains(name) {
        used.insert(name.to_string());
    }
}

pub(crate) fn an(what: impl std::fmt::Display) -> String {
    let w = what.to_string();
    let vowel = (w.starts_with(['a', 'e', 'i', 'o', 'u']) && !w.starts_with("one_of"))
        || w.starts_with("http");
    format!("{} {w}", if vowel { "an" } else { "a" })
}

pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
