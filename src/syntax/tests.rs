//! Comments are in pest's parse tree and nowhere in the AST.

use super::literals::literal_end;
use super::{parse, Rule, RunbookParser};
use pest::Parser;
use std::path::Path;

/// Every token of the language with a comment after it (the `#` of a
/// comment ends the token before it, whitespace or not).
const ODD_PLACES: &str = r#"# before the runbook
runbook # after a keyword
  odd # after a name
{ # after a brace
  title # c
    "T" # c
  tags # c
    [ # c
      "a" # c
      , # c
      "b" # c
    ] # c
  input regions # c
    : # c
    list # c
    < # c
    string # c
    > # c
    = # c
    [ "eu" ] # c
  input mode: one_of # c
    [ "fast" ] = "fast"
  secret token # c
    = # c
    env # c
    "TOKEN" # c
  channel hook = webhook # c
    "https://hooks.example.com/x" # c
    { # c
      header # c
        "X-A" # c
        = # c
        "b" # c
    } # c
  template t = # c
    "hi"
  check ok { # c
    http get "https://a.example.com/health" # c
    expect # c
      not # c
      ( # c
        status # c
        == # c
        200 # c
      ) # c
      and # c
      body contains "up" # c
    on # c
      no_data # c
      pass # c
  } # c
  step one { # c
    when # c
      mode # c
      in # c
      [ # c
        "fast" # c
        , # c
        "slow" # c
      ] # c
      or#glued to the operator
      ok
    http post "https://a.example.com/x" # c
      timeout # c
        5s # c
      header "X-B" = "c" # c
      body # c
        json # c
        "{}" # c
      { # c
        timeout 1s # c
      } # c
    retry # c
      3 # c
      backoff # c
      1s # c
      exponential # c
    timeout # c
      1m # c
    verify # c
      ok # c
      within # c
      1m # c
      every # c
      5s # c
      consecutive # c
      2 # c
    undo # c
      "true" # c
    capture # c
      json # c
      as # c
      result # c
    on_error # c
      continue # c
  }
  parallel { # c
    step two {
      for # c
        region # c
        in # c
        regions # c
        parallel # c
        2 # c
        max_failures # c
        1 # c
      { # c
        run # c
          "deploy {{region}}" # c
          irreversible # c
      } # c
      approve # c
        "go?" # c
        timeout # c
        5m # c
    }
    step three {
      notify # c
        hook # c
        "{{x}}" # c
        { # c
          x # c
          : # c
          "y" # c
          , # c
        } # c
    }
  } # c
  on # c
    failure # c
    { # c
      run "page" # c
      wait # c
        1s # c
    } # c
  after # c
    rollback # c
    verify # c
      ok # c
      within # c
      2m # c
      every # c
      10s # c
} # after the runbook
# at the end, with no newline"#;

/// The text with every comment replaced by spaces: the same length, so
/// every span of its tree must be the same.
fn blank_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match literal_end(b, i) {
            Some(end) if b[i] == b'#' => {
                out.push_str(&" ".repeat(end - i));
                i = end;
            }
            Some(end) => {
                out.push_str(&text[i..end]);
                i = end;
            }
            None => {
                let len = text[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&text[i..i + len]);
                i += len;
            }
        }
    }
    out
}

/// The text with a comment after every run of whitespace outside strings
/// and comments (and as much plain whitespace in `plain`, so that spans
/// line up).
fn comment_every_gap(text: &str) -> (String, String) {
    const COMMENT: &str = "#c\n";
    let b = text.as_bytes();
    let mut commented = String::with_capacity(text.len() * 2);
    let mut i = 0;
    while i < b.len() {
        if let Some(end) = literal_end(b, i) {
            commented.push_str(&text[i..end]);
            i = end;
        } else if b[i].is_ascii_whitespace() {
            let end = i + b[i..]
                .iter()
                .take_while(|c| c.is_ascii_whitespace())
                .count();
            commented.push_str(&text[i..end]);
            commented.push_str(COMMENT);
            i = end;
        } else {
            let len = text[i..].chars().next().map_or(1, char::len_utf8);
            commented.push_str(&text[i..i + len]);
            i += len;
        }
    }
    let plain = blank_comments(&commented);
    (commented, plain)
}

#[test]
fn comments_are_in_the_parse_tree() {
    let pairs = match RunbookParser::parse(Rule::file, ODD_PLACES) {
        Ok(pairs) => pairs,
        Err(e) => panic!("{e}"),
    };
    let comments: Vec<&str> = pairs
        .flatten()
        .filter(|p| p.as_rule() == Rule::COMMENT)
        .map(|p| p.as_str())
        .collect();
    let written = ODD_PLACES.matches('#').count();
    assert_eq!(comments.len(), written, "{comments:?}");
    assert_eq!(comments[0], "# before the runbook");
    assert!(comments.contains(&"#glued to the operator"));
    assert_eq!(comments.last(), Some(&"# at the end, with no newline"));
    assert!(comments.iter().all(|c| !c.contains('\n')));
}

#[test]
fn comments_in_odd_places_leave_the_ast_unchanged() {
    let with = parse(ODD_PLACES);
    let without = parse(&blank_comments(ODD_PLACES));
    let (Ok(with), Ok(without)) = (with, without) else {
        panic!("the example must parse with and without its comments");
    };
    assert_eq!(with.0, without.0);
    assert!(with.1.is_empty(), "{:?}", with.1);
    assert!(without.1.is_empty(), "{:?}", without.1);
    // Every clause was read: a comment taken for a child would have
    // dropped or changed one.
    let step = match &with.0.body[0] {
        crate::ast::Block::Step(s) => s,
        other => panic!("{other:?}"),
    };
    assert!(step.when.is_some() && step.retry.is_some() && step.verify.is_some());
    assert!(step.undo.is_some() && step.capture.is_some() && step.timeout.is_some());
    assert!(step.continue_on_error.is_some_and(|c| c.node));
    assert_eq!(with.0.tags.len(), 2);
    assert_eq!(with.0.on_failure[0].actions.len(), 2);
    assert_eq!(with.0.after_rollback.len(), 1);
}

#[test]
fn a_comment_in_every_gap_of_every_repository_runbook_changes_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut parsed = 0;
    for dir in ["runbooks", "tests/warnings", "tests/invalid"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            panic!("{dir} is missing");
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            if path.extension().is_none_or(|x| x != "runbook") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if text.len() > 8_000 {
                continue; // the 10,000-parenthesis file
            }
            let (commented, plain) = comment_every_gap(&text);
            match (parse(&commented), parse(&plain), parse(&text)) {
                (Ok(c), Ok(p), Ok(_)) => {
                    assert_eq!(c.0, p.0, "{}", path.display());
                    let (ce, pe) = (format!("{:?}", c.1), format!("{:?}", p.1));
                    assert_eq!(ce, pe, "{}", path.display());
                    parsed += 1;
                }
                (Err(_), Err(_), Err(_)) => {}
                (c, p, t) => panic!(
                    "{}: with comments {}, without {}, as written {}",
                    path.display(),
                    c.is_ok(),
                    p.is_ok(),
                    t.is_ok()
                ),
            }
        }
    }
    assert!(parsed > 60, "only {parsed} runbooks parsed");
}
