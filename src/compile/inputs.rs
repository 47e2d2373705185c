//! Inputs and secrets: types, defaults that conform to them, `one_of`
//! lists non-empty and distinct, secret sources.

use super::conditions::literal_value;
use super::scope::Sym;
use super::{an, Compiler};
use crate::ast::{self, LiteralKind, TypeExpr};
use crate::diagnostics::Code;
use crate::diagnostics::{did_you_mean, Diag};
use crate::plan::{self, Type, Value};
use crate::span::{Span, Spanned};

impl Compiler<'_> {
    pub(super) fn inputs(&mut self, inputs: &[ast::Input]) -> Vec<plan::InputSpec> {
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

    fn type_of(&mut self, t: &Spanned<TypeExpr>) -> Type {
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
                        Diag::error(Code::EmptyOneOf, "`one_of` needs at least one value")
                            .label(t.span, "no values")
                            .help("list the allowed values: `one_of [\"a\", \"b\"]`"),
                    );
                }
                let mut seen: Vec<&str> = Vec::new();
                for v in values {
                    if seen.contains(&v.value.as_str()) {
                        self.diags.push(
                            Diag::error(
                                Code::DuplicateName,
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
                Code::NotOneOf,
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
                Diag::error(Code::DefaultType, message)
                    .label(span, an(&found))
                    .help(help)
            }
        };
        self.diags.push(d);
        None
    }

    pub(super) fn secrets(&mut self, secrets: &[ast::Secret]) -> Vec<plan::SecretSpec> {
        let mut out = Vec::new();
        for s in secrets {
            self.declare(&s.name, Sym::Secret);
            let source = match &s.source {
                ast::SecretSource::Env(v) => {
                    if v.value.is_empty() || v.value.contains(['=', '\0']) {
                        self.diags.push(
                            Diag::error(
                                Code::InvalidSecretSource,
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
                            Diag::error(Code::InvalidSecretSource, "empty file path")
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
