//! pest pairs -> AST. The grammar has already accepted the shape; this pass
//! converts literals (numbers, durations, escapes) and records clauses that
//! are written twice, collecting every error instead of stopping at one.

use super::literals::literal_end;
use super::strings;
use super::Rule;
use crate::ast::*;
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use crate::span::{Span, Spanned};
use pest::iterators::Pair;
use std::time::Duration;

type P<'i> = Pair<'i, Rule>;

/// Deepest condition tree accepted (operators, `not`s, parentheses and
/// nested list literals all count). Well within the stack of every pass
/// and serde_json's recursion limit when a graph is read back.
pub(super) const MAX_EXPR_DEPTH: usize = 64;

/// The tree builder's state: the conversion errors found so far.
#[derive(Default)]
struct Builder<'v> {
    errors: Vec<Diag>,
    /// Where the condition being built first grew too deep.
    too_deep: Option<Span>,
    /// Inputs' values for durations and counts that name an input.
    slot_values: Option<&'v SlotValues>,
    slots: Vec<InputSlot>,
}

/// Where a body is written: what it is (for diagnostics), how deep, and
/// whether inside a `for` body (which cannot hold another `for`).
#[derive(Clone, Copy)]
struct Nest {
    outer: &'static str,
    /// Blocks around the body (1: a top-level block's own body).
    depth: usize,
    in_for: bool,
}

impl Nest {
    /// A top-level block: not yet inside anything.
    const TOP: Nest = Nest {
        outer: "the runbook",
        depth: 0,
        in_for: false,
    };

    /// The body of a block written where `self` says.
    fn inside(self, outer: &'static str, is_for: bool) -> Nest {
        Nest {
            outer,
            depth: self.depth + 1,
            in_for: self.in_for || is_for,
        }
    }
}

/// The span of a block's keyword (its first child), else of the block.
fn keyword_span(p: &P<'_>) -> Span {
    children(p.clone())
        .next()
        .map_or_else(|| span(p), |k| span(&k))
}

/// The children of a pair, comments left out. The grammar keeps comments
/// in the parse tree (a formatter or a language server reads them there);
/// the AST has no place for them, so every walk below goes through here
/// and never sees one: not between clauses, not inside a condition, a list
/// or a type.
fn children(p: P<'_>) -> impl Iterator<Item = P<'_>> {
    p.into_inner().filter(|c| c.as_rule() != Rule::COMMENT)
}

pub(super) fn file(
    pair: P<'_>,
    slot_values: Option<&SlotValues>,
) -> Result<(Runbook, Vec<Diag>), Vec<Diag>> {
    let mut b = Builder {
        slot_values,
        ..Builder::default()
    };
    let rb = children(pair)
        .find(|p| p.as_rule() == Rule::runbook)
        .map(|p| b.runbook(p));
    match rb {
        Some(mut rb) => {
            rb.input_slots = std::mem::take(&mut b.slots);
            Ok((rb, b.errors))
        }
        None => Err(vec![Diag::error(Code::Syntax, "no runbook block found")]),
    }
}

/// The span of a pair without the whitespace and comments pest skips after
/// its last token (it keeps them when the rule ends in an optional part that
/// did not match), so that labels end where the code does.
fn span(p: &P<'_>) -> Span {
    let sp = p.as_span();
    Span::new(sp.start(), sp.start() + content_len(sp.as_str()))
}

/// Length of `s` up to the end of its last token.
fn content_len(s: &str) -> usize {
    if !s.ends_with(|c: char| c.is_ascii_whitespace()) {
        return s.len();
    }
    let b = s.as_bytes();
    // Without a `#`, what follows the last token is whitespace only (a
    // string cannot end in it: it ends with its quote), so trimming is
    // enough. The scan below walks the whole pair, and since issue 12 every
    // operand ends in skipped whitespace (`postfix*` after it): scanning
    // each one from its start cost 3 M of `check steps-1000`'s 196 M
    // instructions (docs/performance.md, issue 12).
    if memchr::memchr(b'#', b).is_none() {
        return s.trim_end_matches(|c: char| c.is_ascii_whitespace()).len();
    }
    let mut i = 0;
    let mut end = 0;
    while i < b.len() {
        if let Some(after) = literal_end(b, i) {
            // A string is code, a comment is not.
            if b[i] == b'"' {
                end = after;
            }
            i = after;
        } else {
            if !b[i].is_ascii_whitespace() {
                end = i + 1;
            }
            i += 1;
        }
    }
    end
}

fn ident(p: P<'_>) -> Ident {
    Spanned::new(p.as_str().to_string(), span(&p))
}

/// Whether `tags` written at `at` repeat tags already given (recorded in
/// `repeated_meta`; the repetition is then not read at all). Tags after an
/// empty `tags []` are not a repetition.
fn tags_again(rb: &mut Runbook, seen: &mut Vec<(&'static str, Span)>, at: Span) -> bool {
    if !rb.tags.is_empty() {
        if let Some((_, first)) = seen.iter().find(|(w, _)| *w == "tags") {
            rb.repeated_meta.push(("tags", *first, at));
        }
        return true;
    }
    seen.push(("tags", at));
    false
}

/// Sets a clause that may appear once, remembering a repetition.
fn once<T>(
    slot: &mut Option<T>,
    value: T,
    what: &'static str,
    at: Span,
    seen: &mut Vec<(&'static str, Span)>,
    repeated: &mut Vec<(&'static str, Span, Span)>,
) {
    if slot.is_some() {
        if let Some((_, first)) = seen.iter().find(|(w, _)| *w == what) {
            repeated.push((what, *first, at));
        }
        return;
    }
    seen.push((what, at));
    *slot = Some(value);
}

impl Builder<'_> {
    /// A duration or count written as an input's name: its value if the
    /// parser was given it (else `None`), the slot recorded.
    fn slot(&mut self, p: &P<'_>, kind: SlotKind) -> Option<SlotValue> {
        let name = p.as_str();
        let value = self.slot_values.and_then(|v| v.get(name)).copied();
        let bound = matches!(
            (kind, value),
            (SlotKind::Duration, Some(SlotValue::Duration(_)))
                | (SlotKind::Count, Some(SlotValue::Int(_)))
        );
        self.slots.push(InputSlot {
            input: Spanned::new(name.to_string(), span(p)),
            kind,
            bound,
        });
        value.filter(|_| bound)
    }

    fn str(&mut self, p: P<'_>) -> Str {
        // `string` wraps one of the two string rules.
        let inner = if p.as_rule() == Rule::string {
            children(p).next()
        } else {
            Some(p)
        };
        match inner {
            Some(p) => strings::string(p.as_str(), p.as_span().start(), &mut self.errors),
            None => Str {
                value: String::new(),
                span: Span::default(),
                offsets: vec![],
            },
        }
    }

    fn duration(&mut self, p: P<'_>) -> Spanned<Duration> {
        let (text, sp) = (p.as_str(), span(&p));
        if let Some(r) = children(p).find(|c| c.as_rule() == Rule::input_ref) {
            return match self.slot(&r, SlotKind::Duration) {
                Some(SlotValue::Duration(d)) => Spanned::new(d, sp),
                _ => Spanned::new(Duration::ZERO, sp),
            };
        }
        match parse_duration(text) {
            Ok(d) => Spanned::new(d, sp),
            Err(why) => {
                self.errors.push(
                    Diag::error(Code::InvalidDuration, format!("invalid duration `{text}`"))
                        .label(sp, why)
                        .help("write a whole number and a unit: `800ms`, `30s`, `5m`, `2h`, `1d`, or a sum like `1h30m`"),
                );
                Spanned::new(Duration::ZERO, sp)
            }
        }
    }

    fn int(&mut self, p: P<'_>) -> Spanned<u64> {
        let (text, sp) = (p.as_str(), span(&p));
        if let Some(r) = children(p).find(|c| c.as_rule() == Rule::input_ref) {
            return match self.slot(&r, SlotKind::Count) {
                Some(SlotValue::Int(n)) => match u64::try_from(n) {
                    Ok(n) => Spanned::new(n, sp),
                    Err(_) => {
                        self.errors.push(
                            Diag::error(
                                Code::InvalidNumber,
                                format!("input `{text}` is {n}: a count cannot be negative"),
                            )
                            .label(sp, format!("`{text}` is {n} in this run")),
                        );
                        Spanned::new(0, sp)
                    }
                },
                _ => Spanned::new(0, sp),
            };
        }
        match text.parse::<u64>() {
            Ok(n) => Spanned::new(n, sp),
            Err(_) => {
                self.errors.push(
                    Diag::error(Code::InvalidNumber, format!("`{text}` is too large"))
                        .label(sp, "does not fit in 64 bits"),
                );
                Spanned::new(0, sp)
            }
        }
    }

    fn runbook(&mut self, p: P<'_>) -> Runbook {
        let sp = span(&p);
        let mut inner = children(p);
        inner.next(); // kw_runbook
        let name = inner
            .next()
            .map(ident)
            .unwrap_or_else(|| Spanned::new(String::new(), sp));
        let mut rb = Runbook::new(name, sp);
        let mut seen = Vec::new();
        for item in inner {
            let isp = span(&item);
            match item.as_rule() {
                Rule::title_decl => {
                    let s = self.last_str(item);
                    once(
                        &mut rb.title,
                        s,
                        "title",
                        isp,
                        &mut seen,
                        &mut rb.repeated_meta,
                    );
                }
                Rule::owner_decl => {
                    let s = self.last_str(item);
                    once(
                        &mut rb.owner,
                        s,
                        "owner",
                        isp,
                        &mut seen,
                        &mut rb.repeated_meta,
                    );
                }
                Rule::lock_decl => {
                    let s = self.last_str(item);
                    once(
                        &mut rb.lock,
                        s,
                        "lock",
                        isp,
                        &mut seen,
                        &mut rb.repeated_meta,
                    );
                }
                Rule::tags_decl => {
                    if tags_again(&mut rb, &mut seen, isp) {
                        continue;
                    }
                    if let Some(list) = children(item).find(|p| p.as_rule() == Rule::string_list) {
                        rb.tags = children(list).map(|s| self.str(s)).collect();
                    }
                }
                Rule::input_decl => rb.inputs.push(self.input(item)),
                Rule::secret_decl => rb.secrets.push(self.secret(item)),
                Rule::channel_decl => rb.channels.push(self.channel(item)),
                Rule::template_decl => {
                    let mut it = children(item).skip(1);
                    let name = it.next().map(ident);
                    let text = it.next().map(|s| self.str(s));
                    if let (Some(name), Some(text)) = (name, text) {
                        rb.templates.push(Template {
                            name,
                            text,
                            span: isp,
                        });
                    }
                }
                Rule::check_decl => rb.checks.push(self.check(item)),
                Rule::step_decl => rb.body.push(Block::Step(Box::new(self.step(item)))),
                Rule::parallel_block => {
                    let steps = self.step_body(item, "a `parallel` block");
                    rb.body.push(Block::Parallel { steps, span: isp });
                }
                Rule::if_block => rb.body.push(self.if_block(item, isp, Nest::TOP)),
                Rule::try_block => rb.body.push(self.try_block(item, isp)),
                Rule::for_block => {
                    if let Some(f) = self.for_block(item, isp, Nest::TOP) {
                        rb.body.push(Block::For(Box::new(f)));
                    }
                }
                Rule::always_block => {
                    let steps = self.step_body(item, "`always`");
                    rb.always.push(Always { steps, span: isp });
                }
                Rule::handler => {
                    let mut kind = None;
                    let mut actions = Vec::new();
                    for part in children(item) {
                        match part.as_rule() {
                            Rule::handler_kind => kind = Some(part.as_str().trim().to_string()),
                            Rule::kw_on => {}
                            _ => {
                                if let Some(a) = self.action_of(part) {
                                    actions.push(a);
                                }
                            }
                        }
                    }
                    let h = Handler { actions, span: isp };
                    if kind.as_deref() == Some("failure") {
                        rb.on_failure.push(h);
                    } else {
                        rb.on_success.push(h);
                    }
                }
                Rule::after_rollback => {
                    let verify = self.verify_parts(item, isp);
                    rb.after_rollback.push(AfterRollback { verify });
                }
                Rule::status_update => {
                    if let Some(u) = self.status_update(item, isp) {
                        rb.status_updates.push(u);
                    }
                }
                _ => {}
            }
        }
        rb
    }

    fn last_str(&mut self, p: P<'_>) -> Str {
        let s = children(p).find(|p| p.as_rule() == Rule::string);
        match s {
            Some(s) => self.str(s),
            None => Str {
                value: String::new(),
                span: Span::default(),
                offsets: vec![],
            },
        }
    }

    fn input(&mut self, p: P<'_>) -> Input {
        let sp = span(&p);
        let mut name = Spanned::new(String::new(), sp);
        let mut ty = Spanned::new(TypeExpr::String, sp);
        let mut default = None;
        for part in children(p) {
            match part.as_rule() {
                Rule::ident => name = ident(part),
                Rule::type_expr => ty = self.type_expr(part),
                Rule::literal => default = Some(self.literal(part)),
                _ => {}
            }
        }
        Input {
            name,
            ty,
            default,
            span: sp,
        }
    }

    fn type_expr(&mut self, p: P<'_>) -> Spanned<TypeExpr> {
        let sp = span(&p);
        let Some(inner) = children(p).next() else {
            return Spanned::new(TypeExpr::String, sp);
        };
        let ty = match inner.as_rule() {
            Rule::scalar_type => match inner.as_str() {
                "int" => TypeExpr::Int,
                "float" => TypeExpr::Float,
                "bool" => TypeExpr::Bool,
                "duration" => TypeExpr::Duration,
                _ => TypeExpr::String,
            },
            Rule::list_type => {
                let elem = children(inner)
                    .find(|p| p.as_rule() == Rule::type_expr)
                    .map(|p| self.type_expr(p))
                    .unwrap_or_else(|| Spanned::new(TypeExpr::String, sp));
                TypeExpr::List(Box::new(elem))
            }
            Rule::one_of_type => {
                let values = children(inner)
                    .filter(|p| p.as_rule() == Rule::string_list)
                    .flat_map(children)
                    .map(|s| self.str(s))
                    .collect();
                TypeExpr::OneOf(values)
            }
            _ => TypeExpr::String,
        };
        Spanned::new(ty, sp)
    }

    fn secret(&mut self, p: P<'_>) -> Secret {
        let sp = span(&p);
        let mut name = Spanned::new(String::new(), sp);
        let mut source = None;
        for part in children(p) {
            match part.as_rule() {
                Rule::ident => name = ident(part),
                Rule::secret_source => {
                    let mut it = children(part);
                    let kind = it.next().map(|k| k.as_rule());
                    let value = it.next().map(|s| self.str(s));
                    if let Some(value) = value {
                        source = Some(if kind == Some(Rule::kw_env) {
                            SecretSource::Env(value)
                        } else {
                            SecretSource::File(value)
                        });
                    }
                }
                _ => {}
            }
        }
        let source = source.unwrap_or_else(|| {
            SecretSource::Env(Str {
                value: String::new(),
                span: sp,
                offsets: vec![],
            })
        });
        Secret {
            name,
            source,
            span: sp,
        }
    }

    fn target(&mut self, p: P<'_>) -> Option<Target> {
        let inner = children(p).next()?;
        Some(match inner.as_rule() {
            Rule::ident => Target::Name(ident(inner)),
            _ => Target::Literal(self.str(inner)),
        })
    }

    fn header(&mut self, p: P<'_>) -> Header {
        let sp = span(&p);
        let mut strs = children(p).filter(|p| p.as_rule() == Rule::string);
        let name = strs.next().map(|s| self.str(s));
        let value = strs.next().map(|s| self.str(s));
        let empty = Str {
            value: String::new(),
            span: sp,
            offsets: vec![],
        };
        Header {
            name: name.unwrap_or_else(|| empty.clone()),
            value: value.unwrap_or(empty),
            span: sp,
        }
    }

    fn channel(&mut self, p: P<'_>) -> Channel {
        let sp = span(&p);
        let mut name = Spanned::new(String::new(), sp);
        let mut kind = ChannelKind::Console;
        for part in children(p) {
            match part.as_rule() {
                Rule::ident => name = ident(part),
                Rule::slack_channel => {
                    if let Some(t) = children(part).find(|p| p.as_rule() == Rule::target) {
                        if let Some(t) = self.target(t) {
                            kind = ChannelKind::Slack(t);
                        }
                    }
                }
                Rule::webhook_channel => {
                    let mut target = None;
                    let mut headers = Vec::new();
                    for w in children(part) {
                        match w.as_rule() {
                            Rule::target => target = self.target(w),
                            Rule::header_block => {
                                headers = children(w).map(|h| self.header(h)).collect();
                            }
                            _ => {}
                        }
                    }
                    if let Some(target) = target {
                        kind = ChannelKind::Webhook { target, headers };
                    }
                }
                _ => {}
            }
        }
        Channel {
            name,
            kind,
            span: sp,
        }
    }

    fn check(&mut self, p: P<'_>) -> Check {
        let sp = span(&p);
        let mut name = Spanned::new(String::new(), sp);
        let mut probe = None;
        let mut expects = Vec::new();
        let mut on_no_data = None;
        for part in children(p) {
            let psp = span(&part);
            match part.as_rule() {
                Rule::ident => name = ident(part),
                Rule::http_action => probe = Some(Spanned::new(Probe::Http(self.http(part)), psp)),
                Rule::promql_probe => {
                    let q = self.last_str(part);
                    probe = Some(Spanned::new(Probe::Promql(q), psp));
                }
                Rule::shell_probe => {
                    let c = self.last_str(part);
                    probe = Some(Spanned::new(Probe::Shell(c), psp));
                }
                Rule::expect_clause => {
                    if let Some(e) = children(part).find(|p| p.as_rule() == Rule::expr) {
                        expects.push(self.condition(e));
                    }
                }
                Rule::no_data_clause => {
                    let pass = children(part).any(|p| p.as_rule() == Rule::kw_pass);
                    let v = if pass { NoData::Pass } else { NoData::Fail };
                    on_no_data = Some(Spanned::new(v, psp));
                }
                _ => {}
            }
        }
        let probe = probe.unwrap_or_else(|| {
            Spanned::new(
                Probe::Shell(Str {
                    value: String::new(),
                    span: sp,
                    offsets: vec![],
                }),
                sp,
            )
        });
        Check {
            name,
            probe,
            expects,
            on_no_data,
            span: sp,
        }
    }

    fn effect(p: P<'_>) -> Option<Spanned<EffectMark>> {
        let sp = span(&p);
        let inner = children(p).next()?;
        let e = if inner.as_rule() == Rule::kw_readonly {
            EffectMark::Readonly
        } else {
            EffectMark::Irreversible
        };
        Some(Spanned::new(e, sp))
    }

    fn http(&mut self, p: P<'_>) -> HttpRequest {
        let sp = span(&p);
        let mut req = HttpRequest {
            method: Spanned::new("GET".into(), sp),
            url: Str {
                value: String::new(),
                span: sp,
                offsets: vec![],
            },
            timeout: None,
            headers: Vec::new(),
            body: None,
            effect: None,
        };
        for part in children(p) {
            match part.as_rule() {
                Rule::http_method => {
                    req.method = Spanned::new(part.as_str().to_ascii_uppercase(), span(&part))
                }
                Rule::string => req.url = self.str(part),
                Rule::effect => req.effect = Self::effect(part),
                Rule::request_block => {
                    for opt in children(part) {
                        self.request_option(opt, &mut req);
                    }
                }
                _ => self.request_option(part, &mut req),
            }
        }
        req
    }

    fn request_option(&mut self, p: P<'_>, req: &mut HttpRequest) {
        match p.as_rule() {
            Rule::request_timeout => {
                if let Some(d) = children(p).find(|p| p.as_rule() == Rule::duration) {
                    req.timeout = Some(self.duration(d));
                }
            }
            Rule::header => req.headers.push(self.header(p)),
            Rule::request_body => {
                let mut kind = BodyKind::Text;
                let mut text = None;
                for part in children(p) {
                    match part.as_rule() {
                        Rule::body_kind if part.as_str() == "json" => kind = BodyKind::Json,
                        Rule::string => text = Some(self.str(part)),
                        _ => {}
                    }
                }
                if let Some(text) = text {
                    req.body = Some((kind, text));
                }
            }
            _ => {}
        }
    }

    /// An `action` pair or one of the single-action rules.
    fn action_of(&mut self, p: P<'_>) -> Option<Spanned<Action>> {
        let sp = span(&p);
        let p = if p.as_rule() == Rule::action {
            children(p).next()?
        } else {
            p
        };
        let action = match p.as_rule() {
            Rule::run_action => {
                let mut command = None;
                let mut effect = None;
                for part in children(p) {
                    match part.as_rule() {
                        Rule::string => command = Some(self.str(part)),
                        Rule::effect => effect = Self::effect(part),
                        _ => {}
                    }
                }
                Action::Run {
                    command: command?,
                    effect,
                }
            }
            Rule::http_action => Action::Http(Box::new(self.http(p))),
            Rule::notify_action => {
                let mut it = children(p).skip(1);
                let channel = ident(it.next()?);
                let msg = it.next()?;
                let message = if msg.as_rule() == Rule::ident {
                    NotifyMessage::Template(ident(msg))
                } else {
                    NotifyMessage::Inline(self.str(msg))
                };
                let mut args = Vec::new();
                if let Some(a) = it.next() {
                    for arg in children(a) {
                        let mut parts = children(arg);
                        let name = parts.next().map(ident);
                        let value = parts.next().map(|s| self.str(s));
                        if let (Some(name), Some(value)) = (name, value) {
                            args.push(NotifyArg { name, value });
                        }
                    }
                }
                Action::Notify {
                    channel,
                    message,
                    args,
                }
            }
            Rule::approve_action => {
                let mut message = None;
                let mut timeout = None;
                let mut by_other = false;
                for part in children(p) {
                    match part.as_rule() {
                        Rule::string => message = Some(self.str(part)),
                        Rule::duration => timeout = Some(self.duration(part)),
                        Rule::approve_by_other => by_other = true,
                        _ => {}
                    }
                }
                Action::Approve {
                    message: message?,
                    timeout,
                    by_other,
                }
            }
            Rule::wait_action => {
                let d = children(p).find(|p| p.as_rule() == Rule::duration)?;
                Action::Wait(self.duration(d))
            }
            Rule::escalate_action => {
                let s = children(p).find(|p| p.as_rule() == Rule::string)?;
                Action::Escalate(self.str(s))
            }
            Rule::for_action => {
                let mut var = None;
                let mut list = None;
                let mut parallel = None;
                let mut max_failures = None;
                let mut body = None;
                for part in children(p) {
                    match part.as_rule() {
                        Rule::ident => var = Some(ident(part)),
                        Rule::operand => list = Some(self.top_operand(part)),
                        Rule::for_parallel => {
                            if let Some(n) = children(part).find(|p| p.as_rule() == Rule::int) {
                                parallel = Some(self.int(n));
                            }
                        }
                        Rule::for_max_failures => {
                            if let Some(n) = children(part).find(|p| p.as_rule() == Rule::int) {
                                max_failures = Some(self.int(n));
                            }
                        }
                        Rule::kw_for | Rule::kw_in => {}
                        _ => body = self.action_of(part),
                    }
                }
                Action::For {
                    var: var?,
                    list: Box::new(list?),
                    parallel,
                    max_failures,
                    body: Box::new(body?),
                }
            }
            _ => return None,
        };
        Some(Spanned::new(action, sp))
    }

    /// A step holds one action; an `approve` written beside it is a gate
    /// that must be granted before the action runs.
    fn step_action(
        &mut self,
        step: &mut Step,
        a: Spanned<Action>,
        at: Span,
        seen: &mut Vec<(&'static str, Span)>,
    ) {
        let is_approve = matches!(a.node, Action::Approve { .. });
        let current_is_approve = matches!(
            step.action.as_ref().map(|x| &x.node),
            Some(Action::Approve { .. })
        );
        if step.approval.is_none() && step.action.is_some() && is_approve && !current_is_approve {
            step.approval = Some(Box::new(a));
        } else if step.approval.is_none() && current_is_approve && !is_approve {
            step.approval = step.action.take().map(Box::new);
            step.action = Some(a);
        } else {
            once(&mut step.action, a, "action", at, seen, &mut step.repeated);
        }
    }

    /// `if C { body } else if C { body } else { body }`: each arm with its
    /// condition and body (`nest`: where the block itself is written).
    fn if_block(&mut self, p: P<'_>, sp: Span, nest: Nest) -> Block {
        let inner = nest.inside("an `if` arm", false);
        let mut arms = vec![self.if_arm(p.clone(), span(&p), inner)];
        for part in children(p) {
            if matches!(part.as_rule(), Rule::else_if | Rule::else_arm) {
                arms.push(self.if_arm(part.clone(), span(&part), inner));
            }
        }
        Block::If { arms, span: sp }
    }

    /// One arm of an `if`: its condition (none for `else`) and its body.
    fn if_arm(&mut self, p: P<'_>, sp: Span, nest: Nest) -> IfArm {
        let condition = children(p.clone())
            .find(|c| c.as_rule() == Rule::expr)
            .map(|c| self.condition(c));
        IfArm {
            condition,
            body: self.body(p, nest),
            span: sp,
        }
    }

    /// The steps and nested blocks of an `if` arm or a `for` body. A
    /// nested block that cannot be nested there is reported and left out.
    fn body(&mut self, p: P<'_>, nest: Nest) -> Vec<Block> {
        let mut out = Vec::new();
        for part in children(p) {
            let sp = span(&part);
            match part.as_rule() {
                Rule::step_decl => out.push(Block::Step(Box::new(self.step(part)))),
                Rule::if_block if self.may_nest(&part, nest, false) => {
                    out.push(self.if_block(part, sp, nest));
                }
                Rule::for_block if self.may_nest(&part, nest, true) => {
                    if let Some(f) = self.for_block(part, sp, nest) {
                        out.push(Block::For(Box::new(f)));
                    }
                }
                // A ladder in an `if` arm (not in a `for` body: its attempts
                // would be one ladder per item).
                Rule::try_block if !nest.in_for && self.may_nest(&part, nest, false) => {
                    out.push(self.try_block(part, sp));
                }
                // Too deep (reported by `may_nest`).
                Rule::if_block | Rule::for_block => {}
                Rule::try_block if !nest.in_for => {}
                Rule::try_block => self.bad_nesting(&part, "a `for` body"),
                Rule::parallel_block | Rule::always_block => {
                    self.bad_nesting(&part, nest.outer);
                }
                _ => {}
            }
        }
        out
    }

    /// The steps of a block that holds steps only (`parallel`, `always`,
    /// a ladder's attempt): a block nested in it is reported.
    fn step_body(&mut self, p: P<'_>, outer: &'static str) -> Vec<Step> {
        let mut steps = Vec::new();
        for part in children(p) {
            match part.as_rule() {
                Rule::step_decl => steps.push(self.step(part)),
                Rule::if_block
                | Rule::for_block
                | Rule::try_block
                | Rule::parallel_block
                | Rule::always_block => self.bad_nesting(&part, outer),
                _ => {}
            }
        }
        steps
    }

    /// Whether an `if` (or a `for`: `is_for`) may be nested where `nest`
    /// says; if not, reports why.
    fn may_nest(&mut self, p: &P<'_>, nest: Nest, is_for: bool) -> bool {
        if is_for && nest.in_for {
            self.bad_nesting(p, "a `for` body");
            return false;
        }
        if nest.depth >= MAX_NESTING {
            let kw = keyword_span(p);
            self.errors.push(
                Diag::error(
                    Code::NestingTooDeep,
                    format!("blocks are nested more than {MAX_NESTING} deep here"),
                )
                .label(kw, format!("block {} levels deep", nest.depth + 1))
                .help(format!("blocks nest at most {MAX_NESTING} deep: fold this block's condition into the enclosing arm's (`if a and b`) or into a `when` on its steps")),
            );
            return false;
        }
        true
    }

    /// A block written where it cannot be nested: `inner` inside `outer`.
    fn bad_nesting(&mut self, p: &P<'_>, outer: &'static str) {
        let (inner, help) = match p.as_rule() {
            Rule::for_block if outer == "a `for` body" => ("for", "a `for` body cannot hold another `for` (each step would be named by two items): loop over one list of pairs, `for pair in [\"a/1\", \"a/2\"]`, or give a step a one-action `for` (`for host in [...] { run \"...\" }` inside the step)"),
            Rule::try_block => ("try", "a fallback ladder is written at the top level of the runbook or in an `if` arm, not in a `for` body (each item would need a ladder of its own): move it out of the `for`, or give the item's steps `on_error continue` and a `when` on the fallback step"),
            Rule::parallel_block => ("parallel", "a `parallel` block is written at the top level of the runbook: write the steps one after another here, or run items at once with `for X in [...] parallel N`"),
            Rule::always_block => ("always", "`always { ... }` is written once, at the top level of the runbook: move it there, and give its steps a `when` if they depend on a condition"),
            Rule::if_block => ("if", "this block holds steps only: give its steps a `when` instead (`when COND`), or move the `if` before or after the block"),
            _ => ("for", "this block holds steps only: move the `for` before or after the block"),
        };
        self.errors.push(
            Diag::error(
                Code::NestedBlockUnsupported,
                format!("`{inner}` cannot be nested in {outer}"),
            )
            .label(keyword_span(p), format!("`{inner}` inside {outer}"))
            .help(help),
        );
    }

    /// `try { steps } else try { steps } else { steps }`: every attempt's
    /// steps in one list, each attempt with its length (and its span: the
    /// `try` keyword's block for the first, its `else` for the others).
    fn try_block(&mut self, p: P<'_>, sp: Span) -> Block {
        let mut steps = Vec::new();
        let mut attempts = Vec::new();
        let first = children(p.clone())
            .find(|c| c.as_rule() == Rule::kw_try)
            .map_or(sp, |k| span(&k));
        let first_steps = self.step_body(p.clone(), "a `try` attempt");
        let len = first_steps.len();
        steps.extend(first_steps);
        attempts.push(Arm {
            condition: None,
            len,
            span: first,
            is_else: false,
        });
        for part in children(p) {
            if matches!(part.as_rule(), Rule::else_try | Rule::else_arm) {
                let is_else = part.as_rule() == Rule::else_arm;
                self.arm(part.clone(), span(&part), &mut steps, &mut attempts);
                if let Some(a) = attempts.last_mut() {
                    a.is_else = is_else;
                }
            }
        }
        Block::Try {
            steps,
            attempts,
            span: sp,
        }
    }

    /// `for X in LIST parallel N max_failures N { body }` (`nest`: where
    /// the block itself is written).
    fn for_block(&mut self, p: P<'_>, sp: Span, nest: Nest) -> Option<ForBlock> {
        let mut var = None;
        let mut list = None;
        let mut parallel = None;
        let mut max_failures = None;
        let body = self.body(p.clone(), nest.inside("a `for` body", true));
        for part in children(p) {
            match part.as_rule() {
                Rule::ident => var = Some(ident(part)),
                Rule::operand => list = Some(self.top_operand(part)),
                Rule::for_parallel => {
                    if let Some(n) = children(part).find(|p| p.as_rule() == Rule::int) {
                        parallel = Some(self.int(n));
                    }
                }
                Rule::for_max_failures => {
                    if let Some(n) = children(part).find(|p| p.as_rule() == Rule::int) {
                        max_failures = Some(self.int(n));
                    }
                }
                _ => {}
            }
        }
        Some(ForBlock {
            var: var?,
            list: list?,
            parallel,
            max_failures,
            body,
            span: sp,
        })
    }

    /// One attempt of a ladder after the first: its steps.
    fn arm(&mut self, p: P<'_>, sp: Span, steps: &mut Vec<Step>, arms: &mut Vec<Arm>) {
        let own = self.step_body(p, "a `try` attempt");
        let len = own.len();
        steps.extend(own);
        arms.push(Arm {
            condition: None,
            len,
            span: sp,
            is_else: false,
        });
    }

    fn step(&mut self, p: P<'_>) -> Step {
        let sp = span(&p);
        let mut step = Step::new(Spanned::new(String::new(), sp), sp);
        let mut seen = Vec::new();
        for part in children(p) {
            let csp = span(&part);
            match part.as_rule() {
                Rule::ident => step.name = ident(part),
                Rule::when_clause => {
                    if let Some(e) = children(part).find(|p| p.as_rule() == Rule::expr) {
                        let e = self.condition(e);
                        once(
                            &mut step.when,
                            Box::new(e),
                            "when",
                            csp,
                            &mut seen,
                            &mut step.repeated,
                        );
                    }
                }
                Rule::action => {
                    if let Some(a) = self.action_of(part) {
                        self.step_action(&mut step, a, csp, &mut seen);
                    }
                }
                Rule::retry_clause => {
                    let mut attempts = Spanned::new(0, csp);
                    let mut backoff = None;
                    let mut exponential = false;
                    let mut jitter = false;
                    for r in children(part) {
                        match r.as_rule() {
                            Rule::int => attempts = self.int(r),
                            Rule::duration => backoff = Some(self.duration(r)),
                            Rule::exponential => exponential = true,
                            Rule::jitter => jitter = true,
                            _ => {}
                        }
                    }
                    let retry = Retry {
                        attempts,
                        backoff,
                        exponential,
                        jitter,
                        span: csp,
                    };
                    once(
                        &mut step.retry,
                        Box::new(retry),
                        "retry",
                        csp,
                        &mut seen,
                        &mut step.repeated,
                    );
                }
                Rule::timeout_clause => {
                    if let Some(d) = children(part).find(|p| p.as_rule() == Rule::duration) {
                        let d = self.duration(d);
                        once(
                            &mut step.timeout,
                            d,
                            "timeout",
                            csp,
                            &mut seen,
                            &mut step.repeated,
                        );
                    }
                }
                Rule::verify_clause => {
                    let v = self.verify_parts(part, csp);
                    once(
                        &mut step.verify,
                        Box::new(v),
                        "verify",
                        csp,
                        &mut seen,
                        &mut step.repeated,
                    );
                }
                Rule::undo_clause => {
                    // `undo` and `undo none` share one slot: either, once.
                    if step.undo.is_some() || step.undo_none.is_some() {
                        if let Some((_, first)) = seen.iter().find(|(w, _)| *w == "undo") {
                            step.repeated.push(("undo", *first, csp));
                        }
                        continue;
                    }
                    if let Some(none) =
                        children(part.clone()).find(|p| p.as_rule() == Rule::undo_none)
                    {
                        let nsp = span(&none);
                        if let Some(reason) = children(none).find(|p| p.as_rule() == Rule::string) {
                            let reason = self.str(reason);
                            once(
                                &mut step.undo_none,
                                Box::new(Spanned::new(reason, nsp)),
                                "undo",
                                csp,
                                &mut seen,
                                &mut step.repeated,
                            );
                        }
                        continue;
                    }
                    if let Some(t) = children(part.clone())
                        .find(|p| p.as_rule() == Rule::undo_timeout)
                        .and_then(|t| children(t).find(|p| p.as_rule() == Rule::duration))
                    {
                        step.undo_timeout = Some(self.duration(t));
                    }
                    if let Some(e) = children(part.clone())
                        .find(|p| p.as_rule() == Rule::undo_when)
                        .and_then(|w| children(w).find(|p| p.as_rule() == Rule::expr))
                    {
                        step.undo_when = Some(Box::new(self.condition(e)));
                    }
                    // `undo "cmd"` is short for `undo run "cmd"`.
                    let undo = children(part)
                        .find(|p| matches!(p.as_rule(), Rule::action | Rule::string))
                        .and_then(|a| {
                            if a.as_rule() == Rule::string {
                                let asp = span(&a);
                                let command = self.str(a);
                                Some(Spanned::new(
                                    Action::Run {
                                        command,
                                        effect: None,
                                    },
                                    asp,
                                ))
                            } else {
                                self.action_of(a)
                            }
                        });
                    if let Some(a) = undo {
                        once(
                            &mut step.undo,
                            Box::new(a),
                            "undo",
                            csp,
                            &mut seen,
                            &mut step.repeated,
                        );
                    }
                }
                Rule::loop_clause => {
                    let v = self.verify_parts(part, csp);
                    once(
                        &mut step.repeat,
                        Box::new(v),
                        "loop",
                        csp,
                        &mut seen,
                        &mut step.repeated,
                    );
                }
                Rule::status_update => {
                    if let Some(u) = self.status_update(part, csp) {
                        step.status_updates.push(u);
                    }
                }
                Rule::keep_clause => {
                    once(
                        &mut step.keep,
                        csp,
                        "keep",
                        csp,
                        &mut seen,
                        &mut step.repeated,
                    );
                }
                Rule::capture_clause => {
                    let mut format = CaptureFormat::Text;
                    let mut name = None;
                    for c in children(part) {
                        match c.as_rule() {
                            Rule::capture_format if c.as_str() == "json" => {
                                format = CaptureFormat::Json
                            }
                            Rule::ident => name = Some(ident(c)),
                            _ => {}
                        }
                    }
                    if let Some(name) = name {
                        let c = Capture {
                            format,
                            name,
                            span: csp,
                        };
                        once(
                            &mut step.capture,
                            Box::new(c),
                            "capture",
                            csp,
                            &mut seen,
                            &mut step.repeated,
                        );
                    }
                }
                Rule::on_error_clause => {
                    let cont = children(part).any(|p| p.as_rule() == Rule::kw_continue);
                    let v = Spanned::new(cont, csp);
                    once(
                        &mut step.continue_on_error,
                        v,
                        "on_error",
                        csp,
                        &mut seen,
                        &mut step.repeated,
                    );
                }
                _ => {}
            }
        }
        step
    }

    /// `verify COND within D every D [consecutive N]` and the same shape in
    /// `after rollback verify`.
    /// `every D notify ...`.
    fn status_update(&mut self, p: P<'_>, sp: Span) -> Option<StatusUpdate> {
        let mut every = None;
        let mut notify = None;
        for part in children(p) {
            match part.as_rule() {
                Rule::duration => every = Some(self.duration(part)),
                Rule::notify_action => notify = self.action_of(part),
                _ => {}
            }
        }
        Some(StatusUpdate {
            every: every?,
            notify: notify?,
            span: sp,
        })
    }

    fn verify_parts(&mut self, p: P<'_>, sp: Span) -> Verify {
        let mut condition = None;
        let mut within = None;
        let mut every = None;
        let mut consecutive = None;
        let mut next_is_every = false;
        for part in children(p) {
            match part.as_rule() {
                Rule::expr => condition = Some(self.condition(part)),
                Rule::kw_every => next_is_every = true,
                // `loop until ... every D within D` names them the other way round.
                Rule::kw_within => next_is_every = false,
                Rule::duration => {
                    let d = self.duration(part);
                    if next_is_every {
                        every = Some(d);
                    } else {
                        within = Some(d);
                    }
                }
                Rule::int => consecutive = Some(self.int(part)),
                _ => {}
            }
        }
        Verify {
            condition: condition.unwrap_or(Expr {
                kind: ExprKind::Literal(Literal {
                    kind: LiteralKind::Bool(true),
                    span: sp,
                    text: None,
                }),
                span: sp,
            }),
            within: within.unwrap_or(Spanned::new(Duration::ZERO, sp)),
            every,
            consecutive,
            span: sp,
        }
    }

    // ---- conditions ----------------------------------------------------

    /// A whole condition. Trees deeper than [`MAX_EXPR_DEPTH`] are refused
    /// while they are built, so that no later pass (lowering, evaluation,
    /// serialization, even dropping the tree) can run out of stack.
    fn condition(&mut self, p: P<'_>) -> Expr {
        self.begin_condition();
        let (e, _) = self.expr(p);
        self.report_too_deep();
        e
    }

    /// The list of a `for`: one operand.
    fn top_operand(&mut self, p: P<'_>) -> Expr {
        self.begin_condition();
        let (e, _) = self.operand(p);
        self.report_too_deep();
        e
    }

    /// Call before building a condition; [`Builder::report_too_deep`] after.
    fn begin_condition(&mut self) {
        self.too_deep = None;
    }

    fn report_too_deep(&mut self) {
        if let Some(at) = self.too_deep.take() {
            self.errors.push(
                Diag::error(
                    Code::TooDeep,
                    format!("condition nested too deeply (more than {MAX_EXPR_DEPTH} levels)"),
                )
                .label(at, "the condition is too deep from here on")
                .help("split it: put parts of it into checks, or into the `when` of several steps"),
            );
        }
    }

    fn deeper(&mut self, depth: usize, at: Span) -> bool {
        if depth > MAX_EXPR_DEPTH {
            self.too_deep.get_or_insert(at);
            return false;
        }
        true
    }

    /// An expression and the depth of its tree.
    fn expr(&mut self, p: P<'_>) -> (Expr, usize) {
        // Precedence, loosest first: or, and, comparisons. `not` binds to
        // the operand that follows it.
        let mut operands = Vec::new();
        let mut ops = Vec::new();
        let mut nots = Vec::new();
        for part in children(p) {
            let op = match part.as_rule() {
                Rule::op_not => {
                    nots.push(span(&part));
                    continue;
                }
                Rule::operand => {
                    let (e, depth) = self.operand(part);
                    operands.push(self.negate(e, depth, &mut nots));
                    continue;
                }
                Rule::op_and => BinOp::And,
                Rule::op_or => BinOp::Or,
                Rule::op_eq => BinOp::Eq,
                Rule::op_ne => BinOp::Ne,
                Rule::op_le => BinOp::Le,
                Rule::op_ge => BinOp::Ge,
                Rule::op_lt => BinOp::Lt,
                Rule::op_gt => BinOp::Gt,
                Rule::op_in => BinOp::In,
                Rule::op_contains => BinOp::Contains,
                Rule::op_matches => BinOp::Matches,
                Rule::op_add => BinOp::Add,
                Rule::op_sub => BinOp::Sub,
                Rule::op_mul => BinOp::Mul,
                Rule::op_div => BinOp::Div,
                _ => continue,
            };
            ops.push((op, span(&part)));
        }
        self.climb(operands, ops)
    }

    /// Applies the `not`s written before an operand (innermost last).
    fn negate(&mut self, mut e: Expr, mut depth: usize, nots: &mut Vec<Span>) -> (Expr, usize) {
        while let Some(n) = nots.pop() {
            if !self.deeper(depth + 1, n) {
                nots.clear();
                break;
            }
            let sp = n.to(e.span);
            e = Expr {
                kind: ExprKind::Not(Box::new(e)),
                span: sp,
            };
            depth += 1;
        }
        (e, depth)
    }

    fn operand(&mut self, p: P<'_>) -> (Expr, usize) {
        let sp = span(&p);
        let mut parts = children(p).peekable();
        let Some(inner) = parts.next() else {
            return (bool_expr(sp), 1);
        };
        // `( ... )` keeps its parentheses in its span, not what follows.
        let head = match parts.peek() {
            Some(post) => Span::new(sp.start, span(post).start),
            None => sp,
        };
        let (mut e, mut depth) = self.primary(inner, head);
        for post in parts {
            let at = span(&post);
            if !self.deeper(depth + 1, at) {
                break;
            }
            let whole = e.span.to(at);
            let kind = match post.as_rule() {
                Rule::index => {
                    let Some(i) = children(post).next() else {
                        continue;
                    };
                    let (i, d) = self.expr(i);
                    depth = depth.max(d);
                    ExprKind::Index(Box::new(e), Box::new(i))
                }
                Rule::field => {
                    let Some(name) = children(post).next() else {
                        continue;
                    };
                    ExprKind::Field(Box::new(e), ident(name))
                }
                _ => continue,
            };
            depth += 1;
            e = Expr { kind, span: whole };
        }
        (e, depth)
    }

    /// What an operand starts with: a call, a name, a literal or `( ... )`.
    fn primary(&mut self, inner: P<'_>, sp: Span) -> (Expr, usize) {
        match inner.as_rule() {
            Rule::call => {
                let csp = span(&inner);
                let mut parts = children(inner);
                let Some(name) = parts.next() else {
                    return (bool_expr(csp), 1);
                };
                let mut depth = 1;
                let mut args = Vec::new();
                for a in parts {
                    let (a, d) = self.expr(a);
                    depth = depth.max(d + 1);
                    args.push(a);
                }
                if !self.deeper(depth, csp) {
                    return (bool_expr(csp), 1);
                }
                (
                    Expr {
                        kind: ExprKind::Call(ident(name), args),
                        span: csp,
                    },
                    depth,
                )
            }
            Rule::expr => {
                let (mut e, depth) = self.expr(inner);
                e.span = sp;
                (e, depth)
            }
            Rule::literal => {
                let lit = self.literal(inner);
                let depth = literal_depth(&lit);
                if !self.deeper(depth, sp) {
                    return (bool_expr(sp), 1);
                }
                let e = Expr {
                    span: lit.span,
                    kind: ExprKind::Literal(lit),
                };
                (e, depth)
            }
            Rule::path => {
                let psp = span(&inner);
                let parts = children(inner)
                    .filter(|p| p.as_rule() == Rule::ident)
                    .map(ident)
                    .collect();
                (
                    Expr {
                        kind: ExprKind::Path(parts),
                        span: psp,
                    },
                    1,
                )
            }
            _ => (bool_expr(sp), 1),
        }
    }

    /// Operator-precedence climbing over a flat `operand (op operand)*`
    /// list. Iterative (a stack of pending operators), so long chains cannot
    /// overflow here; a tree that would grow deeper than the limit keeps its
    /// left side only (and the condition is reported).
    fn climb(&mut self, operands: Vec<(Expr, usize)>, ops: Vec<(BinOp, Span)>) -> (Expr, usize) {
        let mut out: Vec<(Expr, usize)> = Vec::new();
        let mut pending: Vec<(BinOp, Span)> = Vec::new();
        let mut operands = operands.into_iter();
        if let Some(first) = operands.next() {
            out.push(first);
        }
        for (op, rhs) in ops.into_iter().zip(operands) {
            while pending
                .last()
                .is_some_and(|top| precedence(top.0) >= precedence(op.0))
            {
                if let Some(top) = pending.pop() {
                    self.reduce(&mut out, top);
                }
            }
            pending.push(op);
            out.push(rhs);
        }
        while let Some(top) = pending.pop() {
            self.reduce(&mut out, top);
        }
        out.pop().unwrap_or_else(|| (bool_expr(Span::default()), 1))
    }

    fn reduce(&mut self, out: &mut Vec<(Expr, usize)>, (op, at): (BinOp, Span)) {
        let (Some((rhs, rd)), Some((lhs, ld))) = (out.pop(), out.pop()) else {
            return;
        };
        let depth = ld.max(rd) + 1;
        if !self.deeper(depth, at) {
            out.push((lhs, ld));
            return;
        }
        let sp = lhs.span.to(rhs.span);
        out.push((
            Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span: sp,
            },
            depth,
        ));
    }

    fn literal(&mut self, p: P<'_>) -> Literal {
        let sp = span(&p);
        let inner = if p.as_rule() == Rule::literal {
            children(p).next()
        } else {
            Some(p)
        };
        let Some(inner) = inner else {
            return Literal {
                kind: LiteralKind::Bool(false),
                span: sp,
                text: None,
            };
        };
        let kind = match inner.as_rule() {
            Rule::string => {
                let s = self.str(inner);
                return Literal {
                    kind: LiteralKind::String(s.value.clone()),
                    span: sp,
                    text: Some(s),
                };
            }
            Rule::bool_lit => LiteralKind::Bool(inner.as_str() == "true"),
            Rule::list_lit => LiteralKind::List(children(inner).map(|l| self.literal(l)).collect()),
            Rule::number => self.number(inner.as_str(), sp),
            _ => LiteralKind::Bool(false),
        };
        Literal {
            kind,
            span: sp,
            text: None,
        }
    }

    fn number(&mut self, text: &str, sp: Span) -> LiteralKind {
        let suffix_at = text
            .char_indices()
            .skip(1)
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
            .map(|(i, _)| i);
        match suffix_at {
            Some(_) => {
                if text.starts_with('-') {
                    self.errors.push(
                        Diag::error(Code::InvalidDuration, format!("invalid duration `{text}`"))
                            .label(sp, "durations cannot be negative"),
                    );
                    return LiteralKind::Duration(Duration::ZERO);
                }
                match parse_duration(text) {
                    Ok(d) => LiteralKind::Duration(d),
                    Err(why) => {
                        self.errors.push(
                            Diag::error(
                                Code::InvalidDuration,
                                format!("invalid duration `{text}`"),
                            )
                            .label(sp, why)
                            .help(
                                "write a whole number and a unit: `800ms`, `30s`, `5m`, `2h`, `1d`",
                            ),
                        );
                        LiteralKind::Duration(Duration::ZERO)
                    }
                }
            }
            None if text.contains('.') => match text.parse::<f64>() {
                Ok(f) => LiteralKind::Float(f),
                Err(_) => {
                    self.errors.push(
                        Diag::error(Code::InvalidNumber, format!("invalid number `{text}`"))
                            .label(sp, "here"),
                    );
                    LiteralKind::Float(0.0)
                }
            },
            None => match text.parse::<i64>() {
                Ok(i) => LiteralKind::Int(i),
                Err(_) => {
                    self.errors.push(
                        Diag::error(Code::InvalidNumber, format!("`{text}` is out of range"))
                            .label(sp, "integers must fit in 64 bits")
                            .help(format!("the largest integer is {}", i64::MAX)),
                    );
                    LiteralKind::Int(0)
                }
            },
        }
    }
}

fn bool_expr(sp: Span) -> Expr {
    Expr {
        kind: ExprKind::Literal(Literal {
            kind: LiteralKind::Bool(true),
            span: sp,
            text: None,
        }),
        span: sp,
    }
}

fn precedence(op: BinOp) -> u8 {
    match op {
        BinOp::Or => 1,
        BinOp::And => 2,
        BinOp::Add | BinOp::Sub => 4,
        BinOp::Mul | BinOp::Div => 5,
        _ => 3,
    }
}

/// Depth of a literal's tree (nested lists; bounded by the bracket guard).
fn literal_depth(l: &Literal) -> usize {
    match &l.kind {
        LiteralKind::List(items) => 1 + items.iter().map(literal_depth).max().unwrap_or(0),
        _ => 1,
    }
}

/// `800ms`, `30s`, `5m`, `2h`, `1d` and sums such as `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number before `{rest}`"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| "number too large".to_string())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms_per: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{n}` has no unit")),
            other => return Err(format!("unknown unit `{other}`")),
        };
        let ms = n
            .checked_mul(ms_per)
            .ok_or_else(|| "duration too large".to_string())?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(|| "duration too large".to_string())?;
    }
    Ok(total)
}
