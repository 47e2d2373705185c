//! Texts (commands, URLs, messages, templates): handlebars syntax is checked
//! and every `{{name}}` must resolve where the text is used.

use super::placeholders;
use super::scope::{not_here_label, Resolved, Scope};
use super::{mark_used, Compiler};
use crate::ast;
use crate::diagnostics::Code;
use crate::diagnostics::{did_you_mean, Diag};
use crate::escape::{self, Piece, Slot};
use crate::plan::{self, Escape, RefRoot, Type};

impl Compiler<'_> {
    pub(super) fn text(&mut self, s: &ast::Str, escape: Escape, scope: &Scope) -> plan::Text {
        let mut secrets: Vec<String> = Vec::new();
        // Our own scan names block and brace mistakes precisely; handlebars'
        // parser is the authority for everything else.
        let (found, scan_errors) = placeholders::scan(&s.value);
        let scan_failed = !scan_errors.is_empty();
        for e in scan_errors {
            self.diags.push(
                Diag::error(Code::InvalidTemplate, e.message)
                    .label(s.sub_span(e.start, e.end), "here")
                    .help(e.help),
            );
        }
        // A named template is checked at each use (its names resolve in the
        // scope of the use), but its syntax only once.
        let checked = scan_failed
            || only_plain_placeholders(&s.value)
            || self.templates_ok.contains(&s.value);
        let parsed = if checked {
            Ok(())
        } else {
            handlebars::Template::compile(&s.value).map(drop)
        };
        if parsed.is_ok() && !checked {
            self.templates_ok.insert(s.value.clone());
        }
        // Looked for only when handlebars failed: compiling a valid text
        // does not pay for it.
        let else_named = || {
            found.iter().find(|p| {
                p.path
                    .first()
                    .is_some_and(|r| r.starts_with("else") && r != "else")
            })
        };
        if let Some(p) = parsed.as_ref().err().and_then(|_| else_named()) {
            // handlebars reads any `{{else...}}` as an `{{else}}` tag, and
            // then reports only "invalid syntax".
            let name = p.path.join(".");
            self.diags.push(
                Diag::error(
                    Code::InvalidTemplate,
                    format!("`{{{{{name}}}}}` reads as `{{{{else}}}}` in a template"),
                )
                .label(s.sub_span(p.start, p.end), "a name that begins with `else`")
                .help(format!(
                    "rename `{}` (handlebars takes any placeholder beginning with `else` for the `{{{{else}}}}` of a block)",
                    p.path.first().map(String::as_str).unwrap_or(&name)
                )),
            );
        } else if let Err(e) = parsed {
            let at = e
                .pos()
                .and_then(|(line, col)| offset_of(&s.value, line, col))
                .map(|o| s.sub_span(o, (o + 1).min(s.value.len())))
                .unwrap_or(s.span);
            use handlebars::TemplateErrorReason as R;
            let message = match e.reason() {
                // The parser's own message lists its grammar rules.
                R::InvalidSyntax(why) if why.contains("limit reached") => {
                    "template nested too deeply".to_string()
                }
                R::InvalidSyntax(_) => "invalid template syntax".to_string(),
                R::MismatchingClosedHelper(open, close) => {
                    format!("`{{{{#{open}}}}}` is closed by `{{{{/{close}}}}}`")
                }
                other => format!("invalid template: {other}"),
            };
            self.diags.push(
                Diag::error(Code::InvalidTemplate, message)
                    .label(at, "the template cannot be read from here")
                    .help("placeholders are `{{name}}`; blocks are `{{#if x}}...{{/if}}`; write `\\\\{{` for literal braces"),
            );
        }
        let tags = placeholders::tags(&s.value);
        // `{{len}}` calls a helper: reported once, as such, not resolved.
        let helper_calls: Vec<usize> = tags
            .iter()
            .filter(|t| t.writes(&s.value) && helper_name(&s.value, t).is_some())
            .map(|t| {
                t.inner_start
                    + (s.value[t.inner_start..t.inner_end].len()
                        - s.value[t.inner_start..t.inner_end].trim_start().len())
            })
            .collect();
        // The type of each name read, by its position, for the places where
        // a value must be a number.
        let mut types: Vec<(usize, Type)> = Vec::new();
        for p in found {
            let span = s.sub_span(p.start, p.end);
            let Some(root) = p.path.first() else { continue };
            if helper_calls.contains(&p.start) {
                continue;
            }
            match scope.resolve(&self.globals, root) {
                Resolved::Found(kind, ty) => {
                    mark_used(&mut self.used, root);
                    if p.path.len() == 1 {
                        types.push((p.start, ty.clone()));
                    }
                    if ty == Type::Secret && !secrets.contains(root) {
                        secrets.push(root.clone());
                    }
                    if ty == Type::Secret && !whole_placeholder(&s.value, &tags, p.start, p.end) {
                        self.diags.push(
                            Diag::error(
                                Code::SecretExposed,
                                format!("secret `{root}` can only be substituted as it is"),
                            )
                            .label(span, "a secret read by a helper or a block")
                            .help(format!(
                                "write `{{{{{root}}}}}` on its own: a helper (`len`, `eq`, `#if`...) would \
                                 turn the secret into a value that is shown (its length, whether it \
                                 equals something), which the journal cannot mask"
                            )),
                        );
                    }
                    let allowed = super::scope::builtin_fields(kind, scope);
                    if let Some(allowed) = allowed {
                        let field = p.path.get(1).map(String::as_str).unwrap_or("");
                        let fields: Vec<String> =
                            allowed.iter().map(|f| format!("{root}.{f}")).collect();
                        if field.is_empty() {
                            self.diags.push(
                                Diag::error(
                                    Code::UnknownField,
                                    format!(
                                        "`{root}` is a built-in record; read one of its fields"
                                    ),
                                )
                                .label(span, format!("write {}", fields.join(", ")))
                                .help(format!(
                                    "e.g. `{{{{{}}}}}`",
                                    fields.first().map(String::as_str).unwrap_or("run.id")
                                )),
                            );
                        } else if allowed.contains(&field) && p.path.len() == 2 {
                            types.push((p.start, super::scope::builtin_field_type(kind, field)));
                        } else {
                            self.diags.push(
                                Diag::error(
                                    Code::UnknownField,
                                    format!("`{}` has no field `{field}`", root),
                                )
                                .label(span, format!("known fields: {}", allowed.join(", ")))
                                .help(
                                    did_you_mean(field, allowed.iter().copied()).unwrap_or_else(
                                        || format!("write one of {}", fields.join(", ")),
                                    ),
                                ),
                            );
                        }
                    } else if p.path.len() > 1 && !matches!(ty, Type::Json | Type::List(_)) {
                        self.diags.push(
                            Diag::error(
                                Code::UnknownField,
                                format!(
                                    "`{root}` is {}; it has no field `{}`",
                                    super::an(&ty),
                                    p.path[1]
                                ),
                            )
                            .label(span, "no such field")
                            .help("only JSON values (`capture json`) have fields"),
                        );
                    }
                    if kind == RefRoot::Check {
                        self.diags.push(
                            Diag::error(
                                Code::CheckInText,
                                format!("check `{root}` cannot be placed in text"),
                            )
                            .label(span, "a check is a condition, not a value")
                            .help("use it in `when` or `verify`"),
                        );
                    }
                }
                Resolved::NotHere(code, msg, help) => {
                    // Reported even under `{{#if}}`: a secret read inside
                    // the guard would still be shown. Counted as used: the
                    // error says what is wrong with it.
                    mark_used(&mut self.used, root);
                    self.diags.push(
                        Diag::error(code, msg)
                            .label(span, not_here_label(code))
                            .maybe_help(help),
                    );
                }
                Resolved::Unknown => {
                    if !p.optional {
                        let names = scope.visible_names(&self.globals);
                        let mut help = did_you_mean(root, names.iter().copied());
                        if help.is_none() && !scope.args.is_empty() {
                            help = Some(format!("this message can read its arguments ({}), inputs, secrets where sent, captures and built-ins", scope.args.join(", ")));
                        }
                        self.diags.push(
                            Diag::error(Code::UnknownName, format!("unknown name `{root}` in template"))
                                .label(span, "not an input, secret, capture, loop variable, argument or built-in")
                                .maybe_help(help.or_else(|| Some("declare it as an `input`, or fix the spelling".into()))),
                        );
                    }
                }
            }
        }
        if !scan_failed {
            self.value_positions(s, escape, &tags, &types);
        }
        let template = if escape == Escape::Shell && !scan_failed {
            super::list_words::spread_lists(&s.value, &tags, &types)
        } else {
            s.value.clone()
        };
        plan::Text {
            template,
            escape,
            secrets,
            span: s.span,
        }
    }

    /// Where each value of the text lands, by the same lexers the renderer
    /// uses ([`crate::escape`]): positions no quoting protects, unescaped
    /// `{{{x}}}`, values of a type that cannot go where a number goes, and
    /// `{{name}}` that handlebars would read as a call of helper `name`.
    fn value_positions(
        &mut self,
        s: &ast::Str,
        escape: Escape,
        tags: &[placeholders::Tag],
        types: &[(usize, Type)],
    ) {
        let v = &s.value;
        if v.contains('\0') {
            self.diags.push(
                Diag::error(Code::InvalidTemplate, "a text cannot hold a NUL byte")
                    .label(s.span, "this text holds `\\u{0}`")
                    .help("remove the NUL byte: no command, URL or message can carry it"),
            );
            return;
        }
        let mut pieces = Vec::new();
        let mut writers = Vec::new();
        let mut at = 0;
        for tag in tags {
            pieces.push(Piece::Text(&v[at..tag.open]));
            at = tag.end;
            if tag.writes(v) {
                pieces.push(Piece::Value(""));
                writers.push(tag);
            }
        }
        pieces.push(Piece::Text(&v[at..]));
        let slots = escape::slots(escape, &pieces);
        for (tag, slot) in writers.iter().zip(slots) {
            let span = s.sub_span(tag.open, tag.end);
            let shown = &v[tag.open..tag.end];
            if let Some(name) = helper_name(v, tag) {
                self.diags.push(
                    Diag::error(
                        Code::ReservedName,
                        format!("`{shown}` calls the template helper `{name}`, not a value"),
                    )
                    .label(span, format!("`{name}` is a helper"))
                    .help(format!(
                        "rename the value: the helpers ({}) cannot be read as `{{{{name}}}}`",
                        crate::escape::HELPERS.join(", ")
                    )),
                );
                continue;
            }
            if tag.raw && escape != Escape::Plain {
                self.diags.push(
                    Diag::error(
                        Code::UnescapedPlaceholder,
                        format!("`{shown}` would insert the value unescaped"),
                    )
                    .label(span, "triple braces (or `&`) skip escaping")
                    .help(format!(
                        "write `{{{{{}}}}}`: values are escaped for where they land, and only messages take them unescaped",
                        v[tag.inner_start..tag.inner_end].trim()
                    )),
                );
                continue;
            }
            match slot {
                Err(r) => self.diags.push(
                    Diag::error(
                        Code::UnsafePlaceholder,
                        format!("`{shown}` is {}: a value cannot go there", r.place),
                    )
                    .label(span, format!("a value {}", r.place))
                    .help(r.help),
                ),
                Ok(slot) if slot.wants_number() => {
                    let ty = types
                        .iter()
                        .find(|(start, _)| (tag.inner_start..tag.inner_end).contains(start))
                        .map(|(_, ty)| ty);
                    if let Some(ty) = ty.filter(|ty| !number_like(ty, slot)) {
                        let (what, how) = if slot == Slot::JsonScalar {
                            (
                                "outside a JSON string, a value must be a number or a bool",
                                format!("put it inside a JSON string: \"{shown}\""),
                            )
                        } else {
                            (
                                "outside a PromQL string, a value must be a number",
                                format!("put it inside a label matcher's string: {{job=\"{shown}\"}}, or declare the input as `int` or `float`"),
                            )
                        };
                        self.diags.push(
                            Diag::error(
                                Code::UnsafePlaceholder,
                                format!("`{shown}` is {}; {what}", super::an(ty)),
                            )
                            .label(span, format!("{} here", super::an(ty)))
                            .help(how),
                        );
                    }
                }
                Ok(_) => {}
            }
        }
    }
}

/// The helper a writing tag calls by its bare name (`{{len}}`), if any.
/// Whether the name at `start..end` is a whole placeholder (`{{name}}`,
/// `{{{name}}}`), not an argument of a helper or a block.
fn whole_placeholder(text: &str, tags: &[placeholders::Tag], start: usize, end: usize) -> bool {
    tags.iter().any(|t| {
        t.inner_start <= start
            && end <= t.inner_end
            && text[t.inner_start..t.inner_end].trim() == &text[start..end]
    })
}

fn helper_name<'t>(text: &'t str, tag: &placeholders::Tag) -> Option<&'t str> {
    let body = text[tag.inner_start..tag.inner_end].trim();
    crate::escape::HELPERS.contains(&body).then_some(body)
}

/// Whether a value of type `ty` can be written in `slot`, a place for a
/// number (a JSON scalar also takes a bool). Values known only at run time
/// (JSON captures, secrets) are checked when rendered.
fn number_like(ty: &Type, slot: Slot) -> bool {
    match ty {
        Type::Int | Type::Float | Type::Json | Type::Secret => true,
        Type::Bool => slot == Slot::JsonScalar,
        Type::OneOf(values) => values
            .iter()
            .all(|v| v.parse::<f64>().is_ok_and(f64::is_finite)),
        Type::String | Type::Duration | Type::List(_) | Type::Time => false,
    }
}

/// Whether `text` is raw text and `{{name}}` / `{{a.b}}` placeholders only:
/// handlebars accepts every such text, so its (comparatively slow) parser
/// is only needed for blocks, helpers, escapes and anything unusual.
/// Deliberately strict: any doubt answers `false`.
pub(super) fn only_plain_placeholders(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if b.get(i + 1) == Some(&b'{') => return false,
            b'}' if b.get(i + 1) == Some(&b'}') => return false,
            b'{' if b.get(i + 1) == Some(&b'{') => {
                if i > 0 && b[i - 1] == b'{' {
                    return false;
                }
                let inner_start = i + 2;
                let Some(len) = placeholders::find(&text[inner_start..], b"}}") else {
                    return false;
                };
                let close = inner_start + len;
                if !is_plain_path(text[inner_start..close].trim_matches(' '))
                    || b.get(close + 2) == Some(&b'}')
                {
                    return false;
                }
                i = close + 2;
            }
            _ => i += 1,
        }
    }
    true
}

/// `name` or `a.b.c`: identifier segments joined by single dots.
fn is_plain_path(p: &str) -> bool {
    !p.is_empty()
        && p.split('.').all(|seg| {
            let mut chars = seg.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        // handlebars reads `{{else...}}` as an else tag, whatever follows.
        && !p.starts_with("else")
        && !p.starts_with("this")
        && !matches!(p, "true" | "false" | "null")
}

/// Byte offset of a 1-based line / column (handlebars counts columns from 1
/// in characters; it sometimes reports one past the end).
fn offset_of(text: &str, line: usize, col: usize) -> Option<usize> {
    let mut start = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            let within = l
                .char_indices()
                .nth(col.saturating_sub(1))
                .map(|(b, _)| b)
                .unwrap_or(l.len());
            return Some((start + within).min(text.len().saturating_sub(1)));
        }
        start += l.len() + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::only_plain_placeholders as plain;

    #[test]
    fn plain_placeholders_are_recognised_conservatively() {
        assert!(plain(
            "configctl revert {{service}} --to {{ live.revision }}~1"
        ));
        assert!(plain("no placeholders, {single} braces"));
        for odd in [
            "{{#if x}}y{{/if}}",
            "{{x y}}",
            "{{{raw}}}",
            "\\{{literal}}",
            "{\"a\": {\"b\": 1}}",
            "{{x}}}",
            "{{x",
            "{{a..b}}",
            "{{else}}",
            "{{~x}}",
            "{{@index}}",
            "{{x.[0]}}",
        ] {
            assert!(!plain(odd), "{odd}");
        }
    }

    proptest::proptest! {
        #[test]
        fn plain_texts_always_compile_in_handlebars(
            parts in proptest::collection::vec(
                proptest::sample::select(&[
                    "{{", "}}", "{", "}", "a", "b_1", ".", " ", "\\", "#", "/", "else", "~", "!", "(", "\"",
                ][..]),
                0..16,
            )
        ) {
            let t = parts.concat();
            if plain(&t) {
                proptest::prop_assert!(handlebars::Template::compile(&t).is_ok(), "{}", t);
            }
        }
    }

    #[test]
    fn whatever_is_plain_handlebars_accepts() {
        for t in ["{{a}}", "x {{ a.b_c }} y", "{{a}}{{b}}", "}", "{ {{a}} }"] {
            assert!(plain(t), "{t}");
            assert!(handlebars::Template::compile(t).is_ok(), "{t}");
        }
    }
}
