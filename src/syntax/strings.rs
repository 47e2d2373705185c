//! String literals: unescaping `"..."`, dedenting `"""..."""`, and keeping a
//! map from the resulting text back to source offsets.

use crate::ast::Str;
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use crate::span::Span;

/// `raw` is the literal as written (with its quotes), starting at `start`.
pub(super) fn string(raw: &str, start: usize, errors: &mut Vec<Diag>) -> Str {
    let span = Span::new(start, start + raw.len());
    if let Some(inner) = raw
        .strip_prefix("\"\"\"")
        .and_then(|r| r.strip_suffix("\"\"\""))
    {
        return dedent(inner, start + 3, span);
    }
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    unescape(inner, start + 1, span, errors)
}

fn unescape(inner: &str, base: usize, span: Span, errors: &mut Vec<Diag>) -> Str {
    if !inner.contains('\\') {
        // See `Str::offsets`: no map needed.
        return Str {
            value: inner.to_string(),
            span,
            offsets: Vec::new(),
        };
    }
    let mut value = String::with_capacity(inner.len());
    let mut offsets = vec![(0, base)];
    let mut chars = inner.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            value.push(c);
            continue;
        }
        let Some((j, e)) = chars.next() else {
            break;
        };
        let mut end = j + e.len_utf8();
        match e {
            '"' => value.push('"'),
            '\\' => value.push('\\'),
            'n' => value.push('\n'),
            't' => value.push('\t'),
            'r' => value.push('\r'),
            'u' => {
                let rest = &inner[end..];
                let parsed = rest
                    .strip_prefix('{')
                    .and_then(|r| r.find('}').map(|close| &r[..close]))
                    .and_then(|hex| {
                        u32::from_str_radix(hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .map(|ch| (ch, hex.len() + 2))
                    });
                match parsed {
                    Some((ch, used)) => {
                        value.push(ch);
                        end += used;
                        while chars.peek().is_some_and(|(k, _)| *k < end) {
                            chars.next();
                        }
                    }
                    None => errors.push(
                        Diag::error(Code::InvalidEscape, "invalid unicode escape")
                            .label(Span::new(base + i, base + end), "expected `\\u{HEX}`")
                            .help("write a code point in hex between braces, e.g. `\\u{2014}`"),
                    ),
                }
            }
            other => errors.push(
                Diag::error(
                    Code::InvalidEscape,
                    format!("unknown escape `\\{other}`"),
                )
                .label(Span::new(base + i, base + end), "not a known escape")
                .help(
                    "known escapes: \\\" \\\\ \\n \\t \\r \\u{HEX}; write `\\\\` for a backslash",
                ),
            ),
        }
        offsets.push((value.len(), base + end));
    }
    Str {
        value,
        span,
        offsets,
    }
}

/// `"""` strings: a leading newline and a trailing blank line are dropped,
/// and the common indentation of non-blank lines is removed, so a template
/// can be indented with the code around it.
fn dedent(inner: &str, base: usize, span: Span) -> Str {
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut pos = 0;
    for line in inner.split('\n') {
        lines.push((pos, line));
        pos += line.len() + 1;
    }
    if lines.len() > 1 && lines.first().is_some_and(|(_, l)| l.trim().is_empty()) {
        lines.remove(0);
    }
    if lines.len() > 1 && lines.last().is_some_and(|(_, l)| l.trim().is_empty()) {
        lines.pop();
    }
    let indent = lines
        .iter()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(_, l)| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    let mut value = String::with_capacity(inner.len());
    let mut offsets = Vec::with_capacity(lines.len());
    for (n, (at, line)) in lines.iter().enumerate() {
        if n > 0 {
            value.push('\n');
        }
        let cut = indent.min(line.len());
        let cut = if line.is_char_boundary(cut) { cut } else { 0 };
        offsets.push((value.len(), base + at + cut));
        value.push_str(line[cut..].trim_end_matches('\r'));
    }
    if offsets.is_empty() {
        offsets.push((0, base));
    }
    Str {
        value,
        span,
        offsets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_map_back_to_source() {
        let mut errs = vec![];
        let s = string(r#""a\"b{{x}}""#, 10, &mut errs);
        assert!(errs.is_empty());
        assert_eq!(s.value, "a\"b{{x}}");
        let at = s.value.find("{{").expect("placeholder");
        // `"a\"b` is 5 bytes of source before `{{`.
        assert_eq!(s.source_offset(at), 10 + 5);
    }

    #[test]
    fn strings_without_escapes_map_back_without_a_table() {
        let mut errs = vec![];
        let raw = r#""run {{x}} now""#;
        let s = string(raw, 7, &mut errs);
        assert!(s.offsets.is_empty());
        let at = s.value.find("{{").expect("placeholder");
        assert_eq!(s.sub_span(at, at + 5), Span::new(7 + 5, 7 + 10));
        assert_eq!(&raw[5..10], "{{x}}");
        assert_eq!(s.source_offset(s.value.len()), 7 + raw.len() - 1);
    }

    #[test]
    fn triple_strings_are_dedented() {
        let mut errs = vec![];
        let raw = "\"\"\"\n    one\n      two\n  \"\"\"";
        let s = string(raw, 0, &mut errs);
        assert_eq!(s.value, "one\n  two");
        assert_eq!(&raw[s.source_offset(0)..s.source_offset(0) + 3], "one");
        let two = s.value.find("two").expect("two");
        assert_eq!(&raw[s.source_offset(two)..s.source_offset(two) + 3], "two");
    }

    #[test]
    fn unknown_escape_is_an_error() {
        let mut errs = vec![];
        string(r#""a\qb""#, 0, &mut errs);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.contains("\\q"));
    }
}
