//! A linear pre-pass that refuses pathological nesting before the recursive
//! parser runs: pest (and the tree builder) recurse once per level.

use crate::diagnostics::Diag;
use crate::span::Span;

/// Returns an error at the first bracket that opens level `max + 1`.
/// Brackets inside strings and comments do not count.
pub fn check(text: &str, max: usize) -> Option<Diag> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += 1;
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(
                        Diag::error(
                            "runbook::too_deep",
                            format!("nested too deeply (more than {max} levels)"),
                        )
                        .label(Span::new(i, i + 1), "this bracket opens one level too many")
                        .help("split the condition or list into simpler parts"),
                    );
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}
