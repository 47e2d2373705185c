//! The printer: walks the parse tree, turns it into lines (one statement a
//! line, blocks indented), then aligns `input` and `secret` groups.

use crate::syntax::Rule;
use pest::iterators::Pair;

const INDENT: &str = "  ";

/// One output line before alignment. `cells` are joined by one space (more
/// in an aligned group); a line with no cells is a comment on its own.
#[derive(Debug, Default)]
struct Line {
    indent: usize,
    cells: Vec<String>,
    comment: Option<String>,
    /// Lines of the same kind in a row are aligned cell by cell.
    group: Option<Group>,
    blank_before: bool,
}

impl Line {
    fn is_empty(&self) -> bool {
        self.cells.iter().all(String::is_empty) && self.comment.is_none()
    }
}

/// Kinds of lines aligned with their neighbours of the same kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// `input NAME: | TYPE | = DEFAULT`
    Input,
    /// `secret NAME | = SOURCE`
    Secret,
    /// `header "NAME" | = "VALUE"`
    Header,
    /// `title | "..."`, `owner`, `tags`, `lock`
    Metadata,
}

fn group(rule: Rule) -> Option<Group> {
    match rule {
        Rule::input_decl => Some(Group::Input),
        Rule::secret_decl => Some(Group::Secret),
        Rule::header => Some(Group::Header),
        Rule::title_decl | Rule::owner_decl | Rule::tags_decl | Rule::lock_decl => {
            Some(Group::Metadata)
        }
        _ => None,
    }
}

struct Printer<'a> {
    text: &'a str,
    lines: Vec<Line>,
    cur: Option<Line>,
    indent: usize,
    /// The current line is complete: the next token starts a new one.
    break_pending: bool,
    /// A block was just opened: no blank line before what comes first.
    just_opened: bool,
    /// Where the last token printed ends in the source.
    last_end: usize,
    /// The previous token wants no space after it (`(`, `[`, `<`).
    glue_next: bool,
    prev_text: &'static str,
}

pub(super) fn print(text: &str, file: Pair<'_, Rule>) -> String {
    let mut p = Printer {
        text,
        lines: Vec::new(),
        cur: None,
        indent: 0,
        break_pending: false,
        just_opened: false,
        last_end: 0,
        glue_next: true,
        prev_text: "",
    };
    p.node(file);
    p.finish_line();
    render(align(p.lines))
}

/// Rules printed as one token, exactly as written.
fn is_leaf(pair: &Pair<'_, Rule>) -> bool {
    match pair.as_rule() {
        Rule::string | Rule::path => true,
        // These hold only punctuation when empty (`[]`, `{}`).
        Rule::string_list
        | Rule::list_lit
        | Rule::notify_args
        | Rule::header_block
        | Rule::request_block => false,
        _ => pair.clone().into_inner().next().is_none(),
    }
}

/// Rules whose `{ ... }` holds one statement a line.
fn is_block(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::runbook
            | Rule::check_decl
            | Rule::step_decl
            | Rule::parallel_block
            | Rule::always_block
            | Rule::if_block
            | Rule::else_if
            | Rule::else_arm
            | Rule::try_block
            | Rule::else_try
            | Rule::handler
            | Rule::header_block
            | Rule::request_block
            | Rule::for_action
            | Rule::for_block
    )
}

/// Whether `child` starts a line of its own inside `parent`.
fn is_statement(parent: Rule, child: Rule) -> bool {
    match parent {
        Rule::file => child == Rule::runbook,
        Rule::runbook => !matches!(child, Rule::kw_runbook | Rule::ident),
        Rule::check_decl => !matches!(child, Rule::kw_check | Rule::ident),
        Rule::step_decl => !matches!(child, Rule::kw_step | Rule::ident),
        Rule::handler => !matches!(child, Rule::kw_on | Rule::handler_kind),
        Rule::parallel_block | Rule::header_block | Rule::request_block => {
            child != Rule::kw_parallel
        }
        Rule::always_block => child != Rule::kw_always,
        // Steps, and the blocks nested among them.
        Rule::if_block
        | Rule::else_if
        | Rule::try_block
        | Rule::else_try
        | Rule::else_arm
        | Rule::for_block => matches!(
            child,
            Rule::step_decl
                | Rule::if_block
                | Rule::for_block
                | Rule::try_block
                | Rule::parallel_block
                | Rule::always_block
        ),
        Rule::for_action => matches!(
            child,
            Rule::run_action
                | Rule::http_action
                | Rule::notify_action
                | Rule::approve_action
                | Rule::wait_action
                | Rule::escalate_action
        ),
        _ => false,
    }
}

impl Printer<'_> {
    fn node(&mut self, pair: Pair<'_, Rule>) {
        let rule = pair.as_rule();
        if rule == Rule::EOI {
            return;
        }
        let span = pair.as_span();
        if is_leaf(&pair) {
            self.token(pair.as_str(), span.end());
            return;
        }
        let mut pos = span.start();
        for child in pair.into_inner() {
            let (start, end) = (child.as_span().start(), child.as_span().end());
            self.gap(rule, pos, start, false);
            let child_rule = child.as_rule();
            if child_rule == Rule::COMMENT {
                self.comment(child.as_str(), start, end);
            } else if matches!(child_rule, Rule::else_if | Rule::else_arm | Rule::else_try) {
                // `} else if C {`, `} else try {` and `} else {`: on the
                // line of the `}`.
                self.break_pending = false;
                self.glue_next = false;
                self.node(child);
            } else if is_statement(rule, child_rule) {
                self.start_statement(start, group(child_rule));
                self.node(child);
                self.break_pending = true;
            } else {
                self.node(child);
                if group(rule) == Some(Group::Metadata) && pos == span.start() {
                    // After the keyword: the values line up.
                    self.next_cell();
                }
            }
            pos = end;
        }
        self.gap(rule, pos, span.end(), true);
    }

    /// The punctuation between two children of `rule` (pest does not keep
    /// it in the tree). `last`: the gap before the end of the rule, where a
    /// list's trailing comma is dropped.
    fn gap(&mut self, rule: Rule, from: usize, to: usize, last: bool) {
        let gap = &self.text[from..to];
        for (i, c) in gap.char_indices() {
            if c.is_whitespace() {
                continue;
            }
            let at = from + i;
            match c {
                '{' if is_block(rule) => self.open_block(at),
                '}' if is_block(rule) => self.close_block(at),
                ',' if last => {}
                ':' if rule == Rule::input_decl => {
                    self.punct(":", at);
                    self.next_cell();
                }
                '=' if matches!(rule, Rule::input_decl | Rule::secret_decl | Rule::header) => {
                    self.next_cell();
                    self.punct("=", at);
                }
                // `pods[0]`, `length(pods)`, `pods[0].name`: no space
                // between a value and what reads from it.
                '[' if rule == Rule::index => self.attached("[", at),
                '(' if rule == Rule::call => self.attached("(", at),
                '.' if rule == Rule::field => self.attached(".", at),
                _ => self.punct(punct_text(c), at),
            }
        }
    }

    /// Punctuation glued on both sides.
    fn attached(&mut self, p: &'static str, at: usize) {
        self.emit(p, at + p.len(), true, true);
        self.prev_text = p;
    }

    fn punct(&mut self, p: &'static str, at: usize) {
        let glue_before =
            matches!(p, ")" | "]" | ">" | "," | ":" | "<") || (p == "}" && self.prev_text == "{");
        let glue_after = matches!(p, "(" | "[" | "<");
        self.emit(p, at + p.len(), glue_before, glue_after);
        self.prev_text = p;
    }

    fn token(&mut self, t: &str, end: usize) {
        self.emit(t, end, false, false);
        self.prev_text = "";
    }

    fn emit(&mut self, t: &str, end: usize, glue_before: bool, glue_after: bool) {
        if self.break_pending || self.cur.is_none() {
            // Only a comment can break a statement: carry on one level in.
            self.new_line(self.indent + 1, false, None);
        }
        let space = !(glue_before || self.glue_next);
        let line = self.cur.get_or_insert_with(Line::default);
        if line.cells.is_empty() {
            line.cells.push(String::new());
        }
        if let Some(cell) = line.cells.last_mut() {
            if space && !cell.is_empty() {
                cell.push(' ');
            }
            cell.push_str(t);
        }
        self.glue_next = glue_after;
        self.last_end = end;
    }

    fn next_cell(&mut self) {
        if let Some(line) = self.cur.as_mut() {
            line.cells.push(String::new());
        }
        self.glue_next = true;
    }

    fn start_statement(&mut self, start: usize, group: Option<Group>) {
        let blank = self.blank_between(self.last_end, start);
        self.new_line(self.indent, blank, group);
    }

    fn open_block(&mut self, at: usize) {
        self.punct("{", at);
        self.indent += 1;
        self.break_pending = true;
        self.just_opened = true;
    }

    fn close_block(&mut self, at: usize) {
        self.indent = self.indent.saturating_sub(1);
        let empty_block =
            self.just_opened && self.cur.as_ref().is_some_and(|l| l.comment.is_none());
        if empty_block {
            // `{}`: nothing was written inside.
            self.break_pending = false;
            self.glue_next = true;
        } else {
            self.new_line(self.indent, false, None);
        }
        self.punct("}", at);
        self.break_pending = true;
        self.just_opened = false;
    }

    fn comment(&mut self, c: &str, start: usize, end: usize) {
        let c = c.trim_end().to_string();
        let same_line = !self.text[self.last_end..start].contains('\n');
        match self.cur.as_mut() {
            Some(line) if same_line && line.comment.is_none() && !line.is_empty() => {
                line.comment = Some(c);
            }
            _ => {
                let blank = self.blank_between(self.last_end, start);
                // Inside a statement broken by a comment, keep its indent.
                let indent = if self.break_pending || self.cur.is_none() || self.just_opened {
                    self.indent
                } else {
                    self.indent + 1
                };
                self.new_line(indent, blank, None);
                if let Some(line) = self.cur.as_mut() {
                    line.comment = Some(c);
                }
            }
        }
        self.last_end = end;
        self.break_pending = true;
    }

    /// Whether the source has an empty line between two offsets (kept as
    /// one blank line, except first thing in a block).
    fn blank_between(&self, from: usize, to: usize) -> bool {
        !self.just_opened
            && (self.cur.is_some() || !self.lines.is_empty())
            && self.text[from.min(to)..to].matches('\n').count() >= 2
    }

    fn new_line(&mut self, indent: usize, blank_before: bool, group: Option<Group>) {
        self.finish_line();
        self.cur = Some(Line {
            indent,
            blank_before,
            group,
            ..Line::default()
        });
        self.break_pending = false;
        self.just_opened = false;
        self.glue_next = true;
    }

    fn finish_line(&mut self) {
        if let Some(line) = self.cur.take() {
            if !line.is_empty() {
                self.lines.push(line);
            }
        }
    }
}

fn punct_text(c: char) -> &'static str {
    match c {
        '{' => "{",
        '}' => "}",
        '[' => "[",
        ']' => "]",
        '(' => "(",
        ')' => ")",
        '<' => "<",
        '>' => ">",
        ',' => ",",
        ':' => ":",
        '=' => "=",
        '.' => ".",
        // The grammar has no other punctuation between tokens.
        _ => "?",
    }
}

/// Pads the cells of each run of same-kind lines (`input` and `secret`
/// declarations written one after another) to a common width, and lines up
/// their trailing comments.
fn align(mut lines: Vec<Line>) -> Vec<Line> {
    let mut start = 0;
    while start < lines.len() {
        let mut end = start + 1;
        if lines[start].group.is_some() {
            while end < lines.len()
                && lines[end].group == lines[start].group
                && lines[end].indent == lines[start].indent
                && !lines[end].blank_before
            {
                end += 1;
            }
            align_group(&mut lines[start..end]);
        }
        start = end;
    }
    lines
}

fn width(s: &str) -> usize {
    s.rsplit('\n').next().unwrap_or(s).chars().count()
}

/// A value cell (a type, a default) wider than this is left out of its
/// column, so that one `one_of [...]` does not push every `=` to the right.
const WIDEST_ALIGNED: usize = 16;

fn align_group(group: &mut [Line]) {
    let columns = group.iter().map(|l| l.cells.len()).max().unwrap_or(0);
    for col in 0..columns.saturating_sub(1) {
        let aligned = |cell: &str| col == 0 || width(cell) <= WIDEST_ALIGNED;
        let w = group
            .iter()
            .filter(|l| l.cells.len() > col + 1 && aligned(&l.cells[col]))
            .map(|l| width(&l.cells[col]))
            .max()
            .unwrap_or(0);
        for line in group.iter_mut().filter(|l| l.cells.len() > col + 1) {
            let pad = w.saturating_sub(width(&line.cells[col]));
            line.cells[col].extend(std::iter::repeat_n(' ', pad));
        }
    }
    let code = group
        .iter()
        .filter(|l| l.comment.is_some())
        .map(|l| width(&code_of(l)))
        .max();
    if let Some(code) = code {
        for line in group.iter_mut().filter(|l| l.comment.is_some()) {
            let pad = code - width(&code_of(line));
            if let Some(last) = line.cells.last_mut() {
                last.extend(std::iter::repeat_n(' ', pad));
            }
        }
    }
}

fn code_of(line: &Line) -> String {
    line.cells.join(" ")
}

fn render(lines: Vec<Line>) -> String {
    let mut out = String::new();
    for line in lines {
        if line.blank_before {
            out.push('\n');
        }
        for _ in 0..line.indent {
            out.push_str(INDENT);
        }
        let code = code_of(&line);
        out.push_str(&code);
        if let Some(c) = &line.comment {
            if !code.is_empty() {
                out.push_str("  ");
            }
            out.push_str(c);
        }
        out.push('\n');
    }
    out
}
