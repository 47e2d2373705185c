//! Context-aware escaping: where a value lands in a text decides how it is
//! written so that it stays exactly one literal value there.
//!
//! A text is seen as a sequence of [`Piece`]s: literal text written by the
//! runbook's author, and values (the output of a `{{...}}` placeholder).
//! Each text kind ([`Escape`]) has a small lexer of its own language that
//! walks the literal text and gives every value a [`Slot`]: where it is
//! (unquoted in a shell command, inside a PromQL string, in a URL's path...)
//! or a [`Refusal`] (inside a shell comment, after a backslash...).
//!
//! The same lexers serve twice, which is what keeps `check`, dry runs,
//! drills and real runs in agreement:
//!
//! * the compiler runs them on each text with its placeholders as values of
//!   unknown content, and reports every refused position
//!   (`runbook::unsafe_placeholder`), and every value that the position
//!   needs to be a number but whose type is not;
//! * the renderer runs them on the text as expanded by handlebars (blocks
//!   applied, each value marked), and writes each value for its slot, or
//!   fails before anything is sent. It does not trust a record made at
//!   compile time: `{{#if}}` and `{{#each}}` decide which literal text
//!   surrounds a value only when they are rendered.

mod json;
mod promql;
mod shell;
mod url;

use crate::plan::Escape;

/// The helpers templates may call (documented in `docs/language.md`): the
/// renderer registers exactly these, and the compiler refuses a value
/// named like one. handlebars' other built-ins (`lookup`, `log`, `raw`) are
/// unregistered: with them, an input named `log` rendered as nothing.
pub const HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or", "not",
    "len",
    // The functions of conditions (`plan::Func`), registered by the renderer.
    "length", "sort", "join", "where", "map",
];

pub use shell::ShellQuote;

/// A part of a text: literal text, or a value put there by a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Value(&'a str),
}

/// Where a value sits, which decides how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Inserted as it is (messages).
    Plain,
    /// In a shell command, in the given quoting.
    Shell(ShellQuote),
    /// At the very start of a URL: an `http(s)://host` base, validated.
    UrlBase,
    /// In a URL's host (letters, digits, `-`, `.`, `_`).
    UrlHost,
    /// In a URL's port (digits).
    UrlPort,
    /// In a URL's path, query or fragment: percent-encoded.
    UrlPath,
    UrlQuery,
    UrlFragment,
    /// Inside a JSON string: escaped for it.
    JsonString,
    /// Outside JSON strings: a JSON number, `true`, `false` or `null`.
    JsonScalar,
    /// Inside a PromQL string quoted with `quote`; `regex` after `=~`/`!~`.
    PromqlString {
        quote: char,
        regex: bool,
    },
    /// Elsewhere in a PromQL query: a number.
    PromqlNumber,
    /// In an HTTP header value: no control characters.
    Header,
}

impl Slot {
    /// Whether the value must be a number (or a bool, in JSON) here: the
    /// compiler refuses placeholders of other types in such slots.
    pub fn wants_number(self) -> bool {
        matches!(self, Slot::JsonScalar | Slot::PromqlNumber)
    }
}

/// A position where no quoting can keep a value literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Which value (counted from 0 among the values of the text).
    pub value: usize,
    /// What the position is, as in "a placeholder {where}".
    pub place: &'static str,
    /// Why a value cannot go there, and how to write it instead.
    pub help: &'static str,
}

impl Refusal {
    /// The refusal of value `value` for `(place, help)`.
    fn at(value: usize, (place, help): (&'static str, &'static str)) -> Refusal {
        Refusal { value, place, help }
    }
}

/// Texts and values alternating, starting with `parts[0]` (for tests).
#[cfg(test)]
fn interleave<'a>(parts: &[&'a str], values: &[&'a str]) -> Vec<Piece<'a>> {
    let mut pieces = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        pieces.push(Piece::Text(p));
        if let Some(v) = values.get(i) {
            pieces.push(Piece::Value(v));
        }
    }
    pieces
}

/// The slot of every value of `pieces`, in order, or why it has none.
pub fn slots(kind: Escape, pieces: &[Piece]) -> Vec<Result<Slot, Refusal>> {
    match kind {
        Escape::Plain => values(pieces).map(|_| Ok(Slot::Plain)).collect(),
        Escape::Header => values(pieces).map(|_| Ok(Slot::Header)).collect(),
        Escape::Shell => shell::slots(pieces),
        Escape::Url => url::slots(pieces),
        Escape::Json => json::slots(pieces),
        Escape::Promql => promql::slots(pieces),
    }
}

fn values<'p, 'a>(pieces: &'p [Piece<'a>]) -> impl Iterator<Item = &'a str> + 'p {
    pieces.iter().filter_map(|p| match p {
        Piece::Value(v) => Some(*v),
        Piece::Text(_) => None,
    })
}

/// Writes `pieces` as one text of kind `kind`: each value escaped for its
/// slot, then the whole text validated where its language allows it (a
/// JSON body must parse, a URL must be an http(s) URL without dot segments
/// made by values). An error says which value and why, in words that hold
/// no value (values may be secrets).
pub fn assemble(kind: Escape, pieces: &[Piece]) -> Result<String, String> {
    build(kind, pieces, true)
}

/// [`assemble`] for showing a text: a value that cannot be written where
/// it is (a stand-in such as `<live.count>` where a number goes) is shown
/// as it is, and the whole text is not validated. A refused position is
/// still an error.
pub fn assemble_leniently(kind: Escape, pieces: &[Piece]) -> Result<String, String> {
    build(kind, pieces, false)
}

fn build(kind: Escape, pieces: &[Piece], strict: bool) -> Result<String, String> {
    let mut slots = slots(kind, pieces).into_iter();
    let mut out = String::new();
    // Each value's slot and where it was written.
    let mut written = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Value(v) => {
                let slot = match slots.next() {
                    Some(Ok(slot)) => slot,
                    Some(Err(r)) => {
                        return Err(format!("a value cannot be placed {}: {}", r.place, r.help))
                    }
                    None => return Err("a value has no place in the text".into()),
                };
                let start = out.len();
                match write(slot, v) {
                    Ok(w) => out.push_str(&w),
                    Err(e) if strict => return Err(e),
                    Err(_) => out.push_str(v),
                }
                written.push((slot, start..out.len()));
            }
        }
    }
    if !strict {
        return Ok(out);
    }
    match kind {
        Escape::Json => json::validate(&out)?,
        Escape::Url => url::validate(&out, &written)?,
        _ => {}
    }
    Ok(out)
}

/// One value written for its slot, or why it cannot be.
pub fn write(slot: Slot, v: &str) -> Result<String, String> {
    match slot {
        Slot::Plain => Ok(v.to_owned()),
        Slot::Shell(q) => shell::write(q, v),
        Slot::UrlBase => url::write_base(v),
        Slot::UrlHost => url::write_host(v),
        Slot::UrlPort => url::write_port(v),
        Slot::UrlPath | Slot::UrlQuery | Slot::UrlFragment => Ok(url::percent_encode(v)),
        Slot::JsonString => Ok(json::escape_string(v)),
        Slot::JsonScalar => json::write_scalar(v),
        Slot::PromqlString { quote, regex } => Ok(promql::escape_string(v, quote, regex)),
        Slot::PromqlNumber => promql::write_number(v),
        Slot::Header => write_header(v),
    }
}

/// What an HTTP header value can hold: visible ASCII, spaces and tabs. A
/// CR or LF would start another header; bytes beyond ASCII are refused by
/// many servers (the connection is closed), so they are refused here, the
/// same in every mode, rather than fail at the server.
fn write_header(v: &str) -> Result<String, String> {
    if v.chars().any(|c| c.is_ascii_control() && c != '\t') {
        return Err("a header value cannot hold control characters (a newline, CR, NUL...)".into());
    }
    if !v.is_ascii() {
        return Err(
            "a header value must be ASCII; percent-encode it, or send it in the body".into(),
        );
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_header_take_every_value_in_place() {
        let p = [Piece::Text("a "), Piece::Value("x\ny"), Piece::Text(" b")];
        assert_eq!(assemble(Escape::Plain, &p).unwrap(), "a x\ny b");
        assert!(assemble(Escape::Header, &p).is_err());
        let p = [Piece::Text("Bearer "), Piece::Value("tok\tx")];
        assert_eq!(assemble(Escape::Header, &p).unwrap(), "Bearer tok\tx");
        let p = [Piece::Text("Bearer "), Piece::Value("tök")];
        assert!(assemble(Escape::Header, &p).is_err());
    }
}
