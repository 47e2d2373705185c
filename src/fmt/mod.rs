//! `runbook fmt`: one canonical layout for a runbook, printed from the same
//! pest parse tree the compiler reads (comments included).
//!
//! The printer never rewrites a token: keywords, names, numbers and string
//! literals (`"""` text included) are copied from the source as written;
//! only the whitespace between them, and trailing commas in lists, change.
//! [`format_checked`] proves that on every call by compiling both texts and
//! comparing the graphs ([`same_meaning`]).

mod layout;
#[cfg(test)]
mod tests;

use crate::compile;
use crate::diagnostics::Report;
use crate::source::Source;
use crate::syntax::{Rule, RunbookParser};
use pest::Parser;

/// Why a file was not formatted.
#[derive(Debug)]
pub enum Error {
    /// The file does not compile: its diagnostics (it is left as it is).
    Invalid(Box<Report>),
    /// The formatted text would not compile to the same graph: a bug in the
    /// formatter, reported instead of writing anything.
    ChangedMeaning(String),
}

/// The canonical layout of a source, which must parse (a syntax error is
/// returned as the compiler's report: the diagnostics `runbook check`
/// prints). Prefer [`format_checked`], which also proves the meaning
/// unchanged.
pub fn format_text(source: &Source) -> Result<String, Box<Report>> {
    let text = source.text.as_str();
    // The compiler's parse first: it refuses pathological nesting before
    // pest (or this printer's recursion) could overflow the stack.
    if crate::syntax::parse(text).is_err() {
        return Err(Box::new(compile::check(source)));
    }
    match RunbookParser::parse(Rule::file, text)
        .ok()
        .and_then(|mut pairs| pairs.next())
    {
        Some(file) => Ok(layout::print(text, file)),
        None => Err(Box::new(compile::check(source))),
    }
}

/// Formats a source that must compile, and checks that the result compiles
/// to the same graph. Returns the formatted text (equal to the input when it
/// was already formatted).
pub fn format_checked(source: &Source) -> Result<String, Error> {
    let before = compile::compile(source).map_err(|r| Error::Invalid(Box::new(r)))?;
    let text = format_text(source).map_err(Error::Invalid)?;
    if text == source.text {
        return Ok(text);
    }
    let formatted = Source::new(source.name.clone(), text.clone());
    let after = compile::compile(&formatted).map_err(|r| {
        Error::ChangedMeaning(format!(
            "the formatted text does not compile:\n{}",
            r.render(false)
        ))
    })?;
    if !same_meaning(&before.graph, &after.graph) {
        return Err(Error::ChangedMeaning(
            "the formatted text compiles to a different graph".to_string(),
        ));
    }
    Ok(text)
}

/// Whether two graphs mean the same: equal as JSON once what only says
/// where things were written (spans, the source's hash) is left out.
pub fn same_meaning(a: &crate::plan::Graph, b: &crate::plan::Graph) -> bool {
    meaning(a) == meaning(b)
}

/// A graph as JSON without spans and the source hash, and with each
/// condition's source text (`Expr::text`, quoted in the decision log as
/// written) reduced to its tokens: the formatter changes the whitespace
/// and comments between them, and nothing else.
pub fn meaning(graph: &crate::plan::Graph) -> serde_json::Value {
    let mut value = serde_json::to_value(graph).unwrap_or(serde_json::Value::Null);
    strip_positions(&mut value);
    value
}

fn strip_positions(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            map.remove("span");
            map.remove("source_sha256");
            if map.contains_key("expr") {
                if let Some(Value::String(text)) = map.get_mut("text") {
                    *text = tokens_only(text);
                }
            }
            map.values_mut().for_each(strip_positions);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_positions),
        _ => {}
    }
}

/// `text` without comments and whitespace outside string literals.
fn tokens_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped, mut in_comment) = (false, false, false);
    for c in text.chars() {
        if in_comment {
            in_comment = c != '\n';
            continue;
        }
        if in_string {
            out.push(c);
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
            continue;
        }
        match c {
            '#' => in_comment = true,
            '"' => {
                in_string = true;
                out.push(c);
            }
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// A unified diff from `before` to `after`, headed with `name`.
pub fn unified_diff(name: &str, before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(name, &format!("{name} (formatted)"))
        .to_string()
}
