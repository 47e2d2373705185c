//! Syntax errors that deserve a message of their own rather than pest's
//! "expected ...": slips an on-call engineer makes under pressure.

use super::literals::literal_end;
use super::Rule;
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use crate::span::{line_col, Span};

/// Keywords that start a runbook item: seeing one where a step (or check,
/// or block) clause was expected usually means a `}` is missing above.
const ITEM_KEYWORDS: &[&str] = &[
    "step", "check", "input", "secret", "channel", "template", "parallel", "title", "owner",
    "tags", "lock", "after", "runbook",
];

const COMPARISONS: &[Rule] = &[
    Rule::op_eq,
    Rule::op_ne,
    Rule::op_lt,
    Rule::op_le,
    Rule::op_gt,
    Rule::op_ge,
];

/// A diagnostic for a well-known slip at `span`, or `None`.
pub(super) fn specific(text: &str, span: Span, expected: &[Rule]) -> Option<Diag> {
    let rest = text.get(span.start..).unwrap_or("");
    let wants_operator = expected.iter().any(|r| COMPARISONS.contains(r));

    // A string whose closing quote is missing: pest stops at its opening
    // quote. Plain strings end on their line.
    if rest.starts_with('"') && !rest.starts_with("\"\"\"") {
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let line = &rest[..line_end];
        if !closes(line) {
            let line = line.trim_end_matches('\r');
            return Some(
                Diag::error(Code::UnterminatedString, "unterminated string")
                    .label(
                        Span::new(span.start, span.start + line.len()),
                        "this string has no closing `\"` on its line",
                    )
                    .help("close the string with `\"` before the end of the line; for text over several lines use `\"\"\"...\"\"\"`"),
            );
        }
    }
    if rest.starts_with("\"\"\"") && !rest[3..].contains("\"\"\"") {
        return Some(
            Diag::error(Code::UnterminatedString, "unterminated `\"\"\"` string")
                .label(
                    Span::new(span.start, span.start + 3),
                    "opened here and never closed",
                )
                .help("close the text with `\"\"\"`"),
        );
    }

    // Operators from other languages.
    let replacements: &[(&str, &str, &str)] = &[
        ("&&", "and", "`&&` is written `and`"),
        ("||", "or", "`||` is written `or`"),
        ("=>", ">=", "`=>` is written `>=`"),
        ("=<", "<=", "`=<` is written `<=`"),
        ("<>", "!=", "`<>` is written `!=`"),
    ];
    for (bad, good, msg) in replacements {
        if rest.starts_with(bad) && (wants_operator || expected.contains(&Rule::op_and)) {
            return Some(
                Diag::error(Code::UnknownOperator, format!("unknown operator `{bad}`"))
                    .label(Span::new(span.start, span.start + bad.len()), *msg)
                    .help(format!(
                        "write `{good}`; conditions use and, or, not, ==, !=, <, <=, >, >=, in, contains, matches"
                    )),
            );
        }
    }
    if wants_operator && rest.starts_with('=') && !rest.starts_with("==") {
        return Some(
            Diag::error(Code::UnknownOperator, "`=` is not a comparison")
                .label(Span::new(span.start, span.start + 1), "a single `=`")
                .help("compare with `==` (equal) or `!=` (not equal)"),
        );
    }
    if rest.starts_with('!')
        && !rest.starts_with("!=")
        && (wants_operator || expected.contains(&Rule::op_not))
    {
        return Some(
            Diag::error(Code::UnknownOperator, "unknown operator `!`")
                .label(
                    Span::new(span.start, span.start + 1),
                    "`!` is written `not`",
                )
                .help("write `not CONDITION`, e.g. `not errors_low`"),
        );
    }

    // `5 minutes`, `30 s`: a duration written with a space or a long unit.
    if expected.contains(&Rule::duration)
        || expected.contains(&Rule::duration_lit)
        || after_number(text, span.start)
    {
        if let Some(d) = spaced_duration(text, span) {
            return Some(d);
        }
    }
    None
}

/// Whether a plain string starting at the beginning of `line` is closed.
fn closes(line: &str) -> bool {
    let b = line.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return true,
            _ => i += 1,
        }
    }
    false
}

fn after_number(text: &str, at: usize) -> bool {
    text.get(..at)
        .map(|b| b.trim_end_matches([' ', '\t']))
        .is_some_and(|b| b.ends_with(|c: char| c.is_ascii_digit()))
}

/// `5 minutes` -> "write `5m`".
fn spaced_duration(text: &str, span: Span) -> Option<Diag> {
    let word = text.get(span.start..span.end)?;
    let unit = match word.to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => "ms",
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "m" | "min" | "mins" | "minute" | "minutes" => "m",
        "h" | "hr" | "hrs" | "hour" | "hours" => "h",
        "d" | "day" | "days" => "d",
        _ => return None,
    };
    let before = text.get(..span.start)?.trim_end_matches([' ', '\t']);
    let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let number = &before[before.len() - digits..];
    let start = before.len() - digits;
    Some(
        Diag::error(
            Code::InvalidDuration,
            format!("invalid duration `{number} {word}`"),
        )
        .label(Span::new(start, span.end), format!("write `{number}{unit}`"))
        .help("a duration is a whole number and a unit with no space between: `800ms`, `30s`, `5m`, `2h`, `1d`"),
    )
}

/// When the error is at a runbook item keyword inside a block (or at the end
/// of the file), the innermost unclosed `{` before it and a help text.
pub(super) fn unclosed_block(
    text: &str,
    span: Span,
    found: &str,
    expected: &[Rule],
) -> Option<(Span, String)> {
    let at_end = span.start >= text.len();
    if !at_end && !ITEM_KEYWORDS.contains(&found) {
        return None;
    }
    if !at_end && expected.contains(&Rule::kw_step) && !expected.contains(&Rule::kw_when) {
        // Already at the top level of the runbook: not a missing brace.
        return None;
    }
    let open = open_braces(text.get(..span.start)?);
    // At the end of the file every open brace is unclosed; before a
    // keyword, the runbook's own brace is expected to be open.
    let needed = if at_end { 1 } else { 2 };
    if open.len() < needed {
        return None;
    }
    let brace = *open.last()?;
    let (line, _) = line_col(text, brace);
    let help = if at_end {
        format!("add `}}` at the end to close the block opened on line {line}")
    } else {
        format!("add `}}` before `{found}` to close the block opened on line {line}")
    };
    Some((Span::new(brace, brace + 1), help))
}

/// Offsets of the `{` still open at the end of `text` (strings and comments
/// skipped).
fn open_braces(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut stack = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if let Some(end) = literal_end(b, i) {
            i = end;
            continue;
        }
        match b[i] {
            b'{' => stack.push(i),
            b'}' => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    stack
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_braces_skip_strings_and_comments() {
        let t = "runbook a {\n step b { # {\n run \"{{x}}\"\n";
        assert_eq!(open_braces(t).len(), 2);
    }

    #[test]
    fn closes_sees_escaped_quotes() {
        assert!(!closes(r#""a \" b"#));
        assert!(closes(r#""a \" b""#));
    }
}
