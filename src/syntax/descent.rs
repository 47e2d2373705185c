//! A hand-written recursive-descent parser for `grammar/runbook.pest`,
//! used first because it is several times faster than pest on large
//! files (see the Compiler section of `docs/performance.md`).
//!
//! It accepts a subset of what the grammar accepts and never reports an
//! error itself: at anything it does not expect it gives up (`None`), and
//! [`super::parse`] runs pest, which stays the reference for what is valid
//! and the source of every syntax error message. Where it does accept a
//! file, it builds exactly the tree that pest and `build.rs` build, spans
//! and conversion errors included; `tests/compile_props.rs` and the tests
//! below compare the two on every runbook in the repository and on
//! generated and mutated text.
//!
//! Mirroring the grammar: whitespace and comments are skipped after every
//! token (pest's implicit `WHITESPACE`/`COMMENT` between the tokens of a
//! non-atomic rule), so every rule starts on a token and a rule's span ends
//! where its last token ends (what `build::span` computes from pest's
//! span). A keyword is a whole word (`kw_x = @{ "x" ~ !ident_char }`).
//! Where pest would backtrack after a partial match, this parser gives up
//! instead: the tree builder has already seen the partial match, and no
//! valid runbook needs the backtrack.

use super::build::{once, tags_again, Builder, ExprParts};
use super::strings;
use crate::ast::*;
use crate::diagnostics::Diag;
use crate::span::{Span, Spanned};
use std::time::Duration;

/// `None`: not accepted here; pest decides (and explains).
type R<T> = Option<T>;

/// The tree and the conversion errors (escapes, durations, numbers), or
/// `None` when pest must read the file.
pub(super) fn parse(text: &str) -> Option<(Runbook, Vec<Diag>)> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        end: 0,
        b: Builder::default(),
    };
    p.skip();
    let rb = p.runbook()?;
    if p.pos != p.bytes.len() {
        return None;
    }
    Some((rb, p.b.errors))
}

struct Parser<'s> {
    text: &'s str,
    bytes: &'s [u8],
    /// The next unread byte; always past whitespace and comments.
    pos: usize,
    /// Where the last token read ends.
    end: usize,
    b: Builder,
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

const RESERVED: &[&str] = &[
    "and", "or", "not", "in", "contains", "matches", "true", "false",
];

impl<'s> Parser<'s> {
    // ---- tokens ----------------------------------------------------------

    fn skip(&mut self) {
        let b = self.bytes;
        let mut i = self.pos;
        while i < b.len() {
            match b[i] {
                b' ' | b'\n' | b'\t' | b'\r' => i += 1,
                b'#' => {
                    i += 1;
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                _ => break,
            }
        }
        self.pos = i;
    }

    /// Ends the current token at `to` and skips what follows it.
    fn take(&mut self, to: usize) {
        self.end = to;
        self.pos = to;
        self.skip();
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn span_from(&self, start: usize) -> Span {
        Span::new(start, self.end.max(start))
    }

    /// End of the run of identifier characters starting at `at`.
    fn word_end(&self, at: usize) -> usize {
        let b = self.bytes;
        let mut i = at;
        while i < b.len() && is_ident_char(b[i]) {
            i += 1;
        }
        i
    }

    /// The whole word at the cursor (empty if none).
    fn word(&self) -> &'s str {
        let text: &'s str = self.text;
        &text[self.pos..self.word_end(self.pos)]
    }

    /// Reads the word at the cursor; returns its span.
    fn take_word(&mut self) -> Span {
        let start = self.pos;
        let end = self.word_end(start);
        self.take(end);
        Span::new(start, end)
    }

    fn keyword(&mut self, kw: &str) -> R<Span> {
        (self.word() == kw).then(|| self.take_word())
    }

    fn punct(&mut self, c: u8) -> R<()> {
        (self.peek() == Some(c)).then(|| self.take(self.pos + 1))
    }

    fn ident(&mut self) -> R<Ident> {
        let start = self.pos;
        if !self.peek().is_some_and(is_ident_start) {
            return None;
        }
        let end = self.word_end(start);
        self.take(end);
        Some(Spanned::new(
            self.text[start..end].to_string(),
            Span::new(start, end),
        ))
    }

    /// A string literal's source range, quotes included.
    fn string_raw(&mut self) -> R<(usize, usize)> {
        let b = self.bytes;
        let start = self.pos;
        if b.get(start) != Some(&b'"') {
            return None;
        }
        if b[start..].starts_with(b"\"\"\"") {
            let body = &b[start + 3..];
            if let Some(k) = body.windows(3).position(|w| w == b"\"\"\"") {
                let end = start + 3 + k + 3;
                self.take(end);
                return Some((start, end));
            }
            // No closing `"""`: pest reads `""`, an empty plain string.
        }
        let mut i = start + 1;
        loop {
            match *b.get(i)? {
                b'"' => break,
                b'\n' => return None,
                b'\\' => {
                    // The escaped character: one byte is enough to step
                    // over it, since no UTF-8 continuation byte is `"`,
                    // `\` or a newline.
                    if i + 1 >= b.len() {
                        return None;
                    }
                    i += 2;
                }
                _ => i += 1,
            }
        }
        let end = i + 1;
        self.take(end);
        Some((start, end))
    }

    fn str_of(&mut self, (start, end): (usize, usize)) -> Str {
        strings::string(&self.text[start..end], start, &mut self.b.errors)
    }

    fn string(&mut self) -> R<Str> {
        let raw = self.string_raw()?;
        Some(self.str_of(raw))
    }

    /// `ASCII_DIGIT+ ~ ident_char*`, converted.
    fn duration(&mut self) -> R<Spanned<Duration>> {
        let start = self.pos;
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return None;
        }
        let end = self.word_end(start);
        self.take(end);
        Some(
            self.b
                .duration_at(&self.text[start..end], Span::new(start, end)),
        )
    }

    /// `ASCII_DIGIT+ ~ !ident_char`, converted.
    fn int(&mut self) -> R<Spanned<u64>> {
        let start = self.pos;
        let end = self.word_end(start);
        let word = &self.text[start..end];
        if word.is_empty() || !word.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        self.take(end);
        Some(self.b.int_at(word, Span::new(start, end)))
    }

    // ---- the file ----------------------------------------------------------

    fn runbook(&mut self) -> R<Runbook> {
        let start = self.pos;
        self.keyword("runbook")?;
        let name = self.ident()?;
        self.punct(b'{')?;
        let mut rb = Runbook::new(name, Span::default());
        let mut seen = Vec::new();
        while self.peek() != Some(b'}') {
            let item = self.pos;
            match self.word() {
                "step" => {
                    let step = self.step()?;
                    rb.body.push(Block::Step(step));
                }
                "parallel" => {
                    self.take_word();
                    self.punct(b'{')?;
                    let mut steps = Vec::new();
                    while self.word() == "step" {
                        steps.push(*self.step()?);
                    }
                    self.punct(b'}')?;
                    let span = self.span_from(item);
                    rb.body.push(Block::Parallel { steps, span });
                }
                "check" => {
                    let check = self.check()?;
                    rb.checks.push(check);
                }
                "input" => {
                    let input = self.input()?;
                    rb.inputs.push(input);
                }
                "secret" => {
                    let secret = self.secret()?;
                    rb.secrets.push(secret);
                }
                "channel" => {
                    let channel = self.channel()?;
                    rb.channels.push(channel);
                }
                "template" => {
                    self.take_word();
                    let name = self.ident()?;
                    self.punct(b'=')?;
                    let text = self.string()?;
                    let span = self.span_from(item);
                    rb.templates.push(Template { name, text, span });
                }
                w @ ("title" | "owner" | "lock") => {
                    self.take_word();
                    let s = self.string()?;
                    let at = self.span_from(item);
                    let (slot, what) = match w {
                        "title" => (&mut rb.title, "title"),
                        "owner" => (&mut rb.owner, "owner"),
                        _ => (&mut rb.lock, "lock"),
                    };
                    once(slot, s, what, at, &mut seen, &mut rb.repeated_meta);
                }
                "tags" => {
                    self.take_word();
                    let raw = self.string_list_raw()?;
                    let at = self.span_from(item);
                    if tags_again(&mut rb, &mut seen, at) {
                        continue;
                    }
                    rb.tags = raw.into_iter().map(|r| self.str_of(r)).collect();
                }
                "on" => {
                    self.take_word();
                    let failure = match self.word() {
                        "failure" => true,
                        "success" => false,
                        _ => return None,
                    };
                    self.take_word();
                    self.punct(b'{')?;
                    let mut actions = Vec::new();
                    while self.peek() != Some(b'}') {
                        actions.push(self.action(false)?);
                    }
                    self.punct(b'}')?;
                    let h = Handler {
                        actions,
                        span: self.span_from(item),
                    };
                    if failure {
                        rb.on_failure.push(h);
                    } else {
                        rb.on_success.push(h);
                    }
                }
                "after" => {
                    self.take_word();
                    self.keyword("rollback")?;
                    self.keyword("verify")?;
                    let condition = self.condition()?;
                    self.keyword("within")?;
                    let within = self.duration()?;
                    let every = match self.keyword("every") {
                        Some(_) => Some(self.duration()?),
                        None => None,
                    };
                    let span = self.span_from(item);
                    rb.after_rollback.push(AfterRollback {
                        verify: Verify {
                            condition,
                            within,
                            every,
                            consecutive: None,
                            span,
                        },
                    });
                }
                _ => return None,
            }
        }
        self.punct(b'}')?;
        rb.span = self.span_from(start);
        Some(rb)
    }

    /// `"[" ~ (string ~ ("," ~ string)* ~ ","?)? ~ "]"`
    fn string_list_raw(&mut self) -> R<Vec<(usize, usize)>> {
        self.punct(b'[')?;
        let mut out = Vec::new();
        while self.peek() != Some(b']') {
            out.push(self.string_raw()?);
            if self.punct(b',').is_none() {
                break;
            }
        }
        self.punct(b']')?;
        Some(out)
    }

    fn input(&mut self) -> R<Input> {
        let start = self.pos;
        self.take_word();
        let name = self.ident()?;
        self.punct(b':')?;
        let ty = self.type_expr()?;
        let default = match self.punct(b'=') {
            Some(()) => Some(self.literal()?),
            None => None,
        };
        Some(Input {
            name,
            ty,
            default,
            span: self.span_from(start),
        })
    }

    fn type_expr(&mut self) -> R<Spanned<TypeExpr>> {
        let start = self.pos;
        let ty = match self.word() {
            "list" => {
                self.take_word();
                self.punct(b'<')?;
                let elem = self.type_expr()?;
                self.punct(b'>')?;
                TypeExpr::List(Box::new(elem))
            }
            "one_of" => {
                self.take_word();
                let raw = self.string_list_raw()?;
                TypeExpr::OneOf(raw.into_iter().map(|r| self.str_of(r)).collect())
            }
            w => {
                let ty = match w {
                    "string" => TypeExpr::String,
                    "int" => TypeExpr::Int,
                    "float" => TypeExpr::Float,
                    "bool" => TypeExpr::Bool,
                    "duration" => TypeExpr::Duration,
                    _ => return None,
                };
                self.take_word();
                ty
            }
        };
        Some(Spanned::new(ty, self.span_from(start)))
    }

    fn secret(&mut self) -> R<Secret> {
        let start = self.pos;
        self.take_word();
        let name = self.ident()?;
        self.punct(b'=')?;
        let env = match self.word() {
            "env" => true,
            "file" => false,
            _ => return None,
        };
        self.take_word();
        let value = self.string()?;
        let source = if env {
            SecretSource::Env(value)
        } else {
            SecretSource::File(value)
        };
        Some(Secret {
            name,
            source,
            span: self.span_from(start),
        })
    }

    fn target(&mut self) -> R<Target> {
        if self.peek() == Some(b'"') {
            Some(Target::Literal(self.string()?))
        } else {
            Some(Target::Name(self.ident()?))
        }
    }

    fn header(&mut self) -> R<Header> {
        let start = self.pos;
        self.keyword("header")?;
        let name = self.string()?;
        self.punct(b'=')?;
        let value = self.string()?;
        Some(Header {
            name,
            value,
            span: self.span_from(start),
        })
    }

    fn channel(&mut self) -> R<Channel> {
        let start = self.pos;
        self.take_word();
        let name = self.ident()?;
        self.punct(b'=')?;
        let kind = match self.word() {
            "slack" => {
                self.take_word();
                ChannelKind::Slack(self.target()?)
            }
            "webhook" => {
                self.take_word();
                let target = self.target()?;
                let mut headers = Vec::new();
                if self.punct(b'{').is_some() {
                    while self.peek() != Some(b'}') {
                        headers.push(self.header()?);
                    }
                    self.punct(b'}')?;
                }
                ChannelKind::Webhook { target, headers }
            }
            "console" => {
                self.take_word();
                ChannelKind::Console
            }
            _ => return None,
        };
        Some(Channel {
            name,
            kind,
            span: self.span_from(start),
        })
    }

    fn check(&mut self) -> R<Check> {
        let start = self.pos;
        self.take_word();
        let name = self.ident()?;
        self.punct(b'{')?;
        let probe_at = self.pos;
        let probe = match self.word() {
            "http" => Probe::Http(self.http()?),
            "promql" => {
                self.take_word();
                Probe::Promql(self.string()?)
            }
            "shell" => {
                self.take_word();
                Probe::Shell(self.string()?)
            }
            _ => return None,
        };
        let probe = Spanned::new(probe, self.span_from(probe_at));
        let mut expects = Vec::new();
        let mut on_no_data = None;
        loop {
            let clause = self.pos;
            match self.word() {
                "expect" => {
                    self.take_word();
                    expects.push(self.condition()?);
                }
                "on" => {
                    self.take_word();
                    self.keyword("no_data")?;
                    let v = match self.word() {
                        "fail" => NoData::Fail,
                        "pass" => NoData::Pass,
                        _ => return None,
                    };
                    self.take_word();
                    on_no_data = Some(Spanned::new(v, self.span_from(clause)));
                }
                _ => break,
            }
        }
        self.punct(b'}')?;
        Some(Check {
            name,
            probe,
            expects,
            on_no_data,
            span: self.span_from(start),
        })
    }

    // ---- steps -------------------------------------------------------------

    /// Built in its box: a step is over 300 bytes, moved into a box it
    /// was copied once more per step.
    fn step(&mut self) -> R<Box<Step>> {
        let start = self.pos;
        self.keyword("step")?;
        let name = self.ident()?;
        self.punct(b'{')?;
        let mut step = Box::new(Step::new(name, Span::default()));
        let mut seen = Vec::new();
        loop {
            let clause = self.pos;
            match self.word() {
                "run" | "http" | "notify" | "approve" | "wait" | "for" => {
                    let a = self.action(true)?;
                    let at = self.span_from(clause);
                    self.b.step_action(&mut step, a, at, &mut seen);
                }
                "undo" => {
                    self.take_word();
                    // `undo "cmd"` is short for `undo run "cmd"`.
                    let undo = if self.peek() == Some(b'"') {
                        let at = self.pos;
                        let command = self.string()?;
                        Spanned::new(
                            Action::Run {
                                command,
                                effect: None,
                            },
                            self.span_from(at),
                        )
                    } else {
                        self.action(true)?
                    };
                    let at = self.span_from(clause);
                    once(
                        &mut step.undo,
                        Box::new(undo),
                        "undo",
                        at,
                        &mut seen,
                        &mut step.repeated,
                    );
                }
                "when" => {
                    self.take_word();
                    let e = self.condition()?;
                    let at = self.span_from(clause);
                    once(
                        &mut step.when,
                        Box::new(e),
                        "when",
                        at,
                        &mut seen,
                        &mut step.repeated,
                    );
                }
                "timeout" => {
                    self.take_word();
                    let d = self.duration()?;
                    let at = self.span_from(clause);
                    once(
                        &mut step.timeout,
                        d,
                        "timeout",
                        at,
                        &mut seen,
                        &mut step.repeated,
                    );
                }
                "retry" => {
                    self.take_word();
                    let attempts = self.int()?;
                    let mut backoff = None;
                    let mut exponential = false;
                    if self.keyword("backoff").is_some() {
                        backoff = Some(self.duration()?);
                        exponential = self.keyword("exponential").is_some();
                    }
                    let at = self.span_from(clause);
                    let retry = Retry {
                        attempts,
                        backoff,
                        exponential,
                        span: at,
                    };
                    once(
                        &mut step.retry,
                        Box::new(retry),
                        "retry",
                        at,
                        &mut seen,
                        &mut step.repeated,
                    );
                }
                "verify" => {
                    self.take_word();
                    let condition = self.condition()?;
                    self.keyword("within")?;
                    let within = self.duration()?;
                    self.keyword("every")?;
                    let every = Some(self.duration()?);
                    let consecutive = match self.keyword("consecutive") {
                        Some(_) => Some(self.int()?),
                        None => None,
                    };
                    let at = self.span_from(clause);
                    let v = Verify {
                        condition,
                        within,
                        every,
                        consecutive,
                        span: at,
                    };
                    once(
                        &mut step.verify,
                        Box::new(v),
                        "verify",
                        at,
                        &mut seen,
                        &mut step.repeated,
                    );
                }
                "capture" => {
                    self.take_word();
                    let format = match self.word() {
                        "json" => CaptureFormat::Json,
                        "text" => CaptureFormat::Text,
                        _ => return None,
                    };
                    self.take_word();
                    self.keyword("as")?;
                    let name = self.ident()?;
                    let at = self.span_from(clause);
                    let c = Capture {
                        format,
                        name,
                        span: at,
                    };
                    once(
                        &mut step.capture,
                        Box::new(c),
                        "capture",
                        at,
                        &mut seen,
                        &mut step.repeated,
                    );
                }
                "on_error" => {
                    self.take_word();
                    let cont = match self.word() {
                        "continue" => true,
                        "fail" => false,
                        _ => return None,
                    };
                    self.take_word();
                    let at = self.span_from(clause);
                    once(
                        &mut step.continue_on_error,
                        Spanned::new(cont, at),
                        "on_error",
                        at,
                        &mut seen,
                        &mut step.repeated,
                    );
                }
                _ => break,
            }
        }
        self.punct(b'}')?;
        step.span = self.span_from(start);
        Some(step)
    }

    fn effect(&mut self) -> Option<Spanned<EffectMark>> {
        let mark = match self.word() {
            "readonly" => EffectMark::Readonly,
            "irreversible" => EffectMark::Irreversible,
            _ => return None,
        };
        Some(Spanned::new(mark, self.take_word()))
    }

    /// An action; `for` only where a step's action may be a fan-out.
    fn action(&mut self, allow_for: bool) -> R<Spanned<Action>> {
        let start = self.pos;
        let action = match self.word() {
            "run" => {
                self.take_word();
                let command = self.string()?;
                let effect = self.effect();
                Action::Run { command, effect }
            }
            "http" => Action::Http(Box::new(self.http()?)),
            "notify" => {
                self.take_word();
                let channel = self.ident()?;
                let message = if self.peek() == Some(b'"') {
                    NotifyMessage::Inline(self.string()?)
                } else {
                    NotifyMessage::Template(self.ident()?)
                };
                let mut args = Vec::new();
                if self.punct(b'{').is_some() {
                    while self.peek() != Some(b'}') {
                        let name = self.ident()?;
                        self.punct(b':')?;
                        let value = self.string()?;
                        args.push(NotifyArg { name, value });
                        if self.punct(b',').is_none() {
                            break;
                        }
                    }
                    self.punct(b'}')?;
                }
                Action::Notify {
                    channel,
                    message,
                    args,
                }
            }
            "approve" => {
                self.take_word();
                let message = self.string()?;
                let timeout = match self.keyword("timeout") {
                    Some(_) => Some(self.duration()?),
                    None => None,
                };
                Action::Approve { message, timeout }
            }
            "wait" => {
                self.take_word();
                Action::Wait(self.duration()?)
            }
            "for" if allow_for => {
                self.take_word();
                let var = self.ident()?;
                self.keyword("in")?;
                self.b.begin_condition();
                let (list, _) = self.operand()?;
                self.b.report_too_deep();
                let parallel = match self.keyword("parallel") {
                    Some(_) => Some(self.int()?),
                    None => None,
                };
                let max_failures = match self.keyword("max_failures") {
                    Some(_) => Some(self.int()?),
                    None => None,
                };
                self.punct(b'{')?;
                let body = self.action(false)?;
                self.punct(b'}')?;
                Action::For {
                    var,
                    list: Box::new(list),
                    parallel,
                    max_failures,
                    body: Box::new(body),
                }
            }
            _ => return None,
        };
        Some(Spanned::new(action, self.span_from(start)))
    }

    fn http(&mut self) -> R<HttpRequest> {
        self.keyword("http")?;
        let word = self.word();
        const METHODS: &[&str] = &["get", "head", "post", "put", "patch", "delete"];
        if !METHODS.iter().any(|m| word.eq_ignore_ascii_case(m)) {
            return None;
        }
        let method = Spanned::new(word.to_ascii_uppercase(), self.take_word());
        let url = self.string()?;
        let mut req = HttpRequest {
            method,
            url,
            timeout: None,
            headers: Vec::new(),
            body: None,
            effect: None,
        };
        self.request_options(&mut req)?;
        req.effect = self.effect();
        if self.punct(b'{').is_some() {
            self.request_options(&mut req)?;
            self.punct(b'}')?;
        }
        Some(req)
    }

    /// `(request_timeout | header | request_body)*`
    fn request_options(&mut self, req: &mut HttpRequest) -> R<()> {
        loop {
            match self.word() {
                "timeout" => {
                    self.take_word();
                    req.timeout = Some(self.duration()?);
                }
                "header" => {
                    let h = self.header()?;
                    req.headers.push(h);
                }
                "body" => {
                    self.take_word();
                    let kind = match self.word() {
                        "json" => {
                            self.take_word();
                            BodyKind::Json
                        }
                        "text" => {
                            self.take_word();
                            BodyKind::Text
                        }
                        _ => BodyKind::Text,
                    };
                    let text = self.string()?;
                    req.body = Some((kind, text));
                }
                _ => return Some(()),
            }
        }
    }

    // ---- conditions --------------------------------------------------------

    fn condition(&mut self) -> R<Expr> {
        self.b.begin_condition();
        let (e, _) = self.expr()?;
        self.b.report_too_deep();
        Some(e)
    }

    /// `prefix* ~ operand ~ (infix ~ prefix* ~ operand)*`
    fn expr(&mut self) -> R<(Expr, usize)> {
        let mut parts = ExprParts::default();
        loop {
            while self.word() == "not" {
                let at = self.take_word();
                parts.nots.push(at);
            }
            let (e, depth) = self.operand()?;
            self.b.push_operand(&mut parts, e, depth);
            let Some((op, len)) = self.infix() else {
                break;
            };
            let at = self.pos;
            self.take(at + len);
            parts.ops.push((op, Span::new(at, at + len)));
        }
        Some(self.b.finish_expr(parts))
    }

    /// The operator at the cursor and its length in bytes.
    fn infix(&self) -> Option<(BinOp, usize)> {
        let rest = &self.bytes[self.pos..];
        let two = |s: &[u8]| rest.starts_with(s);
        if two(b"==") {
            return Some((BinOp::Eq, 2));
        }
        if two(b"!=") {
            return Some((BinOp::Ne, 2));
        }
        if two(b"<=") {
            return Some((BinOp::Le, 2));
        }
        if two(b">=") {
            return Some((BinOp::Ge, 2));
        }
        match rest.first() {
            Some(b'<') => return Some((BinOp::Lt, 1)),
            Some(b'>') => return Some((BinOp::Gt, 1)),
            _ => {}
        }
        let word = self.word();
        let op = match word {
            "and" => BinOp::And,
            "or" => BinOp::Or,
            "in" => BinOp::In,
            "contains" => BinOp::Contains,
            "matches" => BinOp::Matches,
            _ => return None,
        };
        Some((op, word.len()))
    }

    /// `"(" ~ expr ~ ")" | literal | path`
    fn operand(&mut self) -> R<(Expr, usize)> {
        let start = self.pos;
        match self.peek()? {
            b'(' => {
                self.take(start + 1);
                let (mut e, depth) = self.expr()?;
                self.punct(b')')?;
                e.span = self.span_from(start);
                Some((e, depth))
            }
            b'[' | b'"' | b'-' | b'0'..=b'9' => {
                let lit = self.literal()?;
                let at = self.span_from(start);
                Some(self.b.literal_operand(lit, at))
            }
            _ => {
                let word = self.word();
                if word == "true" || word == "false" {
                    let lit = self.literal()?;
                    let at = self.span_from(start);
                    return Some(self.b.literal_operand(lit, at));
                }
                if RESERVED.contains(&word) {
                    return None;
                }
                self.path()
            }
        }
    }

    /// `ident ~ ("." ~ ident)*`, with no space inside.
    fn path(&mut self) -> R<(Expr, usize)> {
        let b = self.bytes;
        let start = self.pos;
        if !b.get(start).copied().is_some_and(is_ident_start) {
            return None;
        }
        let mut parts = Vec::new();
        let mut at = start;
        loop {
            let end = self.word_end(at);
            parts.push(Spanned::new(
                self.text[at..end].to_string(),
                Span::new(at, end),
            ));
            at = end;
            if b.get(at) == Some(&b'.') && b.get(at + 1).copied().is_some_and(is_ident_start) {
                at += 1;
            } else {
                break;
            }
        }
        self.take(at);
        Some((
            Expr {
                kind: ExprKind::Path(parts),
                span: Span::new(start, at),
            },
            1,
        ))
    }

    /// `list_lit | string | bool_lit | number`
    fn literal(&mut self) -> R<Literal> {
        let start = self.pos;
        let kind = match self.peek()? {
            b'[' => {
                self.take(start + 1);
                let mut items = Vec::new();
                while self.peek() != Some(b']') {
                    items.push(self.literal()?);
                    if self.punct(b',').is_none() {
                        break;
                    }
                }
                self.punct(b']')?;
                LiteralKind::List(items)
            }
            b'"' => {
                let s = self.string()?;
                return Some(Literal {
                    kind: LiteralKind::String(s.value.clone()),
                    span: self.span_from(start),
                    text: Some(s),
                });
            }
            b'-' | b'0'..=b'9' => {
                let b = self.bytes;
                let mut i = start;
                if b[i] == b'-' {
                    i += 1;
                }
                let digits = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i == digits {
                    return None;
                }
                if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                let end = self.word_end(i);
                self.take(end);
                let at = Span::new(start, end);
                self.b.number(&self.text[start..end], at)
            }
            _ => {
                let v = match self.word() {
                    "true" => true,
                    "false" => false,
                    _ => return None,
                };
                self.take_word();
                LiteralKind::Bool(v)
            }
        };
        Some(Literal {
            kind,
            span: self.span_from(start),
            text: None,
        })
    }
}
