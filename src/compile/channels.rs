//! Channels: where `notify` sends (a Slack or webhook URL from a literal,
//! a secret or a string input).

use super::scope::{Scope, Sym};
use super::{an, mark_used, Compiler};
use crate::ast;
use crate::diagnostics::Code;
use crate::diagnostics::{did_you_mean, Diag};
use crate::plan::{self, Escape, Type};

impl Compiler<'_> {
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
                                Code::TypeMismatch,
                                format!("`{}` is {}, not a URL", n.node, an(what)),
                            )
                            .label(n.span, "expected a secret or a string input"),
                        );
                    }
                    None => {
                        let names: Vec<&str> =
                            self.globals.syms.keys().map(String::as_str).collect();
                        self.diags.push(
                            Diag::error(Code::UnknownName, format!("unknown name `{}`", n.node))
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

    pub(super) fn channel(&mut self, ch: &ast::Channel) -> plan::ChannelSpec {
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
}
