//! Human names for grammar rules, used in syntax errors. The match is
//! exhaustive so that a new rule cannot ship without a name.

use super::Rule;
use crate::diagnostics::did_you_mean;
use crate::span::Span;

pub fn human_name(rule: Rule) -> &'static str {
    match rule {
        Rule::file => "a runbook file",
        Rule::runbook => "`runbook NAME { ... }`",
        Rule::title_decl => "`title`",
        Rule::owner_decl => "`owner`",
        Rule::tags_decl => "`tags`",
        Rule::lock_decl => "`lock`",
        Rule::string_list => "a list of strings like `[\"a\", \"b\"]`",
        Rule::input_decl => "an input declaration",
        Rule::type_expr => "a type (string, int, float, bool, duration, list<T>, one_of [...])",
        Rule::scalar_type => "a type (string, int, float, bool, duration, list<T>, one_of [...])",
        Rule::list_type => "`list<T>`",
        Rule::one_of_type => "`one_of [...]`",
        Rule::secret_decl => "a secret declaration",
        Rule::secret_source => "`env \"NAME\"` or `file \"PATH\"`",
        Rule::channel_decl => "a channel declaration",
        Rule::slack_channel => "`slack URL`",
        Rule::webhook_channel => "`webhook URL`",
        Rule::console_channel => "`console`",
        Rule::target => "a URL string or a secret name",
        Rule::header_block => "a `{ header ... }` block",
        Rule::header => "`header \"Name\" = \"value\"`",
        Rule::template_decl => "a template declaration",
        Rule::check_decl => "a check declaration",
        Rule::promql_probe => "`promql \"QUERY\"`",
        Rule::shell_probe => "`shell \"COMMAND\"`",
        Rule::expect_clause => "`expect CONDITION`",
        Rule::no_data_clause => "`on no_data fail|pass`",
        Rule::body_item => "a step or a block",
        Rule::parallel_block => "`parallel { ... }`",
        Rule::always_block => "`always { ... }`",
        Rule::if_block => "`if CONDITION { ... }`",
        Rule::else_if => "`else if CONDITION { ... }`",
        Rule::else_arm => "`else { ... }`",
        Rule::try_block => "`try { ... } else try { ... } else { ... }`",
        Rule::else_try => "`else try { ... }`",
        Rule::step_decl => "a step",
        Rule::when_clause => "`when CONDITION`",
        Rule::loop_clause => "`loop until CONDITION every D within D`",
        Rule::kw_loop => "`loop`",
        Rule::kw_jitter => "`jitter`",
        Rule::jitter => "`jitter`",
        Rule::kw_until => "`until`",
        Rule::retry_clause => "`retry N`",
        Rule::exponential => "`exponential`",
        Rule::timeout_clause => "`timeout DURATION`",
        Rule::verify_clause => "`verify CONDITION within D every D`",
        Rule::undo_clause => "`undo ACTION`",
        Rule::undo_none => "`undo none \"REASON\"`",
        Rule::undo_when => "`when CONDITION`",
        Rule::keep_clause => "`keep`",
        Rule::undo_timeout => "`timeout DURATION`",
        Rule::capture_clause => "`capture json|text as NAME`",
        Rule::capture_format => "`json` or `text`",
        Rule::on_error_clause => "`on_error continue`",
        Rule::action => "an action (run, http, notify, approve, wait, for)",
        Rule::for_action => "`for X in LIST { ... }`",
        Rule::for_block => "`for X in [...] { steps }`",
        Rule::for_parallel => "`parallel N`",
        Rule::for_max_failures => "`max_failures N`",
        Rule::run_action => "`run \"COMMAND\"`",
        Rule::effect => "`readonly` or `irreversible`",
        Rule::http_action => "`http METHOD \"URL\"`",
        Rule::http_method => "an HTTP method (get, head, post, put, patch, delete)",
        Rule::request_block => "a `{ ... }` request block",
        Rule::request_timeout => "`timeout DURATION`",
        Rule::request_body => "`body \"...\"`",
        Rule::body_kind => "`json` or `text`",
        Rule::notify_action => "`notify CHANNEL MESSAGE`",
        Rule::notify_args => "`{ name: \"value\", ... }`",
        Rule::notify_arg => "`name: \"value\"`",
        Rule::approve_action => "`approve \"MESSAGE\"`",
        Rule::approve_by_other => "`by other`",
        Rule::wait_action => "`wait DURATION`",
        Rule::escalate_action => "`escalate \"REASON\"`",
        Rule::handler => "`on failure { ... }` or `on success { ... }`",
        Rule::handler_kind => "`failure` or `success`",
        Rule::after_rollback => "`after rollback verify ...`",
        Rule::status_update => "`every DURATION notify CHANNEL MESSAGE`",
        Rule::expr => "a condition",
        Rule::operand => "a value or a name",
        Rule::op_not => "`not`",
        Rule::op_and => "`and`",
        Rule::op_or => "`or`",
        Rule::op_eq => "`==`",
        Rule::op_ne => "`!=`",
        Rule::op_le => "`<=`",
        Rule::op_ge => "`>=`",
        Rule::op_lt => "`<`",
        Rule::op_gt => "`>`",
        Rule::op_in => "`in`",
        Rule::op_contains => "`contains`",
        Rule::op_matches => "`matches`",
        Rule::op_add => "`+`",
        Rule::op_sub => "`-`",
        Rule::op_mul => "`*`",
        Rule::op_div => "`/`",
        Rule::call => "a function call like `length(pods)`",
        Rule::index => "an index like `[0]`",
        Rule::field => "a field like `.name`",
        Rule::postfix => "an index `[N]` or a field `.name`",
        Rule::path => "a name",
        Rule::reserved => "a reserved word",
        Rule::clause_word => "a step clause keyword",
        Rule::literal => "a value (string, number, duration, bool or list)",
        Rule::list_lit => "a list `[...]`",
        Rule::bool_lit => "`true` or `false`",
        Rule::number => "a number",
        Rule::duration | Rule::duration_lit => "a duration (like `30s`, `5m`, `800ms`)",
        Rule::int | Rule::int_lit => "a whole number",
        Rule::input_ref => "an input's name",
        Rule::string => "a string in double quotes",
        Rule::triple_string => "a `\"\"\"` string",
        Rule::plain_string => "a string in double quotes",
        Rule::plain_char => "a character of a string",
        Rule::ident => "a name",
        Rule::kw_runbook => "`runbook`",
        Rule::kw_title => "`title`",
        Rule::kw_owner => "`owner`",
        Rule::kw_tags => "`tags`",
        Rule::kw_lock => "`lock`",
        Rule::kw_input => "`input`",
        Rule::kw_list => "`list`",
        Rule::kw_one_of => "`one_of`",
        Rule::kw_secret => "`secret`",
        Rule::kw_env => "`env`",
        Rule::kw_file => "`file`",
        Rule::kw_channel => "`channel`",
        Rule::kw_slack => "`slack`",
        Rule::kw_webhook => "`webhook`",
        Rule::kw_console => "`console`",
        Rule::kw_header => "`header`",
        Rule::kw_template => "`template`",
        Rule::kw_check => "`check`",
        Rule::kw_promql => "`promql`",
        Rule::kw_shell => "`shell`",
        Rule::kw_expect => "`expect`",
        Rule::kw_on => "`on`",
        Rule::kw_no_data => "`no_data`",
        Rule::kw_fail => "`fail`",
        Rule::kw_pass => "`pass`",
        Rule::kw_parallel => "`parallel`",
        Rule::kw_step => "`step`",
        Rule::kw_when => "`when`",
        Rule::kw_retry => "`retry`",
        Rule::kw_backoff => "`backoff`",
        Rule::kw_exponential => "`exponential`",
        Rule::kw_timeout => "`timeout`",
        Rule::kw_verify => "`verify`",
        Rule::kw_within => "`within`",
        Rule::kw_every => "`every`",
        Rule::kw_consecutive => "`consecutive`",
        Rule::kw_undo => "`undo`",
        Rule::kw_none => "`none`",
        Rule::kw_keep => "`keep`",
        Rule::kw_escalate => "`escalate`",
        Rule::kw_capture => "`capture`",
        Rule::kw_json => "`json`",
        Rule::kw_text => "`text`",
        Rule::kw_as => "`as`",
        Rule::kw_on_error => "`on_error`",
        Rule::kw_continue => "`continue`",
        Rule::kw_for => "`for`",
        Rule::kw_in => "`in`",
        Rule::kw_max_failures => "`max_failures`",
        Rule::kw_run => "`run`",
        Rule::kw_readonly => "`readonly`",
        Rule::kw_irreversible => "`irreversible`",
        Rule::kw_http => "`http`",
        Rule::kw_body => "`body`",
        Rule::kw_notify => "`notify`",
        Rule::kw_approve => "`approve`",
        Rule::kw_by => "`by`",
        Rule::kw_other => "`other`",
        Rule::kw_wait => "`wait`",
        Rule::kw_failure => "`failure`",
        Rule::kw_success => "`success`",
        Rule::kw_after => "`after`",
        Rule::kw_rollback => "`rollback`",
        Rule::kw_always => "`always`",
        Rule::kw_if => "`if`",
        Rule::kw_else => "`else`",
        Rule::kw_try => "`try`",
        Rule::WHITESPACE => "whitespace",
        Rule::COMMENT => "a comment",
        Rule::item => "a runbook item (input, secret, channel, template, check, step, ...)",
        Rule::probe => "a probe (http, promql or shell)",
        Rule::check_clause => "`expect` or `on no_data`",
        Rule::step_clause => "a step clause",
        Rule::single_action => "an action (run, http, notify, approve, wait, escalate)",
        Rule::prefix => "`not`",
        Rule::infix => {
            "an operator (and, or, ==, !=, <, <=, >, >=, in, contains, matches, +, -, *, /)"
        }
        Rule::ident_char => "a letter, digit or `_`",
        Rule::EOI => "the end of the file",
    }
}

/// `a`, `a or b`, `a, b or c`.
pub(super) fn join_or(items: &[&str]) -> String {
    match items {
        [] => "something else".to_string(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

const OPERATORS: &[Rule] = &[
    Rule::op_and,
    Rule::op_or,
    Rule::op_eq,
    Rule::op_ne,
    Rule::op_lt,
    Rule::op_le,
    Rule::op_gt,
    Rule::op_ge,
    Rule::op_in,
    Rule::op_contains,
    Rule::op_matches,
    Rule::op_add,
    Rule::op_sub,
    Rule::op_mul,
    Rule::op_div,
];

/// What pest expects at the start of a step clause, in the order the
/// message lists them (a unit test compares the set with the grammar).
const STEP_CLAUSES: &[Rule] = &[
    Rule::kw_when,
    Rule::action,
    Rule::kw_retry,
    Rule::kw_timeout,
    Rule::kw_verify,
    Rule::kw_undo,
    Rule::kw_capture,
    Rule::kw_on_error,
    Rule::kw_keep,
    Rule::kw_loop,
    Rule::kw_every,
];

const ITEMS: &[Rule] = &[
    Rule::kw_title,
    Rule::kw_owner,
    Rule::kw_tags,
    Rule::kw_lock,
    Rule::kw_input,
    Rule::kw_secret,
    Rule::kw_channel,
    Rule::kw_template,
    Rule::kw_check,
    Rule::kw_step,
    Rule::kw_parallel,
    Rule::kw_if,
    Rule::kw_for,
    Rule::kw_on,
    Rule::kw_after,
    Rule::kw_always,
    Rule::kw_every,
    Rule::kw_try,
];

/// What was expected, in words: groups of alternatives (every operator,
/// every step clause, every runbook item) are named once instead of listed,
/// with their words in brackets.
pub(super) fn describe_expected(expected: &[Rule]) -> String {
    let mut rules: Vec<Rule> = expected.to_vec();
    let mut words: Vec<String> = Vec::new();
    let groups: [(&[Rule], usize, &str); 3] = [
        (OPERATORS, 3, "an operator"),
        (STEP_CLAUSES, 4, "a step clause"),
        (ITEMS, 5, "a runbook item"),
    ];
    for (members, min, noun) in groups {
        if rules.iter().filter(|r| members.contains(r)).count() >= min {
            rules.retain(|r| !members.contains(r));
            if noun == "an operator" {
                // After a value: `[0]` and `.name` may follow it too, but
                // the operators are what was meant.
                rules.retain(|r| !matches!(r, Rule::index | Rule::field));
            }
            let list: Vec<&str> = members.iter().flat_map(|r| bare_words(*r)).collect();
            words.push(format!("{noun} ({})", list.join(", ")));
        }
    }
    let mut rest: Vec<&'static str> = rules.iter().map(|r| human_name(*r)).collect();
    rest.sort_unstable();
    rest.dedup();
    words.extend(rest.into_iter().map(String::from));
    if expected.contains(&Rule::kw_when) {
        // Inside a step, `}` ends it: pest does not list literal tokens.
        words.push("`}`".to_string());
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    join_or(&words)
}

/// What a rule is written as, without backticks: `and` for `op_and`, `==`
/// for `op_eq`; for `action`, each action's keyword, read from the list
/// in its human name (so that a new action is named in one place). Empty
/// for a rule whose name is a description.
fn bare_words(rule: Rule) -> Vec<&'static str> {
    let name = human_name(rule);
    if rule == Rule::action {
        return name
            .split_once('(')
            .map(|(_, list)| list.trim_end_matches(')').split(", ").collect())
            .unwrap_or_default();
    }
    name.strip_prefix('`')
        .and_then(|n| n.strip_suffix('`'))
        .into_iter()
        .collect()
}

/// Keywords among the expected rules, bare (`step`, not `` `step` ``).
/// The actions' come last (of two equally close, the first is suggested).
fn expected_keywords(expected: &[Rule]) -> Vec<&'static str> {
    let others = expected.iter().filter(|r| **r != Rule::action);
    let actions = expected.iter().filter(|r| **r == Rule::action).take(1);
    others
        .chain(actions)
        .flat_map(|r| bare_words(*r))
        .filter(|k| k.chars().all(|c| c.is_ascii_alphabetic() || c == '_'))
        .collect()
}

/// `run "echo "hi" there"`: a `"` meant to be inside a string ended it, and
/// the parser stopped at what followed. Recognised by a string that ends
/// right against the unexpected text, with another `"` later on the line.
fn quote_inside_string(text: &str, span: Span) -> Option<String> {
    let before = text.get(..span.start)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let head = &before[line_start..];
    let rest = text.get(span.start..)?;
    let rest = rest.split('\n').next().unwrap_or("");
    let ends_against = head.ends_with('"') && !rest.starts_with(char::is_whitespace);
    // Quotes on the line before the error: a closed string then one more.
    let quotes_before = head.matches('"').count() - head.matches("\\\"").count();
    if ends_against && quotes_before >= 2 && rest.contains('"') {
        return Some(
            "a `\"` inside a string ends it: write it as `\\\"`, use single quotes inside a shell \
             command (`run \"echo 'hi'\"`), or write the text as a `\"\"\"...\"\"\"` string"
                .to_string(),
        );
    }
    None
}

/// A fix for common slips, keyed on what was expected and what was found.
pub(super) fn hint(expected: &[Rule], found: &str, text: &str, span: Span) -> Option<String> {
    let is_word = !found.is_empty()
        && found.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !found.starts_with(|c: char| c.is_ascii_digit());
    if found == "runbook" && expected.contains(&Rule::EOI) {
        return Some("a file holds one runbook: move the second one to a file of its own".into());
    }
    if let Some(h) = quote_inside_string(text, span) {
        return Some(h);
    }
    if is_word {
        let keywords = expected_keywords(expected);
        if let Some(dym) = did_you_mean(found, keywords.iter().copied()) {
            return Some(dym);
        }
    }
    if expected.contains(&Rule::kw_runbook) {
        return Some("a runbook file starts with `runbook NAME {`".to_string());
    }
    if expected.contains(&Rule::string) && !found.starts_with('"') && !found.is_empty() {
        // Quote the rest of the line: a command is usually several words.
        let rest = text.get(span.start..).unwrap_or("");
        let line = rest.split(['\n', '#']).next().unwrap_or(found).trim();
        let line = line.trim_end_matches('{').trim_end();
        let line = if line.is_empty() { found } else { line };
        return Some(format!("put the text in double quotes: \"{line}\""));
    }
    if expected.contains(&Rule::duration) || expected.contains(&Rule::duration_lit) {
        return Some(
            "durations are a number and a unit: `800ms`, `30s`, `5m`, `2h`, `1d`".to_string(),
        );
    }
    if expected.contains(&Rule::kw_step) && expected.contains(&Rule::kw_check) {
        if found == "else" {
            return Some(
                "`else` goes right after the `}` of an `if` block: `if COND { ... } else { ... }`"
                    .to_string(),
            );
        }
        return Some("at the top of a runbook: title, owner, tags, lock, input, secret, channel, template, check, step, parallel, if, on failure/success, after rollback, always".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::RunbookParser;
    use pest::error::ErrorVariant;
    use pest::Parser;
    use std::collections::BTreeSet;

    /// What pest expects where `text` stops (comments aside, as in
    /// `syntax_error`).
    fn expected_after(text: &str) -> BTreeSet<Rule> {
        let e = match RunbookParser::parse(Rule::file, text) {
            Ok(_) => panic!("`{text}` parses"),
            Err(e) => e,
        };
        match e.variant {
            ErrorVariant::ParsingError { positives, .. } => positives
                .into_iter()
                .filter(|r| *r != Rule::COMMENT)
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    fn set(rules: &[Rule]) -> BTreeSet<Rule> {
        rules.iter().copied().collect()
    }

    /// The groups are the grammar's alternatives, so that a new clause,
    /// item or operator is named in syntax errors (this fails until it is
    /// added to its list).
    #[test]
    fn groups_are_what_the_grammar_expects() {
        assert_eq!(
            expected_after("runbook r {\n  step s {\n    ?"),
            set(STEP_CLAUSES)
        );
        assert_eq!(expected_after("runbook r {\n  ?"), set(ITEMS));
        let after_operand = expected_after("runbook r {\n  step s {\n    when x ?");
        let clauses = set(STEP_CLAUSES);
        let operators: BTreeSet<Rule> = after_operand.difference(&clauses).copied().collect();
        let postfix = set(&[Rule::index, Rule::field]);
        assert_eq!(
            operators
                .difference(&postfix)
                .copied()
                .collect::<BTreeSet<_>>(),
            set(OPERATORS)
        );
    }

    #[test]
    fn group_names_list_their_words() {
        let clauses = describe_expected(STEP_CLAUSES);
        assert_eq!(
            clauses,
            "a step clause (when, run, http, notify, approve, wait, for, retry, timeout, verify, undo, capture, on_error, keep, loop, every) or `}`"
        );
        assert_eq!(
            describe_expected(OPERATORS),
            "an operator (and, or, ==, !=, <, <=, >, >=, in, contains, matches, +, -, *, /)"
        );
    }
}
