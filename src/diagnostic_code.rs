//! The stable codes of diagnostics (`runbook::unknown_name`,
//! `drill::unknown_name`...): one
//! enum, so that a code is written once, the compiler cannot use one that
//! does not exist, and the docs test lists them from [`Code::ALL`] (every
//! code must be documented in `docs/language.md`).

macro_rules! codes {
    ($($variant:ident => $name:literal,)*) => {
        /// A diagnostic's stable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Code {
            /// Every code, in alphabetical order of its name.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as users see it: `runbook::NAME` or `drill::NAME`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }
        }
    };
}

codes! {
    DrillInvalidInput => "drill::invalid_input",
    DrillInvalidRegex => "drill::invalid_regex",
    DrillInvalidScenario => "drill::invalid_scenario",
    DrillMissingInput => "drill::missing_input",
    DrillNoApproval => "drill::no_approval",
    DrillNoUndo => "drill::no_undo",
    DrillRunbookUnreadable => "drill::runbook_unreadable",
    DrillRuntime => "drill::runtime",
    DrillShadowedRule => "drill::shadowed_rule",
    DrillUnknownName => "drill::unknown_name",
    DrillUnknownOutcome => "drill::unknown_outcome",
    DrillUnreadable => "drill::unreadable",
    AmbiguousTimeout => "runbook::ambiguous_timeout",
    ApproveInFor => "runbook::approve_in_for",
    ApproveInHandler => "runbook::approve_in_handler",
    CaptureInForBody => "runbook::capture_in_for_body",
    CaptureNotSet => "runbook::capture_not_set",
    CaptureWithoutOutput => "runbook::capture_without_output",
    CheckInText => "runbook::check_in_text",
    CheckWithSideEffect => "runbook::check_with_side_effect",
    CheckWithoutExpect => "runbook::check_without_expect",
    ClauseInAlways => "runbook::clause_in_always",
    DefaultType => "runbook::default_type",
    DuplicateName => "runbook::duplicate_name",
    EmptyFile => "runbook::empty_file",
    EmptyOneOf => "runbook::empty_one_of",
    EmptyParallel => "runbook::empty_parallel",
    EmptyReason => "runbook::empty_reason",
    EmptyStep => "runbook::empty_step",
    ForBodyList => "runbook::for_body_list",
    ForOverNonList => "runbook::for_over_non_list",
    InvalidConsecutive => "runbook::invalid_consecutive",
    InvalidDuration => "runbook::invalid_duration",
    InvalidEscape => "runbook::invalid_escape",
    InvalidHeader => "runbook::invalid_header",
    InvalidJsonBody => "runbook::invalid_json_body",
    InvalidLoop => "runbook::invalid_loop",
    InvalidNumber => "runbook::invalid_number",
    InvalidParallel => "runbook::invalid_parallel",
    InvalidRegex => "runbook::invalid_regex",
    InvalidRetry => "runbook::invalid_retry",
    InvalidSecretSource => "runbook::invalid_secret_source",
    InvalidTemplate => "runbook::invalid_template",
    InvalidUrl => "runbook::invalid_url",
    IrreversibleWithoutApprove => "runbook::irreversible_without_approve",
    LadderWithoutFallback => "runbook::ladder_without_fallback",
    MisplacedEscalate => "runbook::misplaced_escalate",
    MixedList => "runbook::mixed_list",
    NameTooLong => "runbook::name_too_long",
    NestedBlockUnsupported => "runbook::nested_block_unsupported",
    NestingTooDeep => "runbook::nesting_too_deep",
    NoSteps => "runbook::no_steps",
    NotInScope => "runbook::not_in_scope",
    NotOneOf => "runbook::not_one_of",
    NotUtf8 => "runbook::not_utf8",
    RegexNotLiteral => "runbook::regex_not_literal",
    RepeatedClause => "runbook::repeated_clause",
    ReservedName => "runbook::reserved_name",
    SecretExposed => "runbook::secret_exposed",
    SecretInCondition => "runbook::secret_in_condition",
    ShadowedName => "runbook::shadowed_name",
    Syntax => "runbook::syntax",
    TooDeep => "runbook::too_deep",
    TooManyPolls => "runbook::too_many_polls",
    TypeMismatch => "runbook::type_mismatch",
    UnclosedBlock => "runbook::unclosed_block",
    UndoWithoutEffect => "runbook::undo_without_effect",
    UnescapedPlaceholder => "runbook::unescaped_placeholder",
    UnknownChannel => "runbook::unknown_channel",
    UnknownField => "runbook::unknown_field",
    UnknownFunction => "runbook::unknown_function",
    UnknownName => "runbook::unknown_name",
    UnknownOperator => "runbook::unknown_operator",
    UnknownTemplate => "runbook::unknown_template",
    Unreadable => "runbook::unreadable",
    UnsafePlaceholder => "runbook::unsafe_placeholder",
    UnterminatedString => "runbook::unterminated_string",
    Unused => "runbook::unused",
    VerifyInterval => "runbook::verify_interval",
    VerifyUnreachable => "runbook::verify_unreachable",
    WriteWithoutUndo => "runbook::write_without_undo",
    ZeroDuration => "runbook::zero_duration",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn codes_are_distinct_and_sorted() {
        let names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }
}
