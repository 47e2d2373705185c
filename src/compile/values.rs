//! Values in conditions beyond names and literals: arithmetic (`value * 2`,
//! `now - run.started > 10m`), indexes (`pods[0]`, `items[-1]`), fields
//! after them (`pods[0].name`) and the built-in functions (`length`,
//! `sort`, `join`, `where`, `map`). Each is typed here, so that a wrong operand is an
//! error at its own span before the run.

use super::an;
use super::conditions::{comparable, operands_mismatch, Lowering, Ty};
use super::scope::Scope;
use crate::ast::{self, BinOp};
use crate::diagnostics::{did_you_mean, Code, Diag};
use crate::plan::{self, Func, Type};

pub(super) fn is_arithmetic(op: BinOp) -> bool {
    matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div)
}

fn number(t: &Type) -> bool {
    matches!(t, Type::Int | Type::Float)
}

/// The type of `a op b`, or `None` when the operator does not apply.
pub(crate) fn arithmetic_type(op: BinOp, a: &Type, b: &Type) -> Option<Type> {
    use Type::*;
    Some(match (op, a, b) {
        // A JSON value's type is known at run time only.
        (_, Json, x) | (_, x, Json) if number(x) || matches!(x, Json | Duration) => Json,
        (BinOp::Add | BinOp::Sub | BinOp::Mul, Int, Int) => Int,
        (BinOp::Div, Int | Float, Int | Float) => Float,
        (_, Int | Float, Int | Float) => Float,
        (BinOp::Add | BinOp::Sub, Duration, Duration) => Duration,
        (BinOp::Div, Duration, Duration) => Float,
        (BinOp::Mul, Duration, Int | Float) | (BinOp::Mul, Int | Float, Duration) => Duration,
        (BinOp::Div, Duration, Int | Float) => Duration,
        (BinOp::Sub, Time, Time) => Duration,
        (BinOp::Add | BinOp::Sub, Time, Duration) | (BinOp::Add, Duration, Time) => Time,
        _ => return None,
    })
}

impl Lowering<'_> {
    /// `now`: the time the condition is evaluated (virtual in a drill).
    pub(super) fn now(&mut self, parts: &[ast::Ident]) -> (plan::ExprKind, Ty) {
        let kind = plan::ExprKind::Ref(plan::Ref {
            root: plan::RefRoot::Run,
            name: "now".to_string(),
            path: Vec::new(),
        });
        if let Some(f) = parts.get(1) {
            self.diags.push(
                Diag::error(Code::UnknownField, format!("`now` has no field `{}`", f.node))
                    .label(f.span, "no such field")
                    .help("`now` is a time: subtract another time from it, e.g. `now - run.started > 10m`"),
            );
            return (kind, None);
        }
        (kind, Some(Type::Time))
    }

    /// Types `l op r` for `+ - * /`.
    pub(super) fn arithmetic(
        &mut self,
        op: BinOp,
        (l, lt): (&ast::Expr, &Ty),
        (r, rt): (&ast::Expr, &Ty),
    ) -> Ty {
        let (Some(a), Some(b)) = (lt, rt) else {
            return None;
        };
        if let Some(t) = arithmetic_type(op, a, b) {
            return Some(t);
        }
        let help = match (op, a, b) {
            (_, Type::Duration, Type::Int | Type::Float) | (_, Type::Int | Type::Float, Type::Duration)
                if matches!(op, BinOp::Add | BinOp::Sub) =>
            {
                "a duration adds to a duration: give the number a unit, e.g. `30s`".to_string()
            }
            (BinOp::Add, Type::Time, Type::Time) => {
                "subtract two times to get a duration: `now - run.started > 10m`".to_string()
            }
            (_, Type::Time, _) | (_, _, Type::Time) => {
                "a time minus a time is a duration; a time plus or minus a duration is a time"
                    .to_string()
            }
            (BinOp::Div, Type::Int | Type::Float, Type::Duration) => {
                "divide a duration by a number (`window / 2`), not a number by a duration"
                    .to_string()
            }
            (BinOp::Mul, Type::Duration, Type::Duration) => {
                "multiply a duration by a number, e.g. `window * 2`".to_string()
            }
            (_, Type::String | Type::OneOf(_), _) | (_, _, Type::String | Type::OneOf(_)) => {
                "arithmetic works on numbers and durations; a number in quotes is text: drop the quotes".to_string()
            }
            _ => "arithmetic works on numbers (`int`, `float`) and durations".to_string(),
        };
        self.diags
            .push(operands_mismatch(op, (a, l), (b, r)).help(help));
        None
    }

    /// `pods[0]`: a list (or JSON) indexed by an `int`.
    pub(super) fn index(
        &mut self,
        v: &ast::Expr,
        i: &ast::Expr,
        scope: &Scope,
    ) -> (plan::ExprKind, Ty) {
        let (vx, vt) = self.expr(v, scope);
        let (ix, it) = self.expr(i, scope);
        if let Some(t) = &it {
            if !matches!(t, Type::Int | Type::Json) {
                self.diags.push(
                    Diag::error(
                        Code::TypeMismatch,
                        format!("an index must be an int, but this is {}", an(t)),
                    )
                    .label(i.span, format!("this is {}", an(t)))
                    .help("`[0]` is the first item, `[-1]` the last"),
                );
            }
        }
        let ty = match vt {
            Some(Type::List(elem)) => Some(*elem),
            Some(Type::Json) => Some(Type::Json),
            Some(t) => {
                self.diags.push(
                    Diag::error(
                        Code::TypeMismatch,
                        format!("only a list can be indexed, but this is {}", an(&t)),
                    )
                    .label(v.span, format!("this is {}", an(&t)))
                    .help("index a `list<...>` input, a list literal or a JSON value (`capture json`)"),
                );
                None
            }
            None => None,
        };
        (
            plan::ExprKind::Index {
                value: Box::new(vx),
                index: Box::new(ix),
            },
            ty,
        )
    }

    /// `pods[0].name`: only JSON values have fields.
    pub(super) fn field(
        &mut self,
        v: &ast::Expr,
        name: &ast::Ident,
        scope: &Scope,
    ) -> (plan::ExprKind, Ty) {
        let (vx, vt) = self.expr(v, scope);
        let ty = match vt {
            Some(Type::Json) => Some(Type::Json),
            Some(t) => {
                self.diags.push(
                    Diag::error(
                        Code::UnknownField,
                        format!(
                            "`{}` is {}; it has no field `{}`",
                            self.source.get(v.span.start..v.span.end).unwrap_or("this"),
                            an(&t),
                            name.node
                        ),
                    )
                    .label(name.span, "no such field")
                    .help("only JSON values (`capture json`, an HTTP check's `json`) have fields"),
                );
                None
            }
            None => None,
        };
        (
            plan::ExprKind::Field {
                value: Box::new(vx),
                name: name.node.clone(),
            },
            ty,
        )
    }

    /// `length(x)`, `sort(list)`, `join(list, ",")`, `where(xs, "f", v)`,
    /// `map(xs, "f")`.
    pub(super) fn call(
        &mut self,
        name: &ast::Ident,
        args: &[ast::Expr],
        whole: &ast::Expr,
        scope: &Scope,
    ) -> (plan::ExprKind, Ty) {
        let lowered: Vec<(plan::Expr, Ty)> = args.iter().map(|a| self.expr(a, scope)).collect();
        let types: Vec<Ty> = lowered.iter().map(|(_, t)| t.clone()).collect();
        let args_x: Vec<plan::Expr> = lowered.into_iter().map(|(x, _)| x).collect();
        let Some(func) = Func::ALL.iter().copied().find(|f| f.name() == name.node) else {
            let names: Vec<&str> = Func::ALL.iter().map(|f| f.name()).collect();
            self.diags.push(
                Diag::error(
                    Code::UnknownFunction,
                    format!("unknown function `{}`", name.node),
                )
                .label(name.span, format!("the functions are {}", names.join(", ")))
                .help(
                    did_you_mean(&name.node, names.iter().copied())
                        .unwrap_or_else(|| "e.g. `length(pods) > 0`".to_string()),
                ),
            );
            return (
                plan::ExprKind::Call {
                    func: Func::Length,
                    args: args_x,
                },
                None,
            );
        };
        let want = func.arity();
        if args.len() != want {
            let usage = func.usage();
            self.diags.push(
                Diag::error(
                    Code::TypeMismatch,
                    format!(
                        "`{}` takes {want} argument{}, this call has {}",
                        func.name(),
                        if want == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .label(whole.span, "here")
                .help(format!("write it as {usage}")),
            );
            return (plan::ExprKind::Call { func, args: args_x }, None);
        }
        let ty = self.call_type(func, args, &types);
        (plan::ExprKind::Call { func, args: args_x }, ty)
    }

    fn call_type(&mut self, func: Func, args: &[ast::Expr], types: &[Ty]) -> Ty {
        let (Some(first), Some(Some(t))) = (args.first(), types.first()) else {
            return None;
        };
        let wrong = |this: &mut Self, what: &str| {
            this.diags.push(
                Diag::error(
                    Code::TypeMismatch,
                    format!("`{}` needs {what}, but this is {}", func.name(), an(t)),
                )
                .label(first.span, format!("this is {}", an(t)))
                .help(format!(
                    "`{}` reads a `list<...>` input, a list literal or a `capture json` value",
                    func.name()
                )),
            );
            None
        };
        match func {
            Func::Length => match t {
                Type::List(_) | Type::String | Type::OneOf(_) | Type::Json => Some(Type::Int),
                _ => wrong(self, "a list or text"),
            },
            Func::Sort => match t {
                Type::List(elem)
                    if matches!(
                        **elem,
                        Type::Int
                            | Type::Float
                            | Type::Duration
                            | Type::String
                            | Type::OneOf(_)
                            | Type::Json
                    ) =>
                {
                    Some(t.clone())
                }
                Type::Json => Some(Type::Json),
                _ => wrong(self, "a list of numbers, durations or text"),
            },
            Func::Where | Func::Map => {
                // A secret as the value was refused where it was read.
                self.field_name(func, args.get(1), types.get(1));
                match t {
                    Type::Json => Some(Type::Json),
                    Type::List(elem) if **elem == Type::Json => Some(t.clone()),
                    _ => wrong(self, "a list of JSON objects (a `capture json` value)"),
                }
            }
            Func::Join => {
                if let (Some(sep), Some(Some(st))) = (args.get(1), types.get(1)) {
                    if !comparable(st, &Type::String) {
                        self.diags.push(
                            Diag::error(
                                Code::TypeMismatch,
                                format!(
                                    "`join` needs text as its separator, but this is {}",
                                    an(st)
                                ),
                            )
                            .label(sep.span, format!("this is {}", an(st)))
                            .help("e.g. `join(hosts, \",\")`"),
                        );
                    }
                }
                match t {
                    Type::List(_) | Type::Json => Some(Type::String),
                    _ => wrong(self, "a list"),
                }
            }
        }
    }
}

impl Lowering<'_> {
    /// The field named by `where`/`map`: text, dotted for a nested field.
    fn field_name(&mut self, func: Func, arg: Option<&ast::Expr>, ty: Option<&Ty>) {
        let (Some(arg), Some(Some(t))) = (arg, ty) else {
            return;
        };
        if !matches!(t, Type::String | Type::OneOf(_)) {
            self.diags.push(
                Diag::error(
                    Code::TypeMismatch,
                    format!(
                        "`{}` needs a field name as text, but this is {}",
                        func.name(),
                        an(t)
                    ),
                )
                .label(arg.span, format!("this is {}", an(t)))
                .help(format!(
                    "name the field in quotes, dotted for a nested one: {}",
                    func.usage()
                )),
            );
        }
    }
}
