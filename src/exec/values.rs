//! Evaluation of the value operators of conditions: arithmetic on numbers
//! and durations, indexes (`pods[0]`, `items[-1]`) and the built-in
//! functions (`length`, `sort`, `join`). The compiler has typed them
//! (`compile/values.rs`); what it cannot know (a JSON value's shape, a
//! division by zero, an index past the end, an overflow) is an error here,
//! with the values shown, never a guess.

use super::cond::{equal, follow, order, V};
use crate::plan::{BinOp, Func};
use std::cmp::Ordering;
use std::time::Duration;

pub(super) fn is_arithmetic(op: BinOp) -> bool {
    matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div)
}

/// `l op r` for `+ - * /`.
pub(super) fn arithmetic(op: BinOp, l: &V, r: &V, text: &str) -> Result<V, String> {
    if let Some(V::Unknown(w)) = [l, r].into_iter().find(|v| v.is_unknown()) {
        return Ok(V::Unknown(w.clone()));
    }
    let cannot = || {
        format!(
            "`{text}`: cannot use `{}` between {} and {}",
            op.symbol(),
            l.describe(),
            r.describe()
        )
    };
    let overflow = || format!("`{text}`: the result is too large");
    match (l, r) {
        (V::Int(a), V::Int(b)) if op != BinOp::Div => {
            let v = match op {
                BinOp::Add => a.checked_add(*b),
                BinOp::Sub => a.checked_sub(*b),
                _ => a.checked_mul(*b),
            };
            v.map(V::Int).ok_or_else(overflow)
        }
        (a, b) if a.num().is_some() && b.num().is_some() => {
            let (a, b) = (a.num().unwrap_or(f64::NAN), b.num().unwrap_or(f64::NAN));
            let v = match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                _ if b == 0.0 => return Err(format!("`{text}`: division by zero")),
                _ => a / b,
            };
            if v.is_finite() {
                Ok(V::Float(v))
            } else {
                Err(overflow())
            }
        }
        (V::Dur(a), V::Dur(b)) => match op {
            BinOp::Add => a.checked_add(*b).map(V::Dur).ok_or_else(overflow),
            BinOp::Sub => a.checked_sub(*b).map(V::Dur).ok_or_else(|| {
                format!(
                    "`{text}`: {} minus {} is negative, and a duration cannot be",
                    l.describe(),
                    r.describe()
                )
            }),
            BinOp::Div if b.is_zero() => Err(format!("`{text}`: division by zero")),
            BinOp::Div => Ok(V::Float(a.as_secs_f64() / b.as_secs_f64())),
            _ => Err(cannot()),
        },
        (V::Time(a), V::Time(b)) if op == BinOp::Sub => {
            a.duration_since(*b).map(V::Dur).map_err(|_| {
                format!(
                    "`{text}`: {} is before {}, and a duration cannot be negative",
                    l.describe(),
                    r.describe()
                )
            })
        }
        (V::Time(t), V::Dur(d)) | (V::Dur(d), V::Time(t)) if op == BinOp::Add => {
            t.checked_add(*d).map(V::Time).ok_or_else(overflow)
        }
        (V::Time(t), V::Dur(d)) if op == BinOp::Sub => {
            t.checked_sub(*d).map(V::Time).ok_or_else(overflow)
        }
        (V::Dur(d), n) | (n, V::Dur(d)) if n.num().is_some() => {
            let n = n.num().unwrap_or(f64::NAN);
            let factor = match op {
                BinOp::Mul => n,
                BinOp::Div if matches!(l, V::Dur(_)) => {
                    if n == 0.0 {
                        return Err(format!("`{text}`: division by zero"));
                    }
                    1.0 / n
                }
                _ => return Err(cannot()),
            };
            if factor < 0.0 {
                return Err(format!(
                    "`{text}`: a duration times a negative number is negative, and a duration cannot be"
                ));
            }
            Duration::try_from_secs_f64(d.as_secs_f64() * factor)
                .map(V::Dur)
                .map_err(|_| overflow())
        }
        _ => Err(cannot()),
    }
}

/// `list[i]`; a negative `i` counts from the end (`[-1]` is the last).
pub(super) fn index(v: V, i: &V, text: &str) -> Result<V, String> {
    let i = match i {
        V::Unknown(w) => return Ok(V::Unknown(w.clone())),
        V::Int(i) => *i,
        other => {
            return Err(format!(
                "`{text}`: an index must be a whole number, got {}",
                other.describe()
            ))
        }
    };
    let items = match v {
        V::Unknown(w) => return Ok(V::Unknown(w)),
        V::List(items) => items,
        other => {
            return Err(format!(
                "`{text}`: only a list can be indexed, got {}",
                other.describe()
            ))
        }
    };
    let len = items.len();
    let at = if i < 0 {
        usize::try_from(i.unsigned_abs())
            .ok()
            .and_then(|back| len.checked_sub(back))
    } else {
        usize::try_from(i).ok().filter(|&at| at < len)
    };
    match at.and_then(|at| items.into_iter().nth(at)) {
        Some(x) => Ok(x),
        None => Err(format!(
            "`{text}`: index {i} is out of range: the list has {len} item{}",
            if len == 1 { "" } else { "s" }
        )),
    }
}

/// `length(x)`, `sort(list)`, `join(list, sep)`.
pub(super) fn call(func: Func, args: Vec<V>, text: &str) -> Result<V, String> {
    if let Some(V::Unknown(w)) = args.iter().find(|v| v.is_unknown()) {
        return Ok(V::Unknown(w.clone()));
    }
    let mut args = args.into_iter();
    let first = args.next().unwrap_or(V::Null);
    let wrong = |what: &str, got: &V| {
        format!(
            "`{text}`: `{}` needs {what}, got {}",
            func.name(),
            got.describe()
        )
    };
    match func {
        Func::Length => {
            let n = match &first {
                V::List(l) => l.len(),
                V::Str(s) => s.chars().count(),
                V::Object(o) => o.len(),
                other => return Err(wrong("a list, text or an object", other)),
            };
            i64::try_from(n)
                .map(V::Int)
                .map_err(|_| format!("`{text}`: too long"))
        }
        Func::Sort => {
            let V::List(mut items) = first else {
                return Err(wrong("a list", &first));
            };
            let mut error = None;
            items.sort_by(|a, b| match order(a, b, text) {
                Ok(o) => o,
                Err(e) => {
                    error.get_or_insert(e);
                    Ordering::Equal
                }
            });
            match error {
                Some(e) => Err(e),
                None => Ok(V::List(items)),
            }
        }
        Func::Where | Func::Map => {
            let V::List(items) = first else {
                return Err(wrong("a list", &first));
            };
            let field = match args.next() {
                Some(V::Str(s)) => s,
                Some(other) => return Err(wrong("a field name as text", &other)),
                None => String::new(),
            };
            let path: Vec<String> = field.split('.').map(str::to_owned).collect();
            if func == Func::Map {
                return items
                    .into_iter()
                    .map(|item| follow(item, "item", &path))
                    .collect::<Result<Vec<_>, _>>()
                    .map(V::List)
                    .map_err(|e| format!("`{text}`: {e}"));
            }
            let value = args.next().unwrap_or(V::Null);
            let mut kept = Vec::new();
            for item in items {
                // An item without the field is not one of those wanted.
                let matched = follow(item.clone(), "item", &path)
                    .ok()
                    .is_some_and(|v| equal(&v, &value, text).unwrap_or(false));
                if matched {
                    kept.push(item);
                }
            }
            Ok(V::List(kept))
        }
        Func::Join => {
            let V::List(items) = &first else {
                return Err(wrong("a list", &first));
            };
            let sep = match args.next() {
                Some(V::Str(s)) => s,
                Some(other) => return Err(wrong("text as its separator", &other)),
                None => String::new(),
            };
            let parts: Vec<String> = items.iter().map(V::display).collect();
            Ok(V::Str(parts.join(&sep)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> V {
        V::Dur(Duration::from_secs(s))
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(
            arithmetic(BinOp::Mul, &V::Int(3), &V::Int(2), "t"),
            Ok(V::Int(6))
        );
        assert_eq!(
            arithmetic(BinOp::Div, &V::Int(3), &V::Int(2), "t"),
            Ok(V::Float(1.5))
        );
        assert_eq!(
            arithmetic(BinOp::Sub, &secs(600), &secs(60), "t"),
            Ok(secs(540))
        );
        assert_eq!(
            arithmetic(BinOp::Mul, &V::Int(2), &secs(30), "t"),
            Ok(secs(60))
        );
        assert_eq!(
            arithmetic(BinOp::Div, &secs(60), &V::Int(4), "t"),
            Ok(secs(15))
        );
        assert_eq!(
            arithmetic(BinOp::Div, &secs(60), &secs(30), "t"),
            Ok(V::Float(2.0))
        );
    }

    #[test]
    fn errors_are_reported_not_guessed() {
        let e = arithmetic(BinOp::Div, &V::Int(1), &V::Int(0), "a / b").unwrap_err();
        assert!(e.contains("division by zero"), "{e}");
        let e = arithmetic(BinOp::Sub, &secs(1), &secs(2), "a - b").unwrap_err();
        assert!(e.contains("negative"), "{e}");
        let e = arithmetic(BinOp::Add, &V::Int(i64::MAX), &V::Int(1), "a + b").unwrap_err();
        assert!(e.contains("too large"), "{e}");
        let e = arithmetic(BinOp::Mul, &secs(1), &V::Int(-2), "a * b").unwrap_err();
        assert!(e.contains("negative"), "{e}");
        let e = arithmetic(BinOp::Add, &V::Str("1".into()), &V::Int(1), "a + b").unwrap_err();
        assert!(e.contains("cannot use `+`"), "{e}");
    }

    #[test]
    fn times() {
        let t0 = std::time::UNIX_EPOCH + Duration::from_secs(1_000);
        let t1 = t0 + Duration::from_secs(600);
        let (a, b) = (V::Time(t0), V::Time(t1));
        assert_eq!(arithmetic(BinOp::Sub, &b, &a, "t"), Ok(secs(600)));
        assert_eq!(arithmetic(BinOp::Add, &a, &secs(600), "t"), Ok(b.clone()));
        assert_eq!(arithmetic(BinOp::Sub, &b, &secs(600), "t"), Ok(a.clone()));
        let e = arithmetic(BinOp::Sub, &a, &b, "a - b").unwrap_err();
        assert!(e.contains("is before"), "{e}");
        assert!(arithmetic(BinOp::Add, &a, &b, "a + b").is_err());
    }

    #[test]
    fn indexes_from_either_end() {
        let l = V::List(vec![V::Int(1), V::Int(2), V::Int(3)]);
        assert_eq!(index(l.clone(), &V::Int(0), "t"), Ok(V::Int(1)));
        assert_eq!(index(l.clone(), &V::Int(-1), "t"), Ok(V::Int(3)));
        assert_eq!(index(l.clone(), &V::Int(-3), "t"), Ok(V::Int(1)));
        let e = index(l.clone(), &V::Int(3), "t").unwrap_err();
        assert!(e.contains("out of range: the list has 3 items"), "{e}");
        assert!(index(l.clone(), &V::Int(-4), "t").is_err());
        assert!(index(l, &V::Int(i64::MIN), "t").is_err());
        assert!(index(V::Str("abc".into()), &V::Int(0), "t").is_err());
    }

    #[test]
    fn functions() {
        let l = V::List(vec![V::Str("b".into()), V::Str("a".into())]);
        assert_eq!(call(Func::Length, vec![l.clone()], "t"), Ok(V::Int(2)));
        assert_eq!(
            call(Func::Sort, vec![l.clone()], "t"),
            Ok(V::List(vec![V::Str("a".into()), V::Str("b".into())]))
        );
        assert_eq!(
            call(Func::Join, vec![l, V::Str(",".into())], "t"),
            Ok(V::Str("b,a".into()))
        );
        let pods = V::from_json(&serde_json::json!([
            {"name": "api", "state": {"reason": "OOMKilled"}},
            {"name": "proxy", "state": {}},
            {"name": "log", "state": {"reason": "Error"}}
        ]));
        let oom = call(
            Func::Where,
            vec![
                pods.clone(),
                V::Str("state.reason".into()),
                V::Str("OOMKilled".into()),
            ],
            "t",
        );
        assert_eq!(call(Func::Length, vec![oom.unwrap()], "t"), Ok(V::Int(1)));
        assert_eq!(
            call(Func::Map, vec![pods.clone(), V::Str("name".into())], "t"),
            Ok(V::List(vec![
                V::Str("api".into()),
                V::Str("proxy".into()),
                V::Str("log".into())
            ]))
        );
        let e = call(Func::Map, vec![pods, V::Str("state.reason".into())], "t").unwrap_err();
        assert!(e.contains("has no field `reason`"), "{e}");
        let mixed = V::List(vec![V::Str("b".into()), V::Int(1)]);
        assert!(call(Func::Sort, vec![mixed], "t").is_err());
        assert!(call(Func::Length, vec![V::Int(1)], "t").is_err());
    }
}
