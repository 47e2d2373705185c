//! Reading a scenario file; a YAML or shape error becomes a diagnostic at
//! its line.

use super::locate::{key_in, unclosed_at, word_between, yaml_path_at};
use super::model::{LoadedScenario, Scenario, ANSWERS};
use crate::diagnostics::Code;
use crate::diagnostics::{did_you_mean, Diag};
use crate::span::Span;
use std::path::Path;
use yaml_serde::Location;

/// Reads and parses a scenario; a YAML or shape error comes back as a
/// diagnostic at its line.
pub fn load(path: &Path) -> Result<LoadedScenario, (String, Vec<Diag>)> {
    let text = crate::fs_read::read_to_string(path, crate::fs_read::SCENARIO).map_err(|e| {
        (
            String::new(),
            vec![Diag::error(
                Code::DrillUnreadable,
                format!("cannot read {}: {e}", path.display()),
            )],
        )
    })?;
    parse(path, text)
}

pub fn parse(path: &Path, text: String) -> Result<LoadedScenario, (String, Vec<Diag>)> {
    if let Err(e) = crate::yaml_depth::check(&text) {
        let d = Diag::error(Code::DrillInvalidScenario, e.message())
            .label(Span::new(e.offset, e.offset + 1), "too deep")
            .help(crate::yaml_depth::TooDeep::HELP);
        return Err((text, vec![d]));
    }
    match yaml_serde::from_str::<Scenario>(&text) {
        Ok(scenario) => Ok(LoadedScenario {
            path: path.to_path_buf(),
            text,
            scenario,
        }),
        Err(e) => {
            let d = yaml_diag(&text, &e);
            Err((text, vec![d]))
        }
    }
}

/// The rest of the line from `start`.
fn line_span(text: &str, start: usize) -> Span {
    let start = start.min(text.len());
    let end = text[start..]
        .find('\n')
        .map(|i| start + i)
        .unwrap_or(text.len());
    Span::new(start, end.max(start))
}

/// The message of a yaml_serde error, without the position it appends
/// (` at line L column C`, built here from `location`) and what follows
/// (libyaml's `, while parsing ...`, whose position the API does not give:
/// [`unclosed_at`] finds the construct in the text instead).
fn message_of<'e>(raw: &'e str, location: Option<&Location>) -> &'e str {
    let at = location.map(|l| format!(" at line {} column {}", l.line(), l.column()));
    match at.and_then(|at| raw.rfind(&at)) {
        Some(end) => &raw[..end],
        None => raw,
    }
}

/// The first `answer:` or `default:` in the mapping at `from` whose value
/// is not one word (a list, a mapping, a number): the value, as written.
fn misshapen_answer(text: &str, from: usize) -> Option<Span> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let line_start = text[..from.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let mut at = line_start;
    let mut lines = text[line_start..].split_inclusive('\n');
    let first = lines.next()?;
    let base = indent(first);
    at += first.len();
    for line in lines {
        let start = at;
        at += line.len();
        if line.trim().is_empty() {
            continue;
        }
        if indent(line) <= base {
            return None;
        }
        let body = line.trim_start().trim_start_matches("- ");
        let Some(value) = body
            .strip_prefix("answer:")
            .or_else(|| body.strip_prefix("default:"))
        else {
            continue;
        };
        let value = value.trim_end();
        let word = value.trim();
        if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
            continue;
        }
        let end = start + line.trim_end().len();
        let begin = end - word.len();
        return Some(if word.is_empty() {
            Span::new(start + indent(line), end)
        } else {
            Span::new(begin, end)
        });
    }
    None
}

/// A yaml_serde error as a diagnostic, its label placed by
/// `Error::location()`. Errors raised by our own types (a duration, a
/// check's answer, a field of check rules) are located by serde at the
/// enclosing mapping, so the offending value or key is looked up from
/// there. A syntax error inside a `[`, `{` or quoted string that is never
/// closed also points at where that was opened.
fn yaml_diag(text: &str, e: &yaml_serde::Error) -> Diag {
    let raw = e.to_string();
    let location = e.location();
    let index = location.as_ref().map(|l| l.index().min(text.len()));
    let mut msg = message_of(&raw, location.as_ref()).to_string();
    // Say "an integer", not Rust's name for it.
    for ty in ["i32", "u32", "u16", "u64", "i64"] {
        msg = msg.replace(&format!("expected {ty}"), "expected an integer");
    }
    let from = index.unwrap_or(0);
    let backticked = |after: &str| -> Option<String> {
        let i = msg.find(after)? + after.len();
        let rest = msg[i..].strip_prefix('`')?;
        Some(rest[..rest.find('`')?].to_string())
    };
    let mut label = "here".to_string();
    let mut span = index.map(|i| line_span(text, i)).unwrap_or_default();
    if let Some(v) = backticked("invalid duration ").or_else(|| backticked("unknown answer ")) {
        if let Some(s) = word_between(text, &v, from, text.len()) {
            span = s;
            label = if msg.contains("invalid duration") {
                "not a duration".into()
            } else {
                "not a check answer".into()
            };
        }
    } else if msg.contains("an answer is one word") {
        if let Some(s) = misshapen_answer(text, from) {
            span = s;
            label = "not one answer".into();
        }
    } else if let Some(k) = backticked("unknown field ") {
        let s = key_in(&text[from..], &[], &k);
        if !s.is_empty() {
            span = Span::new(from + s.start, from + s.end);
        }
        label = "unknown key".into();
    }
    // "unknown field `x`, expected one of `a`, `b`": suggest the closest.
    let wrong = backticked("unknown field ")
        .or_else(|| backticked("unknown variant "))
        .or_else(|| backticked("unknown answer "));
    let suggestion = wrong.and_then(|w| {
        let known: Vec<String> = match msg.split_once("expected") {
            Some((_, list)) => list
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect(),
            None => ANSWERS.iter().map(|a| a.to_string()).collect(),
        };
        did_you_mean(&w, known.iter().map(String::as_str))
    });
    if let Some((_, want)) = msg.split_once("invalid type: ") {
        if let Some((_, ty)) = want.split_once(", expected ") {
            label = format!("expected {ty}");
        }
    }
    // serde names the enclosing mapping for errors raised by our own types:
    // name the key the value is under, as it is written.
    if let Some((path, rest)) = msg.split_once(": ") {
        let is_path = !path.is_empty()
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c));
        let written = yaml_path_at(text, span.start);
        if is_path && written.len() > path.len() && written.starts_with(path) {
            let boundary = written[path.len()..].starts_with(['.', '[']);
            if boundary {
                msg = format!("{written}: {rest}");
            }
        }
    }
    let mut d = Diag::error(Code::DrillInvalidScenario, msg).label(span, label);
    let unclosed = index.and_then(|i| unclosed_at(text, i));
    if let Some((at, opener)) = unclosed {
        let what = match opener {
            '[' => "the `[` list",
            '{' => "the `{` mapping",
            _ => "the quoted string",
        };
        d = d.label(
            Span::new(at, at + opener.len_utf8()),
            format!("{what} that starts here is never closed"),
        );
    }
    let docs = "see docs/drills.md for the scenario format";
    let hint = match (suggestion, unclosed) {
        (Some(s), _) => Some(s),
        (None, Some((_, '['))) => {
            Some("close the `[` list with `]`, or write one `- item` per line".to_string())
        }
        (None, Some((_, '{'))) => {
            Some("close the `{` mapping with `}`, or write one `key: value` per line".to_string())
        }
        (None, Some((_, quote))) => Some(format!("close the string with `{quote}`")),
        (None, None) => None,
    };
    d.help(match hint {
        Some(s) => format!("{s} ({docs})"),
        None => docs.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_errors_point_at_the_value_with_a_suggestion() {
        for (text, at, help) in [
            (
                "runbook: x\nchecks:\n  a: passs\n",
                "passs",
                "did you mean `pass`?",
            ),
            (
                "runbook: x\nexpect:\n  outcome: succeeded\n  max_duration: 5 minutes\n",
                "5 minutes",
                "",
            ),
            (
                "runbook: x\nchecks:\n  a:\n    defualt: fail\n",
                "defualt",
                "did you mean `default`?",
            ),
        ] {
            let Err((_, d)) = parse(Path::new("t.drill.yaml"), text.to_string()) else {
                panic!("should fail: {text}")
            };
            let span = d[0].primary_span().unwrap_or_default();
            assert!(
                text[span.start..].starts_with(at),
                "{text}: {:?}",
                &text[span.start..]
            );
            assert!(
                d[0].help.as_deref().unwrap_or("").contains(help),
                "{:?}",
                d[0].help
            );
        }
    }

    #[test]
    fn yaml_errors_point_at_their_line() {
        let text = "runbook: x.runbook\nexpect:\n  outcome: succeeded\n  bogus: 1\n".to_string();
        let Err((_, d)) = parse(Path::new("t.drill.yaml"), text.clone()) else {
            panic!("should fail")
        };
        let span = d[0].primary_span().unwrap_or_default();
        assert!(
            text[span.start..].starts_with("bogus"),
            "{:?}",
            &text[span.start..]
        );
        assert!(d[0].message.contains("bogus"));
    }

    #[test]
    fn an_unclosed_string_is_pointed_at_where_it_opens() {
        let text = "runbook: x\nname: \"drill\nexpect:\n  outcome: succeeded\n".to_string();
        let Err((_, d)) = parse(Path::new("t.drill.yaml"), text.clone()) else {
            panic!("should fail")
        };
        assert!(!d[0].message.contains(" at line "), "{}", d[0].message);
        let opened = d[0].labels.iter().find(|(_, l)| l.contains("never closed"));
        let (span, _) = opened.expect("a label where the string opens");
        assert!(text[span.start..].starts_with("\"drill"));
        assert!(d[0]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("close the string"));
    }

    #[test]
    fn an_answer_of_the_wrong_shape_is_named_and_pointed_at() {
        for (value, shape) in [
            ("[pass, fail]", "a list"),
            ("{pass: 1}", "a mapping"),
            ("3", "`3`"),
        ] {
            let text = format!(
                "runbook: x\nchecks:\n  ok:\n    default: fail\n    rules:\n      - after: 1m\n        answer: {value}\n"
            );
            let Err((_, d)) = parse(Path::new("t.drill.yaml"), text.clone()) else {
                panic!("should fail: {text}")
            };
            assert!(!d[0].message.contains("Tagged"), "{}", d[0].message);
            assert!(
                d[0].message.contains(&format!("but this one is {shape}")),
                "{}",
                d[0].message
            );
            let span = d[0].primary_span().unwrap_or_default();
            assert_eq!(&text[span.start..span.end], value);
        }
    }
}
