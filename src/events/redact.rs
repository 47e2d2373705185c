//! Secret redaction: the last line of defence. Every text the executor
//! logs passes through a [`Redactor`] holding every secret value (and its
//! shell-quoted, percent-encoded and JSON-escaped forms), which replaces
//! each occurrence with `***`.

use super::{EventKind, ValueRead};

/// What a secret is shown as.
pub const MASK: &str = "***";

/// Secrets shorter than this are not searched for in free text (a one-letter
/// secret would mask every occurrence of that letter); they are still never
/// rendered into display forms.
pub const MIN_REDACT_LEN: usize = 3;

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so that a longer form is replaced before its parts.
    needles: Vec<String>,
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles = Vec::new();
        for s in secrets {
            if s.len() < MIN_REDACT_LEN {
                continue;
            }
            needles.push(s.to_owned());
            for form in [
                crate::exec::template::escape_shell(s),
                crate::exec::template::escape_url(s),
                crate::exec::template::escape_json(s),
            ] {
                if form != s && !form.is_empty() {
                    needles.push(form);
                }
            }
            let trimmed = s.trim();
            if trimmed != s && trimmed.len() >= MIN_REDACT_LEN {
                needles.push(trimmed.to_owned());
            }
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Redactor { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `Some(redacted)` if `s` held a secret, else `None`.
    pub fn redact_if_needed(&self, s: &str) -> Option<String> {
        if !self.needles.iter().any(|n| s.contains(n.as_str())) {
            return None;
        }
        let mut out = s.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), MASK);
            }
        }
        Some(out)
    }

    pub fn redact(&self, s: &str) -> String {
        self.redact_if_needed(s).unwrap_or_else(|| s.to_owned())
    }
}

impl EventKind {
    /// Applies `f` to every free-text field (messages, commands, outputs,
    /// values read), so that secrets can be redacted in one place.
    pub fn map_text(&mut self, f: &dyn Fn(&str) -> Option<String>) {
        fn s(f: &dyn Fn(&str) -> Option<String>, x: &mut String) {
            if let Some(r) = f(x) {
                *x = r;
            }
        }
        fn o(f: &dyn Fn(&str) -> Option<String>, x: &mut Option<String>) {
            if let Some(x) = x {
                s(f, x);
            }
        }
        fn j(f: &dyn Fn(&str) -> Option<String>, v: &mut serde_json::Value) {
            match v {
                serde_json::Value::String(x) => s(f, x),
                serde_json::Value::Array(a) => a.iter_mut().for_each(|v| j(f, v)),
                serde_json::Value::Object(m) => m.values_mut().for_each(|v| j(f, v)),
                _ => {}
            }
        }
        fn reads(f: &dyn Fn(&str) -> Option<String>, v: &mut [ValueRead]) {
            v.iter_mut().for_each(|r| j(f, &mut r.value));
        }
        match self {
            EventKind::RunStarted { inputs, notes, .. } => {
                inputs.values_mut().for_each(|v| j(f, v));
                notes.iter_mut().for_each(|x| s(f, x));
            }
            EventKind::NodeReady { .. } => {}
            EventKind::ConditionEvaluated {
                values,
                error,
                note,
                ..
            } => {
                reads(f, values);
                o(f, error);
                o(f, note);
            }
            EventKind::NodeSkipped { reason, values } => {
                s(f, reason);
                reads(f, values);
            }
            EventKind::ActionStarted { item, request, .. } => {
                o(f, item);
                s(f, request);
            }
            EventKind::ActionFinished {
                item,
                output,
                error,
                ..
            } => {
                o(f, item);
                o(f, output);
                o(f, error);
            }
            EventKind::CheckEvaluated {
                probe,
                observed,
                expects,
                error,
                note,
                ..
            } => {
                s(f, probe);
                observed.values_mut().for_each(|v| j(f, v));
                for e in expects {
                    reads(f, &mut e.values);
                    o(f, &mut e.error);
                }
                o(f, error);
                o(f, note);
            }
            EventKind::RetryScheduled { reason, item, .. } => {
                s(f, reason);
                o(f, item);
            }
            EventKind::Timeout { item, .. } => o(f, item),
            EventKind::VerifyPoll { .. } => {}
            EventKind::CaptureStored { value, .. } => j(f, value),
            EventKind::NodeSucceeded { failed_items, .. } => {
                failed_items.iter_mut().for_each(|x| s(f, x))
            }
            EventKind::NodeFailed { reason, .. } => s(f, reason),
            EventKind::RollbackStarted {
                reason,
                plan,
                not_undone,
            } => {
                s(f, reason);
                for p in plan {
                    p.items.iter_mut().for_each(|x| s(f, x));
                }
                for n in not_undone {
                    s(f, &mut n.reason);
                }
            }
            EventKind::UndoFinished { items, error, .. } => {
                items.iter_mut().for_each(|x| s(f, x));
                o(f, error);
            }
            EventKind::RollbackFinished { .. } => {}
            EventKind::NotificationSent { text, .. } => s(f, text),
            EventKind::ApprovalAsked { message, .. } => s(f, message),
            EventKind::ApprovalGiven { by, reason } | EventKind::ApprovalRefused { by, reason } => {
                s(f, by);
                o(f, reason);
            }
            EventKind::HandlerStarted { .. } => {}
            EventKind::CancelRequested { .. } => {}
            EventKind::Warning { message } => s(f, message),
            EventKind::RunFinished { failure_reason, .. } => o(f, failure_reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_form() {
        let r = Redactor::new(["s3cr3t value/x"]);
        assert_eq!(r.redact("a s3cr3t value/x b"), "a *** b");
        assert_eq!(r.redact("'s3cr3t value/x'"), "***");
        assert_eq!(r.redact("u=s3cr3t%20value%2Fx"), "u=***");
        assert!(r.redact_if_needed("nothing").is_none());
    }
}
