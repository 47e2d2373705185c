//! What the server knows about one document: the names it declares and
//! every place they are used, read from the pest parse tree (the compiler's
//! own parser).

use crate::syntax::{Rule, RunbookParser};
use pest::iterators::Pair;
use pest::Parser;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Input,
    Secret,
    Channel,
    Template,
    Check,
    Step,
    Capture,
}

impl Kind {
    pub(super) fn word(self) -> &'static str {
        match self {
            Kind::Input => "input",
            Kind::Secret => "secret",
            Kind::Channel => "channel",
            Kind::Template => "template",
            Kind::Check => "check",
            Kind::Step => "step",
            Kind::Capture => "capture",
        }
    }
}

/// A declared name.
#[derive(Debug, Clone)]
pub(super) struct Def {
    pub name: String,
    pub kind: Kind,
    /// The name where it is declared.
    pub name_span: (usize, usize),
    /// The whole declaration.
    pub span: (usize, usize),
    /// What hover shows: the declaration, or for a step its policy.
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    pub defs: Vec<Def>,
    /// A name used (not declared), with where: in conditions, `notify`,
    /// `slack`/`webhook` targets and `{{placeholders}}`.
    pub refs: Vec<(String, (usize, usize))>,
}

impl Index {
    /// `None` when the text does not parse.
    pub(super) fn build(text: &str) -> Option<Index> {
        // The compiler's guard against pathological nesting comes first.
        crate::syntax::parse(text).ok()?;
        let file = RunbookParser::parse(Rule::file, text).ok()?.next()?;
        let mut index = Index::default();
        for pair in file.into_inner().flatten() {
            index.visit(pair);
        }
        Some(index)
    }

    fn visit(&mut self, pair: Pair<'_, Rule>) {
        let kind = match pair.as_rule() {
            Rule::input_decl => Kind::Input,
            Rule::secret_decl => Kind::Secret,
            Rule::channel_decl => Kind::Channel,
            Rule::template_decl => Kind::Template,
            Rule::check_decl => Kind::Check,
            Rule::step_decl => Kind::Step,
            Rule::capture_clause => Kind::Capture,
            Rule::path => {
                let text = pair.as_str();
                let first = text.split('.').next().unwrap_or(text);
                let start = pair.as_span().start();
                self.refs
                    .push((first.to_string(), (start, start + first.len())));
                return;
            }
            Rule::notify_action | Rule::target => {
                for ident in pair.into_inner().filter(|p| p.as_rule() == Rule::ident) {
                    let span = ident.as_span();
                    self.refs
                        .push((ident.as_str().to_string(), (span.start(), span.end())));
                }
                return;
            }
            Rule::string => {
                placeholders(pair.as_str(), pair.as_span().start(), &mut self.refs);
                return;
            }
            _ => return,
        };
        let span = pair.as_span();
        let Some(name) = pair
            .clone()
            .into_inner()
            .find(|p| p.as_rule() == Rule::ident)
        else {
            return;
        };
        let detail = if kind == Kind::Step {
            step_policy(&pair)
        } else {
            one_line(pair.as_str())
        };
        self.defs.push(Def {
            name: name.as_str().to_string(),
            kind,
            name_span: (name.as_span().start(), name.as_span().end()),
            span: (span.start(), span.end()),
            detail,
        });
    }

    /// The declaration or use of a name at `offset` (a cursor just after
    /// the name counts).
    pub(super) fn name_at(&self, offset: usize) -> Option<&str> {
        let within = |&(s, e): &(usize, usize)| s <= offset && offset <= e;
        self.defs
            .iter()
            .find(|d| within(&d.name_span))
            .map(|d| d.name.as_str())
            .or_else(|| {
                self.refs
                    .iter()
                    .find(|(_, span)| within(span))
                    .map(|(n, _)| n.as_str())
            })
    }

    pub(super) fn def(&self, name: &str) -> Option<&Def> {
        self.defs.iter().find(|d| d.name == name)
    }

    /// Every use of a declared name (not its declaration).
    pub(super) fn uses<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
        self.refs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, span)| *span)
    }
}

/// A step's policy, as hover shows it: the clauses that are not its
/// action.
fn step_policy(step: &Pair<'_, Rule>) -> String {
    let mut lines = vec![format!(
        "step {}",
        step.clone()
            .into_inner()
            .find(|p| p.as_rule() == Rule::ident)
            .map_or("", |p| p.as_str())
    )];
    for clause in step.clone().into_inner() {
        match clause.as_rule() {
            Rule::action => {
                let text = one_line(clause.as_str());
                let first = text.split_whitespace().next().unwrap_or("").to_string();
                lines.push(format!("  {first} …"));
            }
            Rule::when_clause
            | Rule::timeout_clause
            | Rule::retry_clause
            | Rule::verify_clause
            | Rule::undo_clause
            | Rule::capture_clause
            | Rule::on_error_clause => lines.push(format!("  {}", one_line(clause.as_str()))),
            _ => {}
        }
    }
    lines.join("\n")
}

/// A declaration on one line, unless it holds a `"""` text (shown as is).
fn one_line(text: &str) -> String {
    if text.contains("\"\"\"") || text.contains('{') {
        return text.to_string();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The names a string's `{{placeholders}}` read: the first segment of each
/// path (`{{state.revision}}` reads `state`), helpers' keywords aside.
fn placeholders(raw: &str, base: usize, refs: &mut Vec<(String, (usize, usize))>) {
    let mut from = 0;
    while let Some(open) = raw[from..].find("{{") {
        let inner_start = from + open + 2;
        let Some(close) = raw[inner_start..].find("}}") else {
            return;
        };
        let inner_end = inner_start + close;
        let inner = &raw[inner_start..inner_end];
        let mut i = 0;
        while i < inner.len() {
            let rest = &inner[i..];
            let Some(c) = rest.chars().next() else { break };
            let starts_word = (c.is_ascii_alphabetic() || c == '_')
                && inner[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|p| p == ' ' || p == '(' || p == '~' || p == '{');
            if !starts_word {
                i += c.len_utf8();
                continue;
            }
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let word = &rest[..len];
            if !matches!(word, "else" | "this" | "true" | "false") {
                let at = base + inner_start + i;
                refs.push((word.to_string(), (at, at + len)));
            }
            // Skip the rest of a dotted path.
            let path_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            i += path_len;
        }
        from = inner_end + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_and_uses_are_found() {
        let text = "runbook r {\n  input svc: string\n  channel ops = console\n  check up {\n    shell \"true\"\n    expect exit == 0\n  }\n  step a {\n    when up and svc == \"x\"\n    run \"echo {{svc}} {{#if svc}}{{svc.x}}{{/if}}\" readonly\n    capture text as out\n  }\n  step b {\n    notify ops \"{{out}}\"\n  }\n}\n";
        let index = Index::build(text).expect("parses");
        let names: Vec<(&str, Kind)> = index
            .defs
            .iter()
            .map(|d| (d.name.as_str(), d.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("svc", Kind::Input),
                ("ops", Kind::Channel),
                ("up", Kind::Check),
                ("a", Kind::Step),
                ("out", Kind::Capture),
                ("b", Kind::Step)
            ]
        );
        let svc: Vec<&str> = index.uses("svc").map(|(s, e)| &text[s..e]).collect();
        assert_eq!(svc, ["svc", "svc", "svc", "svc"]);
        assert_eq!(index.uses("up").count(), 1);
        assert_eq!(index.uses("out").count(), 1);
        assert_eq!(index.uses("ops").count(), 1);
        assert!(index
            .def("a")
            .is_some_and(|d| d.detail.contains("capture text as out")));
    }
}
