//! Compile diagnostics: what is wrong, where, and how to fix it.
//!
//! Passes return `Vec<Diag>` so that every problem in a file is reported at
//! once. A [`Report`] pairs them with the source for miette's renderer and
//! for the machine-readable JSON form.

pub use crate::diagnostic_code::Code;
use crate::indexed_source::IndexedSource;
use crate::source::Source;
use crate::span::{line_col, LineIndex, Span};
use miette::{Diagnostic, LabeledSpan, NamedSource, Severity};
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub level: Level,
    /// Stable code, e.g. `runbook::unknown_name`.
    pub code: &'static str,
    pub message: String,
    pub labels: Vec<(Span, String)>,
    pub help: Option<String>,
}

impl Diag {
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Diag {
            level: Level::Error,
            code: code.as_str(),
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Diag {
            level: Level::Warning,
            ..Diag::error(code, message)
        }
    }

    pub fn label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push((span, text.into()));
        self
    }

    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.help = Some(text.into());
        self
    }

    pub fn maybe_help(self, text: Option<String>) -> Self {
        match text {
            Some(t) => self.help(t),
            None => self,
        }
    }

    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }

    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|(s, _)| *s)
    }
}

/// "did you mean `x`?" when a known name is close to what was written.
pub fn did_you_mean<'a>(written: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for k in known {
        let score = strsim::jaro_winkler(written, k);
        if score > 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, k));
        }
    }
    best.map(|(_, k)| format!("did you mean `{k}`?"))
}

/// One diagnostic bound to its source, renderable by miette.
#[derive(Debug)]
pub struct SourcedDiag {
    pub diag: Diag,
    pub source: NamedSource<IndexedSource>,
}

impl fmt::Display for SourcedDiag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for SourcedDiag {}

impl Diagnostic for SourcedDiag {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diag.code))
    }

    fn severity(&self) -> Option<Severity> {
        Some(match self.diag.level {
            Level::Error => Severity::Error,
            Level::Warning => Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.diag.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.diag.labels.iter().map(|(s, t)| {
            LabeledSpan::new_with_span(Some(t.clone()), *s)
        })))
    }
}

/// Longest source line drawn in a snippet, in bytes.
const MAX_SHOWN_LINE: usize = 1_000;

/// Length in bytes of the line holding `offset`.
fn line_len(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let bytes = text.as_bytes();
    let start = bytes[..offset]
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let end = bytes[offset..]
        .iter()
        .position(|b| *b == b'\n')
        .map(|i| offset + i)
        .unwrap_or(bytes.len());
    end - start
}

/// How many warnings of one kind (code) the commands that go on to use a
/// runbook (`run`, `resume`, `plan`, `graph`) show; `check` shows all.
pub const WARNINGS_SHOWN_PER_CODE: usize = 3;

/// All diagnostics of one file.
#[derive(Debug)]
pub struct Report {
    pub source: Source,
    pub diags: Vec<Diag>,
}

/// The machine-readable form of one diagnostic (`check --format json`).
#[derive(Debug, Serialize)]
pub struct JsonDiag {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub severity: Level,
    pub code: &'static str,
    pub message: String,
    /// The text under the primary span ("did you mean" goes in `help`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Report {
    pub fn new(source: Source, mut diags: Vec<Diag>) -> Self {
        // Errors first, then by position, so output is stable.
        diags.sort_by_key(|d| (d.level != Level::Error, d.primary_span().map(|s| s.start)));
        Report { source, diags }
    }

    /// The report for a file that is not UTF-8: its text is shown with the
    /// bad bytes replaced, and the first one is pointed at.
    pub fn not_utf8(name: impl Into<String>, bytes: &[u8]) -> Report {
        let (at, bad) = match std::str::from_utf8(bytes) {
            Ok(_) => (bytes.len(), 0),
            Err(e) => (
                e.valid_up_to(),
                e.error_len().unwrap_or(bytes.len() - e.valid_up_to()),
            ),
        };
        let shown: Vec<String> = bytes
            .get(at..at + bad)
            .unwrap_or_default()
            .iter()
            .map(|b| format!("0x{b:02X}"))
            .collect();
        let text = String::from_utf8_lossy(bytes).into_owned();
        // The valid prefix is the same in the lossy text; the bad bytes
        // became one U+FFFD (3 bytes).
        let end = (at + '\u{FFFD}'.len_utf8()).min(text.len());
        let diag = Diag::error(
            Code::NotUtf8,
            format!("the file is not valid UTF-8 (first bad byte at offset {at})"),
        )
        .label(
            Span::new(at, end),
            format!("{} is not UTF-8 (shown as \u{FFFD})", shown.join(" ")),
        )
        .help("runbooks are UTF-8 text: save the file as UTF-8 (for Latin-1 text: `iconv -f latin1 -t utf-8`)");
        Report::new(Source::new(name, text), vec![diag])
    }

    /// Keeps at most `per_code` diagnostics of each code (the first ones,
    /// in report order) and says how many of each code were left out, in
    /// the order the codes first appear. A run of 1,000 steps without
    /// `undo` would otherwise open with 1,000 identical warnings (10,000
    /// lines) above the run an operator is watching.
    pub fn abridge(&mut self, per_code: usize) -> Vec<(&'static str, usize)> {
        let mut seen: Vec<(&'static str, usize)> = Vec::new();
        self.diags.retain(|d| {
            let i = match seen.iter().position(|(code, _)| *code == d.code) {
                Some(i) => i,
                None => {
                    seen.push((d.code, 0));
                    seen.len() - 1
                }
            };
            seen[i].1 += 1;
            seen[i].1 <= per_code
        });
        seen.into_iter()
            .filter(|(_, n)| *n > per_code)
            .map(|(code, n)| (code, n - per_code))
            .collect()
    }

    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diag::is_error)
    }

    pub fn errors(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diags.len() - self.errors()
    }

    pub fn rendered(&self) -> impl Iterator<Item = SourcedDiag> + '_ {
        // One copy of the text and its line index for all the diagnostics.
        let source = IndexedSource::new(&self.source.text);
        self.diags.iter().map(move |d| SourcedDiag {
            diag: self.displayable(d),
            source: NamedSource::new(self.source.name.clone(), source.clone()),
        })
    }

    /// `d`, or, when a label sits on a line too long to show (generated or
    /// minified files; miette cannot draw past column 65,535), `d` without
    /// its snippet: each label becomes a line of help with its position.
    fn displayable(&self, d: &Diag) -> Diag {
        let text = &self.source.text;
        let long = d.labels.iter().any(|(s, _)| {
            line_len(text, s.start) > MAX_SHOWN_LINE || line_len(text, s.end) > MAX_SHOWN_LINE
        });
        if !long {
            return d.clone();
        }
        let mut lines: Vec<String> = d
            .labels
            .iter()
            .map(|(s, t)| {
                let (line, col) = line_col(text, s.start);
                format!("at line {line}, column {col}: {t}")
            })
            .collect();
        lines.extend(d.help.clone());
        Diag {
            labels: Vec::new(),
            help: Some(lines.join("\n")),
            ..d.clone()
        }
    }

    /// Renders every diagnostic with miette's graphical handler.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        for r in self.rendered() {
            // Writing into a String cannot fail.
            let _ = handler.render_report(&mut out, &r);
        }
        out
    }

    pub fn to_json(&self) -> Vec<JsonDiag> {
        let lines = LineIndex::new(&self.source.text);
        self.diags
            .iter()
            .map(|d| {
                let span = d.primary_span().unwrap_or_default();
                let (line, column) = lines.line_col(span.start);
                let (end_line, end_column) = lines.line_col(span.end);
                JsonDiag {
                    file: self.source.name.clone(),
                    line,
                    column,
                    end_line,
                    end_column,
                    severity: d.level,
                    code: d.code,
                    message: d.message.clone(),
                    label: d.labels.first().map(|(_, t)| t.clone()),
                    help: d.help.clone(),
                }
            })
            .collect()
    }
}
