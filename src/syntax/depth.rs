//! A linear pre-pass that refuses pathological nesting before the recursive
//! parser runs: pest (and the tree builder) recurse once per level.

use super::literals::literal_end;
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use crate::span::Span;

/// Returns an error at the first bracket that opens level `max + 1`.
/// Brackets inside strings and comments do not count.
pub(super) fn check(text: &str, max: usize) -> Option<Diag> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    // `list<list<...>>` nests too; its `>` closes only an open `list<` (a
    // `>` elsewhere is a comparison).
    let mut types = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        // Most bytes are none of these: skip them in a tight loop (asking
        // `literal_end` at every byte was a tenth of a large file's compile).
        match bytes[i..].iter().position(|b| SPECIAL[usize::from(*b)]) {
            Some(k) => i += k,
            None => break,
        }
        if let Some(end) = literal_end(bytes, i) {
            i = end;
            continue;
        }
        match bytes[i] {
            b'<' if types_open(bytes, i) => {
                types += 1;
                if depth + types > max {
                    return Some(too_deep(i, max));
                }
            }
            b'>' if types > 0 => types -= 1,
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth + types > max {
                    return Some(too_deep(i, max));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The bytes the loop in [`check`] looks at: those that may start a
/// comment or a string, and the brackets.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut k = 0;
    let special = b"#\"<>()[]{}";
    while k < special.len() {
        t[special[k] as usize] = true;
        k += 1;
    }
    t
};

/// Whether the `<` at `i` opens a `list<...>` type: it follows the word
/// `list` and a type follows it (spaces allowed). An input named `list`
/// compared in a condition (`list < 3`) is not a type.
fn types_open(bytes: &[u8], i: usize) -> bool {
    let before = bytes[..i].trim_ascii_end();
    let after_list = before.ends_with(b"list")
        && !before[..before.len() - 4]
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if !after_list {
        return false;
    }
    let after = bytes[i + 1..].trim_ascii_start();
    let word_len = after
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
        .unwrap_or(after.len());
    matches!(
        &after[..word_len],
        b"string" | b"int" | b"float" | b"bool" | b"duration" | b"list" | b"one_of"
    )
}

fn too_deep(at: usize, max: usize) -> Diag {
    Diag::error(
        Code::TooDeep,
        format!("nested too deeply (more than {max} levels)"),
    )
    .label(
        Span::new(at, at + 1),
        "this bracket opens one level too many",
    )
    .help("split the condition, list or type into simpler parts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let deep = "(".repeat(70);
        for hidden in [
            format!("\"{deep}\""),
            format!("\"a\\\"{deep}\""),
            format!("\"\"\"\n{deep}\n\"\"\""),
            format!("# {deep}\n"),
            format!("\"\\\\\" # {deep}\n"),
        ] {
            assert!(check(&hidden, 64).is_none(), "{hidden}");
            // ... but brackets after them do.
            assert!(check(&format!("{hidden}{deep}"), 64).is_some(), "{hidden}");
        }
        // A string ends at a newline: what follows is code again.
        assert!(check(&format!("\"abc\n{deep}"), 64).is_some());
        // An unterminated string or comment at the end is not an error here.
        assert!(check("\"abc\\", 64).is_none());
        assert!(check("\"\"\"abc", 64).is_none());
    }

    #[test]
    fn list_types_count_and_comparisons_do_not() {
        let deep = format!("input x: {}string{}", "list<".repeat(70), ">".repeat(70));
        assert!(check(&deep, 64).is_some());
        let shallow = format!("input x: {}string{}", "list<".repeat(3), ">".repeat(3));
        assert!(check(&shallow, 64).is_none());
        let comparisons = "when a < b and c > d and playlist < 3 ".repeat(100);
        assert!(check(&comparisons, 64).is_none());
        // An input named `list`, compared: not a type, however often.
        let named_list = "when list < 3 and list <= max ".repeat(100);
        assert!(check(&named_list, 64).is_none());
    }
}
