//! The syntax tree of a runbook file. Every node carries the span it was
//! parsed from so that later passes can point at it.

use crate::span::{Span, Spanned};
use std::time::Duration;

pub type Ident = Spanned<String>;

/// A string literal after unescaping (and dedenting, for `"""` strings),
/// with a map back to source offsets so that a placeholder inside it can be
/// reported at its exact position.
#[derive(Debug, Clone, PartialEq)]
pub struct Str {
    pub value: String,
    pub span: Span,
    /// `(offset in value, offset in source)` at each point where the two stop
    /// advancing together (escapes, removed indentation). Sorted. Empty for
    /// a `"..."` string without escapes, whose value is its source from
    /// just after the opening quote (most strings: no allocation for them).
    pub offsets: Vec<(usize, usize)>,
}

impl Str {
    /// The source span of `value[start..end]`.
    pub fn sub_span(&self, start: usize, end: usize) -> Span {
        Span::new(self.source_offset(start), self.source_offset(end))
    }

    pub fn source_offset(&self, value_offset: usize) -> usize {
        let i = self.offsets.partition_point(|(v, _)| *v <= value_offset);
        match i.checked_sub(1).and_then(|i| self.offsets.get(i)) {
            Some((v, s)) => (s + (value_offset - v)).min(self.span.end),
            None if self.offsets.is_empty() && !self.span.is_empty() => {
                (self.span.start + 1 + value_offset).min(self.span.end)
            }
            None => self.span.start,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Runbook {
    pub name: Ident,
    pub span: Span,
    pub title: Option<Str>,
    pub owner: Option<Str>,
    pub tags: Vec<Str>,
    pub lock: Option<Str>,
    pub inputs: Vec<Input>,
    pub secrets: Vec<Secret>,
    pub channels: Vec<Channel>,
    pub templates: Vec<Template>,
    pub checks: Vec<Check>,
    pub body: Vec<Block>,
    pub on_failure: Vec<Handler>,
    pub on_success: Vec<Handler>,
    pub after_rollback: Vec<AfterRollback>,
    /// `always { ... }` blocks (one is allowed; more are reported).
    pub always: Vec<Always>,
    /// Metadata written more than once: (what, first, again).
    pub repeated_meta: Vec<(&'static str, Span, Span)>,
    /// Durations and counts written as an input's name (`wait soak`,
    /// `retry attempts`), in the order written.
    pub input_slots: Vec<InputSlot>,
    /// `every D notify ...` at runbook level: while the run is in progress.
    pub status_updates: Vec<StatusUpdate>,
}

/// `every 20m notify CHANNEL TEMPLATE {...}`: a periodic status update
/// while the run (or the step it is written in) is in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub every: Spanned<Duration>,
    /// Always an `Action::Notify`.
    pub notify: Spanned<Action>,
    pub span: Span,
}

/// A duration or a count that names a typed input: `wait soak`,
/// `parallel batch`. The AST holds the input's value there when it was
/// known to the parser (see [`SlotValues`]), else zero.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSlot {
    pub input: Ident,
    pub kind: SlotKind,
    /// Whether the parser had the input's value (the AST holds it).
    pub bound: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    Duration,
    Count,
}

impl SlotKind {
    pub fn noun(self) -> &'static str {
        match self {
            SlotKind::Duration => "a duration",
            SlotKind::Count => "a whole number",
        }
    }
}

/// An input's value, for a slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SlotValue {
    Duration(Duration),
    Int(i64),
}

/// Values of inputs by name, for the slots that name them.
pub type SlotValues = std::collections::HashMap<String, SlotValue>;

impl Runbook {
    /// A runbook with only its name: the parsers fill in the rest.
    pub fn new(name: Ident, span: Span) -> Runbook {
        Runbook {
            name,
            span,
            title: None,
            owner: None,
            tags: Vec::new(),
            lock: None,
            inputs: Vec::new(),
            secrets: Vec::new(),
            channels: Vec::new(),
            templates: Vec::new(),
            checks: Vec::new(),
            body: Vec::new(),
            on_failure: Vec::new(),
            on_success: Vec::new(),
            after_rollback: Vec::new(),
            always: Vec::new(),
            repeated_meta: Vec::new(),
            input_slots: Vec::new(),
            status_updates: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TypeExpr {
    String,
    Int,
    Float,
    Bool,
    Duration,
    List(Box<Spanned<TypeExpr>>),
    OneOf(Vec<Str>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: Ident,
    pub ty: Spanned<TypeExpr>,
    pub default: Option<Literal>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SecretSource {
    Env(Str),
    File(Str),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    pub name: Ident,
    pub source: SecretSource,
    pub span: Span,
}

/// A URL written literally or named by a secret (`slack slack_hook`).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Literal(Str),
    Name(Ident),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub name: Str,
    pub value: Str,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChannelKind {
    Slack(Target),
    Webhook {
        target: Target,
        headers: Vec<Header>,
    },
    Console,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub name: Ident,
    pub kind: ChannelKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: Ident,
    pub text: Str,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Http(HttpRequest),
    Promql(Str),
    Shell(Str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoData {
    Fail,
    Pass,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: Ident,
    pub probe: Spanned<Probe>,
    pub expects: Vec<Expr>,
    pub on_no_data: Option<Spanned<NoData>>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectMark {
    Readonly,
    Irreversible,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Text,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: Spanned<String>,
    pub url: Str,
    pub timeout: Option<Spanned<Duration>>,
    pub headers: Vec<Header>,
    pub body: Option<(BodyKind, Str)>,
    pub effect: Option<Spanned<EffectMark>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NotifyMessage {
    Template(Ident),
    Inline(Str),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NotifyArg {
    pub name: Ident,
    pub value: Str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Run {
        command: Str,
        effect: Option<Spanned<EffectMark>>,
    },
    /// Boxed: the largest action (an `Action` is as big as its largest
    /// variant, and every step holds one), and the rarest in large files.
    Http(Box<HttpRequest>),
    Notify {
        channel: Ident,
        message: NotifyMessage,
        args: Vec<NotifyArg>,
    },
    Approve {
        message: Str,
        timeout: Option<Spanned<Duration>>,
        /// `by other`: whoever started the run may not approve.
        by_other: bool,
    },
    Wait(Spanned<Duration>),
    /// `escalate "reason"`: stop the run and hand over to a human.
    Escalate(Str),
    For {
        var: Ident,
        list: Box<Expr>,
        parallel: Option<Spanned<u64>>,
        max_failures: Option<Spanned<u64>>,
        body: Box<Spanned<Action>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub attempts: Spanned<u64>,
    pub backoff: Option<Spanned<Duration>>,
    pub exponential: bool,
    /// `jitter`: each delay drawn between half and all of the backoff.
    pub jitter: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verify {
    pub condition: Expr,
    pub within: Spanned<Duration>,
    pub every: Option<Spanned<Duration>>,
    pub consecutive: Option<Spanned<u64>>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    pub format: CaptureFormat,
    pub name: Ident,
    pub span: Span,
}

/// Every clause a step may hold; a clause written twice is kept in
/// `repeated` so the checker can point at both.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: Ident,
    pub span: Span,
    // Boxed, as below: a condition is 128 bytes and most steps have none.
    pub when: Option<Box<Expr>>,
    pub action: Option<Spanned<Action>>,
    // The clauses most steps leave out are boxed: a step was 1.5 KB, and a
    // 10,000-step file's AST is held beside its graph while it compiles
    // (the kernel zeroing that memory was most of `runbook check`'s time).
    pub retry: Option<Box<Retry>>,
    pub timeout: Option<Spanned<Duration>>,
    pub verify: Option<Box<Verify>>,
    /// `loop until COND every D within D`: the action repeated until the
    /// condition holds (`consecutive` is never set).
    pub repeat: Option<Box<Verify>>,
    pub undo: Option<Box<Spanned<Action>>>,
    /// `undo none "why"`: the step writes and is known to have no undo;
    /// the reason (spanned by the whole clause's `none "..."`).
    pub undo_none: Option<Box<Spanned<Str>>>,
    /// `undo timeout D ACTION`: the undo's own timeout per attempt.
    pub undo_timeout: Option<Spanned<Duration>>,
    /// `undo when COND ACTION`: the undo runs only if COND holds when
    /// the rollback reaches the step.
    pub undo_when: Option<Box<Expr>>,
    pub capture: Option<Box<Capture>>,
    pub continue_on_error: Option<Spanned<bool>>,
    /// `keep`: a keep point (its span).
    pub keep: Option<Span>,
    /// `approve "..."` written beside another action: a gate before it.
    pub approval: Option<Box<Spanned<Action>>>,
    /// `every D notify ...`: while the step is in progress.
    pub status_updates: Vec<StatusUpdate>,
    pub repeated: Vec<(&'static str, Span, Span)>,
}

impl Step {
    /// A step with only its name: the parsers fill in its clauses.
    pub fn new(name: Ident, span: Span) -> Step {
        Step {
            name,
            span,
            when: None,
            action: None,
            retry: None,
            timeout: None,
            verify: None,
            repeat: None,
            undo: None,
            undo_none: None,
            undo_timeout: None,
            undo_when: None,
            capture: None,
            continue_on_error: None,
            keep: None,
            approval: None,
            status_updates: Vec::new(),
            repeated: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Boxed: a `Step` is over a kilobyte, and a file's blocks are pushed
    /// one by one into a vector that would otherwise copy them each time it
    /// grows (a fifth of the time of a 10,000-step compile).
    Step(Box<Step>),
    Parallel {
        steps: Vec<Step>,
        span: Span,
    },
    /// `if C { ... } else if C { ... } else { ... }`: each arm's body,
    /// which may hold blocks of its own (`if`, `for`).
    If {
        arms: Vec<IfArm>,
        span: Span,
    },
    /// `try { ... } else try { ... } else { ... }`: a fallback ladder, the
    /// steps of every attempt in order, and where each attempt's steps end
    /// (an [`Arm`] without a condition).
    Try {
        steps: Vec<Step>,
        attempts: Vec<Arm>,
        span: Span,
    },
    /// `for X in [...] parallel N max_failures N { steps }`: the steps run
    /// for each item. Boxed: rare, and larger than the other variants.
    For(Box<ForBlock>),
}

/// A per-item body: `for member in ["a", "b"] { step ... step ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForBlock {
    pub var: Ident,
    pub list: Expr,
    pub parallel: Option<Spanned<u64>>,
    pub max_failures: Option<Spanned<u64>>,
    /// The body: steps, and `if` blocks nested in it.
    pub body: Vec<Block>,
    pub span: Span,
}

/// One arm of an `if`: its condition (`None`: `else`) and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct IfArm {
    pub condition: Option<Expr>,
    pub body: Vec<Block>,
    pub span: Span,
}

/// How many blocks may sit inside one another (an `if` in an `if` in a
/// `for` is three).
pub const MAX_NESTING: usize = 4;

/// One attempt of a fallback ladder (`condition` is always `None`) and how
/// many of the block's steps, after the previous attempt's, are its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    pub condition: Option<Expr>,
    pub len: usize,
    pub span: Span,
    /// A ladder's last resort, written `else { ... }` (not `else try`).
    pub is_else: bool,
}

impl Block {
    /// The block's steps, those of the blocks nested in it included, in
    /// the order written.
    pub fn steps(&self) -> Vec<&Step> {
        let mut out = Vec::new();
        self.each_step(&mut |s| out.push(s));
        out
    }

    /// Calls `f` on each of the block's steps, nested ones included, in
    /// the order written.
    pub fn each_step<'a>(&'a self, f: &mut dyn FnMut(&'a Step)) {
        match self {
            Block::Step(s) => f(s),
            Block::Parallel { steps, .. } | Block::Try { steps, .. } => steps.iter().for_each(f),
            Block::If { arms, .. } => {
                for b in arms.iter().flat_map(|a| &a.body) {
                    b.each_step(f);
                }
            }
            Block::For(fb) => {
                for b in &fb.body {
                    b.each_step(f);
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Handler {
    pub actions: Vec<Spanned<Action>>,
    pub span: Span,
}

/// `always { steps }`: cleanup run after the steps and any rollback, on
/// success and on failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Always {
    pub steps: Vec<Step>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AfterRollback {
    pub verify: Verify,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LiteralKind {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Duration(Duration),
    List(Vec<Literal>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub kind: LiteralKind,
    pub span: Span,
    /// For string literals, the full string (for placeholder spans).
    pub text: Option<Str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinOp {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    Matches,
    /// Arithmetic: numbers, durations (and a time minus a time).
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Contains => "contains",
            BinOp::Matches => "matches",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Literal(Literal),
    Path(Vec<Ident>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `pods[0]`, `items[-1]` (counted from the end).
    Index(Box<Expr>, Box<Expr>),
    /// `pods[0].name`: a field read after an index or a call.
    Field(Box<Expr>, Ident),
    /// `length(pods)`: a built-in function.
    Call(Ident, Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}
