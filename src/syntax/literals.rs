//! Skipping comments and string literals in raw text, for the passes that
//! scan bytes instead of parsing (the depth guard, the unclosed-block hint,
//! trimming spans): a bracket inside either must not count.

/// Where the comment or string literal that starts at `i` ends (the offset
/// just after it); `None` if none starts there.
///
/// * `# ...` ends before its newline.
/// * `"..."` ends after its closing quote; a backslash escapes the next
///   byte (so `\"` and an escaped newline do not end it). Unterminated, it
///   ends at the newline (not included) or at the end of the text.
/// * `"""..."""` ends after its closing `"""`, or at the end of the text.
///
/// Comments and strings are most of a runbook: memchr jumps over them.
pub(super) fn literal_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'#' => Some(memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |k| i + k)),
        b'"' if b[i..].starts_with(b"\"\"\"") => {
            let body = i + 3;
            Some(memchr::memmem::find(&b[body..], b"\"\"\"").map_or(b.len(), |k| body + k + 3))
        }
        b'"' => {
            let mut j = i + 1;
            while j < b.len() {
                match memchr::memchr3(b'"', b'\n', b'\\', &b[j..]) {
                    Some(k) if b[j + k] == b'\\' => j += k + 2,
                    Some(k) if b[j + k] == b'"' => return Some(j + k + 1),
                    Some(k) => return Some(j + k),
                    None => return Some(b.len()),
                }
            }
            Some(b.len())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::literal_end;

    fn end(s: &str, i: usize) -> Option<usize> {
        literal_end(s.as_bytes(), i)
    }

    #[test]
    fn comments_end_before_their_newline() {
        assert_eq!(end("a # {(\nb", 2), Some(6));
        assert_eq!(end("# to the end", 0), Some(12));
    }

    #[test]
    fn strings_end_after_their_closing_quote() {
        assert_eq!(end(r#"x "a{b" y"#, 2), Some(7));
        // Escaped quote, escaped backslash, escaped newline.
        assert_eq!(end(r#""a\"b" y"#, 0), Some(6));
        assert_eq!(end(r#""a\\" y"#, 0), Some(5));
        assert_eq!(end("\"a\\\nb\" y", 0), Some(6));
        // Unterminated: at the newline, or at the end.
        assert_eq!(end("\"ab\ncd", 0), Some(3));
        assert_eq!(end("\"ab\\", 0), Some(4));
        assert_eq!(end("\"ab", 0), Some(3));
    }

    #[test]
    fn triple_strings_end_after_their_closing_quotes() {
        assert_eq!(end("\"\"\"\n{ \" }\n\"\"\" x", 0), Some(13));
        assert_eq!(end("\"\"\"never closed", 0), Some(15));
    }

    #[test]
    fn other_bytes_start_nothing() {
        assert_eq!(end("abc", 1), None);
        assert_eq!(end("abc", 3), None);
    }
}
