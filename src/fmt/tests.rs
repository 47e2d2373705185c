use super::*;

fn fmt(text: &str) -> String {
    format_text(&Source::new("t.runbook", text)).expect("formats")
}

#[test]
fn one_clause_a_line_and_blocks_indented() {
    let got = fmt("runbook r { step a { run \"x\" readonly timeout 5s retry 2 backoff 1s } }");
    assert_eq!(
        got,
        "runbook r {\n  step a {\n    run \"x\" readonly\n    timeout 5s\n    retry 2 backoff 1s\n  }\n}\n"
    );
}

#[test]
fn inputs_secrets_and_metadata_are_aligned() {
    let got = fmt(concat!(
        "runbook r {\n",
        "title \"T\"\n tags [\"a\",\"b\",]\n",
        "input a: string = \"x\"\ninput long_name: list<int> = [1, 2]\ninput c: bool # why\n",
        "secret s = env \"S\"\nsecret longer = file \"/f\"\n}\n"
    ));
    assert_eq!(
        got,
        concat!(
            "runbook r {\n",
            "  title \"T\"\n  tags  [\"a\", \"b\"]\n",
            "  input a:         string    = \"x\"\n",
            "  input long_name: list<int> = [1, 2]\n",
            "  input c:         bool  # why\n",
            "  secret s      = env \"S\"\n  secret longer = file \"/f\"\n}\n"
        )
    );
}

#[test]
fn comments_stay_where_they_stand_and_blank_lines_collapse() {
    let src = "# head\n\n\nrunbook r { # after the brace\n\n\n  # before a\n  step a {\n\n run \"x\"   # trailing\n  # last in a\n }\n\n\n\n step b { wait 1s }\n}\n# tail\n";
    let got = fmt(src);
    assert_eq!(
        got,
        concat!(
            "# head\n\nrunbook r {  # after the brace\n",
            "  # before a\n  step a {\n    run \"x\"  # trailing\n    # last in a\n  }\n\n",
            "  step b {\n    wait 1s\n  }\n}\n# tail\n"
        )
    );
}

#[test]
fn a_comment_inside_a_clause_breaks_it_onto_a_continuation_line() {
    let src = "runbook r {\n step a {\n  when x == # odd\n 1\n  run \"y\"\n }\n input x: int\n}\n";
    let got = fmt(src);
    assert!(
        got.contains("    when x ==  # odd\n      1\n    run \"y\"\n"),
        "{got}"
    );
    assert_eq!(fmt(&got), got);
}

#[test]
fn triple_strings_are_kept_verbatim() {
    let src = "runbook r {\ntemplate t = \"\"\"\n      keep   this\n   spacing  \n\"\"\"\n}\n";
    let got = fmt(src);
    assert!(
        got.contains("  template t = \"\"\"\n      keep   this\n   spacing  \n\"\"\"\n"),
        "{got}"
    );
}

#[test]
fn inline_braces_lists_and_parentheses_are_spaced_canonically() {
    let src = "runbook r { channel c = console step a { when not(x in [ 1 ,2 ]) notify c \"m\" {a:\"1\",b:\"2\",} } input x: int }";
    let got = fmt(src);
    assert!(got.contains("    when not (x in [1, 2])\n"), "{got}");
    assert!(
        got.contains("    notify c \"m\" { a: \"1\", b: \"2\" }\n"),
        "{got}"
    );
}

#[test]
fn a_syntax_error_is_the_compilers_report() {
    let err = format_text(&Source::new("t.runbook", "runbook r { step }")).expect_err("invalid");
    assert!(err.has_errors());
    assert!(err.render(false).contains("t.runbook"));
}

#[test]
fn format_checked_refuses_what_does_not_compile() {
    let source = Source::new(
        "t.runbook",
        "runbook r {\n step a { when nope run \"x\" }\n}\n",
    );
    assert!(matches!(format_checked(&source), Err(Error::Invalid(_))));
}

#[test]
fn condition_text_is_compared_by_tokens() {
    assert_eq!(
        tokens_only("a  ==\n # c \"q\"\n \"x  # y\\\" z\" and\tb"),
        "a==\"x  # y\\\" z\"andb"
    );
}
