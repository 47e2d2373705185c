//! Secret redaction: the last line of defence. Every text the executor
//! logs passes through a [`Redactor`] holding every secret value (and its
//! shell-quoted, percent-encoded and JSON-escaped forms), which replaces
//! each occurrence with `***`.

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
