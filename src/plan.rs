//! The compiled step graph: what the executor runs, unchanged.
//!
//! Everything here is plain data (serializable to JSON) so that `runbook
//! graph`, `runbook plan`, the executor, drills and resume all read the same
//! thing. Names are resolved and types checked before a `Graph` exists; the
//! executor never looks at the source again.

use crate::span::Span;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use crate::ast::BinOp;

/// Version of the serialized graph format.
pub const GRAPH_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    pub format: u32,
    pub runbook: String,
    pub title: Option<String>,
    pub owner: Option<String>,
    pub tags: Vec<String>,
    /// The lock key template; defaults to the runbook's name.
    pub lock: Text,
    /// SHA-256 of the source text, hex: resume refuses a changed runbook.
    pub source_sha256: String,
    pub inputs: Vec<InputSpec>,
    pub secrets: Vec<SecretSpec>,
    pub channels: Vec<ChannelSpec>,
    pub checks: Vec<CheckSpec>,
    /// Nodes in the order they were written (a topological order of `edges`).
    pub nodes: Vec<Node>,
    /// `from` must finish before `to` may start.
    pub edges: Vec<Edge>,
    pub on_failure: Vec<Action>,
    pub on_success: Vec<Action>,
    pub after_rollback: Option<VerifyPolicy>,
    /// The `if` blocks, by index (a node's [`BranchRef::branch`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<Branch>,
    /// The fallback ladders (`try { } else try { } else { }`), by index (a
    /// node's [`AttemptRef::ladder`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ladders: Vec<Ladder>,
    /// The `for` blocks with steps, by index (a node's [`ItemRef::block`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub for_blocks: Vec<ForBlock>,
    /// Inputs that durations and counts name (`wait soak`): the graph holds
    /// their defaults; a run compiles the runbook again with its values
    /// (`compile::compile_with_inputs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slot_inputs: Vec<String>,
    /// `every D notify ...` at runbook level: sent while the run is in
    /// progress (its steps, rollback and `always` steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_updates: Vec<StatusUpdate>,
}

/// The first status update goes out after this long at the latest (incident
/// guides ask for a first update within five minutes), then one every
/// `every`.
pub const FIRST_STATUS_UPDATE: Duration = Duration::from_secs(300);

/// `every D notify ...`: a periodic status update while the run, or a step,
/// is in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    #[serde(with = "dur")]
    pub every: Duration,
    /// Always an [`Action::Notify`].
    pub notify: Action,
    pub span: Span,
}

impl StatusUpdate {
    /// When the `n`th update (from 1) is due, after the run or step
    /// started: the first after `every` or five minutes, whichever is
    /// shorter; then one every `every`.
    pub fn due(&self, n: u32) -> Duration {
        let first = self.every.min(FIRST_STATUS_UPDATE);
        first + self.every.saturating_mul(n.saturating_sub(1))
    }
}

/// `for X in [...] { steps }`: each step is one node per item, named
/// `STEP[ITEM]`; an item's nodes run one after another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForBlock {
    pub var: String,
    pub items: Vec<Value>,
    /// The list input the items are the value of (`for m in members`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The input has no value yet (`runbook check`, `graph` of a required
    /// input): the body is laid out once, for the item `*`; a run binds
    /// the value first (`compile::compile_with_inputs`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// Items at once (1: one after another).
    pub parallel: usize,
    /// Items that may fail before the run fails; `None`: none may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<usize>,
    /// The body's step names, in order.
    pub steps: Vec<String>,
    pub span: Span,
}

impl ForBlock {
    /// How item `index` is shown in node ids and capture names: the item's
    /// text.
    pub fn item_label(&self, index: usize) -> String {
        if self.pending {
            return "*".into();
        }
        match self.items.get(index) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Int(i)) => i.to_string(),
            _ => (index + 1).to_string(),
        }
    }

    /// Items the body is laid out for: one (`*`) while pending.
    pub fn item_count(&self) -> usize {
        if self.pending {
            1
        } else {
            self.items.len()
        }
    }
}

/// Where a node sits in a `for` block: item `index` of block `block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRef {
    pub block: usize,
    pub index: usize,
}

/// An `if ... else if ... else` block: the first arm whose condition holds
/// when the block is reached runs; the others' nodes are skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch {
    pub arms: Vec<BranchArm>,
    pub span: Span,
    /// The arm the block is nested in: it is decided only if that arm is
    /// taken (its nodes are skipped otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<BranchRef>,
    /// In a `for` body: the item it is decided for (each item has its own
    /// copy of the block, decided apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchArm {
    /// `None`: `else`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Expr>,
    /// The arm's nodes, in order, those of the blocks nested in it
    /// included (the first of them depends on the nodes before the block).
    pub nodes: Vec<String>,
}

impl BranchArm {
    /// `if COND`, `else if COND` (by position) or `else`, for reports.
    pub fn label(&self, index: usize) -> String {
        match (&self.condition, index) {
            (Some(c), 0) => format!("if {}", c.text),
            (Some(c), _) => format!("else if {}", c.text),
            (None, _) => "else".into(),
        }
    }
}

/// `try { ... } else try { ... } else { ... }`: a fallback ladder. The
/// attempts run one after another until one succeeds (every step of it
/// succeeded or was skipped by its `when`); the later ones are skipped. A
/// step of an attempt that fails (not the last attempt's) abandons its
/// attempt: the attempt's completed steps are undone, latest first, then
/// the next attempt starts. The last attempt failing fails the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ladder {
    pub attempts: Vec<Attempt>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The attempt's nodes, in order (each depends on the one before; the
    /// first on the last node of the attempt before).
    pub nodes: Vec<String>,
    /// Written `else { ... }` (the last resort), not `try` / `else try`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_else: bool,
    pub span: Span,
}

impl Ladder {
    /// `try`, `else try` or `else` (the last, when written so), numbered
    /// from 1: "attempt 2 (else try)".
    pub fn label(&self, attempt: usize) -> String {
        let kind = match (attempt, self.attempts.get(attempt)) {
            (0, _) => "try",
            (_, Some(a)) if a.is_else => "else",
            _ => "else try",
        };
        format!("attempt {} ({kind})", attempt + 1)
    }

    /// Whether `attempt` is the last: its failure fails the run.
    pub fn is_last(&self, attempt: usize) -> bool {
        attempt + 1 >= self.attempts.len()
    }
}

/// Where a node sits in a ladder: attempt `attempt` of ladder `ladder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRef {
    pub ladder: usize,
    pub attempt: usize,
}

/// The arms a node in arm `r` of `branches` runs in, outermost first (`r`
/// last).
pub fn arm_chain(branches: &[Branch], r: BranchRef) -> Vec<BranchRef> {
    let mut chain = vec![r];
    let mut at = r;
    // Bounded: a parent is always an earlier branch.
    while let Some(p) = branches.get(at.branch).and_then(|b| b.parent) {
        if p.branch >= at.branch {
            break;
        }
        chain.push(p);
        at = p;
    }
    chain.reverse();
    chain
}

/// Where a node sits in a branch: it runs only if `arm` is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchRef {
    pub branch: usize,
    pub arm: usize,
}

impl Graph {
    /// The arms a node in arm `r` runs in, outermost first (`r` last).
    pub fn arm_chain(&self, r: BranchRef) -> Vec<BranchRef> {
        arm_chain(&self.branches, r)
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn check(&self, name: &str) -> Option<&CheckSpec> {
        self.checks.iter().find(|c| c.name == name)
    }

    pub fn channel(&self, name: &str) -> Option<&ChannelSpec> {
        self.channels.iter().find(|c| c.name == name)
    }

    pub fn secret(&self, name: &str) -> Option<&SecretSpec> {
        self.secrets.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

/// A handlebars template, checked at compile time, rendered at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Text {
    pub template: String,
    /// How substituted values are escaped where this text is used.
    pub escape: Escape,
    /// Secrets this text reads: rendered for sending, masked (`***`) for
    /// anything that is logged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Escape {
    /// A shell command: each value stays one literal value in the quoting
    /// around it (see [`crate::escape`]).
    Shell,
    /// A URL: a base URL at the start, validated; a host or port,
    /// validated; percent-encoded elsewhere.
    Url,
    /// A JSON body: escaped inside strings, a number or bool outside.
    Json,
    /// A PromQL query: escaped inside strings, a number outside.
    Promql,
    /// An HTTP header value: no control characters.
    Header,
    /// Values are inserted as they are (chat text, messages, lock keys).
    Plain,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "of")]
pub enum Type {
    String,
    Int,
    Float,
    Bool,
    Duration,
    List(Box<Type>),
    OneOf(Vec<String>),
    /// A secret's value: can be sent, never shown.
    Secret,
    /// Parsed JSON (a `capture json`, an HTTP body): checked at run time.
    Json,
    /// A point in time: `now`, `run.started` (conditions only).
    Time,
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Type::String => f.write_str("string"),
            Type::Int => f.write_str("int"),
            Type::Float => f.write_str("float"),
            Type::Bool => f.write_str("bool"),
            Type::Duration => f.write_str("duration"),
            Type::Time => f.write_str("time"),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::OneOf(v) => {
                let v: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
                write!(f, "one_of [{}]", v.join(", "))
            }
            Type::Secret => f.write_str("secret"),
            Type::Json => f.write_str("json"),
        }
    }
}

/// A run-time value: an input, a literal, a capture, a check result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Duration(#[serde(with = "duration_tagged")] Duration),
    List(Vec<Value>),
    Json(serde_json::Value),
}

mod duration_tagged {
    //! Durations serialize as `{"duration": "1m 30s"}` so that they stay
    //! distinct from strings when a graph is read back.
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    #[derive(Serialize, Deserialize)]
    struct Tagged {
        duration: String,
    }

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        Tagged {
            duration: humantime::format_duration(*d).to_string(),
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let t = Tagged::deserialize(d)?;
        humantime::parse_duration(&t.duration).map_err(serde::de::Error::custom)
    }
}

/// Durations in the graph serialize as human strings ("2m", "800ms").
pub mod dur {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: Type,
    /// `None`: the input is required.
    pub default: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    Env(String),
    File(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretSpec {
    pub name: String,
    pub source: SecretSource,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ChannelKind {
    Slack { url: Text },
    Webhook { url: Text, headers: Vec<Header> },
    Console,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSpec {
    pub name: String,
    #[serde(flatten)]
    pub kind: ChannelKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyKind {
    Json,
    Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// Upper case: GET, HEAD, POST, PUT, PATCH, DELETE.
    pub method: String,
    pub url: Text,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    #[serde(default, with = "dur::option", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Body {
    pub kind: BodyKind,
    pub text: Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Probe {
    Http(HttpRequest),
    Promql { query: Text },
    Shell { command: Text },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDataPolicy {
    Fail,
    Pass,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    pub name: String,
    pub probe: Probe,
    /// All must hold for the check to pass. Paths in them with
    /// `RefRoot::Probe` read the probe's observation (status, elapsed, body,
    /// json, value, exit, stdout, stderr).
    pub expects: Vec<Expr>,
    pub on_no_data: NoDataPolicy,
    pub span: Span,
}

/// What an action does to the world. Dry runs and drills rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Waits, approvals, verify-only steps.
    None,
    /// Reads the world: `http get`, `promql`, `run ... readonly`.
    Read,
    /// Sends a message; cannot be undone and never rolls anything back.
    Notify,
    /// Changes the world; should have an `undo`.
    Write,
    /// Changes the world for good (declared `irreversible`).
    Irreversible,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    Shell {
        command: Text,
    },
    /// Boxed: the largest action, which every node would otherwise be
    /// sized for.
    Http(Box<HttpRequest>),
    Notify {
        channel: String,
        /// The named template used, if any (for reports).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<String>,
        message: Text,
        /// Rendered first, then visible to `message` by name. Boxed: a map
        /// is 72 bytes, and sized the `Action` of every node.
        #[serde(default, skip_serializing_if = "no_args")]
        args: Box<IndexMap<String, Text>>,
    },
    Approve {
        message: Text,
        #[serde(default, with = "dur::option", skip_serializing_if = "Option::is_none")]
        timeout: Option<Duration>,
        /// `by other`: whoever started the run may not approve.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        by_other: bool,
    },
    Wait {
        #[serde(with = "dur")]
        duration: Duration,
    },
    /// Stop the run and hand over to a human (outcome `needs_human`):
    /// nothing is undone.
    Escalate {
        reason: Text,
    },
    ForEach {
        var: String,
        list: Box<Expr>,
        /// At most this many items at once (1: one after another).
        parallel: usize,
        /// Items that may fail before the action fails; `None`: any failure
        /// fails the action once every started item has finished.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_failures: Option<usize>,
        body: Box<Action>,
    },
}

fn no_args(args: &IndexMap<String, Text>) -> bool {
    args.is_empty()
}

impl Action {
    /// Short name of the adapter that performs this action.
    pub fn adapter(&self) -> &'static str {
        match self {
            Action::Shell { .. } => "shell",
            Action::Http(_) => "http",
            Action::Notify { .. } => "notify",
            Action::Approve { .. } => "approve",
            Action::Wait { .. } => "wait",
            Action::Escalate { .. } => "escalate",
            Action::ForEach { body, .. } => body.adapter(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Further attempts after the first (`retry 3`: up to 4 attempts).
    pub retries: u32,
    #[serde(with = "dur")]
    pub backoff: Duration,
    pub exponential: bool,
    /// `jitter`: each delay is drawn between half and all of the backoff
    /// (see [`RetryPolicy::jittered`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub jitter: bool,
}

impl RetryPolicy {
    pub const NONE: RetryPolicy = RetryPolicy {
        retries: 0,
        backoff: Duration::ZERO,
        exponential: false,
        jitter: false,
    };

    /// Delay before attempt `attempt` (1-based; attempt 2 is the first retry).
    /// The delay before `attempt`, jittered when the policy says so: from
    /// half to all of [`RetryPolicy::delay_before`], drawn from `seed` (a
    /// hash of the run id, the step, the item and the attempt), so that one
    /// run, and every drill of it, waits the same.
    pub fn jittered(&self, attempt: u32, seed: &str) -> Duration {
        let full = self.delay_before(attempt);
        if !self.jitter || full.is_zero() {
            return full;
        }
        use sha2::{Digest, Sha256};
        let h = Sha256::digest(format!("{seed}\u{0}{attempt}").as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[..8]);
        // A fraction in [0, 1) with 53 bits.
        let u = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
        full.mul_f64(0.5 + 0.5 * u)
    }

    pub fn delay_before(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        if self.exponential {
            let factor = 1u32
                .checked_shl(attempt.saturating_sub(2))
                .unwrap_or(u32::MAX);
            self.backoff.saturating_mul(factor)
        } else {
            self.backoff
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyPolicy {
    pub condition: Expr,
    #[serde(with = "dur")]
    pub within: Duration,
    #[serde(with = "dur")]
    pub every: Duration,
    /// Passes in a row required.
    pub consecutive: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureSpec {
    pub format: CaptureFormat,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The step's name, unique in the runbook.
    pub id: String,
    /// Index of the `parallel { }` group the step belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
    /// Nodes that must finish (or be skipped) first.
    pub deps: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Box<Expr>>,
    /// An approval gate (`approve "..."` written beside the action): asked
    /// before the action runs; always `Action::Approve`.
    // The parts most nodes leave out are boxed (a node was over a
    // kilobyte, and a run holds every node of its graph); serde writes a
    // box as what it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Box<Action>>,
    /// `None` for a verify-only step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    pub effect: Effect,
    pub retry: RetryPolicy,
    #[serde(default, with = "dur::option", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Box<VerifyPolicy>>,
    /// `loop until`: the action is run again every `every` until the
    /// condition holds, for at most `within` (`consecutive` is 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Box<VerifyPolicy>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Box<Action>>,
    /// `undo none "why"`: a write acknowledged to have no undo; the reason
    /// is shown by `plan` and written in the journal's rollback plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_none: Option<String>,
    /// `undo when COND`: the undo runs only if COND holds when the
    /// rollback reaches the step; otherwise the rollback plan lists the
    /// step as not undone, with the values COND read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_when: Option<Box<Expr>>,
    /// `undo timeout D`: the undo's timeout per attempt (default: the
    /// run's default timeout, never the step's `timeout`).
    #[serde(default, with = "dur::option", skip_serializing_if = "Option::is_none")]
    pub undo_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<Box<CaptureSpec>>,
    /// A failure is recorded and the run goes on (`on_error continue`;
    /// the default for notify steps).
    pub continue_on_error: bool,
    /// `keep`: a keep point. Once it has completed, a failure later undoes
    /// only the steps that completed after it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep: bool,
    /// A step of `always { ... }`: not part of the run's steps; run, one
    /// after another, once they and any rollback are over.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cleanup: bool,
    /// The `if` arm the node belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchRef>,
    /// The `for` block item the node runs for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemRef>,
    /// The ladder attempt the node belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<AttemptRef>,
    /// `every D notify ...`: sent while the step is in progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_updates: Vec<StatusUpdate>,
    pub span: Span,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A condition, with its source text for the decision log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    pub text: String,
    #[serde(flatten)]
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "expr")]
pub enum ExprKind {
    Literal {
        value: Value,
    },
    Ref(Ref),
    Not {
        operand: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `pods[0]`; a negative index counts from the end.
    Index {
        value: Box<Expr>,
        index: Box<Expr>,
    },
    /// `pods[0].name`
    Field {
        value: Box<Expr>,
        name: String,
    },
    /// `length(pods)`
    Call {
        func: Func,
        args: Vec<Expr>,
    },
}

/// The built-in functions of conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Func {
    /// Items of a list, characters of a string, fields of an object: `int`.
    Length,
    /// A list in ascending order (numbers, durations or text).
    Sort,
    /// A list's items as one text, with a separator: `join(hosts, ",")`.
    Join,
    /// The JSON items whose field equals a value:
    /// `where(pod.status.containerStatuses, "name", "api")`.
    Where,
    /// One field of each JSON item: `map(pods.items, "metadata.name")`.
    Map,
}

impl Func {
    pub const ALL: &'static [Func] =
        &[Func::Length, Func::Sort, Func::Join, Func::Where, Func::Map];

    pub fn name(self) -> &'static str {
        match self {
            Func::Length => "length",
            Func::Sort => "sort",
            Func::Join => "join",
            Func::Where => "where",
            Func::Map => "map",
        }
    }

    /// How many arguments it takes.
    pub fn arity(self) -> usize {
        match self {
            Func::Length | Func::Sort => 1,
            Func::Join | Func::Map => 2,
            Func::Where => 3,
        }
    }

    /// How it is called, for help texts.
    pub fn usage(self) -> &'static str {
        match self {
            Func::Length => "`length(pods)`",
            Func::Sort => "`sort(versions)`",
            Func::Join => "`join(hosts, \", \")`",
            Func::Where => "`where(pod.status.containerStatuses, \"name\", \"api\")`",
            Func::Map => "`map(pods.items, \"metadata.name\")`",
        }
    }
}

/// What a name in a condition refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefRoot {
    Input,
    Capture,
    /// A check: evaluated (probed) when the condition is.
    Check,
    LoopVar,
    /// `run.id`, `run.runbook`, `run.mode`.
    Run,
    /// `failure.step`, `failure.reason` (in `on failure`).
    Failure,
    /// `self.outcome`, `self.attempts`: the step being undone (in its
    /// `undo` and `undo when`).
    #[serde(rename = "self")]
    SelfStep,
    /// Inside a check's `expect`: the probe's observation.
    Probe,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ref {
    pub root: RefRoot,
    pub name: String,
    /// Fields read below the root (`live.revision` -> `["revision"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
}

impl Ref {
    /// `live.revision`
    pub fn dotted(&self) -> String {
        let mut s = self.name.clone();
        for p in &self.path {
            s.push('.');
            s.push_str(p);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;
    use std::time::Duration;

    #[test]
    fn jitter_draws_between_half_and_all_of_the_backoff_the_same_for_one_seed() {
        let p = RetryPolicy {
            retries: 5,
            backoff: Duration::from_secs(10),
            exponential: true,
            jitter: true,
        };
        let mut seen = std::collections::HashSet::new();
        for run in 0..50 {
            let seed = format!("run-{run}\u{0}step");
            for attempt in 2..=6 {
                let full = p.delay_before(attempt);
                let d = p.jittered(attempt, &seed);
                assert!(d >= full / 2 && d <= full, "{d:?} for {full:?}");
                assert_eq!(
                    d,
                    p.jittered(attempt, &seed),
                    "the same seed, the same wait"
                );
                seen.insert(d);
            }
        }
        // Spread, not one value per attempt.
        assert!(seen.len() > 200, "{}", seen.len());
        let plain = RetryPolicy { jitter: false, ..p };
        assert_eq!(plain.jittered(3, "x"), Duration::from_secs(20));
    }
}
