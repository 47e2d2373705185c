//! HTTP requests (of checks and steps): URL shape, header names, and a
//! `body json` that must be JSON once its placeholders are filled in.

use super::placeholders;
use super::scope::Scope;
use super::Compiler;
use crate::ast;
use crate::diagnostics::Code;
use crate::diagnostics::Diag;
use crate::plan::{self, Escape};
use crate::span::line_start;

impl Compiler<'_> {
    pub(super) fn headers(&mut self, headers: &[ast::Header], scope: &Scope) -> Vec<plan::Header> {
        headers
            .iter()
            .map(|h| {
                let name_ok = !h.name.value.is_empty()
                    && h.name
                        .value
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b':');
                if !name_ok {
                    self.diags.push(
                        Diag::error(
                            Code::InvalidHeader,
                            format!("invalid header name \"{}\"", h.name.value),
                        )
                        .label(
                            h.name.span,
                            "header names are visible ASCII without `:` or spaces",
                        )
                        .help("the value goes after `=`: `header \"Authorization\" = \"Bearer {{token}}\"`"),
                    );
                }
                plan::Header {
                    name: h.name.value.clone(),
                    value: self.text(&h.value, Escape::Header, scope),
                }
            })
            .collect()
    }

    pub(super) fn http(&mut self, req: &ast::HttpRequest, scope: &Scope) -> plan::HttpRequest {
        let url = self.text(&req.url, Escape::Url, scope);
        self.url_shape(&req.url);
        if let Some(t) = &req.timeout {
            self.positive(t, "a request timeout");
        }
        plan::HttpRequest {
            method: req.method.node.clone(),
            url,
            headers: self.headers(&req.headers, scope),
            body: req.body.as_ref().map(|(kind, s)| {
                let (kind, escape) = match kind {
                    ast::BodyKind::Json => (plan::BodyKind::Json, Escape::Json),
                    ast::BodyKind::Text => (plan::BodyKind::Text, Escape::Plain),
                };
                if kind == plan::BodyKind::Json {
                    self.json_body_shape(s);
                }
                plan::Body {
                    kind,
                    text: self.text(s, escape, scope),
                }
            }),
            timeout: req.timeout.as_ref().map(|t| t.node),
        }
    }

    fn url_shape(&mut self, url: &ast::Str) {
        let v = url.value.trim_start();
        if !(v.starts_with("http://") || v.starts_with("https://") || v.starts_with("{{")) {
            self.diags.push(
                Diag::error(
                    Code::InvalidUrl,
                    "a URL must start with http:// or https://",
                )
                .label(url.span, "not an http(s) URL")
                .help("write the full URL, e.g. \"https://api.example.com/healthz\""),
            );
        }
    }

    /// A `body json` must be JSON once its placeholders are filled in. A
    /// placeholder inside a JSON string stands for text; outside one, for a
    /// number or a bool (`{"limit": {{limit}}}`).
    fn json_body_shape(&mut self, s: &ast::Str) {
        let v = &s.value;
        if v.contains("{{#") || v.contains("{{^") {
            // Blocks change the shape; it is only known when rendered.
            return;
        }
        let (found, _) = placeholders::scan(v);
        // Replace each `{{...}}` holding a placeholder; remember where the
        // probe text and the body text line up again after it.
        let mut probe = String::with_capacity(v.len());
        let mut map: Vec<(usize, usize)> = vec![(0, 0)];
        let mut copied = 0;
        let mut state = JsonScan::default();
        for p in &found {
            let open = v
                .get(..p.start)
                .and_then(|b| b.rfind("{{"))
                .unwrap_or(p.start);
            let close = v
                .get(p.end..)
                .and_then(|r| r.find("}}"))
                .map(|i| p.end + i + 2)
                .unwrap_or(p.end);
            if open < copied || close > v.len() {
                continue;
            }
            let before = &v[copied..open];
            probe.push_str(before);
            state.feed(before);
            probe.push_str(if state.in_string { "x" } else { "0" });
            copied = close;
            map.push((probe.len(), copied));
        }
        probe.push_str(&v[copied..]);
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&probe) {
            let at_probe = offset_of_line_col(&probe, e.line(), e.column());
            let i = map.partition_point(|(p, _)| *p <= at_probe);
            let at = match i.checked_sub(1).and_then(|i| map.get(i)) {
                Some((p, b)) => (b + (at_probe - p)).min(v.len()),
                None => 0,
            };
            let what = e.to_string();
            let what = what
                .split(" at line ")
                .next()
                .unwrap_or("not valid JSON")
                .to_string();
            let mut at = at;
            while at > 0 && !v.is_char_boundary(at) {
                at -= 1;
            }
            let end = v[at..]
                .chars()
                .next()
                .map(|c| at + c.len_utf8())
                .unwrap_or(at);
            self.diags.push(
                Diag::error(
                    Code::InvalidJsonBody,
                    "the request body is not valid JSON",
                )
                .label(s.sub_span(at, end), what)
                .help("write the body as JSON; put text placeholders inside JSON strings: {\"region\": \"{{region}}\", \"limit\": {{limit}}}"),
            );
        }
    }
}

/// Whether the text fed so far ends inside a JSON string.
#[derive(Default)]
struct JsonScan {
    in_string: bool,
    escaped: bool,
}

impl JsonScan {
    fn feed(&mut self, json: &str) {
        for c in json.chars() {
            match c {
                _ if self.escaped => self.escaped = false,
                '\\' if self.in_string => self.escaped = true,
                '"' => self.in_string = !self.in_string,
                _ => {}
            }
        }
    }
}

/// Byte offset of serde_json's 1-based line and column (column 0: the
/// line's start; columns count bytes).
fn offset_of_line_col(text: &str, line: usize, column: usize) -> usize {
    let Some(start) = line_start(text, line) else {
        return text.len();
    };
    let line_len = text[start..].find('\n').unwrap_or(text.len() - start);
    let mut at = start + column.saturating_sub(1).min(line_len);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}
