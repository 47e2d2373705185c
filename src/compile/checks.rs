//! Checks: probe texts, HTTP checks that only read, an `expect` where the
//! probe's exit code does not decide, expectations over the probe's
//! observations.

use super::scope::Scope;
use super::Compiler;
use crate::ast::{self, EffectMark};
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use crate::plan::{self, Escape};

impl Compiler<'_> {
    pub(super) fn check(&mut self, c: &ast::Check) -> plan::CheckSpec {
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
}
