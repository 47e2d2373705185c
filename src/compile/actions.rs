//! Actions (of steps, undos and handlers): `run`, `http`, `notify`,
//! `approve`, `wait` and `for` fan-outs.

use super::scope::Scope;
use super::{an, Compiler};
use crate::ast;
use crate::diagnostics::Code;
use crate::diagnostics::{did_you_mean, Diag};
use crate::plan::{self, Escape, Type};
use crate::span::Spanned;
use indexmap::IndexMap as StdIndexMap;

impl Compiler<'_> {
    pub(super) fn action(&mut self, a: &Spanned<ast::Action>, scope: &Scope) -> plan::Action {
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
            ast::Action::Approve {
                message,
                timeout,
                by_other,
            } => {
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
                    by_other: *by_other,
                }
            }
            ast::Action::Wait(d) => {
                self.positive(d, "a wait");
                plan::Action::Wait { duration: d.node }
            }
            ast::Action::Escalate(reason) => self.escalate(reason, scope),
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
                            Diag::error(Code::ForOverNonList, format!("`for` needs a list, but this is {}", an(&other)))
                                .label(list.span, an(&other))
                                .help("declare the input as `list<string>` or write a list: `[\"a\", \"b\"]`"),
                        );
                        Type::Json
                    }
                };
                self.for_var_name(var);
                if matches!(body.node, ast::Action::Approve { .. }) {
                    self.diags.push(
                        Diag::error(Code::ApproveInFor, "`approve` cannot be fanned out")
                            .label(body.span, "ask once, in its own step before the fan-out"),
                    );
                }
                if let Some(p) = parallel {
                    if p.node == 0 && !self.invalid_literals.contains(&p.span) {
                        self.diags.push(
                            Diag::error(
                                Code::InvalidParallel,
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
                    Code::UnknownChannel,
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
                        Code::DuplicateName,
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
                        Diag::error(Code::UnknownTemplate, format!("unknown template `{}`", name.node))
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
}
