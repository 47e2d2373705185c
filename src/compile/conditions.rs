//! Conditions: resolve every name, check every operator's operand types,
//! compile regexes, and lower to [`plan::Expr`].

use super::scope::{
    builtin_field_type, builtin_fields, not_here_label, Globals, Resolved, Scope,
    CLEANUP_RUN_FIELDS,
};
use super::{an, mark_used};
use crate::ast::{self, BinOp, ExprKind, LiteralKind};
use crate::diagnostics::Code;
use crate::diagnostics::{did_you_mean, Diag};
use crate::plan::{self, Ref, RefRoot, Type, Value};

pub(super) struct Lowering<'a> {
    pub globals: &'a Globals,
    pub source: &'a str,
    pub diags: &'a mut Vec<Diag>,
    /// Names actually read, for unused-name warnings.
    pub used: &'a mut super::HashSet<String>,
    /// Patterns already compiled, and the last line of their error if any.
    pub regexes: &'a mut super::HashMap<String, Option<String>>,
}

/// Result type of an expression; `None` when an error was already reported
/// (so one mistake does not cascade into several).
pub(super) type Ty = Option<Type>;

impl Lowering<'_> {
    /// Lowers a condition that must be a boolean.
    pub(super) fn condition(&mut self, e: &ast::Expr, scope: &Scope) -> plan::Expr {
        let (expr, ty) = self.expr(e, scope);
        if let Some(t) = ty {
            if !matches!(t, Type::Bool | Type::Json) {
                self.diags.push(
                    Diag::error(
                        Code::TypeMismatch,
                        format!("a condition must be true or false, but this is {}", an(&t)),
                    )
                    .label(e.span, format!("this is {}", an(&t)))
                    .help(format!(
                        "compare it with a value, e.g. {}",
                        example_comparison(&expr.text, &t)
                    )),
                );
            }
        }
        expr
    }

    pub(super) fn expr(&mut self, e: &ast::Expr, scope: &Scope) -> (plan::Expr, Ty) {
        let text = self
            .source
            .get(e.span.start..e.span.end)
            .unwrap_or("")
            .to_string();
        let (kind, ty) = match &e.kind {
            ExprKind::Literal(l) => {
                let (v, t) = literal_value(l, self.diags);
                (plan::ExprKind::Literal { value: v }, t)
            }
            ExprKind::Path(parts) => self.path(parts, e, scope),
            ExprKind::Not(inner) => {
                let (x, t) = self.expr(inner, scope);
                self.want_bool(&t, inner, "not");
                (
                    plan::ExprKind::Not {
                        operand: Box::new(x),
                    },
                    Some(Type::Bool),
                )
            }
            ExprKind::Binary(op, l, r) if super::values::is_arithmetic(*op) => {
                let (lx, lt) = self.expr(l, scope);
                let (rx, rt) = self.expr(r, scope);
                let ty = self.arithmetic(*op, (l, &lt), (r, &rt));
                (
                    plan::ExprKind::Binary {
                        op: *op,
                        lhs: Box::new(lx),
                        rhs: Box::new(rx),
                    },
                    ty,
                )
            }
            ExprKind::Binary(op, l, r) => {
                let (lx, lt) = self.expr(l, scope);
                let (rx, rt) = self.expr(r, scope);
                self.binary(*op, (l, &lt), (r, &rt), e);
                (
                    plan::ExprKind::Binary {
                        op: *op,
                        lhs: Box::new(lx),
                        rhs: Box::new(rx),
                    },
                    Some(Type::Bool),
                )
            }
            ExprKind::Index(v, i) => self.index(v, i, scope),
            ExprKind::Field(v, name) => self.field(v, name, scope),
            ExprKind::Call(name, args) => self.call(name, args, e, scope),
        };
        (
            plan::Expr {
                text,
                kind,
                span: e.span,
            },
            ty,
        )
    }

    fn path(&mut self, parts: &[ast::Ident], e: &ast::Expr, scope: &Scope) -> (plan::ExprKind, Ty) {
        let Some(root) = parts.first() else {
            return (
                plan::ExprKind::Literal {
                    value: Value::Bool(false),
                },
                None,
            );
        };
        let fields: Vec<String> = parts[1..].iter().map(|p| p.node.clone()).collect();
        let make = |root_kind| {
            plan::ExprKind::Ref(Ref {
                root: root_kind,
                name: root.node.clone(),
                path: fields.clone(),
            })
        };
        if root.node == "now" {
            return self.now(parts);
        }
        match scope.resolve(self.globals, &root.node) {
            Resolved::Found(kind, ty) => {
                mark_used(self.used, &root.node);
                if ty == Type::Secret {
                    self.diags.push(
                        Diag::error(Code::SecretInCondition, format!("secret `{}` cannot be used in a condition", root.node))
                            .label(root.span, "a secret")
                            .help("conditions are logged with every value they read; compare a non-secret value instead"),
                    );
                    return (make(kind), None);
                }
                let allowed_fields = builtin_fields(kind, scope);
                if let Some(allowed) = allowed_fields {
                    match parts.get(1) {
                        Some(f)
                            if kind == RefRoot::Run
                                && CLEANUP_RUN_FIELDS.contains(&f.node.as_str())
                                && parts.len() == 2 =>
                        {
                            if !scope.cleanup {
                                self.diags.push(
                                    Diag::error(
                                        Code::NotInScope,
                                        format!(
                                            "`run.{}` is only known in an `always` step",
                                            f.node
                                        ),
                                    )
                                    .label(f.span, "not known yet here")
                                    .help("the outcome is decided once the steps and any rollback are over: read it in a step of `always { ... }`"),
                                );
                            }
                        }
                        None => {
                            let fields: Vec<String> = allowed
                                .iter()
                                .map(|f| format!("{}.{f}", root.node))
                                .collect();
                            self.diags.push(
                                Diag::error(
                                    Code::UnknownField,
                                    format!(
                                        "`{}` is a built-in record; read one of its fields",
                                        root.node
                                    ),
                                )
                                .label(root.span, format!("write {}", fields.join(", "))),
                            );
                        }
                        Some(f) if !allowed.contains(&f.node.as_str()) || parts.len() > 2 => {
                            self.diags.push(
                                Diag::error(
                                    Code::UnknownField,
                                    format!("`{}` has no field `{}`", root.node, f.node),
                                )
                                .label(f.span, format!("known fields: {}", allowed.join(", ")))
                                .maybe_help(did_you_mean(&f.node, allowed.iter().copied())),
                            );
                        }
                        Some(_) => {}
                    }
                    let ty = match parts.get(1) {
                        Some(f) => builtin_field_type(kind, &f.node),
                        None => Type::String,
                    };
                    return (make(kind), Some(ty));
                }
                if parts.len() > 1 && ty != Type::Json {
                    let f = &parts[1];
                    self.diags.push(
                        Diag::error(
                            Code::UnknownField,
                            format!(
                                "`{}` is {}; it has no field `{}`",
                                root.node,
                                an(&ty),
                                f.node
                            ),
                        )
                        .label(f.span, "no such field")
                        .help(
                            "only JSON values (`capture json`, an HTTP check's `json`) have fields",
                        ),
                    );
                    return (make(kind), None);
                }
                (make(kind), Some(ty))
            }
            Resolved::NotHere(code, msg, help) => {
                // Counted as used: the error says what is wrong with it.
                mark_used(self.used, &root.node);
                self.diags.push(
                    Diag::error(code, msg)
                        .label(root.span, not_here_label(code))
                        .maybe_help(help),
                );
                (make(RefRoot::Input), None)
            }
            Resolved::Unknown => {
                let names = scope.visible_names(self.globals);
                let (label, fallback) = match scope.probe {
                    Some(kind) => {
                        let vars: Vec<&str> =
                            super::scope::probe_vars(kind).iter().map(|(n, _)| *n).collect();
                        (
                            format!("not an input, nor something {} check observes", an(kind)),
                            format!(
                                "{} check's `expect` can read {} and the runbook's inputs",
                                an(kind),
                                vars.join(", ")
                            ),
                        )
                    }
                    None => (
                        "not an input, check, capture or built-in".to_string(),
                        format!(
                            "a condition reads inputs, checks, captures of earlier steps and run.*: declare `{}` (e.g. as an `input` or a `check`), or fix the spelling",
                            root.node
                        ),
                    ),
                };
                self.diags.push(
                    Diag::error(Code::UnknownName, format!("unknown name `{}`", root.node))
                        .label(root.span, label)
                        .help(did_you_mean(&root.node, names.iter().copied()).unwrap_or(fallback)),
                );
                let _ = e;
                (make(RefRoot::Input), None)
            }
        }
    }

    fn want_bool(&mut self, t: &Ty, e: &ast::Expr, op: &str) {
        if let Some(t) = t {
            if !matches!(t, Type::Bool | Type::Json) {
                self.diags.push(
                    Diag::error(
                        Code::TypeMismatch,
                        format!("`{op}` needs true or false, but this is {}", an(t)),
                    )
                    .label(e.span, format!("this is {}", an(t)))
                    .help({
                        let example = example_comparison(
                            self.source.get(e.span.start..e.span.end).unwrap_or("value"),
                            t,
                        );
                        if op == "not" {
                            format!("`not` negates a condition; make this one a condition by comparing it, e.g. `not ({})`", example.trim_matches('`'))
                        } else {
                            format!("`{op}` joins conditions; make this one a condition by comparing it, e.g. {example}")
                        }
                    }),
                );
            }
        }
    }

    fn binary(
        &mut self,
        op: BinOp,
        (l, lt): (&ast::Expr, &Ty),
        (r, rt): (&ast::Expr, &Ty),
        whole: &ast::Expr,
    ) {
        match op {
            BinOp::And | BinOp::Or => {
                self.want_bool(lt, l, op.symbol());
                self.want_bool(rt, r, op.symbol());
            }
            BinOp::Eq | BinOp::Ne => {
                let (Some(a), Some(b)) = (lt, rt) else { return };
                if !comparable(a, b) {
                    self.mismatch(op, a, b, l, r, whole);
                    return;
                }
                self.check_one_of(a, r);
                self.check_one_of(b, l);
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let (Some(a), Some(b)) = (lt, rt) else { return };
                let ordered = |t: &Type| {
                    matches!(
                        t,
                        Type::Int | Type::Float | Type::Duration | Type::Time | Type::Json
                    )
                };
                if !ordered(a) || !ordered(b) || !comparable(a, b) {
                    self.mismatch(op, a, b, l, r, whole);
                }
            }
            BinOp::In => {
                let (Some(a), Some(b)) = (lt, rt) else { return };
                match b {
                    Type::List(elem) if comparable(a, elem) => {}
                    Type::Json => {}
                    Type::String if matches!(a, Type::String | Type::OneOf(_) | Type::Json) => {}
                    _ => self.mismatch(op, a, b, l, r, whole),
                }
            }
            BinOp::Contains => {
                let (Some(a), Some(b)) = (lt, rt) else { return };
                match a {
                    Type::List(elem) if comparable(elem, b) => {}
                    Type::Json => {}
                    Type::String | Type::OneOf(_)
                        if matches!(b, Type::String | Type::OneOf(_) | Type::Json) => {}
                    _ => self.mismatch(op, a, b, l, r, whole),
                }
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {}
            BinOp::Matches => {
                if let Some(a) = lt {
                    if !matches!(a, Type::String | Type::OneOf(_) | Type::Json) {
                        self.diags.push(
                            Diag::error(
                                Code::TypeMismatch,
                                format!("`matches` needs text on its left, but this is {}", an(a)),
                            )
                            .label(l.span, format!("this is {}", an(a))),
                        );
                    }
                }
                match &r.kind {
                    ExprKind::Literal(ast::Literal {
                        kind: LiteralKind::String(re),
                        span,
                        ..
                    }) => {
                        let error = match self.regexes.get(re.as_str()) {
                            Some(known) => known.clone(),
                            None => {
                                let error = regex::Regex::new(re).err().map(|err| {
                                    let detail = err.to_string();
                                    detail.lines().last().unwrap_or("invalid").trim().to_string()
                                });
                                self.regexes.insert(re.clone(), error.clone());
                                error
                            }
                        };
                        if let Some(last) = error {
                            self.diags.push(
                                Diag::error(Code::InvalidRegex, "invalid regular expression")
                                    .label(*span, last)
                                    .help("the syntax is Rust's `regex` crate (like RE2): escape `\\` as `\\\\` inside the string"),
                            );
                        }
                    }
                    _ => self.diags.push(
                        Diag::error(Code::RegexNotLiteral, "`matches` needs a regular expression written as a string")
                            .label(r.span, "not a string literal")
                            .help("write the pattern in the runbook, e.g. `stdout matches \"^ok\"`, so it is checked before the run"),
                    ),
                }
            }
        }
    }

    /// `region == "eu-wset-1"` where `region` is `one_of [...]`: the literal
    /// must be one of the allowed values.
    fn check_one_of(&mut self, t: &Type, other: &ast::Expr) {
        let Type::OneOf(allowed) = t else { return };
        if let ExprKind::Literal(ast::Literal {
            kind: LiteralKind::String(s),
            span,
            ..
        }) = &other.kind
        {
            if !allowed.contains(s) {
                self.diags.push(
                    Diag::error(
                        Code::NotOneOf,
                        format!("\"{s}\" is never equal: it is not one of the allowed values"),
                    )
                    .label(*span, format!("allowed: {}", allowed.join(", ")))
                    .maybe_help(did_you_mean(s, allowed.iter().map(String::as_str))),
                );
            }
        }
    }

    fn mismatch(
        &mut self,
        op: BinOp,
        a: &Type,
        b: &Type,
        l: &ast::Expr,
        r: &ast::Expr,
        whole: &ast::Expr,
    ) {
        let quoted_duration = |e: &ast::Expr| match &e.kind {
            ExprKind::Literal(ast::Literal {
                kind: LiteralKind::String(s),
                ..
            }) if crate::syntax::parse_duration(s).is_ok() => Some(s.clone()),
            _ => None,
        };
        let ordering = matches!(op, BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge);
        let help = match (a, b) {
            (Type::Duration, Type::String) | (Type::String, Type::Duration)
                if quoted_duration(l).or_else(|| quoted_duration(r)).is_some() =>
            {
                let d = quoted_duration(l).or_else(|| quoted_duration(r)).unwrap_or_default();
                Some(format!("drop the quotes: `{d}` is a duration, `\"{d}\"` is text"))
            }
            (Type::Duration, Type::Int | Type::Float)
            | (Type::Int | Type::Float, Type::Duration) => {
                let number_literal = |e: &ast::Expr| {
                    matches!(
                        &e.kind,
                        ExprKind::Literal(ast::Literal {
                            kind: LiteralKind::Int(_) | LiteralKind::Float(_),
                            ..
                        })
                    )
                };
                if number_literal(l) || number_literal(r) {
                    Some("give the number a unit, e.g. `800ms` or `2s`".to_string())
                } else {
                    Some("a number and a duration cannot be compared: give both sides the same type (e.g. declare the input as `float`, or as `duration` and compare it with a duration)".to_string())
                }
            }
            (Type::String | Type::OneOf(_), Type::String | Type::OneOf(_)) if ordering => Some(
                format!("`{}` orders numbers and durations; text can be compared with `==`, `!=`, `in`, `contains` or `matches`", op.symbol()),
            ),
            (Type::Bool, _) | (_, Type::Bool) if ordering => Some(format!(
                "`{}` orders numbers and durations; a check or a bool is true or false: use it alone, with `not`, or with `==`",
                op.symbol()
            )),
            (Type::String, Type::Int | Type::Float) | (Type::Int | Type::Float, Type::String) => {
                Some("compare numbers with numbers: drop the quotes around the number".to_string())
            }
            _ if op == BinOp::In => {
                Some("`in` needs a list on its right, e.g. `region in [\"eu-west-1\"]`".to_string())
            }
            _ if op == BinOp::Contains => {
                Some("`contains` needs text or a list on its left".to_string())
            }
            _ => None,
        };
        self.diags
            .push(operands_mismatch(op, (a, l), (b, r)).maybe_help(help));
        let _ = whole;
    }
}

/// "cannot use `op` between a X and a Y", each side labelled with its type.
pub(super) fn operands_mismatch(
    op: BinOp,
    (a, l): (&Type, &ast::Expr),
    (b, r): (&Type, &ast::Expr),
) -> Diag {
    Diag::error(
        Code::TypeMismatch,
        format!(
            "cannot use `{}` between {} and {}",
            op.symbol(),
            an(a),
            an(b)
        ),
    )
    .label(l.span, format!("this is {}", an(a)))
    .label(r.span, format!("this is {}", an(b)))
}

pub(super) fn comparable(a: &Type, b: &Type) -> bool {
    use Type::*;
    match (a, b) {
        (Json, _) | (_, Json) => true,
        (Int | Float, Int | Float) => true,
        (String | OneOf(_), String | OneOf(_)) => true,
        (List(x), List(y)) => comparable(x, y),
        (x, y) => x == y,
    }
}

/// `n > 0`, `name == "value"`: a comparison that makes a condition of a
/// value of type `t` written as `text`.
pub(super) fn example_comparison(text: &str, t: &Type) -> String {
    match t {
        Type::Int | Type::Float => format!("`{text} > 0`"),
        Type::Duration => format!("`{text} > 30s`"),
        Type::List(_) => format!("`\"value\" in {text}`"),
        Type::OneOf(v) => format!(
            "`{text} == {:?}`",
            v.first().map(String::as_str).unwrap_or("value")
        ),
        _ => format!("`{text} == \"value\"`"),
    }
}

fn list_example(t: &Type) -> &'static str {
    match t {
        Type::Int => "`[1, 2]`",
        Type::Float => "`[0.5, 1.0]`",
        Type::Duration => "`[30s, 5m]`",
        Type::Bool => "`[true, false]`",
        _ => "`[\"a\", \"b\"]`",
    }
}

/// A literal's value and type. Lists must hold one type.
pub(super) fn literal_value(l: &ast::Literal, diags: &mut Vec<Diag>) -> (Value, Ty) {
    match &l.kind {
        LiteralKind::String(s) => (Value::String(s.clone()), Some(Type::String)),
        LiteralKind::Int(i) => (Value::Int(*i), Some(Type::Int)),
        LiteralKind::Float(f) => (Value::Float(*f), Some(Type::Float)),
        LiteralKind::Bool(b) => (Value::Bool(*b), Some(Type::Bool)),
        LiteralKind::Duration(d) => (Value::Duration(*d), Some(Type::Duration)),
        LiteralKind::List(items) => {
            let mut values = Vec::with_capacity(items.len());
            let mut elem: Ty = None;
            let mut ok = true;
            for item in items {
                let (v, t) = literal_value(item, diags);
                values.push(v);
                match (&elem, t) {
                    (None, Some(t)) => elem = Some(t),
                    (Some(e), Some(t)) if !comparable(e, &t) && ok => {
                        ok = false;
                        diags.push(
                            Diag::error(
                                Code::MixedList,
                                format!(
                                    "a list holds one type; this item is {}, the first is {}",
                                    an(&t),
                                    an(e)
                                ),
                            )
                            .label(item.span, an(&t))
                            .help(format!(
                                "write every item as {}, e.g. {}",
                                an(e),
                                list_example(e)
                            )),
                        );
                    }
                    _ => {}
                }
            }
            let ty = elem
                .map(|e| Type::List(Box::new(e)))
                .or(Some(Type::List(Box::new(Type::Json))));
            (Value::List(values), if ok { ty } else { None })
        }
    }
}
