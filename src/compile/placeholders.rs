//! Finding the names a handlebars text reads, with their positions, so that
//! each unknown name is reported at its own `{{...}}`.

/// One name read by a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// Dotted path as written: `live.revision` -> `["live", "revision"]`.
    pub path: Vec<String>,
    /// Byte range of the name inside the text.
    pub start: usize,
    pub end: usize,
    /// Only tested by `#if`/`#unless`: a missing value is allowed.
    pub optional: bool,
}

/// Problems the scan itself finds (handlebars syntax is checked separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    pub start: usize,
    pub end: usize,
    pub message: String,
    pub help: &'static str,
}

/// The helpers the renderer registers: a helper's name, first in a tag, is
/// not a value's name.
use crate::escape::HELPERS;
use crate::plan::Func;

/// Deepest nesting of `{{#...}}` blocks accepted (rendering recurses).
const MAX_BLOCK_DEPTH: usize = 32;

pub fn scan(text: &str) -> (Vec<Placeholder>, Vec<ScanError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    // Inside `#each`/`#with` the context changes to an element we cannot
    // know at compile time; names there are checked at run time.
    let mut context_depth = 0usize;
    // Open blocks: helper name and the span of its `{{#...}}` tag.
    let mut block_stack: Vec<(String, usize, usize)> = Vec::new();
    // Names tested by enclosing `#if` blocks: reading them inside is safe.
    let mut guards: Vec<Option<String>> = Vec::new();
    let mut pos = 0;
    while let Some(tag) = next_tag(text, pos) {
        let tag = match tag {
            Ok(tag) => tag,
            Err(open) => {
                errors.push(ScanError {
                    start: open,
                    end: open + 2,
                    message: "`{{` is never closed".into(),
                    help: "close the placeholder with `}}`, or write `\\\\{{` for literal braces",
                });
                break;
            }
        };
        let (open, close, inner_start, inner_end) =
            (tag.open, tag.close, tag.inner_start, tag.inner_end);
        pos = tag.end;
        let inner = &text[inner_start..inner_end];
        let trimmed = inner.trim_start();
        let lead = inner_start + (inner.len() - trimmed.len());
        if trimmed == "else" || trimmed.starts_with('^') {
            // The else branch runs when the guard is false.
            if let Some(g) = guards.last_mut() {
                *g = None;
            }
            continue;
        }
        if trimmed.starts_with('!') || trimmed.is_empty() {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('/') {
            let name = rest.trim();
            guards.pop();
            match block_stack.pop() {
                Some((top, o, c)) => {
                    if (top == "each" || top == "with") && context_depth > 0 {
                        context_depth -= 1;
                    }
                    if top != name {
                        errors.push(ScanError {
                            start: open,
                            end: close + 2,
                            message: format!(
                                "`{{{{/{name}}}}}` closes a block opened as `{}`",
                                &text[o..c]
                            ),
                            help: "close each block with its own name: `{{#if x}}...{{/if}}`, `{{#each xs}}...{{/each}}`",
                        });
                    }
                }
                None => errors.push(ScanError {
                    start: open,
                    end: close + 2,
                    message: format!("`{{{{/{name}}}}}` closes a block that was never opened"),
                    help: "remove it, or open the block before it: `{{#if x}}...{{/if}}`",
                }),
            }
            continue;
        }
        if trimmed.starts_with('>') {
            errors.push(ScanError {
                start: open,
                end: close + 2,
                message: "partials (`{{> name}}`) are not supported".into(),
                help: "declare a `template` and use it from `notify` instead",
            });
            continue;
        }
        let (is_block, body, body_start) = match trimmed.strip_prefix('#') {
            Some(b) => (true, b, lead + 1),
            None => (false, trimmed, lead),
        };
        let words = words(body, body_start);
        let Some((first, _, _)) = words.first() else {
            continue;
        };
        if call_tokens(body).len() > 1 {
            // (`{{join}}` alone is a name that is reserved, reported as such.)
            errors.extend(function_arity(body, body_start));
        }
        let helper = if is_block || (words.len() > 1 && HELPERS.contains(first)) {
            Some(*first)
        } else {
            None
        };
        if is_block {
            if block_stack.len() >= MAX_BLOCK_DEPTH {
                errors.push(ScanError {
                    start: open,
                    end: close + 2,
                    message: format!(
                        "blocks nested too deeply (more than {MAX_BLOCK_DEPTH} levels)"
                    ),
                    help: "combine the conditions of nested `{{#if}}` blocks, or split the text",
                });
                return (found, errors);
            }
            block_stack.push((first.to_string(), open, (close + 2).min(text.len())));
            let guard = (*first == "if")
                .then(|| words.get(1).map(|w| w.0.to_string()))
                .flatten();
            guards.push(guard);
        }
        let optional = matches!(helper, Some("if") | Some("unless"));
        let args: &[(&str, usize, usize)] = if helper.is_some() {
            &words[1..]
        } else {
            &words[..]
        };
        if context_depth == 0 {
            for (w, s, e) in args {
                if let Some(path) = as_path(w) {
                    let guarded = guards.iter().flatten().any(|g| g == w);
                    found.push(Placeholder {
                        path,
                        start: *s,
                        end: *e,
                        optional: optional || guarded,
                    });
                }
            }
        }
        if matches!(helper, Some("each") | Some("with")) {
            context_depth += 1;
        }
    }
    for (name, o, c) in block_stack {
        errors.push(ScanError {
            start: o,
            end: c,
            message: format!("`{}` is never closed", &text[o..c]),
            help: match name.as_str() {
                "if" => "end the block with `{{/if}}`",
                "unless" => "end the block with `{{/unless}}`",
                "each" => "end the block with `{{/each}}`",
                "with" => "end the block with `{{/with}}`",
                _ => "end the block with `{{/NAME}}`, NAME being the block's helper",
            },
        });
    }
    (found, errors)
}

/// Where `pair` first occurs in `text`. A text is scanned for `{{` and `}}`
/// many times; `str::find` would build a substring searcher for each call.
pub(super) fn find(text: &str, pair: &[u8; 2]) -> Option<usize> {
    let b = text.as_bytes();
    memchr::memchr_iter(pair[0], b).find(|&i| b.get(i + 1) == Some(&pair[1]))
}

/// One `{{...}}` tag of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tag {
    /// Where `{{` opens and where the tag ends (after `}}` or `}}}`).
    pub open: usize,
    pub end: usize,
    /// Where the closing `}}` starts.
    pub close: usize,
    /// Its inside, without braces, `~` or `&`.
    pub inner_start: usize,
    pub inner_end: usize,
    /// `{{{x}}}` or `{{&x}}`: handlebars inserts the value unescaped.
    pub raw: bool,
}

impl Tag {
    /// Whether the tag writes a value (`{{x}}`, `{{len xs}}`), rather than
    /// opening, closing or continuing a block, or being a comment.
    pub(super) fn writes(&self, text: &str) -> bool {
        let inner = text[self.inner_start..self.inner_end].trim();
        !(inner.is_empty()
            || inner == "else"
            || inner.starts_with(['#', '/', '^', '!', '>', '*'])
            || inner.starts_with("else "))
    }
}

/// The next tag of `text` at or after `pos`; `Err(open)` for a `{{` that
/// is never closed. `\{{` (handlebars' escape for literal braces) is text.
pub(super) fn next_tag(text: &str, mut pos: usize) -> Option<Result<Tag, usize>> {
    let bytes = text.as_bytes();
    let open = loop {
        let open = pos + find(&text[pos..], b"{{")?;
        if open > 0 && bytes[open - 1] == b'\\' {
            pos = open + 2;
            continue;
        }
        break open;
    };
    let Some(close) = find(&text[open..], b"}}") else {
        return Some(Err(open));
    };
    let close = open + close;
    let mut end = close + 2;
    let mut inner_start = open + 2;
    let mut inner_end = close;
    let raw = matches!(
        text[inner_start..inner_end]
            .trim_start_matches('~')
            .bytes()
            .next(),
        Some(b'{' | b'&')
    );
    while inner_start < inner_end && matches!(bytes[inner_start], b'{' | b'~' | b'&') {
        inner_start += 1;
    }
    while inner_end > inner_start && matches!(bytes[inner_end - 1], b'}' | b'~') {
        inner_end -= 1;
    }
    let triple = bytes.get(open + 2) == Some(&b'{');
    if triple && text.get(end..).is_some_and(|r| r.starts_with('}')) {
        end += 1; // closing brace of a triple stash
    }
    Some(Ok(Tag {
        open,
        end,
        close,
        inner_start,
        inner_end,
        raw,
    }))
}

/// Every tag of `text`, in order (up to a `{{` never closed).
pub(super) fn tags(text: &str) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(Ok(tag)) = next_tag(text, pos) {
        pos = tag.end;
        out.push(tag);
    }
    out
}

/// Splits an expression body into words, skipping quoted strings and
/// parentheses and keeping the value of `key=value` pairs.
fn words(body: &str, base: usize) -> Vec<(&str, usize, usize)> {
    let mut out = Vec::new();
    let bytes = body.as_bytes();
    let mut i = 0;
    // The first word of a `(subexpression)` is a helper's name.
    let mut after_paren = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() || c == b'(' || c == b')' || c == b'=' {
            after_paren = c == b'(' || (after_paren && c.is_ascii_whitespace());
            i += 1;
            continue;
        }
        let helper_position = std::mem::take(&mut after_paren);
        if c == b'"' || c == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                i += 1;
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && !(bytes[i].is_ascii_whitespace() || matches!(bytes[i], b'(' | b')' | b'='))
        {
            i += 1;
        }
        // `key=value`: the key is not a name.
        if i < bytes.len() && bytes[i] == b'=' {
            continue;
        }
        if helper_position && HELPERS.contains(&&body[start..i]) {
            continue;
        }
        out.push((&body[start..i], base + start, base + i));
    }
    out
}

/// A call of one of the functions of conditions (`{{join hosts ", "}}`,
/// `(length pods)`) with the wrong number of arguments, at the top level of
/// a tag or in a `(subexpression)`: the renderer would fail on every run.
fn function_arity(body: &str, base: usize) -> Vec<ScanError> {
    let mut errors = Vec::new();
    // The tokens of one call: (start, end, is_group) of each word, string
    // or parenthesised group, at one depth.
    let tokens = call_tokens(body);
    if let Some(&(s, e, false)) = tokens.first() {
        let name = &body[s..e];
        if let Some(func) = Func::ALL.iter().find(|f| f.name() == name) {
            let got = tokens.len() - 1;
            let wanted = func.arity();
            if got != wanted {
                errors.push(ScanError {
                    start: base + s,
                    end: base + tokens.last().map_or(e, |t| t.1),
                    message: format!(
                        "`{name}` takes {wanted} argument{}, here {got}",
                        if wanted == 1 { "" } else { "s" }
                    ),
                    help: "in a template a function's arguments follow its name, separated by \
                           spaces: `{{join hosts \", \"}}`, `{{length (where pods.items \
                           \"status.phase\" \"Failed\")}}`",
                });
            }
        }
    }
    for (s, e, group) in tokens {
        if group {
            errors.extend(function_arity(&body[s + 1..e - 1], base + s + 1));
        }
    }
    errors
}

/// Splits a call into its words, quoted strings and `( ... )` groups.
fn call_tokens(body: &str) -> Vec<(usize, usize, bool)> {
    let bytes = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c == b'(' {
            let mut depth = 0usize;
            let mut quote = None;
            while i < bytes.len() {
                match (quote, bytes[i]) {
                    (Some(q), b) if b == q => quote = None,
                    (Some(_), _) => {}
                    (None, b'"' | b'\'') => quote = Some(bytes[i]),
                    (None, b'(') => depth += 1,
                    (None, b')') => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            // An unclosed group is handlebars' error to report: it is not
            // looked into.
            out.push((start, i, depth == 0));
            continue;
        }
        if c == b'"' || c == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                i += 1;
            }
            i = (i + 1).min(bytes.len());
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'(' {
                i += 1;
            }
        }
        out.push((start, i, false));
    }
    out
}

/// A word that names a value: `x`, `x.y`. Not literals, `this`, `@index`,
/// `../x` or `[0]` segments (those are resolved at run time).
fn as_path(word: &str) -> Option<Vec<String>> {
    if word.is_empty()
        || matches!(word, "true" | "false" | "null" | "this" | "else")
        || word.starts_with('@')
        || word.starts_with("this")
        || word.starts_with("..")
        || word.starts_with(|c: char| c.is_ascii_digit() || c == '-')
    {
        return None;
    }
    let parts: Vec<String> = word.split('.').map(str::to_string).collect();
    let root_ok = parts.first().is_some_and(|p| {
        p.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    root_ok.then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &str) -> Vec<(String, bool)> {
        scan(t)
            .0
            .into_iter()
            .map(|p| (p.path.join("."), p.optional))
            .collect()
    }

    #[test]
    fn finds_names_with_positions() {
        let (p, _) = scan("a {{service}} b {{ live.revision }}");
        assert_eq!(p[0].path, vec!["service"]);
        assert_eq!(
            &"a {{service}} b {{ live.revision }}"[p[1].start..p[1].end],
            "live.revision"
        );
    }

    #[test]
    fn if_arguments_are_optional_and_helpers_are_not_names() {
        assert_eq!(
            names("{{#if detail}}{{detail}}{{/if}}{{#if (eq a \"x\")}}y{{/if}}"),
            vec![
                ("detail".into(), true),
                ("detail".into(), true),
                ("a".into(), true)
            ]
        );
    }

    #[test]
    fn functions_are_helpers_and_their_arguments_are_counted() {
        assert_eq!(
            names("{{join hosts \", \"}} {{length (where pods.items \"a.b\" \"x\")}}"),
            vec![("hosts".into(), false), ("pods.items".into(), false)]
        );
        let errors = |t: &str| {
            scan(t)
                .1
                .into_iter()
                .map(|e| (t[e.start..e.end].to_owned(), e.message))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            errors("x {{join hosts}} y"),
            vec![(
                "join hosts".into(),
                "`join` takes 2 arguments, here 1".into()
            )]
        );
        assert_eq!(
            errors("{{#if (gt (length pods \"x\") 1)}}y{{/if}}"),
            vec![(
                "length pods \"x\"".into(),
                "`length` takes 1 argument, here 2".into()
            )]
        );
        assert!(errors("{{join (sort hosts) \" \"}} {{length \"(\"}}").is_empty());
        // Unbalanced text is handlebars' error, not a panic here.
        let _ = scan("{{join (sort hosts \" \"}}");
        let _ = scan("{{join ((( }}");
    }

    #[test]
    fn each_bodies_are_left_to_run_time() {
        assert_eq!(
            names("{{#each regions}}{{this}} {{name}}{{/each}}{{x}}"),
            vec![("regions".into(), false), ("x".into(), false)]
        );
    }

    #[test]
    fn comments_escapes_and_triple_stash() {
        assert_eq!(
            names("{{! no }} \\{{literal}} {{{raw}}} {{~trim~}}"),
            vec![("raw".into(), false), ("trim".into(), false)]
        );
    }
}
