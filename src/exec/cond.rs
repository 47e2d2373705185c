//! Condition evaluation over the compiled [`Expr`] tree.
//!
//! Values are read through a [`Resolve`] (inputs, captures, check results,
//! loop variables, `run.*`, `failure.*`, a probe's observation); every value
//! read is recorded for the decision log. A value a dry run cannot know (a
//! capture of a simulated command) is [`V::Unknown`], and the logic is
//! three-valued (Kleene): `false and unknown` is `false`, `true or unknown`
//! is `true`, anything else involving an unknown is unknown.

use crate::events::ValueRead;
use crate::plan::{BinOp, Expr, ExprKind, Ref, Value};
use std::cmp::Ordering;
use std::time::Duration;

/// A run-time value.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    /// Not known in this mode (dry run): the reason.
    Unknown(String),
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Dur(Duration),
    List(Vec<V>),
    /// A JSON object.
    Object(serde_json::Map<String, serde_json::Value>),
    /// A point in time (`now`, `run.started`).
    Time(std::time::SystemTime),
}

impl V {
    pub fn from_json(j: &serde_json::Value) -> V {
        use serde_json::Value as J;
        match j {
            J::Null => V::Null,
            J::Bool(b) => V::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => V::Int(i),
                None => V::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => V::Str(s.clone()),
            J::Array(a) => V::List(a.iter().map(V::from_json).collect()),
            J::Object(o) => V::Object(o.clone()),
        }
    }

    pub fn from_value(v: &Value) -> V {
        match v {
            Value::Bool(b) => V::Bool(*b),
            Value::Int(i) => V::Int(*i),
            Value::Float(f) => V::Float(*f),
            Value::String(s) => V::Str(s.clone()),
            Value::Duration(d) => V::Dur(*d),
            Value::List(l) => V::List(l.iter().map(V::from_value).collect()),
            Value::Json(j) => V::from_json(j),
        }
    }

    /// The JSON form for the decision log and for templates.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            V::Unknown(why) => J::String(format!("<unknown: {why}>")),
            V::Null => J::Null,
            V::Bool(b) => J::Bool(*b),
            V::Int(i) => J::from(*i),
            V::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(f.to_string())),
            V::Str(s) => J::String(s.clone()),
            V::Dur(d) => J::String(humantime::format_duration(*d).to_string()),
            V::List(l) => J::Array(l.iter().map(V::to_json).collect()),
            V::Object(o) => J::Object(o.clone()),
            V::Time(t) => J::String(humantime::format_rfc3339_millis(*t).to_string()),
        }
    }

    /// Short description for messages.
    pub fn describe(&self) -> String {
        match self {
            V::Unknown(_) => "an unknown value".into(),
            V::Null => "null".into(),
            V::Bool(b) => format!("bool {b}"),
            V::Int(i) => format!("number {i}"),
            V::Float(f) => format!("number {f}"),
            V::Str(s) => format!("string {s:?}"),
            V::Dur(d) => format!("duration {}", humantime::format_duration(*d)),
            V::List(l) => format!("a list of {}", l.len()),
            V::Object(_) => "an object".into(),
            V::Time(t) => format!("time {}", humantime::format_rfc3339_millis(*t)),
        }
    }

    /// The text a fan-out item is shown as.
    pub fn display(&self) -> String {
        match self {
            V::Str(s) => s.clone(),
            other => other.to_json().to_string(),
        }
    }

    /// Back to a plan value (loop variables).
    pub fn to_value(&self) -> Value {
        match self {
            V::Bool(b) => Value::Bool(*b),
            V::Int(i) => Value::Int(*i),
            V::Float(f) => Value::Float(*f),
            V::Str(s) => Value::String(s.clone()),
            V::Dur(d) => Value::Duration(*d),
            V::List(l) => Value::List(l.iter().map(V::to_value).collect()),
            other => Value::Json(other.to_json()),
        }
    }

    pub(super) fn is_unknown(&self) -> bool {
        matches!(self, V::Unknown(_))
    }

    pub(super) fn num(&self) -> Option<f64> {
        match self {
            V::Int(i) => Some(*i as f64),
            V::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// Follows `path` into a value (`live.revision`).
pub fn follow(mut v: V, name: &str, path: &[String]) -> Result<V, String> {
    let mut at = name.to_owned();
    for p in path {
        v = match v {
            V::Unknown(why) => return Ok(V::Unknown(why)),
            V::Object(mut o) => match o.remove(p) {
                Some(j) => V::from_json(&j),
                None => return Err(format!("`{at}` has no field `{p}`")),
            },
            V::List(l) => match p.parse::<usize>().ok().and_then(|i| l.get(i).cloned()) {
                Some(x) => x,
                None => return Err(format!("`{at}` has no element `{p}`")),
            },
            other => {
                return Err(format!(
                    "`{at}` is {}, which has no field `{p}`",
                    other.describe()
                ))
            }
        };
        at.push('.');
        at.push_str(p);
    }
    Ok(v)
}

/// Reads the values a condition names.
pub trait Resolve {
    fn resolve(&self, r: &Ref) -> Result<V, String>;
}

/// Evaluates `expr`, recording every value read in `reads` (once each).
pub fn eval(expr: &Expr, res: &dyn Resolve, reads: &mut Vec<ValueRead>) -> Result<V, String> {
    match &expr.kind {
        ExprKind::Literal { value } => Ok(V::from_value(value)),
        ExprKind::Ref(r) => {
            let v = res.resolve(r);
            let name = r.dotted();
            if !reads.iter().any(|x| x.name == name) {
                reads.push(ValueRead {
                    name,
                    value: match &v {
                        Ok(v) => v.to_json(),
                        Err(_) => serde_json::Value::Null,
                    },
                });
            }
            v
        }
        ExprKind::Not { operand } => match eval(operand, res, reads)? {
            V::Bool(b) => Ok(V::Bool(!b)),
            u @ V::Unknown(_) => Ok(u),
            other => Err(format!(
                "`not` needs a bool, `{}` is {}",
                operand.text,
                other.describe()
            )),
        },
        ExprKind::Binary { op, lhs, rhs } => {
            let l = eval(lhs, res, reads)?;
            if matches!(op, BinOp::And | BinOp::Or) {
                return logic(*op, l, lhs, rhs, res, reads);
            }
            let r = eval(rhs, res, reads)?;
            if super::values::is_arithmetic(*op) {
                return super::values::arithmetic(*op, &l, &r, &expr.text);
            }
            binary(*op, &l, &r, &expr.text)
        }
        ExprKind::Index { value, index } => {
            let v = eval(value, res, reads)?;
            let i = eval(index, res, reads)?;
            super::values::index(v, &i, &expr.text)
        }
        ExprKind::Field { value, name } => {
            let v = eval(value, res, reads)?;
            follow(v, &value.text, std::slice::from_ref(name))
        }
        ExprKind::Call { func, args } => {
            let mut vs = Vec::with_capacity(args.len());
            for a in args {
                vs.push(eval(a, res, reads)?);
            }
            super::values::call(*func, vs, &expr.text)
        }
    }
}

fn as_bool(v: V, e: &Expr) -> Result<V, String> {
    match v {
        V::Bool(_) | V::Unknown(_) => Ok(v),
        other => Err(format!("`{}` is {}, not a bool", e.text, other.describe())),
    }
}

fn logic(
    op: BinOp,
    l: V,
    lhs: &Expr,
    rhs: &Expr,
    res: &dyn Resolve,
    reads: &mut Vec<ValueRead>,
) -> Result<V, String> {
    let l = as_bool(l, lhs)?;
    // Short-circuit as written: the right side is not read.
    match (op, &l) {
        (BinOp::And, V::Bool(false)) => return Ok(V::Bool(false)),
        (BinOp::Or, V::Bool(true)) => return Ok(V::Bool(true)),
        _ => {}
    }
    let r = as_bool(eval(rhs, res, reads)?, rhs)?;
    Ok(match (op, l, r) {
        (_, V::Bool(_), r @ V::Bool(_)) => r,
        (BinOp::And, _, V::Bool(false)) => V::Bool(false),
        (BinOp::Or, _, V::Bool(true)) => V::Bool(true),
        (_, V::Unknown(w), _) | (_, _, V::Unknown(w)) => V::Unknown(w),
        _ => V::Unknown("undecided".into()),
    })
}

pub(super) fn equal(l: &V, r: &V, text: &str) -> Result<bool, String> {
    Ok(match (l, r) {
        (V::Null, V::Null) => true,
        (V::Null, _) | (_, V::Null) => false,
        (V::Bool(a), V::Bool(b)) => a == b,
        (V::Int(a), V::Int(b)) => a == b,
        (a, b) if a.num().is_some() && b.num().is_some() => a.num() == b.num(),
        (V::Str(a), V::Str(b)) => a == b,
        (V::Dur(a), V::Dur(b)) => a == b,
        (V::Time(a), V::Time(b)) => a == b,
        (V::List(a), V::List(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .map(|(x, y)| equal(x, y, text))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .all(|x| x)
        }
        (V::Object(a), V::Object(b)) => a == b,
        (a, b) => {
            return Err(format!(
                "`{text}`: cannot compare {} with {}",
                a.describe(),
                b.describe()
            ))
        }
    })
}

pub(super) fn order(l: &V, r: &V, text: &str) -> Result<Ordering, String> {
    match (l, r) {
        (V::Int(a), V::Int(b)) => Ok(a.cmp(b)),
        (a, b) if a.num().is_some() && b.num().is_some() => {
            let (a, b) = (a.num().unwrap_or(f64::NAN), b.num().unwrap_or(f64::NAN));
            a.partial_cmp(&b)
                .ok_or_else(|| format!("`{text}`: NaN cannot be compared"))
        }
        (V::Dur(a), V::Dur(b)) => Ok(a.cmp(b)),
        (V::Time(a), V::Time(b)) => Ok(a.cmp(b)),
        (V::Str(a), V::Str(b)) => Ok(a.cmp(b)),
        (a, b) => Err(format!(
            "`{text}`: cannot order {} and {}",
            a.describe(),
            b.describe()
        )),
    }
}

fn binary(op: BinOp, l: &V, r: &V, text: &str) -> Result<V, String> {
    if let Some(V::Unknown(w)) = [l, r].into_iter().find(|v| v.is_unknown()) {
        return Ok(V::Unknown(w.clone()));
    }
    let b = match op {
        BinOp::Eq => equal(l, r, text)?,
        BinOp::Ne => !equal(l, r, text)?,
        BinOp::Lt => order(l, r, text)? == Ordering::Less,
        BinOp::Le => order(l, r, text)? != Ordering::Greater,
        BinOp::Gt => order(l, r, text)? == Ordering::Greater,
        BinOp::Ge => order(l, r, text)? != Ordering::Less,
        BinOp::In => contains(r, l, text)?,
        BinOp::Contains => contains(l, r, text)?,
        BinOp::Matches => match (l, r) {
            (V::Str(s), V::Str(re)) => regex::Regex::new(re)
                .map_err(|e| format!("`{text}`: invalid regex: {e}"))?
                .is_match(s),
            (a, _) => {
                return Err(format!(
                    "`{text}`: `matches` needs a string, got {}",
                    a.describe()
                ))
            }
        },
        BinOp::And | BinOp::Or | BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
            return Err(format!(
                "`{text}`: internal: operator `{}` out of place",
                op.symbol()
            ))
        }
    };
    Ok(V::Bool(b))
}

fn contains(hay: &V, needle: &V, text: &str) -> Result<bool, String> {
    match (hay, needle) {
        (V::List(items), n) => {
            for i in items {
                if equal(i, n, text).unwrap_or(false) {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        (V::Str(h), V::Str(n)) => Ok(h.contains(n.as_str())),
        (V::Object(o), V::Str(k)) => Ok(o.contains_key(k)),
        (h, n) => Err(format!(
            "`{text}`: {} cannot contain {}",
            h.describe(),
            n.describe()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::RefRoot;
    use crate::span::Span;

    fn lit(v: Value) -> Expr {
        Expr {
            text: format!("{v:?}"),
            kind: ExprKind::Literal { value: v },
            span: Span::default(),
        }
    }
    fn r(root: RefRoot, name: &str, path: &[&str]) -> Expr {
        Expr {
            text: name.into(),
            kind: ExprKind::Ref(Ref {
                root,
                name: name.into(),
                path: path.iter().map(|s| s.to_string()).collect(),
            }),
            span: Span::default(),
        }
    }
    fn bin(op: BinOp, l: Expr, r: Expr) -> Expr {
        Expr {
            text: format!("{} {} {}", l.text, op.symbol(), r.text),
            kind: ExprKind::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r),
            },
            span: Span::default(),
        }
    }

    struct R;
    impl Resolve for R {
        fn resolve(&self, r: &Ref) -> Result<V, String> {
            match r.name.as_str() {
                "live" => follow(
                    V::from_json(&serde_json::json!({"revision": "abc", "n": 3})),
                    "live",
                    &r.path,
                ),
                "ok" => Ok(V::Bool(true)),
                "bad" => Ok(V::Bool(false)),
                "unk" => Ok(V::Unknown("dry run".into())),
                "elapsed" => Ok(V::Dur(Duration::from_millis(300))),
                _ => Err(format!("no {}", r.name)),
            }
        }
    }

    fn run(e: &Expr) -> (Result<V, String>, Vec<ValueRead>) {
        let mut reads = vec![];
        (eval(e, &R, &mut reads), reads)
    }

    #[test]
    fn compares_and_records_reads() {
        let e = bin(
            BinOp::And,
            bin(
                BinOp::Eq,
                r(RefRoot::Capture, "live", &["revision"]),
                lit(Value::String("abc".into())),
            ),
            bin(
                BinOp::Lt,
                r(RefRoot::Probe, "elapsed", &[]),
                lit(Value::Duration(Duration::from_millis(800))),
            ),
        );
        let (v, reads) = run(&e);
        assert_eq!(v, Ok(V::Bool(true)));
        assert_eq!(reads.len(), 2);
        assert_eq!(reads[0].name, "live.revision");
        assert_eq!(reads[0].value, serde_json::json!("abc"));
    }

    #[test]
    fn three_valued_logic() {
        let e = bin(
            BinOp::And,
            r(RefRoot::Capture, "unk", &[]),
            r(RefRoot::Check, "bad", &[]),
        );
        assert_eq!(run(&e).0, Ok(V::Bool(false)));
        let e = bin(
            BinOp::And,
            r(RefRoot::Capture, "unk", &[]),
            r(RefRoot::Check, "ok", &[]),
        );
        assert!(matches!(run(&e).0, Ok(V::Unknown(_))));
    }

    #[test]
    fn type_mismatch_is_an_error_not_a_guess() {
        let e = bin(
            BinOp::Eq,
            r(RefRoot::Capture, "live", &["n"]),
            lit(Value::String("3".into())),
        );
        assert!(run(&e).0.is_err());
        let e = r(RefRoot::Capture, "live", &["missing"]);
        assert!(run(&e).0.is_err());
    }
}
