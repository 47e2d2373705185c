//! Byte ranges into a runbook's source text.

use serde::{Deserialize, Serialize};

/// A half-open byte range `[start, end)` into the source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        miette::SourceSpan::new(s.start.into(), s.len())
    }
}

impl<'i> From<pest::Span<'i>> for Span {
    fn from(s: pest::Span<'i>) -> Self {
        Span::new(s.start(), s.end())
    }
}

/// A value together with where it was written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

/// Where each line of a text starts, for [`line_col`] at many offsets
/// without scanning the text from the top each time.
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    source: &'a str,
    /// Offsets just past each `\n`.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(source: &'a str) -> Self {
        let starts = memchr::memchr_iter(b'\n', source.as_bytes())
            .map(|i| i + 1)
            .collect();
        LineIndex { source, starts }
    }

    /// The same as [`line_col`]`(source, offset)`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        if !self.source.is_char_boundary(offset) {
            // As `line_col`, which reads nothing before such an offset.
            return (1, 1);
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let line_start = if line == 0 { 0 } else { self.starts[line - 1] };
        let col = self.source[line_start..offset].chars().count() + 1;
        (line + 1, col)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Byte offset where 1-based `line` starts; `None` past the last line.
/// The inverse of [`line_col`] up to the column, which callers count in
/// their own unit (serde_json counts bytes, handlebars characters).
pub fn line_start(source: &str, line: usize) -> Option<usize> {
    if line == 1 {
        return Some(0);
    }
    memchr::memchr_iter(b'\n', source.as_bytes())
        .nth(line.checked_sub(2)?)
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_index_agrees_with_line_col_everywhere() {
        for text in [
            "",
            "a",
            "a\nb",
            "\n\n",
            "ab\r\ncd\n",
            "é\nü→x\n\nend",
            "x\n",
        ] {
            let index = LineIndex::new(text);
            for offset in 0..=text.len() + 2 {
                assert_eq!(
                    index.line_col(offset),
                    line_col(text, offset),
                    "{text:?} at {offset}"
                );
            }
        }
    }

    #[test]
    fn line_start_is_where_line_col_says_column_1_is() {
        for text in ["", "a", "a\nb", "\n\n", "é\nü→x\n\nend"] {
            for offset in (0..=text.len()).filter(|&o| text.is_char_boundary(o)) {
                let (line, col) = line_col(text, offset);
                if col == 1 {
                    assert_eq!(line_start(text, line), Some(offset), "{text:?} at {offset}");
                }
            }
            let lines = text.matches('\n').count() + 1;
            assert_eq!(line_start(text, lines + 1), None);
        }
        assert_eq!(line_start("a", 0), None);
    }
}
