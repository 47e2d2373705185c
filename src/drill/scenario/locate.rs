//! Finding keys and values in a scenario's YAML text (block style, read
//! off the indentation), to point diagnostics at what is written.

use crate::span::Span;

/// The path of mapping keys and list items (`checks.errors_low.rules[0].plus`)
/// under which `offset` is written, read off the indentation of block-style
/// YAML (flow collections are not entered).
pub(super) fn yaml_path_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let before: Vec<&str> = text[..line_start].split_inclusive('\n').collect();
    let line = &text[line_start..offset];
    // A key, possibly after a `- `, at the start of a line: (its column,
    // whether it opens a list item, the key).
    let key_of = |l: &str| -> Option<(usize, bool, String)> {
        let ind = indent_of(l);
        let rest = &l[ind..];
        let (col, item, rest) = match rest.strip_prefix("- ") {
            Some(r) => (ind + 2, true, r),
            None => (ind, false, rest),
        };
        let end = rest.find(':')?;
        let key = rest[..end].trim().trim_matches(['"', '\'']);
        let simple = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        simple.then(|| (col, item, key.to_string()))
    };
    let mut parts: Vec<String> = Vec::new();
    let (mut col, mut item) = match key_of(line) {
        Some((c, i, k)) => {
            parts.push(k);
            (c, i)
        }
        None => return String::new(),
    };
    let mut i = before.len();
    while i > 0 {
        if item {
            // The index of this list item among its siblings.
            let dash = col - 2;
            let mut index = 0;
            while i > 0 {
                let l = before[i - 1];
                if is_blank(l) || indent_of(l) > dash {
                    i -= 1;
                    continue;
                }
                if indent_of(l) == dash && l[dash..].starts_with("- ") {
                    index += 1;
                    i -= 1;
                    continue;
                }
                break;
            }
            if let Some(last) = parts.last_mut() {
                *last = format!("[{index}].{last}");
            }
            col = dash;
            item = false;
            continue;
        }
        i -= 1;
        let l = before[i];
        if is_blank(l) || indent_of(l) >= col {
            continue;
        }
        match key_of(l) {
            // `- a: 1` above `  b: 2`: b is a sibling of a in that item.
            Some((c, true, _)) if c == col => item = true,
            Some((c, it, k)) if c < col => {
                parts.push(k);
                col = c;
                item = it;
            }
            _ => {}
        }
    }
    parts.reverse();
    parts.join(".").replace(".[", "[")
}

/// The span of `key:` as a mapping key in the text (first occurrence at or
/// after `from`), for pointing at names that do not resolve.
pub fn key_span(text: &str, key: &str) -> Span {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let bare = trimmed.trim_start_matches("- ");
        let lead = indent + (trimmed.len() - bare.len());
        for (quote, prefix) in [
            ("", key.to_string()),
            ("\"", format!("\"{key}\"")),
            ("'", format!("'{key}'")),
        ] {
            if let Some(rest) = bare.strip_prefix(prefix.as_str()) {
                if rest.trim_start().starts_with(':') {
                    let start = offset + lead + quote.len();
                    return Span::new(start, start + key.len());
                }
            }
        }
        offset += line.len();
    }
    Span::default()
}

/// A word in `text[from..to]` (not part of a longer name).
pub(super) fn word_between(text: &str, word: &str, from: usize, to: usize) -> Option<Span> {
    let re = regex::Regex::new(&format!(
        r"(^|[^A-Za-z0-9_]){}([^A-Za-z0-9_]|$)",
        regex::escape(word)
    ))
    .ok()?;
    let m = re.find(&text[from..to])?;
    let s = from + m.start() + m.as_str().find(word)?;
    Some(Span::new(s, s + word.len()))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// `key:` at the start of `line` (after its indentation), bare or quoted:
/// the end of `key:` (just after the colon) within the line.
fn key_at_line_start(line: &str, key: &str) -> Option<usize> {
    let ind = indent_of(line);
    let rest = &line[ind..];
    for q in ["", "\"", "'"] {
        let name = format!("{q}{key}{q}");
        if let Some(after) = rest.strip_prefix(name.as_str()) {
            let gap = after.len() - after.trim_start_matches([' ', '\t']).len();
            if after[gap..].starts_with(':') {
                return Some(ind + name.len() + gap + 1);
            }
        }
    }
    None
}

/// The byte range of the value of the block-style key at `path`
/// (`["expect", "rollback"]`): from just after `rollback:` to the end of the
/// lines indented deeper than it. Keys are matched at their level only, so
/// `rollback:` under `actions:` is not `expect.rollback`.
fn value_range(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let (mut start, mut end) = (0, text.len());
    for (depth, key) in path.iter().enumerate() {
        let mut level = None;
        let mut found = None;
        let mut offset = start;
        for (i, line) in text[start..end].split_inclusive('\n').enumerate() {
            let line_start = offset;
            offset += line.len();
            // Below the top level the first piece is the rest of the
            // parent's own line (`expect:` or `rollback: [a, b]`).
            if (depth > 0 && i == 0) || is_blank(line) {
                continue;
            }
            let ind = indent_of(line);
            if ind != *level.get_or_insert(ind) {
                continue;
            }
            if let Some(colon) = key_at_line_start(line, key) {
                found = Some((line_start + colon, ind));
                break;
            }
        }
        let (value_start, key_indent) = found?;
        // The value runs until a line indented no deeper than the key (a
        // `- item` at the key's own indentation still belongs to it).
        let mut value_end = end;
        let mut offset = value_start;
        for (i, line) in text[value_start..end].split_inclusive('\n').enumerate() {
            let line_start = offset;
            offset += line.len();
            if i == 0 || is_blank(line) {
                continue;
            }
            let ind = indent_of(line);
            if ind < key_indent || (ind == key_indent && !line[ind..].starts_with("- ")) {
                value_end = line_start;
                break;
            }
        }
        start = value_start;
        end = value_end;
    }
    Some((start, end))
}

/// The span of `key` as a mapping key (block or flow style) inside the value
/// of `path`; anywhere in the file if that section cannot be found.
pub fn key_in(text: &str, path: &[&str], key: &str) -> Span {
    let pattern = format!(
        r#"(?m)(?:^[ \t]*(?:- )?|[{{,][ \t]*)["']?({})["']?[ \t]*:"#,
        regex::escape(key)
    );
    if let (Some((from, to)), Ok(re)) = (value_range(text, path), regex::Regex::new(&pattern)) {
        if let Some(c) = re.captures(&text[from..to]).and_then(|c| c.get(1)) {
            return Span::new(from + c.start(), from + c.end());
        }
    }
    key_span(text, key)
}

/// The `n`th (from 0) `- ` list item inside the value of `path`: its dash.
pub(super) fn item_in(text: &str, path: &[&str], n: usize) -> Span {
    let Some((from, to)) = value_range(text, path) else {
        return Span::default();
    };
    let mut at = from;
    let mut seen = 0;
    for line in text[from..to].split_inclusive('\n') {
        let dash = line.len() - line.trim_start().len();
        if line.trim_start().starts_with("- ") {
            if seen == n {
                return Span::new(at + dash, at + dash + 1);
            }
            seen += 1;
        }
        at += line.len();
    }
    Span::default()
}

/// The span of `word` (a list item, a value) inside the value of `path`;
/// if it is not written as such there (quoted, escaped), the key of `path`.
pub fn word_in(text: &str, path: &[&str], word: &str) -> Span {
    value_range(text, path)
        .and_then(|(from, to)| word_between(text, word, from, to))
        .unwrap_or_else(|| match path.split_last() {
            Some((last, parents)) => key_in(text, parents, last),
            None => Span::default(),
        })
}

/// The innermost flow collection (`[`, `{`) or quoted string open at
/// `offset` that is never closed: its offset and opening character. A
/// syntax error inside one is often noticed lines later (at the next
/// `key:`), so the diagnostic also points at where it was opened. Only a
/// bracket or quote where a value may start opens one (`don't`, `a[0]` are
/// plain text); `#` after a space starts a comment.
pub(super) fn unclosed_at(text: &str, offset: usize) -> Option<(usize, char)> {
    let mut open: Vec<(usize, char)> = Vec::new();
    let mut open_at_offset = None;
    // The last character that was not a space or tab on this line ('\n'
    // at its start), and whether spaces came after it.
    let (mut last, mut spaced) = ('\n', false);
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if i >= offset && open_at_offset.is_none() {
            open_at_offset = Some(open.clone());
        }
        if let Some(&(_, q)) = open.last().filter(|(_, q)| matches!(q, '"' | '\'')) {
            // `\x` in a double-quoted string, `''` in a single-quoted one.
            let escaped = (q == '"' && c == '\\')
                || (q == '\'' && c == q && chars.peek().is_some_and(|&(_, n)| n == q));
            if escaped {
                chars.next();
            } else if c == q {
                open.pop();
                (last, spaced) = (c, false);
            }
            continue;
        }
        let value_starts =
            matches!(last, '\n' | '[' | '{' | ',') || (spaced && matches!(last, ':' | '-' | '?'));
        match c {
            ' ' | '\t' => {
                spaced = true;
                continue;
            }
            '#' if spaced || last == '\n' => {
                while chars.next_if(|&(_, n)| n != '\n').is_some() {}
                continue;
            }
            '[' | '{' | '"' | '\'' if value_starts => open.push((i, c)),
            ']' | '}'
                if open
                    .last()
                    .is_some_and(|&(_, o)| o == if c == ']' { '[' } else { '{' }) =>
            {
                open.pop();
            }
            _ => {}
        }
        (last, spaced) = (c, false);
    }
    let at_offset = open_at_offset.unwrap_or_else(|| open.clone());
    at_offset.into_iter().rev().find(|o| open.contains(o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;

    #[test]
    fn key_span_finds_nested_keys() {
        let text = "checks:\n  errors_lo: fail\n";
        let s = key_span(text, "errors_lo");
        assert_eq!(&text[s.start..s.end], "errors_lo");
    }

    #[test]
    fn names_are_found_in_their_own_section() {
        let text = "actions:\n  rollback: {fail_first: 1}\n  x: {stdout: \"rollback\"}\n\
                    approvals: {rollback: {approve: false}}\n\
                    expect:\n  outcome: rolled_back\n  rollback: [x, rollback]\n\
                    \x20 retries: {rollbak: 1}\n";
        let at = |s: Span| &text[s.start..];
        assert!(at(key_in(text, &["approvals"], "rollback")).starts_with("rollback: {approve"));
        assert!(at(key_in(text, &["expect", "retries"], "rollbak")).starts_with("rollbak: 1}"));
        assert!(at(word_in(text, &["expect", "rollback"], "rollback")).starts_with("rollback]"));
        // Not in the section: the section's key.
        assert!(at(word_in(text, &["expect", "outcome"], "succeeded")).starts_with("outcome"));
    }

    #[test]
    fn block_values_end_at_the_next_key_of_their_level() {
        let text = "checks:\n  a:\n    default: fail\n    rules:\n    - succeeded: s1\n  b: pass\nexpect:\n  skipped:\n  - s1\n  failed: [s2]\n";
        let (from, to) = value_range(text, &["checks", "a"]).unwrap();
        assert!(text[from..to].contains("succeeded: s1") && !text[from..to].contains("b: pass"));
        let (from, to) = value_range(text, &["expect", "skipped"]).unwrap();
        assert_eq!(text[from..to].trim(), "- s1");
    }

    #[test]
    fn paths_are_read_off_the_indentation() {
        let text = "checks:\n  a:\n    rules:\n      - answer: pass\n        after: 1m\n      - succeeded: s\n        plus: 2 minutes\nexpect:\n  max_duration: 5 minutes\n";
        let at = |v: &str| yaml_path_at(text, text.find(v).unwrap());
        assert_eq!(at("2 minutes"), "checks.a.rules[1].plus");
        assert_eq!(at("1m"), "checks.a.rules[0].after");
        assert_eq!(at(" s\n"), "checks.a.rules[1].succeeded");
        assert_eq!(at("5 minutes"), "expect.max_duration");
    }

    #[test]
    fn unclosed_brackets_and_quotes_are_found_where_they_open() {
        fn at<'t>(text: &'t str, error_at: &str) -> Option<(&'t str, char)> {
            unclosed_at(text, text.find(error_at)?).map(|(i, c)| (&text[i..], c))
        }
        let text = "expect:\n  skipped: [a\n  max_duration: 10m\n";
        assert_eq!(at(text, ": 10m"), Some(("[a\n  max_duration: 10m\n", '[')));
        let text = "a: {b: [1, 2], c: \"x\n";
        assert_eq!(at(text, "x"), Some(("\"x\n", '"')));
        // Closed ones, and brackets and quotes inside plain text, are not.
        for (text, error_at) in [
            ("a: [1, 2]\nb: {c: d}\ne: 5 minutes\n", "5 minutes"),
            ("a: [1, 2, x]\n", "x"),
            ("name: don't a[0] {x\nb: 1\n", "b: 1"),
            ("a: 'it''s' # [\nb: \"\\\"\"\nc: 1\n", "c: 1"),
        ] {
            assert_eq!(at(text, error_at), None, "{text}");
        }
    }
}
