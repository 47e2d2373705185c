//! Template rendering: handlebars in strict mode, each substituted value
//! written for where it lands in the text ([`crate::escape`]), rendered
//! twice: once to send (secrets substituted), once to show (secrets as
//! `***`).
//!
//! handlebars does not know where a value lands, so it does not escape:
//! its escape function *marks* each value (NUL, the value in hex, NUL),
//! and the marked output is split into literal text and values, which the
//! lexer of the text's kind ([`Escape`]) places and writes: a shell word
//! quoted for the quotes around it, a URL component percent-encoded, a JSON
//! or PromQL string escaped, a number validated. Values in positions no
//! quoting can protect are refused (the compiler reports them first, with
//! the same lexers). `{{{x}}}` and `{{&x}}` (no escaping) are refused here
//! too for every kind but plain text, whatever the compiler said.
//!
//! Only the helpers in [`HELPERS`] are registered, and the compiler refuses
//! `{{name}}` for those names, so every other `{{name}}` renders the value
//! of `name`.
//!
//! Compiled templates are cached, keyed by their text.

use crate::adapters::Rendered;
use crate::escape::{self, Piece, Slot};
use crate::exec::cond::V;
use crate::plan::{Escape, Func, Text};
use handlebars::template::{Template, TemplateElement};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason,
    ScopedJson,
};
use std::sync::RwLock;

pub use crate::escape::HELPERS;

/// handlebars' built-in helpers that templates may not call.
const UNREGISTERED: &[&str] = &["lookup", "log", "raw"];

/// Writes a shell word for an unquoted position (`shlex` quoting). Kept for
/// the redactor, which looks for a secret in this form too.
pub fn escape_shell(s: &str) -> String {
    escape::write(
        Slot::Shell(escape::ShellQuote::Unquoted),
        &s.replace('\0', ""),
    )
    .unwrap_or_else(|_| "''".to_owned())
}

/// A percent-encoded URL component.
pub fn escape_url(s: &str) -> String {
    escape::write(Slot::UrlPath, s).unwrap_or_default()
}

/// The inside of a JSON string.
pub fn escape_json(s: &str) -> String {
    escape::write(Slot::JsonString, s).unwrap_or_default()
}

/// Marks a value in handlebars' output: NUL, its UTF-8 bytes in hex, NUL.
fn mark(value: &str) -> String {
    let mut out = String::with_capacity(2 * value.len() + 2);
    out.push('\0');
    for b in value.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out.push('\0');
    out
}

/// Splits marked output into literal text and values.
fn unmark(marked: &str) -> Result<Vec<(bool, String)>, String> {
    let mut pieces = Vec::new();
    for (i, part) in marked.split('\0').enumerate() {
        if i % 2 == 0 {
            pieces.push((false, part.to_owned()));
            continue;
        }
        let bytes = (0..part.len())
            .step_by(2)
            .map(|j| {
                part.get(j..j + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or("a text cannot hold a NUL byte")?;
        let value = String::from_utf8(bytes).map_err(|_| "a text cannot hold a NUL byte")?;
        pieces.push((true, value));
    }
    if pieces.len() % 2 == 0 {
        return Err("a text cannot hold a NUL byte".into());
    }
    Ok(pieces)
}

fn registry(stand_ins: bool) -> Handlebars<'static> {
    let mut h = Handlebars::new();
    h.set_strict_mode(true);
    for name in UNREGISTERED {
        h.unregister_helper(name);
    }
    for &func in Func::ALL {
        h.register_helper(func.name(), Box::new(ValueFunction { func, stand_ins }));
    }
    h.register_escape_fn(mark);
    h
}

/// A function of conditions (`length`, `sort`, `join`, `where`, `map`)
/// called in a template: `{{join hosts ", "}}`, `{{length (where
/// pods.items "status.phase" "Failed")}}`. It computes with the same code
/// as a condition, so both agree; its result is a value like any other,
/// written for where it lands (one shell word, an escaped JSON string...).
struct ValueFunction {
    func: Func,
    /// A dry run's stand-in for a value not known (`<live.items>`) passes
    /// through the function instead of failing it.
    stand_ins: bool,
}

impl HelperDef for ValueFunction {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let name = self.func.name();
        let wanted = self.func.arity();
        if h.params().len() != wanted {
            return Err(RenderErrorReason::Other(format!(
                "`{name}` takes {wanted} argument{}, got {}: {}",
                if wanted == 1 { "" } else { "s" },
                h.params().len(),
                self.func.usage()
            ))
            .into());
        }
        let args: Vec<&serde_json::Value> = h.params().iter().map(|p| p.value()).collect();
        if self.stand_ins {
            if let Some(stand_in) = args.iter().find(|a| a.as_str().is_some_and(is_placeholder)) {
                return Ok(ScopedJson::Derived((*stand_in).clone()));
            }
        }
        let values = args.into_iter().map(V::from_json).collect();
        super::values::call(self.func, values, name)
            .map(|v| ScopedJson::Derived(v.to_json()))
            .map_err(|e| RenderErrorReason::Other(e).into())
    }
}

/// Which data a render sees: the send form or the display form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Send,
    Display,
}

/// The compiled-template cache and renderer. One per run.
pub struct Templates {
    reg: RwLock<Handlebars<'static>>,
    /// Dry runs and `plan` know some values only by a stand-in (a capture
    /// of a command not run: `<live.revision>`; a secret not given:
    /// `***`); with this set such a stand-in is shown where a value must be
    /// a number or a URL, instead of failing. Nothing is sent then.
    stand_ins: bool,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// A renderer for runs that send what they render.
    pub fn new() -> Self {
        Templates {
            reg: RwLock::new(registry(false)),
            stand_ins: false,
        }
    }

    /// A renderer for dry runs and `plan`, where stand-ins are accepted.
    pub fn with_stand_ins() -> Self {
        Templates {
            reg: RwLock::new(registry(true)),
            stand_ins: true,
        }
    }

    /// Whether `template` needs rendering at all.
    pub fn is_static(template: &str) -> bool {
        !template.contains("{{")
    }

    /// Renders one template string with one escape kind, in its send form.
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
        let pieces = self.render_ctx(template, kind, &ctx)?;
        self.assemble(kind, &pieces, Form::Send)
    }

    /// Renders one template string with data the renderer may own: no copy
    /// of it is made (`render_str` copies its borrowed data, as handlebars'
    /// `render` does; that copy was a quarter of a realistic dry run).
    fn render_owned(
        &self,
        template: &str,
        kind: Escape,
        data: serde_json::Value,
    ) -> Result<Vec<(bool, String)>, String> {
        self.render_ctx(template, kind, &handlebars::Context::from(data))
    }

    fn render_ctx(
        &self,
        template: &str,
        kind: Escape,
        ctx: &handlebars::Context,
    ) -> Result<Vec<(bool, String)>, String> {
        let lock = &self.reg;
        let registered = lock
            .read()
            .map(|r| r.has_template(template))
            .map_err(|_| "template cache poisoned".to_owned())?;
        if !registered {
            let compiled =
                Template::compile(template).map_err(|e| format!("invalid template: {e}"))?;
            let mut w = lock
                .write()
                .map_err(|_| "template cache poisoned".to_owned())?;
            w.register_template(template, compiled);
        }
        let r = lock
            .read()
            .map_err(|_| "template cache poisoned".to_owned())?;
        if kind != Escape::Plain && r.get_template(template).is_some_and(unescaped) {
            return Err(
                "`{{{x}}}` and `{{&x}}` insert a value unescaped, which only plain text allows"
                    .into(),
            );
        }
        let marked = r.render_with_context(template, ctx).map_err(|e| {
            // The reason without the template text (which may be long).
            let mut m = e.reason().to_string();
            if let Some(line) = e.line_no {
                m.push_str(&format!(" (line {line})"));
            }
            m
        })?;
        unmark(&marked)
    }

    /// Writes rendered pieces as a text of kind `kind`. The send form is
    /// strict: a value that cannot be written where it is fails the render.
    /// The display form never fails on a value (it is shown as it is where
    /// it could not be written); a refused position fails both.
    fn assemble(
        &self,
        kind: Escape,
        pieces: &[(bool, String)],
        form: Form,
    ) -> Result<String, String> {
        let pieces: Vec<Piece> = pieces
            .iter()
            .map(|(value, s)| {
                if *value {
                    Piece::Value(s)
                } else {
                    Piece::Text(s)
                }
            })
            .collect();
        match escape::assemble(kind, &pieces) {
            Ok(s) => Ok(s),
            Err(e) if form == Form::Send && !(self.stand_ins && has_stand_in(&pieces)) => Err(e),
            Err(_) => escape::assemble_leniently(kind, &pieces),
        }
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
        let shown = self.render_owned(&text.template, text.escape, data(Form::Display))?;
        let display = self.assemble(text.escape, &shown, Form::Display)?;
        let send = if with_secrets {
            let sent = self.render_owned(&text.template, text.escape, data(Form::Send))?;
            self.assemble(text.escape, &sent, Form::Send)?
        } else {
            self.assemble(text.escape, &shown, Form::Send)?
        };
        Ok(Rendered { send, display })
    }
}

/// Whether a compiled template inserts a value without escaping.
fn unescaped(t: &Template) -> bool {
    t.elements.iter().any(|e| match e {
        TemplateElement::HtmlExpression(_) => true,
        TemplateElement::HelperBlock(h) => {
            h.template.as_ref().is_some_and(unescaped) || h.inverse.as_ref().is_some_and(unescaped)
        }
        _ => false,
    })
}

/// The stand-in for a secret not given in a dry run.
const SECRET_STAND_IN: &str = crate::events::redact::MASK;

/// Whether a value of `pieces` is a stand-in: `***`, or `<name.path>` as
/// [`placeholder`] makes them.
fn has_stand_in(pieces: &[Piece]) -> bool {
    pieces.iter().any(|p| match p {
        Piece::Value(v) => *v == SECRET_STAND_IN || is_placeholder(v),
        Piece::Text(_) => false,
    })
}

fn is_placeholder(v: &str) -> bool {
    v.strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .is_some_and(|inner| {
            !inner.is_empty()
                && inner
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
        })
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
        let r = |template, e| t.render(&text(template, e), false, &|_| d.clone());
        assert_eq!(
            r("https://h/{{x}}", Escape::Url).unwrap().send,
            "https://h/a%20b%2F%22c%22%26"
        );
        assert_eq!(
            r("{\"a\": \"{{x}}\"}", Escape::Json).unwrap().send,
            "{\"a\": \"a b/\\\"c\\\"&\"}"
        );
        assert_eq!(r("{{x}}", Escape::Plain).unwrap().send, "a b/\"c\"&");
        assert!(r("{\"a\": {{x}}}", Escape::Json).is_err());
    }

    #[test]
    fn the_quotes_around_a_value_decide_its_quoting() {
        let t = Templates::new();
        let d = json!({"note": "$(touch /tmp/PWNED) `x` \"q\" 'a' \\"});
        let r = |template| {
            t.render(&text(template, Escape::Shell), false, &|_| d.clone())
                .unwrap()
                .send
        };
        assert_eq!(
            r("echo \"note: {{note}}\""),
            "echo \"note: \\$(touch /tmp/PWNED) \\`x\\` \\\"q\\\" 'a' \\\\\""
        );
        assert_eq!(
            r("echo 'note: {{note}}'"),
            "echo 'note: $(touch /tmp/PWNED) `x` \"q\" '\\''a'\\'' \\'"
        );
        assert!(t
            .render(
                &text("cat <<EOF\n{{note}}\nEOF", Escape::Shell),
                false,
                &|_| d.clone()
            )
            .is_err());
    }

    #[test]
    fn unescaped_placeholders_are_refused_but_in_plain_text() {
        let t = Templates::new();
        let d = json!({"x": "a; rm -rf /"});
        for template in [
            "echo {{{x}}}",
            "echo {{&x}}",
            "{{#if x}}echo {{{x}}}{{/if}}",
        ] {
            assert!(
                t.render(&text(template, Escape::Shell), false, &|_| d.clone())
                    .is_err(),
                "{template}"
            );
        }
        assert_eq!(
            t.render(&text("{{{x}}}", Escape::Plain), false, &|_| d.clone())
                .unwrap()
                .send,
            "a; rm -rf /"
        );
    }

    #[test]
    fn names_of_unregistered_helpers_render_their_value() {
        let t = Templates::new();
        for name in UNREGISTERED {
            let template = format!("rm -rf /srv/x/{{{{{name}}}}}");
            let d = json!({ *name: "cache" });
            let r = t
                .render(&text(&template, Escape::Shell), false, &|_| d.clone())
                .unwrap();
            assert_eq!(r.send, "rm -rf /srv/x/cache", "{name}");
        }
        // Every built-in handlebars registers is either ours or gone.
        let builtins = [
            "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt",
            "lte", "and", "or", "not", "len",
        ];
        for b in builtins {
            assert!(HELPERS.contains(&b) != UNREGISTERED.contains(&b), "{b}");
        }
    }

    #[test]
    fn stand_ins_are_shown_in_dry_runs_only() {
        let d = json!({"n": "<live.count>"});
        let tx = text("{\"n\": {{n}}}", Escape::Json);
        assert!(Templates::new().render(&tx, false, &|_| d.clone()).is_err());
        let r = Templates::with_stand_ins()
            .render(&tx, false, &|_| d.clone())
            .unwrap();
        assert_eq!(r.display, "{\"n\": <live.count>}");
        assert!(Templates::with_stand_ins()
            .render(&tx, false, &|_| json!({"n": "1, \"x\": 2"}))
            .is_err());
    }

    #[test]
    fn functions_compute_values_written_for_where_they_land() {
        let t = Templates::new();
        let d = json!({
            "hosts": ["web-1", "a b; rm -rf /", "web-0"],
            "pods": {"items": [
                {"name": "api-1", "status": {"phase": "Failed"}},
                {"name": "api-2", "status": {"phase": "Running"}},
                {"name": "api-3", "status": {"phase": "Failed"}}
            ]}
        });
        let render = |template: &str, kind| {
            t.render(&text(template, kind), false, &|_| d.clone())
                .map(|r| r.send)
        };
        // The joined list is one shell word, however hostile its items.
        assert_eq!(
            render("echo {{join (sort hosts) \",\"}}", Escape::Shell).unwrap(),
            "echo 'a b; rm -rf /,web-0,web-1'"
        );
        assert_eq!(
            render(
                "{{length (where pods.items \"status.phase\" \"Failed\")}} failed: {{join (map (where pods.items \"status.phase\" \"Failed\") \"name\") \", \"}}",
                Escape::Plain
            )
            .unwrap(),
            "2 failed: api-1, api-3"
        );
        assert_eq!(
            render("{\"n\": {{length hosts}}}", Escape::Json).unwrap(),
            "{\"n\": 3}"
        );
        assert_eq!(
            render("{{#if (gt (length hosts) 2)}}many{{/if}}", Escape::Plain).unwrap(),
            "many"
        );
        // What the compiler cannot know is an error when rendered, naming it.
        let e = render("{{join pods \",\"}}", Escape::Plain).unwrap_err();
        assert!(e.contains("`join` needs a list"), "{e}");
        let e = render("{{length hosts hosts}}", Escape::Plain).unwrap_err();
        assert!(e.contains("`length` takes 1 argument"), "{e}");
    }

    #[test]
    fn a_dry_runs_stand_in_goes_through_a_function() {
        let d = json!({"live": {"items": "<live.items>"}});
        let tx = text(
            "kubectl delete pod {{join live.items \" \"}}",
            Escape::Shell,
        );
        assert!(Templates::new().render(&tx, false, &|_| d.clone()).is_err());
        let r = Templates::with_stand_ins()
            .render(&tx, false, &|_| d.clone())
            .unwrap();
        assert_eq!(r.display, "kubectl delete pod '<live.items>'");
    }

    #[test]
    fn every_function_of_conditions_is_a_helper() {
        for f in Func::ALL {
            assert!(HELPERS.contains(&f.name()), "{}", f.name());
        }
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
