//! Inputs (`--input k=v`, `--inputs FILE.yaml`) validated against the
//! runbook's [`InputSpec`]s, and secrets loaded from env / files.
//!
//! Errors never include a secret's value, only where it was looked for.

use crate::plan::{InputSpec, SecretSource, SecretSpec, Type, Value};
use indexmap::IndexMap;
use yaml_serde::Value as Y;

/// Splits `k=v`.
pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

fn one_of_ok(v: &str, options: &[String]) -> Result<(), String> {
    if options.iter().any(|o| o == v) {
        Ok(())
    } else {
        Err(format!(
            "{v:?} is not one of {}",
            options
                .iter()
                .map(|o| format!("{o:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Parses a command-line value as `ty`.
pub fn parse_str(s: &str, ty: &Type) -> Result<Value, String> {
    let t = s.trim();
    match ty {
        Type::String => Ok(Value::String(s.to_owned())),
        Type::Int => t
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| format!("{s:?} is not an integer")),
        Type::Float => match t.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(format!("{s:?} is not a number")),
        },
        Type::Bool => match t {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("{s:?} is not `true` or `false`")),
        },
        Type::Duration => humantime::parse_duration(t)
            .map(Value::Duration)
            .map_err(|e| format!("{s:?} is not a duration ({e}; e.g. `30s`, `5m`, `1h 30m`)")),
        Type::OneOf(options) => one_of_ok(s, options).map(|_| Value::String(s.to_owned())),
        Type::List(inner) => {
            if t.starts_with('[') {
                crate::yaml_depth::check(t)
                    .map_err(|e| format!("a list input is {}", e.message()))?;
                let y: Y =
                    yaml_serde::from_str(t).map_err(|e| format!("{s:?} is not a list: {e}"))?;
                from_yaml(&y, ty)
            } else if t.is_empty() {
                Ok(Value::List(vec![]))
            } else {
                t.split(',')
                    .map(|p| parse_str(p.trim(), inner))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::List)
            }
        }
        Type::Secret => Err("a secret cannot be given as an input".into()),
        Type::Time => {
            Err("a time cannot be given as an input (`now` and `run.started` are built in)".into())
        }
        Type::Json => serde_json::from_str(t)
            .map(Value::Json)
            .map_err(|e| format!("not JSON: {e}")),
    }
}

/// Converts a YAML value (from `--inputs FILE`) to `ty`.
pub fn from_yaml(y: &Y, ty: &Type) -> Result<Value, String> {
    match (ty, y) {
        (Type::List(inner), Y::Sequence(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| from_yaml(v, inner).map_err(|e| format!("item {i}: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List),
        (Type::List(_), _) => Err("expected a list".into()),
        (Type::Bool, Y::Bool(b)) => Ok(Value::Bool(*b)),
        (Type::Int, Y::Number(n)) => n
            .as_i64()
            .map(Value::Int)
            .ok_or_else(|| format!("{n} is not an integer")),
        (Type::Float, Y::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Value::Float)
            .ok_or_else(|| format!("{n} is not a number")),
        (Type::String | Type::OneOf(_), Y::Number(n)) => parse_str(&n.to_string(), ty),
        (Type::String | Type::OneOf(_), Y::Bool(b)) => parse_str(&b.to_string(), ty),
        (Type::Json, y) => serde_json::to_value(y)
            .map(Value::Json)
            .map_err(|e| e.to_string()),
        (_, Y::String(s)) => parse_str(s, ty),
        (ty, other) => Err(format!("expected {ty}, got {}", describe_yaml(other))),
    }
}

fn describe_yaml(y: &Y) -> &'static str {
    match y {
        Y::Null => "nothing (null)",
        Y::Bool(_) => "a bool",
        Y::Number(_) => "a number",
        Y::String(_) => "a string",
        Y::Sequence(_) => "a list",
        Y::Mapping(_) => "a mapping",
        Y::Tagged(_) => "a tagged value",
    }
}

/// Checks a default or given value against its type (lists of one_of...).
fn check_value(v: &Value, ty: &Type) -> Result<(), String> {
    match (v, ty) {
        (Value::String(s), Type::OneOf(o)) => one_of_ok(s, o),
        (Value::List(items), Type::List(inner)) => {
            items.iter().try_for_each(|i| check_value(i, inner))
        }
        _ => Ok(()),
    }
}

/// Resolves every input: command line first, then the inputs file, then
/// the default. Unknown names, missing required inputs and bad values are
/// all reported at once.
pub fn resolve(
    specs: &[InputSpec],
    cli: &[(String, String)],
    file: Option<&IndexMap<String, Y>>,
) -> Result<IndexMap<String, Value>, Vec<String>> {
    let mut errors = Vec::new();
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let unknown = |name: &str, from: &str, errors: &mut Vec<String>| {
        if !names.contains(&name) {
            let hint = crate::diagnostics::did_you_mean(name, names.iter().copied())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            let known = if names.is_empty() {
                "this runbook takes no inputs".to_owned()
            } else {
                format!("inputs: {}", names.join(", "))
            };
            errors.push(format!("unknown input `{name}` {from}{hint}; {known}"));
        }
    };
    for (k, _) in cli {
        unknown(k, "in --input", &mut errors);
    }
    if let Some(f) = file {
        for k in f.keys() {
            unknown(k, "in the inputs file", &mut errors);
        }
    }
    let mut out = IndexMap::new();
    for spec in specs {
        let given = cli.iter().rev().find(|(k, _)| *k == spec.name);
        let v = if let Some((_, v)) = given {
            parse_str(v, &spec.ty)
                .map_err(|e| format!("input `{}` (--input): expected {}: {e}", spec.name, spec.ty))
        } else if let Some(y) = file.and_then(|f| f.get(&spec.name)) {
            from_yaml(y, &spec.ty).map_err(|e| {
                format!(
                    "input `{}` (inputs file): expected {}: {e}",
                    spec.name, spec.ty
                )
            })
        } else if let Some(d) = &spec.default {
            Ok(d.clone())
        } else {
            Err(format!(
                "input `{}` ({}) is required: pass --input {}=VALUE",
                spec.name, spec.ty, spec.name
            ))
        };
        match v.and_then(|v| {
            check_value(&v, &spec.ty)
                .map(|_| v)
                .map_err(|e| format!("input `{}`: {e}", spec.name))
        }) {
            Ok(v) => {
                out.insert(spec.name.clone(), v);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Parses an inputs file (a YAML mapping of name to value).
pub fn parse_inputs_file(name: &str, text: &str) -> Result<IndexMap<String, Y>, String> {
    if text.trim().is_empty() {
        return Ok(IndexMap::new());
    }
    crate::yaml_depth::check(text).map_err(|e| format!("{name}: {}", e.message()))?;
    yaml_serde::from_str::<IndexMap<String, Y>>(text)
        .map_err(|e| format!("{name}: not a mapping of input names to values: {e}"))
}

/// Loads every secret. With `required` (a live run), a missing secret is an
/// error; otherwise (dry run) it is `None` and shown as `***` anyway.
pub fn load_secrets(
    specs: &[SecretSpec],
    required: bool,
) -> Result<IndexMap<String, Option<String>>, Vec<String>> {
    let mut out = IndexMap::new();
    let mut errors = Vec::new();
    for s in specs {
        let v = match &s.source {
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(v),
                Ok(_) => Err(format!(
                    "secret `{}`: environment variable {var} is empty",
                    s.name
                )),
                Err(_) => Err(format!(
                    "secret `{}`: environment variable {var} is not set",
                    s.name
                )),
            },
            SecretSource::File(path) => {
                match crate::fs_read::read_to_string(path.as_ref(), crate::fs_read::SECRET) {
                    Ok(v) => {
                        let v = v.trim_end_matches(['\n', '\r']).to_owned();
                        if v.is_empty() {
                            Err(format!("secret `{}`: file {path} is empty", s.name))
                        } else {
                            Ok(v)
                        }
                    }
                    // The io error says only what went wrong, not what was read.
                    Err(e) => Err(format!(
                        "secret `{}`: cannot read {path}: {}",
                        s.name,
                        crate::fs_read::refusal(&e)
                            .map_or_else(|| e.kind().to_string(), ToString::to_string)
                    )),
                }
            }
        };
        // A value too short to redact is refused, loaded or not required:
        // it would be shown wherever it appears.
        let short = crate::events::redact::MIN_REDACT_LEN;
        match v {
            Ok(v) if v.chars().count() < short => errors.push(format!(
                "secret `{}`: its value is {} character{} long; a secret must be at \
                 least {short} characters, or it cannot be masked in the logs: use a \
                 longer value",
                s.name,
                v.chars().count(),
                if v.chars().count() == 1 { "" } else { "s" },
            )),
            Ok(v) => {
                out.insert(s.name.clone(), Some(v));
            }
            Err(e) if required => errors.push(e),
            Err(_) => {
                out.insert(s.name.clone(), None);
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, ty: Type, default: Option<Value>) -> InputSpec {
        InputSpec {
            name: name.into(),
            ty,
            default,
        }
    }

    #[test]
    fn typed_inputs() {
        let specs = vec![
            spec("service", Type::String, Some(Value::String("api".into()))),
            spec("max_error", Type::Float, Some(Value::Float(0.02))),
            spec("regions", Type::List(Box::new(Type::String)), None),
            spec(
                "wait",
                Type::Duration,
                Some(Value::Duration(std::time::Duration::from_secs(1))),
            ),
            spec(
                "env",
                Type::OneOf(vec!["prod".into(), "staging".into()]),
                None,
            ),
        ];
        let cli = vec![
            ("regions".to_owned(), "eu-west-1, us-east-1".to_owned()),
            ("wait".to_owned(), "2m".to_owned()),
            ("env".to_owned(), "prod".to_owned()),
        ];
        let v = resolve(&specs, &cli, None).unwrap();
        assert_eq!(
            v["regions"],
            Value::List(vec![
                Value::String("eu-west-1".into()),
                Value::String("us-east-1".into())
            ])
        );
        assert_eq!(
            v["wait"],
            Value::Duration(std::time::Duration::from_secs(120))
        );
        assert_eq!(v["service"], Value::String("api".into()));
    }

    #[test]
    fn bad_inputs_all_reported() {
        let specs = vec![
            spec("max_error", Type::Float, None),
            spec("env", Type::OneOf(vec!["prod".into()]), None),
            spec("needed", Type::Int, None),
        ];
        let cli = vec![
            ("max_error".to_owned(), "lots".to_owned()),
            ("env".to_owned(), "dev".to_owned()),
            ("max_eror".to_owned(), "1".to_owned()),
        ];
        let e = resolve(&specs, &cli, None).unwrap_err();
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e.iter().any(|m| m.contains("did you mean `max_error`")));
        assert!(e.iter().any(|m| m.contains("is required")));
    }

    #[test]
    fn a_secret_too_short_to_redact_is_refused_even_when_not_required() {
        let dir = tempfile::tempdir().unwrap();
        let specs: Vec<SecretSpec> = [("one", "x"), ("two", "é\u{1f511}"), ("three", "abc")]
            .into_iter()
            .map(|(name, value)| {
                let path = dir.path().join(name);
                std::fs::write(&path, format!("{value}\n")).unwrap();
                SecretSpec {
                    name: name.into(),
                    source: SecretSource::File(path.display().to_string()),
                }
            })
            .collect();
        for required in [true, false] {
            let errors = load_secrets(&specs, required).unwrap_err();
            assert_eq!(errors.len(), 2, "{errors:?}");
            assert!(errors[0].starts_with("secret `one`: its value is 1 character long"));
            assert!(errors[1].starts_with("secret `two`: its value is 2 characters long"));
            assert!(errors.iter().all(|e| e.contains("at least 3 characters")));
        }
        assert_eq!(
            load_secrets(&specs[2..], true).unwrap()["three"].as_deref(),
            Some("abc")
        );
    }
}
