//! A runbook's text as miette reads it, with an index of its lines.
//!
//! miette's own `SourceCode for str` finds a span's lines by scanning the
//! text from its first byte, for every diagnostic: a file with many
//! warnings cost time quadratic in its size (4,000 `write_without_undo`
//! warnings in a 4,000-step file took 0.9 s to render, 10,000 several
//! seconds). [`IndexedSource`] knows where each line starts, and hands
//! miette's scan only the few lines around the span, from a line start far
//! enough back that the result is the same byte for byte (the line and
//! column numbers are shifted back by what was skipped).

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};
use std::sync::Arc;

/// Shared by every diagnostic of one file (cloning is two `Arc`s).
#[derive(Debug, Clone)]
pub struct IndexedSource {
    text: Arc<str>,
    /// The offset of each line's first byte, line breaks counted as miette
    /// counts them: `\n`, `\r\n` and a lone `\r`.
    line_starts: Arc<[usize]>,
}

impl IndexedSource {
    pub fn new(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut line_starts = vec![0];
        let mut i = 0;
        while let Some(at) = memchr::memchr2(b'\n', b'\r', &bytes[i..]) {
            let mut end = i + at + 1;
            if bytes[i + at] == b'\r' && bytes.get(end) == Some(&b'\n') {
                end += 1;
            }
            line_starts.push(end);
            i = end;
        }
        IndexedSource {
            text: Arc::from(text),
            line_starts: line_starts.into(),
        }
    }
}

impl SourceCode for IndexedSource {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        // The line holding the span's start, and a line start at least
        // `context_lines_before` lines before it (one more for good
        // measure): miette's scan from there keeps exactly the context lines
        // it would keep scanning from the top.
        let line = self
            .line_starts
            .partition_point(|&s| s <= span.offset())
            .saturating_sub(1);
        let skipped = line.saturating_sub(context_lines_before + 1);
        let base = self.line_starts.get(skipped).copied().unwrap_or(0);
        let window = &self.text.as_bytes()[base..];
        let shifted = SourceSpan::new((span.offset() - base).into(), span.len());
        let inner = window.read_span(&shifted, context_lines_before, context_lines_after)?;
        Ok(Box::new(MietteSpanContents::new(
            inner.data(),
            SourceSpan::new((inner.span().offset() + base).into(), inner.span().len()),
            inner.line() + skipped,
            inner.column(),
            inner.line_count() + skipped,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What miette's own scan of the whole text gives, against the index.
    fn same(text: &str, offset: usize, len: usize, before: usize, after: usize) {
        let span = SourceSpan::new(offset.into(), len);
        let source = IndexedSource::new(text);
        let whole = text.read_span(&span, before, after);
        let indexed = source.read_span(&span, before, after);
        match (whole, indexed) {
            (Ok(w), Ok(i)) => {
                assert_eq!(
                    w.data(),
                    i.data(),
                    "{text:?} {offset}+{len} ctx {before}/{after}"
                );
                assert_eq!(w.span(), i.span(), "{text:?} {offset}+{len}");
                assert_eq!(w.line(), i.line(), "{text:?} {offset}+{len}");
                assert_eq!(w.column(), i.column(), "{text:?} {offset}+{len}");
                assert_eq!(w.line_count(), i.line_count(), "{text:?} {offset}+{len}");
            }
            (Err(_), Err(_)) => {}
            (w, i) => panic!(
                "{text:?} {offset}+{len}: whole {:?} indexed {:?}",
                w.is_ok(),
                i.is_ok()
            ),
        };
    }

    #[test]
    fn reads_every_span_as_miette_does() {
        let texts = [
            "",
            "one line",
            "a\nb\nc\n",
            "a\r\nbb\r\nccc\r\n\r\nd",
            "lone\rcr\rand\nlf\n\n\nend",
            "step s0 {\n  run \"true\"\n}\nstep s1 {\n  run \"true\"\n}\n",
            "\n\n\n\n\nx\n\n\n\n\ny",
            "héllo\nwörld\n→ arrow\n",
        ];
        for text in texts {
            for offset in 0..=text.len() {
                for len in [0, 1, 2, 5, 40] {
                    for (before, after) in [(0, 0), (1, 1), (2, 3), (5, 5)] {
                        same(text, offset, len, before, after);
                    }
                }
            }
        }
    }
}
