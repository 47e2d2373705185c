//! Source text -> [`crate::ast::Runbook`]: the pest grammar, a guard against
//! pathological nesting, and syntax errors turned into diagnostics.

mod build;
mod depth;
mod errors;
mod literals;
mod rule_names;
mod strings;
#[cfg(test)]
mod tests;

use crate::ast::Runbook;
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use crate::span::Span;
use pest::Parser;

pub use build::parse_duration;
pub use rule_names::human_name;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/runbook.pest"]
pub struct RunbookParser;

/// Deeper nesting than this is refused before pest sees the text, so that
/// a file of 10,000 `(` is an error, not a stack overflow.
pub const MAX_NESTING: usize = 64;

/// Parses a runbook. Returns the tree and any errors found while building it
/// (invalid escapes, durations, numbers); a syntax error returns no tree.
pub fn parse(text: &str) -> Result<(Runbook, Vec<Diag>), Vec<Diag>> {
    parse_bound(text, None)
}

/// [`parse`] with the values of inputs that durations and counts name
/// (`wait soak`): the AST holds them there (see [`crate::ast::InputSlot`]).
pub fn parse_bound(
    text: &str,
    slot_values: Option<&crate::ast::SlotValues>,
) -> Result<(Runbook, Vec<Diag>), Vec<Diag>> {
    if text.trim().is_empty() {
        return Err(vec![Diag::error(Code::EmptyFile, "the file is empty")
            .label(Span::new(0, text.len()), "nothing here")
            .help("a runbook file holds one `runbook NAME { ... }` block")]);
    }
    if let Some(d) = depth::check(text, MAX_NESTING) {
        return Err(vec![d]);
    }
    let mut pairs =
        RunbookParser::parse(Rule::file, text).map_err(|e| vec![syntax_error(text, e)])?;
    let file = pairs
        .next()
        .ok_or_else(|| vec![Diag::error(Code::Syntax, "empty parse")])?;
    build::file(file, slot_values)
}

fn syntax_error(text: &str, e: pest::error::Error<Rule>) -> Diag {
    use pest::error::{ErrorVariant, InputLocation};
    let (start, end) = match e.location {
        InputLocation::Pos(p) => (p, p),
        InputLocation::Span((s, e)) => (s, e),
    };
    let span = offending_token(text, start, end);
    let found = text.get(span.start..span.end).unwrap_or("");
    let found_desc = if start >= text.len() {
        "the end of the file".to_string()
    } else {
        format!("`{found}`")
    };
    match e.variant {
        ErrorVariant::ParsingError {
            mut positives,
            negatives,
        } => {
            // A comment may follow any token, so pest lists one wherever it
            // stopped: true, and no help to the reader.
            positives.retain(|r| *r != Rule::COMMENT);
            if let Some(d) = errors::specific(text, span, &positives) {
                return d;
            }
            let list = rule_names::describe_expected(&positives);
            let mut d = Diag::error(Code::Syntax, format!("unexpected {found_desc}"))
                .label(span, format!("expected {list}"));
            if !negatives.is_empty() {
                let unexpected: Vec<&str> = negatives.iter().map(|r| human_name(*r)).collect();
                d = d.label(
                    span,
                    format!("did not expect {}", rule_names::join_or(&unexpected)),
                );
            }
            if let Some((open, help)) = errors::unclosed_block(text, span, found, &positives) {
                let message = if start >= text.len() {
                    "missing `}` at the end of the file".to_string()
                } else {
                    format!("missing `}}` before `{found}`")
                };
                let mut d = d.label(open, "this block is never closed").help(help);
                d.code = Code::UnclosedBlock.as_str();
                d.message = message;
                return d;
            }
            if let Some(h) = rule_names::hint(&positives, found, text, span) {
                d = d.help(h);
            }
            d
        }
        // pest's own guards: the native stack or its call budget ran out.
        ErrorVariant::CustomError { message } if message.contains("limit reached") => {
            Diag::error(Code::TooDeep, "nested too deeply to read")
                .label(span, "the parser gave up here")
                .help("split the condition, list or type into simpler parts")
        }
        ErrorVariant::CustomError { message } => {
            Diag::error(Code::Syntax, message).label(span, "here")
        }
    }
}

/// The span to underline for an error at `start`: pest's span when it has
/// one, else the word (or single character) found there.
fn offending_token(text: &str, start: usize, end: usize) -> Span {
    if end > start || start >= text.len() {
        return Span::new(start, end.max(start));
    }
    let rest = &text[start..];
    let word = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let len = if word > 0 {
        word
    } else {
        rest.chars().next().map(char::len_utf8).unwrap_or(0)
    };
    Span::new(start, start + len)
}
