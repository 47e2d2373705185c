//! Checks: probe texts, HTTP checks that only read, an `expect` where the
//! probe's exit code does not decide, expectations over the probe's
//! observations.

use super::scope::{Globals, Scope, Sym};
use super::Compiler;
use crate::ast::{self, EffectMark};
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use crate::plan::{self, Escape};

impl Compiler<'_> {
    pub(super) fn check(&mut self, c: &ast::Check) -> plan::CheckSpec {
        // A check may read captures (`promql "...{{live.revision}}..."`):
        // wherever it is used, they must be set (`Scope::check_reads`).
        let text_scope = Scope {
            captures: true,
            ..Scope::default()
        };
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
                        Code::CheckWithSideEffect,
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
                    Code::CheckWithoutExpect,
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
            captures: true,
            no_secrets: Some("expectations are logged with the values they read"),
            ..Scope::default()
        };
        let expects: Vec<plan::Expr> = c
            .expects
            .iter()
            .map(|e| self.lowering().condition(e, &scope))
            .collect();
        let reads = captures_read(&self.globals, &probe, &expects);
        self.globals
            .check_captures
            .insert(c.name.node.clone(), reads);
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
}

/// The captures a check's texts and expectations read, once each.
fn captures_read(globals: &Globals, probe: &plan::Probe, expects: &[plan::Expr]) -> Vec<String> {
    let mut texts: Vec<&plan::Text> = Vec::new();
    match probe {
        plan::Probe::Http(h) => {
            texts.push(&h.url);
            texts.extend(h.headers.iter().map(|hd| &hd.value));
            texts.extend(h.body.as_ref().map(|b| &b.text));
        }
        plan::Probe::Promql { query } => texts.push(query),
        plan::Probe::Shell { command } => texts.push(command),
    }
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        let is_capture = matches!(globals.syms.get(n), Some((Sym::Capture { .. }, _)));
        if is_capture && !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    };
    for t in texts {
        for p in super::placeholders::scan(&t.template).0 {
            if let Some(first) = p.path.first() {
                add(first);
            }
        }
    }
    let mut stack: Vec<&plan::Expr> = expects.iter().collect();
    while let Some(e) = stack.pop() {
        match &e.kind {
            plan::ExprKind::Ref(r) if r.root == plan::RefRoot::Capture => add(&r.name),
            plan::ExprKind::Ref(_) | plan::ExprKind::Literal { .. } => {}
            plan::ExprKind::Not { operand } => stack.push(operand),
            plan::ExprKind::Binary { lhs, rhs, .. } => {
                stack.push(lhs);
                stack.push(rhs);
            }
            plan::ExprKind::Index { value, index } => {
                stack.push(value);
                stack.push(index);
            }
            plan::ExprKind::Field { value, .. } => stack.push(value),
            plan::ExprKind::Call { args, .. } => stack.extend(args.iter()),
        }
    }
    names
}
