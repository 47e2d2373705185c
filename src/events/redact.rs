//! Secret redaction: the last line of defence, and the events layer's
//! guarantee. Every text an event carries passes through the run's
//! [`Redactor`] before any sink sees it ([`EventKind::map_text`]): each
//! secret value, in every form a command or a server may write it (as is,
//! shell-quoted, JSON-escaped, percent-encoded), is replaced with `***`,
//! and so is a piece of one left at a place where the executor cut a text
//! (`…`).

use super::{EventKind, ExpectResult, NotUndone, UndoPlanEntry, ValueRead};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fmt::Write;
use std::ops::Range;

/// What a secret is shown as.
pub const MASK: &str = "***";

/// The shortest secret, in characters, that can be redacted: masking every
/// occurrence of one or two characters would mask half of every text, and
/// not masking them would leak them. Loading refuses shorter secrets
/// (`exec::inputs::load_secrets`); a [`Redactor`] ignores them. Also the
/// shortest piece of a secret masked at a cut.
pub const MIN_REDACT_LEN: usize = 3;

/// Where the executor cut a text it logs (the tail of an output, the head
/// of a body): a secret across the cut leaves a piece on one side.
const CUT: &str = "…";

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Every form of every secret, each once.
    needles: Vec<String>,
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles: Vec<String> = secrets
            .into_iter()
            .filter(|s| long_enough(s))
            .flat_map(forms)
            .filter(|f| long_enough(f))
            .collect();
        needles.sort();
        needles.dedup();
        Redactor { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `Some(redacted)` if `s` held a secret (or a piece of one at a cut),
    /// else `None`.
    pub fn redact_if_needed(&self, s: &str) -> Option<String> {
        let mut spans: Vec<Range<usize>> = Vec::new();
        for n in &self.needles {
            spans.extend(s.match_indices(n.as_str()).map(|(i, m)| i..i + m.len()));
        }
        for (cut, _) in s.match_indices(CUT) {
            let (before, after) = (&s[..cut], &s[cut + CUT.len()..]);
            let after_at = cut + CUT.len();
            for n in &self.needles {
                let tail = piece_at_start(n, after);
                if tail > 0 {
                    spans.push(after_at..after_at + tail);
                }
                let head = piece_at_end(n, before);
                if head > 0 {
                    spans.push(cut - head..cut);
                }
            }
        }
        if spans.is_empty() {
            return None;
        }
        spans.sort_by_key(|r| r.start);
        let mut out = String::with_capacity(s.len());
        let mut at = 0;
        for r in spans {
            if r.end <= at {
                continue; // inside a span already masked
            }
            if r.start >= at {
                out.push_str(&s[at..r.start]);
                out.push_str(MASK);
            }
            at = r.end;
        }
        out.push_str(&s[at..]);
        Some(out)
    }

    pub fn redact(&self, s: &str) -> String {
        self.redact_if_needed(s).unwrap_or_else(|| s.to_owned())
    }
}

fn long_enough(s: &str) -> bool {
    s.chars().count() >= MIN_REDACT_LEN
}

/// In bytes, the longest piece of `needle` that ends it, is shorter than
/// it and at least [`MIN_REDACT_LEN`] characters long, that `text` starts
/// with; 0 if none.
fn piece_at_start(needle: &str, text: &str) -> usize {
    needle
        .char_indices()
        .skip(1)
        .map(|(i, _)| &needle[i..])
        .take_while(|piece| long_enough(piece))
        .find(|piece| text.starts_with(piece))
        .map_or(0, str::len)
}

/// The same for a piece that starts `needle` and ends `text`.
fn piece_at_end(needle: &str, text: &str) -> usize {
    needle
        .char_indices()
        .rev()
        .map(|(i, _)| &needle[..i])
        .take_while(|piece| long_enough(piece))
        .find(|piece| text.ends_with(piece))
        .map_or(0, str::len)
}

/// Every way `secret` may be written in what the executor logs.
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_owned(), secret.trim().to_owned()];
    out.extend(shell_forms(secret));
    out.extend(json_forms(secret));
    out.extend(percent_forms(secret));
    out
}

/// As a shell writes it: quoted as a template renders it into a command
/// (shlex), inside single quotes (`'\''` for a quote, as `set -x` writes
/// it), inside double quotes, and unquoted with backslashes (`printf %q`).
fn shell_forms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    // shlex refuses only a NUL, which no shell argument can hold.
    if let Ok(quoted) = shlex::try_quote(s) {
        out.push(quoted.into_owned());
    }
    out.push(s.replace('\'', r"'\''"));
    out.push(backslashed(s, |c| matches!(c, '"' | '\\' | '$' | '`')));
    out.push(backslashed(s, |c| {
        c.is_ascii() && !(c.is_ascii_alphanumeric() || "-_./,:=@%+^".contains(c))
    }));
    out
}

fn backslashed(s: &str, special: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if special(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum Hex {
    Lower,
    Upper,
}

/// As JSON writers write it inside a string: serde_json's escapes, and
/// also with non-ASCII characters as `\uXXXX` in either case (Python's
/// `ensure_ascii`, PHP), with `/` as `\/` (PHP), and both.
fn json_forms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for non_ascii in [None, Some(Hex::Lower), Some(Hex::Upper)] {
        for slash in [false, true] {
            out.push(json_escaped(s, non_ascii, slash));
        }
    }
    out
}

/// `s` inside a JSON string, without the quotes: `"`, `\` and control
/// characters escaped as serde_json escapes them (short forms, else
/// `\u00xx`); with `non_ascii`, every non-ASCII character as `\uXXXX`
/// (UTF-16: two escapes beyond the BMP) in that case; with `slash`, `/` as
/// `\/`.
fn json_escaped(s: &str, non_ascii: Option<Hex>, slash: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if slash => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' || (non_ascii.is_some() && !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = match non_ascii {
                        Some(Hex::Upper) => write!(out, "\\u{u:04X}"),
                        _ => write!(out, "\\u{u:04x}"),
                    };
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// RFC 3986's unreserved characters, which no encoder encodes (the set a
/// template's `url` escape leaves).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// What JavaScript's `encodeURIComponent` leaves besides.
const JS_COMPONENT: &AsciiSet = &UNRESERVED
    .remove(b'!')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*');
/// What Python's `quote` leaves by default (a path).
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// As a URL holds it: percent-encoded by each of the common sets, with
/// upper- and lower-case hex digits, with a space as `%20` and as `+`
/// (forms).
fn percent_forms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for set in [UNRESERVED, JS_COMPONENT, PATH] {
        let upper = utf8_percent_encode(s, set).to_string();
        let lower = lower_hex(&upper);
        for encoded in [upper, lower] {
            // A `%` in the value is itself encoded: every `%20` is a space.
            out.push(encoded.replace("%20", "+"));
            out.push(encoded);
        }
    }
    out
}

/// `encoded` with the two hex digits after each `%` in lower case.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut digits = 0;
    for c in encoded.chars() {
        if digits > 0 {
            out.push(c.to_ascii_lowercase());
            digits -= 1;
        } else {
            out.push(c);
            if c == '%' {
                digits = 2;
            }
        }
    }
    out
}

impl EventKind {
    /// Applies `f` to every text an event carries that may hold a value
    /// from outside the runbook (messages, commands, outputs, items, values
    /// read or captured, JSON object keys among them), so that secrets are
    /// redacted in one place.
    ///
    /// Every field of every kind is named here, with no `..`: a field added
    /// to a kind does not compile until it is either redacted or bound to
    /// `_` here. Bound to `_`: numbers, flags and enums, and names the
    /// runbook's author wrote (step, check, channel, input and secret
    /// names, expressions, the runbook's own name and title), which are
    /// compiled before any secret is known and are not secret.
    pub fn map_text(&mut self, f: &dyn Fn(&str) -> Option<String>) {
        match self {
            EventKind::RunStarted {
                format: _,
                runbook: _,
                title: _,
                mode: _,
                inputs,
                secrets: _,
                source_sha256: _,
                parallel: _,
                notes,
            } => {
                // The keys are input names, declared in the runbook.
                inputs.values_mut().for_each(|v| json(f, v));
                list(f, notes);
            }
            EventKind::NodeReady { deps: _ } => {}
            EventKind::ConditionEvaluated {
                purpose: _,
                expr: _,
                values,
                result: _,
                error,
                note,
            } => {
                reads(f, values);
                opt(f, error);
                opt(f, note);
            }
            EventKind::NodeSkipped { reason, values } => {
                text(f, reason);
                reads(f, values);
            }
            EventKind::ActionStarted {
                adapter: _,
                phase: _,
                attempt: _,
                item,
                effect: _,
                request,
                timeout: _,
                simulated: _,
            } => {
                opt(f, item);
                text(f, request);
            }
            EventKind::ActionFinished {
                adapter: _,
                phase: _,
                attempt: _,
                item,
                status: _,
                exit: _,
                http_status: _,
                elapsed_ms: _,
                output,
                error,
            } => {
                opt(f, item);
                opt(f, output);
                opt(f, error);
            }
            EventKind::CheckEvaluated {
                check: _,
                probe,
                status: _,
                passed: _,
                observed,
                expects,
                error,
                note,
            } => {
                text(f, probe);
                // The keys are the engine's own (`status`, `value`...).
                observed.values_mut().for_each(|v| json(f, v));
                for ExpectResult {
                    expr: _,
                    result: _,
                    values,
                    error,
                } in expects
                {
                    reads(f, values);
                    opt(f, error);
                }
                opt(f, error);
                opt(f, note);
            }
            EventKind::RetryScheduled {
                attempt: _,
                delay_ms: _,
                reason,
                item,
            } => {
                text(f, reason);
                opt(f, item);
            }
            EventKind::Timeout {
                phase: _,
                attempt: _,
                after_ms: _,
                item,
            } => opt(f, item),
            EventKind::VerifyPoll {
                poll: _,
                passed: _,
                streak: _,
                needed: _,
                remaining_ms: _,
            } => {}
            EventKind::CaptureStored {
                name: _,
                format: _,
                value,
            } => json(f, value),
            EventKind::NodeSucceeded {
                attempts: _,
                elapsed_ms: _,
                failed_items,
            } => list(f, failed_items),
            EventKind::NodeFailed {
                reason,
                attempts: _,
                continued: _,
            } => text(f, reason),
            EventKind::RollbackStarted {
                reason,
                plan,
                not_undone,
            } => {
                text(f, reason);
                undo_plan(f, plan, not_undone);
            }
            EventKind::UndoFinished {
                ok: _,
                attempts: _,
                items,
                error,
            } => {
                list(f, items);
                opt(f, error);
            }
            EventKind::RollbackFinished {
                clean: _,
                failed_undos: _,
                after_rollback_verified: _,
            } => {}
            EventKind::NotificationSent {
                channel: _,
                text: message,
                ok: _,
                http_status: _,
                simulated: _,
            } => text(f, message),
            EventKind::ApprovalAsked {
                message,
                timeout: _,
                preapproved: _,
            } => text(f, message),
            EventKind::ApprovalGiven { by, reason } | EventKind::ApprovalRefused { by, reason } => {
                text(f, by);
                opt(f, reason);
            }
            EventKind::ApprovalAttemptRefused {
                by,
                via: _,
                reason,
                why,
            } => {
                text(f, by);
                opt(f, reason);
                text(f, why);
            }
            EventKind::HandlerStarted {
                handler: _,
                actions: _,
            } => {}
            EventKind::BranchTaken {
                branch: _,
                arm: _,
                taken,
                item,
                skipped: _,
            } => {
                text(f, taken);
                opt(f, item);
            }
            EventKind::AttemptAbandoned {
                ladder: _,
                attempt: _,
                label: _,
                step: _,
                reason,
                plan,
                not_undone,
            } => {
                text(f, reason);
                undo_plan(f, plan, not_undone);
            }
            EventKind::AttemptUndone {
                ladder: _,
                attempt: _,
                clean: _,
                failed_undos: _,
                next: _,
            } => {}
            EventKind::CancelRequested { stage: _ } => {}
            EventKind::Warning { message } => text(f, message),
            EventKind::RunTakenOver {
                by,
                host,
                pid: _,
                from_host,
                from_user,
                from_pid: _,
                silent_ms: _,
                owner_gone: _,
                old_epoch: _,
                new_epoch: _,
            } => {
                text(f, by);
                text(f, host);
                text(f, from_host);
                text(f, from_user);
            }
            EventKind::RunFinished {
                outcome: _,
                exit_code: _,
                elapsed_ms: _,
                failed_step: _,
                failure_reason,
                counts: _,
            } => opt(f, failure_reason),
        }
    }
}

type Redact<'a> = &'a dyn Fn(&str) -> Option<String>;

fn text(f: Redact<'_>, x: &mut String) {
    if let Some(r) = f(x) {
        *x = r;
    }
}

fn opt(f: Redact<'_>, x: &mut Option<String>) {
    if let Some(x) = x {
        text(f, x);
    }
}

fn list(f: Redact<'_>, xs: &mut [String]) {
    xs.iter_mut().for_each(|x| text(f, x));
}

/// The texts of an undo plan: items, and why steps are not undone.
fn undo_plan(f: Redact<'_>, plan: &mut [UndoPlanEntry], not_undone: &mut [NotUndone]) {
    for UndoPlanEntry { node: _, items } in plan {
        list(f, items);
    }
    for NotUndone { node: _, reason } in not_undone {
        text(f, reason);
    }
}

fn reads(f: Redact<'_>, reads: &mut [ValueRead]) {
    for ValueRead { name: _, value } in reads {
        json(f, value);
    }
}

/// Every string in `v`, object keys included: a value read from outside
/// may use a secret as a key as well as hold one.
fn json(f: Redact<'_>, v: &mut serde_json::Value) {
    use serde_json::Value as J;
    match v {
        J::String(x) => text(f, x),
        J::Array(a) => a.iter_mut().for_each(|v| json(f, v)),
        J::Object(m) => {
            m.values_mut().for_each(|v| json(f, v));
            if m.keys().any(|k| f(k).is_some()) {
                // Two keys masked to the same text keep the last value.
                *m = std::mem::take(m)
                    .into_iter()
                    .map(|(k, v)| (f(&k).unwrap_or(k), v))
                    .collect();
            }
        }
        J::Null | J::Bool(_) | J::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A secret with a space, a slash, quotes, a `$`, `+`, `=`, a non-ASCII
    /// letter and a character beyond the BMP: each encoding changes it.
    const SECRET: &str = "pw/Tök3n y'z\"q$+r=9🔑ab";

    fn redacted(text: &str) -> String {
        Redactor::new([SECRET]).redact(text)
    }

    #[test]
    fn as_is_and_trimmed() {
        assert_eq!(redacted(&format!("a {SECRET} b")), "a *** b");
        let r = Redactor::new(["  padded-s3cret \n"]);
        assert_eq!(r.redact("x=padded-s3cret."), "x=***.");
        assert!(r.redact_if_needed("nothing to see").is_none());
    }

    #[test]
    fn shell_quoted() {
        for form in [
            // As a template renders it, and as `set -x` prints it.
            r#"'pw/Tök3n y'\''z"q$+r=9🔑ab'"#,
            // Inside double quotes.
            r#""pw/Tök3n y'z\"q\$+r=9🔑ab""#,
            // Unquoted, with backslashes (printf %q).
            r#"pw/Tök3n\ y\'z\"q\$+r=9🔑ab"#,
        ] {
            let got = redacted(&format!("+ curl -H {form} x"));
            // The quotes around it may stay: they tell nothing.
            let unquoted = got.replace(['\'', '"'], "");
            assert_eq!(unquoted, "+ curl -H *** x", "{form}");
        }
        assert_eq!(
            Redactor::new(["it's-a-secret"]).redact("echo 'it'\\''s-a-secret'"),
            "echo '***'"
        );
    }

    #[test]
    fn json_escaped() {
        let serde_form = serde_json::to_string(SECRET).unwrap();
        assert_eq!(
            redacted(&format!("{{\"t\":{serde_form}}}")),
            "{\"t\":\"***\"}"
        );
        for form in [
            // Non-ASCII as \u escapes, lower and upper case (Python's
            // ensure_ascii), the key as a surrogate pair.
            r#"pw/T\u00f6k3n y'z\"q$+r=9\ud83d\udd11ab"#,
            r#"pw/T\u00F6k3n y'z\"q$+r=9\uD83D\uDD11ab"#,
            // `/` as `\/` (PHP), with and without the \u escapes.
            r#"pw\/Tök3n y'z\"q$+r=9🔑ab"#,
            r#"pw\/T\u00f6k3n y'z\"q$+r=9\ud83d\udd11ab"#,
            r#"pw\/T\u00F6k3n y'z\"q$+r=9\uD83D\uDD11ab"#,
        ] {
            assert_eq!(
                redacted(&format!("{{\"t\":\"{form}\"}}")),
                "{\"t\":\"***\"}"
            );
        }
        // Control characters as serde_json writes them.
        let r = Redactor::new(["line1\nline2\u{1}"]);
        assert_eq!(r.redact(r#"["line1\nline2\u0001"]"#), r#"["***"]"#);
    }

    #[test]
    fn json_form_is_serde_jsons() {
        for s in [SECRET, "tab\there", "\u{0}\u{1f}\u{7f}é", "back\\slash"] {
            let quoted = serde_json::to_string(s).unwrap();
            assert_eq!(
                format!("\"{}\"", super::json_escaped(s, None, false)),
                quoted
            );
        }
    }

    #[test]
    fn percent_encoded() {
        for form in [
            // Every character but the unreserved ones, upper and lower case.
            "pw%2FT%C3%B6k3n%20y%27z%22q%24%2Br%3D9%F0%9F%94%91ab",
            "pw%2fT%c3%b6k3n%20y%27z%22q%24%2br%3d9%f0%9f%94%91ab",
            // A space as `+` (forms).
            "pw%2FT%C3%B6k3n+y%27z%22q%24%2Br%3D9%F0%9F%94%91ab",
            "pw%2fT%c3%b6k3n+y%27z%22q%24%2br%3d9%f0%9f%94%91ab",
            // `/` and `'` left as they are (Python's quote, encodeURIComponent).
            "pw/T%C3%B6k3n%20y%27z%22q%24%2Br%3D9%F0%9F%94%91ab",
            "pw%2FT%C3%B6k3n%20y'z%22q%24%2Br%3D9%F0%9F%94%91ab",
        ] {
            assert_eq!(
                redacted(&format!("GET /x?t={form}&y=1")),
                "GET /x?t=***&y=1",
                "{form}"
            );
        }
    }

    #[test]
    fn a_piece_left_at_a_cut_is_masked() {
        // The tail of an output starts inside a secret...
        assert_eq!(redacted("…=9🔑ab done"), "…*** done");
        // ... or the head of a body ends inside one.
        assert_eq!(redacted("token: pw/T…"), "token: ***…");
        // Between stdout's tail and stderr's, and in an encoded form.
        assert_eq!(
            redacted("out pw%2FT%C3%B6k\n…%3D9%F0%9F%94%91ab err"),
            "out pw%2FT%C3%B6k\n…*** err"
        );
        // Two characters are too few to say.
        assert_eq!(redacted("…ab done"), "…ab done");
        // Away from a cut, a piece is not a secret.
        assert_eq!(redacted("=9🔑ab done"), "=9🔑ab done");
    }

    #[test]
    fn overlapping_forms_are_masked_once() {
        let r = Redactor::new(["abc-def", "def-ghi"]);
        assert_eq!(r.redact("x abc-def-ghi y"), "x *** y");
    }

    #[test]
    fn secrets_too_short_to_redact_are_ignored() {
        let r = Redactor::new(["ab", "é"]);
        assert!(r.is_empty());
        assert_eq!(r.redact("abc é"), "abc é");
    }

    #[test]
    fn keys_of_captured_and_observed_values_are_redacted() {
        let r = Redactor::new([SECRET]);
        let mut kind = EventKind::CaptureStored {
            name: "tokens".into(),
            format: crate::plan::CaptureFormat::Json,
            value: json!({"first": 1, SECRET: {SECRET: [SECRET]}, "last": 2}),
        };
        kind.map_text(&|s| r.redact_if_needed(s));
        let EventKind::CaptureStored { value, .. } = &kind else {
            unreachable!()
        };
        assert_eq!(
            value,
            &json!({"first": 1, "***": {"***": ["***"]}, "last": 2})
        );
    }
}
