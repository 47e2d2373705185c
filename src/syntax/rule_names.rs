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
        Rule::parallel_block => "`parallel { ... }`",
        Rule::step_decl => "a step",
        Rule::when_clause => "`when CONDITION`",
        Rule::retry_clause => "`retry N`",
        Rule::exponential => "`exponential`",
        Rule::timeout_clause => "`timeout DURATION`",
        Rule::verify_clause => "`verify CONDITION within D every D`",
        Rule::undo_clause => "`undo ACTION`",
        Rule::capture_clause => "`capture json|text as NAME`",
        Rule::capture_format => "`json` or `text`",
        Rule::on_error_clause => "`on_error continue`",
        Rule::action => "an action (run, http, notify, approve, wait, for)",
        Rule::for_action => "`for X in LIST { ... }`",
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
        Rule::wait_action => "`wait DURATION`",
        Rule::handler => "`on failure { ... }` or `on success { ... }`",
        Rule::handler_kind => "`failure` or `success`",
        Rule::after_rollback => "`after rollback verify ...`",
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
        Rule::path => "a name",
        Rule::reserved => "a reserved word",
        Rule::literal => "a value (string, number, duration, bool or list)",
        Rule::list_lit => "a list `[...]`",
        Rule::bool_lit => "`true` or `false`",
        Rule::number => "a number",
        Rule::duration => "a duration (like `30s`, `5m`, `800ms`)",
        Rule::int => "a whole number",
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
        Rule::kw_wait => "`wait`",
        Rule::kw_failure => "`failure`",
        Rule::kw_success => "`success`",
        Rule::kw_after => "`after`",
        Rule::kw_rollback => "`rollback`",
        Rule::WHITESPACE => "whitespace",
        Rule::COMMENT => "a comment",
        Rule::item => "a runbook item (input, secret, channel, template, check, step, ...)",
        Rule::probe => "a probe (http, promql or shell)",
        Rule::check_clause => "`expect` or `on no_data`",
        Rule::step_clause => {
            "a step clause (when, an action, retry, timeout, verify, undo, capture, on_error)"
        }
        Rule::single_action => "an action (run, http, notify, approve, wait)",
        Rule::prefix => "`not`",
        Rule::infix => "an operator (and, or, ==, !=, <, <=, >, >=, in, contains, matches)",
        Rule::ident_char => "a letter, digit or `_`",
        Rule::EOI => "the end of the file",
    }
}

/// `a`, `a or b`, `a, b or c`.
pub fn join_or(items: &[&str]) -> String {
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
];

const STEP_CLAUSES: &[Rule] = &[
    Rule::kw_when,
    Rule::kw_retry,
    Rule::kw_timeout,
    Rule::kw_verify,
    Rule::kw_undo,
    Rule::kw_capture,
    Rule::kw_on_error,
    Rule::action,
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
    Rule::kw_on,
    Rule::kw_after,
];

/// What was expected, in words: groups of alternatives (every operator,
/// every step clause, every runbook item) are named once instead of listed.
pub fn describe_expected(expected: &[Rule]) -> String {
    let mut rules: Vec<Rule> = expected.to_vec();
    let mut words: Vec<&'static str> = Vec::new();
    let mut group = |rules: &mut Vec<Rule>, members: &[Rule], min: usize, name: &'static str| {
        if rules.iter().filter(|r| members.contains(r)).count() >= min {
            rules.retain(|r| !members.contains(r));
            words.push(name);
        }
    };
    group(
        &mut rules,
        OPERATORS,
        3,
        "an operator (and, or, ==, !=, <, <=, >, >=, in, contains, matches)",
    );
    group(
        &mut rules,
        STEP_CLAUSES,
        4,
        "a step clause (when, run, http, notify, approve, wait, for, retry, timeout, verify, undo, capture, on_error)",
    );
    group(
        &mut rules,
        ITEMS,
        5,
        "a runbook item (title, owner, tags, lock, input, secret, channel, template, check, step, parallel, on, after)",
    );
    let mut rest: Vec<&'static str> = rules.iter().map(|r| human_name(*r)).collect();
    rest.sort_unstable();
    rest.dedup();
    words.extend(rest);
    if expected.contains(&Rule::kw_when) {
        // Inside a step, `}` ends it: pest does not list literal tokens.
        words.push("`}`");
    }
    join_or(&words)
}

/// Keywords among the expected rules, bare (`step`, not `` `step` ``).
fn expected_keywords(expected: &[Rule]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for r in expected {
        let name = human_name(*r);
        if let Some(k) = name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) {
            if k.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
                out.push(k);
            }
        }
    }
    if expected.contains(&Rule::action) {
        out.extend(["run", "http", "notify", "approve", "wait", "for"]);
    }
    out
}

/// A fix for common slips, keyed on what was expected and what was found.
pub fn hint(expected: &[Rule], found: &str, text: &str, span: Span) -> Option<String> {
    let is_word = !found.is_empty()
        && found.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !found.starts_with(|c: char| c.is_ascii_digit());
    if found == "runbook" && expected.contains(&Rule::EOI) {
        return Some("a file holds one runbook: move the second one to a file of its own".into());
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
    if expected.contains(&Rule::duration) {
        return Some(
            "durations are a number and a unit: `800ms`, `30s`, `5m`, `2h`, `1d`".to_string(),
        );
    }
    if expected.contains(&Rule::kw_step) && expected.contains(&Rule::kw_check) {
        return Some("at the top of a runbook: title, owner, tags, lock, input, secret, channel, template, check, step, parallel, on failure/success, after rollback".to_string());
    }
    None
}
