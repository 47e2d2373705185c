//! Template rendering: handlebars in strict mode, with each substituted
//! value escaped for where the text is used ([`Escape`]), rendered twice:
//! once to send (secrets substituted), once to show (secrets as `***`).
//!
//! * `Shell`: each value becomes one shell word (`shlex` quoting), so an
//!   input of `x; rm -rf /` stays a single argument.
//! * `Url`: values are percent-encoded (everything but `A-Za-z0-9-._~`).
//! * `Json`: values are escaped for the inside of a JSON string.
//! * `Plain`: values are inserted as they are.
//!
//! Compiled templates are cached per escape kind, keyed by their text.

use crate::adapters::Rendered;
use crate::plan::{Escape, Text};
use handlebars::Handlebars;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::sync::RwLock;

/// Characters left as they are in a URL component (RFC 3986 unreserved).
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn escape_shell(s: &str) -> String {
    // `try_quote` refuses only NUL bytes, which no shell argument can hold.
    let cleaned;
    let s = if s.contains('\0') {
        cleaned = s.replace('\0', "");
        cleaned.as_str()
    } else {
        s
    };
    match shlex::try_quote(s) {
        Ok(q) => q.into_owned(),
        Err(_) => "''".to_owned(),
    }
}

pub fn escape_url(s: &str) -> String {
    utf8_percent_encode(s, URL_COMPONENT).to_string()
}

pub fn escape_json(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_owned()).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .map(str::to_owned)
        .unwrap_or(quoted)
}

pub fn escape(kind: Escape, s: &str) -> String {
    match kind {
        Escape::Shell => escape_shell(s),
        Escape::Url => escape_url(s),
        Escape::Json => escape_json(s),
        Escape::Plain => s.to_owned(),
    }
}

fn registry(kind: Escape) -> Handlebars<'static> {
    let mut h = Handlebars::new();
    h.set_strict_mode(true);
    h.register_escape_fn(move |s| escape(kind, s));
    h
}

/// Which data a render sees: the send form or the display form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Send,
    Display,
}

/// The compiled-template cache and renderer. One per run.
pub struct Templates {
    regs: [RwLock<Handlebars<'static>>; 4],
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

fn slot(kind: Escape) -> usize {
    match kind {
        Escape::Shell => 0,
        Escape::Url => 1,
        Escape::Json => 2,
        Escape::Plain => 3,
    }
}

impl Templates {
    pub fn new() -> Self {
        Templates {
            regs: [
                RwLock::new(registry(Escape::Shell)),
                RwLock::new(registry(Escape::Url)),
                RwLock::new(registry(Escape::Json)),
                RwLock::new(registry(Escape::Plain)),
            ],
        }
    }

    /// Whether `template` needs rendering at all.
    pub fn is_static(template: &str) -> bool {
        !template.contains("{{")
    }

    /// Renders one template string with one escape kind.
    pub fn render_str(
        &self,
        template: &str,
        kind: Escape,
        data: &serde_json::Value,
    ) -> Result<String, String> {
        if Self::is_static(template) {
            return Ok(template.to_owned());
        }
        let ctx = handlebars::Context::wraps(data).map_err(|e| e.reason().to_string())?;
        self.render_ctx(template, kind, &ctx)
    }

    /// Renders one template string with data the renderer may own: no copy
    /// of it is made (`render_str` copies its borrowed data, as handlebars'
    /// `render` does; that copy was a quarter of a realistic dry run).
    fn render_owned(
        &self,
        template: &str,
        kind: Escape,
        data: serde_json::Value,
    ) -> Result<String, String> {
        if Self::is_static(template) {
            return Ok(template.to_owned());
        }
        self.render_ctx(template, kind, &handlebars::Context::from(data))
    }

    fn render_ctx(
        &self,
        template: &str,
        kind: Escape,
        ctx: &handlebars::Context,
    ) -> Result<String, String> {
        let lock = &self.regs[slot(kind)];
        let registered = lock
            .read()
            .map(|r| r.has_template(template))
            .map_err(|_| "template cache poisoned".to_owned())?;
        if !registered {
            let mut w = lock
                .write()
                .map_err(|_| "template cache poisoned".to_owned())?;
            if !w.has_template(template) {
                w.register_template_string(template, template)
                    .map_err(|e| format!("invalid template: {e}"))?;
            }
        }
        let r = lock
            .read()
            .map_err(|_| "template cache poisoned".to_owned())?;
        r.render_with_context(template, ctx).map_err(|e| {
            // The reason without the template text (which may be long).
            let mut m = e.reason().to_string();
            if let Some(line) = e.line_no {
                m.push_str(&format!(" (line {line})"));
            }
            m
        })
    }

    /// Renders `text` for sending and for display. `data(form)` builds the
    /// data the template sees; it is called only when the text has
    /// placeholders, and with `Form::Send` only when `with_secrets`.
    pub fn render(
        &self,
        text: &Text,
        with_secrets: bool,
        data: &dyn Fn(Form) -> serde_json::Value,
    ) -> Result<Rendered, String> {
        if Self::is_static(&text.template) {
            return Ok(Rendered::plain(text.template.clone()));
        }
        let display = self.render_owned(&text.template, text.escape, data(Form::Display))?;
        if !with_secrets {
            return Ok(Rendered {
                send: display.clone(),
                display,
            });
        }
        let send = self.render_owned(&text.template, text.escape, data(Form::Send))?;
        Ok(Rendered { send, display })
    }
}

/// Every dotted path starting with `root` in `template` (`live`,
/// `live.revision`...), to build a placeholder for a value that a dry run
/// does not know.
pub fn paths_under(template: &str, root: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after.find("}}").unwrap_or(after.len());
        let inner = &after[..close];
        for word in inner.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')) {
            let parts: Vec<&str> = word.split('.').collect();
            if parts.first() == Some(&root) {
                out.push(parts[1..].iter().map(|p| (*p).to_owned()).collect());
            }
        }
        rest = &after[close.min(after.len())..];
    }
    out
}

/// A JSON value that answers every path in `paths` with `<root.path>`.
pub fn placeholder(root: &str, paths: &[Vec<String>]) -> serde_json::Value {
    use serde_json::{Map, Value};
    if paths.iter().all(|p| p.is_empty()) {
        return Value::String(format!("<{root}>"));
    }
    let mut obj = Map::new();
    let mut heads: Vec<&String> = paths.iter().filter_map(|p| p.first()).collect();
    heads.dedup();
    for h in heads {
        let sub: Vec<Vec<String>> = paths
            .iter()
            .filter(|p| p.first() == Some(h))
            .map(|p| p[1..].to_vec())
            .collect();
        obj.insert(h.clone(), placeholder(&format!("{root}.{h}"), &sub));
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;
    use serde_json::json;

    fn text(t: &str, escape: Escape) -> Text {
        Text {
            template: t.into(),
            escape,
            secrets: vec![],
            span: Span::default(),
        }
    }

    #[test]
    fn shell_values_stay_one_word() {
        let t = Templates::new();
        let r = t
            .render(
                &text("echo {{x}}", Escape::Shell),
                false,
                &|_| json!({"x": "x; rm -rf /"}),
            )
            .unwrap();
        assert_eq!(r.send, "echo 'x; rm -rf /'");
        let words = shlex::split(&r.send).unwrap();
        assert_eq!(words, vec!["echo", "x; rm -rf /"]);
    }

    #[test]
    fn url_json_plain() {
        let t = Templates::new();
        let d = json!({"x": "a b/\"c\"&"});
        let r = |e| {
            t.render(&text("{{x}}", e), false, &|_| d.clone())
                .unwrap()
                .send
        };
        assert_eq!(r(Escape::Url), "a%20b%2F%22c%22%26");
        assert_eq!(r(Escape::Json), "a b/\\\"c\\\"&");
        assert_eq!(r(Escape::Plain), "a b/\"c\"&");
    }

    #[test]
    fn strict_mode_refuses_unknown() {
        let t = Templates::new();
        let e = t.render(&text("{{nope}}", Escape::Plain), false, &|_| json!({}));
        assert!(e.is_err());
    }

    #[test]
    fn secrets_rendered_only_for_sending() {
        let t = Templates::new();
        let r = t
            .render(&text("Bearer {{tok}}", Escape::Plain), true, &|f| match f {
                Form::Send => json!({"tok": "hunter2"}),
                Form::Display => json!({"tok": "***"}),
            })
            .unwrap();
        assert_eq!(r.send, "Bearer hunter2");
        assert_eq!(r.display, "Bearer ***");
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn placeholders_for_unknown_values() {
        let p = paths_under("x {{live.revision}} {{#if live.a.b}}y{{/if}}", "live");
        let v = placeholder("live", &p);
        assert_eq!(
            v,
            json!({"revision": "<live.revision>", "a": {"b": "<live.a.b>"}})
        );
    }
}
